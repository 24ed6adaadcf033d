//! Client buffer limits set at run time: `client-output-buffer-limit
//! normal` closes a client whose replies exceed the hard limit without
//! sending them (as redis-server 7.0.15 does), and CONFIG SET of
//! `client-query-buffer-limit` applies to connections already open.

use crate::common;

use common::{resp, Raw};

#[tokio::test]
async fn normal_output_limit_closes_the_client() {
    let s = common::start().await;
    let addr = s.local_addr();
    let big = vec![b'x'; 200_000];
    let mut c = Raw::connect(addr).await;
    c.check(&resp(&[b"SET", b"big", &big]), b"+OK\r\n").await;
    // No limit by default: the reply arrives whole.
    c.send(&resp(&[b"GET", b"big"])).await;
    let got = c.read_exact_len(200_000 + 12).await;
    assert_eq!(&got[..10], b"$200000\r\nx");
    c.check(
        &resp(&[
            b"CONFIG",
            b"SET",
            b"client-output-buffer-limit",
            b"normal 100kb 0 0",
        ]),
        b"+OK\r\n",
    )
    .await;
    c.check(&resp(&[b"GET", b"nokey"]), b"$-1\r\n").await;
    c.send(&resp(&[b"GET", b"big"])).await;
    assert!(c.closed().await, "the connection stayed open");
    // Other clients are served; the limit off again lets the reply through.
    let mut d = Raw::connect(addr).await;
    d.check(
        &resp(&[
            b"CONFIG",
            b"SET",
            b"client-output-buffer-limit",
            b"normal 0 0 0",
        ]),
        b"+OK\r\n",
    )
    .await;
    d.send(&resp(&[b"GET", b"big"])).await;
    let got = d.read_exact_len(200_000 + 12).await;
    assert_eq!(&got[..10], b"$200000\r\nx");
    s.shutdown().await;
}

#[tokio::test]
async fn query_buffer_limit_follows_config_set() {
    let s = common::start().await;
    let addr = s.local_addr();
    let mut c = Raw::connect(addr).await;
    let mut admin = Raw::connect(addr).await;
    admin
        .check(
            &resp(&[b"CONFIG", b"SET", b"client-query-buffer-limit", b"1mb"]),
            b"+OK\r\n",
        )
        .await;
    // A 3 MB bulk announced and 2 MB of it sent: over the 1 MB limit.
    c.send(b"*2\r\n$4\r\nECHO\r\n$3000000\r\n").await;
    // The server may close while this is still being written.
    {
        use tokio::io::AsyncWriteExt;
        let _ = c.stream.write_all(&vec![b'a'; 2_000_000]).await;
    }
    assert!(c.closed().await, "the connection stayed open");
    admin.check(&resp(&[b"PING"]), b"+PONG\r\n").await;
    s.shutdown().await;
}

/// `maxmemory-clients`: over the limit, the largest client goes (INFO
/// `evicted_clients`); CLIENT NO-EVICT ON protects one.
#[tokio::test]
async fn maxmemory_clients_evicts_the_largest_unprotected_client() {
    use tokio::io::AsyncWriteExt;
    let s = common::start().await;
    let addr = s.local_addr();
    let mut admin = Raw::connect(addr).await;
    admin
        .check(&resp(&[b"CLIENT", b"NO-EVICT", b"ON"]), b"+OK\r\n")
        .await;
    let mut kept = Raw::connect(addr).await;
    kept.check(&resp(&[b"CLIENT", b"NO-EVICT", b"ON"]), b"+OK\r\n")
        .await;
    let mut big = Raw::connect(addr).await;
    let mut small = Raw::connect(addr).await;
    small.check(&resp(&[b"PING"]), b"+PONG\r\n").await;
    // Two part-way 3 MB requests: 1.5 MB each in the query buffers.
    for c in [&mut kept, &mut big] {
        c.send(b"*2\r\n$4\r\nECHO\r\n$3000000\r\n").await;
        let _ = c.stream.write_all(&vec![b'a'; 1_500_000]).await;
    }
    admin
        .check(
            &resp(&[b"CONFIG", b"SET", b"maxmemory-clients", b"2mb"]),
            b"+OK\r\n",
        )
        .await;
    assert!(big.closed().await, "the largest client was not evicted");
    small.check(&resp(&[b"PING"]), b"+PONG\r\n").await;
    // The protected client finishes its request.
    let _ = kept.stream.write_all(&vec![b'a'; 1_500_000]).await;
    kept.send(b"\r\n").await;
    let got = kept.read_exact_len(3_000_000 + 13).await;
    assert_eq!(&got[..10], b"$3000000\r\n");
    let info = common::raw_cmd(&mut admin, &["INFO", "stats"]).await;
    assert!(info.contains("evicted_clients:1\r\n"), "{info}");
    s.shutdown().await;
}
