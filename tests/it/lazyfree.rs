//! Lazy freeing (issue 16): UNLINK, FLUSHALL/FLUSHDB ASYNC and the
//! `lazyfree-lazy-*` settings hand values above Redis's LAZYFREE_THRESHOLD
//! (64 allocations) to the background thread; INFO counts them
//! (`lazyfree_pending_objects`, `lazyfreed_objects`, memory section as in
//! 7.0). Deletions stay durable through the WAL.
//!
//! The freeing thread runs on its own; the tests wait for
//! `lazyfree_pending_objects:0` (polling, no fixed sleeps) before reading
//! the freed count.

use crate::common;
use common::*;
use redis::aio::MultiplexedConnection;

async fn q<T: redis::FromRedisValue>(c: &mut MultiplexedConnection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(c)
        .await
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// An INFO field of the memory section.
async fn info(c: &mut MultiplexedConnection, field: &str) -> u64 {
    let text: String = q(c, &["INFO", "memory"]).await;
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("INFO memory has no {field}"))
        .parse()
        .unwrap()
}

/// `lazyfreed_objects` once nothing is pending.
async fn freed(c: &mut MultiplexedConnection) -> u64 {
    for _ in 0..100_000 {
        if info(c, "lazyfree_pending_objects").await == 0 {
            return info(c, "lazyfreed_objects").await;
        }
        tokio::task::yield_now().await;
    }
    panic!("lazy-free thread never caught up");
}

/// A set of `n` members (a table: members are not integers).
async fn big_set(c: &mut MultiplexedConnection, key: &str, n: usize) {
    let members: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    let mut cmd = redis::cmd("SADD");
    cmd.arg(key);
    for m in &members {
        cmd.arg(m);
    }
    let added: usize = cmd.query_async(c).await.unwrap();
    assert_eq!(added, n);
}

#[tokio::test]
async fn unlink_frees_large_values_off_the_lock_and_counts_them() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    assert_eq!(freed(&mut c).await, 0);
    big_set(&mut c, "big", 1000).await;
    big_set(&mut c, "at-threshold", 64).await;
    q::<()>(&mut c, &["SET", "str", "v"]).await;
    let n: i64 = q(&mut c, &["UNLINK", "big", "at-threshold", "str", "nokey"]).await;
    assert_eq!(n, 3);
    // Only the value above the threshold went to the thread.
    assert_eq!(freed(&mut c).await, 1);
    let n: i64 = q(&mut c, &["EXISTS", "big", "at-threshold", "str"]).await;
    assert_eq!(n, 0);
    // DEL is synchronous unless lazyfree-lazy-user-del says otherwise.
    big_set(&mut c, "big", 1000).await;
    let _: i64 = q(&mut c, &["DEL", "big"]).await;
    assert_eq!(freed(&mut c).await, 1);
    q::<()>(&mut c, &["CONFIG", "SET", "lazyfree-lazy-user-del", "yes"]).await;
    big_set(&mut c, "big", 1000).await;
    let _: i64 = q(&mut c, &["DEL", "big"]).await;
    assert_eq!(freed(&mut c).await, 2);
    // A list's effort is its node count, a hash's and a sorted set's their
    // elements: each counts once.
    let mut rpush = redis::cmd("RPUSH");
    rpush.arg("list");
    let big_item = "x".repeat(1000);
    for _ in 0..1000 {
        rpush.arg(&big_item);
    }
    let _: i64 = rpush.query_async(&mut c).await.unwrap();
    let mut hset = redis::cmd("HSET");
    hset.arg("hash");
    let mut zadd = redis::cmd("ZADD");
    zadd.arg("zset");
    for i in 0..600 {
        hset.arg(format!("f{i}")).arg(i);
        zadd.arg(i).arg(format!("m{i}"));
    }
    let _: i64 = hset.query_async(&mut c).await.unwrap();
    let _: i64 = zadd.query_async(&mut c).await.unwrap();
    let n: i64 = q(&mut c, &["UNLINK", "list", "hash", "zset"]).await;
    assert_eq!(n, 3);
    assert_eq!(freed(&mut c).await, 5);
    s.shutdown().await;
}

#[tokio::test]
async fn flush_async_hands_whole_databases_over() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    for i in 0..10 {
        q::<()>(&mut c, &["SET", &format!("k{i}"), "v"]).await;
    }
    q::<()>(&mut c, &["SELECT", "2"]).await;
    big_set(&mut c, "s", 100).await;
    // FLUSHDB SYNC and a plain FLUSHDB (lazyfree-lazy-user-flush no) free here.
    q::<()>(&mut c, &["FLUSHDB", "SYNC"]).await;
    assert_eq!(freed(&mut c).await, 0);
    big_set(&mut c, "s", 100).await;
    q::<()>(&mut c, &["FLUSHDB", "ASYNC"]).await;
    assert_eq!(freed(&mut c).await, 1, "one key in db 2");
    q::<()>(&mut c, &["FLUSHALL", "ASYNC"]).await;
    assert_eq!(freed(&mut c).await, 11, "ten keys in db 0");
    let n: i64 = q(&mut c, &["DBSIZE"]).await;
    assert_eq!(n, 0);
    q::<()>(
        &mut c,
        &["CONFIG", "SET", "lazyfree-lazy-user-flush", "yes"],
    )
    .await;
    q::<()>(&mut c, &["SET", "a", "1"]).await;
    q::<()>(&mut c, &["SET", "b", "1"]).await;
    q::<()>(&mut c, &["FLUSHALL"]).await;
    assert_eq!(freed(&mut c).await, 13);
    q::<()>(&mut c, &["SET", "a", "1"]).await;
    q::<()>(&mut c, &["FLUSHALL", "SYNC"]).await;
    assert_eq!(freed(&mut c).await, 13, "SYNC wins over the setting");
    s.shutdown().await;
}

#[tokio::test]
async fn server_del_and_expire_settings_take_effect() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    big_set(&mut c, "k", 500).await;
    q::<()>(&mut c, &["SET", "k", "overwritten"]).await;
    assert_eq!(freed(&mut c).await, 0, "lazyfree-lazy-server-del no");
    q::<()>(
        &mut c,
        &["CONFIG", "SET", "lazyfree-lazy-server-del", "yes"],
    )
    .await;
    big_set(&mut c, "k2", 500).await;
    q::<()>(&mut c, &["SET", "k2", "overwritten"]).await;
    assert_eq!(freed(&mut c).await, 1);
    q::<()>(&mut c, &["CONFIG", "SET", "lazyfree-lazy-expire", "yes"]).await;
    big_set(&mut c, "e", 500).await;
    let _: i64 = q(&mut c, &["PEXPIRE", "e", "1"]).await;
    // Wait for the expiry (lazy on access or by the active cycle).
    loop {
        let n: i64 = q(&mut c, &["EXISTS", "e"]).await;
        if n == 0 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(freed(&mut c).await, 2);
    s.shutdown().await;
}

#[tokio::test]
async fn lazy_deletions_survive_a_restart() {
    let dir = temp_dir();
    let s = start_in(&dir, &[("appendonly", "yes")]).await;
    let mut c = client(s.local_addr()).await;
    big_set(&mut c, "gone", 1000).await;
    big_set(&mut c, "kept", 1000).await;
    let _: i64 = q(&mut c, &["UNLINK", "gone"]).await;
    q::<()>(&mut c, &["SELECT", "1"]).await;
    big_set(&mut c, "flushed", 1000).await;
    q::<()>(&mut c, &["FLUSHDB", "ASYNC"]).await;
    s.shutdown().await;
    let s = start_in(&dir, &[("appendonly", "yes")]).await;
    let mut c = client(s.local_addr()).await;
    let n: i64 = q(&mut c, &["EXISTS", "gone", "kept"]).await;
    assert_eq!(n, 1);
    let n: i64 = q(&mut c, &["SCARD", "kept"]).await;
    assert_eq!(n, 1000);
    q::<()>(&mut c, &["SELECT", "1"]).await;
    let n: i64 = q(&mut c, &["DBSIZE"]).await;
    assert_eq!(n, 0);
    s.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
