//! `scimitar webhook …`: a tenant's webhook endpoints, through the
//! application layer (audited as the CLI), like the admin API.

use anyhow::Result;
use clap::Subcommand;
use scimitar_app::webhooks::webhook_json;
use scimitar_app::{Actor, App};
use serde_json::json;

use crate::{app_err, print_json};

#[derive(Subcommand)]
pub enum WebhookCmd {
    /// Add an endpoint; its signing secret is shown once.
    Add {
        #[arg(long)]
        tenant: String,
        /// Where events are posted: https://…, or http:// to a loopback address allowed with --webhook-allow-private.
        #[arg(long)]
        url: String,
        /// Event types to send (comma-separated, e.g. user.created,user.deleted; default: every type).
        #[arg(long, value_delimiter = ',')]
        types: Vec<String>,
    },
    /// List a tenant's endpoints and their delivery state (never the secrets).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Show one endpoint with its recent deliveries and failed events.
    Show {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Stop delivering to an endpoint (events wait; enable resumes where it stopped).
    Disable {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Resume delivering to an endpoint.
    Enable {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Remove an endpoint, its delivery log and failed events.
    Remove {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// A new signing secret, shown once; the previous one signs too for 24 hours.
    Rotate {
        #[arg(long)]
        tenant: String,
        id: String,
    },
    /// Deliver an endpoint's failed events again.
    Replay {
        #[arg(long)]
        tenant: String,
        id: String,
    },
}

pub async fn webhook_cmd(app: &App, cmd: WebhookCmd, as_json: bool) -> Result<()> {
    let actor = Actor::Cli;
    match cmd {
        WebhookCmd::Add { tenant, url, types } => {
            let t = app.tenant(&tenant).await.map_err(app_err)?;
            let (w, secret) = app.add_webhook(&actor, &t, &url, &types).await.map_err(app_err)?;
            if as_json {
                print_json(json!({"id": w.id, "secret": secret.0}));
            } else {
                out!("Webhook {} added for {}.", w.id, w.url);
                out!(
                    "Signing secret (shown once; it cannot be recovered):\n\n  {}\n",
                    secret.0
                );
            }
        }
        WebhookCmd::List { tenant } => {
            let t = app.tenant(&tenant).await.map_err(app_err)?;
            let list = app.webhooks(&t).await.map_err(app_err)?;
            if as_json {
                print_json(json!({"webhooks": list.iter().map(webhook_json).collect::<Vec<_>>()}));
            } else {
                for w in list {
                    let types = if w.types.is_empty() {
                        "all".to_string()
                    } else {
                        w.types.join(",")
                    };
                    out!(
                        "{}\t{}\t{}\t{types}\tfailed {}\t{}",
                        w.id,
                        if w.enabled { "enabled" } else { "disabled" },
                        w.url,
                        w.failed,
                        w.state.last_error.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        WebhookCmd::Show { tenant, id } => {
            let t = app.tenant(&tenant).await.map_err(app_err)?;
            let detail = app.webhook_detail(&t, &id).await.map_err(app_err)?;
            if as_json {
                print_json(detail);
            } else {
                out!("{}", serde_json::to_string_pretty(&detail).unwrap_or_default());
            }
        }
        WebhookCmd::Disable { tenant, id } => {
            let t = app.tenant(&tenant).await.map_err(app_err)?;
            let w = app.set_webhook_enabled(&actor, &t, &id, false).await.map_err(app_err)?;
            done(as_json, webhook_json(&w), &format!("Webhook {id} disabled."));
        }
        WebhookCmd::Enable { tenant, id } => {
            let t = app.tenant(&tenant).await.map_err(app_err)?;
            let w = app.set_webhook_enabled(&actor, &t, &id, true).await.map_err(app_err)?;
            done(as_json, webhook_json(&w), &format!("Webhook {id} enabled."));
        }
        WebhookCmd::Remove { tenant, id } => {
            let t = app.tenant(&tenant).await.map_err(app_err)?;
            app.remove_webhook(&actor, &t, &id).await.map_err(app_err)?;
            done(
                as_json,
                json!({"id": id, "removed": true}),
                &format!("Webhook {id} removed."),
            );
        }
        WebhookCmd::Rotate { tenant, id } => {
            let t = app.tenant(&tenant).await.map_err(app_err)?;
            let secret = app.rotate_webhook_secret(&actor, &t, &id).await.map_err(app_err)?;
            if as_json {
                print_json(json!({"id": id, "secret": secret.0}));
            } else {
                out!(
                    "New signing secret (shown once; the previous one also signs for 24 hours):\n\n  {}\n",
                    secret.0
                );
            }
        }
        WebhookCmd::Replay { tenant, id } => {
            let t = app.tenant(&tenant).await.map_err(app_err)?;
            let n = app.replay_webhook(&actor, &t, &id).await.map_err(app_err)?;
            done(
                as_json,
                json!({"id": id, "replayed": n}),
                &format!("{n} failed events of webhook {id} will be delivered again."),
            );
        }
    }
    Ok(())
}

fn done(as_json: bool, v: serde_json::Value, text: &str) {
    if as_json {
        print_json(v);
    } else {
        out!("{text}");
    }
}
