//! The tenant administration API (`/admin/v1/tenants/{tenant}/…`), for the
//! console and scripts. Authenticated by a token of scope `admin` for that
//! tenant; provisioning tokens (scope `scim`) are refused here, so an
//! identity provider cannot change a tenant's schema or read its log.
//! Provisioning jobs are managed here too (`jobs`…), through the
//! application layer's `JobFiles`, which the binary registers: this crate
//! does not depend on the engine.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scimitar_app::Actor;
use scimitar_app::jobs::JobFile;
use scimitar_app::schemas::NewExtension;
use scimitar_protocol::ScimError;
use scimitar_protocol::activity as activity_filter;
use scimitar_protocol::schema::schema_to_json;
use scimitar_store::{ActivityQuery, Tenant};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{authenticate, client_ip};
use crate::body::{Charge, content_type, parse, queue_deadline, read_bytes, read_json};
use crate::error::ApiResult;
use crate::scim::scim_json;

/// Authenticates an admin-API request; the actor of what it does.
async fn admin(state: &AppState, headers: &HeaderMap, tenant: &str, peer: SocketAddr) -> ApiResult<(Tenant, Actor)> {
    let (tenant, token) = authenticate(state, headers, tenant, "admin", Some(peer)).await?;
    let actor = Actor::AdminApi {
        token_id: token.id,
        ip: client_ip(state, headers, Some(peer)),
    };
    Ok((tenant, actor))
}

pub async fn schemas(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let run = async {
        let (tenant, actor) = admin(&state, &headers, &tenant, peer).await?;
        match method {
            axum::http::Method::GET => {
                let exts = state.app.store.list_extensions(tenant.id).await?;
                let list: Vec<Value> = exts
                    .iter()
                    .map(|e| json!({"resourceType": e.resource_type, "required": e.required, "schema": e.schema}))
                    .collect();
                Ok(scim_json(StatusCode::OK, &json!({"extensions": list})))
            }
            axum::http::Method::POST => {
                let (body, _charge) = read_json(&state, &headers, body, state.settings.max_body_bytes).await?;
                let ext = state
                    .app
                    .register_extension(&actor, &tenant, NewExtension::from_json(&body)?)
                    .await?;
                let base = state.app.tenant_url(&tenant.name);
                Ok(scim_json(StatusCode::CREATED, &schema_to_json(&ext, &base)))
            }
            _ => Err(ScimError::new(405, None, "use GET or POST").into()),
        }
    };
    let r: ApiResult<Response> = run.await;
    r.unwrap_or_else(IntoResponse::into_response)
}

pub async fn schema_one(
    State(state): State<Arc<AppState>>,
    Path((tenant, urn)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Response {
    let run = async {
        let (tenant, actor) = admin(&state, &headers, &tenant, peer).await?;
        match method {
            axum::http::Method::DELETE => {
                state.app.remove_extension(&actor, &tenant, &urn).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => Err(ScimError::new(405, None, "use DELETE").into()),
        }
    };
    let r: ApiResult<Response> = run.await;
    r.unwrap_or_else(IntoResponse::into_response)
}

#[derive(serde::Deserialize, Default)]
pub struct ActivityParams {
    since: Option<String>,
    until: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    q: Option<String>,
    before: Option<i64>,
    limit: Option<usize>,
}

pub async fn activity(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    params: Result<Query<ActivityParams>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let run = async {
        let (tenant, _) = admin(&state, &headers, &tenant, peer).await?;
        let Query(p) = params?;
        state.app.flush_reads().await;
        // Checked, so that a mistake is 400 with the valid forms rather
        // than an empty (or unfiltered) answer.
        let now = time::OffsetDateTime::now_utc();
        let time = |name: &str, v: Option<String>| v.map(|v| activity_filter::parse_time(name, &v, now)).transpose();
        let query = ActivityQuery {
            since: time("since", p.since)?,
            until: time("until", p.until)?,
            action: p.action.map(|v| activity_filter::parse_action(&v)).transpose()?,
            outcome: p.outcome.map(|v| activity_filter::parse_outcome(&v)).transpose()?,
            text: p.q,
            before_id: p.before,
            limit: p.limit.unwrap_or(100).min(1000),
        };
        let since_hour = query
            .since
            .clone()
            .unwrap_or_default()
            .chars()
            .take(13)
            .collect::<String>();
        let events = state.app.store.list_activity(tenant.id, query).await?;
        let reads = state.app.store.read_counts(tenant.id, &since_hour).await?;
        Ok(scim_json(StatusCode::OK, &json!({"events": events, "reads": reads})))
    };
    let r: ApiResult<Response> = run.await;
    r.unwrap_or_else(IntoResponse::into_response)
}

#[derive(serde::Deserialize, Default)]
pub struct EventParams {
    after: Option<String>,
    limit: Option<usize>,
    types: Option<String>,
    wait: Option<u64>,
}

/// `GET /admin/v1/tenants/{tenant}/events`: the tenant's change events in
/// order after a cursor, with a token of scope `events` (see
/// `docs/events.md`).
pub async fn events(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    params: Result<Query<EventParams>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    use scimitar_app::events as ev;
    let run = async {
        let (tenant, _) = authenticate(&state, &headers, &tenant, "events", Some(peer)).await?;
        let Query(p) = params?;
        let wait = p.wait.unwrap_or(0);
        if wait > ev::MAX_WAIT.as_secs() {
            return Err(
                ScimError::invalid_value(format!("wait must be at most {} seconds", ev::MAX_WAIT.as_secs())).into(),
            );
        }
        let query = ev::EventQuery {
            after: p.after.as_deref().map(ev::parse_cursor).transpose()?.unwrap_or(0),
            limit: p.limit.unwrap_or(100),
            types: p.types.as_deref().map(ev::parse_types).transpose()?.unwrap_or_default(),
            wait: std::time::Duration::from_secs(wait),
        };
        let page = state.app.read_events(&tenant, query).await?;
        let events: Vec<Value> = page.events.iter().map(|e| ev::event_json(&tenant.name, e)).collect();
        Ok(scim_json(StatusCode::OK, &json!({"events": events, "next": page.next})))
    };
    let r: ApiResult<Response> = run.await;
    r.unwrap_or_else(IntoResponse::into_response)
}

/// A job file is a few kilobytes; this bounds what one request can make
/// the TOML parser build.
const JOB_FILE_MAX: usize = 256 * 1024;

/// What a TOML job file's parsed tree is charged against the body budget,
/// per byte of its text: a generous bound (the parser's tables, the
/// engine's job, the sealed copy), since TOML gets no shape scan as JSON does.
const TOML_TREE_FACTOR: usize = 16;

/// A job file in a request body, as sent.
enum JobBody {
    Toml(String),
    Json(Value),
}

impl JobBody {
    fn file(&self) -> JobFile<'_> {
        match self {
            JobBody::Toml(t) => JobFile::Toml(t),
            JobBody::Json(v) => JobFile::Json(v),
        }
    }
}

/// Reads a job file: TOML (`application/toml`, `text/plain`, or no
/// Content-Type) or its keys as a JSON object (`application/json`).
async fn read_job_file(state: &AppState, headers: &HeaderMap, body: Body) -> ApiResult<(JobBody, Charge)> {
    let limit = JOB_FILE_MAX.min(state.settings.max_body_bytes);
    match content_type(headers).as_deref() {
        Some(ct) if ct == "application/json" || ct == "text/json" || ct.ends_with("+json") => {
            let (v, charge) = read_json(state, headers, body, limit).await?;
            if !v.is_object() {
                return Err(ScimError::invalid_syntax("a job file in JSON is an object of the job file's keys").into());
            }
            Ok((JobBody::Json(v), charge))
        }
        None | Some("" | "application/toml" | "text/plain" | "text/x-toml") => {
            let (bytes, mut charge) = read_bytes(state, headers, body, limit).await?;
            if bytes.is_empty() {
                return Err(ScimError::invalid_syntax("the request body is empty; a job file was expected").into());
            }
            state
                .body_budget
                .take_tree(
                    &mut charge,
                    bytes.len().saturating_mul(TOML_TREE_FACTOR),
                    queue_deadline(state),
                )
                .await?;
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| ScimError::invalid_syntax("the job file is not UTF-8 text"))?;
            Ok((JobBody::Toml(text), charge))
        }
        Some(ct) => Err(ScimError::new(
            415,
            None,
            format!(
                "unsupported Content-Type '{ct}'; send a job file as application/toml, or its keys as application/json"
            ),
        )
        .into()),
    }
}

/// Where relative paths of a job file sent over the API start: the
/// server's working directory (there is no file to be relative to).
fn api_base() -> PathBuf {
    std::path::absolute(".").unwrap_or_else(|_| PathBuf::from("."))
}

/// `/admin/v1/tenants/{tenant}/jobs`: the tenant's jobs (GET), a new job
/// from its file (POST).
pub async fn jobs(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let run = async {
        let (tenant, actor) = admin(&state, &headers, &tenant, peer).await?;
        state.app.job_files()?;
        match method {
            axum::http::Method::GET => {
                let list = state.app.job_views(&tenant).await?;
                Ok(scim_json(StatusCode::OK, &json!({"jobs": list})))
            }
            axum::http::Method::POST => {
                let (file, _charge) = read_job_file(&state, &headers, body).await?;
                let record = state.app.create_job(&actor, &tenant, file.file(), &api_base()).await?;
                let view = state.app.job_view(&tenant, &record).await?;
                let mut resp = scim_json(StatusCode::CREATED, &view);
                let location = format!(
                    "{}/admin/v1/tenants/{}/jobs/{}",
                    state.settings.public_url, tenant.name, record.name
                );
                if let Ok(v) = HeaderValue::from_str(&location) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                Ok(resp)
            }
            _ => Err(ScimError::new(405, None, "use GET or POST").into()),
        }
    };
    let r: ApiResult<Response> = run.await;
    r.unwrap_or_else(IntoResponse::into_response)
}

/// `/admin/v1/tenants/{tenant}/jobs/{name}`: the job with its file, secrets
/// shown as `"(sealed)"` (GET); its configuration replaced, its state kept
/// (PUT); deleted with its state and log (DELETE).
pub async fn job_one(
    State(state): State<Arc<AppState>>,
    Path((tenant, name)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let run = async {
        let (tenant, actor) = admin(&state, &headers, &tenant, peer).await?;
        state.app.job_files()?;
        match method {
            axum::http::Method::GET => Ok(scim_json(StatusCode::OK, &state.app.job_detail(&tenant, &name).await?)),
            axum::http::Method::PUT => {
                let (file, _charge) = read_job_file(&state, &headers, body).await?;
                let record = state
                    .app
                    .replace_job(&actor, &tenant, &name, file.file(), &api_base())
                    .await?;
                Ok(scim_json(StatusCode::OK, &state.app.job_view(&tenant, &record).await?))
            }
            axum::http::Method::DELETE => {
                state.app.delete_job(&actor, &tenant, &name).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => Err(ScimError::new(405, None, "use GET, PUT or DELETE").into()),
        }
    };
    let r: ApiResult<Response> = run.await;
    r.unwrap_or_else(IntoResponse::into_response)
}

#[derive(serde::Deserialize, Default)]
pub struct JobActionParams {
    reset_anchors: Option<bool>,
}

/// `GET …/jobs/{name}/logs`: which provisioning-log records.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct JobLogParams {
    cycle: Option<String>,
    status: Option<String>,
    action: Option<String>,
    /// Records older than this id (the `next` of the previous page).
    before: Option<i64>,
    limit: Option<usize>,
}

const LOG_STATUSES: &[&str] = &["success", "failure", "skipped", "warning"];
const LOG_ACTIONS: &[&str] = &["create", "update", "disable", "delete", "stagedDelete", "other"];

/// The job's provisioning log, newest first, a page at a time.
async fn job_logs(state: &AppState, tenant: &Tenant, name: &str, uri: &axum::http::Uri) -> ApiResult<Response> {
    let Query(p) = Query::<JobLogParams>::try_from_uri(uri).map_err(|e| {
        ScimError::invalid_value(format!(
            "{}; the parameters are cycle, status, action, before, limit",
            e.body_text()
        ))
    })?;
    let check = |v: &Option<String>, allowed: &[&str], what: &str| -> Result<(), ScimError> {
        match v {
            Some(x) if !allowed.contains(&x.as_str()) => Err(ScimError::invalid_value(format!(
                "{what} '{x}' is not one of {}",
                allowed.join(", ")
            ))),
            _ => Ok(()),
        }
    };
    check(&p.status, LOG_STATUSES, "status")?;
    check(&p.action, LOG_ACTIONS, "action")?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ScimError::invalid_value("limit is 1 to 1000").into());
    }
    let query = scimitar_store::EngineLogQuery {
        cycle_id: p.cycle,
        status: p.status,
        action: p.action,
        before_id: p.before,
        limit,
    };
    let records = state.app.job_log(tenant, name, query).await?;
    let next = (records.len() == limit).then(|| records.last().map(|r| r.id)).flatten();
    let list: Vec<&Value> = records.iter().map(|r| &r.record).collect();
    Ok(scim_json(StatusCode::OK, &json!({"records": list, "next": next})))
}

/// `POST /admin/v1/tenants/{tenant}/jobs/{name}/{start|stop|restart|allow-deletes}`:
/// Provisioning Status On, Off, a restart (`reset_anchors` in the query or
/// a JSON body), allowing held deletes; answered with the job.
/// `GET …/{name}/logs`: its provisioning log.
pub async fn job_action(
    State(state): State<Arc<AppState>>,
    Path((tenant, name, action)): Path<(String, String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let run = async {
        let (tenant, actor) = admin(&state, &headers, &tenant, peer).await?;
        state.app.job_files()?;
        if action == "logs" {
            if method != axum::http::Method::GET {
                return Err(ScimError::new(405, None, "use GET").into());
            }
            return job_logs(&state, &tenant, &name, &uri).await;
        }
        if method != axum::http::Method::POST {
            return Err(ScimError::new(405, None, "use POST").into());
        }
        let app = &state.app;
        match action.as_str() {
            "provision-on-demand" => {
                let (kind, id) = on_demand_object(&state, &headers, body).await?;
                let object = match kind {
                    "user" => scimitar_app::jobs::OnDemandObject::User(&id),
                    _ => scimitar_app::jobs::OnDemandObject::Group(&id),
                };
                let run = app.provision_on_demand(&actor, &tenant, &name, object).await?;
                return Ok(scim_json(StatusCode::OK, &run));
            }
            "test-connection" => {
                let out = app.test_job_connection(&actor, &tenant, &name).await?;
                let body = match out {
                    Ok(()) => json!({"job": name, "ok": true}),
                    Err(e) => json!({"job": name, "ok": false, "error": e}),
                };
                return Ok(scim_json(StatusCode::OK, &body));
            }
            _ => {}
        }
        let Query(params) = Query::<JobActionParams>::try_from_uri(&uri)?;
        let record = match action.as_str() {
            "start" => app.set_job_on(&actor, &tenant, &name, true).await?,
            "stop" => app.set_job_on(&actor, &tenant, &name, false).await?,
            "allow-deletes" => app.allow_deletes(&actor, &tenant, &name).await?,
            "restart" => {
                let reset = params.reset_anchors.unwrap_or(false) || reset_anchors(&state, &headers, body).await?;
                app.restart_job(&actor, &tenant, &name, reset).await?;
                app.job(&tenant, &name).await?
            }
            _ => {
                return Err(ScimError::not_found(format!(
                    "no job action '{action}'; use start, stop, restart, allow-deletes, test-connection or provision-on-demand"
                ))
                .into());
            }
        };
        Ok(scim_json(StatusCode::OK, &app.job_view(&tenant, &record).await?))
    };
    let r: ApiResult<Response> = run.await;
    r.unwrap_or_else(IntoResponse::into_response)
}

/// A small optional JSON object body of a job action (at most 4 KiB):
/// `None` when empty; 415 for another content type; 400 (`shape` says
/// what is expected) when it is not an object.
async fn action_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    shape: &str,
) -> ApiResult<Option<serde_json::Map<String, Value>>> {
    let (bytes, charge) = read_bytes(state, headers, body, 4096).await?;
    if bytes.is_empty() {
        return Ok(None);
    }
    if let Some(ct) = content_type(headers)
        && !(ct == "application/json" || ct.ends_with("+json"))
    {
        return Err(ScimError::new(
            415,
            None,
            format!("unsupported Content-Type '{ct}'; send application/json"),
        )
        .into());
    }
    let (v, _charge) = parse(state, bytes, charge, None).await?;
    match v {
        Value::Object(m) => Ok(Some(m)),
        _ => Err(ScimError::invalid_syntax(format!("the body is a JSON object: {shape}")).into()),
    }
}

/// The object of a provision-on-demand request: `{"user": "ID"}` or
/// `{"group": "ID"}` (an anchor or source reference, e.g. an LDAP DN).
async fn on_demand_object(state: &AppState, headers: &HeaderMap, body: Body) -> ApiResult<(&'static str, String)> {
    let usage = "send {\"user\": \"ID\"} or {\"group\": \"ID\"} (an anchor or source reference)";
    let obj = action_body(state, headers, body, usage)
        .await?
        .ok_or_else(|| ScimError::invalid_value(format!("no object to provision: {usage}")))?;
    let mut found = None;
    for (k, v) in &obj {
        let kind = match k.as_str() {
            "user" => "user",
            "group" => "group",
            other => return Err(ScimError::invalid_value(format!("unknown key '{other}': {usage}")).into()),
        };
        let id = v
            .as_str()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ScimError::invalid_value(format!("'{k}' is a non-empty string: {usage}")))?;
        if found.is_some() {
            return Err(ScimError::invalid_value(format!("one object at a time: {usage}")).into());
        }
        found = Some((kind, id.to_string()));
    }
    found.ok_or_else(|| ScimError::invalid_value(format!("no object to provision: {usage}")).into())
}

/// `reset_anchors` from a restart's optional JSON body (`{"reset_anchors": true}`).
async fn reset_anchors(state: &AppState, headers: &HeaderMap, body: Body) -> ApiResult<bool> {
    let Some(obj) = action_body(state, headers, body, "{\"reset_anchors\": true}").await? else {
        return Ok(false);
    };
    if let Some(k) = obj.keys().find(|k| k.as_str() != "reset_anchors") {
        return Err(ScimError::invalid_value(format!("unknown key '{k}'; a restart takes reset_anchors only")).into());
    }
    match obj.get("reset_anchors") {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ScimError::invalid_value("reset_anchors is true or false").into()),
    }
}

/// The body of `POST …/webhooks`: `{"url": "https://…", "types": [...]}`.
fn webhook_request(body: &Value) -> Result<(String, Vec<String>), ScimError> {
    let obj = body.as_object().ok_or_else(|| {
        ScimError::invalid_syntax(
            "a webhook is a JSON object: {\"url\": \"https://…\", \"types\": [\"user.created\", …]}",
        )
    })?;
    if let Some(k) = obj.keys().find(|k| !matches!(k.as_str(), "url" | "types")) {
        let shown: String = k.chars().take(64).collect();
        return Err(ScimError::invalid_value(format!(
            "unknown key '{shown}': a webhook has a url and types"
        )));
    }
    let url = obj
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| ScimError::invalid_value("a webhook needs a url (a string)"))?;
    let types = match obj.get("types") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| ScimError::invalid_value("types is a list of event type names"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ScimError::invalid_value("types is a list of event type names")),
    };
    Ok((url.to_string(), types))
}

/// `/admin/v1/tenants/{tenant}/webhooks`: the tenant's endpoints (GET);
/// a new one (POST), answered with its secret, which is not shown again.
pub async fn webhooks(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let run = async {
        let (tenant, actor) = admin(&state, &headers, &tenant, peer).await?;
        match method {
            axum::http::Method::GET => {
                let list: Vec<Value> = state
                    .app
                    .webhooks(&tenant)
                    .await?
                    .iter()
                    .map(scimitar_app::webhooks::webhook_json)
                    .collect();
                Ok(scim_json(StatusCode::OK, &json!({"webhooks": list})))
            }
            axum::http::Method::POST => {
                let (body, _charge) = read_json(&state, &headers, body, state.settings.max_body_bytes).await?;
                let (url, types) = webhook_request(&body)?;
                let (w, secret) = state.app.add_webhook(&actor, &tenant, &url, &types).await?;
                let mut resp = scim_json(
                    StatusCode::CREATED,
                    &json!({"id": w.id, "secret": secret.0, "webhook": scimitar_app::webhooks::webhook_json(&w)}),
                );
                let location = format!(
                    "{}/admin/v1/tenants/{}/webhooks/{}",
                    state.settings.public_url, tenant.name, w.id
                );
                if let Ok(v) = HeaderValue::from_str(&location) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                Ok(resp)
            }
            _ => Err(ScimError::new(405, None, "use GET or POST").into()),
        }
    };
    let r: ApiResult<Response> = run.await;
    r.unwrap_or_else(IntoResponse::into_response)
}

/// `/admin/v1/tenants/{tenant}/webhooks/{id}`: the endpoint with its
/// recent deliveries and failed events (GET); removed (DELETE).
pub async fn webhook_one(
    State(state): State<Arc<AppState>>,
    Path((tenant, id)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Response {
    let run = async {
        let (tenant, actor) = admin(&state, &headers, &tenant, peer).await?;
        match method {
            axum::http::Method::GET => Ok(scim_json(
                StatusCode::OK,
                &state.app.webhook_detail(&tenant, &id).await?,
            )),
            axum::http::Method::DELETE => {
                state.app.remove_webhook(&actor, &tenant, &id).await?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            _ => Err(ScimError::new(405, None, "use GET or DELETE").into()),
        }
    };
    let r: ApiResult<Response> = run.await;
    r.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /admin/v1/tenants/{tenant}/webhooks/{id}/{action}`: `enable`,
/// `disable`, `rotate` (a new secret, shown once; the previous one signs
/// too for 24 hours), `replay` (the failed events, again), `test` (a
/// `webhook.test` event sent now; what the receiver answered).
pub async fn webhook_action(
    State(state): State<Arc<AppState>>,
    Path((tenant, id, action)): Path<(String, String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Response {
    let run = async {
        let (tenant, actor) = admin(&state, &headers, &tenant, peer).await?;
        if method != axum::http::Method::POST {
            return Err(ScimError::new(405, None, "use POST").into());
        }
        let app = &state.app;
        let body = match action.as_str() {
            "enable" | "disable" => {
                let w = app
                    .set_webhook_enabled(&actor, &tenant, &id, action == "enable")
                    .await?;
                scimitar_app::webhooks::webhook_json(&w)
            }
            "rotate" => {
                let secret = app.rotate_webhook_secret(&actor, &tenant, &id).await?;
                json!({"id": id, "secret": secret.0})
            }
            "replay" => {
                let n = app.replay_webhook(&actor, &tenant, &id).await?;
                json!({"id": id, "replayed": n})
            }
            "test" => app.send_test_event(&actor, &tenant, &id).await?.json(),
            _ => {
                return Err(
                    ScimError::not_found("the webhook actions are enable, disable, rotate, replay and test").into(),
                );
            }
        };
        Ok(scim_json(StatusCode::OK, &body))
    };
    let r: ApiResult<Response> = run.await;
    r.unwrap_or_else(IntoResponse::into_response)
}
