//! The request log: one line per request at `info` (target
//! `scimitar::request`), written when the answer leaves: method, route
//! template, status, duration, request id and tenant. Never the raw path
//! (ids), the query string (filters carry personal data), headers (tokens)
//! or bodies. Turned off with `Settings::log_requests` (`serve
//! --request-log off`).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

/// The longest tenant name logged as it came (a longer one is cut): the
/// path is the client's text.
const TENANT_MAX: usize = 64;

/// SCIM endpoints under a Tenant URL, as logged (matched case-insensitively,
/// like the dispatch in `scim.rs`).
const SCIM_ENDPOINTS: &[&str] = &[
    "Users",
    "Groups",
    "Schemas",
    "ResourceTypes",
    "ServiceProviderConfig",
    "Bulk",
    "Me",
    ".search",
];

/// The route template of a request and the tenant named in its path:
/// axum's matched route, with the SCIM catch-all `{*rest}` spelt out
/// (`/scim/{tenant}/v2/Users/{id}`); `-` when no route matched.
pub fn route_and_tenant(matched: Option<&str>, path: &str) -> (String, Option<String>) {
    let Some(matched) = matched else {
        return ("-".into(), None);
    };
    let template: Vec<&str> = matched.split('/').collect();
    let raw: Vec<&str> = path.split('/').collect();
    let tenant = template
        .iter()
        .position(|s| *s == "{tenant}")
        .and_then(|i| raw.get(i))
        .map(|t| t.chars().take(TENANT_MAX).collect::<String>().to_lowercase());
    let route = match matched.strip_suffix("/{*rest}") {
        Some(base) => {
            let rest = raw.get(template.len().saturating_sub(1)..).unwrap_or_default();
            format!("{base}/{}", scim_rest(rest))
        }
        None => matched.to_string(),
    };
    (route, tenant)
}

/// The template of the part of a SCIM path after `/v2/`.
fn scim_rest(rest: &[&str]) -> String {
    let rest: Vec<&str> = rest.iter().copied().filter(|s| !s.is_empty()).collect();
    let Some((first, more)) = rest.split_first() else {
        return String::new();
    };
    let Some(endpoint) = SCIM_ENDPOINTS.iter().find(|e| e.eq_ignore_ascii_case(first)) else {
        return "{unknown}".into();
    };
    match more {
        [] => (*endpoint).to_string(),
        [s] if s.eq_ignore_ascii_case(".search") => format!("{endpoint}/.search"),
        [_] => format!("{endpoint}/{{id}}"),
        _ => format!("{endpoint}/{{id}}/{{unknown}}"),
    }
}

/// The middleware writing the request log.
pub async fn log_request(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    // Nothing to compute when off, or filtered out (`SCIMITAR_LOG=warn`).
    if !state.settings.log_requests || !tracing::enabled!(target: "scimitar::request", tracing::Level::INFO) {
        return next.run(req).await;
    }
    let started = Instant::now();
    let method = req.method().clone();
    let (route, tenant) = route_and_tenant(
        req.extensions().get::<MatchedPath>().map(MatchedPath::as_str),
        req.uri().path(),
    );
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let response = next.run(req).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    tracing::info!(
        target: "scimitar::request",
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        duration_ms = (ms * 100.0).round() / 100.0,
        request_id = %request_id,
        tenant = %tenant.as_deref().unwrap_or("-"),
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::route_and_tenant;

    #[test]
    fn routes_are_templates_and_tenants_come_from_the_path() {
        let cases: &[(Option<&str>, &str, &str, Option<&str>)] = &[
            (None, "/nope/123", "-", None),
            (Some("/healthz"), "/healthz", "/healthz", None),
            (
                Some("/scim/{tenant}/v2"),
                "/scim/acme/v2",
                "/scim/{tenant}/v2",
                Some("acme"),
            ),
            (
                Some("/scim/{tenant}/v2/{*rest}"),
                "/scim/Acme/v2/Users",
                "/scim/{tenant}/v2/Users",
                Some("acme"),
            ),
            (
                Some("/scim/{tenant}/v2/{*rest}"),
                "/scim/acme/v2/users/2819c223-7f76-453a-919d-413861904646",
                "/scim/{tenant}/v2/Users/{id}",
                Some("acme"),
            ),
            (
                Some("/scim/{tenant}/v2/{*rest}"),
                "/scim/acme/v2/Groups/.search",
                "/scim/{tenant}/v2/Groups/.search",
                Some("acme"),
            ),
            (
                Some("/scim/{tenant}/v2/{*rest}"),
                "/scim/acme/v2/Users/",
                "/scim/{tenant}/v2/Users",
                Some("acme"),
            ),
            (
                Some("/scim/{tenant}/v2/{*rest}"),
                "/scim/acme/v2/alice@example.com/x",
                "/scim/{tenant}/v2/{unknown}",
                Some("acme"),
            ),
            (
                Some("/scim/{tenant}/v2/{*rest}"),
                "/scim/acme/v2/Users/u1/secret",
                "/scim/{tenant}/v2/Users/{id}/{unknown}",
                Some("acme"),
            ),
            (
                Some("/console/t/{tenant}/users/{id}"),
                "/console/t/hr/users/u1",
                "/console/t/{tenant}/users/{id}",
                Some("hr"),
            ),
        ];
        for (matched, path, route, tenant) in cases {
            let (r, t) = route_and_tenant(*matched, path);
            assert_eq!((r.as_str(), t.as_deref()), (*route, *tenant), "{path}");
        }
        // A long tenant segment is cut.
        let long = format!("/scim/{}/v2", "a".repeat(500));
        let (_, t) = route_and_tenant(Some("/scim/{tenant}/v2"), &long);
        assert_eq!(t.map(|t| t.len()), Some(64));
    }
}
