//! Provisioning jobs as administrative objects: storing a job's
//! configuration (its secrets already sealed by the caller), restarting and
//! deleting it, each audited. Running jobs is the engine's business
//! (`scimitar-engine`); this layer does not depend on it. What it needs of
//! the engine — compiling a job file, when a stored job runs next — comes
//! through [`JobFiles`], which the binary implements and registers with
//! [`App::set_job_files`].

use std::path::Path;
use std::sync::Arc;

use scimitar_protocol::ScimError;
use scimitar_store::{JobRecord, Tenant, TenantId};
use serde_json::{Value, json};

use crate::{Actor, App, scim_error};

/// A job file as a client sent it.
#[derive(Debug, Clone, Copy)]
pub enum JobFile<'a> {
    /// The job file's TOML text.
    Toml(&'a str),
    /// The same keys as JSON; converted to TOML, then read by the same
    /// parser, so that its mistakes are reported the same way.
    Json(&'a Value),
}

/// A mistake in a job file: where (line, key) and what. Displayed as the
/// engine's parser words it (`line 3, key `interval`: …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFileError {
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl std::fmt::Display for JobFileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}")?,
            None => f.write_str("job")?,
        }
        if let Some(k) = &self.key {
            write!(f, ", key `{k}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A job file, checked, with its secrets sealed: what [`App::save_job`]
/// stores under `name`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledJob {
    pub name: String,
    pub config: Value,
}

/// What only the engine can say of a stored job.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobSchedule {
    /// The job's `interval`, if its stored file still parses.
    pub interval_seconds: Option<u64>,
    /// When its next cycle is due (RFC 3339), if it is on.
    pub next_cycle: Option<String>,
    /// Why the stored job file no longer parses.
    pub error: Option<String>,
    /// The lease its cycles run under (who runs one now).
    pub lease: String,
}

/// What a job file is compiled against.
#[derive(Debug, Clone, Copy)]
pub struct JobFileContext<'a> {
    /// Where its relative paths start.
    pub base: &'a Path,
    /// The stored configuration of the job it replaces: a secret written
    /// `"(sealed)"` (as a stored job is shown) keeps that job's sealed value.
    pub previous: Option<&'a Value>,
    /// Whether it may name the server's own files and environment (a file
    /// source, `_file` and `_env` secrets). The operator on the server (the
    /// CLI) may; a tenant's admin token may not, or a job could read the
    /// server's key file or environment and send them to its target.
    pub server_local: bool,
}

/// A job as the console's Provisioning page shows it: what each setting
/// is, the effective mappings (the template's with the job's changes) and
/// the scoping filters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobOutline {
    /// `ldap`, `file` or `scim`.
    pub source_kind: String,
    /// The source's URL (LDAP or SCIM), if it has one.
    pub source_url: Option<String>,
    /// The Tenant URL.
    pub target_url: String,
    pub dialect: String,
    /// `assigned` or `all`.
    pub scope_mode: String,
    pub scope_groups: Vec<String>,
    pub scope_users: Vec<String>,
    /// The job file's `interval`, as written (`40m`).
    pub interval: String,
    pub deletion_threshold: u64,
    pub notification_email: Option<String>,
    pub users: ObjectOutline,
    pub groups: ObjectOutline,
    /// The source attributes a mapping or filter can name.
    pub source_attributes: Vec<String>,
    /// The scoping operators (Entra's names).
    pub operators: Vec<String>,
}

/// One object type's part of a [`JobOutline`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectOutline {
    /// Whether this object type is provisioned at all.
    pub enabled: bool,
    pub create: bool,
    pub update: bool,
    pub delete: bool,
    pub mappings: Vec<MappingOutline>,
    /// Scoping filters (ORed), each a list of clauses (ANDed).
    pub scoping: Vec<Vec<ClauseOutline>>,
}

/// One attribute mapping, as Entra's mapping editor shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MappingOutline {
    /// The target attribute (`userName`, `emails[type eq "work"].value`).
    pub target: String,
    /// `direct`, `constant`, `expression` or `none`.
    pub kind: String,
    /// The source attribute, the constant or the expression's text.
    pub source: String,
    /// Default value if null (create only).
    pub default: Option<String>,
    /// `always` or `create`.
    pub apply: String,
    /// Matching precedence (1 is tried first).
    pub matching: Option<u32>,
}

/// One scoping clause.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClauseOutline {
    pub attribute: String,
    /// Entra's operator name (`EQUALS`, `IS TRUE`, `REGEX MATCH`, …).
    pub operator: String,
    pub value: String,
}

/// `user` or `group`: which object type of a job an edit is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobObject {
    User,
    Group,
}

impl JobObject {
    pub fn parse(s: &str) -> Option<JobObject> {
        match s {
            "user" | "users" => Some(JobObject::User),
            "group" | "groups" => Some(JobObject::Group),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            JobObject::User => "user",
            JobObject::Group => "group",
        }
    }
}

/// Provisioning settings, as the console's Settings form sends them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSettingsEdit {
    /// `assigned` or `all`.
    pub scope_mode: String,
    pub interval: String,
    pub deletion_threshold: u64,
    /// Empty: no notification email.
    pub notification_email: String,
    /// Target object actions: create, update, delete for users, then groups.
    pub user_actions: [bool; 3],
    pub group_actions: [bool; 3],
}

/// A change to one part of a job file, made by the console's forms. It is
/// applied to the job file as shown (secrets `"(sealed)"`) and stored
/// through the same checks as a whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEdit {
    /// Admin Credentials: the Tenant URL, and a new Secret Token if given
    /// (`None` keeps the stored one; it is never shown back).
    Credentials {
        url: String,
        token: Option<String>,
    },
    Settings(JobSettingsEdit),
    /// Adds or replaces the mapping of `mapping.target`.
    Mapping {
        object: JobObject,
        mapping: MappingOutline,
    },
    /// Removes the mapping of a target (the template's too).
    RemoveMapping {
        object: JobObject,
        target: String,
    },
    /// Adds a clause to scoping filter `filter` (a new filter if `None` or
    /// past the last).
    AddClause {
        object: JobObject,
        filter: Option<usize>,
        clause: ClauseOutline,
    },
    /// Removes clause `clause` of filter `filter` (the filter too, if it
    /// was its last).
    RemoveClause {
        object: JobObject,
        filter: usize,
        clause: usize,
    },
}

impl JobEdit {
    /// What the audit log says changed.
    pub fn describe(&self) -> String {
        match self {
            JobEdit::Credentials { token: Some(_), .. } => "admin credentials (Tenant URL, Secret Token)".into(),
            JobEdit::Credentials { token: None, .. } => "admin credentials (Tenant URL)".into(),
            JobEdit::Settings(_) => "settings".into(),
            JobEdit::Mapping { object, mapping } => format!("{} mapping of {}", object.as_str(), mapping.target),
            JobEdit::RemoveMapping { object, target } => format!("{} mapping of {} removed", object.as_str(), target),
            JobEdit::AddClause { object, .. } | JobEdit::RemoveClause { object, .. } => {
                format!("{} scoping filters", object.as_str())
            }
        }
    }
}

/// A mistake in an expression: where and what (line and column from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpressionError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

/// Which object to provision on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDemandObject<'a> {
    /// A user, by anchor or source reference (an LDAP DN, a file's key).
    User(&'a str),
    /// A group with its members (at most 5, as in Entra).
    Group(&'a str),
}

/// A boxed future: [`JobFiles`] is used as a trait object.
pub type JobFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The engine's knowledge of job files, as the application layer needs it.
/// Implemented by the binary over `scimitar-engine` and registered at
/// start-up, so that the CLI, the admin API and the console compile,
/// describe and run jobs one way, while the server, the console and this
/// crate do not depend on the engine.
pub trait JobFiles: Send + Sync {
    /// Checks a job file and seals its inline secrets.
    fn compile(&self, file: JobFile<'_>, cx: &JobFileContext<'_>) -> Result<CompiledJob, JobFileError>;

    /// The stored job's interval, next cycle and lease.
    fn schedule(&self, tenant: TenantId, record: &JobRecord) -> JobSchedule;

    /// The stored job file with every sealed value shown as `"(sealed)"`.
    fn shown(&self, record: &JobRecord) -> Result<String, String>;

    /// The stored job, outlined for the console.
    fn outline(&self, record: &JobRecord) -> Result<JobOutline, String>;

    /// `text` (a job file as shown) with one change made.
    fn edit(&self, text: &str, edit: &JobEdit) -> Result<String, JobFileError>;

    /// Which settings differ between two stored configurations
    /// (`target.url`, `mappings.user`, `interval`, …), for the audit log.
    fn changes(&self, before: &Value, after: &Value) -> Vec<String>;

    /// Evaluates an expression against a source object (a JSON object of
    /// source attributes) as a cycle of the job would.
    fn preview(&self, record: &JobRecord, expression: &str, object: &Value) -> Result<Value, ExpressionError>;

    /// Entra's Test Connection against the stored job's target.
    fn test_connection<'a>(&'a self, record: &'a JobRecord) -> JobFuture<'a, Result<(), String>>;

    /// Provisions one object now, outside the cycle (under the job's
    /// lease); returns the run's summary (its `cycle_id` names the log
    /// records that hold the steps).
    fn provision_on_demand<'a>(
        &'a self,
        store: &'a dyn scimitar_store::Store,
        tenant: TenantId,
        record: &'a JobRecord,
        object: OnDemandObject<'a>,
    ) -> JobFuture<'a, Result<Value, String>>;
}

impl App {
    /// Creates a job or replaces its configuration (its state is kept);
    /// audits `job.created` or `job.changed` (only when it changed).
    pub async fn save_job(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        name: &str,
        config: &Value,
    ) -> Result<JobRecord, ScimError> {
        let before = self.store.job(tenant.id, name).await.map_err(scim_error)?;
        let record = self.store.put_job(tenant.id, name, config).await.map_err(scim_error)?;
        match before {
            None => self.audit(actor, Some(tenant.id), "job.created", Some(name)).await,
            Some(b) if b.config != *config => {
                let changed = self
                    .job_files
                    .get()
                    .map(|f| f.changes(&b.config, config))
                    .unwrap_or_default();
                let detail = (!changed.is_empty()).then(|| format!("changed: {}", changed.join(", ")));
                self.audit_detail(actor, Some(tenant.id), "job.changed", Some(name), detail)
                    .await;
            }
            Some(_) => {}
        }
        Ok(record)
    }

    /// A stored job, or 404.
    pub async fn job(&self, tenant: &Tenant, name: &str) -> Result<JobRecord, ScimError> {
        self.store
            .job(tenant.id, name)
            .await
            .map_err(scim_error)?
            .ok_or_else(|| ScimError::not_found(format!("no job named '{name}' in tenant '{}'", tenant.name)))
    }

    /// Forgets the job's watermark (its next cycle evaluates everything)
    /// and, with `reset_anchors`, its links to target objects too; ends a
    /// quarantine or a disable (the job returns to the status it had before
    /// it), and makes the next cycle due at once.
    pub async fn restart_job(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        name: &str,
        reset_anchors: bool,
    ) -> Result<(), ScimError> {
        if !self
            .store
            .restart_job(tenant.id, name, reset_anchors)
            .await
            .map_err(scim_error)?
        {
            return Err(ScimError::not_found(format!(
                "no job named '{name}' in tenant '{}'",
                tenant.name
            )));
        }
        let job = self.job(tenant, name).await?;
        // A restart ends a quarantine, and revives a job disabled after
        // four weeks of one.
        if job.status == "quarantined" || job.status == "disabled" {
            let previous = status_before_quarantine(&job);
            self.store
                .set_job_status(tenant.id, name, &previous)
                .await
                .map_err(scim_error)?;
        }
        self.run_job_now(tenant, name).await?;
        let action = if reset_anchors {
            "job.restarted-reset-anchors"
        } else {
            "job.restarted"
        };
        self.audit(actor, Some(tenant.id), action, Some(name)).await;
        Ok(())
    }

    /// Provisioning Status On (`on = true`: a cycle starts at once, then one
    /// every interval) or Off (the cycle in progress finishes, no other
    /// starts). Audited as `job.started` / `job.stopped` when it changes.
    pub async fn set_job_on(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        name: &str,
        on: bool,
    ) -> Result<JobRecord, ScimError> {
        let before = self.job(tenant, name).await?;
        let status = if on { "on" } else { "off" };
        if before.status == status {
            return Ok(before);
        }
        self.store
            .set_job_status(tenant.id, name, status)
            .await
            .map_err(scim_error)?;
        if on {
            self.run_job_now(tenant, name).await?;
        }
        self.audit(
            actor,
            Some(tenant.id),
            if on { "job.started" } else { "job.stopped" },
            Some(name),
        )
        .await;
        self.job(tenant, name).await
    }

    /// Allow deletes: a job quarantined because a cycle exceeded its
    /// deletion threshold returns to the status it had, and its next cycle
    /// (at once, if that status is `on`) sends the disables and deletes.
    /// 409 if the job is not held by its deletion threshold. Audited as
    /// `job.deletes-allowed`.
    pub async fn allow_deletes(&self, actor: &Actor, tenant: &Tenant, name: &str) -> Result<JobRecord, ScimError> {
        let job = self.job(tenant, name).await?;
        let quarantine = job.last_cycle.as_ref().and_then(|l| l.get("quarantine"));
        let held = job.status == "quarantined"
            && quarantine.and_then(|q| q.get("reason")).and_then(Value::as_str) == Some("TooManyDeletes");
        if !held {
            return Err(ScimError::new(
                409,
                None,
                format!(
                    "job '{name}' is not held by its deletion threshold (status: {}); there is nothing to allow",
                    job.status
                ),
            ));
        }
        let previous = status_before_quarantine(&job);
        let mut last = match job.last_cycle {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        last.insert("allow_deletes".into(), Value::Bool(true));
        last.insert("run_now".into(), Value::Bool(true));
        self.store
            .set_last_cycle(tenant.id, name, &Value::Object(last))
            .await
            .map_err(scim_error)?;
        self.store
            .set_job_status(tenant.id, name, &previous)
            .await
            .map_err(scim_error)?;
        self.audit(actor, Some(tenant.id), "job.deletes-allowed", Some(name))
            .await;
        self.job(tenant, name).await
    }

    /// Marks the job's next cycle as due now (`run_now` in its last cycle,
    /// which the next cycle replaces).
    async fn run_job_now(&self, tenant: &Tenant, name: &str) -> Result<(), ScimError> {
        let job = self.job(tenant, name).await?;
        let mut last = match job.last_cycle {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        last.insert("run_now".into(), Value::Bool(true));
        self.store
            .set_last_cycle(tenant.id, name, &Value::Object(last))
            .await
            .map_err(scim_error)?;
        Ok(())
    }

    /// A job's provisioning log, newest first; 404 for an unknown job.
    pub async fn job_log(
        &self,
        tenant: &Tenant,
        name: &str,
        query: scimitar_store::EngineLogQuery,
    ) -> Result<Vec<scimitar_store::EngineLogRecord>, ScimError> {
        self.job(tenant, name).await?;
        self.store.engine_log(tenant.id, name, query).await.map_err(scim_error)
    }

    /// Deletes a job with its state and provisioning log.
    pub async fn delete_job(&self, actor: &Actor, tenant: &Tenant, name: &str) -> Result<(), ScimError> {
        if !self.store.delete_job(tenant.id, name).await.map_err(scim_error)? {
            return Err(ScimError::not_found(format!(
                "no job named '{name}' in tenant '{}'",
                tenant.name
            )));
        }
        self.audit(actor, Some(tenant.id), "job.deleted", Some(name)).await;
        Ok(())
    }
}

impl App {
    /// Registers how job files are compiled and stored jobs described
    /// (once; later calls are ignored).
    pub fn set_job_files(&self, files: Arc<dyn JobFiles>) {
        let _ = self.job_files.set(files);
    }

    /// The registered [`JobFiles`], or 501: without them nothing here can
    /// read a job file.
    pub fn job_files(&self) -> Result<&dyn JobFiles, ScimError> {
        self.job_files.get().map(|f| &**f).ok_or_else(|| {
            ScimError::not_implemented(
                "provisioning jobs are not available: this server was started without the provisioning engine",
            )
        })
    }

    /// Creates a job from a file a tenant's administrator sent (so naming
    /// none of the server's files or environment); 409 if the tenant has a
    /// job of that name, 400 `invalidValue` with the line and key of a
    /// mistake.
    pub async fn create_job(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        file: JobFile<'_>,
        base: &Path,
    ) -> Result<JobRecord, ScimError> {
        let compiled = self.compile_job(file, base, None)?;
        // One conditional insert: of two creators racing for a name, one
        // gets 409.
        if !self
            .store
            .insert_job(tenant.id, &compiled.name, &compiled.config)
            .await
            .map_err(scim_error)?
        {
            return Err(ScimError::uniqueness(format!(
                "tenant '{}' already has a job named '{}'; replace it with PUT",
                tenant.name, compiled.name
            )));
        }
        self.audit(actor, Some(tenant.id), "job.created", Some(&compiled.name))
            .await;
        self.job(tenant, &compiled.name).await
    }

    /// Replaces the configuration of the job `name` (its status, watermark
    /// and objects are kept) with a file a tenant's administrator sent. The
    /// file must name the same job.
    pub async fn replace_job(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        name: &str,
        file: JobFile<'_>,
        base: &Path,
    ) -> Result<JobRecord, ScimError> {
        let before = self.job(tenant, name).await?;
        let compiled = self.compile_job(file, base, Some(&before.config))?;
        if compiled.name != name {
            return Err(ScimError::invalid_value(format!(
                "the job file names the job '{}', the request's path '{name}'; a job cannot be renamed",
                compiled.name
            )));
        }
        self.save_job(actor, tenant, name, &compiled.config).await
    }

    fn compile_job(&self, file: JobFile<'_>, base: &Path, previous: Option<&Value>) -> Result<CompiledJob, ScimError> {
        let cx = JobFileContext {
            base,
            previous,
            server_local: false,
        };
        self.job_files()?
            .compile(file, &cx)
            .map_err(|e| ScimError::invalid_value(e.to_string()))
    }

    /// A stored job as `scimitar sync jobs --json` and the admin API show
    /// it: `name`, `status`, `interval_seconds`, `last_cycle`, `next_cycle`,
    /// `running` (the lease's holder while a cycle runs), `initial_next`,
    /// `updated`, `error`.
    pub async fn job_view(&self, tenant: &Tenant, record: &JobRecord) -> Result<Value, ScimError> {
        let s = self.job_files()?.schedule(tenant.id, record);
        let now = scimitar_store::now_utc();
        let running = self
            .store
            .lease_holder(&s.lease)
            .await
            .map_err(scim_error)?
            .filter(|(_, until)| *until > now)
            .map(|(holder, until)| json!({"holder": holder, "until": until}));
        Ok(json!({
            "name": record.name,
            "status": record.status,
            "interval_seconds": s.interval_seconds,
            "last_cycle": record.last_cycle,
            "next_cycle": s.next_cycle,
            "running": running,
            "initial_next": record.watermark.is_none(),
            "updated": record.updated,
            "error": s.error,
        }))
    }

    /// The views of the tenant's jobs.
    pub async fn job_views(&self, tenant: &Tenant) -> Result<Vec<Value>, ScimError> {
        // 501 for a tenant without jobs too: the answer must not depend on them.
        self.job_files()?;
        let jobs = self.store.list_jobs(tenant.id).await.map_err(scim_error)?;
        let mut views = Vec::with_capacity(jobs.len());
        for j in &jobs {
            views.push(self.job_view(tenant, j).await?);
        }
        Ok(views)
    }

    /// A stored job, outlined for the console's Provisioning page.
    pub async fn job_outline(&self, tenant: &Tenant, name: &str) -> Result<(JobRecord, JobOutline), ScimError> {
        let record = self.job(tenant, name).await?;
        let outline = self
            .job_files()?
            .outline(&record)
            .map_err(|e| ScimError::invalid_value(format!("the stored job file no longer reads: {e}")))?;
        Ok((record, outline))
    }

    /// Makes one change to a job's file (the console's forms) and stores
    /// it through the same checks as a whole file sent by a tenant's
    /// administrator; audited as `job.changed` with what changed.
    pub async fn edit_job(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        name: &str,
        edit: &JobEdit,
    ) -> Result<JobRecord, ScimError> {
        let before = self.job(tenant, name).await?;
        let files = self.job_files()?;
        let shown = files.shown(&before).map_err(ScimError::invalid_value)?;
        let text = files
            .edit(&shown, edit)
            .map_err(|e| ScimError::invalid_value(e.to_string()))?;
        let base = before
            .config
            .get("base")
            .and_then(Value::as_str)
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from("."));
        let compiled = self.compile_job(JobFile::Toml(&text), &base, Some(&before.config))?;
        self.save_job(actor, tenant, name, &compiled.config).await
    }

    /// Evaluates an expression against a source object as the job would.
    pub async fn preview_expression(
        &self,
        tenant: &Tenant,
        name: &str,
        expression: &str,
        object: &Value,
    ) -> Result<Result<Value, ExpressionError>, ScimError> {
        let record = self.job(tenant, name).await?;
        Ok(self.job_files()?.preview(&record, expression, object))
    }

    /// Entra's Test Connection against the job's target: `Ok(Err(why))`
    /// when the target fails it. Audited as `job.connection-tested`.
    pub async fn test_job_connection(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        name: &str,
    ) -> Result<Result<(), String>, ScimError> {
        let record = self.job(tenant, name).await?;
        let out = self.job_files()?.test_connection(&record).await;
        self.audit(actor, Some(tenant.id), "job.connection-tested", Some(name))
            .await;
        Ok(out)
    }

    /// Provisions one user, or one group with at most 5 members, now,
    /// outside the cycle: `{"job", "summary", "records"}` with the provisioning
    /// log's records of the run, oldest first (members before their group),
    /// each with its steps. The watermark and last cycle stay. 409 while a
    /// cycle of the job runs; 400 when the run fails before any object
    /// (connection, source). Audited as `job.provisioned-on-demand`.
    pub async fn provision_on_demand(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        name: &str,
        object: OnDemandObject<'_>,
    ) -> Result<Value, ScimError> {
        let record = self.job(tenant, name).await?;
        let (kind, id) = match object {
            OnDemandObject::User(id) => ("user", id),
            OnDemandObject::Group(id) => ("group", id),
        };
        if id.trim().is_empty() {
            return Err(ScimError::invalid_value(format!(
                "name the {kind} to provision (its anchor or source reference)"
            )));
        }
        self.audit(
            actor,
            Some(tenant.id),
            "job.provisioned-on-demand",
            Some(&format!("{name} {kind} {id}")),
        )
        .await;
        let summary = self
            .job_files()?
            .provision_on_demand(&*self.store, tenant.id, &record, object)
            .await
            .map_err(|e| {
                if e.starts_with("a cycle of") {
                    ScimError::new(409, None, e)
                } else {
                    ScimError::invalid_value(e)
                }
            })?;
        let cycle_id = summary
            .get("cycle_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let query = scimitar_store::EngineLogQuery {
            cycle_id: Some(cycle_id),
            limit: 100,
            ..Default::default()
        };
        let mut records = self
            .store
            .engine_log(tenant.id, name, query)
            .await
            .map_err(scim_error)?;
        records.reverse();
        let records: Vec<Value> = records.into_iter().map(|r| r.record).collect();
        Ok(json!({"job": name, "summary": summary, "records": records}))
    }

    /// A job's view with its job file (`job_file`), secrets shown as
    /// `"(sealed)"`.
    pub async fn job_detail(&self, tenant: &Tenant, name: &str) -> Result<Value, ScimError> {
        let record = self.job(tenant, name).await?;
        let mut view = self.job_view(tenant, &record).await?;
        let file = self.job_files()?.shown(&record).ok();
        if let Some(m) = view.as_object_mut() {
            m.insert("job_file".into(), file.map_or(Value::Null, Value::String));
        }
        Ok(view)
    }
}

/// The status a quarantined job had before (`on` if it is not recorded).
fn status_before_quarantine(job: &JobRecord) -> String {
    job.last_cycle
        .as_ref()
        .and_then(|l| l.pointer("/quarantine/previous_status"))
        .and_then(Value::as_str)
        .unwrap_or("on")
        .to_string()
}
