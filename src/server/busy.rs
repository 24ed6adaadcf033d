//! Commands received while a script runs past `busy-reply-threshold`
//! (`scripting::busy`): the keyspace lock is the script's, so they are
//! answered without it, in the order of Redis's `processCommand` checks
//! (unknown command and arity, NOAUTH, the RESP2 pub/sub context, then
//! BUSY for every command without the `allow-busy` flag). Of the
//! `allow-busy` commands, those that need no keyspace run here at once
//! (FUNCTION STATS reads the busy run's snapshot); WATCH, UNWATCH, RESET,
//! DISCARD with WATCHes and EXEC's abort need the WATCH registry: the busy
//! script's hook runs them on the script's thread (`ScriptBusy::run_job`),
//! so they are answered at once, as Redis does.

use super::{Client, Shared};
use crate::commands::{self, flags, table, CmdError, CmdResult};
use crate::node::busy::Kind;
use crate::protocol::Out;
use bytes::Bytes;
use std::sync::atomic::Ordering;

/// What became of a command received during a busy script.
pub(super) enum Step {
    /// Answered (its reply is in `out`).
    Served,
    /// Needs the keyspace: run it normally once the lock is free.
    NeedsLock(Vec<Bytes>),
}

/// Redis's `processCommand` while a script is busy (`busy_error` is the
/// running script's BUSY text).
pub(super) fn execute(
    shared: &Shared,
    client: &mut Client,
    out: &mut Out,
    args: Vec<Bytes>,
    busy_error: &'static str,
) -> Step {
    let t = table();
    let reply_start = out.buf.len();
    let idx = match t.resolve(&args) {
        Ok(idx) => idx,
        Err(e) => {
            let known = t.lookup(&args[0]);
            let is_exec = known.is_some_and(|i| t.entries[i].cmd.name == "exec");
            if let Some(idx) = known {
                t.entries[idx].stat.rejected.fetch_add(1, Ordering::Relaxed);
            }
            shared
                .stats
                .total_commands_processed
                .fetch_add(1, Ordering::Relaxed);
            if let Some(m) = client.multi.as_mut() {
                m.aborted = true;
            }
            let e = if is_exec {
                exec_abort(shared, client, e)
            } else {
                e
            };
            reply_error(shared, out, e);
            super::dispatch::apply_reply_mode(client, out, reply_start);
            return Step::Served;
        }
    };
    let entry = &t.entries[idx];
    let cmd = entry.cmd;
    let top_name = entry.parent.map_or(cmd.name, |p| t.entries[p].cmd.name);
    let auth_required = !client.authenticated && !shared.default_nopass.load(Ordering::Relaxed);
    let rejection = if auth_required && !cmd.has(flags::NO_AUTH) {
        Some(CmdError::new("NOAUTH Authentication required."))
    } else if let Some(e) = (!(client.multi.is_some() && cmd.has(flags::NO_MULTI)))
        .then(|| super::dispatch::acl_reject(shared, client, idx, &args))
        .flatten()
    {
        // Redis's `ACLCheckAllPerm`, before the BUSY check: a user
        // without +script|kill gets NOPERM, logged in ACL LOG.
        Some(e)
    } else if client.pubsub.active()
        && !out.resp3
        && !super::pubsub::allowed_in_subscribed_mode(top_name)
    {
        Some(CmdError::new(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            entry.full_name
        )))
    } else if !cmd.has(flags::ALLOW_BUSY) {
        Some(CmdError::new(busy_error))
    } else {
        None
    };
    if let Some(e) = rejection {
        entry.stat.rejected.fetch_add(1, Ordering::Relaxed);
        shared
            .stats
            .total_commands_processed
            .fetch_add(1, Ordering::Relaxed);
        if let Some(m) = client.multi.as_mut() {
            m.aborted = true;
        }
        let e = if top_name == "exec" {
            exec_abort(shared, client, e)
        } else {
            e
        };
        reply_error(shared, out, e);
        super::dispatch::apply_reply_mode(client, out, reply_start);
        return Step::Served;
    }
    let queue = client.multi.is_some()
        && !matches!(
            top_name,
            "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
        );
    let r: CmdResult = if queue {
        if cmd.has(flags::NO_MULTI) {
            entry.stat.rejected.fetch_add(1, Ordering::Relaxed);
            if let Some(m) = client.multi.as_mut() {
                m.aborted = true;
            }
            Err(CmdError::new(
                "ERR Command not allowed inside a transaction",
            ))
        } else {
            if let Some(m) = client.multi.as_mut() {
                m.queue.push((idx, args));
                client.handle.meta.lock().multi = m.queue.len() as i64;
            }
            out.simple("QUEUED");
            Ok(())
        }
    } else {
        let r = match entry.full_name.as_str() {
            "auth" => commands::connection::auth_cmd(shared, client, out, &args),
            "hello" => commands::connection::hello_cmd(shared, client, out, &args),
            "quit" => commands::connection::quit_cmd(shared, client, out, &args),
            "multi" => commands::transactions::multi_cmd(shared, client, out, &args),
            "script|kill" => shared.busy.kill_running(Kind::Eval).map(|()| out.ok()),
            "function|kill" => shared.busy.kill_running(Kind::Function).map(|()| out.ok()),
            "shutdown" => shutdown(shared, client, &args, busy_error),
            "function|stats" => match function_stats(shared, out) {
                Some(r) => r,
                None => return Step::NeedsLock(args),
            },
            "watch" | "unwatch" | "reset" | "discard"
                if !client.watched.is_empty() || top_name != "discard" =>
            {
                // They need the keyspace (the WATCH registry): the busy
                // script's hook runs them, through the ordinary path, on
                // the script's thread.
                return run_on_script_thread(shared, client, out, args);
            }
            "discard" => match client.multi.take() {
                None => Err(CmdError::new("ERR DISCARD without MULTI")),
                Some(_) => {
                    client.handle.meta.lock().multi = -1;
                    out.ok();
                    Ok(())
                }
            },
            _ => return Step::NeedsLock(args),
        };
        // The keyspace lock is not held: the statistics take atomic adds.
        entry.stat.calls.fetch_add(1, Ordering::Relaxed);
        if r.is_err() {
            entry.stat.failed.fetch_add(1, Ordering::Relaxed);
        }
        r
    };
    shared
        .stats
        .total_commands_processed
        .fetch_add(1, Ordering::Relaxed);
    if let Err(e) = r {
        reply_error(shared, out, e);
    }
    super::dispatch::apply_reply_mode(client, out, reply_start);
    Step::Served
}

/// A rejected EXEC (Redis's `execCommandAbort`): the transaction is
/// discarded and the WATCHes dropped.
fn exec_abort(shared: &Shared, client: &mut Client, e: CmdError) -> CmdError {
    if client.multi.take().is_some() {
        client.handle.meta.lock().multi = -1;
    }
    if !client.watched.is_empty() {
        let watched = std::mem::take(&mut client.watched);
        client.handle.meta.lock().watching = 0;
        let id = client.id;
        let w = watched.clone();
        let done = shared
            .busy
            .run_job(Box::new(move |ks| ks.unwatch_all(id, &w)));
        if !done {
            shared.lock_ks().unwatch_all(id, &watched);
        }
    }
    let reason = e.0.strip_prefix(b"ERR ").unwrap_or(&e.0);
    let mut msg = b"EXECABORT Transaction discarded because of: ".to_vec();
    msg.extend_from_slice(reason);
    CmdError::from_bytes(msg)
}

fn reply_error(shared: &Shared, out: &mut Out, e: CmdError) {
    shared
        .stats
        .total_error_replies
        .fetch_add(1, Ordering::Relaxed);
    out.error_bytes(&e.0);
}

/// SHUTDOWN during a busy script (Redis's `shutdownCommand`): only NOSAVE
/// goes on; it stops the script (its effects are not logged) and the
/// server.
fn shutdown(
    shared: &Shared,
    client: &mut Client,
    args: &[Bytes],
    busy_error: &'static str,
) -> CmdResult {
    let f = commands::server::shutdown_flags(args)?;
    if !f.nosave {
        return Err(CmdError::new(busy_error));
    }
    tracing::warn!(
        "User requested shutdown (client id {}) while a script was running: the script is stopped",
        client.id
    );
    shared.busy.kill_for_shutdown();
    shared.request_shutdown();
    client.close_after_reply = true;
    Ok(())
}

/// The client's connection waits while the busy script's hook runs the
/// command: the pointers stay valid and unshared until `run_job` returns.
struct Borrowed {
    shared: *const Shared,
    client: *mut Client,
    out: *mut Out,
}

// SAFETY: the job runs on the script's thread while the connection that
// owns these values is blocked in `run_job`, which returns only after the
// job ran (or once it is known never to run): the accesses never overlap,
// and the channel orders them.
unsafe impl Send for Borrowed {}

/// WATCH, UNWATCH, RESET and DISCARD with WATCHes during a busy script:
/// Redis answers them at once (`allow-busy`); they run through
/// `dispatch::execute` with the script's keyspace, on its thread.
fn run_on_script_thread(
    shared: &Shared,
    client: &mut Client,
    out: &mut Out,
    args: Vec<Bytes>,
) -> Step {
    let p = Borrowed {
        shared,
        client,
        out,
    };
    let a = args.clone();
    let job = Box::new(move |ks: &mut crate::db::Keyspace| {
        let p = p;
        // SAFETY: see `Borrowed`.
        let (shared, client, out) = unsafe { (&*p.shared, &mut *p.client, &mut *p.out) };
        super::dispatch::execute(shared, ks, client, out, a);
    });
    if shared.busy.run_job(job) {
        Step::Served
    } else {
        Step::NeedsLock(args)
    }
}

/// FUNCTION STATS during a busy script (Redis's `functionStatsCommand`):
/// BUSY for an EVAL script, else the running function. None when the run
/// is not busy yet (the caller waits for the lock).
fn function_stats(shared: &Shared, out: &mut Out) -> Option<CmdResult> {
    match shared.busy.running()? {
        Kind::Eval => return Some(Err(CmdError::new(crate::node::busy::BUSY_EVAL))),
        Kind::Function => {}
    }
    let info = shared.busy.run_info()?;
    let duration = shared.busy.running_ms()?;
    out.map(2);
    out.bulk(b"running_script");
    out.map(3);
    out.bulk(b"name");
    out.bulk(info.name.as_bytes());
    out.bulk(b"command");
    out.array(info.command.len());
    for a in &info.command {
        out.bulk(a);
    }
    out.bulk(b"duration_ms");
    out.int(duration as i64);
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(info.libraries as i64);
    out.bulk(b"functions_count");
    out.int(info.functions as i64);
    Some(Ok(()))
}
