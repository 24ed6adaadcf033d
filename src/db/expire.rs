//! Active expiry, as Redis 6.0+ does it (`activeExpireCycle`, expire.c).
//!
//! Keys with a TTL are deleted lazily when touched (`Keyspace::lookup`) and
//! actively by this cycle, so memory of expired keys is reclaimed even when
//! nobody reads them.
//!
//! Slow cycle: runs `hz` times a second. Its time budget is 25% of one CPU
//! (`ACTIVE_EXPIRE_CYCLE_SLOW_TIME_PERC`), i.e. 25 ms per call at hz 10. For
//! each database it walks the keys-with-TTL set from a persistent cursor,
//! sampling 20 keys per loop (`ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`) and deleting
//! the expired ones; it repeats on the same database while more than 10% of
//! the sample was stale (`ACTIVE_EXPIRE_CYCLE_ACCEPTABLE_STALE`), checking the
//! clock every 16 loops and stopping when the budget is spent.
//!
//! Fast cycle: run between request batches; at most 1000 µs, only when the
//! last slow cycle ran out of time or the estimated stale share is at least
//! the acceptable one, and not again within twice its own duration.
//!
//! `active-expire-effort` (1..10) scales both: +25% keys per loop, +2% CPU
//! and -1% acceptable staleness per step above 1.

use super::Keyspace;
use bytes::Bytes;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const KEYS_PER_LOOP: usize = 20;
const FAST_DURATION_US: u64 = 1000;
const SLOW_TIME_PERC: u64 = 25;
const ACCEPTABLE_STALE_PERC: u64 = 10;
/// Loops between clock checks: reading the clock per loop would cost more
/// than the sampling itself.
const LOOPS_PER_CLOCK_CHECK: u64 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CycleKind {
    Slow,
    Fast,
}

/// State carried between cycles.
#[derive(Debug, Default)]
pub struct ExpireState {
    /// Database the next cycle starts from.
    next_db: usize,
    /// The last slow cycle stopped on its time limit.
    timelimit_exit: bool,
    last_fast_start: Option<Instant>,
    last_fast_duration: Duration,
    /// Moving average of the share of sampled keys found expired (0..1).
    pub stale_perc: f64,
    /// Cycles that stopped on their time limit (INFO `expired_time_cap_reached_count`).
    pub time_cap_reached: u64,
    /// Cumulative time spent in cycles (INFO `expire_cycle_cpu_milliseconds`).
    pub cpu_ms: u64,
    /// DEBUG SET-ACTIVE-EXPIRE 0: no active cycles (lazy expiry only).
    pub disabled: bool,
    /// This server replicates a primary (Redis's `server.masterhost`): keys
    /// are deleted by the primary's DELs, not here. A logically expired key
    /// is hidden from lookups but kept, and no active cycle runs.
    pub replica: bool,
    /// On a replica, the running command comes from the master client:
    /// no key is expired for it (Redis's `current_client == master`).
    pub from_master: bool,
    /// On a replica, `replica-read-only no`: a normal client's write lookup
    /// deletes an expired key (Redis's `EXPIRE_FORCE_DELETE_EXPIRED`).
    pub writable: bool,
    /// CLIENT PAUSE is in effect: an expired key is hidden but kept, even
    /// on a primary (Redis's `checkClientPauseTimeoutAndReturnIfPaused`:
    /// the dataset stays constant during a pause).
    pub paused: bool,
}

impl ExpireState {
    /// Sets the role the next lookups run under (see the fields); the
    /// keyspace's `set_expire_role` also tells the databases.
    pub fn set_role(&mut self, replica: bool, from_master: bool, writable: bool) {
        self.replica = replica;
        self.from_master = replica && from_master;
        self.writable = replica && writable;
    }

    /// Whether an expiry at `at_ms` has already passed for a command
    /// setting it (Redis's `checkAlreadyExpired`): never on a replica,
    /// where the key is stored with its past expiry and the primary's DEL
    /// removes it.
    pub fn already_expired(&self, at_ms: u64, now_ms: u64) -> bool {
        at_ms <= now_ms && !self.replica
    }
}

/// Runs one cycle. `effort` is `active-expire-effort` (1..=10), `hz` the
/// server's `hz`. Returns the number of keys deleted.
pub fn active_expire_cycle(
    ks: &mut Keyspace,
    kind: CycleKind,
    hz: u32,
    effort: u32,
    now_ms: impl Fn() -> u64,
) -> u64 {
    if ks.expire.disabled {
        return 0;
    }
    if ks.expire.replica {
        // Redis runs `activeExpireCycle` only on a primary; a replica's
        // keys go when the primary's DEL arrives, but for those its own
        // clients gave a TTL (a writable replica), checked by the slow
        // cycle's slot (Redis's `expireSlaveKeys` in `databasesCron`).
        return match kind {
            CycleKind::Slow => expire_replica_keys(ks, now_ms()),
            CycleKind::Fast => 0,
        };
    }
    let effort = u64::from(effort.clamp(1, 10) - 1);
    let keys_per_loop = KEYS_PER_LOOP + KEYS_PER_LOOP / 4 * effort as usize;
    let fast_duration_us = FAST_DURATION_US + FAST_DURATION_US / 4 * effort;
    let slow_perc = SLOW_TIME_PERC + 2 * effort;
    let acceptable_stale = ACCEPTABLE_STALE_PERC - effort;
    if kind == CycleKind::Fast
        && !ks.expire.timelimit_exit
        && ks.expire.stale_perc * 100.0 < acceptable_stale as f64
    {
        // The common case, decided before reading the clock (this runs
        // after every batch).
        return 0;
    }
    let start = Instant::now();

    if kind == CycleKind::Fast {
        if let Some(last) = ks.expire.last_fast_start {
            if start < last + ks.expire.last_fast_duration * 2 {
                return 0;
            }
        }
        ks.expire.last_fast_start = Some(start);
    }

    let limit = match kind {
        CycleKind::Fast => Duration::from_micros(fast_duration_us),
        CycleKind::Slow => {
            Duration::from_micros(1_000_000 * slow_perc / u64::from(hz.max(1)) / 100)
                .max(Duration::from_micros(1))
        }
    };
    ks.expire.timelimit_exit = false;

    let dbs = ks.dbs.len();
    let mut total_sampled = 0u64;
    let mut total_expired = 0u64;
    let mut deleted = 0u64;
    let mut iteration = 0u64;
    let mut sample = Vec::with_capacity(keys_per_loop);
    'dbs: for _ in 0..dbs {
        let db = ks.expire.next_db % dbs;
        ks.expire.next_db = (db + 1) % dbs;
        loop {
            if ks.dbs[db].expires_len() == 0 {
                break;
            }
            iteration += 1;
            let now = now_ms();
            let n = keys_per_loop.min(ks.dbs[db].expires_len());
            ks.dbs[db].sample_expires(n, &mut sample);
            let sampled = sample.len() as u64;
            let mut expired = 0u64;
            for key in sample.drain(..) {
                if ks.expire_if_needed(db, &key, now) {
                    expired += 1;
                }
            }
            total_sampled += sampled;
            total_expired += expired;
            deleted += expired;
            if iteration.is_multiple_of(LOOPS_PER_CLOCK_CHECK) && start.elapsed() > limit {
                ks.expire.timelimit_exit = true;
                ks.expire.time_cap_reached += 1;
                break 'dbs;
            }
            if sampled == 0 || expired * 100 / sampled <= acceptable_stale {
                break;
            }
        }
    }
    let elapsed = start.elapsed();
    ks.expire.cpu_ms += elapsed.as_millis() as u64;
    if kind == CycleKind::Fast {
        ks.expire.last_fast_duration = elapsed;
    }
    let current = if total_sampled > 0 {
        total_expired as f64 / total_sampled as f64
    } else {
        0.0
    };
    ks.expire.stale_perc = current * 0.05 + ks.expire.stale_perc * 0.95;
    deleted
}

/// The keys of one database a client of a writable replica gave a TTL
/// (Redis's `slaveKeysWithExpire`): the primary knows nothing of them, so
/// the replica expires them itself (`expire_replica_keys`). Names in the
/// order they were added, walked from a cursor.
#[derive(Debug, Default)]
pub struct ReplicaTtlKeys {
    keys: Vec<Bytes>,
    names: HashSet<Bytes>,
    cursor: usize,
}

impl ReplicaTtlKeys {
    pub fn add(&mut self, key: &[u8]) {
        if !self.names.contains(key) {
            let k = Bytes::copy_from_slice(key);
            self.names.insert(k.clone());
            self.keys.push(k);
        }
    }

    pub fn clear(&mut self) {
        *self = ReplicaTtlKeys::default();
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &Bytes> {
        self.keys.iter()
    }

    /// The key at the cursor (wrapping).
    fn current(&mut self) -> Option<Bytes> {
        if self.cursor >= self.keys.len() {
            self.cursor = 0;
        }
        self.keys.get(self.cursor).cloned()
    }

    /// Forgets the key at the cursor.
    fn drop_current(&mut self) {
        if self.cursor < self.keys.len() {
            let k = self.keys.swap_remove(self.cursor);
            self.names.remove(&k);
        }
    }
}

/// Redis's `expireSlaveKeys`: deletes the expired keys among those the
/// writable replica's own clients gave a TTL, forgetting the ones gone or
/// without a TTL; stops after more than 3 keys not yet expired or after a
/// millisecond. Returns the number of keys deleted.
fn expire_replica_keys(ks: &mut Keyspace, now_ms: u64) -> u64 {
    let start = Instant::now();
    let mut deleted = 0;
    let (mut cycles, mut noexpire) = (0u64, 0u32);
    for db in 0..ks.dbs.len() {
        while let Some(key) = ks.dbs[db].replica_ttl.current() {
            match ks.dbs[db].peek(&key).map(|e| e.expires_at_ms) {
                Some(at) if at != 0 && at <= now_ms => {
                    ks.delete_expired(db, &key);
                    ks.dbs[db].replica_ttl.drop_current();
                    deleted += 1;
                }
                Some(at) if at != 0 => {
                    noexpire += 1;
                    ks.dbs[db].replica_ttl.cursor += 1;
                }
                _ => ks.dbs[db].replica_ttl.drop_current(),
            }
            cycles += 1;
            if noexpire > 3 || cycles.is_multiple_of(64) && start.elapsed().as_millis() > 1 {
                return deleted;
            }
        }
    }
    deleted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Value;
    use bytes::Bytes;

    #[test]
    fn slow_cycle_reclaims_expired_keys_without_access() {
        let mut ks = crate::commands::lua::keyspace();
        for i in 0..1000 {
            let key = Bytes::from(format!("k{i}"));
            let at = if i % 2 == 0 { 1 } else { u64::MAX / 2 };
            ks.set(0, key, Value::str("v"), at);
        }
        ks.set(3, Bytes::from("gone"), Value::str("v"), 1);
        let mut rounds = 0;
        while ks.dbs[0].len() > 500 || !ks.dbs[3].is_empty() {
            active_expire_cycle(&mut ks, CycleKind::Slow, 10, 1, || 1000);
            rounds += 1;
            assert!(rounds < 100, "expiry made no progress");
        }
        assert_eq!(ks.dbs[0].len(), 500);
        assert_eq!(ks.dbs[0].expires_len(), 500);
        assert_eq!(ks.stats.expired_keys, 501);
        let effects = ks.take_effects();
        let dels = effects
            .iter()
            .filter(|e| matches!(e, crate::db::effect::Effect::Del { .. }))
            .count();
        assert_eq!(
            (effects.len(), dels),
            (1001, 501),
            "final states: 500 Sets, 501 Dels"
        );
    }

    #[test]
    fn fast_cycle_skipped_when_little_is_stale() {
        let mut ks = crate::commands::lua::keyspace();
        ks.set(0, Bytes::from("a"), Value::str("v"), 1);
        assert_eq!(
            active_expire_cycle(&mut ks, CycleKind::Fast, 10, 1, || 1000),
            0
        );
        assert_eq!(ks.dbs[0].len(), 1);
    }
}
