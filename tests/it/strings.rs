//! String commands over the wire: exact reply bytes (checked against
//! redis-server 7.0.15) through `Raw`, plus RESP2/RESP3 through the `redis`
//! crate.

use crate::common;
use common::*;
use std::time::Duration;

/// Sends one command and asserts the exact reply bytes.
async fn check(c: &mut Raw, args: &[&[u8]], expected: &[u8]) {
    c.check(&resp(args), expected).await;
}

/// Runs `(command line, expected reply)` pairs; arguments are split on spaces.
async fn script(c: &mut Raw, steps: &[(&str, &str)]) {
    for (cmd, want) in steps {
        let args: Vec<&[u8]> = cmd
            .split(' ')
            .map(|t| if t == "\"\"" { &b""[..] } else { t.as_bytes() })
            .collect();
        check(c, &args, want.as_bytes()).await;
    }
}

const SYNTAX: &str = "-ERR syntax error\r\n";
const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";
const NOT_FLOAT: &str = "-ERR value is not a valid float\r\n";

#[tokio::test]
async fn set_options() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let bad_expire = "-ERR invalid expire time in 'set' command\r\n";
    script(
        &mut c,
        &[
            ("SET k v", "+OK\r\n"),
            ("SET k v2 GET", "$1\r\nv\r\n"),
            ("SET k v3 NX", "$-1\r\n"),
            ("SET k v3 NX GET", "$2\r\nv2\r\n"),
            ("GET k", "$2\r\nv2\r\n"),
            ("SET k v4 XX GET", "$2\r\nv2\r\n"),
            ("SET nokey v XX", "$-1\r\n"),
            ("SET nokey v XX GET", "$-1\r\n"),
            ("EXISTS nokey", ":0\r\n"),
            ("SET k v nx xx", SYNTAX),
            ("SET k v xx nx", SYNTAX),
            ("SET k v EX 10 PX 10", SYNTAX),
            ("SET k v EX 10 KEEPTTL", SYNTAX),
            ("SET k v KEEPTTL EXAT 10", SYNTAX),
            ("SET k v PERSIST", SYNTAX),
            ("SET k v EX", SYNTAX),
            ("SET k v foo", SYNTAX),
            ("SET k v EX abc", NOT_INT),
            ("SET k v EX 0", bad_expire),
            ("SET k v EX -1", bad_expire),
            ("SET k v PX 0", bad_expire),
            ("SET k v EXAT 0", bad_expire),
            ("SET k v EX 9223372036854775", bad_expire),
            ("SET k v PX 9223372036854775807", bad_expire),
            ("SET k v EX 9223372036854775807", bad_expire),
            // Repeating the same option is allowed; the last value wins.
            ("SET k v EX 10 EX 20", "+OK\r\n"),
            ("TTL k", ":20\r\n"),
            ("SET k v NX NX", "$-1\r\n"),
            ("SET k v KEEPTTL", "+OK\r\n"),
            ("TTL k", ":20\r\n"),
            ("SET k v", "+OK\r\n"),
            ("TTL k", ":-1\r\n"),
            ("SET k v PXAT 9223372036854775807", "+OK\r\n"),
            ("SET k v EXAT 9223372036854775", "+OK\r\n"),
            ("SET k v EX 9223372036854", "+OK\r\n"),
            // An absolute time in the past: stored, then gone on access.
            ("SET k v PXAT 1", "+OK\r\n"),
            ("GET k", "$-1\r\n"),
            ("EXISTS k", ":0\r\n"),
        ],
    )
    .await;
    // Options match as C strings: the argument ends at a NUL byte.
    check(&mut c, &[b"SET", b"k", b"v", b"nx\0junk"], b"+OK\r\n").await;
    check(&mut c, &[b"SET", b"k", b"v", b"nx\0junk"], b"$-1\r\n").await;
    s.shutdown().await;
}

#[tokio::test]
async fn binary_safe_keys_and_values() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let key: &[u8] = b"k\0\r\n\xff";
    let val: &[u8] = b"\0\x01\r\n$3\r\n\xfe";
    check(&mut c, &[b"SET", key, val], b"+OK\r\n").await;
    let mut want = b"$9\r\n".to_vec();
    want.extend_from_slice(val);
    want.extend_from_slice(b"\r\n");
    check(&mut c, &[b"GET", key], &want).await;
    check(&mut c, &[b"STRLEN", key], b":9\r\n").await;
    check(&mut c, &[b"APPEND", key, b"\0"], b":10\r\n").await;
    check(
        &mut c,
        &[b"GETRANGE", key, b"-2", b"-1"],
        b"$2\r\n\xfe\0\r\n",
    )
    .await;
    check(&mut c, &[b"GET", b"k"], b"$-1\r\n").await;
    s.shutdown().await;
}

#[tokio::test]
async fn get_variants() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    script(
        &mut c,
        &[
            ("GETSET k a", "$-1\r\n"),
            ("EXPIRE k 100", ":1\r\n"),
            ("GETSET k b", "$1\r\na\r\n"),
            ("TTL k", ":-1\r\n"),
            ("GETDEL k", "$1\r\nb\r\n"),
            ("GETDEL k", "$-1\r\n"),
            ("SET k v", "+OK\r\n"),
            ("GETEX k", "$1\r\nv\r\n"),
            ("GETEX k EX 100", "$1\r\nv\r\n"),
            ("TTL k", ":100\r\n"),
            ("GETEX k PX 50000", "$1\r\nv\r\n"),
            ("TTL k", ":50\r\n"),
            ("GETEX k EX 10 EX 20", "$1\r\nv\r\n"),
            ("TTL k", ":20\r\n"),
            ("GETEX k PERSIST", "$1\r\nv\r\n"),
            ("TTL k", ":-1\r\n"),
            ("GETEX k EXAT 99999999999", "$1\r\nv\r\n"),
            ("EXPIRETIME k", ":99999999999\r\n"),
            ("GETEX k PERSIST EX 10", SYNTAX),
            ("GETEX k EX 10 PERSIST", SYNTAX),
            ("GETEX k KEEPTTL", SYNTAX),
            ("GETEX k NX", SYNTAX),
            ("GETEX k GET", SYNTAX),
            ("GETEX k EX", SYNTAX),
            (
                "GETEX k PX 0",
                "-ERR invalid expire time in 'getex' command\r\n",
            ),
            (
                "GETEX k EX 9223372036854775",
                "-ERR invalid expire time in 'getex' command\r\n",
            ),
            ("GETEX k EX x", NOT_INT),
            // A missing key is null even with an invalid time.
            ("GETEX nokey EX 0", "$-1\r\n"),
            // A past absolute time replies the value, then deletes the key.
            ("GETEX k PXAT 1", "$1\r\nv\r\n"),
            ("EXISTS k", ":0\r\n"),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn setnx_setex_mset() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    script(
        &mut c,
        &[
            ("SETNX k a", ":1\r\n"),
            ("SETNX k b", ":0\r\n"),
            ("GET k", "$1\r\na\r\n"),
            ("SETEX s 100 v", "+OK\r\n"),
            ("TTL s", ":100\r\n"),
            (
                "SETEX s 0 v",
                "-ERR invalid expire time in 'setex' command\r\n",
            ),
            (
                "SETEX s -5 v",
                "-ERR invalid expire time in 'setex' command\r\n",
            ),
            ("SETEX s x v", NOT_INT),
            (
                "PSETEX s 0 v",
                "-ERR invalid expire time in 'psetex' command\r\n",
            ),
            (
                "PSETEX s 9223372036854775807 v",
                "-ERR invalid expire time in 'psetex' command\r\n",
            ),
            ("PSETEX s 100000 v", "+OK\r\n"),
            ("TTL s", ":100\r\n"),
            (
                "SETEX s 10",
                "-ERR wrong number of arguments for 'setex' command\r\n",
            ),
            ("MSET a 1 b 2", "+OK\r\n"),
            (
                "MSET a 1 b",
                "-ERR wrong number of arguments for 'mset' command\r\n",
            ),
            (
                "MSET a",
                "-ERR wrong number of arguments for 'mset' command\r\n",
            ),
            ("MSETNX a 1 c 2", ":0\r\n"),
            ("EXISTS c", ":0\r\n"),
            ("MSETNX c 1 d 2", ":1\r\n"),
            ("MSETNX x 1 x 2", ":1\r\n"),
            ("GET x", "$1\r\n2\r\n"),
            (
                "MSETNX y 1 z",
                "-ERR wrong number of arguments for 'msetnx' command\r\n",
            ),
            (
                "MGET a b nokey c",
                "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n$1\r\n1\r\n",
            ),
            // MSET removes a TTL, as SET does.
            ("MSET s v", "+OK\r\n"),
            ("TTL s", ":-1\r\n"),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn append_strlen_ranges() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let too_big = "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n";
    script(
        &mut c,
        &[
            ("APPEND k Hello", ":5\r\n"),
            ("APPEND k _World", ":11\r\n"),
            ("STRLEN k", ":11\r\n"),
            ("STRLEN nokey", ":0\r\n"),
            ("GETRANGE k 0 -1", "$11\r\nHello_World\r\n"),
            ("GETRANGE k -3 -1", "$3\r\nrld\r\n"),
            ("GETRANGE k 5 3", "$0\r\n\r\n"),
            ("GETRANGE k -1 -5", "$0\r\n\r\n"),
            ("GETRANGE k 0 -100", "$1\r\nH\r\n"),
            ("GETRANGE k -100 100", "$11\r\nHello_World\r\n"),
            ("GETRANGE k 100 200", "$0\r\n\r\n"),
            (
                "GETRANGE k -9223372036854775808 9223372036854775807",
                "$11\r\nHello_World\r\n",
            ),
            (
                "GETRANGE k 9223372036854775807 9223372036854775807",
                "$0\r\n\r\n",
            ),
            ("GETRANGE k a 1", NOT_INT),
            ("GETRANGE nokey 0 -1", "$0\r\n\r\n"),
            ("SUBSTR k 0 4", "$5\r\nHello\r\n"),
            ("SET n 12345", "+OK\r\n"),
            ("GETRANGE n 1 2", "$2\r\n23\r\n"),
            ("SETRANGE k 6 Redis", ":11\r\n"),
            ("GET k", "$11\r\nHello_Redis\r\n"),
            ("SETRANGE k 1 \"\"", ":11\r\n"),
            ("SETRANGE new 0 \"\"", ":0\r\n"),
            ("EXISTS new", ":0\r\n"),
            ("SETRANGE k -1 x", "-ERR offset is out of range\r\n"),
            ("SETRANGE k x x", NOT_INT),
            ("SETRANGE k 536870912 x", too_big),
            ("SETRANGE k 9223372036854775807 x", too_big),
            ("SETRANGE pad 3 ab", ":5\r\n"),
            ("GET pad", "$5\r\n\0\0\0ab\r\n"),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn counters() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let overflow = "-ERR increment or decrement would overflow\r\n";
    script(
        &mut c,
        &[
            ("INCR n", ":1\r\n"),
            ("INCRBY n 9", ":10\r\n"),
            ("DECR n", ":9\r\n"),
            ("DECRBY n -1", ":10\r\n"),
            ("INCRBY n -20", ":-10\r\n"),
            ("INCRBY n x", NOT_INT),
            ("INCRBY n 9223372036854775808", NOT_INT),
            (
                "DECRBY n -9223372036854775808",
                "-ERR decrement would overflow\r\n",
            ),
            ("SET n 9223372036854775807", "+OK\r\n"),
            ("INCR n", overflow),
            ("SET n -9223372036854775808", "+OK\r\n"),
            ("DECR n", overflow),
            ("INCRBY n -1", overflow),
            ("INCRBY n 9223372036854775807", ":-1\r\n"),
            ("SET n 1.5", "+OK\r\n"),
            ("INCR n", NOT_INT),
            ("SET n 01", "+OK\r\n"),
            ("INCR n", NOT_INT),
            ("SET n -0", "+OK\r\n"),
            ("INCR n", NOT_INT),
            // INCR keeps the TTL.
            ("SET t 5 EX 100", "+OK\r\n"),
            ("INCR t", ":6\r\n"),
            ("TTL t", ":100\r\n"),
        ],
    )
    .await;
    check(&mut c, &[b"SET", b"n", b" 1"], b"+OK\r\n").await;
    check(&mut c, &[b"INCR", b"n"], NOT_INT.as_bytes()).await;
    check(&mut c, &[b"SET", b"n", b""], b"+OK\r\n").await;
    check(&mut c, &[b"INCR", b"n"], NOT_INT.as_bytes()).await;
    s.shutdown().await;
}

#[tokio::test]
async fn incrbyfloat_long_double_formatting() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let nan_inf = "-ERR increment would produce NaN or Infinity\r\n";
    script(
        &mut c,
        &[
            ("INCRBYFLOAT f 10.50", "$4\r\n10.5\r\n"),
            ("INCRBYFLOAT f 0.1", "$4\r\n10.6\r\n"),
            ("INCRBYFLOAT f -5.0e3", "$23\r\n-4989.39999999999999991\r\n"),
            ("INCRBYFLOAT f 4989.4", "$1\r\n0\r\n"),
            ("INCRBYFLOAT g 0.1", "$3\r\n0.1\r\n"),
            ("INCRBYFLOAT g 0.2", "$3\r\n0.3\r\n"),
            ("INCRBYFLOAT h 3000", "$4\r\n3000\r\n"),
            ("INCRBYFLOAT h 0.1", "$22\r\n3000.10000000000000009\r\n"),
            ("INCRBYFLOAT i 1e20", "$21\r\n100000000000000000000\r\n"),
            ("INCRBYFLOAT j 1e-20", "$1\r\n0\r\n"),
            ("INCRBYFLOAT j -0", "$1\r\n0\r\n"),
            ("INCRBYFLOAT k 0x10", "$2\r\n16\r\n"),
            ("INCRBYFLOAT k .5", "$4\r\n16.5\r\n"),
            (
                "INCRBYFLOAT l 0.000003814697265625",
                "$19\r\n0.00000381469726562\r\n",
            ),
            ("INCRBYFLOAT x abc", NOT_FLOAT),
            ("INCRBYFLOAT x nan", NOT_FLOAT),
            ("INCRBYFLOAT x 1e", NOT_FLOAT),
            ("INCRBYFLOAT x 1e5000", NOT_FLOAT),
            ("INCRBYFLOAT x inf", nan_inf),
            ("INCRBYFLOAT x -infinity", nan_inf),
            ("EXISTS x", ":0\r\n"),
            ("SET s abc", "+OK\r\n"),
            ("INCRBYFLOAT s 1", NOT_FLOAT),
            ("SET s 1e5", "+OK\r\n"),
            ("INCRBYFLOAT s 1", "$6\r\n100001\r\n"),
            // The result is a plain string, never int-encoded; INCR re-encodes.
            ("OBJECT ENCODING s", "$6\r\nembstr\r\n"),
            ("INCR s", ":100002\r\n"),
            ("OBJECT ENCODING s", "$3\r\nint\r\n"),
            // The TTL is kept.
            ("SET t 1 EX 100", "+OK\r\n"),
            ("INCRBYFLOAT t 1.5", "$3\r\n2.5\r\n"),
            ("TTL t", ":100\r\n"),
        ],
    )
    .await;
    check(&mut c, &[b"INCRBYFLOAT", b"x", b" 1"], NOT_FLOAT.as_bytes()).await;
    check(&mut c, &[b"INCRBYFLOAT", b"x", b"1 "], NOT_FLOAT.as_bytes()).await;
    check(&mut c, &[b"INCRBYFLOAT", b"x", b""], NOT_FLOAT.as_bytes()).await;
    // Overflow of the long double range.
    let max = b"1.18973149535723176502e+4932";
    c.send(&resp(&[b"INCRBYFLOAT", b"m", max])).await;
    let head = c.read_exact_len(6).await;
    assert_eq!(&head, b"$4933\r");
    let _rest = c.read_exact_len(4933 + 3).await;
    check(&mut c, &[b"INCRBYFLOAT", b"m", max], nan_inf.as_bytes()).await;
    s.shutdown().await;
}

#[tokio::test]
async fn lcs_modes() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    script(
        &mut c,
        &[
            ("MSET a ohmytext b mynewtext", "+OK\r\n"),
            ("LCS a b", "$6\r\nmytext\r\n"),
            ("LCS a b LEN", ":6\r\n"),
            (
                "LCS a b IDX",
                "*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n",
            ),
            (
                "LCS a b IDX MINMATCHLEN 4 WITHMATCHLEN",
                "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n",
            ),
            (
                "LCS a b LEN IDX",
                "-ERR If you want both the length and indexes, please just use IDX.\r\n",
            ),
            ("LCS a b foo", SYNTAX),
            ("LCS a b MINMATCHLEN", SYNTAX),
            ("LCS a b MINMATCHLEN x", NOT_INT),
            ("LCS a nokey", "$0\r\n\r\n"),
            ("LCS n1 n2 IDX", "*4\r\n$7\r\nmatches\r\n*0\r\n$3\r\nlen\r\n:0\r\n"),
            ("LCS a", "-ERR wrong number of arguments for 'lcs' command\r\n"),
        ],
    )
    .await;
    s.shutdown().await;

    // RESP3: IDX replies a map, missing values are `_`.
    let s = start().await;
    resp3(
        &s,
        &[b"MSET", b"a", b"ohmytext", b"b", b"mynewtext"],
        b"+OK\r\n",
    );
    resp3(
        &s,
        &[b"LCS", b"a", b"b", b"IDX", b"MINMATCHLEN", b"3"],
        b"%2\r\n$7\r\nmatches\r\n*1\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n$3\r\nlen\r\n:6\r\n",
    );
    resp3(&s, &[b"GET", b"nokey"], b"_\r\n");
    resp3(
        &s,
        &[b"MGET", b"a", b"nokey"],
        b"*2\r\n$8\r\nohmytext\r\n_\r\n",
    );
    resp3(&s, &[b"SET", b"a", b"x", b"NX"], b"_\r\n");
    resp3(&s, &[b"GETDEL", b"nokey"], b"_\r\n");
    s.shutdown().await;
}

#[tokio::test]
async fn string_encodings_and_refcount() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let long45 = "x".repeat(45);
    let long44 = "x".repeat(44);
    let set45 = format!("SET r {long45}");
    let set44 = format!("SET e {long44}");
    script(
        &mut c,
        &[
            ("SET i 123", "+OK\r\n"),
            ("OBJECT ENCODING i", "$3\r\nint\r\n"),
            ("OBJECT REFCOUNT i", ":2147483647\r\n"),
            ("SET i 9999", "+OK\r\n"),
            ("OBJECT REFCOUNT i", ":2147483647\r\n"),
            ("SET i 10000", "+OK\r\n"),
            ("OBJECT REFCOUNT i", ":1\r\n"),
            ("SET i -1", "+OK\r\n"),
            ("OBJECT REFCOUNT i", ":1\r\n"),
            ("SET i 12345678901234567890", "+OK\r\n"),
            ("OBJECT ENCODING i", "$6\r\nembstr\r\n"),
            ("SET i 01", "+OK\r\n"),
            ("OBJECT ENCODING i", "$6\r\nembstr\r\n"),
            (&set44, "+OK\r\n"),
            ("OBJECT ENCODING e", "$6\r\nembstr\r\n"),
            (&set45, "+OK\r\n"),
            ("OBJECT ENCODING r", "$3\r\nraw\r\n"),
            ("OBJECT REFCOUNT r", ":1\r\n"),
            // APPEND to an existing value makes it raw; to a new key, not.
            ("SET a 12", "+OK\r\n"),
            ("APPEND a 3", ":3\r\n"),
            ("OBJECT ENCODING a", "$3\r\nraw\r\n"),
            ("APPEND new 7", ":1\r\n"),
            ("OBJECT ENCODING new", "$3\r\nint\r\n"),
            ("SETRANGE sr 0 12", ":2\r\n"),
            ("OBJECT ENCODING sr", "$3\r\nraw\r\n"),
            ("INCR sr", ":13\r\n"),
            ("OBJECT ENCODING sr", "$3\r\nint\r\n"),
            ("OBJECT REFCOUNT sr", ":2147483647\r\n"),
            ("OBJECT ENCODING nokey", "$-1\r\n"),
            ("OBJECT REFCOUNT nokey", "$-1\r\n"),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn redis_crate_client() {
    let s = start().await;
    let mut c2 = client(s.local_addr()).await;
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut c2)
        .await
        .unwrap();
    let v: Option<String> = redis::cmd("GET")
        .arg("k")
        .query_async(&mut c2)
        .await
        .unwrap();
    assert_eq!(v.as_deref(), Some("v"));
    let v: redis::Value = redis::cmd("GET")
        .arg("nokey")
        .query_async(&mut c2)
        .await
        .unwrap();
    assert_eq!(v, redis::Value::Nil);
    let v: Vec<Option<String>> = redis::cmd("MGET")
        .arg("k")
        .arg("nokey")
        .query_async(&mut c2)
        .await
        .unwrap();
    assert_eq!(v, vec![Some("v".to_string()), None]);
    let f: String = redis::cmd("INCRBYFLOAT")
        .arg("f")
        .arg("2.5")
        .query_async(&mut c2)
        .await
        .unwrap();
    assert_eq!(f, "2.5");
    let n: i64 = redis::cmd("INCRBY")
        .arg("n")
        .arg(-3)
        .query_async(&mut c2)
        .await
        .unwrap();
    assert_eq!(n, -3);
    let e = redis::cmd("INCR")
        .arg("k")
        .query_async::<i64>(&mut c2)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("value is not an integer"), "{e}");
    s.shutdown().await;
}

#[tokio::test]
async fn short_ttls_expire() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    check(&mut c, &[b"SET", b"k", b"v", b"PX", b"5"], b"+OK\r\n").await;
    check(&mut c, &[b"PSETEX", b"p", b"5", b"v"], b"+OK\r\n").await;
    check(&mut c, &[b"SET", b"g", b"v"], b"+OK\r\n").await;
    check(&mut c, &[b"GETEX", b"g", b"PX", b"5"], b"$1\r\nv\r\n").await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    check(&mut c, &[b"GET", b"k"], b"$-1\r\n").await;
    check(&mut c, &[b"GET", b"p"], b"$-1\r\n").await;
    check(&mut c, &[b"GET", b"g"], b"$-1\r\n").await;
    // Writes to an expired key start from nothing.
    check(&mut c, &[b"SET", b"c", b"5", b"PX", b"5"], b"+OK\r\n").await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    check(&mut c, &[b"INCR", b"c"], b":1\r\n").await;
    check(&mut c, &[b"TTL", b"c"], b":-1\r\n").await;
    s.shutdown().await;
}
