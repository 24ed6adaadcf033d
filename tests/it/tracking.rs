//! CLIENT TRACKING with several connections against an in-process server:
//! the bytes of invalidation messages (as redis-server 7.0.15 sends them)
//! after writes by another client, expiry, FLUSHALL, BCAST prefixes,
//! NOLOOP, OPTIN with CLIENT CACHING, a redirection to a RESP2
//! subscriber, and the table's size limit.

use crate::common;

use common::{raw_cmd, read_all, resp, start, Raw};
use std::net::SocketAddr;

fn invalidate(keys: &[&str]) -> Vec<u8> {
    let mut v = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len()).into_bytes();
    for k in keys {
        v.extend_from_slice(format!("${}\r\n{k}\r\n", k.len()).as_bytes());
    }
    v
}

fn cmd(args: &[&str]) -> Vec<u8> {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    resp(&a)
}

async fn resp3(addr: SocketAddr) -> Raw {
    let mut c = Raw::connect(addr).await;
    let hello = raw_cmd(&mut c, &["HELLO", "3"]).await;
    assert!(hello.starts_with('%'), "{hello}");
    c
}

#[tokio::test]
async fn resp3_push_after_another_clients_write_once() {
    let s = start().await;
    let mut c1 = resp3(s.local_addr()).await;
    let mut c2 = Raw::connect(s.local_addr()).await;
    c1.check(&cmd(&["CLIENT", "TRACKING", "on"]), b"+OK\r\n")
        .await;
    c1.check(&cmd(&["GET", "k"]), b"_\r\n").await;
    c2.check(&cmd(&["SET", "k", "v"]), b"+OK\r\n").await;
    assert_eq!(
        c1.read_exact_len(invalidate(&["k"]).len()).await,
        invalidate(&["k"])
    );
    // Forgotten after one invalidation: the next write sends nothing, so
    // PING's reply is the next thing c1 reads.
    c2.check(&cmd(&["SET", "k", "w"]), b"+OK\r\n").await;
    c1.check(&cmd(&["PING"]), b"+PONG\r\n").await;
    // INFO: one tracking client, no key tracked any more.
    let info = raw_cmd(&mut c2, &["INFO", "everything"]).await;
    assert!(info.contains("tracking_clients:1\r\n"), "{info}");
    assert!(info.contains("tracking_total_keys:0\r\n"), "{info}");
}

#[tokio::test]
async fn own_write_is_pushed_after_the_reply_unless_noloop() {
    let s = start().await;
    let mut c1 = resp3(s.local_addr()).await;
    c1.check(&cmd(&["CLIENT", "TRACKING", "on"]), b"+OK\r\n")
        .await;
    let mut pipeline = cmd(&["GET", "n"]);
    pipeline.extend(cmd(&["SET", "n", "1"]));
    pipeline.extend(cmd(&["PING"]));
    let mut want = b"_\r\n+OK\r\n".to_vec();
    want.extend(invalidate(&["n"]));
    want.extend_from_slice(b"+PONG\r\n");
    c1.check(&pipeline, &want).await;
    c1.check(&cmd(&["CLIENT", "TRACKING", "on", "noloop"]), b"+OK\r\n")
        .await;
    c1.check(&pipeline, b"$1\r\n1\r\n+OK\r\n+PONG\r\n").await;
}

#[tokio::test]
async fn expiry_and_flushall_invalidate() {
    let s = start().await;
    let mut c1 = resp3(s.local_addr()).await;
    let mut c2 = Raw::connect(s.local_addr()).await;
    c1.check(&cmd(&["CLIENT", "TRACKING", "on"]), b"+OK\r\n")
        .await;
    c2.check(&cmd(&["SET", "e", "v", "PX", "500"]), b"+OK\r\n")
        .await;
    c1.check(&cmd(&["GET", "e"]), b"$1\r\nv\r\n").await;
    // The active expiry cycle deletes the key (no command touches it) and
    // c1 is told.
    let want = invalidate(&["e"]);
    let mut got = Vec::new();
    for _ in 0..5 {
        got.extend(c1.read_exact_len(want.len() - got.len()).await);
        if got.len() == want.len() {
            break;
        }
    }
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
    c2.check(&cmd(&["FLUSHALL"]), b"+OK\r\n").await;
    let null = b">2\r\n$10\r\ninvalidate\r\n_\r\n";
    assert_eq!(c1.read_exact_len(null.len()).await, null);
}

#[tokio::test]
async fn bcast_sends_one_sorted_message_per_prefix() {
    let s = start().await;
    let mut c1 = resp3(s.local_addr()).await;
    let mut c2 = Raw::connect(s.local_addr()).await;
    c1.check(
        &cmd(&[
            "CLIENT", "TRACKING", "on", "bcast", "prefix", "a:", "prefix", "b:",
        ]),
        b"+OK\r\n",
    )
    .await;
    c2.check(
        &cmd(&["MSET", "a:2", "x", "a:1", "y", "c", "z"]),
        b"+OK\r\n",
    )
    .await;
    let want = invalidate(&["a:1", "a:2"]);
    assert_eq!(c1.read_exact_len(want.len()).await, want);
    let info = raw_cmd(&mut c2, &["INFO", "stats"]).await;
    assert!(info.contains("tracking_total_prefixes:2\r\n"), "{info}");
    // NOLOOP in BCAST: the client's own keys are left out.
    c1.check(&cmd(&["CLIENT", "TRACKING", "off"]), b"+OK\r\n")
        .await;
    c1.check(
        &cmd(&["CLIENT", "TRACKING", "on", "bcast", "noloop"]),
        b"+OK\r\n",
    )
    .await;
    c1.check(&cmd(&["SET", "mine", "1"]), b"+OK\r\n").await;
    c2.check(&cmd(&["SET", "theirs", "1"]), b"+OK\r\n").await;
    let want = invalidate(&["theirs"]);
    assert_eq!(c1.read_exact_len(want.len()).await, want);
}

#[tokio::test]
async fn optin_tracks_only_after_caching_yes() {
    let s = start().await;
    let mut c1 = resp3(s.local_addr()).await;
    let mut c2 = Raw::connect(s.local_addr()).await;
    c1.check(&cmd(&["CLIENT", "TRACKING", "on", "optin"]), b"+OK\r\n")
        .await;
    c1.check(&cmd(&["GET", "o1"]), b"_\r\n").await;
    c1.check(&cmd(&["CLIENT", "CACHING", "yes"]), b"+OK\r\n")
        .await;
    c1.check(&cmd(&["GET", "o2"]), b"_\r\n").await;
    // CACHING covered one command only.
    c1.check(&cmd(&["GET", "o3"]), b"_\r\n").await;
    c2.check(&cmd(&["MSET", "o1", "1", "o2", "2", "o3", "3"]), b"+OK\r\n")
        .await;
    let want = invalidate(&["o2"]);
    assert_eq!(c1.read_exact_len(want.len()).await, want);
    c1.check(&cmd(&["PING"]), b"+PONG\r\n").await;
}

#[tokio::test]
async fn resp2_redirect_to_a_subscriber() {
    let s = start().await;
    let mut sub = Raw::connect(s.local_addr()).await;
    let id = raw_cmd(&mut sub, &["CLIENT", "ID"]).await;
    let id = id.trim().trim_start_matches(':').to_string();
    let _ = raw_cmd(&mut sub, &["SUBSCRIBE", "__redis__:invalidate"]).await;
    let mut c1 = Raw::connect(s.local_addr()).await;
    let mut c2 = Raw::connect(s.local_addr()).await;
    c1.check(
        &cmd(&["CLIENT", "TRACKING", "on", "redirect", &id]),
        b"+OK\r\n",
    )
    .await;
    c1.check(&cmd(&["GET", "r"]), b"$-1\r\n").await;
    c2.check(&cmd(&["SET", "r", "1"]), b"+OK\r\n").await;
    let want = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nr\r\n";
    assert_eq!(sub.read_exact_len(want.len()).await, want);
    c2.check(&cmd(&["FLUSHALL"]), b"+OK\r\n").await;
    let want = b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n";
    assert_eq!(sub.read_exact_len(want.len()).await, want);
    let list = raw_cmd(&mut c1, &["CLIENT", "INFO"]).await;
    assert!(
        list.contains("flags=t ") && list.contains(&format!("redir={id} ")),
        "{list}"
    );
}

#[tokio::test]
async fn table_limit_invalidates_keys_over_it() {
    let s = start().await;
    let mut c1 = resp3(s.local_addr()).await;
    let mut c2 = Raw::connect(s.local_addr()).await;
    c2.check(
        &cmd(&["CONFIG", "SET", "tracking-table-max-keys", "2"]),
        b"+OK\r\n",
    )
    .await;
    c1.check(&cmd(&["CLIENT", "TRACKING", "on"]), b"+OK\r\n")
        .await;
    c1.check(
        &cmd(&["MGET", "k1", "k2", "k3", "k4", "k5"]),
        b"*5\r\n_\r\n_\r\n_\r\n_\r\n_\r\n",
    )
    .await;
    // The next command brings the table back to 2 keys, telling c1.
    let got = raw_cmd(&mut c1, &["PING"]).await;
    let got = got + &read_all(&mut c1).await;
    assert_eq!(got.matches("invalidate").count(), 3, "{got:?}");
    let info = raw_cmd(&mut c2, &["INFO", "stats"]).await;
    assert!(info.contains("tracking_total_keys:2\r\n"), "{info}");
    assert!(info.contains("tracking_total_items:2\r\n"), "{info}");
}
