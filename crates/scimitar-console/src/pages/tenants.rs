//! Tenants, for operators: the list and creating a tenant with its first admin.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use scimitar_app::accounts::{MIN_PASSWORD_LEN, NewAccount, check_account};
use scimitar_app::tenants::{TENANT_NAME_RULE, valid_tenant_name};
use serde::Deserialize;

use super::{Chrome, Shared, actor, chrome, when};
use crate::auth::{Authed, ClientIp};
use crate::error::{ConsoleError, PageResult, sentence};
use crate::{Console, render};

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
) -> PageResult {
    let list = console.app.store.list_tenants().await?;
    let page = TenantsPage {
        c: chrome(a, "", "tenants"),
        tenants: list
            .into_iter()
            .map(|t| {
                let url = console.app.tenant_url(&t.name);
                (t.name, url, when(&t.created))
            })
            .collect(),
        error,
        notice,
    };
    Ok((status, render(&page)).into_response())
}

pub async fn tenants(State(console): Shared, a: Authed) -> PageResult {
    if !a.is_operator() {
        return Err(ConsoleError::forbidden());
    }
    tenants_page(&console, &a, StatusCode::OK, None, None).await
}

/// Creates a tenant and its first admin (operators only).
pub async fn create_tenant(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Form(f): Form<TenantForm>,
) -> PageResult {
    if !a.check_csrf(&f.csrf) {
        return Err(ConsoleError::csrf_failed());
    }
    if !a.is_operator() {
        return Err(ConsoleError::forbidden());
    }
    let name = f.name.trim();
    let email = f.email.trim();
    let bad = |m: String| tenants_page(&console, &a, StatusCode::BAD_REQUEST, Some(m), None);
    if !valid_tenant_name(name) {
        return bad(sentence(TENANT_NAME_RULE)).await;
    }
    // The first admin is checked before the tenant exists, so that a bad
    // form creates nothing.
    let check = NewAccount {
        tenant: None,
        email,
        role: "operator",
        password: f.password.clone(),
    };
    if check_account(&check).is_err() {
        return bad(format!(
            "Enter the first admin's email and a password of at least {MIN_PASSWORD_LEN} characters."
        ))
        .await;
    }
    if console.app.store.admin_by_email(email).await?.is_some() {
        return bad("An account with this email already exists.".into()).await;
    }
    let who = actor(&a, ip);
    let t = match console.app.create_tenant(&who, name).await {
        Ok(t) => t,
        Err(e) if e.status == 409 => return bad(format!("A tenant named '{name}' already exists.")).await,
        Err(e) => return Err(e.into()),
    };
    let first = NewAccount {
        tenant: Some(&t),
        email,
        role: "admin",
        password: f.password,
    };
    console.app.create_account(&who, first).await?;
    tracing::info!(tenant = %t.name, by = a.session.admin.id, "console created a tenant");
    tenants_page(
        &console,
        &a,
        StatusCode::CREATED,
        None,
        Some(format!("Created tenant '{}' with its first admin {email}.", t.name)),
    )
    .await
}
