//! The keyspace side of blocking commands: who waits on which key, and
//! which keys became ready. Serving the waiters is `server::blocking`.
//!
//! The registry lives in the keyspace, under the keyspace lock, so that
//! registering a waiter, signalling a key and serving the waiters are
//! atomic with the commands around them:
//!
//! - `Keyspace::add_waiter` registers a client (one waiter per client) on
//!   each of its keys, appended to that key's FIFO queue (`Db::blocked`).
//! - A key becomes *ready* when a key with waiters is created (`Db::insert`
//!   does this for every new key, as Redis's `dbAdd` does, so RENAME, MOVE,
//!   COPY and SWAPDB wake waiters too) or when a writer calls
//!   `Keyspace::signal_key_ready` (XADD on an existing stream, ...). Ready
//!   keys are queued once each, per database, in signal order.
//! - `Keyspace::remove_waiter` takes a client out of every queue (served,
//!   timed out, unblocked, disconnected).

use super::{Db, Keyspace};
use bytes::Bytes;
use std::collections::HashMap;
use tokio::sync::oneshot;

/// The null a blocked command answers on timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Null {
    /// `*-1` / `_` (every blocking command in Redis 7.0, BLMOVE included).
    Array,
    /// `$-1` / `_`.
    Bulk,
}

/// What a command handler asks for when it must block
/// (`commands::blocking::block`); the connection turns it into a [`Waiter`]
/// after the command.
#[derive(Debug)]
pub struct BlockRequest {
    pub args: Vec<Bytes>,
    pub keys: Vec<Bytes>,
    /// Absolute Unix ms; 0 waits forever.
    pub deadline_ms: u64,
    pub wants: &'static str,
    pub timeout: Null,
}

/// A blocked client's registration.
#[derive(Debug)]
pub struct Waiter {
    pub client_id: u64,
    pub db: usize,
    /// The keys it waits on, in the order the command named them.
    pub keys: Vec<Bytes>,
    /// The command to re-run when one of its keys is ready.
    pub args: Vec<Bytes>,
    /// RESP3 connection (the reply is encoded for it).
    pub resp3: bool,
    /// The client's no-touch mode when it blocked.
    pub no_touch: bool,
    /// TYPE name of the values that can serve it ("list", "zset",
    /// "stream"): as Redis 7.0, a ready key holding another type leaves the
    /// waiter blocked.
    pub wants: &'static str,
    /// Reply on timeout and on CLIENT UNBLOCK ... TIMEOUT.
    pub timeout_reply: Vec<u8>,
    /// Where the reply goes; the connection task awaits the other end.
    pub tx: oneshot::Sender<WaiterReply>,
}

/// What a blocked client gets: its reply, and whether its connection is
/// closed after it (Redis's `CLIENT_CLOSE_AFTER_REPLY`, set with the
/// UNBLOCKED error of a role change: `commands::blocking::disconnect_all`).
#[derive(Debug)]
pub struct WaiterReply {
    pub bytes: Vec<u8>,
    pub close: bool,
}

/// Every waiter, by client id.
#[derive(Debug, Default)]
pub struct Waiters {
    by_client: HashMap<u64, Waiter>,
}

impl Db {
    /// Queues `key` as ready if clients wait on it (once per round).
    pub(crate) fn mark_ready(&mut self, key: &[u8]) {
        if !self.blocked.is_empty()
            && self.blocked.contains_key(key)
            && !self.ready.iter().any(|k| k == key)
        {
            self.ready.push(Bytes::copy_from_slice(key));
            self.pending.ready();
        }
    }

    /// The clients blocked on `key`, oldest first.
    pub fn waiters_on(&self, key: &[u8]) -> Vec<u64> {
        self.blocked
            .get(key)
            .map(|q| q.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Marks every blocked key that exists as ready (after SWAPDB, as
    /// Redis's `scanDatabaseForReadyKeys`).
    pub(crate) fn mark_existing_ready(&mut self) {
        let keys: Vec<Bytes> = self
            .blocked
            .keys()
            .filter(|k| self.contains(k))
            .cloned()
            .collect();
        for k in keys {
            self.mark_ready(&k);
        }
    }
}

impl Keyspace {
    /// Tells the blocking machinery that `key` may now serve blocked
    /// clients (a push, a ZADD, an XADD ...). Cheap when nobody waits on it.
    /// New keys are signalled automatically; writers that add to an
    /// existing value call this.
    pub fn signal_key_ready(&mut self, db: usize, key: &[u8]) {
        self.dbs[db].mark_ready(key);
    }

    /// The next ready key, in database order and signal order.
    pub fn take_ready_key(&mut self) -> Option<(usize, Bytes)> {
        // Only the databases the summary names (usually none).
        let mut dbs = self.pending.ready();
        while dbs != 0 {
            let i = dbs.trailing_zeros() as usize;
            dbs &= dbs - 1;
            let d = self.dbs.get_mut(i)?;
            if d.ready.is_empty() {
                self.pending.clear_ready(i);
                continue;
            }
            let key = d.ready.remove(0);
            if d.ready.is_empty() {
                self.pending.clear_ready(i);
            }
            return Some((i, key));
        }
        None
    }

    /// Registers a blocked client on each of its keys (at the tail of the
    /// FIFO queues). A client has at most one registration.
    pub fn add_waiter(&mut self, w: Waiter) {
        let id = w.client_id;
        self.remove_waiter(id);
        let d = &mut self.dbs[w.db];
        for k in &w.keys {
            let q = d.blocked.entry(k.clone()).or_default();
            if !q.contains(&id) {
                q.push_back(id);
            }
        }
        self.waiters.by_client.insert(id, w);
    }

    /// Removes a client's registration from every queue.
    pub fn remove_waiter(&mut self, client_id: u64) -> Option<Waiter> {
        let w = self.waiters.by_client.remove(&client_id)?;
        let d = &mut self.dbs[w.db];
        for k in &w.keys {
            if let Some(q) = d.blocked.get_mut(k) {
                q.retain(|c| *c != client_id);
                if q.is_empty() {
                    d.blocked.remove(k);
                }
            }
        }
        Some(w)
    }

    /// The ids of every blocked client.
    pub fn waiter_ids(&self) -> Vec<u64> {
        self.waiters.by_client.keys().copied().collect()
    }

    pub fn waiter(&self, client_id: u64) -> Option<&Waiter> {
        self.waiters.by_client.get(&client_id)
    }

    /// INFO `blocked_clients`.
    pub fn blocked_clients(&self) -> usize {
        self.waiters.by_client.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Value;

    fn waiter(id: u64, keys: &[&str]) -> (Waiter, oneshot::Receiver<WaiterReply>) {
        let (tx, rx) = oneshot::channel();
        (
            Waiter {
                client_id: id,
                db: 0,
                keys: keys.iter().map(|k| Bytes::from(k.to_string())).collect(),
                args: Vec::new(),
                resp3: false,
                no_touch: false,
                wants: "list",
                timeout_reply: b"*-1\r\n".to_vec(),
                tx,
            },
            rx,
        )
    }

    #[test]
    fn fifo_queues_and_readiness() {
        let mut ks = crate::commands::lua::keyspace();
        let (a, _ra) = waiter(1, &["k1", "k2"]);
        let (b, _rb) = waiter(2, &["k2"]);
        ks.add_waiter(a);
        ks.add_waiter(b);
        assert_eq!(ks.dbs[0].waiters_on(b"k2"), vec![1, 2]);
        ks.signal_key_ready(0, b"nobody");
        assert_eq!(ks.take_ready_key(), None);
        ks.set(0, Bytes::from_static(b"k2"), Value::str("x"), 0);
        ks.signal_key_ready(0, b"k2");
        assert_eq!(ks.take_ready_key(), Some((0, Bytes::from_static(b"k2"))));
        assert_eq!(ks.take_ready_key(), None);
        assert!(ks.remove_waiter(1).is_some());
        assert_eq!(ks.dbs[0].waiters_on(b"k2"), vec![2]);
        assert!(ks.dbs[0].waiters_on(b"k1").is_empty());
        assert_eq!(ks.blocked_clients(), 1);
    }
}
