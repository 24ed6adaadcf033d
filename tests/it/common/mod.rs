//! Shared helpers for integration tests: an in-process server on port 0,
//! `redis` crate clients (RESP2 and RESP3) and a raw-bytes connection.
#![allow(dead_code)]

pub mod loghub;

use redlog::config::Config;
use redlog::server::{spawn, ServerHandle};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Starts a server on 127.0.0.1 and a free port, with `options` as
/// `(name, value)` config directives on top of the defaults.
pub async fn start_with(options: &[(&str, &str)]) -> ServerHandle {
    let mut cfg = Config::default();
    cfg.set_startup("port", "0").unwrap();
    // Each server gets its own data directory (one server per dir: LOCK).
    let dir = temp_dir();
    cfg.set_startup("dir", dir.to_str().unwrap()).unwrap();
    for (k, v) in options {
        cfg.set_startup(k, v).unwrap();
    }
    spawn(cfg).await.expect("server starts")
}

pub async fn start() -> ServerHandle {
    start_with(&[]).await
}

/// Client settings for tests: no response timeout (the crate's default
/// fails slow commands of a debug build on a loaded CI machine).
fn test_config() -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new()
        .set_response_timeout(None)
        .set_connection_timeout(Some(Duration::from_secs(30)))
}

/// A RESP2 client.
pub async fn client(addr: SocketAddr) -> redis::aio::MultiplexedConnection {
    let c = redis::Client::open(format!("redis://{addr}/")).unwrap();
    c.get_multiplexed_async_connection_with_config(&test_config())
        .await
        .expect("connect")
}

/// A RESP3 client (sends HELLO 3).
pub async fn client3(addr: SocketAddr) -> redis::aio::MultiplexedConnection {
    let c = redis::Client::open(format!("redis://{addr}/?protocol=resp3")).unwrap();
    c.get_multiplexed_async_connection_with_config(&test_config())
        .await
        .expect("connect")
}

/// A raw TCP connection for byte-level tests.
pub struct Raw {
    pub stream: TcpStream,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.expect("connect"),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads until `expected.len()` bytes arrived (or 2 s passed) and returns them.
    pub async fn read_exact_len(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        let mut got = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while got < n {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut buf[got..])).await {
                Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                Ok(Ok(k)) => got += k,
            }
        }
        buf.truncate(got);
        buf
    }

    /// Sends `req` and asserts the reply bytes are exactly `expected`.
    pub async fn check(&mut self, req: &[u8], expected: &[u8]) {
        self.send(req).await;
        let got = self.read_exact_len(expected.len()).await;
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected),
            "request {:?}",
            String::from_utf8_lossy(req)
        );
    }

    /// True when the server closed the connection (EOF within 2 s).
    pub async fn closed(&mut self) -> bool {
        let mut b = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(2), self.stream.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// A RESP bulk string.
pub fn bulk(s: &[u8]) -> Vec<u8> {
    let mut v = format!("${}\r\n", s.len()).into_bytes();
    v.extend_from_slice(s);
    v.extend_from_slice(b"\r\n");
    v
}

/// Encodes a command as a RESP multibulk request.
pub fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// Runs one command for a fresh RESP3 client inside the server's process
/// (through `server::execute`, as a connection would after `HELLO 3`) and
/// asserts the exact reply bytes. Needs no HELLO support on the wire.
pub fn resp3(s: &ServerHandle, args: &[&[u8]], expected: &[u8]) {
    use redlog::node::{Client, ClientHandle};
    use redlog::protocol::Out;
    use redlog::server::execute;
    use std::sync::Arc;
    let shared = s.shared();
    let addr = s.local_addr();
    let handle = Arc::new(ClientHandle::new(u64::MAX, addr, addr, -1));
    let mut client = Client::new(handle, true);
    let mut out = Out::new(true);
    let args = args
        .iter()
        .map(|a| bytes::Bytes::copy_from_slice(a))
        .collect();
    {
        let mut ks = shared.ks.lock();
        execute(shared, &mut ks, &mut client, &mut out, args);
    }
    assert_eq!(
        String::from_utf8_lossy(&out.buf),
        String::from_utf8_lossy(expected)
    );
}

/// Collects keyspace events (`__keyevent@*__:*`) as `event:key` strings,
/// through a real RESP2 subscriber connection.
pub struct Events {
    raw: Raw,
    buf: Vec<u8>,
}

impl Events {
    pub async fn tap(addr: SocketAddr) -> Events {
        let mut raw = Raw::connect(addr).await;
        let pattern = b"__keyevent@*__:*";
        raw.send(&resp(&[b"PSUBSCRIBE", pattern])).await;
        let confirm = format!(
            "*3\r\n$10\r\npsubscribe\r\n${}\r\n{}\r\n:1\r\n",
            pattern.len(),
            String::from_utf8_lossy(pattern)
        );
        let got = raw.read_exact_len(confirm.len()).await;
        assert_eq!(String::from_utf8_lossy(&got), confirm);
        Events {
            raw,
            buf: Vec::new(),
        }
    }

    /// Every event delivered until the connection is quiet for 100 ms.
    pub async fn take(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(Duration::from_millis(100), self.raw.stream.read(&mut chunk))
                .await
            {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => break,
            }
        }
        // Frames: *4 $8 pmessage $p pattern $c channel $m message
        let mut rest: &[u8] = &self.buf;
        while let Some(parts) = parse_array(rest) {
            let (items, used) = parts;
            let channel = String::from_utf8_lossy(&items[2]).to_string();
            let event = channel
                .split_once("__:")
                .map(|x| x.1.to_string())
                .unwrap_or(channel);
            out.push(format!("{event}:{}", String::from_utf8_lossy(&items[3])));
            rest = &rest[used..];
        }
        let used = self.buf.len() - rest.len();
        self.buf.drain(..used);
        out
    }
}

/// Parses one RESP2 array of bulk strings; returns the items and the bytes used.
fn parse_array(b: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    fn line(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let end = b[at..].windows(2).position(|w| w == b"\r\n")? + at;
        Some((&b[at..end], end + 2))
    }
    let (head, mut at) = line(b, 0)?;
    let n: usize = std::str::from_utf8(head.strip_prefix(b"*")?)
        .ok()?
        .parse()
        .ok()?;
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        let (h, next) = line(b, at)?;
        let len: usize = std::str::from_utf8(h.strip_prefix(b"$")?)
            .ok()?
            .parse()
            .ok()?;
        if b.len() < next + len + 2 {
            return None;
        }
        items.push(b[next..next + len].to_vec());
        at = next + len + 2;
    }
    Some((items, at))
}

/// A child process killed (SIGKILL) when dropped, so a failing test never
/// leaves a server running (and holding the test harness's output pipe).
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads whatever arrives until the connection is idle for 200 ms.
pub async fn read_all(c: &mut Raw) -> String {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(200), c.stream.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends a command on a raw connection and returns everything it replied.
pub async fn raw_cmd(c: &mut Raw, args: &[&str]) -> String {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    c.send(&resp(&a)).await;
    read_all(c).await
}

/// A fresh data directory for the test (a server restarted on it must find
/// it). It is removed when the thread that made it ends (a test's thread:
/// all tests share one process, so waiting for its exit would keep every
/// test's directories at once) or at the latest when the process exits,
/// unless a test of the process failed (then they stay for inspection).
pub fn temp_dir() -> std::path::PathBuf {
    let dir = tempfile::Builder::new()
        .prefix("redlog-test-")
        .tempdir()
        .unwrap()
        .keep();
    cleanup::track(dir.clone());
    dir
}

/// Proptest's settings for `cases` cases, with failures saved next to the
/// test's file (`persistence.rs`: `persistence.proptest-regressions`).
/// Proptest's default (`SourceParallel`) would put them in
/// `tests/it/proptest-regressions/`, beside the `main.rs` it finds.
pub fn proptest_cases(cases: u32) -> proptest::test_runner::Config {
    proptest::test_runner::Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..proptest::test_runner::Config::default()
    }
}

/// Removal of the data directories when their thread ends and at process
/// exit (each WAL reserves megabytes: a day of test runs kept them all once
/// filled the disk).
mod cleanup {
    use std::cell::RefCell;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, Once};

    static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    static FAILED: AtomicBool = AtomicBool::new(false);
    static INSTALL: Once = Once::new();

    /// The directories made on this thread, removed when it ends. The test
    /// harness runs each test on a thread of its own, and a test's servers
    /// run on its runtime, gone by then (a background thread of a server
    /// still writing finds its files gone and fails, as at process exit).
    struct ThreadDirs(RefCell<Vec<PathBuf>>);

    impl Drop for ThreadDirs {
        fn drop(&mut self) {
            if FAILED.load(Ordering::SeqCst) {
                return;
            }
            for dir in self.0.borrow().iter() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    thread_local! {
        static MINE: ThreadDirs = const { ThreadDirs(RefCell::new(Vec::new())) };
    }

    pub fn track(dir: PathBuf) {
        INSTALL.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                FAILED.store(true, Ordering::SeqCst);
                previous(info)
            }));
            // SAFETY: `remove_all` is an `extern "C" fn()` that does not
            // unwind (it catches nothing that could panic: a poisoned lock
            // is skipped).
            unsafe { libc::atexit(remove_all) };
        });
        // The main thread's locals are not dropped at exit: `remove_all`
        // takes them (and any a thread left behind).
        if std::thread::current().name() != Some("main") {
            let _ = MINE.try_with(|m| m.0.borrow_mut().push(dir.clone()));
        }
        if let Ok(mut dirs) = DIRS.lock() {
            dirs.push(dir);
        }
    }

    extern "C" fn remove_all() {
        if FAILED.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(dirs) = DIRS.lock() {
            for dir in dirs.iter() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

/// A server on `dir` with extra config directives.
pub async fn start_in(dir: &std::path::Path, extra: &[(&str, &str)]) -> ServerHandle {
    let mut opts = vec![("dir", dir.to_str().unwrap())];
    opts.extend_from_slice(extra);
    start_with(&opts).await
}

/// Every key of every database with its value and absolute expiry, sorted.
pub fn dump_all(s: &ServerHandle) -> Vec<(usize, Vec<u8>, redlog::db::Value, u64)> {
    let ks = s.shared().ks.lock();
    let mut v: Vec<_> = ks
        .dbs
        .iter()
        .enumerate()
        .flat_map(|(i, d)| {
            d.iter()
                .map(move |(k, e)| (i, k.to_vec(), e.value.clone(), e.expires_at_ms))
        })
        .collect();
    v.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    v
}

/// A free TCP port on 127.0.0.1 (for a server started as a process).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Connects to a server process once it answers PING (waits up to ~30 s:
/// CI machines can be slow).
pub fn wait_ping(port: u16) -> redis::Connection {
    for _ in 0..3000 {
        if let Ok(cl) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) {
            if let Ok(mut c) = cl.get_connection() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return c;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("server on {port} did not come up");
}

/// Waits until exactly `n` clients are blocked (registration is
/// asynchronous to the test's writes).
pub async fn wait_blocked(s: &ServerHandle, n: usize) {
    for _ in 0..2000 {
        if s.shared().ks.lock().blocked_clients() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!(
        "expected {n} blocked clients, have {}",
        s.shared().ks.lock().blocked_clients()
    );
}

/// A connection that sent a blocking command and is blocked in it.
pub async fn blocked(s: &ServerHandle, args: &[&[u8]], now_blocked: usize) -> Raw {
    let mut c = Raw::connect(s.local_addr()).await;
    c.send(&resp(args)).await;
    wait_blocked(s, now_blocked).await;
    c
}
