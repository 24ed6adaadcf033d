//! The ACL command (Redis 7.0's `aclCommand`) and the pieces of
//! authentication the connection commands share: credentials, ACL LOG
//! entries, `requirepass`, and closing the connections of deleted users
//! or of subscribers whose channels were revoked. The engine is
//! `crate::acl`.

use super::{arg_i64, CmdError, CmdResult, Ctx, Handler};
use crate::acl::{self, Denied, LogContext, LogEntry, LogReason, User};
use crate::node::{Client, Shared};
use bytes::Bytes;
use std::sync::Arc;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("acl|cat", acl_cat),
    ("acl|deluser", acl_deluser),
    ("acl|dryrun", acl_dryrun),
    ("acl|genpass", acl_genpass),
    ("acl|getuser", acl_getuser),
    ("acl|help", acl_help),
    ("acl|list", acl_list),
    ("acl|load", acl_load),
    ("acl|log", acl_log),
    ("acl|save", acl_save),
    ("acl|setuser", acl_setuser),
    ("acl|users", acl_users),
    ("acl|whoami", acl_whoami),
];

// ---- shared with AUTH / HELLO / the command path ----

fn now_ms() -> u64 {
    crate::db::now_ms()
}

fn log_max_len(shared: &Shared) -> usize {
    shared
        .config
        .read()
        .get("acllog-max-len")
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

/// The client-info of a log entry: the script's caller for a script.
fn client_info(client: &Client) -> String {
    super::args::client_info_line(client.script_caller.as_ref().unwrap_or(&client.handle))
}

fn username(client: &Client) -> Vec<u8> {
    client
        .user
        .as_ref()
        .map_or_else(|| b"default".to_vec(), |u| u.name.clone())
}

/// Redis's `addACLLogEntry` for a denied command, key or channel.
pub fn log_denied(
    shared: &Shared,
    client: &Client,
    denied: Denied,
    context: LogContext,
    full_name: &str,
    args: &[Bytes],
) {
    let (reason, object) = match denied {
        Denied::Command => (LogReason::Command, full_name.as_bytes().to_vec()),
        Denied::Key(p) => (LogReason::Key, args[p].to_vec()),
        Denied::Channel(p) => (LogReason::Channel, args[p].to_vec()),
    };
    let e = LogEntry {
        count: 1,
        reason,
        context,
        object,
        username: username(client),
        ctime_ms: now_ms(),
        client_info: client_info(client),
    };
    let max = log_max_len(shared);
    shared.acl.write().add_log(e, max);
}

/// The ACL check of a command run by EXEC or a script on `client`'s
/// user: a denial is logged with `context`.
pub fn check_logged(
    shared: &Shared,
    client: &mut Client,
    idx: usize,
    args: &[Bytes],
    context: LogContext,
) -> Result<(), Denied> {
    let Some(user) = client.user.as_ref() else {
        return Ok(());
    };
    if user.unrestricted {
        return Ok(());
    }
    let denied = match user.check(idx, args, &mut client.acl_keys) {
        Ok(()) => return Ok(()),
        Err(d) => d,
    };
    let full_name = &super::table().entries[idx].full_name;
    log_denied(shared, client, denied, context, full_name, args);
    Err(denied)
}

/// Redis's `ACLAuthenticateUser`: on success the client is authenticated
/// as the user; on failure an `auth` entry is logged (object: the
/// command name as sent).
pub fn authenticate(
    shared: &Shared,
    client: &mut Client,
    user: &[u8],
    pass: &[u8],
    cmd_name: &[u8],
) -> bool {
    let found = shared.acl.read().users.get(user).cloned();
    match found {
        Some(u) if u.password_ok(pass) => {
            client.authenticated = true;
            client.handle.meta.lock().user = String::from_utf8_lossy(&u.name).into_owned();
            client.acl_version = shared.acl_version.load(std::sync::atomic::Ordering::SeqCst);
            client.user = Some(u);
            true
        }
        _ => {
            let context = if client.multi.is_some() {
                LogContext::Multi
            } else {
                LogContext::Toplevel
            };
            let e = LogEntry {
                count: 1,
                reason: LogReason::Auth,
                context,
                object: cmd_name.to_vec(),
                username: user.to_vec(),
                ctime_ms: now_ms(),
                client_info: client_info(client),
            };
            let max = log_max_len(shared);
            shared.acl.write().add_log(e, max);
            false
        }
    }
}

/// The default user requires no password (`AUTH <password>` refuses then).
pub fn default_nopass(shared: &Shared) -> bool {
    let d = shared.acl.read().default_user();
    d.nopass
}

/// RESET and a deleted user: back to the default user, authenticated
/// when it is on and nopass (Redis's `clearClientConnectionState`).
pub fn reset_to_default(ctx: &mut Ctx) {
    let d = ctx.shared.acl.read().default_user();
    ctx.client.authenticated = d.enabled && d.nopass;
    ctx.client.handle.meta.lock().user = "default".into();
    ctx.client.user = Some(d);
}

/// `requirepass` changed (CONFIG SET): Redis's
/// `ACLUpdateDefaultUserPassword`.
pub fn apply_requirepass(shared: &Shared) {
    let pass = shared.config.read().requirepass.clone();
    let pubsub_all = shared.acl_pubsub_all();
    {
        let mut acl = shared.acl.write();
        let mut d = (*acl.default_user()).clone();
        let _ = d.apply(b"resetpass", pubsub_all);
        match pass {
            Some(p) => {
                let mut op = b">".to_vec();
                op.extend_from_slice(&p);
                let _ = d.apply(&op, pubsub_all);
            }
            None => {
                let _ = d.apply(b"nopass", pubsub_all);
            }
        }
        acl.users.insert(b"default".to_vec(), Arc::new(d));
    }
    shared.acl_changed();
}

/// Closes the connections authenticated as one of `names` (Redis's
/// `ACLFreeUserAndKillClients`); the calling client closes after its reply.
fn kill_clients_of(ctx: &mut Ctx, names: &[Vec<u8>]) {
    let names: Vec<String> = names
        .iter()
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    let me = ctx.client.id;
    for c in ctx.shared.clients.iter() {
        let user = c.meta.lock().user.clone();
        if names.contains(&user) {
            if c.id == me {
                ctx.client.close_after_reply = true;
            } else {
                c.kill();
            }
        }
    }
}

/// Redis's `ACLKillPubsubClientsIfNeeded`: subscribers authenticated as
/// the user lose their connection when a channel they use was revoked.
fn kill_revoked_subscribers(ctx: &mut Ctx, new: &User, old: &User) {
    let Some(upcoming) = new.revoked_channels(old) else {
        return;
    };
    use crate::node::pubsub::Kind;
    let name = String::from_utf8_lossy(&new.name).into_owned();
    let me = ctx.client.id;
    for c in ctx.shared.clients.iter() {
        let (user, subs) = {
            let m = c.meta.lock();
            (m.user.clone(), m.sub + m.psub)
        };
        if user != name || subs == 0 {
            continue;
        }
        let pubsub = &ctx.shared.pubsub;
        let kill = pubsub
            .subscriptions(c.id, Kind::Pattern)
            .iter()
            .any(|p| !acl::channel_in_list(&upcoming, p, true))
            || pubsub
                .subscriptions(c.id, Kind::Channel)
                .iter()
                .any(|ch| !acl::channel_in_list(&upcoming, ch, false));
        if kill {
            if c.id == me {
                ctx.client.close_after_reply = true;
            } else {
                c.kill();
            }
        }
    }
}

// ---- ACL subcommands ----

/// ACL SETUSER username [rule [rule ...]]
fn acl_setuser(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = &args[2];
    if name
        .iter()
        .any(|&c| c == 0 || c == b' ' || (b'\t'..=b'\r').contains(&c))
    {
        return Err(CmdError::new(
            "ERR Usernames can't contain spaces or null characters",
        ));
    }
    let rules: Vec<Vec<u8>> = args[3..].iter().map(|a| a.to_vec()).collect();
    let pubsub_all = ctx.shared.acl_pubsub_all();
    let r = ctx.shared.acl.write().set_user(name, &rules, pubsub_all);
    let (new, old) = r.map_err(|e| CmdError::new(format!("ERR {e}")))?;
    if let Some(old) = old {
        kill_revoked_subscribers(ctx, &new, &old);
    }
    ctx.shared.acl_changed();
    ctx.out.ok();
    Ok(())
}

/// ACL DELUSER username [username ...]
fn acl_deluser(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args[2..].iter().any(|n| &n[..] == b"default") {
        return Err(CmdError::new("ERR The 'default' user cannot be removed"));
    }
    let mut deleted = Vec::new();
    {
        let mut acl = ctx.shared.acl.write();
        for n in &args[2..] {
            if acl.users.remove(&n[..]).is_some() {
                deleted.push(n.to_vec());
            }
        }
    }
    kill_clients_of(ctx, &deleted);
    ctx.shared.acl_changed();
    ctx.out.int(deleted.len() as i64);
    Ok(())
}

/// The fields of one selector in ACL GETUSER.
fn selector_fields(ctx: &mut Ctx, s: &acl::Selector) {
    ctx.out.bulk(b"commands");
    ctx.out.bulk(&s.commands_field());
    ctx.out.bulk(b"keys");
    ctx.out.bulk(&s.keys_field());
    ctx.out.bulk(b"channels");
    ctx.out.bulk(&s.channels_field());
}

/// ACL GETUSER username
fn acl_getuser(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(u) = ctx.shared.acl.read().users.get(&args[2][..]).cloned() else {
        ctx.out.null();
        return Ok(());
    };
    ctx.out.map(6);
    ctx.out.bulk(b"flags");
    let flags = u.flag_names();
    ctx.out.set(flags.len());
    for f in flags {
        ctx.out.bulk(f.as_bytes());
    }
    ctx.out.bulk(b"passwords");
    ctx.out.array(u.passwords().len());
    for p in u.passwords() {
        ctx.out.bulk(p.as_bytes());
    }
    selector_fields(ctx, u.root());
    ctx.out.bulk(b"selectors");
    ctx.out.array(u.extra_selectors().len());
    for s in u.extra_selectors() {
        ctx.out.map(3);
        selector_fields(ctx, s);
    }
    Ok(())
}

/// ACL LIST
fn acl_list(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let users: Vec<Arc<User>> = ctx.shared.acl.read().users.values().cloned().collect();
    ctx.out.array(users.len());
    for u in users {
        let mut line = b"user ".to_vec();
        line.extend_from_slice(&u.name);
        line.push(b' ');
        line.extend_from_slice(&u.describe());
        ctx.out.bulk(&line);
    }
    Ok(())
}

/// ACL USERS
fn acl_users(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let names: Vec<Vec<u8>> = ctx.shared.acl.read().users.keys().cloned().collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(&n);
    }
    Ok(())
}

/// ACL WHOAMI
fn acl_whoami(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    match &ctx.client.user {
        Some(u) => {
            let n = u.name.clone();
            ctx.out.bulk(&n)
        }
        None => ctx.out.null(),
    }
    Ok(())
}

fn aclfile(ctx: &Ctx) -> Result<String, CmdError> {
    let f = ctx
        .shared
        .config
        .read()
        .get("aclfile")
        .unwrap_or("")
        .to_string();
    if f.is_empty() {
        return Err(CmdError::new("ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration."));
    }
    Ok(f)
}

/// ACL LOAD: all or nothing; every connection of a user other than
/// `default` is closed, as Redis frees the old users.
fn acl_load(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let file = aclfile(ctx)?;
    let text = std::fs::read(&file).map_err(|e| {
        CmdError::new(format!(
            "ERR Error loading ACLs, opening file '{file}': {}",
            io_reason(&e)
        ))
    })?;
    let pubsub_all = ctx.shared.acl_pubsub_all();
    let users = acl::parse_acl_file(&text, &file, pubsub_all)
        .map_err(|e| CmdError::new(format!("ERR {e}")))?;
    let old: Vec<Vec<u8>> = {
        let mut acl = ctx.shared.acl.write();
        let old = acl
            .users
            .keys()
            .filter(|n| n.as_slice() != b"default")
            .cloned()
            .collect();
        acl.users = users;
        old
    };
    kill_clients_of(ctx, &old);
    ctx.shared.acl_changed();
    ctx.out.ok();
    Ok(())
}

/// strerror-like text of an I/O error.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "No such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "Permission denied".into(),
        _ => e.to_string(),
    }
}

/// ACL SAVE: the users written to a temporary file renamed over the
/// ACL file.
fn acl_save(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let file = aclfile(ctx)?;
    let text = ctx.shared.acl.read().file_text();
    let tmp = format!("{file}.tmp-{}-{}", std::process::id(), now_ms());
    let r = std::fs::write(&tmp, &text).and_then(|()| std::fs::rename(&tmp, &file));
    if let Err(e) = r {
        tracing::warn!("Writing ACL file for ACL SAVE: {e}");
        let _ = std::fs::remove_file(&tmp);
        return Err(CmdError::new("ERR There was an error trying to save the ACLs. Please check the server logs for more information"));
    }
    ctx.out.ok();
    Ok(())
}

/// ACL CAT [category]: the commands of a category in table order (Redis
/// prints them in its dictionary's order, which changes with its hash
/// seed).
fn acl_cat(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    match args.len() {
        2 => {
            ctx.out.array(acl::CATEGORIES.len());
            for c in acl::CATEGORIES {
                ctx.out.bulk(c.as_bytes());
            }
        }
        3 => {
            let flag = acl::category_flag(&args[2]);
            if flag == 0 {
                let name = &args[2][..args[2].len().min(128)];
                return Err(CmdError::new(format!(
                    "ERR Unknown category '{}'",
                    String::from_utf8_lossy(super::c_str(name))
                )));
            }
            let names = acl::category_commands(flag);
            ctx.out.array(names.len());
            for n in names {
                ctx.out.bulk(n.as_bytes());
            }
        }
        _ => return Err(subcommand_syntax(args)),
    }
    Ok(())
}

/// Redis's `addReplySubcommandSyntaxError`.
fn subcommand_syntax(args: &[Bytes]) -> CmdError {
    CmdError::new(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
        String::from_utf8_lossy(super::c_str(&args[1][..args[1].len().min(128)]))
    ))
}

/// ACL GENPASS [bits]
fn acl_genpass(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(subcommand_syntax(args));
    }
    let bits = match args.get(2) {
        Some(a) => arg_i64(a)?,
        None => 256,
    };
    if bits <= 0 || bits > 4096 {
        return Err(CmdError::new("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096"));
    }
    let chars = ((bits + 3) / 4) as usize;
    ctx.out.bulk(crate::random::random_hex(chars).as_bytes());
    Ok(())
}

/// ACL LOG [count | RESET]
fn acl_log(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(subcommand_syntax(args));
    }
    let mut count: i64 = 10;
    if let Some(a) = args.get(2) {
        if super::is_opt(a, "reset") {
            ctx.shared.acl.write().log.clear();
            ctx.out.ok();
            return Ok(());
        }
        count = arg_i64(a)?.max(0);
    }
    let entries: Vec<LogEntry> = ctx
        .shared
        .acl
        .read()
        .log
        .iter()
        .take(count as usize)
        .cloned()
        .collect();
    let now = now_ms();
    ctx.out.array(entries.len());
    for e in entries {
        ctx.out.map(7);
        ctx.out.bulk(b"count");
        ctx.out.int(e.count as i64);
        ctx.out.bulk(b"reason");
        ctx.out.bulk(match e.reason {
            LogReason::Command => b"command",
            LogReason::Key => b"key",
            LogReason::Channel => b"channel",
            LogReason::Auth => b"auth",
        });
        ctx.out.bulk(b"context");
        ctx.out.bulk(match e.context {
            LogContext::Toplevel => &b"toplevel"[..],
            LogContext::Multi => b"multi",
            LogContext::Lua => b"lua",
        });
        ctx.out.bulk(b"object");
        ctx.out.bulk(&e.object);
        ctx.out.bulk(b"username");
        ctx.out.bulk(&e.username);
        ctx.out.bulk(b"age-seconds");
        ctx.out
            .double(now.saturating_sub(e.ctime_ms) as f64 / 1000.0);
        ctx.out.bulk(b"client-info");
        ctx.out.bulk(e.client_info.as_bytes());
    }
    Ok(())
}

/// ACL DRYRUN username command [arg ...]
fn acl_dryrun(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let Some(u) = ctx.shared.acl.read().users.get(&args[2][..]).cloned() else {
        return Err(CmdError::new(format!(
            "ERR User '{}' not found",
            String::from_utf8_lossy(super::c_str(&args[2]))
        )));
    };
    let cmd_args = &args[3..];
    let t = super::table();
    let not_found = || {
        CmdError::new(format!(
            "ERR Command '{}' not found",
            String::from_utf8_lossy(super::c_str(&args[3]))
        ))
    };
    // Redis's `lookupCommand`: a container needs a known subcommand.
    let mut idx = t.lookup(&cmd_args[0]).ok_or_else(not_found)?;
    if !t.entries[idx].cmd.subcommands.is_empty() && cmd_args.len() >= 2 {
        idx = t.lookup_sub(idx, &cmd_args[1]).ok_or_else(not_found)?;
    }
    let e = &t.entries[idx];
    let argc = cmd_args.len() as i32;
    if (e.cmd.arity > 0 && e.cmd.arity != argc) || argc < -e.cmd.arity {
        return Err(CmdError::new(format!(
            "ERR wrong number of arguments for '{}' command",
            e.full_name
        )));
    }
    match u.check(idx, cmd_args, &mut Vec::new()) {
        Ok(()) => ctx.out.ok(),
        Err(d) => {
            let msg = match d {
                Denied::Command => format!(
                    "This user has no permissions to run the '{}' command",
                    e.full_name
                ),
                Denied::Key(p) => format!(
                    "This user has no permissions to access the '{}' key",
                    String::from_utf8_lossy(super::c_str(&cmd_args[p]))
                ),
                Denied::Channel(p) => format!(
                    "This user has no permissions to access the '{}' channel",
                    String::from_utf8_lossy(super::c_str(&cmd_args[p]))
                ),
            };
            ctx.out.bulk(msg.as_bytes());
        }
    }
    Ok(())
}

/// ACL HELP
fn acl_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    super::args::help_reply(
        ctx,
        "ACL",
        &[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    );
    Ok(())
}
