//! Server commands: INFO, CONFIG, DBSIZE, FLUSHDB, FLUSHALL, TIME,
//! LASTSAVE, SHUTDOWN, SWAPDB (COMMAND is in `introspection`).
//!
//! INFO field names are Redis 7.0's; a field is printed only when redlog has
//! a true value for it.

use super::{flags::*, is_kw, table, CmdError, CmdResult, Command, Ctx, Doc};
use crate::db::{Db, DATABASES};
use bytes::Bytes;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

const fn server_doc(summary: &'static str, since: &'static str, complexity: &'static str) -> Doc {
    Doc {
        summary,
        since,
        group: "server",
        complexity,
    }
}

const ACL_ADMIN: &[&str] = &["@admin", "@slow", "@dangerous"];

pub static COMMANDS: &[Command] = &[
    Command {
        name: "info",
        arity: -1,
        flags: LOADING | STALE,
        acl: &["@slow", "@dangerous"],
        doc: server_doc(
            "Get information and statistics about the server",
            "1.0.0",
            "O(1)",
        ),
        handler: Some(info),
        ..Command::DEFAULT
    },
    Command {
        name: "config",
        arity: -2,
        flags: 0,
        acl: &["@slow"],
        doc: server_doc(
            "A container for server configuration commands",
            "2.0.0",
            "Depends on subcommand.",
        ),
        handler: None,
        subcommands: CONFIG_SUBCOMMANDS,
        ..Command::DEFAULT
    },
    Command {
        name: "dbsize",
        arity: 1,
        flags: READONLY | FAST,
        acl: &["@keyspace", "@read", "@fast"],
        doc: server_doc(
            "Return the number of keys in the selected database",
            "1.0.0",
            "O(1)",
        ),
        handler: Some(dbsize),
        ..Command::DEFAULT
    },
    Command {
        name: "flushdb",
        arity: -1,
        flags: WRITE,
        acl: &["@keyspace", "@write", "@slow", "@dangerous"],
        doc: server_doc(
            "Remove all keys from the current database",
            "1.0.0",
            "O(N) where N is the number of keys in the selected database",
        ),
        handler: Some(flushdb),
        ..Command::DEFAULT
    },
    Command {
        name: "flushall",
        arity: -1,
        flags: WRITE,
        acl: &["@keyspace", "@write", "@slow", "@dangerous"],
        doc: server_doc(
            "Remove all keys from all databases",
            "1.0.0",
            "O(N) where N is the total number of keys in all databases",
        ),
        handler: Some(flushall),
        ..Command::DEFAULT
    },
    Command {
        name: "time",
        arity: 1,
        flags: LOADING | STALE | FAST,
        acl: &["@fast"],
        doc: server_doc("Return the current server time", "2.6.0", "O(1)"),
        handler: Some(time),
        ..Command::DEFAULT
    },
    Command {
        name: "lastsave",
        arity: 1,
        flags: LOADING | STALE | FAST,
        acl: &["@admin", "@fast", "@dangerous"],
        doc: server_doc(
            "Get the UNIX time stamp of the last successful save to disk",
            "1.0.0",
            "O(1)",
        ),
        handler: Some(lastsave),
        ..Command::DEFAULT
    },
    Command {
        name: "shutdown",
        arity: -1,
        flags: ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
        acl: ACL_ADMIN,
        doc: server_doc(
            "Synchronously save the dataset to disk and then shut down the server",
            "1.0.0",
            "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)",
        ),
        handler: Some(shutdown),
        ..Command::DEFAULT
    },
    Command {
        name: "swapdb",
        arity: 3,
        flags: WRITE | FAST,
        acl: &["@keyspace", "@write", "@fast", "@dangerous"],
        doc: server_doc(
            "Swaps two Redis databases",
            "4.0.0",
            "O(N) where N is the count of clients watching or blocking on keys from both databases.",
        ),
        handler: Some(swapdb),
        ..Command::DEFAULT
    },
];

static CONFIG_SUBCOMMANDS: &[Command] = &[
    Command {
        name: "get",
        arity: -3,
        flags: ADMIN | NOSCRIPT | LOADING | STALE,
        acl: ACL_ADMIN,
        doc: server_doc(
            "Get the values of configuration parameters",
            "2.0.0",
            "O(N) when N is the number of configuration parameters provided",
        ),
        handler: Some(config_get),
        ..Command::DEFAULT
    },
    Command {
        name: "set",
        arity: -4,
        flags: ADMIN | NOSCRIPT | LOADING | STALE,
        acl: ACL_ADMIN,
        doc: server_doc(
            "Set configuration parameters to the given values",
            "2.0.0",
            "O(N) when N is the number of configuration parameters provided",
        ),
        handler: Some(config_set),
        ..Command::DEFAULT
    },
    Command {
        name: "resetstat",
        arity: 2,
        flags: ADMIN | NOSCRIPT | LOADING | STALE,
        acl: ACL_ADMIN,
        doc: server_doc("Reset the stats returned by INFO", "2.0.0", "O(1)"),
        handler: Some(config_resetstat),
        ..Command::DEFAULT
    },
    Command {
        name: "rewrite",
        arity: 2,
        flags: ADMIN | NOSCRIPT | LOADING | STALE,
        acl: ACL_ADMIN,
        doc: server_doc(
            "Rewrite the configuration file with the in memory configuration",
            "2.8.0",
            "O(1)",
        ),
        handler: Some(config_rewrite),
        ..Command::DEFAULT
    },
    Command {
        name: "help",
        arity: 2,
        flags: LOADING | STALE,
        acl: &["@slow"],
        doc: server_doc(
            "Show helpful text about the different subcommands",
            "5.0.0",
            "O(1)",
        ),
        handler: Some(config_help),
        ..Command::DEFAULT
    },
];

// ------------------------------------------------------------------- INFO

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

fn section_text(ctx: &Ctx, name: &str, out: &mut String) {
    let sh = ctx.shared;
    let st = &sh.stats;
    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    // `write!` into a String cannot fail.
    macro_rules! line {
        ($($arg:tt)*) => {{ let _ = write!(out, $($arg)*); out.push_str("\r\n"); }};
    }
    match name {
        "server" => {
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
            line!("# Server");
            line!("redis_version:{}", crate::REDIS_COMPAT_VERSION);
            line!("redis_git_sha1:00000000");
            line!("redis_git_dirty:0");
            line!("redis_build_id:0");
            line!(
                "redis_mode:{}",
                if sh.cluster.is_some() {
                    "cluster"
                } else {
                    "standalone"
                }
            );
            line!("os:{}", os_name());
            line!("arch_bits:{}", usize::BITS);
            line!("monotonic_clock:POSIX clock_gettime");
            line!("multiplexing_api:epoll");
            line!("atomicvar_api:c11-builtin");
            line!("gcc_version:0.0.0");
            line!("process_id:{}", std::process::id());
            line!("process_supervised:no");
            line!("run_id:{}", sh.run_id);
            line!("tcp_port:{actual_port}");
            line!("server_time_usec:{}", now_us());
            line!("uptime_in_seconds:{uptime}");
            line!("uptime_in_days:{}", uptime / 86400);
            line!("hz:{hz}");
            line!("configured_hz:{hz}");
            line!("lru_clock:{}", (now_us() / 1_000_000) & ((1 << 24) - 1));
            line!(
                "executable:{}",
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
            line!("config_file:{config_file}");
            line!("io_threads_active:{}", u8::from(io_threads > 1));
            line!("redlog_version:{}", crate::VERSION);
        }
        "clients" => {
            let maxclients = sh.config.read().maxclients;
            line!("# Clients");
            line!("connected_clients:{}", sh.clients.len());
            line!("cluster_connections:0");
            line!("maxclients:{maxclients}");
            line!("client_recent_max_input_buffer:0");
            line!("client_recent_max_output_buffer:0");
            line!("blocked_clients:{}", ctx.ks.blocked_clients());
            line!("tracking_clients:{}", ctx.ks.tracking.client_count());
            line!("clients_in_timeout_table:0");
        }
        "memory" => {
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
            line!("# Memory");
            line!("used_memory:{used}");
            line!("used_memory_human:{}", bytes_to_human(used));
            line!("used_memory_rss:{rss}");
            line!("used_memory_rss_human:{}", bytes_to_human(rss));
            line!("used_memory_peak:{peak}");
            line!("used_memory_peak_human:{}", bytes_to_human(peak));
            line!(
                "used_memory_peak_perc:{:.2}%",
                if peak == 0 {
                    100.0
                } else {
                    used as f64 * 100.0 / peak as f64
                }
            );
            let startup = sh.observe.startup_memory.load(Ordering::Relaxed);
            let (overhead, dataset, dataset_perc) =
                super::memory::info_overhead(ctx, startup, used);
            line!("used_memory_overhead:{overhead}");
            line!("used_memory_startup:{startup}");
            line!("used_memory_dataset:{dataset}");
            line!("used_memory_dataset_perc:{dataset_perc:.2}%");
            line!("allocator_allocated:{used}");
            // jemalloc's active and resident bytes (the epoch was advanced
            // by `allocated_now` above).
            let active = tikv_jemalloc_ctl::stats::active::read().unwrap_or(0) as u64;
            let resident = tikv_jemalloc_ctl::stats::resident::read().unwrap_or(0) as u64;
            line!("allocator_active:{active}");
            line!("allocator_resident:{resident}");
            line!("total_system_memory:{total}");
            line!("total_system_memory_human:{}", bytes_to_human(total));
            // The EVAL engine as of its last script (none before the first).
            let st = ctx.ks.script_stats;
            line!("used_memory_lua:{}", st.vm_memory);
            line!("used_memory_vm_eval:{}", st.vm_memory);
            line!(
                "used_memory_lua_human:{}",
                bytes_to_human(st.vm_memory as u64)
            );
            line!("used_memory_scripts_eval:{}", st.scripts_memory);
            line!("number_of_cached_scripts:{}", st.scripts);
            // Functions (`Keyspace::function_stats`, as of the last change
            // or FCALL).
            let fst = ctx.ks.function_stats;
            line!("number_of_functions:{}", fst.functions);
            line!("number_of_libraries:{}", fst.libraries);
            line!("used_memory_vm_functions:{}", fst.vm_memory);
            let vm_total = st.vm_memory + fst.vm_memory;
            line!("used_memory_vm_total:{vm_total}");
            line!(
                "used_memory_vm_total_human:{}",
                bytes_to_human(vm_total as u64)
            );
            line!("used_memory_functions:{}", fst.memory);
            let scripts_total = st.scripts_memory + fst.memory;
            line!("used_memory_scripts:{scripts_total}");
            line!(
                "used_memory_scripts_human:{}",
                bytes_to_human(scripts_total as u64)
            );
            line!("maxmemory:{maxmemory}");
            line!("maxmemory_human:{}", bytes_to_human(maxmemory));
            line!("maxmemory_policy:{policy}");
            let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
            line!("allocator_frag_ratio:{:.2}", ratio(active, used));
            line!("allocator_frag_bytes:{}", active as i64 - used as i64);
            line!("allocator_rss_ratio:{:.2}", ratio(resident, active));
            line!("allocator_rss_bytes:{}", resident as i64 - active as i64);
            line!("rss_overhead_ratio:{:.2}", ratio(rss, resident));
            line!("rss_overhead_bytes:{}", rss as i64 - resident as i64);
            line!(
                "mem_fragmentation_ratio:{:.2}",
                if used == 0 {
                    0.0
                } else {
                    rss as f64 / used as f64
                }
            );
            line!("mem_fragmentation_bytes:{}", rss as i64 - used as i64);
            line!(
                "mem_not_counted_for_evict:{}",
                sh.mem_not_counted_for_evict()
            );
            // No replication, no cluster bus: nothing held for them.
            line!("mem_replication_backlog:0");
            line!("mem_total_replication_buffers:0");
            line!("mem_clients_slaves:0");
            line!(
                "mem_clients_normal:{}",
                sh.clients
                    .iter()
                    .map(|c| c.qbuf.load(Ordering::Relaxed) as u64)
                    .sum::<u64>()
            );
            line!("mem_cluster_links:0");
            line!("mem_aof_buffer:{}", sh.durability.queued_bytes());
            line!("mem_allocator:{}", crate::MEM_ALLOCATOR);
            line!("active_defrag_running:0");
            line!("lazyfree_pending_objects:{}", ctx.ks.lazyfree.pending());
            line!("lazyfreed_objects:{}", ctx.ks.lazyfree.freed());
        }
        "persistence" => {
            line!("# Persistence");
            let p = sh.persist.as_deref();
            let flag = |b: Option<&std::sync::atomic::AtomicBool>| {
                b.is_some_and(|b| b.load(Ordering::Relaxed)) as u8
            };
            line!("loading:{}", flag(p.map(|p| &p.loading)));
            line!("async_loading:0");
            // No fork, ever: no copy-on-write, no child saving keys.
            line!("current_cow_peak:0");
            line!("current_cow_size:0");
            line!("current_cow_size_age:0");
            line!("current_fork_perc:0.00");
            line!("current_save_keys_processed:0");
            line!("current_save_keys_total:0");
            line!("rdb_changes_since_last_save:{}", ctx.ks.stats.dirty);
            line!(
                "rdb_bgsave_in_progress:{}",
                flag(p.map(|p| &p.rewrite_in_progress))
            );
            line!("rdb_last_save_time:{}", ld(&sh.last_save_unix));
            let ok = |b: bool| if b { "ok" } else { "err" };
            let rewrite_ok = p.is_none_or(|p| p.last_rewrite_ok.load(Ordering::Relaxed));
            line!("rdb_last_bgsave_status:{}", ok(rewrite_ok));
            line!(
                "rdb_last_bgsave_time_sec:{}",
                p.map_or(-1, |p| p.last_rewrite_time_sec.load(Ordering::Relaxed))
            );
            line!("rdb_current_bgsave_time_sec:-1");
            line!(
                "rdb_saves:{}",
                p.map_or(0, |p| p.rewrites.load(Ordering::Relaxed))
            );
            line!("rdb_last_cow_size:0");
            // Replay never expires keys (see ARCHITECTURE.md).
            line!("rdb_last_load_keys_expired:0");
            line!(
                "rdb_last_load_keys_loaded:{}",
                sh.observe.keys_loaded.load(Ordering::Relaxed)
            );
            line!("aof_enabled:{}", p.is_some() as u8);
            line!(
                "aof_rewrite_in_progress:{}",
                flag(p.map(|p| &p.rewrite_in_progress))
            );
            line!(
                "aof_rewrite_scheduled:{}",
                flag(p.map(|p| &p.rewrite_scheduled))
            );
            line!(
                "aof_last_rewrite_time_sec:{}",
                p.map_or(-1, |p| p.last_rewrite_time_sec.load(Ordering::Relaxed))
            );
            line!("aof_current_rewrite_time_sec:-1");
            line!("aof_last_bgrewrite_status:{}", ok(rewrite_ok));
            line!(
                "aof_rewrites:{}",
                p.map_or(0, |p| p.rewrites.load(Ordering::Relaxed))
            );
            line!(
                "aof_last_write_status:{}",
                ok(sh.durability.failure().is_none())
            );
            line!("aof_last_cow_size:0");
            line!("module_fork_in_progress:0");
            line!("module_fork_last_cow_size:0");
            if let Some(p) = p {
                line!("aof_current_size:{}", p.current_size());
                line!("aof_base_size:{}", p.base_size.load(Ordering::Relaxed));
                line!("aof_pending_rewrite:0");
                line!("aof_buffer_length:0");
                line!("aof_pending_bio_fsync:0");
                line!("aof_delayed_fsync:0");
            }
        }
        "stats" => {
            let ks = &ctx.ks;
            line!("# Stats");
            line!(
                "total_connections_received:{}",
                ld(&st.total_connections_received)
            );
            line!(
                "total_commands_processed:{}",
                ld(&st.total_commands_processed)
            );
            let (ops, input, output) = sh.observe.instantaneous();
            line!("instantaneous_ops_per_sec:{ops}");
            line!("total_net_input_bytes:{}", ld(&st.total_net_input_bytes));
            line!("total_net_output_bytes:{}", ld(&st.total_net_output_bytes));
            line!(
                "total_net_repl_input_bytes:{}",
                ld(&st.total_net_repl_input_bytes)
            );
            line!("total_net_repl_output_bytes:0");
            line!("instantaneous_input_kbps:{:.2}", input as f64 / 1024.0);
            line!("instantaneous_output_kbps:{:.2}", output as f64 / 1024.0);
            line!("instantaneous_input_repl_kbps:0.00");
            line!("instantaneous_output_repl_kbps:0.00");
            line!("rejected_connections:{}", ld(&st.rejected_connections));
            let (full, ok, err) = {
                let r = ctx.shared.repl.lock();
                let p = &r.primary;
                (p.sync_full, p.sync_partial_ok, p.sync_partial_err)
            };
            line!("sync_full:{full}");
            line!("sync_partial_ok:{ok}");
            line!("sync_partial_err:{err}");
            line!("expired_keys:{}", ks.stats.expired_keys);
            line!("expired_stale_perc:{:.2}", ks.expire.stale_perc * 100.0);
            line!(
                "expired_time_cap_reached_count:{}",
                ks.expire.time_cap_reached
            );
            line!("expire_cycle_cpu_milliseconds:{}", ks.expire.cpu_ms);
            line!("evicted_keys:{}", ks.evict.evicted_keys);
            line!("evicted_clients:{}", ld(&st.evicted_clients));
            let (current, total) = ks.evict.exceeded_us();
            line!("total_eviction_exceeded_time:{}", total / 1000);
            line!("current_eviction_exceeded_time:{}", current / 1000);
            line!("keyspace_hits:{}", ks.stats.keyspace_hits);
            line!("keyspace_misses:{}", ks.stats.keyspace_misses);
            line!("pubsub_channels:{}", ctx.shared.pubsub.channel_count());
            line!("pubsub_patterns:{}", ctx.shared.pubsub.pattern_count());
            line!(
                "pubsubshard_channels:{}",
                ctx.shared.pubsub.shard_channel_count()
            );
            line!("latest_fork_usec:0");
            line!("total_forks:0");
            line!("migrate_cached_sockets:0");
            line!("slave_expires_tracked_keys:{}", ks.replica_ttl_names());
            // activedefrag is refused (see config.rs): it never ran.
            line!("active_defrag_hits:0");
            line!("active_defrag_misses:0");
            line!("active_defrag_key_hits:0");
            line!("active_defrag_key_misses:0");
            line!("total_active_defrag_time:0");
            line!("current_active_defrag_time:0");
            let (keys, items, prefixes) = ctx.ks.tracking.totals();
            line!("tracking_total_keys:{keys}");
            line!("tracking_total_items:{items}");
            line!("tracking_total_prefixes:{prefixes}");
            line!("unexpected_error_replies:0");
            line!("total_error_replies:{}", ld(&st.total_error_replies));
            line!("dump_payload_sanitizations:0");
            let reads = ld(&sh.observe.reads);
            let writes = ld(&sh.observe.writes);
            line!("total_reads_processed:{reads}");
            line!("total_writes_processed:{writes}");
            // With io-threads > 1 every read and write is done by one of
            // the worker threads.
            let threaded = sh.config.read().io_threads > 1;
            line!(
                "io_threaded_reads_processed:{}",
                if threaded { reads } else { 0 }
            );
            line!(
                "io_threaded_writes_processed:{}",
                if threaded { writes } else { 0 }
            );
            line!(
                "reply_buffer_shrinks:{}",
                ld(&sh.observe.reply_buffer_shrinks)
            );
            line!(
                "reply_buffer_expands:{}",
                ld(&sh.observe.reply_buffer_expands)
            );
        }
        "replication" => {
            line!("# Replication");
            let replica_cfg = crate::server::replication::replica::info_config(sh);
            sh.repl.info(replica_cfg, out);
        }
        "cpu" => {
            let (user, sys) = cpu_times();
            line!("# CPU");
            line!("used_cpu_sys:{sys:.6}");
            line!("used_cpu_user:{user:.6}");
            line!("used_cpu_sys_children:0.000000");
            line!("used_cpu_user_children:0.000000");
            // The thread running this command: the one that runs every
            // command with io-threads 1 (Redis's main thread).
            let (user, sys) = thread_cpu_times();
            line!("used_cpu_sys_main_thread:{sys:.6}");
            line!("used_cpu_user_main_thread:{user:.6}");
        }
        "modules" => {
            line!("# Modules");
        }
        "commandstats" => {
            line!("# Commandstats");
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
                    "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per:.2},rejected_calls={rejected},failed_calls={failed}",
                    e.full_name
                );
            }
        }
        "errorstats" => {
            line!("# Errorstats");
            for (code, n) in sh.observe.error_counts() {
                line!("errorstat_{}:count={n}", String::from_utf8_lossy(&code));
            }
        }
        "latencystats" => {
            line!("# Latencystats");
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
                            "latency_percentiles_usec_{}:{}",
                            e.full_name,
                            super::observe::percentiles_line(h, &percentiles)
                        );
                    }
                }
            }
        }
        "cluster" => {
            line!("# Cluster");
            line!("cluster_enabled:{}", u8::from(sh.cluster.is_some()));
        }
        "keyspace" => {
            line!("# Keyspace");
            for (i, db) in ctx.ks.dbs.iter().enumerate() {
                if db.is_empty() {
                    continue;
                }
                line!(
                    "db{i}:keys={},expires={},avg_ttl=0",
                    db.len(),
                    db.expires_len()
                );
            }
        }
        _ => {}
    }
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// INFO [section [section ...]]
fn info(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
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

// ----------------------------------------------------------------- CONFIG

/// CONFIG GET parameter [parameter ...]
fn config_get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut pairs: Vec<(&'static str, String)> = Vec::new();
    {
        let c = ctx.shared.config.read();
        for pat in &args[2..] {
            for (name, value) in c.get_matching(pat) {
                if !pairs.iter().any(|(n, _)| *n == name) {
                    pairs.push((name, value));
                }
            }
        }
    }
    ctx.out.map(pairs.len());
    for (n, v) in pairs {
        ctx.out.bulk(n.as_bytes());
        ctx.out.bulk(v.as_bytes());
    }
    Ok(())
}

/// CONFIG SET parameter value [parameter value ...]
///
/// All or nothing. `requirepass` sets the default user's password (Redis's
/// `ACLUpdateDefaultUserPassword`);
/// `hz`, `maxclients`, `timeout` and the limits are read live.
fn config_set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if !args.len().is_multiple_of(2) {
        return Err(CmdError::syntax());
    }
    let pairs: Vec<(String, String)> = args[2..]
        .chunks_exact(2)
        .map(|p| {
            (
                String::from_utf8_lossy(&p[0]).into_owned(),
                String::from_utf8_lossy(&p[1]).into_owned(),
            )
        })
        .collect();
    {
        let mut cfg = ctx.shared.config.write();
        let before = cfg.clone();
        cfg.set_runtime_from(&pairs, ctx.client.handle.addr.is_local())
            .map_err(CmdError::new)?;
        // Applying: a failure restores every value set by this call (Redis's
        // restoreBackupConfig), so the call is all or nothing.
        if let Err((name, why)) = apply_config(ctx.shared, &cfg, &pairs, &before.dir) {
            *cfg = before;
            if pairs.iter().any(|(n, _)| is_oom_param(n)) {
                // Logged inside; the old score is what Redis restores too.
                let _ = crate::config::oom::apply(&cfg);
            }
            return Err(CmdError::new(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"
            )));
        }
    }
    ctx.shared.config_changed();
    if pairs
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("requirepass"))
    {
        super::acl::apply_requirepass(ctx.shared);
    }
    ctx.shared.apply_notify_config(ctx.ks);
    ctx.shared.apply_evict_config(ctx.ks);
    ctx.out.ok();
    Ok(())
}

/// Applies what CONFIG SET changed that lives outside `Config` and can
/// fail (the TLS context). Err: the argument to name and the reason.
fn apply_config(
    shared: &crate::server::Shared,
    cfg: &crate::config::Config,
    pairs: &[(String, String)],
    old_dir: &str,
) -> Result<(), (String, String)> {
    use crate::server::tls;
    // `dir` (settable with `enable-protected-configs`): Redis chdirs into
    // it. redlog's WAL and stream logs stay open in their directory, so
    // only the directory it already uses is accepted; another is refused
    // rather than shown while the data stays where it was.
    if let Some((name, value)) = pairs.iter().find(|(n, _)| n.eq_ignore_ascii_case("dir")) {
        let meta = std::fs::metadata(value).map_err(|e| {
            let s = e.to_string();
            let s = s
                .find(" (os error")
                .map_or(s.clone(), |i| s[..i].to_string());
            (name.clone(), s)
        })?;
        if !meta.is_dir() {
            return Err((name.clone(), "Not a directory".into()));
        }
        let same = |a: &str, b: &str| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if !same(value, old_dir) {
            return Err((
                name.clone(),
                "redlog cannot move its data directory while running: set dir in the config file and restart".into(),
            ));
        }
    }
    if pairs
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("oom-score-adj-values"))
    {
        crate::config::oom::warn_if_unordered(cfg);
    }
    if let Some((name, _)) = pairs.iter().find(|(n, _)| is_oom_param(n)) {
        if crate::config::oom::apply(cfg).is_err() {
            return Err((
                name.clone(),
                "Failed to set current oom_score_adj. Check server logs.".into(),
            ));
        }
    }
    let tls_arg = pairs
        .iter()
        .find(|(n, _)| tls::TLS_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(n)));
    if let Some((name, _)) = tls_arg {
        if tls::enabled(cfg) {
            if let Err(e) = shared.tls.configure(cfg) {
                tracing::warn!("{e}");
                tracing::warn!("Failed applying new configuration. Possibly related to new {name} setting. Restoring previous settings.");
                return Err((
                    name.clone(),
                    "Unable to update TLS configuration. Check server logs.".into(),
                ));
            }
        }
    }
    Ok(())
}

fn is_oom_param(name: &str) -> bool {
    name.eq_ignore_ascii_case("oom-score-adj") || name.eq_ignore_ascii_case("oom-score-adj-values")
}

/// CONFIG RESETSTAT
fn config_resetstat(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let st = &ctx.shared.stats;
    for a in [
        &st.total_connections_received,
        &st.total_commands_processed,
        &st.rejected_connections,
        &st.total_net_input_bytes,
        &st.total_net_repl_input_bytes,
        &st.total_net_output_bytes,
        &st.total_error_replies,
    ] {
        a.store(0, Ordering::Relaxed);
    }
    for e in &table().entries {
        for a in [
            &e.stat.calls,
            &e.stat.usec,
            &e.stat.rejected,
            &e.stat.failed,
        ] {
            a.store(0, Ordering::Relaxed);
        }
        *e.stat.histogram.lock() = None;
    }
    ctx.shared.observe.reset_stats();
    {
        let mut r = ctx.shared.repl.lock();
        r.primary.sync_full = 0;
        r.primary.sync_partial_ok = 0;
        r.primary.sync_partial_err = 0;
    }
    let ks = &mut ctx.ks;
    ks.stats.expired_keys = 0;
    ks.stats.keyspace_hits = 0;
    ks.stats.keyspace_misses = 0;
    ks.expire.stale_perc = 0.0;
    ks.expire.time_cap_reached = 0;
    ks.expire.cpu_ms = 0;
    ks.evict.reset_stats();
    ctx.out.ok();
    Ok(())
}

/// CONFIG REWRITE
///
/// Rewrites the config file the server started with (see
/// `config::rewrite`); the file is replaced atomically.
fn config_rewrite(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let (path, text) = {
        let c = ctx.shared.config.read();
        let Some(path) = c.config_file.clone() else {
            return Err(CmdError::new(
                "ERR The server is running without a config file",
            ));
        };
        let old = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                tracing::warn!("CONFIG REWRITE failed: {e}");
                return Err(CmdError::new(format!("ERR Rewriting config file: {e}")));
            }
        };
        let dir = std::fs::canonicalize(&c.dir)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| c.dir.clone());
        (path, c.rewrite_text(&old, &dir))
    };
    match crate::config::overwrite_file(&path, &text) {
        Ok(()) => {
            tracing::info!("CONFIG REWRITE executed with success.");
            ctx.out.ok();
            Ok(())
        }
        Err(e) => {
            tracing::warn!("CONFIG REWRITE failed: {e}");
            Err(CmdError::new(format!("ERR Rewriting config file: {e}")))
        }
    }
}

/// CONFIG HELP
fn config_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    super::args::help_reply(
        ctx,
        "CONFIG",
        &[
            "GET <pattern>",
            "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>",
            "    Set the configuration <directive> to <value>.",
            "RESETSTAT",
            "    Reset statistics reported by the INFO command.",
            "REWRITE",
            "    Rewrite the configuration file.",
        ],
    );
    Ok(())
}

// ------------------------------------------------------- keyspace / admin

/// DBSIZE
fn dbsize(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let n = ctx.ks.dbs[ctx.client.db].len();
    ctx.out.int(n as i64);
    Ok(())
}

/// The optional ASYNC / SYNC of FLUSHDB and FLUSHALL. Both free memory
/// synchronously here; the flag is validated as Redis does.
/// FLUSHALL / FLUSHDB's mode (Redis's `getFlushCommandFlags`): true for
/// ASYNC, or for no mode under `lazyfree-lazy-user-flush`.
fn flush_mode(ctx: &Ctx, args: &[Bytes]) -> Result<bool, CmdError> {
    match args.len() {
        1 => Ok(ctx.ks.lazyfree.user_flush()),
        2 if is_kw(&args[1], "async") => Ok(true),
        2 if is_kw(&args[1], "sync") => Ok(false),
        _ => Err(CmdError::syntax()),
    }
}

/// Empties one database: watchers of its keys are signalled by `Db::clear`.
/// Returns the number of keys removed (added to the dirty counter, as Redis).
fn empty_db(db: &mut Db, lazy: bool) -> u64 {
    let n = db.len() as u64;
    db.clear_as(lazy);
    n
}

/// FLUSHDB [ASYNC | SYNC]
fn flushdb(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let lazy = flush_mode(ctx, args)?;
    let db = ctx.client.db;
    let removed = empty_db(&mut ctx.ks.dbs[db], lazy);
    ctx.ks.stats.dirty += removed;
    ctx.out.ok();
    Ok(())
}

/// FLUSHALL [ASYNC | SYNC]
fn flushall(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let lazy = flush_mode(ctx, args)?;
    let removed = ctx.ks.flush_all_as(lazy);
    ctx.ks.stats.dirty += removed;
    ctx.out.ok();
    Ok(())
}

/// TIME
fn time(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let us = now_us();
    ctx.out.array(2);
    ctx.out.bulk_int((us / 1_000_000) as i64);
    ctx.out.bulk_int((us % 1_000_000) as i64);
    Ok(())
}

/// LASTSAVE
fn lastsave(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let t = ctx.shared.last_save_unix.load(Ordering::Relaxed);
    ctx.out.int(t as i64);
    Ok(())
}

/// SHUTDOWN's options.
pub struct ShutdownFlags {
    pub nosave: bool,
    pub save: bool,
    pub force: bool,
}

/// SHUTDOWN's option parsing and its errors, in Redis's order (also used
/// while a script is busy, where only NOSAVE may go on).
pub fn shutdown_flags(args: &[Bytes]) -> Result<ShutdownFlags, CmdError> {
    let (mut nosave, mut save, mut now, mut force, mut abort) = (false, false, false, false, false);
    for a in &args[1..] {
        if is_kw(a, "nosave") {
            nosave = true;
        } else if is_kw(a, "save") {
            save = true;
        } else if is_kw(a, "now") {
            now = true;
        } else if is_kw(a, "force") {
            force = true;
        } else if is_kw(a, "abort") {
            abort = true;
        } else {
            return Err(CmdError::syntax());
        }
    }
    if (abort && (nosave || save || now || force)) || (nosave && save) {
        return Err(CmdError::syntax());
    }
    if abort {
        return Err(CmdError::new("ERR No shutdown in progress."));
    }
    Ok(ShutdownFlags {
        nosave,
        save,
        force,
    })
}

/// SHUTDOWN [NOSAVE | SAVE] [NOW] [FORCE] [ABORT]
///
/// No reply on success: the server stops and every connection closes.
/// Nothing is persisted yet, so SAVE (an explicit request to save first)
/// fails as a failed save does in Redis, and the server keeps running.
/// A shutdown is never "in progress" (there is no save to wait for), so
/// ABORT always errors.
fn shutdown(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let ShutdownFlags { save, force, .. } = shutdown_flags(args)?;
    if save && !force && ctx.shared.persist.is_none() {
        tracing::warn!("SHUTDOWN SAVE refused: persistence is disabled (appendonly no)");
        return Err(CmdError::new("ERR Errors trying to SHUTDOWN. Check logs."));
    }
    if let Some(text) = ctx.shared.durability.failure() {
        if !force {
            tracing::warn!(
                "SHUTDOWN refused: the WAL cannot be written ({text}); use SHUTDOWN FORCE"
            );
            return Err(CmdError::new("ERR Errors trying to SHUTDOWN. Check logs."));
        }
    }
    tracing::warn!(
        "User requested shutdown (client id {}); the WAL is fsynced before exit",
        ctx.client.id
    );
    ctx.shared.request_shutdown();
    ctx.client.close_after_reply = true;
    Ok(())
}

/// SWAPDB index1 index2
fn swapdb(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.shared.cluster.is_some() {
        return Err(CmdError::new("ERR SWAPDB is not allowed in cluster mode"));
    }
    let parse = |a: &[u8], msg: &'static str| {
        crate::protocol::parse::parse_i64(a)
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or_else(|| CmdError::new(msg))
    };
    let a = parse(&args[1], "ERR invalid first DB index")?;
    let b = parse(&args[2], "ERR invalid second DB index")?;
    let range = 0..DATABASES as i64;
    if !range.contains(&a) || !range.contains(&b) {
        return Err(CmdError::new("ERR DB index is out of range"));
    }
    ctx.ks.swap_db(a as usize, b as usize);
    ctx.out.ok();
    Ok(())
}
