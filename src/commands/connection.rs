//! Connection commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, RESET and
//! the CLIENT container. They act on the calling connection's own state
//! (`Client`, its registry entry's `ClientMeta`, the reply protocol) and,
//! for CLIENT LIST / KILL, on the registry of every connection.
//!
//! Users and their passwords are the ACL's (`crate::acl`, the ACL command
//! in `commands::acl`); `requirepass` is the default user's password.

use super::args::help_reply;
use super::{arg_i64, is_kw, CmdError, CmdResult, Ctx, Handler};
use crate::db::DATABASES;
use crate::node::{Client, ClientHandle, ReplyMode, Shared};
use crate::protocol::Out;
use bytes::Bytes;
use std::sync::Arc;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("ping", ping),
    ("echo", echo),
    ("quit", quit),
    ("select", select),
    ("auth", auth),
    ("hello", hello),
    ("reset", reset),
    ("client|help", client_help),
    ("client|id", client_id),
    ("client|setname", client_setname),
    ("client|getname", client_getname),
    ("client|setinfo", client_setinfo),
    ("client|list", client_list),
    ("client|info", client_info),
    ("client|kill", client_kill),
    ("client|unblock", client_unblock),
    ("client|tracking", super::tracking::client_tracking),
    ("client|caching", super::tracking::client_caching),
    ("client|getredir", super::tracking::client_getredir),
    ("client|trackinginfo", super::tracking::client_trackinginfo),
    ("client|no-evict", client_no_evict),
    ("client|no-touch", client_no_touch),
    ("client|pause", client_pause),
    ("client|unpause", client_unpause),
    ("client|reply", client_reply),
];

/// PING [message]
///
/// A RESP2 client in subscribed mode gets `["pong", message or ""]`.
fn ping(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 2 {
        return Err(CmdError::wrong_args("ping"));
    }
    // A redlog record from this replica's primary (ARCHITECTURE.md
    // "Replication"); from anyone else a PING like any other.
    if ctx.client.master && args.len() == 2 && crate::db::effect::record::is_record(&args[1]) {
        return super::redlog_record::apply(ctx, &args[1]);
    }
    if ctx.client.pubsub.active() && !ctx.out.resp3 {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(args.get(1).map_or(&b""[..], |m| m.as_ref()));
        return Ok(());
    }
    match args.len() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(&args[1]),
        _ => return Err(CmdError::wrong_args("ping")),
    }
    Ok(())
}

/// ECHO message
fn echo(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.out.bulk(&args[1]);
    Ok(())
}

/// QUIT
fn quit(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    quit_cmd(ctx.shared, ctx.client, ctx.out, args)
}

/// `quit` on its own state (also served while a script is busy).
pub fn quit_cmd(
    _shared: &Shared,
    client: &mut Client,
    out: &mut Out,
    _args: &[Bytes],
) -> CmdResult {
    out.ok();
    client.close_after_reply = true;
    Ok(())
}

/// SELECT index
fn select(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let n = arg_i64(&args[1])?;
    if ctx.shared.cluster.is_some() && n != 0 {
        return Err(CmdError::new("ERR SELECT is not allowed in cluster mode"));
    }
    if n < 0 || n >= DATABASES as i64 {
        return Err(CmdError::new("ERR DB index is out of range"));
    }
    ctx.client.db = n as usize;
    ctx.client.handle.meta.lock().db = n as usize;
    ctx.out.ok();
    Ok(())
}

fn wrongpass() -> CmdError {
    CmdError::new("WRONGPASS invalid username-password pair or user is disabled.")
}

/// AUTH [username] password
fn auth(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    auth_cmd(ctx.shared, ctx.client, ctx.out, args)
}

/// `auth` on its own state (also served while a script is busy).
pub fn auth_cmd(shared: &Shared, client: &mut Client, out: &mut Out, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(CmdError::syntax());
    }
    let (user, pass): (&[u8], &[u8]) = if args.len() == 2 {
        if super::acl::default_nopass(shared) {
            return Err(CmdError::new(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            ));
        }
        (b"default", &args[1])
    } else {
        (&args[1], &args[2])
    };
    if !super::acl::authenticate(shared, client, user, pass, &args[0]) {
        return Err(wrongpass());
    }
    out.ok();
    Ok(())
}

/// Redis's client name rule: printable ASCII without spaces (`!`..`~`).
fn valid_client_attr(v: &[u8]) -> bool {
    v.iter().all(|c| (b'!'..=b'~').contains(c))
}

/// Sets (or, for an empty name, clears) the connection name.
fn set_name(handle: &ClientHandle, name: &Bytes) -> CmdResult {
    if !valid_client_attr(name) {
        return Err(CmdError::new(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    handle.meta.lock().name = (!name.is_empty()).then(|| name.clone());
    Ok(())
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
fn hello(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    hello_cmd(ctx.shared, ctx.client, ctx.out, args)
}

/// `hello` on its own state (also served while a script is busy).
pub fn hello_cmd(shared: &Shared, client: &mut Client, out: &mut Out, args: &[Bytes]) -> CmdResult {
    let mut ver = 0;
    let mut next = 1;
    if args.len() >= 2 {
        ver = crate::protocol::parse::parse_i64(&args[1]).ok_or_else(|| {
            CmdError::new("ERR Protocol version is not an integer or out of range")
        })?;
        if !(2..=3).contains(&ver) {
            return Err(CmdError::new("NOPROTO unsupported protocol version"));
        }
        next = 2;
    }
    let mut credentials = None;
    let mut name = None;
    let mut j = next;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if is_kw(&args[j], "auth") && more >= 2 {
            credentials = Some((&args[j + 1], &args[j + 2]));
            j += 3;
        } else if is_kw(&args[j], "setname") && more >= 1 {
            name = Some(&args[j + 1]);
            j += 2;
        } else {
            return Err(CmdError::new(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[j])
            )));
        }
    }
    if let Some((user, pass)) = credentials {
        if !super::acl::authenticate(shared, client, user, pass, &args[0]) {
            return Err(wrongpass());
        }
    }
    if !client.authenticated {
        return Err(CmdError::new(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(name) = name {
        set_name(&client.handle, name)?;
    }
    if ver != 0 {
        out.resp3 = ver == 3;
        client.handle.meta.lock().resp = ver as u8;
    }
    let out = &mut *out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(crate::REDIS_COMPAT_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if out.resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(client.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

/// RESET
///
/// Redis's `clearClientConnectionState`: leaves MULTI and drops WATCHes,
/// unsubscribes from every channel and pattern (no confirmations),
/// selects db 0, back to RESP2, CLIENT REPLY ON, no-evict and no-touch off,
/// no name, and unauthenticated again when a password is required.
fn reset(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    if ctx.client.monitor {
        ctx.shared.observe.remove_monitor(ctx.client.id);
        ctx.client.monitor = false;
        ctx.client.handle.meta.lock().monitor = false;
    }
    ctx.client.multi = None;
    super::transactions::unwatch_all(ctx);
    if crate::node::tracking::is_on(&ctx.client.handle) {
        crate::node::tracking::disable(ctx.ks, &ctx.client.handle);
    }
    super::pubsub::unsubscribe_all_quietly(ctx);
    ctx.client.db = 0;
    ctx.client.reply_mode = ReplyMode::On;
    ctx.client.no_touch = false;
    ctx.client.asking = false;
    ctx.client.readonly = false;
    if ctx.client.user.is_some() {
        super::acl::reset_to_default(ctx);
    }
    ctx.out.resp3 = false;
    {
        let mut m = ctx.client.handle.meta.lock();
        m.multi = -1;
        m.watching = 0;
        m.db = 0;
        m.resp = 2;
        m.no_evict = false;
        m.no_touch = false;
        m.readonly = false;
        m.name = None;
    }
    ctx.out.simple("RESET");
    Ok(())
}

/// CLIENT HELP
fn client_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    help_reply(
        ctx,
        "CLIENT",
        &[
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are:",
            "    * LIB-NAME: the client lib name.",
            "    * LIB-VER: the client lib version.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
            "NO-TOUCH (ON|OFF)",
            "    Will not touch LRU/LFU stats when this mode is on.",
        ],
    );
    Ok(())
}

/// CLIENT ID
fn client_id(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.out.int(ctx.client.id as i64);
    Ok(())
}

/// CLIENT SETNAME connection-name
fn client_setname(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    set_name(&ctx.client.handle, &args[2])?;
    ctx.out.ok();
    Ok(())
}

/// CLIENT GETNAME
fn client_getname(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let name = ctx.client.handle.meta.lock().name.clone();
    match name {
        Some(n) => ctx.out.bulk(&n),
        None => ctx.out.null(),
    }
    Ok(())
}

/// CLIENT SETINFO <LIB-NAME libname | LIB-VER libver>
fn client_setinfo(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let attr = &args[2];
    let val = &args[3];
    let lib_name = if is_kw(attr, "lib-name") {
        true
    } else if is_kw(attr, "lib-ver") {
        false
    } else {
        return Err(CmdError::new(format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(attr)
        )));
    };
    if !valid_client_attr(val) {
        return Err(CmdError::new(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            String::from_utf8_lossy(attr)
        )));
    }
    let v = (!val.is_empty()).then(|| val.clone());
    let mut m = ctx.client.handle.meta.lock();
    if lib_name {
        m.lib_name = v;
    } else {
        m.lib_ver = v;
    }
    drop(m);
    ctx.out.ok();
    Ok(())
}

/// Client types for CLIENT LIST TYPE / CLIENT KILL TYPE.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Replica,
    PubSub,
    Master,
}

fn client_type(name: &[u8]) -> Result<ClientType, CmdError> {
    let t = if is_kw(name, "normal") {
        ClientType::Normal
    } else if is_kw(name, "slave") || is_kw(name, "replica") {
        ClientType::Replica
    } else if is_kw(name, "pubsub") {
        ClientType::PubSub
    } else if is_kw(name, "master") {
        ClientType::Master
    } else {
        return Err(CmdError::new(format!(
            "ERR Unknown client type '{}'",
            String::from_utf8_lossy(name)
        )));
    };
    Ok(t)
}

/// The type of a connection (Redis's `getClientType`): subscribed to
/// anything is pubsub; the replication link's client is master.
fn type_of(h: &ClientHandle) -> ClientType {
    let m = h.meta.lock();
    if m.master {
        ClientType::Master
    } else if m.replica && !m.monitor {
        ClientType::Replica
    } else if m.sub + m.psub + m.ssub > 0 {
        ClientType::PubSub
    } else {
        ClientType::Normal
    }
}

/// Snapshot of the registry, by id (CLIENT LIST order is connection order).
fn all_clients(shared: &Shared) -> Vec<Arc<ClientHandle>> {
    let mut v: Vec<Arc<ClientHandle>> = shared.clients.iter().map(|e| e.value().clone()).collect();
    v.sort_by_key(|h| h.id);
    v
}

/// CLIENT LIST [TYPE <NORMAL | MASTER | REPLICA | PUBSUB>] [ID client-id [client-id ...]]
fn client_list(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut text = String::new();
    if args.len() == 4 && is_kw(&args[2], "type") {
        let t = client_type(&args[3])?;
        for h in all_clients(ctx.shared) {
            if type_of(&h) == t {
                text.push_str(&super::args::client_info_line(&h));
                text.push('\n');
            }
        }
    } else if args.len() > 3 && is_kw(&args[2], "id") {
        let mut ids = Vec::with_capacity(args.len() - 3);
        for a in &args[3..] {
            ids.push(arg_i64(a).map_err(|_| CmdError::new("ERR Invalid client ID"))?);
        }
        for id in ids {
            let h = u64::try_from(id)
                .ok()
                .and_then(|id| ctx.shared.clients.get(&id).map(|e| e.value().clone()));
            if let Some(h) = h {
                text.push_str(&super::args::client_info_line(&h));
                text.push('\n');
            }
        }
    } else if args.len() != 2 {
        return Err(CmdError::syntax());
    } else {
        for h in all_clients(ctx.shared) {
            text.push_str(&super::args::client_info_line(&h));
            text.push('\n');
        }
    }
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// CLIENT INFO
fn client_info(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let mut line = super::args::client_info_line(&ctx.client.handle);
    line.push('\n');
    ctx.out.verbatim(line.as_bytes());
    Ok(())
}

/// CLIENT KILL <ip:port | <[ID client-id] | [TYPE <NORMAL | MASTER | SLAVE | REPLICA | PUBSUB>] |
///   [USER username] | [ADDR ip:port] | [LADDR ip:port] | [SKIPME <YES | NO>]> [...]>
///
/// The old form (one address) replies OK or "No such client" and may kill
/// the caller; the filter form replies the number killed and skips the
/// caller unless SKIPME NO. A killed connection is removed from the
/// registry at once and closes; the caller, if killed, closes after this
/// reply.
fn client_kill(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let mut addr: Option<&[u8]> = None;
    let mut laddr: Option<&[u8]> = None;
    let mut ctype = None;
    let mut id = None;
    let mut skipme = true;
    let old_form = args.len() == 3;
    if old_form {
        addr = Some(&args[2]);
        skipme = false;
    } else {
        let mut i = 2;
        while i < args.len() {
            let more = i + 1 < args.len();
            let opt = &args[i];
            if !more {
                return Err(CmdError::syntax());
            }
            let val = &args[i + 1];
            if is_kw(opt, "id") {
                let n = arg_i64(val)
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| CmdError::new("ERR client-id should be greater than 0"))?;
                id = Some(n as u64);
            } else if is_kw(opt, "type") {
                ctype = Some(client_type(val)?);
            } else if is_kw(opt, "addr") {
                addr = Some(val);
            } else if is_kw(opt, "laddr") {
                laddr = Some(val);
            } else if is_kw(opt, "user") {
                if &val[..] != b"default" {
                    return Err(CmdError::new(format!(
                        "ERR No such user '{}'",
                        String::from_utf8_lossy(val)
                    )));
                }
            } else if is_kw(opt, "skipme") {
                if is_kw(val, "yes") {
                    skipme = true;
                } else if is_kw(val, "no") {
                    skipme = false;
                } else {
                    return Err(CmdError::syntax());
                }
            } else {
                return Err(CmdError::syntax());
            }
            i += 2;
        }
    }
    let me = ctx.client.id;
    let mut killed = 0i64;
    let mut close_me = false;
    for h in all_clients(ctx.shared) {
        if addr.is_some_and(|a| a != h.addr.to_string().as_bytes()) {
            continue;
        }
        if laddr.is_some_and(|a| a != h.laddr.to_string().as_bytes()) {
            continue;
        }
        if ctype.is_some_and(|t| t != type_of(&h)) {
            continue;
        }
        if id.is_some_and(|id| id != h.id) {
            continue;
        }
        if h.id == me {
            if skipme {
                continue;
            }
            close_me = true;
        } else {
            ctx.shared.clients.remove(&h.id);
            h.kill();
        }
        killed += 1;
    }
    if old_form {
        if killed == 0 {
            return Err(CmdError::new("ERR No such client"));
        }
        ctx.out.ok();
    } else {
        ctx.out.int(killed);
    }
    if close_me {
        ctx.client.close_after_reply = true;
    }
    Ok(())
}

/// CLIENT UNBLOCK client-id [TIMEOUT | ERROR]
///
/// Answers a client blocked in a blocking command as if its timeout
/// passed (default) or with the UNBLOCKED error; 1 if it was blocked.
fn client_unblock(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let id = arg_i64(&args[2])?;
    let mut error = false;
    if args.len() == 4 {
        if is_kw(&args[3], "timeout") {
            error = false;
        } else if is_kw(&args[3], "error") {
            error = true;
        } else {
            return Err(CmdError::new(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ));
        }
    } else if args.len() > 4 {
        let mut msg = b"ERR unknown subcommand or wrong number of arguments for '".to_vec();
        let sub = &args[1][..args[1].len().min(128)];
        msg.extend_from_slice(sub);
        msg.extend_from_slice(b"'. Try ");
        msg.extend_from_slice(&args[0].to_ascii_uppercase());
        msg.extend_from_slice(b" HELP.");
        return Err(CmdError::from_bytes(msg));
    }
    let done = u64::try_from(id).is_ok_and(|id| super::blocking::unblock(ctx.ks, id, error));
    ctx.out.int(i64::from(done));
    Ok(())
}

/// Parses ON / OFF (any case); anything else is a syntax error.
fn on_off(a: &[u8]) -> Result<bool, CmdError> {
    if is_kw(a, "on") {
        Ok(true)
    } else if is_kw(a, "off") {
        Ok(false)
    } else {
        Err(CmdError::syntax())
    }
}

/// CLIENT NO-EVICT <ON | OFF>
fn client_no_evict(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let on = on_off(&args[2])?;
    ctx.client.handle.meta.lock().no_evict = on;
    ctx.out.ok();
    Ok(())
}

/// CLIENT NO-TOUCH <ON | OFF>
fn client_no_touch(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let on = on_off(&args[2])?;
    ctx.client.no_touch = on;
    ctx.client.handle.meta.lock().no_touch = on;
    ctx.out.ok();
    Ok(())
}

/// CLIENT PAUSE timeout [WRITE | ALL]
///
/// `timeout` in milliseconds, Redis's `getTimeoutFromObjectOrReply`
/// errors; the mode defaults to ALL. See `node::pause`.
fn client_pause(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    use crate::node::pause::PauseKind;
    if args.len() > 4 {
        let sub = &args[1][..args[1].len().min(128)];
        return Err(CmdError::new(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
            String::from_utf8_lossy(sub)
        )));
    }
    let ms = crate::protocol::parse::parse_i64(&args[2])
        .ok_or_else(|| CmdError::new("ERR timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::new("ERR timeout is negative"));
    }
    if ms > 0 && ms > i64::MAX - crate::db::now_ms() as i64 {
        return Err(CmdError::new("ERR timeout is out of range"));
    }
    let kind = match args.get(3) {
        None => PauseKind::All,
        Some(m) if is_kw(m, "write") => PauseKind::Write,
        Some(m) if is_kw(m, "all") => PauseKind::All,
        Some(_) => return Err(CmdError::new("ERR CLIENT PAUSE mode must be WRITE or ALL")),
    };
    ctx.shared
        .pause
        .pause(kind, std::time::Duration::from_millis(ms as u64));
    ctx.out.ok();
    Ok(())
}

/// CLIENT UNPAUSE
fn client_unpause(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.shared.pause.unpause();
    ctx.out.ok();
    Ok(())
}

/// CLIENT REPLY <ON | OFF | SKIP>
///
/// ON replies OK; OFF and SKIP reply nothing (`execute` drops the reply
/// according to the mode set here).
fn client_reply(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let a = &args[2];
    if is_kw(a, "on") {
        ctx.client.reply_mode = ReplyMode::On;
        ctx.out.ok();
    } else if is_kw(a, "off") {
        ctx.client.reply_mode = ReplyMode::Off;
    } else if is_kw(a, "skip") {
        if ctx.client.reply_mode == ReplyMode::On {
            ctx.client.reply_mode = ReplyMode::Skip;
        }
    } else {
        return Err(CmdError::syntax());
    }
    Ok(())
}

/// True when the pause in effect covers this command (Redis 7.0's
/// `processCommand` check): ALL covers everything; WRITE covers commands
/// that may write or replicate, EXEC of a block holding one, and EVAL /
/// EVALSHA unless the script's shebang says `no-writes`. Commands run by
/// EXEC or by scripts are never postponed (their caller was checked).
pub fn pause_covers(
    shared: &Shared,
    ks: &crate::db::Keyspace,
    client: &Client,
    cmd: &super::Command,
    top_name: &str,
    args: &[bytes::Bytes],
) -> bool {
    use super::{flags, table};
    // The master client is postponed too (Redis 7.0's processCommand
    // spares only replicas), but for the RDB load.
    if client.in_exec || client.in_script || client.unpausable {
        return false;
    }
    let kind = match shared.pause.current() {
        None => return false,
        Some(k) => k,
    };
    if kind == crate::node::pause::PauseKind::All {
        return true;
    }
    let may_write = |c: &super::Command| c.has(flags::WRITE | flags::MAY_REPLICATE);
    match top_name {
        "eval" | "evalsha" => {
            let script_flags = match (top_name, args.get(1)) {
                ("eval", Some(body)) => super::lua::shebang_flags(body).ok().map(|f| f.0),
                (_, Some(sha)) => ks
                    .scripting
                    .as_ref()
                    .and_then(|s| s.flags_of(&String::from_utf8_lossy(sha).to_ascii_lowercase())),
                _ => None,
            };
            script_flags.is_none_or(|f| f & super::lua::script_flags::NO_WRITES == 0)
        }
        "exec" => {
            let t = table();
            client.multi.as_ref().is_some_and(|m| {
                m.queue
                    .iter()
                    .any(|(idx, _)| may_write(t.entries[*idx].cmd))
            })
        }
        _ => may_write(cmd),
    }
}
