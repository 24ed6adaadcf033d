//! TLS for client connections (`tls-port`), with rustls: the server
//! configuration built from the `tls-*` parameters as Redis's `tls.c`
//! builds its OpenSSL context, and the acceptor every TLS listener reads
//! at each accept, so CONFIG SET of a `tls-*` parameter (which rebuilds
//! it) applies to the next connection, as in Redis.
//!
//! What maps how:
//! - `tls-cert-file`, `tls-key-file` (PEM; PKCS#8, PKCS#1 or SEC1 keys),
//!   `tls-key-file-pass` (a PKCS#8 key encrypted with PBES2, as
//!   `openssl pkcs8 -topk8 -v2 aes-256-cbc` or `openssl genpkey -aes256`
//!   write it; legacy `Proc-Type: 4,ENCRYPTED` PEM is refused).
//! - `tls-ca-cert-file`, `tls-ca-cert-dir` (every PEM certificate in the
//!   directory's files): the roots client certificates must chain to.
//! - `tls-auth-clients yes|optional|no`: a client certificate required,
//!   verified if given, not asked for.
//! - `tls-protocols`: `TLSv1.2`, `TLSv1.3` (rustls has no older versions:
//!   `TLSv1` and `TLSv1.1` are accepted and not offered, and a list with
//!   only them is an error, as OpenSSL's "no protocols").
//! - `tls-ciphers` (TLS 1.2, OpenSSL names such as
//!   `ECDHE-RSA-AES256-GCM-SHA384`, `:`-separated, or `DEFAULT`, `HIGH`,
//!   `ALL`) and `tls-ciphersuites` (TLS 1.3, IANA names such as
//!   `TLS_AES_256_GCM_SHA384`): the suites rustls implements that the
//!   lists name; names it does not implement are skipped, as OpenSSL skips
//!   unknown ones, and a list matching none is an error.
//! - `tls-prefer-server-ciphers yes`: the server's order wins.
//! - `tls-session-caching`, `tls-session-cache-size`,
//!   `tls-session-cache-timeout`: a server-side session cache (stateful
//!   resumption, as Redis's `SSL_SESS_CACHE_SERVER`) of that many entries
//!   that live that many seconds; `no` turns resumption off.

use crate::config::Config;
use parking_lot::{Mutex, RwLock};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{StoresServerSessions, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_rustls::TlsAcceptor;

/// The parameters that make up the TLS context: a CONFIG SET of any of
/// them rebuilds it.
pub const TLS_PARAMS: &[&str] = &[
    "tls-cert-file",
    "tls-key-file",
    "tls-key-file-pass",
    "tls-ca-cert-file",
    "tls-ca-cert-dir",
    "tls-auth-clients",
    "tls-protocols",
    "tls-ciphers",
    "tls-ciphersuites",
    "tls-prefer-server-ciphers",
    "tls-session-caching",
    "tls-session-cache-size",
    "tls-session-cache-timeout",
];

/// The acceptor TLS listeners use; `None` while TLS is off.
#[derive(Default)]
pub struct TlsState {
    acceptor: RwLock<Option<TlsAcceptor>>,
}

impl std::fmt::Debug for TlsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsState")
            .field("enabled", &self.acceptor.read().is_some())
            .finish()
    }
}

impl TlsState {
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.acceptor.read().clone()
    }

    /// Builds the context from `config` and installs it; on error the
    /// previous one stays (Redis keeps its old SSL_CTX when `tlsConfigure`
    /// fails).
    pub fn configure(&self, config: &Config) -> Result<(), TlsError> {
        let sc = server_config(config)?;
        *self.acceptor.write() = Some(TlsAcceptor::from(Arc::new(sc)));
        Ok(())
    }
}

/// True when the server listens for TLS (Redis configures its context
/// only then; otherwise the `tls-*` values are just stored).
pub fn enabled(config: &Config) -> bool {
    config.get("tls-port").is_some_and(|p| p != "0")
}

/// Why the TLS context could not be built. The texts are the log lines
/// Redis writes for the same problems (they are logged, never replied).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("No tls-cert-file configured!")]
    NoCertFile,
    #[error("No tls-key-file configured!")]
    NoKeyFile,
    #[error("Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, tls-replication or tls-auth-clients are enabled!")]
    NoCa,
    #[error("Failed to load certificate: {path}: {cause}")]
    Cert { path: String, cause: FileError },
    #[error("Failed to load private key: {path}: {cause}")]
    Key { path: String, cause: FileError },
    #[error("Failed to configure CA certificate(s) file/directory: {path}: {cause}")]
    Ca { path: String, cause: FileError },
    #[error("Failed to configure TLS: {0}")]
    Versions(rustls::Error),
    #[error("Failed to configure TLS client verification: {0}")]
    Verifier(rustls::server::VerifierBuilderError),
    #[error("Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'. ({0})")]
    BadProtocol(String),
    #[error("Failed to configure TLS: none of the protocols in tls-protocols (TLSv1.2, TLSv1.3) is supported")]
    NoProtocol,
    #[error("Failed to configure ciphers: {0}")]
    Ciphers(String),
    #[error("Failed to configure ciphersuites: {0}")]
    Ciphersuites(String),
}

/// Why a certificate, CA or key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Io(std::io::Error),
    #[error("{0:?}")]
    Pem(pem::Error),
    #[error("no certificate found")]
    NoCertificate,
    #[error("legacy encrypted PEM keys are not supported; convert the key with `openssl pkcs8 -topk8 -v2 aes-256-cbc`")]
    LegacyEncrypted,
    #[error("{0}")]
    Der(pkcs8::der::Error),
    #[error("{0}")]
    Pkcs8(pkcs8::Error),
    #[error("unexpected PEM label {0}")]
    Label(String),
    #[error("bad decrypt (wrong tls-key-file-pass?)")]
    BadDecrypt,
    #[error("{0}")]
    Rustls(rustls::Error),
}

impl From<std::io::Error> for FileError {
    fn from(e: std::io::Error) -> Self {
        FileError::Io(e)
    }
}

impl From<pem::Error> for FileError {
    fn from(e: pem::Error) -> Self {
        match e {
            pem::Error::Io(e) => FileError::Io(e),
            e => FileError::Pem(e),
        }
    }
}

fn param<'a>(config: &'a Config, name: &str) -> &'a str {
    config.get(name).unwrap_or("")
}

/// Builds the rustls server configuration from the `tls-*` parameters.
/// Errors are the log lines Redis writes for the same problems.
pub fn server_config(config: &Config) -> Result<ServerConfig, TlsError> {
    let cert_file = param(config, "tls-cert-file");
    let key_file = param(config, "tls-key-file");
    if cert_file.is_empty() {
        return Err(TlsError::NoCertFile);
    }
    if key_file.is_empty() {
        return Err(TlsError::NoKeyFile);
    }
    let cert_err = |cause| TlsError::Cert {
        path: cert_file.to_string(),
        cause,
    };
    let key_err = |cause| TlsError::Key {
        path: key_file.to_string(),
        cause,
    };
    let auth = param(config, "tls-auth-clients");
    let ca_file = param(config, "tls-ca-cert-file");
    let ca_dir = param(config, "tls-ca-cert-dir");
    if auth != "no" && ca_file.is_empty() && ca_dir.is_empty() {
        return Err(TlsError::NoCa);
    }
    let certs = load_certs(cert_file).map_err(cert_err)?;
    if certs.is_empty() {
        return Err(cert_err(FileError::NoCertificate));
    }
    let key = load_key(key_file, param(config, "tls-key-file-pass")).map_err(key_err)?;

    let provider = Arc::new(provider(
        param(config, "tls-ciphers"),
        param(config, "tls-ciphersuites"),
    )?);
    let versions = protocol_versions(param(config, "tls-protocols"))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(TlsError::Versions)?;
    let builder = if auth == "no" {
        builder.with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        if !ca_file.is_empty() {
            let ca_err = |cause| TlsError::Ca {
                path: ca_file.to_string(),
                cause,
            };
            let cas = load_certs(ca_file).map_err(ca_err)?;
            let (ok, _) = roots.add_parsable_certificates(cas);
            if ok == 0 {
                return Err(ca_err(FileError::NoCertificate));
            }
        }
        if !ca_dir.is_empty() {
            load_ca_dir(&mut roots, ca_dir).map_err(|cause| TlsError::Ca {
                path: ca_dir.to_string(),
                cause,
            })?;
        }
        let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
        let v = if auth == "optional" {
            v.allow_unauthenticated()
        } else {
            v
        };
        let v = v.build().map_err(TlsError::Verifier)?;
        builder.with_client_cert_verifier(v)
    };
    let mut sc = builder
        .with_single_cert(certs, key)
        .map_err(|e| key_err(FileError::Rustls(e)))?;
    sc.ignore_client_order = param(config, "tls-prefer-server-ciphers") == "yes";
    if param(config, "tls-session-caching") == "yes" {
        let size = param(config, "tls-session-cache-size")
            .parse::<usize>()
            .unwrap_or(20480);
        let timeout = param(config, "tls-session-cache-timeout")
            .parse::<u64>()
            .unwrap_or(300);
        sc.session_storage = Arc::new(SessionCache::new(size, Duration::from_secs(timeout)));
    } else {
        sc.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        sc.send_tls13_tickets = 0;
    }
    Ok(sc)
}

fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, FileError> {
    Ok(CertificateDer::pem_file_iter(path)?.collect::<Result<Vec<_>, _>>()?)
}

/// Every PEM certificate in the files of `dir` (OpenSSL's CApath wants
/// hashed names; any file name works here).
fn load_ca_dir(roots: &mut RootCertStore, dir: &str) -> Result<(), FileError> {
    let mut found = 0;
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        if !path.is_file() {
            continue;
        }
        let Ok(iter) = CertificateDer::pem_file_iter(&path) else {
            continue;
        };
        let (ok, _) = roots.add_parsable_certificates(iter.filter_map(Result::ok));
        found += ok;
    }
    if found == 0 {
        return Err(FileError::NoCertificate);
    }
    Ok(())
}

/// The private key of `tls-key-file`, decrypted with `tls-key-file-pass`
/// when it is an encrypted PKCS#8 key.
fn load_key(path: &str, pass: &str) -> Result<PrivateKeyDer<'static>, FileError> {
    let text = std::fs::read_to_string(path)?;
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        return decrypt_pkcs8(&text, pass);
    }
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(FileError::LegacyEncrypted);
    }
    Ok(PrivateKeyDer::from_pem_slice(text.as_bytes())?)
}

fn decrypt_pkcs8(text: &str, pass: &str) -> Result<PrivateKeyDer<'static>, FileError> {
    use pkcs8::der::Document;
    use pkcs8::EncryptedPrivateKeyInfoRef;
    let begin = text
        .find("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        .unwrap_or(0);
    let (label, doc) = Document::from_pem(&text[begin..]).map_err(FileError::Der)?;
    if label != "ENCRYPTED PRIVATE KEY" {
        return Err(FileError::Label(label.to_string()));
    }
    let info = EncryptedPrivateKeyInfoRef::try_from(doc.as_bytes()).map_err(FileError::Pkcs8)?;
    let plain = info
        .decrypt(pass.as_bytes())
        .map_err(|_| FileError::BadDecrypt)?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        plain.as_bytes().to_vec(),
    )))
}

fn protocol_versions(
    list: &str,
) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
    if list.trim().is_empty() {
        return Ok(vec![&rustls::version::TLS12, &rustls::version::TLS13]);
    }
    let mut out = Vec::new();
    for p in list.split_whitespace() {
        match p.to_ascii_lowercase().as_str() {
            "tlsv1.2" => out.push(&rustls::version::TLS12),
            "tlsv1.3" => out.push(&rustls::version::TLS13),
            // Known to Redis, not implemented by rustls: never offered.
            "tlsv1" | "tlsv1.1" => {}
            _ => return Err(TlsError::BadProtocol(p.to_string())),
        }
    }
    if out.is_empty() {
        return Err(TlsError::NoProtocol);
    }
    Ok(out)
}

/// OpenSSL's names of the TLS 1.2 suites rustls implements.
const OPENSSL_TLS12_NAMES: &[(&str, rustls::CipherSuite)] = &[
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

/// The ring provider with the suites `tls-ciphers` (TLS 1.2) and
/// `tls-ciphersuites` (TLS 1.3) allow, in the lists' order.
fn provider(ciphers: &str, ciphersuites: &str) -> Result<CryptoProvider, TlsError> {
    let base = rustls::crypto::ring::default_provider();
    let all = base.cipher_suites.clone();
    let tls12: Vec<SupportedCipherSuite> = if ciphers.trim().is_empty() {
        all.iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .copied()
            .collect()
    } else {
        let mut v: Vec<SupportedCipherSuite> = Vec::new();
        for name in ciphers.split([':', ',', ' ']).filter(|n| !n.is_empty()) {
            if name.starts_with('!') || name.starts_with('-') || name.starts_with('+') {
                continue;
            }
            let upper = name.to_ascii_uppercase();
            let picked: Vec<SupportedCipherSuite> =
                if matches!(upper.as_str(), "DEFAULT" | "HIGH" | "ALL") {
                    all.iter()
                        .filter(|s| s.version() == &rustls::version::TLS12)
                        .copied()
                        .collect()
                } else {
                    OPENSSL_TLS12_NAMES
                        .iter()
                        .filter(|(n, _)| *n == upper)
                        .filter_map(|(_, id)| all.iter().find(|s| s.suite() == *id).copied())
                        .collect()
                };
            for s in picked {
                if !v.iter().any(|x| x.suite() == s.suite()) {
                    v.push(s);
                }
            }
        }
        v
    };
    let tls13: Vec<SupportedCipherSuite> = if ciphersuites.trim().is_empty() {
        all.iter()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .copied()
            .collect()
    } else {
        let mut v: Vec<SupportedCipherSuite> = Vec::new();
        for name in ciphersuites.split(':').filter(|n| !n.is_empty()) {
            // rustls spells them TLS13_AES_256_GCM_SHA384.
            let want = name
                .trim()
                .to_ascii_uppercase()
                .replacen("TLS_", "TLS13_", 1);
            if let Some(s) = all.iter().find(|s| {
                s.version() == &rustls::version::TLS13
                    && s.suite().as_str().is_some_and(|n| n == want)
            }) {
                if !v.iter().any(|x| x.suite() == s.suite()) {
                    v.push(*s);
                }
            }
        }
        v
    };
    if !ciphers.trim().is_empty() && tls12.is_empty() {
        return Err(TlsError::Ciphers(ciphers.to_string()));
    }
    if !ciphersuites.trim().is_empty() && tls13.is_empty() {
        return Err(TlsError::Ciphersuites(ciphersuites.to_string()));
    }
    Ok(CryptoProvider {
        cipher_suites: tls13.into_iter().chain(tls12).collect(),
        ..base
    })
}

/// The server-side session cache: at most `size` sessions (0: no limit,
/// as OpenSSL's), each usable for `timeout` after it was stored.
#[derive(Debug)]
struct SessionCache {
    size: usize,
    timeout: Duration,
    map: Mutex<HashMap<Vec<u8>, Stored>>,
}

/// A cached session and when it was stored.
type Stored = (Instant, Vec<u8>);

/// OpenSSL's `SSL_SESSION_CACHE_MAX_SIZE_DEFAULT`, the bound used for
/// `tls-session-cache-size 0` ("no limit") so memory stays bounded.
const SESSION_CACHE_UNBOUNDED: usize = 1024 * 20;

impl SessionCache {
    fn new(size: usize, timeout: Duration) -> Self {
        SessionCache {
            size: if size == 0 {
                SESSION_CACHE_UNBOUNDED
            } else {
                size
            },
            timeout,
            map: Mutex::new(HashMap::new()),
        }
    }
}

impl StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let now = Instant::now();
        let mut m = self.map.lock();
        if m.len() >= self.size {
            // OpenSSL flushes expired sessions when full, then refuses.
            let timeout = self.timeout;
            m.retain(|_, (at, _)| now.duration_since(*at) < timeout);
            if m.len() >= self.size {
                return false;
            }
        }
        m.insert(key, (now, value));
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let m = self.map.lock();
        let (at, v) = m.get(key)?;
        (at.elapsed() < self.timeout).then(|| v.clone())
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let (at, v) = self.map.lock().remove(key)?;
        (at.elapsed() < self.timeout).then_some(v)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols() {
        assert_eq!(protocol_versions("").unwrap().len(), 2);
        assert_eq!(protocol_versions("TLSv1.2").unwrap().len(), 1);
        assert_eq!(protocol_versions("tlsv1.1 TLSv1.3").unwrap().len(), 1);
        assert!(protocol_versions("TLSv1 TLSv1.1").is_err());
        assert!(protocol_versions("SSLv3").is_err());
    }

    #[test]
    fn cipher_lists() {
        let p = provider("ECDHE-RSA-AES128-GCM-SHA256:NOPE", "").unwrap();
        let tls12: Vec<_> = p
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .collect();
        assert_eq!(tls12.len(), 1);
        let p = provider("", "TLS_CHACHA20_POLY1305_SHA256").unwrap();
        let tls13: Vec<_> = p
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .collect();
        assert_eq!(tls13.len(), 1);
        assert!(provider("NOPE", "").is_err());
        assert!(provider("", "TLS_NOPE").is_err());
    }

    #[test]
    fn error_texts_are_redis_log_lines() {
        let Err(e) = protocol_versions("SSLv3") else {
            panic!("SSLv3 accepted")
        };
        assert_eq!(e.to_string(), "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'. (SSLv3)");
        let Err(e) = protocol_versions("TLSv1") else {
            panic!("TLSv1 alone accepted")
        };
        assert_eq!(e.to_string(), "Failed to configure TLS: none of the protocols in tls-protocols (TLSv1.2, TLSv1.3) is supported");
        let Err(e) = provider("NOPE", "") else {
            panic!("no cipher accepted")
        };
        assert_eq!(e.to_string(), "Failed to configure ciphers: NOPE");
        let cause = load_certs("/nonexistent/cert.pem").unwrap_err();
        let e = TlsError::Cert {
            path: "/nonexistent/cert.pem".into(),
            cause,
        };
        assert_eq!(
            e.to_string(),
            "Failed to load certificate: /nonexistent/cert.pem: No such file or directory (os error 2)"
        );
        let e = TlsError::Ca {
            path: "/d".into(),
            cause: FileError::NoCertificate,
        };
        assert_eq!(
            e.to_string(),
            "Failed to configure CA certificate(s) file/directory: /d: no certificate found"
        );
    }

    #[test]
    fn session_cache_bounds_and_expires() {
        let c = SessionCache::new(2, Duration::from_secs(300));
        assert!(c.put(b"a".to_vec(), b"1".to_vec()));
        assert!(c.put(b"b".to_vec(), b"2".to_vec()));
        assert!(!c.put(b"c".to_vec(), b"3".to_vec()));
        assert_eq!(c.get(b"a"), Some(b"1".to_vec()));
        assert_eq!(c.take(b"a"), Some(b"1".to_vec()));
        assert_eq!(c.get(b"a"), None);
        let expired = SessionCache::new(2, Duration::ZERO);
        assert!(expired.put(b"a".to_vec(), b"1".to_vec()));
        assert_eq!(expired.get(b"a"), None);
    }
}
