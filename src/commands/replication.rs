//! Replication commands of the primary side: REPLCONF, PSYNC, SYNC, WAIT
//! (the work is in `node::replication::primary`).

use super::{is_kw, CmdError, CmdResult, Ctx, Handler};
use crate::node::replication::failover::FailoverState;
use crate::node::replication::primary::{self, Psync};
use crate::node::PendingOp;
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("replconf", replconf),
    ("psync", psync),
    ("sync", sync),
    ("wait", wait),
];

fn not_int() -> CmdError {
    CmdError::new("ERR value is not an integer or out of range")
}

fn parse_i64(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// REPLCONF <option> <value> [<option> <value> ...] (Redis's
/// `replconfCommand`): ACK and GETACK are answered with nothing.
fn replconf(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(CmdError::new("ERR syntax error"));
    }
    for pair in args[1..].chunks(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        if opt.eq_ignore_ascii_case(b"ack") {
            // Only from a replica; no reply in any case.
            if ctx.client.handle.meta.lock().replica {
                if let Some(o) = parse_i64(val).and_then(|o| u64::try_from(o).ok()) {
                    primary::ack(ctx.shared, ctx.client.id, o);
                }
            }
            return Ok(());
        }
        if opt.eq_ignore_ascii_case(b"getack") {
            // A primary asks its replica; this side answers nothing.
            return Ok(());
        }
        primary::replconf(ctx.shared, ctx.client.id, opt, val)
            .map_err(|e| CmdError::new(e.to_string()))?;
    }
    ctx.out.ok();
    Ok(())
}

/// Refusals common to PSYNC and SYNC; Ok(false): already a replica (ignored).
/// `PSYNC <replid> <offset> FAILOVER` from this replica's primary first
/// promotes it (Redis's `syncCommand`; the primary runs FAILOVER).
fn may_sync(ctx: &mut Ctx, args: &[Bytes]) -> Result<bool, CmdError> {
    if ctx.client.handle.meta.lock().replica {
        return Ok(false);
    }
    if args.len() > 3 && is_kw(&args[0], "psync") && is_kw(&args[3], "failover") {
        tracing::warn!(
            "Failover request received for replid {}.",
            String::from_utf8_lossy(&args[1])
        );
        if !ctx.shared.repl.is_replica() {
            return Err(CmdError::new(
                "ERR PSYNC FAILOVER can't be sent to a master.",
            ));
        }
        let ours = ctx.shared.repl.lock().replid.as_bytes() == args[1].as_ref();
        if !ours {
            return Err(CmdError::new(
                "ERR PSYNC FAILOVER replid must match my replid.",
            ));
        }
        ctx.shared.runtime.replica_stop(ctx.shared, ctx.ks);
        let who = super::args::client_info_line(&ctx.client.handle);
        tracing::info!("MASTER MODE enabled (failover request from '{who}')");
    }
    if ctx.shared.repl.lock().failover.state != FailoverState::None {
        return Err(CmdError::new("NOMASTERLINK Can't SYNC while failing over"));
    }
    if ctx.shared.repl.is_replica() && !ctx.shared.repl.link_up() {
        return Err(CmdError::new(
            "NOMASTERLINK Can't SYNC while not connected with my master",
        ));
    }
    Ok(true)
}

/// PSYNC <replid> <offset>
fn psync(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if !may_sync(ctx, args)? {
        return Ok(());
    }
    let offset = parse_i64(&args[2]).ok_or_else(not_int)?;
    let handle = ctx.client.handle.clone();
    match primary::psync(ctx.shared, ctx.ks, &handle, &args[1], offset, true) {
        Psync::Continue(bytes) => ctx.out.buf.extend_from_slice(&bytes),
        // `+FULLRESYNC` and the RDB follow at the end of the batch.
        Psync::Full => {}
    }
    Ok(())
}

/// SYNC: a full resync without the `+FULLRESYNC` line.
fn sync(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if !may_sync(ctx, args)? {
        return Ok(());
    }
    let handle = ctx.client.handle.clone();
    primary::psync(ctx.shared, ctx.ks, &handle, b"?", -1, false);
    Ok(())
}

/// WAIT numreplicas timeout
fn wait(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.shared.repl.lock().master.is_some() {
        return Err(CmdError::new("ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated."));
    }
    let num = parse_i64(&args[1]).ok_or_else(not_int)?;
    let timeout = parse_i64(&args[2])
        .ok_or_else(|| CmdError::new("ERR timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(CmdError::new("ERR timeout is negative"));
    }
    if ctx.client.multi.is_some() || ctx.client.in_exec || num <= 0 {
        // Inside a transaction WAIT cannot block: the count now, of the
        // replicas that acknowledged this client's earlier writes.
        let st = ctx.shared.repl.lock();
        let n = primary::acked_count(&st, ctx.client.woff);
        ctx.out.int(n as i64);
        return Ok(());
    }
    // Off the lock, after this batch's writes were fed to the stream.
    ctx.client.pending = Some(PendingOp::Wait {
        num: num as u64,
        timeout_ms: timeout as u64,
    });
    Ok(())
}
