//! Scimitar's HTTP server.
//!
//! Routes: `/healthz`; each tenant's SCIM base URL (its Tenant URL)
//! `/scim/{tenant}/v2`, whose resource paths are matched case-insensitively
//! and tolerate a trailing slash because Entra's Tenant URL is typed by hand
//! (`scim.rs` dispatches them); and the tenant administration API under
//! `/admin/v1/tenants/{tenant}` (`admin.rs`).

mod activity;
mod admin;
mod auth;
mod bulk;
mod cursor;
pub mod error;
mod scim;
mod service;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};
use scimitar_protocol::discovery::{BulkLimits, Capabilities};
use scimitar_protocol::filter::Limits;
use scimitar_protocol::schema::{ResourceType, builtin_resource_types};
use scimitar_store::Store;
use tokio::sync::OnceCell;
use tower_http::catch_panic::CatchPanicLayer;

pub use admin::register as register_extension;

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
    pub bulk_max_operations: usize,
    pub bulk_max_payload_bytes: usize,
    /// Provisioning activity older than this is deleted.
    pub activity_retention_days: u32,
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
            bulk_max_operations: 1000,
            bulk_max_payload_bytes: 4 * 1024 * 1024,
            activity_retention_days: 30,
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
    /// The built-in resource types, shared by tenants without extensions.
    pub builtin: Arc<Vec<Arc<ResourceType>>>,
    reads: activity::ReadCounter,
    cursor_key: OnceCell<[u8; 32]>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, settings: Settings) -> Arc<Self> {
        Arc::new(AppState {
            store,
            settings,
            builtin: Arc::new(builtin_resource_types().into_iter().map(Arc::new).collect()),
            reads: activity::ReadCounter::default(),
            cursor_key: OnceCell::new(),
        })
    }

    pub fn capabilities(&self) -> Capabilities {
        Capabilities {
            max_results: self.settings.max_results,
            default_page_size: self.settings.default_count,
            max_patch_operations: self.settings.max_patch_operations,
            max_payload_bytes: self.settings.max_body_bytes,
            bulk: Some(BulkLimits {
                max_operations: self.settings.bulk_max_operations,
                max_payload_bytes: self.settings.bulk_max_payload_bytes,
            }),
            documentation_uri: None,
        }
    }

    /// The cursor signing key, the same on every node (kept in the store).
    async fn cursor_key(&self) -> Result<[u8; 32], error::ApiError> {
        self.cursor_key
            .get_or_try_init(|| async {
                let candidate = scimitar_auth::random_key()
                    .map_err(|e| error::ApiError(scimitar_protocol::ScimError::internal(e.to_string())))?;
                self.store
                    .secret("cursor-key", &candidate)
                    .await
                    .map_err(error::ApiError::from)
            })
            .await
            .copied()
    }

    /// Writes pending read counts and applies the activity retention.
    pub async fn housekeeping(&self) {
        self.reads.flush(&*self.store).await;
        let cutoff = time_days_ago(self.settings.activity_retention_days);
        match self.store.purge_activity(&cutoff).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "applied activity retention"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not apply activity retention"),
        }
    }
}

fn time_days_ago(days: u32) -> String {
    let t = std::time::SystemTime::now() - Duration::from_secs(u64::from(days) * 86_400);
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::from(t).format(&fmt).unwrap_or_default()
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/scim/{tenant}/v2", any(scim::dispatch_root))
        .route("/scim/{tenant}/v2/", any(scim::dispatch_root))
        .route("/scim/{tenant}/v2/{*rest}", any(scim::dispatch))
        .route("/admin/v1/tenants/{tenant}/schemas", any(admin::schemas))
        .route("/admin/v1/tenants/{tenant}/schemas/{urn}", any(admin::schema_one))
        .route("/admin/v1/tenants/{tenant}/activity", get(admin::activity))
        .layer(CatchPanicLayer::custom(scim::panic_response))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let bg_state = state.clone();
    let background = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            bg_state.reads.flush(&*bg_state.store).await;
            // Retention once an hour (and at start).
            if n.is_multiple_of(360) {
                bg_state.housekeeping().await;
            }
            n += 1;
        }
    });
    let result = axum::serve(
        listener,
        router(state.clone()).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    background.abort();
    state.reads.flush(&*state.store).await;
    result
}
