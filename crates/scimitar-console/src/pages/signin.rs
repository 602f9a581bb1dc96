//! Signing in and out, and the one-time setup of a fresh install.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use scimitar_app::Actor;
use scimitar_app::accounts::{MIN_PASSWORD_LEN, NewAccount, check_account, verify_password};
use serde::Deserialize;

use super::Shared;
use crate::auth::{self, Authed, ClientIp};
use crate::error::{ConsoleError, PageResult};
use crate::{Console, render};

fn no_randomness() -> ConsoleError {
    ConsoleError::new(500, "The server could not generate a random value.")
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
    created: Option<String>,
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
        Err(_) => return no_randomness().into_response(),
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
    } else if q.created.is_some() {
        Some("Account created — sign in.".to_string())
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
) -> PageResult {
    let cfg = &console.config;
    let given = auth::cookie(&headers, console.login_cookie()).unwrap_or_default();
    if given.is_empty() || !auth::same(&given, &f.csrf) {
        return Ok(login_page(
            &console,
            StatusCode::FORBIDDEN,
            &f.email,
            Some("The sign-in form expired. Please try again.".into()),
            None,
        ));
    }
    let email = f.email.trim().to_lowercase();
    let source = ip.map(|i| i.to_string()).unwrap_or_default();
    let pair_key = format!("account:{email}|ip:{source}");
    let ip_key = format!("ip:{source}");
    let locked = {
        let mut t = console.throttle.lock().unwrap_or_else(|p| p.into_inner());
        t.locked(&pair_key, cfg.failures_per_email, cfg.throttle_window)
            .or_else(|| t.locked(&ip_key, cfg.failures_per_ip, cfg.throttle_window))
    };
    if let Some(secs) = locked {
        tracing::warn!(ip = ?ip, "console sign-in refused: too many failed attempts");
        let minutes = secs.div_ceil(60);
        let mut page = login_page(
            &console,
            StatusCode::TOO_MANY_REQUESTS,
            &f.email,
            Some(format!(
                "Too many failed sign-in attempts. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            )),
            None,
        );
        if let Ok(v) = secs.to_string().parse() {
            page.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(page);
    }
    let admin = console.app.store.admin_by_email(&email).await?;
    let phc = admin
        .as_ref()
        .map(|a| a.password_hash.clone())
        .unwrap_or_else(|| scimitar_auth::password::dummy_hash().to_string());
    let ok = verify_password(f.password, phc).await && admin.is_some();
    let known_tenant = admin.as_ref().and_then(|a| a.tenant_id);
    let Some(admin) = admin.filter(|_| ok) else {
        {
            let mut t = console.throttle.lock().unwrap_or_else(|p| p.into_inner());
            t.fail(&pair_key, cfg.throttle_window);
            t.fail(&ip_key, cfg.throttle_window);
        }
        tracing::warn!(ip = ?ip, "console sign-in failed");
        let who = Actor::Console {
            email: email.clone(),
            ip,
        };
        console
            .app
            .audit(&who, known_tenant, "admin.sign-in-failed", None)
            .await;
        return Ok(login_page(
            &console,
            StatusCode::UNAUTHORIZED,
            &f.email,
            Some("Wrong email or password.".into()),
            None,
        ));
    };
    console
        .throttle
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear(&pair_key);
    let who = Actor::Console {
        email: admin.email.clone(),
        ip,
    };
    console.app.audit(&who, admin.tenant_id, "admin.signed-in", None).await;
    // Session rotation: whatever session the browser had ends here.
    if let Some(old) = auth::cookie(&headers, console.session_cookie()) {
        let _ = console.app.store.delete_session(&auth::sha256(&old)).await;
    }
    let (Ok(value), Ok(csrf)) = (auth::random_token(), auth::random_token()) else {
        return Err(no_randomness());
    };
    let now = scimitar_store::now_utc();
    console
        .app
        .store
        .create_session(&auth::sha256(&value), admin.id, &csrf, &now)
        .await?;
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
    Ok(resp)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf: String,
}

pub async fn logout(State(console): Shared, a: Authed, Form(f): Form<CsrfForm>) -> PageResult {
    if !a.check_csrf(&f.csrf) {
        return Err(ConsoleError::csrf_failed());
    }
    let _ = console.app.store.delete_session(&a.hash).await;
    let mut resp = Redirect::to("/login?signed_out=1").into_response();
    if let Ok(v) = auth::set_cookie(&console, console.session_cookie(), "", Some(0)).parse() {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
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

fn setup_page(console: &Console, status: StatusCode, code: &str, email: &str, error: Option<String>) -> PageResult {
    let csrf = auth::random_token().map_err(|_| no_randomness())?;
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
    Ok(resp)
}

pub async fn setup_form(State(console): Shared, Query(q): Query<SetupQuery>) -> PageResult {
    if console.app.store.count_admins().await? > 0 {
        return Err(setup_link_dead());
    }
    setup_page(&console, StatusCode::OK, &q.code, "", None)
}

fn setup_link_dead() -> ConsoleError {
    ConsoleError::new(
        403,
        "This setup link is invalid, expired or already used. Create an account with `scimitar admin create` instead.",
    )
}

/// Creates the first operator with the one-time setup code printed by `serve`.
pub async fn setup(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<SetupForm>,
) -> PageResult {
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
    let account = NewAccount {
        tenant: None,
        email: &email,
        role: "operator",
        password: f.password,
    };
    if check_account(&account).is_err() {
        return setup_page(
            &console,
            StatusCode::BAD_REQUEST,
            &f.code,
            &email,
            Some(format!(
                "Enter an email address and a password of at least {MIN_PASSWORD_LEN} characters."
            )),
        );
    }
    let now = scimitar_store::now_utc();
    let taken = console
        .app
        .store
        .take_setup_code(&auth::sha256(f.code.trim()), &now)
        .await?;
    // The link is for a fresh install only: once any account exists (made
    // with the link or with `scimitar admin create`) it is dead.
    if !taken || console.app.store.count_admins().await? > 0 {
        return Err(setup_link_dead());
    }
    let who = Actor::Console {
        email: email.clone(),
        ip,
    };
    match console.app.create_account(&who, account).await {
        Ok(a) => {
            console
                .app
                .audit(&who, None, "console.setup-link-used", Some(&a.email))
                .await;
            // Post-redirect-get to the sign-in page, which says what happened.
            Ok(Redirect::to("/login?created=1").into_response())
        }
        Err(e) if e.status == 409 => Err(ConsoleError::new(409, "An account with this email already exists.")),
        Err(e) => Err(e.into()),
    }
}

/// Where `/console` (and so a sign-in) leads: a tenant's administrator to
/// their tenant; an operator to the only tenant when there is one (the
/// first steps of a fresh install are in it), else to "All tenants".
pub async fn home(State(console): Shared, a: Authed) -> PageResult {
    if let Some(t) = a.session.admin.tenant.as_ref().filter(|_| !a.is_operator()) {
        return Ok(Redirect::to(&format!("/console/t/{t}")).into_response());
    }
    let tenants = console.app.store.list_tenants().await?;
    Ok(match tenants.as_slice() {
        [only] => Redirect::to(&format!("/console/t/{}", only.name)).into_response(),
        _ => Redirect::to("/console/tenants").into_response(),
    })
}
