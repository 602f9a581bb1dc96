//! Resource operations of one actor on one tenant: create, replace, patch,
//! delete, import, and the representation of what is stored. Every write is
//! validated by the protocol crate and recorded in the activity log (a
//! change's entry in the change's own transaction; a failure's on its own).

use std::sync::{Arc, Mutex};

use scimitar_protocol::ScimError;
use scimitar_protocol::events::{self, EventDraft};
use scimitar_protocol::output::{self, Derived, Meta};
use scimitar_protocol::patch::{MemberOp, apply_patch, parse_patch_request};
use scimitar_protocol::plan::Work;
use scimitar_protocol::project::Projection;
use scimitar_protocol::resource::{MemberRef, merge_for_replace, normalize_input};
use scimitar_protocol::schema::{ResourceType, urn};
use scimitar_protocol::unique::{unique_change, unique_values};
use scimitar_store::{
    ActivityEvent, ChangeEvents, DeleteEventsFn, Kind, ListQuery, MemberEvents, ModifyFn, Mutation, NewEvent,
    NewResource, Page, Record, StoreError, Tenant,
};
use serde_json::{Map, Value};

use crate::activity::{self, Outcome, Request};
use crate::{Actor, App, ResourceTypes, scim_error, timed};

/// The request a write comes from, for its activity entry: the method and
/// the path below the Tenant URL (`POST /Users`, `PATCH /Groups/{id}`,
/// `IMPORT /Users/{id}`).
#[derive(Debug, Clone, Copy)]
pub struct Via<'a> {
    pub method: &'a str,
    pub path: &'a str,
}

/// The operations of one actor on one tenant (see [`App::ops`]).
pub struct Ops {
    pub app: Arc<App>,
    pub tenant: Tenant,
    pub actor: Actor,
    /// The Tenant URL.
    pub base: String,
    pub rts: ResourceTypes,
}

/// Drafts of events with ids and times, about `subject`, of the change
/// `change` (the id its activity entry carries too).
fn stamp(drafts: Vec<EventDraft>, subject: &str, change: Option<&str>) -> Vec<NewEvent> {
    drafts
        .into_iter()
        .map(|d| NewEvent {
            change: change.map(str::to_string),
            ..NewEvent::serialised(d.event_type, Some(subject), d.data)
        })
        .collect()
}

/// The events of a write: `drafts` from the documents, and for a Group
/// whose members the write changes the member events the store makes for
/// the members it actually adds or removes (their payload is serialised
/// only then: no member operation, no member event). `change` is the id
/// its activity entry carries too.
fn change_events(
    kind: Kind,
    drafts: Vec<EventDraft>,
    after: &events::Snapshot<'_>,
    member_ops: bool,
    change: &str,
) -> Result<ChangeEvents, ScimError> {
    Ok(ChangeEvents {
        change: Some(change.to_string()),
        events: stamp(drafts, after.meta.id, Some(change)),
        members: match kind {
            Kind::Group if member_ops => Some(MemberEvents {
                group: after.meta.id.to_string(),
                data: events::member_payload(after)?,
            }),
            Kind::Group | Kind::User => None,
        },
    })
}

fn not_found(kind: Kind, id: &str) -> ScimError {
    ScimError::not_found(format!("{} '{id}' not found", kind.as_str()))
}

fn store_err(e: StoreError, kind: Kind, id: &str) -> ScimError {
    match e {
        StoreError::NotFound => not_found(kind, id),
        other => scim_error(other),
    }
}

/// The name of the resource a modification saw, for the log of a failure.
type Observed = Arc<Mutex<Option<String>>>;

/// A modification to run and log.
struct Change<'a> {
    rt: &'a Arc<ResourceType>,
    kind: Kind,
    id: &'a str,
    if_match: Option<u64>,
    via: Via<'a>,
    /// When it happens (`meta.lastModified`); now unless importing.
    at: String,
    /// Leave a failure out of the activity log (the caller retries it).
    quiet: bool,
}

impl<'a> Change<'a> {
    /// A client's change, now.
    fn now(rt: &'a Arc<ResourceType>, kind: Kind, id: &'a str, if_match: Option<u64>, via: Via<'a>) -> Self {
        Change {
            rt,
            kind,
            id,
            if_match,
            via,
            at: scimitar_store::now_utc(),
            quiet: false,
        }
    }
}

impl Ops {
    /// A resource type of the tenant by name (`User`, `Group`), any case.
    pub fn rt(&self, name: &str) -> Option<Arc<ResourceType>> {
        self.rts.iter().find(|rt| rt.name.eq_ignore_ascii_case(name)).cloned()
    }

    fn request<'a>(&'a self, via: Via<'a>) -> Request<'a> {
        Request {
            tenant: self.tenant.id,
            actor: &self.actor,
            method: via.method,
            path: via.path,
        }
    }

    async fn log_failure(&self, via: Via<'_>, action: &str, target: (Kind, Option<&str>, Option<&str>), e: &ScimError) {
        let (kind, id, name) = target;
        let outcome = Outcome {
            action,
            kind: Some(kind),
            id,
            name,
            changes: vec![],
            status: e.status,
            error: Some(&e.detail),
        };
        activity::record(&*self.app.store, activity::event(&self.request(via), outcome)).await;
    }

    /// Creates a resource from a client's body (POST).
    pub async fn create(&self, rt: &ResourceType, kind: Kind, body: &Value, via: Via<'_>) -> Result<Record, ScimError> {
        let id = uuid::Uuid::new_v4().to_string();
        let result = self.create_with(rt, kind, body, &id, None, via).await;
        if let Err(e) = &result {
            let name = body
                .get("userName")
                .or_else(|| body.get("displayName"))
                .and_then(Value::as_str);
            self.log_failure(via, "create", (kind, None, name), e).await;
        }
        result
    }

    /// Validates `body` and creates the resource with this id (at `created`,
    /// or now); its log entry is committed with it.
    async fn create_with(
        &self,
        rt: &ResourceType,
        kind: Kind,
        body: &Value,
        id: &str,
        created: Option<String>,
        via: Via<'_>,
    ) -> Result<Record, ScimError> {
        let mut input = normalize_input(rt, body)?;
        if kind == Kind::User && input.members.is_some() {
            return Err(ScimError::invalid_value("users have no members"));
        }
        self.app.hash_password_in(kind, &mut input.doc).await?;
        let members = input.members.unwrap_or_default();
        let mut changes = scimitar_protocol::diff::changes(rt, &Map::new(), &input.doc);
        if !members.is_empty() {
            changes.extend(activity::member_changes(&[MemberOp::Add(members.clone())]));
        }
        let change = scimitar_store::new_change_id();
        let mut entry = activity::event(
            &self.request(via),
            Outcome {
                action: "create",
                kind: Some(kind),
                id: Some(id),
                name: activity::name_of(&input.doc),
                changes,
                status: 201,
                error: None,
            },
        );
        let created = created.unwrap_or_else(scimitar_store::now_utc);
        let events = {
            let snap = events::Snapshot {
                rt,
                base: &self.base,
                doc: &input.doc,
                meta: Meta {
                    id,
                    created: &created,
                    last_modified: &created,
                    version: 1,
                },
            };
            change_events(kind, events::created(kind, &snap)?, &snap, !members.is_empty(), &change)?
        };
        entry.change = Some(change);
        let new = NewResource {
            kind,
            id: id.to_string(),
            events,
            unique: unique_values(rt, &input.doc)?,
            doc: input.doc,
            members,
            created,
            activity: Some(entry),
        };
        let created = timed("create", self.app.store.create(self.tenant.id, new))
            .await
            .map_err(scim_error)?;
        self.app.events_committed();
        Ok(created)
    }

    /// Runs a modification and logs it; `f` computes the mutation.
    async fn modify(&self, c: Change<'_>, f: ModifyFn) -> Result<Record, ScimError> {
        // The closure attaches the change's log entry to the mutation (the
        // store records it in the same transaction) and reports the name
        // it saw, for the log of a failure.
        let seen: Observed = Arc::new(Mutex::new(None));
        let seen2 = seen.clone();
        let (rt2, method, kind) = (c.rt.clone(), c.via.method.to_string(), c.kind);
        let (base, at) = (self.base.clone(), c.at.clone());
        let change = scimitar_store::new_change_id();
        let template = ActivityEvent {
            change: Some(change.clone()),
            ..activity::event(
                &self.request(c.via),
                Outcome {
                    action: "update",
                    kind: Some(kind),
                    id: Some(c.id),
                    status: 200,
                    ..Outcome::default()
                },
            )
        };
        let wrapped: ModifyFn = Arc::new(move |current, members| {
            if let Ok(mut s) = seen2.lock() {
                *s = activity::name_of(&current.doc).map(str::to_string);
            }
            let mut m = f(current, members)?;
            crate::passwords::check_hashed(&current.doc, &m.doc)?;
            m.unique = unique_change(&rt2, &current.doc, &m.doc)?;
            let snap = events::Snapshot {
                rt: &rt2,
                base: &base,
                doc: &m.doc,
                meta: Meta {
                    id: &current.id,
                    created: &current.created,
                    last_modified: &at,
                    version: current.version + 1,
                },
            };
            // One diff for both the events' `changed` and the activity entry.
            let mut changes = scimitar_protocol::diff::changes(&rt2, &current.doc, &m.doc);
            let drafts = events::updated(kind, &current.doc, &snap, &events::changed_attributes(&changes))?;
            m.events = change_events(kind, drafts, &snap, !m.member_ops.is_empty(), &change)?;
            changes.extend(activity::member_changes(&m.member_ops));
            // No changes (Entra re-sending the same values): nothing to log.
            m.activity = (!changes.is_empty()).then(|| ActivityEvent {
                action: activity::action(kind, &method, Some(&current.doc), Some(&m.doc), &m.member_ops).to_string(),
                name: activity::name_of(&m.doc).map(str::to_string),
                changes: Value::Array(changes),
                ..template.clone()
            });
            Ok(m)
        });
        let result = timed(
            "modify",
            self.app
                .store
                .modify(self.tenant.id, kind, c.id, c.if_match, &c.at, wrapped),
        )
        .await
        .map_err(|e| store_err(e, kind, c.id));
        if result.is_ok() {
            self.app.events_committed();
        }
        if let Err(e) = &result
            && !c.quiet
        {
            let name = seen.lock().ok().and_then(|mut s| s.take());
            self.log_failure(c.via, "update", (kind, Some(c.id), name.as_deref()), e)
                .await;
        }
        result
    }

    /// Replaces a resource with a client's body (PUT). Members omitted from
    /// a Group's body are kept: clearing a large group because a client
    /// left the list out would lose data.
    pub async fn replace(
        &self,
        rt: &Arc<ResourceType>,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<u64>,
        via: Via<'_>,
    ) -> Result<Record, ScimError> {
        let mut input = match normalize_input(rt, body) {
            Ok(i) => i,
            Err(e) => {
                self.log_failure(via, "update", (kind, Some(id), None), &e).await;
                return Err(e);
            }
        };
        if kind == Kind::User && input.members.is_some() {
            return Err(ScimError::invalid_value("users have no members"));
        }
        self.app.hash_password_in(kind, &mut input.doc).await?;
        let rt2 = rt.clone();
        let f: ModifyFn = Arc::new(move |current: &Record, _| {
            let mut doc = input.doc.clone();
            merge_for_replace(&rt2, &current.doc, &mut doc)?;
            let member_ops = match &input.members {
                Some(m) => vec![MemberOp::Clear, MemberOp::Add(m.clone())],
                None => vec![],
            };
            Ok(Mutation {
                doc,
                member_ops,
                activity: None,
                unique: Default::default(),
                events: Default::default(),
            })
        });
        self.modify(Change::now(rt, kind, id, if_match, via), f).await
    }

    /// Applies a client's PatchOp body (PATCH), atomically.
    pub async fn patch(
        &self,
        rt: &Arc<ResourceType>,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<u64>,
        via: Via<'_>,
    ) -> Result<Record, ScimError> {
        let mut ops = match parse_patch_request(body, self.app.config.max_patch_operations) {
            Ok(o) => o,
            Err(e) => {
                self.log_failure(via, "update", (kind, Some(id), None), &e).await;
                return Err(e);
            }
        };
        self.app.hash_passwords_in_patch(rt, &mut ops).await?;
        let rt2 = rt.clone();
        let f: ModifyFn = Arc::new(move |current: &Record, members| {
            let mut doc = current.doc.clone();
            let member_ops = apply_patch(&rt2, &mut doc, &ops, members)?;
            Ok(Mutation {
                doc,
                member_ops,
                activity: None,
                unique: Default::default(),
                events: Default::default(),
            })
        });
        self.modify(Change::now(rt, kind, id, if_match, via), f).await
    }

    /// Deletes a resource (it leaves every group; a group's memberships go).
    pub async fn delete(&self, kind: Kind, id: &str, if_match: Option<u64>, via: Via<'_>) -> Result<(), ScimError> {
        let before = self.app.store.get(self.tenant.id, kind, id).await.map_err(scim_error)?;
        let (rt, base) = (self.rt(kind.as_str()), self.base.clone());
        let change = scimitar_store::new_change_id();
        let change2 = change.clone();
        let on_delete: Option<DeleteEventsFn> = rt.map(|rt| {
            let f: DeleteEventsFn = Arc::new(move |current: &Record| {
                let snap = events::Snapshot {
                    rt: &rt,
                    base: &base,
                    doc: &current.doc,
                    meta: Meta {
                        id: &current.id,
                        created: &current.created,
                        last_modified: &current.last_modified,
                        version: current.version,
                    },
                };
                Ok(stamp(events::deleted(kind, &snap)?, &current.id, Some(&change2)))
            });
            f
        });
        let deleting = self
            .app
            .store
            .delete_with_events(self.tenant.id, kind, id, if_match, on_delete);
        let result = timed("delete", deleting).await.map_err(|e| store_err(e, kind, id));
        let name = before
            .as_ref()
            .and_then(|r| activity::name_of(&r.doc).map(str::to_string));
        match &result {
            Ok(()) => {
                self.app.events_committed();
                let outcome = Outcome {
                    action: "delete",
                    kind: Some(kind),
                    id: Some(id),
                    name: name.as_deref(),
                    status: 204,
                    ..Outcome::default()
                };
                let entry = ActivityEvent {
                    change: Some(change),
                    ..activity::event(&self.request(via), outcome)
                };
                activity::record(&*self.app.store, entry).await;
            }
            Err(e) => {
                self.log_failure(via, "delete", (kind, Some(id), name.as_deref()), e)
                    .await
            }
        }
        result
    }

    /// A stored resource, or 404.
    pub async fn get(&self, kind: Kind, id: &str) -> Result<Record, ScimError> {
        self.app
            .store
            .get(self.tenant.id, kind, id)
            .await
            .map_err(scim_error)?
            .ok_or_else(|| not_found(kind, id))
    }

    /// A page of a list query. A query that is not an index lookup takes
    /// one of the tenant's scan slots (429 when none is free) and must be
    /// within the filter cost budget (400 `tooMany`); see `fair`.
    pub async fn list(&self, query: ListQuery) -> Result<Page, ScimError> {
        let work = scimitar_protocol::plan::work(&query.rt, query.kind, query.filter.as_ref(), query.sort.is_some());
        // The budget first: a filter that will never run needs no slot.
        let (store, tenant, kind) = (&self.app.store, self.tenant.id, query.kind);
        crate::fair::check_budget(work, kind, self.app.config.filter_cost_budget, |at_most| async move {
            store.resource_count(tenant, kind, at_most).await.map_err(scim_error)
        })
        .await?;
        let _slot = match work {
            Work::Lookup => None,
            Work::Scan { .. } => self.app.scans.acquire(self.tenant.id)?,
        };
        timed("list", self.app.store.list(self.tenant.id, query))
            .await
            .map_err(scim_error)
    }

    /// The representation of a record for output, with derived values.
    pub async fn render(
        &self,
        rt: &ResourceType,
        rec: &Record,
        projection: &Projection,
    ) -> Result<Map<String, Value>, ScimError> {
        self.render_as(rt, rec, projection, false).await
    }

    /// The JSON text of a Group with all its members (see
    /// `output::to_json_with_members`), for the default projection.
    pub async fn group_json(&self, rt: &ResourceType, rec: &Record) -> Result<Vec<u8>, ScimError> {
        let members = self
            .app
            .store
            .members(self.tenant.id, &rec.id)
            .await
            .map_err(scim_error)?;
        let without = Projection::parse(rt, None, Some("members"))?;
        let out = self.render_as(rt, rec, &without, false).await?;
        Ok(output::to_json_with_members(&out, &self.base, &members))
    }

    async fn render_as(
        &self,
        rt: &ResourceType,
        rec: &Record,
        projection: &Projection,
        created: bool,
    ) -> Result<Map<String, Value>, ScimError> {
        let d = self.derived(rt, rec, projection, created).await?;
        let mut out = output::representation(rt, &self.base, &rec.doc, &meta_of(rec), d);
        if !projection.is_default() {
            projection.apply(rt, &mut out);
        }
        Ok(out)
    }

    /// The JSON text of `render`, written straight from the document when
    /// nothing is projected away. `created`: a resource just created (a new
    /// user belongs to no group yet, so its `groups` need no query).
    pub async fn render_json(
        &self,
        rt: &ResourceType,
        rec: &Record,
        projection: &Projection,
        created: bool,
    ) -> Result<Vec<u8>, ScimError> {
        if !projection.is_default() {
            let out = self.render_as(rt, rec, projection, created).await?;
            return serde_json::to_vec(&out).map_err(|e| ScimError::internal(format!("a response: {e}")));
        }
        let derived = self.derived(rt, rec, projection, created).await?;
        let view = output::RepresentationView {
            rt,
            base_url: &self.base,
            doc: &rec.doc,
            meta: &meta_of(rec),
            derived: &derived,
        };
        serde_json::to_vec(&view).map_err(|e| ScimError::internal(format!("a response: {e}")))
    }

    /// The values a representation shows besides the document.
    async fn derived(
        &self,
        rt: &ResourceType,
        rec: &Record,
        projection: &Projection,
        created: bool,
    ) -> Result<Derived, ScimError> {
        let store = &self.app.store;
        let tenant = self.tenant.id;
        let mut d = Derived {
            members: None,
            groups: None,
            manager_display: None,
        };
        match rec.kind {
            Kind::Group => {
                if let Some(attr) = rt.schema.attribute("members")
                    && projection.wants(None, "members", attr)
                {
                    d.members = Some(store.members(tenant, &rec.id).await.map_err(scim_error)?);
                }
            }
            Kind::User => {
                if let Some(attr) = rt.schema.attribute("groups")
                    && projection.wants(None, "groups", attr)
                {
                    d.groups = Some(if created {
                        Vec::new()
                    } else if let Some(g) = &rec.groups {
                        g.clone()
                    } else {
                        store.groups_of(tenant, &rec.id).await.map_err(scim_error)?
                    });
                }
                let manager = rec
                    .doc
                    .get(urn::ENTERPRISE_USER)
                    .and_then(|e| e.get("manager"))
                    .and_then(|m| m.get("value"))
                    .and_then(Value::as_str);
                if let Some(m) = manager {
                    d.manager_display = store.display_name(tenant, m).await.map_err(scim_error)?;
                }
            }
        }
        Ok(d)
    }
}

fn meta_of(rec: &Record) -> Meta<'_> {
    Meta {
        id: &rec.id,
        created: &rec.created,
        last_modified: &rec.last_modified,
        version: rec.version,
    }
}

/// One resource as `scimitar export` wrote it.
#[derive(Debug, Clone)]
pub struct ImportedResource {
    pub kind: Kind,
    pub id: String,
    /// The attributes, as a client would send them.
    pub doc: Map<String, Value>,
    pub members: Vec<MemberRef>,
    pub created: String,
    pub last_modified: String,
}

/// What an import did to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imported {
    Created,
    Updated,
    Unchanged,
}

/// The outcome of importing one resource.
#[derive(Debug, Clone)]
pub struct ImportOutcome {
    pub record: Record,
    pub imported: Imported,
    /// A Group's members name resources that are not in the tenant yet (a
    /// nested group later in the file): set them with
    /// [`Ops::import_members`] once everything is in.
    pub members_pending: bool,
}

/// A member that is not a resource of the tenant (yet).
fn unknown_member(e: &ScimError) -> bool {
    e.scim_type == Some(scimitar_protocol::ScimType::InvalidValue) && e.detail.starts_with("member '")
}

impl Ops {
    /// Imports one exported resource: validated like a client's PUT,
    /// created with its id and `meta.created` (and written once more at
    /// `meta.lastModified`), or brought to the file's state if it exists;
    /// logged like any other write (`IMPORT /Users/{id}`).
    pub async fn import(&self, r: &ImportedResource) -> Result<ImportOutcome, ScimError> {
        let rt = self
            .rt(r.kind.as_str())
            .ok_or_else(|| ScimError::internal("no such resource type"))?;
        let mut doc = normalize_input(&rt, &Value::Object(r.doc.clone()))?.doc;
        self.app.hash_password_in(r.kind, &mut doc).await?;
        let path = format!("/{}s/{}", r.kind.as_str(), r.id);
        let via = Via {
            method: "IMPORT",
            path: &path,
        };
        let members = if r.kind == Kind::Group {
            r.members.clone()
        } else {
            Vec::new()
        };
        // Sets the document and the members, or only the document when a
        // member does not exist yet.
        let set_all = |doc: Map<String, Value>| async {
            let ops = if members.is_empty() {
                vec![]
            } else {
                vec![MemberOp::Clear, MemberOp::Add(members.clone())]
            };
            match self.set(&rt, r, doc.clone(), ops, via).await {
                Err(e) if unknown_member(&e) => Ok((self.set(&rt, r, doc, vec![], via).await?, true)),
                other => other.map(|rec| (rec, false)),
            }
        };
        let current = self
            .app
            .store
            .get(self.tenant.id, r.kind, &r.id)
            .await
            .map_err(scim_error)?;
        if let Some(current) = current {
            let (record, members_pending) = set_all(doc).await?;
            let imported = if record.version == current.version {
                Imported::Unchanged
            } else {
                Imported::Updated
            };
            return Ok(ImportOutcome {
                record,
                imported,
                members_pending,
            });
        }
        let created = Some(r.created.clone());
        if r.last_modified == r.created {
            let mut body = doc.clone();
            if !members.is_empty() {
                body.insert("members".into(), members_json(&members));
            }
            let (record, members_pending) = match self
                .create_with(&rt, r.kind, &Value::Object(body), &r.id, created.clone(), via)
                .await
            {
                Err(e) if unknown_member(&e) => (
                    self.create_with(&rt, r.kind, &Value::Object(doc), &r.id, created, via)
                        .await?,
                    true,
                ),
                other => (other?, false),
            };
            return Ok(ImportOutcome {
                record,
                imported: Imported::Created,
                members_pending,
            });
        }
        // Created at `created`, then written once more at `lastModified`:
        // the store has no other way to set both. Without members to add
        // later, the first write leaves an attribute out so that the second
        // is a change.
        let keep = if r.kind == Kind::Group {
            "displayName"
        } else {
            "userName"
        };
        let mut first = doc.clone();
        if members.is_empty()
            && let Some(k) = first.keys().rev().find(|k| k.as_str() != keep).cloned()
        {
            first.remove(&k);
        }
        self.create_with(&rt, r.kind, &Value::Object(first), &r.id, created, via)
            .await?;
        let (record, members_pending) = set_all(doc).await?;
        Ok(ImportOutcome {
            record,
            imported: Imported::Created,
            members_pending,
        })
    }

    /// Sets the members of an imported Group, at its `meta.lastModified`.
    pub async fn import_members(&self, r: &ImportedResource) -> Result<Record, ScimError> {
        let rt = self
            .rt(Kind::Group.as_str())
            .ok_or_else(|| ScimError::internal("no such resource type"))?;
        let path = format!("/Groups/{}", r.id);
        let via = Via {
            method: "IMPORT",
            path: &path,
        };
        let ops = vec![MemberOp::Clear, MemberOp::Add(r.members.clone())];
        let f: ModifyFn = Arc::new(move |current, _| {
            Ok(Mutation {
                doc: current.doc.clone(),
                member_ops: ops.clone(),
                activity: None,
                unique: Default::default(),
                events: Default::default(),
            })
        });
        let change = Change {
            rt: &rt,
            kind: Kind::Group,
            id: &r.id,
            if_match: None,
            via,
            at: r.last_modified.clone(),
            quiet: false,
        };
        self.modify(change, f).await
    }

    /// Writes `doc` (and member operations) over the resource, at its
    /// `meta.lastModified`.
    async fn set(
        &self,
        rt: &Arc<ResourceType>,
        r: &ImportedResource,
        doc: Map<String, Value>,
        member_ops: Vec<MemberOp>,
        via: Via<'_>,
    ) -> Result<Record, ScimError> {
        let member_ops_empty = member_ops.is_empty();
        let f: ModifyFn = Arc::new(move |_, _| {
            Ok(Mutation {
                doc: doc.clone(),
                member_ops: member_ops.clone(),
                activity: None,
                unique: Default::default(),
                events: Default::default(),
            })
        });
        let change = Change {
            rt,
            kind: r.kind,
            id: &r.id,
            if_match: None,
            via,
            at: r.last_modified.clone(),
            // Members that come later in the file fail here and are set
            // at the end: not a failure worth logging.
            quiet: !member_ops_empty,
        };
        self.modify(change, f).await
    }
}

fn members_json(members: &[MemberRef]) -> Value {
    Value::Array(
        members
            .iter()
            .map(|m| {
                let mut o = Map::new();
                o.insert("value".into(), Value::String(m.value.clone()));
                if let Some(k) = &m.kind {
                    o.insert("type".into(), Value::String(k.clone()));
                }
                if let Some(d) = &m.display {
                    o.insert("display".into(), Value::String(d.clone()));
                }
                Value::Object(o)
            })
            .collect(),
    )
}
