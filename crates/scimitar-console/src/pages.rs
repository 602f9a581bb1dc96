//! The console's pages. Handlers read the store directly; templates get
//! plain, pre-formatted values.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use scimitar_protocol::filter::parse_filter;
use scimitar_protocol::schema::ResourceType;
use scimitar_store::{ActivityEvent, ActivityQuery, CursorPos, Kind, ListQuery, Record, StoreError, Tenant};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{self, Authed, ClientIp};
use crate::{Console, error_page, render};

const PAGE_SIZE: usize = 50;

type Shared = State<Arc<Console>>;

// ---------------------------------------------------------------- helpers

fn store_error(e: StoreError) -> Response {
    tracing::error!(error = %e, "console store access");
    error_page(
        500,
        "The console could not read or write its database. Try again; if it persists, check the server log.",
    )
}

fn forbidden() -> Response {
    error_page(
        403,
        "Your role does not allow this. Viewers can look at everything but cannot change anything; ask an Admin.",
    )
}

fn csrf_failed() -> Response {
    error_page(
        403,
        "This form has expired or did not come from this console. Go back, reload the page and try again.",
    )
}

/// The tenant in the path, if the signed-in account may see it. Others'
/// tenants are "not found" so that names are not confirmed.
/// A tenant the signed-in account may change: the form's CSRF token (when
/// it is a form), the tenant's visibility, then the role, in that order.
async fn writable_tenant(console: &Console, a: &Authed, name: &str, csrf: Option<&str>) -> Result<Tenant, Response> {
    if csrf.is_some_and(|c| !a.check_csrf(c)) {
        return Err(csrf_failed());
    }
    let t = tenant_for(console, a, name).await?;
    if !a.can_write() {
        return Err(forbidden());
    }
    Ok(t)
}

async fn tenant_for(console: &Console, a: &Authed, name: &str) -> Result<Tenant, Response> {
    let t = console
        .app
        .store
        .tenant(name)
        .await
        .map_err(store_error)?
        .ok_or_else(|| error_page(404, "There is no such tenant."))?;
    if a.is_operator() || a.session.admin.tenant_id == Some(t.id) {
        Ok(t)
    } else {
        Err(error_page(404, "There is no such tenant."))
    }
}

/// What every signed-in page shows around its content.
pub struct Chrome {
    pub email: String,
    pub role: String,
    pub csrf: String,
    pub tenant: String,
    pub section: &'static str,
    pub operator: bool,
    pub can_write: bool,
}

fn chrome(a: &Authed, tenant: &str, section: &'static str) -> Chrome {
    Chrome {
        email: a.session.admin.email.clone(),
        role: a.role().to_string(),
        csrf: a.session.csrf.clone(),
        tenant: tenant.to_string(),
        section,
        operator: a.is_operator(),
        can_write: a.can_write(),
    }
}

/// `2026-11-26T04:30:12.345Z` → `2026-11-26 04:30:12 UTC`.
pub fn when(s: &str) -> String {
    if s.len() >= 19 {
        format!("{} {} UTC", &s[..10], &s[11..19])
    } else {
        s.to_string()
    }
}

fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// "3 minutes ago", for the freshness of the last request.
pub fn ago(s: &str) -> String {
    let Some(t) = parse_time(s) else { return String::new() };
    let secs = (time::OffsetDateTime::now_utc() - t).whole_seconds().max(0);
    match secs {
        0..60 => "less than a minute ago".into(),
        60..120 => "1 minute ago".into(),
        120..3600 => format!("{} minutes ago", secs / 60),
        3600..7200 => "1 hour ago".into(),
        7200..86400 => format!("{} hours ago", secs / 3600),
        _ => format!("{} days ago", secs / 86400),
    }
}

fn rt(console: &Console, name: &str) -> Option<Arc<ResourceType>> {
    console.app.builtin.iter().find(|r| r.name == name).cloned()
}

/// A SCIM string literal (JSON string syntax) for a filter.
fn lit(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn str_at<'a>(doc: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a str> {
    doc.get(k).and_then(Value::as_str)
}

fn user_email(doc: &serde_json::Map<String, Value>) -> String {
    let emails = doc.get("emails").and_then(Value::as_array);
    emails
        .and_then(|a| {
            a.iter()
                .find(|e| e["primary"] == Value::Bool(true))
                .or_else(|| a.first())
        })
        .and_then(|e| e["value"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn user_name(doc: &serde_json::Map<String, Value>) -> String {
    let name = doc.get("name");
    if let Some(f) = name.and_then(|n| n["formatted"].as_str()) {
        return f.to_string();
    }
    let parts: Vec<&str> = ["givenName", "familyName"]
        .iter()
        .filter_map(|k| name.and_then(|n| n[*k].as_str()))
        .collect();
    if parts.is_empty() {
        str_at(doc, "displayName").unwrap_or_default().to_string()
    } else {
        parts.join(" ")
    }
}

fn is_active(doc: &serde_json::Map<String, Value>) -> bool {
    doc.get("active").and_then(Value::as_bool).unwrap_or(true)
}

/// Flattens a document into `(path, value)` rows for the detail pages.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, v, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Null => {}
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

fn count_query(console: &Console, kind: Kind, filter: Option<&str>) -> Option<ListQuery> {
    let rt = rt(console, kind.as_str())?;
    Some(ListQuery {
        kind,
        rt,
        filter: filter.and_then(|f| parse_filter(f).ok()),
        sort: None,
        start_index: 1,
        count: 0,
        cursor: None,
    })
}

async fn count(console: &Console, tenant: &Tenant, kind: Kind, filter: Option<&str>) -> Result<u64, Response> {
    let Some(q) = count_query(console, kind, filter) else {
        return Ok(0);
    };
    Ok(console.app.store.list(tenant.id, q).await.map_err(store_error)?.total)
}

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub status: u16,
    pub title: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    email: String,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    expired: Option<String>,
    signed_out: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

pub async fn root(authed: Result<Authed, Response>) -> Response {
    match authed {
        Ok(_) => Redirect::to("/console").into_response(),
        Err(_) => Redirect::to("/login").into_response(),
    }
}

/// A sign-in form with a fresh double-submit CSRF token in a cookie.
fn login_page(
    console: &Console,
    status: StatusCode,
    email: &str,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let csrf = match auth::random_token() {
        Ok(t) => t,
        Err(_) => return error_page(500, "The server could not generate a random value."),
    };
    let page = LoginPage {
        csrf: csrf.clone(),
        email: email.to_string(),
        error,
        notice,
    };
    let mut resp = (status, render(&page)).into_response();
    if let Ok(v) = auth::set_cookie(console, console.login_cookie(), &csrf, Some(3600)).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

pub async fn login_form(
    State(console): Shared,
    authed: Result<Authed, Response>,
    Query(q): Query<LoginQuery>,
) -> Response {
    if authed.is_ok() {
        return Redirect::to("/console").into_response();
    }
    let notice = if q.expired.is_some() {
        Some("Your session has ended. Sign in again.".to_string())
    } else if q.signed_out.is_some() {
        Some("You are signed out.".to_string())
    } else {
        None
    };
    login_page(&console, StatusCode::OK, "", None, notice)
}

pub async fn login(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let cfg = &console.config;
    let given = auth::cookie(&headers, console.login_cookie()).unwrap_or_default();
    if given.is_empty() || !auth::same(&given, &f.csrf) {
        return login_page(
            &console,
            StatusCode::FORBIDDEN,
            &f.email,
            Some("The sign-in form expired. Please try again.".into()),
            None,
        );
    }
    let email = f.email.trim().to_lowercase();
    let email_key = format!("email:{email}");
    let ip_key = format!("ip:{}", ip.map(|i| i.to_string()).unwrap_or_default());
    let locked = {
        let mut t = console.throttle.lock().unwrap_or_else(|p| p.into_inner());
        t.locked(&email_key, cfg.failures_per_email, cfg.throttle_window)
            .or_else(|| t.locked(&ip_key, cfg.failures_per_ip, cfg.throttle_window))
    };
    if let Some(secs) = locked {
        tracing::warn!(ip = ?ip, "console sign-in refused: too many failed attempts");
        let minutes = secs.div_ceil(60);
        return login_page(
            &console,
            StatusCode::TOO_MANY_REQUESTS,
            &f.email,
            Some(format!(
                "Too many failed sign-in attempts. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            )),
            None,
        );
    }
    let admin = match console.app.store.admin_by_email(&email).await {
        Ok(a) => a,
        Err(e) => return store_error(e),
    };
    let phc = admin
        .as_ref()
        .map(|a| a.password_hash.clone())
        .unwrap_or_else(|| auth::dummy_hash().to_string());
    let ok = auth::verify_password_async(f.password, phc).await && admin.is_some();
    let known_tenant = admin.as_ref().and_then(|a| a.tenant_id);
    let Some(admin) = admin.filter(|_| ok) else {
        {
            let mut t = console.throttle.lock().unwrap_or_else(|p| p.into_inner());
            t.fail(&email_key, cfg.throttle_window);
            t.fail(&ip_key, cfg.throttle_window);
        }
        tracing::warn!(ip = ?ip, "console sign-in failed");
        audit(&console, known_tenant, &email, "admin.sign-in-failed", None, ip).await;
        return login_page(
            &console,
            StatusCode::UNAUTHORIZED,
            &f.email,
            Some("Wrong email or password.".into()),
            None,
        );
    };
    console
        .throttle
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear(&email_key);
    audit(&console, admin.tenant_id, &admin.email, "admin.signed-in", None, ip).await;
    // Session rotation: whatever session the browser had ends here.
    if let Some(old) = auth::cookie(&headers, console.session_cookie()) {
        let _ = console.app.store.delete_session(&auth::sha256(&old)).await;
    }
    let (Ok(value), Ok(csrf)) = (auth::random_token(), auth::random_token()) else {
        return error_page(500, "The server could not generate a random value.");
    };
    let now = scimitar_store::now_utc();
    if let Err(e) = console
        .app
        .store
        .create_session(&auth::sha256(&value), admin.id, &csrf, &now)
        .await
    {
        return store_error(e);
    }
    // Housekeeping on sign-in keeps the table small without a timer.
    let _ = console
        .app
        .store
        .purge_sessions(
            &crate::time_ago(cfg.idle_timeout),
            &crate::time_ago(cfg.absolute_timeout),
        )
        .await;
    tracing::info!(account = admin.id, role = %admin.role, "console sign-in");
    let mut resp = Redirect::to("/console").into_response();
    let h = resp.headers_mut();
    for c in [
        auth::set_cookie(&console, console.session_cookie(), &value, None),
        auth::set_cookie(&console, console.login_cookie(), "", Some(0)),
    ] {
        if let Ok(v) = c.parse() {
            h.append(header::SET_COOKIE, v);
        }
    }
    resp
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(State(console): Shared, a: Authed, Form(f): Form<CsrfForm>) -> Response {
    if !a.check_csrf(&f.csrf) {
        return csrf_failed();
    }
    let _ = console.app.store.delete_session(&a.hash).await;
    let mut resp = Redirect::to("/login?signed_out=1").into_response();
    if let Ok(v) = auth::set_cookie(&console, console.session_cookie(), "", Some(0)).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    csrf: String,
    code: String,
    email: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct SetupQuery {
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

fn setup_page(console: &Console, status: StatusCode, code: &str, email: &str, error: Option<String>) -> Response {
    let Ok(csrf) = auth::random_token() else {
        return error_page(500, "The server could not generate a random value.");
    };
    let page = SetupPage {
        csrf: csrf.clone(),
        code: code.to_string(),
        email: email.to_string(),
        error,
    };
    let mut resp = (status, render(&page)).into_response();
    if let Ok(v) = auth::set_cookie(console, console.login_cookie(), &csrf, Some(3600)).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

pub async fn setup_form(State(console): Shared, Query(q): Query<SetupQuery>) -> Response {
    setup_page(&console, StatusCode::OK, &q.code, "", None)
}

/// Creates the first operator with the one-time setup code printed by `serve`.
pub async fn setup(State(console): Shared, headers: HeaderMap, Form(f): Form<SetupForm>) -> Response {
    let given = auth::cookie(&headers, console.login_cookie()).unwrap_or_default();
    if given.is_empty() || !auth::same(&given, &f.csrf) {
        return setup_page(
            &console,
            StatusCode::FORBIDDEN,
            &f.code,
            &f.email,
            Some("The form expired. Please try again.".into()),
        );
    }
    let email = f.email.trim().to_string();
    if !email.contains('@') || f.password.chars().count() < auth::MIN_PASSWORD_LEN {
        return setup_page(
            &console,
            StatusCode::BAD_REQUEST,
            &f.code,
            &email,
            Some(format!(
                "Enter an email address and a password of at least {} characters.",
                auth::MIN_PASSWORD_LEN
            )),
        );
    }
    let now = scimitar_store::now_utc();
    match console
        .app
        .store
        .take_setup_code(&auth::sha256(f.code.trim()), &now)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            return error_page(
                403,
                "This setup link is invalid, expired or already used. Create an account with `scimitar admin create` instead.",
            );
        }
        Err(e) => return store_error(e),
    }
    let Ok(hash) = auth::hash_password_async(f.password).await else {
        return error_page(500, "The password could not be hashed.");
    };
    match console.app.store.create_admin(None, &email, "operator", &hash).await {
        Ok(_) => Redirect::to("/login").into_response(),
        Err(StoreError::Conflict(_)) => error_page(409, "An account with this email already exists."),
        Err(e) => store_error(e),
    }
}

pub async fn home(a: Authed) -> Response {
    match &a.session.admin.tenant {
        Some(t) if !a.is_operator() => Redirect::to(&format!("/console/t/{t}")).into_response(),
        _ => Redirect::to("/console/tenants").into_response(),
    }
}

// ---------------------------------------------------------------- tenants (operators)

#[derive(Template)]
#[template(path = "tenants.html")]
struct TenantsPage {
    c: Chrome,
    tenants: Vec<(String, String, String)>,
    error: Option<String>,
    notice: Option<String>,
}

#[derive(Deserialize)]
pub struct TenantForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn tenants_page(
    console: &Console,
    a: &Authed,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let list = match console.app.store.list_tenants().await {
        Ok(l) => l,
        Err(e) => return store_error(e),
    };
    let page = TenantsPage {
        c: chrome(a, "", "tenants"),
        tenants: list
            .into_iter()
            .map(|t| {
                let url = console.app.settings.tenant_url(&t.name);
                (t.name, url, when(&t.created))
            })
            .collect(),
        error,
        notice,
    };
    (status, render(&page)).into_response()
}

pub async fn tenants(State(console): Shared, a: Authed) -> Response {
    if !a.is_operator() {
        return forbidden();
    }
    tenants_page(&console, &a, StatusCode::OK, None, None).await
}

fn valid_tenant_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// Creates a tenant and its first admin (operators only).
pub async fn create_tenant(State(console): Shared, a: Authed, Form(f): Form<TenantForm>) -> Response {
    if !a.check_csrf(&f.csrf) {
        return csrf_failed();
    }
    if !a.is_operator() {
        return forbidden();
    }
    let name = f.name.trim();
    let email = f.email.trim();
    let bad = |m: String| tenants_page(&console, &a, StatusCode::BAD_REQUEST, Some(m), None);
    if !valid_tenant_name(name) {
        return bad("Tenant names are 1–63 characters of a-z, 0-9 and '-', starting with a letter or digit.".into())
            .await;
    }
    if !email.contains('@') || f.password.chars().count() < auth::MIN_PASSWORD_LEN {
        return bad(format!(
            "Enter the first admin's email and a password of at least {} characters.",
            auth::MIN_PASSWORD_LEN
        ))
        .await;
    }
    if let Ok(Some(_)) = console.app.store.admin_by_email(email).await {
        return bad("An account with this email already exists.".into()).await;
    }
    let t = match console.app.store.create_tenant(name).await {
        Ok(t) => t,
        Err(StoreError::Conflict(_)) => return bad(format!("A tenant named '{name}' already exists.")).await,
        Err(e) => return store_error(e),
    };
    let Ok(hash) = auth::hash_password_async(f.password).await else {
        return error_page(500, "The password could not be hashed.");
    };
    if let Err(e) = console.app.store.create_admin(Some(t.id), email, "admin", &hash).await {
        return store_error(e);
    }
    tracing::info!(tenant = %t.name, by = a.session.admin.id, "console created a tenant");
    audit(
        &console,
        Some(t.id),
        &a.session.admin.email,
        "tenant.created",
        Some(&t.name),
        None,
    )
    .await;
    audit(
        &console,
        Some(t.id),
        &a.session.admin.email,
        "admin.created",
        Some(email),
        None,
    )
    .await;
    tenants_page(
        &console,
        &a,
        StatusCode::CREATED,
        None,
        Some(format!("Created tenant '{}' with its first admin {email}.", t.name)),
    )
    .await
}

// ---------------------------------------------------------------- overview

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    c: Chrome,
    users: u64,
    active: u64,
    disabled: u64,
    groups: u64,
    writes_24h: usize,
    failures_24h: usize,
    reads_24h: u64,
    last_success: Option<(String, String)>,
    last_failure: Option<(String, String, String)>,
    last_request: Option<(String, String)>,
    active_tokens: usize,
    revoked_tokens: usize,
}

pub async fn overview(State(console): Shared, a: Authed, Path(tenant): Path<String>) -> Response {
    let t = match tenant_for(&console, &a, &tenant).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let store = &console.app.store;
    let run = async {
        let users = count(&console, &t, Kind::User, None).await?;
        let active = count(&console, &t, Kind::User, Some("active eq true")).await?;
        let disabled = count(&console, &t, Kind::User, Some("active eq false")).await?;
        let groups = count(&console, &t, Kind::Group, None).await?;
        let since = crate::time_ago(std::time::Duration::from_secs(86_400));
        let day = store
            .list_activity(
                t.id,
                ActivityQuery {
                    since: Some(since.clone()),
                    limit: 100_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(store_error)?;
        let failures_24h = day.iter().filter(|e| e.outcome == "failure").count();
        let reads_24h = store
            .read_counts(t.id, &since[..13])
            .await
            .map_err(store_error)?
            .iter()
            .map(|r| r.count)
            .sum();
        let last = |outcome: &'static str| ActivityQuery {
            outcome: Some(outcome.into()),
            limit: 1,
            ..Default::default()
        };
        let last_success = store
            .list_activity(t.id, last("success"))
            .await
            .map_err(store_error)?
            .into_iter()
            .next()
            .map(|e| (when(&e.time), describe(&e)));
        let last_failure = store
            .list_activity(t.id, last("failure"))
            .await
            .map_err(store_error)?
            .into_iter()
            .next()
            .map(|e| (when(&e.time), describe(&e), e.error.unwrap_or_default()));
        let tokens = store.list_tokens(t.id).await.map_err(store_error)?;
        let last_used = tokens.iter().filter_map(|k| k.last_used.clone()).max();
        let page = OverviewPage {
            c: chrome(&a, &t.name, "overview"),
            users,
            active,
            disabled,
            groups,
            writes_24h: day.len(),
            failures_24h,
            reads_24h,
            last_success,
            last_failure,
            last_request: last_used.map(|l| (when(&l), ago(&l))),
            active_tokens: tokens
                .iter()
                .filter(|k| k.revoked.is_none() && k.scope == "scim")
                .count(),
            revoked_tokens: tokens.iter().filter(|k| k.revoked.is_some()).count(),
        };
        Ok::<_, Response>(render(&page))
    };
    run.await.unwrap_or_else(|r| r)
}

fn describe(e: &ActivityEvent) -> String {
    format!(
        "{} {} {}",
        e.action,
        e.resource_type.as_deref().unwrap_or(""),
        e.name.as_deref().or(e.resource_id.as_deref()).unwrap_or("")
    )
    .trim()
    .to_string()
}

// ---------------------------------------------------------------- users and groups

#[derive(Deserialize, Default)]
pub struct ListParams {
    #[serde(default)]
    q: String,
    after: Option<i64>,
    before: Option<i64>,
}

pub struct Pager {
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// Keyset paging links for a page fetched with `after`/`before`.
fn pager(base: &str, q: &str, p: &ListParams, records: &[Record], has_more: bool) -> Pager {
    let qs = if q.is_empty() {
        String::new()
    } else {
        format!("q={}&", urlencode(q))
    };
    let (first, last) = (records.first().map(|r| r.seq), records.last().map(|r| r.seq));
    let going_back = p.before.is_some();
    let prev = if going_back {
        has_more
    } else {
        p.after.is_some_and(|a| a > 0)
    };
    let next = if going_back { true } else { has_more };
    Pager {
        prev: first.filter(|_| prev).map(|s| format!("{base}?{qs}before={s}")),
        next: last.filter(|_| next).map(|s| format!("{base}?{qs}after={s}")),
    }
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn list_page(
    console: &Console,
    t: &Tenant,
    kind: Kind,
    filter: Option<String>,
    p: &ListParams,
) -> Result<scimitar_store::Page, Response> {
    let Some(rt) = rt(console, kind.as_str()) else {
        return Err(error_page(500, "Unknown resource type."));
    };
    let filter = match filter {
        Some(f) => Some(parse_filter(&f).map_err(|e| error_page(400, &e.detail))?),
        None => None,
    };
    let cursor = match (p.after, p.before) {
        (_, Some(b)) => CursorPos::Before(b),
        (Some(a), None) => CursorPos::After(a),
        (None, None) => CursorPos::After(0),
    };
    console
        .app
        .store
        .list(
            t.id,
            ListQuery {
                kind,
                rt,
                filter,
                sort: None,
                start_index: 1,
                count: PAGE_SIZE,
                cursor: Some(cursor),
            },
        )
        .await
        .map_err(store_error)
}

pub struct UserRow {
    pub id: String,
    pub user_name: String,
    pub name: String,
    pub email: String,
    pub active: bool,
    pub modified: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    c: Chrome,
    q: String,
    total: u64,
    rows: Vec<UserRow>,
    pager: Pager,
}

pub async fn users(
    State(console): Shared,
    a: Authed,
    Path(tenant): Path<String>,
    Query(p): Query<ListParams>,
) -> Response {
    let t = match tenant_for(&console, &a, &tenant).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let q = p.q.trim().to_string();
    let filter = (!q.is_empty()).then(|| {
        let l = lit(&q);
        format!(
            "userName co {l} or name.formatted co {l} or name.givenName co {l} or name.familyName co {l} \
             or displayName co {l} or emails.value co {l}"
        )
    });
    let page = match list_page(&console, &t, Kind::User, filter, &p).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let base = format!("/console/t/{}/users", t.name);
    let pager = pager(&base, &q, &p, &page.records, page.has_more);
    let rows = page
        .records
        .iter()
        .map(|r| UserRow {
            id: r.id.clone(),
            user_name: str_at(&r.doc, "userName").unwrap_or_default().to_string(),
            name: user_name(&r.doc),
            email: user_email(&r.doc),
            active: is_active(&r.doc),
            modified: when(&r.last_modified),
        })
        .collect();
    render(&UsersPage {
        c: chrome(&a, &t.name, "users"),
        q,
        total: page.total,
        rows,
        pager,
    })
}

pub struct Link {
    pub label: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    c: Chrome,
    id: String,
    user_name: String,
    name: String,
    active: bool,
    manager: Option<Link>,
    groups: Vec<Link>,
    attributes: Vec<(String, String)>,
    created: String,
    modified: String,
    version: u64,
}

pub async fn user(State(console): Shared, a: Authed, Path((tenant, id)): Path<(String, String)>) -> Response {
    let t = match tenant_for(&console, &a, &tenant).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let store = &console.app.store;
    let r = match store.get(t.id, Kind::User, &id).await {
        Ok(Some(r)) => r,
        Ok(None) => return error_page(404, "There is no such user in this tenant."),
        Err(e) => return store_error(e),
    };
    let groups = match store.groups_of(t.id, &id).await {
        Ok(g) => g,
        Err(e) => return store_error(e),
    };
    let manager_id = r
        .doc
        .iter()
        .find(|(k, _)| k.to_ascii_lowercase().contains("enterprise:2.0:user"))
        .and_then(|(_, v)| v["manager"]["value"].as_str())
        .map(str::to_string);
    let manager = match manager_id {
        Some(mid) => {
            let label = store
                .display_name(t.id, &mid)
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| mid.clone());
            Some(Link {
                href: format!("/console/t/{}/users/{}", t.name, urlencode(&mid)),
                label,
            })
        }
        None => None,
    };
    let mut attributes = Vec::new();
    flatten("", &Value::Object(r.doc.clone()), &mut attributes);
    render(&UserPage {
        c: chrome(&a, &t.name, "users"),
        user_name: str_at(&r.doc, "userName").unwrap_or_default().to_string(),
        name: user_name(&r.doc),
        active: is_active(&r.doc),
        manager,
        groups: groups
            .into_iter()
            .map(|g| Link {
                href: format!("/console/t/{}/groups/{}", t.name, urlencode(&g.value)),
                label: g.display.unwrap_or_else(|| g.value.clone()),
            })
            .collect(),
        attributes,
        created: when(&r.created),
        modified: when(&r.last_modified),
        version: r.version,
        id: r.id,
    })
}

pub struct GroupRow {
    pub id: String,
    pub name: String,
    pub external_id: String,
    pub members: u64,
    pub modified: String,
}

#[derive(Template)]
#[template(path = "groups.html")]
struct GroupsPage {
    c: Chrome,
    q: String,
    total: u64,
    rows: Vec<GroupRow>,
    pager: Pager,
}

pub async fn groups(
    State(console): Shared,
    a: Authed,
    Path(tenant): Path<String>,
    Query(p): Query<ListParams>,
) -> Response {
    let t = match tenant_for(&console, &a, &tenant).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let q = p.q.trim().to_string();
    let filter = (!q.is_empty()).then(|| format!("displayName co {}", lit(&q)));
    let page = match list_page(&console, &t, Kind::Group, filter, &p).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let ids: Vec<String> = page.records.iter().map(|r| r.id.clone()).collect();
    let counts: HashMap<String, u64> = match console.app.store.member_counts(t.id, &ids).await {
        Ok(c) => c.into_iter().collect(),
        Err(e) => return store_error(e),
    };
    let base = format!("/console/t/{}/groups", t.name);
    let pager = pager(&base, &q, &p, &page.records, page.has_more);
    let rows = page
        .records
        .iter()
        .map(|r| GroupRow {
            id: r.id.clone(),
            name: str_at(&r.doc, "displayName").unwrap_or_default().to_string(),
            external_id: str_at(&r.doc, "externalId").unwrap_or_default().to_string(),
            members: counts.get(&r.id).copied().unwrap_or(0),
            modified: when(&r.last_modified),
        })
        .collect();
    render(&GroupsPage {
        c: chrome(&a, &t.name, "groups"),
        q,
        total: page.total,
        rows,
        pager,
    })
}

#[derive(Deserialize)]
pub struct MembersParams {
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "group.html")]
struct GroupPage {
    c: Chrome,
    id: String,
    name: String,
    member_count: u64,
    members: Vec<(Link, String)>,
    next: Option<String>,
    first_page: bool,
    attributes: Vec<(String, String)>,
    created: String,
    modified: String,
}

pub async fn group(
    State(console): Shared,
    a: Authed,
    Path((tenant, id)): Path<(String, String)>,
    Query(p): Query<MembersParams>,
) -> Response {
    let t = match tenant_for(&console, &a, &tenant).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let store = &console.app.store;
    let r = match store.get(t.id, Kind::Group, &id).await {
        Ok(Some(r)) => r,
        Ok(None) => return error_page(404, "There is no such group in this tenant."),
        Err(e) => return store_error(e),
    };
    let member_count = match store.member_counts(t.id, std::slice::from_ref(&id)).await {
        Ok(c) => c.first().map(|(_, n)| *n).unwrap_or(0),
        Err(e) => return store_error(e),
    };
    let mut page = match store.members_page(t.id, &id, p.after.as_deref(), PAGE_SIZE + 1).await {
        Ok(m) => m,
        Err(e) => return store_error(e),
    };
    let more = page.len() > PAGE_SIZE;
    page.truncate(PAGE_SIZE);
    let base = format!("/console/t/{}/groups/{}", t.name, urlencode(&id));
    let next = page
        .last()
        .filter(|_| more)
        .map(|m| format!("{base}?after={}", urlencode(&m.value)));
    // Clients often send members without `display`: name them from the
    // store (a user by userName), one indexed read per member on the page.
    for m in page.iter_mut() {
        let kind = if m.kind == "Group" { Kind::Group } else { Kind::User };
        if let Ok(Some(r)) = store.get(t.id, kind, &m.value).await {
            let key = if kind == Kind::Group { "displayName" } else { "userName" };
            m.display = str_at(&r.doc, key).map(str::to_string).or(m.display.take());
        }
    }
    let members = page
        .into_iter()
        .map(|m| {
            let section = if m.kind == "Group" { "groups" } else { "users" };
            (
                Link {
                    href: format!("/console/t/{}/{section}/{}", t.name, urlencode(&m.value)),
                    label: m.display.clone().unwrap_or_else(|| m.value.clone()),
                },
                m.kind,
            )
        })
        .collect();
    let mut attributes = Vec::new();
    flatten("", &Value::Object(r.doc.clone()), &mut attributes);
    render(&GroupPage {
        c: chrome(&a, &t.name, "groups"),
        name: str_at(&r.doc, "displayName").unwrap_or_default().to_string(),
        member_count,
        members,
        next,
        first_page: p.after.is_none(),
        attributes,
        created: when(&r.created),
        modified: when(&r.last_modified),
        id: r.id,
    })
}

// ---------------------------------------------------------------- activity

const ACTIONS: &[&str] = &[
    "create",
    "update",
    "disable",
    "enable",
    "delete",
    "add-member",
    "remove-member",
];

#[derive(Deserialize, Default)]
pub struct ActivityParams {
    #[serde(default)]
    range: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    q: String,
    before: Option<i64>,
}

impl ActivityParams {
    fn range_secs(&self) -> u64 {
        match self.range.as_str() {
            "1h" => 3600,
            "7d" => 7 * 86_400,
            "30d" => 30 * 86_400,
            _ => 86_400,
        }
    }
    fn query(&self, limit: usize) -> ActivityQuery {
        let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
        ActivityQuery {
            since: Some(crate::time_ago(std::time::Duration::from_secs(self.range_secs()))),
            until: None,
            action: opt(&self.action),
            outcome: opt(&self.outcome),
            text: opt(&self.q),
            before_id: self.before,
            limit,
        }
    }
    fn query_string(&self) -> String {
        format!(
            "range={}&action={}&outcome={}&q={}",
            urlencode(&self.range),
            urlencode(&self.action),
            urlencode(&self.outcome),
            urlencode(&self.q)
        )
    }
}

pub struct Change {
    pub attribute: String,
    pub old: String,
    pub new: String,
}

pub struct EventRow {
    pub time: String,
    pub action: String,
    pub resource_type: String,
    pub name: String,
    pub link: Option<String>,
    pub outcome: String,
    pub status: u16,
    pub error: String,
    pub request: String,
    pub token: String,
    pub changes: Vec<Change>,
}

pub struct Bar {
    pub x: u32,
    pub w: u32,
    pub label: String,
    pub title: String,
    pub segments: Vec<(u32, u32, String)>,
}

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    c: Chrome,
    p: ActivityParams,
    actions: Vec<&'static str>,
    rows: Vec<EventRow>,
    next: Option<String>,
    csv: String,
    bars: Vec<Bar>,
    chart_rows: Vec<ChartRow>,
    chart_unit: &'static str,
    chart_max: u64,
}

fn short(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn event_row(tenant: &str, e: ActivityEvent) -> EventRow {
    let changes = e
        .changes
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| Change {
                    attribute: short(&c["attribute"]),
                    old: short(&c["old"]),
                    new: short(&c["new"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let link = match (e.resource_type.as_deref(), e.resource_id.as_deref(), e.action.as_str()) {
        (_, _, "delete") => None,
        (Some("User"), Some(id), _) => Some(format!("/console/t/{tenant}/users/{}", urlencode(id))),
        (Some("Group"), Some(id), _) => Some(format!("/console/t/{tenant}/groups/{}", urlencode(id))),
        _ => None,
    };
    EventRow {
        time: when(&e.time),
        action: e.action,
        resource_type: e.resource_type.unwrap_or_default(),
        name: e.name.or(e.resource_id).unwrap_or_default(),
        link,
        outcome: e.outcome,
        status: e.status,
        error: e.error.unwrap_or_default(),
        request: format!("{} {}", e.method, e.path),
        token: e.token_label.unwrap_or_default(),
        changes,
    }
}

/// Buckets events by hour (ranges up to a day) or by day, per action,
/// with failures as their own series.
/// A bucket's label, its count per series, and its total.
type ChartRow = (String, Vec<u64>, u64);

fn chart(events: &[ActivityEvent], range_secs: u64) -> (Vec<Bar>, Vec<ChartRow>, &'static str, u64) {
    let hourly = range_secs <= 86_400;
    let key_len = if hourly { 13 } else { 10 };
    let n = if hourly {
        (range_secs / 3600) as usize
    } else {
        (range_secs / 86_400) as usize
    };
    let step = if hourly { 3600 } else { 86_400 };
    let keys: Vec<String> = (0..n)
        .rev()
        .map(|i| crate::time_ago(std::time::Duration::from_secs(i as u64 * step))[..key_len].to_string())
        .collect();
    // Series: one per action, then failures.
    let mut series: Vec<&str> = ACTIONS.to_vec();
    series.push("failure");
    let mut counts: BTreeMap<String, Vec<u64>> = keys.iter().map(|k| (k.clone(), vec![0; series.len()])).collect();
    for e in events {
        let Some(row) = e.time.get(..key_len).and_then(|k| counts.get_mut(k)) else {
            continue;
        };
        let idx = if e.outcome == "failure" {
            series.len() - 1
        } else {
            ACTIONS.iter().position(|a| *a == e.action).unwrap_or(1)
        };
        row[idx] += 1;
    }
    let max = counts.values().map(|v| v.iter().sum::<u64>()).max().unwrap_or(0).max(1);
    let (width, height) = (720u32, 140u32);
    let slot = width / (n.max(1) as u32);
    let mut bars = Vec::new();
    let mut rows = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let v = &counts[k];
        let total: u64 = v.iter().sum();
        let mut y = height;
        let mut segments = Vec::new();
        for (j, c) in v.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            let h = ((*c * u64::from(height)) / max).max(1) as u32;
            y = y.saturating_sub(h);
            segments.push((y, h, format!("s-{}", series[j])));
        }
        let label = if hourly {
            format!("{}:00", &k[11..13])
        } else {
            k[5..10].to_string()
        };
        bars.push(Bar {
            x: i as u32 * slot + 1,
            w: slot.saturating_sub(2).max(1),
            title: format!("{label}: {total} events"),
            label: label.clone(),
            segments,
        });
        rows.push((label, v.clone(), total));
    }
    (bars, rows, if hourly { "hour" } else { "day" }, max)
}

pub async fn activity(
    State(console): Shared,
    a: Authed,
    Path(tenant): Path<String>,
    Query(p): Query<ActivityParams>,
) -> Response {
    let t = match tenant_for(&console, &a, &tenant).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let store = &console.app.store;
    let mut events = match store.list_activity(t.id, p.query(PAGE_SIZE + 1)).await {
        Ok(e) => e,
        Err(e) => return store_error(e),
    };
    let more = events.len() > PAGE_SIZE;
    events.truncate(PAGE_SIZE);
    let base = format!("/console/t/{}/activity", t.name);
    let next = events
        .last()
        .filter(|_| more)
        .map(|e| format!("{base}?{}&before={}", p.query_string(), e.id));
    let mut chart_q = p.query(50_000);
    chart_q.before_id = None;
    let all = match store.list_activity(t.id, chart_q).await {
        Ok(e) => e,
        Err(e) => return store_error(e),
    };
    let (bars, chart_rows, chart_unit, chart_max) = chart(&all, p.range_secs());
    let csv = format!("/console/t/{}/activity.csv?{}", t.name, p.query_string());
    render(&ActivityPage {
        c: chrome(&a, &t.name, "activity"),
        actions: ACTIONS.to_vec(),
        rows: events.into_iter().map(|e| event_row(&t.name, e)).collect(),
        next,
        csv,
        bars,
        chart_rows,
        chart_unit,
        chart_max,
        p,
    })
}

/// A CSV cell: quoted, and with a leading quote when a spreadsheet would
/// read it as a formula.
fn cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub async fn activity_csv(
    State(console): Shared,
    a: Authed,
    Path(tenant): Path<String>,
    Query(p): Query<ActivityParams>,
) -> Response {
    let t = match tenant_for(&console, &a, &tenant).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let events = match console.app.store.list_activity(t.id, p.query(100_000)).await {
        Ok(e) => e,
        Err(e) => return store_error(e),
    };
    let mut out =
        String::from("time,action,outcome,status,resource_type,resource_id,name,token,method,path,error,changes\r\n");
    for e in events {
        let fields = [
            e.time,
            e.action,
            e.outcome,
            e.status.to_string(),
            e.resource_type.unwrap_or_default(),
            e.resource_id.unwrap_or_default(),
            e.name.unwrap_or_default(),
            e.token_label.unwrap_or_default(),
            e.method,
            e.path,
            e.error.unwrap_or_default(),
            e.changes.to_string(),
        ];
        out.push_str(&fields.iter().map(|f| cell(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"activity-{}.csv\"", t.name),
            ),
        ],
        out,
    )
        .into_response()
}

// ---------------------------------------------------------------- provisioning settings

pub struct TokenRow {
    pub id: String,
    pub label: String,
    pub hint: String,
    pub created_by: String,
    pub created: String,
    pub last_used: String,
    pub revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "provisioning.html")]
struct ProvisioningPage {
    c: Chrome,
    tenant_url: String,
    tokens: Vec<TokenRow>,
    new_token: Option<String>,
    new_label: String,
    last_request: Option<(String, String)>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ProvisioningParams {
    revoked: Option<String>,
}

async fn provisioning_page(
    console: &Console,
    a: &Authed,
    t: &Tenant,
    new_token: Option<(String, String)>,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let store = &console.app.store;
    let tokens = match store.list_tokens(t.id).await {
        Ok(k) => k,
        Err(e) => return store_error(e),
    };
    let creators: HashMap<String, String> = match store.token_creators(t.id).await {
        Ok(c) => c.into_iter().collect(),
        Err(e) => return store_error(e),
    };
    let last = tokens
        .iter()
        .filter(|k| k.scope == "scim")
        .filter_map(|k| k.last_used.clone())
        .max();
    let mut rows: Vec<TokenRow> = tokens
        .into_iter()
        .filter(|k| k.scope == "scim")
        .map(|k| TokenRow {
            created_by: creators.get(&k.id).cloned().unwrap_or_else(|| "command line".into()),
            id: k.id,
            label: if k.label.is_empty() {
                "(no label)".into()
            } else {
                k.label
            },
            hint: k.hint,
            created: when(&k.created),
            last_used: k.last_used.map(|l| when(&l)).unwrap_or_else(|| "never".into()),
            revoked: k.revoked.map(|r| when(&r)),
        })
        .collect();
    // Newest first; revoked ones after the live ones.
    rows.sort_by(|x, y| (x.revoked.is_some(), &y.created).cmp(&(y.revoked.is_some(), &x.created)));
    let (new_token, new_label) = new_token.unzip();
    render(&ProvisioningPage {
        c: chrome(a, &t.name, "settings"),
        tenant_url: console.app.settings.tenant_url(&t.name),
        tokens: rows,
        new_token,
        new_label: new_label.unwrap_or_default(),
        last_request: last.map(|l| (when(&l), ago(&l))),
        notice,
        error,
    })
}

pub async fn provisioning(
    State(console): Shared,
    a: Authed,
    Path(tenant): Path<String>,
    Query(p): Query<ProvisioningParams>,
) -> Response {
    let t = match tenant_for(&console, &a, &tenant).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let notice = p
        .revoked
        .map(|id| format!("Token {id} is revoked. Requests that use it are refused from now on."));
    provisioning_page(&console, &a, &t, None, notice, None).await
}

#[derive(Deserialize)]
pub struct GenerateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    label: String,
}

pub async fn generate_token(
    State(console): Shared,
    a: Authed,
    Path(tenant): Path<String>,
    Form(f): Form<GenerateForm>,
) -> Response {
    let t = match writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let label: String = match f.label.trim() {
        "" => "Microsoft Entra ID".to_string(),
        l => l.chars().take(100).collect(),
    };
    let Ok(new) = scimitar_auth::generate() else {
        return error_page(500, "The server could not generate a random value.");
    };
    let store = &console.app.store;
    if let Err(e) = store
        .create_token(t.id, &new.id, &label, &new.hint, "scim", &new.hash)
        .await
    {
        return store_error(e);
    }
    if let Err(e) = store.set_token_creator(t.id, &new.id, &a.session.admin.email).await {
        return store_error(e);
    }
    tracing::info!(tenant = %t.name, token = %new.id, account = a.session.admin.id, "console generated a Secret Token");
    audit(
        &console,
        Some(t.id),
        &a.session.admin.email,
        "token.generated",
        Some(&new.id),
        None,
    )
    .await;
    // Shown in this response only; it is not stored and never in a URL.
    provisioning_page(&console, &a, &t, Some((new.secret, label)), None, None).await
}

#[derive(Template)]
#[template(path = "revoke.html")]
struct RevokePage {
    c: Chrome,
    id: String,
    label: String,
    hint: String,
    last_used: String,
}

async fn live_token(console: &Console, t: &Tenant, id: &str) -> Result<scimitar_store::TokenInfo, Response> {
    // Revocation is by id alone in the store: check the tenant here.
    let tokens = console.app.store.list_tokens(t.id).await.map_err(store_error)?;
    tokens
        .into_iter()
        .find(|k| k.id == id && k.revoked.is_none() && k.scope == "scim")
        .ok_or_else(|| error_page(404, "There is no active token with this id in this tenant."))
}

pub async fn revoke_confirm(State(console): Shared, a: Authed, Path((tenant, id)): Path<(String, String)>) -> Response {
    let t = match writable_tenant(&console, &a, &tenant, None).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let k = match live_token(&console, &t, &id).await {
        Ok(k) => k,
        Err(r) => return r,
    };
    render(&RevokePage {
        c: chrome(&a, &t.name, "settings"),
        id: k.id,
        label: k.label,
        hint: k.hint,
        last_used: k.last_used.map(|l| when(&l)).unwrap_or_else(|| "never".into()),
    })
}

pub async fn revoke(
    State(console): Shared,
    a: Authed,
    Path((tenant, id)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let t = match writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Err(r) = live_token(&console, &t, &id).await {
        return r;
    }
    if let Err(e) = console.app.store.revoke_token(&id).await {
        return store_error(e);
    }
    tracing::info!(tenant = %t.name, token = %id, account = a.session.admin.id, "console revoked a Secret Token");
    audit(
        &console,
        Some(t.id),
        &a.session.admin.email,
        "token.revoked",
        Some(&id),
        None,
    )
    .await;
    Redirect::to(&format!(
        "/console/t/{}/settings/provisioning?revoked={}",
        t.name,
        urlencode(&id)
    ))
    .into_response()
}

// ---------------------------------------------------------------- accounts

#[derive(Template)]
#[template(path = "accounts.html")]
struct AccountsPage {
    c: Chrome,
    accounts: Vec<(String, String, String)>,
    min_len: usize,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct AccountForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

async fn accounts_page(
    console: &Console,
    a: &Authed,
    t: &Tenant,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let list = match console.app.store.list_admins(Some(t.id)).await {
        Ok(l) => l,
        Err(e) => return store_error(e),
    };
    let page = AccountsPage {
        c: chrome(a, &t.name, "accounts"),
        accounts: list.into_iter().map(|x| (x.email, x.role, when(&x.created))).collect(),
        min_len: auth::MIN_PASSWORD_LEN,
        notice,
        error,
    };
    (status, render(&page)).into_response()
}

pub async fn accounts(State(console): Shared, a: Authed, Path(tenant): Path<String>) -> Response {
    let t = match tenant_for(&console, &a, &tenant).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    accounts_page(&console, &a, &t, StatusCode::OK, None, None).await
}

pub async fn create_account(
    State(console): Shared,
    a: Authed,
    Path(tenant): Path<String>,
    Form(f): Form<AccountForm>,
) -> Response {
    let t = match writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let email = f.email.trim();
    if !email.contains('@') || !matches!(f.role.as_str(), "admin" | "viewer") {
        return accounts_page(
            &console,
            &a,
            &t,
            StatusCode::BAD_REQUEST,
            None,
            Some("Enter an email address and choose a role.".into()),
        )
        .await;
    }
    if f.password.chars().count() < auth::MIN_PASSWORD_LEN {
        let m = format!("The password must have at least {} characters.", auth::MIN_PASSWORD_LEN);
        return accounts_page(&console, &a, &t, StatusCode::BAD_REQUEST, None, Some(m)).await;
    }
    let Ok(hash) = auth::hash_password_async(f.password).await else {
        return error_page(500, "The password could not be hashed.");
    };
    match console.app.store.create_admin(Some(t.id), email, &f.role, &hash).await {
        Ok(x) => {
            tracing::info!(tenant = %t.name, account = x.id, by = a.session.admin.id, "console created an account");
            audit(
                &console,
                Some(t.id),
                &a.session.admin.email,
                "admin.created",
                Some(&format!("{} ({})", x.email, x.role)),
                None,
            )
            .await;
            let m = format!(
                "Created {} ({}). Give them the password through a separate channel.",
                x.email, x.role
            );
            accounts_page(&console, &a, &t, StatusCode::CREATED, Some(m), None).await
        }
        Err(StoreError::Conflict(_)) => {
            accounts_page(
                &console,
                &a,
                &t,
                StatusCode::CONFLICT,
                None,
                Some("An account with this email already exists.".into()),
            )
            .await
        }
        Err(e) => store_error(e),
    }
}

/// Records an administrative action in the audit log (kept apart from the
/// provisioning activity log; the console only ever reads it).
async fn audit(
    console: &Console,
    tenant: Option<i64>,
    actor: &str,
    action: &str,
    target: Option<&str>,
    ip: Option<std::net::IpAddr>,
) {
    let source = match ip {
        Some(ip) => format!("console {ip}"),
        None => "console".to_string(),
    };
    if let Err(e) = scimitar_store::audit(&*console.app.store, tenant, actor, action, target, &source).await {
        tracing::error!(error = %e, action, "could not write the audit log");
    }
}
