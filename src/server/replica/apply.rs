//! Loading the primary's RDB and applying its command stream, both as the
//! master client through the normal command path (`batch::LinkBatch`):
//! effects are logged to this server's WAL and stream logs, keyspace
//! notifications fire, blocked clients are served, and replies are dropped.

use super::LinkError;
use crate::db::ReplPosition;
use crate::node::replication::LinkCtl;
use crate::node::replication::{Backlog, NO_REPLID};
use crate::node::{Client, Shared};
use crate::protocol::{Out, ParseLimits, Parsed};
use crate::server::batch::LinkBatch;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;

/// Checks an RDB whole (format, every value decoded, the checksum) and
/// turns it into the commands that recreate its dataset: FLUSHALL, then
/// per key `SELECT db` (when it changes) and `RESTORE key expiry payload
/// ABSTTL REPLACE`, then `SELECT 0`. Nothing is returned for a file
/// that is not entirely valid, so a corrupt or truncated transfer never
/// touches the dataset.
pub fn verify_rdb(data: &[u8]) -> Result<Vec<Vec<Bytes>>, crate::rdb::file::FileError> {
    let mut cmds = vec![vec![Bytes::from_static(b"FLUSHALL")]];
    let mut db = None;
    let summary = crate::rdb::file::read_file(data, |item| {
        if db != Some(item.db) {
            db = Some(item.db);
            cmds.push(vec![
                Bytes::from_static(b"SELECT"),
                Bytes::from(item.db.to_string()),
            ]);
        }
        cmds.push(vec![
            Bytes::from_static(b"RESTORE"),
            Bytes::from(item.key.clone()),
            Bytes::from(item.expires_at_ms.to_string()),
            Bytes::from(item.dump_payload()),
            Bytes::from_static(b"ABSTTL"),
            Bytes::from_static(b"REPLACE"),
        ]);
        Ok::<(), crate::rdb::file::FileError>(())
    })?;
    // The replica's libraries are replaced by the primary's, as Redis's
    // `emptyData` (with functions) before loading the primary's RDB.
    let mut functions = vec![vec![
        Bytes::from_static(b"FUNCTION"),
        Bytes::from_static(b"FLUSH"),
    ]];
    functions.extend(summary.functions.into_iter().map(|code| {
        vec![
            Bytes::from_static(b"FUNCTION"),
            Bytes::from_static(b"LOAD"),
            Bytes::from(code),
        ]
    }));
    cmds.splice(1..1, functions);
    // redlog-only state (LOGPARSE formats, streams' ingest states) as the
    // records the stream would carry, applied after the keys (a stream's
    // ingest state attaches to its stream). Checked now, so a bad one
    // leaves the dataset untouched.
    use crate::db::effect::record;
    for (k, v) in summary.aux {
        if k == record::AUX_NAME {
            record::decode(&v).map_err(|e| crate::rdb::file::FileError::Aux(e.to_string()))?;
            cmds.push(vec![Bytes::from_static(b"PING"), Bytes::from(v)]);
        }
    }
    cmds.push(vec![
        Bytes::from_static(b"SELECT"),
        Bytes::from_static(b"0"),
    ]);
    Ok(cmds)
}

/// Replaces the dataset with the verified RDB's (`verify_rdb`), in one
/// keyspace-lock hold, and takes the primary's replication id and offset
/// with a new backlog (Redis after `readSyncBulkPayload`). If any command
/// fails the dataset is emptied again (never half loaded) and the sync is
/// retried.
pub(super) async fn load_rdb(
    shared: &Arc<Shared>,
    ctl: &Arc<LinkCtl>,
    client: &mut Client,
    cmds: Vec<Vec<Bytes>>,
    replid: &str,
    offset: u64,
) -> Result<(), LinkError> {
    let mut out = Out::new(false);
    let (ticket, failed) = {
        let mut ks = shared.lock_ks();
        if ctl.is_cancelled() {
            return Err(LinkError::Stopped);
        }
        ks.refresh_clock();
        let mut batch = LinkBatch::default();
        let mut failed = None;
        client.unpausable = true;
        for mut argv in cmds {
            let start = out.buf.len();
            batch.run(shared, &mut ks, client, &mut out, &mut argv);
            if out.buf.get(start) == Some(&b'-') {
                let reply = String::from_utf8_lossy(&out.buf[start..]);
                failed = Some(reply.trim_end().to_string());
                break;
            }
        }
        client.unpausable = false;
        if failed.is_some() {
            client.unpausable = true;
            for cmd in [&b"FLUSHALL"[..], b"FUNCTION FLUSH", b"SELECT 0"] {
                let mut argv: Vec<Bytes> = cmd
                    .split(|&b| b == b' ')
                    .map(Bytes::copy_from_slice)
                    .collect();
                batch.run(shared, &mut ks, client, &mut out, &mut argv);
            }
            client.unpausable = false;
        } else {
            let mut st = shared.repl.lock();
            st.replid = replid.to_string();
            st.replid2 = NO_REPLID.to_string();
            st.second_repl_offset = -1;
            st.offset = offset;
            st.backlog = Some(Backlog::new(st.backlog_size, offset + 1));
            drop(st);
            let pos = ReplPosition {
                replid: replid.to_string(),
                offset,
                db: client.db as u8,
            };
            batch.record_position(shared, &mut ks, pos);
        }
        (batch.end(shared, &mut ks), failed)
    };
    let misconf = ticket.commit(shared, &mut out).await;
    if let Some(e) = failed {
        return Err(LinkError::Load(e));
    }
    if let Some(e) = misconf {
        return Err(LinkError::NotLogged(e));
    }
    Ok(())
}

/// What `Applier::apply_one` works on, under the keyspace lock.
struct Step<'a> {
    ks: &'a mut crate::db::Keyspace,
    batch: &'a mut LinkBatch,
    /// Bytes processed by this run (offset `base` before them).
    counted: &'a mut BytesMut,
    acks: &'a mut Vec<u64>,
    base: u64,
}

/// Applies the primary's command stream as its master client.
pub(super) struct Applier {
    pub client: Client,
    /// Bytes read and not yet parsed (the decoder consumes from it).
    inbuf: BytesMut,
    /// The same bytes as `inbuf`: each command's raw bytes are split off
    /// it once parsed, to feed them unchanged into the backlog.
    raw: BytesMut,
    /// Parsed bytes of a MULTI block not yet executed: counted in the
    /// offset (and fed) only with its EXEC, as Redis, which discards a
    /// half-received transaction when the link drops.
    held: BytesMut,
    out: Out,
    argv: Vec<Bytes>,
    /// The raw bytes of the command CLIENT PAUSE postponed (its arguments
    /// in `client.postponed`): nothing after it is applied, and its bytes
    /// are counted, once it ran (Redis 7.0 blocks its master client so).
    postponed: Option<BytesMut>,
}

impl Applier {
    pub fn new(client: Client, leftover: BytesMut) -> Applier {
        Applier {
            client,
            raw: leftover.clone(),
            inbuf: leftover,
            held: BytesMut::new(),
            out: Out::new(false),
            argv: Vec::new(),
            postponed: None,
        }
    }

    /// True while a command waits for CLIENT PAUSE to end.
    pub fn is_postponed(&self) -> bool {
        self.postponed.is_some()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.inbuf.extend_from_slice(bytes);
        self.raw.extend_from_slice(bytes);
    }

    /// True when unparsed bytes are buffered, or a command CLIENT PAUSE
    /// postponed waits to be tried again.
    pub fn has_input(&self) -> bool {
        !self.inbuf.is_empty() || self.postponed.is_some()
    }

    /// Bytes read but not yet counted in the offset.
    pub fn pending_bytes(&self) -> usize {
        self.inbuf.len() + self.held.len() + self.postponed.as_ref().map_or(0, |b| b.len())
    }

    /// The link dropped: a half-received transaction is forgotten.
    pub fn discard(&mut self) {
        self.postponed = None;
        self.client.postponed = None;
        if self.client.multi.take().is_some() {
            self.client.handle.meta.lock().multi = -1;
        }
    }

    /// Runs one parsed command (in `self.argv`, its raw `bytes`) as the
    /// master client; false when CLIENT PAUSE postponed it (kept with its
    /// bytes in `postponed`).
    fn apply_one(&mut self, shared: &Arc<Shared>, step: &mut Step<'_>, bytes: BytesMut) -> bool {
        if self.argv[0].eq_ignore_ascii_case(b"replconf") {
            // A pause of everything holds REPLCONF too (Redis runs it
            // through processCommand).
            if shared.pause.current() == Some(crate::node::pause::PauseKind::All) {
                self.client.postponed = Some(std::mem::take(&mut self.argv));
                self.postponed = Some(bytes);
                return false;
            }
            // REPLCONF GETACK: answered with what was processed before
            // it; other REPLCONFs from a primary carry nothing to apply.
            if self.argv.len() >= 2 && self.argv[1].eq_ignore_ascii_case(b"getack") {
                step.acks.push(step.base + step.counted.len() as u64);
            }
            self.argv.clear();
            step.counted.extend_from_slice(&bytes);
            return true;
        }
        let start = self.out.buf.len();
        step.batch.run(
            shared,
            step.ks,
            &mut self.client,
            &mut self.out,
            &mut self.argv,
        );
        if self.client.postponed.is_some() {
            self.postponed = Some(bytes);
            return false;
        }
        if self.out.buf.get(start) == Some(&b'-') {
            tracing::warn!(
                "== CRITICAL == This replica is sending an error to its master: '{}'",
                String::from_utf8_lossy(&self.out.buf[start..]).trim_end()
            );
        }
        // Work a command asked for after the lock (SAVE, DEBUG RELOAD
        // ...) is not done for the primary.
        self.client.pending = None;
        if self.client.multi.is_some() {
            self.held.extend_from_slice(&bytes);
        } else {
            step.counted.extend_from_slice(&self.held.split());
            step.counted.extend_from_slice(&bytes);
        }
        true
    }

    /// Runs every complete command buffered, in one keyspace-lock hold;
    /// returns the offsets to acknowledge for the `REPLCONF GETACK`s met
    /// (each the offset before the GETACK, as Redis answers).
    pub async fn run(
        &mut self,
        shared: &Arc<Shared>,
        ctl: &Arc<LinkCtl>,
    ) -> Result<Vec<u64>, LinkError> {
        let mut acks = Vec::new();
        let bulk_max = shared.config.read().proto_max_bulk_len;
        let limits = ParseLimits {
            bulk_bytes_max: bulk_max,
            authenticated: true,
        };
        let ticket = {
            let mut ks = shared.lock_ks();
            if ctl.is_cancelled() {
                return Err(LinkError::Stopped);
            }
            ks.refresh_clock();
            self.client.handle.touch_at(ks.clock_mark());
            let base = shared.repl.lock().offset;
            let mut counted = BytesMut::new();
            let mut batch = LinkBatch::default();
            let mut error = None;
            // A command a pause postponed runs first; while it still
            // waits, nothing after it is applied.
            let mut stalled = false;
            // (The two are set and cleared together.)
            if let (Some(bytes), Some(argv)) = (self.postponed.take(), self.client.postponed.take())
            {
                self.argv = argv;
                let mut step = Step {
                    ks: &mut ks,
                    batch: &mut batch,
                    counted: &mut counted,
                    acks: &mut acks,
                    base,
                };
                stalled = !self.apply_one(shared, &mut step, bytes);
            }
            while !stalled {
                let before = self.inbuf.len();
                let parsed =
                    self.client
                        .decoder
                        .parse_into(&mut self.inbuf, limits, &mut self.argv);
                let n = before - self.inbuf.len();
                match parsed {
                    Ok(Parsed::Command { .. }) => {
                        let bytes = self.raw.split_to(n);
                        let mut step = Step {
                            ks: &mut ks,
                            batch: &mut batch,
                            counted: &mut counted,
                            acks: &mut acks,
                            base,
                        };
                        stalled = !self.apply_one(shared, &mut step, bytes);
                    }
                    Ok(Parsed::Empty) => {
                        let bytes = self.raw.split_to(n);
                        if self.client.multi.is_some() {
                            self.held.extend_from_slice(&bytes);
                        } else {
                            counted.extend_from_slice(&bytes);
                        }
                    }
                    Ok(Parsed::Incomplete) => break,
                    Err(e) => {
                        error = Some(LinkError::Protocol(e.0.to_string()));
                        break;
                    }
                }
            }
            if !counted.is_empty() {
                let mut st = shared.repl.lock();
                st.feed(&counted);
                if let Some(m) = st.master.as_mut() {
                    m.stream_db = self.client.db;
                }
                let pos = ReplPosition {
                    replid: st.replid.clone(),
                    offset: st.offset,
                    db: self.client.db as u8,
                };
                drop(st);
                batch.record_position(shared, &mut ks, pos);
            }
            self.client
                .handle
                .qbuf
                .store(self.inbuf.len(), std::sync::atomic::Ordering::Relaxed);
            (batch.end(shared, &mut ks), error)
        };
        let (ticket, error) = ticket;
        if let Some(e) = ticket.commit(shared, &mut self.out).await {
            tracing::warn!("the MASTER's stream could not be logged: {e}");
        }
        self.out.buf.clear();
        self.out.pushes.clear();
        self.out.error_codes.clear();
        match error {
            Some(e) => Err(e),
            None => Ok(acks),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::{file, types, Writer};

    const LIB: &[u8] = b"#!lua name=l\nredis.register_function('f', function() return 1 end)";

    fn rdb() -> Vec<u8> {
        let mut f = file::FileWriter::new(1, 0);
        f.w.u8(crate::rdb::opcodes::FUNCTION2);
        f.w.string(LIB);
        f.select_db(2, 1, 1);
        f.expiry(1234);
        let mut v = Writer::new();
        v.u8(types::STRING);
        v.string(b"value");
        file::put_value(&mut f.w, b"k", &v.buf);
        f.finish()
    }

    #[test]
    fn a_valid_rdb_becomes_flushall_functions_select_restore() {
        let cmds = verify_rdb(&rdb()).unwrap();
        let names: Vec<&[u8]> = cmds.iter().map(|c| &c[0][..]).collect();
        assert_eq!(
            names,
            vec![
                &b"FLUSHALL"[..],
                b"FUNCTION",
                b"FUNCTION",
                b"SELECT",
                b"RESTORE",
                b"SELECT"
            ]
        );
        assert_eq!(&cmds[1][1][..], b"FLUSH");
        assert_eq!(&cmds[2][1][..], b"LOAD");
        assert_eq!(&cmds[2][2][..], LIB);
        assert_eq!(&cmds[3][1][..], b"2");
        assert_eq!(&cmds[4][1][..], b"k");
        assert_eq!(&cmds[4][2][..], b"1234");
        assert_eq!(&cmds[4][4][..], b"ABSTTL");
        assert_eq!(&cmds[5][1][..], b"0");
    }

    #[test]
    fn corrupt_or_truncated_rdbs_give_no_commands() {
        let good = rdb();
        let mut flipped = good.clone();
        let n = flipped.len();
        flipped[n - 12] ^= 1;
        assert!(verify_rdb(&flipped).is_err());
        for cut in [0, 5, 9, good.len() / 2, good.len() - 1] {
            assert!(verify_rdb(&good[..cut]).is_err(), "cut at {cut}");
        }
    }
}
