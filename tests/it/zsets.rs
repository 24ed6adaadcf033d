//! Sorted set commands over the wire: exact reply bytes (checked against
//! redis-server 7.0.15), RESP3 shapes, WRONGTYPE, encodings, durability
//! (restart, compaction, kill -9) and a proptest of range queries against a
//! sorted Vec model.

use crate::common;
use common::*;
use proptest::prelude::*;
use redlog::db::Value;
use redlog::protocol::format_double;
use redlog::server::ServerHandle;
use std::path::Path;
use std::time::Duration;

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
const NOT_FLOAT: &str = "-ERR value is not a valid float\r\n";
const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

#[tokio::test]
async fn zadd_flags_incr_and_errors() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    script(
        &mut c,
        &[
            ("ZADD z 1 a 2 b 3 c", ":3\r\n"),
            ("ZADD z CH 10 a 2 b 4 d", ":2\r\n"),
            ("ZADD z NX 100 a 5 e", ":1\r\n"),
            ("ZADD z XX CH 100 a 6 f", ":1\r\n"),
            ("ZADD z GT CH 50 a", ":0\r\n"),
            ("ZADD z LT CH 50 a", ":1\r\n"),
            ("ZADD z INCR 5 a", "$2\r\n55\r\n"),
            ("ZADD z INCR NX 5 a", "$-1\r\n"),
            ("ZADD z INCR GT -1 a", "$-1\r\n"),
            ("ZINCRBY z 0.5 a", "$4\r\n55.5\r\n"),
            ("ZINCRBY z 0.1 new", "$19\r\n0.10000000000000001\r\n"),
            ("ZINCRBY z nx a", SYNTAX),
            ("ZADD z NX XX 1 a", "-ERR XX and NX options at the same time are not compatible\r\n"),
            ("ZADD z GT LT 1 a", "-ERR GT, LT, and/or NX options at the same time are not compatible\r\n"),
            ("ZADD z INCR 1 a 2 b", "-ERR INCR option supports a single increment-element pair\r\n"),
            ("ZADD z 1 a 2", SYNTAX),
            ("ZADD z nan a", NOT_FLOAT),
            ("ZADD z 1e400 a", NOT_FLOAT),
            ("ZADD z \"\" a", NOT_FLOAT),
            ("ZADD z 0x10 hex", ":1\r\n"),
            ("ZSCORE z hex", "$2\r\n16\r\n"),
            ("ZADD inf 1 +inf", ":1\r\n"),
            ("ZADD inf inf x", ":1\r\n"),
            ("ZINCRBY inf -inf x", "-ERR resulting score is not a number (NaN)\r\n"),
            ("ZSCORE inf x", "$3\r\ninf\r\n"),
            ("ZADD nokey XX 1 a", ":0\r\n"),
            ("EXISTS nokey", ":0\r\n"),
            ("ZRANGE z 0 -1 WITHSCORES", "*14\r\n$3\r\nnew\r\n$19\r\n0.10000000000000001\r\n$1\r\nb\r\n$1\r\n2\r\n$1\r\nc\r\n$1\r\n3\r\n$1\r\nd\r\n$1\r\n4\r\n$1\r\ne\r\n$1\r\n5\r\n$3\r\nhex\r\n$2\r\n16\r\n$1\r\na\r\n$4\r\n55.5\r\n"),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn ranges_pops_and_set_operations() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    script(
        &mut c,
        &[
            ("ZADD r 1 a 2 b 3 c 4 d 5 e", ":5\r\n"),
            ("ZRANGE r (1 4 BYSCORE LIMIT 1 2", "*2\r\n$1\r\nc\r\n$1\r\nd\r\n"),
            ("ZRANGE r 4 (1 BYSCORE REV LIMIT 0 1 WITHSCORES", "*2\r\n$1\r\nd\r\n$1\r\n4\r\n"),
            ("ZRANGE r 0 1 LIMIT 0 1", "-ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX\r\n"),
            ("ZRANGE r - + BYLEX WITHSCORES", "-ERR syntax error, WITHSCORES not supported in combination with BYLEX\r\n"),
            ("ZRANGEBYSCORE r x 1", "-ERR min or max is not a float\r\n"),
            ("ZRANGEBYLEX r x +", "-ERR min or max not valid string range item\r\n"),
            ("ZREVRANGE r 0 1", "*2\r\n$1\r\ne\r\n$1\r\nd\r\n"),
            ("ZCOUNT r (1 +inf", ":4\r\n"),
            ("ZRANK r c", ":2\r\n"),
            ("ZREVRANK r c", ":2\r\n"),
            ("ZPOPMIN r 2", "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"),
            ("ZPOPMAX r", "*2\r\n$1\r\ne\r\n$1\r\n5\r\n"),
            ("ZMPOP 2 nokey r MAX COUNT 5", "*2\r\n$1\r\nr\r\n*2\r\n*2\r\n$1\r\nd\r\n$1\r\n4\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n"),
            ("EXISTS r", ":0\r\n"),
            ("ZMPOP 1 r MIN", "*-1\r\n"),
            ("ZMPOP 0 r MIN", "-ERR numkeys should be greater than 0\r\n"),
            ("ZADD s1 1 a 2 b", ":2\r\n"),
            ("ZADD s2 10 b 20 c", ":2\r\n"),
            ("ZUNION 2 s1 s2 WEIGHTS 2 1 WITHSCORES", "*6\r\n$1\r\na\r\n$1\r\n2\r\n$1\r\nb\r\n$2\r\n14\r\n$1\r\nc\r\n$2\r\n20\r\n"),
            ("ZINTER 2 s1 s2 AGGREGATE MAX WITHSCORES", "*2\r\n$1\r\nb\r\n$2\r\n10\r\n"),
            ("ZDIFF 2 s1 s2", "*1\r\n$1\r\na\r\n"),
            ("ZINTERCARD 2 s1 s2", ":1\r\n"),
            ("ZUNIONSTORE dst 2 s1 s2", ":3\r\n"),
            ("ZINTERSTORE dst 2 s1 nokey", ":0\r\n"),
            ("EXISTS dst", ":0\r\n"),
            ("ZRANGESTORE dst s2 0 0", ":1\r\n"),
            ("ZRANGE dst 0 -1 WITHSCORES", "*2\r\n$1\r\nb\r\n$2\r\n10\r\n"),
            ("ZUNION 0 s1", "-ERR at least 1 input key is needed for 'zunion' command\r\n"),
            ("ZUNION 2 s1 s2 WEIGHTS 1 x", "-ERR weight value is not a float\r\n"),
            ("ZREMRANGEBYSCORE s2 -inf (20", ":1\r\n"),
            ("ZREMRANGEBYLEX s2 - +", ":1\r\n"),
            ("EXISTS s2", ":0\r\n"),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn resp3_shapes() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    check(
        &mut c,
        &[b"ZADD", b"z", b"1.5", b"a", b"inf", b"b"],
        b":2\r\n",
    )
    .await;
    resp3(&s, &[b"ZSCORE", b"z", b"b"], b",inf\r\n");
    resp3(&s, &[b"ZSCORE", b"z", b"x"], b"_\r\n");
    resp3(
        &s,
        &[b"ZRANGE", b"z", b"0", b"-1", b"WITHSCORES"],
        b"*2\r\n*2\r\n$1\r\na\r\n,1.5\r\n*2\r\n$1\r\nb\r\n,inf\r\n",
    );
    resp3(
        &s,
        &[b"ZUNION", b"1", b"z", b"WITHSCORES"],
        b"*2\r\n*2\r\n$1\r\na\r\n,1.5\r\n*2\r\n$1\r\nb\r\n,inf\r\n",
    );
    resp3(&s, &[b"ZMSCORE", b"z", b"a", b"x"], b"*2\r\n,1.5\r\n_\r\n");
    resp3(
        &s,
        &[b"ZSCAN", b"z", b"0"],
        b"*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$3\r\n1.5\r\n$1\r\nb\r\n$3\r\ninf\r\n",
    );
    resp3(
        &s,
        &[b"ZPOPMIN", b"z", b"1"],
        b"*1\r\n*2\r\n$1\r\na\r\n,1.5\r\n",
    );
    resp3(&s, &[b"ZPOPMIN", b"z"], b"*2\r\n$1\r\nb\r\n,inf\r\n");
    resp3(&s, &[b"ZMPOP", b"1", b"z", b"MIN"], b"_\r\n");
    resp3(&s, &[b"ZINCRBY", b"z", b"2", b"m"], b",2\r\n");
    s.shutdown().await;
}

#[tokio::test]
async fn wrongtype_against_a_string() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    check(&mut c, &[b"SET", b"str", b"v"], b"+OK\r\n").await;
    for cmd in [
        "ZADD str 1 a",
        "ZINCRBY str 1 a",
        "ZREM str a",
        "ZCARD str",
        "ZSCORE str a",
        "ZMSCORE str a",
        "ZRANK str a",
        "ZRANGE str 0 -1",
        "ZRANGEBYSCORE str 0 1",
        "ZCOUNT str 0 1",
        "ZLEXCOUNT str - +",
        "ZPOPMIN str",
        "ZMPOP 1 str MIN",
        "ZREMRANGEBYRANK str 0 1",
        "ZUNION 1 str",
        "ZUNIONSTORE d 1 str",
        "ZRANGESTORE d str 0 1",
        "ZRANDMEMBER str",
        "ZSCAN str 0",
    ] {
        script(&mut c, &[(cmd, WRONGTYPE)]).await;
    }
    // A zset under a string command.
    script(
        &mut c,
        &[
            ("ZADD z 1 a", ":1\r\n"),
            ("GET z", WRONGTYPE),
            ("TYPE z", "+zset\r\n"),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn encodings_follow_the_listpack_limits() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    for i in 0..128 {
        let m = format!("m{i}");
        check(&mut c, &[b"ZADD", b"z", b"1", m.as_bytes()], b":1\r\n").await;
    }
    script(&mut c, &[("OBJECT ENCODING z", "$8\r\nlistpack\r\n")]).await;
    script(
        &mut c,
        &[
            ("ZADD z 1 one-more", ":1\r\n"),
            ("OBJECT ENCODING z", "$8\r\nskiplist\r\n"),
            ("ZREM z one-more", ":1\r\n"),
            ("OBJECT ENCODING z", "$8\r\nskiplist\r\n"),
            ("ZUNIONSTORE u 1 z", ":128\r\n"),
            ("OBJECT ENCODING u", "$8\r\nlistpack\r\n"),
            ("CONFIG SET zset-max-listpack-value 3", "+OK\r\n"),
            ("ZADD v 1 abc", ":1\r\n"),
            ("OBJECT ENCODING v", "$8\r\nlistpack\r\n"),
            ("ZADD v 1 abcd", ":1\r\n"),
            ("OBJECT ENCODING v", "$8\r\nskiplist\r\n"),
            ("ZADD w 1 abcd", ":1\r\n"),
            ("OBJECT ENCODING w", "$8\r\nskiplist\r\n"),
            (
                "CONFIG GET zset-max-ziplist-value",
                "*2\r\n$22\r\nzset-max-ziplist-value\r\n$1\r\n3\r\n",
            ),
        ],
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn watch_sees_zset_changes() {
    let s = start().await;
    let mut a = Raw::connect(s.local_addr()).await;
    let mut b = Raw::connect(s.local_addr()).await;
    script(
        &mut a,
        &[
            ("ZADD z 1 a", ":1\r\n"),
            ("WATCH z", "+OK\r\n"),
            ("MULTI", "+OK\r\n"),
            ("ZCARD z", "+QUEUED\r\n"),
        ],
    )
    .await;
    script(&mut b, &[("ZINCRBY z 1 a", "$1\r\n2\r\n")]).await;
    script(&mut a, &[("EXEC", "*-1\r\n")]).await;
    // A no-op write does not touch the key.
    script(
        &mut a,
        &[
            ("WATCH z", "+OK\r\n"),
            ("MULTI", "+OK\r\n"),
            ("ZCARD z", "+QUEUED\r\n"),
        ],
    )
    .await;
    script(
        &mut b,
        &[("ZADD z NX 5 a", ":0\r\n"), ("ZREM z nosuch", ":0\r\n")],
    )
    .await;
    script(&mut a, &[("EXEC", "*1\r\n:1\r\n")]).await;
    s.shutdown().await;
}

// ---- durability ----

type Dump = Vec<(usize, Vec<u8>, Value, u64)>;

fn dump(s: &ServerHandle) -> Dump {
    let ks = s.shared().ks.lock();
    let mut v: Dump = ks
        .dbs
        .iter()
        .enumerate()
        .flat_map(|(i, d)| {
            d.iter()
                .map(move |(k, e)| (i, k.to_vec(), e.value.clone(), e.expires_at_ms))
        })
        .collect();
    v.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    v
}

async fn start_in(dir: &Path) -> ServerHandle {
    start_with(&[("dir", dir.to_str().unwrap())]).await
}

async fn run(c: &mut redis::aio::MultiplexedConnection, line: &str) -> redis::Value {
    let mut parts = line.split(' ');
    let mut k = redis::cmd(parts.next().unwrap());
    for a in parts {
        k.arg(a);
    }
    k.query_async(c)
        .await
        .unwrap_or_else(|e| panic!("{line}: {e}"))
}

async fn range(c: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<String> {
    redis::cmd("ZRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(c)
        .await
        .unwrap()
}

/// Every kind of zset write, with a compaction in the middle so both the
/// base snapshot (whole values) and operation effects after it replay.
#[tokio::test]
async fn restart_replays_operations_and_snapshots() {
    let dir = temp_dir();
    let s = start_in(&dir).await;
    let mut c = client(s.local_addr()).await;
    for i in 0..300 {
        run(&mut c, &format!("ZADD big {i} m{i}")).await;
    }
    run(&mut c, "ZADD small 1 a 2 b 3 c -0 z").await;
    run(&mut c, "ZINCRBY small 2 a").await;
    run(&mut c, "ZADD small INCR 0.1 b").await;
    run(&mut c, "BGREWRITEAOF").await;
    run(&mut c, "ZINCRBY small 2 a").await;
    run(&mut c, "ZREM big m0 m1 nosuch").await;
    run(&mut c, "ZPOPMAX big 3").await;
    run(&mut c, "ZPOPMIN big").await;
    run(&mut c, "ZREMRANGEBYRANK big 0 9").await;
    run(&mut c, "ZREMRANGEBYSCORE big (100 120").await;
    run(&mut c, "ZADD lex 0 a 0 b 0 c 0 d").await;
    run(&mut c, "ZREMRANGEBYLEX lex [b [c").await;
    run(&mut c, "ZMPOP 1 lex MIN COUNT 1").await;
    run(&mut c, "ZUNIONSTORE u 2 small lex WEIGHTS 2 3").await;
    run(&mut c, "ZRANGESTORE rs big 0 199").await;
    run(&mut c, "ZADD gone 1 x").await;
    run(&mut c, "ZPOPMIN gone").await;
    run(&mut c, "EXPIRE small 1000").await;
    run(&mut c, "SELECT 3").await;
    run(&mut c, "ZADD other 1 x").await;
    run(&mut c, "ZADD small XX CH GT 10 a 0 b").await;
    run(&mut c, "SELECT 0").await;
    let before = dump(&s);
    let small = range(&mut c, "small").await;
    assert_eq!(
        small,
        ["z", "0", "b", "2.1000000000000001", "c", "3", "a", "5"]
    );
    s.shutdown().await;

    let s = start_in(&dir).await;
    assert_eq!(dump(&s), before);
    let mut c = client(s.local_addr()).await;
    assert_eq!(range(&mut c, "small").await, small);
    let enc: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("rs")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(enc, "skiplist");
    let n: i64 = redis::cmd("ZCARD")
        .arg("big")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 300 - 2 - 3 - 1 - 10 - 20);
    s.shutdown().await;
    // Replay is deterministic: a second restart gives the same state again.
    let s = start_in(&dir).await;
    assert_eq!(dump(&s), before);
    s.shutdown().await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_ping(port: u16) -> redis::Connection {
    for _ in 0..500 {
        if let Ok(mut c) = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
        {
            if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                return c;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("server on {port} did not come up");
}

/// kill -9 after acknowledged ZADD / ZINCRBY / ZREM / ZPOPMIN: the
/// operation effects come back exactly.
#[test]
fn kill_9_keeps_acknowledged_zset_writes() {
    let dir = temp_dir();
    let port = free_port();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_redlog"))
            .args(["--port", &port.to_string(), "--dir", dir.to_str().unwrap()])
            .args(["--appendfsync", "always", "--loglevel", "warning"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = KillOnDrop(spawn());
    let mut c = wait_ping(port);
    let mut model: Vec<(String, f64)> = Vec::new();
    for i in 0..400u32 {
        let m = format!("m{}", i % 150);
        let inc = f64::from(i % 7) * 0.25;
        let got: f64 = redis::cmd("ZINCRBY")
            .arg("k")
            .arg(inc)
            .arg(&m)
            .query(&mut c)
            .unwrap();
        match model.iter_mut().find(|(x, _)| *x == m) {
            Some(e) => e.1 += inc,
            None => model.push((m.clone(), inc)),
        }
        assert_eq!(Some(got), model.iter().find(|(x, _)| *x == m).map(|e| e.1));
        if i % 5 == 0 {
            let victim = format!("m{}", (i * 7) % 150);
            let _: i64 = redis::cmd("ZREM")
                .arg("k")
                .arg(&victim)
                .query(&mut c)
                .unwrap();
            model.retain(|(x, _)| *x != victim);
        }
    }
    let before: Vec<String> = redis::cmd("ZRANGE")
        .arg("k")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut c)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let mut child = KillOnDrop(spawn());
    let mut c = wait_ping(port);
    let after: Vec<String> = redis::cmd("ZRANGE")
        .arg("k")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut c)
        .unwrap();
    assert_eq!(after, before);
    assert_eq!(after.len(), model.len() * 2);
    child.kill().unwrap();
    child.wait().unwrap();
}

// ---- proptest: range queries against a sorted Vec ----

#[derive(Clone, Debug)]
enum Query {
    Rank(i64, i64, bool),
    Score(i32, bool, i32, bool, bool, Option<(i64, i64)>),
    Lex(
        Option<(u8, bool)>,
        Option<(u8, bool)>,
        bool,
        Option<(i64, i64)>,
    ),
}

fn query() -> impl Strategy<Value = Query> {
    let limit = proptest::option::of((-1i64..6, -1i64..6));
    prop_oneof![
        (-12i64..12, -12i64..12, any::<bool>()).prop_map(|(a, b, r)| Query::Rank(a, b, r)),
        (
            -3i32..12,
            any::<bool>(),
            -3i32..12,
            any::<bool>(),
            any::<bool>(),
            limit.clone()
        )
            .prop_map(|(a, ax, b, bx, r, l)| Query::Score(a, ax, b, bx, r, l)),
        (
            proptest::option::of((b'a'..b'k', any::<bool>())),
            proptest::option::of((b'a'..b'k', any::<bool>())),
            any::<bool>(),
            limit
        )
            .prop_map(|(a, b, r, l)| Query::Lex(a, b, r, l)),
    ]
}

/// The model's answer: sorted (score, member) pairs filtered and sliced the
/// way Redis documents each query.
fn model_answer(sorted: &[(f64, String)], q: &Query) -> Vec<String> {
    let len = sorted.len() as i64;
    let limit_slice = |v: Vec<&(f64, String)>, l: &Option<(i64, i64)>| -> Vec<(f64, String)> {
        let (off, cnt) = l.unwrap_or((0, -1));
        if off < 0 || (off > 0 && off >= len) {
            return Vec::new();
        }
        let it = v.into_iter().skip(off as usize).cloned();
        if cnt < 0 {
            it.collect()
        } else {
            it.take(cnt as usize).collect()
        }
    };
    let (items, scores): (Vec<(f64, String)>, bool) = match q {
        Query::Rank(a, b, rev) => {
            let mut v: Vec<&(f64, String)> = sorted.iter().collect();
            if *rev {
                v.reverse();
            }
            let (mut s, mut e) = (*a, *b);
            if s < 0 {
                s += len;
            }
            if e < 0 {
                e += len;
            }
            s = s.max(0);
            e = e.min(len - 1);
            let picked = if s > e || s >= len {
                Vec::new()
            } else {
                v[s as usize..=e as usize]
                    .iter()
                    .map(|x| (*x).clone())
                    .collect()
            };
            (picked, true)
        }
        Query::Score(min, minex, max, maxex, rev, l) => {
            let (min, max) = (f64::from(*min), f64::from(*max));
            let mut v: Vec<&(f64, String)> = sorted
                .iter()
                .filter(|(s, _)| {
                    (if *minex { *s > min } else { *s >= min })
                        && (if *maxex { *s < max } else { *s <= max })
                })
                .collect();
            if *rev {
                v.reverse();
            }
            (limit_slice(v, l), true)
        }
        Query::Lex(min, max, rev, l) => {
            let ok_min = |m: &str| match min {
                None => true,
                Some((c, ex)) => {
                    let b = (*c as char).to_string();
                    if *ex {
                        m > b.as_str()
                    } else {
                        m >= b.as_str()
                    }
                }
            };
            let ok_max = |m: &str| match max {
                None => true,
                Some((c, ex)) => {
                    let b = (*c as char).to_string();
                    if *ex {
                        m < b.as_str()
                    } else {
                        m <= b.as_str()
                    }
                }
            };
            let mut v: Vec<&(f64, String)> = sorted
                .iter()
                .filter(|(_, m)| ok_min(m) && ok_max(m))
                .collect();
            if *rev {
                v.reverse();
            }
            (limit_slice(v, l), false)
        }
    };
    let mut out = Vec::new();
    for (s, m) in items {
        out.push(m);
        if scores {
            out.push(format_double(s));
        }
    }
    out
}

fn query_args(q: &Query) -> Vec<String> {
    let lex = |b: &Option<(u8, bool)>, inf: &str| match b {
        None => inf.to_string(),
        Some((c, ex)) => format!("{}{}", if *ex { '(' } else { '[' }, *c as char),
    };
    let score = |v: i32, ex: bool| format!("{}{v}", if ex { "(" } else { "" });
    let mut a = vec!["ZRANGE".to_string(), "k".to_string()];
    let (l, rev) = match q {
        Query::Rank(s, e, rev) => {
            a.extend([s.to_string(), e.to_string(), "WITHSCORES".into()]);
            (None, *rev)
        }
        Query::Score(min, minex, max, maxex, rev, l) => {
            let (lo, hi) = (score(*min, *minex), score(*max, *maxex));
            if *rev {
                a.extend([hi, lo]);
            } else {
                a.extend([lo, hi]);
            }
            a.extend(["BYSCORE".into(), "WITHSCORES".into()]);
            (*l, *rev)
        }
        Query::Lex(min, max, rev, l) => {
            let (lo, hi) = (lex(min, "-"), lex(max, "+"));
            if *rev {
                a.extend([hi, lo]);
            } else {
                a.extend([lo, hi]);
            }
            a.push("BYLEX".into());
            (*l, *rev)
        }
    };
    if rev {
        a.push("REV".into());
    }
    if let Some((o, c)) = l {
        a.extend(["LIMIT".into(), o.to_string(), c.to_string()]);
    }
    a
}

#[test]
fn ranges_match_a_sorted_vec_model() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(start());
    let conn = rt.block_on(client(s.local_addr()));
    // Lex queries are only specified for equal scores: half the cases use
    // one score for every member.
    let elems = proptest::collection::vec((0i32..10, 0u32..200), 0..160);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    runner
        .run(
            &(
                elems,
                any::<bool>(),
                proptest::collection::vec(query(), 1..12),
            ),
            |(elems, flat, queries)| {
                let mut c = conn.clone();
                rt.block_on(async {
                    let _: i64 = redis::cmd("DEL")
                        .arg("k")
                        .query_async(&mut c)
                        .await
                        .unwrap();
                    let mut model: Vec<(f64, String)> = Vec::new();
                    for (score, id) in &elems {
                        // Letters first so lex bounds a..k cut through the set.
                        let m = format!("{}{id}", (b'a' + (*id % 11) as u8) as char);
                        let score = if flat { 0.0 } else { f64::from(*score) };
                        let _: i64 = redis::cmd("ZADD")
                            .arg("k")
                            .arg(score)
                            .arg(&m)
                            .query_async(&mut c)
                            .await
                            .unwrap();
                        model.retain(|(_, x)| *x != m);
                        model.push((score, m));
                    }
                    model
                        .sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then_with(|| a.1.cmp(&b.1)));
                    for q in &queries {
                        if matches!(q, Query::Lex(..)) && !flat {
                            continue;
                        }
                        let args = query_args(q);
                        let mut cmd = redis::cmd(&args[0]);
                        for a in &args[1..] {
                            cmd.arg(a);
                        }
                        let got: Vec<String> = cmd.query_async(&mut c).await.unwrap();
                        prop_assert_eq!(&got, &model_answer(&model, q), "{:?}", args);
                    }
                    let card: usize = redis::cmd("ZCARD")
                        .arg("k")
                        .query_async(&mut c)
                        .await
                        .unwrap();
                    prop_assert_eq!(card, model.len());
                    for (i, (_, m)) in model.iter().enumerate().step_by(7) {
                        let r: usize = redis::cmd("ZRANK")
                            .arg("k")
                            .arg(m)
                            .query_async(&mut c)
                            .await
                            .unwrap();
                        prop_assert_eq!(r, i);
                    }
                    Ok(())
                })
            },
        )
        .unwrap();
    rt.block_on(s.shutdown());
}

/// ZSCAN on a skiplist set: every member present for the whole scan is
/// returned at least once although scores change between calls (members
/// jump across the whole score range) and other members come and go.
#[tokio::test]
async fn zscan_returns_every_stable_member_while_scores_change() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    let mut add = redis::cmd("ZADD");
    add.arg("z");
    for i in 0..600 {
        add.arg(i).arg(format!("m{i}"));
    }
    let n: i64 = add.query_async(&mut c).await.unwrap();
    assert_eq!(n, 600);
    let enc: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("z")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(enc, "skiplist");
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0u32;
    loop {
        let (next, items): (String, Vec<String>) = redis::cmd("ZSCAN")
            .arg("z")
            .arg(&cursor)
            .arg("COUNT")
            .arg(15)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(items.len() % 2 == 0);
        for pair in items.chunks(2) {
            seen.insert(pair[0].clone());
        }
        // Move every stable member to the other end of the score range
        // (what was scanned last comes first in score order and the other
        // way round), and churn unrelated members.
        let mut churn = redis::pipe();
        let sign = if calls.is_multiple_of(2) { -1 } else { 1 };
        let mut zadd = redis::cmd("ZADD");
        zadd.arg("z");
        for i in 0..600i64 {
            zadd.arg(sign * (1000 - i)).arg(format!("m{i}"));
        }
        churn.add_command(zadd).ignore();
        churn
            .cmd("ZADD")
            .arg("z")
            .arg(calls)
            .arg(format!("tmp{calls}"))
            .ignore();
        if calls > 0 {
            churn
                .cmd("ZREM")
                .arg("z")
                .arg(format!("tmp{}", calls - 1))
                .ignore();
        }
        churn.cmd("ZINCRBY").arg("z").arg(0.5).arg("m7").ignore();
        let () = churn.query_async(&mut c).await.unwrap();
        calls += 1;
        cursor = next;
        if cursor == "0" {
            break;
        }
        assert!(calls < 1000, "scan terminates");
    }
    assert!(calls > 10, "a skiplist set is scanned in several calls");
    for i in 0..600 {
        assert!(seen.contains(&format!("m{i}")), "m{i} missed");
    }
    s.shutdown().await;
}
