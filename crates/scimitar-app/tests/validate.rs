//! "Validate this tenant" with stand-ins for the validator: the run's
//! token is revoked whatever happens (the validator panics, the caller
//! goes away mid-run), and runs are bounded (one per tenant, `MAX_RUNS`
//! on a server).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Duration;

use scimitar_app::jobs::JobFuture;
use scimitar_app::validate::{MAX_RUNS, TenantValidator, ValidationReport};
use scimitar_app::{Actor, App, Config};
use scimitar_store::Tenant;
use tokio::sync::Notify;

/// Waits for `go`, then reports one passed test; or panics.
struct Fake {
    go: Arc<Notify>,
    panics: bool,
}

impl TenantValidator for Fake {
    fn validate<'a>(&'a self, url: &'a str, _token: &'a str) -> JobFuture<'a, ValidationReport> {
        Box::pin(async move {
            self.go.notified().await;
            assert!(!self.panics, "the validator panics");
            ValidationReport {
                url: url.to_string(),
                passed: 1,
                ..Default::default()
            }
        })
    }
}

fn app(name: &str, panics: bool) -> (Arc<App>, Arc<Notify>) {
    let dir = std::env::temp_dir().join(format!("scimitar-app-validate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = scimitar_store_sqlite::SqliteStore::open(&dir.join("a.db")).unwrap();
    let app = App::new(Arc::new(store), Config::new("http://localhost"));
    let go = Arc::new(Notify::new());
    app.set_validator(Arc::new(Fake { go: go.clone(), panics }));
    (app, go)
}

/// The tenant's validator tokens: (revoked, label).
async fn tokens(app: &App, t: &Tenant) -> Vec<(bool, String)> {
    app.store
        .list_tokens(t.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.label == "validator")
        .map(|t| (t.revoked.is_some(), t.label))
        .collect()
}

/// Polls until the tenant's validator tokens are all revoked.
async fn all_revoked(app: &App, t: &Tenant) {
    for _ in 0..200 {
        let ts = tokens(app, t).await;
        if !ts.is_empty() && ts.iter().all(|(revoked, _)| *revoked) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the validator's token is not revoked: {:?}", tokens(app, t).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_validator_still_has_its_token_revoked() {
    let (app, go) = app("panic", true);
    let t = app.create_tenant(&Actor::Cli, "acme").await.unwrap();
    go.notify_one();
    let r = app.validate_tenant(&Actor::Cli, &t).await.unwrap();
    assert!(r.error.is_some_and(|e| e.contains("failed")));
    all_revoked(&app, &t).await;
    // The slot is free again.
    go.notify_one();
    assert!(app.validate_tenant(&Actor::Cli, &t).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_caller_went_away_ends_and_revokes_its_token() {
    let (app, go) = app("dropped", false);
    let t = app.create_tenant(&Actor::Cli, "acme").await.unwrap();
    // The browser goes away while the run is going on: the handler's
    // future is dropped.
    let gone = tokio::time::timeout(Duration::from_millis(200), app.validate_tenant(&Actor::Cli, &t)).await;
    assert!(gone.is_err());
    assert_eq!(tokens(&app, &t).await, [(false, "validator".to_string())]);
    // The run goes on to its end.
    go.notify_one();
    all_revoked(&app, &t).await;
    for _ in 0..200 {
        let audit = app.store.list_audit(Some(t.id), 100).await.unwrap();
        if audit.iter().any(|e| e.action == "tenant.validated") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the run is not audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_bounded() {
    let (app, go) = app("bounded", false);
    let mut tenants = Vec::new();
    for i in 0..=MAX_RUNS {
        tenants.push(app.create_tenant(&Actor::Cli, &format!("t{i}")).await.unwrap());
    }
    let mut running = Vec::new();
    for t in tenants.iter().take(MAX_RUNS) {
        let (app, t) = (app.clone(), t.clone());
        running.push(tokio::spawn(async move { app.validate_tenant(&Actor::Cli, &t).await }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A second run of a tenant being validated, and one run too many.
    let again = app.validate_tenant(&Actor::Cli, &tenants[0]).await.unwrap_err();
    assert_eq!(again.status, 429);
    assert!(again.detail.contains("already"), "{}", again.detail);
    let more = app.validate_tenant(&Actor::Cli, &tenants[MAX_RUNS]).await.unwrap_err();
    assert_eq!(more.status, 429);
    for _ in 0..MAX_RUNS {
        go.notify_one();
    }
    for r in running {
        assert_eq!(r.await.unwrap().unwrap().passed, 1);
    }
    go.notify_one();
    assert!(app.validate_tenant(&Actor::Cli, &tenants[MAX_RUNS]).await.is_ok());
}
