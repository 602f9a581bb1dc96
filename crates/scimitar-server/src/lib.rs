//! Scimitar's HTTP server.
//!
//! Routes: `/healthz`, and each tenant's SCIM base URL (its Tenant URL)
//! `/scim/{tenant}/v2`. Resource paths below the base are matched
//! case-insensitively and tolerate a trailing slash, because Entra's
//! Tenant URL is typed by hand (`scim.rs` dispatches them).

mod auth;
pub mod error;
mod scim;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};
use scimitar_protocol::discovery::Capabilities;
use scimitar_protocol::filter::Limits;
use scimitar_protocol::schema::{ResourceType, builtin_resource_types};
use scimitar_store::Store;
use tower_http::catch_panic::CatchPanicLayer;

/// Server settings that shape behaviour (all advertised where SCIM has a
/// place for them).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The public base URL, e.g. `https://scim.example.com` (no trailing slash).
    pub public_url: String,
    pub max_results: usize,
    pub default_count: usize,
    pub max_body_bytes: usize,
    pub max_patch_operations: usize,
    pub filter_limits: Limits,
}

impl Settings {
    pub fn new(public_url: &str) -> Self {
        Settings {
            public_url: public_url.trim_end_matches('/').to_string(),
            max_results: 1000,
            default_count: 100,
            max_body_bytes: 1024 * 1024,
            max_patch_operations: 1000,
            filter_limits: Limits::default(),
        }
    }

    /// The Tenant URL to paste into an identity provider.
    pub fn tenant_url(&self, tenant: &str) -> String {
        tenant_url(&self.public_url, tenant)
    }
}

pub fn tenant_url(public_url: &str, tenant: &str) -> String {
    format!("{}/scim/{tenant}/v2", public_url.trim_end_matches('/'))
}

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: Settings,
    pub resource_types: Vec<Arc<ResourceType>>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, settings: Settings) -> Arc<Self> {
        Arc::new(AppState {
            store,
            settings,
            resource_types: builtin_resource_types().into_iter().map(Arc::new).collect(),
        })
    }

    pub fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_results: self.settings.max_results,
            max_patch_operations: self.settings.max_patch_operations,
            max_payload_bytes: self.settings.max_body_bytes,
            bulk: None,
            documentation_uri: None,
        }
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/scim/{tenant}/v2", any(scim::dispatch_root))
        .route("/scim/{tenant}/v2/", any(scim::dispatch_root))
        .route("/scim/{tenant}/v2/{*rest}", any(scim::dispatch))
        .layer(CatchPanicLayer::custom(scim::panic_response))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
