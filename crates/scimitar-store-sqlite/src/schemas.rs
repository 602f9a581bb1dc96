//! Tenants' custom schema extensions.

use async_trait::async_trait;
use rusqlite::params;
use scimitar_store::{ExtensionRecord, SchemaStore, StoreResult, TenantId};

use crate::{SqliteStore, exec, internal};

#[async_trait]
impl SchemaStore for SqliteStore {
    async fn put_extension(&self, tenant: TenantId, ext: ExtensionRecord) -> StoreResult<()> {
        self.write(move |tx| {
            let text = serde_json::to_string(&ext.schema).map_err(internal)?;
            exec(
                tx,
                "INSERT INTO extensions (tenant_id, urn, resource_type, required, schema) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (tenant_id, urn) DO UPDATE SET resource_type = excluded.resource_type, \
                 required = excluded.required, schema = excluded.schema",
                params![tenant, ext.urn, ext.resource_type, ext.required, text],
            )
            .map_err(internal)?;
            exec(
                tx,
                "UPDATE tenants SET schema_version = schema_version + 1 WHERE id = ?",
                [tenant],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn list_extensions(&self, tenant: TenantId) -> StoreResult<Vec<ExtensionRecord>> {
        self.read_now(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT resource_type, urn, schema, required FROM extensions WHERE tenant_id = ? ORDER BY urn",
                )
                .map_err(internal)?;
            let rows = stmt
                .query_map([tenant], |r| {
                    let text: String = r.get(2)?;
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        text,
                        r.get::<_, bool>(3)?,
                    ))
                })
                .map_err(internal)?;
            let mut out = Vec::new();
            for row in rows {
                let (resource_type, urn, text, required) = row.map_err(internal)?;
                let schema = serde_json::from_str(&text).map_err(internal)?;
                out.push(ExtensionRecord {
                    resource_type,
                    urn,
                    schema,
                    required,
                });
            }
            Ok(out)
        })
    }

    async fn delete_extension(&self, tenant: TenantId, urn: &str) -> StoreResult<bool> {
        let urn = urn.to_string();
        self.write(move |tx| {
            let n = tx
                .execute(
                    "DELETE FROM extensions WHERE tenant_id = ? AND urn = ?",
                    params![tenant, urn],
                )
                .map_err(internal)?;
            exec(
                tx,
                "UPDATE tenants SET schema_version = schema_version + 1 WHERE id = ?",
                [tenant],
            )
            .map_err(internal)?;
            Ok(n > 0)
        })
        .await
    }
}
