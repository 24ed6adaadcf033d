//! The replica side of cluster mode's commands: CLUSTER REPLICATE,
//! CLUSTER FAILOVER, READONLY and READWRITE (Redis 7.0's `clusterCommand`
//! "replicate" and "failover", `readonlyCommand`, `readwriteCommand`). The replication link itself is
//! started by the server when it sees the new role
//! (`server::cluster_repl`).

use super::{c_str_lossy, is_opt, CmdError, CmdResult, Ctx, Handler};
use crate::cluster::manual::Mode;
use crate::cluster::nodes::todo;
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[("readonly", readonly), ("readwrite", readwrite)];

/// CLUSTER's "unknown subcommand or wrong number of arguments" error
/// (used by `cluster` too).
pub(super) fn syntax_sub(args: &[Bytes]) -> CmdError {
    let mut m = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
    m.extend_from_slice(&super::c_str(&args[1])[..super::c_str(&args[1]).len().min(128)]);
    m.extend_from_slice(b"'. Try CLUSTER HELP.");
    CmdError::from_bytes(m)
}

fn disabled() -> CmdError {
    CmdError::new("ERR This instance has cluster support disabled")
}

/// READONLY
fn readonly(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    set_readonly(ctx, true)
}

/// READWRITE
fn readwrite(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    set_readonly(ctx, false)
}

fn set_readonly(ctx: &mut Ctx, on: bool) -> CmdResult {
    if ctx.shared.cluster.is_none() {
        return Err(disabled());
    }
    ctx.client.readonly = on;
    ctx.client.handle.meta.lock().readonly = on;
    ctx.out.ok();
    Ok(())
}

/// CLUSTER REPLICATE <node-id>
pub fn replicate(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let c = ctx.shared.cluster.as_ref().ok_or_else(disabled)?;
    let has_keys = !ctx.ks.dbs[0].is_empty();
    let mut st = c.state.lock();
    let Some(n) = st.lookup(&args[2]) else {
        return Err(CmdError::new(format!(
            "ERR Unknown node {}",
            c_str_lossy(&args[2])
        )));
    };
    let name = n.name;
    if name == st.myself {
        return Err(CmdError::new("ERR Can't replicate myself"));
    }
    if n.is_slave() {
        return Err(CmdError::new(
            "ERR I can only replicate a master, not a replica.",
        ));
    }
    let me = st.me();
    if me.is_master() && (me.numslots != 0 || has_keys) {
        return Err(CmdError::new(
            "ERR To set a master the node must be empty and without assigned slots.",
        ));
    }
    st.set_master(name);
    st.todo |= todo::UPDATE_STATE | todo::SAVE_CONFIG;
    st.before_sleep(crate::cluster::now_ms());
    drop(st);
    ctx.out.ok();
    Ok(())
}

/// CLUSTER FAILOVER [FORCE|TAKEOVER] (the manual failover itself is in
/// `cluster::manual`).
pub fn failover(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let c = ctx.shared.cluster.as_ref().ok_or_else(disabled)?;
    if args.len() > 3 {
        return Err(syntax_sub(args));
    }
    let mode = match args.get(2) {
        None => Mode::Default,
        Some(a) if is_opt(a, "force") => Mode::Force,
        Some(a) if is_opt(a, "takeover") => Mode::Takeover,
        Some(_) => return Err(CmdError::syntax()),
    };
    let now = crate::cluster::now_ms();
    let mut st = c.state.lock();
    let res = st.manual_failover(mode, now);
    st.before_sleep(now);
    drop(st);
    res.map_err(|e| CmdError::new(e.to_string()))?;
    ctx.out.ok();
    Ok(())
}

/// CLUSTER RESET's replica part (`clusterReset`): a replica stops
/// replicating and empties its dataset before the reset makes it a
/// primary.
pub fn reset_replica(ctx: &mut Ctx) {
    let is_replica = ctx
        .shared
        .cluster
        .as_ref()
        .is_some_and(|c| c.state.lock().me().is_slave());
    if is_replica {
        ctx.shared.runtime.replica_stop(ctx.shared, ctx.ks);
        let removed = ctx.ks.flush_all();
        ctx.ks.stats.dirty += removed;
    }
}
