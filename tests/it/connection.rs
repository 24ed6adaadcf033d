//! Connection commands over the wire: HELLO, AUTH, RESET, SELECT, CLIENT.

use crate::common;
use common::raw_cmd as cmd;
use common::*;

fn hello_reply(map: &str, proto: u8, id: &str) -> String {
    format!(
        "{map}$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:{proto}\r\n$2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
    )
}

/// The client's id, from CLIENT ID.
async fn client_id(c: &mut Raw) -> String {
    let r = cmd(c, &["CLIENT", "ID"]).await;
    r.trim_start_matches(':').trim_end().to_string()
}

#[tokio::test]
async fn hello_switches_protocol() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let id = client_id(&mut c).await;
    assert_eq!(
        cmd(&mut c, &["HELLO"]).await,
        hello_reply("*14\r\n", 2, &id)
    );
    assert_eq!(
        cmd(&mut c, &["hello", "3"]).await,
        hello_reply("%7\r\n", 3, &id)
    );
    // RESP3 now: a missing name is `_`, CLIENT INFO a verbatim string.
    assert_eq!(cmd(&mut c, &["CLIENT", "GETNAME"]).await, "_\r\n");
    let info = cmd(&mut c, &["CLIENT", "INFO"]).await;
    assert!(info.starts_with('=') && info.contains("txt:id=") && info.contains(" resp=3 "));
    assert_eq!(
        cmd(&mut c, &["HELLO", "4"]).await,
        "-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["HELLO", "1"]).await,
        "-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["HELLO", "x"]).await,
        "-ERR Protocol version is not an integer or out of range\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["HELLO", "2", "FOO"]).await,
        "-ERR Syntax error in HELLO option 'FOO'\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["HELLO", "2", "SETNAME"]).await,
        "-ERR Syntax error in HELLO option 'SETNAME'\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["HELLO", "2", "SETNAME", "a b"]).await,
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    // The failed HELLOs left the connection in RESP3.
    assert_eq!(cmd(&mut c, &["CLIENT", "GETNAME"]).await, "_\r\n");
    assert_eq!(
        cmd(
            &mut c,
            &["HELLO", "2", "AUTH", "default", "any", "SETNAME", "nm"]
        )
        .await,
        hello_reply("*14\r\n", 2, &id)
    );
    assert_eq!(cmd(&mut c, &["CLIENT", "GETNAME"]).await, "$2\r\nnm\r\n");
    s.shutdown().await;
}

#[tokio::test]
async fn redis_crate_connects_in_resp2_and_resp3() {
    let s = start().await;
    let mut c3 = client3(s.local_addr()).await;
    let pong: String = redis::cmd("PING").query_async(&mut c3).await.unwrap();
    assert_eq!(pong, "PONG");
    let info: String = redis::cmd("CLIENT")
        .arg("INFO")
        .query_async(&mut c3)
        .await
        .unwrap();
    assert!(info.contains("resp=3"), "{info}");
    let mut c2 = client(s.local_addr()).await;
    let () = redis::cmd("CLIENT")
        .arg("SETINFO")
        .arg("LIB-NAME")
        .arg("mylib")
        .query_async(&mut c2)
        .await
        .unwrap();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut c2)
        .await
        .unwrap();
    assert!(list.contains("lib-name=mylib"), "{list}");
    assert!(list.contains("resp=3") && list.contains("resp=2"), "{list}");
    s.shutdown().await;
}

#[tokio::test]
async fn auth_without_password_configured() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    assert_eq!(
        cmd(&mut c, &["AUTH", "x"]).await,
        "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["AUTH", "default", "whatever"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["AUTH", "bob", "x"]).await,
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["AUTH", "a", "b", "c"]).await,
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["AUTH"]).await,
        "-ERR wrong number of arguments for 'auth' command\r\n"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn requirepass_noauth_and_hello_auth() {
    let s = start_with(&[("requirepass", "pw")]).await;
    let mut c = Raw::connect(s.local_addr()).await;
    assert_eq!(
        cmd(&mut c, &["PING"]).await,
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["HELLO", "3"]).await,
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n"
    );
    let wrong = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    assert_eq!(cmd(&mut c, &["AUTH", "bad"]).await, wrong);
    assert_eq!(cmd(&mut c, &["AUTH", "x", "pw"]).await, wrong);
    assert_eq!(
        cmd(&mut c, &["HELLO", "3", "AUTH", "default", "bad"]).await,
        wrong
    );
    assert_eq!(
        cmd(&mut c, &["PING"]).await,
        "-NOAUTH Authentication required.\r\n"
    );
    let r = cmd(&mut c, &["HELLO", "2", "AUTH", "default", "pw"]).await;
    assert!(r.starts_with("*14\r\n"), "{r}");
    assert_eq!(cmd(&mut c, &["PING"]).await, "+PONG\r\n");
    // RESET makes the connection authenticate again.
    assert_eq!(cmd(&mut c, &["RESET"]).await, "+RESET\r\n");
    assert_eq!(
        cmd(&mut c, &["PING"]).await,
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(cmd(&mut c, &["AUTH", "pw"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut c, &["AUTH", "default", "pw"]).await, "+OK\r\n");
    // A failed AUTH does not log an authenticated client out.
    assert_eq!(cmd(&mut c, &["AUTH", "nope"]).await, wrong);
    assert_eq!(cmd(&mut c, &["PING"]).await, "+PONG\r\n");

    // The redis crate authenticates through HELLO 3 AUTH.
    let url = format!("redis://:pw@{}/?protocol=resp3", s.local_addr());
    let cl = redis::Client::open(url).unwrap();
    let mut conn = cl.get_multiplexed_async_connection().await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");

    // Clearing requirepass lets unauthenticated connections in.
    let mut other = Raw::connect(s.local_addr()).await;
    assert_eq!(
        cmd(&mut other, &["PING"]).await,
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["CONFIG", "SET", "requirepass", ""]).await,
        "+OK\r\n"
    );
    assert_eq!(cmd(&mut other, &["PING"]).await, "+PONG\r\n");
    s.shutdown().await;
}

#[tokio::test]
async fn requirepass_set_at_runtime_applies_to_new_connections() {
    let s = start().await;
    let mut a = Raw::connect(s.local_addr()).await;
    assert_eq!(
        cmd(&mut a, &["CONFIG", "SET", "requirepass", "sec"]).await,
        "+OK\r\n"
    );
    assert_eq!(cmd(&mut a, &["PING"]).await, "+PONG\r\n");
    let mut b = Raw::connect(s.local_addr()).await;
    assert_eq!(
        cmd(&mut b, &["PING"]).await,
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(cmd(&mut b, &["AUTH", "sec"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut b, &["PING"]).await, "+PONG\r\n");
    s.shutdown().await;
}

#[tokio::test]
async fn select_and_ping_echo() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    assert_eq!(cmd(&mut c, &["SELECT", "15"]).await, "+OK\r\n");
    assert_eq!(
        cmd(&mut c, &["SELECT", "16"]).await,
        "-ERR DB index is out of range\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["SELECT", "-1"]).await,
        "-ERR DB index is out of range\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["SELECT", "x"]).await,
        "-ERR value is not an integer or out of range\r\n"
    );
    assert!(cmd(&mut c, &["CLIENT", "INFO"]).await.contains(" db=15 "));
    assert_eq!(cmd(&mut c, &["PING", "hi"]).await, "$2\r\nhi\r\n");
    assert_eq!(
        cmd(&mut c, &["PING", "a", "b"]).await,
        "-ERR wrong number of arguments for 'ping' command\r\n"
    );
    assert_eq!(cmd(&mut c, &["ECHO", "x"]).await, "$1\r\nx\r\n");
    assert_eq!(cmd(&mut c, &["QUIT"]).await, "+OK\r\n");
    assert!(c.closed().await);
    s.shutdown().await;
}

#[tokio::test]
async fn reset_clears_connection_state() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let mut other = Raw::connect(s.local_addr()).await;
    assert!(cmd(&mut c, &["HELLO", "3", "SETNAME", "me"])
        .await
        .starts_with('%'));
    assert_eq!(cmd(&mut c, &["SELECT", "3"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut c, &["CLIENT", "NO-EVICT", "on"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut c, &["CLIENT", "NO-TOUCH", "on"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut c, &["WATCH", "k"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut c, &["MULTI"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut c, &["RESET"]).await, "+RESET\r\n");
    assert_eq!(cmd(&mut c, &["EXEC"]).await, "-ERR EXEC without MULTI\r\n");
    // Back to RESP2, no name, db 0, no flags.
    assert_eq!(cmd(&mut c, &["CLIENT", "GETNAME"]).await, "$-1\r\n");
    let info = cmd(&mut c, &["CLIENT", "INFO"]).await;
    assert!(info.starts_with('$'), "{info}");
    assert!(info.contains(" name= ") && info.contains(" db=0 ") && info.contains(" flags=N "));
    assert!(info.contains(" resp=2 "), "{info}");
    // The WATCH is gone: a change to k no longer aborts a transaction.
    assert_eq!(cmd(&mut other, &["SET", "k", "1"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut c, &["MULTI"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut c, &["EXEC"]).await, "*0\r\n");
    // RESET also turns CLIENT REPLY back on.
    c.send(&resp(&[b"CLIENT", b"REPLY", b"OFF"])).await;
    assert_eq!(cmd(&mut c, &["RESET"]).await, "+RESET\r\n");
    assert_eq!(cmd(&mut c, &["PING"]).await, "+PONG\r\n");
    s.shutdown().await;
}

#[tokio::test]
async fn client_name_info_and_list() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let mut d = Raw::connect(s.local_addr()).await;
    let id = client_id(&mut c).await;
    let did = client_id(&mut d).await;
    assert_eq!(cmd(&mut c, &["CLIENT", "GETNAME"]).await, "$-1\r\n");
    assert_eq!(
        cmd(&mut c, &["CLIENT", "SETNAME", "a b"]).await,
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["CLIENT", "SETNAME", "conn-1"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["client", "getname"]).await,
        "$6\r\nconn-1\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["CLIENT", "SETINFO", "lib-ver", "1.0"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["CLIENT", "SETINFO", "LIB-NAME", "my lib"]).await,
        "-ERR LIB-NAME cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["CLIENT", "SETINFO", "foo", "x"]).await,
        "-ERR Unrecognized option 'foo'\r\n"
    );
    let info = cmd(&mut c, &["CLIENT", "INFO"]).await;
    let expected_start = format!("id={id} addr=");
    assert!(info.contains(&expected_start), "{info}");
    assert!(info.contains(" name=conn-1 ") && info.contains(" cmd=client|info "));
    assert!(
        info.contains(" lib-ver=1.0") && info.ends_with("\n\r\n"),
        "{info}"
    );

    let list = cmd(&mut c, &["CLIENT", "LIST"]).await;
    assert!(list.contains(&format!("id={id} ")) && list.contains(&format!("id={did} ")));
    assert_eq!(
        list.matches('\n').count(),
        4,
        "header, two lines, bulk end: {list}"
    );
    let only_d = cmd(&mut c, &["CLIENT", "LIST", "ID", &did, "999999"]).await;
    assert!(only_d.contains(&format!("id={did} ")) && !only_d.contains("conn-1"));
    assert_eq!(
        cmd(&mut c, &["CLIENT", "LIST", "ID", "1", "abc"]).await,
        "-ERR Invalid client ID\r\n"
    );
    assert!(cmd(&mut c, &["CLIENT", "LIST", "TYPE", "normal"])
        .await
        .contains("conn-1"));
    assert_eq!(
        cmd(&mut c, &["CLIENT", "LIST", "TYPE", "pubsub"]).await,
        "$0\r\n\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["CLIENT", "LIST", "TYPE", "foo"]).await,
        "-ERR Unknown client type 'foo'\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["CLIENT", "LIST", "foo"]).await,
        "-ERR syntax error\r\n"
    );

    assert_eq!(
        cmd(&mut c, &["CLIENT", "NO-EVICT", "maybe"]).await,
        "-ERR syntax error\r\n"
    );
    assert_eq!(cmd(&mut c, &["CLIENT", "NO-EVICT", "ON"]).await, "+OK\r\n");
    assert!(cmd(&mut c, &["CLIENT", "INFO"]).await.contains(" flags=e "));
    assert_eq!(cmd(&mut c, &["CLIENT", "NO-TOUCH", "on"]).await, "+OK\r\n");
    assert!(cmd(&mut c, &["CLIENT", "INFO"])
        .await
        .contains(" flags=eT "));
    assert_eq!(cmd(&mut c, &["CLIENT", "NO-EVICT", "off"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut c, &["CLIENT", "NO-TOUCH", "off"]).await, "+OK\r\n");
    assert!(cmd(&mut c, &["CLIENT", "INFO"]).await.contains(" flags=N "));

    assert_eq!(
        cmd(&mut c, &["CLIENT", "FOO"]).await,
        "-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["CLIENT"]).await,
        "-ERR wrong number of arguments for 'client' command\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["CLIENT", "ID", "x"]).await,
        "-ERR wrong number of arguments for 'client|id' command\r\n"
    );
    let help = cmd(&mut c, &["CLIENT", "HELP"]).await;
    assert!(
        help.starts_with("*")
            && help
                .contains("+CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n")
    );
    assert!(help.ends_with("+HELP\r\n+    Prints this help.\r\n"));
    s.shutdown().await;
}

#[tokio::test]
async fn client_kill_forms() {
    let s = start().await;
    let mut a = Raw::connect(s.local_addr()).await;
    let mut b = Raw::connect(s.local_addr()).await;
    let bid = client_id(&mut b).await;
    assert_eq!(
        cmd(&mut a, &["CLIENT", "KILL", "ID", "x"]).await,
        "-ERR client-id should be greater than 0\r\n"
    );
    assert_eq!(
        cmd(&mut a, &["CLIENT", "KILL", "ID", "0"]).await,
        "-ERR client-id should be greater than 0\r\n"
    );
    assert_eq!(
        cmd(&mut a, &["CLIENT", "KILL", "ID", "99999"]).await,
        ":0\r\n"
    );
    assert_eq!(
        cmd(&mut a, &["CLIENT", "KILL", "1.2.3.4:5"]).await,
        "-ERR No such client\r\n"
    );
    assert_eq!(
        cmd(&mut a, &["CLIENT", "KILL", "USER", "bob"]).await,
        "-ERR No such user 'bob'\r\n"
    );
    assert_eq!(
        cmd(&mut a, &["CLIENT", "KILL", "TYPE", "foo"]).await,
        "-ERR Unknown client type 'foo'\r\n"
    );
    assert_eq!(
        cmd(&mut a, &["CLIENT", "KILL", "SKIPME", "maybe"]).await,
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        cmd(&mut a, &["CLIENT", "KILL", "ID", "1", "X"]).await,
        "-ERR syntax error\r\n"
    );
    // Filter form by ID.
    assert_eq!(cmd(&mut a, &["CLIENT", "KILL", "ID", &bid]).await, ":1\r\n");
    assert!(b.closed().await);
    assert!(!cmd(&mut a, &["CLIENT", "LIST"])
        .await
        .contains(&format!("id={bid} ")));
    // Old form by address.
    let mut c = Raw::connect(s.local_addr()).await;
    let caddr = c.stream.local_addr().unwrap().to_string();
    assert_eq!(cmd(&mut c, &["PING"]).await, "+PONG\r\n");
    assert_eq!(cmd(&mut a, &["CLIENT", "KILL", &caddr]).await, "+OK\r\n");
    assert!(c.closed().await);
    // ADDR filter, and TYPE normal skipping the caller.
    let mut d = Raw::connect(s.local_addr()).await;
    let daddr = d.stream.local_addr().unwrap().to_string();
    assert_eq!(cmd(&mut d, &["PING"]).await, "+PONG\r\n");
    assert_eq!(
        cmd(&mut a, &["CLIENT", "KILL", "ADDR", &daddr, "SKIPME", "yes"]).await,
        ":1\r\n"
    );
    assert!(d.closed().await);
    let mut e = Raw::connect(s.local_addr()).await;
    assert_eq!(cmd(&mut e, &["PING"]).await, "+PONG\r\n");
    assert_eq!(
        cmd(&mut a, &["CLIENT", "KILL", "TYPE", "normal"]).await,
        ":1\r\n"
    );
    assert!(e.closed().await);
    // Killing yourself: the reply comes, then the connection closes.
    let aid = client_id(&mut a).await;
    assert_eq!(
        cmd(&mut a, &["CLIENT", "KILL", "ID", &aid, "SKIPME", "no"]).await,
        ":1\r\n"
    );
    assert!(a.closed().await);
    s.shutdown().await;
}

#[tokio::test]
async fn client_reply_off_and_skip() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    let mut batch = Vec::new();
    for args in [
        &[&b"CLIENT"[..], b"REPLY", b"OFF"][..],
        &[b"PING"],
        &[b"SET", b"k", b"v"],
        &[b"CLIENT", b"REPLY", b"ON"],
        &[b"CLIENT", b"REPLY", b"SKIP"],
        &[b"PING", b"skipped"],
        &[b"GET", b"k"],
    ] {
        batch.extend(resp(args));
    }
    c.check(&batch, b"+OK\r\n$1\r\nv\r\n").await;
    assert_eq!(
        cmd(&mut c, &["CLIENT", "REPLY", "maybe"]).await,
        "-ERR syntax error\r\n"
    );
    s.shutdown().await;
}
