//! Users, Groups and memberships, and list queries.

use async_trait::async_trait;
use scimitar_protocol::ScimError;
use scimitar_protocol::output::Reference;
use scimitar_protocol::patch::{MemberAccess, MemberOp};
use scimitar_store::{
    CursorPos, DeleteEventsFn, Kind, ListQuery, MemberDelta, ModifyFn, NewResource, Page, Record, ResourceStore,
    StoreError, StoreResult, TenantId, UniqueChange, UniqueValue, indexed_columns,
};
use serde_json::Value;
use tokio_postgres::types::Json;
use tokio_postgres::{IsolationLevel, Row};

use crate::events::EventRows;
use crate::{PostgresStore, TxError, db_error, in_pipelined_tx, in_tx, internal, sql};

const RECORD_COLS: &str = "r.id, r.kind, r.doc, r.created, r.modified, r.version, r.seq";
/// A User's groups as one column of its own row, `[[id, displayName], …]`
/// in the order `groups_of` gives (NULL: none): read with a lookup, a GET
/// or a PATCH, they cost no statement of their own. A macro so that
/// `concat!` can build constant statements with it.
macro_rules! groups_col {
    () => {
        "(SELECT jsonb_agg(jsonb_build_array(m.group_id, g.doc ->> 'displayName') ORDER BY g.seq) \
         FROM members m JOIN resources g ON g.tenant_id = m.tenant_id AND g.id = m.group_id \
         WHERE m.tenant_id = r.tenant_id AND m.member_id = r.id)"
    };
}
const GROUPS_COL: &str = groups_col!();
// Rows are read by tenant and id alone (ids are unique across kinds, the
// `resources_id` index) and their kind checked after: with `kind = …` in
// the condition, a table without statistics yet (a bulk load, autovacuum
// off) was read through `resources_kind_seq`, every User of the tenant for
// one PATCH.
const SELECT_FOR_UPDATE: &str = "SELECT r.id, r.kind, r.doc, r.created, r.modified, r.version, r.seq FROM resources r \
     WHERE r.tenant_id = $1 AND r.id = $2 FOR UPDATE";
/// The same for a User, with its groups (for the answer).
const SELECT_USER_FOR_UPDATE: &str = concat!(
    "SELECT r.id, r.kind, r.doc, r.created, r.modified, r.version, r.seq, ",
    groups_col!(),
    " FROM resources r WHERE r.tenant_id = $1 AND r.id = $2 FOR UPDATE OF r"
);
const INSERT_RESOURCE: &str = "INSERT INTO resources (tenant_id, kind, id, user_name_ci, display_name_ci, external_id, version, created, modified, doc) \
     VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7, $8) RETURNING seq";
const UPDATE_RESOURCE: &str = "UPDATE resources SET user_name_ci = $1, display_name_ci = $2, external_id = $3, version = $4, modified = $5, doc = $6 \
     WHERE tenant_id = $7 AND id = $8";

/// The groups column of a row that has one (the eighth).
fn groups_from_row(r: &Row) -> Result<Option<Vec<Reference>>, TxError> {
    if r.len() < 8 {
        return Ok(None);
    }
    let Some(Value::Array(pairs)) = r.try_get::<_, Option<Value>>(7)? else {
        return Ok(Some(Vec::new()));
    };
    let groups = pairs
        .iter()
        .filter_map(|p| {
            let value = p.get(0)?.as_str()?.to_string();
            let display = p.get(1).and_then(Value::as_str).map(str::to_string);
            Some(Reference {
                value,
                kind: "Group".into(),
                display,
            })
        })
        .collect();
    Ok(Some(groups))
}

fn record_from_row(r: &Row) -> Result<Record, TxError> {
    let kind: String = r.try_get(1)?;
    let doc = match r.try_get::<_, Value>(2)? {
        Value::Object(m) => m,
        other => return Err(StoreError::Internal(format!("stored document is not an object: {other}")).into()),
    };
    let version: i64 = r.try_get(5)?;
    Ok(Record {
        groups: if kind == "User" { groups_from_row(r)? } else { None },
        seq: r.try_get(6)?,
        id: r.try_get(0)?,
        kind: if kind == "Group" { Kind::Group } else { Kind::User },
        doc,
        created: r.try_get(3)?,
        last_modified: r.try_get(4)?,
        version: u64::try_from(version).unwrap_or(0),
    })
}

fn version_param(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Applies membership changes; returns how many rows changed.
async fn apply_member_ops(
    tx: &impl deadpool_postgres::GenericClient,
    tenant: TenantId,
    group: &str,
    ops: &[MemberOp],
) -> Result<(u64, MemberDelta), TxError> {
    let mut delta = MemberDelta::new();
    if ops.is_empty() {
        return Ok((0, delta));
    }
    // The net effect, so that a PATCH or PUT leaving the members as they
    // were changes nothing (and no version).
    let net = scimitar_protocol::patch::net_member_changes(ops);
    let mut changed = 0;
    // FOR SHARE: a concurrent delete of the member waits for this
    // transaction (and then removes the new row), or wins and this one sees
    // the member gone. No dangling members.
    let kind_of = tx
        .prepare_cached("SELECT kind FROM resources WHERE tenant_id = $1 AND id = $2 FOR SHARE")
        .await?;
    let mut resolved = Vec::with_capacity(net.add.len());
    for m in &net.add {
        if m.value == group {
            return Err(ScimError::invalid_value("a group cannot be a member of itself").into());
        }
        let Some(row) = tx.query_opt(&kind_of, &[&tenant, &m.value]).await? else {
            return Err(ScimError::invalid_value(format!(
                "member '{}' is not a User or Group of this tenant",
                m.value
            ))
            .into());
        };
        let kind: String = row.try_get(0)?;
        if let Some(k) = &m.kind
            && !k.eq_ignore_ascii_case(&kind)
        {
            return Err(ScimError::invalid_value(format!("member '{}' is a {kind}, not a {k}", m.value)).into());
        }
        resolved.push((m, kind));
    }
    let delete = tx
        .prepare_cached(
            "DELETE FROM members WHERE tenant_id = $1 AND group_id = $2 AND member_id = $3 RETURNING member_type",
        )
        .await?;
    let mut to_remove: Vec<String> = Vec::new();
    if net.replace_all {
        let rows = crate::pg_query(
            tx,
            "SELECT member_id FROM members WHERE tenant_id = $1 AND group_id = $2",
            &[&tenant, &group],
        )
        .await?;
        for row in rows {
            let id: String = row.try_get(0)?;
            if !net.add.iter().any(|a| a.value == id) {
                to_remove.push(id);
            }
        }
    } else {
        to_remove.extend(net.remove.iter().cloned());
    }
    for id in to_remove {
        if let Some(row) = tx.query_opt(&delete, &[&tenant, &group, &id]).await? {
            changed += 1;
            delta.push((false, id, row.try_get(0)?));
        }
    }
    // An add keeps a display name given earlier unless it brings one; a
    // replace sets exactly what it was given.
    // `xmax = 0`: the row was inserted, not updated (a member added, not
    // one whose display changed).
    let upsert = if net.replace_all {
        "INSERT INTO members (tenant_id, group_id, member_id, member_type, display) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, group_id, member_id) DO UPDATE SET display = excluded.display \
         WHERE excluded.display IS DISTINCT FROM members.display RETURNING (xmax = 0)"
    } else {
        "INSERT INTO members (tenant_id, group_id, member_id, member_type, display) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, group_id, member_id) DO UPDATE SET display = excluded.display \
         WHERE excluded.display IS NOT NULL AND excluded.display IS DISTINCT FROM members.display RETURNING (xmax = 0)"
    };
    let insert = tx.prepare_cached(upsert).await?;
    for (m, kind) in resolved {
        if let Some(row) = tx
            .query_opt(&insert, &[&tenant, &group, &m.value, &kind, &m.display])
            .await?
        {
            changed += 1;
            if row.try_get::<_, bool>(0)? {
                delta.push((true, m.value.clone(), kind));
            }
        }
    }
    Ok((changed, delta))
}

/// Takes `values` for the resource `id` (or keeps them, if it has them);
/// returns those another resource has. The primary key decides: a
/// concurrent writer of the same value waits for this transaction.
async fn take_unique(
    tx: &impl deadpool_postgres::GenericClient,
    tenant: TenantId,
    kind: Kind,
    id: &str,
    values: &[UniqueValue],
) -> Result<Vec<UniqueValue>, TxError> {
    let mut taken = Vec::new();
    if values.is_empty() {
        return Ok(taken);
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO unique_values (tenant_id, kind, attribute, value, resource_id) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, kind, attribute, value) DO UPDATE SET resource_id = excluded.resource_id \
             WHERE unique_values.resource_id = excluded.resource_id",
        )
        .await?;
    for v in values {
        let n = tx
            .execute(&stmt, &[&tenant, &kind.as_str(), &v.attribute, &v.value, &id])
            .await?;
        if n == 0 {
            taken.push(v.clone());
        }
    }
    Ok(taken)
}

/// Applies a write's unique values: `Conflict` (naming the attribute) if
/// another resource has one it takes.
async fn apply_unique(
    tx: &impl deadpool_postgres::GenericClient,
    tenant: TenantId,
    kind: Kind,
    id: &str,
    change: &UniqueChange,
) -> Result<(), TxError> {
    if change.is_empty() {
        return Ok(());
    }
    let release = tx
        .prepare_cached(
            "DELETE FROM unique_values WHERE tenant_id = $1 AND kind = $2 AND attribute = $3 AND value = $4 AND resource_id = $5",
        )
        .await?;
    for v in &change.remove {
        tx.execute(&release, &[&tenant, &kind.as_str(), &v.attribute, &v.value, &id])
            .await?;
    }
    match take_unique(tx, tenant, kind, id, &change.add).await?.first() {
        Some(v) => Err(StoreError::Conflict(v.attribute.clone()).into()),
        None => Ok(()),
    }
}

const LIST_MEMBERS: &str = "SELECT m.member_id, m.member_type, COALESCE(m.display, r.doc ->> 'displayName', r.doc ->> 'userName') \
     FROM members m LEFT JOIN resources r ON r.tenant_id = m.tenant_id AND r.id = m.member_id \
     WHERE m.tenant_id = $1 AND m.group_id = $2 ORDER BY m.member_id COLLATE \"C\"";

fn reference_from_row(r: &Row) -> Result<Reference, tokio_postgres::Error> {
    Ok(Reference {
        value: r.try_get(0)?,
        kind: r.try_get(1)?,
        display: r.try_get(2)?,
    })
}

/// Member access for [`ModifyFn`], which is synchronous: the first run gets
/// no list and records that it asked; the store then loads the members
/// (inside the same transaction) and runs the function again. Plain
/// add/remove operations never ask, so they stay O(1) in the group size.
struct Preloaded {
    members: Option<Vec<Value>>,
    asked: bool,
}

impl MemberAccess for Preloaded {
    fn list(&mut self) -> Result<Vec<Value>, ScimError> {
        match &self.members {
            Some(m) => Ok(m.clone()),
            None => {
                self.asked = true;
                Err(ScimError::internal("member list not loaded yet"))
            }
        }
    }
}
/// Statements a connection keeps prepared for lists (one per filter
/// shape); past this, the cache starts again.
const STATEMENT_CACHE_MAX: usize = 256;

#[async_trait]
impl ResourceStore for PostgresStore {
    async fn create(&self, tenant: TenantId, new: NewResource) -> StoreResult<Record> {
        let NewResource {
            kind,
            id,
            doc,
            members,
            created: now,
            activity,
            unique,
            events,
        } = new;
        let unique = UniqueChange {
            add: unique,
            remove: vec![],
        };
        let (id, now) = (id.as_str(), now.as_str());
        let (un, dn, ext) = indexed_columns(kind, &doc);
        let json = Json(&doc);
        let ops = if members.is_empty() {
            Vec::new()
        } else {
            vec![MemberOp::Add(members)]
        };
        let seq = in_pipelined_tx!(self, |tx| {
            async {
                let c = tx.client()?;
                let insert_stmt = c.prepare_cached(INSERT_RESOURCE).await?;
                let activity_stmt = crate::prepare_activity(c).await?;
                // With nothing more to do, the whole create is one round
                // trip: BEGIN, the row, its activity entry, COMMIT. Unique
                // values and members need their results before the COMMIT.
                let last = unique.is_empty() && ops.is_empty();
                let rows = if last {
                    EventRows::new(events.clone().all(&MemberDelta::new()))
                } else {
                    EventRows::new(Vec::new())
                };
                let insert = async {
                    c.query_one(
                        &insert_stmt,
                        &[&tenant, &kind.as_str(), &id, &un, &dn, &ext, &now, &json],
                    )
                    .await
                };
                let entry = async {
                    match &activity {
                        Some(e) => crate::run_activity(c, &activity_stmt, e).await,
                        None => Ok(()),
                    }
                };
                let stored = rows.insert(c, tenant);
                let commit = async { if last { c.batch_execute("COMMIT").await } else { Ok(()) } };
                tx.opening();
                let (begun, row, entry_done, stored, committed) =
                    tokio::join!(c.batch_execute(crate::BEGIN), insert, entry, stored, commit);
                if last {
                    tx.closed();
                }
                // The first failure in the order sent is the cause (a taken
                // userName); later ones only say the transaction was aborted.
                begun?;
                let seq = row?.try_get::<_, i64>(0)?;
                entry_done?;
                stored?;
                committed?;
                if !last {
                    apply_unique(c, tenant, kind, id, &unique).await?;
                    let (_, delta) = apply_member_ops(c, tenant, id, &ops).await?;
                    EventRows::new(events.clone().all(&delta)).insert(c, tenant).await?;
                    tx.commit().await?;
                }
                Ok(seq)
            }
            .await
        })?;
        Ok(Record {
            // A new User belongs to no group yet.
            groups: (kind == Kind::User).then(Vec::new),
            seq,
            id: id.to_string(),
            kind,
            doc,
            created: now.to_string(),
            last_modified: now.to_string(),
            version: 1,
        })
    }

    async fn get(&self, tenant: TenantId, kind: Kind, id: &str) -> StoreResult<Option<Record>> {
        let client = self.pool.get().await.map_err(internal)?;
        // A User comes with its groups (see `GROUPS_COL`); the kind is
        // checked here (see `SELECT_FOR_UPDATE`).
        let sql = match kind {
            Kind::User => {
                format!("SELECT {RECORD_COLS}, {GROUPS_COL} FROM resources r WHERE r.tenant_id = $1 AND r.id = $2")
            }
            Kind::Group => format!("SELECT {RECORD_COLS} FROM resources r WHERE r.tenant_id = $1 AND r.id = $2"),
        };
        let row = crate::pg_query_opt(&client, &sql, &[&tenant, &id])
            .await
            .map_err(db_error)?;
        let rec = row
            .as_ref()
            .map(record_from_row)
            .transpose()
            .map_err(TxError::into_store)?;
        Ok(rec.filter(|r| r.kind == kind))
    }

    async fn modify(
        &self,
        tenant: TenantId,
        kind: Kind,
        id: &str,
        if_match: Option<u64>,
        now: &str,
        f: ModifyFn,
    ) -> StoreResult<Record> {
        in_pipelined_tx!(self, |tx| {
            async {
                let c = tx.client()?;
                let select = c
                    .prepare_cached(if kind == Kind::User {
                        SELECT_USER_FOR_UPDATE
                    } else {
                        SELECT_FOR_UPDATE
                    })
                    .await?;
                // The row lock makes concurrent writers of this resource (in
                // any process) queue here and each see the previous one's
                // result. BEGIN goes out with it.
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant, &id];
                tx.opening();
                let (begun, row) = tokio::join!(c.batch_execute(crate::BEGIN), c.query_opt(&select, &params));
                begun?;
                let current = record_from_row(&row?.ok_or(StoreError::NotFound)?)?;
                if current.kind != kind {
                    return Err(StoreError::NotFound.into());
                }
                if if_match.is_some_and(|v| v != current.version) {
                    return Err(StoreError::PreconditionFailed.into());
                }
                let mut access = Preloaded {
                    members: None,
                    asked: false,
                };
                let mut result = f(&current, &mut access);
                if access.asked {
                    let rows = crate::pg_query(c, LIST_MEMBERS, &[&tenant, &id]).await?;
                    let list = rows
                        .iter()
                        .map(|r| {
                            reference_from_row(r)
                                .map(|m| serde_json::json!({"value": m.value, "type": m.kind, "display": m.display}))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    access.members = Some(list);
                    result = f(&current, &mut access);
                }
                let mutation = result?;
                let (changed_members, delta) = if kind == Kind::Group {
                    apply_member_ops(c, tenant, id, &mutation.member_ops).await?
                } else {
                    (0, MemberDelta::new())
                };
                if mutation.doc == current.doc && changed_members == 0 {
                    tx.commit().await?;
                    return Ok(current); // nothing changed: same version
                }
                let (un, dn, ext) = indexed_columns(kind, &mutation.doc);
                let version = current.version + 1;
                let json = Json(&mutation.doc);
                let version_p = version_param(version);
                let update_stmt = c.prepare_cached(UPDATE_RESOURCE).await?;
                let activity_stmt = crate::prepare_activity(c).await?;
                // Unique values need their answers before the COMMIT; without
                // them the update, its activity entry and the COMMIT go out
                // together.
                let last = mutation.unique.is_empty();
                let update = async {
                    c.execute(&update_stmt, &[&un, &dn, &ext, &version_p, &now, &json, &tenant, &id])
                        .await
                };
                let activity = async {
                    match &mutation.activity {
                        Some(e) => crate::run_activity(c, &activity_stmt, e).await,
                        None => Ok(()),
                    }
                };
                let rows = EventRows::new(mutation.events.clone().all(&delta));
                let stored = rows.insert(c, tenant);
                let commit = async { if last { c.batch_execute("COMMIT").await } else { Ok(()) } };
                let (updated, activity_done, stored, committed) = tokio::join!(update, activity, stored, commit);
                if last {
                    tx.closed();
                }
                // The first failure in the order sent is the cause.
                updated?;
                activity_done?;
                stored?;
                committed?;
                if !last {
                    apply_unique(c, tenant, kind, id, &mutation.unique).await?;
                    tx.commit().await?;
                }
                Ok(Record {
                    groups: current.groups,
                    seq: current.seq,
                    id: id.to_string(),
                    kind,
                    doc: mutation.doc,
                    created: current.created,
                    last_modified: now.to_string(),
                    version,
                })
            }
            .await
        })
    }

    async fn delete_with_events(
        &self,
        tenant: TenantId,
        kind: Kind,
        id: &str,
        if_match: Option<u64>,
        events: Option<DeleteEventsFn>,
    ) -> StoreResult<()> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            let row = crate::pg_query_opt(&tx, SELECT_FOR_UPDATE, &[&tenant, &id]).await?;
            // The kind checked here, as in `modify`.
            let current = record_from_row(&row.ok_or(StoreError::NotFound)?)?;
            if current.kind != kind {
                return Err(StoreError::NotFound.into());
            }
            if if_match.is_some_and(|v| v != current.version) {
                return Err(StoreError::PreconditionFailed.into());
            }
            if let Some(f) = &events {
                EventRows::new(f(&current).map_err(StoreError::Invalid)?)
                    .insert(&tx, tenant)
                    .await?;
            }
            crate::pg_execute(
                &tx,
                "DELETE FROM resources WHERE tenant_id = $1 AND id = $2",
                &[&tenant, &id],
            )
            .await?;
            // A deleted user or group leaves every group; a deleted group's
            // membership list goes with it.
            crate::pg_execute(
                &tx,
                "DELETE FROM members WHERE tenant_id = $1 AND (member_id = $2 OR group_id = $2)",
                &[&tenant, &id],
            )
            .await?;
            crate::pg_execute(
                &tx,
                "DELETE FROM unique_values WHERE tenant_id = $1 AND resource_id = $2",
                &[&tenant, &id],
            )
            .await?;
        })
    }

    async fn list(&self, tenant: TenantId, q: ListQuery) -> StoreResult<Page> {
        let mut b = sql::Builder::default();
        let t = b.bind(tenant, "bigint");
        // The kind as a literal, not a parameter: a generic plan can then
        // use the partial indexes (`users_user_name … WHERE kind = 'User'`).
        // `as_str` is one of two fixed words.
        b.push(&format!(
            " FROM resources r WHERE r.tenant_id = {t} AND r.kind = '{}'",
            q.kind.as_str()
        ));
        if let Some(f) = &q.filter {
            b.push(" AND ");
            sql::lower_filter(&mut b, &q.rt, q.kind, f)?;
        }
        // A lookup through a unique or selective index (`userName eq`,
        // `id eq`, …, alone or ANDed with other terms) is bounded work: it
        // needs neither the statement timeout nor a transaction, and goes
        // out as one statement (PostgreSQL's cost per lookup was mostly the
        // messages around it).
        let lookup = matches!(
            scimitar_protocol::plan::work(&q.rt, q.kind, q.filter.as_ref(), q.sort.is_some()),
            scimitar_protocol::plan::Work::Lookup
        );
        let count_sql = format!("SELECT count(*){}", b.sql);
        let n_where = b.params.len();
        // A User found by a lookup brings its groups along.
        let mut select = if lookup && q.kind == Kind::User {
            format!("SELECT {RECORD_COLS}, {GROUPS_COL}{}", b.sql)
        } else {
            format!("SELECT {RECORD_COLS}{}", b.sql)
        };
        b.sql.clear();
        let limit = i64::try_from(q.count).unwrap_or(i64::MAX);
        match q.cursor {
            // Keyset paging on the primary key: the same cost for every page.
            // One extra row tells whether more follow.
            Some(pos) => {
                let (cmp, order, key) = match pos {
                    CursorPos::After(k) => (">", "ASC", k),
                    CursorPos::Before(k) => ("<", "DESC", k),
                };
                let key = b.bind(key, "bigint");
                let lim = b.bind(limit.saturating_add(1), "bigint");
                b.push(&format!(" AND r.seq {cmp} {key} ORDER BY r.seq {order} LIMIT {lim}"));
            }
            None => {
                match &q.sort {
                    Some(s) => sql::order_by(&mut b, &q.rt, q.kind, &s.by, s.order)?,
                    // A lookup finds a row or a few through its index and
                    // sorts them. Ordered by the column itself, the planner
                    // may instead walk every User in order on
                    // `resources_kind_seq` and filter them, which it does
                    // while the table has no statistics yet (15-55 ms for
                    // 10,000 users instead of 0.1).
                    None if lookup => b.push(" ORDER BY r.seq + 0"),
                    None => b.push(" ORDER BY r.seq"),
                }
                if lookup && q.start_index <= 1 {
                    // The first page of a lookup with its limit written out
                    // (a number, not input text): with `LIMIT $n` the
                    // generic plan was costed for an unknown limit, looked
                    // dearer than a custom one, and PostgreSQL planned the
                    // statement anew on every execution (0.3-0.9 ms each;
                    // lookups at 60 % of the rate on a fresh table).
                    b.push(&format!(" LIMIT {limit}"));
                } else {
                    let lim = b.bind(limit, "bigint");
                    let offset = b.bind(
                        i64::try_from(q.start_index.saturating_sub(1)).unwrap_or(i64::MAX),
                        "bigint",
                    );
                    b.push(&format!(" LIMIT {lim} OFFSET {offset}"));
                }
            }
        }
        select.push_str(&b.sql);
        let params = sql::refs(&b.params);
        let count_params = params.get(..n_where).unwrap_or(&params);
        // Read-only, so it never fails to serialise. Each statement may run
        // for the query time limit, and stops when this future is dropped.
        let limit = self.query_time_ms.load(std::sync::atomic::Ordering::Relaxed);
        let conn = crate::Abandonable::new(self.pool.get().await.map_err(internal)?);
        let c = conn.client()?;
        let begin = format!("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = {limit}");
        let first_page = q.cursor.is_none() && q.start_index <= 1 && q.count > 0;
        // Prepared once per connection and kept: PostgreSQL plans a new
        // statement on every execution (half a millisecond for a lookup,
        // ten times its execution), a kept one settles on a generic plan
        // (the kind is a literal, so it can use the partial indexes). The
        // cache is bounded: filters come in endless shapes.
        if c.statement_cache.size() >= STATEMENT_CACHE_MAX {
            c.statement_cache.clear();
        }
        let page = async {
            // Requests polled together are pipelined by tokio-postgres: the
            // transaction's start, its statements and its end go out at once.
            // An index lookup is one statement alone.
            let (rows, total) = if first_page && lookup {
                let stmt = c.prepare_cached(&select).await?;
                let rows = c.query(&stmt, &params).await?;
                let total = if rows.len() < q.count {
                    rows.len() as u64
                } else {
                    let count = c.prepare_cached(&count_sql).await?;
                    let n = c.query_one(&count, count_params).await?;
                    u64::try_from(n.try_get::<_, i64>(0)?)
                        .unwrap_or(0)
                        .max(rows.len() as u64)
                };
                (rows, total)
            } else if first_page {
                // The first page alone, in one round trip: one that is not
                // full is its own total (as on SQLite; a lookup by userName
                // is such a page); a full one is counted in a second round
                // trip, a moment later, and never below what it shows.
                let stmt = c.prepare_cached(&select).await?;
                // Every answer awaited; the first failure in the order sent is
                // the cause (later statements only see an aborted transaction).
                let (began, rows, ended) = tokio::join!(
                    c.batch_execute(&begin),
                    c.query(&stmt, &params),
                    c.batch_execute("COMMIT")
                );
                began?;
                let rows = rows?;
                ended?;
                let total = if rows.len() < q.count {
                    rows.len() as u64
                } else {
                    let count = c.prepare_cached(&count_sql).await?;
                    let (began, n, ended) = tokio::join!(
                        c.batch_execute(&begin),
                        c.query_one(&count, count_params),
                        c.batch_execute("COMMIT")
                    );
                    began?;
                    let n = n?;
                    ended?;
                    u64::try_from(n.try_get::<_, i64>(0)?)
                        .unwrap_or(0)
                        .max(rows.len() as u64)
                };
                (rows, total)
            } else {
                // Other pages, cursors and counts: the page and the total
                // from one snapshot, so that they agree.
                let wants_rows = q.cursor.is_some() || q.count > 0;
                let stmt = if wants_rows {
                    Some(c.prepare_cached(&select).await?)
                } else {
                    None
                };
                let count = c.prepare_cached(&count_sql).await?;
                let (began, rows, n, ended) = tokio::join!(
                    c.batch_execute(&begin),
                    async {
                        match &stmt {
                            Some(stmt) => c.query(stmt, &params).await,
                            None => Ok(Vec::new()),
                        }
                    },
                    c.query_one(&count, count_params),
                    c.batch_execute("COMMIT")
                );
                began?;
                let rows = rows?;
                let n = n?;
                ended?;
                (rows, u64::try_from(n.try_get::<_, i64>(0)?).unwrap_or(0))
            };
            let mut records = Vec::with_capacity(rows.len());
            for row in &rows {
                records.push(record_from_row(row)?);
            }
            let mut has_more = false;
            if q.cursor.is_some() {
                if records.len() > q.count {
                    has_more = true;
                    records.truncate(q.count);
                }
                if matches!(q.cursor, Some(CursorPos::Before(_))) {
                    records.reverse();
                }
            }
            Ok::<_, TxError>(Page {
                total,
                records,
                has_more,
            })
        }
        .await
        .map_err(TxError::into_store)?;
        // Only now may the connection serve others: on an error above it is
        // dropped with its transaction (see `Abandonable`).
        conn.finish();
        Ok(page)
    }

    async fn resource_count(&self, tenant: TenantId, kind: Kind, at_most: u64) -> StoreResult<u64> {
        // An index-only count that stops at `at_most`: no more work than
        // the budget it is checked against needs.
        let client = self.pool.get().await.map_err(internal)?;
        let limit = i64::try_from(at_most).unwrap_or(i64::MAX);
        let row = crate::pg_query_one(
            &client,
            "SELECT count(*) FROM (SELECT 1 FROM resources WHERE tenant_id = $1 AND kind = $2 LIMIT $3) t",
            &[&tenant, &kind.as_str(), &limit],
        )
        .await
        .map_err(db_error)?;
        let n: i64 = row.try_get(0).map_err(db_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn refresh_statistics(&self) -> StoreResult<()> {
        let client = self.pool.get().await.map_err(internal)?;
        client
            .batch_execute("ANALYZE resources; ANALYZE members; ANALYZE unique_values")
            .await
            .map_err(db_error)
    }

    async fn refresh_stale_statistics(&self) -> StoreResult<Vec<String>> {
        // Autovacuum's own rule (50 rows + 10 %), with a floor that keeps
        // small tenants' churn from analysing again and again.
        let client = self.pool.get().await.map_err(internal)?;
        let rows = crate::pg_query(
            &client,
            "SELECT relname FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() AND relname IN ('resources', 'members', 'unique_values') \
             AND n_mod_since_analyze > 1000 + 0.1 * GREATEST(n_live_tup, 0)",
            &[],
        )
        .await
        .map_err(db_error)?;
        let mut analysed = Vec::new();
        for row in rows {
            let table: String = row.try_get(0).map_err(db_error)?;
            // One of the three names above, never input.
            client
                .batch_execute(&format!("ANALYZE {table}"))
                .await
                .map_err(db_error)?;
            analysed.push(table);
        }
        Ok(analysed)
    }

    async fn members(&self, tenant: TenantId, group: &str) -> StoreResult<Vec<Reference>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = crate::pg_query(&client, LIST_MEMBERS, &[&tenant, &group])
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(reference_from_row)
            .collect::<Result<_, _>>()
            .map_err(db_error)
    }

    async fn groups_of(&self, tenant: TenantId, user: &str) -> StoreResult<Vec<Reference>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = crate::pg_query(
            &client,
            "SELECT m.group_id, 'Group', g.doc ->> 'displayName' FROM members m \
                 JOIN resources g ON g.tenant_id = m.tenant_id AND g.id = m.group_id \
                 WHERE m.tenant_id = $1 AND m.member_id = $2 ORDER BY g.seq",
            &[&tenant, &user],
        )
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(reference_from_row)
            .collect::<Result<_, _>>()
            .map_err(db_error)
    }

    async fn display_name(&self, tenant: TenantId, id: &str) -> StoreResult<Option<String>> {
        let client = self.pool.get().await.map_err(internal)?;
        let row = crate::pg_query_opt(
            &client,
            "SELECT doc ->> 'displayName' FROM resources WHERE tenant_id = $1 AND id = $2",
            &[&tenant, &id],
        )
        .await
        .map_err(db_error)?;
        Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
    }

    async fn member_counts(&self, tenant: TenantId, groups: &[String]) -> StoreResult<Vec<(String, u64)>> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await.map_err(internal)?;
        let rows = crate::pg_query(
            &client,
            "SELECT group_id, count(*) FROM members WHERE tenant_id = $1 AND group_id = ANY($2) GROUP BY group_id",
            &[&tenant, &groups],
        )
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, u64::try_from(r.try_get::<_, i64>(1)?).unwrap_or(0))))
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(db_error)
    }

    async fn cleartext_passwords(&self, tenant: TenantId, after: i64, limit: usize) -> StoreResult<Vec<Record>> {
        let client = self.pool.get().await.map_err(internal)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = crate::pg_query(
            &client,
            &format!(
                "SELECT {RECORD_COLS} FROM resources r WHERE r.tenant_id = $1 AND r.kind = 'User' AND r.seq > $2 \
                     AND r.doc -> 'password' IS NOT NULL \
                     AND left(r.doc ->> 'password', 7) IS DISTINCT FROM '$argon2' ORDER BY r.seq LIMIT $3"
            ),
            &[&tenant, &after, &limit],
        )
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()
            .map_err(TxError::into_store)
    }

    async fn claim_unique(
        &self,
        tenant: TenantId,
        kind: Kind,
        id: &str,
        values: Vec<UniqueValue>,
    ) -> StoreResult<Vec<UniqueValue>> {
        in_tx!(self, IsolationLevel::ReadCommitted, |tx| {
            take_unique(&tx, tenant, kind, id, &values).await?
        })
    }

    async fn drop_unique_values(&self, tenant: TenantId, urn: &str) -> StoreResult<()> {
        let prefix = format!("{urn}:");
        let len = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
        let client = self.pool.get().await.map_err(internal)?;
        crate::pg_execute(
            &client,
            "DELETE FROM unique_values WHERE tenant_id = $1 AND left(attribute, $2) = $3",
            &[&tenant, &len, &prefix],
        )
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn set_unique_backfill(&self, tenant: TenantId, kind: Kind, pending: bool) -> StoreResult<()> {
        let sql = if pending {
            "INSERT INTO unique_backfill (tenant_id, kind) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM unique_backfill WHERE tenant_id = $1 AND kind = $2"
        };
        let client = self.pool.get().await.map_err(internal)?;
        client
            .execute(sql, &[&tenant, &kind.as_str()])
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn unique_backfills(&self) -> StoreResult<Vec<(TenantId, Kind)>> {
        let client = self.pool.get().await.map_err(internal)?;
        let rows = crate::pg_query(
            &client,
            "SELECT tenant_id, kind FROM unique_backfill ORDER BY tenant_id, kind",
            &[],
        )
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get(1)?;
                Ok((r.try_get(0)?, if kind == "Group" { Kind::Group } else { Kind::User }))
            })
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(db_error)
    }

    async fn members_page(
        &self,
        tenant: TenantId,
        group: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Reference>> {
        let client = self.pool.get().await.map_err(internal)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = crate::pg_query(&client, "SELECT member_id, member_type, display FROM members \
                 WHERE tenant_id = $1 AND group_id = $2 AND member_id COLLATE \"C\" > $3 ORDER BY member_id COLLATE \"C\" LIMIT $4",
                &[&tenant, &group, &after.unwrap_or_default(), &limit],
            )
            .await
            .map_err(db_error)?;
        rows.iter()
            .map(|r| {
                Ok(Reference {
                    value: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    display: r.try_get(2)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(db_error)
    }
}
