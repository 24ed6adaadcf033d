//! INFO: which sections a call asks for, and one function per section
//! writing its text (Redis 7.0's field names; a field is printed only when
//! redlog has a true value for it).

use super::{is_kw, table, CmdResult, Ctx};
use bytes::Bytes;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes one `field:value` line (`write!` into a String cannot fail).
macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
        $out.push_str("\r\n");
    }};
}

/// INFO sections in Redis's output order, and whether `default` has them.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
];

/// Which sections an INFO call asked for (Redis 7.0's `genInfoSectionDict`):
/// none means `default`; `all` and `everything` mean every section;
/// unknown names select nothing.
fn wanted_sections(args: &[Bytes]) -> Vec<&'static str> {
    let mut want = vec![false; SECTIONS.len()];
    if args.is_empty() {
        for (w, (_, d)) in want.iter_mut().zip(SECTIONS) {
            *w = *d;
        }
    }
    for a in args {
        if is_kw(a, "all") || is_kw(a, "everything") {
            want.iter_mut().for_each(|w| *w = true);
        } else if is_kw(a, "default") {
            for (w, (_, d)) in want.iter_mut().zip(SECTIONS) {
                *w |= *d;
            }
        } else if let Some(i) = SECTIONS.iter().position(|(n, _)| is_kw(a, n)) {
            want[i] = true;
        }
    }
    SECTIONS
        .iter()
        .zip(want)
        .filter(|(_, w)| *w)
        .map(|((n, _), _)| *n)
        .collect()
}

/// Redis's `bytesToHuman`.
fn bytes_to_human(n: u64) -> String {
    let f = n as f64;
    const K: f64 = 1024.0;
    if n < 1024 {
        format!("{n}B")
    } else if f < K * K {
        format!("{:.2}K", f / K)
    } else if f < K * K * K {
        format!("{:.2}M", f / (K * K))
    } else if f < K * K * K * K {
        format!("{:.2}G", f / (K * K * K))
    } else if f < K * K * K * K * K {
        format!("{:.2}T", f / (K * K * K * K))
    } else {
        format!("{:.2}P", f / (K * K * K * K * K))
    }
}

fn total_system_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// User and system CPU seconds of this process, from /proc/self/stat
/// (fields 14 and 15, in clock ticks).
fn cpu_times() -> (f64, f64) {
    const TICKS_PER_S: f64 = 100.0; // USER_HZ on Linux
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    // The command name (field 2) is in parentheses and may hold spaces.
    let Some(rest) = s.rfind(')').map(|p| &s[p + 1..]) else {
        return (0.0, 0.0);
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // `rest` starts at field 3, so fields 14 and 15 are at 11 and 12.
    (tick(11) / TICKS_PER_S, tick(12) / TICKS_PER_S)
}

/// User and system CPU seconds of the calling thread (RUSAGE_THREAD, as
/// Redis's `used_cpu_*_main_thread`).
fn thread_cpu_times() -> (f64, f64) {
    // SAFETY: getrusage writes only into the struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_THREAD, &mut ru) != 0 {
            return (0.0, 0.0);
        }
        ru
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

fn os_name() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let ostype = read("/proc/sys/kernel/ostype");
    let release = read("/proc/sys/kernel/osrelease");
    if ostype.is_empty() {
        format!("{} {}", std::env::consts::OS, std::env::consts::ARCH)
    } else {
        format!("{ostype} {release} {}", std::env::consts::ARCH)
    }
}

/// One INFO section's text (nothing for an unknown name).
fn section_text(ctx: &Ctx, name: &str, out: &mut String) {
    let section: fn(&Ctx, &mut String) = match name {
        "server" => server,
        "clients" => clients,
        "memory" => memory,
        "persistence" => persistence,
        "stats" => stats,
        "replication" => replication,
        "cpu" => cpu,
        "modules" => modules,
        "commandstats" => commandstats,
        "errorstats" => errorstats,
        "latencystats" => latencystats,
        "cluster" => cluster,
        "keyspace" => keyspace,
        _ => return,
    };
    section(ctx, out);
}

/// INFO's `server` section.
fn server(ctx: &Ctx, out: &mut String) {
    let sh = ctx.shared;
    let uptime = sh.started.elapsed().as_secs();
    let (hz, port, config_file, io_threads) = {
        let c = sh.config.read();
        (
            c.hz,
            c.port,
            c.config_file.clone().unwrap_or_default(),
            c.io_threads,
        )
    };
    let actual_port = sh.listen_addrs.first().map_or(port, |a| a.port());
    line!(out, "# Server");
    line!(out, "redis_version:{}", crate::REDIS_COMPAT_VERSION);
    line!(out, "redis_git_sha1:00000000");
    line!(out, "redis_git_dirty:0");
    line!(out, "redis_build_id:0");
    line!(
        out,
        "redis_mode:{}",
        if sh.cluster.is_some() {
            "cluster"
        } else {
            "standalone"
        }
    );
    line!(out, "os:{}", os_name());
    line!(out, "arch_bits:{}", usize::BITS);
    line!(out, "monotonic_clock:POSIX clock_gettime");
    line!(out, "multiplexing_api:epoll");
    line!(out, "atomicvar_api:c11-builtin");
    line!(out, "gcc_version:0.0.0");
    line!(out, "process_id:{}", std::process::id());
    line!(out, "process_supervised:no");
    line!(out, "run_id:{}", sh.run_id);
    line!(out, "tcp_port:{actual_port}");
    line!(out, "server_time_usec:{}", now_us());
    line!(out, "uptime_in_seconds:{uptime}");
    line!(out, "uptime_in_days:{}", uptime / 86400);
    line!(out, "hz:{hz}");
    line!(out, "configured_hz:{hz}");
    line!(
        out,
        "lru_clock:{}",
        (now_us() / 1_000_000) & ((1 << 24) - 1)
    );
    line!(
        out,
        "executable:{}",
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    line!(out, "config_file:{config_file}");
    line!(out, "io_threads_active:{}", u8::from(io_threads > 1));
    line!(out, "redlog_version:{}", crate::VERSION);
}

/// INFO's `clients` section.
fn clients(ctx: &Ctx, out: &mut String) {
    let sh = ctx.shared;
    let maxclients = sh.config.read().maxclients;
    line!(out, "# Clients");
    line!(out, "connected_clients:{}", sh.clients.len());
    line!(out, "cluster_connections:0");
    line!(out, "maxclients:{maxclients}");
    line!(out, "client_recent_max_input_buffer:0");
    line!(out, "client_recent_max_output_buffer:0");
    line!(out, "blocked_clients:{}", ctx.ks.blocked_clients());
    line!(out, "tracking_clients:{}", ctx.ks.tracking.client_count());
    line!(out, "clients_in_timeout_table:0");
}

/// INFO's `memory` section.
fn memory(ctx: &Ctx, out: &mut String) {
    let sh = ctx.shared;
    let rss = crate::db::memory::rss_bytes();
    // jemalloc's allocated bytes, read afresh.
    let used = crate::db::memory::allocated_now();
    let peak = crate::db::memory::note_peak_memory(used);
    let total = total_system_memory();
    let (maxmemory, policy) = {
        let c = sh.config.read();
        (
            c.get("maxmemory")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0),
            c.get("maxmemory-policy")
                .unwrap_or("noeviction")
                .to_string(),
        )
    };
    line!(out, "# Memory");
    line!(out, "used_memory:{used}");
    line!(out, "used_memory_human:{}", bytes_to_human(used));
    line!(out, "used_memory_rss:{rss}");
    line!(out, "used_memory_rss_human:{}", bytes_to_human(rss));
    line!(out, "used_memory_peak:{peak}");
    line!(out, "used_memory_peak_human:{}", bytes_to_human(peak));
    line!(
        out,
        "used_memory_peak_perc:{:.2}%",
        if peak == 0 {
            100.0
        } else {
            used as f64 * 100.0 / peak as f64
        }
    );
    let startup = sh.observe.startup_memory.load(Ordering::Relaxed);
    let (overhead, dataset, dataset_perc) = super::memory::info_overhead(ctx, startup, used);
    line!(out, "used_memory_overhead:{overhead}");
    line!(out, "used_memory_startup:{startup}");
    line!(out, "used_memory_dataset:{dataset}");
    line!(out, "used_memory_dataset_perc:{dataset_perc:.2}%");
    line!(out, "allocator_allocated:{used}");
    // jemalloc's active and resident bytes (the epoch was advanced
    // by `allocated_now` above).
    let active = tikv_jemalloc_ctl::stats::active::read().unwrap_or(0) as u64;
    let resident = tikv_jemalloc_ctl::stats::resident::read().unwrap_or(0) as u64;
    line!(out, "allocator_active:{active}");
    line!(out, "allocator_resident:{resident}");
    line!(out, "total_system_memory:{total}");
    line!(out, "total_system_memory_human:{}", bytes_to_human(total));
    // The EVAL engine as of its last script (none before the first).
    let st = ctx.ks.script_stats;
    line!(out, "used_memory_lua:{}", st.vm_memory);
    line!(out, "used_memory_vm_eval:{}", st.vm_memory);
    line!(
        out,
        "used_memory_lua_human:{}",
        bytes_to_human(st.vm_memory as u64)
    );
    line!(out, "used_memory_scripts_eval:{}", st.scripts_memory);
    line!(out, "number_of_cached_scripts:{}", st.scripts);
    // Functions (`Keyspace::function_stats`, as of the last change
    // or FCALL).
    let fst = ctx.ks.function_stats;
    line!(out, "number_of_functions:{}", fst.functions);
    line!(out, "number_of_libraries:{}", fst.libraries);
    line!(out, "used_memory_vm_functions:{}", fst.vm_memory);
    let vm_total = st.vm_memory + fst.vm_memory;
    line!(out, "used_memory_vm_total:{vm_total}");
    line!(
        out,
        "used_memory_vm_total_human:{}",
        bytes_to_human(vm_total as u64)
    );
    line!(out, "used_memory_functions:{}", fst.memory);
    let scripts_total = st.scripts_memory + fst.memory;
    line!(out, "used_memory_scripts:{scripts_total}");
    line!(
        out,
        "used_memory_scripts_human:{}",
        bytes_to_human(scripts_total as u64)
    );
    line!(out, "maxmemory:{maxmemory}");
    line!(out, "maxmemory_human:{}", bytes_to_human(maxmemory));
    line!(out, "maxmemory_policy:{policy}");
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    line!(out, "allocator_frag_ratio:{:.2}", ratio(active, used));
    line!(out, "allocator_frag_bytes:{}", active as i64 - used as i64);
    line!(out, "allocator_rss_ratio:{:.2}", ratio(resident, active));
    line!(
        out,
        "allocator_rss_bytes:{}",
        resident as i64 - active as i64
    );
    line!(out, "rss_overhead_ratio:{:.2}", ratio(rss, resident));
    line!(out, "rss_overhead_bytes:{}", rss as i64 - resident as i64);
    line!(
        out,
        "mem_fragmentation_ratio:{:.2}",
        if used == 0 {
            0.0
        } else {
            rss as f64 / used as f64
        }
    );
    line!(out, "mem_fragmentation_bytes:{}", rss as i64 - used as i64);
    line!(
        out,
        "mem_not_counted_for_evict:{}",
        sh.mem_not_counted_for_evict()
    );
    // No replication, no cluster bus: nothing held for them.
    line!(out, "mem_replication_backlog:0");
    line!(out, "mem_total_replication_buffers:0");
    line!(out, "mem_clients_slaves:0");
    line!(
        out,
        "mem_clients_normal:{}",
        sh.clients
            .iter()
            .map(|c| c.qbuf.load(Ordering::Relaxed) as u64)
            .sum::<u64>()
    );
    line!(out, "mem_cluster_links:0");
    line!(out, "mem_aof_buffer:{}", sh.durability.queued_bytes());
    line!(out, "mem_allocator:{}", crate::MEM_ALLOCATOR);
    line!(out, "active_defrag_running:0");
    line!(
        out,
        "lazyfree_pending_objects:{}",
        ctx.ks.lazyfree.pending()
    );
    line!(out, "lazyfreed_objects:{}", ctx.ks.lazyfree.freed());
}

/// INFO's `persistence` section.
fn persistence(ctx: &Ctx, out: &mut String) {
    let sh = ctx.shared;
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    line!(out, "# Persistence");
    let p = sh.persist.as_deref();
    let flag = |b: Option<&std::sync::atomic::AtomicBool>| {
        b.is_some_and(|b| b.load(Ordering::Relaxed)) as u8
    };
    line!(out, "loading:{}", flag(p.map(|p| &p.loading)));
    line!(out, "async_loading:0");
    // No fork, ever: no copy-on-write, no child saving keys.
    line!(out, "current_cow_peak:0");
    line!(out, "current_cow_size:0");
    line!(out, "current_cow_size_age:0");
    line!(out, "current_fork_perc:0.00");
    line!(out, "current_save_keys_processed:0");
    line!(out, "current_save_keys_total:0");
    line!(out, "rdb_changes_since_last_save:{}", ctx.ks.stats.dirty);
    line!(
        out,
        "rdb_bgsave_in_progress:{}",
        flag(p.map(|p| &p.rewrite_in_progress))
    );
    line!(out, "rdb_last_save_time:{}", ld(&sh.last_save_unix));
    let ok = |b: bool| if b { "ok" } else { "err" };
    let rewrite_ok = p.is_none_or(|p| p.last_rewrite_ok.load(Ordering::Relaxed));
    line!(out, "rdb_last_bgsave_status:{}", ok(rewrite_ok));
    line!(
        out,
        "rdb_last_bgsave_time_sec:{}",
        p.map_or(-1, |p| p.last_rewrite_time_sec.load(Ordering::Relaxed))
    );
    line!(out, "rdb_current_bgsave_time_sec:-1");
    line!(
        out,
        "rdb_saves:{}",
        p.map_or(0, |p| p.rewrites.load(Ordering::Relaxed))
    );
    line!(out, "rdb_last_cow_size:0");
    // Replay never expires keys (see ARCHITECTURE.md).
    line!(out, "rdb_last_load_keys_expired:0");
    line!(
        out,
        "rdb_last_load_keys_loaded:{}",
        sh.observe.keys_loaded.load(Ordering::Relaxed)
    );
    line!(out, "aof_enabled:{}", p.is_some() as u8);
    line!(
        out,
        "aof_rewrite_in_progress:{}",
        flag(p.map(|p| &p.rewrite_in_progress))
    );
    line!(
        out,
        "aof_rewrite_scheduled:{}",
        flag(p.map(|p| &p.rewrite_scheduled))
    );
    line!(
        out,
        "aof_last_rewrite_time_sec:{}",
        p.map_or(-1, |p| p.last_rewrite_time_sec.load(Ordering::Relaxed))
    );
    line!(out, "aof_current_rewrite_time_sec:-1");
    line!(out, "aof_last_bgrewrite_status:{}", ok(rewrite_ok));
    line!(
        out,
        "aof_rewrites:{}",
        p.map_or(0, |p| p.rewrites.load(Ordering::Relaxed))
    );
    line!(
        out,
        "aof_last_write_status:{}",
        ok(sh.durability.failure().is_none())
    );
    line!(out, "aof_last_cow_size:0");
    line!(out, "module_fork_in_progress:0");
    line!(out, "module_fork_last_cow_size:0");
    if let Some(p) = p {
        line!(out, "aof_current_size:{}", p.current_size());
        line!(out, "aof_base_size:{}", p.base_size.load(Ordering::Relaxed));
        line!(out, "aof_pending_rewrite:0");
        line!(out, "aof_buffer_length:0");
        line!(out, "aof_pending_bio_fsync:0");
        line!(out, "aof_delayed_fsync:0");
    }
}

/// INFO's `stats` section.
fn stats(ctx: &Ctx, out: &mut String) {
    let sh = ctx.shared;
    let st = &ctx.shared.stats;
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let ks = &ctx.ks;
    line!(out, "# Stats");
    line!(
        out,
        "total_connections_received:{}",
        ld(&st.total_connections_received)
    );
    line!(
        out,
        "total_commands_processed:{}",
        ld(&st.total_commands_processed)
    );
    let (ops, input, output) = sh.observe.instantaneous();
    line!(out, "instantaneous_ops_per_sec:{ops}");
    line!(
        out,
        "total_net_input_bytes:{}",
        ld(&st.total_net_input_bytes)
    );
    line!(
        out,
        "total_net_output_bytes:{}",
        ld(&st.total_net_output_bytes)
    );
    line!(
        out,
        "total_net_repl_input_bytes:{}",
        ld(&st.total_net_repl_input_bytes)
    );
    line!(out, "total_net_repl_output_bytes:0");
    line!(out, "instantaneous_input_kbps:{:.2}", input as f64 / 1024.0);
    line!(
        out,
        "instantaneous_output_kbps:{:.2}",
        output as f64 / 1024.0
    );
    line!(out, "instantaneous_input_repl_kbps:0.00");
    line!(out, "instantaneous_output_repl_kbps:0.00");
    line!(out, "rejected_connections:{}", ld(&st.rejected_connections));
    let (full, ok, err) = {
        let r = ctx.shared.repl.lock();
        let p = &r.primary;
        (p.sync_full, p.sync_partial_ok, p.sync_partial_err)
    };
    line!(out, "sync_full:{full}");
    line!(out, "sync_partial_ok:{ok}");
    line!(out, "sync_partial_err:{err}");
    line!(out, "expired_keys:{}", ks.stats.expired_keys);
    line!(
        out,
        "expired_stale_perc:{:.2}",
        ks.expire.stale_perc * 100.0
    );
    line!(
        out,
        "expired_time_cap_reached_count:{}",
        ks.expire.time_cap_reached
    );
    line!(out, "expire_cycle_cpu_milliseconds:{}", ks.expire.cpu_ms);
    line!(out, "evicted_keys:{}", ks.evict.evicted_keys);
    line!(out, "evicted_clients:{}", ld(&st.evicted_clients));
    let (current, total) = ks.evict.exceeded_us();
    line!(out, "total_eviction_exceeded_time:{}", total / 1000);
    line!(out, "current_eviction_exceeded_time:{}", current / 1000);
    line!(out, "keyspace_hits:{}", ks.stats.keyspace_hits);
    line!(out, "keyspace_misses:{}", ks.stats.keyspace_misses);
    line!(out, "pubsub_channels:{}", ctx.shared.pubsub.channel_count());
    line!(out, "pubsub_patterns:{}", ctx.shared.pubsub.pattern_count());
    line!(
        out,
        "pubsubshard_channels:{}",
        ctx.shared.pubsub.shard_channel_count()
    );
    line!(out, "latest_fork_usec:0");
    line!(out, "total_forks:0");
    line!(out, "migrate_cached_sockets:0");
    line!(out, "slave_expires_tracked_keys:{}", ks.replica_ttl_names());
    // activedefrag is refused (see config.rs): it never ran.
    line!(out, "active_defrag_hits:0");
    line!(out, "active_defrag_misses:0");
    line!(out, "active_defrag_key_hits:0");
    line!(out, "active_defrag_key_misses:0");
    line!(out, "total_active_defrag_time:0");
    line!(out, "current_active_defrag_time:0");
    let (keys, items, prefixes) = ctx.ks.tracking.totals();
    line!(out, "tracking_total_keys:{keys}");
    line!(out, "tracking_total_items:{items}");
    line!(out, "tracking_total_prefixes:{prefixes}");
    line!(out, "unexpected_error_replies:0");
    line!(out, "total_error_replies:{}", ld(&st.total_error_replies));
    line!(out, "dump_payload_sanitizations:0");
    let reads = ld(&sh.observe.reads);
    let writes = ld(&sh.observe.writes);
    line!(out, "total_reads_processed:{reads}");
    line!(out, "total_writes_processed:{writes}");
    // With io-threads > 1 every read and write is done by one of
    // the worker threads.
    let threaded = sh.config.read().io_threads > 1;
    line!(
        out,
        "io_threaded_reads_processed:{}",
        if threaded { reads } else { 0 }
    );
    line!(
        out,
        "io_threaded_writes_processed:{}",
        if threaded { writes } else { 0 }
    );
    line!(
        out,
        "reply_buffer_shrinks:{}",
        ld(&sh.observe.reply_buffer_shrinks)
    );
    line!(
        out,
        "reply_buffer_expands:{}",
        ld(&sh.observe.reply_buffer_expands)
    );
}

/// INFO's `replication` section.
fn replication(ctx: &Ctx, out: &mut String) {
    let sh = ctx.shared;
    line!(out, "# Replication");
    let replica_cfg = crate::node::replication::info_config(sh);
    sh.repl.info(replica_cfg, out);
}

/// INFO's `cpu` section.
fn cpu(_: &Ctx, out: &mut String) {
    let (user, sys) = cpu_times();
    line!(out, "# CPU");
    line!(out, "used_cpu_sys:{sys:.6}");
    line!(out, "used_cpu_user:{user:.6}");
    line!(out, "used_cpu_sys_children:0.000000");
    line!(out, "used_cpu_user_children:0.000000");
    // The thread running this command: the one that runs every
    // command with io-threads 1 (Redis's main thread).
    let (user, sys) = thread_cpu_times();
    line!(out, "used_cpu_sys_main_thread:{sys:.6}");
    line!(out, "used_cpu_user_main_thread:{user:.6}");
}

/// INFO's `modules` section.
fn modules(_: &Ctx, out: &mut String) {
    line!(out, "# Modules");
}

/// INFO's `commandstats` section.
fn commandstats(_: &Ctx, out: &mut String) {
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    line!(out, "# Commandstats");
    for e in &table().entries {
        let calls = ld(&e.stat.calls);
        let rejected = ld(&e.stat.rejected);
        let failed = ld(&e.stat.failed);
        if calls == 0 && rejected == 0 && failed == 0 {
            continue;
        }
        let usec = ld(&e.stat.usec);
        let per = if calls == 0 {
            0.0
        } else {
            usec as f64 / calls as f64
        };
        line!(
            out,
            "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}",
            e.full_name
        );
    }
}

/// INFO's `errorstats` section.
fn errorstats(ctx: &Ctx, out: &mut String) {
    let sh = ctx.shared;
    line!(out, "# Errorstats");
    for (code, n) in sh.observe.error_counts() {
        line!(
            out,
            "errorstat_{}:count={n}",
            String::from_utf8_lossy(&code)
        );
    }
}

/// INFO's `latencystats` section.
fn latencystats(ctx: &Ctx, out: &mut String) {
    let sh = ctx.shared;
    line!(out, "# Latencystats");
    let percentiles: Vec<f64> = sh
        .config
        .read()
        .get("latency-tracking-info-percentiles")
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    if sh.observe.tracking.load(Ordering::Relaxed) {
        for e in &table().entries {
            let h = e.stat.histogram.lock();
            if let Some(h) = h.as_ref().filter(|h| !h.is_empty()) {
                line!(
                    out,
                    "latency_percentiles_usec_{}:{}",
                    e.full_name,
                    super::observe::percentiles_line(h, &percentiles)
                );
            }
        }
    }
}

/// INFO's `cluster` section.
fn cluster(ctx: &Ctx, out: &mut String) {
    let sh = ctx.shared;
    line!(out, "# Cluster");
    line!(out, "cluster_enabled:{}", u8::from(sh.cluster.is_some()));
}

/// INFO's `keyspace` section.
fn keyspace(ctx: &Ctx, out: &mut String) {
    line!(out, "# Keyspace");
    for (i, db) in ctx.ks.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        line!(
            out,
            "db{i}:keys={},expires={},avg_ttl=0",
            db.len(),
            db.expires_len()
        );
    }
}

/// Wall-clock microseconds (INFO's `server_time_usec`, TIME).
pub(super) fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// INFO [section [section ...]]
pub(super) fn info(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut text = String::new();
    for (i, s) in wanted_sections(&args[1..]).into_iter().enumerate() {
        if i > 0 {
            text.push_str("\r\n");
        }
        section_text(ctx, s, &mut text);
    }
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}
