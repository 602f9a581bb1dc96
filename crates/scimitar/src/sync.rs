//! `scimitar sync …` (the provisioning engine) and `scimitar expression eval`.

use scimitar_app::jobs::OnDemandObject;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use scimitar_app::jobs::{JobFile, JobFileContext};
use scimitar_app::{Actor, App};
use scimitar_engine::client::Client;
use scimitar_engine::cycle::{self, CycleOptions};
use scimitar_engine::job::{JobSpec, parse_job};
use scimitar_engine::schedule::{self, Leased};
use scimitar_store::{EngineLogQuery, Tenant};
use serde_json::{Value, json};

use crate::app_err;

/// How long `sync run` holds a job's lease without renewal (renewed every
/// third of it), as the servers' default.
const LEASE: Duration = Duration::from_secs(60);

#[derive(Subcommand)]
pub enum SyncCmd {
    /// Store (or update) a job from its file and run it: one cycle with --once, else a cycle every interval until stopped.
    Run {
        /// The job file (TOML; see docs/engine.md).
        #[arg(long)]
        job: PathBuf,
        /// The tenant the job belongs to.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Run one cycle and exit.
        #[arg(long)]
        once: bool,
        /// Compute and log what would be sent; send no write and keep no state.
        #[arg(long)]
        dry_run: bool,
        /// Time between cycles (overrides the job's `interval`), e.g. 40m, 5s.
        #[arg(long)]
        interval: Option<String>,
    },
    /// Store (or update) a job from its file without running it; `sync start` switches it on in the running servers.
    Save {
        /// The job file (TOML; see docs/engine.md).
        #[arg(long)]
        job: PathBuf,
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Provisioning Status On: the servers (`scimitar serve`) run a cycle at once, then one every interval.
    Start {
        /// The job's name.
        #[arg(long)]
        job: String,
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Provisioning Status Off: the cycle in progress finishes, no other starts.
    Stop {
        /// The job's name.
        #[arg(long)]
        job: String,
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Allow deletes: a job quarantined by its deletion threshold goes back to its status, and its next cycle sends the disables and deletes.
    AllowDeletes {
        /// The job's name.
        #[arg(long)]
        job: String,
        #[arg(long, default_value = "default")]
        tenant: String,
    },
    /// Provision on demand: one user, or one group with at most 5 members, now, outside the cycle; prints each step and its result.
    ProvisionOnDemand {
        /// The job's name (a stored job).
        #[arg(long)]
        job: String,
        #[arg(long, default_value = "default")]
        tenant: String,
        /// The user: its anchor (entryUUID, key column, SCIM id) or, for LDAP, its DN.
        #[arg(long, conflicts_with = "group", required_unless_present = "group")]
        user: Option<String>,
        /// The group: its anchor or, for LDAP, its DN.
        #[arg(long)]
        group: Option<String>,
    },
    /// Test Connection: Entra's probe against the job's target; says whether the URL, the token or the answer is wrong.
    TestConnection {
        #[arg(long)]
        job: PathBuf,
    },
    /// The provisioning log of a job, newest first.
    Logs {
        /// The job's name.
        #[arg(long)]
        job: String,
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Only this cycle.
        #[arg(long)]
        cycle: Option<String>,
        /// Only this status: success, failure, skipped, warning.
        #[arg(long)]
        status: Option<String>,
        /// Only this action: create, update, disable, delete, other.
        #[arg(long)]
        action: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Clear a job's watermark: its next cycle evaluates everything again (at once, if the job is on).
    Restart {
        #[arg(long)]
        job: String,
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Also forget the links to target objects (every object is matched again).
        #[arg(long)]
        reset_anchors: bool,
    },
    /// The tenant's jobs: status, last cycle, next cycle, and the node running one now.
    Jobs {
        #[arg(long, default_value = "default")]
        tenant: String,
    },
}

#[derive(Subcommand)]
pub enum ExpressionCmd {
    /// Evaluate an expression against a source object, as Entra's expression builder does.
    Eval {
        /// The expression, e.g. 'Join(" ", [givenName], [surname])'.
        expression: String,
        /// A JSON object of source attributes (`-`: standard input).
        #[arg(long)]
        object: PathBuf,
        /// What Now() returns (RFC 3339; default: the current time).
        #[arg(long)]
        now: Option<String>,
        /// What DefaultDomain() returns.
        #[arg(long)]
        default_domain: Option<String>,
    },
}

/// Stores a job file (secrets sealed; relative paths kept relative to the
/// file's directory) in the tenant, audited.
async fn save_job(app: &App, t: &Tenant, path: &Path, text: &str) -> Result<()> {
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
    let job = app
        .job_files()
        .map_err(app_err)?
        .compile(
            JobFile::Toml(text),
            &JobFileContext {
                base: &base,
                previous: None,
                server_local: true,
            },
        )
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    app.save_job(&Actor::Cli, t, &job.name, &job.config)
        .await
        .map_err(app_err)?;
    Ok(())
}

/// A job file, parsed and checked (the error names the line and key).
fn load_job(path: &Path) -> Result<(JobSpec, String)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading job file {}", path.display()))?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let spec = parse_job(&text, base).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok((spec, text))
}

fn client_for(spec: &JobSpec) -> Result<Client> {
    let token = spec
        .target
        .token
        .reveal()
        .map_err(|e| anyhow::anyhow!("the target's Secret Token: {e}"))?;
    Client::with_timeout(
        &spec.target.url,
        &token,
        spec.settings.concurrency,
        spec.settings.request_timeout,
    )
    .map_err(anyhow::Error::msg)
}

/// The job's tenant. `default` is created on first use, as `serve` does on
/// a fresh database: the engine may keep its state in a database no server
/// has opened yet.
async fn tenant(app: &App, name: &str) -> Result<Tenant> {
    if name == "default" {
        return app.tenant_or_create(&Actor::Cli, name).await.map_err(app_err);
    }
    app.tenant(name).await.map_err(app_err)
}

pub async fn sync_cmd(
    app: Arc<App>,
    cmd: SyncCmd,
    as_json: bool,
    mailer: Option<scimitar_engine::notify::Mailer>,
) -> Result<()> {
    match cmd {
        SyncCmd::Run {
            job,
            tenant: tenant_name,
            once,
            dry_run,
            interval,
        } => {
            let (spec, text) = load_job(&job)?;
            let t = tenant(&app, &tenant_name).await?;
            save_job(&app, &t, &job, &text).await?;
            let interval = match interval {
                Some(i) => scimitar_engine::job::parse_duration(&i)
                    .with_context(|| format!("--interval '{i}' is not a duration (e.g. 40m, 5s)"))?,
                None => spec.settings.interval,
            };
            let client = client_for(&spec)?;
            let mut source = scimitar_engine::source::open(&spec.source);
            let holder = scimitar_store::lease::process_holder();
            loop {
                let bar = progress(as_json);
                let opts = CycleOptions {
                    dry_run,
                    progress: bar.clone().map(|b| {
                        Arc::new(move |done: usize, total: usize| {
                            b.set_length(total as u64);
                            b.set_position(done as u64);
                        }) as Arc<dyn Fn(usize, usize) + Send + Sync>
                    }),
                    ..CycleOptions::default()
                };
                // A dry run stores nothing and needs no lease; a real cycle
                // runs under the job's lease, as the servers' do.
                let result = if dry_run {
                    cycle::run_cycle(&*app.store, t.id, &spec, source.as_mut(), &client, opts)
                        .await
                        .map(|s| Some(Leased::Ran(s)))
                } else {
                    {
                        let lease = schedule::Lease {
                            holder,
                            duration: LEASE,
                        };
                        schedule::run_leased(&*app.store, t.id, &spec, &client, opts, lease, |_| true).await
                    }
                };
                if let Some(b) = bar {
                    b.finish_and_clear();
                }
                if let Err(e) = &result
                    && !dry_run
                {
                    let kind = match app.store.job(t.id, &spec.name).await {
                        Ok(Some(j)) if j.watermark.is_some() => "incremental",
                        _ => "initial",
                    };
                    schedule::after_error(&*app.store, t.id, &spec.name, kind, e).await;
                }
                if !dry_run {
                    scimitar_engine::notify::after_cycle(&*app.store, t.id, &t.name, &spec, mailer.as_ref()).await;
                }
                match result {
                    Ok(Some(Leased::Busy { holder, until })) => {
                        let msg = format!(
                            "a cycle of '{}' is running elsewhere ({holder}, its lease runs until {until}); this one is skipped",
                            spec.name
                        );
                        if once {
                            bail!("{msg}");
                        }
                        eprintln!("{msg}");
                    }
                    Ok(None) => {}
                    Ok(Some(Leased::Ran(s))) => {
                        if as_json {
                            out!("{}", serde_json::to_string(&s).unwrap_or_default());
                        } else {
                            out!(
                                "{} cycle of '{}'{}: {} created, {} updated, {} disabled, {} deleted, {} skipped, {} failed; {} requests in {:.1} s",
                                s.kind,
                                s.job,
                                if s.dry_run { " (dry run: nothing sent)" } else { "" },
                                s.created,
                                s.updated,
                                s.disabled,
                                s.deleted,
                                s.skipped,
                                s.failed,
                                s.requests,
                                s.duration_ms as f64 / 1000.0
                            );
                        }
                    }
                    Err(e) if once => bail!("{e}"),
                    Err(e) => eprintln!("the cycle failed: {e}; the next one runs in {}", human(interval)),
                }
                if once {
                    return Ok(());
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = crate::shutdown_signal() => return Ok(()),
                }
            }
        }
        SyncCmd::Save {
            job,
            tenant: tenant_name,
        } => {
            let (spec, text) = load_job(&job)?;
            let t = tenant(&app, &tenant_name).await?;
            save_job(&app, &t, &job, &text).await?;
            let record = app.job(&t, &spec.name).await.map_err(app_err)?;
            if as_json {
                out!(
                    "{}",
                    json!({"job": spec.name, "tenant": t.name, "status": record.status})
                );
            } else {
                out!(
                    "Saved job '{}' in tenant '{}' (Provisioning Status: {}). Switch it on with: scimitar sync start --job {}{}",
                    spec.name,
                    t.name,
                    record.status,
                    spec.name,
                    if t.name == "default" {
                        String::new()
                    } else {
                        format!(" --tenant {}", t.name)
                    }
                );
            }
            Ok(())
        }
        SyncCmd::Start {
            job,
            tenant: tenant_name,
        } => switch(&app, &job, &tenant_name, true, as_json).await,
        SyncCmd::Stop {
            job,
            tenant: tenant_name,
        } => switch(&app, &job, &tenant_name, false, as_json).await,
        SyncCmd::ProvisionOnDemand {
            job,
            tenant: tenant_name,
            user,
            group,
        } => {
            let t = tenant(&app, &tenant_name).await?;
            let object = match (&user, &group) {
                (Some(u), _) => OnDemandObject::User(u),
                (None, Some(g)) => OnDemandObject::Group(g),
                (None, None) => bail!("give --user or --group"),
            };
            on_demand(&app, &t, &job, object, as_json).await
        }
        SyncCmd::AllowDeletes {
            job,
            tenant: tenant_name,
        } => {
            let t = tenant(&app, &tenant_name).await?;
            let record = app.allow_deletes(&Actor::Cli, &t, &job).await.map_err(app_err)?;
            if as_json {
                out!(
                    "{}",
                    json!({"job": job, "tenant": t.name, "status": record.status, "allow_deletes": true})
                );
            } else if record.status == "on" {
                out!("Deletes allowed: '{job}' is on again and its next cycle, at once, sends them.");
            } else {
                out!("Deletes allowed: the next cycle of '{job}' (`scimitar sync run`) sends them.");
            }
            Ok(())
        }
        SyncCmd::TestConnection { job } => {
            let (spec, _) = load_job(&job)?;
            let client = client_for(&spec)?;
            match cycle::test_connection(&spec, &client).await {
                Ok(()) => {
                    if as_json {
                        out!("{}", json!({"job": spec.name, "target": spec.target.url, "ok": true}));
                    } else {
                        out!(
                            "The connection to {} works: the token is accepted and the SCIM answers are right.",
                            spec.target.url
                        );
                    }
                    Ok(())
                }
                Err(e) => bail!("{e}"),
            }
        }
        SyncCmd::Logs {
            job,
            tenant: tenant_name,
            cycle,
            status,
            action,
            limit,
        } => {
            let t = tenant(&app, &tenant_name).await?;
            app.job(&t, &job).await.map_err(app_err)?;
            let query = EngineLogQuery {
                cycle_id: cycle,
                status,
                action,
                before_id: None,
                limit: limit.clamp(1, 100_000),
            };
            let records = app
                .store
                .engine_log(t.id, &job, query)
                .await
                .map_err(anyhow::Error::msg)?;
            for r in records {
                if as_json {
                    out!("{}", r.record);
                } else {
                    let err = r
                        .record
                        .pointer("/provisioningStatusInfo/errorInformation/errorCode")
                        .and_then(Value::as_str)
                        .map(|c| format!("\t{c}"))
                        .unwrap_or_default();
                    let name = r
                        .record
                        .pointer("/sourceIdentity/displayName")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    out!("{}\t{}\t{}\t{name}{err}", r.time, r.action, r.status);
                }
            }
            Ok(())
        }
        SyncCmd::Restart {
            job,
            tenant: tenant_name,
            reset_anchors,
        } => {
            let t = tenant(&app, &tenant_name).await?;
            app.restart_job(&Actor::Cli, &t, &job, reset_anchors)
                .await
                .map_err(app_err)?;
            if as_json {
                out!(
                    "{}",
                    json!({"job": job, "restarted": true, "reset_anchors": reset_anchors})
                );
            } else {
                out!(
                    "Restarted '{job}': its next cycle evaluates everything{}.",
                    if reset_anchors {
                        " and matches every object again"
                    } else {
                        ""
                    }
                );
            }
            Ok(())
        }
        SyncCmd::Jobs { tenant: tenant_name } => {
            let t = tenant(&app, &tenant_name).await?;
            let list = app.job_views(&t).await.map_err(app_err)?;
            if as_json {
                out!("{}", json!({"jobs": list}));
            } else {
                for j in list {
                    let s = |p: &str| j.pointer(p).and_then(Value::as_str);
                    let c = j.get("last_cycle").unwrap_or(&Value::Null);
                    let n = |k: &str| c.get(k).and_then(Value::as_u64).unwrap_or(0);
                    let last = if c.get("kind").is_none() {
                        "never ran".to_string()
                    } else if let Some(e) = c.get("error").and_then(Value::as_str) {
                        format!("last cycle failed at {}: {e}", s("/last_cycle/finished").unwrap_or("?"))
                    } else {
                        format!(
                            "last cycle {} at {}: {} created, {} updated, {} disabled, {} deleted, {} failed, {} requests in {} ms",
                            c.get("kind").and_then(Value::as_str).unwrap_or("?"),
                            s("/last_cycle/finished").unwrap_or("?"),
                            n("created"),
                            n("updated"),
                            n("disabled"),
                            n("deleted"),
                            n("failed"),
                            n("requests"),
                            n("duration_ms")
                        )
                    };
                    let next = match (s("/running/holder"), s("/next_cycle")) {
                        (Some(h), _) => format!("running now on {h}"),
                        (None, Some(t)) => format!("next cycle {t}"),
                        (None, None) => "no cycle scheduled".into(),
                    };
                    out!(
                        "{}\t{}\t{last}; {next}",
                        s("/name").unwrap_or_default(),
                        s("/status").unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
    }
}

/// `sync provision-on-demand`: the object's steps, as Entra's portal shows
/// them. Runs under the job's lease (not beside a cycle of it); audited.
async fn on_demand(app: &App, t: &Tenant, job: &str, object: OnDemandObject<'_>, as_json: bool) -> Result<()> {
    let run = app
        .provision_on_demand(&Actor::Cli, t, job, object)
        .await
        .map_err(app_err)?;
    let records: Vec<Value> = run
        .get("records")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if as_json {
        out!("{run}");
        return Ok(());
    }
    if records.is_empty() {
        let (kind, name) = match object {
            OnDemandObject::User(n) => ("user", n),
            OnDemandObject::Group(n) => ("group", n),
        };
        out!("Nothing to provision for {kind} '{name}'.");
    }
    for rec in &records {
        let s = |p: &str| rec.pointer(p).and_then(Value::as_str).unwrap_or_default();
        out!(
            "{} '{}': {} ({})",
            s("/sourceIdentity/identityType"),
            s("/sourceIdentity/displayName"),
            s("/provisioningAction"),
            s("/provisioningStatusInfo/status")
        );
        for step in rec
            .get("provisioningSteps")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let g = |k: &str| step.get(k).and_then(Value::as_str).unwrap_or_default();
            out!("  [{}] {}: {}", g("status"), g("name"), g("description"));
        }
        for m in rec
            .get("modifiedProperties")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let g = |k: &str| m.get(k).map(|v| v.to_string()).unwrap_or_default();
            out!("    {}: {} -> {}", g("displayName"), g("oldValue"), g("newValue"));
        }
    }
    Ok(())
}

/// `sync start` / `sync stop`.
async fn switch(app: &App, job: &str, tenant_name: &str, on: bool, as_json: bool) -> Result<()> {
    let t = tenant(app, tenant_name).await?;
    let record = app.set_job_on(&Actor::Cli, &t, job, on).await.map_err(app_err)?;
    if as_json {
        out!("{}", json!({"job": job, "tenant": t.name, "status": record.status}));
    } else if on {
        out!(
            "'{job}' is on: a running `scimitar serve` starts its cycle within seconds, then runs one every {}.",
            schedule::stored_spec(&record)
                .map(|s| human(s.settings.interval))
                .unwrap_or_else(|_| "interval".into())
        );
    } else {
        out!("'{job}' is off: a cycle in progress finishes; no other starts.");
    }
    Ok(())
}

fn progress(as_json: bool) -> Option<ProgressBar> {
    if as_json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg:>8} [{bar:40}] {pos}/{len} objects ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message("syncing");
    Some(bar)
}

pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s >= 60 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

pub fn expression_cmd(cmd: ExpressionCmd) -> Result<()> {
    let ExpressionCmd::Eval {
        expression,
        object,
        now,
        default_domain,
    } = cmd;
    let text = if object.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(&object).with_context(|| format!("reading {}", object.display()))?
    };
    let object: Value = serde_json::from_str(&text).context("the object is not JSON")?;
    let now = match now {
        Some(n) => time::OffsetDateTime::parse(&n, &time::format_description::well_known::Rfc3339)
            .with_context(|| format!("--now '{n}' is not an RFC 3339 time"))?,
        None => time::OffsetDateTime::now_utc(),
    };
    let mut rng = || {
        let mut b = [0u8; 8];
        let _ = getrandom::fill(&mut b);
        u64::from_le_bytes(b)
    };
    let mut env = scimitar_expression::Env {
        now,
        rng: &mut rng,
        default_domain: default_domain.as_deref(),
    };
    match scimitar_expression::eval_json(&expression, &object, &mut env) {
        Ok(v) => {
            out!("{v}");
            Ok(())
        }
        Err(e) => bail!("{e}"),
    }
}
