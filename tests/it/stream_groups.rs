//! Consumer groups: group state (last-delivered id, entries-read,
//! consumers with seen time, PEL with delivery time and count) survives a
//! restart (checkpoint) and kill -9 (op log replay).

use crate::common;

use redis::AsyncCommands;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// XREADGROUP's reply: (stream, [(id, [(field, value)])]).
type ReadReply = Vec<(String, Vec<(String, Vec<(String, String)>)>)>;

async fn q(c: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(c).await.unwrap()
}

/// Everything observable about the groups of `key`, with absolute times.
async fn state(c: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<redis::Value> {
    vec![
        q(c, &["XINFO", "STREAM", key, "FULL", "COUNT", "0"]).await,
        q(c, &["XPENDING", key, "g"]).await,
        q(c, &["XINFO", "GROUPS", key]).await,
    ]
}

async fn build(c: &mut redis::aio::MultiplexedConnection) {
    for i in 1..=50u64 {
        let _: String = c
            .xadd("s", format!("{i}-1"), &[("f", format!("v{i}"))])
            .await
            .unwrap();
    }
    q(c, &["XGROUP", "CREATE", "s", "g", "0"]).await;
    q(c, &["XGROUP", "CREATE", "s", "h", "$", "ENTRIESREAD", "50"]).await;
    q(c, &["XGROUP", "CREATE", "s", "gone", "0"]).await;
    q(c, &["XGROUP", "CREATECONSUMER", "s", "g", "idle-one"]).await;
    q(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "COUNT",
            "10",
            "STREAMS",
            "s",
            ">",
        ],
    )
    .await;
    q(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "b",
            "COUNT",
            "10",
            "STREAMS",
            "s",
            ">",
        ],
    )
    .await;
    q(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "x",
            "COUNT",
            "5",
            "STREAMS",
            "s",
            ">",
        ],
    )
    .await;
    q(c, &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", "0"]).await;
    q(c, &["XACK", "s", "g", "1-1", "2-1", "15-1"]).await;
    q(
        c,
        &[
            "XCLAIM",
            "s",
            "g",
            "b",
            "0",
            "3-1",
            "4-1",
            "RETRYCOUNT",
            "9",
        ],
    )
    .await;
    q(
        c,
        &[
            "XCLAIM", "s", "g", "b", "0", "40-1", "FORCE", "TIME", "1000",
        ],
    )
    .await;
    q(c, &["XAUTOCLAIM", "s", "g", "c", "0", "20-1", "COUNT", "2"]).await;
    q(c, &["XGROUP", "DELCONSUMER", "s", "g", "x"]).await;
    q(c, &["XGROUP", "DESTROY", "s", "gone"]).await;
    q(c, &["XDEL", "s", "5-1"]).await;
    q(
        c,
        &["XGROUP", "SETID", "s", "h", "30-1", "ENTRIESREAD", "30"],
    )
    .await;
    q(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "h",
            "z",
            "NOACK",
            "COUNT",
            "3",
            "STREAMS",
            "s",
            ">",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_groups_consumers_and_pel() {
    let s = common::start().await;
    let dir = s.shared().config.read().dir.clone();
    let mut c = common::client(s.local_addr()).await;
    build(&mut c).await;
    let before = state(&mut c, "s").await;
    drop(c);
    s.shutdown().await;

    let s = common::start_with(&[("dir", &dir)]).await;
    let mut c = common::client(s.local_addr()).await;
    assert_eq!(state(&mut c, "s").await, before);
    // Idle times continue from the recorded delivery times.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let rows: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
        .arg("s")
        .arg("g")
        .arg("IDLE")
        .arg(25)
        .arg("-")
        .arg("+")
        .arg(100)
        .query_async(&mut c)
        .await
        .unwrap();
    let all: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
        .arg("s")
        .arg("g")
        .arg("-")
        .arg("+")
        .arg(100)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(rows.len(), all.len());
    assert!(!all.is_empty());
    // The entry claimed with TIME 1000 is decades idle.
    let forced = all.iter().find(|r| r.0 == "40-1").unwrap();
    assert!(forced.2 > 1_000_000_000, "{forced:?}");
    assert_eq!(forced.3, 2);
    drop(c);
    s.shutdown().await;
}

/// The same state rebuilt from the op log alone (no checkpoint written
/// after the group commands) when the server is killed.
#[test]
fn kill_9_replays_group_ops() {
    let dir = common::temp_dir();
    let port = free_port();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_redlog"))
            .args(["--port", &port.to_string(), "--dir", dir.to_str().unwrap()])
            .args(["--appendfsync", "always", "--loglevel", "warning"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = common::KillOnDrop(spawn());
    wait_ping(port);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let mut c = wait_ping(port);
        for i in 1..=20_000u64 {
            if i % 1000 == 1 {
                let mut p = redis::pipe();
                for j in i..i + 1000 {
                    p.cmd("XADD").arg("s").arg(format!("{j}-1")).arg("f").arg(j);
                }
                let _: () = p.query(&mut c).unwrap();
            }
        }
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg("s")
            .arg("g")
            .arg("0")
            .query(&mut c)
            .unwrap();
    }
    let consumers: Vec<_> = (0..3)
        .map(|t| {
            let stop = stop.clone();
            let progress = progress.clone();
            std::thread::spawn(move || {
                let mut c = wait_ping(port);
                let mut delivered = BTreeSet::new();
                let mut acked = BTreeSet::new();
                let mut inflight_ack = Vec::new();
                let mut rounds = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r: redis::RedisResult<ReadReply> = redis::cmd("XREADGROUP")
                        .arg("GROUP")
                        .arg("g")
                        .arg(format!("c{t}"))
                        .arg("COUNT")
                        .arg(10)
                        .arg("STREAMS")
                        .arg("s")
                        .arg(">")
                        .query(&mut c);
                    let Ok(r) = r else { break };
                    let ids: Vec<String> = r
                        .into_iter()
                        .flat_map(|(_, es)| es.into_iter().map(|e| e.0))
                        .collect();
                    if ids.is_empty() {
                        break;
                    }
                    delivered.extend(ids.iter().cloned());
                    // Acknowledge every other entry.
                    inflight_ack = ids.iter().step_by(2).cloned().collect();
                    let r: redis::RedisResult<i64> = redis::cmd("XACK")
                        .arg("s")
                        .arg("g")
                        .arg(&inflight_ack)
                        .query(&mut c);
                    if r.is_err() {
                        break;
                    }
                    acked.extend(inflight_ack.drain(..));
                    rounds += 1;
                    if rounds == 5 {
                        progress.fetch_add(1, Ordering::Relaxed);
                    }
                }
                (delivered, acked, inflight_ack)
            })
        })
        .collect();
    for _ in 0..400 {
        if progress.load(Ordering::Relaxed) == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let results: Vec<_> = consumers.into_iter().map(|w| w.join().unwrap()).collect();
    let mut child = common::KillOnDrop(spawn());
    let mut c = wait_ping(port);
    let pending: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
        .arg("s")
        .arg("g")
        .arg("-")
        .arg("+")
        .arg(1_000_000)
        .query(&mut c)
        .unwrap();
    let max_delivered = results
        .iter()
        .flat_map(|r| r.0.iter())
        .map(|id| id.split('-').next().unwrap().parse::<u64>().unwrap())
        .max()
        .unwrap();
    for (t, (delivered, acked, inflight)) in results.iter().enumerate() {
        assert!(delivered.len() >= 50, "consumer {t} made progress");
        let name = format!("c{t}");
        let mine: BTreeSet<String> = pending
            .iter()
            .filter(|p| p.1 == name)
            .map(|p| p.0.clone())
            .collect();
        for id in delivered.difference(acked) {
            // An XACK under way at the kill may or may not have landed.
            if !inflight.contains(id) {
                assert!(mine.contains(id), "c{t}: {id} lost from the PEL");
            }
        }
        for id in &mine {
            let n: u64 = id.split('-').next().unwrap().parse().unwrap();
            // Only an XREADGROUP under way at the kill may add unknown ids.
            assert!(
                (delivered.contains(id) && !acked.contains(id))
                    || n > max_delivered.saturating_sub(100),
                "c{t}: {id} pending but acknowledged or never delivered"
            );
        }
    }
    let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg("s")
        .query(&mut c)
        .unwrap();
    let last = match &groups[0]["last-delivered-id"] {
        redis::Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
        v => panic!("{v:?}"),
    };
    let last_ms: u64 = last.split('-').next().unwrap().parse().unwrap();
    assert!(last_ms >= max_delivered);
    assert_eq!(groups[0]["entries-read"], redis::Value::Int(last_ms as i64));
    child.kill().unwrap();
    child.wait().unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_ping(port: u16) -> redis::Connection {
    for _ in 0..600 {
        if let Ok(cl) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) {
            if let Ok(mut c) = cl.get_connection() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return c;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server on {port} did not start");
}
