//! Durability of the keyspace: restart and replay, compaction, kill -9 under
//! load for every appendfsync policy, torn tails, corruption, failed writes
//! and a crash at every step of a compaction.

mod common;

use common::*;
use proptest::prelude::*;
use redlog::config::Config;
use redlog::db::Value;
use redlog::server::{spawn_with_fs, ServerHandle};
use redlog::storage::fs::CrashMode;
use redlog::storage::FaultyFs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

type Dump = Vec<(usize, Vec<u8>, Value, u64)>;

/// Every live key of every database with its value and absolute expiry.
fn dump(s: &ServerHandle) -> Dump {
    let now = redlog::db::now_ms();
    let ks = s.shared().ks.lock();
    let mut v: Dump = ks
        .dbs
        .iter()
        .enumerate()
        .flat_map(|(i, d)| {
            d.iter()
                .filter(|(_, e)| e.expires_at_ms == 0 || e.expires_at_ms > now + 2_000)
                .map(move |(k, e)| (i, k.to_vec(), e.value.clone(), e.expires_at_ms))
        })
        .collect();
    v.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    v
}

async fn cmd(
    c: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<redis::Value> {
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query_async(c).await
}

async fn wait_rewrite_done(s: &ServerHandle) {
    let p = s.shared().persist.clone().expect("persistence on");
    for _ in 0..2000 {
        if !p
            .rewrite_in_progress
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("rewrite did not finish");
}

#[tokio::test]
async fn restart_restores_every_database_and_ttl() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    let script: &[&[&str]] = &[
        &["SET", "plain", "v"],
        &["SET", "ttl", "v", "EX", "1000"],
        &["SET", "gone", "v", "PX", "1"],
        &["SET", "n", "10"],
        &["INCR", "n"],
        &["INCRBYFLOAT", "f", "1.1"],
        &["INCRBYFLOAT", "f", "2.2"],
        &["APPEND", "app", "abc"],
        &["APPEND", "app", "def"],
        &["SETRANGE", "app", "10", "x"],
        &["SET", "r1", "moved"],
        &["RENAME", "r1", "r2"],
        &["SET", "m", "to-db-5"],
        &["MOVE", "m", "5"],
        &["COPY", "plain", "plain-copy", "DB", "7"],
        &["SELECT", "3"],
        &["SET", "in3", "x"],
        &["SWAPDB", "3", "4"],
        &["SELECT", "9"],
        &["SET", "flushed", "x"],
        &["FLUSHDB"],
        &["SET", "after-flush", "y"],
        &["SELECT", "0"],
        &["SET", "p", "v", "EX", "100"],
        &["PERSIST", "p"],
        &["SET", "e", "v"],
        &["PEXPIREAT", "e", "99999999999999"],
        &["SET", "d", "v"],
        &["DEL", "d"],
        &["MULTI"],
        &["SET", "tx1", "a"],
        &["INCR", "tx2"],
        &["EXEC"],
        &["SET", "bin\u{0}key", "bin\u{1}value"],
    ];
    for line in script {
        cmd(&mut c, line).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let before = dump(&s);
    assert!(before.iter().any(|(db, k, _, _)| *db == 4 && k == b"in3"));
    assert!(before
        .iter()
        .any(|(db, k, _, _)| *db == 9 && k == b"after-flush"));
    assert!(!before
        .iter()
        .any(|(db, k, _, _)| *db == 9 && k == b"flushed"));
    drop(c);
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump(&s), before);
    let mut c = client(s.local_addr()).await;
    let ttl: i64 = redis::cmd("TTL")
        .arg("ttl")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(
        (990..=1000).contains(&ttl),
        "TTL continues from the absolute expiry: {ttl}"
    );
    let gone: Option<String> = redis::cmd("GET")
        .arg("gone")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(gone, None);
    let enc: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("app")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(enc, "raw", "the string's encoding survives replay");
    s.shutdown().await;
}

#[tokio::test]
async fn compaction_then_restart_and_info_fields() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    for i in 0..5000 {
        cmd(&mut c, &["SET", &format!("k{i}"), &format!("v{i}")])
            .await
            .unwrap();
    }
    for i in 0..2500 {
        cmd(&mut c, &["DEL", &format!("k{i}")]).await.unwrap();
    }
    let r: String = redis::cmd("BGREWRITEAOF")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(r, "Background append only file rewriting started");
    wait_rewrite_done(&s).await;
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query_async(&mut c)
        .await
        .unwrap();
    for field in [
        "aof_enabled:1",
        "aof_rewrite_in_progress:0",
        "aof_last_bgrewrite_status:ok",
        "aof_last_write_status:ok",
        "loading:0",
        "rdb_changes_since_last_save:0",
    ] {
        assert!(info.contains(field), "{field} in {info}");
    }
    assert!(info.contains("aof_current_size:") && info.contains("aof_base_size:"));
    let saved: String = redis::cmd("SAVE").query_async(&mut c).await.unwrap();
    assert_eq!(saved, "OK");
    cmd(&mut c, &["SET", "after-base", "1"]).await.unwrap();
    let before = dump(&s);
    assert_eq!(before.len(), 2501);
    drop(c);
    s.shutdown().await;
    let bases: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".base"))
        .collect();
    assert_eq!(bases.len(), 1, "older bases are removed");
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump(&s), before);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_with_concurrent_writes_loses_nothing() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let addr = s.local_addr();
    let mut c = client(addr).await;
    for i in 0..20_000 {
        cmd(&mut c, &["SET", &format!("k{i}"), "base"])
            .await
            .unwrap();
    }
    let writer = tokio::spawn(async move {
        let mut c = client(addr).await;
        for i in 0..3000u32 {
            let k = format!("k{}", (i * 7919) % 20_000);
            match i % 5 {
                0 => cmd(&mut c, &["DEL", &k]).await.unwrap(),
                1 => cmd(&mut c, &["APPEND", &k, "+"]).await.unwrap(),
                2 => cmd(&mut c, &["SET", &format!("new{i}"), "n"])
                    .await
                    .unwrap(),
                3 => cmd(&mut c, &["RENAME", &k, &format!("ren{i}")])
                    .await
                    .unwrap_or(redis::Value::Nil),
                _ => cmd(&mut c, &["EXPIRE", &k, "5000"]).await.unwrap(),
            };
        }
    });
    let _: String = redis::cmd("BGREWRITEAOF")
        .query_async(&mut c)
        .await
        .unwrap();
    writer.await.unwrap();
    wait_rewrite_done(&s).await;
    let before = dump(&s);
    drop(c);
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump(&s), before);
    s.shutdown().await;
}

#[derive(Debug, Clone)]
enum Op {
    Set(u8, u8, Option<u32>),
    Del(u8),
    Incr(u8),
    Append(u8, u8),
    Expire(u8, i64),
    Persist(u8),
    Rename(u8, u8),
    Select(u8),
    Swap(u8, u8),
    FlushDb,
    Multi(u8, u8),
    Rewrite,
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0u8..6;
    prop_oneof![
        6 => (k.clone(), any::<u8>(), proptest::option::of(1u32..100_000)).prop_map(|(a, b, t)| Op::Set(a, b, t)),
        2 => k.clone().prop_map(Op::Del),
        2 => k.clone().prop_map(Op::Incr),
        2 => (k.clone(), any::<u8>()).prop_map(|(a, b)| Op::Append(a, b)),
        2 => (k.clone(), -5i64..100_000).prop_map(|(a, t)| Op::Expire(a, t)),
        1 => k.clone().prop_map(Op::Persist),
        1 => (k.clone(), k.clone()).prop_map(|(a, b)| Op::Rename(a, b)),
        1 => (0u8..3).prop_map(Op::Select),
        1 => (0u8..3, 0u8..3).prop_map(|(a, b)| Op::Swap(a, b)),
        1 => Just(Op::FlushDb),
        1 => (k.clone(), k).prop_map(|(a, b)| Op::Multi(a, b)),
        1 => Just(Op::Rewrite),
    ]
}

async fn run_ops(ops: Vec<Op>) {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    for o in ops {
        let key = |k: u8| format!("key{k}");
        let r = match o {
            Op::Set(k, v, None) => cmd(&mut c, &["SET", &key(k), &v.to_string()]).await,
            Op::Set(k, v, Some(ms)) => {
                cmd(
                    &mut c,
                    &["SET", &key(k), &v.to_string(), "PX", &ms.to_string()],
                )
                .await
            }
            Op::Del(k) => cmd(&mut c, &["DEL", &key(k)]).await,
            Op::Incr(k) => cmd(&mut c, &["INCR", &key(k)]).await,
            Op::Append(k, v) => cmd(&mut c, &["APPEND", &key(k), &v.to_string()]).await,
            Op::Expire(k, t) => cmd(&mut c, &["EXPIRE", &key(k), &t.to_string()]).await,
            Op::Persist(k) => cmd(&mut c, &["PERSIST", &key(k)]).await,
            Op::Rename(a, b) => cmd(&mut c, &["RENAME", &key(a), &key(b)]).await,
            Op::Select(d) => cmd(&mut c, &["SELECT", &d.to_string()]).await,
            Op::Swap(a, b) => cmd(&mut c, &["SWAPDB", &a.to_string(), &b.to_string()]).await,
            Op::FlushDb => cmd(&mut c, &["FLUSHDB"]).await,
            Op::Multi(a, b) => {
                let mut p = redis::pipe();
                p.atomic().cmd("INCR").arg(key(a)).cmd("DEL").arg(key(b));
                p.query_async::<redis::Value>(&mut c).await
            }
            Op::Rewrite => cmd(&mut c, &["BGREWRITEAOF"]).await,
        };
        // Errors (WRONGTYPE-free here, but INCR on "abc", RENAME of a
        // missing key ...) are part of the sequence: they must log nothing.
        let _ = r;
    }
    wait_rewrite_done(&s).await;
    let before = dump(&s);
    drop(c);
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump(&s), before);
    s.shutdown().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn replay_equals_live_state(ops in proptest::collection::vec(op(), 1..80)) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(run_ops(ops));
    }
}

fn newest_log(dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a WAL segment")
}

#[tokio::test]
async fn torn_tail_is_tolerated_mid_file_corruption_refused() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    for i in 0..200 {
        cmd(&mut c, &["SET", &format!("k{i}"), "v"]).await.unwrap();
    }
    drop(c);
    s.shutdown().await;
    let log = newest_log(&dir);
    let mut bytes = std::fs::read(&log).unwrap();
    let clean_len = bytes.len();
    // A torn final write: half a record header and garbage.
    bytes.extend_from_slice(&[0x55, 0x00, 0x00, 0x00, 0xde, 0xad]);
    std::fs::write(&log, &bytes).unwrap();
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump(&s).len(), 200, "every whole record replayed");
    s.shutdown().await;
    assert_eq!(
        std::fs::metadata(&log).unwrap().len() as usize,
        clean_len,
        "tail truncated"
    );

    // A flipped byte in the middle, with valid records after it: refuse.
    let mut bytes = std::fs::read(&log).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();
    let mut cfg = Config::default();
    cfg.set_startup("port", "0").unwrap();
    cfg.set_startup("dir", dir.to_str().unwrap()).unwrap();
    let err = redlog::server::spawn(cfg)
        .await
        .err()
        .expect("refuses to start");
    let msg = err.to_string();
    let name = log.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        msg.contains(&name) && msg.contains("redlog check --repair"),
        "{msg}"
    );

    // `redlog check --repair` keeps the valid prefix; then it starts.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_redlog"))
        .args(["check", "--repair", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("dropped"));
    let s = start_in(&dir, &[]).await;
    let n = dump(&s).len();
    assert!(n > 0 && n < 200, "valid prefix kept: {n}");
    s.shutdown().await;
}

async fn faulty_server(fs: &FaultyFs, dir: &Path, fsync: &str) -> ServerHandle {
    let mut cfg = Config::default();
    cfg.set_startup("port", "0").unwrap();
    cfg.set_startup("dir", dir.to_str().unwrap()).unwrap();
    cfg.set_startup("appendfsync", fsync).unwrap();
    spawn_with_fs(cfg, Arc::new(fs.clone()))
        .await
        .expect("start on FaultyFs")
}

#[tokio::test]
async fn failed_fsync_refuses_writes_keeps_reads_and_acknowledged_data() {
    let dir = temp_dir();
    let fs = FaultyFs::new();
    let s = faulty_server(&fs, &dir, "always").await;
    let mut r = Raw::connect(s.local_addr()).await;
    for i in 0..20 {
        r.check(
            &resp(&[b"SET", format!("k{i}").as_bytes(), b"v"]),
            b"+OK\r\n",
        )
        .await;
    }
    fs.fail_syncs_after(0);
    let misconf = b"-MISCONF Errors writing to the AOF file: injected EIO on fsync\r\n";
    r.check(&resp(&[b"SET", b"late", b"v"]), misconf).await;
    r.check(&resp(&[b"GET", b"k3"]), b"$1\r\nv\r\n").await;
    r.check(&resp(&[b"SET", b"later", b"v"]), misconf).await;
    r.check(&resp(&[b"PING"]), misconf).await;
    let mut c = client(s.local_addr()).await;
    let info: String = redis::cmd("INFO")
        .arg("persistence")
        .query_async(&mut c)
        .await
        .unwrap();
    drop(c);
    assert!(info.contains("aof_last_write_status:err"), "{info}");
    fs.crash(CrashMode::DropUnsynced);
    fs.clear_faults();
    drop(r);
    s.shutdown().await;
    let s = faulty_server(&fs, &dir, "always").await;
    let d = dump(&s);
    for i in 0..20 {
        assert!(
            d.iter().any(|(_, k, _, _)| k == format!("k{i}").as_bytes()),
            "k{i} acknowledged, kept"
        );
    }
    s.shutdown().await;
}

/// A compaction interrupted at every write or fsync it performs, then a
/// power loss: the restarted server has every acknowledged key, from the
/// old base and log or the new base and log, never a mix.
#[tokio::test]
async fn crash_at_every_compaction_step() {
    let dir = temp_dir();
    let keys = 2500;
    let mut step = 0u64;
    let mut completed = [false, false];
    while !(completed[0] && completed[1]) {
        for (kind, done) in completed.iter_mut().enumerate() {
            if *done {
                continue;
            }
            let fs = FaultyFs::new();
            let s = faulty_server(&fs, &dir, "always").await;
            let mut c = client(s.local_addr()).await;
            for i in 0..keys {
                cmd(&mut c, &["SET", &format!("k{i}"), &format!("v{i}")])
                    .await
                    .unwrap();
            }
            // An older base, so the rewrite also has one to replace.
            if step % 2 == 1 {
                let _: String = redis::cmd("SAVE").query_async(&mut c).await.unwrap();
                cmd(&mut c, &["SET", "after-first-base", "x"])
                    .await
                    .unwrap();
            }
            let expected = dump(&s);
            if kind == 0 {
                fs.fail_writes_after(step);
            } else {
                fs.fail_syncs_after(step);
            }
            let shared = s.shared().clone();
            let r = tokio::task::spawn_blocking(move || shared.rewrite_now())
                .await
                .unwrap();
            *done = r.is_ok();
            fs.crash(CrashMode::DropUnsynced);
            fs.clear_faults();
            drop(c);
            s.shutdown().await;
            let s = faulty_server(&fs, &dir, "always").await;
            assert_eq!(dump(&s), expected, "kind {kind} step {step}");
            s.shutdown().await;
        }
        step += 1;
        assert!(step < 200, "compaction never completed");
    }
}

/// kill -9 while several clients write: every acknowledged write is there
/// after a restart, under each appendfsync policy.
#[test]
fn kill_9_under_load_loses_no_acknowledged_write() {
    for policy in ["always", "everysec", "no"] {
        let dir = temp_dir();
        let port = free_port();
        let spawn = || {
            std::process::Command::new(env!("CARGO_BIN_EXE_redlog"))
                .args([
                    "--port",
                    &port.to_string(),
                    "--dir",
                    dir.to_str().unwrap(),
                    "--appendfsync",
                    policy,
                ])
                .args(["--loglevel", "warning"])
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        let mut child = KillOnDrop(spawn());
        wait_ping(port);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let stop = stop.clone();
                let progress = progress.clone();
                std::thread::spawn(move || {
                    let mut c = wait_ping(port);
                    let mut acked = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let r: redis::RedisResult<String> = redis::cmd("SET")
                            .arg(format!("t{t}:{}", acked + 1))
                            .arg(acked + 1)
                            .query(&mut c);
                        match r {
                            Ok(_) => {
                                acked += 1;
                                if acked == 10 {
                                    progress.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                            }
                            Err(_) => break,
                        }
                        if acked.is_multiple_of(50) {
                            let _: redis::RedisResult<i64> =
                                redis::cmd("INCR").arg(format!("ctr{t}")).query(&mut c);
                        }
                    }
                    acked
                })
            })
            .collect();
        // A pseudo-random moment between 150 and 550 ms.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        // Every writer under way (bounded: a loaded machine is slow), then
        // the random moment.
        for _ in 0..400 {
            if progress.load(std::sync::atomic::Ordering::Relaxed) == 4 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(50 + u64::from(nanos % 400)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let acked: Vec<u64> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        let mut child = KillOnDrop(spawn());
        let mut c = wait_ping(port);
        for (t, &n) in acked.iter().enumerate() {
            assert!(n > 0, "{policy}: writer {t} made progress");
            for i in 1..=n {
                let v: Option<u64> = redis::cmd("GET")
                    .arg(format!("t{t}:{i}"))
                    .query(&mut c)
                    .unwrap();
                assert_eq!(
                    v,
                    Some(i),
                    "{policy}: acknowledged t{t}:{i} survives kill -9"
                );
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
