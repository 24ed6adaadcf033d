//! The typed miner's token classes: before mining, every word chain that is
//! a number-like variable becomes `<*>`, whatever the format's masks say.
//!
//! A *chain* is a run of word characters (`[A-Za-z0-9_]`) joined by single
//! `.`, `/`, `:`, `-` or `@` (`10.0.0.1:80`, `blk_-1608`,
//! `calvisitor-10-105-160-95`, `job_1445144423722_0020`, `2005-06-03`,
//! `HTTP/1.1`). Its *segments* are its alphanumeric runs. The chain is a
//! variable when a segment starts with a digit (numbers, addresses,
//! versions, dates, times, durations and sizes such as `12ms` or `5KB`,
//! ids with a numeric part) or is a hex string of 8 or more characters with
//! a digit (`f4e9a0b1c2`). Words whose digits only follow letters stay
//! constant: `wl0`, `IPV6`, `ext3`, `AirPort_Brcm43xx` name things, and a
//! template that turned them into `<*>` would group different events.
//! The chain is replaced, the punctuation around it kept
//! (`AppWindowToken{9f4ef63}` → `AppWindowToken{<*>}`), so the token keeps
//! its constant shape; only a sign right before a `<*>` (not after a word)
//! goes with it (`index:-5` and `index:7` are one event).
//!
//! URLs (`mask_urls`, run before `key=value` masking): a token holding
//! `://` is one variable.
//!
//! Dates: a run of day or month names next to a `<*>` token (`Sun Jul
//! <*>`, the numbers of the date masked already) becomes `<*>`s.
//!
//! A few passes over the bytes, no allocation when nothing is replaced.

use super::miner::WILDCARD;

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_joint(b: u8) -> bool {
    matches!(b, b'.' | b'/' | b':' | b'-' | b'@')
}

/// Whether the chain `c` is a variable (module doc).
fn is_variable(c: &[u8]) -> bool {
    c.split(|b| !b.is_ascii_alphanumeric())
        .filter(|s| !s.is_empty())
        .any(|s| {
            s[0].is_ascii_digit()
                || (s.len() >= 8
                    && s.iter().all(u8::is_ascii_hexdigit)
                    && s.iter().any(u8::is_ascii_digit))
        })
}

/// The end of the chain starting at `start` (a word byte).
fn chain_end(s: &[u8], start: usize) -> usize {
    let mut i = start;
    loop {
        while i < s.len() && is_word(s[i]) {
            i += 1;
        }
        if i + 1 < s.len() && is_joint(s[i]) && is_word(s[i + 1]) {
            i += 1;
        } else {
            return i;
        }
    }
}

/// `content` with its variable chains replaced by `<*>`, and a sign before
/// a `<*>` (`index:-<*>`, not after a word: `a-<*>` keeps its dash) taken
/// into it; None when nothing changed.
pub fn mask_variables(content: &[u8]) -> Option<Vec<u8>> {
    let chains = mask_chains(content);
    let s = chains.as_deref().unwrap_or(content);
    let signs = absorb_signs(s);
    let s = signs.as_deref().or(chains.as_deref()).unwrap_or(content);
    mask_date_names(s).or(signs).or(chains)
}

/// Whether `tok` is a day or month name, as dates write them (any case,
/// a trailing comma allowed).
fn is_date_name(tok: &[u8]) -> bool {
    let t = tok.strip_suffix(b",").unwrap_or(tok);
    if !(3..=9).contains(&t.len()) {
        return false;
    }
    let mut b = [0u8; 9];
    for (d, c) in b.iter_mut().zip(t) {
        *d = c.to_ascii_lowercase();
    }
    matches!(
        &b[..t.len()],
        b"mon"
            | b"tue"
            | b"wed"
            | b"thu"
            | b"fri"
            | b"sat"
            | b"sun"
            | b"monday"
            | b"tuesday"
            | b"wednesday"
            | b"thursday"
            | b"friday"
            | b"saturday"
            | b"sunday"
            | b"jan"
            | b"feb"
            | b"mar"
            | b"apr"
            | b"may"
            | b"jun"
            | b"jul"
            | b"aug"
            | b"sep"
            | b"sept"
            | b"oct"
            | b"nov"
            | b"dec"
            | b"january"
            | b"february"
            | b"march"
            | b"april"
            | b"june"
            | b"july"
            | b"august"
            | b"september"
            | b"october"
            | b"november"
            | b"december"
    )
}

fn is_sep(b: u8) -> bool {
    b.is_ascii_whitespace() || b == 0x0b
}

/// `s` with each run of whitespace-separated day or month names next to a
/// `<*>` token (`Sun Jul <*>`, the rest of the date masked) turned into
/// `<*>`s; None when there is none.
fn mask_date_names(s: &[u8]) -> Option<Vec<u8>> {
    // Most lines hold no date name: find out without allocating.
    if !s.split(|&b| is_sep(b)).any(is_date_name) {
        return None;
    }
    // Token spans.
    let mut toks: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if is_sep(s[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < s.len() && !is_sep(s[i]) {
            i += 1;
        }
        toks.push((start, i));
    }
    let tok = |k: usize| &s[toks[k].0..toks[k].1];
    let mut masked: Vec<usize> = Vec::new();
    let mut k = 0;
    while k < toks.len() {
        if !is_date_name(tok(k)) {
            k += 1;
            continue;
        }
        let start = k;
        while k < toks.len() && is_date_name(tok(k)) {
            k += 1;
        }
        let before = start > 0 && tok(start - 1) == WILDCARD;
        let after = k < toks.len() && tok(k) == WILDCARD;
        if before || after {
            masked.extend(start..k);
        }
    }
    if masked.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(s.len());
    let mut copied = 0;
    for k in masked {
        let (a, b) = toks[k];
        out.extend_from_slice(&s[copied..a]);
        out.extend_from_slice(WILDCARD);
        copied = b;
    }
    out.extend_from_slice(&s[copied..]);
    Some(out)
}

/// `s` with each URL (a whitespace-separated token holding `://`) turned
/// into `<*>`, the brackets or quotes before it and the punctuation after
/// it kept (`(http://a/b?x=1),` → `(<*>),`); None when there is none.
/// Runs before `key=value` masking, which would cut a URL at its `:`.
pub fn mask_urls(s: &[u8]) -> Option<Vec<u8>> {
    memchr::memmem::find(s, b"://")?;
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if is_sep(s[i]) {
            out.push(s[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < s.len() && !is_sep(s[i]) {
            i += 1;
        }
        let tok = &s[start..i];
        if memchr::memmem::find(tok, b"://").is_none() {
            out.extend_from_slice(tok);
            continue;
        }
        let lead = tok
            .iter()
            .take_while(|&&b| matches!(b, b'(' | b'[' | b'"' | b'\''))
            .count();
        let trail = tok[lead..]
            .iter()
            .rev()
            .take_while(|&&b| matches!(b, b':' | b',' | b';' | b'.' | b')' | b']' | b'"' | b'\''))
            .count();
        out.extend_from_slice(&tok[..lead]);
        out.extend_from_slice(WILDCARD);
        out.extend_from_slice(&tok[tok.len() - trail..]);
    }
    Some(out)
}

/// `s` without the `-` / `+` right before each `<*>` that does not follow
/// a word byte; None when there is none.
fn absorb_signs(s: &[u8]) -> Option<Vec<u8>> {
    let signed =
        |p: usize| p >= 1 && matches!(s[p - 1], b'-' | b'+') && (p < 2 || !is_word(s[p - 2]));
    let mut hits = memchr::memmem::find_iter(s, WILDCARD).filter(|&p| signed(p));
    let first = hits.next()?;
    let mut out = Vec::with_capacity(s.len());
    let mut copied = 0;
    for p in std::iter::once(first).chain(hits) {
        out.extend_from_slice(&s[copied..p - 1]);
        copied = p;
    }
    out.extend_from_slice(&s[copied..]);
    Some(out)
}

/// `content` with its variable chains replaced by `<*>`; None when
/// nothing changed.
fn mask_chains(content: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    // Bytes of `content` before `copied` are in `out` already.
    let mut copied = 0;
    let mut i = 0;
    while i < content.len() {
        if !is_word(content[i]) {
            i += 1;
            continue;
        }
        // A chain never starts inside a word: `i` follows a non-word byte.
        let end = chain_end(content, i);
        if is_variable(&content[i..end]) {
            let o = out.get_or_insert_with(|| Vec::with_capacity(content.len()));
            o.extend_from_slice(&content[copied..i]);
            o.extend_from_slice(WILDCARD);
            copied = end;
        }
        i = end;
    }
    let mut o = out?;
    o.extend_from_slice(&content[copied..]);
    Some(o)
}

#[cfg(test)]
mod tests {
    use super::mask_variables;

    fn m(s: &str) -> String {
        match mask_variables(s.as_bytes()) {
            Some(v) => String::from_utf8(v).unwrap(),
            None => s.to_string(),
        }
    }

    #[test]
    fn classes() {
        assert_eq!(m("no digits here"), "no digits here");
        assert_eq!(
            m("Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106"),
            "Receiving block <*> src: /<*>"
        );
        assert_eq!(
            m("took 12ms for 5KB at 2005-06-03"),
            "took <*> for <*> at <*>"
        );
        assert_eq!(m("wl0: MDNS: IPV6 Addr ext3"), "wl0: MDNS: IPV6 Addr ext3");
        assert_eq!(
            m("AppWindowToken{9f4ef63} id f4e9a0b1c2 deadbeefcafe"),
            "AppWindowToken{<*>} id <*> deadbeefcafe"
        );
        assert_eq!(
            m("AirPort_Brcm43xx host calvisitor-10-105-160-95"),
            "AirPort_Brcm43xx host <*>"
        );
        assert_eq!(
            m("program interrupt: illegal instruction......0"),
            "program interrupt: illegal instruction......<*>"
        );
        // Masks' `<*>` is not a word: a chain stops at it.
        assert_eq!(m("AirPort_<*>:: x=<*> 7"), "AirPort_<*>:: x=<*> <*>");
        assert_eq!(m("core.2345 HTTP/1.1 job_1445_0020"), "<*> <*> <*>");
        assert_eq!(m("a-1 x@9 é9"), "<*> <*> é<*>");
        // Signs: a number's, not a word's dash.
        assert_eq!(
            m("index:-5 i:+<*> a-<*> - 7 --3"),
            "index:<*> i:<*> a-<*> - <*> -<*>"
        );
        assert_eq!(m("-<*>"), "<*>");
        // Day and month names next to the rest of a date.
        assert_eq!(
            m("connection at Sun Jul 10 03:55:15 2005 from may"),
            "connection at <*> <*> <*> <*> <*> from may"
        );
        assert_eq!(m("on Monday, <*> ok"), "on <*> <*> ok");
        assert_eq!(m("Sun Jul"), "Sun Jul");
    }

    #[test]
    fn urls() {
        let u = |s: &str| super::mask_urls(s.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(u("no url: a/b"), None);
        assert_eq!(
            u("get (http://a.b/c?x=1), then x-coredata://DB05/p11: ok"),
            Some("get (<*>), then <*>: ok".into())
        );
        assert_eq!(u("\"https://x\"."), Some("\"<*>\".".into()));
    }
}
