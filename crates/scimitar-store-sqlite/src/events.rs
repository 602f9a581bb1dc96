//! Change events: stored in the writer's transaction of their change and
//! numbered there (one writer, so numbers are visible in order).

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use scimitar_store::{Event, EventStore, NewEvent, RawEvent, StoreResult, TenantId};

use crate::{SqliteStore, internal};

/// Stores events of a tenant with the next sequence numbers, inside the
/// writer's transaction. Their payloads come serialised (by whoever made
/// them, off the writer thread that every write waits for).
pub(crate) fn insert_events(tx: &Connection, tenant: TenantId, events: Vec<NewEvent>) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let n = i64::try_from(events.len()).map_err(internal)?;
    let last: i64 = tx
        .prepare_cached(
            "INSERT INTO event_counters (tenant_id, last) VALUES (?, ?) \
             ON CONFLICT (tenant_id) DO UPDATE SET last = last + excluded.last RETURNING last",
        )
        .map_err(internal)?
        .query_row(params![tenant, n], |r| r.get(0))
        .map_err(internal)?;
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO events (tenant_id, seq, id, time, type, subject, data, change_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .map_err(internal)?;
    for (i, e) in (last - n + 1..).zip(events) {
        insert
            .execute(params![
                tenant,
                i,
                e.id,
                e.time,
                e.event_type,
                e.subject,
                e.data.get(),
                e.change
            ])
            .map_err(internal)?;
    }
    Ok(())
}

/// An event from a row of `id, seq, time, type, data, subject`.
fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
    let data: String = r.get(4)?;
    Ok(Event {
        id: r.get(0)?,
        seq: r.get(1)?,
        time: r.get(2)?,
        event_type: r.get(3)?,
        subject: r.get(5)?,
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
    })
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn record_events(&self, tenant: TenantId, events: Vec<NewEvent>) -> StoreResult<()> {
        self.write(move |tx| insert_events(tx, tenant, events)).await
    }

    async fn list_events(
        &self,
        tenant: TenantId,
        after: i64,
        limit: usize,
        types: &[String],
    ) -> StoreResult<Vec<Event>> {
        let types = types.to_vec();
        let limit = i64::try_from(limit).map_err(internal)?;
        self.read(move |c| {
            let marks = vec!["?"; types.len()].join(", ");
            let filter = if types.is_empty() {
                String::new()
            } else {
                format!(" AND type IN ({marks})")
            };
            let sql = format!(
                "SELECT id, seq, time, type, data, subject FROM events WHERE tenant_id = ? AND seq > ?{filter} ORDER BY seq LIMIT ?"
            );
            let mut p: Vec<rusqlite::types::Value> = vec![tenant.into(), after.into()];
            p.extend(types.into_iter().map(rusqlite::types::Value::from));
            p.push(limit.into());
            let mut stmt = c.prepare_cached(&sql).map_err(internal)?;
            let rows = stmt
                .query_map(params_from_iter(p), event_row)
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn change_events(&self, tenant: TenantId, change: &str, from: &str, to: &str) -> StoreResult<Vec<Event>> {
        let (change, from, to) = (change.to_string(), from.to_string(), to.to_string());
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT id, seq, time, type, data, subject FROM events \
                     WHERE time >= ? AND time <= ? AND tenant_id = ? AND change_id = ? ORDER BY seq",
                )
                .map_err(internal)?;
            let rows = stmt
                .query_map(params![from, to, tenant, change], event_row)
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn list_raw_events(&self, tenant: TenantId, after: i64, limit: usize) -> StoreResult<Vec<RawEvent>> {
        let limit = i64::try_from(limit).map_err(internal)?;
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT id, seq, time, type, subject, data FROM events \
                     WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                )
                .map_err(internal)?;
            let rows = stmt
                .query_map(params![tenant, after, limit], |r| {
                    Ok(RawEvent {
                        id: r.get(0)?,
                        seq: r.get(1)?,
                        time: r.get(2)?,
                        event_type: r.get(3)?,
                        subject: r.get(4)?,
                        data: r.get(5)?,
                    })
                })
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn last_event_seq(&self, tenant: TenantId) -> StoreResult<i64> {
        self.read(move |c| {
            let last: Option<i64> = c
                .prepare_cached("SELECT last FROM event_counters WHERE tenant_id = ?")
                .map_err(internal)?
                .query_row(params![tenant], |r| r.get(0))
                .optional()
                .map_err(internal)?;
            Ok(last.unwrap_or(0))
        })
        .await
    }

    async fn purge_events(&self, before: &str) -> StoreResult<u64> {
        let before = before.to_string();
        self.write(move |tx| {
            let n = tx
                .execute("DELETE FROM events WHERE time < ?", [&before])
                .map_err(internal)?;
            Ok(n as u64)
        })
        .await
    }
}
