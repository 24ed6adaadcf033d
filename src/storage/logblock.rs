//! Template-compressed blocks of log entries: the codec of the compressed
//! sealed segments (`clog`) of streams LOGPARSE INGEST writes (layout byte by byte in
//! docs/format.md, "Template-compressed entry blocks").
//!
//! A block holds a run of entry-log records (`(id, entry value)`, the value
//! as `codec::encode_entry` lays it out) column by column: ids as deltas,
//! each entry's field names as an index into the block's shapes (distinct
//! name lists), then one column per (shape, field) of the values. A
//! `content` field is split at single spaces and grouped by (template id,
//! token count): tokens equal in every line of a group are stored once (the
//! template), the others as one column per position (the variables). A
//! column is stored by what its values are: ISO times as offsets from the
//! entry's id time, fixed-width digit strings and integers as deltas, few
//! distinct values as a dictionary, the rest as lengths then bytes. The
//! whole payload then goes through zstd, and a CRC32C covers the block.
//!
//! `decode(encode(r)) == r` byte for byte for any records whose values are
//! valid entry encodings (`encode` refuses others); `decode` checks every
//! length against the bytes present, so a damaged block is an error, never
//! a panic or an unbounded allocation.

use crate::storage::bytes::Malformed;
use std::collections::HashMap;

// A record key is a stream id, `ms << 64 | seq` (as `stream::id` builds it;
// `storage` does not import `stream`).
fn make_id(ms: u64, seq: u64) -> u128 {
    (u128::from(ms) << 64) | u128::from(seq)
}

fn id_ms(id: u128) -> u64 {
    (id >> 64) as u64
}

fn id_seq(id: u128) -> u64 {
    id as u64
}

/// First bytes of a block.
pub const BLOCK_MAGIC: &[u8; 4] = b"RLB1";
/// Bytes of the block header: magic, crc, entries, raw and zstd lengths.
pub const BLOCK_HEADER_BYTES: usize = 20;
/// Largest uncompressed payload a block may declare.
pub const RAW_BYTES_MAX: u32 = 1 << 28;
/// zstd level of blocks (sealing runs in the background).
pub const ZSTD_LEVEL: i32 = 19;
/// Records a block holds at most.
pub const BLOCK_ENTRIES: usize = 8192;

const KIND_RAW: u8 = 0;
const KIND_DICT: u8 = 1;
const KIND_DIGITS: u8 = 2;
const KIND_INT: u8 = 3;
const KIND_TIME: u8 = 4;

fn put_uv(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_sv(out: &mut Vec<u8>, v: i64) {
    put_uv(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uv(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A reader of a block's payload.
struct Cur<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(Malformed("block payload truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn uv(&mut self) -> Result<u64, Malformed> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                if shift == 63 && b > 1 {
                    break;
                }
                return Ok(v);
            }
        }
        Err(Malformed("bad varint in block"))
    }

    fn sv(&mut self) -> Result<i64, Malformed> {
        let u = self.uv()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A count of items that each take at least one byte.
    fn count(&mut self) -> Result<usize, Malformed> {
        let n = self.uv()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.buf.len() - self.pos)
            .ok_or(Malformed("count beyond the block"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let n = self.uv()?;
        let n = usize::try_from(n).map_err(|_| Malformed("length beyond the block"))?;
        self.take(n)
    }
}

/// An entry's field names and values, borrowed from its encoding.
pub(crate) type Fields<'a> = (Vec<&'a [u8]>, Vec<&'a [u8]>);

/// The field names and values of an entry value (`codec::encode_entry`).
pub(crate) fn split_entry(v: &[u8]) -> Option<Fields<'_>> {
    let mut r = crate::storage::bytes::Reader::new(v);
    let n = r.u32().ok()? as usize;
    if n > v.len() / 8 {
        return None;
    }
    let (mut names, mut vals) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let len = r.u32().ok()? as usize;
        names.push(r.take(len).ok()?);
        let len = r.u32().ok()? as usize;
        vals.push(r.take(len).ok()?);
    }
    r.is_empty().then_some((names, vals))
}

fn put_field(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// The zone suffix (`+hh:mm` / `-hh:mm`) every value of a column ends
/// with, if they all end with the same one.
fn common_zone<'v>(vals: &[&'v [u8]]) -> Option<&'v [u8]> {
    let first = vals.first()?;
    let z = first.get(first.len().checked_sub(6)?..)?;
    let zone_like = matches!(z[0], b'+' | b'-')
        && z[1].is_ascii_digit()
        && z[2].is_ascii_digit()
        && z[3] == b':'
        && z[4].is_ascii_digit()
        && z[5].is_ascii_digit();
    (zone_like && vals.iter().all(|v| v.ends_with(z))).then_some(z)
}

/// `YYYY-MM-DDTHH:MM:SS[.f]` (as INGEST writes `ts`: chrono's `%.f`, 0, 3,
/// 6 or 9 digits) as ns since the epoch, when writing it back gives the
/// same bytes.
fn iso_to_ns(v: &[u8]) -> Option<i64> {
    if !(19..=29).contains(&v.len()) {
        return None;
    }
    let s = std::str::from_utf8(v).ok()?;
    let d = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let ns = d.and_utc().timestamp_nanos_opt()?;
    let mut back = Vec::with_capacity(29);
    ns_to_iso(ns, &mut back);
    (back == v).then_some(ns)
}

fn ns_to_iso(ns: i64, out: &mut Vec<u8>) {
    use std::io::Write;
    let d = chrono::DateTime::from_timestamp_nanos(ns).naive_utc();
    let _ = write!(out, "{}", d.format("%Y-%m-%dT%H:%M:%S%.f"));
}

/// Fixed-width ASCII digit strings (1..=18 digits) as numbers.
fn digits(v: &[u8], width: usize) -> Option<i64> {
    if v.len() != width || !(1..=18).contains(&width) || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0i64, |a, &d| a * 10 + i64::from(d - b'0')))
}

/// A decimal integer written canonically (as `itoa` writes it).
fn canonical_int(v: &[u8]) -> Option<i64> {
    let n: i64 = std::str::from_utf8(v).ok()?.parse().ok()?;
    (itoa::Buffer::new().format(n).as_bytes() == v).then_some(n)
}

/// Writes a column of values; `ms` is each value's entry id time.
fn put_column(out: &mut Vec<u8>, vals: &[&[u8]], ms: &[u64]) {
    let n = vals.len();
    let zone = common_zone(vals);
    let cut = zone.map_or(0, <[u8]>::len);
    if n > 0 {
        let times = vals.iter().map(|v| iso_to_ns(&v[..v.len() - cut]));
        if let Some(ts) = times.collect::<Option<Vec<_>>>() {
            out.push(KIND_TIME);
            put_bytes(out, zone.unwrap_or_default());
            for (t, m) in ts.iter().zip(ms) {
                put_sv(out, t.wrapping_sub((*m as i64).wrapping_mul(1_000_000)));
            }
            return;
        }
    }
    let mut dict: HashMap<&[u8], usize> = HashMap::new();
    for &v in vals {
        let k = dict.len();
        dict.entry(v).or_insert(k);
    }
    let numbers = |f: &dyn Fn(&[u8]) -> Option<i64>| -> Option<Vec<i64>> {
        if n == 0 {
            return None;
        }
        vals.iter().map(|v| f(v)).collect()
    };
    let deltas = |out: &mut Vec<u8>, xs: &[i64]| {
        let mut prev = 0i64;
        for &x in xs {
            put_sv(out, x.wrapping_sub(prev));
            prev = x;
        }
    };
    if dict.len() * 4 > n {
        let width = vals.first().map_or(0, |v| v.len());
        if let Some(xs) = numbers(&|v| digits(v, width)) {
            out.push(KIND_DIGITS);
            out.push(width as u8);
            deltas(out, &xs);
            return;
        }
        if let Some(xs) = numbers(&canonical_int) {
            out.push(KIND_INT);
            deltas(out, &xs);
            return;
        }
    }
    if dict.len() * 2 <= n {
        out.push(KIND_DICT);
        let mut words: Vec<&[u8]> = vec![&[]; dict.len()];
        for (w, &i) in &dict {
            words[i] = w;
        }
        put_uv(out, words.len() as u64);
        for w in &words {
            put_uv(out, w.len() as u64);
        }
        for w in &words {
            out.extend_from_slice(w);
        }
        for v in vals {
            put_uv(out, dict[v] as u64);
        }
        return;
    }
    out.push(KIND_RAW);
    for v in vals {
        put_uv(out, v.len() as u64);
    }
    for v in vals {
        out.extend_from_slice(v);
    }
}

/// Reads a column of `n` values (`ms`: each value's entry id time).
fn get_column(c: &mut Cur<'_>, n: usize, ms: &[u64]) -> Result<Vec<Vec<u8>>, Malformed> {
    let kind = c.u8()?;
    let mut out = Vec::with_capacity(n.min(c.buf.len()));
    let undelta = |c: &mut Cur<'_>| -> Result<Vec<i64>, Malformed> {
        let mut prev = 0i64;
        let mut xs = Vec::with_capacity(n.min(c.buf.len()));
        for _ in 0..n {
            prev = prev.wrapping_add(c.sv()?);
            xs.push(prev);
        }
        Ok(xs)
    };
    match kind {
        KIND_TIME => {
            let zone = c.bytes()?;
            for m in ms.iter().take(n) {
                let t = (*m as i64).wrapping_mul(1_000_000).wrapping_add(c.sv()?);
                let mut v = Vec::with_capacity(29 + zone.len());
                ns_to_iso(t, &mut v);
                v.extend_from_slice(zone);
                out.push(v);
            }
        }
        KIND_DIGITS => {
            let width = usize::from(c.u8()?);
            if !(1..=18).contains(&width) {
                return Err(Malformed("bad digit width in block"));
            }
            for x in undelta(c)? {
                let s = u64::try_from(x)
                    .ok()
                    .map(|x| format!("{x:0width$}"))
                    .filter(|s| s.len() == width)
                    .ok_or(Malformed("digits out of range in block"))?;
                out.push(s.into_bytes());
            }
        }
        KIND_INT => {
            for x in undelta(c)? {
                out.push(itoa::Buffer::new().format(x).as_bytes().to_vec());
            }
        }
        KIND_DICT => {
            let k = c.count()?;
            let lens = (0..k).map(|_| c.uv()).collect::<Result<Vec<_>, _>>()?;
            let mut words = Vec::with_capacity(k);
            for l in lens {
                let l = usize::try_from(l).map_err(|_| Malformed("length beyond the block"))?;
                words.push(c.take(l)?);
            }
            for _ in 0..n {
                let i = c.uv()?;
                let w = usize::try_from(i)
                    .ok()
                    .and_then(|i| words.get(i))
                    .ok_or(Malformed("dictionary index out of range in block"))?;
                out.push(w.to_vec());
            }
        }
        KIND_RAW => {
            let lens = (0..n).map(|_| c.uv()).collect::<Result<Vec<_>, _>>()?;
            for l in lens {
                let l = usize::try_from(l).map_err(|_| Malformed("length beyond the block"))?;
                out.push(c.take(l)?.to_vec());
            }
        }
        _ => return Err(Malformed("unknown column kind in block")),
    }
    if out.len() != n {
        return Err(Malformed("column shorter than its entries"));
    }
    Ok(out)
}

/// A content group: (template id, token count) and which tokens vary.
struct Group<'a> {
    tokens: Vec<&'a [u8]>,
    constant: Vec<bool>,
    /// Rows (positions in the shape's column) of its lines.
    rows: Vec<usize>,
}

/// Writes the `content` column of a shape: groups, then each line's
/// group, then each group's variable positions, column by column.
fn put_content(out: &mut Vec<u8>, vals: &[&[u8]], tids: Option<&[&[u8]]>, ms: &[u64]) {
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut by_key: HashMap<(&[u8], usize), usize> = HashMap::new();
    let mut which = Vec::with_capacity(vals.len());
    let split: Vec<Vec<&[u8]>> = vals
        .iter()
        .map(|v| v.split(|&b| b == b' ').collect())
        .collect();
    for (row, tokens) in split.iter().enumerate() {
        let tid: &[u8] = tids.map_or(&[], |t| t[row]);
        let g = *by_key.entry((tid, tokens.len())).or_insert_with(|| {
            groups.push(Group {
                constant: vec![true; tokens.len()],
                tokens: tokens.clone(),
                rows: Vec::new(),
            });
            groups.len() - 1
        });
        let grp = &mut groups[g];
        for (i, t) in tokens.iter().enumerate() {
            if grp.constant[i] && grp.tokens[i] != *t {
                grp.constant[i] = false;
            }
        }
        grp.rows.push(row);
        which.push(g);
    }
    put_uv(out, groups.len() as u64);
    for g in &groups {
        put_uv(out, g.tokens.len() as u64);
        for (t, &k) in g.tokens.iter().zip(&g.constant) {
            out.push(u8::from(k));
            if k {
                put_bytes(out, t);
            }
        }
    }
    for g in &which {
        put_uv(out, *g as u64);
    }
    for g in &groups {
        let gms: Vec<u64> = g.rows.iter().map(|&r| ms[r]).collect();
        for (i, _) in g.constant.iter().enumerate().filter(|(_, &k)| !k) {
            let col: Vec<&[u8]> = g.rows.iter().map(|&r| split[r][i]).collect();
            put_column(out, &col, &gms);
        }
    }
}

fn get_content(c: &mut Cur<'_>, n: usize, ms: &[u64]) -> Result<Vec<Vec<u8>>, Malformed> {
    let ng = c.count()?;
    // Per group: tokens (None: variable).
    let mut groups: Vec<Vec<Option<&[u8]>>> = Vec::with_capacity(ng);
    for _ in 0..ng {
        let nt = c.count()?;
        let mut t = Vec::with_capacity(nt);
        for _ in 0..nt {
            t.push(match c.u8()? {
                1 => Some(c.bytes()?),
                0 => None,
                _ => return Err(Malformed("bad token flag in block")),
            });
        }
        if nt == 0 {
            return Err(Malformed("content group without tokens in block"));
        }
        groups.push(t);
    }
    let mut which = Vec::with_capacity(n.min(c.buf.len()));
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); ng];
    for row in 0..n {
        let g = usize::try_from(c.uv()?)
            .ok()
            .filter(|&g| g < ng)
            .ok_or(Malformed("content group out of range in block"))?;
        rows[g].push(row);
        which.push(g);
    }
    // Per group, per variable position: the values in row order.
    let mut vars: Vec<Vec<std::vec::IntoIter<Vec<u8>>>> = Vec::with_capacity(ng);
    for (g, t) in groups.iter().enumerate() {
        let gms: Vec<u64> = rows[g].iter().map(|&r| ms[r]).collect();
        let mut cols = Vec::new();
        for _ in t.iter().filter(|x| x.is_none()) {
            cols.push(get_column(c, rows[g].len(), &gms)?.into_iter());
        }
        vars.push(cols);
    }
    let mut out = Vec::with_capacity(n.min(c.buf.len()));
    for g in which {
        let mut line = Vec::new();
        let mut var = 0;
        for (i, t) in groups[g].iter().enumerate() {
            if i > 0 {
                line.push(b' ');
            }
            match t {
                Some(t) => line.extend_from_slice(t),
                None => {
                    let v = vars[g][var]
                        .next()
                        .ok_or(Malformed("content column short in block"))?;
                    line.extend_from_slice(&v);
                    var += 1;
                }
            }
        }
        out.push(line);
    }
    Ok(out)
}

/// Encodes records (ascending ids, values valid entry encodings) as one
/// block; `None` when a value is not an entry encoding or the block would
/// exceed `RAW_BYTES_MAX`.
pub fn encode(records: &[(u128, &[u8])]) -> Option<Vec<u8>> {
    let mut p = Vec::new();
    put_uv(&mut p, records.len() as u64);
    let mut prev_ms = 0u64;
    let mut ms = Vec::with_capacity(records.len());
    for &(id, _) in records {
        let m = id_ms(id);
        put_uv(&mut p, m.checked_sub(prev_ms)?);
        put_uv(&mut p, id_seq(id));
        prev_ms = m;
        ms.push(m);
    }
    // Shapes: distinct field-name lists; rows per shape.
    let mut shapes: Vec<(Vec<&[u8]>, Vec<usize>)> = Vec::new();
    let mut shape_of: HashMap<Vec<&[u8]>, usize> = HashMap::new();
    let mut entries = Vec::with_capacity(records.len());
    for (row, &(_, v)) in records.iter().enumerate() {
        let (names, vals) = split_entry(v)?;
        let s = *shape_of.entry(names.clone()).or_insert_with(|| {
            shapes.push((names, Vec::new()));
            shapes.len() - 1
        });
        shapes[s].1.push(row);
        entries.push((s, vals));
    }
    put_uv(&mut p, shapes.len() as u64);
    for (names, _) in &shapes {
        put_uv(&mut p, names.len() as u64);
        for n in names {
            put_bytes(&mut p, n);
        }
    }
    for (s, _) in &entries {
        put_uv(&mut p, *s as u64);
    }
    for (names, rows) in &shapes {
        let sms: Vec<u64> = rows.iter().map(|&r| ms[r]).collect();
        let col = |f: usize| -> Vec<&[u8]> { rows.iter().map(|&r| entries[r].1[f]).collect() };
        let tid = names.iter().position(|n| *n == b"template_id").map(col);
        for (f, name) in names.iter().enumerate() {
            if *name == b"content" {
                put_content(&mut p, &col(f), tid.as_deref(), &sms);
            } else {
                put_column(&mut p, &col(f), &sms);
            }
        }
    }
    let raw_len = u32::try_from(p.len())
        .ok()
        .filter(|&l| l <= RAW_BYTES_MAX)?;
    let z = zstd::bulk::compress(&p, ZSTD_LEVEL).ok()?;
    let mut out = Vec::with_capacity(BLOCK_HEADER_BYTES + z.len());
    out.extend_from_slice(BLOCK_MAGIC);
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    out.extend_from_slice(&raw_len.to_le_bytes());
    out.extend_from_slice(&(z.len() as u32).to_le_bytes());
    out.extend_from_slice(&z);
    let crc = crc32c::crc32c(&out[8..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    Some(out)
}

/// The header of a block: (entries, raw payload bytes, whole block bytes),
/// after checking magic and lengths (not the CRC: `decode` does).
pub fn header(b: &[u8]) -> Result<(u32, u32, usize), Malformed> {
    if b.len() < BLOCK_HEADER_BYTES {
        return Err(Malformed("block header truncated"));
    }
    if &b[..4] != BLOCK_MAGIC {
        return Err(Malformed("bad block magic"));
    }
    let u = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let (n, raw, z) = (u(8), u(12), u(16));
    if raw > RAW_BYTES_MAX {
        return Err(Malformed("block payload too large"));
    }
    Ok((n, raw, BLOCK_HEADER_BYTES + z as usize))
}

/// Decodes a block (exactly the bytes `header` says it spans) into its
/// records: ids and entry values, as they were given to `encode`.
pub fn decode(b: &[u8]) -> Result<Vec<(u128, Vec<u8>)>, Malformed> {
    let (n, raw, len) = header(b)?;
    if b.len() != len {
        return Err(Malformed("block length mismatch"));
    }
    let crc = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    if crc32c::crc32c(&b[8..]) != crc {
        return Err(Malformed("block CRC mismatch"));
    }
    let p = zstd::bulk::decompress(&b[BLOCK_HEADER_BYTES..], raw as usize)
        .map_err(|_| Malformed("block does not decompress"))?;
    if p.len() != raw as usize {
        return Err(Malformed("block payload length mismatch"));
    }
    let mut c = Cur { buf: &p, pos: 0 };
    let count = c.count()?;
    if count != n as usize {
        return Err(Malformed("block entry count mismatch"));
    }
    let mut ids = Vec::with_capacity(count);
    let mut ms = Vec::with_capacity(count);
    let mut prev = 0u64;
    for _ in 0..count {
        let m = prev
            .checked_add(c.uv()?)
            .ok_or(Malformed("id out of range in block"))?;
        let seq = c.uv()?;
        let id = make_id(m, seq);
        if ids.last().is_some_and(|&l| l >= id) {
            return Err(Malformed("ids out of order in block"));
        }
        ids.push(id);
        ms.push(m);
        prev = m;
    }
    let nshapes = c.count()?;
    let mut shapes: Vec<Vec<&[u8]>> = Vec::with_capacity(nshapes);
    for _ in 0..nshapes {
        let nf = c.count()?;
        let names = (0..nf).map(|_| c.bytes()).collect::<Result<Vec<_>, _>>()?;
        shapes.push(names);
    }
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); nshapes];
    let mut shape_of = Vec::with_capacity(count);
    for row in 0..count {
        let s = usize::try_from(c.uv()?)
            .ok()
            .filter(|&s| s < nshapes)
            .ok_or(Malformed("shape out of range in block"))?;
        rows[s].push(row);
        shape_of.push(s);
    }
    // Per row: its values, filled shape by shape.
    let mut vals: Vec<Vec<Vec<u8>>> = vec![Vec::new(); count];
    for (s, names) in shapes.iter().enumerate() {
        let sms: Vec<u64> = rows[s].iter().map(|&r| ms[r]).collect();
        for name in names {
            let col = if *name == b"content" {
                get_content(&mut c, rows[s].len(), &sms)?
            } else {
                get_column(&mut c, rows[s].len(), &sms)?
            };
            for (&r, v) in rows[s].iter().zip(col) {
                vals[r].push(v);
            }
        }
    }
    if c.pos != p.len() {
        return Err(Malformed("trailing bytes in block"));
    }
    let mut out = Vec::with_capacity(count);
    for (row, id) in ids.into_iter().enumerate() {
        let names = &shapes[shape_of[row]];
        let mut v = Vec::new();
        v.extend_from_slice(&(names.len() as u32).to_le_bytes());
        for (name, val) in names.iter().zip(&vals[row]) {
            put_field(&mut v, name);
            put_field(&mut v, val);
        }
        out.push((id, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pairs: &[&[u8]]) -> Vec<u8> {
        let mut v = ((pairs.len() / 2) as u32).to_le_bytes().to_vec();
        for p in pairs {
            put_field(&mut v, p);
        }
        v
    }

    fn round_trip(recs: &[(u128, Vec<u8>)]) -> Vec<u8> {
        let r: Vec<(u128, &[u8])> = recs.iter().map(|(k, v)| (*k, &v[..])).collect();
        let b = encode(&r).expect("encodes");
        assert_eq!(decode(&b).expect("decodes"), recs);
        b
    }

    fn sample() -> Vec<(u128, Vec<u8>)> {
        let mut recs = Vec::new();
        for i in 0..300u64 {
            let ms = 1_226_262_975_000 + i * 37;
            let ts = if i % 7 == 0 {
                format!(
                    "2008-11-09T20:{:02}:{:02}.{:03}",
                    i % 60,
                    i % 59,
                    i % 1000 + 1
                )
            } else {
                format!("2008-11-09T20:{:02}:{:02}", i % 60, i % 59)
            };
            let content = match i % 3 {
                0 => format!(
                    "PacketResponder {} for block blk_{} terminating",
                    i % 3,
                    i * 7919
                ),
                1 => format!(
                    "Received block  blk_-{} of size {} from /10.0.0.{}",
                    i,
                    67108864 - i,
                    i % 9
                ),
                _ => format!("odd line {i} with  double  spaces and trailing "),
            };
            let tid = (i % 3 + 1).to_string();
            let pid = format!("{:03}", i % 40);
            let e = entry(&[
                b"ts",
                ts.as_bytes(),
                b"level",
                if i % 11 == 0 { b"WARN" } else { b"INFO" },
                b"content",
                content.as_bytes(),
                b"template_id",
                tid.as_bytes(),
                b"Pid",
                pid.as_bytes(),
                b"Seq",
                (i as i64 - 150).to_string().as_bytes(),
            ]);
            recs.push((make_id(ms, i % 2), e));
        }
        // Other shapes: an XADD'd entry, an empty one, odd values.
        recs.push((
            make_id(1_226_263_000_000, 0),
            entry(&[b"raw", b"\x00\xff", b"content", b""]),
        ));
        recs.push((make_id(1_226_263_000_001, 0), entry(&[])));
        recs.push((
            make_id(1_226_263_000_002, 5),
            entry(&[b"ts", b"1900-01-01T00:00:00", b"n", b"-0"]),
        ));
        // Times with microseconds and a zone (BGL, HPC, Thunderbird).
        for (i, ts) in [
            &b"2005-06-03T15:42:50.675872+00:00"[..],
            b"2005-06-03T15:42:50.675873+00:00",
            b"2005-06-03T15:42:51.000000001+00:00",
            b"2005-06-03T15:42:51+00:00",
        ]
        .iter()
        .enumerate()
        {
            recs.push((
                make_id(1_226_263_001_000 + i as u64, 0),
                entry(&[b"ts", ts]),
            ));
        }
        recs
    }

    #[test]
    fn round_trips_exactly_and_compresses() {
        let recs = sample();
        let b = round_trip(&recs);
        let raw: usize = recs.iter().map(|r| r.1.len() + 16).sum();
        assert!(b.len() * 4 < raw, "{} of {raw}", b.len());
        round_trip(&recs[..1]);
        round_trip(&[]);
    }

    #[test]
    fn refuses_values_that_are_not_entries() {
        assert!(encode(&[(1, &b"\x01\x00\x00\x00"[..])]).is_none());
        assert!(encode(&[(1, &b""[..])]).is_none());
    }

    #[test]
    fn damage_is_an_error() {
        let recs = sample();
        let r: Vec<(u128, &[u8])> = recs.iter().map(|(k, v)| (*k, &v[..])).collect();
        let b = encode(&r).unwrap();
        for i in (0..b.len()).step_by(7) {
            let mut d = b.clone();
            d[i] ^= 0x41;
            assert!(decode(&d).is_err(), "flip at {i}");
        }
        assert!(decode(&b[..b.len() - 1]).is_err());
        assert!(decode(&b[..3]).is_err());
    }

    #[test]
    fn hostile_payloads_are_errors() {
        // A valid CRC over garbage payloads: every reader bounds its counts.
        for payload in [
            &[0xff, 0xff, 0xff, 0xff, 0x0f][..],
            &[1, 0, 0, 1, 0xff, 0xff, 0xff, 0x7f],
            &[2, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 9],
            &[1, 0, 0, 1, 1, 1, b'x', 0, 9, 0],
        ] {
            let z = zstd::bulk::compress(payload, 1).unwrap();
            let mut b = BLOCK_MAGIC.to_vec();
            b.extend_from_slice(&[0; 4]);
            b.extend_from_slice(&1u32.to_le_bytes());
            b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            b.extend_from_slice(&(z.len() as u32).to_le_bytes());
            b.extend_from_slice(&z);
            let crc = crc32c::crc32c(&b[8..]);
            b[4..8].copy_from_slice(&crc.to_le_bytes());
            assert!(decode(&b).is_err(), "{payload:?}");
        }
    }
}
