//! The storage conformance suite on PostgreSQL. Runs when
//! SCIMITAR_TEST_POSTGRES_URL names a server (each test gets its own
//! schema in that database, created if missing, and dropped when the test
//! ends); otherwise `build.rs` leaves `scimitar_pg_tests` unset and every
//! test that needs the server is reported as ignored, with the reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;

use scimitar_store::{Kind, Mutation, NewResource, Store, TenantStore};
use scimitar_store_postgres::PostgresStore;
use scimitar_store_postgres::test_support::{fresh_store, fresh_url, schema_of};

const VAR: &str = "SCIMITAR_TEST_POSTGRES_URL";

/// The server's URL. These tests are only built to run (not ignored) when
/// the variable was set at build time; `cargo test` rebuilds when it
/// changes, so missing now means the binary was run by hand.
fn url() -> Option<String> {
    match std::env::var(VAR) {
        Ok(u) if !u.is_empty() => Some(u),
        _ => panic!("{VAR} was set when these tests were built, and is not set now"),
    }
}

async fn postgres_store() -> Option<Arc<dyn Store>> {
    let url = url()?;
    Some(Arc::new(
        fresh_store(&url, 4)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}")),
    ))
}

scimitar_store_conformance::store_conformance!(postgres_store, #[cfg_attr(not(scimitar_pg_tests), ignore = "SCIMITAR_TEST_POSTGRES_URL is not set")]);

/// Shown as "ignored" with how to enable the PostgreSQL tests when
/// SCIMITAR_TEST_POSTGRES_URL was not set at build time; otherwise checks
/// that the database is reachable and fully migrated.
#[tokio::test]
#[cfg_attr(
    not(scimitar_pg_tests),
    ignore = "PostgreSQL tests skipped: set SCIMITAR_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/scimitar_test to run them"
)]
async fn postgres_is_reachable_and_migrated() {
    let store = postgres_store().await.expect("SCIMITAR_TEST_POSTGRES_URL is set");
    store.ready().await.expect("PostgreSQL is reachable and migrated");
}

/// Two stores with their own pools stand for two server processes: they
/// migrate the same schema at once, then race read-modify-write cycles on
/// one row. Row locks must serialise them without losing an update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimitar_pg_tests), ignore = "SCIMITAR_TEST_POSTGRES_URL is not set")]
async fn two_processes_share_a_database() {
    let Some(base) = url() else { return };
    let url = fresh_url(&base).await.unwrap();
    let (a, b) = tokio::join!(PostgresStore::connect(&url, 3), PostgresStore::connect(&url, 3));
    let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (Arc::new(a.unwrap()), Arc::new(b.unwrap()));
    PostgresStore::migrate_only(&url).await.unwrap();
    let t = a.create_tenant("t").await.unwrap().id;
    let doc = serde_json::json!({"userName": "n", "nickName": "0"});
    a.create(
        t,
        NewResource {
            events: Default::default(),
            kind: Kind::User,
            id: "u".into(),
            doc: doc.as_object().unwrap().clone(),
            members: vec![],
            created: "2024-01-01T00:00:00.000Z".into(),
            activity: None,
            unique: vec![],
        },
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for i in 0..30 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let f: scimitar_store::ModifyFn = Arc::new(|cur, _| {
                let mut doc = cur.doc.clone();
                let v: u64 = doc["nickName"].as_str().unwrap_or("0").parse().unwrap_or(0);
                doc.insert("nickName".into(), (v + 1).to_string().into());
                Ok(Mutation {
                    events: Default::default(),
                    doc,
                    member_ops: vec![],
                    activity: None,
                    unique: Default::default(),
                })
            });
            s.modify(t, Kind::User, "u", None, "2024-01-02T00:00:00.000Z", f)
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let r = b.get(t, Kind::User, "u").await.unwrap().unwrap();
    assert_eq!((r.doc["nickName"].as_str(), r.version), (Some("30"), 31));
}

#[tokio::test]
async fn bad_url_is_an_error_not_a_panic() {
    assert!(PostgresStore::connect("not a url", 1).await.is_err());
}

/// After a bulk load the planner's statistics are refreshed by the check
/// the server runs every 10 seconds, and only then: autovacuum may be off
/// (it is on this project's CI machine), and plans made without statistics
/// read every User of a tenant for one lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimitar_pg_tests), ignore = "SCIMITAR_TEST_POSTGRES_URL is not set")]
async fn stale_statistics_are_refreshed_after_a_bulk_load() {
    use scimitar_store::ResourceStore;
    let Some(url) = url() else { return };
    let url = fresh_url(&url).await.unwrap();
    let store = PostgresStore::connect(&url, 2).await.unwrap();
    assert_eq!(store.refresh_stale_statistics().await.unwrap(), Vec::<String>::new());
    let tenant = store.create_tenant("bulk").await.unwrap();
    // A bulk load on a connection of its own, whose statistics are flushed
    // at once (PostgreSQL otherwise reports them within seconds).
    let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c.execute(
        "INSERT INTO resources (tenant_id, kind, id, user_name_ci, version, created, modified, doc) \
         SELECT $1, 'User', 'u' || n, 'user' || n, 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', '{}'::jsonb \
         FROM generate_series(1, 3000) n",
        &[&tenant.id],
    )
    .await
    .unwrap();
    c.batch_execute("SELECT pg_stat_force_next_flush()").await.unwrap();
    c.batch_execute("SELECT 1").await.unwrap();
    let mut analysed = Vec::new();
    for _ in 0..50 {
        analysed = store.refresh_stale_statistics().await.unwrap();
        if !analysed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(analysed, ["resources"]);
    let last: Option<std::time::SystemTime> = c
        .query_one(
            "SELECT last_analyze FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'resources'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(last.is_some(), "resources was analysed");
    // Fresh statistics: nothing to do until the next bulk change.
    assert_eq!(store.refresh_stale_statistics().await.unwrap(), Vec::<String>::new());
}

/// Three stores with their own pools stand for three nodes: writers on all
/// of them, and a reader on two of them following the cursor while the
/// writers commit (each reader's numbering pass races the other's). Every
/// reader ends with exactly the table's events, numbered once, and each
/// resource's events in the order of its changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimitar_pg_tests), ignore = "SCIMITAR_TEST_POSTGRES_URL is not set")]
async fn events_across_nodes_are_numbered_once_and_skip_nothing() {
    use scimitar_store::NewEvent;
    let Some(base) = url() else { return };
    let url = fresh_url(&base).await.unwrap();
    PostgresStore::migrate_only(&url).await.unwrap();
    let mut nodes: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..3 {
        nodes.push(Arc::new(PostgresStore::connect(&url, 4).await.unwrap()));
    }
    let t = nodes[0].create_tenant("t").await.unwrap().id;
    let (writers, per) = (12usize, 15i64);
    for w in 0..writers {
        let doc = serde_json::json!({"userName": format!("w{w}")});
        nodes[w % 3]
            .create(
                t,
                NewResource {
                    events: Default::default(),
                    kind: Kind::User,
                    id: format!("w{w}"),
                    doc: doc.as_object().unwrap().clone(),
                    members: vec![],
                    created: "2024-01-01T00:00:00.000Z".into(),
                    activity: None,
                    unique: vec![],
                },
            )
            .await
            .unwrap();
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in [1usize, 2] {
        let (s, done) = (nodes[r].clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let (mut after, mut seen) = (0i64, Vec::new());
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let page = s.list_events(t, after, 13, &[]).await.unwrap();
                for e in &page {
                    assert!(e.seq > after);
                    after = e.seq;
                    seen.push((e.seq, e.id.clone()));
                }
                if finished && page.is_empty() {
                    return seen;
                }
            }
        }));
    }
    let mut tasks = Vec::new();
    for w in 0..writers {
        let s = nodes[w % 3].clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("w{w}");
            for i in 0..per {
                let event = NewEvent::new("user.updated", Some(&id), serde_json::json!({"id": id, "v": i}));
                let events = scimitar_store::ChangeEvents {
                    events: vec![event],
                    members: None,
                    change: None,
                };
                let f: scimitar_store::ModifyFn = Arc::new(move |cur, _| {
                    let mut doc = cur.doc.clone();
                    doc.insert("title".into(), i.to_string().into());
                    Ok(Mutation {
                        events: events.clone(),
                        doc,
                        member_ops: vec![],
                        activity: None,
                        unique: Default::default(),
                    })
                });
                s.modify(t, Kind::User, &id, None, "2024-01-02T00:00:00.000Z", f)
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let table: Vec<(i64, String)> = nodes[0]
        .list_events(t, 0, 10_000, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.id))
        .collect();
    assert_eq!(table.len(), writers * per as usize);
    for reader in readers {
        assert_eq!(reader.await.unwrap(), table);
    }
    let all = nodes[0].list_events(t, 0, 10_000, &[]).await.unwrap();
    for w in 0..writers {
        let id = format!("w{w}");
        let vs: Vec<i64> = all
            .iter()
            .filter(|e| e.data["id"] == id.as_str())
            .filter_map(|e| e.data["v"].as_i64())
            .collect();
        assert_eq!(vs, (0..per).collect::<Vec<_>>(), "{id}");
    }
}

/// Whether the schema `name` exists in the database at `url`.
async fn schema_exists(url: &str, name: &str) -> bool {
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    c.query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&name])
        .await
        .unwrap()
        .is_some()
}

/// A test's schema goes with it: when its guard (or the last clone of a
/// store made by `fresh_store`) is dropped, and when the test panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimitar_pg_tests), ignore = "SCIMITAR_TEST_POSTGRES_URL is not set")]
async fn a_tests_schema_is_dropped_when_the_test_ends_also_on_failure() {
    let Some(base) = url() else { return };
    // The guard of `fresh_url`.
    let schema = fresh_url(&base).await.unwrap();
    let name = schema.name().to_string();
    assert!(schema_exists(&base, &name).await);
    drop(schema);
    assert!(!schema_exists(&base, &name).await, "{name} is left behind");

    // A store of `fresh_store`, used by a test that fails: the schema goes
    // while the panic unwinds.
    let (tx, rx) = std::sync::mpsc::channel();
    let failing = {
        let base = base.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    let store = fresh_store(&base, 2).await.unwrap();
                    store.create_tenant("t").await.unwrap();
                    tx.send(schema_of(&store).unwrap().to_string()).unwrap();
                    panic!("the test fails");
                })
        })
    };
    assert!(failing.join().is_err(), "the test failed");
    let name = rx.recv().unwrap();
    assert!(
        !schema_exists(&base, &name).await,
        "{name} is left behind by a failed test"
    );
}
