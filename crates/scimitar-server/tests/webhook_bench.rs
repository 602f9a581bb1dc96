//! Benchmarks of webhook delivery (issue 18), ignored by default; figures
//! in docs/benchmarks.md. Run:
//!
//! ```text
//! cargo test -p scimitar-server --test webhook_bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! (`SCIMITAR_TEST_BACKEND=postgres` with `SCIMITAR_TEST_POSTGRES_URL` for
//! PostgreSQL.) The server, the load and the receiver share this process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::Method;
use scimitar_testkit::webhook::Receiver;
use scimitar_testkit::{Tenant, TestServer};
use serde_json::json;

async fn server() -> TestServer {
    TestServer::start_with(|s| {
        s.webhook_allow = vec!["127.0.0.0/8".parse().unwrap()];
        s.rate_limit_per_tenant = 0;
    })
    .await
}

async fn add_endpoint(srv: &TestServer, admin: &Tenant, receiver: &Receiver) -> String {
    let url = format!("{}/admin/v1/tenants/{}/webhooks", srv.public_url, admin.name);
    let r = admin
        .send(Method::POST, &url, Some(json!({"url": receiver.url()})))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    receiver.set_secrets(&[r.body["secret"].as_str().unwrap()]);
    r.body["id"].as_str().unwrap().to_string()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Creates paced at `RATE`/s for `SECONDS`; the latency of each event is
/// from its `time` (stamped in the committing transaction) to its arrival
/// at the receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn commit_to_receiver_latency_at_1000_changes_per_second() {
    const RATE: u64 = 1000;
    const SECONDS: u64 = 5;
    let srv = server().await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    let scim = srv.tenant("acme").await;
    let receiver = Receiver::start(&[]).await;
    add_endpoint(&srv, &admin, &receiver).await;
    let n = (RATE * SECONDS) as usize;
    let slots = Arc::new(tokio::sync::Semaphore::new(128));
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        tick.tick().await;
        let permit = slots.clone().acquire_owned().await.unwrap();
        let scim = scim.clone();
        tasks.spawn(async move {
            let r = scim.post("/Users", json!({"userName": format!("u{i}@x.test")})).await;
            assert_eq!(r.status, 201, "{}", r.text);
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    let offered = n as f64 / started.elapsed().as_secs_f64();
    let got = receiver.wait_for(n, Duration::from_secs(120)).await;
    assert_eq!(got.len(), n);
    let mut lat: Vec<f64> = got
        .iter()
        .map(|d| {
            let t = time::OffsetDateTime::parse(
                d.body["time"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            let t = SystemTime::UNIX_EPOCH + Duration::from_nanos(t.unix_timestamp_nanos() as u64);
            d.received_at.duration_since(t).unwrap_or_default().as_secs_f64() * 1000.0
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    println!(
        "latency commit→receiver: {n} creates at {offered:.0}/s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat[lat.len() - 1]
    );
}

/// `N` events committed while the endpoint is disabled, then enabled: how
/// fast the backlog reaches a receiver that answers 200 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn delivery_throughput_to_a_fast_receiver() {
    const N: usize = 20_000;
    let srv = server().await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    let scim = srv.tenant("acme").await;
    let receiver = Receiver::start(&[]).await;
    let id = add_endpoint(&srv, &admin, &receiver).await;
    let hook = format!("{}/admin/v1/tenants/acme/webhooks/{id}", srv.public_url);
    let r = admin.send(Method::POST, &format!("{hook}/disable"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for chunk in 0..N / 1000 {
        let ops: Vec<_> = (0..1000)
            .map(|i| {
                json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"),
                "data": {"userName": format!("u{chunk}-{i}@x.test")}})
            })
            .collect();
        let r = scim
            .post(
                "/Bulk",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let started = Instant::now();
    let r = admin.send(Method::POST, &format!("{hook}/enable"), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let got = receiver.wait_for(N, Duration::from_secs(600)).await;
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(got.len(), N);
    println!(
        "delivery throughput: {N} events in {secs:.2} s = {:.0} events/s",
        N as f64 / secs
    );
}

/// Where a delivery's time goes: the HTTP request alone, and the store
/// write that records it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn delivery_parts() {
    use scimitar_store::webhooks::{AttemptRecord, WebhookState};
    const N: usize = 1000;
    let srv = server().await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    let receiver = Receiver::start(&[]).await;
    let id = add_endpoint(&srv, &admin, &receiver).await;
    let r = admin
        .send(
            Method::POST,
            &format!("{}/admin/v1/tenants/acme/webhooks/{id}/disable", srv.public_url),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    let w = srv.store.webhook(admin.id, &id).await.unwrap().unwrap();
    let keys = scimitar_webhooks::worker::keys(&w).unwrap();
    let policy = Arc::new(scimitar_webhooks::policy::Policy {
        allow: vec!["127.0.0.0/8".parse().unwrap()],
    });
    let sender = scimitar_webhooks::send::Sender::new(policy, scimitar_webhooks::send::Timeouts::default()).unwrap();
    let t = Instant::now();
    for i in 0..N {
        let out = sender.send(&receiver.url(), &format!("e{i}"), b"{}", &keys).await;
        assert!(out.delivered);
    }
    let http = t.elapsed().as_secs_f64() / N as f64 * 1000.0;
    let t = Instant::now();
    for i in 0..N {
        let rec = AttemptRecord {
            state: WebhookState {
                cursor: Some(i as i64),
                ..WebhookState::default()
            },
            log: Vec::new(),
            failed: None,
        };
        srv.store.record_webhook_attempt(admin.id, &id, &rec).await.unwrap();
    }
    let write = t.elapsed().as_secs_f64() / N as f64 * 1000.0;
    println!("per delivery: HTTP {http:.2} ms, cursor write {write:.2} ms");
}
