//! Event retention: the housekeeping that purges old activity purges
//! events older than `event_retention_days` too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use scimitar_app::{App, Config};
use scimitar_store::NewEvent;
use serde_json::json;

#[tokio::test]
async fn housekeeping_purges_events_past_their_retention() {
    let dir = std::env::temp_dir().join(format!("scimitar-app-events-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = scimitar_store_sqlite::SqliteStore::open(&dir.join("a.db")).unwrap();
    let mut config = Config::new("http://127.0.0.1:1");
    config.event_retention_days = 2;
    let app = App::new(Arc::new(store), config);
    let t = app.store.create_tenant("acme").await.unwrap();
    let at = |days_ago: i64| {
        let mut e = NewEvent::new("user.created", Some("u"), json!({"days_ago": days_ago}));
        e.time = scimitar_store::utc_in(-days_ago * 86_400);
        e
    };
    app.store
        .record_events(t.id, vec![at(5), at(3), at(1), at(0)])
        .await
        .unwrap();
    app.housekeeping().await;
    let left = app.store.list_events(t.id, 0, 100, &[]).await.unwrap();
    let ages: Vec<i64> = left.iter().map(|e| e.data["days_ago"].as_i64().unwrap()).collect();
    assert_eq!(ages, [1, 0]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server shutting down ends its long polls at once instead of holding
/// its shutdown for their `wait`.
#[tokio::test]
async fn ending_long_polls_answers_waiters_at_once() {
    let dir = std::env::temp_dir().join(format!("scimitar-app-events-end-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = scimitar_store_sqlite::SqliteStore::open(&dir.join("a.db")).unwrap();
    let app = App::new(Arc::new(store), Config::new("http://127.0.0.1:1"));
    let t = app.store.create_tenant("acme").await.unwrap();
    let waiting = {
        let (app, t) = (app.clone(), t.clone());
        tokio::spawn(async move {
            let q = scimitar_app::events::EventQuery {
                after: 0,
                limit: 10,
                types: vec![],
                wait: std::time::Duration::from_secs(50),
            };
            app.read_events(&t, q).await.unwrap()
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let asked = std::time::Instant::now();
    app.end_long_polls();
    let page = tokio::time::timeout(std::time::Duration::from_secs(2), waiting)
        .await
        .expect("the long poll ended")
        .unwrap();
    assert!(asked.elapsed() < std::time::Duration::from_secs(1));
    assert!(page.events.is_empty());
    assert_eq!(page.next_seq, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Adding an endpoint, or enabling one, tells this process's webhook
/// supervisor at once (it starts the endpoint's worker without waiting for
/// its poll); disabling one does not.
#[tokio::test]
async fn adding_or_enabling_an_endpoint_wakes_the_supervisor() {
    use scimitar_webhooks::worker::EventSource;
    let dir = std::env::temp_dir().join(format!("scimitar-app-endpoints-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = scimitar_store_sqlite::SqliteStore::open(&dir.join("a.db")).unwrap();
    let mut config = Config::new("http://127.0.0.1:1");
    config.webhook_allow = vec!["127.0.0.0/8".parse().unwrap()];
    let app = App::new(Arc::new(store), config);
    let t = app.store.create_tenant("acme").await.unwrap();
    let mut rx = app.outbox_events().endpoints_changed().unwrap();
    let actor = scimitar_app::Actor::Cli;
    let (w, _) = app
        .add_webhook(&actor, &t, "http://127.0.0.1:9/hook", &[])
        .await
        .unwrap();
    assert!(rx.has_changed().unwrap(), "added");
    rx.mark_unchanged();
    app.set_webhook_enabled(&actor, &t, &w.id, false).await.unwrap();
    assert!(!rx.has_changed().unwrap(), "disabled");
    app.set_webhook_enabled(&actor, &t, &w.id, true).await.unwrap();
    assert!(rx.has_changed().unwrap(), "enabled");
    let _ = std::fs::remove_dir_all(&dir);
}
