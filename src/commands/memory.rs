//! MEMORY and its subcommands (Redis's object.c `memoryCommand`): USAGE,
//! STATS, DOCTOR, MALLOC-STATS, PURGE, HELP.
//!
//! USAGE is what the key costs in redlog, not in Redis: its slot, index
//! share and name, and its value's allocations in jemalloc size classes
//! (`Db::key_usage`, `Value::mem_usage`), sampled as Redis samples
//! (SAMPLES n, default 5, 0 for all). STATS has Redis 7.0's fields and
//! shape with redlog's figures; DOCTOR applies Redis's rules to them.

use super::{CmdError, CmdResult, Ctx, Handler};
use crate::db::memory;
use bytes::Bytes;
use std::sync::atomic::Ordering;

/// Redis's `OBJ_COMPUTE_SIZE_DEF_SAMPLES`.
const DEFAULT_SAMPLES: usize = 5;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("memory|doctor", doctor),
    ("memory|help", help),
    ("memory|malloc-stats", malloc_stats),
    ("memory|purge", purge),
    ("memory|stats", stats),
    ("memory|usage", usage),
];

/// MEMORY HELP
fn help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    const LINES: &[&str] = &[
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return memory problems reports.",
        "MALLOC-STATS",
        "    Return internal statistics report from the memory allocator.",
        "PURGE",
        "    Attempt to purge dirty pages for reclamation by the allocator.",
        "STATS",
        "    Return information about the memory usage of the server.",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(LINES.len());
    for l in LINES {
        ctx.out.simple(l);
    }
    Ok(())
}

/// MEMORY USAGE key [SAMPLES count]
fn usage(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut samples = DEFAULT_SAMPLES;
    let mut j = 3;
    while j < args.len() {
        if super::is_opt(&args[j], "samples") && j + 1 < args.len() {
            let n = super::arg_i64(&args[j + 1])?;
            if n < 0 {
                return Err(CmdError::syntax());
            }
            samples = if n == 0 { usize::MAX } else { n as usize };
            j += 2;
        } else {
            return Err(CmdError::syntax());
        }
    }
    // As Redis's `dbFind`: no expiry check, no access-time update.
    match ctx.ks.dbs[ctx.db()].key_usage(&args[2], samples) {
        None => ctx.out.null(),
        Some(n) => ctx.out.int(n as i64),
    }
    Ok(())
}

/// jemalloc's `stats.<name>` after an epoch advance; 0 if unreadable.
fn je_stat(name: &str) -> u64 {
    let mut mib = [0usize; 2];
    let Ok(cname) = std::ffi::CString::new(format!("stats.{name}")) else {
        return 0;
    };
    if tikv_jemalloc_ctl::raw::name_to_mib(cname.as_bytes_with_nul(), &mut mib).is_err() {
        return 0;
    }
    // SAFETY: the stats.* names used here are size_t statistics.
    unsafe { tikv_jemalloc_ctl::raw::read_mib::<usize>(&mib) }.map_or(0, |n| n as u64)
}

/// The figures behind MEMORY STATS and DOCTOR (Redis's `redisMemOverhead`).
struct Overhead {
    peak: u64,
    total: u64,
    startup: u64,
    clients_normal: u64,
    clients: u64,
    aof_buffer: u64,
    lua_caches: u64,
    scripts: usize,
    /// (db index, main, expires) of the non-empty databases.
    dbs: Vec<(usize, u64, u64)>,
    overhead_total: u64,
    keys: u64,
    bytes_per_key: u64,
    dataset: u64,
    dataset_perc: f32,
    peak_perc: f32,
    allocator_allocated: u64,
    allocator_active: u64,
    allocator_resident: u64,
    rss: u64,
}

/// INFO memory's `used_memory_overhead`, `used_memory_dataset` and
/// `used_memory_dataset_perc`: MEMORY STATS's `overhead.total`,
/// `dataset.bytes` and `dataset.percentage` (Redis computes both from
/// one `getMemoryOverheadData`), counted from INFO's own
/// `used_memory_startup` (`startup`) and `used_memory` (`used`) so the
/// section adds up.
pub(crate) fn info_overhead(ctx: &Ctx, startup: u64, used: u64) -> (u64, u64, f32) {
    let m = Overhead::measure(ctx);
    let overhead = m.overhead_total - m.startup + startup;
    let dataset = used.saturating_sub(overhead);
    let net = used.saturating_sub(startup).max(1);
    (overhead, dataset, dataset as f32 * 100.0 / net as f32)
}

impl Overhead {
    fn measure(ctx: &Ctx) -> Overhead {
        let total = memory::allocated_now();
        let peak = crate::db::memory::note_peak_memory(total);
        let startup = ctx.shared.startup_allocated;
        let (mut clients_normal, mut clients) = (0u64, 0u64);
        for c in ctx.shared.clients.iter() {
            clients += 1;
            clients_normal += c.qbuf.load(Ordering::Relaxed) as u64
                + (std::mem::size_of::<crate::node::Client>()
                    + std::mem::size_of::<crate::node::ClientHandle>()) as u64;
        }
        let aof_buffer = ctx.shared.mem_not_counted_for_evict();
        let st = ctx.ks.script_stats;
        let lua_caches = st.scripts_memory as u64;
        let mut overhead_total = startup + clients_normal + aof_buffer + lua_caches;
        let mut dbs = Vec::new();
        let mut keys = 0u64;
        for (i, db) in ctx.ks.dbs.iter().enumerate() {
            if db.is_empty() {
                continue;
            }
            keys += db.len() as u64;
            let (main, exp) = db.overhead();
            overhead_total += (main + exp) as u64;
            dbs.push((i, main as u64, exp as u64));
        }
        let net = if total > startup { total - startup } else { 1 };
        let dataset = total.saturating_sub(overhead_total);
        let _ = memory::allocated_now(); // advances the epoch for the reads below
        Overhead {
            peak,
            total,
            startup,
            clients_normal,
            clients,
            aof_buffer,
            lua_caches,
            scripts: st.scripts,
            dbs,
            overhead_total,
            keys,
            bytes_per_key: net.checked_div(keys).unwrap_or(0),
            dataset,
            dataset_perc: dataset as f32 * 100.0 / net as f32,
            peak_perc: total as f32 * 100.0 / peak.max(1) as f32,
            allocator_allocated: je_stat("allocated"),
            allocator_active: je_stat("active"),
            allocator_resident: je_stat("resident"),
            rss: crate::db::memory::rss_bytes(),
        }
    }

    fn ratio(a: u64, b: u64) -> f32 {
        a as f32 / b as f32
    }

    fn allocator_frag(&self) -> f32 {
        Self::ratio(self.allocator_active, self.allocator_allocated)
    }
    fn allocator_rss(&self) -> f32 {
        Self::ratio(self.allocator_resident, self.allocator_active)
    }
    fn rss_extra(&self) -> f32 {
        Self::ratio(self.rss, self.allocator_resident)
    }
    fn total_frag(&self) -> f32 {
        Self::ratio(self.rss, self.total)
    }
}

/// A signed difference, as Redis's `size_t` subtractions printed with `%lld`.
fn diff(a: u64, b: u64) -> i64 {
    a.wrapping_sub(b) as i64
}

/// MEMORY STATS
fn stats(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let m = Overhead::measure(ctx);
    let out = &mut *ctx.out;
    out.map(27 + m.dbs.len());
    let int = |out: &mut crate::protocol::Out, k: &str, v: i64| {
        out.bulk(k.as_bytes());
        out.int(v);
    };
    int(out, "peak.allocated", m.peak as i64);
    int(out, "total.allocated", m.total as i64);
    int(out, "startup.allocated", m.startup as i64);
    int(out, "replication.backlog", 0);
    int(out, "clients.slaves", 0);
    int(out, "clients.normal", m.clients_normal as i64);
    int(out, "cluster.links", 0);
    int(out, "aof.buffer", m.aof_buffer as i64);
    int(out, "lua.caches", m.lua_caches as i64);
    int(out, "functions.caches", 0);
    for &(i, main, exp) in &m.dbs {
        out.bulk(format!("db.{i}").as_bytes());
        out.map(3);
        int(out, "overhead.hashtable.main", main as i64);
        int(out, "overhead.hashtable.expires", exp as i64);
        // Cluster mode's slot index: redlog has no cluster mode.
        int(out, "overhead.hashtable.slot-to-keys", 0);
    }
    int(out, "overhead.total", m.overhead_total as i64);
    int(out, "keys.count", m.keys as i64);
    int(out, "keys.bytes-per-key", m.bytes_per_key as i64);
    int(out, "dataset.bytes", m.dataset as i64);
    let dbl = |out: &mut crate::protocol::Out, k: &str, v: f32| {
        out.bulk(k.as_bytes());
        out.double(f64::from(v));
    };
    dbl(out, "dataset.percentage", m.dataset_perc);
    dbl(out, "peak.percentage", m.peak_perc);
    int(out, "allocator.allocated", m.allocator_allocated as i64);
    int(out, "allocator.active", m.allocator_active as i64);
    int(out, "allocator.resident", m.allocator_resident as i64);
    dbl(out, "allocator-fragmentation.ratio", m.allocator_frag());
    int(
        out,
        "allocator-fragmentation.bytes",
        diff(m.allocator_active, m.allocator_allocated),
    );
    dbl(out, "allocator.rss-ratio", m.allocator_rss());
    int(
        out,
        "allocator.rss-bytes",
        diff(m.allocator_resident, m.allocator_active),
    );
    dbl(out, "rss-overhead.ratio", m.rss_extra());
    int(out, "rss-overhead.bytes", diff(m.rss, m.allocator_resident));
    dbl(out, "fragmentation", m.total_frag());
    int(out, "fragmentation.bytes", diff(m.rss, m.total));
    Ok(())
}

/// Redis's `getMemoryDoctorReport` over `m`.
fn doctor_report(m: &Overhead) -> String {
    const MB: u64 = 1 << 20;
    let mut reports = Vec::new();
    let empty = m.total < 5 * MB;
    if !empty {
        if Overhead::ratio(m.peak, m.total) > 1.5 {
            reports.push(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n".to_string());
        }
        if m.total_frag() > 1.4 && diff(m.rss, m.total) > (10 * MB) as i64 {
            reports.push(format!(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"{}\".\n\n", crate::MEM_ALLOCATOR));
        }
        if m.allocator_frag() > 1.1
            && diff(m.allocator_active, m.allocator_allocated) > (10 * MB) as i64
        {
            reports.push(" * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. You can try enabling 'activedefrag' config option.\n\n".to_string());
        }
        if m.allocator_rss() > 1.1
            && diff(m.allocator_resident, m.allocator_active) > (10 * MB) as i64
        {
            reports.push(" * High allocator RSS overhead: This instance has an RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the allocator is much larger than the sum what the allocator actually holds). This problem is usually due to a large peak memory (check if there is a peak memory entry above in the report), you can try the MEMORY PURGE command to reclaim it.\n\n".to_string());
        }
        if m.rss_extra() > 1.1 && diff(m.rss, m.allocator_resident) > (10 * MB) as i64 {
            reports.push(" * High process RSS overhead: This instance has non-allocator RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the Redis process is much larger than the RSS the allocator holds). This problem may be due to Lua scripts or Modules.\n\n".to_string());
        }
        if m.clients > 0 && m.clients_normal / m.clients > 200 * 1024 {
            reports.push(" * Big client buffers: The clients output buffers in this instance are greater than 200K per client (on average). This may result from different causes, like Pub/Sub clients subscribed to channels bot not receiving data fast enough, so that data piles on the Redis instance output buffer, or clients sending commands with large replies or very large sequences of commands in the same pipeline. Please use the CLIENT LIST command in order to investigate the issue if it causes problems in your instance, or to understand better why certain clients are using a big amount of memory.\n\n".to_string());
        }
        if m.scripts > 1000 {
            reports.push(" * Many scripts: There seem to be many cached scripts in this instance (more than 1000). This may be because scripts are generated and `EVAL`ed, instead of being parameterized (with KEYS and ARGV), `SCRIPT LOAD`ed and `EVALSHA`ed. Unless `SCRIPT FLUSH` is called periodically, the scripts' caches may end up consuming most of your memory.\n\n".to_string());
        }
    }
    if empty {
        "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n".to_string()
    } else if reports.is_empty() {
        "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n".to_string()
    } else {
        let mut s =
            "Sam, I detected a few issues in this Redis instance memory implants:\n\n".to_string();
        for r in reports {
            s.push_str(&r);
        }
        s.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
        s
    }
}

/// MEMORY DOCTOR
fn doctor(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let m = Overhead::measure(ctx);
    let report = doctor_report(&m);
    ctx.out.verbatim(report.as_bytes());
    Ok(())
}

/// jemalloc's `malloc_stats_print` output.
fn malloc_stats_text() -> Vec<u8> {
    unsafe extern "C" fn cat(opaque: *mut std::ffi::c_void, s: *const std::ffi::c_char) {
        if opaque.is_null() || s.is_null() {
            return;
        }
        // SAFETY: `opaque` is the Vec passed below, alive for the call;
        // jemalloc passes NUL-terminated strings.
        let out = unsafe { &mut *(opaque as *mut Vec<u8>) };
        out.extend_from_slice(unsafe { std::ffi::CStr::from_ptr(s) }.to_bytes());
    }
    let mut out: Vec<u8> = Vec::new();
    // SAFETY: the callback only appends to `out`, which outlives the call.
    unsafe {
        tikv_jemalloc_sys::malloc_stats_print(
            Some(cat),
            &mut out as *mut Vec<u8> as *mut std::ffi::c_void,
            std::ptr::null(),
        );
    }
    out
}

/// MEMORY MALLOC-STATS
fn malloc_stats(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let text = malloc_stats_text();
    ctx.out.verbatim(&text);
    Ok(())
}

/// Redis's `jemalloc_purge`: the calling thread's cache flushed, then
/// every arena's dirty pages returned to the system.
fn jemalloc_purge() -> bool {
    // SAFETY: both are void mallctls (no old or new value).
    unsafe {
        let null = std::ptr::null_mut();
        let _ = tikv_jemalloc_sys::mallctl(
            c"thread.tcache.flush".as_ptr(),
            null,
            std::ptr::null_mut(),
            null,
            0,
        );
        // 4096: MALLCTL_ARENAS_ALL.
        tikv_jemalloc_sys::mallctl(
            c"arena.4096.purge".as_ptr(),
            null,
            std::ptr::null_mut(),
            null,
            0,
        ) == 0
    }
}

/// MEMORY PURGE
fn purge(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if jemalloc_purge() {
        ctx.out.ok();
        Ok(())
    } else {
        Err(CmdError::new("ERR Error purging dirty pages"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malloc_stats_is_jemallocs_report() {
        let t = String::from_utf8(malloc_stats_text()).expect("text");
        assert!(
            t.starts_with("___ Begin jemalloc statistics ___"),
            "{t:.80}"
        );
        assert!(t.contains("--- End jemalloc statistics ---"));
    }

    #[test]
    fn purge_succeeds() {
        assert!(jemalloc_purge());
    }
}
