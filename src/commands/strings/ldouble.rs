//! x87 80-bit extended precision, the C `long double` of redis-server on
//! x86-64 Linux, emulated exactly for INCRBYFLOAT.
//!
//! Why: Redis parses the stored value and the increment with `strtold`, adds
//! them in `long double` and stores `printf("%.17Lf")` with trailing zeros
//! removed. `f64` gives different digits (`0.1 + 0.2` is `0.3` in Redis,
//! `0.30000000000000004` in f64), and replies must match byte for byte. Rust
//! has no `f80`, so this module implements the three steps exactly:
//!
//! - `parse`: glibc `strtold` with Redis's `string2ld` checks, correctly
//!   rounded (round half to even) to a 64-bit mantissa.
//! - `add`: the exact sum, rounded once.
//! - `format_human`: the exact decimal expansion rounded to 17 places
//!   (half to even, as glibc's printf), then Redis's trimming.
//!
//! Values are `mant * 2^exp` with a 64-bit mantissa; the smallest unit is
//! 2^-16445 (denormals) and the largest finite value (2^64-1) * 2^16320.
//! The arithmetic uses a small unsigned big integer: inputs are at most
//! `LD_STR_BYTES_MAX` bytes, so the largest number handled is about 10^10100
//! (~34,000 bits), and every operation is linear or quadratic in that.

use std::cmp::Ordering;

/// Longest string `string2ld` accepts (`MAX_LONG_DOUBLE_CHARS` is 5 KiB and
/// the buffer needs a terminating NUL).
pub const LD_STR_BYTES_MAX: usize = 5 * 1024 - 1;

/// Exponent of the lowest mantissa bit of the smallest denormal.
const LSB_EXP_MIN: i32 = -16445;
/// Exponent of the highest bit of the largest finite value.
const MSB_EXP_MAX: i32 = 16383;
/// Decimal exponents beyond these overflow / underflow whatever the digits
/// (10^4933 > max, and 10^-4952 is below half the smallest denormal).
const DEC_EXP_MAX: i64 = 4934;
const DEC_EXP_MIN: i64 = -4952;

/// An extended-precision value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ld {
    /// `(-1)^neg * mant * 2^exp`; zero when `mant` is 0.
    Finite {
        neg: bool,
        mant: u64,
        exp: i32,
    },
    Inf {
        neg: bool,
    },
}

impl Ld {
    pub const ZERO: Ld = Ld::Finite {
        neg: false,
        mant: 0,
        exp: 0,
    };

    pub fn is_finite(&self) -> bool {
        matches!(self, Ld::Finite { .. })
    }
}

/// Unsigned big integer, little-endian 32-bit limbs, no high zero limbs.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Big(Vec<u32>);

impl Big {
    fn from_u128(mut v: u128) -> Big {
        let mut l = Vec::new();
        while v != 0 {
            l.push(v as u32);
            v >>= 32;
        }
        Big(l)
    }

    fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn mul_small(&mut self, m: u32) {
        let mut carry = 0u64;
        for l in self.0.iter_mut() {
            let v = u64::from(*l) * u64::from(m) + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
        self.trim();
    }

    fn add_small(&mut self, a: u32) {
        let mut carry = u64::from(a);
        for l in self.0.iter_mut() {
            if carry == 0 {
                break;
            }
            let v = u64::from(*l) + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn mul_pow10(&mut self, mut n: u32) {
        while n >= 9 {
            self.mul_small(1_000_000_000);
            n -= 9;
        }
        self.mul_small(10u32.pow(n));
    }

    fn bit_len(&self) -> u32 {
        match self.0.last() {
            None => 0,
            Some(top) => (self.0.len() as u32 - 1) * 32 + (32 - top.leading_zeros()),
        }
    }

    fn bit(&self, i: u32) -> bool {
        self.0
            .get((i / 32) as usize)
            .is_some_and(|l| (l >> (i % 32)) & 1 == 1)
    }

    /// True when any bit below `i` is set.
    fn any_below(&self, i: u32) -> bool {
        let full = (i / 32) as usize;
        if self.0.iter().take(full).any(|&l| l != 0) {
            return true;
        }
        let rem = i % 32;
        rem != 0
            && self
                .0
                .get(full)
                .is_some_and(|l| l & ((1u32 << rem) - 1) != 0)
    }

    fn shl(&self, bits: u32) -> Big {
        if self.is_zero() {
            return Big(Vec::new());
        }
        let (limbs, rem) = ((bits / 32) as usize, bits % 32);
        let mut out = vec![0u32; limbs];
        if rem == 0 {
            out.extend_from_slice(&self.0);
        } else {
            let mut carry = 0u32;
            for &l in &self.0 {
                out.push((l << rem) | carry);
                carry = l >> (32 - rem);
            }
            out.push(carry);
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    fn shr(&self, bits: u32) -> Big {
        let (limbs, rem) = ((bits / 32) as usize, bits % 32);
        if limbs >= self.0.len() {
            return Big(Vec::new());
        }
        let src = &self.0[limbs..];
        let mut out = Vec::with_capacity(src.len());
        for (i, &l) in src.iter().enumerate() {
            let hi = if rem == 0 {
                0
            } else {
                src.get(i + 1).map_or(0, |h| h << (32 - rem))
            };
            out.push((l >> rem) | hi);
        }
        let mut b = Big(out);
        b.trim();
        b
    }

    fn cmp(&self, o: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&o.0.len())
            .then_with(|| self.0.iter().rev().cmp(o.0.iter().rev()))
    }

    /// `self -= o`; requires `self >= o`.
    fn sub_assign(&mut self, o: &Big) {
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let v = i64::from(self.0[i]) - i64::from(o.0.get(i).copied().unwrap_or(0)) - borrow;
            if v < 0 {
                self.0[i] = (v + (1i64 << 32)) as u32;
                borrow = 1;
            } else {
                self.0[i] = v as u32;
                borrow = 0;
            }
        }
        self.trim();
    }

    fn add(&self, o: &Big) -> Big {
        let n = self.0.len().max(o.0.len());
        let mut out = Vec::with_capacity(n + 1);
        let mut carry = 0u64;
        for i in 0..n {
            let v = u64::from(self.0.get(i).copied().unwrap_or(0))
                + u64::from(o.0.get(i).copied().unwrap_or(0))
                + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        if carry != 0 {
            out.push(carry as u32);
        }
        Big(out)
    }

    /// The value as u128; requires `bit_len() <= 128`.
    fn to_u128(&self) -> u128 {
        self.0
            .iter()
            .rev()
            .fold(0u128, |acc, &l| (acc << 32) | u128::from(l))
    }

    fn divmod_small(&mut self, d: u32) -> u32 {
        let mut rem = 0u64;
        for l in self.0.iter_mut().rev() {
            let cur = (rem << 32) | u64::from(*l);
            *l = (cur / u64::from(d)) as u32;
            rem = cur % u64::from(d);
        }
        self.trim();
        rem as u32
    }

    fn to_decimal(&self) -> String {
        if self.is_zero() {
            return "0".into();
        }
        let mut n = self.clone();
        let mut chunks = Vec::new();
        while !n.is_zero() {
            chunks.push(n.divmod_small(1_000_000_000));
        }
        let mut s = String::with_capacity(chunks.len() * 9);
        if let Some(top) = chunks.pop() {
            s.push_str(&top.to_string());
        }
        for c in chunks.iter().rev() {
            s.push_str(&format!("{c:09}"));
        }
        s
    }

    /// Truncated quotient `self / m` (which must fit in 127 bits) and
    /// whether a remainder was left. Binary long division: at most ~70
    /// quotient bits are ever asked for.
    fn div_u128(&self, m: &Big) -> (u128, bool) {
        let mut n = self.clone();
        let (nb, mb) = (n.bit_len(), m.bit_len());
        let mut q = 0u128;
        if nb >= mb {
            for i in (0..=(nb - mb)).rev() {
                let t = m.shl(i);
                if n.cmp(&t) != Ordering::Less {
                    n.sub_assign(&t);
                    q |= 1u128 << i;
                }
            }
        }
        (q, !n.is_zero())
    }
}

/// Rounds `q * 2^e` (plus a nonzero tail below it when `sticky`) to
/// extended precision, half to even; overflow gives infinity, values below
/// half the smallest denormal give zero.
fn round(neg: bool, q: u128, e: i32, sticky: bool) -> Ld {
    if q == 0 {
        return Ld::Finite {
            neg,
            mant: 0,
            exp: 0,
        };
    }
    let bl = 128 - q.leading_zeros() as i32;
    let top = bl - 1 + e;
    let lsb = (top - 63).max(LSB_EXP_MIN);
    let drop = lsb - e;
    let (mut mant, mut lsb) = if drop <= 0 {
        (q << (-drop) as u32, lsb)
    } else if drop > bl {
        (0, lsb)
    } else {
        let kept = if drop >= 128 { 0 } else { q >> drop };
        let rem = q & ((1u128 << (drop - 1)) << 1).wrapping_sub(1);
        let half = 1u128 << (drop - 1);
        let up = rem > half || (rem == half && (sticky || kept & 1 == 1));
        (kept + u128::from(up), lsb)
    };
    if mant == 1u128 << 64 {
        mant >>= 1;
        lsb += 1;
    }
    if mant == 0 {
        return Ld::Finite {
            neg,
            mant: 0,
            exp: 0,
        };
    }
    let msb = lsb + (128 - mant.leading_zeros() as i32) - 1;
    if msb > MSB_EXP_MAX {
        return Ld::Inf { neg };
    }
    Ld::Finite {
        neg,
        mant: mant as u64,
        exp: lsb,
    }
}

/// Rounds the exact value `m * 2^e` (m a big integer).
fn round_big(neg: bool, m: &Big, e: i32) -> Ld {
    let bl = m.bit_len();
    if bl <= 128 {
        return round(neg, m.to_u128(), e, false);
    }
    let shift = bl - 100;
    let sticky = m.any_below(shift);
    round(neg, m.shr(shift).to_u128(), e + shift as i32, sticky)
}

/// Rounds `d * 10^e10` exactly.
fn from_decimal(neg: bool, d: &Big, e10: i64) -> Ld {
    if e10 >= 0 {
        let mut m = d.clone();
        m.mul_pow10(e10 as u32);
        return round_big(neg, &m, 0);
    }
    let mut den = Big::from_u128(1);
    den.mul_pow10((-e10) as u32);
    // Enough quotient bits that the 64-bit mantissa plus rounding bits are
    // exact, and no more (the quotient must fit in 127 bits): a numerator
    // with many more digits than the denominator shifts the denominator.
    let s = 68 + den.bit_len() as i64 - d.bit_len() as i64;
    let (q, sticky) = if s >= 0 {
        d.shl(s as u32).div_u128(&den)
    } else {
        d.div_u128(&den.shl((-s) as u32))
    };
    round(neg, q, -(s as i32), sticky)
}

/// Redis's `string2ld`: glibc `strtold` over the whole argument, refusing
/// leading spaces, trailing garbage, NaN, and results that overflowed or
/// underflowed to zero, and arguments with a NUL byte.
pub fn parse(s: &[u8]) -> Option<Ld> {
    if s.is_empty() || s.len() > LD_STR_BYTES_MAX {
        return None;
    }
    // strtold stops at a NUL byte, short of the argument's end: refused
    // (Redis 7.0 checks that the conversion used all `slen` bytes).
    if s.contains(&0) {
        return None;
    }
    if matches!(s[0], b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        return None;
    }
    let (neg, body) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        return Some(Ld::Inf { neg });
    }
    let v = if body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x' {
        parse_hex(neg, &body[2..])?
    } else {
        parse_dec(neg, body)?
    };
    match v {
        // A finite literal that overflowed: ERANGE with HUGE_VALL.
        Ld::Inf { .. } => None,
        Ld::Finite { .. } => Some(v),
    }
}

/// `digits[.digits][(e|E)[+-]digits]`, all of it.
fn parse_dec(neg: bool, s: &[u8]) -> Option<Ld> {
    let mut i = 0;
    let mut d = Big(Vec::new());
    let mut digits = 0usize; // significant digits kept in `d`
    let mut any = false;
    let mut frac = 0i64;
    let mut seen_dot = false;
    while i < s.len() {
        match s[i] {
            c @ b'0'..=b'9' => {
                any = true;
                if seen_dot {
                    frac += 1;
                }
                if digits > 0 || c != b'0' {
                    d.mul_small(10);
                    d.add_small(u32::from(c - b'0'));
                    digits += 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => break,
        }
        i += 1;
    }
    if !any {
        return None;
    }
    let mut exp = 0i64;
    if i < s.len() {
        if s[i] | 0x20 != b'e' {
            return None;
        }
        exp = parse_exp(&s[i + 1..])?;
    }
    if d.is_zero() {
        return Some(Ld::Finite {
            neg,
            mant: 0,
            exp: 0,
        });
    }
    let e10 = exp.saturating_sub(frac);
    let magnitude = e10.saturating_add(digits as i64);
    if magnitude > DEC_EXP_MAX {
        return Some(Ld::Inf { neg });
    }
    if magnitude < DEC_EXP_MIN {
        return None; // underflow to zero: ERANGE
    }
    let v = from_decimal(neg, &d, e10);
    match v {
        Ld::Finite { mant: 0, .. } => None,
        _ => Some(v),
    }
}

/// A decimal exponent `[+-]digits` (saturating: huge exponents just
/// overflow or underflow).
fn parse_exp(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v = 0i64;
    for &c in digits {
        v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    Some(if neg { -v } else { v })
}

/// After `0x`: `hexdigits[.hexdigits][(p|P)[+-]digits]`, all of it.
fn parse_hex(neg: bool, s: &[u8]) -> Option<Ld> {
    let mut i = 0;
    let mut m = Big(Vec::new());
    let mut any = false;
    let mut frac_bits = 0i64;
    let mut seen_dot = false;
    while i < s.len() {
        let c = s[i];
        if c == b'.' && !seen_dot {
            seen_dot = true;
        } else if let Some(v) = (c as char).to_digit(16) {
            any = true;
            if !m.is_zero() || v != 0 {
                m.mul_small(16);
                m.add_small(v);
            }
            if seen_dot {
                frac_bits += 4;
            }
        } else {
            break;
        }
        i += 1;
    }
    if !any {
        return None;
    }
    let mut exp = 0i64;
    if i < s.len() {
        if s[i] | 0x20 != b'p' {
            return None;
        }
        exp = parse_exp(&s[i + 1..])?;
    }
    if m.is_zero() {
        return Some(Ld::Finite {
            neg,
            mant: 0,
            exp: 0,
        });
    }
    let e2 = exp.saturating_sub(frac_bits);
    let top = e2.saturating_add(i64::from(m.bit_len()));
    if top > i64::from(MSB_EXP_MAX) + 2 {
        return Some(Ld::Inf { neg });
    }
    if top < i64::from(LSB_EXP_MIN) - 2 {
        return None;
    }
    match round_big(neg, &m, e2 as i32) {
        Ld::Finite { mant: 0, .. } => None,
        v => Some(v),
    }
}

/// The exact sum, rounded to extended precision.
pub fn add(a: Ld, b: Ld) -> Ld {
    let (
        Ld::Finite {
            neg: an,
            mant: am,
            exp: ae,
        },
        Ld::Finite {
            neg: bn,
            mant: bm,
            exp: be,
        },
    ) = (a, b)
    else {
        return match (a, b) {
            (Ld::Inf { neg: x }, Ld::Inf { neg: y }) if x != y => Ld::Inf { neg: false },
            (Ld::Inf { neg }, _) | (_, Ld::Inf { neg }) => Ld::Inf { neg },
            _ => Ld::ZERO,
        };
    };
    if am == 0 {
        return b;
    }
    if bm == 0 {
        return a;
    }
    let e = ae.min(be);
    let x = Big::from_u128(u128::from(am)).shl((ae - e) as u32);
    let y = Big::from_u128(u128::from(bm)).shl((be - e) as u32);
    if an == bn {
        return round_big(an, &x.add(&y), e);
    }
    match x.cmp(&y) {
        Ordering::Equal => Ld::ZERO,
        Ordering::Greater => {
            let mut d = x;
            d.sub_assign(&y);
            round_big(an, &d, e)
        }
        Ordering::Less => {
            let mut d = y;
            d.sub_assign(&x);
            round_big(bn, &d, e)
        }
    }
}

/// Redis's `ld2string(..., LD_STR_HUMAN)`: `%.17Lf`, trailing zeros and a
/// trailing dot removed, `-0` written `0`. `v` must be finite.
pub fn format_human(v: Ld) -> String {
    let Ld::Finite { neg, mant, exp } = v else {
        return if matches!(v, Ld::Inf { neg: true }) {
            "-inf".into()
        } else {
            "inf".into()
        };
    };
    const PLACES: usize = 17;
    let m = Big::from_u128(u128::from(mant));
    let digits = if exp >= 0 {
        let mut s = m.shl(exp as u32).to_decimal();
        s.push_str(&"0".repeat(PLACES));
        s
    } else {
        let shift = (-exp) as u32;
        let mut n = m;
        n.mul_pow10(PLACES as u32);
        let mut q = n.shr(shift);
        let half = n.bit(shift - 1);
        let below = n.any_below(shift - 1);
        if half && (below || q.0.first().is_some_and(|l| l & 1 == 1)) {
            q.add_small(1);
        }
        q.to_decimal()
    };
    let digits = format!("{digits:0>width$}", width = PLACES + 1);
    let (int, frac) = digits.split_at(digits.len() - PLACES);
    let frac = frac.trim_end_matches('0');
    let mut out = String::with_capacity(digits.len() + 2);
    if neg {
        out.push('-');
    }
    out.push_str(int);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    if out == "-0" {
        out = "0".into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `INCRBYFLOAT` of `b` on a key holding `a`, as the reply string.
    fn incr(a: &str, b: &str) -> Option<String> {
        let v = add(parse(a.as_bytes())?, parse(b.as_bytes())?);
        v.is_finite().then(|| format_human(v))
    }

    #[test]
    fn matches_redis_long_double() {
        // Expected strings recorded from redis-server 7.0.15 on x86-64.
        let cases = [
            ("0", "1.5", "1.5"),
            ("1.5", "0.5", "2"),
            ("0.1", "0.2", "0.3"),
            ("3000", "0.1", "3000.10000000000000009"),
            ("3000.10000000000000009", "-3000.1", "0"),
            ("10.5", "1.23e-5", "10.5000123"),
            ("5000", "2.0e2", "5200"),
            ("5200", "0x10", "5216"),
            ("0", "1e20", "100000000000000000000"),
            ("0", "-0", "0"),
            ("0", "1e-20", "0"),
            ("0", "123456789012345678", "123456789012345678"),
            ("0", "3.3333333333333333333", "3.33333333333333333"),
            ("0", "0.000003814697265625", "0.00000381469726562"),
            ("0", "1.000003814697265625", "1.00000381469726562"),
            ("0", "0.000011444091796875", "0.00001144409179688"),
            ("0", "1e-4940", "0"),
            // A numerator of many more digits than its denominator (the
            // quotient's bits are bounded; this overflowed a shift once).
            (
                "123456789012345678901234567890123456789012345678901234567890.5",
                "1",
                "123456789012345678904212663537885431876092564888614510526464",
            ),
            (
                "0.123456789012345678901234567890123456789012345678901234567890",
                "1",
                "1.12345678901234568",
            ),
            ("6.5", "0x1p-2", "6.75"),
            ("0", "9223372036854775807", "9223372036854775807"),
            ("9223372036854775807", "1", "9223372036854775808"),
            ("0.1", "1e-17", "0.10000000000000001"),
            ("-1.5", "1.5", "0"),
            ("0", "-0.000000000000000001", "0"),
            ("1e5", "1", "100001"),
        ];
        for (a, b, want) in cases {
            assert_eq!(incr(a, b).as_deref(), Some(want), "{a} + {b}");
        }
        let big = incr("0", "1e308").unwrap_or_default();
        assert!(big.starts_with("99999999999999999996685879655845645660560099847415567207797"));
        assert!(big.ends_with("728255046343928578048"));
    }

    #[test]
    fn rejects_what_string2ld_rejects() {
        for bad in [
            "", " 1", "1 ", "abc", "nan", "-nan", "1e", "0x", "1e5000", "1e-5000", "-", ".", "e5",
            "1.2.3", "1\0junk", "\0", "2\0",
        ] {
            assert!(parse(bad.as_bytes()).is_none(), "{bad:?}");
        }
        for good in ["inf", "-Infinity", ".5", "5.", "+1", "0e99999", "0x1.8p1"] {
            assert!(parse(good.as_bytes()).is_some(), "{good:?}");
        }
        assert_eq!(
            incr(
                "1.18973149535723176502e+4932",
                "1.18973149535723176502e+4932"
            ),
            None
        );
        assert_eq!(incr("0", "inf"), None);
    }
}
