//! The replicas attached to this server, as INFO shows them. Owned by the
//! primary side (`primary`).

use crate::server::ClientHandle;
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
}

impl ReplicaInfo {
    /// Queues stream bytes for this replica unless it still waits for its
    /// snapshot (the snapshot is taken after them).
    pub fn send(&self, bytes: &[u8]) {
        if self.state != super::primary::WAIT_BGSAVE {
            self.handle.push(Bytes::copy_from_slice(bytes));
        }
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
