//! Encodings of a stream's records: entries (entry log), ops (op log) and
//! the checkpoint. Little-endian, explicit sizes; the same grammar is in
//! docs/format.md.
//!
//! ```text
//! entry value  = u32 nfields | { u32 len | u8{len} }{2 * nfields}      (field, value, ...)
//! op value     = u8 kind | u128 at | meta | body
//!   at         = key of the last entry-log record when the op ran
//!   kind 1 DEL    = u32 n | u128 id{n}          ids actually deleted
//!   kind 2 TRIM   = u64 removed                 live entries removed
//!   kind 3 SETID  = (empty)
//!   kind 4 CONFIG = u64 retention_ms | u64 retention_bytes   (u64::MAX = unset)
//!   kind 5 GROUP  = group op (see `stream::groups`)
//! meta         = u64 length | u128 first | u128 last_id | u128 max_deleted
//!                | u64 entries_added | u128 trimmed_through
//!                (the stream's metadata after the op; first 0 = none)
//! checkpoint   = magic "RDLGSCP\0" | u32 version(=2; 1 = no groups) | u32 crc32c(body) | body
//! body         = u128 log_at | u128 op_seq | meta | u64 retention_ms
//!                | u64 retention_bytes | u32 nsegs | { u128 base | u64 live }{nsegs}
//!                | u64 ndeleted | u128 deleted_id{ndeleted} | groups (version 2)
//! ```

use super::groups::{self, GroupOp, Groups};
use crate::storage::bytes::Reader;
use bytes::Bytes;

/// A stream's metadata, as in Redis's `stream` struct (plus the trim mark).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Live entries.
    pub length: u64,
    /// First live entry's id (Redis's `first_id`); 0 when empty.
    pub first: u128,
    /// Last generated id (`last_id`).
    pub last_id: u128,
    pub max_deleted: u128,
    pub entries_added: u64,
    /// Every entry with an id <= this is trimmed away (0: none).
    pub trimmed_through: u128,
}

/// Live-entry count of one entry-log segment (for trimming by whole segments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegStat {
    pub base: u128,
    pub live: u64,
}

/// An op record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    pub at: u128,
    pub meta: Meta,
    pub kind: OpKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    Del(Vec<u128>),
    Trim {
        removed: u64,
    },
    SetId,
    Config {
        retention_ms: Option<u64>,
        retention_bytes: Option<u64>,
    },
    Group(GroupOp),
}

/// The checkpoint content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub log_at: u128,
    pub op_seq: u128,
    pub meta: Meta,
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub segs: Vec<SegStat>,
    pub deleted: Vec<u128>,
    pub groups: Groups,
}

pub const CHECKPOINT_MAGIC: &[u8; 8] = b"RDLGSCP\0";
const CHECKPOINT_VERSION: u32 = 2;

/// What a bad record or checkpoint was.
pub use crate::storage::bytes::Malformed as BadBytes;

fn opt(r: &mut Reader<'_>) -> Result<Option<u64>, BadBytes> {
    let v = r.u64()?;
    Ok((v != u64::MAX).then_some(v))
}

fn meta(r: &mut Reader<'_>) -> Result<Meta, BadBytes> {
    Ok(Meta {
        length: r.u64()?,
        first: r.u128()?,
        last_id: r.u128()?,
        max_deleted: r.u128()?,
        entries_added: r.u64()?,
        trimmed_through: r.u128()?,
    })
}

fn end(r: &Reader<'_>) -> Result<(), BadBytes> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(BadBytes("trailing bytes"))
    }
}

fn put_meta(out: &mut Vec<u8>, m: &Meta) {
    out.extend_from_slice(&m.length.to_le_bytes());
    out.extend_from_slice(&m.first.to_le_bytes());
    out.extend_from_slice(&m.last_id.to_le_bytes());
    out.extend_from_slice(&m.max_deleted.to_le_bytes());
    out.extend_from_slice(&m.entries_added.to_le_bytes());
    out.extend_from_slice(&m.trimmed_through.to_le_bytes());
}

fn put_opt(out: &mut Vec<u8>, v: Option<u64>) {
    out.extend_from_slice(&v.unwrap_or(u64::MAX).to_le_bytes());
}

/// Encodes an entry's field-value pairs (`pairs.len()` is even).
pub fn encode_entry(out: &mut Vec<u8>, pairs: &[Bytes]) {
    out.extend_from_slice(&((pairs.len() / 2) as u32).to_le_bytes());
    for p in pairs {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
    }
}

/// Decodes an entry's field-value pairs (flattened). The fields share
/// `buf`'s allocation (slices of one `Bytes`), so an entry costs the
/// record's buffer and one `Vec`, not one allocation per field.
pub fn decode_entry(buf: impl Into<Bytes>) -> Result<Vec<Bytes>, BadBytes> {
    let buf: Bytes = buf.into();
    let mut r = Reader::new(&buf);
    let n = r.u32()? as usize;
    // Each element takes at least 4 bytes: bound the allocation by the input.
    let mut out = Vec::with_capacity((n * 2).min(buf.len() / 4));
    for _ in 0..n * 2 {
        let len = r.u32()? as usize;
        let at = buf.len() - r.remaining();
        r.take(len)?;
        out.push(buf.slice(at..at + len));
    }
    end(&r)?;
    Ok(out)
}

/// An entry's field-value pairs (flattened) as slices of the record's
/// bytes, checked whole before the first is handed out: a damaged record
/// is an error, never a partial entry. XRANGE encodes its reply from these
/// without building owned values (`decode_entry`).
pub fn entry_fields(buf: &[u8]) -> Result<EntryFields<'_>, BadBytes> {
    let mut r = Reader::new(buf);
    let n = r.u32()? as usize;
    for _ in 0..n * 2 {
        let len = r.u32()? as usize;
        r.take(len)?;
    }
    end(&r)?;
    Ok(EntryFields {
        rest: &buf[4..],
        left: n * 2,
    })
}

/// The fields and values of one checked entry (`entry_fields`).
#[derive(Clone, Debug)]
pub struct EntryFields<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> EntryFields<'a> {
    /// Fields plus values (twice the pair count).
    pub fn len(&self) -> usize {
        self.left
    }

    pub fn is_empty(&self) -> bool {
        self.left == 0
    }
}

impl<'a> Iterator for EntryFields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        // `entry_fields` checked every length against the buffer.
        let (len, rest) = self.rest.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let (field, rest) = rest.split_at_checked(len)?;
        self.rest = rest;
        self.left -= 1;
        Some(field)
    }
}

pub fn encode_op(op: &Op) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(match op.kind {
        OpKind::Del(_) => 1,
        OpKind::Trim { .. } => 2,
        OpKind::SetId => 3,
        OpKind::Config { .. } => 4,
        OpKind::Group(_) => 5,
    });
    out.extend_from_slice(&op.at.to_le_bytes());
    put_meta(&mut out, &op.meta);
    match &op.kind {
        OpKind::Del(ids) => {
            out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
            for id in ids {
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
        OpKind::Trim { removed } => out.extend_from_slice(&removed.to_le_bytes()),
        OpKind::SetId => {}
        OpKind::Config {
            retention_ms,
            retention_bytes,
        } => {
            put_opt(&mut out, *retention_ms);
            put_opt(&mut out, *retention_bytes);
        }
        OpKind::Group(g) => groups::encode_op(&mut out, g),
    }
    out
}

pub fn decode_op(buf: &[u8]) -> Result<Op, BadBytes> {
    let mut r = Reader::new(buf);
    let kind = r.u8()?;
    let at = r.u128()?;
    let meta = meta(&mut r)?;
    let kind = match kind {
        1 => {
            let n = r.u32()? as usize;
            let mut ids = Vec::with_capacity(n.min(buf.len() / 16));
            for _ in 0..n {
                ids.push(r.u128()?);
            }
            OpKind::Del(ids)
        }
        2 => OpKind::Trim { removed: r.u64()? },
        3 => OpKind::SetId,
        4 => OpKind::Config {
            retention_ms: opt(&mut r)?,
            retention_bytes: opt(&mut r)?,
        },
        5 => OpKind::Group(groups::decode_op(&mut r)?),
        _ => return Err(BadBytes("unknown op kind")),
    };
    end(&r)?;
    Ok(Op { at, meta, kind })
}

pub fn encode_checkpoint(c: &Checkpoint) -> Vec<u8> {
    let mut body = Vec::with_capacity(160 + c.segs.len() * 24 + c.deleted.len() * 16);
    body.extend_from_slice(&c.log_at.to_le_bytes());
    body.extend_from_slice(&c.op_seq.to_le_bytes());
    put_meta(&mut body, &c.meta);
    put_opt(&mut body, c.retention_ms);
    put_opt(&mut body, c.retention_bytes);
    body.extend_from_slice(&(c.segs.len() as u32).to_le_bytes());
    for s in &c.segs {
        body.extend_from_slice(&s.base.to_le_bytes());
        body.extend_from_slice(&s.live.to_le_bytes());
    }
    body.extend_from_slice(&(c.deleted.len() as u64).to_le_bytes());
    for d in &c.deleted {
        body.extend_from_slice(&d.to_le_bytes());
    }
    groups::encode_groups(&mut body, &c.groups);
    let mut out = Vec::with_capacity(body.len() + 16);
    out.extend_from_slice(CHECKPOINT_MAGIC);
    out.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

pub fn decode_checkpoint(buf: &[u8]) -> Result<Checkpoint, BadBytes> {
    let mut r = Reader::new(buf);
    if r.take(8)? != CHECKPOINT_MAGIC {
        return Err(BadBytes("bad checkpoint magic"));
    }
    let version = r.u32()?;
    if version != 1 && version != CHECKPOINT_VERSION {
        return Err(BadBytes("unknown checkpoint version"));
    }
    let crc = r.u32()?;
    if crc32c::crc32c(r.rest()) != crc {
        return Err(BadBytes("checkpoint checksum mismatch"));
    }
    let log_at = r.u128()?;
    let op_seq = r.u128()?;
    let meta = meta(&mut r)?;
    let retention_ms = opt(&mut r)?;
    let retention_bytes = opt(&mut r)?;
    let nsegs = r.u32()? as usize;
    let mut segs = Vec::with_capacity(nsegs.min(buf.len() / 24));
    for _ in 0..nsegs {
        segs.push(SegStat {
            base: r.u128()?,
            live: r.u64()?,
        });
    }
    let nd = usize::try_from(r.u64()?).map_err(|_| BadBytes("deleted count"))?;
    let mut deleted = Vec::with_capacity(nd.min(buf.len() / 16));
    for _ in 0..nd {
        deleted.push(r.u128()?);
    }
    let groups = if version >= 2 {
        groups::decode_groups(&mut r)?
    } else {
        Groups::new()
    };
    end(&r)?;
    Ok(Checkpoint {
        log_at,
        op_seq,
        meta,
        retention_ms,
        retention_bytes,
        segs,
        deleted,
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            length: 3,
            first: 5,
            last_id: 9 << 64 | 1,
            max_deleted: 4,
            entries_added: 7,
            trimmed_through: 2,
        }
    }

    #[test]
    fn round_trips() {
        let pairs = vec![Bytes::from_static(b"f\0"), Bytes::from_static(b"")];
        let mut e = Vec::new();
        encode_entry(&mut e, &pairs);
        assert_eq!(decode_entry(e.clone()), Ok(pairs));
        for cut in 0..e.len() {
            assert!(decode_entry(e[..cut].to_vec()).is_err());
        }
        for kind in [
            OpKind::Del(vec![1, 2 << 64]),
            OpKind::Trim { removed: 9 },
            OpKind::SetId,
            OpKind::Config {
                retention_ms: Some(5),
                retention_bytes: None,
            },
            OpKind::Group(GroupOp::Ack {
                group: Bytes::from_static(b"g"),
                ids: vec![3],
            }),
        ] {
            let op = Op {
                at: 77,
                meta: meta(),
                kind,
            };
            let b = encode_op(&op);
            assert_eq!(decode_op(&b), Ok(op));
            for cut in 0..b.len() {
                assert!(decode_op(&b[..cut]).is_err());
            }
        }
        let c = Checkpoint {
            log_at: 10,
            op_seq: 3,
            meta: meta(),
            retention_ms: None,
            retention_bytes: Some(1 << 20),
            segs: vec![SegStat { base: 1, live: 2 }],
            deleted: vec![4, 8],
            groups: Groups::new(),
        };
        let b = encode_checkpoint(&c);
        assert_eq!(decode_checkpoint(&b), Ok(c));
        let mut bad = b.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(decode_checkpoint(&bad).is_err());
    }

    #[test]
    fn entry_fields_borrow_what_decode_entry_owns() {
        let pairs: Vec<Bytes> = [&b"temp"[..], &b"21"[..], &b""[..], &b"x\0y"[..]]
            .iter()
            .map(|p| Bytes::copy_from_slice(p))
            .collect();
        let mut e = Vec::new();
        encode_entry(&mut e, &pairs);
        let fields = entry_fields(&e).unwrap();
        assert_eq!(fields.len(), 4);
        assert!(!fields.is_empty());
        let got: Vec<&[u8]> = fields.collect();
        let want: Vec<&[u8]> = pairs.iter().map(|p| &p[..]).collect();
        assert_eq!(got, want);
        // Damage is found before the first field is handed out: a cut or
        // trailing bytes are errors, as for decode_entry.
        for cut in 0..e.len() {
            assert!(entry_fields(&e[..cut]).is_err(), "cut {cut}");
        }
        let mut long = e.clone();
        long.push(0);
        assert!(entry_fields(&long).is_err());
        // A field length past the end (a huge count) is refused, not
        // trusted.
        let mut huge = e.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(entry_fields(&huge).is_err());
    }
}
