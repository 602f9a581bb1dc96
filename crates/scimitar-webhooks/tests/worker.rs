//! The delivery workers against the test receiver, on SQLite (or
//! PostgreSQL with `SCIMITAR_TEST_BACKEND=postgres`): order, the type
//! filter, retries, a receiver that is down for a while, giving up and
//! replay, secret rotation while deliveries are pending, a restart that
//! resumes from the stored cursor, and three nodes that deliver each event
//! once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use scimitar_store::webhooks::NewWebhook;
use scimitar_store::{Store, TenantId};
use scimitar_testkit::webhook::{Behaviour, Receiver};
use scimitar_webhooks::policy::Policy;
use scimitar_webhooks::retry::Next;
use scimitar_webhooks::send::{Sender, Timeouts};
use scimitar_webhooks::sign::new_secret;
use scimitar_webhooks::worker::{Dispatcher, MemoryEvents, Settings};
use serde_json::json;

static DIRS: AtomicUsize = AtomicUsize::new(0);

/// `n` stores on one database: on PostgreSQL, `n` connection pools to one
/// fresh schema (as `n` nodes have); on SQLite, one store.
async fn stores(n: usize) -> Vec<Arc<dyn Store>> {
    if std::env::var("SCIMITAR_TEST_BACKEND").as_deref() == Ok("postgres") {
        let url = std::env::var("SCIMITAR_TEST_POSTGRES_URL").expect("SCIMITAR_TEST_POSTGRES_URL");
        // One schema, kept until the last of the stores goes.
        return scimitar_store_postgres::test_support::fresh_stores(&url, n, 4)
            .await
            .unwrap()
            .into_iter()
            .map(|s| Arc::new(s) as Arc<dyn Store>)
            .collect();
    }
    vec![store().await; n]
}

async fn store() -> Arc<dyn Store> {
    if std::env::var("SCIMITAR_TEST_BACKEND").as_deref() == Ok("postgres") {
        let url = std::env::var("SCIMITAR_TEST_POSTGRES_URL").expect("SCIMITAR_TEST_POSTGRES_URL");
        return Arc::new(
            scimitar_store_postgres::test_support::fresh_store(&url, 8)
                .await
                .unwrap(),
        );
    }
    let n = DIRS.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("scimitar-webhooks-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Arc::new(scimitar_store_sqlite::SqliteStore::open(&dir.join("test.db")).unwrap())
}

fn sender() -> Sender {
    Sender::new(
        Arc::new(Policy {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
        }),
        Timeouts {
            connect: Duration::from_secs(1),
            total: Duration::from_secs(2),
        },
    )
    .unwrap()
}

/// Retries after 20 ms; gives up at the 4th failed attempt.
fn fast_retry(failed: u32, _since: Duration, retry_after: Option<Duration>, _r: f64) -> Next {
    if failed >= 4 {
        return Next::Fail;
    }
    Next::Retry(retry_after.map_or(Duration::from_millis(20), |d| d.min(Duration::from_secs(1))))
}

/// Never gives up (a receiver down for a while).
fn patient_retry(_failed: u32, _since: Duration, _ra: Option<Duration>, _r: f64) -> Next {
    Next::Retry(Duration::from_millis(30))
}

fn settings(holder: &str, retry: scimitar_webhooks::worker::RetryRule) -> Settings {
    Settings {
        holder: holder.into(),
        lease: Duration::from_secs(2),
        poll: Duration::from_millis(50),
        batch: 10,
        in_flight: 8,
        retry,
    }
}

struct Setup {
    store: Arc<dyn Store>,
    events: Arc<MemoryEvents>,
    tenant: TenantId,
    secret: String,
    rx: Receiver,
}

async fn setup(types: &[&str]) -> Setup {
    let store = store().await;
    let tenant = store.create_tenant("acme").await.unwrap().id;
    let secret = new_secret().unwrap();
    let rx = Receiver::start(&[&secret]).await;
    store
        .create_webhook(
            tenant,
            &NewWebhook {
                id: "wh_1".into(),
                url: rx.url(),
                types: types.iter().map(|t| t.to_string()).collect(),
                secret_sealed: scimitar_auth::seal::seal(&secret).unwrap(),
            },
        )
        .await
        .unwrap();
    Setup {
        store,
        events: Arc::new(MemoryEvents::default()),
        tenant,
        secret,
        rx,
    }
}

impl Setup {
    fn start(&self, holder: &str, retry: scimitar_webhooks::worker::RetryRule) -> Dispatcher {
        Dispatcher::start(
            self.store.clone(),
            self.events.clone(),
            sender(),
            settings(holder, retry),
        )
    }

    /// Waits until the endpoint's cursor is set (the worker has started, after
    /// the events that were there before it).
    async fn started(&self) {
        for _ in 0..200 {
            let w = self.store.webhook(self.tenant, "wh_1").await.unwrap().unwrap();
            if w.state.cursor.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the worker did not start");
    }

    fn push(&self, n: usize, kind: &str) -> Vec<String> {
        (0..n)
            .map(|i| self.events.push(self.tenant, kind, json!({"i": i})).id)
            .collect()
    }
}

impl Setup {
    /// The delivery log, newest first, once it has `n` lines (the receiver
    /// may see a delivery before its line is written).
    async fn log_of_at_least(&self, n: usize) -> Vec<scimitar_store::webhooks::DeliveryRecord> {
        for _ in 0..200 {
            let log = self.store.webhook_log(self.tenant, "wh_1", 1000).await.unwrap();
            if log.len() >= n {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.store.webhook_log(self.tenant, "wh_1", 1000).await.unwrap()
    }
}

fn ids(ds: &[scimitar_testkit::webhook::Delivery]) -> Vec<String> {
    ds.iter().map(|d| d.id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_delivered_once_in_order_and_filtered_by_type() {
    let s = setup(&["user.created", "user.deleted"]).await;
    // Events from before the endpoint's worker started are not sent.
    s.push(2, "user.created");
    let _d = s.start("node-a", fast_retry);
    s.started().await;
    let mut want = Vec::new();
    for i in 0..25 {
        let kind = ["user.created", "group.created", "user.deleted"][i % 3];
        let id = s.events.push(s.tenant, kind, json!({"i": i})).id;
        if kind != "group.created" {
            want.push(id);
        }
    }
    let got = s.rx.wait_for(want.len(), Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        ids(&s.rx.received()),
        want,
        "each once, in order, only the types asked for"
    );
    assert!(s.rx.rejected().is_empty());
    // The body is the event.
    assert_eq!(got[0].body["id"], want[0].as_str());
    assert_eq!(got[0].body["type"], "user.created");
    let w = s.store.webhook(s.tenant, "wh_1").await.unwrap().unwrap();
    assert_eq!(w.state.cursor, Some(27), "past the skipped ones too");
    let log = s.log_of_at_least(want.len()).await;
    assert_eq!(log.len(), want.len());
    assert!(
        log.iter()
            .all(|l| l.status == "delivered" && l.response_code == Some(200))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_and_retry_after_is_honoured() {
    let s = setup(&[]).await;
    let _d = s.start("node-a", fast_retry);
    s.started().await;
    s.rx.script([
        Behaviour::Status(500),
        Behaviour::TooManyRequests("1".into()),
        Behaviour::Redirect("https://elsewhere.example/".into()),
    ]);
    let want = s.push(3, "user.updated");
    let started = std::time::Instant::now();
    let got = s.rx.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(ids(&got), want);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was waited for"
    );
    // The first event was tried four times, with the same id each time.
    let all = ids(&s.rx.received());
    assert_eq!(
        all[..4],
        [want[0].clone(), want[0].clone(), want[0].clone(), want[0].clone()]
    );
    let log = s.log_of_at_least(6).await;
    let statuses: Vec<(&str, Option<i64>, i64)> = log
        .iter()
        .rev()
        .map(|l| (l.status.as_str(), l.response_code, l.attempts))
        .collect();
    assert_eq!(
        statuses,
        [
            ("retrying", Some(500), 1),
            ("retrying", Some(429), 2),
            ("retrying", Some(301), 3),
            ("delivered", Some(200), 4),
            ("delivered", Some(200), 1),
            ("delivered", Some(200), 1),
        ]
    );
    assert!(
        log.iter()
            .rev()
            .nth(2)
            .unwrap()
            .error
            .as_deref()
            .unwrap()
            .contains("redirects are not followed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_while_gets_everything_in_order() {
    let s = setup(&[]).await;
    let _d = s.start("node-a", patient_retry);
    s.started().await;
    s.rx.down();
    let want = s.push(15, "user.updated");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let w = s.store.webhook(s.tenant, "wh_1").await.unwrap().unwrap();
    assert!(w.state.attempts >= 2, "retrying while down: {:?}", w.state);
    assert!(w.state.last_error.as_deref().unwrap().contains("connect"));
    s.rx.up().await;
    let got = s.rx.wait_for(15, Duration::from_secs(10)).await;
    assert_eq!(ids(&got), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_keeps_failing_is_set_aside_and_replayed() {
    let s = setup(&[]).await;
    let _d = s.start("node-a", fast_retry);
    s.started().await;
    s.rx.script(std::iter::repeat_n(Behaviour::Status(503), 4));
    let want = s.push(3, "user.deleted");
    // The first is given up after 4 attempts; the next two go through.
    let got = s.rx.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(ids(&got), want[1..]);
    let failed = s.store.failed_events(s.tenant, "wh_1", 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].event_id, want[0]);
    assert!(failed[0].error.as_deref().unwrap().contains("503"));
    // Replay sends it again, with its id, and empties the failed list.
    assert_eq!(s.store.replay_failed(s.tenant, "wh_1").await.unwrap(), 1);
    let got = s.rx.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(got[2].id, want[0]);
    for _ in 0..100 {
        if s.store.failed_events(s.tenant, "wh_1", 10).await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(s.store.failed_events(s.tenant, "wh_1", 10).await.unwrap().is_empty());
    let log = s.store.webhook_log(s.tenant, "wh_1", 1).await.unwrap();
    assert_eq!(log[0].status, "replayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_rotated_while_deliveries_are_pending() {
    let s = setup(&[]).await;
    let _d = s.start("node-a", patient_retry);
    s.started().await;
    s.rx.down();
    let want = s.push(3, "user.created");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let new = new_secret().unwrap();
    let until = scimitar_store::utc_in(24 * 3600);
    let sealed = scimitar_auth::seal::seal(&new).unwrap();
    assert!(
        s.store
            .rotate_webhook_secret(s.tenant, "wh_1", &sealed, &until)
            .await
            .unwrap()
    );
    // Two failed attempts after the rotation: the worker has read it (an
    // attempt already under way signs with the old secret only).
    let before = s.store.webhook_log(s.tenant, "wh_1", 1000).await.unwrap().len();
    s.log_of_at_least(before + 2).await;
    // The receiver knows only the new secret: both are sent, so it accepts.
    s.rx.set_secrets(&[&new]);
    s.rx.up().await;
    let got = s.rx.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(ids(&got), want);
    assert!(got.iter().all(|d| d.signature.split(' ').count() == 2));
    assert!(s.rx.rejected().is_empty());
    // And a receiver still on the old one accepts them too.
    s.rx.set_secrets(&[&s.secret]);
    let more = s.push(1, "user.created");
    let got = s.rx.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(got[3].id, more[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_from_the_stored_cursor() {
    let s = setup(&[]).await;
    let d = s.start("node-a", fast_retry);
    s.started().await;
    let first = s.push(5, "user.created");
    s.rx.wait_for(5, Duration::from_secs(10)).await;
    // Stopped once the cursor is stored (stopped between the receiver's 2xx
    // and that, the last event would come again, with its id).
    s.log_of_at_least(5).await;
    d.stop();
    let second = s.push(5, "user.created");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.rx.received().len(), 5, "nothing sent while stopped");
    // Another process (its lease must wait for node-a's to expire).
    let _d2 = s.start("node-b", fast_retry);
    let got = s.rx.wait_for(10, Duration::from_secs(10)).await;
    assert_eq!(ids(&got), [first, second].concat());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_each_event_once_and_one_takes_over() {
    let s = setup(&[]).await;
    // Three nodes, each its own lease holder: on PostgreSQL each with its
    // own connections to one database; on SQLite one store.
    let nodes: Vec<Arc<dyn Store>> = if std::env::var("SCIMITAR_TEST_BACKEND").as_deref() == Ok("postgres") {
        let nodes = stores(3).await;
        // A fresh database: the tenant and endpoint made again there.
        let t = nodes[0].create_tenant("acme").await.unwrap().id;
        assert_eq!(t, s.tenant, "the same tenant id in the fresh schema");
        nodes[0]
            .create_webhook(
                t,
                &NewWebhook {
                    id: "wh_1".into(),
                    url: s.rx.url(),
                    types: vec![],
                    secret_sealed: scimitar_auth::seal::seal(&s.secret).unwrap(),
                },
            )
            .await
            .unwrap();
        nodes
    } else {
        vec![s.store.clone(); 3]
    };
    let mut running: Vec<Option<Dispatcher>> = nodes
        .iter()
        .enumerate()
        .map(|(i, store)| {
            Some(Dispatcher::start(
                store.clone(),
                s.events.clone(),
                sender(),
                settings(&format!("node-{i}"), fast_retry),
            ))
        })
        .collect();
    let first = &nodes[0];
    for _ in 0..200 {
        if first
            .webhook(s.tenant, "wh_1")
            .await
            .unwrap()
            .unwrap()
            .state
            .cursor
            .is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let want = s.push(40, "group.user_added");
    let got = s.rx.wait_for(40, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ids(&got), want);
    assert_eq!(s.rx.received().len(), 40, "each once");
    // The node holding the endpoint stops (killed): another takes over once
    // its lease expires; a duplicate only of the same id.
    let lease = scimitar_webhooks::worker::lease_name(s.tenant, "wh_1");
    let (holder, _) = first.lease_holder(&lease).await.unwrap().unwrap();
    let i: usize = holder.trim_start_matches("node-").parse().unwrap();
    running[i].take().unwrap().stop();
    let more = s.push(5, "group.user_added");
    let got = s.rx.wait_for(45, Duration::from_secs(20)).await;
    let mut seen = ids(&got);
    seen.dedup();
    assert_eq!(seen, [want, more].concat());
    let (new_holder, _) = first.lease_holder(&lease).await.unwrap().unwrap();
    assert_ne!(new_holder, holder);
}

/// The URL is checked again at every round: an endpoint whose address
/// the server no longer allows gets nothing, and its log says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_no_longer_allowed_gets_nothing() {
    let s = setup(&[]).await;
    let strict = Sender::new(Arc::new(Policy::default()), Timeouts::default()).unwrap();
    let _d = Dispatcher::start(
        s.store.clone(),
        s.events.clone(),
        strict,
        settings("node-a", fast_retry),
    );
    s.started().await;
    s.push(1, "user.created");
    let log = s.log_of_at_least(1).await;
    assert_eq!(log[0].status, "retrying");
    assert!(
        log[0].error.as_deref().unwrap().contains("not a public address"),
        "{log:?}"
    );
    assert_eq!(log[0].response_code, None);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(s.rx.received().is_empty() && s.rx.rejected().is_empty());
}
