//! Generic key commands.

use super::{flags::*, CmdResult, Command, Ctx, Doc};
use bytes::Bytes;

pub static COMMANDS: &[Command] = &[Command {
    name: "del",
    arity: -2,
    flags: WRITE,
    first_key: 1,
    last_key: -1,
    key_step: 1,
    acl: &["@keyspace", "@write", "@slow"],
    doc: Doc {
        summary: "Delete a key",
        since: "1.0.0",
        group: "generic",
        complexity: "O(N) where N is the number of keys that will be removed.",
    },
    handler: Some(del),
    ..Command::DEFAULT
}];

/// DEL key [key ...]
fn del(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let db = ctx.client.db;
    let mut n = 0;
    for k in &args[1..] {
        if ctx.ks.delete(db, k, ctx.now_ms) {
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}
