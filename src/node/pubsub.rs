//! Pub/Sub: the registry of channel and pattern subscriptions, message
//! encoding for each subscriber's protocol, and delivery to connections.
//!
//! # Delivery
//!
//! Every connection owns a `ClientPubSub`: an unbounded queue of
//! already-encoded frames (`Mailbox` is its sending side, held by the
//! registry for each subscribed client). Publishing never blocks and never
//! touches a socket: it pushes `*3 message ch payload` (RESP2) or
//! `>3 message ...` (RESP3) frames into the subscribers' queues. The
//! connection loop writes them:
//!
//! - while idle, from a `select!` branch on `ClientPubSub::next_frames`;
//! - before the replies of a request batch: when a batch takes the keyspace
//!   lock, the connection first moves everything already queued into its
//!   reply buffer (`ClientPubSub::drain_into`). Every publication happens
//!   under the keyspace lock, so a message published before a command ran
//!   is always written before that command's reply (an UNSUBSCRIBE
//!   confirmation never overtakes an earlier message), as in Redis where
//!   both go through one output buffer.
//!
//! A client publishing to itself (PUBLISH, or a keyspace notification
//! caused by its own command, RESP3) gets the frame directly in its reply
//! buffer at the point Redis 7.0 writes it (see `Sink`).
//!
//! # Slow subscribers
//!
//! `client-output-buffer-limit pubsub <hard> <soft> <seconds>` (Redis's
//! default 32mb 8mb 60, `PubSub::set_limits` after CONFIG SET): a
//! subscriber with more than the hard limit queued, or more than the soft
//! limit for that many seconds in a row, is disconnected (CLIENT KILL
//! semantics: the connection closes, queued frames are dropped); 0 turns a
//! limit off. The queue thus holds at most about the hard limit plus one
//! message per subscriber.
//!
//! Lock order: keyspace lock, then the registry lock; the registry lock is
//! never held across an `.await`.

use super::{Client, ClientHandle, Shared};
use crate::db::notify::Notification;
use crate::glob::glob_match;
use crate::protocol::Out;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Redis's default `client-output-buffer-limit pubsub` hard limit: 32 MB
/// queued closes the subscriber at once.
pub const HARD_LIMIT_BYTES: u64 = 32 << 20;
/// The soft limit: 8 MB queued ...
pub const SOFT_LIMIT_BYTES: u64 = 8 << 20;
/// ... for 60 seconds in a row closes the subscriber.
pub const SOFT_LIMIT_SECONDS: u64 = 60;

/// The output buffer limits of subscribers (0: no limit).
#[derive(Debug)]
pub struct Limits {
    hard: AtomicU64,
    soft: AtomicU64,
    soft_seconds: AtomicU64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            hard: AtomicU64::new(HARD_LIMIT_BYTES),
            soft: AtomicU64::new(SOFT_LIMIT_BYTES),
            soft_seconds: AtomicU64::new(SOFT_LIMIT_SECONDS),
        }
    }
}
/// Most bytes the idle branch writes in one call (more stays queued for
/// the next turn of the loop, so a flood cannot starve reading requests).
const WRITE_BATCH_BYTES: usize = 256 * 1024;

/// The sending side of a connection's message queue.
#[derive(Clone, Debug)]
pub struct Mailbox {
    tx: mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicUsize>,
    /// Milliseconds (since `handle.created`) when the queue went over the
    /// soft limit; 0 when under it.
    soft_since_ms: Arc<AtomicU64>,
    handle: Arc<ClientHandle>,
}

impl Mailbox {
    /// True when the subscriber speaks RESP3 (pushes are `>` frames).
    fn resp3(&self) -> bool {
        self.handle.meta.lock().resp == 3
    }

    /// Queues one frame, enforcing the output buffer limits.
    fn send(&self, frame: Bytes, limits: &Limits) {
        if self.handle.is_killed() {
            return;
        }
        let queued = self.queued.fetch_add(frame.len(), Ordering::Relaxed) + frame.len();
        let hard = limits.hard.load(Ordering::Relaxed);
        if (hard > 0 && queued as u64 > hard) || self.soft_limit_reached(queued, limits) {
            tracing::warn!(
                "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                self.handle.id,
                self.handle.addr
            );
            self.handle.kill();
            self.queued.fetch_sub(frame.len(), Ordering::Relaxed);
            return;
        }
        // The receiver lives as long as the connection; a send after it
        // closed has nobody to deliver to.
        let _ = self.tx.send(frame);
    }

    /// Queues one frame with no output buffer limit (a MONITOR client is
    /// in Redis's `normal` class, unlimited by default).
    pub fn push_unlimited(&self, frame: Bytes) {
        if self.handle.is_killed() {
            return;
        }
        self.queued.fetch_add(frame.len(), Ordering::Relaxed);
        let _ = self.tx.send(frame);
    }

    fn soft_limit_reached(&self, queued: usize, limits: &Limits) -> bool {
        let now_ms = (self.handle.created.elapsed().as_millis() as u64).max(1);
        let soft = limits.soft.load(Ordering::Relaxed);
        if soft == 0 || queued as u64 <= soft {
            self.soft_since_ms.store(0, Ordering::Relaxed);
            return false;
        }
        match self.soft_since_ms.load(Ordering::Relaxed) {
            0 => {
                self.soft_since_ms.store(now_ms, Ordering::Relaxed);
                false
            }
            since => {
                now_ms.saturating_sub(since)
                    >= limits
                        .soft_seconds
                        .load(Ordering::Relaxed)
                        .saturating_mul(1000)
            }
        }
    }
}

/// A connection's Pub/Sub state: its queue (both ends) and how many
/// channels and patterns it is subscribed to.
#[derive(Debug)]
pub struct ClientPubSub {
    mailbox: Mailbox,
    rx: mpsc::UnboundedReceiver<Bytes>,
    /// Channels subscribed (SUBSCRIBE).
    pub channels: usize,
    /// Patterns subscribed (PSUBSCRIBE).
    pub patterns: usize,
    /// Shard channels subscribed (SSUBSCRIBE).
    pub shards: usize,
}

impl ClientPubSub {
    pub fn new(handle: Arc<ClientHandle>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = handle.push_tx.set(tx.clone());
        ClientPubSub {
            mailbox: Mailbox {
                tx,
                queued: handle.obuf.clone(),
                soft_since_ms: Arc::new(AtomicU64::new(0)),
                handle,
            },
            rx,
            channels: 0,
            patterns: 0,
            shards: 0,
        }
    }

    /// Redis's `clientSubscriptionsCount`: channels plus patterns, the
    /// count (P)SUBSCRIBE and (P)UNSUBSCRIBE confirmations show.
    pub fn count(&self) -> usize {
        self.channels + self.patterns
    }

    /// The count a confirmation of `kind` shows: shard channels are counted
    /// apart (Redis 7.0's `clientShardSubscriptionsCount`).
    pub fn count_for(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shards,
            _ => self.count(),
        }
    }

    /// True in Redis's CLIENT_PUBSUB mode (subscribed to anything): a RESP2
    /// client may then run only the Pub/Sub commands, PING, QUIT and RESET.
    pub fn active(&self) -> bool {
        self.count() + self.shards > 0
    }

    /// Waits for queued frames and returns up to about
    /// `WRITE_BATCH_BYTES` of them, concatenated. Cancel-safe (for
    /// `select!`): nothing is taken from the queue until it returns.
    pub async fn next_frames(&mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        match self.rx.recv().await {
            Some(f) => self.take(f, &mut buf),
            // Cannot happen (the mailbox holds a sender); wait forever
            // rather than spin.
            None => std::future::pending::<()>().await,
        }
        self.drain_limited(&mut buf, WRITE_BATCH_BYTES);
        buf
    }

    /// Moves every frame queued so far into `buf` (a batch's reply buffer,
    /// see the module comment).
    pub fn drain_into(&mut self, buf: &mut Vec<u8>) {
        self.drain_limited(buf, usize::MAX);
    }

    fn drain_limited(&mut self, buf: &mut Vec<u8>, max: usize) {
        while buf.len() < max {
            match self.rx.try_recv() {
                Ok(f) => self.take(f, buf),
                Err(_) => break,
            }
        }
    }

    fn take(&self, frame: Bytes, buf: &mut Vec<u8>) {
        self.mailbox
            .queued
            .fetch_sub(frame.len(), Ordering::Relaxed);
        buf.extend_from_slice(&frame);
    }

    /// The sending side of this connection's queue (MONITOR's feed uses
    /// it too).
    pub fn mailbox(&self) -> Mailbox {
        self.mailbox.clone()
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.mailbox.queued.load(Ordering::Relaxed)
    }
}

/// Commands a RESP2 client may run while subscribed (Redis 7.0's
/// `processCommand` check).
pub fn allowed_in_subscribed_mode(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "ssubscribe"
            | "psubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "punsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// Called by the connection when a request batch takes the keyspace lock:
/// messages queued until now are written before the batch's replies.
/// Redis 7.0 delivers them whatever CLIENT REPLY says.
pub fn drain_before_batch(client: &mut Client, out: &mut Out) {
    client.pubsub.drain_into(&mut out.buf);
}

/// Writes frames taken by `ClientPubSub::next_frames` while the connection
/// was idle. Returns false when the connection must close.
pub async fn write_frames<S: super::net::ClientStream>(
    shared: &Shared,
    client: &Client,
    stream: &mut S,
    frames: Vec<u8>,
) -> bool {
    if frames.is_empty() {
        return true;
    }
    shared
        .stats
        .total_net_output_bytes
        .fetch_add(frames.len() as u64, Ordering::Relaxed);
    shared.observe.writes.fetch_add(1, Ordering::Relaxed);
    // A subscriber that stopped reading blocks this write; CLIENT KILL and
    // the output buffer limits must still close it.
    tokio::select! {
        r = super::net::send(stream, &frames) => r,
        _ = client.handle.kill_notify.notified() => false,
    }
}

/// A set that remembers insertion order (a client's channels or patterns:
/// UNSUBSCRIBE without arguments confirms them in subscription order).
#[derive(Debug, Default)]
struct OrderedSet {
    next: u64,
    by_name: HashMap<Bytes, u64>,
    order: BTreeMap<u64, Bytes>,
}

impl OrderedSet {
    fn insert(&mut self, name: Bytes) -> bool {
        if self.by_name.contains_key(&name) {
            return false;
        }
        self.next += 1;
        self.by_name.insert(name.clone(), self.next);
        self.order.insert(self.next, name);
        true
    }

    fn remove(&mut self, name: &[u8]) -> bool {
        match self.by_name.remove(name) {
            Some(seq) => {
                self.order.remove(&seq);
                true
            }
            None => false,
        }
    }

    fn names(&self) -> Vec<Bytes> {
        self.order.values().cloned().collect()
    }

    fn len(&self) -> usize {
        self.by_name.len()
    }
}

/// What the registry keeps per subscribed client.
#[derive(Debug)]
struct Subscriber {
    mailbox: Mailbox,
    channels: OrderedSet,
    patterns: OrderedSet,
    shards: OrderedSet,
}

impl Subscriber {
    fn set(&mut self, kind: Kind) -> &mut OrderedSet {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shards,
        }
    }

    fn total(&self) -> usize {
        self.channels.len() + self.patterns.len() + self.shards.len()
    }
}

#[derive(Debug, Default)]
struct Registry {
    /// Channel -> subscribed client ids, in subscription order (delivery order).
    channels: HashMap<Bytes, Vec<u64>>,
    /// Pattern -> subscribed client ids.
    patterns: HashMap<Bytes, Vec<u64>>,
    /// Shard channel -> subscribed client ids (SSUBSCRIBE; one node holds
    /// every slot until cluster mode exists).
    shards: HashMap<Bytes, Vec<u64>>,
    clients: HashMap<u64, Subscriber>,
}

impl Registry {
    fn map(&mut self, kind: Kind) -> &mut HashMap<Bytes, Vec<u64>> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shards,
        }
    }
}

/// Where frames for the publishing client itself go: straight into its
/// reply buffer, so they are ordered with its replies as in Redis 7.0.
pub struct Sink<'a> {
    pub client_id: u64,
    pub resp3: bool,
    pub buf: &'a mut Vec<u8>,
}

/// The client whose command produced keyspace notifications.
pub struct Own<'a> {
    pub client_id: u64,
    pub resp3: bool,
    /// Its reply buffer.
    pub buf: &'a mut Vec<u8>,
    /// Where the command's reply starts in `buf`.
    pub reply_start: usize,
    /// Where the frames it gets were placed (`Out::pushes`).
    pub pushes: &'a mut Vec<std::ops::Range<usize>>,
}

/// The server's Pub/Sub registry (`Shared::pubsub`).
#[derive(Debug)]
pub struct PubSub {
    reg: Mutex<Registry>,
    limits: Limits,
    /// `client-output-buffer-limit normal` (Redis's default: none), applied
    /// to a batch's replies (`reply_over_limit`).
    normal: Limits,
}

impl Default for PubSub {
    fn default() -> Self {
        PubSub {
            reg: Mutex::default(),
            limits: Limits::default(),
            normal: Limits {
                hard: AtomicU64::new(0),
                soft: AtomicU64::new(0),
                soft_seconds: AtomicU64::new(0),
            },
        }
    }
}

/// Which subscription list a command works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    /// Shard channels (SSUBSCRIBE, SPUBLISH).
    Shard,
}

impl PubSub {
    /// `client-output-buffer-limit`'s pubsub class (bytes, bytes, seconds).
    pub fn set_limits(&self, hard: u64, soft: u64, soft_seconds: u64) {
        self.limits.hard.store(hard, Ordering::Relaxed);
        self.limits.soft.store(soft, Ordering::Relaxed);
        self.limits
            .soft_seconds
            .store(soft_seconds, Ordering::Relaxed);
    }

    /// `client-output-buffer-limit`'s normal class (bytes, bytes, seconds).
    pub fn set_normal_limits(&self, hard: u64, soft: u64, soft_seconds: u64) {
        self.normal.hard.store(hard, Ordering::Relaxed);
        self.normal.soft.store(soft, Ordering::Relaxed);
        self.normal
            .soft_seconds
            .store(soft_seconds, Ordering::Relaxed);
    }

    /// The output buffer limit of a normal client (Redis's
    /// `checkClientOutputBufferLimits`) for a batch's `len` reply bytes:
    /// over the hard limit, or over the soft limit at two checks at least
    /// the soft seconds apart with no check under it in between. Logs and
    /// returns true when the client must be closed (its replies dropped).
    /// Subscribers are the pubsub class, limited by their queues.
    pub fn reply_over_limit(&self, client: &mut Client, len: usize) -> bool {
        let l = &self.normal;
        let (hard, soft) = (
            l.hard.load(Ordering::Relaxed),
            l.soft.load(Ordering::Relaxed),
        );
        if (hard == 0 && soft == 0) || client.pubsub.active() {
            return false;
        }
        let len = len as u64;
        let mut over = hard > 0 && len > hard;
        if soft > 0 && len > soft {
            match client.obuf_soft_since {
                None => client.obuf_soft_since = Some(std::time::Instant::now()),
                Some(t) => over |= t.elapsed().as_secs() > l.soft_seconds.load(Ordering::Relaxed),
            }
        } else {
            client.obuf_soft_since = None;
        }
        if over {
            tracing::warn!(
                "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                client.id,
                client.handle.addr
            );
        }
        over
    }

    /// Adds a subscription; false when the client already had it.
    pub fn subscribe(&self, client: &mut ClientPubSub, id: u64, kind: Kind, name: &Bytes) -> bool {
        let mut reg = self.reg.lock();
        let reg = &mut *reg;
        let sub = reg.clients.entry(id).or_insert_with(|| Subscriber {
            mailbox: client.mailbox.clone(),
            channels: OrderedSet::default(),
            patterns: OrderedSet::default(),
            shards: OrderedSet::default(),
        });
        if !sub.set(kind).insert(name.clone()) {
            return false;
        }
        client.channels = sub.channels.len();
        client.patterns = sub.patterns.len();
        client.shards = sub.shards.len();
        reg.map(kind).entry(name.clone()).or_default().push(id);
        Self::update_meta(&client.mailbox.handle, client);
        true
    }

    /// Removes a subscription; false when the client did not have it.
    pub fn unsubscribe(&self, client: &mut ClientPubSub, id: u64, kind: Kind, name: &[u8]) -> bool {
        let mut reg = self.reg.lock();
        let removed = Self::remove_locked(&mut reg, id, kind, name);
        if let Some(sub) = reg.clients.get(&id) {
            client.channels = sub.channels.len();
            client.patterns = sub.patterns.len();
            client.shards = sub.shards.len();
            if sub.total() == 0 {
                reg.clients.remove(&id);
            }
        }
        Self::update_meta(&client.mailbox.handle, client);
        removed
    }

    fn remove_locked(reg: &mut Registry, id: u64, kind: Kind, name: &[u8]) -> bool {
        let Some(sub) = reg.clients.get_mut(&id) else {
            return false;
        };
        if !sub.set(kind).remove(name) {
            return false;
        }
        let map = reg.map(kind);
        if let Some(ids) = map.get_mut(name) {
            ids.retain(|c| *c != id);
            if ids.is_empty() {
                map.remove(name);
            }
        }
        true
    }

    /// The client's channels or patterns, in subscription order.
    pub fn subscriptions(&self, id: u64, kind: Kind) -> Vec<Bytes> {
        let mut reg = self.reg.lock();
        match reg.clients.get_mut(&id) {
            None => Vec::new(),
            Some(s) => s.set(kind).names(),
        }
    }

    /// Drops every subscription of a client without confirmations (RESET,
    /// connection close).
    pub fn remove_client(&self, client: &mut ClientPubSub, id: u64) {
        let mut reg = self.reg.lock();
        if let Some(sub) = reg.clients.remove(&id) {
            for (kind, names) in [
                (Kind::Channel, sub.channels.names()),
                (Kind::Pattern, sub.patterns.names()),
                (Kind::Shard, sub.shards.names()),
            ] {
                let map = reg.map(kind);
                for name in names {
                    if let Some(ids) = map.get_mut(&name) {
                        ids.retain(|c| *c != id);
                        if ids.is_empty() {
                            map.remove(&name);
                        }
                    }
                }
            }
        }
        client.channels = 0;
        client.patterns = 0;
        client.shards = 0;
        Self::update_meta(&client.mailbox.handle, client);
    }

    fn update_meta(handle: &ClientHandle, client: &ClientPubSub) {
        let mut m = handle.meta.lock();
        m.sub = client.channels;
        m.psub = client.patterns;
        m.ssub = client.shards;
    }

    /// Publishes `message` on `channel` (Redis's `pubsubPublishMessage`):
    /// first to the channel's subscribers, then to every client of every
    /// matching pattern (a client subscribed both ways gets it twice).
    /// Returns the number of deliveries, PUBLISH's reply.
    pub fn publish(&self, channel: &[u8], message: &[u8], mut sink: Option<Sink<'_>>) -> usize {
        let reg = self.reg.lock();
        if reg.channels.is_empty() && reg.patterns.is_empty() {
            return 0;
        }
        let mut receivers = 0;
        if let Some(ids) = reg.channels.get(channel) {
            let mut frames = Frames::default();
            for id in ids {
                let Some(sub) = reg.clients.get(id) else {
                    continue;
                };
                receivers += 1;
                deliver(
                    &mut sink,
                    *id,
                    &sub.mailbox,
                    &self.limits,
                    &mut frames,
                    |r| encode(r, &[b"message", channel, message]),
                );
            }
        }
        for (pattern, ids) in &reg.patterns {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            let mut frames = Frames::default();
            for id in ids {
                let Some(sub) = reg.clients.get(id) else {
                    continue;
                };
                receivers += 1;
                deliver(
                    &mut sink,
                    *id,
                    &sub.mailbox,
                    &self.limits,
                    &mut frames,
                    |r| encode(r, &[b"pmessage", pattern, channel, message]),
                );
            }
        }
        receivers
    }

    /// Publishes `message` on the shard channel `channel` (SPUBLISH: no
    /// patterns). Returns the number of receivers.
    /// A PUBLISH / PUBLISHSHARD received on the cluster bus, delivered to
    /// this node's subscribers.
    pub fn publish_from_cluster(&self, sharded: bool, channel: &[u8], message: &[u8]) {
        if sharded {
            self.spublish(channel, message, None);
        } else {
            self.publish(channel, message, None);
        }
    }

    pub fn spublish(&self, channel: &[u8], message: &[u8], mut sink: Option<Sink<'_>>) -> usize {
        let reg = self.reg.lock();
        let Some(ids) = reg.shards.get(channel) else {
            return 0;
        };
        let mut frames = Frames::default();
        let mut receivers = 0;
        for id in ids {
            let Some(sub) = reg.clients.get(id) else {
                continue;
            };
            receivers += 1;
            deliver(
                &mut sink,
                *id,
                &sub.mailbox,
                &self.limits,
                &mut frames,
                |r| encode(r, &[b"smessage", channel, message]),
            );
        }
        receivers
    }

    /// Publishes keyspace notifications (Redis's `notifyKeyspaceEvent`):
    /// `__keyspace@<db>__:<key>` with the event, then
    /// `__keyevent@<db>__:<event>` with the key. Frames for the client
    /// whose command caused them (`me`) go into its reply buffer: at the
    /// notification's `reply_at` when the handler recorded one, else where
    /// the previous one went (the command's reply start for the first).
    pub fn publish_notifications(&self, notes: Vec<Notification>, me: Option<Own<'_>>) {
        if notes.is_empty() || self.is_empty() {
            return;
        }
        let Some(me) = me else {
            for n in &notes {
                self.publish_notification(n, None);
            }
            return;
        };
        let mut own: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut at = me.reply_start;
        for n in &notes {
            at = n.reply_at.unwrap_or(at).max(at);
            let mut buf = Vec::new();
            self.publish_notification(
                n,
                Some(Sink {
                    client_id: me.client_id,
                    resp3: me.resp3,
                    buf: &mut buf,
                }),
            );
            if !buf.is_empty() {
                own.push((at, buf));
            }
        }
        // Insert from the last position backwards so earlier positions
        // stay valid and equal positions keep their order.
        let placed: Vec<(usize, usize)> = own
            .iter()
            .scan(0usize, |shift, (at, f)| {
                let start = at.min(&me.buf.len()) + *shift;
                *shift += f.len();
                Some((start, f.len()))
            })
            .collect();
        for (at, frames) in own.into_iter().rev() {
            let at = at.min(me.buf.len());
            me.buf.splice(at..at, frames);
        }
        me.pushes.extend(placed.into_iter().map(|(s, n)| s..s + n));
    }

    fn publish_notification(&self, n: &Notification, mut sink: Option<Sink<'_>>) {
        if n.keyspace {
            let mut ch = format!("__keyspace@{}__:", n.db).into_bytes();
            ch.extend_from_slice(&n.key);
            self.publish(&ch, n.event.as_bytes(), sink.as_mut().map(Sink::reborrow));
        }
        if n.keyevent {
            let ch = format!("__keyevent@{}__:{}", n.db, n.event);
            self.publish(ch.as_bytes(), &n.key, sink.as_mut().map(Sink::reborrow));
        }
    }

    /// True when nobody is subscribed to anything.
    pub fn is_empty(&self) -> bool {
        let reg = self.reg.lock();
        reg.channels.is_empty() && reg.patterns.is_empty()
    }

    /// Channels with at least one subscriber matching `pattern` (all when
    /// None): PUBSUB CHANNELS.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let reg = self.reg.lock();
        reg.channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of a channel, patterns not counted: PUBSUB NUMSUB.
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.reg.lock().channels.get(channel).map_or(0, Vec::len)
    }

    /// Shard channels with at least one subscriber matching `pattern` (all
    /// when None): PUBSUB SHARDCHANNELS.
    pub fn shard_channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let reg = self.reg.lock();
        reg.shards
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of a shard channel: PUBSUB SHARDNUMSUB.
    pub fn shard_numsub(&self, channel: &[u8]) -> usize {
        self.reg.lock().shards.get(channel).map_or(0, Vec::len)
    }

    /// Shard channels with subscribers (INFO `pubsubshard_channels`).
    pub fn shard_channel_count(&self) -> usize {
        self.reg.lock().shards.len()
    }

    /// Channels with subscribers (INFO `pubsub_channels`).
    pub fn channel_count(&self) -> usize {
        self.reg.lock().channels.len()
    }

    /// Distinct subscribed patterns (PUBSUB NUMPAT, INFO `pubsub_patterns`).
    pub fn pattern_count(&self) -> usize {
        self.reg.lock().patterns.len()
    }
}

impl Sink<'_> {
    fn reborrow(&mut self) -> Sink<'_> {
        Sink {
            client_id: self.client_id,
            resp3: self.resp3,
            buf: self.buf,
        }
    }
}

/// One message's encodings, built on first use for each protocol.
#[derive(Default)]
struct Frames {
    resp2: Option<Bytes>,
    resp3: Option<Bytes>,
}

fn deliver(
    sink: &mut Option<Sink<'_>>,
    id: u64,
    mailbox: &Mailbox,
    limits: &Limits,
    frames: &mut Frames,
    make: impl Fn(bool) -> Vec<u8>,
) {
    let (resp3, own) = match sink {
        Some(s) if s.client_id == id => (s.resp3, true),
        _ => (mailbox.resp3(), false),
    };
    let slot = if resp3 {
        &mut frames.resp3
    } else {
        &mut frames.resp2
    };
    let frame = slot.get_or_insert_with(|| Bytes::from(make(resp3))).clone();
    match sink {
        Some(s) if own => s.buf.extend_from_slice(&frame),
        _ => mailbox.send(frame, limits),
    }
}

/// A push of bulk strings: `>n` in RESP3, `*n` in RESP2.
pub fn encode(resp3: bool, parts: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + parts.iter().map(|p| p.len() + 16).sum::<usize>());
    v.push(if resp3 { b'>' } else { b'*' });
    v.extend_from_slice(parts.len().to_string().as_bytes());
    v.extend_from_slice(b"\r\n");
    for p in parts {
        v.push(b'$');
        v.extend_from_slice(p.len().to_string().as_bytes());
        v.extend_from_slice(b"\r\n");
        v.extend_from_slice(p);
        v.extend_from_slice(b"\r\n");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(id: u64) -> Arc<ClientHandle> {
        let a: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
        Arc::new(ClientHandle::new(id, a, a, -1))
    }

    #[test]
    fn channel_then_pattern_delivery_and_counts() {
        let ps = PubSub::default();
        let mut a = ClientPubSub::new(handle(1));
        let mut b = ClientPubSub::new(handle(2));
        assert!(ps.subscribe(&mut a, 1, Kind::Channel, &Bytes::from("news")));
        assert!(!ps.subscribe(&mut a, 1, Kind::Channel, &Bytes::from("news")));
        assert!(ps.subscribe(&mut a, 1, Kind::Pattern, &Bytes::from("n*")));
        assert!(ps.subscribe(&mut b, 2, Kind::Pattern, &Bytes::from("n*")));
        assert_eq!((a.channels, a.patterns), (1, 1));
        assert_eq!(ps.publish(b"news", b"hi", None), 3);
        assert_eq!(ps.publish(b"other", b"hi", None), 0);
        let mut buf = Vec::new();
        a.drain_into(&mut buf);
        assert_eq!(
            buf,
            b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n"
        );
        assert_eq!(a.queued_bytes(), 0);
        assert_eq!((ps.channel_count(), ps.pattern_count()), (1, 1));
        ps.remove_client(&mut a, 1);
        assert_eq!(ps.publish(b"news", b"hi", None), 1);
        assert!(ps.unsubscribe(&mut b, 2, Kind::Pattern, b"n*"));
        assert!(ps.is_empty());
    }

    #[test]
    fn hard_limit_kills_the_subscriber() {
        let ps = PubSub::default();
        let h = handle(7);
        let mut a = ClientPubSub::new(h.clone());
        ps.subscribe(&mut a, 7, Kind::Channel, &Bytes::from("c"));
        let big = vec![b'x'; 1 << 20];
        for _ in 0..40 {
            ps.publish(b"c", &big, None);
        }
        assert!(h.is_killed());
        assert!(a.queued_bytes() as u64 <= HARD_LIMIT_BYTES + (2 << 20));
    }
}
