//! Pub/Sub commands (Redis's pubsub.c): SUBSCRIBE, UNSUBSCRIBE,
//! PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH and PUBSUB CHANNELS / NUMSUB / NUMPAT;
//! sharded Pub/Sub (Redis 7.0): SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH and
//! PUBSUB SHARDCHANNELS / SHARDNUMSUB, with single-node semantics (every
//! slot is local until cluster mode exists).
//!
//! The registry and the delivery of messages to other connections live in
//! `node::pubsub`; these handlers only change subscriptions and write the
//! confirmations, which Redis sends as push frames (`>3` in RESP3, `*3` in
//! RESP2), one per channel.

use super::{CmdError, CmdResult, Ctx, Handler};
use crate::node::pubsub::{Kind, Sink};
use bytes::Bytes;

/// The commands of this family and their handlers (their table entries
/// are generated into `meta.rs`, see `commands::table`).
pub static HANDLERS: &[(&str, Handler)] = &[
    ("subscribe", subscribe),
    ("unsubscribe", unsubscribe),
    ("psubscribe", psubscribe),
    ("punsubscribe", punsubscribe),
    ("publish", publish),
    ("ssubscribe", ssubscribe),
    ("sunsubscribe", sunsubscribe),
    ("spublish", spublish),
    ("pubsub|channels", pubsub_channels),
    ("pubsub|help", pubsub_help),
    ("pubsub|numpat", pubsub_numpat),
    ("pubsub|shardchannels", pubsub_shardchannels),
    ("pubsub|shardnumsub", pubsub_shardnumsub),
    ("pubsub|numsub", pubsub_numsub),
];

/// One confirmation: `[kind, name or nil, count]` as a push.
fn confirm(ctx: &mut Ctx, kind: Kind, what: &str, name: Option<&[u8]>) {
    let count = ctx.client.pubsub.count_for(kind);
    let start = ctx.out.buf.len();
    ctx.out.push(3);
    ctx.out.bulk(what.as_bytes());
    match name {
        Some(n) => ctx.out.bulk(n),
        None => ctx.out.null(),
    }
    ctx.out.int(count as i64);
    let end = ctx.out.buf.len();
    ctx.out.mark_push(start..end);
}

fn subscribe_generic(ctx: &mut Ctx, args: &[Bytes], kind: Kind, what: &str) {
    let id = ctx.client.id;
    for name in &args[1..] {
        ctx.shared
            .pubsub
            .subscribe(&mut ctx.client.pubsub, id, kind, name);
        confirm(ctx, kind, what, Some(name));
    }
}

/// Redis's `pubsubUnsubscribe*`: with names, one confirmation each (also
/// for names not subscribed); without, one per current subscription in
/// subscription order, or a single `[what, nil, count]` when there is none.
fn unsubscribe_generic(ctx: &mut Ctx, args: &[Bytes], kind: Kind, what: &str) {
    let id = ctx.client.id;
    let names = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        ctx.shared.pubsub.subscriptions(id, kind)
    };
    if names.is_empty() {
        confirm(ctx, kind, what, None);
        return;
    }
    for name in &names {
        ctx.shared
            .pubsub
            .unsubscribe(&mut ctx.client.pubsub, id, kind, name);
        confirm(ctx, kind, what, Some(name));
    }
}

/// SUBSCRIBE channel [channel ...]
fn subscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    subscribe_generic(ctx, args, Kind::Channel, "subscribe");
    Ok(())
}

/// UNSUBSCRIBE [channel [channel ...]]
fn unsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    unsubscribe_generic(ctx, args, Kind::Channel, "unsubscribe");
    Ok(())
}

/// PSUBSCRIBE pattern [pattern ...]
fn psubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    subscribe_generic(ctx, args, Kind::Pattern, "psubscribe");
    Ok(())
}

/// PUNSUBSCRIBE [pattern [pattern ...]]
fn punsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    unsubscribe_generic(ctx, args, Kind::Pattern, "punsubscribe");
    Ok(())
}

/// SSUBSCRIBE shardchannel [shardchannel ...]
///
/// Refused while EXEC runs (Redis's CLIENT_DENY_BLOCKING), unlike SUBSCRIBE.
fn ssubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if ctx.client.in_exec {
        return Err(CmdError::new(
            "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client",
        ));
    }
    subscribe_generic(ctx, args, Kind::Shard, "ssubscribe");
    Ok(())
}

/// SUNSUBSCRIBE [shardchannel [shardchannel ...]]
fn sunsubscribe(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    unsubscribe_generic(ctx, args, Kind::Shard, "sunsubscribe");
    Ok(())
}

/// SPUBLISH shardchannel message
///
/// As PUBLISH, to the shard channel's subscribers only (no patterns).
fn spublish(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = ctx.out.buf.len();
    let sink = Sink {
        client_id: ctx.client.id,
        resp3: ctx.out.resp3,
        buf: &mut ctx.out.buf,
    };
    let n = ctx.shared.pubsub.spublish(&args[1], &args[2], Some(sink));
    // Cluster mode: the other nodes of this shard deliver it too
    // (`clusterPropagatePublishShard`).
    if let Some(c) = &ctx.shared.cluster {
        c.propagate_publish(true, &args[1], &args[2]);
    }
    let end = ctx.out.buf.len();
    ctx.out.mark_push(start..end);
    ctx.out.int(n as i64);
    Ok(())
}

/// PUBSUB SHARDCHANNELS [pattern]
fn pubsub_shardchannels(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(subcommand_syntax(&args[1]));
    }
    let list = ctx
        .shared
        .pubsub
        .shard_channels(args.get(2).map(|p| p.as_ref()));
    ctx.out.array(list.len());
    for c in &list {
        ctx.out.bulk(c);
    }
    Ok(())
}

/// PUBSUB SHARDNUMSUB [shardchannel [shardchannel ...]]
fn pubsub_shardnumsub(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.out.array((args.len() - 2) * 2);
    for c in &args[2..] {
        let n = ctx.shared.pubsub.shard_numsub(c);
        ctx.out.bulk(c);
        ctx.out.int(n as i64);
    }
    Ok(())
}

/// Drops every subscription without confirmations (RESET).
pub fn unsubscribe_all_quietly(ctx: &mut Ctx) {
    if ctx.client.pubsub.active() {
        let id = ctx.client.id;
        ctx.shared.pubsub.remove_client(&mut ctx.client.pubsub, id);
    }
}

/// PUBLISH channel message
///
/// Replies the number of deliveries. A subscriber publishing to itself
/// (RESP3) gets the message before the reply, as Redis writes it.
fn publish(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    let start = ctx.out.buf.len();
    let sink = Sink {
        client_id: ctx.client.id,
        resp3: ctx.out.resp3,
        buf: &mut ctx.out.buf,
    };
    let n = ctx.shared.pubsub.publish(&args[1], &args[2], Some(sink));
    // Cluster mode: every other node delivers it too
    // (`clusterPropagatePublish`).
    if let Some(c) = &ctx.shared.cluster {
        c.propagate_publish(false, &args[1], &args[2]);
    }
    // Messages to itself are pushes (kept under CLIENT REPLY OFF).
    let end = ctx.out.buf.len();
    ctx.out.mark_push(start..end);
    ctx.out.int(n as i64);
    Ok(())
}

/// PUBSUB CHANNELS [pattern]
fn pubsub_channels(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    if args.len() > 3 {
        return Err(subcommand_syntax(&args[1]));
    }
    let list = ctx.shared.pubsub.channels(args.get(2).map(|p| p.as_ref()));
    ctx.out.array(list.len());
    for c in &list {
        ctx.out.bulk(c);
    }
    Ok(())
}

/// PUBSUB NUMSUB [channel [channel ...]]
///
/// A flat array of channel, count pairs (also in RESP3, as Redis 7.0).
fn pubsub_numsub(ctx: &mut Ctx, args: &[Bytes]) -> CmdResult {
    ctx.out.array((args.len() - 2) * 2);
    for c in &args[2..] {
        let n = ctx.shared.pubsub.numsub(c);
        ctx.out.bulk(c);
        ctx.out.int(n as i64);
    }
    Ok(())
}

/// PUBSUB NUMPAT
fn pubsub_numpat(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    let n = ctx.shared.pubsub.pattern_count();
    ctx.out.int(n as i64);
    Ok(())
}

/// PUBSUB HELP
fn pubsub_help(ctx: &mut Ctx, _args: &[Bytes]) -> CmdResult {
    super::args::help_reply(
        ctx,
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    );
    Ok(())
}

/// Redis's `addReplySubcommandSyntaxError`.
fn subcommand_syntax(sub: &[u8]) -> CmdError {
    let sub = &sub[..sub.len().min(128)];
    CmdError::new(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
        String::from_utf8_lossy(sub)
    ))
}
