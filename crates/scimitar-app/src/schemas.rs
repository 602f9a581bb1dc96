//! A tenant's resource types (the built-in ones plus its schema
//! extensions), cached per schema version, and the registration of
//! extensions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use scimitar_protocol::ScimError;
use scimitar_protocol::schema::{ResourceType, Schema, parse_extension, resource_types_with};
use scimitar_store::{ExtensionRecord, Tenant, TenantId};
use serde_json::Value;

use crate::{Actor, App, scim_error};

/// A tenant's resource types.
pub type ResourceTypes = Arc<Vec<Arc<ResourceType>>>;

/// Most tenants whose resource types are cached; beyond it the cache starts
/// over (bounded memory with many tenants).
const MAX_CACHED_TENANTS: usize = 10_000;

/// Per-tenant resource types, valid for one schema version.
#[derive(Default)]
pub(crate) struct SchemaCache {
    entries: Mutex<HashMap<TenantId, (i64, ResourceTypes)>>,
}

impl SchemaCache {
    fn get(&self, tenant: TenantId, version: i64) -> Option<ResourceTypes> {
        let entries = self.entries.lock().ok()?;
        let (v, rts) = entries.get(&tenant)?;
        (*v == version).then(|| rts.clone())
    }
    fn put(&self, tenant: TenantId, version: i64, rts: ResourceTypes) {
        if let Ok(mut e) = self.entries.lock() {
            if e.len() >= MAX_CACHED_TENANTS {
                e.clear();
            }
            e.insert(tenant, (version, rts));
        }
    }
    fn invalidate(&self, tenant: TenantId) {
        if let Ok(mut e) = self.entries.lock() {
            e.remove(&tenant);
        }
    }
}

/// What a request to register an extension says.
#[derive(Debug, Clone)]
pub struct NewExtension {
    /// `User` or `Group` (any case).
    pub resource_type: String,
    pub required: bool,
    /// The schema in its `/Schemas` form.
    pub schema: Value,
}

impl NewExtension {
    /// From the admin API's body: `{"resourceType": "User", "required": false, "schema": {…}}`.
    pub fn from_json(body: &Value) -> Result<Self, ScimError> {
        Ok(NewExtension {
            resource_type: body
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or("User")
                .to_string(),
            required: body.get("required").and_then(Value::as_bool).unwrap_or(false),
            schema: body
                .get("schema")
                .cloned()
                .ok_or_else(|| ScimError::invalid_value("the body needs a 'schema' object"))?,
        })
    }
}

impl App {
    /// The tenant's resource types. Cached per tenant and schema version;
    /// the version is read with the tenant (or the token), so a change made
    /// anywhere (the CLI, another node) applies to the next request.
    pub async fn resource_types(&self, tenant: &Tenant) -> Result<ResourceTypes, ScimError> {
        if let Some(hit) = self.schemas.get(tenant.id, tenant.schema_version) {
            return Ok(hit);
        }
        let exts = self.store.list_extensions(tenant.id).await.map_err(scim_error)?;
        let rts = if exts.is_empty() {
            self.builtin.clone()
        } else {
            let mut parsed = Vec::with_capacity(exts.len());
            for e in exts {
                match parse_extension(&e.schema) {
                    Ok(s) => parsed.push((e.resource_type, s, e.required)),
                    Err(err) => {
                        tracing::error!(urn = %e.urn, error = %err, "stored extension schema is invalid; ignored")
                    }
                }
            }
            Arc::new(resource_types_with(&parsed).into_iter().map(Arc::new).collect())
        };
        self.schemas.put(tenant.id, tenant.schema_version, rts.clone());
        Ok(rts)
    }

    /// Validates and stores a schema extension of a tenant (replacing one
    /// with the same URN), and audits it.
    pub async fn register_extension(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        ext: NewExtension,
    ) -> Result<Schema, ScimError> {
        let rt = match ext.resource_type.to_ascii_lowercase().as_str() {
            "user" => "User",
            "group" => "Group",
            other => {
                return Err(ScimError::invalid_value(format!(
                    "resourceType must be User or Group, not '{other}'"
                )));
            }
        };
        let schema = parse_extension(&ext.schema)?;
        let stored = serde_json::to_value(&schema).map_err(|e| ScimError::internal(e.to_string()))?;
        self.store
            .put_extension(
                tenant.id,
                ExtensionRecord {
                    resource_type: rt.to_string(),
                    urn: schema.id.clone(),
                    schema: stored,
                    required: ext.required,
                },
            )
            .await
            .map_err(scim_error)?;
        self.schemas.invalidate(tenant.id);
        self.audit(actor, Some(tenant.id), "schema.added", Some(&schema.id))
            .await;
        Ok(schema)
    }

    /// Removes a tenant's extension; 404 if it has none with this URN.
    pub async fn remove_extension(&self, actor: &Actor, tenant: &Tenant, urn: &str) -> Result<(), ScimError> {
        let removed = self.store.delete_extension(tenant.id, urn).await.map_err(scim_error)?;
        self.schemas.invalidate(tenant.id);
        if !removed {
            return Err(ScimError::not_found(format!("tenant has no extension '{urn}'")));
        }
        self.audit(actor, Some(tenant.id), "schema.removed", Some(urn)).await;
        Ok(())
    }
}
