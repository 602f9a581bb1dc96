//! Settings → Provisioning: the Tenant URL, and Secret Tokens (Generate,
//! Revoke).
//!
//! **Generate** is a POST-redirect-GET: the POST creates the token and
//! redirects to the page, handing the secret over in a one-time flash
//! cookie: sealed (ChaCha20-Poly1305 under the server key, so the browser's
//! cookie jar does not hold it readable), bound to the session and the
//! tenant, valid two minutes, and cleared by the page that shows it. So a
//! reload neither creates another token nor shows this one again, and the
//! secret is never in a URL or stored on the server.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use scimitar_app::tokens::TokenRequest;
use scimitar_store::Tenant;
use serde::Deserialize;

use super::signin::CsrfForm;
use super::{Chrome, Shared, actor, ago, chrome, tenant_for, urlencode, when, writable_tenant};
use crate::auth::{self, Authed, ClientIp};
use crate::error::{ConsoleError, PageResult};
use crate::{Console, render};

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
    /// When the page was made: what "last request" is as of.
    loaded: String,
    notice: Option<String>,
    error: Option<String>,
    /// A new invite link (shown once) and until when it works.
    invite: Option<(String, String)>,
}

#[derive(Deserialize, Default)]
pub struct ProvisioningParams {
    revoked: Option<String>,
}

/// What a provisioning page shows besides the tenant's state.
#[derive(Default)]
struct PageExtras {
    new_token: Option<(String, String)>,
    notice: Option<String>,
    error: Option<String>,
    invite: Option<(String, String)>,
}

async fn provisioning_page(console: &Console, a: &Authed, t: &Tenant, extras: PageExtras) -> PageResult {
    let PageExtras {
        new_token,
        notice,
        error,
        invite,
    } = extras;
    let store = &console.app.store;
    let tokens = store.list_tokens(t.id).await?;
    let creators: HashMap<String, String> = store.token_creators(t.id).await?.into_iter().collect();
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
    Ok(render(&ProvisioningPage {
        c: chrome(a, &t.name, "settings"),
        tenant_url: console.app.tenant_url(&t.name),
        tokens: rows,
        new_token,
        new_label: new_label.unwrap_or_default(),
        last_request: last.map(|l| (when(&l), ago(&l))),
        loaded: when(&scimitar_store::now_utc()),
        notice,
        error,
        invite,
    }))
}

/// How long the flash of a new token is valid, in seconds.
const FLASH_SECS: i64 = 120;

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// What a flash hands over to the page it redirects to, shown once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlashKind {
    /// A new Secret Token: (secret, label).
    Token,
    /// An invite link: (link, when it expires).
    Invite,
}

impl FlashKind {
    fn tag(self) -> &'static str {
        match self {
            FlashKind::Token => "token",
            FlashKind::Invite => "invite",
        }
    }
}

/// The sealed flash of a new secret: when it expires, the session and the
/// tenant it is for, its kind, and two values (the last may hold anything).
fn seal_flash(a: &Authed, tenant: &str, kind: FlashKind, first: &str, second: &str) -> Option<String> {
    let plain = format!(
        "{}\n{}\n{tenant}\n{}\n{first}\n{second}",
        unix_now() + FLASH_SECS,
        URL_SAFE_NO_PAD.encode(a.hash),
        kind.tag()
    );
    // The sealed form is `sealed:v1:` + base64url: cookie-safe.
    scimitar_auth::seal::seal(&plain).ok()
}

/// The kind and values of a flash, if it opens, is for this session and
/// tenant, and has not expired; anything else is ignored.
fn open_flash(a: &Authed, tenant: &str, sealed: &str) -> Option<(FlashKind, String, String)> {
    let plain = scimitar_auth::seal::open(sealed).ok()?;
    let mut parts = plain.splitn(6, '\n');
    let expires: i64 = parts.next()?.parse().ok()?;
    let session = parts.next()?;
    let for_tenant = parts.next()?;
    let kind = match parts.next()? {
        "token" => FlashKind::Token,
        "invite" => FlashKind::Invite,
        _ => return None,
    };
    let first = parts.next()?;
    let second = parts.next()?;
    let fresh = unix_now() <= expires;
    let ours = auth::same(session, &URL_SAFE_NO_PAD.encode(a.hash)) && for_tenant == tenant;
    (fresh && ours).then(|| (kind, first.to_string(), second.to_string()))
}

/// Shows a new secret once: a redirect to Settings → Provisioning that
/// hands it over in a flash (post-redirect-get: a reload makes no second
/// one), or, when it cannot be sealed (no randomness), that page in this
/// response rather than lose it.
async fn show_once(
    console: &Console,
    a: &Authed,
    t: &Tenant,
    kind: FlashKind,
    first: String,
    second: String,
) -> PageResult {
    if let Some(flash) = seal_flash(a, &t.name, kind, &first, &second) {
        return Ok(redirect_with_flash(console, &t.name, &flash));
    }
    let extras = match kind {
        FlashKind::Token => PageExtras {
            new_token: Some((first, second)),
            ..PageExtras::default()
        },
        FlashKind::Invite => PageExtras {
            invite: Some((first, second)),
            ..PageExtras::default()
        },
    };
    provisioning_page(console, a, t, extras).await
}

/// A redirect to the tenant's Settings → Provisioning that hands `flash`
/// over.
fn redirect_with_flash(console: &Console, tenant: &str, flash: &str) -> Response {
    let mut resp = Redirect::to(&format!("/console/t/{tenant}/settings/provisioning")).into_response();
    let cookie = auth::set_cookie(console, console.flash_cookie(), flash, u64::try_from(FLASH_SECS).ok());
    if let Ok(v) = cookie.parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

pub async fn provisioning(
    State(console): Shared,
    a: Authed,
    Path(tenant): Path<String>,
    Query(p): Query<ProvisioningParams>,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    let t = tenant_for(&console, &a, &tenant).await?;
    let notice = p
        .revoked
        .map(|id| format!("Token {id} is revoked. Requests that use it are refused from now on."));
    let flash = auth::cookie(&headers, console.flash_cookie()).filter(|v| !v.is_empty());
    let (mut new_token, mut invite) = (None, None);
    match flash.as_deref().and_then(|f| open_flash(&a, &t.name, f)) {
        Some((FlashKind::Token, secret, label)) => new_token = Some((secret, label)),
        Some((FlashKind::Invite, link, expires)) => invite = Some((link, expires)),
        None => {}
    }
    let mut resp = provisioning_page(
        &console,
        &a,
        &t,
        PageExtras {
            new_token,
            notice,
            invite,
            ..PageExtras::default()
        },
    )
    .await?;
    // Shown once: the flash goes with the page that shows it.
    if flash.is_some()
        && let Ok(v) = auth::set_cookie(&console, console.flash_cookie(), "", Some(0)).parse()
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
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
    ClientIp(ip): ClientIp,
    a: Authed,
    Path(tenant): Path<String>,
    Form(f): Form<GenerateForm>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    let label: String = match f.label.trim() {
        "" => "Microsoft Entra ID".to_string(),
        l => l.chars().take(100).collect(),
    };
    let req = TokenRequest {
        label: label.clone(),
        scope: "scim".into(),
        expires_in_days: None,
    };
    let new = console.app.generate_token(&actor(&a, ip), &t, req).await?;
    tracing::info!(tenant = %t.name, token = %new.info.id, account = a.session.admin.id, "console generated a Secret Token");
    show_once(&console, &a, &t, FlashKind::Token, new.secret, label).await
}

/// "Invite the customer's IT admin": a one-time link, valid 7 days, that
/// creates their Admin account for this tenant. Shown once, on the page
/// the answer redirects to.
pub async fn create_invite(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Path(tenant): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    let invite = console
        .app
        .create_invite(&actor(&a, ip), &t, scimitar_app::invites::DEFAULT_INVITE_TTL)
        .await?;
    tracing::info!(tenant = %t.name, account = a.session.admin.id, "console made an invite link");
    let expires = when(&invite.expires);
    show_once(&console, &a, &t, FlashKind::Invite, invite.link, expires).await
}

#[derive(Template)]
#[template(path = "validate.html")]
struct ValidatePage {
    c: Chrome,
    r: scimitar_app::validate::ValidationReport,
}

/// "Validate this tenant": Entra's SCIM Validator against the tenant's own
/// Tenant URL (a token made for the run, revoked after it), then its
/// report. Admins only, like generating a token.
pub async fn validate(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Path(tenant): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    let r = console.app.validate_tenant(&actor(&a, ip), &t).await?;
    tracing::info!(tenant = %t.name, account = a.session.admin.id, failed = r.failed, "console validated the tenant");
    Ok(render(&ValidatePage {
        c: chrome(&a, &t.name, "settings"),
        r,
    }))
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

/// A live provisioning token of the tenant (the console shows and revokes
/// only those).
async fn live_token(console: &Console, t: &Tenant, id: &str) -> Result<scimitar_store::TokenInfo, ConsoleError> {
    let tokens = console.app.store.list_tokens(t.id).await?;
    tokens
        .into_iter()
        .find(|k| k.id == id && k.revoked.is_none() && k.scope == "scim")
        .ok_or_else(|| ConsoleError::not_found("There is no active token with this id in this tenant."))
}

pub async fn revoke_confirm(
    State(console): Shared,
    a: Authed,
    Path((tenant, id)): Path<(String, String)>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, None).await?;
    let k = live_token(&console, &t, &id).await?;
    Ok(render(&RevokePage {
        c: chrome(&a, &t.name, "settings"),
        id: k.id,
        label: k.label,
        hint: k.hint,
        last_used: k.last_used.map(|l| when(&l)).unwrap_or_else(|| "never".into()),
    }))
}

pub async fn revoke(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Path((tenant, id)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    live_token(&console, &t, &id).await?;
    console.app.revoke_token(&actor(&a, ip), &t, &id).await?;
    tracing::info!(tenant = %t.name, token = %id, account = a.session.admin.id, "console revoked a Secret Token");
    Ok(Redirect::to(&format!(
        "/console/t/{}/settings/provisioning?revoked={}",
        t.name,
        urlencode(&id)
    ))
    .into_response())
}
