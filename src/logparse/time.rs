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

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, TimeZone};
use std::fmt::Write;

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
        let mut s = String::with_capacity(32);
        let _ = write!(s, "{}", self.local.format("%Y-%m-%dT%H:%M:%S%.f"));
        if let Some(off) = self.offset_s {
            let sign = if off < 0 { '-' } else { '+' };
            let a = off.unsigned_abs();
            let _ = write!(s, "{sign}{:02}:{:02}", a / 3600, a / 60 % 60);
        }
        s
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
    zone: Option<Zone>,
}

impl TimeParser {
    /// Compiles `strftime`; the error names what is wrong.
    pub fn new(strftime: &str, zone: Option<Zone>) -> Result<TimeParser, String> {
        let items = StrftimeItems::new(strftime)
            .parse_to_owned()
            .map_err(|_| format!("invalid strftime pattern '{strftime}'"))?;
        Ok(TimeParser { items, zone })
    }

    /// Reads `text`; `default_year` fills a pattern without a year.
    pub fn parse(&self, text: &str, default_year: i32) -> Result<Timestamp, String> {
        let mut p = Parsed::new();
        chrono::format::parse(&mut p, text, self.items.iter())
            .map_err(|e| format!("timestamp '{}' does not fit the pattern: {e}", clip(text)))?;
        if p.timestamp().is_some() {
            let d = p
                .to_datetime_with_timezone(&chrono::Utc)
                .map_err(|e| format!("bad epoch timestamp: {e}"))?;
            return Ok(self.absolute(&d));
        }
        if p.year().is_none() && p.year_mod_100().is_none() && p.isoyear().is_none() {
            let _ = p.set_year(i64::from(default_year));
        }
        if p.offset().is_some() {
            let d = p
                .to_datetime()
                .map_err(|e| format!("bad timestamp '{}': {e}", clip(text)))?;
            return Ok(Timestamp {
                local: d.naive_local(),
                offset_s: Some(d.offset().local_minus_utc()),
            });
        }
        let local = p
            .to_naive_datetime_with_offset(0)
            .map_err(|e| format!("bad timestamp '{}': {e}", clip(text)))?;
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

    fn place(&self, local: NaiveDateTime) -> Result<Timestamp, String> {
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
                None => Err(format!("local time {local} does not exist in the zone")),
            },
        }
    }

    /// Reads a timestamp whose pattern is not known: RFC 3339 / ISO-8601
    /// (`2024-05-01T10:00:00Z`, space instead of `T`, no offset), or a Unix
    /// epoch in seconds (up to 10^11) or milliseconds, with fractions.
    pub fn parse_auto(text: &str, zone: Option<&Zone>) -> Option<Timestamp> {
        let holder = TimeParser {
            items: Vec::new(),
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
