//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT (LOAD, EXISTS, FLUSH,
//! KILL, HELP), as Redis 7.0's `eval.c`. The engine is `crate::commands::lua`.

use super::{arg_i64, flags::*, CmdError, CmdResult, Command, Ctx, Handler};
use crate::commands::lua::{script_flags, Scripting};
use crate::db::engines::ScriptCache;
use crate::db::Keyspace;
use crate::node::busy::Kind;
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("eval", eval),
    ("evalsha", evalsha),
    ("eval_ro", eval_ro),
    ("evalsha_ro", evalsha_ro),
    ("script|exists", script_exists),
    ("script|flush", script_flush),
    ("script|help", script_help),
    ("script|kill", script_kill),
    ("script|load", script_load),
];

/// True for EVAL, EVALSHA, EVAL_RO, EVALSHA_RO.
pub fn is_eval(cmd: &Command) -> bool {
    cmd.name.starts_with("eval")
        && matches!(cmd.name, "eval" | "evalsha" | "eval_ro" | "evalsha_ro")
}

/// The command's flags as `processCommand` checks them (Redis's
/// `getCommandFlags`, `evalGetCommandFlags`, `fcallGetCommandFlags`): for
/// an EVAL of a script with a shebang, and for every FCALL, the script's or
/// function's flags replace the command's: `write` unless `no-writes`,
/// `denyoom` unless `allow-oom` or `no-writes`, `stale` with `allow-stale`.
/// Other commands keep their own.
pub fn effective_flags(ks: &Keyspace, cmd: &Command, args: &[Bytes]) -> u32 {
    if matches!(cmd.name, "fcall" | "fcall_ro") {
        // Redis's `fcallGetCommandFlags`: the function's declared flags.
        return match ks.functions.flags_of(&args[1]) {
            Some(f) => script_cmd_flags(cmd.flags, f),
            None => cmd.flags,
        };
    }
    if !is_eval(cmd) {
        return cmd.flags;
    }
    let evalsha = cmd.name.starts_with("evalsha");
    if evalsha && args[1].len() != 40 {
        return cmd.flags;
    }
    let sha = if evalsha {
        String::from_utf8_lossy(&args[1]).to_ascii_lowercase()
    } else {
        crate::commands::lua::sha1hex(&args[1])
    };
    let cached = ks.scripting.as_ref().and_then(|sc| sc.flags_of(&sha));
    let script_flags = match cached {
        Some(f) => f,
        None if evalsha => return cmd.flags,
        None => match crate::commands::lua::shebang_flags(&args[1]) {
            Ok((f, _)) => f,
            Err(_) => return cmd.flags,
        },
    };
    if script_flags & script_flags::EVAL_COMPAT_MODE != 0 {
        return cmd.flags;
    }
    script_cmd_flags(cmd.flags, script_flags)
}

/// Redis's `scriptFlagsToCmdFlags`: a script declaring its flags writes
/// (and needs memory) unless it says otherwise.
fn script_cmd_flags(cmd_flags: u32, script_flags: u32) -> u32 {
    let mut f = cmd_flags & !(STALE | DENYOOM | WRITE);
    if script_flags & (script_flags::ALLOW_OOM | script_flags::NO_WRITES) == 0 {
        f |= DENYOOM;
    }
    if script_flags & script_flags::NO_WRITES == 0 {
        f |= WRITE;
    }
    if script_flags & script_flags::ALLOW_STALE != 0 {
        f |= STALE;
    }
    f
}

/// Runs `f` with the EVAL engine, created on first use. The engine is
/// taken out of the keyspace while it runs (a script's commands borrow the
/// keyspace) and always put back.
fn with_engine<R>(
    ctx: &mut Ctx,
    f: impl FnOnce(&mut Ctx, &mut Scripting) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let mut sc: Box<dyn ScriptCache> = match ctx.ks.scripting.take() {
        Some(sc) => sc,
        None => Box::new(
            Scripting::new(ctx.shared)
                .map_err(|e| CmdError::new(format!("ERR Lua initialisation failed: {e}")))?,
        ),
    };
    let engine: &mut Scripting = sc
        .as_any_mut()
        .downcast_mut()
        .expect("Keyspace::scripting is scripting::Scripting");
    let r = f(ctx, engine);
    ctx.ks.script_stats = engine.stats();
    ctx.ks.scripting = Some(sc);
    r
}

fn eval(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    eval_generic(ctx, args, false, false)
}

fn evalsha(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    eval_generic(ctx, args, true, false)
}

fn eval_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    eval_generic(ctx, args, false, true)
}

fn evalsha_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    eval_generic(ctx, args, true, true)
}

fn noscript() -> CmdError {
    CmdError::new("NOSCRIPT No matching script. Please use EVAL.")
}

/// Redis's `evalGenericCommand` (and `evalShaCommand`'s length check).
fn eval_generic(ctx: &mut Ctx, args: &[Bytes], evalsha: bool, ro: bool) -> CmdResult {
    if evalsha && args[1].len() != 40 {
        return Err(noscript());
    }
    let numkeys = arg_i64(&args[2])?;
    if numkeys > args.len() as i64 - 3 {
        return Err(CmdError::new(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Err(CmdError::new("ERR Number of keys can't be negative"));
    }
    let nk = numkeys as usize;
    with_engine(ctx, |ctx, sc| {
        let sha = if evalsha {
            let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
            if !sc.exists(sha.as_bytes()) {
                return Err(noscript());
            }
            sha
        } else {
            sc.create(&args[1])?
        };
        let flags = sc.flags_of(&sha).unwrap_or(script_flags::EVAL_COMPAT_MODE);
        let compat = flags & script_flags::EVAL_COMPAT_MODE != 0;
        if !compat && flags & script_flags::NO_WRITES == 0 {
            if let Some(text) = ctx.shared.durability.failure() {
                return Err(CmdError::new(format!(
                    "MISCONF Redis is configured to persist data to AOF, but it's currently unable to persist to disk. Writable scripts are blocked. Use 'no-writes' flag for read only scripts. AOF error: {text}"
                )));
            }
            if ro {
                return Err(CmdError::new(
                    "ERR Can not execute a script with write flag using *_ro command.",
                ));
            }
        }
        let read_only = ro || (!compat && flags & script_flags::NO_WRITES != 0);
        sc.run(ctx, &sha, &args[3..3 + nk], &args[3 + nk..], read_only)
    })
}

/// SCRIPT EXISTS sha1 [sha1 ...]
fn script_exists(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.out.array(args.len() - 2);
    for a in &args[2..] {
        let found =
            Scripting::of(ctx.ks).is_some_and(|sc| sc.exists(a.to_ascii_lowercase().as_slice()));
        ctx.out.int(found as i64);
    }
    Ok(())
}

/// SCRIPT FLUSH [ASYNC|SYNC]: a new VM and an empty cache (both modes
/// free synchronously: the cache is small next to a keyspace).
fn script_flush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let ok = match args.len() {
        2 => true,
        3 => super::is_opt(&args[2], "sync") || super::is_opt(&args[2], "async"),
        _ => false,
    };
    if !ok {
        return Err(CmdError::new(
            "ERR SCRIPT FLUSH only support SYNC|ASYNC option",
        ));
    }
    // The next script creates a fresh engine.
    ctx.ks.scripting = None;
    ctx.ks.script_stats = Default::default();
    ctx.out.ok();
    Ok(())
}

/// SCRIPT KILL
///
/// Served here only when no script runs (the keyspace lock was free):
/// NOTBUSY. While a script runs past `busy-reply-threshold`, connections
/// serve it without the lock (`server::busy`).
fn script_kill(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.shared.busy.kill_running(Kind::Eval)?;
    ctx.out.ok();
    Ok(())
}

/// SCRIPT LOAD script
fn script_load(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sha = with_engine(ctx, |_, sc| sc.create(&args[2]))?;
    ctx.out.bulk(sha.as_bytes());
    Ok(())
}

/// SCRIPT HELP
fn script_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    super::args::help_reply(
        ctx,
        "SCRIPT",
        &[
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    );
    Ok(())
}
