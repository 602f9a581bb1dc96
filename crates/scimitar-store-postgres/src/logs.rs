//! The provisioning activity log and the audit log.

use async_trait::async_trait;
use scimitar_store::{
    ActivityEvent, ActivityQuery, ActivityStore, AuditEvent, AuditStore, ReadCount, StoreResult, TenantId,
};
use tokio_postgres::IsolationLevel;

use serde_json::Value;
use tokio_postgres::Row;

use crate::{PostgresStore, db_error, in_tx, insert_activity, internal, sql};

#[async_trait]
impl ActivityStore for PostgresStore {
    async fn record_activity(&self, e: ActivityEvent) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        insert_activity(&client, &e).await.map_err(db_error)
    }

    async fn list_activity(&self, tenant: TenantId, q: ActivityQuery) -> StoreResult<Vec<ActivityEvent>> {
        let mut b = sql::Builder::default();
        let t = b.bind(tenant, "bigint");
        b.push(&format!(
            "SELECT id, tenant_id, time, token_id, token_label, action, resource_type, resource_id, name, changes, \
             outcome, status, error, method, path, change_id FROM activity WHERE tenant_id = {t}"
        ));
        for (col, cmp, v) in [
            ("time", ">=", q.since),
            ("time", "<", q.until),
            ("action", "=", q.action),
            ("outcome", "=", q.outcome),
        ] {
            if let Some(v) = v {
                let p = b.bind(v, "text");
                b.push(&format!(" AND {col} {cmp} {p}"));
            }
        }
        if let Some(v) = q.text {
            // strpos, not LIKE: `%` and `_` in the needle are literal.
            let n = b.bind(v, "text");
            b.push(&format!(
                " AND (strpos(lower(coalesce(name, '')), lower({n})) > 0 OR strpos(lower(coalesce(resource_id, '')), lower({n})) > 0 \
                 OR strpos(lower(coalesce(error, '')), lower({n})) > 0 OR strpos(lower(changes), lower({n})) > 0)"
            ));
        }
        if let Some(v) = q.before_id {
            let p = b.bind(v, "bigint");
            b.push(&format!(" AND id < {p}"));
        }
        let lim = b.bind(i64::try_from(q.limit.max(1)).unwrap_or(1000), "bigint");
        b.push(&format!(" ORDER BY id DESC LIMIT {lim}"));
        let client = self.pool.get().await.map_err(internal)?;
        let rows = client.query(&b.sql, &sql::refs(&b.params)).await.map_err(db_error)?;
        let event = |r: &Row| -> Result<ActivityEvent, tokio_postgres::Error> {
            let changes: String = r.try_get(9)?;
            let status: i32 = r.try_get(11)?;
            Ok(ActivityEvent {
                id: r.try_get(0)?,
                tenant_id: r.try_get(1)?,
                time: r.try_get(2)?,
                token_id: r.try_get(3)?,
                token_label: r.try_get(4)?,
                action: r.try_get(5)?,
                resource_type: r.try_get(6)?,
                resource_id: r.try_get(7)?,
                name: r.try_get(8)?,
                changes: serde_json::from_str(&changes).unwrap_or(Value::Null),
                outcome: r.try_get(10)?,
                status: u16::try_from(status).unwrap_or(0),
                error: r.try_get(12)?,
                method: r.try_get(13)?,
                path: r.try_get(14)?,
                change: r.try_get(15)?,
            })
        };
        rows.iter().map(event).collect::<Result<_, _>>().map_err(db_error)
    }

    async fn count_reads(&self, tenant: TenantId, hour: &str, n: u64) -> StoreResult<()> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            // An upsert adds atomically, whichever node counts.
            crate::pg_execute(
                &tx,
                "INSERT INTO read_counts (tenant_id, hour, count) VALUES ($1, $2, $3) \
                 ON CONFLICT (tenant_id, hour) DO UPDATE SET count = read_counts.count + excluded.count",
                &[&tenant, &hour, &n],
            )
            .await?;
        })
    }

    async fn read_counts(&self, tenant: TenantId, since_hour: &str) -> StoreResult<Vec<ReadCount>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = crate::pg_query(
            &client,
            "SELECT hour, count FROM read_counts WHERE tenant_id = $1 AND hour >= $2 ORDER BY hour COLLATE \"C\"",
            &[&tenant, &since_hour],
        )
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|r| {
                Ok(ReadCount {
                    hour: r.try_get(0)?,
                    count: u64::try_from(r.try_get::<_, i64>(1)?).unwrap_or(0),
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(db_error)
    }

    async fn purge_activity(&self, before: &str) -> StoreResult<u64> {
        let hour: String = before.chars().take(13).collect();
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let n = crate::pg_execute(&tx, "DELETE FROM activity WHERE time < $1", &[&before]).await?;
            crate::pg_execute(&tx, "DELETE FROM read_counts WHERE hour < $1", &[&hour]).await?;
            n
        })
    }
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn record_audit(&self, e: AuditEvent) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        crate::pg_execute(&client, "INSERT INTO audit (time, tenant_id, actor, action, target, detail, source) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[&e.time, &e.tenant_id, &e.actor, &e.action, &e.target, &e.detail, &e.source],
            )
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn list_audit(&self, tenant: Option<TenantId>, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        let client = self.pool.get().await.map_err(internal)?;
        let limit = i64::try_from(limit.clamp(1, 10_000)).unwrap_or(100);
        let cols = "SELECT id, time, tenant_id, actor, action, target, detail, source FROM audit";
        let rows = match tenant {
            Some(t) => crate::pg_query(
                &client,
                &format!("{cols} WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2"),
                &[&t, &limit],
            )
            .await
            .map_err(db_error)?,
            None => crate::pg_query(&client, &format!("{cols} ORDER BY id DESC LIMIT $1"), &[&limit])
                .await
                .map_err(db_error)?,
        };
        rows.iter()
            .map(|r| {
                Ok(AuditEvent {
                    id: r.try_get(0)?,
                    time: r.try_get(1)?,
                    tenant_id: r.try_get(2)?,
                    actor: r.try_get(3)?,
                    action: r.try_get(4)?,
                    target: r.try_get(5)?,
                    detail: r.try_get(6)?,
                    source: r.try_get(7)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(db_error)
    }
}
