//! Tenants.

use async_trait::async_trait;
use scimitar_store::{StoreResult, Tenant, TenantStore, now_utc};
use tokio_postgres::IsolationLevel;
use tokio_postgres::Row;

use crate::{PostgresStore, db_error, in_tx, internal};

fn tenant_from_row(r: &Row) -> Result<Tenant, tokio_postgres::Error> {
    Ok(Tenant {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        created: r.try_get(2)?,
        schema_version: r.try_get(3)?,
    })
}

#[async_trait]
impl TenantStore for PostgresStore {
    async fn create_tenant(&self, name: &str) -> StoreResult<Tenant> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let row = crate::pg_query_one(
                &tx,
                "INSERT INTO tenants (name, created) VALUES ($1, $2) RETURNING id, name, created, schema_version",
                &[&name, &now_utc()],
            )
            .await?;
            tenant_from_row(&row)?
        })
    }

    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = crate::pg_query(
            &client,
            "SELECT id, name, created, schema_version FROM tenants ORDER BY name COLLATE \"C\"",
            &[],
        )
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(tenant_from_row)
            .collect::<Result<_, _>>()
            .map_err(db_error)
    }

    async fn tenant(&self, name: &str) -> StoreResult<Option<Tenant>> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = crate::pg_query_opt(
            &client,
            "SELECT id, name, created, schema_version FROM tenants WHERE name = $1",
            &[&name],
        )
        .await
        .map_err(db_error)?;
        row.as_ref().map(tenant_from_row).transpose().map_err(db_error)
    }

    async fn delete_tenant(&self, name: &str) -> StoreResult<bool> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let row = crate::pg_query_opt(&tx, "SELECT id FROM tenants WHERE name = $1 FOR UPDATE", &[&name]).await?;
            match row {
                None => false,
                Some(row) => {
                    let id: i64 = row.try_get(0)?;
                    crate::pg_execute(&tx, "DELETE FROM members WHERE tenant_id = $1", &[&id]).await?;
                    crate::pg_execute(&tx, "DELETE FROM resources WHERE tenant_id = $1", &[&id]).await?;
                    crate::pg_execute(&tx, "DELETE FROM tokens WHERE tenant_id = $1", &[&id]).await?;
                    crate::pg_execute(&tx, "DELETE FROM engine_objects WHERE tenant_id = $1", &[&id]).await?;
                    crate::pg_execute(&tx, "DELETE FROM engine_log WHERE tenant_id = $1", &[&id]).await?;
                    crate::pg_execute(&tx, "DELETE FROM engine_jobs WHERE tenant_id = $1", &[&id]).await?;
                    crate::pg_execute(&tx, "DELETE FROM events WHERE tenant_id = $1", &[&id]).await?;
                    crate::pg_execute(&tx, "DELETE FROM event_counters WHERE tenant_id = $1", &[&id]).await?;
                    crate::pg_execute(&tx, "DELETE FROM webhook_log WHERE tenant_id = $1", &[&id]).await?;
                    crate::pg_execute(&tx, "DELETE FROM webhook_failed WHERE tenant_id = $1", &[&id]).await?;
                    crate::pg_execute(&tx, "DELETE FROM webhook_endpoints WHERE tenant_id = $1", &[&id]).await?;
                    crate::pg_execute(&tx, "DELETE FROM tenants WHERE id = $1", &[&id]).await?;
                    true
                }
            }
        })
    }
}
