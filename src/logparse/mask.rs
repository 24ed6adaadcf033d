//! Fast mask replacement: a small backtracking matcher for the mask
//! regexes of typical formats (`blk_-?\d+`, `(\d+\.){3}\d+(:\d+)?`,
//! `core\.\d+`), with the `regex` crate's results.
//!
//! Masks run on every line's content, and the regex crate's general
//! engine (a forward then a reverse lazy-DFA search per match, plus the
//! search setup) was a third of PARSE's time. Log contents are short and
//! masks simple, so a backtracker that tries each start position in order
//! and each alternative in priority order (greedy repetitions longest
//! first, lazy ones shortest first) is quicker, and it finds exactly the
//! regex crate's leftmost-first matches: that order is how leftmost-first
//! is defined.
//!
//! It takes only regexes without look-around (`^`, `$`, `\b`) whose every
//! match and every repeated part is non-empty (so `replace_all`'s
//! empty-match rules never apply and repetitions always progress). The
//! work per text is bounded (steps and recursion depth); past the bound,
//! or on a longer text, it gives up and the caller runs the regex crate.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Contents longer than this go to the regex crate (recursion depth).
const TEXT_BYTES_MAX: usize = 2048;
/// Steps per text byte before giving up.
const STEPS_PER_BYTE: usize = 32;
/// Recursion depth before giving up: a few hundred bytes of stack per
/// level, far below a server thread's stack; the masks above need tens.
const DEPTH_MAX: usize = 512;

#[derive(Debug, Clone)]
enum Node {
    Bytes(Box<[u8]>),
    /// A byte set (ASCII-only or `(?-u)` classes).
    ByteSet(Box<[bool; 256]>),
    /// Unicode scalar ranges (sorted, disjoint): a valid UTF-8 character
    /// in one of them; `ascii` says it for the ASCII bytes.
    Chars {
        ascii: Box<[bool; 128]>,
        ranges: Box<[(char, char)]>,
    },
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Rep {
        sub: Box<Node>,
        min: u32,
        max: Option<u32>,
        greedy: bool,
    },
}

/// A mask regex compiled for the fast matcher.
#[derive(Debug, Clone)]
pub(super) struct FastMask {
    node: Node,
    /// Bytes a match can start with.
    first: Box<[bool; 256]>,
    /// When every match starts with an unbounded repetition of a class
    /// (`\d+` in `(\d+\.){3}\d+`): the ASCII bytes of that class. If no
    /// match starts at `p` and the byte at `p` is one of them, none starts
    /// at `p + 1` either (the repetition of a match there could take one
    /// more byte), so a failed start skips the rest of its run: linear
    /// time on long digit runs instead of quadratic.
    lead: Option<Box<[bool; 128]>>,
    /// Bytes every match contains (`.` in the IPv4 mask, `blk_`): a text
    /// without them has no match, found with one memchr/memmem pass.
    required: Option<memchr::memmem::Finder<'static>>,
}

/// A byte string every match of `n` contains, the longest found.
fn required(n: &Node) -> Option<Vec<u8>> {
    match n {
        Node::Bytes(b) if !b.is_empty() => Some(b.to_vec()),
        Node::ByteSet(s) => {
            let mut it = (0..256).filter(|&i| s[i]);
            match (it.next(), it.next()) {
                (Some(b), None) => Some(vec![b as u8]),
                _ => None,
            }
        }
        Node::Concat(v) => v.iter().filter_map(required).max_by_key(|r| r.len()),
        Node::Rep { sub, min, .. } if *min >= 1 => required(sub),
        _ => None,
    }
}

/// The ASCII bytes of the class whose unbounded repetition starts every
/// match of `n`, if there is one.
fn lead_class(n: &Node) -> Option<Box<[bool; 128]>> {
    match n {
        Node::Concat(v) => lead_class(v.first()?),
        Node::Rep {
            sub,
            min,
            max: None,
            ..
        } if *min >= 1 => match &**sub {
            Node::ByteSet(s) => {
                let mut a = Box::new([false; 128]);
                a.copy_from_slice(&s[..128]);
                Some(a)
            }
            Node::Chars { ascii, .. } => Some(ascii.clone()),
            other => lead_class(other),
        },
        Node::Rep { sub, min, .. } if *min >= 1 => lead_class(sub),
        _ => None,
    }
}

fn convert(h: &Hir) -> Option<Node> {
    Some(match h.kind() {
        HirKind::Empty => Node::Concat(Vec::new()),
        HirKind::Literal(l) => Node::Bytes(l.0.clone()),
        HirKind::Class(Class::Bytes(c)) => {
            let mut set = Box::new([false; 256]);
            for r in c.ranges() {
                for b in r.start()..=r.end() {
                    set[b as usize] = true;
                }
            }
            Node::ByteSet(set)
        }
        HirKind::Class(Class::Unicode(c)) => {
            if c.ranges().iter().all(|r| r.end().is_ascii()) {
                let mut set = Box::new([false; 256]);
                for r in c.ranges() {
                    for b in r.start() as u8..=r.end() as u8 {
                        set[b as usize] = true;
                    }
                }
                Node::ByteSet(set)
            } else {
                let mut ascii = Box::new([false; 128]);
                for r in c.ranges() {
                    for b in r.start() as u32..=(r.end() as u32).min(0x7f) {
                        ascii[b as usize] = true;
                    }
                }
                Node::Chars {
                    ascii,
                    ranges: c.ranges().iter().map(|r| (r.start(), r.end())).collect(),
                }
            }
        }
        HirKind::Look(_) => return None,
        HirKind::Repetition(r) => {
            // Every iteration must consume input.
            if r.sub.properties().minimum_len().is_none_or(|n| n == 0) {
                return None;
            }
            Node::Rep {
                sub: Box::new(convert(&r.sub)?),
                min: r.min,
                max: r.max,
                greedy: r.greedy,
            }
        }
        HirKind::Capture(c) => convert(&c.sub)?,
        HirKind::Concat(v) => Node::Concat(v.iter().map(convert).collect::<Option<_>>()?),
        HirKind::Alternation(v) => Node::Alt(v.iter().map(convert).collect::<Option<_>>()?),
    })
}

/// Adds the bytes a match of `n` can start with to `set`; true when `n`
/// can match the empty string.
fn first_bytes(n: &Node, set: &mut [bool; 256]) -> bool {
    match n {
        Node::Bytes(b) => match b.first() {
            Some(&c) => {
                set[c as usize] = true;
                false
            }
            None => true,
        },
        Node::ByteSet(s) => {
            for (d, &x) in set.iter_mut().zip(s.iter()) {
                *d |= x;
            }
            false
        }
        Node::Chars { ranges: r, .. } => {
            for &(a, b) in r.iter() {
                if a.is_ascii() {
                    for c in a as u8..=(b.min('\x7f') as u8) {
                        set[c as usize] = true;
                    }
                }
                if !b.is_ascii() {
                    // Any lead byte of a multi-byte character.
                    set[0xc0..].fill(true);
                }
            }
            false
        }
        Node::Concat(v) => {
            for x in v {
                if !first_bytes(x, set) {
                    return false;
                }
            }
            true
        }
        Node::Alt(v) => {
            let mut empty = false;
            for x in v {
                empty |= first_bytes(x, set);
            }
            empty
        }
        Node::Rep { sub, min, .. } => first_bytes(sub, set) || *min == 0,
    }
}

impl FastMask {
    /// The fast form of `re` (as `regex::bytes::Regex` reads it), or None
    /// when it is outside what the matcher takes.
    pub(super) fn compile(re: &str) -> Option<FastMask> {
        let hir = regex_syntax::ParserBuilder::new()
            .utf8(false)
            .build()
            .parse(re)
            .ok()?;
        let props = hir.properties();
        if !props.look_set().is_empty() || props.minimum_len().is_none_or(|n| n == 0) {
            return None;
        }
        let node = convert(&hir)?;
        let mut first = Box::new([false; 256]);
        if first_bytes(&node, &mut first) {
            return None;
        }
        let lead = lead_class(&node);
        let required = required(&node).map(|r| memchr::memmem::Finder::new(&r).into_owned());
        Some(FastMask {
            node,
            first,
            lead,
            required,
        })
    }

    /// `regex.replace_all(text, with)` when the matcher decides within its
    /// bounds: Some(None) when nothing matched, Some(Some(new text)), or
    /// None when it gave up.
    pub(super) fn replace_all(&self, text: &[u8], with: &[u8]) -> Option<Option<Vec<u8>>> {
        if text.len() > TEXT_BYTES_MAX {
            return None;
        }
        if self
            .required
            .as_ref()
            .is_some_and(|r| r.find(text).is_none())
        {
            return Some(None);
        }
        let mut m = Run {
            text,
            steps: STEPS_PER_BYTE * text.len() + 256,
            depth: 0,
        };
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        let mut at = 0;
        while at < text.len() {
            if !self.first[text[at] as usize] {
                at += 1;
                continue;
            }
            match m.node(&self.node, &K::Done, at)? {
                Some(end) if end > at => {
                    let o = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
                    o.extend_from_slice(&text[copied..at]);
                    o.extend_from_slice(with);
                    copied = end;
                    at = end;
                }
                _ => {
                    let in_lead = |b: u8| {
                        self.lead
                            .as_ref()
                            .is_some_and(|l| b < 0x80 && l[b as usize])
                    };
                    if in_lead(text[at]) {
                        while at < text.len() && in_lead(text[at]) {
                            at += 1;
                        }
                    } else {
                        at += 1;
                    }
                }
            }
        }
        Some(out.map(|mut o| {
            o.extend_from_slice(&text[copied..]);
            o
        }))
    }
}

/// What follows the node being matched.
enum K<'a> {
    Done,
    /// The rest of a concatenation, then `next`.
    Seq(&'a [Node], &'a K<'a>),
    /// Repetition `rep` after `count` iterations, then `next`.
    Rep(&'a Node, u32, &'a K<'a>),
}

struct Run<'t> {
    text: &'t [u8],
    steps: usize,
    depth: usize,
}

/// The valid UTF-8 character at the start of `b`, with its length.
fn char_at(b: &[u8]) -> Option<(char, usize)> {
    let w = match *b.first()? {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return None,
    };
    let s = std::str::from_utf8(b.get(..w)?).ok()?;
    s.chars().next().map(|c| (c, w))
}

/// The ASCII membership table of a one-character class (its non-ASCII
/// bytes never match alone: a `ByteSet` with members >= 0x80 has none).
fn ascii_class(n: &Node) -> Option<&[bool; 128]> {
    match n {
        Node::Chars { ascii, .. } => Some(ascii),
        Node::ByteSet(s) if !s[128..].iter().any(|&x| x) => s[..128].try_into().ok(),
        _ => None,
    }
}

/// The byte the continuation `k` must start with, when it begins with a
/// literal.
fn next_byte(k: &K) -> Option<u8> {
    match k {
        K::Seq([Node::Bytes(b), ..], _) => b.first().copied(),
        K::Seq([], next) => next_byte(next),
        _ => None,
    }
}

/// Whether `c` is in one of the sorted, disjoint `ranges`.
fn in_ranges(ranges: &[(char, char)], c: char) -> bool {
    let i = ranges.partition_point(|&(_, end)| end < c);
    ranges.get(i).is_some_and(|&(start, _)| start <= c)
}

impl Run<'_> {
    /// Matches `n` at `pos` then `k`: Some(Some(end)) on a match,
    /// Some(None) when none, None when out of steps or depth.
    fn node(&mut self, n: &Node, k: &K, pos: usize) -> Option<Option<usize>> {
        self.steps = self.steps.checked_sub(1)?;
        let text = self.text;
        match n {
            Node::Bytes(b) => {
                let hit = match **b {
                    [c] => text.get(pos) == Some(&c),
                    _ => text[pos..].starts_with(b),
                };
                if hit {
                    self.cont(k, pos + b.len())
                } else {
                    Some(None)
                }
            }
            Node::ByteSet(s) => match text.get(pos) {
                Some(&c) if s[c as usize] => self.cont(k, pos + 1),
                _ => Some(None),
            },
            Node::Chars { ascii, ranges } => match text.get(pos) {
                Some(&c) if c < 0x80 => {
                    if ascii[c as usize] {
                        self.cont(k, pos + 1)
                    } else {
                        Some(None)
                    }
                }
                _ => match char_at(&text[pos..]) {
                    Some((c, w)) if in_ranges(ranges, c) => self.cont(k, pos + w),
                    _ => Some(None),
                },
            },
            Node::Concat(v) => self.cont(&K::Seq(v, k), pos),
            Node::Alt(v) => {
                for x in v {
                    if let Some(end) = self.node(x, k, pos)? {
                        return Some(Some(end));
                    }
                }
                Some(None)
            }
            Node::Rep { .. } => self.rep(n, 0, k, pos),
        }
    }

    fn cont(&mut self, k: &K, pos: usize) -> Option<Option<usize>> {
        self.depth += 1;
        if self.depth > DEPTH_MAX {
            return None;
        }
        let r = match k {
            K::Done => Some(Some(pos)),
            K::Seq([], next) => self.cont(next, pos),
            K::Seq([first, rest @ ..], next) => self.node(first, &K::Seq(rest, next), pos),
            K::Rep(rep, count, next) => self.rep(rep, *count, next, pos),
        };
        self.depth -= 1;
        r
    }

    /// Repetition `rep` after `count` iterations, at `pos`.
    fn rep(&mut self, rep: &Node, count: u32, k: &K, pos: usize) -> Option<Option<usize>> {
        let Node::Rep {
            sub,
            min,
            max,
            greedy,
        } = rep
        else {
            return Some(None);
        };
        // A repetition of one ASCII-decided byte class (`\d+`): measure
        // the run once and try its ends in priority order, instead of one
        // recursion per byte. Only when the run ends on an ASCII byte or
        // the text's end (a byte >= 0x80 may start a member character).
        if count == 0 {
            if let Some(set) = ascii_class(sub) {
                let rest = &self.text[pos..];
                let run = rest
                    .iter()
                    .position(|&b| b >= 0x80 || !set[b as usize])
                    .unwrap_or(rest.len());
                if rest.get(run).is_none_or(|&b| b < 0x80) {
                    self.steps = self.steps.checked_sub(run + 1)?;
                    let most = max.map_or(run, |m| run.min(m as usize));
                    let least = *min as usize;
                    if least > most {
                        return Some(None);
                    }
                    // When what follows starts with a literal byte, ends
                    // not followed by it fail at once: skip them.
                    let next = next_byte(k);
                    let text = self.text;
                    let viable = |n: usize| next.is_none_or(|c| text.get(pos + n) == Some(&c));
                    if *greedy {
                        for n in (least..=most).rev().filter(|&n| viable(n)) {
                            if let Some(end) = self.cont(k, pos + n)? {
                                return Some(Some(end));
                            }
                        }
                    } else {
                        for n in (least..=most).filter(|&n| viable(n)) {
                            if let Some(end) = self.cont(k, pos + n)? {
                                return Some(Some(end));
                            }
                        }
                    }
                    return Some(None);
                }
            }
        }
        let can_more = max.is_none_or(|m| count < m);
        let more = |me: &mut Self| -> Option<Option<usize>> {
            if !can_more {
                return Some(None);
            }
            me.node(sub, &K::Rep(rep, count + 1, k), pos)
        };
        if count < *min {
            return more(self);
        }
        if *greedy {
            if let Some(end) = more(self)? {
                return Some(Some(end));
            }
            self.cont(k, pos)
        } else {
            if let Some(end) = self.cont(k, pos)? {
                return Some(Some(end));
            }
            more(self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast matcher replaces exactly what the regex crate does.
    #[test]
    fn equals_regex_crate() {
        let masks = [
            r"blk_-?\d+",
            r"(\d+\.){3}\d+(:\d+)?",
            r"(\d+\.){3}\d+",
            r"core\.\d+",
            r"0[xX][0-9a-fA-F]+",
            r"\d+",
            r"a|ab|abc",
            r"(ab|a)(bc|c)?",
            r"x+?y",
            r"[a-z]{2,3}\d{1,2}?",
            r"(?-u:\xff)+",
            r"(?i)blk_\w+",
            r"\d{3}",
            r"id=\S+",
        ];
        let alphabet: &[&[u8]] = &[
            b"1",
            b"23",
            b".",
            b":",
            b"blk_",
            b"-",
            b" ",
            b"a",
            b"b",
            b"c",
            b"x",
            b"y",
            b"0x",
            b"F",
            b"core",
            b"\xff",
            "٣".as_bytes(),
            "é".as_bytes(),
            b"\xe0\x80",
            b"id=",
            b"B",
            b"LK_",
        ];
        // A fixed pseudo-random sequence (xorshift) of texts.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut texts: Vec<Vec<u8>> = vec![
            b"Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106 dest: /10.250.19.102:50010".to_vec(),
            b"1.2.3.4.5.6:7:8 blk_ blk_- blk_1".to_vec(),
            b"_task_200811092030_0001_m_000296_0/part-00296. 12345678901234.1.2 1.2.3.456789x".to_vec(),
            "١٢.٣.4.5 1.2.3.٤".as_bytes().to_vec(),
            Vec::new(),
        ];
        for _ in 0..3000 {
            let n = (next() % 24) as usize;
            let mut t = Vec::new();
            for _ in 0..n {
                t.extend_from_slice(alphabet[(next() % alphabet.len() as u64) as usize]);
            }
            texts.push(t);
        }
        for m in masks {
            let re = regex::bytes::Regex::new(m).unwrap();
            let Some(fast) = FastMask::compile(m) else {
                panic!("{m} should compile");
            };
            for t in &texts {
                let want = match re.replace_all(t, regex::bytes::NoExpand(b"<*>")) {
                    std::borrow::Cow::Owned(o) => Some(o),
                    std::borrow::Cow::Borrowed(_) => None,
                };
                assert_eq!(
                    fast.replace_all(t, b"<*>"),
                    Some(want),
                    "{m} on {:?}",
                    String::from_utf8_lossy(t)
                );
            }
        }
    }

    #[test]
    fn declines_what_it_does_not_take() {
        for m in [r"\b\d+\b", r"^a", r"a*", r"(a*)+b", r"x?", r"(?:)"] {
            assert!(FastMask::compile(m).is_none(), "{m}");
        }
        // Out of bounds: gives up rather than running long.
        let f = FastMask::compile(r"(\d+\.){3}\d+").unwrap();
        assert_eq!(f.replace_all(&[b'1'; 4096], b"<*>"), None);
        let t = vec![b'1'; 2000];
        assert_eq!(f.replace_all(&t, b"<*>"), Some(None));
        let f = FastMask::compile(r"(?:a|ab|aba)+c").unwrap();
        let mut t = b"ab".repeat(300);
        t.extend_from_slice(b"xc");
        assert_eq!(f.replace_all(&t, b"<*>"), None);
        // Without the byte every match needs, nothing to search.
        assert_eq!(f.replace_all(&b"ab".repeat(300), b"<*>"), Some(None));
    }
}
