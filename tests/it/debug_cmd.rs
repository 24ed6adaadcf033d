//! DEBUG: the `enable-debug-command` gate (Redis's text, checked before
//! NOAUTH, aborting MULTI) and the subcommands redlog has, with replies
//! compared to redis-server 7.0.15's.

use crate::common;

use common::{resp, Raw};

const NOT_ALLOWED: &[u8] = b"-ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.\r\n";

#[tokio::test]
async fn debug_is_refused_by_default_even_before_auth() {
    let s = common::start_with(&[("requirepass", "pw")]).await;
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(&resp(&[b"DEBUG", b"SLEEP", b"0"]), NOT_ALLOWED)
        .await;
    c.check(&resp(&[b"DEBUG", b"FOO"]), NOT_ALLOWED).await;
    c.check(
        &resp(&[b"DEBUG"]),
        b"-ERR wrong number of arguments for 'debug' command\r\n",
    )
    .await;
    c.check(&resp(&[b"AUTH", b"pw"]), b"+OK\r\n").await;
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    c.check(&resp(&[b"DEBUG", b"SLEEP", b"0"]), NOT_ALLOWED)
        .await;
    c.check(
        &resp(&[b"EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn local_allows_loopback_clients() {
    let s = common::start_with(&[("enable-debug-command", "local")]).await;
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(&resp(&[b"DEBUG", b"SLEEP", b"0"]), b"+OK\r\n")
        .await;
    s.shutdown().await;
}

#[tokio::test]
async fn subcommands_reply_as_redis() {
    let s = common::start_with(&[("enable-debug-command", "yes")]).await;
    let mut c = Raw::connect(s.local_addr()).await;
    for (args, want) in [
        (&[&b"DEBUG"[..], b"sleep", b"abc"][..], &b"+OK\r\n"[..]),
        (&[b"DEBUG", b"SLEEP", b"0.01"], b"+OK\r\n"),
        (&[b"DEBUG", b"sleep", b"-1"], b"+OK\r\n"),
        (
            &[b"DEBUG", b"sleep"],
            b"-ERR unknown subcommand or wrong number of arguments for 'sleep'. Try DEBUG HELP.\r\n",
        ),
        (
            &[b"DEBUG", b"foo"],
            b"-ERR unknown subcommand or wrong number of arguments for 'foo'. Try DEBUG HELP.\r\n",
        ),
        (
            &[b"DEBUG", b"jmap"],
            b"-ERR unknown subcommand or wrong number of arguments for 'jmap'. Try DEBUG HELP.\r\n",
        ),
        (&[b"DEBUG", b"object", b"nokey"], b"-ERR no such key\r\n"),
        (&[b"DEBUG", b"error", b"foo"], b"-foo\r\n"),
        (&[b"DEBUG", b"error", b"-FOO bar"], b"--FOO bar\r\n"),
        (&[b"DEBUG", b"error", b"a\r\nb"], b"-a  b\r\n"),
        (&[b"DEBUG", b"log", b"hello"], b"+OK\r\n"),
        (&[b"DEBUG", b"Set-Active-Expire", b"2"], b"+OK\r\n"),
    ] {
        c.check(&resp(args), want).await;
    }
    let line = common::raw_cmd(&mut c, &["SET", "s", "hello"]).await;
    assert_eq!(line, "+OK\r\n");
    common::raw_cmd(&mut c, &["RPUSH", "l", "a", "b"]).await;
    let o = common::raw_cmd(&mut c, &["DEBUG", "OBJECT", "s"]).await;
    assert!(o.starts_with("+Value at:0x"), "{o}");
    assert!(
        o.contains(" refcount:1 encoding:embstr serializedlength:"),
        "{o}"
    );
    // The idle time depends on the machine's load: only its form is fixed.
    let idle = o
        .trim_end()
        .rsplit_once(" lru_seconds_idle:")
        .map(|(_, n)| n.to_string());
    assert!(
        idle.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        "{o}"
    );
    let o = common::raw_cmd(&mut c, &["DEBUG", "OBJECT", "l"]).await;
    assert!(
        o.contains(" encoding:quicklist ")
            && o.contains(" ql_nodes:1 ql_avg_node:2.00 ql_listpack_max:-1 ql_compressed:0 ql_uncompressed_size:"),
        "{o}"
    );
    s.shutdown().await;
}

/// SET-ACTIVE-EXPIRE 0 stops the background cycle: an expired key nobody
/// reads stays counted until the cycle is turned back on.
#[tokio::test]
async fn set_active_expire_stops_the_cycle() {
    let s = common::start_with(&[("enable-debug-command", "yes"), ("hz", "100")]).await;
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(&resp(&[b"DEBUG", b"SET-ACTIVE-EXPIRE", b"0"]), b"+OK\r\n")
        .await;
    c.check(&resp(&[b"SET", b"k", b"v", b"PX", b"1"]), b"+OK\r\n")
        .await;
    // Long enough for many cycles at hz 100; DBSIZE does not expire keys.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    c.check(&resp(&[b"DBSIZE"]), b":1\r\n").await;
    c.check(&resp(&[b"DEBUG", b"SET-ACTIVE-EXPIRE", b"1"]), b"+OK\r\n")
        .await;
    let mut gone = false;
    for _ in 0..500 {
        if common::raw_cmd(&mut c, &["DBSIZE"]).await == ":0\r\n" {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(gone, "the active cycle never removed the key");
    s.shutdown().await;
}
