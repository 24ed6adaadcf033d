//! Timestamp normalisation: a log line's time fields, read with a strftime
//! pattern, become one ISO-8601 timestamp.
//!
//! Crate choice: `chrono`. Its strftime items can be compiled once per
//! format (`StrftimeItems::parse_to_owned`) and applied to each line without
//! re-reading the pattern; its `Parsed` says whether the text carried an
//! offset (`%z`) or an epoch (`%s`) and lets a missing year be supplied
//! (syslog's RFC 3164 has none); it is the most used date crate of the
//! ecosystem. Time zone names come from `chrono-tz`, which compiles the IANA
//! tz database into the binary, so `TZ Europe/Paris` works on hosts without
//! tzdata and gives the same answer on every host. Fixed offsets (`+02:00`,
//! `-0700`) and `UTC`/`Z` are accepted too.
//!
//! A timestamp without an offset stays naive (`2008-11-09T20:36:15`) unless
//! the format has a `TZ`, which places it in that zone and adds the offset.
//! A timestamp with an offset keeps it; an epoch (`%s`) is UTC, or the
//! `TZ` zone's local time when one is set.

use chrono::format::{Fixed, Item, Numeric, Parsed, StrftimeItems};
use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone,
    Timelike,
};
use std::fmt::Write;

/// Why a strftime pattern does not compile or a timestamp does not read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimeError {
    #[error("invalid strftime pattern '{0}'")]
    BadPattern(String),
    /// The text (at most 64 characters of it) does not have the
    /// pattern's shape.
    #[error("timestamp '{text}' does not fit the pattern: {source}")]
    Mismatch {
        text: String,
        source: chrono::format::ParseError,
    },
    #[error("bad epoch timestamp: {0}")]
    BadEpoch(chrono::format::ParseError),
    /// The fields read do not make a date and time.
    #[error("bad timestamp '{text}': {source}")]
    Bad {
        text: String,
        source: chrono::format::ParseError,
    },
    #[error("local time {0} does not exist in the zone")]
    NoSuchLocalTime(NaiveDateTime),
}

/// A zone for naive timestamps.
#[derive(Clone, Debug, PartialEq)]
pub enum Zone {
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl Zone {
    /// `UTC`, `Z`, `+02:00`, `-0700`, `+05`, or an IANA name.
    pub fn parse(s: &str) -> Option<Zone> {
        if s.eq_ignore_ascii_case("utc") || s == "Z" {
            return Some(Zone::Fixed(FixedOffset::east_opt(0)?));
        }
        if let Some(rest) = s.strip_prefix('+').or_else(|| s.strip_prefix('-')) {
            let sign = if s.starts_with('-') { -1 } else { 1 };
            let digits: String = rest.chars().filter(|c| *c != ':').collect();
            if !digits.bytes().all(|b| b.is_ascii_digit()) || rest.len() > 5 {
                return None;
            }
            let (h, m) = match digits.len() {
                2 => (digits.parse::<i32>().ok()?, 0),
                4 => (digits[..2].parse::<i32>().ok()?, digits[2..].parse().ok()?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            return FixedOffset::east_opt(sign * (h * 3600 + m * 60)).map(Zone::Fixed);
        }
        s.parse::<chrono_tz::Tz>().ok().map(Zone::Named)
    }

    /// The offset of local time `t` in this zone (the earlier one when the
    /// time is ambiguous); None when `t` does not exist there (DST gap).
    fn offset_of_local(&self, t: &NaiveDateTime) -> Option<i32> {
        match self {
            Zone::Fixed(f) => Some(f.local_minus_utc()),
            Zone::Named(tz) => tz
                .from_local_datetime(t)
                .earliest()
                .map(|d| d.offset().fix().local_minus_utc()),
        }
    }

    /// Local time and offset of an absolute time in this zone.
    fn localise(&self, utc: &DateTime<chrono::Utc>) -> (NaiveDateTime, i32) {
        match self {
            Zone::Fixed(f) => {
                let d = utc.with_timezone(f);
                (d.naive_local(), f.local_minus_utc())
            }
            Zone::Named(tz) => {
                let d = utc.with_timezone(tz);
                (d.naive_local(), d.offset().fix().local_minus_utc())
            }
        }
    }
}

/// A normalised timestamp: local wall time, and its offset from UTC when
/// known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    pub local: NaiveDateTime,
    pub offset_s: Option<i32>,
}

impl Timestamp {
    /// ISO-8601: `2008-11-09T20:36:15`, fractions when present
    /// (`.978`, `.675872`), then `+01:00` when the offset is known.
    pub fn iso(&self) -> String {
        let mut s = Vec::with_capacity(32);
        self.write_iso(&mut s);
        // write_iso writes ASCII only.
        String::from_utf8(s).unwrap_or_default()
    }

    /// Appends `iso()` to `out` (INGEST writes it straight into the
    /// entry). Years 0..=9999 without a leap second are written by hand
    /// (chrono's formatter re-reads its pattern on every call); others go
    /// through chrono's `%Y-%m-%dT%H:%M:%S%.f`, whose output this equals.
    pub fn write_iso(&self, out: &mut Vec<u8>) {
        let d = self.local.date();
        let t = self.local.time();
        let nano = t.nanosecond();
        if (0..=9999).contains(&d.year()) && nano < 1_000_000_000 {
            let two = |out: &mut Vec<u8>, v: u32| {
                out.extend_from_slice(&[b'0' + (v / 10) as u8, b'0' + (v % 10) as u8])
            };
            let y = d.year() as u32;
            two(out, y / 100);
            two(out, y % 100);
            out.push(b'-');
            two(out, d.month());
            out.push(b'-');
            two(out, d.day());
            out.push(b'T');
            two(out, t.hour());
            out.push(b':');
            two(out, t.minute());
            out.push(b':');
            two(out, t.second());
            // `%.f`: nothing, or 3, 6 or 9 digits, the fewest that are exact.
            let (digits, v) = if nano == 0 {
                (0, 0)
            } else if nano.is_multiple_of(1_000_000) {
                (3, nano / 1_000_000)
            } else if nano.is_multiple_of(1_000) {
                (6, nano / 1_000)
            } else {
                (9, nano)
            };
            if digits > 0 {
                out.push(b'.');
                let mut buf = [b'0'; 9];
                let mut v = v;
                for b in buf[..digits].iter_mut().rev() {
                    *b = b'0' + (v % 10) as u8;
                    v /= 10;
                }
                out.extend_from_slice(&buf[..digits]);
            }
        } else {
            let mut s = String::new();
            let _ = write!(s, "{}", self.local.format("%Y-%m-%dT%H:%M:%S%.f"));
            out.extend_from_slice(s.as_bytes());
        }
        if let Some(off) = self.offset_s {
            let sign = if off < 0 { '-' } else { '+' };
            let a = off.unsigned_abs();
            let mut s = String::new();
            let _ = write!(s, "{sign}{:02}:{:02}", a / 3600, a / 60 % 60);
            out.extend_from_slice(s.as_bytes());
        }
    }

    /// Milliseconds since the Unix epoch; a naive timestamp counts as UTC.
    pub fn unix_ms(&self) -> i64 {
        self.local.and_utc().timestamp_millis() - i64::from(self.offset_s.unwrap_or(0)) * 1000
    }
}

/// A compiled strftime pattern plus the format's zone.
#[derive(Clone, Debug)]
pub struct TimeParser {
    items: Vec<Item<'static>>,
    /// The pattern as fixed-width digit fields and literals, when it has
    /// that shape (see `Fast`).
    fast: Option<Vec<FastItem>>,
    zone: Option<Zone>,
}

/// Date and time fields the fast path reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FastField {
    Year,
    YearMod100,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    /// Fraction digits (`%3f`, `%6f`, `%9f`) giving nanoseconds.
    Frac,
}

/// One step of the fast path: exactly `width` ASCII digits, or exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum FastItem {
    Digits(FastField, usize),
    Lit(Box<[u8]>),
}

/// The fast program of a strftime pattern made of zero-padded numbers
/// (`%Y %y %m %d %H %M %S`, each once, month to second all present),
/// `%3f`/`%6f`/`%9f` and literal text (`%y%m%d %H%M%S`,
/// `%Y-%m-%d %H:%M:%S,%3f`): most log timestamps. On text where every
/// number has its full width and every literal (spaces included) is
/// exact, chrono consumes the text the same way, so reading the digits
/// directly gives chrono's result; any other text goes to chrono.
fn fast_program(items: &[Item<'static>]) -> Option<Vec<FastItem>> {
    let mut out: Vec<FastItem> = Vec::new();
    let mut seen: Vec<FastField> = Vec::new();
    let lit = |out: &mut Vec<FastItem>, s: &str| {
        if let Some(FastItem::Lit(prev)) = out.last_mut() {
            let mut v = prev.to_vec();
            v.extend_from_slice(s.as_bytes());
            *prev = v.into_boxed_slice();
        } else if !s.is_empty() {
            out.push(FastItem::Lit(s.as_bytes().into()));
        }
    };
    for it in items {
        let (f, w) = match it {
            Item::Literal(s) => {
                lit(&mut out, s);
                continue;
            }
            Item::OwnedLiteral(s) => {
                lit(&mut out, s);
                continue;
            }
            // chrono skips any whitespace there; the fast path takes only
            // the pattern's own spaces, exactly.
            Item::Space(s) => {
                lit(&mut out, s);
                continue;
            }
            Item::OwnedSpace(s) => {
                lit(&mut out, s);
                continue;
            }
            Item::Numeric(n, _) => match n {
                Numeric::Year => (FastField::Year, 4),
                Numeric::YearMod100 => (FastField::YearMod100, 2),
                Numeric::Month => (FastField::Month, 2),
                Numeric::Day => (FastField::Day, 2),
                Numeric::Hour => (FastField::Hour, 2),
                Numeric::Minute => (FastField::Minute, 2),
                Numeric::Second => (FastField::Second, 2),
                _ => return None,
            },
            Item::Fixed(Fixed::Internal(i)) => {
                // `InternalFixed` is opaque: compare with the items chrono
                // makes for `%3f`, `%6f`, `%9f`.
                let w = [("%3f", 3), ("%6f", 6), ("%9f", 9)].iter().find(|(p, _)| {
                    StrftimeItems::new(p)
                        .next()
                        .is_some_and(|x| x == Item::Fixed(Fixed::Internal(i.clone())))
                })?;
                (FastField::Frac, w.1)
            }
            _ => return None,
        };
        if seen.contains(&f) {
            return None;
        }
        seen.push(f);
        out.push(FastItem::Digits(f, w));
    }
    let has = |f| seen.contains(&f);
    let all = [
        FastField::Month,
        FastField::Day,
        FastField::Hour,
        FastField::Minute,
        FastField::Second,
    ];
    if !all.iter().all(|&f| has(f)) || (has(FastField::Year) && has(FastField::YearMod100)) {
        return None;
    }
    Some(out)
}

impl TimeParser {
    /// Compiles `strftime`; the error names what is wrong.
    pub fn new(strftime: &str, zone: Option<Zone>) -> Result<TimeParser, TimeError> {
        let items = StrftimeItems::new(strftime)
            .parse_to_owned()
            .map_err(|_| TimeError::BadPattern(strftime.to_string()))?;
        let fast = fast_program(&items);
        Ok(TimeParser { items, fast, zone })
    }

    /// The fast path (`fast_program`): None when the text does not have
    /// the exact shape or a value is out of range (chrono then decides,
    /// and words the error).
    fn parse_fast(&self, text: &[u8], default_year: i32) -> Option<NaiveDateTime> {
        let prog = self.fast.as_ref()?;
        let (mut year, mut month, mut day, mut hour, mut min, mut sec, mut nano) =
            (default_year, 0, 0, 0, 0, 0, 0u32);
        let mut at = 0;
        for it in prog {
            match it {
                FastItem::Lit(l) => {
                    if !text.get(at..)?.starts_with(l) {
                        return None;
                    }
                    at += l.len();
                }
                FastItem::Digits(f, w) => {
                    let d = text.get(at..at + w)?;
                    let mut v = 0u32;
                    for &b in d {
                        if !b.is_ascii_digit() {
                            return None;
                        }
                        v = v * 10 + u32::from(b - b'0');
                    }
                    at += w;
                    match f {
                        FastField::Year => year = v as i32,
                        FastField::YearMod100 => year = v as i32 + if v < 70 { 2000 } else { 1900 },
                        FastField::Month => month = v,
                        FastField::Day => day = v,
                        FastField::Hour => hour = v,
                        FastField::Minute => min = v,
                        FastField::Second => sec = v,
                        FastField::Frac => nano = v * 10u32.pow(9 - *w as u32),
                    }
                }
            }
        }
        if at != text.len() || sec > 59 {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(year, month, day)?;
        let time = NaiveTime::from_hms_nano_opt(hour, min, sec, nano)?;
        Some(NaiveDateTime::new(date, time))
    }

    /// Reads `text`; `default_year` fills a pattern without a year.
    pub fn parse(&self, text: &str, default_year: i32) -> Result<Timestamp, TimeError> {
        if let Some(local) = self.parse_fast(text.as_bytes(), default_year) {
            return self.place(local);
        }
        self.parse_chrono(text, default_year)
    }

    /// `parse` through chrono's parser.
    fn parse_chrono(&self, text: &str, default_year: i32) -> Result<Timestamp, TimeError> {
        let mut p = Parsed::new();
        chrono::format::parse(&mut p, text, self.items.iter()).map_err(|source| {
            TimeError::Mismatch {
                text: clip(text).to_string(),
                source,
            }
        })?;
        if p.timestamp().is_some() {
            let d = p
                .to_datetime_with_timezone(&chrono::Utc)
                .map_err(TimeError::BadEpoch)?;
            return Ok(self.absolute(&d));
        }
        if p.year().is_none() && p.year_mod_100().is_none() && p.isoyear().is_none() {
            let _ = p.set_year(i64::from(default_year));
        }
        if p.offset().is_some() {
            let d = p.to_datetime().map_err(|source| bad(text, source))?;
            return Ok(Timestamp {
                local: d.naive_local(),
                offset_s: Some(d.offset().local_minus_utc()),
            });
        }
        let local = p
            .to_naive_datetime_with_offset(0)
            .map_err(|source| bad(text, source))?;
        self.place(local)
    }

    fn absolute(&self, d: &DateTime<chrono::Utc>) -> Timestamp {
        match &self.zone {
            Some(z) => {
                let (local, off) = z.localise(d);
                Timestamp {
                    local,
                    offset_s: Some(off),
                }
            }
            None => Timestamp {
                local: d.naive_utc(),
                offset_s: Some(0),
            },
        }
    }

    fn place(&self, local: NaiveDateTime) -> Result<Timestamp, TimeError> {
        match &self.zone {
            None => Ok(Timestamp {
                local,
                offset_s: None,
            }),
            Some(z) => match z.offset_of_local(&local) {
                Some(off) => Ok(Timestamp {
                    local,
                    offset_s: Some(off),
                }),
                None => Err(TimeError::NoSuchLocalTime(local)),
            },
        }
    }

    /// Reads a timestamp whose pattern is not known: RFC 3339 / ISO-8601
    /// (`2024-05-01T10:00:00Z`, space instead of `T`, no offset), or a Unix
    /// epoch in seconds (up to 10^11) or milliseconds, with fractions.
    pub fn parse_auto(text: &str, zone: Option<&Zone>) -> Option<Timestamp> {
        let holder = TimeParser {
            items: Vec::new(),
            fast: None,
            zone: zone.cloned(),
        };
        let t = text.trim();
        if let Ok(d) = DateTime::parse_from_rfc3339(t) {
            return Some(Timestamp {
                local: d.naive_local(),
                offset_s: Some(d.offset().local_minus_utc()),
            });
        }
        for pat in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(n) = NaiveDateTime::parse_from_str(t, pat) {
                return holder.place(n).ok();
            }
        }
        let secs: f64 = t.parse().ok().filter(|v: &f64| v.is_finite())?;
        let ms = if secs.abs() < 1e11 {
            secs * 1000.0
        } else {
            secs
        };
        let d = DateTime::from_timestamp_millis(ms as i64)?;
        Some(holder.absolute(&d))
    }
}

/// `TimeError::Bad` for `text`, clipped.
fn bad(text: &str, source: chrono::format::ParseError) -> TimeError {
    TimeError::Bad {
        text: clip(text).to_string(),
        source,
    }
}

/// At most 64 characters of a value, for error messages.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts() {
        let e = TimeParser::new("%Q", None).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("invalid strftime pattern '%Q'"));
        let p = TimeParser::new("%y%m%d", None).unwrap();
        let e = p.parse("08x109", 2024).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("timestamp '08x109' does not fit the pattern: input contains invalid characters")
        );
    }

    fn check(pattern: &str, tz: Option<&str>, text: &str, iso: &str) {
        let p = TimeParser::new(pattern, tz.map(|z| Zone::parse(z).unwrap())).unwrap();
        assert_eq!(p.parse(text, 2024).unwrap().iso(), iso, "{pattern} {text}");
    }

    #[test]
    fn normalises() {
        check(
            "%y%m%d %H%M%S",
            None,
            "081109 203615",
            "2008-11-09T20:36:15",
        );
        check(
            "%Y-%m-%d %H:%M:%S,%3f",
            None,
            "2015-10-18 18:01:47,978",
            "2015-10-18T18:01:47.978",
        );
        check(
            "%Y-%m-%d-%H.%M.%S.%6f",
            None,
            "2005-06-03-15.42.50.675872",
            "2005-06-03T15:42:50.675872",
        );
        check(
            "%d/%b/%Y:%H:%M:%S %z",
            None,
            "10/Oct/2000:13:55:36 -0700",
            "2000-10-10T13:55:36-07:00",
        );
        check(
            "%b %e %H:%M:%S",
            None,
            "Oct  1 22:14:15",
            "2024-10-01T22:14:15",
        );
        check(
            "%y%m%d %H%M%S",
            Some("Europe/Paris"),
            "081109 203615",
            "2008-11-09T20:36:15+01:00",
        );
        check(
            "%y%m%d %H%M%S",
            Some("+05:30"),
            "081109 203615",
            "2008-11-09T20:36:15+05:30",
        );
        check("%s", None, "1117838570", "2005-06-03T22:42:50+00:00");
        check(
            "%s",
            Some("America/Los_Angeles"),
            "1117838570",
            "2005-06-03T15:42:50-07:00",
        );
        let p = TimeParser::new("%y%m%d", None).unwrap();
        assert!(p.parse("08x109", 2024).is_err());
        assert!(TimeParser::new("%Q", None).is_err());
        assert!(Zone::parse("Mars/Base").is_none());
        assert!(Zone::parse("+25:00").is_none());
    }

    /// The fast path gives chrono's answer (value or error) on every text.
    #[test]
    fn fast_path_equals_chrono() {
        let patterns = [
            "%y%m%d %H%M%S",
            "%Y-%m-%d %H:%M:%S,%3f",
            "%Y-%m-%d-%H.%M.%S.%6f",
            "%m-%d %H:%M:%S.%9f",
            "%Y%m%d%H%M%S",
        ];
        let texts = [
            "081109 203615",
            "691231 235959",
            "700101 000000",
            "081109  203615",
            "08110 203615",
            "081109 203615 ",
            "080230 120000",
            "080229 120000",
            "081109 246015",
            "081109 203660",
            "2015-10-18 18:01:47,978",
            "2015-10-18 18:01:47,97",
            "2015-10-18 18:01:47,9781",
            "2015-13-18 18:01:47,978",
            "2015-00-18 18:01:47,978",
            "2005-06-03-15.42.50.675872",
            "2005-06-03-15.42.60.675872",
            "06-03 15:42:50.000000001",
            "06-03 15:42:50.100000000",
            "20240229235959",
            "20230229235959",
            "0000-01-01 00:00:00,000",
            "",
        ];
        for pat in patterns {
            for tz in [None, Some("Europe/Paris")] {
                let p = TimeParser::new(pat, tz.map(|z| Zone::parse(z).unwrap())).unwrap();
                assert!(p.fast.is_some(), "{pat}");
                for t in texts {
                    let got = p.parse(t, 2024);
                    let want = p.parse_chrono(t, 2024);
                    assert_eq!(got, want, "{pat} / {t:?}");
                    if let Ok(ts) = got {
                        let chrono_iso = ts.local.format("%Y-%m-%dT%H:%M:%S%.f").to_string();
                        assert!(ts.iso().starts_with(&chrono_iso), "{pat} / {t:?}");
                    }
                }
            }
        }
        assert!(TimeParser::new("%b %e %H:%M:%S", None)
            .unwrap()
            .fast
            .is_none());
        assert!(TimeParser::new("%y%m%d", None).unwrap().fast.is_none());
    }

    #[test]
    fn iso_by_hand_equals_chrono() {
        let d = NaiveDate::from_ymd_opt(2008, 11, 9).unwrap();
        for nano in [0, 1, 978_000_000, 675_872_000, 123_456_789, 1_500_000_000] {
            for off in [None, Some(3600), Some(-25_200)] {
                let Some(t) = NaiveTime::from_hms_nano_opt(20, 36, 59, nano) else {
                    continue;
                };
                let ts = Timestamp {
                    local: NaiveDateTime::new(d, t),
                    offset_s: off,
                };
                let mut want = ts.local.format("%Y-%m-%dT%H:%M:%S%.f").to_string();
                if let Some(o) = off {
                    let a = o.unsigned_abs();
                    let sign = if o < 0 { '-' } else { '+' };
                    want.push_str(&format!("{sign}{:02}:{:02}", a / 3600, a / 60 % 60));
                }
                assert_eq!(ts.iso(), want);
            }
        }
    }

    #[test]
    fn auto() {
        let a = |s| TimeParser::parse_auto(s, None).map(|t| t.iso());
        assert_eq!(
            a("2024-05-01T10:00:00Z").as_deref(),
            Some("2024-05-01T10:00:00+00:00")
        );
        assert_eq!(
            a("2024-05-01 10:00:00.5").as_deref(),
            Some("2024-05-01T10:00:00.500")
        );
        assert_eq!(
            a("1117838570").as_deref(),
            Some("2005-06-03T22:42:50+00:00")
        );
        assert_eq!(
            a("1117838570123").as_deref(),
            Some("2005-06-03T22:42:50.123+00:00")
        );
        assert_eq!(a("soon"), None);
    }
}
