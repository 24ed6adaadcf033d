//! MIGRATE end to end: to another redlog and to a redis-server 7.0 process
//! (when `redis-server` is installed, as `.ci/run` makes sure), every type
//! including streams with consumer groups; COPY, REPLACE, AUTH, AUTH2,
//! KEYS; the target's errors and Redis's error texts (taken from
//! redis-server 7.0.15); the deletions logged (restart); the exchange done
//! without the keyspace lock, a key changed meanwhile kept.

use crate::common;

use common::*;
use redlog::server::ServerHandle;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

async fn q(c: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query_async::<redis::Value>(c).await {
        Ok(v) => v,
        Err(e) => redis::Value::SimpleString(format!("ERROR {}", e.detail().unwrap_or(""))),
    }
}

/// A reply as the text the tests compare: status, error (with its code
/// as Redis sent it), integer or bulk.
async fn text(c: &mut Raw, args: &[&str]) -> String {
    raw_cmd(c, args).await
}

/// Fills db 0 with one key of every type and encoding (a stream with a
/// consumer group, a pending entry and two consumers); returns the keys.
async fn fill(c: &mut Raw) -> Vec<String> {
    let cmds: &[&[&str]] = &[
        &["SET", "str", "hello"],
        &["SET", "int", "12345"],
        &["SET", "ttl", "v", "PX", "500000"],
        &["RPUSH", "list", "a", "b", "1", "2"],
        &["HSET", "hash", "f1", "v1", "f2", "v2"],
        &["SADD", "iset", "1", "2", "3"],
        &["SADD", "set", "a", "b", "c"],
        &["ZADD", "zset", "1", "a", "2.5", "b", "-3", "c"],
        &["XADD", "stream", "1-1", "f", "v"],
        &["XADD", "stream", "2-1", "f", "w", "g", "h"],
        &["XGROUP", "CREATE", "stream", "grp", "0"],
        &[
            "XREADGROUP",
            "GROUP",
            "grp",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "stream",
            ">",
        ],
        &["XGROUP", "CREATECONSUMER", "stream", "grp", "bob"],
    ];
    for a in cmds {
        let r = text(c, a).await;
        assert!(!r.starts_with('-'), "{a:?}: {r}");
    }
    // Big values: a hashtable hash, a skiplist zset, a quicklist of
    // several nodes.
    let mut big: Vec<String> = vec!["HSET".into(), "bighash".into()];
    let mut bz: Vec<String> = vec!["ZADD".into(), "bigzset".into()];
    let mut bl: Vec<String> = vec!["RPUSH".into(), "biglist".into()];
    for i in 0..300 {
        big.push(format!("field{i}"));
        big.push(format!("value{i}"));
        bz.push(i.to_string());
        bz.push(format!("member{i}"));
        bl.push(format!("element-{i}-{}", "x".repeat(40)));
    }
    for v in [big, bz, bl] {
        let a: Vec<&str> = v.iter().map(String::as_str).collect();
        assert!(!text(c, &a).await.starts_with('-'));
    }
    [
        "str", "int", "ttl", "list", "hash", "iset", "set", "zset", "stream", "bighash", "bigzset",
        "biglist",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// DUMP of every key (the payloads are Redis 7.0's bytes on both sides),
/// as (key, hex) pairs.
async fn dumps(
    c: &mut redis::aio::MultiplexedConnection,
    keys: &[String],
) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for k in keys {
        let hex = match q(c, &["DUMP", k]).await {
            redis::Value::BulkString(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
            other => format!("{other:?}"),
        };
        v.push((k.clone(), hex));
    }
    v
}

/// Asserts two DUMP lists are equal, naming the first key that differs.
/// Hash-table values (`set`, `bighash`) are written in their dict's order,
/// which differs between two servers: those are compared by content
/// (`contents`).
fn same_dumps(a: &[(String, String)], b: &[(String, String)]) {
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.0, y.0);
        if x.0 == "set" || x.0 == "bighash" {
            continue;
        }
        assert!(
            x.1 == y.1,
            "key {}: {} vs {}",
            x.0,
            &x.1[..x.1.len().min(300)],
            &y.1[..y.1.len().min(300)]
        );
    }
    assert_eq!(a.len(), b.len());
}

/// The hash-table values' contents, sorted.
async fn contents(c: &mut redis::aio::MultiplexedConnection) -> (Vec<String>, Vec<String>) {
    let mut set: Vec<String> = redis::cmd("SMEMBERS")
        .arg("set")
        .query_async(c)
        .await
        .unwrap();
    let mut hash: Vec<String> = redis::cmd("HGETALL")
        .arg("bighash")
        .query_async(c)
        .await
        .unwrap();
    set.sort();
    hash.sort();
    (set, hash)
}

async fn exists(c: &mut Raw, keys: &[String]) -> String {
    let mut a = vec!["EXISTS"];
    a.extend(keys.iter().map(String::as_str));
    text(c, &a).await
}

fn migrate_args<'a>(port: &'a str, extra: &[&'a str], keys: &'a [String]) -> Vec<&'a str> {
    let mut a = vec!["MIGRATE", "127.0.0.1", port, "", "0", "5000"];
    a.extend_from_slice(extra);
    a.push("KEYS");
    a.extend(keys.iter().map(String::as_str));
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_every_type_to_redlog_and_deletions_persist() {
    let dir = temp_dir();
    let src = start_in(&dir, &[]).await;
    let dst = start().await;
    let mut a = Raw::connect(src.local_addr()).await;
    let keys = fill(&mut a).await;
    let mut ca = client(src.local_addr()).await;
    let before = dumps(&mut ca, &keys).await;
    let port = dst.local_addr().port().to_string();
    assert_eq!(
        text(&mut a, &migrate_args(&port, &[], &keys)).await,
        "+OK\r\n"
    );
    assert_eq!(exists(&mut a, &keys).await, ":0\r\n");
    let mut cb = client(dst.local_addr()).await;
    same_dumps(&dumps(&mut cb, &keys).await, &before);
    let mut b = Raw::connect(dst.local_addr()).await;
    let pttl = text(&mut b, &["PTTL", "ttl"]).await;
    let ms: i64 = pttl.trim_start_matches(':').trim().parse().unwrap();
    assert!(ms > 400_000 && ms <= 500_000, "{pttl}");
    assert_eq!(text(&mut b, &["PTTL", "str"]).await, ":-1\r\n");
    // The group, its consumers and the pending entry arrived.
    assert_eq!(
        text(&mut b, &["XPENDING", "stream", "grp"]).await,
        "*4\r\n:1\r\n$3\r\n1-1\r\n$3\r\n1-1\r\n*1\r\n*2\r\n$5\r\nalice\r\n$1\r\n1\r\n"
    );
    // Nothing left to migrate.
    assert_eq!(
        text(&mut a, &migrate_args(&port, &[], &keys)).await,
        "+NOKEY\r\n"
    );
    // The deletions were logged: a restart still has no key.
    drop(a);
    drop(ca);
    src.shutdown().await;
    let src = start_in(&dir, &[]).await;
    let mut a = Raw::connect(src.local_addr()).await;
    assert_eq!(text(&mut a, &["DBSIZE"]).await, ":0\r\n");
    // The keys written on the target were logged there as RESTOREs.
    assert_eq!(
        text(&mut b, &["DBSIZE"]).await,
        format!(":{}\r\n", keys.len())
    );
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_replace_busykey_and_errors() {
    let src = start().await;
    let dst = start().await;
    let port = dst.local_addr().port().to_string();
    let mut a = Raw::connect(src.local_addr()).await;
    let mut b = Raw::connect(dst.local_addr()).await;
    text(&mut a, &["SET", "k", "1"]).await;
    let m = |extra: &[&'static str]| {
        let mut v = vec!["MIGRATE", "127.0.0.1", "", "k", "0", "1000"];
        v.extend_from_slice(extra);
        v
    };
    let with_port = |mut v: Vec<&'static str>, p: &'static str| {
        v[2] = p;
        v
    };
    let port: &'static str = Box::leak(port.into_boxed_str());
    // COPY keeps the source key.
    assert_eq!(
        text(&mut a, &with_port(m(&["COPY"]), port)).await,
        "+OK\r\n"
    );
    assert_eq!(text(&mut a, &["GET", "k"]).await, "$1\r\n1\r\n");
    // Again: the target has it (BUSYKEY passed through), the source keeps it.
    assert_eq!(
        text(&mut a, &with_port(m(&["COPY"]), port)).await,
        "-ERR Target instance replied with error: BUSYKEY Target key name already exists.\r\n"
    );
    assert_eq!(text(&mut a, &["GET", "k"]).await, "$1\r\n1\r\n");
    text(&mut a, &["SET", "k", "2"]).await;
    // REPLACE overwrites on the target and deletes here.
    assert_eq!(
        text(&mut a, &with_port(m(&["REPLACE"]), port)).await,
        "+OK\r\n"
    );
    assert_eq!(text(&mut a, &["EXISTS", "k"]).await, ":0\r\n");
    assert_eq!(text(&mut b, &["GET", "k"]).await, "$1\r\n2\r\n");
    // A database the target does not have.
    text(&mut a, &["SET", "k", "3"]).await;
    let mut v = with_port(m(&[]), port);
    v[4] = "99";
    assert_eq!(
        text(&mut a, &v).await,
        "-ERR Target instance replied with error: ERR DB index is out of range\r\n"
    );
    assert_eq!(text(&mut a, &["GET", "k"]).await, "$1\r\n3\r\n");
    // Another database: SELECT is sent again after the error.
    v[4] = "3";
    assert_eq!(text(&mut a, &v).await, "+OK\r\n");
    text(&mut b, &["SELECT", "3"]).await;
    assert_eq!(text(&mut b, &["GET", "k"]).await, "$1\r\n3\r\n");
    // Missing keys.
    assert_eq!(text(&mut a, &with_port(m(&[]), port)).await, "+NOKEY\r\n");
    let nokeys = ["MIGRATE", "127.0.0.1", port, "", "0", "1000", "KEYS"];
    assert_eq!(text(&mut a, &nokeys).await, "+NOKEY\r\n");
    // Syntax and argument errors, in Redis's order.
    text(&mut a, &["SET", "k", "4"]).await;
    let cases: &[(&[&str], &str)] = &[
        (&["KEYS", "k"], "-ERR When using MIGRATE KEYS option, the key argument must be set to the empty string\r\n"),
        (&["FOO"], "-ERR syntax error\r\n"),
        (&["AUTH"], "-ERR syntax error\r\n"),
        (&["AUTH2", "u"], "-ERR syntax error\r\n"),
        (&["COPY", "AUTH2", "u"], "-ERR syntax error\r\n"),
    ];
    for (extra, want) in cases {
        let mut v = vec!["MIGRATE", "127.0.0.1", port, "k", "0", "1000"];
        v.extend_from_slice(extra);
        assert_eq!(text(&mut a, &v).await, *want, "{v:?}");
    }
    let bad_db = ["MIGRATE", "127.0.0.1", port, "k", "x", "1000"];
    let bad_timeout = ["MIGRATE", "127.0.0.1", port, "k", "0", "y"];
    for v in [bad_db, bad_timeout] {
        assert_eq!(
            text(&mut a, &v).await,
            "-ERR value is not an integer or out of range\r\n"
        );
    }
    assert_eq!(
        text(&mut a, &["MIGRATE", "127.0.0.1", port, "k", "0"]).await,
        "-ERR wrong number of arguments for 'migrate' command\r\n"
    );
    // Nothing listens there: the connection is refused, reported as
    // Redis's non-blocking connect reports it (the write fails).
    let closed = free_port().to_string();
    assert_eq!(
        text(&mut a, &["MIGRATE", "127.0.0.1", &closed, "k", "0", "1000"]).await,
        "-IOERR error or timeout writing to target instance\r\n"
    );
    assert_eq!(
        text(
            &mut a,
            &["MIGRATE", "no-such-host.invalid", "1", "k", "0", "1000"]
        )
        .await,
        "-IOERR error or timeout connecting to the client\r\n"
    );
    assert_eq!(text(&mut a, &["GET", "k"]).await, "$1\r\n4\r\n");
    // Inside MULTI/EXEC and a script, MIGRATE runs under the lock.
    let r = text(&mut a, &["MULTI"]).await;
    assert_eq!(r, "+OK\r\n");
    let mut v = vec!["MIGRATE", "127.0.0.1", port, "k", "5", "1000"];
    assert_eq!(text(&mut a, &v).await, "+QUEUED\r\n");
    assert_eq!(text(&mut a, &["EXEC"]).await, "*1\r\n+OK\r\n");
    assert_eq!(text(&mut a, &["EXISTS", "k"]).await, ":0\r\n");
    text(&mut a, &["SET", "k", "5"]).await;
    v[4] = "6";
    let script = format!("return redis.call('migrate','127.0.0.1','{port}','k','6','1000')");
    assert_eq!(text(&mut a, &["EVAL", &script, "0"]).await, "+OK\r\n");
    assert_eq!(text(&mut a, &["EXISTS", "k"]).await, ":0\r\n");
    text(&mut b, &["SELECT", "6"]).await;
    assert_eq!(text(&mut b, &["GET", "k"]).await, "$1\r\n5\r\n");
    // COMMAND GETKEYS as Redis's migrateGetKeys.
    assert_eq!(
        text(
            &mut a,
            &["COMMAND", "GETKEYS", "MIGRATE", "h", "1", "", "0", "1", "COPY", "KEYS", "x", "y"]
        )
        .await,
        "*2\r\n$1\r\nx\r\n$1\r\ny\r\n"
    );
    assert_eq!(
        text(
            &mut a,
            &["COMMAND", "GETKEYS", "MIGRATE", "h", "1", "k", "0", "1"]
        )
        .await,
        "*1\r\n$1\r\nk\r\n"
    );
    assert_eq!(
        text(
            &mut a,
            &["COMMAND", "GETKEYS", "MIGRATE", "h", "1", "k", "0", "1", "KEYS", "a"]
        )
        .await,
        "-ERR Invalid arguments specified for command\r\n"
    );
    assert_eq!(
        text(
            &mut a,
            &[
                "COMMAND", "GETKEYS", "MIGRATE", "h", "1", "", "0", "1", "AUTH", "keys", "KEYS",
                "b"
            ]
        )
        .await,
        "*1\r\n$1\r\nb\r\n"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_and_auth2() {
    let src = start().await;
    let dst = start_with(&[("requirepass", "secret")]).await;
    let port: &'static str = Box::leak(dst.local_addr().port().to_string().into_boxed_str());
    let mut b = Raw::connect(dst.local_addr()).await;
    text(&mut b, &["AUTH", "secret"]).await;
    assert_eq!(
        text(
            &mut b,
            &["ACL", "SETUSER", "mover", "on", ">pw", "~*", "+@all"]
        )
        .await,
        "+OK\r\n"
    );
    let mut a = Raw::connect(src.local_addr()).await;
    text(&mut a, &["MSET", "k1", "a", "k2", "b", "k3", "c"]).await;
    let base = ["MIGRATE", "127.0.0.1", port, "k1", "0", "1000"];
    assert_eq!(
        text(&mut a, &base).await,
        "-ERR Target instance replied with error: NOAUTH Authentication required.\r\n"
    );
    let mut v = base.to_vec();
    v.extend_from_slice(&["AUTH", "wrong"]);
    assert_eq!(
        text(&mut a, &v).await,
        "-ERR Target instance replied with error: WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    let mut v = base.to_vec();
    v.extend_from_slice(&["AUTH", "secret"]);
    assert_eq!(text(&mut a, &v).await, "+OK\r\n");
    let v = [
        "MIGRATE",
        "127.0.0.1",
        port,
        "",
        "0",
        "1000",
        "AUTH2",
        "mover",
        "pw",
        "KEYS",
        "k2",
        "k3",
    ];
    assert_eq!(text(&mut a, &v).await, "+OK\r\n");
    assert_eq!(text(&mut a, &["DBSIZE"]).await, ":0\r\n");
    assert_eq!(
        text(&mut b, &["MGET", "k1", "k2", "k3"]).await,
        "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
    );
    src.shutdown().await;
    dst.shutdown().await;
}

/// A target played by the test: accepts connections and hands each
/// request's bytes to the test, which decides when to answer.
struct FakeTarget {
    listener: TcpListener,
}

impl FakeTarget {
    fn new() -> FakeTarget {
        FakeTarget {
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
        }
    }
    fn port(&self) -> String {
        self.listener.local_addr().unwrap().port().to_string()
    }
}

/// Reads `n` RESP commands (arrays of bulk strings) from `r`.
fn read_commands(r: &mut BufReader<std::net::TcpStream>, n: usize) -> Vec<Vec<Vec<u8>>> {
    let mut cmds = Vec::new();
    for _ in 0..n {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let argc: usize = line.trim()[1..].parse().unwrap();
        let mut args = Vec::new();
        for _ in 0..argc {
            line.clear();
            r.read_line(&mut line).unwrap();
            let len: usize = line.trim()[1..].parse().unwrap();
            let mut buf = vec![0u8; len + 2];
            r.read_exact(&mut buf).unwrap();
            buf.truncate(len);
            args.push(buf);
        }
        cmds.push(args);
    }
    cmds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_runs_off_the_lock_and_changed_keys_stay() {
    let src = start().await;
    let fake = FakeTarget::new();
    let port = fake.port();
    let mut a = Raw::connect(src.local_addr()).await;
    text(&mut a, &["MSET", "k1", "one", "k2", "two"]).await;
    text(&mut a, &["PEXPIRE", "k2", "100000"]).await;
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    let listener = fake.listener.try_clone().unwrap();
    let target = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        // AUTH, SELECT, two RESTOREs.
        let first = read_commands(&mut r, 4);
        seen_tx.send(first).unwrap();
        rx.recv().unwrap();
        w.write_all(b"+OK\r\n+OK\r\n+OK\r\n+OK\r\n").unwrap();
        // The second MIGRATE reuses the connection: no SELECT.
        let second = read_commands(&mut r, 1);
        seen_tx.send(second).unwrap();
        w.write_all(b"+OK\r\n").unwrap();
        // Then the target goes away: the next MIGRATE retries once on
        // a new connection.
        drop(w);
        drop(r);
        let (s, _) = listener.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let third = read_commands(&mut r, 3);
        seen_tx.send(third).unwrap();
        w.write_all(b"+OK\r\n+OK\r\n-ERR boom\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(200));
    });
    let mut m = Raw::connect(src.local_addr()).await;
    let args = [
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "2",
        "5000",
        "REPLACE",
        "AUTH",
        "pw",
        "KEYS",
        "k1",
        "k2",
    ];
    let a2: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    m.send(&resp(&a2)).await;
    let first = tokio::task::spawn_blocking(move || {
        let f = seen_rx.recv().unwrap();
        (f, seen_rx)
    })
    .await
    .unwrap();
    let (cmds, seen_rx) = first;
    let names: Vec<String> = cmds
        .iter()
        .map(|c| String::from_utf8_lossy(&c[0]).into_owned())
        .collect();
    assert_eq!(names, ["AUTH", "SELECT", "RESTORE", "RESTORE"]);
    assert_eq!(cmds[0][1], b"pw");
    assert_eq!(cmds[1][1], b"2");
    assert_eq!(cmds[2][1], b"k1");
    assert_eq!(cmds[2][2], b"0");
    assert_eq!(cmds[2].len(), 5);
    assert_eq!(cmds[2][4], b"REPLACE");
    let ttl: i64 = String::from_utf8_lossy(&cmds[3][2]).parse().unwrap();
    assert!(ttl > 90_000 && ttl <= 100_000, "{ttl}");
    // The MIGRATE waits on the target: the keyspace is free meanwhile.
    assert_eq!(text(&mut a, &["APPEND", "k2", "!"]).await, ":4\r\n");
    tx.send(()).unwrap();
    assert_eq!(read_all(&mut m).await, "+OK\r\n");
    // k1 is gone; k2 changed during the exchange and stays.
    assert_eq!(
        text(&mut a, &["MGET", "k1", "k2"]).await,
        "*2\r\n$-1\r\n$4\r\ntwo!\r\n"
    );
    text(&mut a, &["SET", "k3", "x"]).await;
    let r = text(&mut m, &["MIGRATE", "127.0.0.1", &port, "k3", "2", "5000"]).await;
    assert_eq!(r, "+OK\r\n");
    let (cmds, seen_rx) = tokio::task::spawn_blocking(move || {
        let f = seen_rx.recv().unwrap();
        (f, seen_rx)
    })
    .await
    .unwrap();
    assert_eq!(cmds[0][0], b"RESTORE");
    assert_eq!(cmds[0].len(), 4);
    // The cached connection is closed by the target: one retry, a new
    // connection, SELECT again; the first key acknowledged is deleted,
    // the target's error replied.
    text(&mut a, &["MSET", "k4", "x", "k5", "y"]).await;
    let args = [
        "MIGRATE",
        "127.0.0.1",
        &port,
        "",
        "0",
        "5000",
        "KEYS",
        "k4",
        "k5",
    ];
    assert_eq!(
        text(&mut m, &args).await,
        "-ERR Target instance replied with error: ERR boom\r\n"
    );
    let cmds = tokio::task::spawn_blocking(move || seen_rx.recv().unwrap())
        .await
        .unwrap();
    assert_eq!(cmds[0][0], b"SELECT");
    assert_eq!(cmds[1][0], b"RESTORE");
    assert_eq!(cmds[2][1], b"k5");
    assert_eq!(
        text(&mut a, &["MGET", "k4", "k5"]).await,
        "*2\r\n$-1\r\n$1\r\ny\r\n"
    );
    tokio::task::spawn_blocking(move || target.join().unwrap())
        .await
        .unwrap();
    src.shutdown().await;
}

/// A redis-server 7.0 process on a free port, when one is installed.
fn redis_server() -> Option<(KillOnDrop, u16)> {
    let port = free_port();
    let dir = temp_dir();
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--dir", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let child = KillOnDrop(child);
    wait_ping(port);
    Some((child, port))
}

async fn migrate_with_redis(src: &ServerHandle, port: u16, keys: &[String]) {
    let mut a = Raw::connect(src.local_addr()).await;
    let mut ca = client(src.local_addr()).await;
    let before = dumps(&mut ca, keys).await;
    let held = contents(&mut ca).await;
    let p = port.to_string();
    assert_eq!(text(&mut a, &migrate_args(&p, &[], keys)).await, "+OK\r\n");
    assert_eq!(exists(&mut a, keys).await, ":0\r\n");
    let rc = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut rc = rc.get_multiplexed_async_connection().await.unwrap();
    // redis-server holds the very values: its DUMPs are redlog's bytes.
    same_dumps(&dumps(&mut rc, keys).await, &before);
    assert_eq!(contents(&mut rc).await, held);
    // And back: redis-server migrates them to redlog.
    let mut args = vec!["MIGRATE", "127.0.0.1"];
    let lp = src.local_addr().port().to_string();
    args.push(&lp);
    args.extend_from_slice(&["", "0", "5000", "KEYS"]);
    args.extend(keys.iter().map(String::as_str));
    let back = q(&mut rc, &args).await;
    assert_eq!(back, redis::Value::Okay);
    same_dumps(&dumps(&mut ca, keys).await, &before);
    assert_eq!(contents(&mut ca).await, held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_every_type_to_redis_server_and_back() {
    let Some((_redis, port)) = redis_server() else {
        eprintln!("redis-server is not installed: the redis-server half of this test is skipped");
        return;
    };
    let src = start().await;
    let mut a = Raw::connect(src.local_addr()).await;
    let keys = fill(&mut a).await;
    migrate_with_redis(&src, port, &keys).await;
    src.shutdown().await;
}
