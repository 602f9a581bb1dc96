//! Secret Tokens (their keyed hashes) and who created them.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};
use scimitar_store::{NewEvent, NewTokenRecord, StoreResult, TenantId, TokenInfo, TokenStore, now_utc};

use crate::{SqliteStore, exec, internal, row};

fn token_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenInfo> {
    Ok(TokenInfo {
        id: r.get(0)?,
        tenant_id: r.get(1)?,
        tenant: r.get(2)?,
        label: r.get(3)?,
        hint: r.get(4)?,
        created: r.get(5)?,
        last_used: r.get(6)?,
        revoked: r.get(7)?,
        scope: r.get(8)?,
        schema_version: r.get(9)?,
        expires: r.get(10)?,
    })
}

const TOKEN_COLS: &str = "t.id, t.tenant_id, n.name, t.label, t.hint, t.created, t.last_used, t.revoked, t.scope, n.schema_version, t.expires";

#[async_trait]
impl TokenStore for SqliteStore {
    async fn create_token_with_events(
        &self,
        tenant: TenantId,
        t: NewTokenRecord,
        events: Vec<NewEvent>,
    ) -> StoreResult<TokenInfo> {
        self.write(move |tx| {
            crate::events::insert_events(tx, tenant, events)?;
            let now = now_utc();
            exec(
                tx,
                "INSERT INTO tokens (id, tenant_id, label, hint, hash, created, scope, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                params![t.id, tenant, t.label, t.hint, t.hash.to_vec(), now, t.scope, t.expires],
            )
            .map_err(internal)?;
            row(
                tx,
                &format!("SELECT {TOKEN_COLS} FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.tenant_id = ? AND t.id = ?"),
                params![tenant, t.id],
                token_from_row,
            )
            .map_err(internal)
        })
        .await
    }

    async fn list_tokens(&self, tenant: TenantId) -> StoreResult<Vec<TokenInfo>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare(&format!("SELECT {TOKEN_COLS} FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.tenant_id = ? ORDER BY t.created, t.id"))
                .map_err(internal)?;
            let rows = stmt.query_map([tenant], token_from_row).map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn revoke_token_with_events(&self, tenant: TenantId, id: &str, events: Vec<NewEvent>) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |tx| {
            let n = exec(
                tx,
                "UPDATE tokens SET revoked = ? WHERE tenant_id = ? AND id = ? AND revoked IS NULL",
                params![now_utc(), tenant, id],
            )
            .map_err(internal)?;
            if n > 0 {
                crate::events::insert_events(tx, tenant, events)?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn set_token_expiry(&self, tenant: TenantId, id: &str, expires: Option<&str>) -> StoreResult<bool> {
        let (id, expires) = (id.to_string(), expires.map(str::to_string));
        self.write(move |tx| {
            let n = exec(
                tx,
                "UPDATE tokens SET expires = ? WHERE tenant_id = ? AND id = ?",
                params![expires, tenant, id],
            )
            .map_err(internal)?;
            Ok(n > 0)
        })
        .await
    }

    async fn touch_token(&self, tenant: TenantId, id: &str, now: &str) -> StoreResult<()> {
        let (id, now) = (id.to_string(), now.to_string());
        self.write(move |tx| {
            exec(
                tx,
                "UPDATE tokens SET last_used = ? WHERE tenant_id = ? AND id = ?",
                params![now, tenant, id],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn find_token(&self, id: &str) -> StoreResult<Option<TokenInfo>> {
        let id = id.to_string();
        self.read(move |c| {
            row(
                c,
                &format!("SELECT {TOKEN_COLS} FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.id = ?"),
                [&id],
                token_from_row,
            )
            .optional()
            .map_err(internal)
        })
        .await
    }

    async fn token_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<TokenInfo>> {
        let hash = hash.to_vec();
        self.read_now(|c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {TOKEN_COLS}, t.hash FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.hash = ? AND t.revoked IS NULL AND (t.expires IS NULL OR t.expires > ?)"
                ))
                .map_err(internal)?;
            let row = stmt
                .query_row(params![&hash, now_utc()], |r| Ok((token_from_row(r)?, r.get::<_, Vec<u8>>(11)?)))
                .optional()
                .map_err(internal)?;
            Ok(row.and_then(|(info, stored)| {
                let stored: [u8; 32] = stored.try_into().ok()?;
                let given: [u8; 32] = hash.clone().try_into().ok()?;
                scimitar_auth::hashes_equal(&stored, &given).then_some(info)
            }))
        })
    }

    async fn set_token_creator(&self, tenant: TenantId, token_id: &str, created_by: &str) -> StoreResult<()> {
        let (id, by) = (token_id.to_string(), created_by.to_string());
        self.write(move |tx| {
            exec(
                tx,
                "INSERT OR REPLACE INTO console_token_creators (token_id, tenant_id, created_by) VALUES (?, ?, ?)",
                params![id, tenant, by],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn token_creators(&self, tenant: TenantId) -> StoreResult<Vec<(String, String)>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare("SELECT token_id, created_by FROM console_token_creators WHERE tenant_id = ?")
                .map_err(internal)?;
            let rows = stmt
                .query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }
}
