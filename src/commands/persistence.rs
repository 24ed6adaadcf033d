//! Persistence commands: SAVE, BGSAVE, BGREWRITEAOF.
//!
//! redlog has one persistence mechanism, the WAL with its base snapshot
//! (`node::persist`); all three commands write a new base (a compaction),
//! which is what both an RDB save and an AOF rewrite amount to there.

use super::{is_kw, CmdError, CmdResult, Ctx, Handler};
use crate::node::PendingOp;
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("save", save),
    ("bgsave", bgsave),
    ("bgrewriteaof", bgrewriteaof),
];

fn disabled() -> CmdError {
    CmdError::new("ERR persistence is disabled (appendonly no)")
}

/// SAVE
///
/// Runs the compaction after the keyspace lock is released (the connection
/// performs `PendingOp::Save`), then replies +OK.
fn save(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let Some(p) = &ctx.shared.persist else {
        return Err(disabled());
    };
    if p.rewrite_in_progress
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        return Err(CmdError::new("ERR Background save already in progress"));
    }
    ctx.client.pending = Some(PendingOp::Save);
    Ok(())
}

/// BGSAVE [SCHEDULE]
fn bgsave(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let schedule = match args.len() {
        1 => false,
        2 if is_kw(&args[1], "schedule") => true,
        _ => return Err(CmdError::syntax()),
    };
    let Some(p) = ctx.shared.persist.clone() else {
        return Err(disabled());
    };
    if p.rewrite_in_progress
        .load(std::sync::atomic::Ordering::SeqCst)
    {
        if schedule {
            p.rewrite_scheduled
                .store(true, std::sync::atomic::Ordering::SeqCst);
            ctx.out.simple("Background saving scheduled");
            return Ok(());
        }
        return Err(CmdError::new("ERR Background save already in progress"));
    }
    start(ctx)?;
    ctx.out.simple("Background saving started");
    Ok(())
}

/// BGREWRITEAOF
fn bgrewriteaof(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if ctx.shared.persist.is_none() {
        return Err(disabled());
    }
    if !start(ctx)? {
        return Err(CmdError::new(
            "ERR Background append only file rewriting already in progress",
        ));
    }
    ctx.out
        .simple("Background append only file rewriting started");
    Ok(())
}

fn start(ctx: &mut Ctx) -> Result<bool, CmdError> {
    ctx.shared
        .start_rewrite()
        .map_err(|e| CmdError::new(format!("ERR {e}")))
}
