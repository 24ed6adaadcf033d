//! MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queueing happens in `server::execute` (a command inside MULTI is checked
//! for existence, arity and authentication, then queued). EXEC runs the
//! queue while the connection holds the keyspace lock, so the block is
//! isolated as a whole.

use super::{call, table, CmdError, CmdResult, Ctx, Handler};
use crate::node::{Client, MultiState, Shared};
use crate::protocol::Out;
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("multi", multi),
    ("exec", exec),
    ("discard", discard),
    ("watch", watch),
    ("unwatch", unwatch),
];

/// MULTI
fn multi(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    multi_cmd(ctx.shared, ctx.client, ctx.out, args)
}

/// `multi` on its own state (also served while a script is busy).
pub fn multi_cmd(
    _shared: &Shared,
    client: &mut Client,
    out: &mut Out,
    _args: &[Bytes],
) -> CmdResult {
    if client.multi.is_some() {
        return Err(CmdError::new("ERR MULTI calls can not be nested"));
    }
    client.multi = Some(MultiState::default());
    client.handle.meta.lock().multi = 0;
    out.ok();
    Ok(())
}

/// Drops the client's WATCHes (EXEC, DISCARD, UNWATCH, RESET).
pub fn unwatch_all(ctx: &mut Ctx) {
    if !ctx.client.watched.is_empty() {
        let watched = std::mem::take(&mut ctx.client.watched);
        ctx.ks.unwatch_all(ctx.client.id, &watched);
        ctx.client.handle.meta.lock().watching = 0;
    }
}

fn end_multi(ctx: &mut Ctx) -> Option<MultiState> {
    ctx.client.handle.meta.lock().multi = -1;
    ctx.client.multi.take()
}

/// EXEC
fn exec(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let Some(state) = end_multi(ctx) else {
        return Err(CmdError::new("ERR EXEC without MULTI"));
    };
    if state.aborted {
        unwatch_all(ctx);
        return Err(CmdError::new(
            "EXECABORT Transaction discarded because of previous errors.",
        ));
    }
    let id = ctx.client.id;
    let now = ctx.now_ms;
    let touched = ctx.client.watched.iter().any(|(db, key)| {
        ctx.ks.dbs[*db].is_dirty(id) || ctx.ks.dbs[*db].watched_key_expired(key, id, now)
    });
    unwatch_all(ctx);
    if touched {
        ctx.out.null_array();
        return Ok(());
    }
    ctx.out.array(state.queue.len());
    let t = table();
    ctx.client.in_exec = true;
    for (idx, args) in state.queue {
        ctx.now_ms = crate::db::now_ms();
        // The rules may have changed since the command was queued.
        if let Err(d) = super::acl::check_logged(
            ctx.shared,
            ctx.client,
            idx,
            &args,
            crate::acl::LogContext::Multi,
        ) {
            ctx.out.error(&format!(
                "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {}",
                d.exec_reason()
            ));
            continue;
        }
        if let Err(e) = call(ctx, idx, &args) {
            ctx.shared.error_reply(ctx.out, &e.0);
        }
        let _ = t;
    }
    ctx.client.in_exec = false;
    Ok(())
}

/// DISCARD
fn discard(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if end_multi(ctx).is_none() {
        return Err(CmdError::new("ERR DISCARD without MULTI"));
    }
    unwatch_all(ctx);
    ctx.out.ok();
    Ok(())
}

/// WATCH key [key ...]
fn watch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::new("ERR WATCH inside MULTI is not allowed"));
    }
    let db = ctx.client.db;
    for key in &args[1..] {
        if ctx.client.watched.iter().any(|(d, k)| *d == db && k == key) {
            continue;
        }
        let expired = ctx.ks.dbs[db].is_expired(key, ctx.now_ms);
        let key = Bytes::copy_from_slice(key);
        ctx.ks.dbs[db].watch(key.clone(), ctx.client.id, expired);
        ctx.client.watched.push((db, key));
    }
    ctx.client.handle.meta.lock().watching = ctx.client.watched.len();
    ctx.out.ok();
    Ok(())
}

/// UNWATCH
fn unwatch(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    unwatch_all(ctx);
    ctx.out.ok();
    Ok(())
}
