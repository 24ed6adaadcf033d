//! Server commands over the wire: COMMAND, INFO, CONFIG, FLUSHDB,
//! FLUSHALL, SWAPDB, TIME, LASTSAVE, SHUTDOWN.

use crate::common;
use common::raw_cmd as cmd;
use common::*;
use std::time::Duration;

/// COMMAND INFO echo, as Redis 7.0 prints it (RESP2).
const ECHO_INFO: &str = "*10\r\n$4\r\necho\r\n:2\r\n*3\r\n+loading\r\n+stale\r\n+fast\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@fast\r\n+@connection\r\n*0\r\n*0\r\n*0\r\n";

#[tokio::test]
async fn command_info_count_docs_list() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    assert_eq!(
        cmd(&mut c, &["COMMAND", "INFO", "echo", "nope"]).await,
        format!("*2\r\n{ECHO_INFO}$-1\r\n")
    );
    assert!(cmd(&mut c, &["HELLO", "3"]).await.starts_with('%'));
    assert_eq!(
        cmd(&mut c, &["COMMAND", "INFO", "nope"]).await,
        "*1\r\n_\r\n",
        "RESP3 null"
    );
    assert_eq!(
        cmd(&mut c, &["COMMAND", "INFO", "ECHO"]).await,
        format!(
            "*1\r\n{}",
            ECHO_INFO
                .replace("*3\r\n+loading", "~3\r\n+loading")
                .replace("*2\r\n+@fast", "~2\r\n+@fast")
                // Tips, key specs and (absent) subcommands are all empty
                // sets in RESP3.
                .replace("*0\r\n*0\r\n*0\r\n", "~0\r\n~0\r\n~0\r\n")
        )
    );
    assert!(cmd(&mut c, &["HELLO", "2"]).await.starts_with('*'));
    // A key-taking command gets a Redis 7.0 key spec.
    let get = cmd(&mut c, &["COMMAND", "INFO", "get"]).await;
    assert!(get.contains("$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n"), "{get}");
    assert!(get.contains("$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n"));
    // Containers list their subcommands by full name.
    let client = cmd(&mut c, &["COMMAND", "INFO", "client"]).await;
    assert!(client.starts_with(
        "*1\r\n*10\r\n$6\r\nclient\r\n:-2\r\n*0\r\n:0\r\n:0\r\n:0\r\n*1\r\n+@slow\r\n*0\r\n*0\r\n*"
    ));
    assert!(client.contains(
        "$11\r\nclient|list\r\n:-2\r\n*4\r\n+admin\r\n+noscript\r\n+loading\r\n+stale\r\n"
    ));
    let sub = cmd(&mut c, &["COMMAND", "INFO", "client|kill"]).await;
    assert!(
        sub.starts_with("*1\r\n*10\r\n$11\r\nclient|kill\r\n:-3\r\n"),
        "{sub}"
    );

    let count = cmd(&mut c, &["COMMAND", "COUNT"]).await;
    let n: usize = count.trim_start_matches(':').trim_end().parse().unwrap();
    assert!(n >= 20, "{count}");
    let all = cmd(&mut c, &["COMMAND"]).await;
    assert!(all.starts_with(&format!("*{n}\r\n")));
    assert!(all.contains(ECHO_INFO));
    assert_eq!(
        cmd(&mut c, &["COMMAND", "COUNT", "x"]).await,
        "-ERR wrong number of arguments for 'command|count' command\r\n"
    );

    assert_eq!(
        cmd(&mut c, &["COMMAND", "DOCS", "echo", "nope"]).await,
        "*2\r\n$4\r\necho\r\n*10\r\n$7\r\nsummary\r\n$21\r\nEcho the given string\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$10\r\nconnection\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n$9\r\narguments\r\n*1\r\n*4\r\n$4\r\nname\r\n$7\r\nmessage\r\n$4\r\ntype\r\n$6\r\nstring\r\n"
    );
    assert_eq!(cmd(&mut c, &["COMMAND", "DOCS", "nope"]).await, "*0\r\n");
    let docs = cmd(&mut c, &["COMMAND", "DOCS", "config"]).await;
    assert!(docs.contains("$11\r\nsubcommands\r\n*"));
    assert!(docs.contains("$10\r\nconfig|get\r\n*12\r\n$7\r\nsummary\r\n$42\r\nGet the values of configuration parameters\r\n"));
    let all_docs = cmd(&mut c, &["COMMAND", "DOCS"]).await;
    assert!(all_docs.starts_with(&format!("*{}\r\n", 2 * n)));

    let list = cmd(&mut c, &["COMMAND", "LIST"]).await;
    assert!(list.contains("$4\r\nping\r\n") && list.contains("$11\r\nclient|list\r\n"));
    let pat = cmd(
        &mut c,
        &["COMMAND", "LIST", "FILTERBY", "PATTERN", "client|l*"],
    )
    .await;
    assert_eq!(pat, "*1\r\n$11\r\nclient|list\r\n");
    let cat = cmd(
        &mut c,
        &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "connection"],
    )
    .await;
    assert!(cat.contains("$4\r\nping\r\n") && !cat.contains("$3\r\nget\r\n"));
    assert_eq!(
        cmd(&mut c, &["COMMAND", "LIST", "FILTERBY", "MODULE", "x"]).await,
        "*0\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["COMMAND", "LIST", "FILTERBY", "foo", "x"]).await,
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["COMMAND", "LIST", "foo"]).await,
        "-ERR syntax error\r\n"
    );
    let help = cmd(&mut c, &["COMMAND", "HELP"]).await;
    assert!(help.contains("+COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"));
    assert_eq!(
        cmd(&mut c, &["COMMAND", "FOO"]).await,
        "-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n"
    );
    s.shutdown().await;
}

// COMMAND INFO / COMMAND DOCS replies recorded from redis-server 7.0.15.

/// `COMMAND INFO set` (RESP2): a key spec with notes and variable_flags.
const SET_INFO_RESP2: &str = "*1\r\n*10\r\n$3\r\nset\r\n:-3\r\n*2\r\n+write\r\n+denyoom\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@write\r\n+@string\r\n+@slow\r\n*0\r\n*1\r\n*8\r\n$5\r\nnotes\r\n$48\r\nRW and ACCESS due to the optional `GET` argument\r\n$5\r\nflags\r\n*4\r\n+RW\r\n+access\r\n+update\r\n+variable_flags\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n";

/// `COMMAND INFO set config|set` (RESP3): sets, maps, tips.
const SET_CONFIG_SET_INFO_RESP3: &str = "*2\r\n*10\r\n$3\r\nset\r\n:-3\r\n~2\r\n+write\r\n+denyoom\r\n:1\r\n:1\r\n:1\r\n~3\r\n+@write\r\n+@string\r\n+@slow\r\n~0\r\n~1\r\n%4\r\n$5\r\nnotes\r\n$48\r\nRW and ACCESS due to the optional `GET` argument\r\n$5\r\nflags\r\n~4\r\n+RW\r\n+access\r\n+update\r\n+variable_flags\r\n$12\r\nbegin_search\r\n%2\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n%1\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n%2\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n%3\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n~0\r\n*10\r\n$10\r\nconfig|set\r\n:-4\r\n~4\r\n+admin\r\n+noscript\r\n+loading\r\n+stale\r\n:0\r\n:0\r\n:0\r\n~3\r\n+@admin\r\n+@slow\r\n+@dangerous\r\n~2\r\n$24\r\nrequest_policy:all_nodes\r\n$29\r\nresponse_policy:all_succeeded\r\n~0\r\n~0\r\n";

/// `COMMAND DOCS getex` (RESP2): nested `oneof` arguments.
const GETEX_DOCS_RESP2: &str = "*2\r\n$5\r\ngetex\r\n*10\r\n$7\r\nsummary\r\n$56\r\nGet the value of a key and optionally set its expiration\r\n$5\r\nsince\r\n$5\r\n6.2.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n$9\r\narguments\r\n*2\r\n*6\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$14\r\nkey_spec_index\r\n:0\r\n*8\r\n$4\r\nname\r\n$10\r\nexpiration\r\n$4\r\ntype\r\n$5\r\noneof\r\n$5\r\nflags\r\n*1\r\n+optional\r\n$9\r\narguments\r\n*5\r\n*6\r\n$4\r\nname\r\n$7\r\nseconds\r\n$4\r\ntype\r\n$7\r\ninteger\r\n$5\r\ntoken\r\n$2\r\nEX\r\n*6\r\n$4\r\nname\r\n$12\r\nmilliseconds\r\n$4\r\ntype\r\n$7\r\ninteger\r\n$5\r\ntoken\r\n$2\r\nPX\r\n*6\r\n$4\r\nname\r\n$17\r\nunix-time-seconds\r\n$4\r\ntype\r\n$9\r\nunix-time\r\n$5\r\ntoken\r\n$4\r\nEXAT\r\n*6\r\n$4\r\nname\r\n$22\r\nunix-time-milliseconds\r\n$4\r\ntype\r\n$9\r\nunix-time\r\n$5\r\ntoken\r\n$4\r\nPXAT\r\n*6\r\n$4\r\nname\r\n$7\r\npersist\r\n$4\r\ntype\r\n$10\r\npure-token\r\n$5\r\ntoken\r\n$7\r\nPERSIST\r\n";

/// `COMMAND DOCS substr` (RESP3): doc_flags, deprecated_since, replaced_by.
const SUBSTR_DOCS_RESP3: &str = "%1\r\n$6\r\nsubstr\r\n%8\r\n$7\r\nsummary\r\n$45\r\nGet a substring of the string stored at a key\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n$10\r\ncomplexity\r\n$231\r\nO(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.\r\n$9\r\ndoc_flags\r\n~1\r\n+deprecated\r\n$16\r\ndeprecated_since\r\n$5\r\n2.0.0\r\n$11\r\nreplaced_by\r\n$10\r\n`GETRANGE`\r\n$9\r\narguments\r\n*3\r\n%3\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$14\r\nkey_spec_index\r\n:0\r\n%2\r\n$4\r\nname\r\n$5\r\nstart\r\n$4\r\ntype\r\n$7\r\ninteger\r\n%2\r\n$4\r\nname\r\n$3\r\nend\r\n$4\r\ntype\r\n$7\r\ninteger\r\n";

#[tokio::test]
async fn command_info_and_docs_match_redis() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    assert_eq!(
        cmd(&mut c, &["COMMAND", "INFO", "set"]).await,
        SET_INFO_RESP2
    );
    assert_eq!(
        cmd(&mut c, &["COMMAND", "DOCS", "getex"]).await,
        GETEX_DOCS_RESP2
    );
    assert!(cmd(&mut c, &["HELLO", "3"]).await.starts_with('%'));
    assert_eq!(
        cmd(&mut c, &["COMMAND", "INFO", "set", "config|set"]).await,
        SET_CONFIG_SET_INFO_RESP3
    );
    assert_eq!(
        cmd(&mut c, &["COMMAND", "DOCS", "substr"]).await,
        SUBSTR_DOCS_RESP3
    );
    s.shutdown().await;
}

#[tokio::test]
async fn command_getkeys() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    assert_eq!(
        cmd(&mut c, &["COMMAND", "GETKEYS", "get", "a"]).await,
        "*1\r\n$1\r\na\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["COMMAND", "GETKEYS", "watch", "a", "b"]).await,
        "*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["COMMAND", "GETKEYS", "nope", "a"]).await,
        "-ERR Invalid command specified\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["COMMAND", "GETKEYS", "client", "foo"]).await,
        "-ERR Invalid command specified\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["COMMAND", "GETKEYS", "get", "a", "b"]).await,
        "-ERR Invalid number of arguments specified for command\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["COMMAND", "GETKEYS", "ping", "a"]).await,
        "-ERR The command has no key arguments\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["COMMAND", "GETKEYS", "client", "list"]).await,
        "-ERR The command has no key arguments\r\n"
    );
    // Redis checks for keys before the arity.
    assert_eq!(
        cmd(&mut c, &["COMMAND", "GETKEYS", "echo", "a", "b"]).await,
        "-ERR The command has no key arguments\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["COMMAND", "GETKEYS", "object", "encoding"]).await,
        "-ERR Invalid number of arguments specified for command\r\n"
    );
    // Several key specs (COPY: source and destination; LCS: key1, key2).
    for args in [
        &["COMMAND", "GETKEYS", "copy", "a", "b", "DB", "1"][..],
        &["COMMAND", "GETKEYS", "lcs", "a", "b", "LEN"],
    ] {
        assert_eq!(cmd(&mut c, args).await, "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    }
    assert_eq!(
        cmd(&mut c, &["COMMAND", "GETKEYS", "object", "encoding", "k"]).await,
        "*1\r\n$1\r\nk\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["COMMAND", "GETKEYS", "get"]).await,
        "-ERR wrong number of arguments for 'command|getkeys' command\r\n"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn info_sections() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    assert_eq!(cmd(&mut c, &["SET", "k", "v"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut c, &["GET", "k"]).await, "$1\r\nv\r\n");
    assert_eq!(cmd(&mut c, &["GET", "missing"]).await, "$-1\r\n");
    assert_eq!(
        cmd(&mut c, &["INFO", "keyspace"]).await,
        "$44\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n\r\n"
    );
    assert_eq!(cmd(&mut c, &["INFO", "foo"]).await, "$0\r\n\r\n");
    let default = cmd(&mut c, &["INFO"]).await;
    for want in [
        "# Server\r\nredis_version:7.0.15\r\n",
        "redis_mode:standalone\r\n",
        "arch_bits:64\r\n",
        &format!("tcp_port:{}\r\n", s.local_addr().port()),
        "# Clients\r\nconnected_clients:1\r\n",
        "# Memory\r\nused_memory:",
        "# Persistence\r\nloading:0\r\n",
        "rdb_changes_since_last_save:1\r\n",
        "aof_enabled:1\r\n",
        "# Stats\r\ntotal_connections_received:1\r\n",
        "keyspace_hits:1\r\nkeyspace_misses:1\r\n",
        "expired_stale_perc:0.00\r\n",
        "expired_time_cap_reached_count:0\r\n",
        "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n",
        "master_replid:",
        "# CPU\r\nused_cpu_sys:",
        "# Cluster\r\ncluster_enabled:0\r\n",
        "\r\n\r\n# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n\r\n",
    ] {
        assert!(default.contains(want), "missing {want:?} in {default}");
    }
    assert!(!default.contains("# Commandstats"));
    let stats = cmd(&mut c, &["INFO", "commandstats"]).await;
    // Command statistics live in the process-wide command table, which the
    // other tests of this binary share: check the format, not the counts.
    assert!(stats.contains("cmdstat_set:calls="), "{stats}");
    assert!(stats.contains(",usec_per_call=") && stats.contains(",failed_calls="));
    assert!(stats.contains("cmdstat_info:calls="));
    // Unknown sections select nothing; several sections keep Redis's order.
    let two = cmd(&mut c, &["INFO", "KEYSPACE", "clients", "nope"]).await;
    let (ci, ki) = (
        two.find("# Clients").unwrap(),
        two.find("# Keyspace").unwrap(),
    );
    assert!(ci < ki);
    for all in ["all", "everything"] {
        let t = cmd(&mut c, &["INFO", all]).await;
        assert!(t.contains("# Commandstats") && t.contains("# Server"));
    }
    assert!(cmd(&mut c, &["HELLO", "3"]).await.starts_with('%'));
    assert_eq!(
        cmd(&mut c, &["INFO", "keyspace"]).await,
        "=48\r\ntxt:# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n\r\n"
    );
    // CONFIG RESETSTAT clears the counters.
    assert_eq!(cmd(&mut c, &["CONFIG", "RESETSTAT"]).await, "+OK\r\n");
    let after = cmd(&mut c, &["INFO", "commandstats", "stats"]).await;
    assert!(after.contains("keyspace_hits:0\r\n"), "{after}");
    assert!(after.contains("total_connections_received:0\r\n"));
    s.shutdown().await;
}

#[tokio::test]
async fn config_get_and_set() {
    let s = start().await;
    let mut c = Raw::connect(s.local_addr()).await;
    assert_eq!(
        cmd(&mut c, &["CONFIG", "GET", "hz"]).await,
        "*2\r\n$2\r\nhz\r\n$2\r\n10\r\n"
    );
    // Several patterns; a parameter matched twice is returned once.
    let r = cmd(&mut c, &["CONFIG", "GET", "hz", "hz*", "maxmemory"]).await;
    assert_eq!(
        r,
        "*4\r\n$2\r\nhz\r\n$2\r\n10\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"
    );
    assert_eq!(cmd(&mut c, &["CONFIG", "GET", "nope"]).await, "*0\r\n");
    assert_eq!(
        cmd(&mut c, &["CONFIG", "GET", "save"]).await,
        "*2\r\n$4\r\nsave\r\n$0\r\n\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["CONFIG", "GET", "appendonly"]).await,
        "*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n",
        "redlog is durable by default"
    );
    let ro = cmd(&mut c, &["CONFIG", "GET", "*read-only"]).await;
    assert!(ro.contains("replica-read-only") && ro.contains("slave-read-only"));

    assert_eq!(
        cmd(&mut c, &["CONFIG", "SET", "hz", "20", "maxmemory", "1mb"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["CONFIG", "GET", "hz", "maxmemory"]).await,
        "*4\r\n$2\r\nhz\r\n$2\r\n20\r\n$9\r\nmaxmemory\r\n$7\r\n1048576\r\n"
    );
    // Redis clamps hz to 1..=500.
    assert_eq!(
        cmd(&mut c, &["CONFIG", "SET", "hz", "600"]).await,
        "+OK\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["CONFIG", "GET", "hz"]).await,
        "*2\r\n$2\r\nhz\r\n$3\r\n500\r\n"
    );
    for (args, err) in [
        (&["CONFIG", "SET", "hz", "abc"][..], "-ERR CONFIG SET failed (possibly related to argument 'hz') - argument couldn't be parsed into an integer\r\n"),
        (&["CONFIG", "SET", "timeout", "+5"], "-ERR CONFIG SET failed (possibly related to argument 'timeout') - argument couldn't be parsed into an integer\r\n"),
        (&["CONFIG", "SET", "timeout", "-1"], "-ERR CONFIG SET failed (possibly related to argument 'timeout') - argument must be between 0 and 2147483647 inclusive\r\n"),
        (&["CONFIG", "SET", "nope", "1"], "-ERR Unknown option or number of arguments for CONFIG SET - 'nope'\r\n"),
        (&["CONFIG", "SET", "hz", "abc", "nope", "1"], "-ERR Unknown option or number of arguments for CONFIG SET - 'nope'\r\n"),
        (&["CONFIG", "SET", "hz", "10", "HZ", "11"], "-ERR CONFIG SET failed (possibly related to argument 'HZ') - duplicate parameter\r\n"),
        (&["CONFIG", "SET", "hz", "10", "port"], "-ERR syntax error\r\n"),
        (&["CONFIG", "SET", "hz"], "-ERR wrong number of arguments for 'config|set' command\r\n"),
        (&["CONFIG", "SET", "daemonize", "yes"], "-ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config\r\n"),
        (&["CONFIG", "SET", "dir", "/tmp"], "-ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config\r\n"),
        (&["CONFIG", "SET", "appendfsync", "foo"], "-ERR CONFIG SET failed (possibly related to argument 'appendfsync') - argument(s) must be one of the following: everysec, always, no\r\n"),
        (&["CONFIG", "SET", "loglevel", "foo"], "-ERR CONFIG SET failed (possibly related to argument 'loglevel') - argument(s) must be one of the following: debug, verbose, notice, warning\r\n"),
        (&["CONFIG", "SET", "maxmemory", "-5"], "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value\r\n"),
        (&["CONFIG", "SET", "proto-max-bulk-len", "100"], "-ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between 1048576 and 9223372036854775807 inclusive\r\n"),
        (&["CONFIG", "SET", "appendonly", "maybe"], "-ERR CONFIG SET failed (possibly related to argument 'appendonly') - can't set immutable config\r\n"),
        (&["CONFIG", "SET", "save", "1"], "-ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters\r\n"),
        (&["CONFIG", "GET"], "-ERR wrong number of arguments for 'config|get' command\r\n"),
    ] {
        assert_eq!(cmd(&mut c, args).await, err, "{args:?}");
    }
    // All or nothing: a bad second value leaves the first unchanged.
    assert_eq!(
        cmd(&mut c, &["CONFIG", "SET", "hz", "30", "maxmemory", "12x"]).await,
        "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["CONFIG", "GET", "hz"]).await,
        "*2\r\n$2\r\nhz\r\n$3\r\n500\r\n"
    );
    assert_eq!(s.shared().config.read().hz, 500);
    let help = cmd(&mut c, &["CONFIG", "HELP"]).await;
    assert!(help.starts_with("*11\r\n+CONFIG <subcommand>"), "{help}");

    // RESP3: a map.
    let mut c3 = client3(s.local_addr()).await;
    let v: redis::Value = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query_async(&mut c3)
        .await
        .unwrap();
    assert_eq!(
        v,
        redis::Value::Map(vec![(
            redis::Value::BulkString(b"maxmemory".to_vec()),
            redis::Value::BulkString(b"1048576".to_vec())
        )])
    );
    s.shutdown().await;
}

#[tokio::test]
async fn flush_and_swapdb_signal_watch() {
    let s = start().await;
    let mut a = Raw::connect(s.local_addr()).await;
    let mut b = Raw::connect(s.local_addr()).await;
    // FLUSHDB touches a watched key.
    assert_eq!(cmd(&mut b, &["SET", "w", "1"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut a, &["WATCH", "w"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut b, &["FLUSHDB"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut a, &["MULTI"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut a, &["PING"]).await, "+QUEUED\r\n");
    assert_eq!(cmd(&mut a, &["EXEC"]).await, "*-1\r\n");
    assert_eq!(cmd(&mut a, &["DBSIZE"]).await, ":0\r\n");
    // FLUSHALL empties every database and touches watched keys.
    assert_eq!(cmd(&mut b, &["SET", "w", "1"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut b, &["SELECT", "5"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut b, &["SET", "x", "1"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut a, &["WATCH", "w"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut b, &["FLUSHALL", "ASYNC"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut b, &["DBSIZE"]).await, ":0\r\n");
    assert_eq!(cmd(&mut a, &["MULTI"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut a, &["EXEC"]).await, "*-1\r\n");
    assert_eq!(
        cmd(&mut b, &["FLUSHALL", "foo"]).await,
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        cmd(&mut b, &["FLUSHDB", "SYNC", "x"]).await,
        "-ERR syntax error\r\n"
    );
    // SWAPDB: the data moves, a watcher of db 0 sees a change.
    assert_eq!(cmd(&mut b, &["SET", "k", "five"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut a, &["WATCH", "k"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut b, &["SWAPDB", "5", "0"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut a, &["GET", "k"]).await, "$4\r\nfive\r\n");
    assert_eq!(cmd(&mut a, &["MULTI"]).await, "+OK\r\n");
    assert_eq!(cmd(&mut a, &["EXEC"]).await, "*-1\r\n");
    assert_eq!(cmd(&mut b, &["DBSIZE"]).await, ":0\r\n");
    assert_eq!(cmd(&mut b, &["SWAPDB", "0", "0"]).await, "+OK\r\n");
    for (args, err) in [
        (&["SWAPDB", "a", "1"][..], "-ERR invalid first DB index\r\n"),
        (&["SWAPDB", "1", "a"], "-ERR invalid second DB index\r\n"),
        (&["SWAPDB", "-1", "1"], "-ERR DB index is out of range\r\n"),
        (&["SWAPDB", "1", "16"], "-ERR DB index is out of range\r\n"),
    ] {
        assert_eq!(cmd(&mut b, args).await, err);
    }
    s.shutdown().await;
}

#[tokio::test]
async fn time_and_lastsave() {
    let s = start().await;
    let mut c = client(s.local_addr()).await;
    let (secs, usec): (u64, u64) = redis::cmd("TIME").query_async(&mut c).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(secs.abs_diff(now) <= 2 && usec < 1_000_000);
    let last: u64 = redis::cmd("LASTSAVE").query_async(&mut c).await.unwrap();
    assert!(last <= now && last + 60 > now);
    s.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_the_server() {
    // Without persistence there is nothing to save to: SHUTDOWN SAVE fails.
    let s = start_with(&[("appendonly", "no")]).await;
    let addr = s.local_addr();
    let mut c = Raw::connect(addr).await;
    let mut other = Raw::connect(addr).await;
    assert_eq!(
        cmd(&mut c, &["SHUTDOWN", "ABORT"]).await,
        "-ERR No shutdown in progress.\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["SHUTDOWN", "NOSAVE", "SAVE"]).await,
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["SHUTDOWN", "ABORT", "NOW"]).await,
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        cmd(&mut c, &["SHUTDOWN", "foo"]).await,
        "-ERR syntax error\r\n"
    );
    assert_eq!(cmd(&mut c, &["MULTI"]).await, "+OK\r\n");
    assert_eq!(
        cmd(&mut c, &["SHUTDOWN"]).await,
        "-ERR Command not allowed inside a transaction\r\n"
    );
    assert_eq!(cmd(&mut c, &["DISCARD"]).await, "+OK\r\n");
    // Nothing can be saved, so an explicit SAVE fails and the server stays up.
    assert_eq!(
        cmd(&mut c, &["SHUTDOWN", "SAVE"]).await,
        "-ERR Errors trying to SHUTDOWN. Check logs.\r\n"
    );
    assert_eq!(cmd(&mut c, &["PING"]).await, "+PONG\r\n");
    c.send(&resp(&[b"SHUTDOWN", b"NOSAVE"])).await;
    assert!(c.closed().await, "no reply, connection closed");
    assert!(other.closed().await);
    tokio::time::timeout(Duration::from_secs(5), s.wait())
        .await
        .expect("server stopped");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
