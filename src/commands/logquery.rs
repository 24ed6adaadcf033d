//! LOGPARSE STATS, GREP, TAIL and TEMPLATES: queries over the log entries
//! INGEST stored in a stream (`commands::logingest`).
//!
//! Time. An entry's time is its id's milliseconds: with `IDS TIME` that is
//! the event time (the latest event time so far when the log goes back,
//! the true time staying in `ts`), with `IDS AUTO` the time it was stored.
//! A FROM / TO bound is an id as XRANGE reads it (`-`, `+`, `ms`,
//! `ms-seq`, `(` for exclusive) or an ISO-8601 time, converted to the id
//! range of its millisecond, so every range is served through the entry
//! log's sparse index (`Inner::range`) and nothing outside it is read.

use super::stream_common::{interval_id, read_stream, reply_entries, storage_err, strict_id};
use super::{arg_i64, is_kw, CmdError, CmdResult, Ctx};
use crate::stream::{fmt_id, id_ms, make_id, BlockFilter, StreamRef};
use bytes::Bytes;
use std::collections::HashMap;

/// Entries read per step of a scan (GREP, STATS).
const SCAN_CHUNK: usize = 512;
/// Components listed by STATS.
const TOP_COMPONENTS: usize = 10;
/// Largest compiled GREP regex, bytes.
const REGEX_SIZE_MAX: usize = 1 << 20;
/// Most buckets a STATS ... BUCKET reply holds.
pub const BUCKETS_MAX: u64 = 100_000;

/// Milliseconds since the epoch of an ISO-8601 time: `YYYY-MM-DD`, then
/// optionally `T` or a space and `hh:mm[:ss[.fff]]`, then optionally `Z`
/// or `±hh:mm` (without one it is UTC, as INGEST's `ts` without a zone).
pub fn iso_ms(s: &[u8]) -> Option<i64> {
    // A four-digit year first (chrono would read `12-3-4` as year 12).
    if s.len() < 10 || !s[..4].iter().all(u8::is_ascii_digit) || s[4] != b'-' {
        return None;
    }
    let s = std::str::from_utf8(s).ok()?;
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(d.timestamp_millis());
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%d %H:%M%:z",
    ] {
        if let Ok(d) = chrono::DateTime::parse_from_str(s, f) {
            return Some(d.timestamp_millis());
        }
    }
    let s = s.strip_suffix('Z').unwrap_or(s);
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(d) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Some(d.and_utc().timestamp_millis());
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_millis())
}

fn bad_time() -> CmdError {
    CmdError::new("ERR FROM and TO must be stream IDs, milliseconds or ISO-8601 times")
}

/// A FROM (`start`) or TO bound: an id as XRANGE reads it, else an
/// ISO-8601 time (its whole millisecond; `(` excludes it).
fn bound(a: &[u8], start: bool) -> Result<u128, CmdError> {
    let (id, ex) = match interval_id(a, if start { 0 } else { u64::MAX }) {
        Ok(b) => b,
        Err(e) => {
            let (ex, t) = match a.strip_prefix(b"(") {
                Some(t) => (true, t),
                None => (false, a),
            };
            let Some(ms) = iso_ms(t) else {
                // Neither: an id-like argument keeps XRANGE's error.
                return Err(if t.iter().all(|&b| b.is_ascii_digit() || b == b'-') {
                    e
                } else {
                    bad_time()
                });
            };
            let ms = u64::try_from(ms).map_err(|_| bad_time())?;
            // As a time, `(` excludes the whole millisecond.
            let id = match (ex, start) {
                (false, true) | (true, false) => make_id(ms, 0),
                (false, false) | (true, true) => make_id(ms, u64::MAX),
            };
            (id, ex)
        }
    };
    match (ex, start) {
        (false, _) => Ok(id),
        (true, true) => id
            .checked_add(1)
            .ok_or_else(|| CmdError::new("ERR invalid start ID for the interval")),
        (true, false) => id
            .checked_sub(1)
            .ok_or_else(|| CmdError::new("ERR invalid end ID for the interval")),
    }
}

fn count_arg(a: &[u8]) -> Result<usize, CmdError> {
    let n = arg_i64(a)?;
    usize::try_from(n).map_err(|_| CmdError::new("ERR COUNT must be positive"))
}

/// Calls `f` on every live entry with `from <= id <= to`, ascending, until
/// it returns false. The start is found through the log's sparse index.
/// With a filter (which `f` applies too), blocks of compressed segments that
/// cannot match are skipped unread.
fn scan(
    s: &StreamRef,
    from: u128,
    to: u128,
    filter: Option<&BlockFilter>,
    mut f: impl FnMut(u128, &[Bytes]) -> bool,
) -> Result<(), CmdError> {
    let g = s.lock().map_err(storage_err)?;
    if let Some(flt) = filter {
        return g
            .range_filtered(from, to, usize::MAX, flt, |id, v| {
                let fields = crate::stream::codec::decode_entry(v)?;
                Ok(f(id, &fields))
            })
            .map_err(storage_err);
    }
    let mut at = from;
    loop {
        let chunk = g.range(at, to, SCAN_CHUNK, false).map_err(storage_err)?;
        let Some(&(last, _)) = chunk.last() else {
            return Ok(());
        };
        for (id, fields) in &chunk {
            if !f(*id, fields) {
                return Ok(());
            }
        }
        if chunk.len() < SCAN_CHUNK || last == u128::MAX {
            return Ok(());
        }
        at = last + 1;
    }
}

fn field<'a>(fields: &'a [Bytes], name: &[u8]) -> Option<&'a Bytes> {
    fields
        .chunks_exact(2)
        .find(|p| p[0].as_ref() == name)
        .map(|p| &p[1])
}

/// The field a `BY` / `FIELD` name stands for (`template`: `template_id`).
fn field_name(name: &Bytes) -> Bytes {
    if name.eq_ignore_ascii_case(b"template") {
        Bytes::from_static(b"template_id")
    } else {
        name.clone()
    }
}

/// LOGPARSE GREP <key> <regex> [LEVEL <l>] [COMPONENT <c>] [TEMPLATE <id>]
/// [FIELD <name> <value>]... [FROM <id|time>] [TO <id|time>] [COUNT <n>]
///
/// Entries whose `content` matches the regex (and whose level and
/// component equal the given ones, ASCII case-insensitively, whose
/// template id is the given one and whose fields have the given values,
/// exactly), in id order.
pub(super) fn grep(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let pattern =
        std::str::from_utf8(&args[3]).map_err(|_| CmdError::new("ERR regex is not valid UTF-8"))?;
    let re = regex::bytes::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_MAX)
        .build()
        .map_err(|e| CmdError::new(format!("ERR invalid regex: {}", one_line(&e.to_string()))))?;
    let (mut level, mut component, mut from, mut to, mut count) =
        (None, None, 0u128, u128::MAX, usize::MAX);
    // Fields that must hold exactly these values.
    let mut exact: Vec<(Bytes, Bytes)> = Vec::new();
    let mut i = 4;
    while i < args.len() {
        let val = args.get(i + 1).ok_or_else(CmdError::syntax)?;
        let opt = &args[i];
        if is_kw(opt, "level") {
            level = Some(val.clone());
        } else if is_kw(opt, "component") {
            component = Some(val.clone());
        } else if is_kw(opt, "template") {
            let id = arg_i64(val)
                .ok()
                .filter(|&n| n >= 0)
                .ok_or_else(|| CmdError::new("ERR TEMPLATE must be a template id"))?;
            exact.push((
                Bytes::from_static(b"template_id"),
                Bytes::from(id.to_string()),
            ));
        } else if is_kw(opt, "field") {
            let v = args.get(i + 2).ok_or_else(CmdError::syntax)?;
            exact.push((field_name(val), v.clone()));
            i += 1;
        } else if is_kw(opt, "from") {
            from = bound(val, true)?;
        } else if is_kw(opt, "to") {
            to = bound(val, false)?;
        } else if is_kw(opt, "count") {
            count = count_arg(val)?;
        } else {
            return Err(CmdError::syntax());
        }
        i += 2;
    }
    let Some(s) = read_stream(ctx, &args[2])? else {
        ctx.out.array(0);
        return Ok(());
    };
    let eq = |want: &Option<Bytes>, got: Option<&Bytes>| match want {
        None => true,
        Some(w) => got.is_some_and(|g| g.eq_ignore_ascii_case(w)),
    };
    // What block summaries can rule out: exact fields, level and component.
    let mut flt = BlockFilter::default();
    for (k, v) in &exact {
        flt.conds.push((k.to_vec(), v.to_vec(), false));
    }
    for (k, v) in [(&b"level"[..], &level), (b"component", &component)] {
        if let Some(v) = v {
            flt.conds.push((k.to_vec(), v.to_vec(), true));
        }
    }
    let flt = (!flt.conds.is_empty()).then_some(flt);
    let mut out = Vec::new();
    if count > 0 && from <= to {
        scan(&s, from, to, flt.as_ref(), |id, fields| {
            let hit = eq(&level, field(fields, b"level"))
                && eq(&component, field(fields, b"component"))
                && exact
                    .iter()
                    .all(|(k, v)| field(fields, k).is_some_and(|g| g == v))
                && field(fields, b"content").is_some_and(|c| re.is_match(c));
            if hit {
                out.push((id, fields.to_vec()));
            }
            out.len() < count
        })?;
    }
    reply_entries(ctx, &out);
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Milliseconds since the epoch of an INGEST `ts` (ISO-8601 as
/// `Timestamp::iso` writes it; without an offset it counts as UTC).
fn ts_ms(ts: &[u8]) -> Option<i64> {
    iso_ms(ts)
}

/// Counts sorted by count descending, then name.
fn ranked(m: HashMap<Bytes, u64>) -> Vec<(Bytes, u64)> {
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

fn write_counts(out: &mut crate::protocol::Out, v: &[(Bytes, u64)]) {
    out.map(v.len());
    for (name, n) in v {
        out.bulk(name);
        out.int(*n as i64);
    }
}

/// LOGPARSE STATS <key> [FROM <id|time>] [TO <id|time>] [BY <field>] [BUCKET <ms>]
///
/// Without BY and BUCKET, a map: `entries`, `first_ts`, `last_ts`
/// (earliest and latest event time, null when no entry has one),
/// `duration_ms`, `events_per_sec` (entries over the duration; null when
/// it is 0), `levels` (count per level, most frequent first),
/// `top_components` (the 10 most frequent), `templates` (distinct
/// template ids).
///
/// `BY <field>` (`template` for `template_id`, `level`, `component` or any
/// field) counts the entries per value of the field (entries without it
/// are not counted): a map, most frequent first. `BUCKET <ms>` counts per
/// time bucket (`id ms - id ms % <ms>`): an array with one element per
/// bucket from the first entry's to the last one's, empty ones included,
/// each `[start ms, entries]`, or with BY `[start ms, entries, {value:
/// count}]`.
pub(super) fn stats(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut from, mut to) = (0u128, u128::MAX);
    let (mut by, mut bucket) = (None, None);
    let mut i = 3;
    while i < args.len() {
        let val = args.get(i + 1).ok_or_else(CmdError::syntax)?;
        if is_kw(&args[i], "from") {
            from = bound(val, true)?;
        } else if is_kw(&args[i], "to") {
            to = bound(val, false)?;
        } else if is_kw(&args[i], "by") {
            by = Some(field_name(val));
        } else if is_kw(&args[i], "bucket") {
            let ms = arg_i64(val)
                .ok()
                .and_then(|n| u64::try_from(n).ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| CmdError::new("ERR BUCKET must be a positive integer"))?;
            bucket = Some(ms);
        } else {
            return Err(CmdError::syntax());
        }
        i += 2;
    }
    let s = read_stream(ctx, &args[2])?;
    if by.is_some() || bucket.is_some() {
        return stats_by(ctx, s.as_ref(), from, to, by, bucket);
    }
    let mut entries = 0u64;
    // Earliest and latest event time: (ms, ts as stored).
    let mut first: Option<(i64, Bytes)> = None;
    let mut last: Option<(i64, Bytes)> = None;
    let mut levels: HashMap<Bytes, u64> = HashMap::new();
    let mut comps: HashMap<Bytes, u64> = HashMap::new();
    let mut templates = std::collections::HashSet::new();
    if let (Some(s), true) = (&s, from <= to) {
        scan(s, from, to, None, |_, fields| {
            entries += 1;
            if let Some(ts) = field(fields, b"ts") {
                if let Some(ms) = ts_ms(ts) {
                    if first.as_ref().is_none_or(|f| ms < f.0) {
                        first = Some((ms, ts.clone()));
                    }
                    if last.as_ref().is_none_or(|l| ms > l.0) {
                        last = Some((ms, ts.clone()));
                    }
                }
            }
            if let Some(l) = field(fields, b"level") {
                *levels.entry(l.clone()).or_default() += 1;
            }
            if let Some(c) = field(fields, b"component") {
                *comps.entry(c.clone()).or_default() += 1;
            }
            if let Some(t) = field(fields, b"template_id") {
                templates.insert(t.clone());
            }
            true
        })?;
    }
    let duration = match (&first, &last) {
        (Some(f), Some(l)) => Some(l.0 - f.0),
        _ => None,
    };
    let levels = ranked(levels);
    let mut comps = ranked(comps);
    comps.truncate(TOP_COMPONENTS);
    let out = &mut *ctx.out;
    out.map(8);
    out.bulk(b"entries");
    out.int(entries as i64);
    for (k, v) in [(&b"first_ts"[..], &first), (b"last_ts", &last)] {
        out.bulk(k);
        match v {
            Some((_, ts)) => out.bulk(ts),
            None => out.null(),
        }
    }
    out.bulk(b"duration_ms");
    match duration {
        Some(d) => out.int(d),
        None => out.null(),
    }
    out.bulk(b"events_per_sec");
    match duration {
        Some(d) if d > 0 => out.double(entries as f64 * 1000.0 / d as f64),
        _ => out.null(),
    }
    for (k, v) in [(&b"levels"[..], &levels), (b"top_components", &comps)] {
        out.bulk(k);
        write_counts(out, v);
    }
    out.bulk(b"templates");
    out.int(templates.len() as i64);
    Ok(())
}

/// STATS with BY and / or BUCKET (see `stats`).
fn stats_by(
    ctx: &mut Ctx,
    s: Option<&StreamRef>,
    from: u128,
    to: u128,
    by: Option<Bytes>,
    bucket: Option<u64>,
) -> CmdResult {
    // Per bucket start (0 without BUCKET): entries and counts per value.
    let mut buckets: Vec<(u64, u64, HashMap<Bytes, u64>)> = Vec::new();
    let mut too_many = false;
    if let (Some(s), true) = (s, from <= to) {
        scan(s, from, to, None, |id, fields| {
            let start = bucket.map_or(0, |b| id_ms(id) - id_ms(id) % b);
            if buckets.last().is_none_or(|l| l.0 != start) {
                // Ids ascend, so buckets do: the gap is filled with empty ones.
                if let (Some(b), Some(l)) = (bucket, buckets.last()) {
                    if (start - l.0) / b > BUCKETS_MAX - buckets.len() as u64 {
                        too_many = true;
                        return false;
                    }
                    let mut at = l.0 + b;
                    while at < start {
                        buckets.push((at, 0, HashMap::new()));
                        at += b;
                    }
                }
                buckets.push((start, 0, HashMap::new()));
            }
            let Some(cur) = buckets.last_mut() else {
                return false;
            };
            cur.1 += 1;
            if let Some(v) = by.as_ref().and_then(|k| field(fields, k)) {
                *cur.2.entry(v.clone()).or_default() += 1;
            }
            true
        })?;
    }
    if too_many {
        return Err(CmdError::new(format!(
            "ERR more than {BUCKETS_MAX} buckets, use a larger BUCKET or a shorter range"
        )));
    }
    let out = &mut *ctx.out;
    if bucket.is_none() {
        let counts = buckets.pop().map(|b| b.2).unwrap_or_default();
        write_counts(out, &ranked(counts));
        return Ok(());
    }
    out.array(buckets.len());
    for (start, n, counts) in buckets {
        out.array(if by.is_some() { 3 } else { 2 });
        out.int(start as i64);
        out.int(n as i64);
        if by.is_some() {
            write_counts(out, &ranked(counts));
        }
    }
    Ok(())
}

/// LOGPARSE TAIL <key> <n> [AFTER <id>] [FOLLOW [BLOCK <ms>]]
///
/// The last n entries, oldest first (as XRANGE replies). With AFTER, the
/// first n entries after the id instead. FOLLOW reads after AFTER's id
/// (without AFTER: the stream's last id now) and, when there is nothing
/// there, blocks as XREAD BLOCK does until an entry is added (or BLOCK's
/// milliseconds pass: a null array; 0 or no BLOCK waits forever); a
/// client follows the log by calling it again with its last id.
pub(super) fn tail(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = count_arg(&args[3])?;
    let (mut after, mut follow, mut deadline) = (None, false, None);
    let mut i = 4;
    while i < args.len() {
        let opt = &args[i];
        if is_kw(opt, "follow") {
            follow = true;
            i += 1;
            continue;
        }
        let val = args.get(i + 1).ok_or_else(CmdError::syntax)?;
        if is_kw(opt, "after") {
            after = Some(if val.as_ref() == b"$" {
                None
            } else {
                Some(strict_id(val, false)?.id)
            });
        } else if is_kw(opt, "block") {
            deadline = Some(super::blocking::parse_timeout(
                val,
                super::blocking::Unit::Millis,
                ctx.now_ms,
            )?);
        } else {
            return Err(CmdError::syntax());
        }
        i += 2;
    }
    if deadline.is_some() && !follow {
        return Err(CmdError::syntax());
    }
    if follow && ctx.client.in_script {
        return Err(CmdError::new(
            "ERR LOGPARSE TAIL FOLLOW is not allowed from scripts",
        ));
    }
    let s = read_stream(ctx, &args[2])?;
    if after.is_none() && !follow {
        let Some(s) = s else {
            ctx.out.array(0);
            return Ok(());
        };
        let mut v = {
            let g = s.lock().map_err(storage_err)?;
            g.range(0, u128::MAX, n, true).map_err(storage_err)?
        };
        v.reverse();
        reply_entries(ctx, &v);
        return Ok(());
    }
    // Entries after this id (`$` / none: the last id now).
    let after = match after.flatten() {
        Some(id) => id,
        None => s.as_ref().and_then(|s| s.meta()).map_or(0, |m| m.last_id),
    };
    let v = match (&s, after.checked_add(1)) {
        (Some(s), Some(start)) if n > 0 => {
            let g = s.lock().map_err(storage_err)?;
            g.range(start, u128::MAX, n, false).map_err(storage_err)?
        }
        _ => Vec::new(),
    };
    if !v.is_empty() || !follow || n == 0 {
        reply_entries(ctx, &v);
        return Ok(());
    }
    if super::blocking::denied(ctx) || after == u128::MAX {
        ctx.out.null_array();
        return Ok(());
    }
    // Re-run when the key is ready with AFTER fixed, so it serves what was
    // added after this call.
    let mut again = args[..4].to_vec();
    again.push(Bytes::from_static(b"AFTER"));
    again.push(Bytes::from(fmt_id(after)));
    again.push(Bytes::from_static(b"FOLLOW"));
    if let Some(b) = args
        .iter()
        .position(|a| is_kw(a, "block"))
        .and_then(|p| args.get(p + 1))
    {
        again.push(Bytes::from_static(b"BLOCK"));
        again.push(b.clone());
    }
    super::blocking::block(
        ctx,
        &again,
        vec![args[2].clone()],
        deadline.unwrap_or(0),
        "stream",
        super::blocking::Null::Array,
    );
    Ok(())
}

/// LOGPARSE TEMPLATES <key> [COUNT <n>]
///
/// The stream's mined templates, most frequent first (ties by id): each a
/// map of `id`, `template` (`<*>` for variables) and `count`.
pub(super) fn templates(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut count = usize::MAX;
    let mut i = 3;
    while i < args.len() {
        let val = args.get(i + 1).ok_or_else(CmdError::syntax)?;
        if is_kw(&args[i], "count") {
            count = count_arg(val)?;
        } else {
            return Err(CmdError::syntax());
        }
        i += 2;
    }
    let Some(s) = read_stream(ctx, &args[2])? else {
        ctx.out.array(0);
        return Ok(());
    };
    let mut list: Vec<(u64, Vec<u8>, u64)> = match s.0.ingest.lock().as_deref() {
        Some(st) => st
            .ingestor
            .miner()
            .clusters()
            .map(|(id, c)| (id, c.template(), c.size))
            .collect(),
        None => Vec::new(),
    };
    list.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    list.truncate(count);
    let out = &mut *ctx.out;
    out.array(list.len());
    for (id, t, n) in list {
        out.map(3);
        out.bulk(b"id");
        out.int(id as i64);
        out.bulk(b"template");
        out.bulk(&t);
        out.bulk(b"count");
        out.int(n as i64);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_ms_reads_iso() {
        assert_eq!(ts_ms(b"1970-01-01T00:00:01.5"), Some(1500));
        assert_eq!(ts_ms(b"1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(ts_ms(b"garbage"), None);
    }

    #[test]
    fn bounds_read_ids_and_times() {
        assert_eq!(bound(b"5", true).unwrap(), make_id(5, 0));
        assert_eq!(bound(b"5", false).unwrap(), make_id(5, u64::MAX));
        assert_eq!(bound(b"(5-1", true).unwrap(), make_id(5, 2));
        assert_eq!(
            bound(b"1970-01-01T00:00:01Z", true).unwrap(),
            make_id(1000, 0)
        );
        assert_eq!(
            bound(b"1970-01-01 00:00:01.5", false).unwrap(),
            make_id(1500, u64::MAX)
        );
        assert_eq!(bound(b"1970-01-02", true).unwrap(), make_id(86_400_000, 0));
        assert_eq!(
            bound(b"(1970-01-01T00:00:01", true).unwrap(),
            make_id(1001, 0)
        );
        assert_eq!(
            bound(b"(1970-01-01T00:00:01", false).unwrap(),
            make_id(1000, 0) - 1
        );
        assert!(bound(b"yesterday", true).is_err());
        assert!(bound(b"1969-12-31T23:59:59", true).is_err());
    }
}
