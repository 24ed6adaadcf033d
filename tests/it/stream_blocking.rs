//! XREAD BLOCK and XREADGROUP BLOCK through `server::blocking`: many
//! clients on many streams, FIFO wake-up with COUNT, timeouts in RESP2 and
//! RESP3, deleted keys / destroyed groups, CLIENT UNBLOCK, MULTI.
//! Expected bytes are Redis 7.0.15's.

use crate::common;

use common::{resp, Raw};
use std::net::SocketAddr;
use std::time::Duration;

async fn blocked(addr: SocketAddr) -> usize {
    let mut c = common::client(addr).await;
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(&mut c)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("blocked_clients:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

async fn wait_blocked(addr: SocketAddr, n: usize) {
    for _ in 0..600 {
        if blocked(addr).await == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never {n} blocked clients (now {})", blocked(addr).await);
}

async fn cmd(addr: SocketAddr, args: &[&str]) -> redis::Value {
    let mut c = common::client(addr).await;
    let mut q = redis::cmd(args[0]);
    for a in &args[1..] {
        q.arg(*a);
    }
    q.query_async(&mut c).await.unwrap()
}

fn entry_reply(key: &str, id: &str, f: &str, v: &str) -> Vec<u8> {
    format!(
        "*1\r\n*2\r\n${}\r\n{key}\r\n*1\r\n*2\r\n${}\r\n{id}\r\n*2\r\n${}\r\n{f}\r\n${}\r\n{v}\r\n",
        key.len(),
        id.len(),
        f.len(),
        v.len()
    )
    .into_bytes()
}

fn b(args: &[&str]) -> Vec<u8> {
    let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    resp(&v)
}

/// 1,000 clients blocked on 100 streams (half XREAD `$`, half XREADGROUP
/// `>` COUNT 1), each woken by the right XADD with the right entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_clients_on_hundred_streams() {
    let s = common::start().await;
    let addr = s.local_addr();
    for k in 0..100 {
        cmd(
            addr,
            &["XGROUP", "CREATE", &format!("s{k}"), "g", "$", "MKSTREAM"],
        )
        .await;
    }
    let mut clients = Vec::new();
    for i in 0..1000usize {
        let key = format!("s{}", i % 100);
        let mut r = Raw::connect(addr).await;
        if i < 500 {
            r.send(&b(&["XREAD", "BLOCK", "0", "STREAMS", &key, "$"]))
                .await;
        } else {
            let c = format!("c{i}");
            r.send(&b(&[
                "XREADGROUP",
                "GROUP",
                "g",
                &c,
                "COUNT",
                "1",
                "BLOCK",
                "0",
                "STREAMS",
                &key,
                ">",
            ]))
            .await;
        }
        clients.push((i, key, r));
    }
    wait_blocked(addr, 1000).await;
    // One XADD per stream wakes its 5 XREAD clients and one group client;
    // four more wake the other group clients one entry each.
    let mut c = common::client(addr).await;
    for n in 1..=5 {
        for k in 0..100 {
            let _: String = redis::cmd("XADD")
                .arg(format!("s{k}"))
                .arg(format!("{n}-1"))
                .arg("f")
                .arg(format!("{k}.{n}"))
                .query_async(&mut c)
                .await
                .unwrap();
        }
    }
    wait_blocked(addr, 0).await;
    let mut group_got: std::collections::HashMap<String, Vec<u32>> = Default::default();
    for (i, key, mut r) in clients {
        let k = i % 100;
        if i < 500 {
            let want = entry_reply(&key, "1-1", "f", &format!("{k}.1"));
            let got = r.read_exact_len(want.len()).await;
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
        } else {
            let len = entry_reply(&key, "1-1", "f", &format!("{k}.1")).len();
            let got = r.read_exact_len(len).await;
            let n = (1..=5)
                .find(|n| got == entry_reply(&key, &format!("{n}-1"), "f", &format!("{k}.{n}")))
                .unwrap_or_else(|| panic!("client {i}: {:?}", String::from_utf8_lossy(&got)));
            group_got.entry(key).or_default().push(n);
        }
    }
    assert_eq!(group_got.len(), 100);
    for (key, v) in &mut group_got {
        v.sort();
        assert_eq!(v, &[1, 2, 3, 4, 5], "{key}");
    }
    // Every group entry delivered exactly once, to five distinct consumers.
    for k in 0..100 {
        let p: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
            .arg(format!("s{k}"))
            .arg("g")
            .arg("-")
            .arg("+")
            .arg(10)
            .query_async(&mut c)
            .await
            .unwrap();
        let ids: Vec<&str> = p.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(ids, ["1-1", "2-1", "3-1", "4-1", "5-1"]);
        let owners: std::collections::BTreeSet<&str> = p.iter().map(|x| x.1.as_str()).collect();
        assert_eq!(owners.len(), 5);
    }
    s.shutdown().await;
}

/// First come, first served, and a woken XREADGROUP honours COUNT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_wakeup_honours_count() {
    let s = common::start().await;
    let addr = s.local_addr();
    cmd(addr, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]).await;
    let mut a = Raw::connect(addr).await;
    a.send(&b(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "a",
        "COUNT",
        "2",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ]))
    .await;
    wait_blocked(addr, 1).await;
    let mut bb = Raw::connect(addr).await;
    bb.send(&b(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "b",
        "COUNT",
        "2",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ]))
    .await;
    wait_blocked(addr, 2).await;
    let mut m = Raw::connect(addr).await;
    m.send(&b(&["MULTI"])).await;
    for id in ["1-1", "2-1", "3-1"] {
        m.send(&b(&["XADD", "s", id, "f", "v"])).await;
    }
    m.check(
        &b(&["EXEC"]),
        b"+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n$3\r\n1-1\r\n$3\r\n2-1\r\n$3\r\n3-1\r\n",
    )
    .await;
    let two = b"*1\r\n*2\r\n$1\r\ns\r\n*2\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n*2\r\n$3\r\n2-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n";
    assert_eq!(a.read_exact_len(two.len()).await, two.to_vec());
    let one = b"*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n3-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n";
    assert_eq!(bb.read_exact_len(one.len()).await, one.to_vec());
    // One client blocked on several streams is served by the first ready.
    let mut many = Raw::connect(addr).await;
    many.send(&b(&[
        "XREAD", "BLOCK", "0", "STREAMS", "x", "y", "s", "$", "$", "$",
    ]))
    .await;
    wait_blocked(addr, 1).await;
    cmd(addr, &["XADD", "y", "7-7", "k", "v"]).await;
    let want = entry_reply("y", "7-7", "k", "v");
    assert_eq!(many.read_exact_len(want.len()).await, want);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_errors_unblock_and_multi() {
    let s = common::start().await;
    let addr = s.local_addr();
    cmd(addr, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]).await;
    // Timeouts: RESP2 *-1, RESP3 _.
    let mut r2 = Raw::connect(addr).await;
    r2.check(
        &b(&["XREAD", "BLOCK", "50", "STREAMS", "s", "$"]),
        b"*-1\r\n",
    )
    .await;
    r2.check(
        &b(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "50",
            "STREAMS",
            "s",
            ">",
        ]),
        b"*-1\r\n",
    )
    .await;
    let mut r3 = Raw::connect(addr).await;
    r3.send(&b(&["HELLO", "3"])).await;
    let mut hello = vec![0u8; 0];
    tokio::time::sleep(Duration::from_millis(100)).await;
    {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 4096];
        let n = r3.stream.read(&mut buf).await.unwrap();
        hello.extend_from_slice(&buf[..n]);
    }
    assert!(hello.starts_with(b"%7\r\n"));
    r3.check(&b(&["XREAD", "BLOCK", "50", "STREAMS", "s", "$"]), b"_\r\n")
        .await;
    r3.check(
        &b(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "50",
            "STREAMS",
            "s",
            ">",
        ]),
        b"_\r\n",
    )
    .await;
    // Missing stream: NOGROUP at once, no blocking.
    r2.check(
        &b(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "nokey",
            ">",
        ]),
        b"-NOGROUP No such key 'nokey' or consumer group 'g' in XREADGROUP with GROUP option\r\n",
    )
    .await;
    // MULTI: no blocking.
    r2.check(&b(&["MULTI"]), b"+OK\r\n").await;
    r2.check(
        &b(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ]),
        b"+QUEUED\r\n",
    )
    .await;
    r2.check(
        &b(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]),
        b"+QUEUED\r\n",
    )
    .await;
    r2.check(&b(&["EXEC"]), b"*2\r\n*-1\r\n*-1\r\n").await;
    // Key deleted, type changed, group destroyed.
    for (action, err) in [
        (
            vec!["DEL", "s"],
            "-UNBLOCKED the stream key no longer exists\r\n",
        ),
        (
            vec!["SET", "s", "x"],
            "-UNBLOCKED the stream key no longer exists\r\n",
        ),
        (
            vec!["XGROUP", "DESTROY", "s", "g"],
            "-NOGROUP the consumer group this client was blocked on no longer exists\r\n",
        ),
    ] {
        cmd(addr, &["DEL", "s"]).await;
        cmd(addr, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]).await;
        let mut w = Raw::connect(addr).await;
        w.send(&b(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ]))
        .await;
        wait_blocked(addr, 1).await;
        cmd(addr, &action).await;
        assert_eq!(
            String::from_utf8_lossy(&w.read_exact_len(err.len()).await),
            err,
            "{action:?}"
        );
    }
    // An XREAD blocked on a deleted key keeps waiting and is served by
    // the new stream.
    let mut w = Raw::connect(addr).await;
    w.send(&b(&["XREAD", "BLOCK", "0", "STREAMS", "s", "0"]))
        .await;
    wait_blocked(addr, 1).await;
    cmd(addr, &["DEL", "s"]).await;
    cmd(addr, &["SET", "s", "x"]).await;
    cmd(addr, &["DEL", "s"]).await;
    assert_eq!(blocked(addr).await, 1);
    cmd(addr, &["XADD", "s", "1-1", "a", "b"]).await;
    let want = entry_reply("s", "1-1", "a", "b");
    assert_eq!(w.read_exact_len(want.len()).await, want);
    // CLIENT UNBLOCK TIMEOUT / ERROR.
    let mut w = Raw::connect(addr).await;
    let id: i64 = {
        use tokio::io::AsyncReadExt;
        w.send(&b(&["CLIENT", "ID"])).await;
        let mut buf = [0u8; 64];
        let n = w.stream.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[1..n - 2]).parse().unwrap()
    };
    for (how, reply) in [
        ("TIMEOUT", "*-1\r\n"),
        (
            "ERROR",
            "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n",
        ),
    ] {
        w.send(&b(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]))
            .await;
        wait_blocked(addr, 1).await;
        let n: i64 = redis::cmd("CLIENT")
            .arg("UNBLOCK")
            .arg(id)
            .arg(how)
            .query_async(&mut common::client(addr).await)
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(
            String::from_utf8_lossy(&w.read_exact_len(reply.len()).await),
            reply
        );
    }
    s.shutdown().await;
}
