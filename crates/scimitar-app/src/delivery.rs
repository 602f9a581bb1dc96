//! Webhook delivery wired to the events outbox: an
//! [`EventSource`](scimitar_webhooks::worker::EventSource) over the store's
//! events, woken by this process's commits (the signal the events API's
//! long polls wait on) and, for other nodes' commits, by the dispatcher's
//! poll. What is delivered is exactly the events API's event object
//! ([`crate::events::event_json`]); its `webhook-id` is the event id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use scimitar_protocol::ScimError;
use scimitar_store::{Store, Tenant, TenantId};
pub use scimitar_webhooks::worker::DEFAULT_IN_FLIGHT as DEFAULT_WEBHOOK_IN_FLIGHT;
pub use scimitar_webhooks::worker::Settings as DeliverySettings;
use scimitar_webhooks::worker::{Dispatcher, EventSource, WebhookEvent};
use serde_json::json;
use serde_json::value::RawValue;
use tokio::sync::watch;

use crate::events::event_json;
use crate::{Actor, App};

/// The events outbox as the webhook workers read it.
pub struct OutboxEvents {
    store: Arc<dyn Store>,
    wake: watch::Receiver<u64>,
    endpoints: watch::Receiver<u64>,
    /// Tenant names by id (the event object names its tenant). As many
    /// entries as tenants, which only administrators create.
    names: Mutex<HashMap<TenantId, String>>,
}

impl OutboxEvents {
    async fn tenant_name(&self, tenant: TenantId) -> Result<String, String> {
        if let Some(n) = self.names.lock().map_err(|_| "poisoned")?.get(&tenant) {
            return Ok(n.clone());
        }
        let all = self.store.list_tenants().await.map_err(|e| e.to_string())?;
        let mut names = self.names.lock().map_err(|_| "poisoned")?;
        names.clear();
        names.extend(all.into_iter().map(|t| (t.id, t.name)));
        names
            .get(&tenant)
            .cloned()
            .ok_or_else(|| format!("no tenant numbered {tenant}"))
    }
}

/// The body of an event as delivered: the events API's object.
pub fn event_body(tenant: &str, e: &scimitar_store::Event) -> WebhookEvent {
    WebhookEvent {
        id: e.id.clone(),
        seq: e.seq,
        event_type: e.event_type.clone(),
        subject: e.subject.clone(),
        body: event_json(tenant, e).to_string(),
    }
}

/// [`event_body`] of an event read as text: the same object, in
/// `event_json`'s field order, with the payload put in as stored (checked
/// to be JSON, but neither parsed into a tree nor serialised again).
pub fn raw_event_body(tenant: &str, e: scimitar_store::RawEvent) -> WebhookEvent {
    let data = RawValue::from_string(e.data).ok();
    let text = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let data = data.as_deref().map_or("null", RawValue::get);
    let mut body = String::with_capacity(data.len() + 160);
    body.push_str("{\"id\":");
    body.push_str(&text(&e.id));
    body.push_str(",\"tenant\":");
    body.push_str(&text(tenant));
    body.push_str(",\"seq\":");
    body.push_str(&e.seq.to_string());
    body.push_str(",\"time\":");
    body.push_str(&text(&e.time));
    body.push_str(",\"type\":");
    body.push_str(&text(&e.event_type));
    body.push_str(",\"data\":");
    body.push_str(data);
    body.push('}');
    WebhookEvent {
        id: e.id,
        seq: e.seq,
        event_type: e.event_type,
        subject: e.subject,
        body,
    }
}

#[async_trait]
impl EventSource for OutboxEvents {
    async fn after(&self, tenant: TenantId, after: i64, limit: usize) -> Result<Vec<WebhookEvent>, String> {
        // Only up to the visible high-water mark: on PostgreSQL a later
        // number may commit before an earlier one, and the cursor must not
        // pass the earlier one (as `App::read_events`).
        let high = self.store.last_event_seq(tenant).await.map_err(|e| e.to_string())?;
        if high <= after {
            return Ok(Vec::new());
        }
        let name = self.tenant_name(tenant).await?;
        let events = self
            .store
            .list_raw_events(tenant, after, limit)
            .await
            .map_err(|e| e.to_string())?;
        Ok(events
            .into_iter()
            .filter(|e| e.seq <= high)
            .map(|e| raw_event_body(&name, e))
            .collect())
    }

    async fn head(&self, tenant: TenantId) -> Result<i64, String> {
        self.store.last_event_seq(tenant).await.map_err(|e| e.to_string())
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.clone()
    }

    fn endpoints_changed(&self) -> Option<watch::Receiver<u64>> {
        Some(self.endpoints.clone())
    }
}

/// The type of the event "send test event" delivers.
pub const TEST_EVENT: &str = "webhook.test";

/// What a test event came to.
#[derive(Debug, Clone)]
pub struct TestDelivery {
    pub event_id: String,
    /// The receiver answered 2xx in time.
    pub delivered: bool,
    /// Its answer's status, if one came.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why it failed.
    pub error: Option<String>,
}

impl TestDelivery {
    pub fn json(&self) -> serde_json::Value {
        json!({
            "eventId": self.event_id,
            "delivered": self.delivered,
            "responseCode": self.status,
            "latencyMs": self.latency_ms,
            "error": self.error,
        })
    }
}

impl App {
    /// The events outbox as a source of webhook deliveries.
    pub fn outbox_events(&self) -> Arc<OutboxEvents> {
        Arc::new(OutboxEvents {
            store: self.store.clone(),
            wake: self.events_signal(),
            endpoints: self.endpoints_signal(),
            names: Mutex::new(HashMap::new()),
        })
    }

    /// Starts the webhook delivery workers of this process (every node
    /// runs them; the lease per endpoint makes one node deliver at a time).
    /// They stop when the returned dispatcher is stopped or dropped.
    pub fn start_webhook_delivery(&self) -> Result<Dispatcher, ScimError> {
        let sender = self.webhook_sender()?;
        Ok(Dispatcher::start(
            self.store.clone(),
            self.outbox_events(),
            sender,
            self.config.webhook_delivery.clone(),
        ))
    }

    /// "Send test event": a `webhook.test` event, signed like any other,
    /// sent to the endpoint now and once (not stored in the tenant's feed,
    /// not retried, not in the delivery log; `seq` 0). What the receiver
    /// answered; audited.
    pub async fn send_test_event(&self, actor: &Actor, tenant: &Tenant, id: &str) -> Result<TestDelivery, ScimError> {
        let w = self.webhook(tenant, id).await?;
        let keys = scimitar_webhooks::worker::keys(&w).map_err(|e| ScimError::new(500, None, e))?;
        let event_id = uuid::Uuid::new_v4().to_string();
        let body = json!({
            "id": event_id,
            "tenant": tenant.name,
            "seq": 0,
            "time": scimitar_store::now_utc(),
            "type": TEST_EVENT,
            "data": {"webhook": {"id": w.id, "url": w.url}, "message": "A test event from Scimitar: this endpoint receives and verifies deliveries."},
        })
        .to_string();
        let out = self
            .webhook_sender()?
            .send(&w.url, &event_id, body.as_bytes(), &keys)
            .await;
        let result = TestDelivery {
            event_id,
            delivered: out.delivered,
            status: out.status,
            latency_ms: u64::try_from(out.latency.as_millis()).unwrap_or(u64::MAX),
            error: out.error,
        };
        let said = match (result.delivered, result.status) {
            (true, Some(s)) => format!("delivered ({s})"),
            (_, Some(s)) => format!("answered {s}"),
            _ => "not delivered".into(),
        };
        self.audit_detail(actor, Some(tenant.id), "webhook.tested", Some(&w.id), Some(said))
            .await;
        Ok(result)
    }

    pub(crate) fn webhook_sender(&self) -> Result<scimitar_webhooks::send::Sender, ScimError> {
        scimitar_webhooks::send::Sender::new(self.webhook_policy(), scimitar_webhooks::send::Timeouts::default())
            .map_err(|e| ScimError::new(500, None, e))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use scimitar_store::{Event, RawEvent};
    use serde_json::{Value, json};

    use super::*;

    /// The body made from the stored text is, byte for byte, the one made
    /// from the parsed event (the events API's object).
    #[test]
    fn a_body_from_stored_text_is_the_events_api_object() {
        let cases = [
            json!({"user": {"id": "u1", "userName": "a\"b\\c", "name": {"givenName": "Zoë 😀"}, "active": true}}),
            json!({"changed": ["emails", "name.givenName"], "n": 1.5, "z": null, "a": []}),
            json!({"token": {"id": "t1", "label": "<script>\u{1}", "scope": "scim"}}),
            json!({}),
        ];
        for (i, data) in cases.into_iter().enumerate() {
            let seq = i64::try_from(i).unwrap() + 1;
            let event = Event {
                id: format!("id-{i}"),
                seq,
                time: "2026-12-01T12:00:00.000Z".into(),
                event_type: "user.updated".into(),
                subject: Some("u1".into()),
                data: data.clone(),
            };
            let raw = RawEvent {
                id: event.id.clone(),
                seq,
                time: event.time.clone(),
                event_type: event.event_type.clone(),
                subject: event.subject.clone(),
                // As the SQLite backend stores it.
                data: serde_json::to_string(&data).unwrap(),
            };
            let tenant = "acme \"eu\"";
            assert_eq!(raw_event_body(tenant, raw), event_body(tenant, &event), "{data}");
        }
        // Stored text that is not JSON is sent as null, as the parsed
        // event has it.
        let raw = RawEvent {
            id: "x".into(),
            seq: 1,
            time: "t".into(),
            event_type: "user.created".into(),
            subject: None,
            data: "{not json".into(),
        };
        let body: Value = serde_json::from_str(&raw_event_body("acme", raw).body).unwrap();
        assert_eq!(body["data"], Value::Null);
    }
}
