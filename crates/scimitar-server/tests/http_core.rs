//! HTTP-level tests of the SCIM endpoints against a real server on an
//! ephemeral port. Table-driven where the domain is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use reqwest::Method;
use scimitar_testkit::{Tenant, TestServer, patch_op};
use serde_json::{Value, json};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

async fn setup() -> (TestServer, Tenant) {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    (srv, t)
}

#[tokio::test]
async fn discovery_endpoints_describe_the_server() {
    let (_srv, t) = setup().await;
    let spc = t.get("/ServiceProviderConfig").await;
    assert_eq!(spc.status, 200);
    assert_eq!(spc.body["patch"]["supported"], true);
    assert_eq!(spc.body["filter"]["supported"], true);
    assert_eq!(spc.body["filter"]["maxResults"], 1000);
    assert_eq!(spc.body["sort"]["supported"], true);
    assert_eq!(spc.body["etag"]["supported"], true);
    assert_eq!(spc.body["authenticationSchemes"][0]["type"], "oauthbearertoken");

    let rts = t.get("/ResourceTypes").await;
    assert_eq!(rts.status, 200);
    assert_eq!(rts.body["totalResults"], 2);
    let user_rt = t.get("/ResourceTypes/User").await;
    assert_eq!(user_rt.body["endpoint"], "/Users");
    assert_eq!(user_rt.body["schemaExtensions"][0]["schema"], ENT);

    let schemas = t.get("/Schemas").await;
    assert_eq!(schemas.body["totalResults"], 3);
    let user = t.get(&format!("/Schemas/{USER}")).await;
    assert_eq!(user.status, 200);
    let attrs = user.body["attributes"].as_array().unwrap();
    // Every attribute of RFC 7643 §4.1.
    for name in [
        "userName",
        "name",
        "displayName",
        "nickName",
        "profileUrl",
        "title",
        "userType",
        "preferredLanguage",
        "locale",
        "timezone",
        "active",
        "password",
        "emails",
        "phoneNumbers",
        "ims",
        "photos",
        "addresses",
        "groups",
        "entitlements",
        "roles",
        "x509Certificates",
    ] {
        assert!(attrs.iter().any(|a| a["name"] == name), "missing {name}");
    }
    let user_name = attrs.iter().find(|a| a["name"] == "userName").unwrap();
    assert_eq!(user_name["uniqueness"], "server");
    assert_eq!(user_name["caseExact"], false);
    let password = attrs.iter().find(|a| a["name"] == "password").unwrap();
    assert_eq!(password["returned"], "never");
    assert_eq!(password["mutability"], "writeOnly");
    let ent = t.get(&format!("/Schemas/{ENT}")).await;
    let manager = ent.body["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "manager")
        .unwrap()
        .clone();
    assert_eq!(manager["type"], "complex");

    for (method, path, status) in [
        (Method::POST, "/ServiceProviderConfig", 405),
        (Method::DELETE, "/Schemas", 405),
        (Method::PUT, "/ResourceTypes", 405),
        (Method::GET, "/Schemas/urn:nope", 404),
        (Method::GET, "/ResourceTypes/Nope", 404),
        (Method::GET, "/NoSuchEndpoint", 404),
        (Method::GET, "/Me", 501),
    ] {
        let r = t.send(method.clone(), path, None).await;
        r.assert_error(status, None);
    }
}

#[tokio::test]
async fn create_read_replace_delete_a_user() {
    let (_srv, t) = setup().await;
    let body = json!({
        "schemas": [USER, ENT],
        "userName": "Alice@Example.com",
        "externalId": "a-1",
        "name": {"givenName": "Alice", "familyName": "Smith"},
        "emails": [{"type": "work", "value": "alice@example.com", "primary": true}],
        "password": "s3cret!",
        "groups": [{"value": "ignored"}],
        ENT: {"department": "R&D"}
    });
    let r = t.post("/Users", body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    let location = r.header("location").unwrap().to_string();
    assert_eq!(location, format!("{}/Users/{id}", t.base));
    assert_eq!(r.body["meta"]["location"], location);
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert_eq!(r.body["meta"]["version"], r.header("etag").unwrap());
    assert!(r.body["meta"]["created"].as_str().unwrap().ends_with('Z'));
    assert!(r.body.get("password").is_none(), "password is never returned");
    assert!(r.body.get("groups").is_none(), "readOnly groups are ignored on input");
    assert_eq!(r.body["userName"], "Alice@Example.com", "stored exactly as sent");
    assert_eq!(r.header("content-type").unwrap(), "application/scim+json");

    let g = t.get(&format!("/Users/{id}")).await;
    assert_eq!(g.status, 200);
    assert_eq!(g.body[ENT]["department"], "R&D");

    // PUT replaces: omitted attributes are cleared; readOnly id is ignored.
    let put = t
        .put(
            &format!("/Users/{id}"),
            json!({"schemas": [USER], "id": "other", "userName": "alice@example.com", "displayName": "Alice"}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.body["id"], id);
    assert_eq!(put.body["displayName"], "Alice");
    assert!(put.body.get("emails").is_none());
    assert!(put.body.get(ENT).is_none());
    assert_ne!(put.body["meta"]["version"], g.body["meta"]["version"]);

    let d = t.delete(&format!("/Users/{id}")).await;
    assert_eq!(d.status, 204);
    assert!(d.text.is_empty());
    t.get(&format!("/Users/{id}")).await.assert_error(404, None);
    t.delete(&format!("/Users/{id}")).await.assert_error(404, None);
}

#[tokio::test]
async fn put_honours_immutable_member_values_and_required_attributes() {
    let (_srv, t) = setup().await;
    let id = t.create_user("bob").await;
    t.put(
        &format!("/Users/{id}"),
        json!({"schemas": [USER], "displayName": "no userName"}),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    t.put("/Users/does-not-exist", json!({"schemas": [USER], "userName": "x"}))
        .await
        .assert_error(404, None);
}

#[tokio::test]
async fn uniqueness_is_per_tenant_and_case_insensitive() {
    let srv = TestServer::start().await;
    let a = srv.tenant("a").await;
    let b = srv.tenant("b").await;
    a.create_user("Carol@Example.com").await;
    a.post("/Users", json!({"schemas": [USER], "userName": "carol@example.COM"}))
        .await
        .assert_error(409, Some("uniqueness"));
    b.create_user("carol@example.com").await; // another tenant: fine
    let g = a.create_group("Engineering", &[]).await;
    a.post("/Groups", json!({"schemas": [GROUP], "displayName": "ENGINEERING"}))
        .await
        .assert_error(409, Some("uniqueness"));
    // Renaming into a taken name conflicts too.
    let other = a.create_group("Sales", &[]).await;
    a.patch(
        &format!("/Groups/{other}"),
        patch_op(json!([{"op": "replace", "path": "displayName", "value": "engineering"}])),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    assert!(!g.is_empty());
}

async fn seed(t: &Tenant) -> Vec<String> {
    let users = [
        json!({"userName": "ann", "displayName": "Ann Archer", "title": "Engineer", "active": true,
               "emails": [{"type": "work", "value": "ann@example.com"}, {"type": "home", "value": "ann@home.net", "primary": true}],
               ENT: {"department": "R&D", "employeeNumber": "100"}}),
        json!({"userName": "Ben", "displayName": "Ben Baker", "title": "Manager", "active": false,
               "emails": [{"type": "work", "value": "ben@example.com"}],
               ENT: {"department": "Sales", "employeeNumber": "200"}}),
        json!({"userName": "cat", "displayName": "Cat Carter", "active": true, "nickName": "kitty",
               "emails": [{"type": "home", "value": "cat@example.com"}]}),
        json!({"userName": "dan", "displayName": "Dan Dunn", "title": "engineer",
               ENT: {"department": "r&d"}}),
    ];
    let mut ids = Vec::new();
    for mut u in users {
        u["schemas"] = json!([USER, ENT]);
        let r = t.post("/Users", u).await;
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    ids
}

fn names(r: &Value) -> Vec<String> {
    let mut v: Vec<String> = r["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["userName"].as_str().unwrap_or("?").to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn filters_every_operator() {
    let (_srv, t) = setup().await;
    let ids = seed(&t).await;
    let cases: Vec<(String, Vec<&str>)> = vec![
        (r#"userName eq "ANN""#.into(), vec!["ann"]),
        (r#"userName ne "ann""#.into(), vec!["Ben", "cat", "dan"]),
        (r#"displayName co "a""#.into(), vec!["Ben", "ann", "cat", "dan"]),
        (r#"displayName co "ARTER""#.into(), vec!["cat"]),
        (r#"userName sw "b""#.into(), vec!["Ben"]),
        (r#"displayName ew "unn""#.into(), vec!["dan"]),
        (r#"nickName pr"#.into(), vec!["cat"]),
        (r#"title pr and not (title eq "manager")"#.into(), vec!["ann", "dan"]),
        (r#"userName gt "b""#.into(), vec!["Ben", "cat", "dan"]),
        (r#"userName ge "cat""#.into(), vec!["cat", "dan"]),
        (r#"userName lt "b""#.into(), vec!["ann"]),
        (r#"userName le "ben""#.into(), vec!["Ben", "ann"]),
        (r#"active eq false"#.into(), vec!["Ben"]),
        (r#"active eq true or nickName pr"#.into(), vec!["ann", "cat"]),
        (
            r#"emails[type eq "work" and value co "@example.com"]"#.into(),
            vec!["Ben", "ann"],
        ),
        (
            r#"emails[type eq "work"].value eq "ben@example.com""#.into(),
            vec!["Ben"],
        ),
        (r#"emails.value ew ".net""#.into(), vec!["ann"]),
        (r#"emails eq "cat@example.com""#.into(), vec!["cat"]),
        (format!(r#"{ENT}:department eq "R&D""#), vec!["ann", "dan"]),
        (r#"department eq "sales""#.into(), vec!["Ben"]),
        (format!(r#"{ENT}:employeeNumber gt "150""#), vec!["Ben"]),
        (
            r#"(userName eq "ann" or userName eq "ben") and active eq true"#.into(),
            vec!["ann"],
        ),
        (
            r#"userName eq "ann" or userName eq "ben" and active eq true"#.into(),
            vec!["ann"],
        ),
        (format!(r#"id eq "{}""#, ids[2]), vec!["cat"]),
        (format!(r#"id eq "{}""#, ids[2].to_uppercase()), vec![]),
        (
            r#"meta.created gt "2000-01-01T00:00:00Z""#.into(),
            vec!["Ben", "ann", "cat", "dan"],
        ),
        (r#"meta.lastModified lt "2000-01-01T00:00:00+01:00""#.into(), vec![]),
        (
            r#"meta.resourceType eq "User""#.into(),
            vec!["Ben", "ann", "cat", "dan"],
        ),
        (r#"USERNAME EQ "ann""#.into(), vec!["ann"]),
        (r#"externalId eq unquoted"#.into(), vec![]),
    ];
    for (filter, expected) in cases {
        let q: String = form_urlencoded::byte_serialize(filter.as_bytes()).collect();
        let r = t.get(&format!("/Users?filter={q}")).await;
        assert_eq!(r.status, 200, "{filter}: {}", r.text);
        assert_eq!(names(&r.body), expected, "{filter}");
        assert_eq!(r.body["totalResults"], expected.len(), "{filter}");
        // The same through POST /.search.
        let s = t
            .post(
                "/Users/.search",
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": filter}),
            )
            .await;
        assert_eq!(names(&s.body), expected, ".search {filter}");
    }
}

#[tokio::test]
async fn pagination_sorting_and_projection() {
    let (_srv, t) = setup().await;
    seed(&t).await;
    let page = |q: &str| {
        let t = t.clone();
        let q = q.to_string();
        async move { t.get(&format!("/Users?{q}")).await }
    };
    let r = page("sortBy=userName&startIndex=2&count=2").await;
    assert_eq!(r.body["totalResults"], 4);
    assert_eq!(r.body["startIndex"], 2);
    assert_eq!(r.body["itemsPerPage"], 2);
    let got: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["userName"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec!["Ben", "cat"], "sorted case-insensitively");
    let r = page("count=0").await;
    assert_eq!(r.body["totalResults"], 4);
    assert_eq!(r.body["Resources"], json!([]));
    let r = page("startIndex=10").await;
    assert_eq!(r.body["totalResults"], 4);
    assert_eq!(r.body["Resources"], json!([]));
    let r = page("startIndex=-5&count=1").await;
    assert_eq!(r.body["startIndex"], 1);
    assert_eq!(r.body["itemsPerPage"], 1);
    let r = page("count=5000").await;
    assert_eq!(r.body["itemsPerPage"], 4, "capped at maxResults, here all four");

    let r = page("sortBy=title&sortOrder=descending").await;
    let got: Vec<Value> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["userName"].clone())
        .collect();
    // manager > engineer = engineer (ties in creation order), absent last.
    assert_eq!(got, vec![json!("Ben"), json!("ann"), json!("dan"), json!("cat")]);
    let r = page("sortBy=emails&sortOrder=ascending").await;
    let got: Vec<Value> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["userName"].clone())
        .collect();
    // primary email for ann is ann@home.net; others by their first email.
    assert_eq!(got, vec![json!("ann"), json!("Ben"), json!("cat"), json!("dan")]);
    let r = page(&format!("sortBy={ENT}:employeeNumber&sortOrder=descending")).await;
    assert_eq!(r.body["Resources"][0]["userName"], "Ben");

    let r = page("attributes=userName,emails.value&filter=userName+eq+%22ann%22").await;
    let u = &r.body["Resources"][0];
    assert_eq!(u["userName"], "ann");
    assert!(u.get("id").is_some(), "id is always returned");
    assert!(u.get("displayName").is_none());
    assert_eq!(u["emails"][0], json!({"value": "ann@example.com"}));
    let r = page(&format!(
        "excludedAttributes=emails,{ENT}:department,id&filter=userName+eq+%22ann%22"
    ))
    .await;
    let u = &r.body["Resources"][0];
    assert!(u.get("emails").is_none());
    assert!(u.get("id").is_some(), "id cannot be excluded");
    assert_eq!(u[ENT], json!({"employeeNumber": "100"}));
    page("sortBy=nope").await.assert_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn groups_members_and_user_groups() {
    let (_srv, t) = setup().await;
    let ids = seed(&t).await;
    let g = t.create_group("Engineering", &[&ids[0], &ids[1]]).await;
    let r = t.get(&format!("/Groups/{g}")).await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["members"][0]["type"], "User");
    let r = t.get(&format!("/Groups/{g}?excludedAttributes=members")).await;
    assert!(r.body.get("members").is_none());
    let u = t.get(&format!("/Users/{}", ids[0])).await;
    assert_eq!(u.body["groups"][0]["value"], g);
    assert_eq!(u.body["groups"][0]["display"], "Engineering");
    let q: String = form_urlencoded::byte_serialize(format!(r#"members.value eq "{}""#, ids[1]).as_bytes()).collect();
    assert_eq!(t.get(&format!("/Groups?filter={q}")).await.body["totalResults"], 1);
    let q: String = form_urlencoded::byte_serialize(format!(r#"groups eq "{g}""#).as_bytes()).collect();
    assert_eq!(
        names(&t.get(&format!("/Users?filter={q}")).await.body),
        vec!["Ben", "ann"]
    );

    // A deleted user leaves every group.
    assert_eq!(t.delete(&format!("/Users/{}", ids[0])).await.status, 204);
    let r = t.get(&format!("/Groups/{g}")).await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1);
    // Unknown member ids are rejected, nothing applied.
    let bad = t
        .patch(
            &format!("/Groups/{g}"),
            patch_op(json!([
                {"op": "add", "path": "members", "value": [{"value": ids[2]}]},
                {"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}
            ])),
        )
        .await;
    bad.assert_error(400, Some("invalidValue"));
    assert_eq!(
        t.get(&format!("/Groups/{g}")).await.body["members"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "atomic"
    );
}

#[tokio::test]
async fn patch_is_atomic_and_keeps_primary_unique() {
    let (_srv, t) = setup().await;
    let ids = seed(&t).await;
    let path = format!("/Users/{}", ids[0]);
    let before = t.get(&path).await.body;
    let r = t
        .patch(
            &path,
            patch_op(json!([
                {"op": "replace", "path": "displayName", "value": "Changed"},
                {"op": "replace", "path": "nosuch", "value": "x"}
            ])),
        )
        .await;
    r.assert_error(400, Some("invalidPath"));
    assert_eq!(t.get(&path).await.body, before, "nothing applied");

    let r = t.patch(&path, patch_op(json!([{"op": "add", "path": "emails", "value": [{"type": "other", "value": "x@y.z", "primary": true}]}]))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let primaries: Vec<&Value> = r.body["emails"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["primary"] == true)
        .collect();
    assert_eq!(primaries.len(), 1);
    assert_eq!(primaries[0]["value"], "x@y.z");
    let r = t
        .patch(
            &path,
            patch_op(json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com"}])),
        )
        .await;
    let work: Vec<&Value> = r.body["emails"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "work")
        .collect();
    assert_eq!(work.len(), 1);
    assert_eq!(work[0]["value"], "new@example.com");
    t.patch(&path, patch_op(json!([{"op": "replace", "path": "id", "value": "x"}])))
        .await
        .assert_error(400, Some("mutability"));
    t.patch(&path, patch_op(json!([{"op": "remove"}])))
        .await
        .assert_error(400, Some("noTarget"));
    t.patch(
        &path,
        patch_op(json!([{"op": "replace", "path": "emails[type eq]", "value": "x"}])),
    )
    .await
    .assert_error(400, Some("invalidPath"));
    t.patch(
        "/Users/nope",
        patch_op(json!([{"op": "replace", "path": "title", "value": "x"}])),
    )
    .await
    .assert_error(404, None);
}

#[tokio::test]
async fn malformed_requests_get_scim_errors_never_5xx() {
    let (_srv, t) = setup().await;
    let id = t.create_user("zed").await;
    let user = format!("/Users/{id}");
    let json_ct = [("content-type", "application/scim+json")];
    type Case<'a> = (Method, String, Vec<u8>, u16, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/Users".into(),
            b"{not json".to_vec(),
            400,
            Some("invalidSyntax"),
        ),
        (Method::POST, "/Users".into(), b"".to_vec(), 400, Some("invalidSyntax")),
        (
            Method::POST,
            "/Users".into(),
            b"[1,2]".to_vec(),
            400,
            Some("invalidSyntax"),
        ),
        (
            Method::POST,
            "/Users".into(),
            br#"{"userName": 1e999}"#.to_vec(),
            400,
            Some("invalidSyntax"),
        ),
        (
            Method::POST,
            "/Users".into(),
            br#"{"userName": "x", "active": "maybe"}"#.to_vec(),
            400,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users".into(),
            br#"{"userName": {"a": 1}}"#.to_vec(),
            400,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users".into(),
            br#"{"userName": "x", "unknownAttr": 1}"#.to_vec(),
            400,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users".into(),
            br#"{"userName": "x", "name": "flat"}"#.to_vec(),
            400,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users".into(),
            br#"{"userName": "x", "emails": [{"value": "a", "bogus": 1}]}"#.to_vec(),
            400,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users".into(),
            br#"{"displayName": "no userName"}"#.to_vec(),
            400,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users".into(),
            format!(r#"{{"userName": "x", "{ENT}": {{"nope": 1}}}}"#).into_bytes(),
            400,
            Some("invalidValue"),
        ),
        (
            Method::POST,
            "/Users".into(),
            "{\"userName\": \"\u{0}\"}".as_bytes().to_vec(),
            400,
            None,
        ),
        (
            Method::POST,
            "/Users".into(),
            vec![b'{', 0xff, 0xfe, b'}'],
            400,
            Some("invalidSyntax"),
        ),
        (
            Method::POST,
            "/Users".into(),
            "[".repeat(10_000).into_bytes(),
            400,
            Some("invalidSyntax"),
        ),
        (
            Method::POST,
            "/Groups".into(),
            br#"{"displayName": "g", "members": [{"display": "no value"}]}"#.to_vec(),
            400,
            Some("invalidValue"),
        ),
        (
            Method::PATCH,
            user.clone(),
            br#"{"Operations": []}"#.to_vec(),
            400,
            Some("invalidSyntax"),
        ),
        (
            Method::PATCH,
            user.clone(),
            br#"{"Operations": [{"op": "frobnicate", "path": "title"}]}"#.to_vec(),
            400,
            Some("invalidSyntax"),
        ),
        (
            Method::PATCH,
            user.clone(),
            br#"{"Operations": [{"op": "add", "path": "title"}]}"#.to_vec(),
            400,
            Some("invalidValue"),
        ),
        (
            Method::PATCH,
            user.clone(),
            br#"{"Operations": [{"op": "add", "path": 7, "value": 1}]}"#.to_vec(),
            400,
            Some("invalidPath"),
        ),
        (
            Method::PATCH,
            user.clone(),
            br#"{"schemas": ["urn:wrong"], "Operations": [{"op": "add", "path": "title", "value": "x"}]}"#.to_vec(),
            400,
            Some("invalidSyntax"),
        ),
        (
            Method::PATCH,
            user.clone(),
            br#"{"Operations": [{"op": "add", "path": "active", "value": "perhaps"}]}"#.to_vec(),
            400,
            Some("invalidValue"),
        ),
        (
            Method::PUT,
            user.clone(),
            br#"{"userName": "zed", "groups": 5, "active": []}"#.to_vec(),
            200,
            None,
        ),
    ];
    for (method, path, body, status, scim_type) in cases {
        let r = t
            .raw(
                method.clone(),
                &format!("{}{path}", t.base),
                body.clone(),
                &[json_ct[0], ("authorization", &format!("Bearer {}", t.token))],
            )
            .await;
        if status == 200 {
            assert_eq!(
                r.status,
                200,
                "{method} {path} {}: {}",
                String::from_utf8_lossy(&body),
                r.text
            );
        } else {
            r.assert_error(status, scim_type);
        }
    }
    let filters = [
        "userName eq",
        "userName xx \"a\"",
        "(userName eq \"a\"",
        "userName eq \"a\" and",
        "emails[type eq \"work\"",
        "nosuch eq \"a\"",
        "active gt true",
        "emails[value eq \"a\"][type eq \"b\"]",
        "userName eq \"unterminated",
        "not userName eq \"a\"",
        "meta.created gt \"yesterday\"",
        "\u{0}",
    ];
    for f in filters {
        let q: String = form_urlencoded::byte_serialize(f.as_bytes()).collect();
        t.get(&format!("/Users?filter={q}"))
            .await
            .assert_error(400, Some("invalidFilter"));
    }
    let deep = format!("{}userName eq \"a\"{}", "(".repeat(200), ")".repeat(200));
    let q: String = form_urlencoded::byte_serialize(deep.as_bytes()).collect();
    t.get(&format!("/Users?filter={q}"))
        .await
        .assert_error(400, Some("tooMany"));
    let wide = vec!["userName eq \"a\""; 1500].join(" or ");
    t.post("/Users/.search", json!({"filter": wide}))
        .await
        .assert_error(400, Some("tooMany"));
    for q in [
        "count=abc",
        "startIndex=x",
        "sortOrder=sideways",
        "count=99999999999999999999999",
    ] {
        let r = t.get(&format!("/Users?{q}")).await;
        assert!(r.status == 200 || r.status == 400, "{q}: {}", r.status);
        if r.status == 400 {
            r.assert_error(400, Some("invalidValue"));
        }
    }
    // A body over the limit.
    let big = json!({"userName": "big", "displayName": "x".repeat(2 * 1024 * 1024)});
    t.post("/Users", big).await.assert_error(413, None);
    // Unsupported content type.
    let r = t
        .raw(
            Method::POST,
            &format!("{}/Users", t.base),
            b"userName=x".to_vec(),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &format!("Bearer {}", t.token)),
            ],
        )
        .await;
    r.assert_error(415, None);
    // The server is still healthy.
    assert_eq!(t.get(&user).await.status, 200);
}

#[tokio::test]
async fn authentication_failures_and_revocation() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    let url = format!("{}/Users", t.base);
    for auth in [
        None,
        Some("Bearer"),
        Some("Bearer wrong"),
        Some("Basic dXNlcjpwYXNz"),
        Some("Bearer scim_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|a| vec![("authorization", a)]).unwrap_or_default();
        let r = t.raw(Method::GET, &url, vec![], &headers).await;
        r.assert_error(401, None);
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    }
    assert_eq!(t.get("/Users").await.status, 200);
    assert!(srv.store.revoke_token(t.id, &t.token_id).await.unwrap());
    t.get("/Users").await.assert_error(401, None);
}

/// Every endpoint, with a token of another tenant: nothing is visible or
/// writable, and the answer does not reveal whether anything exists.
#[tokio::test]
async fn tenant_isolation_on_every_endpoint() {
    // Failed-authentication throttling is tested elsewhere; here every
    // refusal must be the plain 401.
    let srv = TestServer::start_with(|s| s.auth_failures_per_minute = 0).await;
    let a = srv.tenant("alpha").await;
    let b = srv.tenant("beta").await;
    let ua = a.create_user("shared@example.com").await;
    let ga = a.create_group("Shared", &[&ua]).await;
    // B's token on A's Tenant URL.
    let intruder = Tenant {
        token: b.token.clone(),
        ..a.clone()
    };
    let ops = patch_op(json!([{"op": "replace", "path": "displayName", "value": "pwned"}]));
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/ServiceProviderConfig".into(), None),
        (Method::GET, "/ResourceTypes".into(), None),
        (Method::GET, "/Schemas".into(), None),
        (Method::GET, "/Users".into(), None),
        (Method::POST, "/Users".into(), Some(json!({"userName": "x"}))),
        (Method::POST, "/Users/.search".into(), Some(json!({}))),
        (Method::GET, format!("/Users/{ua}"), None),
        (Method::PUT, format!("/Users/{ua}"), Some(json!({"userName": "x"}))),
        (Method::PATCH, format!("/Users/{ua}"), Some(ops.clone())),
        (Method::DELETE, format!("/Users/{ua}"), None),
        (Method::GET, "/Groups".into(), None),
        (Method::POST, "/Groups".into(), Some(json!({"displayName": "x"}))),
        (Method::POST, "/Groups/.search".into(), Some(json!({}))),
        (Method::GET, format!("/Groups/{ga}"), None),
        (Method::PUT, format!("/Groups/{ga}"), Some(json!({"displayName": "x"}))),
        (Method::PATCH, format!("/Groups/{ga}"), Some(ops.clone())),
        (Method::DELETE, format!("/Groups/{ga}"), None),
        (Method::GET, "/Me".into(), None),
        (Method::POST, "/Bulk".into(), Some(json!({}))),
        (Method::GET, "/".into(), None),
    ];
    // Every route with: another tenant's token, another tenant's admin
    // token, a revoked token of this tenant, this tenant's admin token (a
    // different scope), no token.
    let other_admin = srv.tenant_with_scope("beta", "admin").await;
    let own_admin = srv.tenant_with_scope("alpha", "admin").await;
    let revoked = srv.tenant("alpha").await;
    assert!(srv.store.revoke_token(revoked.id, &revoked.token_id).await.unwrap());
    let no_token = Tenant {
        token: String::new(),
        ..a.clone()
    };
    let callers: Vec<(&str, Tenant, u16)> = vec![
        ("another tenant's token", intruder.clone(), 401),
        (
            "another tenant's admin",
            Tenant {
                token: other_admin.token.clone(),
                ..a.clone()
            },
            401,
        ),
        (
            "a revoked token",
            Tenant {
                token: revoked.token.clone(),
                ..a.clone()
            },
            401,
        ),
        ("no token", no_token, 401),
        (
            "this tenant's admin token",
            Tenant {
                token: own_admin.token.clone(),
                ..a.clone()
            },
            403,
        ),
    ];
    for (who, caller, status) in &callers {
        for (method, path, body) in &endpoints {
            let r = caller.send(method.clone(), path, body.clone()).await;
            assert_eq!(r.status.as_u16(), *status, "{who}: {method} {path}: {}", r.text);
            r.assert_error(*status, None);
            assert!(r.header("etag").is_none(), "{who}: {method} {path} sent an ETag");
            assert!(
                !r.text.contains(&ua) && !r.text.contains("shared@"),
                "{who}: {method} {path} leaked: {}",
                r.text
            );
        }
    }
    // The administration API of A with B's tokens, and with A's SCIM token.
    let admin_routes = [
        "/admin/v1/tenants/alpha/activity",
        "/admin/v1/tenants/alpha/schemas",
        "/admin/v1/tenants/alpha/jobs",
        "/admin/v1/tenants/alpha/jobs/hr",
    ];
    for route in admin_routes {
        let url = format!("{}{route}", srv.public_url);
        for (who, caller, status) in [
            ("B's admin", &other_admin, 401),
            ("B's SCIM token", &b, 401),
            ("A's SCIM token", &a, 403),
        ] {
            let r = caller.send(Method::GET, &url, None).await;
            assert_eq!(r.status.as_u16(), status, "{who} on {route}: {}", r.text);
            assert!(!r.text.contains(&ua), "{who} on {route} leaked");
        }
    }
    // B's own URL never shows A's data, by id, filter, search or member reference.
    b.get(&format!("/Users/{ua}")).await.assert_error(404, None);
    b.get(&format!("/Groups/{ga}")).await.assert_error(404, None);
    b.delete(&format!("/Users/{ua}")).await.assert_error(404, None);
    b.patch(&format!("/Users/{ua}"), ops.clone())
        .await
        .assert_error(404, None);
    let q: String =
        form_urlencoded::byte_serialize(format!(r#"id eq "{ua}" or userName eq "shared@example.com""#).as_bytes())
            .collect();
    assert_eq!(b.get(&format!("/Users?filter={q}")).await.body["totalResults"], 0);
    assert_eq!(
        b.post("/Users/.search", json!({"filter": "userName pr"})).await.body["totalResults"],
        0
    );
    b.post("/Groups", json!({"displayName": "Steal", "members": [{"value": ua}]}))
        .await
        .assert_error(400, Some("invalidValue"));
    // A unknown tenant name answers like a bad token.
    let ghost = Tenant {
        base: scimitar_server::tenant_url(&srv.public_url, "ghost"),
        ..a.clone()
    };
    ghost.get("/Users").await.assert_error(401, None);
    // A's data is untouched.
    let g = a.get(&format!("/Groups/{ga}")).await;
    assert_eq!(g.body["displayName"], "Shared");
    assert_eq!(g.body["members"][0]["value"], ua);
}

#[tokio::test]
async fn conditional_requests_with_etags() {
    let (_srv, t) = setup().await;
    let id = t.create_user("etag").await;
    let path = format!("/Users/{id}");
    let r = t.get(&path).await;
    let etag = r.header("etag").unwrap().to_string();
    let nm = t.send_with(Method::GET, &path, None, &[("if-none-match", &etag)]).await;
    assert_eq!(nm.status, 304);
    let stale = "\"999\"";
    let ops = patch_op(json!([{"op": "replace", "path": "title", "value": "x"}]));
    t.send_with(Method::PATCH, &path, Some(ops.clone()), &[("if-match", stale)])
        .await
        .assert_error(412, None);
    t.send_with(Method::DELETE, &path, None, &[("if-match", stale)])
        .await
        .assert_error(412, None);
    assert_eq!(t.get(&path).await.body["title"], Value::Null, "nothing changed");
    let ok = t
        .send_with(Method::PATCH, &path, Some(ops), &[("if-match", &etag)])
        .await;
    assert_eq!(ok.status, 200);
    assert_ne!(ok.header("etag").unwrap(), etag);
    // A PATCH that changes nothing keeps the version.
    let again = t
        .patch(
            &path,
            patch_op(json!([{"op": "replace", "path": "title", "value": "x"}])),
        )
        .await;
    assert_eq!(again.header("etag"), ok.header("etag"));
}

#[tokio::test]
async fn base_url_tolerates_flags_trailing_slash_and_case() {
    let (_srv, t) = setup().await;
    t.create_user("probe@example.com").await;
    for path in [
        "/Users?aadOptscim062020&filter=userName+eq+%22PROBE%40example.com%22",
        "/users?filter=userName%20eq%20%22probe@example.com%22",
        "/USERS/?filter=userName+eq+%22probe@example.com%22",
    ] {
        let r = t.get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(r.body["totalResults"], 1, "{path}");
    }
}

#[tokio::test]
async fn if_match_compares_strongly_and_if_none_match_weakly() {
    let (_srv, t) = setup().await;
    let id = t.create_user("weak").await;
    let path = format!("/Users/{id}");
    let etag = t.get(&path).await.header("etag").unwrap().to_string();
    let weak = format!("W/{etag}");
    // RFC 7232 §3.1: If-Match uses the strong comparison, so a weak tag
    // matches none of our (strong) ETags, even with the current version.
    let writes = [
        (
            Method::PATCH,
            Some(patch_op(json!([{"op": "replace", "path": "title", "value": "x"}]))),
        ),
        (Method::PUT, Some(json!({"userName": "weak", "title": "x"}))),
        (Method::DELETE, None),
    ];
    for (m, body) in writes {
        t.send_with(m.clone(), &path, body, &[("if-match", &weak)])
            .await
            .assert_error(412, None);
    }
    assert_eq!(t.get(&path).await.body["title"], Value::Null, "nothing changed");
    // Bulk's `version` is an If-Match too.
    let bulk = t
        .post(
            "/Bulk",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
                {"method": "PATCH", "path": path, "version": weak,
                 "data": patch_op(json!([{"op": "replace", "path": "title", "value": "x"}]))}]}),
        )
        .await;
    assert_eq!(bulk.body["Operations"][0]["status"], "412", "{}", bulk.text);
    // If-None-Match uses the weak comparison (§3.2): W/"1" matches "1".
    let nm = t.send_with(Method::GET, &path, None, &[("if-none-match", &weak)]).await;
    assert_eq!(nm.status, 304);
    // The strong tag still works, alone or in a list after a weak one.
    let list = format!("{weak}, {etag}");
    let ok = t
        .send_with(
            Method::PATCH,
            &path,
            Some(patch_op(json!([{"op": "replace", "path": "title", "value": "y"}]))),
            &[("if-match", &list)],
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
}

#[tokio::test]
async fn start_index_is_echoed_as_given_or_refused() {
    let (_srv, t) = setup().await;
    t.create_user("one").await;
    for (q, want) in [
        (
            "startIndex=9223372036854775807",
            Some(json!(9_223_372_036_854_775_807_i64)),
        ),
        ("startIndex=0", Some(json!(1))),
        ("startIndex=9223372036854775808", None),
        ("startIndex=99999999999999999999999", None),
    ] {
        let r = t.get(&format!("/Users?{q}")).await;
        match want {
            Some(v) => {
                assert_eq!(r.status, 200, "{q}: {}", r.text);
                assert_eq!(r.body["startIndex"], v, "{q}");
            }
            None => r.assert_error(400, Some("invalidValue")),
        }
        let body = json!({"startIndex": q.trim_start_matches("startIndex=").parse::<Value>().unwrap()});
        let s = t.post("/Users/.search", body).await;
        assert_eq!(s.status, r.status, "{q} (.search): {}", s.text);
    }
}

#[tokio::test]
async fn user_and_group_names_are_unique_in_nfc() {
    let (_srv, t) = setup().await;
    let (nfc, nfd) = ("caf\u{e9}", "cafe\u{301}");
    let r = t.post("/Users", json!({"userName": nfd})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["userName"], nfc, "stored and returned in NFC");
    let id = r.body["id"].as_str().unwrap().to_string();
    t.post("/Users", json!({"userName": nfc}))
        .await
        .assert_error(409, Some("uniqueness"));
    for name in [nfc, nfd, "CAFE\u{301}"] {
        let f: String = form_urlencoded::byte_serialize(format!("userName eq \"{name}\"").as_bytes()).collect();
        let found = t.get(&format!("/Users?filter={f}")).await;
        assert_eq!(found.body["totalResults"], 1, "{name:?}: {}", found.text);
    }
    let other = t.create_user("other").await;
    t.patch(
        &format!("/Users/{other}"),
        patch_op(json!([{"op": "replace", "path": "userName", "value": nfd}])),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    t.put(&format!("/Users/{other}"), json!({"userName": nfd}))
        .await
        .assert_error(409, Some("uniqueness"));
    // Groups' displayName alike.
    let g = t.post("/Groups", json!({"displayName": format!("{nfc} team")})).await;
    assert_eq!(g.status, 201);
    t.post("/Groups", json!({"displayName": format!("{nfd} team")}))
        .await
        .assert_error(409, Some("uniqueness"));
    let g2 = t.create_group("second", &[]).await;
    t.patch(
        &format!("/Groups/{g2}"),
        patch_op(json!([{"op": "replace", "value": {"displayName": format!("{nfd} TEAM")}}])),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    assert_eq!(t.get(&format!("/Users/{id}")).await.body["userName"], nfc);
}

const VAULT: &str = "urn:ietf:params:scim:schemas:extension:vault:2.0:User";

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The job routes need the engine's `JobFiles`, which only the binary
/// registers: a server without them says so (501) to an admin token, and
/// still refuses other tokens first.
#[tokio::test]
async fn job_routes_answer_501_without_the_engine() {
    let srv = TestServer::start().await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    let scim = srv.tenant("acme").await;
    let base = format!("{}/admin/v1/tenants/acme/jobs", srv.public_url);
    for (method, path) in [
        (Method::GET, base.clone()),
        (Method::POST, base.clone()),
        (Method::GET, format!("{base}/hr")),
        (Method::PUT, format!("{base}/hr")),
        (Method::DELETE, format!("{base}/hr")),
        (Method::POST, format!("{base}/hr/start")),
    ] {
        let r = admin.send(method.clone(), &path, None).await;
        r.assert_error(501, None);
        assert!(r.text.contains("provisioning engine"), "{method} {path}: {}", r.text);
        scim.send(method.clone(), &path, None).await.assert_error(403, None);
    }
}

/// A tenant whose users have a write-only `pin` and `keys` with a
/// never-returned `secret`.
async fn with_vault(srv: &TestServer) -> Tenant {
    let t = srv.tenant("acme").await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    let ext = json!({"resourceType": "User", "schema": {"id": VAULT, "name": "Vault", "attributes": [
        {"name": "pin", "type": "string", "multiValued": false, "mutability": "writeOnly", "returned": "never"},
        {"name": "keys", "type": "complex", "multiValued": true, "subAttributes": [
            {"name": "label", "type": "string", "multiValued": false},
            {"name": "secret", "type": "string", "multiValued": false, "returned": "never"}]}
    ]}});
    let url = format!("{}/admin/v1/tenants/acme/schemas", srv.public_url);
    let r = admin.send(Method::POST, &url, Some(ext)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    t
}

/// What the store holds as a user's `password`.
async fn stored_password(srv: &TestServer, t: &Tenant, id: &str) -> Option<String> {
    let rec = srv
        .store
        .get(t.id, scimitar_store::Kind::User, id)
        .await
        .unwrap()
        .unwrap();
    rec.doc.get("password").map(|v| v.as_str().unwrap().to_string())
}

#[tokio::test]
async fn passwords_are_hashed_on_every_write_and_never_returned() {
    let srv = TestServer::start().await;
    let t = with_vault(&srv).await;
    let secrets = ["Secr3t!", "argon2", "1234", "s3cr3t-key"];
    let leaks = |text: &str| -> Vec<&str> { secrets.iter().copied().filter(|s| text.contains(s)).collect() };
    let r = t
        .post(
            "/Users",
            json!({"userName": "alice", "password": "Secr3t!",
                   VAULT: {"pin": "1234", "keys": [{"label": "a", "secret": "s3cr3t-key"}]}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(leaks(&r.text).is_empty(), "{}", r.text);
    assert_eq!(r.body[VAULT]["keys"], json!([{"label": "a"}]));
    let id = r.body["id"].as_str().unwrap().to_string();
    let stored = stored_password(&srv, &t, &id).await.unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(scimitar_auth::password::verify("Secr3t!", &stored));
    // Never returned, whatever is asked for.
    for path in [
        format!("/Users/{id}"),
        format!("/Users/{id}?attributes=password,{VAULT}:pin,{VAULT}:keys.secret"),
        format!("/Users?filter={}", enc("userName eq \"alice\"")),
        "/Users?attributes=password".to_string(),
    ] {
        let r = t.get(&path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert!(leaks(&r.text).is_empty(), "{path}: {}", r.text);
        assert!(!r.text.contains("password"), "{path}: {}", r.text);
    }
    // The activity entry redacts every secret.
    let log = srv
        .store
        .list_activity(
            t.id,
            scimitar_store::ActivityQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let text = serde_json::to_string(&log).unwrap();
    assert!(leaks(&text).is_empty() && text.contains("[redacted]"), "{text}");

    // A PHC string is stored as given; integers and booleans are hashed
    // like the text they stand for.
    let given = scimitar_auth::password::hash("given").unwrap();
    for (name, password, check) in [
        ("phc", json!(given), "given"),
        ("number", json!(12345), "12345"),
        ("bool", json!(true), "true"),
    ] {
        let r = t.post("/Users", json!({"userName": name, "password": password})).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let stored = stored_password(&srv, &t, r.body["id"].as_str().unwrap()).await.unwrap();
        assert!(scimitar_auth::password::verify(check, &stored), "{name}: {stored}");
        if name == "phc" {
            assert_eq!(stored, given);
        }
    }

    // PUT: a new password is hashed; a PUT without one keeps the hash.
    let path = format!("/Users/{id}");
    let r = t.put(&path, json!({"userName": "alice", "password": "put-pw"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!r.text.contains("password"));
    let after_put = stored_password(&srv, &t, &id).await.unwrap();
    assert!(scimitar_auth::password::verify("put-pw", &after_put));
    t.put(&path, json!({"userName": "alice", "title": "x"})).await;
    assert_eq!(stored_password(&srv, &t, &id).await.unwrap(), after_put);

    // PATCH, in every form a password can take.
    let patches = [
        (json!([{"op": "replace", "path": "password", "value": "p1"}]), "p1"),
        (json!([{"op": "replace", "path": "PASSWORD", "value": "p2"}]), "p2"),
        (json!([{"op": "replace", "value": {"password": "p3"}}]), "p3"),
        (json!([{"op": "Add", "value": {"Password": "p4", "title": "y"}}]), "p4"),
        (
            json!([{"op": "add", "value": {"urn:ietf:params:scim:schemas:core:2.0:User:password": "p5"}}]),
            "p5",
        ),
        (
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:password", "value": ["p6"]}]),
            "p6",
        ),
        (json!([{"op": "replace", "path": "password", "value": 777}]), "777"),
    ];
    for (ops, clear) in patches {
        let r = t.patch(&path, patch_op(ops.clone())).await;
        assert_eq!(r.status, 200, "{ops}: {}", r.text);
        // The clear value may not appear anywhere but in the generated id
        // and the URL made of it (an id once held "777").
        let mut shown = r.body.clone();
        if let Some(o) = shown.as_object_mut() {
            o.remove("id");
            o.remove("meta");
        }
        assert!(
            !r.text.contains("password") && !shown.to_string().contains(clear),
            "{ops}: {}",
            r.text
        );
        let stored = stored_password(&srv, &t, &id).await.unwrap();
        assert!(scimitar_auth::password::verify(clear, &stored), "{ops}: {stored}");
    }
    // Bulk goes through the same writes.
    let bulk = t
        .post(
            "/Bulk",
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "bulk", "password": "bulk-pw"}}]}),
        )
        .await;
    let loc = bulk.body["Operations"][0]["location"].as_str().unwrap();
    let bulk_id = loc.rsplit('/').next().unwrap();
    let stored = stored_password(&srv, &t, bulk_id).await.unwrap();
    assert!(scimitar_auth::password::verify("bulk-pw", &stored), "{stored}");
}

#[tokio::test]
async fn never_returned_attributes_cannot_be_filtered_sorted_or_probed() {
    let srv = TestServer::start().await;
    let t = with_vault(&srv).await;
    let r = t
        .post(
            "/Users",
            json!({"userName": "alice", "password": "Secr3t!",
                   VAULT: {"pin": "1234", "keys": [{"label": "a", "secret": "s3"}]}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    // A filter would answer, guess by guess, whether a prefix is right.
    for f in [
        "userName eq \"alice\" and password sw \"S\"".to_string(),
        "password pr".to_string(),
        "PASSWORD eq \"Secr3t!\"".to_string(),
        "urn:ietf:params:scim:schemas:core:2.0:User:password co \"e\"".to_string(),
        "not (password pr)".to_string(),
        format!("{VAULT}:pin eq \"1234\""),
        format!("{VAULT}:keys.secret sw \"s\""),
        format!("{VAULT}:keys[secret eq \"s3\"]"),
        format!("{VAULT}:keys[label eq \"a\" and secret pr]"),
    ] {
        t.get(&format!("/Users?filter={}", enc(&f)))
            .await
            .assert_error(400, Some("invalidFilter"));
        t.post("/Users/.search", json!({"filter": f}))
            .await
            .assert_error(400, Some("invalidFilter"));
        t.get(&format!("/?filter={}", enc(&f)))
            .await
            .assert_error(400, Some("invalidFilter"));
    }
    // Sorting too (sortBy errors are invalidValue, as for every sortBy).
    for by in ["password", &format!("{VAULT}:pin"), &format!("{VAULT}:keys.secret")] {
        t.get(&format!("/Users?sortBy={}", enc(by)))
            .await
            .assert_error(400, Some("invalidValue"));
    }
    // A PATCH value filter would answer by its success or noTarget.
    for path in [
        format!("{VAULT}:keys[secret eq \"s3\"].label"),
        format!("{VAULT}:keys[secret sw \"x\"]"),
    ] {
        let r = t
            .patch(
                &format!("/Users/{id}"),
                patch_op(json!([{"op": "replace", "path": path, "value": "b"}])),
            )
            .await;
        r.assert_error(400, Some("invalidFilter"));
    }
    // Writing them stays possible.
    let r = t
        .patch(
            &format!("/Users/{id}"),
            patch_op(json!([{"op": "replace", "path": format!("{VAULT}:pin"), "value": "9999"}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!r.text.contains("9999"));
}

const IDS: &str = "urn:ietf:params:scim:schemas:extension:ids:2.0:User";

async fn register(srv: &TestServer, tenant: &str, schema: Value) {
    let admin = srv.tenant_with_scope(tenant, "admin").await;
    let url = format!("{}/admin/v1/tenants/{tenant}/schemas", srv.public_url);
    let r = admin
        .send(
            Method::POST,
            &url,
            Some(json!({"resourceType": "User", "schema": schema})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

fn ids_schema(unique: bool) -> Value {
    let u = if unique { "server" } else { "none" };
    json!({"id": IDS, "name": "Ids", "attributes": [
        {"name": "badge", "type": "string", "multiValued": false, "mutability": "readOnly"},
        {"name": "code", "type": "string", "multiValued": false, "uniqueness": u},
        {"name": "tags", "type": "string", "multiValued": true, "uniqueness": u},
        {"name": "note", "type": "string", "multiValued": false}
    ]})
}

#[tokio::test]
async fn read_only_extension_attributes_cannot_be_written() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    register(&srv, "acme", ids_schema(false)).await;
    let stored = |id: String| {
        let store = srv.store.clone();
        let tid = t.id;
        async move {
            let rec = store.get(tid, scimitar_store::Kind::User, &id).await.unwrap().unwrap();
            rec.doc.get(IDS).cloned().unwrap_or(Value::Null)
        }
    };
    // POST: ignored, as core read-only attributes are (RFC 7644 §3.3).
    let r = t
        .post("/Users", json!({"userName": "a", IDS: {"badge": "B1", "note": "n"}}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body[IDS], json!({"note": "n"}));
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(stored(id.clone()).await, json!({"note": "n"}));
    let path = format!("/Users/{id}");
    // PUT (§3.5.1: ignored).
    let r = t
        .put(&path, json!({"userName": "a", IDS: {"badge": "B2", "note": "m"}}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(stored(id.clone()).await, json!({"note": "m"}));
    // Path-less PATCH, in both spellings, and a PATCH of the extension
    // object: ignored.
    for ops in [
        json!([{"op": "replace", "value": {IDS: {"badge": "B3"}}}]),
        json!([{"op": "replace", "value": {format!("{IDS}:badge"): "B4"}}]),
        json!([{"op": "add", "path": IDS, "value": {"badge": "B5", "note": "o"}}]),
    ] {
        let r = t.patch(&path, patch_op(ops.clone())).await;
        assert!(r.status == 200 || r.status == 204, "{ops}: {}", r.text);
        assert!(stored(id.clone()).await.get("badge").is_none(), "{ops}");
    }
    assert_eq!(stored(id.clone()).await, json!({"note": "o"}));
    // A PATCH naming it is refused (§3.5.2).
    t.patch(
        &path,
        patch_op(json!([{"op": "replace", "path": format!("{IDS}:badge"), "value": "B6"}])),
    )
    .await
    .assert_error(400, Some("mutability"));
}

#[tokio::test]
async fn unique_extension_attributes_are_unique_per_tenant() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    register(&srv, "acme", ids_schema(true)).await;
    let other = srv.tenant("other").await;
    register(&srv, "other", ids_schema(true)).await;
    let r = t
        .post(
            "/Users",
            json!({"userName": "a", IDS: {"code": "C-1", "tags": ["x", "y"]}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let a = r.body["id"].as_str().unwrap().to_string();
    // Compared like the attribute: case-insensitively here.
    for body in [
        json!({"userName": "b", IDS: {"code": "c-1"}}),
        json!({"userName": "b", IDS: {"tags": ["Y"]}}),
    ] {
        t.post("/Users", body).await.assert_error(409, Some("uniqueness"));
    }
    assert_eq!(t.get("/Users?count=0").await.body["totalResults"], 1, "nothing created");
    // Another tenant has its own values.
    let r = other
        .post("/Users", json!({"userName": "a", IDS: {"code": "C-1"}}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // PUT and PATCH alike.
    let b = t
        .post("/Users", json!({"userName": "b", IDS: {"code": "C-2", "tags": ["z"]}}))
        .await;
    assert_eq!(b.status, 201, "{}", b.text);
    let bpath = format!("/Users/{}", b.body["id"].as_str().unwrap());
    t.put(&bpath, json!({"userName": "b", IDS: {"code": "C-1"}}))
        .await
        .assert_error(409, Some("uniqueness"));
    t.patch(
        &bpath,
        patch_op(json!([{"op": "replace", "path": format!("{IDS}:code"), "value": "C-1"}])),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    t.patch(
        &bpath,
        patch_op(json!([{"op": "add", "path": format!("{IDS}:tags"), "value": ["x"]}])),
    )
    .await
    .assert_error(409, Some("uniqueness"));
    // Other attributes of b can still change; a's values, once given up,
    // are free.
    let r = t
        .patch(
            &bpath,
            patch_op(json!([{"op": "replace", "path": format!("{IDS}:note"), "value": "ok"}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = t
        .patch(
            &format!("/Users/{a}"),
            patch_op(json!([{"op": "replace", "path": format!("{IDS}:code"), "value": "C-9"}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = t
        .patch(
            &bpath,
            patch_op(json!([{"op": "replace", "path": format!("{IDS}:code"), "value": "C-1"}])),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // A deleted user's values are free.
    assert_eq!(t.delete(&format!("/Users/{a}")).await.status, 204);
    let r = t
        .post("/Users", json!({"userName": "c", IDS: {"code": "C-9", "tags": ["x"]}}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Concurrent creates of one value: one wins.
    let mut tasks = Vec::new();
    for i in 0..6 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            t.post("/Users", json!({"userName": format!("race{i}"), IDS: {"code": "RACE"}}))
                .await
                .status
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409]);
}

#[tokio::test]
async fn making_an_attribute_unique_keeps_existing_duplicates_and_refuses_new_ones() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    register(&srv, "acme", ids_schema(false)).await;
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        let r = t.post("/Users", json!({"userName": name, IDS: {"code": "SAME"}})).await;
        assert_eq!(r.status, 201, "{}", r.text);
        ids.push(r.body["id"].as_str().unwrap().to_string());
    }
    // The registration succeeds and indexes what is stored.
    register(&srv, "acme", ids_schema(true)).await;
    t.post("/Users", json!({"userName": "c", IDS: {"code": "same"}}))
        .await
        .assert_error(409, Some("uniqueness"));
    // Both holders can still be written.
    for id in &ids {
        let r = t
            .patch(
                &format!("/Users/{id}"),
                patch_op(json!([{"op": "replace", "path": format!("{IDS}:note"), "value": "still"}])),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    // Once unique no more, the value is free.
    register(&srv, "acme", ids_schema(false)).await;
    let r = t.post("/Users", json!({"userName": "c", IDS: {"code": "same"}})).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// Tenant names are stored lower case; a path that spells one in another
/// case (`/scim/Contoso/v2`, `/admin/v1/tenants/CONTOSO/…`) reaches the
/// same tenant with its token instead of answering 401.
#[tokio::test]
async fn tenant_names_in_paths_match_case_insensitively() {
    let srv = TestServer::start().await;
    let t = srv.tenant("contoso").await;
    let admin = srv.tenant_with_scope("contoso", "admin").await;
    for spelling in ["Contoso", "CONTOSO", "contoso"] {
        let url = format!("{}/scim/{spelling}/v2/Users", srv.public_url);
        let r = t.get(&url).await;
        assert_eq!(r.status, 200, "{spelling}: {}", r.text);
        let url = format!("{}/admin/v1/tenants/{spelling}/activity", srv.public_url);
        let r = admin.get(&url).await;
        assert_eq!(r.status, 200, "{spelling}: {}", r.text);
    }
    // Another tenant's token still gets the same 401 as before.
    let other = srv.tenant("fabrikam").await;
    let r = other.get(&format!("{}/scim/Contoso/v2/Users", srv.public_url)).await;
    r.assert_error(401, None);
}
