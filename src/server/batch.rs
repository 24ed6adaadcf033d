//! A batch of commands between the keyspace lock and the replies: what
//! it wrote (`Batch`), its end under the lock (`end_batch`: the fast
//! expiry cycle, notifications, the durability stage's ticket) and its
//! commit after the lock (`commit`: settle the ticket, MISCONF for writes
//! that could not be made durable, replies of the blocked clients it
//! served). Connections (`connection`) and the replication link's master
//! client (`LinkBatch`, `replication::replica`) run their batches here.

use super::blocking;
use super::dispatch::execute_argv;
use super::durability::Ticket;
use super::{Client, Shared};
use crate::commands::blocking::Wake;
use crate::db::expire::{active_expire_cycle, CycleKind};
use crate::db::{now_ms, Keyspace, ReplPosition};
use crate::protocol::Out;
use bytes::Bytes;
use std::sync::Arc;

/// Settles the batch's ticket (`node::durability`: no reply leaves
/// before it), turning the replies of its writes into MISCONF when their
/// effects could not be made durable, then hands the clients it served
/// their replies.
pub(super) async fn commit(shared: &Arc<Shared>, batch: &mut Batch, out: &mut Out) {
    if let Some(ticket) = batch.ticket.take() {
        if let Err(m) = shared.durability.settle(ticket).await {
            let text = m.to_string();
            refuse_spans(out, &batch.spans, &text);
            batch.failed = Some(text);
        }
    }
    // Clients served by this batch's commands get their replies now
    // that the effects are durable (see `blocking`).
    for w in batch.wakes.drain(..) {
        w.send(batch.failed.as_deref());
    }
}

/// A batch run for an in-process client driven by the server itself
/// (the replication link's master client, `replication::replica`): its
/// commands run as a connection's batch does (`process_input`), under the
/// keyspace lock the caller holds, their effects logged and committed like
/// any client's; the replies are left in `out` for the caller to drop.
#[derive(Default)]
pub(super) struct LinkBatch {
    batch: Batch,
    units: Vec<Vec<u8>>,
}

impl LinkBatch {
    /// Runs one command (the arguments are consumed).
    pub(super) fn run(
        &mut self,
        shared: &Shared,
        ks: &mut Keyspace,
        client: &mut Client,
        out: &mut Out,
        argv: &mut Vec<Bytes>,
    ) {
        let start = out.buf.len();
        let stream_writes = ks.stream_write_count;
        execute_argv(shared, ks, client, out, argv);
        argv.clear();
        blocking::after_command(shared, ks, client, out.resp3, &mut self.batch.wakes);
        let unit = if shared.persist.is_some() || shared.repl.is_active() {
            ks.take_unit()
        } else {
            None
        };
        if unit.is_some() || ks.stream_write_count != stream_writes {
            self.batch.spans.push((start, out.buf.len()));
        }
        self.units.extend(unit);
    }

    /// Ends the batch's units with the replication position they bring
    /// the replica to, as a unit of its own (`Effect::ReplPosition`), so
    /// a restart after a crash resumes the stream exactly there (replay
    /// keeps a position only while it is the last unit: a torn batch has
    /// none). Only with a WAL.
    pub(super) fn record_position(
        &mut self,
        shared: &Shared,
        ks: &mut Keyspace,
        pos: ReplPosition,
    ) {
        if shared.persist.is_none() {
            return;
        }
        let mut unit = Vec::with_capacity(64);
        crate::db::effect::encode_unit(
            &[crate::db::effect::Effect::ReplPosition {
                replid: Bytes::copy_from_slice(pos.replid.as_bytes()),
                offset: pos.offset,
                db: pos.db,
            }],
            &mut unit,
        );
        self.units.push(unit);
        ks.repl_position = Some(pos);
    }

    /// Ends the batch under the lock (`end_batch`), then, once the caller
    /// released the lock, `LinkTicket::commit` waits for durability.
    pub(super) fn end(mut self, shared: &Shared, ks: &mut Keyspace) -> LinkTicket {
        // The master link's writes are not this server's clients'.
        let _ = end_batch(shared, ks, self.units, &mut self.batch);
        LinkTicket(self.batch)
    }
}

/// A `LinkBatch` ended under the lock, to commit without it.
pub(super) struct LinkTicket(Batch);

impl LinkTicket {
    /// Waits until the batch's effects are durable; the MISCONF text when
    /// they could not be made so.
    pub(super) async fn commit(mut self, shared: &Arc<Shared>, out: &mut Out) -> Option<String> {
        commit(shared, &mut self.0, out).await;
        self.0.failed.take()
    }
}

/// What a batch wrote to the WAL.
#[derive(Default)]
pub(super) struct Batch {
    /// Reply byte ranges of the commands that changed the keyspace: replaced
    /// by a MISCONF error when their units could not be made durable.
    pub(super) spans: Vec<(usize, usize)>,
    /// What the replies wait for (`node::durability`), taken at the end
    /// of the batch under the keyspace lock.
    pub(super) ticket: Option<Ticket>,
    /// Replies for the blocked clients this batch served.
    pub(super) wakes: Vec<Wake>,
    /// The MISCONF error when the batch's effects could not be made durable.
    pub(super) failed: Option<String>,
}

/// Replaces the replies in `spans` with the MISCONF error `text`: their
/// effects were not made durable, so they must not be acknowledged.
fn refuse_spans(out: &mut Out, spans: &[(usize, usize)], text: &str) {
    if spans.is_empty() {
        return;
    }
    let old = std::mem::take(&mut out.buf);
    let mut at = 0;
    for &(start, end) in spans {
        out.buf.extend_from_slice(&old[at..start]);
        out.error(text);
        at = end;
    }
    out.buf.extend_from_slice(&old[at..]);
}

/// The end of a batch, still under the keyspace lock: a fast expiry
/// cycle, pending notifications, and the batch handed to the durability
/// stage for its ticket. Returns, when the batch's own units were
/// propagated to replicas, the replication offset right after them
/// (Redis's `c->woff`: read under the keyspace lock, so no other batch's
/// units are in it).
#[must_use]
pub(super) fn end_batch(
    shared: &Shared,
    ks: &mut Keyspace,
    units: Vec<Vec<u8>>,
    batch: &mut Batch,
) -> Option<u64> {
    let (hz, effort) = {
        let c = shared.config.read();
        (c.hz, c.active_expire_effort)
    };
    super::dispatch::sync_expire_role(shared, ks, false);
    if !shared.pause.writes_paused() {
        let lat = &shared.observe.latency;
        lat.timed("expire-cycle", || {
            active_expire_cycle(ks, CycleKind::Fast, hz, effort, now_ms)
        });
        lat.timed("eviction-cycle", || {
            ks.continue_evictions(&|| shared.mem_not_counted_for_evict())
        });
    }
    shared.publish_pending_notifications(ks);
    let wrote = !units.is_empty();
    batch.ticket = Some(shared.durability.enqueue(ks, units));
    (wrote && shared.repl.is_active()).then(|| shared.repl.lock().offset)
}
