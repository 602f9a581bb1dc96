//! The audit log of administrative actions: append and read, never edit.

use async_trait::async_trait;
use serde::Serialize;

use crate::{StoreResult, TenantId};

/// One administrative action (token generated or revoked, tenant created or
/// deleted, schema changed, console account created, sign-in and failure).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub time: String,
    /// `None` for actions across tenants (an operator's).
    #[serde(skip)]
    pub tenant_id: Option<TenantId>,
    /// Who: a console account's email, `cli`, or `token:<id>`.
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    /// Where from: `cli`, `console`, `admin-api`, and the client address.
    pub source: Option<String>,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_audit(&self, event: AuditEvent) -> StoreResult<()>;
    /// Newest first; `tenant: None` lists every tenant's and cross-tenant events.
    async fn list_audit(&self, tenant: Option<TenantId>, limit: usize) -> StoreResult<Vec<AuditEvent>>;
}
