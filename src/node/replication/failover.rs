//! FAILOVER's state, kept in `ReplState` (Redis's `failover_*`); the
//! command's run (the pause, the wait for a replica, the switch) is
//! `server::replica::failover`.

use std::time::Instant;

/// `master_failover_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailoverState {
    #[default]
    None,
    WaitForSync,
    InProgress,
}

impl FailoverState {
    /// As INFO replication shows it.
    pub fn name(self) -> &'static str {
        match self {
            FailoverState::None => "no-failover",
            FailoverState::WaitForSync => "waiting-for-sync",
            FailoverState::InProgress => "failover-in-progress",
        }
    }
}

/// The failover under way (Redis's `failover_*` and `target_replica_*`).
#[derive(Debug, Default)]
pub struct Failover {
    pub state: FailoverState,
    /// The replica to fail over to: given with TO, or the first one found
    /// caught up.
    pub target: Option<(String, u16)>,
    /// TIMEOUT's deadline.
    pub end: Option<Instant>,
    /// FORCE: at the deadline, fail over to the target even if behind.
    pub force: bool,
}

/// FAILOVER's arguments, parsed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// TO host port (the port as given: one out of range names no replica).
    pub target: Option<(String, i64)>,
    pub timeout_ms: Option<u64>,
    pub force: bool,
}

/// Why FAILOVER cannot start (the reply's text).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("ERR FAILOVER already in progress.")]
    InProgress,
    #[error("ERR FAILOVER is not valid when server is a replica.")]
    Replica,
    #[error("ERR FAILOVER requires connected replicas.")]
    NoReplicas,
    #[error("ERR FAILOVER with force option requires both a timeout and target HOST and IP.")]
    ForceNeedsTarget,
    #[error("ERR FAILOVER target HOST and PORT is not a replica.")]
    NotAReplica,
    #[error("ERR FAILOVER target replica is not online.")]
    NotOnline,
}
