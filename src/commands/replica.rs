//! The replica side's commands (`server::replica`, through `node::Runtime`):
//! REPLICAOF / SLAVEOF, ROLE, and FAILOVER (`server::replica::failover`).

use super::{is_kw, CmdError, CmdResult, Ctx, Handler};
use crate::node::replication::failover::{self, FailoverState};
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("replicaof", replicaof),
    ("slaveof", replicaof),
    ("failover", failover_cmd),
    ("role", role),
];

/// REPLICAOF host port | REPLICAOF NO ONE (Redis's `replicaofCommand`).
fn replicaof(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = if is_kw(&args[0], "slaveof") {
        "SLAVEOF"
    } else {
        "REPLICAOF"
    };
    if ctx.shared.cluster.is_some() {
        return Err(CmdError::new(format!(
            "ERR {name} not allowed in cluster mode."
        )));
    }
    if ctx.shared.repl.lock().failover.state != FailoverState::None {
        return Err(CmdError::new(format!(
            "ERR {name} not allowed while failing over."
        )));
    }
    let who = super::args::client_info_line(&ctx.client.handle);
    if is_kw(&args[1], "no") && is_kw(&args[2], "one") {
        if ctx.shared.runtime.replica_stop(ctx.shared, ctx.ks) {
            tracing::info!("MASTER MODE enabled (user request from '{who}')");
        }
        ctx.out.ok();
        return Ok(());
    }
    let port = std::str::from_utf8(&args[2])
        .ok()
        .and_then(|s| crate::protocol::parse::parse_i64(s.as_bytes()))
        .filter(|p| (0..=65535).contains(p))
        .ok_or_else(|| CmdError::new("ERR Invalid master port"))? as u16;
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    let same = ctx
        .shared
        .repl
        .lock()
        .master
        .as_ref()
        .is_some_and(|m| m.host.eq_ignore_ascii_case(&host) && m.port == port);
    if same {
        tracing::info!("REPLICAOF would result into synchronization with the master we are already connected with. No operation performed.");
        ctx.out.simple("OK Already connected to specified master");
        return Ok(());
    }
    // Redis's `replicationSetMaster`: `disconnectAllBlockedClients`.
    super::blocking::disconnect_all(ctx.shared, ctx.ks);
    ctx.shared
        .runtime
        .replica_start(ctx.shared, host.clone(), port, Some(0));
    tracing::info!("REPLICAOF {host}:{port} enabled (user request from '{who}')");
    ctx.out.ok();
    Ok(())
}

/// FAILOVER [TO host port [FORCE]] [ABORT] [TIMEOUT ms] (Redis's
/// `failoverCommand`).
fn failover_cmd(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.shared.cluster.is_some() {
        return Err(CmdError::new(
            "ERR FAILOVER not allowed in cluster mode. Use CLUSTER FAILOVER command instead.",
        ));
    }
    if args.len() == 2 && is_kw(&args[1], "abort") {
        if ctx.shared.repl.lock().failover.state == FailoverState::None {
            return Err(CmdError::new("ERR No failover in progress."));
        }
        ctx.shared
            .runtime
            .failover_abort(ctx.shared, ctx.ks, "Failover manually aborted");
        ctx.out.ok();
        return Ok(());
    }
    let int = |b: &Bytes| {
        crate::protocol::parse::parse_i64(b)
            .ok_or_else(|| CmdError::new("ERR value is not an integer or out of range"))
    };
    let mut req = failover::Request::default();
    let mut j = 1;
    while j < args.len() {
        let a = &args[j];
        if is_kw(a, "timeout") && j + 1 < args.len() && req.timeout_ms.is_none() {
            let ms = int(&args[j + 1])?;
            if ms <= 0 {
                return Err(CmdError::new("ERR FAILOVER timeout must be greater than 0"));
            }
            req.timeout_ms = Some(ms as u64);
            j += 2;
        } else if is_kw(a, "to") && j + 2 < args.len() && req.target.is_none() {
            let port = int(&args[j + 2])?;
            req.target = Some((String::from_utf8_lossy(&args[j + 1]).into_owned(), port));
            j += 3;
        } else if is_kw(a, "force") && !req.force {
            req.force = true;
            j += 1;
        } else {
            return Err(CmdError::new("ERR syntax error"));
        }
    }
    ctx.shared
        .runtime
        .failover_start(ctx.shared, req)
        .map_err(|e| CmdError::new(e.to_string()))?;
    ctx.out.ok();
    Ok(())
}

/// ROLE (Redis's `roleCommand`): `master offset [[ip port offset] ...]` or
/// `slave host port state offset`.
fn role(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let st = ctx.shared.repl.lock();
    match &st.master {
        None => {
            let online: Vec<_> = st.replicas.iter().filter(|r| r.state == "online").collect();
            ctx.out.array(3);
            ctx.out.bulk(b"master");
            ctx.out.int(st.offset as i64);
            ctx.out.array(online.len());
            for r in online {
                ctx.out.array(3);
                ctx.out.bulk(r.ip.as_bytes());
                ctx.out.bulk(r.port.to_string().as_bytes());
                ctx.out.bulk(r.ack_offset.to_string().as_bytes());
            }
        }
        Some(m) => {
            ctx.out.array(5);
            ctx.out.bulk(b"slave");
            ctx.out.bulk(m.host.as_bytes());
            ctx.out.int(i64::from(m.port));
            ctx.out.bulk(m.state.role_name().as_bytes());
            let off = if m.client_id.is_some() {
                st.offset as i64
            } else {
                -1
            };
            ctx.out.int(off);
        }
    }
    Ok(())
}
