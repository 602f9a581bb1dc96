//! [`WebhookStore`] on PostgreSQL (tables from `migrations/webhooks/`).

use async_trait::async_trait;
use scimitar_store::webhooks::{
    AttemptRecord, DeliveryRecord, FailedEvent, MAX_DELIVERY_LOG, NewWebhook, Webhook, WebhookState, WebhookStore,
};
use scimitar_store::{StoreError, StoreResult, TenantId, now_utc};
use tokio_postgres::{IsolationLevel, Row};

use crate::{PostgresStore, db_error, in_tx, internal, pg_query, pg_query_opt};

const COLS: &str = "e.tenant_id, e.id, e.url, e.types, e.enabled, e.secret, e.previous_secret, e.previous_until, \
     e.created, e.cursor, e.attempts, e.first_attempt, e.next_attempt, e.last_error, \
     (SELECT count(*) FROM webhook_failed f WHERE f.tenant_id = e.tenant_id AND f.endpoint_id = e.id)";

fn from_row(r: &Row) -> Result<Webhook, tokio_postgres::Error> {
    let types: String = r.try_get(3)?;
    Ok(Webhook {
        tenant_id: r.try_get(0)?,
        id: r.try_get(1)?,
        url: r.try_get(2)?,
        types: serde_json::from_str(&types).unwrap_or_default(),
        enabled: r.try_get(4)?,
        secret_sealed: r.try_get(5)?,
        previous_sealed: r.try_get(6)?,
        previous_until: r.try_get(7)?,
        created: r.try_get(8)?,
        state: WebhookState {
            cursor: r.try_get(9)?,
            attempts: r.try_get(10)?,
            first_attempt: r.try_get(11)?,
            next_attempt: r.try_get(12)?,
            last_error: r.try_get(13)?,
        },
        failed: r.try_get(14)?,
    })
}

fn log_from_row(r: &Row) -> Result<DeliveryRecord, tokio_postgres::Error> {
    Ok(DeliveryRecord {
        event_id: r.try_get(0)?,
        seq: r.try_get(1)?,
        event_type: r.try_get(2)?,
        status: r.try_get(3)?,
        attempts: r.try_get(4)?,
        latency_ms: r.try_get(5)?,
        response_code: r.try_get(6)?,
        error: r.try_get(7)?,
        time: r.try_get(8)?,
    })
}

async fn insert_log(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: TenantId,
    id: &str,
    l: &DeliveryRecord,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO webhook_log (tenant_id, endpoint_id, event_id, seq, event_type, status, attempts, latency_ms, \
         response_code, error, time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &tenant,
            &id,
            &l.event_id,
            &l.seq,
            &l.event_type,
            &l.status,
            &l.attempts,
            &l.latency_ms,
            &l.response_code,
            &l.error,
            &l.time,
        ],
    )
    .await?;
    Ok(())
}

/// Keeps the newest MAX_DELIVERY_LOG lines of the endpoint: once per
/// write, after its lines, not once per line.
async fn trim_log(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: TenantId,
    id: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "DELETE FROM webhook_log WHERE tenant_id = $1 AND endpoint_id = $2 AND id <= \
         (SELECT id FROM webhook_log WHERE tenant_id = $1 AND endpoint_id = $2 ORDER BY id DESC LIMIT 1 OFFSET $3)",
        &[&tenant, &id, &MAX_DELIVERY_LOG],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl WebhookStore for PostgresStore {
    async fn create_webhook(&self, tenant: TenantId, new: &NewWebhook) -> StoreResult<Webhook> {
        let types = serde_json::to_string(&new.types).map_err(internal)?;
        let now = now_utc();
        let inserted = in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            tx.execute(
                "INSERT INTO webhook_endpoints (tenant_id, id, url, types, enabled, secret, created) \
                 VALUES ($1, $2, $3, $4, TRUE, $5, $6) ON CONFLICT (tenant_id, id) DO NOTHING",
                &[&tenant, &new.id, &new.url, &types, &new.secret_sealed, &now],
            )
            .await?
        })?;
        if inserted == 0 {
            return Err(StoreError::Conflict("id".into()));
        }
        self.webhook(tenant, &new.id).await?.ok_or(StoreError::NotFound)
    }

    async fn webhook(&self, tenant: TenantId, id: &str) -> StoreResult<Option<Webhook>> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = pg_query_opt(
            &client,
            &format!("SELECT {COLS} FROM webhook_endpoints e WHERE e.tenant_id = $1 AND e.id = $2"),
            &[&tenant, &id],
        )
        .await
        .map_err(db_error)?;
        row.as_ref().map(from_row).transpose().map_err(db_error)
    }

    async fn webhooks(&self, tenant: TenantId) -> StoreResult<Vec<Webhook>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = pg_query(
            &client,
            &format!("SELECT {COLS} FROM webhook_endpoints e WHERE e.tenant_id = $1 ORDER BY e.created, e.id"),
            &[&tenant],
        )
        .await
        .map_err(db_error)?;
        rows.iter().map(from_row).collect::<Result<_, _>>().map_err(db_error)
    }

    async fn set_webhook_enabled(&self, tenant: TenantId, id: &str, enabled: bool) -> StoreResult<bool> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            tx.execute(
                "UPDATE webhook_endpoints SET enabled = $1 WHERE tenant_id = $2 AND id = $3",
                &[&enabled, &tenant, &id],
            )
            .await?
                > 0
        })
    }

    async fn delete_webhook(&self, tenant: TenantId, id: &str) -> StoreResult<bool> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let n = tx
                .execute(
                    "DELETE FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2",
                    &[&tenant, &id],
                )
                .await?;
            tx.execute(
                "DELETE FROM webhook_log WHERE tenant_id = $1 AND endpoint_id = $2",
                &[&tenant, &id],
            )
            .await?;
            tx.execute(
                "DELETE FROM webhook_failed WHERE tenant_id = $1 AND endpoint_id = $2",
                &[&tenant, &id],
            )
            .await?;
            n > 0
        })
    }

    async fn rotate_webhook_secret(
        &self,
        tenant: TenantId,
        id: &str,
        secret_sealed: &str,
        previous_until: &str,
    ) -> StoreResult<bool> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            tx.execute(
                "UPDATE webhook_endpoints SET previous_secret = secret, previous_until = $1, secret = $2 \
                 WHERE tenant_id = $3 AND id = $4",
                &[&previous_until, &secret_sealed, &tenant, &id],
            )
            .await?
                > 0
        })
    }

    async fn enabled_webhooks(&self) -> StoreResult<Vec<(TenantId, String)>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = pg_query(
            &client,
            "SELECT e.tenant_id, e.id FROM webhook_endpoints e WHERE e.enabled",
            &[],
        )
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(db_error)
    }

    async fn record_webhook_attempt(&self, tenant: TenantId, id: &str, rec: &AttemptRecord) -> StoreResult<bool> {
        let s = &rec.state;
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let n = tx
                .execute(
                    "UPDATE webhook_endpoints SET cursor = $1, attempts = $2, first_attempt = $3, next_attempt = $4, \
                     last_error = $5 WHERE tenant_id = $6 AND id = $7",
                    &[
                        &s.cursor,
                        &s.attempts,
                        &s.first_attempt,
                        &s.next_attempt,
                        &s.last_error,
                        &tenant,
                        &id,
                    ],
                )
                .await?;
            if n > 0 {
                for l in &rec.log {
                    insert_log(&tx, tenant, id, l).await?;
                }
                if !rec.log.is_empty() {
                    trim_log(&tx, tenant, id).await?;
                }
                if let Some(f) = &rec.failed {
                    tx.execute(
                        "INSERT INTO webhook_failed (tenant_id, endpoint_id, seq, event_id, event_type, body, \
                         failed_at, error, replay) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, FALSE) \
                         ON CONFLICT (tenant_id, endpoint_id, seq) DO NOTHING",
                        &[
                            &tenant,
                            &id,
                            &f.seq,
                            &f.event_id,
                            &f.event_type,
                            &f.body,
                            &f.failed_at,
                            &f.error,
                        ],
                    )
                    .await?;
                }
            }
            n > 0
        })
    }

    async fn webhook_log(&self, tenant: TenantId, id: &str, limit: i64) -> StoreResult<Vec<DeliveryRecord>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = pg_query(
            &client,
            "SELECT event_id, seq, event_type, status, attempts, latency_ms, response_code, error, time \
             FROM webhook_log WHERE tenant_id = $1 AND endpoint_id = $2 ORDER BY id DESC LIMIT $3",
            &[&tenant, &id, &limit],
        )
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(log_from_row)
            .collect::<Result<_, _>>()
            .map_err(db_error)
    }

    async fn failed_events(&self, tenant: TenantId, id: &str, limit: i64) -> StoreResult<Vec<FailedEvent>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = pg_query(
            &client,
            "SELECT seq, event_id, event_type, body, failed_at, error, replay FROM webhook_failed \
             WHERE tenant_id = $1 AND endpoint_id = $2 ORDER BY seq LIMIT $3",
            &[&tenant, &id, &limit],
        )
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|r| {
                Ok(FailedEvent {
                    seq: r.try_get(0)?,
                    event_id: r.try_get(1)?,
                    event_type: r.try_get(2)?,
                    body: r.try_get(3)?,
                    failed_at: r.try_get(4)?,
                    error: r.try_get(5)?,
                    replay: r.try_get(6)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(db_error)
    }

    async fn replay_failed(&self, tenant: TenantId, id: &str) -> StoreResult<u64> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            tx.execute(
                "UPDATE webhook_failed SET replay = TRUE WHERE tenant_id = $1 AND endpoint_id = $2",
                &[&tenant, &id],
            )
            .await?
        })
    }

    async fn finish_replay(
        &self,
        tenant: TenantId,
        id: &str,
        seq: i64,
        delivered: bool,
        log: &DeliveryRecord,
    ) -> StoreResult<()> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            if delivered {
                tx.execute(
                    "DELETE FROM webhook_failed WHERE tenant_id = $1 AND endpoint_id = $2 AND seq = $3",
                    &[&tenant, &id, &seq],
                )
                .await?;
            } else {
                tx.execute(
                    "UPDATE webhook_failed SET replay = FALSE, error = $1 \
                     WHERE tenant_id = $2 AND endpoint_id = $3 AND seq = $4",
                    &[&log.error, &tenant, &id, &seq],
                )
                .await?;
            }
            insert_log(&tx, tenant, id, log).await?;
            trim_log(&tx, tenant, id).await?;
        })
    }
}
