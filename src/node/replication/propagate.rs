//! A committed unit's effects as the Redis commands a replica applies: the
//! replication stream's content (see ARCHITECTURE.md "Replication").
//!
//! Every effect (`db::effect::Effect`) maps to commands redis-server 7.0
//! executes to the same state: a whole value as `SET k v [PXAT ms]`
//! (strings) or `RESTORE k ttl payload REPLACE [ABSTTL]` (collections, the
//! DUMP payload of the final value); operation effects as their commands
//! (RPUSH, LPOP k n, LSET, LREM, LTRIM, HSET, HDEL, SADD, SREM, ZADD with
//! the resulting scores, ZREM, APPEND, SETRANGE); LINSERT, which the
//! effect records as an absolute position, as a short EVAL that re-inserts
//! the list's tail (Redis has no LINSERT by index); expiries as PEXPIREAT
//! or PERSIST; FLUSHDB / FLUSHALL / SWAPDB; FUNCTION LOAD / DELETE / FLUSH
//! (a FUNCTION RESTORE as FLUSH and LOADs). A unit of more than one
//! command goes inside MULTI/EXEC; SELECT precedes a command whose database
//! is not the stream's current one.
//!
//! Stream changes are `Command` effects, sent verbatim: what Redis 7.0
//! propagates for the stream command (logged by the command itself,
//! `commands::stream_common::propagate`); the `Set` of a stream such a
//! command created is not sent as RESTORE (`created_by_command`).
//!
//! redlog-only effects (LOGPARSE formats and miners, a stream's ingest
//! state: `db::effect::record::is_redlog_only`) have no Redis command:
//! each goes as `PING <record>` (`db::effect::record`), which a
//! redis-server replica runs as a no-op and a redlog replica applies; a
//! stream with an ingest state sent whole (RESTORE, or the XADDs of the
//! INGEST that created it) is followed by a record of its `Set`, which
//! carries the format and the miner. XCONFIG (a stream's own retention)
//! logs itself as a `Command` effect with absolute settings, sent as a
//! record too. [`sync_records`] is the same state
//! for a full resync (RDB aux fields).

use crate::db::effect::{record, Effect};
use crate::db::Value;

/// `PING <record>` of one redlog-only effect.
fn record_ping(e: &Effect) -> Vec<Vec<u8>> {
    vec![
        b"PING".to_vec(),
        record::encode_effects(std::slice::from_ref(e)),
    ]
}

/// The redlog-only state of a whole dataset as record payloads, for a
/// full resync (RDB aux fields, `rdb_io::snapshot`): a reset, then per
/// format its spec (user formats) and its shared miner (when it learned
/// anything), then per stream with an ingest state its `Set`.
pub fn sync_records(ks: &crate::db::Keyspace) -> Vec<Vec<u8>> {
    let mut effects = Vec::new();
    for (name, spec) in ks.logparse.user_specs() {
        effects.push(Effect::LogFormatSet {
            name: name.into(),
            spec,
        });
    }
    for (name, state) in ks.logparse.miner_states() {
        effects.push(Effect::LogMinerState {
            name: name.into(),
            state: state.into(),
        });
    }
    for (i, db) in ks.dbs.iter().enumerate() {
        for (key, e) in db.iter() {
            if let Value::Stream(s) = &e.value {
                let key = bytes::Bytes::copy_from_slice(key);
                if s.0.ingest.lock().is_some() {
                    effects.push(Effect::Set {
                        db: i as u8,
                        key: key.clone(),
                        value: Value::Stream(s.clone()),
                        expires_at_ms: 0,
                    });
                }
                // Its own retention settings (XCONFIG), when it has any.
                // A stream that cannot be read fails the snapshot's DUMP
                // of it anyway.
                if let Ok(g) = s.lock() {
                    if g.retention_ms.is_some() || g.retention_bytes.is_some() {
                        effects.push(Effect::Command {
                            db: i as u8,
                            argv: record::xconfig_argv(key, g.retention_ms, g.retention_bytes),
                        });
                    }
                }
            }
        }
    }
    // The reset always: a replica's own formats the primary lacks go.
    let mut out = Vec::new();
    out.push(record::encode_reset());
    out.extend(
        effects
            .iter()
            .map(|e| record::encode_effects(std::slice::from_ref(e))),
    );
    out
}

/// Appends one command in RESP (`*n $len arg ...`).
pub fn put_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// One command of a unit: its database (None: any) and arguments.
type Cmd = (Option<u8>, Vec<Vec<u8>>);

/// The EVAL that inserts `ARGV[2]` at absolute position `ARGV[1]` of the
/// list `KEYS[1]`: pops the tail from that position, pushes the element,
/// pushes the tail back (deterministic, exact with duplicates).
const LINSERT_AT: &str = "local k=KEYS[1] local n=redis.call('llen',k)-tonumber(ARGV[1]) \
local t={} if n>0 then t=redis.call('rpop',k,n) end redis.call('rpush',k,ARGV[2]) \
for j=#t,1,-1 do redis.call('rpush',k,t[j]) end return 1";

fn num(n: impl ToString) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// A score as text a replica parses back to the same double (Rust's
/// shortest round-trip form; infinities as Redis spells them).
fn score(f: f64) -> Vec<u8> {
    if f == f64::INFINITY {
        b"inf".to_vec()
    } else if f == f64::NEG_INFINITY {
        b"-inf".to_vec()
    } else {
        format!("{f}").into_bytes()
    }
}

/// Why an effect has no command: its value cannot be dumped.
#[derive(Debug, thiserror::Error)]
pub enum PropagateError {
    #[error("cannot dump a stream: {0}")]
    Stream(#[from] crate::stream::StreamError),
    #[error("cannot dump value")]
    Value,
}

/// The DUMP payload of a value (streams read their entries from their log).
fn payload(v: &Value) -> Result<Vec<u8>, PropagateError> {
    match v {
        Value::Stream(s) => Ok(crate::rdb::stream::dump(s)?),
        v => crate::rdb::value::dump_value(v).ok_or(PropagateError::Value),
    }
}

fn with_keys(cmd: &[u8], key: &[u8], rest: impl IntoIterator<Item = Vec<u8>>) -> Vec<Vec<u8>> {
    let mut v = vec![cmd.to_vec(), key.to_vec()];
    v.extend(rest);
    v
}

/// The commands of one effect, appended to `cmds`.
fn effect_commands(e: &Effect, cmds: &mut Vec<Cmd>) -> Result<(), PropagateError> {
    let mut push = |db: Option<u8>, args: Vec<Vec<u8>>| cmds.push((db, args));
    match e {
        Effect::Set {
            db,
            key,
            value,
            expires_at_ms,
        } => match value {
            Value::Str(s) => {
                let mut a = with_keys(b"SET", key, [s.data.clone()]);
                if *expires_at_ms != 0 {
                    a.push(b"PXAT".to_vec());
                    a.push(num(expires_at_ms));
                }
                push(Some(*db), a);
            }
            // A stream no key holds any more (`primary::on_units` found
            // no live handle): a later Del or Set of the batch replaces
            // it, and its commands after this are covered (`StreamCover`).
            Value::Stream(s) if !s.is_open() => {}
            v => {
                let mut a = with_keys(b"RESTORE", key, [num(expires_at_ms), payload(v)?]);
                a.push(b"REPLACE".to_vec());
                if *expires_at_ms != 0 {
                    a.push(b"ABSTTL".to_vec());
                }
                push(Some(*db), a);
                if record::is_redlog_only(e) {
                    // Its ingest state, which the DUMP payload lacks.
                    push(None, record_ping(e));
                }
            }
        },
        Effect::Del { db, key } => push(Some(*db), with_keys(b"DEL", key, [])),
        Effect::Expire { db, key, at_ms } => {
            if *at_ms == 0 {
                push(Some(*db), with_keys(b"PERSIST", key, []));
            } else {
                push(Some(*db), with_keys(b"PEXPIREAT", key, [num(at_ms)]));
            }
        }
        Effect::FlushDb { db } => push(Some(*db), vec![b"FLUSHDB".to_vec()]),
        Effect::FlushAll => push(None, vec![b"FLUSHALL".to_vec()]),
        Effect::SwapDb { a, b } => push(None, vec![b"SWAPDB".to_vec(), num(a), num(b)]),
        Effect::Append { db, key, data } => {
            push(Some(*db), with_keys(b"APPEND", key, [data.to_vec()]))
        }
        Effect::SetRange {
            db,
            key,
            offset,
            data,
        } => push(
            Some(*db),
            with_keys(b"SETRANGE", key, [num(offset), data.to_vec()]),
        ),
        Effect::ZAdd { db, key, pairs, .. } => {
            let rest = pairs.iter().flat_map(|(m, s)| [score(*s), m.to_vec()]);
            push(Some(*db), with_keys(b"ZADD", key, rest));
        }
        Effect::ZRem { db, key, members } => push(
            Some(*db),
            with_keys(b"ZREM", key, members.iter().map(|m| m.to_vec())),
        ),
        Effect::HashSet { db, key, pairs, .. } => {
            let rest = pairs.iter().flat_map(|(f, v)| [f.to_vec(), v.to_vec()]);
            push(Some(*db), with_keys(b"HSET", key, rest));
        }
        Effect::HashDel { db, key, fields } => push(
            Some(*db),
            with_keys(b"HDEL", key, fields.iter().map(|f| f.to_vec())),
        ),
        Effect::SetAdd {
            db, key, members, ..
        } => push(
            Some(*db),
            with_keys(b"SADD", key, members.iter().map(|m| m.to_vec())),
        ),
        Effect::SetRem { db, key, members } => push(
            Some(*db),
            with_keys(b"SREM", key, members.iter().map(|m| m.to_vec())),
        ),
        Effect::ListPush {
            db,
            key,
            left,
            items,
        } => {
            let cmd: &[u8] = if *left { b"LPUSH" } else { b"RPUSH" };
            push(
                Some(*db),
                with_keys(cmd, key, items.iter().map(|i| i.to_vec())),
            );
        }
        Effect::ListPop {
            db,
            key,
            left,
            count,
        } => {
            let cmd: &[u8] = if *left { b"LPOP" } else { b"RPOP" };
            // One element: the bytes Redis propagates for LPOP / BLPOP.
            let n = (*count != 1).then(|| num(count));
            push(Some(*db), with_keys(cmd, key, n));
        }
        Effect::ListSet {
            db,
            key,
            index,
            value,
        } => push(
            Some(*db),
            with_keys(b"LSET", key, [num(index), value.to_vec()]),
        ),
        Effect::ListInsert {
            db,
            key,
            index,
            value,
        } => push(
            Some(*db),
            vec![
                b"EVAL".to_vec(),
                LINSERT_AT.as_bytes().to_vec(),
                b"1".to_vec(),
                key.to_vec(),
                num(index),
                value.to_vec(),
            ],
        ),
        Effect::ListRem {
            db,
            key,
            count,
            value,
        } => push(
            Some(*db),
            with_keys(b"LREM", key, [num(count), value.to_vec()]),
        ),
        Effect::ListTrim {
            db,
            key,
            start,
            end,
        } => {
            // The kept range `start..end` (end exclusive); an empty range
            // deletes the key, which a Del effect follows anyway.
            let stop = if end > start {
                num(end - 1)
            } else {
                b"-1".to_vec()
            };
            let start = if end > start {
                num(start)
            } else {
                b"1".to_vec()
            };
            push(Some(*db), with_keys(b"LTRIM", key, [start, stop]));
        }
        Effect::FunctionLoad { replace, code } => {
            let mut a = vec![b"FUNCTION".to_vec(), b"LOAD".to_vec()];
            if *replace {
                a.push(b"REPLACE".to_vec());
            }
            a.push(code.to_vec());
            push(None, a);
        }
        Effect::FunctionDelete { name } => push(
            None,
            vec![b"FUNCTION".to_vec(), b"DELETE".to_vec(), name.to_vec()],
        ),
        Effect::FunctionFlush => push(None, vec![b"FUNCTION".to_vec(), b"FLUSH".to_vec()]),
        Effect::FunctionRestore { policy, codes } => {
            // Policies as `scripting::functions::RestorePolicy`: 0 FLUSH,
            // 1 APPEND, 2 REPLACE.
            if *policy == 0 {
                push(None, vec![b"FUNCTION".to_vec(), b"FLUSH".to_vec()]);
            }
            for code in codes {
                let mut a = vec![b"FUNCTION".to_vec(), b"LOAD".to_vec()];
                if *policy == 2 {
                    a.push(b"REPLACE".to_vec());
                }
                a.push(code.to_vec());
                push(None, a);
            }
        }
        // redlog-only state: a record (module doc).
        Effect::LogFormatSet { .. }
        | Effect::LogFormatDel { .. }
        | Effect::LogMinerLearn { .. }
        | Effect::LogMinerState { .. }
        | Effect::StreamIngestLearn { .. } => push(None, record_ping(e)),
        // A replica's own bookkeeping of its primary's stream.
        Effect::ReplPosition { .. } => {}
        // What a stream command propagates, verbatim.
        Effect::Command { .. } if record::is_redlog_only(e) => push(None, record_ping(e)),
        Effect::Command { db, argv } => push(Some(*db), argv.iter().map(|a| a.to_vec()).collect()),
    }
    Ok(())
}

/// Whether `effects[i]` is the `Set` of a stream a stream command of the
/// same unit created (XADD, XGROUP CREATE ... MKSTREAM): the last effect
/// before it about that key is a `Command`. That command creates the
/// stream on the replica; a RESTORE of its snapshot (read now, at the end
/// of the batch) would also hold what later commands add.
fn created_by_command(effects: &[Effect], i: usize) -> bool {
    let Some(Effect::Set {
        db,
        key,
        value: Value::Stream(_),
        ..
    }) = effects.get(i)
    else {
        return false;
    };
    let same = |t: Option<(u8, &bytes::Bytes)>| t.is_some_and(|(d, k)| d == *db && k == key);
    for e in effects[..i].iter().rev() {
        if same(e.command_key()) {
            return true;
        }
        let whole_db = matches!(
            e,
            Effect::FlushDb { .. } | Effect::FlushAll | Effect::SwapDb { .. }
        );
        if same(e.target()) || whole_db {
            // Another change of the key, or a whole-database one.
            return false;
        }
    }
    false
}

/// The streams of a batch sent whole (`Set` as RESTORE) so far: (db, key).
///
/// A stream's RESTORE payload is read when the batch is propagated, so it
/// already holds every later change of the same batch to that stream: the
/// `Command` effects on the key after its `Set` are covered by it and not
/// sent (the replica would apply them twice). The cover of a key ends with
/// a `Del` (DEL, a RENAME away, expiry) or a `Set` of another value (a
/// stream a command created included), and with FLUSHDB / FLUSHALL; an
/// expiry change keeps it; SWAPDB moves it with its database. One per batch (`primary::on_units`), across its units.
#[derive(Default)]
pub struct StreamCover(std::collections::HashSet<(u8, bytes::Bytes)>);

impl StreamCover {
    /// Whether `effects[i]` is to be sent, updating the cover with it.
    /// (`created` tells the effect is a `Set` not sent because a command
    /// of its unit created the stream.)
    fn admit(&mut self, e: &Effect, created: bool) -> bool {
        if let Some((db, key)) = e.command_key() {
            return !self.0.contains(&(db, key.clone()));
        }
        match e {
            Effect::Set {
                db,
                key,
                value: Value::Stream(_),
                ..
            } if !created => {
                self.0.insert((*db, key.clone()));
            }
            Effect::FlushDb { db } => self.0.retain(|(d, _)| d != db),
            Effect::FlushAll => self.0.clear(),
            Effect::SwapDb { a, b } => {
                let (a, b) = (*a, *b);
                self.0 = self
                    .0
                    .drain()
                    .map(|(d, k)| match d {
                        d if d == a => (b, k),
                        d if d == b => (a, k),
                        d => (d, k),
                    })
                    .collect();
            }
            Effect::Expire { .. } | Effect::StreamIngestLearn { .. } => {}
            e => {
                if let Some((db, key)) = e.target() {
                    if !self.0.is_empty() {
                        self.0.remove(&(db, key.clone()));
                    }
                }
            }
        }
        true
    }
}

/// Appends the replication stream bytes of one unit's effects. `seldb` is
/// the database the stream last SELECTed (-1: none yet, as Redis's
/// `slaveseldb` after a full sync); it is updated. An effect that cannot
/// be expressed is left out and its error returned after the others are
/// appended. A unit alone: `unit_commands_in` for the units of a batch.
pub fn unit_commands(
    effects: &[Effect],
    seldb: &mut i32,
    out: &mut Vec<u8>,
) -> Result<(), PropagateError> {
    unit_commands_in(effects, seldb, &mut StreamCover::default(), out)
}

/// `unit_commands` for one of the units of a batch, whose streams sent
/// whole so far are in `cover` (see `StreamCover`).
pub fn unit_commands_in(
    effects: &[Effect],
    seldb: &mut i32,
    cover: &mut StreamCover,
    out: &mut Vec<u8>,
) -> Result<(), PropagateError> {
    let mut cmds: Vec<Cmd> = Vec::new();
    let mut failed = None;
    for (i, e) in effects.iter().enumerate() {
        let created = created_by_command(effects, i);
        if !cover.admit(e, created) {
            continue;
        }
        if created {
            // The stream's XADDs created it; its ingest state (INGEST's)
            // still has to reach a redlog replica.
            if record::is_redlog_only(e) {
                cmds.push((None, record_ping(e)));
            }
            continue;
        }
        if let Err(err) = effect_commands(e, &mut cmds) {
            failed.get_or_insert(err);
        }
    }
    if cmds.is_empty() {
        return failed.map_or(Ok(()), Err);
    }
    let multi = cmds.len() > 1;
    let select = |db: Option<u8>, seldb: &mut i32, out: &mut Vec<u8>| {
        if let Some(db) = db {
            if i32::from(db) != *seldb {
                put_command(out, &[b"SELECT", db.to_string().as_bytes()]);
                *seldb = i32::from(db);
            }
        }
    };
    if multi {
        // Redis selects the MULTI's database first.
        let first = cmds.iter().find_map(|c| c.0);
        select(first, seldb, out);
        put_command(out, &[b"MULTI"]);
    }
    for (db, args) in &cmds {
        select(*db, seldb, out);
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        put_command(out, &refs);
    }
    if multi {
        put_command(out, &[b"EXEC"]);
    }
    failed.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn stream(effects: &[Effect], seldb: &mut i32) -> String {
        let mut out = Vec::new();
        unit_commands(effects, seldb, &mut out).expect("encodes");
        String::from_utf8(out).expect("text")
    }

    #[test]
    fn one_command_without_multi_and_select_once() {
        let mut sel = -1;
        let set = Effect::Set {
            db: 0,
            key: b("k"),
            value: Value::Str(crate::db::StrValue::new(b"v".to_vec())),
            expires_at_ms: 1700000000000,
        };
        assert_eq!(
            stream(std::slice::from_ref(&set), &mut sel),
            "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n\
             $4\r\nPXAT\r\n$13\r\n1700000000000\r\n"
        );
        assert_eq!(sel, 0);
        let del = Effect::Del { db: 0, key: b("k") };
        assert_eq!(stream(&[del], &mut sel), "*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n");
        let pop = |count| Effect::ListPop {
            db: 0,
            key: b("l"),
            left: true,
            count,
        };
        assert_eq!(
            stream(&[pop(1)], &mut sel),
            "*2\r\n$4\r\nLPOP\r\n$1\r\nl\r\n"
        );
        assert_eq!(
            stream(&[pop(3)], &mut sel),
            "*3\r\n$4\r\nLPOP\r\n$1\r\nl\r\n$1\r\n3\r\n"
        );
    }

    #[test]
    fn several_commands_in_multi_with_selects() {
        let mut sel = 0;
        let effects = [
            Effect::ListPush {
                db: 1,
                key: b("l"),
                left: false,
                items: vec![b("a"), b("b")],
            },
            Effect::Expire {
                db: 1,
                key: b("l"),
                at_ms: 0,
            },
            Effect::ZAdd {
                db: 2,
                key: b("z"),
                skiplist: false,
                pairs: vec![(b("m"), 1.5), (b("n"), f64::NEG_INFINITY)],
            },
        ];
        assert_eq!(
            stream(&effects, &mut sel),
            "*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n*1\r\n$5\r\nMULTI\r\n\
             *4\r\n$5\r\nRPUSH\r\n$1\r\nl\r\n$1\r\na\r\n$1\r\nb\r\n\
             *2\r\n$7\r\nPERSIST\r\n$1\r\nl\r\n\
             *2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n\
             *6\r\n$4\r\nZADD\r\n$1\r\nz\r\n$3\r\n1.5\r\n$1\r\nm\r\n$4\r\n-inf\r\n$1\r\nn\r\n\
             *1\r\n$4\r\nEXEC\r\n"
        );
        assert_eq!(sel, 2);
    }

    #[test]
    fn collections_as_restore_and_redlog_only_effects_as_ping_records() {
        let mut sel = 0;
        let mut l = crate::db::list::List::new();
        l.push(false, b"v");
        let payload = crate::rdb::value::dump_value(&Value::List(l.clone())).expect("dump");
        let set = Effect::Set {
            db: 0,
            key: b("h"),
            value: Value::List(l),
            expires_at_ms: 0,
        };
        let mut want = Vec::new();
        put_command(&mut want, &[b"RESTORE", b"h", b"0", &payload, b"REPLACE"]);
        let mut out = Vec::new();
        unit_commands(&[set], &mut sel, &mut out).expect("encodes");
        assert_eq!(out, want);
        // A redlog-only effect: `PING <record>`, no SELECT, no MULTI.
        let fmt = Effect::LogFormatDel { name: b("f") };
        let rec = record::encode_effects(std::slice::from_ref(&fmt));
        let mut want = Vec::new();
        put_command(&mut want, &[b"PING", &rec]);
        let mut out = Vec::new();
        unit_commands(&[fmt], &mut sel, &mut out).expect("encodes");
        assert_eq!(out, want);
    }

    #[test]
    fn ltrim_to_nothing_and_linsert_by_position() {
        let mut sel = 0;
        let t = Effect::ListTrim {
            db: 0,
            key: b("l"),
            start: 3,
            end: 3,
        };
        assert_eq!(
            stream(&[t], &mut sel),
            "*4\r\n$5\r\nLTRIM\r\n$1\r\nl\r\n$1\r\n1\r\n$2\r\n-1\r\n"
        );
        let t = Effect::ListTrim {
            db: 0,
            key: b("l"),
            start: 1,
            end: 3,
        };
        assert_eq!(
            stream(&[t], &mut sel),
            "*4\r\n$5\r\nLTRIM\r\n$1\r\nl\r\n$1\r\n1\r\n$1\r\n2\r\n"
        );
        let i = Effect::ListInsert {
            db: 0,
            key: b("l"),
            index: 2,
            value: b("x"),
        };
        assert!(stream(&[i], &mut sel).starts_with("*6\r\n$4\r\nEVAL\r\n"));
    }

    fn cmd(db: u8, argv: &[&str]) -> Effect {
        Effect::Command {
            db,
            argv: argv.iter().map(|a| b(a)).collect(),
        }
    }

    fn stream_set(db: u8, key: &str) -> Effect {
        Effect::Set {
            db,
            key: b(key),
            value: Value::Stream(crate::stream::StreamRef::unopened(9)),
            expires_at_ms: 0,
        }
    }

    #[test]
    fn stream_commands_verbatim_and_created_stream_not_restored() {
        let mut sel = 0;
        // XADD creating the stream: the command, not a RESTORE of the
        // stream (whose log an unopened ref cannot even read).
        let xadd = cmd(0, &["XADD", "s", "1-1", "f", "v"]);
        assert_eq!(
            stream(&[xadd.clone(), stream_set(0, "s")], &mut sel),
            "*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$3\r\n1-1\r\n$1\r\nf\r\n$1\r\nv\r\n"
        );
        // XGROUP CREATE ... MKSTREAM: its key is the third argument.
        let mk = cmd(1, &["XGROUP", "CREATE", "m", "g", "$", "MKSTREAM"]);
        assert_eq!(
            stream(&[mk, stream_set(1, "m")], &mut sel),
            "*2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n\
             *6\r\n$6\r\nXGROUP\r\n$6\r\nCREATE\r\n$1\r\nm\r\n$1\r\ng\r\n$1\r\n$\r\n\
             $8\r\nMKSTREAM\r\n"
        );
        // Inside MULTI, with the creation in the middle.
        let unit = [
            xadd.clone(),
            stream_set(0, "s"),
            cmd(0, &["XDEL", "s", "1-1"]),
        ];
        let text = stream(&unit, &mut sel);
        assert!(text.starts_with("*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*1\r\n$5\r\nMULTI\r\n"));
        assert!(text.ends_with("*3\r\n$4\r\nXDEL\r\n$1\r\ns\r\n$3\r\n1-1\r\n*1\r\n$4\r\nEXEC\r\n"));
        assert!(!text.contains("RESTORE"));
    }

    #[test]
    fn stream_set_after_another_change_is_restored() {
        // A command on the key, then the key replaced (DEL, RENAME onto
        // it): the later Set is not the command's creation.
        for between in [
            Effect::Del { db: 0, key: b("s") },
            Effect::FlushDb { db: 0 },
        ] {
            let unit = [
                cmd(0, &["XADD", "s", "1-1", "f", "v"]),
                between,
                stream_set(0, "s"),
            ];
            assert!(!created_by_command(&unit, 2));
        }
        // A command on another key or database does not count.
        let unit = [cmd(0, &["XADD", "t", "1-1", "f", "v"]), stream_set(0, "s")];
        assert!(!created_by_command(&unit, 1));
        let unit = [cmd(1, &["XADD", "s", "1-1", "f", "v"]), stream_set(0, "s")];
        assert!(!created_by_command(&unit, 1));
        // Other commands' effects of other keys in between do not matter.
        let unit = [
            cmd(0, &["XADD", "s", "1-1", "f", "v"]),
            Effect::Del { db: 0, key: b("x") },
            stream_set(0, "s"),
        ];
        assert!(created_by_command(&unit, 2));
    }

    /// Which effects of a batch's units are sent, as `unit_commands_in`
    /// decides (without encoding: an unopened stream cannot be dumped).
    fn sent(units: &[&[Effect]]) -> Vec<Vec<bool>> {
        let mut cover = StreamCover::default();
        units
            .iter()
            .map(|u| {
                (0..u.len())
                    .map(|i| {
                        let created = created_by_command(u, i);
                        cover.admit(&u[i], created) && !created
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn commands_after_a_stream_sent_whole_are_covered() {
        let xadd = |db, k: &str| cmd(db, &["XADD", k, "5-1", "f", "v"]);
        // MULTI; COPY s t; XADD t; EXEC: the RESTORE of t holds the entry.
        let copy = [stream_set(0, "t"), xadd(0, "t")];
        assert_eq!(sent(&[&copy]), [vec![true, false]]);
        // The same as two units of one batch (pipelined), and a command on
        // the source is still sent.
        assert_eq!(
            sent(&[&[stream_set(0, "t")], &[xadd(0, "t"), xadd(0, "s")]]),
            [vec![true], vec![false, true]]
        );
        // A command before the Set concerns the value it replaced.
        assert_eq!(
            sent(&[&[
                xadd(0, "t"),
                Effect::Del { db: 0, key: b("t") },
                stream_set(0, "t")
            ]]),
            [vec![true, true, true]]
        );
        // Set, Command, DEL, then a new stream made by XADD: its commands
        // are sent, its Set not.
        let unit = [
            stream_set(0, "t"),
            xadd(0, "t"),
            Effect::Del { db: 0, key: b("t") },
            xadd(0, "t"),
            stream_set(0, "t"),
            xadd(0, "t"),
        ];
        assert_eq!(sent(&[&unit]), [vec![true, false, true, true, false, true]]);
        // Set, Command, RENAME t u (Del t, Set u), Command on u: both Sets
        // are RESTOREs of the final stream; neither command is sent.
        let unit = [
            stream_set(0, "t"),
            xadd(0, "t"),
            Effect::Del { db: 0, key: b("t") },
            stream_set(0, "u"),
            xadd(0, "u"),
        ];
        assert_eq!(sent(&[&unit]), [vec![true, false, true, true, false]]);
        // An expiry keeps the cover; FLUSHDB ends it; SWAPDB moves it.
        let unit = [
            stream_set(0, "t"),
            Effect::Expire {
                db: 0,
                key: b("t"),
                at_ms: 1,
            },
            xadd(0, "t"),
            Effect::SwapDb { a: 0, b: 2 },
            xadd(2, "t"),
            xadd(0, "t"),
            Effect::FlushDb { db: 2 },
            xadd(2, "t"),
        ];
        assert_eq!(
            sent(&[&unit]),
            [vec![true, true, false, true, false, true, true, true]]
        );
        // XGROUP names its key third.
        let unit = [
            stream_set(1, "t"),
            cmd(1, &["XGROUP", "CREATE", "t", "g", "$"]),
        ];
        assert_eq!(sent(&[&unit]), [vec![true, false]]);
    }
}
