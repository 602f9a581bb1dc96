//! Built-in TLS for deployments without a reverse proxy: rustls (TLS 1.2
//! and 1.3 only, ring as the one crypto provider), certificates reloaded
//! from disk without a restart, HSTS on every response.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use std::net::SocketAddr;

use axum::Router;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// How often the files are checked for a renewed certificate.
    pub reload_every: Duration,
}

impl TlsFiles {
    pub fn new(cert: PathBuf, key: PathBuf) -> Self {
        TlsFiles {
            cert,
            key,
            reload_every: Duration::from_secs(30),
        }
    }
}

/// Loads a certificate chain and private key (PEM) into a rustls config.
pub fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| format!("reading {}: {e}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("parsing {}: {e}", files.cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{} holds no certificate", files.cert.display()));
    }
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|e| format!("reading key {}: {e}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not match: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Serves `app` over TLS until `shutdown` resolves, then lets in-flight
/// requests finish. The peer address is given to handlers as
/// `ConnectInfo<SocketAddr>`, as with plain `serve`; connections have the
/// default deadlines (`Settings::new`).
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    files: TlsFiles,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let settings = crate::Settings::new("");
    let timeouts = crate::conn::Timeouts {
        idle: settings.idle_timeout,
        header_read: settings.header_read_timeout,
    };
    serve_tls_with(listener, app, files, timeouts, shutdown).await
}

/// `serve_tls` with the connection deadlines of `conn.rs`, which run once
/// the handshake is done.
pub(crate) async fn serve_tls_with(
    listener: tokio::net::TcpListener,
    app: Router,
    files: TlsFiles,
    timeouts: crate::conn::Timeouts,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = load(&files).map_err(std::io::Error::other)?;
    let current = Arc::new(RwLock::new(config));
    // Reload the certificate when its files change (renewals need no restart).
    let reloader = {
        let current = current.clone();
        let files = files.clone();
        tokio::spawn(async move {
            let mut seen = (modified(&files.cert), modified(&files.key));
            loop {
                tokio::time::sleep(files.reload_every).await;
                let now = (modified(&files.cert), modified(&files.key));
                if now == seen {
                    continue;
                }
                match load(&files) {
                    Ok(c) => {
                        if let Ok(mut w) = current.write() {
                            *w = c;
                        }
                        seen = now;
                        tracing::info!("reloaded the TLS certificate");
                    }
                    Err(e) => tracing::warn!(error = %e, "new TLS certificate not loaded; keeping the old one"),
                }
            }
        })
    };
    let handshake = move |tcp: tokio::net::TcpStream, peer: SocketAddr| {
        let config = current.read().map(|c| c.clone()).ok();
        async move {
            let acceptor = TlsAcceptor::from(config?);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => Some(s),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    None
                }
                Err(_) => None,
            }
        }
    };
    let result = crate::conn::serve(listener, app.layer(hsts()), timeouts, handshake, shutdown).await;
    reloader.abort();
    result
}

/// `Strict-Transport-Security` for every response served over TLS.
fn hsts() -> tower_http::set_header::SetResponseHeaderLayer<axum::http::HeaderValue> {
    tower_http::set_header::SetResponseHeaderLayer::if_not_present(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static("max-age=31536000"),
    )
}
