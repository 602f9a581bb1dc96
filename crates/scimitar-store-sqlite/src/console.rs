//! [`ConsoleStore`] on SQLite (tables from `0003_console.sql`).

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use scimitar_store::{ConsoleAdmin, ConsoleSession, ConsoleStore, StoreError, StoreResult, TenantId, now_utc};

use crate::{SqliteStore, exec, internal, row};

const ADMIN_COLS: &str = "a.id, a.tenant_id, n.name, a.email, a.role, a.password_hash, a.created";
const ADMIN_FROM: &str = "FROM console_admins a LEFT JOIN tenants n ON n.id = a.tenant_id";

fn admin_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConsoleAdmin> {
    Ok(ConsoleAdmin {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        tenant: r.get(2)?,
        email: r.get(3)?,
        role: r.get(4)?,
        password_hash: r.get(5)?,
        created: r.get(6)?,
    })
}

#[async_trait]
impl ConsoleStore for SqliteStore {
    async fn create_admin(
        &self,
        tenant: Option<TenantId>,
        email: &str,
        role: &str,
        password_hash: &str,
    ) -> StoreResult<ConsoleAdmin> {
        let (email, role, hash) = (email.to_string(), role.to_string(), password_hash.to_string());
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO console_admins (tenant_id, email, email_ci, role, password_hash, created) \
                 VALUES (?, ?, ?, ?, ?, ?)",
                params![tenant, email, email.to_lowercase(), role, hash, now_utc()],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    StoreError::Conflict("email".into())
                }
                e => internal(e),
            })?;
            let id = tx.last_insert_rowid();
            row(
                tx,
                &format!("SELECT {ADMIN_COLS} {ADMIN_FROM} WHERE a.id = ?"),
                [id],
                admin_from_row,
            )
            .map_err(internal)
        })
        .await
    }

    async fn admin_by_email(&self, email: &str) -> StoreResult<Option<ConsoleAdmin>> {
        let email = email.to_lowercase();
        self.read(move |c| {
            row(
                c,
                &format!("SELECT {ADMIN_COLS} {ADMIN_FROM} WHERE a.email_ci = ?"),
                [email],
                admin_from_row,
            )
            .optional()
            .map_err(internal)
        })
        .await
    }

    async fn list_admins(&self, tenant: Option<TenantId>) -> StoreResult<Vec<ConsoleAdmin>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare(&format!(
                    "SELECT {ADMIN_COLS} {ADMIN_FROM} WHERE a.tenant_id IS ? ORDER BY a.email_ci"
                ))
                .map_err(internal)?;
            let rows = stmt.query_map([tenant], admin_from_row).map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn count_admins(&self) -> StoreResult<u64> {
        self.read(|c| {
            let n: i64 = row(c, "SELECT count(*) FROM console_admins", [], |r| r.get(0)).map_err(internal)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn set_admin_password(&self, id: i64, password_hash: &str) -> StoreResult<bool> {
        let hash = password_hash.to_string();
        self.write(move |tx| {
            let n = tx
                .execute(
                    "UPDATE console_admins SET password_hash = ? WHERE id = ?",
                    params![hash, id],
                )
                .map_err(internal)?;
            // A new password ends every session of the account.
            exec(tx, "DELETE FROM console_sessions WHERE admin_id = ?", [id]).map_err(internal)?;
            Ok(n > 0)
        })
        .await
    }

    async fn create_session(&self, hash: &[u8; 32], admin: i64, csrf: &str, now: &str) -> StoreResult<()> {
        let (hash, csrf, now) = (hash.to_vec(), csrf.to_string(), now.to_string());
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO console_sessions (hash, admin_id, csrf, created, last_seen) VALUES (?, ?, ?, ?, ?)",
                params![hash, admin, csrf, now, now],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn session(&self, hash: &[u8; 32]) -> StoreResult<Option<ConsoleSession>> {
        let hash = hash.to_vec();
        self.read(move |c| {
            row(
                c,
                &format!(
                    "SELECT {ADMIN_COLS}, s.csrf, s.created, s.last_seen {ADMIN_FROM} \
                     JOIN console_sessions s ON s.admin_id = a.id WHERE s.hash = ?"
                ),
                [hash],
                |r| {
                    Ok(ConsoleSession {
                        admin: admin_from_row(r)?,
                        csrf: r.get(7)?,
                        created: r.get(8)?,
                        last_seen: r.get(9)?,
                    })
                },
            )
            .optional()
            .map_err(internal)
        })
        .await
    }

    async fn touch_session(&self, hash: &[u8; 32], now: &str) -> StoreResult<()> {
        let (hash, now) = (hash.to_vec(), now.to_string());
        self.write(move |tx| {
            exec(
                tx,
                "UPDATE console_sessions SET last_seen = ? WHERE hash = ?",
                params![now, hash],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn delete_session(&self, hash: &[u8; 32]) -> StoreResult<()> {
        let hash = hash.to_vec();
        self.write(move |tx| {
            exec(tx, "DELETE FROM console_sessions WHERE hash = ?", [hash]).map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn purge_sessions(&self, idle_before: &str, created_before: &str) -> StoreResult<u64> {
        let (a, b) = (idle_before.to_string(), created_before.to_string());
        self.write(move |tx| {
            let n = tx
                .execute(
                    "DELETE FROM console_sessions WHERE last_seen < ? OR created < ?",
                    params![a, b],
                )
                .map_err(internal)?;
            Ok(n as u64)
        })
        .await
    }

    async fn put_setup_code(&self, hash: &[u8; 32], expires: &str) -> StoreResult<()> {
        let (hash, expires) = (hash.to_vec(), expires.to_string());
        self.write(move |tx| {
            exec(
                tx,
                "INSERT OR REPLACE INTO console_setup (id, hash, expires) VALUES (1, ?, ?)",
                params![hash, expires],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn take_setup_code(&self, hash: &[u8; 32], now: &str) -> StoreResult<bool> {
        let (hash, now) = (hash.to_vec(), now.to_string());
        self.write(move |tx| {
            let stored: Option<(Vec<u8>, String)> =
                row(tx, "SELECT hash, expires FROM console_setup WHERE id = 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
                .map_err(internal)?;
            let Some((stored, expires)) = stored else {
                return Ok(false);
            };
            if expires < now || !same(&stored, &hash) {
                return Ok(false);
            }
            exec(tx, "DELETE FROM console_setup WHERE id = 1", []).map_err(internal)?;
            Ok(true)
        })
        .await
    }

    async fn put_invite(&self, tenant: TenantId, hash: &[u8; 32], expires: &str) -> StoreResult<()> {
        let (hash, expires) = (hash.to_vec(), expires.to_string());
        self.write(move |tx| {
            // Expired invites go as new ones come.
            exec(
                tx,
                "DELETE FROM console_invites WHERE tenant_id = ? AND expires < ?",
                params![tenant, now_utc()],
            )
            .map_err(internal)?;
            exec(
                tx,
                "INSERT OR REPLACE INTO console_invites (hash, tenant_id, expires, created) VALUES (?, ?, ?, ?)",
                params![hash, tenant, expires, now_utc()],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn invite(&self, hash: &[u8; 32], now: &str) -> StoreResult<Option<(TenantId, String)>> {
        let (hash, now) = (hash.to_vec(), now.to_string());
        self.read(move |c| {
            row(
                c,
                "SELECT tenant_id, expires FROM console_invites WHERE hash = ? AND expires >= ?",
                params![hash, now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(internal)
        })
        .await
    }

    async fn take_invite(&self, hash: &[u8; 32], now: &str) -> StoreResult<Option<(TenantId, String)>> {
        let (hash, now) = (hash.to_vec(), now.to_string());
        self.write(move |tx| {
            let found: Option<(TenantId, String)> = row(
                tx,
                "SELECT tenant_id, expires FROM console_invites WHERE hash = ? AND expires >= ?",
                params![hash, now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(internal)?;
            if found.is_some() {
                exec(tx, "DELETE FROM console_invites WHERE hash = ?", params![hash]).map_err(internal)?;
            }
            Ok(found)
        })
        .await
    }
}

/// Constant-time equality of two hashes.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
