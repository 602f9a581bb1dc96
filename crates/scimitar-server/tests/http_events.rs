//! The change events of SCIM writes, through the events API
//! (`GET /admin/v1/tenants/{tenant}/events`): which events each change
//! makes, their payloads, paging with the cursor, long polls, and a reader
//! that follows concurrent writers. Runs on PostgreSQL too
//! (`SCIMITAR_TEST_BACKEND=postgres`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use reqwest::Method;
use scimitar_testkit::{Resp, Tenant, TestServer, patch_op};
use serde_json::{Value, json};

const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

fn cursor_of(seq: i64) -> String {
    scimitar_app::events::cursor(seq)
}

async fn events_raw(srv: &TestServer, reader: &Tenant, query: &str) -> Resp {
    let url = format!("{}/admin/v1/tenants/{}/events?{query}", srv.public_url, reader.name);
    reader.send(Method::GET, &url, None).await
}

async fn events(srv: &TestServer, reader: &Tenant, query: &str) -> Value {
    let r = events_raw(srv, reader, query).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

/// Every event of the tenant, following `next` in pages of `page`.
async fn all_events(srv: &TestServer, reader: &Tenant, page: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let q = if after.is_empty() {
            format!("limit={page}")
        } else {
            format!("limit={page}&after={after}")
        };
        let body = events(srv, reader, &q).await;
        let batch = body["events"].as_array().unwrap().clone();
        after = body["next"].as_str().unwrap().to_string();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

/// `(type, who)`: the member for member events, else the resource's
/// userName / displayName, or the token's label.
fn summary(e: &Value) -> (String, String) {
    let d = &e["data"];
    let who = if let Some(u) = d["user"]["id"].as_str() {
        format!("{} ← {u}", d["group"]["displayName"].as_str().unwrap_or_default())
    } else if let Some(l) = d["token"]["label"].as_str() {
        l.to_string()
    } else {
        d["userName"]
            .as_str()
            .or(d["displayName"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    (e["type"].as_str().unwrap().to_string(), who)
}

#[tokio::test]
async fn scripted_changes_make_exactly_these_events_in_order() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    let reader = srv.tenant_with_scope("acme", "events").await;
    let r = t
        .post(
            "/Users",
            json!({"userName": "ann@x.test", "displayName": "Ann", "password": "hunter2-secret",
                "externalId": "e-ann", "name": {"givenName": "Ann", "familyName": "Lee"},
                "emails": [{"value": "ann@x.test", "type": "work", "primary": true}], "active": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let ann = r.body["id"].as_str().unwrap().to_string();
    let p = format!("/Users/{ann}");
    let title = |v: &str| patch_op(json!([{"op": "Replace", "path": "title", "value": v}]));
    assert_eq!(t.patch(&p, title("Engineer")).await.status, 200);
    assert_eq!(t.patch(&p, title("Engineer")).await.status, 200); // no change: no event
    let off = patch_op(json!([{"op": "Replace", "path": "active", "value": "False"}]));
    assert_eq!(t.patch(&p, off).await.status, 200);
    let on_and_title = patch_op(json!([
        {"op": "replace", "path": "active", "value": true},
        {"op": "replace", "path": "title", "value": "Lead"}
    ]));
    assert_eq!(t.patch(&p, on_and_title).await.status, 200);
    // A failed precondition, a conflict and a bad PATCH commit nothing.
    let stale = t
        .send_with(Method::PATCH, &p, Some(title("Stale")), &[("if-match", "\"1\"")])
        .await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    t.post("/Users", json!({"userName": "ANN@x.test"}))
        .await
        .assert_error(409, Some("uniqueness"));
    t.patch(&p, patch_op(json!([{"op": "replace", "path": "nosuch", "value": 1}])))
        .await
        .assert_error(400, Some("invalidPath"));
    // PUT: a replace of the whole user.
    let put = t
        .put(
            &p,
            json!({"userName": "ann@x.test", "displayName": "Ann Lee", "externalId": "e-ann", "active": true, "title": "Lead",
                "name": {"givenName": "Ann", "familyName": "Lee"},
                "emails": [{"value": "ann@x.test", "type": "work", "primary": true}]}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    let bob = t.create_user("bob@x.test").await;
    let g = t.create_group("Team", &[&ann]).await;
    let gp = format!("/Groups/{g}");
    let add = patch_op(json!([{"op": "Add", "path": "members", "value": [{"value": ann}, {"value": bob}]}]));
    assert!(t.patch(&gp, add).await.status.is_success());
    let remove = patch_op(json!([{"op": "Remove", "path": format!("members[value eq \"{bob}\"]")}]));
    assert!(t.patch(&gp, remove).await.status.is_success());
    let remove_again = patch_op(json!([{"op": "Remove", "path": format!("members[value eq \"{bob}\"]")}]));
    assert!(t.patch(&gp, remove_again).await.status.is_success());
    let rename = patch_op(json!([{"op": "Replace", "path": "displayName", "value": "Team A"}]));
    assert!(t.patch(&gp, rename).await.status.is_success());
    // An unknown member fails the whole PATCH.
    let ghost = patch_op(json!([
        {"op": "Replace", "path": "displayName", "value": "Team B"},
        {"op": "Add", "path": "members", "value": [{"value": "00000000-0000-0000-0000-000000000000"}]}
    ]));
    assert_eq!(t.patch(&gp, ghost).await.status, 400);
    // Bulk: a create and a delete.
    let bulk = json!({"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "c", "data": {"userName": "carl@x.test"}},
        {"method": "DELETE", "path": "/Users/bulkId:c"}
    ]});
    let r = t.post("/Bulk", bulk).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(t.delete(&gp).await.status, 204);
    assert_eq!(t.delete(&p).await.status, 204);
    assert_eq!(t.delete(&p).await.status, 404);
    // Tokens, through the application layer as the console and CLI do.
    let app = scimitar_app::App::new(srv.store.clone(), scimitar_app::Config::new(&srv.public_url));
    let tenant = app.tenant("acme").await.unwrap();
    let req = scimitar_app::tokens::TokenRequest {
        label: "okta".into(),
        scope: "scim".into(),
        expires_in_days: None,
    };
    let token = app
        .generate_token(&scimitar_app::Actor::Cli, &tenant, req)
        .await
        .unwrap();
    app.revoke_token(&scimitar_app::Actor::Cli, &tenant, &token.info.id)
        .await
        .unwrap();

    let all = all_events(&srv, &reader, 1000).await;
    let got: Vec<(String, String)> = all.iter().map(summary).collect();
    let (to_ann, to_bob) = (format!("Team ← {ann}"), format!("Team ← {bob}"));
    let want: Vec<(&str, &str)> = vec![
        ("user.created", "ann@x.test"),
        ("user.updated", "ann@x.test"),
        ("user.deactivated", "ann@x.test"),
        ("user.updated", "ann@x.test"),
        ("user.reactivated", "ann@x.test"),
        ("user.updated", "ann@x.test"),
        ("user.created", "bob@x.test"),
        ("group.created", "Team"),
        ("group.user_added", &to_ann),
        ("group.user_added", &to_bob),
        ("group.user_removed", &to_bob),
        ("group.updated", "Team A"),
        ("user.created", "carl@x.test"),
        ("user.deleted", "carl@x.test"),
        ("group.deleted", "Team A"),
        ("user.deleted", "ann@x.test"),
        ("tenant.token_created", "okta"),
        ("tenant.token_revoked", "okta"),
    ];
    let got_ref: Vec<(&str, &str)> = got.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(got_ref, want);
    // Changed attribute names of the updates.
    assert_eq!(all[1]["data"]["changed"], json!(["title"]));
    assert_eq!(all[3]["data"]["changed"], json!(["active", "title"]));
    assert_eq!(all[5]["data"]["changed"], json!(["displayName"]));
    assert_eq!(all[11]["data"]["changed"], json!(["displayName"]));
    // The envelope: ids unique, seq increasing, the tenant, RFC 3339 times.
    let mut ids: Vec<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|i| i.len() == 36));
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len());
    let seqs: Vec<i64> = all.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(all.iter().all(|e| e["tenant"] == "acme"));
    assert!(all.iter().all(|e| e["time"].as_str().unwrap().ends_with('Z')));
    // The normalised view and the resource as stored.
    let created = &all[0]["data"];
    assert_eq!(created["id"], ann.as_str());
    assert_eq!(created["externalId"], "e-ann");
    assert_eq!(created["userName"], "ann@x.test");
    assert_eq!(created["displayName"], "Ann");
    assert_eq!(created["active"], true);
    assert_eq!(created["name"]["givenName"], "Ann");
    assert_eq!(created["emails"][0]["value"], "ann@x.test");
    assert_eq!(created["resource"]["id"], ann.as_str());
    assert_eq!(created["resource"]["meta"]["resourceType"], "User");
    assert!(
        created["resource"]["meta"]["location"]
            .as_str()
            .unwrap()
            .ends_with(&ann)
    );
    assert_eq!(all[2]["data"]["active"], false);
    let added = &all[8]["data"];
    assert_eq!(added["group"], json!({"id": g, "displayName": "Team"}));
    assert_eq!(added["user"], json!({"id": ann}));
    // A delete carries the last stored state.
    assert_eq!(all[15]["data"]["displayName"], "Ann Lee");
    assert_eq!(all[15]["data"]["resource"]["title"], "Lead");
    // Never the password, in any form.
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("\"password\":"), "{text}");
    assert!(!text.contains("$argon2"), "{text}");
    // Token events name the token, never its secret.
    assert_eq!(all[16]["data"]["token"]["id"], token.info.id.as_str());
    assert!(!text.contains(&token.secret));
}

#[tokio::test]
async fn a_member_patch_with_1000_values_gives_1000_user_added() {
    let srv = TestServer::start().await;
    let t = srv.tenant("big").await;
    let reader = srv.tenant_with_scope("big", "events").await;
    let ops: Vec<Value> = (0..1000)
        .map(|i| json!({"method": "POST", "path": "/Users", "bulkId": format!("u{i}"), "data": {"userName": format!("u{i}@x.test")}}))
        .collect();
    let r = t.post("/Bulk", json!({"schemas": [BULK], "Operations": ops})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<String> = r.body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["location"].as_str().unwrap().rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1000);
    let g = t.create_group("All", &[&ids[0]]).await;
    let first = events(&srv, &reader, "limit=1000").await;
    let next = first["next"].as_str().unwrap().to_string();
    assert_eq!(first["events"].as_array().unwrap().len(), 1000);
    let values: Vec<Value> = ids.iter().map(|i| json!({"value": i})).collect();
    let r = t
        .patch(
            &format!("/Groups/{g}"),
            patch_op(json!([{"op": "Add", "path": "members", "value": values}])),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    // group.created and the first member came with the group; then 999.
    let mut rest = Vec::new();
    let mut after = next;
    loop {
        let body = events(
            &srv,
            &reader,
            &format!("after={after}&limit=1000&types=group.user_added"),
        )
        .await;
        let batch = body["events"].as_array().unwrap().clone();
        after = body["next"].as_str().unwrap().to_string();
        if batch.is_empty() {
            break;
        }
        rest.extend(batch);
    }
    assert_eq!(rest.len(), 1000, "the one added with the group, then 999");
    let mut users: Vec<&str> = rest.iter().map(|e| e["data"]["user"]["id"].as_str().unwrap()).collect();
    users.sort_unstable();
    users.dedup();
    assert_eq!(users.len(), 1000);
    // Removing all 1,000 with one PATCH: 1,000 user_removed.
    let r = t
        .patch(
            &format!("/Groups/{g}"),
            patch_op(json!([{"op": "Remove", "path": "members"}])),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    let removed = events(
        &srv,
        &reader,
        &format!("after={after}&limit=1000&types=group.user_removed"),
    )
    .await;
    assert_eq!(removed["events"].as_array().unwrap().len(), 1000);
}

#[tokio::test]
async fn after_and_wait_return_the_same_sequence() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    let reader = srv.tenant_with_scope("acme", "events").await;
    for i in 0..7 {
        t.create_user(&format!("u{i}@x.test")).await;
    }
    let whole = events(&srv, &reader, "limit=1000").await;
    let paged = all_events(&srv, &reader, 3).await;
    assert_eq!(whole["events"].as_array().unwrap(), &paged);
    assert_eq!(paged.len(), 7);
    // Filtered by type: the cursor moves past what did not match, so a
    // filtered poll does not read it again; a match after it still comes.
    let none = events(&srv, &reader, "types=group.created,user.deleted").await;
    assert!(none["events"].as_array().unwrap().is_empty());
    assert_eq!(none["next"], whole["next"]);
    let two = events(&srv, &reader, "types=user.created&limit=2").await;
    assert_eq!(two["events"].as_array().unwrap().len(), 2);
    assert_eq!(two["next"], json!(two["events"][1]["seq"].as_i64().map(cursor_of)));
    let g = t.create_group("Later", &[]).await;
    let filtered = events(
        &srv,
        &reader,
        &format!("types=group.created&after={}", none["next"].as_str().unwrap()),
    )
    .await;
    assert_eq!(filtered["events"][0]["data"]["id"], g.as_str());
    t.delete(&format!("/Groups/{g}")).await;
    // A long poll with nothing to say waits, then answers with the same cursor.
    let end = events(
        &srv,
        &reader,
        &format!("limit=1000&after={}", whole["next"].as_str().unwrap()),
    )
    .await;
    assert_eq!(
        end["events"].as_array().unwrap().len(),
        2,
        "the group's creation and deletion"
    );
    let next = end["next"].as_str().unwrap().to_string();
    let started = Instant::now();
    let empty = events(&srv, &reader, &format!("after={next}&wait=1")).await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert!(empty["events"].as_array().unwrap().is_empty());
    assert_eq!(empty["next"], next.as_str());
    // A long poll answers within a second of a commit.
    let waiting = {
        let (srv_url, reader2, next2) = (srv.public_url.clone(), reader.clone(), next.clone());
        tokio::spawn(async move {
            let url = format!("{srv_url}/admin/v1/tenants/acme/events?after={next2}&wait=30");
            let r = reader2.send(Method::GET, &url, None).await;
            (r, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    t.create_user("late@x.test").await;
    let committed = Instant::now();
    let (r, answered) = waiting.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        answered.duration_since(committed) < Duration::from_secs(1),
        "answered {:?} after the commit",
        answered.duration_since(committed)
    );
    let got = r.body["events"].as_array().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["data"]["userName"], "late@x.test");
    // The same sequence as reading it all without waiting.
    let again = all_events(&srv, &reader, 1000).await;
    assert_eq!(again.last().unwrap(), &got[0]);
    assert_eq!(again.len(), 10);
}

#[tokio::test]
async fn bad_parameters_and_other_tokens_are_refused() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    let reader = srv.tenant_with_scope("acme", "events").await;
    let other = srv.tenant_with_scope("other", "events").await;
    t.create_user("a@x.test").await;
    for (query, says) in [
        ("after=garbage", "not an events cursor"),
        ("after=NDI", "not an events cursor"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("wait=61", "wait"),
        ("types=user.exploded", "user.exploded"),
        ("wait=soon", ""),
        ("limit=-1", ""),
    ] {
        let r = events_raw(&srv, &reader, query).await;
        r.assert_error(400, None);
        assert!(r.body["detail"].as_str().unwrap().contains(says), "{query}: {}", r.text);
    }
    // A provisioning or admin token is not an events token.
    for tok in [&t, &admin] {
        let url = format!("{}/admin/v1/tenants/acme/events", srv.public_url);
        let r = tok.send(Method::GET, &url, None).await;
        r.assert_error(403, None);
    }
    // Another tenant's events token reads nothing of this tenant.
    let url = format!("{}/admin/v1/tenants/acme/events", srv.public_url);
    let r = other.send(Method::GET, &url, None).await;
    assert!(r.status.is_client_error(), "{}", r.text);
    assert!(!r.text.contains("a@x.test"));
    let own = events(&srv, &other, "").await;
    assert!(own["events"].as_array().unwrap().is_empty());
}

/// Many PATCHes at once while a reader follows the cursor with long polls:
/// the reader never skips an event, so it ends with exactly the table's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_following_concurrent_writers_skips_nothing() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    let reader = srv.tenant_with_scope("acme", "events").await;
    let mut users = Vec::new();
    for i in 0..16 {
        users.push(t.create_user(&format!("w{i}@x.test")).await);
    }
    let start = events(&srv, &reader, "limit=1000").await["next"]
        .as_str()
        .unwrap()
        .to_string();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let follower = {
        let (url, reader, done, mut after) = (srv.public_url.clone(), reader.clone(), done.clone(), start.clone());
        tokio::spawn(async move {
            let mut seen: Vec<Value> = Vec::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let q = format!("{url}/admin/v1/tenants/acme/events?after={after}&limit=7&wait=1");
                let r = reader.send(Method::GET, &q, None).await;
                assert_eq!(r.status, 200, "{}", r.text);
                let batch = r.body["events"].as_array().unwrap().clone();
                after = r.body["next"].as_str().unwrap().to_string();
                if batch.is_empty() && finished {
                    return seen;
                }
                seen.extend(batch);
            }
        })
    };
    let mut writers = Vec::new();
    for (w, id) in users.iter().enumerate() {
        let (t, id) = (t.clone(), id.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..10 {
                let body = patch_op(json!([{"op": "Replace", "path": "title", "value": format!("{w}-{i}")}]));
                let r = t.patch(&format!("/Users/{id}"), body).await;
                assert_eq!(r.status, 200, "{}", r.text);
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = follower.await.unwrap();
    let table = events(&srv, &reader, &format!("after={start}&limit=1000")).await["events"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(table.len(), 160);
    assert_eq!(seen, table);
    // Each user's updates in the order they were made.
    for (w, id) in users.iter().enumerate() {
        let titles: Vec<&str> = table
            .iter()
            .filter(|e| e["data"]["id"] == id.as_str())
            .map(|e| e["data"]["resource"]["title"].as_str().unwrap())
            .collect();
        let want: Vec<String> = (0..10).map(|i| format!("{w}-{i}")).collect();
        assert_eq!(titles, want);
    }
}
