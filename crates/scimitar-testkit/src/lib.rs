//! A real Scimitar server for tests: bound to `127.0.0.1:0`, backed by a
//! fresh SQLite file in a temporary directory, with tenants and tokens
//! created through the same store the server uses.

// Not production code: test support: a panic is a failing test.
#![allow(clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod webhook;

use std::path::PathBuf;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use scimitar_server::{AppState, Settings};
use scimitar_store::Store;
use serde_json::Value;

/// An HTTP client builder for tests. In a workspace build, reqwest's TLS
/// comes from the engine's `rustls-no-provider` (ring, chosen explicitly), so
/// a plain `reqwest::Client::new()` panics for want of a crypto provider:
/// build clients here.
pub fn http() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// `http().build()`.
pub fn client() -> reqwest::Client {
    http().build().expect("an HTTP client")
}

/// Driving the admin console like a browser: a client that shows redirects
/// instead of following them, and the cookie, CSRF field and form body a
/// sign-in or console form needs.
pub mod browser {
    /// A client that shows redirects instead of following them.
    pub fn client() -> reqwest::Client {
        super::http()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client")
    }

    /// The value of the cookie `name` an answer sets.
    pub fn cookie_of(r: &reqwest::Response, name: &str) -> Option<String> {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.split(';').next())
            .map(str::to_string)
    }

    /// The CSRF token of a console page's form.
    pub fn csrf_in(html: &str) -> String {
        let i = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        html.get(i..)
            .and_then(|rest| rest.split('"').next())
            .expect("a csrf value")
            .to_string()
    }

    /// A form body (`application/x-www-form-urlencoded`).
    pub fn form(pairs: &[(&str, &str)]) -> String {
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

pub struct TestServer {
    pub addr: std::net::SocketAddr,
    pub store: Arc<dyn Store>,
    pub public_url: String,
    pub client: reqwest::Client,
    /// The temporary directory of the server's SQLite file (`test.db`).
    pub dir: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A tenant with a token, as a SCIM client sees it.
#[derive(Clone)]
pub struct Tenant {
    /// The tenant's id in the store.
    pub id: scimitar_store::TenantId,
    pub name: String,
    pub base: String,
    pub token: String,
    pub token_id: String,
    pub client: reqwest::Client,
}

/// A response with its body parsed as JSON (Null when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Asserts a SCIM error with this status and scimType (if given).
    #[track_caller]
    pub fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "status; body: {}", self.text);
        assert_eq!(
            self.body["schemas"],
            serde_json::json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
            "{}",
            self.text
        );
        assert_eq!(self.body["status"], Value::String(status.to_string()), "{}", self.text);
        if let Some(t) = scim_type {
            assert_eq!(self.body["scimType"], Value::String(t.into()), "{}", self.text);
        }
        assert!(
            self.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "detail: {}",
            self.text
        );
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/scim+json")),
            "content-type: {:?}",
            self.header("content-type")
        );
    }
}

static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Settings)) -> TestServer {
        Self::start_in(&std::env::temp_dir(), configure).await
    }

    /// A server whose SQLite file is in a new directory under `root`.
    pub async fn start_in(root: &std::path::Path, configure: impl FnOnce(&mut Settings)) -> TestServer {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = root.join(format!(
            "scimitar-test-{}-{n}-{}",
            std::process::id(),
            scimitar_store::now_utc().replace([':', '.'], "")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        // SCIMITAR_TEST_BACKEND=postgres with SCIMITAR_TEST_POSTGRES_URL runs
        // the server on PostgreSQL (a fresh schema per server); else SQLite.
        let postgres = match (
            std::env::var("SCIMITAR_TEST_BACKEND"),
            std::env::var("SCIMITAR_TEST_POSTGRES_URL"),
        ) {
            (Ok(b), Ok(url)) if b == "postgres" && !url.is_empty() => Some(url),
            _ => None,
        };
        let store: Arc<dyn Store> = match postgres {
            Some(url) => Arc::new(
                scimitar_store_postgres::test_support::fresh_store(&url, 8)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}")),
            ),
            None => Arc::new(scimitar_store_sqlite::SqliteStore::open(&dir.join("test.db")).unwrap()),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let public_url = format!("http://{addr}");
        let mut settings = Settings::new(&public_url);
        configure(&mut settings);
        let state = AppState::new(store.clone(), settings);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = scimitar_server::serve(listener, state, async {
                let _ = rx.await;
            })
            .await;
        });
        TestServer {
            addr,
            store,
            public_url,
            client: client(),
            dir,
            shutdown: Some(tx),
        }
    }

    /// Creates a tenant and a provisioning token for it.
    pub async fn tenant(&self, name: &str) -> Tenant {
        self.tenant_with_scope(name, "scim").await
    }

    /// Creates a tenant (if needed) and a token of `scope` (`scim` or `admin`).
    pub async fn tenant_with_scope(&self, name: &str, scope: &str) -> Tenant {
        let t = match self.store.tenant(name).await.unwrap() {
            Some(t) => t,
            None => self.store.create_tenant(name).await.unwrap(),
        };
        let new = scimitar_auth::generate().unwrap();
        let record = scimitar_store::NewTokenRecord {
            id: new.id.clone(),
            label: "test".into(),
            hint: new.hint.clone(),
            scope: scope.into(),
            hash: new.hash,
            expires: None,
        };
        self.store.create_token(t.id, record).await.unwrap();
        Tenant {
            id: t.id,
            name: name.to_string(),
            base: scimitar_server::tenant_url(&self.public_url, name),
            token: new.secret,
            token_id: new.id,
            client: self.client.clone(),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Tenant {
    /// Sends a request to `path` below the Tenant URL (or an absolute URL).
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        self.send_with(method, path, body, &[]).await
    }

    pub async fn send_with(&self, method: Method, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Resp {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut rb = self.client.request(method, url).bearer_auth(&self.token);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(b) = body {
            rb = rb
                .header("content-type", "application/scim+json")
                .body(serde_json::to_vec(&b).unwrap());
        }
        let resp = rb.send().await.unwrap();
        read(resp).await
    }

    pub async fn raw(&self, method: Method, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Resp {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut rb = self.client.request(method, url).body(body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        read(rb.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(body)).await
    }
    pub async fn put(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PUT, path, Some(body)).await
    }
    pub async fn patch(&self, path: &str, body: Value) -> Resp {
        self.send(Method::PATCH, path, Some(body)).await
    }
    pub async fn delete(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None).await
    }

    /// Creates a user with this userName and returns its id.
    pub async fn create_user(&self, user_name: &str) -> String {
        let r = self
            .post(
                "/Users",
                serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["id"].as_str().unwrap().to_string()
    }

    pub async fn create_group(&self, display_name: &str, members: &[&str]) -> String {
        let members: Vec<Value> = members.iter().map(|m| serde_json::json!({"value": m})).collect();
        let r = self
            .post(
                "/Groups",
                serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": display_name, "members": members}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["id"].as_str().unwrap().to_string()
    }
}

async fn read(resp: reqwest::Response) -> Resp {
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    Resp {
        status,
        headers,
        body,
        text,
    }
}

/// A PatchOp body.
pub fn patch_op(ops: Value) -> Value {
    serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}
