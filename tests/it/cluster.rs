//! Cluster mode end to end with in-process nodes: the errors and
//! redirections of Redis 7.0 (texts from redis-server 7.0.15 in cluster
//! mode), slot assignment, the per-slot key index, MEET and gossip between
//! two nodes, a slot moved with SETSLOT MIGRATING / IMPORTING / NODE and
//! MIGRATE, and the nodes.conf written.

use crate::common;

use common::*;
use redlog::server::ServerHandle;
use std::time::Duration;

/// A cluster-mode node in `dir` and its bus port (shared with
/// `cluster_replica`).
pub(crate) async fn node(dir: &std::path::Path) -> (ServerHandle, u16) {
    let cport = free_port();
    let s = start_in(
        dir,
        &[
            ("cluster-enabled", "yes"),
            ("cluster-port", &cport.to_string()),
            ("cluster-node-timeout", "5000"),
        ],
    )
    .await;
    (s, cport)
}

/// Polls `args` until the reply contains `want` (at most a minute: the
/// cluster needs a couple of seconds to turn ok, gossip a few pings).
pub(crate) async fn wait_for(c: &mut Raw, args: &[&str], want: &str) {
    for _ in 0..600 {
        if raw_cmd(c, args).await.contains(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{args:?} never replied with {want}");
}

pub(crate) fn bulk_text(reply: &str) -> String {
    reply.lines().nth(1).unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirections_slots_and_a_moved_slot() {
    let (dir1, dir2) = (temp_dir(), temp_dir());
    let (n1, cport1) = node(&dir1).await;
    let (n2, cport2) = node(&dir2).await;
    let (p1, p2) = (n1.local_addr().port(), n2.local_addr().port());
    let mut a = Raw::connect(n1.local_addr()).await;
    let mut b = Raw::connect(n2.local_addr()).await;

    // Before any slot is assigned.
    assert_eq!(
        raw_cmd(&mut a, &["GET", "foo"]).await,
        "-CLUSTERDOWN Hash slot not served\r\n"
    );
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "KEYSLOT", "foo"]).await,
        ":12182\r\n"
    );
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "KEYSLOT", "{user1000}.following"]).await,
        ":3443\r\n"
    );
    assert_eq!(
        raw_cmd(&mut a, &["SELECT", "1"]).await,
        "-ERR SELECT is not allowed in cluster mode\r\n"
    );
    assert_eq!(raw_cmd(&mut a, &["SELECT", "0"]).await, "+OK\r\n");
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "COUNTKEYSINSLOT", "16384"]).await,
        "-ERR Invalid slot\r\n"
    );
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "ADDSLOTS", "16384"]).await,
        "-ERR Invalid or out of range slot\r\n"
    );
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "ADDSLOTSRANGE", "5", "3"]).await,
        "-ERR start slot number 5 is greater than end slot number 3\r\n"
    );
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "ADDSLOTS", "5"]).await,
        "-ERR Slot 5 is already busy\r\n"
    );
    wait_for(&mut a, &["CLUSTER", "INFO"], "cluster_state:ok").await;

    // Keys, slots and multi-key commands.
    assert_eq!(
        raw_cmd(&mut a, &["MSET", "{a}1", "1", "{a}2", "2"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        raw_cmd(&mut a, &["MSET", "a", "1", "b", "2"]).await,
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    let slot_a = raw_cmd(&mut a, &["CLUSTER", "KEYSLOT", "a"])
        .await
        .trim()
        .trim_start_matches(':')
        .to_string();
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "COUNTKEYSINSLOT", &slot_a]).await,
        ":2\r\n"
    );
    let keys = raw_cmd(&mut a, &["CLUSTER", "GETKEYSINSLOT", &slot_a, "10"]).await;
    assert!(
        keys.starts_with("*2\r\n") && keys.contains("{a}1") && keys.contains("{a}2"),
        "{keys}"
    );
    assert_eq!(raw_cmd(&mut a, &["DEL", "{a}2"]).await, ":1\r\n");
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "COUNTKEYSINSLOT", &slot_a]).await,
        ":1\r\n"
    );
    // EXEC checks the whole transaction: CROSSSLOT, and the MULTI is gone.
    assert_eq!(raw_cmd(&mut a, &["MULTI"]).await, "+OK\r\n");
    assert_eq!(raw_cmd(&mut a, &["SET", "a", "1"]).await, "+QUEUED\r\n");
    assert_eq!(raw_cmd(&mut a, &["SET", "b", "1"]).await, "+QUEUED\r\n");
    assert_eq!(
        raw_cmd(&mut a, &["EXEC"]).await,
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    assert_eq!(
        raw_cmd(&mut a, &["EXEC"]).await,
        "-ERR EXEC without MULTI\r\n"
    );

    // Two nodes: MEET, then gossip makes each know the other.
    let id1 = bulk_text(&raw_cmd(&mut a, &["CLUSTER", "MYID"]).await);
    let id2 = bulk_text(&raw_cmd(&mut b, &["CLUSTER", "MYID"]).await);
    assert_eq!(
        raw_cmd(
            &mut a,
            &[
                "CLUSTER",
                "MEET",
                "127.0.0.1",
                &p2.to_string(),
                &cport2.to_string()
            ]
        )
        .await,
        "+OK\r\n"
    );
    wait_for(
        &mut b,
        &["CLUSTER", "NODES"],
        &format!("{id1} 127.0.0.1:{p1}@{cport1} master - "),
    )
    .await;
    wait_for(
        &mut a,
        &["CLUSTER", "NODES"],
        &format!("{id2} 127.0.0.1:{p2}@{cport2} master - "),
    )
    .await;
    wait_for(&mut b, &["CLUSTER", "INFO"], "cluster_state:ok").await;
    // Node 2 learnt node 1's slots from its pings.
    assert_eq!(
        raw_cmd(&mut b, &["GET", "foo"]).await,
        format!("-MOVED 12182 127.0.0.1:{p1}\r\n")
    );

    // Moving slot 12182 ("foo") from node 1 to node 2.
    assert_eq!(raw_cmd(&mut a, &["SET", "{foo}x", "1"]).await, "+OK\r\n");
    assert_eq!(
        raw_cmd(&mut b, &["CLUSTER", "SETSLOT", "12182", "IMPORTING", &id1]).await,
        "+OK\r\n"
    );
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "SETSLOT", "12182", "MIGRATING", &id2]).await,
        "+OK\r\n"
    );
    // The source serves the keys it still has, sends the others on.
    assert_eq!(raw_cmd(&mut a, &["GET", "{foo}x"]).await, "$1\r\n1\r\n");
    assert_eq!(
        raw_cmd(&mut a, &["GET", "foo"]).await,
        format!("-ASK 12182 127.0.0.1:{p2}\r\n")
    );
    assert_eq!(
        raw_cmd(&mut a, &["MGET", "foo", "{foo}x"]).await,
        "-TRYAGAIN Multiple keys request during rehashing of slot\r\n"
    );
    // The target serves the slot only after ASKING, for one command.
    assert_eq!(
        raw_cmd(&mut b, &["GET", "foo"]).await,
        format!("-MOVED 12182 127.0.0.1:{p1}\r\n")
    );
    assert_eq!(raw_cmd(&mut b, &["ASKING"]).await, "+OK\r\n");
    assert_eq!(raw_cmd(&mut b, &["GET", "foo"]).await, "$-1\r\n");
    assert_eq!(
        raw_cmd(&mut b, &["GET", "foo"]).await,
        format!("-MOVED 12182 127.0.0.1:{p1}\r\n")
    );
    // The slot cannot leave while it holds keys; MIGRATE moves them.
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "SETSLOT", "12182", "NODE", &id2]).await,
        "-ERR Can't assign hashslot 12182 to a different node while I still hold keys for this hash slot.\r\n"
    );
    assert_eq!(
        raw_cmd(
            &mut a,
            &[
                "MIGRATE",
                "127.0.0.1",
                &p2.to_string(),
                "",
                "0",
                "5000",
                "KEYS",
                "{foo}x"
            ]
        )
        .await,
        "+OK\r\n"
    );
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "COUNTKEYSINSLOT", "12182"]).await,
        ":0\r\n"
    );
    assert_eq!(
        raw_cmd(&mut b, &["CLUSTER", "COUNTKEYSINSLOT", "12182"]).await,
        ":1\r\n"
    );
    assert_eq!(
        raw_cmd(&mut b, &["CLUSTER", "SETSLOT", "12182", "NODE", &id2]).await,
        "+OK\r\n"
    );
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "SETSLOT", "12182", "NODE", &id2]).await,
        "+OK\r\n"
    );
    assert_eq!(
        raw_cmd(&mut a, &["GET", "{foo}x"]).await,
        format!("-MOVED 12182 127.0.0.1:{p2}\r\n")
    );
    assert_eq!(raw_cmd(&mut b, &["GET", "{foo}x"]).await, "$1\r\n1\r\n");
    let mine = raw_cmd(&mut b, &["CLUSTER", "NODES"]).await;
    assert!(
        mine.lines().any(|l| l.starts_with(&id2)
            && l.contains("myself,master")
            && l.ends_with(" connected 12182")),
        "{mine}"
    );

    // nodes.conf: a restarted node 1 is the same node with the same slots.
    drop(a);
    n1.shutdown().await;
    let conf = std::fs::read_to_string(dir1.join("nodes.conf")).unwrap();
    let me = conf.lines().find(|l| l.starts_with(&id1)).unwrap_or("");
    assert!(
        me.starts_with(&format!("{id1} 127.0.0.1:{p1}@{cport1} myself,master - ")),
        "{conf}"
    );
    assert!(me.ends_with(" connected 0-12181 12183-16383"), "{conf}");
    assert!(
        conf.lines()
            .any(|l| l.starts_with(&id2) && l.ends_with(" 12182")),
        "{conf}"
    );
    assert!(
        conf.lines()
            .last()
            .unwrap_or("")
            .starts_with("vars currentEpoch "),
        "{conf}"
    );
    n2.shutdown().await;
}
