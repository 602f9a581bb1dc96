//! Scimitar's admin console: server-rendered pages for tenant
//! administrators, served by `scimitar serve` at the root of its URL.
//!
//! Sign-in with email and password (argon2id), sessions in HttpOnly,
//! SameSite=Strict cookies whose value is stored only as a SHA-256, a
//! synchronizer CSRF token on every form, throttled failed sign-ins, and
//! three roles: `admin` and `viewer` within a tenant (viewers cannot change
//! anything) and `operator` across tenants. Pages work without JavaScript;
//! the one small script only adds copy buttons. Assets are embedded.

mod auth;
mod error;
mod pages;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use scimitar_app::App;

pub use auth::{random_token, sha256};
pub use scimitar_app::accounts::MIN_PASSWORD_LEN;

/// Console behaviour that deployments and tests may change.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// Mark cookies `Secure`. Off only for plain-http development.
    pub secure_cookies: bool,
    /// A session unused for this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after sign-in, used or not.
    pub absolute_timeout: Duration,
    /// Failed sign-ins for one account from one client address within
    /// `throttle_window` before that pair is locked. Keyed by both, so that
    /// someone who knows an admin's email cannot lock the admin out from
    /// elsewhere.
    pub failures_per_email: u32,
    /// Failed sign-ins per client address within `throttle_window`.
    pub failures_per_ip: u32,
    pub throttle_window: Duration,
}

impl ConsoleConfig {
    /// Defaults for a public URL: `Secure` cookies unless it is plain http.
    /// `SCIMITAR_CONSOLE_SECURE_COOKIES=false|true` overrides that.
    pub fn for_public_url(public_url: &str) -> Self {
        let secure = match std::env::var("SCIMITAR_CONSOLE_SECURE_COOKIES").ok().as_deref() {
            Some("0" | "false" | "no") => false,
            Some("1" | "true" | "yes") => true,
            _ => !public_url.starts_with("http://"),
        };
        ConsoleConfig {
            secure_cookies: secure,
            idle_timeout: Duration::from_secs(30 * 60),
            absolute_timeout: Duration::from_secs(12 * 3600),
            failures_per_email: 5,
            failures_per_ip: 50,
            throttle_window: Duration::from_secs(15 * 60),
        }
    }
}

/// The console's state: the application, plus its own settings and throttle.
pub struct Console {
    pub app: Arc<App>,
    pub config: ConsoleConfig,
    throttle: Mutex<auth::Throttle>,
}

impl Console {
    /// `__Host-` binds the cookie to this host and path `/` (needs Secure).
    fn session_cookie(&self) -> &'static str {
        if self.config.secure_cookies {
            "__Host-scimitar_session"
        } else {
            "scimitar_session"
        }
    }
    fn login_cookie(&self) -> &'static str {
        if self.config.secure_cookies {
            "__Host-scimitar_login"
        } else {
            "scimitar_login"
        }
    }
    /// The one-time flash of a new Secret Token, between **Generate** and
    /// the page it redirects to (`pages/settings.rs`).
    fn flash_cookie(&self) -> &'static str {
        if self.config.secure_cookies {
            "__Host-scimitar_flash"
        } else {
            "scimitar_flash"
        }
    }
}

/// The console's routes (`/`, `/login`, `/logout`, `/setup`, `/console/…`,
/// `/assets/…`), to merge into the server's router.
pub fn router(app: Arc<App>) -> Router {
    let config = ConsoleConfig::for_public_url(&app.config.public_url);
    router_with(app, config)
}

pub fn router_with(app: Arc<App>, config: ConsoleConfig) -> Router {
    let console = Arc::new(Console {
        app,
        config,
        throttle: Mutex::new(auth::Throttle::default()),
    });
    Router::new()
        .route("/", get(pages::signin::root))
        .route("/login", get(pages::signin::login_form).post(pages::signin::login))
        .route("/logout", axum::routing::post(pages::signin::logout))
        .route("/setup", get(pages::signin::setup_form).post(pages::signin::setup))
        .route("/invite", get(pages::invite::invite_form).post(pages::invite::invite))
        .route("/console", get(pages::signin::home))
        .route(
            "/console/tenants",
            get(pages::tenants::tenants).post(pages::tenants::create_tenant),
        )
        .route("/console/t/{tenant}", get(pages::overview::overview))
        .route("/console/t/{tenant}/users", get(pages::directory::users))
        .route("/console/t/{tenant}/users/{id}", get(pages::directory::user))
        .route("/console/t/{tenant}/groups", get(pages::directory::groups))
        .route("/console/t/{tenant}/groups/{id}", get(pages::directory::group))
        .route("/console/t/{tenant}/activity", get(pages::activity::activity))
        .route("/console/t/{tenant}/activity.csv", get(pages::activity::activity_csv))
        .route(
            "/console/t/{tenant}/activity/changes/{change}",
            get(pages::activity::change_events),
        )
        .route(
            "/console/t/{tenant}/settings/provisioning",
            get(pages::settings::provisioning),
        )
        .route(
            "/console/t/{tenant}/settings/provisioning/validate",
            axum::routing::post(pages::settings::validate),
        )
        .route(
            "/console/t/{tenant}/settings/provisioning/invite",
            axum::routing::post(pages::settings::create_invite),
        )
        .route(
            "/console/t/{tenant}/settings/provisioning/tokens",
            axum::routing::post(pages::settings::generate_token),
        )
        .route(
            "/console/t/{tenant}/settings/provisioning/tokens/{id}/revoke",
            get(pages::settings::revoke_confirm).post(pages::settings::revoke),
        )
        .route(
            "/console/t/{tenant}/settings/webhooks",
            get(pages::webhooks::webhooks).post(pages::webhooks::add),
        )
        .route(
            "/console/t/{tenant}/settings/webhooks/{id}/{action}",
            axum::routing::post(pages::webhooks::action),
        )
        .route(
            "/console/t/{tenant}/settings/accounts",
            get(pages::accounts::accounts).post(pages::accounts::create_account),
        )
        .route(
            "/console/t/{tenant}/applications",
            get(pages::jobs::jobs).post(pages::jobs::create_job),
        )
        .route("/console/t/{tenant}/applications/{job}", get(pages::jobs::job))
        .route(
            "/console/t/{tenant}/applications/{job}/credentials",
            post(pages::jobs::credentials),
        )
        .route(
            "/console/t/{tenant}/applications/{job}/settings",
            post(pages::jobs::settings),
        )
        .route(
            "/console/t/{tenant}/applications/{job}/restart",
            post(pages::jobs::restart),
        )
        .route(
            "/console/t/{tenant}/applications/{job}/allow-deletes",
            post(pages::jobs::allow_deletes),
        )
        .route(
            "/console/t/{tenant}/applications/{job}/delete",
            post(pages::jobs::delete_job),
        )
        .route(
            "/console/t/{tenant}/applications/{job}/file",
            post(pages::jobs::job_file),
        )
        .route(
            "/console/t/{tenant}/applications/{job}/scoping/{object}",
            post(pages::jobs::scoping),
        )
        .route(
            "/console/t/{tenant}/applications/{job}/mappings/{object}",
            get(pages::jobs::mapping).post(pages::jobs::save_mapping),
        )
        .route(
            "/console/t/{tenant}/applications/{job}/details",
            get(pages::jobs::details),
        )
        .route(
            "/console/t/{tenant}/applications/{job}/progress.json",
            get(pages::jobs::progress),
        )
        .route("/console/t/{tenant}/applications/{job}/logs", get(pages::jobs::logs))
        .route(
            "/console/t/{tenant}/applications/{job}/logs.csv",
            get(pages::jobs::logs_csv),
        )
        .route(
            "/console/t/{tenant}/applications/{job}/logs.json",
            get(pages::jobs::logs_json),
        )
        .route(
            "/console/t/{tenant}/applications/{job}/logs/{id}",
            get(pages::jobs::log_record),
        )
        .route(
            "/console/t/{tenant}/applications/{job}/provision",
            get(pages::jobs::on_demand).post(pages::jobs::run_on_demand),
        )
        .route("/assets/{file}", get(asset))
        // Browsers ask for it whatever the page links.
        .route(
            "/favicon.ico",
            get(|| asset(axum::extract::Path("favicon.svg".to_string()))),
        )
        .layer(axum::middleware::from_fn(security_headers))
        // Console forms are a few fields; the sign-in form is open to anyone,
        // so its body is bounded well below axum's default 2 MB.
        .layer(axum::extract::DefaultBodyLimit::max(FORM_BODY_LIMIT))
        .with_state(console)
}

/// The largest form body the console reads.
pub const FORM_BODY_LIMIT: usize = 64 * 1024;

/// Prints nothing and returns the one-time setup link when the
/// installation has no console account yet (a fresh install); the link
/// creates the first operator and stops working once used, once any
/// account exists, or after 24 hours.
pub async fn setup_link(app: &App) -> Result<Option<String>, String> {
    if app.store.count_admins().await.map_err(|e| e.to_string())? > 0 {
        return Ok(None);
    }
    let code = random_token().map_err(|e| e.to_string())?;
    let expires = time_from_now(Duration::from_secs(24 * 3600));
    app.store
        .put_setup_code(&sha256(&code), &expires)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Some(format!("{}/setup?code={code}", app.config.public_url)))
}

async fn security_headers(req: Request<Body>, next: Next) -> Response {
    let is_asset = req.uri().path().starts_with("/assets/");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(h, "x-content-type-options", "nosniff");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "permissions-policy", "camera=(), microphone=(), geolocation=()");
    if !is_asset {
        // Pages can show a Secret Token once: never keep them in a cache.
        set(h, "cache-control", "no-store");
    }
    resp
}

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");
const ICON: &str = include_str!("../assets/favicon.svg");

async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, ty) = match file.as_str() {
        "console.css" => (CSS, "text/css; charset=utf-8"),
        "console.js" => (JS, "text/javascript; charset=utf-8"),
        "favicon.svg" => (ICON, "image/svg+xml"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ty),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A plain error page (no chrome: the caller may not be signed in).
pub(crate) fn error_page(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let page = error::ErrorPage {
        status,
        title: code.canonical_reason().unwrap_or("Error").to_string(),
        message: message.to_string(),
    };
    (code, render(&page)).into_response()
}

pub(crate) fn render(t: &impl askama::Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a console page");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response()
        }
    }
}

const TIME_FMT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// `now - d` in the store's timestamp format (comparable as text).
pub(crate) fn time_ago(d: Duration) -> String {
    let t = time::OffsetDateTime::now_utc() - d;
    t.format(TIME_FMT).unwrap_or_default()
}

pub(crate) fn time_from_now(d: Duration) -> String {
    let t = time::OffsetDateTime::now_utc() + d;
    t.format(TIME_FMT).unwrap_or_default()
}
