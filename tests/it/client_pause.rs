//! CLIENT PAUSE / UNPAUSE: errors as redis-server 7.0.15 words them,
//! paused commands wait (never rejected) and run when the pause ends,
//! WRITE lets reads through, ALL holds everything, and the active expiry
//! cycle stops while paused.

use crate::common;

use common::{raw_cmd, resp, Raw};
use std::net::SocketAddr;
use std::time::Duration;

/// Waits until CLIENT LIST shows a client whose last command is `cmd`
/// (the command was read and postponed).
async fn wait_last_cmd(addr: SocketAddr, cmd: &str) {
    let mut c = common::client(addr).await;
    for _ in 0..1000 {
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query_async(&mut c)
            .await
            .unwrap();
        if list.contains(&format!(" cmd={cmd} ")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no client ran {cmd}");
}

#[tokio::test]
async fn pause_errors_as_redis() {
    let s = common::start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    for (args, want) in [
        (
            &[&b"CLIENT"[..], b"PAUSE"][..],
            &b"-ERR wrong number of arguments for 'client|pause' command\r\n"[..],
        ),
        (
            &[b"CLIENT", b"PAUSE", b"x"],
            b"-ERR timeout is not an integer or out of range\r\n",
        ),
        (&[b"CLIENT", b"PAUSE", b"-1"], b"-ERR timeout is negative\r\n"),
        (
            &[b"CLIENT", b"PAUSE", b"99999999999999999999"],
            b"-ERR timeout is not an integer or out of range\r\n",
        ),
        (
            &[b"CLIENT", b"PAUSE", b"9223372036854775807"],
            b"-ERR timeout is out of range\r\n",
        ),
        (
            &[b"CLIENT", b"PAUSE", b"10", b"foo"],
            b"-ERR CLIENT PAUSE mode must be WRITE or ALL\r\n",
        ),
        (
            &[b"CLIENT", b"PAUSE", b"10", b"write", b"x"],
            b"-ERR unknown subcommand or wrong number of arguments for 'PAUSE'. Try CLIENT HELP.\r\n",
        ),
        (
            &[b"CLIENT", b"UNPAUSE", b"x"],
            b"-ERR wrong number of arguments for 'client|unpause' command\r\n",
        ),
        (&[b"CLIENT", b"PAUSE", b"0"], b"+OK\r\n"),
        (&[b"CLIENT", b"UNPAUSE"], b"+OK\r\n"),
        (&[b"PING"], b"+PONG\r\n"),
    ] {
        c.check(&resp(args), want).await;
    }
    s.shutdown().await;
}

#[tokio::test]
async fn write_pause_holds_writes_until_unpause() {
    let s = common::start().await;
    let addr = s.local_addr();
    let mut admin = Raw::connect(addr).await;
    admin
        .check(
            &resp(&[b"CLIENT", b"PAUSE", b"100000", b"WRITE"]),
            b"+OK\r\n",
        )
        .await;
    // Reads and read-only scripts go on.
    let mut r = Raw::connect(addr).await;
    r.check(&resp(&[b"GET", b"k"]), b"$-1\r\n").await;
    r.check(&resp(&[b"EVAL_RO", b"return 1", b"0"]), b":1\r\n")
        .await;
    r.check(
        &resp(&[b"EVAL", b"#!lua flags=no-writes\nreturn 2", b"0"]),
        b":2\r\n",
    )
    .await;
    r.check(&resp(&[b"PING"]), b"+PONG\r\n").await;
    // A write waits, and so does the pipeline behind it.
    let mut w = Raw::connect(addr).await;
    w.send(&[resp(&[b"SET", b"k", b"v"]), resp(&[b"GET", b"k"])].concat())
        .await;
    wait_last_cmd(addr, "set").await;
    // PUBLISH may replicate: it waits too.
    let mut p = Raw::connect(addr).await;
    p.send(&resp(&[b"PUBLISH", b"ch", b"m"])).await;
    wait_last_cmd(addr, "publish").await;
    // A write queued in MULTI waits at queueing time, as in Redis.
    let mut m = Raw::connect(addr).await;
    m.check(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    m.send(&resp(&[b"INCR", b"n"])).await;
    wait_last_cmd(addr, "incr").await;
    r.check(&resp(&[b"GET", b"k"]), b"$-1\r\n").await;
    r.check(&resp(&[b"EXISTS", b"n"]), b":0\r\n").await;
    // Nested pauses extend: a short WRITE pause does not end the long one.
    admin
        .check(&resp(&[b"CLIENT", b"PAUSE", b"1", b"WRITE"]), b"+OK\r\n")
        .await;
    admin
        .check(&resp(&[b"CLIENT", b"UNPAUSE"]), b"+OK\r\n")
        .await;
    w.check(b"", b"+OK\r\n$1\r\nv\r\n").await;
    p.check(b"", b":0\r\n").await;
    m.check(b"", b"+QUEUED\r\n").await;
    m.check(&resp(&[b"EXEC"]), b"*1\r\n:1\r\n").await;
    s.shutdown().await;
}

#[tokio::test]
async fn all_pause_holds_everything_until_it_ends() {
    let s = common::start().await;
    let addr = s.local_addr();
    let mut admin = Raw::connect(addr).await;
    admin
        .check(&resp(&[b"CLIENT", b"PAUSE", b"300"]), b"+OK\r\n")
        .await;
    let mut r = Raw::connect(addr).await;
    r.send(&resp(&[b"PING"])).await;
    // The pausing client's own commands wait too, CLIENT UNPAUSE included;
    // the timeout ends the pause.
    admin.send(&resp(&[b"CLIENT", b"UNPAUSE"])).await;
    r.check(b"", b"+PONG\r\n").await;
    admin.check(b"", b"+OK\r\n").await;
    s.shutdown().await;
}

#[tokio::test]
async fn active_expiry_stops_while_paused() {
    let s = common::start_with(&[("enable-debug-command", "yes"), ("hz", "100")]).await;
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(&resp(&[b"DEBUG", b"SET-ACTIVE-EXPIRE", b"0"]), b"+OK\r\n")
        .await;
    c.check(&resp(&[b"SET", b"k", b"v", b"PX", b"1"]), b"+OK\r\n")
        .await;
    c.check(
        &resp(&[b"CLIENT", b"PAUSE", b"100000", b"WRITE"]),
        b"+OK\r\n",
    )
    .await;
    c.check(&resp(&[b"DEBUG", b"SET-ACTIVE-EXPIRE", b"1"]), b"+OK\r\n")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.check(&resp(&[b"DBSIZE"]), b":1\r\n").await;
    c.check(&resp(&[b"CLIENT", b"UNPAUSE"]), b"+OK\r\n").await;
    let mut gone = false;
    for _ in 0..500 {
        if raw_cmd(&mut c, &["DBSIZE"]).await == ":0\r\n" {
            gone = true;
            break;
        }
    }
    assert!(gone, "the active cycle never removed the key after UNPAUSE");
    s.shutdown().await;
}

/// A client whose command a pause postponed and that then goes away is
/// closed at once (its input is still read), not kept until the pause ends.
#[tokio::test]
async fn a_postponed_client_that_leaves_is_closed() {
    let s = common::start().await;
    let mut c = common::client(s.local_addr()).await;
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(100_000)
        .arg("WRITE")
        .query_async(&mut c)
        .await
        .unwrap();
    let mut w = Raw::connect(s.local_addr()).await;
    w.send(&resp(&[b"SET", b"k", b"v"])).await;
    wait_last_cmd(s.local_addr(), "set").await;
    drop(w);
    let mut count = 0;
    for _ in 0..400 {
        let info: String = redis::cmd("INFO")
            .arg("clients")
            .query_async(&mut c)
            .await
            .unwrap();
        count = info
            .lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(0);
        if count == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // This connection only (wait_last_cmd's own was dropped too).
    assert_eq!(count, 1, "the postponed client is still connected");
    let v: Option<String> = redis::cmd("GET")
        .arg("k")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(v, None);
}
