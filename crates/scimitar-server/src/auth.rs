//! Bearer-token authentication of SCIM requests.

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};
use scimitar_protocol::ScimError;
use scimitar_store::{Tenant, TokenInfo};

use crate::AppState;
use crate::error::ApiResult;

/// How often `last_used` is written: at most once a minute per token.
const TOUCH_INTERVAL_SECS: i64 = 60;

/// The same answer for every failure, so that nothing tells a prober
/// whether a tenant exists or a token was revoked.
fn denied() -> ScimError {
    ScimError::unauthorized("a valid Secret Token for this tenant is required (Authorization: Bearer <token>)")
}

/// The client's address: the peer's, or behind trusted proxies the entry
/// of `X-Forwarded-For` the outermost of them appended.
pub fn client_ip(state: &AppState, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
    if state.settings.trust_forwarded_for
        && let Some(ip) = forwarded_for(headers, state.settings.trusted_proxy_hops)
    {
        return Some(ip);
    }
    peer.map(|p| p.ip())
}

/// Each proxy appends the address it received the request from, so with
/// `hops` trusted proxies in front the client is the entry `hops` places
/// from the right; whatever is left of it the client wrote itself. With
/// fewer entries than hops, the left-most one is still a proxy's. Several
/// headers are one list, in order (RFC 9110 §5.3).
fn forwarded_for(headers: &HeaderMap, hops: usize) -> Option<IpAddr> {
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let at = entries.len().saturating_sub(hops.max(1));
    let entry = entries.get(at)?;
    // An address, with a port or in brackets as some proxies write it.
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

/// Authenticates a request for `tenant_name` with a token of `scope`.
/// Failures are throttled per source address and per token prefix; a
/// tenant's requests are rate-limited.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    tenant_name: &str,
    scope: &str,
    peer: Option<SocketAddr>,
) -> ApiResult<(Tenant, TokenInfo)> {
    let ip = client_ip(state, headers, peer);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    // The public part of a token (`scim_` + 8), never the secret.
    let prefix: Option<String> = token.map(|t| t.chars().take(13).collect());
    // A source over its failure budget gets 429 instead of 401 for failed
    // attempts. Valid tokens still pass: blocking a shared address (Entra
    // calls from Microsoft's ranges) or a token's public prefix must not
    // lock out the legitimate client.
    let fail = |e: ScimError| {
        state
            .limiter
            .failed(ip, prefix.as_deref())
            .unwrap_or(crate::error::ApiError(e))
    };
    let token = token.ok_or_else(|| fail(denied()))?;
    // Typos and junk are rejected without touching the database.
    if !scimitar_auth::well_formed(token) {
        return Err(fail(denied()));
    }
    let hash = scimitar_auth::hash(token);
    let info = state
        .app
        .store
        .token_by_hash(&hash)
        .await?
        .ok_or_else(|| fail(denied()))?;
    // Tenant names are stored lower case; the path's name is matched
    // case-insensitively like the rest of the path (`/scim/Contoso/v2`).
    if !info.tenant.eq_ignore_ascii_case(tenant_name) {
        return Err(fail(denied()));
    }
    if info.scope != scope {
        return Err(ScimError::forbidden(format!(
            "this token has scope '{}'; this endpoint needs a token of scope '{scope}'",
            info.scope
        ))
        .into());
    }
    state.limiter.check_tenant(info.tenant_id)?;
    let tenant = Tenant {
        id: info.tenant_id,
        name: info.tenant.clone(),
        created: String::new(),
        schema_version: info.schema_version,
    };
    if stale(info.last_used.as_deref()) {
        let store = state.app.store.clone();
        let (tenant, id, now) = (info.tenant_id, info.id.clone(), scimitar_store::now_utc());
        tokio::spawn(async move {
            if let Err(e) = store.touch_token(tenant, &id, &now).await {
                tracing::warn!(error = %e, "could not record token use");
            }
        });
    }
    Ok((tenant, info))
}

/// Timestamps share one fixed RFC 3339 format, so they compare as text.
fn stale(last: Option<&str>) -> bool {
    last.is_none_or(|l| l < scimitar_store::utc_in(-TOUCH_INTERVAL_SECS).as_str())
}
