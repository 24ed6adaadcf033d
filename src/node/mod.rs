//! The node's state: what every connection, task and command handler
//! shares (`Shared`: the keyspace, the configuration, the clients, the
//! ACL users, pub/sub, tracking, observability, pauses, the replication
//! state, the durability stage and the WAL), and the services that keep
//! it (`pubsub`, `tracking`, `observe`, `pause`, `durability`, `persist`,
//! `tls`, `replication`'s primary side, `rdb_io`).
//!
//! It sits below the command handlers (`commands`), which see it through
//! `Ctx`, and above the data (`db`, `stream`) and the catalog; the
//! network server (`server`: listeners, connections, the replica link)
//! sits above both and installs what only it can do through [`Runtime`].

pub mod busy;
pub mod clients;
pub mod durability;
pub mod net;
pub mod observe;
pub mod pause;
pub mod persist;
pub mod pubsub;
pub mod rdb_io;
pub mod replication;
pub mod tls;
pub mod tracking;

pub use clients::{Client, ClientHandle, ClientMeta, MultiState, PendingOp, ReplyMode};

use crate::config::Config;
use crate::db::{now_ms, Keyspace};
use bytes::Bytes;
use dashmap::DashMap;
use durability::Durability;
use parking_lot::{Mutex, RwLock};
use persist::Persistence;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What only the network server can do, asked for by command handlers
/// (REPLICAOF, FAILOVER, CLUSTER's replica commands): starting and
/// stopping the link to a primary and running a failover. `server`
/// installs its implementation in [`Shared::runtime`].
pub trait Runtime: Send + Sync + std::fmt::Debug {
    /// Starts replicating `host:port` (`server::replica::start`).
    fn replica_start(&self, shared: &Shared, host: String, port: u16, cached: Option<usize>);
    /// Stops replicating; true when this server was a replica.
    fn replica_stop(&self, shared: &Shared, ks: &mut Keyspace) -> bool;
    /// FAILOVER: the checks, then the pause and the wait for a replica.
    fn failover_start(
        &self,
        shared: &Shared,
        req: replication::failover::Request,
    ) -> Result<(), replication::failover::Refusal>;
    /// FAILOVER ABORT (and a failover's own timeout).
    fn failover_abort(&self, shared: &Shared, ks: &mut Keyspace, why: &str);
}

/// Server-wide counters (INFO stats), updated without the keyspace lock.
#[derive(Default, Debug)]
pub struct ServerStats {
    pub total_connections_received: AtomicU64,
    /// Clients closed by `maxmemory-clients` (INFO `evicted_clients`).
    pub evicted_clients: AtomicU64,
    pub total_commands_processed: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub total_net_input_bytes: AtomicU64,
    pub total_net_output_bytes: AtomicU64,
    pub total_error_replies: AtomicU64,
    /// Bytes read from the primary's link (INFO
    /// `total_net_repl_input_bytes`).
    pub total_net_repl_input_bytes: AtomicU64,
}

/// State shared by every connection and task.
#[derive(Debug)]
pub struct Shared {
    /// The keyspace; see `db` for why one lock.
    pub ks: Mutex<Keyspace>,
    pub config: RwLock<Config>,
    /// Connected clients by id.
    pub clients: DashMap<u64, Arc<ClientHandle>>,
    pub next_client_id: AtomicU64,
    pub stats: ServerStats,
    pub started: Instant,
    pub started_unix_ms: u64,
    /// 40 hex characters, new at every start (INFO `run_id`).
    pub run_id: String,
    /// Unix seconds of the last successful save (LASTSAVE).
    pub last_save_unix: AtomicU64,
    pub(crate) shutdown: AtomicBool,
    pub(crate) shutdown_notify: Notify,
    /// Listening addresses, for INFO and CLIENT LIST `laddr`.
    pub listen_addrs: Vec<SocketAddr>,
    /// TLS listening addresses (`tls-port`).
    pub tls_addrs: Vec<SocketAddr>,
    /// The Unix socket's path (`unixsocket`), removed at shutdown.
    pub unix_path: Option<String>,
    /// The TLS context TLS listeners accept with (rebuilt by CONFIG SET).
    pub tls: tls::TlsState,
    /// `rename-command`s, fixed at start: `(old, new)` lowercase, `new`
    /// empty for a removed command.
    pub renames: Vec<(Bytes, Bytes)>,
    /// The WAL and its compaction state; None with `appendonly no`.
    pub persist: Option<Arc<Persistence>>,
    /// Between the keyspace lock and the replies: the one place that says
    /// when a reply may leave (`node::durability`).
    pub durability: Arc<Durability>,
    /// Open streams (their directories under `<dir>/streams/`).
    pub streams: Arc<crate::stream::Registry>,
    /// Stops the background fsync thread.
    pub(crate) flusher_stop: Arc<AtomicBool>,
    /// This `Shared` itself, for threads started from a command handler.
    pub(crate) me: std::sync::OnceLock<std::sync::Weak<Shared>>,
    /// Channel and pattern subscriptions, and message delivery.
    pub pubsub: pubsub::PubSub,
    /// Users and the ACL log (`crate::acl`).
    pub acl: RwLock<crate::acl::Acl>,
    /// Bumped at every change of the users: connections re-read their
    /// user when it moved (one atomic load per command).
    pub acl_version: AtomicU64,
    /// The default user is on and nopass: clients need no AUTH (Redis's
    /// `authRequired` reads the default user's flags).
    pub default_nopass: AtomicBool,
    /// SLOWLOG, LATENCY, errorstats, MONITOR (`node::observe`).
    pub observe: observe::Observe,
    /// The running script (busy scripts, SCRIPT KILL): `scripting::busy`.
    pub busy: crate::node::busy::ScriptBusy,
    /// jemalloc's allocated bytes when the server was set up, before
    /// loading (MEMORY STATS `startup.allocated`, Redis's
    /// `initial_memory_usage`).
    pub startup_allocated: u64,
    /// CLIENT PAUSE state.
    pub pause: pause::Pause,
    /// Replication ids, offset, backlog, role (`node::replication`).
    pub repl: replication::Replication,
    /// The network server's actions ([`Runtime`]).
    pub runtime: &'static dyn Runtime,
    /// Cluster mode (`cluster-enabled yes`): the node table and the bus.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
}

impl Shared {
    /// Publishes a change of the users (see `acl_version`).
    pub fn acl_changed(&self) {
        let d = self.acl.read().default_user();
        self.default_nopass
            .store(d.enabled && d.nopass, Ordering::SeqCst);
        self.acl_version.fetch_add(1, Ordering::SeqCst);
    }

    /// `acl-pubsub-default allchannels`: new users may use every channel.
    pub fn acl_pubsub_all(&self) -> bool {
        self.config.read().get("acl-pubsub-default") == Some("allchannels")
    }

    /// Asks the server to stop: listeners close and connections end.
    pub fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.shutdown_notify.notify_waiters();
        for c in self.clients.iter() {
            c.kill();
        }
    }

    /// Writes an error reply, counting it (INFO `total_error_replies` and
    /// errorstats, Redis's `afterErrorReply`).
    pub fn error_reply(&self, out: &mut crate::protocol::Out, text: &[u8]) {
        out.error_bytes(text);
        self.count_errors(out);
    }

    /// Counts the error replies written to `out` since the last count
    /// (by any handler: EXEC's commands, a script's result ...).
    pub fn count_errors(&self, out: &mut crate::protocol::Out) {
        self.observe
            .count_errors(&self.stats.total_error_replies, &mut out.error_codes);
    }

    /// The keyspace lock, for work that must have it whatever happens
    /// (the cron, a closing connection). While a script is timed out
    /// (`scripting::busy`) the wait moves off the tokio worker, so the
    /// worker goes on serving the other connections.
    pub fn lock_ks(&self) -> parking_lot::MutexGuard<'_, Keyspace> {
        if let Some(g) = self.ks.try_lock() {
            return g;
        }
        loop {
            if let Some(g) = self.ks.try_lock_for(BUSY_POLL) {
                return g;
            }
            if self.busy.is_timed_out() {
                return off_worker(|| self.ks.lock());
            }
        }
    }

    /// The keyspace lock, or None while a timed-out script holds it: the
    /// caller then answers its commands as Redis does during a busy
    /// script (`server::busy`).
    pub fn lock_unless_busy(&self) -> Option<parking_lot::MutexGuard<'_, Keyspace>> {
        if let Some(g) = self.ks.try_lock() {
            return Some(g);
        }
        loop {
            if let Some(g) = self.ks.try_lock_for(BUSY_POLL) {
                return Some(g);
            }
            if self.busy.is_timed_out() {
                return None;
            }
        }
    }

    /// Applies configuration that lives outside `Config` (after CONFIG SET).
    pub fn config_changed(&self) {
        {
            let c = self.config.read();
            self.busy.set_threshold_ms(c.busy_reply_threshold_ms);
            let (hard, soft, secs) = c.pubsub_output_limits();
            self.pubsub.set_limits(hard, soft, secs);
            let (hard, soft, secs) = c.output_limits("normal").unwrap_or((0, 0, 0));
            self.pubsub.set_normal_limits(hard, soft, secs);
            self.streams
                .retention_ms
                .store(c.stream_retention_ms, Ordering::Relaxed);
            self.streams
                .retention_bytes
                .store(c.stream_retention_bytes, Ordering::Relaxed);
            let int = |n: &str| c.get(n).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
            let o = &self.observe;
            o.slower_than_us
                .store(int("slowlog-log-slower-than"), Ordering::Relaxed);
            o.slowlog_max_len
                .store(int("slowlog-max-len").max(0) as usize, Ordering::Relaxed);
            o.latency.threshold_ms.store(
                int("latency-monitor-threshold").max(0) as u64,
                Ordering::Relaxed,
            );
            o.tracking
                .store(c.get("latency-tracking") == Some("yes"), Ordering::Relaxed);
        }
        self.durability.set_policy(self.config.read().appendfsync);
        if let Some(cl) = &self.cluster {
            let new = cluster_runtime_settings(&self.config.read());
            cl.apply_settings(|s| {
                s.node_timeout = new.node_timeout;
                s.require_full_coverage = new.require_full_coverage;
                s.allow_reads_when_down = new.allow_reads_when_down;
                s.allow_pubsubshard_when_down = new.allow_pubsubshard_when_down;
                s.announce_ip = new.announce_ip;
                s.announce_hostname = new.announce_hostname;
                s.endpoint_type = new.endpoint_type;
                s.replica_validity_factor = new.replica_validity_factor;
                s.replica_no_failover = new.replica_no_failover;
                s.allow_replica_migration = new.allow_replica_migration;
                s.migration_barrier = new.migration_barrier;
                s.repl_ping_period = new.repl_ping_period;
            });
        }
    }

    /// Applies `notify-keyspace-events` and `tracking-table-max-keys` to
    /// the keyspace (at startup and after CONFIG SET, which runs under the
    /// keyspace lock and so passes it in).
    pub fn apply_notify_config(&self, ks: &mut Keyspace) {
        let c = self.config.read();
        ks.notify_flags = c.notify_keyspace_events;
        ks.tracking.max_keys = c
            .get("tracking-table-max-keys")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1_000_000);
    }

    /// Applies the memory limit's parameters to the keyspace (at startup
    /// and after CONFIG SET, under the keyspace lock). A new or lowered
    /// `maxmemory` starts evictions at the end of the batch, as Redis's
    /// `updateMaxmemory` starts its eviction time proc.
    pub fn apply_evict_config(&self, ks: &mut Keyspace) {
        ks.lazyfree
            .set_settings(self.config.read().lazyfree_settings());
        let cfg = self.config.read().evict_config();
        let old = ks.evict.cfg.maxmemory;
        self.busy.set_maxmemory(cfg.maxmemory);
        ks.set_evict_config(cfg);
        if cfg.maxmemory != 0 && cfg.maxmemory != old {
            let used = ks.mem.refresh(std::time::Instant::now());
            let used = used.saturating_sub(self.mem_not_counted_for_evict());
            if cfg.maxmemory < used {
                tracing::warn!("WARNING: the new maxmemory value set via CONFIG SET ({}) is smaller than the current memory usage ({used}). This will result in key eviction and/or the inability to accept new write commands depending on the maxmemory-policy.", cfg.maxmemory);
            }
            ks.evict.running = true;
        }
    }

    /// Memory the limit does not count (Redis's
    /// `freeMemoryGetNotCountedMemory`, there the AOF and replica buffers):
    /// the WAL units queued and not yet written. INFO
    /// `mem_not_counted_for_evict`.
    pub fn mem_not_counted_for_evict(&self) -> u64 {
        self.durability.queued_bytes() as u64
    }

    /// Publishes keyspace notifications queued outside a command (the
    /// active expiry cycle). Call with the keyspace lock held.
    pub fn publish_pending_notifications(&self, ks: &mut Keyspace) {
        let notes = ks.take_notifications();
        self.pubsub.publish_notifications(notes, None);
        tracking::background(self, ks);
    }

    /// True while the WAL is being replayed (INFO `loading:1`).
    pub fn is_loading(&self) -> bool {
        self.persist
            .as_ref()
            .is_some_and(|p| p.loading.load(Ordering::Relaxed))
    }

    /// Starts a compaction on its own thread unless one is running.
    /// Returns false when one was already in progress.
    pub fn start_rewrite(&self) -> Result<bool, RewriteError> {
        let Some(p) = self.persist.clone() else {
            return Err(RewriteError::Disabled);
        };
        let Some(shared) = self.me.get().and_then(|w| w.upgrade()) else {
            return Err(RewriteError::Stopping);
        };
        if p.rewrite_in_progress.swap(true, Ordering::SeqCst) {
            return Ok(false);
        }
        std::thread::Builder::new()
            .name("redlog-rewrite".into())
            .spawn(move || {
                let _ = shared.rewrite_now();
            })
            .map_err(RewriteError::Thread)?;
        Ok(true)
    }

    /// Writes a base on the calling thread (SAVE, and the rewrite thread);
    /// on success resets the changes-since-save counter and LASTSAVE.
    pub fn rewrite_now(&self) -> Result<(), RewriteError> {
        let Some(p) = &self.persist else {
            return Err(RewriteError::Disabled);
        };
        let dirty_before = self.lock_ks().stats.dirty;
        self.observe.latency.timed("compaction", || {
            persist::run_rewrite(&self.ks, p, &self.durability)
        })?;
        let mut ks = self.lock_ks();
        ks.stats.dirty = ks.stats.dirty.saturating_sub(dirty_before);
        self.last_save_unix
            .store(now_ms() / 1000, Ordering::Relaxed);
        Ok(())
    }

    /// DEBUG RELOAD: writes a base (unless `nosave`), then rebuilds the
    /// databases from what is on disk (the base and the WAL units after
    /// it, as at startup), replacing every key's value with its replayed
    /// copy: `flush` first drops the keys the disk does not have, `merge`
    /// lets replayed keys replace existing ones when not flushing. Streams
    /// keep their live values (their entries are in their own logs, which
    /// replay does not reopen). The keyspace lock is held from the write
    /// of the queued units to the end, so no command lands in between;
    /// nothing is logged (the result is the disk's state).
    /// `fresh` is the empty keyspace to replay into
    /// (`commands::lua::keyspace()`).
    pub fn debug_reload(
        &self,
        save: bool,
        flush: bool,
        merge: bool,
        fresh: Keyspace,
    ) -> Result<(), RewriteError> {
        let Some(p) = &self.persist else {
            return Err(RewriteError::Disabled);
        };
        if save {
            self.rewrite_now()?;
        }
        let mut ks = self.lock_ks();
        self.durability
            .write_queued()
            .map_err(RewriteError::Queued)?;
        let (disk, _) = persist::replay(&p.wal, fresh)?;
        if !flush && !merge {
            // Redis panics on a duplicate key here; redlog refuses.
            for (db, d) in disk.dbs.iter().enumerate() {
                if let Some((k, _)) = d.iter().find(|(k, _)| ks.dbs[db].contains(k)) {
                    tracing::warn!(
                        "RDB has duplicated key '{}' in DB {db}",
                        String::from_utf8_lossy(k)
                    );
                    return Err(RewriteError::DuplicatedKey);
                }
            }
        }
        ks.set_capture(false);
        let lru = ks.evict.initial_lru(ks.clock_s(), ks.cached_now_ms());
        for (db, d) in disk.dbs.iter().enumerate() {
            let live = &mut ks.dbs[db];
            if flush {
                let gone: Vec<Bytes> = live
                    .iter()
                    .filter(|(k, e)| {
                        !matches!(e.value, crate::db::Value::Stream(_)) && !d.contains(k)
                    })
                    .map(|(k, _)| Bytes::copy_from_slice(k))
                    .collect();
                for k in gone {
                    live.remove(&k);
                }
            }
            for (k, e) in d.iter() {
                if matches!(e.value, crate::db::Value::Stream(_)) {
                    continue;
                }
                live.insert(
                    Bytes::copy_from_slice(k),
                    crate::db::Entry::new(e.value.clone(), e.expires_at_ms, lru),
                );
            }
        }
        ks.set_capture(true);
        tracing::warn!("DB reloaded by DEBUG RELOAD");
        Ok(())
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Resolves once a shutdown was requested.
    pub async fn shutdown_requested(&self) {
        loop {
            let notified = self.shutdown_notify.notified();
            if self.is_shutting_down() {
                return;
            }
            notified.await;
        }
    }
}

/// Why SAVE, BGREWRITEAOF, a scheduled rewrite or DEBUG RELOAD could not
/// run (logged, or after `ERR ` in BGREWRITEAOF's reply).
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error("persistence is disabled (appendonly no)")]
    Disabled,
    #[error("server is stopping")]
    Stopping,
    /// The rewrite thread could not be started.
    #[error(transparent)]
    Thread(std::io::Error),
    #[error(transparent)]
    Persist(#[from] persist::PersistError),
    /// Writing the queued units before a reload failed (the sticky
    /// failure's cause).
    #[error("{}", .0.reason)]
    Queued(durability::Misconf),
    /// DEBUG RELOAD without FLUSH or MERGE found a key on disk that is
    /// also live.
    #[error("duplicated key")]
    DuplicatedKey,
    /// The blocking task running it panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
}

/// How often a task waiting for the keyspace lock looks whether a script
/// holding it has timed out (it then stops waiting on the worker).
const BUSY_POLL: Duration = Duration::from_millis(10);

/// Runs `f`, which may block for long, with the tokio worker handed to
/// another thread meanwhile (on the multi-thread runtime).
pub fn off_worker<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The cluster settings CONFIG SET may change.
pub fn cluster_runtime_settings(config: &Config) -> crate::cluster::Settings {
    let yes = |k: &str| config.get(k) == Some("yes");
    let num = |k: &str, default: u64| {
        config
            .get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(default)
    };
    crate::cluster::Settings {
        node_timeout: config
            .get("cluster-node-timeout")
            .and_then(|v| v.parse().ok())
            .unwrap_or(15000),
        require_full_coverage: yes("cluster-require-full-coverage"),
        allow_reads_when_down: yes("cluster-allow-reads-when-down"),
        allow_pubsubshard_when_down: yes("cluster-allow-pubsubshard-when-down"),
        announce_ip: config.get("cluster-announce-ip").unwrap_or("").to_string(),
        announce_hostname: config
            .get("cluster-announce-hostname")
            .unwrap_or("")
            .to_string(),
        endpoint_type: config
            .get("cluster-preferred-endpoint-type")
            .unwrap_or("ip")
            .to_string(),
        replica_validity_factor: num("cluster-replica-validity-factor", 10),
        replica_no_failover: yes("cluster-replica-no-failover"),
        allow_replica_migration: yes("cluster-allow-replica-migration"),
        migration_barrier: num("cluster-migration-barrier", 1),
        repl_ping_period: num("repl-ping-replica-period", 10),
        ..Default::default()
    }
}
