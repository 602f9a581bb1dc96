//! Activity retention and read counters of the SQLite store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use scimitar_store::{ActivityEvent, ActivityQuery, Store};
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
