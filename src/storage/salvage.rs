//! Reading a log file past damage, for `redlog check`: every readable
//! record of a file is found, not only those before the first bad one.
//!
//! After a bad record the reader resynchronises at the next byte offset where
//! a valid record starts (length in range, CRC match, key above the last
//! good one), so what lies beyond damage is counted and, where recovery needs
//! it, kept. A false resynchronisation needs a random 32-bit CRC match on a
//! plausible length and key; the search is bounded by a CRC budget.

use super::fs::{read_full_at, StorageFile};
use super::record::{
    decode_record, BadRecord, Decoded, RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX,
};
use super::segment::{Scanned, Scanner};
use std::io;
use std::sync::Arc;

/// Bytes a resynchronisation may CRC before giving up (the rest of the file
/// then counts as unreadable).
const RESYNC_CRC_BUDGET_BYTES: u64 = 1 << 30;
/// Read window of a resynchronisation.
const RESYNC_WINDOW_BYTES: usize = 1 << 20;

/// A damaged byte range: no readable record starts inside it.
#[derive(Debug, Clone)]
pub(crate) struct Damage {
    pub pos: u64,
    pub bytes: u64,
    pub reason: String,
}

/// Readable records that follow each other in the file with no damage
/// between them (and, with `split_gaps`, with consecutive keys).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Piece {
    pub start: u64,
    pub end: u64,
    pub first: u128,
    pub last: u128,
    pub records: u64,
}

/// The first offset in `[from, end)` where a valid record with a key above
/// `prev` starts, if any.
fn resync(
    file: &dyn StorageFile,
    from: u64,
    end: u64,
    prev: Option<u128>,
) -> io::Result<Option<u64>> {
    let min_total = RECORD_HEADER_BYTES + 16;
    let mut budget = RESYNC_CRC_BUDGET_BYTES;
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_off = from;
    let mut off = from;
    while off + min_total <= end {
        if off < buf_off || off + min_total > buf_off + buf.len() as u64 {
            let want = (RESYNC_WINDOW_BYTES as u64).min(end - off) as usize;
            buf.resize(want, 0);
            let got = read_full_at(file, &mut buf, off)?;
            buf.truncate(got);
            buf_off = off;
            if (got as u64) < min_total {
                return Ok(None);
            }
        }
        let rel = (off - buf_off) as usize;
        let h = &buf[rel..];
        let len = u64::from(u32::from_le_bytes([h[0], h[1], h[2], h[3]]));
        if (16..=u64::from(RECORD_PAYLOAD_BYTES_MAX)).contains(&len)
            && off + RECORD_HEADER_BYTES + len <= end
        {
            if budget < len {
                return Ok(None);
            }
            budget -= len;
            let total = (RECORD_HEADER_BYTES + len) as usize;
            let owned;
            let rec: &[u8] = if rel + total <= buf.len() {
                &buf[rel..rel + total]
            } else {
                let mut v = vec![0u8; total];
                let got = read_full_at(file, &mut v, off)?;
                v.truncate(got);
                owned = v;
                &owned
            };
            if let Decoded::Record { key, .. } = decode_record(rec) {
                if prev.is_none_or(|p| key > p) {
                    return Ok(Some(off));
                }
            }
        }
        off += 1;
    }
    Ok(None)
}

/// Reads every record of `[from, end)`, resynchronising after damage.
/// `first_key`: the key the record at `from` must have. `on_record` sees each
/// readable record (position, key, value).
pub(crate) fn scan_file(
    file: &Arc<dyn StorageFile>,
    from: u64,
    end: u64,
    first_key: Option<u128>,
    split_gaps: bool,
    on_record: &mut dyn FnMut(u64, u128, &[u8]),
) -> io::Result<(Vec<Piece>, Vec<Damage>)> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut damage = Vec::new();
    let mut prev: Option<u128> = None;
    let mut pos = from;
    loop {
        let mut sc = Scanner::new(file.clone(), pos, end);
        let bad = loop {
            match sc.next_record()? {
                Scanned::End => break None,
                Scanned::Bad { pos, kind } => break Some((pos, kind.describe())),
                Scanned::Record {
                    pos: p,
                    key,
                    value,
                    next,
                } => {
                    let in_order = match prev {
                        None => p != from || first_key.is_none_or(|k| k == key),
                        Some(pk) => key > pk,
                    };
                    if !in_order {
                        let why = if prev.is_none() {
                            "first record's key differs from the base key"
                        } else {
                            BadRecord::KeyOrder.describe()
                        };
                        break Some((p, why));
                    }
                    on_record(p, key, value);
                    match pieces.last_mut() {
                        Some(pc)
                            if pc.end == p
                                && (!split_gaps || pc.last.checked_add(1) == Some(key)) =>
                        {
                            pc.end = next;
                            pc.last = key;
                            pc.records += 1;
                        }
                        _ => pieces.push(Piece {
                            start: p,
                            end: next,
                            first: key,
                            last: key,
                            records: 1,
                        }),
                    }
                    prev = Some(key);
                }
            }
        };
        let Some((at, reason)) = bad else { break };
        match resync(&**file, at + 1, end, prev)? {
            Some(q) => {
                damage.push(Damage {
                    pos: at,
                    bytes: q - at,
                    reason: reason.into(),
                });
                pos = q;
            }
            None => {
                damage.push(Damage {
                    pos: at,
                    bytes: end - at,
                    reason: reason.into(),
                });
                break;
            }
        }
    }
    Ok((pieces, damage))
}

/// A key as the logs name it: `ms-seq` for stream ids, a number otherwise.
pub(crate) fn fmt_key(k: u128) -> String {
    if k >> 64 != 0 {
        format!("{}-{}", k >> 64, k as u64)
    } else {
        k.to_string()
    }
}
