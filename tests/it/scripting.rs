//! Lua scripting beyond the golden replies: a script's effects are one WAL
//! unit (all or nothing after a torn write), writes of a failing script
//! survive a restart, keyspace notifications from script writes, and the
//! `redis` crate's `Script` (EVALSHA with the EVAL fallback).

use crate::common;

use common::*;
use redlog::server::ServerHandle;
use std::path::{Path, PathBuf};

async fn cmd(
    c: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<redis::Value> {
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query_async(c).await
}

fn newest_log(dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a WAL segment")
}

fn script_keys(s: &ServerHandle) -> usize {
    dump_all(s)
        .iter()
        .filter(|(_, k, _, _)| k.starts_with(b"sk"))
        .count()
}

const WRITE_100: &str =
    "for i = 1, 100 do redis.call('set', 'sk' .. i, string.rep('v', 50)) end return 1";

#[tokio::test]
async fn script_effects_are_one_wal_unit() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    cmd(&mut c, &["SET", "before", "1"]).await.unwrap();
    let log = newest_log(&dir);
    let start = std::fs::metadata(&log).unwrap().len() as usize;
    cmd(&mut c, &["EVAL", WRITE_100, "0"]).await.unwrap();
    let end = std::fs::metadata(&log).unwrap().len() as usize;
    assert!(end > start + 100 * 50, "the script's writes are logged");
    drop(c);
    s.shutdown().await;
    let whole = std::fs::read(&log).unwrap();
    // Cut the log anywhere inside the script's record: replay applies none
    // of its writes; whole, it applies all of them.
    for cut in (start..=end).step_by(97).chain([end]) {
        std::fs::write(&log, &whole[..cut]).unwrap();
        let s = start_in(&dir, &[]).await;
        let n = script_keys(&s);
        if cut == end {
            assert_eq!(n, 100, "whole unit replayed");
        } else {
            assert_eq!(n, 0, "cut at {cut}: a torn unit is not replayed");
        }
        assert_eq!(dump_all(&s).len() - n, 1, "the SET before stays");
        s.shutdown().await;
    }
}

#[tokio::test]
async fn failing_script_keeps_its_writes_across_restart() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    cmd(&mut c, &["SET", "str", "notanumber"]).await.unwrap();
    let r = cmd(
        &mut c,
        &[
            "EVAL",
            "redis.call('set', 'half', '1'); redis.call('incr', 'str'); redis.call('set', 'half', '2')",
            "0",
        ],
    )
    .await;
    assert!(r.is_err());
    drop(c);
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    let v: Option<String> = redis::cmd("GET")
        .arg("half")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("1"));
    s.shutdown().await;
}

#[tokio::test]
async fn script_writes_notify() {
    let s = start_with(&[("notify-keyspace-events", "KEA")]).await;
    let mut tap = Events::tap(s.local_addr()).await;
    let mut c = client(s.local_addr()).await;
    cmd(
        &mut c,
        &[
            "EVAL",
            "redis.call('set', KEYS[1], 'v'); redis.call('rpush', 'l', 'a'); return redis.call('del', KEYS[1])",
            "1",
            "k",
        ],
    )
    .await
    .unwrap();
    assert_eq!(tap.take().await, ["set:k", "rpush:l", "del:k"]);
    s.shutdown().await;
}

#[tokio::test]
async fn redis_crate_script_uses_evalsha_then_eval() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    let script = redis::Script::new(
        "local v = redis.call('incrby', KEYS[1], ARGV[1]); redis.call('expire', KEYS[1], 100); return v",
    );
    // Not cached yet: the crate's EVALSHA gets NOSCRIPT and falls back to EVAL.
    let a: i64 = script.key("ctr").arg(5).invoke_async(&mut c).await.unwrap();
    let b: i64 = script.key("ctr").arg(2).invoke_async(&mut c).await.unwrap();
    assert_eq!((a, b), (5, 7));
    let ttl: i64 = redis::cmd("TTL")
        .arg("ctr")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 100);
    let exists: Vec<i64> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(script.get_hash())
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(exists, [1]);
    s.shutdown().await;
}

/// A runaway script cannot take the server's memory: the Lua heap is
/// bounded (`maxmemory`, at least 32 MiB, here 1mb gives 32 MiB), the script
/// fails with Lua's "not enough memory", and the VM goes on: its garbage is
/// collected and the next scripts run. Functions have the same bound.
#[tokio::test]
async fn runaway_script_hits_the_lua_memory_limit_and_the_vm_survives() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    // A read-only function (FCALL of a writing one is refused over
    // maxmemory), loaded before the limit is set.
    cmd(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=big\nredis.register_function{function_name='grow', callback=function() local t = {} for i = 1, 1e8 do t[i] = i end return #t end, flags={'no-writes'}}",
        ],
    )
    .await
    .unwrap();
    // CONFIG SET applies the bound to the VMs at their next run.
    cmd(&mut c, &["CONFIG", "SET", "maxmemory", "1mb"])
        .await
        .unwrap();
    let body = "local t = {} for i = 1, 1e8 do t[i] = i end return #t";
    let sha = redlog::commands::lua::sha1hex(body.as_bytes());
    let e = cmd(&mut c, &["EVAL", body, "0"]).await.unwrap_err();
    assert_eq!(
        e.detail(),
        // Redis's form for a non-table error (`luaCallFunction`): the
        // sha, the message, and the newline it appends made a space.
        Some(format!("Error running script {sha}, not enough memory ").as_str()),
        "{e:?}"
    );
    // Growing a string is bounded too.
    let e = cmd(
        &mut c,
        &["EVAL", "local s = 'x' while true do s = s .. s end", "0"],
    )
    .await
    .unwrap_err();
    assert!(
        e.detail()
            .is_some_and(|d| d.ends_with("not enough memory ")),
        "{e:?}"
    );
    // The VM is usable, and its heap is back under the bound.
    assert_eq!(
        cmd(
            &mut c,
            &[
                "EVAL",
                "local t = {} for i = 1, 1000 do t[i] = i end return #t",
                "0"
            ]
        )
        .await
        .unwrap(),
        redis::Value::Int(1000)
    );
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut c)
        .await
        .unwrap();
    let lua: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory_vm_eval:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(lua < 8 << 20, "used_memory_vm_eval {lua}");
    // FCALL: the functions VM has the same bound.
    let e = cmd(&mut c, &["FCALL", "grow", "0"]).await.unwrap_err();
    assert!(
        e.detail()
            .is_some_and(|d| d.ends_with("not enough memory ")),
        "{e:?}"
    );
    assert_eq!(
        cmd(&mut c, &["EVAL", "return 7", "0"]).await.unwrap(),
        redis::Value::Int(7)
    );
    cmd(&mut c, &["CONFIG", "SET", "maxmemory", "0"])
        .await
        .unwrap();
    s.shutdown().await;
}
