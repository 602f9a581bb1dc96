//! One delivery attempt: a POST of one event, signed, to a URL that passes
//! the [`Policy`], with timeouts, no redirects, and at most
//! [`MAX_RESPONSE_BYTES`] of the answer read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::policy::{CheckedResolver, Policy};
use crate::retry::parse_retry_after;
use crate::sign::{Key, signature_header};

/// How much of a receiver's answer is read (the rest is dropped with the
/// connection).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// How much of a failed answer's body is kept in the delivery log.
const MAX_LOGGED_BODY: usize = 200;

/// Time limits of one attempt.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// To open the connection (TCP and TLS).
    pub connect: Duration,
    /// For the whole attempt, answer included.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(5),
            total: Duration::from_secs(15),
        }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// A 2xx answer, read in time.
    pub delivered: bool,
    /// The answer's status, if one came.
    pub status: Option<u16>,
    pub latency: Duration,
    /// Why it failed, for the delivery log.
    pub error: Option<String>,
    /// What a 429 or 503 asked for.
    pub retry_after: Option<Duration>,
}

/// Sends deliveries: one HTTP client (connections kept alive per host),
/// resolving names through the policy.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    policy: Arc<Policy>,
}

impl Sender {
    pub fn new(policy: Arc<Policy>, timeouts: Timeouts) -> Result<Sender, String> {
        // One crypto provider in the process (ring, like the server's TLS).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckedResolver(policy.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.total)
            .pool_idle_timeout(Duration::from_secs(60))
            // A worker keeps up to `Settings::in_flight` requests open to its
            // endpoint's host: each connection it opened stays in the pool
            // for the next event (no cap per host, as reqwest's default).
            .pool_max_idle_per_host(usize::MAX)
            .tcp_nodelay(true)
            .user_agent(concat!("Scimitar-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the webhook HTTP client: {e}"))?;
        Ok(Sender { client, policy })
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Posts `body` (one event, JSON) to `url`, signed with `keys` under
    /// the event's id and the current time.
    pub async fn send(&self, url: &str, event_id: &str, body: &[u8], keys: &[Key]) -> Outcome {
        let started = Instant::now();
        let fail = |error: String, status: Option<u16>, retry_after: Option<Duration>| Outcome {
            delivered: false,
            status,
            latency: started.elapsed(),
            error: Some(error),
            retry_after,
        };
        if let Err(e) = self.policy.check(url).await {
            return fail(e.to_string(), None, None);
        }
        self.post_checked(url, event_id, body, keys, started).await
    }

    /// As [`Sender::send`], for a URL the caller has just checked with
    /// [`Sender::policy`] (the worker does once per round, not per event:
    /// resolving the host per event cost a DNS lookup each). Connections
    /// still go only to addresses the policy allows: the client's resolver
    /// checks every one it opens.
    pub async fn send_checked(&self, url: &str, event_id: &str, body: &[u8], keys: &[Key]) -> Outcome {
        self.post_checked(url, event_id, body, keys, Instant::now()).await
    }

    async fn post_checked(&self, url: &str, event_id: &str, body: &[u8], keys: &[Key], started: Instant) -> Outcome {
        let fail = |error: String, status: Option<u16>, retry_after: Option<Duration>| Outcome {
            delivered: false,
            status,
            latency: started.elapsed(),
            error: Some(error),
            retry_after,
        };
        let now = unix_now();
        let request = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", event_id)
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", signature_header(keys, event_id, now, body))
            .body(body.to_vec());
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return fail(describe(&e), None, None),
        };
        let status = response.status().as_u16();
        let retry_after = if status == 429 || status == 503 {
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now))
        } else {
            None
        };
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(|l| l.chars().take(200).collect::<String>());
        let mut read = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_RESPONSE_BYTES.saturating_sub(read.len());
                    read.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                    if read.len() >= MAX_RESPONSE_BYTES {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => return fail(describe(&e), Some(status), retry_after),
            }
        }
        if (200..300).contains(&status) {
            return Outcome {
                delivered: true,
                status: Some(status),
                latency: started.elapsed(),
                error: None,
                retry_after: None,
            };
        }
        let error = if (300..400).contains(&status) {
            format!(
                "HTTP {status}: redirects are not followed (to {}); set the endpoint's URL to where it points",
                location.as_deref().unwrap_or("nowhere")
            )
        } else {
            let text: String = String::from_utf8_lossy(&read).chars().take(MAX_LOGGED_BODY).collect();
            if text.trim().is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {}", text.trim())
            }
        };
        fail(error, Some(status), retry_after)
    }
}

/// An HTTP client error as a line for the delivery log: what failed, with
/// its cause (never the URL's query string: reqwest's own text has none).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {cause}")
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
