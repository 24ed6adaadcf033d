//! The replica side's link to its primary, as INFO shows it. Owned by the
//! replica side (`replica`).

use std::fmt::Write;

/// The primary this server replicates (REPLICAOF host port).
#[derive(Debug, Clone)]
pub struct MasterLink {
    pub host: String,
    pub port: u16,
    /// `master_link_status:up`.
    pub up: bool,
}

impl MasterLink {
    /// INFO replication's lines for a replica, after `role:slave`, up to
    /// `connected_slaves` (exclusive). `offset` is `master_repl_offset`.
    pub fn info_lines(&self, offset: u64, out: &mut String) {
        let _ = write!(out, "master_host:{}\r\n", self.host);
        let _ = write!(out, "master_port:{}\r\n", self.port);
        let status = if self.up { "up" } else { "down" };
        let _ = write!(out, "master_link_status:{status}\r\n");
        let _ = write!(out, "slave_repl_offset:{offset}\r\n");
    }
}
