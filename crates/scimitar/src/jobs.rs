//! The engine's side of `scimitar_app::jobs::JobFiles`: how a job file is
//! compiled for storage and a stored job described. The binary is the one
//! crate that knows both the application layer and the engine, so the CLI
//! (`sync save`, `sync jobs`) and the admin API (through the server's
//! `App`) share this one implementation.

use std::borrow::Cow;

use scimitar_app::jobs::{CompiledJob, JobFile, JobFileContext, JobFileError, JobFiles, JobSchedule};
use scimitar_engine::job::{JobError, JobSpec, Secret, SourceSpec, parse_job, redact_sealed, seal_secrets_keeping};
use scimitar_engine::schedule;
use scimitar_store::{JobRecord, TenantId};
use serde_json::Value;

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
