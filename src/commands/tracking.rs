//! CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO (Redis 7.0's
//! `clientCommand` in networking.c). The state is `db::tracking`; the
//! messages are sent by `node::tracking`.

use super::{flags, table, CmdError, CmdResult, Ctx};
use crate::db::tracking::{self as tr, Msg};
use crate::node::tracking::{limit_used_slots, process, send};
use bytes::Bytes;

fn is_kw(a: &[u8], kw: &str) -> bool {
    a.eq_ignore_ascii_case(kw.as_bytes())
}

/// CLIENT TRACKING <ON|OFF> [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN]
/// [OPTOUT] [NOLOOP]
pub fn client_tracking(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut redir: i64 = 0;
    let mut redirect_to = None;
    let mut options = 0u8;
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut j = 3;
    while j < args.len() {
        let a = &args[j];
        let more = j + 1 < args.len();
        if is_kw(a, "redirect") && more {
            j += 1;
            if redir != 0 {
                return Err(CmdError::new(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            redir =
                crate::protocol::parse::parse_i64(&args[j]).ok_or_else(CmdError::not_integer)?;
            // The target must exist now (it may go away later).
            let target = u64::try_from(redir)
                .ok()
                .and_then(|id| ctx.shared.clients.get(&id).map(|h| h.value().clone()));
            let Some(target) = target else {
                return Err(CmdError::new(
                    "ERR The client ID you want redirect to does not exist",
                ));
            };
            redirect_to = Some(target);
        } else if is_kw(a, "bcast") {
            options |= tr::BCAST;
        } else if is_kw(a, "optin") {
            options |= tr::OPTIN;
        } else if is_kw(a, "optout") {
            options |= tr::OPTOUT;
        } else if is_kw(a, "noloop") {
            options |= tr::NOLOOP;
        } else if is_kw(a, "prefix") && more {
            j += 1;
            prefixes.push(args[j].clone());
        } else {
            return Err(CmdError::syntax());
        }
        j += 1;
    }
    let id = ctx.client.id;
    if is_kw(&args[2], "on") {
        if options & tr::BCAST == 0 && !prefixes.is_empty() {
            return Err(CmdError::new(
                "ERR PREFIX option requires BCAST mode to be enabled",
            ));
        }
        let cur = ctx.ks.tracking.client(id).map_or(0, |c| c.flags);
        let on = ctx.ks.tracking.client(id).is_some();
        if on && (cur & tr::BCAST != 0) != (options & tr::BCAST != 0) {
            return Err(CmdError::new("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
        }
        if options & tr::BCAST != 0 && options & (tr::OPTIN | tr::OPTOUT) != 0 {
            return Err(CmdError::new(
                "ERR OPTIN and OPTOUT are not compatible with BCAST",
            ));
        }
        if options & tr::OPTIN != 0 && options & tr::OPTOUT != 0 {
            return Err(CmdError::new(
                "ERR You can't specify both OPTIN mode and OPTOUT mode",
            ));
        }
        if (options & tr::OPTIN != 0 && cur & tr::OPTOUT != 0)
            || (options & tr::OPTOUT != 0 && cur & tr::OPTIN != 0)
        {
            return Err(CmdError::new("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
        }
        if options & tr::BCAST != 0 {
            if let Some(e) = ctx.ks.tracking.check_prefixes(id, &prefixes) {
                return Err(CmdError::new(e));
            }
        }
        ctx.ks.tracking.enable(id, redir as u64, options, &prefixes);
        ctx.client.handle.expect_pushes();
        if let Some(t) = redirect_to {
            // Already watching its queue if subscribed; otherwise from
            // its next request on.
            t.expect_pushes();
        }
        ctx.ks.sync_tracking();
        if let Some(c) = ctx.ks.tracking.client(id) {
            crate::node::tracking::show(&ctx.client.handle, c);
        }
    } else if is_kw(&args[2], "off") {
        crate::node::tracking::disable(ctx.ks, &ctx.client.handle);
    } else {
        return Err(CmdError::syntax());
    }
    ctx.out.ok();
    Ok(())
}

/// CLIENT CACHING <YES|NO>
pub fn client_caching(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(c) = ctx.ks.tracking.client_mut(ctx.client.id) else {
        return Err(CmdError::new("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled"));
    };
    if is_kw(&args[2], "yes") {
        if c.flags & tr::OPTIN == 0 {
            return Err(CmdError::new(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if is_kw(&args[2], "no") {
        if c.flags & tr::OPTOUT == 0 {
            return Err(CmdError::new(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(CmdError::syntax());
    }
    c.flags |= tr::CACHING;
    ctx.out.ok();
    Ok(())
}

/// CLIENT GETREDIR
pub fn client_getredir(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let r = ctx
        .ks
        .tracking
        .client(ctx.client.id)
        .map_or(-1, |c| c.redirect as i64);
    ctx.out.int(r);
    Ok(())
}

/// CLIENT TRACKINGINFO
pub fn client_trackinginfo(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let c = ctx.ks.tracking.client(ctx.client.id).cloned();
    let f = c.as_ref().map_or(0, |c| c.flags);
    let mut names = vec![if c.is_some() { "on" } else { "off" }];
    if f & tr::BCAST != 0 {
        names.push("bcast");
    }
    if f & tr::OPTIN != 0 {
        names.push("optin");
        if f & tr::CACHING != 0 {
            names.push("caching-yes");
        }
    }
    if f & tr::OPTOUT != 0 {
        names.push("optout");
        if f & tr::CACHING != 0 {
            names.push("caching-no");
        }
    }
    if f & tr::NOLOOP != 0 {
        names.push("noloop");
    }
    if f & tr::BROKEN_REDIR != 0 {
        names.push("broken_redirect");
    }
    let out = &mut *ctx.out;
    out.map(3);
    out.bulk(b"flags");
    out.set(names.len());
    for n in names {
        out.bulk(n.as_bytes());
    }
    out.bulk(b"redirect");
    out.int(c.as_ref().map_or(-1, |c| c.redirect as i64));
    out.bulk(b"prefixes");
    match &c {
        Some(c) => {
            out.array(c.prefixes.len());
            for p in &c.prefixes {
                out.bulk(p);
            }
        }
        None => out.array(0),
    }
    Ok(())
}

// The per-call hooks (`commands::call`); delivery is `node::tracking`.

/// The client whose command runs: a script's caller for the script's
/// commands (Redis's `server.current_client`).
fn current_id(ctx: &Ctx) -> u64 {
    match &ctx.client.script_caller {
        Some(h) if ctx.client.in_script => h.id,
        _ => ctx.client.id,
    }
}

/// Not inside EXEC or a script (Redis's `!server.in_nested_call`).
fn top_level(ctx: &Ctx) -> bool {
    !ctx.client.in_exec && !ctx.client.in_script
}

/// Before a top-level command (Redis's `processCommand`): keeps the
/// table under its limit and sends what evictions invalidated.
pub fn before_call(ctx: &mut Ctx) {
    if !ctx.ks.tracking.active() || !top_level(ctx) {
        return;
    }
    let current = ctx.client.id;
    limit_used_slots(ctx.shared, ctx.ks);
    process(ctx.shared, ctx.ks, current);
    flush_own(ctx);
}

/// After a command (each one, nested ones too): see the module comment.
pub fn after_call(ctx: &mut Ctx, idx: usize, args: &[Bytes]) {
    if !ctx.ks.tracking.active() {
        return;
    }
    let current = current_id(ctx);
    process(ctx.shared, ctx.ks, current);
    let cmd = table().entries[idx].cmd;
    if cmd.has(flags::READONLY)
        && !cmd.has(flags::PUBSUB)
        && !matches!(cmd.name, "eval_ro" | "evalsha_ro" | "fcall_ro")
        && ctx
            .ks
            .tracking
            .client(current)
            .is_some_and(|c| c.flags & tr::BCAST == 0)
    {
        let keys = table().keys(idx, args);
        ctx.ks.tracking.remember(current, keys.into_iter());
    }
    if top_level(ctx) {
        flush_own(ctx);
    }
}

/// Writes the running client's own messages after its reply.
fn flush_own(ctx: &mut Ctx) {
    if !ctx.ks.tracking.has_pending_own() {
        return;
    }
    let id = ctx.client.id;
    for m in ctx.ks.tracking.take_pending_own() {
        let msg = match m {
            Some(k) => Msg::Key(k),
            None => Msg::Flush,
        };
        send(ctx.shared, ctx.ks, id, &msg, Some((id, &mut *ctx.out)));
    }
}
