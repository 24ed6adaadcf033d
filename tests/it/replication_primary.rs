//! The primary side of replication, seen from a replica speaking the
//! protocol by hand: full resync (FULLRESYNC, disk-less RDB with the EOF
//! mark), the command stream's exact bytes and offsets, REPLCONF ACK and
//! WAIT, partial resync from the backlog (+CONTINUE), min-replicas-to-write.
//! Interop with a real redis-server replica: redis-tests/replication.py.

use crate::common;

use common::{client, raw_cmd, resp, start, Raw};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Reads until the connection is idle for 300 ms (binary-safe).
async fn read_bytes(c: &mut Raw) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(300), c.stream.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

fn info_field(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

async fn info_repl(c: &mut redis::aio::MultiplexedConnection) -> String {
    redis::cmd("INFO")
        .arg("replication")
        .query_async(c)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_sync_stream_ack_wait_and_partial_resync() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    let _: () = redis::cmd("SET")
        .arg("before")
        .arg("v1")
        .query_async(&mut c)
        .await
        .unwrap();

    let mut r = Raw::connect(s.local_addr()).await;
    r.check(
        &resp(&[b"REPLCONF", b"listening-port", b"7777"]),
        b"+OK\r\n",
    )
    .await;
    r.check(
        &resp(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]),
        b"+OK\r\n",
    )
    .await;
    r.send(&resp(&[b"PSYNC", b"?", b"-1"])).await;
    let got = read_bytes(&mut r).await;
    let text = String::from_utf8_lossy(&got).into_owned();
    let first = text.split("\r\n").next().unwrap_or_default().to_string();
    let parts: Vec<&str> = first.split(' ').collect();
    assert_eq!(parts.len(), 3, "{first}");
    assert_eq!(parts[0], "+FULLRESYNC");
    let replid = parts[1].to_string();
    let mut offset: u64 = parts[2].parse().unwrap();
    assert_eq!(replid.len(), 40);
    // `$EOF:<40 bytes>\r\n`, the RDB, the same 40 bytes.
    let rest = &got[first.len() + 2..];
    assert!(rest.starts_with(b"$EOF:"), "{text}");
    let mark = &rest[5..45];
    assert_eq!(&rest[45..47], b"\r\n");
    let rdb = &rest[47..];
    assert!(rdb.starts_with(b"REDIS0010"), "{text}");
    assert!(rdb.ends_with(mark), "{text}");
    assert!(
        rdb.windows(6).any(|w| w == b"before"),
        "the key is in the snapshot"
    );
    let info = info_repl(&mut c).await;
    assert_eq!(info_field(&info, "master_replid"), replid);
    assert_eq!(info_field(&info, "connected_slaves"), "1");
    assert!(
        info.contains("slave0:ip=127.0.0.1,port=7777,state=send_bulk,offset=0,lag="),
        "{info}"
    );

    // The command stream: SELECT first, then each write; offsets count it.
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("RPUSH")
        .arg("l")
        .arg("a")
        .arg("b")
        .query_async(&mut c)
        .await
        .unwrap();
    // Held until the replica's first ACK: a replica reading an EOF-marked
    // RDB looks for the mark at the end of what it read, so nothing may
    // follow the mark before it acks (Redis's `repl_start_cmd_stream_on_ack`).
    assert!(read_bytes(&mut r).await.is_empty());
    r.send(&resp(&[b"REPLCONF", b"ACK", offset.to_string().as_bytes()]))
        .await;
    let stream = read_bytes(&mut r).await;
    let want = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n\
*4\r\n$5\r\nRPUSH\r\n$1\r\nl\r\n$1\r\na\r\n$1\r\nb\r\n";
    assert_eq!(
        String::from_utf8_lossy(&stream),
        String::from_utf8_lossy(want)
    );
    offset += want.len() as u64;
    let info = info_repl(&mut c).await;
    assert_eq!(info_field(&info, "master_repl_offset"), offset.to_string());

    // WAIT: no acknowledgement yet, then the replica acks the offset.
    let n: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(100)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // WAIT asked the replica for an ACK in the stream.
    let getack = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n";
    assert_eq!(
        String::from_utf8_lossy(&read_bytes(&mut r).await),
        String::from_utf8_lossy(getack)
    );
    let acked_upto = offset;
    offset += getack.len() as u64;
    // REPLCONF ACK gets no reply.
    r.send(&resp(&[b"REPLCONF", b"ACK", offset.to_string().as_bytes()]))
        .await;
    assert!(read_bytes(&mut r).await.is_empty());
    let n: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(0)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let info = info_repl(&mut c).await;
    assert!(
        info.contains(&format!("state=online,offset={offset},")),
        "{info}"
    );

    // The link drops; the replica continues from the byte after its ack.
    drop(r);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut r = Raw::connect(s.local_addr()).await;
    r.check(&resp(&[b"REPLCONF", b"capa", b"psync2"]), b"+OK\r\n")
        .await;
    let from = (acked_upto + 1).to_string();
    r.send(&resp(&[b"PSYNC", replid.as_bytes(), from.as_bytes()]))
        .await;
    let mut want = format!("+CONTINUE {replid}\r\n").into_bytes();
    want.extend_from_slice(getack);
    assert_eq!(
        String::from_utf8_lossy(&read_bytes(&mut r).await),
        String::from_utf8_lossy(&want)
    );

    // Another history, or an offset the backlog no longer holds: full.
    let mut r2 = Raw::connect(s.local_addr()).await;
    let other = "0123456789012345678901234567890123456789";
    let got = raw_cmd(&mut r2, &["PSYNC", other, "5"]).await;
    assert!(got.starts_with("+FULLRESYNC "), "{got}");
    let mut r3 = Raw::connect(s.local_addr()).await;
    let got = raw_cmd(&mut r3, &["PSYNC", &replid, "999999"]).await;
    assert!(got.starts_with("+FULLRESYNC "), "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_replicas_to_write_and_wait_errors() {
    let s = start().await;
    let mut r = Raw::connect(s.local_addr()).await;
    r.check(
        &resp(&[b"CONFIG", b"SET", b"min-replicas-to-write", b"1"]),
        b"+OK\r\n",
    )
    .await;
    r.check(
        &resp(&[b"SET", b"k", b"v"]),
        b"-NOREPLICAS Not enough good replicas to write.\r\n",
    )
    .await;
    // Reads still work.
    r.check(&resp(&[b"GET", b"k"]), b"$-1\r\n").await;
    r.check(
        &resp(&[b"CONFIG", b"SET", b"min-replicas-to-write", b"0"]),
        b"+OK\r\n",
    )
    .await;
    r.check(&resp(&[b"SET", b"k", b"v"]), b"+OK\r\n").await;
    r.check(&resp(&[b"WAIT", b"0", b"0"]), b":0\r\n").await;
    r.check(
        &resp(&[b"WAIT", b"1", b"-1"]),
        b"-ERR timeout is negative\r\n",
    )
    .await;
    r.check(
        &resp(&[b"WAIT", b"x", b"1"]),
        b"-ERR value is not an integer or out of range\r\n",
    )
    .await;
    // No replica: WAIT 1 waits out its timeout and answers 0.
    r.check(&resp(&[b"WAIT", b"1", b"50"]), b":0\r\n").await;
    r.check(
        &resp(&[b"REPLCONF", b"bogus", b"1"]),
        b"-ERR Unrecognized REPLCONF option: bogus\r\n",
    )
    .await;
}

/// With `appendonly no` nothing captures effects until a replica attaches:
/// the PSYNC turns capture on, and the writes after it are streamed, one
/// command each (a pipelined batch too). `repl-diskless-sync no`: the RDB
/// goes as `$<len>`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_without_a_wal() {
    let s = common::start_with(&[("appendonly", "no"), ("repl-diskless-sync", "no")]).await;
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(&resp(&[b"SET", b"a", b"1"]), b"+OK\r\n").await;
    let mut r = Raw::connect(s.local_addr()).await;
    r.check(
        &resp(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]),
        b"+OK\r\n",
    )
    .await;
    r.send(&resp(&[b"PSYNC", b"?", b"-1"])).await;
    let got = read_bytes(&mut r).await;
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(text.starts_with("+FULLRESYNC "), "{text}");
    // `repl-diskless-sync no`: `$<len>\r\n` and the RDB even with `capa eof`.
    let after = text.split("\r\n").nth(1).unwrap_or_default().to_string();
    assert!(after.starts_with('$'), "{text}");
    let len: usize = after[1..].parse().unwrap();
    let head = text.split("\r\n").next().unwrap().len() + 2 + after.len() + 2;
    assert_eq!(got.len(), head + len, "{text}");
    assert!(got[head..].starts_with(b"REDIS0010"));

    let mut batch = resp(&[b"INCR", b"a"]);
    batch.extend(resp(&[b"SELECT", b"2"]));
    batch.extend(resp(&[b"SADD", b"s", b"x", b"y"]));
    batch.extend(resp(&[b"EXPIRE", b"s", b"100"]));
    c.check(&batch, b":2\r\n+OK\r\n:2\r\n:1\r\n").await;
    let stream = String::from_utf8_lossy(&read_bytes(&mut r).await).into_owned();
    let set = "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n2\r\n\
*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n";
    assert!(stream.starts_with(set), "{stream}");
    let rest = &stream[set.len()..];
    // The new set as a RESTORE of its value, then its expiry.
    assert!(
        rest.starts_with("*5\r\n$7\r\nRESTORE\r\n$1\r\ns\r\n$1\r\n0\r\n"),
        "{stream}"
    );
    assert!(
        rest.contains("*3\r\n$9\r\nPEXPIREAT\r\n$1\r\ns\r\n$13\r\n"),
        "{stream}"
    );
}

/// Stream changes after the full resync reach the replica as Redis 7.0
/// propagates them (its `t_stream.c`): XADD as given or with the
/// generated id (a created stream is not also sent as RESTORE),
/// XREADGROUP deliveries as XCLAIM ... LASTID, NOACK as XGROUP SETID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_commands_as_redis_propagates_them() {
    let dir = common::temp_dir();
    let s = common::start_in(&dir, &[]).await;
    let mut c = Raw::connect(s.local_addr()).await;
    let mut r = Raw::connect(s.local_addr()).await;
    r.check(
        &resp(&[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]),
        b"+OK\r\n",
    )
    .await;
    r.send(&resp(&[b"PSYNC", b"?", b"-1"])).await;
    let got = read_bytes(&mut r).await;
    assert!(got.starts_with(b"+FULLRESYNC "));
    // The replica loaded the RDB: its first ACK starts the stream.
    r.send(&resp(&[b"REPLCONF", b"ACK", b"0"])).await;

    let mut batch = resp(&[b"XADD", b"s", b"1-1", b"f", b"v"]);
    batch.extend(resp(&[
        b"XADD", b"s", b"MAXLEN", b"~", b"1", b"2-*", b"g", b"w",
    ]));
    batch.extend(resp(&[b"XGROUP", b"CREATE", b"s", b"g", b"0"]));
    batch.extend(resp(&[
        b"XREADGROUP",
        b"GROUP",
        b"g",
        b"c",
        b"COUNT",
        b"1",
        b"STREAMS",
        b"s",
        b">",
    ]));
    batch.extend(resp(&[b"XGROUP", b"CREATE", b"s", b"n", b"0"]));
    batch.extend(resp(&[
        b"XREADGROUP",
        b"GROUP",
        b"n",
        b"d",
        b"NOACK",
        b"STREAMS",
        b"s",
        b">",
    ]));
    batch.extend(resp(&[b"XACK", b"s", b"g", b"1-1", b"9-9"]));
    c.send(&batch).await;
    let _ = read_bytes(&mut c).await;
    let got = String::from_utf8_lossy(&read_bytes(&mut r).await).into_owned();
    let lines: Vec<String> = got
        .split("\r\n")
        .filter(|l| !l.starts_with('*') && !l.starts_with('$') && !l.is_empty())
        .map(str::to_string)
        .collect();
    let text = lines.join(" ");
    assert!(!text.contains("RESTORE"), "{text}");
    let want_prefix = "SELECT 0 XADD s 1-1 f v XADD s MAXLEN = 2 2-0 g w XGROUP CREATE s g 0 \
XCLAIM s g c 0 1-1 TIME ";
    assert!(text.starts_with(want_prefix), "{text}");
    let rest = &text[want_prefix.len()..];
    let rest = rest.split_once(' ').map(|x| x.1).unwrap_or_default();
    assert_eq!(
        rest,
        "RETRYCOUNT 1 FORCE JUSTID LASTID 1-1 XGROUP CREATE s n 0 \
MULTI XGROUP CREATECONSUMER s n d XGROUP SETID s n 2-0 ENTRIESREAD 2 EXEC \
XACK s g 1-1 9-9",
        "{text}"
    );
    // The WAL's Command effects (tag 91) replay as nothing: the stream's
    // logs hold the state.
    let before = (
        raw_cmd(&mut c, &["XRANGE", "s", "-", "+"]).await,
        raw_cmd(&mut c, &["XINFO", "GROUPS", "s"]).await,
    );
    drop((c, r));
    s.shutdown().await;
    let s = common::start_in(&dir, &[]).await;
    let mut c = Raw::connect(s.local_addr()).await;
    let after = (
        raw_cmd(&mut c, &["XRANGE", "s", "-", "+"]).await,
        raw_cmd(&mut c, &["XINFO", "GROUPS", "s"]).await,
    );
    assert_eq!(before, after);
    assert!(before.0.contains("2-0"), "{before:?}");
}

/// WAIT waits for the offset right after the client's own last write
/// (Redis's `c->woff`), not for other clients' later writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_counts_acks_of_the_clients_own_writes() {
    let s = start().await;
    let mut a = client(s.local_addr()).await;
    let mut b = client(s.local_addr()).await;
    let mut r = Raw::connect(s.local_addr()).await;
    r.check(&resp(&[b"REPLCONF", b"capa", b"psync2"]), b"+OK\r\n")
        .await;
    r.send(&resp(&[b"PSYNC", b"?", b"-1"])).await;
    let got = read_bytes(&mut r).await;
    let first = String::from_utf8_lossy(&got)
        .split("\r\n")
        .next()
        .unwrap_or_default()
        .to_string();
    let mut offset: u64 = first.split(' ').nth(2).unwrap().parse().unwrap();
    let wait = |n: i64, ms: i64| {
        let mut cmd = redis::cmd("WAIT");
        cmd.arg(n).arg(ms);
        cmd
    };

    // A writes; the replica acknowledges everything up to here.
    let _: () = redis::cmd("SET")
        .arg("a")
        .arg("1")
        .query_async(&mut a)
        .await
        .unwrap();
    offset += read_bytes(&mut r).await.len() as u64;
    r.send(&resp(&[b"REPLCONF", b"ACK", offset.to_string().as_bytes()]))
        .await;
    let n: i64 = wait(1, 0).query_async(&mut a).await.unwrap();
    assert_eq!(n, 1);
    // B writes; the replica does not acknowledge that.
    let _: () = redis::cmd("SET")
        .arg("b")
        .arg("2")
        .query_async(&mut b)
        .await
        .unwrap();
    // A wrote nothing since: its writes are acknowledged.
    let n: i64 = wait(1, 100).query_async(&mut a).await.unwrap();
    assert_eq!(n, 1, "A's own writes were acknowledged");
    // B's are not.
    let n: i64 = wait(1, 100).query_async(&mut b).await.unwrap();
    assert_eq!(n, 0, "B's write was not acknowledged");
    // Inside MULTI the count is taken at once, for the client's offset.
    let (n,): (i64,) = redis::pipe()
        .atomic()
        .add_command(wait(1, 0))
        .query_async(&mut a)
        .await
        .unwrap();
    assert_eq!(n, 1);
}
