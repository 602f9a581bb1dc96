//! Reading the change events of a tenant (`docs/events.md`): pages after
//! an opaque cursor, filtered by type, and long polls that answer as soon
//! as an event is committed — woken in-process by every write of this
//! process, and by a short poll for the writes of other processes (other
//! nodes, `scimitar import`).

use std::time::Duration;

use base64::Engine;
use scimitar_protocol::ScimError;
use scimitar_protocol::events::EVENT_TYPES;
use scimitar_store::{Event, Tenant};
use serde_json::{Value, json};

use crate::{App, scim_error};

/// The most events one page holds.
pub const MAX_LIMIT: usize = 1000;
/// The longest a long poll waits.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// How often a long poll looks for events committed by other processes.
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// Long polls waiting at once in this process; more are answered 429.
pub const MAX_WAITERS: usize = 256;

const CURSOR_PREFIX: &str = "ev1:";

/// The opaque cursor after the event numbered `seq`.
pub fn cursor(seq: i64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{seq}"))
}

/// The sequence number a cursor stands for, or a 400 that says what is
/// wrong with it.
pub fn parse_cursor(text: &str) -> Result<i64, ScimError> {
    let bad = || {
        ScimError::invalid_value(format!(
            "'{}' is not an events cursor: pass the `next` of a previous answer, or leave `after` out to start at the oldest event",
            text.chars().take(80).collect::<String>()
        ))
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| bad())?;
    let s = String::from_utf8(bytes).map_err(|_| bad())?;
    let n = s.strip_prefix(CURSOR_PREFIX).ok_or_else(bad)?;
    match n.parse::<i64>() {
        Ok(v) if v >= 0 => Ok(v),
        _ => Err(bad()),
    }
}

/// Event types from a comma-separated list, each checked.
pub fn parse_types(text: &str) -> Result<Vec<String>, ScimError> {
    let mut out = Vec::new();
    for t in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if !EVENT_TYPES.contains(&t) {
            return Err(ScimError::invalid_value(format!(
                "unknown event type '{}' (one of: {})",
                t.chars().take(80).collect::<String>(),
                EVENT_TYPES.join(", ")
            )));
        }
        if !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    }
    Ok(out)
}

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// After this sequence number (0: from the oldest).
    pub after: i64,
    /// At most this many (1..=`MAX_LIMIT`).
    pub limit: usize,
    /// Only these types (all when empty).
    pub types: Vec<String>,
    /// Wait this long for the first event if there is none yet.
    pub wait: Duration,
}

/// A page of events.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<Event>,
    /// The cursor to read on from.
    pub next: String,
    /// The sequence number `next` stands for.
    pub next_seq: i64,
}

/// An event as the events API and the CLI show it.
pub fn event_json(tenant: &str, e: &Event) -> Value {
    json!({
        "id": e.id,
        "tenant": tenant,
        "seq": e.seq,
        "time": e.time,
        "type": e.event_type,
        "data": e.data,
    })
}

/// Wakes long polls and webhook workers when this process commits events,
/// and the webhook supervisor when it adds or enables an endpoint.
pub(crate) struct Signal {
    tx: tokio::sync::watch::Sender<u64>,
    /// Changes when this process adds or enables a webhook endpoint: the
    /// webhook supervisor starts its worker at once.
    endpoints: tokio::sync::watch::Sender<u64>,
    waiters: std::sync::Arc<tokio::sync::Semaphore>,
    /// The server is shutting down: long polls answer at once.
    closing: std::sync::atomic::AtomicBool,
}

impl Default for Signal {
    fn default() -> Self {
        Signal {
            tx: tokio::sync::watch::channel(0).0,
            endpoints: tokio::sync::watch::channel(0).0,
            waiters: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_WAITERS)),
            closing: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl App {
    /// Says that events may have been committed (after a write).
    pub(crate) fn events_committed(&self) {
        self.events.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Says that this process added or enabled a webhook endpoint.
    pub(crate) fn endpoints_changed(&self) {
        self.events.endpoints.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes when this process added or enabled a webhook endpoint.
    pub(crate) fn endpoints_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.events.endpoints.subscribe()
    }

    /// Changes when this process may have committed events.
    pub(crate) fn events_signal(&self) -> tokio::sync::watch::Receiver<u64> {
        self.events.tx.subscribe()
    }

    /// Ends the long polls waiting now and to come (their answers say what
    /// there is, often nothing): a server shutting down need not wait for
    /// them.
    pub fn end_long_polls(&self) {
        self.events.closing.store(true, std::sync::atomic::Ordering::SeqCst);
        self.events_committed();
    }

    /// The events of one logged change (`ActivityEvent::change`), for the
    /// activity page's link; `at` is the entry's time. Its events were
    /// stored within seconds of it: a window of ten minutes either side
    /// keeps the lookup to a short stretch of the outbox.
    pub async fn change_events(&self, tenant: &Tenant, change: &str, at: &str) -> Result<Vec<Event>, ScimError> {
        use time::format_description::well_known::Rfc3339;
        let at = time::OffsetDateTime::parse(at, &Rfc3339)
            .map_err(|_| ScimError::invalid_value(format!("'{at}' is not an RFC 3339 time")))?;
        let window = time::Duration::minutes(10);
        // The stored format, so that the strings compare as times.
        let fmt = scimitar_store::format_utc;
        self.store
            .change_events(tenant.id, change, &fmt(at - window), &fmt(at + window))
            .await
            .map_err(scim_error)
    }

    /// A page of the tenant's events after `q.after`; with `q.wait`, waits
    /// up to that long for the first one.
    pub async fn read_events(&self, tenant: &Tenant, q: EventQuery) -> Result<EventPage, ScimError> {
        if q.limit == 0 || q.limit > MAX_LIMIT {
            return Err(ScimError::invalid_value(format!("limit must be 1 to {MAX_LIMIT}")));
        }
        if q.wait > MAX_WAIT {
            return Err(ScimError::invalid_value(format!(
                "wait must be at most {} seconds",
                MAX_WAIT.as_secs()
            )));
        }
        let deadline = tokio::time::Instant::now() + q.wait;
        let mut woken = self.events.tx.subscribe();
        let mut permit = None;
        // Where the scan starts: moves past events that did not match
        // `types`, so that a filtered long poll does not read them again.
        let mut scan_from = q.after;
        loop {
            woken.borrow_and_update();
            // Read first: every event numbered up to `high` is visible now,
            // so once those up to it are read, `next` may move to it.
            let high = self.store.last_event_seq(tenant.id).await.map_err(scim_error)?;
            let mut events = self
                .store
                .list_events(tenant.id, scan_from, q.limit, &q.types)
                .await
                .map_err(scim_error)?;
            let numbered_since = events.iter().any(|e| e.seq > high);
            events.retain(|e| e.seq <= high);
            // Every match up to `high` is in `events`.
            let complete = numbered_since || events.len() < q.limit;
            let next_seq = match events.last() {
                Some(last) if !complete => last.seq,
                _ if complete => high.max(scan_from),
                _ => scan_from,
            };
            if numbered_since && events.is_empty() {
                continue; // numbered while this read: read again at once
            }
            let now = tokio::time::Instant::now();
            let closing = self.events.closing.load(std::sync::atomic::Ordering::SeqCst);
            if !events.is_empty() || now >= deadline || closing {
                return Ok(EventPage {
                    events,
                    next: cursor(next_seq),
                    next_seq,
                });
            }
            scan_from = next_seq;
            if permit.is_none() {
                permit = Some(self.events.waiters.clone().try_acquire_owned().map_err(|_| ScimError {
                    retry_after: Some(1),
                    ..ScimError::new(429, None, "too many long polls are waiting; retry shortly")
                })?);
            }
            let nap = (deadline - now).min(POLL_EVERY);
            let _ = tokio::time::timeout(nap, woken.changed()).await;
        }
    }

    /// Deletes events older than the retention (across tenants).
    pub(crate) async fn purge_events(&self) {
        let cutoff = scimitar_store::utc_in(-i64::from(self.config.event_retention_days) * 86_400);
        match self.store.purge_events(&cutoff).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "applied event retention"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not apply event retention"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        for n in [0, 1, 42, i64::MAX] {
            assert_eq!(parse_cursor(&cursor(n)).unwrap(), n);
        }
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        for bad in [
            "".to_string(),
            "garbage!".to_string(),
            "42".to_string(),
            enc("42"),
            enc("ev1:"),
            enc("ev1:-3"),
            enc("ev1:x"),
            enc("ev2:4"),
        ] {
            let e = parse_cursor(&bad).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
            assert!(e.detail.contains("not an events cursor"), "{}", e.detail);
        }
    }

    #[test]
    fn types_are_checked() {
        assert_eq!(
            parse_types("user.created, group.user_added,user.created").unwrap(),
            ["user.created", "group.user_added"]
        );
        assert!(parse_types("").unwrap().is_empty());
        let e = parse_types("user.created,user.exploded").unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.detail.contains("user.exploded"));
    }
}
