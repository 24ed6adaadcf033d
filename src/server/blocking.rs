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
//! 4. **Serving.** After every command ([`after_command`] → [`serve_ready`],
//!    Redis's `handleClientsBlockedOnKeys`), for each ready key and each of
//!    its waiters in FIFO order whose wanted type the key now holds, the
//!    waiter's command is re-run through the command table, under the same
//!    lock, on behalf of the blocked client. If it blocks again (the
//!    value was taken by an earlier waiter) the waiter keeps its place;
//!    otherwise it is removed from all its keys and its reply is queued.
//!    The re-run's effects land in the same WAL unit as the command that
//!    made the key ready. A served command can make other keys ready
//!    (BLMOVE pushes): the loop runs until no key is ready.
//! 5. **Delivery.** The queued replies ([`Wake`]) are sent through their
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
//! The handler side (step 1: [`block`], [`parse_timeout`], [`denied`])
//! is `commands::blocking`, which also says how to add a blocking command.
//!
//! [`block`]: crate::commands::blocking::block
//! [`parse_timeout`]: crate::commands::blocking::parse_timeout
//! [`denied`]: crate::commands::blocking::denied

use super::{Client, Shared};
use crate::commands::blocking::null_reply;
use crate::commands::{table, Ctx};
use crate::db::blocking::{Waiter, WaiterReply};
use crate::db::{now_ms, Keyspace};
use crate::protocol::Out;
use bytes::BytesMut;
use std::sync::atomic::Ordering;
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

/// Timeouts beyond this are waited for as "forever" (Redis accepts them;
/// they never fire in practice).
const DEADLINE_HORIZON_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// A blocked connection's side of its registration.
#[derive(Debug)]
pub struct Blocked {
    rx: oneshot::Receiver<WaiterReply>,
    deadline_ms: u64,
}

/// A served waiter's reply, sent once the batch is durable.
#[derive(Debug)]
pub struct Wake {
    tx: oneshot::Sender<WaiterReply>,
    reply: Vec<u8>,
}

impl Wake {
    /// Delivers the reply, or `error` instead (the batch's WAL write
    /// failed, so the effect must not be acknowledged).
    pub fn send(self, error: Option<&str>) {
        let reply = match error {
            None => self.reply,
            Some(e) => {
                let mut o = Out::new(false);
                o.error(e);
                o.buf
            }
        };
        let _ = self.tx.send(WaiterReply {
            bytes: reply,
            close: false,
        });
    }
}

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

/// Serves the waiters of every ready key (see the module comment).
pub fn serve_ready(shared: &Shared, ks: &mut Keyspace, wakes: &mut Vec<Wake>) {
    while let Some((db, key)) = ks.take_ready_key() {
        for id in ks.dbs[db].waiters_on(&key) {
            let wants = match ks.waiter(id) {
                Some(w) => w.wants,
                None => continue,
            };
            // A blocked XREADGROUP ends with an error when its key or its
            // group is gone (Redis 7.0); other waiters keep waiting.
            let gone = ks.waiter(id).and_then(|w| {
                crate::commands::stream_groups::blocked_group_gone(ks, db, &key, &w.args)
            });
            if let Some(msg) = gone {
                if let Some(w) = ks.remove_waiter(id) {
                    let mut o = Out::new(w.resp3);
                    o.error(msg);
                    wakes.push(Wake {
                        tx: w.tx,
                        reply: o.buf,
                    });
                }
                continue;
            }
            match ks.dbs[db].peek(&key) {
                None => continue,
                Some(e) if e.value.type_name() != wants => continue,
                Some(_) => {}
            }
            let Some(handle) = shared.clients.get(&id).map(|h| h.clone()) else {
                // Killed meanwhile: its task unregisters too; do it now so
                // it takes nothing.
                ks.remove_waiter(id);
                continue;
            };
            let Some(w) = ks.waiter(id) else { continue };
            let (args, resp3) = (w.args.clone(), w.resp3);
            let mut client = Client::new(handle, true);
            client.db = w.db;
            client.no_touch = w.no_touch;
            let mut out = Out::new(resp3);
            // `resolve`: a blocking subcommand (LOGPARSE TAIL FOLLOW) runs
            // its own handler.
            let Some(handler) = table()
                .resolve(&args)
                .ok()
                .and_then(|idx| table().entries[idx].cmd.handler)
            else {
                ks.remove_waiter(id);
                continue;
            };
            // The handler directly, not `commands::call`: the command was
            // counted once in the statistics when it blocked (as Redis
            // counts a blocked command once).
            let r = {
                let mut ctx = Ctx {
                    ks,
                    shared,
                    client: &mut client,
                    out: &mut out,
                    now_ms: now_ms(),
                };
                let r = handler(&mut ctx, &args);
                ctx.ks.end_command();
                r
            };
            if client.block.is_some() {
                continue;
            }
            if let Err(e) = r {
                shared.error_reply(&mut out, &e.0);
            }
            if let Some(w) = ks.remove_waiter(id) {
                wakes.push(Wake {
                    tx: w.tx,
                    reply: out.buf,
                });
            }
        }
    }
}

/// CLIENT UNBLOCK: answers the blocked client with its timeout reply or
/// with the UNBLOCKED error. False when `id` is not blocked.
pub fn unblock(ks: &mut Keyspace, id: u64, error: bool) -> bool {
    let Some(w) = ks.remove_waiter(id) else {
        return false;
    };
    let reply = if error {
        b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n".to_vec()
    } else {
        w.timeout_reply
    };
    let _ = w.tx.send(WaiterReply {
        bytes: reply,
        close: false,
    });
    true
}

/// The error Redis 7.0's `disconnectAllBlockedClients` answers.
pub const UNBLOCKED_ROLE_CHANGE: &str =
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)";

/// Redis 7.0's `disconnectAllBlockedClients` (this server becomes a
/// replica: REPLICAOF, FAILOVER's switch, a cluster role change): every
/// client blocked in BLPOP & co., XREAD / XREADGROUP BLOCK, LOGPARSE TAIL
/// FOLLOW, gets [`UNBLOCKED_ROLE_CHANGE`] and its connection is closed
/// after that reply. Clients a pause postponed are not blocked here
/// (they run their command again when the pause ends); WAIT is answered
/// the same by its own wait (`replication::primary::wait`). Run under the
/// keyspace lock. The errors count in INFO errorstats, as Redis's.
pub fn disconnect_all(shared: &Shared, ks: &mut Keyspace) {
    for id in ks.waiter_ids() {
        if let Some(w) = ks.remove_waiter(id) {
            let mut o = Out::new(w.resp3);
            shared.error_reply(&mut o, UNBLOCKED_ROLE_CHANGE.as_bytes());
            let _ = w.tx.send(WaiterReply {
                bytes: o.buf,
                close: true,
            });
        }
    }
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
