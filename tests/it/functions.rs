//! FUNCTION libraries are durable: restart, compaction and kill -9 keep
//! them (WAL effects 80-83, the base's library chunk), and an FCALL's
//! writes replay as one unit.

use crate::common;

use common::*;
use std::time::Duration;

const LIB1: &str = "#!lua name=lib1\nredis.register_function('bump', function(keys, args) redis.call('incr', keys[1]) redis.call('set', keys[2], args[1]) return redis.call('get', keys[1]) end)";
const LIB1_V2: &str = "#!lua name=lib1\nredis.register_function{function_name='bump2', callback=function(keys) return redis.call('incrby', keys[1], 10) end, description='v2'}";
const LIB2: &str =
    "#!lua name=lib2\nredis.register_function{function_name='ro', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}";
const LIB3: &str = "#!lua name=lib3\nredis.register_function('three', function() return 3 end)";

async fn q(c: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> redis::Value {
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query_async(c)
        .await
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// `FUNCTION LIST WITHCODE` as (library, code) pairs, sorted.
async fn libraries(c: &mut redis::aio::MultiplexedConnection) -> Vec<(String, String)> {
    let v: Vec<redis::Value> = redis::cmd("FUNCTION")
        .arg("LIST")
        .arg("WITHCODE")
        .query_async(c)
        .await
        .unwrap();
    let mut out = Vec::new();
    for lib in v {
        let m: std::collections::HashMap<String, redis::Value> =
            redis::from_redis_value(lib).unwrap();
        let name: String = redis::from_redis_value(m["library_name"].clone()).unwrap();
        let code: String = redis::from_redis_value(m["library_code"].clone()).unwrap();
        out.push((name, code));
    }
    out.sort();
    out
}

async fn wait_rewrite_done(s: &redlog::server::ServerHandle) {
    let p = s.shared().persist.clone().expect("persistence on");
    for _ in 0..2000 {
        if !p
            .rewrite_in_progress
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("rewrite did not finish");
}

#[tokio::test]
async fn libraries_survive_restart_and_compaction() {
    let dir = temp_dir();
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    q(&mut c, &["FUNCTION", "LOAD", LIB1]).await;
    q(&mut c, &["FUNCTION", "LOAD", LIB2]).await;
    q(&mut c, &["FUNCTION", "LOAD", LIB3]).await;
    q(&mut c, &["FUNCTION", "DELETE", "lib3"]).await;
    let r: i64 = redis::cmd("FCALL")
        .arg("bump")
        .arg(2)
        .arg("n")
        .arg("s")
        .arg("x")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(r, 1);
    let before = libraries(&mut c).await;
    assert_eq!(before.len(), 2);
    drop(c);
    s.shutdown().await;

    // Restart: the libraries and the function's writes are back.
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    assert_eq!(libraries(&mut c).await, before);
    let r: i64 = redis::cmd("FCALL")
        .arg("bump")
        .arg(2)
        .arg("n")
        .arg("s")
        .arg("y")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(r, 2, "the counter survived and the function still runs");

    // A compaction, then changes after the base: LOAD REPLACE, RESTORE.
    let dump: Vec<u8> = redis::cmd("FUNCTION")
        .arg("DUMP")
        .query_async(&mut c)
        .await
        .unwrap();
    let _: String = redis::cmd("BGREWRITEAOF")
        .query_async(&mut c)
        .await
        .unwrap();
    wait_rewrite_done(&s).await;
    q(&mut c, &["FUNCTION", "LOAD", "REPLACE", LIB1_V2]).await;
    q(&mut c, &["FUNCTION", "FLUSH"]).await;
    let ok: String = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&dump)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(ok, "OK");
    q(&mut c, &["FUNCTION", "LOAD", "REPLACE", LIB1_V2]).await;
    let after = libraries(&mut c).await;
    assert_eq!(
        after,
        vec![
            ("lib1".to_string(), LIB1_V2.to_string()),
            ("lib2".to_string(), LIB2.to_string())
        ]
    );
    drop(c);
    s.shutdown().await;

    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    assert_eq!(libraries(&mut c).await, after);
    let r: i64 = redis::cmd("FCALL")
        .arg("bump2")
        .arg(1)
        .arg("n")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(r, 12);
    let v: Option<String> = redis::cmd("FCALL_RO")
        .arg("ro")
        .arg(1)
        .arg("s")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("y"));
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(info.contains("number_of_functions:2\r\n"), "{info}");
    assert!(info.contains("number_of_libraries:2\r\n"), "{info}");

    // A flush is durable too, and FLUSHALL keeps the libraries.
    q(&mut c, &["FLUSHALL"]).await;
    assert_eq!(libraries(&mut c).await.len(), 2);
    q(&mut c, &["FUNCTION", "FLUSH"]).await;
    drop(c);
    s.shutdown().await;
    let s = start_in(&dir, &[]).await;
    let mut c = client(s.local_addr()).await;
    assert!(libraries(&mut c).await.is_empty());
    drop(c);
    s.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// kill -9 after acknowledged FUNCTION LOADs and FCALLs (appendfsync
/// always): the libraries and every acknowledged call's writes, whole,
/// are there after the restart.
#[test]
fn kill_9_keeps_libraries_and_whole_fcall_units() {
    let dir = temp_dir();
    let port = free_port();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_redlog"))
            .args([
                "--port",
                &port.to_string(),
                "--dir",
                dir.to_str().unwrap(),
                "--appendfsync",
                "always",
            ])
            .args(["--loglevel", "warning"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = KillOnDrop(spawn());
    let mut c = wait_ping(port);
    let name: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIB1)
        .query(&mut c)
        .unwrap();
    assert_eq!(name, "lib1");
    let name: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(LIB2)
        .query(&mut c)
        .unwrap();
    assert_eq!(name, "lib2");
    for i in 1..=100i64 {
        let r: i64 = redis::cmd("FCALL")
            .arg("bump")
            .arg(2)
            .arg("n")
            .arg("last")
            .arg(i)
            .query(&mut c)
            .unwrap();
        assert_eq!(r, i);
    }
    child.0.kill().unwrap(); // SIGKILL
    child.0.wait().unwrap();

    let mut child = KillOnDrop(spawn());
    let mut c = wait_ping(port);
    let n: i64 = redis::cmd("GET").arg("n").query(&mut c).unwrap();
    let last: i64 = redis::cmd("GET").arg("last").query(&mut c).unwrap();
    assert_eq!((n, last), (100, 100), "every call's two writes");
    let r: i64 = redis::cmd("FCALL")
        .arg("bump")
        .arg(2)
        .arg("n")
        .arg("last")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(r, 101);
    let v: i64 = redis::cmd("FCALL_RO")
        .arg("ro")
        .arg(1)
        .arg("n")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, 101);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Over `maxmemory`, an FCALL is refused at once unless its function is
/// declared `allow-oom` or `no-writes` (Redis's `fcallGetCommandFlags`);
/// the texts were compared with redis-server 7.0.15.
#[tokio::test]
async fn fcall_over_maxmemory_follows_the_function_flags() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    let lib = "#!lua name=oom\n\
        redis.register_function('w', function(k) return redis.call('set', k[1], 'v') end)\n\
        redis.register_function{function_name='ao', callback=function(k) return redis.call('get', k[1]) end, flags={'allow-oom'}}\n\
        redis.register_function{function_name='nw', callback=function(k) return redis.call('get', k[1]) end, flags={'no-writes'}}";
    q(&mut c, &["FUNCTION", "LOAD", lib]).await;
    q(&mut c, &["CONFIG", "SET", "maxmemory", "1"]).await;
    let e = redis::cmd("FCALL")
        .arg("w")
        .arg(1)
        .arg("a")
        .query_async::<redis::Value>(&mut c)
        .await
        .unwrap_err();
    // Refused before the function runs (not by its SET, which would add
    // the script's name and line).
    assert_eq!(e.code(), Some("OOM"), "{e}");
    assert_eq!(
        e.detail(),
        Some("command not allowed when used memory > 'maxmemory'."),
        "{e}"
    );
    assert_eq!(
        q(&mut c, &["FCALL", "ao", "1", "a"]).await,
        redis::Value::Nil
    );
    assert_eq!(
        q(&mut c, &["FCALL", "nw", "1", "a"]).await,
        redis::Value::Nil
    );
    assert_eq!(
        q(&mut c, &["FCALL_RO", "nw", "1", "a"]).await,
        redis::Value::Nil
    );
    q(&mut c, &["CONFIG", "SET", "maxmemory", "0"]).await;
    assert_eq!(
        q(&mut c, &["FCALL", "w", "1", "a"]).await,
        redis::Value::Okay
    );
    s.shutdown().await;
}

/// PFCOUNT is `may_replicate` in Redis (it may rewrite the cached
/// cardinality), so read-only scripts and functions may not call it
/// (found by difffuzz seed 4; texts from redis-server 7.0.15).
#[tokio::test]
async fn read_only_scripts_refuse_pfcount() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    let lib = "#!lua name=ro\nredis.register_function{function_name='r', callback=function(k, a) return redis.pcall(unpack(a)) end, flags={'no-writes'}}";
    q(&mut c, &["FUNCTION", "LOAD", lib]).await;
    for call in [
        &["FCALL_RO", "r", "0", "PFCOUNT", "h"][..],
        &[
            "EVAL_RO",
            "return redis.pcall('PFCOUNT', KEYS[1])",
            "1",
            "h",
        ],
    ] {
        let mut k = redis::cmd(call[0]);
        for a in &call[1..] {
            k.arg(*a);
        }
        let e = k.query_async::<redis::Value>(&mut c).await.unwrap_err();
        assert_eq!(
            e.detail(),
            Some("Write commands are not allowed from read-only scripts."),
            "{call:?}: {e}"
        );
    }
    s.shutdown().await;
}
