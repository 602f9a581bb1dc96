//! The provisioning engine's state: jobs, what each job knows of every
//! source object, and the provisioning log.
//!
//! Batches are sent as arrays, one parameter per column, and spread into
//! rows by `UNNEST`: a statement per thousand objects instead of a round
//! trip per object.

use std::collections::HashMap;

use async_trait::async_trait;
use scimitar_store::{
    EngineLogQuery, EngineLogRecord, EngineStore, JobRecord, ObjectKind, ObjectState, StoreError, StoreResult,
    TenantId, now_utc,
};
use serde_json::Value;
use tokio_postgres::{IsolationLevel, Row};

use crate::{PostgresStore, TxError, db_error, in_tx, internal, sql};

/// The status of a job just created: it runs once someone turns it on.
const NEW_JOB_STATUS: &str = "off";

/// Rows per statement when saving: large enough to amortise the round
/// trip, small enough to keep each message a few megabytes.
const CHUNK: usize = 1000;

const JOB_COLS: &str = "name, config, status, watermark, last_cycle, created, updated";
const OBJECT_COLS: &str =
    "kind, anchor, source_ref, source_hash, source, in_scope, target_id, exported, pending, updated, escrow";
const LOG_COLS: &str = "id, job, cycle_id, change_id, time, action, status, source_id, target_id, record";

fn job_from_row(r: &Row) -> Result<JobRecord, tokio_postgres::Error> {
    Ok(JobRecord {
        name: r.try_get(0)?,
        config: r.try_get(1)?,
        status: r.try_get(2)?,
        watermark: r.try_get(3)?,
        last_cycle: r.try_get(4)?,
        created: r.try_get(5)?,
        updated: r.try_get(6)?,
    })
}

fn object_from_row(r: &Row) -> StoreResult<ObjectState> {
    let kind: &str = r.try_get(0).map_err(db_error)?;
    let kind = match kind {
        "User" => ObjectKind::User,
        "Group" => ObjectKind::Group,
        other => return Err(StoreError::Internal(format!("unknown object kind {other:?}"))),
    };
    let get = || -> Result<ObjectState, tokio_postgres::Error> {
        Ok(ObjectState {
            kind,
            anchor: r.try_get(1)?,
            source_ref: r.try_get(2)?,
            source_hash: r.try_get(3)?,
            source: r.try_get(4)?,
            in_scope: r.try_get(5)?,
            target_id: r.try_get(6)?,
            exported: r.try_get(7)?,
            pending: r.try_get(8)?,
            updated: r.try_get(9)?,
            escrow: None,
        })
    };
    let mut state = get().map_err(db_error)?;
    let escrow: Option<Value> = r.try_get(10).map_err(db_error)?;
    state.escrow = escrow.map(serde_json::from_value).transpose().map_err(internal)?;
    Ok(state)
}

fn log_from_row(r: &Row) -> Result<EngineLogRecord, tokio_postgres::Error> {
    Ok(EngineLogRecord {
        id: r.try_get(0)?,
        job: r.try_get(1)?,
        cycle_id: r.try_get(2)?,
        change_id: r.try_get(3)?,
        time: r.try_get(4)?,
        action: r.try_get(5)?,
        status: r.try_get(6)?,
        source_id: r.try_get(7)?,
        target_id: r.try_get(8)?,
        record: r.try_get(9)?,
    })
}

/// The last state given for each kind and anchor, in the order given: an
/// upsert may not touch one row twice.
fn last_per_key(objects: &[ObjectState]) -> Vec<&ObjectState> {
    let mut at: HashMap<(ObjectKind, &str), usize> = HashMap::with_capacity(objects.len());
    let mut out: Vec<&ObjectState> = Vec::with_capacity(objects.len());
    for o in objects {
        match at.get(&(o.kind, o.anchor.as_str())).and_then(|&i| out.get_mut(i)) {
            Some(slot) => *slot = o,
            None => {
                at.insert((o.kind, o.anchor.as_str()), out.len());
                out.push(o);
            }
        }
    }
    out
}

impl PostgresStore {
    async fn objects_query(
        &self,
        sql: &str,
        p: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> StoreResult<Vec<ObjectState>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = client.query(sql, p).await.map_err(db_error)?;
        // Sorted by kind and anchor here, as on SQLite (bytewise).
        let mut v = rows.iter().map(object_from_row).collect::<StoreResult<Vec<_>>>()?;
        v.sort_by(|a, b| (a.kind, &a.anchor).cmp(&(b.kind, &b.anchor)));
        Ok(v)
    }
}

#[async_trait]
impl EngineStore for PostgresStore {
    async fn insert_job(&self, tenant: TenantId, name: &str, config: &Value) -> StoreResult<bool> {
        let now = now_utc();
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let n = tx
                .execute(
                    "INSERT INTO engine_jobs (tenant_id, name, config, status, created, updated) \
                     VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (tenant_id, name) DO NOTHING",
                    &[&tenant, &name, config, &NEW_JOB_STATUS, &now],
                )
                .await?;
            n == 1
        })
    }

    async fn put_job(&self, tenant: TenantId, name: &str, config: &Value) -> StoreResult<JobRecord> {
        let now = now_utc();
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let row = tx
                .query_one(
                    &format!(
                        "INSERT INTO engine_jobs (tenant_id, name, config, status, created, updated) \
                         VALUES ($1, $2, $3, $4, $5, $5) \
                         ON CONFLICT (tenant_id, name) DO UPDATE SET config = excluded.config, updated = excluded.updated \
                         RETURNING {JOB_COLS}"
                    ),
                    &[&tenant, &name, config, &NEW_JOB_STATUS, &now],
                )
                .await?;
            job_from_row(&row)?
        })
    }

    async fn job(&self, tenant: TenantId, name: &str) -> StoreResult<Option<JobRecord>> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = client
            .query_opt(
                &format!("SELECT {JOB_COLS} FROM engine_jobs WHERE tenant_id = $1 AND name = $2"),
                &[&tenant, &name],
            )
            .await
            .map_err(db_error)?;
        row.as_ref().map(job_from_row).transpose().map_err(db_error)
    }

    async fn list_jobs(&self, tenant: TenantId) -> StoreResult<Vec<JobRecord>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = client
            .query(
                &format!("SELECT {JOB_COLS} FROM engine_jobs WHERE tenant_id = $1 ORDER BY name COLLATE \"C\""),
                &[&tenant],
            )
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(job_from_row)
            .collect::<Result<_, _>>()
            .map_err(db_error)
    }

    async fn active_jobs(&self) -> StoreResult<Vec<(TenantId, String, JobRecord)>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = client
            .query(
                "SELECT j.name, j.config, j.status, j.watermark, j.last_cycle, j.created, j.updated, j.tenant_id, t.name \
                 FROM engine_jobs j JOIN tenants t ON t.id = j.tenant_id \
                 WHERE j.status IN ('on', 'quarantined') ORDER BY j.tenant_id, j.name",
                &[],
            )
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|r| Ok((r.try_get(7)?, r.try_get(8)?, job_from_row(r)?)))
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(db_error)
    }

    async fn delete_job(&self, tenant: TenantId, name: &str) -> StoreResult<bool> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            // The job's row first: a concurrent `save_objects` holds it
            // shared until it commits, so its rows are there to delete
            // (or it finds the job gone).
            let n = tx
                .execute(
                    "DELETE FROM engine_jobs WHERE tenant_id = $1 AND name = $2",
                    &[&tenant, &name],
                )
                .await?;
            tx.execute(
                "DELETE FROM engine_objects WHERE tenant_id = $1 AND job = $2",
                &[&tenant, &name],
            )
            .await?;
            tx.execute(
                "DELETE FROM engine_log WHERE tenant_id = $1 AND job = $2",
                &[&tenant, &name],
            )
            .await?;
            n > 0
        })
    }

    async fn set_job_status(&self, tenant: TenantId, name: &str, status: &str) -> StoreResult<bool> {
        let now = now_utc();
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let n = tx
                .execute(
                    "UPDATE engine_jobs SET status = $1, updated = $2 WHERE tenant_id = $3 AND name = $4",
                    &[&status, &now, &tenant, &name],
                )
                .await?;
            n > 0
        })
    }

    async fn finish_cycle(
        &self,
        tenant: TenantId,
        name: &str,
        watermark: Option<&Value>,
        summary: &Value,
    ) -> StoreResult<()> {
        let now = now_utc();
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let n = tx
                .execute(
                    "UPDATE engine_jobs SET watermark = $1, last_cycle = $2, updated = $3 WHERE tenant_id = $4 AND name = $5",
                    &[&watermark, summary, &now, &tenant, &name],
                )
                .await?;
            if n == 0 {
                return Err(TxError::Store(StoreError::NotFound));
            }
        })
    }

    async fn set_last_cycle(&self, tenant: TenantId, name: &str, summary: &Value) -> StoreResult<bool> {
        let now = now_utc();
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let n = tx
                .execute(
                    "UPDATE engine_jobs SET last_cycle = $1, updated = $2 WHERE tenant_id = $3 AND name = $4",
                    &[summary, &now, &tenant, &name],
                )
                .await?;
            n > 0
        })
    }

    async fn restart_job(&self, tenant: TenantId, name: &str, reset_anchors: bool) -> StoreResult<bool> {
        let now = now_utc();
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let n = tx
                .execute(
                    "UPDATE engine_jobs SET watermark = NULL, updated = $1 WHERE tenant_id = $2 AND name = $3",
                    &[&now, &tenant, &name],
                )
                .await?;
            if n > 0 && reset_anchors {
                tx.execute(
                    "UPDATE engine_objects SET target_id = NULL, exported = 'null'::jsonb WHERE tenant_id = $1 AND job = $2",
                    &[&tenant, &name],
                )
                .await?;
            }
            if n > 0 {
                tx.execute(
                    "UPDATE engine_objects SET escrow = NULL WHERE tenant_id = $1 AND job = $2 AND escrow IS NOT NULL",
                    &[&tenant, &name],
                )
                .await?;
            }
            n > 0
        })
    }

    async fn set_job_progress(&self, tenant: TenantId, name: &str, progress: Option<&Value>) -> StoreResult<bool> {
        // One statement, outside the write transactions of the cycle: it is
        // advisory, and must not wait behind them.
        let client = self.pool.get().await.map_err(internal)?;
        let n = client
            .execute(
                "UPDATE engine_jobs SET progress = $1 WHERE tenant_id = $2 AND name = $3",
                &[&progress, &tenant, &name],
            )
            .await
            .map_err(db_error)?;
        Ok(n > 0)
    }

    async fn job_progress(&self, tenant: TenantId, name: &str) -> StoreResult<Option<Value>> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = client
            .query_opt(
                "SELECT progress FROM engine_jobs WHERE tenant_id = $1 AND name = $2",
                &[&tenant, &name],
            )
            .await
            .map_err(db_error)?;
        Ok(row.and_then(|r| r.get::<_, Option<Value>>(0)))
    }

    async fn drop_escrow(&self, tenant: TenantId, job: &str) -> StoreResult<u64> {
        let client = self.pool.get().await.map_err(internal)?;
        client
            .execute(
                "UPDATE engine_objects SET escrow = NULL, pending = false \
                 WHERE tenant_id = $1 AND job = $2 AND escrow IS NOT NULL",
                &[&tenant, &job],
            )
            .await
            .map_err(db_error)
    }

    async fn escrow_counts(&self, tenant: TenantId, job: &str) -> StoreResult<(u64, u64)> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE NOT coalesce((escrow->>'reference')::bool, false)), \
                 count(*) FILTER (WHERE coalesce((escrow->>'reference')::bool, false)) \
                 FROM engine_objects WHERE tenant_id = $1 AND job = $2 AND pending AND escrow IS NOT NULL",
                &[&tenant, &job],
            )
            .await
            .map_err(db_error)?;
        let (f, r): (i64, i64) = (row.get(0), row.get(1));
        Ok((u64::try_from(f).unwrap_or(0), u64::try_from(r).unwrap_or(0)))
    }

    async fn objects(&self, tenant: TenantId, job: &str, kind: ObjectKind) -> StoreResult<Vec<ObjectState>> {
        self.objects_query(
            &format!("SELECT {OBJECT_COLS} FROM engine_objects WHERE tenant_id = $1 AND job = $2 AND kind = $3"),
            &[&tenant, &job, &kind.as_str()],
        )
        .await
    }

    async fn objects_by_anchor(
        &self,
        tenant: TenantId,
        job: &str,
        kind: ObjectKind,
        anchors: &[String],
    ) -> StoreResult<Vec<ObjectState>> {
        if anchors.is_empty() {
            return Ok(Vec::new());
        }
        // One array parameter, whatever the number of keys.
        self.objects_query(
            &format!(
                "SELECT {OBJECT_COLS} FROM engine_objects WHERE tenant_id = $1 AND job = $2 AND kind = $3 \
                 AND anchor = ANY($4::text[])"
            ),
            &[&tenant, &job, &kind.as_str(), &anchors],
        )
        .await
    }

    async fn objects_by_source_ref(
        &self,
        tenant: TenantId,
        job: &str,
        refs: &[String],
    ) -> StoreResult<Vec<ObjectState>> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        self.objects_query(
            &format!(
                "SELECT {OBJECT_COLS} FROM engine_objects WHERE tenant_id = $1 AND job = $2 \
                 AND source_ref = ANY($3::text[])"
            ),
            &[&tenant, &job, &refs],
        )
        .await
    }

    async fn pending_objects(&self, tenant: TenantId, job: &str) -> StoreResult<Vec<ObjectState>> {
        self.objects_query(
            &format!("SELECT {OBJECT_COLS} FROM engine_objects WHERE tenant_id = $1 AND job = $2 AND pending"),
            &[&tenant, &job],
        )
        .await
    }

    async fn save_objects(
        &self,
        tenant: TenantId,
        job: &str,
        objects: Vec<ObjectState>,
        removed: Vec<(ObjectKind, String)>,
        log: Vec<EngineLogRecord>,
    ) -> StoreResult<()> {
        let objects = last_per_key(&objects);
        let removed_kinds: Vec<&str> = removed.iter().map(|(k, _)| k.as_str()).collect();
        let removed_anchors: Vec<&str> = removed.iter().map(|(_, a)| a.as_str()).collect();
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            // Shared: saves of one job run side by side, a `delete_job`
            // waits for them.
            let known = tx
                .query_opt(
                    "SELECT 1 FROM engine_jobs WHERE tenant_id = $1 AND name = $2 FOR SHARE",
                    &[&tenant, &job],
                )
                .await?;
            if known.is_none() {
                return Err(TxError::Store(StoreError::NotFound));
            }
            let upsert = tx
                .prepare_cached(
                    "INSERT INTO engine_objects (tenant_id, job, kind, anchor, source_ref, source_hash, source, in_scope, \
                     target_id, exported, pending, updated, escrow) \
                     SELECT $1, $2, u.* FROM UNNEST($3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[], \
                     $8::bool[], $9::text[], $10::jsonb[], $11::bool[], $12::text[], $13::jsonb[]) AS u \
                     ON CONFLICT (tenant_id, job, kind, anchor) DO UPDATE SET source_ref = excluded.source_ref, \
                     source_hash = excluded.source_hash, source = excluded.source, in_scope = excluded.in_scope, \
                     target_id = excluded.target_id, exported = excluded.exported, pending = excluded.pending, \
                     updated = excluded.updated, escrow = excluded.escrow",
                )
                .await?;
            for chunk in objects.chunks(CHUNK) {
                let kinds: Vec<&str> = chunk.iter().map(|o| o.kind.as_str()).collect();
                let anchors: Vec<&str> = chunk.iter().map(|o| o.anchor.as_str()).collect();
                let refs: Vec<Option<&str>> = chunk.iter().map(|o| o.source_ref.as_deref()).collect();
                let hashes: Vec<&str> = chunk.iter().map(|o| o.source_hash.as_str()).collect();
                let sources: Vec<&Value> = chunk.iter().map(|o| &o.source).collect();
                let in_scope: Vec<bool> = chunk.iter().map(|o| o.in_scope).collect();
                let targets: Vec<Option<&str>> = chunk.iter().map(|o| o.target_id.as_deref()).collect();
                let exported: Vec<&Value> = chunk.iter().map(|o| &o.exported).collect();
                let pending: Vec<bool> = chunk.iter().map(|o| o.pending).collect();
                let updated: Vec<&str> = chunk.iter().map(|o| o.updated.as_str()).collect();
                let escrow: Vec<Option<Value>> = chunk
                    .iter()
                    .map(|o| o.escrow.as_ref().and_then(|e| serde_json::to_value(e).ok()))
                    .collect();
                tx.execute(
                    &upsert,
                    &[
                        &tenant, &job, &kinds, &anchors, &refs, &hashes, &sources, &in_scope, &targets, &exported,
                        &pending, &updated, &escrow,
                    ],
                )
                .await?;
            }
            if !removed.is_empty() {
                tx.execute(
                    "DELETE FROM engine_objects WHERE tenant_id = $1 AND job = $2 \
                     AND (kind, anchor) IN (SELECT k, a FROM UNNEST($3::text[], $4::text[]) AS u (k, a))",
                    &[&tenant, &job, &removed_kinds, &removed_anchors],
                )
                .await?;
            }
            // In the order given (WITH ORDINALITY), so ids follow it. The
            // records are the job's whatever their `job` says.
            let insert = tx
                .prepare_cached(
                    "INSERT INTO engine_log (tenant_id, job, cycle_id, change_id, time, action, status, source_id, \
                     target_id, record) \
                     SELECT $1, $2, u.c, u.ch, u.t, u.a, u.s, u.src, u.tgt, u.r FROM UNNEST($3::text[], $4::text[], \
                     $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::jsonb[]) \
                     WITH ORDINALITY AS u (c, ch, t, a, s, src, tgt, r, n) ORDER BY u.n",
                )
                .await?;
            for chunk in log.chunks(CHUNK) {
                let cycles: Vec<&str> = chunk.iter().map(|l| l.cycle_id.as_str()).collect();
                let changes: Vec<&str> = chunk.iter().map(|l| l.change_id.as_str()).collect();
                let times: Vec<&str> = chunk.iter().map(|l| l.time.as_str()).collect();
                let actions: Vec<&str> = chunk.iter().map(|l| l.action.as_str()).collect();
                let statuses: Vec<&str> = chunk.iter().map(|l| l.status.as_str()).collect();
                let sources: Vec<Option<&str>> = chunk.iter().map(|l| l.source_id.as_deref()).collect();
                let targets: Vec<Option<&str>> = chunk.iter().map(|l| l.target_id.as_deref()).collect();
                let records: Vec<&Value> = chunk.iter().map(|l| &l.record).collect();
                tx.execute(
                    &insert,
                    &[
                        &tenant, &job, &cycles, &changes, &times, &actions, &statuses, &sources, &targets, &records,
                    ],
                )
                .await?;
            }
        })
    }

    async fn engine_log(&self, tenant: TenantId, job: &str, q: EngineLogQuery) -> StoreResult<Vec<EngineLogRecord>> {
        let mut b = sql::Builder::default();
        let t = b.bind(tenant, "bigint");
        let j = b.bind(job.to_string(), "text");
        b.push(&format!(
            "SELECT {LOG_COLS} FROM engine_log WHERE tenant_id = {t} AND job = {j}"
        ));
        for (col, v) in [("cycle_id", q.cycle_id), ("status", q.status), ("action", q.action)] {
            if let Some(v) = v {
                let p = b.bind(v, "text");
                b.push(&format!(" AND {col} = {p}"));
            }
        }
        if let Some(v) = q.before_id {
            let p = b.bind(v, "bigint");
            b.push(&format!(" AND id < {p}"));
        }
        let lim = b.bind(i64::try_from(q.limit.max(1)).unwrap_or(i64::MAX), "bigint");
        b.push(&format!(" ORDER BY id DESC LIMIT {lim}"));
        let client = self.pool.get().await.map_err(internal)?;
        let rows = client.query(&b.sql, &sql::refs(&b.params)).await.map_err(db_error)?;
        rows.iter()
            .map(log_from_row)
            .collect::<Result<_, _>>()
            .map_err(db_error)
    }

    async fn purge_engine_log(&self, before: &str) -> StoreResult<u64> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            tx.execute("DELETE FROM engine_log WHERE time < $1", &[&before]).await?
        })
    }
}
