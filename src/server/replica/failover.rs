//! FAILOVER: a coordinated switch of roles between this primary and one of
//! its replicas (Redis 7.0's `failoverCommand`, `updateFailoverStatus`,
//! `abortFailover`).
//!
//! 1. FAILOVER pauses writes (`PausePurpose::Failover`) and enters
//!    `waiting-for-sync`; a task ([`drive`]) watches the replicas' acks.
//! 2. Once the target (or, without TO, any replica) has acknowledged the
//!    whole stream — or the timeout passed with FORCE — this server becomes
//!    a replica of it (`failover-in-progress`): `replica::start` with its
//!    own id and offset cached, and the handshake sends
//!    `PSYNC <replid> <offset+1> FAILOVER`.
//! 3. The target, seeing its own primary's id, promotes itself
//!    (`replica::stop`) and answers the PSYNC as a primary: `+CONTINUE`
//!    under its new id. On that answer (or `+FULLRESYNC`) the failover is
//!    over ([`finish`]): the pause ends, and the writes that waited now get
//!    `-READONLY`. An error answer, a write error or FAILOVER ABORT undo it
//!    ([`abort`]): back to primary, pause ended.
//!
//! Without TIMEOUT the wait lasts until FAILOVER ABORT; with it and no
//! FORCE the failover is aborted when the time is up.

use crate::node::pause::{PauseKind, PausePurpose};
pub use crate::node::replication::failover::{Failover, FailoverState, Refusal, Request};
use crate::node::replication::{primary, ReplState};
use crate::node::Shared;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the waiting task looks again without an ack (Redis runs its
/// replication cron every 100 ms during a failover).
const TICK: Duration = Duration::from_millis(100);

/// Starts a failover (the checks and order of Redis's `failoverCommand`
/// after parsing): pauses writes and spawns the task that waits for a
/// replica to catch up.
pub fn start(shared: &Shared, req: Request) -> Result<(), Refusal> {
    let mut st = shared.repl.lock();
    if st.failover.state != FailoverState::None {
        return Err(Refusal::InProgress);
    }
    if st.master.is_some() {
        return Err(Refusal::Replica);
    }
    if st.replicas.is_empty() {
        return Err(Refusal::NoReplicas);
    }
    if req.force && (req.timeout_ms.is_none() || req.target.is_none()) {
        return Err(Refusal::ForceNeedsTarget);
    }
    let target = match req.target {
        Some((host, port)) => {
            let port = u16::try_from(port).map_err(|_| Refusal::NotAReplica)?;
            let r = find_replica(&st, &host, port).ok_or(Refusal::NotAReplica)?;
            if r.state != primary::ONLINE {
                return Err(Refusal::NotOnline);
            }
            tracing::info!("FAILOVER requested to {host}:{port}.");
            Some((host, port))
        }
        None => {
            tracing::info!("FAILOVER requested to any replica.");
            None
        }
    };
    st.failover = Failover {
        state: FailoverState::WaitForSync,
        target,
        end: req
            .timeout_ms
            .and_then(|ms| Instant::now().checked_add(Duration::from_millis(ms))),
        force: req.force,
    };
    drop(st);
    shared
        .pause
        .pause_for(PausePurpose::Failover, PauseKind::Write, Duration::MAX);
    match (
        shared.me.get().and_then(std::sync::Weak::upgrade),
        tokio::runtime::Handle::try_current(),
    ) {
        (Some(sh), Ok(h)) => {
            h.spawn(drive(sh));
        }
        _ => tracing::warn!("FAILOVER outside the runtime: nothing will drive it"),
    }
    Ok(())
}

/// The replica listening at `host:port` (Redis's `findReplica`: its
/// announced or peer address, the host compared without case).
fn find_replica<'a>(
    st: &'a ReplState,
    host: &str,
    port: u16,
) -> Option<&'a crate::node::replication::ReplicaInfo> {
    st.replicas
        .iter()
        .find(|r| r.ip.eq_ignore_ascii_case(host) && r.port == port)
}

/// What the waiting task does next.
enum Step {
    Wait,
    Done,
    Switch(String, u16),
    Abort(&'static str),
}

/// Redis's `updateFailoverStatus` for the current state.
fn step(st: &mut ReplState, now: Instant) -> Step {
    if st.failover.state != FailoverState::WaitForSync {
        return Step::Done;
    }
    if st.failover.end.is_some_and(|e| e <= now) {
        if !st.failover.force {
            return Step::Abort("Replica never caught up before timeout");
        }
        let Some((host, port)) = st.failover.target.clone() else {
            // FORCE requires a target; nothing to switch to.
            return Step::Abort("Replica never caught up before timeout");
        };
        tracing::info!("FAILOVER to {host}:{port} time out exceeded, failing over.");
        st.failover.state = FailoverState::InProgress;
        return Step::Switch(host, port);
    }
    let offset = st.offset;
    let caught_up = match &st.failover.target {
        Some((host, port)) => find_replica(st, host, *port)
            .filter(|r| r.ack_offset == offset)
            .map(|_| (host.clone(), *port)),
        None => st
            .replicas
            .iter()
            .find(|r| r.ack_offset == offset)
            .map(|r| (r.ip.clone(), r.port)),
    };
    let Some((host, port)) = caught_up else {
        return Step::Wait;
    };
    st.failover.target = Some((host.clone(), port));
    st.failover.state = FailoverState::InProgress;
    tracing::info!("Failover target {host}:{port} is synced, failing over.");
    Step::Switch(host, port)
}

/// The task of a failover in `waiting-for-sync`: looks again at every ack
/// and every [`TICK`]; switches roles once a replica caught up.
async fn drive(shared: Arc<Shared>) {
    loop {
        let acked = {
            let st = shared.repl.lock();
            st.primary.acked.clone()
        };
        let notified = acked.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next = step(&mut shared.repl.lock(), Instant::now());
        match next {
            Step::Done => return,
            Step::Abort(why) => {
                abort(&shared, &mut shared.lock_ks(), why);
                return;
            }
            Step::Switch(host, port) => {
                // Redis's `replicationSetMaster`: this server's own id and
                // offset are what it asks the target to continue. Its
                // blocked clients get UNBLOCKED (`disconnectAllBlockedClients`).
                let mut ks = shared.lock_ks();
                crate::commands::blocking::disconnect_all(&shared, &mut ks);
                super::start(&shared, host, port, Some(0));
                return;
            }
            Step::Wait => {}
        }
        if shared.is_shutting_down() {
            return;
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(TICK) => {}
            _ = shared.shutdown_requested() => return,
        }
    }
}

/// True while a failover is `failover-in-progress`: the handshake sends
/// `PSYNC ... FAILOVER`.
pub fn in_progress(shared: &Shared) -> bool {
    shared.repl.lock().failover.state == FailoverState::InProgress
}

/// The target answered the PSYNC (Redis's `clearFailoverState`): the
/// failover is over, writes resume (as a replica's: refused).
pub fn finish(shared: &Shared) {
    let was = std::mem::take(&mut shared.repl.lock().failover);
    if was.state != FailoverState::None {
        shared.pause.unpause_for(PausePurpose::Failover);
    }
}

/// Redis's `abortFailover`: a failover in progress makes this server a
/// primary again; the pause ends. Runs under the keyspace lock (`ks`).
pub fn abort(shared: &Shared, ks: &mut crate::db::Keyspace, why: &str) {
    let (state, target) = {
        let st = shared.repl.lock();
        (st.failover.state, st.failover.target.clone())
    };
    if state == FailoverState::None {
        return;
    }
    match &target {
        Some((h, p)) => tracing::info!("FAILOVER to {h}:{p} aborted: {why}"),
        None => tracing::info!("FAILOVER to any replica aborted: {why}"),
    }
    if state == FailoverState::InProgress {
        super::stop(shared, ks);
    }
    finish(shared);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::replication::Replication;

    #[test]
    fn states_are_named_as_redis() {
        assert_eq!(FailoverState::None.name(), "no-failover");
        assert_eq!(FailoverState::WaitForSync.name(), "waiting-for-sync");
        assert_eq!(FailoverState::InProgress.name(), "failover-in-progress");
    }

    #[test]
    fn a_timeout_without_force_aborts() {
        let r = Replication::new();
        let mut st = r.lock();
        let now = Instant::now();
        st.failover = Failover {
            state: FailoverState::WaitForSync,
            target: None,
            end: Some(now),
            force: false,
        };
        assert!(matches!(step(&mut st, now), Step::Abort(_)));
        st.failover.end = None;
        // No replica caught up (none at all): keep waiting.
        assert!(matches!(step(&mut st, now), Step::Wait));
        st.failover.target = Some(("h".into(), 1));
        st.failover.force = true;
        st.failover.end = Some(now);
        match step(&mut st, now) {
            Step::Switch(h, p) => assert_eq!((h.as_str(), p), ("h", 1)),
            _ => panic!("FORCE at the deadline switches"),
        }
        assert_eq!(st.failover.state, FailoverState::InProgress);
        assert!(matches!(step(&mut st, now), Step::Done));
    }
}
