//! The SCIM client: sends the dialect's requests to the target with the
//! job's Secret Token, at most `concurrency` at once, honouring `429
//! Retry-After` and retrying transient failures (5xx, timeouts, refused
//! connections) with back-off inside the cycle; what still fails is left
//! for the next cycle.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;

use crate::dialect::Request;
use crate::log::{ErrorInfo, code_of_status};

/// Attempts of a request that fails transiently.
const ATTEMPTS: u32 = 3;
/// The longest `Retry-After` honoured inside a cycle.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// The largest answer read by default (a page of large groups fits many
/// times over); a bigger one is refused unread rather than held in memory.
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// A target's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    /// The JSON body (`Null` when empty).
    pub body: Value,
}

/// An answer as it came, from [`Client::exchange`].
#[derive(Debug, Clone, PartialEq)]
pub struct Raw {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub retry_after: Option<Duration>,
    /// The body, unread.
    pub bytes: Vec<u8>,
    /// From sending the request to the end of the answer.
    pub elapsed: Duration,
}

impl Raw {
    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.bytes).ok()
    }
}

/// A request that failed, as Entra would log it.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetError {
    pub info: ErrorInfo,
    pub status: Option<u16>,
    /// Worth retrying in a later cycle (a 429, a 5xx, a timeout).
    pub transient: bool,
    /// No connection could be made at all (the cycle stops: every other
    /// request would fail the same way).
    pub unreachable: bool,
}

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.info.code, self.info.details)
    }
}

/// A record of one request (what the log's troubleshooting tab shows).
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub method: &'static str,
    pub path: String,
    pub status: Option<u16>,
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    gate: Arc<Semaphore>,
    requests: AtomicU64,
    writes: AtomicU64,
    /// The largest answer body read.
    max_answer: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the Tenant URL `base` with `token`, `concurrency`
    /// requests in flight at most.
    pub fn new(base: &str, token: &str, concurrency: usize) -> Result<Client, String> {
        Client::with_timeout(base, token, concurrency, Duration::from_secs(30))
    }

    /// Like `new`, with `timeout` for each request.
    pub fn with_timeout(base: &str, token: &str, concurrency: usize, timeout: Duration) -> Result<Client, String> {
        Client::limited(base, token, concurrency, timeout, None)
    }

    /// Like `with_timeout`; with `egress`, every name is resolved to the
    /// addresses the policy permits only (a job sent through the admin API).
    pub fn limited(
        base: &str,
        token: &str,
        concurrency: usize,
        timeout: Duration,
        egress: Option<Arc<crate::egress::Policy>>,
    ) -> Result<Client, String> {
        // One crypto provider in the process (ring, like the server's TLS).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder();
        if let Some(policy) = egress {
            builder = builder.dns_resolver(Arc::new(crate::egress::PublicOnly(policy)));
        }
        let http = builder
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(concurrency.max(1))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Scimitar-Provisioning/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            gate: Arc::new(Semaphore::new(concurrency.max(1))),
            requests: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            max_answer: MAX_ANSWER_BYTES,
        })
    }

    /// The same client reading answers of at most `bytes` (a larger one
    /// fails with `SystemForCrossDomainIdentityManagementServiceIncompatible`
    /// without being read to its end).
    pub fn answer_limit(mut self, bytes: usize) -> Client {
        self.max_answer = bytes;
        self
    }

    /// The Tenant URL (without a trailing slash).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Requests sent so far (retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Writes (POST, PATCH, PUT, DELETE) sent so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Sends a request, retrying what is transient. `on_resource`: the path
    /// names one resource (a 404 then means it is gone).
    pub async fn send(&self, req: &Request, on_resource: bool) -> Result<Answer, TargetError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.send_once(req, on_resource).await {
                Ok(a) => return Ok(a),
                Err((e, wait)) if e.transient && attempt < ATTEMPTS => {
                    let backoff = wait.unwrap_or(Duration::from_millis(250 * (1 << attempt)));
                    tokio::time::sleep(backoff.min(MAX_RETRY_AFTER)).await;
                }
                Err((e, _)) => return Err(e),
            }
        }
    }

    /// Sends a request once and returns the answer as it came, whatever
    /// its status: no retry, no interpretation (the validator reports what
    /// a target answered). Fails only when no answer arrived (connection,
    /// TLS, timeout) or the answer could not be read.
    pub async fn exchange(&self, req: &Request) -> Result<Raw, TargetError> {
        let _permit = self.gate.acquire().await.map_err(|_| TargetError {
            info: ErrorInfo::new("InternalError", "the client is shutting down"),
            status: None,
            transient: false,
            unreachable: false,
        })?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        if req.is_write() {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        let started = std::time::Instant::now();
        let url = format!("{}{}", self.base, req.path);
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut builder = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .header("Accept", "application/scim+json, application/json");
        if let Some(body) = &req.body {
            builder = builder
                .header("Content-Type", "application/scim+json")
                .body(body.to_string());
        }
        let resp = match builder.send().await {
            Ok(r) => r,
            Err(e) => {
                let code = if e.is_timeout() {
                    "Timeout"
                } else {
                    "WebExceptionProtocolError"
                };
                let detail = if e.is_connect() {
                    format!("cannot connect to {}: {}", self.base, root_cause(&e))
                } else if e.is_timeout() {
                    format!("{} {}: no answer in time ({})", req.method, req.path, root_cause(&e))
                } else {
                    format!("{} {}: {}", req.method, req.path, root_cause(&e))
                };
                return Err(TargetError {
                    info: ErrorInfo::new(code, detail),
                    status: None,
                    transient: true,
                    unreachable: e.is_connect(),
                });
            }
        };
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let content_type = header("content-type");
        let location = header("location");
        let too_large = || TargetError {
            info: ErrorInfo::new(
                "SystemForCrossDomainIdentityManagementServiceIncompatible",
                format!(
                    "{} {}: the answer ({status}) is larger than {} bytes; it was not read",
                    req.method, req.path, self.max_answer
                ),
            ),
            status: Some(status),
            transient: false,
            unreachable: false,
        };
        if resp
            .content_length()
            .is_some_and(|n| n > u64::try_from(self.max_answer).unwrap_or(u64::MAX))
        {
            return Err(too_large());
        }
        let mut resp = resp;
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len().saturating_add(chunk.len()) > self.max_answer {
                        return Err(too_large());
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(TargetError {
                        info: ErrorInfo::new(
                            if e.is_timeout() {
                                "Timeout"
                            } else {
                                "WebExceptionProtocolError"
                            },
                            format!("{} {}: reading the answer: {}", req.method, req.path, root_cause(&e)),
                        ),
                        status: Some(status),
                        transient: true,
                        unreachable: false,
                    });
                }
            }
        }
        Ok(Raw {
            status,
            content_type,
            location,
            retry_after,
            bytes,
            elapsed: started.elapsed(),
        })
    }

    async fn send_once(&self, req: &Request, on_resource: bool) -> Result<Answer, (TargetError, Option<Duration>)> {
        let raw = self.exchange(req).await.map_err(|e| (e, None))?;
        let status = raw.status;
        let body: Value = if raw.bytes.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&raw.bytes) {
                Ok(v) => v,
                Err(_) if (200..300).contains(&status) && req.method != "GET" => Value::Null,
                Err(_) if (200..300).contains(&status) => {
                    return Err((
                        TargetError {
                            info: ErrorInfo::new(
                                "SystemForCrossDomainIdentityManagementServiceIncompatible",
                                format!("{} {}: the answer is not JSON", req.method, req.path),
                            ),
                            status: Some(status),
                            transient: false,
                            unreachable: false,
                        },
                        None,
                    ));
                }
                Err(_) => Value::Null,
            }
        };
        if (200..300).contains(&status) {
            return Ok(Answer { status, body });
        }
        let scim_type = body.get("scimType").and_then(Value::as_str);
        let detail = body.get("detail").and_then(Value::as_str).unwrap_or_default();
        let code = code_of_status(status, scim_type, on_resource);
        let transient = status == 429 || status >= 500;
        let info = ErrorInfo::new(
            code,
            format!(
                "{} {} answered {status}{}",
                req.method,
                req.path,
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(": {detail}")
                }
            ),
        );
        Err((
            TargetError {
                info,
                status: Some(status),
                transient,
                unreachable: false,
            },
            if status == 429 {
                raw.retry_after.or(Some(Duration::from_secs(1)))
            } else {
                raw.retry_after
            },
        ))
    }
}

/// The innermost cause of an error, which is what says what happened.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The resources of a ListResponse.
pub fn resources(body: &Value) -> Vec<&Value> {
    body.get("Resources")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}
