//! One client connection: read, decode every complete request in the
//! buffer, execute them under one keyspace lock, write all replies at once.

use super::batch::{commit, end_batch, Batch};
use super::blocking;
use super::dispatch::execute_argv;
use super::net::{self, ClientStream, PeerAddr};
use super::{off_worker, Client, ClientHandle, PendingOp, Shared};
use crate::commands::logingest::{Applied, IngestJob};
use crate::commands::{table, CmdError, Ctx};
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
    super::replication::primary::detach(&shared, id);
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
                    .unwrap_or_else(|e| Err(e.into()));
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
                let r = tokio::task::spawn_blocking(move || {
                    sh.debug_reload(save, flush, merge, crate::commands::lua::keyspace())
                })
                .await
                .unwrap_or_else(|e| Err(e.into()));
                match r {
                    Ok(()) => out.ok(),
                    Err(e) => {
                        tracing::warn!("DEBUG RELOAD failed: {e}");
                        out.error("ERR Error trying to load the RDB dump");
                    }
                }
            }
            PendingOp::Ingest(job) => {
                let job = job
                    .into_any()
                    .downcast::<IngestJob>()
                    .expect("PendingOp::Ingest carries a commands::logingest::IngestJob");
                if !run_ingest(shared, client, stream, inbuf, out, job).await {
                    return false;
                }
            }
            PendingOp::Migrate(job) => {
                let job = job
                    .into_any()
                    .downcast::<crate::commands::migrate::MigrateJob>()
                    .expect("PendingOp::Migrate carries a commands::migrate::MigrateJob");
                run_migrate(shared, client, out, job).await
            }
            PendingOp::Wait { num, timeout_ms } => {
                match super::replication::primary::wait(shared, num, timeout_ms, client.woff).await
                {
                    Some(n) => out.int(n),
                    None => {
                        out.error(crate::commands::blocking::UNBLOCKED_ROLE_CHANGE);
                        client.close_after_reply = true;
                    }
                }
            }
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
        // The input is still read meanwhile, so a client that leaves is
        // seen and its connection closed (Redis reads paused clients too).
        loop {
            tokio::select! {
                _ = shared.pause.changed() => break,
                _ = &mut killed => return false,
                r = stream.read_buf(inbuf) => match r {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => {
                        shared
                            .stats
                            .total_net_input_bytes
                            .fetch_add(n as u64, Ordering::Relaxed);
                        if inbuf.len() > shared.config.read().client_query_buffer_limit {
                            return false;
                        }
                    }
                },
            }
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
    let logging = shared.persist.is_some() || shared.repl.is_active();
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
            if let Some(woff) = end_batch(shared, &mut ks, units, &mut batch) {
                client.woff = woff;
            }
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
    let logging = shared.persist.is_some() || shared.repl.is_active();
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
        if let Some(woff) = end_batch(shared, &mut ks, units, &mut batch) {
            client.woff = woff;
        }
    }
    commit(shared, &mut batch, out).await;
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
    let logging = shared.persist.is_some() || shared.repl.is_active();
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
                let ks = match guard {
                    Some(ref mut ks) => ks,
                    None => {
                        let ks = match shared.lock_unless_busy() {
                            Some(ks) => ks,
                            None => {
                                client.handle.touch();
                                // A script holds the lock past its threshold:
                                // answer without it (`server::busy`).
                                let busy_error = shared
                                    .busy
                                    .busy_error()
                                    .unwrap_or(crate::node::busy::BUSY_EVAL);
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
                        // Messages published before this batch took the lock
                        // go before its replies (see `node::pubsub`).
                        super::pubsub::drain_before_batch(client, out);
                        guard.insert(ks)
                    }
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
        if let Some(woff) = end_batch(shared, &mut ks, units, &mut batch) {
            client.woff = woff;
        }
    }
    client.handle.qbuf.store(inbuf.len(), Ordering::Relaxed);
    batch
}
