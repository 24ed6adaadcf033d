//! FUNCTION (LOAD, DELETE, FLUSH, LIST, DUMP, RESTORE, STATS, HELP), FCALL
//! and FCALL_RO, as Redis 7.0's `functions.c`. The engine and the library
//! set are `crate::commands::lua::functions`, kept in `Keyspace::functions`;
//! every change to the set is logged as a FUNCTION effect (WAL tags 80-83).

use super::{is_opt, CmdError, CmdResult, Ctx, Handler};
use crate::commands::lua::functions::{parse_payload, Functions, RestorePolicy, ENGINE};
use crate::commands::lua::script_flags;
use crate::db::effect::Effect;
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("fcall", fcall),
    ("fcall_ro", fcall_ro),
    ("function|delete", function_delete),
    ("function|dump", function_dump),
    ("function|flush", function_flush),
    ("function|help", function_help),
    ("function|kill", function_kill),
    ("function|list", function_list),
    ("function|load", function_load),
    ("function|restore", function_restore),
    ("function|stats", function_stats),
];

fn refresh_stats(ctx: &mut Ctx) {
    ctx.ks.function_stats = ctx.ks.functions.stats();
}

/// FUNCTION LOAD [REPLACE] code
fn function_load(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut replace = false;
    let mut pos = 2;
    while pos < args.len() - 1 {
        let a = &args[pos];
        pos += 1;
        if is_opt(a, "replace") {
            replace = true;
            continue;
        }
        return Err(CmdError::new(format!(
            "ERR Unknown option given: {}",
            super::c_str_lossy(a)
        )));
    }
    if pos >= args.len() {
        return Err(CmdError::new("ERR Function code is missing"));
    }
    let code = &args[pos];
    let r = Functions::of_mut(ctx.ks).load(code, replace);
    refresh_stats(ctx);
    let name = r.map_err(|e| CmdError::new(format!("ERR {e}")))?;
    ctx.ks.log_global(Effect::FunctionLoad {
        replace,
        code: code.clone(),
    });
    ctx.out.bulk(&name);
    Ok(())
}

/// FUNCTION DELETE library-name
fn function_delete(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if !Functions::of_mut(ctx.ks).delete(&args[2]) {
        return Err(CmdError::new("ERR Library not found"));
    }
    refresh_stats(ctx);
    ctx.ks.log_global(Effect::FunctionDelete {
        name: args[2].clone(),
    });
    ctx.out.ok();
    Ok(())
}

/// FUNCTION FLUSH [ASYNC|SYNC] (both free at once: libraries are small).
fn function_flush(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(subcommand_syntax(&args[1]));
    }
    if args.len() == 3 && !is_opt(&args[2], "sync") && !is_opt(&args[2], "async") {
        return Err(CmdError::new(
            "ERR FUNCTION FLUSH only supports SYNC|ASYNC option",
        ));
    }
    Functions::of_mut(ctx.ks).flush();
    refresh_stats(ctx);
    ctx.ks.log_global(Effect::FunctionFlush);
    ctx.out.ok();
    Ok(())
}

fn subcommand_syntax(sub: &[u8]) -> CmdError {
    let sub = super::c_str_lossy(sub);
    CmdError::new(format!(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try FUNCTION HELP."
    ))
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE]
fn function_list(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut with_code = false;
    let mut pattern: Option<&Bytes> = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if !with_code && is_opt(a, "withcode") {
            with_code = true;
            i += 1;
            continue;
        }
        if pattern.is_none() && is_opt(a, "libraryname") {
            if i >= args.len() - 1 {
                return Err(CmdError::new("ERR library name argument was not given"));
            }
            pattern = Some(&args[i + 1]);
            i += 2;
            continue;
        }
        return Err(CmdError::new(format!(
            "ERR Unknown argument {}",
            super::c_str_lossy(a)
        )));
    }
    let libs: Vec<_> = Functions::of(ctx.ks)
        .libraries()
        .filter(|l| pattern.is_none_or(|p| crate::glob::glob_match(p, &l.name, true)))
        .collect();
    let out = &mut *ctx.out;
    out.array(libs.len());
    for lib in libs {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(&lib.name);
        out.bulk(b"engine");
        out.bulk(ENGINE.as_bytes());
        out.bulk(b"functions");
        out.array(lib.functions.len());
        for f in lib.functions.values() {
            out.map(3);
            out.bulk(b"name");
            out.bulk(&f.name);
            out.bulk(b"description");
            match &f.desc {
                Some(d) => out.bulk(d),
                None => out.null(),
            }
            out.bulk(b"flags");
            let names: Vec<&str> = script_flags::NAMES
                .iter()
                .filter(|(bit, _)| f.flags & bit != 0)
                .map(|(_, n)| *n)
                .collect();
            out.set(names.len());
            for n in names {
                out.simple(n);
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&lib.code);
        }
    }
    Ok(())
}

/// FUNCTION DUMP
fn function_dump(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let payload = Functions::of(ctx.ks).dump();
    ctx.out.bulk(&payload);
    Ok(())
}

/// FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]
fn function_restore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 4 {
        return Err(subcommand_syntax(&args[1]));
    }
    let policy =
        match args.get(3) {
            None => RestorePolicy::Append,
            Some(p) if is_opt(p, "append") => RestorePolicy::Append,
            Some(p) if is_opt(p, "replace") => RestorePolicy::Replace,
            Some(p) if is_opt(p, "flush") => RestorePolicy::Flush,
            Some(_) => return Err(CmdError::new(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            )),
        };
    let codes = parse_payload(&args[2]).map_err(|e| CmdError::new(format!("ERR {e}")))?;
    let r = Functions::of_mut(ctx.ks).restore(&codes, policy);
    refresh_stats(ctx);
    r.map_err(|e| CmdError::new(format!("ERR {e}")))?;
    ctx.ks.log_global(Effect::FunctionRestore {
        policy: policy.code(),
        codes,
    });
    ctx.out.ok();
    Ok(())
}

/// FUNCTION KILL
///
/// Served here only when no function runs (the keyspace lock was free):
/// NOTBUSY. While a function runs past `busy-reply-threshold`, connections
/// serve it without the lock (`server::busy`).
fn function_kill(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.shared
        .busy
        .kill_running(crate::node::busy::Kind::Function)?;
    ctx.out.ok();
    Ok(())
}

/// FUNCTION STATS with the keyspace lock: no function runs, so
/// `running_script` is nil (during a busy function `server::busy` answers
/// it without the lock, with the running function).
fn function_stats(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let st = ctx.ks.function_stats;
    let out = &mut *ctx.out;
    out.map(2);
    out.bulk(b"running_script");
    out.null();
    out.bulk(b"engines");
    out.map(1);
    out.bulk(ENGINE.as_bytes());
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(st.libraries as i64);
    out.bulk(b"functions_count");
    out.int(st.functions as i64);
    Ok(())
}

/// FUNCTION HELP
fn function_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    super::args::help_reply(
        ctx,
        "FUNCTION",
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    );
    Ok(())
}

fn fcall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    fcall_generic(ctx, args, false)
}

fn fcall_ro(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    fcall_generic(ctx, args, true)
}

/// Redis's `fcallCommandGeneric` and `scriptPrepareForRun`.
fn fcall_generic(ctx: &mut Ctx, args: &[Bytes], ro: bool) -> CmdResult {
    let Some(flags) = ctx.ks.functions.flags_of(&args[1]) else {
        return Err(CmdError::new("ERR Function not found"));
    };
    let numkeys = crate::protocol::parse::parse_i64(&args[2])
        .ok_or_else(|| CmdError::new("ERR Bad number of keys provided"))?;
    if numkeys > args.len() as i64 - 3 {
        return Err(CmdError::new(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Err(CmdError::new("ERR Number of keys can't be negative"));
    }
    let nk = numkeys as usize;
    if flags & script_flags::NO_WRITES == 0 {
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
    let read_only = ro || flags & script_flags::NO_WRITES != 0;
    // The library set is taken out while the function runs (its commands
    // borrow the keyspace); FUNCTION commands are `noscript`, so nothing
    // looks for it meanwhile but INFO, which reads `function_stats`.
    let mut f = std::mem::replace(&mut ctx.ks.functions, Box::new(Functions::default()));
    let r = f
        .as_any_mut()
        .downcast_mut::<Functions>()
        .expect("Keyspace::functions is scripting::functions::Functions")
        .call(ctx, args, &args[3..3 + nk], &args[3 + nk..], read_only);
    ctx.ks.functions = f;
    // Only the VM's heap changed: the library set cannot change inside a
    // function (FUNCTION is `noscript`).
    ctx.ks.function_stats.vm_memory = Functions::of(ctx.ks).vm_memory();
    r
}
