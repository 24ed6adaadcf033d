//! Byte-level protocol behaviour: inline commands, pipelining, protocol errors.

use crate::common;
use common::*;

#[tokio::test]
async fn inline_and_pipelined_requests() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(b"PING\r\n", b"+PONG\r\n").await;
    c.check(b"ECHO \"a b\"\n", b"$3\r\na b\r\n").await;
    let mut batch = Vec::new();
    for i in 0..100 {
        batch.extend(resp(&[b"SET", format!("k{i}").as_bytes(), b"v"]));
    }
    batch.extend(resp(&[b"GET", b"k99"]));
    let mut expected = b"+OK\r\n".repeat(100);
    expected.extend_from_slice(b"$1\r\nv\r\n");
    c.check(&batch, &expected).await;
    s.shutdown().await;
}

#[tokio::test]
async fn protocol_error_replies_then_closes() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(
        b"*1\r\n$4\r\nPING\r\n*x\r\n",
        b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n",
    )
    .await;
    assert!(c.closed().await);
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(
        b"*1\r\n$600000000\r\n",
        b"-ERR Protocol error: invalid bulk length\r\n",
    )
    .await;
    assert!(c.closed().await);
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(
        b"*1\r\nPING\r\n",
        b"-ERR Protocol error: expected '$', got 'P'\r\n",
    )
    .await;
    assert!(c.closed().await);
    s.shutdown().await;
}

#[tokio::test]
async fn transactions_and_watch() {
    let s = start().await;
    let mut a = Raw::connect(s.local_addr()).await;
    let mut b = Raw::connect(s.local_addr()).await;
    a.check(&resp(&[b"WATCH", b"w"]), b"+OK\r\n").await;
    b.check(&resp(&[b"SET", b"w", b"1"]), b"+OK\r\n").await;
    a.check(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    a.check(&resp(&[b"SET", b"w", b"2"]), b"+QUEUED\r\n").await;
    a.check(&resp(&[b"EXEC"]), b"*-1\r\n").await;
    a.check(&resp(&[b"GET", b"w"]), b"$1\r\n1\r\n").await;
    a.check(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    a.check(
        &resp(&[b"NOPE"]),
        b"-ERR unknown command 'NOPE', with args beginning with: \r\n",
    )
    .await;
    a.check(
        &resp(&[b"EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    )
    .await;
    a.check(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    a.check(&resp(&[b"SET", b"w", b"3"]), b"+QUEUED\r\n").await;
    a.check(&resp(&[b"GET", b"w"]), b"+QUEUED\r\n").await;
    a.check(&resp(&[b"EXEC"]), b"*2\r\n+OK\r\n$1\r\n3\r\n")
        .await;
    s.shutdown().await;
}

/// A NUL byte in an inline request used to make the argument splitter push
/// empty arguments forever (the server hung, memory grew without bound).
/// Redis's `strchr` stops at the NUL, so the line never ends: the client
/// waits, others are served, and past the inline limit the client gets the
/// "too big inline request" error and is closed.
#[tokio::test]
async fn inline_nul_byte_neither_hangs_nor_grows() {
    let s = start().await;
    for req in [&b"PING \0\r\n"[..], b"\0\r\n", b"a\0b\r\n"] {
        let mut bad = Raw::connect(s.local_addr()).await;
        bad.send(req).await;
        let mut other = Raw::connect(s.local_addr()).await;
        other.check(b"PING\r\n", b"+PONG\r\n").await;
        // The NUL-stuck client got nothing and is still connected.
        bad.check(b"", b"").await;
        let mut fill = vec![b'x'; 70 * 1024];
        fill.extend_from_slice(b"\r\n");
        bad.check(&fill, b"-ERR Protocol error: too big inline request\r\n")
            .await;
        assert!(bad.closed().await);
        other.check(b"PING\r\n", b"+PONG\r\n").await;
    }
    s.shutdown().await;
}
