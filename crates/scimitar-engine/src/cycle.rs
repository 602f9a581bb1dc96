//! One provisioning cycle: read the source (everything, or what changed
//! since the watermark), decide each changed object's scope, compute its
//! target image, match it, create / update / disable / delete it, resolve
//! managers and memberships, log every object, and store the watermark
//! last — so that a cycle that does not finish is replayed, which is safe
//! because every export is a diff against the target and member additions
//! are idempotent.
//!
//! Users go first, in waves so that a manager is created before the users
//! who report to it (its target id then goes into their create body); then
//! groups; then the references that could not be resolved in place.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;
use scimitar_store::{EngineLogRecord, Escrow, ObjectState, Store, StoreError, TenantId};
use serde::Serialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::client::{Answer, Client, TargetError, resources};
use crate::dialect::{self, Request};
use crate::diff;
use crate::job::{JobSpec, ScopeMode};
use crate::log::{Action, ErrorInfo, Status, Step, StepType};
use crate::mapping::{self, Image, ImageValue, Mode, ObjectSource, TargetPath};
use crate::model::{Delta, Kind, SourceObject};
use crate::scoping;
use crate::source::{Source, SourceError};

/// Objects saved per store transaction.
const SAVE_CHUNK: usize = 1000;

/// How a cycle runs.
#[derive(Clone)]
pub struct CycleOptions {
    /// Compute and log what would be sent; send no write, store no state.
    pub dry_run: bool,
    /// What `Now()` returns in expressions, and the log's times.
    pub now: OffsetDateTime,
    /// Called as objects are processed: `(done, total)`.
    pub progress: Option<Arc<dyn Fn(usize, usize) + Send + Sync>>,
    /// Send disables and deletes beyond the job's `deletion_threshold`
    /// (an administrator's Allow deletes; also set by `allow_deletes` in
    /// the job's last cycle, which the next cycle consumes).
    pub allow_deletes: bool,
    /// Provision on demand: only this user or group (by anchor or source
    /// reference; a group with its members, at most 5 as in Entra), now,
    /// outside the cycle: the connection is tested, the source read whole,
    /// nothing is deleted, and the watermark and last cycle stay.
    pub on_demand: Option<(Kind, String)>,
    /// A job sent through the admin API or the console: where its source
    /// may connect (the target's client carries the same policy).
    pub egress: Option<Arc<crate::egress::Policy>>,
}

/// Entra provisions a group on demand with at most this many members.
pub const ON_DEMAND_MEMBERS: usize = 5;

impl Default for CycleOptions {
    fn default() -> Self {
        CycleOptions {
            dry_run: false,
            now: OffsetDateTime::now_utc(),
            progress: None,
            allow_deletes: false,
            on_demand: None,
            egress: None,
        }
    }
}

/// What a cycle did (the CLI's `--json` line).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub job: String,
    pub cycle_id: String,
    /// `initial` or `incremental`.
    pub kind: String,
    pub created: u64,
    pub updated: u64,
    pub disabled: u64,
    pub deleted: u64,
    pub skipped: u64,
    pub failed: u64,
    pub requests: u64,
    pub duration_ms: u64,
    /// Of `duration_ms`, the time spent reading the source.
    pub read_ms: u64,
    /// Escrowed objects not tried in this cycle (their back-off is not over).
    pub deferred: u64,
    pub dry_run: bool,
    /// When the cycle started and ended (RFC 3339, UTC): the next cycle is
    /// due an interval after `finished`.
    pub started: String,
    pub finished: String,
}

/// Why a cycle could not run; nothing of it was committed.
#[derive(Debug, thiserror::Error)]
pub enum CycleError {
    #[error("the target refused the connection test: {message}")]
    Connection { failure: Failure, message: String },
    #[error("reading the source failed: {0}")]
    Source(#[from] SourceError),
    #[error("the engine's state store failed: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Job(String),
    #[error(
        "the cycle would disable or delete {count} objects, more than the job's deletion threshold of {threshold}: nothing was sent, the job is quarantined and the actions are logged as stagedDelete. If they are intended, allow them (`scimitar sync allow-deletes --job NAME`); if not, fix the source or the scope and restart the job"
    )]
    DeletionThreshold { count: u64, threshold: u64 },
}

/// How a target failed as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// It refused the Secret Token (401, 403).
    Credentials,
    /// It answered, but not as SCIM requires (404 on `/Users`, not a
    /// ListResponse).
    NonCompliant,
    /// No connection could be made.
    Unreachable,
}

/// Test Connection, as Entra does it: the matching attribute of users equal
/// to a random GUID must answer 200 with no resources. Says what is wrong.
pub async fn test_connection(job: &JobSpec, client: &Client) -> Result<(), String> {
    probe(job, client).await.map_err(|(_, message)| message)
}

/// Test Connection, saying how it failed.
pub async fn probe(job: &JobSpec, client: &Client) -> Result<(), (Failure, String)> {
    let attr = job
        .users
        .matching()
        .first()
        .map(|m| m.target.key())
        .unwrap_or_else(|| "userName".into());
    let guid = uuid::Uuid::new_v4().to_string();
    let req = dialect::probe(Kind::User, &attr, &guid);
    match client.send(&req, false).await {
        Ok(a) => {
            let total = a.body.get("totalResults").and_then(Value::as_u64);
            if a.status == 200 && total == Some(0) && resources(&a.body).is_empty() {
                Ok(())
            } else {
                Err((
                    Failure::NonCompliant,
                    format!(
                        "GET {}{} answered {} but not an empty SCIM ListResponse; is the Tenant URL the SCIM base URL?",
                        job.target.url, req.path, a.status
                    ),
                ))
            }
        }
        Err(e) => Err(match e.status {
            Some(401) | Some(403) => (
                Failure::Credentials,
                format!(
                    "the target refused the Secret Token ({}): generate a new token in the application",
                    e.status.unwrap_or_default()
                ),
            ),
            Some(404) => (
                Failure::NonCompliant,
                format!(
                    "{}{} answered 404: the Tenant URL is not a SCIM base URL (it should end in e.g. /scim/v2)",
                    job.target.url, "/Users"
                ),
            ),
            // Another answer below 500 (an error status, a 200 that is not
            // JSON) is not SCIM; a 5xx or no connection is an outage, which
            // the next cycle tries again.
            _ => (
                if !e.unreachable && e.status.is_some_and(|s| s < 500) {
                    Failure::NonCompliant
                } else {
                    Failure::Unreachable
                },
                e.info.details,
            ),
        }),
    }
}

/// The state of an object during the cycle.
#[derive(Debug, Clone)]
struct Item {
    kind: Kind,
    anchor: String,
    /// The source image (from this read, or the stored one).
    object: Option<SourceObject>,
    /// The stored state, if the job knew it.
    old: Option<ObjectState>,
    /// The source says it is gone.
    deleted: bool,
    /// Why it is processed, for the import step.
    change: &'static str,
}

/// What processing an object produced.
struct Outcome {
    state: Option<ObjectState>,
    removed: Option<(Kind, String)>,
    record: Option<Record>,
    /// A manager reference to resolve once every user is processed.
    manager_later: Option<String>,
}

/// A log record being built.
struct Record {
    kind: Kind,
    anchor: String,
    name: String,
    target_id: Option<String>,
    action: Action,
    status: Status,
    error: Option<ErrorInfo>,
    steps: Vec<Step>,
    modified: Vec<Value>,
    started: Instant,
    change_id: String,
}

impl Record {
    fn new(kind: Kind, anchor: &str, name: &str) -> Self {
        Record {
            kind,
            anchor: anchor.to_string(),
            name: name.to_string(),
            target_id: None,
            action: Action::Other,
            status: Status::Success,
            error: None,
            steps: Vec::new(),
            modified: Vec::new(),
            started: Instant::now(),
            change_id: uuid::Uuid::new_v4().to_string(),
        }
    }

    fn step(&mut self, s: Step) {
        self.steps.push(s);
    }

    fn fail(&mut self, action: Action, step: StepType, name: &str, e: ErrorInfo) {
        self.action = action;
        self.status = Status::Failure;
        self.step(Step::new(step, name, Status::Failure, e.details.clone()).detail("errorCode", e.code));
        self.error = Some(e);
    }

    fn skip(&mut self, step: StepType, name: &str, why: &str) {
        self.status = Status::Skipped;
        self.step(Step::new(step, name, Status::Skipped, why));
    }
}

struct Cx<'a> {
    job: &'a JobSpec,
    client: &'a Client,
    opts: &'a CycleOptions,
    cycle_id: String,
    /// Source reference → target id of every object linked so far
    /// (stored links, and those made in this cycle).
    links: Mutex<HashMap<String, String>>,
    /// Source references of assigned users (direct, and direct members of
    /// assigned groups), for `scope.mode = assigned`.
    assigned: HashSet<String>,
    assigned_groups: HashSet<String>,
    summary: Mutex<Summary>,
    done: std::sync::atomic::AtomicUsize,
    total: usize,
    /// Writes that a dry run did not send.
    unsent: std::sync::atomic::AtomicU64,
    /// Why the cycle stops: the target refused the token (401, 403) or
    /// cannot be reached. Nothing more is sent and nothing is committed.
    stop: Mutex<Option<TargetError>>,
    /// Source references of users in scope that have no target object yet
    /// (their create failed): a group listing one stays pending until the
    /// user exists. A member that is not to be provisioned (out of scope,
    /// filtered out) is not waited for.
    waiting: Mutex<HashSet<String>>,
}

impl Cx<'_> {
    fn tick(&self) {
        let done = self.done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Some(p) = &self.opts.progress {
            p(done, self.total);
        }
    }

    fn count(&self, f: impl FnOnce(&mut Summary)) {
        if let Ok(mut s) = self.summary.lock() {
            f(&mut s);
        }
    }

    fn link(&self, source_ref: &str) -> Option<String> {
        self.links.lock().ok()?.get(source_ref).cloned()
    }

    fn set_link(&self, source_ref: &str, target: Option<&str>) {
        if let Ok(mut l) = self.links.lock() {
            match target {
                Some(t) => {
                    l.insert(source_ref.to_string(), t.to_string());
                }
                None => {
                    l.remove(source_ref);
                }
            }
        }
    }

    /// Sends a read (never skipped, even in a dry run).
    async fn read(&self, req: &Request, on_resource: bool) -> Result<Answer, TargetError> {
        match self.send(req, on_resource).await? {
            Some(a) => Ok(a),
            None => Ok(Answer {
                status: 200,
                body: Value::Null,
            }),
        }
    }

    /// Sends a request, or (dry run) only counts a write.
    async fn send(&self, req: &Request, on_resource: bool) -> Result<Option<Answer>, TargetError> {
        if self.opts.dry_run && req.is_write() {
            self.unsent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(None);
        }
        if let Some(e) = self.stop.lock().ok().and_then(|s| s.clone()) {
            return Err(e);
        }
        let answer = self.client.send(req, on_resource).await;
        if let Err(e) = &answer
            && (e.unreachable || matches!(e.status, Some(401 | 403)))
            && let Ok(mut stop) = self.stop.lock()
        {
            stop.get_or_insert_with(|| e.clone());
        }
        answer.map(Some)
    }

    fn in_scope(&self, o: &SourceObject) -> bool {
        let spec = self.job.object(o.kind);
        let assigned = match (self.job.scope.mode, o.kind) {
            (ScopeMode::All, _) => true,
            (ScopeMode::Assigned, Kind::User) => self.assigned.contains(&o.source_ref),
            (ScopeMode::Assigned, Kind::Group) => self.assigned_groups.contains(&o.source_ref),
        };
        assigned && scoping::in_scope(&spec.scoping, &o.attrs)
    }

    fn image(&self, o: &SourceObject, soft_deleted: bool, mode: Mode) -> Result<Image, ErrorInfo> {
        let spec = self.job.object(o.kind);
        let source = ObjectSource {
            attrs: &o.attrs,
            soft_deleted,
        };
        let mut rng = || {
            let mut b = [0u8; 8];
            let _ = getrandom::fill(&mut b);
            u64::from_le_bytes(b)
        };
        let mut env = scimitar_expression::Env {
            now: self.opts.now,
            rng: &mut rng,
            default_domain: self.job.settings.default_domain.as_deref(),
        };
        let mut img = mapping::image(&spec.mappings, &source, mode, &mut env)
            .map_err(|e| ErrorInfo::new("ExpressionError", e.to_string()))?;
        // References come from the connector (`manager`, `members`), not
        // from the attribute text: a DN names the referenced entry.
        for e in img.entries.iter_mut() {
            if e.target.is_manager() {
                match &o.manager {
                    Some(m) => e.value = ImageValue::Reference(m.clone()),
                    None => e.value = ImageValue::Value(Value::Null),
                }
            }
        }
        if let (Some(m), Some(manager)) = (spec.mappings.iter().find(|m| m.target.is_manager()), &o.manager)
            && !img.entries.iter().any(|e| e.target.is_manager())
        {
            img.entries.push(mapping::ImageEntry {
                target: m.target.clone(),
                value: ImageValue::Reference(manager.clone()),
                redacted: false,
            });
        }
        img.entries
            .retain(|e| !e.target.is_members() && !matches!(e.value, ImageValue::Value(Value::Null)));
        Ok(img)
    }

    /// The image's values with references resolved where possible; the
    /// manager's source reference when it is not (yet) linked.
    fn resolved(&self, img: &Image) -> (Vec<(TargetPath, Value)>, Option<String>) {
        let mut out = Vec::with_capacity(img.entries.len());
        let mut pending = None;
        for e in &img.entries {
            match &e.value {
                ImageValue::Value(v) => out.push((e.target.clone(), v.clone())),
                ImageValue::Reference(r) => match self.link(r) {
                    Some(id) => out.push((e.target.clone(), Value::String(id))),
                    None => pending = Some(r.clone()),
                },
                ImageValue::Candidates(_) => {}
            }
        }
        (out, pending)
    }
}

fn source_of(state: &ObjectState) -> Option<SourceObject> {
    serde_json::from_value(state.source.clone()).ok()
}

fn new_state(
    o: &SourceObject,
    in_scope: bool,
    target_id: Option<String>,
    exported: Value,
    pending: bool,
) -> ObjectState {
    ObjectState {
        kind: o.kind,
        anchor: o.anchor.clone(),
        source_ref: Some(o.source_ref.clone()),
        source_hash: o.content_hash(),
        source: serde_json::to_value(o).unwrap_or(Value::Null),
        in_scope,
        target_id,
        exported,
        pending,
        updated: scimitar_store::now_utc(),
        // Set by `Commit::save` for pending objects.
        escrow: None,
    }
}

fn modified(values: &[(TargetPath, Value)], image: &Image, old: Option<&Value>) -> Vec<Value> {
    values
        .iter()
        .map(|(p, v)| {
            let key = p.key();
            let redacted = image.get(&key).is_some_and(|e| e.redacted) || key.eq_ignore_ascii_case("password");
            let show = |x: &Value| if redacted { json!("[Redact]") } else { x.clone() };
            json!({"displayName": key, "oldValue": old.map(show), "newValue": show(v)})
        })
        .collect()
}

/// Runs one cycle of `job`.
pub async fn run_cycle(
    store: &dyn Store,
    tenant: TenantId,
    job: &JobSpec,
    source: &mut dyn Source,
    client: &Client,
    opts: CycleOptions,
) -> Result<Summary, CycleError> {
    let started = Instant::now();
    let started_at = scimitar_store::now_utc();
    let record = store
        .job(tenant, &job.name)
        .await?
        .ok_or_else(|| CycleError::Job(format!("no job named '{}' is stored", job.name)))?;
    let on_demand = opts.on_demand.clone();
    // On demand, the object is evaluated whatever changed (as in an
    // initial cycle) and the connection is tested first.
    let initial = record.watermark.is_none() || on_demand.is_some();
    // Entra's probe before the first cycle: a wrong URL or token is said
    // plainly before anything is read. Later cycles send nothing unless
    // something changed; a refused token there stops the cycle (`stop`).
    if initial {
        probe(job, client)
            .await
            .map_err(|(failure, message)| CycleError::Connection { failure, message })?;
    }
    let read_started = Instant::now();
    let mut delta = match &on_demand {
        Some(_) => source.read(None).await?,
        None => source.read(record.watermark.as_ref()).await?,
    };
    let read_ms = u64::try_from(read_started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let wanted = match &on_demand {
        Some((kind, name)) => Some(pick_on_demand(job, &mut delta, *kind, name)?),
        None => None,
    };
    let cycle_id = uuid::Uuid::new_v4().to_string();
    let mut plan = Plan::load(store, tenant, job, &delta, initial).await?;
    let now = scimitar_store::now_utc();
    let mut items = plan.items(job, std::mem::take(&mut delta.objects), initial, &now);
    if let Some(w) = &wanted {
        // Not the pending objects or reassigned users a cycle would add.
        items.retain(|i| w.contains(&(i.kind, i.anchor.clone())));
    }
    let total =
        items.iter().filter(|i| i.kind == Kind::User).count() + items.iter().filter(|i| i.kind == Kind::Group).count();
    let cx = Cx {
        job,
        client,
        opts: &opts,
        cycle_id: cycle_id.clone(),
        links: Mutex::new(plan.links.clone()),
        assigned: plan.assigned_users.clone(),
        assigned_groups: job.scope.groups.iter().map(|g| plan.normalise(g)).collect(),
        summary: Mutex::new(Summary {
            job: job.name.clone(),
            cycle_id: cycle_id.clone(),
            kind: if on_demand.is_some() {
                "onDemand"
            } else if initial {
                "initial"
            } else {
                "incremental"
            }
            .into(),
            dry_run: opts.dry_run,
            deferred: u64::try_from(plan.deferred).unwrap_or(u64::MAX),
            ..Summary::default()
        }),
        done: std::sync::atomic::AtomicUsize::new(0),
        total,
        unsent: std::sync::atomic::AtomicU64::new(0),
        stop: Mutex::new(None),
        waiting: Mutex::new(
            plan.known
                .values()
                .filter(|s| s.kind == Kind::User && s.in_scope && s.target_id.is_none() && s.pending)
                .filter_map(|s| s.source_ref.clone())
                .collect(),
        ),
    };
    // Accidental-deletion prevention, as Entra's: a cycle that would
    // disable or delete more objects than the threshold sends nothing (its
    // creates and updates come from the same suspicious read), logs those
    // actions as stagedDelete, quarantines the job and commits no
    // watermark, so that the same changes are read again once an
    // administrator allows the deletes or fixes the cause.
    let allowed = opts.allow_deletes
        || record
            .last_cycle
            .as_ref()
            .and_then(|l| l.get("allow_deletes"))
            .and_then(Value::as_bool)
            == Some(true);
    let threshold = job.settings.deletion_threshold;
    if threshold > 0 && !allowed && on_demand.is_none() {
        let staged: Vec<&Item> = items.iter().filter(|it| removes(&cx, it)).collect();
        let count = staged.len() as u64;
        if count > threshold {
            let logs = staged
                .iter()
                .map(|it| log_record(&cx, &staged_record(it, threshold)))
                .collect();
            if !opts.dry_run {
                store
                    .save_objects(tenant, &job.name, Vec::new(), Vec::new(), logs)
                    .await?;
                let err = CycleError::DeletionThreshold { count, threshold };
                let error = err.to_string();
                let failed = crate::quarantine::Failed {
                    kind: if initial { "initial" } else { "incremental" },
                    reason: crate::quarantine::Reason::TooManyDeletes,
                    error: &error,
                    extra: serde_json::json!({"staged": count, "threshold": threshold, "cycle_id": cycle_id}),
                    now: OffsetDateTime::now_utc(),
                };
                crate::quarantine::enter(store, tenant, &job.name, failed).await?;
                return Err(err);
            }
            return Err(CycleError::DeletionThreshold { count, threshold });
        }
    }
    let escrowed: HashMap<(Kind, String), Escrow> = items
        .iter()
        .filter_map(|i| {
            let e = i.old.as_ref()?.escrow.clone()?;
            Some(((i.kind, i.anchor.clone()), e))
        })
        .collect();
    let (users, groups): (Vec<Item>, Vec<Item>) = items.into_iter().partition(|i| i.kind == Kind::User);

    // Objects are saved (with their log records) a chunk at a time as they
    // are exported, so memory follows the chunk, not the directory; each
    // saved state matches what the target holds. The watermark is committed
    // last: a cycle that stops re-reads its changes, and skips the objects
    // already saved.
    let commit = Commit {
        cx: &cx,
        store,
        tenant,
        escrowed,
    };
    // Users, in waves: managers before the users who report to them.
    let mut later: Vec<Outcome> = Vec::new();
    for wave in waves(users) {
        let mut wave = wave.into_iter().peekable();
        while wave.peek().is_some() {
            let chunk: Vec<Item> = wave.by_ref().take(SAVE_CHUNK).collect();
            let results: Vec<Outcome> = futures_util::stream::iter(chunk.into_iter().map(|it| process_user(&cx, it)))
                .buffer_unordered(job.settings.concurrency)
                .collect()
                .await;
            // Managers not linked yet are resolved after every user.
            let (wait, done): (Vec<Outcome>, Vec<Outcome>) =
                results.into_iter().partition(|o| o.manager_later.is_some());
            later.extend(wait);
            commit.save(done).await?;
        }
    }
    for o in later.iter_mut() {
        if let Some(manager) = o.manager_later.take() {
            resolve_manager(&cx, o, &manager).await;
        }
    }
    commit.save(later).await?;
    // Groups, then their members.
    if job.groups.enabled {
        let mut groups = groups.into_iter().peekable();
        while groups.peek().is_some() {
            let chunk: Vec<Item> = groups.by_ref().take(SAVE_CHUNK).collect();
            let results: Vec<Outcome> = futures_util::stream::iter(chunk.into_iter().map(|it| process_group(&cx, it)))
                .buffer_unordered(job.settings.concurrency)
                .collect()
                .await;
            commit.save(results).await?;
        }
    }
    let mut summary = cx.summary.lock().map(|s| s.clone()).unwrap_or_default();
    summary.requests = client.requests();
    summary.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    summary.read_ms = read_ms;
    summary.started = started_at;
    summary.finished = scimitar_store::now_utc();
    if opts.dry_run || on_demand.is_some() {
        return Ok(summary);
    }
    let summary_json = serde_json::to_value(&summary).unwrap_or(Value::Null);
    store
        .finish_cycle(tenant, &job.name, Some(&delta.watermark), &summary_json)
        .await?;
    // Any successful cycle ends a quarantine: the job returns to the status
    // it had (its retries were this cycle).
    if record.status == "quarantined" {
        let previous = crate::quarantine::State::of(&record).map_or_else(|| "on".to_string(), |q| q.previous_status);
        store.set_job_status(tenant, &job.name, &previous).await?;
    }
    // The escrow thresholds: a cycle that ran, but in which (or after which)
    // too much fails, quarantines the job.
    if summary.failed > 0 {
        let (failures, references) = store.escrow_counts(tenant, &job.name).await?;
        let objects =
            summary.created + summary.updated + summary.disabled + summary.deleted + summary.skipped + summary.failed;
        if escrow_threshold_exceeded(failures, references, summary.failed, objects) {
            let error = format!(
                "{} of the cycle's {objects} objects failed; {failures} failed objects and {references} unresolved references are escrowed",
                summary.failed
            );
            let failed = crate::quarantine::Failed {
                kind: &summary.kind,
                reason: crate::quarantine::Reason::EscrowThreshold,
                error: &error,
                extra: json!({"failures": failures, "references": references, "cycle_id": summary.cycle_id}),
                now: OffsetDateTime::now_utc(),
            };
            crate::quarantine::enter(store, tenant, &job.name, failed).await?;
        }
    }
    Ok(summary)
}

/// Narrows a whole read to the object asked for on demand (and a group's
/// members, at most `ON_DEMAND_MEMBERS`); returns their kinds and anchors.
/// The read then says nothing about deletions.
fn pick_on_demand(
    job: &JobSpec,
    delta: &mut crate::model::Delta,
    kind: Kind,
    name: &str,
) -> Result<HashSet<(Kind, String)>, CycleError> {
    let ldap = matches!(job.source, crate::job::SourceSpec::Ldap(_));
    let wanted_ref = if ldap {
        crate::source::normalize_dn(name)
    } else {
        name.to_string()
    };
    let Some(object) = delta
        .objects
        .iter()
        .find(|o| o.kind == kind && (o.anchor == name || o.source_ref == wanted_ref))
        .cloned()
    else {
        return Err(CycleError::Job(format!(
            "the source has no {} '{name}' (give its anchor or, for LDAP, its DN)",
            kind.as_str().to_lowercase()
        )));
    };
    if object.members.len() > ON_DEMAND_MEMBERS {
        return Err(CycleError::Job(format!(
            "group '{name}' has {} members; a group is provisioned on demand with at most {ON_DEMAND_MEMBERS} (as in Entra): its members are provisioned by the cycles",
            object.members.len()
        )));
    }
    let members: HashSet<&String> = object.members.iter().collect();
    let mut keep: HashSet<(Kind, String)> = HashSet::new();
    keep.insert((object.kind, object.anchor.clone()));
    for o in &delta.objects {
        if o.kind == Kind::User && members.contains(&o.source_ref) {
            keep.insert((o.kind, o.anchor.clone()));
        }
    }
    delta.objects.retain(|o| keep.contains(&(o.kind, o.anchor.clone())));
    delta.full = false;
    delta.present = None;
    delta.deleted.clear();
    Ok(keep)
}

/// Whether processing `it` would disable or delete a target object: it is
/// linked, and deleted in the source (with deletes on), or was in scope
/// and no longer is (or is disabled in the source).
fn removes(cx: &Cx<'_>, it: &Item) -> bool {
    let Some(old) = it.old.as_ref().filter(|o| o.target_id.is_some()) else {
        return false;
    };
    if it.deleted {
        return cx.job.object(it.kind).actions.delete;
    }
    match &it.object {
        Some(obj) => old.in_scope && (!cx.in_scope(obj) || obj.disabled),
        None => false,
    }
}

/// The log record of an action held back by the deletion threshold.
fn staged_record(it: &Item, threshold: u64) -> Record {
    let name = it
        .object
        .as_ref()
        .map(SourceObject::display_name)
        .unwrap_or_else(|| it.anchor.clone());
    let mut r = Record::new(it.kind, &it.anchor, &name);
    r.target_id = it.old.as_ref().and_then(|o| o.target_id.clone());
    r.action = Action::StagedDelete;
    r.skip(
        StepType::Processing,
        "EntrySynchronizationSkipped",
        &format!(
            "Not {}: the cycle exceeded the job's deletion threshold ({threshold}); allow deletes to apply it",
            if it.deleted { "deleted" } else { "disabled" }
        ),
    );
    r
}

/// Saves processed objects: their states, removals and log records in one
/// call (only the log records in a dry run). A cycle stopped by its target
/// saves nothing more.
struct Commit<'a, 'c> {
    cx: &'a Cx<'c>,
    store: &'a dyn Store,
    tenant: TenantId,
    /// The escrow of the objects this cycle processes, as it was.
    escrowed: HashMap<(Kind, String), Escrow>,
}

impl Commit<'_, '_> {
    async fn save(&self, outcomes: Vec<Outcome>) -> Result<(), CycleError> {
        if let Some(e) = self.cx.stop.lock().ok().and_then(|s| s.clone()) {
            let why = if e.unreachable {
                format!("the target cannot be reached: {}", e.info.details)
            } else {
                format!(
                    "the target refused the Secret Token ({}): {}; check `target.token`",
                    e.status.unwrap_or_default(),
                    e.info.details
                )
            };
            return Err(CycleError::Connection {
                failure: if e.unreachable {
                    Failure::Unreachable
                } else {
                    Failure::Credentials
                },
                message: format!(
                    "{why}. The cycle stopped; its watermark was not committed, so the next run reads these changes again (objects already exported are not sent twice)."
                ),
            });
        }
        if outcomes.is_empty() {
            return Ok(());
        }
        let job = &self.cx.job.name;
        let mut states = Vec::new();
        let mut removed = Vec::new();
        let mut logs = Vec::new();
        for o in outcomes {
            if let Some(r) = &o.record {
                logs.push(log_record(self.cx, r));
            }
            if self.cx.opts.dry_run {
                continue;
            }
            if let Some(mut s) = o.state {
                s.escrow = if s.pending {
                    let old = self.escrowed.get(&(s.kind, s.anchor.clone()));
                    Some(escrow_after(
                        old,
                        o.record.as_ref(),
                        OffsetDateTime::now_utc(),
                        self.cx.job.settings.interval,
                    ))
                } else {
                    None
                };
                states.push(s);
            }
            if let Some(r) = o.removed {
                removed.push(r);
            }
        }
        self.store.save_objects(self.tenant, job, states, removed, logs).await?;
        Ok(())
    }
}

/// Escrow back-off: a failed object is tried again at the next cycle, then
/// one, two, four… intervals later, at most a day apart.
pub fn escrow_delay(attempts: u32, interval: std::time::Duration) -> std::time::Duration {
    const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
    if attempts <= 1 {
        return std::time::Duration::ZERO;
    }
    let factor = 1u32.checked_shl(attempts - 2).unwrap_or(u32::MAX);
    interval.checked_mul(factor).unwrap_or(DAY).min(DAY)
}

/// The escrow of an object left pending by this cycle: a failed export
/// (its error, with back-off) or a reference not resolved yet (tried again
/// every cycle: the object it waits for may appear at any time).
fn escrow_after(
    old: Option<&Escrow>,
    record: Option<&Record>,
    now: OffsetDateTime,
    interval: std::time::Duration,
) -> Escrow {
    let failure = record.and_then(|r| r.error.as_ref().filter(|_| r.status == Status::Failure));
    let attempts = old.map_or(0, |e| e.attempts).saturating_add(1);
    let delay = if failure.is_some() {
        escrow_delay(attempts, interval)
    } else {
        std::time::Duration::ZERO
    };
    Escrow {
        attempts,
        first_failed: old.map_or_else(|| scimitar_store::format_utc(now), |e| e.first_failed.clone()),
        next_attempt: scimitar_store::format_utc(now + delay),
        error: failure.map_or("ReferenceNotResolved", |e| e.code).to_string(),
        reference: failure.is_none(),
    }
}

/// Entra's escrow thresholds (entra-provisioning.md §3.5): evaluated from
/// 5,000 escrowed failures, more than 40 % of a cycle's objects failing or
/// more than 40,000 failures quarantine the job; so do more than 60,000
/// escrowed objects, references included.
pub fn escrow_threshold_exceeded(failures: u64, references: u64, cycle_failed: u64, cycle_objects: u64) -> bool {
    failures + references > 60_000
        || (failures >= 5_000
            && (failures > 40_000 || cycle_failed.saturating_mul(10) > cycle_objects.saturating_mul(4)))
}

/// Splits users into waves: those whose manager is not among them (or is
/// already linked) first, then their reports, and so on.
fn waves(users: Vec<Item>) -> Vec<Vec<Item>> {
    let refs: HashSet<String> = users
        .iter()
        .filter_map(|u| u.object.as_ref().map(|o| o.source_ref.clone()))
        .collect();
    let mut placed: HashSet<String> = HashSet::new();
    let mut remaining = users;
    let mut out = Vec::new();
    while !remaining.is_empty() {
        let (ready, rest): (Vec<Item>, Vec<Item>) =
            remaining
                .into_iter()
                .partition(|u| match u.object.as_ref().and_then(|o| o.manager.as_ref()) {
                    Some(m) => !refs.contains(m) || placed.contains(m),
                    None => true,
                });
        if ready.is_empty() {
            // A cycle of managers: the rest go together, managers resolved afterwards.
            out.push(rest);
            break;
        }
        for u in &ready {
            if let Some(o) = &u.object {
                placed.insert(o.source_ref.clone());
            }
        }
        out.push(ready);
        remaining = rest;
    }
    out
}

/// What the cycle knows before it processes objects.
struct Plan {
    /// Escrowed objects this cycle leaves for later (their back-off).
    deferred: usize,
    known: HashMap<(Kind, String), ObjectState>,
    links: HashMap<String, String>,
    assigned_users: HashSet<String>,
    deleted: Vec<(Kind, String)>,
    ldap: bool,
}

impl Plan {
    async fn load(
        store: &dyn Store,
        tenant: TenantId,
        job: &JobSpec,
        delta: &Delta,
        initial: bool,
    ) -> Result<Plan, CycleError> {
        let ldap = matches!(job.source, crate::job::SourceSpec::Ldap(_));
        let mut known: HashMap<(Kind, String), ObjectState> = HashMap::new();
        let everything = initial || delta.full || delta.present.is_some();
        if everything {
            for kind in [Kind::User, Kind::Group] {
                for s in store.objects(tenant, &job.name, kind).await? {
                    known.insert((s.kind, s.anchor.clone()), s);
                }
            }
        } else {
            for kind in [Kind::User, Kind::Group] {
                let anchors: Vec<String> = delta
                    .objects
                    .iter()
                    .filter(|o| o.kind == kind)
                    .map(|o| o.anchor.clone())
                    .chain(delta.deleted.iter().filter(|(k, _)| *k == kind).map(|(_, a)| a.clone()))
                    .collect();
                for s in store.objects_by_anchor(tenant, &job.name, kind, &anchors).await? {
                    known.insert((s.kind, s.anchor.clone()), s);
                }
            }
            for s in store.pending_objects(tenant, &job.name).await? {
                known.insert((s.kind, s.anchor.clone()), s);
            }
        }
        let mut plan = Plan {
            deferred: 0,
            known,
            links: HashMap::new(),
            assigned_users: HashSet::new(),
            deleted: Vec::new(),
            ldap,
        };
        // The assigned groups (their members are in scope), and every
        // object referenced by a changed object (managers, members), so
        // that references resolve without reading the whole state.
        let mut refs: Vec<String> = job.scope.groups.iter().map(|g| plan.normalise(g)).collect();
        refs.extend(job.scope.users.iter().map(|u| plan.normalise(u)));
        for o in &delta.objects {
            refs.extend(o.manager.iter().cloned());
            refs.extend(o.members.iter().cloned());
        }
        for s in plan.known.values() {
            if let Some(o) = source_of(s) {
                refs.extend(o.manager);
                refs.extend(o.members);
            }
        }
        if !everything {
            refs.sort();
            refs.dedup();
            let have: HashSet<&str> = plan.known.values().filter_map(|s| s.source_ref.as_deref()).collect();
            let missing: Vec<String> = refs.iter().filter(|r| !have.contains(r.as_str())).cloned().collect();
            for s in store.objects_by_source_ref(tenant, &job.name, &missing).await? {
                plan.known.insert((s.kind, s.anchor.clone()), s);
            }
        }
        // Deletions the source reported, or that a full snapshot implies.
        let mut deleted: Vec<(Kind, String)> = delta.deleted.clone();
        if delta.full {
            let present: HashSet<(Kind, &str)> = delta.objects.iter().map(|o| (o.kind, o.anchor.as_str())).collect();
            deleted.extend(
                plan.known
                    .keys()
                    .filter(|(k, a)| !present.contains(&(*k, a.as_str())))
                    .cloned(),
            );
        }
        if let Some(present) = &delta.present {
            let present: HashSet<(Kind, &str)> = present.iter().map(|(k, a)| (*k, a.as_str())).collect();
            deleted.extend(
                plan.known
                    .keys()
                    .filter(|(k, a)| !present.contains(&(*k, a.as_str())))
                    .cloned(),
            );
        }
        deleted.sort();
        deleted.dedup();
        plan.deleted = deleted;
        for s in plan.known.values() {
            if let (Some(r), Some(t)) = (&s.source_ref, &s.target_id) {
                plan.links.insert(r.clone(), t.clone());
            }
        }
        Ok(plan)
    }

    /// A source reference as the source writes them (LDAP DNs normalised).
    fn normalise(&self, r: &str) -> String {
        if self.ldap {
            crate::source::normalize_dn(r)
        } else {
            r.to_string()
        }
    }

    /// The objects to process: changed and new ones, pending ones, deleted
    /// ones, and users whose assignment changed (a member added to or
    /// removed from an assigned group).
    fn items(&mut self, job: &JobSpec, objects: Vec<SourceObject>, initial: bool, now: &str) -> Vec<Item> {
        let by_ref: HashMap<String, (Kind, String)> = self
            .known
            .values()
            .filter_map(|s| s.source_ref.clone().map(|r| (r, (s.kind, s.anchor.clone()))))
            .collect();
        // Assigned users: direct, and direct members of assigned groups,
        // from this read where the group changed, else from what is stored.
        let assigned_groups: HashSet<String> = job.scope.groups.iter().map(|g| self.normalise(g)).collect();
        let mut old_assigned: HashSet<String> = job.scope.users.iter().map(|u| self.normalise(u)).collect();
        let mut new_assigned = old_assigned.clone();
        let fresh: HashMap<String, &SourceObject> = objects.iter().map(|o| (o.source_ref.clone(), o)).collect();
        for g in &assigned_groups {
            let stored = by_ref.get(g).and_then(|k| self.known.get(k)).and_then(source_of);
            if let Some(s) = &stored {
                old_assigned.extend(s.members.iter().cloned());
            }
            match fresh.get(g) {
                Some(o) => new_assigned.extend(o.members.iter().cloned()),
                None => {
                    if let Some(s) = &stored {
                        new_assigned.extend(s.members.iter().cloned());
                    }
                }
            }
        }
        self.assigned_users = new_assigned.clone();
        let mut items: Vec<Item> = Vec::new();
        let mut seen: HashSet<(Kind, String)> = HashSet::new();
        for o in objects {
            let key = (o.kind, o.anchor.clone());
            let old = self.known.get(&key).cloned();
            let unchanged = old
                .as_ref()
                .is_some_and(|s| s.source_hash == o.content_hash() && !s.pending);
            if unchanged && !initial {
                continue;
            }
            seen.insert(key);
            items.push(Item {
                kind: o.kind,
                anchor: o.anchor.clone(),
                change: if old.is_some() { "Update" } else { "Add" },
                object: Some(o),
                old,
                deleted: false,
            });
        }
        for (kind, anchor) in self.deleted.clone() {
            if !seen.insert((kind, anchor.clone())) {
                continue;
            }
            let old = self.known.get(&(kind, anchor.clone())).cloned();
            if old.is_none() {
                continue;
            }
            items.push(Item {
                kind,
                anchor,
                object: old.as_ref().and_then(source_of),
                old,
                deleted: true,
                change: "Delete",
            });
        }
        // Pending objects whose escrow back-off is over (one the source
        // changed is tried at once, above), and users whose assignment
        // changed.
        let changed_assignment: HashSet<&String> = old_assigned.symmetric_difference(&new_assigned).collect();
        let due = |s: &ObjectState| s.escrow.as_ref().is_none_or(|e| e.next_attempt.as_str() <= now);
        let reassigned = |s: &ObjectState| {
            s.kind == Kind::User && s.source_ref.as_ref().is_some_and(|r| changed_assignment.contains(r))
        };
        let mut deferred = 0;
        let extra: Vec<ObjectState> = self
            .known
            .values()
            .filter(|s| !seen.contains(&(s.kind, s.anchor.clone())))
            .filter(|s| {
                let waiting = s.pending && !due(s);
                if waiting && !reassigned(s) {
                    deferred += 1;
                }
                (s.pending && due(s)) || reassigned(s)
            })
            .cloned()
            .collect();
        self.deferred = deferred;
        for s in extra {
            seen.insert((s.kind, s.anchor.clone()));
            items.push(Item {
                kind: s.kind,
                anchor: s.anchor.clone(),
                object: source_of(&s),
                change: if s.pending { "Retry" } else { "Update" },
                old: Some(s),
                deleted: false,
            });
        }
        items
    }
}

fn log_record(cx: &Cx<'_>, r: &Record) -> EngineLogRecord {
    let time = scimitar_store::now_utc();
    let identity_type = match r.kind {
        Kind::User => "User",
        Kind::Group => "Group",
    };
    let status_info = match &r.error {
        Some(e) => json!({"status": r.status.as_str(), "errorInformation": e.to_json()}),
        None => json!({"status": r.status.as_str()}),
    };
    let record = json!({
        "id": r.change_id,
        "jobId": cx.job.name,
        "cycleId": cx.cycle_id,
        "changeId": r.change_id,
        "activityDateTime": time,
        "durationInMilliseconds": u64::try_from(r.started.elapsed().as_millis()).unwrap_or(0),
        "provisioningAction": r.action.as_str(),
        "provisioningStatusInfo": status_info,
        "provisioningSteps": r.steps.iter().map(Step::to_json).collect::<Vec<_>>(),
        "modifiedProperties": r.modified,
        "sourceIdentity": {"id": r.anchor, "displayName": r.name, "identityType": identity_type},
        "targetIdentity": {"id": r.target_id, "displayName": r.name, "identityType": identity_type},
        "sourceSystem": {"displayName": cx.job.source.kind()},
        "targetSystem": {"displayName": cx.job.target.url},
        "initiatedBy": {"displayName": "Scimitar Provisioning Service", "initiatingType": "system"},
        "dryRun": cx.opts.dry_run,
    });
    EngineLogRecord {
        id: 0,
        job: cx.job.name.clone(),
        cycle_id: cx.cycle_id.clone(),
        change_id: r.change_id.clone(),
        time,
        action: r.action.as_str().to_string(),
        status: r.status.as_str().to_string(),
        source_id: Some(r.anchor.clone()),
        target_id: r.target_id.clone(),
        record,
    }
}

fn import_step(kind: Kind, change: &str, name: &str, source: &str) -> Step {
    Step::new(
        StepType::Import,
        &format!("EntryImport{change}"),
        Status::Success,
        format!(
            "Received {} '{name}' change of type ({change}) from {source}",
            kind.as_str()
        ),
    )
}

/// Finds the target object of an unlinked source object: one `eq` query
/// per matching attribute, in precedence order, until one finds it.
async fn find_match(cx: &Cx<'_>, kind: Kind, img: &Image, r: &mut Record) -> Result<Option<(String, Value)>, ()> {
    let spec = cx.job.object(kind);
    let mut any_value = false;
    for m in spec.matching() {
        let key = m.target.key();
        let Some(value) = img.text(&key) else { continue };
        any_value = true;
        let req = dialect::lookup(kind, &key, &value);
        let answer = match cx.read(&req, false).await {
            Ok(a) => a,
            Err(e) => {
                r.fail(Action::Other, StepType::Matching, "EntrySynchronizationError", e.info);
                return Err(());
            }
        };
        let found = resources(&answer.body);
        match found.as_slice() {
            [] => continue,
            [one] => {
                let id = one.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                if id.is_empty() {
                    r.fail(
                        Action::Other,
                        StepType::Matching,
                        "EntrySynchronizationError",
                        ErrorInfo::new(
                            "SystemForCrossDomainIdentityManagementServiceIncompatible",
                            "the matching resource has no id",
                        ),
                    );
                    return Err(());
                }
                r.step(
                    Step::new(
                        StepType::Matching,
                        "EntrySynchronizationUpdate",
                        Status::Success,
                        format!("Matched an existing {} in the target by {key}", kind.as_str()),
                    )
                    .detail("targetId", id.clone()),
                );
                return Ok(Some((id, (*one).clone())));
            }
            _ => {
                r.fail(
                    Action::Other,
                    StepType::Matching,
                    "EntrySynchronizationError",
                    ErrorInfo::new(
                        "DuplicateTargetEntries",
                        format!(
                            "{} {}s in the target have {key} = '{value}'",
                            found.len(),
                            kind.as_str()
                        ),
                    ),
                );
                return Err(());
            }
        }
    }
    if !any_value {
        r.fail(
            Action::Other,
            StepType::Matching,
            "EntryImportSkipped",
            ErrorInfo::new("ImportSkipped", "the object has no value for any matching attribute"),
        );
        r.status = Status::Skipped;
        return Err(());
    }
    r.step(Step::new(
        StepType::Matching,
        "EntrySynchronizationAdd",
        Status::Success,
        format!(
            "The {} will be created: no matching {} was found",
            kind.as_str(),
            kind.as_str()
        ),
    ));
    Ok(None)
}

/// Resolves SelectUniqueValue candidates on create: the first value no
/// target object holds.
async fn pick_unique(cx: &Cx<'_>, kind: Kind, img: &mut Image) -> Result<(), ErrorInfo> {
    for e in img.entries.iter_mut() {
        let ImageValue::Candidates(cands) = &e.value else {
            continue;
        };
        let key = e.target.key();
        let mut chosen = None;
        for c in cands {
            let answer = cx
                .client
                .send(&dialect::lookup(kind, &key, c), false)
                .await
                .map_err(|e| e.info)?;
            if resources(&answer.body).is_empty() {
                chosen = Some(c.clone());
                break;
            }
        }
        match chosen {
            Some(c) => e.value = ImageValue::Value(Value::String(c)),
            None => {
                return Err(ErrorInfo::new(
                    "SelectUniqueValueExhausted",
                    format!("every value proposed for {key} is taken: {}", cands.join(", ")),
                ));
            }
        }
    }
    Ok(())
}

fn has_active_mapping(cx: &Cx<'_>, kind: Kind) -> bool {
    cx.job.object(kind).mappings.iter().any(|m| m.target.is_active())
}

async fn process_user(cx: &Cx<'_>, it: Item) -> Outcome {
    let out = process_object(cx, it).await;
    if let (Some(s), Some(r), Ok(mut waiting)) = (
        &out.state,
        out.state.as_ref().and_then(|s| s.source_ref.clone()),
        cx.waiting.lock(),
    ) {
        if s.in_scope && s.target_id.is_none() && s.pending {
            waiting.insert(r);
        } else {
            waiting.remove(&r);
        }
    }
    cx.tick();
    out
}

async fn process_group(cx: &Cx<'_>, it: Item) -> Outcome {
    let mut out = process_object(cx, it).await;
    sync_members(cx, &mut out).await;
    cx.tick();
    out
}

/// Create, update, disable or delete one object.
async fn process_object(cx: &Cx<'_>, it: Item) -> Outcome {
    let kind = it.kind;
    let source_name = cx.job.source.kind();
    let Some(obj) = it.object.clone() else {
        // Deleted and never imported: nothing to do.
        return Outcome {
            state: None,
            removed: Some((kind, it.anchor)),
            record: None,
            manager_later: None,
        };
    };
    let name = obj.display_name();
    let mut r = Record::new(kind, &it.anchor, &name);
    r.step(import_step(kind, it.change, &name, source_name));
    let target_id = it.old.as_ref().and_then(|s| s.target_id.clone());
    r.target_id = target_id.clone();
    let old_exported = it.old.as_ref().map(|s| s.exported.clone()).unwrap_or(Value::Null);
    let spec = cx.job.object(kind);

    // Deleted in the source.
    if it.deleted {
        cx.set_link(&obj.source_ref, None);
        let Some(id) = target_id else {
            return Outcome {
                state: None,
                removed: Some((kind, it.anchor)),
                record: None,
                manager_later: None,
            };
        };
        if !spec.actions.delete {
            r.skip(
                StepType::Processing,
                "EntrySynchronizationSkipped",
                "deletes are turned off for this object type",
            );
            cx.count(|s| s.skipped += 1);
            return Outcome {
                state: None,
                removed: Some((kind, it.anchor)),
                record: Some(r),
                manager_later: None,
            };
        }
        return delete(cx, kind, &id, r, it.anchor, "deleted in the source").await;
    }

    let in_scope = cx.in_scope(&obj);
    let subject = Subject { obj: &obj, in_scope };
    let soft_deleted = !in_scope || obj.disabled;
    r.step(
        Step::new(
            StepType::Scoping,
            if in_scope {
                "EntryScopeEvaluation"
            } else {
                "EntryScopeEvaluationOutOfScope"
            },
            Status::Success,
            if in_scope {
                format!("The {} is in scope", kind.as_str())
            } else {
                format!(
                    "The {} is not in scope (not assigned, or filtered out by a scoping filter)",
                    kind.as_str()
                )
            },
        )
        .detail("inScope", in_scope)
        .detail("disabledInSource", obj.disabled),
    );

    // Out of scope (groups) or out of scope without soft delete: delete.
    if let Some(id) = &target_id
        && soft_deleted
        && (kind == Kind::Group || !has_active_mapping(cx, kind))
    {
        if !spec.actions.delete {
            r.skip(
                StepType::Processing,
                "EntrySynchronizationSkipped",
                "deletes are turned off for this object type",
            );
            cx.count(|s| s.skipped += 1);
            let st = new_state(&obj, in_scope, target_id.clone(), old_exported, false);
            return Outcome {
                state: Some(st),
                removed: None,
                record: Some(r),
                manager_later: None,
            };
        }
        return delete(cx, kind, id, r, it.anchor, "out of scope").await;
    }

    let Some(id) = target_id else {
        // Not linked yet.
        if soft_deleted || !spec.actions.create {
            let why = if !spec.actions.create {
                "creates are turned off for this object type"
            } else if obj.disabled {
                "the account is disabled in the source"
            } else {
                "not in scope"
            };
            r.skip(StepType::Processing, "EntrySynchronizationSkipped", why);
            cx.count(|s| s.skipped += 1);
            let st = new_state(&obj, in_scope, None, Value::Null, false);
            return Outcome {
                state: Some(st),
                removed: None,
                record: Some(r),
                manager_later: None,
            };
        }
        let mut img = match cx.image(&obj, false, Mode::Create) {
            Ok(i) => i,
            Err(e) => return failed(cx, subject, None, old_exported, r, (Action::Create, e)),
        };
        return match find_match(cx, kind, &img, &mut r).await {
            Err(()) => {
                if r.status == Status::Skipped {
                    cx.count(|s| s.skipped += 1);
                } else {
                    cx.count(|s| s.failed += 1);
                }
                let st = new_state(&obj, in_scope, None, Value::Null, r.status == Status::Failure);
                Outcome {
                    state: Some(st),
                    removed: None,
                    record: Some(r),
                    manager_later: None,
                }
            }
            Ok(Some((id, resource))) => {
                cx.set_link(&obj.source_ref, Some(&id));
                r.target_id = Some(id.clone());
                // Linked: bring it up to date with what the lookup returned.
                let img = match cx.image(&obj, false, Mode::Update) {
                    Ok(i) => i,
                    Err(e) => return failed(cx, subject, Some(id), Value::Null, r, (Action::Update, e)),
                };
                update(cx, subject, &id, Some(resource), img, Value::Null, r).await
            }
            Ok(None) => {
                if let Err(e) = pick_unique(cx, kind, &mut img).await {
                    return failed(cx, subject, None, Value::Null, r, (Action::Create, e));
                }
                create(cx, &obj, in_scope, img, r).await
            }
        };
    };

    // Linked.
    if !spec.actions.update {
        r.skip(
            StepType::Processing,
            "EntrySynchronizationSkipped",
            "updates are turned off for this object type",
        );
        cx.count(|s| s.skipped += 1);
        let st = new_state(&obj, in_scope, Some(id), old_exported, false);
        return Outcome {
            state: Some(st),
            removed: None,
            record: Some(r),
            manager_later: None,
        };
    }
    let img = match cx.image(&obj, soft_deleted, Mode::Update) {
        Ok(i) => i,
        Err(e) => return failed(cx, subject, Some(id), old_exported, r, (Action::Update, e)),
    };
    update(cx, subject, &id, None, img, old_exported, r).await
}

/// The object being processed, and whether it is in scope.
#[derive(Clone, Copy)]
struct Subject<'a> {
    obj: &'a SourceObject,
    in_scope: bool,
}

fn failed(
    cx: &Cx<'_>,
    subject: Subject<'_>,
    target_id: Option<String>,
    exported: Value,
    mut r: Record,
    (action, e): (Action, ErrorInfo),
) -> Outcome {
    r.fail(action, StepType::Processing, "EntryExportFailed", e);
    cx.count(|s| s.failed += 1);
    Outcome {
        state: Some(new_state(subject.obj, subject.in_scope, target_id, exported, true)),
        removed: None,
        record: Some(r),
        manager_later: None,
    }
}

async fn delete(cx: &Cx<'_>, kind: Kind, id: &str, mut r: Record, anchor: String, why: &str) -> Outcome {
    let req = dialect::delete(kind, id);
    r.action = Action::Delete;
    match cx.send(&req, true).await {
        Ok(_) => {
            r.step(
                Step::new(
                    StepType::Export,
                    "EntryExportDelete",
                    Status::Success,
                    format!("Deleted ({why})"),
                )
                .detail("targetId", id),
            );
            cx.count(|s| s.deleted += 1);
            Outcome {
                state: None,
                removed: Some((kind, anchor)),
                record: Some(r),
                manager_later: None,
            }
        }
        Err(e) if e.status == Some(404) => {
            // Already gone: what a delete wanted.
            r.step(Step::new(
                StepType::Export,
                "EntryExportDelete",
                Status::Success,
                "Already gone from the target",
            ));
            cx.count(|s| s.deleted += 1);
            Outcome {
                state: None,
                removed: Some((kind, anchor)),
                record: Some(r),
                manager_later: None,
            }
        }
        Err(e) => {
            r.fail(Action::Delete, StepType::Export, "EntryExportDelete", e.info);
            cx.count(|s| s.failed += 1);
            // Kept, to retry in the next cycle.
            let state = r.target_id.clone().map(|t| ObjectState {
                kind,
                anchor: anchor.clone(),
                source_ref: None,
                source_hash: String::new(),
                source: Value::Null,
                in_scope: false,
                target_id: Some(t),
                exported: Value::Null,
                pending: true,
                updated: scimitar_store::now_utc(),
                escrow: None,
            });
            Outcome {
                state,
                removed: None,
                record: Some(r),
                manager_later: None,
            }
        }
    }
}

async fn create(cx: &Cx<'_>, obj: &SourceObject, in_scope: bool, img: Image, mut r: Record) -> Outcome {
    let kind = obj.kind;
    let (values, manager_later) = cx.resolved(&img);
    let req = dialect::create(kind, cx.job.target.dialect, &values);
    r.action = Action::Create;
    r.modified = modified(&values, &img, None);
    match cx.send(&req, false).await {
        Ok(answer) => {
            let id = answer
                .as_ref()
                .and_then(|a| a.body.get("id"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let (id, status_ok) = match (id, cx.opts.dry_run) {
                (Some(id), _) => (Some(id), true),
                (None, true) => (None, true),
                (None, false) => (None, false),
            };
            if !status_ok {
                r.fail(
                    Action::Create,
                    StepType::Export,
                    "EntryExportAdd",
                    ErrorInfo::new(
                        "SystemForCrossDomainIdentityManagementServiceIncompatible",
                        "the create answer has no id",
                    ),
                );
                cx.count(|s| s.failed += 1);
                return Outcome {
                    state: Some(new_state(obj, in_scope, None, Value::Null, true)),
                    removed: None,
                    record: Some(r),
                    manager_later: None,
                };
            }
            if let Some(id) = &id {
                cx.set_link(&obj.source_ref, Some(id));
            }
            r.target_id = id.clone();
            r.step(
                Step::new(
                    StepType::Export,
                    "EntryExportAdd",
                    Status::Success,
                    format!("Created the {} in the target", kind.as_str()),
                )
                .detail("targetId", id.clone().unwrap_or_default()),
            );
            cx.count(|s| s.created += 1);
            let exported = exported_json(&values, obj, manager_later.is_none(), &[]);
            Outcome {
                state: Some(new_state(obj, in_scope, id, exported, false)),
                removed: None,
                record: Some(r),
                manager_later: if kind == Kind::User { manager_later } else { None },
            }
        }
        Err(e) => {
            r.fail(Action::Create, StepType::Export, "EntryExportAdd", e.info);
            cx.count(|s| s.failed += 1);
            Outcome {
                state: Some(new_state(obj, in_scope, None, Value::Null, true)),
                removed: None,
                record: Some(r),
                manager_later: None,
            }
        }
    }
}

/// What was exported, to compare with next time: the values, the manager's
/// source reference (when it was set in the target), and a group's members.
fn exported_json(values: &[(TargetPath, Value)], obj: &SourceObject, manager_set: bool, members: &[String]) -> Value {
    let mut m = Map::new();
    for (p, v) in values {
        m.insert(p.key(), v.clone());
    }
    let mut out = Map::new();
    out.insert("values".into(), Value::Object(m));
    if obj.kind == Kind::User && manager_set {
        out.insert("manager".into(), json!(obj.manager));
    }
    if obj.kind == Kind::Group {
        out.insert("members".into(), json!(members));
    }
    Value::Object(out)
}

async fn update(
    cx: &Cx<'_>,
    subject: Subject<'_>,
    id: &str,
    resource: Option<Value>,
    img: Image,
    old_exported: Value,
    mut r: Record,
) -> Outcome {
    let Subject { obj, in_scope } = subject;
    let kind = obj.kind;
    // The target as it is now.
    let resource = match resource {
        Some(res) => res,
        None => match cx.read(&dialect::read(kind, id), true).await {
            Ok(a) => a.body,
            Err(e) => {
                let invalid = e.status == Some(404);
                r.fail(
                    Action::Update,
                    StepType::Processing,
                    "EntrySynchronizationError",
                    e.info,
                );
                cx.count(|s| s.failed += 1);
                return Outcome {
                    // A gone target (InvalidAnchor) is fixed by a restart
                    // with --reset-anchors, not retried every cycle.
                    state: Some(new_state(obj, in_scope, Some(id.to_string()), old_exported, !invalid)),
                    removed: None,
                    record: Some(r),
                    manager_later: None,
                };
            }
        },
    };
    let (values, manager_later) = cx.resolved(&img);
    let mut changes = diff::changes(kind, &resource, &values);
    // A manager removed in the source is removed in the target.
    let had_manager = old_exported.get("manager").is_some_and(|m| !m.is_null());
    let manager_removed = (kind == Kind::User && obj.manager.is_none() && had_manager)
        .then(|| {
            cx.job
                .users
                .mappings
                .iter()
                .find(|m| m.target.is_manager())
                .and_then(|m| diff::current(kind, &resource, &m.target))
                .and_then(|v| v.as_str().map(str::to_string))
        })
        .flatten();
    let disabling = changes
        .iter()
        .any(|c| c.target.is_active() && c.value == Value::Bool(false));
    let enabling = changes
        .iter()
        .any(|c| c.target.is_active() && c.value == Value::Bool(true));
    if kind == Kind::Group {
        changes.retain(|c| !c.target.is_members());
    }
    let req = dialect::update(kind, cx.job.target.dialect, id, &changes, manager_removed.as_deref());
    let exported = exported_json(&values, obj, manager_later.is_none(), &[]);
    let exported = merge_members(exported, &old_exported);
    let Some(req) = req else {
        r.action = Action::Other;
        r.status = Status::Skipped;
        r.step(Step::new(
            StepType::Processing,
            "EntrySynchronizationSkipped",
            Status::Skipped,
            "The target already holds every mapped value: nothing to change",
        ));
        cx.count(|s| s.skipped += 1);
        return Outcome {
            state: Some(new_state(obj, in_scope, Some(id.to_string()), exported, false)),
            removed: None,
            record: Some(r),
            manager_later: if kind == Kind::User { manager_later } else { None },
        };
    };
    r.action = if disabling { Action::Disable } else { Action::Update };
    let change_values: Vec<(TargetPath, Value)> = changes.iter().map(|c| (c.target.clone(), c.value.clone())).collect();
    r.modified = changes
        .iter()
        .zip(modified(&change_values, &img, None))
        .map(|(c, mut m)| {
            let old = diff::current(kind, &resource, &c.target);
            if let Some(o) = m.as_object_mut() {
                o.insert("oldValue".into(), old.unwrap_or(Value::Null));
            }
            m
        })
        .collect();
    match cx.send(&req, true).await {
        Ok(_) => {
            r.step(Step::new(
                StepType::Export,
                "EntryExportUpdate",
                Status::Success,
                if disabling {
                    format!("Disabled the {} in the target", kind.as_str())
                } else if enabling {
                    format!("Enabled the {} in the target", kind.as_str())
                } else {
                    format!("Updated the {} in the target", kind.as_str())
                },
            ));
            cx.count(|s| if disabling { s.disabled += 1 } else { s.updated += 1 });
            Outcome {
                state: Some(new_state(obj, in_scope, Some(id.to_string()), exported, false)),
                removed: None,
                record: Some(r),
                manager_later: if kind == Kind::User { manager_later } else { None },
            }
        }
        Err(e) => {
            let invalid = e.status == Some(404);
            r.fail(Action::Update, StepType::Export, "EntryExportUpdate", e.info);
            cx.count(|s| s.failed += 1);
            Outcome {
                state: Some(new_state(obj, in_scope, Some(id.to_string()), old_exported, !invalid)),
                removed: None,
                record: Some(r),
                manager_later: None,
            }
        }
    }
}

/// Keeps a group's exported member list across an attribute update.
fn merge_members(mut exported: Value, old: &Value) -> Value {
    if let (Some(m), Some(o)) = (old.get("members"), exported.as_object_mut()) {
        o.insert("members".into(), m.clone());
    }
    exported
}

/// Sets a manager that was not linked when its user was processed.
async fn resolve_manager(cx: &Cx<'_>, o: &mut Outcome, manager_ref: &str) {
    let (Some(state), Some(r)) = (o.state.as_mut(), o.record.as_mut()) else {
        return;
    };
    let Some(user_id) = state.target_id.clone() else {
        return;
    };
    let Some(manager_id) = cx.link(manager_ref) else {
        // Not provisioned (out of scope, or failed): Entra leaves the user
        // without one; we retry it while the user is pending.
        r.step(Step::new(
            StepType::ReferenceResolution,
            "EntryReferenceResolutionSkipped",
            Status::Skipped,
            "The manager is not provisioned in the target",
        ));
        return;
    };
    let Some(m) = cx.job.users.mappings.iter().find(|m| m.target.is_manager()) else {
        return;
    };
    let change = dialect::Change {
        target: m.target.clone(),
        op: dialect::Op::Add,
        value: Value::String(manager_id.clone()),
    };
    let Some(req) = dialect::update(Kind::User, cx.job.target.dialect, &user_id, &[change], None) else {
        return;
    };
    match cx.send(&req, true).await {
        Ok(_) => {
            r.step(
                Step::new(
                    StepType::ReferenceResolution,
                    "EntryReferenceResolution",
                    Status::Success,
                    "Set the manager",
                )
                .detail("managerId", manager_id),
            );
            if let Some(e) = state.exported.as_object_mut() {
                e.insert("manager".into(), json!(manager_ref));
            }
        }
        Err(e) => {
            r.step(
                Step::new(
                    StepType::ReferenceResolution,
                    "EntryReferenceResolution",
                    Status::Failure,
                    e.info.details.clone(),
                )
                .detail("errorCode", e.info.code),
            );
            if r.status == Status::Success {
                r.status = Status::Warning;
            }
            state.pending = true;
        }
    }
}

/// Brings a linked group's members in line with the source: adds and
/// removes computed from the source's member changes (Entra never reads
/// the target's members), in batches of `member_batch`.
async fn sync_members(cx: &Cx<'_>, o: &mut Outcome) {
    let Some(state) = o.state.as_mut() else { return };
    let (Some(group_id), true) = (state.target_id.clone(), state.in_scope) else {
        return;
    };
    if state.kind != Kind::Group {
        return;
    }
    let Some(obj) = source_of(state) else { return };
    let exported: Vec<String> = state
        .exported
        .get("members")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    // Members as target ids, where the member is provisioned.
    let mut desired: Vec<(String, String)> = Vec::new();
    let mut unresolved = false;
    for m in &obj.members {
        match cx.link(m) {
            Some(t) => desired.push((m.clone(), t)),
            None => unresolved |= cx.waiting.lock().is_ok_and(|w| w.contains(m)),
        }
    }
    let desired_refs: HashSet<&String> = desired.iter().map(|(r, _)| r).collect();
    let adds: Vec<String> = desired
        .iter()
        .filter(|(r, _)| !exported.contains(r))
        .map(|(_, t)| t.clone())
        .collect();
    let removes: Vec<String> = exported
        .iter()
        .filter(|r| !desired_refs.contains(r))
        .filter_map(|r| cx.link(r))
        .collect();
    let mut ok = true;
    let mut added = 0usize;
    let mut removed = 0usize;
    let batch = cx.job.settings.member_batch.max(1);
    for chunk in adds.chunks(batch) {
        let req = dialect::add_members(cx.job.target.dialect, &group_id, chunk);
        match cx.send(&req, true).await {
            Ok(_) => added += chunk.len(),
            Err(e) => {
                ok = false;
                if let Some(r) = o.record.as_mut() {
                    r.step(
                        Step::new(
                            StepType::ReferenceResolution,
                            "EntryExportMembers",
                            Status::Failure,
                            e.info.details.clone(),
                        )
                        .detail("errorCode", e.info.code),
                    );
                }
            }
        }
    }
    for chunk in removes.chunks(batch) {
        let req = dialect::remove_members(cx.job.target.dialect, &group_id, chunk);
        match cx.send(&req, true).await {
            Ok(_) => removed += chunk.len(),
            Err(e) => {
                ok = false;
                if let Some(r) = o.record.as_mut() {
                    r.step(
                        Step::new(
                            StepType::ReferenceResolution,
                            "EntryExportMembers",
                            Status::Failure,
                            e.info.details.clone(),
                        )
                        .detail("errorCode", e.info.code),
                    );
                }
            }
        }
    }
    if added + removed > 0
        && let Some(r) = o.record.as_mut()
    {
        r.step(
            Step::new(
                StepType::ReferenceResolution,
                "EntryExportMembers",
                Status::Success,
                format!("Added {added} and removed {removed} members"),
            )
            .detail("added", added)
            .detail("removed", removed),
        );
        r.modified
            .push(json!({"displayName": "members", "oldValue": exported.len(), "newValue": desired.len()}));
        if r.action == Action::Other {
            r.action = Action::Update;
            r.status = Status::Success;
        }
    }
    if ok {
        let refs: Vec<String> = desired.into_iter().map(|(r, _)| r).collect();
        if let Some(e) = state.exported.as_object_mut() {
            e.insert("members".into(), json!(refs));
        } else {
            state.exported = json!({"members": refs});
        }
    } else if let Some(r) = o.record.as_mut()
        && r.status == Status::Success
    {
        r.status = Status::Warning;
    }
    state.pending |= !ok || unresolved;
}

#[cfg(test)]
mod escrow_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn back_off_grows_from_the_next_cycle_to_a_day() {
        let forty = Duration::from_secs(40 * 60);
        let table = [
            (1, 0),
            (2, 40),
            (3, 80),
            (4, 160),
            (5, 320),
            (6, 640),
            (7, 1280),
            (8, 1440),
            (40, 1440),
        ];
        for (attempts, minutes) in table {
            assert_eq!(
                escrow_delay(attempts, forty),
                Duration::from_secs(minutes * 60),
                "{attempts}"
            );
        }
    }

    #[test]
    fn escrow_thresholds_as_entra() {
        // (failures, references, failed this cycle, objects this cycle, quarantined)
        let table = [
            (4_999, 0, 4_999, 5_000, false), // below 5,000: not evaluated
            (5_000, 0, 2_001, 5_000, true),  // 40.02 % of the cycle
            (5_000, 0, 2_000, 5_000, false), // exactly 40 %
            (40_001, 0, 1, 1_000_000, true), // more than 40,000
            (40_000, 0, 1, 1_000_000, false),
            (1_000, 59_001, 1, 1_000_000, true), // references count towards 60,000
            (1_000, 59_000, 1, 1_000_000, false),
        ];
        for (f, r, cf, co, want) in table {
            assert_eq!(escrow_threshold_exceeded(f, r, cf, co), want, "{f} {r} {cf} {co}");
        }
    }

    #[test]
    fn a_failure_backs_off_a_reference_does_not() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let hour = Duration::from_secs(3600);
        let mut r = Record::new(Kind::User, "a", "A");
        r.fail(
            Action::Create,
            StepType::Export,
            "EntryExportAdd",
            ErrorInfo::new("SystemForCrossDomainIdentityManagementServiceIncompatible", "x"),
        );
        let first = escrow_after(None, Some(&r), now, hour);
        assert_eq!((first.attempts, first.reference), (1, false));
        assert_eq!(first.next_attempt, scimitar_store::format_utc(now), "the next cycle");
        let second = escrow_after(Some(&first), Some(&r), now + hour, hour);
        assert_eq!(second.attempts, 2);
        assert_eq!(second.first_failed, first.first_failed);
        assert_eq!(second.next_attempt, scimitar_store::format_utc(now + hour + hour));
        let waiting = Record::new(Kind::Group, "g", "G");
        let reference = escrow_after(Some(&second), Some(&waiting), now, hour);
        assert!(reference.reference);
        assert_eq!(reference.next_attempt, scimitar_store::format_utc(now), "every cycle");
        assert_eq!(reference.error, "ReferenceNotResolved");
    }
}
