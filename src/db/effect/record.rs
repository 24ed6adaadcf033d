//! redlog-only records of the replication stream: state Redis has no
//! command for (LOGPARSE formats and their shared miners, a stream's
//! ingest state), carried to redlog replicas inside the one stream every
//! replica reads (see ARCHITECTURE.md "Replication", docs/format.md
//! "redlog records").
//!
//! A record is the single argument of `PING <payload>`: a redis-server
//! replica runs its master's PING as a no-op (no reply to a master, no
//! state change, nothing logged) and forwards it to its sub-replicas with
//! the rest of the stream, so offsets stay equal on every replica; a
//! redlog replica recognises the payload (only from its master client)
//! and applies it. At a full resync the same payloads travel as RDB aux
//! fields named [`AUX_NAME`] (which redis-server skips).
//!
//! Payload: [`PREFIX`], a version byte ([`VERSION`]), a kind byte, then
//! the body:
//!
//! - `U` ([`Record::Effects`]): a WAL unit (`encode_unit`) of redlog-only
//!   effects: `LogFormatSet`, `LogFormatDel`, `LogMinerLearn`,
//!   `LogMinerState`, `StreamIngestLearn`, and a stream `Set` with its
//!   ingest state (value type 7: the format and the whole miner, attached
//!   to the stream the key holds on the replica; the stream id in it is
//!   the primary's and is not used), and `Command` effects of redlog's
//!   own stream commands (`XCONFIG key RETENTION-MS ms RETENTION-BYTES
//!   bytes`: a stream's retention settings, absolute values).
//! - `R` ([`Record::ResetFormats`]), no body: a full resync starts: drop
//!   the user formats and the built-in formats' learned miners, as the
//!   RDB's FLUSHALL drops the keys.
//!
//! The payload is untrusted input (a peer's bytes): decoding bounds every
//! count by the bytes present and refuses anything else with an error.

use super::{decode_unit, encode_unit, DecodeError, Effect};
use crate::db::Value;

/// What every record payload starts with.
pub const PREFIX: &[u8] = b"redlog-record:";
/// The payload format's version.
pub const VERSION: u8 = 1;
/// The RDB aux field name of a record (full resync).
pub const AUX_NAME: &[u8] = b"redlog-record";

const KIND_EFFECTS: u8 = b'U';
const KIND_RESET: u8 = b'R';

/// A decoded record.
#[derive(Debug)]
pub enum Record {
    /// Effects to apply and log, in order.
    Effects(Vec<Effect>),
    /// Drop the user formats and the built-in miners' learning.
    ResetFormats,
}

/// Why a payload is not a record this server can apply.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("not a redlog record")]
    NoPrefix,
    #[error("truncated redlog record")]
    Truncated,
    #[error("unsupported redlog record version {0}")]
    Version(u8),
    #[error("unknown redlog record kind {0}")]
    Kind(u8),
    #[error("trailing bytes after a redlog reset record")]
    Trailing,
    #[error(transparent)]
    Effects(#[from] DecodeError),
    #[error("redlog record holds an effect that is not redlog-only")]
    NotRedlogOnly,
}

/// Whether `arg` (PING's argument, an aux field's value) is a record.
pub fn is_record(arg: &[u8]) -> bool {
    arg.starts_with(PREFIX)
}

/// Whether `e` has no Redis command and travels as a record (a stream's
/// `Set` only when the stream has an ingest state).
pub fn is_redlog_only(e: &Effect) -> bool {
    match e {
        Effect::LogFormatSet { .. }
        | Effect::LogFormatDel { .. }
        | Effect::LogMinerLearn { .. }
        | Effect::LogMinerState { .. }
        | Effect::StreamIngestLearn { .. } => true,
        Effect::Set {
            value: Value::Stream(s),
            ..
        } => s.0.ingest.lock().is_some(),
        Effect::Command { argv, .. } => is_redlog_command(argv),
        _ => false,
    }
}

/// Whether `argv` is a redlog command a stream change propagates as a
/// record (Redis has no such command): XCONFIG, with its absolute
/// settings (`XCONFIG key RETENTION-MS ms RETENTION-BYTES bytes`).
pub fn is_redlog_command(argv: &[bytes::Bytes]) -> bool {
    argv.first()
        .is_some_and(|n| n.eq_ignore_ascii_case(b"xconfig"))
}

/// `XCONFIG key RETENTION-MS ms RETENTION-BYTES bytes` with absolute
/// settings (0: none of its own), as XCONFIG propagates itself.
pub fn xconfig_argv(key: bytes::Bytes, ms: Option<u64>, bytes_: Option<u64>) -> Vec<bytes::Bytes> {
    use bytes::Bytes;
    vec![
        Bytes::from_static(b"XCONFIG"),
        key,
        Bytes::from_static(b"RETENTION-MS"),
        Bytes::from(ms.unwrap_or(0).to_string()),
        Bytes::from_static(b"RETENTION-BYTES"),
        Bytes::from(bytes_.unwrap_or(0).to_string()),
    ]
}

fn head(kind: u8) -> Vec<u8> {
    let mut out = PREFIX.to_vec();
    out.push(VERSION);
    out.push(kind);
    out
}

/// The payload of a record of `effects` (each `is_redlog_only`).
pub fn encode_effects(effects: &[Effect]) -> Vec<u8> {
    let mut out = head(KIND_EFFECTS);
    encode_unit(effects, &mut out);
    out
}

/// The payload of a reset record.
pub fn encode_reset() -> Vec<u8> {
    head(KIND_RESET)
}

/// Decodes a payload; every effect must be redlog-only.
pub fn decode(payload: &[u8]) -> Result<Record, RecordError> {
    let rest = payload.strip_prefix(PREFIX).ok_or(RecordError::NoPrefix)?;
    let (&version, rest) = rest.split_first().ok_or(RecordError::Truncated)?;
    if version != VERSION {
        return Err(RecordError::Version(version));
    }
    let (&kind, body) = rest.split_first().ok_or(RecordError::Truncated)?;
    match kind {
        KIND_EFFECTS => {
            let effects = decode_unit(body)?;
            if !effects.iter().all(is_redlog_only) {
                return Err(RecordError::NotRedlogOnly);
            }
            Ok(Record::Effects(effects))
        }
        KIND_RESET if body.is_empty() => Ok(Record::ResetFormats),
        KIND_RESET => Err(RecordError::Trailing),
        k => Err(RecordError::Kind(k)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn round_trip_and_refusals() {
        let e = Effect::LogFormatDel {
            name: Bytes::from_static(b"f"),
        };
        let p = encode_effects(std::slice::from_ref(&e));
        assert!(is_record(&p));
        match decode(&p) {
            Ok(Record::Effects(v)) => assert_eq!(v, vec![e]),
            other => panic!("{other:?}"),
        }
        assert!(matches!(decode(&encode_reset()), Ok(Record::ResetFormats)));
        assert_eq!(decode(b"hello").unwrap_err(), RecordError::NoPrefix);
        assert_eq!(decode(PREFIX).unwrap_err(), RecordError::Truncated);
        let mut v = PREFIX.to_vec();
        v.push(9);
        assert_eq!(decode(&v).unwrap_err(), RecordError::Version(9));
        v[PREFIX.len()] = VERSION;
        v.push(b'Z');
        assert_eq!(decode(&v).unwrap_err(), RecordError::Kind(b'Z'));
        let mut r = encode_reset();
        r.push(0);
        assert_eq!(decode(&r).unwrap_err(), RecordError::Trailing);
        // A key effect is not a record's.
        let del = encode_effects(&[Effect::Del {
            db: 0,
            key: Bytes::from_static(b"k"),
        }]);
        assert_eq!(decode(&del).unwrap_err(), RecordError::NotRedlogOnly);
        // XCONFIG (redlog's own) travels as a record, XADD does not.
        let xconfig = Effect::Command {
            db: 0,
            argv: xconfig_argv(Bytes::from_static(b"s"), Some(5), None),
        };
        assert!(is_redlog_only(&xconfig));
        match decode(&encode_effects(std::slice::from_ref(&xconfig))) {
            Ok(Record::Effects(v)) => assert_eq!(v, vec![xconfig]),
            other => panic!("{other:?}"),
        }
        let xadd = Effect::Command {
            db: 0,
            argv: vec![Bytes::from_static(b"XADD"), Bytes::from_static(b"s")],
        };
        assert_eq!(
            decode(&encode_effects(&[xadd])).unwrap_err(),
            RecordError::NotRedlogOnly
        );
        // Truncated at every length: an error, never a panic.
        for n in 0..p.len() {
            assert!(decode(&p[..n]).is_err(), "prefix of {n} bytes");
        }
    }
}
