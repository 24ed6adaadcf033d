//! Per-connection state: `Client` (owned by the connection task) and
//! `ClientHandle` (shared in the registry for CLIENT LIST / KILL / INFO).

use super::net::PeerAddr;
use bytes::Bytes;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Notify;

/// CLIENT REPLY mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Suppress the reply of the next command only.
    Skip,
    /// Set by SKIP; the command after CLIENT REPLY SKIP is running.
    SkipNext,
}

/// A command's job for its connection: LOGPARSE INGEST's
/// `commands::logingest::IngestJob`, MIGRATE's
/// `commands::migrate::MigrateJob`. Defined by the handlers, which sit
/// above this module; the connection (`server::connection`) knows the
/// concrete type of each `PendingOp` variant and takes it back with
/// [`Job::into_any`].
pub trait Job: std::any::Any + Send + Sync + std::fmt::Debug {
    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send>;
}

/// Work a command asked the connection to do after the keyspace lock is
/// released (it must not run under the lock).
#[derive(Debug)]
pub enum PendingOp {
    /// SAVE: write a base now, then reply.
    Save,
    /// DEBUG RELOAD: `Shared::debug_reload(save, flush, merge)`, then reply.
    Reload {
        save: bool,
        flush: bool,
        merge: bool,
    },
    /// LOGPARSE INGEST: parse and mine off the keyspace lock, append
    /// chunk by chunk (`connection::run_ingest`).
    Ingest(Box<dyn Job>),
    /// MIGRATE: the exchange with the target off the lock, then the
    /// deletions under it (`connection::run_migrate`).
    Migrate(Box<dyn Job>),
    /// WAIT numreplicas timeout: acknowledgements of the stream's offset
    /// after the batch awaited off the lock (`replication::primary::wait`).
    Wait { num: u64, timeout_ms: u64 },
}

/// A blocked connection's side of its registration (`server::blocking`
/// makes it after the command and waits on it).
#[derive(Debug)]
pub struct Blocked {
    pub rx: tokio::sync::oneshot::Receiver<crate::db::blocking::WaiterReply>,
    pub deadline_ms: u64,
}

/// A MULTI block being queued.
#[derive(Debug, Default)]
pub struct MultiState {
    pub queue: Vec<(usize, Vec<Bytes>)>,
    /// A command failed to queue (unknown, arity ...): EXEC will EXECABORT.
    pub aborted: bool,
}

/// Mutable metadata that CLIENT LIST shows.
#[derive(Debug, Default, Clone)]
pub struct ClientMeta {
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub db: usize,
    pub resp: u8,
    /// -1 when not in MULTI, else the number of queued commands.
    pub multi: i64,
    pub watching: usize,
    pub no_evict: bool,
    pub no_touch: bool,
    pub user: String,
    /// Channels and patterns subscribed (CLIENT LIST `sub`, `psub`).
    pub sub: usize,
    pub psub: usize,
    /// Shard channels subscribed (CLIENT LIST `ssub`).
    pub ssub: usize,
    /// Waiting in a blocking command (CLIENT LIST flag `b`).
    pub blocked: bool,
    /// In MONITOR mode (CLIENT LIST flag `O`).
    pub monitor: bool,
    /// A replica attached to this server (CLIENT LIST flag `S`).
    pub replica: bool,
    /// The replication link's master client (CLIENT LIST flag `M`, CLIENT
    /// KILL TYPE master).
    pub master: bool,
    /// READONLY (CLIENT LIST flag `r`).
    pub readonly: bool,
}

/// What the registry holds for each connection.
#[derive(Debug)]
pub struct ClientHandle {
    pub id: u64,
    pub addr: PeerAddr,
    pub laddr: PeerAddr,
    /// The socket's file descriptor (CLIENT LIST `fd`).
    pub fd: i32,
    pub created: Instant,
    pub meta: Mutex<ClientMeta>,
    /// Milliseconds since `created` of the last command.
    pub last_interaction_ms: AtomicU64,
    /// Command table index of the last command (CLIENT LIST `cmd`);
    /// `usize::MAX` before the first.
    pub last_cmd: AtomicUsize,
    /// Bytes buffered but not yet executed (CLIENT LIST `qbuf`).
    pub qbuf: AtomicUsize,
    /// Bytes of Pub/Sub frames queued and not yet written (shared with
    /// the connection's `pubsub::Mailbox`).
    pub obuf: Arc<AtomicUsize>,
    killed: AtomicBool,
    pub kill_notify: Notify,
    /// The sending side of the connection's push queue (set by
    /// `ClientPubSub::new`), for frames sent by client id: CLIENT TRACKING
    /// invalidations (`push`).
    pub(crate) push_tx: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Bytes>>,
    /// `expect_pushes` was called: the connection loop must watch its
    /// queue even when not subscribed.
    pushed: AtomicBool,
    /// CLIENT TRACKING as CLIENT LIST shows it: flag letters `t`, `R`,
    /// `B` and `redir` (-1 when off). Kept by `node::tracking`.
    pub tracking: Mutex<(&'static str, i64)>,
}

impl ClientHandle {
    pub fn new(id: u64, addr: impl Into<PeerAddr>, laddr: impl Into<PeerAddr>, fd: i32) -> Self {
        ClientHandle {
            id,
            addr: addr.into(),
            laddr: laddr.into(),
            fd,
            created: Instant::now(),
            meta: Mutex::new(ClientMeta {
                resp: 2,
                multi: -1,
                user: "default".into(),
                ..Default::default()
            }),
            last_interaction_ms: AtomicU64::new(0),
            last_cmd: AtomicUsize::new(usize::MAX),
            qbuf: AtomicUsize::new(0),
            obuf: Arc::new(AtomicUsize::new(0)),
            killed: AtomicBool::new(false),
            kill_notify: Notify::new(),
            push_tx: std::sync::OnceLock::new(),
            pushed: AtomicBool::new(false),
            tracking: Mutex::new(("", -1)),
        }
    }

    /// Queues a frame on the connection's push queue, written as Pub/Sub
    /// messages are (unlimited, as Redis's `normal` class).
    pub fn push(&self, frame: Bytes) {
        if self.is_killed() {
            return;
        }
        if let Some(tx) = self.push_tx.get() {
            self.obuf.fetch_add(frame.len(), Ordering::Relaxed);
            // Nobody to deliver to once the connection closed.
            let _ = tx.send(frame);
        }
    }

    /// Marks the client as one `push` may send to (a tracking client, a
    /// redirection target): its connection loop watches its queue from
    /// its next turn on.
    pub fn expect_pushes(&self) {
        self.pushed.store(true, Ordering::Relaxed);
    }

    /// True once `expect_pushes` was called.
    pub fn receives_pushes(&self) -> bool {
        self.pushed.load(Ordering::Relaxed)
    }

    /// Asks the connection to close (CLIENT KILL); it closes after its
    /// current batch.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        // Every registered waiter (the connection loop keeps one for its
        // whole life, a blocked command has its own), and a permit for a
        // waiter registered later.
        self.kill_notify.notify_waiters();
        self.kill_notify.notify_one();
    }

    /// The memory `maxmemory-clients` counts for this client: its query
    /// buffer and its queued output (redlog's replies are written per
    /// batch, never kept).
    pub fn mem(&self) -> usize {
        self.qbuf.load(Ordering::Relaxed) + self.obuf.load(Ordering::Relaxed)
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    pub fn touch(&self) {
        self.touch_at(std::time::Instant::now());
    }

    /// `touch` with a clock reading the caller already has (the batch's,
    /// `Keyspace::clock_mark`): no clock read of its own.
    pub fn touch_at(&self, now: std::time::Instant) {
        self.last_interaction_ms.store(
            now.saturating_duration_since(self.created).as_millis() as u64,
            Ordering::Relaxed,
        );
    }

    /// Seconds since the last command (CLIENT LIST `idle`).
    pub fn idle_s(&self) -> u64 {
        let now = self.created.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_interaction_ms.load(Ordering::Relaxed)) / 1000
    }

    /// One line of CLIENT LIST / CLIENT INFO, with the fields Redis 7.0 prints
    /// in its order, then Redis 7.2's `lib-name` and `lib-ver` (CLIENT
    /// SETINFO is a 7.2 command clients send anyway). Flags: `x` in MULTI, `b` blocked, `U` Unix socket,
    /// `e` no-evict, `T` no-touch (7.2), `N` none. Sizes redlog does not track
    /// (qbuf-free, argv-mem, tot-mem, ...) are printed as 0. `cmd` is the
    /// full name of the client's last command (`last_cmd`), `NULL` for
    /// none: `commands::connection::client_info_line` looks it up.
    pub fn info_line(&self, cmd: &str) -> String {
        let m = self.meta.lock();
        let mut flags = String::new();
        if m.monitor {
            flags.push('O');
        } else if m.replica {
            flags.push('S');
        }
        if m.master {
            flags.push('M');
        }
        if m.sub + m.psub + m.ssub > 0 {
            flags.push('P');
        }
        if m.multi >= 0 {
            flags.push('x');
        }
        if m.blocked {
            flags.push('b');
        }
        let (tflags, redir) = *self.tracking.lock();
        flags.push_str(tflags);
        if self.addr.is_unix() {
            flags.push('U');
        }
        if m.readonly {
            flags.push('r');
        }
        if m.no_evict {
            flags.push('e');
        }
        if m.no_touch {
            flags.push('T');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let name = m
            .name
            .as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        let lib_name = m
            .lib_name
            .as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        let lib_ver = m
            .lib_ver
            .as_ref()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free=0 argv-mem=0 multi-mem=0 rbs=16384 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir={} resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            name,
            self.created.elapsed().as_secs(),
            self.idle_s(),
            flags,
            m.db,
            m.sub,
            m.psub,
            m.ssub,
            m.multi,
            self.qbuf.load(Ordering::Relaxed),
            cmd,
            m.user,
            redir,
            m.resp,
            lib_name,
            lib_ver
        )
    }
}

/// The connection's own state, touched only by its task (and by command
/// handlers running on its behalf).
#[derive(Debug)]
pub struct Client {
    pub id: u64,
    pub db: usize,
    pub authenticated: bool,
    pub multi: Option<MultiState>,
    /// WATCHed (db, key) pairs.
    pub watched: Vec<(usize, Bytes)>,
    pub reply_mode: ReplyMode,
    pub no_touch: bool,
    /// Close once the pending replies are written (QUIT, protocol error, kill).
    pub close_after_reply: bool,
    /// The replication offset right after this client's last batch that
    /// propagated anything (Redis's `c->woff`): what its WAIT waits for.
    pub woff: u64,
    /// Set by a handler; the connection stops the batch and performs it.
    pub pending: Option<PendingOp>,
    /// A connection task drives this client: LOGPARSE INGEST may hand it
    /// `PendingOp::Ingest` (false for a client run in-process, whose
    /// INGEST runs whole under the lock).
    pub chunked_ingest: bool,
    /// Subscriptions and the queue of messages to write (`node::pubsub`).
    pub pubsub: super::pubsub::ClientPubSub,
    /// Running the commands of EXEC: blocking commands must not block
    /// (Redis's CLIENT_DENY_BLOCKING).
    pub in_exec: bool,
    /// The client scripts run their commands on (Redis's CLIENT_SCRIPT).
    pub in_script: bool,
    /// In MONITOR mode: registered in `Observe`, fed through its Pub/Sub
    /// queue.
    pub monitor: bool,
    /// Set by a blocking command's handler that found nothing to serve
    /// (see `server::blocking`).
    pub block: Option<crate::db::blocking::BlockRequest>,
    /// The connection is blocked: registered as a waiter, awaiting this.
    pub blocked: Option<Blocked>,
    pub handle: Arc<ClientHandle>,
    /// Request decoding progress through the connection's input buffer.
    pub decoder: crate::protocol::Decoder,
    /// The ACL user; None for in-process clients that may run anything
    /// (Redis's `c->user == NULL`).
    pub user: Option<Arc<crate::acl::User>>,
    /// `Shared::acl_version` when `user` was read.
    pub acl_version: u64,
    /// Scratch space of the ACL check (key positions and flags).
    pub acl_keys: Vec<(usize, u32)>,
    /// For the client scripts run on: the client running the script
    /// (ACL LOG `client-info`).
    pub script_caller: Option<Arc<ClientHandle>>,
    /// A command CLIENT PAUSE postponed: run again when the pause ends
    /// (`node::pause`).
    pub postponed: Option<Vec<Bytes>>,
    /// Never postponed by CLIENT PAUSE: the master client while it loads
    /// the primary's RDB (which Redis loads without running commands).
    pub unpausable: bool,
    /// When the replies first went over the normal class's soft output
    /// buffer limit (`PubSub::reply_over_limit`).
    pub obuf_soft_since: Option<Instant>,
    /// ASKING was sent: the next command may use an importing slot.
    pub asking: bool,
    /// READONLY: read commands about our primary's slots are served by
    /// this replica instead of redirected (cluster mode).
    pub readonly: bool,
    /// The replication link's client applying the primary's stream
    /// (Redis's CLIENT_MASTER): obeyed on a read-only replica, never
    /// blocked, paused or refused for memory.
    pub master: bool,
}

impl Client {
    pub fn new(handle: Arc<ClientHandle>, authenticated: bool) -> Self {
        Client {
            id: handle.id,
            db: 0,
            authenticated,
            multi: None,
            watched: Vec::new(),
            reply_mode: ReplyMode::On,
            no_touch: false,
            close_after_reply: false,
            woff: 0,
            pending: None,
            chunked_ingest: false,
            pubsub: super::pubsub::ClientPubSub::new(handle.clone()),
            in_exec: false,
            in_script: false,
            monitor: false,
            block: None,
            blocked: None,
            handle,
            decoder: crate::protocol::Decoder::default(),
            user: None,
            acl_version: 0,
            acl_keys: Vec::new(),
            script_caller: None,
            postponed: None,
            unpausable: false,
            obuf_soft_since: None,
            asking: false,
            readonly: false,
            master: false,
        }
    }
}
