//! Generic key commands over the wire: exact reply bytes (checked against
//! redis-server 7.0.15), SCAN's guarantee under concurrent writes, TTLs.

use crate::common;
use common::*;
use std::collections::HashSet;
use std::time::Duration;

async fn check(c: &mut Raw, args: &[&[u8]], expected: &[u8]) {
    c.check(&resp(args), expected).await;
}

/// Runs `(command line, expected reply)` pairs; arguments are split on spaces.
async fn script(c: &mut Raw, steps: &[(&str, &str)]) {
    for (cmd, want) in steps {
        let args: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
        check(c, &args, want.as_bytes()).await;
    }
}

const SYNTAX: &str = "-ERR syntax error\r\n";
const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";

#[tokio::test]
async fn del_exists_touch_type() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    script(
        &mut c,
        &[
            ("MSET a 1 b 2 c 3", "+OK\r\n"),
            ("EXISTS a a nokey b", ":3\r\n"),
            ("TOUCH a a nokey", ":2\r\n"),
            ("TYPE a", "+string\r\n"),
            ("TYPE nokey", "+none\r\n"),
            ("DEL a a nokey", ":1\r\n"),
            ("UNLINK b c nokey", ":2\r\n"),
            ("EXISTS a b c", ":0\r\n"),
            (
                "DEL",
                "-ERR wrong number of arguments for 'del' command\r\n",
            ),
        ],
    )
    .await;
    let key: &[u8] = b"bin\0\xff\r\n";
    check(&mut c, &[b"SET", key, b"v"], b"+OK\r\n").await;
    check(&mut c, &[b"EXISTS", key, b"bin"], b":1\r\n").await;
    check(&mut c, &[b"DEL", key], b":1\r\n").await;
    s.shutdown().await;
}

#[tokio::test]
async fn keys_pattern_skips_expired() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    script(
        &mut c,
        &[
            ("MSET hello 1 hallo 2 hxllo 3 world 4", "+OK\r\n"),
            ("KEYS w*", "*1\r\n$5\r\nworld\r\n"),
            ("KEYS h[^e]llo", "*2\r\n"),
        ],
    )
    .await;
    let _ = c.read_exact_len(22).await; // two 5-byte keys, order unspecified
    let mut r = client(s.local_addr()).await;
    let mut k: Vec<String> = redis::cmd("KEYS")
        .arg("h?llo")
        .query_async(&mut r)
        .await
        .unwrap();
    k.sort();
    assert_eq!(k, ["hallo", "hello", "hxllo"]);
    let _: () = redis::cmd("PEXPIRE")
        .arg("world")
        .arg(1)
        .query_async(&mut r)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let k: Vec<String> = redis::cmd("KEYS")
        .arg("w*")
        .query_async(&mut r)
        .await
        .unwrap();
    assert!(k.is_empty());
    s.shutdown().await;
}

#[tokio::test]
async fn scan_arguments() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let bad_cursor = "-ERR invalid cursor\r\n";
    script(
        &mut c,
        &[
            ("SCAN 0", "*2\r\n$1\r\n0\r\n*0\r\n"),
            ("SET k v", "+OK\r\n"),
            ("SCAN 0", "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n"),
            ("SCAN 00", "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n"),
            ("SCAN +0", "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n"),
            ("SCAN -1", "*2\r\n$1\r\n0\r\n*0\r\n"),
            ("SCAN 18446744073709551615", "*2\r\n$1\r\n0\r\n*0\r\n"),
            ("SCAN 18446744073709551616", bad_cursor),
            ("SCAN x", bad_cursor),
            ("SCAN -", bad_cursor),
            ("SCAN 0 COUNT 0", SYNTAX),
            ("SCAN 0 COUNT -1", SYNTAX),
            ("SCAN 0 COUNT x", NOT_INT),
            ("SCAN 0 MATCH", SYNTAX),
            ("SCAN 0 TYPE", SYNTAX),
            ("SCAN 0 foo bar", SYNTAX),
            ("SCAN 0 TYPE foo", "*2\r\n$1\r\n0\r\n*0\r\n"),
            ("SCAN 0 TYPE STRING", "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n"),
            ("SCAN 0 MATCH x* COUNT 5", "*2\r\n$1\r\n0\r\n*0\r\n"),
            (
                "SCAN 0 COUNT 10 MATCH * TYPE string COUNT 5",
                "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n",
            ),
        ],
    )
    .await;
    check(
        &mut c,
        &[b"SCAN", b""],
        b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n",
    )
    .await;
    check(&mut c, &[b"SCAN", b" 1"], bad_cursor.as_bytes()).await;
    s.shutdown().await;
}

/// Redis's SCAN guarantee: a key present from the start to the end of a
/// full iteration is returned, however many keys come and go meanwhile.
#[tokio::test]
async fn scan_never_misses_stable_keys_under_churn() {
    let s = start().await;
    let mut r = client(s.local_addr()).await;
    let stable: HashSet<String> = (0..500).map(|i| format!("stable:{i}")).collect();
    for k in &stable {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg(1)
            .query_async(&mut r)
            .await
            .unwrap();
    }
    for i in 0..500 {
        let _: () = redis::cmd("SET")
            .arg(format!("doomed:{i}"))
            .arg(1)
            .query_async(&mut r)
            .await
            .unwrap();
    }
    let mut seen = HashSet::new();
    let mut cursor: u64 = 0;
    let mut round = 0;
    loop {
        let (next, keys): (String, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(7)
            .query_async(&mut r)
            .await
            .unwrap();
        seen.extend(keys);
        // Churn between calls: delete some keys, add many new ones.
        for j in 0..5 {
            let _: i64 = redis::cmd("DEL")
                .arg(format!("doomed:{}", round * 5 + j))
                .query_async(&mut r)
                .await
                .unwrap();
            let _: () = redis::cmd("SET")
                .arg(format!("new:{round}:{j}"))
                .arg(1)
                .query_async(&mut r)
                .await
                .unwrap();
        }
        round += 1;
        cursor = next.parse().unwrap();
        if cursor == 0 {
            break;
        }
        assert!(round < 10_000, "scan does not terminate");
    }
    let missed: Vec<_> = stable.difference(&seen).collect();
    assert!(missed.is_empty(), "missed {} stable keys", missed.len());
    s.shutdown().await;
}

#[tokio::test]
async fn scan_skips_expired_keys() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    check(&mut c, &[b"SET", b"gone", b"v", b"PX", b"1"], b"+OK\r\n").await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    check(&mut c, &[b"SCAN", b"0"], b"*2\r\n$1\r\n0\r\n*0\r\n").await;
    s.shutdown().await;
}

#[tokio::test]
async fn randomkey() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    check(&mut c, &[b"RANDOMKEY"], b"$-1\r\n").await;
    check(&mut c, &[b"SET", b"only", b"v"], b"+OK\r\n").await;
    check(&mut c, &[b"RANDOMKEY"], b"$4\r\nonly\r\n").await;
    // Every key expired: they are deleted and the reply is null.
    for k in [&b"only"[..], b"a", b"b", b"c"] {
        check(&mut c, &[b"SET", k, b"v", b"PX", b"1"], b"+OK\r\n").await;
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    check(&mut c, &[b"RANDOMKEY"], b"$-1\r\n").await;
    check(&mut c, &[b"DBSIZE"], b":0\r\n").await;
    let mut r = client(s.local_addr()).await;
    for i in 0..50 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(1)
            .query_async(&mut r)
            .await
            .unwrap();
    }
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let k: String = redis::cmd("RANDOMKEY").query_async(&mut r).await.unwrap();
        seen.insert(k);
    }
    assert!(seen.len() > 10, "RANDOMKEY is not random: {seen:?}");
    s.shutdown().await;
}

#[tokio::test]
async fn rename_and_renamenx() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    script(
        &mut c,
        &[
            ("RENAME nokey x", "-ERR no such key\r\n"),
            ("RENAME nokey nokey", "-ERR no such key\r\n"),
            ("RENAMENX nokey x", "-ERR no such key\r\n"),
            ("SET a 1 EX 100", "+OK\r\n"),
            ("RENAME a a", "+OK\r\n"),
            ("RENAMENX a a", ":0\r\n"),
            ("RENAME a b", "+OK\r\n"),
            ("EXISTS a", ":0\r\n"),
            ("TTL b", ":100\r\n"),
            ("SET c 3", "+OK\r\n"),
            ("RENAMENX b c", ":0\r\n"),
            ("RENAMENX b d", ":1\r\n"),
            ("RENAME d c", "+OK\r\n"),
            ("GET c", "$1\r\n1\r\n"),
            ("TTL c", ":100\r\n"),
            // The shared integer object moves with the key.
            ("OBJECT REFCOUNT c", ":2147483647\r\n"),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn copy_and_move() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let same = "-ERR source and destination objects are the same\r\n";
    let range = "-ERR DB index is out of range\r\n";
    let i32_range = "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n";
    script(
        &mut c,
        &[
            ("SET n 123 EX 100", "+OK\r\n"),
            ("COPY n n", same),
            ("COPY n n DB 0", same),
            ("COPY nokey x", ":0\r\n"),
            ("COPY n n2", ":1\r\n"),
            ("TTL n2", ":100\r\n"),
            // A copy of a shared integer is a private int object.
            ("OBJECT ENCODING n2", "$3\r\nint\r\n"),
            ("OBJECT REFCOUNT n2", ":1\r\n"),
            ("SET n3 x", "+OK\r\n"),
            ("COPY n n3", ":0\r\n"),
            ("COPY n n3 REPLACE", ":1\r\n"),
            ("GET n3", "$3\r\n123\r\n"),
            ("COPY n x DB 16", range),
            ("COPY n x DB -1", range),
            ("COPY n x DB x", NOT_INT),
            ("COPY n x DB 4294967296", i32_range),
            ("COPY n x DB", SYNTAX),
            ("COPY n x foo", SYNTAX),
            ("COPY nokey x DB 99", range),
            ("COPY n n DB 1", ":1\r\n"),
            ("COPY n n DB 1", ":0\r\n"),
            ("COPY n n DB 1 REPLACE REPLACE", ":1\r\n"),
            ("MOVE n 0", same),
            ("MOVE nokey 0", same),
            ("MOVE n 16", range),
            ("MOVE n x", NOT_INT),
            ("MOVE n 4294967296", i32_range),
            ("MOVE nokey 1", ":0\r\n"),
            // The destination already has the key.
            ("MOVE n 1", ":0\r\n"),
            ("MOVE n2 2", ":1\r\n"),
            ("EXISTS n2", ":0\r\n"),
            ("SELECT 2", "+OK\r\n"),
            ("GET n2", "$3\r\n123\r\n"),
            ("TTL n2", ":100\r\n"),
            ("SELECT 1", "+OK\r\n"),
            ("GET n", "$3\r\n123\r\n"),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn object_subcommands() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let freq_err = "-ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.\r\n";
    script(
        &mut c,
        &[
            ("SET k v", "+OK\r\n"),
            ("OBJECT ENCODING k", "$6\r\nembstr\r\n"),
            ("OBJECT REFCOUNT k", ":1\r\n"),
            ("OBJECT IDLETIME k", ":0\r\n"),
            ("OBJECT IDLETIME nokey", "$-1\r\n"),
            ("OBJECT FREQ k", freq_err),
            ("OBJECT FREQ nokey", "$-1\r\n"),
            (
                "OBJECT",
                "-ERR wrong number of arguments for 'object' command\r\n",
            ),
            (
                "OBJECT ENCODING",
                "-ERR wrong number of arguments for 'object|encoding' command\r\n",
            ),
            (
                "OBJECT HELP x",
                "-ERR wrong number of arguments for 'object|help' command\r\n",
            ),
            (
                "OBJECT foo k",
                "-ERR unknown subcommand 'foo'. Try OBJECT HELP.\r\n",
            ),
            ("object encoding k", "$6\r\nembstr\r\n"),
        ],
    )
    .await;
    c.send(&resp(&[b"OBJECT", b"HELP"])).await;
    let help = c.read_exact_len(4).await;
    assert_eq!(help, b"*15\r");
    let mut r = client(s.local_addr()).await;
    let lines: Vec<String> = redis::cmd("OBJECT")
        .arg("HELP")
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(
        lines[0],
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    );
    assert_eq!(lines[14], "    Prints this help.");
    s.shutdown().await;
}

#[tokio::test]
async fn expire_options_and_errors() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let nx_err = "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n";
    let gtlt_err = "-ERR GT and LT options at the same time are not compatible\r\n";
    script(
        &mut c,
        &[
            ("SET k v", "+OK\r\n"),
            ("EXPIRE k 100 NX XX", nx_err),
            ("EXPIRE k 100 nx gt", nx_err),
            ("EXPIRE k 100 GT LT", gtlt_err),
            ("EXPIRE k 100 foo", "-ERR Unsupported option foo\r\n"),
            ("EXPIRE k x foo", "-ERR Unsupported option foo\r\n"),
            ("EXPIRE k x", NOT_INT),
            ("EXPIRE k 100 XX", ":0\r\n"),
            ("EXPIRE k 100 GT", ":0\r\n"),
            ("EXPIRE k 100 NX", ":1\r\n"),
            ("EXPIRE k 200 NX", ":0\r\n"),
            ("EXPIRE k 50 GT", ":0\r\n"),
            ("EXPIRE k 150 GT", ":1\r\n"),
            ("TTL k", ":150\r\n"),
            ("EXPIRE k 500 LT", ":0\r\n"),
            ("EXPIRE k 50 LT", ":1\r\n"),
            ("EXPIRE k 60 XX", ":1\r\n"),
            ("TTL k", ":60\r\n"),
            ("EXPIRE k 100 gt gt", ":1\r\n"),
            ("PERSIST k", ":1\r\n"),
            ("PERSIST k", ":0\r\n"),
            ("PERSIST nokey", ":0\r\n"),
            // LT on a key without TTL: any time is less than infinity.
            ("EXPIRE k 70 LT", ":1\r\n"),
            ("TTL k", ":70\r\n"),
            ("EXPIRE nokey 10", ":0\r\n"),
            ("EXPIRE nokey 10 NX", ":0\r\n"),
            (
                "EXPIRE k 9223372036854775",
                "-ERR invalid expire time in 'expire' command\r\n",
            ),
            (
                "EXPIRE k -9223372036854775808",
                "-ERR invalid expire time in 'expire' command\r\n",
            ),
            (
                "PEXPIRE k 9223372036854775807",
                "-ERR invalid expire time in 'pexpire' command\r\n",
            ),
            (
                "EXPIREAT k 9223372036854775807",
                "-ERR invalid expire time in 'expireat' command\r\n",
            ),
            ("PEXPIREAT k 9223372036854775807", ":1\r\n"),
            ("PEXPIRETIME k", ":9223372036854775807\r\n"),
            ("EXPIREAT k 9223372036854775", ":1\r\n"),
            ("EXPIRETIME k", ":9223372036854775\r\n"),
            ("PEXPIREAT k 99999999999500", ":1\r\n"),
            ("EXPIRETIME k", ":100000000000\r\n"),
            ("PEXPIRETIME k", ":99999999999500\r\n"),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn past_zero_and_negative_expiry_delete() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    script(
        &mut c,
        &[
            ("SET k v", "+OK\r\n"),
            ("EXPIRE k 0", ":1\r\n"),
            ("EXISTS k", ":0\r\n"),
            ("SET k v", "+OK\r\n"),
            ("EXPIRE k -10", ":1\r\n"),
            ("EXISTS k", ":0\r\n"),
            ("SET k v", "+OK\r\n"),
            ("PEXPIREAT k 1", ":1\r\n"),
            ("EXISTS k", ":0\r\n"),
            ("SET k v", "+OK\r\n"),
            ("EXPIREAT k 0", ":1\r\n"),
            ("EXISTS k", ":0\r\n"),
            ("SET k v", "+OK\r\n"),
            ("PEXPIRE k -9223372036854775808", ":1\r\n"),
            ("EXISTS k", ":0\r\n"),
            // With options, the conditions come first.
            ("SET k v", "+OK\r\n"),
            ("EXPIRE k -1 XX", ":0\r\n"),
            ("EXPIRE k -1 GT", ":0\r\n"),
            ("EXISTS k", ":1\r\n"),
            ("EXPIRE k -1 LT", ":1\r\n"),
            ("TTL k", ":-2\r\n"),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn ttl_family_values() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    script(
        &mut c,
        &[
            ("TTL nokey", ":-2\r\n"),
            ("PTTL nokey", ":-2\r\n"),
            ("EXPIRETIME nokey", ":-2\r\n"),
            ("PEXPIRETIME nokey", ":-2\r\n"),
            ("SET k v", "+OK\r\n"),
            ("TTL k", ":-1\r\n"),
            ("PTTL k", ":-1\r\n"),
            ("EXPIRETIME k", ":-1\r\n"),
            ("PEXPIRETIME k", ":-1\r\n"),
            ("PEXPIRE k 100000", ":1\r\n"),
            ("TTL k", ":100\r\n"),
        ],
    )
    .await;
    let mut r = client(s.local_addr()).await;
    let pttl: i64 = redis::cmd("PTTL")
        .arg("k")
        .query_async(&mut r)
        .await
        .unwrap();
    assert!((99_000..=100_000).contains(&pttl), "{pttl}");
    // Seconds round to the nearest: 1500 ms left reads as 2.
    let _: i64 = redis::cmd("PEXPIRE")
        .arg("k")
        .arg(1800)
        .query_async(&mut r)
        .await
        .unwrap();
    let ttl: i64 = redis::cmd("TTL")
        .arg("k")
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(ttl, 2);
    let _: i64 = redis::cmd("PEXPIRE")
        .arg("k")
        .arg(20)
        .query_async(&mut r)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(40)).await;
    let ttl: i64 = redis::cmd("TTL")
        .arg("k")
        .query_async(&mut r)
        .await
        .unwrap();
    assert_eq!(ttl, -2);
    s.shutdown().await;
}

#[tokio::test]
async fn resp3_replies() {
    let s = start().await;
    resp3(&s, &[b"RANDOMKEY"], b"_\r\n");
    resp3(&s, &[b"OBJECT", b"ENCODING", b"nokey"], b"_\r\n");
    resp3(&s, &[b"SET", b"k", b"v"], b"+OK\r\n");
    resp3(&s, &[b"TYPE", b"k"], b"+string\r\n");
    resp3(&s, &[b"SCAN", b"0"], b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n");
    s.shutdown().await;
}

#[test]
fn command_table_entries() {
    let t = redlog::commands::table();
    let get = |name: &str| {
        let idx = t.lookup(name.as_bytes()).expect(name);
        t.entries[idx].cmd
    };
    let mset = get("mset");
    assert_eq!(
        (mset.arity, mset.first_key, mset.last_key, mset.key_step),
        (-3, 1, -1, 2)
    );
    let lcs = get("lcs");
    assert_eq!((lcs.arity, lcs.first_key, lcs.last_key), (-3, 1, 2));
    assert_eq!(lcs.doc.since, "7.0.0");
    let keys = get("keys");
    assert!(keys.acl.contains(&"@dangerous"));
    let object = get("object");
    assert_eq!(object.subcommands.len(), 5);
    assert!(redlog::commands::handler(t.lookup(b"object").unwrap()).is_none());
    assert!(redlog::commands::handler(t.lookup(b"get").unwrap()).is_some());
    for name in [
        "get",
        "set",
        "getset",
        "getdel",
        "getex",
        "setnx",
        "setex",
        "psetex",
        "mset",
        "msetnx",
        "mget",
        "append",
        "strlen",
        "getrange",
        "setrange",
        "substr",
        "incr",
        "decr",
        "incrby",
        "decrby",
        "incrbyfloat",
        "lcs",
        "del",
        "unlink",
        "exists",
        "type",
        "keys",
        "scan",
        "randomkey",
        "rename",
        "renamenx",
        "copy",
        "move",
        "touch",
        "object",
        "expire",
        "pexpire",
        "expireat",
        "pexpireat",
        "ttl",
        "pttl",
        "expiretime",
        "pexpiretime",
        "persist",
    ] {
        let c = get(name);
        assert!(
            !c.doc.summary.is_empty() && !c.doc.complexity.is_empty(),
            "{name}"
        );
        assert!(c.arity != 0, "{name}");
    }
}
