//! Tenants' custom schema extensions.

use async_trait::async_trait;
use scimitar_store::{ExtensionRecord, SchemaStore, StoreResult, TenantId};
use tokio_postgres::IsolationLevel;

use crate::{PostgresStore, db_error, in_tx, internal};

#[async_trait]
impl SchemaStore for PostgresStore {
    async fn put_extension(&self, tenant: TenantId, ext: ExtensionRecord) -> StoreResult<()> {
        let text = serde_json::to_string(&ext.schema).map_err(internal)?;
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            crate::pg_execute(
                &tx,
                "INSERT INTO extensions (tenant_id, urn, resource_type, required, schema) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (tenant_id, urn) DO UPDATE SET resource_type = excluded.resource_type, \
                 required = excluded.required, schema = excluded.schema",
                &[&tenant, &ext.urn, &ext.resource_type, &ext.required, &text],
            )
            .await?;
            crate::pg_execute(
                &tx,
                "UPDATE tenants SET schema_version = schema_version + 1 WHERE id = $1",
                &[&tenant],
            )
            .await?;
        })
    }

    async fn list_extensions(&self, tenant: TenantId) -> StoreResult<Vec<ExtensionRecord>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = crate::pg_query(&client, "SELECT resource_type, urn, schema, required FROM extensions WHERE tenant_id = $1 ORDER BY urn COLLATE \"C\"", &[&tenant])
            .await
            .map_err(db_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let text: String = r.try_get(2).map_err(db_error)?;
            out.push(ExtensionRecord {
                resource_type: r.try_get(0).map_err(db_error)?,
                urn: r.try_get(1).map_err(db_error)?,
                schema: serde_json::from_str(&text).map_err(internal)?,
                required: r.try_get(3).map_err(db_error)?,
            });
        }
        Ok(out)
    }

    async fn delete_extension(&self, tenant: TenantId, urn: &str) -> StoreResult<bool> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let n = crate::pg_execute(
                &tx,
                "DELETE FROM extensions WHERE tenant_id = $1 AND urn = $2",
                &[&tenant, &urn],
            )
            .await?;
            crate::pg_execute(
                &tx,
                "UPDATE tenants SET schema_version = schema_version + 1 WHERE id = $1",
                &[&tenant],
            )
            .await?;
            n > 0
        })
    }
}
