//! CLIENT TRACKING delivery (Redis 7.0's `tracking.c`): turns what the
//! databases noted (`Keyspace::take_tracking_events`) into invalidation
//! messages through `db::tracking::Tracking`, and sends them.
//!
//! - `after_call` (`commands::tracking`, from `commands::call`, every
//!   command, nested ones included): invalidations of what the command modified go to the
//!   other clients at once, through their push queue
//!   (`ClientHandle::push`); the running client's own wait in
//!   `Tracking::pending_own` and are written after its reply by the
//!   top-level call (Redis's `trackingHandlePendingKeyInvalidations`),
//!   then the keys a read-only command read are remembered for its
//!   caller (Redis's `trackingRememberKeys` in `call`).
//! - `before_call` (`commands::tracking`; top level only): the table's size limit
//!   (`tracking-table-max-keys`) and what evictions before the command
//!   invalidated, as Redis's `processCommand`.
//! - `background` (end of a connection's batch and the cron, Redis's
//!   `beforeSleep`): changes made by no command (active expiry,
//!   evictions) and the BCAST broadcasts collected since the last pass,
//!   one message per prefix.
//!
//! Messages (`sendTrackingMessage`): a RESP3 client (or its RESP3
//! redirection target) gets `>2 invalidate <keys|null>`; a RESP2 target of
//! a redirection subscribed to anything gets a `message` on
//! `__redis__:invalidate`; anyone else nothing. A redirection to a client
//! gone marks the tracking client `broken_redirect` and tells it (RESP3)
//! with a `tracking-redir-broken` push.
//!
//! Without tracking clients every hook is one branch on
//! `Tracking::active`.

use super::{ClientHandle, Shared};
use crate::db::tracking::{self as tr, Modified, Msg};
use crate::db::Keyspace;
use crate::protocol::Out;
use bytes::Bytes;
use std::sync::Arc;

/// After a top-level request was processed (Redis's `resetClient`):
/// CLIENT CACHING lasts for one command (or one transaction), unless
/// that command was CLIENT itself.
pub fn command_processed(ks: &mut Keyspace, client_id: u64, in_multi: bool, is_client: bool) {
    if in_multi || is_client {
        return;
    }
    if let Some(c) = ks.tracking.client_mut(client_id) {
        c.flags &= !tr::CACHING;
    }
}

/// Changes made outside commands and the BCAST broadcasts (Redis's
/// `beforeSleep`). Call with the keyspace lock held.
pub fn background(shared: &Shared, ks: &mut Keyspace) {
    if !ks.tracking.active() {
        return;
    }
    process(shared, ks, 0);
    if ks.tracking.has_broadcasts() {
        for (id, msg) in ks.tracking.take_broadcasts() {
            send(shared, ks, id, &msg, None);
        }
    }
}

/// The cron's share (Redis's `serverCron`): the table's size limit.
pub fn cron(shared: &Shared, ks: &mut Keyspace) {
    if ks.tracking.active() {
        limit_used_slots(shared, ks);
    }
}

/// Redis's `trackingLimitUsedSlots`.
pub fn limit_used_slots(shared: &Shared, ks: &mut Keyspace) {
    let victims = ks.tracking.over_limit_victims();
    if victims.is_empty() {
        return;
    }
    let mut targets = Vec::new();
    for key in victims {
        // Redis calls `trackingInvalidateKey(NULL, key, 0)`: no BCAST
        // note, messages sent at once whoever runs.
        ks.tracking.invalidate_only_table(&key, &mut targets);
        for id in targets.drain(..) {
            send(shared, ks, id, &Msg::Key(key.clone()), None);
        }
    }
}

/// Invalidates what the databases noted since the last call.
pub fn process(shared: &Shared, ks: &mut Keyspace, current: u64) {
    if !ks.has_tracking_events() {
        return;
    }
    let mut mods: Vec<Modified> = Vec::new();
    let flushed = ks.take_tracking_events(&mut mods);
    let mut targets = Vec::new();
    for m in mods {
        let modifier = if m.by_client { current } else { 0 };
        ks.tracking
            .invalidate(&m.key, modifier, current, &mut targets);
        for id in targets.drain(..) {
            send(shared, ks, id, &Msg::Key(m.key.clone()), None);
        }
    }
    if flushed {
        for id in ks.tracking.flush(current) {
            send(shared, ks, id, &Msg::Flush, None);
        }
    }
}

/// Redis's `sendTrackingMessage` to tracking client `id`; `own` is the
/// running client's reply buffer (frames for it go there).
pub fn send(shared: &Shared, ks: &mut Keyspace, id: u64, msg: &Msg, own: Option<(u64, &mut Out)>) {
    let Some(c) = ks.tracking.client(id) else {
        return;
    };
    let redirect = c.redirect;
    let Some(h) = handle(shared, id) else {
        return;
    };
    let tracker_resp3 = h.meta.lock().resp == 3;
    let (target, redirected) = if redirect != 0 {
        match handle(shared, redirect) {
            Some(r) => (r, true),
            None => {
                if let Some(c) = ks.tracking.client_mut(id) {
                    c.flags |= tr::BROKEN_REDIR;
                    show(&h, c);
                }
                if tracker_resp3 {
                    let mut f = b">2\r\n$21\r\ntracking-redir-broken\r\n:".to_vec();
                    f.extend_from_slice(redirect.to_string().as_bytes());
                    f.extend_from_slice(b"\r\n");
                    deliver(&h, f, own);
                }
                return;
            }
        }
    } else {
        (h, false)
    };
    let (resp3, subscribed) = {
        let m = target.meta.lock();
        (m.resp == 3, m.sub + m.psub + m.ssub > 0)
    };
    let mut f = if resp3 {
        b">2\r\n$10\r\ninvalidate\r\n".to_vec()
    } else if redirected && subscribed {
        b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n".to_vec()
    } else {
        // RESP2 without a redirection: nothing can carry the message.
        return;
    };
    match msg {
        Msg::Key(k) => {
            f.extend_from_slice(format!("*1\r\n${}\r\n", k.len()).as_bytes());
            f.extend_from_slice(k);
            f.extend_from_slice(b"\r\n");
        }
        // The tracking client's null, even when redirected (Redis's
        // `shared.null[c->resp]`).
        Msg::Flush => f.extend_from_slice(if tracker_resp3 { b"_\r\n" } else { b"$-1\r\n" }),
        Msg::Proto(p) => f.extend_from_slice(p),
    }
    deliver(&target, f, own);
}

fn handle(shared: &Shared, id: u64) -> Option<Arc<ClientHandle>> {
    shared.clients.get(&id).map(|h| h.value().clone())
}

fn deliver(target: &ClientHandle, frame: Vec<u8>, own: Option<(u64, &mut Out)>) {
    match own {
        Some((id, out)) if id == target.id => {
            let start = out.buf.len();
            out.buf.extend_from_slice(&frame);
            out.pushes.push(start..out.buf.len());
        }
        _ => target.push(Bytes::from(frame)),
    }
}

/// Updates what CLIENT LIST shows of a client's tracking (flags `t`, `R`,
/// `B`, `redir`).
pub fn show(h: &ClientHandle, c: &tr::ClientTracking) {
    let letters = match (c.flags & tr::BROKEN_REDIR != 0, c.flags & tr::BCAST != 0) {
        (false, false) => "t",
        (true, false) => "tR",
        (false, true) => "tB",
        (true, true) => "tRB",
    };
    *h.tracking.lock() = (letters, c.redirect as i64);
}

/// Turns tracking off for a client (CLIENT TRACKING OFF, RESET, the
/// connection's end).
pub fn disable(ks: &mut Keyspace, h: &ClientHandle) {
    ks.tracking.disable(h.id);
    ks.sync_tracking();
    *h.tracking.lock() = ("", -1);
}

/// True while the client has tracking on (from CLIENT LIST's view, no
/// keyspace lock needed).
pub fn is_on(h: &ClientHandle) -> bool {
    !h.tracking.lock().0.is_empty()
}
