//! `supervised systemd|upstart|auto|no`: telling a service manager where
//! the server is in its life, as redis-server does.
//!
//! systemd: datagrams to `$NOTIFY_SOCKET` (a path, or `@name` in the
//! abstract namespace) in sd_notify's text protocol: `STATUS=Redis is
//! loading...` at start, `STATUS=Ready to accept connections` then
//! `READY=1` once commands are served, `STOPPING=1` at shutdown. One small
//! datagram each: no libsystemd. upstart: the server stops itself with
//! SIGSTOP once ready (upstart's `expect stop`) and unsets `$UPSTART_JOB`.
//! `auto` picks systemd when `$NOTIFY_SOCKET` is set, upstart when
//! `$UPSTART_JOB` is.

use crate::config::Config;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    None,
    Systemd,
    Upstart,
}

/// The supervision `supervised` asks for, in this environment.
pub fn mode(config: &Config) -> Mode {
    match config.get("supervised").unwrap_or("no") {
        "systemd" => Mode::Systemd,
        "upstart" => Mode::Upstart,
        "auto" => {
            if std::env::var_os("UPSTART_JOB").is_some() {
                Mode::Upstart
            } else if std::env::var_os("NOTIFY_SOCKET").is_some() {
                Mode::Systemd
            } else {
                Mode::None
            }
        }
        _ => Mode::None,
    }
}

/// Sends one sd_notify message to `$NOTIFY_SOCKET`. Failures are logged
/// with Redis's texts (a missing socket is one); they never stop the
/// server.
pub fn notify(msg: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        tracing::warn!("systemd supervision error: NOTIFY_SOCKET not found!");
        return;
    };
    if let Err(e) = send(&path.to_string_lossy(), msg) {
        tracing::warn!("systemd supervision error: sd_notify: {e}");
    }
}

/// One datagram to the socket at `path` (`@name`: abstract namespace).
pub fn send(path: &str, msg: &str) -> std::io::Result<()> {
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let sock = UnixDatagram::unbound()?;
    let addr = match path.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())?
        }
        None => SocketAddr::from_pathname(path)?,
    };
    sock.send_to_addr(msg.as_bytes(), &addr)?;
    Ok(())
}

/// At start, before loading (Redis's `redisSupervisedSystemd`).
pub fn starting(mode: Mode) {
    if mode == Mode::Systemd {
        tracing::info!("Supervised by systemd. Please make sure you set appropriate values for TimeoutStartSec and TimeoutStopSec in your service unit.");
        notify("STATUS=Redis is loading...\n");
    }
}

/// Once the server accepts commands.
pub fn ready(mode: Mode) {
    match mode {
        Mode::Systemd => {
            notify("STATUS=Ready to accept connections\n");
            notify("READY=1\n");
        }
        Mode::Upstart => {
            // Redis's `redisSupervisedUpstart`.
            std::env::remove_var("UPSTART_JOB");
            tracing::info!("supervised by upstart, will stop to signal readiness.");
            // SAFETY: raising a signal in our own process.
            unsafe {
                libc::raise(libc::SIGSTOP);
            }
        }
        Mode::None => {}
    }
}

/// When the shutdown starts.
pub fn stopping(mode: Mode) {
    if mode == Mode::Systemd {
        notify("STOPPING=1\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), "READY=1\n").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\n");
        assert!(send(dir.path().join("none").to_str().unwrap(), "x").is_err());
    }

    #[test]
    fn abstract_socket_names() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("redlog-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = std::os::unix::net::UnixDatagram::bind_addr(&addr).unwrap();
        send(&format!("@{name}"), "STOPPING=1\n").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1\n");
    }
}
