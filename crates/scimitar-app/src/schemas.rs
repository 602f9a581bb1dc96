//! A tenant's resource types (the built-in ones plus its schema
//! extensions), cached per schema version, and the registration of
//! extensions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use scimitar_protocol::ScimError;
use scimitar_protocol::schema::{Kind, ResourceType, Schema, Uniqueness, parse_extension, resource_types_with};
use scimitar_protocol::unique::{has_unique_attributes, stored_unique_values};
use scimitar_store::{CursorPos, ExtensionRecord, ListQuery, Tenant, TenantId};
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
        // Values kept unique under the extension's previous definition no
        // longer are; those of the new one are entered now.
        self.store
            .drop_unique_values(tenant.id, &schema.id)
            .await
            .map_err(scim_error)?;
        let kind = if rt == "User" { Kind::User } else { Kind::Group };
        let unique = schema.attributes.iter().any(|a| {
            a.uniqueness != Uniqueness::None || a.sub_attributes.iter().any(|s| s.uniqueness != Uniqueness::None)
        });
        if unique {
            self.store
                .set_unique_backfill(tenant.id, kind, true)
                .await
                .map_err(scim_error)?;
            let fresh = self.tenant(&tenant.name).await?;
            self.build_unique_index(&fresh, kind).await?;
        }
        self.audit(actor, Some(tenant.id), "schema.added", Some(&schema.id))
            .await;
        Ok(schema)
    }

    /// Enters the unique values of the tenant's resources of `kind` in the
    /// store's unique index (resources written before their attribute was
    /// unique), then clears the mark; returns how many values were already
    /// another resource's. Such duplicates are left as they are, never an
    /// error: the first resource keeps the value, the others keep theirs
    /// until they change it. Time grows with the number of resources.
    async fn build_unique_index(&self, tenant: &Tenant, kind: Kind) -> Result<u64, ScimError> {
        const PAGE: usize = 500;
        let rts = self.resource_types(tenant).await?;
        let mut duplicates = 0;
        if let Some(rt) = rts.iter().find(|r| Kind::of(r) == Some(kind))
            && has_unique_attributes(rt)
        {
            let mut after = 0;
            loop {
                let query = ListQuery {
                    kind,
                    rt: rt.clone(),
                    filter: None,
                    sort: None,
                    start_index: 1,
                    count: PAGE,
                    cursor: Some(CursorPos::After(after)),
                };
                let page = self.store.list(tenant.id, query).await.map_err(scim_error)?;
                for rec in &page.records {
                    after = rec.seq;
                    let values = stored_unique_values(rt, &rec.doc);
                    if values.is_empty() {
                        continue;
                    }
                    let held = self
                        .store
                        .claim_unique(tenant.id, kind, &rec.id, values)
                        .await
                        .map_err(scim_error)?;
                    for v in held {
                        duplicates += 1;
                        tracing::warn!(tenant = %tenant.name, resource = %rec.id, attribute = %v.attribute,
                            "a value that must be unique was another resource's already; both keep it");
                    }
                }
                if !page.has_more || page.records.is_empty() {
                    break;
                }
            }
        }
        self.store
            .set_unique_backfill(tenant.id, kind, false)
            .await
            .map_err(scim_error)?;
        Ok(duplicates)
    }

    /// Builds the unique indexes still to build (after the upgrade that
    /// brought them, or a registration that did not finish); returns how
    /// many duplicates were found. Run by `scimitar migrate` and at `serve`
    /// start-up; a no-op once done.
    pub async fn build_unique_indexes(&self) -> Result<u64, ScimError> {
        let pending = self.store.unique_backfills().await.map_err(scim_error)?;
        if pending.is_empty() {
            return Ok(0);
        }
        let tenants = self.store.list_tenants().await.map_err(scim_error)?;
        let mut duplicates = 0;
        for (id, kind) in pending {
            match tenants.iter().find(|t| t.id == id) {
                Some(t) => duplicates += self.build_unique_index(t, kind).await?,
                None => self
                    .store
                    .set_unique_backfill(id, kind, false)
                    .await
                    .map_err(scim_error)?,
            }
        }
        Ok(duplicates)
    }

    /// Removes a tenant's extension; 404 if it has none with this URN.
    pub async fn remove_extension(&self, actor: &Actor, tenant: &Tenant, urn: &str) -> Result<(), ScimError> {
        let removed = self.store.delete_extension(tenant.id, urn).await.map_err(scim_error)?;
        self.schemas.invalidate(tenant.id);
        if !removed {
            return Err(ScimError::not_found(format!("tenant has no extension '{urn}'")));
        }
        self.store
            .drop_unique_values(tenant.id, urn)
            .await
            .map_err(scim_error)?;
        self.audit(actor, Some(tenant.id), "schema.removed", Some(urn)).await;
        Ok(())
    }
}
