//! SORT beyond the goldens: STORE's keyspace events, and its result kept
//! across a restart.

use crate::common;
use common::*;

#[tokio::test]
async fn sort_store_notifies_and_persists() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(
        &resp(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"]),
        b"+OK\r\n",
    )
    .await;
    c.check(&resp(&[b"RPUSH", b"l", b"3", b"1", b"2"]), b":3\r\n")
        .await;
    let mut tap = Events::tap(s.local_addr()).await;
    c.check(&resp(&[b"SORT", b"l", b"STORE", b"d"]), b":3\r\n")
        .await;
    // As redis-server 7.0.15: `sortstore` (class l); no `new` without n.
    assert_eq!(tap.take().await, ["sortstore:d"]);
    c.check(
        &resp(&[b"SORT", b"l", b"LIMIT", b"0", b"0", b"STORE", b"d"]),
        b":0\r\n",
    )
    .await;
    assert_eq!(tap.take().await, ["del:d"]);
    c.check(&resp(&[b"SORT", b"l", b"DESC", b"STORE", b"d"]), b":3\r\n")
        .await;
    let before = dump_all(&s);
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump_all(&s), before);
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(
        &resp(&[b"LRANGE", b"d", b"0", b"-1"]),
        b"*3\r\n$1\r\n3\r\n$1\r\n2\r\n$1\r\n1\r\n",
    )
    .await;
    s.shutdown().await;
}
