//! Consumer groups of a stream (Redis's `streamCG`, `streamConsumer`,
//! `streamNACK`), their operation records and checkpoint encoding.
//!
//! Every change of group state is a [`GroupOp`], written as an op record
//! (kind 5) in the stream's op log before it is applied, and replayed by
//! the same [`Groups::apply`] at startup: times in ops are absolute (the
//! command's clock), so idle times continue from the recorded times.
//!
//! ```text
//! group op  = u8 sub | body
//!   1 CREATE   = name | u128 last_id | i64 entries_read
//!   2 SETID    = name | u128 last_id | i64 entries_read
//!   3 DESTROY  = name
//!   4 CONSUMER = name | consumer | u64 seen          (creates it if missing)
//!   5 DELCONS  = name | consumer                     (drops its PEL entries)
//!   6 DELIVER  = name | consumer | u64 seen | u8 has_last
//!                | [u128 last_id | i64 entries_read]
//!                | u32 n | { u128 id | u64 time | u64 count }{n}
//!   7 ACK      = name | u32 n | u128 id{n}
//! name      = u32 len | bytes
//! groups    = u32 ngroups | { name | u128 last_id | i64 entries_read
//!             | u32 nconsumers | { name | u64 seen }
//!             | u64 npel | { u128 id | u64 time | u64 count | u32 consumer_index } }
//! ```

use super::idmap::IdMap;
use crate::storage::bytes::{Malformed, Reader};
use bytes::Bytes;
use std::collections::BTreeMap;

/// Redis's `SCG_INVALID_ENTRIES_READ`.
pub const INVALID_ENTRIES_READ: i64 = -1;

/// A pending (delivered, not acknowledged) entry: 24 bytes, the owner as
/// a slot of [`Group`]'s consumer table (Redis's `streamNACK` points to
/// its consumer the same way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nack {
    pub delivery_time: u64,
    pub delivery_count: u64,
    consumer: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consumer {
    pub name: Bytes,
    pub seen_time: u64,
    /// The ids this consumer owns (each also in the group PEL).
    pub pel: IdMap<()>,
}

/// A consumer group. Consumers live in slots (reused after XGROUP
/// DELCONSUMER) so a PEL entry names its owner by a `u32`; `names` maps
/// names to slots in Redis's (rax) order.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub last_id: u128,
    pub entries_read: i64,
    pub pel: IdMap<Nack>,
    slots: Vec<Option<Consumer>>,
    free: Vec<u32>,
    names: BTreeMap<Bytes, u32>,
}

impl PartialEq for Group {
    /// Same state (slot numbers are not state).
    fn eq(&self, o: &Self) -> bool {
        self.last_id == o.last_id
            && self.entries_read == o.entries_read
            && self.consumers().eq(o.consumers())
            && self.pel.len() == o.pel.len()
            && self.pel.iter().zip(o.pel.iter()).all(|((a, x), (b, y))| {
                a == b
                    && (x.delivery_time, x.delivery_count) == (y.delivery_time, y.delivery_count)
                    && self.owner(x) == o.owner(y)
            })
    }
}

impl Eq for Group {}

/// One change of group state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupOp {
    Create {
        group: Bytes,
        last_id: u128,
        entries_read: i64,
    },
    SetId {
        group: Bytes,
        last_id: u128,
        entries_read: i64,
    },
    Destroy {
        group: Bytes,
    },
    Consumer {
        group: Bytes,
        consumer: Bytes,
        seen: u64,
    },
    DelConsumer {
        group: Bytes,
        consumer: Bytes,
    },
    /// Entries delivered (or claimed) to `consumer`: each id's NACK gets
    /// this owner, time and count; optionally the group's position moves.
    Deliver {
        group: Bytes,
        consumer: Bytes,
        seen: u64,
        last: Option<(u128, i64)>,
        nacks: Vec<(u128, u64, u64)>,
    },
    Ack {
        group: Bytes,
        ids: Vec<u128>,
    },
}

/// The groups of a stream, by name (sorted as Redis's rax).
pub type Groups = BTreeMap<Bytes, Group>;

impl Group {
    pub fn new(last_id: u128, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            ..Group::default()
        }
    }

    pub fn consumer(&self, name: &[u8]) -> Option<&Consumer> {
        let &slot = self.names.get(name)?;
        self.slots.get(slot as usize)?.as_ref()
    }

    pub fn has_consumer(&self, name: &[u8]) -> bool {
        self.names.contains_key(name)
    }

    pub fn consumer_count(&self) -> usize {
        self.names.len()
    }

    /// Consumers by name, in Redis's order.
    pub fn consumers(&self) -> impl Iterator<Item = (&Bytes, &Consumer)> + '_ {
        self.names.iter().filter_map(|(name, &slot)| {
            self.slots
                .get(slot as usize)
                .and_then(Option::as_ref)
                .map(|c| (name, c))
        })
    }

    /// The name of the consumer owning a pending entry.
    pub fn owner(&self, n: &Nack) -> &Bytes {
        static NONE: Bytes = Bytes::new();
        self.slots
            .get(n.consumer as usize)
            .and_then(Option::as_ref)
            .map_or(&NONE, |c| &c.name)
    }

    /// The slot of consumer `name`, created (seen time 0) if missing.
    fn slot_of(&mut self, name: &Bytes) -> u32 {
        if let Some(&s) = self.names.get(name) {
            return s;
        }
        // An owned copy: a name sliced from a request must not keep the
        // whole request buffer alive.
        let name = Bytes::copy_from_slice(name);
        let c = Consumer {
            name: name.clone(),
            ..Consumer::default()
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(c);
                s
            }
            None => {
                self.slots.push(Some(c));
                (self.slots.len() - 1) as u32
            }
        };
        self.names.insert(name, slot);
        slot
    }

    fn slot_mut(&mut self, slot: u32) -> Option<&mut Consumer> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// Removes consumer `name` and its pending entries.
    fn remove_consumer(&mut self, name: &[u8]) {
        let Some(slot) = self.names.remove(name) else {
            return;
        };
        if let Some(c) = self.slots.get_mut(slot as usize).and_then(Option::take) {
            for (id, _) in c.pel.iter() {
                self.pel.remove(id);
            }
            self.free.push(slot);
        }
    }

    /// Sets a pending entry's owner, time and count (moving it from its
    /// previous owner).
    fn deliver(&mut self, id: u128, slot: u32, delivery_time: u64, delivery_count: u64) {
        let nack = Nack {
            delivery_time,
            delivery_count,
            consumer: slot,
        };
        if let Some(old) = self.pel.insert(id, nack) {
            if old.consumer != slot {
                if let Some(c) = self.slot_mut(old.consumer) {
                    c.pel.remove(id);
                }
            }
        }
        if let Some(c) = self.slot_mut(slot) {
            c.pel.insert(id, ());
        }
    }

    /// Removes `id` from the group PEL and its owner's PEL.
    fn unack(&mut self, id: u128) -> bool {
        match self.pel.remove(id) {
            Some(n) => {
                if let Some(c) = self.slot_mut(n.consumer) {
                    c.pel.remove(id);
                }
                true
            }
            None => false,
        }
    }
}

/// Applies one op (live and at replay). Ops naming a missing group do
/// nothing (they cannot be written that way).
pub fn apply(groups: &mut Groups, op: GroupOp) {
    match op {
        GroupOp::Create {
            group,
            last_id,
            entries_read,
        } => {
            groups.insert(group, Group::new(last_id, entries_read));
        }
        GroupOp::SetId {
            group,
            last_id,
            entries_read,
        } => {
            if let Some(g) = groups.get_mut(&group) {
                g.last_id = last_id;
                g.entries_read = entries_read;
            }
        }
        GroupOp::Destroy { group } => {
            groups.remove(&group);
        }
        GroupOp::Consumer {
            group,
            consumer,
            seen,
        } => {
            if let Some(g) = groups.get_mut(&group) {
                let slot = g.slot_of(&consumer);
                if let Some(c) = g.slot_mut(slot) {
                    c.seen_time = seen;
                }
            }
        }
        GroupOp::DelConsumer { group, consumer } => {
            if let Some(g) = groups.get_mut(&group) {
                g.remove_consumer(&consumer);
            }
        }
        GroupOp::Deliver {
            group,
            consumer,
            seen,
            last,
            nacks,
        } => {
            let Some(g) = groups.get_mut(&group) else {
                return;
            };
            if let Some((id, er)) = last {
                g.last_id = id;
                g.entries_read = er;
            }
            let slot = g.slot_of(&consumer);
            if let Some(c) = g.slot_mut(slot) {
                c.seen_time = seen;
            }
            for (id, time, count) in nacks {
                g.deliver(id, slot, time, count);
            }
        }
        GroupOp::Ack { group, ids } => {
            if let Some(g) = groups.get_mut(&group) {
                for id in ids {
                    g.unack(id);
                }
            }
        }
    }
}

fn put_name(out: &mut Vec<u8>, n: &[u8]) {
    out.extend_from_slice(&(n.len() as u32).to_le_bytes());
    out.extend_from_slice(n);
}

pub fn encode_op(out: &mut Vec<u8>, op: &GroupOp) {
    match op {
        GroupOp::Create {
            group,
            last_id,
            entries_read,
        }
        | GroupOp::SetId {
            group,
            last_id,
            entries_read,
        } => {
            out.push(if matches!(op, GroupOp::Create { .. }) {
                1
            } else {
                2
            });
            put_name(out, group);
            out.extend_from_slice(&last_id.to_le_bytes());
            out.extend_from_slice(&entries_read.to_le_bytes());
        }
        GroupOp::Destroy { group } => {
            out.push(3);
            put_name(out, group);
        }
        GroupOp::Consumer {
            group,
            consumer,
            seen,
        } => {
            out.push(4);
            put_name(out, group);
            put_name(out, consumer);
            out.extend_from_slice(&seen.to_le_bytes());
        }
        GroupOp::DelConsumer { group, consumer } => {
            out.push(5);
            put_name(out, group);
            put_name(out, consumer);
        }
        GroupOp::Deliver {
            group,
            consumer,
            seen,
            last,
            nacks,
        } => {
            out.push(6);
            put_name(out, group);
            put_name(out, consumer);
            out.extend_from_slice(&seen.to_le_bytes());
            match last {
                Some((id, er)) => {
                    out.push(1);
                    out.extend_from_slice(&id.to_le_bytes());
                    out.extend_from_slice(&er.to_le_bytes());
                }
                None => out.push(0),
            }
            out.extend_from_slice(&(nacks.len() as u32).to_le_bytes());
            for (id, t, c) in nacks {
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&t.to_le_bytes());
                out.extend_from_slice(&c.to_le_bytes());
            }
        }
        GroupOp::Ack { group, ids } => {
            out.push(7);
            put_name(out, group);
            out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
            for id in ids {
                out.extend_from_slice(&id.to_le_bytes());
            }
        }
    }
}

pub fn decode_op(r: &mut Reader<'_>) -> Result<GroupOp, Malformed> {
    let sub = r.u8()?;
    let group = r.bytes()?;
    Ok(match sub {
        1 | 2 => {
            let last_id = r.u128()?;
            let entries_read = r.i64()?;
            if sub == 1 {
                GroupOp::Create {
                    group,
                    last_id,
                    entries_read,
                }
            } else {
                GroupOp::SetId {
                    group,
                    last_id,
                    entries_read,
                }
            }
        }
        3 => GroupOp::Destroy { group },
        4 => GroupOp::Consumer {
            group,
            consumer: r.bytes()?,
            seen: r.u64()?,
        },
        5 => GroupOp::DelConsumer {
            group,
            consumer: r.bytes()?,
        },
        6 => {
            let consumer = r.bytes()?;
            let seen = r.u64()?;
            let last = match r.u8()? {
                0 => None,
                1 => Some((r.u128()?, r.i64()?)),
                _ => return Err(Malformed("bad deliver flag")),
            };
            let n = r.u32()? as usize;
            let mut nacks = Vec::with_capacity(n.min(r.remaining() / 32));
            for _ in 0..n {
                nacks.push((r.u128()?, r.u64()?, r.u64()?));
            }
            GroupOp::Deliver {
                group,
                consumer,
                seen,
                last,
                nacks,
            }
        }
        7 => {
            let n = r.u32()? as usize;
            let mut ids = Vec::with_capacity(n.min(r.remaining() / 16));
            for _ in 0..n {
                ids.push(r.u128()?);
            }
            GroupOp::Ack { group, ids }
        }
        _ => return Err(Malformed("unknown group op")),
    })
}

/// Appends the full group state (checkpoint).
pub fn encode_groups(out: &mut Vec<u8>, groups: &Groups) {
    out.extend_from_slice(&(groups.len() as u32).to_le_bytes());
    for (name, g) in groups {
        put_name(out, name);
        out.extend_from_slice(&g.last_id.to_le_bytes());
        out.extend_from_slice(&g.entries_read.to_le_bytes());
        out.extend_from_slice(&(g.consumer_count() as u32).to_le_bytes());
        // Consumer index in the checkpoint = position in name order.
        let mut index = vec![u32::MAX; g.slots.len()];
        for (i, (cname, c)) in g.consumers().enumerate() {
            put_name(out, cname);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            if let Some(&slot) = g.names.get(cname) {
                index[slot as usize] = i as u32;
            }
        }
        out.extend_from_slice(&(g.pel.len() as u64).to_le_bytes());
        for (id, n) in g.pel.iter() {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&n.delivery_time.to_le_bytes());
            out.extend_from_slice(&n.delivery_count.to_le_bytes());
            let ci = index.get(n.consumer as usize).copied().unwrap_or(u32::MAX);
            out.extend_from_slice(&ci.to_le_bytes());
        }
    }
}

pub fn decode_groups(r: &mut Reader<'_>) -> Result<Groups, Malformed> {
    let mut groups = Groups::new();
    let ng = r.u32()?;
    for _ in 0..ng {
        let name = r.bytes()?;
        let mut g = Group::new(r.u128()?, r.i64()?);
        let nc = r.u32()? as usize;
        let mut slots = Vec::with_capacity(nc.min(r.remaining() / 12));
        for _ in 0..nc {
            let cname = r.bytes()?;
            let seen = r.u64()?;
            let slot = g.slot_of(&cname);
            if let Some(c) = g.slot_mut(slot) {
                c.seen_time = seen;
            }
            slots.push(slot);
        }
        let np = r.u64()?;
        for _ in 0..np {
            let id = r.u128()?;
            let delivery_time = r.u64()?;
            let delivery_count = r.u64()?;
            let ci = r.u32()? as usize;
            let slot = *slots.get(ci).ok_or(Malformed("bad consumer index"))?;
            g.deliver(id, slot, delivery_time, delivery_count);
        }
        groups.insert(name, g);
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn ops_round_trip_and_apply() {
        let ops = vec![
            GroupOp::Create {
                group: b("g"),
                last_id: 5,
                entries_read: -1,
            },
            GroupOp::Consumer {
                group: b("g"),
                consumer: b("c1"),
                seen: 10,
            },
            GroupOp::Deliver {
                group: b("g"),
                consumer: b("c1"),
                seen: 11,
                last: Some((7, 2)),
                nacks: vec![(6, 11, 1), (7, 11, 1)],
            },
            GroupOp::Deliver {
                group: b("g"),
                consumer: b("c2"),
                seen: 12,
                last: None,
                nacks: vec![(7, 12, 2)],
            },
            GroupOp::Ack {
                group: b("g"),
                ids: vec![6],
            },
            GroupOp::SetId {
                group: b("g"),
                last_id: 9,
                entries_read: 4,
            },
            GroupOp::Create {
                group: b("h"),
                last_id: 0,
                entries_read: 0,
            },
            GroupOp::DelConsumer {
                group: b("h"),
                consumer: b("x"),
            },
            GroupOp::Destroy { group: b("h") },
        ];
        let mut groups = Groups::new();
        for op in ops {
            let mut buf = Vec::new();
            encode_op(&mut buf, &op);
            let mut r = Reader::new(&buf);
            assert_eq!(decode_op(&mut r), Ok(op.clone()));
            assert_eq!(r.remaining(), 0);
            for cut in 0..buf.len() {
                assert!(decode_op(&mut Reader::new(&buf[..cut])).is_err());
            }
            apply(&mut groups, op);
        }
        let g = &groups[&b("g")];
        assert_eq!((g.last_id, g.entries_read), (9, 4));
        assert_eq!(g.pel.len(), 1);
        let n7 = g.pel.get(7).expect("7 pending");
        assert_eq!(g.owner(n7), &b("c2"));
        assert_eq!(n7.delivery_count, 2);
        assert!(g.consumer(b"c1").expect("c1").pel.is_empty());
        assert_eq!(g.consumer(b"c2").expect("c2").pel.len(), 1);
        assert!(!groups.contains_key(&b("h")));
        let mut buf = Vec::new();
        encode_groups(&mut buf, &groups);
        let mut r = Reader::new(&buf);
        assert_eq!(decode_groups(&mut r), Ok(groups));
        assert_eq!(r.remaining(), 0);
    }
}
