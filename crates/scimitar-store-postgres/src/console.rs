//! [`ConsoleStore`] on PostgreSQL (tables from `0003_console.sql`).

use async_trait::async_trait;
use scimitar_store::{ConsoleAdmin, ConsoleSession, ConsoleStore, StoreError, StoreResult, TenantId, now_utc};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use crate::{PostgresStore, db_error, internal};

const ADMIN_COLS: &str = "a.id, a.tenant_id, n.name, a.email, a.role, a.password_hash, a.created";
const ADMIN_FROM: &str = "FROM console_admins a LEFT JOIN tenants n ON n.id = a.tenant_id";

fn admin_from_row(r: &Row) -> Result<ConsoleAdmin, tokio_postgres::Error> {
    Ok(ConsoleAdmin {
        id: r.try_get(0)?,
        tenant_id: r.try_get(1)?,
        tenant: r.try_get(2)?,
        email: r.try_get(3)?,
        role: r.try_get(4)?,
        password_hash: r.try_get(5)?,
        created: r.try_get(6)?,
    })
}

/// Constant-time equality of two hashes.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[async_trait]
impl ConsoleStore for PostgresStore {
    async fn create_admin(
        &self,
        tenant: Option<TenantId>,
        email: &str,
        role: &str,
        password_hash: &str,
    ) -> StoreResult<ConsoleAdmin> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = crate::pg_query_one(
            &client,
            "INSERT INTO console_admins (tenant_id, email, email_ci, role, password_hash, created) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &tenant,
                &email,
                &email.to_lowercase(),
                &role,
                &password_hash,
                &now_utc(),
            ],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                StoreError::Conflict("email".into())
            } else {
                db_error(e)
            }
        })?;
        let id: i64 = row.try_get(0).map_err(db_error)?;
        let row = crate::pg_query_one(
            &client,
            &format!("SELECT {ADMIN_COLS} {ADMIN_FROM} WHERE a.id = $1"),
            &[&id],
        )
        .await
        .map_err(db_error)?;
        admin_from_row(&row).map_err(db_error)
    }

    async fn admin_by_email(&self, email: &str) -> StoreResult<Option<ConsoleAdmin>> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = crate::pg_query_opt(
            &client,
            &format!("SELECT {ADMIN_COLS} {ADMIN_FROM} WHERE a.email_ci = $1"),
            &[&email.to_lowercase()],
        )
        .await
        .map_err(db_error)?;
        row.map(|r| admin_from_row(&r)).transpose().map_err(db_error)
    }

    async fn list_admins(&self, tenant: Option<TenantId>) -> StoreResult<Vec<ConsoleAdmin>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = crate::pg_query(
            &client,
            &format!("SELECT {ADMIN_COLS} {ADMIN_FROM} WHERE a.tenant_id IS NOT DISTINCT FROM $1 ORDER BY a.email_ci"),
            &[&tenant],
        )
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(admin_from_row)
            .collect::<Result<_, _>>()
            .map_err(db_error)
    }

    async fn count_admins(&self) -> StoreResult<u64> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = crate::pg_query_one(&client, "SELECT count(*) FROM console_admins", &[])
            .await
            .map_err(db_error)?;
        Ok(u64::try_from(row.try_get::<_, i64>(0).map_err(db_error)?).unwrap_or(0))
    }

    async fn set_admin_password(&self, id: i64, password_hash: &str) -> StoreResult<bool> {
        let mut client = self.pool.get().await.map_err(internal)?;
        let tx = client.transaction().await.map_err(db_error)?;
        let n = crate::pg_execute(
            &tx,
            "UPDATE console_admins SET password_hash = $1 WHERE id = $2",
            &[&password_hash, &id],
        )
        .await
        .map_err(db_error)?;
        // A new password ends every session of the account.
        crate::pg_execute(&tx, "DELETE FROM console_sessions WHERE admin_id = $1", &[&id])
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(n > 0)
    }

    async fn create_session(&self, hash: &[u8; 32], admin: i64, csrf: &str, now: &str) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        crate::pg_execute(
            &client,
            "INSERT INTO console_sessions (hash, admin_id, csrf, created, last_seen) VALUES ($1, $2, $3, $4, $4)",
            &[&hash.as_slice(), &admin, &csrf, &now],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn session(&self, hash: &[u8; 32]) -> StoreResult<Option<ConsoleSession>> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = crate::pg_query_opt(
            &client,
            &format!(
                "SELECT {ADMIN_COLS}, s.csrf, s.created, s.last_seen {ADMIN_FROM} \
                     JOIN console_sessions s ON s.admin_id = a.id WHERE s.hash = $1"
            ),
            &[&hash.as_slice()],
        )
        .await
        .map_err(db_error)?;
        row.map(|r| {
            Ok(ConsoleSession {
                admin: admin_from_row(&r)?,
                csrf: r.try_get(7)?,
                created: r.try_get(8)?,
                last_seen: r.try_get(9)?,
            })
        })
        .transpose()
        .map_err(db_error)
    }

    async fn touch_session(&self, hash: &[u8; 32], now: &str) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        crate::pg_execute(
            &client,
            "UPDATE console_sessions SET last_seen = $1 WHERE hash = $2",
            &[&now, &hash.as_slice()],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn delete_session(&self, hash: &[u8; 32]) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        crate::pg_execute(
            &client,
            "DELETE FROM console_sessions WHERE hash = $1",
            &[&hash.as_slice()],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn purge_sessions(&self, idle_before: &str, created_before: &str) -> StoreResult<u64> {
        let client = self.pool.get().await.map_err(internal)?;
        crate::pg_execute(
            &client,
            "DELETE FROM console_sessions WHERE last_seen < $1 OR created < $2",
            &[&idle_before, &created_before],
        )
        .await
        .map_err(db_error)
    }

    async fn put_setup_code(&self, hash: &[u8; 32], expires: &str) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        crate::pg_execute(
            &client,
            "INSERT INTO console_setup (id, hash, expires) VALUES (1, $1, $2) \
                 ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, expires = excluded.expires",
            &[&hash.as_slice(), &expires],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn take_setup_code(&self, hash: &[u8; 32], now: &str) -> StoreResult<bool> {
        let mut client = self.pool.get().await.map_err(internal)?;
        let tx = client.transaction().await.map_err(db_error)?;
        let row = crate::pg_query_opt(
            &tx,
            "SELECT hash, expires FROM console_setup WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await
        .map_err(db_error)?;
        let Some(row) = row else { return Ok(false) };
        let stored: Vec<u8> = row.try_get(0).map_err(db_error)?;
        let expires: String = row.try_get(1).map_err(db_error)?;
        if expires.as_str() < now || !same(&stored, hash) {
            return Ok(false);
        }
        crate::pg_execute(&tx, "DELETE FROM console_setup WHERE id = 1", &[])
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    async fn put_invite(&self, tenant: TenantId, hash: &[u8; 32], expires: &str) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        let now = scimitar_store::now_utc();
        // Expired invites go as new ones come.
        crate::pg_execute(
            &client,
            "DELETE FROM console_invites WHERE tenant_id = $1 AND expires < $2",
            &[&tenant, &now],
        )
        .await
        .map_err(db_error)?;
        crate::pg_execute(
            &client,
            "INSERT INTO console_invites (hash, tenant_id, expires, created) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (hash) DO UPDATE SET tenant_id = excluded.tenant_id, expires = excluded.expires",
            &[&hash.as_slice(), &tenant, &expires, &now],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn invite(&self, hash: &[u8; 32], now: &str) -> StoreResult<Option<(TenantId, String)>> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = crate::pg_query_opt(
            &client,
            "SELECT tenant_id, expires FROM console_invites WHERE hash = $1 AND expires >= $2",
            &[&hash.as_slice(), &now],
        )
        .await
        .map_err(db_error)?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
            .map_err(db_error)
    }

    async fn take_invite(&self, hash: &[u8; 32], now: &str) -> StoreResult<Option<(TenantId, String)>> {
        let client = self.pool.get().await.map_err(internal)?;
        // One statement: of two uses at once, one deletes the row.
        let row = crate::pg_query_opt(
            &client,
            "DELETE FROM console_invites WHERE hash = $1 AND expires >= $2 RETURNING tenant_id, expires",
            &[&hash.as_slice(), &now],
        )
        .await
        .map_err(db_error)?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .transpose()
            .map_err(db_error)
    }
}
