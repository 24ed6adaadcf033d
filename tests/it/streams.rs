//! Streams: durability across restart and kill -9, and XRANGE / XREVRANGE /
//! XREAD over many tiny segments with deletions and trims against a `Vec`
//! model (proptest).

use crate::common;

use bytes::Bytes;
use proptest::prelude::*;
use redis::AsyncCommands;
use redlog::db::{Keyspace, Value};
use redlog::storage::RealFs;
use redlog::stream::{make_id, Registry, StreamRef, TrimSpec, TrimStrategy};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

type Entries = Vec<(String, Vec<(String, String)>)>;

async fn info(c: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<redis::Value> {
    redis::cmd("XINFO")
        .arg("STREAM")
        .arg(key)
        .arg("FULL")
        .arg("COUNT")
        .arg(0)
        .query_async(c)
        .await
        .unwrap()
}

/// XINFO FULL without the segment counts (fields 1 and 2).
fn comparable(v: Vec<redis::Value>) -> Vec<redis::Value> {
    v.into_iter()
        .enumerate()
        .filter(|(i, _)| ![3, 5].contains(i))
        .map(|(_, v)| v)
        .collect()
}

#[tokio::test]
async fn restart_keeps_entries_ids_deletions_trims_and_counters() {
    let s = common::start_with(&[("stream-segment-bytes", "4096")]).await;
    let dir = s.shared().config.read().dir.clone();
    let mut c = common::client(s.local_addr()).await;
    for i in 1..=500u64 {
        let _: String = c
            .xadd("s", format!("{i}-1"), &[("field", format!("value-{i}"))])
            .await
            .unwrap();
    }
    let _: i64 = c.xdel("s", &["3-1", "250-1", "499-1"]).await.unwrap();
    let _: i64 = redis::cmd("XTRIM")
        .arg("s")
        .arg("MAXLEN")
        .arg(400)
        .query_async(&mut c)
        .await
        .unwrap();
    let _: i64 = redis::cmd("XTRIM")
        .arg("s")
        .arg("MAXLEN")
        .arg("~")
        .arg(300)
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("XSETID")
        .arg("s")
        .arg("900-0")
        .arg("ENTRIESADDED")
        .arg(1000)
        .arg("MAXDELETEDID")
        .arg("600-0")
        .query_async(&mut c)
        .await
        .unwrap();
    let _: String = c.xadd("s", "900-*", &[("a", "b")]).await.unwrap();
    let _: () = c.rename("s", "moved").await.unwrap();
    let _: String = c.xadd("gone", "1-1", &[("a", "b")]).await.unwrap();
    let _: i64 = c.del("gone").await.unwrap();
    let before_info = comparable(info(&mut c, "moved").await);
    let before: Entries = redis::cmd("XRANGE")
        .arg("moved")
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(before.len() < 400 && before.len() >= 300);
    drop(c);
    s.shutdown().await;

    let s = common::start_with(&[("dir", &dir), ("stream-segment-bytes", "4096")]).await;
    let mut c = common::client(s.local_addr()).await;
    assert_eq!(comparable(info(&mut c, "moved").await), before_info);
    let after: Entries = redis::cmd("XRANGE")
        .arg("moved")
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(after, before);
    let exists: i64 = c.exists("gone").await.unwrap();
    assert_eq!(exists, 0);
    // One stream directory: the deleted stream's is gone.
    let dirs = std::fs::read_dir(std::path::Path::new(&dir).join("streams"))
        .unwrap()
        .count();
    assert_eq!(dirs, 1);
    let id: String = c.xadd("moved", "*", &[("x", "y")]).await.unwrap();
    assert!(id.as_str() > "900-0" || id.len() > 5);
    s.shutdown().await;
}

/// XSETID may lower the last id to the last live entry (Redis checks only
/// that): ids trimmed or deleted above it are then free for XADD, which
/// must store and show them, also after a restart.
#[tokio::test]
async fn xsetid_below_trimmed_and_deleted_ids_frees_them_for_xadd() {
    let s = common::start().await;
    let dir = s.shared().config.read().dir.clone();
    let mut c = common::client(s.local_addr()).await;
    let script: &[&[&str]] = &[
        // Trimmed by MAXLEN 0, then the id lowered below it.
        &["XADD", "t", "MAXLEN", "0", "5-*", "f", "v"],
        &["XSETID", "t", "1-0"],
        &["XADD", "t", "5-*", "f", "0"],
        // Deleted, then the id lowered to the last live entry.
        &["XADD", "t", "5-*", "f", "1"],
        &["XDEL", "t", "5-1"],
        &["XSETID", "t", "5-0"],
        &["XADD", "t", "5-*", "f", "2"],
        // A trim mark above every entry (the last id raised first).
        &["XADD", "m", "3-0", "f", "a"],
        &["XSETID", "m", "10-0"],
        &["XTRIM", "m", "MAXLEN", "0"],
        &["XSETID", "m", "6-0"],
        &["XADD", "m", "7-*", "f", "b"],
    ];
    for w in script {
        let mut k = redis::cmd(w[0]);
        k.arg(&w[1..]);
        let _: redis::Value = k.query_async(&mut c).await.unwrap();
    }
    let range = |key: &'static str| {
        let mut k = redis::cmd("XRANGE");
        k.arg(key).arg("-").arg("+");
        k
    };
    let t: Entries = range("t").query_async(&mut c).await.unwrap();
    let ids: Vec<&str> = t.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(ids, ["5-0", "5-1"]);
    assert_eq!(t[1].1, [("f".to_string(), "2".to_string())]);
    let m: Entries = range("m").query_async(&mut c).await.unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].0, "7-0");
    let before = (
        comparable(info(&mut c, "t").await),
        comparable(info(&mut c, "m").await),
    );
    drop(c);
    s.shutdown().await;

    let s = common::start_with(&[("dir", &dir)]).await;
    let mut c = common::client(s.local_addr()).await;
    let after = (
        comparable(info(&mut c, "t").await),
        comparable(info(&mut c, "m").await),
    );
    assert_eq!(after, before);
    let t2: Entries = range("t").query_async(&mut c).await.unwrap();
    assert_eq!(t2, t);
    s.shutdown().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_ping(port: u16) -> redis::Connection {
    for _ in 0..600 {
        if let Ok(cl) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) {
            if let Ok(mut c) = cl.get_connection() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return c;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server on {port} did not start");
}

/// kill -9 while clients XADD and XDEL: every acknowledged entry and
/// deletion is there after a restart, under each appendfsync policy.
#[test]
fn kill_9_keeps_every_acknowledged_xadd_and_xdel() {
    for policy in ["always", "everysec"] {
        let dir = common::temp_dir();
        let port = free_port();
        let spawn = || {
            std::process::Command::new(env!("CARGO_BIN_EXE_redlog"))
                .args(["--port", &port.to_string(), "--dir", dir.to_str().unwrap()])
                .args(["--appendfsync", policy, "--loglevel", "warning"])
                .args(["--stream-segment-bytes", "8192"])
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        let mut child = common::KillOnDrop(spawn());
        wait_ping(port);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writers: Vec<_> = (0..3)
            .map(|t| {
                let stop = stop.clone();
                let progress = progress.clone();
                std::thread::spawn(move || {
                    let mut c = wait_ping(port);
                    let mut acked = Vec::new();
                    let mut deleted = Vec::new();
                    let mut unsure: Option<String> = None;
                    while !stop.load(Ordering::Relaxed) {
                        let r: redis::RedisResult<String> = redis::cmd("XADD")
                            .arg(format!("s{t}"))
                            .arg("*")
                            .arg("n")
                            .arg(acked.len())
                            .query(&mut c);
                        let Ok(id) = r else { break };
                        acked.push(id.clone());
                        if acked.len() == 10 {
                            progress.fetch_add(1, Ordering::Relaxed);
                        }
                        if acked.len() % 7 == 0 {
                            let r: redis::RedisResult<i64> = redis::cmd("XDEL")
                                .arg(format!("s{t}"))
                                .arg(&id)
                                .query(&mut c);
                            match r {
                                Ok(1) => deleted.push(id),
                                // Killed mid-XDEL: the deletion may or may
                                // not have been applied; it was not
                                // acknowledged, so either outcome is right.
                                _ => {
                                    unsure = Some(id);
                                    break;
                                }
                            }
                        }
                    }
                    (acked, deleted, unsure)
                })
            })
            .collect();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        // Every writer under way (bounded: a loaded machine is slow), then
        // a pseudo-random moment.
        for _ in 0..400 {
            if progress.load(Ordering::Relaxed) == 3 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(100 + u64::from(nanos % 400)));
        child.kill().unwrap();
        child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        let results: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        let mut child = common::KillOnDrop(spawn());
        let mut c = wait_ping(port);
        for (t, (acked, deleted, unsure)) in results.iter().enumerate() {
            assert!(!acked.is_empty(), "{policy}: writer {t} made progress");
            let got: Entries = redis::cmd("XRANGE")
                .arg(format!("s{t}"))
                .arg("-")
                .arg("+")
                .query(&mut c)
                .unwrap();
            // The entry of an unacknowledged XDEL may be there or not.
            let ids: Vec<&str> = got
                .iter()
                .map(|e| e.0.as_str())
                .filter(|id| Some(*id) != unsure.as_deref())
                .collect();
            let want: Vec<&str> = acked
                .iter()
                .filter(|a| !deleted.contains(a) && Some(a.as_str()) != unsure.as_deref())
                .map(|s| s.as_str())
                .collect();
            // An unacknowledged last XADD may also have been written.
            assert!(ids.len() >= want.len(), "{policy}: s{t} lost entries");
            assert_eq!(&ids[..want.len()], &want[..], "{policy}: s{t}");
            let max_deleted: redis::Value = redis::cmd("XINFO")
                .arg("STREAM")
                .arg(format!("s{t}"))
                .query(&mut c)
                .unwrap();
            // An unacknowledged XDEL that was applied moved max-deleted-id.
            let unsure_applied = unsure.as_deref().filter(|u| !got.iter().any(|e| e.0 == *u));
            let last = unsure_applied.or(deleted.last().map(|d| d.as_str()));
            if let (Some(last), redis::Value::Array(v)) = (last, max_deleted) {
                let md = v
                    .iter()
                    .position(|x| matches!(x, redis::Value::BulkString(b) if b == b"max-deleted-entry-id"))
                    .and_then(|i| v.get(i + 1));
                assert_eq!(
                    md,
                    Some(&redis::Value::BulkString(last.as_bytes().to_vec())),
                    "{policy}: s{t} max-deleted-entry-id"
                );
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

// ---- model test over tiny segments ----

#[derive(Clone, Debug)]
enum Op {
    Add(u8),
    Del(usize),
    TrimMaxLen(usize, bool),
    TrimMinId(u64),
    /// Reopen from the files, with or without a checkpoint first (without:
    /// the whole log and op log are replayed).
    Reopen(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..40).prop_map(Op::Add),
        2 => (0usize..200).prop_map(Op::Del),
        1 => (0usize..60, any::<bool>()).prop_map(|(n, a)| Op::TrimMaxLen(n, a)),
        1 => (0u64..400).prop_map(Op::TrimMinId),
        1 => any::<bool>().prop_map(Op::Reopen),
    ]
}

fn reopen(reg: &Arc<Registry>, id: u64) -> (Keyspace, StreamRef) {
    let mut ks = redlog::commands::lua::keyspace();
    let s = StreamRef::unopened(id);
    ks.set(0, Bytes::from_static(b"k"), Value::Stream(s.clone()), 0);
    reg.attach(&mut ks).unwrap();
    (ks, s)
}

proptest! {
    #![proptest_config(crate::common::proptest_cases(24))]
    #[test]
    fn ranges_match_a_vec_model(ops in proptest::collection::vec(op(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let reg = Arc::new(Registry::new(dir.path(), Arc::new(RealFs)));
        reg.segment_bytes.store(256, Ordering::Relaxed);
        let mut s = reg.create().unwrap();
        let mut _ks = None;
        let mut model: Vec<(u128, Vec<Bytes>)> = Vec::new();
        let mut next_ms = 1u64;
        for op in ops {
            match op {
                Op::Add(len) => {
                    let id = make_id(next_ms, u64::from(len % 3));
                    next_ms += 1 + u64::from(len % 4);
                    let f = vec![Bytes::from("f"), Bytes::from(vec![b'x'; len as usize])];
                    s.lock().unwrap().append(id, &f).unwrap();
                    model.push((id, f));
                }
                Op::Del(i) => {
                    if !model.is_empty() {
                        let id = model[i % model.len()].0;
                        let n = s.lock().unwrap().delete(&[id, id]).unwrap();
                        prop_assert_eq!(n, 1);
                        model.retain(|e| e.0 != id);
                    }
                }
                Op::TrimMaxLen(n, approx) => {
                    let removed = s.lock().unwrap().trim(TrimSpec {
                        strategy: TrimStrategy::MaxLen(n as u64),
                        approx,
                        limit: 0,
                    }).unwrap() as usize;
                    if !approx {
                        prop_assert_eq!(removed, model.len().saturating_sub(n));
                    }
                    model.drain(..removed);
                }
                Op::TrimMinId(ms) => {
                    let min = make_id(ms, 0);
                    let removed = s.lock().unwrap().trim(TrimSpec {
                        strategy: TrimStrategy::MinId(min),
                        approx: false,
                        limit: 0,
                    }).unwrap() as usize;
                    let want = model.iter().take_while(|e| e.0 < min).count();
                    prop_assert_eq!(removed, want);
                    model.drain(..removed);
                }
                Op::Reopen(checkpoint) => {
                    let id = s.0.id;
                    if checkpoint {
                        s.lock().unwrap().write_checkpoint_now().unwrap();
                    }
                    let (ks, s2) = reopen(&reg, id);
                    _ks = Some(ks);
                    s = s2;
                }
            }
            let g = s.lock().unwrap();
            prop_assert_eq!(g.meta.length as usize, model.len());
            prop_assert_eq!(g.meta.first, model.first().map_or(0, |e| e.0));
            let all = g.range(0, u128::MAX, usize::MAX, false).unwrap();
            prop_assert_eq!(&all, &model);
            let mut rev = g.range(0, u128::MAX, usize::MAX, true).unwrap();
            rev.reverse();
            prop_assert_eq!(&rev, &model);
            if model.len() > 2 {
                let (a, b) = (model[1].0, model[model.len() - 2].0);
                let mid: Vec<_> = model.iter().filter(|e| e.0 >= a && e.0 <= b).take(5).cloned().collect();
                prop_assert_eq!(g.range(a, b, 5, false).unwrap(), mid);
                // XREAD: entries after an id.
                let after: Vec<_> = model.iter().filter(|e| e.0 > a).take(3).cloned().collect();
                prop_assert_eq!(g.range(a + 1, u128::MAX, 3, false).unwrap(), after);
            }
        }
    }
}

#[tokio::test]
async fn xadd_reaches_a_client_in_resp3_and_copy_is_independent() {
    let s = common::start().await;
    let mut c = common::client3(s.local_addr()).await;
    let _: String = c.xadd("a", "1-0", &[("f", "v")]).await.unwrap();
    let copied: i64 = redis::cmd("COPY")
        .arg("a")
        .arg("b")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(copied, 1);
    let _: String = c.xadd("b", "2-0", &[("f", "w")]).await.unwrap();
    let la: i64 = c.xlen("a").await.unwrap();
    let lb: i64 = c.xlen("b").await.unwrap();
    assert_eq!((la, lb), (1, 2));
    s.shutdown().await;
}

/// Retention (redlog extension): XCONFIG RETENTION-BYTES drops the oldest
/// whole segments in the background; the setting survives a restart.
#[tokio::test]
async fn retention_bytes_drops_whole_old_segments() {
    let s = common::start_with(&[("stream-segment-bytes", "4096")]).await;
    let dir = s.shared().config.read().dir.clone();
    let mut c = common::client(s.local_addr()).await;
    for i in 1..=400u64 {
        let _: String = c
            .xadd("r", format!("{i}-0"), &[("f", "x".repeat(40))])
            .await
            .unwrap();
    }
    let reply: Vec<redis::Value> = redis::cmd("XCONFIG")
        .arg("r")
        .arg("RETENTION-BYTES")
        .arg(12_000)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(reply.len(), 4);
    let mut len: i64 = 400;
    for _ in 0..100 {
        len = c.xlen("r").await.unwrap();
        if len < 400 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(len < 400 && len > 100, "retention trimmed to {len}");
    let first: Entries = redis::cmd("XRANGE")
        .arg("r")
        .arg("-")
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut c)
        .await
        .unwrap();
    let last: Entries = redis::cmd("XREVRANGE")
        .arg("r")
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(last[0].0, "400-0");
    assert_eq!(first[0].0, format!("{}-0", 400 - len + 1));
    drop(c);
    s.shutdown().await;
    let s = common::start_with(&[("dir", &dir), ("stream-segment-bytes", "4096")]).await;
    let mut c = common::client(s.local_addr()).await;
    let after: i64 = c.xlen("r").await.unwrap();
    assert!(after <= len);
    let reply: Vec<i64> = redis::cmd("XCONFIG")
        .arg("r")
        .arg("RETENTION-MS")
        .arg(0)
        .query_async::<Vec<redis::Value>>(&mut c)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|v| match v {
            redis::Value::Int(n) => Some(n),
            _ => None,
        })
        .collect();
    assert_eq!(reply, vec![0, 12_000]);
    s.shutdown().await;
}

/// XADDs of one pipelined batch are written together at its end; every
/// other command of the batch (reads, trims, deletions, groups, COPY) sees
/// them as if each had been written at once, and so does a restart.
#[tokio::test]
async fn pipelined_xadds_are_seen_by_the_rest_of_their_batch_and_after_restart() {
    let dir = common::temp_dir();
    let s = common::start_in(&dir, &[]).await;
    let mut c = common::Raw::connect(s.local_addr()).await;
    let cmds: &[&[&str]] = &[
        &["XADD", "s", "1-0", "a", "1"],
        &["XADD", "s", "2-0", "b", "2"],
        &["XRANGE", "s", "-", "+"],
        &["XADD", "s", "MAXLEN", "2", "3-0", "c", "3"],
        &["XLEN", "s"],
        &["XDEL", "s", "2-0"],
        &["XADD", "s", "4-0", "d", "4"],
        &["XGROUP", "CREATE", "s", "g", "0"],
        &["XADD", "s", "5-0", "e", "5"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "COUNT",
            "1",
            "STREAMS",
            "s",
            ">",
        ],
        &["XADD", "s", "6-0", "f", "6"],
        &["COPY", "s", "t"],
        &["XREVRANGE", "t", "+", "-", "COUNT", "1"],
    ];
    let mut req = Vec::new();
    for a in cmds {
        let a: Vec<&[u8]> = a.iter().map(|s| s.as_bytes()).collect();
        req.extend(common::resp(&a));
    }
    let expected = concat!(
        "$3\r\n1-0\r\n",
        "$3\r\n2-0\r\n",
        "*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n",
        "$3\r\n3-0\r\n",
        ":2\r\n",
        ":1\r\n",
        "$3\r\n4-0\r\n",
        "+OK\r\n",
        "$3\r\n5-0\r\n",
        "*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n",
        "$3\r\n6-0\r\n",
        ":1\r\n",
        "*1\r\n*2\r\n$3\r\n6-0\r\n*2\r\n$1\r\nf\r\n$1\r\n6\r\n",
    );
    c.check(&req, expected.as_bytes()).await;
    let all = "*4\r\n*2\r\n$3\r\n3-0\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n*2\r\n$3\r\n4-0\r\n*2\r\n$1\r\nd\r\n$1\r\n4\r\n*2\r\n$3\r\n5-0\r\n*2\r\n$1\r\ne\r\n$1\r\n5\r\n*2\r\n$3\r\n6-0\r\n*2\r\n$1\r\nf\r\n$1\r\n6\r\n";
    c.check(
        &common::resp(&[b"XRANGE", b"s", b"-", b"+"]),
        all.as_bytes(),
    )
    .await;
    s.shutdown().await;
    let s = common::start_in(&dir, &[]).await;
    let mut c = common::Raw::connect(s.local_addr()).await;
    c.check(
        &common::resp(&[b"XRANGE", b"s", b"-", b"+"]),
        all.as_bytes(),
    )
    .await;
    c.check(
        &common::resp(&[b"XRANGE", b"t", b"-", b"+"]),
        all.as_bytes(),
    )
    .await;
    c.check(
        &common::resp(&[b"XPENDING", b"s", b"g"]),
        b"*4\r\n:1\r\n$3\r\n3-0\r\n$3\r\n3-0\r\n*1\r\n*2\r\n$2\r\nc1\r\n$1\r\n1\r\n",
    )
    .await;
    s.shutdown().await;
}
