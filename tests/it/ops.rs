//! The drop-in binary's remaining operator settings (issue 17):
//! `enable-protected-configs`, `oom-score-adj`, `always-show-logo`, the
//! start-up listing of settings without effect, DEBUG RELOAD, and the INFO
//! fields redis_exporter reads. Replies compared with redis-server 7.0.15.

use crate::common;
use common::*;
use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn failed(name: &str, why: &str) -> Vec<u8> {
    format!("-ERR CONFIG SET failed (possibly related to argument '{name}') - {why}\r\n")
        .into_bytes()
}

/// `dir` and `dbfilename` are Redis's PROTECTED_CONFIGs: refused by CONFIG
/// SET unless `enable-protected-configs` is `yes`, or `local` and the
/// client is local. They used to be refused whatever the setting.
#[tokio::test]
async fn protected_configs_follow_enable_protected_configs() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    for name in ["dir", "dbfilename"] {
        c.check(
            &resp(&[b"CONFIG", b"SET", name.as_bytes(), b"x"]),
            &failed(name, "can't set protected config"),
        )
        .await;
    }
    c.check(
        &resp(&[b"CONFIG", b"SET", b"enable-protected-configs", b"yes"]),
        &failed("enable-protected-configs", "can't set immutable config"),
    )
    .await;
    s.shutdown().await;

    for setting in ["yes", "local"] {
        let s = start_with(&[("enable-protected-configs", setting)]).await;
        let dir = s.shared().config.read().dir.clone();
        let mut c = Raw::connect(s.local_addr()).await;
        c.check(
            &resp(&[b"CONFIG", b"SET", b"dbfilename", b"other.rdb"]),
            b"+OK\r\n",
        )
        .await;
        c.check(
            &resp(&[b"CONFIG", b"GET", b"dbfilename"]),
            b"*2\r\n$10\r\ndbfilename\r\n$9\r\nother.rdb\r\n",
        )
        .await;
        c.check(
            &resp(&[b"CONFIG", b"SET", b"dbfilename", b"a/b.rdb"]),
            &failed("dbfilename", "dbfilename can't be a path, just a filename"),
        )
        .await;
        c.check(
            &resp(&[b"CONFIG", b"SET", b"dir", b"/nonexistent-redlog-dir"]),
            &failed("dir", "No such file or directory"),
        )
        .await;
        // The directory in use is accepted; another is refused (the WAL
        // and the stream logs stay open where they are).
        c.check(
            &resp(&[b"CONFIG", b"SET", b"dir", dir.as_bytes()]),
            b"+OK\r\n",
        )
        .await;
        let e = raw_cmd(&mut c, &["CONFIG", "SET", "dir", "/tmp"]).await;
        assert!(
            e.starts_with("-ERR CONFIG SET failed (possibly related to argument 'dir') - redlog cannot move its data directory while running"),
            "{e}"
        );
        s.shutdown().await;
    }
}

/// `local` lets only local clients set protected configs: a client
/// connecting through a non-loopback address gets Redis's refusal.
#[tokio::test]
async fn protected_configs_local_refuses_remote_clients() {
    let s = start_with(&[
        ("enable-protected-configs", "local"),
        ("bind", "0.0.0.0"),
        ("protected-mode", "no"),
    ])
    .await;
    let port = s.local_addr().port();
    let Some(ip) = non_loopback_ipv4() else {
        panic!("this machine has no non-loopback IPv4 address");
    };
    let mut remote = Raw::connect(std::net::SocketAddr::from((ip, port))).await;
    remote
        .check(
            &resp(&[b"CONFIG", b"SET", b"dbfilename", b"r.rdb"]),
            &failed("dbfilename", "can't set protected config"),
        )
        .await;
    let mut local = Raw::connect(std::net::SocketAddr::from(([127, 0, 0, 1], port))).await;
    local
        .check(
            &resp(&[b"CONFIG", b"SET", b"dbfilename", b"l.rdb"]),
            b"+OK\r\n",
        )
        .await;
    s.shutdown().await;
}

fn non_loopback_ipv4() -> Option<std::net::Ipv4Addr> {
    let trie = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    let lines: Vec<&str> = trie.lines().collect();
    lines.windows(2).find_map(|w| {
        (w[1].trim() == "/32 host LOCAL")
            .then(|| w[0].trim().strip_prefix("|-- ")?.parse().ok())
            .flatten()
            .filter(|ip: &std::net::Ipv4Addr| !ip.is_loopback())
    })
}

/// Starts the binary with `args` (stderr piped, stdout not a tty).
fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_redlog"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start redlog")
}

/// Stops a child with SIGTERM and returns its stderr.
fn stop(mut child: Child) -> String {
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "server did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut s = String::new();
    child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
    s
}

fn oom_score_adj(pid: u32) -> i64 {
    std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// `oom-score-adj` writes /proc/self/oom_score_adj as Redis does: at start
/// and on CONFIG SET; `relative` (shown as `yes`) adds the master value to
/// the score the process started with, `absolute` writes it, `no` puts
/// the original back. It used to be accepted and ignored. (Raising the
/// score needs no privilege; the test only raises it.)
#[test]
fn oom_score_adj_is_applied() {
    let base = oom_score_adj(std::process::id());
    let dir = temp_dir();
    let port = free_port();
    let child = spawn(&[
        "--port",
        &port.to_string(),
        "--dir",
        dir.to_str().unwrap(),
        "--oom-score-adj",
        "absolute",
        "--oom-score-adj-values",
        &format!("{} 600 700", base + 100),
    ]);
    let pid = child.id();
    let mut c = wait_ping(port);
    // Applied after "Ready", as Redis does before its event loop.
    let deadline = Instant::now() + Duration::from_secs(30);
    while oom_score_adj(pid) != base + 100 {
        assert!(Instant::now() < deadline, "oom_score_adj not applied");
        std::thread::sleep(Duration::from_millis(10));
    }
    let set = |c: &mut redis::Connection, k: &str, v: &str| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(k)
            .arg(v)
            .query::<String>(c)
    };
    set(
        &mut c,
        "oom-score-adj-values",
        &format!("{} 600 700", base + 150),
    )
    .unwrap();
    assert_eq!(oom_score_adj(pid), base + 150);
    set(&mut c, "oom-score-adj", "relative").unwrap();
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("oom-score-adj")
        .query(&mut c)
        .unwrap();
    assert_eq!(v[1], "yes");
    assert_eq!(oom_score_adj(pid), (2 * base + 150).clamp(-1000, 1000));
    set(&mut c, "oom-score-adj", "no").unwrap();
    assert_eq!(oom_score_adj(pid), base);
    // Redis's validation texts.
    for (v, why) in [
        ("0 200", "wrong number of arguments"),
        ("0  200 800", "wrong number of arguments"),
        (
            "0 200 x",
            "Invalid oom-score-adj-values, elements must be between -2000 and 2000.",
        ),
        (
            "0 200 2001",
            "Invalid oom-score-adj-values, elements must be between -2000 and 2000.",
        ),
    ] {
        let e = set(&mut c, "oom-score-adj-values", v).unwrap_err();
        assert_eq!(
            e.detail(),
            Some(format!("CONFIG SET failed (possibly related to argument 'oom-score-adj-values') - {why}").as_str()),
            "{v}"
        );
    }
    // strtoll as Redis: `+5`, `007`, and an empty last value (0).
    set(&mut c, "oom-score-adj-values", "+5 007 ").unwrap();
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("oom-score-adj-values")
        .query(&mut c)
        .unwrap();
    assert_eq!(v[1], "5 7 0");
    let log = stop(child);
    assert!(
        log.contains(
            "The oom-score-adj-values configuration may not work for non-privileged processes!"
        ),
        "{log}"
    );
}

/// `always-show-logo yes` prints redis-server's ASCII logo with redlog's
/// version, the port and the pid; without it (and with stdout not a
/// terminal) one `Running mode=standalone, port=N.` line, as Redis.
#[test]
fn always_show_logo() {
    let dir = temp_dir();
    let port = free_port();
    let child = spawn(&[
        "--port",
        &port.to_string(),
        "--dir",
        dir.to_str().unwrap(),
        "--always-show-logo",
        "yes",
    ]);
    let pid = child.id();
    wait_ping(port);
    let log = stop(child);
    for line in [
        "                _._                                                  \n".to_string(),
        format!(
            "      _.-``    `.  `_.  ''-._           redlog {} (Redis 7.0.15 compatible) 64 bit\n",
            redlog::VERSION
        ),
        " (    '      ,       .-`  | `,    )     Running in standalone mode\n".to_string(),
        format!(" |`-._`-...-` __...-.``-._|'` _.-'|     Port: {port}\n"),
        format!(" |    `-._   `._    /     _.-'    |     PID: {pid}\n"),
        "              `-.__.-'                                               \n".to_string(),
    ] {
        assert!(log.contains(&line), "{line:?} in {log}");
    }
    assert!(!log.contains("Running mode="), "{log}");
    // The startup settings list does not name the implemented ones.
    assert!(!log.contains("have no effect"), "{log}");

    let port = free_port();
    let child = spawn(&["--port", &port.to_string(), "--dir", dir.to_str().unwrap()]);
    wait_ping(port);
    let log = stop(child);
    assert!(
        log.contains(&format!("* Running mode=standalone, port={port}.\n")),
        "{log}"
    );
    assert!(!log.contains("_._"), "{log}");
}

/// A config file with every directive redis-server 7.0 knows
/// (tests/data/redis-conf) starts the binary: each is implemented or
/// accepted, and the ones without effect are listed once, in one line,
/// which names every such parameter and none that redlog implements.
#[test]
fn every_redis_7_directive_starts_and_is_listed_once() {
    let dir = temp_dir();
    let port = free_port();
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/redis-conf/all-directives-7.0.conf"),
    )
    .unwrap();
    let conf = dir.join("all.conf");
    std::fs::write(
        &conf,
        format!("{text}\nport {port}\ndir {}\n", dir.join("data").display()),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let child = spawn(&[conf.to_str().unwrap()]);
    let mut c = wait_ping(port);
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let log = stop(child);
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("have no effect in redlog: "))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    let listed: std::collections::BTreeSet<&str> = lines[0]
        .split("have no effect in redlog: ")
        .nth(1)
        .unwrap()
        .split(", ")
        .collect();
    let expected: std::collections::BTreeSet<&str> =
        redlog::config::NO_EFFECT.iter().copied().collect();
    assert_eq!(listed, expected);
    for implemented in [
        "oom-score-adj",
        "oom-score-adj-values",
        "syslog-enabled",
        "syslog-ident",
        "syslog-facility",
        "always-show-logo",
        "enable-protected-configs",
        "enable-debug-command",
    ] {
        assert!(!listed.contains(implemented), "{implemented}");
    }
    assert!(log.contains("Ready to accept connections"), "{log}");
}

/// DEBUG RELOAD: compacts (writes a base) and rebuilds the keyspace from
/// disk; every key, value and expiry is the same after, in every variant
/// Redis accepts, and the data survives a restart. Redis's option error;
/// NOFLUSH without MERGE on a non-empty dataset is refused (Redis kills
/// itself on the duplicate key).
#[tokio::test]
async fn debug_reload_compacts_and_replays() {
    let dir = temp_dir();
    let s = start_in(&dir, &[("enable-debug-command", "yes")]).await;
    let mut c = Raw::connect(s.local_addr()).await;
    for cmd in [
        vec!["SET", "s", "v"],
        vec!["SET", "n", "12345"],
        vec!["SET", "t", "x", "PX", "100000000"],
        vec!["RPUSH", "l", "a", "b", "c"],
        vec!["HSET", "h", "f", "1", "g", "2"],
        vec!["SADD", "set", "a", "1"],
        vec!["ZADD", "z", "1.5", "a", "-2", "b"],
        vec!["PFADD", "hll", "a", "b"],
        vec!["SELECT", "3"],
        vec!["SET", "db3", "here"],
        vec!["SELECT", "0"],
        vec!["XADD", "st", "1-1", "f", "v"],
    ] {
        let r = raw_cmd(&mut c, &cmd).await;
        assert!(!r.starts_with('-'), "{cmd:?}: {r}");
    }
    let before = dump_all(&s);
    assert_eq!(before.len(), 10);
    let rewrites = || {
        s.shared()
            .persist
            .as_ref()
            .unwrap()
            .rewrites
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let r0 = rewrites();
    c.check(&resp(&[b"DEBUG", b"RELOAD"]), b"+OK\r\n").await;
    assert_eq!(rewrites(), r0 + 1, "a base was written");
    assert_eq!(dump_all(&s), before);
    c.check(&resp(&[b"DEBUG", b"RELOAD", b"NOSAVE"]), b"+OK\r\n")
        .await;
    c.check(
        &resp(&[b"DEBUG", b"reload", b"noflush", b"merge"]),
        b"+OK\r\n",
    )
    .await;
    assert_eq!(rewrites(), r0 + 2);
    assert_eq!(dump_all(&s), before);
    c.check(
        &resp(&[b"DEBUG", b"RELOAD", b"NOFLUSH"]),
        b"-ERR Error trying to load the RDB dump\r\n",
    )
    .await;
    c.check(
        &resp(&[b"DEBUG", b"RELOAD", b"FOO"]),
        b"-ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.\r\n",
    )
    .await;
    // Inside EXEC it is refused (its reply would follow EXEC's array).
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    c.check(&resp(&[b"DEBUG", b"RELOAD"]), b"+QUEUED\r\n").await;
    c.check(
        &resp(&[b"EXEC"]),
        b"*1\r\n-ERR DEBUG RELOAD cannot run inside MULTI/EXEC in redlog\r\n",
    )
    .await;
    assert_eq!(dump_all(&s), before);
    // Writes after a reload are logged as usual.
    c.check(&resp(&[b"SET", b"after", b"1"]), b"+OK\r\n").await;
    c.check(
        &resp(&[b"XADD", b"st", b"2-1", b"f", b"w"]),
        b"$3\r\n2-1\r\n",
    )
    .await;
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    let after = dump_all(&s);
    assert_eq!(after.len(), before.len() + 1);
    let mut c = Raw::connect(s.local_addr()).await;
    let r = raw_cmd(&mut c, &["XLEN", "st"]).await;
    assert_eq!(r, ":2\r\n");
    s.shutdown().await;
}

/// The INFO fields oliver006/redis_exporter reads that redis-server 7.0
/// has (tests/data/redis_exporter_info_fields.txt, with its source) are
/// all in redlog's INFO, under Redis's names.
#[tokio::test]
async fn info_has_the_fields_redis_exporter_reads() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(&resp(&[b"SET", b"k", b"v"]), b"+OK\r\n").await;
    let info = raw_cmd(&mut c, &["INFO", "everything"]).await;
    let names: std::collections::HashSet<&str> = info
        .split("\r\n")
        .filter_map(|l| l.split_once(':').map(|(k, _)| k))
        .collect();
    let list = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/redis_exporter_info_fields.txt"),
    )
    .unwrap();
    let missing: Vec<&str> = list
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|f| !names.contains(f))
        .collect();
    assert!(missing.is_empty(), "missing INFO fields: {missing:?}");
    // The prefixed families it parses.
    for prefix in [
        "\r\ncmdstat_set:calls=",
        "\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n",
        "\r\nlatency_percentiles_usec_set:p50=",
    ] {
        assert!(info.contains(prefix), "{prefix}");
    }
    s.shutdown().await;
}
