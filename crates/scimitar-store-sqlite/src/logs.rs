//! The provisioning activity log and the audit log.

use async_trait::async_trait;
use rusqlite::{params, params_from_iter};
use scimitar_store::{
    ActivityEvent, ActivityQuery, ActivityStore, AuditEvent, AuditStore, ReadCount, StoreResult, TenantId,
};
use serde_json::Value;

use crate::{SqliteStore, exec, insert_activity, internal, serialise_changes};

#[async_trait]
impl ActivityStore for SqliteStore {
    async fn record_activity(&self, e: ActivityEvent) -> StoreResult<()> {
        let (e, changes) = serialise_changes(e)?;
        self.write(move |tx| insert_activity(tx, &e, &changes).map(|_| ()).map_err(internal))
            .await
    }

    async fn list_activity(&self, tenant: TenantId, q: ActivityQuery) -> StoreResult<Vec<ActivityEvent>> {
        self.read(move |c| {
            use rusqlite::types::Value as Sql;
            let mut sql = String::from(
                "SELECT id, tenant_id, time, token_id, token_label, action, resource_type, resource_id, name, changes, \
                 outcome, status, error, method, path, change_id FROM activity WHERE tenant_id = ?",
            );
            let mut p: Vec<Sql> = vec![Sql::Integer(tenant)];
            if let Some(v) = q.since {
                sql.push_str(" AND time >= ?");
                p.push(Sql::Text(v));
            }
            if let Some(v) = q.until {
                sql.push_str(" AND time < ?");
                p.push(Sql::Text(v));
            }
            if let Some(v) = q.action {
                sql.push_str(" AND action = ?");
                p.push(Sql::Text(v));
            }
            if let Some(v) = q.outcome {
                sql.push_str(" AND outcome = ?");
                p.push(Sql::Text(v));
            }
            if let Some(v) = q.text {
                sql.push_str(
                    " AND (instr(scim_lower(coalesce(name, '')), ?1x) > 0 OR instr(scim_lower(coalesce(resource_id, '')), ?1x) > 0 \
                     OR instr(scim_lower(coalesce(error, '')), ?1x) > 0 OR instr(scim_lower(changes), ?1x) > 0)",
                );
                let v = v.to_lowercase();
                // Positional parameters: bind the needle four times.
                sql = sql.replace("?1x", "?");
                for _ in 0..4 {
                    p.push(Sql::Text(v.clone()));
                }
            }
            if let Some(v) = q.before_id {
                sql.push_str(" AND id < ?");
                p.push(Sql::Integer(v));
            }
            sql.push_str(" ORDER BY id DESC LIMIT ?");
            p.push(Sql::Integer(i64::try_from(q.limit.max(1)).unwrap_or(1000)));
            let mut stmt = c.prepare(&sql).map_err(internal)?;
            let rows = stmt
                .query_map(params_from_iter(p.iter()), |r| {
                    let changes: String = r.get(9)?;
                    Ok(ActivityEvent {
                        id: r.get(0)?,
                        tenant_id: r.get(1)?,
                        time: r.get(2)?,
                        token_id: r.get(3)?,
                        token_label: r.get(4)?,
                        action: r.get(5)?,
                        resource_type: r.get(6)?,
                        resource_id: r.get(7)?,
                        name: r.get(8)?,
                        changes: serde_json::from_str(&changes).unwrap_or(Value::Null),
                        outcome: r.get(10)?,
                        status: r.get(11)?,
                        error: r.get(12)?,
                        method: r.get(13)?,
                        path: r.get(14)?,
                        change: r.get(15)?,
                    })
                })
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn count_reads(&self, tenant: TenantId, hour: &str, n: u64) -> StoreResult<()> {
        let hour = hour.to_string();
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO read_counts (tenant_id, hour, count) VALUES (?, ?, ?) \
                 ON CONFLICT (tenant_id, hour) DO UPDATE SET count = count + excluded.count",
                params![tenant, hour, i64::try_from(n).unwrap_or(i64::MAX)],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn read_counts(&self, tenant: TenantId, since_hour: &str) -> StoreResult<Vec<ReadCount>> {
        let since = since_hour.to_string();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT hour, count FROM read_counts WHERE tenant_id = ? AND hour >= ? ORDER BY hour")
                .map_err(internal)?;
            let rows = stmt
                .query_map(params![tenant, since], |r| {
                    Ok(ReadCount {
                        hour: r.get(0)?,
                        count: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    })
                })
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn purge_activity(&self, before: &str) -> StoreResult<u64> {
        let before = before.to_string();
        self.write(move |tx| {
            let n = tx
                .execute("DELETE FROM activity WHERE time < ?", [&before])
                .map_err(internal)?;
            let hour: String = before.chars().take(13).collect();
            exec(tx, "DELETE FROM read_counts WHERE hour < ?", [&hour]).map_err(internal)?;
            Ok(n as u64)
        })
        .await
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn record_audit(&self, e: AuditEvent) -> StoreResult<()> {
        self.write(move |tx| {
            exec(tx,
                "INSERT INTO audit (time, tenant_id, actor, action, target, detail, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
                params![e.time, e.tenant_id, e.actor, e.action, e.target, e.detail, e.source],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn list_audit(&self, tenant: Option<TenantId>, limit: usize) -> StoreResult<Vec<AuditEvent>> {
        self.read(move |c| {
            let limit = i64::try_from(limit.clamp(1, 10_000)).unwrap_or(100);
            let map = |r: &rusqlite::Row<'_>| {
                Ok(AuditEvent {
                    id: r.get(0)?,
                    time: r.get(1)?,
                    tenant_id: r.get(2)?,
                    actor: r.get(3)?,
                    action: r.get(4)?,
                    target: r.get(5)?,
                    detail: r.get(6)?,
                    source: r.get(7)?,
                })
            };
            let cols = "SELECT id, time, tenant_id, actor, action, target, detail, source FROM audit";
            let rows = match tenant {
                Some(t) => {
                    let mut stmt = c
                        .prepare(&format!("{cols} WHERE tenant_id = ? ORDER BY id DESC LIMIT ?"))
                        .map_err(internal)?;
                    stmt.query_map(params![t, limit], map)
                        .map_err(internal)?
                        .collect::<Result<Vec<_>, _>>()
                }
                None => {
                    let mut stmt = c
                        .prepare(&format!("{cols} ORDER BY id DESC LIMIT ?"))
                        .map_err(internal)?;
                    stmt.query_map(params![limit], map)
                        .map_err(internal)?
                        .collect::<Result<Vec<_>, _>>()
                }
            };
            rows.map_err(internal)
        })
        .await
    }
}
