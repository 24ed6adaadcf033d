//! Geo commands (Redis 7.0's geo.c): GEOADD, GEODIST, GEOHASH, GEOPOS,
//! GEOSEARCH, GEOSEARCHSTORE, GEORADIUS, GEORADIUSBYMEMBER and the _RO
//! forms, over sorted sets whose scores are 52-bit interleaved geohashes
//! (`geohash`).
//!
//! GEOADD turns its triples into a ZADD argument vector and runs ZADD, as
//! Redis does, so it has ZADD's effects (`Effect::ZAdd` in the WAL, the
//! `zadd` event). GEOSEARCHSTORE and GEORADIUS STORE write their result as
//! the destination's final state (`zsets::store`). Searches scan the 9
//! boxes in Redis's order and sort with Redis's sorts (`sort`), so results
//! come out in Redis's order, ties included.

mod geohash;
mod sort;

use super::strings::ldouble::{self, Ld};
use super::zsets::{self, parse_score};
use super::{c_str_lossy, is_opt, read_typed, reader, CmdError, CmdResult, Ctx, Handler};
use crate::db::zset::ZSet;
use crate::db::Value;
use crate::protocol::Out;
use bytes::Bytes;
use geohash::{Shape, ShapeKind};
use std::cmp::Ordering;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("geoadd", geoadd),
    ("geodist", geodist),
    ("geohash", geohash_cmd),
    ("geopos", geopos),
    ("georadius", georadius),
    ("georadius_ro", georadius_ro),
    ("georadiusbymember", georadiusbymember),
    ("georadiusbymember_ro", georadiusbymember_ro),
    ("geosearch", geosearch),
    ("geosearchstore", geosearchstore),
];

fn as_zset(v: &mut Value) -> Result<&mut ZSet, CmdError> {
    match v {
        Value::ZSet(z) => Ok(z),
        _ => Err(CmdError::wrong_type()),
    }
}

// ---- argument helpers ----

/// C's `printf("%.6f")`: the exact binary value rounded half to even at the
/// sixth decimal, as glibc does.
fn c_fixed6(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x < 0.0 {
            "-inf".into()
        } else {
            "inf".into()
        };
    }
    // Every double's decimal expansion ends within 1074 places.
    let exact = format!("{:.1100}", x.abs());
    let (int_part, frac) = exact.split_once('.').unwrap_or((&exact, ""));
    let mut digits: Vec<u8> = int_part.bytes().chain(frac.bytes().take(6)).collect();
    let rest = &frac.as_bytes()[6.min(frac.len())..];
    let round_up = match rest.first() {
        Some(b'5') => {
            rest[1..].iter().any(|&c| c != b'0')
                || digits.last().is_some_and(|d| (d - b'0') % 2 == 1)
        }
        Some(&c) => c > b'5',
        None => false,
    };
    if round_up {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, b'1');
                break;
            }
            i -= 1;
            if digits[i] == b'9' {
                digits[i] = b'0';
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let split = digits.len() - 6;
    let sign = if x.is_sign_negative() { "-" } else { "" };
    format!(
        "{sign}{}.{}",
        String::from_utf8_lossy(&digits[..split]),
        String::from_utf8_lossy(&digits[split..])
    )
}

/// `getDoubleFromObjectOrReply` with the given message (Redis's default
/// one when None).
fn arg_double(a: &[u8], msg: Option<&'static str>) -> Result<f64, CmdError> {
    parse_score(a).ok_or_else(|| match msg {
        Some(m) => CmdError::new(m),
        None => CmdError::not_float(),
    })
}

/// `extractLongLatOrReply`.
fn arg_lonlat(args: &[Bytes]) -> Result<[f64; 2], CmdError> {
    let x = arg_double(&args[0], None)?;
    let y = arg_double(&args[1], None)?;
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&x)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&y)
    {
        return Err(CmdError::new(format!(
            "ERR invalid longitude,latitude pair {},{}",
            c_fixed6(x),
            c_fixed6(y)
        )));
    }
    Ok([x, y])
}

/// `extractUnitOrReply`: the unit's size in meters.
fn arg_unit(a: &[u8]) -> Result<f64, CmdError> {
    if is_opt(a, "m") {
        Ok(1.0)
    } else if is_opt(a, "km") {
        Ok(1000.0)
    } else if is_opt(a, "ft") {
        Ok(0.3048)
    } else if is_opt(a, "mi") {
        Ok(1609.34)
    } else {
        Err(CmdError::new(
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        ))
    }
}

/// `extractDistanceOrReply`: (radius, conversion).
fn arg_distance(args: &[Bytes]) -> Result<(f64, f64), CmdError> {
    let d = arg_double(&args[0], Some("ERR need numeric radius"))?;
    if d < 0.0 {
        return Err(CmdError::new("ERR radius cannot be negative"));
    }
    Ok((d, arg_unit(&args[1])?))
}

/// `extractBoxOrReply`: (width, height, conversion).
fn arg_box(args: &[Bytes]) -> Result<(f64, f64, f64), CmdError> {
    let w = arg_double(&args[0], Some("ERR need numeric width"))?;
    let h = arg_double(&args[1], Some("ERR need numeric height"))?;
    if h < 0.0 || w < 0.0 {
        return Err(CmdError::new("ERR height or width cannot be negative"));
    }
    Ok((w, h, arg_unit(&args[2])?))
}

// ---- reply helpers ----

/// `addReplyDoubleDistance`: `fixedpoint_d2string(d, 4)`, a bulk string.
fn reply_distance(out: &mut Out, d: f64) {
    out.bulk(format_distance(d).as_bytes());
}

fn format_distance(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".into();
    }
    // llrint: round half to even; out of range and NaN give LLONG_MIN.
    let scaled = (d * 10000.0).round_ties_even();
    let svalue = geohash::double_to_i64(scaled);
    let value = svalue.unsigned_abs();
    let sign = if svalue < 0 { "-" } else { "" };
    format!("{sign}{}.{:04}", value / 10000, value % 10000)
}

/// A double widened to `long double` (exact).
fn ld_of(x: f64) -> Ld {
    if x.is_infinite() {
        return Ld::Inf { neg: x < 0.0 };
    }
    let bits = x.to_bits();
    let neg = bits >> 63 == 1;
    let e = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1 << 52) - 1);
    let (mant, exp) = if e == 0 {
        (frac, -1074)
    } else {
        (frac | (1 << 52), e - 1075)
    };
    Ld::Finite { neg, mant, exp }
}

/// `addReplyHumanLongDouble`: `%.17Lf` trimmed, a bulk string in RESP2
/// and a double in RESP3.
fn reply_coord(out: &mut Out, x: f64) {
    let s = ldouble::format_human(ld_of(x));
    if out.resp3 {
        out.raw(format!(",{s}\r\n").as_bytes());
    } else {
        out.bulk(s.as_bytes());
    }
}

// ---- GEOADD ----

/// GEOADD key [NX | XX] [CH] longitude latitude member [...]
///
/// Validated as Redis does, then run as ZADD with the encoded scores.
fn geoadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (mut xx, mut nx) = (false, false);
    let mut longidx = 2;
    while longidx < args.len() {
        let a = &args[longidx];
        if is_opt(a, "nx") {
            nx = true;
        } else if is_opt(a, "xx") {
            xx = true;
        } else if !is_opt(a, "ch") {
            break;
        }
        longidx += 1;
    }
    if !(args.len() - longidx).is_multiple_of(3) || (xx && nx) {
        return Err(CmdError::syntax());
    }
    let elements = (args.len() - longidx) / 3;
    let mut zargs: Vec<Bytes> = Vec::with_capacity(longidx + elements * 2);
    zargs.push(Bytes::from_static(b"zadd"));
    zargs.extend_from_slice(&args[1..longidx]);
    for i in 0..elements {
        let at = longidx + i * 3;
        let [x, y] = arg_lonlat(&args[at..at + 2])?;
        let score = geohash::score_of(x, y).unwrap_or(0);
        let mut b = itoa::Buffer::new();
        zargs.push(Bytes::copy_from_slice(b.format(score).as_bytes()));
        zargs.push(args[at + 2].clone());
    }
    zsets::zadd(ctx, &zargs)
}

// ---- GEODIST, GEOHASH, GEOPOS ----

/// GEODIST key member1 member2 [M | KM | FT | MI]
fn geodist(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let to_meter = match args.len() {
        5 => arg_unit(&args[4])?,
        n if n > 5 => return Err(CmdError::syntax()),
        _ => 1.0,
    };
    let r = reader(ctx);
    let Some(z) = read_typed(ctx.ks, r, &args[1], as_zset)? else {
        ctx.out.null();
        return Ok(());
    };
    let (Some(s1), Some(s2)) = (z.score(&args[2]), z.score(&args[3])) else {
        ctx.out.null();
        return Ok(());
    };
    match (geohash::decode_score(s1), geohash::decode_score(s2)) {
        (Some(a), Some(b)) => reply_distance(
            ctx.out,
            geohash::distance(a[0], a[1], b[0], b[1]) / to_meter,
        ),
        _ => ctx.out.null(),
    }
    Ok(())
}

/// GEOHASH key [member ...]
fn geohash_cmd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = reader(ctx);
    let z = read_typed(ctx.ks, r, &args[1], as_zset)?;
    ctx.out.array(args.len() - 2);
    for m in &args[2..] {
        match z
            .as_ref()
            .and_then(|z| z.score(m))
            .and_then(geohash::decode_score)
        {
            Some(xy) => ctx.out.bulk(&geohash::standard_geohash(xy)),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// GEOPOS key [member ...]
fn geopos(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = reader(ctx);
    let z = read_typed(ctx.ks, r, &args[1], as_zset)?;
    ctx.out.array(args.len() - 2);
    for m in &args[2..] {
        match z
            .as_ref()
            .and_then(|z| z.score(m))
            .and_then(geohash::decode_score)
        {
            Some([x, y]) => {
                ctx.out.array(2);
                reply_coord(ctx.out, x);
                reply_coord(ctx.out, y);
            }
            None => ctx.out.null_array(),
        }
    }
    Ok(())
}

// ---- searches ----

/// Which command runs `search` (Redis's `RADIUS_*` / `GEOSEARCH*` flags).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Radius { member: bool, nostore: bool },
    Search { store: bool },
}

fn georadius(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    search(
        ctx,
        args,
        Kind::Radius {
            member: false,
            nostore: false,
        },
    )
}

fn georadius_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    search(
        ctx,
        args,
        Kind::Radius {
            member: false,
            nostore: true,
        },
    )
}

fn georadiusbymember(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    search(
        ctx,
        args,
        Kind::Radius {
            member: true,
            nostore: false,
        },
    )
}

fn georadiusbymember_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    search(
        ctx,
        args,
        Kind::Radius {
            member: true,
            nostore: true,
        },
    )
}

fn geosearch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    search(ctx, args, Kind::Search { store: false })
}

fn geosearchstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    search(ctx, args, Kind::Search { store: true })
}

/// A point found (Redis's `geoPoint`).
#[derive(Clone)]
struct Point {
    lon: f64,
    lat: f64,
    dist: f64,
    score: f64,
    member: Bytes,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// `sort_gp_asc`.
fn cmp_asc(a: &Point, b: &Point) -> Ordering {
    if a.dist > b.dist {
        Ordering::Greater
    } else if a.dist == b.dist {
        Ordering::Equal
    } else {
        Ordering::Less
    }
}

fn cmp_desc(a: &Point, b: &Point) -> Ordering {
    cmp_asc(a, b).reverse()
}

/// `geoGetPointsInRange` over one box's score interval `[min, max)`,
/// stopping once `limit` points (when non-zero) were collected in all.
fn points_in_range(
    z: &ZSet,
    min: f64,
    max: f64,
    shape: &Shape,
    out: &mut Vec<Point>,
    limit: usize,
) {
    let start = z.count_before(|s, _| s < min);
    for (m, score) in z.iter_from(start, false) {
        if score >= max {
            break;
        }
        if let Some(([lon, lat], dist)) = geohash::within(shape, score) {
            out.push(Point {
                lon,
                lat,
                dist,
                score,
                member: Bytes::copy_from_slice(m),
            });
        }
        if !out.is_empty() && limit != 0 && out.len() >= limit {
            break;
        }
    }
}

/// `membersOfAllNeighbors`: the 9 boxes in order, a box equal to the last
/// one scanned skipped (never compared with the centre, as in Redis).
fn members_of_all_neighbors(z: &ZSet, shape: &Shape, limit: usize) -> Vec<Point> {
    let boxes = geohash::areas_by_shape(shape);
    let mut out = Vec::new();
    let mut last_processed = 0;
    for (i, b) in boxes.iter().enumerate() {
        if b.is_zero() {
            continue;
        }
        if last_processed != 0 && *b == boxes[last_processed] {
            continue;
        }
        if !out.is_empty() && limit != 0 && out.len() >= limit {
            break;
        }
        let (min, max) = geohash::box_scores(*b);
        points_in_range(z, min, max, shape, &mut out, limit);
        last_processed = i;
    }
    out
}

/// Redis's `georadiusGeneric`, step by step (the order of the checks
/// decides which error a client sees).
fn search(ctx: &mut Ctx, args: &[Bytes], kind: Kind) -> CmdResult {
    let src_idx = if kind == (Kind::Search { store: true }) {
        2
    } else {
        1
    };
    let r = reader(ctx);
    // Only the source's existence and type matter until the scan, which
    // looks it up again.
    let mut shape = Shape {
        xy: [0.0, 0.0],
        conversion: 0.0,
        kind: ShapeKind::Radius(0.0),
    };
    let mut storekey: Option<Bytes> = None;
    let base_args;
    let exists;
    {
        let z = read_typed(ctx.ks, r, &args[src_idx], as_zset)?;
        exists = z.is_some();
        match kind {
            Kind::Radius { member: false, .. } => {
                base_args = 6;
                shape.xy = arg_lonlat(&args[2..4])?;
                let (radius, conv) = arg_distance(&args[4..6])?;
                shape.kind = ShapeKind::Radius(radius);
                shape.conversion = conv;
            }
            Kind::Radius { member: true, .. } => {
                base_args = 5;
                if let Some(z) = z {
                    shape.xy = z
                        .score(&args[2])
                        .and_then(geohash::decode_score)
                        .ok_or_else(|| {
                            CmdError::new("ERR could not decode requested zset member")
                        })?;
                    let (radius, conv) = arg_distance(&args[3..5])?;
                    shape.kind = ShapeKind::Radius(radius);
                    shape.conversion = conv;
                }
            }
            Kind::Search { store } => {
                base_args = if store { 3 } else { 2 };
                if store {
                    storekey = Some(args[1].clone());
                }
            }
        }
    }
    let is_search = matches!(kind, Kind::Search { .. });
    let is_searchstore = kind == (Kind::Search { store: true });
    let nostore = matches!(kind, Kind::Radius { nostore: true, .. });
    let (mut withdist, mut withhash, mut withcoords) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut any = false;
    let mut count: i64 = 0;
    let mut storedist = false;
    let remaining = args.len().saturating_sub(base_args);
    let mut i = 0;
    while i < remaining {
        let arg = &args[base_args + i];
        let next = |k: usize| &args[base_args + i + k];
        if is_opt(arg, "withdist") {
            withdist = true;
        } else if is_opt(arg, "withhash") {
            withhash = true;
        } else if is_opt(arg, "withcoord") {
            withcoords = true;
        } else if is_opt(arg, "any") {
            any = true;
        } else if is_opt(arg, "asc") {
            sort = Sort::Asc;
        } else if is_opt(arg, "desc") {
            sort = Sort::Desc;
        } else if is_opt(arg, "count") && i + 1 < remaining {
            count = super::arg_i64(next(1))?;
            if count <= 0 {
                return Err(CmdError::new("ERR COUNT must be > 0"));
            }
            i += 1;
        } else if is_opt(arg, "store") && i + 1 < remaining && !nostore && !is_search {
            storekey = Some(next(1).clone());
            storedist = false;
            i += 1;
        } else if is_opt(arg, "storedist") && i + 1 < remaining && !nostore && !is_search {
            storekey = Some(next(1).clone());
            storedist = true;
            i += 1;
        } else if is_opt(arg, "storedist") && is_searchstore {
            storedist = true;
        } else if is_opt(arg, "frommember") && i + 1 < remaining && is_search && !fromloc {
            if exists {
                let z = read_typed(ctx.ks, r, &args[src_idx], as_zset)?;
                shape.xy = z
                    .and_then(|z| z.score(next(1)))
                    .and_then(geohash::decode_score)
                    .ok_or_else(|| CmdError::new("ERR could not decode requested zset member"))?;
            }
            frommember = true;
            i += 1;
        } else if is_opt(arg, "fromlonlat") && i + 2 < remaining && is_search && !frommember {
            shape.xy = arg_lonlat(&args[base_args + i + 1..base_args + i + 3])?;
            fromloc = true;
            i += 2;
        } else if is_opt(arg, "byradius") && i + 2 < remaining && is_search && !bybox {
            let (radius, conv) = arg_distance(&args[base_args + i + 1..base_args + i + 3])?;
            shape.kind = ShapeKind::Radius(radius);
            shape.conversion = conv;
            byradius = true;
            i += 2;
        } else if is_opt(arg, "bybox") && i + 3 < remaining && is_search && !byradius {
            let (width, height, conv) = arg_box(&args[base_args + i + 1..base_args + i + 4])?;
            shape.kind = ShapeKind::Box { width, height };
            shape.conversion = conv;
            bybox = true;
            i += 3;
        } else {
            return Err(CmdError::syntax());
        }
        i += 1;
    }
    if storekey.is_some() && (withdist || withhash || withcoords) {
        return Err(CmdError::new(format!(
            "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if is_searchstore {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        )));
    }
    if is_search && !(frommember || fromloc) {
        return Err(CmdError::new(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {}",
            c_str_lossy(&args[0])
        )));
    }
    if is_search && !(byradius || bybox) {
        return Err(CmdError::new(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {}",
            c_str_lossy(&args[0])
        )));
    }
    if any && count == 0 {
        return Err(CmdError::new(
            "ERR the ANY argument requires COUNT argument",
        ));
    }
    if !exists {
        match storekey {
            Some(dst) => zsets::store(ctx, r, &dst, ZSet::new_skiplist(), ""),
            None => ctx.out.array(0),
        }
        return Ok(());
    }
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let limit = if any { count as usize } else { 0 };
    let mut ga = match read_typed(ctx.ks, r, &args[src_idx], as_zset)? {
        Some(z) => members_of_all_neighbors(z, &shape, limit),
        None => Vec::new(),
    };
    if ga.is_empty() && storekey.is_none() {
        ctx.out.array(0);
        return Ok(());
    }
    let result_length = ga.len();
    let returned_items = if count == 0 || (result_length as u64) < count as u64 {
        result_length
    } else {
        count as usize
    };
    if sort != Sort::None {
        let cmp = if sort == Sort::Asc { cmp_asc } else { cmp_desc };
        if returned_items == result_length {
            sort::msort(&mut ga, &cmp);
        } else {
            sort::pqsort(&mut ga, &cmp, 0, returned_items - 1);
        }
    }
    ga.truncate(returned_items);
    for gp in &mut ga {
        gp.dist /= shape.conversion;
    }
    match storekey {
        None => {
            let option_length =
                usize::from(withdist) + usize::from(withcoords) + usize::from(withhash);
            let out = &mut *ctx.out;
            out.array(returned_items);
            for gp in &ga {
                if option_length > 0 {
                    out.array(option_length + 1);
                }
                out.bulk(&gp.member);
                if withdist {
                    reply_distance(out, gp.dist);
                }
                if withhash {
                    out.int(geohash::double_to_i64(gp.score));
                }
                if withcoords {
                    out.array(2);
                    reply_coord(out, gp.lon);
                    reply_coord(out, gp.lat);
                }
            }
        }
        Some(dst) => {
            let limits = ctx.shared.config.read().zset_limits;
            let mut z = ZSet::new_skiplist();
            for gp in ga {
                let score = if storedist { gp.dist } else { gp.score };
                z.set_score(gp.member, score, limits);
            }
            z.shrink_if_small(limits);
            let event = if is_search {
                "geosearchstore"
            } else {
                "georadiusstore"
            };
            zsets::store(ctx, r, &dst, z, event);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printf_f_rounds_half_to_even() {
        assert_eq!(c_fixed6(1.0078125), "1.007812");
        assert_eq!(c_fixed6(1.0078135), "1.007813");
        assert_eq!(c_fixed6(200.0), "200.000000");
        assert_eq!(c_fixed6(-0.0000004), "-0.000000");
        assert_eq!(c_fixed6(9.9999995), "9.999999");
        assert_eq!(c_fixed6(9.99999951), "10.000000");
        assert_eq!(c_fixed6(1e300).len(), 301 + 7);
    }

    #[test]
    fn distances_as_fixedpoint_d2string() {
        assert_eq!(format_distance(0.0), "0.0000");
        assert_eq!(format_distance(0.77505), "0.7750");
        assert_eq!(format_distance(6.064_295_159_839_17e-5), "0.0001");
        assert_eq!(format_distance(166274.15156960033), "166274.1516");
        assert_eq!(format_distance(f64::NAN), "-922337203685477.5808");
    }

    #[test]
    fn coordinates_as_redis_prints_them() {
        assert_eq!(
            ldouble::format_human(ld_of(13.361389338970184)),
            "13.36138933897018433"
        );
        assert_eq!(ldouble::format_human(ld_of(-0.0)), "0");
        assert_eq!(ldouble::format_human(ld_of(5e-324)), "0");
    }
}
