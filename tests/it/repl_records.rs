//! redlog-only state over replication between two redlog servers (LOGPARSE
//! formats, shared miners, INGESTed streams with their miners: RDB aux
//! records at the full resync, `PING <record>` in the stream afterwards),
//! and UNBLOCKED at a role change. redis-tests/repl_redlog.py runs the
//! same with redis-server replicas in the chain and compares UNBLOCKED
//! with redis-server's.

use crate::common;
use common::raw_cmd as cmd;
use common::*;
use std::time::Duration;

const FMT: &str = "<Date> <Time> <Level> <Component>: <Content>";

fn lines(tag: &str, n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        s.push_str(&format!(
            "2024-01-01 10:00:{:02} INFO comp{}: {tag} user {i} logged in\n",
            i % 60,
            i % 3
        ));
        if i % 4 == 0 {
            s.push_str(&format!(
                "2024-01-01 10:01:00 WARN disk: {tag} disk {i} full\n"
            ));
        }
    }
    s
}

async fn until(c: &mut Raw, args: &[&str], want: &str) {
    for _ in 0..200 {
        if cmd(c, args).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{args:?}: wanted {want:?}, have {:?}", cmd(c, args).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formats_miners_and_ingested_streams_reach_a_redlog_replica() {
    let p = start().await;
    let r = start().await;
    let mut pc = Raw::connect(p.local_addr()).await;
    let mut rc = Raw::connect(r.local_addr()).await;
    assert_eq!(
        cmd(&mut pc, &["LOGPARSE", "FORMAT", "SET", "app", FMT]).await,
        "+OK\r\n"
    );
    cmd(
        &mut pc,
        &["LOGPARSE", "INGEST", "a", "app", &lines("one", 40)],
    )
    .await;
    // LOGPARSE is a write command: read formats on a writable replica.
    cmd(&mut rc, &["CONFIG", "SET", "replica-read-only", "no"]).await;
    // A format of the replica's own is dropped by the full resync.
    cmd(&mut rc, &["LOGPARSE", "FORMAT", "SET", "mine", FMT]).await;

    let port = p.local_addr().port().to_string();
    assert_eq!(
        cmd(&mut rc, &["REPLICAOF", "127.0.0.1", &port]).await,
        "+OK\r\n"
    );
    until(
        &mut rc,
        &["LOGPARSE", "FORMAT", "LIST"],
        &cmd(&mut pc, &["LOGPARSE", "FORMAT", "LIST"]).await,
    )
    .await;

    // Through the stream.
    cmd(
        &mut pc,
        &["LOGPARSE", "FORMAT", "SET", "later", FMT, "MINER", "DRAIN"],
    )
    .await;
    cmd(
        &mut pc,
        &["LOGPARSE", "INGEST", "a", "app", &lines("two", 30)],
    )
    .await;
    cmd(
        &mut pc,
        &["LOGPARSE", "INGEST", "b", "later", &lines("three", 30)],
    )
    .await;
    cmd(
        &mut pc,
        &[
            "LOGPARSE",
            "PARSE",
            "app",
            "2024-01-01 10:00:00 INFO x: shared 1",
        ],
    )
    .await;
    assert_eq!(cmd(&mut pc, &["WAIT", "1", "5000"]).await, ":1\r\n");
    for q in [
        &["LOGPARSE", "FORMAT", "LIST"][..],
        &["LOGPARSE", "FORMAT", "GET", "later"],
        &["XRANGE", "a", "-", "+"],
        &["XRANGE", "b", "-", "+"],
        &["LOGPARSE", "TEMPLATES", "a", "COUNT", "100"],
        &["LOGPARSE", "TEMPLATES", "b", "COUNT", "100"],
    ] {
        let want = cmd(&mut pc, q).await;
        until(&mut rc, q, &want).await;
    }
    // Promoted, the replica mines as the primary.
    assert_eq!(cmd(&mut rc, &["REPLICAOF", "NO", "ONE"]).await, "+OK\r\n");
    for line in [
        "2024-01-02 10:00:00 INFO comp1: four user 7 logged in",
        "2024-01-02 10:00:00 INFO x: shared 2",
    ] {
        let q = ["LOGPARSE", "PARSE", "app", line];
        assert_eq!(cmd(&mut rc, &q).await, cmd(&mut pc, &q).await, "{line}");
    }
}

/// Redis 7.0's `disconnectAllBlockedClients`: the reply text is
/// redis-server's (repl_redlog.py compares it with redis-server 7.0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_clients_get_unblocked_and_are_closed_when_turning_replica() {
    let s = start().await;
    let other = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    cmd(&mut c, &["XADD", "s", "1-1", "f", "v"]).await;
    let mut blpop = blocked(&s, &[b"BLPOP", b"l", b"0"], 1).await;
    let mut xread = blocked(&s, &[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"], 2).await;
    let mut wait = Raw::connect(s.local_addr()).await;
    wait.send(&resp(&[b"WAIT", b"1", b"0"])).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let port = other.local_addr().port().to_string();
    assert_eq!(
        cmd(&mut c, &["REPLICAOF", "127.0.0.1", &port]).await,
        "+OK\r\n"
    );
    let want = "-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n";
    for (name, conn) in [
        ("BLPOP", &mut blpop),
        ("XREAD", &mut xread),
        ("WAIT", &mut wait),
    ] {
        assert_eq!(read_all(conn).await, want, "{name}");
        assert!(conn.closed().await, "{name}: closed after the reply");
    }
    // The client that sent REPLICAOF stays.
    assert_eq!(cmd(&mut c, &["PING"]).await, "+PONG\r\n");
    assert_eq!(s.shared().ks.lock().blocked_clients(), 0);
}

/// A PING carrying a record is a PING from anyone but the master client.
#[tokio::test]
async fn a_record_from_a_normal_client_is_a_ping() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let rec = redlog::db::effect::record::encode_reset();
    let text = String::from_utf8(rec).unwrap();
    assert_eq!(
        cmd(&mut c, &["PING", &text]).await,
        format!("${}\r\n{text}\r\n", text.len())
    );
}
