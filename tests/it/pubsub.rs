//! Pub/Sub and keyspace notifications against an in-process server: raw
//! RESP2/RESP3 bytes (taken from redis-server 7.0.15), the `redis` crate's
//! pubsub API, and a real `redis-cli subscribe`.

use crate::common;

use common::{read_all, resp, start, Raw};
use futures_util::StreamExt;
use redis::AsyncCommands;
use std::net::SocketAddr;
use std::time::Duration;

/// `*3 message ch payload` (RESP2) or `>3 ...` (RESP3).
fn message(resp3: bool, ch: &str, payload: &str) -> Vec<u8> {
    let t = if resp3 { '>' } else { '*' };
    format!(
        "{t}3\r\n$7\r\nmessage\r\n${}\r\n{ch}\r\n${}\r\n{payload}\r\n",
        ch.len(),
        payload.len()
    )
    .into_bytes()
}

fn pmessage(resp3: bool, pat: &str, ch: &str, payload: &str) -> Vec<u8> {
    let t = if resp3 { '>' } else { '*' };
    format!(
        "{t}4\r\n$8\r\npmessage\r\n${}\r\n{pat}\r\n${}\r\n{ch}\r\n${}\r\n{payload}\r\n",
        pat.len(),
        ch.len(),
        payload.len()
    )
    .into_bytes()
}

fn confirm(resp3: bool, kind: &str, name: Option<&str>, count: usize) -> Vec<u8> {
    let t = if resp3 { '>' } else { '*' };
    let name = match name {
        Some(n) => format!("${}\r\n{n}\r\n", n.len()),
        None if resp3 => "_\r\n".into(),
        None => "$-1\r\n".into(),
    };
    format!("{t}3\r\n${}\r\n{kind}\r\n{name}:{count}\r\n", kind.len()).into_bytes()
}

async fn raw3(addr: SocketAddr) -> Raw {
    let mut r = Raw::connect(addr).await;
    r.send(&resp(&[b"HELLO", b"3"])).await;
    // The HELLO map's size varies with the id; read until the last field.
    let mut got = Vec::new();
    while !got.ends_with(b"$7\r\nmodules\r\n*0\r\n") {
        let b = r.read_exact_len(1).await;
        assert!(!b.is_empty(), "HELLO 3 reply ended early: {got:?}");
        got.extend_from_slice(&b);
    }
    r
}

/// Sends a command on a fresh connection and returns its integer reply.
async fn int_cmd(addr: SocketAddr, args: &[&[u8]]) -> i64 {
    let mut c = common::client(addr).await;
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(&mut c).await.unwrap()
}

/// Waits until PUBSUB NUMSUB of `ch` is `n`.
async fn wait_numsub(c: &mut redis::aio::MultiplexedConnection, ch: &str, n: i64) {
    for _ in 0..200 {
        let v: Vec<redis::Value> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(ch)
            .query_async(c)
            .await
            .unwrap();
        if v.get(1) == Some(&redis::Value::Int(n)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("NUMSUB {ch} never reached {n}");
}

#[tokio::test]
async fn messages_reach_resp2_and_resp3_subscribers_and_patterns() {
    let s = common::start().await;
    let addr = s.local_addr();
    let mut a = Raw::connect(addr).await;
    let mut b = Raw::connect(addr).await;
    let mut c = raw3(addr).await;
    a.check(
        &resp(&[b"SUBSCRIBE", b"news", b"sport"]),
        &[
            confirm(false, "subscribe", Some("news"), 1),
            confirm(false, "subscribe", Some("sport"), 2),
        ]
        .concat(),
    )
    .await;
    b.check(
        &resp(&[b"PSUBSCRIBE", b"n?ws", b"*"]),
        &[
            confirm(false, "psubscribe", Some("n?ws"), 1),
            confirm(false, "psubscribe", Some("*"), 2),
        ]
        .concat(),
    )
    .await;
    c.check(
        &resp(&[b"SUBSCRIBE", b"news"]),
        &confirm(true, "subscribe", Some("news"), 1),
    )
    .await;
    // a and c by channel, b by both of its patterns.
    assert_eq!(int_cmd(addr, &[b"PUBLISH", b"news", b"hello"]).await, 4);
    let want_a = message(false, "news", "hello");
    assert_eq!(a.read_exact_len(want_a.len()).await, want_a);
    let want_b = [
        pmessage(false, "n?ws", "news", "hello"),
        pmessage(false, "*", "news", "hello"),
    ];
    // Pattern order follows the registry's iteration, as Redis's dict.
    let got_b = b.read_exact_len(want_b[0].len() + want_b[1].len()).await;
    assert!(
        got_b == [want_b[0].clone(), want_b[1].clone()].concat()
            || got_b == [want_b[1].clone(), want_b[0].clone()].concat(),
        "{}",
        String::from_utf8_lossy(&got_b)
    );
    let want_c = message(true, "news", "hello");
    assert_eq!(c.read_exact_len(want_c.len()).await, want_c);
    // Binary-safe payloads and channels.
    assert_eq!(
        int_cmd(addr, &[b"PUBLISH", b"sport", b"\x00\r\n\xff"]).await,
        2
    );
    let want = b"*3\r\n$7\r\nmessage\r\n$5\r\nsport\r\n$4\r\n\x00\r\n\xff\r\n";
    assert_eq!(a.read_exact_len(want.len()).await, want);
    assert_eq!(int_cmd(addr, &[b"PUBLISH", b"nobody", b"x"]).await, 1);
    s.shutdown().await;
}

#[tokio::test]
async fn resp2_subscribed_mode_allows_only_pubsub_ping_quit_reset() {
    let s = common::start().await;
    let mut a = Raw::connect(s.local_addr()).await;
    a.check(
        &resp(&[b"SUBSCRIBE", b"x"]),
        &confirm(false, "subscribe", Some("x"), 1),
    )
    .await;
    a.check(
        &resp(&[b"GET", b"k"]),
        b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    )
    .await;
    a.check(
        &resp(&[b"CLIENT", b"LIST"]),
        b"-ERR Can't execute 'client|list': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    )
    .await;
    // Unknown commands and arity errors come first, as in Redis.
    a.check(
        &resp(&[b"NOPE"]),
        b"-ERR unknown command 'NOPE', with args beginning with: \r\n",
    )
    .await;
    a.check(&resp(&[b"PING"]), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        .await;
    a.check(
        &resp(&[b"PING", b"hi"]),
        b"*2\r\n$4\r\npong\r\n$2\r\nhi\r\n",
    )
    .await;
    // A rejected command inside MULTI aborts the transaction.
    a.check(
        &resp(&[b"MULTI"]),
        b"-ERR Can't execute 'multi': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    )
    .await;
    // A refused EXEC answers EXECABORT, as Redis's `rejectCommandFormat`
    // (redis-server 7.0 replies the same).
    a.check(
        &resp(&[b"EXEC"]),
        b"-EXECABORT Transaction discarded because of: Can't execute 'exec': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    )
    .await;
    a.check(
        &resp(&[b"UNSUBSCRIBE"]),
        &confirm(false, "unsubscribe", Some("x"), 0),
    )
    .await;
    // Back to normal mode.
    a.check(&resp(&[b"GET", b"k"]), b"$-1\r\n").await;
    a.check(&resp(&[b"PING"]), b"+PONG\r\n").await;
    a.check(
        &resp(&[b"PSUBSCRIBE", b"p*"]),
        &confirm(false, "psubscribe", Some("p*"), 1),
    )
    .await;
    a.check(&resp(&[b"QUIT"]), b"+OK\r\n").await;
    assert!(a.closed().await);
    s.shutdown().await;
}

#[tokio::test]
async fn unsubscribe_confirmations_are_exact() {
    let s = common::start().await;
    let mut a = Raw::connect(s.local_addr()).await;
    a.check(
        &resp(&[b"UNSUBSCRIBE"]),
        &confirm(false, "unsubscribe", None, 0),
    )
    .await;
    a.check(
        &resp(&[b"PUNSUBSCRIBE"]),
        &confirm(false, "punsubscribe", None, 0),
    )
    .await;
    a.check(
        &resp(&[b"UNSUBSCRIBE", b"a", b"b"]),
        &[
            confirm(false, "unsubscribe", Some("a"), 0),
            confirm(false, "unsubscribe", Some("b"), 0),
        ]
        .concat(),
    )
    .await;
    a.check(
        &resp(&[b"SUBSCRIBE", b"x", b"y", b"x"]),
        &[
            confirm(false, "subscribe", Some("x"), 1),
            confirm(false, "subscribe", Some("y"), 2),
            confirm(false, "subscribe", Some("x"), 2),
        ]
        .concat(),
    )
    .await;
    a.check(
        &resp(&[b"PSUBSCRIBE", b"h*"]),
        &confirm(false, "psubscribe", Some("h*"), 3),
    )
    .await;
    // Without arguments: every channel in subscription order; the count
    // includes the pattern.
    a.check(
        &resp(&[b"UNSUBSCRIBE"]),
        &[
            confirm(false, "unsubscribe", Some("x"), 2),
            confirm(false, "unsubscribe", Some("y"), 1),
        ]
        .concat(),
    )
    .await;
    a.check(
        &resp(&[b"UNSUBSCRIBE"]),
        &confirm(false, "unsubscribe", None, 1),
    )
    .await;
    a.check(
        &resp(&[b"PUNSUBSCRIBE"]),
        &confirm(false, "punsubscribe", Some("h*"), 0),
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn resp3_subscriber_runs_any_command_and_gets_pushes_in_order() {
    let s = common::start().await;
    let addr = s.local_addr();
    let mut a = raw3(addr).await;
    a.check(
        &resp(&[b"SUBSCRIBE", b"x"]),
        &confirm(true, "subscribe", Some("x"), 1),
    )
    .await;
    a.check(&resp(&[b"GET", b"k"]), b"_\r\n").await;
    a.check(&resp(&[b"PING"]), b"+PONG\r\n").await;
    // Publishing to itself: the push comes before the reply, as Redis.
    a.check(
        &resp(&[b"PUBLISH", b"x", b"self"]),
        &[message(true, "x", "self"), b":1\r\n".to_vec()].concat(),
    )
    .await;
    // Keyspace events of its own commands, inside EXEC too (Redis 7.0
    // writes them in the middle of EXEC's array).
    a.check(
        &resp(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KA"]),
        b"+OK\r\n",
    )
    .await;
    a.check(
        &resp(&[b"SUBSCRIBE", b"__keyspace@0__:foo"]),
        &confirm(true, "subscribe", Some("__keyspace@0__:foo"), 2),
    )
    .await;
    a.check(
        &resp(&[b"SET", b"foo", b"bar"]),
        &[
            message(true, "__keyspace@0__:foo", "set"),
            b"+OK\r\n".to_vec(),
        ]
        .concat(),
    )
    .await;
    a.check(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    a.check(&resp(&[b"INCR", b"foo"]), b"+QUEUED\r\n").await;
    a.check(&resp(&[b"EXPIRE", b"foo", b"100"]), b"+QUEUED\r\n")
        .await;
    a.check(
        &resp(&[b"EXEC"]),
        &[
            b"*2\r\n".to_vec(),
            b"-ERR value is not an integer or out of range\r\n".to_vec(),
            // EXPIRE replies before its event.
            b":1\r\n".to_vec(),
            message(true, "__keyspace@0__:foo", "expire"),
        ]
        .concat(),
    )
    .await;
    a.check(
        &resp(&[b"CONFIG", b"SET", b"notify-keyspace-events", b""]),
        b"+OK\r\n",
    )
    .await;
    // HELLO 2 while subscribed: now restricted, messages as arrays.
    a.send(&resp(&[b"HELLO", b"2"])).await;
    let hello = a.read_exact_len(4).await;
    assert_eq!(hello, b"*14\r");
    let _ = a.read_exact_len(1000).await;
    assert_eq!(int_cmd(addr, &[b"PUBLISH", b"x", b"m"]).await, 1);
    let want = message(false, "x", "m");
    assert_eq!(a.read_exact_len(want.len()).await, want);
    a.check(
        &resp(&[b"GET", b"k"]),
        b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn disconnect_and_reset_unsubscribe() {
    let s = common::start().await;
    let addr = s.local_addr();
    let mut c = common::client(addr).await;
    let mut a = Raw::connect(addr).await;
    a.check(
        &resp(&[b"SUBSCRIBE", b"gone"]),
        &confirm(false, "subscribe", Some("gone"), 1),
    )
    .await;
    wait_numsub(&mut c, "gone", 1).await;
    drop(a);
    wait_numsub(&mut c, "gone", 0).await;
    let n: i64 = c.publish("gone", "x").await.unwrap();
    assert_eq!(n, 0);

    let mut b = Raw::connect(addr).await;
    b.check(
        &resp(&[b"SUBSCRIBE", b"r"]),
        &confirm(false, "subscribe", Some("r"), 1),
    )
    .await;
    b.check(
        &resp(&[b"PSUBSCRIBE", b"r*"]),
        &confirm(false, "psubscribe", Some("r*"), 2),
    )
    .await;
    b.check(&resp(&[b"RESET"]), b"+RESET\r\n").await;
    b.check(&resp(&[b"GET", b"k"]), b"$-1\r\n").await;
    let n: i64 = c.publish("r", "x").await.unwrap();
    assert_eq!(n, 0);
    let numpat: i64 = redis::cmd("PUBSUB")
        .arg("NUMPAT")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(numpat, 0);
    s.shutdown().await;
}

#[tokio::test]
async fn introspection_pubsub_info_and_client_list() {
    let s = common::start().await;
    let addr = s.local_addr();
    let mut c = common::client(addr).await;
    let mut a = Raw::connect(addr).await;
    let mut b = Raw::connect(addr).await;
    a.check(
        &resp(&[b"SUBSCRIBE", b"news.tech", b"news.art", b"misc"]),
        &[
            confirm(false, "subscribe", Some("news.tech"), 1),
            confirm(false, "subscribe", Some("news.art"), 2),
            confirm(false, "subscribe", Some("misc"), 3),
        ]
        .concat(),
    )
    .await;
    b.check(
        &resp(&[b"SUBSCRIBE", b"news.tech"]),
        &confirm(false, "subscribe", Some("news.tech"), 1),
    )
    .await;
    b.check(
        &resp(&[b"PSUBSCRIBE", b"news.*", b"x"]),
        &[
            confirm(false, "psubscribe", Some("news.*"), 2),
            confirm(false, "psubscribe", Some("x"), 3),
        ]
        .concat(),
    )
    .await;
    let mut chans: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg("news.*")
        .query_async(&mut c)
        .await
        .unwrap();
    chans.sort();
    assert_eq!(chans, ["news.art", "news.tech"]);
    let all: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    let numsub: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("news.tech")
        .arg("misc")
        .arg("none")
        .query_async(&mut c)
        .await
        .unwrap();
    use redis::Value::{BulkString, Int};
    assert_eq!(
        numsub,
        vec![
            BulkString(b"news.tech".to_vec()),
            Int(2),
            BulkString(b"misc".to_vec()),
            Int(1),
            BulkString(b"none".to_vec()),
            Int(0)
        ]
    );
    let numpat: i64 = redis::cmd("PUBSUB")
        .arg("NUMPAT")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(numpat, 2);
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(info.contains("pubsub_channels:3\r\n"), "{info}");
    assert!(info.contains("pubsub_patterns:2\r\n"), "{info}");
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        list.contains(" flags=P db=0 sub=3 psub=0 ssub=0 "),
        "{list}"
    );
    assert!(
        list.contains(" flags=P db=0 sub=1 psub=2 ssub=0 "),
        "{list}"
    );
    assert!(
        list.contains(" flags=N db=0 sub=0 psub=0 ssub=0 "),
        "{list}"
    );
    s.shutdown().await;
}

/// Collects what a RESP2 raw subscriber receives within `ms`.
async fn drain(r: &mut Raw, ms: u64) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ms);
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, r.stream.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// The events one command publishes, as (channel, payload) pairs, seen by
/// a `PSUBSCRIBE __key*` subscriber.
async fn events(
    l: &mut Raw,
    c: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> Vec<(String, String)> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    let _: redis::Value = cmd.query_async(c).await.unwrap();
    parse_pmessages(&drain(l, 150).await)
}

fn parse_pmessages(mut b: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let bulk = |b: &mut &[u8]| -> String {
        let end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n: usize = std::str::from_utf8(&b[1..end]).unwrap().parse().unwrap();
        let s = String::from_utf8_lossy(&b[end + 2..end + 2 + n]).into_owned();
        *b = &b[end + 4 + n..];
        s
    };
    while !b.is_empty() {
        assert!(b.starts_with(b"*4\r\n"), "{}", String::from_utf8_lossy(b));
        b = &b[4..];
        let kind = bulk(&mut b);
        assert_eq!(kind, "pmessage");
        let _pattern = bulk(&mut b);
        let ch = bulk(&mut b);
        let payload = bulk(&mut b);
        out.push((ch, payload));
    }
    out
}

fn ev(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn keyspace_notifications_for_each_class() {
    let s = common::start().await;
    let addr = s.local_addr();
    let mut c = common::client(addr).await;
    let mut l = Raw::connect(addr).await;
    l.check(
        &resp(&[b"PSUBSCRIBE", b"__key*"]),
        &confirm(false, "psubscribe", Some("__key*"), 1),
    )
    .await;
    let set_flags = |flags: &'static str| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("notify-keyspace-events")
            .arg(flags)
            .clone()
    };
    // Off by default.
    assert!(events(&mut l, &mut c, &["SET", "k", "v"]).await.is_empty());

    // Invalid flags: Redis's error, value unchanged.
    let err = set_flags("KQ").query_async::<()>(&mut c).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("Invalid event class character. Use 'Ag$lshzxeKEtmdn'."),
        "{err}"
    );

    // `A` plus `n` reads back as "AKE" but still enables `new`.
    let _: () = set_flags("KEAn").query_async(&mut c).await.unwrap();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("notify-keyspace-events")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(got, ["notify-keyspace-events", "AKE"]);

    assert_eq!(
        events(&mut l, &mut c, &["SET", "s", "1", "EX", "100"]).await,
        ev(&[
            ("__keyspace@0__:s", "new"),
            ("__keyevent@0__:new", "s"),
            ("__keyspace@0__:s", "set"),
            ("__keyevent@0__:set", "s"),
            ("__keyspace@0__:s", "expire"),
            ("__keyevent@0__:expire", "s"),
        ])
    );
    // Keyspace only, generic and string classes.
    let _: () = set_flags("Kg$").query_async(&mut c).await.unwrap();
    for (cmd, want) in [
        (
            &["APPEND", "s", "x"][..],
            ev(&[("__keyspace@0__:s", "append")]),
        ),
        (
            &["SETRANGE", "s", "0", "y"],
            ev(&[("__keyspace@0__:s", "setrange")]),
        ),
        (&["INCR", "n"], ev(&[("__keyspace@0__:n", "incrby")])),
        (&["DECRBY", "n", "3"], ev(&[("__keyspace@0__:n", "incrby")])),
        (
            &["INCRBYFLOAT", "n", "1.5"],
            ev(&[("__keyspace@0__:n", "incrbyfloat")]),
        ),
        (&["PERSIST", "s"], ev(&[("__keyspace@0__:s", "persist")])),
        (
            &["EXPIRE", "s", "100"],
            ev(&[("__keyspace@0__:s", "expire")]),
        ),
        (&["EXPIRE", "s", "-1"], ev(&[("__keyspace@0__:s", "del")])),
        (
            &["MSET", "a", "1", "b", "2"],
            ev(&[("__keyspace@0__:a", "set"), ("__keyspace@0__:b", "set")]),
        ),
        (
            &["RENAME", "a", "c"],
            ev(&[
                ("__keyspace@0__:a", "rename_from"),
                ("__keyspace@0__:c", "rename_to"),
            ]),
        ),
        (
            &["MOVE", "c", "1"],
            ev(&[
                ("__keyspace@0__:c", "move_from"),
                ("__keyspace@1__:c", "move_to"),
            ]),
        ),
        (
            &["COPY", "b", "d", "DB", "2"],
            ev(&[("__keyspace@2__:d", "copy_to")]),
        ),
        (&["GETDEL", "b"], ev(&[("__keyspace@0__:b", "del")])),
        (&["DEL", "n", "missing"], ev(&[("__keyspace@0__:n", "del")])),
        (&["GET", "missing"], ev(&[])),
    ] {
        assert_eq!(events(&mut l, &mut c, cmd).await, want, "{cmd:?}");
    }
    // Key misses (m) and new keys (n), keyevent channel only.
    let _: () = set_flags("Emn").query_async(&mut c).await.unwrap();
    assert_eq!(
        events(&mut l, &mut c, &["GET", "missing"]).await,
        ev(&[("__keyevent@0__:keymiss", "missing")])
    );
    assert_eq!(
        events(&mut l, &mut c, &["SETNX", "fresh", "1"]).await,
        ev(&[("__keyevent@0__:new", "fresh")])
    );
    // Expired (x): lazily on access, and by the active cycle.
    let _: () = set_flags("Ex").query_async(&mut c).await.unwrap();
    assert!(events(&mut l, &mut c, &["SET", "t", "v", "PX", "400"])
        .await
        .is_empty());
    // Lazily on the GET, or by the active cycle just before: same event.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(
        events(&mut l, &mut c, &["GET", "t"]).await,
        ev(&[("__keyevent@0__:expired", "t")])
    );
    let _: () = redis::cmd("SET")
        .arg("u")
        .arg("v")
        .arg("PX")
        .arg("20")
        .query_async(&mut c)
        .await
        .unwrap();
    // Nobody touches u: the cron's active expiry deletes it (hz 10).
    let got = parse_pmessages(&drain(&mut l, 1500).await);
    assert_eq!(got, ev(&[("__keyevent@0__:expired", "u")]));
    s.shutdown().await;
}

#[tokio::test]
async fn redis_crate_pubsub_api() {
    let s = common::start().await;
    let addr = s.local_addr();
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    let mut ps = client.get_async_pubsub().await.unwrap();
    ps.subscribe("chan").await.unwrap();
    ps.psubscribe("pat.*").await.unwrap();
    let mut c = common::client(addr).await;
    let n: i64 = c.publish("chan", "one").await.unwrap();
    assert_eq!(n, 1);
    let n: i64 = c.publish("pat.x", "two").await.unwrap();
    assert_eq!(n, 1);
    let mut stream = ps.on_message();
    let m = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (m.get_channel_name(), m.get_payload::<String>().unwrap()),
        ("chan", "one".to_string())
    );
    let m = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.get_channel_name(), "pat.x");
    assert_eq!(m.get_pattern::<String>().unwrap(), "pat.*");
    assert_eq!(m.get_payload::<String>().unwrap(), "two");
    drop(stream);
    ps.unsubscribe("chan").await.unwrap();
    ps.punsubscribe("pat.*").await.unwrap();
    wait_numsub(&mut c, "chan", 0).await;

    // RESP3: subscribe on a multiplexed connection, pushes to a channel,
    // ordinary commands on the same connection.
    let client3 = redis::Client::open(format!("redis://{addr}/?protocol=resp3")).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
    let mut con = client3
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    con.subscribe("r3").await.unwrap();
    let _: () = con.set("k", "v").await.unwrap();
    let n: i64 = c.publish("r3", "pushed").await.unwrap();
    assert_eq!(n, 1);
    let mut got = None;
    while let Ok(Some(p)) = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
        if p.kind == redis::PushKind::Message {
            got = Some(p.data);
            break;
        }
    }
    assert_eq!(
        got,
        Some(vec![
            redis::Value::BulkString(b"r3".to_vec()),
            redis::Value::BulkString(b"pushed".to_vec())
        ])
    );
    let v: String = con.get("k").await.unwrap();
    assert_eq!(v, "v");
    s.shutdown().await;
}

#[tokio::test]
async fn slow_subscriber_is_disconnected_at_the_hard_limit() {
    let s = common::start().await;
    let addr = s.local_addr();
    let mut c = common::client(addr).await;
    // A subscriber that never reads.
    let mut slow = Raw::connect(addr).await;
    slow.check(
        &resp(&[b"SUBSCRIBE", b"flood"]),
        &confirm(false, "subscribe", Some("flood"), 1),
    )
    .await;
    let payload = vec![b'x'; 1 << 20];
    // 64 MB: more than the 32 MB hard limit plus what the sockets buffer.
    for _ in 0..64 {
        let _: i64 = c.publish("flood", &payload[..]).await.unwrap();
    }
    wait_numsub(&mut c, "flood", 0).await;
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(list.lines().count(), 1, "{list}");
    s.shutdown().await;
}

/// The pubsub class of `client-output-buffer-limit` is the limit in force:
/// with no hard or soft limit, the same flood keeps the subscriber; with a
/// 2 MB hard limit, a far smaller one closes it.
#[tokio::test]
async fn pubsub_output_limits_follow_the_config() {
    let s = common::start().await;
    let addr = s.local_addr();
    let mut c = common::client(addr).await;
    let set = |v: &'static str| {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("client-output-buffer-limit")
            .arg(v)
            .clone()
    };
    let _: () = set("pubsub 0 0 0").query_async(&mut c).await.unwrap();
    let mut slow = Raw::connect(addr).await;
    slow.check(
        &resp(&[b"SUBSCRIBE", b"flood"]),
        &confirm(false, "subscribe", Some("flood"), 1),
    )
    .await;
    let payload = vec![b'x'; 1 << 20];
    for _ in 0..64 {
        let _: i64 = c.publish("flood", &payload[..]).await.unwrap();
    }
    let n: Vec<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("flood")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(n, vec![("flood".to_string(), 1)], "unlimited: kept");
    drop(slow);
    wait_numsub(&mut c, "flood", 0).await;

    let _: () = set("pubsub 2mb 0 0").query_async(&mut c).await.unwrap();
    let mut slow = Raw::connect(addr).await;
    slow.check(
        &resp(&[b"SUBSCRIBE", b"flood"]),
        &confirm(false, "subscribe", Some("flood"), 1),
    )
    .await;
    // 24 MB: under the default 32 MB, past 2 MB even after what the
    // sockets buffer (up to about 10 MB on loopback).
    for _ in 0..24 {
        let _: i64 = c.publish("flood", &payload[..]).await.unwrap();
    }
    wait_numsub(&mut c, "flood", 0).await;
    s.shutdown().await;
}

#[tokio::test]
async fn redis_cli_subscribe_receives_a_message() {
    let s = common::start().await;
    let addr = s.local_addr();
    let mut child = match std::process::Command::new("redis-cli")
        .args(["-p", &addr.port().to_string(), "subscribe", "cli-chan"])
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("redis-cli not installed: skipping the real-client check");
            s.shutdown().await;
            return;
        }
        Err(e) => panic!("cannot start redis-cli: {e}"),
    };
    // redis-cli's output, read on a thread (blocking pipe).
    let mut stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut c = common::client(addr).await;
    wait_numsub(&mut c, "cli-chan", 1).await;
    let n: i64 = c.publish("cli-chan", "hello from redlog").await.unwrap();
    assert_eq!(n, 1);
    let want = "subscribe\ncli-chan\n1\nmessage\ncli-chan\nhello from redlog\n";
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while got.len() < want.len() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(chunk)) => got.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(String::from_utf8_lossy(&got), want);
    wait_numsub(&mut c, "cli-chan", 0).await;
    s.shutdown().await;
}

/// CLIENT REPLY OFF / SKIP suppress replies, not Pub/Sub frames: Redis 7.0
/// still sends subscription confirmations, messages (also a client's own
/// PUBLISH and keyspace events under RESP3). A RESP3 client that turned
/// replies off and subscribed used to wait forever. Bytes as redis-server
/// 7.0.15 sent them.
#[tokio::test]
async fn client_reply_off_keeps_pubsub_frames() {
    let s = start().await;
    for resp3 in [false, true] {
        let mut c = Raw::connect(s.local_addr()).await;
        let p = if resp3 { ">" } else { "*" };
        if resp3 {
            c.send(&resp(&[b"HELLO", b"3"])).await;
            let _ = read_all(&mut c).await;
        }
        c.check(&resp(&[b"CLIENT", b"REPLY", b"OFF"]), b"").await;
        c.check(
            &resp(&[b"SUBSCRIBE", b"ch"]),
            format!("{p}3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n").as_bytes(),
        )
        .await;
        let mut publisher = Raw::connect(s.local_addr()).await;
        publisher
            .check(&resp(&[b"PUBLISH", b"ch", b"hi"]), b":1\r\n")
            .await;
        c.check(
            b"",
            format!("{p}3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n").as_bytes(),
        )
        .await;
        c.check(
            &resp(&[b"UNSUBSCRIBE", b"ch"]),
            format!("{p}3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n").as_bytes(),
        )
        .await;
        // The reply itself stays suppressed.
        c.check(&resp(&[b"PING"]), b"").await;
        c.check(&resp(&[b"CLIENT", b"REPLY", b"ON"]), b"+OK\r\n")
            .await;
    }
    // RESP3: its own PUBLISH and keyspace events get through, replies not.
    let mut c = Raw::connect(s.local_addr()).await;
    c.send(&resp(&[b"HELLO", b"3"])).await;
    let _ = read_all(&mut c).await;
    c.check(
        &resp(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"]),
        b"+OK\r\n",
    )
    .await;
    c.check(
        &resp(&[b"SUBSCRIBE", b"ch", b"__keyevent@0__:set"]),
        b">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n>3\r\n$9\r\nsubscribe\r\n$18\r\n__keyevent@0__:set\r\n:2\r\n",
    )
    .await;
    c.check(&resp(&[b"CLIENT", b"REPLY", b"OFF"]), b"").await;
    c.check(
        &resp(&[b"PUBLISH", b"ch", b"x"]),
        b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n",
    )
    .await;
    c.check(
        &resp(&[b"SET", b"k", b"v"]),
        b">3\r\n$7\r\nmessage\r\n$18\r\n__keyevent@0__:set\r\n$1\r\nk\r\n",
    )
    .await;
    c.check(&resp(&[b"CLIENT", b"REPLY", b"ON"]), b"+OK\r\n")
        .await;
    c.check(&resp(&[b"CLIENT", b"REPLY", b"SKIP"]), b"").await;
    c.check(
        &resp(&[b"SET", b"k", b"v"]),
        b">3\r\n$7\r\nmessage\r\n$18\r\n__keyevent@0__:set\r\n$1\r\nk\r\n",
    )
    .await;
    c.check(
        &resp(&[b"PUBLISH", b"ch", b"y"]),
        b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\ny\r\n:1\r\n",
    )
    .await;
    s.shutdown().await;
}

/// Geo writes publish Redis 7.0's events: GEOADD is ZADD (`zadd`, only
/// when something changed), GEOSEARCHSTORE `geosearchstore`, GEORADIUS
/// STORE `georadiusstore`, and an empty result deletes the destination
/// (`del`).
#[tokio::test]
async fn geo_keyspace_notifications() {
    let s = common::start().await;
    let addr = s.local_addr();
    let mut c = common::client(addr).await;
    let mut l = Raw::connect(addr).await;
    l.check(
        &resp(&[b"PSUBSCRIBE", b"__key*"]),
        &confirm(false, "psubscribe", Some("__key*"), 1),
    )
    .await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("Ezg")
        .query_async(&mut c)
        .await
        .unwrap();
    let geoadd = [
        "GEOADD",
        "g",
        "13.361389",
        "38.115556",
        "Palermo",
        "15.087269",
        "37.502669",
        "Catania",
    ];
    assert_eq!(
        events(&mut l, &mut c, &geoadd).await,
        ev(&[("__keyevent@0__:zadd", "g")])
    );
    // Nothing changed: no event.
    assert!(events(&mut l, &mut c, &geoadd).await.is_empty());
    for (cmd, want) in [
        (
            &[
                "GEOSEARCHSTORE",
                "d",
                "g",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "200",
                "km",
            ][..],
            ev(&[("__keyevent@0__:geosearchstore", "d")]),
        ),
        (
            &["GEORADIUS", "g", "15", "37", "200", "km", "STORE", "d2"],
            ev(&[("__keyevent@0__:georadiusstore", "d2")]),
        ),
        (
            &[
                "GEORADIUSBYMEMBER",
                "g",
                "Palermo",
                "10",
                "km",
                "STOREDIST",
                "d3",
            ],
            ev(&[("__keyevent@0__:georadiusstore", "d3")]),
        ),
        (
            &["GEORADIUS", "g", "15", "37", "1", "km", "STORE", "d2"],
            ev(&[("__keyevent@0__:del", "d2")]),
        ),
        (
            &[
                "GEOSEARCHSTORE",
                "d",
                "nokey",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "200",
                "km",
            ],
            ev(&[("__keyevent@0__:del", "d")]),
        ),
        (
            &[
                "GEOSEARCH",
                "g",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "200",
                "km",
            ],
            ev(&[]),
        ),
    ] {
        assert_eq!(events(&mut l, &mut c, cmd).await, want, "{cmd:?}");
    }
    s.shutdown().await;
}

fn smessage(resp3: bool, ch: &str, payload: &str) -> Vec<u8> {
    let t = if resp3 { '>' } else { '*' };
    format!(
        "{t}3\r\n$8\r\nsmessage\r\n${}\r\n{ch}\r\n${}\r\n{payload}\r\n",
        ch.len(),
        payload.len()
    )
    .into_bytes()
}

/// Sharded Pub/Sub: SPUBLISH reaches shard subscribers (RESP2 and RESP3),
/// never plain channel or pattern subscribers; a RESP3 client publishing to
/// itself gets the push before the count (bytes from redis-server 7.0.15);
/// CLIENT LIST shows `ssub` and the `P` flag; a closed subscriber is gone.
#[tokio::test]
async fn sharded_messages_reach_shard_subscribers_only() {
    let s = common::start().await;
    let addr = s.local_addr();
    let mut a = Raw::connect(addr).await;
    let mut b = Raw::connect(addr).await;
    let mut c = raw3(addr).await;
    a.check(
        &resp(&[b"SSUBSCRIBE", b"orders", b"other"]),
        &[
            confirm(false, "ssubscribe", Some("orders"), 1),
            confirm(false, "ssubscribe", Some("other"), 2),
        ]
        .concat(),
    )
    .await;
    b.check(
        &[
            resp(&[b"SUBSCRIBE", b"orders"]),
            resp(&[b"PSUBSCRIBE", b"*"]),
        ]
        .concat(),
        &[
            confirm(false, "subscribe", Some("orders"), 1),
            confirm(false, "psubscribe", Some("*"), 2),
        ]
        .concat(),
    )
    .await;
    c.check(
        &resp(&[b"SSUBSCRIBE", b"orders"]),
        &confirm(true, "ssubscribe", Some("orders"), 1),
    )
    .await;
    assert_eq!(int_cmd(addr, &[b"SPUBLISH", b"orders", b"o1"]).await, 2);
    let want = smessage(false, "orders", "o1");
    assert_eq!(a.read_exact_len(want.len()).await, want);
    let want = smessage(true, "orders", "o1");
    assert_eq!(c.read_exact_len(want.len()).await, want);
    // A RESP3 subscriber publishing to its own shard channel.
    c.check(
        &resp(&[b"SPUBLISH", b"orders", b"o2"]),
        &[smessage(true, "orders", "o2"), b":2\r\n".to_vec()].concat(),
    )
    .await;
    let want = smessage(false, "orders", "o2");
    assert_eq!(a.read_exact_len(want.len()).await, want);
    // PUBLISH does not reach shard subscribers: b gets message + pmessage.
    assert_eq!(int_cmd(addr, &[b"PUBLISH", b"orders", b"p"]).await, 2);
    let want = [
        message(false, "orders", "p"),
        pmessage(false, "*", "orders", "p"),
    ]
    .concat();
    assert_eq!(b.read_exact_len(want.len()).await, want);
    // b saw nothing of the SPUBLISHes: its next reply is the PING's.
    b.check(&resp(&[b"PING"]), b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
        .await;

    let list = raw_list(addr).await;
    let line_a = list
        .lines()
        .find(|l| l.contains("ssub=2"))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(line_a.contains(" flags=P "), "{line_a}");
    assert!(line_a.contains(" sub=0 psub=0 ssub=2 "), "{line_a}");

    drop(a);
    let mut r = common::client(addr).await;
    for _ in 0..200 {
        let v: Vec<redis::Value> = redis::cmd("PUBSUB")
            .arg("SHARDNUMSUB")
            .arg("orders")
            .query_async(&mut r)
            .await
            .unwrap();
        if v.get(1) == Some(&redis::Value::Int(1)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let chans: Vec<String> = redis::cmd("PUBSUB")
        .arg("SHARDCHANNELS")
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(chans, vec!["orders".to_string()]);
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut r)
        .await
        .unwrap();
    assert!(info.contains("pubsubshard_channels:1\r\n"), "{info}");
    s.shutdown().await;
}

async fn raw_list(addr: SocketAddr) -> String {
    let mut c = common::client(addr).await;
    redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut c)
        .await
        .unwrap()
}
