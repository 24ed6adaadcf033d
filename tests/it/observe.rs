//! Observability against an in-process server: MONITOR lines, SLOWLOG
//! entries, INFO errorstats / commandstats / latencystats counters, and
//! the latency monitor fed by a slow script (no DEBUG SLEEP needed).

use crate::common;

use common::{client, raw_cmd, read_all, resp, start, Raw};
use redis::Value;

async fn cmd(c: &mut redis::aio::MultiplexedConnection, args: &[&str]) -> Value {
    let mut r = redis::cmd(args[0]);
    for a in &args[1..] {
        r.arg(*a);
    }
    match r.query_async::<Value>(c).await {
        Ok(v) => v,
        Err(e) => Value::SimpleString(format!("ERR {e}")),
    }
}

async fn info(c: &mut redis::aio::MultiplexedConnection, section: &str) -> String {
    redis::cmd("INFO")
        .arg(section)
        .query_async::<String>(c)
        .await
        .unwrap()
}

fn bulk_str(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

fn array(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        other => panic!("not an array: {other:?}"),
    }
}

/// MONITOR lines without their timestamps, client ports replaced by P:
/// `[db who] "arg" ...`.
fn monitor_lines(text: &str) -> Vec<String> {
    text.split("\r\n")
        .filter(|l| l.starts_with('+') && l.contains(" ["))
        .map(|l| {
            let (ts, rest) = l[1..].split_once(' ').unwrap();
            let (secs, usecs) = ts.split_once('.').unwrap();
            assert!(secs.parse::<u64>().is_ok() && usecs.len() == 6, "{l}");
            let mut rest = rest.to_string();
            if let Some(i) = rest.find("127.0.0.1:") {
                let end = rest[i..].find(']').unwrap() + i;
                rest.replace_range(i + "127.0.0.1:".len()..end, "P");
            }
            rest
        })
        .collect()
}

#[tokio::test]
async fn monitor_shows_commands_as_redis() {
    let s = start().await;
    let addr = s.local_addr();
    let mut m = Raw::connect(addr).await;
    assert_eq!(raw_cmd(&mut m, &["MONITOR"]).await, "+OK\r\n");
    let mut c = Raw::connect(addr).await;
    let mut batch = Vec::new();
    for args in [
        &["SET", "k", "a \"b\"\n\u{1}"][..],
        &["SELECT", "2"],
        &["GET", "k"],
        &["AUTH", "secret"],
        &["AUTH", "user", "secret"],
        &["HELLO", "2", "AUTH", "default", "pw", "SETNAME", "nm"],
        &["EVAL", "redis.call('set','a','1') return 1", "0"],
        &["MULTI"],
        &["INCR", "n"],
        &["EXEC"],
        &["CONFIG", "GET", "maxmemory"],
        &["NOSUCHCOMMAND"],
        &["GET"],
        &["PING"],
    ] {
        batch.extend(resp(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>()));
    }
    c.send(&batch).await;
    read_all(&mut c).await;
    let lines = monitor_lines(&read_all(&mut m).await);
    assert_eq!(
        lines,
        vec![
            r#"[0 127.0.0.1:P] "SET" "k" "a \"b\"\n\x01""#,
            r#"[2 127.0.0.1:P] "SELECT" "2""#,
            r#"[2 127.0.0.1:P] "GET" "k""#,
            r#"[2 127.0.0.1:P] "AUTH" "(redacted)""#,
            r#"[2 127.0.0.1:P] "AUTH" "(redacted)" "(redacted)""#,
            r#"[2 127.0.0.1:P] "HELLO" "2" "AUTH" "(redacted)" "(redacted)" "SETNAME" "nm""#,
            r#"[2 127.0.0.1:P] "EVAL" "redis.call('set','a','1') return 1" "0""#,
            r#"[2 lua] "set" "a" "1""#,
            r#"[2 127.0.0.1:P] "MULTI""#,
            r#"[2 127.0.0.1:P] "INCR" "n""#,
            r#"[2 127.0.0.1:P] "EXEC""#,
            r#"[2 127.0.0.1:P] "PING""#,
        ]
    );
    // A monitor's own commands are shown to it after their replies; RESET
    // ends the feed.
    let got = raw_cmd(&mut m, &["PING"]).await;
    assert!(got.starts_with("+PONG\r\n+"), "{got}");
    assert!(got.ends_with("] \"PING\"\r\n"), "{got}");
    assert_eq!(raw_cmd(&mut m, &["MONITOR"]).await, "");
    assert_eq!(raw_cmd(&mut m, &["RESET"]).await, "+RESET\r\n");
    raw_cmd(&mut c, &["PING"]).await;
    assert_eq!(read_all(&mut m).await, "");
    // Refused inside EXEC (Redis's DENY BLOCKING check).
    let mut x = Raw::connect(addr).await;
    let got = raw_cmd(&mut x, &["MULTI"]).await;
    assert_eq!(got, "+OK\r\n");
    raw_cmd(&mut x, &["MONITOR"]).await;
    assert_eq!(
        raw_cmd(&mut x, &["EXEC"]).await,
        "*1\r\n-ERR MONITOR isn't allowed for DENY BLOCKING client\r\n"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn monitor_in_resp3_and_client_list_flag() {
    let s = start().await;
    let addr = s.local_addr();
    let mut m = Raw::connect(addr).await;
    raw_cmd(&mut m, &["HELLO", "3"]).await;
    assert_eq!(raw_cmd(&mut m, &["MONITOR"]).await, "+OK\r\n");
    let mut c = client(addr).await;
    let list = bulk_str(&cmd(&mut c, &["CLIENT", "LIST"]).await);
    assert!(list.contains("flags=O "), "{list}");
    cmd(&mut c, &["SET", "x", "1"]).await;
    let lines = monitor_lines(&read_all(&mut m).await);
    assert_eq!(lines.last().unwrap(), r#"[0 127.0.0.1:P] "SET" "x" "1""#);
    s.shutdown().await;
}

#[tokio::test]
async fn slowlog_records_entries_as_redis() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    let mut admin = client(s.local_addr()).await;
    cmd(
        &mut admin,
        &["CONFIG", "SET", "slowlog-log-slower-than", "0"],
    )
    .await;
    cmd(&mut c, &["CLIENT", "SETNAME", "me"]).await;
    let big = "x".repeat(200);
    let mut rpush: Vec<String> = vec!["RPUSH".into(), "l".into(), big.clone()];
    rpush.extend((0..40).map(|i| i.to_string()));
    let refs: Vec<&str> = rpush.iter().map(String::as_str).collect();
    cmd(&mut c, &refs).await;
    cmd(&mut c, &["AUTH", "nopass"]).await;
    cmd(&mut c, &["MULTI"]).await;
    cmd(&mut c, &["INCR", "n"]).await;
    cmd(&mut c, &["EXEC"]).await;
    cmd(&mut c, &["EVAL", "return redis.call('get','n')", "0"]).await;
    let got = cmd(&mut admin, &["SLOWLOG", "GET", "-1"]).await;
    let entries = array(&got);
    // Newest first: EVAL, its GET, INCR (EXEC is not logged), MULTI, AUTH,
    // RPUSH, CLIENT SETNAME, CONFIG SET.
    let names: Vec<String> = entries
        .iter()
        .map(|e| bulk_str(&array(&array(e)[3])[0]))
        .collect();
    assert_eq!(
        names,
        ["EVAL", "get", "INCR", "MULTI", "AUTH", "RPUSH", "CLIENT", "CONFIG"]
    );
    let ids: Vec<String> = entries.iter().map(|e| bulk_str(&array(e)[0])).collect();
    assert_eq!(ids, ["7", "6", "5", "4", "3", "2", "1", "0"]);
    let rp = array(&entries[5]);
    let args = array(&rp[3]);
    assert_eq!(args.len(), 32);
    assert_eq!(
        bulk_str(&args[2]),
        format!("{}... (72 more bytes)", &big[..128])
    );
    assert_eq!(bulk_str(&args[31]), "... (12 more arguments)");
    assert!(bulk_str(&rp[4]).starts_with("127.0.0.1:"));
    assert_eq!(bulk_str(&rp[5]), "me");
    let auth = array(&array(&entries[4])[3]).to_vec();
    assert_eq!(bulk_str(&auth[1]), "(redacted)");
    // The script's command: no connection, no name.
    let inner = array(&entries[1]);
    assert_eq!(bulk_str(&inner[4]), "?:0");
    assert_eq!(bulk_str(&inner[5]), "");
    assert_eq!(cmd(&mut admin, &["SLOWLOG", "LEN"]).await, Value::Int(9));
    let two = cmd(&mut admin, &["SLOWLOG", "GET", "2"]).await;
    assert_eq!(array(&two).len(), 2);
    // The default GET returns 10.
    let ten = cmd(&mut admin, &["SLOWLOG", "GET"]).await;
    assert_eq!(array(&ten).len(), 10);
    // Off: nothing more is logged.
    cmd(
        &mut admin,
        &["CONFIG", "SET", "slowlog-log-slower-than", "-1"],
    )
    .await;
    cmd(&mut admin, &["SLOWLOG", "RESET"]).await;
    cmd(&mut c, &["SET", "a", "b"]).await;
    assert_eq!(cmd(&mut admin, &["SLOWLOG", "LEN"]).await, Value::Int(0));
    // slowlog-max-len bounds the log.
    cmd(
        &mut admin,
        &["CONFIG", "SET", "slowlog-log-slower-than", "0"],
    )
    .await;
    cmd(&mut admin, &["CONFIG", "SET", "slowlog-max-len", "3"]).await;
    for _ in 0..5 {
        cmd(&mut c, &["PING"]).await;
    }
    assert_eq!(cmd(&mut admin, &["SLOWLOG", "LEN"]).await, Value::Int(3));
    s.shutdown().await;
}

fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
}

#[tokio::test]
async fn errorstats_and_commandstats_count_outcomes() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    cmd(&mut c, &["CONFIG", "RESETSTAT"]).await;
    cmd(&mut c, &["SET", "s", "v"]).await;
    cmd(&mut c, &["LPUSH", "s", "x"]).await; // WRONGTYPE: failed call
    cmd(&mut c, &["GET"]).await; // arity: rejected call
    cmd(&mut c, &["NOSUCHCOMMAND"]).await; // unknown: ERR, no command
    cmd(
        &mut c,
        &["EVAL", "return redis.error_reply('MYERR custom')", "0"],
    )
    .await;
    let e = info(&mut c, "errorstats").await;
    assert_eq!(field(&e, "errorstat_ERR"), Some("count=2"), "{e}");
    assert_eq!(field(&e, "errorstat_WRONGTYPE"), Some("count=1"), "{e}");
    assert_eq!(field(&e, "errorstat_MYERR"), Some("count=1"), "{e}");
    let st = info(&mut c, "stats").await;
    assert_eq!(field(&st, "total_error_replies"), Some("4"), "{st}");
    let cs = info(&mut c, "commandstats").await;
    let lpush = field(&cs, "cmdstat_lpush").unwrap();
    assert!(lpush.starts_with("calls=1,"), "{lpush}");
    assert!(
        lpush.ends_with(",rejected_calls=0,failed_calls=1"),
        "{lpush}"
    );
    let get = field(&cs, "cmdstat_get").unwrap();
    assert!(get.starts_with("calls=0,"), "{get}");
    assert!(get.ends_with(",rejected_calls=1,failed_calls=0"), "{get}");
    assert!(field(&cs, "cmdstat_config|resetstat").is_some(), "{cs}");
    // INFO with no argument includes errorstats (as Redis 7.0).
    let all = redis::cmd("INFO")
        .query_async::<String>(&mut c)
        .await
        .unwrap();
    assert!(
        all.contains("# Errorstats\r\nerrorstat_ERR:count=2"),
        "{all}"
    );
    cmd(&mut c, &["CONFIG", "RESETSTAT"]).await;
    let e = info(&mut c, "errorstats").await;
    assert_eq!(e.trim_end(), "# Errorstats");
    s.shutdown().await;
}

/// A Lua loop long enough to take well over a millisecond.
const SLOW_SCRIPT: &str = "local i = 0 while i < 3000000 do i = i + 1 end return i";

#[tokio::test]
async fn latency_monitor_records_a_slow_command() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    assert_eq!(
        cmd(&mut c, &["LATENCY", "LATEST"]).await,
        Value::Array(vec![])
    );
    // Threshold 0: the monitor is off, the slow script leaves nothing.
    cmd(&mut c, &["EVAL", SLOW_SCRIPT, "0"]).await;
    assert_eq!(
        cmd(&mut c, &["LATENCY", "LATEST"]).await,
        Value::Array(vec![])
    );
    cmd(&mut c, &["CONFIG", "SET", "latency-monitor-threshold", "1"]).await;
    cmd(&mut c, &["EVAL", SLOW_SCRIPT, "0"]).await;
    let latest = cmd(&mut c, &["LATENCY", "LATEST"]).await;
    let ev = array(&latest)
        .iter()
        .map(array)
        .find(|e| bulk_str(&e[0]) == "command")
        .expect("a command event");
    let ms: i64 = bulk_str(&ev[2]).parse().unwrap();
    let max: i64 = bulk_str(&ev[3]).parse().unwrap();
    assert!(ms >= 1 && max >= ms, "{ev:?}");
    // One sample per second with a spike (the CONFIG SET may have been one
    // too on a loaded machine).
    let hist = cmd(&mut c, &["LATENCY", "HISTORY", "command"]).await;
    assert!(!array(&hist).is_empty());
    let graph = bulk_str(&cmd(&mut c, &["LATENCY", "GRAPH", "command"]).await);
    assert!(graph.starts_with("command - high "), "{graph}");
    assert!(graph.contains(&format!("{}\n", "-".repeat(80))), "{graph}");
    let doctor = bulk_str(&cmd(&mut c, &["LATENCY", "DOCTOR"]).await);
    assert!(
        doctor.starts_with("Dave, I have observed latency spikes in this Redis instance."),
        "{doctor}"
    );
    assert!(doctor.contains("\n1. command: "), "{doctor}");
    // The per-command histogram saw both calls.
    let h = cmd(&mut c, &["LATENCY", "HISTOGRAM", "eval"]).await;
    let text = format!("{h:?}");
    assert!(text.contains("\"calls\""), "{text}");
    let ls = info(&mut c, "latencystats").await;
    let eval = field(&ls, "latency_percentiles_usec_eval").unwrap();
    assert!(eval.starts_with("p50=") && eval.contains(",p99=") && eval.contains(",p99.9="));
    assert_eq!(
        cmd(&mut c, &["LATENCY", "RESET", "COMMAND"]).await,
        Value::Int(1)
    );
    assert_eq!(
        cmd(&mut c, &["LATENCY", "HISTORY", "command"]).await,
        Value::Array(vec![])
    );
    // latency-tracking no: no histograms, no latencystats lines.
    cmd(&mut c, &["CONFIG", "SET", "latency-tracking", "no"]).await;
    cmd(&mut c, &["CONFIG", "RESETSTAT"]).await;
    cmd(&mut c, &["SET", "k", "v"]).await;
    let ls = info(&mut c, "latencystats").await;
    assert_eq!(ls.trim_end(), "# Latencystats");
    s.shutdown().await;
}
