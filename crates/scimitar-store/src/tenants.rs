//! Tenants: each has its own Tenant URL, data and tokens.

use async_trait::async_trait;
use serde::Serialize;

use crate::{StoreResult, TenantId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created: String,
    /// The tenant's schema-extension version (changes with every extension
    /// change), so that resource types can be cached safely.
    #[serde(skip)]
    pub schema_version: i64,
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    async fn create_tenant(&self, name: &str) -> StoreResult<Tenant>;
    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>>;
    async fn tenant(&self, name: &str) -> StoreResult<Option<Tenant>>;
    /// Deletes a tenant with all its data and tokens.
    async fn delete_tenant(&self, name: &str) -> StoreResult<bool>;
}
