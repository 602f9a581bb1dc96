//! Before any test: is this a SCIM endpoint that accepts the token? One
//! request (`GET /Users?startIndex=1&count=1`) and one clear message for
//! each way it can fail, instead of thirty red tests. Pure: it judges an
//! answer (or why none came).

use scimitar_engine::client::{Raw, TargetError};
use serde::Serialize;

/// Why the endpoint cannot be validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PreflightKind {
    /// `--url` is not an http(s) URL, or `--only` names no test.
    BadInput,
    /// No connection (refused, no such host).
    Unreachable,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// No answer within the timeout.
    Timeout,
    /// 401 or 403: the token is refused.
    Unauthorized,
    /// An answer, but not SCIM (HTML, 404 on /Users, a redirect, JSON that
    /// is no ListResponse).
    NotScim,
    /// An answer that is not JSON.
    NotJson,
    /// A 5xx on the first request.
    ServerError,
    /// Ctrl-C before the tests started.
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreflightError {
    pub kind: PreflightKind,
    pub message: String,
}

impl std::fmt::Display for PreflightError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl PreflightError {
    pub fn new(kind: PreflightKind, message: impl Into<String>) -> Self {
        PreflightError {
            kind,
            message: message.into(),
        }
    }
}

/// The base URL to validate: http(s), without a query string or a
/// trailing slash (Entra's `?aadOptscim062020` is a flag for Entra, not
/// part of the URL; `--dialect` says which PATCH shapes to send).
pub fn base_url(url: &str) -> Result<String, PreflightError> {
    let trimmed = url.trim();
    let lower = trimmed.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(|| {
            PreflightError::new(
                PreflightKind::BadInput,
                format!("'{trimmed}' is not an http:// or https:// URL (the Tenant URL, e.g. https://app.example.com/scim/v2)"),
            )
        })?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(PreflightError::new(
            PreflightKind::BadInput,
            format!("'{trimmed}' names no host"),
        ));
    }
    let no_query = trimmed.split(['?', '#']).next().unwrap_or(trimmed);
    Ok(no_query.trim_end_matches('/').to_string())
}

/// A request that got no answer.
pub fn transport(base: &str, e: &TargetError, timeout_secs: f64) -> PreflightError {
    let detail = e.info.details.clone();
    let lower = detail.to_lowercase();
    if e.info.code == "Timeout" {
        return PreflightError::new(
            PreflightKind::Timeout,
            format!(
                "{base} did not answer within {timeout_secs} s: the endpoint hangs or is far too slow (Entra times out and retries in about 40 minutes). Raise --timeout if it is only slow."
            ),
        );
    }
    if let Some(status) = e.status {
        // An answer came, but could not be read (too large, cut off).
        return PreflightError::new(
            PreflightKind::NotScim,
            format!(
                "{base}/Users answered {status}, but the answer could not be read: {}. Is this the SCIM base URL?",
                after_path(&detail)
            ),
        );
    }
    // A plain-HTTP port spoken to with https://: its first bytes are no
    // TLS record.
    let plain = [
        "invalidcontenttype",
        "corrupt message",
        "wrong version number",
        "invalid message",
    ]
    .iter()
    .any(|w| lower.contains(w));
    if plain {
        return PreflightError::new(
            PreflightKind::Tls,
            format!(
                "the TLS connection to {base} failed: the server at this address does not speak TLS ({}). Is it plain HTTP? Then use http:// (Entra itself only connects with https://), or the port where TLS is served.",
                root(&detail)
            ),
        );
    }
    let tls = [
        "certificate",
        "tls",
        "handshake",
        "ssl",
        "invalidcontenttype",
        "corrupt message",
    ]
    .iter()
    .any(|w| lower.contains(w));
    if tls {
        return PreflightError::new(
            PreflightKind::Tls,
            format!(
                "the TLS connection to {base} failed: {}. Entra needs TLS 1.2 or newer and a certificate from a public CA that matches the host name.",
                root(&detail)
            ),
        );
    }
    PreflightError::new(
        PreflightKind::Unreachable,
        format!(
            "cannot connect to {base}: {}. Check the host, the port and that the endpoint is running.",
            root(&detail)
        ),
    )
}

/// A request's error without its `METHOD /path: ` prefix.
fn after_path(detail: &str) -> &str {
    detail.split_once(": ").map_or(detail, |(_, rest)| rest)
}

/// The last part of an error's chain ("… : connection refused").
fn root(detail: &str) -> String {
    detail.rsplit(": ").next().unwrap_or(detail).trim().to_string()
}

/// Whether a content type is JSON (`application/scim+json`,
/// `application/json`, with parameters).
pub fn is_json_type(ct: Option<&str>) -> bool {
    ct.is_some_and(|c| {
        let c = c.to_ascii_lowercase();
        c.contains("json")
    })
}

/// The answer to `GET /Users?startIndex=1&count=1`.
pub fn judge(base: &str, raw: &Raw) -> Result<(), PreflightError> {
    let url = format!("{base}/Users");
    let ct = raw.content_type.as_deref();
    let html = ct.is_some_and(|c| c.to_ascii_lowercase().contains("html"))
        || String::from_utf8_lossy(raw.bytes.get(..raw.bytes.len().min(200)).unwrap_or_default())
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("<!doctype html");
    let json = raw.json();
    match raw.status {
        401 | 403 => Err(PreflightError::new(
            PreflightKind::Unauthorized,
            format!(
                "{url} refused the token ({}): check --token (a Secret Token of this endpoint, sent as 'Authorization: Bearer …'). Entra would quarantine the job (EncounteredQuarantineException).",
                raw.status
            ),
        )),
        404 => Err(PreflightError::new(
            PreflightKind::NotScim,
            format!(
                "{url} answered 404: this is not a SCIM base URL. The Tenant URL is the one under which /Users and /Groups are, e.g. https://host/scim/v2."
            ),
        )),
        300..=399 => Err(PreflightError::new(
            PreflightKind::NotScim,
            format!(
                "{url} answered a redirect ({}){}: Entra does not follow redirects; use the final URL.",
                raw.status,
                raw.location.as_deref().map(|l| format!(" to {l}")).unwrap_or_default()
            ),
        )),
        s if s >= 500 => Err(PreflightError::new(
            PreflightKind::ServerError,
            format!("{url} failed with {s}: the endpoint has a server error; fix it before validating."),
        )),
        _ if html => Err(PreflightError::new(
            PreflightKind::NotScim,
            format!(
                "{url} answered an HTML page ({}), not SCIM JSON: the URL is probably a web site or a login page, not the SCIM base URL.",
                raw.status
            ),
        )),
        _ if json.is_none() => Err(PreflightError::new(
            PreflightKind::NotJson,
            format!(
                "{url} answered {} with a body that is not JSON (Content-Type: {}): a SCIM endpoint answers application/scim+json. Entra would log SystemForCrossDomainIdentityManagementServiceIncompatible.",
                raw.status,
                ct.unwrap_or("none")
            ),
        )),
        200..=299 => {
            let v = json.unwrap_or_default();
            if v.get("totalResults").is_some() || v.get("Resources").is_some() {
                Ok(())
            } else {
                Err(PreflightError::new(
                    PreflightKind::NotScim,
                    format!(
                        "{url} answered JSON that is not a SCIM ListResponse (no totalResults, no Resources): is this the SCIM base URL?"
                    ),
                ))
            }
        }
        // Another 4xx: if it speaks SCIM (an error body), the tests say
        // more than a preflight message could (some endpoints refuse a
        // list without a filter).
        s => {
            let scim = json
                .as_ref()
                .and_then(|v| v.get("schemas"))
                .is_some_and(|v| v.is_array());
            if scim {
                Ok(())
            } else {
                Err(PreflightError::new(
                    PreflightKind::NotScim,
                    format!("{url} answered {s} without a SCIM error body: is this the SCIM base URL?"),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn raw(status: u16, ct: &str, body: &str) -> Raw {
        Raw {
            status,
            content_type: (!ct.is_empty()).then(|| ct.to_string()),
            location: None,
            retry_after: None,
            bytes: body.as_bytes().to_vec(),
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn each_answer_gets_its_one_message() {
        let b = "http://h/scim";
        let kind = |r: Raw| judge(b, &r).err().map(|e| e.kind);
        assert_eq!(kind(raw(200, "application/scim+json", r#"{"totalResults":0}"#)), None);
        assert_eq!(kind(raw(401, "", "")), Some(PreflightKind::Unauthorized));
        assert_eq!(kind(raw(403, "", "")), Some(PreflightKind::Unauthorized));
        assert_eq!(kind(raw(404, "text/html", "<html>")), Some(PreflightKind::NotScim));
        assert_eq!(
            kind(raw(200, "text/html", "<!DOCTYPE html><p>hi")),
            Some(PreflightKind::NotScim)
        );
        assert_eq!(kind(raw(200, "text/plain", "hello")), Some(PreflightKind::NotJson));
        assert_eq!(
            kind(raw(200, "application/json", r#"{"a":1}"#)),
            Some(PreflightKind::NotScim)
        );
        assert_eq!(kind(raw(302, "", "")), Some(PreflightKind::NotScim));
        assert_eq!(kind(raw(503, "", "")), Some(PreflightKind::ServerError));
        assert_eq!(kind(raw(400, "application/scim+json", r#"{"schemas":["x"]}"#)), None);
        assert_eq!(kind(raw(400, "text/plain", "no")), Some(PreflightKind::NotJson));
        assert_eq!(kind(raw(400, "application/json", "{}")), Some(PreflightKind::NotScim));
    }

    #[test]
    fn urls_lose_their_query_and_slash() {
        assert_eq!(
            base_url("https://h/scim/v2/?aadOptscim062020").unwrap(),
            "https://h/scim/v2"
        );
        assert_eq!(base_url("ftp://h").unwrap_err().kind, PreflightKind::BadInput);
        assert_eq!(base_url("http://").unwrap_err().kind, PreflightKind::BadInput);
    }
}
