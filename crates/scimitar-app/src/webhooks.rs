//! Webhook endpoints as administrative objects: added (the secret returned
//! once), listed, enabled and disabled, removed, their secret rotated (the
//! previous one signs too for 24 hours), their failed events replayed —
//! each audited. Delivery itself is `scimitar_webhooks::worker`.

use std::sync::Arc;

use scimitar_protocol::ScimError;
use scimitar_store::Tenant;
use scimitar_store::webhooks::{NewWebhook, Webhook};
pub use scimitar_webhooks::policy::{Cidr, Policy};
use serde_json::{Value, json};

use crate::{Actor, App, scim_error};

/// The event types an endpoint may ask for: every event type.
pub use scimitar_protocol::events::EVENT_TYPES;

/// The most endpoints one tenant may have.
pub const MAX_WEBHOOKS_PER_TENANT: usize = 20;

/// The longest URL accepted.
const MAX_URL_LEN: usize = 2048;

/// How long the previous secret still signs after a rotation.
pub const ROTATION_OVERLAP_SECS: i64 = 24 * 60 * 60;

/// The delivery log lines shown with one endpoint.
const LOG_LINES: i64 = 50;

/// A secret, shown once.
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Reads an endpoint's event types: names from [`EVENT_TYPES`], each once;
/// none means every type.
pub fn parse_types(types: &[String]) -> Result<Vec<String>, ScimError> {
    let mut out: Vec<String> = Vec::new();
    for t in types.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        if !EVENT_TYPES.contains(&t) {
            let shown: String = t.chars().take(64).collect();
            return Err(ScimError::invalid_value(format!(
                "'{shown}' is not an event type; the types are {}",
                EVENT_TYPES.join(", ")
            )));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

/// An endpoint as the admin API and the CLI show it: never its secret.
pub fn webhook_json(w: &Webhook) -> Value {
    json!({
        "id": w.id,
        "url": w.url,
        "types": w.types,
        "enabled": w.enabled,
        "created": w.created,
        "previousSecretValidUntil": w.previous_until,
        "delivery": {
            "cursor": w.state.cursor,
            "attempts": w.state.attempts,
            "nextAttempt": w.state.next_attempt,
            "lastError": w.state.last_error,
            "failed": w.failed,
        },
    })
}

fn new_id() -> String {
    format!("wh_{}", uuid::Uuid::new_v4().simple())
}

fn new_sealed_secret() -> Result<(Secret, String), ScimError> {
    let secret = scimitar_webhooks::sign::new_secret().map_err(|e| ScimError::new(500, None, e.to_string()))?;
    let sealed = scimitar_auth::seal::seal(&secret).map_err(|e| ScimError::new(500, None, e.to_string()))?;
    Ok((Secret(secret), sealed))
}

impl App {
    /// Where webhooks may be sent: public addresses, and the ranges of
    /// `Config::webhook_allow`.
    pub fn webhook_policy(&self) -> Arc<Policy> {
        Arc::new(Policy {
            allow: self.config.webhook_allow.clone(),
        })
    }

    /// The endpoint `id` of `tenant`, or 404.
    pub async fn webhook(&self, tenant: &Tenant, id: &str) -> Result<Webhook, ScimError> {
        self.store
            .webhook(tenant.id, id)
            .await
            .map_err(scim_error)?
            .ok_or_else(|| not_found(tenant, id))
    }

    pub async fn webhooks(&self, tenant: &Tenant) -> Result<Vec<Webhook>, ScimError> {
        self.store.webhooks(tenant.id).await.map_err(scim_error)
    }

    /// One endpoint with its recent deliveries and the events set aside.
    pub async fn webhook_detail(&self, tenant: &Tenant, id: &str) -> Result<Value, ScimError> {
        let w = self.webhook(tenant, id).await?;
        let log = self
            .store
            .webhook_log(tenant.id, id, LOG_LINES)
            .await
            .map_err(scim_error)?;
        let failed = self
            .store
            .failed_events(tenant.id, id, LOG_LINES)
            .await
            .map_err(scim_error)?;
        let mut v = webhook_json(&w);
        if let Some(o) = v.as_object_mut() {
            o.insert(
                "deliveries".into(),
                log.iter()
                    .map(|l| {
                        json!({"eventId": l.event_id, "seq": l.seq, "type": l.event_type, "status": l.status,
                               "attempts": l.attempts, "latencyMs": l.latency_ms, "responseCode": l.response_code,
                               "error": l.error, "time": l.time})
                    })
                    .collect(),
            );
            o.insert(
                "failedEvents".into(),
                failed
                    .iter()
                    .map(|f| {
                        json!({"eventId": f.event_id, "seq": f.seq, "type": f.event_type, "failedAt": f.failed_at,
                               "error": f.error, "replayRequested": f.replay})
                    })
                    .collect(),
            );
        }
        Ok(v)
    }

    /// Adds an endpoint: its URL checked against the policy (what it
    /// resolves to now; again at every delivery), its types against
    /// [`EVENT_TYPES`]. Returns it and its secret, which is not shown again.
    pub async fn add_webhook(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        url: &str,
        types: &[String],
    ) -> Result<(Webhook, Secret), ScimError> {
        let url = url.trim();
        if url.is_empty() || url.len() > MAX_URL_LEN {
            return Err(ScimError::invalid_value(format!(
                "a webhook needs a URL of at most {MAX_URL_LEN} characters"
            )));
        }
        let types = parse_types(types)?;
        self.webhook_policy()
            .check(url)
            .await
            .map_err(|e| ScimError::invalid_value(e.to_string()))?;
        if self.webhooks(tenant).await?.len() >= MAX_WEBHOOKS_PER_TENANT {
            return Err(ScimError::new(
                409,
                None,
                format!(
                    "tenant '{}' has {MAX_WEBHOOKS_PER_TENANT} webhooks, the most it may have; remove one first",
                    tenant.name
                ),
            ));
        }
        let (secret, sealed) = new_sealed_secret()?;
        let new = NewWebhook {
            id: new_id(),
            url: url.to_string(),
            types,
            secret_sealed: sealed,
        };
        // Read the head before the endpoint exists: every event committed
        // once this answers is delivered to it, whenever its worker first
        // looks (a worker that looked before this write started at a head
        // at least as new: at worst an event goes twice, with its id).
        let head = self.store.last_event_seq(tenant.id).await.map_err(scim_error)?;
        let mut w = self.store.create_webhook(tenant.id, &new).await.map_err(scim_error)?;
        if w.state.cursor.is_none() {
            let rec = scimitar_store::webhooks::AttemptRecord {
                state: scimitar_store::webhooks::WebhookState {
                    cursor: Some(head),
                    ..Default::default()
                },
                log: Vec::new(),
                failed: None,
            };
            self.store
                .record_webhook_attempt(tenant.id, &w.id, &rec)
                .await
                .map_err(scim_error)?;
            w.state.cursor = Some(head);
        }
        self.endpoints_changed();
        self.audit_detail(
            actor,
            Some(tenant.id),
            "webhook.created",
            Some(&w.id),
            Some(w.url.clone()),
        )
        .await;
        Ok((w, secret))
    }

    pub async fn set_webhook_enabled(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: &str,
        enabled: bool,
    ) -> Result<Webhook, ScimError> {
        if !self
            .store
            .set_webhook_enabled(tenant.id, id, enabled)
            .await
            .map_err(scim_error)?
        {
            return Err(not_found(tenant, id));
        }
        if enabled {
            self.endpoints_changed();
        }
        let action = if enabled { "webhook.enabled" } else { "webhook.disabled" };
        self.audit(actor, Some(tenant.id), action, Some(id)).await;
        self.webhook(tenant, id).await
    }

    pub async fn remove_webhook(&self, actor: &Actor, tenant: &Tenant, id: &str) -> Result<(), ScimError> {
        if !self.store.delete_webhook(tenant.id, id).await.map_err(scim_error)? {
            return Err(not_found(tenant, id));
        }
        self.audit(actor, Some(tenant.id), "webhook.deleted", Some(id)).await;
        Ok(())
    }

    /// A new secret, returned once; the previous one signs deliveries too
    /// for [`ROTATION_OVERLAP_SECS`].
    pub async fn rotate_webhook_secret(&self, actor: &Actor, tenant: &Tenant, id: &str) -> Result<Secret, ScimError> {
        let (secret, sealed) = new_sealed_secret()?;
        let until = scimitar_store::utc_in(ROTATION_OVERLAP_SECS);
        if !self
            .store
            .rotate_webhook_secret(tenant.id, id, &sealed, &until)
            .await
            .map_err(scim_error)?
        {
            return Err(not_found(tenant, id));
        }
        self.audit(actor, Some(tenant.id), "webhook.secret_rotated", Some(id))
            .await;
        Ok(secret)
    }

    /// Asks for the endpoint's failed events to be delivered again; how many.
    pub async fn replay_webhook(&self, actor: &Actor, tenant: &Tenant, id: &str) -> Result<u64, ScimError> {
        self.webhook(tenant, id).await?;
        let n = self.store.replay_failed(tenant.id, id).await.map_err(scim_error)?;
        self.audit_detail(
            actor,
            Some(tenant.id),
            "webhook.replayed",
            Some(id),
            Some(format!("{n} failed events")),
        )
        .await;
        Ok(n)
    }
}

fn not_found(tenant: &Tenant, id: &str) -> ScimError {
    let shown: String = id.chars().take(64).collect();
    ScimError::not_found(format!("no webhook '{shown}' in tenant '{}'", tenant.name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn event_types_are_checked() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_types(&s(&[])).unwrap(), Vec::<String>::new());
        assert_eq!(
            parse_types(&s(&["user.created", " user.created ", "", "group.user_added"])).unwrap(),
            s(&["user.created", "group.user_added"])
        );
        for bad in ["user.create", "*", "USER.CREATED", "dsync.user.created"] {
            let e = parse_types(&s(&[bad])).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
            assert!(e.detail.contains("is not an event type"), "{bad}");
        }
    }

    #[test]
    fn a_secret_does_not_show_in_debug() {
        assert_eq!(format!("{:?}", Secret("whsec_x".into())), "Secret(..)");
    }
}
