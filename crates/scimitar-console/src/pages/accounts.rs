//! Settings → Accounts: a tenant's console accounts.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use scimitar_app::accounts::{MIN_PASSWORD_LEN, NewAccount};
use scimitar_store::Tenant;
use serde::Deserialize;

use super::{Chrome, Shared, actor, chrome, tenant_for, when, writable_tenant};
use crate::auth::{Authed, ClientIp};
use crate::error::PageResult;
use crate::{Console, render};

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
) -> PageResult {
    let list = console.app.store.list_admins(Some(t.id)).await?;
    let page = AccountsPage {
        c: chrome(a, &t.name, "accounts"),
        accounts: list.into_iter().map(|x| (x.email, x.role, when(&x.created))).collect(),
        min_len: MIN_PASSWORD_LEN,
        notice,
        error,
    };
    Ok((status, render(&page)).into_response())
}

pub async fn accounts(State(console): Shared, a: Authed, Path(tenant): Path<String>) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    accounts_page(&console, &a, &t, StatusCode::OK, None, None).await
}

pub async fn create_account(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Path(tenant): Path<String>,
    Form(f): Form<AccountForm>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    let email = f.email.trim();
    let bad = |m: String| accounts_page(&console, &a, &t, StatusCode::BAD_REQUEST, None, Some(m));
    if !email.contains('@') || !matches!(f.role.as_str(), "admin" | "viewer") {
        return bad("Enter an email address and choose a role.".into()).await;
    }
    if f.password.chars().count() < MIN_PASSWORD_LEN {
        return bad(format!(
            "The password must have at least {MIN_PASSWORD_LEN} characters."
        ))
        .await;
    }
    let account = NewAccount {
        tenant: Some(&t),
        email,
        role: &f.role,
        password: f.password.clone(),
    };
    match console.app.create_account(&actor(&a, ip), account).await {
        Ok(x) => {
            tracing::info!(tenant = %t.name, account = x.id, by = a.session.admin.id, "console created an account");
            let m = format!(
                "Created {} ({}). Give them the password through a separate channel.",
                x.email, x.role
            );
            accounts_page(&console, &a, &t, StatusCode::CREATED, Some(m), None).await
        }
        Err(e) if e.status == 409 => {
            let m = "An account with this email already exists.".to_string();
            accounts_page(&console, &a, &t, StatusCode::CONFLICT, None, Some(m)).await
        }
        Err(e) => Err(e.into()),
    }
}
