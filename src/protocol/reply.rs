//! Reply encoding. One `Out` per connection collects the replies of a whole
//! pipelined batch; the connection writes it to the socket in one call.

/// Reply buffer for one connection, aware of its protocol version.
#[derive(Debug, Default)]
pub struct Out {
    pub buf: Vec<u8>,
    /// RESP3 (after `HELLO 3`) or RESP2.
    pub resp3: bool,
    /// Where the running command wrote Pub/Sub frames (subscription
    /// confirmations, messages to itself): Redis 7.0 sends those even when
    /// CLIENT REPLY OFF or SKIP suppresses the command's reply.
    pub pushes: Vec<std::ops::Range<usize>>,
    /// The codes of the error replies written and not yet counted (INFO
    /// errorstats; the server takes them after each command).
    pub error_codes: Vec<Vec<u8>>,
}

impl Out {
    pub fn new(resp3: bool) -> Self {
        Out {
            buf: Vec::with_capacity(256),
            resp3,
            pushes: Vec::new(),
            error_codes: Vec::new(),
        }
    }

    /// An empty `Out` writing into `buf` (cleared), to reuse its capacity.
    pub fn new_with_buf(mut buf: Vec<u8>, resp3: bool) -> Self {
        buf.clear();
        Out {
            buf,
            resp3,
            pushes: Vec::new(),
            error_codes: Vec::new(),
        }
    }

    /// Records `range` of the buffer as Pub/Sub frames (see `pushes`).
    pub fn mark_push(&mut self, range: std::ops::Range<usize>) {
        if !range.is_empty() {
            self.pushes.push(range);
        }
    }

    /// Drops the running command's reply from `reply_start` on, keeping
    /// the Pub/Sub frames among it (CLIENT REPLY OFF / SKIP).
    pub fn suppress_reply(&mut self, reply_start: usize) {
        let mut kept = Vec::new();
        for r in self.pushes.drain(..) {
            if r.start >= reply_start && r.end <= self.buf.len() {
                kept.extend_from_slice(&self.buf[r]);
            }
        }
        self.buf.truncate(reply_start);
        self.buf.extend_from_slice(&kept);
    }

    fn line(&mut self, prefix: u8, n: i64) {
        self.buf.push(prefix);
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `+<s>\r\n`
    pub fn simple(&mut self, s: &str) {
        self.buf.push(b'+');
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// `-<s>\r\n`; `s` starts with the error code (`ERR`, `WRONGTYPE`, ...).
    /// Newlines inside are replaced by spaces, as Redis does, so the reply
    /// stays one protocol line.
    pub fn error(&mut self, s: &str) {
        self.error_bytes(s.as_bytes());
    }

    /// `error` for messages that echo client bytes.
    pub fn error_bytes(&mut self, s: &[u8]) {
        // Redis's `afterErrorReply`: the code is the text up to the first
        // space within its first 32 bytes, else ERR.
        let code = match s[..s.len().min(32)].iter().position(|&c| c == b' ') {
            Some(i) => &s[..i],
            None => b"ERR".as_slice(),
        };
        self.error_codes.push(code.to_vec());
        self.buf.push(b'-');
        self.buf.extend(
            s.iter()
                .map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }),
        );
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn int(&mut self, n: i64) {
        self.line(b':', n);
    }

    pub fn bulk(&mut self, data: &[u8]) {
        self.line(b'$', data.len() as i64);
        self.buf.extend_from_slice(data);
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn bulk_int(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        let s = b.format(n);
        self.bulk(s.as_bytes());
    }

    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"$-1\r\n");
        }
    }

    /// A missing aggregate: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        if self.resp3 {
            self.buf.extend_from_slice(b"_\r\n");
        } else {
            self.buf.extend_from_slice(b"*-1\r\n");
        }
    }

    pub fn array(&mut self, n: usize) {
        self.line(b'*', n as i64);
    }

    /// A map of `n` pairs: `%n` in RESP3, a flat array of `2n` in RESP2.
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.line(b'%', n as i64);
        } else {
            self.line(b'*', 2 * n as i64);
        }
    }

    /// A set: `~n` in RESP3, an array in RESP2.
    pub fn set(&mut self, n: usize) {
        self.line(if self.resp3 { b'~' } else { b'*' }, n as i64);
    }

    /// An out-of-band push: `>n` in RESP3, an array in RESP2.
    pub fn push(&mut self, n: usize) {
        self.line(if self.resp3 { b'>' } else { b'*' }, n as i64);
    }

    /// A double: `,<g17>` in RESP3, a bulk string in RESP2.
    pub fn double(&mut self, d: f64) {
        let s = format_double(d);
        if self.resp3 {
            self.buf.push(b',');
            self.buf.extend_from_slice(s.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(s.as_bytes());
        }
    }

    /// A text for humans (INFO, CLIENT INFO): a verbatim `=` string in RESP3,
    /// a bulk string in RESP2.
    pub fn verbatim(&mut self, text: &[u8]) {
        if self.resp3 {
            self.line(b'=', text.len() as i64 + 4);
            self.buf.extend_from_slice(b"txt:");
            self.buf.extend_from_slice(text);
            self.buf.extend_from_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    pub fn boolean(&mut self, b: bool) {
        if self.resp3 {
            self.buf
                .extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(b as i64);
        }
    }

    /// Raw protocol bytes (already encoded).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
}

/// C's `printf("%.17g", d)`, which Redis uses for double replies:
/// 17 significant digits, trailing zeros removed, exponent form when the
/// exponent is < -4 or >= 17; `inf`, `-inf`, `nan` spelled as Redis does.
pub fn format_double(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d.is_nan() {
        return "nan".into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let sci = format!("{:.16e}", d);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..17).contains(&exp) {
        let decimals = (16 - exp).max(0) as usize;
        let s = format!("{:.*}", decimals, d);
        trim_zeros(&s)
    } else {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", m, sign, exp.abs())
    }
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g17_matches_printf() {
        assert_eq!(format_double(1.5), "1.5");
        assert_eq!(format_double(0.1), "0.10000000000000001");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(1e17), "1e+17");
        assert_eq!(format_double(1e16), "10000000000000000");
        assert_eq!(format_double(0.0001), "0.0001");
        assert_eq!(format_double(0.00001), "1.0000000000000001e-05");
        assert_eq!(format_double(-2.5), "-2.5");
        assert_eq!(format_double(f64::INFINITY), "inf");
    }

    #[test]
    fn resp2_and_resp3_nulls() {
        let mut o = Out::new(false);
        o.null();
        o.null_array();
        o.map(1);
        assert_eq!(o.buf, b"$-1\r\n*-1\r\n*2\r\n");
        let mut o = Out::new(true);
        o.null();
        o.null_array();
        o.map(1);
        assert_eq!(o.buf, b"_\r\n_\r\n%1\r\n");
    }
}
