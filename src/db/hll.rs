//! HyperLogLog values in Redis 7.0's exact byte representation
//! (hyperloglog.c), so a value PFADD wrote reads back with GET as Redis's
//! does, and a value copied from Redis with SET works in PFCOUNT.
//!
//! A value is a string: a 16-byte header (`HYLL`, the encoding byte, three
//! unused bytes, the cached cardinality as 8 little-endian bytes whose top
//! bit marks it stale), then 16384 registers of 6 bits, either dense (12288
//! bytes, packed least significant bits first) or sparse (run-length
//! opcodes: `00xxxxxx` ZERO, `01xxxxxx yyyyyyyy` XZERO, `1vvvvvxx` VAL).
//! Every function here works on untrusted bytes: a malformed sparse value is
//! reported as invalid, never read past its end.

/// Register index bits.
const P: u32 = 14;
/// Hash bits left for the run of zeros.
const Q: u32 = 64 - P;
pub const REGISTERS: usize = 1 << P;
const P_MASK: u64 = (REGISTERS - 1) as u64;
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
pub const HDR_SIZE: usize = 16;
pub const DENSE_SIZE: usize = HDR_SIZE + (REGISTERS * BITS).div_ceil(8);
pub const DENSE: u8 = 0;
pub const SPARSE: u8 = 1;
const MAX_ENCODING: u8 = 1;

const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;

/// 1 / (2 ln 2): HyperLogLog's alpha for an infinite register count.
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// Redis's error for a value that is not a HyperLogLog.
pub const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
/// Redis's error for a HyperLogLog whose registers cannot be decoded.
pub const CORRUPTED: &str = "INVALIDOBJ Corrupted HLL object detected";

/// A new, empty HyperLogLog: sparse, one XZERO opcode covering every
/// register, cached cardinality 0.
pub fn new_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR_SIZE + 2);
    v.extend_from_slice(b"HYLL");
    v.push(SPARSE);
    v.extend_from_slice(&[0; 11]);
    push_xzero(&mut v, REGISTERS);
    v
}

/// Redis's `isHLLObjectOrReply` checks: magic, encoding, dense size.
pub fn is_valid(v: &[u8]) -> bool {
    v.len() >= HDR_SIZE
        && &v[..4] == b"HYLL"
        && v[4] <= MAX_ENCODING
        && (v[4] != DENSE || v.len() == DENSE_SIZE)
}

pub fn encoding(v: &[u8]) -> u8 {
    v[4]
}

/// The cached cardinality, when valid.
pub fn cached(v: &[u8]) -> Option<u64> {
    if v[15] & 0x80 != 0 {
        return None;
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&v[8..16]);
    Some(u64::from_le_bytes(b))
}

pub fn set_cache(v: &mut [u8], card: u64) {
    v[8..16].copy_from_slice(&card.to_le_bytes());
}

pub fn invalidate_cache(v: &mut [u8]) {
    v[15] |= 0x80;
}

/// Redis's MurmurHash64A (little-endian reads, as on x86).
pub fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, b) in rest.iter().enumerate().rev() {
            h ^= u64::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// Register index and run length ("000..1" pattern length) of an element.
pub fn pat_len(ele: &[u8]) -> (usize, u8) {
    let mut hash = murmur64a(ele, 0xadc8_3b19);
    let index = (hash & P_MASK) as usize;
    hash >>= P;
    hash |= 1u64 << Q;
    (index, hash.trailing_zeros() as u8 + 1)
}

// ---- dense registers ----

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let b0 = u16::from(regs[byte]);
    let b1 = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) as u8) & REGISTER_MAX
}

fn dense_set(regs: &mut [u8], i: usize, val: u8) {
    let byte = i * BITS / 8;
    let fb = (i * BITS) & 7;
    let v = u16::from(val);
    regs[byte] &= !((u16::from(REGISTER_MAX) << fb) as u8);
    regs[byte] |= (v << fb) as u8;
    if let Some(next) = regs.get_mut(byte + 1) {
        let fb8 = 8 - fb;
        *next &= !((u16::from(REGISTER_MAX) >> fb8) as u8);
        *next |= (v >> fb8) as u8;
    }
}

/// Raises register `i` of a dense value to `count`; true when it changed.
fn dense_raise(v: &mut [u8], i: usize, count: u8) -> bool {
    let regs = &mut v[HDR_SIZE..];
    if count > dense_get(regs, i) {
        dense_set(regs, i, count);
        true
    } else {
        false
    }
}

// ---- sparse opcodes ----

enum Op {
    Zero(usize),
    Val(u8, usize),
}

/// Decodes the opcode at `p`: the run and the opcode's length in bytes.
/// An XZERO cut by the end of the value reads its missing byte as 0, as
/// Redis's reader does (it reads the string's terminator).
fn op_at(s: &[u8], p: usize) -> (Op, usize) {
    let b = s[p];
    if b & 0xc0 == 0 {
        (Op::Zero(usize::from(b & 0x3f) + 1), 1)
    } else if b & 0x80 == 0 {
        let lo = s.get(p + 1).copied().unwrap_or(0);
        (
            Op::Zero(((usize::from(b & 0x3f) << 8) | usize::from(lo)) + 1),
            2,
        )
    } else {
        (Op::Val(((b >> 2) & 0x1f) + 1, usize::from(b & 3) + 1), 1)
    }
}

fn val_op(val: u8, len: usize) -> u8 {
    ((val - 1) << 2 | (len as u8 - 1)) | 0x80
}

fn push_xzero(out: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    out.push((l >> 8) as u8 | 0x40);
    out.push((l & 0xff) as u8);
}

fn push_zeros(out: &mut Vec<u8>, len: usize) {
    if len > SPARSE_ZERO_MAX_LEN {
        push_xzero(out, len);
    } else {
        out.push((len - 1) as u8);
    }
}

/// Every register of a value (sparse or dense), or None when a sparse
/// value does not cover exactly 16384 registers.
pub fn registers(v: &[u8]) -> Option<Vec<u8>> {
    let mut regs = vec![0u8; REGISTERS];
    if encoding(v) == DENSE {
        for (i, r) in regs.iter_mut().enumerate() {
            *r = dense_get(&v[HDR_SIZE..], i);
        }
        return Some(regs);
    }
    let s = &v[HDR_SIZE..];
    let (mut p, mut idx) = (0, 0usize);
    while p < s.len() {
        let (op, n) = op_at(s, p);
        match op {
            Op::Zero(run) => idx += run,
            Op::Val(val, run) => {
                if idx + run > REGISTERS {
                    return None;
                }
                regs[idx..idx + run].fill(val);
                idx += run;
            }
        }
        p += n;
    }
    (idx == REGISTERS).then_some(regs)
}

/// Redis's `hllSparseToDense`: a dense value with the same header (cached
/// cardinality included); None when the sparse value is corrupted.
pub fn to_dense(v: &[u8]) -> Option<Vec<u8>> {
    if encoding(v) == DENSE {
        return Some(v.to_vec());
    }
    let regs = registers(v)?;
    let mut d = vec![0u8; DENSE_SIZE];
    d[..HDR_SIZE].copy_from_slice(&v[..HDR_SIZE]);
    d[4] = DENSE;
    for (i, r) in regs.iter().enumerate() {
        if *r != 0 {
            dense_set(&mut d[HDR_SIZE..], i, *r);
        }
    }
    Some(d)
}

/// Outcome of setting one register.
#[derive(Debug, PartialEq, Eq)]
pub enum Set {
    Unchanged,
    Changed,
    Corrupted,
}

/// Redis's `hllSparseSet` / `hllDenseSet`: raises register `index` to
/// `count`, splitting sparse opcodes in place, promoting the value to dense
/// when the count does not fit a VAL opcode or the sparse value would pass
/// `sparse_max` bytes.
pub fn set_register(v: &mut Vec<u8>, index: usize, count: u8, sparse_max: usize) -> Set {
    if encoding(v) == DENSE {
        return if dense_raise(v, index, count) {
            Set::Changed
        } else {
            Set::Unchanged
        };
    }
    if count > SPARSE_VAL_MAX_VALUE {
        return promote(v, index, count);
    }
    // Step 1: the opcode covering `index`.
    let end = v.len();
    let (mut p, mut first, mut span) = (HDR_SIZE, 0usize, 0usize);
    let mut prev = None;
    let mut cur = None;
    while p < end {
        let (op, n) = op_at(v, p);
        span = match op {
            Op::Zero(r) | Op::Val(_, r) => r,
        };
        if index < first + span {
            cur = Some((op, n));
            break;
        }
        prev = Some(p);
        p += n;
        first += span;
    }
    let Some((op, oplen)) = cur else {
        return Set::Corrupted;
    };
    // An XZERO cut by the end of the value: nothing to rewrite in place.
    if span == 0 || p + oplen > v.len() {
        return Set::Corrupted;
    }
    // Step 2: the trivial cases, then the split.
    let last = first + span - 1;
    let mut seq = Vec::with_capacity(5);
    match op {
        Op::Val(old, _) if old >= count => return Set::Unchanged,
        Op::Val(_, 1) | Op::Zero(1) if oplen == 1 => {
            v[p] = val_op(count, 1);
            merge_vals(v, prev.unwrap_or(HDR_SIZE));
            invalidate_cache(v);
            return Set::Changed;
        }
        Op::Zero(_) => {
            if index != first {
                push_zeros(&mut seq, index - first);
            }
            seq.push(val_op(count, 1));
            if index != last {
                push_zeros(&mut seq, last - index);
            }
        }
        Op::Val(old, _) => {
            if index != first {
                seq.push(val_op(old, index - first));
            }
            seq.push(val_op(count, 1));
            if index != last {
                seq.push(val_op(old, last - index));
            }
        }
    }
    // Step 3: the new sequence replaces the opcode.
    if seq.len() > oplen && v.len() + seq.len() - oplen > sparse_max {
        return promote(v, index, count);
    }
    v.splice(p..p + oplen, seq);
    // Step 4: merge adjacent equal VAL opcodes.
    merge_vals(v, prev.unwrap_or(HDR_SIZE));
    invalidate_cache(v);
    Set::Changed
}

/// Redis's step 4 of `hllSparseSet`: from `p`, up to five opcodes, merges
/// two adjacent VALs of the same value whose runs fit one VAL.
fn merge_vals(v: &mut Vec<u8>, mut p: usize) {
    let mut scan = 5;
    while p < v.len() && scan > 0 {
        scan -= 1;
        let b = v[p];
        if b & 0xc0 == 0x40 {
            p += 2;
            continue;
        }
        if b & 0xc0 == 0 {
            p += 1;
            continue;
        }
        if p + 1 < v.len() && v[p + 1] & 0x80 != 0 {
            let (v1, l1) = (((b >> 2) & 0x1f) + 1, usize::from(b & 3) + 1);
            let n = v[p + 1];
            let (v2, l2) = (((n >> 2) & 0x1f) + 1, usize::from(n & 3) + 1);
            if v1 == v2 && l1 + l2 <= SPARSE_VAL_MAX_LEN {
                v[p + 1] = val_op(v1, l1 + l2);
                v.remove(p);
                continue;
            }
        }
        p += 1;
    }
}

fn promote(v: &mut Vec<u8>, index: usize, count: u8) -> Set {
    match to_dense(v) {
        Some(d) => {
            *v = d;
            dense_raise(v, index, count);
            Set::Changed
        }
        None => Set::Corrupted,
    }
}

/// Adds an element (Redis's `hllAdd`).
pub fn add(v: &mut Vec<u8>, ele: &[u8], sparse_max: usize) -> Set {
    let (index, count) = pat_len(ele);
    set_register(v, index, count, sparse_max)
}

/// Histogram of registers (one byte each).
pub fn raw_histogram(regs: &[u8]) -> [u32; 64] {
    let mut h = [0u32; 64];
    for r in regs {
        h[usize::from(*r & 63)] += 1;
    }
    h
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

/// Otmar Ertl's estimator over a register histogram (Redis's `hllCount`).
pub fn estimate(h: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let q = Q as usize;
    let mut z = m * tau((m - f64::from(h[q + 1])) / m);
    for j in (1..=q).rev() {
        z += f64::from(h[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(h[0]) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// The cardinality of a value, or None when it is corrupted.
pub fn count(v: &[u8]) -> Option<u64> {
    registers(v).map(|r| estimate(&raw_histogram(&r)))
}

/// Redis's `hllMerge`: raises `max` to each register of `v`.
pub fn merge_into(max: &mut [u8], v: &[u8]) -> bool {
    match registers(v) {
        Some(r) => {
            for (m, x) in max.iter_mut().zip(r) {
                *m = (*m).max(x);
            }
            true
        }
        None => false,
    }
}

/// PFDEBUG DECODE's text of a sparse value.
pub fn decode_sparse(v: &[u8]) -> String {
    let s = &v[HDR_SIZE..];
    let mut out = Vec::new();
    let mut p = 0;
    while p < s.len() {
        let (op, n) = op_at(s, p);
        out.push(match (op, n) {
            (Op::Zero(r), 1) => format!("z:{r}"),
            (Op::Zero(r), _) => format!("Z:{r}"),
            (Op::Val(val, r), _) => format!("v:{val},{r}"),
        });
        p += n;
    }
    out.join(" ")
}

/// A failed PFSELFTEST check (the text after `TESTFAILED `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelfTestError {
    #[error("Register {index} should be {expected} but is {got}")]
    Register { index: usize, expected: u8, got: u8 },
    #[error("sparse encoding corrupted")]
    SparseCorrupted,
    #[error("sparse encoding not used")]
    SparseNotUsed,
    #[error("dense/sparse disagree")]
    Disagree,
    #[error("Too big error. card:{card} abserr:{abserr}")]
    TooBigError { card: u64, abserr: u64 },
}

/// PFSELFTEST: Redis's two checks. Register packing: random values set
/// and read back (1000 rounds for PFSELFTEST). Estimation: `elements`
/// distinct elements (ten million for PFSELFTEST)
/// added to a dense and a sparse value side by side, which must agree at
/// every power of ten and stay within six standard errors of the truth
/// (and sparse while small).
pub fn self_test(sparse_max: usize, seed: u64, elements: u64) -> Result<(), SelfTestError> {
    // xorshift64*: any fast generator does for random register values.
    let mut state = seed | 1;
    let mut rand = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..4].copy_from_slice(b"HYLL");
    let mut expect = vec![0u8; REGISTERS];
    for _ in 0..(elements / 10_000).clamp(1, 1000) {
        for (i, e) in expect.iter_mut().enumerate() {
            *e = (rand() as u8) & REGISTER_MAX;
            dense_set(&mut dense[HDR_SIZE..], i, *e);
        }
        for (i, e) in expect.iter().enumerate() {
            let got = dense_get(&dense[HDR_SIZE..], i);
            if got != *e {
                return Err(SelfTestError::Register {
                    index: i,
                    expected: *e,
                    got,
                });
            }
        }
    }
    dense[HDR_SIZE..].fill(0);
    let mut sparse = new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let salt = rand();
    let mut checkpoint = 1u64;
    for j in 1..=elements {
        let ele = (j ^ salt).to_le_bytes();
        let (index, run) = pat_len(&ele);
        dense_raise(&mut dense, index, run);
        if set_register(&mut sparse, index, run, sparse_max) == Set::Corrupted {
            return Err(SelfTestError::SparseCorrupted);
        }
        if j != checkpoint {
            continue;
        }
        if (j as usize) < sparse_max / 2 && encoding(&sparse) != SPARSE {
            return Err(SelfTestError::SparseNotUsed);
        }
        let d = count(&dense).unwrap_or(0);
        if Some(d) != count(&sparse) {
            return Err(SelfTestError::Disagree);
        }
        let maxerr = if j == 10 {
            1
        } else {
            (relerr * 6.0 * checkpoint as f64).ceil() as u64
        };
        let abserr = checkpoint.abs_diff(d);
        if abserr > maxerr {
            return Err(SelfTestError::TooBigError {
                card: checkpoint,
                abserr,
            });
        }
        checkpoint *= 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_value_is_redis_bytes() {
        assert_eq!(
            new_sparse(),
            b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x7f\xff"
        );
        assert_eq!(count(&new_sparse()), Some(0));
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut s = new_sparse();
        for i in 0..2000u32 {
            assert_ne!(add(&mut s, &i.to_le_bytes(), 1 << 20), Set::Corrupted);
        }
        assert_eq!(encoding(&s), SPARSE);
        let d = to_dense(&s).unwrap();
        assert_eq!(registers(&s), registers(&d));
        assert_eq!(count(&s), count(&d));
        let c = count(&s).unwrap();
        assert!((1900..2100).contains(&c), "{c}");
    }

    #[test]
    fn self_test_passes() {
        assert_eq!(self_test(3000, 42, 200_000), Ok(()));
    }

    #[test]
    fn corrupted_sparse_is_reported_not_read_past() {
        let mut v = new_sparse();
        v.truncate(HDR_SIZE + 1);
        assert_eq!(count(&v), None);
        assert_eq!(registers(&v), None);
        assert_eq!(set_register(&mut v, 16383, 3, 3000), Set::Corrupted);
        let mut v = new_sparse();
        v.push(0xff); // a VAL past the last register
        assert_eq!(count(&v), None);
    }
}
