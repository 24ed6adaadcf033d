//! Hash commands end to end: exact replies (bytes recorded from redis-server
//! 7.0.15), errors and WRONGTYPE, the effects logged for the WAL
//! (operations, never requests), HSCAN under churn, and restart / compaction
//! replay with encodings preserved.

use crate::common;

use common::*;
use redlog::db::effect::Effect;
use redlog::server::ServerHandle;

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
    r.check(&resp(&[b"HSET", b"h", b"b", b"1", b"a", b"2"]), b":2\r\n")
        .await;
    r.check(&resp(&[b"HSET", b"h", b"b", b"3", b"c", b"4"]), b":1\r\n")
        .await;
    // Insertion order, an update keeping its place (listpack).
    r.check(
        &resp(&[b"HGETALL", b"h"]),
        b"*6\r\n$1\r\nb\r\n$1\r\n3\r\n$1\r\na\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n4\r\n",
    )
    .await;
    r.check(
        &resp(&[b"HMGET", b"h", b"a", b"zz"]),
        b"*2\r\n$1\r\n2\r\n$-1\r\n",
    )
    .await;
    r.check(
        &resp(&[b"HSET", b"h", b"odd"]),
        b"-ERR wrong number of arguments for 'hset' command\r\n",
    )
    .await;
    r.check(
        &resp(&[b"HINCRBY", b"h", b"a", b"x"]),
        b"-ERR value is not an integer or out of range\r\n",
    )
    .await;
    r.check(&resp(&[b"HSET", b"h", b"s", b"abc"]), b":1\r\n")
        .await;
    r.check(
        &resp(&[b"HINCRBY", b"h", b"s", b"1"]),
        b"-ERR hash value is not an integer\r\n",
    )
    .await;
    r.check(
        &resp(&[b"HINCRBYFLOAT", b"h", b"s", b"1"]),
        b"-ERR hash value is not a float\r\n",
    )
    .await;
    r.check(
        &resp(&[b"HINCRBYFLOAT", b"h", b"f", b"0.1"]),
        b"$3\r\n0.1\r\n",
    )
    .await;
    r.check(
        &resp(&[b"HINCRBYFLOAT", b"h", b"f", b"0.2"]),
        b"$3\r\n0.3\r\n",
    )
    .await;
    r.check(&resp(&[b"HRANDFIELD", b"h", b"-9223372036854775808"]), b"-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807\r\n")
        .await;
    r.check(
        &resp(&[b"HSCAN", b"h", b"0", b"MATCH", b"[ab]"]),
        b"*2\r\n$1\r\n0\r\n*4\r\n$1\r\nb\r\n$1\r\n3\r\n$1\r\na\r\n$1\r\n2\r\n",
    )
    .await;
    r.check(&resp(&[b"SET", b"str", b"v"]), b"+OK\r\n").await;
    r.check(
        &resp(&[b"HGET", b"str", b"f"]),
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    )
    .await;
    // RESP3: HGETALL is a map, HRANDFIELD WITHVALUES nests pairs, a
    // missing key's HRANDFIELD with count is an empty array.
    resp3(&s, &[b"HSET", b"one", b"f", b"v"], b":1\r\n");
    resp3(&s, &[b"HGETALL", b"one"], b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    resp3(&s, &[b"HGETALL", b"nokey"], b"%0\r\n");
    resp3(
        &s,
        &[b"HRANDFIELD", b"one", b"-2", b"WITHVALUES"],
        b"*2\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
    );
    resp3(&s, &[b"HRANDFIELD", b"nokey", b"3"], b"*0\r\n");
    resp3(&s, &[b"HRANDFIELD", b"nokey"], b"_\r\n");
    s.shutdown().await;
}

#[tokio::test]
async fn encodings_follow_the_configured_limits() {
    let s = start_with(&[
        ("hash-max-listpack-entries", "4"),
        ("hash-max-listpack-value", "8"),
    ])
    .await;
    let mut c = client(s.local_addr()).await;
    let enc = |k: &'static str| redis::cmd("OBJECT").arg("ENCODING").arg(k).clone();
    let _: i64 = q(
        &mut c,
        &["HSET", "h", "a", "1", "b", "2", "c", "3", "d", "4"],
    )
    .await
    .unwrap();
    let e: String = enc("h").query_async(&mut c).await.unwrap();
    assert_eq!(e, "listpack");
    let _: i64 = q(&mut c, &["HSET", "h", "e", "5"]).await.unwrap();
    let e: String = enc("h").query_async(&mut c).await.unwrap();
    assert_eq!(
        e, "hashtable",
        "more entries than hash-max-listpack-entries"
    );
    let _: i64 = q(&mut c, &["HSET", "v", "a", "123456789"]).await.unwrap();
    let e: String = enc("v").query_async(&mut c).await.unwrap();
    assert_eq!(
        e, "hashtable",
        "a value longer than hash-max-listpack-value"
    );
    // HINCRBYFLOAT's long result converts too (hashTypeSet's check).
    let _: i64 = q(&mut c, &["HSET", "f", "x", "1"]).await.unwrap();
    let v: String = q(&mut c, &["HINCRBYFLOAT", "f", "x", "0.123456789"])
        .await
        .unwrap();
    assert_eq!(v, "1.123456789");
    let e: String = enc("f").query_async(&mut c).await.unwrap();
    assert_eq!(e, "hashtable");
    let t: String = q(&mut c, &["TYPE", "f"]).await.unwrap();
    assert_eq!(t, "hash");
    s.shutdown().await;
}

#[tokio::test]
async fn writes_are_logged_as_operations_with_results() {
    let s = start().await;
    // A new hash: its final state (it holds only what the command wrote).
    let (_, e) = run(&s, &[b"HSET", b"h", b"a", b"1"]);
    assert!(
        matches!(&e[..], [Effect::Set { key, .. }] if key.as_ref() == b"h"),
        "{e:?}"
    );
    // An existing hash: the fields set, never the whole hash.
    let (_, e) = run(&s, &[b"HSET", b"h", b"b", b"2", b"a", b"9"]);
    assert_eq!(
        e,
        vec![Effect::HashSet {
            db: 0,
            key: "h".into(),
            table: false,
            pairs: vec![("b".into(), "2".into()), ("a".into(), "9".into())],
        }]
    );
    // HINCRBYFLOAT logs the value it stored, not the increment.
    run(&s, &[b"HINCRBYFLOAT", b"h", b"f", b"0.1"]);
    let (reply, e) = run(&s, &[b"HINCRBYFLOAT", b"h", b"f", b"0.2"]);
    assert_eq!(reply, "$3\r\n0.3\r\n");
    assert_eq!(
        e,
        vec![Effect::HashSet {
            db: 0,
            key: "h".into(),
            table: false,
            pairs: vec![("f".into(), "0.3".into())],
        }]
    );
    let (_, e) = run(&s, &[b"HINCRBY", b"h", b"a", b"-10"]);
    assert!(
        matches!(&e[..], [Effect::HashSet { pairs, .. }] if pairs[0].1.as_ref() == b"-1"),
        "{e:?}"
    );
    // A conversion is logged in the effect.
    let long = vec![b'x'; 65];
    let (_, e) = run(&s, &[b"HSET", b"h", b"long", &long]);
    assert!(
        matches!(&e[..], [Effect::HashSet { table: true, .. }]),
        "{e:?}"
    );
    let (_, e) = run(&s, &[b"HDEL", b"h", b"b", b"nothere"]);
    assert_eq!(
        e,
        vec![Effect::HashDel {
            db: 0,
            key: "h".into(),
            fields: vec!["b".into()],
        }]
    );
    // Errors and no-ops log nothing.
    assert!(run(&s, &[b"HINCRBY", b"h", b"long", b"1"]).1.is_empty());
    assert!(run(&s, &[b"HSETNX", b"h", b"a", b"x"]).1.is_empty());
    assert!(run(&s, &[b"HDEL", b"h", b"nothere"]).1.is_empty());
    // The last field deleted: the key goes, logged as a Del.
    run(&s, &[b"HSET", b"one", b"f", b"v"]);
    let (reply, e) = run(&s, &[b"HDEL", b"one", b"f"]);
    assert_eq!(reply, ":1\r\n");
    assert_eq!(
        e,
        vec![Effect::Del {
            db: 0,
            key: "one".into()
        }]
    );
    s.shutdown().await;
}

#[tokio::test]
async fn hscan_returns_every_stable_field_under_churn() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    for chunk in 0..4 {
        let mut cmd = redis::cmd("HSET");
        cmd.arg("big");
        for i in 0..250 {
            cmd.arg(format!("f{}", chunk * 250 + i)).arg(i);
        }
        let _: i64 = cmd.query_async(&mut c).await.unwrap();
    }
    let enc: String = q(&mut c, &["OBJECT", "ENCODING", "big"]).await.unwrap();
    assert_eq!(enc, "hashtable");
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let (next, items): (String, Vec<String>) =
            q(&mut c, &["HSCAN", "big", &cursor, "COUNT", "20"])
                .await
                .unwrap();
        assert!(items.len() % 2 == 0);
        for pair in items.chunks(2) {
            seen.insert(pair[0].clone());
        }
        // Churn: other fields come and go between calls.
        let _: i64 = q(&mut c, &["HSET", "big", &format!("tmp{calls}"), "x"])
            .await
            .unwrap();
        if calls > 0 {
            let _: i64 = q(&mut c, &["HDEL", "big", &format!("tmp{}", calls - 1)])
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
    assert!(calls > 10, "a table hash is scanned in several calls");
    for i in 0..1000 {
        assert!(seen.contains(&format!("f{i}")), "f{i} missed");
    }
    s.shutdown().await;
}

#[tokio::test]
async fn restart_and_compaction_replay_hashes_exactly() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    let long = "y".repeat(70);
    let script: Vec<Vec<String>> = vec![
        vec![
            "HSET".into(),
            "small".into(),
            "b".into(),
            "1".into(),
            "a".into(),
            "2".into(),
        ],
        vec![
            "HSET".into(),
            "small".into(),
            "c".into(),
            "3".into(),
            "b".into(),
            "9".into(),
        ],
        vec!["HDEL".into(), "small".into(), "a".into()],
        vec!["HINCRBY".into(), "small".into(), "n".into(), "5".into()],
        vec![
            "HINCRBYFLOAT".into(),
            "small".into(),
            "fl".into(),
            "0.1".into(),
        ],
        vec![
            "HINCRBYFLOAT".into(),
            "small".into(),
            "fl".into(),
            "0.2".into(),
        ],
        vec!["HSETNX".into(), "small".into(), "nx".into(), "v".into()],
        vec!["HMSET".into(), "conv".into(), "a".into(), "1".into()],
        vec!["HSET".into(), "conv".into(), "long".into(), long.clone()],
        vec!["HDEL".into(), "conv".into(), "long".into()],
        vec!["HSET".into(), "gone".into(), "f".into(), "v".into()],
        vec!["HDEL".into(), "gone".into(), "f".into()],
        vec!["HSET".into(), "ttl".into(), "f".into(), "v".into()],
        vec!["EXPIRE".into(), "ttl".into(), "1000".into()],
        vec!["HSET".into(), "ttl".into(), "g".into(), "w".into()],
    ];
    for line in &script {
        let mut k = redis::cmd(&line[0]);
        for a in &line[1..] {
            k.arg(a);
        }
        let _: redis::Value = k.query_async(&mut c).await.unwrap();
    }
    let mut big = redis::cmd("HSET");
    big.arg("big");
    for i in 0..600 {
        big.arg(format!("f{i}")).arg(i);
    }
    let _: i64 = big.query_async(&mut c).await.unwrap();
    let _: i64 = q(&mut c, &["HDEL", "big", "f1", "f2"]).await.unwrap();
    let before = dump_all(&s);
    drop(c);
    s.shutdown().await;

    let s = start_in(&dir, &[]).await;
    assert_eq!(dump_all(&s), before, "replay of the WAL");
    let mut c = client(s.local_addr()).await;
    let all: Vec<String> = q(&mut c, &["HGETALL", "small"]).await.unwrap();
    assert_eq!(all, ["b", "9", "c", "3", "n", "5", "fl", "0.3", "nx", "v"]);
    let enc: String = q(&mut c, &["OBJECT", "ENCODING", "conv"]).await.unwrap();
    assert_eq!(enc, "hashtable", "a conversion survives replay");
    let n: i64 = q(&mut c, &["EXISTS", "gone"]).await.unwrap();
    assert_eq!(n, 0);
    // Compaction writes a base with the full values; replay it too.
    let _: String = q(&mut c, &["BGREWRITEAOF"]).await.unwrap();
    for _ in 0..500 {
        let info: String = q(&mut c, &["INFO", "persistence"]).await.unwrap();
        if info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrites:1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let _: i64 = q(&mut c, &["HSET", "small", "after", "base"])
        .await
        .unwrap();
    let before = dump_all(&s);
    drop(c);
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump_all(&s), before, "replay of base + tail");
    s.shutdown().await;
}
