//! Redis Cluster: the node table and slot map (`nodes`), the
//! bus's wire format (`bus`), what the node does with bus messages and on
//! its cron (`gossip`), the bus sockets (`net`), hash slots and the
//! per-slot key index (`slots`), replica elections (`failover`), manual
//! failover (`manual`), replica order and replica migration (`migration`).
//!
//! The state sits behind one mutex (`Cluster::state`), taken by the bus
//! tasks and by commands. Lock order: the keyspace lock, then this one;
//! nothing here takes the keyspace lock. What needs the keyspace (deleting
//! the keys of a slot this node lost) is left in `State::dirty_slots` for
//! the server's cron. This module imports no other of redlog's modules
//! but `storage` (nodes.conf's atomic write).

pub mod bus;
pub mod failover;
pub mod gossip;
pub mod manual;
pub mod migration;
pub mod net;
pub mod nodes;
pub mod slots;

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

pub use nodes::{Settings, State};

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Delivers a PUBLISH / PUBLISHSHARD received on the bus to local
/// subscribers (set by the server: `(sharded, channel, message)`).
pub type PublishSink = Box<dyn Fn(bool, &[u8], &[u8]) + Send + Sync>;

pub struct Cluster {
    pub state: Mutex<State>,
    node_timeout: AtomicU64,
    stopped: AtomicBool,
    publish: std::sync::OnceLock<PublishSink>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

/// Why the cluster state could not be opened at startup (Redis's
/// `clusterInit` / `clusterLoadConfig` messages).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("Unrecoverable error: corrupted cluster config file (not UTF-8).")]
    NotUtf8,
    #[error("Loading the cluster node config from {}: {err}", path.display())]
    Read {
        path: std::path::PathBuf,
        err: std::io::Error,
    },
    #[error("Fatal: can't update cluster config file {}: {err}", path.display())]
    Write {
        path: std::path::PathBuf,
        err: crate::storage::Error,
    },
    #[error("Unrecoverable error: corrupted cluster config file {}: {err}", path.display())]
    Corrupt {
        path: std::path::PathBuf,
        err: nodes::BadConfig,
    },
}

impl Cluster {
    /// Loads `settings.config_file` (or starts a new node and writes it),
    /// as Redis's `clusterInit`.
    pub fn open(settings: Settings) -> Result<Arc<Cluster>, OpenError> {
        let now = now_ms();
        let path = settings.config_file.clone();
        let text = match std::fs::read(&path) {
            Ok(b) => String::from_utf8(b).map_err(|_| OpenError::NotUtf8)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(OpenError::Read { path, err }),
        };
        let timeout = settings.node_timeout;
        let mut st = match State::load_config(&text, settings.clone(), now) {
            Ok(Some(st)) => {
                tracing::info!(
                    "Node configuration loaded, I'm {}",
                    nodes::name_str(&st.myself)
                );
                st
            }
            Ok(None) => {
                let mut st = State::new(settings, now);
                tracing::info!(
                    "No cluster configuration found, I'm {}",
                    nodes::name_str(&st.myself)
                );
                st.save_config_as(true).map_err(|err| OpenError::Write {
                    path: path.clone(),
                    err,
                })?;
                st
            }
            Err(err) => return Err(OpenError::Corrupt { path, err }),
        };
        st.first_update_call = 0;
        Ok(Arc::new(Cluster {
            state: Mutex::new(st),
            node_timeout: AtomicU64::new(timeout),
            stopped: AtomicBool::new(false),
            publish: std::sync::OnceLock::new(),
        }))
    }

    pub fn node_timeout(&self) -> u64 {
        self.node_timeout.load(Ordering::Relaxed)
    }

    /// Applies changed settings (CONFIG SET).
    pub fn apply_settings(&self, f: impl FnOnce(&mut Settings)) {
        let mut st = self.state.lock();
        f(&mut st.settings);
        self.node_timeout
            .store(st.settings.node_timeout, Ordering::Relaxed);
        let (hostname, ip) = (
            st.settings.announce_hostname.clone(),
            st.settings.announce_ip.clone(),
        );
        let me = st.me_mut();
        me.hostname = hostname;
        if !ip.is_empty() {
            me.ip = ip;
        }
    }

    pub fn set_publish_sink(&self, sink: PublishSink) {
        let _ = self.publish.set(sink);
    }

    fn deliver_publish(&self, shard: bool, channel: &[u8], message: &[u8]) {
        if let Some(f) = self.publish.get() {
            f(shard, channel, message);
        }
    }

    /// Sends a PUBLISH to the other nodes (`clusterPropagatePublish`), or
    /// a PUBLISHSHARD to the other nodes of this node's shard: its
    /// primary and that primary's replicas (`clusterPropagatePublishShard`).
    pub fn propagate_publish(&self, shard: bool, channel: &[u8], message: &[u8]) {
        let mut st = self.state.lock();
        let kind = if shard {
            bus::PUBLISHSHARD
        } else {
            bus::PUBLISH
        };
        let me = st.me();
        let master = match me.replicaof {
            Some(m) if me.is_slave() => m,
            _ => st.myself,
        };
        let bytes = bus::encode(&bus::Message {
            header: st.header(kind),
            body: bus::Body::Publish {
                channel: channel.to_vec(),
                message: message.to_vec(),
            },
        });
        let links: Vec<u64> = st
            .nodes
            .values()
            .filter(|n| n.flags & (nodes::flags::MYSELF | nodes::flags::HANDSHAKE) == 0)
            .filter(|n| !shard || n.name == master || (n.is_slave() && n.replicaof == Some(master)))
            .filter_map(|n| n.link)
            .collect();
        for l in links {
            let sent = st
                .links
                .get(&l)
                .and_then(|l| l.tx.as_ref())
                .is_some_and(|tx| tx.send(bytes.clone()).is_ok());
            if sent {
                st.stats_sent[usize::from(kind)] += 1;
            }
        }
    }

    /// Starts the bus: the listener and the cron.
    pub fn start(
        self: &Arc<Self>,
        listeners: Vec<tokio::net::TcpListener>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        for l in listeners {
            tasks.push(tokio::spawn(net::accept_loop(self.clone(), l)));
        }
        tasks.push(tokio::spawn(net::cron_loop(self.clone())));
        tasks
    }

    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let mut st = self.state.lock();
        st.links.clear();
        for n in st.nodes.values_mut() {
            n.link = None;
            n.inbound_link = None;
        }
    }

    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}
