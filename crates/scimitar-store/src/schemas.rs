//! Tenants' custom schema extensions.

use async_trait::async_trait;
use serde_json::Value;

use crate::{StoreResult, TenantId};

/// A tenant's custom schema extension, as registered.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionRecord {
    /// `User` or `Group`.
    pub resource_type: String,
    pub urn: String,
    /// The schema definition in its `/Schemas` form.
    pub schema: Value,
    pub required: bool,
}

#[async_trait]
pub trait SchemaStore: Send + Sync {
    /// Adds or replaces an extension; bumps the tenant's schema version.
    async fn put_extension(&self, tenant: TenantId, ext: ExtensionRecord) -> StoreResult<()>;
    async fn list_extensions(&self, tenant: TenantId) -> StoreResult<Vec<ExtensionRecord>>;
    async fn delete_extension(&self, tenant: TenantId, urn: &str) -> StoreResult<bool>;
}
