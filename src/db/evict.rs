//! The memory limit: `maxmemory` and its eviction policies, as Redis 7.0's
//! evict.c.
//!
//! Before every command, while `maxmemory` is set, `perform_evictions`
//! compares the used memory (`memory::MemGauge`, jemalloc's allocated
//! bytes) less what is not counted (the WAL units queued but not written,
//! Redis's AOF buffer) with the limit, and deletes keys chosen by
//! `maxmemory-policy` until the excess is freed, measuring what each
//! deletion freed. When nothing can be deleted, commands flagged `denyoom`
//! get `-OOM` (`server::dispatch::execute`).
//!
//! Choice of keys, with Redis's approximations:
//! - LRU, LFU and TTL policies sample `maxmemory-samples` keys of every
//!   database (all keys, or those with a TTL for `volatile-*`) into a pool
//!   of 16 candidates kept between calls, ordered by score (idle time,
//!   255 - LFU counter, or how soon the key expires), and evict the best
//!   candidate that still exists;
//! - random policies take a random key of the next non-empty database.
//!
//! Each entry's `lru` field (32 bits; Redis keeps 24 in the object header)
//! holds, under LRU policies, the access time in seconds of the keyspace
//! clock; under LFU policies, the minute of the last decrement in bits
//! 8..24 and the logarithmic access counter in bits 0..8 (Redis's
//! `LFULogIncr`, `LFUDecrAndReturn`, with `lfu-log-factor` and
//! `lfu-decay-time`). Switching policy reinterprets the field, as in Redis.
//!
//! Evicted keys are deleted as expired ones are: a Del effect queued at
//! once (so the WAL logs it ahead of the command's own effects), WATCHers
//! signalled, an `evicted` keyspace event (class `e`).

use super::{memory, Keyspace};
use bytes::Bytes;
use std::time::Instant;

/// Redis's `LFU_INIT_VAL`: the counter of a new key under an LFU policy.
pub const LFU_INIT_VAL: u32 = 5;
/// Candidates kept between evictions (Redis's `EVPOOL_SIZE`).
const POOL_SIZE: usize = 16;

/// `maxmemory-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    #[default]
    NoEviction,
}

impl Policy {
    pub fn parse(s: &str) -> Option<Policy> {
        Some(match s {
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            "allkeys-lru" => Policy::AllkeysLru,
            "allkeys-lfu" => Policy::AllkeysLfu,
            "allkeys-random" => Policy::AllkeysRandom,
            "noeviction" => Policy::NoEviction,
            _ => return None,
        })
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::VolatileLfu | Policy::AllkeysLfu)
    }

    fn is_lru(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::AllkeysLru)
    }

    /// Candidates are all keys, not only those with a TTL.
    fn allkeys(self) -> bool {
        matches!(
            self,
            Policy::AllkeysLru | Policy::AllkeysLfu | Policy::AllkeysRandom
        )
    }
}

/// The parameters of the memory limit (copied from `Config` under the
/// keyspace lock: `Shared::apply_evict_config`).
#[derive(Clone, Copy, Debug)]
pub struct EvictConfig {
    /// `maxmemory` in bytes; 0: no limit.
    pub maxmemory: u64,
    pub policy: Policy,
    /// `maxmemory-samples` (1..=i32::MAX, as Redis).
    pub samples: usize,
    /// `maxmemory-eviction-tenacity` (0..=100).
    pub tenacity: u32,
    pub lfu_log_factor: u32,
    /// `lfu-decay-time`, minutes per counter decrement (0: never).
    pub lfu_decay_time: u32,
}

impl Default for EvictConfig {
    fn default() -> Self {
        EvictConfig {
            maxmemory: 0,
            policy: Policy::NoEviction,
            samples: 5,
            tenacity: 10,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
        }
    }
}

/// What `perform_evictions` achieved (Redis's EVICT_OK/RUNNING/FAIL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictResult {
    /// Under the limit (or no limit).
    Ok,
    /// Still over the limit, the time budget spent: evictions go on after
    /// the batch and in the cron; commands are not refused meanwhile.
    Running,
    /// Over the limit and nothing (more) can be evicted.
    Fail,
}

#[derive(Debug)]
struct Candidate {
    /// Higher is a better candidate.
    score: u64,
    db: u8,
    /// A copy: cloning a key's `Bytes` would make it shared (an allocation
    /// that stays with the key).
    key: Box<[u8]>,
}

/// Eviction state, kept in the keyspace.
#[derive(Debug)]
pub struct EvictState {
    pub cfg: EvictConfig,
    /// The candidate pool, ascending score (Redis's `EvictionPoolLRU`).
    pool: Vec<Candidate>,
    /// Database the random policies try next.
    next_db: usize,
    rng: u64,
    /// Random numbers of the current sample (kept for its capacity).
    picks: Vec<u64>,
    /// INFO `evicted_keys`.
    pub evicted_keys: u64,
    /// Evictions stopped on their time limit and go on between batches
    /// (Redis's `isEvictionProcRunning`).
    pub running: bool,
    /// Since when the used memory has been over the limit
    /// (INFO `current_eviction_exceeded_time`).
    exceeded_since: Option<Instant>,
    /// Microseconds spent over the limit in earlier periods.
    total_exceeded_us: u64,
}

impl Default for EvictState {
    fn default() -> Self {
        EvictState {
            cfg: EvictConfig::default(),
            pool: Vec::with_capacity(POOL_SIZE),
            next_db: 0,
            rng: seed(),
            picks: Vec::new(),
            evicted_keys: 0,
            running: false,
            exceeded_since: None,
            total_exceeded_us: 0,
        }
    }
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5eed_e71c);
    h.finish() | 1
}

impl EvictState {
    /// xorshift64: sampling positions and LFU increments, nothing secret.
    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// The `lru` field of a new key (Redis's `createObject`).
    pub fn initial_lru(&self, clock_s: u32, now_ms: u64) -> u32 {
        if self.cfg.policy.is_lfu() {
            (lfu_minutes(now_ms) << 8) | LFU_INIT_VAL
        } else {
            clock_s
        }
    }

    /// The `lru` field after an access (Redis's `lookupKey`: `updateLFU`
    /// or the LRU clock).
    pub fn touched_lru(&mut self, lru: u32, clock_s: u32, now_ms: u64) -> u32 {
        if !self.cfg.policy.is_lfu() {
            return clock_s;
        }
        let now_min = lfu_minutes(now_ms);
        let counter = lfu_decr_and_return(lru, now_min, self.cfg.lfu_decay_time);
        // Redis: (double)rand()/RAND_MAX, in [0, 1].
        let r = (self.next_random() >> 11) as f64 / ((1u64 << 53) - 1) as f64;
        let counter = lfu_log_incr(counter, self.cfg.lfu_log_factor, r);
        (now_min << 8) | counter
    }

    /// Seconds over the limit now and in total (INFO
    /// `current_eviction_exceeded_time`, `total_eviction_exceeded_time`,
    /// both printed in milliseconds).
    pub fn exceeded_us(&self) -> (u64, u64) {
        let current = self
            .exceeded_since
            .map_or(0, |t| t.elapsed().as_micros() as u64);
        (current, self.total_exceeded_us + current)
    }

    /// CONFIG RESETSTAT.
    pub fn reset_stats(&mut self) {
        self.evicted_keys = 0;
        self.total_exceeded_us = 0;
        if self.exceeded_since.is_some() {
            self.exceeded_since = Some(Instant::now());
        }
    }

    fn update_metrics(&mut self, result: EvictResult) {
        match result {
            EvictResult::Running | EvictResult::Fail => {
                if self.exceeded_since.is_none() {
                    self.exceeded_since = Some(Instant::now());
                }
            }
            EvictResult::Ok => {
                if let Some(t) = self.exceeded_since.take() {
                    self.total_exceeded_us += t.elapsed().as_micros() as u64;
                }
            }
        }
    }

    /// Inserts a sampled key into the pool as Redis's
    /// `evictionPoolPopulate`: kept sorted by score; when full, a key worse
    /// than every candidate is dropped, otherwise the worst candidate goes.
    fn pool_insert(&mut self, score: u64, db: u8, key: &[u8]) {
        let k = self.pool.partition_point(|c| c.score < score);
        let c = Candidate {
            score,
            db,
            key: key.into(),
        };
        if self.pool.len() < POOL_SIZE {
            self.pool.insert(k, c);
        } else if k > 0 {
            self.pool.remove(0);
            self.pool.insert(k - 1, c);
        }
    }
}

/// Redis's `evictionTimeLimitUs`: how long one call may evict.
fn time_limit_us(tenacity: u32) -> u64 {
    if tenacity <= 10 {
        50 * u64::from(tenacity)
    } else if tenacity < 100 {
        (500.0 * 1.15f64.powi(tenacity as i32 - 10)) as u64
    } else {
        u64::MAX
    }
}

/// Redis's `LFUGetTimeInMinutes`: Unix minutes modulo 2^16.
pub fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 1000 / 60) & 65535) as u32
}

/// Redis's `LFUTimeElapsed`: minutes since `ldt`, wrapping at 2^16.
fn lfu_elapsed(ldt: u32, now_min: u32) -> u32 {
    if now_min >= ldt {
        now_min - ldt
    } else {
        65535 - ldt + now_min
    }
}

/// Redis's `LFUDecrAndReturn`: the counter less one per `decay_time`
/// minutes since the last decrement (OBJECT FREQ).
pub fn lfu_decr_and_return(lru: u32, now_min: u32, decay_time: u32) -> u32 {
    let ldt = (lru >> 8) & 0xffff;
    let counter = lru & 255;
    let periods = lfu_elapsed(ldt, now_min)
        .checked_div(decay_time)
        .unwrap_or(0);
    counter.saturating_sub(periods)
}

/// Redis's `LFULogIncr`: increments with probability
/// 1 / ((counter - LFU_INIT_VAL) * factor + 1); `r` is uniform in [0, 1].
pub fn lfu_log_incr(counter: u32, factor: u32, r: f64) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * f64::from(factor) + 1.0);
    if r < p {
        counter + 1
    } else {
        counter
    }
}

/// Redis's `estimateObjectIdleTime`, in milliseconds (OBJECT IDLETIME
/// divides by 1000).
pub fn idle_ms(lru: u32, clock_s: u32) -> u64 {
    u64::from(clock_s.wrapping_sub(lru)) * 1000
}

impl Keyspace {
    /// Used memory now, as the memory limit sees it (`MemGauge::used`).
    pub fn used_memory(&mut self) -> u64 {
        let now = self.clock_mark();
        // The lazy-free thread finished jobs since the last look: what it
        // freed is only seen by a refresh.
        let done = self.lazyfree.done();
        let used = if done != self.lazy_done_seen {
            self.lazy_done_seen = done;
            self.mem.refresh(now)
        } else {
            self.mem.used(now)
        };
        // Values queued for freeing are gone for the keyspace.
        used.saturating_sub(self.lazyfree.pending_bytes())
    }

    /// Redis's `performEvictions`: frees memory down to `maxmemory` by the
    /// policy. `not_counted` is the memory the limit ignores (queued WAL
    /// units), only asked for when over the limit.
    pub fn perform_evictions(&mut self, not_counted: &dyn Fn() -> u64) -> EvictResult {
        let cfg = self.evict.cfg;
        if cfg.maxmemory == 0 {
            return EvictResult::Ok;
        }
        let used = self.used_memory();
        let to_free = if used <= cfg.maxmemory {
            0
        } else {
            used.saturating_sub(not_counted())
                .saturating_sub(cfg.maxmemory)
        };
        if to_free == 0 {
            self.evict.update_metrics(EvictResult::Ok);
            return EvictResult::Ok;
        }
        if cfg.policy == Policy::NoEviction {
            self.evict.update_metrics(EvictResult::Fail);
            return EvictResult::Fail;
        }
        let limit_us = time_limit_us(cfg.tenacity);
        let start = Instant::now();
        let mut freed: i64 = 0;
        let mut keys_freed = 0u64;
        let result = loop {
            if freed >= to_free as i64 {
                break if self.evict.running {
                    EvictResult::Running
                } else {
                    EvictResult::Ok
                };
            }
            let Some((db, key)) = self.pick_victim() else {
                break EvictResult::Fail;
            };
            freed += self.evict_key(db, &key);
            keys_freed += 1;
            if keys_freed.is_multiple_of(16) && start.elapsed().as_micros() as u64 > limit_us {
                self.evict.running = true;
                break EvictResult::Running;
            }
        };
        self.evict.update_metrics(result);
        result
    }

    /// Runs the evictions left over by a call that hit its time limit
    /// (Redis's `evictionTimeProc`): after request batches and in the cron.
    pub fn continue_evictions(&mut self, not_counted: &dyn Fn() -> u64) {
        if self.evict.running && self.perform_evictions(not_counted) != EvictResult::Running {
            self.evict.running = false;
        }
    }

    /// The next key to evict by the policy, or None when none can be.
    fn pick_victim(&mut self) -> Option<(usize, Bytes)> {
        let policy = self.evict.cfg.policy;
        let allkeys = policy.allkeys();
        if matches!(policy, Policy::AllkeysRandom | Policy::VolatileRandom) {
            let n = self.dbs.len();
            for _ in 0..n {
                self.evict.next_db = (self.evict.next_db + 1) % n;
                let j = self.evict.next_db;
                let r = self.evict.next_random();
                if let Some(k) = self.dbs[j].random_key(!allkeys, r) {
                    return Some((j, k));
                }
            }
            return None;
        }
        loop {
            let mut total = 0;
            for i in 0..self.dbs.len() {
                let n = if allkeys {
                    self.dbs[i].len()
                } else {
                    self.dbs[i].expires_len()
                };
                if n != 0 {
                    self.pool_populate(i);
                    total += n;
                }
            }
            if total == 0 {
                return None;
            }
            // Best candidate first; ghosts (keys gone since they were
            // sampled, or that lost their TTL) are dropped.
            while let Some(c) = self.evict.pool.pop() {
                let db = usize::from(c.db);
                let live = match self.dbs.get(db).and_then(|d| d.get_key_value(&c.key)) {
                    Some((k, e)) if allkeys || e.expires_at_ms != 0 => {
                        Some(Bytes::copy_from_slice(k))
                    }
                    _ => None,
                };
                if let Some(k) = live {
                    return Some((db, k));
                }
            }
        }
    }

    /// Samples `maxmemory-samples` keys of database `db` into the pool.
    fn pool_populate(&mut self, db: usize) {
        let cfg = self.evict.cfg;
        let clock = self.clock_s();
        let now_min = lfu_minutes(self.cached_now_ms());
        let mut picks = std::mem::take(&mut self.evict.picks);
        picks.clear();
        // More picks than keys sample every key: no need to draw them.
        let len = if cfg.policy.allkeys() {
            self.dbs[db].len()
        } else {
            self.dbs[db].expires_len()
        };
        for _ in 0..cfg.samples.clamp(1, len + 1) {
            picks.push(self.evict.next_random());
        }
        let (dbs, evict) = (&self.dbs, &mut self.evict);
        dbs[db].sample(!cfg.policy.allkeys(), &picks, |key, e| {
            let score = if cfg.policy.is_lru() {
                idle_ms(e.lru, clock)
            } else if cfg.policy.is_lfu() {
                255 - u64::from(lfu_decr_and_return(e.lru, now_min, cfg.lfu_decay_time))
            } else {
                // volatile-ttl: the sooner the expiry, the better.
                u64::MAX - e.expires_at_ms
            };
            evict.pool_insert(score, db as u8, key);
        });
        self.evict.picks = picks;
    }

    /// Deletes `key` for the memory limit; returns the bytes it freed
    /// (jemalloc's count for this thread across the deletion).
    fn evict_key(&mut self, db: usize, key: &Bytes) -> i64 {
        let before = memory::thread_net();
        let Some(removed) = self.dbs[db].remove_quiet(key) else {
            return 0;
        };
        // Under lazyfree-lazy-eviction a large value is freed on the
        // lazy-free thread: its estimated size counts as freed.
        let queued = self
            .lazyfree
            .dispose(removed.value, super::lazyfree::Reason::Eviction);
        let freed =
            before.wrapping_sub(memory::thread_net()) as i64 + queued.map_or(0, |b| b as i64);
        let d = &mut self.dbs[db];
        d.signal_evicted(key);
        if d.capture {
            // Logged at once, ahead of the effects of the command about to
            // run (as an expired key's deletion, `expire_if_needed`).
            let touched = &mut d.touched;
            if !touched.is_empty() {
                touched.retain(|t| t != key);
            }
            self.effects.push(super::effect::Effect::Del {
                db: db as u8,
                key: key.clone(),
            });
        }
        self.stats.dirty += 1;
        self.evict.evicted_keys += 1;
        self.notify(super::notify::EVICTED, "evicted", db, key);
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Value;

    #[test]
    fn lfu_counter_as_redis() {
        // Factor 0: every access counts.
        assert_eq!(lfu_log_incr(5, 0, 0.99), 6);
        // At the initial value an access always counts.
        assert_eq!(lfu_log_incr(5, 10, 1.0 - 1e-9), 6);
        // Above it, with probability 1 / ((c - 5) * factor + 1).
        assert_eq!(lfu_log_incr(6, 10, 0.09), 7);
        assert_eq!(lfu_log_incr(6, 10, 0.091), 6);
        assert_eq!(lfu_log_incr(255, 0, 0.0), 255);
        // Decay: one per decay-time minutes since the last decrement,
        // wrapping at 2^16 minutes.
        let lru = (100 << 8) | 20;
        assert_eq!(lfu_decr_and_return(lru, 100, 1), 20);
        assert_eq!(lfu_decr_and_return(lru, 107, 1), 13);
        assert_eq!(lfu_decr_and_return(lru, 107, 2), 17);
        assert_eq!(lfu_decr_and_return(lru, 200, 1), 0);
        assert_eq!(lfu_decr_and_return(lru, 200, 0), 20);
        assert_eq!(lfu_decr_and_return((65530 << 8) | 20, 4, 1), 11);
    }

    #[test]
    fn tenacity_time_limits() {
        assert_eq!(time_limit_us(0), 0);
        assert_eq!(time_limit_us(10), 500);
        assert_eq!(time_limit_us(11), 575);
        assert_eq!(time_limit_us(100), u64::MAX);
    }

    #[test]
    fn pool_keeps_the_best_candidates_in_order() {
        let mut s = EvictState::default();
        for score in [5u64, 1, 9, 3] {
            s.pool_insert(score, 0, format!("k{score}").as_bytes());
        }
        let scores: Vec<u64> = s.pool.iter().map(|c| c.score).collect();
        assert_eq!(scores, [1, 3, 5, 9]);
        for score in 10..30 {
            s.pool_insert(score, 0, b"x");
        }
        assert_eq!(s.pool.len(), POOL_SIZE);
        assert_eq!(s.pool.first().map(|c| c.score), Some(14));
        // Worse than every candidate of a full pool: not taken.
        s.pool_insert(2, 0, b"worse");
        assert_eq!(s.pool.first().map(|c| c.score), Some(14));
    }

    #[test]
    fn volatile_ttl_evicts_nearest_expiry_and_only_volatile_keys() {
        let mut ks = crate::commands::lua::keyspace();
        ks.evict.cfg.policy = Policy::VolatileTtl;
        ks.set(0, Bytes::from("persistent"), Value::str("v"), 0);
        for (k, at) in [("late", 9_000_000_000_000u64), ("soon", 8_000_000_000_000)] {
            ks.set(0, Bytes::from(k), Value::str("v"), at);
        }
        ks.set(3, Bytes::from("middle"), Value::str("v"), 8_500_000_000_000);
        let order: Vec<_> = (0..3)
            .map(|_| {
                let (db, k) = ks.pick_victim().unwrap();
                ks.evict_key(db, &k);
                (db, k)
            })
            .collect();
        assert_eq!(
            order,
            [
                (0, Bytes::from("soon")),
                (3, Bytes::from("middle")),
                (0, Bytes::from("late"))
            ]
        );
        assert!(ks.pick_victim().is_none(), "keys without TTL stay");
        assert_eq!(ks.evict.evicted_keys, 3);
        let dels = ks
            .take_effects()
            .into_iter()
            .filter(|e| matches!(e, crate::db::effect::Effect::Del { .. }))
            .count();
        assert_eq!(dels, 3);
    }
}
