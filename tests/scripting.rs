//! Lua scripting beyond the golden replies: a script's effects are one WAL
//! unit (all or nothing after a torn write), writes of a failing script
//! survive a restart, keyspace notifications from script writes, and the
//! `redis` crate's `Script` (EVALSHA with the EVAL fallback).

mod common;

use common::*;
use redlog::server::ServerHandle;
use std::path::{Path, PathBuf};

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

fn newest_log(dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a WAL segment")
}

fn script_keys(s: &ServerHandle) -> usize {
    dump_all(s)
        .iter()
        .filter(|(_, k, _, _)| k.starts_with(b"sk"))
        .count()
}

const WRITE_100: &str =
    "for i = 1, 100 do redis.call('set', 'sk' .. i, string.rep('v', 50)) end return 1";

#[tokio::test]
async fn script_effects_are_one_wal_unit() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    cmd(&mut c, &["SET", "before", "1"]).await.unwrap();
    let log = newest_log(&dir);
    let start = std::fs::metadata(&log).unwrap().len() as usize;
    cmd(&mut c, &["EVAL", WRITE_100, "0"]).await.unwrap();
    let end = std::fs::metadata(&log).unwrap().len() as usize;
    assert!(end > start + 100 * 50, "the script's writes are logged");
    drop(c);
    s.shutdown().await;
    let whole = std::fs::read(&log).unwrap();
    // Cut the log anywhere inside the script's record: replay applies none
    // of its writes; whole, it applies all of them.
    for cut in (start..=end).step_by(97).chain([end]) {
        std::fs::write(&log, &whole[..cut]).unwrap();
        let s = start_in(&dir, &[]).await;
        let n = script_keys(&s);
        if cut == end {
            assert_eq!(n, 100, "whole unit replayed");
        } else {
            assert_eq!(n, 0, "cut at {cut}: a torn unit is not replayed");
        }
        assert_eq!(dump_all(&s).len() - n, 1, "the SET before stays");
        s.shutdown().await;
    }
}

#[tokio::test]
async fn failing_script_keeps_its_writes_across_restart() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    cmd(&mut c, &["SET", "str", "notanumber"]).await.unwrap();
    let r = cmd(
        &mut c,
        &[
            "EVAL",
            "redis.call('set', 'half', '1'); redis.call('incr', 'str'); redis.call('set', 'half', '2')",
            "0",
        ],
    )
    .await;
    assert!(r.is_err());
    drop(c);
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    let v: Option<String> = redis::cmd("GET")
        .arg("half")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("1"));
    s.shutdown().await;
}

#[tokio::test]
async fn script_writes_notify() {
    let s = start_with(&[("notify-keyspace-events", "KEA")]).await;
    let mut tap = Events::tap(s.local_addr()).await;
    let mut c = client(s.local_addr()).await;
    cmd(
        &mut c,
        &[
            "EVAL",
            "redis.call('set', KEYS[1], 'v'); redis.call('rpush', 'l', 'a'); return redis.call('del', KEYS[1])",
            "1",
            "k",
        ],
    )
    .await
    .unwrap();
    assert_eq!(tap.take().await, ["set:k", "rpush:l", "del:k"]);
    s.shutdown().await;
}

#[tokio::test]
async fn redis_crate_script_uses_evalsha_then_eval() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    let script = redis::Script::new(
        "local v = redis.call('incrby', KEYS[1], ARGV[1]); redis.call('expire', KEYS[1], 100); return v",
    );
    // Not cached yet: the crate's EVALSHA gets NOSCRIPT and falls back to EVAL.
    let a: i64 = script.key("ctr").arg(5).invoke_async(&mut c).await.unwrap();
    let b: i64 = script.key("ctr").arg(2).invoke_async(&mut c).await.unwrap();
    assert_eq!((a, b), (5, 7));
    let ttl: i64 = redis::cmd("TTL")
        .arg("ctr")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 100);
    let exists: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(script.get_hash())
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(exists, [1]);
    s.shutdown().await;
}
