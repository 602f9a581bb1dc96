//! Secret Tokens (their keyed hashes) and who created them.

use async_trait::async_trait;
use scimitar_store::{NewEvent, NewTokenRecord, StoreResult, TenantId, TokenInfo, TokenStore, now_utc};
use tokio_postgres::IsolationLevel;
use tokio_postgres::Row;

use crate::{PostgresStore, db_error, in_tx, internal};

const TOKEN_COLS: &str = "t.id, t.tenant_id, n.name, t.label, t.hint, t.created, t.last_used, t.revoked, t.scope, n.schema_version, t.expires";

fn token_from_row(r: &Row) -> Result<TokenInfo, tokio_postgres::Error> {
    Ok(TokenInfo {
        id: r.try_get(0)?,
        tenant_id: r.try_get(1)?,
        tenant: r.try_get(2)?,
        label: r.try_get(3)?,
        hint: r.try_get(4)?,
        created: r.try_get(5)?,
        last_used: r.try_get(6)?,
        revoked: r.try_get(7)?,
        scope: r.try_get(8)?,
        schema_version: r.try_get(9)?,
        expires: r.try_get(10)?,
    })
}

#[async_trait]
impl TokenStore for PostgresStore {
    async fn create_token_with_events(
        &self,
        tenant: TenantId,
        t: NewTokenRecord,
        events: Vec<NewEvent>,
    ) -> StoreResult<TokenInfo> {
        let hash = t.hash.as_slice();
        let rows = crate::events::EventRows::new(events);
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            rows.insert(&tx, tenant).await?;
            crate::pg_execute(&tx, "INSERT INTO tokens (id, tenant_id, label, hint, hash, created, scope, expires) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[&t.id, &tenant, &t.label, &t.hint, &hash, &now_utc(), &t.scope, &t.expires],
            )
            .await?;
            let row = crate::pg_query_one(&tx, &format!("SELECT {TOKEN_COLS} FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.tenant_id = $1 AND t.id = $2"),
                    &[&tenant, &t.id],
                )
                .await?;
            token_from_row(&row)?
        })
    }

    async fn list_tokens(&self, tenant: TenantId) -> StoreResult<Vec<TokenInfo>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = crate::pg_query(&client, &format!("SELECT {TOKEN_COLS} FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.tenant_id = $1 ORDER BY t.created, t.id COLLATE \"C\""),
                &[&tenant],
            )
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(token_from_row)
            .collect::<Result<_, _>>()
            .map_err(db_error)
    }

    async fn revoke_token_with_events(&self, tenant: TenantId, id: &str, events: Vec<NewEvent>) -> StoreResult<bool> {
        let rows = crate::events::EventRows::new(events);
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let n = crate::pg_execute(
                &tx,
                "UPDATE tokens SET revoked = $1 WHERE tenant_id = $2 AND id = $3 AND revoked IS NULL",
                &[&now_utc(), &tenant, &id],
            )
            .await?;
            if n > 0 {
                rows.insert(&tx, tenant).await?;
            }
            n > 0
        })
    }

    async fn set_token_expiry(&self, tenant: TenantId, id: &str, expires: Option<&str>) -> StoreResult<bool> {
        let client = self.pool.get().await.map_err(internal)?;
        let n = crate::pg_execute(
            &client,
            "UPDATE tokens SET expires = $1 WHERE tenant_id = $2 AND id = $3",
            &[&expires, &tenant, &id],
        )
        .await
        .map_err(db_error)?;
        Ok(n > 0)
    }

    async fn touch_token(&self, tenant: TenantId, id: &str, now: &str) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        crate::pg_execute(
            &client,
            "UPDATE tokens SET last_used = $1 WHERE tenant_id = $2 AND id = $3",
            &[&now, &tenant, &id],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn find_token(&self, id: &str) -> StoreResult<Option<TokenInfo>> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = crate::pg_query_opt(
            &client,
            &format!("SELECT {TOKEN_COLS} FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.id = $1"),
            &[&id],
        )
        .await
        .map_err(db_error)?;
        row.as_ref().map(token_from_row).transpose().map_err(db_error)
    }

    async fn token_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<TokenInfo>> {
        let client = self.pool.get().await.map_err(internal)?;
        let stmt = client
            .prepare_cached(&format!("SELECT {TOKEN_COLS}, t.hash FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.hash = $1 AND t.revoked IS NULL AND (t.expires IS NULL OR t.expires > $2)"))
            .await
            .map_err(db_error)?;
        let Some(row) = client
            .query_opt(&stmt, &[&hash.as_slice(), &now_utc()])
            .await
            .map_err(db_error)?
        else {
            return Ok(None);
        };
        let info = token_from_row(&row).map_err(db_error)?;
        let stored: Vec<u8> = row.try_get(11).map_err(db_error)?;
        let Ok(stored) = <[u8; 32]>::try_from(stored) else {
            return Ok(None);
        };
        Ok(scimitar_auth::hashes_equal(&stored, hash).then_some(info))
    }

    async fn set_token_creator(&self, tenant: TenantId, token_id: &str, created_by: &str) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        crate::pg_execute(
            &client,
            "INSERT INTO console_token_creators (token_id, tenant_id, created_by) VALUES ($1, $2, $3) \
                 ON CONFLICT (token_id) DO UPDATE SET created_by = excluded.created_by",
            &[&token_id, &tenant, &created_by],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn token_creators(&self, tenant: TenantId) -> StoreResult<Vec<(String, String)>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = crate::pg_query(
            &client,
            "SELECT token_id, created_by FROM console_token_creators WHERE tenant_id = $1",
            &[&tenant],
        )
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(db_error)
    }
}
