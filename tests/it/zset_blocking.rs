//! Blocking sorted-set pops (BZPOPMIN, BZPOPMAX, BZMPOP): FIFO wake order,
//! ZADD on an existing key waking a waiter, timeouts in RESP2 and RESP3,
//! MULTI, wrong types. Expected bytes are those of redis-server 7.0.15.

use crate::common;

use common::*;
use std::time::Duration;

async fn expect(c: &mut Raw, expected: &[u8]) {
    let got = c.read_exact_len(expected.len()).await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected)
    );
}

#[tokio::test]
async fn fifo_wake_order_and_zadd_on_existing_key() {
    let s = start().await;
    let mut a = blocked(&s, &[b"BZPOPMIN", b"z", b"0"], 1).await;
    let mut b = blocked(&s, &[b"BZPOPMAX", b"other", b"z", b"0"], 2).await;
    let mut c = blocked(
        &s,
        &[b"BZMPOP", b"0", b"1", b"z", b"MIN", b"COUNT", b"5"],
        3,
    )
    .await;
    let mut w = Raw::connect(s.local_addr()).await;
    // One ZADD of three members creates the key: served oldest first.
    w.check(
        &resp(&[b"ZADD", b"z", b"1", b"a", b"2", b"b", b"3", b"c"]),
        b":3\r\n",
    )
    .await;
    expect(&mut a, b"*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n").await;
    expect(&mut b, b"*3\r\n$1\r\nz\r\n$1\r\nc\r\n$1\r\n3\r\n").await;
    expect(
        &mut c,
        b"*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n",
    )
    .await;
    w.check(&resp(&[b"EXISTS", b"z"]), b":0\r\n").await;
    assert_eq!(s.shared().ks.lock().blocked_clients(), 0);

    // Inside a transaction the waiter is served after EXEC from the final
    // state: RENAME creates the key, then a ZADD to the existing key adds
    // the higher score that BZPOPMAX takes.
    w.check(&resp(&[b"ZADD", b"y", b"5", b"m"]), b":1\r\n")
        .await;
    let mut d = blocked(&s, &[b"BZPOPMAX", b"none", b"0"], 1).await;
    w.check(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    w.check(&resp(&[b"RENAME", b"y", b"none"]), b"+QUEUED\r\n")
        .await;
    w.check(&resp(&[b"ZADD", b"none", b"7", b"n"]), b"+QUEUED\r\n")
        .await;
    w.check(&resp(&[b"EXEC"]), b"*2\r\n+OK\r\n:1\r\n").await;
    expect(&mut d, b"*3\r\n$4\r\nnone\r\n$1\r\nn\r\n$1\r\n7\r\n").await;
    w.check(
        &resp(&[b"ZRANGE", b"none", b"0", b"-1"]),
        b"*1\r\n$1\r\nm\r\n",
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn timeouts_in_resp2_and_resp3() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let t = std::time::Instant::now();
    c.check(&resp(&[b"BZPOPMIN", b"e", b"0.1"]), b"*-1\r\n")
        .await;
    assert!(
        t.elapsed() >= Duration::from_millis(95),
        "{:?}",
        t.elapsed()
    );
    c.check(&resp(&[b"BZPOPMAX", b"e", b"f", b"0.05"]), b"*-1\r\n")
        .await;
    c.check(&resp(&[b"BZMPOP", b"0.05", b"1", b"e", b"MAX"]), b"*-1\r\n")
        .await;
    let mut c3 = Raw::connect(s.local_addr()).await;
    c3.send(&resp(&[b"HELLO", b"3"])).await;
    let _ = c3.read_exact_len(1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut drain = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(50), async {
        use tokio::io::AsyncReadExt;
        c3.stream.read(&mut drain).await
    })
    .await;
    c3.check(&resp(&[b"BZPOPMIN", b"e", b"0.05"]), b"_\r\n")
        .await;
    c3.check(&resp(&[b"BZMPOP", b"0.05", b"1", b"e", b"MAX"]), b"_\r\n")
        .await;
    // RESP3 replies carry double scores.
    c3.check(&resp(&[b"ZADD", b"z", b"1.5", b"a", b"2", b"b"]), b":2\r\n")
        .await;
    c3.check(
        &resp(&[b"BZPOPMIN", b"z", b"0"]),
        b"*3\r\n$1\r\nz\r\n$1\r\na\r\n,1.5\r\n",
    )
    .await;
    c3.check(
        &resp(&[b"BZMPOP", b"0", b"1", b"z", b"MAX", b"COUNT", b"2"]),
        b"*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\nb\r\n,2\r\n",
    )
    .await;
    assert_eq!(s.shared().ks.lock().blocked_clients(), 0);
    s.shutdown().await;
}

#[tokio::test]
async fn multi_errors_and_wrong_type() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    c.check(&resp(&[b"BZPOPMIN", b"e", b"0"]), b"+QUEUED\r\n")
        .await;
    c.check(
        &resp(&[b"BZMPOP", b"0", b"1", b"e", b"MIN"]),
        b"+QUEUED\r\n",
    )
    .await;
    c.check(&resp(&[b"EXEC"]), b"*2\r\n*-1\r\n*-1\r\n").await;
    c.check(
        &resp(&[b"BZMPOP", b"0", b"0", b"e", b"MAX"]),
        b"-ERR numkeys should be greater than 0\r\n",
    )
    .await;
    // The arguments after the timeout are checked before it.
    c.check(
        &resp(&[b"BZMPOP", b"x", b"1", b"e", b"MAX"]),
        b"-ERR timeout is not a float or out of range\r\n",
    )
    .await;
    c.check(
        &resp(&[b"BZMPOP", b"x", b"1", b"e", b"MAXX"]),
        b"-ERR syntax error\r\n",
    )
    .await;
    c.check(
        &resp(&[b"BZPOPMIN", b"e", b"-1"]),
        b"-ERR timeout is negative\r\n",
    )
    .await;
    c.check(&resp(&[b"SET", b"s", b"x"]), b"+OK\r\n").await;
    c.check(
        &resp(&[b"BZPOPMIN", b"e", b"s", b"0"]),
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    )
    .await;
    // A waiter is not served by a list created on its key; a zset is.
    let mut a = blocked(&s, &[b"BZPOPMIN", b"k", b"0"], 1).await;
    c.check(&resp(&[b"RPUSH", b"k", b"v"]), b":1\r\n").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.shared().ks.lock().blocked_clients(), 1);
    c.check(&resp(&[b"DEL", b"k"]), b":1\r\n").await;
    c.check(&resp(&[b"ZADD", b"k", b"4", b"m"]), b":1\r\n")
        .await;
    expect(&mut a, b"*3\r\n$1\r\nk\r\n$1\r\nm\r\n$1\r\n4\r\n").await;
    s.shutdown().await;
}
