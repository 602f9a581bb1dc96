//! SCIM endpoints of one tenant's base URL.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use scimitar_protocol::ScimError;
use scimitar_protocol::discovery::service_provider_config;
use scimitar_protocol::list::{ListRequest, list_response};
use scimitar_protocol::output::{self, Derived, Meta, etag};
use scimitar_protocol::patch::{apply_patch, parse_patch_request};
use scimitar_protocol::project::Projection;
use scimitar_protocol::resource::{merge_for_replace, normalize_input};
use scimitar_protocol::schema::{ResourceType, resource_type_to_json, schema_to_json, urn};
use scimitar_store::{Kind, ListQuery, ModifyFn, Mutation, Record, Sort, Tenant};
use serde_json::{Map, Value};

use crate::AppState;
use crate::auth::authenticate;
use crate::error::{ApiError, ApiResult, SCIM_JSON};

pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError(ScimError::internal("internal server error")).into_response()
}

/// One request to a tenant's SCIM base URL.
struct Req {
    state: Arc<AppState>,
    tenant: Tenant,
    method: Method,
    headers: HeaderMap,
    query: Vec<(String, String)>,
    base: String,
}

pub async fn dispatch_root(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(state, tenant, String::new(), method, uri, headers, body).await
}

pub async fn dispatch(
    State(state): State<Arc<AppState>>,
    Path((tenant, rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(state, tenant, rest, method, uri, headers, body).await
}

async fn handle(
    state: Arc<AppState>,
    tenant: String,
    rest: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match route(state, tenant, rest, method, uri, headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn route(
    state: Arc<AppState>,
    tenant: String,
    rest: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let (tenant, _token) = authenticate(&state, &headers, &tenant).await?;
    let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let base = state.settings.tenant_url(&tenant.name);
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let first = segments.first().map(|s| s.to_ascii_lowercase());
    let req = Req {
        state: state.clone(),
        tenant,
        method: method.clone(),
        headers,
        query,
        base,
    };
    match (first.as_deref(), &segments[..]) {
        (None, _) => match method {
            Method::GET => Err(ScimError::not_implemented("search across resource types (GET on the base URL) is not supported; query /Users or /Groups").into()),
            _ => Err(method_not_allowed(&["GET"])),
        },
        (Some(".search"), [_]) => match method {
            Method::POST => Err(ScimError::not_implemented("search across resource types is not supported; use /Users/.search or /Groups/.search").into()),
            _ => Err(method_not_allowed(&["POST"])),
        },
        (Some("serviceproviderconfig"), [_]) => match method {
            Method::GET => Ok(scim_json(StatusCode::OK, &service_provider_config(&state.capabilities(), &req.base))),
            _ => Err(method_not_allowed(&["GET"])),
        },
        (Some("resourcetypes"), [_, rest @ ..]) if rest.len() <= 1 => {
            if method != Method::GET {
                return Err(method_not_allowed(&["GET"]));
            }
            let all: Vec<Value> = state.resource_types.iter().map(|rt| resource_type_to_json(rt, &req.base)).collect();
            match rest.first() {
                None => Ok(scim_json(StatusCode::OK, &list_response(all.len() as u64, 1, all))),
                Some(id) => {
                    let rt = state.resource_types.iter().find(|rt| rt.id.eq_ignore_ascii_case(id));
                    match rt {
                        Some(rt) => Ok(scim_json(StatusCode::OK, &resource_type_to_json(rt, &req.base))),
                        None => Err(ScimError::not_found(format!("no resource type '{id}'")).into()),
                    }
                }
            }
        }
        (Some("schemas"), [_, rest @ ..]) => {
            if method != Method::GET {
                return Err(method_not_allowed(&["GET"]));
            }
            let schemas = all_schemas(&state);
            if rest.is_empty() {
                let all: Vec<Value> = schemas.iter().map(|s| schema_to_json(s, &req.base)).collect();
                return Ok(scim_json(StatusCode::OK, &list_response(all.len() as u64, 1, all)));
            }
            // A schema id is a URN; it may have arrived split on '/' never,
            // but join defensively.
            let id = rest.join("/");
            match schemas.iter().find(|s| s.id.eq_ignore_ascii_case(&id)) {
                Some(s) => Ok(scim_json(StatusCode::OK, &schema_to_json(s, &req.base))),
                None => Err(ScimError::not_found(format!("no schema '{id}'")).into()),
            }
        }
        (Some("me"), _) => Err(ScimError::not_implemented(
            "/Me is not supported: a provisioning Secret Token authenticates an identity provider, not a user, so there is no authenticated subject",
        )
        .into()),
        (Some("bulk"), [_]) => Err(ScimError::not_implemented("bulk operations are not supported (bulk.supported is false)").into()),
        (Some("users"), [_, rest @ ..]) => resource(req, body, "User", rest).await,
        (Some("groups"), [_, rest @ ..]) => resource(req, body, "Group", rest).await,
        _ => Err(ScimError::not_found(format!("no SCIM endpoint at '/{rest}'")).into()),
    }
}

fn all_schemas(state: &AppState) -> Vec<scimitar_protocol::schema::Schema> {
    let mut out = Vec::new();
    for rt in &state.resource_types {
        if !out
            .iter()
            .any(|s: &scimitar_protocol::schema::Schema| s.id == rt.schema.id)
        {
            out.push(rt.schema.clone());
        }
        for (ext, _) in &rt.extensions {
            if !out.iter().any(|s: &scimitar_protocol::schema::Schema| s.id == ext.id) {
                out.push(ext.clone());
            }
        }
    }
    out
}

fn method_not_allowed(allowed: &[&str]) -> ApiError {
    ApiError(ScimError::new(
        405,
        None,
        format!("method not allowed here; allowed: {}", allowed.join(", ")),
    ))
}

fn scim_json(status: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    resp
}

async fn resource(req: Req, body: Body, rt_name: &str, rest: &[&str]) -> ApiResult<Response> {
    let Some(rt) = req.state.resource_types.iter().find(|rt| rt.name == rt_name).cloned() else {
        return Err(ScimError::not_found("unknown resource type").into());
    };
    let kind = Kind::of(&rt).ok_or_else(|| ScimError::not_found("unknown resource type"))?;
    match (rest, req.method.clone()) {
        ([], Method::GET) => list(req, rt, kind, None).await,
        ([], Method::POST) => create(req, body, rt, kind).await,
        ([], _) => Err(method_not_allowed(&["GET", "POST"])),
        ([s], Method::POST) if s.eq_ignore_ascii_case(".search") => {
            let body = read_json(&req.state, &req.headers, body).await?;
            let lr = ListRequest::from_search_body(&body, req.state.settings.filter_limits)?;
            list(req, rt, kind, Some(lr)).await
        }
        ([s], _) if s.eq_ignore_ascii_case(".search") => Err(method_not_allowed(&["POST"])),
        ([id], Method::GET) => get_one(req, rt, kind, id).await,
        ([id], Method::PUT) => replace(req, body, rt, kind, id).await,
        ([id], Method::PATCH) => patch(req, body, rt, kind, id).await,
        ([id], Method::DELETE) => delete(req, kind, id).await,
        ([_], _) => Err(method_not_allowed(&["GET", "PUT", "PATCH", "DELETE"])),
        _ => Err(ScimError::not_found("no such resource").into()),
    }
}

async fn read_json(state: &AppState, headers: &HeaderMap, body: Body) -> ApiResult<Value> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        let ct = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if !(ct.is_empty()
            || ct == "application/json"
            || ct == "application/scim+json"
            || ct.ends_with("+json")
            || ct == "text/json")
        {
            return Err(ApiError(ScimError::new(
                415,
                None,
                format!("unsupported Content-Type '{ct}'; send application/scim+json or application/json"),
            )));
        }
    }
    let limit = state.settings.max_body_bytes;
    let bytes: Bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ScimError::payload_too_large(format!("the request body exceeds the maximum of {limit} bytes")))?;
    if bytes.is_empty() {
        return Err(ScimError::invalid_syntax("the request body is empty; a JSON object was expected").into());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}")).into())
}

fn param<'a>(req: &'a Req, name: &str) -> Option<&'a str> {
    req.query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses an `If-Match` / `If-None-Match` header into versions; `*` is `Some(None)`.
fn etag_versions(headers: &HeaderMap, name: header::HeaderName) -> ApiResult<Option<Vec<Option<u64>>>> {
    let Some(v) = headers.get(name.clone()) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| ScimError::invalid_value(format!("invalid {name} header")))?;
    let mut out = Vec::new();
    for tag in v.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if tag == "*" {
            out.push(None);
            continue;
        }
        let t = tag.trim_start_matches("W/").trim_matches('"');
        // An unknown tag can never match: use a version that does not exist.
        out.push(Some(t.parse::<u64>().unwrap_or(0)));
    }
    Ok(Some(out))
}

/// The version `If-Match` requires, if any. `*` means any version.
fn if_match(headers: &HeaderMap, current: Option<u64>) -> ApiResult<Option<u64>> {
    match etag_versions(headers, header::IF_MATCH)? {
        None => Ok(None),
        Some(tags) => {
            if tags.iter().any(Option::is_none) {
                return Ok(None);
            }
            match (current, tags.as_slice()) {
                (Some(c), _) if tags.contains(&Some(c)) => Ok(Some(c)),
                (_, [Some(v)]) => Ok(Some(*v)),
                _ => Ok(Some(0)),
            }
        }
    }
}

async fn derived(req: &Req, rt: &ResourceType, rec: &Record, projection: &Projection) -> ApiResult<Derived> {
    let store = &req.state.store;
    let tenant = req.tenant.id;
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
                d.groups = Some(store.groups_of(tenant, &rec.id).await?);
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
    Ok(d)
}

async fn render(req: &Req, rt: &ResourceType, rec: &Record, projection: &Projection) -> ApiResult<Map<String, Value>> {
    let d = derived(req, rt, rec, projection).await?;
    let meta = Meta {
        id: &rec.id,
        created: &rec.created,
        last_modified: &rec.last_modified,
        version: rec.version,
    };
    let mut out = output::representation(rt, &req.base, &rec.doc, &meta, d);
    if !projection.is_default() {
        projection.apply(rt, &mut out);
    }
    Ok(out)
}

fn resource_response(status: StatusCode, rec: &Record, body: Map<String, Value>, location: Option<String>) -> Response {
    let mut resp = scim_json(status, &Value::Object(body));
    if let Ok(v) = HeaderValue::from_str(&etag(rec.version)) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    if let Some(loc) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

fn projection_of(req: &Req, rt: &ResourceType) -> ApiResult<Projection> {
    Ok(Projection::parse(
        rt,
        param(req, "attributes"),
        param(req, "excludedAttributes"),
    )?)
}

async fn create(req: Req, body: Body, rt: Arc<ResourceType>, kind: Kind) -> ApiResult<Response> {
    let projection = projection_of(&req, &rt)?;
    let body = read_json(&req.state, &req.headers, body).await?;
    let input = normalize_input(&rt, &body)?;
    if kind == Kind::User && input.members.is_some() {
        return Err(ScimError::invalid_value("users have no members").into());
    }
    let id = uuid::Uuid::new_v4().to_string();
    let now = scimitar_store::now_utc();
    let rec = req
        .state
        .store
        .create(
            req.tenant.id,
            kind,
            &id,
            input.doc,
            input.members.unwrap_or_default(),
            &now,
        )
        .await?;
    let out = render(&req, &rt, &rec, &projection).await?;
    let loc = output::location(&req.base, &rt, &rec.id);
    Ok(resource_response(StatusCode::CREATED, &rec, out, Some(loc)))
}

async fn get_one(req: Req, rt: Arc<ResourceType>, kind: Kind, id: &str) -> ApiResult<Response> {
    let projection = projection_of(&req, &rt)?;
    let rec = req
        .state
        .store
        .get(req.tenant.id, kind, id)
        .await?
        .ok_or_else(|| not_found(&rt, id))?;
    if let Some(tags) = etag_versions(&req.headers, header::IF_NONE_MATCH)?
        && tags.iter().any(|t| t.is_none() || *t == Some(rec.version))
    {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag(rec.version)) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        return Ok(resp);
    }
    let out = render(&req, &rt, &rec, &projection).await?;
    Ok(resource_response(StatusCode::OK, &rec, out, None))
}

fn not_found(rt: &ResourceType, id: &str) -> ApiError {
    ApiError(ScimError::not_found(format!("{} '{id}' not found", rt.name)))
}

async fn replace(req: Req, body: Body, rt: Arc<ResourceType>, kind: Kind, id: &str) -> ApiResult<Response> {
    let projection = projection_of(&req, &rt)?;
    let body = read_json(&req.state, &req.headers, body).await?;
    let input = normalize_input(&rt, &body)?;
    if kind == Kind::User && input.members.is_some() {
        return Err(ScimError::invalid_value("users have no members").into());
    }
    let expected = if_match(&req.headers, None)?;
    let rt2 = rt.clone();
    let f: ModifyFn = Arc::new(move |current: &Record, _| {
        let mut doc = input.doc.clone();
        merge_for_replace(&rt2, &current.doc, &mut doc)?;
        // Members omitted from a PUT are kept: clearing a large group
        // because a client left the list out would lose data.
        let member_ops = match &input.members {
            Some(m) => vec![
                scimitar_protocol::patch::MemberOp::Clear,
                scimitar_protocol::patch::MemberOp::Add(m.clone()),
            ],
            None => vec![],
        };
        Ok(Mutation { doc, member_ops })
    });
    let now = scimitar_store::now_utc();
    let rec = req
        .state
        .store
        .modify(req.tenant.id, kind, id, expected, &now, f)
        .await
        .map_err(|e| map_missing(e, &rt, id))?;
    let out = render(&req, &rt, &rec, &projection).await?;
    Ok(resource_response(StatusCode::OK, &rec, out, None))
}

fn map_missing(e: scimitar_store::StoreError, rt: &ResourceType, id: &str) -> ApiError {
    match e {
        scimitar_store::StoreError::NotFound => not_found(rt, id),
        other => other.into(),
    }
}

async fn patch(req: Req, body: Body, rt: Arc<ResourceType>, kind: Kind, id: &str) -> ApiResult<Response> {
    let projection = projection_of(&req, &rt)?;
    let body = read_json(&req.state, &req.headers, body).await?;
    let ops = parse_patch_request(&body, req.state.settings.max_patch_operations)?;
    let expected = if_match(&req.headers, None)?;
    let rt2 = rt.clone();
    let f: ModifyFn = Arc::new(move |current: &Record, members| {
        let mut doc = current.doc.clone();
        let member_ops = apply_patch(&rt2, &mut doc, &ops, members)?;
        Ok(Mutation { doc, member_ops })
    });
    let now = scimitar_store::now_utc();
    let rec = req
        .state
        .store
        .modify(req.tenant.id, kind, id, expected, &now, f)
        .await
        .map_err(|e| map_missing(e, &rt, id))?;
    // Entra prefers 204 for Group PATCH (a group's members can be many);
    // Users get the updated resource. A client asking for attributes gets 200.
    if kind == Kind::Group && param(&req, "attributes").is_none() && param(&req, "excludedAttributes").is_none() {
        let mut resp = StatusCode::NO_CONTENT.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag(rec.version)) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        return Ok(resp);
    }
    let out = render(&req, &rt, &rec, &projection).await?;
    Ok(resource_response(StatusCode::OK, &rec, out, None))
}

async fn delete(req: Req, kind: Kind, id: &str) -> ApiResult<Response> {
    let expected = if_match(&req.headers, None)?;
    req.state
        .store
        .delete(req.tenant.id, kind, id, expected)
        .await
        .map_err(|e| match e {
            scimitar_store::StoreError::NotFound => {
                ApiError(ScimError::not_found(format!("{} '{id}' not found", kind.as_str())))
            }
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list(req: Req, rt: Arc<ResourceType>, kind: Kind, search: Option<ListRequest>) -> ApiResult<Response> {
    let lr = match search {
        Some(lr) => lr,
        None => ListRequest::from_query(
            req.query.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            req.state.settings.filter_limits,
        )?,
    };
    let projection = Projection::parse(&rt, lr.attributes.as_deref(), lr.excluded_attributes.as_deref())?;
    let settings = &req.state.settings;
    let count = lr.count.unwrap_or(settings.default_count).min(settings.max_results);
    let query = ListQuery {
        kind,
        rt: rt.clone(),
        filter: lr.filter.clone(),
        sort: lr.sort_by.clone().map(|by| Sort {
            by,
            order: lr.sort_order,
        }),
        start_index: lr.start_index,
        count,
    };
    let page = req.state.store.list(req.tenant.id, query).await?;
    let mut resources = Vec::with_capacity(page.records.len());
    for rec in &page.records {
        resources.push(Value::Object(render(&req, &rt, rec, &projection).await?));
    }
    Ok(scim_json(
        StatusCode::OK,
        &list_response(page.total, lr.start_index, resources),
    ))
}
