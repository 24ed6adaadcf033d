//! `used_memory`: the bytes jemalloc has handed out (`stats.allocated`
//! less what its thread caches hold), as Redis's `zmalloc_used_memory`.
//!
//! Reading `stats.allocated` needs an epoch advance, which merges every
//! arena's statistics under jemalloc's control lock: tens of microseconds
//! with a few threads (Redis's counter costs an atomic load). So the gauge
//! advances the epoch at most every `REFRESH` and, in between, adds what
//! the threads that ask allocated and freed since they last asked, read
//! from jemalloc's per-thread `thread.allocated` / `thread.deallocated`
//! counters (one load each, exact, tcache hits included). Commands run on
//! the threads that ask (every command asks while `maxmemory` is set), so
//! the keyspace's growth and shrinking is seen at once; other threads'
//! allocations (compaction, WAL writes) are seen at the next refresh.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tikv_jemalloc_ctl::{epoch, epoch_mib, raw, stats, thread};

/// Longest time between two epoch advances of a gauge in use.
pub const REFRESH: Duration = Duration::from_millis(100);

struct Mibs {
    epoch: epoch_mib,
    allocated: stats::allocated_mib,
    /// `stats.arenas.<all>.tcache_bytes` and `.tcache_stashed_bytes`.
    tcache: [[usize; 4]; 2],
}

fn mibs() -> Option<&'static Mibs> {
    static MIBS: OnceLock<Option<Mibs>> = OnceLock::new();
    MIBS.get_or_init(|| {
        let mut tcache = [[0usize; 4]; 2];
        // 4096: MALLCTL_ARENAS_ALL, the merged statistics of every arena.
        raw::name_to_mib(b"stats.arenas.4096.tcache_bytes\0", &mut tcache[0]).ok()?;
        raw::name_to_mib(b"stats.arenas.4096.tcache_stashed_bytes\0", &mut tcache[1]).ok()?;
        Some(Mibs {
            epoch: epoch::mib().ok()?,
            allocated: stats::allocated::mib().ok()?,
            tcache,
        })
    })
    .as_ref()
}

/// jemalloc's allocated bytes now, less the freed blocks its thread
/// caches hold (which `stats.allocated` counts until a cache is flushed or
/// garbage-collected: hundreds of KB per thread that would come and go at
/// random). Advances the epoch: costly, see the module doc. 0 if jemalloc's
/// statistics cannot be read.
pub fn allocated_now() -> u64 {
    let Some(m) = mibs() else {
        return 0;
    };
    if m.epoch.advance().is_err() {
        return 0;
    }
    let allocated = m.allocated.read().map_or(0, |n| n as u64);
    // SAFETY: both MIBs name `size_t` statistics.
    let cached: u64 = m
        .tcache
        .iter()
        .map(|mib| unsafe { raw::read_mib::<usize>(mib) }.map_or(0, |n| n as u64))
        .sum();
    allocated.saturating_sub(cached)
}

type Counters = (thread::ThreadLocal<u64>, thread::ThreadLocal<u64>);

thread_local! {
    /// This thread's jemalloc counters (pointers into its thread state).
    static COUNTERS: Cell<Option<Counters>> = const { Cell::new(None) };
    /// (gauge generation, `thread_net` value) when this thread last asked.
    static MARK: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Starts jemalloc's background threads, which purge dirty pages after
/// `dirty_decay_ms` (10 s) even while no thread allocates: without them
/// freed pages go back to the OS only when some thread allocates again, so
/// an idle server that just expired or flushed its keys would keep its
/// peak RSS (Redis ships with `jemalloc-bg-thread yes` for the same
/// reason). A jemalloc without the support keeps its default; the server
/// runs either way.
pub fn start_background_purge() {
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::debug!("jemalloc background purging unavailable: {e}");
    }
}

/// Bytes allocated minus bytes freed by the calling thread since it
/// started (wrapping: only differences are meaningful). One load each.
pub fn thread_net() -> u64 {
    COUNTERS.with(|c| {
        let counters = match c.get() {
            Some(x) => x,
            None => {
                let (Ok(a), Ok(d)) = (thread::allocatedp::read(), thread::deallocatedp::read())
                else {
                    return 0;
                };
                c.set(Some((a, d)));
                (a, d)
            }
        };
        counters.0.get().wrapping_sub(counters.1.get())
    })
}

/// Gauge generations, unique in the process (several servers may share a
/// thread in tests).
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// The used-memory gauge of one keyspace.
#[derive(Debug, Default)]
pub struct MemGauge {
    /// `stats.allocated` at the last refresh.
    base: u64,
    /// Net bytes the asking threads allocated since the last refresh.
    drift: i64,
    generation: u64,
    refreshed: Option<Instant>,
}

impl MemGauge {
    /// Used memory now; `now` is a recent monotonic reading (the command's
    /// clock mark), deciding whether the epoch is due.
    pub fn used(&mut self, now: Instant) -> u64 {
        match self.refreshed {
            Some(t) if now.saturating_duration_since(t) < REFRESH => {
                let net = thread_net();
                let (generation, last) = MARK.with(|m| m.get());
                if generation == self.generation {
                    self.drift = self.drift.wrapping_add(net.wrapping_sub(last) as i64);
                }
                // A thread asking for the first time since the refresh:
                // what it did before is seen at the next refresh.
                MARK.with(|m| m.set((self.generation, net)));
                self.base.saturating_add_signed(self.drift)
            }
            _ => self.refresh(now),
        }
    }

    /// Advances jemalloc's epoch and restarts the drift from there.
    pub fn refresh(&mut self, now: Instant) -> u64 {
        self.base = allocated_now();
        self.drift = 0;
        self.generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        self.refreshed = Some(now);
        let net = thread_net();
        MARK.with(|m| m.set((self.generation, net)));
        self.base
    }
}

/// The bytes jemalloc hands out for a request of `n` bytes: its size
/// class (8, 16, then four classes per doubling: 48, 64, 80 ... 128, 160,
/// 192, 224, 256, 320 ...; large classes keep the spacing). 0 for 0 (no
/// allocation). MEMORY USAGE sums these over a value's allocations.
pub fn size_class(n: usize) -> usize {
    match n {
        0 => 0,
        1..=8 => 8,
        9..=128 => (n + 15) & !15,
        _ => {
            let lg = usize::BITS - 1 - (n - 1).leading_zeros();
            let delta = 1usize << (lg - 2);
            (n + delta - 1) & !(delta - 1)
        }
    }
}

/// What one element of a `BTreeMap<K, V>` / `BTreeSet<K>` costs in its
/// nodes, with `kv` = `size_of::<K>() + size_of::<V>()`: a leaf holds up
/// to 11 elements next to a parent pointer and two u16, and leaves filled
/// by inserts in random order are about 70% full (internal nodes add
/// about a tenth more). In bytes times 10, for the caller to divide once.
pub fn btree_elem_cost_x10(kv: usize) -> usize {
    // 12 bytes of header, 11 slots; about 7.7 elements per leaf.
    let leaf = size_class(16 + 11 * kv);
    leaf * 100 / 77 * 11 / 10
}

/// An estimate over `n` elements from the first `sampled` of them, whose
/// sizes sum to `sum` (Redis's MEMORY USAGE sampling: the average of the
/// sample times the count).
pub fn extrapolate(sum: usize, sampled: usize, n: usize) -> usize {
    if sampled == 0 || sampled >= n {
        sum
    } else {
        (sum as u128 * n as u128 / sampled as u128) as usize
    }
}

/// Resident set size of this process in bytes (second field of
/// /proc/self/statm, in pages); 0 where /proc is unavailable.
pub(crate) fn rss_bytes() -> u64 {
    const PAGE_BYTES: u64 = 4096; // Linux x86-64 / aarch64 default page size
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * PAGE_BYTES)
}

/// Highest `used_memory` INFO has seen (Redis's `used_memory_peak`).
static PEAK_MEMORY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Records `used` in the peak and returns the peak (INFO, MEMORY STATS).
pub(crate) fn note_peak_memory(used: u64) -> u64 {
    PEAK_MEMORY
        .fetch_max(used, std::sync::atomic::Ordering::Relaxed)
        .max(used)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_are_jemallocs() {
        let want = [
            (0, 0),
            (1, 8),
            (8, 8),
            (9, 16),
            (17, 32),
            (33, 48),
            (100, 112),
            (128, 128),
            (129, 160),
            (257, 320),
            (4097, 5120),
            (16385, 20480),
        ];
        for (n, c) in want {
            assert_eq!(size_class(n), c, "size_class({n})");
        }
    }

    #[test]
    fn gauge_follows_this_threads_allocations_between_refreshes() {
        let mut g = MemGauge::default();
        let t = Instant::now();
        let before = g.refresh(t);
        assert!(before > 0, "jemalloc statistics readable");
        let block: Vec<u8> = vec![1; 8 << 20];
        let grown = g.used(t);
        assert!(
            grown >= before + (8 << 20) - 4096,
            "{grown} vs {before} + 8 MiB"
        );
        drop(block);
        let shrunk = g.used(t);
        assert!(shrunk + (8 << 20) - 4096 <= grown, "{shrunk} vs {grown}");
    }
}
