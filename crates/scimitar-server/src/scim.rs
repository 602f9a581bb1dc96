//! SCIM endpoints of one tenant's base URL: routing and HTTP handling.
//! Resource operations themselves are the application layer's
//! (`scimitar_app::Ops`).

use std::sync::Arc;

use axum::body::Body;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use scimitar_protocol::ScimError;
use scimitar_protocol::discovery::service_provider_config;
use scimitar_protocol::list::{
    ListRequest, check_filter_attributes, list_response, merge_key, merge_page, restrict_filter, sortable,
};
use scimitar_protocol::output::{self, etag};
use scimitar_protocol::project::Projection;
use scimitar_protocol::schema::{ResourceType, Schema, resource_type_to_json, schema_to_json};
use scimitar_store::{CursorPos, Kind, ListQuery, Record, Sort};
use serde_json::Value;

use scimitar_app::{Actor, Ops, Via};

use crate::AppState;
use crate::auth::authenticate;
use crate::body::read_json;
use crate::error::{ApiError, ApiResult, SCIM_JSON};

/// One authenticated request to a tenant's SCIM base URL.
struct Req {
    state: Arc<AppState>,
    ops: Ops,
    method: Method,
    headers: HeaderMap,
    query: Vec<(String, String)>,
    /// The request path below the base URL, for the activity log.
    path: String,
}

impl Req {
    /// The request, for an activity entry.
    fn via(&self) -> Via<'_> {
        Via {
            method: self.method.as_str(),
            path: &self.path,
        }
    }
}

/// A request as it arrives, before authentication.
struct Incoming {
    tenant: String,
    /// The path below `/scim/{tenant}/v2/`.
    rest: String,
    peer: SocketAddr,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
}

pub async fn dispatch_root(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let rest = String::new();
    handle(
        state,
        Incoming {
            tenant,
            rest,
            peer,
            method,
            uri,
            headers,
            body,
        },
    )
    .await
}

pub async fn dispatch(
    State(state): State<Arc<AppState>>,
    Path((tenant, rest)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(
        state,
        Incoming {
            tenant,
            rest,
            peer,
            method,
            uri,
            headers,
            body,
        },
    )
    .await
}

async fn handle(state: Arc<AppState>, req: Incoming) -> Response {
    let started = std::time::Instant::now();
    let endpoint = endpoint_label(&req.rest);
    let method_label = method_label(&req.method);
    let timeout = state.settings.request_timeout;
    let work = route(state, req);
    let resp = match tokio::time::timeout(timeout, work).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.into_response(),
        Err(_) => ApiError(ScimError::new(
            503,
            None,
            format!(
                "the request took longer than {} seconds and was abandoned",
                timeout.as_secs()
            ),
        ))
        .with_retry_after(5)
        .into_response(),
    };
    let status = format!("{}xx", resp.status().as_u16() / 100);
    let labels = [
        ("method", method_label.to_string()),
        ("endpoint", endpoint.to_string()),
        ("status", status),
    ];
    metrics::counter!("scimitar_requests_total", &labels).increment(1);
    metrics::histogram!("scimitar_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    resp
}

/// A bounded label for metrics: the method if SCIM has a use for it, else
/// `other` (hyper accepts any token as a method; each would be a new time
/// series, kept for the life of the process).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A bounded label for metrics: the endpoint, never ids or tenants.
fn endpoint_label(rest: &str) -> &'static str {
    let first = rest
        .split('/')
        .find(|s| !s.is_empty())
        .unwrap_or("")
        .to_ascii_lowercase();
    let has_id = rest.split('/').filter(|s| !s.is_empty()).count() > 1;
    match (first.as_str(), has_id) {
        ("users", false) => "users",
        ("users", true) => "user",
        ("groups", false) => "groups",
        ("groups", true) => "group",
        ("bulk", _) => "bulk",
        ("", _) | (".search", _) => "root",
        ("serviceproviderconfig" | "resourcetypes" | "schemas", _) => "discovery",
        _ => "other",
    }
}

async fn route(state: Arc<AppState>, incoming: Incoming) -> ApiResult<Response> {
    let Incoming {
        tenant,
        rest,
        peer,
        method,
        uri,
        headers,
        body,
    } = incoming;
    let (tenant, token) = authenticate(&state, &headers, &tenant, "scim", Some(peer)).await?;
    let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let actor = Actor::Token {
        id: token.id,
        label: token.label,
    };
    let ops = state.app.ops(tenant, actor).await?;
    let segments: Vec<String> = rest.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
    let first = segments.first().map(|s| s.to_ascii_lowercase());
    let req = Req {
        state: state.clone(),
        ops,
        method: method.clone(),
        headers,
        query,
        path: format!("/{rest}"),
    };
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    if method == Method::GET {
        state.app.count_read(req.ops.tenant.id);
    }
    match (first.as_deref(), &segs[..]) {
        (None, _) => match method {
            Method::GET => {
                let lr = ListRequest::from_query(req.query.iter().map(|(k, v)| (k.as_str(), v.as_str())), state.settings.filter_limits)?;
                root_search(&req, lr).await
            }
            _ => Err(method_not_allowed(&["GET"])),
        },
        (Some(".search"), [_]) => match method {
            Method::POST => {
                let (body, _charge) = read_json(&state, &req.headers, body, state.settings.max_body_bytes).await?;
                let lr = ListRequest::from_search_body(&body, state.settings.filter_limits)?;
                drop(body);
                root_search(&req, lr).await
            }
            _ => Err(method_not_allowed(&["POST"])),
        },
        (Some("serviceproviderconfig"), [_]) => match method {
            Method::GET => Ok(scim_json(StatusCode::OK, &service_provider_config(&state.capabilities(), &req.ops.base))),
            _ => Err(method_not_allowed(&["GET"])),
        },
        (Some("resourcetypes"), [_, rest @ ..]) if rest.len() <= 1 => {
            if method != Method::GET {
                return Err(method_not_allowed(&["GET"]));
            }
            let all: Vec<Value> = req.ops.rts.iter().map(|rt| resource_type_to_json(rt, &req.ops.base)).collect();
            match rest.first() {
                None => Ok(scim_json(StatusCode::OK, &list_response(all.len() as u64, 1, all))),
                Some(id) => match req.ops.rts.iter().find(|rt| rt.id.eq_ignore_ascii_case(id)) {
                    Some(rt) => Ok(scim_json(StatusCode::OK, &resource_type_to_json(rt, &req.ops.base))),
                    None => Err(ScimError::not_found(format!("no resource type '{id}'")).into()),
                },
            }
        }
        (Some("schemas"), [_, rest @ ..]) => {
            if method != Method::GET {
                return Err(method_not_allowed(&["GET"]));
            }
            let schemas = all_schemas(&req.ops.rts);
            if rest.is_empty() {
                let all: Vec<Value> = schemas.iter().map(|s| schema_to_json(s, &req.ops.base)).collect();
                return Ok(scim_json(StatusCode::OK, &list_response(all.len() as u64, 1, all)));
            }
            let id = rest.join("/");
            match schemas.iter().find(|s| s.id.eq_ignore_ascii_case(&id)) {
                Some(s) => Ok(scim_json(StatusCode::OK, &schema_to_json(s, &req.ops.base))),
                None => Err(ScimError::not_found(format!("no schema '{id}'")).into()),
            }
        }
        (Some("me"), _) => Err(ScimError::not_implemented(
            "/Me is not supported: a provisioning Secret Token authenticates an identity provider, not a user, so there is no authenticated subject",
        )
        .into()),
        (Some("bulk"), [_]) => match method {
            Method::POST => {
                let limit = state.settings.bulk_max_payload_bytes;
                let (bytes, mut charge) = crate::body::read(&state, &req.headers, body, limit).await?;
                crate::body::scan(&bytes, &crate::body::Limits::default(), None)?;
                let bulk = crate::bulk::parse(&bytes, state.settings.bulk_max_operations)?;
                // Operations run one at a time: one operation's tree is
                // in memory at once, beside the request's text.
                let deadline = crate::body::queue_deadline(&state);
                state.body_budget.take_tree(&mut charge, bulk.largest_tree, deadline).await?;
                let out = crate::bulk::run(&req.ops, bulk).await;
                Ok(scim_json(StatusCode::OK, &out))
            }
            _ => Err(method_not_allowed(&["POST"])),
        },
        (Some("users"), [_, rest @ ..]) => resource(req, body, "User", rest).await,
        (Some("groups"), [_, rest @ ..]) => resource(req, body, "Group", rest).await,
        _ => Err(ScimError::not_found(format!("no SCIM endpoint at '/{rest}'")).into()),
    }
}

fn all_schemas(rts: &[Arc<ResourceType>]) -> Vec<Schema> {
    let mut out: Vec<Schema> = Vec::new();
    for rt in rts {
        if !out.iter().any(|s| s.id == rt.schema.id) {
            out.push(rt.schema.clone());
        }
        for (ext, _) in &rt.extensions {
            if !out.iter().any(|s| s.id == ext.id) {
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

pub fn scim_json(status: StatusCode, v: &Value) -> Response {
    scim_bytes(status, serde_json::to_vec(v).unwrap_or_default())
}

/// A response of JSON text already serialised.
fn scim_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    resp
}

async fn resource(req: Req, body: Body, rt_name: &str, rest: &[&str]) -> ApiResult<Response> {
    let rt = req
        .ops
        .rt(rt_name)
        .ok_or_else(|| ScimError::not_found("unknown resource type"))?;
    let kind = Kind::of(&rt).ok_or_else(|| ScimError::not_found("unknown resource type"))?;
    let state = req.state.clone();
    let limit = state.settings.max_body_bytes;
    match (rest, req.method.clone()) {
        ([], Method::GET) => {
            let lr = ListRequest::from_query(
                req.query.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                state.settings.filter_limits,
            )?;
            list(&req, rt, kind, lr).await
        }
        ([], Method::POST) => {
            let projection = projection_of(&req, &rt)?;
            let (body, _charge) = read_resource(&state, &req.headers, body, &rt).await?;
            let rec = req.ops.create(&rt, kind, &body, req.via()).await?;
            drop(body);
            let out = req.ops.render_json(&rt, &rec, &projection, true).await?;
            let loc = output::location(&req.ops.base, &rt, &rec.id);
            Ok(resource_bytes_response(StatusCode::CREATED, &rec, out, Some(loc)))
        }
        ([], _) => Err(method_not_allowed(&["GET", "POST"])),
        ([s], Method::POST) if s.eq_ignore_ascii_case(".search") => {
            let (body, _charge) = read_json(&state, &req.headers, body, limit).await?;
            let lr = ListRequest::from_search_body(&body, state.settings.filter_limits)?;
            drop(body);
            list(&req, rt, kind, lr).await
        }
        ([s], _) if s.eq_ignore_ascii_case(".search") => Err(method_not_allowed(&["POST"])),
        ([id], Method::GET) => get_one(&req, rt, kind, id).await,
        ([id], Method::PUT) => {
            let projection = projection_of(&req, &rt)?;
            let (body, _charge) = read_resource(&state, &req.headers, body, &rt).await?;
            let expected = if_match(&req.headers)?;
            let rec = req.ops.replace(&rt, kind, id, &body, expected, req.via()).await?;
            drop(body);
            let out = req.ops.render_json(&rt, &rec, &projection, false).await?;
            Ok(resource_bytes_response(StatusCode::OK, &rec, out, None))
        }
        ([id], Method::PATCH) => {
            let projection = projection_of(&req, &rt)?;
            let (body, _charge) = read_json(&state, &req.headers, body, limit).await?;
            let expected = if_match(&req.headers)?;
            let rec = req.ops.patch(&rt, kind, id, &body, expected, req.via()).await?;
            drop(body);
            // Entra prefers 204 for Group PATCH (a group's members can be
            // many); Users get the updated resource. A client asking for
            // attributes gets 200 with them.
            if kind == Kind::Group && param(&req, "attributes").is_none() && param(&req, "excludedAttributes").is_none()
            {
                let mut resp = StatusCode::NO_CONTENT.into_response();
                if let Ok(v) = HeaderValue::from_str(&etag(rec.version)) {
                    resp.headers_mut().insert(header::ETAG, v);
                }
                return Ok(resp);
            }
            let out = req.ops.render_json(&rt, &rec, &projection, false).await?;
            Ok(resource_bytes_response(StatusCode::OK, &rec, out, None))
        }
        ([id], Method::DELETE) => {
            let expected = if_match(&req.headers)?;
            req.ops.delete(kind, id, expected, req.via()).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ([_], _) => Err(method_not_allowed(&["GET", "PUT", "PATCH", "DELETE"])),
        _ => Err(ScimError::not_found("no such resource").into()),
    }
}

/// Reads a POST or PUT body of a resource: an attribute the resource
/// type does not have is refused before anything is parsed.
async fn read_resource(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    rt: &ResourceType,
) -> ApiResult<(Value, crate::body::Charge)> {
    let (bytes, charge) = crate::body::read(state, headers, body, state.settings.max_body_bytes).await?;
    let keys = |k: &str| scimitar_protocol::resource::check_key(rt, k);
    crate::body::parse(state, bytes, charge, Some(&keys)).await
}

fn param<'a>(req: &'a Req, name: &str) -> Option<&'a str> {
    req.query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// An entity tag of a conditional request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    /// `*`.
    Any,
    /// A version; `weak` for `W/"…"`.
    Version { version: u64, weak: bool },
}

/// One entity tag as a version. An unknown tag can never match: version 0
/// does not exist.
fn parse_tag(tag: &str) -> Tag {
    if tag == "*" {
        return Tag::Any;
    }
    let (weak, t) = match tag.strip_prefix("W/") {
        Some(rest) => (true, rest),
        None => (false, tag),
    };
    Tag::Version {
        version: t.trim_matches('"').parse::<u64>().unwrap_or(0),
        weak,
    }
}

/// The version a strong comparison (RFC 7232 §2.3.2) can match: a weak tag
/// matches no version, since our ETags are strong. For `If-Match` and
/// Bulk's `version`.
pub(crate) fn strong_version(tag: &str) -> Option<u64> {
    match parse_tag(tag.trim()) {
        Tag::Any => None,
        Tag::Version { weak: true, .. } => Some(0),
        Tag::Version { version, .. } => Some(version),
    }
}

/// Parses an `If-Match` / `If-None-Match` header into its tags.
fn etag_tags(headers: &HeaderMap, name: header::HeaderName) -> ApiResult<Option<Vec<Tag>>> {
    let Some(v) = headers.get(name.clone()) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| ScimError::invalid_value(format!("invalid {name} header")))?;
    Ok(Some(
        v.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(parse_tag)
            .collect(),
    ))
}

/// The version `If-Match` requires, if any (`*` means any). If-Match
/// compares strongly (RFC 7232 §3.1): `W/"3"` matches nothing (412).
pub fn if_match(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    match etag_tags(headers, header::IF_MATCH)? {
        None => Ok(None),
        Some(tags) if tags.contains(&Tag::Any) => Ok(None),
        Some(tags) => Ok(Some(
            tags.iter()
                .find_map(|t| match t {
                    Tag::Version { version, weak: false } => Some(*version),
                    _ => None,
                })
                .unwrap_or(0),
        )),
    }
}

fn resource_bytes_response(status: StatusCode, rec: &Record, body: Vec<u8>, location: Option<String>) -> Response {
    let mut resp = scim_bytes(status, body);
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

async fn get_one(req: &Req, rt: Arc<ResourceType>, kind: Kind, id: &str) -> ApiResult<Response> {
    let projection = projection_of(req, &rt)?;
    let rec = req.ops.get(kind, id).await?;
    // If-None-Match compares weakly (RFC 7232 §3.2): `W/"3"` matches "3".
    if let Some(tags) = etag_tags(&req.headers, header::IF_NONE_MATCH)?
        && tags
            .iter()
            .any(|t| matches!(t, Tag::Any) || matches!(t, Tag::Version { version, .. } if *version == rec.version))
    {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&etag(rec.version)) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        return Ok(resp);
    }
    if kind == Kind::Group && projection.is_default() {
        // Members written straight from the rows: a large group answers in
        // a fraction of the memory and time of a JSON tree.
        let body = req.ops.group_json(&rt, &rec).await?;
        return Ok(resource_bytes_response(StatusCode::OK, &rec, body, None));
    }
    let out = req.ops.render_json(&rt, &rec, &projection, false).await?;
    Ok(resource_bytes_response(StatusCode::OK, &rec, out, None))
}

fn page_size(req: &Req, lr: &ListRequest) -> usize {
    let s = &req.state.settings;
    lr.count.unwrap_or(s.default_count).min(s.max_results)
}

async fn list(req: &Req, rt: Arc<ResourceType>, kind: Kind, lr: ListRequest) -> ApiResult<Response> {
    let projection = Projection::parse(&rt, lr.attributes.as_deref(), lr.excluded_attributes.as_deref())?;
    let count = page_size(req, &lr);
    let filter_text = lr.filter.as_ref().map(ToString::to_string).unwrap_or_default();
    let key = req.state.cursor_key().await?;
    let cursor = match &lr.cursor {
        None => None,
        Some(_) if lr.sort_by.is_some() => {
            return Err(ScimError::invalid_value(
                "cursor pagination returns resources in a fixed order; drop sortBy or use startIndex",
            )
            .into());
        }
        Some(c) if c.is_empty() => Some(CursorPos::After(0)),
        Some(c) => Some(crate::cursor::decode(&key, req.ops.tenant.id, kind, &filter_text, c)?),
    };
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
        cursor,
    };
    let page = req.ops.list(query).await?;
    let mut resources = Vec::with_capacity(page.records.len());
    for rec in &page.records {
        resources.push(Value::Object(req.ops.render(&rt, rec, &projection).await?));
    }
    let Some(pos) = cursor else {
        return Ok(scim_json(
            StatusCode::OK,
            &list_response(page.total, lr.start_index, resources),
        ));
    };
    // RFC 9865 response: no startIndex; cursors to the neighbouring pages.
    let mut body = list_response(page.total, 1, resources);
    if let Some(obj) = body.as_object_mut() {
        obj.remove("startIndex");
        let enc = |p: CursorPos| crate::cursor::encode(&key, req.ops.tenant.id, kind, &filter_text, p);
        let (first, last) = (page.records.first().map(|r| r.seq), page.records.last().map(|r| r.seq));
        let (next, prev) = match pos {
            CursorPos::After(k) => (
                if page.has_more {
                    last.map(CursorPos::After)
                } else {
                    None
                },
                if k > 0 {
                    first.map(CursorPos::Before).or(Some(CursorPos::Before(k + 1)))
                } else {
                    None
                },
            ),
            CursorPos::Before(k) => (
                last.map(CursorPos::After).or(Some(CursorPos::After(k - 1))),
                if page.has_more {
                    first.map(CursorPos::Before)
                } else {
                    None
                },
            ),
        };
        if let Some(n) = next {
            obj.insert("nextCursor".into(), Value::String(enc(n)));
        }
        if let Some(p) = prev {
            obj.insert("previousCursor".into(), Value::String(enc(p)));
        }
    }
    Ok(scim_json(StatusCode::OK, &body))
}

/// Search across resource types (RFC 7644 §3.4.3): Users then Groups, or
/// merged by `sortBy`. A filter naming an attribute that a type lacks
/// matches nothing of that type. Only the page returned is rendered.
async fn root_search(req: &Req, lr: ListRequest) -> ApiResult<Response> {
    if lr.cursor.is_some() {
        return Err(
            ScimError::invalid_value("cursor pagination is available per resource type (/Users, /Groups)").into(),
        );
    }
    if let Some(f) = &lr.filter {
        check_filter_attributes(&req.ops.rts, f)?;
    }
    let count = page_size(req, &lr);
    let window = lr.start_index.saturating_sub(1).saturating_add(count);
    let mut total = 0u64;
    let mut found: Vec<(Value, (usize, Record))> = Vec::new();
    let mut projections = Vec::new();
    let mut last_err = None;
    let mut answered = 0;
    for rt in req.ops.rts.iter() {
        let Some(kind) = Kind::of(rt) else { continue };
        let projection = Projection::parse(rt, lr.attributes.as_deref(), lr.excluded_attributes.as_deref())?;
        let sort = lr.sort_by.clone().filter(|by| sortable(rt, by)).map(|by| Sort {
            by,
            order: lr.sort_order,
        });
        let query = ListQuery {
            kind,
            rt: rt.clone(),
            filter: lr.filter.as_ref().map(|f| restrict_filter(rt, f)),
            sort,
            start_index: 1,
            count: window,
            cursor: None,
        };
        let page = match req.ops.list(query).await {
            Ok(p) => p,
            Err(e) if e.scim_type == Some(scimitar_protocol::ScimType::InvalidFilter) => {
                last_err = Some(e);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        answered += 1;
        total += page.total;
        let which = projections.len();
        projections.push((rt.clone(), projection));
        for rec in page.records {
            let key = lr
                .sort_by
                .as_deref()
                .map(|by| merge_key(&rec.doc, by))
                .unwrap_or(Value::Null);
            found.push((key, (which, rec)));
        }
    }
    if answered == 0 {
        return Err(last_err
            .unwrap_or_else(|| ScimError::invalid_filter("the filter matches no resource type"))
            .into());
    }
    let order = lr.sort_by.as_ref().map(|_| lr.sort_order);
    let mut resources = Vec::new();
    for (which, rec) in merge_page(found, order, lr.start_index, count) {
        if let Some((rt, projection)) = projections.get(which) {
            resources.push(Value::Object(req.ops.render(rt, &rec, projection).await?));
        }
    }
    Ok(scim_json(
        StatusCode::OK,
        &list_response(total, lr.start_index, resources),
    ))
}
