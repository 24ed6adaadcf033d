//! The fuzz entries of `redlog::fuzz` (the cargo-fuzz targets in `fuzz/`)
//! on stable, for a bounded number of cases: arbitrary bytes, and valid
//! encodings made with the project's own encoders then damaged (bits
//! flipped, bytes inserted, deleted, overwritten with huge length prefixes,
//! the tail cut). For every input: no panic (the entries assert their own
//! round-trip invariants), no hang (a watchdog aborts with the input if one
//! case runs for a minute), and no allocation beyond what the input
//! declares: the bytes a call allocates (jemalloc's per-thread counter) are
//! bounded by a multiple of the input's length, so a length prefix claiming
//! 2^32 elements cannot make a decoder reserve them.

use bytes::Bytes;
use proptest::prelude::*;
use redlog::db::hash::{Hash, HashLimits};
use redlog::db::set::Set;
use redlog::db::zset::{ZSet, ZsetLimits};
use redlog::db::{effect, effect::Effect, StrForm, StrValue, Value};
use redlog::fuzz;
use redlog::logparse::{FormatSpec, Keys, Miner, MinerConfig};
use redlog::stream::codec::{self, Checkpoint, Op, OpKind};
use redlog::stream::groups::{self, GroupOp, Groups};
use redlog::stream::{Meta, SegStat};
use std::io::Write;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- harness

/// A case running on some thread.
struct Running {
    thread: std::thread::ThreadId,
    test: &'static str,
    since: Instant,
    /// The input, hex-encoded for the report.
    input: String,
    /// The thread's jemalloc allocation counter, and its value at the start.
    counter: usize,
    before: u64,
}

static RUNNING: Mutex<Vec<Running>> = Mutex::new(Vec::new());
/// A case running this long is a hang (a decode of a few KiB takes
/// milliseconds even in debug builds on a loaded machine).
const HANG: Duration = Duration::from_secs(60);
/// A case allocating this much is runaway allocation (a decoder looping
/// while it pushes): stopped before it exhausts the machine's memory.
const RUNAWAY_BYTES: u64 = 1 << 30;

fn start_watchdog() {
    static WATCHDOG: Once = Once::new();
    WATCHDOG.call_once(|| {
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(200));
            let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
            for r in running.iter() {
                // SAFETY: the counter belongs to a thread that is still in
                // its case (it removes the entry before leaving `run`, and
                // the entry is only read under the lock); jemalloc keeps it
                // for the thread's life. A torn read is impossible for an
                // aligned u64 on the 64-bit targets this runs on.
                let now = unsafe { std::ptr::read_volatile(r.counter as *const u64) };
                let grew = now.wrapping_sub(r.before);
                if r.since.elapsed() > HANG || grew > RUNAWAY_BYTES {
                    // Straight to stderr: the test harness captures
                    // eprintln! (also in threads a test spawned), and the
                    // capture is lost with the abort.
                    let _ = writeln!(
                        std::io::stderr(),
                        "{}: a case ran for {:?} and allocated {grew} bytes (hang); input (hex): {}",
                        r.test,
                        r.since.elapsed(),
                        r.input
                    );
                    std::process::abort();
                }
            }
        });
    });
}

/// This thread's jemalloc allocation counter (`thread.allocatedp`: bytes
/// allocated so far; the test build of jemalloc has statistics on).
fn counter() -> *const u64 {
    let mut p: *mut u64 = std::ptr::null_mut();
    let mut len = std::mem::size_of::<*mut u64>();
    // SAFETY: `thread.allocatedp` writes a pointer to this thread's counter
    // into `p`; `len` is the size of `p`, checked by jemalloc.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            c"thread.allocatedp".as_ptr(),
            (&mut p as *mut *mut u64).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    assert_eq!(rc, 0, "jemalloc statistics unavailable");
    p
}

fn allocated(counter: *const u64) -> u64 {
    // SAFETY: this thread's own counter (see `counter`).
    unsafe { std::ptr::read_volatile(counter) }
}

/// Runs one case under the watchdog and returns what it allocated.
fn run<R>(test: &'static str, input: &[u8], f: impl FnOnce(&[u8]) -> R) -> (R, u64) {
    start_watchdog();
    let me = std::thread::current().id();
    let c = counter();
    let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
    let before = allocated(c);
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Running {
            thread: me,
            test,
            since: Instant::now(),
            input: hex,
            counter: c as usize,
            before,
        });
    let start = allocated(c);
    let r = f(input);
    let used = allocated(c) - start;
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|r| r.thread != me);
    (r, used)
}

/// Allocation allowed for an input: a fixed allowance plus a multiple of
/// its length (decoded values are bigger than their bytes: a `Bytes` per
/// 4-byte length prefix, maps, re-encodings, replay into a keyspace).
fn bound(fixed: u64, input: &[u8]) -> u64 {
    fixed + 64 * input.len() as u64
}

const MIB: u64 = 1 << 20;
/// Compiling a LOGPARSE format (up to 32 mask regexes, each limited to
/// 1 MiB compiled) is bounded by the regex limits, not the input.
const FORMAT_COMPILE: u64 = 48 * MIB;

/// One way of damaging an encoding.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    /// A little-endian u32 length prefix claiming a huge count.
    Put32(usize, u32),
    /// A u64 count claiming even more (checkpoints count deleted ids and
    /// PEL entries in u64).
    Put64(usize, u64),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let big32 = prop_oneof![
        Just(u32::MAX),
        Just(0x8000_0000),
        Just(1 << 24),
        Just(1 << 16),
        any::<u32>()
    ];
    let big64 = prop_oneof![
        Just(1u64 << 40),
        Just(u64::MAX),
        Just(1 << 32),
        any::<u64>()
    ];
    prop_oneof![
        3 => (any::<usize>(), 1u8..).prop_map(|(a, x)| Mutation::Flip(a, x)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(a, x)| Mutation::Insert(a, x)),
        2 => any::<usize>().prop_map(Mutation::Delete),
        3 => (any::<usize>(), big32).prop_map(|(a, x)| Mutation::Put32(a, x)),
        1 => (any::<usize>(), big64).prop_map(|(a, x)| Mutation::Put64(a, x)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

/// Applies mutations to `data[skip..]` (the first `skip` bytes select
/// what an entry decodes and stay intact).
fn damage(mut data: Vec<u8>, skip: usize, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = data.len().saturating_sub(skip);
        let at = |a: usize, extra: usize| skip + a % (n + extra).max(1);
        match *m {
            Mutation::Flip(a, x) if n > 0 => data[at(a, 0)] ^= x,
            Mutation::Insert(a, x) => data.insert(at(a, 1).min(data.len()), x),
            Mutation::Delete(a) if n > 0 => {
                data.remove(at(a, 0));
            }
            Mutation::Put32(a, x) if n >= 4 => {
                let i = skip + a % (n - 3);
                data[i..i + 4].copy_from_slice(&x.to_le_bytes());
            }
            Mutation::Put64(a, x) if n >= 8 => {
                let i = skip + a % (n - 7);
                data[i..i + 8].copy_from_slice(&x.to_le_bytes());
            }
            Mutation::Truncate(a) => data.truncate(at(a, 1).min(data.len())),
            _ => {}
        }
    }
    data
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..5)
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Shrinking a hang or a crash is not possible, and a failing
        // decoder input is small already.
        max_shrink_iters: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn small_bytes(max: usize) -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from)
}

// --------------------------------------------------------------- requests

/// A request as a client writes it: RESP multibulk, or inline with every
/// argument double-quoted (escapes for quotes, backslashes, non-printables).
fn encode_request(inline: bool, args: &[Bytes], out: &mut Vec<u8>) {
    if inline {
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'"');
            for &c in a.iter() {
                match c {
                    b'"' | b'\\' => out.extend_from_slice(&[b'\\', c]),
                    0x20..=0x7e => out.push(c),
                    _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
                }
            }
            out.push(b'"');
        }
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
    }
}

fn requests() -> impl Strategy<Value = Vec<(bool, Vec<Bytes>)>> {
    let arg = prop_oneof![
        3 => prop::sample::select(vec!["SET", "GET", "PING", "-1", "0", "9223372036854775808", ""])
            .prop_map(|s: &'static str| Bytes::from_static(s.as_bytes())),
        2 => small_bytes(24),
    ];
    prop::collection::vec((any::<bool>(), prop::collection::vec(arg, 1..5)), 1..5)
}

/// The allocation a request decode may make: besides the input, a bulk
/// argument whose header arrived is reserved whole (as Redis does), up to
/// the limit in force, once by each of the three decodings.
fn request_bound(data: &[u8]) -> u64 {
    let limits = fuzz::request_limits(data.first().copied().unwrap_or(0));
    let bulk = if limits.authenticated {
        limits.bulk_bytes_max
    } else {
        limits.bulk_bytes_max.min(16384)
    };
    bound(MIB, data) + 3 * (bulk as u64 + 2)
}

fn check_request(data: &[u8]) -> Result<(), TestCaseError> {
    let (_, used) = run("request", data, fuzz::request);
    prop_assert!(
        used <= request_bound(data),
        "allocated {used} bytes for {} input bytes",
        data.len()
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn request_arbitrary_bytes(
        flags in any::<u8>(),
        split in any::<u8>(),
        body in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut data = vec![flags, split];
        data.extend_from_slice(&body);
        check_request(&data)?;
    }

    #[test]
    fn request_arbitrary_text(
        flags in any::<u8>(),
        split in any::<u8>(),
        body in prop::collection::vec(
            prop::sample::select(b"*$\r\n \t\"'\\x0123456789-abcAZ\0".to_vec()),
            0..200,
        ),
    ) {
        let mut data = vec![flags, split];
        data.extend_from_slice(&body);
        check_request(&data)?;
    }

    #[test]
    fn request_mutated_frames(
        flags in any::<u8>(),
        split in any::<u8>(),
        reqs in requests(),
        muts in mutations(),
    ) {
        let mut data = vec![flags, split];
        for (inline, args) in &reqs {
            encode_request(*inline, args, &mut data);
        }
        let data = damage(data, 2, &muts);
        check_request(&data)?;
    }
}

#[test]
fn request_undamaged_frames_decode_whole() {
    // Sanity check of the generator: valid frames decode to every request.
    let args = vec![
        Bytes::from_static(b"SET"),
        Bytes::from_static(b"a \"b\"\\"),
        Bytes::from_static(b"\0\xff\r\n"),
        Bytes::new(),
    ];
    for inline in [false, true] {
        let mut data = vec![0, 3];
        encode_request(inline, &args, &mut data);
        encode_request(inline, &args, &mut data);
        assert_eq!(fuzz::request(&data), 2, "inline {inline}");
    }
}

// -------------------------------------------------------------- WAL units

fn value() -> impl Strategy<Value = Value> {
    let items = || prop::collection::vec(small_bytes(10), 0..6);
    (
        0u8..7,
        any::<bool>(),
        items(),
        items(),
        prop::collection::vec(any::<i64>(), 1..6),
        prop::collection::vec(any::<f64>(), 0..6),
        any::<u64>(),
    )
        .prop_map(|(t, flag, a, b, ints, scores, id)| match t {
            0 => Value::Str(StrValue {
                data: a.concat(),
                form: if flag { StrForm::Raw } else { StrForm::Plain },
            }),
            1 => Value::List(a.iter().map(|x| &x[..]).collect()),
            2 => {
                let mut h = Hash::default();
                if flag {
                    h.convert_to_table();
                }
                for (f, v) in a.iter().zip(b.iter()) {
                    h.set(f, v, HashLimits::NONE);
                }
                Value::Hash(h)
            }
            3 => {
                let mut s = Set::new_intset();
                for n in &ints {
                    s.add(n.to_string().as_bytes(), 512);
                }
                Value::Set(s)
            }
            4 => {
                let mut s = Set::for_first(b"x");
                for m in &a {
                    s.add(m, 0);
                }
                Value::Set(s)
            }
            5 => {
                let mut z = if flag {
                    ZSet::new_skiplist()
                } else {
                    ZSet::new_listpack()
                };
                let lim = ZsetLimits {
                    entries: usize::MAX,
                    value: usize::MAX,
                };
                for (m, s) in a.iter().zip(scores.iter()) {
                    if !s.is_nan() {
                        z.set_score(m.clone(), *s, lim);
                    }
                }
                Value::ZSet(z)
            }
            _ => Value::Stream(redlog::stream::StreamRef::unopened(id)),
        })
}

fn format_spec() -> impl Strategy<Value = FormatSpec> {
    let text = || {
        prop_oneof![
            prop::sample::select(vec![
                "<Date> <Time> <Pid> <Level> <Component>: <Content>",
                "<Level> <Content>",
                "<Content>",
                "syslog",
                "json",
                "logfmt",
                "<Date> <Time> <Content",
                "",
            ])
            .prop_map(String::from),
            "[<>a-z ]{0,12}",
        ]
    };
    let mask = prop_oneof![
        prop::sample::select(vec![r"\d+", r"blk_-?\d+", r"(\d+\.){3}\d+", "[", "a{2,"])
            .prop_map(String::from),
        "[a-z\\\\+*?()]{0,6}",
    ];
    (
        text(),
        prop::collection::vec(mask, 0..3),
        prop_oneof![0.0..=1.0, any::<f64>()],
        0u32..20,
        prop::option::of(prop::sample::select(vec![
            ("<Date> <Time>", "%y%m%d %H%M%S"),
            ("<Date>", "%Y-%m-%dT%H:%M:%S%.f%z"),
            ("<Time>", "%s"),
            ("x", "%Q"),
        ])),
        prop::option::of(prop::sample::select(vec![
            "UTC",
            "Europe/Paris",
            "+02:00",
            "Nowhere/Else",
        ])),
        prop::option::of(prop::sample::select(vec!["ts", "lvl", "msg"])),
    )
        .prop_map(|(log_format, masks, similarity, depth, time, tz, key)| {
            let mut s = FormatSpec::new(&log_format);
            s.masks = masks;
            s.similarity = similarity;
            s.depth = depth;
            s.time = time.map(|(a, b)| (a.to_string(), b.to_string()));
            s.tz = tz.map(String::from);
            s.keys = Keys {
                time: key.map(String::from),
                level: key.map(|k| format!("{k}l")),
                message: None,
                component: key.map(|_| String::new()),
            };
            s
        })
}

/// Log lines from a small vocabulary: enough repetition for templates.
fn lines() -> impl Strategy<Value = Vec<String>> {
    let word = prop_oneof![
        prop::sample::select(vec![
            "open", "close", "block", "user", "from", "to", "ok", "failed", "=", "<*>",
        ])
        .prop_map(String::from),
        (0u32..1000).prop_map(|n| n.to_string()),
        "[a-z]{1,6}",
    ];
    prop::collection::vec(
        prop::collection::vec(word, 0..8).prop_map(|w| w.join(" ")),
        0..24,
    )
}

fn miner_state(cfg: (f64, u32, u32), lines: &[String]) -> Vec<u8> {
    let mut m = Miner::new(MinerConfig {
        similarity: cfg.0,
        depth: cfg.1,
        children_max: cfg.2,
        ..MinerConfig::default()
    });
    let mut toks = Vec::new();
    for l in lines {
        redlog::logparse::miner::tokenize(l.as_bytes(), &mut toks);
        let _ = m.learn(&toks);
    }
    let mut out = Vec::new();
    m.encode(&mut out);
    out
}

fn miner_cfg() -> impl Strategy<Value = (f64, u32, u32)> {
    (0.0..=1.0f64, 3u32..8, 2u32..6)
}

fn effect() -> impl Strategy<Value = Effect> {
    (
        0u8..25,
        (0u8..16, 0u8..16),
        (small_bytes(8), small_bytes(8)),
        prop::collection::vec(small_bytes(8), 0..5),
        (any::<u64>(), any::<u64>(), any::<bool>()),
        value(),
        (format_spec(), miner_cfg(), lines()),
    )
        .prop_map(
            |(t, (db, db2), (key, data), list, (n, m, flag), value, (spec, cfg, lines))| match t {
                0 => Effect::Set {
                    db,
                    key,
                    value,
                    expires_at_ms: n,
                },
                1 => Effect::Del { db, key },
                2 => Effect::Expire { db, key, at_ms: n },
                3 => Effect::FlushDb { db },
                4 => Effect::FlushAll,
                5 => Effect::SwapDb { a: db, b: db2 },
                6 => Effect::Append { db, key, data },
                7 => Effect::SetRange {
                    db,
                    key,
                    offset: n % 4096,
                    data,
                },
                8 => Effect::ZAdd {
                    db,
                    key,
                    skiplist: flag,
                    pairs: list.into_iter().map(|b| (b, m as f64)).collect(),
                },
                9 => Effect::ZRem {
                    db,
                    key,
                    members: list,
                },
                10 => Effect::HashSet {
                    db,
                    key,
                    table: flag,
                    pairs: list.into_iter().map(|b| (b, data.clone())).collect(),
                },
                11 => Effect::HashDel {
                    db,
                    key,
                    fields: list,
                },
                12 => Effect::SetAdd {
                    db,
                    key,
                    table: flag,
                    members: list,
                },
                13 => Effect::SetRem {
                    db,
                    key,
                    members: list,
                },
                14 => Effect::ListPush {
                    db,
                    key,
                    left: flag,
                    items: list,
                },
                15 => Effect::ListPop {
                    db,
                    key,
                    left: flag,
                    count: n,
                },
                16 => Effect::ListSet {
                    db,
                    key,
                    index: n % 8,
                    value: data,
                },
                17 => Effect::ListInsert {
                    db,
                    key,
                    index: n % 8,
                    value: data,
                },
                18 => Effect::ListRem {
                    db,
                    key,
                    count: n as i64,
                    value: data,
                },
                19 => Effect::ListTrim {
                    db,
                    key,
                    start: n % 8,
                    end: m % 8,
                },
                20 => Effect::LogFormatSet { name: key, spec },
                21 => Effect::LogFormatDel { name: key },
                22 => Effect::LogMinerLearn {
                    name: key,
                    tokens: list,
                },
                23 => Effect::LogMinerState {
                    name: Bytes::from_static(b"hdfs"),
                    state: miner_state(cfg, &lines).into(),
                },
                _ => Effect::StreamIngestLearn {
                    db,
                    key,
                    name: data,
                    spec,
                    learned: vec![list.clone(), list],
                    hits: vec![(n, m)],
                    // Tag 75 carries the miner generation; 0 is tag 74.
                    gen: n % 3,
                },
            },
        )
}

/// Runs decoder `f` on `data` and checks that it allocated no more than
/// `bound(FORMAT_COMPILE, data)`.
fn within_format_bound<R>(
    test: &'static str,
    data: &[u8],
    f: impl FnOnce(&[u8]) -> R,
) -> Result<(), TestCaseError> {
    let (_, used) = run(test, data, f);
    prop_assert!(
        used <= bound(FORMAT_COMPILE, data),
        "allocated {used} bytes for {} input bytes",
        data.len()
    );
    Ok(())
}

fn check_wal(data: &[u8]) -> Result<(), TestCaseError> {
    within_format_bound("wal_unit", data, fuzz::wal_unit)
}

proptest! {
    #![proptest_config(config(600))]

    #[test]
    fn wal_unit_arbitrary_bytes(tag in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..300)) {
        // Mostly a valid version and a small count, so effects get decoded.
        let mut data = vec![1, tag % 4, 0, 0, 0];
        data.extend_from_slice(&body);
        check_wal(&data)?;
        check_wal(&body)?;
    }

    #[test]
    fn wal_unit_mutated(effects in prop::collection::vec(effect(), 1..4), muts in mutations()) {
        let mut data = Vec::new();
        effect::encode_unit(&effects, &mut data);
        check_wal(&damage(data, 0, &muts))?;
    }
}

fn check_record(data: &[u8]) -> Result<(), TestCaseError> {
    within_format_bound("redlog_record", data, fuzz::redlog_record)
}

proptest! {
    #![proptest_config(config(300))]

    /// A replication stream's redlog record (`PING <record>`), damaged:
    /// an error or a record, never a panic or a huge allocation.
    #[test]
    fn redlog_record_mutated(effects in prop::collection::vec(effect(), 1..4), muts in mutations()) {
        let data = effect::record::encode_effects(&effects);
        // Past the prefix, so mutations reach the version, kind and unit.
        check_record(&damage(data, effect::record::PREFIX.len(), &muts))?;
    }

    #[test]
    fn redlog_record_arbitrary_bytes(kind in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut data = effect::record::PREFIX.to_vec();
        data.extend_from_slice(&[effect::record::VERSION, [b'R', b'U', kind][kind as usize % 3], 1, 1, 0, 0, 0]);
        data.extend_from_slice(&body);
        check_record(&data)?;
        check_record(&body)?;
    }
}

#[test]
fn redlog_record_undamaged_applies() {
    let e = Effect::LogFormatDel {
        name: Bytes::from_static(b"f"),
    };
    assert_eq!(
        fuzz::redlog_record(&effect::record::encode_effects(&[e])),
        1
    );
    // A key's effect is refused: not a record's.
    let del = Effect::Del {
        db: 0,
        key: Bytes::from_static(b"k"),
    };
    assert_eq!(
        fuzz::redlog_record(&effect::record::encode_effects(&[del])),
        0
    );
}

#[test]
fn wal_unit_undamaged_round_trips() {
    let runner_effects = vec![
        Effect::ListPush {
            db: 1,
            key: Bytes::from_static(b"l"),
            left: true,
            items: vec![Bytes::from_static(b"a"), Bytes::new()],
        },
        Effect::ListSet {
            db: 1,
            key: Bytes::from_static(b"l"),
            index: 1,
            value: Bytes::from_static(b"b"),
        },
    ];
    let mut data = Vec::new();
    effect::encode_unit(&runner_effects, &mut data);
    assert_eq!(fuzz::wal_unit(&data), 2);
}

// ---------------------------------------------------------- stream codecs

fn meta() -> impl Strategy<Value = Meta> {
    (any::<u64>(), any::<u128>(), any::<u128>(), any::<u64>()).prop_map(|(l, a, b, e)| Meta {
        length: l,
        first: a,
        last_id: b,
        max_deleted: a ^ b,
        entries_added: e,
        trimmed_through: a / 2,
    })
}

fn group_op() -> impl Strategy<Value = GroupOp> {
    let name = || {
        prop::sample::select(vec!["g", "h", "c1", "c2", ""])
            .prop_map(|s: &'static str| Bytes::from_static(s.as_bytes()))
    };
    (
        0u8..7,
        name(),
        name(),
        (0u128..20, any::<i64>(), any::<u64>()),
        prop::collection::vec((0u128..20, any::<u64>(), any::<u64>()), 0..4),
        any::<bool>(),
    )
        .prop_map(
            |(t, group, consumer, (id, er, seen), nacks, flag)| match t {
                0 => GroupOp::Create {
                    group,
                    last_id: id,
                    entries_read: er,
                },
                1 => GroupOp::SetId {
                    group,
                    last_id: id,
                    entries_read: er,
                },
                2 => GroupOp::Destroy { group },
                3 => GroupOp::Consumer {
                    group,
                    consumer,
                    seen,
                },
                4 => GroupOp::DelConsumer { group, consumer },
                5 => GroupOp::Deliver {
                    group,
                    consumer,
                    seen,
                    last: flag.then_some((id, er)),
                    nacks,
                },
                _ => GroupOp::Ack {
                    group,
                    ids: nacks.iter().map(|n| n.0).collect(),
                },
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    (
        0u8..5,
        any::<u128>(),
        meta(),
        prop::collection::vec(any::<u128>(), 0..5),
        (any::<u64>(), prop::option::of(any::<u64>())),
        group_op(),
    )
        .prop_map(|(t, at, meta, ids, (n, opt), g)| Op {
            at,
            meta,
            kind: match t {
                0 => OpKind::Del(ids),
                1 => OpKind::Trim { removed: n },
                2 => OpKind::SetId,
                3 => OpKind::Config {
                    retention_ms: opt.filter(|&v| v != u64::MAX),
                    retention_bytes: Some(n % 1000),
                },
                _ => OpKind::Group(g),
            },
        })
}

fn checkpoint() -> impl Strategy<Value = Checkpoint> {
    (
        (any::<u128>(), any::<u128>()),
        meta(),
        prop::collection::vec((any::<u128>(), any::<u64>()), 0..4),
        prop::collection::vec(any::<u128>(), 0..4),
        prop::collection::vec(group_op(), 0..12),
    )
        .prop_map(|((log_at, op_seq), meta, segs, deleted, ops)| {
            let mut groups = Groups::new();
            for g in ops {
                groups::apply(&mut groups, g);
            }
            Checkpoint {
                log_at,
                op_seq,
                meta,
                retention_ms: Some(log_at as u64 % 100),
                retention_bytes: None,
                segs: segs
                    .into_iter()
                    .map(|(base, live)| SegStat { base, live })
                    .collect(),
                deleted,
                groups,
            }
        })
}

/// A stream record input for `fuzz::stream_record`: kind byte + encoding.
fn stream_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(small_bytes(12), 0..6).prop_map(|mut pairs| {
            pairs.truncate(pairs.len() / 2 * 2);
            let mut out = vec![0];
            codec::encode_entry(&mut out, &pairs);
            out
        }),
        op().prop_map(|o| {
            let mut out = vec![1];
            out.extend_from_slice(&codec::encode_op(&o));
            out
        }),
        checkpoint().prop_map(|c| {
            let mut out = vec![3];
            out.extend_from_slice(&codec::encode_checkpoint(&c));
            out
        }),
    ]
}

fn check_stream(data: &[u8]) -> Result<(), TestCaseError> {
    let (_, used) = run("stream_record", data, fuzz::stream_record);
    prop_assert!(
        used <= bound(MIB, data),
        "allocated {used} bytes for {} input bytes",
        data.len()
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn stream_record_arbitrary_bytes(kind in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut data = vec![kind];
        if kind % 4 >= 2 {
            // Mostly a valid magic and version: past them is the body.
            data.extend_from_slice(codec::CHECKPOINT_MAGIC);
            data.extend_from_slice(&[2, 0, 0, 0]);
        }
        data.extend_from_slice(&body);
        check_stream(&data)?;
    }

    #[test]
    fn stream_record_mutated(data in stream_input(), muts in mutations()) {
        // Checkpoints keep magic and version; the entry fixes the CRC.
        let skip = if data[0] == 3 { 13 } else { 1 };
        check_stream(&damage(data, skip, &muts))?;
    }
}

#[test]
fn stream_records_undamaged_decode() {
    let mut e = vec![0];
    codec::encode_entry(&mut e, &[Bytes::from_static(b"f"), Bytes::new()]);
    assert!(fuzz::stream_record(&e));
    let mut c = vec![3];
    c.extend_from_slice(&codec::encode_checkpoint(&Checkpoint::default()));
    assert!(fuzz::stream_record(&c));
}

// --------------------------------------------------------------- logparse

fn check_logparse(data: &[u8]) -> Result<(), TestCaseError> {
    within_format_bound("logparse", data, fuzz::logparse)
}

fn check_miner(data: &[u8]) -> Result<(), TestCaseError> {
    // The built-in formats compile once, on first use: not the decoder's.
    let _ = redlog::logparse::builtin::get(b"hdfs");
    let (_, used) = run("logparse", data, fuzz::logparse);
    prop_assert!(
        used <= bound(MIB, data),
        "allocated {used} bytes for {} input bytes",
        data.len()
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn logparse_arbitrary_bytes(kind in any::<u8>(), body in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut data = vec![kind];
        data.push(1); // mostly a valid version
        data.extend_from_slice(&body);
        if kind % 3 == 0 {
            check_logparse(&data)?;
        } else {
            check_miner(&data)?;
        }
    }

    #[test]
    fn logparse_mutated_specs(spec in format_spec(), lines in lines(), muts in mutations()) {
        let mut data = vec![0];
        spec.encode(&mut data);
        for l in &lines {
            data.extend_from_slice(l.as_bytes());
            data.push(b'\n');
        }
        check_logparse(&damage(data, 1, &muts))?;
    }

    #[test]
    fn logparse_mutated_miner_states(
        kind in 1u8..3,
        cfg in miner_cfg(),
        lines in lines(),
        muts in mutations(),
    ) {
        let mut data = vec![kind];
        data.extend_from_slice(&miner_state(cfg, &lines));
        check_miner(&damage(data, 1, &muts))?;
    }
}

#[test]
fn logparse_undamaged_decode() {
    let mut data = vec![0];
    FormatSpec::new("<Level> <Content>").encode(&mut data);
    data.extend_from_slice(b"INFO a b c\n");
    assert!(fuzz::logparse(&data));
    let mut data = vec![1];
    data.extend_from_slice(&miner_state((0.4, 4, 100), &["a b".into(), "a c".into()]));
    assert!(fuzz::logparse(&data));
}

// ------------------------------------------- regressions: quadratic decoding

/// A buffer of many pipelined inline requests decodes in time linear in
/// its size. The NUL check used to search the whole buffer for a NUL
/// before each request, so 500k requests in one buffer scanned ~2.5e11
/// bytes (the watchdog stops that as a hang).
#[test]
fn pipelined_inline_requests_decode_in_linear_time() {
    let n = 500_000;
    let data = b"P\n".repeat(n);
    let (decoded, _) = run("pipelined inline", &data[..16], |_| {
        let mut buf = bytes::BytesMut::from(&data[..]);
        let mut decoder = redlog::protocol::Decoder::default();
        let limits = fuzz::request_limits(0);
        let mut count = 0;
        while let Ok(redlog::protocol::Parsed::Command { .. }) = decoder.parse(&mut buf, limits) {
            count += 1;
        }
        count
    });
    assert_eq!(decoded, n);
}

/// A multibulk request of many arguments arriving in many reads decodes
/// in time linear in its size: the decoder resumes after the headers it
/// already validated. It used to validate every header again on each
/// read, so 2M arguments in 4 KiB reads took ~3.4e9 header parses (the
/// watchdog stops that as a hang).
#[test]
fn multibulk_arriving_in_many_reads_decodes_in_linear_time() {
    let n = 2_000_000;
    let mut data = format!("*{n}\r\n").into_bytes();
    for _ in 0..n {
        data.extend_from_slice(b"$1\r\nx\r\n");
    }
    let (args, _) = run("multibulk in reads", &data[..16], |_| {
        let mut buf = bytes::BytesMut::new();
        let mut decoder = redlog::protocol::Decoder::default();
        let limits = fuzz::request_limits(0);
        for piece in data.chunks(4096) {
            buf.extend_from_slice(piece);
            match decoder.parse(&mut buf, limits) {
                Ok(redlog::protocol::Parsed::Incomplete) => {}
                Ok(redlog::protocol::Parsed::Command { args, .. }) => return args.len(),
                other => panic!("{other:?}"),
            }
        }
        0
    });
    assert_eq!(args, n);
}

// -------------------------------------------------------------------- rdb

/// An RDB value's DUMP body (type byte and object, without the footer).
fn rdb_input() -> impl Strategy<Value = Vec<u8>> {
    value().prop_filter_map("streams have no in-memory DUMP", |v| {
        let d = redlog::rdb::value::dump_value(&v)?;
        Some(d[..d.len() - 10].to_vec())
    })
}

fn check_rdb(data: &[u8]) -> Result<(), TestCaseError> {
    let (_, used) = run("rdb_value", data, fuzz::rdb_value);
    // LZF may expand 88x (a 3-byte back reference yields 264 bytes).
    prop_assert!(
        used <= bound(MIB, data) + 100 * data.len() as u64,
        "allocated {used} bytes for {} input bytes",
        data.len()
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn rdb_value_arbitrary_bytes(t in 0u8..20, body in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut data = vec![t];
        data.extend_from_slice(&body);
        check_rdb(&data)?;
    }

    #[test]
    fn rdb_value_mutated(data in rdb_input(), muts in mutations()) {
        check_rdb(&damage(data, 1, &muts))?;
    }
}

#[test]
fn rdb_values_undamaged_decode() {
    // A stream with a group, consumer and PEL, as written by rdb::stream.
    let id = |ms: u128| ms << 64;
    let s = redlog::rdb::stream::StreamValue {
        entries: vec![(id(1), vec![b"f".to_vec(), b"v".to_vec()])],
        last_id: id(1),
        first_id: id(1),
        max_deleted: 0,
        entries_added: 1,
        groups: vec![redlog::rdb::stream::GroupValue {
            name: b"g".to_vec(),
            last_id: id(1),
            entries_read: 1,
            pel: vec![(id(1), 5, 1)],
            consumers: vec![redlog::rdb::stream::ConsumerValue {
                name: b"c".to_vec(),
                seen_ms: 5,
                pel: vec![id(1)],
            }],
        }],
    };
    let mut w = redlog::rdb::Writer::new();
    redlog::rdb::stream::write(&mut w, &s);
    assert!(fuzz::rdb_value(&w.buf));
    let d = redlog::rdb::value::dump_value(&Value::str(&b"hello"[..])).unwrap();
    assert!(fuzz::rdb_value(&d));
}

// ------------------------------------------------------------ cluster bus

/// Valid bus messages of every type, encoded by `cluster::bus::encode`.
fn bus_message() -> impl Strategy<Value = Vec<u8>> {
    use redlog::cluster::bus::{self, Body, Ext, Gossip, Header, Message};
    let gossip =
        (any::<u8>(), any::<u32>(), any::<u16>(), any::<u16>()).prop_map(|(c, t, p, f)| Gossip {
            name: [b'a' + c % 26; 40],
            ping_sent: t,
            pong_received: t / 2,
            ip: bus::fixed(b"127.0.0.1"),
            port: p,
            cport: p.wrapping_add(10000),
            flags: f,
            pport: 0,
        });
    let body = prop_oneof![
        (
            prop::collection::vec(gossip, 0..4),
            prop::option::of(small_bytes(20))
        )
            .prop_map(|(g, h)| {
                let exts = h
                    .map(|h| {
                        vec![Ext::Hostname(
                            h.iter().map(|b| b.max(&1)).copied().collect(),
                        )]
                    })
                    .unwrap_or_default();
                (bus::PING, Body::Ping { gossip: g, exts })
            }),
        any::<u8>().prop_map(|c| (bus::FAIL, Body::Fail { about: [c; 40] })),
        (small_bytes(20), small_bytes(40)).prop_map(|(c, m)| (
            bus::PUBLISH,
            Body::Publish {
                channel: c.to_vec(),
                message: m.to_vec()
            }
        )),
        any::<u64>().prop_map(|e| (
            bus::UPDATE,
            Body::Update {
                config_epoch: e,
                name: [b'u'; 40],
                slots: Box::new([0x5a; bus::SLOT_BYTES])
            }
        )),
        Just((bus::MFSTART, Body::Empty)),
    ];
    (body, any::<u64>()).prop_map(|((kind, body), epoch)| {
        let mut header = Header::new(kind);
        header.current_epoch = epoch;
        header.sender = [b's'; 40];
        bus::encode(&Message { header, body })
    })
}

fn check_bus(data: &[u8]) -> Result<(), TestCaseError> {
    let (_, used) = run("cluster_bus", data, fuzz::cluster_bus);
    prop_assert!(
        used <= bound(MIB, data) + 4 * data.len() as u64,
        "allocated {used} bytes for {} input bytes",
        data.len()
    );
    Ok(())
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn cluster_bus_arbitrary_bytes(kind in 0u8..12, count in 0u8..3, body in prop::collection::vec(any::<u8>(), 0..400)) {
        // A plausible header (signature, version, type, count) over random
        // bytes, so the type-specific checks are reached.
        let mut data = vec![0u8; 2256];
        data[..4].copy_from_slice(b"RCmb");
        data[9] = 1;
        data[13] = kind;
        data[15] = count;
        data.extend_from_slice(&body);
        let n = data.len() as u32;
        data[4..8].copy_from_slice(&n.to_be_bytes());
        check_bus(&data)?;
        check_bus(&body)?;
    }

    #[test]
    fn cluster_bus_mutated(data in bus_message(), muts in mutations()) {
        check_bus(&damage(data, 0, &muts))?;
    }
}

#[test]
fn cluster_bus_undamaged_round_trips() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::default();
    for _ in 0..50 {
        let data = bus_message()
            .new_tree(&mut runner)
            .expect("strategy")
            .current();
        assert!(fuzz::cluster_bus(&data));
    }
}
