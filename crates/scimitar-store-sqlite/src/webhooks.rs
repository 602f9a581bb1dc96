//! [`WebhookStore`] on SQLite (tables from `migrations/webhooks/`).

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use scimitar_store::webhooks::{
    AttemptRecord, DeliveryRecord, FailedEvent, MAX_DELIVERY_LOG, NewWebhook, Webhook, WebhookState, WebhookStore,
};
use scimitar_store::{StoreError, StoreResult, TenantId, now_utc};

use crate::{SqliteStore, exec, internal};

const COLS: &str = "e.tenant_id, e.id, e.url, e.types, e.enabled, e.secret, e.previous_secret, e.previous_until, \
     e.created, e.cursor, e.attempts, e.first_attempt, e.next_attempt, e.last_error, \
     (SELECT count(*) FROM webhook_failed f WHERE f.tenant_id = e.tenant_id AND f.endpoint_id = e.id)";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Webhook> {
    let types: String = r.get(3)?;
    Ok(Webhook {
        tenant_id: r.get(0)?,
        id: r.get(1)?,
        url: r.get(2)?,
        types: serde_json::from_str(&types).unwrap_or_default(),
        enabled: r.get(4)?,
        secret_sealed: r.get(5)?,
        previous_sealed: r.get(6)?,
        previous_until: r.get(7)?,
        created: r.get(8)?,
        state: WebhookState {
            cursor: r.get(9)?,
            attempts: r.get(10)?,
            first_attempt: r.get(11)?,
            next_attempt: r.get(12)?,
            last_error: r.get(13)?,
        },
        failed: r.get(14)?,
    })
}

fn one(c: &Connection, tenant: TenantId, id: &str) -> StoreResult<Option<Webhook>> {
    c.prepare_cached(&format!(
        "SELECT {COLS} FROM webhook_endpoints e WHERE e.tenant_id = ? AND e.id = ?"
    ))
    .map_err(internal)?
    .query_row(params![tenant, id], from_row)
    .optional()
    .map_err(internal)
}

fn insert_log(c: &Connection, tenant: TenantId, id: &str, l: &DeliveryRecord) -> rusqlite::Result<()> {
    exec(
        c,
        "INSERT INTO webhook_log (tenant_id, endpoint_id, event_id, seq, event_type, status, attempts, latency_ms, \
         response_code, error, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            tenant,
            id,
            l.event_id,
            l.seq,
            l.event_type,
            l.status,
            l.attempts,
            l.latency_ms,
            l.response_code,
            l.error,
            l.time
        ],
    )?;
    Ok(())
}

/// Keeps the newest MAX_DELIVERY_LOG lines of the endpoint: once per
/// write, after its lines (the subquery steps over that many index
/// entries: per line, it was most of a batched delivery write).
fn trim_log(c: &Connection, tenant: TenantId, id: &str) -> rusqlite::Result<()> {
    exec(
        c,
        "DELETE FROM webhook_log WHERE tenant_id = ?1 AND endpoint_id = ?2 AND id <= \
         (SELECT id FROM webhook_log WHERE tenant_id = ?1 AND endpoint_id = ?2 ORDER BY id DESC LIMIT 1 OFFSET ?3)",
        params![tenant, id, MAX_DELIVERY_LOG],
    )?;
    Ok(())
}

fn log_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRecord> {
    Ok(DeliveryRecord {
        event_id: r.get(0)?,
        seq: r.get(1)?,
        event_type: r.get(2)?,
        status: r.get(3)?,
        attempts: r.get(4)?,
        latency_ms: r.get(5)?,
        response_code: r.get(6)?,
        error: r.get(7)?,
        time: r.get(8)?,
    })
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook(&self, tenant: TenantId, new: &NewWebhook) -> StoreResult<Webhook> {
        let new = new.clone();
        let types = serde_json::to_string(&new.types).map_err(internal)?;
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO webhook_endpoints (tenant_id, id, url, types, enabled, secret, created) \
                 VALUES (?, ?, ?, ?, 1, ?, ?)",
                params![tenant, new.id, new.url, types, new.secret_sealed, now_utc()],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    StoreError::Conflict("id".into())
                }
                e => internal(e),
            })?;
            one(tx, tenant, &new.id)?.ok_or(StoreError::NotFound)
        })
        .await
    }

    async fn webhook(&self, tenant: TenantId, id: &str) -> StoreResult<Option<Webhook>> {
        let id = id.to_string();
        self.read(move |c| one(c, tenant, &id)).await
    }

    async fn webhooks(&self, tenant: TenantId) -> StoreResult<Vec<Webhook>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {COLS} FROM webhook_endpoints e WHERE e.tenant_id = ? ORDER BY e.created, e.id"
                ))
                .map_err(internal)?;
            let rows = stmt.query_map([tenant], from_row).map_err(internal)?;
            rows.collect::<Result<_, _>>().map_err(internal)
        })
        .await
    }

    async fn set_webhook_enabled(&self, tenant: TenantId, id: &str, enabled: bool) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |tx| {
            let n = exec(
                tx,
                "UPDATE webhook_endpoints SET enabled = ? WHERE tenant_id = ? AND id = ?",
                params![enabled, tenant, id],
            )
            .map_err(internal)?;
            Ok(n > 0)
        })
        .await
    }

    async fn delete_webhook(&self, tenant: TenantId, id: &str) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |tx| {
            let n = exec(
                tx,
                "DELETE FROM webhook_endpoints WHERE tenant_id = ? AND id = ?",
                params![tenant, id],
            )
            .map_err(internal)?;
            exec(
                tx,
                "DELETE FROM webhook_log WHERE tenant_id = ? AND endpoint_id = ?",
                params![tenant, id],
            )
            .map_err(internal)?;
            exec(
                tx,
                "DELETE FROM webhook_failed WHERE tenant_id = ? AND endpoint_id = ?",
                params![tenant, id],
            )
            .map_err(internal)?;
            Ok(n > 0)
        })
        .await
    }

    async fn rotate_webhook_secret(
        &self,
        tenant: TenantId,
        id: &str,
        secret_sealed: &str,
        previous_until: &str,
    ) -> StoreResult<bool> {
        let (id, secret, until) = (id.to_string(), secret_sealed.to_string(), previous_until.to_string());
        self.write(move |tx| {
            let n = exec(
                tx,
                "UPDATE webhook_endpoints SET previous_secret = secret, previous_until = ?, secret = ? \
                 WHERE tenant_id = ? AND id = ?",
                params![until, secret, tenant, id],
            )
            .map_err(internal)?;
            Ok(n > 0)
        })
        .await
    }

    async fn enabled_webhooks(&self) -> StoreResult<Vec<(TenantId, String)>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT e.tenant_id, e.id FROM webhook_endpoints e WHERE e.enabled = 1")
                .map_err(internal)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(internal)?;
            rows.collect::<Result<_, _>>().map_err(internal)
        })
        .await
    }

    async fn record_webhook_attempt(&self, tenant: TenantId, id: &str, rec: &AttemptRecord) -> StoreResult<bool> {
        let (id, rec) = (id.to_string(), rec.clone());
        self.write(move |tx| {
            let s = &rec.state;
            let n = exec(
                tx,
                "UPDATE webhook_endpoints SET cursor = ?, attempts = ?, first_attempt = ?, next_attempt = ?, \
                 last_error = ? WHERE tenant_id = ? AND id = ?",
                params![
                    s.cursor,
                    s.attempts,
                    s.first_attempt,
                    s.next_attempt,
                    s.last_error,
                    tenant,
                    id
                ],
            )
            .map_err(internal)?;
            if n == 0 {
                return Ok(false);
            }
            for l in &rec.log {
                insert_log(tx, tenant, &id, l).map_err(internal)?;
            }
            if !rec.log.is_empty() {
                trim_log(tx, tenant, &id).map_err(internal)?;
            }
            if let Some(f) = &rec.failed {
                exec(
                    tx,
                    "INSERT INTO webhook_failed (tenant_id, endpoint_id, seq, event_id, event_type, body, failed_at, \
                     error, replay) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0) \
                     ON CONFLICT (tenant_id, endpoint_id, seq) DO NOTHING",
                    params![
                        tenant,
                        id,
                        f.seq,
                        f.event_id,
                        f.event_type,
                        f.body,
                        f.failed_at,
                        f.error
                    ],
                )
                .map_err(internal)?;
            }
            Ok(true)
        })
        .await
    }

    async fn webhook_log(&self, tenant: TenantId, id: &str, limit: i64) -> StoreResult<Vec<DeliveryRecord>> {
        let id = id.to_string();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT event_id, seq, event_type, status, attempts, latency_ms, response_code, error, time \
                     FROM webhook_log WHERE tenant_id = ? AND endpoint_id = ? ORDER BY id DESC LIMIT ?",
                )
                .map_err(internal)?;
            let rows = stmt
                .query_map(params![tenant, id, limit], log_from_row)
                .map_err(internal)?;
            rows.collect::<Result<_, _>>().map_err(internal)
        })
        .await
    }

    async fn failed_events(&self, tenant: TenantId, id: &str, limit: i64) -> StoreResult<Vec<FailedEvent>> {
        let id = id.to_string();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT seq, event_id, event_type, body, failed_at, error, replay FROM webhook_failed \
                     WHERE tenant_id = ? AND endpoint_id = ? ORDER BY seq LIMIT ?",
                )
                .map_err(internal)?;
            let rows = stmt
                .query_map(params![tenant, id, limit], |r| {
                    Ok(FailedEvent {
                        seq: r.get(0)?,
                        event_id: r.get(1)?,
                        event_type: r.get(2)?,
                        body: r.get(3)?,
                        failed_at: r.get(4)?,
                        error: r.get(5)?,
                        replay: r.get(6)?,
                    })
                })
                .map_err(internal)?;
            rows.collect::<Result<_, _>>().map_err(internal)
        })
        .await
    }

    async fn replay_failed(&self, tenant: TenantId, id: &str) -> StoreResult<u64> {
        let id = id.to_string();
        self.write(move |tx| {
            let n = exec(
                tx,
                "UPDATE webhook_failed SET replay = 1 WHERE tenant_id = ? AND endpoint_id = ?",
                params![tenant, id],
            )
            .map_err(internal)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn finish_replay(
        &self,
        tenant: TenantId,
        id: &str,
        seq: i64,
        delivered: bool,
        log: &DeliveryRecord,
    ) -> StoreResult<()> {
        let (id, log) = (id.to_string(), log.clone());
        self.write(move |tx| {
            if delivered {
                exec(
                    tx,
                    "DELETE FROM webhook_failed WHERE tenant_id = ? AND endpoint_id = ? AND seq = ?",
                    params![tenant, id, seq],
                )
                .map_err(internal)?;
            } else {
                exec(
                    tx,
                    "UPDATE webhook_failed SET replay = 0, error = ? WHERE tenant_id = ? AND endpoint_id = ? AND seq = ?",
                    params![log.error, tenant, id, seq],
                )
                .map_err(internal)?;
            }
            insert_log(tx, tenant, &id, &log).map_err(internal)?;
            trim_log(tx, tenant, &id).map_err(internal)
        })
        .await
    }
}
