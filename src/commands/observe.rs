//! Observability commands: MONITOR, SLOWLOG, LATENCY (Redis 7.0's
//! `replication.c` monitorCommand, `slowlog.c`, `latency.c`). The state
//! they read is `node::observe`; what feeds it is
//! `after_call` (below) and the latency samples taken around
//! the expiry and eviction cycles, WAL writes and fsyncs, compaction and
//! LOGPARSE INGEST.

use super::{flags, table, CmdError, CmdResult, Ctx, Entry, Handler};
use crate::node::observe::{record_latency, redacted_args, LatencyHistogram, TimeSeries};
use crate::protocol::parse::parse_i64;
use bytes::Bytes;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("monitor", monitor),
    ("slowlog|reset", slowlog_reset),
    ("slowlog|help", slowlog_help),
    ("slowlog|get", slowlog_get),
    ("slowlog|len", slowlog_len),
    ("latency|latest", latency_latest),
    ("latency|help", latency_help),
    ("latency|reset", latency_reset),
    ("latency|doctor", latency_doctor),
    ("latency|history", latency_history),
    ("latency|graph", latency_graph),
    ("latency|histogram", latency_histogram),
];

// ---------------------------------------------------------------- MONITOR

/// MONITOR
///
/// From then on the connection receives one line per command run by any
/// client (`feed_monitors`, below); a second MONITOR replies
/// nothing, as in Redis.
fn monitor(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if ctx.client.in_exec {
        // Redis's CLIENT_DENY_BLOCKING: a client that expects one reply
        // per command.
        return Err(CmdError::new(
            "ERR MONITOR isn't allowed for DENY BLOCKING client",
        ));
    }
    if ctx.client.monitor {
        return Ok(());
    }
    let mailbox = ctx.client.pubsub.mailbox();
    ctx.shared.observe.add_monitor(ctx.client.id, mailbox);
    ctx.client.monitor = true;
    ctx.client.handle.meta.lock().monitor = true;
    ctx.out.ok();
    Ok(())
}

// ---------------------------------------------------------------- SLOWLOG

/// SLOWLOG GET [count]
fn slowlog_get(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(subcommand_syntax(args));
    }
    let log = ctx.shared.observe.slowlog.lock();
    let mut count = 10usize;
    if let Some(a) = args.get(2) {
        const MSG: &str = "ERR count should be greater than or equal to -1";
        match parse_i64(a) {
            Some(-1) => count = log.entries.len(),
            Some(n) if n >= 0 => count = usize::try_from(n).unwrap_or(usize::MAX),
            _ => return Err(CmdError::new(MSG)),
        }
    }
    let n = count.min(log.entries.len());
    ctx.out.array(n);
    for e in log.entries.iter().take(n) {
        ctx.out.array(6);
        ctx.out.int(e.id as i64);
        ctx.out.int(e.time_s);
        ctx.out.int(e.duration_us as i64);
        ctx.out.array(e.args.len());
        for a in &e.args {
            ctx.out.bulk(a);
        }
        ctx.out.bulk(e.peer.as_bytes());
        ctx.out.bulk(&e.name);
    }
    Ok(())
}

/// SLOWLOG LEN
fn slowlog_len(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let n = ctx.shared.observe.slowlog.lock().entries.len();
    ctx.out.int(n as i64);
    Ok(())
}

/// SLOWLOG RESET
fn slowlog_reset(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.shared.observe.slowlog.lock().reset();
    ctx.out.ok();
    Ok(())
}

/// SLOWLOG HELP
fn slowlog_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    super::args::help_reply(
        ctx,
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
    Ok(())
}

/// Redis's `addReplySubcommandSyntaxError`.
fn subcommand_syntax(args: &[Bytes]) -> CmdError {
    let mut m = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
    m.extend_from_slice(&args[1][..args[1].len().min(128)]);
    m.extend_from_slice(b"'. Try ");
    m.extend_from_slice(&args[0].to_ascii_uppercase());
    m.extend_from_slice(b" HELP.");
    CmdError::from_bytes(m)
}

// ---------------------------------------------------------------- LATENCY

fn find_event<'a>(
    events: &'a [(String, TimeSeries)],
    name: &[u8],
) -> Option<&'a (String, TimeSeries)> {
    events.iter().find(|(n, _)| n.as_bytes() == name)
}

/// LATENCY LATEST
fn latency_latest(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let events = ctx.shared.observe.latency.events();
    ctx.out.array(events.len());
    for (name, ts) in &events {
        let last = ts.last();
        ctx.out.array(4);
        ctx.out.bulk(name.as_bytes());
        ctx.out.int(last.time_s);
        ctx.out.int(last.latency_ms as i64);
        ctx.out.int(ts.max_ms as i64);
    }
    Ok(())
}

/// LATENCY HISTORY event
fn latency_history(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let events = ctx.shared.observe.latency.events();
    match find_event(&events, &args[2]) {
        None => ctx.out.array(0),
        Some((_, ts)) => {
            let samples: Vec<_> = ts.in_order().collect();
            ctx.out.array(samples.len());
            for s in samples {
                ctx.out.array(2);
                ctx.out.int(s.time_s);
                ctx.out.int(s.latency_ms as i64);
            }
        }
    }
    Ok(())
}

/// LATENCY RESET [event ...]
fn latency_reset(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let lat = &ctx.shared.observe.latency;
    let n = if args.len() == 2 {
        lat.reset(None)
    } else {
        args[2..].iter().map(|e| lat.reset(Some(e))).sum()
    };
    ctx.out.int(n as i64);
    Ok(())
}

/// LATENCY HELP
fn latency_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    super::args::help_reply(
        ctx,
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
    Ok(())
}

/// LATENCY GRAPH event
fn latency_graph(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let events = ctx.shared.observe.latency.events();
    let Some((name, ts)) = find_event(&events, &args[2]) else {
        let mut m = b"ERR No samples available for event '".to_vec();
        m.extend_from_slice(&args[2]);
        m.extend_from_slice(b"'");
        return Err(CmdError::from_bytes(m));
    };
    let graph = sparkline_graph(name, ts, unix_s());
    ctx.out.verbatim(graph.as_bytes());
    Ok(())
}

fn unix_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Redis's `latencyCommandGenSparkeline` with `sparklineRender` (80
/// columns, 4 rows, filled): a header, a rule, the bars, then each
/// sample's age written vertically under its column.
fn sparkline_graph(event: &str, ts: &TimeSeries, now_s: i64) -> String {
    const COLS: usize = 80;
    const ROWS: usize = 4;
    let samples: Vec<_> = ts.in_order().collect();
    let (mut min, mut max) = (0u64, 0u64);
    for (i, s) in samples.iter().enumerate() {
        if i == 0 {
            (min, max) = (s.latency_ms, s.latency_ms);
        } else {
            min = min.min(s.latency_ms);
            max = max.max(s.latency_ms);
        }
    }
    let mut g = String::new();
    let _ = writeln!(
        g,
        "{event} - high {max} ms, low {min} ms (all time high {} ms)",
        ts.max_ms
    );
    g.push_str(&"-".repeat(COLS));
    g.push('\n');
    let labels: Vec<String> = samples
        .iter()
        .map(|s| {
            let elapsed = now_s - s.time_s;
            if elapsed < 60 {
                format!("{elapsed}s")
            } else if elapsed < 3600 {
                format!("{}m", elapsed / 60)
            } else if elapsed < 86400 {
                format!("{}h", elapsed / 3600)
            } else {
                format!("{}d", elapsed / 86400)
            }
        })
        .collect();
    // Redis's sparklineRender: the samples in chunks of `COLS` columns.
    let mut start = 0;
    while start < samples.len() {
        let len = (samples.len() - start).min(COLS);
        if start != 0 {
            g.push('\n');
        }
        render_range(
            &mut g,
            &samples[start..start + len],
            &labels[start..start + len],
            min,
            max,
            ROWS,
        );
        start += len;
    }
    g
}

/// Redis's `sparklineRenderRange` with SPARKLINE_FILL: `rows` rows of
/// bars, one blank row, then the labels written downwards.
fn render_range(
    g: &mut String,
    samples: &[crate::node::observe::Sample],
    labels: &[String],
    min: u64,
    max: u64,
    rows: usize,
) {
    const CHARSET_FILL: &[u8] = b"_o#";
    const LABEL_MARGIN_TOP: usize = 1;
    let charset_len = CHARSET_FILL.len() as i64;
    let mut relmax = max.saturating_sub(min) as f64;
    if relmax == 0.0 {
        relmax = 1.0;
    }
    let steps = charset_len * rows as i64;
    let len = samples.len();
    let mut row = 0usize;
    loop {
        let mut more = false;
        let mut chars = vec![b' '; len];
        for (j, s) in samples.iter().enumerate() {
            let relval = s.latency_ms.saturating_sub(min) as f64;
            let mut step = (((relval * steps as f64) as i64) as f64 / relmax) as i64;
            step = step.clamp(0, steps - 1);
            if row < rows {
                let charidx = step - (rows - row - 1) as i64 * charset_len;
                more = true;
                if (0..charset_len).contains(&charidx) {
                    chars[j] = CHARSET_FILL[charidx as usize];
                } else if charidx >= charset_len {
                    chars[j] = b'|';
                }
            } else {
                if row - rows < LABEL_MARGIN_TOP {
                    more = true;
                    break;
                }
                let label_char = row - rows - LABEL_MARGIN_TOP;
                if let Some(&c) = labels[j].as_bytes().get(label_char) {
                    more = true;
                    chars[j] = c;
                }
            }
        }
        if !more {
            break;
        }
        row += 1;
        g.push_str(&String::from_utf8_lossy(&chars));
        g.push('\n');
    }
}

/// LATENCY DOCTOR
fn latency_doctor(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let (slower, hz, always) = {
        let c = ctx.shared.config.read();
        (
            c.get("slowlog-log-slower-than")
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0),
            c.hz,
            c.appendfsync == crate::config::Appendfsync::Always,
        )
    };
    let lat = &ctx.shared.observe.latency;
    let report = doctor_report(
        &lat.events(),
        lat.threshold_ms.load(Ordering::Relaxed),
        slower,
        hz,
        always,
        unix_s(),
    );
    ctx.out.verbatim(report.as_bytes());
    Ok(())
}

/// Redis's `createLatencyReport` for the events redlog has, with its
/// texts. redlog's own events (`wal-fsync`, `stream-fsync`, `compaction`,
/// `logparse-ingest`) get the advice of their Redis counterparts.
fn doctor_report(
    events: &[(String, TimeSeries)],
    threshold_ms: u64,
    slower_than_us: i64,
    hz: u32,
    fsync_always: bool,
    now_s: i64,
) -> String {
    let mut r = String::new();
    if events.is_empty() && threshold_ms == 0 {
        r.push_str("I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n");
        return r;
    }
    #[derive(Default)]
    struct Advice {
        slowlog_enabled: bool,
        slowlog_tuning: bool,
        slowlog_inspect: bool,
        scheduler: bool,
        local_disk: bool,
        ssd: bool,
        data_writeback: bool,
        disk_contention: bool,
        relax_fsync: bool,
        hz: bool,
        large_objects: bool,
        mass_eviction: bool,
    }
    let mut a = Advice::default();
    let mut advices = 0;
    for (i, (event, ts)) in events.iter().enumerate() {
        if i == 0 {
            r.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
        }
        let samples: Vec<_> = ts.in_order().collect();
        let n = samples.len() as u64;
        let avg = samples
            .iter()
            .map(|s| s.latency_ms)
            .sum::<u64>()
            .checked_div(n)
            .unwrap_or(0);
        let mad = samples
            .iter()
            .map(|s| (avg as i64 - s.latency_ms as i64).unsigned_abs())
            .sum::<u64>()
            .checked_div(n)
            .unwrap_or(0);
        // Seconds since the oldest sample (at least 1), Redis's `period`.
        let period = match samples.iter().map(|s| s.time_s).min() {
            Some(oldest) if now_s != oldest => now_s - oldest,
            _ => 1,
        };
        let _ = write!(
            r,
            "{}. {}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). Worst all time event {}ms.",
            i + 1,
            event,
            n,
            avg,
            mad,
            if n == 0 { 0.0 } else { period as f64 / n as f64 },
            ts.max_ms
        );
        match event.as_str() {
            "command" => {
                if slower_than_us < 0 {
                    a.slowlog_enabled = true;
                    advices += 1;
                } else if slower_than_us / 1000 > threshold_ms as i64 {
                    a.slowlog_tuning = true;
                    advices += 1;
                }
                a.slowlog_inspect = true;
                a.large_objects = true;
                advices += 2;
            }
            "fast-command" => {
                a.scheduler = true;
                advices += 1;
            }
            "aof-write" | "wal-fsync" | "stream-fsync" => {
                a.local_disk = true;
                a.data_writeback = true;
                a.ssd = true;
                advices += 3;
            }
            "aof-fsync-always" => {
                a.relax_fsync = true;
                advices += 1;
            }
            "compaction" => {
                a.disk_contention = true;
                a.local_disk = true;
                advices += 2;
            }
            "expire-cycle" => {
                a.hz = true;
                a.large_objects = true;
                advices += 2;
            }
            "eviction-cycle" => {
                a.mass_eviction = true;
                advices += 1;
            }
            _ => {}
        }
        r.push('\n');
    }
    if events.is_empty() && advices == 0 {
        r.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
    } else if !events.is_empty() && advices == 0 {
        r.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
    } else {
        r.push_str("\nI have a few advices for you:\n\n");
        if a.slowlog_enabled {
            let _ = writeln!(r, "- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.", threshold_ms * 1000);
        }
        if a.slowlog_tuning {
            let _ = writeln!(r, "- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.", threshold_ms * 1000);
        }
        if a.slowlog_inspect {
            r.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
        }
        if a.scheduler {
            r.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n");
        }
        if a.local_disk {
            r.push_str("- It is strongly advised to use local disks for persistence, especially if you are using AOF. Remote disks provided by platform-as-a-service providers are known to be slow.\n");
        }
        if a.ssd {
            r.push_str("- SSD disks are able to reduce fsync latency, and total time needed for snapshotting and AOF log rewriting (resulting in smaller memory usage and smaller final AOF rewrite buffer flushes). With extremely high write load SSD disks can be a good option. However Redis should perform reasonably with high load using normal disks. Use this advice as a last resort.\n");
        }
        if a.data_writeback {
            r.push_str("- Mounting ext3/4 filesystems with data=writeback can provide a performance boost compared to data=ordered, however this mode of operation provides less guarantees, and sometimes it can happen that after a hard crash the AOF file will have a half-written command at the end and will require to be repaired before Redis restarts.\n");
        }
        if a.disk_contention {
            r.push_str("- Try to lower the disk contention. This is often caused by other disk intensive processes running in the same computer (including other Redis instances).\n");
        }
        if a.relax_fsync && fsync_always {
            r.push_str("- Your fsync policy is set to 'always'. It is very hard to get good performances with such a setup, if possible try to relax the fsync policy to 'onesec'.\n");
        }
        if a.hz && hz < 100 {
            r.push_str("- In order to make the Redis keys expiring process more incremental, try to set the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n");
        }
        if a.large_objects {
            r.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
        }
        if a.mass_eviction {
            r.push_str("- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation of large objects via sets or sorted sets intersections, STORE option of SORT, Redis Cluster large keys migrations (RESTORE command), may create sudden memory pressure forcing the server to block trying to evict keys. \n");
        }
    }
    r
}

/// LATENCY HISTOGRAM [command ...]
///
/// A map from command name to `calls` and `histogram_usec` (cumulative
/// counts at power-of-two bucket bounds from 1024 ns, Redis's
/// `fillCommandCDF`). Unknown names and commands never called are left
/// out.
fn latency_histogram(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let t = table();
    let mut picked: Vec<usize> = Vec::new();
    if args.len() == 2 {
        picked.extend(0..t.entries.len());
    } else {
        for a in &args[2..] {
            let name = String::from_utf8_lossy(a).to_ascii_lowercase();
            let idx = match name.split_once('|') {
                Some((top, sub)) => t
                    .lookup(top.as_bytes())
                    .and_then(|i| t.lookup_sub(i, sub.as_bytes())),
                None => t.lookup(a),
            };
            if let Some(i) = idx {
                if !picked.contains(&i) {
                    picked.push(i);
                }
            }
        }
    }
    let mut found: Vec<(&str, LatencyHistogram)> = Vec::new();
    for i in picked {
        let e = &t.entries[i];
        if let Some(h) = e.stat.histogram.lock().as_ref() {
            if !h.is_empty() {
                found.push((&e.full_name, (**h).clone()));
            }
        }
    }
    ctx.out.map(found.len());
    for (name, h) in found {
        ctx.out.bulk(name.as_bytes());
        ctx.out.map(2);
        ctx.out.bulk(b"calls");
        ctx.out.int(h.len() as i64);
        ctx.out.bulk(b"histogram_usec");
        let buckets = cdf(&h);
        ctx.out.map(buckets.len());
        for (us, count) in buckets {
            ctx.out.int(us as i64);
            ctx.out.int(count as i64);
        }
    }
    Ok(())
}

/// The cumulative distribution Redis's `fillCommandCDF` replies: at each
/// reporting level 1024 ns * 2^k, the level's highest equivalent value in
/// µs and the count of samples up to it, when that count grew.
pub fn cdf(h: &LatencyHistogram) -> Vec<(u64, u64)> {
    let total = h.len();
    let mut v = Vec::new();
    let mut level: u64 = 1024;
    let mut previous = 0;
    while previous < total {
        let cumulative = h.count_between(0, level);
        if cumulative > previous {
            v.push((h.highest_equivalent(level) / 1000, cumulative));
        }
        previous = cumulative;
        if level >= crate::node::observe::HISTOGRAM_MAX_NS {
            break;
        }
        level = level.saturating_mul(2);
    }
    v
}

/// INFO latencystats' value for a command: `p50=...,p99=...` with
/// Redis's `%f`-then-trimmed percentile names and `%.3f` µs values.
pub fn percentiles_line(h: &LatencyHistogram, percentiles: &[f64]) -> String {
    let mut s = String::new();
    for (i, p) in percentiles.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let name = format!("{p:.6}");
        let name = name.trim_end_matches('0').trim_end_matches('.');
        let v = h.value_at_percentile(*p) as f64 / 1000.0;
        let _ = write!(s, "p{name}={v:.3}");
    }
    s
}

/// What a call leaves behind besides its reply and effects (Redis's
/// `call` after `c->cmd->proc`): a latency sample (`command` /
/// `fast-command`), a slow log entry, the MONITOR line, the histogram.
pub fn after_call(ctx: &Ctx, e: &Entry, args: &[Bytes], usec: u64) {
    let o = &ctx.shared.observe;
    let cmd = e.cmd;
    if o.latency.threshold_ms.load(Ordering::Relaxed) != 0 {
        let event = if cmd.has(flags::FAST) {
            "fast-command"
        } else {
            "command"
        };
        o.latency.sample(event, usec / 1000);
    }
    // A command that blocked is logged when it is served (Redis's
    // CLIENT_BLOCKED test), as it is counted.
    let blocked = ctx.client.block.is_some();
    let slower = o.slower_than_us.load(Ordering::Relaxed);
    if slower >= 0 && usec >= slower as u64 && !blocked && !cmd.has(flags::SKIP_SLOWLOG) {
        let max_len = o.slowlog_max_len.load(Ordering::Relaxed);
        if max_len > 0 {
            let redact = redacted_args(&e.full_name, args);
            let shown: Vec<Bytes> = if redact.is_empty() {
                args.to_vec()
            } else {
                args.iter()
                    .enumerate()
                    .map(|(i, a)| {
                        if redact.contains(&i) {
                            Bytes::from_static(b"(redacted)")
                        } else {
                            a.clone()
                        }
                    })
                    .collect()
            };
            let (peer, name) = if ctx.client.in_script {
                // The script's own client has no connection.
                ("?:0".to_string(), Bytes::new())
            } else {
                let name = ctx
                    .client
                    .handle
                    .meta
                    .lock()
                    .name
                    .clone()
                    .unwrap_or_default();
                (ctx.client.handle.addr.to_string(), name)
            };
            o.slowlog.lock().push(&shown, usec, peer, name, max_len);
        }
    }
    if o.has_monitors() && !cmd.has(flags::SKIP_MONITOR | flags::ADMIN) {
        feed_monitors(ctx, e, args);
    }
    if o.tracking.load(Ordering::Relaxed) && !blocked {
        record_latency(&e.stat.histogram, usec);
    }
}

/// Sends the command to the MONITOR clients, after its redaction.
pub fn feed_monitors(ctx: &Ctx, e: &Entry, args: &[Bytes]) {
    let who = if ctx.client.in_script {
        "lua".to_string()
    } else {
        ctx.client.handle.addr.to_string()
    };
    let redact = redacted_args(&e.full_name, args);
    ctx.shared
        .observe
        .feed_monitors(ctx.client.db, &who, args, &redact);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values_us: &[u64]) -> LatencyHistogram {
        let mut h = LatencyHistogram::new_with_bounds(1, 1_000_000_000, 2).unwrap();
        for v in values_us {
            h.saturating_record((v * 1000).max(1));
        }
        h
    }

    #[test]
    fn cdf_levels_as_redis() {
        // Redis 7.0 replies 1, 2, 4, 8, 16, 33, 66, 132 ... for its levels.
        let h = hist(&[0, 1, 3, 20, 100]);
        let v = cdf(&h);
        assert_eq!(v, vec![(1, 2), (4, 3), (33, 4), (132, 5)]);
    }

    #[test]
    fn percentile_names() {
        let h = hist(&[10]);
        let s = percentiles_line(&h, &[50.0, 99.0, 99.9]);
        assert!(s.starts_with("p50=10.0"), "{s}");
        assert!(s.contains(",p99.9="), "{s}");
    }

    #[test]
    fn doctor_disabled_text() {
        let r = doctor_report(&[], 0, 10000, 10, false, 0);
        assert!(r.starts_with("I'm sorry, Dave"));
        let r = doctor_report(&[], 5, 10000, 10, false, 0);
        assert!(r.starts_with("Dave, no latency spike"));
    }
}
