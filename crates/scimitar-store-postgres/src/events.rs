//! Change events. A write stores its events unsequenced (`seq` NULL) in
//! its own transaction: a sequence drawn inside concurrent transactions
//! commits out of order, and a reader that saw 6 would skip 5 committing
//! later. Numbers are given to committed events instead, in insertion
//! order, under the tenant's `event_counters` row lock, by the first reader
//! that finds some pending (`sequence`); writers never take that lock, so
//! it costs them nothing. Two changes of one resource are serialised by its
//! row lock, so the second's event is inserted (and gets its `pk`) after
//! the first committed: per-resource order holds.

use async_trait::async_trait;
use scimitar_store::{Event, EventStore, NewEvent, RawEvent, StoreResult, TenantId};
use tokio_postgres::IsolationLevel;

use crate::{PostgresStore, in_tx, internal};

const INSERT_EVENTS: &str = "INSERT INTO events (tenant_id, id, time, type, subject, data, change_id) \
     SELECT $1, e.id, e.time, e.type, e.subject, e.data::json, e.change \
     FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) \
     AS e(id, time, type, subject, data, change)";

/// How many pending events one pass numbers.
const SEQUENCE_BATCH: i64 = 5000;

/// The statement that stores `events` (unsequenced) and its parameters,
/// for a pipelined transaction.
pub(crate) struct EventRows {
    ids: Vec<String>,
    times: Vec<String>,
    types: Vec<String>,
    subjects: Vec<Option<String>>,
    data: Vec<String>,
    changes: Vec<Option<String>>,
}

impl EventRows {
    pub(crate) fn new(events: Vec<NewEvent>) -> Self {
        let mut rows = EventRows {
            ids: Vec::with_capacity(events.len()),
            times: Vec::with_capacity(events.len()),
            types: Vec::with_capacity(events.len()),
            subjects: Vec::with_capacity(events.len()),
            data: Vec::with_capacity(events.len()),
            changes: Vec::with_capacity(events.len()),
        };
        for e in events {
            rows.ids.push(e.id);
            rows.times.push(e.time);
            rows.types.push(e.event_type);
            rows.subjects.push(e.subject);
            rows.data.push(e.data.get().to_string());
            rows.changes.push(e.change);
        }
        rows
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Inserts the rows (nothing when there are none).
    pub(crate) async fn insert(
        &self,
        c: &impl deadpool_postgres::GenericClient,
        tenant: TenantId,
    ) -> Result<(), tokio_postgres::Error> {
        if self.is_empty() {
            return Ok(());
        }
        crate::pg_execute(
            c,
            INSERT_EVENTS,
            &[
                &tenant,
                &self.ids,
                &self.times,
                &self.types,
                &self.subjects,
                &self.data,
                &self.changes,
            ],
        )
        .await
        .map(|_| ())
    }
}

/// An event from a row of `id, seq, time, type, data, subject`.
fn event_row(r: &tokio_postgres::Row) -> Result<Event, tokio_postgres::Error> {
    Ok(Event {
        id: r.try_get(0)?,
        seq: r.try_get(1)?,
        time: r.try_get(2)?,
        event_type: r.try_get(3)?,
        data: r.try_get(4)?,
        subject: r.try_get(5)?,
    })
}

impl PostgresStore {
    /// Numbers the tenant's committed, unnumbered events (see the module's
    /// documentation).
    async fn sequence(&self, tenant: TenantId) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        let pending = crate::pg_query_one(
            &client,
            "SELECT EXISTS (SELECT 1 FROM events WHERE tenant_id = $1 AND seq IS NULL)",
            &[&tenant],
        )
        .await
        .map_err(crate::db_error)?
        .try_get::<_, bool>(0)
        .map_err(crate::db_error)?;
        drop(client);
        if !pending {
            return Ok(());
        }
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            crate::pg_execute(
                &tx,
                "INSERT INTO event_counters (tenant_id, last) VALUES ($1, 0) ON CONFLICT (tenant_id) DO NOTHING",
                &[&tenant],
            )
            .await?;
            // Another sequencer holding the lock commits first; the next
            // statement's snapshot then sees what it numbered.
            let last: i64 = crate::pg_query_one(
                &tx,
                "SELECT last FROM event_counters WHERE tenant_id = $1 FOR UPDATE",
                &[&tenant],
            )
            .await?
            .try_get(0)?;
            let rows = crate::pg_query(
                &tx,
                "WITH p AS (SELECT pk, row_number() OVER (ORDER BY pk) AS rn FROM events \
                 WHERE tenant_id = $1 AND seq IS NULL ORDER BY pk LIMIT $3) \
                 UPDATE events e SET seq = $2 + p.rn FROM p WHERE e.pk = p.pk RETURNING e.seq",
                &[&tenant, &last, &SEQUENCE_BATCH],
            )
            .await?;
            let mut top = last;
            for r in &rows {
                top = top.max(r.try_get::<_, i64>(0)?);
            }
            if top > last {
                crate::pg_execute(
                    &tx,
                    "UPDATE event_counters SET last = $2 WHERE tenant_id = $1",
                    &[&tenant, &top],
                )
                .await?;
            }
        })
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn record_events(&self, tenant: TenantId, events: Vec<NewEvent>) -> StoreResult<()> {
        let rows = EventRows::new(events);
        let client = self.pool.get().await.map_err(internal)?;
        rows.insert(&client, tenant).await.map_err(crate::db_error)
    }

    async fn list_events(
        &self,
        tenant: TenantId,
        after: i64,
        limit: usize,
        types: &[String],
    ) -> StoreResult<Vec<Event>> {
        self.sequence(tenant).await?;
        let limit = i64::try_from(limit).map_err(internal)?;
        let client = self.pool.get().await.map_err(internal)?;
        let types = types.to_vec();
        let rows = crate::pg_query(
            &client,
            "SELECT id, seq, time, type, data, subject FROM events \
             WHERE tenant_id = $1 AND seq > $2 AND (cardinality($3::text[]) = 0 OR type = ANY($3)) \
             ORDER BY seq LIMIT $4",
            &[&tenant, &after, &types, &limit],
        )
        .await
        .map_err(crate::db_error)?;
        rows.iter()
            .map(event_row)
            .collect::<Result<_, _>>()
            .map_err(crate::db_error)
    }

    async fn list_raw_events(&self, tenant: TenantId, after: i64, limit: usize) -> StoreResult<Vec<RawEvent>> {
        // The payload as stored (json keeps the text it was given; events
        // from before migration 0003 were jsonb, printed as PostgreSQL
        // prints it): no parse and serialisation here per delivered event.
        self.sequence(tenant).await?;
        let limit = i64::try_from(limit).map_err(internal)?;
        let client = self.pool.get().await.map_err(internal)?;
        let rows = crate::pg_query(
            &client,
            "SELECT id, seq, time, type, subject, data::text FROM events \
             WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&tenant, &after, &limit],
        )
        .await
        .map_err(crate::db_error)?;
        rows.iter()
            .map(|r| {
                Ok(RawEvent {
                    id: r.try_get(0)?,
                    seq: r.try_get(1)?,
                    time: r.try_get(2)?,
                    event_type: r.try_get(3)?,
                    subject: r.try_get(4)?,
                    data: r.try_get(5)?,
                })
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(crate::db_error)
    }

    async fn change_events(&self, tenant: TenantId, change: &str, from: &str, to: &str) -> StoreResult<Vec<Event>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = crate::pg_query(
            &client,
            "SELECT id, coalesce(seq, 0), time, type, data, subject FROM events \
             WHERE time >= $1 AND time <= $2 AND tenant_id = $3 AND change_id = $4 ORDER BY pk",
            &[&from, &to, &tenant, &change],
        )
        .await
        .map_err(crate::db_error)?;
        rows.iter()
            .map(event_row)
            .collect::<Result<_, _>>()
            .map_err(crate::db_error)
    }

    async fn last_event_seq(&self, tenant: TenantId) -> StoreResult<i64> {
        // Committed events are numbered first, so that the answer covers
        // every change committed before the call. The counter moves in the
        // numbering transaction, with the numbers.
        self.sequence(tenant).await?;
        let client = self.pool.get().await.map_err(internal)?;
        let row = crate::pg_query_opt(
            &client,
            "SELECT last FROM event_counters WHERE tenant_id = $1",
            &[&tenant],
        )
        .await
        .map_err(crate::db_error)?;
        row.map(|r| r.try_get::<_, i64>(0))
            .transpose()
            .map_err(crate::db_error)
            .map(Option::unwrap_or_default)
    }

    async fn purge_events(&self, before: &str) -> StoreResult<u64> {
        // Numbered events only: the sequencer's numbers must stay unique.
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            crate::pg_execute(
                &tx,
                "DELETE FROM events WHERE time < $1 AND seq IS NOT NULL",
                &[&before],
            )
            .await?
        })
    }
}
