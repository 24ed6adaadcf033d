//! Busy scripts (Redis 7.0's `busy-reply-threshold`): while a script runs
//! past the threshold, other clients get BUSY and the `allow-busy`
//! commands are served; SCRIPT KILL stops a script that has not written
//! (its caller gets Redis's error), UNKILLABLE otherwise; SHUTDOWN NOSAVE
//! stops the script and the server, with the script's effects unlogged.
//!
//! The threshold is 100 ms to keep the tests short; nothing asserts a
//! duration: the tests wait until a state is reached ("eventually").
//! The runtime is multi-threaded, as the server's own (`io-threads`).

use crate::common;

use common::*;
use std::time::Duration;
use tokio::io::AsyncReadExt;

const LOOP: &str = "local i = 0 while true do i = i + 1 end";
const WRITE_THEN_LOOP: &str = "redis.call('set', 'w', '1') local i = 0 while true do i = i + 1 end";
const BUSY: &str =
    "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";

/// Reads one reply line (up to its CRLF); empty when the connection closed.
async fn line(c: &mut Raw) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    let read = async {
        while !out.ends_with(b"\r\n") {
            match c.stream.read(&mut b).await {
                Ok(0) | Err(_) => break,
                Ok(_) => out.push(b[0]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("a reply within a minute");
    String::from_utf8_lossy(&out).into_owned()
}

async fn send(c: &mut Raw, args: &[&str]) {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    c.send(&resp(&a)).await;
}

async fn ask(c: &mut Raw, args: &[&str]) -> String {
    send(c, args).await;
    line(c).await
}

/// Sends `body` as an EVAL on a new connection (its reply is not read),
/// then waits on another connection until GET is answered BUSY.
async fn start_busy(addr: std::net::SocketAddr, body: &str) -> (Raw, Raw) {
    let mut runner = Raw::connect(addr).await;
    send(&mut runner, &["EVAL", body, "0"]).await;
    let mut other = Raw::connect(addr).await;
    loop {
        let r = ask(&mut other, &["GET", "k"]).await;
        if r == BUSY {
            break;
        }
        assert_eq!(
            r, "$-1\r\n",
            "before the threshold GET waits for the script"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (runner, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_kill_stops_a_busy_script() {
    let s = start_with(&[("busy-reply-threshold", "100")]).await;
    let addr = s.local_addr();
    let mut c = Raw::connect(addr).await;
    assert_eq!(
        ask(&mut c, &["SCRIPT", "KILL"]).await,
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
    let (mut runner, mut other) = start_busy(addr, LOOP).await;
    // Commands without allow-busy: BUSY; allow-busy ones are served.
    assert_eq!(ask(&mut other, &["PING"]).await, BUSY);
    assert_eq!(ask(&mut other, &["SHUTDOWN"]).await, BUSY);
    assert_eq!(
        ask(&mut other, &["AUTH", "x"]).await,
        "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"
    );
    assert_eq!(ask(&mut other, &["MULTI"]).await, "+OK\r\n");
    assert_eq!(ask(&mut other, &["GET", "k"]).await, BUSY);
    assert_eq!(
        ask(&mut other, &["EXEC"]).await,
        format!(
            "-EXECABORT Transaction discarded because of: {}",
            &BUSY[1..]
        )
    );
    assert_eq!(ask(&mut other, &["SCRIPT", "KILL"]).await, "+OK\r\n");
    let sha = redlog::commands::lua::sha1hex(LOOP.as_bytes());
    assert_eq!(
        line(&mut runner).await,
        format!(
            "-ERR Script killed by user with SCRIPT KILL... script: {sha}, on @user_script:1.\r\n"
        )
    );
    // The server is itself again.
    assert_eq!(ask(&mut other, &["SET", "k", "v"]).await, "+OK\r\n");
    assert_eq!(ask(&mut runner, &["GET", "k"]).await, "$1\r\n");
    assert_eq!(line(&mut runner).await, "v\r\n");
    assert_eq!(
        ask(&mut other, &["SCRIPT", "KILL"]).await,
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcall_cannot_catch_the_kill() {
    let s = start_with(&[("busy-reply-threshold", "100")]).await;
    let addr = s.local_addr();
    let body = "while true do pcall(function() local i = 0 while true do i = i + 1 end end) end";
    let (mut runner, mut other) = start_busy(addr, body).await;
    assert_eq!(ask(&mut other, &["SCRIPT", "KILL"]).await, "+OK\r\n");
    assert!(line(&mut runner)
        .await
        .starts_with("-ERR Script killed by user with SCRIPT KILL..."));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_that_wrote_is_unkillable_and_shutdown_nosave_stops_it() {
    let dir = temp_dir();
    let s = start_in(
        &dir,
        &[("busy-reply-threshold", "100"), ("appendonly", "yes")],
    )
    .await;
    let addr = s.local_addr();
    let (mut runner, mut other) = start_busy(addr, WRITE_THEN_LOOP).await;
    assert_eq!(
        ask(&mut other, &["SCRIPT", "KILL"]).await,
        "-UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.\r\n"
    );
    send(&mut other, &["SHUTDOWN", "NOSAVE"]).await;
    // No reply to either: the server stops.
    assert_eq!(line(&mut other).await, "");
    assert_eq!(line(&mut runner).await, "");
    tokio::time::timeout(Duration::from_secs(60), s.wait())
        .await
        .expect("the server stops");
    // The script's write was never logged (Redis exits in the middle of
    // the script: nothing of it reaches the AOF).
    let s = start_in(&dir, &[]).await;
    let mut c = Raw::connect(s.local_addr()).await;
    assert_eq!(ask(&mut c, &["EXISTS", "w"]).await, ":0\r\n");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lua_time_limit_is_the_threshold_alias() {
    let s = start().await;
    let addr = s.local_addr();
    let mut c = Raw::connect(addr).await;
    assert_eq!(
        ask(&mut c, &["CONFIG", "SET", "lua-time-limit", "100"]).await,
        "+OK\r\n"
    );
    let (mut runner, mut other) = start_busy(addr, LOOP).await;
    assert_eq!(ask(&mut other, &["SCRIPT", "KILL"]).await, "+OK\r\n");
    assert!(line(&mut runner).await.starts_with("-ERR Script killed"));
    s.shutdown().await;
}

/// Commands served during a busy script go through the ACL check first
/// (Redis's `processCommand` order): a user without +script|kill gets
/// NOPERM, logged in ACL LOG; one with it stops the script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_commands_are_checked_against_acl() {
    let s = start_with(&[("busy-reply-threshold", "100")]).await;
    let addr = s.local_addr();
    let mut admin = Raw::connect(addr).await;
    assert_eq!(
        ask(
            &mut admin,
            &[
                "ACL",
                "SETUSER",
                "u",
                "on",
                "nopass",
                "+@all",
                "~*",
                "-script|kill"
            ]
        )
        .await,
        "+OK\r\n"
    );
    let mut limited = Raw::connect(addr).await;
    assert_eq!(ask(&mut limited, &["AUTH", "u", "x"]).await, "+OK\r\n");
    let (mut runner, mut other) = start_busy(addr, LOOP).await;
    assert_eq!(
        ask(&mut limited, &["SCRIPT", "KILL"]).await,
        "-NOPERM this user has no permissions to run the 'script|kill' command\r\n"
    );
    // Allowed commands still get BUSY.
    assert_eq!(ask(&mut limited, &["GET", "k"]).await, BUSY);
    assert_eq!(ask(&mut other, &["SCRIPT", "KILL"]).await, "+OK\r\n");
    assert!(line(&mut runner).await.starts_with("-ERR Script killed"));
    // The refusal is in ACL LOG, as any NOPERM.
    send(&mut admin, &["ACL", "LOG"]).await;
    assert_eq!(line(&mut admin).await, "*1\r\n");
    s.shutdown().await;
}

/// WATCH, UNWATCH and RESET are `allow-busy`: answered while the script
/// runs (here it runs until SCRIPT KILL, so a reply that waited for the
/// script's end would never come before the kill), with their effect on
/// the WATCH registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_unwatch_reset_are_served_during_a_busy_script() {
    let s = start_with(&[("busy-reply-threshold", "100")]).await;
    let addr = s.local_addr();
    let mut unwatcher = Raw::connect(addr).await;
    assert_eq!(ask(&mut unwatcher, &["WATCH", "k2"]).await, "+OK\r\n");
    let mut resetter = Raw::connect(addr).await;
    assert_eq!(ask(&mut resetter, &["WATCH", "k3"]).await, "+OK\r\n");
    let mut watcher = Raw::connect(addr).await;
    let (mut runner, mut other) = start_busy(addr, LOOP).await;
    assert_eq!(ask(&mut watcher, &["WATCH", "k"]).await, "+OK\r\n");
    assert_eq!(ask(&mut unwatcher, &["UNWATCH"]).await, "+OK\r\n");
    assert_eq!(ask(&mut resetter, &["RESET"]).await, "+RESET\r\n");
    // MULTI then WATCH: Redis's error, and DISCARD of a client with
    // WATCHes is served too.
    assert_eq!(ask(&mut unwatcher, &["MULTI"]).await, "+OK\r\n");
    assert_eq!(
        ask(&mut unwatcher, &["WATCH", "x"]).await,
        "-ERR WATCH inside MULTI is not allowed\r\n"
    );
    assert_eq!(ask(&mut unwatcher, &["DISCARD"]).await, "+OK\r\n");
    // FUNCTION STATS during an EVAL script: BUSY, as Redis.
    assert_eq!(ask(&mut other, &["FUNCTION", "STATS"]).await, BUSY);
    assert_eq!(ask(&mut other, &["SCRIPT", "KILL"]).await, "+OK\r\n");
    assert!(line(&mut runner).await.starts_with("-ERR Script killed"));
    // The WATCH taken during the script holds; the dropped ones do not.
    for k in ["k", "k2", "k3"] {
        assert_eq!(ask(&mut other, &["SET", k, "v"]).await, "+OK\r\n");
    }
    for (c, want) in [
        (&mut watcher, "*-1\r\n"),
        (&mut unwatcher, "*1\r\n"),
        (&mut resetter, "*1\r\n"),
    ] {
        assert_eq!(ask(c, &["MULTI"]).await, "+OK\r\n");
        assert_eq!(ask(c, &["PING"]).await, "+QUEUED\r\n");
        assert_eq!(ask(c, &["EXEC"]).await, want);
        if want == "*1\r\n" {
            assert_eq!(line(c).await, "+PONG\r\n");
        }
    }
    s.shutdown().await;
}

/// EXEC refused during a busy script drops the client's WATCHes (Redis's
/// `execCommandAbort`) at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_abort_during_a_busy_script_unwatches() {
    let s = start_with(&[("busy-reply-threshold", "100")]).await;
    let addr = s.local_addr();
    let mut c = Raw::connect(addr).await;
    assert_eq!(ask(&mut c, &["WATCH", "k"]).await, "+OK\r\n");
    assert_eq!(ask(&mut c, &["MULTI"]).await, "+OK\r\n");
    let (mut runner, mut other) = start_busy(addr, LOOP).await;
    assert_eq!(
        ask(&mut c, &["EXEC"]).await,
        format!(
            "-EXECABORT Transaction discarded because of: {}",
            &BUSY[1..]
        )
    );
    assert_eq!(ask(&mut other, &["SCRIPT", "KILL"]).await, "+OK\r\n");
    assert!(line(&mut runner).await.starts_with("-ERR Script killed"));
    // No WATCH left: a write to k does not abort the next transaction.
    assert_eq!(ask(&mut other, &["SET", "k", "v"]).await, "+OK\r\n");
    assert_eq!(ask(&mut c, &["MULTI"]).await, "+OK\r\n");
    assert_eq!(ask(&mut c, &["PING"]).await, "+QUEUED\r\n");
    assert_eq!(ask(&mut c, &["EXEC"]).await, "*1\r\n");
    s.shutdown().await;
}

/// FUNCTION STATS while a function is busy: its name, the FCALL that runs
/// it and how long it has run (Redis's `functionStatsCommand`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_stats_shows_the_running_function() {
    let s = start_with(&[("busy-reply-threshold", "100")]).await;
    let addr = s.local_addr();
    let mut c = Raw::connect(addr).await;
    let lib = "#!lua name=spinlib\nredis.register_function('spin', function() local i = 0 while true do i = i + 1 end end)";
    assert_eq!(ask(&mut c, &["FUNCTION", "LOAD", lib]).await, "$7\r\n");
    assert_eq!(line(&mut c).await, "spinlib\r\n");
    let mut runner = Raw::connect(addr).await;
    send(&mut runner, &["fcall", "spin", "0"]).await;
    let busy_fn =
        "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n";
    loop {
        let r = ask(&mut c, &["GET", "k"]).await;
        if r == busy_fn {
            break;
        }
        assert_eq!(r, "$-1\r\n");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    send(&mut c, &["FUNCTION", "STATS"]).await;
    let mut lines = Vec::new();
    for _ in 0..25 {
        lines.push(line(&mut c).await);
    }
    let want = [
        "*4",
        "$14",
        "running_script",
        "*6",
        "$4",
        "name",
        "$4",
        "spin",
        "$7",
        "command",
        "*3",
        "$5",
        "fcall",
        "$4",
        "spin",
        "$1",
        "0",
        "$11",
        "duration_ms",
    ];
    for (i, w) in want.iter().enumerate() {
        assert_eq!(lines[i], format!("{w}\r\n"), "line {i}");
    }
    assert!(lines[19].starts_with(':'), "duration: {}", lines[19]);
    let ms: u64 = lines[19][1..].trim().parse().unwrap();
    assert!(ms >= 100, "past the threshold: {ms}");
    assert_eq!(lines[20..].concat(), "$7\r\nengines\r\n*2\r\n$3\r\nLUA\r\n");
    let mut rest = String::new();
    for _ in 0..7 {
        rest.push_str(&line(&mut c).await);
    }
    assert_eq!(
        rest,
        "*4\r\n$15\r\nlibraries_count\r\n:1\r\n$15\r\nfunctions_count\r\n:1\r\n"
    );
    assert_eq!(ask(&mut c, &["FUNCTION", "KILL"]).await, "+OK\r\n");
    assert!(line(&mut runner).await.starts_with("-ERR Script killed"));
    // Not running: nil.
    send(&mut c, &["FUNCTION", "STATS"]).await;
    assert_eq!(line(&mut c).await, "*4\r\n");
    line(&mut c).await;
    line(&mut c).await;
    assert_eq!(line(&mut c).await, "$-1\r\n");
    s.shutdown().await;
}

/// INFO memory's scripting fields, in Redis 7.0's order, with the totals
/// over the EVAL and function engines.
#[tokio::test]
async fn info_memory_has_redis_scripting_fields() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    let _: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg("return 1")
        .query_async(&mut c)
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(&mut c)
        .await
        .unwrap();
    let fields: Vec<(&str, &str)> = info
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| {
            k.contains("lua")
                || k.contains("script")
                || k.contains("function")
                || k.contains("_vm_")
                || k.starts_with("number_of")
        })
        .collect();
    let names: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        [
            "used_memory_lua",
            "used_memory_vm_eval",
            "used_memory_lua_human",
            "used_memory_scripts_eval",
            "number_of_cached_scripts",
            "number_of_functions",
            "number_of_libraries",
            "used_memory_vm_functions",
            "used_memory_vm_total",
            "used_memory_vm_total_human",
            "used_memory_functions",
            "used_memory_scripts",
            "used_memory_scripts_human",
        ]
    );
    let get = |k: &str| fields.iter().find(|(n, _)| *n == k).unwrap().1;
    assert_eq!(get("number_of_cached_scripts"), "1");
    assert!(get("used_memory_vm_eval").parse::<u64>().unwrap() > 0);
    // The cached body and its SHA1 key.
    assert_eq!(get("used_memory_scripts_eval"), "48");
    assert_eq!(get("used_memory_scripts"), "48");
    assert_eq!(get("used_memory_vm_total"), get("used_memory_vm_eval"));
    s.shutdown().await;
}
