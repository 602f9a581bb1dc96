//! Tenants.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use scimitar_store::{StoreError, StoreResult, Tenant, TenantStore, now_utc};

use crate::{SqliteStore, exec, internal, row};

#[async_trait]
impl TenantStore for SqliteStore {
    async fn create_tenant(&self, name: &str) -> StoreResult<Tenant> {
        let name = name.to_string();
        self.write(move |tx| {
            let now = now_utc();
            exec(
                tx,
                "INSERT INTO tenants (name, created) VALUES (?, ?)",
                params![name, now],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    StoreError::Conflict("name".into())
                }
                e => internal(e),
            })?;
            Ok(Tenant {
                id: tx.last_insert_rowid(),
                name,
                created: now,
                schema_version: 0,
            })
        })
        .await
    }

    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        self.read(|c| {
            let mut stmt = c
                .prepare("SELECT id, name, created, schema_version FROM tenants ORDER BY name")
                .map_err(internal)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(Tenant {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        created: r.get(2)?,
                        schema_version: r.get(3)?,
                    })
                })
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn tenant(&self, name: &str) -> StoreResult<Option<Tenant>> {
        let name = name.to_string();
        self.read(move |c| {
            row(
                c,
                "SELECT id, name, created, schema_version FROM tenants WHERE name = ?",
                [name],
                |r| {
                    Ok(Tenant {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        created: r.get(2)?,
                        schema_version: r.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(internal)
        })
        .await
    }

    async fn delete_tenant(&self, name: &str) -> StoreResult<bool> {
        let name = name.to_string();
        self.write(move |tx| {
            let id: Option<i64> = row(tx, "SELECT id FROM tenants WHERE name = ?", [&name], |r| r.get(0))
                .optional()
                .map_err(internal)?;
            let Some(id) = id else { return Ok(false) };
            exec(tx, "DELETE FROM members WHERE tenant_id = ?", [id]).map_err(internal)?;
            exec(tx, "DELETE FROM resources WHERE tenant_id = ?", [id]).map_err(internal)?;
            exec(tx, "DELETE FROM tokens WHERE tenant_id = ?", [id]).map_err(internal)?;
            exec(tx, "DELETE FROM engine_objects WHERE tenant_id = ?", [id]).map_err(internal)?;
            exec(tx, "DELETE FROM engine_log WHERE tenant_id = ?", [id]).map_err(internal)?;
            exec(tx, "DELETE FROM engine_jobs WHERE tenant_id = ?", [id]).map_err(internal)?;
            exec(tx, "DELETE FROM events WHERE tenant_id = ?", [id]).map_err(internal)?;
            exec(tx, "DELETE FROM event_counters WHERE tenant_id = ?", [id]).map_err(internal)?;
            tx.numbers.borrow_mut().forget(id);
            exec(tx, "DELETE FROM webhook_log WHERE tenant_id = ?", [id]).map_err(internal)?;
            exec(tx, "DELETE FROM webhook_failed WHERE tenant_id = ?", [id]).map_err(internal)?;
            exec(tx, "DELETE FROM webhook_endpoints WHERE tenant_id = ?", [id]).map_err(internal)?;
            exec(tx, "DELETE FROM tenants WHERE id = ?", [id]).map_err(internal)?;
            Ok(true)
        })
        .await
    }
}
