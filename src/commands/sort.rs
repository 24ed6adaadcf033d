//! SORT and SORT_RO (Redis's sort.c): lists, sets and sorted sets sorted
//! numerically or with ALPHA, BY patterns (`nosort` or any pattern without
//! `*` keeps the native order), GET patterns with `#` and `->` hash fields,
//! LIMIT, ASC/DESC, and STORE into a list.
//!
//! Redis's ordering rules: numeric ties are broken by comparing the elements
//! as binary strings; ALPHA compares as `strcoll` does in the C locale
//! (bytes, up to a NUL) except with STORE, which compares binary strings; a
//! BY key that is missing sorts as 0 (numeric) or first (ALPHA). The sort
//! is stable, as glibc's `qsort` (a merge sort) is.

use super::{arg_i64, c_str, is_opt, reader, CmdError, CmdResult, Ctx, Handler, Reader};
use crate::commands::zsets::float::strtod;
use crate::db::list::List;
use crate::db::notify::{GENERIC, LIST, NEW};
use crate::db::{Keyspace, Value};
use bytes::Bytes;
use std::cmp::Ordering;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[("sort", sort), ("sort_ro", sort_ro)];

fn sort(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, false)
}

fn sort_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    sort_generic(ctx, args, true)
}

/// One element being sorted: the element, and what it sorts by.
struct Item {
    obj: Vec<u8>,
    score: f64,
    cmp: Option<Vec<u8>>,
}

/// Redis's `lookupKeyByPattern`: `#` is the element itself; otherwise the
/// first `*` is replaced by the element and the string key (or, with
/// `->field`, the hash field) read. None for a pattern without `*`, a
/// missing key or field, or a key of another type.
fn by_pattern(ks: &mut Keyspace, r: Reader, pattern: &[u8], elem: &[u8]) -> Option<Vec<u8>> {
    if pattern.first() == Some(&b'#') && pattern.get(1).is_none_or(|b| *b == 0) {
        return Some(elem.to_vec());
    }
    let spat = c_str(pattern);
    let star = memchr::memchr(b'*', spat)?;
    let arrow = memchr::memmem::find(&spat[star + 1..], b"->")
        .map(|i| star + 1 + i)
        .filter(|&f| f + 2 < spat.len());
    let (key_end, field) = match arrow {
        Some(f) => (f, Some(&pattern[f + 2..])),
        None => (pattern.len(), None),
    };
    let mut key = Vec::with_capacity(key_end + elem.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(&pattern[star + 1..key_end]);
    let e = ks.lookup(r.db, &key, r.now_ms, r.touch)?;
    match (&e.value, field) {
        (Value::Hash(h), Some(f)) => h.get(f).map(<[u8]>::to_vec),
        (Value::Str(s), None) => Some(s.data.clone()),
        _ => None,
    }
}

/// Binary comparison (`compareStringObjects`).
fn binary(a: &[u8], b: &[u8]) -> Ordering {
    a.cmp(b)
}

/// `strcoll` in the C locale: bytes up to the first NUL.
fn collate(a: &[u8], b: &[u8]) -> Ordering {
    c_str(a).cmp(c_str(b))
}

fn sort_generic(ctx: &mut Ctx, args: &[Bytes], readonly: bool) -> CmdResult {
    let mut desc = false;
    let mut alpha = false;
    let (mut limit_start, mut limit_count) = (0i64, -1i64);
    let mut dontsort = false;
    let mut sortby: Option<&Bytes> = None;
    let mut store: Option<&Bytes> = None;
    let mut gets: Vec<&Bytes> = Vec::new();
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if is_opt(a, "asc") {
            desc = false;
        } else if is_opt(a, "desc") {
            desc = true;
        } else if is_opt(a, "alpha") {
            alpha = true;
        } else if is_opt(a, "limit") && left >= 2 {
            limit_start = arg_i64(&args[j + 1])?;
            limit_count = arg_i64(&args[j + 2])?;
            j += 2;
        } else if !readonly && is_opt(a, "store") && left >= 1 {
            store = Some(&args[j + 1]);
            j += 1;
        } else if is_opt(a, "by") && left >= 1 {
            sortby = Some(&args[j + 1]);
            // A pattern without `*` names no key per element: no sorting.
            if memchr::memchr(b'*', c_str(&args[j + 1])).is_none() {
                dontsort = true;
            }
            j += 1;
        } else if is_opt(a, "get") && left >= 1 {
            gets.push(&args[j + 1]);
            j += 1;
        } else {
            return Err(CmdError::syntax());
        }
        j += 1;
    }

    let r = reader(ctx);
    let db = ctx.db();
    // The elements to sort, in the value's own order (a zset by rank).
    enum Kind {
        List,
        Set,
        ZSet,
    }
    let (kind, mut elems): (Kind, Vec<Vec<u8>>) =
        match ctx.ks.lookup(db, &args[1], r.now_ms, r.touch) {
            None => (Kind::List, Vec::new()),
            Some(e) => match &mut e.value {
                Value::List(l) => (Kind::List, l.iter().map(<[u8]>::to_vec).collect()),
                Value::Set(s) => (
                    Kind::Set,
                    s.iter().map(|m| m.with_bytes(<[u8]>::to_vec)).collect(),
                ),
                Value::ZSet(z) => {
                    // Redis converts a sorted set it sorts to a skiplist.
                    z.convert_to_skiplist();
                    (
                        Kind::ZSet,
                        z.iter_from(0, false).map(|(m, _)| m.to_vec()).collect(),
                    )
                }
                _ => return Err(CmdError::wrong_type()),
            },
        };
    // A set has no order of its own: with STORE or in a script it is
    // sorted ALPHA so the result is deterministic.
    if dontsort && matches!(kind, Kind::Set) && (store.is_some() || ctx.client.in_script) {
        dontsort = false;
        alpha = true;
        sortby = None;
    }

    let len = elems.len() as i64;
    let mut start = limit_start.max(0);
    let mut end = if limit_count < 0 {
        len - 1
    } else {
        start.wrapping_add(limit_count).wrapping_sub(1)
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }

    let mut items: Vec<Item>;
    if dontsort && !matches!(kind, Kind::Set) {
        // Native order, DESC walking from the other end, LIMIT applied
        // while loading.
        if desc {
            elems.reverse();
        }
        items = if end >= start {
            elems
                .into_iter()
                .skip(start as usize)
                .take((end - start + 1) as usize)
                .map(|obj| Item {
                    obj,
                    score: 0.0,
                    cmp: None,
                })
                .collect()
        } else {
            Vec::new()
        };
        if end >= start {
            end -= start;
            start = 0;
        }
    } else {
        items = elems
            .into_iter()
            .map(|obj| Item {
                obj,
                score: 0.0,
                cmp: None,
            })
            .collect();
    }

    let mut conversion_error = false;
    if !dontsort {
        for it in &mut items {
            let by = match sortby {
                Some(p) => match by_pattern(ctx.ks, r, p, &it.obj) {
                    Some(v) => v,
                    None => continue,
                },
                None => it.obj.clone(),
            };
            if alpha {
                if sortby.is_some() {
                    it.cmp = Some(by);
                }
            } else {
                let t = strtod(&by);
                // glibc also sets ERANGE for a subnormal result, which
                // Redis's check (errno only) refuses too.
                if t.consumed != c_str(&by).len()
                    || t.range_error
                    || t.value.is_subnormal()
                    || t.value.is_nan()
                {
                    conversion_error = true;
                }
                it.score = t.value;
            }
        }
        let by_pattern = sortby.is_some();
        let stored = store.is_some();
        items.sort_by(|a, b| {
            let c = if !alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(Ordering::Equal)
                    .then_with(|| binary(&a.obj, &b.obj))
            } else if by_pattern {
                match (&a.cmp, &b.cmp) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) if stored => binary(x, y),
                    (Some(x), Some(y)) => collate(x, y),
                }
            } else if stored {
                binary(&a.obj, &b.obj)
            } else {
                collate(&a.obj, &b.obj)
            };
            if desc {
                c.reverse()
            } else {
                c
            }
        });
    }

    let count = end - start + 1;
    let outputlen = if gets.is_empty() {
        count
    } else {
        (gets.len() as i64).wrapping_mul(count)
    };
    if conversion_error {
        return Err(CmdError::new(
            "ERR One or more scores can't be converted into double",
        ));
    }
    let range = if count > 0 {
        &items[start as usize..=end as usize]
    } else {
        &items[..0]
    };
    match store {
        None => {
            ctx.out.array(outputlen.max(0) as usize);
            for it in range {
                if gets.is_empty() {
                    ctx.out.bulk(&it.obj);
                }
                for g in &gets {
                    match by_pattern(ctx.ks, r, g, &it.obj) {
                        Some(v) => ctx.out.bulk(&v),
                        None => ctx.out.null(),
                    }
                }
            }
        }
        Some(dest) => {
            let mut list = List::new();
            for it in range {
                if gets.is_empty() {
                    list.push(false, &it.obj);
                }
                for g in &gets {
                    let v = by_pattern(ctx.ks, r, g, &it.obj).unwrap_or_default();
                    list.push(false, &v);
                }
            }
            let now = ctx.now_ms;
            if outputlen > 0 {
                let existed = ctx.ks.lookup_write(db, dest, now).is_some();
                ctx.ks.set(db, dest.clone(), Value::List(list), 0);
                ctx.ks.stats.dirty += outputlen as u64 - 1;
                if !existed {
                    ctx.notify(NEW, "new", db, dest);
                }
                ctx.notify(LIST, "sortstore", db, dest);
            } else if ctx.ks.delete(db, dest, now) {
                ctx.notify(GENERIC, "del", db, dest);
            }
            ctx.out.int(outputlen);
        }
    }
    Ok(())
}
