//! List commands end to end: replies byte for byte (taken from redis-server
//! 7.0.15), keyspace notifications, WATCH, effects in the WAL, restart and
//! a compaction in between.

use crate::common;

use common::*;
use redis::AsyncCommands;
use redlog::db::Value;
use redlog::server::ServerHandle;

/// Every key of db 0 with its list content and expiry.
fn lists(s: &ServerHandle) -> Vec<(Vec<u8>, Vec<Vec<u8>>, u64)> {
    let ks = s.shared().ks.lock();
    let mut v: Vec<_> = ks.dbs[0]
        .iter()
        .map(|(k, e)| {
            let items = match &e.value {
                Value::List(l) => l.iter().map(|b| b.to_vec()).collect(),
                other => panic!("not a list: {other:?}"),
            };
            (k.to_vec(), items, e.expires_at_ms)
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn replies_are_byte_exact() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(&resp(&[b"RPUSH", b"l", b"a", b"b", b"c"]), b":3\r\n")
        .await;
    c.check(
        &resp(&[b"LRANGE", b"l", b"0", b"-1"]),
        b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
    )
    .await;
    c.check(&resp(&[b"LPOP", b"nokey"]), b"$-1\r\n").await;
    c.check(&resp(&[b"LPOP", b"nokey", b"1"]), b"*-1\r\n").await;
    c.check(&resp(&[b"LPOP", b"l", b"0"]), b"*0\r\n").await;
    c.check(
        &resp(&[b"RPOP", b"l", b"2"]),
        b"*2\r\n$1\r\nc\r\n$1\r\nb\r\n",
    )
    .await;
    c.check(
        &resp(&[b"LINDEX", b"l", b"x"]),
        b"-ERR value is not an integer or out of range\r\n",
    )
    .await;
    c.check(
        &resp(&[b"LSET", b"nokey", b"0", b"x"]),
        b"-ERR no such key\r\n",
    )
    .await;
    c.check(
        &resp(&[b"LSET", b"l", b"5", b"x"]),
        b"-ERR index out of range\r\n",
    )
    .await;
    c.check(
        &resp(&[b"OBJECT", b"ENCODING", b"l"]),
        b"$9\r\nquicklist\r\n",
    )
    .await;
    c.check(&resp(&[b"SET", b"s", b"v"]), b"+OK\r\n").await;
    c.check(
        &resp(&[b"LPUSH", b"s", b"x"]),
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    )
    .await;
    c.check(
        &resp(&[b"LMPOP", b"2", b"nokey", b"l", b"LEFT", b"COUNT", b"9"]),
        b"*2\r\n$1\r\nl\r\n*1\r\n$1\r\na\r\n",
    )
    .await;
    c.check(&resp(&[b"EXISTS", b"l"]), b":0\r\n").await;
    resp3(&s, &[b"LPOP", b"nokey", b"1"], b"_\r\n");
    resp3(&s, &[b"LMPOP", b"1", b"nokey", b"LEFT"], b"_\r\n");
    resp3(&s, &[b"LPOS", b"nokey", b"a"], b"_\r\n");
    s.shutdown().await;
}

#[tokio::test]
async fn commands_through_a_client() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    let n: i64 = c.rpush("l", &["1", "2", "3", "2", "1"]).await.unwrap();
    assert_eq!(n, 5);
    let n: i64 = c.lpush("l", "0").await.unwrap();
    assert_eq!(n, 6);
    let v: Vec<String> = c.lrange("l", 0, -1).await.unwrap();
    assert_eq!(v, ["0", "1", "2", "3", "2", "1"]);
    let n: i64 = c.lrem("l", -1, "2").await.unwrap();
    assert_eq!(n, 1);
    let n: i64 = redis::cmd("LINSERT")
        .arg("l")
        .arg("AFTER")
        .arg("3")
        .arg("x")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 6);
    let p: Vec<i64> = redis::cmd("LPOS")
        .arg("l")
        .arg("1")
        .arg("COUNT")
        .arg("0")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(p, [1, 5]);
    let _: () = c.ltrim("l", 1, -2).await.unwrap();
    let v: Vec<String> = c.lrange("l", 0, -1).await.unwrap();
    assert_eq!(v, ["1", "2", "3", "x"]);
    let moved: String = redis::cmd("LMOVE")
        .arg("l")
        .arg("d")
        .arg("RIGHT")
        .arg("LEFT")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(moved, "x");
    let t: String = redis::cmd("TYPE")
        .arg("d")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(t, "list");
    let n: i64 = c.llen("l").await.unwrap();
    assert_eq!(n, 3);
    s.shutdown().await;
}

#[tokio::test]
async fn notifications_and_watch() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(
        &resp(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEAn"]),
        b"+OK\r\n",
    )
    .await;
    let mut tap = Events::tap(s.local_addr()).await;
    c.check(&resp(&[b"RPUSH", b"src", b"a"]), b":1\r\n").await;
    c.check(
        &resp(&[b"LMOVE", b"src", b"dst", b"LEFT", b"LEFT"]),
        b"$1\r\na\r\n",
    )
    .await;
    assert_eq!(
        tap.take().await,
        [
            "new:src",
            "rpush:src",
            "new:dst",
            "lpush:dst",
            "lpop:src",
            "del:src"
        ]
    );
    // WATCH sees a push from another client.
    let mut other = Raw::connect(s.local_addr()).await;
    c.check(&resp(&[b"WATCH", b"dst"]), b"+OK\r\n").await;
    other
        .check(&resp(&[b"RPUSH", b"dst", b"b"]), b":2\r\n")
        .await;
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    c.check(&resp(&[b"LLEN", b"dst"]), b"+QUEUED\r\n").await;
    c.check(&resp(&[b"EXEC"]), b"*-1\r\n").await;
    s.shutdown().await;
}

#[tokio::test]
async fn restart_replays_list_operations() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    let _: () = redis::pipe()
        .cmd("RPUSH")
        .arg("a")
        .arg(&["1", "2", "3", "4", "5", "6"])
        .ignore()
        .cmd("LPUSH")
        .arg("a")
        .arg("0")
        .ignore()
        .cmd("LSET")
        .arg("a")
        .arg("-1")
        .arg("six")
        .ignore()
        .cmd("LINSERT")
        .arg("a")
        .arg("BEFORE")
        .arg("3")
        .arg("2.5")
        .ignore()
        .cmd("LREM")
        .arg("a")
        .arg("1")
        .arg("1")
        .ignore()
        .cmd("LTRIM")
        .arg("a")
        .arg("1")
        .arg("-1")
        .ignore()
        .cmd("RPOP")
        .arg("a")
        .arg("2")
        .ignore()
        .cmd("RPUSH")
        .arg("b")
        .arg("x")
        .ignore()
        .cmd("PEXPIRE")
        .arg("b")
        .arg("1000000")
        .ignore()
        // Source = destination with one element: the key keeps its TTL.
        .cmd("LMOVE")
        .arg("b")
        .arg("b")
        .arg("LEFT")
        .arg("RIGHT")
        .ignore()
        .cmd("RPOPLPUSH")
        .arg("a")
        .arg("c")
        .ignore()
        .cmd("RPUSH")
        .arg("gone")
        .arg("x")
        .ignore()
        .cmd("LPOP")
        .arg("gone")
        .ignore()
        .cmd("RPUSH")
        .arg("bin")
        .arg(&b"\x00\xff"[..])
        .arg("")
        .ignore()
        .query_async(&mut c)
        .await
        .unwrap();
    let before = lists(&s);
    assert_eq!(before.len(), 4, "{before:?}");
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    assert_eq!(lists(&s), before);
    // A compaction, more operations, another restart.
    let mut c = client(s.local_addr()).await;
    let _: () = redis::cmd("BGREWRITEAOF")
        .query_async(&mut c)
        .await
        .unwrap();
    for _ in 0..200 {
        let busy = s.shared().persist.as_ref().is_some_and(|p| {
            p.rewrite_in_progress
                .load(std::sync::atomic::Ordering::SeqCst)
        });
        if !busy {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let _: () = c.rpush("a", "after").await.unwrap();
    let _: () = redis::cmd("LMPOP")
        .arg(1)
        .arg("c")
        .arg("LEFT")
        .query_async(&mut c)
        .await
        .unwrap();
    let before = lists(&s);
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    assert_eq!(lists(&s), before);
    s.shutdown().await;
}

#[tokio::test]
async fn large_list_ranges() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    let items: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
    let n: i64 = c.rpush("big", &items).await.unwrap();
    assert_eq!(n, 10_000);
    let v: Vec<String> = c.lrange("big", 100, 699).await.unwrap();
    assert_eq!(v.len(), 600);
    assert_eq!(v[0], "100");
    let v: Option<String> = c.lindex("big", -1).await.unwrap();
    assert_eq!(v.as_deref(), Some("9999"));
    let p: Option<i64> = redis::cmd("LPOS")
        .arg("big")
        .arg("5000")
        .arg("RANK")
        .arg("-1")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(p, Some(5000));
    s.shutdown().await;
}
