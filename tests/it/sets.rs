//! Set commands end to end: exact replies (bytes recorded from redis-server
//! 7.0.15), errors and WRONGTYPE, random picks and pops, the effects logged
//! for the WAL (SPOP as SREM of what it popped), SSCAN under churn, restart
//! and compaction replay, and kill -9 during set and hash writes.

use crate::common;

use common::*;
use redlog::db::effect::Effect;
use redlog::db::Value;
use redlog::server::ServerHandle;
use std::collections::HashSet;
use std::time::Duration;

/// Runs one command in-process (RESP2) and returns its reply bytes and the
/// effects it produced (taken from the keyspace, so they are not logged).
fn run(s: &ServerHandle, args: &[&[u8]]) -> (String, Vec<Effect>) {
    use redlog::node::{Client, ClientHandle};
    use redlog::protocol::Out;
    use redlog::server::execute;
    use std::sync::Arc;
    let shared = s.shared();
    let addr = s.local_addr();
    let handle = Arc::new(ClientHandle::new(u64::MAX - 1, addr, addr, -1));
    let mut client = Client::new(handle, true);
    let mut out = Out::new(false);
    let args = args
        .iter()
        .map(|a| bytes::Bytes::copy_from_slice(a))
        .collect();
    let mut ks = shared.ks.lock();
    execute(shared, &mut ks, &mut client, &mut out, args);
    let effects = ks.take_effects();
    (String::from_utf8_lossy(&out.buf).into_owned(), effects)
}

async fn q<T: redis::FromRedisValue>(
    c: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<T> {
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query_async(c).await
}

#[tokio::test]
async fn exact_replies_resp2_and_resp3() {
    let s = start().await;
    let mut r = Raw::connect(s.local_addr()).await;
    r.check(&resp(&[b"SADD", b"s", b"3", b"1", b"2", b"1"]), b":3\r\n")
        .await;
    // An intset replies in ascending order.
    r.check(
        &resp(&[b"SMEMBERS", b"s"]),
        b"*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n",
    )
    .await;
    r.check(&resp(&[b"OBJECT", b"ENCODING", b"s"]), b"$6\r\nintset\r\n")
        .await;
    r.check(
        &resp(&[b"SMISMEMBER", b"s", b"1", b"01", b"9"]),
        b"*3\r\n:1\r\n:0\r\n:0\r\n",
    )
    .await;
    r.check(
        &resp(&[b"SPOP", b"s", b"-1"]),
        b"-ERR value is out of range, must be positive\r\n",
    )
    .await;
    r.check(
        &resp(&[b"SINTERCARD", b"0", b"s"]),
        b"-ERR numkeys should be greater than 0\r\n",
    )
    .await;
    r.check(
        &resp(&[b"SINTERCARD", b"1", b"s", b"LIMIT", b"-1"]),
        b"-ERR LIMIT can't be negative\r\n",
    )
    .await;
    r.check(
        &resp(&[b"SINTERCARD", b"3", b"s"]),
        b"-ERR Number of keys can't be greater than number of args\r\n",
    )
    .await;
    r.check(&resp(&[b"SADD", b"t", b"2", b"3", b"4"]), b":3\r\n")
        .await;
    r.check(&resp(&[b"SDIFF", b"t", b"s"]), b"*1\r\n$1\r\n4\r\n")
        .await;
    r.check(
        &resp(&[b"SINTERCARD", b"2", b"s", b"t", b"LIMIT", b"1"]),
        b":1\r\n",
    )
    .await;
    r.check(&resp(&[b"SET", b"str", b"v"]), b"+OK\r\n").await;
    r.check(
        &resp(&[b"SUNION", b"s", b"str"]),
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    )
    .await;
    // SMOVE from a missing source answers 0 before any type check.
    r.check(&resp(&[b"SMOVE", b"nokey", b"str", b"x"]), b":0\r\n")
        .await;
    // RESP3: SMEMBERS, SINTER and SPOP with a count are sets; SRANDMEMBER
    // with a count is an array.
    resp3(
        &s,
        &[b"SMEMBERS", b"t"],
        b"~3\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n",
    );
    resp3(&s, &[b"SINTER", b"t", b"nokey"], b"~0\r\n");
    resp3(
        &s,
        &[b"SRANDMEMBER", b"t", b"5"],
        b"*3\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n",
    );
    resp3(&s, &[b"SPOP", b"nokey", b"2"], b"~0\r\n");
    resp3(
        &s,
        &[b"SPOP", b"t", b"5"],
        b"~3\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n",
    );
    resp3(&s, &[b"EXISTS", b"t"], b":0\r\n");
    resp3(&s, &[b"SPOP", b"nokey"], b"_\r\n");
    s.shutdown().await;
}

#[tokio::test]
async fn random_picks_and_pops() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    let members: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
    let mut add = redis::cmd("SADD");
    add.arg("s").arg(&members);
    let _: i64 = add.query_async(&mut c).await.unwrap();
    let all: HashSet<String> = members.iter().cloned().collect();
    for count in [1usize, 5, 13, 39] {
        let got: Vec<String> = q(&mut c, &["SRANDMEMBER", "s", &count.to_string()])
            .await
            .unwrap();
        assert_eq!(got.len(), count);
        let distinct: HashSet<_> = got.iter().cloned().collect();
        assert_eq!(distinct.len(), count, "distinct members");
        assert!(distinct.is_subset(&all));
    }
    let got: Vec<String> = q(&mut c, &["SRANDMEMBER", "s", "-100"]).await.unwrap();
    assert_eq!(got.len(), 100, "a negative count may repeat");
    assert!(got.iter().all(|m| all.contains(m)));
    let popped: Vec<String> = q(&mut c, &["SPOP", "s", "15"]).await.unwrap();
    let popped: HashSet<String> = popped.into_iter().collect();
    assert_eq!(popped.len(), 15);
    let left: Vec<String> = q(&mut c, &["SMEMBERS", "s"]).await.unwrap();
    let left: HashSet<String> = left.into_iter().collect();
    assert_eq!(left.len(), 25);
    assert!(left.is_disjoint(&popped));
    assert_eq!(&left | &popped, all);
    let one: String = q(&mut c, &["SPOP", "s"]).await.unwrap();
    assert!(left.contains(&one));
    let n: i64 = q(&mut c, &["SCARD", "s"]).await.unwrap();
    assert_eq!(n, 24);
    // HRANDFIELD follows the same rules.
    let mut h = redis::cmd("HSET");
    h.arg("h");
    for m in &members {
        h.arg(m).arg("v");
    }
    let _: i64 = h.query_async(&mut c).await.unwrap();
    let got: Vec<String> = q(&mut c, &["HRANDFIELD", "h", "20", "WITHVALUES"])
        .await
        .unwrap();
    assert_eq!(got.len(), 40);
    let fields: HashSet<_> = got.chunks(2).map(|p| p[0].clone()).collect();
    assert_eq!(fields.len(), 20);
    assert!(got.chunks(2).all(|p| p[1] == "v"));
    let got: Vec<String> = q(&mut c, &["HRANDFIELD", "h", "5"]).await.unwrap();
    let fields: HashSet<_> = got.iter().cloned().collect();
    assert_eq!(fields.len(), 5, "a small sample is distinct too");
    assert!(fields.is_subset(&all));
    s.shutdown().await;
}

#[tokio::test]
async fn writes_are_logged_as_operations() {
    let s = start().await;
    let (_, e) = run(&s, &[b"SADD", b"s", b"1", b"2", b"3"]);
    assert!(
        matches!(&e[..], [Effect::Set { key, .. }] if key.as_ref() == b"s"),
        "{e:?}"
    );
    let (_, e) = run(&s, &[b"SADD", b"s", b"3", b"x"]);
    assert_eq!(
        e,
        vec![Effect::SetAdd {
            db: 0,
            key: "s".into(),
            table: true,
            members: vec!["x".into()],
        }]
    );
    // SPOP is logged as the removal of exactly the members it replied.
    let (reply, e) = run(&s, &[b"SPOP", b"s", b"2"]);
    let popped: Vec<bytes::Bytes> = reply
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.starts_with('$') && !l.is_empty())
        .map(|l| bytes::Bytes::copy_from_slice(l.as_bytes()))
        .collect();
    assert_eq!(popped.len(), 2, "{reply}");
    assert_eq!(
        e,
        vec![Effect::SetRem {
            db: 0,
            key: "s".into(),
            members: popped,
        }]
    );
    // SMOVE: removal from the source, addition to an existing destination.
    run(&s, &[b"SADD", b"d", b"9"]);
    let left: Vec<u8> = {
        let (r, _) = run(&s, &[b"SRANDMEMBER", b"s"]);
        r.split("\r\n").nth(1).unwrap().as_bytes().to_vec()
    };
    let (reply, e) = run(&s, &[b"SMOVE", b"s", b"d", &left]);
    assert_eq!(reply, ":1\r\n");
    assert_eq!(
        e,
        vec![
            Effect::SetRem {
                db: 0,
                key: "s".into(),
                members: vec![left.clone().into()],
            },
            Effect::SetAdd {
                db: 0,
                key: "d".into(),
                table: left.iter().any(|b| !b.is_ascii_digit()),
                members: vec![left.clone().into()],
            },
        ]
    );
    // The last member popped: a Del.
    let (_, e) = run(&s, &[b"SPOP", b"s"]);
    assert_eq!(
        e,
        vec![Effect::Del {
            db: 0,
            key: "s".into()
        }]
    );
    // A STORE destination is logged whole.
    let (_, e) = run(&s, &[b"SUNIONSTORE", b"u", b"d"]);
    assert!(
        matches!(&e[..], [Effect::Set { key, value: Value::Set(_), .. }] if key.as_ref() == b"u"),
        "{e:?}"
    );
    assert!(run(&s, &[b"SREM", b"d", b"nothere"]).1.is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn sscan_returns_every_stable_member_under_churn() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    let mut add = redis::cmd("SADD");
    add.arg("big");
    for i in 0..1000 {
        add.arg(format!("m{i}"));
    }
    let _: i64 = add.query_async(&mut c).await.unwrap();
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let (next, items): (String, Vec<String>) =
            q(&mut c, &["SSCAN", "big", &cursor, "COUNT", "25"])
                .await
                .unwrap();
        seen.extend(items);
        let _: i64 = q(&mut c, &["SADD", "big", &format!("tmp{calls}")])
            .await
            .unwrap();
        if calls > 0 {
            let _: i64 = q(&mut c, &["SREM", "big", &format!("tmp{}", calls - 1)])
                .await
                .unwrap();
        }
        calls += 1;
        cursor = next;
        if cursor == "0" {
            break;
        }
        assert!(calls < 1000, "scan terminates");
    }
    assert!(calls > 10);
    for i in 0..1000 {
        assert!(seen.contains(&format!("m{i}")), "m{i} missed");
    }
    // An intset comes whole, sorted, with cursor 0.
    let _: i64 = q(&mut c, &["SADD", "ints", "5", "-1", "3"]).await.unwrap();
    let (next, items): (String, Vec<String>) = q(&mut c, &["SSCAN", "ints", "0", "COUNT", "1"])
        .await
        .unwrap();
    assert_eq!(
        (next.as_str(), items),
        ("0", vec!["-1".to_string(), "3".into(), "5".into()])
    );
    s.shutdown().await;
}

#[tokio::test]
async fn restart_and_compaction_replay_sets_exactly() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    let script: &[&[&str]] = &[
        &["SADD", "ints", "5", "1", "3"],
        &["SADD", "ints", "2"],
        &["SREM", "ints", "1"],
        &["SADD", "mixed", "1", "2"],
        &["SADD", "mixed", "x"],
        &["SREM", "mixed", "x"],
        &["SADD", "a", "1", "2", "3", "4"],
        &["SADD", "b", "3", "4", "5"],
        &["SINTERSTORE", "inter", "a", "b"],
        &["SUNIONSTORE", "union", "a", "b"],
        &["SDIFFSTORE", "diff", "a", "b"],
        &["SMOVE", "a", "b", "1"],
        &["SMOVE", "a", "newdst", "2"],
        &["SPOP", "b", "2"],
        &["SPOP", "diff"],
        &["SADD", "ttl", "m"],
        &["EXPIRE", "ttl", "1000"],
        &["SADD", "ttl", "n"],
        &["SADD", "gone", "z"],
        &["SPOP", "gone", "5"],
    ];
    for line in script {
        let _: redis::Value = q(&mut c, line).await.unwrap();
    }
    let mut big = redis::cmd("SADD");
    big.arg("big");
    for i in 0..600 {
        big.arg(i);
    }
    let _: i64 = big.query_async(&mut c).await.unwrap();
    let _: i64 = q(&mut c, &["SREM", "big", "7", "8"]).await.unwrap();
    let before = dump_all(&s);
    drop(c);
    s.shutdown().await;

    let s = start_in(&dir, &[]).await;
    assert_eq!(dump_all(&s), before, "replay of the WAL");
    let mut c = client(s.local_addr()).await;
    let enc: String = q(&mut c, &["OBJECT", "ENCODING", "mixed"]).await.unwrap();
    assert_eq!(enc, "hashtable", "a conversion survives replay");
    let enc: String = q(&mut c, &["OBJECT", "ENCODING", "big"]).await.unwrap();
    assert_eq!(enc, "hashtable");
    let m: Vec<String> = q(&mut c, &["SMEMBERS", "ints"]).await.unwrap();
    assert_eq!(m, ["2", "3", "5"]);
    let _: String = q(&mut c, &["BGREWRITEAOF"]).await.unwrap();
    for _ in 0..500 {
        let info: String = q(&mut c, &["INFO", "persistence"]).await.unwrap();
        if info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrites:1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _: i64 = q(&mut c, &["SADD", "ints", "9"]).await.unwrap();
    let before = dump_all(&s);
    drop(c);
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump_all(&s), before, "replay of base + tail");
    s.shutdown().await;
}

/// kill -9 while clients write sets and hashes through operation effects:
/// every acknowledged SADD, SREM and HINCRBY is there after a restart.
#[test]
fn kill_9_loses_no_acknowledged_set_or_hash_operation() {
    let dir = temp_dir();
    let port = free_port();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_redlog"))
            .args(["--port", &port.to_string(), "--dir", dir.to_str().unwrap()])
            .args(["--appendfsync", "no", "--loglevel", "warning"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = KillOnDrop(spawn());
    wait_ping(port);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Writers that had a reply: the kill waits for all three (a loaded
    // machine may take long to serve the first transaction).
    let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let stop = stop.clone();
            let started = started.clone();
            std::thread::spawn(move || {
                let mut c = wait_ping(port);
                let mut acked = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let i = acked + 1;
                    let r: redis::RedisResult<i64> = redis::pipe()
                        .atomic()
                        .cmd("SADD")
                        .arg(format!("s{t}"))
                        .arg(i)
                        .arg(format!("tmp{i}"))
                        .ignore()
                        .cmd("SREM")
                        .arg(format!("s{t}"))
                        .arg(format!("tmp{i}"))
                        .ignore()
                        .cmd("HINCRBY")
                        .arg(format!("h{t}"))
                        .arg("n")
                        .arg(1)
                        .query(&mut c)
                        .map(|(n,): (i64,)| n);
                    match r {
                        Ok(n) => {
                            assert_eq!(n as u64, i);
                            if acked == 0 {
                                started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                            acked = i;
                        }
                        Err(_) => break,
                    }
                }
                acked
            })
        })
        .collect();
    for _ in 0..3000 {
        if started.load(std::sync::atomic::Ordering::SeqCst) == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::thread::sleep(Duration::from_millis(200 + u64::from(nanos % 300)));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let mut child = KillOnDrop(spawn());
    let mut c = wait_ping(port);
    for (t, &n) in acked.iter().enumerate() {
        assert!(n > 0, "writer {t} made progress");
        let h: u64 = redis::cmd("HGET")
            .arg(format!("h{t}"))
            .arg("n")
            .query(&mut c)
            .unwrap();
        assert!(
            h >= n,
            "acknowledged HINCRBY {n} of h{t} survives (got {h})"
        );
        let members: HashSet<String> = redis::cmd("SMEMBERS")
            .arg(format!("s{t}"))
            .query(&mut c)
            .unwrap();
        // A transaction is applied whole or not at all.
        assert_eq!(members.len() as u64, h, "s{t} and h{t} in step");
        assert!(members.iter().all(|m| !m.starts_with("tmp")));
        for i in 1..=n {
            assert!(
                members.contains(&i.to_string()),
                "acknowledged SADD {i} of s{t}"
            );
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Keyspace events queued per command, in Redis 7.0's order.
#[tokio::test]
async fn keyspace_events_in_redis_order() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("KEAn")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut tap = Events::tap(s.local_addr()).await;
    macro_rules! events {
        ($args:expr) => {{
            run(&s, $args);
            tap.take().await
        }};
    }
    assert_eq!(events!(&[b"SADD", b"a", b"1"]), ["new:a", "sadd:a"]);
    assert_eq!(events!(&[b"SADD", b"a", b"1"]), Vec::<String>::new());
    assert_eq!(
        events!(&[b"SMOVE", b"a", b"b", b"1"]),
        ["srem:a", "del:a", "new:b", "sadd:b"]
    );
    assert_eq!(events!(&[b"SPOP", b"b", b"5"]), ["spop:b", "del:b"]);
    assert_eq!(events!(&[b"HSET", b"h", b"f", b"v"]), ["new:h", "hset:h"]);
    assert_eq!(
        events!(&[b"HINCRBYFLOAT", b"h", b"n", b"1.5"]),
        ["hincrbyfloat:h"]
    );
    assert_eq!(events!(&[b"HDEL", b"h", b"f", b"n"]), ["hdel:h", "del:h"]);
    assert_eq!(events!(&[b"SADD", b"x", b"1"]), ["new:x", "sadd:x"]);
    assert_eq!(
        events!(&[b"SUNIONSTORE", b"d", b"x"]),
        ["new:d", "sunionstore:d"]
    );
    assert_eq!(events!(&[b"SINTERSTORE", b"d", b"nokey"]), ["del:d"]);
    s.shutdown().await;
}
