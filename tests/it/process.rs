//! The server as a process and on the network: signals, the open-file
//! limit behind maxclients, protected mode, configuration ranges.

use crate::common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts the binary on a free port and data dir; stderr is piped.
fn spawn_server(dir: &std::path::Path, extra: &[&str], pre: Option<fn()>) -> (Child, u16) {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_redlog"));
    cmd.args(["--port", &port.to_string(), "--dir", dir.to_str().unwrap()])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(f) = pre {
        // SAFETY: the hook only calls async-signal-safe libc functions.
        unsafe {
            cmd.pre_exec(move || {
                f();
                Ok(())
            });
        }
    }
    (cmd.spawn().expect("start redlog"), port)
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(Instant::now() < deadline, "server did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stderr_text(child: &mut Child) -> String {
    let mut s = String::new();
    child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: plain kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

/// SIGTERM (and SIGINT) shut down as SHUTDOWN does: the process used to
/// die with status 143. Acknowledged writes are flushed, Redis's log lines
/// are written, the exit status is 0, and the data is back after restart.
#[test]
fn sigterm_and_sigint_shut_down_cleanly() {
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let dir = temp_dir();
        let (mut child, port) = spawn_server(&dir, &["--appendfsync", "no"], None);
        let mut c = wait_ping(port);
        for i in 0..100 {
            let _: () = redis::cmd("SET")
                .arg(format!("k{i}"))
                .arg(i)
                .query(&mut c)
                .unwrap();
        }
        let _: () = redis::cmd("XADD")
            .arg("s")
            .arg("1-1")
            .arg("f")
            .arg("v")
            .query(&mut c)
            .map(|_: String| ())
            .unwrap();
        signal(&child, sig);
        let status = wait_exit(&mut child, Duration::from_secs(30));
        let log = stderr_text(&mut child);
        assert_eq!(status.code(), Some(0), "{name}: {log}");
        assert!(
            log.contains(&format!("Received {name} scheduling shutdown...")),
            "{log}"
        );
        assert!(log.contains("ready to exit, bye bye..."), "{log}");

        let (mut child, port) = spawn_server(&dir, &[], None);
        let mut c = wait_ping(port);
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
        assert_eq!(n, 101, "{name}: every key back after restart");
        let v: String = redis::cmd("GET").arg("k99").query(&mut c).unwrap();
        assert_eq!(v, "99");
        let len: i64 = redis::cmd("XLEN").arg("s").query(&mut c).unwrap();
        assert_eq!(len, 1);
        signal(&child, libc::SIGTERM);
        assert_eq!(
            wait_exit(&mut child, Duration::from_secs(30)).code(),
            Some(0)
        );
    }
}

/// Under `ulimit -n 256` with no way to raise it, maxclients is lowered to
/// the limit minus Redis's 32 reserved descriptors, with Redis's warning;
/// clients past it get the max-clients error at once instead of hanging,
/// and CONFIG SET cannot raise it past what the limit holds.
#[test]
fn maxclients_follows_the_open_file_limit() {
    fn limit_fds() {
        let lim = libc::rlimit {
            rlim_cur: 256,
            rlim_max: 256,
        };
        // CAP_SYS_RESOURCE (linux/capability.h): what lets root raise the
        // hard limit again.
        const CAP_SYS_RESOURCE: libc::c_ulong = 24;
        // SAFETY: async-signal-safe calls on the child about to exec. As
        // root, take the capability out of the bounding set, so the server
        // runs as an unprivileged one would.
        unsafe {
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            if libc::geteuid() == 0 {
                libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0);
            }
        }
    }
    let dir = temp_dir();
    let (mut child, port) = spawn_server(&dir, &["--maxclients", "10000"], Some(limit_fds));
    let mut c = wait_ping(port);
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxclients")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, vec!["maxclients".to_string(), "224".to_string()]);
    let e = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxclients")
        .arg("10000")
        .query::<()>(&mut c)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "ResponseError: CONFIG SET failed (possibly related to argument 'maxclients') - The operating system is not able to handle the specified number of clients, try with 224"
    );
    // 224 clients in all (`c` is one); the next ones are refused at once.
    let mut held = Vec::new();
    for _ in 0..223 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"PING\r\n").unwrap();
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).unwrap();
        assert_eq!(line, "+PONG\r\n");
        held.push(s);
    }
    for _ in 0..50 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "-ERR max number of clients reached\r\n");
    }
    drop(held);
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    signal(&child, libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(30)).code(),
        Some(0)
    );
    let log = stderr_text(&mut child);
    assert!(
        log.contains("maxclients has been reduced to 224 to compensate for low ulimit"),
        "{log}"
    );
    assert!(!log.contains("Too many open files"), "{log}");
}

/// A local address that is not loopback (the test connects through it so
/// the server sees a non-loopback peer).
fn non_loopback_ipv4() -> std::net::Ipv4Addr {
    let trie = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    let lines: Vec<&str> = trie.lines().collect();
    for w in lines.windows(2) {
        if w[1].trim() == "/32 host LOCAL" {
            if let Some(a) = w[0].trim().strip_prefix("|-- ") {
                if let Ok(ip) = a.parse::<std::net::Ipv4Addr>() {
                    if !ip.is_loopback() {
                        return ip;
                    }
                }
            }
        }
    }
    panic!("this machine has no non-loopback IPv4 address to test protected mode with");
}

/// protected-mode was accepted but not enforced: bound to every interface
/// with no password, a non-loopback client got +PONG. Redis answers its
/// DENIED text and closes; loopback clients, a password, or protected-mode
/// no let clients in.
#[tokio::test]
async fn protected_mode_refuses_remote_clients_without_a_password() {
    let s = start_with(&[("bind", "0.0.0.0")]).await;
    let port = s.local_addr().port();
    let remote = std::net::SocketAddr::from((non_loopback_ipv4(), port));
    let denied = format!("-{}\r\n", redlog::server::PROTECTED_MODE_DENIED);
    assert!(denied.starts_with(
        "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user."
    ));

    let mut r = Raw::connect(remote).await;
    r.check(b"PING\r\n", denied.as_bytes()).await;
    assert!(r.closed().await);
    let mut local = Raw::connect(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await;
    local.check(b"PING\r\n", b"+PONG\r\n").await;
    let info = raw_cmd(&mut local, &["INFO", "stats"]).await;
    assert!(info.contains("rejected_connections:1\r\n"), "{info}");

    // A password for the default user lifts it (the client must AUTH).
    local
        .check(
            &resp(&[b"CONFIG", b"SET", b"requirepass", b"pw"]),
            b"+OK\r\n",
        )
        .await;
    let mut r = Raw::connect(remote).await;
    r.check(b"PING\r\n", b"-NOAUTH Authentication required.\r\n")
        .await;
    r.check(&resp(&[b"AUTH", b"pw"]), b"+OK\r\n").await;
    r.check(b"PING\r\n", b"+PONG\r\n").await;
    local.check(&resp(&[b"AUTH", b"pw"]), b"+OK\r\n").await;
    local
        .check(&resp(&[b"CONFIG", b"SET", b"requirepass", b""]), b"+OK\r\n")
        .await;
    // So does protected-mode no.
    local
        .check(
            &resp(&[b"CONFIG", b"SET", b"protected-mode", b"no"]),
            b"+OK\r\n",
        )
        .await;
    let mut r = Raw::connect(remote).await;
    r.check(b"PING\r\n", b"+PONG\r\n").await;
    s.shutdown().await;
}

#[test]
fn protected_mode_rules() {
    use redlog::server::protected_mode_denies;
    let mut cfg = redlog::config::Config::default();
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    assert!(protected_mode_denies(&cfg, ip("192.0.2.7")));
    assert!(protected_mode_denies(&cfg, ip("2001:db8::1")));
    for local in ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"] {
        assert!(!protected_mode_denies(&cfg, ip(local)), "{local}");
    }
    cfg.set_startup("requirepass", "x").unwrap();
    assert!(!protected_mode_denies(&cfg, ip("192.0.2.7")));
    cfg.set_startup("requirepass", "").unwrap();
    cfg.set_startup("protected-mode", "no").unwrap();
    assert!(!protected_mode_denies(&cfg, ip("192.0.2.7")));
}

/// `stream-retention-ms` stopped at 2^31-1 ms while XCONFIG's RETENTION-MS
/// takes any 64-bit value: both now take the same range.
#[tokio::test]
async fn stream_retention_ms_has_xconfigs_range() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let thirty_days = b"2592000000";
    c.check(
        &resp(&[b"CONFIG", b"SET", b"stream-retention-ms", thirty_days]),
        b"+OK\r\n",
    )
    .await;
    c.check(
        &resp(&[b"CONFIG", b"GET", b"stream-retention-ms"]),
        b"*2\r\n$19\r\nstream-retention-ms\r\n$10\r\n2592000000\r\n",
    )
    .await;
    c.check(
        &resp(&[
            b"CONFIG",
            b"SET",
            b"stream-retention-ms",
            b"9223372036854775807",
        ]),
        b"+OK\r\n",
    )
    .await;
    c.check(
        &resp(&[b"XADD", b"s", b"1-1", b"f", b"v"]),
        b"$3\r\n1-1\r\n",
    )
    .await;
    c.check(
        &resp(&[b"XCONFIG", b"s", b"RETENTION-MS", b"9223372036854775807"]),
        b"*4\r\n$12\r\nretention-ms\r\n:9223372036854775807\r\n$15\r\nretention-bytes\r\n:0\r\n",
    )
    .await;
    c.check(
        &resp(&[b"CONFIG", b"SET", b"stream-retention-ms", b"-1"]),
        b"-ERR CONFIG SET failed (possibly related to argument 'stream-retention-ms') - argument must be between 0 and 9223372036854775807 inclusive\r\n",
    )
    .await;
    s.shutdown().await;
}

/// Debian's stock /etc/redis/redis.conf (tests/data/redis-conf) loads
/// unchanged but for port, dir, pidfile and logfile: it daemonizes, writes
/// its pid file and log file, serves, lists the settings it ignores once,
/// and removes the pid file when stopped. redlog used to refuse it at its
/// first unknown directive (`pidfile`).
#[test]
fn debians_stock_redis_conf_loads() {
    let dir = temp_dir();
    let port = free_port();
    let stock = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/redis-conf/redis-7.0-debian.conf"),
    )
    .unwrap();
    let pidfile = dir.join("redis.pid");
    let logfile = dir.join("redis.log");
    let conf: String = stock
        .lines()
        .map(|l| match l.split_whitespace().next() {
            Some("port") => format!("port {port}"),
            Some("dir") => format!("dir {}", dir.display()),
            Some("pidfile") => format!("pidfile {}", pidfile.display()),
            Some("logfile") => format!("logfile {}", logfile.display()),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join("redis.conf");
    std::fs::write(&path, conf).unwrap();
    // daemonize yes: the command returns once the daemon is forked.
    let out = Command::new(env!("CARGO_BIN_EXE_redlog"))
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut c = wait_ping(port);
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("client-output-buffer-limit")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        v[1],
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    // SAFETY: kill(2) on the daemon this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while pidfile.exists() {
        assert!(Instant::now() < deadline, "daemon did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = std::fs::read_to_string(&logfile).unwrap();
    // redis-server's line format: `pid:M dd Mon yyyy hh:mm:ss.mmm * ...`.
    let ready = regex::Regex::new(
        r"(?m)^\d+:M \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d\.\d{3} \* Ready to accept connections",
    )
    .unwrap();
    assert!(ready.is_match(&log), "{log}");
    assert!(
        log.contains("have no effect in redlog: ") && log.contains("rdbcompression"),
        "{log}"
    );
    assert!(log.contains("ready to exit, bye bye"), "{log}");
}

/// Every directive redis-server 7.0 knows, at its default, in one config
/// file: each is implemented or accepted (and shown by CONFIG GET).
#[test]
fn every_redis_7_directive_is_accepted() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/redis-conf/all-directives-7.0.conf"),
    )
    .unwrap();
    let mut cfg = redlog::config::Config::default();
    cfg.load_file_text(&text, redlog::commands::table())
        .unwrap();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, value) = line.split_once(' ').unwrap();
        let value = value.trim_matches('"');
        assert!(
            cfg.get_matching(name.as_bytes())
                .iter()
                .any(|(n, v)| *n == name && v == value),
            "CONFIG GET {name} shows {value}"
        );
    }
}

/// `supervised systemd`: sd_notify datagrams to `$NOTIFY_SOCKET` as
/// redis-server sends them: loading, ready (after the server answers),
/// stopping.
#[test]
fn supervised_systemd_notifies_readiness() {
    let dir = temp_dir();
    let sock_path = dir.join("notify.sock");
    let rx = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    rx.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_redlog"))
        .args(["--port", &port.to_string(), "--dir", dir.to_str().unwrap()])
        .args(["--supervised", "systemd"])
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start redlog");
    let next = || {
        let mut buf = [0u8; 256];
        let n = rx.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    assert_eq!(next(), "STATUS=Redis is loading...\n");
    assert_eq!(next(), "STATUS=Ready to accept connections\n");
    assert_eq!(next(), "READY=1\n");
    // Ready means served.
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.write_all(b"PING\r\n").unwrap();
    let mut r = [0u8; 7];
    c.read_exact(&mut r).unwrap();
    assert_eq!(&r, b"+PONG\r\n");
    c.write_all(b"SHUTDOWN NOSAVE\r\n").unwrap();
    assert_eq!(next(), "STOPPING=1\n");
    assert!(wait_exit(&mut child, Duration::from_secs(30)).success());
    assert!(stderr_text(&mut child).contains("Supervised by systemd."));
}
