//! CLIENT PAUSE / UNPAUSE and FAILOVER's pause (Redis 7.0's
//! `pauseClients` for PAUSE_BY_CLIENT_COMMAND and PAUSE_DURING_FAILOVER,
//! the latter for FAILOVER and for a cluster manual failover).
//!
//! Each purpose ([`PausePurpose`]) has its own pause: a kind (WRITE or
//! ALL) and an end time; a new pause of a purpose while one is active
//! keeps the stricter kind and the later end (nested pauses extend). The
//! pause in effect is the strictest of the purposes' active ones; ending
//! one purpose's pause (CLIENT UNPAUSE, a failover's end) leaves the
//! others'. While paused, `execute` postpones the commands the pause
//! covers: the command is kept in `Client::postponed`, nothing is replied,
//! the connection waits (`Pause::changed`) and runs it again once the pause
//! is over, then goes on with its input: commands wait, they are never
//! rejected. WRITE covers commands that may write or replicate (write
//! commands, PUBLISH, EVAL/EVALSHA unless the script says `no-writes`,
//! EXEC of a block holding one, and such commands queued inside MULTI, as
//! Redis checks before queueing); ALL covers every command, CLIENT UNPAUSE
//! included (only the timeout ends it, as in Redis). Replicas are never
//! paused; on a replica the master client is, as Redis 7.0 (it is no
//! `CLIENT_SLAVE`): the primary's stream stops at a command the pause
//! covers until it ends (`replication::replica::apply`). During any pause the active expiry cycle
//! and eviction stop (Redis's `checkClientPauseTimeoutAndReturnIfPaused`).

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What a pause covers; ALL is the stricter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PauseKind {
    Write,
    All,
}

/// Why clients are paused; each purpose's pause is kept apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PausePurpose {
    /// CLIENT PAUSE (ended by CLIENT UNPAUSE or its timeout).
    Client = 0,
    /// FAILOVER: writes wait until the failover ends or is aborted.
    Failover = 1,
    /// A cluster primary in a manual failover (CLUSTER FAILOVER on one of
    /// its replicas, `server::cluster_repl`): writes wait until it ends.
    ClusterFailover = 2,
}

/// One purpose's pause: its kind and end.
type Slot = Option<(PauseKind, Instant)>;

/// The server's pause state (`Shared::pause`).
#[derive(Debug, Default)]
pub struct Pause {
    state: Mutex<[Slot; 3]>,
    /// True while `state` may hold a pause (set with it, cleared with
    /// it): every command asks `current`, which takes neither the mutex
    /// nor a clock reading while no pause was set.
    set: AtomicBool,
    notify: Notify,
}

impl Pause {
    /// CLIENT PAUSE: pauses `kind` for `dur` (or extends the pause).
    pub fn pause(&self, kind: PauseKind, dur: Duration) {
        self.pause_for(PausePurpose::Client, kind, dur);
    }

    /// Pauses `kind` for `dur` for `purpose` (or extends its pause).
    pub fn pause_for(&self, purpose: PausePurpose, kind: PauseKind, dur: Duration) {
        let now = Instant::now();
        // A timeout past what Instant can hold: a century is forever here.
        let end = now
            .checked_add(dur)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400));
        {
            let mut st = self.state.lock();
            let slot = &mut st[purpose as usize];
            *slot = Some(match *slot {
                Some((k, e)) if e > now => (k.max(kind), e.max(end)),
                _ => (kind, end),
            });
            self.set.store(true, Ordering::Release);
        }
        self.notify.notify_waiters();
    }

    /// CLIENT UNPAUSE: ends CLIENT PAUSE's pause now.
    pub fn unpause(&self) {
        self.unpause_for(PausePurpose::Client);
    }

    /// Ends `purpose`'s pause now (others' stay).
    pub fn unpause_for(&self, purpose: PausePurpose) {
        {
            let mut st = self.state.lock();
            st[purpose as usize] = None;
            self.set
                .store(st.iter().any(Option::is_some), Ordering::Release);
        }
        self.notify.notify_waiters();
    }

    /// True while `purpose`'s pause is active.
    pub fn is_active(&self, purpose: PausePurpose) -> bool {
        self.set.load(Ordering::Acquire)
            && self.state.lock()[purpose as usize].is_some_and(|(_, end)| end > Instant::now())
    }

    /// The pause in effect now, if any.
    pub fn current(&self) -> Option<PauseKind> {
        if !self.set.load(Ordering::Acquire) {
            return None;
        }
        let mut st = self.state.lock();
        let now = Instant::now();
        let mut kind = None;
        for slot in st.iter_mut() {
            match *slot {
                Some((k, end)) if end > now => kind = kind.max(Some(k)),
                Some(_) => *slot = None,
                None => {}
            }
        }
        if kind.is_none() {
            self.set.store(false, Ordering::Release);
        }
        kind
    }

    /// True while writes are paused (WRITE or ALL): no active expiry, no
    /// eviction.
    pub fn writes_paused(&self) -> bool {
        self.current().is_some()
    }

    /// Waits until the pause changes (UNPAUSE, a new pause) or ends.
    pub async fn changed(&self) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let Some(end) = self.state.lock().iter().flatten().map(|(_, e)| *e).min() else {
            return;
        };
        tokio::select! {
            _ = tokio::time::sleep_until(end.into()) => {}
            _ = notified => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_pauses_keep_the_stricter_kind_and_later_end() {
        let p = Pause::default();
        assert_eq!(p.current(), None);
        p.pause(PauseKind::All, Duration::from_secs(100));
        p.pause(PauseKind::Write, Duration::from_secs(1000));
        assert_eq!(p.current(), Some(PauseKind::All));
        let end = p.state.lock()[0].map(|(_, e)| e).unwrap();
        assert!(end > Instant::now() + Duration::from_secs(500));
        p.unpause();
        assert_eq!(p.current(), None);
        p.pause(PauseKind::Write, Duration::ZERO);
        assert_eq!(p.current(), None);
        p.pause(PauseKind::Write, Duration::MAX);
        assert!(p.writes_paused());
    }

    #[test]
    fn purposes_are_kept_apart() {
        let p = Pause::default();
        p.pause_for(PausePurpose::Failover, PauseKind::Write, Duration::MAX);
        assert!(p.is_active(PausePurpose::Failover));
        assert!(!p.is_active(PausePurpose::ClusterFailover));
        p.pause_for(
            PausePurpose::ClusterFailover,
            PauseKind::Write,
            Duration::ZERO,
        );
        assert!(!p.is_active(PausePurpose::ClusterFailover));
        p.pause(PauseKind::All, Duration::from_secs(100));
        assert_eq!(p.current(), Some(PauseKind::All));
        // CLIENT UNPAUSE leaves the failover's pause.
        p.unpause();
        assert_eq!(p.current(), Some(PauseKind::Write));
        p.pause(PauseKind::Write, Duration::from_secs(100));
        p.unpause_for(PausePurpose::Failover);
        assert_eq!(p.current(), Some(PauseKind::Write));
        p.unpause();
        assert_eq!(p.current(), None);
    }
}
