//! Settings → Events & webhooks: a tenant's webhook endpoints with their
//! recent deliveries; add (the secret shown once), disable, enable, rotate
//! the secret, replay failed events, remove — through the application
//! layer, audited like the admin API and the CLI.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use scimitar_store::Tenant;
use scimitar_store::webhooks::DeliveryRecord;
use serde::Deserialize;

use super::signin::CsrfForm;
use super::{Chrome, Shared, actor, chrome, tenant_for, when, writable_tenant};
use crate::auth::{Authed, ClientIp};
use crate::error::{ConsoleError, PageResult};
use crate::{Console, render};

/// Deliveries shown per endpoint.
const SHOWN: i64 = 10;

pub struct WebhookRow {
    pub id: String,
    pub url: String,
    pub enabled: bool,
    pub types: String,
    pub failed: i64,
    pub last_error: Option<String>,
    /// (action, button label, whether it destroys something)
    pub actions: Vec<(&'static str, &'static str, bool)>,
    pub deliveries: Vec<DeliveryRecord>,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    c: Chrome,
    webhooks: Vec<WebhookRow>,
    new_secret: Option<(String, String)>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Default)]
struct Extras {
    new_secret: Option<(String, String)>,
    notice: Option<String>,
    error: Option<String>,
}

async fn page(console: &Console, a: &Authed, t: &Tenant, status: StatusCode, extras: Extras) -> PageResult {
    let mut rows = Vec::new();
    for w in console.app.webhooks(t).await? {
        let mut deliveries = console.app.store.webhook_log(t.id, &w.id, SHOWN).await?;
        for d in &mut deliveries {
            d.time = when(&d.time);
        }
        let mut actions = vec![if w.enabled {
            ("disable", "Disable", false)
        } else {
            ("enable", "Enable", false)
        }];
        actions.push(("test", "Send test event", false));
        actions.push(("rotate", "Rotate secret", false));
        if w.failed > 0 {
            actions.push(("replay", "Replay failed events", false));
        }
        actions.push(("remove", "Remove", true));
        rows.push(WebhookRow {
            types: if w.types.is_empty() {
                "all".into()
            } else {
                w.types.join(", ")
            },
            id: w.id,
            url: w.url,
            enabled: w.enabled,
            failed: w.failed,
            last_error: w.state.last_error,
            actions,
            deliveries,
        });
    }
    let p = WebhooksPage {
        c: chrome(a, &t.name, "webhooks"),
        webhooks: rows,
        new_secret: extras.new_secret,
        notice: extras.notice,
        error: extras.error,
    };
    Ok((status, render(&p)).into_response())
}

pub async fn webhooks(State(console): Shared, a: Authed, Path(tenant): Path<String>) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    page(&console, &a, &t, StatusCode::OK, Extras::default()).await
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    types: String,
}

pub async fn add(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Path(tenant): Path<String>,
    Form(f): Form<AddForm>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    let types: Vec<String> = f.types.split(',').map(|s| s.trim().to_string()).collect();
    match console.app.add_webhook(&actor(&a, ip), &t, &f.url, &types).await {
        Ok((w, secret)) => {
            let extras = Extras {
                new_secret: Some((w.id, secret.0)),
                ..Extras::default()
            };
            page(&console, &a, &t, StatusCode::OK, extras).await
        }
        Err(e) if e.status < 500 => {
            let extras = Extras {
                error: Some(e.detail),
                ..Extras::default()
            };
            page(
                &console,
                &a,
                &t,
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
                extras,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn action(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Path((tenant, id, action)): Path<(String, String, String)>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    let who = actor(&a, ip);
    let app = &console.app;
    let extras = match action.as_str() {
        "enable" | "disable" => {
            app.set_webhook_enabled(&who, &t, &id, action == "enable").await?;
            Extras {
                notice: Some(format!("Webhook {id} is {}d.", action)),
                ..Extras::default()
            }
        }
        "rotate" => {
            let secret = app.rotate_webhook_secret(&who, &t, &id).await?;
            Extras {
                new_secret: Some((id.clone(), secret.0)),
                notice: Some("The previous secret also signs deliveries for 24 hours.".into()),
                ..Extras::default()
            }
        }
        "replay" => {
            let n = app.replay_webhook(&who, &t, &id).await?;
            Extras {
                notice: Some(format!("{n} failed events of {id} will be delivered again.")),
                ..Extras::default()
            }
        }
        "test" => {
            let r = app.send_test_event(&who, &t, &id).await?;
            let answer = match (r.status, &r.error) {
                (Some(s), _) => format!("answered {s}"),
                (None, Some(e)) => e.clone(),
                (None, None) => "no answer".into(),
            };
            if r.delivered {
                Extras {
                    notice: Some(format!(
                        "Test event {} delivered to {id} ({answer}, {} ms).",
                        r.event_id, r.latency_ms
                    )),
                    ..Extras::default()
                }
            } else {
                Extras {
                    error: Some(format!(
                        "Test event {} was not delivered to {id}: {answer}.",
                        r.event_id
                    )),
                    ..Extras::default()
                }
            }
        }
        "remove" => {
            app.remove_webhook(&who, &t, &id).await?;
            Extras {
                notice: Some(format!("Webhook {id} is removed.")),
                ..Extras::default()
            }
        }
        _ => return Err(ConsoleError::new(404, "There is no such webhook action.")),
    };
    page(&console, &a, &t, StatusCode::OK, extras).await
}
