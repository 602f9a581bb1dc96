//! Delivery: one task per enabled endpoint, under a lease per endpoint, so
//! that on several nodes each endpoint is served by one node at a time.
//!
//! An endpoint's events are delivered **strictly in sequence order**: the
//! event after the cursor is tried until it is delivered, or until it has
//! failed for 24 hours — then it is set aside (kept with its body for
//! replay) and the next one goes. Events are therefore in order per
//! resource, except past one set aside. At least once: the cursor moves
//! only past events whose 2xx came, recorded in one write per 50
//! deliveries or 100 ms, so a node killed before that write (or a lease
//! lost mid-delivery) sends those events again, with the same
//! `webhook-id`.
//!
//! Events come from an [`EventSource`] (the events outbox); an endpoint
//! starts after the newest event of its tenant when it is added (the
//! application records that cursor), or, if it has none, when its worker
//! first looks at it. Failed events marked for replay are sent before the next event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use scimitar_store::webhooks::{AttemptRecord, DeliveryRecord, FailedEvent, Webhook, WebhookState};
use scimitar_store::{Store, TenantId, format_utc, now_utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::retry::{self, Next};
use crate::send::{Outcome, Sender};
use crate::sign::Key;

/// One event as delivered: its id (the `webhook-id`), its per-tenant
/// sequence number, its type and its JSON text (the request body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub id: String,
    pub seq: i64,
    pub event_type: String,
    pub body: String,
}

/// Where events come from: the events outbox, read in sequence order.
#[async_trait]
pub trait EventSource: Send + Sync {
    /// `tenant`'s events with a sequence number above `after`, in order, at
    /// most `limit`.
    async fn after(&self, tenant: TenantId, after: i64, limit: usize) -> Result<Vec<WebhookEvent>, String>;
    /// The sequence number of `tenant`'s newest event (0: none yet).
    async fn head(&self, tenant: TenantId) -> Result<i64, String>;
    /// Changes when events are committed in this process (events of other
    /// nodes are seen by polling).
    fn subscribe(&self) -> watch::Receiver<u64>;
}

/// Events in memory: for tests, and for embedding without an outbox.
pub struct MemoryEvents {
    events: Mutex<HashMap<TenantId, Vec<WebhookEvent>>>,
    wake: watch::Sender<u64>,
}

impl Default for MemoryEvents {
    fn default() -> MemoryEvents {
        MemoryEvents {
            events: Mutex::new(HashMap::new()),
            wake: watch::channel(0).0,
        }
    }
}

impl MemoryEvents {
    /// Appends an event of `event_type` with `data` to `tenant`'s feed and
    /// returns it.
    pub fn push(&self, tenant: TenantId, event_type: &str, data: serde_json::Value) -> WebhookEvent {
        let event = {
            let Ok(mut all) = self.events.lock() else {
                return WebhookEvent {
                    id: String::new(),
                    seq: 0,
                    event_type: event_type.into(),
                    body: String::new(),
                };
            };
            let feed = all.entry(tenant).or_default();
            let seq = feed.last().map_or(1, |e| e.seq + 1);
            let id = uuid::Uuid::new_v4().to_string();
            let body = serde_json::json!({
                "id": id, "tenant": tenant, "seq": seq, "time": now_utc(), "type": event_type, "data": data,
            });
            let event = WebhookEvent {
                id,
                seq,
                event_type: event_type.into(),
                body: body.to_string(),
            };
            feed.push(event.clone());
            event
        };
        self.wake.send_modify(|n| *n += 1);
        event
    }
}

#[async_trait]
impl EventSource for MemoryEvents {
    async fn after(&self, tenant: TenantId, after: i64, limit: usize) -> Result<Vec<WebhookEvent>, String> {
        let all = self.events.lock().map_err(|_| "poisoned".to_string())?;
        Ok(all
            .get(&tenant)
            .map(|feed| feed.iter().filter(|e| e.seq > after).take(limit).cloned().collect())
            .unwrap_or_default())
    }

    async fn head(&self, tenant: TenantId) -> Result<i64, String> {
        let all = self.events.lock().map_err(|_| "poisoned".to_string())?;
        Ok(all.get(&tenant).and_then(|f| f.last()).map_or(0, |e| e.seq))
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }
}

/// Deliveries are recorded at least this often…
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// …and at least every this many.
const FLUSH_LINES: usize = 50;

/// What to do after a failed attempt: [`retry::next`] in production.
pub type RetryRule = fn(u32, Duration, Option<Duration>, f64) -> Next;

/// How the workers run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This process's name as a lease holder.
    pub holder: String,
    /// How long an endpoint's lease lasts (renewed during deliveries once a third has passed):
    /// a killed node's endpoints are taken over after this long.
    pub lease: Duration,
    /// How often endpoints and events are looked for without a wake-up.
    pub poll: Duration,
    /// Events read at once.
    pub batch: usize,
    pub retry: RetryRule,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            holder: scimitar_store::lease::process_holder().to_string(),
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            batch: 100,
            retry: retry::next,
        }
    }
}

/// The lease name of an endpoint.
pub fn lease_name(tenant: TenantId, id: &str) -> String {
    format!("webhook:{tenant}:{id}")
}

/// The running worker of each endpoint, by tenant and id.
type Workers = Arc<Mutex<HashMap<(TenantId, String), JoinHandle<()>>>>;

/// The delivery workers of one process: started with [`Dispatcher::start`],
/// stopped when dropped.
pub struct Dispatcher {
    main: JoinHandle<()>,
    tasks: Workers,
}

struct Shared {
    store: Arc<dyn Store>,
    source: Arc<dyn EventSource>,
    sender: Sender,
    settings: Settings,
}

impl Dispatcher {
    pub fn start(
        store: Arc<dyn Store>,
        source: Arc<dyn EventSource>,
        sender: Sender,
        settings: Settings,
    ) -> Dispatcher {
        let shared = Arc::new(Shared {
            store,
            source,
            sender,
            settings,
        });
        let tasks: Workers = Arc::default();
        let main = tokio::spawn(supervise(shared, tasks.clone()));
        Dispatcher { main, tasks }
    }

    /// Stops every worker of this process (as a killed node would).
    pub fn stop(&self) {
        self.main.abort();
        if let Ok(mut tasks) = self.tasks.lock() {
            for (_, t) in tasks.drain() {
                t.abort();
            }
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts a worker for each enabled endpoint that has none running.
async fn supervise(shared: Arc<Shared>, tasks: Workers) {
    let mut wake = shared.source.subscribe();
    loop {
        match shared.store.enabled_webhooks().await {
            Ok(endpoints) => {
                if let Ok(mut running) = tasks.lock() {
                    running.retain(|_, t| !t.is_finished());
                    for (tenant, id) in endpoints {
                        running
                            .entry((tenant, id.clone()))
                            .or_insert_with(|| tokio::spawn(endpoint_worker(shared.clone(), tenant, id)));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "webhooks: cannot list the endpoints"),
        }
        let _ = tokio::time::timeout(shared.settings.poll, wake.changed()).await;
    }
}

fn random() -> f64 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
}

fn parse_time(t: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
}

fn later(d: Duration) -> String {
    format_utc(time::OffsetDateTime::now_utc() + d)
}

/// The keys that sign now: the secret, and the previous one until its
/// overlap ends.
pub fn keys(w: &Webhook) -> Result<Vec<Key>, String> {
    let open = |sealed: &str| -> Result<Key, String> {
        let secret = scimitar_auth::seal::open(sealed).map_err(|e| e.to_string())?;
        Key::parse(&secret).map_err(|e| e.to_string())
    };
    let mut keys = vec![open(&w.secret_sealed)?];
    if let (Some(prev), Some(until)) = (&w.previous_sealed, &w.previous_until)
        && until.as_str() > now_utc().as_str()
        && let Ok(k) = open(prev)
    {
        keys.push(k);
    }
    Ok(keys)
}

fn log_line(event: &WebhookEvent, status: &str, attempts: i64, out: &Outcome) -> DeliveryRecord {
    DeliveryRecord {
        event_id: event.id.clone(),
        seq: event.seq,
        event_type: event.event_type.clone(),
        status: status.into(),
        attempts,
        latency_ms: i64::try_from(out.latency.as_millis()).unwrap_or(i64::MAX),
        response_code: out.status.map(i64::from),
        error: out.error.clone(),
        time: now_utc(),
    }
}

enum Step {
    /// Go on at once (more events may be waiting).
    Again,
    /// Nothing to do before this long, or a wake-up.
    Idle(Duration),
    /// The endpoint is gone or disabled.
    Exit,
}

async fn endpoint_worker(shared: Arc<Shared>, tenant: TenantId, id: String) {
    let mut wake = shared.source.subscribe();
    let lease = lease_name(tenant, &id);
    loop {
        let step = match round(&shared, tenant, &id, &lease).await {
            Ok(step) => step,
            Err(e) => {
                tracing::warn!(tenant, endpoint = %id, error = %e, "webhooks: delivery round failed");
                Step::Idle(shared.settings.poll)
            }
        };
        match step {
            Step::Exit => return,
            Step::Again => {}
            Step::Idle(d) => {
                let _ = tokio::time::timeout(d.min(shared.settings.poll), wake.changed()).await;
            }
        }
    }
}

async fn take_lease(shared: &Shared, lease: &str) -> Result<bool, String> {
    let (now, until) = scimitar_store::lease::window(shared.settings.lease);
    shared
        .store
        .try_lease(lease, &shared.settings.holder, &now, &until)
        .await
        .map_err(|e| e.to_string())
}

/// One round of an endpoint: replays, then events from the cursor until one
/// fails or the batch ends.
async fn round(shared: &Shared, tenant: TenantId, id: &str, lease: &str) -> Result<Step, String> {
    let store = &shared.store;
    let Some(w) = store.webhook(tenant, id).await.map_err(|e| e.to_string())? else {
        return Ok(Step::Exit);
    };
    if !w.enabled {
        return Ok(Step::Exit);
    }
    if !take_lease(shared, lease).await? {
        return Ok(Step::Idle(shared.settings.poll));
    }
    // Renewed before a delivery once a third of it has passed: one write
    // per event is the cursor's, not the lease's too.
    let mut taken = std::time::Instant::now();
    let renew_after = shared.settings.lease / 3;
    let keys = keys(&w)?;
    // Failed events asked to be replayed.
    if w.failed > 0 {
        for f in store
            .failed_events(tenant, id, 100)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|f| f.replay)
        {
            if taken.elapsed() >= renew_after {
                if !take_lease(shared, lease).await? {
                    return Ok(Step::Idle(shared.settings.poll));
                }
                taken = std::time::Instant::now();
            }
            let event = WebhookEvent {
                id: f.event_id.clone(),
                seq: f.seq,
                event_type: f.event_type.clone(),
                body: f.body.clone(),
            };
            let out = shared
                .sender
                .send(&w.url, &event.id, event.body.as_bytes(), &keys)
                .await;
            let status = if out.delivered { "replayed" } else { "failed" };
            let line = log_line(&event, status, 1, &out);
            store
                .finish_replay(tenant, id, f.seq, out.delivered, &line)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    let mut state = w.state.clone();
    let cursor = match state.cursor {
        Some(c) => c,
        None => {
            let head = shared.source.head(tenant).await?;
            state.cursor = Some(head);
            let rec = AttemptRecord {
                state: state.clone(),
                log: Vec::new(),
                failed: None,
            };
            store
                .record_webhook_attempt(tenant, id, &rec)
                .await
                .map_err(|e| e.to_string())?;
            head
        }
    };
    if let Some(next) = state.next_attempt.as_deref().and_then(parse_time) {
        let wait = next - time::OffsetDateTime::now_utc();
        if wait.is_positive() {
            return Ok(Step::Idle(wait.try_into().unwrap_or(shared.settings.poll)));
        }
    }
    let events = shared.source.after(tenant, cursor, shared.settings.batch).await?;
    if events.is_empty() {
        return Ok(Step::Idle(shared.settings.poll));
    }
    let full = events.len() >= shared.settings.batch;
    // Deliveries are recorded together (the cursor and their log lines in
    // one write) every FLUSH_EVERY or FLUSH_LINES, and before anything else
    // is: a node stopped in between sends the unrecorded ones again, with
    // their ids — still at least once, never past an undelivered event.
    let mut dirty = false;
    let mut lines: Vec<DeliveryRecord> = Vec::new();
    let mut flushed = std::time::Instant::now();
    for event in events {
        if !w.types.is_empty() && !w.types.contains(&event.event_type) {
            state.cursor = Some(event.seq);
            dirty = true;
            continue;
        }
        if taken.elapsed() >= renew_after {
            if !take_lease(shared, lease).await? {
                break;
            }
            taken = std::time::Instant::now();
        }
        let out = shared
            .sender
            .send(&w.url, &event.id, event.body.as_bytes(), &keys)
            .await;
        let attempts = state.attempts + 1;
        let rec = if out.delivered {
            state = WebhookState {
                cursor: Some(event.seq),
                ..WebhookState::default()
            };
            lines.push(log_line(&event, "delivered", attempts, &out));
            dirty = true;
            if lines.len() < FLUSH_LINES && flushed.elapsed() < FLUSH_EVERY {
                continue;
            }
            AttemptRecord {
                state: state.clone(),
                log: std::mem::take(&mut lines),
                failed: None,
            }
        } else {
            let first = state.first_attempt.clone().unwrap_or_else(now_utc);
            let since_first = parse_time(&first)
                .map(|f| time::OffsetDateTime::now_utc() - f)
                .and_then(|d| Duration::try_from(d).ok())
                .unwrap_or(Duration::ZERO);
            let failed_attempts = u32::try_from(attempts).unwrap_or(u32::MAX);
            match (shared.settings.retry)(failed_attempts, since_first, out.retry_after, random()) {
                Next::Retry(delay) => {
                    state.attempts = attempts;
                    state.first_attempt = Some(first);
                    state.next_attempt = Some(later(delay));
                    state.last_error = out.error.clone();
                    lines.push(log_line(&event, "retrying", attempts, &out));
                    let rec = AttemptRecord {
                        state: state.clone(),
                        log: std::mem::take(&mut lines),
                        failed: None,
                    };
                    store
                        .record_webhook_attempt(tenant, id, &rec)
                        .await
                        .map_err(|e| e.to_string())?;
                    return Ok(Step::Idle(delay));
                }
                Next::Fail => {
                    state = WebhookState {
                        cursor: Some(event.seq),
                        ..WebhookState::default()
                    };
                    lines.push(log_line(&event, "failed", attempts, &out));
                    AttemptRecord {
                        state: state.clone(),
                        log: std::mem::take(&mut lines),
                        failed: Some(FailedEvent {
                            seq: event.seq,
                            event_id: event.id.clone(),
                            event_type: event.event_type.clone(),
                            body: event.body.clone(),
                            failed_at: now_utc(),
                            error: out.error.clone(),
                            replay: false,
                        }),
                    }
                }
            }
        };
        dirty = false;
        flushed = std::time::Instant::now();
        if !store
            .record_webhook_attempt(tenant, id, &rec)
            .await
            .map_err(|e| e.to_string())?
        {
            return Ok(Step::Exit);
        }
    }
    if dirty {
        let rec = AttemptRecord {
            state,
            log: lines,
            failed: None,
        };
        store
            .record_webhook_attempt(tenant, id, &rec)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(if full {
        Step::Again
    } else {
        Step::Idle(shared.settings.poll)
    })
}
