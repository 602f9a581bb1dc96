//! Replays what Okta's SCIM 2.0 client sends (Okta's "Okta and SCIM Version
//! 2.0" reference): the connector test, user match by `userName eq` (with
//! `%20`-encoded spaces, `startIndex=1&count=100`), create by POST, profile
//! updates by PUT of the full user, deactivate/reactivate by path-less
//! PATCH `active` (and by PUT `active:false`), password sync, import, and
//! Group Push (POST, match, rename by path-less replace carrying `id`,
//! members add/remove by PATCH, full PUT, delete). After each step the
//! resource is read back and compared exactly; a second identical cycle
//! must change nothing.

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod replay;

use replay::*;
use reqwest::Method;
use scimitar_testkit::{Tenant, TestServer, patch_op};
use serde_json::{Value, json};

/// An Okta app user profile (the default SCIM 2.0 mappings).
#[derive(Debug, Clone)]
struct OktaUser {
    login: String,
    first: String,
    last: String,
    email: String,
    locale: Option<String>,
    okta_id: String,
    active: bool,
}

impl OktaUser {
    fn new(first: &str, last: &str, okta_id: &str) -> Self {
        let login = format!("{}.{}@okta.local", first.to_lowercase(), last.to_lowercase());
        OktaUser {
            email: login.clone(),
            login,
            first: first.into(),
            last: last.into(),
            locale: Some("en-US".into()),
            okta_id: okta_id.into(),
            active: true,
        }
    }

    /// The user as Okta sends it; the PUT form carries `id` and `meta`.
    fn body(&self, id: Option<&str>, password: bool) -> Value {
        let mut b = json!({
            "schemas": [CORE_USER],
            "userName": self.login,
            "name": {"givenName": self.first, "familyName": self.last},
            "emails": [{"primary": true, "value": self.email, "type": "work"}],
            "displayName": format!("{} {}", self.first, self.last),
            "externalId": self.okta_id,
            "groups": [],
            "active": self.active
        });
        if let Some(l) = &self.locale {
            put(&mut b, "/locale", Some(json!(l)));
        }
        if password {
            put(&mut b, "/password", Some(json!("1mz050nq")));
        }
        if let Some(id) = id {
            put(&mut b, "/id", Some(json!(id)));
            put(
                &mut b,
                "/meta",
                Some(
                    json!({"resourceType": "User", "created": "2024-01-01T00:00:00.000Z", "lastModified": "2024-01-01T00:00:00.000Z"}),
                ),
            );
        }
        b
    }

    /// What the server must hold: the body without `groups` (derived),
    /// `password` (never returned), `id` and `meta`.
    fn expected(&self) -> Value {
        let mut b = self.body(None, false);
        put(&mut b, "/groups", None);
        b
    }
}

fn by_user_name(login: &str) -> String {
    format!(
        "/Users?filter={}&startIndex=1&count=100",
        pct(&format!("userName eq \"{login}\""))
    )
}

/// Okta's "Test Connector Configuration" and import requests.
async fn connector_test(ck: &mut Ck, t: &Tenant) {
    for path in [
        "/Users?startIndex=1&count=2",
        "/Groups?startIndex=1&count=100",
        "/Users?startIndex=1&count=100",
    ] {
        let r = step(
            ck,
            t,
            &format!("okta connector test {path}"),
            Method::GET,
            path,
            None,
            200,
        )
        .await;
        ck.eq(&format!("okta {path}: schemas"), &r.body["schemas"], &json!([LIST]));
        ck.ok(
            &format!("okta {path}: paging fields"),
            r.body["totalResults"].is_number()
                && r.body["startIndex"] == json!(1)
                && r.body["itemsPerPage"].is_number(),
            || r.text.clone(),
        );
        ck.ok(
            &format!("okta {path}: Resources"),
            r.body["Resources"].is_array(),
            || r.text.clone(),
        );
    }
    let r = step(
        ck,
        t,
        "okta probe unknown userName",
        Method::GET,
        &by_user_name("nobody@okta.local"),
        None,
        200,
    )
    .await;
    expect_list(ck, "okta probe unknown userName", &r, &[]);
    let mut bad = t.clone();
    bad.token = "scimitar_not_a_token".into();
    let r = bad.get("/Users?startIndex=1&count=2").await;
    ck.status("okta connector test with a wrong token", &r, 401);
}

struct Linked {
    src: OktaUser,
    id: String,
}

/// Match by userName (no hit), then POST.
async fn push_user(ck: &mut Ck, t: &Tenant, src: &OktaUser) -> Linked {
    let tag = format!("okta create {}", src.login);
    let r = step(
        ck,
        t,
        &format!("{tag}: match"),
        Method::GET,
        &by_user_name(&src.login),
        None,
        200,
    )
    .await;
    expect_list(ck, &format!("{tag}: match"), &r, &[]);
    let r = step(
        ck,
        t,
        &format!("{tag}: POST"),
        Method::POST,
        "/Users",
        Some(src.body(None, true)),
        201,
    )
    .await;
    let id = r.body["id"].as_str().unwrap_or_default().to_string();
    ck.eq(&format!("{tag}: 201 body"), &strip(&r.body), &src.expected());
    ck.ok(
        &format!("{tag}: no password in response"),
        r.body.get("password").is_none(),
        || r.text.clone(),
    );
    expect_read(ck, t, &tag, &format!("/Users/{id}"), &src.expected()).await;
    // Okta stores the id and reads the user back by id and by userName.
    let r = step(
        ck,
        t,
        &format!("{tag}: match again"),
        Method::GET,
        &by_user_name(&src.login.to_uppercase()),
        None,
        200,
    )
    .await;
    expect_list(ck, &format!("{tag}: match again"), &r, &[&id]);
    Linked { src: src.clone(), id }
}

/// A profile update: PUT of the full user → 200 with the resource; read
/// back; re-sent PUT changes nothing.
async fn put_profile(ck: &mut Ck, t: &Tenant, u: &Linked, label: &str) {
    let path = format!("/Users/{}", u.id);
    let body = u.src.body(Some(&u.id), false);
    let r = step(
        ck,
        t,
        &format!("okta {label}: PUT"),
        Method::PUT,
        &path,
        Some(body.clone()),
        200,
    )
    .await;
    ck.eq(
        &format!("okta {label}: PUT response"),
        &strip(&r.body),
        &u.src.expected(),
    );
    expect_read(ck, t, &format!("okta {label}"), &path, &u.src.expected()).await;
    let before = t.get(&path).await;
    step(
        ck,
        t,
        &format!("okta {label}: PUT re-sent"),
        Method::PUT,
        &path,
        Some(body),
        200,
    )
    .await;
    let after = t.get(&path).await;
    ck.eq(
        &format!("okta {label}: PUT re-sent keeps version"),
        &after.body["meta"]["version"],
        &before.body["meta"]["version"],
    );
    ck.ok(
        &format!("okta {label}: PUT re-sent keeps ETag"),
        before.header("etag") == after.header("etag"),
        || format!("{:?} -> {:?}", before.header("etag"), after.header("etag")),
    );
}

/// Deactivate/reactivate by path-less PATCH (Okta's form).
async fn set_active(ck: &mut Ck, t: &Tenant, u: &mut Linked, active: bool) {
    let path = format!("/Users/{}", u.id);
    u.src.active = active;
    let body = patch_op(json!([{"op": "replace", "value": {"active": active}}]));
    let label = if active { "okta reactivate" } else { "okta deactivate" };
    let r = step(ck, t, label, Method::PATCH, &path, Some(body.clone()), 200).await;
    ck.eq(&format!("{label}: response"), &strip(&r.body), &u.src.expected());
    expect_read(ck, t, label, &path, &u.src.expected()).await;
    let r = step(
        ck,
        t,
        &format!("{label}: by userName"),
        Method::GET,
        &by_user_name(&u.src.login),
        None,
        200,
    )
    .await;
    expect_list(ck, &format!("{label}: by userName"), &r, &[&u.id]);
    ck.eq(
        &format!("{label}: active in list"),
        &r.body["Resources"][0]["active"],
        &json!(active),
    );
    assert_noop_patch(ck, t, label, &path, body, 200).await;
}

#[tokio::test]
async fn okta_user_lifecycle() {
    let srv = TestServer::start().await;
    let t = srv.tenant("okta-users").await;
    let mut ck = Ck::new();
    connector_test(&mut ck, &t).await;
    let mut u = push_user(&mut ck, &t, &OktaUser::new("Test", "User", "00ujl29u0le5T6Aj10h7")).await;
    let other = push_user(&mut ck, &t, &OktaUser::new("Other", "Person", "00ujl29u0le5T6Aj10h8")).await;
    let path = format!("/Users/{}", u.id);

    // Duplicate push → 409 uniqueness.
    let r = step(
        &mut ck,
        &t,
        "okta duplicate POST",
        Method::POST,
        "/Users",
        Some(u.src.body(None, true)),
        409,
    )
    .await;
    ck.eq(
        "okta duplicate POST: scimType",
        &r.body["scimType"],
        &json!("uniqueness"),
    );

    // Profile updates by PUT.
    u.src.first = "Another".into();
    put_profile(&mut ck, &t, &u, "profile update (givenName, displayName)").await;
    u.src.login = "another.user@okta.local".into();
    u.src.email = "another.user@okta.local".into();
    put_profile(&mut ck, &t, &u, "userName and email change").await;
    u.src.locale = None;
    put_profile(&mut ck, &t, &u, "attribute unmapped (locale dropped by PUT)").await;
    // The password is write-only: kept by a PUT without it, never returned.
    let r = t.get(&path).await;
    ck.ok("okta password never returned", r.body.get("password").is_none(), || {
        r.text.clone()
    });
    // PUT renaming to another user's userName → 409.
    let mut clash = u.src.clone();
    clash.login = other.src.login.to_uppercase();
    let r = step(
        &mut ck,
        &t,
        "okta PUT to a taken userName",
        Method::PUT,
        &path,
        Some(clash.body(Some(&u.id), false)),
        409,
    )
    .await;
    ck.eq(
        "okta PUT to a taken userName: scimType",
        &r.body["scimType"],
        &json!("uniqueness"),
    );
    expect_read(&mut ck, &t, "okta after failed PUT", &path, &u.src.expected()).await;

    // Password sync (path-less replace).
    let r = step(
        &mut ck,
        &t,
        "okta password sync",
        Method::PATCH,
        &path,
        Some(patch_op(
            json!([{"op": "replace", "value": {"password": "t1meMa$heen"}}]),
        )),
        200,
    )
    .await;
    ck.ok(
        "okta password sync: not echoed",
        r.body.get("password").is_none(),
        || r.text.clone(),
    );
    expect_read(&mut ck, &t, "okta password sync", &path, &u.src.expected()).await;

    // Deactivate / reactivate by PATCH, and by PUT (integrations without PATCH).
    set_active(&mut ck, &t, &mut u, false).await;
    set_active(&mut ck, &t, &mut u, true).await;
    u.src.active = false;
    put_profile(&mut ck, &t, &u, "deactivate by PUT active:false").await;
    u.src.active = true;
    put_profile(&mut ck, &t, &u, "reactivate by PUT active:true").await;

    // Profile PATCH with paths (OIN integrations with "Support PATCH for User").
    u.src.last = "Userson".into();
    let body = patch_op(json!([
        {"op": "replace", "path": "name.familyName", "value": "Userson"},
        {"op": "replace", "path": "displayName", "value": "Another Userson"}
    ]));
    let r = step(
        &mut ck,
        &t,
        "okta profile PATCH",
        Method::PATCH,
        &path,
        Some(body.clone()),
        200,
    )
    .await;
    ck.eq("okta profile PATCH: response", &strip(&r.body), &u.src.expected());
    expect_read(&mut ck, &t, "okta profile PATCH", &path, &u.src.expected()).await;
    assert_noop_patch(&mut ck, &t, "okta profile PATCH", &path, body, 200).await;

    // Import: paging through all users.
    let r = step(
        &mut ck,
        &t,
        "okta import page 1",
        Method::GET,
        "/Users?startIndex=1&count=1",
        None,
        200,
    )
    .await;
    ck.eq("okta import page 1: totalResults", &r.body["totalResults"], &json!(2));
    ck.eq("okta import page 1: itemsPerPage", &r.body["itemsPerPage"], &json!(1));
    let r2 = step(
        &mut ck,
        &t,
        "okta import page 2",
        Method::GET,
        "/Users?startIndex=2&count=1",
        None,
        200,
    )
    .await;
    ck.eq("okta import page 2: startIndex", &r2.body["startIndex"], &json!(2));
    let mut ids: Vec<Value> = [&r, &r2].iter().map(|x| x.body["Resources"][0]["id"].clone()).collect();
    ids.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    let mut want = vec![json!(u.id), json!(other.id)];
    want.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    ck.eq(
        "okta import: both users, once each",
        &Value::Array(ids),
        &Value::Array(want),
    );

    // A second identical cycle: the same PUT changes nothing.
    put_profile(&mut ck, &t, &u, "second cycle").await;
    let admin = srv.tenant_with_scope(&t.name, "admin").await;
    check_activity(&mut ck, &admin, &srv.public_url).await;
    ck.finish("okta users");
}

fn member(t: &Tenant, id: &str, display: &str) -> Value {
    json!({"value": id, "$ref": format!("{}/Users/{id}", t.base), "type": "User", "display": display})
}

#[tokio::test]
async fn okta_group_push() {
    let srv = TestServer::start().await;
    let t = srv.tenant("okta-groups").await;
    let mut ck = Ck::new();
    let a = push_user(&mut ck, &t, &OktaUser::new("Test", "User", "00u1")).await;
    let b = push_user(&mut ck, &t, &OktaUser::new("Second", "User", "00u2")).await;
    let c = push_user(&mut ck, &t, &OktaUser::new("Third", "User", "00u3")).await;
    let (ma, mb, mc) = (
        member(&t, &a.id, &a.src.login),
        member(&t, &b.id, &b.src.login),
        member(&t, &c.id, &c.src.login),
    );
    let sorted = |mut v: Vec<Value>| {
        v.sort_by(|x, y| x["value"].as_str().cmp(&y["value"].as_str()));
        Value::Array(v)
    };

    let by_name = |n: &str| {
        format!(
            "/Groups?filter={}&startIndex=1&count=100",
            pct(&format!("displayName eq \"{n}\""))
        )
    };
    let r = step(
        &mut ck,
        &t,
        "okta group match (none)",
        Method::GET,
        &by_name("Test SCIMv2"),
        None,
        200,
    )
    .await;
    expect_list(&mut ck, "okta group match (none)", &r, &[]);
    let r = step(
        &mut ck,
        &t,
        "okta group POST",
        Method::POST,
        "/Groups",
        Some(json!({"schemas": [CORE_GROUP], "displayName": "Test SCIMv2", "members": []})),
        201,
    )
    .await;
    let gid = r.body["id"].as_str().unwrap_or_default().to_string();
    let gpath = format!("/Groups/{gid}");
    let mut expected = json!({"schemas": [CORE_GROUP], "displayName": "Test SCIMv2", "members": []});
    ck.eq("okta group POST: 201 body", &strip(&r.body), &expected);
    expect_read(&mut ck, &t, "okta group created", &gpath, &expected).await;
    let r = step(
        &mut ck,
        &t,
        "okta group GET excluding members",
        Method::GET,
        &format!("{gpath}?excludedAttributes=members"),
        None,
        200,
    )
    .await;
    ck.ok(
        "okta group GET excluding members: absent",
        r.body.get("members").is_none(),
        || r.text.clone(),
    );
    let r = step(
        &mut ck,
        &t,
        "okta group match (case)",
        Method::GET,
        &by_name("test scimv2"),
        None,
        200,
    )
    .await;
    expect_list(&mut ck, "okta group match (case)", &r, &[&gid]);

    // Table: PATCH → 204 → exact members / displayName read back.
    let add = |ms: &[&Linked]| json!({"op": "add", "path": "members", "value": ms.iter().map(|m| json!({"value": m.id, "display": m.src.login})).collect::<Vec<_>>()});
    let rm = |m: &Linked| json!({"op": "remove", "path": format!("members[value eq \"{}\"]", m.id)});
    let steps: Vec<(&str, Value, Option<Value>, Option<&str>)> = vec![
        (
            "push members",
            json!([add(&[&a, &b])]),
            Some(sorted(vec![ma.clone(), mb.clone()])),
            None,
        ),
        (
            "push more members (overlap)",
            json!([add(&[&b, &c])]),
            Some(sorted(vec![ma.clone(), mb.clone(), mc.clone()])),
            None,
        ),
        (
            "remove a member",
            json!([rm(&a)]),
            Some(sorted(vec![mb.clone(), mc.clone()])),
            None,
        ),
        (
            "remove + add in one PATCH",
            json!([rm(&b), add(&[&a])]),
            Some(sorted(vec![ma.clone(), mc.clone()])),
            None,
        ),
        (
            "rename (path-less replace with id)",
            json!([{"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2 Renamed"}}]),
            None,
            Some("Test SCIMv2 Renamed"),
        ),
        (
            "rename back (path-less replace with id)",
            json!([{"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2"}}]),
            None,
            Some("Test SCIMv2"),
        ),
    ];
    for (label, ops, members, name) in steps {
        if let Some(m) = members {
            put(&mut expected, "/members", Some(m));
        }
        if let Some(n) = name {
            put(&mut expected, "/displayName", Some(json!(n)));
        }
        let label = format!("okta group {label}");
        let body = patch_op(ops);
        step(&mut ck, &t, &label, Method::PATCH, &gpath, Some(body.clone()), 204).await;
        expect_read(&mut ck, &t, &label, &gpath, &expected).await;
        assert_noop_patch(&mut ck, &t, &label, &gpath, body, 204).await;
    }
    // The user shows its group.
    let r = t.get(&format!("/Users/{}", a.id)).await;
    ck.eq(
        "okta user groups",
        &r.body["groups"],
        &json!([{"value": gid, "$ref": format!("{}/Groups/{gid}", t.base), "display": "Test SCIMv2", "type": "direct"}]),
    );
    // Full PUT (older Okta integrations push the whole group).
    let put_body = json!({"schemas": [CORE_GROUP], "id": gid, "displayName": "Test SCIMv2", "members": [
        {"value": b.id, "display": b.src.login}, {"value": c.id, "display": c.src.login}
    ]});
    put(&mut expected, "/members", Some(sorted(vec![mb.clone(), mc.clone()])));
    let r = step(
        &mut ck,
        &t,
        "okta group PUT",
        Method::PUT,
        &gpath,
        Some(put_body.clone()),
        200,
    )
    .await;
    ck.eq("okta group PUT: response", &strip(&r.body), &expected);
    expect_read(&mut ck, &t, "okta group PUT", &gpath, &expected).await;
    let before = t.get(&gpath).await;
    step(
        &mut ck,
        &t,
        "okta group PUT re-sent",
        Method::PUT,
        &gpath,
        Some(put_body),
        200,
    )
    .await;
    let after = t.get(&gpath).await;
    ck.eq(
        "okta group PUT re-sent: version unchanged",
        &after.body["meta"]["version"],
        &before.body["meta"]["version"],
    );
    ck.eq("okta group PUT re-sent: representation", &strip(&after.body), &expected);
    // A deactivated user stays a member.
    step(
        &mut ck,
        &t,
        "okta deactivate member",
        Method::PATCH,
        &format!("/Users/{}", b.id),
        Some(patch_op(json!([{"op": "replace", "value": {"active": false}}]))),
        200,
    )
    .await;
    expect_read(&mut ck, &t, "okta group after member deactivation", &gpath, &expected).await;
    // Delete.
    step(&mut ck, &t, "okta group delete", Method::DELETE, &gpath, None, 204).await;
    step(&mut ck, &t, "okta group GET deleted", Method::GET, &gpath, None, 404).await;
    step(
        &mut ck,
        &t,
        "okta group second DELETE",
        Method::DELETE,
        &gpath,
        None,
        404,
    )
    .await;
    let r = step(
        &mut ck,
        &t,
        "okta group match deleted",
        Method::GET,
        &by_name("Test SCIMv2"),
        None,
        200,
    )
    .await;
    expect_list(&mut ck, "okta group match deleted", &r, &[]);
    let r = t.get(&format!("/Users/{}", a.id)).await;
    ck.ok(
        "okta user groups after group delete",
        r.body.get("groups").is_none_or(|g| g == &json!([])),
        || r.text.clone(),
    );
    let admin = srv.tenant_with_scope(&t.name, "admin").await;
    check_activity(&mut ck, &admin, &srv.public_url).await;
    ck.finish("okta groups");
}
