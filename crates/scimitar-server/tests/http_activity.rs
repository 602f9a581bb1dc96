//! The provisioning activity log: every write and every failed write is
//! recorded with its action and modified attributes; reads are counted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use reqwest::Method;
use scimitar_testkit::{Tenant, TestServer, patch_op};
use serde_json::{Value, json};

async fn activity(srv: &TestServer, admin: &Tenant, query: &str) -> Value {
    let url = format!("{}/admin/v1/tenants/{}/activity?{query}", srv.public_url, admin.name);
    let r = admin.send(Method::GET, &url, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

#[tokio::test]
async fn every_write_is_logged_with_action_and_changes() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    let r = t
        .post(
            "/Users",
            json!({"userName": "ann@x.test", "displayName": "Ann", "password": "hunter2", "active": true}),
        )
        .await;
    let ann = r.body["id"].as_str().unwrap().to_string();
    let p = format!("/Users/{ann}");
    t.patch(
        &p,
        patch_op(json!([{"op": "Replace", "path": "title", "value": "Engineer"}])),
    )
    .await;
    t.patch(
        &p,
        patch_op(json!([{"op": "Replace", "path": "title", "value": "Engineer"}])),
    )
    .await; // no change
    t.patch(
        &p,
        patch_op(json!([{"op": "Replace", "path": "active", "value": "False"}])),
    )
    .await;
    t.patch(
        &p,
        patch_op(json!([{"op": "replace", "path": "active", "value": true}])),
    )
    .await;
    let g = t.create_group("Team", &[]).await;
    let gp = format!("/Groups/{g}");
    t.patch(
        &gp,
        patch_op(json!([{"op": "Add", "path": "members", "value": [{"value": ann}]}])),
    )
    .await;
    t.patch(
        &gp,
        patch_op(json!([{"op": "Remove", "path": "members", "value": [{"value": ann}]}])),
    )
    .await;
    t.post("/Users", json!({"userName": "ANN@x.test"}))
        .await
        .assert_error(409, Some("uniqueness"));
    t.patch(&p, patch_op(json!([{"op": "replace", "path": "nosuch", "value": 1}])))
        .await
        .assert_error(400, Some("invalidPath"));
    assert_eq!(t.delete(&p).await.status, 204);

    let log = activity(&srv, &admin, "limit=100").await;
    let events = log["events"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = events
        .iter()
        .rev()
        .map(|e| (e["action"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("create", "success"),
            ("update", "success"),
            ("disable", "success"),
            ("enable", "success"),
            ("create", "success"),
            ("add-member", "success"),
            ("remove-member", "success"),
            ("create", "failure"),
            ("update", "failure"),
            ("delete", "success"),
        ]
    );
    let by = |action: &str| events.iter().rev().find(|e| e["action"] == action).unwrap().clone();
    let create = by("create");
    assert_eq!(create["name"], "ann@x.test");
    assert_eq!(create["resource_type"], "User");
    assert_eq!(create["token_label"], "test");
    let changes = create["changes"].as_array().unwrap();
    let pw = changes.iter().find(|c| c["attribute"] == "password").unwrap();
    assert_eq!(pw["new"], "[redacted]");
    assert!(
        !serde_json::to_string(&log).unwrap().contains("hunter2"),
        "secrets never reach the log"
    );
    let update = by("update");
    assert_eq!(
        update["changes"],
        json!([{"attribute": "title", "old": null, "new": "Engineer"}])
    );
    let disable = by("disable");
    assert_eq!(
        disable["changes"],
        json!([{"attribute": "active", "old": true, "new": false}])
    );
    let add = by("add-member");
    assert_eq!(add["changes"][0]["attribute"], "members");
    assert_eq!(add["changes"][0]["new"], json!([ann]));
    let failed = events
        .iter()
        .find(|e| e["outcome"] == "failure" && e["action"] == "create")
        .unwrap();
    assert_eq!(failed["status"], 409);
    assert!(failed["error"].as_str().unwrap().contains("userName"));
    assert_eq!(failed["name"], "ANN@x.test");

    // Filters of the admin API.
    let only = activity(&srv, &admin, "action=disable").await;
    assert_eq!(only["events"].as_array().unwrap().len(), 1);
    let fails = activity(&srv, &admin, "outcome=failure").await;
    assert_eq!(fails["events"].as_array().unwrap().len(), 2);
    let text = activity(&srv, &admin, "q=ENGINEER").await;
    assert_eq!(text["events"].as_array().unwrap().len(), 1);
    let future = activity(&srv, &admin, "since=2999-01-01T00:00:00Z").await;
    assert_eq!(future["events"], json!([]));
}

#[tokio::test]
async fn reads_are_counted_not_logged_and_the_log_is_admin_only() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    for _ in 0..5 {
        assert_eq!(t.get("/Users?filter=userName+eq+%22nobody%22").await.status, 200);
    }
    let log = activity(&srv, &admin, "").await;
    assert_eq!(log["events"], json!([]), "reads are not logged one by one");
    let reads: u64 = log["reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(reads, 5);
    // A provisioning token cannot read the log; another tenant's admin neither.
    let url = format!("{}/admin/v1/tenants/acme/activity", srv.public_url);
    t.send(Method::GET, &url, None).await.assert_error(403, None);
    let other_admin = srv.tenant_with_scope("other", "admin").await;
    other_admin.send(Method::GET, &url, None).await.assert_error(401, None);
    // And an admin token is not a provisioning token.
    Tenant {
        base: t.base.clone(),
        ..admin.clone()
    }
    .get("/Users")
    .await
    .assert_error(403, None);
}

/// A query string the admin API cannot read is a SCIM error like every
/// other (it was axum's plain-text 400).
#[tokio::test]
async fn a_malformed_admin_query_is_a_scim_error() {
    let srv = TestServer::start().await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    for query in ["limit=many", "before=x", "limit=-1"] {
        let url = format!("{}/admin/v1/tenants/acme/activity?{query}", srv.public_url);
        let r = admin.send(Method::GET, &url, None).await;
        r.assert_error(400, Some("invalidValue"));
        assert_eq!(
            r.header("content-type"),
            Some("application/scim+json"),
            "{query}: {}",
            r.text
        );
    }
}

/// The filters are checked: a mistake is 400 invalidValue naming the valid
/// forms, instead of 200 with nothing (or everything) in it.
#[tokio::test]
async fn activity_filters_are_checked() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    t.create_user("ann@x.test").await;
    let cases: &[(&str, Option<&str>)] = &[
        ("since=garbage", Some("RFC 3339")),
        ("since=1y", Some("7d")),
        ("until=tomorrow", Some("RFC 3339")),
        ("outcome=bogus", Some("success, failure")),
        ("action=patch", Some("create, update, update-members")),
        ("since=1h", None),
        ("since=2026-01-01T00:00:00Z&outcome=success&action=create", None),
    ];
    for (query, error) in cases {
        let url = format!("{}/admin/v1/tenants/acme/activity?{query}", srv.public_url);
        let r = admin.send(Method::GET, &url, None).await;
        match error {
            Some(words) => {
                r.assert_error(400, Some("invalidValue"));
                assert!(
                    r.body["detail"].as_str().unwrap().contains(words),
                    "{query}: {}",
                    r.text
                );
            }
            None => {
                assert_eq!(r.status, 200, "{query}: {}", r.text);
                assert_eq!(r.body["events"].as_array().unwrap().len(), 1, "{query}: {}", r.text);
            }
        }
    }
    // A duration counts back from now: nothing happened in the future.
    let future = format!("{}/admin/v1/tenants/acme/activity?since=0s", srv.public_url);
    let r = admin.send(Method::GET, &future, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["events"].as_array().unwrap().len(), 0, "{}", r.text);
}
