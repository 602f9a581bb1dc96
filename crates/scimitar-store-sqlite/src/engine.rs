//! The provisioning engine's state: jobs, what each job knows of every
//! source object, and the provisioning log.
//!
//! JSON is serialised on the caller's thread and handed to the writer as
//! text, and parsed on the readers' threads: the writer only binds.

use async_trait::async_trait;
use rusqlite::types::{Type, Value as Sql};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use scimitar_store::{
    EngineLogQuery, EngineLogRecord, EngineStore, JobRecord, ObjectKind, ObjectState, StoreError, StoreResult,
    TenantId, now_utc,
};
use serde_json::Value;

use crate::{SqliteStore, exec, internal, row};

/// The status of a job just created: it runs once someone turns it on.
const NEW_JOB_STATUS: &str = "off";

const JOB_COLS: &str = "name, config, status, watermark, last_cycle, created, updated";
const OBJECT_COLS: &str =
    "kind, anchor, source_ref, source_hash, source, in_scope, target_id, exported, pending, updated, escrow";
const LOG_COLS: &str = "id, job, cycle_id, change_id, time, action, status, source_id, target_id, record";

fn to_json(v: &Value) -> StoreResult<String> {
    serde_json::to_string(v).map_err(internal)
}

/// A JSON column, parsed without copying its text.
fn json_col(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Value> {
    let conv =
        |e: Box<dyn std::error::Error + Send + Sync>| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, e);
    let text = r.get_ref(i)?.as_str().map_err(|e| conv(Box::new(e)))?;
    serde_json::from_str(text).map_err(|e| conv(Box::new(e)))
}

fn json_col_opt(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<Value>> {
    match r.get_ref(i)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        _ => json_col(r, i).map(Some),
    }
}

fn job_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRecord> {
    Ok(JobRecord {
        name: r.get(0)?,
        config: json_col(r, 1)?,
        status: r.get(2)?,
        watermark: json_col_opt(r, 3)?,
        last_cycle: json_col_opt(r, 4)?,
        created: r.get(5)?,
        updated: r.get(6)?,
    })
}

fn kind_from_str(i: usize, s: &str) -> rusqlite::Result<ObjectKind> {
    match s {
        "User" => Ok(ObjectKind::User),
        "Group" => Ok(ObjectKind::Group),
        other => Err(rusqlite::Error::FromSqlConversionFailure(
            i,
            Type::Text,
            format!("unknown object kind {other:?}").into(),
        )),
    }
}

fn object_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ObjectState> {
    Ok(ObjectState {
        kind: kind_from_str(0, r.get_ref(0)?.as_str()?)?,
        anchor: r.get(1)?,
        source_ref: r.get(2)?,
        source_hash: r.get(3)?,
        source: json_col(r, 4)?,
        in_scope: r.get(5)?,
        target_id: r.get(6)?,
        exported: json_col(r, 7)?,
        pending: r.get(8)?,
        updated: r.get(9)?,
        escrow: match r.get_ref(10)?.as_str_or_null()? {
            None => None,
            Some(text) => Some(serde_json::from_str(text).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(10, rusqlite::types::Type::Text, Box::new(e))
            })?),
        },
    })
}

fn log_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EngineLogRecord> {
    Ok(EngineLogRecord {
        id: r.get(0)?,
        job: r.get(1)?,
        cycle_id: r.get(2)?,
        change_id: r.get(3)?,
        time: r.get(4)?,
        action: r.get(5)?,
        status: r.get(6)?,
        source_id: r.get(7)?,
        target_id: r.get(8)?,
        record: json_col(r, 9)?,
    })
}

/// Runs a query that returns object states, and sorts them by kind and
/// anchor. Sorted here, not by `ORDER BY`: without statistics SQLite would
/// walk the primary key for the order instead of the source-reference or
/// pending index for the rows.
fn objects_where(c: &Connection, sql: &str, p: impl rusqlite::Params) -> StoreResult<Vec<ObjectState>> {
    let mut stmt = c.prepare_cached(sql).map_err(internal)?;
    let rows = stmt.query_map(p, object_from_row).map_err(internal)?;
    let mut v = rows.collect::<Result<Vec<_>, _>>().map_err(internal)?;
    v.sort_by(|a, b| (a.kind, &a.anchor).cmp(&(b.kind, &b.anchor)));
    Ok(v)
}

/// An object state with its JSON already serialised, ready for the writer.
struct ObjectRow {
    kind: &'static str,
    anchor: String,
    source_ref: Option<String>,
    source_hash: String,
    source: String,
    in_scope: bool,
    target_id: Option<String>,
    exported: String,
    pending: bool,
    updated: String,
    escrow: Option<String>,
}

impl ObjectRow {
    fn new(o: ObjectState) -> StoreResult<Self> {
        Ok(ObjectRow {
            kind: o.kind.as_str(),
            source: to_json(&o.source)?,
            exported: to_json(&o.exported)?,
            anchor: o.anchor,
            source_ref: o.source_ref,
            source_hash: o.source_hash,
            in_scope: o.in_scope,
            target_id: o.target_id,
            pending: o.pending,
            updated: o.updated,
            escrow: o
                .escrow
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(internal)?,
        })
    }
}

/// A log record with its JSON already serialised.
struct LogRow {
    rec: EngineLogRecord,
    record: String,
}

#[async_trait]
impl EngineStore for SqliteStore {
    async fn insert_job(&self, tenant: TenantId, name: &str, config: &Value) -> StoreResult<bool> {
        let (name, text) = (name.to_string(), to_json(config)?);
        let now = now_utc();
        self.write(move |tx| {
            let n = exec(
                tx,
                "INSERT INTO engine_jobs (tenant_id, name, config, status, created, updated) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (tenant_id, name) DO NOTHING",
                params![tenant, name, text, NEW_JOB_STATUS, now, now],
            )
            .map_err(internal)?;
            Ok(n == 1)
        })
        .await
    }

    async fn put_job(&self, tenant: TenantId, name: &str, config: &Value) -> StoreResult<JobRecord> {
        let (name, text) = (name.to_string(), to_json(config)?);
        let now = now_utc();
        let (stored, updated) = (name.clone(), now.clone());
        // The writer returns the kept state as text; it is parsed here.
        let (status, watermark, last_cycle, created) = self
            .write(move |tx| {
                row(
                    tx,
                    "INSERT INTO engine_jobs (tenant_id, name, config, status, created, updated) VALUES (?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (tenant_id, name) DO UPDATE SET config = excluded.config, updated = excluded.updated \
                     RETURNING status, watermark, last_cycle, created",
                    params![tenant, stored, text, NEW_JOB_STATUS, now, now],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Option<String>>(1)?,
                            r.get::<_, Option<String>>(2)?,
                            r.get::<_, String>(3)?,
                        ))
                    },
                )
                .map_err(internal)
            })
            .await?;
        let parse = |t: Option<String>| t.map(|t| serde_json::from_str(&t)).transpose().map_err(internal);
        Ok(JobRecord {
            name,
            config: config.clone(),
            status,
            watermark: parse(watermark)?,
            last_cycle: parse(last_cycle)?,
            created,
            updated,
        })
    }

    async fn job(&self, tenant: TenantId, name: &str) -> StoreResult<Option<JobRecord>> {
        let name = name.to_string();
        self.read(move |c| {
            row(
                c,
                &format!("SELECT {JOB_COLS} FROM engine_jobs WHERE tenant_id = ? AND name = ?"),
                params![tenant, name],
                job_from_row,
            )
            .optional()
            .map_err(internal)
        })
        .await
    }

    async fn list_jobs(&self, tenant: TenantId) -> StoreResult<Vec<JobRecord>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {JOB_COLS} FROM engine_jobs WHERE tenant_id = ? ORDER BY name"
                ))
                .map_err(internal)?;
            let rows = stmt.query_map([tenant], job_from_row).map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn active_jobs(&self) -> StoreResult<Vec<(TenantId, String, JobRecord)>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT j.name, j.config, j.status, j.watermark, j.last_cycle, j.created, j.updated, j.tenant_id, t.name \
                 FROM engine_jobs j JOIN tenants t ON t.id = j.tenant_id \
                 WHERE j.status IN ('on', 'quarantined') ORDER BY j.tenant_id, j.name",
                )
                .map_err(internal)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(7)?, r.get(8)?, job_from_row(r)?)))
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn delete_job(&self, tenant: TenantId, name: &str) -> StoreResult<bool> {
        let name = name.to_string();
        self.write(move |tx| {
            exec(
                tx,
                "DELETE FROM engine_objects WHERE tenant_id = ? AND job = ?",
                params![tenant, name],
            )
            .map_err(internal)?;
            exec(
                tx,
                "DELETE FROM engine_log WHERE tenant_id = ? AND job = ?",
                params![tenant, name],
            )
            .map_err(internal)?;
            let n = exec(
                tx,
                "DELETE FROM engine_jobs WHERE tenant_id = ? AND name = ?",
                params![tenant, name],
            )
            .map_err(internal)?;
            Ok(n > 0)
        })
        .await
    }

    async fn set_job_status(&self, tenant: TenantId, name: &str, status: &str) -> StoreResult<bool> {
        let (name, status) = (name.to_string(), status.to_string());
        self.write(move |tx| {
            let n = exec(
                tx,
                "UPDATE engine_jobs SET status = ?, updated = ? WHERE tenant_id = ? AND name = ?",
                params![status, now_utc(), tenant, name],
            )
            .map_err(internal)?;
            Ok(n > 0)
        })
        .await
    }

    async fn finish_cycle(
        &self,
        tenant: TenantId,
        name: &str,
        watermark: Option<&Value>,
        summary: &Value,
    ) -> StoreResult<()> {
        let name = name.to_string();
        let watermark = watermark.map(to_json).transpose()?;
        let summary = to_json(summary)?;
        self.write(move |tx| {
            let n = exec(
                tx,
                "UPDATE engine_jobs SET watermark = ?, last_cycle = ?, updated = ? WHERE tenant_id = ? AND name = ?",
                params![watermark, summary, now_utc(), tenant, name],
            )
            .map_err(internal)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn set_last_cycle(&self, tenant: TenantId, name: &str, summary: &Value) -> StoreResult<bool> {
        let name = name.to_string();
        let summary = to_json(summary)?;
        self.write(move |tx| {
            let n = exec(
                tx,
                "UPDATE engine_jobs SET last_cycle = ?, updated = ? WHERE tenant_id = ? AND name = ?",
                params![summary, now_utc(), tenant, name],
            )
            .map_err(internal)?;
            Ok(n > 0)
        })
        .await
    }

    async fn set_job_progress(&self, tenant: TenantId, name: &str, progress: Option<&Value>) -> StoreResult<bool> {
        let name = name.to_string();
        let progress = progress.map(to_json).transpose()?;
        self.write(move |tx| {
            let n = exec(
                tx,
                "UPDATE engine_jobs SET progress = ? WHERE tenant_id = ? AND name = ?",
                params![progress, tenant, name],
            )
            .map_err(internal)?;
            Ok(n > 0)
        })
        .await
    }

    async fn job_progress(&self, tenant: TenantId, name: &str) -> StoreResult<Option<Value>> {
        let name = name.to_string();
        self.read(move |c| {
            let found = row(
                c,
                "SELECT progress FROM engine_jobs WHERE tenant_id = ? AND name = ?",
                params![tenant, name],
                |r| json_col_opt(r, 0),
            )
            .optional()
            .map_err(internal)?;
            Ok(found.flatten())
        })
        .await
    }

    async fn drop_escrow(&self, tenant: TenantId, job: &str) -> StoreResult<u64> {
        let job = job.to_string();
        self.write(move |tx| {
            let n = exec(
                tx,
                "UPDATE engine_objects SET escrow = NULL, pending = 0 \
                 WHERE tenant_id = ? AND job = ? AND escrow IS NOT NULL",
                params![tenant, job],
            )
            .map_err(internal)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }

    async fn escrow_counts(&self, tenant: TenantId, job: &str) -> StoreResult<(u64, u64)> {
        let job = job.to_string();
        self.read(move |c| {
            c.query_row(
                "SELECT count(*) FILTER (WHERE NOT coalesce(json_extract(escrow, '$.reference'), 0)), \
                 count(*) FILTER (WHERE coalesce(json_extract(escrow, '$.reference'), 0)) \
                 FROM engine_objects WHERE tenant_id = ? AND job = ? AND pending AND escrow IS NOT NULL",
                params![tenant, job],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            )
            .map(|(f, r)| (u64::try_from(f).unwrap_or(0), u64::try_from(r).unwrap_or(0)))
            .map_err(internal)
        })
        .await
    }

    async fn restart_job(&self, tenant: TenantId, name: &str, reset_anchors: bool) -> StoreResult<bool> {
        let name = name.to_string();
        self.write(move |tx| {
            let n = exec(
                tx,
                "UPDATE engine_jobs SET watermark = NULL, updated = ? WHERE tenant_id = ? AND name = ?",
                params![now_utc(), tenant, name],
            )
            .map_err(internal)?;
            if n > 0 && reset_anchors {
                exec(
                    tx,
                    "UPDATE engine_objects SET target_id = NULL, exported = 'null' WHERE tenant_id = ? AND job = ?",
                    params![tenant, name],
                )
                .map_err(internal)?;
            }
            if n > 0 {
                exec(
                    tx,
                    "UPDATE engine_objects SET escrow = NULL WHERE tenant_id = ? AND job = ? AND escrow IS NOT NULL",
                    params![tenant, name],
                )
                .map_err(internal)?;
            }
            Ok(n > 0)
        })
        .await
    }

    async fn objects(&self, tenant: TenantId, job: &str, kind: ObjectKind) -> StoreResult<Vec<ObjectState>> {
        let job = job.to_string();
        self.read(move |c| {
            objects_where(
                c,
                &format!("SELECT {OBJECT_COLS} FROM engine_objects WHERE tenant_id = ? AND job = ? AND kind = ?"),
                params![tenant, job, kind.as_str()],
            )
        })
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
        // One JSON array parameter, whatever the number of keys: no limit
        // on bound parameters to chunk around, and one cached statement.
        let (job, keys) = (job.to_string(), serde_json::to_string(anchors).map_err(internal)?);
        self.read(move |c| {
            objects_where(
                c,
                &format!(
                    "SELECT {OBJECT_COLS} FROM engine_objects WHERE tenant_id = ? AND job = ? AND kind = ? \
                     AND anchor IN (SELECT value FROM json_each(?))"
                ),
                params![tenant, job, kind.as_str(), keys],
            )
        })
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
        let (job, keys) = (job.to_string(), serde_json::to_string(refs).map_err(internal)?);
        self.read(move |c| {
            objects_where(
                c,
                &format!(
                    "SELECT {OBJECT_COLS} FROM engine_objects WHERE tenant_id = ? AND job = ? \
                     AND source_ref IN (SELECT value FROM json_each(?))"
                ),
                params![tenant, job, keys],
            )
        })
        .await
    }

    async fn pending_objects(&self, tenant: TenantId, job: &str) -> StoreResult<Vec<ObjectState>> {
        let job = job.to_string();
        self.read(move |c| {
            // `AND pending` exactly as the partial index says, so it is used.
            objects_where(
                c,
                &format!("SELECT {OBJECT_COLS} FROM engine_objects WHERE tenant_id = ? AND job = ? AND pending"),
                params![tenant, job],
            )
        })
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
        let job = job.to_string();
        let objects = objects
            .into_iter()
            .map(ObjectRow::new)
            .collect::<StoreResult<Vec<_>>>()?;
        let log = log
            .into_iter()
            .map(|mut rec| {
                let record = to_json(&std::mem::take(&mut rec.record))?;
                Ok(LogRow { rec, record })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        self.write(move |tx| {
            let known = row(
                tx,
                "SELECT 1 FROM engine_jobs WHERE tenant_id = ? AND name = ?",
                params![tenant, job],
                |_| Ok(()),
            )
            .optional()
            .map_err(internal)?;
            if known.is_none() {
                return Err(StoreError::NotFound);
            }
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO engine_objects (tenant_id, job, kind, anchor, source_ref, source_hash, source, in_scope, \
                     target_id, exported, pending, updated, escrow) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                     ON CONFLICT (tenant_id, job, kind, anchor) DO UPDATE SET source_ref = excluded.source_ref, \
                     source_hash = excluded.source_hash, source = excluded.source, in_scope = excluded.in_scope, \
                     target_id = excluded.target_id, exported = excluded.exported, pending = excluded.pending, \
                     updated = excluded.updated, escrow = excluded.escrow",
                )
                .map_err(internal)?;
            for o in &objects {
                upsert
                    .execute(params![
                        tenant,
                        job,
                        o.kind,
                        o.anchor,
                        o.source_ref,
                        o.source_hash,
                        o.source,
                        o.in_scope,
                        o.target_id,
                        o.exported,
                        o.pending,
                        o.updated,
                        o.escrow
                    ])
                    .map_err(internal)?;
            }
            let mut delete = tx
                .prepare_cached("DELETE FROM engine_objects WHERE tenant_id = ? AND job = ? AND kind = ? AND anchor = ?")
                .map_err(internal)?;
            for (kind, anchor) in &removed {
                delete
                    .execute(params![tenant, job, kind.as_str(), anchor])
                    .map_err(internal)?;
            }
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO engine_log (tenant_id, job, cycle_id, change_id, time, action, status, source_id, \
                     target_id, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .map_err(internal)?;
            // The records are the job's whatever their `job` says.
            for LogRow { rec: l, record } in &log {
                insert
                    .execute(params![
                        tenant,
                        job,
                        l.cycle_id,
                        l.change_id,
                        l.time,
                        l.action,
                        l.status,
                        l.source_id,
                        l.target_id,
                        record
                    ])
                    .map_err(internal)?;
            }
            Ok(())
        })
        .await
    }

    async fn engine_log(&self, tenant: TenantId, job: &str, q: EngineLogQuery) -> StoreResult<Vec<EngineLogRecord>> {
        let job = job.to_string();
        self.read(move |c| {
            let mut sql = format!("SELECT {LOG_COLS} FROM engine_log WHERE tenant_id = ? AND job = ?");
            let mut p: Vec<Sql> = vec![Sql::Integer(tenant), Sql::Text(job)];
            for (col, v) in [("cycle_id", q.cycle_id), ("status", q.status), ("action", q.action)] {
                if let Some(v) = v {
                    sql.push_str(&format!(" AND {col} = ?"));
                    p.push(Sql::Text(v));
                }
            }
            if let Some(v) = q.before_id {
                sql.push_str(" AND id < ?");
                p.push(Sql::Integer(v));
            }
            sql.push_str(" ORDER BY id DESC LIMIT ?");
            p.push(Sql::Integer(i64::try_from(q.limit.max(1)).unwrap_or(i64::MAX)));
            let mut stmt = c.prepare(&sql).map_err(internal)?;
            let rows = stmt
                .query_map(params_from_iter(p.iter()), log_from_row)
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn purge_engine_log(&self, before: &str) -> StoreResult<u64> {
        let before = before.to_string();
        self.write(move |tx| {
            let n = exec(tx, "DELETE FROM engine_log WHERE time < ?", [&before]).map_err(internal)?;
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        })
        .await
    }
}
