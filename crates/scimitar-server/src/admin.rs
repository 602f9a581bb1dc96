//! The tenant administration API (`/admin/v1/tenants/{tenant}/…`), for the
//! console and scripts. Authenticated by a token of scope `admin` for that
//! tenant; provisioning tokens (scope `scim`) are refused here, so an
//! identity provider cannot change a tenant's schema or read its log.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use scimitar_app::Actor;
use scimitar_app::schemas::NewExtension;
use scimitar_protocol::ScimError;
use scimitar_protocol::schema::schema_to_json;
use scimitar_store::{ActivityQuery, Tenant};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{authenticate, client_ip};
use crate::body::read_json;
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
        let events = state.app.store.list_activity(tenant.id, query).await?;
        let reads = state.app.store.read_counts(tenant.id, &since_hour).await?;
        Ok(scim_json(StatusCode::OK, &json!({"events": events, "reads": reads})))
    };
    let r: ApiResult<Response> = run.await;
    r.unwrap_or_else(IntoResponse::into_response)
}
