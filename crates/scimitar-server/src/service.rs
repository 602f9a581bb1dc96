//! Resource operations of one authenticated request context, shared by the
//! SCIM handlers and Bulk. Each write is recorded in the activity log.

use std::sync::{Arc, Mutex};

use scimitar_protocol::ScimError;
use scimitar_protocol::output::{self, Derived, Meta};
use scimitar_protocol::patch::{MemberOp, apply_patch, parse_patch_request};
use scimitar_protocol::project::Projection;
use scimitar_protocol::resource::{merge_for_replace, normalize_input};
use scimitar_protocol::schema::{ResourceType, parse_extension, resource_types_with, urn};
use scimitar_store::{ActivityEvent, Kind, ModifyFn, Mutation, Record, StoreError, Tenant, TokenInfo};
use serde_json::{Map, Value};

use crate::AppState;
use crate::activity::{self, Entry};
use crate::error::{ApiError, ApiResult};

/// The name of the resource a modification saw, for the log of a failure.
type Observed = Option<String>;

pub struct Ctx {
    pub state: Arc<AppState>,
    pub tenant: Tenant,
    pub token: TokenInfo,
    /// The Tenant URL.
    pub base: String,
    pub rts: Arc<Vec<Arc<ResourceType>>>,
}

/// The resource types of a tenant: the built-in ones plus its extensions.
/// Cached per tenant and schema version; the version comes with the token
/// on every request, so a change made anywhere (CLI, another node) applies
/// to the next request.
pub async fn resource_types(state: &AppState, tenant: &Tenant, version: i64) -> ApiResult<Arc<Vec<Arc<ResourceType>>>> {
    if let Some(hit) = state.schema_cache.get(tenant.id, version) {
        return Ok(hit);
    }
    let exts = state.store.list_extensions(tenant.id).await?;
    let rts = if exts.is_empty() {
        state.builtin.clone()
    } else {
        let mut parsed = Vec::with_capacity(exts.len());
        for e in exts {
            match parse_extension(&e.schema) {
                Ok(s) => parsed.push((e.resource_type, s, e.required)),
                Err(err) => tracing::error!(urn = %e.urn, error = %err, "stored extension schema is invalid; ignored"),
            }
        }
        Arc::new(resource_types_with(&parsed).into_iter().map(Arc::new).collect())
    };
    state.schema_cache.put(tenant.id, version, rts.clone());
    Ok(rts)
}

/// A tenant's resource types.
pub type ResourceTypes = Arc<Vec<Arc<ResourceType>>>;

/// Per-tenant resource types, valid for one schema version.
#[derive(Default)]
pub struct SchemaCache {
    entries: Mutex<std::collections::HashMap<i64, (i64, ResourceTypes)>>,
}

impl SchemaCache {
    fn get(&self, tenant: i64, version: i64) -> Option<Arc<Vec<Arc<ResourceType>>>> {
        let entries = self.entries.lock().ok()?;
        let (v, rts) = entries.get(&tenant)?;
        (*v == version).then(|| rts.clone())
    }
    fn put(&self, tenant: i64, version: i64, rts: Arc<Vec<Arc<ResourceType>>>) {
        if let Ok(mut e) = self.entries.lock() {
            if e.len() > 10_000 {
                e.clear(); // bounded memory with many tenants
            }
            e.insert(tenant, (version, rts));
        }
    }
    pub fn invalidate(&self, tenant: i64) {
        if let Ok(mut e) = self.entries.lock() {
            e.remove(&tenant);
        }
    }
}

fn not_found(kind: Kind, id: &str) -> ApiError {
    ApiError(ScimError::not_found(format!("{} '{id}' not found", kind.as_str())))
}

fn store_err(e: StoreError, kind: Kind, id: &str) -> ApiError {
    match e {
        StoreError::NotFound => not_found(kind, id),
        other => other.into(),
    }
}

impl Ctx {
    pub fn rt(&self, name: &str) -> Option<Arc<ResourceType>> {
        self.rts.iter().find(|rt| rt.name.eq_ignore_ascii_case(name)).cloned()
    }

    fn entry<'a>(&'a self, method: &'a str, path: &'a str) -> Entry<'a> {
        Entry {
            tenant: self.tenant.id,
            token_id: Some(self.token.id.as_str()),
            token_label: Some(self.token.label.as_str()),
            method,
            path,
        }
    }

    #[allow(clippy::too_many_arguments)] // the fields of one log entry
    async fn log_failure(
        &self,
        method: &str,
        path: &str,
        action: &str,
        kind: Kind,
        id: Option<&str>,
        name: Option<&str>,
        e: &ApiError,
    ) {
        activity::record(
            &*self.state.store,
            activity::event(
                &self.entry(method, path),
                action,
                Some(kind),
                id,
                name,
                vec![],
                e.0.status,
                Some(&e.0.detail),
            ),
        )
        .await;
    }

    pub async fn create(&self, rt: &ResourceType, kind: Kind, body: &Value, path: &str) -> ApiResult<Record> {
        let result = self.create_inner(rt, kind, body, path).await;
        if let Err(e) = &result {
            let name = body
                .get("userName")
                .or_else(|| body.get("displayName"))
                .and_then(Value::as_str);
            self.log_failure("POST", path, "create", kind, None, name, e).await;
        }
        result
    }

    /// Creates the resource; its log entry is committed with it.
    async fn create_inner(&self, rt: &ResourceType, kind: Kind, body: &Value, path: &str) -> ApiResult<Record> {
        let input = normalize_input(rt, body)?;
        if kind == Kind::User && input.members.is_some() {
            return Err(ScimError::invalid_value("users have no members").into());
        }
        let id = uuid::Uuid::new_v4().to_string();
        let now = scimitar_store::now_utc();
        let members = input.members.unwrap_or_default();
        let mut changes = scimitar_protocol::diff::changes(rt, &Map::new(), &input.doc);
        if !members.is_empty() {
            changes.extend(activity::member_changes(&[MemberOp::Add(members.clone())]));
        }
        let entry = activity::event(
            &self.entry("POST", path),
            "create",
            Some(kind),
            Some(&id),
            activity::name_of(&input.doc),
            changes,
            201,
            None,
        );
        let rec = timed(
            "create",
            self.state
                .store
                .create(self.tenant.id, kind, &id, input.doc, members, &now, Some(entry)),
        )
        .await?;
        Ok(rec)
    }

    /// Runs a modification and logs it; `f` computes the mutation.
    #[allow(clippy::too_many_arguments)] // one request's parameters
    async fn modify(
        &self,
        rt: &Arc<ResourceType>,
        kind: Kind,
        id: &str,
        if_match: Option<u64>,
        method: &str,
        path: &str,
        f: ModifyFn,
    ) -> ApiResult<Record> {
        // The closure attaches the change's log entry to the mutation (the
        // store records it in the same transaction) and reports the name
        // it saw, for the log of a failure.
        let seen: Arc<Mutex<Observed>> = Arc::new(Mutex::new(None));
        let seen2 = seen.clone();
        let (rt2, method2) = (rt.clone(), method.to_string());
        let template = activity::event(
            &self.entry(method, path),
            "update",
            Some(kind),
            Some(id),
            None,
            vec![],
            200,
            None,
        );
        let wrapped: ModifyFn = Arc::new(move |current, members| {
            if let Ok(mut s) = seen2.lock() {
                *s = activity::name_of(&current.doc).map(str::to_string);
            }
            let mut m = f(current, members)?;
            let mut changes = scimitar_protocol::diff::changes(&rt2, &current.doc, &m.doc);
            changes.extend(activity::member_changes(&m.member_ops));
            // No changes (Entra re-sending the same values): nothing to log.
            m.activity = (!changes.is_empty()).then(|| ActivityEvent {
                action: activity::action(kind, &method2, Some(&current.doc), Some(&m.doc), &m.member_ops).to_string(),
                name: activity::name_of(&m.doc).map(str::to_string),
                changes: Value::Array(changes),
                ..template.clone()
            });
            Ok(m)
        });
        let now = scimitar_store::now_utc();
        let result = timed(
            "modify",
            self.state
                .store
                .modify(self.tenant.id, kind, id, if_match, &now, wrapped),
        )
        .await
        .map_err(|e| store_err(e, kind, id));
        if let Err(e) = &result {
            let name = seen.lock().ok().and_then(|mut s| s.take());
            self.log_failure(method, path, "update", kind, Some(id), name.as_deref(), e)
                .await;
        }
        result
    }

    pub async fn replace(
        &self,
        rt: &Arc<ResourceType>,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<u64>,
        path: &str,
    ) -> ApiResult<Record> {
        let input = match normalize_input(rt, body) {
            Ok(i) => i,
            Err(e) => {
                let e = ApiError(e);
                self.log_failure("PUT", path, "update", kind, Some(id), None, &e).await;
                return Err(e);
            }
        };
        if kind == Kind::User && input.members.is_some() {
            return Err(ScimError::invalid_value("users have no members").into());
        }
        let rt2 = rt.clone();
        let f: ModifyFn = Arc::new(move |current: &Record, _| {
            let mut doc = input.doc.clone();
            merge_for_replace(&rt2, &current.doc, &mut doc)?;
            // Members omitted from a PUT are kept: clearing a large group
            // because a client left the list out would lose data.
            let member_ops = match &input.members {
                Some(m) => vec![MemberOp::Clear, MemberOp::Add(m.clone())],
                None => vec![],
            };
            Ok(Mutation {
                doc,
                member_ops,
                activity: None,
            })
        });
        self.modify(rt, kind, id, if_match, "PUT", path, f).await
    }

    pub async fn patch(
        &self,
        rt: &Arc<ResourceType>,
        kind: Kind,
        id: &str,
        body: &Value,
        if_match: Option<u64>,
        path: &str,
    ) -> ApiResult<Record> {
        let ops = match parse_patch_request(body, self.state.settings.max_patch_operations) {
            Ok(o) => o,
            Err(e) => {
                let e = ApiError(e);
                self.log_failure("PATCH", path, "update", kind, Some(id), None, &e)
                    .await;
                return Err(e);
            }
        };
        let rt2 = rt.clone();
        let f: ModifyFn = Arc::new(move |current: &Record, members| {
            let mut doc = current.doc.clone();
            let member_ops = apply_patch(&rt2, &mut doc, &ops, members)?;
            Ok(Mutation {
                doc,
                member_ops,
                activity: None,
            })
        });
        self.modify(rt, kind, id, if_match, "PATCH", path, f).await
    }

    pub async fn delete(&self, kind: Kind, id: &str, if_match: Option<u64>, path: &str) -> ApiResult<()> {
        let before = self.state.store.get(self.tenant.id, kind, id).await?;
        let result = timed("delete", self.state.store.delete(self.tenant.id, kind, id, if_match))
            .await
            .map_err(|e| store_err(e, kind, id));
        let name = before
            .as_ref()
            .and_then(|r| activity::name_of(&r.doc).map(str::to_string));
        match &result {
            Ok(()) => {
                activity::record(
                    &*self.state.store,
                    activity::event(
                        &self.entry("DELETE", path),
                        "delete",
                        Some(kind),
                        Some(id),
                        name.as_deref(),
                        vec![],
                        204,
                        None,
                    ),
                )
                .await;
            }
            Err(e) => {
                self.log_failure("DELETE", path, "delete", kind, Some(id), name.as_deref(), e)
                    .await
            }
        }
        result
    }

    /// The representation of a record for output, with derived values.
    pub async fn render(
        &self,
        rt: &ResourceType,
        rec: &Record,
        projection: &Projection,
    ) -> ApiResult<Map<String, Value>> {
        self.render_as(rt, rec, projection, false).await
    }

    /// The JSON text of a Group with all its members (see
    /// `output::to_json_with_members`), for the default projection.
    pub async fn group_json(&self, rt: &ResourceType, rec: &Record) -> ApiResult<Vec<u8>> {
        let members = self.state.store.members(self.tenant.id, &rec.id).await?;
        let without = Projection::parse(rt, None, Some("members"))?;
        let out = self.render_as(rt, rec, &without, false).await?;
        Ok(output::to_json_with_members(&out, &self.base, &members))
    }

    /// The representation of a resource just created: a new user belongs to
    /// no group yet, so its `groups` need no query.
    pub async fn render_created(
        &self,
        rt: &ResourceType,
        rec: &Record,
        projection: &Projection,
    ) -> ApiResult<Map<String, Value>> {
        self.render_as(rt, rec, projection, true).await
    }

    async fn render_as(
        &self,
        rt: &ResourceType,
        rec: &Record,
        projection: &Projection,
        created: bool,
    ) -> ApiResult<Map<String, Value>> {
        let store = &self.state.store;
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
                    d.members = Some(store.members(tenant, &rec.id).await?);
                }
            }
            Kind::User => {
                if let Some(attr) = rt.schema.attribute("groups")
                    && projection.wants(None, "groups", attr)
                {
                    d.groups = Some(if created {
                        Vec::new()
                    } else {
                        store.groups_of(tenant, &rec.id).await?
                    });
                }
                let manager = rec
                    .doc
                    .get(urn::ENTERPRISE_USER)
                    .and_then(|e| e.get("manager"))
                    .and_then(|m| m.get("value"))
                    .and_then(Value::as_str);
                if let Some(m) = manager {
                    d.manager_display = store.display_name(tenant, m).await?;
                }
            }
        }
        let meta = Meta {
            id: &rec.id,
            created: &rec.created,
            last_modified: &rec.last_modified,
            version: rec.version,
        };
        let mut out = output::representation(rt, &self.base, &rec.doc, &meta, d);
        if !projection.is_default() {
            projection.apply(rt, &mut out);
        }
        Ok(out)
    }
}

/// Runs a store call and records its latency (`scimitar_store_duration_seconds`).
pub async fn timed<T>(op: &'static str, f: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let out = f.await;
    metrics::histogram!("scimitar_store_duration_seconds", "op" => op).record(started.elapsed().as_secs_f64());
    out
}
