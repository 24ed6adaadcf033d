//! Redis's glob matching (`stringmatchlen`, util.c) for KEYS, SCAN MATCH,
//! CONFIG GET and PSUBSCRIBE: `*`, `?`, `[abc]`, `[^a-z]`, `\x` escapes.

/// Matches `s` against `pattern`, optionally ignoring ASCII case.
// Collapsing the inner `if`s into match guards would let a failed `\\x`
// fall through to the literal arm, changing what matches.
#[allow(clippy::collapsible_match)]
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    // Redis bounds the recursion depth of `*`; an iterative matcher with
    // backtracking to the last star needs no such limit.
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    loop {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p + 1 < pattern.len() && pattern[p + 1] == b'*' {
                        p += 1;
                    }
                    star = Some((p, i));
                    p += 1;
                    continue;
                }
                b'?' if i < s.len() => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' if i < s.len() => {
                    if let Some((matched, next_p)) = class_match(pattern, p, s[i], nocase) {
                        if matched {
                            p = next_p;
                            i += 1;
                            continue;
                        }
                    }
                }
                b'\\' if p + 1 < pattern.len() && i < s.len() && eq(pattern[p + 1], s[i]) => {
                    p += 2;
                    i += 1;
                    continue;
                }
                b'\\' if p + 1 < pattern.len() => {}
                c if i < s.len() && c != b'?' && c != b'[' && eq(c, s[i]) => {
                    p += 1;
                    i += 1;
                    continue;
                }
                _ => {}
            }
        } else if i == s.len() {
            return true;
        }
        // Mismatch: let the last star swallow one more byte.
        match star {
            Some((sp, si)) if si < s.len() => {
                star = Some((sp, si + 1));
                p = sp + 1;
                i = si + 1;
            }
            _ => return false,
        }
    }
}

/// Evaluates the class starting at `pattern[p] == '['`; returns whether `c`
/// matched and the index after the class.
fn class_match(pattern: &[u8], p: usize, c: u8, nocase: bool) -> Option<(bool, usize)> {
    let mut j = p + 1;
    let not = j < pattern.len() && pattern[j] == b'^';
    if not {
        j += 1;
    }
    let mut matched = false;
    let lower = |b: u8| if nocase { b.to_ascii_lowercase() } else { b };
    let c = lower(c);
    loop {
        if j >= pattern.len() {
            // Unterminated class: Redis treats the end of pattern as its end.
            break;
        }
        if pattern[j] == b']' {
            j += 1;
            break;
        }
        if pattern[j] == b'\\' && j + 1 < pattern.len() {
            j += 1;
            if lower(pattern[j]) == c {
                matched = true;
            }
            j += 1;
        } else if j + 2 < pattern.len() && pattern[j + 1] == b'-' {
            let (mut a, mut b) = (lower(pattern[j]), lower(pattern[j + 2]));
            if a > b {
                std::mem::swap(&mut a, &mut b);
            }
            if c >= a && c <= b {
                matched = true;
            }
            j += 3;
        } else {
            if lower(pattern[j]) == c {
                matched = true;
            }
            j += 1;
        }
    }
    Some((matched != not, j))
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn patterns() {
        let m = |p: &str, s: &str| glob_match(p.as_bytes(), s.as_bytes(), false);
        assert!(m("*", ""));
        assert!(m("h?llo", "hello"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hallo"));
        assert!(m("*name*", "client-name-x"));
        assert!(!m("a*b", "acbd"));
        assert!(m("a*b*", "acbd"));
        assert!(glob_match(b"MAXMEM*", b"maxmemory", true));
    }
}
