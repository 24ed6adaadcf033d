//! The handler side of blocking commands (BLPOP, BRPOP, BLMOVE,
//! BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP, XREAD and XREADGROUP
//! BLOCK): a handler that cannot serve now asks to block with [`block`]; the
//! connection (`server::blocking`) registers the request after the
//! command; [`serve_ready`] re-runs it when a key becomes ready, and the
//! connection delivers its reply ([`Wake`]) once the batch is durable. The
//! whole design is described in `server::blocking`.
//!
//! # Adding a blocking command
//!
//! Write the handler as the non-blocking form; where Redis calls
//! `blockForKeys`, do:
//!
//! ```text
//! let deadline_ms = blocking::parse_timeout(&args[i], Unit::Seconds, ctx.now_ms)?; // first, as Redis
//! // ... serve if possible, return ...
//! if blocking::denied(ctx) { ctx.out.null_array(); return Ok(()); }
//! blocking::block(ctx, args, keys, deadline_ms, "zset", Null::Array);
//! ```
//!
//! and have every writer that makes an existing key able to serve (e.g.
//! XADD) call `ctx.ks.signal_key_ready(db, key)`. The handler must be
//! re-runnable: when served it runs again with the same arguments and
//! must either reply or call `block` again.

use super::{table, CmdError, Ctx};
use crate::db::blocking::WaiterReply;
use crate::db::{now_ms, Keyspace};
use crate::node::{Client, Shared};
use crate::protocol::Out;
use bytes::Bytes;
use tokio::sync::oneshot;

/// The unit of a timeout argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// BLPOP & co.: a float number of seconds.
    Seconds,
    /// XREAD BLOCK: an integer number of milliseconds.
    Millis,
}

pub use crate::db::blocking::{BlockRequest, Null};

/// Redis's `getTimeoutFromObjectOrReply`: the absolute deadline in Unix
/// ms, 0 for none. Seconds are parsed as a long double and truncated to
/// whole milliseconds (so 0.0005 blocks forever, as in Redis); values whose
/// millisecond count overflows a 64-bit integer become negative there and
/// are refused as negative.
pub fn parse_timeout(arg: &[u8], unit: Unit, now_ms: u64) -> Result<u64, CmdError> {
    let ms: i64 = match unit {
        Unit::Seconds => {
            let ld = super::strings::parse_long_double(arg)
                .ok_or_else(|| CmdError::new("ERR timeout is not a float or out of range"))?;
            let v = ld * 1000.0;
            // x87 `fistp` of an out-of-range value gives LLONG_MIN.
            let two_63 = i64::MAX as f64; // 2^63 exactly
            if !(v < two_63 && v >= -two_63) {
                i64::MIN
            } else {
                v.trunc() as i64
            }
        }
        Unit::Millis => super::arg_i64(arg)
            .map_err(|_| CmdError::new("ERR timeout is not an integer or out of range"))?,
    };
    if ms < 0 {
        return Err(CmdError::new("ERR timeout is negative"));
    }
    if ms == 0 {
        return Ok(0);
    }
    Ok(now_ms.saturating_add(ms as u64))
}

/// True when the command must not block (inside EXEC, or from the
/// primary's link): the handler then answers as on timeout.
pub fn denied(ctx: &Ctx) -> bool {
    ctx.client.in_exec || ctx.client.master
}

/// Asks to block `ctx.client` on `keys` until one holds a `wants` value
/// (a TYPE name) or `deadline_ms` (0: never) passes; `args` is the command
/// to re-run then. The handler writes no reply.
pub fn block(
    ctx: &mut Ctx,
    args: &[Bytes],
    keys: Vec<Bytes>,
    deadline_ms: u64,
    wants: &'static str,
    timeout: Null,
) {
    ctx.client.block = Some(BlockRequest {
        args: args.to_vec(),
        keys,
        deadline_ms,
        wants,
        timeout,
    });
}

/// The bytes of `kind`'s null in the client's protocol (the reply a
/// waiter gets on timeout).
pub fn null_reply(kind: Null, resp3: bool) -> Vec<u8> {
    let mut o = Out::new(resp3);
    match kind {
        Null::Array => o.null_array(),
        Null::Bulk => o.null(),
    }
    o.buf
}

/// A served waiter's reply, sent once the batch is durable.
#[derive(Debug)]
pub struct Wake {
    tx: oneshot::Sender<WaiterReply>,
    reply: Vec<u8>,
}

impl Wake {
    /// Delivers the reply, or `error` instead (the batch's WAL write
    /// failed, so the effect must not be acknowledged).
    pub fn send(self, error: Option<&str>) {
        let reply = match error {
            None => self.reply,
            Some(e) => {
                let mut o = Out::new(false);
                o.error(e);
                o.buf
            }
        };
        let _ = self.tx.send(WaiterReply {
            bytes: reply,
            close: false,
        });
    }
}

/// Serves the waiters of every ready key (see the module comment).
pub fn serve_ready(shared: &Shared, ks: &mut Keyspace, wakes: &mut Vec<Wake>) {
    while let Some((db, key)) = ks.take_ready_key() {
        for id in ks.dbs[db].waiters_on(&key) {
            let wants = match ks.waiter(id) {
                Some(w) => w.wants,
                None => continue,
            };
            // A blocked XREADGROUP ends with an error when its key or its
            // group is gone (Redis 7.0); other waiters keep waiting.
            let gone = ks
                .waiter(id)
                .and_then(|w| super::stream_common::blocked_group_gone(ks, db, &key, &w.args));
            if let Some(msg) = gone {
                if let Some(w) = ks.remove_waiter(id) {
                    let mut o = Out::new(w.resp3);
                    o.error(msg);
                    wakes.push(Wake {
                        tx: w.tx,
                        reply: o.buf,
                    });
                }
                continue;
            }
            match ks.dbs[db].peek(&key) {
                None => continue,
                Some(e) if e.value.type_name() != wants => continue,
                Some(_) => {}
            }
            let Some(handle) = shared.clients.get(&id).map(|h| h.clone()) else {
                // Killed meanwhile: its task unregisters too; do it now so
                // it takes nothing.
                ks.remove_waiter(id);
                continue;
            };
            let Some(w) = ks.waiter(id) else { continue };
            let (args, resp3) = (w.args.clone(), w.resp3);
            let mut client = Client::new(handle, true);
            client.db = w.db;
            client.no_touch = w.no_touch;
            let mut out = Out::new(resp3);
            // `resolve`: a blocking subcommand (LOGPARSE TAIL FOLLOW) runs
            // its own handler.
            let Some(handler) = table().resolve(&args).ok().and_then(super::handler) else {
                ks.remove_waiter(id);
                continue;
            };
            // The handler directly, not `commands::call`: the command was
            // counted once in the statistics when it blocked (as Redis
            // counts a blocked command once).
            let r = {
                let mut ctx = Ctx {
                    ks,
                    shared,
                    client: &mut client,
                    out: &mut out,
                    now_ms: now_ms(),
                };
                let r = handler(&mut ctx, &args);
                ctx.ks.end_command();
                r
            };
            if client.block.is_some() {
                continue;
            }
            if let Err(e) = r {
                shared.error_reply(&mut out, &e.0);
            }
            if let Some(w) = ks.remove_waiter(id) {
                wakes.push(Wake {
                    tx: w.tx,
                    reply: out.buf,
                });
            }
        }
    }
}

/// CLIENT UNBLOCK: answers the blocked client with its timeout reply or
/// with the UNBLOCKED error. False when `id` is not blocked.
pub fn unblock(ks: &mut Keyspace, id: u64, error: bool) -> bool {
    let Some(w) = ks.remove_waiter(id) else {
        return false;
    };
    let reply = if error {
        b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n".to_vec()
    } else {
        w.timeout_reply
    };
    let _ = w.tx.send(WaiterReply {
        bytes: reply,
        close: false,
    });
    true
}

/// The error Redis 7.0's `disconnectAllBlockedClients` answers.
pub const UNBLOCKED_ROLE_CHANGE: &str =
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)";

/// Redis 7.0's `disconnectAllBlockedClients` (this server becomes a
/// replica: REPLICAOF, FAILOVER's switch, a cluster role change): every
/// client blocked in BLPOP & co., XREAD / XREADGROUP BLOCK, LOGPARSE TAIL
/// FOLLOW, gets [`UNBLOCKED_ROLE_CHANGE`] and its connection is closed
/// after that reply. Clients a pause postponed are not blocked here
/// (they run their command again when the pause ends); WAIT is answered
/// the same by its own wait (`replication::primary::wait`). Run under the
/// keyspace lock. The errors count in INFO errorstats, as Redis's.
pub fn disconnect_all(shared: &Shared, ks: &mut Keyspace) {
    for id in ks.waiter_ids() {
        if let Some(w) = ks.remove_waiter(id) {
            let mut o = Out::new(w.resp3);
            shared.error_reply(&mut o, UNBLOCKED_ROLE_CHANGE.as_bytes());
            let _ = w.tx.send(WaiterReply {
                bytes: o.buf,
                close: true,
            });
        }
    }
}
