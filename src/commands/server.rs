//! Server commands: INFO, CONFIG, DBSIZE, FLUSHDB, FLUSHALL, TIME,
//! LASTSAVE, SHUTDOWN, SWAPDB (COMMAND is in `introspection`).
//!
//! INFO field names are Redis 7.0's; a field is printed only when redlog has
//! a true value for it.

use super::{is_kw, table, CmdError, CmdResult, Ctx, Handler};
use crate::db::{Db, DATABASES};
use bytes::Bytes;
use std::sync::atomic::Ordering;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("info", super::info::info),
    ("config|get", config_get),
    ("config|set", config_set),
    ("config|resetstat", config_resetstat),
    ("config|rewrite", config_rewrite),
    ("config|help", config_help),
    ("dbsize", dbsize),
    ("flushdb", flushdb),
    ("flushall", flushall),
    ("time", time),
    ("lastsave", lastsave),
    ("shutdown", shutdown),
    ("swapdb", swapdb),
];

// ----------------------------------------------------------------- CONFIG

/// CONFIG GET parameter [parameter ...]
fn config_get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut pairs: Vec<(&'static str, String)> = Vec::new();
    {
        let c = ctx.shared.config.read();
        for pat in &args[2..] {
            for (name, value) in c.get_matching(pat) {
                if !pairs.iter().any(|(n, _)| *n == name) {
                    pairs.push((name, value));
                }
            }
        }
    }
    ctx.out.map(pairs.len());
    for (n, v) in pairs {
        ctx.out.bulk(n.as_bytes());
        ctx.out.bulk(v.as_bytes());
    }
    Ok(())
}

/// CONFIG SET parameter value [parameter value ...]
///
/// All or nothing. `requirepass` sets the default user's password (Redis's
/// `ACLUpdateDefaultUserPassword`);
/// `hz`, `maxclients`, `timeout` and the limits are read live.
fn config_set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::syntax());
    }
    let pairs: Vec<(String, String)> = args[2..]
        .chunks_exact(2)
        .map(|p| {
            (
                String::from_utf8_lossy(&p[0]).into_owned(),
                String::from_utf8_lossy(&p[1]).into_owned(),
            )
        })
        .collect();
    {
        let mut cfg = ctx.shared.config.write();
        let before = cfg.clone();
        cfg.set_runtime_from(&pairs, ctx.client.handle.addr.is_local())
            .map_err(|e| CmdError::new(e.to_string()))?;
        // Applying: a failure restores every value set by this call (Redis's
        // restoreBackupConfig), so the call is all or nothing.
        if let Err((name, why)) = apply_config(ctx.shared, &cfg, &pairs, &before.dir) {
            *cfg = before;
            if pairs.iter().any(|(n, _)| is_oom_param(n)) {
                // Logged inside; the old score is what Redis restores too.
                let _ = crate::config::oom::apply(&cfg);
            }
            return Err(CmdError::new(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
            )));
        }
    }
    ctx.shared.config_changed();
    if pairs
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("requirepass"))
    {
        super::acl::apply_requirepass(ctx.shared);
    }
    ctx.shared.apply_notify_config(ctx.ks);
    ctx.shared.apply_evict_config(ctx.ks);
    ctx.out.ok();
    Ok(())
}

/// Applies what CONFIG SET changed that lives outside `Config` and can
/// fail (the TLS context). Err: the argument to name and the reason.
fn apply_config(
    shared: &crate::node::Shared,
    cfg: &crate::config::Config,
    pairs: &[(String, String)],
    old_dir: &str,
) -> Result<(), (String, String)> {
    use crate::node::tls;
    // `dir` (settable with `enable-protected-configs`): Redis chdirs into
    // it. redlog's WAL and stream logs stay open in their directory, so
    // only the directory it already uses is accepted; another is refused
    // rather than shown while the data stays where it was.
    if let Some((name, value)) = pairs.iter().find(|(n, _)| n.eq_ignore_ascii_case("dir")) {
        let meta = std::fs::metadata(value).map_err(|e| {
            let s = e.to_string();
            let s = s
                .find(" (os error")
                .map_or(s.clone(), |i| s[..i].to_string());
            (name.clone(), s)
        })?;
        if !meta.is_dir() {
            return Err((name.clone(), "Not a directory".into()));
        }
        let same = |a: &str, b: &str| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !same(value, old_dir) {
            return Err((
                name.clone(),
                "redlog cannot move its data directory while running: set dir in the config file and restart".into(),
            ));
        }
    }
    if pairs
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("oom-score-adj-values"))
    {
        crate::config::oom::warn_if_unordered(cfg);
    }
    if let Some((name, _)) = pairs.iter().find(|(n, _)| is_oom_param(n)) {
        if crate::config::oom::apply(cfg).is_err() {
            return Err((
                name.clone(),
                "Failed to set current oom_score_adj. Check server logs.".into(),
            ));
        }
    }
    let tls_arg = pairs
        .iter()
        .find(|(n, _)| tls::TLS_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(n)));
    if let Some((name, _)) = tls_arg {
        if tls::enabled(cfg) {
            if let Err(e) = shared.tls.configure(cfg) {
                tracing::warn!("{e}");
                tracing::warn!("Failed applying new configuration. Possibly related to new {name} setting. Restoring previous settings.");
                return Err((
                    name.clone(),
                    "Unable to update TLS configuration. Check server logs.".into(),
                ));
            }
        }
    }
    Ok(())
}

fn is_oom_param(name: &str) -> bool {
    name.eq_ignore_ascii_case("oom-score-adj") || name.eq_ignore_ascii_case("oom-score-adj-values")
}

/// CONFIG RESETSTAT
fn config_resetstat(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let st = &ctx.shared.stats;
    for a in [
        &st.total_connections_received,
        &st.total_commands_processed,
        &st.rejected_connections,
        &st.total_net_input_bytes,
        &st.total_net_repl_input_bytes,
        &st.total_net_output_bytes,
        &st.total_error_replies,
    ] {
        a.store(0, Ordering::Relaxed);
    }
    for e in &table().entries {
        for a in [
            &e.stat.calls,
            &e.stat.usec,
            &e.stat.rejected,
            &e.stat.failed,
        ] {
            a.store(0, Ordering::Relaxed);
        }
        *e.stat.histogram.lock() = None;
    }
    ctx.shared.observe.reset_stats();
    {
        let mut r = ctx.shared.repl.lock();
        r.primary.sync_full = 0;
        r.primary.sync_partial_ok = 0;
        r.primary.sync_partial_err = 0;
    }
    let ks = &mut ctx.ks;
    ks.stats.expired_keys = 0;
    ks.stats.keyspace_hits = 0;
    ks.stats.keyspace_misses = 0;
    ks.expire.stale_perc = 0.0;
    ks.expire.time_cap_reached = 0;
    ks.expire.cpu_ms = 0;
    ks.evict.reset_stats();
    ctx.out.ok();
    Ok(())
}

/// CONFIG REWRITE
///
/// Rewrites the config file the server started with (see
/// `config::rewrite`); the file is replaced atomically.
fn config_rewrite(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let (path, text) = {
        let c = ctx.shared.config.read();
        let Some(path) = c.config_file.clone() else {
            return Err(CmdError::new(
                "ERR The server is running without a config file",
            ));
        };
        let old = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                tracing::warn!("CONFIG REWRITE failed: {e}");
                return Err(CmdError::new(format!("ERR Rewriting config file: {e}")));
            }
        };
        let dir = std::fs::canonicalize(&c.dir)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| c.dir.clone());
        (path, c.rewrite_text(&old, &dir))
    };
    match crate::config::overwrite_file(&path, &text) {
        Ok(()) => {
            tracing::info!("CONFIG REWRITE executed with success.");
            ctx.out.ok();
            Ok(())
        }
        Err(e) => {
            tracing::warn!("CONFIG REWRITE failed: {e}");
            Err(CmdError::new(format!("ERR Rewriting config file: {e}")))
        }
    }
}

/// CONFIG HELP
fn config_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    super::args::help_reply(
        ctx,
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
    Ok(())
}

// ------------------------------------------------------- keyspace / admin

/// DBSIZE
fn dbsize(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let n = ctx.ks.dbs[ctx.client.db].len();
    ctx.out.int(n as i64);
    Ok(())
}

/// The optional ASYNC / SYNC of FLUSHDB and FLUSHALL. Both free memory
/// synchronously here; the flag is validated as Redis does.
/// FLUSHALL / FLUSHDB's mode (Redis's `getFlushCommandFlags`): true for
/// ASYNC, or for no mode under `lazyfree-lazy-user-flush`.
fn flush_mode(ctx: &Ctx, args: &[Bytes]) -> Result<bool, CmdError> {
    match args.len() {
        1 => Ok(ctx.ks.lazyfree.user_flush()),
        2 if is_kw(&args[1], "async") => Ok(true),
        2 if is_kw(&args[1], "sync") => Ok(false),
        _ => Err(CmdError::syntax()),
    }
}

/// Empties one database: watchers of its keys are signalled by `Db::clear`.
/// Returns the number of keys removed (added to the dirty counter, as Redis).
fn empty_db(db: &mut Db, lazy: bool) -> u64 {
    let n = db.len() as u64;
    db.clear_as(lazy);
    n
}

/// FLUSHDB [ASYNC | SYNC]
fn flushdb(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let lazy = flush_mode(ctx, args)?;
    let db = ctx.client.db;
    let removed = empty_db(&mut ctx.ks.dbs[db], lazy);
    ctx.ks.stats.dirty += removed;
    ctx.out.ok();
    Ok(())
}

/// FLUSHALL [ASYNC | SYNC]
fn flushall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let lazy = flush_mode(ctx, args)?;
    let removed = ctx.ks.flush_all_as(lazy);
    ctx.ks.stats.dirty += removed;
    ctx.out.ok();
    Ok(())
}

/// TIME
fn time(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let us = super::info::now_us();
    ctx.out.array(2);
    ctx.out.bulk_int((us / 1_000_000) as i64);
    ctx.out.bulk_int((us % 1_000_000) as i64);
    Ok(())
}

/// LASTSAVE
fn lastsave(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let t = ctx.shared.last_save_unix.load(Ordering::Relaxed);
    ctx.out.int(t as i64);
    Ok(())
}

/// SHUTDOWN's options.
pub struct ShutdownFlags {
    pub nosave: bool,
    pub save: bool,
    pub force: bool,
}

/// SHUTDOWN's option parsing and its errors, in Redis's order (also used
/// while a script is busy, where only NOSAVE may go on).
pub fn shutdown_flags(args: &[Bytes]) -> Result<ShutdownFlags, CmdError> {
    let (mut nosave, mut save, mut now, mut force, mut abort) = (false, false, false, false, false);
    for a in &args[1..] {
        if is_kw(a, "nosave") {
            nosave = true;
        } else if is_kw(a, "save") {
            save = true;
        } else if is_kw(a, "now") {
            now = true;
        } else if is_kw(a, "force") {
            force = true;
        } else if is_kw(a, "abort") {
            abort = true;
        } else {
            return Err(CmdError::syntax());
        }
    }
    if (abort && (nosave || save || now || force)) || (nosave && save) {
        return Err(CmdError::syntax());
    }
    if abort {
        return Err(CmdError::new("ERR No shutdown in progress."));
    }
    Ok(ShutdownFlags {
        nosave,
        save,
        force,
    })
}

/// SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]
///
/// No reply on success: the server stops and every connection closes.
/// Nothing is persisted yet, so SAVE (an explicit request to save first)
/// fails as a failed save does in Redis, and the server keeps running.
/// A shutdown is never "in progress" (there is no save to wait for), so
/// ABORT always errors.
fn shutdown(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let ShutdownFlags { save, force, .. } = shutdown_flags(args)?;
    if save && !force && ctx.shared.persist.is_none() {
        tracing::warn!("SHUTDOWN SAVE refused: persistence is disabled (appendonly no)");
        return Err(CmdError::new("ERR Errors trying to SHUTDOWN. Check logs."));
    }
    if let Some(text) = ctx.shared.durability.failure() {
        if !force {
            tracing::warn!(
                "SHUTDOWN refused: the WAL cannot be written ({text}); use SHUTDOWN FORCE"
            );
            return Err(CmdError::new("ERR Errors trying to SHUTDOWN. Check logs."));
        }
    }
    tracing::warn!(
        "User requested shutdown (client id {}); the WAL is fsynced before exit",
        ctx.client.id
    );
    ctx.shared.request_shutdown();
    ctx.client.close_after_reply = true;
    Ok(())
}

/// SWAPDB index1 index2
fn swapdb(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.shared.cluster.is_some() {
        return Err(CmdError::new("ERR SWAPDB is not allowed in cluster mode"));
    }
    let parse = |a: &[u8], msg: &'static str| {
        crate::protocol::parse::parse_i64(a)
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or_else(|| CmdError::new(msg))
    };
    let a = parse(&args[1], "ERR invalid first DB index")?;
    let b = parse(&args[2], "ERR invalid second DB index")?;
    let range = 0..DATABASES as i64;
    if !range.contains(&a) || !range.contains(&b) {
        return Err(CmdError::new("ERR DB index is out of range"));
    }
    ctx.ks.swap_db(a as usize, b as usize);
    ctx.out.ok();
    Ok(())
}
