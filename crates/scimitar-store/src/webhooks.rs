//! Webhook endpoints per tenant and their delivery state (the `webhooks`
//! migration set).
//!
//! An endpoint holds its URL, the event types it wants (none: all), whether
//! it is enabled, its signing secret **sealed** with the server key (it must
//! be used again to sign, so it cannot be hashed; it is shown once, when it
//! is made) and, for 24 hours after a rotation, the previous one. Its
//! delivery state is a cursor (the sequence number of the last event done:
//! delivered, skipped by the type filter, or set aside as failed) and the
//! attempts of the event after it; deliveries are logged (the newest
//! [`MAX_DELIVERY_LOG`] per endpoint kept), and events that failed for 24
//! hours are kept, with their body, until replayed or the endpoint removed.

use async_trait::async_trait;

use crate::{StoreResult, TenantId};

/// Delivery log entries kept per endpoint (older ones are dropped as new
/// ones come).
pub const MAX_DELIVERY_LOG: i64 = 1000;

/// A new endpoint.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub id: String,
    pub url: String,
    /// Event types delivered; empty: every type.
    pub types: Vec<String>,
    /// The signing secret, sealed (`scimitar_auth::seal`).
    pub secret_sealed: String,
}

/// A stored endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub tenant_id: TenantId,
    pub id: String,
    pub url: String,
    pub types: Vec<String>,
    pub enabled: bool,
    pub secret_sealed: String,
    /// The secret before the last rotation, sealed, and until when it
    /// still signs.
    pub previous_sealed: Option<String>,
    pub previous_until: Option<String>,
    pub created: String,
    pub state: WebhookState,
    /// Events set aside after failing for 24 hours.
    pub failed: i64,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("tenant_id", &self.tenant_id)
            .field("id", &self.id)
            .field("url", &self.url)
            .field("types", &self.types)
            .field("enabled", &self.enabled)
            .field("created", &self.created)
            .field("state", &self.state)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Where an endpoint's delivery stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookState {
    /// The sequence number of the last event done; `None` until the worker
    /// first looks (it then starts after the newest event).
    pub cursor: Option<i64>,
    /// Failed attempts of the event after the cursor.
    pub attempts: i64,
    /// When that event was first tried.
    pub first_attempt: Option<String>,
    /// When it is tried next.
    pub next_attempt: Option<String>,
    pub last_error: Option<String>,
}

/// One line of the delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub event_id: String,
    pub seq: i64,
    pub event_type: String,
    /// `delivered`, `retrying`, `failed` (set aside), `replayed`.
    pub status: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
    pub latency_ms: i64,
    pub response_code: Option<i64>,
    pub error: Option<String>,
    pub time: String,
}

/// An event set aside after failing, kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEvent {
    pub seq: i64,
    pub event_id: String,
    pub event_type: String,
    /// The event as delivered (JSON text).
    pub body: String,
    pub failed_at: String,
    pub error: Option<String>,
    /// Asked to be delivered again.
    pub replay: bool,
}

/// What attempts change: the endpoint's new state, their log lines (oldest
/// first: the worker records several deliveries in one write), and the
/// event if it is set aside.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub state: WebhookState,
    pub log: Vec<DeliveryRecord>,
    pub failed: Option<FailedEvent>,
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Stores a new endpoint, enabled. `Conflict("id")` if the id is taken.
    async fn create_webhook(&self, tenant: TenantId, new: &NewWebhook) -> StoreResult<Webhook>;
    async fn webhook(&self, tenant: TenantId, id: &str) -> StoreResult<Option<Webhook>>;
    /// A tenant's endpoints, oldest first.
    async fn webhooks(&self, tenant: TenantId) -> StoreResult<Vec<Webhook>>;
    /// Whether it existed.
    async fn set_webhook_enabled(&self, tenant: TenantId, id: &str, enabled: bool) -> StoreResult<bool>;
    /// Deletes the endpoint, its log and its failed events. Whether it
    /// existed.
    async fn delete_webhook(&self, tenant: TenantId, id: &str) -> StoreResult<bool>;
    /// Makes `secret_sealed` the secret; the current one signs too until
    /// `previous_until`. Whether it existed.
    async fn rotate_webhook_secret(
        &self,
        tenant: TenantId,
        id: &str,
        secret_sealed: &str,
        previous_until: &str,
    ) -> StoreResult<bool>;
    /// The enabled endpoints of every tenant, as `(tenant, id)`: the
    /// delivery workers' one query across tenants.
    async fn enabled_webhooks(&self) -> StoreResult<Vec<(TenantId, String)>>;
    /// Records one attempt (or a skip): the new state, a log line (the log
    /// trimmed to [`MAX_DELIVERY_LOG`]), an event set aside. Whether the
    /// endpoint still exists.
    async fn record_webhook_attempt(&self, tenant: TenantId, id: &str, rec: &AttemptRecord) -> StoreResult<bool>;
    /// The newest `limit` log lines, newest first.
    async fn webhook_log(&self, tenant: TenantId, id: &str, limit: i64) -> StoreResult<Vec<DeliveryRecord>>;
    /// The events set aside, oldest first (at most `limit`).
    async fn failed_events(&self, tenant: TenantId, id: &str, limit: i64) -> StoreResult<Vec<FailedEvent>>;
    /// Marks every failed event of the endpoint for replay; how many.
    async fn replay_failed(&self, tenant: TenantId, id: &str) -> StoreResult<u64>;
    /// After a replay attempt: the event is dropped from the failed list if
    /// `delivered`, else kept (no longer marked) with `error`. Logs `log`.
    async fn finish_replay(
        &self,
        tenant: TenantId,
        id: &str,
        seq: i64,
        delivered: bool,
        log: &DeliveryRecord,
    ) -> StoreResult<()>;
}
