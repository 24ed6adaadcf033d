//! Client-side caching state (CLIENT TRACKING), after Redis 7.0's
//! `tracking.c`. Pure data under the keyspace lock; delivery of the
//! invalidation messages is `node::tracking`.
//!
//! - The tracking table: key name (all databases share it, as in Redis)
//!   -> ids of the clients that read it in default mode. A key modified is
//!   invalidated once for each of them and forgotten
//!   (`Tracking::invalidate`); bounded by `tracking-table-max-keys`
//!   (`Tracking::over_limit_victims`, Redis's `trackingLimitUsedSlots`).
//! - The prefix table (BCAST): prefix -> its clients and the keys modified
//!   since the last broadcast, each with the client that last modified it
//!   (for NOLOOP), sent in one message per prefix (`take_broadcasts`).
//! - Per-client state: flags, redirection, prefixes.
//!
//! Databases note the keys they modify only while some client tracks
//! (`Db::track`), so without tracking clients a write pays one branch.

use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// CLIENT TRACKING options and state bits (Redis's `CLIENT_TRACKING_*`).
pub const BCAST: u8 = 1 << 0;
pub const OPTIN: u8 = 1 << 1;
pub const OPTOUT: u8 = 1 << 2;
pub const NOLOOP: u8 = 1 << 3;
/// CLIENT CACHING YES (OPTIN) / NO (OPTOUT) given for the next command.
pub const CACHING: u8 = 1 << 4;
/// The redirection target disconnected.
pub const BROKEN_REDIR: u8 = 1 << 5;

/// One tracking client's state (Redis keeps it in `client`).
#[derive(Debug, Default, Clone)]
pub struct ClientTracking {
    pub flags: u8,
    /// Client id invalidations go to (0: the client itself).
    pub redirect: u64,
    /// BCAST prefixes, sorted as Redis's rax (memcmp order).
    pub prefixes: BTreeSet<Bytes>,
}

/// A BCAST prefix's state (Redis's `bcastState`).
#[derive(Debug, Default)]
struct Bcast {
    /// Keys modified since the last broadcast -> the client that last
    /// modified each (0: none, e.g. expiry).
    keys: BTreeMap<Bytes, u64>,
    /// Subscribed clients, in subscription order.
    clients: Vec<u64>,
}

/// A message for one client: what `sendTrackingMessage` gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// One key: `[key]`.
    Key(Bytes),
    /// FLUSHDB / FLUSHALL: null (Redis's `shared.null[c->resp]` of the
    /// tracking client, even when redirected).
    Flush,
    /// A ready array of keys (BCAST): `*n\r\n$..`.
    Proto(Bytes),
}

/// A key a database reported modified.
#[derive(Debug, Clone)]
pub struct Modified {
    pub key: Bytes,
    /// Modified by the running command's client (false: expiry, eviction:
    /// Redis's `signalModifiedKey(NULL, ...)`).
    pub by_client: bool,
}

/// The server's tracking state (`Keyspace::tracking`).
#[derive(Debug)]
pub struct Tracking {
    clients: HashMap<u64, ClientTracking>,
    /// Tracked key -> (index in `keys`, client ids).
    table: HashMap<Bytes, (usize, Vec<u64>)>,
    /// The tracked keys, for random eviction.
    keys: Vec<Bytes>,
    /// Ids across the table (INFO `tracking_total_items`); ids of clients
    /// gone stay counted until their key is invalidated, as in Redis.
    total_items: u64,
    prefixes: BTreeMap<Bytes, Bcast>,
    /// `tracking-table-max-keys` (0: no limit).
    pub max_keys: u64,
    /// Calls of `over_limit_victims` that stayed over the limit in a row.
    timeout_counter: u32,
    rng: u64,
    /// Messages for the running command's client, sent after its reply
    /// (Redis's `tracking_pending_keys`): None is a flush.
    pending_own: Vec<Option<Bytes>>,
}

impl Default for Tracking {
    fn default() -> Self {
        Tracking {
            clients: HashMap::new(),
            table: HashMap::new(),
            keys: Vec::new(),
            total_items: 0,
            prefixes: BTreeMap::new(),
            max_keys: 1_000_000,
            timeout_counter: 0,
            rng: 0x9e37_79b9_7f4a_7c15
                ^ std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64),
            pending_own: Vec::new(),
        }
    }
}

impl Tracking {
    /// True while some client has tracking on (INFO `tracking_clients` > 0).
    pub fn active(&self) -> bool {
        !self.clients.is_empty()
    }

    /// INFO `tracking_clients`.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// INFO `tracking_total_keys`, `tracking_total_items`,
    /// `tracking_total_prefixes`.
    pub fn totals(&self) -> (usize, u64, usize) {
        (self.table.len(), self.total_items, self.prefixes.len())
    }

    pub fn client(&self, id: u64) -> Option<&ClientTracking> {
        self.clients.get(&id)
    }

    pub fn client_mut(&mut self, id: u64) -> Option<&mut ClientTracking> {
        self.clients.get_mut(&id)
    }

    /// Redis's `enableTracking`: turns tracking on (or changes its
    /// options); the caller checked the options (`check_prefixes` etc.).
    pub fn enable(&mut self, id: u64, redirect: u64, options: u8, prefixes: &[Bytes]) {
        let c = self.clients.entry(id).or_default();
        c.flags &= !(BROKEN_REDIR | BCAST | OPTIN | OPTOUT | NOLOOP);
        c.redirect = redirect;
        let mut add = Vec::new();
        if options & BCAST != 0 {
            c.flags |= BCAST;
            if prefixes.is_empty() {
                add.push(Bytes::new());
            }
            add.extend(prefixes.iter().cloned());
        }
        c.flags |= options & (OPTIN | OPTOUT | NOLOOP);
        for p in add {
            let bs = self.prefixes.entry(p.clone()).or_default();
            if !bs.clients.contains(&id) {
                bs.clients.push(id);
                c.prefixes.insert(p);
            }
        }
    }

    /// Redis's `disableTracking`: leaves the prefixes; keys the client
    /// read stay in the table (their ids are skipped when invalidated).
    pub fn disable(&mut self, id: u64) {
        let Some(c) = self.clients.remove(&id) else {
            return;
        };
        for p in &c.prefixes {
            if let Some(bs) = self.prefixes.get_mut(p) {
                bs.clients.retain(|x| *x != id);
                if bs.clients.is_empty() {
                    self.prefixes.remove(p);
                }
            }
        }
    }

    /// Redis's `checkPrefixCollisionsOrReply`: the error text, if any.
    pub fn check_prefixes(&self, id: u64, prefixes: &[Bytes]) -> Option<String> {
        let overlap = |a: &[u8], b: &[u8]| {
            let n = a.len().min(b.len());
            a[..n] == b[..n]
        };
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        for (i, p) in prefixes.iter().enumerate() {
            if let Some(c) = self.clients.get(&id) {
                for e in &c.prefixes {
                    if overlap(e, p) {
                        return Some(format!(
                            "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                            text(p),
                            text(e)
                        ));
                    }
                }
            }
            for q in &prefixes[i + 1..] {
                if overlap(p, q) {
                    return Some(format!(
                        "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                        text(p),
                        text(q)
                    ));
                }
            }
        }
        None
    }

    /// Redis's `trackingRememberKeys` for client `id` (default mode, the
    /// caller checked): honours OPTIN/OPTOUT with CACHING.
    pub fn remember<'a>(&mut self, id: u64, keys: impl Iterator<Item = &'a Bytes>) {
        let Some(c) = self.clients.get(&id) else {
            return;
        };
        let caching = c.flags & CACHING != 0;
        if (c.flags & OPTIN != 0 && !caching) || (c.flags & OPTOUT != 0 && caching) {
            return;
        }
        for k in keys {
            let (_, ids) = match self.table.get_mut(&k[..]) {
                Some(e) => e,
                None => {
                    // A key of its own (the argument may be a slice of a
                    // request buffer).
                    let k = Bytes::copy_from_slice(k);
                    self.keys.push(k.clone());
                    self.table
                        .entry(k)
                        .or_insert_with(|| (self.keys.len() - 1, Vec::new()))
                }
            };
            if !ids.contains(&id) {
                ids.push(id);
                self.total_items += 1;
            }
        }
    }

    /// Redis's `trackingInvalidateKey`: notes the key for the BCAST
    /// prefixes it matches (`modifier` 0 when no client modified it), and
    /// returns the clients to tell (default mode), forgetting the key.
    /// `current` is the running command's client: NOLOOP skips it, its own
    /// message is queued for after its reply (`pending_own`).
    pub fn invalidate(&mut self, key: &Bytes, modifier: u64, current: u64, out: &mut Vec<u64>) {
        self.invalidate_as(key, true, modifier, current, out)
    }

    /// `invalidate` for the table's size limit (Redis's
    /// `trackingInvalidateKey(NULL, key, 0)`): no BCAST note, every
    /// client told at once.
    pub fn invalidate_only_table(&mut self, key: &Bytes, out: &mut Vec<u64>) {
        self.invalidate_as(key, false, 0, 0, out)
    }

    fn invalidate_as(
        &mut self,
        key: &Bytes,
        bcast: bool,
        modifier: u64,
        current: u64,
        out: &mut Vec<u64>,
    ) {
        if bcast && !self.prefixes.is_empty() {
            for (p, bs) in self.prefixes.iter_mut() {
                if key.starts_with(p) {
                    bs.keys.insert(key.clone(), modifier);
                }
            }
        }
        let Some((pos, ids)) = self.table.remove(&key[..]) else {
            return;
        };
        self.remove_key_at(pos);
        self.total_items -= ids.len() as u64;
        for id in ids {
            let Some(c) = self.clients.get(&id) else {
                continue;
            };
            if c.flags & BCAST != 0 {
                continue;
            }
            if id == current && current != 0 {
                if c.flags & NOLOOP == 0 {
                    self.pending_own.push(Some(key.clone()));
                }
                continue;
            }
            out.push(id);
        }
    }

    fn remove_key_at(&mut self, pos: usize) {
        self.keys.swap_remove(pos);
        if let Some(moved) = self.keys.get(pos) {
            if let Some(e) = self.table.get_mut(&moved[..]) {
                e.0 = pos;
            }
        }
    }

    /// Redis's `trackingInvalidateKeysOnFlush`: every tracking client
    /// gets a null (the running command's client after its reply); the
    /// table is emptied. Returns the other clients.
    pub fn flush(&mut self, current: u64) -> Vec<u64> {
        let mut others = Vec::new();
        for &id in self.clients.keys() {
            if id == current && current != 0 {
                self.pending_own.push(None);
            } else {
                others.push(id);
            }
        }
        self.table.clear();
        self.keys.clear();
        self.total_items = 0;
        others
    }

    /// The running command's own messages (`pending_own`), oldest first.
    pub fn take_pending_own(&mut self) -> Vec<Option<Bytes>> {
        std::mem::take(&mut self.pending_own)
    }

    pub fn has_pending_own(&self) -> bool {
        !self.pending_own.is_empty()
    }

    /// Redis's `trackingLimitUsedSlots`: keys to invalidate (random
    /// ones) to get back under `max_keys`, with the effort growing while
    /// a call stays over the limit.
    pub fn over_limit_victims(&mut self) -> Vec<Bytes> {
        let max = self.max_keys as usize;
        if max == 0 || self.table.len() <= max {
            self.timeout_counter = 0;
            return Vec::new();
        }
        let effort = 100 * (self.timeout_counter as usize + 1);
        let n = (self.table.len() - max).min(effort);
        let mut victims = Vec::with_capacity(n);
        // Picked now, invalidated by the caller: a pick may not repeat.
        let mut picked = std::collections::HashSet::new();
        while victims.len() < n && picked.len() < self.keys.len() {
            let i = (self.next_random() % self.keys.len() as u64) as usize;
            if picked.insert(i) {
                victims.push(self.keys[i].clone());
            }
        }
        if self.table.len() - victims.len() > max {
            self.timeout_counter += 1;
        } else {
            self.timeout_counter = 0;
        }
        victims
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Redis's `trackingBroadcastInvalidationMessages`: for each prefix
    /// with modified keys, (client, message) pairs, one array of keys per
    /// prefix (without the client's own keys under NOLOOP, nothing when
    /// that leaves none). Clears the collected keys.
    pub fn take_broadcasts(&mut self) -> Vec<(u64, Msg)> {
        let mut out = Vec::new();
        for bs in self.prefixes.values_mut() {
            if bs.keys.is_empty() {
                continue;
            }
            let keys = std::mem::take(&mut bs.keys);
            let common = Bytes::from(keys_proto(keys.keys(), keys.len()));
            for &id in &bs.clients {
                let noloop = self.clients.get(&id).is_some_and(|c| c.flags & NOLOOP != 0);
                if noloop {
                    let n = keys.values().filter(|m| **m != id).count();
                    if n == 0 {
                        continue;
                    }
                    let mine = keys.iter().filter(|(_, m)| **m != id).map(|(k, _)| k);
                    out.push((id, Msg::Proto(Bytes::from(keys_proto(mine, n)))));
                } else {
                    out.push((id, Msg::Proto(common.clone())));
                }
            }
        }
        out
    }

    /// Keys collected for broadcast and not yet sent.
    pub fn has_broadcasts(&self) -> bool {
        self.prefixes.values().any(|b| !b.keys.is_empty())
    }
}

/// `*n` then each key as a bulk string (Redis's
/// `trackingBuildBroadcastReply`).
fn keys_proto<'a>(keys: impl Iterator<Item = &'a Bytes>, n: usize) -> Vec<u8> {
    let mut v = format!("*{n}\r\n").into_bytes();
    for k in keys {
        v.extend_from_slice(format!("${}\r\n", k.len()).as_bytes());
        v.extend_from_slice(k);
        v.extend_from_slice(b"\r\n");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn a_key_is_invalidated_once_and_forgotten() {
        let mut t = Tracking::default();
        t.enable(1, 0, 0, &[]);
        t.enable(2, 0, NOLOOP, &[]);
        t.remember(1, [b("k")].iter());
        t.remember(2, [b("k")].iter());
        t.remember(1, [b("k")].iter());
        assert_eq!(t.totals(), (1, 2, 0));
        let mut out = Vec::new();
        t.invalidate(&b("k"), 2, 2, &mut out);
        assert_eq!(out, vec![1], "NOLOOP: no message for the writer");
        assert!(!t.has_pending_own());
        assert_eq!(t.totals(), (0, 0, 0));
        out.clear();
        t.invalidate(&b("k"), 2, 2, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn optin_remembers_only_after_caching_yes() {
        let mut t = Tracking::default();
        t.enable(1, 0, OPTIN, &[]);
        t.remember(1, [b("a")].iter());
        assert_eq!(t.totals().0, 0);
        t.client_mut(1).unwrap().flags |= CACHING;
        t.remember(1, [b("a")].iter());
        assert_eq!(t.totals().0, 1);
    }

    #[test]
    fn bcast_groups_keys_per_prefix_without_noloop_writers() {
        let mut t = Tracking::default();
        t.enable(1, 0, BCAST, &[b("a:"), b("b:")]);
        t.enable(2, 0, BCAST | NOLOOP, &[b("a:")]);
        let mut out = Vec::new();
        t.invalidate(&b("a:2"), 2, 2, &mut out);
        t.invalidate(&b("a:1"), 1, 1, &mut out);
        t.invalidate(&b("c"), 1, 1, &mut out);
        assert!(out.is_empty());
        let msgs = t.take_broadcasts();
        assert_eq!(
            msgs,
            vec![
                (1, Msg::Proto(b("*2\r\n$3\r\na:1\r\n$3\r\na:2\r\n"))),
                (2, Msg::Proto(b("*1\r\n$3\r\na:1\r\n"))),
            ]
        );
        assert!(t.take_broadcasts().is_empty());
        assert!(t.check_prefixes(1, &[b("a")]).is_some());
        assert!(t.check_prefixes(1, &[b("x"), b("xy")]).is_some());
        assert!(t.check_prefixes(1, &[b("c")]).is_none());
        t.disable(1);
        t.disable(2);
        assert_eq!(t.totals(), (0, 0, 0));
    }

    #[test]
    fn over_limit_picks_distinct_keys() {
        let mut t = Tracking::default();
        t.enable(1, 0, 0, &[]);
        let keys: Vec<Bytes> = (0..50).map(|i| b(&format!("k{i}"))).collect();
        t.remember(1, keys.iter());
        t.max_keys = 10;
        let v = t.over_limit_victims();
        assert_eq!(v.len(), 40);
        let set: std::collections::HashSet<_> = v.iter().collect();
        assert_eq!(set.len(), 40);
    }
}
