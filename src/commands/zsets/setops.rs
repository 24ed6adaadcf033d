//! ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD, after Redis's
//! `zunionInterDiffGenericCommand`: inputs are read (and type-checked)
//! before the options are parsed; union and intersection visit the inputs
//! from the smallest to the largest, which decides the order in which SUM
//! adds scores; `inf + -inf` and `0 * inf` count as 0. Plain sets are
//! accepted as inputs, every member scoring 1.

use super::range::store;
use super::{arg_positive, limits, parse_score, rd, reply_elem, reply_len};
use crate::commands::{arg_i64, is_opt, CmdError, CmdResult, Ctx};
use crate::db::zset::{cmp_elem, ZSet};
use crate::db::Value;
use bytes::Bytes;
use std::collections::HashMap;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Redis's `zunionInterAggregate`.
fn aggregate(target: &mut f64, val: f64, agg: Aggregate) {
    match agg {
        Aggregate::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

/// ZUNION numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
pub(super) fn zunion(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, None, 1, Op::Union, false)
}

/// ZINTER numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]
pub(super) fn zinter(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, None, 1, Op::Inter, false)
}

/// ZDIFF numkeys key [key ...] [WITHSCORES]
pub(super) fn zdiff(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, None, 1, Op::Diff, false)
}

/// ZINTERCARD numkeys key [key ...] [LIMIT limit]
pub(super) fn zintercard(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, None, 1, Op::Inter, true)
}

/// ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX]
pub(super) fn zunionstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, Some(&args[1]), 2, Op::Union, false)
}

/// ZINTERSTORE destination numkeys key [key ...] [WEIGHTS weight [weight ...]] [AGGREGATE SUM|MIN|MAX]
pub(super) fn zinterstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, Some(&args[1]), 2, Op::Inter, false)
}

/// ZDIFFSTORE destination numkeys key [key ...]
pub(super) fn zdiffstore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    generic(ctx, args, Some(&args[1]), 2, Op::Diff, false)
}

/// A plain set as an input: every member with score 1, as Redis's
/// `zuiNext` reads sets.
fn set_as_zset(set: &crate::db::set::Set, lim: crate::db::zset::ZsetLimits) -> ZSet {
    let members: Vec<Bytes> = set.iter().map(|m| m.to_bytes()).collect();
    let maxlen = members.iter().map(|m| m.len()).max().unwrap_or(0);
    let mut z = ZSet::with_hint(members.len(), maxlen, lim);
    for m in members {
        z.insert_new(m, 1.0, lim);
    }
    z
}

/// One input: its elements (None for a missing key) and weight.
struct Src {
    set: Option<ZSet>,
    weight: f64,
}

impl Src {
    fn len(&self) -> usize {
        self.set.as_ref().map_or(0, |z| z.len())
    }
}

fn generic(
    ctx: &mut Ctx,
    args: &[Bytes],
    dst: Option<&Bytes>,
    numkeys_idx: usize,
    op: Op,
    card_only: bool,
) -> CmdResult {
    let full_name = match (op, dst.is_some(), card_only) {
        (_, _, true) => "zintercard",
        (Op::Union, false, _) => "zunion",
        (Op::Inter, false, _) => "zinter",
        (Op::Diff, false, _) => "zdiff",
        (Op::Union, true, _) => "zunionstore",
        (Op::Inter, true, _) => "zinterstore",
        (Op::Diff, true, _) => "zdiffstore",
    };
    let setnum = arg_i64(&args[numkeys_idx])?;
    if setnum < 1 {
        return Err(CmdError::new(format!(
            "ERR at least 1 input key is needed for '{full_name}' command"
        )));
    }
    if setnum > (args.len() - (numkeys_idx + 1)) as i64 {
        return Err(CmdError::syntax());
    }
    let setnum = setnum as usize;
    let r = rd(ctx);
    let lim = limits(ctx);
    let mut srcs: Vec<Src> = Vec::with_capacity(setnum);
    for k in &args[numkeys_idx + 1..numkeys_idx + 1 + setnum] {
        // Inputs are copied: a key may appear twice, and the destination
        // may be one of them.
        let set = match ctx.ks.lookup(r.db, k, r.now_ms, r.touch) {
            None => None,
            Some(e) => match &e.value {
                Value::ZSet(z) => Some(z.clone()),
                Value::Set(set) => Some(set_as_zset(set, lim)),
                _ => return Err(CmdError::wrong_type()),
            },
        };
        srcs.push(Src { set, weight: 1.0 });
    }
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut limit: i64 = 0;
    let mut j = numkeys_idx + 1 + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        if op != Op::Diff && !card_only && remaining > setnum && is_opt(a, "weights") {
            j += 1;
            for s in srcs.iter_mut() {
                s.weight = parse_score(&args[j])
                    .ok_or_else(|| CmdError::new("ERR weight value is not a float"))?;
                j += 1;
            }
        } else if op != Op::Diff && !card_only && remaining >= 2 && is_opt(a, "aggregate") {
            let v = &args[j + 1];
            agg = if is_opt(v, "sum") {
                Aggregate::Sum
            } else if is_opt(v, "min") {
                Aggregate::Min
            } else if is_opt(v, "max") {
                Aggregate::Max
            } else {
                return Err(CmdError::syntax());
            };
            j += 2;
        } else if dst.is_none() && !card_only && is_opt(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && is_opt(a, "limit") {
            limit = arg_positive(&args[j + 1], "ERR LIMIT can't be negative")?;
            j += 2;
        } else {
            return Err(CmdError::syntax());
        }
    }
    if op != Op::Diff {
        srcs.sort_by_key(Src::len);
    }
    let mut result: Vec<(Bytes, f64)> = Vec::new();
    let mut cardinality: i64 = 0;
    match op {
        Op::Inter => {
            if let Some(first) = srcs[0].set.as_ref().filter(|z| !z.is_empty()) {
                'outer: for (m, s) in first.iter_from(0, false) {
                    let mut score = srcs[0].weight * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    for other in &srcs[1..] {
                        match other.set.as_ref().and_then(|z| z.score(m)) {
                            Some(v) => aggregate(&mut score, v * other.weight, agg),
                            None => continue 'outer,
                        }
                    }
                    if card_only {
                        cardinality += 1;
                        if limit != 0 && cardinality >= limit {
                            break;
                        }
                    } else {
                        result.push((Bytes::copy_from_slice(m), score));
                    }
                }
            }
        }
        Op::Union => {
            let mut acc: HashMap<Bytes, f64> = HashMap::new();
            let mut order: Vec<Bytes> = Vec::new();
            for src in &srcs {
                let Some(z) = src.set.as_ref() else { continue };
                for (m, s) in z.iter_from(0, false) {
                    let mut score = src.weight * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match acc.get_mut(m) {
                        Some(t) => aggregate(t, score, agg),
                        None => {
                            let m = Bytes::copy_from_slice(m);
                            acc.insert(m.clone(), score);
                            order.push(m);
                        }
                    }
                }
            }
            result = order
                .into_iter()
                .map(|m| {
                    let s = acc.get(&m).copied().unwrap_or(0.0);
                    (m, s)
                })
                .collect();
        }
        Op::Diff => {
            if let Some(first) = srcs[0].set.as_ref() {
                for (m, s) in first.iter_from(0, false) {
                    let elsewhere = srcs[1..]
                        .iter()
                        .any(|o| o.set.as_ref().is_some_and(|z| z.score(m).is_some()));
                    if !elsewhere {
                        result.push((Bytes::copy_from_slice(m), s));
                    }
                }
            }
        }
    }
    if card_only {
        ctx.out.int(cardinality);
        return Ok(());
    }
    result.sort_by(|a, b| cmp_elem(a.1, &a.0, b.1, &b.0));
    if let Some(dst) = dst {
        let limits = limits(ctx);
        let maxlen = result.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
        let mut z = ZSet::with_hint(result.len(), maxlen, limits);
        for (m, s) in result {
            z.insert_new(m, s, limits);
        }
        store(ctx, r, dst, z, full_name);
        return Ok(());
    }
    let out = &mut *ctx.out;
    let nested = out.resp3;
    reply_len(out, result.len(), withscores);
    for (m, s) in &result {
        reply_elem(out, m, *s, withscores, nested);
    }
    Ok(())
}
