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
    assert_eq!(
        raw_cmd(&mut a, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).await,
        "+OK\r\n"
    );
    let meet = [
        "CLUSTER",
        "MEET",
        "127.0.0.1",
        &p2.to_string(),
        &cport2.to_string(),
    ];
    assert_eq!(raw_cmd(&mut a, &meet).await, "+OK\r\n");
    wait_for(
        &mut b,
        &["CLUSTER", "NODES"],
        &format!("{id1} 127.0.0.1:{p1}"),
    )
    .await;
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
