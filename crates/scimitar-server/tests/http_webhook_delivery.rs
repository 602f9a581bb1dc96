//! Webhook delivery end to end: an endpoint added through the admin API,
//! SCIM changes, and a test receiver that verifies every signature — the
//! events arrive in order per resource, as the events API shows them, with their ids as
//! `webhook-id`; a receiver down for a while gets everything once back;
//! "send test event" delivers a `webhook.test` that the feed does not hold.
//! Runs on PostgreSQL too (`SCIMITAR_TEST_BACKEND=postgres`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::Duration;

use reqwest::Method;
use scimitar_app::delivery::DeliverySettings;
use scimitar_testkit::webhook::{Delivery, Receiver};
use scimitar_testkit::{Tenant, TestServer, patch_op};
use scimitar_webhooks::retry::Next;
use serde_json::{Value, json};

/// Loopback allowed; quick polls, and a failed attempt retried after
/// 200 ms (instead of the production schedule's minutes).
async fn server() -> TestServer {
    TestServer::start_with(|s| {
        s.webhook_allow = vec!["127.0.0.0/8".parse().unwrap()];
        s.webhook_delivery = Some(DeliverySettings {
            poll: Duration::from_millis(100),
            retry: |_, _, _, _| Next::Retry(Duration::from_millis(200)),
            ..DeliverySettings::default()
        });
    })
    .await
}

/// Adds an endpoint to `receiver` and makes the receiver verify with its
/// secret; returns the endpoint's id.
async fn add_endpoint(srv: &TestServer, admin: &Tenant, receiver: &Receiver) -> String {
    let url = format!("{}/admin/v1/tenants/{}/webhooks", srv.public_url, admin.name);
    let r = admin
        .send(Method::POST, &url, Some(json!({"url": receiver.url()})))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    receiver.set_secrets(&[r.body["secret"].as_str().unwrap()]);
    r.body["id"].as_str().unwrap().to_string()
}

/// Every event of the tenant through the events API.
async fn feed(srv: &TestServer, reader: &Tenant) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let q = if after.is_empty() {
            "limit=1000".to_string()
        } else {
            format!("limit=1000&after={after}")
        };
        let url = format!("{}/admin/v1/tenants/{}/events?{q}", srv.public_url, reader.name);
        let r = reader.send(Method::GET, &url, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let batch = r.body["events"].as_array().unwrap().clone();
        after = r.body["next"].as_str().unwrap().to_string();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

/// What an event of the events API is about: the group of a member
/// event, else the resource (webhooks are in order per subject).
fn subject(e: &Value) -> String {
    let data = &e["data"];
    let id = if e["type"].as_str().unwrap().starts_with("group.user_") {
        &data["group"]["id"]
    } else {
        &data["id"]
    };
    id.as_str().unwrap().to_string()
}

/// The receiver got exactly `events`, each once and in order per subject
/// (events of different resources may overtake each other): the same
/// objects, each with its id as `webhook-id`, nothing rejected.
#[track_caller]
fn assert_same(got: &[Delivery], events: &[Value], receiver: &Receiver) {
    assert!(
        receiver.rejected().is_empty(),
        "bad signatures: {:?}",
        receiver.rejected()
    );
    let per_subject = |v: &mut dyn Iterator<Item = &Value>| {
        let mut out: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for e in v {
            out.entry(subject(e))
                .or_default()
                .push(e["id"].as_str().unwrap().to_string());
        }
        out
    };
    assert_eq!(
        per_subject(&mut got.iter().map(|d| &d.body)),
        per_subject(&mut events.iter()),
        "delivered ids vs the events API, per subject"
    );
    assert_eq!(got.len(), events.len(), "each once");
    for d in got {
        let e = events.iter().find(|e| e["id"].as_str() == Some(d.id.as_str()));
        assert_eq!(Some(&d.body), e, "the delivered body is the events API's object");
    }
}

/// A scripted series of changes: users created, updated, deactivated,
/// a group with members, a member removed, a user deleted.
async fn changes(scim: &Tenant, prefix: &str) {
    let a = scim.create_user(&format!("{prefix}-alice")).await;
    let b = scim.create_user(&format!("{prefix}-bob")).await;
    let g = scim.create_group(&format!("{prefix}-staff"), &[&a, &b]).await;
    let r = scim
        .patch(
            &format!("/Users/{a}"),
            patch_op(json!([{"op": "replace", "path": "displayName", "value": "Alice A."}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = scim
        .patch(
            &format!("/Users/{b}"),
            patch_op(json!([{"op": "replace", "path": "active", "value": false}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = scim
        .patch(
            &format!("/Groups/{g}"),
            patch_op(json!([{"op": "remove", "path": format!("members[value eq \"{b}\"]")}])),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let r = scim.delete(&format!("/Users/{b}")).await;
    assert_eq!(r.status, 204, "{}", r.text);
}

/// The events of [`changes`], in order.
const EXPECTED_TYPES: &[&str] = &[
    "user.created",
    "user.created",
    "group.created",
    "group.user_added",
    "group.user_added",
    "user.updated",
    "user.deactivated",
    "group.user_removed",
    "user.deleted",
];

#[tokio::test]
async fn scim_changes_reach_the_receiver_in_order_with_the_events_api_ids() {
    let srv = server().await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    let reader = srv.tenant_with_scope("acme", "events").await;
    let scim = srv.tenant("acme").await;
    let receiver = Receiver::start(&[]).await;
    add_endpoint(&srv, &admin, &receiver).await;
    // Events before the endpoint existed (the tokens') are not sent to it.
    let before = feed(&srv, &reader).await.len();

    changes(&scim, "a").await;
    let events: Vec<Value> = feed(&srv, &reader).await.split_off(before);
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, EXPECTED_TYPES, "{types:?}");
    let got = receiver.wait_for(events.len(), Duration::from_secs(20)).await;
    // Nothing more comes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.accepted().len(), events.len());
    assert_same(&got, &events, &receiver);
    // Each with a fresh timestamp and a v1 signature.
    for d in &got {
        assert!(d.signature.starts_with("v1,"), "{}", d.signature);
        assert!((d.timestamp - time::OffsetDateTime::now_utc().unix_timestamp()).abs() < 120);
    }
}

#[tokio::test]
async fn a_receiver_down_for_a_while_then_gets_everything_in_order() {
    let srv = server().await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    let reader = srv.tenant_with_scope("acme", "events").await;
    let scim = srv.tenant("acme").await;
    let receiver = Receiver::start(&[]).await;
    let id = add_endpoint(&srv, &admin, &receiver).await;
    let before = feed(&srv, &reader).await.len();

    changes(&scim, "a").await;
    let first = feed(&srv, &reader).await.len() - before;
    assert_eq!(receiver.wait_for(first, Duration::from_secs(20)).await.len(), first);

    receiver.down();
    changes(&scim, "b").await;
    changes(&scim, "c").await;
    // Attempts fail meanwhile (the endpoint's log says so), a few times.
    let detail = format!("{}/admin/v1/tenants/acme/webhooks/{id}", srv.public_url);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = admin.send(Method::GET, &detail, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let retrying = r.body["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["status"] == "retrying")
            .count();
        if retrying >= 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no retries logged: {}", r.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    receiver.up().await;

    let events = feed(&srv, &reader).await.split_off(before);
    let got = receiver.wait_for(events.len(), Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.accepted().len(), events.len());
    assert_same(&got, &events, &receiver);
}

#[tokio::test]
async fn send_test_event_delivers_a_webhook_test_outside_the_feed() {
    let srv = server().await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    let reader = srv.tenant_with_scope("acme", "events").await;
    let receiver = Receiver::start(&[]).await;
    let id = add_endpoint(&srv, &admin, &receiver).await;
    let before = feed(&srv, &reader).await;
    let url = |id: &str| format!("{}/admin/v1/tenants/acme/webhooks/{id}/test", srv.public_url);

    let r = admin.send(Method::POST, &url(&id), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["delivered"], true, "{}", r.text);
    assert_eq!(r.body["responseCode"], 200);
    let got = receiver.accepted();
    assert_eq!(got.len(), 1);
    assert!(receiver.rejected().is_empty());
    let d = &got[0];
    assert_eq!(r.body["eventId"].as_str(), Some(d.id.as_str()));
    assert_eq!(d.body["id"].as_str(), Some(d.id.as_str()));
    assert_eq!(d.body["type"], "webhook.test");
    assert_eq!(d.body["tenant"], "acme");
    assert_eq!(d.body["seq"], 0);
    assert_eq!(d.body["data"]["webhook"]["id"], id.as_str());
    // Not in the feed, not in the endpoint's delivery log; audited.
    assert_eq!(feed(&srv, &reader).await, before);
    let detail = admin
        .send(
            Method::GET,
            &format!("{}/admin/v1/tenants/acme/webhooks/{id}", srv.public_url),
            None,
        )
        .await;
    assert_eq!(detail.body["deliveries"], json!([]), "{}", detail.text);
    let audit = srv.store.list_audit(Some(admin.id), 100).await.unwrap();
    assert!(audit.iter().any(|e| e.action == "webhook.tested"));

    // A failing receiver: said, 200 (the test ran), not retried.
    receiver.script([scimitar_testkit::webhook::Behaviour::Status(503)]);
    let r = admin.send(Method::POST, &url(&id), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (&r.body["delivered"], &r.body["responseCode"]),
        (&json!(false), &json!(503))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 2);

    // Not another tenant's endpoint, nor one that does not exist; not with GET.
    let other = srv.tenant_with_scope("globex", "admin").await;
    let r = other
        .send(
            Method::POST,
            &format!("{}/admin/v1/tenants/globex/webhooks/{id}/test", srv.public_url),
            None,
        )
        .await;
    r.assert_error(404, None);
    admin
        .send(Method::POST, &url("nope"), None)
        .await
        .assert_error(404, None);
    admin.send(Method::GET, &url(&id), None).await.assert_error(405, None);
}

/// The production retry schedule with time compressed 60 times: a second
/// here is a minute of the real schedule (5 s, 30 s, 2 min, … between
/// attempts, ±20 %), so that an outage of "two minutes" takes two seconds.
fn compressed(failed: u32, since_first: Duration, retry_after: Option<Duration>, random: f64) -> Next {
    const SCALE: u32 = 60;
    match scimitar_webhooks::retry::next(failed, since_first * SCALE, retry_after.map(|d| d * SCALE), random) {
        Next::Retry(d) => Next::Retry(d / SCALE),
        other => other,
    }
}

/// Issue 18: a receiver down for two minutes gets everything afterwards,
/// in order per resource, under the production retry schedule (compressed:
/// see [`compressed`]); the attempts it missed are retried, not lost, and
/// nothing it accepted is missing.
#[tokio::test]
async fn a_receiver_down_for_two_minutes_of_the_real_schedule_gets_everything() {
    let srv = TestServer::start_with(|s| {
        s.webhook_allow = vec!["127.0.0.0/8".parse().unwrap()];
        s.webhook_delivery = Some(DeliverySettings {
            poll: Duration::from_millis(100),
            retry: compressed,
            ..DeliverySettings::default()
        });
    })
    .await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    let reader = srv.tenant_with_scope("acme", "events").await;
    let scim = srv.tenant("acme").await;
    let receiver = Receiver::start(&[]).await;
    add_endpoint(&srv, &admin, &receiver).await;
    let before = feed(&srv, &reader).await.len();

    receiver.down();
    let down_at = tokio::time::Instant::now();
    changes(&scim, "a").await;
    changes(&scim, "b").await;
    // Two "minutes" down, then up.
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(down_at.elapsed())).await;
    receiver.up().await;

    let events = feed(&srv, &reader).await.split_off(before);
    // The schedule's next attempt after 2 "minutes" is at most 2.6 "minutes"
    // after the first failure (5 s + 30 s + 2 min, +20 %).
    let got = receiver.wait_for(events.len(), Duration::from_secs(20)).await;
    assert!(receiver.rejected().is_empty(), "bad signatures");
    // Every event arrived (duplicates, if any, carry the same id) …
    let ids = |it: &mut dyn Iterator<Item = String>| it.collect::<std::collections::BTreeSet<_>>();
    assert_eq!(
        ids(&mut got.iter().map(|d| d.id.clone())),
        ids(&mut events.iter().map(|e| e["id"].as_str().unwrap().to_string())),
    );
    // … and each resource's events arrived in their order.
    let per_resource = |list: &mut dyn Iterator<Item = (String, String)>| {
        let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (resource, id) in list {
            let seen = m.entry(resource).or_default();
            if !seen.contains(&id) {
                seen.push(id);
            }
        }
        m
    };
    let key = |v: &Value| {
        (
            v["data"]["id"].as_str().unwrap_or_default().to_string(),
            v["id"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(
        per_resource(&mut got.iter().map(|d| key(&d.body))),
        per_resource(&mut events.iter().map(key)),
    );
}
