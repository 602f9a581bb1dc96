//! Activity retention and read counters of the SQLite store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use scimitar_store::prelude::*;
use scimitar_store::{ActivityEvent, ActivityQuery, NewResource};
use scimitar_store_sqlite::SqliteStore;
use serde_json::json;

fn event(tenant: i64, time: &str) -> ActivityEvent {
    ActivityEvent {
        id: 0,
        tenant_id: tenant,
        time: time.to_string(),
        token_id: None,
        token_label: None,
        action: "create".into(),
        resource_type: Some("User".into()),
        resource_id: Some("u1".into()),
        name: Some("ann".into()),
        changes: json!([]),
        outcome: "success".into(),
        status: 201,
        error: None,
        method: "POST".into(),
        path: "/Users".into(),
        change: None,
    }
}

#[tokio::test]
async fn retention_deletes_old_activity_in_every_tenant_and_keeps_recent() {
    let dir = std::env::temp_dir().join(format!("scimitar-activity-{}", std::process::id()));
    let store = SqliteStore::open(&dir.join("a.db")).unwrap();
    let a = store.create_tenant("a").await.unwrap();
    let b = store.create_tenant("b").await.unwrap();
    for (t, time) in [
        (a.id, "2020-01-01T00:00:00.000Z"),
        (b.id, "2020-06-01T00:00:00.000Z"),
        (a.id, "2026-11-01T00:00:00.000Z"),
    ] {
        store.record_activity(event(t, time)).await.unwrap();
    }
    store.count_reads(a.id, "2020-01-01T00", 3).await.unwrap();
    store.count_reads(a.id, "2026-11-01T10", 4).await.unwrap();
    store.count_reads(a.id, "2026-11-01T10", 1).await.unwrap();
    assert_eq!(store.purge_activity("2026-01-01T00:00:00.000Z").await.unwrap(), 2);
    let left = store
        .list_activity(
            a.id,
            ActivityQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].time, "2026-11-01T00:00:00.000Z");
    assert!(
        store
            .list_activity(
                b.id,
                ActivityQuery {
                    limit: 10,
                    ..Default::default()
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
    let reads = store.read_counts(a.id, "").await.unwrap();
    assert_eq!(reads.len(), 1, "old read counters go with the retention");
    assert_eq!(reads[0].count, 5);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Group commit: concurrent writes share transactions, yet each stays
/// atomic on its own: a failing write does not undo or block the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_commit_together_and_fail_alone() {
    use scimitar_store::{Kind, StoreError};
    let dir = std::env::temp_dir().join(format!("scimitar-batch-{}", std::process::id()));
    let store = std::sync::Arc::new(SqliteStore::open(&dir.join("b.db")).unwrap());
    let t = store.create_tenant("t").await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            // Every fifth write reuses the userName of the one before it.
            let name = if i % 5 == 4 {
                format!("user{}", i - 1)
            } else {
                format!("user{i}")
            };
            let doc = json!({"userName": name}).as_object().unwrap().clone();
            store
                .create(
                    t.id,
                    NewResource {
                        events: Default::default(),
                        kind: Kind::User,
                        id: format!("id{i}"),
                        doc,
                        members: vec![],
                        created: "2026-01-01T00:00:00.000Z".into(),
                        activity: None,
                        unique: vec![],
                    },
                )
                .await
        }));
    }
    let mut ok = 0;
    let mut conflicts = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict(attr)) => {
                assert_eq!(attr, "userName");
                conflicts += 1;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!((ok, conflicts), (48, 12));
    // Of each pair that raced for one userName exactly one exists; every
    // other write is there.
    let exists = |i: usize| {
        let store = store.clone();
        async move { store.get(t.id, Kind::User, &format!("id{i}")).await.unwrap().is_some() }
    };
    for i in 0..60 {
        match i % 5 {
            3 => assert!(exists(i).await ^ exists(i + 1).await, "pair {i}"),
            4 => {}
            _ => assert!(exists(i).await, "id{i}"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
