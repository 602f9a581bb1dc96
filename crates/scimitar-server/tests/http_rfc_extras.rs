//! Versioning under concurrency, Bulk, cursor pagination, custom schema
//! extensions, root-level search, limits, and the claims of
//! /ServiceProviderConfig checked against behaviour.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use reqwest::Method;
use scimitar_testkit::{Tenant, TestServer, patch_op};
use serde_json::{Value, json};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn concurrent_writers_never_lose_updates() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    let mut users = Vec::new();
    for i in 0..20 {
        users.push(t.create_user(&format!("u{i}")).await);
    }
    let group = t.create_group("Racers", &[]).await;
    let target = t.create_user("target").await;
    let mut tasks = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let (t1, t2, u, group, target) = (t.clone(), t.clone(), u.clone(), group.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            let r = t1
                .patch(
                    &format!("/Groups/{group}"),
                    patch_op(json!([{"op": "add", "path": "members", "value": [{"value": u}]}])),
                )
                .await;
            assert_eq!(r.status, 204, "{}", r.text);
        }));
        tasks.push(tokio::spawn(async move {
            let r = t2
                .patch(
                    &format!("/Users/{target}"),
                    patch_op(json!([{"op": "add", "path": "emails", "value": [{"value": format!("e{i}@x.test"), "type": "other"}]}])),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let g = t.get(&format!("/Groups/{group}")).await;
    assert_eq!(
        g.body["members"].as_array().unwrap().len(),
        20,
        "every concurrent member add landed"
    );
    let u = t.get(&format!("/Users/{target}")).await;
    assert_eq!(
        u.body["emails"].as_array().unwrap().len(),
        20,
        "every concurrent user PATCH landed"
    );
    assert_eq!(u.body["meta"]["version"], "\"21\"");
}

#[tokio::test]
async fn stale_if_match_is_refused_on_every_write() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    let id = t.create_user("v").await;
    let path = format!("/Users/{id}");
    let v1 = t.get(&path).await.header("etag").unwrap().to_string();
    t.patch(
        &path,
        patch_op(json!([{"op": "replace", "path": "title", "value": "one"}])),
    )
    .await;
    for (m, body) in [
        (Method::PUT, Some(json!({"userName": "v", "title": "two"}))),
        (
            Method::PATCH,
            Some(patch_op(json!([{"op": "replace", "path": "title", "value": "two"}]))),
        ),
        (Method::DELETE, None),
    ] {
        t.send_with(m, &path, body, &[("if-match", &v1)])
            .await
            .assert_error(412, None);
    }
    let now = t.get(&path).await;
    assert_eq!(now.body["title"], "one");
    let current = now.header("etag").unwrap().to_string();
    let r = t
        .send_with(
            Method::PUT,
            &path,
            Some(json!({"userName": "v", "title": "two"})),
            &[("if-match", &current)],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        t.send_with(Method::DELETE, &path, None, &[("if-match", "*")])
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn bulk_resolves_forward_references_and_rejects_cycles() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    // The group comes first and refers to users created after it.
    let req = json!({"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"displayName": "Team", "members": [{"value": "bulkId:a"}, {"value": "bulkId:b"}]}},
        {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"schemas": [USER], "userName": "a@x.test",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "bulkId:b"}}}},
        {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"schemas": [USER], "userName": "b@x.test", "displayName": "Bea"}},
        {"method": "PATCH", "path": "/Users/bulkId:b", "data": {"Operations": [{"op": "replace", "path": "title", "value": "Boss"}]}},
    ]});
    let r = t.post("/Bulk", req).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 4);
    for op in ops {
        assert!(op["status"] == "201" || op["status"] == "200", "{op}");
    }
    let g = ops.iter().find(|o| o["bulkId"] == "g").unwrap();
    let gid = g["location"].as_str().unwrap().rsplit('/').next().unwrap();
    let group = t.get(&format!("/Groups/{gid}")).await;
    let names: Vec<&str> = group.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["display"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(group.body["members"].as_array().unwrap().len(), 2, "{names:?}");
    let a = t
        .get(&format!("/Users?filter={}", enc("userName eq \"a@x.test\"")))
        .await;
    let mgr = &a.body["Resources"][0]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"];
    assert_eq!(mgr["displayName"], "Bea");
    let b = t
        .get(&format!("/Users?filter={}", enc("userName eq \"b@x.test\"")))
        .await;
    assert_eq!(b.body["Resources"][0]["title"], "Boss");

    // A cycle: x needs y's id and y needs x's.
    let cyc = json!({"schemas": [BULK], "Operations": [
        {"method": "POST", "path": "/Groups", "bulkId": "x", "data": {"displayName": "X", "members": [{"value": "bulkId:y"}]}},
        {"method": "POST", "path": "/Groups", "bulkId": "y", "data": {"displayName": "Y", "members": [{"value": "bulkId:x"}]}},
        {"method": "POST", "path": "/Users", "bulkId": "z", "data": {"userName": "free@x.test"}},
    ]});
    let r = t.post("/Bulk", cyc).await;
    assert_eq!(r.status, 200);
    let ops = r.body["Operations"].as_array().unwrap();
    let status = |b: &str| {
        ops.iter().find(|o| o["bulkId"] == b).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status("x"), "409");
    assert_eq!(status("y"), "409");
    assert_eq!(status("z"), "201", "independent operations still run");
    assert_eq!(
        t.get(&format!("/Groups?filter={}", enc("displayName eq \"X\"")))
            .await
            .body["totalResults"],
        0
    );

    // failOnErrors stops after the first error.
    let fail = json!({"schemas": [BULK], "failOnErrors": 1, "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "d1", "data": {"userName": "a@x.test"}},
        {"method": "POST", "path": "/Users", "bulkId": "d2", "data": {"userName": "never@x.test"}},
    ]});
    let r = t.post("/Bulk", fail).await;
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0]["status"], "409");
    assert_eq!(ops[0]["response"]["scimType"], "uniqueness");
    assert_eq!(
        t.get(&format!("/Users?filter={}", enc("userName eq \"never@x.test\"")))
            .await
            .body["totalResults"],
        0
    );

    // References to an unknown bulkId, and DELETE.
    let r = t
        .post("/Bulk", json!({"schemas": [BULK], "Operations": [
            {"method": "POST", "path": "/Groups", "bulkId": "q", "data": {"displayName": "Q", "members": [{"value": "bulkId:nope"}]}},
            {"method": "DELETE", "path": format!("/Groups/{gid}")},
        ]}))
        .await;
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(ops[0]["status"], "400");
    assert_eq!(ops[1]["status"], "204");
    t.get(&format!("/Groups/{gid}")).await.assert_error(404, None);
}

#[tokio::test]
async fn bulk_limits_are_advertised_and_enforced() {
    let srv = TestServer::start_with(|s| {
        s.bulk_max_operations = 3;
        s.bulk_max_payload_bytes = 2048;
    })
    .await;
    let t = srv.tenant("acme").await;
    let spc = t.get("/ServiceProviderConfig").await;
    assert_eq!(
        spc.body["bulk"],
        json!({"supported": true, "maxOperations": 3, "maxPayloadSize": 2048})
    );
    let op = |i: usize| json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": {"userName": format!("u{i}")}});
    let too_many = json!({"schemas": [BULK], "Operations": (0..4).map(op).collect::<Vec<_>>()});
    t.post("/Bulk", too_many).await.assert_error(413, None);
    let too_big = json!({"schemas": [BULK], "Operations": [{"method": "POST", "path": "/Users", "bulkId": "x", "data": {"userName": "x".repeat(4000)}}]});
    t.post("/Bulk", too_big).await.assert_error(413, None);
    assert_eq!(t.get("/Users").await.body["totalResults"], 0, "nothing was applied");
}

async fn walk(t: &Tenant, first: &str) -> (Vec<String>, Vec<Value>) {
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut url = first.to_string();
    loop {
        let r = t.get(&url).await;
        assert_eq!(r.status, 200, "{}", r.text);
        for u in r.body["Resources"].as_array().unwrap() {
            seen.push(u["userName"].as_str().unwrap().to_string());
        }
        pages.push(r.body.clone());
        match r.body.get("nextCursor").and_then(Value::as_str) {
            Some(c) => url = format!("/Users?count=3&cursor={}", enc(c)),
            None => break,
        }
    }
    (seen, pages)
}

#[tokio::test]
async fn cursor_pagination_walks_a_tenant_while_it_grows() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    let other = srv.tenant("other").await;
    for i in 0..10 {
        t.create_user(&format!("user{i:02}")).await;
    }
    let r = t.get("/Users?count=3&cursor=").await;
    assert_eq!(r.body["itemsPerPage"], 3);
    assert!(r.body.get("startIndex").is_none());
    assert!(r.body.get("previousCursor").is_none());
    let next = r.body["nextCursor"].as_str().unwrap().to_string();
    // Resources added during the walk appear at its end; none repeats.
    t.create_user("late-a").await;
    let mut seen: Vec<String> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_string())
        .collect();
    let mut url = format!("/Users?count=3&cursor={}", enc(&next));
    let mut added = false;
    loop {
        let page = t.get(&url).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert!(page.body.get("previousCursor").is_some());
        for u in page.body["Resources"].as_array().unwrap() {
            seen.push(u["userName"].as_str().unwrap().to_string());
        }
        if !added {
            t.create_user("late-b").await;
            added = true;
        }
        match page.body.get("nextCursor").and_then(Value::as_str) {
            Some(c) => url = format!("/Users?count=3&cursor={}", enc(c)),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "no duplicates: {seen:?}");
    assert_eq!(seen.len(), 12, "{seen:?}");
    assert_eq!(&seen[10..], ["late-a", "late-b"]);

    // previousCursor goes back a page.
    let (_, pages) = walk(&t, "/Users?count=3&cursor=").await;
    let second = &pages[1];
    let back = t
        .get(&format!(
            "/Users?count=3&cursor={}",
            enc(second["previousCursor"].as_str().unwrap())
        ))
        .await;
    assert_eq!(back.body["Resources"], pages[0]["Resources"]);

    // Tampered, foreign-tenant and foreign-filter cursors are refused.
    let mut bad = next.clone();
    bad.replace_range(0..1, if next.starts_with('Y') { "Z" } else { "Y" });
    t.get(&format!("/Users?count=3&cursor={}", enc(&bad)))
        .await
        .assert_error(400, Some("invalidCursor"));
    other
        .get(&format!("/Users?count=3&cursor={}", enc(&next)))
        .await
        .assert_error(400, Some("invalidCursor"));
    t.get(&format!(
        "/Users?count=3&cursor={}&filter={}",
        enc(&next),
        enc("userName pr")
    ))
    .await
    .assert_error(400, Some("invalidCursor"));
    t.get("/Users?cursor=&sortBy=userName")
        .await
        .assert_error(400, Some("invalidValue"));
    // A filtered walk.
    let (seen, _) = walk(
        &t,
        &format!("/Users?count=3&cursor=&filter={}", enc("userName sw \"late\"")),
    )
    .await;
    assert_eq!(seen, vec!["late-a", "late-b"]);
}

#[tokio::test]
async fn custom_schema_extensions_per_tenant() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    let other = srv.tenant("other").await;
    let ext = json!({"resourceType": "User", "schema": {
    "id": ACME, "name": "AcmeUser", "description": "Acme's attributes",
    "attributes": [
        {"name": "badge", "type": "integer", "multiValued": false},
        {"name": "hired", "type": "dateTime", "multiValued": false},
        {"name": "remote", "type": "boolean", "multiValued": false},
        {"name": "skills", "type": "string", "multiValued": true},
        {"name": "desk", "type": "complex", "multiValued": false, "subAttributes": [
            {"name": "building", "type": "string", "multiValued": false},
            {"name": "floor", "type": "integer", "multiValued": false}]}
    ]}});
    let url = format!("{}/admin/v1/tenants/acme/schemas", srv.public_url);
    // A provisioning token cannot change the schema.
    t.send(Method::POST, &url, Some(ext.clone()))
        .await
        .assert_error(403, None);
    let r = admin.send(Method::POST, &url, Some(ext)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let bad =
        json!({"schema": {"id": "not-a-urn", "attributes": [{"name": "x", "type": "string", "multiValued": false}]}});
    admin
        .send(Method::POST, &url, Some(bad))
        .await
        .assert_error(400, Some("invalidValue"));

    assert_eq!(t.get(&format!("/Schemas/{ACME}")).await.status, 200);
    let rt = t.get("/ResourceTypes/User").await;
    assert!(
        rt.body["schemaExtensions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["schema"] == ACME)
    );
    other.get(&format!("/Schemas/{ACME}")).await.assert_error(404, None);

    let mk = |name: &str, badge: i64, hired: &str, building: &str| {
        json!({"schemas": [USER, ACME], "userName": name,
               ACME: {"badge": badge, "hired": hired, "remote": "True", "skills": ["rust", "sql"], "desk": {"building": building, "floor": 3}}})
    };
    for (n, b, h, bl) in [
        ("p1", 30, "2020-01-01T00:00:00Z", "North"),
        ("p2", 10, "2023-06-01T00:00:00+02:00", "south"),
        ("p3", 20, "2021-03-01T12:00:00Z", "North"),
    ] {
        let r = t.post("/Users", mk(n, b, h, bl)).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.body[ACME]["remote"], true);
        assert!(r.body["schemas"].as_array().unwrap().contains(&json!(ACME)));
    }
    t.post("/Users", json!({"userName": "bad", ACME: {"badge": "many"}}))
        .await
        .assert_error(400, Some("invalidValue"));
    t.post("/Users", json!({"userName": "bad", ACME: {"unknown": 1}}))
        .await
        .assert_error(400, Some("invalidValue"));
    other
        .post("/Users", json!({"userName": "bad", ACME: {"badge": 1}}))
        .await
        .assert_error(400, Some("invalidValue"));

    let names = |r: &Value| -> Vec<String> {
        r["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_string())
            .collect()
    };
    let q = |f: String| format!("/Users?filter={}&sortBy=userName", enc(&f));
    assert_eq!(
        names(&t.get(&q(format!("{ACME}:badge gt 15"))).await.body),
        ["p1", "p3"]
    );
    assert_eq!(
        names(
            &t.get(&q(format!("{ACME}:hired lt \"2021-12-31T00:00:00Z\"")))
                .await
                .body
        ),
        ["p1", "p3"]
    );
    assert_eq!(
        names(&t.get(&q(format!("{ACME}:desk.building eq \"NORTH\""))).await.body),
        ["p1", "p3"]
    );
    assert_eq!(
        names(
            &t.get(&q(format!("{ACME}:skills eq \"rust\" and {ACME}:remote eq true")))
                .await
                .body
        ),
        ["p1", "p2", "p3"]
    );
    let sorted = t.get(&format!("/Users?sortBy={}", enc(&format!("{ACME}:badge")))).await;
    assert_eq!(names(&sorted.body), ["p2", "p3", "p1"]);
    // PATCH on an extension attribute.
    let id = t.get(&q("userName eq \"p1\"".into())).await.body["Resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = t
        .patch(
            &format!("/Users/{id}"),
            patch_op(json!([{"op": "replace", "path": format!("{ACME}:desk.floor"), "value": 7}])),
        )
        .await;
    assert_eq!(r.body[ACME]["desk"], json!({"building": "North", "floor": 7}));
    // Removing the extension: it is no longer served.
    let del = admin.send(Method::DELETE, &format!("{url}/{}", enc(ACME)), None).await;
    assert_eq!(del.status, 204);
    // Schema changes are in the audit log, with the token that made them.
    let tenant_id = srv.store.tenant("acme").await.unwrap().unwrap().id;
    let audit = srv.store.list_audit(Some(tenant_id), 10).await.unwrap();
    let actions: Vec<&str> = audit.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["schema.added", "schema.removed"]);
    assert_eq!(audit[0].actor, format!("token:{}", admin.token_id));
    assert_eq!(audit[0].target.as_deref(), Some(ACME));
    t.get(&format!("/Schemas/{ACME}")).await.assert_error(404, None);
}

#[tokio::test]
async fn root_level_search_spans_resource_types() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    let u = t.create_user("alpha").await;
    t.create_group("Alpha Team", &[&u]).await;
    t.create_group("Beta Team", &[]).await;
    let r = t
        .get(&format!(
            "/?filter={}",
            enc("displayName sw \"alpha\" or userName eq \"alpha\"")
        ))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["totalResults"], 2);
    let kinds: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["meta"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["User", "Group"]);
    let s = t
        .post("/.search", json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "displayName ew \"team\"", "sortBy": "displayName", "sortOrder": "descending", "attributes": ["displayName"]}))
        .await;
    assert_eq!(s.status, 200, "{}", s.text);
    let names: Vec<&str> = s.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Beta Team", "Alpha Team"]);
    let page = t.get("/?startIndex=2&count=1").await;
    assert_eq!(page.body["totalResults"], 3);
    assert_eq!(page.body["Resources"].as_array().unwrap().len(), 1);
    t.get(&format!("/?filter={}", enc("nosuch eq 1")))
        .await
        .assert_error(400, Some("invalidFilter"));
}

/// Every feature /ServiceProviderConfig claims is exercised here.
#[tokio::test]
async fn service_provider_config_claims_hold() {
    let srv = TestServer::start_with(|s| s.max_results = 5).await;
    let t = srv.tenant("acme").await;
    let spc = t.get("/ServiceProviderConfig").await.body;
    for i in 0..7 {
        t.create_user(&format!("c{i}")).await;
    }
    let id = t.create_user("claims").await;
    if spc["patch"]["supported"] == true {
        let r = t
            .patch(
                &format!("/Users/{id}"),
                patch_op(json!([{"op": "add", "path": "title", "value": "x"}])),
            )
            .await;
        assert_eq!(r.body["title"], "x");
    }
    if spc["filter"]["supported"] == true {
        let max = spc["filter"]["maxResults"].as_u64().unwrap();
        assert_eq!(max, 5);
        let r = t.get("/Users?filter=userName+pr&count=1000").await;
        assert_eq!(r.body["itemsPerPage"].as_u64().unwrap(), max);
        assert_eq!(r.body["totalResults"], 8);
    }
    if spc["sort"]["supported"] == true {
        let r = t.get("/Users?sortBy=userName&sortOrder=descending&count=1").await;
        assert_eq!(r.body["Resources"][0]["userName"], "claims");
    }
    if spc["etag"]["supported"] == true {
        let r = t.get(&format!("/Users/{id}")).await;
        let etag = r.header("etag").unwrap();
        assert_eq!(
            t.send_with(Method::GET, &format!("/Users/{id}"), None, &[("if-none-match", etag)])
                .await
                .status,
            304
        );
    }
    if spc["bulk"]["supported"] == true {
        let r = t
            .post(
                "/Bulk",
                json!({"schemas": [BULK], "Operations": [{"method": "DELETE", "path": format!("/Users/{id}")}]}),
            )
            .await;
        assert_eq!(r.body["Operations"][0]["status"], "204");
    }
    assert_eq!(spc["changePassword"]["supported"], false);
    if spc["pagination"]["cursor"] == true {
        let r = t.get("/Users?cursor=&count=2").await;
        assert!(r.body["nextCursor"].is_string());
        assert_eq!(spc["pagination"]["maxPageSize"], 5);
    }
    assert_eq!(spc["authenticationSchemes"][0]["type"], "oauthbearertoken");
    // Unsupported: /Me explains itself.
    let me = t.get("/Me").await;
    me.assert_error(501, None);
    assert!(me.body["detail"].as_str().unwrap().contains("no authenticated subject"));
}
