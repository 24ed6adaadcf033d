//! DEBUG (Redis's debug.c), the subcommands that mean something in redlog:
//! SLEEP, OBJECT, SET-ACTIVE-EXPIRE, RELOAD, ERROR, LOG, HELP (and redlog's LOGBLOCKS). Everything else
//! (crash helpers, RDB/AOF, ziplist/listpack internals redlog does not
//! have) answers Redis's unknown-subcommand error.
//!
//! The gate (`enable-debug-command`: `no` refuses DEBUG, `local` allows it
//! from loopback and Unix-socket clients only, `yes` everywhere) is checked
//! in `server::execute` before authentication, as Redis's `processCommand`
//! checks CMD_PROTECTED commands: see `allowed`.

use super::{is_kw, CmdError, CmdResult, Ctx, Handler};
use crate::db::Value;
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[("debug", debug)];

/// Redis's rejection of a protected command that its option disallows.
pub const NOT_ALLOWED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

/// Redis's `allowProtectedAction` for `enable-debug-command`: `yes`, or
/// `local` and the client is local (a loopback address or a Unix socket).
pub fn allowed(setting: &str, local: bool) -> bool {
    match setting {
        "yes" => true,
        "local" => local,
        _ => false,
    }
}

fn unknown(sub: &[u8]) -> CmdError {
    let sub = &sub[..sub.len().min(128)];
    CmdError::new(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
        String::from_utf8_lossy(sub)
    ))
}

/// DEBUG <subcommand> [<arg> ...]
fn debug(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let n = args.len();
    if n == 2 && is_kw(sub, "help") {
        help(ctx);
    } else if n == 3 && is_kw(sub, "sleep") {
        // strtod, as Redis: anything unparsable sleeps 0 seconds.
        let secs = super::zsets::float::strtod(&args[2]).value;
        let us = (secs * 1_000_000.0) as u64;
        if us > 0 {
            std::thread::sleep(std::time::Duration::from_micros(us));
        }
        ctx.out.ok();
    } else if n == 3 && is_kw(sub, "object") {
        object(ctx, &args[2])?;
    } else if n == 3 && is_kw(sub, "set-active-expire") {
        ctx.ks.expire.disabled = super::atoi(&args[2]) == 0;
        ctx.out.ok();
    } else if n == 3 && is_kw(sub, "error") {
        // The argument verbatim as the error (newlines become spaces).
        return Err(CmdError::from_bytes(args[2].to_vec()));
    } else if is_kw(sub, "reload") {
        reload(ctx, &args[2..])?;
    } else if n == 3 && is_kw(sub, "logblocks") {
        logblocks(ctx, &args[2])?;
    } else if n == 3 && is_kw(sub, "log") {
        tracing::warn!("DEBUG LOG: {}", String::from_utf8_lossy(&args[2]));
        ctx.out.ok();
    } else {
        return Err(unknown(sub));
    }
    Ok(())
}

/// DEBUG RELOAD [MERGE] [NOFLUSH] [NOSAVE]: compact (write a base) and
/// rebuild the keyspace from disk, after the keyspace lock is released
/// (the connection performs `PendingOp::Reload`, see
/// `Shared::debug_reload`).
fn reload(ctx: &mut Ctx, opts: &[Bytes]) -> CmdResult {
    let (mut save, mut flush, mut merge) = (true, true, false);
    for o in opts {
        if is_kw(o, "merge") {
            merge = true;
        } else if is_kw(o, "noflush") {
            flush = false;
        } else if is_kw(o, "nosave") {
            save = false;
        } else {
            return Err(CmdError::new(
                "ERR DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
            ));
        }
    }
    if ctx.shared.persist.is_none() {
        return Err(CmdError::new("ERR persistence is disabled (appendonly no)"));
    }
    // The reload runs after the batch, off the keyspace lock: inside EXEC
    // its reply would land after EXEC's array (Redis reloads in place).
    if ctx.client.in_exec {
        return Err(CmdError::new(
            "ERR DEBUG RELOAD cannot run inside MULTI/EXEC in redlog",
        ));
    }
    ctx.client.pending = Some(crate::node::PendingOp::Reload { save, flush, merge });
    Ok(())
}

/// DEBUG OBJECT key: Redis's line with redlog's facts: the entry's address,
/// refcount, encoding, `serializedlength` (the value's size in the WAL's
/// encoding: redlog has no RDB), the access clock and idle seconds; lists
/// add the quicklist fields (nodes of at most 4 KiB: `ql_listpack_max:-1`,
/// never compressed).
fn object(ctx: &mut Ctx, key: &[u8]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let clock = ctx.ks.clock_s();
    let Some(e) = ctx.ks.lookup_nonotify(db, key, now, false) else {
        return Err(CmdError::new("ERR no such key"));
    };
    let refcount = match &e.value {
        Value::Str(s) => s.refcount(),
        _ => 1,
    };
    let mut line = format!(
        "Value at:{:p} refcount:{} encoding:{} serializedlength:{} lru:{} lru_seconds_idle:{}",
        e as *const _,
        refcount,
        e.value.encoding(),
        crate::db::effect::serialized_len(&e.value),
        e.lru,
        crate::db::evict::idle_ms(e.lru, clock) / 1000,
    );
    if let Value::List(l) = &e.value {
        let (nodes, bytes) = l.node_stats();
        let avg = if nodes == 0 {
            0.0
        } else {
            l.len() as f64 / nodes as f64
        };
        line.push_str(&format!(
            " ql_nodes:{nodes} ql_avg_node:{avg:.2} ql_listpack_max:-1 ql_compressed:0 ql_uncompressed_size:{bytes}"
        ));
    }
    ctx.out.simple(&line);
    Ok(())
}

/// DEBUG LOGBLOCKS <key> (redlog's own, not in DEBUG HELP): the compressed
/// sealed segments of a stream's entry log (LOGPARSE streams): segments,
/// blocks, bytes, blocks decoded and blocks GREP skipped since the stream
/// was opened.
fn logblocks(ctx: &mut Ctx, key: &[u8]) -> CmdResult {
    let Some(s) = super::stream_common::read_stream(ctx, key)? else {
        return Err(CmdError::new("ERR no such key"));
    };
    let st = s
        .lock()
        .map_err(super::stream_common::storage_err)?
        .compress_stats();
    ctx.out.map(5);
    for (name, v) in [
        ("segments", st.segments),
        ("blocks", st.blocks),
        ("bytes", st.bytes),
        ("blocks_decoded", st.decoded),
        ("blocks_skipped", st.skipped),
    ] {
        ctx.out.bulk(name.as_bytes());
        ctx.out.int(v as i64);
    }
    Ok(())
}

/// DEBUG HELP: Redis's text for the subcommands redlog has.
fn help(ctx: &mut Ctx) {
    super::args::help_reply(
        ctx,
        "DEBUG",
        &[
            "ERROR <string>",
            "    Return a Redis protocol error with <string> as message. Useful for clients",
            "    unit tests to simulate Redis errors.",
            "LOG <message>",
            "    Write <message> to the server log.",
            "OBJECT <key>",
            "    Show low level info about `key` and associated value.",
            "RELOAD [option ...]",
            "    Save the RDB on disk and reload it back to memory. Valid <option> values:",
            "    * MERGE: conflicting keys will be loaded from RDB.",
            "    * NOFLUSH: the existing database will not be removed before load, but",
            "      conflicting keys make the reload fail (the dataset is left as it was).",
            "    * NOSAVE: the database will be loaded from an existing RDB file.",
            "    Examples:",
            "    * DEBUG RELOAD: verify that the server is able to persist, flush and reload",
            "      the database.",
            "    * DEBUG RELOAD NOSAVE: replace the current database with the contents of an",
            "      existing RDB file.",
            "    * DEBUG RELOAD NOSAVE NOFLUSH MERGE: add the contents of an existing RDB",
            "      file to the database.",
            "SET-ACTIVE-EXPIRE <0|1>",
            "    Setting it to 0 disables expiring keys in background when they are not",
            "    accessed (otherwise the Redis behavior). Setting it to 1 reenables back the",
            "    default.",
            "SLEEP <seconds>",
            "    Stop the server for <seconds>. Decimals allowed.",
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_means_loopback() {
        assert!(allowed("local", true) && !allowed("local", false));
        assert!(allowed("yes", false) && !allowed("no", true));
    }
}
