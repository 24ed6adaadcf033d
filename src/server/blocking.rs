//! Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
//! BZPOPMAX, BZMPOP, XREAD and XREADGROUP BLOCK): how a command blocks, how
//! it is served, how a blocked connection waits.
//!
//! # Design
//!
//! 1. **Blocking.** A blocking command's handler first tries its
//!    non-blocking logic. If nothing can be served it calls [`block`] with
//!    its keys, its deadline (from [`parse_timeout`]), the value type that
//!    can serve it and its timeout reply, and writes no reply. Inside
//!    EXEC ([`denied`]) it answers its null instead, as Redis does.
//! 2. **Registration.** After the command, the connection
//!    ([`after_command`], called by the per-connection loop under the
//!    keyspace lock) turns the request into a [`Waiter`] in the keyspace
//!    registry (`db::blocking`: FIFO queue per (db, key)) with the
//!    command's arguments, the client's protocol and a oneshot sender, and
//!    stops running the client's pipelined input (Redis does not read a
//!    blocked client's next commands either).
//! 3. **Readiness.** Creating a key that has waiters marks it ready
//!    (`Db::insert`); writers that add to an existing value call
//!    `Keyspace::signal_key_ready(db, key)`.
//! 4. **Serving.** After every command ([`after_command`] → `serve_ready`,
//!    Redis's `handleClientsBlockedOnKeys`), for each ready key and each of
//!    its waiters in FIFO order whose wanted type the key now holds, the
//!    waiter's command is re-run through the command table, under the same
//!    lock, on behalf of the blocked client. If it blocks again (the
//!    value was taken by an earlier waiter) the waiter keeps its place;
//!    otherwise it is removed from all its keys and its reply is queued.
//!    The re-run's effects land in the same WAL unit as the command that
//!    made the key ready. A served command can make other keys ready
//!    (BLMOVE pushes): the loop runs until no key is ready.
//! 5. **Delivery.** The queued replies (`Wake`) are sent through their
//!    oneshots only after the batch's WAL append (and the fsync under
//!    `appendfsync always`): a woken client never sees a reply whose
//!    effect is not durable.
//! 6. **Waiting.** The blocked connection task ([`wait`]) awaits its reply,
//!    its deadline, CLIENT KILL / shutdown, and its socket (a client that
//!    disconnects is unregistered at once, so it cannot swallow an
//!    element). No polling: a blocked client costs no CPU. On timeout it
//!    removes its waiter under the lock; if the waiter was already gone a
//!    reply is in flight and is used instead.
//!
//! The command side (step 1: [`block`], [`parse_timeout`], [`denied`];
//! step 4: [`serve_ready`], which re-runs handlers; CLIENT UNBLOCK and a
//! role change's `disconnect_all`) is `commands::blocking`, which also
//! says how to add a blocking command. This module is the connection's
//! side: registration after the command, and the wait.
//!
//! [`block`]: crate::commands::blocking::block
//! [`parse_timeout`]: crate::commands::blocking::parse_timeout
//! [`denied`]: crate::commands::blocking::denied

use super::{Client, Shared};
use crate::commands::blocking::{null_reply, serve_ready, Wake};
use crate::db::blocking::{Waiter, WaiterReply};
use crate::db::{now_ms, Keyspace};
use crate::node::clients::Blocked;
use bytes::BytesMut;
use std::sync::atomic::Ordering;
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

/// Timeouts beyond this are waited for as "forever" (Redis accepts them;
/// they never fire in practice).
const DEADLINE_HORIZON_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// Called by the connection after each command, under the keyspace lock:
/// registers the client if its command blocked, then serves the waiters
/// of the keys that became ready. Served replies are appended to `wakes`.
pub fn after_command(
    shared: &Shared,
    ks: &mut Keyspace,
    client: &mut Client,
    resp3: bool,
    wakes: &mut Vec<Wake>,
) {
    if let Some(req) = client.block.take() {
        let (tx, rx) = oneshot::channel();
        ks.add_waiter(Waiter {
            client_id: client.id,
            db: client.db,
            keys: req.keys,
            args: req.args,
            resp3,
            no_touch: client.no_touch,
            wants: req.wants,
            timeout_reply: null_reply(req.timeout, resp3),
            tx,
        });
        client.handle.meta.lock().blocked = true;
        client.blocked = Some(Blocked {
            rx,
            deadline_ms: req.deadline_ms,
        });
    }
    serve_ready(shared, ks, wakes);
}

/// How a wait ended.
enum Outcome {
    Reply(WaiterReply),
    Close,
}

/// The blocked connection's wait (called by the connection loop after the
/// replies before the blocking command were written). Writes the final
/// reply; false when the connection must close.
pub async fn wait<S: super::net::ClientStream>(
    shared: &Shared,
    client: &mut Client,
    stream: &mut S,
    inbuf: &mut BytesMut,
) -> bool {
    let Some(Blocked {
        mut rx,
        deadline_ms,
    }) = client.blocked.take()
    else {
        return true;
    };
    let id = client.id;
    let handle = client.handle.clone();
    let deadline = match deadline_ms {
        0 => None,
        d => {
            let left = d.saturating_sub(now_ms());
            (left < DEADLINE_HORIZON_MS)
                .then(|| tokio::time::Instant::now() + std::time::Duration::from_millis(left))
        }
    };
    let outcome = loop {
        if handle.is_killed() {
            break Outcome::Close;
        }
        tokio::select! {
            r = &mut rx => break match r {
                Ok(reply) => Outcome::Reply(reply),
                Err(_) => Outcome::Close,
            },
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {
                let w = shared.lock_ks().remove_waiter(id);
                match w {
                    Some(w) => break Outcome::Reply(WaiterReply {
                        bytes: w.timeout_reply,
                        close: false,
                    }),
                    // Served meanwhile: the reply is on its way.
                    None => break match (&mut rx).await {
                        Ok(reply) => Outcome::Reply(reply),
                        Err(_) => Outcome::Close,
                    },
                }
            }
            r = stream.read_buf(inbuf) => match r {
                Ok(0) | Err(_) => break Outcome::Close,
                Ok(n) => {
                    shared
                        .stats
                        .total_net_input_bytes
                        .fetch_add(n as u64, Ordering::Relaxed);
                    if inbuf.len() > shared.config.read().client_query_buffer_limit {
                        break Outcome::Close;
                    }
                }
            },
            _ = handle.kill_notify.notified() => break Outcome::Close,
        }
    };
    handle.meta.lock().blocked = false;
    match outcome {
        Outcome::Reply(reply) => {
            shared
                .stats
                .total_net_output_bytes
                .fetch_add(reply.bytes.len() as u64, Ordering::Relaxed);
            super::net::send(stream, &reply.bytes).await && !reply.close
        }
        Outcome::Close => {
            shared.lock_ks().remove_waiter(id);
            false
        }
    }
}
