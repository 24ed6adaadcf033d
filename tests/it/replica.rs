//! Replication, replica side, against a scripted primary (no redis-server
//! needed): the handshake redlog sends, a disk-less full sync, the stream
//! applied with Redis's offsets (REPLCONF GETACK answered with the bytes
//! processed before it, MULTI blocks counted with their EXEC), a partial
//! resync after the link drops, a corrupt RDB refused with the old data
//! kept. redis-tests/replica.py runs the same against redis-server 7.0.

use crate::common;
use common::raw_cmd as cmd;
use common::*;
use redlog::rdb::{file, types, Writer};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const ID: &str = "0123456789abcdef0123456789abcdef01234567";

/// The primary's end of one link.
struct Link {
    r: BufReader<TcpStream>,
}

impl Link {
    async fn accept(l: &TcpListener) -> Link {
        let (s, _) = tokio::time::timeout(Duration::from_secs(10), l.accept())
            .await
            .expect("the replica connects")
            .unwrap();
        Link {
            r: BufReader::new(s),
        }
    }

    async fn line(&mut self) -> String {
        let mut out = Vec::new();
        loop {
            let mut b = [0u8; 1];
            let n = tokio::time::timeout(Duration::from_secs(10), self.r.read(&mut b))
                .await
                .expect("the replica writes")
                .unwrap();
            assert_eq!(n, 1, "the replica closed the link");
            out.push(b[0]);
            if out.ends_with(b"\r\n") {
                out.truncate(out.len() - 2);
                return String::from_utf8(out).unwrap();
            }
        }
    }

    /// One command the replica sent.
    async fn request(&mut self) -> Vec<String> {
        let head = self.line().await;
        let n: usize = head.strip_prefix('*').expect("multibulk").parse().unwrap();
        let mut args = Vec::new();
        for _ in 0..n {
            let _len = self.line().await;
            args.push(self.line().await);
        }
        args
    }

    async fn send(&mut self, b: &[u8]) {
        self.r.get_mut().write_all(b).await.unwrap();
    }

    /// PING .. PSYNC; returns PSYNC's arguments.
    async fn handshake(&mut self, replica_port: u16) -> Vec<String> {
        assert_eq!(self.request().await, ["PING"]);
        self.send(b"+PONG\r\n").await;
        assert_eq!(
            self.request().await,
            ["REPLCONF", "listening-port", &replica_port.to_string()]
        );
        self.send(b"+OK\r\n").await;
        assert_eq!(
            self.request().await,
            ["REPLCONF", "capa", "eof", "capa", "psync2"]
        );
        self.send(b"+OK\r\n").await;
        let psync = self.request().await;
        assert_eq!(psync[0], "PSYNC");
        psync
    }

    /// Reads REPLCONF ACKs until one carries `offset`.
    async fn wait_ack(&mut self, offset: u64) {
        loop {
            let r = self.request().await;
            assert_eq!(r[..2], ["REPLCONF", "ACK"], "{r:?}");
            let got: u64 = r[2].parse().unwrap();
            assert!(got <= offset, "ACK {got} past {offset}");
            if got == offset {
                return;
            }
        }
    }
}

fn rdb_with(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut f = file::FileWriter::new(1, 0);
    f.select_db(0, 1, 0);
    let mut v = Writer::new();
    v.u8(types::STRING);
    v.string(value);
    file::put_value(&mut f.w, key, &v.buf);
    f.finish()
}

async fn wait_for(c: &mut Raw, args: &[&str], expected: &str) {
    for _ in 0..200 {
        if cmd(c, args).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{args:?} never gave {expected:?}: {}", cmd(c, args).await);
}

/// A server made a replica of a fake primary (`REPLICAOF`, the
/// handshake, a full resync to an RDB of `key` = "v", the first ACK).
struct Synced {
    s: redlog::server::ServerHandle,
    c: Raw,
    /// The fake primary's listener (the replica connects to it again).
    fake: TcpListener,
    link: Link,
    port: u16,
}

async fn synced_replica(settings: &[(&str, &str)], key: &[u8]) -> Synced {
    let s = start_with(settings).await;
    let port = s.local_addr().port();
    let mut c = Raw::connect(s.local_addr()).await;
    let fake = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fport = fake.local_addr().unwrap().port().to_string();
    assert_eq!(
        cmd(&mut c, &["REPLICAOF", "127.0.0.1", &fport]).await,
        "+OK\r\n"
    );
    let mut link = Link::accept(&fake).await;
    link.handshake(port).await;
    link.send(format!("+FULLRESYNC {ID} 0\r\n").as_bytes())
        .await;
    let good = rdb_with(key, b"v");
    let mut payload = format!("${}\r\n", good.len()).into_bytes();
    payload.extend_from_slice(&good);
    link.send(&payload).await;
    link.wait_ack(0).await;
    Synced {
        s,
        c,
        fake,
        link,
        port,
    }
}

fn info_field(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn full_sync_stream_offsets_and_partial_resync() {
    let s = start().await;
    let port = s.local_addr().port();
    let mut c = Raw::connect(s.local_addr()).await;
    let own_id = info_field(
        &cmd(&mut c, &["INFO", "replication"]).await,
        "master_replid",
    );
    let fake = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fport = fake.local_addr().unwrap().port().to_string();
    assert_eq!(
        cmd(&mut c, &["REPLICAOF", "127.0.0.1", &fport]).await,
        "+OK\r\n"
    );
    let mut link = Link::accept(&fake).await;
    // A former primary asks to continue its own history.
    assert_eq!(link.handshake(port).await, ["PSYNC", &own_id, "1"]);
    link.send(format!("+FULLRESYNC {ID} 1000\r\n").as_bytes())
        .await;
    let mark = [b'm'; 40];
    let mut payload = b"\n$EOF:".to_vec();
    payload.extend_from_slice(&mark);
    payload.extend_from_slice(b"\r\n");
    payload.extend_from_slice(&rdb_with(b"from-rdb", b"v"));
    payload.extend_from_slice(&mark);
    link.send(&payload).await;
    link.wait_ack(1000).await;
    assert_eq!(cmd(&mut c, &["GET", "from-rdb"]).await, "$1\r\nv\r\n");

    let mut stream = resp(&[b"SELECT", b"0"]);
    stream.extend(resp(&[b"SET", b"a", b"1"]));
    stream.extend(resp(&[b"MULTI"]));
    stream.extend(resp(&[b"INCR", b"a"]));
    stream.extend(resp(&[b"EXEC"]));
    let before_getack = 1000 + stream.len() as u64;
    stream.extend(resp(&[b"REPLCONF", b"GETACK", b"*"]));
    stream.extend(resp(&[b"PING"]));
    let end = 1000 + stream.len() as u64;
    link.send(&stream).await;
    link.wait_ack(before_getack).await;
    wait_for(&mut c, &["GET", "a"], "$1\r\n2\r\n").await;
    let info = cmd(&mut c, &["INFO", "replication"]).await;
    assert_eq!(info_field(&info, "role"), "slave");
    assert_eq!(info_field(&info, "master_link_status"), "up");
    assert_eq!(info_field(&info, "master_replid"), ID);
    assert_eq!(info_field(&info, "master_repl_offset"), end.to_string());
    assert_eq!(info_field(&info, "slave_repl_offset"), end.to_string());
    assert_eq!(info_field(&info, "repl_backlog_first_byte_offset"), "1001");
    assert_eq!(
        info_field(&info, "repl_backlog_histlen"),
        (end - 1000).to_string()
    );
    assert_eq!(
        cmd(&mut c, &["SET", "x", "y"]).await,
        "-READONLY You can't write against a read only replica.\r\n"
    );
    let role = cmd(&mut c, &["ROLE"]).await;
    assert_eq!(
        role,
        format!(
            "*5\r\n$5\r\nslave\r\n$9\r\n127.0.0.1\r\n:{fport}\r\n$9\r\nconnected\r\n:{end}\r\n"
        )
    );
    assert!(cmd(&mut c, &["CLIENT", "LIST", "TYPE", "master"])
        .await
        .contains(" flags=M "));

    // Half a transaction, then the link drops: it is not counted.
    let mut half = resp(&[b"MULTI"]);
    half.extend(resp(&[b"SET", b"never", b"1"]));
    link.send(&half).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(link);
    let mut link = Link::accept(&fake).await;
    let want = (end + 1).to_string();
    assert_eq!(link.handshake(port).await, ["PSYNC", ID, &want]);
    link.send(b"+CONTINUE\r\n").await;
    link.wait_ack(end).await;
    let more = resp(&[b"SET", b"b", b"2"]);
    link.send(&more).await;
    wait_for(&mut c, &["GET", "b"], "$1\r\n2\r\n").await;
    assert_eq!(cmd(&mut c, &["GET", "never"]).await, "$-1\r\n");
    let info = cmd(&mut c, &["INFO", "replication"]).await;
    assert_eq!(
        info_field(&info, "master_repl_offset"),
        (end + more.len() as u64).to_string()
    );

    // Promotion keeps the history as the second id.
    assert_eq!(cmd(&mut c, &["REPLICAOF", "NO", "ONE"]).await, "+OK\r\n");
    let info = cmd(&mut c, &["INFO", "replication"]).await;
    assert_eq!(info_field(&info, "role"), "master");
    assert_eq!(info_field(&info, "master_replid2"), ID);
    assert_eq!(
        info_field(&info, "second_repl_offset"),
        (end + more.len() as u64 + 1).to_string()
    );
    assert_eq!(cmd(&mut c, &["SET", "x", "y"]).await, "+OK\r\n");
}

#[tokio::test]
async fn a_corrupt_rdb_is_refused_and_the_old_data_kept() {
    let s = start().await;
    let port = s.local_addr().port();
    let mut c = Raw::connect(s.local_addr()).await;
    assert_eq!(cmd(&mut c, &["SET", "keep", "old"]).await, "+OK\r\n");
    let fake = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fport = fake.local_addr().unwrap().port().to_string();
    assert_eq!(
        cmd(&mut c, &["REPLICAOF", "127.0.0.1", &fport]).await,
        "+OK\r\n"
    );
    let mut link = Link::accept(&fake).await;
    link.handshake(port).await;
    link.send(format!("+FULLRESYNC {ID} 0\r\n").as_bytes())
        .await;
    let mut rdb = rdb_with(b"new", b"v");
    let n = rdb.len();
    rdb[n - 12] ^= 1;
    let mut payload = format!("${}\r\n", rdb.len()).into_bytes();
    payload.extend_from_slice(&rdb);
    link.send(&payload).await;
    // Refused: the link is dropped and the sync retried.
    let mut again = Link::accept(&fake).await;
    again.handshake(port).await;
    assert_eq!(cmd(&mut c, &["GET", "keep"]).await, "$3\r\nold\r\n");
    assert_eq!(cmd(&mut c, &["EXISTS", "new"]).await, ":0\r\n");
    let info = cmd(&mut c, &["INFO", "replication"]).await;
    assert_eq!(info_field(&info, "master_link_status"), "down");
    // A truncated one, then the connection closes: refused too.
    again
        .send(format!("+FULLRESYNC {ID} 0\r\n").as_bytes())
        .await;
    let good = rdb_with(b"new", b"v");
    let mut payload = format!("${}\r\n", good.len()).into_bytes();
    payload.extend_from_slice(&good[..good.len() / 2]);
    again.send(&payload).await;
    drop(again);
    let mut third = Link::accept(&fake).await;
    third.handshake(port).await;
    assert_eq!(cmd(&mut c, &["GET", "keep"]).await, "$3\r\nold\r\n");
    // The whole file: the dataset is replaced.
    third
        .send(format!("+FULLRESYNC {ID} 0\r\n").as_bytes())
        .await;
    let mut payload = format!("${}\r\n", good.len()).into_bytes();
    payload.extend_from_slice(&good);
    third.send(&payload).await;
    third.wait_ack(0).await;
    assert_eq!(cmd(&mut c, &["GET", "new"]).await, "$1\r\nv\r\n");
    assert_eq!(cmd(&mut c, &["EXISTS", "keep"]).await, ":0\r\n");
}

#[tokio::test]
async fn a_silent_primary_is_dropped_after_repl_timeout() {
    let Synced {
        s: _s,
        mut c,
        fake,
        link,
        port,
    } = synced_replica(&[("repl-timeout", "1")], b"k").await;
    // Nothing more is sent (not even PINGs): the replica gives up on the
    // link and connects again, asking to continue.
    let mut again = Link::accept(&fake).await;
    assert_eq!(again.handshake(port).await, ["PSYNC", ID, "1"]);
    let info = cmd(&mut c, &["INFO", "replication"]).await;
    assert_eq!(info_field(&info, "master_link_status"), "down");
    assert_ne!(info_field(&info, "master_link_down_since_seconds"), "-1");
    drop(link);
}

/// Redis 7.0's replica-side expiry: a replica never deletes a key for its
/// TTL; clients no longer see a logically expired key (reads, EXISTS,
/// TTL, KEYS, SCAN) while DBSIZE still counts it, the master client still
/// acts on it, and only the primary's DEL removes it. After REPLICAOF NO
/// ONE the server expires keys itself again.
#[tokio::test]
async fn a_replica_keeps_expired_keys_until_the_primary_deletes_them() {
    let Synced {
        s: _s,
        mut c,
        mut link,
        ..
    } = synced_replica(&[], b"keep").await;

    // A key whose expiry has passed, then changed by the primary: the
    // master client sees it (APPEND appends to "v").
    let mut stream = resp(&[b"SELECT", b"0"]);
    stream.extend(resp(&[b"SET", b"k", b"v", b"PXAT", b"1"]));
    stream.extend(resp(&[b"APPEND", b"k", b"x"]));
    stream.extend(resp(&[b"PEXPIREAT", b"t", b"1"]));
    stream.extend(resp(&[b"SET", b"mark", b"1"]));
    link.send(&stream).await;
    wait_for(&mut c, &["DBSIZE"], ":3\r\n").await;
    assert_eq!(cmd(&mut c, &["GET", "k"]).await, "$-1\r\n");
    assert_eq!(cmd(&mut c, &["EXISTS", "k"]).await, ":0\r\n");
    assert_eq!(cmd(&mut c, &["TTL", "k"]).await, ":-2\r\n");
    assert_eq!(cmd(&mut c, &["TYPE", "k"]).await, "+none\r\n");
    assert_eq!(
        cmd(&mut c, &["KEYS", "k*"]).await,
        "*1\r\n$4\r\nkeep\r\n",
        "KEYS skips it"
    );
    let scan = cmd(&mut c, &["SCAN", "0", "MATCH", "k*", "COUNT", "100"]).await;
    assert!(scan.ends_with("*1\r\n$4\r\nkeep\r\n"), "{scan}");
    // Still stored: counted by DBSIZE and INFO keyspace, not expired.
    assert_eq!(cmd(&mut c, &["DBSIZE"]).await, ":3\r\n");
    let info = cmd(&mut c, &["INFO"]).await;
    assert_eq!(info_field(&info, "db0"), "keys=3,expires=1,avg_ttl=0");
    assert_eq!(info_field(&info, "expired_keys"), "0");
    // The cron's active cycle leaves it too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cmd(&mut c, &["DBSIZE"]).await, ":3\r\n");

    // The primary takes the TTL away: the value APPEND made is there.
    let mut more = resp(&[b"PERSIST", b"k"]);
    more.extend(resp(&[b"SET", b"mark", b"2"]));
    link.send(&more).await;
    wait_for(&mut c, &["GET", "mark"], "$1\r\n2\r\n").await;
    assert_eq!(cmd(&mut c, &["GET", "k"]).await, "$2\r\nvx\r\n");
    // Expired again, then the primary's DEL removes it.
    link.send(&resp(&[b"PEXPIREAT", b"k", b"1"])).await;
    wait_for(&mut c, &["GET", "k"], "$-1\r\n").await;
    assert_eq!(cmd(&mut c, &["DBSIZE"]).await, ":3\r\n");
    link.send(&resp(&[b"DEL", b"k"])).await;
    wait_for(&mut c, &["DBSIZE"], ":2\r\n").await;
    // Every key with a TTL logically expired: RANDOMKEY gives up after
    // its tries and names one anyway (Redis's `dbRandomKey`).
    let mut vol = resp(&[b"FLUSHALL"]);
    vol.extend(resp(&[b"SET", b"gone", b"v", b"PXAT", b"1"]));
    link.send(&vol).await;
    wait_for(&mut c, &["DBSIZE"], ":1\r\n").await;
    assert_eq!(cmd(&mut c, &["RANDOMKEY"]).await, "$4\r\ngone\r\n");
    assert_eq!(
        info_field(&cmd(&mut c, &["INFO"]).await, "expired_keys"),
        "0"
    );

    // A writable replica expires the keys its own clients gave a TTL
    // (Redis's `slaveKeysWithExpire`), not the primary's.
    let set = |k, v| ["CONFIG", "SET", k, v];
    assert_eq!(
        cmd(&mut c, &set("replica-read-only", "no")).await,
        "+OK\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["SET", "mine", "v", "PX", "400"]).await,
        "+OK\r\n"
    );
    let info = cmd(&mut c, &["INFO", "stats"]).await;
    assert_eq!(info_field(&info, "slave_expires_tracked_keys"), "1");
    wait_for(&mut c, &["DBSIZE"], ":1\r\n").await;
    let info = cmd(&mut c, &["INFO", "stats"]).await;
    assert_eq!(info_field(&info, "expired_keys"), "1");
    assert_eq!(info_field(&info, "slave_expires_tracked_keys"), "0");
    assert_eq!(
        cmd(&mut c, &set("replica-read-only", "yes")).await,
        "+OK\r\n"
    );

    // Promoted: the expired key goes at the first lookup.
    assert_eq!(cmd(&mut c, &["REPLICAOF", "NO", "ONE"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut c, &["GET", "gone"]).await, "$-1\r\n");
    assert_eq!(cmd(&mut c, &["DBSIZE"]).await, ":0\r\n");
    assert_eq!(
        info_field(&cmd(&mut c, &["INFO"]).await, "expired_keys"),
        "2"
    );
    drop(link);
}

/// CLIENT PAUSE on a replica holds its master client as Redis 7.0 does (it
/// spares only replicas): a write from the primary waits, with nothing
/// after it applied or acknowledged, until the pause ends.
#[tokio::test]
async fn client_pause_holds_the_primary_stream_at_a_write() {
    let Synced {
        s: _s,
        mut c,
        mut link,
        ..
    } = synced_replica(&[], b"k").await;

    assert_eq!(
        cmd(&mut c, &["CLIENT", "PAUSE", "100000", "WRITE"]).await,
        "+OK\r\n"
    );
    // PING is no write: applied. SET waits, and the GETACK behind it.
    let ping = resp(&[b"PING"]);
    let set = resp(&[b"SET", b"p", b"1"]);
    let mut stream = ping.clone();
    stream.extend(set.clone());
    stream.extend(resp(&[b"REPLCONF", b"GETACK", b"*"]));
    link.send(&stream).await;
    let after_ping = ping.len() as u64;
    link.wait_ack(after_ping).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cmd(&mut c, &["GET", "p"]).await, "$-1\r\n");
    let info = cmd(&mut c, &["INFO", "replication"]).await;
    assert_eq!(
        info_field(&info, "master_repl_offset"),
        after_ping.to_string()
    );
    assert_eq!(cmd(&mut c, &["CLIENT", "UNPAUSE"]).await, "+OK\r\n");
    // The GETACK is answered with the offset after the SET.
    link.wait_ack(after_ping + set.len() as u64).await;
    assert_eq!(cmd(&mut c, &["GET", "p"]).await, "$1\r\n1\r\n");
    drop(link);
}
