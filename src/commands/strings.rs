//! String commands.

use super::{flags::*, CmdError, CmdResult, Command, Ctx, Doc};
use crate::db::Value;
use bytes::Bytes;

pub static COMMANDS: &[Command] = &[
    Command {
        name: "get",
        arity: 2,
        flags: READONLY | FAST,
        first_key: 1,
        last_key: 1,
        key_step: 1,
        acl: &["@read", "@string", "@fast"],
        doc: Doc {
            summary: "Get the value of a key",
            since: "1.0.0",
            group: "string",
            complexity: "O(1)",
        },
        handler: Some(get),
        ..Command::DEFAULT
    },
    Command {
        name: "set",
        arity: -3,
        flags: WRITE | DENYOOM,
        first_key: 1,
        last_key: 1,
        key_step: 1,
        acl: &["@write", "@string", "@slow"],
        doc: Doc {
            summary: "Set the string value of a key",
            since: "1.0.0",
            group: "string",
            complexity: "O(1)",
        },
        handler: Some(set),
        ..Command::DEFAULT
    },
];

/// GET key
fn get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let touch = !ctx.client.no_touch;
    match ctx.ks.lookup(ctx.client.db, &args[1], ctx.now_ms, touch) {
        None => ctx.out.null(),
        Some(e) => match &e.value {
            Value::Str(s) => ctx.out.bulk(&s.data),
            #[allow(unreachable_patterns)]
            _ => return Err(CmdError::wrong_type()),
        },
    }
    Ok(())
}

/// SET key value
fn set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() != 3 {
        return Err(CmdError::syntax());
    }
    let db = ctx.client.db;
    ctx.ks
        .set(db, args[1].clone(), Value::str(args[2].to_vec()), 0);
    ctx.out.ok();
    Ok(())
}
