//! Connection commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, RESET, CLIENT.

use super::{arg_i64, flags::*, CmdError, CmdResult, Command, Ctx, Doc};
use crate::db::DATABASES;
use bytes::Bytes;

pub static COMMANDS: &[Command] = &[
    Command {
        name: "ping",
        arity: -1,
        flags: FAST,
        acl: &["@fast", "@connection"],
        doc: Doc {
            summary: "Ping the server",
            since: "1.0.0",
            group: "connection",
            complexity: "O(1)",
        },
        handler: Some(ping),
        ..Command::DEFAULT
    },
    Command {
        name: "echo",
        arity: 2,
        flags: FAST,
        acl: &["@fast", "@connection"],
        doc: Doc {
            summary: "Echo the given string",
            since: "1.0.0",
            group: "connection",
            complexity: "O(1)",
        },
        handler: Some(echo),
        ..Command::DEFAULT
    },
    Command {
        name: "quit",
        arity: -1,
        flags: ALLOW_BUSY | NOSCRIPT | LOADING | STALE | FAST | NO_AUTH,
        acl: &["@fast", "@connection"],
        doc: Doc {
            summary: "Close the connection",
            since: "1.0.0",
            group: "connection",
            complexity: "O(1)",
        },
        handler: Some(quit),
        ..Command::DEFAULT
    },
    Command {
        name: "select",
        arity: 2,
        flags: LOADING | STALE | FAST,
        acl: &["@fast", "@connection"],
        doc: Doc {
            summary: "Change the selected database for the current connection",
            since: "1.0.0",
            group: "connection",
            complexity: "O(1)",
        },
        handler: Some(select),
        ..Command::DEFAULT
    },
];

/// PING [message]
fn ping(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match args.len() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(&args[1]),
        _ => return Err(CmdError::wrong_args("ping")),
    }
    Ok(())
}

/// ECHO message
fn echo(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.out.bulk(&args[1]);
    Ok(())
}

/// QUIT
fn quit(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.out.ok();
    ctx.client.close_after_reply = true;
    Ok(())
}

/// SELECT index
fn select(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = arg_i64(&args[1])
        .map_err(|_| CmdError::new("ERR value is not an integer or out of range"))?;
    if n < 0 || n >= DATABASES as i64 {
        return Err(CmdError::new("ERR DB index is out of range"));
    }
    ctx.client.db = n as usize;
    ctx.client.handle.meta.lock().db = n as usize;
    ctx.out.ok();
    Ok(())
}
