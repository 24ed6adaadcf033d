//! Stream values (`RDB_TYPE_STREAM_LISTPACKS` 15 on read,
//! `RDB_TYPE_STREAM_LISTPACKS_2` 19 read and written), as rdb.c and
//! t_stream.c lay them out:
//!
//! ```text
//! len nodes | (string master-id (16 bytes: u64 BE ms, u64 BE seq)
//!             | string listpack)*
//! len length | len last.ms | len last.seq
//! [v2: len first.ms | len first.seq | len max_deleted.ms
//!      | len max_deleted.seq | len entries_added]
//! len groups | (string name | len last.ms | len last.seq
//!               | [v2: len entries_read]
//!               | len pel | (16 bytes id BE | u64 LE delivery_ms
//!                             | len delivery_count)*
//!               | len consumers | (string name | u64 LE seen_ms
//!                                  | len pel | (16 bytes id BE)*)*)*
//! ```
//!
//! A node's listpack: the master entry `count | deleted | n | field_1 ..
//! field_n | 0`, then entries `flags | ms-diff | seq-diff | [n | field
//! value]* or (SAMEFIELDS) value* | lp-count`, ids relative to the master
//! id; entries flagged DELETED are skipped on read.

use super::packed::{self, Elem, ListpackWriter};
use super::{types, Error, Reader, Result, Writer};
use crate::stream::groups::{GroupOp, INVALID_ENTRIES_READ};
use bytes::Bytes;

/// A consumer of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerValue {
    pub name: Vec<u8>,
    pub seen_ms: u64,
    /// Ids it owns (each one in the group's PEL).
    pub pel: Vec<u128>,
}

/// A consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupValue {
    pub name: Vec<u8>,
    pub last_id: u128,
    pub entries_read: i64,
    /// `(id, delivery_ms, delivery_count)`, ascending ids.
    pub pel: Vec<(u128, u64, u64)>,
    pub consumers: Vec<ConsumerValue>,
}

/// A decoded stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamValue {
    /// Live entries, ascending ids, fields and values alternating.
    pub entries: Vec<(u128, Vec<Vec<u8>>)>,
    pub last_id: u128,
    pub first_id: u128,
    pub max_deleted: u128,
    pub entries_added: u64,
    pub groups: Vec<GroupValue>,
}

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

/// Redis's defaults for `stream-node-max-entries` and `-bytes`: how many
/// entries (and bytes) a node takes before a new one starts.
const NODE_ENTRIES_MAX: usize = 100;
const NODE_BYTES_MAX: usize = 4096;

fn id_of(ms: u64, seq: u64) -> u128 {
    (u128::from(ms) << 64) | u128::from(seq)
}

fn ms_seq(id: u128) -> (u64, u64) {
    ((id >> 64) as u64, id as u64)
}

fn raw_id(b: &[u8]) -> Result<u128> {
    let a: [u8; 16] = b.try_into().map_err(|_| Error::Bad("stream id size"))?;
    Ok(u128::from_be_bytes(a))
}

fn id_pair(r: &mut Reader<'_>) -> Result<u128> {
    let ms = r.len()?;
    Ok(id_of(ms, r.len()?))
}

fn int(e: Option<Elem>) -> Result<i64> {
    e.and_then(|e| e.as_int())
        .ok_or(Error::Bad("stream listpack integer"))
}

/// Reads the entries of one node into `out`.
fn read_node(master: u128, lp: &[u8], out: &mut Vec<(u128, Vec<Vec<u8>>)>) -> Result<()> {
    let mut it = packed::listpack_decode(lp)?.into_iter();
    let count = int(it.next())?;
    let deleted = int(it.next())?;
    let nfields = usize::try_from(int(it.next())?).map_err(|_| Error::Bad("stream fields"))?;
    if nfields > it.len() {
        return Err(Error::Bad("stream master fields"));
    }
    let fields: Vec<Vec<u8>> = (0..nfields)
        .map(|_| it.next().map(Elem::into_bytes).unwrap_or_default())
        .collect();
    if int(it.next())? != 0 {
        return Err(Error::Bad("stream master terminator"));
    }
    let (mut live, mut dead) = (0i64, 0i64);
    let (mms, mseq) = ms_seq(master);
    while it.len() > 0 {
        let flags = int(it.next())?;
        let ms = mms.wrapping_add(int(it.next())? as u64);
        let seq = mseq.wrapping_add(int(it.next())? as u64);
        let mut pairs = Vec::new();
        if flags & FLAG_SAMEFIELDS != 0 {
            if nfields > it.len() {
                return Err(Error::Bad("stream entry"));
            }
            for f in &fields {
                pairs.push(f.clone());
                pairs.push(it.next().map(Elem::into_bytes).unwrap_or_default());
            }
        } else {
            let n = usize::try_from(int(it.next())?).map_err(|_| Error::Bad("stream entry"))?;
            if n.saturating_mul(2) > it.len() {
                return Err(Error::Bad("stream entry"));
            }
            for _ in 0..2 * n {
                pairs.push(it.next().map(Elem::into_bytes).unwrap_or_default());
            }
        }
        let _lp_count = int(it.next())?;
        if pairs.is_empty() {
            return Err(Error::Bad("stream entry without fields"));
        }
        if flags & FLAG_DELETED != 0 {
            dead += 1;
        } else {
            live += 1;
            out.push((id_of(ms, seq), pairs));
        }
    }
    if live != count || dead != deleted {
        return Err(Error::Bad("stream node counts"));
    }
    Ok(())
}

/// Reads a stream object of type `t` (15 or 19).
pub fn read(t: u8, r: &mut Reader<'_>) -> Result<StreamValue> {
    let v2 = t == types::STREAM_LISTPACKS_2;
    let mut s = StreamValue::default();
    let nodes = r.count(2)?;
    for _ in 0..nodes {
        let master = raw_id(&r.string()?)?;
        let lp = r.string()?;
        read_node(master, &lp, &mut s.entries)?;
    }
    if s.entries.windows(2).any(|w| w[0].0 >= w[1].0) || s.entries.first().is_some_and(|e| e.0 == 0)
    {
        return Err(Error::Bad("stream ids out of order"));
    }
    let length = r.len()?;
    if length != s.entries.len() as u64 {
        return Err(Error::Bad("stream length"));
    }
    s.last_id = id_pair(r)?;
    if s.entries.last().is_some_and(|e| e.0 > s.last_id) {
        return Err(Error::Bad("stream last id"));
    }
    if v2 {
        s.first_id = id_pair(r)?;
        s.max_deleted = id_pair(r)?;
        s.entries_added = r.len()?;
    } else {
        s.first_id = s.entries.first().map_or(0, |e| e.0);
        s.entries_added = length;
    }
    let ngroups = r.count(3)?;
    for _ in 0..ngroups {
        let name = r.string()?;
        let last_id = id_pair(r)?;
        let entries_read = if v2 {
            r.len()? as i64
        } else {
            estimate_entries_read(&s, last_id)
        };
        let npel = r.count(18)?;
        let mut pel = Vec::with_capacity(npel);
        for _ in 0..npel {
            let id = raw_id(r.bytes(16)?)?;
            let time = r.u64_le()?;
            pel.push((id, time, r.len()?));
        }
        if pel.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(Error::Bad("stream PEL order"));
        }
        let nconsumers = r.count(10)?;
        let mut consumers = Vec::with_capacity(nconsumers);
        let mut owned = 0usize;
        for _ in 0..nconsumers {
            let cname = r.string()?;
            let seen_ms = r.u64_le()?;
            let n = r.count(16)?;
            let mut cpel = Vec::with_capacity(n);
            for _ in 0..n {
                let id = raw_id(r.bytes(16)?)?;
                if pel.binary_search_by_key(&id, |e| e.0).is_err() {
                    return Err(Error::Bad("consumer PEL entry not in the group PEL"));
                }
                cpel.push(id);
            }
            owned += cpel.len();
            consumers.push(ConsumerValue {
                name: cname,
                seen_ms,
                pel: cpel,
            });
        }
        // Every group PEL entry has exactly one owner.
        let mut all: Vec<u128> = consumers
            .iter()
            .flat_map(|c| c.pel.iter().copied())
            .collect();
        all.sort_unstable();
        all.dedup();
        if all.len() != owned || owned != pel.len() {
            return Err(Error::Bad("stream PEL ownership"));
        }
        if consumers.windows(2).any(|w| w[0].name >= w[1].name) {
            return Err(Error::Bad("stream consumer order"));
        }
        s.groups.push(GroupValue {
            name,
            last_id,
            entries_read,
            pel,
            consumers,
        });
    }
    let mut names: Vec<&[u8]> = s.groups.iter().map(|g| &g.name[..]).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(Error::Bad("duplicate stream group"));
    }
    Ok(s)
}

/// Redis's `streamEstimateDistanceFromFirstEverEntry`, for groups of RDB 9
/// streams (which do not store the group's entries-read counter).
fn estimate_entries_read(s: &StreamValue, id: u128) -> i64 {
    let (added, length) = (s.entries_added as i64, s.entries.len() as i64);
    if added == 0 {
        return 0;
    }
    if length == 0 && id <= s.last_id {
        return added;
    }
    if id == s.last_id {
        return added;
    }
    if id > s.last_id {
        return INVALID_ENTRIES_READ;
    }
    if s.max_deleted == 0 || s.max_deleted < s.first_id {
        if id < s.first_id {
            return added - length;
        } else if id == s.first_id {
            return added - length + 1;
        }
    }
    INVALID_ENTRIES_READ
}

/// Writes `19 | stream` as redis-server 7.0 writes a stream whose entries
/// were appended by XADD (nodes of at most 100 entries / 4 KiB, the master
/// entry taking the node's first entry's fields).
pub fn write(w: &mut Writer, s: &StreamValue) {
    w.u8(types::STREAM_LISTPACKS_2);
    let mut nodes: Vec<(u128, Vec<u8>)> = Vec::new();
    let mut i = 0;
    while i < s.entries.len() {
        let (master, ref mfields_src) = s.entries[i];
        let mfields: Vec<&[u8]> = mfields_src.iter().step_by(2).map(|f| &f[..]).collect();
        let mut body = ListpackWriter::new();
        let mut count = 0usize;
        let mut lp_bytes = 0usize;
        while i < s.entries.len() {
            let (id, ref pairs) = s.entries[i];
            let totelelen: usize = pairs.iter().map(Vec::len).sum();
            if count > 0 && (lp_bytes + totelelen >= NODE_BYTES_MAX || count >= NODE_ENTRIES_MAX) {
                break;
            }
            let same = pairs.len() / 2 == mfields.len()
                && pairs
                    .iter()
                    .step_by(2)
                    .zip(&mfields)
                    .all(|(a, b)| a[..] == **b);
            let (mms, mseq) = ms_seq(master);
            let (ms, seq) = ms_seq(id);
            body.push_int(if same { FLAG_SAMEFIELDS } else { 0 });
            body.push_int(ms.wrapping_sub(mms) as i64);
            body.push_int(seq.wrapping_sub(mseq) as i64);
            let n = pairs.len() / 2;
            if same {
                for v in pairs.iter().skip(1).step_by(2) {
                    body.push(v);
                }
                body.push_int(n as i64 + 3);
            } else {
                body.push_int(n as i64);
                for p in pairs {
                    body.push(p);
                }
                body.push_int(2 * n as i64 + 4);
            }
            count += 1;
            i += 1;
            // `lp_bytes` as Redis sees it before the next append: the
            // master entry plus the entries so far.
            lp_bytes = master_bytes(count, &mfields) + body.bytes();
        }
        let mut lp = ListpackWriter::new();
        lp.push_int(count as i64);
        lp.push_int(0);
        lp.push_int(mfields.len() as i64);
        for f in &mfields {
            lp.push(f);
        }
        lp.push_int(0);
        let mut bytes = lp.finish();
        // Splice the entries after the master entry.
        let entries = body.finish();
        bytes.pop();
        bytes.extend_from_slice(&entries[6..]);
        let total = bytes.len() as u32;
        bytes[0..4].copy_from_slice(&total.to_le_bytes());
        let n = 4 + mfields.len() + listpack_count(&entries);
        let n = if n < usize::from(u16::MAX) {
            n as u16
        } else {
            u16::MAX
        };
        bytes[4..6].copy_from_slice(&n.to_le_bytes());
        nodes.push((master, bytes));
    }
    w.len(nodes.len() as u64);
    for (master, lp) in &nodes {
        w.string(&master.to_be_bytes());
        w.string(lp);
    }
    w.len(s.entries.len() as u64);
    let id = |w: &mut Writer, id: u128| {
        let (ms, seq) = ms_seq(id);
        w.len(ms);
        w.len(seq);
    };
    id(w, s.last_id);
    id(w, s.first_id);
    id(w, s.max_deleted);
    w.len(s.entries_added);
    w.len(s.groups.len() as u64);
    for g in &s.groups {
        w.string(&g.name);
        id(w, g.last_id);
        w.len(g.entries_read as u64);
        w.len(g.pel.len() as u64);
        for &(pid, time, count) in &g.pel {
            w.raw(&pid.to_be_bytes());
            w.u64_le(time);
            w.len(count);
        }
        w.len(g.consumers.len() as u64);
        for c in &g.consumers {
            w.string(&c.name);
            w.u64_le(c.seen_ms);
            w.len(c.pel.len() as u64);
            for pid in &c.pel {
                w.raw(&pid.to_be_bytes());
            }
        }
    }
}

/// Bytes of a node's header and master entry (count as `count`).
fn master_bytes(count: usize, fields: &[&[u8]]) -> usize {
    let mut lp = ListpackWriter::new();
    lp.push_int(count as i64);
    lp.push_int(0);
    lp.push_int(fields.len() as i64);
    for f in fields {
        lp.push(f);
    }
    lp.push_int(0);
    lp.bytes() - 1 - 6
}

fn listpack_count(lp: &[u8]) -> usize {
    let n = u16::from_le_bytes([lp[4], lp[5]]);
    if n == u16::MAX {
        packed::listpack_decode(lp).map_or(0, |v| v.len())
    } else {
        usize::from(n)
    }
}

/// The stream value of an open stream (entries read from its log).
pub fn snapshot(
    s: &crate::stream::StreamRef,
) -> std::result::Result<StreamValue, crate::stream::StreamError> {
    let g = s.lock()?;
    let entries = g
        .range(0, u128::MAX, usize::MAX, false)?
        .into_iter()
        .map(|(id, pairs)| (id, pairs.into_iter().map(|b| b.to_vec()).collect()))
        .collect();
    let m = g.meta;
    let groups = g
        .groups
        .iter()
        .map(|(name, grp)| GroupValue {
            name: name.to_vec(),
            last_id: grp.last_id,
            entries_read: grp.entries_read,
            pel: grp
                .pel
                .iter()
                .map(|(id, n)| (id, n.delivery_time, n.delivery_count))
                .collect(),
            consumers: grp
                .consumers()
                .map(|(cname, c)| ConsumerValue {
                    name: cname.to_vec(),
                    seen_ms: c.seen_time,
                    pel: c.pel.keys().collect(),
                })
                .collect(),
        })
        .collect();
    Ok(StreamValue {
        entries,
        last_id: m.last_id,
        first_id: m.first,
        max_deleted: m.max_deleted,
        entries_added: m.entries_added,
        groups,
    })
}

/// The DUMP payload of a stream.
pub fn dump(
    s: &crate::stream::StreamRef,
) -> std::result::Result<Vec<u8>, crate::stream::StreamError> {
    let v = snapshot(s)?;
    let mut w = Writer::new();
    write(&mut w, &v);
    Ok(super::dump_envelope(w.buf))
}

/// A new stream holding `v`: entries appended to its log, then the
/// metadata (last id, entries added, max deleted id), then each group,
/// its consumers and their pending entries as group ops.
pub fn create(
    reg: &std::sync::Arc<crate::stream::Registry>,
    v: &StreamValue,
) -> std::result::Result<crate::stream::StreamRef, crate::stream::StreamError> {
    let s = reg.create()?;
    {
        let mut g = s.lock()?;
        let mut pairs: Vec<Bytes> = Vec::new();
        for (n, (id, p)) in v.entries.iter().enumerate() {
            pairs.clear();
            pairs.extend(p.iter().map(|b| Bytes::copy_from_slice(b)));
            g.append(*id, &pairs)?;
            if n % 1024 == 1023 {
                g.flush()?;
            }
        }
        g.flush()?;
        g.set_id(v.last_id, Some(v.entries_added), Some(v.max_deleted))?;
        for grp in &v.groups {
            let group = Bytes::copy_from_slice(&grp.name);
            g.group_op(GroupOp::Create {
                group: group.clone(),
                last_id: grp.last_id,
                entries_read: grp.entries_read,
            })?;
            for c in &grp.consumers {
                let consumer = Bytes::copy_from_slice(&c.name);
                let nacks: Vec<(u128, u64, u64)> = c
                    .pel
                    .iter()
                    .filter_map(|id| {
                        grp.pel
                            .binary_search_by_key(id, |e| e.0)
                            .ok()
                            .map(|i| grp.pel[i])
                    })
                    .collect();
                g.group_op(GroupOp::Deliver {
                    group: group.clone(),
                    consumer,
                    seen: c.seen_ms,
                    last: None,
                    nacks,
                })?;
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StreamValue {
        let e = |id: u128, kv: &[&str]| (id, kv.iter().map(|s| s.as_bytes().to_vec()).collect());
        StreamValue {
            entries: vec![
                e(id_of(1, 0), &["a", "1", "b", "2"]),
                e(id_of(1, 1), &["a", "3", "b", "4"]),
                e(id_of(2, 0), &["c", "x"]),
            ],
            last_id: id_of(2, 0),
            first_id: id_of(1, 0),
            max_deleted: 0,
            entries_added: 3,
            groups: vec![GroupValue {
                name: b"g".to_vec(),
                last_id: id_of(1, 1),
                entries_read: 2,
                pel: vec![(id_of(1, 0), 1000, 1), (id_of(1, 1), 1001, 2)],
                consumers: vec![
                    ConsumerValue {
                        name: b"alice".to_vec(),
                        seen_ms: 1001,
                        pel: vec![id_of(1, 1)],
                    },
                    ConsumerValue {
                        name: b"bob".to_vec(),
                        seen_ms: 1000,
                        pel: vec![id_of(1, 0)],
                    },
                ],
            }],
        }
    }

    #[test]
    fn stream_round_trips() {
        let s = sample();
        let mut w = Writer::new();
        write(&mut w, &s);
        let mut r = Reader::new(&w.buf[1..]);
        assert_eq!(read(types::STREAM_LISTPACKS_2, &mut r), Ok(s));
        assert!(r.is_empty());
    }

    #[test]
    fn many_entries_split_into_nodes() {
        let mut s = StreamValue::default();
        for i in 1..=1000u64 {
            s.entries
                .push((id_of(i, 0), vec![b"f".to_vec(), i.to_string().into_bytes()]));
        }
        s.last_id = id_of(1000, 0);
        s.first_id = id_of(1, 0);
        s.entries_added = 1000;
        let mut w = Writer::new();
        write(&mut w, &s);
        assert_eq!(w.buf[1], 10, "ten nodes of 100 entries");
        let mut r = Reader::new(&w.buf[1..]);
        assert_eq!(read(types::STREAM_LISTPACKS_2, &mut r), Ok(s));
    }

    #[test]
    fn truncations_fail_cleanly() {
        let mut w = Writer::new();
        write(&mut w, &sample());
        for cut in 1..w.buf.len() {
            assert!(read(types::STREAM_LISTPACKS_2, &mut Reader::new(&w.buf[1..cut])).is_err());
        }
    }
}
