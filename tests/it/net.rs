//! Transports: TLS (certificates made at run time with rcgen, client
//! certificates, CONFIG SET of the TLS parameters) and the Unix socket.

use crate::common;

use common::{free_port, resp, start_with};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A CA, a server certificate for 127.0.0.1/localhost and a client
/// certificate, written as PEM files in a fresh directory.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("redlog-tls-")
            .tempdir()
            .unwrap()
            .keep();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "redlog test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
        for (name, sans) in [
            (
                "server",
                vec!["localhost".to_string(), "127.0.0.1".to_string()],
            ),
            ("client", vec!["client.test".to_string()]),
        ] {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(sans)
                .unwrap()
                .signed_by(&key, &ca)
                .unwrap();
            std::fs::write(dir.join(format!("{name}.crt")), cert.pem()).unwrap();
            std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
        }
        Pki { dir }
    }

    fn path(&self, f: &str) -> String {
        self.dir.join(f).to_str().unwrap().to_string()
    }

    /// A TLS client trusting the CA, presenting the client certificate
    /// when `with_cert`.
    fn connector(&self, with_cert: bool) -> tokio_rustls::TlsConnector {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(self.dir.join("ca.crt")).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let b = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let cfg = if with_cert {
            let certs = CertificateDer::pem_file_iter(self.dir.join("client.crt"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = PrivateKeyDer::from_pem_file(self.dir.join("client.key")).unwrap();
            b.with_client_auth_cert(certs, key).unwrap()
        } else {
            b.with_no_client_auth()
        };
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
    }
}

/// Sends one request and reads until the reply holds `\r\n` (or the
/// stream ends / fails). The bytes read, or None on a stream error.
async fn roundtrip<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    args: &[&[u8]],
) -> Option<Vec<u8>> {
    s.write_all(&resp(args)).await.ok()?;
    s.flush().await.ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return if buf.is_empty() { None } else { Some(buf) };
        }
        buf.extend_from_slice(&chunk[..n]);
        if is_complete(&buf) {
            return Some(buf);
        }
    }
}

/// True when `buf` holds one whole simple reply, error, integer or bulk.
fn is_complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    match buf[0] {
        b'$' => {
            let n: i64 = std::str::from_utf8(&buf[1..end]).unwrap().parse().unwrap();
            n < 0 || buf.len() >= end + 2 + n as usize + 2
        }
        b'*' => {
            // CONFIG GET of one name: two bulks.
            buf.windows(2).filter(|w| w == b"\r\n").count() >= 5
        }
        _ => true,
    }
}

async fn tls_connect(
    pki: &Pki,
    port: u16,
    with_cert: bool,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    pki.connector(with_cert)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

#[tokio::test]
async fn tls_clients_need_a_certificate_when_auth_clients_is_yes() {
    let pki = Pki::new();
    let port = free_port();
    let (cert, key, ca) = (
        pki.path("server.crt"),
        pki.path("server.key"),
        pki.path("ca.crt"),
    );
    let s = start_with(&[
        ("tls-port", &port.to_string()),
        ("tls-cert-file", &cert),
        ("tls-key-file", &key),
        ("tls-ca-cert-file", &ca),
    ])
    .await;
    // `port 0` with a TLS port: no plain TCP listener, as Redis.
    assert!(s.shared().listen_addrs.is_empty());
    assert_eq!(s.tls_addr().map(|a| a.port()), Some(port));

    let mut c = tls_connect(&pki, port, true).await.expect("handshake");
    assert_eq!(roundtrip(&mut c, &[b"PING"]).await.unwrap(), b"+PONG\r\n");
    assert_eq!(
        roundtrip(&mut c, &[b"SET", b"k", b"v"]).await.unwrap(),
        b"+OK\r\n"
    );
    assert_eq!(
        roundtrip(&mut c, &[b"GET", b"k"]).await.unwrap(),
        b"$1\r\nv\r\n"
    );
    let info = roundtrip(&mut c, &[b"CLIENT", b"INFO"]).await.unwrap();
    let info = String::from_utf8(info).unwrap();
    assert!(info.contains(&format!("laddr=127.0.0.1:{port} ")), "{info}");

    // Without a client certificate the server ends the handshake (TLS 1.3
    // clients learn it at their first read).
    let refused = match tls_connect(&pki, port, false).await {
        Err(_) => true,
        Ok(mut c) => roundtrip(&mut c, &[b"PING"]).await.is_none(),
    };
    assert!(refused, "a client without a certificate was served");

    // A plain-text client on the TLS port is not served either.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let r = roundtrip(&mut plain, &[b"PING"]).await;
    assert!(r.as_deref() != Some(b"+PONG\r\n"));
    s.shutdown().await;
}

#[tokio::test]
async fn config_set_of_tls_parameters_reloads_or_rolls_back() {
    let pki = Pki::new();
    let port = free_port();
    let (cert, key, ca) = (
        pki.path("server.crt"),
        pki.path("server.key"),
        pki.path("ca.crt"),
    );
    let s = start_with(&[
        ("tls-port", &port.to_string()),
        ("tls-cert-file", &cert),
        ("tls-key-file", &key),
        ("tls-ca-cert-file", &ca),
        ("tls-auth-clients", "yes"),
    ])
    .await;
    let mut c = tls_connect(&pki, port, true).await.unwrap();
    // A certificate that cannot load: Redis's error, and nothing of the
    // call applied (tls-auth-clients stays yes).
    let r = roundtrip(
        &mut c,
        &[
            b"CONFIG",
            b"SET",
            b"tls-auth-clients",
            b"no",
            b"tls-cert-file",
            b"/nonexistent/cert.pem",
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        String::from_utf8(r).unwrap(),
        "-ERR CONFIG SET failed (possibly related to argument 'tls-auth-clients') - Unable to update TLS configuration. Check server logs.\r\n"
    );
    let r = roundtrip(&mut c, &[b"CONFIG", b"GET", b"tls-cert-file"])
        .await
        .unwrap();
    assert!(String::from_utf8(r).unwrap().contains(&cert));
    let r = roundtrip(&mut c, &[b"CONFIG", b"GET", b"tls-auth-clients"])
        .await
        .unwrap();
    assert_eq!(r, b"*2\r\n$16\r\ntls-auth-clients\r\n$3\r\nyes\r\n");
    let refused = match tls_connect(&pki, port, false).await {
        Err(_) => true,
        Ok(mut c) => roundtrip(&mut c, &[b"PING"]).await.is_none(),
    };
    assert!(refused);

    // A valid change applies to the next connection.
    let r = roundtrip(&mut c, &[b"CONFIG", b"SET", b"tls-auth-clients", b"no"])
        .await
        .unwrap();
    assert_eq!(r, b"+OK\r\n");
    let mut anon = tls_connect(&pki, port, false).await.unwrap();
    assert_eq!(
        roundtrip(&mut anon, &[b"PING"]).await.unwrap(),
        b"+PONG\r\n"
    );
    s.shutdown().await;
}

#[tokio::test]
async fn tls_start_fails_without_a_loadable_certificate() {
    let pki = Pki::new();
    let mut cfg = redlog::config::Config::default();
    cfg.set_startup("port", "0").unwrap();
    cfg.set_startup("appendonly", "no").unwrap();
    cfg.set_startup("dir", pki.dir.to_str().unwrap()).unwrap();
    cfg.set_startup("tls-port", &free_port().to_string())
        .unwrap();
    cfg.set_startup("tls-cert-file", &pki.path("nope.crt"))
        .unwrap();
    cfg.set_startup("tls-key-file", &pki.path("server.key"))
        .unwrap();
    cfg.set_startup("tls-auth-clients", "no").unwrap();
    let e = redlog::server::spawn(cfg).await.err().expect("start fails");
    assert_eq!(
        e.to_string(),
        "Failed to configure TLS. Check logs for more info."
    );
}

#[tokio::test]
async fn unix_socket_clients() {
    let dir = tempfile::Builder::new()
        .prefix("redlog-unix-")
        .tempdir()
        .unwrap()
        .keep();
    let path = dir.join("redlog.sock");
    let p = path.to_str().unwrap().to_string();
    let s = start_with(&[("unixsocket", &p), ("unixsocketperm", "700")]).await;
    // `port 0` picks a free port only when nothing else listens: with a
    // socket it turns TCP off, as in Redis.
    assert!(s.shared().listen_addrs.is_empty());
    {
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let m = std::fs::metadata(&path).unwrap();
        assert!(m.file_type().is_socket());
        assert_eq!(m.permissions().mode() & 0o777, 0o700);
    }
    let mut c = tokio::net::UnixStream::connect(&path).await.unwrap();
    assert_eq!(roundtrip(&mut c, &[b"PING"]).await.unwrap(), b"+PONG\r\n");
    let info = roundtrip(&mut c, &[b"CLIENT", b"INFO"]).await.unwrap();
    let info = String::from_utf8(info).unwrap();
    assert!(info.contains(&format!("addr={p}:0 laddr={p}:0 ")), "{info}");
    assert!(info.contains(" flags=U "), "{info}");
    let r = roundtrip(&mut c, &[b"CONFIG", b"GET", b"unixsocketperm"])
        .await
        .unwrap();
    assert_eq!(r, b"*2\r\n$14\r\nunixsocketperm\r\n$3\r\n700\r\n");
    // CLIENT KILL ADDR takes the printed form.
    let mut other = tokio::net::UnixStream::connect(&path).await.unwrap();
    assert_eq!(
        roundtrip(&mut other, &[b"PING"]).await.unwrap(),
        b"+PONG\r\n"
    );
    let addr = format!("{p}:0");
    let r = roundtrip(
        &mut c,
        &[
            b"CLIENT",
            b"KILL",
            b"ADDR",
            addr.as_bytes(),
            b"SKIPME",
            b"yes",
        ],
    )
    .await
    .unwrap();
    assert_eq!(r, b":1\r\n");
    s.shutdown().await;
    assert!(!Path::new(&path).exists(), "the socket file is removed");
}

/// CONFIG REWRITE through the server: Redis's error without a config
/// file; with one, the file rewritten in place and appended to.
#[tokio::test]
async fn config_rewrite_rewrites_the_file_the_server_started_with() {
    let s = start_with(&[]).await;
    let mut c = tokio::net::TcpStream::connect(s.local_addr())
        .await
        .unwrap();
    assert_eq!(
        roundtrip(&mut c, &[b"CONFIG", b"REWRITE"]).await.unwrap(),
        b"-ERR The server is running without a config file\r\n"
    );
    s.shutdown().await;

    let dir = tempfile::Builder::new()
        .prefix("redlog-rewrite-")
        .tempdir()
        .unwrap()
        .keep();
    let conf = dir.join("redlog.conf");
    std::fs::write(&conf, "# kept\nport 0\ntimeout 5\n\nsave 60 1\nsave 30 2\n").unwrap();
    let args: Vec<String> = [
        conf.to_str().unwrap(),
        "--dir",
        dir.to_str().unwrap(),
        "--appendonly",
        "no",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let cfg = redlog::config::Config::from_args(&args, redlog::commands::table()).unwrap();
    let s = redlog::server::spawn(cfg).await.unwrap();
    let mut c = tokio::net::TcpStream::connect(s.local_addr())
        .await
        .unwrap();
    for (k, v) in [("timeout", "7"), ("save", "100 3"), ("maxmemory", "2mb")] {
        assert_eq!(
            roundtrip(&mut c, &[b"CONFIG", b"SET", k.as_bytes(), v.as_bytes()])
                .await
                .unwrap(),
            b"+OK\r\n"
        );
    }
    assert_eq!(
        roundtrip(&mut c, &[b"CONFIG", b"REWRITE"]).await.unwrap(),
        b"+OK\r\n"
    );
    let text = std::fs::read_to_string(&conf).unwrap();
    let canon = std::fs::canonicalize(&dir).unwrap();
    let head = "# kept\nport 0\ntimeout 7\n\nsave 100 3\n\n# Generated by CONFIG REWRITE\n";
    assert!(text.starts_with(head), "{text}");
    let tail: Vec<&str> = text[head.len()..].lines().collect();
    assert!(
        tail.contains(&format!("dir \"{}\"", canon.display()).as_str()),
        "{text}"
    );
    assert!(tail.contains(&"maxmemory 2mb"), "{text}");
    assert!(tail.contains(&"appendonly no"), "{text}");
    s.shutdown().await;
}

/// `rename-command` (config file or command line): the new name runs the
/// command, the old one is unknown with Redis's error, `""` removes it.
#[tokio::test]
async fn renamed_commands() {
    let dir = tempfile::Builder::new()
        .prefix("redlog-rename-")
        .tempdir()
        .unwrap()
        .keep();
    let mut cfg = redlog::config::Config::default();
    cfg.set_startup("port", "0").unwrap();
    cfg.set_startup("appendonly", "no").unwrap();
    cfg.set_startup("dir", dir.to_str().unwrap()).unwrap();
    cfg.load_file_text(
        "rename-command set myset\nrename-command get \"\"\n",
        redlog::commands::table(),
    )
    .unwrap();
    let s = redlog::server::spawn(cfg).await.unwrap();
    let mut c = tokio::net::TcpStream::connect(s.local_addr())
        .await
        .unwrap();
    assert_eq!(
        roundtrip(&mut c, &[b"MYSET", b"a", b"b"]).await.unwrap(),
        b"+OK\r\n"
    );
    assert_eq!(
        roundtrip(&mut c, &[b"set", b"a", b"b"]).await.unwrap(),
        b"-ERR unknown command 'set', with args beginning with: 'a' 'b' \r\n"
    );
    assert_eq!(
        roundtrip(&mut c, &[b"GET", b"a"]).await.unwrap(),
        b"-ERR unknown command 'GET', with args beginning with: 'a' \r\n"
    );
    assert_eq!(
        roundtrip(&mut c, &[b"STRLEN", b"a"]).await.unwrap(),
        b":1\r\n"
    );
    s.shutdown().await;
}
