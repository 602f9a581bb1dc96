//! The tenant administration API (`/admin/v1/tenants/{tenant}/…`), for the
//! console and scripts. Authenticated by a token of scope `admin` for that
//! tenant; provisioning tokens (scope `scim`) are refused here, so an
//! identity provider cannot change a tenant's schema or read its log.

use std::sync::Arc;

use axum::body::Body;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use scimitar_protocol::ScimError;
use scimitar_protocol::schema::{parse_extension, schema_to_json};
use scimitar_store::{ActivityQuery, ExtensionRecord};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::authenticate;
use crate::error::ApiResult;
use crate::scim::{read_json, scim_json};

pub async fn schemas(
    State(state): State<Arc<AppState>>,
    Path(tenant): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let run = async {
        let (tenant, token) = authenticate(&state, &headers, &tenant, "admin", Some(peer)).await?;
        let base = state.settings.tenant_url(&tenant.name);
        match method {
            axum::http::Method::GET => {
                let exts = state.store.list_extensions(tenant.id).await?;
                let list: Vec<Value> = exts
                    .iter()
                    .map(|e| json!({"resourceType": e.resource_type, "required": e.required, "schema": e.schema}))
                    .collect();
                Ok(scim_json(StatusCode::OK, &json!({"extensions": list})))
            }
            axum::http::Method::POST => {
                let body = read_json(&state, &headers, body, state.settings.max_body_bytes).await?;
                let ext = register(&state, tenant.id, &body).await?;
                audit(&state, tenant.id, &token.id, "schema.added", &ext.id, peer).await;
                Ok(scim_json(StatusCode::CREATED, &schema_to_json(&ext, &base)))
            }
            _ => Err(ScimError::new(405, None, "use GET or POST").into()),
        }
    };
    let r: ApiResult<Response> = run.await;
    r.unwrap_or_else(IntoResponse::into_response)
}

/// Validates and stores an extension: `{"resourceType": "User", "required": false, "schema": {…}}`.
pub async fn register(state: &AppState, tenant: i64, body: &Value) -> ApiResult<scimitar_protocol::schema::Schema> {
    let rt = body.get("resourceType").and_then(Value::as_str).unwrap_or("User");
    let rt = match rt.to_ascii_lowercase().as_str() {
        "user" => "User",
        "group" => "Group",
        other => {
            return Err(ScimError::invalid_value(format!("resourceType must be User or Group, not '{other}'")).into());
        }
    };
    let required = body.get("required").and_then(Value::as_bool).unwrap_or(false);
    let def = body
        .get("schema")
        .ok_or_else(|| ScimError::invalid_value("the body needs a 'schema' object"))?;
    let schema = parse_extension(def)?;
    let stored = serde_json::to_value(&schema).map_err(|e| ScimError::internal(e.to_string()))?;
    state
        .store
        .put_extension(
            tenant,
            ExtensionRecord {
                resource_type: rt.to_string(),
                urn: schema.id.clone(),
                schema: stored,
                required,
            },
        )
        .await?;
    state.schema_cache.invalidate(tenant);
    Ok(schema)
}

pub async fn schema_one(
    State(state): State<Arc<AppState>>,
    Path((tenant, urn)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Response {
    let run = async {
        let (tenant, token) = authenticate(&state, &headers, &tenant, "admin", Some(peer)).await?;
        match method {
            axum::http::Method::DELETE => {
                let removed = state.store.delete_extension(tenant.id, &urn).await?;
                state.schema_cache.invalidate(tenant.id);
                if removed {
                    audit(&state, tenant.id, &token.id, "schema.removed", &urn, peer).await;
                }
                if removed {
                    Ok(StatusCode::NO_CONTENT.into_response())
                } else {
                    Err(ScimError::not_found(format!("no extension '{urn}'")).into())
                }
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
    Query(p): Query<ActivityParams>,
    headers: HeaderMap,
) -> Response {
    let run = async {
        let (tenant, _) = authenticate(&state, &headers, &tenant, "admin", Some(peer)).await?;
        state.reads.flush(&*state.store).await;
        let query = ActivityQuery {
            since: p.since,
            until: p.until,
            action: p.action,
            outcome: p.outcome,
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
        let events = state.store.list_activity(tenant.id, query).await?;
        let reads = state.store.read_counts(tenant.id, &since_hour).await?;
        Ok(scim_json(StatusCode::OK, &json!({"events": events, "reads": reads})))
    };
    let r: ApiResult<Response> = run.await;
    r.unwrap_or_else(IntoResponse::into_response)
}

async fn audit(state: &AppState, tenant: i64, token: &str, action: &str, target: &str, peer: SocketAddr) {
    let actor = format!("token:{token}");
    let source = format!("admin-api {}", peer.ip());
    if let Err(e) = scimitar_store::audit(&*state.store, Some(tenant), &actor, action, Some(target), &source).await {
        tracing::error!(error = %e, action, "could not write the audit log");
    }
}
