//! Jobs managed through the application layer with a stand-in for the
//! engine's `JobFiles`: what the layer itself decides (501 without one,
//! 409 on a second job of a name, 400 for a rename or a bad file, 404, the
//! view's fields, the audit entries).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::path::Path;
use std::sync::Arc;

use scimitar_app::jobs::{CompiledJob, JobFile, JobFileContext, JobFileError, JobFiles, JobSchedule};
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
