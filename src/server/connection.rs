//! One client connection: read, decode every complete request in the
//! buffer, execute them under one keyspace lock, write all replies at once.

use super::blocking::{self, Wake};
use super::durability::{Misconf, Ticket};
use super::net::{self, ClientStream, PeerAddr};
use super::{off_worker, Client, ClientHandle, PendingOp, ReplyMode, Shared};
use crate::commands::logingest::{Applied, IngestJob};
use crate::commands::{self, flags, table, CmdError, Ctx};
use crate::db::evict::EvictResult;
use crate::db::expire::{active_expire_cycle, CycleKind};
use crate::db::{now_ms, Keyspace};
use crate::protocol::{Out, ParseLimits, Parsed};
use bytes::{Bytes, BytesMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Initial read buffer; grows for large requests.
const READ_BUF_BYTES: usize = 16 * 1024;

/// Replies to a connection we will not serve, then closes it.
pub(super) async fn refuse<S: ClientStream>(mut stream: S, msg: &str) {
    let _ = net::send(&mut stream, format!("-{msg}\r\n").as_bytes()).await;
}

/// Serves one client until it quits, is killed or the server stops. `fd`
/// is the socket's descriptor (CLIENT LIST `fd`).
pub(super) async fn serve<S: ClientStream>(
    shared: Arc<Shared>,
    mut stream: S,
    addr: PeerAddr,
    laddr: PeerAddr,
    fd: i32,
) {
    let id = shared.next_client_id.fetch_add(1, Ordering::Relaxed);
    let handle = Arc::new(ClientHandle::new(id, addr, laddr, fd));
    shared.clients.insert(id, handle.clone());
    // Redis's `createClient`: the default user, authenticated when it is
    // on and nopass.
    let acl_version = shared.acl_version.load(Ordering::SeqCst);
    let user = shared.acl.read().default_user();
    let authenticated = user.enabled && user.nopass;
    let mut client = Client::new(handle.clone(), authenticated);
    client.user = Some(user);
    client.acl_version = acl_version;
    client.chunked_ingest = true;
    let mut inbuf = BytesMut::with_capacity(READ_BUF_BYTES);
    let mut out = Out::new(false);
    // True when the buffer may hold requests not yet run (after a SAVE
    // paused the batch): run them before reading more.
    let mut resume = false;
    // Registered once, not per read (CLIENT KILL wakes every waiter).
    let killed = handle.kill_notify.notified();
    tokio::pin!(killed);
    loop {
        if handle.is_killed() {
            break;
        }
        if resume {
            resume = false;
            if !run_batch(
                &shared,
                &mut client,
                &mut stream,
                &mut inbuf,
                &mut out,
                &mut resume,
            )
            .await
            {
                break;
            }
            continue;
        }
        // Subscribers are exempt from `timeout`, as in Redis.
        let timeout_s = if client.pubsub.active() {
            0
        } else {
            shared.config.read().timeout_s
        };
        // Room for a large read: a big request (an INGEST of megabytes)
        // arrives in few reads and the buffer grows geometrically, not by
        // the few bytes `read_buf` would reserve when it is full.
        let spare = inbuf.capacity() - inbuf.len();
        if spare < READ_BUF_BYTES {
            inbuf.reserve(READ_BUF_BYTES.max(inbuf.len() / 2));
        }
        let read = async {
            if timeout_s > 0 {
                match tokio::time::timeout(
                    std::time::Duration::from_secs(timeout_s),
                    stream.read_buf(&mut inbuf),
                )
                .await
                {
                    Ok(r) => r,
                    Err(_) => Ok(0),
                }
            } else {
                stream.read_buf(&mut inbuf).await
            }
        };
        // MONITOR lines and tracking invalidations come through the same
        // queue.
        let subscribed =
            client.pubsub.active() || client.monitor || client.handle.receives_pushes();
        let n = tokio::select! {
            biased;
            r = read => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
            _ = &mut killed => break,
            // Messages can only arrive for a subscribed client; the batch
            // drains any left from before an UNSUBSCRIBE.
            frames = client.pubsub.next_frames(), if subscribed => {
                if !super::pubsub::write_frames(&shared, &client, &mut stream, frames).await {
                    break;
                }
                continue;
            }
        };
        shared
            .stats
            .total_net_input_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
        shared.observe.reads.fetch_add(1, Ordering::Relaxed);
        let qlimit = shared.config.read().client_query_buffer_limit;
        if inbuf.len() > qlimit {
            tracing::warn!("closing client {id} that reached max query buffer length");
            break;
        }
        if !run_batch(
            &shared,
            &mut client,
            &mut stream,
            &mut inbuf,
            &mut out,
            &mut resume,
        )
        .await
        {
            break;
        }
    }
    if !client.watched.is_empty() {
        let watched = std::mem::take(&mut client.watched);
        shared.lock_ks().unwatch_all(id, &watched);
    }
    if client.pubsub.active() {
        shared.pubsub.remove_client(&mut client.pubsub, id);
    }
    if client.monitor {
        shared.observe.remove_monitor(id);
    }
    if client.blocked.take().is_some() {
        shared.lock_ks().remove_waiter(id);
    }
    if super::tracking::is_on(&client.handle) {
        super::tracking::disable(&mut shared.lock_ks(), &client.handle);
    }
    shared.clients.remove(&id);
}

/// Runs what is buffered, performs a pending SAVE, syncs under `always`,
/// writes the replies in one call. Returns false when the connection must
/// close.
async fn run_batch<S: ClientStream>(
    shared: &Arc<Shared>,
    client: &mut Client,
    stream: &mut S,
    inbuf: &mut BytesMut,
    out: &mut Out,
    resume: &mut bool,
) -> bool {
    let capacity_before = out.buf.capacity();
    {
        let mut batch = process_input(shared, client, inbuf, out);
        commit(shared, &mut batch, out).await;
    }
    if let Some(op) = client.pending.take() {
        match op {
            PendingOp::Save => {
                let sh = shared.clone();
                let r = tokio::task::spawn_blocking(move || sh.rewrite_now())
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                match r {
                    Ok(()) => out.ok(),
                    Err(e) => {
                        tracing::warn!("SAVE failed: {e}");
                        out.error("ERR");
                    }
                }
            }
            PendingOp::Reload { save, flush, merge } => {
                let sh = shared.clone();
                let r = tokio::task::spawn_blocking(move || sh.debug_reload(save, flush, merge))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
                match r {
                    Ok(()) => out.ok(),
                    Err(e) => {
                        tracing::warn!("DEBUG RELOAD failed: {e}");
                        out.error("ERR Error trying to load the RDB dump");
                    }
                }
            }
            PendingOp::Ingest(job) => {
                if !run_ingest(shared, client, stream, inbuf, out, job).await {
                    return false;
                }
            }
            PendingOp::Migrate(job) => run_migrate(shared, client, out, job).await,
        }
        *resume = !inbuf.is_empty();
    }
    // Errors written outside a command (MISCONF replacing replies).
    shared.count_errors(out);
    if !out.buf.is_empty() {
        // `client-output-buffer-limit normal`: the client is closed, its
        // replies dropped, as Redis does.
        if shared.pubsub.reply_over_limit(client, out.buf.len()) {
            return false;
        }
        shared
            .stats
            .total_net_output_bytes
            .fetch_add(out.buf.len() as u64, Ordering::Relaxed);
        shared.observe.writes.fetch_add(1, Ordering::Relaxed);
        if !net::send(stream, &out.buf).await {
            return false;
        }
        if out.buf.capacity() > capacity_before {
            shared
                .observe
                .reply_buffer_expands
                .fetch_add(1, Ordering::Relaxed);
        }
        if out.buf.capacity() > 1 << 20 {
            out.buf = Vec::with_capacity(256);
            shared
                .observe
                .reply_buffer_shrinks
                .fetch_add(1, Ordering::Relaxed);
        } else {
            out.buf.clear();
        }
    }
    if client.postponed.is_some() && !client.close_after_reply {
        // CLIENT PAUSE postponed a command: wait for the pause to change,
        // then run it again (it may wait again) and the rest of the input.
        let killed = client.handle.kill_notify.notified();
        tokio::pin!(killed);
        killed.as_mut().enable();
        if client.handle.is_killed() {
            return false;
        }
        tokio::select! {
            _ = shared.pause.changed() => {}
            _ = killed => return false,
        }
        *resume = true;
        return true;
    }
    if client.blocked.is_some() && !client.close_after_reply {
        // A blocking command blocked: wait for its reply, then go on with
        // the input that arrived meanwhile.
        if !blocking::wait(shared, client, stream, inbuf).await {
            return false;
        }
        *resume = !inbuf.is_empty();
    }
    !client.close_after_reply
}

/// Settles the batch's ticket (`server::durability`: no reply leaves
/// before it), turning the replies of its writes into MISCONF when their
/// effects could not be made durable, then hands the clients it served
/// their replies.
async fn commit(shared: &Arc<Shared>, batch: &mut Batch, out: &mut Out) {
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

/// Times a chunk is mined again because the key changed meanwhile, before
/// INGEST gives up.
const INGEST_RETRIES_MAX: usize = 16;

/// Drives a top-level LOGPARSE INGEST (`commands::logingest::IngestJob`)
/// chunk by chunk. For each chunk: under the keyspace lock, look the
/// stream up and lock its miner; release the keyspace lock and parse and
/// mine the lines (nothing can encode the miner meanwhile: that takes its
/// lock); take the keyspace lock again to append the entries and log the
/// learning as one command, whose unit is committed like a batch's. Other
/// clients run between chunks. Returns false when the client was killed
/// or went away: the INGEST stops after the current chunk.
async fn run_ingest<S: ClientStream>(
    shared: &Arc<Shared>,
    client: &mut Client,
    sock: &mut S,
    inbuf: &mut BytesMut,
    out: &mut Out,
    mut job: Box<IngestJob>,
) -> bool {
    let logging = shared.persist.is_some();
    // INGEST's time in INFO commandstats: its chunks' work (the handler
    // counted the call).
    let mut busy = std::time::Duration::ZERO;
    let mut failed: Option<CmdError> = None;
    let mut retries = 0;
    let mut lines = job.next_chunk();
    // One chunk even without lines: attaching the format to a stream
    // that has none is a change too.
    let mut first = true;
    while first || !lines.is_empty() {
        let step = {
            let ks = shared.lock_ks();
            match job.prepare(&ks, client.db, now_ms()) {
                Err(e) => Err(e),
                Ok(prep) => {
                    let target = prep.stream().cloned();
                    // Another INGEST mining this stream holds its miner:
                    // wait for it without the keyspace lock.
                    let slot = target.as_ref().map(|s| s.0.ingest.try_lock());
                    match slot {
                        Some(None) => Ok(None),
                        Some(Some(mut slot)) => {
                            drop(ks);
                            let t = std::time::Instant::now();
                            let mined = off_worker(|| job.mine(Some(&mut *slot), &lines));
                            busy += t.elapsed();
                            drop(slot);
                            Ok(Some((prep, mined)))
                        }
                        None => {
                            drop(ks);
                            let t = std::time::Instant::now();
                            let mined = off_worker(|| job.mine(None, &lines));
                            busy += t.elapsed();
                            Ok(Some((prep, mined)))
                        }
                    }
                }
            }
        };
        let (prep, mined) = match step {
            Ok(Some(s)) => s,
            Ok(None) => {
                tokio::task::yield_now().await;
                continue;
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        let mined = match mined {
            Ok(m) => m,
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        let mut batch = Batch::default();
        let applied = {
            let mut ks = shared.lock_ks();
            ks.refresh_clock();
            super::pubsub::drain_before_batch(client, out);
            let now_ms = ks.cached_now_ms();
            let t = std::time::Instant::now();
            let r = {
                let mut ctx = Ctx {
                    ks: &mut ks,
                    shared,
                    client: &mut *client,
                    out: &mut *out,
                    now_ms,
                };
                job.apply(&mut ctx, prep, &mined)
            };
            busy += t.elapsed();
            blocking::after_command(shared, &mut ks, client, out.resp3, &mut batch.wakes);
            let units = if logging {
                ks.take_unit().into_iter().collect()
            } else {
                Vec::new()
            };
            end_batch(shared, &mut ks, units, &mut batch);
            r
        };
        commit(shared, &mut batch, out).await;
        if let Some(m) = batch.failed.take() {
            failed = Some(CmdError::new(m));
            break;
        }
        match applied {
            Err(e) => {
                failed = Some(e);
                break;
            }
            Ok(Applied::Changed) => {
                retries += 1;
                if retries > INGEST_RETRIES_MAX {
                    failed = Some(CmdError::new(
                        "ERR the key kept changing during LOGPARSE INGEST",
                    ));
                    break;
                }
                continue;
            }
            Ok(Applied::Done) => {
                first = false;
                retries = 0;
                lines = job.next_chunk();
            }
        }
        if lines.is_empty() {
            break;
        }
        // Between chunks: stop when the client is gone, let others run.
        if client.handle.is_killed() {
            return false;
        }
        match net::try_read_buf(sock, inbuf) {
            Ok(0) => return false,
            Ok(n) => {
                shared
                    .stats
                    .total_net_input_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
                if inbuf.len() > shared.config.read().client_query_buffer_limit {
                    tracing::warn!(
                        "closing client {} that reached max query buffer length",
                        client.id
                    );
                    return false;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
        tokio::task::yield_now().await;
    }
    // The INGEST's own work (mining and applying its chunks, not the
    // waits between them).
    shared
        .observe
        .latency
        .sample("logparse-ingest", busy.as_millis() as u64);
    let idx = client.handle.last_cmd.load(Ordering::Relaxed);
    if let Some(e) = table().entries.get(idx) {
        e.stat
            .usec
            .fetch_add(busy.as_micros() as u64, Ordering::Relaxed);
        if failed.is_some() {
            e.stat.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
    if job.reply {
        match failed {
            Some(e) => {
                shared.error_reply(out, &e.0);
            }
            None => job.reply_to(out),
        }
    }
    true
}

/// Performs a MIGRATE (`commands::migrate`): the exchange with the target
/// on a blocking thread, without the keyspace lock; then, under the lock,
/// the deletions of the keys the target acknowledged, logged and committed
/// as one command's unit, and the reply.
async fn run_migrate(
    shared: &Arc<Shared>,
    client: &mut Client,
    out: &mut Out,
    mut job: Box<crate::commands::migrate::MigrateJob>,
) {
    let transfer = std::mem::take(&mut job.transfer);
    let outcome = tokio::task::spawn_blocking(move || transfer.run())
        .await
        .unwrap_or_else(|_| crate::commands::migrate::Outcome::failed());
    let logging = shared.persist.is_some();
    let mut batch = Batch::default();
    {
        let mut ks = shared.lock_ks();
        ks.refresh_clock();
        super::pubsub::drain_before_batch(client, out);
        let now_ms = ks.cached_now_ms();
        let start = out.buf.len();
        let reply = job.reply();
        let error = {
            let mut ctx = Ctx {
                ks: &mut ks,
                shared,
                client: &mut *client,
                out: &mut *out,
                now_ms,
            };
            job.finish(&mut ctx, outcome)
        };
        if let Some(e) = error {
            // Redis counts a failed MIGRATE in its commandstats.
            let idx = client.handle.last_cmd.load(Ordering::Relaxed);
            if let Some(e) = table().entries.get(idx) {
                e.stat.failed.fetch_add(1, Ordering::Relaxed);
            }
            if reply {
                shared.error_reply(out, e.as_bytes());
            }
        }
        blocking::after_command(shared, &mut ks, client, out.resp3, &mut batch.wakes);
        let units: Vec<Vec<u8>> = if logging {
            ks.take_unit().into_iter().collect()
        } else {
            Vec::new()
        };
        if !units.is_empty() {
            batch.spans.push((start, out.buf.len()));
        }
        end_batch(shared, &mut ks, units, &mut batch);
    }
    commit(shared, &mut batch, out).await;
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
        let unit = if shared.persist.is_some() {
            ks.take_unit()
        } else {
            None
        };
        if unit.is_some() || ks.stream_write_count != stream_writes {
            self.batch.spans.push((start, out.buf.len()));
        }
        self.units.extend(unit);
    }

    /// Ends the batch under the lock (`end_batch`), then, once the caller
    /// released the lock, `LinkTicket::commit` waits for durability.
    pub(super) fn end(mut self, shared: &Shared, ks: &mut Keyspace) -> LinkTicket {
        end_batch(shared, ks, self.units, &mut self.batch);
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
struct Batch {
    /// Reply byte ranges of the commands that changed the keyspace: replaced
    /// by a MISCONF error when their units could not be made durable.
    spans: Vec<(usize, usize)>,
    /// What the replies wait for (`server::durability`), taken at the end
    /// of the batch under the keyspace lock.
    ticket: Option<Ticket>,
    /// Replies for the blocked clients this batch served.
    wakes: Vec<Wake>,
    /// The MISCONF error when the batch's effects could not be made durable.
    failed: Option<String>,
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

/// Decodes and executes every complete request in `inbuf`. The keyspace
/// lock is taken at the first command and held for the rest of the batch:
/// Redis too runs a client's whole buffered batch before serving another.
/// Each command's effects become one WAL unit; the batch's units are
/// appended in one write before the lock is released.
fn process_input(
    shared: &Shared,
    client: &mut Client,
    inbuf: &mut BytesMut,
    out: &mut Out,
) -> Batch {
    let mut batch = Batch::default();
    let mut units: Vec<Vec<u8>> = Vec::new();
    let logging = shared.persist.is_some();
    let mut guard: Option<parking_lot::MutexGuard<'_, Keyspace>> = None;
    let bulk_max = shared.config.read().proto_max_bulk_len;
    // A command CLIENT PAUSE postponed runs first, once the pause is over.
    let mut retry = client.postponed.take();
    // The argument vector, reused by every command of the batch (the
    // decoder fills it; `execute_argv` takes it only to keep it).
    let mut argv: Vec<Bytes> = Vec::new();
    while !client.close_after_reply
        && client.pending.is_none()
        && client.blocked.is_none()
        && client.postponed.is_none()
    {
        let limits = ParseLimits {
            bulk_bytes_max: bulk_max,
            authenticated: client.authenticated,
        };
        let parsed = match retry.take() {
            Some(args) => {
                argv = args;
                Ok(true)
            }
            None => match client.decoder.parse_into(inbuf, limits, &mut argv) {
                Ok(Parsed::Command { .. }) => Ok(true),
                Ok(Parsed::Empty) => continue,
                Ok(Parsed::Incomplete) => Ok(false),
                Err(e) => Err(e),
            },
        };
        match parsed {
            Ok(true) => {
                if guard.is_none() {
                    let ks = match shared.lock_unless_busy() {
                        Some(ks) => ks,
                        None => {
                            client.handle.touch();
                            // A script holds the lock past its threshold:
                            // answer without it (`server::busy`).
                            let busy_error = shared
                                .busy
                                .busy_error()
                                .unwrap_or(crate::scripting::busy::BUSY_EVAL);
                            let args = std::mem::take(&mut argv);
                            match super::busy::execute(shared, client, out, args, busy_error) {
                                super::busy::Step::Served => continue,
                                super::busy::Step::NeedsLock(a) => {
                                    argv = a;
                                    shared.lock_ks()
                                }
                            }
                        }
                    };
                    let mut ks = ks;
                    ks.refresh_clock();
                    // The client's last interaction: the batch's clock
                    // reading, not one more.
                    client.handle.touch_at(ks.clock_mark());
                    guard = Some(ks);
                    // Messages published before this batch took the lock
                    // go before its replies (see `server::pubsub`).
                    super::pubsub::drain_before_batch(client, out);
                }
                let Some(ks) = guard.as_mut() else {
                    break;
                };
                let start = out.buf.len();
                let stream_writes = ks.stream_write_count;
                execute_argv(shared, ks, client, out, &mut argv);
                // Drops the arguments (the request's buffer is released
                // with them), keeps the vector's capacity.
                argv.clear();
                blocking::after_command(shared, ks, client, out.resp3, &mut batch.wakes);
                let unit = if logging { ks.take_unit() } else { None };
                if unit.is_some() || ks.stream_write_count != stream_writes {
                    batch.spans.push((start, out.buf.len()));
                }
                units.extend(unit);
            }
            Ok(false) => break,
            Err(e) => {
                shared.error_reply(out, format!("ERR {}", e.0).as_bytes());
                client.close_after_reply = true;
                inbuf.clear();
            }
        }
    }
    if let Some(mut ks) = guard {
        end_batch(shared, &mut ks, units, &mut batch);
    }
    client.handle.qbuf.store(inbuf.len(), Ordering::Relaxed);
    batch
}

/// The end of a batch, still under the keyspace lock: a fast expiry
/// cycle, pending notifications, and the batch handed to the durability
/// stage for its ticket.
fn end_batch(shared: &Shared, ks: &mut Keyspace, units: Vec<Vec<u8>>, batch: &mut Batch) {
    let (hz, effort) = {
        let c = shared.config.read();
        (c.hz, c.active_expire_effort)
    };
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
    batch.ticket = Some(shared.durability.enqueue(ks, units));
}

/// A rejected EXEC discards the transaction and answers EXECABORT with the
/// reason (Redis's `execCommandAbort`): the rejection text without its
/// `ERR ` prefix, other codes kept.
/// MONITOR clients see the EXEC (they saw the MULTI).
fn exec_abort(
    shared: &Shared,
    client: &mut Client,
    ks: &mut Keyspace,
    e: CmdError,
    args: &[Bytes],
) -> CmdError {
    if shared.observe.has_monitors() {
        let who = client.handle.addr.to_string();
        shared.observe.feed_monitors(client.db, &who, args, &[]);
    }
    if client.multi.take().is_some() {
        client.handle.meta.lock().multi = -1;
    }
    if !client.watched.is_empty() {
        let watched = std::mem::take(&mut client.watched);
        ks.unwatch_all(client.id, &watched);
    }
    let reason = e.0.strip_prefix(b"ERR ").unwrap_or(&e.0);
    let mut msg = b"EXECABORT Transaction discarded because of: ".to_vec();
    msg.extend_from_slice(reason);
    CmdError::from_bytes(msg)
}

/// True when the client's queued MULTI block holds a write command.
fn multi_writes(client: &Client) -> bool {
    let t = table();
    client.multi.as_ref().is_some_and(|m| {
        m.queue
            .iter()
            .any(|(idx, _)| t.entries[*idx].cmd.has(flags::WRITE))
    })
}

/// True when the client's queued MULTI block holds a `denyoom` command.
fn multi_denyoom(client: &Client) -> bool {
    let t = table();
    client.multi.as_ref().is_some_and(|m| {
        m.queue
            .iter()
            .any(|(idx, _)| t.entries[*idx].cmd.has(flags::DENYOOM))
    })
}

/// A replica's refusals (Redis's `processCommand`): writes while
/// `replica-read-only yes` (READONLY), and, while the link to the primary
/// is down with `replica-serve-stale-data no`, commands not flagged `stale`
/// (MASTERDOWN). The primary's own link (the master client) is obeyed.
fn replica_reject(
    shared: &Shared,
    ks: &Keyspace,
    client: &Client,
    cmd: &commands::Command,
    top_name: &str,
    args: &[Bytes],
) -> Option<CmdError> {
    if !shared.repl.is_replica() || client.master {
        return None;
    }
    let write = if commands::scripting::is_eval(cmd) {
        commands::scripting::effective_flags(ks, cmd, args) & flags::WRITE != 0
    } else {
        cmd.has(flags::WRITE) || (top_name == "exec" && multi_writes(client))
    };
    let (read_only, serve_stale) = {
        let c = shared.config.read();
        (
            c.get("replica-read-only") != Some("no"),
            c.get("replica-serve-stale-data") != Some("no"),
        )
    };
    if write && read_only {
        return Some(CmdError::new(
            "READONLY You can't write against a read only replica.",
        ));
    }
    if !serve_stale && !shared.repl.link_up() {
        let stale_ok = if top_name == "exec" {
            let t = table();
            client.multi.as_ref().is_none_or(|m| {
                m.queue
                    .iter()
                    .all(|(idx, _)| t.entries[*idx].cmd.has(flags::STALE))
            })
        } else {
            cmd.has(flags::STALE)
        };
        if !stale_ok {
            return Some(CmdError::new(
                "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            ));
        }
    }
    None
}

/// The memory limit before a command, as Redis's `processCommand`: while
/// `maxmemory` is set every command first evicts what the policy allows
/// (`Keyspace::perform_evictions`); if memory is still over the limit,
/// `denyoom` commands (EXEC of a block holding one, and anything queued
/// inside MULTI) are refused with Redis's OOM error.
fn oom_reject(
    shared: &Shared,
    ks: &mut Keyspace,
    client: &Client,
    cmd: &commands::Command,
    top_name: &str,
    args: &[Bytes],
) -> Option<CmdError> {
    ks.pre_command_oom = false;
    // Redis's `isSafeToPerformEvictions`: not while loading, nor paused;
    // the primary's stream is always applied (a replica leaves eviction to
    // its primary, `replica-ignore-maxmemory yes`).
    if ks.evict.cfg.maxmemory == 0
        || shared.is_loading()
        || shared.pause.writes_paused()
        || client.master
    {
        return None;
    }
    let result = shared.observe.latency.timed("eviction-cycle", || {
        ks.perform_evictions(&|| shared.mem_not_counted_for_evict())
    });
    if result != EvictResult::Fail {
        return None;
    }
    ks.pre_command_oom = true;
    let reject = commands::scripting::effective_flags(ks, cmd, args) & flags::DENYOOM != 0
        || (top_name == "exec" && multi_denyoom(client))
        || (client.multi.is_some()
            && !matches!(top_name, "exec" | "discard" | "quit" | "reset")
            // Checked before the memory limit in Redis.
            && !cmd.has(flags::NO_MULTI));
    reject.then(|| CmdError::new("OOM command not allowed when used memory > 'maxmemory'."))
}

/// Re-reads the client's user after a change of the users: a deleted
/// user leaves the client unauthenticated as the default user (its
/// connection is being closed, as Redis's `ACLFreeUserAndKillClients`).
pub fn refresh_acl_user(shared: &Shared, client: &mut Client) {
    let v = shared.acl_version.load(Ordering::SeqCst);
    if v == client.acl_version {
        return;
    }
    client.acl_version = v;
    let Some(u) = &client.user else { return };
    let acl = shared.acl.read();
    match acl.users.get(&u.name) {
        Some(n) => client.user = Some(n.clone()),
        None => {
            client.user = Some(acl.default_user());
            client.authenticated = false;
        }
    }
}

/// The ACL check of a command about to run or be queued: None when the
/// client's user may run it, else the NOPERM error, logged in ACL LOG.
pub(super) fn acl_reject(
    shared: &Shared,
    client: &mut Client,
    idx: usize,
    args: &[Bytes],
) -> Option<CmdError> {
    if shared.acl_version.load(Ordering::Relaxed) != client.acl_version {
        refresh_acl_user(shared, client);
    }
    let user = client.user.as_ref()?;
    if user.unrestricted {
        return None;
    }
    let denied = user.check(idx, args, &mut client.acl_keys).err()?;
    let context = if client.multi.is_some() {
        crate::acl::LogContext::Multi
    } else {
        crate::acl::LogContext::Toplevel
    };
    let full_name = &table().entries[idx].full_name;
    commands::acl::log_denied(shared, client, denied, context, full_name, args);
    Some(denied.error(full_name))
}

/// `rename-command`: a new name becomes the command's own; an old one (or
/// a removed command) is unknown, with Redis's error.
fn apply_renames(renames: &[(Bytes, Bytes)], args: &mut [Bytes]) -> Result<(), CmdError> {
    let name = &args[0];
    if let Some((old, _)) = renames
        .iter()
        .find(|(_, new)| !new.is_empty() && new.eq_ignore_ascii_case(name))
    {
        args[0] = old.clone();
        return Ok(());
    }
    if renames
        .iter()
        .any(|(old, _)| old.eq_ignore_ascii_case(name))
    {
        return Err(commands::unknown_command(args));
    }
    Ok(())
}

/// Names of the commands that run immediately even inside MULTI.
fn runs_inside_multi(name: &str) -> bool {
    matches!(
        name,
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// Executes one command for `client`, as Redis's `processCommand`: lookup,
/// arity, authentication, MULTI queueing, then the handler.
pub fn execute(
    shared: &Shared,
    ks: &mut Keyspace,
    client: &mut Client,
    out: &mut Out,
    mut args: Vec<Bytes>,
) {
    execute_argv(shared, ks, client, out, &mut args);
}

/// `execute` on a borrowed argument vector, which the caller reuses for
/// the next command: it is taken (left empty) only when the command is
/// kept (queued in MULTI, postponed by CLIENT PAUSE), otherwise left as
/// it was (`rename-command` may have replaced the name).
pub fn execute_argv(
    shared: &Shared,
    ks: &mut Keyspace,
    client: &mut Client,
    out: &mut Out,
    args: &mut Vec<Bytes>,
) {
    let t = table();
    // Under the keyspace lock: one writer at a time.
    commands::bump(&shared.stats.total_commands_processed, 1);
    let reply_start = out.buf.len();
    let asking_cmd = shared.cluster.is_some() && args[0].eq_ignore_ascii_case(b"asking");
    // CLIENT CACHING's one-command life (see `tracking::command_processed`).
    let tracking_client_cmd = ks
        .tracking
        .active()
        .then(|| args[0].eq_ignore_ascii_case(b"client"));
    let renamed = if shared.renames.is_empty() {
        Ok(())
    } else {
        apply_renames(&shared.renames, args)
    };
    let resolved = match renamed {
        Ok(()) => t.resolve(args),
        Err(e) => Err(e),
    };
    let result = match resolved {
        Err(e) => {
            let known = t.lookup(&args[0]);
            if let Some(idx) = known {
                t.entries[idx].stat.rejected.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(m) = client.multi.as_mut() {
                m.aborted = true;
            }
            if known.is_some_and(|i| t.entries[i].cmd.name == "exec") {
                Err(exec_abort(shared, client, ks, e, args))
            } else {
                Err(e)
            }
        }
        Ok(idx) => {
            let entry = &t.entries[idx];
            let cmd = entry.cmd;
            let top_name = entry.parent.map_or(cmd.name, |p| t.entries[p].cmd.name);
            client.handle.last_cmd.store(idx, Ordering::Relaxed);
            // Redis's `authRequired`: a password is configured now (it may
            // have been cleared by CONFIG SET since the client connected).
            let auth_required =
                !client.authenticated && !shared.default_nopass.load(Ordering::Relaxed);
            let persist_failure = match &shared.persist {
                Some(_)
                    if cmd.has(flags::WRITE)
                        || commands::scripting::is_eval(cmd)
                        || top_name == "ping"
                        || (top_name == "exec" && multi_writes(client)) =>
                {
                    shared.durability.failure().filter(|_| {
                        !commands::scripting::is_eval(cmd)
                            || commands::scripting::effective_flags(ks, cmd, args) & flags::WRITE
                                != 0
                    })
                }
                _ => None,
            };
            if top_name == "debug"
                && !commands::debug::allowed(
                    shared
                        .config
                        .read()
                        .get("enable-debug-command")
                        .unwrap_or("no"),
                    client.handle.addr.is_local(),
                )
            {
                // Redis's CMD_PROTECTED check comes before authentication.
                entry.stat.rejected.fetch_add(1, Ordering::Relaxed);
                if let Some(m) = client.multi.as_mut() {
                    m.aborted = true;
                }
                Err(CmdError::new(commands::debug::NOT_ALLOWED))
            } else if auth_required && !cmd.has(flags::NO_AUTH) {
                entry.stat.rejected.fetch_add(1, Ordering::Relaxed);
                if let Some(m) = client.multi.as_mut() {
                    m.aborted = true;
                }
                let e = CmdError::new("NOAUTH Authentication required.");
                if top_name == "exec" {
                    Err(exec_abort(shared, client, ks, e, args))
                } else {
                    Err(e)
                }
            } else if let Some(e) = (!(client.multi.is_some() && cmd.has(flags::NO_MULTI)))
                .then(|| acl_reject(shared, client, idx, args))
                .flatten()
            {
                // Redis's `ACLCheckAllPerm` in `processCommand`.
                entry.stat.rejected.fetch_add(1, Ordering::Relaxed);
                if let Some(m) = client.multi.as_mut() {
                    m.aborted = true;
                }
                if top_name == "exec" {
                    Err(exec_abort(shared, client, ks, e, args))
                } else {
                    Err(e)
                }
            } else if let Some((e, discard)) = cluster_reject(shared, ks, client, idx, args) {
                // Redis's redirection in `processCommand`: EXEC discards
                // the transaction, a queued command flags it.
                entry.stat.rejected.fetch_add(1, Ordering::Relaxed);
                if discard {
                    if let Some(m) = client.multi.take() {
                        drop(m);
                        client.handle.meta.lock().multi = -1;
                    }
                    let watched = std::mem::take(&mut client.watched);
                    ks.unwatch_all(client.id, &watched);
                } else if let Some(m) = client.multi.as_mut() {
                    m.aborted = true;
                }
                Err(e)
            } else if let Some(e) = oom_reject(shared, ks, client, cmd, top_name, args) {
                entry.stat.rejected.fetch_add(1, Ordering::Relaxed);
                if let Some(m) = client.multi.as_mut() {
                    m.aborted = true;
                }
                if top_name == "exec" {
                    Err(exec_abort(shared, client, ks, e, args))
                } else {
                    Err(e)
                }
            } else if shared.is_loading() && !cmd.has(flags::LOADING) {
                entry.stat.rejected.fetch_add(1, Ordering::Relaxed);
                if let Some(m) = client.multi.as_mut() {
                    m.aborted = true;
                }
                Err(CmdError::new(
                    "LOADING Redis is loading the dataset in memory",
                ))
            } else if let Some(text) = persist_failure {
                // Redis refuses writes (and PING) once the AOF could not be
                // written, so a client never believes a write is safe.
                entry.stat.rejected.fetch_add(1, Ordering::Relaxed);
                if let Some(m) = client.multi.as_mut() {
                    m.aborted = true;
                }
                let e = CmdError::new(Misconf { reason: text }.to_string());
                if top_name == "exec" {
                    Err(exec_abort(shared, client, ks, e, args))
                } else {
                    Err(e)
                }
            } else if let Some(e) = replica_reject(shared, ks, client, cmd, top_name, args) {
                // Redis's READONLY / MASTERDOWN checks in `processCommand`
                // (MASTERDOWN comes after the Pub/Sub context check there;
                // a subscribed client's commands all carry `stale` anyway).
                entry.stat.rejected.fetch_add(1, Ordering::Relaxed);
                if let Some(m) = client.multi.as_mut() {
                    m.aborted = true;
                }
                if top_name == "exec" {
                    Err(exec_abort(shared, client, ks, e, args))
                } else {
                    Err(e)
                }
            } else if client.pubsub.active()
                && !out.resp3
                && !super::pubsub::allowed_in_subscribed_mode(top_name)
            {
                // Redis's `rejectCommand`: also aborts a MULTI being queued.
                entry.stat.rejected.fetch_add(1, Ordering::Relaxed);
                if let Some(m) = client.multi.as_mut() {
                    m.aborted = true;
                }
                Err(CmdError::new(format!(
                    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    entry.full_name
                )))
            } else if super::pause::covers(shared, ks, client, cmd, top_name, args) {
                // CLIENT PAUSE: the command waits (see `server::pause`).
                // Counted when it runs.
                shared
                    .stats
                    .total_commands_processed
                    .fetch_sub(1, Ordering::Relaxed);
                client.postponed = Some(std::mem::take(args));
                return;
            } else if client.multi.is_some() && !runs_inside_multi(top_name) {
                if cmd.has(flags::NO_MULTI) {
                    entry.stat.rejected.fetch_add(1, Ordering::Relaxed);
                    if let Some(m) = client.multi.as_mut() {
                        m.aborted = true;
                    }
                    Err(CmdError::new(
                        "ERR Command not allowed inside a transaction",
                    ))
                } else {
                    if let Some(m) = client.multi.as_mut() {
                        m.queue.push((idx, std::mem::take(args)));
                        client.handle.meta.lock().multi = m.queue.len() as i64;
                    }
                    out.simple("QUEUED");
                    Ok(())
                }
            } else {
                // The batch's time, read when it took the lock.
                let now_ms = ks.cached_now_ms();
                let mut ctx = Ctx {
                    ks,
                    shared,
                    client,
                    out,
                    now_ms,
                };
                commands::call(&mut ctx, idx, args)
            }
        }
    };
    if let Err(e) = result {
        out.error_bytes(&e.0);
    }
    // Redis's `resetClient`: ASKING lasts one command (outside MULTI).
    if client.asking && client.multi.is_none() && !asking_cmd {
        client.asking = false;
    }
    if let Some(is_client) = tracking_client_cmd {
        super::tracking::command_processed(ks, client.id, client.multi.is_some(), is_client);
    }
    // Every error reply the command wrote, its own or nested ones.
    shared.count_errors(out);
    apply_reply_mode(client, out, reply_start);
}

/// Cluster mode: the redirection or CLUSTERDOWN / CROSSSLOT / TRYAGAIN
/// error the command gets (`commands::cluster::redirect`), and whether it
/// ends the transaction (EXEC). Clients run in-process on behalf of the
/// server (no user: scripts' callers are checked themselves) obey.
fn cluster_reject(
    shared: &Shared,
    ks: &mut Keyspace,
    client: &Client,
    idx: usize,
    args: &[Bytes],
) -> Option<(CmdError, bool)> {
    let c = shared.cluster.as_ref()?;
    let cmd = table().entries[idx].cmd;
    let flags = if commands::scripting::is_eval(cmd) {
        commands::scripting::effective_flags(ks, cmd, args)
    } else {
        cmd.flags
    };
    let now = ks.cached_now_ms();
    let e = commands::cluster::redirect(c, ks, client, idx, args, flags, now)?;
    Some((e, cmd.name == "exec"))
}

/// CLIENT REPLY OFF / SKIP: drops the reply the command wrote from
/// `reply_start`.
pub(super) fn apply_reply_mode(client: &mut Client, out: &mut Out, reply_start: usize) {
    match client.reply_mode {
        ReplyMode::On => {}
        ReplyMode::Off => out.suppress_reply(reply_start),
        // CLIENT REPLY SKIP itself replies nothing; the next command is skipped.
        ReplyMode::Skip => {
            out.suppress_reply(reply_start);
            client.reply_mode = ReplyMode::SkipNext;
        }
        ReplyMode::SkipNext => {
            out.suppress_reply(reply_start);
            client.reply_mode = ReplyMode::On;
        }
    }
    out.pushes.clear();
}
