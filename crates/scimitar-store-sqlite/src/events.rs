//! Change events: stored in the writer's transaction of their change and
//! numbered there (one writer, so numbers are visible in order).

use std::collections::HashMap;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use scimitar_store::{Event, EventStore, NewEvent, RawEvent, StoreResult, TenantId};

use crate::{SqliteStore, Writer, internal};

/// The last event number given per tenant, kept by the writer so that a
/// write's events cost no statement to number: `event_counters` (which
/// keeps numbers from going back when retention empties the table) is
/// read on first use and written once per batch, before its COMMIT, for
/// the tenants the batch numbered. What the writer remembers is valid
/// while no other connection commits (another process on the same file,
/// such as `scimitar token create` beside a server): `PRAGMA data_version`
/// tells, and is checked at every batch's start.
#[derive(Default)]
pub(crate) struct Numbers {
    data_version: Option<i64>,
    /// As committed.
    committed: HashMap<TenantId, i64>,
    /// Given by jobs of the running batch that succeeded.
    batch: HashMap<TenantId, i64>,
    /// Given by the running job, undone if its savepoint is.
    job: HashMap<TenantId, i64>,
    /// Tenants the running job deleted.
    forget: Vec<TenantId>,
}

impl Numbers {
    /// After BEGIN: forgets everything if another connection committed.
    pub(crate) fn begin_batch(&mut self, c: &Connection) -> rusqlite::Result<()> {
        let v: i64 = c.prepare_cached("PRAGMA data_version")?.query_row([], |r| r.get(0))?;
        if self.data_version != Some(v) {
            self.committed.clear();
            self.data_version = Some(v);
        }
        Ok(())
    }

    /// Gives `n` numbers to `tenant`'s events; the first of them.
    fn take(&mut self, c: &Connection, tenant: TenantId, n: i64) -> rusqlite::Result<i64> {
        let known = [&self.job, &self.batch, &self.committed]
            .into_iter()
            .find_map(|m| m.get(&tenant).copied());
        let last = match known {
            Some(last) => last,
            // The counter, or the events themselves should the counter lag
            // (never expected: both are written in one transaction).
            None => c
                .prepare_cached(
                    "SELECT max(coalesce((SELECT last FROM event_counters WHERE tenant_id = ?1), 0), \
                     coalesce((SELECT max(seq) FROM events WHERE tenant_id = ?1), 0))",
                )?
                .query_row([tenant], |r| r.get(0))?,
        };
        self.job.insert(tenant, last + n);
        Ok(last + 1)
    }

    /// A tenant deleted by the running job: its numbers start again.
    pub(crate) fn forget(&mut self, tenant: TenantId) {
        self.job.remove(&tenant);
        self.forget.push(tenant);
    }

    /// After a job's savepoint was released (`ok`) or rolled back.
    pub(crate) fn end_job(&mut self, ok: bool) {
        if ok {
            for t in self.forget.drain(..) {
                self.batch.remove(&t);
                self.committed.remove(&t);
            }
            self.batch.extend(self.job.drain());
        } else {
            // Should a stale number have failed it, it is read again.
            for t in self.job.keys() {
                self.committed.remove(t);
            }
            self.job.clear();
            self.forget.clear();
        }
    }

    /// Before COMMIT: the counters of the tenants this batch numbered.
    pub(crate) fn store(&self, c: &Connection) -> rusqlite::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let mut upsert = c.prepare_cached(
            "INSERT INTO event_counters (tenant_id, last) VALUES (?, ?) \
             ON CONFLICT (tenant_id) DO UPDATE SET last = max(last, excluded.last)",
        )?;
        for (tenant, last) in &self.batch {
            upsert.execute(params![tenant, last])?;
        }
        Ok(())
    }

    /// After COMMIT (`committed`) or ROLLBACK.
    pub(crate) fn end_batch(&mut self, committed: bool) {
        if committed {
            self.committed.extend(self.batch.drain());
        } else {
            self.batch.clear();
        }
        self.job.clear();
        self.forget.clear();
    }
}

/// Stores events of a tenant with the next sequence numbers, inside the
/// writer's transaction. Their payloads come serialised (by whoever made
/// them, off the writer thread that every write waits for).
pub(crate) fn insert_events(tx: &Writer, tenant: TenantId, events: Vec<NewEvent>) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let n = i64::try_from(events.len()).map_err(internal)?;
    let first = tx.numbers.borrow_mut().take(tx, tenant, n).map_err(internal)?;
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO events (tenant_id, seq, id, time, type, subject, data, change_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .map_err(internal)?;
    for (i, e) in (first..).zip(events) {
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

/// The first `pk` whose event's time satisfies `at_or_after` (a test that
/// is false for earlier times and true for later ones), or one past the
/// last event if none does, by bisecting `pk` — about 40 indexed reads
/// for any number of events. Events are stored in the order they are
/// made, so their times rise with `pk`, give or take the milliseconds
/// between a request's clock and its commit: the retention and the
/// activity page's link may be that much off at their edges.
fn first_pk(c: &Connection, at_or_after: impl Fn(&str) -> bool) -> rusqlite::Result<i64> {
    let (first, last): (Option<i64>, Option<i64>) = c
        .prepare_cached("SELECT min(pk), max(pk) FROM events")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (Some(mut lo), Some(last)) = (first, last) else {
        return Ok(0);
    };
    let mut hi = last + 1;
    let mut at = c.prepare_cached("SELECT pk, time FROM events WHERE pk >= ? ORDER BY pk LIMIT 1")?;
    // The row at or after a position satisfies the test from some
    // position on (times rise with pk); find the first such position.
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let row: Option<(i64, String)> = at.query_row([mid], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        match row {
            Some((_, time)) if !at_or_after(&time) => lo = mid + 1,
            _ => hi = mid,
        }
    }
    let found: Option<i64> = at.query_row([lo], |r| r.get(0)).optional()?;
    Ok(found.unwrap_or(last + 1))
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
            let start = first_pk(c, |t| t >= from.as_str()).map_err(internal)?;
            let end = first_pk(c, |t| t > to.as_str()).map_err(internal)?;
            let mut stmt = c
                .prepare_cached(
                    "SELECT id, seq, time, type, data, subject FROM events \
                     WHERE pk >= ? AND pk < ? AND tenant_id = ? AND change_id = ? ORDER BY seq",
                )
                .map_err(internal)?;
            let rows = stmt
                .query_map(params![start, end, tenant, change], event_row)
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
            let end = first_pk(tx, |t| t >= before.as_str()).map_err(internal)?;
            let n = tx.execute("DELETE FROM events WHERE pk < ?", [end]).map_err(internal)?;
            Ok(n as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use scimitar_store::{StoreError, TenantStore};
    use serde_json::json;

    use super::*;

    fn ev(subject: &str) -> NewEvent {
        NewEvent::new("user.created", Some(subject), json!({"id": subject}))
    }

    async fn seqs(s: &SqliteStore, t: TenantId) -> Vec<i64> {
        s.list_events(t, 0, 1000, &[])
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect()
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("scimitar-numbers-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("e.db")
    }

    /// Numbers the writer remembers are dropped when another connection
    /// (another process: `scimitar token create` beside a server) wrote
    /// events to the same file: no number given twice, none skipped.
    #[tokio::test]
    async fn another_writer_on_the_same_file_is_seen() {
        let path = temp("two");
        let server = SqliteStore::open(&path).unwrap();
        let t = server.create_tenant("acme").await.unwrap().id;
        server.record_events(t, vec![ev("a"), ev("b")]).await.unwrap();
        let cli = SqliteStore::open(&path).unwrap();
        cli.record_events(t, vec![ev("c")]).await.unwrap();
        server.record_events(t, vec![ev("d")]).await.unwrap();
        cli.record_events(t, vec![ev("e")]).await.unwrap();
        assert_eq!(seqs(&server, t).await, [1, 2, 3, 4, 5]);
        assert_eq!(server.last_event_seq(t).await.unwrap(), 5);
    }

    /// A write that fails after numbering its events gives its numbers
    /// back (its savepoint is rolled back, and so is what the writer
    /// remembered), also when it shares a batch with writes that succeed.
    #[tokio::test]
    async fn a_failed_write_leaves_no_gap() {
        let store = std::sync::Arc::new(SqliteStore::open(&temp("gap")).unwrap());
        let t = store.create_tenant("acme").await.unwrap().id;
        store.record_events(t, vec![ev("a")]).await.unwrap();
        let failed = store
            .write(move |tx| {
                insert_events(tx, t, vec![ev("x"), ev("y")])?;
                Err::<(), _>(StoreError::Conflict("after its events".into()))
            })
            .await;
        assert!(failed.is_err());
        // Many at once, so that some share a batch with failing ones.
        let mut all = Vec::new();
        for i in 0..50 {
            let s = store.clone();
            all.push(tokio::spawn(async move {
                if i % 3 == 0 {
                    let _ = s
                        .write(move |tx| {
                            insert_events(tx, t, vec![ev("x")])?;
                            Err::<(), _>(StoreError::Conflict("no".into()))
                        })
                        .await;
                } else {
                    s.record_events(t, vec![ev("ok")]).await.unwrap();
                }
            }));
        }
        for j in all {
            j.await.unwrap();
        }
        let got = seqs(&store, t).await;
        assert_eq!(got, (1..=got.len() as i64).collect::<Vec<_>>());
        assert_eq!(got.len(), 1 + 33);
        assert_eq!(store.last_event_seq(t).await.unwrap(), 34);
    }

    /// Bisecting `pk` finds what a scan in `pk` order finds, with gaps in
    /// `pk` (purged and deleted events), equal times, and no events.
    #[test]
    fn first_pk_is_what_a_scan_finds() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE events (pk INTEGER PRIMARY KEY, time TEXT NOT NULL)")
            .unwrap();
        assert_eq!(first_pk(&c, |t| t >= "2026").unwrap(), 0);
        let rows = [
            (3, "2026-01-01"),
            (4, "2026-01-02"),
            (9, "2026-01-02"),
            (10, "2026-01-05"),
            (40, "2026-02-01"),
            (41, "2026-02-01"),
            (1000, "2026-03-01"),
        ];
        for (pk, time) in rows {
            c.execute("INSERT INTO events (pk, time) VALUES (?, ?)", params![pk, time])
                .unwrap();
        }
        for probe in [
            "2025",
            "2026-01-01",
            "2026-01-02",
            "2026-01-03",
            "2026-02-01",
            "2026-02-02",
            "2026-03-01",
            "2027",
        ] {
            let scan = |f: &dyn Fn(&str) -> bool| rows.iter().find(|(_, t)| f(t)).map_or(1001, |(pk, _)| *pk);
            assert_eq!(
                first_pk(&c, |t| t >= probe).unwrap(),
                scan(&|t| t >= probe),
                ">= {probe}"
            );
            assert_eq!(first_pk(&c, |t| t > probe).unwrap(), scan(&|t| t > probe), "> {probe}");
        }
    }

    /// A deleted tenant's numbers are forgotten: a tenant made later with
    /// the same id starts at 1.
    #[tokio::test]
    async fn a_deleted_tenant_starts_again() {
        let store = SqliteStore::open(&temp("deleted")).unwrap();
        let t = store.create_tenant("acme").await.unwrap().id;
        store.record_events(t, vec![ev("a"), ev("b")]).await.unwrap();
        assert!(store.delete_tenant("acme").await.unwrap());
        let again = store.create_tenant("acme").await.unwrap().id;
        store.record_events(again, vec![ev("c")]).await.unwrap();
        assert_eq!(seqs(&store, again).await, [1]);
    }
}
