//! Server commands: COMMAND, INFO, CONFIG, DBSIZE, FLUSHDB, FLUSHALL, TIME,
//! LASTSAVE, SHUTDOWN, SWAPDB.

use super::{flags::*, CmdResult, Command, Ctx, Doc};
use bytes::Bytes;

pub static COMMANDS: &[Command] = &[Command {
    name: "dbsize",
    arity: 1,
    flags: READONLY | FAST,
    acl: &["@keyspace", "@read", "@fast"],
    doc: Doc {
        summary: "Return the number of keys in the selected database",
        since: "1.0.0",
        group: "server",
        complexity: "O(1)",
    },
    handler: Some(dbsize),
    ..Command::DEFAULT
}];

/// DBSIZE
fn dbsize(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let n = ctx.ks.dbs[ctx.client.db].len();
    ctx.out.int(n as i64);
    Ok(())
}
