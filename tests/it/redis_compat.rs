//! Compatibility with real Redis: replays every scenario in
//! `redis-tests/scenarios/*.txt` against an in-process redlog, once in RESP2
//! and once in RESP3, and compares each reply byte for byte with the golden
//! files recorded from redis-server 7.0 (`redis-tests/golden/<name>.resp2`,
//! `.resp3`).
//!
//! With `REDLOG_RECORD_ADDR=host:port` set, the same scenarios run against
//! that server instead (a real redis-server, see `redis-tests/record`) and the
//! golden files are rewritten from its replies.
//!
//! The scenario syntax, the golden format and the markers are described in
//! `redis-tests/README.md`; the grammar is repeated at the parsers below.

use crate::common;

use redis_protocol::resp2::decode::decode_range as resp2_decode_range;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A reply slower than this counts as missing: redlog on a busy 2-core CI
/// machine answers any scenario command in well under a second.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `~noreply` waits to make sure nothing arrives: long enough for a
/// debug build on a loaded machine to have answered a command it should not.
const NO_REPLY_WAIT: Duration = Duration::from_millis(300);
/// How long `@closed` waits for the server to close the connection.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Env var that switches to recording mode.
const RECORD_ENV: &str = "REDLOG_RECORD_ADDR";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("redis-tests")
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/// How a reply is compared with the golden one. Every marker except
/// `Exact` must be justified by a `#` comment on the line above it.
#[derive(Clone, Debug, PartialEq)]
enum Check {
    /// Byte for byte (no marker).
    Exact,
    /// `~type`: same RESP type byte only.
    Type,
    /// `~shape`: same type tree (aggregate sizes, element types); scalar
    /// contents ignored.
    Shape,
    /// `~int:LO..HI`: an integer reply within the bounds (each optional).
    IntRange(Option<i64>, Option<i64>),
    /// `~match:GLOB`: same type; the string payload matches GLOB (`*`, `?`).
    Match(Vec<u8>),
    /// `~unordered`: equal after sorting the elements of every aggregate.
    Unordered,
    /// `~skip:I,J`: an aggregate whose flat top-level elements I, J, ...
    /// (map keys and values both count) are compared by shape; the rest exactly.
    Skip(Vec<usize>),
    /// `~noreply`: the server must not answer within `NO_REPLY_WAIT`.
    NoReply,
    /// `~want:ESCAPED`: redlog must answer exactly ESCAPED, a deliberate
    /// difference from the recorded reply (which stays in the golden file).
    Want(Vec<u8>),
}

impl Check {
    /// The check with `{{NAME}}` in a `~match` pattern filled in.
    fn resolve(&self, vars: &HashMap<String, String>) -> Check {
        match self {
            Check::Match(g) => {
                let g = String::from_utf8_lossy(g);
                Check::Match(substitute(&g, vars).unwrap_or(g.into_owned()).into_bytes())
            }
            c => c.clone(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Check::Match(g) => format!("~match:{}", escape(g)),
            Check::Want(w) => format!("~want:{}", escape(w)),
            c => format!("{c:?}"),
        }
    }
}

#[derive(Debug)]
enum StepKind {
    /// A command: RESP multibulk of `split_args(text)`, or `text` verbatim
    /// as an inline command.
    Command {
        text: String,
        inline: bool,
        check: Check,
        /// `=NAME`: stores the reply's scalar (integer or string payload)
        /// for `{{NAME}}` in later lines.
        capture: Option<String>,
    },
    /// `@client N`: later commands go to connection N (opened on first use).
    Client(usize),
    /// `@sleep MS`.
    Sleep(u64),
    /// `@closed`: the current connection must be closed by the server.
    Closed,
    /// `@read`: the next frame the current connection received without
    /// sending anything (a push: CLIENT TRACKING invalidations, messages),
    /// or none within `NO_REPLY_WAIT`; compared as the marker says
    /// (`@read ~MARKER`).
    Read(Check),
}

#[derive(Debug)]
struct Step {
    line: usize,
    /// The scenario line as written (the golden file's `> ` line).
    source: String,
    kind: StepKind,
}

#[derive(Debug)]
struct Scenario {
    name: String,
    steps: Vec<Step>,
    /// `@pending REASON`: recorded, but excluded from replay (reported by name).
    pending: Option<String>,
}

/// Grammar, one item per line:
///   `# comment` | empty
///   `@client N` | `@sleep MS` | `@closed` | `@read` | `@pending REASON`
///   `@inline TEXT`                     (TEXT sent verbatim + "\r\n")
///   `[=NAME] [~MARKER] ARGS...`         (ARGS in redis-cli quoting)
fn parse_scenario(name: &str, text: &str) -> Result<Scenario, String> {
    let mut steps = Vec::new();
    let mut pending = None;
    let mut prev_comment = false;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        let err = |m: &str| format!("{name}.txt:{line_no}: {m}: {line}");
        if line.is_empty() {
            prev_comment = false;
            continue;
        }
        if line.starts_with('#') {
            prev_comment = true;
            continue;
        }
        let was_comment = std::mem::replace(&mut prev_comment, false);
        let step = |kind| Step {
            line: line_no,
            source: line.to_string(),
            kind,
        };
        if let Some(rest) = line.strip_prefix('@') {
            let (word, arg) = rest.split_once(' ').unwrap_or((rest, ""));
            let arg = arg.trim();
            let kind = match word {
                "client" => StepKind::Client(arg.parse().map_err(|_| err("bad client"))?),
                "sleep" => StepKind::Sleep(arg.parse().map_err(|_| err("bad sleep"))?),
                "closed" => StepKind::Closed,
                "read" if arg.is_empty() => StepKind::Read(Check::Exact),
                "read" => {
                    let m = arg
                        .strip_prefix('~')
                        .ok_or_else(|| err("bad @read marker"))?;
                    if !was_comment {
                        return Err(err(
                            "a ~marker needs a # comment on the line above saying why",
                        ));
                    }
                    StepKind::Read(
                        parse_marker(m.as_bytes()).ok_or_else(|| err("unknown ~marker"))?,
                    )
                }
                "pending" => {
                    pending = Some(arg.to_string());
                    continue;
                }
                "inline" => StepKind::Command {
                    text: arg.to_string(),
                    inline: true,
                    check: Check::Exact,
                    capture: None,
                },
                _ => return Err(err("unknown directive")),
            };
            steps.push(step(kind));
            continue;
        }
        let mut args = redlog::protocol::split_args(line.as_bytes())
            .ok_or_else(|| err("unbalanced quotes"))?;
        let mut check = Check::Exact;
        let mut capture = None;
        let mut used = 0;
        while let Some(a) = args.get(used) {
            if let Some(n) = a.strip_prefix(b"=") {
                capture = Some(String::from_utf8_lossy(n).into_owned());
            } else if let Some(m) = a.strip_prefix(b"~") {
                if check != Check::Exact {
                    return Err(err("only one ~marker per command"));
                }
                check = parse_marker(m).ok_or_else(|| err("unknown ~marker"))?;
            } else {
                break;
            }
            used += 1;
        }
        if check != Check::Exact && !was_comment {
            return Err(err(
                "a ~marker needs a # comment on the line above saying why",
            ));
        }
        if used == args.len() {
            return Err(err("no command"));
        }
        args.drain(..used);
        // Re-split later (after {{var}} substitution) from the command text:
        // the markers are the leading whitespace-separated tokens.
        let mut text = line;
        for _ in 0..used {
            text = text.trim_start();
            let end = token_end(text);
            text = &text[end..];
        }
        steps.push(step(StepKind::Command {
            text: text.trim().to_string(),
            inline: false,
            check,
            capture,
        }));
    }
    Ok(Scenario {
        name: name.to_string(),
        steps,
        pending,
    })
}

/// End of the first token of `s` (a marker; may be double-quoted).
fn token_end(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    let mut inq = false;
    while i < b.len() {
        match b[i] {
            b'\\' if inq => i += 1,
            b'"' => inq = !inq,
            c if c.is_ascii_whitespace() && !inq => return i,
            _ => {}
        }
        i += 1;
    }
    b.len()
}

fn parse_marker(m: &[u8]) -> Option<Check> {
    let s = std::str::from_utf8(m).ok();
    Some(match m {
        b"type" => Check::Type,
        b"shape" => Check::Shape,
        b"unordered" => Check::Unordered,
        b"noreply" => Check::NoReply,
        _ if m.starts_with(b"match:") => Check::Match(m[6..].to_vec()),
        _ if m.starts_with(b"want:") => {
            Check::Want(unescape(&String::from_utf8_lossy(&m[5..])).ok()?)
        }
        _ => {
            let s = s?;
            if let Some(r) = s.strip_prefix("int:") {
                let (lo, hi) = r.split_once("..")?;
                let b = |x: &str| -> Option<Option<i64>> {
                    if x.is_empty() {
                        Some(None)
                    } else {
                        x.parse().ok().map(Some)
                    }
                };
                Check::IntRange(b(lo)?, b(hi)?)
            } else if let Some(r) = s.strip_prefix("skip:") {
                Check::Skip(
                    r.split(',')
                        .map(|x| x.parse().ok())
                        .collect::<Option<_>>()?,
                )
            } else {
                return None;
            }
        }
    })
}

fn load_scenarios() -> Vec<Scenario> {
    let dir = root().join("scenarios");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(p).expect("read scenario");
            parse_scenario(&name, &text).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Observations and the golden format
// ---------------------------------------------------------------------------

/// What one step produced.
#[derive(Clone, Debug, PartialEq)]
enum Obs {
    /// One whole reply frame, raw.
    Frame(Vec<u8>),
    /// Nothing within the wait (expected for `~noreply`, `@closed` failed).
    NoReply,
    /// The server closed the connection.
    Closed,
}

/// Golden file grammar (one entry per command or `@closed` step, in order):
///   `> SOURCE-LINE`
///   `< ESCAPED-BYTES` ...   one line per "\r\n"-terminated piece of the frame
///   `= no reply` | `= closed`
/// Escapes: `\\`, `\r`, `\n`, `\t`, `\xHH` for other bytes outside 0x20..0x7e.
fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 8);
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s
}

fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut v = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            v.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'\\') => v.push(b'\\'),
            Some(b'r') => v.push(b'\r'),
            Some(b'n') => v.push(b'\n'),
            Some(b't') => v.push(b'\t'),
            Some(b'x') => {
                let h = s.get(i + 2..i + 4).ok_or("short \\x escape")?;
                v.push(u8::from_str_radix(h, 16).map_err(|_| "bad \\x escape")?);
                i += 2;
            }
            _ => return Err(format!("bad escape in {s:?}")),
        }
        i += 2;
    }
    Ok(v)
}

fn format_obs(out: &mut String, obs: &Obs) {
    match obs {
        Obs::NoReply => out.push_str("= no reply\n"),
        Obs::Closed => out.push_str("= closed\n"),
        Obs::Frame(f) => {
            let mut start = 0;
            for i in 0..f.len() {
                if f[i] == b'\n' && i > 0 && f[i - 1] == b'\r' {
                    let _ = writeln!(out, "< {}", escape(&f[start..=i]));
                    start = i + 1;
                }
            }
            if start < f.len() {
                let _ = writeln!(out, "< {}", escape(&f[start..]));
            }
        }
    }
}

fn show(obs: &Obs) -> String {
    match obs {
        Obs::Frame(f) => format!("\"{}\"", escape(f)),
        Obs::NoReply => "(no reply)".into(),
        Obs::Closed => "(connection closed)".into(),
    }
}

fn parse_golden(text: &str) -> Result<Vec<(String, Obs)>, String> {
    let mut entries: Vec<(String, Obs)> = Vec::new();
    let mut cur: Option<(String, Option<Obs>)> = None;
    let flush = |cur: &mut Option<(String, Option<Obs>)>, entries: &mut Vec<(String, Obs)>| {
        if let Some((src, obs)) = cur.take() {
            entries.push((src, obs.unwrap_or(Obs::Frame(Vec::new()))));
        }
    };
    for (i, line) in text.lines().enumerate() {
        let bad = || format!("golden line {}: {line:?}", i + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(src) = line.strip_prefix("> ") {
            flush(&mut cur, &mut entries);
            cur = Some((src.to_string(), None));
            continue;
        }
        let (_, obs) = cur.as_mut().ok_or_else(bad)?;
        if let Some(bytes) = line.strip_prefix("< ") {
            let bytes = unescape(bytes)?;
            match obs {
                Some(Obs::Frame(f)) => f.extend_from_slice(&bytes),
                None => *obs = Some(Obs::Frame(bytes)),
                _ => return Err(bad()),
            }
        } else if line == "= no reply" {
            *obs = Some(Obs::NoReply);
        } else if line == "= closed" {
            *obs = Some(Obs::Closed);
        } else {
            return Err(bad());
        }
    }
    flush(&mut cur, &mut entries);
    Ok(entries)
}

// ---------------------------------------------------------------------------
// Frames: split with redis-protocol's decoders, compared on raw bytes
// ---------------------------------------------------------------------------

/// Length of the first whole frame in `buf`, `Ok(None)` when incomplete.
fn frame_len(buf: &[u8], resp3: bool) -> Result<Option<usize>, String> {
    if buf.is_empty() {
        return Ok(None);
    }
    if resp3 {
        resp3_frame_len(buf, 0)
    } else {
        resp2_decode_range(buf)
            .map(|r| r.map(|(_, n)| n))
            .map_err(|e| e.to_string())
    }
}

/// End of the RESP3 frame starting at `buf[at..]`, `Ok(None)` when
/// incomplete. Hand-written rather than redis-protocol's decoder, which
/// rejects sets and maps holding aggregates ("Invalid hash key") although
/// Redis sends them: COMMAND INFO's key specs are a set of maps, COMMAND
/// DOCS's history a set of arrays.
///
/// Grammar: `TYPE LINE \r\n` then, for `$ = !`, LINE bytes and `\r\n`;
/// for `* ~ >`, LINE frames; for `%`, 2*LINE frames; for `|` (attributes),
/// 2*LINE frames and then the frame they annotate.
fn resp3_frame_len(buf: &[u8], at: usize) -> Result<Option<usize>, String> {
    let Some(rest) = buf.get(at..).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let line = &rest[1..eol];
    let next = at + eol + 2;
    let count = || -> Result<i64, String> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| format!("bad length {}", escape(line)))
    };
    match rest[0] {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(next)),
        b'$' | b'=' | b'!' => {
            let n = count()?;
            if n < 0 {
                return Ok(Some(next));
            }
            let end = next + n as usize + 2;
            if buf.len() < end {
                Ok(None)
            } else if &buf[end - 2..end] != b"\r\n" {
                Err("bulk string without \\r\\n".into())
            } else {
                Ok(Some(end))
            }
        }
        t @ (b'*' | b'~' | b'>' | b'%' | b'|') => {
            let n = count()?;
            let mut end = next;
            let items = if matches!(t, b'%' | b'|') { 2 * n } else { n };
            for _ in 0..items.max(0) + i64::from(t == b'|') {
                match resp3_frame_len(buf, end)? {
                    Some(e) => end = e,
                    None => return Ok(None),
                }
            }
            Ok(Some(end))
        }
        t => Err(format!("not a RESP3 type byte: {}", escape(&[t]))),
    }
}

/// An aggregate frame's header line and its children's raw bytes (map and
/// attribute children flattened: key, value, key, value ...). `None` for
/// scalars and null aggregates.
fn children(frame: &[u8], resp3: bool) -> Option<(&[u8], Vec<&[u8]>)> {
    if !matches!(frame.first(), Some(b'*' | b'%' | b'~' | b'>' | b'|')) {
        return None;
    }
    let eol = frame.windows(2).position(|w| w == b"\r\n")?;
    let n: i64 = std::str::from_utf8(&frame[1..eol]).ok()?.parse().ok()?;
    if n < 0 {
        return None;
    }
    let count = if matches!(frame[0], b'%' | b'|') {
        2 * n
    } else {
        n
    };
    let mut rest = &frame[eol + 2..];
    let mut kids = Vec::new();
    for _ in 0..count {
        let len = frame_len(rest, resp3).ok()??;
        kids.push(&rest[..len]);
        rest = &rest[len..];
    }
    Some((&frame[..eol + 2], kids))
}

fn int_value(frame: &[u8]) -> Option<i64> {
    let body = frame.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    std::str::from_utf8(body).ok()?.parse().ok()
}

/// The payload of a simple string, error, bulk or verbatim string, or the
/// digits of an integer.
fn payload(frame: &[u8]) -> Option<&[u8]> {
    let body = frame.strip_suffix(b"\r\n")?;
    match frame.first()? {
        b'+' | b'-' | b':' | b'(' | b',' | b'#' => Some(&body[1..]),
        b'$' | b'!' | b'=' => {
            let eol = body.windows(2).position(|w| w == b"\r\n")?;
            let data = &body[eol + 2..];
            if frame[0] == b'=' {
                data.get(4..)
            } else {
                Some(data)
            }
        }
        _ => None,
    }
}

fn same_shape(a: &[u8], b: &[u8], resp3: bool) -> bool {
    if a.first() != b.first() {
        return false;
    }
    match (children(a, resp3), children(b, resp3)) {
        (Some((_, ka)), Some((_, kb))) => {
            ka.len() == kb.len() && ka.iter().zip(&kb).all(|(x, y)| same_shape(x, y, resp3))
        }
        (None, None) => {
            // Null aggregates (`*-1`) against non-null ones differ in shape.
            let null = |f: &[u8]| f.starts_with(b"*-1") || f.starts_with(b"$-1");
            null(a) == null(b)
        }
        _ => false,
    }
}

/// `frame` with the elements of every aggregate sorted (map pairs kept together).
fn canonical(frame: &[u8], resp3: bool) -> Vec<u8> {
    let Some((head, kids)) = children(frame, resp3) else {
        return frame.to_vec();
    };
    let kids: Vec<Vec<u8>> = kids.iter().map(|k| canonical(k, resp3)).collect();
    let mut items: Vec<Vec<u8>> = if matches!(frame[0], b'%' | b'|') {
        kids.chunks(2).map(|c| c.concat()).collect()
    } else {
        kids
    };
    items.sort();
    let mut v = head.to_vec();
    for i in items {
        v.extend(i);
    }
    v
}

/// Simple glob: `*` any run, `?` one byte, everything else literal.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Does `obs` satisfy `check` on its own (the checks that need no golden)?
/// Used on both the recorded and the replayed reply.
fn satisfies(check: &Check, obs: &Obs) -> bool {
    match (check, obs) {
        (Check::NoReply, o) => *o == Obs::NoReply,
        (_, Obs::Frame(f)) => match check {
            Check::IntRange(lo, hi) => int_value(f)
                .is_some_and(|v| lo.is_none_or(|lo| v >= lo) && hi.is_none_or(|hi| v <= hi)),
            Check::Match(g) => payload(f).is_some_and(|p| glob(g, p)),
            Check::Want(w) => f == w,
            _ => true,
        },
        _ => true,
    }
}

fn matches(check: &Check, golden: &Obs, actual: &Obs, resp3: bool) -> bool {
    if !satisfies(check, actual) {
        return false;
    }
    if let Check::Want(_) = check {
        return true;
    }
    let (g, a) = match (golden, actual) {
        (Obs::Frame(g), Obs::Frame(a)) => (g, a),
        _ => return golden == actual,
    };
    match check {
        Check::Exact | Check::NoReply | Check::Want(_) => g == a,
        Check::Type | Check::IntRange(..) | Check::Match(_) => g.first() == a.first(),
        Check::Shape => same_shape(g, a, resp3),
        Check::Unordered => canonical(g, resp3) == canonical(a, resp3),
        Check::Skip(idx) => match (children(g, resp3), children(a, resp3)) {
            (Some((hg, kg)), Some((ha, ka))) => {
                hg == ha
                    && kg.len() == ka.len()
                    && kg.iter().zip(&ka).enumerate().all(|(i, (x, y))| {
                        if idx.contains(&i) {
                            same_shape(x, y, resp3)
                        } else {
                            x == y
                        }
                    })
            }
            _ => false,
        },
    }
}

// ---------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    resp3: bool,
}

impl Conn {
    async fn open(addr: SocketAddr, resp3: bool) -> Result<Conn, String> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let mut c = Conn {
            stream,
            buf: Vec::new(),
            resp3,
        };
        if resp3 {
            c.send(&encode(&[b"HELLO".to_vec(), b"3".to_vec()])).await?;
            match c.read_frame(REPLY_TIMEOUT).await {
                Obs::Frame(f) if f.starts_with(b"%") => {}
                // A password is required: the connection stays on RESP2
                // until the scenario itself authenticates (AUTH, HELLO).
                Obs::Frame(f) if f.starts_with(b"-NOAUTH") => {}
                other => return Err(format!("HELLO 3 failed: {}", show(&other))),
            }
        }
        Ok(c)
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(|e| format!("write: {e}"))
    }

    /// Reads one whole frame, or reports that none came within `wait` or
    /// that the server closed the connection first.
    async fn read_frame(&mut self, wait: Duration) -> Obs {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match frame_len(&self.buf, self.resp3) {
                Ok(Some(n)) => return Obs::Frame(self.buf.drain(..n).collect()),
                Ok(None) => {}
                // Not RESP: hand back everything so the mismatch shows it.
                Err(_) => return Obs::Frame(std::mem::take(&mut self.buf)),
            }
            let mut chunk = [0u8; 16384];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    return if self.buf.is_empty() {
                        Obs::Closed
                    } else {
                        Obs::Frame(std::mem::take(&mut self.buf))
                    }
                }
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => {
                    return if self.buf.is_empty() {
                        Obs::NoReply
                    } else {
                        Obs::Frame(std::mem::take(&mut self.buf))
                    }
                }
            }
        }
    }
}

fn encode(args: &[Vec<u8>]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

fn substitute(text: &str, vars: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("}}").ok_or("unclosed {{")? + i;
        let name = &rest[i + 2..end];
        out.push_str(vars.get(name).ok_or(format!("unset variable {name}"))?);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// What one run of a scenario produced.
struct Run {
    /// One observation per command or `@closed` step.
    obs: Vec<Obs>,
    /// Captured `=NAME` values.
    vars: HashMap<String, String>,
    /// Set when the FLUSHALL that starts every scenario failed: the steps
    /// still ran (their mismatches are worth seeing) but on whatever state
    /// earlier scenarios left.
    setup_error: Option<String>,
}

/// Runs a scenario on fresh connections.
async fn run(sc: &Scenario, addr: SocketAddr, resp3: bool) -> Result<Run, String> {
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut vars = HashMap::new();
    let mut current = 1;
    let mut obs = Vec::new();
    // Every scenario starts from an empty keyspace, on db 0.
    let mut first = Conn::open(addr, resp3).await?;
    first.send(&encode(&[b"FLUSHALL".to_vec()])).await?;
    let setup_error = match first.read_frame(REPLY_TIMEOUT).await {
        Obs::Frame(f) if f == b"+OK\r\n" => None,
        other => Some(format!(
            "FLUSHALL before the scenario failed, state may leak in: {}",
            show(&other)
        )),
    };
    conns.insert(1, first);
    for step in &sc.steps {
        let at = || format!("{}.txt:{}", sc.name, step.line);
        match &step.kind {
            StepKind::Client(n) => current = *n,
            StepKind::Sleep(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
            StepKind::Read(_) => {
                let o = match conns.get_mut(&current) {
                    Some(c) => c.read_frame(NO_REPLY_WAIT).await,
                    None => Obs::Closed,
                };
                obs.push(o);
            }
            StepKind::Closed => {
                let o = match conns.get_mut(&current) {
                    Some(c) => c.read_frame(CLOSE_WAIT).await,
                    None => Obs::Closed,
                };
                if o == Obs::Closed {
                    conns.remove(&current);
                }
                obs.push(o);
            }
            StepKind::Command {
                text,
                inline,
                check,
                capture,
            } => {
                let text = substitute(text, &vars).map_err(|e| format!("{}: {e}", at()))?;
                let bytes = if *inline {
                    format!("{text}\r\n").into_bytes()
                } else {
                    let args = redlog::protocol::split_args(text.as_bytes())
                        .ok_or_else(|| format!("{}: unbalanced quotes", at()))?;
                    encode(&args)
                };
                // A connection the server closed is reopened on next use.
                let c = match conns.entry(current) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => e.insert(Conn::open(addr, resp3).await?),
                };
                let o = match c.send(&bytes).await {
                    Err(_) => Obs::Closed,
                    Ok(()) if *check == Check::NoReply => c.read_frame(NO_REPLY_WAIT).await,
                    Ok(()) => c.read_frame(REPLY_TIMEOUT).await,
                };
                if o == Obs::Closed {
                    conns.remove(&current);
                }
                if let Some(name) = capture {
                    // Errors are not captured: the step's own mismatch shows
                    // the problem, and the placeholder keeps later lines parseable.
                    let v = match &o {
                        Obs::Frame(f) if !f.starts_with(b"-") => {
                            payload(f).map(|p| String::from_utf8_lossy(p).into_owned())
                        }
                        _ => None,
                    };
                    vars.insert(name.clone(), v.unwrap_or_else(|| "uncaptured".into()));
                }
                obs.push(o);
            }
        }
    }
    Ok(Run {
        obs,
        vars,
        setup_error,
    })
}

fn golden_path(name: &str, resp3: bool) -> PathBuf {
    let ext = if resp3 { "resp3" } else { "resp2" };
    root().join("golden").join(format!("{name}.{ext}"))
}

/// The steps that produce an observation, in order.
fn observed_steps(sc: &Scenario) -> Vec<&Step> {
    sc.steps
        .iter()
        .filter(|s| {
            matches!(
                s.kind,
                StepKind::Command { .. } | StepKind::Closed | StepKind::Read(_)
            )
        })
        .collect()
}

fn check_of(step: &Step) -> &Check {
    match &step.kind {
        StepKind::Command { check, .. } | StepKind::Read(check) => check,
        _ => &Check::Exact,
    }
}

fn out(msg: &str) {
    // Straight to stderr, past the test harness's capture: the per-scenario
    // summary must show on every run, not only on failure.
    let _ = std::io::stderr().lock().write_all(msg.as_bytes());
}

async fn record(addr: SocketAddr, scenarios: &[Scenario]) {
    let version = {
        let mut c = Conn::open(addr, false).await.expect("connect");
        c.send(&encode(&[b"INFO".to_vec(), b"server".to_vec()]))
            .await
            .unwrap();
        let info = match c.read_frame(REPLY_TIMEOUT).await {
            Obs::Frame(f) => String::from_utf8_lossy(&f).into_owned(),
            o => panic!("INFO: {}", show(&o)),
        };
        info.lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("?")
            .trim()
            .to_string()
    };
    let mut problems = Vec::new();
    for sc in scenarios {
        for resp3 in [false, true] {
            let Run {
                obs,
                vars,
                setup_error,
            } = run(sc, addr, resp3)
                .await
                .unwrap_or_else(|e| panic!("{} ({}): {e}", sc.name, proto(resp3)));
            if let Some(e) = setup_error {
                panic!("{} ({}): {e}", sc.name, proto(resp3));
            }
            let mut text = format!(
                "# {}: replies of redis-server {version} in {} to redis-tests/scenarios/{}.txt.\n\
                 # Written by redis-tests/record; do not edit by hand.\n",
                sc.name,
                proto(resp3),
                sc.name
            );
            for (step, o) in observed_steps(sc).iter().zip(&obs) {
                let check = check_of(step).resolve(&vars);
                if !matches!(check, Check::Want(_)) && !satisfies(&check, o) {
                    problems.push(format!(
                        "{}.txt:{} ({}): real Redis fails its own marker {}: {}",
                        sc.name,
                        step.line,
                        proto(resp3),
                        check.describe(),
                        show(o)
                    ));
                }
                let _ = writeln!(text, "> {}", step.source);
                format_obs(&mut text, o);
            }
            std::fs::write(golden_path(&sc.name, resp3), text).expect("write golden");
        }
        out(&format!("recorded {}\n", sc.name));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn proto(resp3: bool) -> &'static str {
    if resp3 {
        "RESP3"
    } else {
        "RESP2"
    }
}

async fn replay(addr: SocketAddr, scenarios: &[Scenario]) {
    let mut failures = Vec::new();
    let mut summary = String::from("\nredis-tests: replay against redlog\n");
    for sc in scenarios {
        if let Some(reason) = &sc.pending {
            let _ = writeln!(summary, "  EXCLUDED {:<14} pending: {reason}", sc.name);
            continue;
        }
        for resp3 in [false, true] {
            let tag = format!("{} {}", sc.name, proto(resp3));
            let path = golden_path(&sc.name, resp3);
            let golden = match std::fs::read_to_string(&path) {
                Ok(t) => parse_golden(&t).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
                Err(e) => {
                    failures.push(format!(
                        "{tag}: no golden file {} ({e}); run redis-tests/record",
                        path.display()
                    ));
                    continue;
                }
            };
            let steps = observed_steps(sc);
            let stale = golden.len() != steps.len()
                || steps
                    .iter()
                    .zip(&golden)
                    .any(|(s, (src, _))| s.source != *src);
            if stale {
                let _ = writeln!(summary, "  FAIL   {tag:<22} golden file out of date");
                failures.push(format!(
                    "{tag}: golden file out of date with the scenario; run redis-tests/record"
                ));
                continue;
            }
            let Run {
                obs,
                vars,
                setup_error,
            } = match run(sc, addr, resp3).await {
                Ok(r) => r,
                Err(e) => {
                    let _ = writeln!(summary, "  FAIL   {tag:<22} could not run: {e}");
                    failures.push(format!("{tag}: {e}"));
                    continue;
                }
            };
            let (mut exact, mut marked, mut failed) = (0, 0, 0);
            if let Some(e) = setup_error {
                failed += 1;
                failures.push(format!("{tag}: {e}"));
            }
            for ((step, (_, g)), a) in steps.iter().zip(&golden).zip(&obs) {
                let check = &check_of(step).resolve(&vars);
                if *check == Check::Exact {
                    exact += 1;
                } else {
                    marked += 1;
                }
                if !matches(check, g, a, resp3) {
                    failed += 1;
                    let how = if *check == Check::Exact {
                        String::new()
                    } else {
                        format!(" (marker {})", check.describe())
                    };
                    failures.push(format!(
                        "{tag} {}.txt:{}: {}{how}\n    expected: {}\n    actual:   {}",
                        sc.name,
                        step.line,
                        step.source,
                        show(g),
                        show(a)
                    ));
                }
            }
            let _ = writeln!(
                summary,
                "  {:<6} {:<22} {exact:>3} exact, {marked:>2} by marker, {failed:>3} failed",
                if failed == 0 { "ok" } else { "FAIL" },
                tag
            );
        }
    }
    out(&summary);
    if !failures.is_empty() {
        out(&format!("\n{} mismatches:\n", failures.len()));
        for f in &failures {
            out(&format!("{f}\n"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches against the Redis goldens (listed above)",
        failures.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_compat() {
    let scenarios = load_scenarios();
    assert!(!scenarios.is_empty(), "no scenarios found");
    if let Ok(addr) = std::env::var(RECORD_ENV) {
        let addr: SocketAddr = addr.parse().expect("REDLOG_RECORD_ADDR=host:port");
        record(addr, &scenarios).await;
        return;
    }
    let server = common::start().await;
    replay(server.local_addr(), &scenarios).await;
    server.shutdown().await;
}

/// RESP3 frames split where Redis's COMMAND INFO puts sets of maps.
#[test]
fn resp3_frames_split_with_sets_of_aggregates() {
    let info = b"~1\r\n%1\r\n$5\r\nflags\r\n~1\r\n+RO\r\n";
    let mut two = info.to_vec();
    two.extend_from_slice(b":1\r\n");
    assert_eq!(frame_len(&two, true), Ok(Some(info.len())));
    for cut in 0..info.len() {
        assert_eq!(frame_len(&info[..cut], true), Ok(None), "cut at {cut}");
    }
    let history = b"~1\r\n*2\r\n$5\r\n7.0.0\r\n$1\r\nx\r\n";
    assert_eq!(frame_len(history, true), Ok(Some(history.len())));
    assert_eq!(frame_len(b"|1\r\n+a\r\n+b\r\n:1\r\n", true), Ok(Some(16)));
    assert!(frame_len(b"hello\r\n", true).is_err());
}

#[test]
fn golden_format_round_trips() {
    let frame = b"*2\r\n$4\r\na\r\nb\\\r\n$-1\r\n".to_vec();
    let mut text = String::from("> MGET \"a\\r\\nb\\\\\" x\n");
    format_obs(&mut text, &Obs::Frame(frame.clone()));
    text.push_str("> ~noreply SET a b\n= no reply\n");
    let parsed = parse_golden(&text).unwrap();
    assert_eq!(parsed[0].1, Obs::Frame(frame));
    assert_eq!(parsed[1].1, Obs::NoReply);
    assert_eq!(
        unescape(&escape(&[0, 0xff, b'\\', b'"'])).unwrap(),
        [0, 0xff, b'\\', b'"']
    );
}

#[test]
fn markers_compare_what_they_say() {
    let r3 = true;
    assert!(matches(&Check::Type, &f(b":1\r\n"), &f(b":2\r\n"), r3));
    assert!(!matches(
        &Check::Type,
        &f(b":1\r\n"),
        &f(b"$1\r\n1\r\n"),
        r3
    ));
    assert!(matches(
        &Check::Shape,
        &f(b"*2\r\n$1\r\na\r\n:1\r\n"),
        &f(b"*2\r\n$2\r\nbb\r\n:7\r\n"),
        r3
    ));
    assert!(!matches(
        &Check::Shape,
        &f(b"*1\r\n:1\r\n"),
        &f(b"*2\r\n:1\r\n:1\r\n"),
        r3
    ));
    assert!(matches(
        &Check::Unordered,
        &f(b"*2\r\n:1\r\n:2\r\n"),
        &f(b"*2\r\n:2\r\n:1\r\n"),
        r3
    ));
    assert!(matches(
        &Check::IntRange(Some(1), None),
        &f(b":1\r\n"),
        &f(b":9\r\n"),
        r3
    ));
    assert!(!matches(
        &Check::IntRange(Some(1), Some(5)),
        &f(b":1\r\n"),
        &f(b":9\r\n"),
        r3
    ));
    assert!(matches(
        &Check::Match(b"a*c".to_vec()),
        &f(b"$1\r\nx\r\n"),
        &f(b"$3\r\nabc\r\n"),
        r3
    ));
    assert!(matches(
        &Check::Skip(vec![1]),
        &f(b"%1\r\n+id\r\n:1\r\n"),
        &f(b"%1\r\n+id\r\n:2\r\n"),
        r3
    ));
    assert!(!matches(
        &Check::Skip(vec![1]),
        &f(b"%1\r\n+id\r\n:1\r\n"),
        &f(b"%1\r\n+ix\r\n:2\r\n"),
        r3
    ));
    assert!(glob(b"*x?z*", b"abxyzq"));
}

#[cfg(test)]
fn f(b: &[u8]) -> Obs {
    Obs::Frame(b.to_vec())
}

#[test]
fn scenarios_parse() {
    let sc = parse_scenario(
        "t",
        "# why\n=id ~int:1.. CLIENT ID\n@client 2\n@inline PING\n@closed\nSET \"a b\" {{id}}\n",
    )
    .unwrap();
    assert_eq!(sc.steps.len(), 5);
    match &sc.steps[0].kind {
        StepKind::Command {
            text,
            capture,
            check,
            ..
        } => {
            assert_eq!(text, "CLIENT ID");
            assert_eq!(capture.as_deref(), Some("id"));
            assert_eq!(*check, Check::IntRange(Some(1), None));
        }
        k => panic!("{k:?}"),
    }
    assert!(
        parse_scenario("t", "~type TIME\n").is_err(),
        "marker without a reason"
    );
}
