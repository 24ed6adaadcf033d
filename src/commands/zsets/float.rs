//! C `strtod` as glibc implements it, and the two ways Redis checks its
//! result: `getDoubleFromObject` (scores, increments, weights) and
//! `zslParseRange` (score range bounds).
//!
//! Why not `str::parse::<f64>`: Redis accepts what `strtod` accepts, which
//! includes `infinity`, hexadecimal floats (`0x1p-3`) and, for range bounds,
//! leading whitespace and the empty string; and it rejects results that
//! overflowed or underflowed to zero. Decimal conversion itself is
//! delegated to `str::parse`, which is correctly rounded like glibc.

use crate::protocol::parse::is_c_space;

/// What `strtod` did with a C string.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Strtod {
    pub value: f64,
    /// Bytes consumed (`eptr - s`); 0 when no conversion was done.
    pub consumed: usize,
    /// `errno == ERANGE` with a result of ±HUGE_VAL or zero.
    pub range_error: bool,
}

fn starts_with_ci(s: &[u8], p: &str) -> bool {
    s.len() >= p.len() && s[..p.len()].eq_ignore_ascii_case(p.as_bytes())
}

/// Saturating decimal exponent; large enough to over- or underflow any
/// mantissa a request can carry.
const EXP_ABS_MAX: i64 = 1 << 40;

/// glibc `strtod` over `s` read as a C string (it ends at the first NUL).
pub fn strtod(s: &[u8]) -> Strtod {
    let s = match s.iter().position(|&b| b == 0) {
        Some(p) => &s[..p],
        None => s,
    };
    let none = Strtod {
        value: 0.0,
        consumed: 0,
        range_error: false,
    };
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let sign = |v: f64| if neg { -v } else { v };
    let rest = &s[i..];
    if starts_with_ci(rest, "inf") {
        let n = if starts_with_ci(rest, "infinity") {
            8
        } else {
            3
        };
        return Strtod {
            value: sign(f64::INFINITY),
            consumed: i + n,
            range_error: false,
        };
    }
    if starts_with_ci(rest, "nan") {
        let mut n = 3;
        if rest.get(3) == Some(&b'(') {
            let close = rest[4..]
                .iter()
                .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'));
            if let Some(p) = close {
                if rest[4 + p] == b')' {
                    n = 4 + p + 1;
                }
            }
        }
        return Strtod {
            value: f64::NAN,
            consumed: i + n,
            range_error: false,
        };
    }
    if starts_with_ci(rest, "0x") {
        if let Some(r) = hex(&rest[2..], neg) {
            return Strtod {
                consumed: i + 2 + r.consumed,
                ..r
            };
        }
    }
    // Decimal: digits [. digits] [e [sign] digits].
    let mut j = 0;
    let int_start = j;
    while j < rest.len() && rest[j].is_ascii_digit() {
        j += 1;
    }
    let int_digits = &rest[int_start..j];
    let mut frac_digits: &[u8] = &[];
    if rest.get(j) == Some(&b'.') {
        let fs = j + 1;
        let mut k = fs;
        while k < rest.len() && rest[k].is_ascii_digit() {
            k += 1;
        }
        if k > fs || !int_digits.is_empty() {
            frac_digits = &rest[fs..k];
            j = k;
        }
    }
    if int_digits.is_empty() && frac_digits.is_empty() {
        return none;
    }
    let mut exp: i64 = 0;
    if matches!(rest.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        let eneg = match rest.get(k) {
            Some(b'-') => {
                k += 1;
                true
            }
            Some(b'+') => {
                k += 1;
                false
            }
            _ => false,
        };
        let ds = k;
        while k < rest.len() && rest[k].is_ascii_digit() {
            exp = (exp * 10 + i64::from(rest[k] - b'0')).min(EXP_ABS_MAX);
            k += 1;
        }
        if k > ds {
            j = k;
            if eneg {
                exp = -exp;
            }
        } else {
            exp = 0;
        }
    }
    let mut text = String::with_capacity(int_digits.len() + frac_digits.len() + 24);
    text.push_str(if int_digits.is_empty() {
        "0"
    } else {
        std::str::from_utf8(int_digits).unwrap_or("0")
    });
    if !frac_digits.is_empty() {
        text.push('.');
        text.push_str(std::str::from_utf8(frac_digits).unwrap_or("0"));
    }
    text.push('e');
    text.push_str(&exp.to_string());
    let v: f64 = text.parse().unwrap_or(0.0);
    let nonzero = int_digits.iter().chain(frac_digits).any(|&d| d != b'0');
    Strtod {
        value: sign(v),
        consumed: i + j,
        range_error: v.is_infinite() || (v == 0.0 && nonzero),
    }
}

/// The part of a hexadecimal float after `0x`; None when no hex digit
/// follows (then strtod converts just the `0`).
fn hex(s: &[u8], neg: bool) -> Option<Strtod> {
    let mut mant: u64 = 0;
    let mut digits = 0; // significant digits taken into `mant`
    let mut sticky = false;
    let mut exp2: i64 = 0;
    let mut any = false;
    let mut j = 0;
    let mut seen_dot = false;
    while j < s.len() {
        let c = s[j];
        if c == b'.' && !seen_dot {
            seen_dot = true;
            j += 1;
            continue;
        }
        let Some(d) = (c as char).to_digit(16) else {
            break;
        };
        any = true;
        if mant == 0 && d == 0 {
            if seen_dot {
                exp2 -= 4;
            }
        } else if digits < 16 {
            mant = (mant << 4) | u64::from(d);
            digits += 1;
            if seen_dot {
                exp2 -= 4;
            }
        } else {
            sticky |= d != 0;
            if !seen_dot {
                exp2 += 4;
            }
        }
        j += 1;
    }
    if !any {
        return None;
    }
    if matches!(s.get(j), Some(b'p' | b'P')) {
        let mut k = j + 1;
        let eneg = match s.get(k) {
            Some(b'-') => {
                k += 1;
                true
            }
            Some(b'+') => {
                k += 1;
                false
            }
            _ => false,
        };
        let ds = k;
        let mut e: i64 = 0;
        while k < s.len() && s[k].is_ascii_digit() {
            e = (e * 10 + i64::from(s[k] - b'0')).min(EXP_ABS_MAX);
            k += 1;
        }
        if k > ds {
            j = k;
            exp2 += if eneg { -e } else { e };
        }
    }
    let m = if sticky { mant | 1 } else { mant };
    let mut v = m as f64;
    let mut e = exp2.clamp(-5000, 5000) as i32;
    while e > 0 && v.is_finite() {
        let step = e.min(1000);
        v *= 2f64.powi(step);
        e -= step;
    }
    while e < 0 && v != 0.0 {
        let step = (-e).min(1000);
        v /= 2f64.powi(step);
        e += step;
    }
    Some(Strtod {
        value: if neg { -v } else { v },
        consumed: j,
        range_error: v.is_infinite() || (v == 0.0 && mant != 0),
    })
}

/// Redis's `getDoubleFromObject`: the whole argument must be a number,
/// without leading space, not NaN, not out of range.
pub fn parse_score(a: &[u8]) -> Option<f64> {
    if a.is_empty() || is_c_space(a[0]) {
        return None;
    }
    let r = strtod(a);
    if r.consumed != a.len() || r.range_error || r.value.is_nan() {
        return None;
    }
    Some(r.value)
}

/// A score range bound as `zslParseRange` reads it: optional `(` for an
/// exclusive bound, then `strtod` up to the end of the C string (leading
/// whitespace and an empty number, read as 0, are accepted; NaN is not).
/// Returns (value, exclusive).
pub fn parse_score_bound(a: &[u8]) -> Option<(f64, bool)> {
    let (ex, body) = match a.first() {
        Some(b'(') => (true, &a[1..]),
        _ => (false, a),
    };
    let c = match body.iter().position(|&b| b == 0) {
        Some(p) => &body[..p],
        None => body,
    };
    let r = strtod(c);
    if r.consumed != c.len() || r.value.is_nan() {
        return None;
    }
    Some((r.value, ex))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_like_get_double_from_object() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_score(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b"0x1p-2"), Some(0.25));
        assert_eq!(parse_score(b"0x.8"), Some(0.5));
        assert_eq!(parse_score(b"1e-320"), Some(1e-320));
        assert_eq!(parse_score(b".5"), Some(0.5));
        assert_eq!(parse_score(b"5."), Some(5.0));
        assert_eq!(parse_score(b"1e5"), Some(100000.0));
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"nan",
            b"1e400",
            b"1e-400",
            b"abc",
            b"1\x002",
            b"0x",
            b"1e",
            b"infinit",
            b"-",
            b".",
        ] {
            assert_eq!(parse_score(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_score(b"0e999999999999999999999"), Some(0.0));
    }

    #[test]
    fn bounds_like_zsl_parse_range() {
        assert_eq!(parse_score_bound(b"(1"), Some((1.0, true)));
        assert_eq!(parse_score_bound(b""), Some((0.0, false)));
        assert_eq!(parse_score_bound(b"("), Some((0.0, true)));
        assert_eq!(parse_score_bound(b" 2"), Some((2.0, false)));
        assert_eq!(parse_score_bound(b"1e400"), Some((f64::INFINITY, false)));
        assert_eq!(parse_score_bound(b"3\x00junk"), Some((3.0, false)));
        assert_eq!(parse_score_bound(b"nan"), None);
        assert_eq!(parse_score_bound(b"1x"), None);
        assert_eq!(parse_score_bound(b"2 "), None);
    }
}
