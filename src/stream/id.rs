//! Stream ids: `ms-seq` as a `u128` (`ms << 64 | seq`, so numeric order is
//! id order and the id is the entry log's record key), and their parsing
//! exactly as Redis's `streamGenericParseIDOrReply` does.

pub fn make_id(ms: u64, seq: u64) -> u128 {
    (u128::from(ms) << 64) | u128::from(seq)
}

pub fn id_ms(id: u128) -> u64 {
    (id >> 64) as u64
}

pub fn id_seq(id: u128) -> u64 {
    id as u64
}

/// `ms-seq` text.
pub fn fmt_id(id: u128) -> String {
    let mut b = itoa::Buffer::new();
    let mut s = String::with_capacity(24);
    s.push_str(b.format(id_ms(id)));
    s.push('-');
    s.push_str(b.format(id_seq(id)));
    s
}

/// Redis's `string2ull`: a strict i64 (negative rejected), else C's
/// `strtoull` over the whole string (leading spaces, a sign; `-n` wraps).
pub fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = crate::protocol::parse::parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// A parsed id argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedId {
    pub id: u128,
    /// False for the `<ms>-*` form (XADD picks the sequence).
    pub seq_given: bool,
}

/// `streamGenericParseIDOrReply`: `-`, `+` (unless `strict`), `ms`,
/// `ms-seq`, and `ms-*` when `allow_star_seq`. `missing_seq` is the
/// sequence of a bare `ms`. The argument is read as a C string (up to its
/// first NUL) of at most 127 bytes.
pub fn parse_id(
    arg: &[u8],
    strict: bool,
    missing_seq: u64,
    allow_star_seq: bool,
) -> Option<ParsedId> {
    if arg.len() > 127 {
        return None;
    }
    let end = arg.iter().position(|&b| b == 0).unwrap_or(arg.len());
    let buf = &arg[..end];
    if strict && (buf == b"-" || buf == b"+") {
        return None;
    }
    if buf == b"-" {
        return Some(ParsedId {
            id: 0,
            seq_given: true,
        });
    }
    if buf == b"+" {
        return Some(ParsedId {
            id: u128::MAX,
            seq_given: true,
        });
    }
    let (ms_part, seq_part) = match buf.iter().position(|&b| b == b'-') {
        Some(p) => (&buf[..p], Some(&buf[p + 1..])),
        None => (buf, None),
    };
    let ms = string2ull(ms_part)?;
    let (seq, seq_given) = match seq_part {
        Some(b"*") if allow_star_seq => (0, false),
        Some(s) => (string2ull(s)?, true),
        None => (missing_seq, true),
    };
    Some(ParsedId {
        id: make_id(ms, seq),
        seq_given,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_redis() {
        let p = |s: &str| parse_id(s.as_bytes(), false, 0, false).map(|p| p.id);
        assert_eq!(p("-"), Some(0));
        assert_eq!(p("+"), Some(u128::MAX));
        assert_eq!(p("5"), Some(make_id(5, 0)));
        assert_eq!(p("5-3"), Some(make_id(5, 3)));
        assert_eq!(p("+5"), Some(make_id(5, 0)));
        assert_eq!(p("5-"), None);
        assert_eq!(p("-5"), None);
        assert_eq!(p("a"), None);
        assert_eq!(p(""), None);
        assert_eq!(
            p("18446744073709551615-18446744073709551615"),
            Some(u128::MAX)
        );
        assert_eq!(p("18446744073709551616"), None);
        assert_eq!(parse_id(b"-", true, 0, false), None);
        assert_eq!(
            parse_id(b"7-*", true, 0, true),
            Some(ParsedId {
                id: make_id(7, 0),
                seq_given: false
            })
        );
        assert_eq!(parse_id(b"7-*", true, 0, false), None);
        assert_eq!(fmt_id(make_id(1, 2)), "1-2");
    }
}
