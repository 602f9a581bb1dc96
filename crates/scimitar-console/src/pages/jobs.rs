//! Applications: the provisioning jobs of a tenant, with the pages of the
//! Entra admin center's Enterprise application: Provisioning (Admin
//! Credentials with Test Connection, Mappings with an expression preview,
//! scoping filters, Settings, Provisioning Status, Restart), Synchronization
//! details (with the running cycle's progress), Provisioning logs (filters,
//! a record's Steps, Troubleshooting & Recommendations, Modified Properties
//! and Summary, CSV and JSON) and Provision on demand.
//!
//! Everything goes through the application layer (`App::edit_job`,
//! `set_job_on`, `provision_on_demand`, …), which checks the job file as the
//! admin API does and writes the audit log; a job made or changed here may
//! connect to public addresses only, like one sent through the API.

use std::collections::BTreeMap;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect};
use scimitar_app::jobs::{ClauseOutline, JobEdit, JobFile, JobObject, JobOutline, JobSettingsEdit, MappingOutline};
use scimitar_store::{EngineLogQuery, EngineLogRecord, JobRecord, Tenant};
use serde::Deserialize;
use serde_json::Value;

use super::{Chrome, Shared, actor, chrome, tenant_for, urlencode, when, writable_tenant};
use crate::auth::{Authed, ClientIp};
use crate::error::{ConsoleError, PageResult, sentence};
use crate::{Console, render};

const LOG_ACTIONS: &[&str] = &["create", "update", "disable", "delete", "stagedDelete", "other"];
const LOG_STATUSES: &[&str] = &["success", "failure", "skipped", "warning"];

/// What a new job's form starts with: a SCIM directory into a Tenant URL.
const NEW_JOB: &str = r#"name = "my-app"
interval = "40m"

[source]
kind = "scim"                                # ldap | scim
url = "https://directory.example.com/scim/v2"
token = "directory-token"

[target]
url = "https://app.example.com/scim/v2"      # the application's Tenant URL
token = "secret-token"
dialect = "entra-compliant"

[scope]
mode = "all"                                 # assigned | all
"#;

fn base(t: &Tenant, job: &str) -> String {
    format!("/console/t/{}/applications/{}", t.name, urlencode(job))
}

fn base_dir() -> std::path::PathBuf {
    std::path::absolute(".").unwrap_or_else(|_| std::path::PathBuf::from("."))
}

// ------------------------------------------------------------ the list

pub struct JobRow {
    pub name: String,
    pub link: String,
    pub status: String,
    pub last: String,
    pub next: String,
    pub running: bool,
}

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    c: Chrome,
    rows: Vec<JobRow>,
    job_file: String,
    notice: Option<String>,
    error: Option<String>,
}

async fn jobs_page(
    console: &Console,
    a: &Authed,
    t: &Tenant,
    job_file: String,
    notice: Option<String>,
    error: Option<String>,
) -> PageResult {
    let views = console.app.job_views(t).await?;
    let rows = views
        .iter()
        .map(|v| {
            let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let name = s("name");
            JobRow {
                link: base(t, &name),
                status: s("status"),
                last: v
                    .pointer("/last_cycle/finished")
                    .and_then(Value::as_str)
                    .map(when)
                    .unwrap_or_else(|| "never".into()),
                next: v
                    .get("next_cycle")
                    .and_then(Value::as_str)
                    .map(when)
                    .unwrap_or_else(|| "—".into()),
                running: v.get("running").is_some_and(|r| !r.is_null()),
                name,
            }
        })
        .collect();
    Ok(render(&JobsPage {
        c: chrome(a, &t.name, "applications"),
        rows,
        job_file,
        notice,
        error,
    }))
}

pub async fn jobs(
    State(console): Shared,
    a: Authed,
    Path(tenant): Path<String>,
    Query(p): Query<NoticeParams>,
) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    let notice =
        (p.notice == "deleted").then(|| "The application is deleted, with its state and provisioning log.".to_string());
    jobs_page(&console, &a, &t, NEW_JOB.into(), notice, None).await
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
    confirm: Option<String>,
}

/// Deletes the job with its state and provisioning log, once confirmed.
pub async fn delete_job(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Path((tenant, job)): Path<(String, String)>,
    Form(f): Form<DeleteForm>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    if f.confirm.is_none() {
        let msg = "Tick the box to confirm: the job's state and provisioning log are deleted with it.";
        return job_page(&console, &a, &t, &job, None, Some(msg.into())).await;
    }
    console.app.delete_job(&actor(&a, ip), &t, &job).await?;
    Ok(Redirect::to(&format!("/console/t/{}/applications?notice=deleted", t.name)).into_response())
}

#[derive(Deserialize)]
pub struct JobFileForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    job_file: String,
}

pub async fn create_job(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Path(tenant): Path<String>,
    Form(f): Form<JobFileForm>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    match console
        .app
        .create_job(&actor(&a, ip), &t, JobFile::Toml(&f.job_file), &base_dir())
        .await
    {
        Ok(record) => Ok(Redirect::to(&format!("{}?notice=created", base(&t, &record.name))).into_response()),
        // The form comes back with the text and what is wrong with it.
        Err(e) if e.status < 500 => jobs_page(&console, &a, &t, f.job_file, None, Some(sentence(&e.detail))).await,
        Err(e) => Err(e.into()),
    }
}

// ------------------------------------------------------- Provisioning

pub struct StatusView {
    pub status: String,
    pub quarantine_reason: Option<String>,
    pub quarantine_since: String,
    pub quarantine_next: String,
    pub recommendation: String,
    pub held_deletes: bool,
    pub error: Option<String>,
}

fn status_view(record: &JobRecord) -> StatusView {
    let q = record.last_cycle.as_ref().and_then(|l| l.get("quarantine"));
    let qs = |k: &str| q.and_then(|q| q.get(k)).and_then(Value::as_str).map(str::to_string);
    let reason = if record.status == "quarantined" || record.status == "disabled" {
        qs("reason")
    } else {
        None
    };
    StatusView {
        status: record.status.clone(),
        held_deletes: record.status == "quarantined" && reason.as_deref() == Some("TooManyDeletes"),
        quarantine_since: qs("since").map(|s| when(&s)).unwrap_or_default(),
        quarantine_next: qs("next_retry").map(|s| when(&s)).unwrap_or_default(),
        recommendation: qs("recommendation").unwrap_or_default(),
        quarantine_reason: reason,
        error: record
            .last_cycle
            .as_ref()
            .and_then(|l| l.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

/// One scoping filter with its clauses, numbered from 1.
pub struct FilterView {
    pub n: usize,
    pub clauses: Vec<(usize, ClauseOutline)>,
}

/// Users or groups, for the Mappings and Scoping sections.
pub struct ObjectView {
    pub title: &'static str,
    pub obj: &'static str,
    pub enabled: bool,
    pub mappings: Vec<(MappingOutline, String)>,
    pub filters: Vec<FilterView>,
}

fn object_views(base: &str, o: &JobOutline) -> Vec<ObjectView> {
    [
        ("Provision users", "user", &o.users),
        ("Provision groups", "group", &o.groups),
    ]
    .into_iter()
    .map(|(title, obj, ob)| ObjectView {
        title,
        obj,
        enabled: ob.enabled,
        mappings: ob
            .mappings
            .iter()
            .map(|m| {
                (
                    m.clone(),
                    format!("{base}/mappings/{obj}?target={}", urlencode(&m.target)),
                )
            })
            .collect(),
        filters: ob
            .scoping
            .iter()
            .enumerate()
            .map(|(i, f)| FilterView {
                n: i + 1,
                clauses: f.iter().cloned().enumerate().map(|(j, c)| (j + 1, c)).collect(),
            })
            .collect(),
    })
    .collect()
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    c: Chrome,
    job: String,
    base: String,
    tab: &'static str,
    st: StatusView,
    objects: Vec<ObjectView>,
    o: JobOutline,
    job_file: String,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct NoticeParams {
    #[serde(default)]
    notice: String,
}

fn notice_text(n: &str) -> Option<String> {
    Some(
        match n {
            "created" => {
                "The job is saved and Off. Test the connection, check the mappings, then set Provisioning Status to On."
            }
            "saved" => "Saved.",
            "on" => "Provisioning Status is On: the first cycle starts within seconds.",
            "off" => "Provisioning Status is Off: a cycle in progress finishes, no other starts.",
            "restarted" => "Restarted: the next cycle, at once if the job is On, evaluates every object again.",
            "deletes" => "Deletes allowed: the next cycle sends the held disables and deletes.",
            _ => return None,
        }
        .to_string(),
    )
}

async fn job_page(
    console: &Console,
    a: &Authed,
    t: &Tenant,
    job: &str,
    notice: Option<String>,
    error: Option<String>,
) -> PageResult {
    let (record, o) = console.app.job_outline(t, job).await?;
    let job_file = console.app.job_files()?.shown(&record).unwrap_or_default();
    Ok(render(&JobPage {
        c: chrome(a, &t.name, "applications"),
        objects: object_views(&base(t, job), &o),
        base: base(t, job),
        job: job.to_string(),
        tab: "provisioning",
        st: status_view(&record),
        o,
        job_file,
        notice,
        error,
    }))
}

pub async fn job(
    State(console): Shared,
    a: Authed,
    Path((tenant, job)): Path<(String, String)>,
    Query(p): Query<NoticeParams>,
) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    job_page(&console, &a, &t, &job, notice_text(&p.notice), None).await
}

/// After a change: back to the page with a notice, or the page again with
/// what was wrong (a mistake of the administrator's is not an error page).
async fn done(
    console: &Console,
    a: &Authed,
    t: &Tenant,
    job: &str,
    r: Result<&'static str, scimitar_protocol::ScimError>,
) -> PageResult {
    match r {
        Ok(n) => Ok(Redirect::to(&format!("{}?notice={n}", base(t, job))).into_response()),
        Err(e) if e.status < 500 && e.status != 404 => {
            job_page(console, a, t, job, None, Some(sentence(&e.detail))).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct CredentialsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    test: Option<String>,
}

/// Admin Credentials: Save, or Test Connection (of what is stored, after
/// saving what the form changed).
pub async fn credentials(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Path((tenant, job)): Path<(String, String)>,
    Form(f): Form<CredentialsForm>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    let who = actor(&a, ip);
    let edit = JobEdit::Credentials {
        url: f.url.clone(),
        token: (!f.token.trim().is_empty()).then(|| f.token.clone()),
    };
    let saved = console.app.edit_job(&who, &t, &job, &edit).await;
    if f.test.is_none() || saved.is_err() {
        return done(&console, &a, &t, &job, saved.map(|_| "saved")).await;
    }
    let (notice, error) = match console.app.test_job_connection(&who, &t, &job).await? {
        Ok(()) => (
            Some("Test Connection succeeded: the Tenant URL answers as SCIM and the Secret Token is accepted.".into()),
            None,
        ),
        Err(e) => (None, Some(format!("Test Connection failed: {}", sentence(&e)))),
    };
    job_page(&console, &a, &t, &job, notice, error).await
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    scope_mode: String,
    #[serde(default)]
    interval: String,
    #[serde(default)]
    deletion_threshold: String,
    #[serde(default)]
    notification_email: String,
    #[serde(default)]
    status: String,
    user_create: Option<String>,
    user_update: Option<String>,
    user_delete: Option<String>,
    group_create: Option<String>,
    group_update: Option<String>,
    group_delete: Option<String>,
}

pub async fn settings(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Path((tenant, job)): Path<(String, String)>,
    Form(f): Form<SettingsForm>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    let who = actor(&a, ip);
    let Ok(threshold) = f.deletion_threshold.trim().parse::<u64>() else {
        let msg = format!(
            "The deletion threshold '{}' is not a whole number (0 turns it off).",
            f.deletion_threshold
        );
        return job_page(&console, &a, &t, &job, None, Some(msg)).await;
    };
    let edit = JobEdit::Settings(JobSettingsEdit {
        scope_mode: f.scope_mode.clone(),
        interval: f.interval.clone(),
        deletion_threshold: threshold,
        notification_email: f.notification_email.clone(),
        user_actions: [
            f.user_create.is_some(),
            f.user_update.is_some(),
            f.user_delete.is_some(),
        ],
        group_actions: [
            f.group_create.is_some(),
            f.group_update.is_some(),
            f.group_delete.is_some(),
        ],
    });
    let r = async {
        console.app.edit_job(&who, &t, &job, &edit).await?;
        let record = console.app.job(&t, &job).await?;
        // Provisioning Status: On and Off only; a quarantined or disabled
        // job is revived by Restart.
        match f.status.as_str() {
            "on" if record.status == "off" => {
                console.app.set_job_on(&who, &t, &job, true).await?;
                Ok("on")
            }
            "off" if record.status != "off" => {
                console.app.set_job_on(&who, &t, &job, false).await?;
                Ok("off")
            }
            _ => Ok("saved"),
        }
    }
    .await;
    done(&console, &a, &t, &job, r).await
}

#[derive(Deserialize)]
pub struct RestartForm {
    #[serde(default)]
    csrf: String,
    reset_anchors: Option<String>,
}

pub async fn restart(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Path((tenant, job)): Path<(String, String)>,
    Form(f): Form<RestartForm>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    let r = console
        .app
        .restart_job(&actor(&a, ip), &t, &job, f.reset_anchors.is_some())
        .await
        .map(|()| "restarted");
    done(&console, &a, &t, &job, r).await
}

pub async fn allow_deletes(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Path((tenant, job)): Path<(String, String)>,
    Form(f): Form<super::signin::CsrfForm>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    let r = console
        .app
        .allow_deletes(&actor(&a, ip), &t, &job)
        .await
        .map(|_| "deletes");
    done(&console, &a, &t, &job, r).await
}

/// The whole job file, edited as text.
pub async fn job_file(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Path((tenant, job)): Path<(String, String)>,
    Form(f): Form<JobFileForm>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    let r = console
        .app
        .replace_job(&actor(&a, ip), &t, &job, JobFile::Toml(&f.job_file), &base_dir())
        .await
        .map(|_| "saved");
    done(&console, &a, &t, &job, r).await
}

#[derive(Deserialize)]
pub struct ClauseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    filter: String,
    #[serde(default)]
    attribute: String,
    #[serde(default)]
    operator: String,
    #[serde(default)]
    value: String,
    /// `remove`: remove clause `clause` of filter `filter`.
    #[serde(default)]
    remove: Option<usize>,
}

fn object(s: &str) -> Result<JobObject, ConsoleError> {
    JobObject::parse(s).ok_or_else(|| ConsoleError::not_found("Objects are users or groups."))
}

/// Scoping filters: add a clause (to a filter, or as a new filter), or
/// remove one.
pub async fn scoping(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Path((tenant, job, obj)): Path<(String, String, String)>,
    Form(f): Form<ClauseForm>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    let object = object(&obj)?;
    let filter = f.filter.trim().parse::<usize>().ok().and_then(|n| n.checked_sub(1));
    let edit = match (f.remove, filter) {
        (Some(clause), Some(filter)) => JobEdit::RemoveClause {
            object,
            filter,
            clause: clause.saturating_sub(1),
        },
        _ => JobEdit::AddClause {
            object,
            filter,
            clause: ClauseOutline {
                attribute: f.attribute,
                operator: f.operator,
                value: f.value,
            },
        },
    };
    let r = console
        .app
        .edit_job(&actor(&a, ip), &t, &job, &edit)
        .await
        .map(|_| "saved");
    done(&console, &a, &t, &job, r).await
}

// ---------------------------------------------------- the mapping editor

#[derive(Template)]
#[template(path = "job_mapping.html")]
struct MappingPage {
    c: Chrome,
    job: String,
    base: String,
    object: &'static str,
    m: MappingOutline,
    matching: String,
    is_new: bool,
    attributes: Vec<String>,
    samples: Vec<(String, String)>,
    sample: String,
    preview: Option<String>,
    preview_error: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct MappingParams {
    #[serde(default)]
    target: String,
}

/// Up to 20 source objects the job has seen, as JSON to preview against.
async fn samples(console: &Console, t: &Tenant, job: &str, object: JobObject) -> Vec<(String, String)> {
    let kind = match object {
        JobObject::User => scimitar_store::ObjectKind::User,
        JobObject::Group => scimitar_store::ObjectKind::Group,
    };
    let objects = console.app.store.objects(t.id, job, kind).await.unwrap_or_default();
    objects
        .into_iter()
        .filter(|o| o.source.is_object())
        .take(20)
        .map(|o| {
            let label = o.source_ref.clone().unwrap_or_else(|| o.anchor.clone());
            let json = serde_json::to_string_pretty(&o.source).unwrap_or_default();
            (label, json)
        })
        .collect()
}

struct MappingState {
    m: MappingOutline,
    sample: String,
    preview: Option<String>,
    preview_error: Option<String>,
    error: Option<String>,
}

async fn mapping_page(
    console: &Console,
    a: &Authed,
    t: &Tenant,
    job: &str,
    object: JobObject,
    s: MappingState,
) -> PageResult {
    let (_, o) = console.app.job_outline(t, job).await?;
    let samples = samples(console, t, job, object).await;
    let existing = match object {
        JobObject::User => &o.users.mappings,
        JobObject::Group => &o.groups.mappings,
    };
    let is_new = !existing.iter().any(|m| m.target.eq_ignore_ascii_case(&s.m.target));
    let sample = if s.sample.is_empty() {
        samples.first().map(|(_, j)| j.clone()).unwrap_or_else(|| "{}".into())
    } else {
        s.sample
    };
    Ok(render(&MappingPage {
        c: chrome(a, &t.name, "applications"),
        job: job.to_string(),
        base: base(t, job),
        object: object.as_str(),
        matching: s.m.matching.map(|m| m.to_string()).unwrap_or_default(),
        m: s.m,
        is_new,
        attributes: o.source_attributes,
        samples,
        sample,
        preview: s.preview,
        preview_error: s.preview_error,
        error: s.error,
    }))
}

pub async fn mapping(
    State(console): Shared,
    a: Authed,
    Path((tenant, job, obj)): Path<(String, String, String)>,
    Query(p): Query<MappingParams>,
) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    let object = object(&obj)?;
    let (_, o) = console.app.job_outline(&t, &job).await?;
    let list = match object {
        JobObject::User => o.users.mappings,
        JobObject::Group => o.groups.mappings,
    };
    let m = list
        .into_iter()
        .find(|m| !p.target.is_empty() && m.target.eq_ignore_ascii_case(&p.target))
        .unwrap_or_else(|| MappingOutline {
            target: p.target.clone(),
            kind: "direct".into(),
            apply: "always".into(),
            ..MappingOutline::default()
        });
    let s = MappingState {
        m,
        sample: String::new(),
        preview: None,
        preview_error: None,
        error: None,
    };
    mapping_page(&console, &a, &t, &job, object, s).await
}

#[derive(Deserialize)]
pub struct MappingForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    expression: String,
    #[serde(default)]
    constant: String,
    #[serde(default)]
    default: String,
    #[serde(default)]
    apply: String,
    #[serde(default)]
    matching: String,
    #[serde(default)]
    sample: String,
    /// Which button: `save`, `preview` or `remove`.
    #[serde(default)]
    op: String,
}

impl MappingForm {
    fn outline(&self) -> Result<MappingOutline, String> {
        let source = match self.kind.as_str() {
            "expression" => self.expression.clone(),
            "constant" => self.constant.clone(),
            "none" => String::new(),
            _ => self.source.clone(),
        };
        let matching = match self.matching.trim() {
            "" => None,
            m => Some(
                m.parse::<u32>()
                    .map_err(|_| format!("The matching precedence '{m}' is not a number from 1 to 100."))?,
            ),
        };
        Ok(MappingOutline {
            target: self.target.trim().to_string(),
            kind: self.kind.clone(),
            source,
            default: Some(self.default.clone()).filter(|d| !d.is_empty()),
            apply: if self.apply == "create" {
                "create".into()
            } else {
                "always".into()
            },
            matching,
        })
    }
}

/// The mapping editor's buttons: Save, Preview (the expression against the
/// chosen source object, or where it does not parse) and Remove.
pub async fn save_mapping(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Path((tenant, job, obj)): Path<(String, String, String)>,
    Form(f): Form<MappingForm>,
) -> PageResult {
    let object = object(&obj)?;
    let m = f.outline();
    let state = |m: MappingOutline, preview, preview_error, error| MappingState {
        m,
        sample: f.sample.clone(),
        preview,
        preview_error,
        error,
    };
    if f.op == "preview" {
        // A preview changes nothing: a Viewer may try expressions too.
        if !a.check_csrf(&f.csrf) {
            return Err(ConsoleError::csrf_failed());
        }
        let t = tenant_for(&console, &a, &tenant).await?;
        let m = m.unwrap_or_else(|_| MappingOutline {
            target: f.target.clone(),
            kind: "expression".into(),
            source: f.expression.clone(),
            ..MappingOutline::default()
        });
        let text = match m.kind.as_str() {
            "direct" => format!("[{}]", m.source.trim().trim_start_matches('[').trim_end_matches(']')),
            "constant" => format!("\"{}\"", m.source.replace('"', "\"\"")),
            _ => m.source.clone(),
        };
        let sample: Value = match serde_json::from_str(&f.sample) {
            Ok(v) => v,
            Err(e) => {
                let s = state(m, None, Some(format!("The source object is not JSON: {e}")), None);
                return mapping_page(&console, &a, &t, &job, object, s).await;
            }
        };
        let s = match console.app.preview_expression(&t, &job, &text, &sample).await? {
            Ok(v) => state(
                m,
                Some(serde_json::to_string_pretty(&v).unwrap_or_default()),
                None,
                None,
            ),
            Err(e) => {
                let at = match (e.line, e.column) {
                    (Some(l), Some(c)) => format!("line {l}, column {c}: "),
                    _ => String::new(),
                };
                state(m, None, Some(format!("{at}{}", e.message)), None)
            }
        };
        return mapping_page(&console, &a, &t, &job, object, s).await;
    }
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    let who = actor(&a, ip);
    let edit = if f.op == "remove" {
        JobEdit::RemoveMapping {
            object,
            target: f.target.trim().to_string(),
        }
    } else {
        match &m {
            Ok(m) => JobEdit::Mapping {
                object,
                mapping: m.clone(),
            },
            Err(e) => {
                let s = state(MappingOutline::default(), None, None, Some(e.clone()));
                return mapping_page(&console, &a, &t, &job, object, s).await;
            }
        }
    };
    match console.app.edit_job(&who, &t, &job, &edit).await {
        Ok(_) => Ok(Redirect::to(&format!("{}?notice=saved#mappings", base(&t, &job))).into_response()),
        Err(e) if e.status < 500 && e.status != 404 => {
            let s = state(m.unwrap_or_default(), None, None, Some(sentence(&e.detail)));
            mapping_page(&console, &a, &t, &job, object, s).await
        }
        Err(e) => Err(e.into()),
    }
}

// ------------------------------------------- Synchronization details

pub struct Progress {
    pub done: u64,
    pub total: u64,
    pub percent: u64,
    pub rate: String,
    pub eta: String,
    pub started: String,
    pub holder: String,
}

fn progress_of(p: &Value) -> Progress {
    let n = |k: &str| p.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (done, total) = (n("done"), n("total"));
    let started = p.get("started").and_then(Value::as_str).unwrap_or_default();
    let elapsed = time::OffsetDateTime::parse(started, &time::format_description::well_known::Rfc3339)
        .map(|s| (time::OffsetDateTime::now_utc() - s).as_seconds_f64().max(0.001))
        .unwrap_or(0.0);
    let rate = if elapsed > 0.0 { done as f64 / elapsed } else { 0.0 };
    let eta = if total == 0 {
        "reading the source".into()
    } else if rate > 0.0 {
        format!("about {} s", ((total.saturating_sub(done)) as f64 / rate).ceil() as u64)
    } else {
        "—".into()
    };
    Progress {
        done,
        total,
        percent: (done * 100).checked_div(total).unwrap_or(0).min(100),
        rate: format!("{rate:.0} objects/s"),
        eta,
        started: when(started),
        holder: p.get("holder").and_then(Value::as_str).unwrap_or_default().to_string(),
    }
}

#[derive(Template)]
#[template(path = "job_details.html")]
struct DetailsPage {
    c: Chrome,
    job: String,
    base: String,
    tab: &'static str,
    st: StatusView,
    progress: Option<Progress>,
    counts: Vec<(String, u64)>,
    last_kind: String,
    last_started: String,
    last_finished: String,
    next: String,
    escrow: (u64, u64),
}

pub async fn details(State(console): Shared, a: Authed, Path((tenant, job)): Path<(String, String)>) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    let record = console.app.job(&t, &job).await?;
    let view = console.app.job_view(&t, &record).await?;
    let store = &console.app.store;
    let progress = store.job_progress(t.id, &job).await?;
    let escrow = store.escrow_counts(t.id, &job).await?;
    let last = record.last_cycle.clone().unwrap_or(Value::Null);
    let s = |k: &str| last.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let counts = [
        "created", "updated", "disabled", "deleted", "skipped", "failed", "deferred", "requests",
    ]
    .iter()
    .filter_map(|k| last.get(*k).and_then(Value::as_u64).map(|n| (k.to_string(), n)))
    .collect();
    Ok(render(&DetailsPage {
        c: chrome(&a, &t.name, "applications"),
        base: base(&t, &job),
        job,
        tab: "details",
        st: status_view(&record),
        // A lease that expired without clearing it: the node died.
        progress: progress
            .filter(|_| view.get("running").is_some_and(|r| !r.is_null()))
            .map(|p| progress_of(&p)),
        counts,
        last_kind: s("kind"),
        last_started: when(&s("started")),
        last_finished: when(&s("finished")),
        next: view
            .get("next_cycle")
            .and_then(Value::as_str)
            .map(when)
            .unwrap_or_else(|| "— (the job is not On)".into()),
        escrow,
    }))
}

/// The running cycle's progress as JSON, for the page's script to poll.
pub async fn progress(State(console): Shared, a: Authed, Path((tenant, job)): Path<(String, String)>) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    let record = console.app.job(&t, &job).await?;
    let view = console.app.job_view(&t, &record).await?;
    let running = view.get("running").is_some_and(|r| !r.is_null());
    let p = console.app.store.job_progress(t.id, &job).await?.filter(|_| running);
    let body = serde_json::json!({
        "status": record.status,
        "running": running,
        "progress": p.as_ref().map(|p| {
            let v = progress_of(p);
            serde_json::json!({"done": v.done, "total": v.total, "percent": v.percent, "rate": v.rate, "eta": v.eta})
        }),
        "last_cycle": record.last_cycle,
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

// --------------------------------------------------- Provisioning logs

#[derive(Deserialize, Default)]
pub struct LogParams {
    #[serde(default)]
    range: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    identity: String,
    #[serde(default)]
    cycle: String,
}

impl LogParams {
    fn query_string(&self) -> String {
        format!(
            "range={}&action={}&status={}&identity={}&cycle={}",
            urlencode(&self.range),
            urlencode(&self.action),
            urlencode(&self.status),
            urlencode(&self.identity),
            urlencode(&self.cycle)
        )
    }
    fn since(&self) -> Option<String> {
        let secs = match self.range.as_str() {
            "1h" => 3600,
            "24h" => 86_400,
            "7d" => 7 * 86_400,
            "30d" => 30 * 86_400,
            _ => return None,
        };
        Some(crate::time_ago(std::time::Duration::from_secs(secs)))
    }
}

/// The records the filters select, newest first (at most `limit`).
async fn log_records(
    console: &Console,
    t: &Tenant,
    job: &str,
    p: &LogParams,
    limit: usize,
) -> Result<Vec<EngineLogRecord>, ConsoleError> {
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    if opt(&p.action).is_some_and(|a| !LOG_ACTIONS.contains(&a.as_str()))
        || opt(&p.status).is_some_and(|s| !LOG_STATUSES.contains(&s.as_str()))
    {
        return Err(ConsoleError::new(400, "Unknown action or status."));
    }
    let since = p.since();
    let identity = p.identity.trim().to_lowercase();
    let mut out = Vec::new();
    let mut before = None;
    // Time and identity are matched here, a page of the store at a time.
    loop {
        let query = EngineLogQuery {
            cycle_id: opt(&p.cycle),
            status: opt(&p.status),
            action: opt(&p.action),
            before_id: before,
            limit: 500,
        };
        let page = console.app.job_log(t, job, query).await?;
        let full = page.len() == 500;
        before = page.last().map(|r| r.id);
        let mut older = false;
        for r in page {
            if since.as_ref().is_some_and(|s| r.time < *s) {
                older = true;
                break;
            }
            if !identity.is_empty() {
                let names = [
                    r.record.pointer("/sourceIdentity/displayName"),
                    r.record.pointer("/sourceIdentity/id"),
                    r.record.pointer("/targetIdentity/id"),
                ];
                let hit = names
                    .iter()
                    .flatten()
                    .filter_map(|v| v.as_str())
                    .any(|s| s.to_lowercase().contains(&identity));
                if !hit {
                    continue;
                }
            }
            out.push(r);
            if out.len() >= limit {
                return Ok(out);
            }
        }
        if older || !full {
            return Ok(out);
        }
    }
}

pub struct LogRow {
    pub id: i64,
    pub time: String,
    pub action: String,
    pub status: String,
    pub kind: String,
    pub name: String,
    pub cycle: String,
    pub error: String,
}

fn log_row(r: &EngineLogRecord) -> LogRow {
    let s = |p: &str| {
        r.record
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    LogRow {
        id: r.id,
        time: when(&r.time),
        action: r.action.clone(),
        status: r.status.clone(),
        kind: s("/sourceIdentity/identityType"),
        name: s("/sourceIdentity/displayName"),
        cycle: r.cycle_id.clone(),
        error: s("/provisioningStatusInfo/errorInformation/errorCode"),
    }
}

pub struct CycleBar {
    pub x: u32,
    pub w: u32,
    pub title: String,
    pub segments: Vec<(u32, u32, String)>,
}

/// Actions per cycle, oldest cycle first (the last 30 cycles shown).
fn cycle_chart(records: &[EngineLogRecord]) -> (Vec<CycleBar>, Vec<(String, Vec<u64>)>) {
    let mut order: Vec<String> = Vec::new();
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for r in records.iter().rev() {
        let row = counts.entry(r.cycle_id.clone()).or_insert_with(|| {
            order.push(r.cycle_id.clone());
            vec![0; LOG_ACTIONS.len() + 1]
        });
        let idx = if r.status == "failure" {
            LOG_ACTIONS.len()
        } else {
            LOG_ACTIONS
                .iter()
                .position(|a| *a == r.action)
                .unwrap_or(LOG_ACTIONS.len() - 1)
        };
        if let Some(c) = row.get_mut(idx) {
            *c += 1;
        }
    }
    let keep = order.len().saturating_sub(30);
    let order: Vec<String> = order.into_iter().skip(keep).collect();
    let max = order
        .iter()
        .filter_map(|c| counts.get(c))
        .map(|v| v.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let (width, height) = (720u32, 140u32);
    // A few cycles get narrow bars, not the whole width.
    let slot = (width / u32::try_from(order.len().max(1)).unwrap_or(1)).min(48);
    let mut bars = Vec::new();
    let mut rows = Vec::new();
    for (i, c) in order.iter().enumerate() {
        let Some(v) = counts.get(c) else { continue };
        let mut y = height;
        let mut segments = Vec::new();
        let names = LOG_ACTIONS.iter().copied().chain(["failure"]);
        for (n, name) in v.iter().zip(names) {
            if *n == 0 {
                continue;
            }
            let h = u32::try_from((*n * u64::from(height)) / max).unwrap_or(height).max(1);
            y = y.saturating_sub(h);
            segments.push((y, h, format!("s-{name}")));
        }
        let short: String = c.chars().take(8).collect();
        bars.push(CycleBar {
            x: u32::try_from(i).unwrap_or(0) * slot + 1,
            w: slot.saturating_sub(2).max(1),
            title: format!("cycle {short}: {} records", v.iter().sum::<u64>()),
            segments,
        });
        rows.push((short, v.clone()));
    }
    (bars, rows)
}

#[derive(Template)]
#[template(path = "job_logs.html")]
struct LogsPage {
    c: Chrome,
    job: String,
    base: String,
    tab: &'static str,
    p: LogParams,
    actions: &'static [&'static str],
    statuses: &'static [&'static str],
    rows: Vec<LogRow>,
    bars: Vec<CycleBar>,
    chart_rows: Vec<(String, Vec<u64>)>,
    download: String,
}

pub async fn logs(
    State(console): Shared,
    a: Authed,
    Path((tenant, job)): Path<(String, String)>,
    Query(p): Query<LogParams>,
) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    let records = log_records(&console, &t, &job, &p, 1000).await?;
    let (bars, chart_rows) = cycle_chart(&records);
    Ok(render(&LogsPage {
        c: chrome(&a, &t.name, "applications"),
        base: base(&t, &job),
        download: p.query_string(),
        job,
        tab: "logs",
        actions: LOG_ACTIONS,
        statuses: LOG_STATUSES,
        rows: records.iter().take(200).map(log_row).collect(),
        bars,
        chart_rows,
        p,
    }))
}

pub async fn logs_csv(
    State(console): Shared,
    a: Authed,
    Path((tenant, job)): Path<(String, String)>,
    Query(p): Query<LogParams>,
) -> PageResult {
    logs_download(&console, &a, &tenant, &job, &p, "csv").await
}

pub async fn logs_json(
    State(console): Shared,
    a: Authed,
    Path((tenant, job)): Path<(String, String)>,
    Query(p): Query<LogParams>,
) -> PageResult {
    logs_download(&console, &a, &tenant, &job, &p, "json").await
}

/// The filtered records as CSV (a row per record) or JSON (the records).
async fn logs_download(
    console: &Console,
    a: &Authed,
    tenant: &str,
    job: &str,
    p: &LogParams,
    format: &str,
) -> PageResult {
    let t = tenant_for(console, a, tenant).await?;
    let records = log_records(console, &t, job, p, 100_000).await?;
    let (ty, body) = match format {
        "json" => {
            let list: Vec<&Value> = records.iter().map(|r| &r.record).collect();
            (
                "application/json",
                serde_json::to_string_pretty(&list).unwrap_or_default(),
            )
        }
        _ => {
            let mut out = String::from(
                "time,cycle_id,change_id,action,status,identity_type,source_id,display_name,target_id,error_code,reason\r\n",
            );
            for r in &records {
                let s = |p: &str| {
                    r.record
                        .pointer(p)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let fields = [
                    r.time.clone(),
                    r.cycle_id.clone(),
                    r.change_id.clone(),
                    r.action.clone(),
                    r.status.clone(),
                    s("/sourceIdentity/identityType"),
                    r.source_id.clone().unwrap_or_default(),
                    s("/sourceIdentity/displayName"),
                    r.target_id.clone().unwrap_or_default(),
                    s("/provisioningStatusInfo/errorInformation/errorCode"),
                    s("/provisioningStatusInfo/errorInformation/reason"),
                ];
                out.push_str(
                    &fields
                        .iter()
                        .map(|f| super::activity::cell(f))
                        .collect::<Vec<_>>()
                        .join(","),
                );
                out.push_str("\r\n");
            }
            ("text/csv; charset=utf-8", out)
        }
    };
    let ext = if ty.starts_with("text/csv") { "csv" } else { "json" };
    Ok((
        [
            (header::CONTENT_TYPE, ty.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"provisioning-{}-{}.{ext}\"", t.name, job),
            ),
        ],
        body,
    )
        .into_response())
}

pub struct StepRow {
    pub name: String,
    pub kind: String,
    pub status: String,
    pub description: String,
    pub details: Vec<(String, String)>,
}

pub struct PropertyRow {
    pub name: String,
    pub old: String,
    pub new: String,
}

#[derive(Template)]
#[template(path = "job_log.html")]
struct LogRecordPage {
    c: Chrome,
    job: String,
    base: String,
    tab: &'static str,
    view: String,
    id: i64,
    row: LogRow,
    steps: Vec<StepRow>,
    properties: Vec<PropertyRow>,
    error_code: String,
    reason: String,
    recommendation: String,
    details: String,
    summary: Vec<(String, String)>,
}

/// A log record's steps, as Entra's Steps tab lists them.
fn steps_of(rec: &Value) -> Vec<StepRow> {
    rec.get("provisioningSteps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|st| StepRow {
            name: st.get("name").map(text).unwrap_or_default(),
            kind: st.get("provisioningStepType").map(text).unwrap_or_default(),
            status: st.get("status").map(text).unwrap_or_default(),
            description: st.get("description").map(text).unwrap_or_default(),
            details: st
                .get("details")
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), text(v))).collect())
                .unwrap_or_default(),
        })
        .collect()
}

/// A log record's modified properties: old and new value per attribute.
fn properties_of(rec: &Value) -> Vec<PropertyRow> {
    rec.get("modifiedProperties")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|m| PropertyRow {
            name: m.get("displayName").map(text).unwrap_or_default(),
            old: m.get("oldValue").map(text).unwrap_or_default(),
            new: m.get("newValue").map(text).unwrap_or_default(),
        })
        .collect()
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Deserialize, Default)]
pub struct RecordParams {
    #[serde(default)]
    view: String,
}

/// One record, in Entra's four tabs (a query parameter picks the tab, so
/// that the page works without a script).
pub async fn log_record(
    State(console): Shared,
    a: Authed,
    Path((tenant, job, id)): Path<(String, String, i64)>,
    Query(p): Query<RecordParams>,
) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    let query = EngineLogQuery {
        before_id: id.checked_add(1),
        limit: 1,
        ..EngineLogQuery::default()
    };
    let r = console
        .app
        .job_log(&t, &job, query)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ConsoleError::not_found("There is no such provisioning log record."))?;
    let rec = &r.record;
    let s = |p: &str| rec.pointer(p).map(text).unwrap_or_default();
    let steps = steps_of(rec);
    let properties = properties_of(rec);
    let summary = [
        ("Activity date", when(&r.time)),
        ("Cycle", r.cycle_id.clone()),
        ("Change id", r.change_id.clone()),
        ("Action", r.action.clone()),
        ("Status", r.status.clone()),
        ("Source system", s("/sourceSystem/displayName")),
        (
            "Source identity",
            format!("{} ({})", s("/sourceIdentity/displayName"), s("/sourceIdentity/id")),
        ),
        ("Target system", s("/targetSystem/displayName")),
        ("Target id", s("/targetIdentity/id")),
        ("Duration", format!("{} ms", s("/durationInMilliseconds"))),
        ("Dry run", s("/dryRun")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let view = match p.view.as_str() {
        "troubleshooting" | "properties" | "summary" => p.view.clone(),
        _ => "steps".into(),
    };
    Ok(render(&LogRecordPage {
        c: chrome(&a, &t.name, "applications"),
        base: base(&t, &job),
        job,
        tab: "logs",
        view,
        id,
        row: log_row(&r),
        steps,
        properties,
        error_code: s("/provisioningStatusInfo/errorInformation/errorCode"),
        reason: s("/provisioningStatusInfo/errorInformation/reason"),
        recommendation: s("/provisioningStatusInfo/errorInformation/recommendedAction"),
        details: s("/provisioningStatusInfo/errorInformation/additionalDetails"),
        summary,
    }))
}

// --------------------------------------------------- Provision on demand

pub struct OnDemandRecord {
    pub row: LogRow,
    pub steps: Vec<StepRow>,
    pub properties: Vec<PropertyRow>,
}

#[derive(Template)]
#[template(path = "job_ondemand.html")]
struct OnDemandPage {
    c: Chrome,
    job: String,
    base: String,
    tab: &'static str,
    kind: String,
    id: String,
    known: Vec<(String, String)>,
    records: Option<Vec<OnDemandRecord>>,
    error: Option<String>,
}

/// Source objects the job knows, to pick from: (source reference, kind).
async fn known_objects(console: &Console, t: &Tenant, job: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (kind, name) in [
        (scimitar_store::ObjectKind::User, "user"),
        (scimitar_store::ObjectKind::Group, "group"),
    ] {
        let objects = console.app.store.objects(t.id, job, kind).await.unwrap_or_default();
        out.extend(
            objects
                .into_iter()
                .take(200)
                .map(|o| (o.source_ref.unwrap_or(o.anchor), name.to_string())),
        );
    }
    out
}

pub async fn on_demand(State(console): Shared, a: Authed, Path((tenant, job)): Path<(String, String)>) -> PageResult {
    let t = tenant_for(&console, &a, &tenant).await?;
    console.app.job(&t, &job).await?;
    Ok(render(&OnDemandPage {
        c: chrome(&a, &t.name, "applications"),
        base: base(&t, &job),
        known: known_objects(&console, &t, &job).await,
        job,
        tab: "ondemand",
        kind: "user".into(),
        id: String::new(),
        records: None,
        error: None,
    }))
}

#[derive(Deserialize)]
pub struct OnDemandForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    id: String,
}

pub async fn run_on_demand(
    State(console): Shared,
    ClientIp(ip): ClientIp,
    a: Authed,
    Path((tenant, job)): Path<(String, String)>,
    Form(f): Form<OnDemandForm>,
) -> PageResult {
    let t = writable_tenant(&console, &a, &tenant, Some(&f.csrf)).await?;
    let object = if f.kind == "group" {
        scimitar_app::jobs::OnDemandObject::Group(f.id.trim())
    } else {
        scimitar_app::jobs::OnDemandObject::User(f.id.trim())
    };
    let (records, error) = match console.app.provision_on_demand(&actor(&a, ip), &t, &job, object).await {
        Ok(run) => {
            let list = run
                .get("records")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|rec| {
                    let r = EngineLogRecord {
                        id: 0,
                        job: job.clone(),
                        cycle_id: rec.get("cycleId").map(text).unwrap_or_default(),
                        change_id: rec.get("changeId").map(text).unwrap_or_default(),
                        time: rec.get("activityDateTime").map(text).unwrap_or_default(),
                        action: rec.get("provisioningAction").map(text).unwrap_or_default(),
                        status: rec
                            .pointer("/provisioningStatusInfo/status")
                            .map(text)
                            .unwrap_or_default(),
                        source_id: None,
                        target_id: None,
                        record: rec.clone(),
                    };
                    OnDemandRecord {
                        row: log_row(&r),
                        steps: steps_of(&rec),
                        properties: properties_of(&rec),
                    }
                })
                .collect();
            (Some(list), None)
        }
        Err(e) if e.status < 500 && e.status != 404 => (None, Some(sentence(&e.detail))),
        Err(e) => return Err(e.into()),
    };
    Ok(render(&OnDemandPage {
        c: chrome(&a, &t.name, "applications"),
        base: base(&t, &job),
        known: known_objects(&console, &t, &job).await,
        job,
        tab: "ondemand",
        kind: if f.kind == "group" {
            "group".into()
        } else {
            "user".into()
        },
        id: f.id,
        records,
        error,
    }))
}
