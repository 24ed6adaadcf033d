//! `redlog check [--repair]` of the keyspace WAL directory (`<dir>/wal/`):
//! the unit log and its base files are judged together, because which bytes
//! recovery needs depends on the base it starts from.
//!
//! Check: every base is read whole (header, each chunk's CRC and number,
//! footer) and every log segment record by record, past damage (`salvage`),
//! so what lies beyond damage is counted, not guessed. A jump in unit seqs
//! after the newest base's start is a problem too (units missing).
//!
//! Repair chooses the recovery that reaches the furthest unit:
//! - a *start*: the empty keyspace at unit 1, or a base (its start seq S);
//! - its *reach* R: the last unit of the unbroken run S, S+1, ... in the log
//!   (a run ends at damage or at a missing seq); R = S-1 when unit S is
//!   absent.
//!
//! The chosen start has the largest R; among equals a complete start (the
//! empty keyspace or an undamaged base) beats a damaged base, and a newer
//! base an older one. Then:
//! - bases at or after the start (other than the chosen one) are deleted, and
//!   older damaged bases; older complete bases stay (the server deletes them
//!   once it has loaded);
//! - a damaged chosen base is rewritten with every readable chunk, those
//!   after the damage included;
//! - the log keeps its readable records up to R. Damaged bytes before the
//!   start's run hold units recovery does not need: they are removed, and a
//!   segment whose kept records follow such damage is rewritten from its
//!   first kept record. Everything after R is removed.
//!
//! Every removal is printed with file, offset, bytes, readable records, unit
//! or chunk range and keys. A removal that loses data is a [`Dropped`]; one
//! whose content the chosen recovery still has is listed as covered.

use super::atomic::atomic_write_with;
use super::error::Result;
use super::fs::{read_full_at, Fs, OpenMode};
use super::index::encode_index;
use super::record::{
    decode_file_header, decode_record, encode_file_header, encode_record, Decoded,
    FILE_HEADER_BYTES, LOG_MAGIC, RECORD_HEADER_BYTES,
};
use super::salvage::{scan_file, Damage, Piece};
use super::segment::{list_segments, scan_whole, segment_paths, Scanned, Scanner};
use super::verify::{check_index, compare_index, drop_line, problem, Dropped, LogCheck};
use super::wal::{footer_bytes, parse_base_name, BASE_FOOTER_BYTES, BASE_MAGIC, FOOTER_MAGIC};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Decodes a WAL unit (or base chunk) into the `(db, key)` pairs it
/// touches; None when the bytes do not decode. Supplied by the caller
/// (`node::persist::unit_keys`): storage itself only stores bytes.
pub type UnitKeys<'a> = &'a dyn Fn(&[u8]) -> Option<Vec<(u8, Vec<u8>)>>;

struct SegScan {
    base: u128,
    log_path: PathBuf,
    index_path: PathBuf,
    len: u64,
    pieces: Vec<Piece>,
    /// Sorted by position; a damaged header is `pos 0`.
    damage: Vec<Damage>,
    /// Index entries rebuilt from a segment without damage.
    index: Option<Vec<super::index::IndexEntry>>,
}

struct Chunk {
    pos: u64,
    end: u64,
    keys: Option<u64>,
}

struct BaseScan {
    seq: u128,
    path: PathBuf,
    size: u64,
    /// `(chunks, keys)` of a valid footer.
    footer: Option<(u64, u64)>,
    pieces: Vec<Piece>,
    damage: Vec<Damage>,
    chunks: Vec<Chunk>,
}

impl BaseScan {
    fn complete(&self) -> bool {
        self.damage.is_empty()
            && self
                .footer
                .is_some_and(|(n, _)| n == self.chunks.len() as u64)
            && (self.pieces.is_empty() || (self.pieces.len() == 1 && self.pieces[0].first == 1))
    }

    fn readable_keys(&self) -> Option<u64> {
        self.chunks.iter().map(|c| c.keys).sum()
    }
}

fn scan_segment_file(fs: &dyn Fs, dir: &Path, base: u128) -> Result<SegScan> {
    let (log_path, index_path) = segment_paths(dir, base);
    let file = fs.open(&log_path, OpenMode::Read)?;
    let len = file.size()?;
    let mut s = SegScan {
        base,
        log_path,
        index_path,
        len,
        pieces: Vec::new(),
        damage: Vec::new(),
        index: None,
    };
    if len < FILE_HEADER_BYTES {
        s.damage.push(Damage {
            pos: 0,
            bytes: len,
            reason: "short file header".into(),
        });
        return Ok(s);
    }
    let mut h = [0u8; FILE_HEADER_BYTES as usize];
    read_full_at(&*file, &mut h, 0)?;
    match decode_file_header(&h, LOG_MAGIC) {
        Ok(b) if b == base => {}
        Ok(_) => s.damage.push(Damage {
            pos: 0,
            bytes: FILE_HEADER_BYTES,
            reason: "header base key differs from file name".into(),
        }),
        Err(r) => s.damage.push(Damage {
            pos: 0,
            bytes: FILE_HEADER_BYTES,
            reason: r.into(),
        }),
    }
    // One plain pass first: a clean segment of consecutive units (the usual
    // case) is read once, and its index entries come with it.
    let whole = scan_whole(&file, base, len)?;
    let consecutive = match (whole.first_key, whole.last_key) {
        (Some(a), Some(b)) => b - a == u128::from(whole.records.saturating_sub(1)),
        _ => false,
    };
    if whole.bad.is_none() && consecutive && s.damage.is_empty() {
        s.pieces = vec![Piece {
            start: FILE_HEADER_BYTES,
            end: len,
            first: base,
            last: whole.last_key.unwrap_or(base),
            records: whole.records,
        }];
        s.index = Some(whole.index);
        return Ok(s);
    }
    let (pieces, damage) = scan_file(
        &file,
        FILE_HEADER_BYTES,
        len,
        Some(base),
        true,
        &mut |_, _, _| {},
    )?;
    s.pieces = pieces;
    s.damage.extend(damage);
    if s.damage.is_empty() {
        s.index = Some(whole.index);
    }
    if s.pieces.is_empty() && s.damage.is_empty() {
        s.damage.push(Damage {
            pos: FILE_HEADER_BYTES,
            bytes: 0,
            reason: "segment has no records".into(),
        });
    }
    Ok(s)
}

fn scan_base_file(
    fs: &dyn Fs,
    path: &Path,
    seq: u128,
    unit_keys: Option<UnitKeys<'_>>,
) -> Result<BaseScan> {
    let file = fs.open(path, OpenMode::Read)?;
    let size = file.size()?;
    let mut b = BaseScan {
        seq,
        path: path.to_path_buf(),
        size,
        footer: None,
        pieces: Vec::new(),
        damage: Vec::new(),
        chunks: Vec::new(),
    };
    if size < FILE_HEADER_BYTES {
        b.damage.push(Damage {
            pos: 0,
            bytes: size,
            reason: "base file too short for its header".into(),
        });
        return Ok(b);
    }
    let mut h = [0u8; FILE_HEADER_BYTES as usize];
    read_full_at(&*file, &mut h, 0)?;
    match decode_file_header(&h, BASE_MAGIC) {
        Ok(s) if s == seq => {}
        Ok(_) => b.damage.push(Damage {
            pos: 0,
            bytes: FILE_HEADER_BYTES,
            reason: "base header's start seq differs from the file name".into(),
        }),
        Err(r) => b.damage.push(Damage {
            pos: 0,
            bytes: FILE_HEADER_BYTES,
            reason: r.into(),
        }),
    }
    let mut end = size;
    if size >= FILE_HEADER_BYTES + BASE_FOOTER_BYTES {
        let mut f = [0u8; BASE_FOOTER_BYTES as usize];
        let at = size - BASE_FOOTER_BYTES;
        read_full_at(&*file, &mut f, at)?;
        if f[36..40] == FOOTER_MAGIC
            && crc32c::crc32c(&f[0..32]) == u32::from_le_bytes([f[32], f[33], f[34], f[35]])
        {
            let u = |i: usize| {
                let mut x = [0u8; 8];
                x.copy_from_slice(&f[i..i + 8]);
                u64::from_le_bytes(x)
            };
            b.footer = Some((u(0), u(8)));
            end = at;
        }
    }
    let mut chunks = Vec::new();
    let mut short = Vec::new();
    let (pieces, damage) = scan_file(
        &file,
        FILE_HEADER_BYTES,
        end,
        Some(1),
        true,
        &mut |pos, _no, value| {
            if value.len() < 16 {
                short.push(pos);
                return;
            }
            let keys = unit_keys
                .and_then(|f| f(&value[16..]))
                .map(|k| k.len() as u64);
            chunks.push(Chunk {
                pos,
                end: pos + RECORD_HEADER_BYTES + 16 + value.len() as u64,
                keys,
            });
        },
    )?;
    b.pieces = pieces;
    b.damage.extend(damage);
    for pos in short {
        b.damage.push(Damage {
            pos,
            bytes: 0,
            reason: "base chunk too short".into(),
        });
    }
    if b.footer.is_none() {
        let at = size
            .saturating_sub(BASE_FOOTER_BYTES)
            .max(FILE_HEADER_BYTES);
        if !b.damage.iter().any(|d| d.pos <= at && at < d.pos + d.bytes) {
            b.damage.push(Damage {
                pos: at,
                bytes: size - at,
                reason: "missing or damaged base footer (incomplete base)".into(),
            });
        }
    } else if let Some((n, _)) = b.footer {
        if b.damage.is_empty() && n != chunks.len() as u64 {
            b.damage.push(Damage {
                pos: end,
                bytes: BASE_FOOTER_BYTES,
                reason: format!("footer says {n} chunks, file holds {}", chunks.len()),
            });
        }
    }
    b.damage.sort_by_key(|d| d.pos);
    b.chunks = chunks;
    Ok(b)
}

/// Items of the log in order, for the runs and for "what lies around this
/// damage".
#[derive(Clone, Copy)]
struct Flat {
    first: u128,
    last: u128,
    seg: usize,
    start: u64,
    end: u64,
    /// Follows the previous piece with no damage and no missing seq between.
    joined: bool,
}

fn flatten(segs: &[SegScan]) -> Vec<Flat> {
    let mut out: Vec<Flat> = Vec::new();
    let mut clean_tail = false; // the previous piece ran to its segment's end
    for (si, s) in segs.iter().enumerate() {
        for (i, p) in s.pieces.iter().enumerate() {
            let clean_head =
                i == 0 && p.start == FILE_HEADER_BYTES && !s.damage.iter().any(|d| d.pos < p.start);
            let joined = clean_tail
                && clean_head
                && out
                    .last()
                    .is_some_and(|f| f.last.checked_add(1) == Some(p.first));
            out.push(Flat {
                first: p.first,
                last: p.last,
                seg: si,
                start: p.start,
                end: p.end,
                joined,
            });
            clean_tail = i + 1 == s.pieces.len()
                && p.end == s.len
                && !s.damage.iter().any(|d| d.pos >= p.end);
        }
        if s.pieces.is_empty() {
            clean_tail = false;
        }
    }
    out
}

/// The last unit of the unbroken run from `start` (`start - 1` when unit
/// `start` is not in the log).
fn reach(flat: &[Flat], start: u128) -> u128 {
    let Some(i) = flat
        .iter()
        .position(|f| f.first <= start && start <= f.last)
    else {
        return start - 1;
    };
    let mut r = flat[i].last;
    for f in &flat[i + 1..] {
        if !f.joined {
            break;
        }
        r = f.last;
    }
    r
}

/// Readable keys just before and just after a position of the log.
fn neighbours(segs: &[SegScan], seg: usize, pos: u64) -> (Option<u128>, Option<u128>) {
    let mut before = None;
    let mut after = None;
    for (j, s) in segs.iter().enumerate() {
        for p in &s.pieces {
            if j < seg || (j == seg && p.end <= pos) {
                before = Some(p.last);
            } else if after.is_none() {
                after = Some(p.first);
            }
        }
    }
    (before, after)
}

/// What a removed byte range of a segment held, and whether recovery loses it.
#[derive(Default)]
struct Region {
    lost_records: u64,
    lost_range: Option<(u128, u128)>,
    covered_records: u64,
    lost_bytes: u64,
    covered_bytes: u64,
    /// Seqs the lost damaged bytes may have held.
    lost_gaps: Vec<String>,
}

fn widen(r: &mut Option<(u128, u128)>, a: u128, b: u128) {
    *r = Some(match *r {
        None => (a, b),
        Some((x, y)) => (x.min(a), y.max(b)),
    });
}

/// Totals of a removed range `[from, to)` of segment `si`, given the kept
/// run up to `r` starting at `s`.
fn region(segs: &[SegScan], si: usize, from: u64, to: u64, s: u128, r: u128) -> Region {
    let seg = &segs[si];
    let mut out = Region::default();
    for p in &seg.pieces {
        if p.end <= from || p.start >= to {
            continue;
        }
        // A piece cut at `r` contributes its records after `r`.
        let (first, last) = if p.start < from {
            (r.saturating_add(1), p.last)
        } else {
            (p.first, p.last)
        };
        if last < first {
            continue;
        }
        let n = (last - first).saturating_add(1) as u64;
        if first > r {
            out.lost_records += n;
            widen(&mut out.lost_range, first, last);
        } else {
            out.covered_records += n;
        }
    }
    for d in &seg.damage {
        if !(d.pos < to && (d.pos >= from || d.pos + d.bytes > from)) {
            continue;
        }
        let (prev, next) = neighbours(segs, si, d.pos);
        if next.is_some_and(|n| n <= s) {
            out.covered_bytes += d.bytes;
        } else {
            out.lost_bytes += d.bytes;
            let from_seq = prev.map_or(1, |p| p.saturating_add(1));
            out.lost_gaps.push(match next {
                Some(n) if n > from_seq.saturating_add(1) => format!("units {from_seq}..{}", n - 1),
                Some(n) if n == from_seq.saturating_add(1) => format!("unit {from_seq}"),
                Some(_) => "no unit (bytes between consecutive units)".into(),
                None => format!("units from {from_seq} on, if any"),
            });
        }
    }
    out
}

/// Distinct keys touched by the records of `[from, to)` with key > `after`.
fn count_keys(
    fs: &dyn Fs,
    seg: &SegScan,
    from: u64,
    to: u64,
    after: u128,
    unit_keys: UnitKeys<'_>,
) -> Result<Option<u64>> {
    let file = fs.open(&seg.log_path, OpenMode::Read)?;
    let mut keys = HashSet::new();
    let mut ok = true;
    for p in &seg.pieces {
        if p.end <= from || p.start >= to {
            continue;
        }
        let mut sc = Scanner::new(file.clone(), p.start, p.end);
        while let Scanned::Record { key, value, .. } = sc.next_record()? {
            if key <= after {
                continue;
            }
            match unit_keys(value) {
                Some(ks) => keys.extend(ks),
                None => ok = false,
            }
        }
    }
    Ok(ok.then_some(keys.len() as u64))
}

/// End offset of the record with key `k` inside piece `p`.
fn end_of_key(fs: &dyn Fs, seg: &SegScan, p: &Piece, k: u128) -> Result<u64> {
    let file = fs.open(&seg.log_path, OpenMode::Read)?;
    let mut sc = Scanner::new(file, p.start, p.end);
    while let Scanned::Record { key, next, .. } = sc.next_record()? {
        if key == k {
            return Ok(next);
        }
    }
    Ok(p.start)
}

/// Writes `path` (through a temp file) as a log segment of base `base` with
/// the record bytes `[from, to)` of `src`, and its index.
fn write_segment(
    fs: &dyn Fs,
    src: &Path,
    from: u64,
    to: u64,
    base: u128,
    dir: &Path,
) -> Result<PathBuf> {
    let (log_path, index_path) = segment_paths(dir, base);
    let f = fs.open(src, OpenMode::Read)?;
    let mut bytes = vec![0u8; (to - from) as usize];
    let got = read_full_at(&*f, &mut bytes, from)?;
    bytes.truncate(got);
    let mut out = encode_file_header(LOG_MAGIC, base).to_vec();
    out.extend_from_slice(&bytes);
    drop(f);
    atomic_write_with(fs, &log_path, &out)?;
    let file = fs.open(&log_path, OpenMode::Read)?;
    let len = file.size()?;
    let scan = scan_whole(&file, base, len)?;
    atomic_write_with(fs, &index_path, &encode_index(base, &scan.index))?;
    Ok(log_path)
}

/// Rewrites a damaged base with its readable chunks.
fn rewrite_base(fs: &dyn Fs, b: &BaseScan) -> Result<u64> {
    let src = fs.open(&b.path, OpenMode::Read)?;
    let tmp = b.path.with_extension("base.tmp");
    let out = fs.open(&tmp, OpenMode::CreateTruncate)?;
    let mut buf = encode_file_header(BASE_MAGIC, b.seq).to_vec();
    let mut pos = 0u64;
    let mut max_captured = b.seq;
    let mut keys = 0u64;
    let mut n = 0u64;
    for c in &b.chunks {
        let mut rec = vec![0u8; (c.end - c.pos) as usize];
        read_full_at(&*src, &mut rec, c.pos)?;
        if let Decoded::Record { value, .. } = decode_record(&rec) {
            let mut s = [0u8; 16];
            s.copy_from_slice(&value[..16]);
            max_captured = max_captured.max(u128::from_le_bytes(s));
            n += 1;
            keys += c.keys.unwrap_or(0);
            encode_record(&mut buf, u128::from(n), value);
        }
        if buf.len() >= 1 << 20 {
            out.write_all_at(&buf, pos)?;
            pos += buf.len() as u64;
            buf.clear();
        }
    }
    buf.extend_from_slice(&footer_bytes(n, keys, max_captured));
    out.write_all_at(&buf, pos)?;
    out.sync_data()?;
    drop(out);
    fs.rename(&tmp, &b.path)?;
    Ok(n)
}

fn remove_segment(fs: &dyn Fs, s: &SegScan) -> Result<()> {
    fs.remove_file(&s.log_path)?;
    if fs.exists(&s.index_path) {
        fs.remove_file(&s.index_path)?;
    }
    Ok(())
}

/// Reports a removed range of a WAL segment (lost or covered).
#[allow(clippy::too_many_arguments)]
fn report_region(
    fs: &dyn Fs,
    out: &mut dyn Write,
    c: &mut LogCheck,
    segs: &[SegScan],
    si: usize,
    from: u64,
    to: u64,
    start: u128,
    r: u128,
    unit_keys: Option<UnitKeys<'_>>,
) -> Result<()> {
    if to <= from {
        return Ok(());
    }
    let seg = &segs[si];
    let g = region(segs, si, from, to, start, r);
    if g.lost_records == 0 && g.lost_bytes == 0 {
        writeln!(
            out,
            "removed: {} from offset {from}: {} bytes: {} units and {} unreadable bytes before seq {start}, which recovery does not need",
            seg.log_path.display(),
            to - from,
            g.covered_records,
            g.covered_bytes
        )?;
        return Ok(());
    }
    let keys = match unit_keys {
        Some(f) if g.lost_records > 0 => count_keys(fs, seg, from, to, r, f)?,
        Some(_) => Some(0),
        None => None,
    };
    let mut detail = String::new();
    if let Some((a, b)) = g.lost_range {
        detail.push_str(&format!(
            "{} readable units (seq {a}..{b}) touching {} keys",
            g.lost_records,
            keys.map_or("an uncounted number of".into(), |k| k.to_string())
        ));
    }
    if g.lost_bytes > 0 {
        if !detail.is_empty() {
            detail.push_str(", ");
        }
        detail.push_str(&format!(
            "{} unreadable bytes ({})",
            g.lost_bytes,
            g.lost_gaps.join(", ")
        ));
    }
    if g.covered_records > 0 || g.covered_bytes > 0 {
        detail.push_str(&format!(
            "; also {} units and {} unreadable bytes before seq {start} (not needed)",
            g.covered_records, g.covered_bytes
        ));
    }
    drop_line(
        out,
        c,
        Dropped {
            file: seg.log_path.clone(),
            offset: from,
            bytes: to - from,
            records: Some(g.lost_records),
            unreadable_bytes: g.lost_bytes,
            keys,
            detail,
        },
    )
}

/// Compares a clean segment's index with the one its scan rebuilt.
fn clean_index(
    fs: &dyn Fs,
    out: &mut dyn Write,
    c: &mut LogCheck,
    s: &SegScan,
    repair: bool,
) -> Result<()> {
    match &s.index {
        Some(entries) => compare_index(
            fs,
            out,
            c,
            &s.index_path,
            &encode_index(s.base, entries),
            repair,
        ),
        None => check_index(fs, out, c, &s.log_path, &s.index_path, s.base, repair),
    }
}

/// Checks (and with `repair`, repairs) the keyspace WAL in `dir`.
pub(crate) fn check_wal(
    fs: &dyn Fs,
    dir: &Path,
    repair: bool,
    unit_keys: Option<UnitKeys<'_>>,
    out: &mut dyn Write,
) -> Result<LogCheck> {
    let mut c = LogCheck::default();
    let mut segs: Vec<SegScan> = Vec::new();
    let mut top: Option<u128> = None;
    for base in list_segments(fs, dir, None)? {
        let mut s = scan_segment_file(fs, dir, base)?;
        c.files += 1;
        c.segments += 1;
        c.bytes += s.len;
        if let (Some(t), Some(p)) = (top, s.pieces.first()) {
            if p.first <= t {
                // Keys must increase across segments: this one cannot be placed.
                s.damage = vec![Damage {
                    pos: 0,
                    bytes: s.len,
                    reason: "segment base key not above the previous segment's last key".into(),
                }];
                s.pieces.clear();
            }
        }
        c.records += s.pieces.iter().map(|p| p.records).sum::<u64>();
        if let Some(p) = s.pieces.last() {
            top = Some(p.last);
        }
        segs.push(s);
    }
    let n_segs = segs.len();
    for (i, s) in segs.iter().enumerate() {
        for (k, d) in s.damage.iter().enumerate() {
            let mut reason = d.reason.clone();
            if i + 1 == n_segs
                && k + 1 == s.damage.len()
                && d.pos + d.bytes == s.len
                && d.pos >= FILE_HEADER_BYTES
            {
                reason.push_str(" (torn tail)");
            }
            problem(out, &mut c, &s.log_path, d.pos, reason, true)?;
        }
    }
    let mut bases = Vec::new();
    let mut names: Vec<(u128, String)> = fs
        .list_dir(dir)?
        .into_iter()
        .filter(|e| !e.is_dir)
        .filter_map(|e| parse_base_name(&e.name).map(|s| (s, e.name)))
        .collect();
    names.sort();
    for (seq, name) in names {
        let b = scan_base_file(fs, &dir.join(name), seq, unit_keys)?;
        c.files += 1;
        if b.complete() {
            writeln!(
                out,
                "base {}: {} chunks, ok",
                b.path.display(),
                b.chunks.len()
            )?;
        } else {
            for d in &b.damage {
                problem(out, &mut c, &b.path, d.pos, d.reason.clone(), true)?;
            }
        }
        bases.push(b);
    }
    // Missing units: seqs follow each other in the WAL, so a jump is units
    // lost, unless it ends at the newest base's start (units before a base
    // are not needed; a crash can lose unsynced ones the base already holds).
    let flat = flatten(&segs);
    let newest = bases.last().map(|b: &BaseScan| b.seq);
    let mut expect = match newest {
        Some(seq) => flat.first().map(|f| f.first.min(seq)),
        None => Some(1),
    };
    let mut prev: Option<&Flat> = None;
    for f in &flat {
        // Damage between the two pieces is reported already.
        let damage_between = prev.is_some_and(|p| {
            segs[p.seg..=f.seg].iter().enumerate().any(|(k, s)| {
                let j = p.seg + k;
                s.damage
                    .iter()
                    .any(|d| (j > p.seg || d.pos >= p.end) && (j < f.seg || d.pos < f.start))
            })
        });
        prev = Some(f);
        if damage_between {
            expect = Some(f.last.saturating_add(1));
            continue;
        }
        if let Some(e) = expect.filter(|&e| f.first > e && newest.is_none_or(|s| f.first > s)) {
            let from = newest.map_or(e, |s| e.max(s));
            problem(
                out,
                &mut c,
                &segs[f.seg].log_path,
                f.start,
                format!(
                    "units {from}..{} missing before this record (a gap in the log)",
                    f.first - 1
                ),
                true,
            )?;
        }
        expect = Some(f.last.saturating_add(1));
    }
    let damaged = c.problems.iter().any(|p| p.data);
    if !(repair && damaged) {
        // Indexes of clean segments (derived data).
        for s in segs.iter().filter(|s| s.damage.is_empty()) {
            clean_index(fs, out, &mut c, s, repair)?;
        }
        return Ok(c);
    }

    // Choose the recovery.
    let mut best: (u128, bool, u128, Option<usize>) = (reach(&flat, 1), true, 1, None);
    for (i, b) in bases.iter().enumerate() {
        if b.seq == 0 {
            continue;
        }
        let cand = (reach(&flat, b.seq), b.complete(), b.seq, Some(i));
        if (cand.0, cand.1, cand.2, cand.3.is_some()) > (best.0, best.1, best.2, best.3.is_some()) {
            best = cand;
        }
    }
    let (r, _, start, chosen) = best;
    match chosen {
        Some(i) => writeln!(
            out,
            "recovery: base {} then units {start}..{r}",
            bases[i].path.display()
        )?,
        None => writeln!(
            out,
            "recovery: the empty keyspace at seq 1, then units 1..{r}"
        )?,
    }

    // Bases.
    for (i, b) in bases.iter().enumerate() {
        if Some(i) == chosen {
            if !b.complete() {
                let kept = rewrite_base(fs, b)?;
                let lost_chunks = b.footer.map(|(n, _)| n.saturating_sub(kept));
                let lost_keys = match (b.footer, b.readable_keys()) {
                    (Some((_, total)), Some(k)) => Some(total.saturating_sub(k)),
                    _ => None,
                };
                let first = b.damage.first().map_or(0, |d| d.pos);
                let bytes: u64 = b.damage.iter().map(|d| d.bytes).sum();
                // Without a footer, the chunk numbers missing between the
                // readable chunks are a lower bound.
                let missing: u128 = b
                    .pieces
                    .iter()
                    .scan(0u128, |prev, p| {
                        let gap = p.first.saturating_sub(prev.saturating_add(1));
                        *prev = p.last;
                        Some(gap)
                    })
                    .sum();
                let detail = format!(
                    "{} unreadable chunks holding {} keys (the base keeps its {kept} readable chunks{})",
                    lost_chunks.map_or(
                        format!("at least {missing} (footer unreadable)"),
                        |n| n.to_string()
                    ),
                    lost_keys.map_or("an unknown number of".into(), |n| n.to_string()),
                    b.readable_keys().map_or(String::new(), |k| format!(", {k} keys"))
                );
                drop_line(
                    out,
                    &mut c,
                    Dropped {
                        file: b.path.clone(),
                        offset: first,
                        bytes,
                        records: lost_chunks,
                        unreadable_bytes: bytes,
                        keys: lost_keys,
                        detail,
                    },
                )?;
            }
            continue;
        }
        if b.seq < start && b.complete() {
            continue;
        }
        fs.remove_file(&b.path)?;
        if b.seq < start || r.saturating_add(1) >= b.seq {
            writeln!(
                out,
                "removed: {}: {} bytes (the state it held is rebuilt by the recovery above; nothing lost)",
                b.path.display(),
                b.size
            )?;
        } else {
            let detail = format!(
                "the whole base: {} readable chunks holding {} keys, {} unreadable bytes",
                b.chunks.len(),
                b.readable_keys()
                    .map_or("an uncounted number of".into(), |k| k.to_string()),
                b.damage.iter().map(|d| d.bytes).sum::<u64>()
            );
            drop_line(
                out,
                &mut c,
                Dropped {
                    file: b.path.clone(),
                    offset: 0,
                    bytes: b.size,
                    records: Some(b.chunks.len() as u64),
                    unreadable_bytes: b.damage.iter().map(|d| d.bytes).sum(),
                    keys: b.readable_keys(),
                    detail,
                },
            )?;
        }
    }

    // Log segments.
    for si in 0..segs.len() {
        let s = &segs[si];
        let kept: Vec<&Piece> = s.pieces.iter().filter(|p| p.first <= r).collect();
        let whole_clean = s.damage.is_empty() && s.pieces.iter().all(|p| p.last <= r);
        if whole_clean {
            clean_index(fs, out, &mut c, s, true)?;
            continue;
        }
        let Some(last) = kept.last() else {
            report_region(fs, out, &mut c, &segs, si, 0, s.len, start, r, unit_keys)?;
            remove_segment(fs, s)?;
            continue;
        };
        let b_end = if last.last <= r {
            last.end
        } else {
            end_of_key(fs, s, last, r)?
        };
        let a = match s.damage.iter().rfind(|d| d.pos < b_end) {
            None => FILE_HEADER_BYTES,
            Some(d) => kept
                .iter()
                .map(|p| p.start)
                .find(|&p| p >= d.pos + d.bytes)
                .unwrap_or(b_end),
        };
        report_region(
            fs, out, &mut c, &segs, si, b_end, s.len, start, r, unit_keys,
        )?;
        if !s.damage.iter().any(|d| d.pos < b_end) {
            let file = fs.open(&s.log_path, OpenMode::ReadWrite)?;
            file.set_len(b_end)?;
            file.sync_data()?;
            let scan = scan_whole(&file, s.base, b_end)?;
            atomic_write_with(fs, &s.index_path, &encode_index(s.base, &scan.index))?;
        } else {
            report_region(fs, out, &mut c, &segs, si, 0, a, start, r, unit_keys)?;
            let first_key = kept
                .iter()
                .find(|p| p.start == a)
                .map_or(s.base, |p| p.first);
            // The new segment is complete before the old one goes.
            let new = write_segment(fs, &s.log_path, a, b_end, first_key, dir)?;
            if new != s.log_path {
                remove_segment(fs, s)?;
            }
            writeln!(
                out,
                "rewrote: {} as {} (its records from offset {a})",
                s.log_path.display(),
                new.display()
            )?;
        }
    }
    fs.sync_dir(dir)?;
    Ok(c)
}
