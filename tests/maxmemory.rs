//! The memory limit (issue 14 item 4): `maxmemory`, the eight
//! `maxmemory-policy` values, `-OOM` for denyoom commands, evictions logged
//! in the WAL and notified, OBJECT FREQ / IDLETIME, INFO and CONFIG.
//! Replies checked against redis-server 7.0.15.
//!
//! `used_memory` is the process's (jemalloc's allocated bytes), so this file
//! is a test binary of its own, not a module of `tests/it/` (the servers of
//! the tests running there in parallel would move the gauge), its tests run
//! one at a time (`SERIAL`) and set limits relative to the memory in use
//! when they start, with margins of hundreds of KB.

#[path = "it/common/mod.rs"]
mod common;
use common::*;
use redis::aio::MultiplexedConnection;
use std::collections::HashSet;
use std::time::Duration;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const OOM: &str = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";

async fn q<T: redis::FromRedisValue>(
    c: &mut MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<T> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(c).await
}

async fn ok(c: &mut MultiplexedConnection, args: &[&str]) {
    let r: redis::Value = q(c, args).await.unwrap();
    assert!(
        !matches!(r, redis::Value::ServerError(_)),
        "{args:?}: {r:?}"
    );
}

/// A field of INFO.
async fn info(c: &mut MultiplexedConnection, field: &str) -> String {
    let text: String = q(c, &["INFO", "everything"]).await.unwrap();
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("INFO has no {field}"))
        .to_string()
}

async fn used_memory(c: &mut MultiplexedConnection) -> u64 {
    info(c, "used_memory").await.parse().unwrap()
}

/// `n` keys `{prefix}{i}` of `size` bytes, with `EX ttl` when given.
async fn fill(
    c: &mut MultiplexedConnection,
    prefix: &str,
    n: usize,
    size: usize,
    ttl: Option<u64>,
) {
    let value = "x".repeat(size);
    let mut pipe = redis::pipe();
    for i in 0..n {
        let key = format!("{prefix}{i}");
        match ttl {
            Some(t) => pipe
                .cmd("SET")
                .arg(&key)
                .arg(&value)
                .arg("EX")
                .arg(t + i as u64),
            None => pipe.cmd("SET").arg(&key).arg(&value),
        };
        pipe.ignore();
    }
    let () = pipe.query_async(c).await.unwrap();
}

/// Which of `{prefix}0..n` still exist.
async fn present(c: &mut MultiplexedConnection, prefix: &str, n: usize) -> Vec<bool> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let e: i64 = q(c, &["EXISTS", &format!("{prefix}{i}")]).await.unwrap();
        out.push(e == 1);
    }
    out
}

/// Evicts down to `below` bytes under the memory in use now, then lifts
/// the limit (so later commands evict nothing more).
async fn evict_below_used(c: &mut MultiplexedConnection, below: u64) {
    limit_below_used(c, below).await;
    ok(c, &["CONFIG", "SET", "maxmemory", "0"]).await;
}

/// Lowers `maxmemory` to `below` bytes under the memory in use now.
async fn limit_below_used(c: &mut MultiplexedConnection, below: u64) -> u64 {
    let used = used_memory(c).await;
    let limit = used - below;
    ok(c, &["CONFIG", "SET", "maxmemory", &limit.to_string()]).await;
    // Evictions run before every command (and after CONFIG SET's batch).
    ok(c, &["PING"]).await;
    limit
}

/// The reproduction: with `maxmemory 10mb` and noeviction, 50k
/// SETs of 1 KB all succeeded. (10 MB over what the test process uses
/// when it starts: the memory counted is the whole process's.)
#[tokio::test]
async fn writes_past_maxmemory_get_oom_under_noeviction() {
    let _serial = SERIAL.lock().await;
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    let limit = used_memory(&mut c).await + (10 << 20);
    ok(&mut c, &["CONFIG", "SET", "maxmemory", &limit.to_string()]).await;
    let value = "v".repeat(1024);
    let mut refused_at = None;
    for i in 0..50_000 {
        let r: redis::RedisResult<()> = q(&mut c, &["SET", &format!("k{i}"), &value]).await;
        if let Err(e) = r {
            assert_eq!(e.code(), Some("OOM"), "{e}");
            refused_at = Some(i);
            break;
        }
    }
    let refused_at = refused_at.expect("a SET past maxmemory is refused");
    assert!(
        (5_000..20_000).contains(&refused_at),
        "refused after {refused_at} SETs"
    );
    let dbsize: usize = q(&mut c, &["DBSIZE"]).await.unwrap();
    assert_eq!(dbsize, refused_at);

    // Exact error bytes, for denyoom commands only; reads and DEL work.
    let mut raw = Raw::connect(s.local_addr()).await;
    let limit = limit_below_used(&mut c, 512 << 10).await;
    assert_eq!(raw_cmd(&mut raw, &["SET", "new", "1"]).await, OOM);
    assert_eq!(raw_cmd(&mut raw, &["INCR", "k1"]).await, OOM);
    assert_eq!(raw_cmd(&mut raw, &["RPUSH", "l", "a"]).await, OOM);
    assert_eq!(
        raw_cmd(&mut raw, &["GET", "k0"]).await,
        format!("${}\r\n{value}\r\n", value.len())
    );
    assert_eq!(raw_cmd(&mut raw, &["DEL", "k0"]).await, ":1\r\n");
    assert_eq!(raw_cmd(&mut raw, &["EXPIRE", "k1", "100"]).await, ":1\r\n");
    // Inside MULTI every queued command is refused (Redis's
    // processCommand), and EXEC then aborts; DISCARD works.
    assert_eq!(raw_cmd(&mut raw, &["MULTI"]).await, "+OK\r\n");
    assert_eq!(raw_cmd(&mut raw, &["GET", "k2"]).await, OOM);
    assert_eq!(
        raw_cmd(&mut raw, &["EXEC"]).await,
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(raw_cmd(&mut raw, &["MULTI"]).await, "+OK\r\n");
    assert_eq!(
        raw_cmd(&mut raw, &["SAVE"]).await,
        "-ERR Command not allowed inside a transaction\r\n"
    );
    assert_eq!(raw_cmd(&mut raw, &["DISCARD"]).await, "+OK\r\n");
    assert_eq!(info(&mut c, "evicted_keys").await, "0");
    assert_eq!(info(&mut c, "maxmemory").await, limit.to_string());
    assert_eq!(info(&mut c, "maxmemory_policy").await, "noeviction");
    assert!(
        info(&mut c, "total_error_replies")
            .await
            .parse::<u64>()
            .unwrap()
            >= 4,
        "OOM replies are errors"
    );

    // Freeing memory (DEL, FLUSHALL are not denyoom) makes room again.
    ok(&mut c, &["FLUSHALL"]).await;
    assert_eq!(raw_cmd(&mut raw, &["SET", "new", "1"]).await, "+OK\r\n");
    drop(c);
    s.shutdown().await;
}

/// The volatile policies evict only keys with a TTL, and refuse writes
/// once none is left; volatile-ttl evicts the nearest expiry first.
#[tokio::test]
async fn volatile_policies_evict_only_keys_with_a_ttl() {
    let _serial = SERIAL.lock().await;
    for policy in [
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        let s = start_with(&[
            ("maxmemory-policy", policy),
            ("maxmemory-eviction-tenacity", "100"),
            // More samples than keys: the pool sees every key, so
            // volatile-ttl is exact.
            ("maxmemory-samples", "1000"),
        ])
        .await;
        let mut c = client(s.local_addr()).await;
        fill(&mut c, "keep:", 100, 16 << 10, None).await;
        fill(&mut c, "vol:", 100, 16 << 10, Some(10_000)).await;
        // Some of the keys with a TTL must go. (How many depends on what
        // each deletion frees: values may share their request buffer.)
        evict_below_used(&mut c, 640 << 10).await;
        assert!(
            present(&mut c, "keep:", 100).await.iter().all(|p| *p),
            "{policy}"
        );
        let vol = present(&mut c, "vol:", 100).await;
        let gone = vol.iter().filter(|p| !**p).count();
        assert!((1..100).contains(&gone), "{policy}: {gone} evicted");
        assert_eq!(info(&mut c, "evicted_keys").await, gone.to_string());
        if policy == "volatile-ttl" {
            // vol:i expires at 10000 + i seconds: the first ones go.
            assert!(vol[..gone].iter().all(|p| !p), "{vol:?}");
            assert!(vol[gone..].iter().all(|p| *p), "{vol:?}");
        }
        // Below what deleting every key could free: all keys with a TTL go,
        // then writes are refused.
        ok(&mut c, &["CONFIG", "SET", "maxmemory", "1"]).await;
        assert!(
            present(&mut c, "vol:", 100).await.iter().all(|p| !p),
            "{policy}"
        );
        assert!(
            present(&mut c, "keep:", 100).await.iter().all(|p| *p),
            "{policy}"
        );
        let e = q::<()>(&mut c, &["SET", "new", "v"]).await.unwrap_err();
        assert_eq!(e.code(), Some("OOM"), "{policy}");
        ok(&mut c, &["CONFIG", "SET", "maxmemory", "0"]).await;
        assert_eq!(info(&mut c, "evicted_keys").await, "100");
        drop(c);
        s.shutdown().await;
    }
}

/// allkeys-lru evicts keys idle for longer before recently touched ones;
/// OBJECT IDLETIME shows the access times it uses.
#[tokio::test]
async fn allkeys_lru_keeps_recently_used_keys() {
    let _serial = SERIAL.lock().await;
    let s = start_with(&[
        ("maxmemory-policy", "allkeys-lru"),
        ("maxmemory-eviction-tenacity", "100"),
    ])
    .await;
    let mut c = client(s.local_addr()).await;
    fill(&mut c, "k:", 400, 16 << 10, None).await;
    // Access times have a resolution of one second.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for i in 0..100 {
        let _: String = q(&mut c, &["GET", &format!("k:{i}")]).await.unwrap();
    }
    let idle: i64 = q(&mut c, &["OBJECT", "IDLETIME", "k:350"]).await.unwrap();
    assert!(idle >= 2, "idle {idle}");
    let idle: i64 = q(&mut c, &["OBJECT", "IDLETIME", "k:50"]).await.unwrap();
    assert_eq!(idle, 0);
    let mut raw = Raw::connect(s.local_addr()).await;
    assert_eq!(raw_cmd(&mut raw, &["OBJECT", "FREQ", "k:50"]).await, "-ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.\r\n");
    // Much less than the 300 untouched keys hold must go (default 5
    // samples, pool of 16).
    evict_below_used(&mut c, 1536 << 10).await;
    let p = present(&mut c, "k:", 400).await;
    let touched = p[..100].iter().filter(|x| **x).count();
    let untouched = p[100..].iter().filter(|x| **x).count();
    assert!(untouched < 300, "no key evicted");
    assert_eq!(touched, 100, "recently used keys evicted");
    drop(c);
    s.shutdown().await;
}

/// allkeys-lfu evicts rarely used keys first; OBJECT FREQ is the LFU
/// counter (new keys 5, +1 per access with lfu-log-factor 0), and OBJECT
/// IDLETIME is refused under LFU.
#[tokio::test]
async fn allkeys_lfu_keeps_frequently_used_keys() {
    let _serial = SERIAL.lock().await;
    let s = start_with(&[
        ("maxmemory-policy", "allkeys-lfu"),
        ("maxmemory-eviction-tenacity", "100"),
        ("lfu-log-factor", "0"),
        // No decay: a minute boundary during the test changes nothing.
        ("lfu-decay-time", "0"),
    ])
    .await;
    let mut c = client(s.local_addr()).await;
    fill(&mut c, "k:", 400, 16 << 10, None).await;
    for _ in 0..10 {
        for i in 0..100 {
            let _: String = q(&mut c, &["GET", &format!("k:{i}")]).await.unwrap();
        }
    }
    let f: i64 = q(&mut c, &["OBJECT", "FREQ", "k:0"]).await.unwrap();
    assert_eq!(f, 15);
    let f: i64 = q(&mut c, &["OBJECT", "FREQ", "k:350"]).await.unwrap();
    assert_eq!(f, 5);
    // OBJECT does not count as an access; an overwrite keeps the counter.
    let f: i64 = q(&mut c, &["OBJECT", "FREQ", "k:350"]).await.unwrap();
    assert_eq!(f, 5);
    ok(&mut c, &["SET", "k:0", &"y".repeat(16 << 10)]).await;
    let f: i64 = q(&mut c, &["OBJECT", "FREQ", "k:0"]).await.unwrap();
    assert!(f >= 15, "{f}");
    let mut raw = Raw::connect(s.local_addr()).await;
    assert_eq!(raw_cmd(&mut raw, &["OBJECT", "IDLETIME", "k:0"]).await, "-ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.\r\n");
    let none: Option<i64> = q(&mut c, &["OBJECT", "FREQ", "nokey"]).await.unwrap();
    assert_eq!(none, None);

    // Much less than the 300 cold keys hold must go.
    evict_below_used(&mut c, 1536 << 10).await;
    let p = present(&mut c, "k:", 400).await;
    let hot = p[..100].iter().filter(|x| **x).count();
    let cold = p[100..].iter().filter(|x| **x).count();
    assert!(cold < 300, "no key evicted");
    assert_eq!(hot, 100, "frequently used keys evicted");
    drop(c);
    s.shutdown().await;
}

/// With the default lfu-log-factor (10) the first access of a new key
/// always counts (probability 1 at LFU_INIT_VAL), as in Redis.
#[tokio::test]
async fn lfu_counter_of_a_new_key() {
    let _serial = SERIAL.lock().await;
    let s = start_with(&[("maxmemory-policy", "volatile-lfu")]).await;
    let mut c = client(s.local_addr()).await;
    ok(&mut c, &["SET", "a", "1"]).await;
    let f: i64 = q(&mut c, &["OBJECT", "FREQ", "a"]).await.unwrap();
    assert_eq!(f, 5);
    let _: String = q(&mut c, &["GET", "a"]).await.unwrap();
    let f: i64 = q(&mut c, &["OBJECT", "FREQ", "a"]).await.unwrap();
    assert_eq!(f, 6);
    drop(c);
    s.shutdown().await;
}

/// Evicted keys: counted in INFO, notified as `evicted` (class e), logged
/// as DELs in the WAL so they stay gone after a restart.
#[tokio::test]
async fn evicted_keys_are_notified_and_stay_gone_after_restart() {
    let _serial = SERIAL.lock().await;
    let dir = temp_dir();
    let s = start_in(
        &dir,
        &[
            ("maxmemory-policy", "allkeys-random"),
            ("maxmemory-eviction-tenacity", "100"),
            ("notify-keyspace-events", "Ee"),
        ],
    )
    .await;
    let mut c = client(s.local_addr()).await;
    let mut events = Events::tap(s.local_addr()).await;
    fill(&mut c, "k:", 300, 4096, None).await;
    evict_below_used(&mut c, 400 << 10).await;
    let evicted: HashSet<String> = events
        .take()
        .await
        .into_iter()
        .map(|e| {
            e.strip_prefix("evicted:")
                .unwrap_or_else(|| panic!("unexpected event {e}"))
                .to_string()
        })
        .collect();
    assert!(evicted.len() >= 10, "{} evicted", evicted.len());
    assert_eq!(
        info(&mut c, "evicted_keys").await,
        evicted.len().to_string()
    );
    let p = present(&mut c, "k:", 300).await;
    for (i, here) in p.iter().enumerate() {
        assert_eq!(*here, !evicted.contains(&format!("k:{i}")), "k:{i}");
    }
    drop(c);
    drop(events);
    s.shutdown().await;

    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    assert_eq!(
        present(&mut c, "k:", 300).await,
        p,
        "evicted keys came back"
    );
    drop(c);
    s.shutdown().await;
}

/// INFO fields and CONFIG parameters of the memory limit, as Redis 7.0.
#[tokio::test]
async fn info_and_config_of_the_memory_limit() {
    let _serial = SERIAL.lock().await;
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    let mut raw = Raw::connect(s.local_addr()).await;
    let got: Vec<String> = q(
        &mut c,
        &[
            "CONFIG",
            "GET",
            "maxmemory-samples",
            "maxmemory-eviction-tenacity",
            "lfu-log-factor",
            "lfu-decay-time",
        ],
    )
    .await
    .unwrap();
    let got: HashSet<String> = got.chunks(2).map(|p| p.join("=")).collect();
    let want: HashSet<String> = [
        "maxmemory-samples=5",
        "maxmemory-eviction-tenacity=10",
        "lfu-log-factor=10",
        "lfu-decay-time=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(got, want);
    for (args, reply) in [
        (
            &["CONFIG", "SET", "maxmemory-samples", "0"][..],
            "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-samples') - argument must be between 1 and 2147483647 inclusive\r\n",
        ),
        (
            &["CONFIG", "SET", "maxmemory-eviction-tenacity", "101"],
            "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-eviction-tenacity') - argument must be between 0 and 100 inclusive\r\n",
        ),
        (
            &["CONFIG", "SET", "lfu-log-factor", "-1"],
            "-ERR CONFIG SET failed (possibly related to argument 'lfu-log-factor') - argument must be between 0 and 2147483647 inclusive\r\n",
        ),
        (&["CONFIG", "SET", "maxmemory-samples", "65"], "+OK\r\n"),
        (
            &["CONFIG", "SET", "maxmemory", "10mb", "maxmemory-policy", "allkeys-lru"],
            "+OK\r\n",
        ),
    ] {
        assert_eq!(raw_cmd(&mut raw, args).await, reply, "{args:?}");
    }
    assert_eq!(info(&mut c, "maxmemory").await, "10485760");
    assert_eq!(info(&mut c, "maxmemory_human").await, "10.00M");
    assert_eq!(info(&mut c, "maxmemory_policy").await, "allkeys-lru");
    assert_eq!(info(&mut c, "evicted_keys").await, "0");
    ok(&mut c, &["CONFIG", "SET", "maxmemory", "0"]).await;
    let not_counted: u64 = info(&mut c, "mem_not_counted_for_evict")
        .await
        .parse()
        .unwrap();
    assert!(not_counted < 1 << 20);
    // used_memory is jemalloc's allocated bytes: it follows the data.
    let before = used_memory(&mut c).await;
    fill(&mut c, "k:", 1000, 1024, None).await;
    let after = used_memory(&mut c).await;
    assert!(after >= before + 1000 * 1024, "{before} -> {after}");
    drop(c);
    s.shutdown().await;
}

/// Keys loaded from the WAL start as new keys under the configured policy
/// (Redis's loaded objects do): LFU counter 5, not an LRU second read as
/// a counter.
#[tokio::test]
async fn loaded_keys_start_with_a_new_keys_lfu_counter() {
    let _serial = SERIAL.lock().await;
    let dir = temp_dir();
    let opts = [("maxmemory-policy", "allkeys-lfu"), ("lfu-decay-time", "0")];
    let s = start_in(&dir, &opts).await;
    let mut c = client(s.local_addr()).await;
    ok(&mut c, &["SET", "a", "1"]).await;
    ok(&mut c, &["SET", "b", "1"]).await;
    drop(c);
    s.shutdown().await;
    let s = start_in(&dir, &opts).await;
    let mut c = client(s.local_addr()).await;
    for k in ["a", "b"] {
        let f: i64 = q(&mut c, &["OBJECT", "FREQ", k]).await.unwrap();
        assert_eq!(f, 5, "{k}");
    }
    drop(c);
    s.shutdown().await;
}
