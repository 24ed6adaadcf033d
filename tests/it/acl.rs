//! ACL: a restricted user over RESP2 and RESP3, inside MULTI, in scripts
//! and LOGPARSE; the ACL log; connections closed when their user is
//! deleted or their channels revoked; the ACL file (load, save, startup);
//! `user` lines in the config file; `requirepass` as the default user's
//! password.

use crate::common;

use common::{bulk, resp, start, start_with, Raw};
use redlog::config::Config;
use std::time::Duration;

const NOPERM_KEY: &[u8] =
    b"-NOPERM this user has no permissions to access one of the keys used as arguments\r\n";

fn noperm_cmd(name: &str) -> Vec<u8> {
    format!("-NOPERM this user has no permissions to run the '{name}' command\r\n").into_bytes()
}

/// Sends a command and returns whatever arrived within a short while
/// (for replies whose exact length the test does not know).
async fn call(c: &mut Raw, args: &[&[u8]]) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    c.send(&resp(args)).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    // First bytes, then whatever follows within 100 ms.
    loop {
        let wait = if out.is_empty() {
            deadline
        } else {
            tokio::time::Instant::now() + Duration::from_millis(100)
        };
        match tokio::time::timeout_at(wait, c.stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    out
}

fn has(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The restricted user of the issue: `~app:*` and `+@read` (plus MULTI and
/// scripts, so those paths can be reached).
async fn app_user(admin: &mut Raw) {
    admin
        .check(
            &resp(&[
                b"ACL",
                b"SETUSER",
                b"app",
                b"on",
                b">pw",
                b"~app:*",
                b"-@all",
                b"+@read",
                b"+@transaction",
                b"+@scripting",
            ]),
            b"+OK\r\n",
        )
        .await;
}

async fn restricted_checks(c: &mut Raw, resp3: bool) {
    let null: &[u8] = if resp3 { b"_\r\n" } else { b"$-1\r\n" };
    c.check(&resp(&[b"GET", b"app:1"]), b"$1\r\nv\r\n").await;
    c.check(&resp(&[b"GET", b"other"]), NOPERM_KEY).await;
    c.check(&resp(&[b"MGET", b"app:1", b"other"]), NOPERM_KEY)
        .await;
    c.check(&resp(&[b"SET", b"app:1", b"x"]), &noperm_cmd("set"))
        .await;
    c.check(&resp(&[b"DEL", b"app:1"]), &noperm_cmd("del"))
        .await;
    c.check(&resp(&[b"GET", b"app:nokey"]), null).await;
    // Inside MULTI: refused at queueing time, and EXEC aborts.
    c.check(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    c.check(&resp(&[b"GET", b"app:1"]), b"+QUEUED\r\n").await;
    c.check(&resp(&[b"GET", b"other"]), NOPERM_KEY).await;
    c.check(&resp(&[b"SET", b"app:1", b"x"]), &noperm_cmd("set"))
        .await;
    c.check(
        &resp(&[b"EXEC"]),
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    )
    .await;
    // Scripts run as their caller.
    c.check(
        &resp(&[b"EVAL", b"return redis.call('get','app:1')", b"0"]),
        b"$1\r\nv\r\n",
    )
    .await;
    c.check(
        &resp(&[b"EVAL", b"return redis.pcall('get','other')", b"0"]),
        b"-ERR The user executing the script can't access at least one of the keys mentioned in the command arguments\r\n",
    )
    .await;
    c.check(
        &resp(&[b"EVAL", b"return redis.pcall('set','app:1','x')", b"0"]),
        b"-ERR The user executing the script can't run this command or subcommand\r\n",
    )
    .await;
    let r = call(c, &[b"EVAL", b"return redis.call('set','app:1','x')", b"0"]).await;
    assert!(
        r.starts_with(
            b"-ERR The user executing the script can't run this command or subcommand script: "
        ),
        "{}",
        String::from_utf8_lossy(&r)
    );
    // LOGPARSE: reading a stream under app:* is allowed, others are not,
    // and INGEST writes.
    c.check(&resp(&[b"LOGPARSE", b"STATS", b"other"]), NOPERM_KEY)
        .await;
    c.check(
        &resp(&[b"LOGPARSE", b"INGEST", b"app:log", b"syslog", b"x"]),
        &noperm_cmd("logparse|ingest"),
    )
    .await;
    let stats = call(c, &[b"LOGPARSE", b"STATS", b"app:log"]).await;
    assert!(
        !stats.starts_with(b"-NOPERM"),
        "{}",
        String::from_utf8_lossy(&stats)
    );
    // Nothing was written.
    c.check(&resp(&[b"GET", b"app:1"]), b"$1\r\nv\r\n").await;
}

#[tokio::test]
async fn restricted_user_over_resp2_and_resp3() {
    let s = start().await;
    let mut admin = Raw::connect(s.local_addr()).await;
    admin
        .check(&resp(&[b"SET", b"app:1", b"v"]), b"+OK\r\n")
        .await;
    admin
        .check(&resp(&[b"SET", b"other", b"o"]), b"+OK\r\n")
        .await;
    let mut rc = common::client(s.local_addr()).await;
    let _: redis::Value = redis::cmd("LOGPARSE")
        .arg("INGEST")
        .arg("app:log")
        .arg("syslog")
        .arg("<13>Jan  1 00:00:00 h app: hello")
        .query_async(&mut rc)
        .await
        .expect("ingest");
    app_user(&mut admin).await;

    let mut c2 = Raw::connect(s.local_addr()).await;
    c2.check(
        &resp(&[b"AUTH", b"app", b"wrong"]),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )
    .await;
    c2.check(&resp(&[b"AUTH", b"app", b"pw"]), b"+OK\r\n").await;
    restricted_checks(&mut c2, false).await;

    let mut c3 = Raw::connect(s.local_addr()).await;
    let hello = call(&mut c3, &[b"HELLO", b"3", b"AUTH", b"app", b"pw"]).await;
    assert!(
        hello.starts_with(b"%7\r\n"),
        "{}",
        String::from_utf8_lossy(&hello)
    );
    restricted_checks(&mut c3, true).await;

    // The rules are read again before each command: revoking GET takes
    // effect at once, and at EXEC for a command queued before.
    c3.check(&resp(&[b"MULTI"]), b"+OK\r\n").await;
    c3.check(&resp(&[b"GET", b"app:1"]), b"+QUEUED\r\n").await;
    admin
        .check(&resp(&[b"ACL", b"SETUSER", b"app", b"-get"]), b"+OK\r\n")
        .await;
    c3.check(
        &resp(&[b"EXEC"]),
        b"*1\r\n-NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: no permission to execute the command or subcommand\r\n",
    )
    .await;
    c3.check(&resp(&[b"GET", b"app:1"]), &noperm_cmd("get"))
        .await;
    c3.check(&resp(&[b"ACL", b"WHOAMI"]), &noperm_cmd("acl|whoami"))
        .await;

    // The ACL log has the denials, newest first, grouped.
    let log = call(&mut admin, &[b"ACL", b"LOG", b"3"]).await;
    let text = String::from_utf8_lossy(&log);
    assert!(log.starts_with(b"*3\r\n*14\r\n$5\r\ncount\r\n"), "{text}");
    assert!(
        has(&log, b"$6\r\nobject\r\n$10\r\nacl|whoami\r\n"),
        "{text}"
    );
    assert!(has(&log, b"$7\r\ncontext\r\n$5\r\nmulti\r\n"), "{text}");
    assert!(has(&log, b"$8\r\nusername\r\n$3\r\napp\r\n"), "{text}");
    assert!(has(&log, b"user=app"), "{text}");
    let all = call(&mut admin, &[b"ACL", b"LOG", b"100"]).await;
    let text = String::from_utf8_lossy(&all);
    for needle in [
        &b"$3\r\nkey\r\n$7\r\ncontext\r\n$8\r\ntoplevel\r\n$6\r\nobject\r\n$5\r\nother\r\n"[..],
        b"$7\r\ncontext\r\n$3\r\nlua\r\n",
        b"$6\r\nreason\r\n$4\r\nauth\r\n$7\r\ncontext\r\n$8\r\ntoplevel\r\n$6\r\nobject\r\n$4\r\nAUTH\r\n",
        b"$6\r\nobject\r\n$15\r\nlogparse|ingest\r\n",
    ] {
        assert!(has(&all, needle), "{} in {text}", String::from_utf8_lossy(needle));
    }
    admin
        .check(&resp(&[b"ACL", b"LOG", b"RESET"]), b"+OK\r\n")
        .await;
    admin.check(&resp(&[b"ACL", b"LOG"]), b"*0\r\n").await;
}

#[tokio::test]
async fn deleting_a_user_closes_its_connections() {
    let s = start().await;
    let mut admin = Raw::connect(s.local_addr()).await;
    app_user(&mut admin).await;
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(&resp(&[b"AUTH", b"app", b"pw"]), b"+OK\r\n").await;
    // Turning the user off keeps authenticated connections (Redis 7.0).
    admin
        .check(&resp(&[b"ACL", b"SETUSER", b"app", b"off"]), b"+OK\r\n")
        .await;
    c.check(&resp(&[b"GET", b"app:x"]), b"$-1\r\n").await;
    let mut d = Raw::connect(s.local_addr()).await;
    d.check(
        &resp(&[b"AUTH", b"app", b"pw"]),
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )
    .await;
    admin
        .check(&resp(&[b"ACL", b"DELUSER", b"app", b"nosuch"]), b":1\r\n")
        .await;
    assert!(c.closed().await);
    // The default user's connections stay.
    admin.check(&resp(&[b"PING"]), b"+PONG\r\n").await;
    d.check(&resp(&[b"PING"]), b"+PONG\r\n").await;
}

#[tokio::test]
async fn revoking_a_channel_closes_its_subscribers() {
    let s = start().await;
    let mut admin = Raw::connect(s.local_addr()).await;
    admin
        .check(
            &resp(&[
                b"ACL", b"SETUSER", b"sub", b"on", b"nopass", b"+@all", b"&news.*", b"&sport",
            ]),
            b"+OK\r\n",
        )
        .await;
    let mut a = Raw::connect(s.local_addr()).await;
    a.check(&resp(&[b"AUTH", b"sub", b"x"]), b"+OK\r\n").await;
    a.check(
        &resp(&[b"SUBSCRIBE", b"news.a"]),
        b"*3\r\n$9\r\nsubscribe\r\n$6\r\nnews.a\r\n:1\r\n",
    )
    .await;
    let mut b = Raw::connect(s.local_addr()).await;
    b.check(&resp(&[b"AUTH", b"sub", b"x"]), b"+OK\r\n").await;
    b.check(
        &resp(&[b"SUBSCRIBE", b"sport"]),
        b"*3\r\n$9\r\nsubscribe\r\n$5\r\nsport\r\n:1\r\n",
    )
    .await;
    b.check(
        &resp(&[b"SUBSCRIBE", b"weather"]),
        b"-NOPERM this user has no permissions to access one of the channels used as arguments\r\n",
    )
    .await;
    // Adding a channel revokes nothing.
    admin
        .check(&resp(&[b"ACL", b"SETUSER", b"sub", b"&more"]), b"+OK\r\n")
        .await;
    // Dropping news.*: A (subscribed to news.a) goes, B (sport) stays.
    admin
        .check(
            &resp(&[b"ACL", b"SETUSER", b"sub", b"resetchannels", b"&sport"]),
            b"+OK\r\n",
        )
        .await;
    assert!(a.closed().await);
    admin
        .check(&resp(&[b"PUBLISH", b"sport", b"goal"]), b":1\r\n")
        .await;
    b.check(b"", b"*3\r\n$7\r\nmessage\r\n$5\r\nsport\r\n$4\r\ngoal\r\n")
        .await;
}

#[tokio::test]
async fn aclfile_load_and_save_round_trip() {
    let dir = tempfile::Builder::new()
        .prefix("redlog-acl-")
        .tempdir()
        .unwrap()
        .keep();
    let file = dir.join("users.acl");
    std::fs::write(
        &file,
        "user default on nopass ~* &* +@all\n\nuser alice on >secret ~a:* resetchannels -@all +@read\n",
    )
    .unwrap();
    let s = start_with(&[("aclfile", file.to_str().unwrap())]).await;
    let mut admin = Raw::connect(s.local_addr()).await;
    let list = call(&mut admin, &[b"ACL", b"LIST"]).await;
    let alice = format!(
        "user alice on #{} ~a:* resetchannels -@all +@read",
        redlog::acl::hash_password(b"secret")
    );
    assert_eq!(
        list,
        [
            &b"*2\r\n"[..],
            &bulk(alice.as_bytes()),
            &bulk(b"user default on nopass ~* &* +@all"),
        ]
        .concat()
    );
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(&resp(&[b"AUTH", b"alice", b"secret"]), b"+OK\r\n")
        .await;
    admin
        .check(
            &resp(&[
                b"ACL",
                b"SETUSER",
                b"bob",
                b"on",
                b">pw",
                b"+@all",
                b"allkeys",
                b"-flushall",
                b"(~x* +get)",
            ]),
            b"+OK\r\n",
        )
        .await;
    admin.check(&resp(&[b"ACL", b"SAVE"]), b"+OK\r\n").await;
    let saved = std::fs::read_to_string(&file).unwrap();
    let bob = format!(
        "user bob on #{} ~* resetchannels +@all -flushall (~x* resetchannels -@all +get)",
        redlog::acl::hash_password(b"pw")
    );
    assert_eq!(
        saved,
        format!("{alice}\n{bob}\nuser default on nopass ~* &* +@all\n")
    );
    // Edit the file and load it: all or nothing, and the old users'
    // connections are closed.
    std::fs::write(&file, format!("{bob}\nuser carol on nopass +bogus\n")).unwrap();
    let r = call(&mut admin, &[b"ACL", b"LOAD"]).await;
    let want = format!(
        "-ERR {}:2: Error in applying operation '+bogus': Unknown command or category name in ACL. WARNING: ACL errors detected, no change to the previously active ACL rules was performed\r\n",
        file.display()
    );
    assert_eq!(String::from_utf8_lossy(&r), want);
    c.check(&resp(&[b"GET", b"a:1"]), b"$-1\r\n").await;
    std::fs::write(&file, format!("{bob}\n")).unwrap();
    admin.check(&resp(&[b"ACL", b"LOAD"]), b"+OK\r\n").await;
    assert!(c.closed().await);
    admin
        .check(
            &resp(&[b"ACL", b"USERS"]),
            b"*2\r\n$3\r\nbob\r\n$7\r\ndefault\r\n",
        )
        .await;
    // The restarted server reads the saved file.
    admin.check(&resp(&[b"ACL", b"SAVE"]), b"+OK\r\n").await;
    s.shutdown().await;
    let s2 = start_with(&[("aclfile", file.to_str().unwrap())]).await;
    let mut c = Raw::connect(s2.local_addr()).await;
    c.check(&resp(&[b"AUTH", b"bob", b"pw"]), b"+OK\r\n").await;
    c.check(&resp(&[b"FLUSHALL"]), &noperm_cmd("flushall"))
        .await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn user_lines_in_the_config_file() {
    let mut cfg = Config::default();
    cfg.load_file_text(
        "port 0\nuser alice on >pw ~a:* +get\nuser default on >adminpw ~* &* +@all\n",
        redlog::commands::table(),
    )
    .unwrap();
    let dir = tempfile::Builder::new()
        .prefix("redlog-acl-")
        .tempdir()
        .unwrap()
        .keep();
    cfg.set_startup("dir", dir.to_str().unwrap()).unwrap();
    let both = {
        let mut c = cfg.clone();
        c.set_startup("aclfile", dir.join("x.acl").to_str().unwrap())
            .unwrap();
        c
    };
    let err = redlog::server::spawn(both).await.err().expect("refused");
    assert!(
        err.to_string().contains(
            "users defined in redis.conf and at the same setting an ACL file path is invalid"
        ),
        "{err}"
    );
    let s = redlog::server::spawn(cfg).await.expect("server starts");
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(
        &resp(&[b"GET", b"a:1"]),
        b"-NOAUTH Authentication required.\r\n",
    )
    .await;
    c.check(&resp(&[b"AUTH", b"alice", b"pw"]), b"+OK\r\n")
        .await;
    c.check(&resp(&[b"GET", b"a:1"]), b"$-1\r\n").await;
    c.check(&resp(&[b"GET", b"b"]), NOPERM_KEY).await;
    c.check(&resp(&[b"AUTH", b"adminpw"]), b"+OK\r\n").await;
    let list = call(&mut c, &[b"ACL", b"LIST"]).await;
    let text = String::from_utf8_lossy(&list);
    assert!(text.contains("user alice on #"), "{text}");
    assert!(text.contains(" ~a:* resetchannels -@all +get"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn requirepass_is_the_default_users_password() {
    let s = start().await;
    let mut admin = Raw::connect(s.local_addr()).await;
    admin
        .check(
            &resp(&[b"CONFIG", b"SET", b"requirepass", b"s3cret"]),
            b"+OK\r\n",
        )
        .await;
    let u = call(&mut admin, &[b"ACL", b"GETUSER", b"default"]).await;
    let h = redlog::acl::hash_password(b"s3cret");
    assert!(
        has(
            &u,
            &[&b"$9\r\npasswords\r\n*1\r\n"[..], &bulk(h.as_bytes())].concat()
        ),
        "{}",
        String::from_utf8_lossy(&u)
    );
    let mut c = Raw::connect(s.local_addr()).await;
    c.check(&resp(&[b"PING"]), b"-NOAUTH Authentication required.\r\n")
        .await;
    c.check(&resp(&[b"AUTH", b"default", b"s3cret"]), b"+OK\r\n")
        .await;
    // A password set with ACL SETUSER works the same way.
    admin
        .check(
            &resp(&[b"ACL", b"SETUSER", b"default", b">other"]),
            b"+OK\r\n",
        )
        .await;
    let mut d = Raw::connect(s.local_addr()).await;
    d.check(&resp(&[b"AUTH", b"other"]), b"+OK\r\n").await;
    admin
        .check(&resp(&[b"CONFIG", b"SET", b"requirepass", b""]), b"+OK\r\n")
        .await;
    let mut e = Raw::connect(s.local_addr()).await;
    e.check(&resp(&[b"PING"]), b"+PONG\r\n").await;
    e.check(
        &resp(&[b"AUTH", b"x"]),
        b"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n",
    )
    .await;
}
