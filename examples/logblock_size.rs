//! Sizes of the stream data in a stopped redlog data dir, for
//! `benches/logparse_compress.sh`: the records as plain segments would
//! hold them (record framing, headers left out) and the same records as template-compressed blocks
//! (`stream::logblock`, `BLOCK_ENTRIES` records a block), each block
//! decoded again and compared with the records, byte for byte.
//!
//! Usage: logblock_size <data-dir>
//! Prints: `plain_bytes block_bytes entries`.

use redlog::storage::logblock;
use redlog::storage::{LogOptions, SegmentedLog};
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: logblock_size <data-dir>");
        return ExitCode::from(2);
    };
    let root = std::path::Path::new(&dir).join("streams");
    let (mut plain, mut packed, mut entries) = (0u64, 0u64, 0u64);
    let Ok(dirs) = std::fs::read_dir(&root) else {
        eprintln!("no {}", root.display());
        return ExitCode::from(1);
    };
    for d in dirs.flatten() {
        let path = d.path();
        if !path.is_dir() {
            continue;
        }
        let log = match SegmentedLog::open(&path, LogOptions::default()) {
            Ok((log, _)) => log,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                return ExitCode::from(1);
            }
        };
        let mut recs = Vec::new();
        for r in log.iter() {
            match r {
                Ok(r) => recs.push((r.key, r.value)),
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    return ExitCode::from(1);
                }
            }
        }
        // As plain segments: each record's framing (segment headers left out;
        // `total_bytes` would count compressed segments as they are).
        plain += recs
            .iter()
            .map(|(_, v)| redlog::storage::record::record_bytes(v.len()))
            .sum::<u64>();
        entries += recs.len() as u64;
        for chunk in recs.chunks(logblock::BLOCK_ENTRIES) {
            let refs: Vec<(u128, &[u8])> = chunk.iter().map(|(k, v)| (*k, &v[..])).collect();
            let Some(b) = logblock::encode(&refs) else {
                eprintln!("{}: records that are not entries", path.display());
                return ExitCode::from(1);
            };
            match logblock::decode(&b) {
                Ok(back) if back == chunk => {}
                Ok(_) => {
                    eprintln!("{}: a block decodes to other records", path.display());
                    return ExitCode::from(1);
                }
                Err(e) => {
                    eprintln!("{}: a block does not decode: {}", path.display(), e.0);
                    return ExitCode::from(1);
                }
            }
            packed += b.len() as u64;
        }
    }
    println!("{plain} {packed} {entries}");
    ExitCode::SUCCESS
}
