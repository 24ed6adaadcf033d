//! Pieces of a format definition that both the format layer (`format`)
//! and the pattern compiler (`pattern`) use: field limits, the key names
//! of a spec, user-regex compilation, whitespace. Imports neither of them.

use regex::bytes::Regex;

/// Fields per pattern.
pub const FIELDS_MAX: usize = 64;
/// Compiled size limit of user regexes (masks, patterns): 1 MiB keeps a
/// hostile pattern from taking the server's memory.
const REGEX_SIZE_LIMIT_BYTES: usize = 1 << 20;

/// Keys or fields that hold the time, level, message and component.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Keys {
    pub time: Option<String>,
    pub level: Option<String>,
    pub message: Option<String>,
    pub component: Option<String>,
}

/// A user regex that does not compile: regex's own last line (`error:
/// ...` without the prefix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RegexError(String);

/// Compiles a user regex with the size limit.
pub(crate) fn compile_regex(re: &str) -> Result<Regex, RegexError> {
    regex::bytes::RegexBuilder::new(re)
        .size_limit(REGEX_SIZE_LIMIT_BYTES)
        .build()
        .map_err(|e| {
            // regex's message ends with a line `error: <what>`.
            let text = e.to_string();
            let last = text.lines().last().unwrap_or("").trim();
            RegexError(last.strip_prefix("error: ").unwrap_or(last).to_string())
        })
}

/// C's `isspace` in the C locale.
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}
