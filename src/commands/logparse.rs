//! LOGPARSE: named log formats and parsing of single lines into fields with
//! a template id (the engine is `crate::logparse`).
//!
//! Formats are not keys: they live in `Keyspace::logparse`, beside the
//! databases, so SELECT, FLUSHALL and SWAPDB do not touch them. Their
//! changes are WAL effects (`LogFormatSet`, `LogFormatDel`), and every PARSE
//! that changes a format's shared miner (a new template, or a template
//! generalised) logs the tokens it learned (`LogMinerLearn`), so after a
//! restart the same lines get the same template ids. Base snapshots carry
//! the specs and miner states (`node::persist::rewrite`).

use super::args::help_reply;
use super::{is_kw, CmdError, CmdResult, Ctx, Handler};
use crate::db::effect::Effect;
use crate::logparse::{self, FormatSpec};
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("logparse|ingest", super::logingest::ingest),
    ("logparse|stats", super::logquery::stats),
    ("logparse|grep", super::logquery::grep),
    ("logparse|tail", super::logquery::tail),
    ("logparse|templates", super::logquery::templates),
    ("logparse|format", format),
    ("logparse|help", help),
    ("logparse|parse", parse),
];

/// LOGPARSE HELP
fn help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    help_reply(
        ctx,
        "LOGPARSE",
        &[
            "FORMAT SET <name> <log_format> [MASK <regex>]... [SIMILARITY <0..1>] [DEPTH <n>]",
            "           [MINER TYPED|DRAIN] [TIME <field-template> <strftime>] [TZ <zone>]",
            "           [TIMEKEY|LEVELKEY|MESSAGEKEY|COMPONENTKEY <key>]",
            "    Define a format in logparser notation, e.g. '<Date> <Time> <Level> <Component>: <Content>'",
            "    (<Field> is a field, <Content> the rest of the line, a space matches one or more",
            "    spaces), or 'syslog', 'logfmt' or 'json'. MASK regexes mark variables before",
            "    template mining; SIMILARITY and DEPTH tune the miner; MINER DRAIN mines as",
            "    logparser's Drain (the default, TYPED, also masks number-like words first);",
            "    TIME builds the timestamp,",
            "    e.g. TIME \"<Date> <Time>\" \"%y%m%d %H%M%S\"; TZ is an IANA zone, UTC or +hh:mm.",
            "FORMAT GET <name>",
            "    Show a format's definition.",
            "FORMAT LIST",
            "    List format names (built-in and user-defined).",
            "FORMAT DEL <name>",
            "    Delete a user-defined format.",
            "PARSE <format> <line>",
            "    Parse one line: its fields, ts, level, component, content, template_id, template.",
            "INGEST <key> <format> <text> [<text> ...] [IDS TIME|AUTO]",
            "    Parse every line of the texts into an entry of stream <key> (ts, level,",
            "    component, content, template_id and the format's fields); lines that do not",
            "    parse go to stream <key>:malformed. IDS TIME (default when the format has a",
            "    time) takes entry ids from the event time; AUTO as XADD's '*'.",
            "STATS <key> [FROM <id|time>] [TO <id|time>] [BY <field>] [BUCKET <ms>]",
            "    Entries, time span, events per second, levels, top components, templates.",
            "    FROM/TO: a stream id, ms, or an ISO-8601 time ('2008-11-09T20:36:15',",
            "    '2008-11-09 20:36', '2008-11-09', with Z or +hh:mm; UTC without), '(' excludes;",
            "    an entry's time is its id's ms (the event time with IDS TIME).",
            "    BY template|level|component|<field>: counts per value of the field.",
            "    BUCKET <ms>: counts per time bucket, [start ms, entries] each, empty ones",
            "    included; with BY [start ms, entries, {value: count}].",
            "GREP <key> <regex> [LEVEL <l>] [COMPONENT <c>] [TEMPLATE <id>] [FIELD <name> <value>]",
            "     [FROM <id|time>] [TO <id|time>] [COUNT <n>]",
            "    Entries whose content matches the regex, in id order.",
            "TAIL <key> <n> [AFTER <id>] [FOLLOW [BLOCK <ms>]]",
            "    The last n entries; with AFTER the first n after the id. FOLLOW reads after",
            "    AFTER's id (default: the last id now) and blocks as XREAD BLOCK until entries",
            "    arrive (BLOCK 0 or none: forever; timeout: null); call again with the last id",
            "    to follow the log.",
            "TEMPLATES <key> [COUNT <n>]",
            "    The stream's mined templates with id and count, most frequent first.",
        ],
    );
    Ok(())
}

fn no_format(name: &[u8]) -> CmdError {
    CmdError::new(format!(
        "ERR no such format '{}'",
        String::from_utf8_lossy(name)
    ))
}

fn text_arg(a: &[u8], what: &str) -> Result<String, CmdError> {
    String::from_utf8(a.to_vec())
        .map_err(|_| CmdError::new(format!("ERR {what} is not valid UTF-8")))
}

/// LOGPARSE FORMAT SET|GET|LIST|DEL ...
fn format(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let sub = &args[2];
    if is_kw(sub, "set") {
        format_set(ctx, args)
    } else if is_kw(sub, "get") {
        if args.len() != 4 {
            return Err(CmdError::wrong_args("logparse|format"));
        }
        format_get(ctx, &args[3])
    } else if is_kw(sub, "list") {
        if args.len() != 3 {
            return Err(CmdError::wrong_args("logparse|format"));
        }
        let names = ctx.ks.logparse.names();
        ctx.out.array(names.len());
        for (n, _) in names {
            ctx.out.bulk(&n);
        }
        Ok(())
    } else if is_kw(sub, "del") {
        if args.len() != 4 {
            return Err(CmdError::wrong_args("logparse|format"));
        }
        let name = args[3].clone();
        let deleted = ctx
            .ks
            .logparse
            .remove(&name)
            .map_err(|e| CmdError::new(format!("ERR {e}")))?;
        if deleted {
            ctx.ks.stats.dirty += 1;
            ctx.ks.log_global(Effect::LogFormatDel { name });
        }
        ctx.out.int(i64::from(deleted));
        Ok(())
    } else {
        Err(CmdError::new(format!(
            "ERR unknown subcommand 'FORMAT {}'. Try LOGPARSE HELP.",
            super::c_str_lossy(sub)
        )))
    }
}

/// LOGPARSE FORMAT SET <name> <log_format> [MASK <regex>]... [SIMILARITY <0..1>]
/// [DEPTH <n>] [MINER TYPED|DRAIN] [TIME <field-template> <strftime>] [TZ <zone>]
/// [TIMEKEY|LEVELKEY|MESSAGEKEY|COMPONENTKEY <key>]
fn format_set(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() < 5 {
        return Err(CmdError::wrong_args("logparse|format"));
    }
    let name = args[3].clone();
    let mut spec = FormatSpec::new(&text_arg(&args[4], "log_format")?);
    let mut i = 5;
    while i < args.len() {
        let opt = &args[i];
        let val = |k: usize| args.get(i + k).ok_or_else(CmdError::syntax);
        if is_kw(opt, "mask") {
            spec.masks.push(text_arg(val(1)?, "MASK")?);
            i += 2;
        } else if is_kw(opt, "similarity") {
            spec.similarity = std::str::from_utf8(val(1)?)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|v| (0.0..=1.0).contains(v))
                .ok_or_else(|| CmdError::new("ERR SIMILARITY must be a number between 0 and 1"))?;
            i += 2;
        } else if is_kw(opt, "depth") {
            let d = super::arg_i64(val(1)?)?;
            spec.depth = u32::try_from(d)
                .ok()
                .filter(|d| (logparse::miner::DEPTH_MIN..=logparse::miner::DEPTH_MAX).contains(d))
                .ok_or_else(|| {
                    CmdError::new(format!(
                        "ERR DEPTH must be between {} and {}",
                        logparse::miner::DEPTH_MIN,
                        logparse::miner::DEPTH_MAX
                    ))
                })?;
            i += 2;
        } else if is_kw(opt, "miner") {
            spec.miner = logparse::MinerKind::from_name(val(1)?)
                .ok_or_else(|| CmdError::new("ERR MINER must be DRAIN or TYPED"))?;
            i += 2;
        } else if is_kw(opt, "time") {
            spec.time = Some((text_arg(val(1)?, "TIME")?, text_arg(val(2)?, "TIME")?));
            i += 3;
        } else if is_kw(opt, "tz") {
            spec.tz = Some(text_arg(val(1)?, "TZ")?);
            i += 2;
        } else if is_kw(opt, "timekey") {
            spec.keys.time = Some(text_arg(val(1)?, "TIMEKEY")?);
            i += 2;
        } else if is_kw(opt, "levelkey") {
            spec.keys.level = Some(text_arg(val(1)?, "LEVELKEY")?);
            i += 2;
        } else if is_kw(opt, "messagekey") {
            spec.keys.message = Some(text_arg(val(1)?, "MESSAGEKEY")?);
            i += 2;
        } else if is_kw(opt, "componentkey") {
            spec.keys.component = Some(text_arg(val(1)?, "COMPONENTKEY")?);
            i += 2;
        } else {
            return Err(CmdError::syntax());
        }
    }
    ctx.ks
        .logparse
        .define(&name, spec.clone())
        .map_err(|e| CmdError::new(format!("ERR {e}")))?;
    ctx.ks.stats.dirty += 1;
    ctx.ks.log_global(Effect::LogFormatSet { name, spec });
    ctx.out.ok();
    Ok(())
}

/// LOGPARSE FORMAT GET <name>
fn format_get(ctx: &mut Ctx, name: &[u8]) -> CmdResult {
    let Some((f, builtin)) = ctx.ks.logparse.format(name) else {
        return Err(no_format(name));
    };
    let templates = ctx.ks.logparse.templates(name);
    let s = f.spec();
    let keys = [
        ("timekey", &s.keys.time),
        ("levelkey", &s.keys.level),
        ("messagekey", &s.keys.message),
        ("componentkey", &s.keys.component),
    ];
    let set_keys = keys.iter().filter(|(_, v)| v.is_some()).count();
    let out = &mut *ctx.out;
    out.map(10 + set_keys);
    out.bulk(b"name");
    out.bulk(name);
    out.bulk(b"builtin");
    out.int(i64::from(builtin));
    out.bulk(b"log_format");
    out.bulk(s.log_format.as_bytes());
    out.bulk(b"masks");
    out.array(s.masks.len());
    for m in &s.masks {
        out.bulk(m.as_bytes());
    }
    out.bulk(b"similarity");
    out.bulk(crate::protocol::format_double(s.similarity).as_bytes());
    out.bulk(b"depth");
    out.int(i64::from(s.depth));
    out.bulk(b"miner");
    out.bulk(s.miner.name().as_bytes());
    out.bulk(b"time");
    match &s.time {
        Some((t, f)) => {
            out.array(2);
            out.bulk(t.as_bytes());
            out.bulk(f.as_bytes());
        }
        None => out.null(),
    }
    out.bulk(b"tz");
    match &s.tz {
        Some(z) => out.bulk(z.as_bytes()),
        None => out.null(),
    }
    for (k, v) in keys {
        if let Some(v) = v {
            out.bulk(k.as_bytes());
            out.bulk(v.as_bytes());
        }
    }
    out.bulk(b"templates");
    out.int(templates as i64);
    Ok(())
}

/// LOGPARSE PARSE <format> <line>
///
/// Replies with the line's fields as a map (a flat field/value array in
/// RESP2): every named field except the one that became `content` (and a
/// raw field named like a normalised one that is present), then
/// `ts` (when the format builds one and it could be read), `level`,
/// `component` (when present), `content`, `template_id`, `template`.
fn parse(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let name = &args[2];
    let year = logparse::year_of_unix_ms(ctx.now_ms);
    let Some(named) = ctx.ks.logparse.named_mut(name) else {
        return Err(no_format(name));
    };
    let p = named.ingestor.parse(&args[3], year).map_err(|e| {
        CmdError::new(format!(
            "ERR line does not match format '{}': {e}",
            String::from_utf8_lossy(name)
        ))
    })?;
    let r = &p.record;
    let ts = r.ts.map(|t| t.iso());
    let template = p.cluster.map(|c| c.template());
    let n = r.fields.len()
        + usize::from(ts.is_some())
        + usize::from(r.level.is_some())
        + usize::from(r.component.is_some())
        + 1
        + 2 * usize::from(template.is_some());
    // A raw field named like a normalised one (a JSON key `level`) is left
    // out when the normalised value is present, so map keys stay unique.
    let shadowed = |k: &[u8]| match k {
        b"ts" => ts.is_some(),
        b"level" => r.level.is_some(),
        b"component" => r.component.is_some(),
        b"content" => true,
        b"template_id" | b"template" => template.is_some(),
        _ => false,
    };
    let fields: Vec<_> = r.fields.iter().filter(|(k, _)| !shadowed(k)).collect();
    let n = n - r.fields.len() + fields.len();
    let out = &mut *ctx.out;
    out.map(n);
    for (k, v) in fields {
        out.bulk(k);
        out.bulk(v);
    }
    if let Some(ts) = &ts {
        out.bulk(b"ts");
        out.bulk(ts.as_bytes());
    }
    if let Some(l) = &r.level {
        out.bulk(b"level");
        out.bulk(l);
    }
    if let Some(c) = &r.component {
        out.bulk(b"component");
        out.bulk(c);
    }
    out.bulk(b"content");
    out.bulk(&r.content);
    if let (Some(t), Some(l)) = (&template, p.learned) {
        out.bulk(b"template_id");
        out.bulk(l.id.to_string().as_bytes());
        out.bulk(b"template");
        out.bulk(t);
    }
    let learned_tokens = p.learned.filter(|l| l.changed).map(|_| {
        p.tokens()
            .iter()
            .map(|t| Bytes::copy_from_slice(t))
            .collect::<Vec<_>>()
    });
    drop(p);
    if let Some(tokens) = learned_tokens {
        ctx.ks.stats.dirty += 1;
        ctx.ks.log_global(Effect::LogMinerLearn {
            name: name.clone(),
            tokens,
        });
    }
    Ok(())
}
