//! Range queries (ZRANGE and its older forms, ZRANGESTORE, ZCOUNT,
//! ZLEXCOUNT) and range removals (ZREMRANGEBY*), after Redis's
//! `zrangeGenericCommand` and `zremrangeGenericCommand`.
//!
//! Every range becomes a pair of ascending ranks `[start, end)` computed in
//! O(log n) by `ZSet::count_before`; LIMIT, reverse order and counts are
//! arithmetic on those ranks.

use super::{
    limits, parse_score_bound, rd, read_zset, removed, reply_elem, reply_len, write_zset, Rd,
};
use crate::commands::{arg_i64, is_opt, CmdError, CmdResult, Ctx};
use crate::db::notify;
use crate::db::zset::ZSet;
use crate::db::Value;
use bytes::Bytes;

/// A score interval (Redis's `zrangespec`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScoreRange {
    pub min: f64,
    pub minex: bool,
    pub max: f64,
    pub maxex: bool,
}

impl ScoreRange {
    /// `zslParseRange`; the error text is the caller's.
    pub fn parse(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
        let (min, minex) = parse_score_bound(min)?;
        let (max, maxex) = parse_score_bound(max)?;
        Some(ScoreRange {
            min,
            minex,
            max,
            maxex,
        })
    }

    /// Ascending ranks `[start, end)` of the elements inside.
    pub fn ranks(&self, z: &ZSet) -> (usize, usize) {
        let r = *self;
        let start = z.count_before(|s, _| if r.minex { s <= r.min } else { s < r.min });
        let end = z.count_before(|s, _| if r.maxex { s < r.max } else { s <= r.max });
        (start, end.max(start))
    }
}

/// One end of a lex range (`zslParseLexRangeItem`).
#[derive(Clone, Debug)]
enum LexItem {
    /// `-`
    Min,
    /// `+`
    Max,
    Incl(Bytes),
    Excl(Bytes),
}

impl LexItem {
    fn parse(a: &Bytes) -> Option<LexItem> {
        // `+` and `-` are compared as C strings: "+\0junk" is `+`.
        match a.first()? {
            b'+' if a.get(1).is_none_or(|c| *c == 0) => Some(LexItem::Max),
            b'-' if a.get(1).is_none_or(|c| *c == 0) => Some(LexItem::Min),
            b'(' => Some(LexItem::Excl(a.slice(1..))),
            b'[' => Some(LexItem::Incl(a.slice(1..))),
            _ => None,
        }
    }
}

/// A lex interval (Redis's `zlexrangespec`).
#[derive(Clone, Debug)]
pub(crate) struct LexRange {
    min: LexItem,
    max: LexItem,
}

impl LexRange {
    pub fn parse(min: &Bytes, max: &Bytes) -> Option<LexRange> {
        Some(LexRange {
            min: LexItem::parse(min)?,
            max: LexItem::parse(max)?,
        })
    }

    /// Redis's `zslLexValueGteMin`.
    fn gte_min(&self, m: &[u8]) -> bool {
        match &self.min {
            LexItem::Min => true,
            LexItem::Max => false,
            LexItem::Incl(x) => m >= x.as_ref(),
            LexItem::Excl(x) => m > x.as_ref(),
        }
    }

    /// Redis's `zslLexValueLteMax`.
    fn lte_max(&self, m: &[u8]) -> bool {
        match &self.max {
            LexItem::Max => true,
            LexItem::Min => false,
            LexItem::Incl(x) => m <= x.as_ref(),
            LexItem::Excl(x) => m < x.as_ref(),
        }
    }

    /// No string can be inside (the `sdscmplex` test of `zzlIsInLexRange`;
    /// `-` and `+` count as exclusive).
    fn is_empty(&self) -> bool {
        use LexItem::*;
        match (&self.min, &self.max) {
            (Min, Min) | (Max, _) | (_, Min) => true,
            (Min, _) | (_, Max) => false,
            (Incl(a) | Excl(a), Incl(b) | Excl(b)) => match a.cmp(b) {
                std::cmp::Ordering::Greater => true,
                std::cmp::Ordering::Equal => {
                    matches!(self.min, Excl(_)) || matches!(self.max, Excl(_))
                }
                std::cmp::Ordering::Less => false,
            },
        }
    }

    /// The elements a lex range selects, as ascending ranks `[start, end)`,
    /// after skipping `offset` of them (LIMIT's count not applied).
    ///
    /// A listpack is walked as Redis walks it (`zzlIsInLexRange`, then
    /// `zzlFirstInLexRange` and forward while `<= max`, or
    /// `zzlLastInLexRange` and backward while `>= min`, offset skipped
    /// unchecked), so even elements of differing scores, where Redis
    /// documents the result as unspecified, come out as Redis's. A skiplist
    /// is binary-searched: with differing scores Redis's own answer depends
    /// on its random node levels.
    pub fn select(&self, z: &ZSet, rev: bool, offset: usize) -> (usize, usize) {
        if z.is_skiplist() {
            return skip_offset(self.ranks(z), rev, offset);
        }
        let ms: Vec<&[u8]> = z.iter_from(0, false).map(|(m, _)| m).collect();
        let (Some(first), Some(last)) = (ms.first(), ms.last()) else {
            return (0, 0);
        };
        if self.is_empty() || !self.gte_min(last) || !self.lte_max(first) {
            return (0, 0);
        }
        let n = ms.len();
        if rev {
            let Some(hi) = (0..n).rev().find(|&i| self.lte_max(ms[i])) else {
                return (0, 0);
            };
            if !self.gte_min(ms[hi]) || offset > hi {
                return (0, 0);
            }
            let hi = hi - offset;
            let lo = (0..=hi)
                .rev()
                .find(|&i| !self.gte_min(ms[i]))
                .map_or(0, |i| i + 1);
            (lo, hi + 1)
        } else {
            let Some(lo) = (0..n).find(|&i| self.gte_min(ms[i])) else {
                return (0, 0);
            };
            if !self.lte_max(ms[lo]) {
                return (0, 0);
            }
            let lo = (lo + offset).min(n);
            let hi = (lo..n).find(|&i| !self.lte_max(ms[i])).unwrap_or(n);
            (lo, hi)
        }
    }

    /// Ascending ranks `[start, end)` by binary search; exact when all
    /// scores are equal, as Redis documents (see `select`).
    pub fn ranks(&self, z: &ZSet) -> (usize, usize) {
        let start = z.count_before(|_, m| !self.gte_min(m));
        let end = z.count_before(|_, m| self.lte_max(m));
        (start, end.max(start))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Auto,
    Rank,
    Score,
    Lex,
}

/// Which command shape is being run (fixed parts of `zrangeGenericCommand`).
#[derive(Clone, Copy)]
struct Shape {
    kind: Kind,
    /// Some(rev) when the command fixes the direction.
    rev: Option<bool>,
    /// Destination key index for ZRANGESTORE.
    store: bool,
}

/// ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]
pub(super) fn zrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(
        ctx,
        args,
        1,
        Shape {
            kind: Kind::Auto,
            rev: None,
            store: false,
        },
    )
}

/// ZREVRANGE key start stop [WITHSCORES]
pub(super) fn zrevrange(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(
        ctx,
        args,
        1,
        Shape {
            kind: Kind::Rank,
            rev: Some(true),
            store: false,
        },
    )
}

/// ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]
pub(super) fn zrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(
        ctx,
        args,
        1,
        Shape {
            kind: Kind::Score,
            rev: Some(false),
            store: false,
        },
    )
}

/// ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]
pub(super) fn zrevrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(
        ctx,
        args,
        1,
        Shape {
            kind: Kind::Score,
            rev: Some(true),
            store: false,
        },
    )
}

/// ZRANGEBYLEX key min max [LIMIT offset count]
pub(super) fn zrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(
        ctx,
        args,
        1,
        Shape {
            kind: Kind::Lex,
            rev: Some(false),
            store: false,
        },
    )
}

/// ZREVRANGEBYLEX key max min [LIMIT offset count]
pub(super) fn zrevrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(
        ctx,
        args,
        1,
        Shape {
            kind: Kind::Lex,
            rev: Some(true),
            store: false,
        },
    )
}

/// ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]
pub(super) fn zrangestore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    range_generic(
        ctx,
        args,
        2,
        Shape {
            kind: Kind::Auto,
            rev: None,
            store: true,
        },
    )
}

/// The parsed range of any kind.
enum Spec {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

/// Redis's `zrangeGenericCommand`: options, conflicts, range parsing, then
/// the lookup; `first` is the index of the source key.
fn range_generic(ctx: &mut Ctx, args: &[Bytes], first: usize, shape: Shape) -> CmdResult {
    let mut kind = shape.kind;
    let mut rev = shape.rev;
    let mut withscores = false;
    let mut offset: i64 = 0;
    let mut limit: i64 = -1;
    let mut j = first + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if !shape.store && is_opt(a, "withscores") {
            withscores = true;
        } else if is_opt(a, "limit") && left >= 2 {
            offset = arg_i64(&args[j + 1])?;
            limit = arg_i64(&args[j + 2])?;
            j += 2;
        } else if shape.rev.is_none() && rev.is_none() && is_opt(a, "rev") {
            rev = Some(true);
        } else if kind == Kind::Auto && is_opt(a, "bylex") {
            kind = Kind::Lex;
        } else if kind == Kind::Auto && is_opt(a, "byscore") {
            kind = Kind::Score;
        } else {
            return Err(CmdError::syntax());
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if kind == Kind::Auto {
        kind = Kind::Rank;
    }
    if limit != -1 && kind == Kind::Rank {
        return Err(CmdError::new(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && kind == Kind::Lex {
        return Err(CmdError::new(
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    let (mut minidx, mut maxidx) = (first + 1, first + 2);
    if rev && kind != Kind::Rank {
        std::mem::swap(&mut minidx, &mut maxidx);
    }
    let spec = match kind {
        Kind::Rank | Kind::Auto => Spec::Rank(arg_i64(&args[minidx])?, arg_i64(&args[maxidx])?),
        Kind::Score => Spec::Score(
            ScoreRange::parse(&args[minidx], &args[maxidx])
                .ok_or_else(|| CmdError::new("ERR min or max is not a float"))?,
        ),
        Kind::Lex => Spec::Lex(
            LexRange::parse(&args[minidx], &args[maxidx])
                .ok_or_else(|| CmdError::new("ERR min or max not valid string range item"))?,
        ),
    };
    let r = rd(ctx);
    let items: Vec<(Bytes, f64)> = match read_zset(ctx.ks, r, &args[first])? {
        None => Vec::new(),
        Some(z) => select(z, &spec, rev, offset, limit),
    };
    if shape.store {
        let limits = limits(ctx);
        let mut z = ZSet::with_hint(items.len(), 0, limits);
        for (m, s) in items {
            z.insert_new(m, s, limits);
        }
        store(ctx, r, &args[1], z, "zrangestore");
        return Ok(());
    }
    let out = &mut *ctx.out;
    let nested = out.resp3;
    reply_len(out, items.len(), withscores);
    for (m, s) in &items {
        reply_elem(out, m, *s, withscores, nested);
    }
    Ok(())
}

/// The elements a range selects, in reply order.
fn select(z: &ZSet, spec: &Spec, rev: bool, offset: i64, limit: i64) -> Vec<(Bytes, f64)> {
    let len = z.len() as i64;
    let take = |from: usize, n: usize, rev: bool| -> Vec<(Bytes, f64)> {
        z.iter_from(from, rev)
            .take(n)
            .map(|(m, s)| (Bytes::copy_from_slice(m), s))
            .collect()
    };
    match spec {
        Spec::Rank(start, end) => {
            let (mut start, mut end) = (*start, *end);
            if start < 0 {
                start += len;
            }
            if end < 0 {
                end += len;
            }
            if start < 0 {
                start = 0;
            }
            if start > end || start >= len {
                return Vec::new();
            }
            if end >= len {
                end = len - 1;
            }
            let n = (end - start + 1) as usize;
            if rev {
                take((len - 1 - start) as usize, n, true)
            } else {
                take(start as usize, n, false)
            }
        }
        Spec::Score(_) | Spec::Lex(_) => {
            if offset < 0 || (offset > 0 && offset >= len) {
                return Vec::new();
            }
            let offset = offset as usize;
            let (s, e) = match spec {
                Spec::Score(r) => skip_offset(r.ranks(z), rev, offset),
                Spec::Lex(r) => r.select(z, rev, offset),
                Spec::Rank(..) => (0, 0),
            };
            let n = if limit < 0 {
                e - s
            } else {
                (e - s).min(limit as usize)
            };
            if n == 0 {
                Vec::new()
            } else if rev {
                take(e - 1, n, true)
            } else {
                take(s, n, false)
            }
        }
    }
}

/// Ascending ranks `[start, end)` less the `offset` elements skipped from
/// the front, or from the back when `rev`.
fn skip_offset((s, e): (usize, usize), rev: bool, offset: usize) -> (usize, usize) {
    if e - s <= offset {
        (s, s)
    } else if rev {
        (s, e - offset)
    } else {
        (s + offset, e)
    }
}

/// Stores a freshly built result under `dst` (Redis's `setKey`, which
/// drops any TTL), or deletes `dst` when the result is empty; replies with
/// the size. The WAL gets the destination's final state.
pub(crate) fn store(ctx: &mut Ctx, r: Rd, dst: &Bytes, z: ZSet, event: &'static str) {
    let n = z.len();
    if n > 0 {
        let existed = ctx.ks.lookup_write(r.db, dst, r.now_ms).is_some();
        ctx.ks
            .set(r.db, Bytes::copy_from_slice(dst), Value::ZSet(z), 0);
        ctx.out.int(n as i64);
        if !existed {
            ctx.ks.notify(notify::NEW, "new", r.db, dst);
        }
        ctx.ks.notify(notify::ZSET, event, r.db, dst);
    } else {
        ctx.out.int(0);
        if ctx.ks.delete(r.db, dst, r.now_ms) {
            ctx.ks.notify(notify::GENERIC, "del", r.db, dst);
        }
    }
}

/// ZCOUNT key min max
pub(super) fn zcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = ScoreRange::parse(&args[2], &args[3])
        .ok_or_else(|| CmdError::new("ERR min or max is not a float"))?;
    let r = rd(ctx);
    let n = read_zset(ctx.ks, r, &args[1])?.map_or(0, |z| {
        let (s, e) = range.ranks(z);
        e - s
    });
    ctx.out.int(n as i64);
    Ok(())
}

/// ZLEXCOUNT key min max
pub(super) fn zlexcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = LexRange::parse(&args[2], &args[3])
        .ok_or_else(|| CmdError::new("ERR min or max not valid string range item"))?;
    let r = rd(ctx);
    let n = read_zset(ctx.ks, r, &args[1])?.map_or(0, |z| {
        let (s, e) = range.select(z, false, 0);
        e - s
    });
    ctx.out.int(n as i64);
    Ok(())
}

/// ZREMRANGEBYRANK key start stop
pub(super) fn zremrangebyrank(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let spec = Spec::Rank(arg_i64(&args[2])?, arg_i64(&args[3])?);
    remrange(ctx, args, spec, "zremrangebyrank")
}

/// ZREMRANGEBYSCORE key min max
pub(super) fn zremrangebyscore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = ScoreRange::parse(&args[2], &args[3])
        .ok_or_else(|| CmdError::new("ERR min or max is not a float"))?;
    remrange(ctx, args, Spec::Score(range), "zremrangebyscore")
}

/// ZREMRANGEBYLEX key min max
pub(super) fn zremrangebylex(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let range = LexRange::parse(&args[2], &args[3])
        .ok_or_else(|| CmdError::new("ERR min or max not valid string range item"))?;
    remrange(ctx, args, Spec::Lex(range), "zremrangebylex")
}

fn remrange(ctx: &mut Ctx, args: &[Bytes], spec: Spec, event: &'static str) -> CmdResult {
    let r = rd(ctx);
    let key = &args[1];
    let Some(z) = write_zset(ctx.ks, r, key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let len = z.len() as i64;
    let (s, e) = match &spec {
        Spec::Rank(start, end) => {
            let (mut start, mut end) = (*start, *end);
            if start < 0 {
                start += len;
            }
            if end < 0 {
                end += len;
            }
            if start < 0 {
                start = 0;
            }
            if start > end || start >= len {
                ctx.out.int(0);
                return Ok(());
            }
            if end >= len {
                end = len - 1;
            }
            (start as usize, end as usize + 1)
        }
        Spec::Score(range) => range.ranks(z),
        Spec::Lex(range) => range.select(z, false, 0),
    };
    let gone: Vec<Bytes> = z.remove_ranks(s, e).into_iter().map(|(m, _)| m).collect();
    let n = gone.len() as i64;
    if n > 0 {
        let deleted = removed(ctx.ks, r.db, key, gone);
        ctx.ks.notify(notify::ZSET, event, r.db, key);
        if deleted {
            ctx.ks.notify(notify::GENERIC, "del", r.db, key);
        }
    }
    ctx.out.int(n);
    Ok(())
}
