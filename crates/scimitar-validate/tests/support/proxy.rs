//! A SCIM endpoint with one deliberate defect: a proxy in front of a real
//! Scimitar tenant that changes the requests or answers of one kind, and
//! passes everything else through. (Also used by the binary's tests, by
//! path.)

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One defect each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// Nothing changed.
    None,
    /// 404 instead of 200 when a userName filter matches nothing.
    NotFoundOnNoMatch,
    /// 200 instead of 409 when a user's userName is taken.
    DuplicateAccepted,
    /// `userName eq` compared case-sensitively.
    CaseSensitiveUserName,
    /// PATCH ignores `active`.
    ActiveIgnored,
    /// PATCH ignores member additions (add and replace of `members`).
    MemberAddIgnored,
    /// /Schemas leaves out the User's `title`.
    SchemasWithoutTitle,
    /// User lists ignore `startIndex` (always the first page).
    StartIndexIgnored,
    /// 500 on a manager replaced with `{"value":""}`.
    ManagerClearFails,
    /// 200 instead of 204 for a DELETE (no defect for Entra, which takes
    /// any 2xx).
    DeleteAnswers200,
    /// The first request for a second page of users never gets an answer
    /// (the run can be interrupted there); the `hung` notify fires.
    HangOnSecondPage,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    defect: Defect,
    http: reqwest::Client,
    hung: Arc<tokio::sync::Notify>,
    seen: Arc<Mutex<Vec<String>>>,
}

pub struct Running {
    pub url: String,
    /// Notified when `HangOnSecondPage` holds a request.
    pub hung: Arc<tokio::sync::Notify>,
    /// `METHOD path?query` of every request, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
}

pub async fn start(upstream: &str, defect: Defect) -> Running {
    let hung = Arc::new(tokio::sync::Notify::new());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let state = Proxy {
        upstream: upstream.trim_end_matches('/').to_string(),
        defect,
        http: scimitar_testkit::client(),
        hung: hung.clone(),
        seen: seen.clone(),
    };
    let app = axum::Router::new().fallback(forward).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Running {
        url: format!("http://{addr}"),
        hung,
        seen,
    }
}

fn scim(status: StatusCode, body: Value) -> Response {
    (status, [("content-type", "application/scim+json")], body.to_string()).into_response()
}

fn query(uri: &Uri, key: &str) -> Option<String> {
    let url = reqwest::Url::parse(&format!("http://x{uri}")).ok()?;
    url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

/// The value of `userName eq "…"` in a filter.
fn user_name_eq(filter: &str) -> Option<String> {
    let rest = filter.trim().strip_prefix("userName eq ")?;
    serde_json::from_str::<String>(rest.trim()).ok()
}

fn is_op(op: &Value, name: &str) -> bool {
    op["op"].as_str().is_some_and(|o| o.eq_ignore_ascii_case(name))
}

fn path_is(op: &Value, name: &str) -> bool {
    op["path"].as_str().is_some_and(|p| p.eq_ignore_ascii_case(name))
}

async fn forward(State(p): State<Proxy>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    p.seen.lock().unwrap().push(format!("{method} {uri}"));
    let users = path.eq_ignore_ascii_case("/Users");
    let user = path.to_ascii_lowercase().starts_with("/users/");
    let group = path.to_ascii_lowercase().starts_with("/groups/");
    let mut uri_text = uri.to_string();
    let mut body = body.to_vec();
    // Changes to the request.
    match p.defect {
        Defect::StartIndexIgnored if method == Method::GET && users => {
            if let Some(count) = query(&uri, "count") {
                uri_text = format!("/Users?count={count}");
            }
        }
        Defect::HangOnSecondPage
            if method == Method::GET && users && query(&uri, "startIndex").is_some_and(|s| s != "1") =>
        {
            p.hung.notify_one();
            std::future::pending::<()>().await;
        }
        Defect::ActiveIgnored | Defect::MemberAddIgnored | Defect::ManagerClearFails
            if method == Method::PATCH && (user || group) =>
        {
            let mut patch: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let ops = patch["Operations"].as_array().cloned().unwrap_or_default();
            if p.defect == Defect::ManagerClearFails && user && ops.iter().any(|o| o["value"] == json!({"value": ""})) {
                return scim(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "500", "detail": "NullReferenceException"}),
                );
            }
            let kept: Vec<Value> = ops
                .into_iter()
                .filter_map(|mut o| match p.defect {
                    Defect::ActiveIgnored if user => {
                        if path_is(&o, "active") {
                            return None;
                        }
                        if let Some(v) = o["value"].as_object_mut() {
                            v.retain(|k, _| !k.eq_ignore_ascii_case("active"));
                            if v.is_empty() {
                                return None;
                            }
                        }
                        Some(o)
                    }
                    Defect::MemberAddIgnored if group => {
                        let adds = (is_op(&o, "add") || is_op(&o, "replace")) && path_is(&o, "members");
                        (!adds).then_some(o)
                    }
                    _ => Some(o),
                })
                .collect();
            if kept.is_empty() {
                return StatusCode::NO_CONTENT.into_response();
            }
            patch["Operations"] = Value::Array(kept);
            body = patch.to_string().into_bytes();
        }
        _ => {}
    }
    let mut req = p
        .http
        .request(method.clone(), format!("{}{uri_text}", p.upstream))
        .body(body.clone());
    for (k, v) in headers.iter() {
        if k == "authorization" || k == "content-type" || k == "accept" {
            req = req.header(k.as_str(), v.as_bytes());
        }
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/scim+json")
        .to_string();
    let bytes = resp.bytes().await.unwrap_or_default();
    let mut answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    // Changes to the answer.
    match p.defect {
        Defect::NotFoundOnNoMatch
            if method == Method::GET
                && users
                && query(&uri, "filter").is_some_and(|f| user_name_eq(&f).is_some())
                && answer["totalResults"] == json!(0) =>
        {
            return scim(
                StatusCode::NOT_FOUND,
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404", "detail": "User not found"}),
            );
        }
        Defect::DuplicateAccepted if method == Method::POST && users && status == StatusCode::CONFLICT => {
            let mut sent: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
            sent["id"] = json!(format!("dup-{}", uuid_like()));
            return scim(StatusCode::OK, sent);
        }
        Defect::CaseSensitiveUserName if method == Method::GET && users => {
            if let Some(want) = query(&uri, "filter").and_then(|f| user_name_eq(&f))
                && let Some(rs) = answer["Resources"].as_array().cloned()
            {
                let kept: Vec<Value> = rs.into_iter().filter(|r| r["userName"] == json!(want)).collect();
                answer["totalResults"] = json!(kept.len());
                answer["itemsPerPage"] = json!(kept.len());
                answer["Resources"] = Value::Array(kept);
                return scim(status, answer);
            }
        }
        Defect::DeleteAnswers200 if method == Method::DELETE && status == StatusCode::NO_CONTENT => {
            return StatusCode::OK.into_response();
        }
        Defect::SchemasWithoutTitle if method == Method::GET && path.eq_ignore_ascii_case("/Schemas") => {
            if let Some(rs) = answer["Resources"].as_array_mut() {
                for s in rs.iter_mut() {
                    if s["id"] == json!("urn:ietf:params:scim:schemas:core:2.0:User")
                        && let Some(attrs) = s["attributes"].as_array_mut()
                    {
                        attrs.retain(|a| a["name"] != json!("title"));
                    }
                }
            }
            return scim(status, answer);
        }
        _ => {}
    }
    (status, [("content-type", ct)], bytes).into_response()
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    format!("{:x}", SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos())
}
