//! Bitmap commands (Redis's bitops.c): SETBIT, GETBIT, BITCOUNT, BITPOS,
//! BITOP, BITFIELD and BITFIELD_RO, on string values, so GET, SETRANGE and
//! APPEND see the same bytes.
//!
//! Bits are numbered from the most significant bit of the first byte, as
//! Redis does. Writes to an existing string are logged as the byte span
//! they changed (a SETRANGE effect), not as the whole value.

use super::{
    arg_i64, c_str, is_opt, read_typed, reader, write_typed, CmdError, CmdResult, Ctx, Handler,
};
use crate::db::effect::Effect;
use crate::db::notify::{GENERIC, NEW, STRING};
use crate::db::{StrForm, StrValue, Value};
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("setbit", setbit),
    ("getbit", getbit),
    ("bitcount", bitcount),
    ("bitpos", bitpos),
    ("bitop", bitop),
    ("bitfield", bitfield),
    ("bitfield_ro", bitfield_ro),
];

fn as_str(v: &mut Value) -> Result<&mut StrValue, CmdError> {
    match v {
        Value::Str(s) => Ok(s),
        _ => Err(CmdError::wrong_type()),
    }
}

const BIT_OFFSET_ERR: &str = "ERR bit offset is not an integer or out of range";

/// Redis's `getBitOffsetFromArgument`: a bit offset below
/// `proto-max-bulk-len` bytes; with `bits` (BITFIELD), `#n` means the n-th
/// field of that width.
fn bit_offset(ctx: &Ctx, a: &[u8], bits: Option<u32>) -> Result<u64, CmdError> {
    let s = a;
    let (hash, digits) = match (s.first(), bits) {
        (Some(b'#'), Some(_)) => (true, &s[1..]),
        _ => (false, s),
    };
    let mut n =
        crate::protocol::parse::parse_i64(digits).ok_or_else(|| CmdError::new(BIT_OFFSET_ERR))?;
    if hash {
        // C's multiplication, which wraps on x86 (then the range check).
        n = n.wrapping_mul(i64::from(bits.unwrap_or(1)));
    }
    let max = ctx.shared.config.read().proto_max_bulk_len;
    if n < 0 || (n >> 3) >= max {
        return Err(CmdError::new(BIT_OFFSET_ERR));
    }
    Ok(n as u64)
}

/// The error of a string that cannot be made as long as a bit command needs.
fn too_big() -> CmdError {
    CmdError::new("ERR string exceeds maximum allowed size (proto-max-bulk-len)")
}

/// Grows `data` with zeros to `need` bytes (more than it has).
fn grow_zeroed(data: &mut Vec<u8>, need: usize) -> Result<(), CmdError> {
    if data.try_reserve_exact(need - data.len()).is_err() {
        return Err(too_big());
    }
    data.resize(need, 0);
    Ok(())
}

/// `n` zero bytes, or None when the allocator refuses them. Allocated
/// zeroed (`calloc`), so the pages of a fresh allocation that the command
/// never writes are never touched: a SETBIT at a high offset of a new key
/// writes one page, not all of them (Redis's `sdsnewlen` memsets them all).
fn zeroed(n: usize) -> Option<Vec<u8>> {
    if n == 0 {
        return Some(Vec::new());
    }
    let layout = std::alloc::Layout::array::<u8>(n).ok()?;
    // SAFETY: `layout` has a non-zero size (n > 0).
    let p = unsafe { std::alloc::alloc_zeroed(layout) };
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` comes from the global allocator with the layout of `n`
    // bytes of alignment 1 (a `Vec<u8>` of capacity `n`), and all `n` bytes
    // are initialised (zeroed).
    Some(unsafe { Vec::from_raw_parts(p, n, n) })
}

/// Redis's `lookupStringForBitCommand`: the string under `key`, created
/// (zeroed) or grown with zeros to hold bit `maxbit`, made `raw`. Returns
/// whether it was created, and its length before.
fn string_for_bits(ctx: &mut Ctx, key: &Bytes, maxbit: u64) -> Result<(bool, usize), CmdError> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let need = (maxbit >> 3) as usize + 1;
    match write_typed(ctx.ks, db, key, now, as_str)? {
        Some(s) => {
            let old = s.data.len();
            if need > old {
                grow_zeroed(&mut s.data, need)?;
            }
            s.form = StrForm::Raw;
            Ok((false, old))
        }
        None => {
            let data = zeroed(need).ok_or_else(too_big)?;
            ctx.ks.set(
                db,
                key.clone(),
                Value::Str(StrValue::with_form(data, StrForm::Raw)),
                0,
            );
            ctx.notify(NEW, "new", db, key);
            Ok((true, 0))
        }
    }
}

/// The bytes of the string under `key` (which must exist), for writes.
fn bytes_mut<'a>(ctx: &'a mut Ctx, key: &[u8]) -> &'a mut Vec<u8> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    match write_typed(ctx.ks, db, key, now, as_str) {
        Ok(Some(s)) => &mut s.data,
        // string_for_bits has just made it a string.
        _ => unreachable!("bitmap key vanished under the lock"),
    }
}

/// Records a change of bytes `from..to` of an existing string: WATCH
/// signal, dirty, and the span as a SETRANGE effect.
fn log_span(ctx: &mut Ctx, key: &Bytes, from: usize, to: usize, dirty: u64) {
    let data = Bytes::copy_from_slice(&bytes_mut(ctx, key)[from..to]);
    log_bytes(ctx, key, from, data, dirty);
}

/// `log_span` with the changed bytes already in hand (`data`, at `from`).
fn log_bytes(ctx: &mut Ctx, key: &Bytes, from: usize, data: Bytes, dirty: u64) {
    let db = ctx.db();
    ctx.ks.dbs[db].signal_modified(key);
    ctx.ks.stats.dirty += dirty;
    ctx.ks.log_op(
        db,
        key,
        Effect::SetRange {
            db: db as u8,
            key: key.clone(),
            offset: from as u64,
            data,
        },
    );
}

/// SETBIT key offset value
///
/// One keyspace lookup (the hot path of a bitmap workload): the string is
/// created with the bit already set, or changed in place and the changed
/// byte logged as a one-byte SETRANGE effect.
fn setbit(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(ctx, &args[2], None)?;
    let on = crate::protocol::parse::parse_i64(&args[3])
        .filter(|v| *v == 0 || *v == 1)
        .ok_or_else(|| CmdError::new("ERR bit is not an integer or out of range"))?;
    let key = &args[1];
    let byte = (offset >> 3) as usize;
    let shift = 7 - (offset & 7) as u32;
    let bit = (on as u8) << shift;
    let (db, now) = (ctx.db(), ctx.now_ms);
    let (old, changed) = match write_typed(ctx.ks, db, key, now, as_str)? {
        Some(s) => {
            let grown = byte >= s.data.len();
            if grown {
                grow_zeroed(&mut s.data, byte + 1)?;
            }
            s.form = StrForm::Raw;
            let b = s.data[byte];
            let old = (b >> shift) & 1;
            let changed = grown || i64::from(old) != on;
            if changed {
                s.data[byte] = (b & !(1 << shift)) | bit;
            }
            (old, changed.then_some(s.data[byte]))
        }
        None => {
            let mut data = zeroed(byte + 1).ok_or_else(too_big)?;
            data[byte] = bit;
            ctx.ks.set(
                db,
                key.clone(),
                Value::Str(StrValue::with_form(data, StrForm::Raw)),
                0,
            );
            ctx.notify(NEW, "new", db, key);
            ctx.notify(STRING, "setbit", db, key);
            (0, None)
        }
    };
    if let Some(b) = changed {
        log_bytes(ctx, key, byte, Bytes::copy_from_slice(&[b]), 1);
        ctx.notify(STRING, "setbit", db, key);
    }
    ctx.out.int(i64::from(old));
    Ok(())
}

/// GETBIT key offset
fn getbit(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let offset = bit_offset(ctx, &args[2], None)?;
    let r = reader(ctx);
    let bit = match read_typed(ctx.ks, r, &args[1], as_str)? {
        Some(s) => {
            let byte = (offset >> 3) as usize;
            s.data
                .get(byte)
                .map_or(0, |b| (b >> (7 - (offset & 7))) & 1)
        }
        None => 0,
    };
    ctx.out.int(i64::from(bit));
    Ok(())
}

/// Start and end of a BITCOUNT/BITPOS range, in bits, after Redis's
/// negative-index and clamping rules; None when empty. `len` is the string
/// length in bytes; `end` None means "to the end".
fn bit_range(start: i64, end: Option<i64>, len: i64, in_bits: bool) -> Option<(i64, i64)> {
    let total = if in_bits { len << 3 } else { len };
    let mut start = start;
    let mut end = end.unwrap_or(total - 1);
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0).min(total - 1);
    if start > end {
        return None;
    }
    Some(if in_bits {
        (start, end)
    } else {
        (start << 3, (end << 3) + 7)
    })
}

/// `BYTE` or `BIT` (a unit argument), else a syntax error.
fn unit_is_bit(a: &[u8]) -> Result<bool, CmdError> {
    if is_opt(a, "bit") {
        Ok(true)
    } else if is_opt(a, "byte") {
        Ok(false)
    } else {
        Err(CmdError::syntax())
    }
}

/// The value of bit `i` of `data` (0 past its end).
fn bit_at(data: &[u8], i: i64) -> u8 {
    data.get((i >> 3) as usize)
        .map_or(0, |b| (b >> (7 - (i & 7))) & 1)
}

/// Set bits between bit positions `from` and `to` inclusive.
fn count_bits(data: &[u8], from: i64, to: i64) -> i64 {
    let (fb, tb) = ((from >> 3) as usize, (to >> 3) as usize);
    if fb == tb {
        return (from..=to).map(|i| i64::from(bit_at(data, i))).sum();
    }
    let head: i64 = (from..(fb as i64 + 1) * 8)
        .map(|i| i64::from(bit_at(data, i)))
        .sum();
    let tail: i64 = ((tb as i64) * 8..=to)
        .map(|i| i64::from(bit_at(data, i)))
        .sum();
    head + popcount(&data[fb + 1..tb]) + tail
}

/// Set bits of `bytes`, eight bytes at a time (one 64-bit popcount each
/// instead of eight byte-wide ones: BITCOUNT of a large bitmap is bound by
/// this loop, as Redis's `redisPopcount` is by its 28-byte steps).
fn popcount(bytes: &[u8]) -> i64 {
    let mut words = bytes.chunks_exact(8);
    let mut n: u64 = 0;
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        n += u64::from(u64::from_ne_bytes(a).count_ones());
    }
    for b in words.remainder() {
        n += u64::from(b.count_ones());
    }
    n as i64
}

/// BITCOUNT key [start end [BYTE | BIT]]
///
/// As Redis 7.0: the key is looked up first, so a missing key answers 0
/// whatever the other arguments are.
fn bitcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = reader(ctx);
    let n = match read_typed(ctx.ks, r, &args[1], as_str)? {
        None => 0,
        Some(s) => {
            let data = &s.data;
            let len = data.len() as i64;
            let range = match args.len() {
                2 => bit_range(0, None, len, false),
                4 | 5 => {
                    let start = arg_i64(&args[2])?;
                    let end = arg_i64(&args[3])?;
                    // Redis answers this empty range before it reads the unit.
                    if start < 0 && end < 0 && start > end {
                        None
                    } else {
                        let in_bits = match args.get(4) {
                            Some(u) => unit_is_bit(u)?,
                            None => false,
                        };
                        bit_range(start, Some(end), len, in_bits)
                    }
                }
                _ => return Err(CmdError::syntax()),
            };
            range.map_or(0, |(from, to)| count_bits(data, from, to))
        }
    };
    ctx.out.int(n);
    Ok(())
}

/// BITPOS key bit [start [end [BYTE | BIT]]]
fn bitpos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let bit = arg_i64(&args[2])?;
    if bit != 0 && bit != 1 {
        return Err(CmdError::new("ERR The bit argument must be 1 or 0."));
    }
    let r = reader(ctx);
    let pos = match read_typed(ctx.ks, r, &args[1], as_str)? {
        // A missing key is an infinite run of zeros.
        None => {
            if bit == 1 {
                -1
            } else {
                0
            }
        }
        Some(s) => {
            let data = &s.data;
            let len = data.len() as i64;
            let (range, end_given) = match args.len() {
                3 => (bit_range(0, None, len, false), false),
                4..=6 => {
                    let start = arg_i64(&args[3])?;
                    let in_bits = match args.get(5) {
                        Some(u) => unit_is_bit(u)?,
                        None => false,
                    };
                    let end = match args.get(4) {
                        Some(e) => Some(arg_i64(e)?),
                        None => None,
                    };
                    (bit_range(start, end, len, in_bits), end.is_some())
                }
                _ => return Err(CmdError::syntax()),
            };
            match range {
                None => -1,
                Some((from, to)) => match first_bit(data, from, to, bit as u8) {
                    Some(p) => p,
                    // Looking for a clear bit with no end given: the string
                    // continues with zeros, so the first bit past the range.
                    None if bit == 0 && !end_given => to + 1,
                    None => -1,
                },
            }
        }
    };
    ctx.out.int(pos);
    Ok(())
}

/// The first bit equal to `want` between `from` and `to` inclusive.
fn first_bit(data: &[u8], from: i64, to: i64, want: u8) -> Option<i64> {
    let skip = if want == 1 { 0u8 } else { 0xff };
    let mut i = from;
    while i <= to {
        if i & 7 == 0 && i + 7 <= to && data[(i >> 3) as usize] == skip {
            i += 8;
            continue;
        }
        if bit_at(data, i) == want {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// BITOP AND | OR | XOR | NOT destkey key [key ...]
fn bitop(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    #[derive(PartialEq, Clone, Copy)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let op = if is_opt(&args[1], "and") {
        Op::And
    } else if is_opt(&args[1], "or") {
        Op::Or
    } else if is_opt(&args[1], "xor") {
        Op::Xor
    } else if is_opt(&args[1], "not") {
        Op::Not
    } else {
        return Err(CmdError::syntax());
    };
    if op == Op::Not && args.len() != 4 {
        return Err(CmdError::new(
            "ERR BITOP NOT must be called with a single source key.",
        ));
    }
    let r = reader(ctx);
    let mut srcs: Vec<Vec<u8>> = Vec::with_capacity(args.len() - 3);
    for key in &args[3..] {
        match read_typed(ctx.ks, r, key, as_str)? {
            Some(s) => srcs.push(s.data.clone()),
            None => srcs.push(Vec::new()),
        }
    }
    let maxlen = srcs.iter().map(Vec::len).max().unwrap_or(0);
    let (db, dest) = (ctx.db(), &args[2]);
    if maxlen > 0 {
        let mut res = vec![0u8; maxlen];
        for (j, out) in res.iter_mut().enumerate() {
            let byte = |s: &Vec<u8>| s.get(j).copied().unwrap_or(0);
            let mut v = byte(&srcs[0]);
            if op == Op::Not {
                v = !v;
            }
            for s in &srcs[1..] {
                match op {
                    Op::And => v &= byte(s),
                    Op::Or => v |= byte(s),
                    Op::Xor => v ^= byte(s),
                    Op::Not => {}
                }
            }
            *out = v;
        }
        let existed = ctx.ks.lookup_write(db, dest, ctx.now_ms).is_some();
        ctx.ks.set(
            db,
            dest.clone(),
            Value::Str(StrValue::with_form(res, StrForm::Raw)),
            0,
        );
        if !existed {
            ctx.notify(NEW, "new", db, dest);
        }
        ctx.notify(STRING, "set", db, dest);
    } else if ctx.ks.delete(db, dest, ctx.now_ms) {
        ctx.notify(GENERIC, "del", db, dest);
    }
    ctx.out.int(maxlen as i64);
    Ok(())
}

/// Overflow behaviour of BITFIELD's SET and INCRBY.
#[derive(Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq)]
enum FieldOp {
    Get,
    Set,
    IncrBy,
}

struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    overflow: Overflow,
}

/// `i<1..64>` or `u<1..63>`, as Redis's `getBitfieldTypeFromArgument`.
fn field_type(a: &[u8]) -> Result<(bool, u32), CmdError> {
    let s = c_str(a);
    let err = || {
        CmdError::new(
            "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
        )
    };
    let signed = match s.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err()),
    };
    let bits = crate::protocol::parse::parse_i64(&s[1..]).ok_or_else(err)?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return Err(err());
    }
    Ok((signed, bits as u32))
}

fn get_unsigned(data: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for j in 0..u64::from(bits) {
        v = (v << 1) | u64::from(bit_at(data, (offset + j) as i64));
    }
    v
}

fn get_signed(data: &[u8], offset: u64, bits: u32) -> i64 {
    let mut v = get_unsigned(data, offset, bits);
    if bits < 64 && v & (1u64 << (bits - 1)) != 0 {
        v |= u64::MAX << bits;
    }
    v as i64
}

fn set_unsigned(data: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..u64::from(bits) {
        let bit = (value >> (u64::from(bits) - 1 - j)) & 1;
        let pos = offset + j;
        let (byte, shift) = ((pos >> 3) as usize, 7 - (pos & 7));
        data[byte] = (data[byte] & !(1 << shift)) | ((bit as u8) << shift);
    }
}

/// Redis's `checkUnsignedBitfieldOverflow`: None when `value + incr` fits
/// in `bits` unsigned bits, else the value the overflow mode gives (None
/// inside for FAIL).
fn unsigned_overflow(value: u64, incr: i64, bits: u32, mode: Overflow) -> Option<Option<u64>> {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX << bits);
    if value > max || (incr > 0 && incr > maxincr) {
        Some(match mode {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        })
    } else if incr < 0 && incr < minincr {
        Some(match mode {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(0),
            Overflow::Fail => None,
        })
    } else {
        None
    }
}

/// Redis's `checkSignedBitfieldOverflow`, as `unsigned_overflow`.
fn signed_overflow(value: i64, incr: i64, bits: u32, mode: Overflow) -> Option<Option<i64>> {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        Some(match mode {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(max),
            Overflow::Fail => None,
        })
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        Some(match mode {
            Overflow::Wrap => Some(wrap()),
            Overflow::Sat => Some(min),
            Overflow::Fail => None,
        })
    } else {
        None
    }
}

/// BITFIELD key [GET type offset | SET type offset value |
/// INCRBY type offset increment | OVERFLOW WRAP|SAT|FAIL ...]
fn bitfield(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bitfield_generic(ctx, args, false)
}

/// BITFIELD_RO key [GET type offset ...]
fn bitfield_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    bitfield_generic(ctx, args, true)
}

fn bitfield_generic(ctx: &mut Ctx, args: &[Bytes], ro: bool) -> CmdResult {
    let mut fields = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut highest: Option<u64> = None;
    let mut lowest_byte = usize::MAX;
    let mut j = 2;
    while j < args.len() {
        let remaining = args.len() - j - 1;
        let a = &args[j];
        let op = if is_opt(a, "get") && remaining >= 2 {
            FieldOp::Get
        } else if is_opt(a, "set") && remaining >= 3 {
            FieldOp::Set
        } else if is_opt(a, "incrby") && remaining >= 3 {
            FieldOp::IncrBy
        } else if is_opt(a, "overflow") && remaining >= 1 {
            let t = &args[j + 1];
            overflow = if is_opt(t, "wrap") {
                Overflow::Wrap
            } else if is_opt(t, "sat") {
                Overflow::Sat
            } else if is_opt(t, "fail") {
                Overflow::Fail
            } else {
                return Err(CmdError::new("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::syntax());
        };
        let (signed, bits) = field_type(&args[j + 1])?;
        let offset = bit_offset(ctx, &args[j + 2], Some(bits))?;
        let mut value = 0;
        if op != FieldOp::Get {
            let last = offset + u64::from(bits) - 1;
            highest = Some(highest.map_or(last, |h| h.max(last)));
            lowest_byte = lowest_byte.min((offset >> 3) as usize);
            value = arg_i64(&args[j + 3])?;
        }
        fields.push(Field {
            op,
            signed,
            bits,
            offset,
            value,
            overflow,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }

    let key = &args[1];
    let mut created = false;
    let mut old_len = 0;
    if let Some(h) = highest {
        if ro {
            return Err(CmdError::new(
                "ERR BITFIELD_RO only supports the GET subcommand",
            ));
        }
        (created, old_len) = string_for_bits(ctx, key, h)?;
    } else {
        // Only GETs: a read lookup (a missing key reads as zeros).
        let r = reader(ctx);
        read_typed(ctx.ks, r, key, as_str)?;
    }

    let mut replies: Vec<Option<i64>> = Vec::with_capacity(fields.len());
    let mut changes = 0u64;
    let grown;
    {
        let (db, now) = (ctx.db(), ctx.now_ms);
        let mut empty = Vec::new();
        let data: &mut Vec<u8> = match ctx.ks.lookup_write(db, key, now) {
            Some(e) => match &mut e.value {
                Value::Str(s) => &mut s.data,
                _ => &mut empty,
            },
            None => &mut empty,
        };
        grown = highest.is_some() && data.len() != old_len;
        let dirty = created || grown;
        for f in &fields {
            match f.op {
                FieldOp::Get => replies.push(Some(if f.signed {
                    get_signed(data, f.offset, f.bits)
                } else {
                    get_unsigned(data, f.offset, f.bits) as i64
                })),
                FieldOp::Set | FieldOp::IncrBy if f.signed => {
                    let old = get_signed(data, f.offset, f.bits);
                    let (new, reply) = if f.op == FieldOp::IncrBy {
                        match signed_overflow(old, f.value, f.bits, f.overflow) {
                            None => {
                                let n = old.wrapping_add(f.value);
                                (Some(n), n)
                            }
                            Some(w) => (w, w.unwrap_or(0)),
                        }
                    } else {
                        match signed_overflow(f.value, 0, f.bits, f.overflow) {
                            None => (Some(f.value), old),
                            Some(w) => (w, old),
                        }
                    };
                    match new {
                        Some(n) => {
                            replies.push(Some(reply));
                            set_unsigned(data, f.offset, f.bits, n as u64);
                            if dirty || old != n {
                                changes += 1;
                            }
                        }
                        None => replies.push(None),
                    }
                }
                FieldOp::Set | FieldOp::IncrBy => {
                    let old = get_unsigned(data, f.offset, f.bits);
                    let (new, reply) = if f.op == FieldOp::IncrBy {
                        match unsigned_overflow(old, f.value, f.bits, f.overflow) {
                            None => {
                                let n = old.wrapping_add(f.value as u64);
                                (Some(n), n)
                            }
                            Some(w) => (w, w.unwrap_or(0)),
                        }
                    } else {
                        match unsigned_overflow(f.value as u64, 0, f.bits, f.overflow) {
                            None => (Some(f.value as u64), old),
                            Some(w) => (w, old),
                        }
                    };
                    match new {
                        Some(n) => {
                            replies.push(Some(reply as i64));
                            set_unsigned(data, f.offset, f.bits, n);
                            if dirty || old != n {
                                changes += 1;
                            }
                        }
                        None => replies.push(None),
                    }
                }
            }
        }
    }
    if changes > 0 {
        if let (false, Some(h)) = (created, highest) {
            let end = (h >> 3) as usize + 1;
            log_span(ctx, key, lowest_byte, end, changes);
        } else {
            ctx.ks.stats.dirty += changes - 1;
        }
        let db = ctx.db();
        ctx.notify(STRING, "setbit", db, key);
    }
    ctx.out.array(replies.len());
    for r in replies {
        match r {
            Some(v) => ctx.out.int(v),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn popcount_matches_a_bit_by_bit_count() {
        let data: Vec<u8> = (0..1000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for (from, to) in [(0, 0), (3, 5), (0, 7999), (5, 7990), (13, 4099), (800, 801)] {
            let want: i64 = (from..=to).map(|i| i64::from(bit_at(&data, i))).sum();
            assert_eq!(count_bits(&data, from, to), want, "{from}..={to}");
        }
    }

    use super::*;

    #[test]
    fn bitfield_overflow_rules() {
        // u8: 250 + 10 wraps to 4, saturates at 255.
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Wrap), Some(Some(4)));
        assert_eq!(
            unsigned_overflow(250, 10, 8, Overflow::Sat),
            Some(Some(255))
        );
        assert_eq!(unsigned_overflow(250, 10, 8, Overflow::Fail), Some(None));
        assert_eq!(unsigned_overflow(5, -10, 8, Overflow::Sat), Some(Some(0)));
        assert_eq!(unsigned_overflow(5, 3, 8, Overflow::Wrap), None);
        // i8: 120 + 10 wraps to -126, saturates at 127; -120 - 10 to -128.
        assert_eq!(
            signed_overflow(120, 10, 8, Overflow::Wrap),
            Some(Some(-126))
        );
        assert_eq!(signed_overflow(120, 10, 8, Overflow::Sat), Some(Some(127)));
        assert_eq!(
            signed_overflow(-120, -10, 8, Overflow::Sat),
            Some(Some(-128))
        );
        assert_eq!(
            signed_overflow(i64::MAX, 1, 64, Overflow::Wrap),
            Some(Some(i64::MIN))
        );
        assert_eq!(signed_overflow(-5, 3, 64, Overflow::Wrap), None);
    }

    #[test]
    fn fields_read_and_write_msb_first() {
        let mut d = vec![0u8; 3];
        set_unsigned(&mut d, 4, 8, 0xab);
        assert_eq!(d, vec![0x0a, 0xb0, 0]);
        assert_eq!(get_unsigned(&d, 4, 8), 0xab);
        assert_eq!(get_signed(&d, 4, 8), 0xab_u8 as i8 as i64);
        assert_eq!(count_bits(&d, 0, 23), 5);
        // bits 5..=9 of 0x0a 0xb0: 0 1 0 | 1 0
        assert_eq!(count_bits(&d, 5, 9), 2);
        assert_eq!(first_bit(&d, 0, 23, 1), Some(4));
        assert_eq!(first_bit(&[0xff, 0xff], 0, 15, 0), None);
    }
}
