//! Entry point shared by the cargo-fuzz target `fuzz/fuzz_targets/open_segment.rs`
//! and the stable proptest `tests/it/storage_fuzz.rs`: open a log whose segment
//! and index bytes are arbitrary, read it every way, and panic only if an
//! invariant breaks (never on bad input).
//!
//! Input layout: `flags: u8 | index_len: u16 le | index bytes | log bytes`.
//! flags bit 0: prepend a valid log header (base = the first record's key) so
//! the fuzzer reaches record parsing; bit 1: prepend a valid index header;
//! bit 2: the fuzzed segment is an older one, followed by a valid newest
//! segment; bits 3-4: recovery mode (Strict, TolerateTornTail, Repair).

use super::fs::FaultyFs;
use super::record::{encode_file_header, encode_record, Record, INDEX_MAGIC, LOG_MAGIC};
use super::segment::segment_paths;
use super::{LogOptions, RecoveryMode, SegmentedLog, SyncPolicy};
use std::path::Path;
use std::sync::Arc;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Opens arbitrary segment bytes; panics only on a broken invariant.
/// Returns the number of records the first open read forwards.
pub fn fuzz_open_segment(data: &[u8]) -> usize {
    if data.len() < 3 {
        return 0;
    }
    let flags = data[0];
    let index_len = usize::from(u16::from_le_bytes([data[1], data[2]])).min(data.len() - 3);
    let (index_body, log_body) = data[3..].split_at(index_len);
    let base = log_body
        .get(8..24)
        .map_or(0, |k| u128::from_le_bytes(k.try_into().unwrap_or([0; 16])));
    let mut log = Vec::new();
    if flags & 1 != 0 {
        log.extend_from_slice(&encode_file_header(LOG_MAGIC, base));
    }
    log.extend_from_slice(log_body);
    let mut index = Vec::new();
    if flags & 2 != 0 {
        index.extend_from_slice(&encode_file_header(INDEX_MAGIC, base));
    }
    index.extend_from_slice(index_body);

    let fs = FaultyFs::new();
    let dir = Path::new("/fuzz/log");
    let (log_path, index_path) = segment_paths(dir, base);
    fs.write_file(&log_path, &log);
    fs.write_file(&index_path, &index);
    let mut all_bytes = log.clone();
    if flags & 4 != 0 && base < u128::MAX - 1 {
        let newer = u128::MAX - 1;
        let (p, _) = segment_paths(dir, newer);
        let mut b = encode_file_header(LOG_MAGIC, newer).to_vec();
        encode_record(&mut b, newer, b"newest");
        fs.write_file(&p, &b);
        all_bytes.extend_from_slice(&b);
    }
    let recovery = match (flags >> 3) & 3 {
        0 => RecoveryMode::Strict,
        1 => RecoveryMode::TolerateTornTail,
        _ => RecoveryMode::Repair,
    };
    let opts = LogOptions {
        fs: Arc::new(fs.clone()),
        sync: SyncPolicy::No,
        segment_bytes: 1 << 20,
        segment_age_max: None,
        recovery,
        preallocate: 0,
    };
    let Ok((log, _report)) = SegmentedLog::open(dir, opts.clone()) else {
        return 0;
    };
    let check = |r: &Record| {
        let mut frame = Vec::new();
        encode_record(&mut frame, r.key, &r.value);
        assert!(
            contains(&all_bytes, &frame),
            "returned a record that is not a valid frame of the input"
        );
    };
    let mut prev: Option<u128> = None;
    let mut read = 0;
    for r in log.iter().take(10_000) {
        let Ok(r) = r else { break };
        check(&r);
        assert!(
            prev.is_none_or(|p| r.key > p),
            "forward keys not increasing"
        );
        prev = Some(r.key);
        read += 1;
    }
    let mut prev: Option<u128> = None;
    for r in log.iter_rev_from(u128::MAX).take(10_000) {
        let Ok(r) = r else { break };
        check(&r);
        assert!(
            prev.is_none_or(|p| r.key < p),
            "reverse keys not decreasing"
        );
        prev = Some(r.key);
    }
    if let Some(k) = log.first_key() {
        let _ = log.read_range(k, k.saturating_add(1000), 10);
        let _ = log.read_range_rev(k.saturating_add(1000), k, 10);
    }
    // The recovered log accepts an append that survives a reopen.
    let Some(next) = log.last_key().map_or(Some(0), |k| k.checked_add(1)) else {
        return read;
    };
    if log.append(next, b"after").is_err() {
        return read;
    }
    drop(log);
    let reopened = SegmentedLog::open(
        dir,
        LogOptions {
            recovery: RecoveryMode::TolerateTornTail,
            ..opts
        },
    );
    let (log, _) = match reopened {
        Ok(x) => x,
        Err(e) => panic!("reopen after a successful open and append failed: {e}"),
    };
    assert_eq!(log.last_key(), Some(next));
    read
}
