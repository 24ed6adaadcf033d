//! Log formats: the definition users give (`FormatSpec`, serialisable for
//! the WAL) and its compiled form (`Format`), which splits one line into
//! named fields, a level, a component, a timestamp and the content that the
//! template miner sees.
//!
//! Pattern formats use logparser's notation, so formats from Loghub and
//! logparser paste as they are: `<Field>` is a field, a run of spaces
//! matches one or more whitespace characters, other text is a regular
//! expression fragment (normally literal text, `\[` escapes allowed). As in
//! logparser every field is a lazy capture and the pattern is anchored at
//! both ends, so `<Content>` at the end takes the rest of the line. Three
//! more layouts are selected by the whole log_format being a keyword:
//! `syslog` (RFC 5424, else RFC 3164), `logfmt` and `json` (one object per
//! line).
//!
//! Matching speed: a pattern whose literal parts are plain text (the usual
//! case) runs on a small backtracking matcher with exactly the regex
//! engine's priorities (lazy fields, greedy whitespace) and a work budget
//! proportional to the line; past the budget (pathological input) the same
//! pattern runs on the `regex` crate's linear-time engine, so no line can
//! stall the server. Patterns with real regex syntax always use `regex`.

use super::mask::FastMask;
use super::miner::MinerKind;
use super::pattern::{split_notation, Pattern, PatternError};
use super::syntax::{compile_regex, is_ws, RegexError};
pub use super::syntax::{Keys, FIELDS_MAX};
use super::time::{TimeParser, Timestamp, Zone};
use crate::storage::bytes::{Malformed, Reader};
use regex::bytes::{NoExpand, Regex};
use std::borrow::Cow;

/// Masks per format: each runs over every line's content.
pub const MASKS_MAX: usize = 32;

/// A format definition as `LOGPARSE FORMAT SET` gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct FormatSpec {
    /// logparser notation, or `syslog` / `logfmt` / `json`.
    pub log_format: String,
    /// Regexes whose matches become `<*>` before mining.
    pub masks: Vec<String>,
    /// Miner similarity threshold, 0..=1.
    pub similarity: f64,
    /// Miner depth (logparser's `depth`).
    pub depth: u32,
    /// Field template and strftime pattern of the timestamp.
    pub time: Option<(String, String)>,
    pub tz: Option<String>,
    pub keys: Keys,
    /// The template miner: the typed miner unless `MINER DRAIN` asks for
    /// logparser's Drain. Specs persisted before miners had a kind decode
    /// as Drain, the miner they were mined with.
    pub miner: MinerKind,
}

impl FormatSpec {
    /// A spec with logparser's Drain defaults (similarity 0.4, depth 4).
    pub fn new(log_format: &str) -> FormatSpec {
        FormatSpec {
            log_format: log_format.to_string(),
            masks: Vec::new(),
            similarity: 0.4,
            depth: 4,
            time: None,
            tz: None,
            keys: Keys::default(),
            miner: MinerKind::default(),
        }
    }

    /// Encodes the spec (the WAL's `LOGFORMAT_SET` body):
    ///
    /// ```text
    /// spec = u8 version(=1 Drain, 2 otherwise) | str log_format | u32 n | str mask{n}
    ///        | u64 similarity(f64 bits) | u32 depth
    ///        | opt(str template | str strftime) | opt(str tz)
    ///        | opt(str) time_key | opt(str) level_key | opt(str) message_key
    ///        | opt(str) component_key
    ///        | [u8 miner, version 2 only: 1 typed]
    /// opt(x) = u8 0 | u8 1 x
    /// str  = u32 len | u8{len} (UTF-8)
    /// ```
    ///
    /// A `MINER DRAIN` spec is version 1, byte for byte what servers wrote
    /// before miners had a kind; version 1 decodes as Drain.
    pub fn encode(&self, out: &mut Vec<u8>) {
        fn s(out: &mut Vec<u8>, v: &str) {
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v.as_bytes());
        }
        fn opt(out: &mut Vec<u8>, v: &Option<String>) {
            match v {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    s(out, v);
                }
            }
        }
        let drain = self.miner == MinerKind::Drain;
        out.push(if drain { 1 } else { 2 });
        s(out, &self.log_format);
        out.extend_from_slice(&(self.masks.len() as u32).to_le_bytes());
        for m in &self.masks {
            s(out, m);
        }
        out.extend_from_slice(&self.similarity.to_bits().to_le_bytes());
        out.extend_from_slice(&self.depth.to_le_bytes());
        match &self.time {
            None => out.push(0),
            Some((t, f)) => {
                out.push(1);
                s(out, t);
                s(out, f);
            }
        }
        opt(out, &self.tz);
        opt(out, &self.keys.time);
        opt(out, &self.keys.level);
        opt(out, &self.keys.message);
        opt(out, &self.keys.component);
        if !drain {
            out.push(self.miner.code());
        }
    }

    /// Decodes `encode`'s output, consuming it from `r`.
    pub fn decode(r: &mut Reader<'_>) -> Result<FormatSpec, Malformed> {
        fn s(r: &mut Reader<'_>) -> Result<String, Malformed> {
            String::from_utf8(r.slice()?.to_vec())
                .map_err(|_| Malformed("format spec text not UTF-8"))
        }
        fn opt(r: &mut Reader<'_>) -> Result<Option<String>, Malformed> {
            Ok(if r.flag("bad option flag in format spec")? {
                Some(s(r)?)
            } else {
                None
            })
        }
        let version = r.u8()?;
        if version != 1 && version != 2 {
            return Err(Malformed("unknown format spec version"));
        }
        let log_format = s(r)?;
        let n = r.u32()? as usize;
        if n > MASKS_MAX {
            return Err(Malformed("too many masks in format spec"));
        }
        let mut masks = Vec::with_capacity(n);
        for _ in 0..n {
            masks.push(s(r)?);
        }
        let similarity = f64::from_bits(r.u64()?);
        // The server logs only specs that compiled (0..=1; never NaN, which
        // would also not compare equal to itself after a round trip).
        if !(0.0..=1.0).contains(&similarity) {
            return Err(Malformed("similarity out of range in format spec"));
        }
        let depth = r.u32()?;
        let time = if r.flag("bad option flag in format spec")? {
            Some((s(r)?, s(r)?))
        } else {
            None
        };
        let tz = opt(r)?;
        let keys = Keys {
            time: opt(r)?,
            level: opt(r)?,
            message: opt(r)?,
            component: opt(r)?,
        };
        let miner = if version == 1 {
            MinerKind::Drain
        } else {
            match MinerKind::from_code(r.u8()?) {
                Some(k) if k != MinerKind::Drain => k,
                _ => return Err(Malformed("bad miner in format spec")),
            }
        };
        Ok(FormatSpec {
            log_format,
            masks,
            similarity,
            depth,
            time,
            tz,
            keys,
            miner,
        })
    }
}

/// Why a line could not be parsed. The text names the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// One parsed line. Names and values borrow from the format and the line
/// where they can.
#[derive(Clone, Debug, PartialEq)]
pub struct Record<'a> {
    /// Named fields in format order, without the field that became `content`.
    pub fields: Pairs<'a>,
    pub ts: Option<Timestamp>,
    /// Why the timestamp could not be built, when the format defines one.
    pub ts_error: Option<String>,
    pub level: Option<Cow<'a, [u8]>>,
    pub component: Option<Cow<'a, [u8]>>,
    /// What the miner sees.
    pub content: Cow<'a, [u8]>,
}

impl Record<'_> {
    /// The value of field `name`.
    pub fn field(&self, name: &[u8]) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| n.as_ref() == name)
            .map(|(_, v)| v.as_ref())
    }
}

#[derive(Debug)]
enum Layout {
    Pattern(Pattern),
    Syslog { rfc5424: Regex, rfc3164: Regex },
    Logfmt,
    Json,
}

#[derive(Debug)]
enum TimeSource {
    /// Template pieces (literal text or a field name) and the pattern.
    Template(Vec<TimePiece>, TimeParser),
    /// Auto-detected from the time key (json, logfmt).
    Auto,
    /// syslog: RFC 3339 for 5424, `%b %e %H:%M:%S` for 3164.
    Syslog(TimeParser),
    None,
}

#[derive(Debug)]
enum TimePiece {
    Lit(String),
    Field(String),
}

/// A compiled format.
#[derive(Debug)]
pub struct Format {
    spec: FormatSpec,
    layout: Layout,
    /// Each mask's regex, and its fast matcher when it has one.
    masks: Vec<(Regex, Option<FastMask>)>,
    time: TimeSource,
    zone: Option<Zone>,
}

const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

const TIME_KEYS: &[&str] = &["time", "ts", "timestamp", "@timestamp", "t"];
const LEVEL_KEYS: &[&str] = &["level", "lvl", "severity", "loglevel"];
const MESSAGE_KEYS: &[&str] = &["msg", "message", "@message"];
const COMPONENT_KEYS: &[&str] = &["component", "logger", "module"];

/// Why a format spec does not compile (the reply's text after `ERR `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("SIMILARITY must be between 0 and 1")]
    Similarity,
    #[error(
        "DEPTH must be between {} and {}",
        super::miner::DEPTH_MIN,
        super::miner::DEPTH_MAX
    )]
    Depth,
    #[error("at most {MASKS_MAX} MASK options")]
    TooManyMasks,
    #[error("invalid MASK '{mask}': {source}")]
    Mask { mask: String, source: RegexError },
    #[error("unknown time zone '{0}'")]
    Zone(String),
    /// A built-in layout's own regex (a bug if it fails).
    #[error(transparent)]
    Builtin(RegexError),
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error("{0}")]
    Strftime(String),
    #[error("TIME refers to <{0}>, not a field of the format")]
    TimeField(String),
    #[error("TIME template has no <field>")]
    TimeNoField,
}

impl Format {
    /// Compiles a spec; the error names what is wrong.
    pub fn compile(spec: FormatSpec) -> Result<Format, FormatError> {
        if !(0.0..=1.0).contains(&spec.similarity) {
            return Err(FormatError::Similarity);
        }
        if !(super::miner::DEPTH_MIN..=super::miner::DEPTH_MAX).contains(&spec.depth) {
            return Err(FormatError::Depth);
        }
        if spec.masks.len() > MASKS_MAX {
            return Err(FormatError::TooManyMasks);
        }
        let masks = spec
            .masks
            .iter()
            .map(|m| {
                compile_regex(m)
                    .map(|re| (re, FastMask::compile(m)))
                    .map_err(|source| FormatError::Mask {
                        mask: m.clone(),
                        source,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let zone = match &spec.tz {
            Some(z) => Some(Zone::parse(z).ok_or_else(|| FormatError::Zone(z.clone()))?),
            None => None,
        };
        let kw = spec.log_format.trim();
        let layout = if kw.eq_ignore_ascii_case("syslog") {
            Layout::Syslog {
                rfc5424: compile_regex(
                    r"(?s-u)^<(\d{1,3})>([1-9]\d{0,2}) (\S+) (\S+) (\S+) (\S+) (\S+) (-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (.*))?$",
                )
                .map_err(FormatError::Builtin)?,
                rfc3164: compile_regex(
                    r"(?s-u)^(?:<(\d{1,3})>)?([A-Z][a-z]{2} [ 0-9]\d \d{2}:\d{2}:\d{2}) (\S+) (?:([^\s:\[]+)(?:\[([^\]]*)\])?: ?)?(.*)$",
                )
                .map_err(FormatError::Builtin)?,
            }
        } else if kw.eq_ignore_ascii_case("logfmt") {
            Layout::Logfmt
        } else if kw.eq_ignore_ascii_case("json") {
            Layout::Json
        } else {
            Layout::Pattern(Pattern::compile(&spec.log_format, &spec.keys)?)
        };
        let time = match (&spec.time, &layout) {
            (Some((template, strftime)), _) => {
                let parser = TimeParser::new(strftime, zone.clone())
                    .map_err(|e| FormatError::Strftime(e.to_string()))?;
                let mut pieces = Vec::new();
                for (is_field, text) in split_notation(template) {
                    if is_field {
                        if let Layout::Pattern(p) = &layout {
                            if !p.names.iter().any(|n| n == text) {
                                return Err(FormatError::TimeField(text.to_string()));
                            }
                        }
                        pieces.push(TimePiece::Field(text.to_string()));
                    } else {
                        pieces.push(TimePiece::Lit(text.to_string()));
                    }
                }
                if !pieces.iter().any(|p| matches!(p, TimePiece::Field(_))) {
                    return Err(FormatError::TimeNoField);
                }
                TimeSource::Template(pieces, parser)
            }
            (None, Layout::Syslog { .. }) => TimeSource::Syslog(
                TimeParser::new("%b %e %H:%M:%S", zone.clone())
                    .map_err(|e| FormatError::Strftime(e.to_string()))?,
            ),
            (None, Layout::Json | Layout::Logfmt) => TimeSource::Auto,
            (None, Layout::Pattern(_)) => TimeSource::None,
        };
        Ok(Format {
            spec,
            layout,
            masks,
            time,
            zone,
        })
    }

    pub fn spec(&self) -> &FormatSpec {
        &self.spec
    }

    /// Splits a line. `default_year` completes timestamps without a year.
    pub fn parse<'a>(
        &'a self,
        line: &'a [u8],
        default_year: i32,
    ) -> Result<Record<'a>, ParseError> {
        if line.is_empty() {
            return Err(ParseError("empty line".into()));
        }
        let mut r = match &self.layout {
            Layout::Pattern(p) => self.parse_pattern(p, line)?,
            Layout::Syslog { rfc5424, rfc3164 } => parse_syslog(rfc5424, rfc3164, line)?,
            Layout::Logfmt => self.keyed(parse_logfmt(line)?, line),
            Layout::Json => self.keyed(parse_json(line)?, line),
        };
        self.timestamp(&mut r, default_year);
        Ok(r)
    }

    fn parse_pattern<'a>(
        &'a self,
        p: &'a Pattern,
        line: &'a [u8],
    ) -> Result<Record<'a>, ParseError> {
        let spans = p.spans(line).map_err(|e| ParseError(e.to_string()))?;
        let val = |i: usize| Cow::Borrowed(&line[spans[i].0..spans[i].1]);
        let mut fields = Vec::with_capacity(p.names.len());
        for (i, n) in p.names.iter().enumerate() {
            if Some(i) != p.content {
                fields.push((Cow::Borrowed(n.as_bytes()), val(i)));
            }
        }
        Ok(Record {
            fields,
            ts: None,
            ts_error: None,
            level: p.level.map(val),
            component: p.component.map(val),
            content: p.content.map_or(Cow::Borrowed(line), val),
        })
    }

    /// A record from key/value pairs (json, logfmt), picking the time,
    /// level, message and component keys.
    fn keyed<'a>(&self, mut kv: Pairs<'a>, line: &'a [u8]) -> Record<'a> {
        let pick = |kv: &Pairs, key: &Option<String>, defaults: &[&str]| -> Option<usize> {
            match key {
                Some(k) => kv.iter().position(|(n, _)| n.as_ref() == k.as_bytes()),
                None => defaults
                    .iter()
                    .find_map(|d| kv.iter().position(|(n, _)| n.as_ref() == d.as_bytes())),
            }
        };
        let level = pick(&kv, &self.spec.keys.level, LEVEL_KEYS).map(|i| kv[i].1.clone());
        let component =
            pick(&kv, &self.spec.keys.component, COMPONENT_KEYS).map(|i| kv[i].1.clone());
        let content = match pick(&kv, &self.spec.keys.message, MESSAGE_KEYS) {
            Some(i) => kv.remove(i).1,
            None => Cow::Borrowed(line),
        };
        Record {
            fields: kv,
            ts: None,
            ts_error: None,
            level,
            component,
            content,
        }
    }

    fn timestamp(&self, r: &mut Record, default_year: i32) {
        match &self.time {
            TimeSource::None => {}
            TimeSource::Template(pieces, parser) => {
                // Most time texts fit on the stack: no allocation per line.
                let mut stack = [0u8; 64];
                let mut len = 0;
                let mut heap: Option<String> = None;
                let mut push = |v: &str| match &mut heap {
                    Some(h) => h.push_str(v),
                    None if len + v.len() <= stack.len() => {
                        stack[len..len + v.len()].copy_from_slice(v.as_bytes());
                        len += v.len();
                    }
                    None => {
                        let mut h = String::with_capacity(len + v.len());
                        h.push_str(std::str::from_utf8(&stack[..len]).unwrap_or_default());
                        h.push_str(v);
                        heap = Some(h);
                    }
                };
                for p in pieces {
                    match p {
                        TimePiece::Lit(l) => push(l),
                        TimePiece::Field(f) => {
                            let v = if f.eq_ignore_ascii_case("content")
                                && r.field(f.as_bytes()).is_none()
                            {
                                Some(r.content.as_ref())
                            } else {
                                r.field(f.as_bytes())
                            };
                            match v.map(std::str::from_utf8) {
                                Some(Ok(v)) => push(v),
                                Some(Err(_)) => {
                                    r.ts_error = Some(format!("time field <{f}> is not UTF-8"));
                                    return;
                                }
                                None => {
                                    r.ts_error = Some(format!("no time field <{f}>"));
                                    return;
                                }
                            }
                        }
                    }
                }
                // Only whole UTF-8 pieces were copied: the text is UTF-8.
                let text = match &heap {
                    Some(h) => h.as_str(),
                    None => std::str::from_utf8(&stack[..len]).unwrap_or_default(),
                };
                match parser.parse(text, default_year) {
                    Ok(t) => r.ts = Some(t),
                    Err(e) => r.ts_error = Some(e.to_string()),
                }
            }
            TimeSource::Auto => {
                let key = match &self.spec.keys.time {
                    Some(k) => r.field(k.as_bytes()),
                    None => TIME_KEYS.iter().find_map(|k| r.field(k.as_bytes())),
                };
                if let Some(v) = key.and_then(|v| std::str::from_utf8(v).ok()) {
                    match TimeParser::parse_auto(v, self.zone.as_ref()) {
                        Some(t) => r.ts = Some(t),
                        None => r.ts_error = Some(format!("unrecognised timestamp '{v}'")),
                    }
                }
            }
            TimeSource::Syslog(p3164) => {
                let Some(v) = r
                    .field(b"timestamp")
                    .and_then(|v| std::str::from_utf8(v).ok())
                else {
                    return;
                };
                if v == "-" {
                    return;
                }
                let res = if r.field(b"version").is_some() {
                    TimeParser::parse_auto(v, self.zone.as_ref())
                        .ok_or_else(|| format!("bad RFC 5424 timestamp '{v}'"))
                } else {
                    p3164.parse(v, default_year).map_err(|e| e.to_string())
                };
                match res {
                    Ok(t) => r.ts = Some(t),
                    Err(e) => r.ts_error = Some(e),
                }
            }
        }
    }

    /// The content with every mask match replaced by `<*>`.
    pub fn mask<'c>(&self, content: &'c [u8]) -> Cow<'c, [u8]> {
        let mut cur = Cow::Borrowed(content);
        for (re, fast) in &self.masks {
            let fast = fast
                .as_ref()
                .and_then(|f| f.replace_all(&cur, super::miner::WILDCARD));
            let next = match fast {
                Some(r) => r,
                None => match re.replace_all(&cur, NoExpand(super::miner::WILDCARD)) {
                    Cow::Owned(o) => Some(o),
                    Cow::Borrowed(_) => None,
                },
            };
            if let Some(o) = next {
                cur = Cow::Owned(o);
            }
        }
        cur
    }
}

/// Field name / value pairs.
pub type Pairs<'a> = Vec<(Cow<'a, [u8]>, Cow<'a, [u8]>)>;

fn parse_syslog<'a>(
    rfc5424: &Regex,
    rfc3164: &Regex,
    line: &'a [u8],
) -> Result<Record<'a>, ParseError> {
    let (names, c, content_group): (&[&str], _, usize) = if let Some(c) = rfc5424.captures(line) {
        (
            &[
                "pri",
                "version",
                "timestamp",
                "hostname",
                "appname",
                "procid",
                "msgid",
                "structured_data",
            ],
            c,
            9,
        )
    } else if let Some(c) = rfc3164.captures(line) {
        (&["pri", "timestamp", "hostname", "tag", "pid"], c, 6)
    } else {
        return Err(ParseError(
            "line is neither RFC 5424 nor RFC 3164 syslog".into(),
        ));
    };
    let mut fields: Pairs<'a> = Vec::new();
    for (i, n) in names.iter().enumerate() {
        if let Some(m) = c.get(i + 1) {
            fields.push((
                Cow::Borrowed(n.as_bytes()),
                Cow::Borrowed(&line[m.start()..m.end()]),
            ));
        }
    }
    let get = |f: &Pairs<'a>, n: &str| {
        f.iter()
            .find(|(k, _)| k.as_ref() == n.as_bytes())
            .map(|(_, v)| v.clone())
    };
    let level = match get(&fields, "pri") {
        Some(p) => {
            let pri: u32 = std::str::from_utf8(&p)
                .ok()
                .and_then(|s| s.parse().ok())
                .filter(|p| *p <= 191)
                .ok_or_else(|| ParseError("syslog priority out of range 0..191".into()))?;
            Some(Cow::Borrowed(SEVERITIES[(pri % 8) as usize].as_bytes()))
        }
        None => None,
    };
    let component = get(&fields, "appname")
        .or_else(|| get(&fields, "tag"))
        .filter(|v| v.as_ref() != b"-");
    let content = c.get(content_group).map_or(Cow::Borrowed(&b""[..]), |m| {
        Cow::Borrowed(&line[m.start()..m.end()])
    });
    Ok(Record {
        fields,
        ts: None,
        ts_error: None,
        level,
        component,
        content,
    })
}

/// `key=value key2="quoted \" value" flag` (a bare key has an empty value).
fn parse_logfmt(line: &[u8]) -> Result<Pairs<'_>, ParseError> {
    let mut out: Pairs = Vec::new();
    let mut i = 0;
    let n = line.len();
    while i < n {
        while i < n && is_ws(line[i]) {
            i += 1;
        }
        if i == n {
            break;
        }
        let ks = i;
        while i < n && !is_ws(line[i]) && line[i] != b'=' {
            i += 1;
        }
        if i == ks {
            return Err(ParseError(format!("logfmt: empty key at byte {ks}")));
        }
        let key = Cow::Borrowed(&line[ks..i]);
        if i == n || line[i] != b'=' {
            out.push((key, Cow::Borrowed(&b""[..])));
            continue;
        }
        i += 1;
        if i < n && line[i] == b'"' {
            i += 1;
            let mut v = Vec::new();
            let mut closed = false;
            while i < n {
                match line[i] {
                    b'"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    b'\\' if i + 1 < n => {
                        v.push(match line[i + 1] {
                            b'n' => b'\n',
                            b't' => b'\t',
                            b'r' => b'\r',
                            c => c,
                        });
                        i += 2;
                    }
                    c => {
                        v.push(c);
                        i += 1;
                    }
                }
            }
            if !closed {
                return Err(ParseError(format!(
                    "logfmt: unterminated quote in value of '{}'",
                    String::from_utf8_lossy(&key)
                )));
            }
            out.push((key, Cow::Owned(v)));
        } else {
            let vs = i;
            while i < n && !is_ws(line[i]) {
                i += 1;
            }
            out.push((key, Cow::Borrowed(&line[vs..i])));
        }
    }
    if !out.iter().any(|(_, v)| !v.is_empty()) && !line.contains(&b'=') {
        return Err(ParseError("logfmt: no key=value pair".into()));
    }
    Ok(out)
}

fn parse_json(line: &[u8]) -> Result<Pairs<'static>, ParseError> {
    let v: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| ParseError(format!("invalid JSON: {e}")))?;
    let serde_json::Value::Object(map) = v else {
        return Err(ParseError("JSON line is not an object".into()));
    };
    Ok(map
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s.into_bytes(),
                other => other.to_string().into_bytes(),
            };
            (Cow::Owned(k.into_bytes()), Cow::Owned(v))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(f: &Format, line: &str) -> Vec<(String, String)> {
        let r = f.parse(line.as_bytes(), 2024).unwrap();
        let mut v: Vec<(String, String)> = r
            .fields
            .iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into(),
                    String::from_utf8_lossy(v).into(),
                )
            })
            .collect();
        v.push(("content".into(), String::from_utf8_lossy(&r.content).into()));
        v
    }

    #[test]
    fn pattern_fields_and_errors() {
        let f = Format::compile(FormatSpec::new("\\[<Time>\\] \\[<Level>\\] <Content>")).unwrap();
        assert_eq!(
            fields(
                &f,
                "[Sun Dec 04 04:47:44 2005] [error] mod_jk child init 1 -2"
            ),
            [
                ("Time".into(), "Sun Dec 04 04:47:44 2005".into()),
                ("Level".into(), "error".into()),
                ("content".into(), "mod_jk child init 1 -2".to_string())
            ]
        );
        let e = f.parse(b"[x] y", 2024).unwrap_err();
        assert_eq!(e.0, "expected '[' at byte 4");
        assert!(Format::compile(FormatSpec::new("no fields")).is_err());
        assert!(Format::compile(FormatSpec::new("<a> <a>")).is_err());
        // Regex groups around fields, as logparser's notation allows.
        let f = Format::compile(FormatSpec::new("<a> (<b>)")).unwrap();
        assert_eq!(
            fields(&f, "x (y)")[0..2],
            [("a".into(), "x".into()), ("b".into(), "(y)".into())]
        );
        // Regex syntax in literal parts works through the regex engine.
        let f = Format::compile(FormatSpec::new("<A>\\s*=\\d+ <B>")).unwrap();
        assert_eq!(fields(&f, "x  =12 y")[0].1, "x");
    }

    #[test]
    fn budget_fallback_keeps_results() {
        let p = Pattern::compile("<A> <B> <C> <D>: <E>", &Keys::default()).unwrap();
        let mut line = "a ".repeat(20_000);
        line.push_str("x: y");
        let spans = p.spans(line.as_bytes()).unwrap();
        assert_eq!(spans[0], (0, 1));
        let bad = "a ".repeat(200_000);
        let t = std::time::Instant::now();
        assert!(p.spans(bad.as_bytes()).is_err());
        assert!(t.elapsed().as_secs() < 20);
    }

    #[test]
    fn structured_layouts() {
        let f = Format::compile(FormatSpec::new("logfmt")).unwrap();
        let r = f
            .parse(
                br#"time=2024-05-01T10:00:00Z level=warn msg="disk \"sda\" full" dev=sda ok"#,
                2024,
            )
            .unwrap();
        assert_eq!(r.content.as_ref(), br#"disk "sda" full"#);
        assert_eq!(r.level.as_deref(), Some(&b"warn"[..]));
        assert_eq!(r.ts.unwrap().iso(), "2024-05-01T10:00:00+00:00");
        assert_eq!(r.field(b"ok"), Some(&b""[..]));
        assert!(f.parse(b"just words", 2024).is_err());

        let mut spec = FormatSpec::new("json");
        spec.keys.message = Some("text".into());
        let f = Format::compile(spec).unwrap();
        let r = f
            .parse(
                br#"{"text":"hello 1","ts":1700000000,"n":{"a":[1]},"level":"info"}"#,
                2024,
            )
            .unwrap();
        assert_eq!(r.content.as_ref(), b"hello 1");
        assert_eq!(r.field(b"n"), Some(&br#"{"a":[1]}"#[..]));
        assert_eq!(r.ts.unwrap().iso(), "2023-11-14T22:13:20+00:00");
        assert!(f.parse(b"[1]", 2024).is_err());
        assert!(f.parse(b"{\"a\":", 2024).is_err());

        let f = Format::compile(FormatSpec::new("syslog")).unwrap();
        let r = f
            .parse(b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed", 2024)
            .unwrap();
        assert_eq!(r.level.as_deref(), Some(&b"crit"[..]));
        assert_eq!(r.component.as_deref(), Some(&b"su"[..]));
        assert_eq!(r.content.as_ref(), b"'su root' failed");
        assert_eq!(r.ts.unwrap().iso(), "2003-10-11T22:14:15.003+00:00");
        let r = f
            .parse(
                b"<13>Feb  5 17:32:18 host sshd[123]: Accepted publickey for bob",
                2024,
            )
            .unwrap();
        assert_eq!(r.field(b"pid"), Some(&b"123"[..]));
        assert_eq!(r.level.as_deref(), Some(&b"notice"[..]));
        assert_eq!(r.ts.unwrap().iso(), "2024-02-05T17:32:18");
        assert!(f.parse(b"hello", 2024).is_err());
    }

    #[test]
    fn spec_round_trip() {
        let mut s = FormatSpec::new("<A> <Content>");
        s.masks = vec!["\\d+".into(), "x".into()];
        s.similarity = 0.7;
        s.depth = 5;
        s.time = Some(("<A>".into(), "%s".into()));
        s.tz = Some("UTC".into());
        s.keys.level = Some("A".into());
        let mut buf = Vec::new();
        s.encode(&mut buf);
        let mut r = Reader::new(&buf);
        assert_eq!(FormatSpec::decode(&mut r), Ok(s.clone()));
        assert!(r.is_empty());
        for cut in 0..buf.len() {
            assert!(FormatSpec::decode(&mut Reader::new(&buf[..cut])).is_err());
        }
        // The typed miner (the default) is version 2 with the miner byte
        // last; MINER DRAIN is version 1 without it, as specs were before
        // miners had a kind, and version 1 decodes as Drain.
        assert_eq!(s.miner, MinerKind::Typed);
        assert_eq!((buf[0], buf[buf.len() - 1]), (2, 1));
        let mut d = s.clone();
        d.miner = MinerKind::Drain;
        let mut v1 = Vec::new();
        d.encode(&mut v1);
        assert_eq!(v1[0], 1);
        assert_eq!(&v1[1..], &buf[1..buf.len() - 1]);
        assert_eq!(FormatSpec::decode(&mut Reader::new(&v1)), Ok(d));
        let mut bad = buf.clone();
        *bad.last_mut().unwrap() = 0;
        assert!(FormatSpec::decode(&mut Reader::new(&bad)).is_err());
        // A damaged similarity (NaN, out of 0..=1) is refused: the server
        // logs only specs that compiled (found by wal_unit_mutated).
        for bad in [f64::NAN, -0.5, 1.5, f64::INFINITY] {
            let mut b = s.clone();
            b.similarity = bad;
            let mut buf = Vec::new();
            b.encode(&mut buf);
            assert_eq!(
                FormatSpec::decode(&mut Reader::new(&buf)),
                Err(Malformed("similarity out of range in format spec"))
            );
        }
    }
}
