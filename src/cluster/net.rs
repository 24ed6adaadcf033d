//! The cluster bus's sockets: the listener on the bus port, one task per
//! link (read framed messages, hand them to `State::process` under the
//! lock; write what the state queued on the link's channel), and the cron
//! task (`State::cron` every 100 ms, then the connections it asked for).

use super::bus;
use super::gossip::Connect;
use super::Cluster;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;

/// Accepts bus connections until the listener fails.
pub async fn accept_loop(cluster: Arc<Cluster>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let now = super::now_ms();
                let (id, rx) = cluster.state.lock().new_link(None, true, now);
                tokio::spawn(run_link(cluster.clone(), id, stream, rx));
            }
            Err(e) => {
                tracing::warn!("Error accepting cluster node: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Runs `State::cron` every 100 ms and connects the links it asks for.
pub async fn cron_loop(cluster: Arc<Cluster>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tick.tick().await;
        if cluster.stopped() {
            return;
        }
        let connects = {
            let now = super::now_ms();
            let mut st = cluster.state.lock();
            let c = st.cron(now);
            st.before_sleep(now);
            c
        };
        for c in connects {
            tokio::spawn(connect(cluster.clone(), c));
        }
    }
}

async fn connect(cluster: Arc<Cluster>, c: Connect) {
    let addr = format!("{}:{}", bracket(&c.ip), c.cport);
    let res = tokio::time::timeout(
        std::time::Duration::from_millis(cluster.node_timeout().max(1000)),
        TcpStream::connect(&addr),
    )
    .await;
    match res {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            {
                let mut st = cluster.state.lock();
                if !st.links.contains_key(&c.id) {
                    return;
                }
                st.link_connected(c.id, super::now_ms());
            }
            run_link(cluster, c.id, stream, c.rx).await;
        }
        _ => {
            tracing::debug!("Unable to connect to Cluster Node [{}]:{}", c.ip, c.cport);
            cluster.state.lock().link_failed(c.id, super::now_ms());
        }
    }
}

fn bracket(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}

/// One link: reads messages until the socket or a message fails or the
/// state frees the link (its channel closes); writes queued messages.
async fn run_link(
    cluster: Arc<Cluster>,
    id: u64,
    stream: TcpStream,
    mut rx: UnboundedReceiver<Vec<u8>>,
) {
    let peer = stream
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let local = stream
        .local_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let (mut rd, mut wr) = stream.into_split();
    let writer = async {
        while let Some(buf) = rx.recv().await {
            if wr.write_all(&buf).await.is_err() {
                return;
            }
        }
    };
    let reader = async {
        let mut buf = Vec::new();
        loop {
            let mut first = [0u8; 8];
            if rd.read_exact(&mut first).await.is_err() {
                return;
            }
            let len = match bus::frame_len(&first) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!("Bad message on the cluster bus ({e}): closing the link");
                    return;
                }
            };
            buf.clear();
            buf.extend_from_slice(&first);
            buf.resize(len, 0);
            if rd.read_exact(&mut buf[8..]).await.is_err() {
                return;
            }
            let msg = match bus::decode(&buf) {
                Ok(m) => m,
                Err(e) => {
                    // Redis drops such a message and keeps the link.
                    tracing::warn!("Dropping an invalid cluster bus message: {e}");
                    continue;
                }
            };
            let publish = match &msg.body {
                bus::Body::Publish { channel, message } => Some((
                    msg.header.kind == bus::PUBLISHSHARD,
                    channel.clone(),
                    message.clone(),
                )),
                _ => None,
            };
            let known_sender;
            {
                let now = super::now_ms();
                let mut st = cluster.state.lock();
                known_sender = st.nodes.contains_key(&msg.header.sender);
                let alive = st.process(id, msg, &peer, &local, now);
                st.before_sleep(now);
                if !alive {
                    return;
                }
            }
            if let (Some((shard, ch, m)), true) = (publish, known_sender) {
                cluster.deliver_publish(shard, &ch, &m);
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
    cluster.state.lock().free_link(id);
}
