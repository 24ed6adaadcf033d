//! LOGPARSE's engine: turns raw log lines into structured records with a
//! template id. Pure code: no sockets, no files, no clock (callers pass the
//! year used for timestamps without one).
//!
//! # Layout
//!
//! - `format`: format definitions (`FormatSpec`, serialisable) and their
//!   compiled form (`Format`): logparser's `<Field>` notation, syslog,
//!   logfmt, JSON lines; masks.
//! - `pattern`: logparser-notation patterns: fast matcher and regex fallback.
//! - `mask`: a fast matcher for simple mask regexes (same matches as the
//!   `regex` crate, which takes the rest and any text past its bounds).
//! - `time`: strftime-based timestamp normalisation to ISO-8601, time zones.
//! - `miner`: the template miner (Drain, and the typed default's
//!   similarity), with a serialisable state.
//! - `classify`: the typed miner's token classes.
//! - `builtin`: the built-in formats (Loghub benchmark settings for `hdfs`,
//!   `bgl`, `hadoop`).
//! - here: `Ingestor` (a format plus its own miner: what a stream uses to
//!   turn text into records with template ids) and `Registry` (the
//!   keyspace's named formats with one shared miner each, for `PARSE`).
//!
//! # Flow of one line
//!
//! ```text
//! line ─► Format::parse ─► Record { fields, ts, level, component, content }
//!      ─► Format::mask(content) ─► classify::mask_urls (typed miner only)
//!      ─► mask_assigned_values
//!      ─► classify::mask_variables (typed miner only) ─► miner::tokenize
//!      ─► runs of `<*>` tokens collapsed ─► Miner::learn ─► template id
//! ```
//!
//! The miner is the typed one unless the spec says `MINER DRAIN`
//! (`MinerKind`; ARCHITECTURE.md, "Miners"): it masks number-like word
//! chains before mining (`classify`) and leaves uninformative positions
//! out of its similarity (`miner::typed_dist`). Drain is the miner of specs
//! and states written before miners had a kind.
//!
//! Two steps go beyond logparser's Drain, both because a variable is a
//! variable whatever the format's masks say: the value of a `key=value` /
//! `key:value` token holding a digit is masked (`PendingReds:1`), and a run
//! of masked tokens counts as one (a list of block ids of any length). With
//! them the Loghub 2k grouping accuracy rises from Drain's published
//! 0.998 / 0.963 / 0.948 (HDFS / BGL / Hadoop, which this miner reproduces
//! without them) to 1.000 / 0.965 / 0.963 (tests/it/logparse.rs).
//!
//! Template ids are per miner: a stream's ingestor and the shared PARSE
//! miner of the same format number templates independently.

pub mod builtin;
mod classify;
pub mod format;
mod mask;
pub mod miner;
mod pattern;
mod syntax;
pub mod time;

pub use format::{Format, FormatError, FormatSpec, Keys, ParseError, Record};
pub use miner::{Cluster, Learned, Miner, MinerConfig, MinerKind, StateError};
pub use time::{Timestamp, Zone};

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Longest line accepted: far above real log lines (logging libraries cap
/// theirs at 8 to 64 KiB), small enough that one line cannot hold the
/// keyspace lock for long.
pub const LINE_BYTES_MAX: usize = 4 << 20;
/// Longest format name.
pub const NAME_BYTES_MAX: usize = 128;
/// User formats per server.
pub const USER_FORMATS_MAX: usize = 1024;

/// The calendar year of a Unix time in milliseconds (UTC), for timestamps
/// that carry no year.
pub fn year_of_unix_ms(ms: u64) -> i32 {
    use chrono::Datelike;
    chrono::DateTime::from_timestamp_millis(ms as i64).map_or(1970, |d| d.year())
}

/// The lines of a text: split on `\n`, a trailing `\r` removed, empty lines
/// skipped.
pub fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    // memchr finds the line ends (INGEST splits megabytes at a time).
    let mut start = 0;
    let mut ends = memchr::memchr_iter(b'\n', text);
    std::iter::from_fn(move || {
        if start > text.len() {
            return None;
        }
        let end = ends.next().unwrap_or(text.len());
        let l = &text[start..end];
        start = end + 1;
        Some(l)
    })
    .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
    .filter(|l| !l.is_empty())
}

/// Masks the value of `key=value` and `key:value` tokens whose value
/// holds a digit (`PendingReds:1` → `PendingReds:<*>`, `ip=10.0.0.1` →
/// `ip=<*>`): such a value is a variable however the format's masks are
/// set, and its key is the constant part. None when nothing changed.
fn mask_assigned_values(content: &[u8]) -> Option<Vec<u8>> {
    let is_sep = |b: &u8| b.is_ascii_whitespace() || *b == 0x0b;
    let assigned = |tok: &[u8]| {
        tok.iter()
            .position(|&b| b == b'=' || b == b':')
            .filter(|&k| k > 0 && tok[k + 1..].iter().any(u8::is_ascii_digit))
    };
    if !content.split(is_sep).any(|t| assigned(t).is_some()) {
        return None;
    }
    let mut out = Vec::with_capacity(content.len());
    for piece in content.split_inclusive(is_sep) {
        let (tok, sep) = match piece.split_last() {
            Some((l, rest)) if is_sep(l) => (rest, Some(*l)),
            _ => (piece, None),
        };
        match assigned(tok) {
            Some(k) => {
                out.extend_from_slice(&tok[..=k]);
                out.extend_from_slice(miner::WILDCARD);
            }
            None => out.extend_from_slice(tok),
        }
        out.extend(sep);
    }
    Some(out)
}

/// The tokens the miner sees: masked content split on whitespace, each run
/// of `<*>` tokens counted as one.
/// A message longer than `miner::TOKENS_MAX` tokens is mined on its first
/// `TOKENS_MAX - 1` tokens and one `<*>` standing for the rest.
pub fn mining_tokens<'a>(masked: &'a [u8], out: &mut Vec<&'a [u8]>) {
    miner::tokenize(masked, out);
    out.dedup_by(|a, b| *a == miner::WILDCARD && *b == miner::WILDCARD);
    if out.len() > miner::TOKENS_MAX {
        out.truncate(miner::TOKENS_MAX - 1);
        out.push(miner::WILDCARD);
    }
}

/// One parsed and mined line.
#[derive(Debug)]
pub struct Parsed<'s> {
    pub record: Record<'s>,
    /// The content after masking, as the miner saw it.
    pub masked: Cow<'s, [u8]>,
    /// None when the miner is full (`miner::CLUSTERS_MAX`) and no template matched.
    pub learned: Option<Learned>,
    pub cluster: Option<&'s Cluster>,
}

impl Parsed<'_> {
    /// The masked content's tokens (what `Ingestor::learn_tokens` replays).
    pub fn tokens(&self) -> Vec<&[u8]> {
        let mut t = Vec::new();
        mining_tokens(&self.masked, &mut t);
        t
    }
}

/// A format with its own miner. A stream fed by INGEST owns one: parse each
/// line with `parse`, store the record and `learned.id`, and persist
/// `encode_state` with the stream (restore with `restore`) so template ids
/// survive restarts.
#[derive(Debug, Clone)]
pub struct Ingestor {
    format: Arc<Format>,
    miner: Miner,
}

fn miner_config(spec: &FormatSpec) -> MinerConfig {
    MinerConfig {
        similarity: spec.similarity,
        depth: spec.depth,
        children_max: miner::CHILDREN_MAX_DEFAULT,
        kind: spec.miner,
    }
}

impl Ingestor {
    pub fn new(format: Arc<Format>) -> Ingestor {
        let miner = Miner::new(miner_config(format.spec()));
        Ingestor { format, miner }
    }

    /// An ingestor whose miner continues from `state` (`encode_state`).
    pub fn restore(format: Arc<Format>, state: &[u8]) -> Result<Ingestor, StateError> {
        Ok(Ingestor {
            format,
            miner: Miner::decode(state)?,
        })
    }

    pub fn format(&self) -> &Arc<Format> {
        &self.format
    }

    pub fn miner(&self) -> &Miner {
        &self.miner
    }

    /// The miner state, for persistence (`Miner::encode`).
    pub fn encode_state(&self, out: &mut Vec<u8>) {
        self.miner.encode(out);
    }

    /// Parses a line and mines its content. A trailing `\n` / `\r\n` is
    /// ignored.
    pub fn parse<'s>(
        &'s mut self,
        line: &'s [u8],
        default_year: i32,
    ) -> Result<Parsed<'s>, ParseError> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > LINE_BYTES_MAX {
            return Err(ParseError(format!(
                "line longer than {LINE_BYTES_MAX} bytes"
            )));
        }
        let format: &'s Format = &self.format;
        let record = format.parse(line, default_year)?;
        let masked = match &record.content {
            Cow::Borrowed(c) => format.mask(c),
            Cow::Owned(c) => Cow::Owned(format.mask(c).into_owned()),
        };
        // The miner's kind, not the format's: a persisted state keeps the
        // miner it was made with.
        let typed = self.miner.config().kind == MinerKind::Typed;
        let masked = match typed.then(|| classify::mask_urls(&masked)).flatten() {
            Some(v) => Cow::Owned(v),
            None => masked,
        };
        let masked = match mask_assigned_values(&masked) {
            Some(v) => Cow::Owned(v),
            None => masked,
        };
        let masked = match self.miner.config().kind {
            MinerKind::Drain => masked,
            MinerKind::Typed => match classify::mask_variables(&masked) {
                Some(v) => Cow::Owned(v),
                None => masked,
            },
        };
        // Sized for typical messages: one allocation, no regrowth.
        let mut toks = Vec::with_capacity(64);
        mining_tokens(&masked, &mut toks);
        let learned = self.miner.learn(&toks);
        drop(toks);
        let miner: &'s Miner = &self.miner;
        Ok(Parsed {
            record,
            cluster: learned.and_then(|l| miner.cluster(l.id)),
            learned,
            masked,
        })
    }

    /// The miner's learning generation (`Miner::generation`).
    pub fn generation(&self) -> u64 {
        self.miner.generation()
    }

    pub fn set_generation(&mut self, g: u64) {
        self.miner.set_generation(g);
    }

    /// Counts `n` more lines in template `id` (replay of lines that
    /// joined it without changing it).
    pub fn add_hits(&mut self, id: u64, n: u64) {
        self.miner.add_hits(id, n);
    }

    /// Replays a learned message (tokens of masked content).
    pub fn learn_tokens(&mut self, tokens: &[&[u8]]) -> Option<Learned> {
        self.miner.learn(tokens)
    }
}

/// A named format of the registry.
#[derive(Debug)]
pub struct Named {
    pub builtin: bool,
    /// The shared miner used by PARSE.
    pub ingestor: Ingestor,
}

/// Formats by name: the built-ins and the user's (`FORMAT SET`), each with
/// the shared miner PARSE uses. Lives in the keyspace so WAL effects apply
/// to it on replay.
#[derive(Debug, Default)]
pub struct Registry {
    user: BTreeMap<Vec<u8>, Named>,
    /// Built-ins whose shared miner was used (created on first use).
    builtin: HashMap<Vec<u8>, Named>,
}

/// Why the format registry refused a change. The texts are LOGPARSE's
/// error replies (after `ERR `).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("'{}' is a built-in format and cannot be redefined", String::from_utf8_lossy(.0))]
    BuiltinRedefined(Vec<u8>),
    #[error("'{}' is a built-in format and cannot be deleted", String::from_utf8_lossy(.0))]
    BuiltinDeleted(Vec<u8>),
    #[error("format names are 1 to {NAME_BYTES_MAX} bytes")]
    NameLength,
    #[error("at most {USER_FORMATS_MAX} formats")]
    TooMany,
    /// The spec does not compile.
    #[error(transparent)]
    Compile(#[from] FormatError),
    #[error("no format '{}'", String::from_utf8_lossy(.0))]
    NoFormat(Vec<u8>),
    #[error(transparent)]
    BadState(#[from] StateError),
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Defines or replaces user format `name` (its shared miner starts empty).
    pub fn define(&mut self, name: &[u8], spec: FormatSpec) -> Result<(), RegistryError> {
        if builtin::get(name).is_some() {
            return Err(RegistryError::BuiltinRedefined(name.to_vec()));
        }
        if name.is_empty() || name.len() > NAME_BYTES_MAX {
            return Err(RegistryError::NameLength);
        }
        if !self.user.contains_key(name) && self.user.len() >= USER_FORMATS_MAX {
            return Err(RegistryError::TooMany);
        }
        let format = Arc::new(Format::compile(spec)?);
        self.user.insert(
            name.to_vec(),
            Named {
                builtin: false,
                ingestor: Ingestor::new(format),
            },
        );
        Ok(())
    }

    /// Deletes user format `name`: Ok(true) when it existed.
    pub fn remove(&mut self, name: &[u8]) -> Result<bool, RegistryError> {
        if builtin::get(name).is_some() {
            return Err(RegistryError::BuiltinDeleted(name.to_vec()));
        }
        Ok(self.user.remove(name).is_some())
    }

    /// The format `name` and whether it is built in.
    pub fn format(&self, name: &[u8]) -> Option<(Arc<Format>, bool)> {
        if let Some(n) = self.user.get(name) {
            return Some((n.ingestor.format.clone(), false));
        }
        builtin::get(name).map(|f| (f.clone(), true))
    }

    /// The format `name` with its shared miner (created for a built-in on
    /// first use).
    pub fn named_mut(&mut self, name: &[u8]) -> Option<&mut Named> {
        if self.user.contains_key(name) {
            return self.user.get_mut(name);
        }
        let f = builtin::get(name)?;
        Some(self.builtin.entry(name.to_vec()).or_insert_with(|| Named {
            builtin: true,
            ingestor: Ingestor::new(f.clone()),
        }))
    }

    /// Number of templates in the shared miner of `name`.
    pub fn templates(&self, name: &[u8]) -> usize {
        self.user
            .get(name)
            .or_else(|| self.builtin.get(name))
            .map_or(0, |n| n.ingestor.miner.len())
    }

    /// Every format name with whether it is built in, sorted by name.
    pub fn names(&self) -> Vec<(Vec<u8>, bool)> {
        let mut v: Vec<(Vec<u8>, bool)> = builtin::formats()
            .iter()
            .map(|(n, _)| (n.as_bytes().to_vec(), true))
            .chain(self.user.keys().map(|k| (k.clone(), false)))
            .collect();
        v.sort();
        v
    }

    /// User formats' specs (for base snapshots).
    pub fn user_specs(&self) -> Vec<(Vec<u8>, FormatSpec)> {
        self.user
            .iter()
            .map(|(k, n)| (k.clone(), n.ingestor.format.spec().clone()))
            .collect()
    }

    /// Encoded shared-miner states of the formats whose miner learned
    /// something (for base snapshots).
    pub fn miner_states(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.user
            .iter()
            .chain(self.builtin.iter())
            .filter(|(_, n)| !n.ingestor.miner.is_empty())
            .map(|(k, n)| {
                let mut b = Vec::new();
                n.ingestor.encode_state(&mut b);
                (k.clone(), b)
            })
            .collect()
    }

    /// Replaces the shared miner of `name` with a persisted state.
    pub fn restore_miner(&mut self, name: &[u8], state: &[u8]) -> Result<(), RegistryError> {
        let n = self
            .named_mut(name)
            .ok_or_else(|| RegistryError::NoFormat(name.to_vec()))?;
        n.ingestor = Ingestor::restore(n.ingestor.format.clone(), state)?;
        Ok(())
    }

    /// Replays a PARSE that changed the shared miner of `name`.
    pub fn learn_tokens(&mut self, name: &[u8], tokens: &[&[u8]]) -> Result<(), RegistryError> {
        let n = self
            .named_mut(name)
            .ok_or_else(|| RegistryError::NoFormat(name.to_vec()))?;
        n.ingestor.learn_tokens(tokens);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_lifecycle() {
        let mut r = Registry::new();
        assert!(r.define(b"hdfs", FormatSpec::new("<A>")).is_err());
        assert!(r.remove(b"hdfs").is_err());
        r.define(b"mine", FormatSpec::new("<Level> <Content>"))
            .unwrap();
        assert!(r.names().contains(&(b"mine".to_vec(), false)));
        let n = r.named_mut(b"mine").unwrap();
        let p = n.ingestor.parse(b"INFO open file 1\r\n", 2024).unwrap();
        assert_eq!(p.learned.unwrap().id, 1);
        assert_eq!(p.record.level.as_deref(), Some(&b"INFO"[..]));
        // The default (typed) miner masks the number before mining.
        assert_eq!(p.masked.as_ref(), b"open file <*>");
        assert_eq!(r.templates(b"mine"), 1);
        let states = r.miner_states();
        let mut r2 = Registry::new();
        r2.define(b"mine", FormatSpec::new("<Level> <Content>"))
            .unwrap();
        r2.restore_miner(b"mine", &states[0].1).unwrap();
        assert_eq!(r2.templates(b"mine"), 1);
        assert_eq!(r.remove(b"mine"), Ok(true));
        assert_eq!(r.remove(b"mine"), Ok(false));
    }

    /// An ingestor mines by its miner's kind, which a restored state
    /// keeps: a Drain state (what every state was before miners had a
    /// kind) restored under a typed format goes on as Drain.
    #[test]
    fn restored_state_keeps_its_miner() {
        let mut spec = FormatSpec::new("<Level> <Content>");
        spec.miner = MinerKind::Drain;
        let mut drain = Ingestor::new(Arc::new(Format::compile(spec).unwrap()));
        let p = drain.parse(b"INFO open file 1", 2024).unwrap();
        assert_eq!(p.masked.as_ref(), b"open file 1");
        let mut state = Vec::new();
        drain.encode_state(&mut state);
        let typed = Arc::new(Format::compile(FormatSpec::new("<Level> <Content>")).unwrap());
        assert_eq!(typed.spec().miner, MinerKind::Typed);
        let mut r = Ingestor::restore(typed.clone(), &state).unwrap();
        assert_eq!(r.miner().config().kind, MinerKind::Drain);
        let p = r.parse(b"INFO open file 2", 2024).unwrap();
        assert_eq!(p.masked.as_ref(), b"open file 2");
        assert_eq!(p.cluster.unwrap().template(), b"open file <*>");
        let mut t = Ingestor::new(typed);
        assert_eq!(
            t.parse(b"INFO open file 2", 2024).unwrap().masked.as_ref(),
            b"open file <*>"
        );
    }

    #[test]
    fn lines_split() {
        let v: Vec<&[u8]> = lines(b"a\r\nb\n\nc").collect();
        assert_eq!(v, [&b"a"[..], b"b", b"c"]);
        for t in [
            &b""[..],
            b"\n",
            b"a\n",
            b"\r\n\r\n",
            b"\nx\r",
            b"x\r\r\ny\n\n",
        ] {
            let want: Vec<&[u8]> = t
                .split(|&b| b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .filter(|l| !l.is_empty())
                .collect();
            assert_eq!(lines(t).collect::<Vec<_>>(), want, "{t:?}");
        }
    }
}
