//! The invite link of a tenant's customer administrator (`/invite?code=…`):
//! a form that creates their Admin account for the tenant, signs them in
//! and lands them on Settings → Provisioning. The link works once and
//! expires; a dead link is a page that says so (410).

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use scimitar_app::Actor;
use scimitar_app::accounts::MIN_PASSWORD_LEN;
use scimitar_app::invites::InviteError;
use serde::Deserialize;

use super::Shared;
use crate::auth::{self, ClientIp};
use crate::error::{ConsoleError, PageResult};
use crate::{Console, render};

#[derive(Template)]
#[template(path = "invite.html")]
struct InvitePage {
    csrf: String,
    code: String,
    tenant: String,
    email: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct InviteQuery {
    #[serde(default)]
    code: String,
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

fn dead() -> ConsoleError {
    ConsoleError::new(
        410,
        "This invite link is invalid, has expired or was already used. Ask whoever sent it for a new one.",
    )
}

fn page(
    console: &Console,
    status: StatusCode,
    code: &str,
    tenant: &str,
    email: &str,
    error: Option<String>,
) -> PageResult {
    let csrf =
        auth::random_token().map_err(|_| ConsoleError::new(500, "The server could not generate a random value."))?;
    let p = InvitePage {
        csrf: csrf.clone(),
        code: code.chars().take(128).collect(),
        tenant: tenant.to_string(),
        email: email.to_string(),
        error,
    };
    let mut resp = (status, render(&p)).into_response();
    if let Ok(v) = auth::set_cookie(console, console.login_cookie(), &csrf, Some(3600)).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

pub async fn invite_form(State(console): Shared, Query(q): Query<InviteQuery>) -> PageResult {
    match console.app.invite_tenant(&q.code).await? {
        Some(t) => page(&console, StatusCode::OK, &q.code, &t.name, "", None),
        None => Err(dead()),
    }
}

pub async fn invite(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<InviteForm>,
) -> PageResult {
    let Some(tenant) = console.app.invite_tenant(&f.code).await? else {
        return Err(dead());
    };
    let given = auth::cookie(&headers, console.login_cookie()).unwrap_or_default();
    if given.is_empty() || !auth::same(&given, &f.csrf) {
        return page(
            &console,
            StatusCode::FORBIDDEN,
            &f.code,
            &tenant.name,
            &f.email,
            Some("The form expired. Please try again.".into()),
        );
    }
    let email = f.email.trim().to_string();
    let who = Actor::Console {
        email: email.clone(),
        ip,
    };
    let (admin, tenant) = match console.app.accept_invite(&who, &f.code, &email, f.password).await {
        Ok(done) => done,
        Err(InviteError::Dead) => return Err(dead()),
        Err(InviteError::Invalid(_)) => {
            return page(
                &console,
                StatusCode::BAD_REQUEST,
                &f.code,
                &tenant.name,
                &email,
                Some(format!(
                    "Enter an email address and a password of at least {MIN_PASSWORD_LEN} characters."
                )),
            );
        }
        Err(InviteError::Taken) => {
            return page(
                &console,
                StatusCode::CONFLICT,
                &f.code,
                &tenant.name,
                &email,
                Some("An account with this email already exists: sign in instead, or use another email.".into()),
            );
        }
        Err(InviteError::Failed(e)) => return Err(e.into()),
    };
    // Signed in at once, on the page with the Entra steps.
    let (Ok(value), Ok(csrf)) = (auth::random_token(), auth::random_token()) else {
        return Err(ConsoleError::new(500, "The server could not generate a random value."));
    };
    let now = scimitar_store::now_utc();
    console
        .app
        .store
        .create_session(&auth::sha256(&value), admin.id, &csrf, &now)
        .await?;
    tracing::info!(account = admin.id, tenant = %tenant.name, "console account created with an invite link");
    let mut resp = Redirect::to(&format!("/console/t/{}/settings/provisioning", tenant.name)).into_response();
    let h = resp.headers_mut();
    for c in [
        auth::set_cookie(&console, console.session_cookie(), &value, None),
        auth::set_cookie(&console, console.login_cookie(), "", Some(0)),
    ] {
        if let Ok(v) = c.parse() {
            h.append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}
