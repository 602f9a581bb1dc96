//! Delivery: one task per enabled endpoint, under a lease per endpoint, so
//! that on several nodes each endpoint is served by one node at a time.
//!
//! An endpoint's events are delivered **in order per resource** (per event
//! subject; events without one are ordered among themselves): up to [`Settings::in_flight`] requests are in flight at
//! once, never two for the same subject, and a subject's events go in
//! sequence order, each once the previous one's 2xx came. The cursor is
//! the highest sequence number below which every event was delivered (or
//! skipped by the endpoint's type filter). When an attempt fails no new
//! one starts; those in flight finish, the cursor is recorded at the first
//! undelivered event, and the endpoint is retried from there on the
//! schedule of [`retry`], one request at a time until that event is
//! delivered, or until it has failed for 24 hours — then it is set aside
//! (kept with its body for replay) and the next one goes. Events are
//! therefore in order per resource, except past one set aside.
//!
//! At least once: the cursor moves only past events whose 2xx came,
//! recorded in one write per 50 deliveries or 100 ms, so a node killed
//! before that write (or a lease lost mid-delivery) sends those events
//! again, with the same `webhook-id`. After a failure, events past the
//! first undelivered one that were delivered in the meantime are sent
//! again too (same `webhook-id`).
//!
//! Events come from an [`EventSource`] (the events outbox); an endpoint
//! starts after the newest event of its tenant when it is added (the
//! application records that cursor), or, if it has none, when its worker
//! first looks at it. Failed events marked for replay are sent before the next event.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use scimitar_store::webhooks::{AttemptRecord, DeliveryRecord, FailedEvent, Webhook, WebhookState};
use scimitar_store::{Store, TenantId, format_utc, now_utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::retry::{self, Next};
use crate::send::{Outcome, Sender};
use crate::sign::Key;

/// One event as delivered: its id (the `webhook-id`), its per-tenant
/// sequence number, its type, its subject (the resource or token it is
/// about: its deliveries are ordered by it) and its JSON text (the request
/// body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub id: String,
    pub seq: i64,
    pub event_type: String,
    pub subject: Option<String>,
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
    /// Changes when this process adds or enables an endpoint, if the
    /// source knows (endpoints added elsewhere are seen by polling).
    fn endpoints_changed(&self) -> Option<watch::Receiver<u64>> {
        None
    }
}

/// Events in memory: for tests, and for embedding without an outbox.
pub struct MemoryEvents {
    events: Mutex<HashMap<TenantId, Vec<WebhookEvent>>>,
    wake: watch::Sender<u64>,
    endpoints: watch::Sender<u64>,
}

impl Default for MemoryEvents {
    fn default() -> MemoryEvents {
        MemoryEvents {
            events: Mutex::new(HashMap::new()),
            wake: watch::channel(0).0,
            endpoints: watch::channel(0).0,
        }
    }
}

impl MemoryEvents {
    /// Says that an endpoint was added or enabled (workers start at once).
    pub fn endpoint_added(&self) {
        self.endpoints.send_modify(|n| *n += 1);
    }

    /// Appends an event of `event_type` with `data`, about no subject, to
    /// `tenant`'s feed and returns it.
    pub fn push(&self, tenant: TenantId, event_type: &str, data: serde_json::Value) -> WebhookEvent {
        self.push_about(tenant, event_type, None, data)
    }

    /// Appends an event of `event_type` about `subject` with `data` to
    /// `tenant`'s feed and returns it.
    pub fn push_about(
        &self,
        tenant: TenantId,
        event_type: &str,
        subject: Option<&str>,
        data: serde_json::Value,
    ) -> WebhookEvent {
        let event = {
            let Ok(mut all) = self.events.lock() else {
                return WebhookEvent {
                    id: String::new(),
                    seq: 0,
                    event_type: event_type.into(),
                    subject: subject.map(str::to_string),
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
                subject: subject.map(str::to_string),
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

    fn endpoints_changed(&self) -> Option<watch::Receiver<u64>> {
        Some(self.endpoints.subscribe())
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
    /// Events read at once (a page of the outbox; the worker reads the next
    /// one when fewer than this many are left to deliver).
    pub batch: usize,
    /// Requests in flight at once to one endpoint (never two for one
    /// subject): a receiver's round trip is paid once per this many events.
    pub in_flight: usize,
    pub retry: RetryRule,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            holder: scimitar_store::lease::process_holder().to_string(),
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            batch: 500,
            in_flight: DEFAULT_IN_FLIGHT,
            retry: retry::next,
        }
    }
}

/// The default of [`Settings::in_flight`].
pub const DEFAULT_IN_FLIGHT: usize = 32;

/// The lease name of an endpoint.
pub fn lease_name(tenant: TenantId, id: &str) -> String {
    format!("webhook:{tenant}:{id}")
}

/// How often the supervisor lists the endpoints at most (see `supervise`).
const RELIST_AT_MOST_EVERY: Duration = Duration::from_millis(250);

/// The running worker of each endpoint, by tenant and id.
type Workers = Arc<Mutex<HashMap<(TenantId, String), JoinHandle<()>>>>;

/// The delivery workers of one process: started with [`Dispatcher::start`],
/// stopped when dropped.
pub struct Dispatcher {
    main: JoinHandle<()>,
    tasks: Workers,
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<dyn Store>,
    source: Arc<dyn EventSource>,
    sender: Sender,
    settings: Settings,
    /// How often the endpoints were listed.
    listings: std::sync::atomic::AtomicU64,
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
            listings: std::sync::atomic::AtomicU64::new(0),
        });
        let tasks: Workers = Arc::default();
        let main = tokio::spawn(supervise(shared.clone(), tasks.clone()));
        Dispatcher { main, tasks, shared }
    }

    /// How often this process listed the enabled endpoints so far (each a
    /// query): bounded by time, not by the number of changes.
    pub fn endpoint_listings(&self) -> u64 {
        self.shared.listings.load(std::sync::atomic::Ordering::Relaxed)
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
    let mut endpoints = shared.source.endpoints_changed();
    // An endpoint added or enabled in this process wakes it at once. A
    // committed change wakes it too (an endpoint added by another process
    // then starts with the change that follows), but for those it lists
    // the endpoints at most this often: under a write load a listing per
    // write cost every write a query, with no endpoint at all.
    let gap = shared.settings.poll.min(RELIST_AT_MOST_EVERY);
    loop {
        let listed = tokio::time::Instant::now();
        shared.listings.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
        let after_a_change = async {
            tokio::time::sleep_until(listed + gap).await;
            // A closed channel (its sender gone) wakes nobody.
            if wake.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let endpoint_added = async {
            let changed = match endpoints.as_mut() {
                Some(rx) => rx.changed().await.is_ok(),
                None => false,
            };
            if !changed {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = after_a_change => {}
            () = endpoint_added => {}
            () = tokio::time::sleep(shared.settings.poll) => {}
        }
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

/// How long a round reads new pages: then it lets its requests finish and
/// the next round reads the endpoint again (disabled, secret rotated).
const ROUND_TIME: Duration = Duration::from_secs(1);

async fn endpoint_worker(shared: Arc<Shared>, tenant: TenantId, id: String) {
    let mut wake = shared.source.subscribe();
    let lease = lease_name(tenant, &id);
    let mut held = None;
    loop {
        let step = match round(&shared, tenant, &id, &lease, &mut held).await {
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

/// Takes the lease, or renews it once a third of it has passed since
/// `held` (when this worker last did): when events trickle in, rounds
/// follow each other closely, and a lease write per round was one per
/// event or two.
async fn hold_lease(shared: &Shared, lease: &str, held: &mut Option<Instant>) -> Result<bool, String> {
    if held.is_some_and(|t| t.elapsed() < shared.settings.lease / 3) {
        return Ok(true);
    }
    let asked = Instant::now();
    let ok = take_lease(shared, lease).await?;
    *held = ok.then_some(asked);
    Ok(ok)
}

/// One round of an endpoint: replays, then events from the cursor, several
/// in flight, until none is left, one fails or the round's time is up.
async fn round(
    shared: &Shared,
    tenant: TenantId,
    id: &str,
    lease: &str,
    held: &mut Option<Instant>,
) -> Result<Step, String> {
    let store = &shared.store;
    let Some(w) = store.webhook(tenant, id).await.map_err(|e| e.to_string())? else {
        return Ok(Step::Exit);
    };
    if !w.enabled {
        return Ok(Step::Exit);
    }
    if !hold_lease(shared, lease, held).await? {
        return Ok(Step::Idle(shared.settings.poll));
    }
    let keys = Arc::new(keys(&w)?);
    // Failed events asked to be replayed.
    if w.failed > 0 {
        for f in store
            .failed_events(tenant, id, 100)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|f| f.replay)
        {
            if !hold_lease(shared, lease, held).await? {
                return Ok(Step::Idle(shared.settings.poll));
            }
            let event = WebhookEvent {
                id: f.event_id,
                seq: f.seq,
                event_type: f.event_type,
                subject: None,
                body: f.body,
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
    deliver(
        shared,
        Round {
            tenant,
            id,
            lease,
            w: &w,
            keys,
            state,
            cursor,
        },
        held,
    )
    .await
}

/// What [`deliver`] works on.
struct Round<'a> {
    tenant: TenantId,
    id: &'a str,
    lease: &'a str,
    w: &'a Webhook,
    keys: Arc<Vec<Key>>,
    /// The endpoint's state at the start of the round.
    state: WebhookState,
    cursor: i64,
}

/// One attempt, as it ended.
struct Attempt {
    /// Its event's position in the [`Window`].
    pos: u64,
    event: Arc<WebhookEvent>,
    /// Which attempt of the event it was, for the log.
    tries: i64,
    out: Outcome,
}

/// The events of a round from the cursor on: which may be sent now (the
/// first undelivered one of each subject, when none of that subject is in
/// flight), and how far the cursor goes.
struct Window {
    /// In sequence order from the one after the cursor, each with whether
    /// it is done (delivered, or skipped by the type filter).
    slots: VecDeque<(Arc<WebhookEvent>, bool)>,
    /// The position of `slots[0]` (positions count every event pushed).
    base: u64,
    /// The sequence number below which (inclusive) everything is done.
    cursor: i64,
    /// The sequence number of the newest event pushed.
    read: i64,
    /// The positions of each subject's undelivered events, in order: the
    /// first is in flight, ready, or failed.
    subjects: HashMap<Option<String>, VecDeque<u64>>,
    /// The positions that may be sent now.
    ready: BTreeSet<u64>,
}

impl Window {
    fn new(cursor: i64) -> Window {
        Window {
            slots: VecDeque::new(),
            base: 0,
            cursor,
            read: cursor,
            subjects: HashMap::new(),
            ready: BTreeSet::new(),
        }
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    /// Adds the next event read; one the endpoint does not want is done
    /// at once.
    fn push(&mut self, event: WebhookEvent, wanted: bool) {
        let pos = self.base + u64::try_from(self.slots.len()).unwrap_or(u64::MAX);
        self.read = event.seq;
        if wanted {
            let queue = self.subjects.entry(event.subject.clone()).or_default();
            queue.push_back(pos);
            if queue.len() == 1 {
                self.ready.insert(pos);
            }
        }
        self.slots.push_back((Arc::new(event), !wanted));
        self.advance();
    }

    /// The next event to send, the oldest of those that may go.
    fn start(&mut self) -> Option<(u64, Arc<WebhookEvent>)> {
        let pos = self.ready.pop_first()?;
        let index = usize::try_from(pos.checked_sub(self.base)?).ok()?;
        Some((pos, self.slots.get(index)?.0.clone()))
    }

    /// An attempt delivered its event: the next of its subject may go.
    /// (After a failed one the subject waits: nothing starts after it in
    /// this round.)
    fn delivered(&mut self, pos: u64) {
        let Some(index) = pos.checked_sub(self.base).and_then(|i| usize::try_from(i).ok()) else {
            return;
        };
        let Some((event, done)) = self.slots.get_mut(index) else {
            return;
        };
        *done = true;
        if let Some(queue) = self.subjects.get_mut(&event.subject) {
            queue.pop_front();
            match queue.front() {
                Some(&next) => {
                    self.ready.insert(next);
                }
                None => {
                    self.subjects.remove(&event.subject);
                }
            }
        }
        self.advance();
    }

    /// Moves the cursor over the events done at the front.
    fn advance(&mut self) {
        while let Some((event, true)) = self.slots.front() {
            self.cursor = event.seq;
            self.slots.pop_front();
            self.base += 1;
        }
    }

    /// The first event neither delivered nor skipped.
    fn first_undelivered(&self) -> Option<&Arc<WebhookEvent>> {
        self.slots.front().map(|(e, _)| e)
    }
}

/// Waits for a record written in the background: whether the endpoint
/// still exists.
async fn written(writing: Option<tokio::task::JoinHandle<Result<bool, String>>>) -> Result<bool, String> {
    match writing {
        None => Ok(true),
        Some(h) => h.await.map_err(|e| format!("a delivery record stopped: {e}"))?,
    }
}

/// Delivers events from the cursor, up to `in_flight` at once (one while
/// retrying the event after the cursor), recording deliveries in batches;
/// after a failure, the retry state or the event set aside, as
/// [`retry::next`] says.
async fn deliver(shared: &Shared, r: Round<'_>, held: &mut Option<Instant>) -> Result<Step, String> {
    let Round {
        tenant,
        id,
        lease,
        w,
        keys,
        state,
        cursor,
    } = r;
    let store = &shared.store;
    let batch = shared.settings.batch.max(1);
    let limit = shared.settings.in_flight.max(1);
    let url: Arc<str> = Arc::from(w.url.as_str());
    let began = Instant::now();
    let mut window = Window::new(cursor);
    let mut flight: tokio::task::JoinSet<Attempt> = tokio::task::JoinSet::new();
    // Retrying the event after the cursor: it goes alone until delivered,
    // so that its attempts are counted as before.
    let mut probe = state.attempts > 0;
    // The source may have events after those read.
    let mut more = true;
    // No new attempt starts: one failed, the lease is lost, or a read failed.
    let mut stop = false;
    let mut lost = false;
    let mut error: Option<String> = None;
    // The failed attempt of the lowest sequence number.
    let mut failed: Option<Attempt> = None;
    // The URL is checked once per round, when there is something to send.
    let mut allowed: Option<Result<(), String>> = None;
    // Deliveries are recorded together (the cursor and their log lines in
    // one write) every FLUSH_EVERY or FLUSH_LINES (or more, if the previous
    // write is still under way), and before anything else is: a node
    // stopped in between sends the unrecorded ones again, with their ids —
    // still at least once, never past an undelivered event.
    let mut lines: Vec<DeliveryRecord> = Vec::new();
    let mut recorded = cursor;
    let mut flushed = Instant::now();
    // The record being written: in the background, so that deliveries go
    // on meanwhile; one at a time, so that they are stored in order.
    let mut writing: Option<tokio::task::JoinHandle<Result<bool, String>>> = None;
    let progress = |window: &Window, probe: bool| {
        if probe {
            // Only skipped events passed: the retry state is the next one's.
            WebhookState {
                cursor: Some(window.cursor),
                ..state.clone()
            }
        } else {
            WebhookState {
                cursor: Some(window.cursor),
                ..WebhookState::default()
            }
        }
    };
    loop {
        if !stop && more && window.len() < batch {
            if began.elapsed() >= ROUND_TIME {
                more = false;
            } else {
                match shared.source.after(tenant, window.read, batch).await {
                    Ok(page) => {
                        more = page.len() >= batch;
                        for e in page {
                            let wanted = w.types.is_empty() || w.types.contains(&e.event_type);
                            window.push(e, wanted);
                        }
                    }
                    Err(e) => {
                        error = Some(e);
                        stop = true;
                    }
                }
            }
        }
        let room = if probe { 1 } else { limit };
        if !stop && flight.len() < room && !window.ready.is_empty() {
            match hold_lease(shared, lease, held).await {
                Ok(true) => {}
                Ok(false) => lost = true,
                Err(e) => error = Some(e),
            }
            stop = lost || error.is_some();
            if !stop && allowed.is_none() {
                allowed = Some(
                    shared
                        .sender
                        .policy()
                        .check(&w.url)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                );
            }
        }
        if let Some(Err(e)) = &allowed
            && !stop
        {
            // Not sent: the first event fails as its request would.
            if let Some((pos, event)) = window.start() {
                failed = Some(Attempt {
                    pos,
                    event,
                    tries: if probe { state.attempts + 1 } else { 1 },
                    out: Outcome {
                        delivered: false,
                        status: None,
                        latency: Duration::ZERO,
                        error: Some(e.clone()),
                        retry_after: None,
                    },
                });
            }
            stop = true;
        }
        while !stop && flight.len() < room {
            let Some((pos, event)) = window.start() else {
                break;
            };
            let tries = if probe { state.attempts + 1 } else { 1 };
            let sender = shared.sender.clone();
            let url = url.clone();
            let keys = keys.clone();
            flight.spawn(async move {
                let out = sender.send_checked(&url, &event.id, event.body.as_bytes(), &keys).await;
                Attempt { pos, event, tries, out }
            });
        }
        if !stop && more && flight.is_empty() && window.ready.is_empty() && window.len() < batch {
            // Only events this endpoint does not want so far (a type
            // filter during a bulk import): read on instead of waiting a
            // poll interval per page. The round's time bound still ends it.
            continue;
        }
        let Some(joined) = flight.join_next().await else {
            break;
        };
        match joined {
            Ok(a) if a.out.delivered => {
                probe = false;
                window.delivered(a.pos);
                lines.push(log_line(&a.event, "delivered", a.tries, &a.out));
            }
            Ok(a) => {
                stop = true;
                let (first, other) = match failed.take() {
                    Some(f) if f.event.seq < a.event.seq => (f, a),
                    Some(f) => (a, f),
                    None => {
                        failed = Some(a);
                        continue;
                    }
                };
                // Tried again from the first undelivered event, like this one.
                lines.push(log_line(&other.event, "retrying", other.tries, &other.out));
                failed = Some(first);
            }
            Err(e) => {
                error = Some(format!("a delivery stopped: {e}"));
                stop = true;
            }
        }
        if failed.is_none()
            && writing.as_ref().is_none_or(|h| h.is_finished())
            && (lines.len() >= FLUSH_LINES
                || (flushed.elapsed() >= FLUSH_EVERY && (!lines.is_empty() || window.cursor != recorded)))
        {
            if !written(writing.take()).await? {
                return Ok(Step::Exit);
            }
            let rec = AttemptRecord {
                state: progress(&window, probe),
                log: std::mem::take(&mut lines),
                failed: None,
            };
            let (store, id) = (store.clone(), id.to_string());
            writing = Some(tokio::spawn(async move {
                store
                    .record_webhook_attempt(tenant, &id, &rec)
                    .await
                    .map_err(|e| e.to_string())
            }));
            recorded = window.cursor;
            flushed = Instant::now();
        }
    }
    // The records after this one come after it.
    if !written(writing.take()).await? {
        return Ok(Step::Exit);
    }
    let Some(f) = failed else {
        if !lines.is_empty() || window.cursor != recorded {
            let rec = AttemptRecord {
                state: progress(&window, probe),
                log: lines,
                failed: None,
            };
            if !store
                .record_webhook_attempt(tenant, id, &rec)
                .await
                .map_err(|e| e.to_string())?
            {
                return Ok(Step::Exit);
            }
        }
        if let Some(e) = error {
            return Err(e);
        }
        return Ok(if lost {
            Step::Idle(shared.settings.poll)
        } else if began.elapsed() >= ROUND_TIME {
            Step::Again
        } else {
            Step::Idle(shared.settings.poll)
        });
    };
    // The retry state is the first undelivered event's: the failed one,
    // or one of a subject held back behind an event delivered since.
    let prior = if probe { state.attempts } else { 0 };
    let first = state
        .first_attempt
        .clone()
        .filter(|_| prior > 0)
        .unwrap_or_else(now_utc);
    let since_first = parse_time(&first)
        .map(|f| time::OffsetDateTime::now_utc() - f)
        .and_then(|d| Duration::try_from(d).ok())
        .unwrap_or(Duration::ZERO);
    let head = window.first_undelivered().is_some_and(|e| e.seq == f.event.seq);
    let failed_attempts = u32::try_from(f.tries).unwrap_or(u32::MAX);
    let next = (shared.settings.retry)(failed_attempts, since_first, f.out.retry_after, random());
    let rec = match next {
        Next::Fail if head => {
            // Set aside: the cursor passes it.
            lines.push(log_line(&f.event, "failed", f.tries, &f.out));
            AttemptRecord {
                state: WebhookState {
                    cursor: Some(f.event.seq),
                    ..WebhookState::default()
                },
                log: lines,
                failed: Some(FailedEvent {
                    seq: f.event.seq,
                    event_id: f.event.id.clone(),
                    event_type: f.event.event_type.clone(),
                    body: f.event.body.clone(),
                    failed_at: now_utc(),
                    error: f.out.error.clone(),
                    replay: false,
                }),
            }
        }
        next => {
            // (A failure past an event not tried yet gives up nothing: that
            // event is tried next, alone.)
            let delay = match next {
                Next::Retry(d) => d,
                Next::Fail => Duration::ZERO,
            };
            lines.push(log_line(&f.event, "retrying", f.tries, &f.out));
            let rec = AttemptRecord {
                state: WebhookState {
                    cursor: Some(window.cursor),
                    attempts: f.tries,
                    first_attempt: Some(first),
                    next_attempt: Some(later(delay)),
                    last_error: f.out.error.clone(),
                },
                log: lines,
                failed: None,
            };
            store
                .record_webhook_attempt(tenant, id, &rec)
                .await
                .map_err(|e| e.to_string())?;
            return Ok(Step::Idle(delay));
        }
    };
    if !store
        .record_webhook_attempt(tenant, id, &rec)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(Step::Exit);
    }
    Ok(Step::Again)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use scimitar_store::webhooks::NewWebhook;
    use serde_json::{Value, json};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    use super::*;
    use crate::policy::Policy;
    use crate::send::Timeouts;

    /// Which events of a subject-less `Window` may start, as pushes and
    /// deliveries go: (subjects of the events pushed, by position; steps:
    /// `Some(pos)` delivers that position, `None` starts what may start;
    /// what each start step starts, and the cursor at the end).
    type WindowCase = (
        &'static [Option<&'static str>],
        &'static [Option<u64>],
        &'static [&'static [u64]],
        i64,
    );

    #[test]
    fn a_window_starts_one_event_per_subject_in_order() {
        const A: Option<&str> = Some("a");
        const B: Option<&str> = Some("b");
        let cases: &[WindowCase] = &[
            // Distinct subjects all go at once; the cursor follows the
            // lowest undelivered.
            (&[A, B, Some("c")], &[None, Some(1), Some(0)], &[&[0, 1, 2]], 2),
            // One subject: one at A time, in order.
            (
                &[A, A, A],
                &[None, Some(0), None, Some(1), None],
                &[&[0], &[1], &[2]],
                2,
            ),
            // Interleaved: B's first goes with A's first; A's second waits.
            (
                &[A, B, A, B],
                &[None, Some(1), None, Some(0), None],
                &[&[0, 1], &[3], &[2]],
                2,
            ),
            // No subject is one ordering key.
            (&[None, None, A], &[None, Some(2), None], &[&[0, 2], &[]], 0),
        ];
        for (subjects, steps, starts, cursor) in cases {
            let mut w = Window::new(0);
            for (i, s) in subjects.iter().enumerate() {
                w.push(
                    WebhookEvent {
                        id: format!("e{i}"),
                        seq: i64::try_from(i).unwrap() + 1,
                        event_type: "t".into(),
                        subject: s.map(str::to_string),
                        body: String::new(),
                    },
                    true,
                );
            }
            let mut started = Vec::new();
            for step in *steps {
                match step {
                    Some(pos) => w.delivered(*pos),
                    None => {
                        let mut now = Vec::new();
                        while let Some((pos, _)) = w.start() {
                            now.push(pos);
                        }
                        started.push(now);
                    }
                }
            }
            let want: Vec<Vec<u64>> = starts.iter().map(|s| s.to_vec()).collect();
            assert_eq!(started, want, "{subjects:?} {steps:?}");
            assert_eq!(w.cursor, *cursor, "{subjects:?} {steps:?}");
        }
    }

    /// A receiver that answers each delivery after a random delay (up to
    /// `max_delay_ms`), 500 to the first attempt of the sequence numbers in
    /// `fail`, and notes what overlapped.
    struct Rx {
        addr: std::net::SocketAddr,
        state: Arc<Mutex<RxState>>,
    }

    #[derive(Default)]
    struct RxState {
        fail: HashSet<i64>,
        failed: HashSet<i64>,
        in_flight: HashSet<String>,
        most_in_flight: usize,
        /// Two requests of one subject in flight at once.
        overlaps: Vec<String>,
        /// (seq, subject, id) of each request answered 2xx, in the order answered.
        delivered: Vec<(i64, String, String)>,
        requests: usize,
        max_delay_ms: u64,
    }

    impl Rx {
        async fn start(max_delay_ms: u64, fail: &[i64]) -> Rx {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let state = Arc::new(Mutex::new(RxState {
                fail: fail.iter().copied().collect(),
                max_delay_ms,
                ..RxState::default()
            }));
            let st = state.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((conn, _)) = listener.accept().await else { return };
                    tokio::spawn(serve(conn, st.clone()));
                }
            });
            Rx { addr, state }
        }

        fn url(&self) -> String {
            format!("http://{}/hook", self.addr)
        }

        fn delivered(&self) -> Vec<(i64, String, String)> {
            self.state.lock().unwrap().delivered.clone()
        }

        async fn wait_for(&self, ids: &HashSet<String>) {
            for _ in 0..1000 {
                let got: HashSet<String> = self.delivered().into_iter().map(|d| d.2).collect();
                if ids.is_subset(&got) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("not everything was delivered");
        }
    }

    async fn serve(conn: tokio::net::TcpStream, st: Arc<Mutex<RxState>>) {
        let mut conn = BufReader::new(conn);
        loop {
            let mut length = 0usize;
            let mut line = String::new();
            loop {
                line.clear();
                if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0u8; length];
            conn.read_exact(&mut body).await.unwrap();
            let event: Value = serde_json::from_slice(&body).unwrap();
            let id = event["id"].as_str().unwrap().to_string();
            let seq = event["seq"].as_i64().unwrap();
            let subject = event["data"]["subject"].as_str().unwrap_or("").to_string();
            let delay = {
                let mut s = st.lock().unwrap();
                s.requests += 1;
                if !s.in_flight.insert(subject.clone()) {
                    s.overlaps.push(subject.clone());
                }
                s.most_in_flight = s.most_in_flight.max(s.in_flight.len());
                Duration::from_millis((random() * s.max_delay_ms as f64) as u64)
            };
            tokio::time::sleep(delay).await;
            let status = {
                let mut s = st.lock().unwrap();
                s.in_flight.remove(&subject);
                if s.fail.contains(&seq) && s.failed.insert(seq) {
                    500
                } else {
                    s.delivered.push((seq, subject, id));
                    200
                }
            };
            let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
            if conn.get_mut().write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    static DIRS: AtomicUsize = AtomicUsize::new(0);

    fn retry_soon(_failed: u32, _since: Duration, _ra: Option<Duration>, _r: f64) -> Next {
        Next::Retry(Duration::from_millis(300))
    }

    struct Endpoint {
        store: Arc<dyn Store>,
        events: Arc<MemoryEvents>,
        tenant: TenantId,
        _dispatcher: Dispatcher,
    }

    async fn endpoint(rx: &Rx, types: &[&str], in_flight: usize, batch: usize) -> Endpoint {
        endpoint_polling(rx, types, in_flight, batch, Duration::from_millis(50)).await
    }

    async fn endpoint_polling(rx: &Rx, types: &[&str], in_flight: usize, batch: usize, poll: Duration) -> Endpoint {
        let n = DIRS.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("scimitar-worker-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store: Arc<dyn Store> = Arc::new(scimitar_store_sqlite::SqliteStore::open(&dir.join("t.db")).unwrap());
        let tenant = store.create_tenant("acme").await.unwrap().id;
        let secret = crate::sign::new_secret().unwrap();
        store
            .create_webhook(
                tenant,
                &NewWebhook {
                    id: "wh_1".into(),
                    url: rx.url(),
                    types: types.iter().map(|t| t.to_string()).collect(),
                    secret_sealed: scimitar_auth::seal::seal(&secret).unwrap(),
                },
            )
            .await
            .unwrap();
        let events = Arc::new(MemoryEvents::default());
        let sender = Sender::new(
            Arc::new(Policy {
                allow: vec!["127.0.0.0/8".parse().unwrap()],
            }),
            Timeouts::default(),
        )
        .unwrap();
        let dispatcher = Dispatcher::start(
            store.clone(),
            events.clone(),
            sender,
            Settings {
                holder: "node-a".into(),
                lease: Duration::from_secs(6),
                poll,
                batch,
                in_flight,
                retry: retry_soon,
            },
        );
        for _ in 0..200 {
            if store
                .webhook(tenant, "wh_1")
                .await
                .unwrap()
                .unwrap()
                .state
                .cursor
                .is_some()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Endpoint {
            store,
            events,
            tenant,
            _dispatcher: dispatcher,
        }
    }

    impl Endpoint {
        /// Pushes `n` events, the i-th about subject `i % subjects` (none
        /// for the subject `0` when `with_none`), of the types in turn.
        fn push(&self, n: usize, subjects: usize, with_none: bool, types: &[&str]) -> Vec<WebhookEvent> {
            (0..n)
                .map(|i| {
                    let k = i % subjects;
                    let subject = (!(with_none && k == 0)).then(|| format!("s{k}"));
                    let kind = types[i % types.len()];
                    self.events.push_about(
                        self.tenant,
                        kind,
                        subject.as_deref(),
                        json!({"subject": subject, "i": i}),
                    )
                })
                .collect()
        }

        async fn state(&self) -> WebhookState {
            self.store.webhook(self.tenant, "wh_1").await.unwrap().unwrap().state
        }

        async fn cursor_reaches(&self, seq: i64) {
            for _ in 0..500 {
                if self.state().await.cursor == Some(seq) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("the cursor stopped at {:?}, not {seq}", self.state().await.cursor);
        }
    }

    /// Each subject's first deliveries, in the order answered, are in
    /// sequence order.
    fn assert_in_order_per_subject(delivered: &[(i64, String, String)]) {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut last: HashMap<&str, i64> = HashMap::new();
        for (seq, subject, id) in delivered {
            if !seen.insert(id) {
                continue;
            }
            let before = last.insert(subject, *seq).unwrap_or(0);
            assert!(before < *seq, "{subject}: {seq} after {before}");
        }
    }

    /// An endpoint added in this process is listed at once, not after
    /// the poll (10 s here) or the next change's wake-up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_endpoint_added_here_is_listed_at_once() {
        let rx = Rx::start(0, &[]).await;
        let ep = endpoint_polling(&rx, &[], 32, 500, Duration::from_secs(10)).await;
        let listed = |n| {
            let d = &ep._dispatcher;
            async move {
                for _ in 0..100 {
                    if d.endpoint_listings() >= n {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                false
            }
        };
        assert!(listed(1).await);
        let before = ep._dispatcher.endpoint_listings();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            ep._dispatcher.endpoint_listings(),
            before,
            "nothing happened: no listing"
        );
        ep.events.endpoint_added();
        assert!(
            listed(before + 1).await,
            "listed within a second of the endpoint's addition"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_load_does_not_make_a_listing_of_endpoints_per_change() {
        let rx = Rx::start(0, &[]).await;
        let ep = endpoint_polling(&rx, &[], 32, 500, Duration::from_secs(1)).await;
        let before = ep._dispatcher.endpoint_listings();
        // About 1,000 changes over a second, each waking the workers.
        let started = Instant::now();
        for _ in 0..100 {
            ep.push(10, 10, false, &["user.updated"]);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        let listings = ep._dispatcher.endpoint_listings() - before;
        // One per 250 ms at most (and one more for the wake in flight).
        let most = (seconds / 0.25).ceil() as u64 + 2;
        assert!(
            listings <= most,
            "{listings} listings in {seconds:.2} s (at most {most})"
        );
        ep.cursor_reaches(1000).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn order_per_subject_is_kept_with_requests_in_flight() {
        // (events, subjects, with events of no subject, in flight, page, slowest answer in ms)
        let cases = [
            (60, 1, false, 8, 10, 3),
            (200, 7, true, 16, 25, 4),
            (300, 300, false, 32, 50, 3),
            (300, 40, true, 32, 500, 5),
            // One in flight: everything in sequence order.
            (100, 10, true, 1, 20, 2),
        ];
        for (n, subjects, with_none, in_flight, batch, delay) in cases {
            let rx = Rx::start(delay, &[]).await;
            let e = endpoint(&rx, &[], in_flight, batch).await;
            let sent = e.push(n, subjects, with_none, &["user.updated"]);
            rx.wait_for(&sent.iter().map(|e| e.id.clone()).collect()).await;
            e.cursor_reaches(sent.last().unwrap().seq).await;
            let st = rx.state.lock().unwrap();
            let case = (n, subjects, in_flight);
            assert!(st.overlaps.is_empty(), "{case:?}: {:?}", st.overlaps);
            assert_eq!(st.requests, n, "{case:?}: each once");
            assert_in_order_per_subject(&st.delivered);
            assert!(st.most_in_flight <= in_flight.min(subjects), "{case:?}");
            if subjects > 1 && in_flight > 1 {
                assert!(st.most_in_flight > 1, "{case:?}: requests were in flight together");
            }
            if in_flight == 1 {
                let seqs: Vec<i64> = st.delivered.iter().map(|d| d.0).collect();
                assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{case:?}: {seqs:?}");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failure_stops_the_cursor_at_the_first_undelivered_event() {
        // (events, subjects, in flight, the events failing their first attempt)
        let cases: [(usize, usize, usize, &[usize]); 4] = [
            (80, 10, 16, &[37]),
            (80, 3, 16, &[0]),
            (120, 120, 32, &[50, 51, 90]),
            (60, 6, 4, &[59]),
        ];
        for (n, subjects, in_flight, failing) in cases {
            // The feed starts empty: the i-th event is numbered i + 1.
            let fail: Vec<i64> = failing.iter().map(|&i| i64::try_from(i).unwrap() + 1).collect();
            let rx = Rx::start(4, &fail).await;
            let e = endpoint(&rx, &[], in_flight, 50).await;
            let sent = e.push(n, subjects, false, &["user.updated"]);
            let failed_seq = sent[failing[0]].seq;
            assert_eq!(failed_seq, fail[0]);
            // The failure is recorded: attempts 1, retried in 300 ms.
            let mut state = e.state().await;
            for _ in 0..300 {
                if state.attempts > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                state = e.state().await;
            }
            let case = (n, subjects, failing);
            assert_eq!(state.attempts, 1, "{case:?}: {state:?}");
            assert!(state.last_error.as_deref().unwrap().contains("500"), "{case:?}");
            let cursor = state.cursor.unwrap();
            assert!(cursor < failed_seq, "{case:?}: cursor {cursor}, failed {failed_seq}");
            let delivered: HashSet<i64> = rx.delivered().into_iter().map(|d| d.0).collect();
            assert!(
                sent.iter()
                    .filter(|s| s.seq <= cursor)
                    .all(|s| delivered.contains(&s.seq)),
                "{case:?}: the cursor passed an undelivered event"
            );
            assert!(!delivered.contains(&(cursor + 1)), "{case:?}: the cursor stopped short");
            // Everything comes, each subject's first deliveries in order.
            rx.wait_for(&sent.iter().map(|e| e.id.clone()).collect()).await;
            e.cursor_reaches(sent.last().unwrap().seq).await;
            {
                let st = rx.state.lock().unwrap();
                assert!(st.overlaps.is_empty(), "{case:?}");
                assert_in_order_per_subject(&st.delivered);
            }
            let log = e.store.webhook_log(e.tenant, "wh_1", 1000).await.unwrap();
            assert!(
                log.iter().any(|l| l.status == "retrying" && l.seq == failed_seq),
                "{case:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_type_filter_skips_events_with_requests_in_flight() {
        let rx = Rx::start(3, &[]).await;
        let e = endpoint(&rx, &["user.created", "user.deleted"], 16, 20).await;
        // Ends with skipped events: the cursor passes them too.
        let sent = e.push(
            150,
            12,
            false,
            &["user.created", "group.updated", "user.deleted", "user.updated"],
        );
        let wanted: Vec<&WebhookEvent> = sent
            .iter()
            .filter(|s| s.event_type == "user.created" || s.event_type == "user.deleted")
            .collect();
        rx.wait_for(&wanted.iter().map(|e| e.id.clone()).collect()).await;
        e.cursor_reaches(sent.last().unwrap().seq).await;
        let st = rx.state.lock().unwrap();
        assert_eq!(st.requests, wanted.len(), "only the types asked for, each once");
        assert!(st.overlaps.is_empty());
        assert!(st.most_in_flight > 1);
        assert_in_order_per_subject(&st.delivered);
    }

    /// A long run of events the filter skips (a bulk import, an endpoint
    /// that wants group events only) is read through page after page in
    /// one round, not one page per poll interval: the wanted event behind
    /// it arrives at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn skipped_pages_are_read_through_without_waiting_a_poll_each() {
        let rx = Rx::start(1, &[]).await;
        // A poll far longer than the test: only reading on can deliver.
        let e = endpoint_polling(&rx, &["group.created"], 8, 20, Duration::from_secs(60)).await;
        let mut sent = e.push(1000, 50, false, &["user.updated"]);
        sent.extend(e.push(1, 1, false, &["group.created"]));
        let last = sent.last().unwrap();
        let started = std::time::Instant::now();
        rx.wait_for(&HashSet::from([last.id.clone()])).await;
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
        e.cursor_reaches(last.seq).await;
        assert_eq!(rx.state.lock().unwrap().requests, 1);
    }
}
