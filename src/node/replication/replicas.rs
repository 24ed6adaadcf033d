//! The replicas attached to this server, as INFO shows them. Owned by the
//! primary side (`primary`).

use crate::node::ClientHandle;
use bytes::Bytes;
use std::fmt::Write;
use std::sync::Arc;

/// One attached replica (a connection that sent PSYNC or SYNC).
#[derive(Debug, Clone)]
pub struct ReplicaInfo {
    /// The connection's client id.
    pub client_id: u64,
    pub ip: String,
    /// REPLCONF listening-port.
    pub port: u16,
    /// `wait_bgsave`, `send_bulk` or `online`.
    pub state: &'static str,
    /// The offset of its last REPLCONF ACK.
    pub ack_offset: u64,
    /// Unix seconds of its last REPLCONF ACK.
    pub ack_unix: u64,
    /// Its connection: the stream leaves through its push queue.
    pub handle: Arc<ClientHandle>,
    /// REPLCONF capa eof: the RDB is sent with an EOF mark.
    pub capa_eof: bool,
    /// PSYNC (false: the old SYNC, no +FULLRESYNC line, no ACKs).
    pub psync: bool,
    /// Unix seconds since its queue is over the soft output limit.
    pub soft_since: Option<u64>,
    /// Stream bytes held back until the replica's first REPLCONF ACK
    /// after an EOF-marked RDB (Redis's `repl_start_cmd_stream_on_ack`):
    /// a replica reading the RDB looks for the mark at the end of what
    /// it read, so no stream byte may follow the mark before it is done.
    /// None: the stream goes out as it comes.
    pub held: Option<Vec<u8>>,
}

impl ReplicaInfo {
    /// Queues stream bytes for this replica unless it still waits for its
    /// snapshot (the snapshot is taken after them).
    pub fn send(&mut self, bytes: &[u8]) {
        if self.state == super::primary::WAIT_BGSAVE {
            return;
        }
        match &mut self.held {
            Some(h) => h.extend_from_slice(bytes),
            None => self.handle.push(Bytes::copy_from_slice(bytes)),
        }
    }

    /// The first ACK: what was held goes out, and the stream after it.
    pub fn release_held(&mut self) {
        if let Some(h) = self.held.take() {
            if !h.is_empty() {
                self.handle.push(Bytes::from(h));
            }
        }
    }

    /// Bytes queued for this replica and not sent: its connection's
    /// output plus what is held (`client-output-buffer-limit replica`).
    pub fn queued_bytes(&self) -> u64 {
        self.handle.obuf.load(std::sync::atomic::Ordering::Relaxed) as u64
            + self.held.as_ref().map_or(0, |h| h.len() as u64)
    }

    /// INFO replication's `slave<i>:` line.
    pub fn info_line(&self, i: usize, out: &mut String) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let lag = now.saturating_sub(self.ack_unix);
        let _ = writeln!(
            out,
            "slave{i}:ip={},port={},state={},offset={},lag={lag}\r",
            self.ip, self.port, self.state, self.ack_offset
        );
    }
}
