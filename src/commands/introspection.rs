//! COMMAND and its subcommands (COUNT, DOCS, INFO, LIST, GETKEYS, HELP).
//!
//! Everything COMMAND prints comes from `commands::table()` and the
//! metadata generated from Redis 7.0 into `catalog::meta` (key specs, tips,
//! doc arguments, history); nothing here names another family's command.

use super::{
    arg_flags, flags, is_kw, key_flags, table, Arg, ArgType, BeginSearch, CmdError, CmdResult,
    Command, Ctx, Entry, FindKeys, Handler, KeySpec,
};
use crate::glob::glob_match;
use crate::protocol::Out;
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("command", command_all),
    ("command|count", command_count),
    ("command|docs", command_docs),
    ("command|info", command_info),
    ("command|list", command_list),
    ("command|getkeys", command_getkeys),
    ("command|help", command_help),
];

// ---------------------------------------------------------------- COMMAND

/// Finds a command by name, accepting `container|sub` for subcommands.
fn lookup_full(name: &[u8]) -> Option<usize> {
    let t = table();
    match name.iter().position(|&c| c == b'|') {
        None => t.lookup(name),
        Some(p) => {
            let parent = t.lookup(&name[..p])?;
            t.lookup_sub(parent, &name[p + 1..])
        }
    }
}

/// Indices of the subcommands of entry `idx`, in table order.
fn subcommands_of(idx: usize) -> impl Iterator<Item = usize> {
    let t = table();
    t.entries
        .iter()
        .enumerate()
        .filter(move |(_, e)| e.parent == Some(idx))
        .map(|(i, _)| i)
}

fn write_flags(out: &mut Out, cmd: &Command) {
    write_flag_names(out, cmd.flags, flags::NAMES);
}

/// A set of simple strings: the names of the `flags` bits in `names` order.
fn write_flag_names<F: Copy + std::ops::BitAnd<Output = F> + PartialEq + Default>(
    out: &mut Out,
    flags: F,
    names: &[(F, &str)],
) {
    let set: Vec<&str> = names
        .iter()
        .filter(|(f, _)| flags & *f != F::default())
        .map(|(_, n)| *n)
        .collect();
    out.set(set.len());
    for n in set {
        out.simple(n);
    }
}

/// COMMAND INFO's key specs (Redis 7.0 `addReplyCommandKeySpecs`): a set of
/// maps, `notes` first when present.
fn write_key_specs(out: &mut Out, specs: &[KeySpec]) {
    out.set(specs.len());
    for spec in specs {
        out.map(3 + usize::from(spec.notes.is_some()));
        if let Some(notes) = spec.notes {
            out.bulk(b"notes");
            out.bulk(notes.as_bytes());
        }
        out.bulk(b"flags");
        write_flag_names(out, spec.flags, key_flags::NAMES);
        out.bulk(b"begin_search");
        out.map(2);
        out.bulk(b"type");
        match spec.begin_search {
            BeginSearch::Unknown => {
                out.bulk(b"unknown");
                out.bulk(b"spec");
                out.map(0);
            }
            BeginSearch::Index(i) => {
                out.bulk(b"index");
                out.bulk(b"spec");
                out.map(1);
                out.bulk(b"index");
                out.int(i64::from(i));
            }
            BeginSearch::Keyword { keyword, startfrom } => {
                out.bulk(b"keyword");
                out.bulk(b"spec");
                out.map(2);
                out.bulk(b"keyword");
                out.bulk(keyword.as_bytes());
                out.bulk(b"startfrom");
                out.int(i64::from(startfrom));
            }
        }
        out.bulk(b"find_keys");
        out.map(2);
        out.bulk(b"type");
        match spec.find_keys {
            FindKeys::Unknown => {
                out.bulk(b"unknown");
                out.bulk(b"spec");
                out.map(0);
            }
            FindKeys::Range {
                lastkey,
                keystep,
                limit,
            } => {
                out.bulk(b"range");
                out.bulk(b"spec");
                out.map(3);
                out.bulk(b"lastkey");
                out.int(i64::from(lastkey));
                out.bulk(b"keystep");
                out.int(i64::from(keystep));
                out.bulk(b"limit");
                out.int(i64::from(limit));
            }
            FindKeys::Keynum {
                keynumidx,
                firstkey,
                keystep,
            } => {
                out.bulk(b"keynum");
                out.bulk(b"spec");
                out.map(3);
                out.bulk(b"keynumidx");
                out.int(i64::from(keynumidx));
                out.bulk(b"firstkey");
                out.int(i64::from(firstkey));
                out.bulk(b"keystep");
                out.int(i64::from(keystep));
            }
        }
    }
}

/// One COMMAND INFO element (Redis 7.0 `addReplyCommandInfo`): name, arity,
/// flags, first key, last key, step, ACL categories, tips, key specs,
/// subcommands. Flags, categories and tips are sets; subcommands an array,
/// or an empty set when there are none (`addReplyCommandSubCommands`).
fn write_command_info(out: &mut Out, idx: usize) {
    let e: &Entry = &table().entries[idx];
    let cmd = e.cmd;
    out.array(10);
    out.bulk(e.full_name.as_bytes());
    out.int(cmd.arity as i64);
    write_flags(out, cmd);
    out.int(cmd.first_key as i64);
    out.int(cmd.last_key as i64);
    out.int(cmd.key_step as i64);
    out.set(cmd.acl.len());
    for a in cmd.acl {
        out.simple(a);
    }
    out.set(e.meta.tips.len());
    for t in e.meta.tips {
        out.bulk(t.as_bytes());
    }
    write_key_specs(out, &table().key_specs(idx));
    let subs: Vec<usize> = subcommands_of(idx).collect();
    if subs.is_empty() {
        out.set(0);
    } else {
        out.array(subs.len());
        for s in subs {
            write_command_info(out, s);
        }
    }
}

/// COMMAND DOCS arguments (Redis 7.0 `addReplyCommandArgList`): an array of
/// maps, fields in Redis's order, nested for `oneof` and `block`.
fn write_doc_args(out: &mut Out, args: &[Arg]) {
    out.array(args.len());
    for a in args {
        let nested = matches!(a.kind, ArgType::Oneof | ArgType::Block);
        let len = 2
            + usize::from(a.key_spec_index.is_some())
            + usize::from(a.token.is_some())
            + usize::from(a.summary.is_some())
            + usize::from(a.since.is_some())
            + usize::from(a.deprecated_since.is_some())
            + usize::from(a.flags != 0)
            + usize::from(nested);
        out.map(len);
        out.bulk(b"name");
        out.bulk(a.name.as_bytes());
        out.bulk(b"type");
        out.bulk(a.kind.name().as_bytes());
        if let Some(i) = a.key_spec_index {
            out.bulk(b"key_spec_index");
            out.int(i64::from(i));
        }
        for (field, value) in [
            (&b"token"[..], a.token),
            (b"summary", a.summary),
            (b"since", a.since),
            (b"deprecated_since", a.deprecated_since),
        ] {
            if let Some(v) = value {
                out.bulk(field);
                out.bulk(v.as_bytes());
            }
        }
        if a.flags != 0 {
            out.bulk(b"flags");
            write_flag_names(out, a.flags, arg_flags::NAMES);
        }
        if nested {
            out.bulk(b"arguments");
            write_doc_args(out, a.args);
        }
    }
}

/// One COMMAND DOCS value (Redis 7.0 `addReplyCommandDocs`): summary,
/// since, group, complexity, doc flags, deprecation, history, arguments
/// and, for a container, its subcommands' docs.
fn write_command_doc(out: &mut Out, idx: usize) {
    let e = &table().entries[idx];
    let (doc, meta) = (&e.cmd.doc, e.meta);
    let subs: Vec<usize> = subcommands_of(idx).collect();
    // A command without a complexity (MONITOR) has no such field.
    out.map(
        3 + usize::from(!doc.complexity.is_empty())
            + usize::from(!meta.doc_flags.is_empty())
            + usize::from(meta.deprecated_since.is_some())
            + usize::from(meta.replaced_by.is_some())
            + usize::from(!meta.history.is_empty())
            + usize::from(!meta.args.is_empty())
            + usize::from(!subs.is_empty()),
    );
    out.bulk(b"summary");
    out.bulk(doc.summary.as_bytes());
    out.bulk(b"since");
    out.bulk(doc.since.as_bytes());
    out.bulk(b"group");
    out.bulk(doc.group.as_bytes());
    if !doc.complexity.is_empty() {
        out.bulk(b"complexity");
        out.bulk(doc.complexity.as_bytes());
    }
    if !meta.doc_flags.is_empty() {
        out.bulk(b"doc_flags");
        out.set(meta.doc_flags.len());
        for f in meta.doc_flags {
            out.simple(f);
        }
    }
    if let Some(v) = meta.deprecated_since {
        out.bulk(b"deprecated_since");
        out.bulk(v.as_bytes());
    }
    if let Some(r) = meta.replaced_by {
        out.bulk(b"replaced_by");
        out.bulk(r.as_bytes());
    }
    if !meta.history.is_empty() {
        out.bulk(b"history");
        out.set(meta.history.len());
        for (version, change) in meta.history {
            out.array(2);
            out.bulk(version.as_bytes());
            out.bulk(change.as_bytes());
        }
    }
    if !meta.args.is_empty() {
        out.bulk(b"arguments");
        write_doc_args(out, meta.args);
    }
    if !subs.is_empty() {
        out.bulk(b"subcommands");
        out.map(subs.len());
        for s in subs {
            out.bulk(table().entries[s].full_name.as_bytes());
            write_command_doc(out, s);
        }
    }
}

/// COMMAND
fn command_all(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let t = table();
    ctx.out.array(t.top.len());
    for &i in &t.top {
        write_command_info(ctx.out, i);
    }
    Ok(())
}

/// COMMAND COUNT
fn command_count(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    ctx.out.int(table().top.len() as i64);
    Ok(())
}

/// COMMAND INFO [command-name [command-name ...]]
fn command_info(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() == 2 {
        return command_all(ctx, args);
    }
    ctx.out.array(args.len() - 2);
    for name in &args[2..] {
        match lookup_full(name) {
            Some(i) => write_command_info(ctx.out, i),
            // Redis replies a null bulk here, not a null array.
            None => ctx.out.null(),
        }
    }
    Ok(())
}

/// COMMAND DOCS [command-name [command-name ...]]
fn command_docs(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let t = table();
    let found: Vec<usize> = if args.len() == 2 {
        t.top.clone()
    } else {
        args[2..].iter().filter_map(|n| lookup_full(n)).collect()
    };
    ctx.out.map(found.len());
    for i in found {
        ctx.out.bulk(t.entries[i].full_name.as_bytes());
        write_command_doc(ctx.out, i);
    }
    Ok(())
}

/// COMMAND LIST [FILTERBY <MODULE module-name | ACLCAT category | PATTERN pattern>]
///
/// Subcommands are listed too, by full name (`client|list`).
fn command_list(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    enum Filter<'a> {
        All,
        Module,
        AclCat(String),
        Pattern(&'a [u8]),
    }
    let filter = match args.len() {
        2 => Filter::All,
        5 if is_kw(&args[2], "filterby") => {
            if is_kw(&args[3], "module") {
                Filter::Module
            } else if is_kw(&args[3], "aclcat") {
                Filter::AclCat(format!("@{}", String::from_utf8_lossy(&args[4])))
            } else if is_kw(&args[3], "pattern") {
                Filter::Pattern(&args[4])
            } else {
                return Err(CmdError::syntax());
            }
        }
        _ => return Err(CmdError::syntax()),
    };
    let names: Vec<&str> = table()
        .entries
        .iter()
        .filter(|e| match &filter {
            Filter::All => true,
            // No modules exist.
            Filter::Module => false,
            Filter::AclCat(c) => e.cmd.acl.iter().any(|a| a.eq_ignore_ascii_case(c)),
            Filter::Pattern(p) => glob_match(p, e.full_name.as_bytes(), true),
        })
        .map(|e| e.full_name.as_str())
        .collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
    Ok(())
}

/// COMMAND GETKEYS command [arg [arg ...]]
fn command_getkeys(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let t = table();
    let cmd_args = &args[2..];
    let Some(mut idx) = t.lookup(&cmd_args[0]) else {
        return Err(CmdError::new("ERR Invalid command specified"));
    };
    if !t.entries[idx].cmd.subcommands.is_empty() && cmd_args.len() >= 2 {
        idx = t
            .lookup_sub(idx, &cmd_args[1])
            .ok_or_else(|| CmdError::new("ERR Invalid command specified"))?;
    }
    // Redis checks for keys before arity.
    if !t.has_keys(idx) {
        return Err(CmdError::new("ERR The command has no key arguments"));
    }
    let arity = t.entries[idx].cmd.arity;
    let argc = cmd_args.len() as i32;
    if (arity > 0 && arity != argc) || argc < -arity {
        return Err(CmdError::new(
            "ERR Invalid number of arguments specified for command",
        ));
    }
    let keys = t.keys(idx, cmd_args);
    if keys.is_empty() {
        return Err(CmdError::new("ERR Invalid arguments specified for command"));
    }
    ctx.out.array(keys.len());
    for k in keys {
        ctx.out.bulk(k);
    }
    Ok(())
}

/// COMMAND HELP
fn command_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    super::args::help_reply(
        ctx,
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
        ],
    );
    Ok(())
}
