//! Cluster replicas with in-process nodes: CLUSTER REPLICATE's errors
//! (texts of redis-server 7.0.15's cluster.c), a node turned replica of
//! another (its role gossiped, the replication link started, CLUSTER
//! REPLICAS / NODES), MOVED from a replica, READONLY / READWRITE, and
//! CLUSTER RESET of a replica.

use crate::common;

use super::cluster::{bulk_text, node, wait_for};
use common::*;

#[tokio::test]
async fn readonly_needs_cluster_mode() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    for cmd in ["READONLY", "READWRITE"] {
        assert_eq!(
            raw_cmd(&mut c, &[cmd]).await,
            "-ERR This instance has cluster support disabled\r\n"
        );
    }
    assert_eq!(
        raw_cmd(&mut c, &["CLUSTER", "REPLICATE", "x"]).await,
        "-ERR This instance has cluster support disabled\r\n"
    );
}

/// Node `a` (id `id1`, port `p1`) takes every slot and meets node `b`
/// (ports `b_ports`: client, bus); returns once `b` knows `a`.
async fn give_all_slots_and_meet(
    a: &mut Raw,
    b: &mut Raw,
    id1: &str,
    p1: u16,
    b_ports: (u16, u16),
) {
    assert_eq!(
        raw_cmd(a, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).await,
        "+OK\r\n"
    );
    let meet = [
        "CLUSTER",
        "MEET",
        "127.0.0.1",
        &b_ports.0.to_string(),
        &b_ports.1.to_string(),
    ];
    assert_eq!(raw_cmd(a, &meet).await, "+OK\r\n");
    wait_for(b, &["CLUSTER", "NODES"], &format!("{id1} 127.0.0.1:{p1}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_in_a_cluster() {
    let (dir1, dir2) = (temp_dir(), temp_dir());
    let (n1, _cport1) = node(&dir1).await;
    let (n2, cport2) = node(&dir2).await;
    let (p1, p2) = (n1.local_addr().port(), n2.local_addr().port());
    let mut a = Raw::connect(n1.local_addr()).await;
    let mut b = Raw::connect(n2.local_addr()).await;
    let id1 = bulk_text(&raw_cmd(&mut a, &["CLUSTER", "MYID"]).await);
    let id2 = bulk_text(&raw_cmd(&mut b, &["CLUSTER", "MYID"]).await);

    assert_eq!(
        raw_cmd(&mut b, &["CLUSTER", "REPLICATE", "nosuchnode"]).await,
        "-ERR Unknown node nosuchnode\r\n"
    );
    assert_eq!(
        raw_cmd(&mut b, &["CLUSTER", "REPLICATE", &id2]).await,
        "-ERR Can't replicate myself\r\n"
    );
    give_all_slots_and_meet(&mut a, &mut b, &id1, p1, (p2, cport2)).await;
    wait_for(
        &mut a,
        &["CLUSTER", "NODES"],
        &format!("{id2} 127.0.0.1:{p2}"),
    )
    .await;
    // A primary with slots (or keys) cannot become a replica.
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "REPLICATE", &id2]).await,
        "-ERR To set a master the node must be empty and without assigned slots.\r\n"
    );
    assert_eq!(
        raw_cmd(&mut b, &["SET", "foo", "1"]).await.chars().next(),
        Some('-')
    );

    assert_eq!(
        raw_cmd(&mut b, &["CLUSTER", "REPLICATE", &id1]).await,
        "+OK\r\n"
    );
    wait_for(
        &mut b,
        &["CLUSTER", "NODES"],
        &format!("{id2} 127.0.0.1:{p2}@{cport2} myself,slave {id1} "),
    )
    .await;
    // Gossip tells node 1.
    wait_for(
        &mut a,
        &["CLUSTER", "NODES"],
        &format!("{id2} 127.0.0.1:{p2}@{cport2} slave {id1} "),
    )
    .await;
    let reps = raw_cmd(&mut a, &["CLUSTER", "REPLICAS", &id1]).await;
    assert!(reps.starts_with("*1\r\n"), "{reps}");
    assert!(reps.contains(&format!("{id2} 127.0.0.1:{p2}")), "{reps}");
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "REPLICAS", &id2]).await,
        "-ERR The specified node is not a master\r\n"
    );
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "REPLICATE", &id2]).await,
        "-ERR I can only replicate a master, not a replica.\r\n"
    );
    assert_eq!(
        raw_cmd(&mut b, &["CLUSTER", "SETSLOT", "1", "STABLE"]).await,
        "-ERR Please use SETSLOT only with masters.\r\n"
    );

    // The replication link follows the role.
    wait_for(&mut b, &["ROLE"], "connected").await;
    assert_eq!(raw_cmd(&mut a, &["SET", "foo", "bar"]).await, "+OK\r\n");
    wait_for(&mut b, &["DBSIZE"], ":1").await;
    // Without READONLY a replica sends clients to its primary.
    assert_eq!(
        raw_cmd(&mut b, &["GET", "foo"]).await,
        format!("-MOVED 12182 127.0.0.1:{p1}\r\n")
    );
    assert_eq!(raw_cmd(&mut b, &["READONLY"]).await, "+OK\r\n");
    assert_eq!(raw_cmd(&mut b, &["GET", "foo"]).await, "$3\r\nbar\r\n");
    let list = raw_cmd(&mut b, &["CLIENT", "INFO"]).await;
    assert!(list.contains(" flags=r "), "{list}");
    // Writes still go to the primary.
    assert_eq!(
        raw_cmd(&mut b, &["SET", "foo", "x"]).await,
        format!("-MOVED 12182 127.0.0.1:{p1}\r\n")
    );
    assert_eq!(raw_cmd(&mut b, &["READWRITE"]).await, "+OK\r\n");
    assert_eq!(
        raw_cmd(&mut b, &["GET", "foo"]).await,
        format!("-MOVED 12182 127.0.0.1:{p1}\r\n")
    );

    // CLUSTER RESET: a replica with keys may reset; it becomes an empty
    // primary.
    assert_eq!(raw_cmd(&mut b, &["CLUSTER", "RESET"]).await, "+OK\r\n");
    assert_eq!(raw_cmd(&mut b, &["DBSIZE"]).await, ":0\r\n");
    let nodes = raw_cmd(&mut b, &["CLUSTER", "NODES"]).await;
    assert!(
        nodes.contains(&format!("{id2} 127.0.0.1:{p2}@{cport2} myself,master - ")),
        "{nodes}"
    );
    wait_for(&mut b, &["ROLE"], "master").await;
    n1.shutdown().await;
    n2.shutdown().await;
}

#[tokio::test]
async fn cluster_failover_replies_without_a_cluster() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    assert_eq!(
        raw_cmd(&mut c, &["CLUSTER", "FAILOVER"]).await,
        "-ERR This instance has cluster support disabled\r\n"
    );
}

/// CLUSTER FAILOVER's errors (redis-server 7.0.15's texts), then a
/// default-mode manual failover between two nodes: the replica waits for
/// its paused primary's offset, wins the election with FORCEACK (the
/// primary's own vote: it is the only one serving slots), takes the slots;
/// the old primary follows it, and a write sent to the old primary while
/// it was paused is redirected to the winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_failover_swaps_the_roles() {
    let (dir1, dir2) = (temp_dir(), temp_dir());
    let (n1, cport1) = node(&dir1).await;
    let (n2, cport2) = node(&dir2).await;
    let (p1, p2) = (n1.local_addr().port(), n2.local_addr().port());
    let mut a = Raw::connect(n1.local_addr()).await;
    let mut b = Raw::connect(n2.local_addr()).await;
    let id1 = bulk_text(&raw_cmd(&mut a, &["CLUSTER", "MYID"]).await);
    let id2 = bulk_text(&raw_cmd(&mut b, &["CLUSTER", "MYID"]).await);
    for (args, want) in [
        (
            &["CLUSTER", "FAILOVER"][..],
            "-ERR You should send CLUSTER FAILOVER to a replica\r\n",
        ),
        (
            &["CLUSTER", "FAILOVER", "TAKEOVER"][..],
            "-ERR You should send CLUSTER FAILOVER to a replica\r\n",
        ),
        (&["CLUSTER", "FAILOVER", "x"][..], "-ERR syntax error\r\n"),
        (
            &["CLUSTER", "FAILOVER", "FORCE", "x"][..],
            "-ERR unknown subcommand or wrong number of arguments for 'FAILOVER'. Try CLUSTER HELP.\r\n",
        ),
    ] {
        assert_eq!(raw_cmd(&mut a, args).await, want, "{args:?}");
    }
    give_all_slots_and_meet(&mut a, &mut b, &id1, p1, (p2, cport2)).await;
    assert_eq!(
        raw_cmd(&mut b, &["CLUSTER", "REPLICATE", &id1]).await,
        "+OK\r\n"
    );
    wait_for(
        &mut a,
        &["CLUSTER", "NODES"],
        &format!("{id2} 127.0.0.1:{p2}@{cport2} slave {id1} "),
    )
    .await;
    wait_for(&mut b, &["ROLE"], "connected").await;
    wait_for(&mut a, &["CLUSTER", "INFO"], "cluster_state:ok").await;
    for i in 0..50 {
        let k = format!("k{i}");
        assert_eq!(raw_cmd(&mut a, &["SET", &k, "v"]).await, "+OK\r\n");
    }

    assert_eq!(raw_cmd(&mut b, &["CLUSTER", "FAILOVER"]).await, "+OK\r\n");
    // The primary pauses writes: this SET waits, then is redirected.
    let mut w = Raw::connect(n1.local_addr()).await;
    wait_for(
        &mut b,
        &["CLUSTER", "NODES"],
        &format!("{id2} 127.0.0.1:{p2}@{cport2} myself,master - "),
    )
    .await;
    // Sent while the old primary is paused or already a replica: MOVED
    // either way, never written there.
    assert_eq!(
        raw_cmd(&mut w, &["SET", "late", "1"]).await,
        format!("-MOVED 549 127.0.0.1:{p2}\r\n")
    );
    wait_for(
        &mut a,
        &["CLUSTER", "NODES"],
        &format!("{id1} 127.0.0.1:{p1}@{cport1} myself,slave {id2} "),
    )
    .await;
    wait_for(&mut a, &["ROLE"], "slave").await;
    wait_for(&mut b, &["ROLE"], "master").await;
    // Every key written before is on the winner.
    assert_eq!(raw_cmd(&mut b, &["DBSIZE"]).await, ":50\r\n");
    assert_eq!(raw_cmd(&mut b, &["GET", "k7"]).await, "$1\r\nv\r\n");
    assert_eq!(
        raw_cmd(&mut a, &["SET", "x", "1"]).await,
        format!("-MOVED 16287 127.0.0.1:{p2}\r\n")
    );
    let info = raw_cmd(&mut b, &["CLUSTER", "INFO"]).await;
    assert!(
        info.contains("cluster_stats_messages_mfstart_sent:1\r\n"),
        "{info}"
    );
    let info = raw_cmd(&mut a, &["CLUSTER", "INFO"]).await;
    assert!(
        info.contains("cluster_stats_messages_mfstart_received:1\r\n"),
        "{info}"
    );
    n1.shutdown().await;
    n2.shutdown().await;
}
