//! Durability of the keyspace: restart and replay, compaction, kill -9 under
//! load for every appendfsync policy, torn tails, corruption, failed writes
//! and a crash at every step of a compaction.

use crate::common;

use common::*;
use proptest::prelude::*;
use redlog::config::Config;
use redlog::db::Value;
use redlog::server::{spawn_with_fs, ServerHandle};
use redlog::storage::fs::CrashMode;
use redlog::storage::FaultyFs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

type Dump = Vec<(usize, Vec<u8>, Value, u64)>;

/// Every live key of every database with its value and absolute expiry.
fn dump(s: &ServerHandle) -> Dump {
    let now = redlog::db::now_ms();
    let ks = s.shared().ks.lock();
    let mut v: Dump = ks
        .dbs
        .iter()
        .enumerate()
        .flat_map(|(i, d)| {
            d.iter()
                .filter(|(_, e)| e.expires_at_ms == 0 || e.expires_at_ms > now + 2_000)
                .map(move |(k, e)| (i, k.to_vec(), e.value.clone(), e.expires_at_ms))
        })
        .collect();
    v.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    v
}

async fn cmd(
    c: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<redis::Value> {
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query_async(c).await
}

async fn wait_rewrite_done(s: &ServerHandle) {
    let p = s.shared().persist.clone().expect("persistence on");
    for _ in 0..2000 {
        if !p
            .rewrite_in_progress
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("rewrite did not finish");
}

#[tokio::test]
async fn restart_restores_every_database_and_ttl() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    let script: &[&[&str]] = &[
        &["SET", "plain", "v"],
        &["SET", "ttl", "v", "EX", "1000"],
        &["SET", "gone", "v", "PX", "1"],
        &["SET", "n", "10"],
        &["INCR", "n"],
        &["INCRBYFLOAT", "f", "1.1"],
        &["INCRBYFLOAT", "f", "2.2"],
        &["APPEND", "app", "abc"],
        &["APPEND", "app", "def"],
        &["SETRANGE", "app", "10", "x"],
        &["SET", "r1", "moved"],
        &["RENAME", "r1", "r2"],
        &["SET", "m", "to-db-5"],
        &["MOVE", "m", "5"],
        &["COPY", "plain", "plain-copy", "DB", "7"],
        &["SELECT", "3"],
        &["SET", "in3", "x"],
        &["SWAPDB", "3", "4"],
        &["SELECT", "9"],
        &["SET", "flushed", "x"],
        &["FLUSHDB"],
        &["SET", "after-flush", "y"],
        &["SELECT", "0"],
        &["SET", "p", "v", "EX", "100"],
        &["PERSIST", "p"],
        &["SET", "e", "v"],
        &["PEXPIREAT", "e", "99999999999999"],
        &["SET", "d", "v"],
        &["DEL", "d"],
        &["MULTI"],
        &["SET", "tx1", "a"],
        &["INCR", "tx2"],
        &["EXEC"],
        &["SET", "bin\u{0}key", "bin\u{1}value"],
    ];
    for line in script {
        cmd(&mut c, line).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let before = dump(&s);
    assert!(before.iter().any(|(db, k, _, _)| *db == 4 && k == b"in3"));
    assert!(before
        .iter()
        .any(|(db, k, _, _)| *db == 9 && k == b"after-flush"));
    assert!(!before
        .iter()
        .any(|(db, k, _, _)| *db == 9 && k == b"flushed"));
    drop(c);
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump(&s), before);
    let mut c = client(s.local_addr()).await;
    let ttl: i64 = redis::cmd("TTL")
        .arg("ttl")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        (990..=1000).contains(&ttl),
        "TTL continues from the absolute expiry: {ttl}"
    );
    let gone: Option<String> = redis::cmd("GET")
        .arg("gone")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(gone, None);
    let enc: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("app")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(enc, "raw", "the string's encoding survives replay");
    s.shutdown().await;
}

#[tokio::test]
async fn compaction_then_restart_and_info_fields() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    for i in 0..5000 {
        cmd(&mut c, &["SET", &format!("k{i}"), &format!("v{i}")])
            .await
            .unwrap();
    }
    for i in 0..2500 {
        cmd(&mut c, &["DEL", &format!("k{i}")]).await.unwrap();
    }
    let r: String = redis::cmd("BGREWRITEAOF")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(r, "Background append only file rewriting started");
    wait_rewrite_done(&s).await;
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query_async(&mut c)
        .await
        .unwrap();
    for field in [
        "aof_enabled:1",
        "aof_rewrite_in_progress:0",
        "aof_last_bgrewrite_status:ok",
        "aof_last_write_status:ok",
        "loading:0",
        "rdb_changes_since_last_save:0",
    ] {
        assert!(info.contains(field), "{field} in {info}");
    }
    assert!(info.contains("aof_current_size:") && info.contains("aof_base_size:"));
    let saved: String = redis::cmd("SAVE").query_async(&mut c).await.unwrap();
    assert_eq!(saved, "OK");
    cmd(&mut c, &["SET", "after-base", "1"]).await.unwrap();
    let before = dump(&s);
    assert_eq!(before.len(), 2501);
    drop(c);
    s.shutdown().await;
    let bases: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".base"))
        .collect();
    assert_eq!(bases.len(), 1, "older bases are removed");
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump(&s), before);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_with_concurrent_writes_loses_nothing() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let addr = s.local_addr();
    let mut c = client(addr).await;
    for i in 0..20_000 {
        cmd(&mut c, &["SET", &format!("k{i}"), "base"])
            .await
            .unwrap();
    }
    let writer = tokio::spawn(async move {
        let mut c = client(addr).await;
        for i in 0..3000u32 {
            let k = format!("k{}", (i * 7919) % 20_000);
            match i % 5 {
                0 => cmd(&mut c, &["DEL", &k]).await.unwrap(),
                1 => cmd(&mut c, &["APPEND", &k, "+"]).await.unwrap(),
                2 => cmd(&mut c, &["SET", &format!("new{i}"), "n"])
                    .await
                    .unwrap(),
                3 => cmd(&mut c, &["RENAME", &k, &format!("ren{i}")])
                    .await
                    .unwrap_or(redis::Value::Nil),
                _ => cmd(&mut c, &["EXPIRE", &k, "5000"]).await.unwrap(),
            };
        }
    });
    let _: String = redis::cmd("BGREWRITEAOF")
        .query_async(&mut c)
        .await
        .unwrap();
    writer.await.unwrap();
    wait_rewrite_done(&s).await;
    let before = dump(&s);
    drop(c);
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump(&s), before);
    s.shutdown().await;
}

/// One step of a replay-equivalence run: a command, a MULTI/EXEC block or
/// a compaction.
#[derive(Debug, Clone)]
enum Op {
    Cmd(Vec<String>),
    Multi(Vec<Vec<String>>),
    Rewrite,
    /// Lets short TTLs run out (lazy and active expiry).
    Sleep(u64),
}

/// Builds a command from its words.
fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

/// Keys of one type's commands (`p0`..`p2`), now and then a key shared by
/// every type (`x0`, `x1`: WRONGTYPE, overwrites).
fn key_of(p: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        5 => (0u8..3).prop_map(move |k| format!("{p}{k}")),
        1 => (0u8..2).prop_map(|k| format!("x{k}")),
    ]
}

/// Any key (RENAME, COPY, EXPIRE ... across types).
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        key_of("s"),
        key_of("l"),
        key_of("h"),
        key_of("t"),
        key_of("z"),
        key_of("q"),
    ]
}

fn small() -> impl Strategy<Value = String> {
    (0u8..6).prop_map(|v| v.to_string())
}

fn member() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (0u8..6).prop_map(|v| v.to_string()),
        2 => (0u8..6).prop_map(|v| format!("m{v}")),
    ]
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    let opt = prop_oneof![
        Just(vec![]),
        (1u32..100_000).prop_map(|ms| vec!["PX".to_string(), ms.to_string()]),
        (1u32..1000).prop_map(|s| vec!["EX".to_string(), s.to_string()]),
        (1u32..30).prop_map(|ms| vec!["PX".to_string(), ms.to_string()]),
        Just(vec!["KEEPTTL".to_string()]),
        Just(vec!["NX".to_string()]),
        Just(vec!["XX".to_string(), "GET".to_string()]),
    ];
    prop_oneof![
        4 => (key_of("s"), small(), opt).prop_map(|(k, v, o)| {
            let mut c = words(&["SET", &k, &v]);
            c.extend(o);
            c
        }),
        2 => key_of("s").prop_map(|k| words(&["INCR", &k])),
        1 => (key_of("s"), -3i64..4).prop_map(|(k, n)| words(&["DECRBY", &k, &n.to_string()])),
        2 => key_of("s").prop_map(|k| words(&["INCRBYFLOAT", &k, "1.5"])),
        2 => (key_of("s"), member()).prop_map(|(k, v)| words(&["APPEND", &k, &v])),
        1 => (key_of("s"), 0u8..12, small()).prop_map(|(k, o, v)| words(&["SETRANGE", &k, &o.to_string(), &v])),
        1 => (key_of("s"), 1u32..100_000).prop_map(|(k, ms)| words(&["GETEX", &k, "PX", &ms.to_string()])),
        1 => key_of("s").prop_map(|k| words(&["GETEX", &k, "PERSIST"])),
        1 => key_of("s").prop_map(|k| words(&["GETDEL", &k])),
        1 => (key_of("s"), small()).prop_map(|(k, v)| words(&["GETSET", &k, &v])),
        1 => (key_of("s"), small(), key_of("s"), small()).prop_map(|(a, x, b, y)| words(&["MSET", &a, &x, &b, &y])),
        1 => (key_of("s"), small(), key_of("s"), small()).prop_map(|(a, x, b, y)| words(&["MSETNX", &a, &x, &b, &y])),
        1 => (key_of("s"), small()).prop_map(|(k, v)| words(&["SETNX", &k, &v])),
        2 => (key_of("s"), 0u16..200, 0u8..2).prop_map(|(k, o, b)| words(&["SETBIT", &k, &o.to_string(), &b.to_string()])),
        1 => (key_of("s"), 0u16..120, -300i64..300).prop_map(|(k, o, v)| words(&["BITFIELD", &k, "INCRBY", "i9", &o.to_string(), &v.to_string(), "SET", "u5", "#7", &v.to_string()])),
        1 => (key_of("s"), key_of("s"), key_of("s")).prop_map(|(d, a, b)| words(&["BITOP", "XOR", &d, &a, &b])),
        2 => (key_of("s"), proptest::collection::vec(0u32..5000, 0..300)).prop_map(|(k, es)| {
            let mut c = words(&["PFADD", &k]);
            c.extend(es.iter().map(u32::to_string));
            c
        }),
        1 => key_of("s").prop_map(|k| words(&["PFCOUNT", &k])),
        1 => (key_of("s"), key_of("s")).prop_map(|(d, a)| words(&["PFMERGE", &d, &a])),
    ]
}

fn keyspace() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        2 => key().prop_map(|k| words(&["DEL", &k])),
        1 => (key(), key()).prop_map(|(a, b)| words(&["UNLINK", &a, &b])),
        3 => (key(), -5i64..100_000).prop_map(|(k, t)| words(&["EXPIRE", &k, &t.to_string()])),
        1 => (key(), 1i64..200_000).prop_map(|(k, t)| words(&["PEXPIRE", &k, &t.to_string(), "NX"])),
        1 => key().prop_map(|k| words(&["PERSIST", &k])),
        2 => (key(), key()).prop_map(|(a, b)| words(&["RENAME", &a, &b])),
        1 => (key(), key()).prop_map(|(a, b)| words(&["RENAMENX", &a, &b])),
        1 => (key(), key()).prop_map(|(a, b)| words(&["COPY", &a, &b, "REPLACE"])),
        1 => (key(), key(), 0u8..3).prop_map(|(a, b, d)| words(&["COPY", &a, &b, "DB", &d.to_string()])),
        1 => (key(), 0u8..3).prop_map(|(k, d)| words(&["MOVE", &k, &d.to_string()])),
        2 => (0u8..3).prop_map(|d| words(&["SELECT", &d.to_string()])),
        1 => (0u8..3, 0u8..3).prop_map(|(a, b)| words(&["SWAPDB", &a.to_string(), &b.to_string()])),
        1 => Just(words(&["FLUSHDB"])),
        // Reads: a key found expired is deleted (a DEL in the WAL).
        2 => (key(), key()).prop_map(|(a, b)| words(&["EXISTS", &a, &b])),
        1 => (key(), 1i64..40).prop_map(|(k, t)| words(&["PEXPIRE", &k, &t.to_string()])),
    ]
}

fn lists() -> impl Strategy<Value = Vec<String>> {
    let side = || prop_oneof![Just("LEFT"), Just("RIGHT")];
    prop_oneof![
        3 => (key_of("l"), member(), member()).prop_map(|(k, a, b)| words(&["RPUSH", &k, &a, &b])),
        2 => (key_of("l"), member()).prop_map(|(k, a)| words(&["LPUSH", &k, &a])),
        1 => (key_of("l"), key_of("l")).prop_map(|(k, d)| words(&["SORT", &k, "ALPHA", "DESC", "STORE", &d])),
        1 => (key_of("l"), key_of("s")).prop_map(|(k, d)| words(&["SORT", &k, "BY", "nosort", "LIMIT", "1", "2", "STORE", &d])),
        1 => (key_of("l"), member()).prop_map(|(k, a)| words(&["LPUSHX", &k, &a])),
        1 => (key_of("l"), 1u8..3).prop_map(|(k, n)| words(&["LPOP", &k, &n.to_string()])),
        1 => key_of("l").prop_map(|k| words(&["RPOP", &k])),
        1 => (key_of("l"), member(), member()).prop_map(|(k, p, v)| words(&["LINSERT", &k, "BEFORE", &p, &v])),
        1 => (key_of("l"), -3i8..3, member()).prop_map(|(k, i, v)| words(&["LSET", &k, &i.to_string(), &v])),
        1 => (key_of("l"), 0i8..2, -2i8..3).prop_map(|(k, a, b)| words(&["LTRIM", &k, &a.to_string(), &b.to_string()])),
        1 => (key_of("l"), -1i8..2, member()).prop_map(|(k, n, v)| words(&["LREM", &k, &n.to_string(), &v])),
        1 => (key_of("l"), key_of("l"), side(), side()).prop_map(|(a, b, x, y)| words(&["LMOVE", &a, &b, x, y])),
        1 => (key_of("l"), key_of("l")).prop_map(|(a, b)| words(&["LMPOP", "2", &a, &b, "RIGHT", "COUNT", "2"])),
    ]
}

fn hashes() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        3 => (key_of("h"), member(), small(), member(), small())
            .prop_map(|(k, f, v, g, w)| words(&["HSET", &k, &f, &v, &g, &w])),
        1 => (key_of("h"), member(), small()).prop_map(|(k, f, v)| words(&["HSETNX", &k, &f, &v])),
        2 => (key_of("h"), member()).prop_map(|(k, f)| words(&["HDEL", &k, &f])),
        1 => (key_of("h"), member(), -3i8..4).prop_map(|(k, f, n)| words(&["HINCRBY", &k, &f, &n.to_string()])),
        1 => (key_of("h"), member()).prop_map(|(k, f)| words(&["HINCRBYFLOAT", &k, &f, "0.25"])),
    ]
}

fn sets() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        3 => (key_of("t"), member(), member()).prop_map(|(k, a, b)| words(&["SADD", &k, &a, &b])),
        2 => (key_of("t"), member()).prop_map(|(k, a)| words(&["SREM", &k, &a])),
        1 => (key_of("t"), 1u8..3).prop_map(|(k, n)| words(&["SPOP", &k, &n.to_string()])),
        1 => key_of("t").prop_map(|k| words(&["SPOP", &k])),
        1 => (key_of("t"), key_of("t"), member()).prop_map(|(a, b, m)| words(&["SMOVE", &a, &b, &m])),
        1 => (key_of("t"), key_of("t"), key_of("t")).prop_map(|(d, a, b)| words(&["SINTERSTORE", &d, &a, &b])),
        1 => (key_of("t"), key_of("t"), key_of("t")).prop_map(|(d, a, b)| words(&["SUNIONSTORE", &d, &a, &b])),
        1 => (key_of("t"), key_of("t"), key_of("t")).prop_map(|(d, a, b)| words(&["SDIFFSTORE", &d, &a, &b])),
    ]
}

fn zsets() -> impl Strategy<Value = Vec<String>> {
    let flag = prop_oneof![
        Just(vec![]),
        Just(vec!["NX"]),
        Just(vec!["XX", "CH"]),
        Just(vec!["GT"]),
        Just(vec!["LT"]),
        Just(vec!["INCR"]),
    ];
    prop_oneof![
        3 => (key_of("z"), flag, -3i8..4, member()).prop_map(|(k, f, s, m)| {
            let mut c = words(&["ZADD", &k]);
            c.extend(words(&f));
            c.extend(words(&[&format!("{}.5", s), &m]));
            c
        }),
        1 => (key_of("z"), member()).prop_map(|(k, m)| words(&["ZINCRBY", &k, "2", &m])),
        2 => (key_of("z"), member()).prop_map(|(k, m)| words(&["ZREM", &k, &m])),
        1 => (key_of("z"), 1u8..3).prop_map(|(k, n)| words(&["ZPOPMIN", &k, &n.to_string()])),
        1 => key_of("z").prop_map(|k| words(&["ZPOPMAX", &k])),
        1 => key_of("z").prop_map(|k| words(&["ZREMRANGEBYRANK", &k, "0", "0"])),
        1 => key_of("z").prop_map(|k| words(&["ZREMRANGEBYSCORE", &k, "-inf", "(0"])),
        1 => key_of("z").prop_map(|k| words(&["ZREMRANGEBYLEX", &k, "[0", "[3"])),
        1 => (key_of("z"), key_of("z")).prop_map(|(d, k)| words(&["ZRANGESTORE", &d, &k, "0", "-1"])),
        1 => (key_of("z"), key_of("z"), key_of("z")).prop_map(|(d, a, b)| words(&["ZUNIONSTORE", &d, "2", &a, &b, "WEIGHTS", "2", "3"])),
        1 => (key_of("z"), key_of("z"), key_of("z")).prop_map(|(d, a, b)| words(&["ZINTERSTORE", &d, "2", &a, &b, "AGGREGATE", "MAX"])),
        1 => (key_of("z"), key_of("z"), key_of("z")).prop_map(|(d, a, b)| words(&["ZDIFFSTORE", &d, "2", &a, &b])),
        1 => (key_of("z"), key_of("z")).prop_map(|(a, b)| words(&["ZMPOP", "2", &a, &b, "MAX", "COUNT", "2"])),
        2 => (key_of("z"), prop_oneof![Just(vec![]), Just(vec!["NX"]), Just(vec!["XX", "CH"])], proptest::collection::vec((-1800i32..1800, -850i32..850, member()), 1..4)).prop_map(|(k, f, pts)| {
            let mut c = words(&["GEOADD", &k]);
            c.extend(words(&f));
            for (x, y, m) in pts {
                c.extend([format!("{}", f64::from(x) / 10.0), format!("{}", f64::from(y) / 10.0), m]);
            }
            c
        }),
        1 => (key_of("z"), key_of("z"), prop_oneof![Just(vec![]), Just(vec!["STOREDIST"]), Just(vec!["COUNT", "2", "DESC"])]).prop_map(|(d, k, o)| {
            let mut c = words(&["GEOSEARCHSTORE", &d, &k, "FROMLONLAT", "0", "0", "BYRADIUS", "8000", "km"]);
            c.extend(words(&o));
            c
        }),
        1 => (key_of("z"), key_of("z")).prop_map(|(d, k)| words(&["GEORADIUS", &k, "10", "10", "5000", "km", "STORE", &d])),
    ]
}

/// Stream entries get small explicit ids ("N-*"), so that XDEL, XACK and
/// XCLAIM name entries that may exist.
fn streams() -> impl Strategy<Value = Vec<String>> {
    let id = || (1u8..12, 0u8..2).prop_map(|(ms, seq)| format!("{ms}-{seq}"));
    prop_oneof![
        4 => (key_of("q"), 1u8..12, member()).prop_map(|(k, ms, v)| words(&["XADD", &k, &format!("{ms}-*"), "f", &v])),
        1 => (key_of("q"), member()).prop_map(|(k, v)| words(&["XADD", &k, "MAXLEN", "3", "*", "f", &v])),
        1 => (key_of("q"), id()).prop_map(|(k, i)| words(&["XDEL", &k, &i])),
        1 => (key_of("q"), 1u8..4).prop_map(|(k, n)| words(&["XTRIM", &k, "MAXLEN", &n.to_string()])),
        2 => (key_of("q"), prop_oneof![Just("g"), Just("h")]).prop_map(|(k, g)| words(&["XGROUP", "CREATE", &k, g, "0", "MKSTREAM"])),
        2 => (key_of("q"), prop_oneof![Just("g"), Just("h")], prop_oneof![Just("a"), Just("b")])
            .prop_map(|(k, g, c)| words(&["XREADGROUP", "GROUP", g, c, "COUNT", "2", "STREAMS", &k, ">"])),
        1 => (key_of("q"), id()).prop_map(|(k, i)| words(&["XACK", &k, "g", &i])),
        1 => (key_of("q"), id()).prop_map(|(k, i)| words(&["XCLAIM", &k, "g", "b", "0", &i])),
        1 => key_of("q").prop_map(|k| words(&["XAUTOCLAIM", &k, "h", "a", "0", "0-0", "COUNT", "1"])),
        1 => key_of("q").prop_map(|k| words(&["XGROUP", "DELCONSUMER", &k, "g", "a"])),
        1 => key_of("q").prop_map(|k| words(&["XGROUP", "SETID", &k, "h", "0"])),
        1 => key_of("q").prop_map(|k| words(&["XGROUP", "DESTROY", &k, "h"])),
        1 => key_of("q").prop_map(|k| words(&["XSETID", &k, "99-0"])),
    ]
}

fn command() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        3 => strings(),
        3 => keyspace(),
        2 => lists(),
        2 => hashes(),
        2 => sets(),
        2 => zsets(),
        2 => streams(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => command().prop_map(Op::Cmd),
        2 => proptest::collection::vec(command(), 1..4).prop_map(Op::Multi),
        1 => Just(Op::Rewrite),
        1 => (1u64..25).prop_map(Op::Sleep),
    ]
}

/// What a client sees of every stream (entries, groups, consumers, PEL with
/// delivery times and counts): the dump compares streams by identity only.
async fn streams_seen(s: &ServerHandle, dump: &Dump) -> Vec<(usize, Vec<u8>, redis::Value)> {
    let mut c = client(s.local_addr()).await;
    let mut out = Vec::new();
    for (db, k, v, _) in dump {
        if !matches!(v, Value::Stream(_)) {
            continue;
        }
        let _: () = redis::cmd("SELECT")
            .arg(*db)
            .query_async(&mut c)
            .await
            .unwrap();
        let info: redis::Value = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(k)
            .arg("FULL")
            .arg("COUNT")
            .arg(0)
            .query_async(&mut c)
            .await
            .unwrap();
        out.push((*db, k.clone(), info));
    }
    out
}

async fn run_ops(ops: Vec<Op>) {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    for o in ops {
        // Errors (WRONGTYPE, INCR of "m1", RENAME of a missing key ...)
        // are part of the sequence: they must log nothing.
        let _ = match o {
            Op::Cmd(args) => {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                cmd(&mut c, &args).await
            }
            Op::Multi(cmds) => {
                let mut p = redis::pipe();
                p.atomic();
                for args in cmds {
                    p.cmd(&args[0]).arg(&args[1..]);
                }
                p.query_async::<redis::Value>(&mut c).await
            }
            Op::Rewrite => cmd(&mut c, &["BGREWRITEAOF"]).await,
            Op::Sleep(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                continue;
            }
        };
    }
    wait_rewrite_done(&s).await;
    let before = dump(&s);
    drop(c);
    assert_restart_restores(s, &dir, &before).await;
}

/// Restarts the server on `dir`; every key, value and expiry, and every
/// stream as clients see it, must come back as `before`.
async fn assert_restart_restores(s: ServerHandle, dir: &Path, before: &Dump) {
    let seen = streams_seen(&s, before).await;
    s.shutdown().await;
    let s = start_in(dir, &[]).await;
    assert_eq!(dump(&s), expected_after_restart(before, &dump(&s)));
    assert_eq!(streams_seen(&s, before).await, seen);
    s.shutdown().await;
}

/// `before` as a restart must restore it. Two differences are Redis's own,
/// encodings changed in place by a command that logs no change of the key:
/// SETBIT on an `int` or short string makes it `raw`, and when no bit changes
/// nothing is logged (Redis 7.0 propagates nothing then either), so the
/// replay keeps the form of the last logged write (Redis's AOF load
/// likewise: `int` or `embstr` from the SET); SORT ... BY nosort
/// LIMIT on a small zset converts it to a skiplist (Redis's
/// `sortCommand` does too), and a restart brings it back as a listpack
/// (as Redis's RDB and AOF loading do). Only those cases (same bytes, or
/// same members and scores) are taken from `after`; everything else must
/// be identical.
fn expected_after_restart(before: &Dump, after: &Dump) -> Dump {
    use redlog::db::StrForm;
    before
        .iter()
        .map(|b| {
            let replayed = after.iter().find(|a| a.0 == b.0 && a.1 == b.1);
            match (&b.2, replayed.map(|a| &a.2)) {
                (Value::Str(live), Some(Value::Str(back)))
                    if live.form == StrForm::Raw
                        && back.form != StrForm::Raw
                        && live.data == back.data =>
                {
                    (b.0, b.1.clone(), Value::Str(back.clone()), b.3)
                }
                (Value::ZSet(live), Some(Value::ZSet(back)))
                    if live.is_skiplist() && !back.is_skiplist() && same_members(live, back) =>
                {
                    (b.0, b.1.clone(), Value::ZSet(back.clone()), b.3)
                }
                _ => b.clone(),
            }
        })
        .collect()
}

/// Same members with the same scores, in order, whatever the encodings.
fn same_members(a: &redlog::db::zset::ZSet, b: &redlog::db::zset::ZSet) -> bool {
    a.len() == b.len()
        && a.iter_from(0, false)
            .zip(b.iter_from(0, false))
            .all(|((m1, s1), (m2, s2))| m1 == m2 && s1.to_bits() == s2.to_bits())
}

proptest! {
    #![proptest_config(crate::common::proptest_cases(32))]
    #[test]
    fn replay_equals_live_state(ops in proptest::collection::vec(op(), 1..120)) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(run_ops(ops));
    }
}

/// GEOADD (logged as ZADD effects), GEOSEARCHSTORE and GEORADIUS STORE
/// (the destination's final state) come back after a restart: same
/// scores, so the same positions and search results.
#[tokio::test]
async fn geo_writes_survive_restart() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    let writes: &[&[&str]] = &[
        &[
            "GEOADD",
            "g",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
        ],
        &[
            "GEOADD", "g", "XX", "CH", "13.5", "38.1", "Palermo", "1", "1", "ignored",
        ],
        &["GEOADD", "g", "NX", "12.758489", "38.788135", "edge"],
        &[
            "GEOSEARCHSTORE",
            "near",
            "g",
            "FROMLONLAT",
            "15",
            "37",
            "BYRADIUS",
            "200",
            "km",
            "STOREDIST",
        ],
        &[
            "GEOSEARCHSTORE",
            "box",
            "g",
            "FROMMEMBER",
            "Palermo",
            "BYBOX",
            "400",
            "400",
            "km",
            "COUNT",
            "2",
        ],
        &["GEORADIUS", "g", "15", "37", "300", "km", "STORE", "radius"],
        &["SET", "gone", "x"],
        &["GEORADIUS", "g", "15", "37", "1", "km", "STORE", "gone"],
    ];
    for w in writes {
        cmd(&mut c, w).await.unwrap();
    }
    let probe = |c: &mut redis::aio::MultiplexedConnection| {
        let mut c = c.clone();
        async move {
            let mut got = Vec::new();
            for q in [
                &["ZRANGE", "g", "0", "-1", "WITHSCORES"][..],
                &["GEOPOS", "g", "Palermo", "Catania", "edge", "ignored"],
                &["ZRANGE", "near", "0", "-1", "WITHSCORES"],
                &["ZRANGE", "box", "0", "-1", "WITHSCORES"],
                &["ZRANGE", "radius", "0", "-1", "WITHSCORES"],
                &["EXISTS", "gone"],
            ] {
                got.push(cmd(&mut c, q).await.unwrap());
            }
            got
        }
    };
    let before = probe(&mut c).await;
    let dump_before = dump(&s);
    assert_eq!(
        before[5],
        redis::Value::Int(0),
        "an empty STORE result deletes the destination"
    );
    drop(c);
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    assert_eq!(dump(&s), dump_before);
    assert_eq!(probe(&mut c).await, before);
    s.shutdown().await;
}

/// A write that finds its key expired recreates it: the expired value's
/// deletion must reach the WAL before the write's operation effect, or
/// replay (which never expires) applies the write to the old value and
/// the key comes back with the old contents and expiry.
#[tokio::test]
async fn writes_to_an_expired_key_replay_on_a_fresh_key() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    let writes: &[&[&str]] = &[
        &["RPUSH", "list", "a", "b"],
        &["SADD", "set", "a", "b"],
        &["SADD", "intset", "1", "2"],
        &["HSET", "hash", "f", "v", "g", "w"],
        &["ZADD", "zset", "1", "a", "2", "b"],
        &["APPEND", "str", "abc"],
        &["SETRANGE", "range", "2", "xy"],
        &["XADD", "stream", "5-1", "f", "v"],
    ];
    for w in writes {
        cmd(&mut c, w).await.unwrap();
        cmd(&mut c, &["PEXPIRE", w[1], "1"]).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    let again: &[&[&str]] = &[
        &["RPUSH", "list", "c"],
        &["SADD", "set", "c"],
        &["SADD", "intset", "3"],
        &["HSET", "hash", "h", "x"],
        &["ZADD", "zset", "3", "c"],
        &["APPEND", "str", "def"],
        &["SETRANGE", "range", "1", "z"],
        &["XADD", "stream", "1-1", "f", "v"],
    ];
    for w in again {
        cmd(&mut c, w).await.unwrap();
    }
    // Same-key moves that empty and refill a key within one command.
    for w in [
        &["RPUSH", "one", "x"][..],
        &["LMOVE", "one", "one", "LEFT", "RIGHT"],
        &["RPOPLPUSH", "one", "one"],
        &["SADD", "s1", "m"],
        &["SMOVE", "s1", "s1", "m"],
    ] {
        cmd(&mut c, w).await.unwrap();
    }
    let before = dump(&s);
    assert_eq!(before.len(), 10, "{before:?}");
    assert!(
        before.iter().all(|e| e.3 == 0),
        "no TTL survives: {before:?}"
    );
    drop(c);
    assert_restart_restores(s, &dir, &before).await;
}

fn newest_log(dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a WAL segment")
}

#[tokio::test]
async fn torn_tail_is_tolerated_mid_file_corruption_refused() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    for i in 0..200 {
        cmd(&mut c, &["SET", &format!("k{i}"), "v"]).await.unwrap();
    }
    drop(c);
    s.shutdown().await;
    let log = newest_log(&dir);
    let mut bytes = std::fs::read(&log).unwrap();
    let clean_len = bytes.len();
    // A torn final write: half a record header and garbage.
    bytes.extend_from_slice(&[0x55, 0x00, 0x00, 0x00, 0xde, 0xad]);
    std::fs::write(&log, &bytes).unwrap();
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump(&s).len(), 200, "every whole record replayed");
    s.shutdown().await;
    assert_eq!(
        std::fs::metadata(&log).unwrap().len() as usize,
        clean_len,
        "tail truncated"
    );

    // A flipped byte in the middle, with valid records after it: refuse.
    let mut bytes = std::fs::read(&log).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();
    let mut cfg = Config::default();
    cfg.set_startup("port", "0").unwrap();
    cfg.set_startup("dir", dir.to_str().unwrap()).unwrap();
    let err = redlog::server::spawn(cfg)
        .await
        .err()
        .expect("refuses to start");
    let msg = err.to_string();
    let name = log.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        msg.contains(&name) && msg.contains("redlog check --repair"),
        "{msg}"
    );

    // `redlog check --repair` keeps the valid prefix; then it starts.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_redlog"))
        .args(["check", "--repair", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("dropped"));
    let s = start_in(&dir, &[]).await;
    let n = dump(&s).len();
    assert!(n > 0 && n < 200, "valid prefix kept: {n}");
    s.shutdown().await;
}

async fn faulty_server(fs: &FaultyFs, dir: &Path, fsync: &str) -> ServerHandle {
    let mut cfg = Config::default();
    cfg.set_startup("port", "0").unwrap();
    cfg.set_startup("dir", dir.to_str().unwrap()).unwrap();
    cfg.set_startup("appendfsync", fsync).unwrap();
    spawn_with_fs(cfg, Arc::new(fs.clone()))
        .await
        .expect("start on FaultyFs")
}

#[tokio::test]
async fn failed_fsync_refuses_writes_keeps_reads_and_acknowledged_data() {
    let dir = temp_dir();
    let fs = FaultyFs::new();
    let s = faulty_server(&fs, &dir, "always").await;
    let mut r = Raw::connect(s.local_addr()).await;
    for i in 0..20 {
        r.check(
            &resp(&[b"SET", format!("k{i}").as_bytes(), b"v"]),
            b"+OK\r\n",
        )
        .await;
    }
    fs.fail_syncs_after(0);
    let misconf = b"-MISCONF Errors writing to the AOF file: injected EIO on fsync\r\n";
    r.check(&resp(&[b"SET", b"late", b"v"]), misconf).await;
    r.check(&resp(&[b"GET", b"k3"]), b"$1\r\nv\r\n").await;
    r.check(&resp(&[b"SET", b"later", b"v"]), misconf).await;
    r.check(&resp(&[b"PING"]), misconf).await;
    let mut c = client(s.local_addr()).await;
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query_async(&mut c)
        .await
        .unwrap();
    drop(c);
    assert!(info.contains("aof_last_write_status:err"), "{info}");
    fs.crash(CrashMode::DropUnsynced);
    fs.clear_faults();
    drop(r);
    s.shutdown().await;
    let s = faulty_server(&fs, &dir, "always").await;
    let d = dump(&s);
    for i in 0..20 {
        assert!(
            d.iter().any(|(_, k, _, _)| k == format!("k{i}").as_bytes()),
            "k{i} acknowledged, kept"
        );
    }
    s.shutdown().await;
}

/// A compaction interrupted at every write or fsync it performs, then a
/// power loss: the restarted server has every acknowledged key, from the
/// old base and log or the new base and log, never a mix.
#[tokio::test]
async fn crash_at_every_compaction_step() {
    let dir = temp_dir();
    let keys = 2500;
    let mut step = 0u64;
    let mut completed = [false, false];
    while !(completed[0] && completed[1]) {
        for (kind, done) in completed.iter_mut().enumerate() {
            if *done {
                continue;
            }
            let fs = FaultyFs::new();
            let s = faulty_server(&fs, &dir, "always").await;
            let mut c = client(s.local_addr()).await;
            for i in 0..keys {
                cmd(&mut c, &["SET", &format!("k{i}"), &format!("v{i}")])
                    .await
                    .unwrap();
            }
            // An older base, so the rewrite also has one to replace.
            if step % 2 == 1 {
                let _: String = redis::cmd("SAVE").query_async(&mut c).await.unwrap();
                cmd(&mut c, &["SET", "after-first-base", "x"])
                    .await
                    .unwrap();
            }
            let expected = dump(&s);
            if kind == 0 {
                fs.fail_writes_after(step);
            } else {
                fs.fail_syncs_after(step);
            }
            let shared = s.shared().clone();
            let r = tokio::task::spawn_blocking(move || shared.rewrite_now())
                .await
                .unwrap();
            *done = r.is_ok();
            fs.crash(CrashMode::DropUnsynced);
            fs.clear_faults();
            drop(c);
            s.shutdown().await;
            let s = faulty_server(&fs, &dir, "always").await;
            assert_eq!(dump(&s), expected, "kind {kind} step {step}");
            s.shutdown().await;
        }
        step += 1;
        assert!(step < 200, "compaction never completed");
    }
}

/// kill -9 while several clients write: every acknowledged write is there
/// after a restart, under each appendfsync policy.
#[test]
fn kill_9_under_load_loses_no_acknowledged_write() {
    for policy in ["always", "everysec", "no"] {
        let dir = temp_dir();
        let port = free_port();
        let spawn = || {
            std::process::Command::new(env!("CARGO_BIN_EXE_redlog"))
                .args([
                    "--port",
                    &port.to_string(),
                    "--dir",
                    dir.to_str().unwrap(),
                    "--appendfsync",
                    policy,
                ])
                .args(["--loglevel", "warning"])
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        let mut child = KillOnDrop(spawn());
        wait_ping(port);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let stop = stop.clone();
                let progress = progress.clone();
                std::thread::spawn(move || {
                    let mut c = wait_ping(port);
                    let mut acked = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let r: redis::RedisResult<String> = redis::cmd("SET")
                            .arg(format!("t{t}:{}", acked + 1))
                            .arg(acked + 1)
                            .query(&mut c);
                        match r {
                            Ok(_) => {
                                acked += 1;
                                if acked == 10 {
                                    progress.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                            }
                            Err(_) => break,
                        }
                        if acked.is_multiple_of(50) {
                            let _: redis::RedisResult<i64> =
                                redis::cmd("INCR").arg(format!("ctr{t}")).query(&mut c);
                        }
                    }
                    acked
                })
            })
            .collect();
        // A pseudo-random moment between 150 and 550 ms.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        // Every writer under way (bounded: a loaded machine is slow), then
        // the random moment.
        for _ in 0..400 {
            if progress.load(std::sync::atomic::Ordering::Relaxed) == 4 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(50 + u64::from(nanos % 400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let acked: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        let mut child = KillOnDrop(spawn());
        let mut c = wait_ping(port);
        for (t, &n) in acked.iter().enumerate() {
            assert!(n > 0, "{policy}: writer {t} made progress");
            for i in 1..=n {
                let v: Option<u64> = redis::cmd("GET")
                    .arg(format!("t{t}:{i}"))
                    .query(&mut c)
                    .unwrap();
                assert_eq!(
                    v,
                    Some(i),
                    "{policy}: acknowledged t{t}:{i} survives kill -9"
                );
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// RESTORE is logged like any write: values of every type (a stream with
/// a group, consumers and PEL included) restored from DUMP payloads come
/// back after a restart, with their TTL.
#[tokio::test]
async fn restored_values_survive_restart() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    let writes: &[&[&str]] = &[
        &["SET", "s", "hello"],
        &["RPUSH", "l", "a", "1", "b"],
        &["SADD", "si", "1", "2"],
        &["SADD", "ss", "x", "y"],
        &["ZADD", "z", "1.5", "a", "2", "b"],
        &["HSET", "h", "f", "v"],
        &["XADD", "x", "1-1", "a", "1"],
        &["XADD", "x", "2-1", "b", "2"],
        &["XGROUP", "CREATE", "x", "g", "0"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "x",
            ">",
        ],
    ];
    for w in writes {
        cmd(&mut c, w).await.unwrap();
    }
    for k in ["s", "l", "si", "ss", "z", "h", "x"] {
        let payload: Vec<u8> = redis::cmd("DUMP").arg(k).query_async(&mut c).await.unwrap();
        let ttl = if k == "s" { 1_000_000 } else { 0 };
        let ok: String = redis::cmd("RESTORE")
            .arg(format!("r:{k}"))
            .arg(ttl)
            .arg(payload)
            .query_async(&mut c)
            .await
            .unwrap();
        assert_eq!(ok, "OK");
        cmd(&mut c, &["DEL", k]).await.unwrap();
    }
    let before = dump(&s);
    assert_eq!(before.len(), 7);
    drop(c);
    assert_restart_restores(s, &dir, &before).await;
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    let range: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg("r:x")
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(range.len(), 2);
    let ttl: i64 = redis::cmd("TTL")
        .arg("r:s")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!((990..=1000).contains(&ttl), "{ttl}");
    let n: i64 = redis::cmd("XLEN")
        .arg("r:x")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 2);
    let p: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg("r:x")
        .arg("g")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(p[0], redis::Value::Int(1), "the PEL survives: {p:?}");
    drop(c);
    s.shutdown().await;
}
