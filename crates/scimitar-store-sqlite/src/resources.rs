//! Users, Groups and memberships, and list queries.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use scimitar_protocol::ScimError;
use scimitar_protocol::output::Reference;
use scimitar_protocol::patch::{MemberAccess, MemberOp};
use scimitar_store::{
    CursorPos, DeleteEventsFn, IndexedColumns, Kind, ListQuery, MemberDelta, ModifyFn, NewResource, Page, Record,
    ResourceStore, StoreError, StoreResult, TenantId, UniqueChange, UniqueValue, indexed_columns,
};
use serde_json::{Map, Value};

use crate::events::insert_events;
use crate::{SqliteStore, exec, insert_activity, internal, row, serialise_changes, sql};

const RECORD_COLS: &str = "r.id, r.kind, r.doc, r.created, r.modified, r.version, r.seq";

fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let kind: String = r.get(1)?;
    let doc: String = r.get(2)?;
    let doc: Map<String, Value> = serde_json::from_str(&doc)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e)))?;
    let version: i64 = r.get(5)?;
    Ok(Record {
        groups: None,
        seq: r.get(6)?,
        id: r.get(0)?,
        kind: if kind == "Group" { Kind::Group } else { Kind::User },
        doc,
        created: r.get(3)?,
        last_modified: r.get(4)?,
        version: u64::try_from(version).unwrap_or(0),
    })
}

/// The indexed columns of `new`, or `None` if they are those of `old`.
fn changed_columns(kind: Kind, old: &Map<String, Value>, new: &Map<String, Value>) -> Option<IndexedColumns> {
    let cols = indexed_columns(kind, new);
    (cols != indexed_columns(kind, old)).then_some(cols)
}

/// The next version of a resource row.
struct NextVersion<'a> {
    kind: Kind,
    id: &'a str,
    /// The indexed columns, if they changed (`None`: left out, so that
    /// SQLite does not rewrite their index entries).
    cols: Option<IndexedColumns>,
    /// The version the change was computed from.
    read: u64,
    now: &'a str,
    /// The document as JSON text.
    text: &'a str,
}

/// Stores a resource's next version if its version is still the one read;
/// says how many rows changed (0: it moved).
fn update_resource(tx: &Connection, tenant: TenantId, next: NextVersion<'_>) -> StoreResult<usize> {
    let NextVersion {
        kind,
        id,
        cols,
        read,
        now,
        text,
    } = next;
    let v = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
    match cols {
        None => exec(
            tx,
            "UPDATE resources SET version = ?, modified = ?, doc = ? WHERE tenant_id = ? AND id = ? AND version = ?",
            params![v(read + 1), now, text, tenant, id, v(read)],
        )
        .map_err(internal),
        Some((un, dn, ext)) => exec(
            tx,
            "UPDATE resources SET user_name_ci = ?, display_name_ci = ?, external_id = ?, version = ?, modified = ?, doc = ? \
             WHERE tenant_id = ? AND id = ? AND version = ?",
            params![un, dn, ext, v(read + 1), now, text, tenant, id, v(read)],
        )
        .map_err(|e| map_unique(e, kind)),
    }
}

fn map_unique(e: rusqlite::Error, kind: Kind) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, msg) = &e
        && f.code == rusqlite::ErrorCode::ConstraintViolation
    {
        let m = msg.clone().unwrap_or_default();
        if m.contains("user_name_ci") {
            return StoreError::Conflict("userName".into());
        }
        if m.contains("display_name_ci") {
            return StoreError::Conflict("displayName".into());
        }
        if m.contains("resources.id") || m.contains("resources.tenant_id, resources.id") {
            return StoreError::Conflict("id".into());
        }
        return StoreError::Conflict(if kind == Kind::User {
            "userName".into()
        } else {
            "displayName".into()
        });
    }
    internal(e)
}

fn get_record(c: &Connection, tenant: TenantId, kind: Kind, id: &str) -> StoreResult<Option<Record>> {
    row(
        c,
        &format!(
            "SELECT {RECORD_COLS} FROM resources r WHERE r.tenant_id = ? AND r.kind = '{}' AND r.id = ?",
            kind.as_str()
        ),
        params![tenant, id],
        record_from_row,
    )
    .optional()
    .map_err(internal)
}

/// Applies membership changes; returns how many memberships changed (so a
/// PATCH or PUT that leaves the members as they were changes no version).
fn apply_member_ops(
    tx: &Connection,
    tenant: TenantId,
    group: &str,
    ops: &[MemberOp],
) -> StoreResult<(usize, MemberDelta)> {
    let mut delta = MemberDelta::new();
    if ops.is_empty() {
        return Ok((0, delta));
    }
    let net = scimitar_protocol::patch::net_member_changes(ops);
    let mut changed = 0;
    let mut kind_of = tx
        .prepare_cached("SELECT kind FROM resources WHERE tenant_id = ? AND id = ?")
        .map_err(internal)?;
    let mut resolved = Vec::with_capacity(net.add.len());
    for m in &net.add {
        if m.value == group {
            return Err(ScimError::invalid_value("a group cannot be a member of itself").into());
        }
        let kind: Option<String> = kind_of
            .query_row(params![tenant, m.value], |r| r.get(0))
            .optional()
            .map_err(internal)?;
        let Some(kind) = kind else {
            return Err(ScimError::invalid_value(format!(
                "member '{}' is not a User or Group of this tenant",
                m.value
            ))
            .into());
        };
        if let Some(k) = &m.kind
            && !k.eq_ignore_ascii_case(&kind)
        {
            return Err(ScimError::invalid_value(format!("member '{}' is a {kind}, not a {k}", m.value)).into());
        }
        resolved.push((m, kind));
    }
    let mut delete = tx
        .prepare_cached(
            "DELETE FROM members WHERE tenant_id = ? AND group_id = ? AND member_id = ? RETURNING member_type",
        )
        .map_err(internal)?;
    let mut remove = |id: &str| -> StoreResult<()> {
        let kind: Option<String> = delete
            .query_row(params![tenant, group, id], |r| r.get(0))
            .optional()
            .map_err(internal)?;
        if let Some(kind) = kind {
            changed += 1;
            delta.push((false, id.to_string(), kind));
        }
        Ok(())
    };
    if net.replace_all {
        // Replace: remove exactly the current members that are not kept.
        let mut current = tx
            .prepare_cached("SELECT member_id FROM members WHERE tenant_id = ? AND group_id = ?")
            .map_err(internal)?;
        let ids: Vec<String> = current
            .query_map(params![tenant, group], |r| r.get(0))
            .map_err(internal)?
            .collect::<Result<_, _>>()
            .map_err(internal)?;
        for id in ids {
            if !net.add.iter().any(|a| a.value == id) {
                remove(&id)?;
            }
        }
    } else {
        for id in &net.remove {
            remove(id)?;
        }
    }
    // An add keeps a display name given earlier unless it brings one; a
    // replace sets exactly what it was given.
    let upsert = if net.replace_all {
        "INSERT INTO members (tenant_id, group_id, member_id, member_type, display) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (tenant_id, group_id, member_id) DO UPDATE SET display = excluded.display \
         WHERE excluded.display IS NOT members.display"
    } else {
        "INSERT INTO members (tenant_id, group_id, member_id, member_type, display) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (tenant_id, group_id, member_id) DO UPDATE SET display = excluded.display \
         WHERE excluded.display IS NOT NULL AND excluded.display IS NOT members.display"
    };
    let mut insert = tx.prepare_cached(upsert).map_err(internal)?;
    let mut exists = tx
        .prepare_cached("SELECT 1 FROM members WHERE tenant_id = ? AND group_id = ? AND member_id = ?")
        .map_err(internal)?;
    for (m, kind) in resolved {
        let was = exists.exists(params![tenant, group, m.value]).map_err(internal)?;
        changed += insert
            .execute(params![tenant, group, m.value, kind, m.display])
            .map_err(internal)?;
        if !was {
            delta.push((true, m.value.clone(), kind));
        }
    }
    Ok((changed, delta))
}

/// Takes `values` for the resource `id` (or keeps them, if it has them);
/// returns those another resource has. The primary key decides, inside
/// the writer's transaction.
fn take_unique(
    tx: &Connection,
    tenant: TenantId,
    kind: Kind,
    id: &str,
    values: &[UniqueValue],
) -> StoreResult<Vec<UniqueValue>> {
    let mut taken = Vec::new();
    if values.is_empty() {
        return Ok(taken);
    }
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO unique_values (tenant_id, kind, attribute, value, resource_id) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (tenant_id, kind, attribute, value) DO UPDATE SET resource_id = excluded.resource_id \
             WHERE unique_values.resource_id = excluded.resource_id",
        )
        .map_err(internal)?;
    for v in values {
        let n = stmt
            .execute(params![tenant, kind.as_str(), v.attribute, v.value, id])
            .map_err(internal)?;
        if n == 0 {
            taken.push(v.clone());
        }
    }
    Ok(taken)
}

/// Applies a write's unique values: `Conflict` (naming the attribute) if
/// another resource has one it takes.
fn apply_unique(tx: &Connection, tenant: TenantId, kind: Kind, id: &str, change: &UniqueChange) -> StoreResult<()> {
    if change.is_empty() {
        return Ok(());
    }
    let mut release = tx
        .prepare_cached(
            "DELETE FROM unique_values WHERE tenant_id = ? AND kind = ? AND attribute = ? AND value = ? AND resource_id = ?",
        )
        .map_err(internal)?;
    for v in &change.remove {
        release
            .execute(params![tenant, kind.as_str(), v.attribute, v.value, id])
            .map_err(internal)?;
    }
    match take_unique(tx, tenant, kind, id, &change.add)?.first() {
        Some(v) => Err(StoreError::Conflict(v.attribute.clone())),
        None => Ok(()),
    }
}

/// Member access inside the writer: the member list is never read there
/// (a large group's would hold every write of every tenant); asking for it
/// sends the modification off the writer (see `modify_with_members`).
#[derive(Default)]
struct Deferred {
    asked: bool,
}

impl MemberAccess for Deferred {
    fn list(&mut self) -> Result<Vec<Value>, ScimError> {
        self.asked = true;
        Err(ScimError::internal("the member list is read outside the writer"))
    }
}

/// A group's members, read beforehand.
struct Loaded(Vec<Value>);

impl MemberAccess for Loaded {
    fn list(&mut self) -> Result<Vec<Value>, ScimError> {
        Ok(self.0.clone())
    }
}

/// Rounds of `modify_with_members` before giving up on a group that keeps
/// changing under it.
const MEMBER_LIST_ATTEMPTS: usize = 5;

fn list_members(c: &Connection, tenant: TenantId, group: &str) -> StoreResult<Vec<Reference>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT m.member_id, m.member_type, COALESCE(m.display, json_extract(r.doc, '$.displayName'), json_extract(r.doc, '$.userName')) \
             FROM members m LEFT JOIN resources r ON r.tenant_id = m.tenant_id AND r.id = m.member_id \
             WHERE m.tenant_id = ? AND m.group_id = ? ORDER BY m.member_id",
        )
        .map_err(internal)?;
    let rows = stmt
        .query_map(params![tenant, group], |r| {
            Ok(Reference {
                value: r.get(0)?,
                kind: r.get(1)?,
                display: r.get(2)?,
            })
        })
        .map_err(internal)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(internal)
}
/// Stores a mutation computed from `current`, inside the writer: member
/// operations, the document (a new version if anything changed) and the
/// activity entry.
fn store_mutation(
    tx: &crate::Writer,
    tenant: TenantId,
    current: Record,
    mutation: scimitar_store::Mutation,
    now: &str,
) -> StoreResult<Record> {
    let kind = current.kind;
    let (changed_members, delta) = if kind == Kind::Group {
        apply_member_ops(tx, tenant, &current.id, &mutation.member_ops)?
    } else {
        (0, MemberDelta::new())
    };
    if mutation.doc == current.doc && changed_members == 0 {
        return Ok(current); // nothing changed: same version
    }
    let cols = changed_columns(kind, &current.doc, &mutation.doc);
    let text = serde_json::to_string(&mutation.doc).map_err(internal)?;
    let version = current.version + 1;
    let next = NextVersion {
        kind,
        id: &current.id,
        cols,
        read: current.version,
        now,
        text: &text,
    };
    update_resource(tx, tenant, next)?;
    apply_unique(tx, tenant, kind, &current.id, &mutation.unique)?;
    if let Some(e) = &mutation.activity {
        let changes = serde_json::to_string(&e.changes).map_err(internal)?;
        insert_activity(tx, e, &changes).map_err(internal)?;
    }
    insert_events(tx, tenant, mutation.events.all(&delta))?;
    Ok(Record {
        version,
        last_modified: now.to_string(),
        doc: mutation.doc,
        ..current
    })
}

impl SqliteStore {
    /// A Group modification that reads the member list (a PATCH removing
    /// members by a filter other than `value eq`): the list is read and the
    /// mutation computed on a reader, outside the single writer, which
    /// then only checks that the group is still at the version read and
    /// stores the result (else it starts over).
    async fn modify_with_members(
        &self,
        tenant: TenantId,
        kind: Kind,
        id: &str,
        if_match: Option<u64>,
        now: &str,
        f: ModifyFn,
    ) -> StoreResult<Record> {
        for _ in 0..MEMBER_LIST_ATTEMPTS {
            let (f2, id2) = (f.clone(), id.to_string());
            let (current, mutation) = self
                .scan(move |c| {
                    let current = get_record(c, tenant, kind, &id2)?.ok_or(StoreError::NotFound)?;
                    if if_match.is_some_and(|v| v != current.version) {
                        return Err(StoreError::PreconditionFailed);
                    }
                    let members = list_members(c, tenant, &id2)?
                        .into_iter()
                        .map(|m| serde_json::json!({"value": m.value, "type": m.kind, "display": m.display}))
                        .collect();
                    let mutation = f2(&current, &mut Loaded(members))?;
                    Ok((current, mutation))
                })
                .await?;
            let now2 = now.to_string();
            let stored = self
                .write(move |tx| {
                    let version: Option<i64> = row(
                        tx,
                        "SELECT version FROM resources WHERE tenant_id = ? AND id = ?",
                        params![tenant, current.id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(internal)?;
                    if version.and_then(|v| u64::try_from(v).ok()) != Some(current.version) {
                        return Ok(None); // changed since it was read: again
                    }
                    store_mutation(tx, tenant, current, mutation, &now2).map(Some)
                })
                .await?;
            if let Some(record) = stored {
                return Ok(record);
            }
        }
        Err(ScimError {
            retry_after: Some(1),
            ..ScimError::new(
                503,
                None,
                "the group kept changing while its members were read; retry the request",
            )
        }
        .into())
    }
}

#[async_trait]
impl ResourceStore for SqliteStore {
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
        // Serialised here, not on the writer thread that every write waits for.
        let (un, dn, ext) = indexed_columns(kind, &doc);
        let text = serde_json::to_string(&doc).map_err(internal)?;
        let log = activity.map(serialise_changes).transpose()?;
        // A Group's member events are known only once its members are in,
        // inside the writer.
        let (ready, events) = if members.is_empty() {
            (events.all(&MemberDelta::new()), None)
        } else {
            (Vec::new(), Some(events))
        };
        self.write(move |tx| {
            exec(
                tx,
                "INSERT INTO resources (tenant_id, kind, id, user_name_ci, display_name_ci, external_id, version, created, modified, doc) \
                 VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
                params![tenant, kind.as_str(), id, un, dn, ext, now, now, text],
            )
            .map_err(|e| map_unique(e, kind))?;
            let seq = tx.last_insert_rowid();
            let change = UniqueChange { add: unique, remove: vec![] };
            apply_unique(tx, tenant, kind, &id, &change)?;
            let delta = if members.is_empty() {
                MemberDelta::new()
            } else {
                apply_member_ops(tx, tenant, &id, &[MemberOp::Add(members)])?.1
            };
            if let Some((e, changes)) = &log {
                insert_activity(tx, e, changes).map_err(internal)?;
            }
            insert_events(tx, tenant, ready)?;
            if let Some(events) = events {
                insert_events(tx, tenant, events.all(&delta))?;
            }
            Ok(Record { groups: None, seq, id, kind, doc, created: now.clone(), last_modified: now, version: 1 })
        })
        .await
    }

    async fn get(&self, tenant: TenantId, kind: Kind, id: &str) -> StoreResult<Option<Record>> {
        let id = id.to_string();
        self.read_now(|c| get_record(c, tenant, kind, &id))
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
        if kind == Kind::User {
            // Users have no members: compute the change here, on the
            // caller's thread, and let the single writer only check that the
            // version is still the one read (retrying if it moved). The
            // writer thread is the bottleneck of every write, so it should
            // do no parsing, patching or serialising that others can do.
            for _ in 0..3 {
                let current = self
                    .read_now(|c| get_record(c, tenant, kind, id))?
                    .ok_or(StoreError::NotFound)?;
                if if_match.is_some_and(|v| v != current.version) {
                    return Err(StoreError::PreconditionFailed);
                }
                let mut mutation = f(&current, &mut scimitar_protocol::patch::NoMembers)?;
                if mutation.doc == current.doc {
                    return Ok(current); // nothing changed: same version
                }
                let log = mutation.activity.take().map(serialise_changes).transpose()?;
                let unique = std::mem::take(&mut mutation.unique);
                let events = std::mem::take(&mut mutation.events).all(&MemberDelta::new());
                let cols = changed_columns(kind, &current.doc, &mutation.doc);
                let text = serde_json::to_string(&mutation.doc).map_err(internal)?;
                let (read, version) = (current.version, current.version + 1);
                let (id2, now2) = (id.to_string(), now.to_string());
                let updated = self
                    .write(move |tx| {
                        let next = NextVersion {
                            kind,
                            id: &id2,
                            cols,
                            read,
                            now: &now2,
                            text: &text,
                        };
                        let n = update_resource(tx, tenant, next)?;
                        if n == 1 {
                            apply_unique(tx, tenant, kind, &id2, &unique)?;
                            if let Some((e, changes)) = &log {
                                insert_activity(tx, e, changes).map_err(internal)?;
                            }
                            insert_events(tx, tenant, events)?;
                        }
                        Ok(n == 1)
                    })
                    .await?;
                if updated {
                    return Ok(Record {
                        version,
                        last_modified: now.to_string(),
                        doc: mutation.doc,
                        ..current
                    });
                }
            }
            // Contended: fall back to doing it all inside the writer.
        }
        let (id, now) = (id.to_string(), now.to_string());
        let f2 = f.clone();
        let (id2, now2) = (id.clone(), now.clone());
        let done = self
            .write(move |tx| {
                let current = get_record(tx, tenant, kind, &id2)?.ok_or(StoreError::NotFound)?;
                if if_match.is_some_and(|v| v != current.version) {
                    return Err(StoreError::PreconditionFailed);
                }
                let mut access = Deferred::default();
                let mutation = match f2(&current, &mut access) {
                    // Nothing written yet: done outside the writer instead.
                    Err(_) if access.asked => return Ok(None),
                    other => other?,
                };
                store_mutation(tx, tenant, current, mutation, &now2).map(Some)
            })
            .await?;
        match done {
            Some(record) => Ok(record),
            None => self.modify_with_members(tenant, kind, &id, if_match, &now, f).await,
        }
    }

    async fn delete_with_events(
        &self,
        tenant: TenantId,
        kind: Kind,
        id: &str,
        if_match: Option<u64>,
        events: Option<DeleteEventsFn>,
    ) -> StoreResult<()> {
        let id = id.to_string();
        self.write(move |tx| {
            let Some(current) = get_record(tx, tenant, kind, &id)? else {
                return Err(StoreError::NotFound);
            };
            if if_match.is_some_and(|v| v != current.version) {
                return Err(StoreError::PreconditionFailed);
            }
            if let Some(f) = &events {
                insert_events(tx, tenant, f(&current)?)?;
            }
            exec(
                tx,
                "DELETE FROM resources WHERE tenant_id = ? AND id = ?",
                params![tenant, id],
            )
            .map_err(internal)?;
            // A deleted user or group leaves every group; a deleted group's
            // membership list goes with it.
            exec(
                tx,
                "DELETE FROM members WHERE tenant_id = ? AND (member_id = ? OR group_id = ?)",
                params![tenant, id, id],
            )
            .map_err(internal)?;
            exec(
                tx,
                "DELETE FROM unique_values WHERE tenant_id = ? AND resource_id = ?",
                params![tenant, id],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn list(&self, tenant: TenantId, q: ListQuery) -> StoreResult<Page> {
        // Matching queries on a unique indexed attribute (Entra's and Okta's
        // `userName eq`, `externalId eq`, `displayName eq`) are point reads:
        // run them here; anything that may scan goes to the blocking pool.
        if q.filter
            .as_ref()
            .is_some_and(|f| sql::is_point_lookup(&q.rt, q.kind, f))
            && q.sort.is_none()
            && q.cursor.is_none()
        {
            return self.read_now(|c| list_page(c, tenant, &q));
        }
        // Plain pages (no filter, no sort) read an index range; anything
        // that tests or sorts every resource is a scan.
        let scans = match scimitar_protocol::plan::work(&q.rt, q.kind, q.filter.as_ref(), q.sort.is_some()) {
            scimitar_protocol::plan::Work::Scan { per_resource } => per_resource > 0,
            scimitar_protocol::plan::Work::Lookup => false,
        };
        if scans {
            return self.scan(move |c| list_page(c, tenant, &q)).await;
        }
        self.read(move |c| list_page(c, tenant, &q)).await
    }

    async fn resource_count(&self, tenant: TenantId, kind: Kind, at_most: u64) -> StoreResult<u64> {
        // Kept by triggers (migration 0008): one row, whatever the size.
        let n: i64 = self
            .read_now(|c| {
                row(
                    c,
                    "SELECT n FROM resource_counts WHERE tenant_id = ? AND kind = ?",
                    params![tenant, kind.as_str()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(internal)
            })?
            .unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0).min(at_most))
    }

    async fn refresh_statistics(&self) -> StoreResult<()> {
        // ANALYZE of the tables whose statistics are stale (SQLite decides).
        self.write(|tx| tx.execute_batch("PRAGMA optimize").map_err(internal))
            .await
    }

    async fn members(&self, tenant: TenantId, group: &str) -> StoreResult<Vec<Reference>> {
        let group = group.to_string();
        self.read(move |c| list_members(c, tenant, &group)).await
    }

    async fn groups_of(&self, tenant: TenantId, user: &str) -> StoreResult<Vec<Reference>> {
        let user = user.to_string();
        self.read_now(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT m.group_id, json_extract(g.doc, '$.displayName') FROM members m \
                     JOIN resources g ON g.tenant_id = m.tenant_id AND g.id = m.group_id \
                     WHERE m.tenant_id = ? AND m.member_id = ? ORDER BY g.seq",
                )
                .map_err(internal)?;
            let rows = stmt
                .query_map(params![tenant, user], |r| {
                    Ok(Reference {
                        value: r.get(0)?,
                        kind: "Group".into(),
                        display: r.get(1)?,
                    })
                })
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
    }

    async fn display_name(&self, tenant: TenantId, id: &str) -> StoreResult<Option<String>> {
        let id = id.to_string();
        self.read_now(|c| {
            let v: Option<Option<String>> = row(
                c,
                "SELECT json_extract(doc, '$.displayName') FROM resources WHERE tenant_id = ? AND id = ?",
                params![tenant, id],
                |r| r.get(0),
            )
            .optional()
            .map_err(internal)?;
            Ok(v.flatten())
        })
    }

    async fn member_counts(&self, tenant: TenantId, groups: &[String]) -> StoreResult<Vec<(String, u64)>> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let groups = groups.to_vec();
        self.read(move |c| {
            use rusqlite::types::Value as Sql;
            let marks = vec!["?"; groups.len()].join(", ");
            let sql = format!(
                "SELECT group_id, count(*) FROM members WHERE tenant_id = ? AND group_id IN ({marks}) GROUP BY group_id"
            );
            let mut p = vec![Sql::Integer(tenant)];
            p.extend(groups.into_iter().map(Sql::Text));
            let mut stmt = c.prepare(&sql).map_err(internal)?;
            let rows = stmt
                .query_map(params_from_iter(p.iter()), |r| {
                    Ok((r.get::<_, String>(0)?, u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0)))
                })
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn cleartext_passwords(&self, tenant: TenantId, after: i64, limit: usize) -> StoreResult<Vec<Record>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            // The limit is a literal, like every LIMIT here (see page_sql).
            let sql = format!(
                "SELECT {RECORD_COLS} FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND r.seq > ? \
                 AND json_extract(r.doc, '$.password') IS NOT NULL \
                 AND substr(json_extract(r.doc, '$.password'), 1, 7) IS NOT '$argon2' ORDER BY r.seq LIMIT {limit}"
            );
            let mut stmt = c.prepare_cached(&sql).map_err(internal)?;
            let rows = stmt
                .query_map(params![tenant, after], record_from_row)
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn claim_unique(
        &self,
        tenant: TenantId,
        kind: Kind,
        id: &str,
        values: Vec<UniqueValue>,
    ) -> StoreResult<Vec<UniqueValue>> {
        let id = id.to_string();
        self.write(move |tx| take_unique(tx, tenant, kind, &id, &values)).await
    }

    async fn drop_unique_values(&self, tenant: TenantId, urn: &str) -> StoreResult<()> {
        let prefix = format!("{urn}:");
        self.write(move |tx| {
            let len = i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX);
            exec(
                tx,
                "DELETE FROM unique_values WHERE tenant_id = ? AND substr(attribute, 1, ?) = ?",
                params![tenant, len, prefix],
            )
            .map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn set_unique_backfill(&self, tenant: TenantId, kind: Kind, pending: bool) -> StoreResult<()> {
        self.write(move |tx| {
            let sql = if pending {
                "INSERT INTO unique_backfill (tenant_id, kind) VALUES (?, ?) ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM unique_backfill WHERE tenant_id = ? AND kind = ?"
            };
            exec(tx, sql, params![tenant, kind.as_str()]).map_err(internal)?;
            Ok(())
        })
        .await
    }

    async fn unique_backfills(&self) -> StoreResult<Vec<(TenantId, Kind)>> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached("SELECT tenant_id, kind FROM unique_backfill ORDER BY tenant_id, kind")
                .map_err(internal)?;
            let rows = stmt
                .query_map([], |r| {
                    let kind: String = r.get(1)?;
                    Ok((r.get(0)?, if kind == "Group" { Kind::Group } else { Kind::User }))
                })
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }

    async fn members_page(
        &self,
        tenant: TenantId,
        group: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Reference>> {
        let (group, after) = (group.to_string(), after.unwrap_or_default().to_string());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |c| {
            let mut stmt = c
                .prepare(
                    "SELECT member_id, member_type, display FROM members \
                     WHERE tenant_id = ? AND group_id = ? AND member_id > ? ORDER BY member_id LIMIT ?",
                )
                .map_err(internal)?;
            let rows = stmt
                .query_map(params![tenant, group, after, limit], |r| {
                    Ok(Reference {
                        value: r.get(0)?,
                        kind: r.get(1)?,
                        display: r.get(2)?,
                    })
                })
                .map_err(internal)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(internal)
        })
        .await
    }
}

/// The SQL of one list query: `filter` is its `FROM … WHERE …` (counted for
/// `totalResults`), `select` the page's statement (none for `count=0`).
pub(crate) struct PageSql {
    pub(crate) filter: sql::Builder,
    pub(crate) select: Option<sql::Builder>,
}

pub(crate) fn page_sql(tenant: TenantId, q: &ListQuery) -> StoreResult<PageSql> {
    use rusqlite::types::Value as Sql;
    let mut w = sql::Builder::default();
    // The kind is one of two constants, written as a literal.
    w.sql.push_str(" FROM resources r WHERE r.tenant_id = ? AND r.kind = '");
    w.sql.push_str(q.kind.as_str());
    w.sql.push('\'');
    w.params.push(Sql::Integer(tenant));
    if let Some(f) = &q.filter {
        w.sql.push_str(" AND ");
        sql::lower_filter(&mut w, &q.rt, q.kind, f)?;
    }
    let limit = i64::try_from(q.count).unwrap_or(i64::MAX);
    let mut sel = sql::Builder {
        sql: format!("SELECT {RECORD_COLS}{}", w.sql),
        params: w.params.clone(),
    };
    // Limits are literals: SQLite re-plans an `ORDER BY … LIMIT ?` statement
    // on every execution (the bound limit feeds the planner), which would
    // cost a full prepare on each matching query.
    if let Some(pos) = q.cursor {
        // Keyset paging on the primary key: the same cost for every page.
        let (cmp, order, key) = match pos {
            CursorPos::After(k) => (" AND r.seq > ?", " ORDER BY r.seq ASC", k),
            CursorPos::Before(k) => (" AND r.seq < ?", " ORDER BY r.seq DESC", k),
        };
        sel.sql.push_str(cmp);
        sel.params.push(Sql::Integer(key));
        sel.sql.push_str(order);
        sel.sql.push_str(&format!(" LIMIT {}", limit.saturating_add(1)));
    } else if q.count == 0 {
        return Ok(PageSql {
            filter: w,
            select: None,
        });
    } else {
        match &q.sort {
            Some(s) => sql::order_by(&mut sel, &q.rt, q.kind, &s.by, s.order)?,
            None => sel.sql.push_str(" ORDER BY r.seq"),
        }
        sel.sql.push_str(&format!(" LIMIT {limit}"));
        if q.start_index > 1 {
            sel.sql.push_str(" OFFSET ?");
            sel.params.push(Sql::Integer(
                i64::try_from(q.start_index.saturating_sub(1)).unwrap_or(i64::MAX),
            ));
        }
    }
    Ok(PageSql {
        filter: w,
        select: Some(sel),
    })
}

/// One page of a list query (and its total).
fn list_page(c: &Connection, tenant: TenantId, q: &ListQuery) -> StoreResult<Page> {
    let PageSql { filter, select } = page_sql(tenant, q)?;
    let count_all = || -> StoreResult<u64> {
        let total: i64 = if q.filter.is_none() {
            // Kept by triggers (migration 0008): no count over the tenant.
            row(
                c,
                "SELECT n FROM resource_counts WHERE tenant_id = ? AND kind = ?",
                params![tenant, q.kind.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(internal)?
            .unwrap_or(0)
        } else {
            row(
                c,
                &format!("SELECT count(*){}", filter.sql),
                params_from_iter(filter.params.iter()),
                |r| r.get(0),
            )
            .map_err(internal)?
        };
        Ok(u64::try_from(total).unwrap_or(0))
    };
    let Some(sel) = select else {
        return Ok(Page {
            total: count_all()?,
            records: Vec::new(),
            has_more: false,
        });
    };
    let mut records = {
        let mut stmt = c.prepare_cached(&sel.sql).map_err(internal)?;
        let rows = stmt
            .query_map(params_from_iter(sel.params.iter()), record_from_row)
            .map_err(internal)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(internal)?
    };
    if let Some(pos) = q.cursor {
        let has_more = records.len() > q.count;
        records.truncate(q.count);
        if matches!(pos, CursorPos::Before(_)) {
            records.reverse();
        }
        return Ok(Page {
            total: count_all()?,
            records,
            has_more,
        });
    }
    // A first page that is not full is the whole result: no count needed
    // (the common case of a matching query).
    let total = if q.start_index <= 1 && records.len() < q.count {
        records.len() as u64
    } else {
        count_all()?
    };
    Ok(Page {
        total,
        records,
        has_more: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteStore, open_reader};

    /// A Group modification that reads the member list reads it on a
    /// reader, never on the writer thread that every tenant's writes wait
    /// for; the writer stores the result only at the version it was
    /// computed from.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn member_lists_are_read_outside_the_writer() {
        let dir = std::env::temp_dir().join(format!("scimitar-member-list-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(&dir.join("s.db")).expect("open");
        let t = scimitar_store::TenantStore::create_tenant(&store, "t")
            .await
            .expect("tenant")
            .id;
        let user = |id: &str| NewResource {
            events: Default::default(),
            kind: Kind::User,
            id: id.into(),
            doc: serde_json::json!({"userName": id})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            members: vec![],
            created: "2024-01-01T00:00:00.000Z".into(),
            activity: None,
            unique: vec![],
        };
        for id in ["u1", "u2"] {
            store.create(t, user(id)).await.expect("user");
        }
        let mut group = user("g1");
        group.kind = Kind::Group;
        group.doc = serde_json::json!({"displayName": "G"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        group.members = ["u1", "u2"]
            .map(|m| scimitar_protocol::resource::MemberRef {
                value: m.into(),
                kind: None,
                display: None,
            })
            .to_vec();
        store.create(t, group).await.expect("group");
        let threads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = threads.clone();
        let f: ModifyFn = std::sync::Arc::new(move |current, members| {
            let list = members.list()?;
            let name = std::thread::current().name().unwrap_or_default().to_string();
            seen.lock().expect("lock").push(name);
            let first = list.first().and_then(|m| m["value"].as_str()).unwrap_or_default();
            Ok(scimitar_store::Mutation {
                events: Default::default(),
                doc: current.doc.clone(),
                member_ops: vec![MemberOp::Remove(vec![first.to_string()])],
                activity: None,
                unique: Default::default(),
            })
        });
        let rec = store
            .modify(t, Kind::Group, "g1", None, "2024-01-02T00:00:00.000Z", f)
            .await
            .expect("modify");
        assert_eq!(rec.version, 2);
        let left: Vec<String> = store
            .members(t, "g1")
            .await
            .expect("members")
            .into_iter()
            .map(|m| m.value)
            .collect();
        assert_eq!(left, ["u2"]);
        let threads = threads.lock().expect("lock").clone();
        assert!(!threads.is_empty());
        assert!(
            threads.iter().all(|t| t != "scimitar-sqlite-writer"),
            "the member list was read on {threads:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Entra's and Okta's matching queries keep one prepared plan: SQLite
    /// re-prepares a statement whose bound values feed the planner (a
    /// bound `LIMIT` under `ORDER BY`), which once cost a fifth of a
    /// lookup's CPU.
    #[test]
    fn matching_queries_are_never_re_prepared() {
        let dir = std::env::temp_dir().join(format!("scimitar-reprepare-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("s.db");
        drop(SqliteStore::open(&path).expect("open"));
        let c = open_reader(&path).expect("reader");
        let rts = scimitar_protocol::schema::resource_types_with(&[]);
        for (kind, filter) in [
            (Kind::User, "userName eq \"{}\""),
            (Kind::User, "externalId eq \"{}\""),
            (Kind::Group, "displayName eq \"{}\""),
            (Kind::User, "emails[type eq \"work\"].value eq \"{}\""),
        ] {
            let rt = std::sync::Arc::new(
                rts.iter()
                    .find(|rt| rt.name == kind.as_str())
                    .expect("resource type")
                    .clone(),
            );
            let mut sql = None;
            for i in 0..5 {
                let text = filter.replace("{}", &format!("u{i}@example.com"));
                let q = ListQuery {
                    kind,
                    rt: rt.clone(),
                    filter: Some(scimitar_protocol::filter::parse_filter(&text).expect("filter")),
                    sort: None,
                    start_index: 1,
                    count: 100,
                    cursor: None,
                };
                list_page(&c, 1, &q).expect("list");
                sql = page_sql(1, &q).expect("sql").select.map(|s| s.sql);
            }
            let stmt = c.prepare_cached(&sql.expect("a select")).expect("cached");
            assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0, "{filter}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
