//! Scimitar's HTTP server.
//!
//! Routes: `/healthz`; each tenant's SCIM base URL (its Tenant URL)
//! `/scim/{tenant}/v2`, whose resource paths are matched case-insensitively
//! and tolerate a trailing slash because Entra's Tenant URL is typed by hand
//! (`scim.rs` dispatches them); and the tenant administration API under
//! `/admin/v1/tenants/{tenant}` (`admin.rs`: schemas, activity,
//! provisioning jobs).

mod admin;
mod auth;
mod body;
mod bulk;
mod conn;
mod cursor;
pub mod error;
mod limits;
pub mod reqlog;
mod scim;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};
use scimitar_app::App;
use scimitar_protocol::discovery::{BulkLimits, Capabilities};
use scimitar_protocol::filter::Limits;
use scimitar_store::Store;
use tokio::sync::OnceCell;
use tower_http::catch_panic::CatchPanicLayer;

pub use scimitar_app::tenant_url;

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
    /// Change events older than this are deleted.
    pub event_retention_days: u32,
    /// Address ranges webhooks may be sent to besides public addresses
    /// (`--webhook-allow-private`); loopback ones also allow plain http.
    pub webhook_allow: Vec<scimitar_app::webhooks::Cidr>,
    /// How the webhook delivery workers run (lease, poll, retry schedule);
    /// `None`: no delivery from this server.
    pub webhook_delivery: Option<scimitar_app::delivery::DeliverySettings>,
    /// SCIM requests per second per tenant (token bucket, burst of twice
    /// that); 0 turns the limit off.
    pub rate_limit_per_tenant: u32,
    /// Failed authentications per minute per source address and per token
    /// prefix before that source is refused for a while; 0 turns it off.
    pub auth_failures_per_minute: u32,
    /// Sources (addresses; token prefixes) each failure map remembers at
    /// most (`limits.rs`).
    pub failure_sources_max: usize,
    /// Take the client address from `X-Forwarded-For` (behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Proxies in front that each append to `X-Forwarded-For`: the client
    /// is the entry this many places from the right.
    pub trusted_proxy_hops: usize,
    /// A request that takes longer is answered 503.
    pub request_timeout: Duration,
    /// A request body that takes longer to arrive is answered 408.
    pub body_timeout: Duration,
    /// Requests whose headers exceed this many bytes are answered 431.
    pub max_header_bytes: usize,
    /// Once the first byte of a request has arrived, its headers must be
    /// complete within this time, or the connection is closed.
    pub header_read_timeout: Duration,
    /// A connection with no request in progress and no byte moved for this
    /// long is closed (before its first request, between keep-alive ones).
    pub idle_timeout: Duration,
    /// Memory for request bodies in flight, shared by all requests: a
    /// quarter for their bytes, the rest for their parsed form (`body.rs`).
    pub body_memory: usize,
    /// Requests processed at once; more are answered 503 at once (load
    /// shedding) rather than queued.
    pub max_concurrent_requests: usize,
    /// Scanning list queries per tenant at once (429 beyond); 0: no cap.
    pub scans_per_tenant: usize,
    /// The filter cost budget (400 `tooMany` beyond); 0: none.
    pub filter_cost_budget: u64,
    /// One line per request at `info` (`reqlog.rs`).
    pub log_requests: bool,
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
            event_retention_days: 30,
            webhook_allow: Vec::new(),
            webhook_delivery: Some(scimitar_app::delivery::DeliverySettings::default()),
            rate_limit_per_tenant: 2000,
            auth_failures_per_minute: 30,
            failure_sources_max: limits::FAILURE_SOURCES_MAX,
            trust_forwarded_for: false,
            trusted_proxy_hops: 1,
            request_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(15),
            max_header_bytes: 16 * 1024,
            max_concurrent_requests: 1024,
            scans_per_tenant: scimitar_app::DEFAULT_SCANS_PER_TENANT,
            filter_cost_budget: scimitar_app::DEFAULT_FILTER_COST_BUDGET,
            body_memory: 128 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            log_requests: true,
        }
    }

    /// The Tenant URL to paste into an identity provider.
    pub fn tenant_url(&self, tenant: &str) -> String {
        tenant_url(&self.public_url, tenant)
    }

    /// What the application layer needs of these settings.
    pub fn app_config(&self) -> scimitar_app::Config {
        scimitar_app::Config {
            public_url: self.public_url.clone(),
            max_patch_operations: self.max_patch_operations,
            activity_retention_days: self.activity_retention_days,
            event_retention_days: self.event_retention_days,
            scans_per_tenant: self.scans_per_tenant,
            filter_cost_budget: self.filter_cost_budget,
            webhook_allow: self.webhook_allow.clone(),
            webhook_delivery: self.webhook_delivery.clone().unwrap_or_default(),
        }
    }
}

/// The HTTP server's state: the application, and what only HTTP needs
/// (settings of the transport, rate limits, the cursor key).
pub struct AppState {
    pub app: Arc<App>,
    pub settings: Settings,
    cursor_key: OnceCell<[u8; 32]>,
    limiter: limits::Limiter,
    body_budget: body::Budget,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, settings: Settings) -> Arc<Self> {
        // No query outlives the request it answers.
        store.limit_query_time(settings.request_timeout);
        Arc::new(AppState {
            app: App::new(store, settings.app_config()),
            cursor_key: OnceCell::new(),
            body_budget: body::Budget::new(
                settings.body_memory,
                settings.max_body_bytes.max(settings.bulk_max_payload_bytes),
            ),
            limiter: limits::Limiter::new(
                settings.rate_limit_per_tenant,
                settings.auth_failures_per_minute,
                settings.failure_sources_max,
            ),
            settings,
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
                self.app
                    .store
                    .secret("cursor-key", &candidate)
                    .await
                    .map_err(error::ApiError::from)
            })
            .await
            .copied()
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    router_with(state, Router::new())
}

/// The SCIM API with `extra` routes beside it (the admin console), all
/// behind the same layers: panic catching, the header limit, the limit of
/// concurrent requests (which bounds what unauthenticated form posts can
/// hold in memory), tracing, the request log and request ids.
pub fn router_with(state: Arc<AppState>, extra: Router) -> Router {
    use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
    // Installed now, so that what happens before the first scrape counts.
    prometheus();
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/scim/{tenant}/v2", any(scim::dispatch_root))
        .route("/scim/{tenant}/v2/", any(scim::dispatch_root))
        .route("/scim/{tenant}/v2/{*rest}", any(scim::dispatch))
        .route("/admin/v1/tenants/{tenant}/schemas", any(admin::schemas))
        .route("/admin/v1/tenants/{tenant}/schemas/{urn}", any(admin::schema_one))
        .route("/admin/v1/tenants/{tenant}/activity", get(admin::activity))
        .route("/admin/v1/tenants/{tenant}/events", get(admin::events))
        .route("/admin/v1/tenants/{tenant}/jobs", any(admin::jobs))
        .route("/admin/v1/tenants/{tenant}/jobs/{name}", any(admin::job_one))
        .route(
            "/admin/v1/tenants/{tenant}/jobs/{name}/{action}",
            any(admin::job_action),
        )
        .route("/admin/v1/tenants/{tenant}/webhooks", any(admin::webhooks))
        .route("/admin/v1/tenants/{tenant}/webhooks/{id}", any(admin::webhook_one))
        .route(
            "/admin/v1/tenants/{tenant}/webhooks/{id}/{action}",
            any(admin::webhook_action),
        )
        .merge(extra.with_state::<Arc<AppState>>(()))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(axum::middleware::from_fn_with_state(state.clone(), header_limit))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |_: tower::BoxError| async {
                        metrics::counter!("scimitar_shed_requests_total").increment(1);
                        error::ApiError(scimitar_protocol::ScimError::new(
                            503,
                            None,
                            "the server is at its limit of concurrent requests; retry shortly",
                        ))
                        .with_retry_after(1)
                    },
                ))
                .load_shed()
                .concurrency_limit(state.settings.max_concurrent_requests.max(1)),
        )
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                // No query string: filters carry personal data.
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        // Outside the span and every other layer: it sees the status that
        // leaves (503 of load shedding, 500 of a panic) and the request id.
        .layer(axum::middleware::from_fn_with_state(state.clone(), reqlog::log_request))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Refuses requests with oversized headers before any other work.
async fn header_limit(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let size: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    let limit = state.settings.max_header_bytes;
    if size > limit {
        return error::ApiError(scimitar_protocol::ScimError::new(
            431,
            None,
            format!("the request headers are {size} bytes; the maximum is {limit}"),
        ))
        .into_response();
    }
    next.run(req).await
}

/// The process-wide Prometheus recorder (installed once; test processes
/// start many servers).
fn prometheus() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = metrics_exporter_prometheus::PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .unwrap_or_else(|_| metrics_exporter_prometheus::PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The Prometheus text, with the gauges of this server's state.
async fn metrics(axum::extract::State(state): axum::extract::State<Arc<AppState>>) -> String {
    // One recorder per process (tests run many servers): set and render
    // together, so that a render shows one server's gauges.
    static RENDER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let handle = prometheus();
    let _one = RENDER.lock();
    let sizes = state.limiter.sizes();
    for (map, n) in [
        ("tenant", sizes.tenants),
        ("address", sizes.addresses),
        ("prefix", sizes.prefixes),
    ] {
        metrics::gauge!("scimitar_throttle_entries", "map" => map).set(n as f64);
    }
    metrics::gauge!("scimitar_body_memory_bytes").set(state.body_budget.in_use() as f64);
    handle.render()
}

/// Ready when the database answers and is fully migrated; otherwise a
/// SCIM error (503), like every other error.
async fn readyz(axum::extract::State(state): axum::extract::State<Arc<AppState>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match state.app.store.ready().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            error::ApiError(scimitar_protocol::ScimError::new(
                503,
                None,
                "not ready: the database is unavailable or not migrated",
            ))
            .into_response()
        }
    }
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    serve_app(listener, state, app, None, shutdown).await
}

/// Serves `app` (the SCIM router, possibly merged with others such as the
/// console) over plain HTTP or TLS, with the background work (read
/// counters, activity retention) running alongside, until `shutdown`.
pub async fn serve_app(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    app: Router,
    tls_files: Option<tls::TlsFiles>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Webhook deliveries from the events outbox, on every node (a lease per
    // endpoint makes one node deliver at a time).
    let delivery = match state.settings.webhook_delivery {
        Some(_) => match state.app.start_webhook_delivery() {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::error!(error = %e.detail, "webhook delivery is not running");
                None
            }
        },
        None => None,
    };
    let bg_state = state.clone();
    let background = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            bg_state.app.flush_reads().await;
            bg_state.limiter.prune();
            // Retention once an hour (and at start).
            if n.is_multiple_of(360) {
                bg_state.app.housekeeping().await;
            }
            // Planner statistics after bulk changes (a cheap check when
            // there were none).
            match bg_state.app.store.refresh_stale_statistics().await {
                Ok(tables) if !tables.is_empty() => {
                    tracing::info!(tables = %tables.join(", "), "planner statistics refreshed after many changes")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not refresh planner statistics"),
            }
            n += 1;
        }
    });
    let timeouts = conn::Timeouts {
        idle: state.settings.idle_timeout,
        header_read: state.settings.header_read_timeout,
    };
    // Long polls of the events API end when shutdown begins, rather than
    // holding it for up to their `wait`.
    let closing = state.app.clone();
    let shutdown = async move {
        shutdown.await;
        closing.end_long_polls();
    };
    let result = match tls_files {
        Some(files) => tls::serve_tls_with(listener, app, files, timeouts, shutdown).await,
        None => {
            let plain = |tcp: tokio::net::TcpStream, _: SocketAddr| std::future::ready(Some(tcp));
            conn::serve(listener, app, timeouts, plain, shutdown).await
        }
    };
    background.abort();
    if let Some(d) = delivery {
        d.stop();
    }
    state.app.flush_reads().await;
    result
}
