//! The provisioning activity log: what identity providers did, per tenant.

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use crate::{StoreResult, TenantId};

/// One entry of the provisioning activity log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityEvent {
    /// Assigned by the store.
    pub id: i64,
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub time: String,
    pub token_id: Option<String>,
    pub token_label: Option<String>,
    /// create, update, disable, enable, delete, add-member, remove-member, …
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// userName or displayName.
    pub name: Option<String>,
    /// `[{"attribute", "old", "new"}]`, secrets and large values redacted.
    pub changes: Value,
    /// `success` or `failure`.
    pub outcome: String,
    pub status: u16,
    pub error: Option<String>,
    pub method: String,
    pub path: String,
    /// The change's id, which its events carry too (`EventStore::change_events`):
    /// how the activity page links a change to its events. None for
    /// failures and entries that made no events.
    pub change: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ActivityQuery {
    pub since: Option<String>,
    pub until: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// Case-insensitive text to find in name, id, error or changes.
    pub text: Option<String>,
    /// Entries with `id` below this (newest first paging).
    pub before_id: Option<i64>,
    pub limit: usize,
}

/// Reads counted per hour instead of logged one by one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadCount {
    pub hour: String,
    pub count: u64,
}

#[async_trait]
pub trait ActivityStore: Send + Sync {
    async fn record_activity(&self, event: ActivityEvent) -> StoreResult<()>;
    async fn list_activity(&self, tenant: TenantId, query: ActivityQuery) -> StoreResult<Vec<ActivityEvent>>;
    /// Adds `n` reads to the hour bucket `hour` (`YYYY-MM-DDTHH`).
    async fn count_reads(&self, tenant: TenantId, hour: &str, n: u64) -> StoreResult<()>;
    async fn read_counts(&self, tenant: TenantId, since_hour: &str) -> StoreResult<Vec<ReadCount>>;
    /// Deletes activity older than `before` in every tenant (retention runs
    /// across tenants by design); returns how many.
    async fn purge_activity(&self, before: &str) -> StoreResult<u64>;
}
