//! Pattern formats in logparser's notation: compilation to a regex and to
//! a fast backtracking program, and matching a line to field spans.
//!
//! The fast matcher has exactly the priorities of the regex built from the
//! same pattern (lazy fields, greedy whitespace), so both give the same
//! fields; it spends a work budget proportional to the line and hands
//! pathological lines to the regex crate's linear-time engine.

use super::syntax::{compile_regex, is_ws, Keys, RegexError, FIELDS_MAX};
use memchr::memmem;
use regex::bytes::Regex;

/// Prefix of the regex group names given to fields (`rlf0`, `rlf1`, ...).
const GROUP_PREFIX: &str = "rlf";

/// Work units (calls plus bytes scanned) the fast matcher may spend per
/// line byte before handing the line to the regex engine.
const MATCH_BUDGET_PER_BYTE: usize = 16;

#[derive(Clone, Debug)]
enum Piece {
    Field(usize),
    /// Literal text, with its searcher built once (fields before it are
    /// found by searching for it).
    Lit(Box<[u8]>, Box<memmem::Finder<'static>>),
    Space,
}

#[derive(Debug)]
pub(super) struct Pattern {
    pub(super) names: Vec<String>,
    /// Fast-path program, when every literal part is plain text.
    pieces: Option<Vec<Piece>>,
    regex: Regex,
    /// The regex's capture group of each field (the format's own groups
    /// take numbers too).
    groups: Vec<usize>,
    pub(super) content: Option<usize>,
    pub(super) level: Option<usize>,
    pub(super) component: Option<usize>,
}

/// Splits logparser notation into literal parts and field names: a field
/// is `<` + one or more characters other than `<`/`>` + `>`.
pub(super) fn split_notation(f: &str) -> Vec<(bool, &str)> {
    let mut out = Vec::new();
    let b = f.as_bytes();
    let mut lit_start = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'<' {
            if let Some(len) = b[i + 1..].iter().position(|&c| c == b'<' || c == b'>') {
                if b[i + 1 + len] == b'>' && len > 0 {
                    if lit_start < i {
                        out.push((false, &f[lit_start..i]));
                    }
                    out.push((true, &f[i + 1..i + 1 + len]));
                    i += len + 2;
                    lit_start = i;
                    continue;
                }
            }
        }
        i += 1;
    }
    if lit_start < b.len() {
        out.push((false, &f[lit_start..]));
    }
    out
}

/// A literal part as fast-path pieces, or None when it uses regex syntax.
fn plain_pieces(lit: &str, out: &mut Vec<Piece>) -> Option<()> {
    let mut text: Vec<u8> = Vec::new();
    let flush = |text: &mut Vec<u8>, out: &mut Vec<Piece>| {
        if !text.is_empty() {
            let t = std::mem::take(text).into_boxed_slice();
            let finder = Box::new(memmem::Finder::new(&t).into_owned());
            out.push(Piece::Lit(t, finder));
        }
    };
    let b = lit.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' => {
                flush(&mut text, out);
                if !matches!(out.last(), Some(Piece::Space)) {
                    out.push(Piece::Space);
                }
                while i < b.len() && b[i] == b' ' {
                    i += 1;
                }
                continue;
            }
            b'\\' => {
                let n = *b.get(i + 1)?;
                if !n.is_ascii_punctuation() {
                    return None;
                }
                text.push(n);
                i += 2;
                continue;
            }
            b'.' | b'^' | b'$' | b'*' | b'+' | b'?' | b'(' | b')' | b'[' | b']' | b'{' | b'}'
            | b'|' => return None,
            c => text.push(c),
        }
        i += 1;
    }
    flush(&mut text, out);
    Some(())
}

/// Why a `<Field>` log_format does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("duplicate field <{0}>")]
    DuplicateField(String),
    #[error("log_format has no <field>")]
    NoField,
    #[error("log_format has more than {FIELDS_MAX} fields")]
    TooManyFields,
    #[error("invalid log_format: {0}")]
    Regex(RegexError),
    /// A MESSAGE/LEVEL/COMPONENT key naming no field.
    #[error("no field <{0}> in log_format")]
    NoSuchField(String),
}

/// Why a line does not match a pattern: the furthest point the match
/// reached, or no detail when only the regex was tried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    #[error("expected '{}' at byte {at}", .lit.escape_debug())]
    Expected { lit: String, at: usize },
    #[error("expected whitespace at byte {0}")]
    Whitespace(usize),
    #[error("field <{field}> cannot span a line break (byte {at})")]
    LineBreak { field: String, at: usize },
    #[error("unexpected text after the last field at byte {0}")]
    Trailing(usize),
    #[error("line does not match the log_format")]
    NoMatch,
}

impl Pattern {
    pub(super) fn compile(f: &str, keys: &Keys) -> Result<Pattern, PatternError> {
        let parts = split_notation(f);
        let mut names: Vec<String> = Vec::new();
        let mut re = String::from("^");
        let mut pieces = Some(Vec::new());
        for (is_field, text) in &parts {
            if *is_field {
                if names.iter().any(|n| n == text) {
                    return Err(PatternError::DuplicateField(text.to_string()));
                }
                if let Some(p) = pieces.as_mut() {
                    p.push(Piece::Field(names.len()));
                }
                // A named group, as logparser's `(?P<Field>.*?)`: the
                // format's own groups around it keep their meaning.
                re.push_str(&format!(
                    "(?P<{}{}>(?-u:[^\\n])*?)",
                    GROUP_PREFIX,
                    names.len()
                ));
                names.push(text.to_string());
            } else {
                if let Some(p) = pieces.as_mut() {
                    if plain_pieces(text, p).is_none() {
                        pieces = None;
                    }
                }
                let mut chars = text.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == ' ' {
                        while chars.peek() == Some(&' ') {
                            chars.next();
                        }
                        re.push_str("[\\t\\n\\x0B\\x0C\\r ]+");
                    } else {
                        re.push(c);
                    }
                }
            }
        }
        re.push('$');
        if names.is_empty() {
            return Err(PatternError::NoField);
        }
        if names.len() > FIELDS_MAX {
            return Err(PatternError::TooManyFields);
        }
        let regex = compile_regex(&re).map_err(PatternError::Regex)?;
        // Every field's group (the notation's `<name>` cannot spell a named
        // group of its own, so the prefix is never the format's).
        let mut groups = vec![0; names.len()];
        for (i, name) in regex.capture_names().enumerate() {
            let field = name
                .and_then(|n| n.strip_prefix(GROUP_PREFIX))
                .and_then(|n| n.parse::<usize>().ok());
            if let Some(f) = field.filter(|&f| f < groups.len()) {
                groups[f] = i;
            }
        }
        let find = |key: &Option<String>, default: &str| -> Result<Option<usize>, PatternError> {
            match key {
                Some(k) => names
                    .iter()
                    .position(|n| n == k)
                    .map(Some)
                    .ok_or_else(|| PatternError::NoSuchField(k.clone())),
                None => Ok(names.iter().position(|n| n.eq_ignore_ascii_case(default))),
            }
        };
        Ok(Pattern {
            content: find(&keys.message, "content")?,
            level: find(&keys.level, "level")?,
            component: find(&keys.component, "component")?,
            pieces,
            regex,
            groups,
            names,
        })
    }

    /// Field spans, or the reason the line does not match.
    pub(super) fn spans(&self, line: &[u8]) -> Result<Vec<(usize, usize)>, MatchError> {
        let mut far = Far::default();
        if let Some(pieces) = &self.pieces {
            let mut m = Matcher {
                pieces,
                line,
                caps: vec![(0, 0); self.names.len()],
                first_nl: memchr::memchr(b'\n', line).unwrap_or(line.len()),
                budget: MATCH_BUDGET_PER_BYTE * line.len() + 1024,
                far: Far::default(),
            };
            match m.run(0, 0) {
                Some(true) => return Ok(m.caps),
                Some(false) => return Err(m.far.reason(pieces, &self.names)),
                None => far = m.far,
            }
        }
        match self.regex.captures(line) {
            // A field inside an optional group that did not take part is
            // empty (logparser's None).
            Some(c) => Ok(self
                .groups
                .iter()
                .map(|&i| c.get(i).map_or((0, 0), |m| (m.start(), m.end())))
                .collect()),
            None => Err(match &self.pieces {
                Some(p) => far.reason(p, &self.names),
                None => MatchError::NoMatch,
            }),
        }
    }
}

/// The furthest point a failed match reached, for the error message.
#[derive(Default, Clone, Copy)]
struct Far {
    pos: usize,
    piece: usize,
    set: bool,
}

impl Far {
    fn note(&mut self, pos: usize, piece: usize) {
        if !self.set || pos > self.pos || (pos == self.pos && piece > self.piece) {
            *self = Far {
                pos,
                piece,
                set: true,
            };
        }
    }

    fn reason(&self, pieces: &[Piece], names: &[String]) -> MatchError {
        let at = self.pos;
        match pieces.get(self.piece) {
            Some(Piece::Lit(l, _)) => MatchError::Expected {
                lit: String::from_utf8_lossy(l).into_owned(),
                at,
            },
            Some(Piece::Space) => MatchError::Whitespace(at),
            Some(Piece::Field(f)) => MatchError::LineBreak {
                field: names[*f].clone(),
                at,
            },
            None => MatchError::Trailing(at),
        }
    }
}

/// Backtracking matcher for plain patterns: fields are lazy (shortest
/// first), whitespace runs greedy (longest first), exactly the priorities
/// of the regex built from the same pattern, so both give the same fields.
struct Matcher<'p, 'l> {
    pieces: &'p [Piece],
    line: &'l [u8],
    caps: Vec<(usize, usize)>,
    /// The first `\n` of the line (its length when none): the limit of
    /// every field that starts before it, found once per line.
    first_nl: usize,
    budget: usize,
    far: Far,
}

impl Matcher<'_, '_> {
    fn spend(&mut self, n: usize) -> Option<()> {
        self.budget = self.budget.checked_sub(n)?;
        Some(())
    }

    /// Some(matched) or None when the budget ran out.
    fn run(&mut self, i: usize, pos: usize) -> Option<bool> {
        self.spend(1)?;
        let line = self.line;
        let Some(piece) = self.pieces.get(i) else {
            if pos == line.len() {
                return Some(true);
            }
            self.far.note(pos, i);
            return Some(false);
        };
        match piece {
            Piece::Lit(l, _) => {
                if line[pos..].starts_with(l) {
                    self.run(i + 1, pos + l.len())
                } else {
                    self.far.note(pos, i);
                    Some(false)
                }
            }
            Piece::Space => {
                let n = line[pos..].iter().take_while(|&&b| is_ws(b)).count();
                self.spend(n)?;
                if n == 0 {
                    self.far.note(pos, i);
                    return Some(false);
                }
                for e in (pos + 1..=pos + n).rev() {
                    if self.run(i + 1, e)? {
                        return Some(true);
                    }
                }
                Some(false)
            }
            Piece::Field(f) => {
                let f = *f;
                // A field never crosses a line break.
                let limit = if pos <= self.first_nl {
                    self.first_nl
                } else {
                    memchr::memchr(b'\n', &line[pos..]).map_or(line.len(), |k| pos + k)
                };
                match self.pieces.get(i + 1) {
                    None => {
                        self.spend(limit - pos)?;
                        if limit != line.len() {
                            self.far.note(limit, i);
                            return Some(false);
                        }
                        self.caps[f] = (pos, limit);
                        Some(true)
                    }
                    Some(Piece::Lit(_, finder)) => {
                        let mut from = pos;
                        while from <= limit {
                            let Some(k) = finder.find(&line[from..]) else {
                                self.spend(line.len() - from)?;
                                break;
                            };
                            self.spend(k + 1)?;
                            let end = from + k;
                            if end > limit {
                                break;
                            }
                            self.caps[f] = (pos, end);
                            if self.run(i + 1, end)? {
                                return Some(true);
                            }
                            from = end + 1;
                        }
                        if limit < line.len() {
                            self.far.note(limit, i);
                        } else if !self.far.set || self.far.pos < pos {
                            // Nothing failed past this field's start: the
                            // literal after it is what the line lacks.
                            self.far.note(line.len(), i + 1);
                        }
                        Some(false)
                    }
                    Some(Piece::Space) => {
                        let mut p = pos;
                        while p < limit {
                            let k = line[p..limit].iter().position(|&b| is_ws(b));
                            let Some(k) = k else {
                                self.spend(limit - p)?;
                                break;
                            };
                            self.spend(k + 1)?;
                            let end = p + k;
                            self.caps[f] = (pos, end);
                            if self.run(i + 1, end)? {
                                return Some(true);
                            }
                            p = end + 1;
                        }
                        // The line break itself is whitespace.
                        if limit < line.len() {
                            self.caps[f] = (pos, limit);
                            return self.run(i + 1, limit);
                        }
                        self.far.note(line.len(), i + 1);
                        Some(false)
                    }
                    Some(Piece::Field(_)) => {
                        for end in pos..=limit {
                            self.caps[f] = (pos, end);
                            if self.run(i + 1, end)? {
                                return Some(true);
                            }
                        }
                        Some(false)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast matcher and the regex engine agree on every field.
    #[test]
    fn fast_path_equals_regex() {
        let formats = [
            "<Date> <Time> <Pid> <Level> <Component>: <Content>",
            "<Date> <Time> <Level> \\[<Process>\\] <Component>: <Content>",
            "<A><B> <C>",
            "<A>:<B>: <C>",
            "\\[<A>\\] <B>",
        ];
        let lines = [
            "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block",
            "  a b c d e: f",
            "a b: c d e: f g",
            "2015-10-18 18:01:47,978 INFO [main] org.a.B: x [y] z",
            "a:b:c: d",
            "a  b\tc",
            "[x] y",
            "a\nb c d e: f",
            "",
            "a b c d: e: f:",
        ];
        for f in formats {
            let p = Pattern::compile(f, &Keys::default()).unwrap();
            assert!(p.pieces.is_some(), "{f}");
            for l in lines {
                let fast = p.spans(l.as_bytes()).ok();
                let slow = p.regex.captures(l.as_bytes()).map(|c| {
                    p.groups
                        .iter()
                        .map(|&i| c.get(i).map_or((0, 0), |m| (m.start(), m.end())))
                        .collect::<Vec<_>>()
                });
                assert_eq!(fast, slow, "{f} / {l:?}");
            }
        }
    }

    /// logparser's notation with regex around the fields: optional groups,
    /// alternations, escaped brackets (Loghub's Thunderbird, Linux and Mac
    /// settings). A field in a group that does not take part is empty.
    #[test]
    fn regex_groups_around_fields() {
        let field = |f: &str, line: &str| -> Vec<String> {
            let p = Pattern::compile(f, &Keys::default()).unwrap();
            p.spans(line.as_bytes())
                .unwrap()
                .iter()
                .map(|&(a, b)| line[a..b].to_string())
                .collect()
        };
        let linux = "<Month> <Date> <Time> <Level> <Component>(\\[<PID>\\])?: <Content>";
        assert_eq!(
            field(
                linux,
                "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass"
            ),
            [
                "Jun",
                "14",
                "15:16:01",
                "combo",
                "sshd(pam_unix)",
                "19939",
                "check pass"
            ]
        );
        assert_eq!(
            field(linux, "Jun 15 04:06:18 combo su: session opened"),
            ["Jun", "15", "04:06:18", "combo", "su", "", "session opened"]
        );
        let mac =
            "<Month>  <Date> <Time> <User> <Component>\\[<PID>\\]( \\(<Address>\\))?: <Content>";
        assert_eq!(
            field(
                mac,
                "Jul  1 09:01:05 host com.apple.CDScheduler[43]: Thermal"
            ),
            [
                "Jul",
                "1",
                "09:01:05",
                "host",
                "com.apple.CDScheduler",
                "43",
                "",
                "Thermal"
            ]
        );
        assert_eq!(
            field(mac, "Jul  1 09:01:05 host kernel[0] (AppleX): text"),
            ["Jul", "1", "09:01:05", "host", "kernel", "0", "AppleX", "text"]
        );
        assert_eq!(field("(INFO|WARN) <A>\\|<B>", "WARN x|y"), ["x", "y"]);
    }
}
