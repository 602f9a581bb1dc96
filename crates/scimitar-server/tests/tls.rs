//! Built-in TLS: TLS 1.2 and 1.3, HSTS, and a renewed certificate picked up
//! without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Duration;

use scimitar_server::tls::{TlsFiles, serve_tls};
use scimitar_server::{AppState, Settings, router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

fn write_cert(dir: &std::path::Path, name: &str) -> (TlsFiles, Vec<u8>) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
    let mut files = TlsFiles::new(cert, key);
    files.reload_every = Duration::from_millis(100);
    (files, c.cert.der().to_vec())
}

async fn get(
    port: u16,
    trusted: &[u8],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Result<(String, String), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(trusted.to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.map_err(|e| e.to_string())?;
    let version = format!("{:?}", tls.get_ref().1.protocol_version());
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    tls.read_to_string(&mut out).await.map_err(|e| e.to_string())?;
    Ok((out, version))
}

#[tokio::test]
async fn tls_serves_with_hsts_and_reloads_a_renewed_certificate() {
    let dir = std::env::temp_dir().join(format!("scimitar-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(scimitar_store_sqlite::SqliteStore::open(&dir.join("t.db")).unwrap());
    let (files, first) = write_cert(&dir, "live");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = AppState::new(store, Settings::new(&format!("https://localhost:{port}")));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_tls(listener, router(state), files.clone(), async {
        let _ = rx.await;
    }));

    for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12][..]] {
        let (resp, v) = get(port, &first, versions).await.unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(
            resp.to_ascii_lowercase()
                .contains("strict-transport-security: max-age=31536000"),
            "{resp}"
        );
        assert!(v.contains("TLS"), "{v}");
    }

    // Renew: new files at the same paths; no restart.
    let (renewed, second) = write_cert(&dir, "next");
    std::fs::copy(&renewed.cert, &files.cert).unwrap();
    std::fs::copy(&renewed.key, &files.key).unwrap();
    let mut switched = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if get(port, &second, &[&rustls::version::TLS13]).await.is_ok() {
            switched = true;
            break;
        }
    }
    assert!(switched, "the renewed certificate was not picked up");
    assert!(
        get(port, &first, &[&rustls::version::TLS13]).await.is_err(),
        "the old certificate is no longer served"
    );
    let _ = tx.send(());
    server.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
