//! HyperLogLog commands (Redis's hyperloglog.c): PFADD, PFCOUNT, PFMERGE,
//! PFDEBUG, PFSELFTEST, over string values in Redis's exact representation
//! (`db::hll`).
//!
//! WAL: a dense value changed in place is logged as the byte spans that
//! changed (SETRANGE effects); a sparse value (at most
//! `hll-sparse-max-bytes`) or a value whose encoding changed is logged
//! whole.

use super::{
    c_str_lossy, is_opt, read_typed, reader, write_typed, CmdError, CmdResult, Ctx, Handler,
};
use crate::db::effect::Effect;
use crate::db::hll::{self, Set};
use crate::db::notify::{NEW, STRING};
use crate::db::{StrForm, StrValue, Value};
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("pfadd", pfadd),
    ("pfcount", pfcount),
    ("pfmerge", pfmerge),
    ("pfdebug", pfdebug),
    ("pfselftest", pfselftest),
];

/// A string that passes Redis's `isHLLObjectOrReply`, else its errors
/// (WRONGTYPE for other types and for strings that are not HyperLogLogs).
fn as_hll(v: &mut Value) -> Result<&mut StrValue, CmdError> {
    match v {
        Value::Str(s) if s.form != StrForm::IntCopy && hll::is_valid(&s.data) => Ok(s),
        Value::Str(_) => Err(CmdError::new(hll::NOT_HLL)),
        _ => Err(CmdError::wrong_type()),
    }
}

fn corrupted() -> CmdError {
    CmdError::new(hll::CORRUPTED)
}

fn sparse_max(ctx: &Ctx) -> usize {
    ctx.shared.config.read().hll_sparse_max_bytes
}

/// Logs a changed HyperLogLog: the register bytes `regs` (register
/// indexes, inclusive) and the cache byte as SETRANGE effects when it stayed
/// dense, else (a sparse or converted value) nothing here, so the key's
/// whole value is logged at the end of the command.
fn log_change(ctx: &mut Ctx, key: &Bytes, dense_regs: Option<(usize, usize)>) {
    let db = ctx.db();
    ctx.ks.dbs[db].signal_modified(key);
    let Some((lo, hi)) = dense_regs else {
        return;
    };
    let (from, to) = (
        hll::HDR_SIZE + lo * 6 / 8,
        (hll::HDR_SIZE + hi * 6 / 8 + 2).min(hll::DENSE_SIZE),
    );
    let Ok(Some(s)) = write_typed(ctx.ks, db, key, ctx.now_ms, as_hll) else {
        return;
    };
    let spans = [
        (8, Bytes::copy_from_slice(&s.data[8..16])),
        (from, Bytes::copy_from_slice(&s.data[from..to])),
    ];
    for (offset, data) in spans {
        ctx.ks.log_op(
            db,
            key,
            Effect::SetRange {
                db: db as u8,
                key: key.clone(),
                offset: offset as u64,
                data,
            },
        );
    }
}

/// PFADD key [element ...]
fn pfadd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (db, key, now) = (ctx.db(), &args[1], ctx.now_ms);
    let max = sparse_max(ctx);
    let created = write_typed(ctx.ks, db, key, now, as_hll)?.is_none();
    if created {
        let v = StrValue::with_form(hll::new_sparse(), StrForm::Raw);
        ctx.ks.set(db, key.clone(), Value::Str(v), 0);
        ctx.notify(NEW, "new", db, key);
    }
    let mut updated = u64::from(created);
    let mut span: Option<(usize, usize)> = None;
    let stayed_dense = {
        let Some(s) = write_typed(ctx.ks, db, key, now, as_hll)? else {
            return Err(corrupted());
        };
        s.form = StrForm::Raw;
        let was_dense = hll::encoding(&s.data) == hll::DENSE;
        for ele in &args[2..] {
            let (index, count) = hll::pat_len(ele);
            match hll::set_register(&mut s.data, index, count, max) {
                Set::Changed => {
                    updated += 1;
                    span = Some(span.map_or((index, index), |(a, b)| (a.min(index), b.max(index))));
                }
                Set::Unchanged => {}
                Set::Corrupted => return Err(corrupted()),
            }
        }
        if updated > 0 {
            hll::invalidate_cache(&mut s.data);
        }
        was_dense && hll::encoding(&s.data) == hll::DENSE
    };
    if updated > 0 {
        if !created {
            log_change(ctx, key, if stayed_dense { span } else { None });
        }
        ctx.ks.stats.dirty += updated - u64::from(created);
        ctx.notify(STRING, "pfadd", db, key);
    }
    ctx.out.int(i64::from(updated > 0));
    Ok(())
}

/// PFCOUNT key [key ...]
fn pfcount(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = reader(ctx);
    if args.len() > 2 {
        let mut max = vec![0u8; hll::REGISTERS];
        for key in &args[1..] {
            if let Some(s) = read_typed(ctx.ks, r, key, as_hll)? {
                if !hll::merge_into(&mut max, &s.data) {
                    return Err(corrupted());
                }
            }
        }
        ctx.out.int(hll::estimate(&hll::raw_histogram(&max)) as i64);
        return Ok(());
    }
    let key = &args[1];
    let (card, recomputed) = match read_typed(ctx.ks, r, key, as_hll)? {
        None => (0, false),
        Some(s) => {
            s.form = StrForm::Raw;
            match hll::cached(&s.data) {
                Some(c) => (c, false),
                None => {
                    let c = hll::count(&s.data).ok_or_else(corrupted)?;
                    hll::set_cache(&mut s.data, c);
                    (c, true)
                }
            }
        }
    };
    if recomputed {
        // The cache is part of the value: a write, as in Redis.
        let db = ctx.db();
        ctx.ks.dbs[db].signal_modified(key);
        ctx.ks.stats.dirty += 1;
        ctx.ks.log_op(
            db,
            key,
            Effect::SetRange {
                db: db as u8,
                key: key.clone(),
                offset: 8,
                data: Bytes::copy_from_slice(&card.to_le_bytes()),
            },
        );
    }
    ctx.out.int(card as i64);
    Ok(())
}

/// PFMERGE destkey [sourcekey ...]
fn pfmerge(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let r = reader(ctx);
    let mut max = vec![0u8; hll::REGISTERS];
    let mut dense = false;
    for key in &args[1..] {
        if let Some(s) = read_typed(ctx.ks, r, key, as_hll)? {
            dense |= hll::encoding(&s.data) == hll::DENSE;
            if !hll::merge_into(&mut max, &s.data) {
                return Err(corrupted());
            }
        }
    }
    let (db, key, now) = (ctx.db(), &args[1], ctx.now_ms);
    let max_sparse = sparse_max(ctx);
    if write_typed(ctx.ks, db, key, now, as_hll)?.is_none() {
        let v = StrValue::with_form(hll::new_sparse(), StrForm::Raw);
        ctx.ks.set(db, key.clone(), Value::Str(v), 0);
        ctx.notify(NEW, "new", db, key);
    } else {
        ctx.ks.stats.dirty += 1;
    }
    let Some(s) = write_typed(ctx.ks, db, key, now, as_hll)? else {
        return Err(corrupted());
    };
    s.form = StrForm::Raw;
    if dense {
        s.data = hll::to_dense(&s.data).ok_or_else(corrupted)?;
    }
    for (i, m) in max.iter().enumerate() {
        if *m != 0 {
            // Redis ignores the result here (a corrupted target was
            // already refused by the merge above).
            let _ = hll::set_register(&mut s.data, i, *m, max_sparse);
        }
    }
    hll::invalidate_cache(&mut s.data);
    ctx.ks.dbs[db].signal_modified(key);
    ctx.notify(STRING, "pfadd", db, key);
    ctx.out.ok();
    Ok(())
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key
fn pfdebug(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (db, key, now) = (ctx.db(), &args[2], ctx.now_ms);
    let sub = &args[1];
    let (getreg, todense) = (is_opt(sub, "getreg"), is_opt(sub, "todense"));
    let (sparse, regs, text) = {
        let Some(s) = write_typed(ctx.ks, db, key, now, as_hll)? else {
            return Err(CmdError::new("ERR The specified key does not exist"));
        };
        s.form = StrForm::Raw;
        let sparse = hll::encoding(&s.data) == hll::SPARSE;
        if getreg || todense {
            if sparse {
                s.data = hll::to_dense(&s.data).ok_or_else(corrupted)?;
            }
            (
                sparse,
                getreg.then(|| hll::registers(&s.data).unwrap_or_default()),
                None,
            )
        } else if is_opt(sub, "decode") {
            if !sparse {
                return Err(CmdError::new("ERR HLL encoding is not sparse"));
            }
            (sparse, None, Some(hll::decode_sparse(&s.data)))
        } else if is_opt(sub, "encoding") {
            (sparse, None, None)
        } else {
            return Err(CmdError::new(format!(
                "ERR Unknown PFDEBUG subcommand '{}'",
                c_str_lossy(sub)
            )));
        }
    };
    if (getreg || todense) && sparse {
        // The encoding changed: the whole value is logged.
        ctx.ks.dbs[db].signal_modified(key);
        ctx.ks.stats.dirty += 1;
    }
    if let Some(regs) = regs {
        ctx.out.array(regs.len());
        for r in regs {
            ctx.out.int(i64::from(r));
        }
    } else if todense {
        ctx.out.int(i64::from(sparse));
    } else if let Some(text) = text {
        ctx.out.bulk(text.as_bytes());
    } else {
        ctx.out.simple(if sparse { "sparse" } else { "dense" });
    }
    Ok(())
}

/// PFSELFTEST: Redis's self-test of the register packing and of the
/// estimator's error, dense and sparse side by side.
fn pfselftest(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let max = sparse_max(ctx);
    match hll::self_test(max, crate::db::now_ms(), 10_000_000) {
        Ok(()) => {
            ctx.out.ok();
            Ok(())
        }
        Err(e) => Err(CmdError::new(format!("TESTFAILED {e}"))),
    }
}
