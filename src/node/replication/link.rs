//! The replica side's link to its primary, as INFO and ROLE show it.
//! Owned by the replica side (`replica`), which updates it as the link
//! goes through its states.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Notify;

/// Redis's `repl_state` as far as INFO and ROLE tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Waiting to connect (`connect`).
    Connect,
    /// The TCP connection is being made (`connecting`).
    Connecting,
    /// PING, AUTH, REPLCONF, PSYNC (`handshake`).
    Handshake,
    /// Receiving the primary's RDB (`sync`).
    Transfer,
    /// Applying the command stream (`connected`).
    Connected,
}

impl LinkState {
    /// ROLE's name for the state.
    pub fn role_name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Handshake => "handshake",
            LinkState::Transfer => "sync",
            LinkState::Connected => "connected",
        }
    }
}

/// Stops a link task: set by REPLICAOF NO ONE or another REPLICAOF.
#[derive(Debug, Default)]
pub struct LinkCtl {
    cancelled: AtomicBool,
    pub notify: Notify,
}

impl LinkCtl {
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Resolves once `cancel` was called (before or after this call).
    pub async fn cancelled(&self) {
        loop {
            let n = self.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            n.await;
        }
    }
}

/// The primary this server replicates (REPLICAOF host port).
#[derive(Debug, Clone)]
pub struct MasterLink {
    pub host: String,
    pub port: u16,
    pub state: LinkState,
    /// Stops the task serving this link.
    pub ctl: Arc<LinkCtl>,
    /// When the last bytes came from the primary (None before the link
    /// is up: `master_last_io_seconds_ago:-1`).
    pub last_io: Option<Instant>,
    /// Unix seconds when the link went down (Redis's `repl_down_since`;
    /// 0: never up since REPLICAOF).
    pub down_since: u64,
    /// Bytes read from the primary's stream, processed or not
    /// (`slave_read_repl_offset`); only meaningful once connected.
    pub read_offset: u64,
    /// The RDB transfer: total size (-1 with the `$EOF:` form, unknown),
    /// bytes read, and the last read.
    pub transfer_size: i64,
    pub transfer_read: u64,
    pub transfer_last_io: Option<Instant>,
    /// The master client's id while the link is up (CLIENT KILL TYPE
    /// master ends it).
    pub client_id: Option<u64>,
    /// The database the primary's stream has selected (the master
    /// client's), saved with the replication position (Redis's
    /// `repl-stream-db` aux field): a partial resync does not repeat the
    /// SELECT.
    pub stream_db: usize,
}

impl MasterLink {
    pub fn new(host: String, port: u16) -> MasterLink {
        MasterLink {
            host,
            port,
            state: LinkState::Connect,
            ctl: Arc::new(LinkCtl::default()),
            last_io: None,
            down_since: 0,
            read_offset: 0,
            transfer_size: -1,
            transfer_read: 0,
            transfer_last_io: None,
            client_id: None,
            stream_db: 0,
        }
    }

    /// INFO replication's lines for a replica, after `role:slave`, up to
    /// `connected_slaves` (exclusive), as Redis 7.0's `genRedisInfoString`.
    /// `offset` is the processed offset; `priority`, `read_only` and
    /// `announced` are `replica-priority`, `replica-read-only` and
    /// `replica-announced`.
    pub fn info_lines(&self, offset: u64, cfg: (i64, bool, bool), now_unix: u64, out: &mut String) {
        let up = self.state == LinkState::Connected;
        let _ = write!(out, "master_host:{}\r\n", self.host);
        let _ = write!(out, "master_port:{}\r\n", self.port);
        let status = if up { "up" } else { "down" };
        let _ = write!(out, "master_link_status:{status}\r\n");
        let last_io = match (up, self.last_io) {
            (true, Some(t)) => t.elapsed().as_secs() as i64,
            _ => -1,
        };
        let _ = write!(out, "master_last_io_seconds_ago:{last_io}\r\n");
        let transfer = self.state == LinkState::Transfer;
        let _ = write!(out, "master_sync_in_progress:{}\r\n", u8::from(transfer));
        let read = if up {
            self.read_offset.max(offset)
        } else {
            offset
        };
        let _ = write!(out, "slave_read_repl_offset:{read}\r\n");
        let _ = write!(out, "slave_repl_offset:{offset}\r\n");
        if transfer {
            let total = self.transfer_size;
            let read = self.transfer_read as i64;
            let perc = if total > 0 {
                read as f64 / total as f64 * 100.0
            } else {
                0.0
            };
            let _ = write!(out, "master_sync_total_bytes:{total}\r\n");
            let _ = write!(out, "master_sync_read_bytes:{read}\r\n");
            let _ = write!(out, "master_sync_left_bytes:{}\r\n", total - read);
            let _ = write!(out, "master_sync_perc:{perc:.2}\r\n");
            let ago = self
                .transfer_last_io
                .map_or(0, |t| t.elapsed().as_secs() as i64);
            let _ = write!(out, "master_sync_last_io_seconds_ago:{ago}\r\n");
        }
        if !up {
            let since = if self.down_since == 0 {
                -1
            } else {
                now_unix.saturating_sub(self.down_since) as i64
            };
            let _ = write!(out, "master_link_down_since_seconds:{since}\r\n");
        }
        let (priority, read_only, announced) = cfg;
        let _ = write!(out, "slave_priority:{priority}\r\n");
        let _ = write!(out, "slave_read_only:{}\r\n", u8::from(read_only));
        let _ = write!(out, "replica_announced:{}\r\n", u8::from(announced));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lines_of_a_link_never_up_and_of_an_up_link() {
        let mut m = MasterLink::new("127.0.0.1".into(), 6380);
        let mut out = String::new();
        m.info_lines(0, (100, true, true), 1000, &mut out);
        assert_eq!(
            out,
            "master_host:127.0.0.1\r\nmaster_port:6380\r\nmaster_link_status:down\r\n\
             master_last_io_seconds_ago:-1\r\nmaster_sync_in_progress:0\r\n\
             slave_read_repl_offset:0\r\nslave_repl_offset:0\r\n\
             master_link_down_since_seconds:-1\r\nslave_priority:100\r\n\
             slave_read_only:1\r\nreplica_announced:1\r\n"
        );
        m.state = LinkState::Connected;
        m.last_io = Some(Instant::now());
        m.read_offset = 20;
        out.clear();
        m.info_lines(14, (7, false, true), 1000, &mut out);
        assert_eq!(
            out,
            "master_host:127.0.0.1\r\nmaster_port:6380\r\nmaster_link_status:up\r\n\
             master_last_io_seconds_ago:0\r\nmaster_sync_in_progress:0\r\n\
             slave_read_repl_offset:20\r\nslave_repl_offset:14\r\n\
             slave_priority:7\r\nslave_read_only:0\r\nreplica_announced:1\r\n"
        );
        m.state = LinkState::Transfer;
        m.down_since = 990;
        m.transfer_size = 200;
        m.transfer_read = 50;
        out.clear();
        m.info_lines(14, (100, true, true), 1000, &mut out);
        assert!(out.contains(
            "master_sync_in_progress:1\r\nslave_read_repl_offset:14\r\nslave_repl_offset:14\r\n\
             master_sync_total_bytes:200\r\nmaster_sync_read_bytes:50\r\n\
             master_sync_left_bytes:150\r\nmaster_sync_perc:25.00\r\n\
             master_sync_last_io_seconds_ago:0\r\nmaster_link_down_since_seconds:10\r\n"
        ));
    }
}
