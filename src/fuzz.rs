//! Entry points shared by the cargo-fuzz targets in `fuzz/fuzz_targets/`
//! and the stable proptests of `tests/it/decoder_fuzz.rs`: one per decoder of
//! untrusted bytes (client requests, WAL units and their effects, stream
//! entry / op / checkpoint records, LOGPARSE format specs and miner
//! states). Each decodes arbitrary bytes and panics only when an invariant
//! breaks (never on bad input): a decoded value must encode back to bytes
//! that decode to the same value, and applying what was decoded must not
//! panic either. (The storage layer's entry is `storage::fuzz`.)
//!
//! Allocation bounds (a length prefix claiming 2^32 elements must not
//! reserve them) are checked by the proptests, which measure the bytes each
//! call allocates.

use crate::db::effect::{self, Effect};
use crate::logparse::{builtin, Format, FormatSpec, Ingestor, Miner};
use crate::protocol::{parse_request, Decoder, ParseLimits, Parsed, ProtocolError};
use crate::stream::codec;
use crate::stream::groups::{self, Groups};
use bytes::BytesMut;
use std::sync::Arc;

/// `proto-max-bulk-len` used by [`request`] when flag bit 1 is set: small,
/// so the fuzzer reaches the "invalid bulk length" edge.
pub const SMALL_BULK_MAX: i64 = 1024;

/// The limits [`request`] decodes with, from its flag byte: bit 0 set =
/// not authenticated; bit 1 set = `proto-max-bulk-len` [`SMALL_BULK_MAX`],
/// else Redis's default 512 MiB.
pub fn request_limits(flags: u8) -> ParseLimits {
    ParseLimits {
        bulk_bytes_max: if flags & 2 != 0 {
            SMALL_BULK_MAX
        } else {
            512 << 20
        },
        authenticated: flags & 1 == 0,
    }
}

/// What decoding a whole buffer gave: every request in order, then the
/// error that ended it (None: the rest was incomplete).
type Decoded = (Vec<Parsed>, Option<ProtocolError>);

/// Decodes every complete request in `buf` with `decoder` (None: the
/// stateless `parse_request`); false once an error ended the input.
fn drain_requests(
    buf: &mut BytesMut,
    limits: ParseLimits,
    mut decoder: Option<&mut Decoder>,
    out: &mut Decoded,
) -> bool {
    loop {
        let before = buf.len();
        let r = match decoder.as_deref_mut() {
            Some(d) => d.parse(buf, limits),
            None => parse_request(buf, limits),
        };
        match r {
            Ok(Parsed::Incomplete) => {
                assert_eq!(buf.len(), before, "Incomplete consumed bytes");
                return true;
            }
            Ok(p) => {
                assert!(buf.len() < before, "a request consumed nothing");
                if let Parsed::Command { args, .. } = &p {
                    assert!(!args.is_empty(), "a command without arguments");
                }
                out.0.push(p);
            }
            Err(e) => {
                out.1 = Some(e);
                return false;
            }
        }
    }
}

/// `protocol::parse_request` on arbitrary bytes. Input: `flags: u8 |
/// split: u8 | request bytes` (flags: see [`request_limits`]). Decodes the
/// bytes as one buffer, then as a connection receiving them in chunks of
/// `split % 64 + 1` bytes, with a [`Decoder`] (which resumes part-way
/// requests) and with the stateless `parse_request`: all three must give
/// the same requests and the same error; every request consumes bytes,
/// Incomplete consumes none.
/// Returns the number of requests decoded.
pub fn request(data: &[u8]) -> usize {
    if data.len() < 2 {
        return 0;
    }
    let limits = request_limits(data[0]);
    let chunk = usize::from(data[1] % 64) + 1;
    let input = &data[2..];

    let mut whole = (Vec::new(), None);
    drain_requests(&mut BytesMut::from(input), limits, None, &mut whole);

    // Past the inline limit, a buffer without a newline is refused at a
    // size that depends on how the bytes arrived: compare only below it.
    if input.len() <= crate::protocol::parse::PROTO_INLINE_MAX_BYTES {
        for stateful in [true, false] {
            let mut decoder = Decoder::default();
            let mut fed = (Vec::new(), None);
            let mut buf = BytesMut::new();
            for piece in input.chunks(chunk) {
                buf.extend_from_slice(piece);
                let d = stateful.then_some(&mut decoder);
                if !drain_requests(&mut buf, limits, d, &mut fed) {
                    break;
                }
            }
            assert_eq!(
                whole, fed,
                "chunked decoding (decoder: {stateful}) differs from whole-buffer"
            );
        }
    }
    whole.0.len()
}

/// `db::effect::decode_unit` on arbitrary bytes (a WAL record's value).
/// A decoded unit must encode to bytes that decode to the same effects,
/// and applying it to an empty keyspace and then again on top of itself
/// must not panic. Returns the number of effects decoded.
pub fn wal_unit(data: &[u8]) -> usize {
    let Ok(effects) = effect::decode_unit(data) else {
        return 0;
    };
    let n = effects.len();
    check_unit_round_trip(&effects);
    let mut ks = crate::commands::lua::keyspace();
    ks.set_capture(false);
    for _ in 0..2 {
        for e in effects.iter().cloned() {
            effect::apply(&mut ks, e);
        }
    }
    n
}

/// `db::effect::record::decode` on arbitrary bytes (a replication
/// stream's `PING <record>` argument, an RDB aux field: a peer's bytes).
/// A decoded record's effects are all redlog-only, re-encode to the same
/// effects and apply to an empty keyspace twice without a panic. Returns
/// the number of effects decoded (0 for a reset or an error).
pub fn redlog_record(data: &[u8]) -> usize {
    use effect::record::{self, Record};
    match record::decode(data) {
        Ok(Record::Effects(effects)) => {
            assert!(effects.iter().all(record::is_redlog_only));
            let again = record::encode_effects(&effects);
            match record::decode(&again) {
                Ok(Record::Effects(back)) => {
                    assert!(back == effects, "record re-encodes differently")
                }
                other => panic!("re-encoded record does not decode: {other:?}"),
            }
            let mut ks = crate::commands::lua::keyspace();
            ks.set_capture(false);
            for _ in 0..2 {
                for e in effects.iter().cloned() {
                    effect::apply(&mut ks, e);
                }
            }
            effects.len()
        }
        Ok(Record::ResetFormats) | Err(_) => 0,
    }
}

fn check_unit_round_trip(effects: &[Effect]) {
    let mut again = Vec::new();
    effect::encode_unit(effects, &mut again);
    match effect::decode_unit(&again) {
        Ok(back) => assert!(
            back == effects,
            "re-encoded unit decodes differently: {effects:?} -> {back:?}"
        ),
        Err(e) => panic!("re-encoded unit does not decode: {e} ({effects:?})"),
    }
}

/// The stream record decoders of `stream::codec` on arbitrary bytes.
/// Input: `kind: u8 | bytes`; kind % 4: 0 entry, 1 op, 2 checkpoint,
/// 3 checkpoint whose CRC is recomputed over the body (so mutations reach
/// the body's decoding). Entries and ops are canonical (they must encode
/// back to the input); a checkpoint must encode to bytes that decode to
/// the same checkpoint. Group ops are applied to the decoded groups.
/// Returns true when the record decoded.
pub fn stream_record(data: &[u8]) -> bool {
    let Some((&kind, body)) = data.split_first() else {
        return false;
    };
    match kind % 4 {
        0 => {
            let Ok(pairs) = codec::decode_entry(body.to_vec()) else {
                return false;
            };
            let mut again = Vec::new();
            codec::encode_entry(&mut again, &pairs);
            assert_eq!(again, body, "entry does not encode back to its bytes");
            true
        }
        1 => {
            let Ok(op) = codec::decode_op(body) else {
                return false;
            };
            assert_eq!(
                codec::encode_op(&op),
                body,
                "op does not encode back to its bytes"
            );
            if let codec::OpKind::Group(g) = op.kind {
                let mut gs = Groups::new();
                groups::apply(&mut gs, g);
            }
            true
        }
        k => {
            let mut buf = body.to_vec();
            if k == 3 && buf.len() >= 16 {
                let crc = crc32c::crc32c(&buf[16..]);
                buf[12..16].copy_from_slice(&crc.to_le_bytes());
            }
            let Ok(c) = codec::decode_checkpoint(&buf) else {
                return false;
            };
            let again = codec::encode_checkpoint(&c);
            assert_eq!(
                codec::decode_checkpoint(&again).as_ref(),
                Ok(&c),
                "re-encoded checkpoint decodes differently"
            );
            let mut gs = c.groups;
            for (name, g) in gs.clone() {
                // Every consumer and PEL entry survives an apply round.
                let op = groups::GroupOp::SetId {
                    group: name,
                    last_id: g.last_id,
                    entries_read: g.entries_read,
                };
                groups::apply(&mut gs, op);
            }
            true
        }
    }
}

/// LOGPARSE's decoders on arbitrary bytes. Input: `kind: u8 | bytes`;
/// kind % 3: 0 a format spec (`FormatSpec::decode`: it must re-encode to
/// the bytes it consumed; then it is compiled and, when it compiles, the
/// rest of the input is parsed and mined as log lines), 1 a miner state
/// (`Miner::decode`: canonical; then its own templates are learned as
/// lines), 2 an ingestor state restored with the
/// built-in hdfs format. Returns true when the bytes decoded.
pub fn logparse(data: &[u8]) -> bool {
    let Some((&kind, body)) = data.split_first() else {
        return false;
    };
    match kind % 3 {
        0 => {
            let mut r = crate::storage::bytes::Reader::new(body);
            let Ok(spec) = FormatSpec::decode(&mut r) else {
                return false;
            };
            let rest = r.rest();
            let used = &body[..body.len() - rest.len()];
            let mut again = Vec::new();
            spec.encode(&mut again);
            assert_eq!(again, used, "format spec does not encode back");
            if let Ok(f) = Format::compile(spec) {
                let mut ing = Ingestor::new(Arc::new(f));
                for line in rest.split(|&b| b == b'\n').take(16) {
                    let _ = ing.parse(line, 2024);
                }
            }
            true
        }
        1 => {
            let Ok(mut m) = Miner::decode(body) else {
                return false;
            };
            let mut again = Vec::new();
            m.encode(&mut again);
            assert_eq!(again, body, "miner state does not encode back");
            let templates: Vec<Vec<u8>> =
                m.clusters().take(64).map(|(_, c)| c.template()).collect();
            let mut toks = Vec::new();
            for t in &templates {
                crate::logparse::miner::tokenize(t, &mut toks);
                let _ = m.learn(&toks);
            }
            true
        }
        _ => {
            let Some(f) = builtin::get(b"hdfs") else {
                return false;
            };
            Ingestor::restore(f.clone(), body).is_ok()
        }
    }
}

/// The RDB value decoder (`rdb::read_value`: RESTORE payloads and the
/// values of RDB files) on arbitrary bytes, `type | object` as RESTORE
/// reads them. A decoded value must convert to a keyspace value (or be
/// refused with an error: duplicates), and that value's DUMP must decode
/// to the same value; a decoded stream must write bytes that decode to
/// the same stream. Returns true when the bytes decoded.
pub fn rdb_value(data: &[u8]) -> bool {
    use crate::rdb::{self, RdbValue, Reader};
    let Ok(v) = rdb::read_value(&mut Reader::new(data)) else {
        return false;
    };
    match v {
        RdbValue::Stream(s) => {
            let mut w = rdb::Writer::new();
            rdb::stream::write(&mut w, &s);
            let again = rdb::read_value(&mut Reader::new(&w.buf));
            assert_eq!(again, Ok(RdbValue::Stream(s)), "stream re-encoding");
        }
        v => {
            let lim = rdb::value::Limits::default();
            let Ok(value) = v.into_value(&lim) else {
                return true;
            };
            let dump = rdb::value::dump_value(&value).expect("not a stream");
            let (body, _) = rdb::check_envelope(&dump).expect("own envelope");
            let back = rdb::read_value(&mut Reader::new(body))
                .expect("own dump decodes")
                .into_value(&lim)
                .expect("own dump converts");
            assert_eq!(back, value, "DUMP of a restored value restores differently");
        }
    }
    true
}

/// The cluster bus decoder (`cluster::bus::decode`) on arbitrary bytes: a
/// message that decodes must encode to bytes that decode to the same
/// message (the extension-data flag aside, which the encoder derives).
/// Returns true when the bytes decoded.
pub fn cluster_bus(data: &[u8]) -> bool {
    use crate::cluster::bus;
    let Ok(mut m) = bus::decode(data) else {
        return false;
    };
    let again = bus::encode(&m);
    let mut back = bus::decode(&again).expect("own encoding decodes");
    m.header.mflags[0] &= !bus::FLAG0_EXT_DATA;
    back.header.mflags[0] &= !bus::FLAG0_EXT_DATA;
    assert_eq!(back, m, "re-encoded bus message decodes differently");
    true
}
