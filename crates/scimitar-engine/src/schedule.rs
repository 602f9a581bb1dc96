//! Jobs that run by themselves, as Entra's provisioning service runs them:
//! a job whose Provisioning Status is `on` runs a cycle at once (initial,
//! or resuming from its watermark) and then one every `interval`; `off`
//! lets the cycle in progress finish and starts no more.
//!
//! Every node of a cluster runs the scheduler; a job's cycle runs under a
//! lease row named after the tenant and job (the same leases as activity
//! retention: one conditional `UPDATE`, no advisory locks), renewed while
//! the cycle runs and released when it ends. A node that dies mid-cycle
//! stops renewing; once the lease expires another node takes the job and
//! its cycle resumes from what the dead one saved (objects are saved a
//! chunk at a time, the watermark last), so nothing is sent twice.
//!
//! When the next cycle is due is computed from the job's stored state
//! alone ([`next_cycle`]), so that every node — and `scimitar sync jobs` —
//! agrees on it.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scimitar_store::lease::window;
use scimitar_store::{JobRecord, Store, TenantId};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::client::Client;
use crate::cycle::{self, CycleError, CycleOptions, Summary};
use crate::job::{JobSpec, parse_job};
use crate::quarantine;

/// How the scheduler runs.
#[derive(Clone)]
pub struct SchedulerConfig {
    /// How often the stored jobs are looked at: a job switched on (by the
    /// CLI, the API or another node) starts within this time.
    pub poll: Duration,
    /// How long a cycle's lease lasts without renewal: how long a dead
    /// node's job waits before another node takes it.
    pub lease: Duration,
    /// This node's name as a lease holder.
    pub holder: String,
    /// Where notification email goes out, if configured.
    pub mailer: Option<crate::notify::Mailer>,
    /// Where jobs sent through the admin API may connect.
    pub egress: Arc<crate::egress::Policy>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            poll: Duration::from_secs(2),
            lease: Duration::from_secs(60),
            holder: scimitar_store::lease::process_holder().to_string(),
            mailer: None,
            egress: Arc::default(),
        }
    }
}

/// The lease a job's cycles run under.
pub fn lease_name(tenant: TenantId, job: &str) -> String {
    format!("engine-job/{tenant}/{job}")
}

/// A stored job's configuration, parsed: the job file's text (secrets
/// sealed) and the directory its relative paths are relative to.
pub fn stored_spec(record: &JobRecord) -> Result<JobSpec, String> {
    let text = record
        .config
        .get("toml")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("job '{}' has no stored job file", record.name))?;
    let base = record.config.get("base").and_then(Value::as_str).unwrap_or(".");
    parse_job(text, Path::new(base)).map_err(|e| format!("job '{}': {e}", record.name))
}

/// The stored form of a job file: its text with secrets sealed, and the
/// directory its relative paths start from.
pub fn stored_config(sealed_toml: &str, base: &Path) -> Value {
    json!({"toml": sealed_toml, "base": base.display().to_string()})
}

/// Whether a stored job came through the admin API (`origin: api`): it
/// may connect where [`crate::egress::Policy`] permits only.
pub fn limited(record: &JobRecord) -> bool {
    record.config.get("origin").and_then(Value::as_str) == Some("api")
}

/// For a limited job: checks that its target and source resolve to
/// permitted addresses (before each cycle; the SCIM client checks again at
/// every connection).
pub async fn check_egress(spec: &JobSpec, policy: &crate::egress::Policy) -> Result<(), String> {
    policy
        .check_url(&spec.target.url)
        .await
        .map_err(|e| format!("target.url: {e}"))?;
    let source = match &spec.source {
        crate::job::SourceSpec::Ldap(l) => Some(l.url.clone()),
        crate::job::SourceSpec::Scim(s) => Some(s.url.clone()),
        crate::job::SourceSpec::File(_) => None,
    };
    if let Some(url) = source {
        policy.check_url(&url).await.map_err(|e| format!("source.url: {e}"))?;
    }
    Ok(())
}

/// When the job's next cycle is due, if it is `on`: at once if it never
/// ran, was just switched on or restarted (`run_now` in its last cycle),
/// else `interval` after the last cycle (or failed attempt) finished.
pub fn next_cycle(record: &JobRecord, interval: Duration) -> Option<OffsetDateTime> {
    if record.status == "quarantined" {
        return quarantine::State::of(record).and_then(|q| q.next_retry());
    }
    if record.status != "on" {
        return None;
    }
    let last = record.last_cycle.as_ref();
    let finished = last
        .filter(|l| l.get("run_now").and_then(Value::as_bool) != Some(true))
        .and_then(|l| l.get("finished"))
        .and_then(Value::as_str)
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
    Some(match finished {
        Some(f) => f + interval,
        None => OffsetDateTime::UNIX_EPOCH,
    })
}

/// Who takes a job's lease, and for how long without renewal.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub holder: &'a str,
    pub duration: Duration,
}

/// What happened to a request for one cycle under the job's lease.
#[derive(Debug)]
pub enum Leased {
    Ran(Summary),
    /// Another process holds the job's lease: it is running a cycle.
    Busy {
        holder: String,
        until: String,
    },
}

/// Runs one cycle of `spec` under the job's lease: taken first (or
/// `Busy`), renewed every third of its duration while the cycle runs,
/// released at the end. If a renewal fails — another node took the job
/// after this one stalled longer than the lease — the cycle is dropped
/// where it stands, as if the process had died; what it saved stays saved.
pub async fn run_leased(
    store: &dyn Store,
    tenant: TenantId,
    spec: &JobSpec,
    client: &Client,
    mut opts: CycleOptions,
    lease: Lease<'_>,
    still_due: impl FnOnce(&JobRecord) -> bool,
) -> Result<Option<Leased>, CycleError> {
    let Lease {
        holder,
        duration: lease,
    } = lease;
    let name = lease_name(tenant, &spec.name);
    let taken_at = tokio::time::Instant::now();
    let (now, until) = window(lease);
    if !store.try_lease(&name, holder, &now, &until).await? && !take_from_the_dead(store, &name, holder, &until).await?
    {
        let (holder, until) = store.lease_holder(&name).await?.unwrap_or_default();
        return Ok(Some(Leased::Busy { holder, until }));
    }
    // Another node may have finished a cycle between our look and the
    // lease: look again under it.
    let record = store.job(tenant, &spec.name).await?;
    if !record.as_ref().is_some_and(still_due) {
        release(store, &name, holder).await;
        return Ok(None);
    }
    let progress = Progress::default();
    let report = !opts.dry_run;
    if report {
        let (done, total) = (progress.done.clone(), progress.total.clone());
        let chained = opts.progress.take();
        opts.progress = Some(Arc::new(move |d, t| {
            done.store(d, Ordering::Relaxed);
            total.store(t, Ordering::Relaxed);
            if let Some(c) = &chained {
                c(d, t);
            }
        }));
    }
    // A limited job's source connects where its target may (a SCIM source
    // through the same resolver; see source::open_limited).
    let mut source = crate::source::open_limited(&spec.source, opts.egress.clone());
    let cycle = cycle::run_cycle(store, tenant, spec, source.as_mut(), client, opts);
    let reporter = async {
        if report {
            progress.report(store, tenant, &spec.name, holder).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    // Renewed every third of the lease. The cycle must never outlive its
    // lease, or another node could run the job at the same time: if no
    // renewal has succeeded by a sixth of the lease before it expires (a
    // stalled database, an overloaded node), the cycle is dropped first.
    let renew = async {
        let mut valid_until = taken_at + lease;
        loop {
            tokio::time::sleep_until(valid_until - lease * 2 / 3).await;
            let deadline = valid_until - lease / 6;
            let renewed = loop {
                let attempt = tokio::time::Instant::now();
                let (now, until) = window(lease);
                match tokio::time::timeout_at(deadline, store.try_lease(&name, holder, &now, &until)).await {
                    Ok(Ok(true)) => break attempt + lease,
                    Ok(Ok(false)) => return "another node took the job's lease".to_string(),
                    Ok(Err(e)) if tokio::time::Instant::now() + lease / 12 < deadline => {
                        tracing::warn!(lease = %name, error = %e, "renewing a job's lease failed; retrying");
                        tokio::time::sleep(lease / 12).await;
                    }
                    Ok(Err(e)) => return format!("the job's lease could not be renewed: {e}"),
                    Err(_) => return "the job's lease could not be renewed before it expired".to_string(),
                }
            };
            valid_until = renewed;
        }
    };
    let out = tokio::select! {
        r = cycle => r,
        why = renew => Err(CycleError::Job(format!("the cycle was abandoned: {why}; what it saved is kept"))),
        () = reporter => Err(CycleError::Job("the progress reporter stopped".into())),
    };
    if report && let Err(e) = store.set_job_progress(tenant, &spec.name, None).await {
        tracing::warn!(job = %spec.name, error = %e, "could not clear a finished cycle's progress");
    }
    release(store, &name, holder).await;
    out.map(|s| Some(Leased::Ran(s)))
}

/// How far a cycle has got, shared by the cycle (which counts) and the
/// reporter (which writes it for the console, on any node, to read).
#[derive(Default)]
struct Progress {
    done: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
}

/// How often a running cycle's progress is written (only when it moved).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

impl Progress {
    /// Writes `{done, total, started, updated, holder}` at once (0 of 0
    /// while the source is read), then whenever it moved, every
    /// [`PROGRESS_EVERY`]; never returns. A failed write is only logged:
    /// the progress bar is advice, the cycle goes on.
    async fn report(&self, store: &dyn Store, tenant: TenantId, job: &str, holder: &str) {
        let started = scimitar_store::now_utc();
        let mut last = None;
        loop {
            let now = (self.done.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed));
            if last != Some(now) {
                let value = json!({
                    "done": now.0,
                    "total": now.1,
                    "started": started,
                    "updated": scimitar_store::now_utc(),
                    "holder": holder,
                });
                if let Err(e) = store.set_job_progress(tenant, job, Some(&value)).await {
                    tracing::warn!(job, error = %e, "could not record a cycle's progress");
                }
                last = Some(now);
            }
            tokio::time::sleep(PROGRESS_EVERY).await;
        }
    }
}

/// Takes the lease from a holder known to be dead (a process of this
/// machine that has ended: a `sync run` killed with Ctrl-C, a server that
/// crashed and was restarted) without waiting for it to expire. The take
/// is the usual conditional `UPDATE`, evaluated as of just after the dead
/// holder's expiry: of several racers only the first succeeds, because its
/// own expiry is later than that.
async fn take_from_the_dead(store: &dyn Store, name: &str, holder: &str, until: &str) -> Result<bool, CycleError> {
    let Some((dead, expires)) = store.lease_holder(name).await? else {
        return Ok(false);
    };
    if !scimitar_store::lease::holder_is_dead(&dead) {
        return Ok(false);
    }
    let Ok(expires) = OffsetDateTime::parse(&expires, &Rfc3339) else {
        return Ok(false);
    };
    let just_after = scimitar_store::format_utc(expires + Duration::from_millis(1));
    // Our expiry must be later than `just_after`, or a second racer could
    // take the lease from us the same way.
    let floor = expires + Duration::from_secs(1);
    let until = match OffsetDateTime::parse(until, &Rfc3339) {
        Ok(u) if u > floor => until.to_string(),
        _ => scimitar_store::format_utc(floor),
    };
    let taken = store.try_lease(name, holder, &just_after, &until).await?;
    if taken {
        tracing::info!(lease = name, %dead, "took over the lease of a process that has ended");
    }
    Ok(taken)
}

/// Releases a lease by letting it expire now.
async fn release(store: &dyn Store, name: &str, holder: &str) {
    let (now, _) = window(Duration::ZERO);
    if let Err(e) = store.try_lease(name, holder, &now, &now).await {
        tracing::warn!(lease = name, error = %e, "could not release a job's lease; it expires by itself");
    }
}

/// Records a failed cycle: a failure that quarantines the job (a refused
/// token, a target that is not SCIM) puts it in quarantine or keeps it
/// there a retry later; a cycle held by the deletion threshold has already
/// quarantined it; any other failure is recorded as the last cycle, and the
/// next attempt comes an interval later.
pub async fn after_error(store: &dyn Store, tenant: TenantId, job: &str, kind: &str, error: &CycleError) {
    let reason = match quarantine::reason_of(error) {
        Some(quarantine::Reason::TooManyDeletes) => return,
        Some(reason) => Some(reason),
        // A quarantined job's retry that failed some other way (the target
        // went away) is still a failed retry.
        None => match store.job(tenant, job).await {
            Ok(Some(r)) => quarantine::State::of(&r).and_then(|q| quarantine::Reason::from_code(&q.reason)),
            _ => None,
        },
    };
    let Some(reason) = reason else {
        record_failure(store, tenant, job, kind, &error.to_string()).await;
        return;
    };
    let error = error.to_string();
    let failed = quarantine::Failed {
        kind,
        reason,
        error: &error,
        extra: Value::Null,
        now: OffsetDateTime::now_utc(),
    };
    if let Err(e) = quarantine::enter(store, tenant, job, failed).await {
        tracing::warn!(job, error = %e, "could not record the job's quarantine");
    }
}

/// Records a failed attempt as the job's last cycle: its error and when
/// it ended (the next attempt is an interval later); the watermark stays.
pub async fn record_failure(store: &dyn Store, tenant: TenantId, job: &str, kind: &str, error: &str) {
    let failed = json!({
        "job": job,
        "kind": kind,
        "error": error,
        "finished": scimitar_store::now_utc(),
    });
    if let Err(e) = store.set_last_cycle(tenant, job, &failed).await {
        tracing::warn!(job, error = %e, "could not record a failed cycle");
    }
}

/// The scheduler: runs until `shutdown` resolves. Cycles in progress are
/// dropped then (their leases expire; another node, or this one after a
/// restart, resumes them from what they saved).
pub async fn run(store: Arc<dyn Store>, cfg: SchedulerConfig, shutdown: impl Future<Output = ()>) {
    /// The tenant a job belongs to.
    struct Owner {
        id: TenantId,
        name: String,
    }
    let running: Arc<Mutex<HashSet<(TenantId, String)>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(cfg.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        while tasks.try_join_next().is_some() {}
        // One query for every tenant's jobs that are on or quarantined.
        let jobs = match store.active_jobs().await {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "the scheduler could not list the jobs that are on");
                continue;
            }
        };
        for (tenant_id, tenant_name, record) in jobs {
            let tenant = Owner {
                id: tenant_id,
                name: tenant_name,
            };
            if let Some(q) = quarantine::State::of(&record)
                && q.expired(OffsetDateTime::now_utc())
            {
                disable(&*store, tenant.id, &record, &q).await;
                if let Ok(spec) = stored_spec(&record) {
                    crate::notify::after_cycle(&*store, tenant.id, &tenant.name, &spec, cfg.mailer.as_ref()).await;
                }
                continue;
            }
            if record.status != "on" && record.status != "quarantined" {
                continue;
            }
            let key = (tenant.id, record.name.clone());
            if running.lock().map(|r| r.contains(&key)).unwrap_or(true) {
                continue;
            }
            let spec = match stored_spec(&record) {
                Ok(s) => s,
                Err(e) => {
                    // Said once per interval, not once per poll.
                    if next_cycle(&record, Duration::from_secs(40 * 60)).is_some_and(|t| t <= OffsetDateTime::now_utc())
                    {
                        record_failure(&*store, tenant.id, &record.name, "initial", &e).await;
                    }
                    continue;
                }
            };
            let interval = spec.settings.interval;
            if next_cycle(&record, interval).is_none_or(|t| t > OffsetDateTime::now_utc()) {
                continue;
            }
            if let Ok(mut r) = running.lock() {
                r.insert(key.clone());
            }
            let (store, running, cfg) = (store.clone(), running.clone(), cfg.clone());
            let (tid, tname) = (tenant.id, tenant.name.clone());
            let egress = limited(&record).then(|| cfg.egress.clone());
            tasks.spawn(async move {
                run_one(&*store, tid, &tname, spec, &cfg, egress).await;
                if let Ok(mut r) = running.lock() {
                    r.remove(&key);
                }
            });
        }
    }
    tasks.abort_all();
}

/// A job quarantined for 28 days is disabled, as Entra does: no more
/// retries until an administrator restarts it.
async fn disable(store: &dyn Store, tenant: TenantId, record: &JobRecord, q: &quarantine::State) {
    // As Entra: the escrow goes with the job (a restart evaluates every
    // object again).
    let dropped = match store.drop_escrow(tenant, &record.name).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(job = %record.name, error = %e, "could not drop a disabled job's escrow");
            0
        }
    };
    let mut last = record.last_cycle.clone().unwrap_or(Value::Null);
    if let Some(l) = last.as_object_mut() {
        l.insert(
            "disabled".into(),
            json!({
                "at": scimitar_store::now_utc(),
                "why": format!(
                    "quarantined since {} ({}) without a successful retry: disabled after 28 days; restart the job once the cause is fixed",
                    scimitar_store::format_utc(q.since),
                    q.reason
                ),
                "escrow_dropped": dropped,
            }),
        );
    }
    let done = store.set_last_cycle(tenant, &record.name, &last).await.is_ok()
        && store.set_job_status(tenant, &record.name, "disabled").await.is_ok();
    if done {
        tracing::warn!(job = %record.name, "provisioning job disabled after 28 days in quarantine");
    }
}

/// One cycle of a job on this node. `egress`: the job came through the
/// admin API and may connect where the policy permits only.
async fn run_one(
    store: &dyn Store,
    tenant: TenantId,
    tenant_name: &str,
    spec: JobSpec,
    cfg: &SchedulerConfig,
    egress: Option<Arc<crate::egress::Policy>>,
) {
    let kind = match store.job(tenant, &spec.name).await {
        Ok(Some(j)) if j.watermark.is_some() => "incremental",
        _ => "initial",
    };
    if let Some(policy) = &egress
        && let Err(e) = check_egress(&spec, policy).await
    {
        tracing::warn!(tenant = tenant_name, job = %spec.name, error = %e, "provisioning job refused a destination");
        record_failure(store, tenant, &spec.name, kind, &e).await;
        return;
    }
    let client = match spec
        .target
        .token
        .reveal()
        .map_err(|e| format!("the target's Secret Token: {e}"))
        .and_then(|token| {
            Client::limited(
                &spec.target.url,
                &token,
                spec.settings.concurrency,
                spec.settings.request_timeout,
                egress.clone(),
            )
        }) {
        Ok(c) => c,
        Err(e) => {
            record_failure(store, tenant, &spec.name, kind, &e).await;
            return;
        }
    };
    let interval = spec.settings.interval;
    let due = |r: &JobRecord| next_cycle(r, interval).is_some_and(|t| t <= OffsetDateTime::now_utc());
    let opts = CycleOptions {
        egress,
        ..CycleOptions::default()
    };
    match run_leased(
        store,
        tenant,
        &spec,
        &client,
        opts,
        Lease {
            holder: &cfg.holder,
            duration: cfg.lease,
        },
        due,
    )
    .await
    {
        Ok(Some(Leased::Ran(s))) => tracing::info!(
            tenant = tenant_name,
            job = %spec.name,
            kind = %s.kind,
            created = s.created,
            updated = s.updated,
            disabled = s.disabled,
            deleted = s.deleted,
            failed = s.failed,
            requests = s.requests,
            duration_ms = s.duration_ms,
            "provisioning cycle finished"
        ),
        Ok(Some(Leased::Busy { holder, .. })) => {
            tracing::debug!(tenant = tenant_name, job = %spec.name, %holder, "the job runs on another node")
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(tenant = tenant_name, job = %spec.name, error = %e, "provisioning cycle failed");
            after_error(store, tenant, &spec.name, kind, &e).await;
        }
    }
    crate::notify::after_cycle(store, tenant, tenant_name, &spec, cfg.mailer.as_ref()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: &str, last: Option<Value>) -> JobRecord {
        JobRecord {
            name: "hr".into(),
            config: Value::Null,
            status: status.into(),
            watermark: None,
            last_cycle: last,
            created: String::new(),
            updated: String::new(),
        }
    }

    #[test]
    fn when_the_next_cycle_is_due() {
        let at = |s: &str| OffsetDateTime::parse(s, &Rfc3339).unwrap();
        let forty = Duration::from_secs(40 * 60);
        let finished = json!({"finished": "2030-01-01T10:00:00.000Z", "created": 3});
        let cases: Vec<(&str, Option<Value>, Option<OffsetDateTime>)> = vec![
            ("off", Some(finished.clone()), None),
            ("off", None, None),
            ("on", None, Some(OffsetDateTime::UNIX_EPOCH)),
            ("on", Some(finished.clone()), Some(at("2030-01-01T10:40:00Z"))),
            (
                "on",
                Some(json!({"error": "refused", "finished": "2030-01-01T10:00:00Z"})),
                Some(at("2030-01-01T10:40:00Z")),
            ),
            (
                "on",
                Some(json!({"finished": "2030-01-01T10:00:00Z", "run_now": true})),
                Some(OffsetDateTime::UNIX_EPOCH),
            ),
            ("on", Some(json!({"created": 1})), Some(OffsetDateTime::UNIX_EPOCH)),
            ("quarantined", Some(finished), None),
            (
                "quarantined",
                Some(json!({"finished": "2030-01-01T10:00:00Z", "quarantine": {
                    "reason": "EncounteredQuarantineException", "since": "2030-01-01T09:00:00Z", "retries": 2}})),
                Some(at("2030-01-02T09:00:00Z")),
            ),
            (
                "quarantined",
                Some(json!({"quarantine": {"reason": "TooManyDeletes", "since": "2030-01-01T09:00:00Z"}})),
                None,
            ),
            ("disabled", Some(json!({"finished": "2030-01-01T10:00:00Z"})), None),
        ];
        for (status, last, want) in cases {
            assert_eq!(
                next_cycle(&record(status, last.clone()), forty),
                want,
                "{status} {last:?}"
            );
        }
    }
}
