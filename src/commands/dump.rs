//! DUMP and RESTORE (Redis's cluster.c): a key's value in Redis 7.0's RDB
//! serialization (`crate::rdb`), so payloads move between redlog and
//! redis-server in both directions.
//!
//! RESTORE inserts an ordinary entry: the keyspace's effect capture logs it
//! as the key's final state (a `Set` with its absolute expiry), so it is
//! durable like any write; a restored stream is a new stream whose entries
//! are written to its own log before the key points at it.

use super::{arg_i64, is_opt, CmdError, CmdResult, Ctx, Handler};
use crate::db::notify::GENERIC;
use crate::db::Value;
use crate::rdb::{self, RdbValue, Reader};
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("dump", dump),
    ("restore", restore),
    ("restore-asking", restore),
];

/// The thresholds loaded values are converted by (the live config).
pub fn limits(ctx: &Ctx) -> rdb::value::Limits {
    let c = ctx.shared.config.read();
    rdb::value::Limits {
        hash: crate::db::hash::HashLimits {
            max_entries: c.hash_max_listpack_entries,
            max_value: c.hash_max_listpack_value,
        },
        zset: c.zset_limits,
        set_max_intset: c.set_max_intset_entries,
    }
}

/// DUMP key
fn dump(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let touch = !ctx.client.no_touch;
    let Some(e) = ctx.ks.lookup(db, &args[1], now, touch) else {
        ctx.out.null();
        return Ok(());
    };
    let payload = payload(&e.value)?;
    ctx.out.bulk(&payload);
    Ok(())
}

/// A value's DUMP payload (Redis's `createDumpPayload`), also MIGRATE's.
pub fn payload(v: &Value) -> Result<Vec<u8>, CmdError> {
    match v {
        Value::Stream(s) => rdb::stream::dump(s).map_err(|e| CmdError::new(format!("ERR {e}"))),
        v => rdb::value::dump_value(v).ok_or_else(|| CmdError::new("ERR cannot dump value")),
    }
}

fn bad_format() -> CmdError {
    CmdError::new("ERR Bad data format")
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds]
/// [FREQ frequency]
fn restore(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (i64, i64) = (-1, -1);
    let mut j = 4;
    while j < args.len() {
        let more = args.len() - j - 1;
        if is_opt(&args[j], "replace") {
            replace = true;
        } else if is_opt(&args[j], "absttl") {
            absttl = true;
        } else if is_opt(&args[j], "idletime") && more >= 1 && freq == -1 {
            idle = arg_i64(&args[j + 1])?;
            if idle < 0 {
                return Err(CmdError::new("ERR Invalid IDLETIME value, must be >= 0"));
            }
            j += 1;
        } else if is_opt(&args[j], "freq") && more >= 1 && idle == -1 {
            freq = arg_i64(&args[j + 1])?;
            if !(0..=255).contains(&freq) {
                return Err(CmdError::new(
                    "ERR Invalid FREQ value, must be >= 0 and <= 255",
                ));
            }
            j += 1;
        } else {
            return Err(CmdError::syntax());
        }
        j += 1;
    }
    let key = &args[1];
    if !replace && ctx.ks.lookup_write(db, key, now).is_some() {
        return Err(CmdError::new("BUSYKEY Target key name already exists."));
    }
    let ttl = arg_i64(&args[2])?;
    if ttl < 0 {
        return Err(CmdError::new("ERR Invalid TTL value, must be >= 0"));
    }
    if rdb::check_envelope(&args[3]).is_none() {
        return Err(CmdError::new(
            "ERR DUMP payload version or checksum are wrong",
        ));
    }
    // Redis reads the object from the whole argument, footer included
    // (`rioInitWithBuffer(&payload, c->argv[3]->ptr)`), and ignores what
    // follows it.
    let decoded = rdb::read_value(&mut Reader::new(&args[3])).map_err(|_| bad_format())?;
    let value = match decoded {
        RdbValue::Stream(s) => {
            Value::Stream(rdb::stream::create(&ctx.shared.streams, &s).map_err(|_| bad_format())?)
        }
        v => v.into_value(&limits(ctx)).map_err(|_| bad_format())?,
    };
    let deleted = replace && ctx.ks.dbs[db].remove(key).is_some();
    let mut expires_at_ms = ttl;
    if ttl != 0 && !absttl {
        expires_at_ms = ttl.wrapping_add(now as i64);
    }
    if ttl != 0 && expires_at_ms < now as i64 && !ctx.ks.expire.replica {
        // Already expired (Redis's `checkAlreadyExpired`, never on a
        // replica): not created; a replaced key stays deleted.
        if deleted {
            ctx.ks.stats.dirty += 1;
            ctx.notify(GENERIC, "del", db, key);
        }
        ctx.out.ok();
        return Ok(());
    }
    // A replica keeps a past expiry (0 would mean none).
    let at = if ttl == 0 {
        0
    } else {
        expires_at_ms.max(1) as u64
    };
    let mut entry = ctx.ks.entry(value, at);
    if ctx.ks.evict.cfg.policy.is_lfu() {
        if freq >= 0 {
            entry.lru = (entry.lru & !0xff) | freq as u32;
        }
    } else if idle >= 0 {
        let idle_s = u32::try_from(idle).unwrap_or(u32::MAX);
        entry.lru = ctx.ks.clock_s().wrapping_sub(idle_s);
    }
    ctx.ks.dbs[db].insert(key.clone(), entry);
    ctx.ks.stats.dirty += 1;
    ctx.notify(GENERIC, "restore", db, key);
    ctx.out.ok();
    Ok(())
}
