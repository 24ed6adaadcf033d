//! Request decoding, following redis-server's `processMultibulkBuffer` and
//! `processInlineBuffer` (networking.c, 7.0), including their error strings.

use bytes::{Bytes, BytesMut};

/// Longest inline request, and longest `*<n>` / `$<n>` header line
/// (`PROTO_INLINE_MAX_SIZE` in Redis): anything longer without a newline is
/// an attack or garbage, so it is refused instead of buffered.
pub const PROTO_INLINE_MAX_BYTES: usize = 64 * 1024;

/// Multibulk count above which an unauthenticated client is refused
/// (Redis: a client that has not authenticated may send only small commands).
const UNAUTH_MULTIBULK_MAX: i64 = 10;
/// Bulk length above which an unauthenticated client is refused.
const UNAUTH_BULK_BYTES_MAX: i64 = 16384;

/// Limits applied while decoding; they come from the server configuration.
#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    /// `proto-max-bulk-len` (default 512 MiB).
    pub bulk_bytes_max: i64,
    /// False until the client authenticated when `requirepass` is set.
    pub authenticated: bool,
}

/// A protocol error: the client gets `-ERR <message>` and is disconnected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProtocolError(pub &'static str);

/// Result of one decoding step.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole command; `inline` is true for the telnet form.
    Command { args: Vec<Bytes>, inline: bool },
    /// A request with no arguments (an empty line, `*0`, `*-1`): consumed, nothing to run.
    Empty,
    /// Not enough bytes yet; nothing was consumed.
    Incomplete,
}

/// Redis's `string2ll`: a strict base-10 integer without leading `+`,
/// leading zeros or spaces.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits[0] == b'0' {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else if v > i64::MAX as u64 {
        None
    } else {
        Some(v as i64)
    }
}

/// Decodes one request from the front of `buf`, consuming it when complete.
/// Stateless: a connection uses a [`Decoder`], which resumes a multibulk
/// request where the previous read left it.
pub fn parse_request(buf: &mut BytesMut, limits: ParseLimits) -> Result<Parsed, ProtocolError> {
    Decoder::default().parse(buf, limits)
}

/// A connection's request decoder. A multibulk request that is not
/// complete keeps its progress here (the argument headers validated so far
/// and where the next one starts), as Redis keeps `multibulklen` and
/// `bulklen` in its client: the next read continues from there, so a
/// request of N arguments arriving in many reads costs O(N), not a scan
/// of every header again on each read.
///
/// The progress refers to the front of the buffer passed to `parse`: the
/// caller passes the same buffer, with bytes only appended, until `parse`
/// returns something other than `Incomplete` (a request consumed, or an
/// error, after which the decoder starts afresh).
///
/// A connection decodes with [`Decoder::parse_into`], which fills an
/// argument vector the connection reuses from command to command; the
/// decoder likewise keeps its span vector between requests, so decoding a
/// request allocates nothing once the connection has warmed up.
#[derive(Debug, Default)]
pub struct Decoder {
    partial: Option<Partial>,
    /// The span vector of the last request, empty, kept for its capacity.
    spare: Vec<(usize, usize)>,
}

/// Span vectors longer than this are not kept between requests (a huge
/// MSET should not pin its memory for the connection's life).
const SPARE_SPANS_MAX: usize = 1024;

/// A multibulk request whose first `spans.len()` arguments are complete.
#[derive(Debug)]
struct Partial {
    count: usize,
    spans: Vec<(usize, usize)>,
    /// Where the next argument's `$` header starts.
    pos: usize,
}

impl Decoder {
    /// Decodes one request from the front of `buf`, consuming it when
    /// complete.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        limits: ParseLimits,
    ) -> Result<Parsed, ProtocolError> {
        let mut args = Vec::new();
        Ok(match self.parse_into(buf, limits, &mut args)? {
            Parsed::Command { inline, .. } => Parsed::Command { args, inline },
            other => other,
        })
    }

    /// `parse`, with a complete request's arguments put into `args`
    /// (cleared first) instead of a new vector: the `Parsed::Command`
    /// returned then has an empty `args`. `args` is left untouched unless
    /// a command is returned.
    pub fn parse_into(
        &mut self,
        buf: &mut BytesMut,
        limits: ParseLimits,
        args: &mut Vec<Bytes>,
    ) -> Result<Parsed, ProtocolError> {
        if let Some(p) = self.partial.take() {
            return self.resume(buf, limits, p, args);
        }
        if buf.is_empty() {
            return Ok(Parsed::Incomplete);
        }
        if buf[0] == b'*' {
            self.parse_multibulk(buf, limits, args)
        } else {
            parse_inline(buf, args)
        }
    }

    fn parse_multibulk(
        &mut self,
        buf: &mut BytesMut,
        limits: ParseLimits,
        args: &mut Vec<Bytes>,
    ) -> Result<Parsed, ProtocolError> {
        let Some((cr, pos)) = header_line(buf, 0) else {
            if buf.len() > PROTO_INLINE_MAX_BYTES {
                return Err(ProtocolError("Protocol error: too big mbulk count string"));
            }
            return Ok(Parsed::Incomplete);
        };
        let count = match parse_i64(&buf[1..cr]) {
            Some(n) if n <= i32::MAX as i64 => n,
            _ => return Err(ProtocolError("Protocol error: invalid multibulk length")),
        };
        if count > UNAUTH_MULTIBULK_MAX && !limits.authenticated {
            return Err(ProtocolError(
                "Protocol error: unauthenticated multibulk length",
            ));
        }
        if count <= 0 {
            let _ = buf.split_to(pos);
            return Ok(Parsed::Empty);
        }
        let mut spans = std::mem::take(&mut self.spare);
        spans.reserve((count as usize).min(1024));
        let p = Partial {
            count: count as usize,
            spans,
            pos,
        };
        self.resume(buf, limits, p, args)
    }

    /// Validates the argument headers after `p.pos` and finds the request's
    /// end without consuming; keeps the progress when it is not complete.
    fn resume(
        &mut self,
        buf: &mut BytesMut,
        limits: ParseLimits,
        mut p: Partial,
        args: &mut Vec<Bytes>,
    ) -> Result<Parsed, ProtocolError> {
        while p.spans.len() < p.count {
            let pos = p.pos;
            if pos >= buf.len() {
                self.partial = Some(p);
                return Ok(Parsed::Incomplete);
            }
            let Some((cr, after)) = header_line(buf, pos) else {
                if buf.len() - pos > PROTO_INLINE_MAX_BYTES {
                    return Err(ProtocolError("Protocol error: too big bulk count string"));
                }
                self.partial = Some(p);
                return Ok(Parsed::Incomplete);
            };
            if buf[pos] != b'$' {
                return Err(expected_dollar(buf[pos]));
            }
            let len = match parse_i64(&buf[pos + 1..cr]) {
                Some(n) if n >= 0 && n <= limits.bulk_bytes_max => n,
                _ => return Err(ProtocolError("Protocol error: invalid bulk length")),
            };
            if len > UNAUTH_BULK_BYTES_MAX && !limits.authenticated {
                return Err(ProtocolError("Protocol error: unauthenticated bulk length"));
            }
            let len = len as usize;
            let end = after + len + 2;
            if end > buf.len() {
                // Make room for a large argument in one allocation.
                if end > buf.capacity() {
                    buf.reserve(end - buf.len());
                }
                self.partial = Some(p);
                return Ok(Parsed::Incomplete);
            }
            p.spans.push((after, len));
            p.pos = end;
        }
        let frame = buf.split_to(p.pos).freeze();
        args.clear();
        args.extend(
            p.spans
                .iter()
                .map(|&(start, len)| frame.slice(start..start + len)),
        );
        if p.spans.capacity() <= SPARE_SPANS_MAX {
            p.spans.clear();
            self.spare = p.spans;
        }
        Ok(Parsed::Command {
            args: Vec::new(),
            inline: false,
        })
    }
}

fn parse_inline(buf: &mut BytesMut, out: &mut Vec<Bytes>) -> Result<Parsed, ProtocolError> {
    // Redis finds the line end with `strchr`, which stops at a NUL byte: a
    // NUL before the first newline leaves the request incomplete (more input
    // cannot complete it, so the buffer grows to the inline limit and the
    // client gets the "too big" error), exactly as redis-server behaves.
    // One scan for whichever comes first: searching the whole buffer for a
    // NUL would make a buffer of N pipelined inline requests cost O(N^2).
    let nl = memchr::memchr2(b'\n', 0, buf).filter(|&i| buf[i] == b'\n');
    let Some(nl) = nl else {
        if buf.len() > PROTO_INLINE_MAX_BYTES {
            return Err(ProtocolError("Protocol error: too big inline request"));
        }
        return Ok(Parsed::Incomplete);
    };
    let line = buf.split_to(nl + 1);
    let mut end = nl;
    if end > 0 && line[end - 1] == b'\r' {
        end -= 1;
    }
    let args = split_args(&line[..end]).ok_or(ProtocolError(
        "Protocol error: unbalanced quotes in request",
    ))?;
    if args.is_empty() {
        return Ok(Parsed::Empty);
    }
    out.clear();
    out.extend(args.into_iter().map(Bytes::from));
    Ok(Parsed::Command {
        args: Vec::new(),
        inline: true,
    })
}

/// Reads a `<prefix><integer>\r\n` header at `pos`; returns the value and the
/// position after the line, or None when the line is not complete yet.
fn header_line(buf: &[u8], pos: usize) -> Option<(usize, usize)> {
    let cr = memchr::memchr(b'\r', &buf[pos..])? + pos;
    // Redis waits until the byte after '\r' is there, without checking it is '\n'.
    if cr + 1 >= buf.len() {
        return None;
    }
    Some((cr, cr + 2))
}

fn expected_dollar(got: u8) -> ProtocolError {
    // The message embeds the offending byte; keep one static string per
    // printable byte so the error type stays allocation-free.
    static MSGS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let msgs = MSGS.get_or_init(|| {
        (0u8..=255)
            .map(|b| {
                let s = format!("Protocol error: expected '$', got '{}'", b as char);
                &*Box::leak(s.into_boxed_str())
            })
            .collect()
    });
    ProtocolError(msgs[got as usize])
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// Redis's `sdssplitargs`: splits an inline command line into arguments,
/// honouring "double quotes" (with `\n \r \t \b \a \\ \" \xHH` escapes) and
/// 'single quotes' (with `\'`). Returns None for unbalanced quotes or a
/// closing quote not followed by a space.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // `sdssplitargs` reads a C string: a NUL byte ends the line.
    let line = match memchr::memchr(0, line) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_c_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut inq = false;
        let mut insq = false;
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit()
                {
                    cur.push(hex_val(line[i + 2]) * 16 + hex_val(line[i + 3]));
                    i += 3;
                } else if line[i] == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        c => c,
                    });
                } else if line[i] == b'"' {
                    if i + 1 < n && !is_c_space(line[i + 1]) {
                        return None;
                    }
                    inq = false;
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                if line[i] == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if line[i] == b'\'' {
                    if i + 1 < n && !is_c_space(line[i + 1]) {
                        return None;
                    }
                    insq = false;
                    i += 1;
                    break;
                } else {
                    cur.push(line[i]);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' => {
                        break;
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        let _ = (inq, insq);
        args.push(cur);
    }
}

/// C's `isspace` in the "C" locale: space, `\t`, `\n`, `\v`, `\f`, `\r`
/// (Rust's `is_ascii_whitespace` leaves out `\v`).
pub fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: ParseLimits = ParseLimits {
        bulk_bytes_max: 512 * 1024 * 1024,
        authenticated: true,
    };

    fn one(input: &[u8]) -> Result<Parsed, ProtocolError> {
        let mut b = BytesMut::from(input);
        parse_request(&mut b, OPEN)
    }

    fn cmd(args: &[&str]) -> Parsed {
        Parsed::Command {
            args: args.iter().map(|a| Bytes::from(a.to_string())).collect(),
            inline: false,
        }
    }

    #[test]
    fn multibulk_whole_and_partial() {
        assert_eq!(
            one(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
            Ok(cmd(&["GET", "k"]))
        );
        let full = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        for cut in 0..full.len() {
            assert_eq!(one(&full[..cut]), Ok(Parsed::Incomplete), "cut {cut}");
        }
    }

    #[test]
    fn multibulk_errors_match_redis() {
        let e = |s: &[u8]| one(s).unwrap_err().0;
        assert_eq!(e(b"*x\r\n"), "Protocol error: invalid multibulk length");
        assert_eq!(
            e(b"*3000000000\r\n"),
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(e(b"*1\r\nfoo\r\n"), "Protocol error: expected '$', got 'f'");
        assert_eq!(e(b"*1\r\n$-1\r\n"), "Protocol error: invalid bulk length");
        assert_eq!(
            e(b"*1\r\n$600000000\r\n"),
            "Protocol error: invalid bulk length"
        );
    }

    #[test]
    fn empty_multibulk_is_skipped() {
        let mut b = BytesMut::from(&b"*0\r\n*-1\r\nPING\r\n"[..]);
        assert_eq!(parse_request(&mut b, OPEN), Ok(Parsed::Empty));
        assert_eq!(parse_request(&mut b, OPEN), Ok(Parsed::Empty));
        assert!(matches!(
            parse_request(&mut b, OPEN),
            Ok(Parsed::Command { inline: true, .. })
        ));
    }

    #[test]
    fn inline_quoting() {
        assert_eq!(
            split_args(br#"set "a b" 'c\'d' "\x41\n""#),
            Some(vec![
                b"set".to_vec(),
                b"a b".to_vec(),
                b"c'd".to_vec(),
                b"A\n".to_vec()
            ])
        );
        assert_eq!(split_args(br#"set "a"b"#), None);
        assert_eq!(split_args(br#"set "ab"#), None);
        assert_eq!(split_args(b"   "), Some(vec![]));
    }

    #[test]
    fn inline_nul_bytes_wait_like_redis() {
        // A NUL before the newline: Redis's strchr never finds the line end,
        // so the request stays incomplete (nothing pushed, nothing consumed).
        for input in [&b"PING \0\r\n"[..], b"\0\r\n", b"a\0b\r\nPING\r\n"] {
            let mut b = BytesMut::from(input);
            assert_eq!(parse_request(&mut b, OPEN), Ok(Parsed::Incomplete));
            assert_eq!(&b[..], input, "nothing consumed");
        }
        // ... until the inline limit is passed: then the protocol error.
        let mut big = b"PING \0".to_vec();
        big.resize(PROTO_INLINE_MAX_BYTES + 1, b'x');
        let mut b = BytesMut::from(&big[..]);
        assert_eq!(
            parse_request(&mut b, OPEN),
            Err(ProtocolError("Protocol error: too big inline request"))
        );
        // A NUL after a complete line leaves that line alone.
        let mut b = BytesMut::from(&b"PING\r\n\0"[..]);
        assert_eq!(
            parse_request(&mut b, OPEN),
            Ok(Parsed::Command {
                args: vec![Bytes::from_static(b"PING")],
                inline: true
            })
        );
        // sdssplitargs stops at a NUL (config lines use it too).
        assert_eq!(
            split_args(b"set a\0b c"),
            Some(vec![b"set".to_vec(), b"a".to_vec()])
        );
        assert_eq!(split_args(b"\0 x"), Some(vec![]));
        assert_eq!(split_args(b"\"a\0b\""), None);
        // C isspace skips a leading vertical tab; inside an unquoted
        // argument it is an ordinary byte (checked against redis-server 7.0).
        assert_eq!(
            split_args(b"\x0bECHO\x0bx \x0b\"y\"\x0b"),
            Some(vec![b"ECHO\x0bx".to_vec(), b"y".to_vec()])
        );
    }

    #[test]
    fn parse_into_reuses_the_argument_vector() {
        let mut d = Decoder::default();
        let mut b = BytesMut::from(
            &b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING x\r\n*1\r\n$4\r\nPI"[..],
        );
        let mut args = Vec::new();
        let r = d.parse_into(&mut b, OPEN, &mut args);
        assert_eq!(
            r,
            Ok(Parsed::Command {
                args: vec![],
                inline: false
            })
        );
        assert_eq!(args, [&b"SET"[..], &b"k"[..], &b"v"[..]]);
        let cap = args.capacity();
        // The next request replaces the arguments in the same vector.
        assert!(matches!(
            d.parse_into(&mut b, OPEN, &mut args),
            Ok(Parsed::Command { inline: false, .. })
        ));
        assert_eq!(args, [&b"GET"[..], &b"k"[..]]);
        assert_eq!(args.capacity(), cap);
        assert!(matches!(
            d.parse_into(&mut b, OPEN, &mut args),
            Ok(Parsed::Command { inline: true, .. })
        ));
        assert_eq!(args, [&b"PING"[..], &b"x"[..]]);
        // Incomplete: nothing consumed, the vector left alone.
        assert_eq!(
            d.parse_into(&mut b, OPEN, &mut args),
            Ok(Parsed::Incomplete)
        );
        assert_eq!(args, [&b"PING"[..], &b"x"[..]]);
        b.extend_from_slice(b"NG\r\n");
        assert!(matches!(
            d.parse_into(&mut b, OPEN, &mut args),
            Ok(Parsed::Command { inline: false, .. })
        ));
        assert_eq!(args, [&b"PING"[..]]);
        assert!(b.is_empty());
        // `parse` gives the same requests in vectors of their own.
        let mut b = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"[..]);
        assert_eq!(d.parse(&mut b, OPEN), Ok(cmd(&["GET", "k"])));
    }

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        assert_eq!(parse_i64(b"01"), None);
        assert_eq!(parse_i64(b"+1"), None);
        assert_eq!(parse_i64(b"-0"), None);
        assert_eq!(parse_i64(b" 1"), None);
    }
}
