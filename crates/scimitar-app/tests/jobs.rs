//! Jobs managed through the application layer with a stand-in for the
//! engine's `JobFiles`: what the layer itself decides (501 without one,
//! 409 on a second job of a name, 400 for a rename or a bad file, 404, the
//! view's fields, the audit entries).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;
use std::sync::Arc;

use scimitar_app::jobs::{
    CompiledJob, ExpressionError, JobEdit, JobFile, JobFileContext, JobFileError, JobFiles, JobFuture, JobOutline,
    JobSchedule, OnDemandObject,
};
use scimitar_app::{Actor, App, Config};
use scimitar_store::{JobRecord, TenantId};
use serde_json::{Value, json};

/// Reads `name = "…"` from the first line; anything else is a mistake on
/// line 1, as the engine would word it.
struct Fake;

impl JobFiles for Fake {
    fn compile(&self, file: JobFile<'_>, cx: &JobFileContext<'_>) -> Result<CompiledJob, JobFileError> {
        assert!(!cx.server_local, "the app compiles for tenant administrators");
        let JobFile::Toml(text) = file else {
            panic!("the fake reads TOML only")
        };
        let name = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("name = \""))
            .and_then(|l| l.strip_suffix('"'))
            .ok_or_else(|| JobFileError {
                line: Some(1),
                key: Some("name".into()),
                message: "missing".into(),
            })?;
        Ok(CompiledJob {
            name: name.to_string(),
            config: json!({"toml": text, "base": cx.base.display().to_string()}),
        })
    }

    fn schedule(&self, tenant: TenantId, record: &JobRecord) -> JobSchedule {
        JobSchedule {
            interval_seconds: Some(60),
            next_cycle: None,
            error: None,
            lease: format!("test/{tenant}/{}", record.name),
        }
    }

    fn shown(&self, record: &JobRecord) -> Result<String, String> {
        Ok(record.config["toml"]
            .as_str()
            .unwrap_or_default()
            .replace("secret", "(sealed)"))
    }

    fn outline(&self, _: &JobRecord) -> Result<JobOutline, String> {
        Ok(JobOutline::default())
    }

    /// Appends the edit as a line; `Credentials` with an empty URL is a
    /// mistake on line 2.
    fn edit(&self, text: &str, edit: &JobEdit) -> Result<String, JobFileError> {
        if matches!(edit, JobEdit::Credentials { url, .. } if url.is_empty()) {
            return Err(JobFileError {
                line: Some(2),
                key: Some("target.url".into()),
                message: "empty".into(),
            });
        }
        Ok(format!("{text}\n# {}", edit.describe()))
    }

    fn changes(&self, before: &Value, after: &Value) -> Vec<String> {
        if before == after {
            vec![]
        } else {
            vec!["target.url".into()]
        }
    }

    fn preview(&self, _: &JobRecord, expression: &str, object: &Value) -> Result<Value, ExpressionError> {
        if expression.starts_with('(') {
            return Err(ExpressionError {
                line: Some(1),
                column: Some(1),
                message: "expected a function".into(),
            });
        }
        Ok(object.clone())
    }

    fn test_connection<'a>(&'a self, _: &'a JobRecord) -> JobFuture<'a, Result<(), String>> {
        Box::pin(async { Err("the target refused the token".to_string()) })
    }

    /// A user runs; a group meets a running cycle.
    fn provision_on_demand<'a>(
        &'a self,
        _: &'a dyn scimitar_store::Store,
        _: TenantId,
        record: &'a JobRecord,
        object: OnDemandObject<'a>,
    ) -> JobFuture<'a, Result<Value, String>> {
        Box::pin(async move {
            match object {
                OnDemandObject::User(_) => Ok(json!({"cycle_id": "c-1", "kind": "onDemand"})),
                OnDemandObject::Group(_) => Err(format!("a cycle of '{}' is running (node-2)", record.name)),
            }
        })
    }
}

fn app(name: &str) -> Arc<App> {
    let dir = std::env::temp_dir().join(format!("scimitar-app-jobs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = scimitar_store_sqlite::SqliteStore::open(&dir.join("a.db")).unwrap();
    App::new(Arc::new(store), Config::new("http://localhost"))
}

#[tokio::test]
async fn without_the_engine_jobs_answer_501() {
    let app = app("none");
    let t = app.create_tenant(&Actor::Cli, "acme").await.unwrap();
    let e = app
        .create_job(&Actor::Cli, &t, JobFile::Toml("name = \"a\""), Path::new("/"))
        .await
        .unwrap_err();
    assert_eq!(e.status, 501, "{e:?}");
    assert!(e.detail.contains("provisioning engine"), "{}", e.detail);
    assert_eq!(app.job_views(&t).await.unwrap_err().status, 501);
}

#[tokio::test]
async fn create_replace_and_their_mistakes() {
    let app = app("crud");
    app.set_job_files(Arc::new(Fake));
    let t = app.create_tenant(&Actor::Cli, "acme").await.unwrap();
    let who = Actor::AdminApi {
        token_id: "tok1".into(),
        ip: None,
    };
    let base = Path::new("/srv");

    let made = app
        .create_job(&who, &t, JobFile::Toml("name = \"hr\"\nx = \"secret\""), base)
        .await
        .unwrap();
    assert_eq!((made.name.as_str(), made.status.as_str()), ("hr", "off"));
    assert_eq!(made.config["base"], "/srv");

    // (what is called, status, scimType, words in the detail)
    let cases: Vec<(&str, scimitar_protocol::ScimError, u16, Option<&str>, &str)> = vec![
        (
            "a second job of the name",
            app.create_job(&who, &t, JobFile::Toml("name = \"hr\""), base)
                .await
                .unwrap_err(),
            409,
            Some("uniqueness"),
            "already has a job named 'hr'",
        ),
        (
            "a bad file",
            app.create_job(&who, &t, JobFile::Toml("nom = 1"), base)
                .await
                .unwrap_err(),
            400,
            Some("invalidValue"),
            "line 1, key `name`: missing",
        ),
        (
            "a rename",
            app.replace_job(&who, &t, "hr", JobFile::Toml("name = \"other\""), base)
                .await
                .unwrap_err(),
            400,
            Some("invalidValue"),
            "names the job 'other'",
        ),
        (
            "an unknown job",
            app.replace_job(&who, &t, "nope", JobFile::Toml("name = \"nope\""), base)
                .await
                .unwrap_err(),
            404,
            None,
            "no job named 'nope'",
        ),
    ];
    for (what, e, status, scim_type, detail) in cases {
        let json = e.to_json();
        assert_eq!(e.status, status, "{what}: {json}");
        assert_eq!(json["scimType"].as_str(), scim_type, "{what}: {json}");
        assert!(e.detail.contains(detail), "{what}: {}", e.detail);
    }

    app.set_job_on(&who, &t, "hr", true).await.unwrap();
    let replaced = app
        .replace_job(&who, &t, "hr", JobFile::Toml("name = \"hr\"\ny = 2"), base)
        .await
        .unwrap();
    assert_eq!(replaced.status, "on", "a replaced job keeps its state");

    let view = app.job_detail(&t, "hr").await.unwrap();
    for key in [
        "name",
        "status",
        "interval_seconds",
        "last_cycle",
        "next_cycle",
        "running",
        "initial_next",
        "updated",
        "error",
        "job_file",
    ] {
        assert!(view.get(key).is_some(), "{key} missing from {view}");
    }
    assert_eq!(view["interval_seconds"], 60);
    assert_eq!(view["running"], Value::Null);
    assert_eq!(app.job_views(&t).await.unwrap().len(), 1);

    let audit = app.store.list_audit(Some(t.id), 20).await.unwrap();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .filter(|e| e.target.as_deref() == Some("hr"))
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    for want in ["job.created", "job.started", "job.changed"] {
        assert!(actions.contains(&(want, "token:tok1")), "{want} in {actions:?}");
    }
}

/// What the console's forms call: an edit goes through the same checks as
/// a whole file and is audited with what changed; a preview, Test
/// Connection and provisioning on demand come back as values or as SCIM
/// errors with the status each deserves.
#[tokio::test]
async fn edits_previews_tests_and_on_demand_runs() {
    let app = app("edits");
    app.set_job_files(Arc::new(Fake));
    let t = app.create_tenant(&Actor::Cli, "acme").await.unwrap();
    let who = Actor::Console {
        email: "admin@example.com".into(),
        ip: None,
    };
    app.create_job(
        &who,
        &t,
        JobFile::Toml("name = \"crm\"\nx = \"secret\""),
        Path::new("/srv"),
    )
    .await
    .unwrap();

    let edit = JobEdit::Credentials {
        url: "https://crm.example.com/scim/v2".into(),
        token: Some("new".into()),
    };
    let edited = app.edit_job(&who, &t, "crm", &edit).await.unwrap();
    let text = edited.config["toml"].as_str().unwrap();
    assert!(
        text.ends_with("# admin credentials (Tenant URL, Secret Token)"),
        "{text}"
    );
    assert!(text.contains("x = \"(sealed)\""), "edited as shown: {text}");
    let bad = JobEdit::Credentials {
        url: String::new(),
        token: None,
    };
    let e = app.edit_job(&who, &t, "crm", &bad).await.unwrap_err();
    assert_eq!((e.status, e.detail.as_str()), (400, "line 2, key `target.url`: empty"));
    assert_eq!(app.edit_job(&who, &t, "nope", &edit).await.unwrap_err().status, 404);

    let ok = app
        .preview_expression(&t, "crm", "[mail]", &json!({"mail": "a@b"}))
        .await
        .unwrap();
    assert_eq!(ok.unwrap(), json!({"mail": "a@b"}));
    let err = app
        .preview_expression(&t, "crm", "(", &json!({}))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!((err.line, err.column), (Some(1), Some(1)));

    let tested = app.test_job_connection(&who, &t, "crm").await.unwrap();
    assert_eq!(tested, Err("the target refused the token".to_string()));

    let run = app
        .provision_on_demand(&who, &t, "crm", OnDemandObject::User("uid=ada"))
        .await
        .unwrap();
    assert_eq!(run["summary"]["kind"], "onDemand");
    assert_eq!(run["records"], json!([]), "the fake logged nothing");
    let busy = app
        .provision_on_demand(&who, &t, "crm", OnDemandObject::Group("cn=eng"))
        .await
        .unwrap_err();
    assert_eq!(busy.status, 409, "{}", busy.detail);
    let empty = app
        .provision_on_demand(&who, &t, "crm", OnDemandObject::User(" "))
        .await
        .unwrap_err();
    assert_eq!(empty.status, 400);

    let audit = app.store.list_audit(Some(t.id), 50).await.unwrap();
    let changed = audit
        .iter()
        .find(|e| e.action == "job.changed")
        .expect("the edit is audited");
    assert_eq!(changed.detail.as_deref(), Some("changed: target.url"));
    assert_eq!(changed.actor, "admin@example.com");
    for want in ["job.connection-tested", "job.provisioned-on-demand"] {
        assert!(audit.iter().any(|e| e.action == want), "{want} audited");
    }
}
