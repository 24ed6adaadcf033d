//! Blocking list commands: FIFO wake order, several keys, timeouts in
//! RESP2 and RESP3, CLIENT UNBLOCK, killed and vanished clients, MULTI,
//! chains through BLMOVE, pipelined input after a blocked command,
//! durability of a served pop, and hundreds of blocked clients.
//! Expected bytes are those of redis-server 7.0.15.

use crate::common;

use common::*;
use std::time::Duration;

fn pair(key: &str, v: &str) -> Vec<u8> {
    format!("*2\r\n${}\r\n{key}\r\n${}\r\n{v}\r\n", key.len(), v.len()).into_bytes()
}

async fn expect(c: &mut Raw, expected: &[u8]) {
    let got = c.read_exact_len(expected.len()).await;
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected)
    );
}

#[tokio::test]
async fn fifo_wake_order_across_clients() {
    let s = start().await;
    let mut a = blocked(&s, &[b"BLPOP", b"k", b"0"], 1).await;
    let mut b = blocked(&s, &[b"BRPOP", b"k", b"0"], 2).await;
    let mut c = blocked(&s, &[b"BLPOP", b"k", b"0"], 3).await;
    let mut w = Raw::connect(s.local_addr()).await;
    // One push of three elements: served in blocking order, each popping
    // from its own side.
    w.check(&resp(&[b"RPUSH", b"k", b"1", b"2", b"3"]), b":3\r\n")
        .await;
    expect(&mut a, &pair("k", "1")).await;
    expect(&mut b, &pair("k", "3")).await;
    expect(&mut c, &pair("k", "2")).await;
    w.check(&resp(&[b"EXISTS", b"k"]), b":0\r\n").await;
    assert_eq!(s.shared().ks.lock().blocked_clients(), 0);
    s.shutdown().await;
}

#[tokio::test]
async fn one_client_blocked_on_several_keys() {
    let s = start().await;
    let mut a = blocked(&s, &[b"BLPOP", b"k1", b"k2", b"k3", b"0"], 1).await;
    let mut w = Raw::connect(s.local_addr()).await;
    w.check(&resp(&[b"LPUSH", b"k2", b"x"]), b":1\r\n").await;
    expect(&mut a, &pair("k2", "x")).await;
    // Served once: a later push to another of its keys stays.
    w.check(&resp(&[b"LPUSH", b"k1", b"y"]), b":1\r\n").await;
    w.check(&resp(&[b"LLEN", b"k1"]), b":1\r\n").await;
    assert!(s.shared().ks.lock().dbs[0].waiters_on(b"k3").is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn timeouts_in_resp2_and_resp3() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let t = std::time::Instant::now();
    c.check(&resp(&[b"BLPOP", b"e", b"0.1"]), b"*-1\r\n").await;
    assert!(
        t.elapsed() >= Duration::from_millis(95),
        "{:?}",
        t.elapsed()
    );
    c.check(
        &resp(&[b"BLMOVE", b"e", b"f", b"LEFT", b"LEFT", b"0.05"]),
        b"*-1\r\n",
    )
    .await;
    c.check(&resp(&[b"BRPOPLPUSH", b"e", b"f", b"0.05"]), b"*-1\r\n")
        .await;
    c.check(
        &resp(&[b"BLMPOP", b"0.05", b"1", b"e", b"LEFT"]),
        b"*-1\r\n",
    )
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
    c3.check(&resp(&[b"BLPOP", b"e", b"0.05"]), b"_\r\n").await;
    c3.check(
        &resp(&[b"BLMOVE", b"e", b"f", b"LEFT", b"LEFT", b"0.05"]),
        b"_\r\n",
    )
    .await;
    assert_eq!(s.shared().ks.lock().blocked_clients(), 0);
    s.shutdown().await;
}

#[tokio::test]
async fn client_unblock_timeout_and_error() {
    let s = start().await;
    let mut a = blocked(&s, &[b"BLPOP", b"k", b"0"], 1).await;
    let mut w = Raw::connect(s.local_addr()).await;
    w.check(&resp(&[b"CLIENT", b"ID"]), b":2\r\n").await;
    // CLIENT LIST shows the blocked client with flag b.
    let mut rc = client(s.local_addr()).await;
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut rc)
        .await
        .unwrap();
    assert!(
        list.contains("id=1 ") && list.contains("flags=b "),
        "{list}"
    );
    assert!(list.contains("cmd=blpop "), "{list}");
    w.check(&resp(&[b"CLIENT", b"UNBLOCK", b"1"]), b":1\r\n")
        .await;
    expect(&mut a, b"*-1\r\n").await;
    w.check(&resp(&[b"CLIENT", b"UNBLOCK", b"1"]), b":0\r\n")
        .await;
    a.send(&resp(&[b"BRPOPLPUSH", b"k", b"d", b"0"])).await;
    wait_blocked(&s, 1).await;
    w.check(&resp(&[b"CLIENT", b"UNBLOCK", b"1", b"ERROR"]), b":1\r\n")
        .await;
    expect(
        &mut a,
        b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n",
    )
    .await;
    // The connection goes on normally.
    a.check(&resp(&[b"PING"]), b"+PONG\r\n").await;
    w.check(&resp(&[b"CLIENT", b"UNBLOCK", b"2"]), b":0\r\n")
        .await;
    w.check(
        &resp(&[b"CLIENT", b"UNBLOCK", b"1", b"maybe"]),
        b"-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n",
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn killed_or_vanished_clients_take_nothing() {
    let s = start().await;
    let mut a = blocked(&s, &[b"BLPOP", b"k", b"0"], 1).await;
    let b = blocked(&s, &[b"BLPOP", b"k", b"0"], 2).await;
    let mut w = Raw::connect(s.local_addr()).await;
    let mut rc = client(s.local_addr()).await;
    let info: String = redis::cmd("INFO")
        .arg("clients")
        .query_async(&mut rc)
        .await
        .unwrap();
    assert!(info.contains("blocked_clients:2\r\n"), "{info}");
    w.check(&resp(&[b"CLIENT", b"KILL", b"ID", b"1"]), b":1\r\n")
        .await;
    assert!(a.closed().await);
    drop(b);
    wait_blocked(&s, 0).await;
    w.check(&resp(&[b"RPUSH", b"k", b"v"]), b":1\r\n").await;
    w.check(&resp(&[b"LLEN", b"k"]), b":1\r\n").await;
    s.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_blocked_clients() {
    let s = start().await;
    let mut a = blocked(&s, &[b"BLPOP", b"k", b"0"], 1).await;
    let shared = s.shared().clone();
    tokio::time::timeout(Duration::from_secs(5), s.shutdown())
        .await
        .expect("shutdown does not wait for blocked clients");
    assert!(a.closed().await);
    assert_eq!(shared.ks.lock().blocked_clients(), 0);
}

#[tokio::test]
async fn multi_does_not_block_and_exec_wakes() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    c.check(&resp(&[b"BLPOP", b"e", b"0"]), b"+QUEUED\r\n")
        .await;
    c.check(
        &resp(&[b"BLMOVE", b"e", b"f", b"LEFT", b"LEFT", b"0"]),
        b"+QUEUED\r\n",
    )
    .await;
    c.check(&resp(&[b"EXEC"]), b"*2\r\n*-1\r\n$-1\r\n").await;
    // A push inside a transaction serves the waiter after EXEC, with the
    // transaction's final state: pushed then trimmed away means nothing.
    let mut a = blocked(&s, &[b"BLPOP", b"k", b"0"], 1).await;
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    c.check(&resp(&[b"RPUSH", b"k", b"gone"]), b"+QUEUED\r\n")
        .await;
    c.check(&resp(&[b"DEL", b"k"]), b"+QUEUED\r\n").await;
    c.check(&resp(&[b"RPUSH", b"k", b"1", b"2"]), b"+QUEUED\r\n")
        .await;
    c.check(&resp(&[b"EXEC"]), b"*3\r\n:1\r\n:1\r\n:2\r\n")
        .await;
    expect(&mut a, &pair("k", "1")).await;
    c.check(&resp(&[b"LRANGE", b"k", b"0", b"-1"]), b"*1\r\n$1\r\n2\r\n")
        .await;
    s.shutdown().await;
}

#[tokio::test]
async fn wrong_type_keeps_waiting_then_list_serves() {
    let s = start().await;
    let mut a = blocked(&s, &[b"BLPOP", b"k", b"0"], 1).await;
    let mut w = Raw::connect(s.local_addr()).await;
    w.check(&resp(&[b"SET", b"k", b"str"]), b"+OK\r\n").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s.shared().ks.lock().blocked_clients(), 1);
    w.check(&resp(&[b"DEL", b"k"]), b":1\r\n").await;
    w.check(&resp(&[b"RPUSH", b"src", b"v"]), b":1\r\n").await;
    // RENAME creates the key: like Redis's dbAdd it wakes the waiter.
    w.check(&resp(&[b"RENAME", b"src", b"k"]), b"+OK\r\n").await;
    expect(&mut a, &pair("k", "v")).await;
    // BLMOVE served against a string destination gets WRONGTYPE.
    let mut b = blocked(&s, &[b"BLMOVE", b"q", b"str", b"LEFT", b"LEFT", b"0"], 1).await;
    w.check(&resp(&[b"SET", b"str", b"x"]), b"+OK\r\n").await;
    w.check(&resp(&[b"RPUSH", b"q", b"v"]), b":1\r\n").await;
    expect(
        &mut b,
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    )
    .await;
    w.check(&resp(&[b"LLEN", b"q"]), b":1\r\n").await;
    s.shutdown().await;
}

#[tokio::test]
async fn blmove_chains_and_pipelined_input_waits() {
    let s = start().await;
    let mut a = blocked(&s, &[b"BLMOVE", b"src", b"mid", b"RIGHT", b"LEFT", b"0"], 1).await;
    // Pipelined after a blocking command: runs only once it is served.
    let mut b = Raw::connect(s.local_addr()).await;
    let mut req = resp(&[b"BLMPOP", b"0", b"1", b"mid", b"LEFT", b"COUNT", b"5"]);
    req.extend_from_slice(&resp(&[b"PING"]));
    b.send(&req).await;
    wait_blocked(&s, 2).await;
    let mut w = Raw::connect(s.local_addr()).await;
    w.check(&resp(&[b"RPUSH", b"src", b"x", b"y"]), b":2\r\n")
        .await;
    expect(&mut a, b"$1\r\ny\r\n").await;
    expect(&mut b, b"*2\r\n$3\r\nmid\r\n*1\r\n$1\r\ny\r\n+PONG\r\n").await;
    w.check(
        &resp(&[b"LRANGE", b"src", b"0", b"-1"]),
        b"*1\r\n$1\r\nx\r\n",
    )
    .await;
    w.check(&resp(&[b"EXISTS", b"mid"]), b":0\r\n").await;
    s.shutdown().await;
}

#[tokio::test]
async fn served_pop_is_durable() {
    let dir = temp_dir();
    let d = dir.to_str().unwrap().to_string();
    let s = start_with(&[("dir", &d)]).await;
    let mut a = blocked(&s, &[b"BLMOVE", b"k", b"dst", b"LEFT", b"RIGHT", b"0"], 1).await;
    let mut w = Raw::connect(s.local_addr()).await;
    w.check(&resp(&[b"RPUSH", b"k", b"1", b"2"]), b":2\r\n")
        .await;
    expect(&mut a, b"$1\r\n1\r\n").await;
    s.shutdown().await;
    let s = start_with(&[("dir", &d)]).await;
    let mut w = Raw::connect(s.local_addr()).await;
    w.check(&resp(&[b"LRANGE", b"k", b"0", b"-1"]), b"*1\r\n$1\r\n2\r\n")
        .await;
    w.check(
        &resp(&[b"LRANGE", b"dst", b"0", b"-1"]),
        b"*1\r\n$1\r\n1\r\n",
    )
    .await;
    s.shutdown().await;
}

/// 250 clients blocked on 50 keys (5 per key, each with its own timeout
/// and pop side); one push per element; every client gets the element
/// meant for it, from its own key, in blocking order.
#[tokio::test]
async fn many_clients_on_many_keys() {
    const KEYS: usize = 50;
    const CLIENTS: usize = 250;
    let s = start().await;
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let key = format!("key{}", i % KEYS);
        let cmd: &[u8] = if i % 2 == 0 { b"BLPOP" } else { b"BRPOP" };
        let c = blocked(&s, &[cmd, b"other", key.as_bytes(), b"100"], i + 1).await;
        clients.push((c, key));
    }
    let mut w = Raw::connect(s.local_addr()).await;
    // Push in an order unrelated to the blocking order: key by key from
    // the end, each element named after the client that must get it.
    for k in (0..KEYS).rev() {
        for round in 0..CLIENTS / KEYS {
            let i = round * KEYS + k;
            let key = format!("key{k}");
            let v = format!("for{i}");
            // The list is 1 long after the push whoever gets the element.
            w.check(&resp(&[b"RPUSH", key.as_bytes(), v.as_bytes()]), b":1\r\n")
                .await;
        }
    }
    for (i, (c, key)) in clients.iter_mut().enumerate() {
        expect(c, &pair(key, &format!("for{i}"))).await;
    }
    assert_eq!(s.shared().ks.lock().blocked_clients(), 0);
    assert_eq!(s.shared().ks.lock().dbs[0].len(), 0);
    s.shutdown().await;
}
