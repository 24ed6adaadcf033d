//! The handler side of blocking commands (BLPOP, BRPOP, BLMOVE,
//! BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP, XREAD and XREADGROUP
//! BLOCK): a handler that cannot serve now asks to block with [`block`]; the
//! server (`server::blocking`) registers the request after the command,
//! serves it when a key becomes ready and delivers its reply. The whole
//! design is described there.
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

use super::{CmdError, Ctx};
use crate::protocol::Out;
use bytes::Bytes;

/// The unit of a timeout argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// BLPOP & co.: a float number of seconds.
    Seconds,
    /// XREAD BLOCK: an integer number of milliseconds.
    Millis,
}

/// The null a blocked command answers on timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Null {
    /// `*-1` / `_` (every blocking command in Redis 7.0, BLMOVE included).
    Array,
    /// `$-1` / `_`.
    Bulk,
}

/// What a handler asks for when it must block.
#[derive(Debug)]
pub struct BlockRequest {
    pub args: Vec<Bytes>,
    pub keys: Vec<Bytes>,
    /// Absolute Unix ms; 0 waits forever.
    pub deadline_ms: u64,
    pub wants: &'static str,
    pub timeout: Null,
}

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
