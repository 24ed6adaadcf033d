//! The network server: listeners, the accept loop and the periodic tasks
//! (active expiry), above the command handlers. Connections live in
//! `connection`, the replica's link to its primary in `replica`; the state
//! they share is `node::Shared`, built here by `spawn`, which installs
//! this server's `node::Runtime`.

mod batch;
pub mod blocking;
mod busy;
mod cluster_repl;
mod connection;
mod dispatch;
pub mod replica;

pub use dispatch::execute;

use crate::config::Config;
use crate::db::expire::{active_expire_cycle, CycleKind};
use crate::db::{now_ms, Keyspace};
use crate::node::{
    self, cluster_runtime_settings, durability, net, observe, off_worker, pause, persist, pubsub,
    replication, tls, tracking, Client, ClientHandle, PendingOp, ReplyMode, ServerStats, Shared,
};
use crate::storage::{Fs, RealFs};
use bytes::Bytes;
use dashmap::DashMap;
use durability::Durability;
use parking_lot::{Mutex, RwLock};
use persist::Persistence;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Why the users could not be set up at startup (Redis's texts).
#[derive(Debug, thiserror::Error)]
pub enum StartupAclError {
    #[error("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.")]
    Both,
    #[error(transparent)]
    ConfigUser(#[from] crate::acl::ConfigUserError),
    #[error("Aborting Redis startup because of ACL errors: Error loading ACLs, opening file '{file}': {cause}")]
    Open { file: String, cause: std::io::Error },
    #[error("Aborting Redis startup because of ACL errors: {0}")]
    File(#[from] crate::acl::AclFileError),
}

/// The users at startup, as Redis's `ACLUpdateDefaultUserPassword` then
/// `ACLLoadUsersAtStartup`: `requirepass` sets the default user's
/// password, then the config file's `user` directives or the ACL file
/// (not both).
fn initial_acl(config: &Config) -> Result<crate::acl::Acl, StartupAclError> {
    let pubsub_all = config.get("acl-pubsub-default") == Some("allchannels");
    let mut acl = crate::acl::Acl::default();
    if pubsub_all {
        acl.users.insert(
            b"default".to_vec(),
            Arc::new(crate::acl::User::new_default(true)),
        );
    }
    if let Some(p) = &config.requirepass {
        let mut d = (*acl.default_user()).clone();
        let _ = d.apply(b"resetpass", pubsub_all);
        let mut op = b">".to_vec();
        op.extend_from_slice(p);
        let _ = d.apply(&op, pubsub_all);
        acl.users.insert(b"default".to_vec(), Arc::new(d));
    }
    let aclfile = config.get("aclfile").unwrap_or("").to_string();
    if !aclfile.is_empty() && !config.users.is_empty() {
        return Err(StartupAclError::Both);
    }
    crate::acl::load_config_users(&mut acl, &config.users, pubsub_all)?;
    if !aclfile.is_empty() {
        let text = std::fs::read(&aclfile).map_err(|cause| StartupAclError::Open {
            file: aclfile.clone(),
            cause,
        })?;
        let users = crate::acl::parse_acl_file(&text, &aclfile, pubsub_all)?;
        // The file's default user replaces the one requirepass made.
        acl.users = users;
    }
    Ok(acl)
}

/// The network server's side of [`node::Runtime`].
#[derive(Debug)]
struct NetRuntime;

impl node::Runtime for NetRuntime {
    fn replica_start(&self, shared: &Shared, host: String, port: u16, cached: Option<usize>) {
        replica::start(shared, host, port, cached)
    }

    fn replica_stop(&self, shared: &Shared, ks: &mut Keyspace) -> bool {
        replica::stop(shared, ks)
    }

    fn failover_start(
        &self,
        shared: &Shared,
        req: replication::failover::Request,
    ) -> Result<(), replication::failover::Refusal> {
        replica::failover::start(shared, req)
    }

    fn failover_abort(&self, shared: &Shared, ks: &mut Keyspace, why: &str) {
        replica::failover::abort(shared, ks, why)
    }
}

/// A running server.
pub struct ServerHandle {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ServerHandle {
    /// The first listening address (useful with port 0): TCP, else TLS.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared
            .listen_addrs
            .first()
            .or(self.shared.tls_addrs.first())
            .copied()
            .unwrap_or_else(|| ([127, 0, 0, 1], 0).into())
    }

    /// The first TLS listening address, if `tls-port` is set.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.shared.tls_addrs.first().copied()
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops the server (as SHUTDOWN NOSAVE would) and waits for its tasks.
    pub async fn shutdown(self) {
        self.shared.request_shutdown();
        self.wait().await;
    }

    /// Waits until the server stops (SHUTDOWN, or `shutdown()`), then
    /// makes the WAL durable.
    pub async fn wait(self) {
        for t in self.tasks {
            let _ = t.await;
        }
        // Redis removes its socket file on shutdown.
        if let Some(p) = &self.shared.unix_path {
            let _ = std::fs::remove_file(p);
        }
        self.shared.flusher_stop.store(true, Ordering::Relaxed);
        // Connections were told to close; let them finish their batch so
        // every acknowledged write is in the WAL before the final fsync.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.shared.clients.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        while self
            .shared
            .persist
            .as_ref()
            .is_some_and(|p| p.rewrite_in_progress.load(Ordering::SeqCst))
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if let Some(p) = self.shared.persist.clone() {
            let streams = self.shared.streams.clone();
            let stage = self.shared.durability.clone();
            let shared = self.shared.clone();
            let r = tokio::task::spawn_blocking(move || {
                // Checkpoints make the next start read no stream tail.
                streams.checkpoint_all();
                let synced = streams.sync_all();
                if let Err(e) = &synced {
                    tracing::error!("final stream fsync failed: {e}");
                }
                let r = stage.close();
                // Everything applied is durable: a replica restarted
                // from here resyncs partially.
                if r.is_ok() && synced.is_ok() {
                    replica::save_position(&shared);
                }
                p.release();
                r
            })
            .await;
            if let Ok(Err(e)) = r {
                tracing::error!("final WAL fsync failed: {}", e.reason);
            }
        }
    }
}

/// Binds the configured addresses, opens and replays the WAL (clients that
/// connect meanwhile get `-LOADING`), and serves on the current tokio
/// runtime. Port 0 picks a free port (see `ServerHandle::local_addr`).
pub async fn spawn(config: Config) -> std::io::Result<ServerHandle> {
    spawn_with_fs(config, Arc::new(RealFs)).await
}

fn io_other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// `spawn` with a chosen file system (fault injection in tests).
pub async fn spawn_with_fs(config: Config, fs: Arc<dyn Fs>) -> std::io::Result<ServerHandle> {
    let config = fit_maxclients(config)?;
    let fs_for_streams = fs.clone();
    let persist = if config.appendonly {
        let dir = std::path::PathBuf::from(&config.dir);
        let p = tokio::task::spawn_blocking(move || Persistence::open(&dir, fs))
            .await
            .map_err(io_other)?
            .map_err(io_other)?;
        p.loading.store(true, Ordering::SeqCst);
        Some(Arc::new(p))
    } else {
        None
    };
    let renames = config
        .renamed_commands
        .iter()
        .map(|(o, n)| (Bytes::from(o.clone()), Bytes::from(n.clone())))
        .collect();
    let tls = tls::TlsState::default();
    if tls::enabled(&config) {
        if let Err(e) = tls.configure(&config) {
            tracing::warn!("{e}");
            return Err(io_other(
                "Failed to configure TLS. Check logs for more info.",
            ));
        }
    }
    let tls_port = config
        .get("tls-port")
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(0);
    let unix_path = config
        .get("unixsocket")
        .filter(|p| !p.is_empty())
        .map(String::from);
    // `port 0` turns TCP off when TLS or a Unix socket is configured, as in
    // Redis; alone it asks the system for a free port (tests), where Redis
    // would refuse to start for listening nowhere.
    let tcp = config.port != 0 || (tls_port == 0 && unix_path.is_none());
    let mut listeners = Vec::new();
    let mut listen_addrs = Vec::new();
    let mut tls_addrs = Vec::new();
    for (port, is_tls) in [(config.port, false), (tls_port, true)] {
        if (is_tls && port == 0) || (!is_tls && !tcp) {
            continue;
        }
        let bound = bind_tcp(&config.bind, port).await?;
        for l in bound {
            let a = l.local_addr()?;
            if is_tls {
                tls_addrs.push(a);
                listeners.push(net::Listener::Tls(l));
            } else {
                listen_addrs.push(a);
                listeners.push(net::Listener::Tcp(l));
            }
        }
    }
    if let Some(path) = &unix_path {
        let perm = config
            .get("unixsocketperm")
            .and_then(|p| u32::from_str_radix(p, 8).ok())
            .unwrap_or(0);
        let l = net::bind_unix(path, perm).map_err(|e| {
            std::io::Error::new(e.kind(), format!("Failed opening Unix socket: {e}"))
        })?;
        listeners.push(net::Listener::Unix(l, path.as_str().into()));
    }
    let (cluster, bus_listeners) = match cluster_settings(&config, &listen_addrs) {
        Some(settings) => {
            let cport = settings.bind_cport;
            let c = crate::cluster::Cluster::open(settings).map_err(io_other)?;
            let bus = bind_tcp(&config.bind, cport).await.map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("Failed listening on port {cport} (cluster), aborting: {e}"),
                )
            })?;
            (Some(c), bus)
        }
        None => (None, Vec::new()),
    };
    let streams = Arc::new(crate::stream::Registry::new(
        std::path::Path::new(&config.dir),
        fs_for_streams,
    ));
    streams
        .segment_bytes
        .store(config.stream_segment_bytes, Ordering::Relaxed);
    streams
        .retention_ms
        .store(config.stream_retention_ms, Ordering::Relaxed);
    streams
        .retention_bytes
        .store(config.stream_retention_bytes, Ordering::Relaxed);
    let acl = initial_acl(&config)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // The WAL's write and fsync latencies go to the same monitor.
    let latency: Arc<observe::LatencyMonitor> = Arc::default();
    let durability = Arc::new(Durability::new(
        persist
            .as_ref()
            .map(|p| Box::new(persist::WalSink(p.clone())) as Box<dyn durability::Sink>),
        persist.as_ref().map_or(0, |p| p.opened_at_seq),
        config.appendfsync,
        streams.clone(),
        latency.clone(),
    ));
    let shared = Arc::new(Shared {
        acl: RwLock::new(acl),
        acl_version: AtomicU64::new(0),
        default_nopass: AtomicBool::new(true),
        ks: Mutex::new({
            let mut ks = crate::commands::lua::keyspace();
            // Without persistence nothing consumes effects: do not capture them.
            ks.set_capture(persist.is_some());
            ks
        }),
        config: RwLock::new(config),
        clients: DashMap::new(),
        next_client_id: AtomicU64::new(1),
        stats: ServerStats::default(),
        started: Instant::now(),
        started_unix_ms: now_ms(),
        run_id: crate::random::random_hex(40),
        last_save_unix: AtomicU64::new(now_ms() / 1000),
        shutdown: AtomicBool::new(false),
        shutdown_notify: Notify::new(),
        listen_addrs,
        tls_addrs,
        unix_path,
        tls,
        renames,
        persist,
        durability,
        streams,
        flusher_stop: Arc::new(AtomicBool::new(false)),
        me: std::sync::OnceLock::new(),
        pubsub: pubsub::PubSub::default(),
        observe: observe::Observe::new(latency),
        busy: Default::default(),
        startup_allocated: crate::db::memory::allocated_now(),
        pause: pause::Pause::default(),
        repl: replication::Replication::new(),
        runtime: &NetRuntime,
        cluster,
    });
    let _ = shared.me.set(Arc::downgrade(&shared));
    {
        // Replication's stream: every batch's units (`replication::primary`).
        let me = Arc::downgrade(&shared);
        shared.durability.set_tap(Box::new(move |ks, units| {
            if let Some(s) = me.upgrade() {
                replication::primary::on_units(&s, ks, units);
            }
        }));
    }
    shared.acl_changed();
    {
        let mut ks = shared.ks.lock();
        shared.apply_notify_config(&mut ks);
        shared.apply_evict_config(&mut ks);
    }
    shared.config_changed();
    let mut tasks = Vec::new();
    for l in listeners {
        tasks.push(tokio::spawn(accept_loop(shared.clone(), l)));
    }
    if let Some(p) = shared.persist.clone() {
        let p2 = p.clone();
        let (ks, stats) = match tokio::task::spawn_blocking(move || {
            persist::replay(&p2.wal, crate::commands::lua::keyspace())
        })
        .await
        .map_err(io_other)?
        {
            Ok(x) => x,
            Err(e) => {
                tracing::error!("cannot load the WAL: {e}");
                shared.request_shutdown();
                for t in tasks {
                    let _ = t.await;
                }
                return Err(io_other(e));
            }
        };
        // The base was read in full: older ones are no longer a fallback.
        if let Err(e) = p.wal.remove_older_bases() {
            tracing::warn!("cannot remove obsolete bases: {e}");
        }
        let mut ks = ks;
        let reg = shared.streams.clone();
        let attached = tokio::task::spawn_blocking(move || reg.attach(&mut ks).map(|_| ks))
            .await
            .map_err(io_other)?;
        let ks = match attached {
            Ok(ks) => ks,
            Err(e) => {
                tracing::error!("cannot open the streams: {e}");
                shared.request_shutdown();
                for t in tasks {
                    let _ = t.await;
                }
                return Err(io_other(e));
            }
        };
        let keys = ks.total_keys();
        shared
            .observe
            .keys_loaded
            .store(keys as u64, Ordering::Relaxed);
        {
            let mut guard = shared.ks.lock();
            *guard = ks;
            shared.apply_notify_config(&mut guard);
            shared.apply_evict_config(&mut guard);
            guard.refresh_clock();
            guard.reset_access_info();
        }
        p.loading.store(false, Ordering::SeqCst);
        tracing::info!(
            "DB loaded from the WAL: {} base chunks and {} units, {} bytes, {} keys, in {:.3} seconds",
            stats.base_chunks,
            stats.units,
            stats.bytes,
            keys,
            stats.seconds
        );
        drop(p);
        shared
            .durability
            .spawn_flusher(shared.flusher_stop.clone())?;
    } else {
        // No WAL, so no key survives a restart: every stream dir is stale.
        let reg = shared.streams.clone();
        let mut ks = crate::commands::lua::keyspace();
        tokio::task::spawn_blocking(move || reg.attach(&mut ks))
            .await
            .map_err(io_other)?
            .map_err(io_other)?;
    }
    shared
        .observe
        .startup_memory
        .store(crate::db::memory::allocated_now(), Ordering::Relaxed);
    for a in &shared.listen_addrs {
        tracing::info!("Ready to accept connections tcp on {a}");
    }
    for a in &shared.tls_addrs {
        tracing::info!("Ready to accept connections tls on {a}");
    }
    if let Some(p) = &shared.unix_path {
        tracing::info!("Ready to accept connections unix on {p}");
    }
    if let Some(c) = &shared.cluster {
        shared.ks.lock().dbs[0].enable_slot_index();
        let weak = Arc::downgrade(&shared);
        c.set_publish_sink(Box::new(move |sharded, channel, message| {
            if let Some(sh) = weak.upgrade() {
                sh.pubsub.publish_from_cluster(sharded, channel, message);
            }
        }));
        for a in &bus_listeners {
            if let Ok(a) = a.local_addr() {
                tracing::info!("Cluster bus listening on {a}");
            }
        }
        let handles = c.start(bus_listeners);
        let (sh, c) = (shared.clone(), c.clone());
        tasks.push(tokio::spawn(async move {
            sh.shutdown_requested().await;
            c.stop();
            for h in handles {
                h.abort();
            }
        }));
    }
    tasks.push(tokio::spawn(cron(shared.clone())));
    // The replication position of the last clean shutdown is taken (and
    // its file removed) whatever the role, so a stale one is never used
    // after a later crash; a primary keeps its id and offset as Redis does
    // from its RDB's aux fields.
    let cached = replica::load_position(&shared);
    // `replicaof host port` in the config: replicate from the start.
    let replicaof = shared
        .config
        .read()
        .get("replicaof")
        .unwrap_or("")
        .to_string();
    if let Some(c) = &shared.cluster {
        // A replica in nodes.conf replicates its primary from the start.
        let mut ks = shared.ks.lock();
        cluster_repl::sync(&shared, c, &mut ks, Some(cached));
    } else if let Some((host, port)) = replica::parse_replicaof(&replicaof) {
        replica::start(&shared, host, port, cached);
    }
    Ok(ServerHandle { shared, tasks })
}

/// Deletes the keys of the slots this node lost to another node's newer
/// configuration (Redis's `delKeysInSlot` in `clusterUpdateSlotsConfigWith`).
fn delete_lost_slots(c: &crate::cluster::Cluster, ks: &mut Keyspace) {
    let dirty = std::mem::take(&mut c.state.lock().dirty_slots);
    let now = ks.cached_now_ms();
    for slot in dirty {
        let keys = ks.dbs[0]
            .slot_index
            .as_ref()
            .map_or_else(Vec::new, |ix| ix.keys(slot, usize::MAX));
        for k in keys {
            ks.delete(0, &k, now);
        }
    }
}

/// The cluster's settings from the configuration; None without
/// `cluster-enabled yes`. The client port is the one bound (a `port 0`
/// test server's real port), the bus port `cluster-port` or that plus
/// 10000, as Redis's `clusterInit`.
pub fn cluster_settings(config: &Config, bound: &[SocketAddr]) -> Option<crate::cluster::Settings> {
    if config.get("cluster-enabled") != Some("yes") {
        return None;
    }
    let num = |k: &str| {
        config
            .get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let port = bound.first().map_or(config.port, |a| a.port());
    let announced_port = match num("cluster-announce-port") {
        0 => port,
        p => p as u16,
    };
    let cport = match num("cluster-port") {
        0 => port.wrapping_add(10000),
        p => p as u16,
    };
    let announced_cport = match num("cluster-announce-bus-port") {
        0 => cport,
        p => p as u16,
    };
    let mut settings = cluster_runtime_settings(config);
    settings.port = announced_port;
    settings.cport = announced_cport;
    settings.bind_cport = cport;
    settings.config_file = std::path::Path::new(&config.dir)
        .join(config.get("cluster-config-file").unwrap_or("nodes.conf"));
    Some(settings)
}

/// Makes the open-file limit hold `maxclients` (Redis's
/// `adjustOpenFilesLimit`, with its log lines), lowering `maxclients` when
/// the limit cannot be raised.
fn fit_maxclients(mut config: Config) -> std::io::Result<Config> {
    use crate::fdlimit::{adjust, Adjusted, RESERVED_FDS};
    let asked = config.maxclients as u64;
    match adjust(asked) {
        Adjusted::Enough => {}
        Adjusted::Raised { from, to } => tracing::info!(
            "Increased maximum number of open files to {to} (it was originally set to {from})."
        ),
        Adjusted::Reduced {
            limit,
            maxclients,
            error,
        } => {
            let wanted = asked + RESERVED_FDS;
            tracing::warn!(
                "You requested maxclients of {asked} requiring at least {wanted} max file descriptors."
            );
            tracing::warn!(
                "Server can't set maximum open files to {wanted} because of OS error: {error}."
            );
            tracing::warn!(
                "Current maximum open files is {limit}. maxclients has been reduced to {maxclients} to compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'."
            );
            config
                .set_startup("maxclients", &maxclients.to_string())
                .map_err(io_other)?;
        }
        Adjusted::TooLow { limit, wanted } => {
            return Err(io_other(format!(
                "Your current 'ulimit -n' of {limit} is not enough for the server to start. Please increase your open file limit to at least {wanted}."
            )))
        }
    }
    Ok(config)
}

/// The pause after a failed `accept` (EMFILE, ENFILE, ENOBUFS): doubles
/// from 10 ms to 1 s while failures go on, back to none after a success.
#[derive(Default)]
struct AcceptBackoff {
    failures: u32,
    last_log: Option<Instant>,
}

impl AcceptBackoff {
    fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let ms = 10u64 << (self.failures - 1).min(7);
        Duration::from_millis(ms.min(1000))
    }

    fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// At most one warning a second.
    fn should_log(&mut self) -> bool {
        let now = Instant::now();
        if self
            .last_log
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return false;
        }
        self.last_log = Some(now);
        true
    }
}

/// Binds `port` on every address of `bind` (`-addr`: optional, as Redis).
async fn bind_tcp(bind: &str, port: u16) -> std::io::Result<Vec<TcpListener>> {
    let mut listeners = Vec::new();
    for addr in bind.split_whitespace() {
        let (optional, addr) = match addr.strip_prefix('-') {
            Some(a) => (true, a),
            None => (false, addr),
        };
        let host = if addr.contains(':') {
            format!("[{addr}]:{port}")
        } else {
            format!("{addr}:{port}")
        };
        match TcpListener::bind(&host).await {
            Ok(l) => listeners.push(l),
            Err(e) if optional => tracing::warn!("could not bind {host}: {e}"),
            Err(e) => return Err(e),
        }
    }
    if listeners.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no address to bind",
        ));
    }
    Ok(listeners)
}

/// One accepted connection, before any TLS handshake.
enum Accepted {
    Tcp(tokio::net::TcpStream, SocketAddr),
    Unix(tokio::net::UnixStream),
}

async fn accept_one(l: &net::Listener) -> std::io::Result<Accepted> {
    match l {
        net::Listener::Tcp(l) | net::Listener::Tls(l) => {
            let (s, a) = l.accept().await?;
            Ok(Accepted::Tcp(s, a))
        }
        net::Listener::Unix(l, _) => Ok(Accepted::Unix(l.accept().await?.0)),
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: net::Listener) {
    let mut backoff = AcceptBackoff::default();
    loop {
        let accepted = tokio::select! {
            r = accept_one(&listener) => r,
            _ = shared.shutdown_requested() => return,
        };
        let accepted = match accepted {
            Ok(x) => {
                backoff.succeeded();
                x
            }
            Err(e) => {
                // EMFILE and friends: the pending connection stays queued;
                // back off (up to a second) instead of spinning, and log
                // once per pause, not per attempt.
                let pause = backoff.failed();
                if backoff.should_log() {
                    tracing::warn!(
                        "Accepting client connection failed: {e} (retrying in {} ms)",
                        pause.as_millis()
                    );
                }
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = shared.shutdown_requested() => return,
                }
                continue;
            }
        };
        shared
            .stats
            .total_connections_received
            .fetch_add(1, Ordering::Relaxed);
        let shared2 = shared.clone();
        match (accepted, &listener) {
            (Accepted::Unix(stream), net::Listener::Unix(_, path)) => {
                let fd = {
                    use std::os::fd::AsRawFd;
                    stream.as_raw_fd()
                };
                let a = net::PeerAddr::Unix(path.clone());
                // Protected mode is about remote peers: never a Unix socket.
                tokio::spawn(admit(shared2, stream, a.clone(), a, fd, false));
            }
            (Accepted::Tcp(stream, addr), l) => {
                let _ = stream.set_nodelay(true);
                let denied = protected_mode_denies_for(
                    &shared.config.read(),
                    shared.default_nopass.load(Ordering::Relaxed),
                    addr.ip(),
                );
                let laddr = stream.local_addr().unwrap_or(addr);
                let fd = {
                    use std::os::fd::AsRawFd;
                    stream.as_raw_fd()
                };
                if let net::Listener::Tls(_) = l {
                    let Some(acceptor) = shared.tls.acceptor() else {
                        continue;
                    };
                    tokio::spawn(async move {
                        match acceptor.accept(stream).await {
                            Ok(tls) => {
                                admit(shared2, tls, addr.into(), laddr.into(), fd, denied).await
                            }
                            // Redis's clientAcceptHandler line.
                            Err(e) => tracing::warn!(
                                "Error accepting a client connection: {e} (addr={addr} laddr={laddr})"
                            ),
                        }
                    });
                } else {
                    tokio::spawn(admit(
                        shared2,
                        stream,
                        addr.into(),
                        laddr.into(),
                        fd,
                        denied,
                    ));
                }
            }
            (Accepted::Unix(_), _) => {}
        }
    }
}

/// Refuses a connection over `maxclients` or denied by protected mode, in
/// Redis's order (the client limit in acceptCommonHandler, then protected
/// mode in clientAcceptHandler), or serves it.
async fn admit<S: net::ClientStream>(
    shared: Arc<Shared>,
    stream: S,
    addr: net::PeerAddr,
    laddr: net::PeerAddr,
    fd: i32,
    denied: bool,
) {
    let maxclients = shared.config.read().maxclients;
    let refusal = if shared.clients.len() >= maxclients {
        Some("ERR max number of clients reached")
    } else if denied {
        Some(PROTECTED_MODE_DENIED)
    } else {
        None
    };
    if let Some(msg) = refusal {
        shared
            .stats
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        connection::refuse(stream, msg).await;
        return;
    }
    connection::serve(shared, stream, addr, laddr, fd).await;
}

/// Redis 7.0's reply to a client refused by protected mode, byte for byte
/// (networking.c, `clientAcceptHandler`), typo included.
pub const PROTECTED_MODE_DENIED: &str = "DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.";

/// Protected mode as Redis 7.0 applies it: on, no password for the default
/// user, and a peer that is not loopback (127.0.0.0/8, ::1, or an
/// IPv4-mapped loopback address), whatever `bind` says.
pub fn protected_mode_denies(config: &Config, peer: std::net::IpAddr) -> bool {
    protected_mode_denies_for(config, config.requirepass.is_none(), peer)
}

/// `protected_mode_denies` with the default user's state (`nopass`) as
/// the ACL has it now.
pub fn protected_mode_denies_for(
    config: &Config,
    default_nopass: bool,
    peer: std::net::IpAddr,
) -> bool {
    let loopback = match peer {
        std::net::IpAddr::V4(a) => a.is_loopback(),
        std::net::IpAddr::V6(a) => {
            a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    config.protected_mode && default_nopass && !loopback
}

/// `maxmemory-clients` (Redis 7.0's `evictClients`): while the normal and
/// pubsub clients' memory (`ClientHandle::mem`) reaches the limit (bytes,
/// or a percentage of `maxmemory`), the largest client not protected by
/// CLIENT NO-EVICT is closed. Run from the cron.
pub fn evict_clients(shared: &Shared) {
    let limit = {
        let c = shared.config.read();
        let v = c.get("maxmemory-clients").unwrap_or("0");
        match v.strip_suffix('%') {
            Some(pct) => {
                let maxmem = c
                    .get("maxmemory")
                    .and_then(|m| m.parse::<u64>().ok())
                    .unwrap_or(0);
                pct.parse::<u64>().unwrap_or(0) * maxmem / 100
            }
            None => v.parse::<u64>().unwrap_or(0),
        }
    };
    if limit == 0 {
        return;
    }
    let mut clients: Vec<(usize, Arc<ClientHandle>)> = shared
        .clients
        .iter()
        .map(|c| (c.mem(), c.value().clone()))
        .filter(|(_, c)| !c.is_killed())
        .collect();
    let mut total: u64 = clients.iter().map(|(m, _)| *m as u64).sum();
    clients.sort_by_key(|(m, _)| std::cmp::Reverse(*m));
    for (mem, c) in clients {
        // Closing a client that holds nothing frees nothing.
        if total < limit || mem == 0 {
            break;
        }
        if c.meta.lock().no_evict {
            continue;
        }
        tracing::info!(
            "Evicting client: {}",
            crate::commands::args::client_info_line(&c)
        );
        c.kill();
        shared.stats.evicted_clients.fetch_add(1, Ordering::Relaxed);
        total -= mem as u64;
    }
}

/// The server's periodic work (Redis's `serverCron`): the slow active
/// expiry cycle, `hz` times a second.
async fn cron(shared: Arc<Shared>) {
    loop {
        let (hz, effort) = {
            let c = shared.config.read();
            (c.hz.max(1), c.active_expire_effort)
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(1000 / u64::from(hz))) => {}
            _ = shared.shutdown_requested() => return,
        }
        if shared.is_loading() {
            continue;
        }
        replication::primary::cron(&shared);
        {
            let st = &shared.stats;
            shared.observe.track_metrics(
                now_ms(),
                st.total_commands_processed.load(Ordering::Relaxed),
                st.total_net_input_bytes.load(Ordering::Relaxed),
                st.total_net_output_bytes.load(Ordering::Relaxed),
            );
        }
        let ticket = {
            let mut ks = shared.lock_ks();
            ks.refresh_clock();
            evict_clients(&shared);
            crate::commands::migrate::close_idle();
            dispatch::sync_expire_role(&shared, &mut ks, false);
            if !shared.pause.writes_paused() {
                let lat = &shared.observe.latency;
                lat.timed("expire-cycle", || {
                    active_expire_cycle(&mut ks, CycleKind::Slow, hz, effort, now_ms)
                });
                lat.timed("eviction-cycle", || {
                    ks.continue_evictions(&|| shared.mem_not_counted_for_evict())
                });
            }
            if let Some(c) = &shared.cluster {
                delete_lost_slots(c, &mut ks);
                cluster_repl::sync(&shared, c, &mut ks, None);
            }
            replication::primary::propagate_retention(&shared, &mut ks);
            let ticket = shared.durability.enqueue(&mut ks, Vec::new());
            tracking::cron(&shared, &mut ks);
            shared.publish_pending_notifications(&mut ks);
            ticket
        };
        if let Err(e) = shared.durability.write(ticket) {
            tracing::error!("cannot log expired keys: {}", e.reason);
        }
        if let Some(p) = &shared.persist {
            let (pct, min) = {
                let c = shared.config.read();
                (c.auto_aof_rewrite_percentage, c.auto_aof_rewrite_min_size)
            };
            let scheduled = p.rewrite_scheduled.load(Ordering::Relaxed);
            if !p.rewrite_in_progress.load(Ordering::Relaxed)
                && (scheduled || persist::rewrite_due(p, pct, min))
            {
                if let Err(e) = shared.start_rewrite() {
                    tracing::warn!("cannot start a rewrite: {e}");
                }
            }
        }
    }
}
