//! The engine's side of `scimitar_app::jobs::JobFiles`: how a job file is
//! compiled for storage and a stored job described. The binary is the one
//! crate that knows both the application layer and the engine, so the CLI
//! (`sync save`, `sync jobs`) and the admin API (through the server's
//! `App`) share this one implementation.

use std::borrow::Cow;

use std::time::Duration;

use scimitar_app::jobs::{
    ClauseOutline, CompiledJob, ExpressionError, JobEdit, JobFile, JobFileContext, JobFileError, JobFiles, JobFuture,
    JobOutline, JobSchedule, MappingOutline, ObjectOutline, OnDemandObject,
};
use scimitar_engine::client::Client;
use scimitar_engine::cycle::{self, CycleOptions};
use scimitar_engine::job::{
    JobError, JobSpec, ObjectSpec, ScopeMode, Secret, SourceSpec, parse_job, redact_sealed, seal_secrets_keeping,
};
use scimitar_engine::mapping::{Apply, MappingSource};
use scimitar_engine::schedule::{self, Leased};
use scimitar_store::{JobRecord, Store, TenantId};
use serde_json::Value;

/// How long the lease of an on-demand run lasts without renewal.
const ON_DEMAND_LEASE: Duration = Duration::from_secs(60);

/// Job files read by `scimitar-engine`'s parser.
pub struct EngineJobFiles {
    /// Where a job sent through the admin API may connect.
    pub egress: std::sync::Arc<scimitar_engine::egress::Policy>,
}

impl JobFiles for EngineJobFiles {
    fn compile(&self, file: JobFile<'_>, cx: &JobFileContext<'_>) -> Result<CompiledJob, JobFileError> {
        let text: Cow<'_, str> = match file {
            JobFile::Toml(t) => Cow::Borrowed(t),
            JobFile::Json(v) => Cow::Owned(json_to_toml(v)?),
        };
        if !cx.server_local {
            // Before parsing: the parser itself reads a file source's header
            // (and would show it in an error).
            refuse_server_local(&text)?;
        }
        // Parsed as written (a "(sealed)" secret parses as any string), so
        // that lines in errors are the sender's.
        let spec = parse_job(&text, cx.base).map_err(from_engine)?;
        if !cx.server_local && names_server_local(&spec) {
            // The check above reads the keys; this one what they became, in
            // case the parser learns another spelling.
            return Err(JobFileError {
                line: None,
                key: None,
                message: "the job reads files or environment variables on the server, which a job sent through the admin API may not".into(),
            });
        }
        if !cx.server_local {
            self.refuse_private_literals(&text, &spec)?;
        }
        let previous = cx.previous.and_then(|c| c.get("toml")).and_then(Value::as_str);
        let sealed = seal_secrets_keeping(&text, previous).map_err(from_engine)?;
        let mut config = schedule::stored_config(&sealed, cx.base);
        if !cx.server_local
            && let Some(c) = config.as_object_mut()
        {
            // Its cycles connect where the egress policy permits only.
            c.insert("origin".into(), Value::String("api".into()));
        }
        Ok(CompiledJob {
            name: spec.name,
            config,
        })
    }

    fn schedule(&self, tenant: TenantId, record: &JobRecord) -> JobSchedule {
        let spec = schedule::stored_spec(record);
        let now = time::OffsetDateTime::now_utc();
        let interval = spec.as_ref().ok().map(|s| s.settings.interval);
        JobSchedule {
            interval_seconds: interval.map(|i| i.as_secs()),
            // A cycle overdue (the server was down) is due now, not in the past.
            next_cycle: interval
                .and_then(|i| schedule::next_cycle(record, i))
                .map(|t| scimitar_store::format_utc(t.max(now))),
            error: spec.err(),
            lease: schedule::lease_name(tenant, &record.name),
        }
    }

    fn shown(&self, record: &JobRecord) -> Result<String, String> {
        let text = record
            .config
            .get("toml")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("job '{}' has no stored job file", record.name))?;
        redact_sealed(text).map_err(|e| e.to_string())
    }

    fn outline(&self, record: &JobRecord) -> Result<JobOutline, String> {
        let spec = schedule::stored_spec(record)?;
        Ok(outline(&spec))
    }

    fn edit(&self, text: &str, edit: &JobEdit) -> Result<String, JobFileError> {
        crate::job_edit::apply(text, edit)
    }

    fn changes(&self, before: &Value, after: &Value) -> Vec<String> {
        let table = |c: &Value| {
            c.get("toml")
                .and_then(Value::as_str)
                .and_then(|t| toml::from_str::<toml::Table>(t).ok())
                .unwrap_or_default()
        };
        let (a, b) = (table(before), table(after));
        let mut out = Vec::new();
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        let empty = toml::Table::new();
        // A table on either side is compared key by key (a missing one as
        // empty), so that the entry says `mappings.user`, not `mappings`.
        let as_table = |v: Option<&toml::Value>| match v {
            Some(toml::Value::Table(t)) => Some(t.clone()),
            None => Some(empty.clone()),
            Some(_) => None,
        };
        for k in keys {
            let (x, y) = (a.get(k), b.get(k));
            match (as_table(x), as_table(y)) {
                (Some(tx), Some(ty)) => {
                    let sub: std::collections::BTreeSet<&String> = tx.keys().chain(ty.keys()).collect();
                    out.extend(
                        sub.into_iter()
                            .filter(|s| tx.get(*s) != ty.get(*s))
                            .map(|s| format!("{k}.{s}")),
                    );
                }
                _ if x != y => out.push(k.clone()),
                _ => {}
            }
        }
        out
    }

    fn preview(&self, record: &JobRecord, expression: &str, object: &Value) -> Result<Value, ExpressionError> {
        let default_domain = schedule::stored_spec(record)
            .ok()
            .and_then(|s| s.settings.default_domain);
        let mut rng = || {
            let mut b = [0u8; 8];
            let _ = getrandom::fill(&mut b);
            u64::from_le_bytes(b)
        };
        let mut env = scimitar_expression::Env {
            now: time::OffsetDateTime::now_utc(),
            rng: &mut rng,
            default_domain: default_domain.as_deref(),
        };
        scimitar_expression::eval_json(expression, object, &mut env).map_err(|e| match e {
            scimitar_expression::Error::Parse(p) => ExpressionError {
                line: Some(p.line),
                column: Some(p.column),
                message: format!("expected {}, found {}", p.expected, p.found),
            },
            other => ExpressionError {
                line: None,
                column: None,
                message: other.to_string(),
            },
        })
    }

    fn test_connection<'a>(&'a self, record: &'a JobRecord) -> JobFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let spec = schedule::stored_spec(record)?;
            let client = self.client(record, &spec).await?;
            cycle::test_connection(&spec, &client).await
        })
    }

    fn provision_on_demand<'a>(
        &'a self,
        store: &'a dyn Store,
        tenant: TenantId,
        record: &'a JobRecord,
        object: OnDemandObject<'a>,
    ) -> JobFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            let spec = schedule::stored_spec(record)?;
            let client = self.client(record, &spec).await?;
            let (kind, id) = match object {
                OnDemandObject::User(id) => (scimitar_protocol::schema::Kind::User, id),
                OnDemandObject::Group(id) => (scimitar_protocol::schema::Kind::Group, id),
            };
            let opts = CycleOptions {
                on_demand: Some((kind, id.to_string())),
                allow_deletes: true,
                egress: schedule::limited(record).then(|| self.egress.clone()),
                ..CycleOptions::default()
            };
            let lease = schedule::Lease {
                holder: scimitar_store::lease::process_holder(),
                duration: ON_DEMAND_LEASE,
            };
            match schedule::run_leased(store, tenant, &spec, &client, opts, lease, |_| true).await {
                Ok(Some(Leased::Ran(s))) => serde_json::to_value(&s).map_err(|e| e.to_string()),
                Ok(Some(Leased::Busy { holder, .. })) => Err(format!(
                    "a cycle of '{}' is running ({holder}); provision on demand once it ends",
                    spec.name
                )),
                Ok(None) => Err(format!("the job '{}' is gone", spec.name)),
                Err(e) => Err(format!("test connection / import failed: {e}")),
            }
        })
    }
}

impl EngineJobFiles {
    /// The SCIM client of a stored job's target; a job sent through the
    /// admin API or the console connects where the egress policy permits.
    async fn client(&self, record: &JobRecord, spec: &JobSpec) -> Result<Client, String> {
        let egress = schedule::limited(record).then(|| self.egress.clone());
        if let Some(policy) = &egress {
            schedule::check_egress(spec, policy).await?;
        }
        let token = spec
            .target
            .token
            .reveal()
            .map_err(|e| format!("the target's Secret Token: {e}"))?;
        Client::limited(
            &spec.target.url,
            &token,
            spec.settings.concurrency,
            spec.settings.request_timeout,
            egress,
        )
    }
}

/// A parsed job as the console shows it.
fn outline(spec: &JobSpec) -> JobOutline {
    let object = |o: &ObjectSpec| ObjectOutline {
        enabled: o.enabled,
        create: o.actions.create,
        update: o.actions.update,
        delete: o.actions.delete,
        mappings: o
            .mappings
            .iter()
            .map(|m| {
                let (kind, source) = match &m.source {
                    MappingSource::Direct(a) => ("direct", a.clone()),
                    MappingSource::Constant(c) => ("constant", c.clone()),
                    MappingSource::Expression(e) => ("expression", e.to_string()),
                    MappingSource::None => ("none", String::new()),
                };
                MappingOutline {
                    target: m.target.key(),
                    kind: kind.into(),
                    source,
                    default: m.default.clone(),
                    apply: match m.apply {
                        Apply::Always => "always".into(),
                        Apply::CreateOnly => "create".into(),
                    },
                    matching: m.matching,
                }
            })
            .collect(),
        scoping: o
            .scoping
            .iter()
            .map(|f| {
                f.clauses
                    .iter()
                    .map(|c| ClauseOutline {
                        attribute: c.attribute.clone(),
                        operator: c.operator.name().into(),
                        value: c.value.clone(),
                    })
                    .collect()
            })
            .collect(),
    };
    JobOutline {
        source_kind: spec.source.kind().into(),
        source_url: match &spec.source {
            SourceSpec::Ldap(l) => Some(l.url.clone()),
            SourceSpec::Scim(s) => Some(s.url.clone()),
            SourceSpec::File(_) => None,
        },
        target_url: spec.target.url.clone(),
        dialect: spec.target.dialect.as_str().into(),
        scope_mode: match spec.scope.mode {
            ScopeMode::Assigned => "assigned".into(),
            ScopeMode::All => "all".into(),
        },
        scope_groups: spec.scope.groups.clone(),
        scope_users: spec.scope.users.clone(),
        interval: crate::sync::human(spec.settings.interval),
        deletion_threshold: spec.settings.deletion_threshold,
        notification_email: spec.settings.notification_email.clone(),
        users: object(&spec.users),
        groups: object(&spec.groups),
        source_attributes: scimitar_engine::template::source_attributes(&spec.source),
        operators: scimitar_engine::scoping::Operator::NAMES
            .iter()
            .map(|s| s.to_string())
            .collect(),
    }
}

impl EngineJobFiles {
    /// A job sent through the admin API whose target or source is written
    /// as an address the egress policy does not permit (`127.0.0.1`,
    /// `localhost`, `169.254.169.254`, …) is refused when it is stored;
    /// names are resolved and checked again before each cycle.
    fn refuse_private_literals(&self, text: &str, spec: &JobSpec) -> Result<(), JobFileError> {
        let source = match &spec.source {
            SourceSpec::Ldap(l) => Some(l.url.as_str()),
            SourceSpec::Scim(s) => Some(s.url.as_str()),
            SourceSpec::File(_) => None,
        };
        for (table, url) in [("target", Some(spec.target.url.as_str())), ("source", source)] {
            let Some(host) = url.and_then(scimitar_engine::egress::host_of) else {
                continue;
            };
            if let Some(ip) = scimitar_engine::egress::literal_address(&host)
                && !self.egress.permits(ip)
            {
                return Err(JobFileError {
                    line: line_of(text, table, "url"),
                    key: Some(format!("{table}.url")),
                    message: format!(
                        "'{host}' is {ip}, not a public address: a job sent through the admin API may connect to public addresses only (the server's operator can allow a range with --job-egress-allow)"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The line of `key` in `[table]` of a TOML text, if written there.
fn line_of(text: &str, table: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        } else if current == table && t.strip_prefix(key).is_some_and(|r| r.trim_start().starts_with('=')) {
            return Some(i + 1);
        }
    }
    None
}

/// Refuses what names the server's own files or environment: a file
/// source, `_file` and `_env` secrets. A tenant's administrator could
/// otherwise have the server read its key file, its database URL or any
/// file it can read, and send them to a target of their choosing.
fn refuse_server_local(text: &str) -> Result<(), JobFileError> {
    // A file that does not parse has nothing to refuse; the parser says
    // what is wrong with it.
    let Ok(doc) = toml::from_str::<toml::Table>(text) else {
        return Ok(());
    };
    let refuse = |table: &str, key: &str, what: &str| JobFileError {
        line: text
            .lines()
            .position(|l| {
                l.trim_start()
                    .strip_prefix(key)
                    .is_some_and(|r| r.trim_start().starts_with('='))
            })
            .map(|i| i + 1),
        key: Some(format!("{table}.{key}")),
        message: format!(
            "{what} on the server, which a job sent through the admin API may not; store such a job with `scimitar sync save` on the server"
        ),
    };
    let source = doc.get("source").and_then(toml::Value::as_table);
    if source.and_then(|s| s.get("kind")).and_then(toml::Value::as_str) == Some("file") {
        return Err(refuse("source", "kind", "a file source reads files"));
    }
    for table in ["source", "target"] {
        let Some(t) = doc.get(table).and_then(toml::Value::as_table) else {
            continue;
        };
        for key in ["token_file", "bind_password_file"] {
            if t.contains_key(key) {
                return Err(refuse(table, key, "a secret in a file is read"));
            }
        }
        for key in ["token_env", "bind_password_env"] {
            if t.contains_key(key) {
                return Err(refuse(table, key, "a secret in an environment variable is read"));
            }
        }
    }
    Ok(())
}

fn names_server_local(spec: &JobSpec) -> bool {
    let local = |s: &Secret| matches!(s, Secret::File(_) | Secret::Env(_));
    local(&spec.target.token)
        || match &spec.source {
            SourceSpec::File(_) => true,
            SourceSpec::Ldap(l) => l.bind_password.as_ref().is_some_and(local),
            SourceSpec::Scim(s) => local(&s.token),
        }
}

fn from_engine(e: JobError) -> JobFileError {
    JobFileError {
        line: e.line,
        key: e.key,
        message: e.message,
    }
}

/// A job file sent as JSON, written as TOML for the parser. Line numbers in
/// the parser's errors are then those of this TOML (what `GET` shows).
fn json_to_toml(v: &Value) -> Result<String, JobFileError> {
    let err = |key: Option<String>, message: String| JobFileError {
        line: None,
        key,
        message,
    };
    if !v.is_object() {
        return Err(err(
            None,
            "a job file in JSON is an object of the job file's keys".into(),
        ));
    }
    if let Some(path) = first_null(v, "") {
        return Err(err(
            Some(path),
            "null has no TOML form; leave the key out for its default".into(),
        ));
    }
    toml::to_string(v).map_err(|e| err(None, format!("this JSON has no TOML form: {e}")))
}

/// The dotted path of the first `null` in `v`, if any.
fn first_null(v: &Value, path: &str) -> Option<String> {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match v {
        Value::Null => Some(path.to_string()),
        Value::Object(m) => m.iter().find_map(|(k, v)| first_null(v, &join(k))),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| first_null(v, &join(&i.to_string()))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use serde_json::json;

    use super::*;

    /// JSON of a job file becomes TOML the parser reads as the same job,
    /// whatever the order of its keys (tables after plain keys in TOML).
    #[test]
    fn json_job_files_parse_like_toml() {
        let v = json!({
            "target": {"url": "https://a.example/scim/v2", "token": "t"},
            "mappings": {"user": [{"target": "title", "constant": "Staff"}]},
            "name": "j",
            "source": {"kind": "scim", "url": "https://b.example/scim/v2", "token": "s"},
            "interval": "5m",
            "scoping": {"user": [{"clauses": [{"attribute": "department", "operator": "EQUALS", "value": "42"}]}]},
        });
        let text = json_to_toml(&v).unwrap();
        let spec = parse_job(&text, std::path::Path::new(".")).unwrap();
        assert_eq!(spec.name, "j");
        assert_eq!(spec.settings.interval.as_secs(), 300);
        let e = json_to_toml(&json!({"name": "j", "target": {"token": null}})).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("target.token"));
        assert!(json_to_toml(&json!(["name"])).is_err());
    }
}
