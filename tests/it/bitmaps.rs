//! Bitmap commands beyond the goldens: keyspace notifications, WATCH, and
//! the WAL effects of in-place bit writes (replayed after a restart).

use crate::common;
use common::*;

#[tokio::test]
async fn bit_writes_notify_as_redis() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(
        &resp(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEAn"]),
        b"+OK\r\n",
    )
    .await;
    let mut tap = Events::tap(s.local_addr()).await;
    // Sequence and expectations recorded from redis-server 7.0.15.
    let steps: &[(&[&[u8]], &[&str])] = &[
        (&[b"SETBIT", b"nb", b"3", b"1"], &["new:nb", "setbit:nb"]),
        (&[b"SETBIT", b"nb", b"3", b"1"], &[]),
        (
            &[b"BITFIELD", b"nb", b"INCRBY", b"u8", b"0", b"1"],
            &["setbit:nb"],
        ),
        (
            &[b"BITFIELD", b"nb", b"SET", b"u8", b"0", b"9"],
            &["setbit:nb"],
        ),
        (&[b"BITOP", b"OR", b"nb2", b"nb"], &["new:nb2", "set:nb2"]),
        (&[b"BITOP", b"AND", b"nb2", b"nokey"], &["del:nb2"]),
        (&[b"SETBIT", b"nb", b"100", b"0"], &["setbit:nb"]),
        (&[b"BITFIELD", b"nb", b"GET", b"u8", b"0"], &[]),
    ];
    for (args, want) in steps {
        let _ = raw_cmd(
            &mut c,
            &args
                .iter()
                .map(|a| std::str::from_utf8(a).unwrap())
                .collect::<Vec<_>>(),
        )
        .await;
        assert_eq!(tap.take().await, *want, "{args:?}");
    }
    s.shutdown().await;
}

/// SETBIT and BITFIELD on an existing string log only the bytes they
/// changed (a SETRANGE effect); replay must rebuild the exact bytes,
/// including growth with zeros, and BITOP's whole result.
#[tokio::test]
async fn bit_writes_survive_restart() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = Raw::connect(s.local_addr()).await;
    let big = vec![b'a'; 100_000];
    c.check(&resp(&[b"SET", b"b", &big]), b"+OK\r\n").await;
    c.check(&resp(&[b"SETBIT", b"b", b"7", b"0"]), b":1\r\n")
        .await;
    c.check(&resp(&[b"SETBIT", b"b", b"1000000", b"1"]), b":0\r\n")
        .await;
    c.check(
        &resp(&[
            b"BITFIELD",
            b"b",
            b"SET",
            b"i16",
            b"#10",
            b"-2",
            b"INCRBY",
            b"u8",
            b"800007",
            b"5",
        ]),
        b"*2\r\n:24929\r\n:5\r\n",
    )
    .await;
    c.check(&resp(&[b"SETBIT", b"n", b"9", b"1"]), b":0\r\n")
        .await;
    c.check(&resp(&[b"BITOP", b"NOT", b"d", b"n"]), b":2\r\n")
        .await;
    let before = dump_all(&s);
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump_all(&s), before);
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(&resp(&[b"STRLEN", b"b"]), b":125001\r\n").await;
    c.check(&resp(&[b"GETBIT", b"b", b"1000000"]), b":1\r\n")
        .await;
    c.check(&resp(&[b"GETRANGE", b"b", b"0", b"0"]), b"$1\r\n`\r\n")
        .await;
    c.check(&resp(&[b"GET", b"d"]), b"$2\r\n\xff\xbf\r\n").await;
    s.shutdown().await;
}

/// A dense HyperLogLog changed by PFADD is logged as the register bytes
/// that changed plus the cache; PFCOUNT's cache refresh as the cache bytes.
/// Replay must give back the exact value (a copy from Redis would not).
#[tokio::test]
async fn hyperloglog_writes_survive_restart() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = Raw::connect(s.local_addr()).await;
    let mut args: Vec<Vec<u8>> = vec![b"PFADD".to_vec(), b"h".to_vec()];
    args.extend((0..5000).map(|i| format!("e{i}").into_bytes()));
    let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    c.check(&resp(&refs), b":1\r\n").await;
    c.check(&resp(&[b"PFDEBUG", b"ENCODING", b"h"]), b"+dense\r\n")
        .await;
    // Single elements far apart: separate register spans.
    for e in [&b"zz1"[..], b"zz2", b"zz3", b"e1"] {
        let _ = raw_cmd(&mut c, &["PFADD", "h", std::str::from_utf8(e).unwrap()]).await;
    }
    let n = raw_cmd(&mut c, &["PFCOUNT", "h"]).await;
    c.check(&resp(&[b"PFADD", b"sp", b"a", b"b"]), b":1\r\n")
        .await;
    c.check(&resp(&[b"PFCOUNT", b"sp"]), b":2\r\n").await;
    c.check(&resp(&[b"PFMERGE", b"m", b"sp", b"h"]), b"+OK\r\n")
        .await;
    let before = dump_all(&s);
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump_all(&s), before);
    let mut c = Raw::connect(s.local_addr()).await;
    assert_eq!(raw_cmd(&mut c, &["PFCOUNT", "h"]).await, n);
    s.shutdown().await;
}
