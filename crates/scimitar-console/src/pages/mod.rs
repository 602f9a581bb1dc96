//! The console's pages, one module per area. Handlers read the store
//! directly and change things through the application layer; templates get
//! plain, pre-formatted values.

pub mod accounts;
pub mod activity;
pub mod directory;
pub mod invite;
pub mod jobs;
pub mod overview;
pub mod settings;
pub mod signin;
pub mod tenants;
pub mod webhooks;

use std::sync::Arc;

use axum::extract::State;
use scimitar_app::Actor;
use scimitar_store::Tenant;

use crate::Console;
use crate::auth::Authed;
use crate::error::ConsoleError;

pub(crate) const PAGE_SIZE: usize = 50;

pub(crate) type Shared = State<Arc<Console>>;

/// The tenant in the path, if the signed-in account may see it. Others'
/// tenants are "not found" so that names are not confirmed.
pub(crate) async fn tenant_for(console: &Console, a: &Authed, name: &str) -> Result<Tenant, ConsoleError> {
    let t = console
        .app
        .store
        .tenant(name)
        .await?
        .ok_or_else(|| ConsoleError::not_found("There is no such tenant."))?;
    if a.is_operator() || a.session.admin.tenant_id == Some(t.id) {
        Ok(t)
    } else {
        Err(ConsoleError::not_found("There is no such tenant."))
    }
}

/// A tenant the signed-in account may change: the form's CSRF token (when
/// it is a form), the tenant's visibility, then the role, in that order.
pub(crate) async fn writable_tenant(
    console: &Console,
    a: &Authed,
    name: &str,
    csrf: Option<&str>,
) -> Result<Tenant, ConsoleError> {
    if csrf.is_some_and(|c| !a.check_csrf(c)) {
        return Err(ConsoleError::csrf_failed());
    }
    let t = tenant_for(console, a, name).await?;
    if !a.can_write() {
        return Err(ConsoleError::forbidden());
    }
    Ok(t)
}

/// The signed-in administrator as the actor of a change.
pub(crate) fn actor(a: &Authed, ip: Option<std::net::IpAddr>) -> Actor {
    Actor::Console {
        email: a.session.admin.email.clone(),
        ip,
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

pub(crate) fn chrome(a: &Authed, tenant: &str, section: &'static str) -> Chrome {
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
    match (s.get(..10), s.get(11..19)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => s.to_string(),
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

pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
