//! A redlog record from this replica's primary (`PING <record>` from the
//! master client, or an RDB aux field at a full resync turned into one by
//! `replication::replica::apply::verify_rdb`): redlog-only state Redis
//! has no command for (`db::effect::record`). Its effects are applied as
//! replay applies them (`db::effect::apply`) and logged to this server's
//! WAL like the commands that made them on the primary, so a restart, and
//! a promotion (LOGPARSE PARSE / INGEST / TEMPLATES, and this server's
//! own replicas), see the primary's formats, miners and ingest states.

use super::{CmdError, CmdResult, Ctx};
use crate::db::effect::record::{self, Record};
use crate::db::effect::{self, Effect};
use crate::db::Value;
use bytes::Bytes;

fn err(msg: impl std::fmt::Display) -> CmdError {
    CmdError::new(format!("ERR redlog record: {msg}"))
}

/// Applies the record `payload`; the reply is `+OK` (a master client's
/// replies are dropped).
pub(super) fn apply(ctx: &mut Ctx, payload: &[u8]) -> CmdResult {
    let effects = match record::decode(payload).map_err(err)? {
        Record::Effects(v) => v,
        Record::ResetFormats => reset_effects(ctx),
    };
    for e in effects {
        apply_one(ctx, e)?;
    }
    ctx.out.ok();
    Ok(())
}

/// What drops this server's user formats and its built-in formats'
/// learning (a full resync's start).
fn reset_effects(ctx: &Ctx) -> Vec<Effect> {
    let mut v: Vec<Effect> = ctx
        .ks
        .logparse
        .names()
        .into_iter()
        .filter(|(_, builtin)| !builtin)
        .map(|(name, _)| Effect::LogFormatDel { name: name.into() })
        .collect();
    for (name, _) in ctx.ks.logparse.miner_states() {
        if let Some(f) = crate::logparse::builtin::get(&name) {
            let mut state = Vec::new();
            crate::logparse::Ingestor::new(f.clone()).encode_state(&mut state);
            v.push(Effect::LogMinerState {
                name: name.into(),
                state: state.into(),
            });
        }
    }
    v
}

fn apply_one(ctx: &mut Ctx, e: Effect) -> CmdResult {
    if let Effect::StreamIngestLearn { db, key, .. } = &e {
        let (db, key) = (*db, key.clone());
        stream_at(ctx, db, &key)?;
        effect::apply(ctx.ks, e.clone());
        ctx.ks.log_op(usize::from(db), &key, e);
        return Ok(());
    }
    match e {
        Effect::LogFormatSet { name, spec } => {
            ctx.ks.logparse.define(&name, spec.clone()).map_err(err)?;
            ctx.ks.stats.dirty += 1;
            ctx.ks.log_global(Effect::LogFormatSet { name, spec });
        }
        Effect::LogFormatDel { name } => {
            if ctx.ks.logparse.remove(&name).map_err(err)? {
                ctx.ks.stats.dirty += 1;
                ctx.ks.log_global(Effect::LogFormatDel { name });
            }
        }
        Effect::LogMinerState { name, state } => {
            ctx.ks.logparse.restore_miner(&name, &state).map_err(err)?;
            ctx.ks.log_global(Effect::LogMinerState { name, state });
        }
        Effect::LogMinerLearn { name, tokens } => {
            let toks: Vec<&[u8]> = tokens.iter().map(|t| t.as_ref()).collect();
            ctx.ks.logparse.learn_tokens(&name, &toks).map_err(err)?;
            ctx.ks.log_global(Effect::LogMinerLearn { name, tokens });
        }
        Effect::Set {
            db,
            key,
            value: Value::Stream(s),
            ..
        } => {
            // The primary's stream id is not ours: only the ingest state
            // moves to the stream the key holds here.
            let st = s.0.ingest.lock().take();
            let here = stream_at(ctx, db, &key)?;
            *here.0.ingest.lock() = st;
            // Logged as the key's value (type 7, with the state).
            ctx.ks.dbs[usize::from(db)].signal_modified(&key);
        }
        Effect::Command { db, argv } => {
            let (key, ms, bytes) = parse_xconfig(&argv)?;
            let s = stream_at(ctx, db, &key)?;
            s.lock()
                .and_then(|mut g| g.set_retention(ms, bytes))
                .map_err(err)?;
            ctx.ks.stats.dirty += 1;
            ctx.ks.stream_written(&s);
            // On to this server's own replicas, as the primary sent it.
            ctx.ks.log_command(usize::from(db), argv);
        }
        // `record::decode` admits nothing else.
        _ => return Err(err("unexpected effect")),
    }
    Ok(())
}

/// The stream `key` holds in `db`, or an error (the record's stream must
/// have come before it).
fn stream_at(ctx: &mut Ctx, db: u8, key: &Bytes) -> Result<crate::stream::StreamRef, CmdError> {
    match ctx.ks.dbs.get(usize::from(db)).and_then(|d| d.peek(key)) {
        Some(e) => match &e.value {
            Value::Stream(s) => Ok(s.clone()),
            _ => Err(err("the key holds no stream")),
        },
        None => Err(err("no such stream")),
    }
}

/// `XCONFIG key RETENTION-MS ms RETENTION-BYTES bytes` as
/// `record::xconfig_argv` writes it (0: none of its own).
fn parse_xconfig(argv: &[Bytes]) -> Result<(Bytes, Option<u64>, Option<u64>), CmdError> {
    let num = |b: &Bytes| -> Result<Option<u64>, CmdError> {
        let n: u64 = std::str::from_utf8(b)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| err("bad XCONFIG value"))?;
        Ok((n > 0).then_some(n))
    };
    match argv {
        [_, key, a, ms, b, bytes]
            if a.eq_ignore_ascii_case(b"retention-ms")
                && b.eq_ignore_ascii_case(b"retention-bytes") =>
        {
            Ok((key.clone(), num(ms)?, num(bytes)?))
        }
        _ => Err(err("malformed XCONFIG")),
    }
}
