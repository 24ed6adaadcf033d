//! The transports a client connects through (plain TCP, TLS over TCP, a
//! Unix socket) and what the connection loop needs from them: one stream
//! trait, the peer and local addresses as CLIENT LIST prints them, and the
//! listeners bound from `bind`/`port`, `tls-port` and `unixsocket`.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A byte stream a connection is served over. The connection loop is
/// generic over it, so plain TCP pays nothing for TLS.
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> ClientStream for T {}

/// A peer or local address as Redis prints it (CLIENT LIST `addr`,
/// `laddr`, CLIENT KILL ADDR): `ip:port`, or `path:0` for a Unix socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerAddr {
    Tcp(SocketAddr),
    Unix(Arc<str>),
}

impl PeerAddr {
    pub fn is_unix(&self) -> bool {
        matches!(self, PeerAddr::Unix(_))
    }

    /// Redis's `islocalClient`: a Unix socket, or a peer whose address
    /// prints as `127.0.0.1` or `::1` (not the rest of 127/8, not
    /// `::ffff:127.0.0.1`).
    pub fn is_local(&self) -> bool {
        match self {
            PeerAddr::Tcp(a) => match a.ip() {
                std::net::IpAddr::V4(ip) => ip == std::net::Ipv4Addr::LOCALHOST,
                std::net::IpAddr::V6(ip) => ip == std::net::Ipv6Addr::LOCALHOST,
            },
            PeerAddr::Unix(_) => true,
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> Self {
        PeerAddr::Tcp(a)
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(a) => write!(f, "{a}"),
            PeerAddr::Unix(p) => write!(f, "{p}:0"),
        }
    }
}

/// Writes all of `buf` and flushes (a TLS stream may keep records
/// buffered until flushed; for TCP and Unix sockets the flush is free).
/// False when the connection is gone.
pub async fn send<S: ClientStream>(stream: &mut S, buf: &[u8]) -> bool {
    stream.write_all(buf).await.is_ok() && stream.flush().await.is_ok()
}

/// Reads what is available without waiting: `WouldBlock` when nothing is.
/// (The connection polls again with its real waker before it sleeps, so
/// polling once with a no-op waker here loses no wake-up.)
pub fn try_read_buf<S: ClientStream>(
    stream: &mut S,
    buf: &mut bytes::BytesMut,
) -> std::io::Result<usize> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    let mut fut = std::pin::pin!(stream.read_buf(buf));
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(r) => r,
        Poll::Pending => Err(std::io::ErrorKind::WouldBlock.into()),
    }
}

/// What a listener produces.
pub enum Listener {
    Tcp(tokio::net::TcpListener),
    /// TCP accepted, then a TLS handshake with the server's current
    /// certificates (`tls::TlsState`).
    Tls(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener, Arc<str>),
}

/// Creates the Unix socket listener (`unixsocket`, `unixsocketperm`), as
/// Redis's `anetUnixServer`: a stale socket file is removed first, the
/// permissions are set when `perm` is not 0.
pub fn bind_unix(path: &str, perm: u32) -> std::io::Result<tokio::net::UnixListener> {
    // Redis unlinks whatever is there (a socket left by a killed server).
    let _ = std::fs::remove_file(path);
    let l = tokio::net::UnixListener::bind(path)?;
    if perm != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))?;
    }
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_print_as_redis() {
        let a: PeerAddr = "127.0.0.1:6379".parse::<SocketAddr>().unwrap().into();
        assert_eq!(a.to_string(), "127.0.0.1:6379");
        assert!(!a.is_unix());
        let u = PeerAddr::Unix("/tmp/redis.sock".into());
        assert_eq!(u.to_string(), "/tmp/redis.sock:0");
        assert!(u.is_unix());
    }
}
