//! Observability state: the slow log (SLOWLOG), the latency monitor
//! (LATENCY), error statistics (INFO errorstats), the instantaneous
//! metrics (INFO `instantaneous_*`) and MONITOR's feed. The per-command
//! latency histograms live beside the other per-command counters
//! (`commands::CmdStat`); `commands::observe::after_call` is the one
//! place a call's duration is accounted for.
//!
//! Redis keeps these in `server.slowlog`, `server.latency_events`,
//! `server.errors` and `server.monitors`; redlog keeps them in one
//! `Observe` per server (`Shared::observe`), each behind its own lock, so
//! a thread that measured something (the fsync thread, a WAL writer) can
//! record it without the keyspace lock.
//!
//! Hot path: a call whose duration is under every threshold, with no
//! monitor attached, costs four relaxed atomic loads plus the histogram
//! record when `latency-tracking` is on.

use super::pubsub::Mailbox;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Redis's SLOWLOG_ENTRY_MAX_ARGC: arguments kept per entry (the last
/// one says how many more there were).
pub const SLOWLOG_ENTRY_MAX_ARGC: usize = 32;
/// Redis's SLOWLOG_ENTRY_MAX_STRING: bytes kept of each argument.
pub const SLOWLOG_ENTRY_MAX_STRING: usize = 128;
/// Redis's LATENCY_TS_LEN: samples kept per latency event (one per second
/// at most, so 160 seconds of spikes).
pub const LATENCY_TS_LEN: usize = 160;
/// Distinct error codes INFO errorstats counts: a script can make up any
/// code (`redis.error_reply`), so the table has a bound; errors with a new
/// code past it are counted in `total_error_replies` only.
pub const ERRORSTATS_MAX: usize = 128;
/// Redis's STATS_METRIC_SAMPLES: the instantaneous metrics average this
/// many samples taken every 100 ms (Redis's `trackInstantaneousMetric`).
const METRIC_SAMPLES: usize = 16;

/// Redis's LATENCY_HISTOGRAM_MIN_VALUE / MAX_VALUE / PRECISION: 1 ns to
/// 1 s, 2 significant digits (durations past 1 s count as 1 s).
pub const HISTOGRAM_MIN_NS: u64 = 1;
pub const HISTOGRAM_MAX_NS: u64 = 1_000_000_000;
pub const HISTOGRAM_SIGFIG: u8 = 2;

/// A command's call durations in nanoseconds.
pub type LatencyHistogram = hdrhistogram::Histogram<u64>;

/// Records one call of `us` microseconds (Redis's
/// `updateCommandLatencyHistogram`, which records `duration*1000`).
/// `histogram` is the command's (`commands::CmdStat::histogram`).
pub fn record_latency(histogram: &Mutex<Option<Box<LatencyHistogram>>>, us: u64) {
    let ns = us
        .saturating_mul(1000)
        .clamp(HISTOGRAM_MIN_NS, HISTOGRAM_MAX_NS);
    let mut h = histogram.lock();
    if h.is_none() {
        match LatencyHistogram::new_with_bounds(
            HISTOGRAM_MIN_NS,
            HISTOGRAM_MAX_NS,
            HISTOGRAM_SIGFIG,
        ) {
            Ok(n) => *h = Some(Box::new(n)),
            // Cannot happen with these constant bounds.
            Err(_) => return,
        }
    }
    if let Some(h) = h.as_mut() {
        h.saturating_record(ns);
    }
}

/// One slow log entry (Redis's `slowlogEntry`).
#[derive(Debug, Clone)]
pub struct SlowEntry {
    pub id: u64,
    pub time_s: i64,
    pub duration_us: u64,
    pub args: Vec<Bytes>,
    pub peer: String,
    pub name: Bytes,
}

/// The slow log: newest entry first, as Redis lists it.
#[derive(Debug, Default)]
pub struct SlowLog {
    pub entries: VecDeque<SlowEntry>,
    next_id: u64,
}

impl SlowLog {
    /// Redis's `slowlogCreateEntry` + `slowlogPushEntryIfNeeded` (the
    /// threshold test is the caller's): arguments trimmed, the log cut to
    /// `max_len`.
    pub fn push(
        &mut self,
        args: &[Bytes],
        duration_us: u64,
        peer: String,
        name: Bytes,
        max_len: usize,
    ) {
        let argc = args.len();
        let kept = argc.min(SLOWLOG_ENTRY_MAX_ARGC);
        let mut v = Vec::with_capacity(kept);
        for (j, a) in args.iter().take(kept).enumerate() {
            if kept != argc && j == kept - 1 {
                v.push(Bytes::from(format!(
                    "... ({} more arguments)",
                    argc - kept + 1
                )));
            } else if a.len() > SLOWLOG_ENTRY_MAX_STRING {
                let mut s = a[..SLOWLOG_ENTRY_MAX_STRING].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - SLOWLOG_ENTRY_MAX_STRING).as_bytes(),
                );
                v.push(Bytes::from(s));
            } else {
                v.push(a.clone());
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push_front(SlowEntry {
            id,
            time_s: unix_s(),
            duration_us,
            args: v,
            peer,
            name,
        });
        self.entries.truncate(max_len);
    }

    pub fn reset(&mut self) {
        self.entries.clear();
    }
}

fn unix_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One second's worst latency of an event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub time_s: i64,
    pub latency_ms: u64,
}

/// Redis's `latencyTimeSeries`: a ring of per-second maxima.
#[derive(Debug, Clone)]
pub struct TimeSeries {
    pub idx: usize,
    pub max_ms: u64,
    pub samples: [Sample; LATENCY_TS_LEN],
}

impl Default for TimeSeries {
    fn default() -> Self {
        TimeSeries {
            idx: 0,
            max_ms: 0,
            samples: [Sample::default(); LATENCY_TS_LEN],
        }
    }
}

impl TimeSeries {
    /// The recorded samples, oldest first.
    pub fn in_order(&self) -> impl Iterator<Item = Sample> + '_ {
        (0..LATENCY_TS_LEN)
            .map(move |j| self.samples[(self.idx + j) % LATENCY_TS_LEN])
            .filter(|s| s.time_s != 0)
    }

    /// The newest sample (zeros when none).
    pub fn last(&self) -> Sample {
        self.samples[(self.idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN]
    }
}

/// The latency monitor (`latency-monitor-threshold`): per event, the
/// worst latency of each second a spike at or over the threshold was
/// seen, in insertion order of the events (Redis answers in its dict's
/// order; insertion order is as good and stable).
#[derive(Debug, Default)]
pub struct LatencyMonitor {
    /// `latency-monitor-threshold` in ms; 0 turns the monitor off.
    pub threshold_ms: AtomicU64,
    events: Mutex<Vec<(String, TimeSeries)>>,
}

impl LatencyMonitor {
    /// Redis's `latencyAddSampleIfNeeded`.
    pub fn sample(&self, event: &str, latency_ms: u64) {
        let t = self.threshold_ms.load(Ordering::Relaxed);
        if t != 0 && latency_ms >= t {
            self.add(event, latency_ms);
        }
    }

    /// Runs `f`, recording its duration as `event` (the clock is read
    /// only while the monitor is on).
    pub fn timed<R>(&self, event: &str, f: impl FnOnce() -> R) -> R {
        if self.threshold_ms.load(Ordering::Relaxed) == 0 {
            return f();
        }
        let start = std::time::Instant::now();
        let r = f();
        self.sample_since(event, start);
        r
    }

    /// `sample` with a measured duration.
    pub fn sample_since(&self, event: &str, since: std::time::Instant) {
        if self.threshold_ms.load(Ordering::Relaxed) != 0 {
            self.sample(event, since.elapsed().as_millis() as u64);
        }
    }

    /// Redis's `latencyAddSample`.
    fn add(&self, event: &str, latency_ms: u64) {
        let now = unix_s();
        let mut ev = self.events.lock();
        let ts = match ev.iter().position(|(n, _)| n == event) {
            Some(i) => &mut ev[i].1,
            None => {
                ev.push((event.to_string(), TimeSeries::default()));
                let last = ev.len() - 1;
                &mut ev[last].1
            }
        };
        ts.max_ms = ts.max_ms.max(latency_ms);
        let prev = (ts.idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN;
        if ts.samples[prev].time_s == now {
            ts.samples[prev].latency_ms = ts.samples[prev].latency_ms.max(latency_ms);
            return;
        }
        ts.samples[ts.idx] = Sample {
            time_s: now,
            latency_ms,
        };
        ts.idx = (ts.idx + 1) % LATENCY_TS_LEN;
    }

    /// A copy of every event's series.
    pub fn events(&self) -> Vec<(String, TimeSeries)> {
        self.events.lock().clone()
    }

    /// Redis's `latencyResetEvent`: drops the named event (any case), or
    /// all of them; returns how many went.
    pub fn reset(&self, event: Option<&[u8]>) -> usize {
        let mut ev = self.events.lock();
        let before = ev.len();
        match event {
            None => ev.clear(),
            Some(e) => ev.retain(|(n, _)| !n.as_bytes().eq_ignore_ascii_case(e)),
        }
        before - ev.len()
    }
}

/// Redis's `trackInstantaneousMetric`: rates over the last 1.6 seconds.
#[derive(Debug, Default)]
struct Metric {
    last_ms: u64,
    last_value: u64,
    samples: [u64; METRIC_SAMPLES],
    idx: usize,
}

impl Metric {
    fn track(&mut self, now_ms: u64, value: u64) {
        if self.last_ms != 0 {
            let dt = now_ms.saturating_sub(self.last_ms).max(1);
            let dv = value.saturating_sub(self.last_value);
            self.samples[self.idx] = dv * 1000 / dt;
            self.idx = (self.idx + 1) % METRIC_SAMPLES;
        }
        self.last_ms = now_ms;
        self.last_value = value;
    }

    fn get(&self) -> u64 {
        self.samples.iter().sum::<u64>() / METRIC_SAMPLES as u64
    }
}

/// The instantaneous metrics INFO stats shows.
#[derive(Debug, Default)]
struct Instant3 {
    ops: Metric,
    input: Metric,
    output: Metric,
}

/// The server's observability state (see the module comment).
#[derive(Debug, Default)]
pub struct Observe {
    pub slowlog: Mutex<SlowLog>,
    /// `slowlog-log-slower-than` in µs (negative: off).
    pub slower_than_us: AtomicI64,
    /// `slowlog-max-len`.
    pub slowlog_max_len: AtomicUsize,
    /// `latency-tracking`.
    pub tracking: AtomicBool,
    pub latency: Arc<LatencyMonitor>,
    errors: Mutex<BTreeMap<Vec<u8>, u64>>,
    /// MONITOR clients by id, with their queues.
    monitors: Mutex<Vec<(u64, Mailbox)>>,
    monitor_count: AtomicUsize,
    instant: Mutex<Instant3>,
    /// `used_memory` once the server was ready (INFO `used_memory_startup`).
    pub startup_memory: AtomicU64,
    /// Keys the last load (WAL replay) brought back.
    pub keys_loaded: AtomicU64,
    /// Socket reads and writes (INFO `total_reads_processed`, ...).
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    /// Reply buffers grown by a batch's replies, and released back to a
    /// small one after a large reply (INFO `reply_buffer_expands`,
    /// `reply_buffer_shrinks`).
    pub reply_buffer_expands: AtomicU64,
    pub reply_buffer_shrinks: AtomicU64,
}

impl Observe {
    pub fn new(latency: Arc<LatencyMonitor>) -> Self {
        Observe {
            latency,
            slower_than_us: AtomicI64::new(10_000),
            slowlog_max_len: AtomicUsize::new(128),
            tracking: AtomicBool::new(true),
            ..Default::default()
        }
    }

    /// Counts error replies by their codes (Redis's `afterErrorReply`;
    /// `Out::error_bytes` extracted the codes).
    pub fn count_errors(&self, total: &AtomicU64, codes: &mut Vec<Vec<u8>>) {
        if codes.is_empty() {
            return;
        }
        total.fetch_add(codes.len() as u64, Ordering::Relaxed);
        let mut errors = self.errors.lock();
        for code in codes.drain(..) {
            if let Some(n) = errors.get_mut(&code) {
                *n += 1;
            } else if errors.len() < ERRORSTATS_MAX {
                errors.insert(code, 1);
            }
        }
    }

    /// INFO errorstats' counters, by code in byte order (Redis's rax order).
    pub fn error_counts(&self) -> Vec<(Vec<u8>, u64)> {
        self.errors
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// CONFIG RESETSTAT's share.
    pub fn reset_stats(&self) {
        self.errors.lock().clear();
        self.reads.store(0, Ordering::Relaxed);
        self.writes.store(0, Ordering::Relaxed);
        self.reply_buffer_expands.store(0, Ordering::Relaxed);
        self.reply_buffer_shrinks.store(0, Ordering::Relaxed);
        *self.instant.lock() = Instant3::default();
    }

    /// Samples the instantaneous metrics (from the cron, every 100 ms).
    pub fn track_metrics(&self, now_ms: u64, ops: u64, input: u64, output: u64) {
        let mut m = self.instant.lock();
        m.ops.track(now_ms, ops);
        m.input.track(now_ms, input);
        m.output.track(now_ms, output);
    }

    /// Ops per second, input and output bytes per second.
    pub fn instantaneous(&self) -> (u64, u64, u64) {
        let m = self.instant.lock();
        (m.ops.get(), m.input.get(), m.output.get())
    }

    /// Adds a MONITOR client; false when it already is one.
    pub fn add_monitor(&self, id: u64, mailbox: Mailbox) -> bool {
        let mut m = self.monitors.lock();
        if m.iter().any(|(i, _)| *i == id) {
            return false;
        }
        m.push((id, mailbox));
        self.monitor_count.store(m.len(), Ordering::Relaxed);
        true
    }

    pub fn remove_monitor(&self, id: u64) {
        let mut m = self.monitors.lock();
        m.retain(|(i, _)| *i != id);
        self.monitor_count.store(m.len(), Ordering::Relaxed);
    }

    pub fn has_monitors(&self) -> bool {
        self.monitor_count.load(Ordering::Relaxed) != 0
    }

    /// Redis's `replicationFeedMonitors`: one `+<sec>.<usec> [<db> <who>]
    /// "arg" ...` line to every monitor.
    pub fn feed_monitors(&self, db: usize, who: &str, args: &[Bytes], redact: &[usize]) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut line = Vec::with_capacity(64);
        line.extend_from_slice(
            format!(
                "+{}.{:06} [{} {}]",
                now.as_secs(),
                now.subsec_micros(),
                db,
                who
            )
            .as_bytes(),
        );
        for (i, a) in args.iter().enumerate() {
            line.push(b' ');
            if redact.contains(&i) {
                line.extend_from_slice(b"\"(redacted)\"");
            } else {
                repr(&mut line, a);
            }
        }
        line.extend_from_slice(b"\r\n");
        let frame = Bytes::from(line);
        for (_, mb) in self.monitors.lock().iter() {
            mb.push_unlimited(frame.clone());
        }
    }
}

/// Redis's `sdscatrepr`: the bytes quoted, with C escapes.
pub fn repr(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'\\' | b'"' => {
                out.push(b'\\');
                out.push(c);
            }
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(c),
            _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

/// The arguments Redis 7.0 redacts (`redactClientCommandArgument`) before
/// the slow log and MONITOR see a command: passwords.
pub fn redacted_args(full_name: &str, args: &[Bytes]) -> Vec<usize> {
    match full_name {
        // AUTH [username] password (arity checked: 2 or 3 arguments).
        "auth" if args.len() <= 3 => (1..args.len()).collect(),
        // HELLO [protover [AUTH username password] [SETNAME name]]
        "hello" => {
            let mut v = Vec::new();
            let mut j = 2;
            while j < args.len() {
                let more = args.len() - 1 - j;
                if args[j].eq_ignore_ascii_case(b"auth") && more >= 2 {
                    v.extend([j + 1, j + 2]);
                    j += 3;
                } else if args[j].eq_ignore_ascii_case(b"setname") && more >= 1 {
                    j += 2;
                } else {
                    break;
                }
            }
            v
        }
        // CONFIG SET of a sensitive parameter.
        "config|set" => (2..args.len())
            .step_by(2)
            .filter(|&i| {
                i + 1 < args.len()
                    && (args[i].eq_ignore_ascii_case(b"requirepass")
                        || args[i].eq_ignore_ascii_case(b"masterauth"))
            })
            .map(|i| i + 1)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn slowlog_trims_arguments_as_redis() {
        let mut log = SlowLog::default();
        let mut args: Vec<Bytes> = (0..40).map(|i| b(&i.to_string())).collect();
        args[1] = Bytes::from(vec![b'x'; 130]);
        log.push(&args, 5, "1.2.3.4:5".into(), Bytes::new(), 2);
        let e = &log.entries[0];
        assert_eq!(e.args.len(), 32);
        assert_eq!(&e.args[31][..], b"... (9 more arguments)");
        assert_eq!(e.args[1].len(), 128 + "... (2 more bytes)".len());
        assert!(e.args[1].ends_with(b"... (2 more bytes)"));
        log.push(&args[..2], 1, String::new(), Bytes::new(), 2);
        log.push(&args[..2], 1, String::new(), Bytes::new(), 2);
        assert_eq!(log.entries.len(), 2);
        assert_eq!(log.entries[0].id, 2);
    }

    #[test]
    fn repr_escapes_as_sdscatrepr() {
        let mut v = Vec::new();
        repr(&mut v, b"a\"b\\\n\x01\xff ");
        assert_eq!(v, b"\"a\\\"b\\\\\\n\\x01\\xff \"");
    }

    #[test]
    fn latency_keeps_one_sample_per_second() {
        let m = LatencyMonitor::default();
        m.sample("command", 50);
        assert!(m.events().is_empty(), "threshold 0 records nothing");
        m.threshold_ms.store(10, Ordering::Relaxed);
        m.sample("command", 5);
        assert!(m.events().is_empty());
        m.add("command", 20);
        m.add("command", 30);
        let ev = m.events();
        assert_eq!(ev.len(), 1);
        let s: Vec<Sample> = ev[0].1.in_order().collect();
        assert!(s.len() == 1 || s.len() == 2);
        assert_eq!(ev[0].1.max_ms, 30);
        assert_eq!(m.reset(Some(b"COMMAND")), 1);
        assert!(m.events().is_empty());
    }

    #[test]
    fn error_codes_as_redis() {
        let o = Observe::default();
        let total = AtomicU64::new(0);
        let mut out = crate::protocol::Out::new(false);
        out.error("WRONGTYPE Operation against a key");
        out.error("ERR syntax error");
        out.error("NOSPACEHEREATALLXXXXXXXXXXXXXXXXXXXXXX");
        o.count_errors(&total, &mut out.error_codes);
        assert!(out.error_codes.is_empty());
        let v = o.error_counts();
        assert_eq!(v, vec![(b"ERR".to_vec(), 2), (b"WRONGTYPE".to_vec(), 1)]);
        assert_eq!(total.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn redaction_positions() {
        let a = |v: &[&str]| v.iter().map(|s| b(s)).collect::<Vec<_>>();
        assert_eq!(redacted_args("auth", &a(&["auth", "p"])), vec![1]);
        assert_eq!(redacted_args("auth", &a(&["auth", "u", "p"])), vec![1, 2]);
        assert_eq!(
            redacted_args(
                "hello",
                &a(&["hello", "3", "auth", "u", "p", "setname", "n"])
            ),
            vec![3, 4]
        );
        assert_eq!(
            redacted_args("config|set", &a(&["config", "set", "requirepass", "x"])),
            vec![3]
        );
    }
}
