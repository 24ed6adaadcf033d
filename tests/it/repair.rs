//! `redlog check --repair` of a real data directory keeps everything it can
//! prove valid (an older base, the whole log, chunks after damage), says
//! exactly what it dropped, and the next start logs the drop as a warning.

use crate::common;

use common::*;
use redlog::server::ServerHandle;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

fn bases(dir: &Path) -> Vec<PathBuf> {
    files_with(&dir.join("wal"), "base")
}

/// Offsets of a base file's chunk records.
fn chunk_offsets(b: &[u8]) -> Vec<usize> {
    let mut v = Vec::new();
    let mut pos = 32;
    while pos + 8 <= b.len() - 40 {
        v.push(pos);
        pos += 8 + u32::from_le_bytes(b[pos..pos + 4].try_into().unwrap()) as usize;
    }
    v
}

/// Flips a byte inside chunk `i` (0-based) of `base`; returns its offset.
fn damage_chunk(base: &Path, i: usize) -> usize {
    let mut b = std::fs::read(base).unwrap();
    let at = chunk_offsets(&b)[i];
    b[at + 8 + 40] ^= 0x5a;
    std::fs::write(base, &b).unwrap();
    at
}

fn check(dir: &Path, repair: bool) -> (i32, String) {
    let mut args = vec!["check"];
    if repair {
        args.push("--repair");
    }
    args.push(dir.to_str().unwrap());
    let out = Command::new(env!("CARGO_BIN_EXE_redlog"))
        .args(&args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn set_many(s: &ServerHandle, prefix: &str, n: usize) {
    let mut c = client(s.local_addr()).await;
    let mut p = redis::pipe();
    for i in 0..n {
        p.cmd("SET").arg(format!("{prefix}{i}")).arg(i).ignore();
    }
    let () = p.query_async(&mut c).await.unwrap();
}

async fn rewrite(s: &ServerHandle) {
    let mut c = client(s.local_addr()).await;
    let _: redis::Value = redis::cmd("BGREWRITEAOF")
        .query_async(&mut c)
        .await
        .unwrap();
    let p = s.shared().persist.clone().unwrap();
    for _ in 0..4000 {
        let done = !p
            .rewrite_in_progress
            .load(std::sync::atomic::Ordering::SeqCst)
            && p.rewrites.load(std::sync::atomic::Ordering::SeqCst) > 0;
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("rewrite did not finish");
}

fn keys(s: &ServerHandle) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = dump_all(s).into_iter().map(|e| e.1).collect();
    v.sort();
    v
}

async fn refuses(dir: &Path) -> String {
    let mut cfg = redlog::config::Config::default();
    cfg.set_startup("port", "0").unwrap();
    cfg.set_startup("dir", dir.to_str().unwrap()).unwrap();
    redlog::server::spawn(cfg)
        .await
        .err()
        .expect("refuses to start")
        .to_string()
}

/// Issue 14 item 7: 5001 keys, compaction, the new base damaged while the
/// whole log since unit 1 is still there. Repair used to cut the base to its
/// first two chunks (2000 keys); the log proves all 5001.
#[tokio::test]
async fn damaged_base_with_the_whole_log_keeps_every_key() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    set_many(&s, "k", 5001).await;
    rewrite(&s).await;
    let before = dump_all(&s);
    assert_eq!(before.len(), 5001);
    s.shutdown().await;
    let base = bases(&dir).pop().expect("a base");
    damage_chunk(&base, 2);
    assert!(refuses(&dir).await.contains("redlog check --repair"));

    let (code, out) = check(&dir, false);
    assert_eq!(code, 1, "{out}");
    let (code, out) = check(&dir, true);
    assert_eq!(code, 0, "{out}");
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump_all(&s).len(), 5001, "all 5001 keys");
    assert_eq!(dump_all(&s), before);
    s.shutdown().await;
    assert!(
        out.contains("recovery: the empty keyspace at seq 1, then units 1..5001"),
        "{out}"
    );
    assert!(!out.contains("dropped:"), "nothing lost: {out}");
    assert!(!dir.join("repair-report.txt").exists());
    assert!(!base.exists(), "the damaged base is gone");
    // Idempotent: a second repair finds nothing.
    let (code, out) = check(&dir, true);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 problems, 0 drops"), "{out}");
}

/// A crash between installing a base and deleting its predecessor leaves the
/// older base and its whole log: when the newest base is damaged, repair
/// starts from the older one and loses nothing.
#[tokio::test]
async fn older_base_is_the_fallback_for_a_damaged_newest_base() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    set_many(&s, "a", 3000).await;
    rewrite(&s).await;
    let older = bases(&dir).pop().expect("older base");
    let older_bytes = std::fs::read(&older).unwrap();
    set_many(&s, "b", 2500).await;
    rewrite(&s).await;
    set_many(&s, "c", 10).await;
    let before = dump_all(&s);
    s.shutdown().await;
    assert!(!older.exists(), "compaction deleted the older base");
    std::fs::write(&older, &older_bytes).unwrap();
    // The older base stays until the newest has been read in full.
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump_all(&s), before);
    s.shutdown().await;
    assert!(!older.exists(), "removed after a successful load");
    std::fs::write(&older, &older_bytes).unwrap();
    let newest = bases(&dir).pop().unwrap();
    assert_ne!(newest, older);
    damage_chunk(&newest, 1);

    let (code, out) = check(&dir, true);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("recovery: base {}", older.display())),
        "{out}"
    );
    assert!(!out.contains("dropped:"), "{out}");
    let s = start_in(&dir, &[]).await;
    assert_eq!(dump_all(&s), before);
    s.shutdown().await;
    let (_, out) = check(&dir, true);
    assert!(out.contains("0 problems, 0 drops"), "{out}");
}

/// Replaces the WAL's log by its units from `from` on, as a compaction that
/// could delete the older segments leaves it.
fn drop_units_before(dir: &Path, from: u128) {
    use redlog::storage::{LogOptions, SegmentedLog};
    let wal = dir.join("wal");
    let kept: Vec<(u128, Vec<u8>)> = {
        let (log, _) = SegmentedLog::open(&wal, LogOptions::default()).unwrap();
        log.iter_from(from)
            .map(|r| r.map(|r| (r.key, r.value)).unwrap())
            .collect()
    };
    for p in files_with(&wal, "log")
        .into_iter()
        .chain(files_with(&wal, "index"))
    {
        std::fs::remove_file(p).unwrap();
    }
    let (log, _) = SegmentedLog::open(&wal, LogOptions::default()).unwrap();
    for (k, v) in kept {
        log.append(k, &v).unwrap();
    }
    log.sync().unwrap();
}

/// No alternative to a damaged base: repair keeps its readable chunks (those
/// after the damage too) and every unit after it, reports file, offset,
/// chunks and keys dropped, and the next start logs that as a warning.
#[tokio::test]
async fn damaged_base_without_alternative_reports_what_it_dropped() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    set_many(&s, "k", 5001).await;
    rewrite(&s).await;
    let start = s.shared().persist.as_ref().unwrap().wal.next_seq();
    set_many(&s, "after", 20).await;
    s.shutdown().await;
    drop_units_before(&dir, start);
    let base = bases(&dir).pop().unwrap();
    let bytes = std::fs::read(&base).unwrap();
    // Six chunks of keys (1000 each) and the function libraries' chunk.
    assert_eq!(chunk_offsets(&bytes).len(), 7);
    // The keys of the chunk about to be damaged, from the intact copy.
    let lost: Vec<Vec<u8>> = {
        let at = chunk_offsets(&bytes)[2];
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let unit = &bytes[at + 8 + 32..at + 8 + len];
        redlog::db::effect::decode_unit(unit)
            .unwrap()
            .iter()
            .filter_map(|e| e.target().map(|(_, k)| k.to_vec()))
            .collect()
    };
    assert_eq!(lost.len(), 1000);
    let at = damage_chunk(&base, 2);

    let (code, out) = check(&dir, true);
    assert_eq!(code, 0, "{out}");
    let line = format!(
        "dropped: {} from offset {at}: {} bytes: 1 unreadable chunks holding 1000 keys",
        base.display(),
        chunk_offsets(&bytes)[3] - at
    );
    assert!(out.contains(&line), "{line}\n{out}");
    assert!(
        out.contains("(the base keeps its 6 readable chunks, 4001 keys)"),
        "{out}"
    );
    let report = std::fs::read_to_string(dir.join("repair-report.txt")).unwrap();
    assert!(report.contains(&line), "{report}");

    // The next start logs the report as a warning and marks it seen.
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_redlog"))
        .args(["--port", &port.to_string(), "--dir", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut c = wait_ping(port);
    let n: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 4001 + 20);
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    let status = child.wait().unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(status.success(), "{log}");
    // A warning line (redis-server's format: `#` marks warnings).
    assert!(
        log.lines()
            .any(|l| l.contains(" # ") && l.contains("dropped data")),
        "{log}"
    );
    assert!(log.contains(&line), "{log}");
    assert!(!dir.join("repair-report.txt").exists());
    assert!(dir.join("repair-report.seen.txt").exists());

    // Idempotent, and the warning is not repeated.
    let (code, out) = check(&dir, true);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 problems, 0 drops"), "{out}");
    let s = start_in(&dir, &[]).await;
    let k = keys(&s);
    assert_eq!(k.len(), 4021);
    assert!(k.contains(&b"after19".to_vec()));
    assert!(
        lost.iter().all(|l| !k.contains(l)),
        "exactly the damaged chunk's keys are gone"
    );
    s.shutdown().await;
}

/// A repair that cuts a stream's entry log below what its checkpoint
/// counted: the restarted server's XLEN, XINFO and trimming agree with the
/// entries the log still has (the checkpoint used to keep counting the lost
/// ones: XLEN 300 with 50 entries left).
#[tokio::test]
async fn stream_repaired_below_its_checkpoint_counts_what_is_left() {
    let dir = temp_dir();
    let s = start_in(&dir, &[("stream-segment-bytes", "4096")]).await;
    {
        let mut c = client(s.local_addr()).await;
        let mut p = redis::pipe();
        for i in 1..=300 {
            p.cmd("XADD")
                .arg("s")
                .arg(format!("{i}-0"))
                .arg("field")
                .arg(format!("{i:0>200}"))
                .ignore();
        }
        let () = p.query_async(&mut c).await.unwrap();
    }
    // The checkpoint is written at shutdown: it counts all 300 entries.
    s.shutdown().await;
    let streams: Vec<PathBuf> = std::fs::read_dir(dir.join("streams"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(streams.len(), 1, "{streams:?}");
    let segments = files_with(&streams[0], "log");
    assert!(segments.len() >= 3, "{segments:?}");
    // Damage a record in the second segment; repair keeps what is before.
    let mut b = std::fs::read(&segments[1]).unwrap();
    b[40] ^= 0x5a;
    std::fs::write(&segments[1], &b).unwrap();
    let (code, out) = check(&dir, true);
    assert_eq!(code, 0, "{out}");

    let s = start_in(&dir, &[("stream-segment-bytes", "4096")]).await;
    let mut c = client(s.local_addr()).await;
    let left: Vec<redis::Value> = redis::cmd("XRANGE")
        .arg("s")
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(!left.is_empty() && left.len() < 300, "{}", left.len());
    let len: usize = redis::cmd("XLEN")
        .arg("s")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(len, left.len());
    // The last id stays (ids never go back); first-entry is the first kept.
    let info: redis::Value = redis::cmd("XINFO")
        .arg("STREAM")
        .arg("s")
        .query_async(&mut c)
        .await
        .unwrap();
    let text = format!("{info:?}");
    assert!(text.contains("300-0"), "{text}");
    // Trimming counts the same entries: MAXLEN 10 leaves exactly 10.
    let _: i64 = redis::cmd("XTRIM")
        .arg("s")
        .arg("MAXLEN")
        .arg(10)
        .query_async(&mut c)
        .await
        .unwrap();
    let len: usize = redis::cmd("XLEN")
        .arg("s")
        .query_async(&mut c)
        .await
        .unwrap();
    let left: Vec<redis::Value> = redis::cmd("XRANGE")
        .arg("s")
        .arg("-")
        .arg("+")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((len, left.len()), (10, 10));
}
