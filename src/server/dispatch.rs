//! Running one command for a client, as Redis's `processCommand`: name
//! lookup (and `rename-command`), the rejections in Redis's order
//! (protected DEBUG, authentication, ACL, cluster redirection, memory
//! limit, loading, persistence failure, subscribed mode), CLIENT PAUSE,
//! MULTI queueing, then the handler; the reply mode (CLIENT REPLY) last.
//! The reader loop (`connection`) and the busy-script path (`busy`) both
//! call in here.

use super::durability::Misconf;
use super::{Client, ReplyMode, Shared};
use crate::commands::{self, flags, table, CmdError, Ctx};
use crate::db::evict::EvictResult;
use crate::db::Keyspace;
use crate::protocol::Out;
use bytes::Bytes;
use std::sync::atomic::Ordering;

/// A rejected EXEC discards the transaction and answers EXECABORT with the
/// reason (Redis's `execCommandAbort`): the rejection text without its
/// `ERR ` prefix, other codes kept.
/// MONITOR clients see the EXEC (they saw the MULTI).
fn exec_abort(
    shared: &Shared,
    client: &mut Client,
    ks: &mut Keyspace,
    e: CmdError,
    args: &[Bytes],
) -> CmdError {
    if shared.observe.has_monitors() {
        let who = client.handle.addr.to_string();
        shared.observe.feed_monitors(client.db, &who, args, &[]);
    }
    if client.multi.take().is_some() {
        client.handle.meta.lock().multi = -1;
    }
    if !client.watched.is_empty() {
        let watched = std::mem::take(&mut client.watched);
        ks.unwatch_all(client.id, &watched);
    }
    let reason = e.0.strip_prefix(b"ERR ").unwrap_or(&e.0);
    let mut msg = b"EXECABORT Transaction discarded because of: ".to_vec();
    msg.extend_from_slice(reason);
    CmdError::from_bytes(msg)
}

/// Redis's `rejectCommand`, for a command found in the table (`idx`)
/// but refused before it runs: counted as rejected, a MULTI being queued
/// is flagged (its EXEC will fail), and a refused EXEC discards the
/// transaction with EXECABORT (`exec_abort`).
fn reject(
    shared: &Shared,
    ks: &mut Keyspace,
    client: &mut Client,
    idx: usize,
    e: CmdError,
    args: &[Bytes],
) -> Result<(), CmdError> {
    let t = table();
    let entry = &t.entries[idx];
    entry.stat.rejected.fetch_add(1, Ordering::Relaxed);
    if let Some(m) = client.multi.as_mut() {
        m.aborted = true;
    }
    let top_name = entry
        .parent
        .map_or(entry.cmd.name, |p| t.entries[p].cmd.name);
    if top_name == "exec" {
        Err(exec_abort(shared, client, ks, e, args))
    } else {
        Err(e)
    }
}

/// True when the client's queued MULTI block holds a write command.
fn multi_writes(client: &Client) -> bool {
    let t = table();
    client.multi.as_ref().is_some_and(|m| {
        m.queue
            .iter()
            .any(|(idx, _)| t.entries[*idx].cmd.has(flags::WRITE))
    })
}

/// True when the client's queued MULTI block holds a `denyoom` command.
fn multi_denyoom(client: &Client) -> bool {
    let t = table();
    client.multi.as_ref().is_some_and(|m| {
        m.queue
            .iter()
            .any(|(idx, _)| t.entries[*idx].cmd.has(flags::DENYOOM))
    })
}

/// `min-replicas-to-write` with `min-replicas-max-lag` (Redis's
/// `checkGoodReplicasStatus`).
fn enough_good_replicas(shared: &Shared) -> bool {
    let (min, lag) = {
        let c = shared.config.read();
        (c.min_replicas_to_write, c.min_replicas_max_lag)
    };
    shared.repl.enough_good_replicas(min, lag)
}

/// A replica's refusals (Redis's `processCommand`): writes while
/// `replica-read-only yes` (READONLY), and, while the link to the primary
/// is down with `replica-serve-stale-data no`, commands not flagged `stale`
/// (MASTERDOWN). The primary's own link (the master client) is obeyed.
fn replica_reject(
    shared: &Shared,
    ks: &Keyspace,
    client: &Client,
    cmd: &commands::Command,
    top_name: &str,
    args: &[Bytes],
) -> Option<CmdError> {
    if !shared.repl.is_replica() || client.master {
        return None;
    }
    let write = if commands::scripting::is_eval(cmd) {
        commands::scripting::effective_flags(ks, cmd, args) & flags::WRITE != 0
    } else {
        cmd.has(flags::WRITE) || (top_name == "exec" && multi_writes(client))
    };
    let (read_only, serve_stale) = {
        let c = shared.config.read();
        (
            c.get("replica-read-only") != Some("no"),
            c.get("replica-serve-stale-data") != Some("no"),
        )
    };
    if write && read_only {
        return Some(CmdError::new(
            "READONLY You can't write against a read only replica.",
        ));
    }
    if !serve_stale && !shared.repl.link_up() {
        let stale_ok = if top_name == "exec" {
            let t = table();
            client.multi.as_ref().is_none_or(|m| {
                m.queue
                    .iter()
                    .all(|(idx, _)| t.entries[*idx].cmd.has(flags::STALE))
            })
        } else {
            cmd.has(flags::STALE)
        };
        if !stale_ok {
            return Some(CmdError::new(
                "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            ));
        }
    }
    None
}

/// The memory limit before a command, as Redis's `processCommand`: while
/// `maxmemory` is set every command first evicts what the policy allows
/// (`Keyspace::perform_evictions`); if memory is still over the limit,
/// `denyoom` commands (EXEC of a block holding one, and anything queued
/// inside MULTI) are refused with Redis's OOM error.
fn oom_reject(
    shared: &Shared,
    ks: &mut Keyspace,
    client: &Client,
    cmd: &commands::Command,
    top_name: &str,
    args: &[Bytes],
) -> Option<CmdError> {
    ks.pre_command_oom = false;
    // Redis's `isSafeToPerformEvictions`: not while loading, nor paused;
    // the primary's stream is always applied (a replica leaves eviction to
    // its primary, `replica-ignore-maxmemory yes`).
    if ks.evict.cfg.maxmemory == 0
        || shared.is_loading()
        || shared.pause.writes_paused()
        || client.master
    {
        return None;
    }
    let result = shared.observe.latency.timed("eviction-cycle", || {
        ks.perform_evictions(&|| shared.mem_not_counted_for_evict())
    });
    if result != EvictResult::Fail {
        return None;
    }
    ks.pre_command_oom = true;
    let reject = commands::scripting::effective_flags(ks, cmd, args) & flags::DENYOOM != 0
        || (top_name == "exec" && multi_denyoom(client))
        || (client.multi.is_some()
            && !matches!(top_name, "exec" | "discard" | "quit" | "reset")
            // Checked before the memory limit in Redis.
            && !cmd.has(flags::NO_MULTI));
    reject.then(|| CmdError::new("OOM command not allowed when used memory > 'maxmemory'."))
}

/// Re-reads the client's user after a change of the users: a deleted
/// user leaves the client unauthenticated as the default user (its
/// connection is being closed, as Redis's `ACLFreeUserAndKillClients`).
pub fn refresh_acl_user(shared: &Shared, client: &mut Client) {
    let v = shared.acl_version.load(Ordering::SeqCst);
    if v == client.acl_version {
        return;
    }
    client.acl_version = v;
    let Some(u) = &client.user else { return };
    let acl = shared.acl.read();
    match acl.users.get(&u.name) {
        Some(n) => client.user = Some(n.clone()),
        None => {
            client.user = Some(acl.default_user());
            client.authenticated = false;
        }
    }
}

/// The ACL check of a command about to run or be queued: None when the
/// client's user may run it, else the NOPERM error, logged in ACL LOG.
pub(super) fn acl_reject(
    shared: &Shared,
    client: &mut Client,
    idx: usize,
    args: &[Bytes],
) -> Option<CmdError> {
    if shared.acl_version.load(Ordering::Relaxed) != client.acl_version {
        refresh_acl_user(shared, client);
    }
    let user = client.user.as_ref()?;
    if user.unrestricted {
        return None;
    }
    let denied = user.check(idx, args, &mut client.acl_keys).err()?;
    let context = if client.multi.is_some() {
        crate::acl::LogContext::Multi
    } else {
        crate::acl::LogContext::Toplevel
    };
    let full_name = &table().entries[idx].full_name;
    commands::acl::log_denied(shared, client, denied, context, full_name, args);
    Some(denied.error(full_name))
}

/// `rename-command`: a new name becomes the command's own; an old one (or
/// a removed command) is unknown, with Redis's error.
fn apply_renames(renames: &[(Bytes, Bytes)], args: &mut [Bytes]) -> Result<(), CmdError> {
    let name = &args[0];
    if let Some((old, _)) = renames
        .iter()
        .find(|(_, new)| !new.is_empty() && new.eq_ignore_ascii_case(name))
    {
        args[0] = old.clone();
        return Ok(());
    }
    if renames
        .iter()
        .any(|(old, _)| old.eq_ignore_ascii_case(name))
    {
        return Err(commands::unknown_command(args));
    }
    Ok(())
}

/// Names of the commands that run immediately even inside MULTI.
fn runs_inside_multi(name: &str) -> bool {
    matches!(
        name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// Tells the keyspace's expiry which role the next lookups run under
/// (`db::expire::ExpireState::set_role`): a replica hides expired keys
/// instead of deleting them, except for the master client, which sees
/// them, and for a writable replica's write lookups; during CLIENT PAUSE
/// even a primary only hides them. Two atomic loads on a primary; the
/// configuration is read only on a replica.
pub(super) fn sync_expire_role(shared: &Shared, ks: &mut Keyspace, from_master: bool) {
    ks.expire.paused = shared.pause.writes_paused();
    let replica = shared.repl.is_replica();
    if !replica && !ks.expire.replica {
        return;
    }
    let writable = replica && shared.config.read().get("replica-read-only") == Some("no");
    ks.set_expire_role(replica, from_master, writable);
}

/// Executes one command for `client`, as Redis's `processCommand`: lookup,
/// arity, authentication, MULTI queueing, then the handler.
pub fn execute(
    shared: &Shared,
    ks: &mut Keyspace,
    client: &mut Client,
    out: &mut Out,
    mut args: Vec<Bytes>,
) {
    execute_argv(shared, ks, client, out, &mut args);
}

/// `execute` on a borrowed argument vector, which the caller reuses for
/// the next command: it is taken (left empty) only when the command is
/// kept (queued in MULTI, postponed by CLIENT PAUSE), otherwise left as
/// it was (`rename-command` may have replaced the name).
pub fn execute_argv(
    shared: &Shared,
    ks: &mut Keyspace,
    client: &mut Client,
    out: &mut Out,
    args: &mut Vec<Bytes>,
) {
    let t = table();
    sync_expire_role(shared, ks, client.master);
    // Under the keyspace lock: one writer at a time.
    commands::bump(&shared.stats.total_commands_processed, 1);
    let reply_start = out.buf.len();
    let asking_cmd = shared.cluster.is_some() && args[0].eq_ignore_ascii_case(b"asking");
    // CLIENT CACHING's one-command life (see `tracking::command_processed`).
    let tracking_client_cmd = ks
        .tracking
        .active()
        .then(|| args[0].eq_ignore_ascii_case(b"client"));
    let renamed = if shared.renames.is_empty() {
        Ok(())
    } else {
        apply_renames(&shared.renames, args)
    };
    let resolved = match renamed {
        Ok(()) => t.resolve(args),
        Err(e) => Err(e),
    };
    let result = match resolved {
        // A known command with a wrong arity (or unknown subcommand) is
        // counted as rejected; an unknown one only flags the MULTI.
        Err(e) => match t.lookup(&args[0]) {
            Some(idx) => reject(shared, ks, client, idx, e, args),
            None => {
                if let Some(m) = client.multi.as_mut() {
                    m.aborted = true;
                }
                Err(e)
            }
        },
        Ok(idx) => {
            let entry = &t.entries[idx];
            let cmd = entry.cmd;
            let top_name = entry.parent.map_or(cmd.name, |p| t.entries[p].cmd.name);
            client.handle.last_cmd.store(idx, Ordering::Relaxed);
            // Redis's `authRequired`: a password is configured now (it may
            // have been cleared by CONFIG SET since the client connected).
            let auth_required =
                !client.authenticated && !shared.default_nopass.load(Ordering::Relaxed);
            let persist_failure = match &shared.persist {
                Some(_)
                    if cmd.has(flags::WRITE)
                        || commands::scripting::is_eval(cmd)
                        || top_name == "ping"
                        || (top_name == "exec" && multi_writes(client)) =>
                {
                    shared.durability.failure().filter(|_| {
                        !commands::scripting::is_eval(cmd)
                            || commands::scripting::effective_flags(ks, cmd, args) & flags::WRITE
                                != 0
                    })
                }
                _ => None,
            };
            if top_name == "debug"
                && !commands::debug::allowed(
                    shared
                        .config
                        .read()
                        .get("enable-debug-command")
                        .unwrap_or("no"),
                    client.handle.addr.is_local(),
                )
            {
                // Redis's CMD_PROTECTED check comes before authentication.
                let e = CmdError::new(commands::debug::NOT_ALLOWED);
                reject(shared, ks, client, idx, e, args)
            } else if auth_required && !cmd.has(flags::NO_AUTH) {
                let e = CmdError::new("NOAUTH Authentication required.");
                reject(shared, ks, client, idx, e, args)
            } else if let Some(e) = (!(client.multi.is_some() && cmd.has(flags::NO_MULTI)))
                .then(|| acl_reject(shared, client, idx, args))
                .flatten()
            {
                // Redis's `ACLCheckAllPerm` in `processCommand`.
                reject(shared, ks, client, idx, e, args)
            } else if let Some((e, discard)) = cluster_reject(shared, ks, client, idx, args) {
                // Redis's redirection in `processCommand`: EXEC discards
                // the transaction, a queued command flags it.
                entry.stat.rejected.fetch_add(1, Ordering::Relaxed);
                if discard {
                    if let Some(m) = client.multi.take() {
                        drop(m);
                        client.handle.meta.lock().multi = -1;
                    }
                    let watched = std::mem::take(&mut client.watched);
                    ks.unwatch_all(client.id, &watched);
                } else if let Some(m) = client.multi.as_mut() {
                    m.aborted = true;
                }
                Err(e)
            } else if let Some(e) = oom_reject(shared, ks, client, cmd, top_name, args) {
                reject(shared, ks, client, idx, e, args)
            } else if shared.is_loading() && !cmd.has(flags::LOADING) {
                let e = CmdError::new("LOADING Redis is loading the dataset in memory");
                reject(shared, ks, client, idx, e, args)
            } else if let Some(text) = persist_failure {
                // Redis refuses writes (and PING) once the AOF could not be
                // written, so a client never believes a write is safe.
                let e = CmdError::new(Misconf { reason: text }.to_string());
                reject(shared, ks, client, idx, e, args)
            } else if (cmd.has(flags::WRITE) || (top_name == "exec" && multi_writes(client)))
                && !enough_good_replicas(shared)
            {
                // `min-replicas-to-write` (Redis's `checkGoodReplicasStatus`).
                let e = CmdError::new("NOREPLICAS Not enough good replicas to write.");
                reject(shared, ks, client, idx, e, args)
            } else if let Some(e) = replica_reject(shared, ks, client, cmd, top_name, args) {
                // Redis's READONLY / MASTERDOWN checks in `processCommand`
                // (MASTERDOWN comes after the Pub/Sub context check there;
                // a subscribed client's commands all carry `stale` anyway).
                reject(shared, ks, client, idx, e, args)
            } else if client.pubsub.active()
                && !out.resp3
                && !super::pubsub::allowed_in_subscribed_mode(top_name)
            {
                // Redis's `rejectCommandFormat`: EXEC here is refused
                // with EXECABORT too.
                let e = CmdError::new(format!(
                    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    entry.full_name
                ));
                reject(shared, ks, client, idx, e, args)
            } else if crate::commands::connection::pause_covers(
                shared, ks, client, cmd, top_name, args,
            ) {
                // CLIENT PAUSE: the command waits (see `node::pause`).
                // Counted when it runs.
                shared
                    .stats
                    .total_commands_processed
                    .fetch_sub(1, Ordering::Relaxed);
                client.postponed = Some(std::mem::take(args));
                return;
            } else if client.multi.is_some() && !runs_inside_multi(top_name) {
                if cmd.has(flags::NO_MULTI) {
                    let e = CmdError::new("ERR Command not allowed inside a transaction");
                    reject(shared, ks, client, idx, e, args)
                } else {
                    if let Some(m) = client.multi.as_mut() {
                        m.queue.push((idx, std::mem::take(args)));
                        client.handle.meta.lock().multi = m.queue.len() as i64;
                    }
                    out.simple("QUEUED");
                    Ok(())
                }
            } else {
                // The batch's time, read when it took the lock.
                let now_ms = ks.cached_now_ms();
                let mut ctx = Ctx {
                    ks,
                    shared,
                    client,
                    out,
                    now_ms,
                };
                commands::call(&mut ctx, idx, args)
            }
        }
    };
    if let Err(e) = result {
        out.error_bytes(&e.0);
    }
    // Redis's `resetClient`: ASKING lasts one command (outside MULTI).
    if client.asking && client.multi.is_none() && !asking_cmd {
        client.asking = false;
    }
    if let Some(is_client) = tracking_client_cmd {
        super::tracking::command_processed(ks, client.id, client.multi.is_some(), is_client);
    }
    // Every error reply the command wrote, its own or nested ones.
    shared.count_errors(out);
    apply_reply_mode(client, out, reply_start);
}

/// Cluster mode: the redirection or CLUSTERDOWN / CROSSSLOT / TRYAGAIN
/// error the command gets (`commands::cluster::redirect`), and whether it
/// ends the transaction (EXEC). Clients run in-process on behalf of the
/// server (no user: scripts' callers are checked themselves) obey.
fn cluster_reject(
    shared: &Shared,
    ks: &mut Keyspace,
    client: &Client,
    idx: usize,
    args: &[Bytes],
) -> Option<(CmdError, bool)> {
    let c = shared.cluster.as_ref()?;
    // Redis's `mustObeyClient`: the primary's stream is never redirected.
    if client.master {
        return None;
    }
    let cmd = table().entries[idx].cmd;
    let flags = if commands::scripting::is_eval(cmd) {
        commands::scripting::effective_flags(ks, cmd, args)
    } else {
        cmd.flags
    };
    let now = ks.cached_now_ms();
    let e = commands::cluster::redirect(c, ks, client, idx, args, flags, now)?;
    Some((e, cmd.name == "exec"))
}

/// CLIENT REPLY OFF / SKIP: drops the reply the command wrote from
/// `reply_start`.
pub(super) fn apply_reply_mode(client: &mut Client, out: &mut Out, reply_start: usize) {
    match client.reply_mode {
        ReplyMode::On => {}
        ReplyMode::Off => out.suppress_reply(reply_start),
        // CLIENT REPLY SKIP itself replies nothing; the next command is skipped.
        ReplyMode::Skip => {
            out.suppress_reply(reply_start);
            client.reply_mode = ReplyMode::SkipNext;
        }
        ReplyMode::SkipNext => {
            out.suppress_reply(reply_start);
            client.reply_mode = ReplyMode::On;
        }
    }
    out.pushes.clear();
}
