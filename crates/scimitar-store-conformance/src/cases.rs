//! The conformance cases. Each takes a fresh, empty store.

use std::sync::Arc;

use scimitar_protocol::ScimError;
use scimitar_protocol::list::SortOrder::{Ascending, Descending};
use scimitar_protocol::patch::MemberOp;
use scimitar_protocol::resource::MemberRef;
use scimitar_store::{
    ActivityEvent, ActivityQuery, CursorPos, ExtensionRecord, Kind, Mutation, NewResource, NewTokenRecord, Store,
    StoreError,
};
use serde_json::{Value, json};

use super::fixture::*;

fn h(n: u8) -> [u8; 32] {
    [n; 32]
}

fn tok(id: &str, label: &str, hint: &str, scope: &str, hash: u8) -> NewTokenRecord {
    NewTokenRecord {
        id: id.into(),
        label: label.into(),
        hint: hint.into(),
        scope: scope.into(),
        hash: h(hash),
        expires: None,
    }
}

pub async fn tenants(s: Arc<dyn Store>) {
    let b = s.create_tenant("beta").await.unwrap();
    let a = s.create_tenant("alpha").await.unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(a.name, "alpha");
    assert!(!a.created.is_empty());
    assert!(
        matches!(s.create_tenant("alpha").await, Err(StoreError::Conflict(_))),
        "duplicate tenant name"
    );
    let names: Vec<String> = s.list_tenants().await.unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert_eq!(s.tenant("alpha").await.unwrap(), Some(a.clone()));
    assert_eq!(s.tenant("gamma").await.unwrap(), None);
    // Deleting a tenant takes its resources and tokens with it.
    user(&s, a.id, "u1", json!({"userName": "x"}), &ts(1)).await;
    s.create_token(a.id, tok("tok-a", "ci", "scim_AAAA", "scim", 1))
        .await
        .unwrap();
    assert!(s.delete_tenant("alpha").await.unwrap());
    assert!(!s.delete_tenant("alpha").await.unwrap());
    assert_eq!(s.tenant("alpha").await.unwrap(), None);
    assert_eq!(s.token_by_hash(&h(1)).await.unwrap(), None);
    assert_eq!(s.get(a.id, Kind::User, "u1").await.unwrap(), None);
    // The name is free again.
    s.create_tenant("alpha").await.unwrap();
    assert_eq!(s.tenant("beta").await.unwrap(), Some(b));
}

pub async fn tokens(s: Arc<dyn Store>) {
    let a = s.create_tenant("a").await.unwrap();
    let b = s.create_tenant("b").await.unwrap();
    let t1 = s
        .create_token(a.id, tok("t1", "Entra", "scim_AbCd", "scim", 1))
        .await
        .unwrap();
    assert_eq!(
        (t1.id.as_str(), t1.tenant_id, t1.tenant.as_str(), t1.label.as_str()),
        ("t1", a.id, "a", "Entra")
    );
    assert_eq!((t1.hint.as_str(), t1.scope.as_str()), ("scim_AbCd", "scim"));
    assert!(!t1.created.is_empty());
    assert_eq!((t1.last_used.clone(), t1.revoked.clone()), (None, None));
    s.create_token(a.id, tok("t2", "admin", "scim_EfGh", "admin", 2))
        .await
        .unwrap();
    s.create_token(b.id, tok("t3", "other", "scim_IjKl", "scim", 3))
        .await
        .unwrap();
    let listed: Vec<String> = s.list_tokens(a.id).await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(listed, ["t1", "t2"]);
    assert_eq!(s.token_by_hash(&h(1)).await.unwrap(), Some(t1.clone()));
    assert_eq!(
        s.token_by_hash(&h(2)).await.unwrap().map(|t| t.scope),
        Some("admin".into())
    );
    assert_eq!(s.token_by_hash(&h(9)).await.unwrap(), None);
    s.touch_token(a.id, "t1", "2024-05-01T10:00:00.000Z").await.unwrap();
    let touched = s.token_by_hash(&h(1)).await.unwrap().unwrap();
    assert_eq!(touched.last_used.as_deref(), Some("2024-05-01T10:00:00.000Z"));
    assert!(
        !s.revoke_token(b.id, "t1").await.unwrap(),
        "a token is revoked only within its tenant"
    );
    s.touch_token(b.id, "t1", "2025-01-01T00:00:00.000Z").await.unwrap();
    assert_eq!(
        s.token_by_hash(&h(1)).await.unwrap().unwrap().last_used.as_deref(),
        Some("2024-05-01T10:00:00.000Z"),
        "touching another tenant's token is a no-op"
    );
    assert!(
        !s.set_token_expiry(b.id, "t1", Some("2000-01-01T00:00:00.000Z"))
            .await
            .unwrap(),
        "another tenant's token keeps its expiry"
    );
    assert!(
        s.token_by_hash(&h(1))
            .await
            .unwrap()
            .is_some_and(|t| t.expires.is_none())
    );
    assert_eq!(s.find_token("t1").await.unwrap().map(|t| t.tenant_id), Some(a.id));
    assert_eq!(s.find_token("nope").await.unwrap(), None);
    assert!(s.revoke_token(a.id, "t1").await.unwrap());
    assert!(!s.revoke_token(a.id, "t1").await.unwrap(), "second revoke is a no-op");
    assert!(!s.revoke_token(a.id, "nope").await.unwrap());
    assert!(
        s.find_token("t1").await.unwrap().is_some_and(|t| t.revoked.is_some()),
        "find_token sees revoked tokens"
    );
    assert_eq!(
        s.token_by_hash(&h(1)).await.unwrap(),
        None,
        "revoked tokens do not authenticate"
    );
    let revoked = s
        .list_tokens(a.id)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.id == "t1")
        .unwrap();
    assert!(revoked.revoked.is_some());
    assert_eq!(
        s.token_by_hash(&h(3)).await.unwrap().map(|t| t.tenant),
        Some("b".into())
    );
}

pub async fn create_get_delete(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    let doc = json!({"userName": "Alice", "name": {"givenName": "Alice"}, "emails": [{"value": "a@x", "primary": true}], ENT: {"department": "R&D"}});
    let rec = user(&s, t, "u1", doc.clone(), &ts(1)).await;
    assert_eq!((rec.id.as_str(), rec.kind, rec.version), ("u1", Kind::User, 1));
    assert_eq!(
        (rec.created.as_str(), rec.last_modified.as_str()),
        (ts(1).as_str(), ts(1).as_str())
    );
    let got = s.get(t, Kind::User, "u1").await.unwrap().unwrap();
    assert_eq!(got, rec, "get returns what create returned");
    assert_eq!(Value::Object(got.doc), doc);
    assert_eq!(
        s.get(t, Kind::Group, "u1").await.unwrap(),
        None,
        "kind is part of the key"
    );
    assert_eq!(s.get(t, Kind::User, "nope").await.unwrap(), None);
    // Unicode and characters that are special in SQL survive the round trip.
    let odd = json!({"userName": "ø'\"%_\\;--名", "displayName": "Ünïcödé ✓"});
    assert_eq!(Value::Object(user(&s, t, "u2", odd.clone(), &ts(2)).await.doc), odd);
    assert_eq!(
        Value::Object(s.get(t, Kind::User, "u2").await.unwrap().unwrap().doc),
        odd
    );
    let g = group(&s, t, "g1", "Admins", &[], &ts(3)).await;
    assert_eq!(g.kind, Kind::Group);
    assert!(
        matches!(s.delete(t, Kind::Group, "u1", None).await, Err(StoreError::NotFound)),
        "delete checks the kind"
    );
    s.delete(t, Kind::User, "u1", None).await.unwrap();
    assert_eq!(s.get(t, Kind::User, "u1").await.unwrap(), None);
    assert!(matches!(
        s.delete(t, Kind::User, "u1", None).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        matches!(
            s.create(
                t,
                NewResource {
                    kind: Kind::Group,
                    id: "u2".into(),
                    doc: obj(json!({"displayName": "x"})),
                    members: vec![],
                    created: ts(4),
                    activity: None
                }
            )
            .await,
            Err(StoreError::Conflict(_))
        ),
        "ids are unique across kinds within a tenant"
    );
}

pub async fn modify_versions(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    user(&s, t, "u1", json!({"userName": "a", "title": "x"}), &ts(1)).await;
    let r = s
        .modify(
            t,
            Kind::User,
            "u1",
            None,
            &ts(2),
            set_doc(json!({"userName": "a", "title": "y"})),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.version, r.created.as_str(), r.last_modified.as_str()),
        (2, ts(1).as_str(), ts(2).as_str())
    );
    assert_eq!(r.doc["title"], "y");
    assert_eq!(s.get(t, Kind::User, "u1").await.unwrap().unwrap(), r);
    // A modification that changes nothing keeps version and timestamp.
    let same = s
        .modify(
            t,
            Kind::User,
            "u1",
            None,
            &ts(3),
            set_doc(json!({"userName": "a", "title": "y"})),
        )
        .await
        .unwrap();
    assert_eq!((same.version, same.last_modified.as_str()), (2, ts(2).as_str()));
    assert_eq!(s.get(t, Kind::User, "u1").await.unwrap().unwrap().version, 2);
    // The ModifyFn sees the current record; its errors come back unchanged.
    let seen = s
        .modify(
            t,
            Kind::User,
            "u1",
            None,
            &ts(4),
            Arc::new(|cur, _| {
                assert_eq!(cur.doc["title"], "y");
                Err(ScimError::invalid_value("nope"))
            }),
        )
        .await;
    assert!(matches!(seen, Err(StoreError::Invalid(e)) if e.detail == "nope"));
    assert_eq!(
        s.get(t, Kind::User, "u1").await.unwrap().unwrap().version,
        2,
        "a failed modify writes nothing"
    );
    assert!(matches!(
        s.modify(t, Kind::User, "zz", None, &ts(4), set_doc(json!({"userName": "q"})))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.modify(t, Kind::Group, "u1", None, &ts(4), set_doc(json!({"displayName": "q"})))
            .await,
        Err(StoreError::NotFound)
    ));
    // Removing an attribute is a change.
    let r = s
        .modify(t, Kind::User, "u1", None, &ts(5), set_doc(json!({"userName": "a"})))
        .await
        .unwrap();
    assert_eq!(r.version, 3);
    assert!(
        !s.get(t, Kind::User, "u1")
            .await
            .unwrap()
            .unwrap()
            .doc
            .contains_key("title")
    );
}

pub async fn if_match(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    user(&s, t, "u1", json!({"userName": "a"}), &ts(1)).await;
    let stale = s
        .modify(t, Kind::User, "u1", Some(7), &ts(2), set_doc(json!({"userName": "b"})))
        .await;
    assert!(matches!(stale, Err(StoreError::PreconditionFailed)));
    let r = s
        .modify(t, Kind::User, "u1", Some(1), &ts(2), set_doc(json!({"userName": "b"})))
        .await
        .unwrap();
    assert_eq!(r.version, 2);
    assert!(matches!(
        s.modify(t, Kind::User, "u1", Some(1), &ts(3), set_doc(json!({"userName": "c"})))
            .await,
        Err(StoreError::PreconditionFailed)
    ));
    assert!(matches!(
        s.delete(t, Kind::User, "u1", Some(1)).await,
        Err(StoreError::PreconditionFailed)
    ));
    assert!(
        s.get(t, Kind::User, "u1").await.unwrap().is_some(),
        "a failed conditional delete deletes nothing"
    );
    s.delete(t, Kind::User, "u1", Some(2)).await.unwrap();
    assert!(
        matches!(s.delete(t, Kind::User, "u1", Some(2)).await, Err(StoreError::NotFound)),
        "missing beats mismatch"
    );
}

pub async fn uniqueness(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    let other = tenant(&s, "other").await;
    user(&s, t, "u1", json!({"userName": "Alice"}), &ts(1)).await;
    let dup = s
        .create(
            t,
            NewResource {
                kind: Kind::User,
                id: "u2".into(),
                doc: obj(json!({"userName": "aLICE"})),
                members: vec![],
                created: ts(2),
                activity: None,
            },
        )
        .await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict(a)) if a == "userName"),
        "{dup:?}"
    );
    let dup = s
        .create(
            t,
            NewResource {
                kind: Kind::User,
                id: "u2".into(),
                doc: obj(json!({"userName": "ÀLICE"})),
                members: vec![],
                created: ts(2),
                activity: None,
            },
        )
        .await;
    assert!(dup.is_ok(), "À is not A: {dup:?}");
    user(&s, t, "u3", json!({"userName": "Émile"}), &ts(2)).await;
    let dup = s
        .create(
            t,
            NewResource {
                kind: Kind::User,
                id: "u4".into(),
                doc: obj(json!({"userName": "émile"})),
                members: vec![],
                created: ts(2),
                activity: None,
            },
        )
        .await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict(a)) if a == "userName"),
        "Unicode case folding: {dup:?}"
    );
    user(&s, other, "u1", json!({"userName": "ALICE"}), &ts(1)).await;
    // Users' displayName is not unique; Groups' is.
    user(&s, t, "u5", json!({"userName": "x1", "displayName": "Same"}), &ts(3)).await;
    user(&s, t, "u6", json!({"userName": "x2", "displayName": "same"}), &ts(3)).await;
    group(&s, t, "g1", "Admins", &[], &ts(3)).await;
    let dup = s
        .create(
            t,
            NewResource {
                kind: Kind::Group,
                id: "g2".into(),
                doc: obj(json!({"displayName": "ADMINS"})),
                members: vec![],
                created: ts(4),
                activity: None,
            },
        )
        .await;
    assert!(
        matches!(&dup, Err(StoreError::Conflict(a)) if a == "displayName"),
        "{dup:?}"
    );
    group(&s, other, "g1", "admins", &[], &ts(3)).await;
    // A group may share a name with a user's userName.
    group(&s, t, "g3", "alice", &[], &ts(3)).await;
    // Renames into a taken name conflict, and leave the record as it was.
    let r = s
        .modify(t, Kind::User, "u5", None, &ts(5), set_doc(json!({"userName": "ALICE"})))
        .await;
    assert!(matches!(&r, Err(StoreError::Conflict(a)) if a == "userName"), "{r:?}");
    assert_eq!(s.get(t, Kind::User, "u5").await.unwrap().unwrap().doc["userName"], "x1");
    let r = s
        .modify(
            t,
            Kind::Group,
            "g3",
            None,
            &ts(5),
            set_doc(json!({"displayName": "admins"})),
        )
        .await;
    assert!(
        matches!(&r, Err(StoreError::Conflict(a)) if a == "displayName"),
        "{r:?}"
    );
    // Changing only the case of one's own name is fine; deletion frees a name.
    s.modify(t, Kind::User, "u1", None, &ts(5), set_doc(json!({"userName": "ALICE"})))
        .await
        .unwrap();
    s.delete(t, Kind::User, "u1", None).await.unwrap();
    user(&s, t, "u7", json!({"userName": "alice"}), &ts(6)).await;
}

pub async fn tenant_isolation(s: Arc<dyn Store>) {
    let a = tenant(&s, "a").await;
    let b = tenant(&s, "b").await;
    populate(&s, a).await;
    group(&s, b, "gb", "B group", &[], &ts(1)).await;
    for (kind, id) in [(Kind::User, "u1"), (Kind::Group, "g1")] {
        assert_eq!(s.get(b, kind, id).await.unwrap(), None);
        assert!(matches!(
            s.modify(
                b,
                kind,
                id,
                None,
                &ts(9),
                set_doc(json!({"userName": "x", "displayName": "x"}))
            )
            .await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(s.delete(b, kind, id, None).await, Err(StoreError::NotFound)));
    }
    for (kind, f) in [
        (Kind::User, None),
        (Kind::User, Some("userName eq \"alice\"")),
        (Kind::User, Some("id pr")),
        (Kind::Group, Some("members pr")),
    ] {
        let page = list(
            &s,
            b,
            kind,
            Q {
                filter: f,
                ..Q::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(page.total, u64::from(kind == Kind::Group && f.is_none()), "{f:?}");
    }
    assert_eq!(list(&s, b, Kind::Group, Q::default()).await.unwrap().total, 1);
    assert!(s.members(b, "g1").await.unwrap().is_empty());
    assert!(s.groups_of(b, "u1").await.unwrap().is_empty());
    assert_eq!(s.display_name(b, "u1").await.unwrap(), None);
    assert_eq!(s.display_name(a, "u1").await.unwrap().as_deref(), Some("Alice Liddell"));
    // Another tenant's user cannot be made a member.
    let r = s
        .modify(
            b,
            Kind::Group,
            "gb",
            None,
            &ts(9),
            with_member_ops(vec![MemberOp::Add(vec![member("u1")])]),
        )
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    // Tenant a still sees all its data.
    assert_eq!(list(&s, a, Kind::User, Q::default()).await.unwrap().total, 6);
    assert_eq!(s.members(a, "g1").await.unwrap().len(), 2);
}

fn member_ids(refs: &[scimitar_protocol::output::Reference]) -> Vec<(String, String, Option<String>)> {
    refs.iter()
        .map(|r| (r.value.clone(), r.kind.clone(), r.display.clone()))
        .collect()
}

fn m3(v: &str, k: &str, d: Option<&str>) -> (String, String, Option<String>) {
    (v.into(), k.into(), d.map(str::to_string))
}

pub async fn member_ops(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    user(
        &s,
        t,
        "u1",
        json!({"userName": "alice", "displayName": "Alice"}),
        &ts(1),
    )
    .await;
    user(&s, t, "u2", json!({"userName": "bob"}), &ts(1)).await;
    user(&s, t, "u3", json!({"userName": "carol"}), &ts(1)).await;
    let sub = group(&s, t, "g0", "Sub", &[], &ts(1)).await;
    let g = s
        .create(
            t,
            NewResource {
                kind: Kind::Group,
                id: "g1".into(),
                doc: obj(json!({"displayName": "Admins"})),
                members: vec![
                    member("u1"),
                    MemberRef {
                        value: "g0".into(),
                        kind: Some("Group".into()),
                        display: None,
                    },
                ],
                created: ts(2),
                activity: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(g.version, 1);
    // Display defaults to the member's displayName, else its userName.
    assert_eq!(
        member_ids(&s.members(t, "g1").await.unwrap()),
        [m3("g0", "Group", Some("Sub")), m3("u1", "User", Some("Alice"))]
    );
    let add = |refs: Vec<MemberRef>| with_member_ops(vec![MemberOp::Add(refs)]);
    let r = s
        .modify(
            t,
            Kind::Group,
            "g1",
            None,
            &ts(3),
            add(vec![
                member("u2"),
                MemberRef {
                    value: "u3".into(),
                    kind: Some("user".into()),
                    display: Some("Caz".into()),
                },
            ]),
        )
        .await
        .unwrap();
    assert_eq!(r.version, 2);
    assert_eq!(
        member_ids(&s.members(t, "g1").await.unwrap()),
        [
            m3("g0", "Group", Some("Sub")),
            m3("u1", "User", Some("Alice")),
            m3("u2", "User", Some("bob")),
            m3("u3", "User", Some("Caz"))
        ]
    );
    // Adding an existing member is a no-op: no new version.
    let r = s
        .modify(t, Kind::Group, "g1", None, &ts(4), add(vec![member("u2")]))
        .await
        .unwrap();
    assert_eq!((r.version, r.last_modified.as_str()), (2, ts(3).as_str()));
    // Errors: unknown member, itself, wrong type. Nothing is applied.
    for bad in [
        member("nope"),
        member("g1"),
        MemberRef {
            value: "u1".into(),
            kind: Some("Group".into()),
            display: None,
        },
    ] {
        let r = s
            .modify(t, Kind::Group, "g1", None, &ts(5), add(vec![member("u2"), bad.clone()]))
            .await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{bad:?}: {r:?}");
    }
    let r = s
        .modify(
            t,
            Kind::Group,
            "g1",
            None,
            &ts(5),
            with_member_ops(vec![MemberOp::Clear, MemberOp::Add(vec![member("nope")])]),
        )
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))));
    assert_eq!(
        s.members(t, "g1").await.unwrap().len(),
        4,
        "a failed modify leaves the members alone"
    );
    let r = s
        .modify(
            t,
            Kind::Group,
            "g1",
            None,
            &ts(6),
            with_member_ops(vec![MemberOp::Remove(vec!["u1".into(), "nope".into()])]),
        )
        .await
        .unwrap();
    assert_eq!(r.version, 3);
    let r = s
        .modify(
            t,
            Kind::Group,
            "g1",
            None,
            &ts(7),
            with_member_ops(vec![MemberOp::Remove(vec!["u1".into()])]),
        )
        .await
        .unwrap();
    assert_eq!(r.version, 3, "removing a non-member changes nothing");
    assert_eq!(
        member_ids(&s.groups_of(t, "u2").await.unwrap()),
        [m3("g1", "Group", Some("Admins"))]
    );
    assert!(s.groups_of(t, "u1").await.unwrap().is_empty());
    assert_eq!(
        member_ids(&s.groups_of(t, "g0").await.unwrap()),
        [m3("g1", "Group", Some("Admins"))]
    );
    // Ops apply in order.
    let r = s
        .modify(
            t,
            Kind::Group,
            "g1",
            None,
            &ts(8),
            with_member_ops(vec![
                MemberOp::Clear,
                MemberOp::Add(vec![member("u1")]),
                MemberOp::Remove(vec!["u1".into()]),
                MemberOp::Add(vec![member("u3")]),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(r.version, 4);
    assert_eq!(
        member_ids(&s.members(t, "g1").await.unwrap()),
        [m3("u3", "User", Some("carol"))]
    );
    // groups_of lists groups in creation order, with their names.
    s.create(
        t,
        NewResource {
            kind: Kind::Group,
            id: "g2".into(),
            doc: obj(json!({"displayName": "Zeta"})),
            members: vec![member("u3")],
            created: ts(9),
            activity: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        member_ids(&s.groups_of(t, "u3").await.unwrap()),
        [m3("g1", "Group", Some("Admins")), m3("g2", "Group", Some("Zeta"))]
    );
    // A doc change and a member change in one modify: one version.
    let f: scimitar_store::ModifyFn = Arc::new(|_, _| {
        Ok(Mutation {
            doc: obj(json!({"displayName": "Admins2"})),
            member_ops: vec![MemberOp::Add(vec![member("u1")])],
            activity: None,
        })
    });
    let r = s.modify(t, Kind::Group, "g1", None, &ts(10), f).await.unwrap();
    assert_eq!(r.version, 5);
    assert_eq!(s.display_name(t, "g1").await.unwrap().as_deref(), Some("Admins2"));
    let _ = sub;
}

pub async fn member_access_in_modify(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    for i in 0..5 {
        user(&s, t, &format!("u{i}"), json!({"userName": format!("user{i}")}), &ts(1)).await;
    }
    group(&s, t, "g0", "Nested", &[], &ts(1)).await;
    group(&s, t, "g1", "Big", &["u0", "u1", "u2", "g0"], &ts(2)).await;
    // A PATCH `remove members[type eq "User" and value ne "u1"]` reads the
    // current members through MemberAccess inside the transaction.
    let f: scimitar_store::ModifyFn = Arc::new(|cur, members| {
        let list = members.list()?;
        let drop: Vec<String> = list
            .iter()
            .filter(|m| m["type"] == "User" && m["value"] != "u1")
            .map(|m| m["value"].as_str().unwrap_or_default().to_string())
            .collect();
        assert!(
            list.iter().any(|m| m["value"] == "g0" && m["display"] == "Nested"),
            "{list:?}"
        );
        Ok(Mutation {
            doc: cur.doc.clone(),
            member_ops: vec![MemberOp::Remove(drop), MemberOp::Add(vec![member("u4")])],
            activity: None,
        })
    });
    let r = s.modify(t, Kind::Group, "g1", None, &ts(3), f).await.unwrap();
    assert_eq!(r.version, 2);
    let ids: Vec<String> = s.members(t, "g1").await.unwrap().into_iter().map(|m| m.value).collect();
    assert_eq!(ids, ["g0", "u1", "u4"]);
}

pub async fn delete_leaves_groups(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    populate(&s, t).await;
    s.delete(t, Kind::User, "u2", None).await.unwrap();
    let g1: Vec<String> = s.members(t, "g1").await.unwrap().into_iter().map(|m| m.value).collect();
    assert_eq!(g1, ["u1"]);
    let g2: Vec<String> = s.members(t, "g2").await.unwrap().into_iter().map(|m| m.value).collect();
    assert_eq!(g2, ["g1"]);
    assert_eq!(
        filter_ids(&s, t, Kind::Group, "members.value eq \"u2\"").await,
        Vec::<String>::new()
    );
    // A deleted group leaves its parent groups and its members lose it.
    s.delete(t, Kind::Group, "g1", None).await.unwrap();
    assert!(s.members(t, "g2").await.unwrap().is_empty());
    assert!(s.groups_of(t, "u1").await.unwrap().is_empty());
    assert_eq!(filter_ids(&s, t, Kind::User, "groups pr").await, Vec::<String>::new());
    // A new resource reusing the id does not inherit memberships.
    group(&s, t, "g1", "Again", &[], &ts(10)).await;
    assert!(s.members(t, "g1").await.unwrap().is_empty());
    assert!(s.groups_of(t, "g1").await.unwrap().is_empty());
}

/// Hand-checked expectations for every operator (populate's data).
pub async fn filter_operators(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    populate(&s, t).await;
    let users: &[(&str, &[&str])] = &[
        (r#"userName eq "ALICE""#, &["u1"]),
        (r#"userName ne "alice""#, &["u2", "u3", "u4", "u5", "u6"]),
        (r#"userName co "%""#, &["u3"]),
        (r#"userName co "_""#, &["u3", "u6"]),
        (r#"userName co "\\""#, &["u3"]),
        (r#"userName sw "CAROL%_""#, &["u3"]),
        (r#"userName sw "c_""#, &[]),
        (r#"userName ew "%_\\X""#, &["u3"]),
        (r#"userName ew "_1""#, &["u6"]),
        (r#"userName gt "dave""#, &["u5", "u6"]),
        (r#"userName ge "dave""#, &["u4", "u5", "u6"]),
        (r#"userName lt "Bob""#, &["u1"]),
        (r#"userName le "BOB""#, &["u1", "u2"]),
        (r#"displayName eq "émile dave""#, &["u4"]),
        (r#"displayName co "ÉMILE""#, &["u2", "u4"]),
        (r#"displayName pr"#, &["u1", "u2", "u4", "u6"]),
        (r#"not (displayName pr)"#, &["u3", "u5"]),
        (r#"nickName eq "100%""#, &["u6"]),
        (r#"nickName co "0%""#, &["u6"]),
        (r#"active eq true"#, &["u1", "u4"]),
        (r#"active eq "False""#, &["u2"]),
        (r#"active ne true"#, &["u2", "u3", "u5", "u6"]),
        (r#"externalId eq "EXT-1""#, &["u1"]),
        (r#"externalId eq "ext-1""#, &["u2"]),
        (r#"id eq "U3""#, &[]),
        (r#"id eq "u3""#, &["u3"]),
        (r#"emails[type eq "work" and value co "@x"]"#, &["u1", "u2", "u5"]),
        (r#"emails[type eq "home" and value ew ".org"]"#, &["u1", "u3"]),
        (r#"emails[type eq "work" and primary eq true]"#, &["u1"]),
        (r#"emails.value ne "bob@x.com""#, &["u1", "u3", "u4", "u5", "u6"]),
        (r#"emails.value eq "aaa@x.com""#, &["u5"]),
        (r#"addresses[locality eq "PARIS"]"#, &["u4"]),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "r&d""#,
            &["u1"],
        ),
        (r#"department eq "SALES""#, &["u2"]),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "u2""#,
            &["u1"],
        ),
        (r#"manager eq "u1""#, &["u5"]),
        (r#"manager[value eq "u1"]"#, &["u5"]),
        (r#"groups.value eq "g1""#, &["u1", "u2"]),
        (r#"groups eq "g2""#, &["u2"]),
        (r#"groups.value ne "g1""#, &["u3", "u4", "u5", "u6"]),
        (r#"meta.created gt "2024-03-01T00:00:00Z""#, &["u4", "u5", "u6"]),
        (r#"meta.created ge "2024-03-01T00:00:00Z""#, &["u3", "u4", "u5", "u6"]),
        // 2024-03-01T01:00+02:00 is 2024-02-29T23:00Z: a text comparison would differ.
        (r#"meta.created lt "2024-03-01T01:00:00+02:00""#, &["u1", "u2"]),
        (r#"meta.lastModified le "2024-01-01T00:00:00.000Z""#, &["u1"]),
        (r#"meta.resourceType eq "User""#, &["u1", "u2", "u3", "u4", "u5", "u6"]),
        (r#"meta.resourceType eq "Group""#, &[]),
        (r#"userType eq null"#, &["u1", "u2", "u3", "u4", "u6"]),
        (r#"(userName sw "a" or userName sw "b") and active eq true"#, &["u1"]),
        (
            r#"not (userName eq "alice" or emails.type eq "home")"#,
            &["u2", "u4", "u5", "u6"],
        ),
    ];
    for (f, want) in users {
        assert_eq!(filter_ids(&s, t, Kind::User, f).await, *want, "{f}");
    }
    let groups: &[(&str, &[&str])] = &[
        (r#"displayName eq "admins""#, &["g1"]),
        (r#"displayName sw "S""#, &["g2"]),
        (r#"members.value eq "u1""#, &["g1"]),
        (r#"members eq "u2""#, &["g1", "g2"]),
        (r#"members[type eq "Group"]"#, &["g2"]),
        (r#"members.type eq "Group""#, &["g2"]),
        (r#"members pr"#, &["g1", "g2"]),
        (r#"not (members pr)"#, &["g3"]),
        (r#"members.value ne "u1""#, &["g2", "g3"]),
    ];
    for (f, want) in groups {
        assert_eq!(filter_ids(&s, t, Kind::Group, f).await, *want, "{f}");
    }
}

pub const USER_FILTERS: &[&str] = &[
    r#"userName eq "ALICE""#,
    r#"userName ne "alice""#,
    r#"userName co "%""#,
    r#"userName co "_""#,
    r#"userName co "\\""#,
    r#"userName sw "car""#,
    r#"userName ew "X""#,
    r#"userName gt "bob""#,
    r#"userName ge "bob""#,
    r#"userName lt "carol""#,
    r#"userName le "dave""#,
    r#"displayName eq "émile dave""#,
    r#"displayName co "ÉMILE""#,
    r#"displayName sw "alice""#,
    r#"displayName ew "BOB""#,
    r#"displayName pr"#,
    r#"not (displayName pr)"#,
    r#"displayName gt "b""#,
    r#"title eq "engineer""#,
    r#"title gt "Engineer""#,
    r#"title lt "manager""#,
    r#"active eq true"#,
    r#"active eq false"#,
    r#"active ne true"#,
    r#"active eq "True""#,
    r#"active pr"#,
    r#"emails.value co "@x.com""#,
    r#"emails[type eq "work" and value co "@x"]"#,
    r#"emails[type eq "home" or primary eq true]"#,
    r#"emails[not (type eq "work")]"#,
    r#"emails.value ne "bob@x.com""#,
    r#"emails.type eq "other""#,
    r#"emails pr"#,
    r#"emails.primary eq true"#,
    r#"emails eq "alice@x.com""#,
    r#"emails.value gt "b""#,
    r#"phoneNumbers.value sw "+1""#,
    r#"addresses[locality eq "paris"]"#,
    r#"addresses.country eq "FR""#,
    r#"roles[primary eq true and value eq "ADMIN"]"#,
    r#"externalId eq "EXT-1""#,
    r#"externalId eq "ext-1""#,
    r#"externalId pr"#,
    r#"externalId sw "EXT""#,
    r#"id eq "u3""#,
    r#"id ne "u3""#,
    r#"id eq "U3""#,
    r#"name.givenName eq "alice""#,
    r#"name.familyName pr"#,
    r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "r&d""#,
    r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber pr"#,
    r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "u2""#,
    r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "u1""#,
    r#"department eq "Sales""#,
    r#"department ne "Sales""#,
    r#"manager.value pr"#,
    r#"manager[value eq "u1"]"#,
    r#"groups.value eq "g1""#,
    r#"groups eq "g2""#,
    r#"groups pr"#,
    r#"not (groups pr)"#,
    r#"groups.value ne "g1""#,
    r#"meta.created gt "2024-02-15T00:00:00Z""#,
    r#"meta.created ge "2024-02-01T00:00:00Z""#,
    r#"meta.created lt "2024-03-01T01:00:00+02:00""#,
    r#"meta.created ne "2024-02-01T00:00:00Z""#,
    r#"meta.lastModified le "2024-01-01T00:00:00.000Z""#,
    r#"userName eq "alice" or userName eq "bob""#,
    r#"(userName sw "a" or userName sw "b") and active eq true"#,
    r#"not (userName eq "alice" or emails.type eq "home")"#,
    r#"nickName eq "100%""#,
    r#"nickName co "0%""#,
    r#"userType eq "contractor""#,
    r#"userType ne "contractor""#,
];

pub async fn filter_differential_users(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    populate(&s, t).await;
    differential(&s, t, Kind::User, USER_FILTERS).await;
}

pub const GROUP_FILTERS: &[&str] = &[
    r#"displayName eq "admins""#,
    r#"displayName sw "S""#,
    r#"displayName ne "sales""#,
    r#"displayName gt "b""#,
    r#"members.value eq "u1""#,
    r#"members eq "u2""#,
    r#"members[value eq "u1"]"#,
    r#"members[type eq "Group"]"#,
    r#"members[type eq "User" and value eq "u2"]"#,
    r#"members.type eq "Group""#,
    r#"members pr"#,
    r#"not (members pr)"#,
    r#"members.value ne "u1""#,
    r#"meta.created gt "2024-07-15T00:00:00Z""#,
    r#"id eq "g2" or displayName eq "EMPTY""#,
];

pub async fn filter_differential_groups(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    populate(&s, t).await;
    differential(&s, t, Kind::Group, GROUP_FILTERS).await;
}

pub async fn filter_errors(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    populate(&s, t).await;
    for (kind, f) in [
        (Kind::User, r#"nope eq "x""#),
        (Kind::User, r#"active gt true"#),
        (Kind::User, r#"active eq "maybe""#),
        (Kind::User, r#"meta.created gt "yesterday""#),
        (Kind::User, r#"userName[value eq "x"]"#),
        (Kind::User, r#"groups.display eq "x""#),
        (Kind::User, r#"urn:example:unknown:ext:thing eq "x""#),
    ] {
        let r = list(
            &s,
            t,
            kind,
            Q {
                filter: Some(f),
                ..Q::default()
            },
        )
        .await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{f}: {r:?}");
    }
    for (kind, by) in [
        (Kind::Group, "members"),
        (Kind::User, "groups"),
        (Kind::User, "nope"),
        (Kind::User, "emails.nope"),
    ] {
        let r = list(
            &s,
            t,
            kind,
            Q {
                sort: Some((by, Ascending)),
                ..Q::default()
            },
        )
        .await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "sortBy {by}: {r:?}");
    }
}

pub async fn sorting(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    populate(&s, t).await;
    let cases: &[(&str, scimitar_protocol::list::SortOrder, &[&str])] = &[
        // Case-insensitive.
        ("userName", Ascending, &["u1", "u2", "u3", "u4", "u5", "u6"]),
        ("userName", Descending, &["u6", "u5", "u4", "u3", "u2", "u1"]),
        // Code point order of the lower-cased values; absent values last either way.
        ("displayName", Ascending, &["u1", "u6", "u2", "u4", "u3", "u5"]),
        ("displayName", Descending, &["u4", "u2", "u6", "u1", "u3", "u5"]),
        // Ties keep insertion order in both directions.
        ("title", Ascending, &["u1", "u4", "u2", "u3", "u5", "u6"]),
        ("title", Descending, &["u2", "u1", "u4", "u3", "u5", "u6"]),
        // Multi-valued: the primary value, else the first (u5 sorts by eve@z.com, not AAA@X.COM).
        ("emails", Ascending, &["u1", "u2", "u3", "u5", "u4", "u6"]),
        ("emails.value", Descending, &["u5", "u3", "u2", "u1", "u4", "u6"]),
        ("active", Ascending, &["u2", "u1", "u4", "u3", "u5", "u6"]),
        ("meta.created", Descending, &["u6", "u5", "u4", "u3", "u2", "u1"]),
        ("name.givenName", Ascending, &["u1", "u2", "u3", "u4", "u5", "u6"]),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            Descending,
            &["u2", "u1", "u3", "u4", "u5", "u6"],
        ),
        ("id", Descending, &["u6", "u5", "u4", "u3", "u2", "u1"]),
    ];
    for (by, order, want) in cases {
        let page = list(
            &s,
            t,
            Kind::User,
            Q {
                sort: Some((by, *order)),
                ..Q::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{by}: {e}"));
        assert_eq!(ids(&page), *want, "sortBy={by} {order:?}");
    }
    let page = list(
        &s,
        t,
        Kind::Group,
        Q {
            sort: Some(("displayName", Ascending)),
            ..Q::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(ids(&page), ["g1", "g3", "g2"]);
    // Sorting applies before paging; filters combine with both.
    let page = list(
        &s,
        t,
        Kind::User,
        Q {
            filter: Some("emails pr"),
            sort: Some(("userName", Descending)),
            start: 2,
            count: 2,
            ..Q::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((ids(&page), page.total), (vec!["u3".to_string(), "u2".to_string()], 4));
}

/// A key that is the same for every record (one resource type per
/// query) keeps insertion order, in both directions.
pub async fn sort_by_resource_type(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    populate(&s, t).await;
    for order in [Ascending, Descending] {
        let page = list(
            &s,
            t,
            Kind::User,
            Q {
                sort: Some(("meta.resourceType", order)),
                ..Q::default()
            },
        )
        .await;
        let page = page.unwrap_or_else(|e| panic!("sortBy=meta.resourceType {order:?}: {e}"));
        assert_eq!(ids(&page), ["u1", "u2", "u3", "u4", "u5", "u6"], "{order:?}");
    }
}

pub async fn pagination(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    populate(&s, t).await;
    let page = |start, count| {
        list(
            &s,
            t,
            Kind::User,
            Q {
                start,
                count,
                ..Q::default()
            },
        )
    };
    let p = page(1, 100).await.unwrap();
    assert_eq!(
        (ids(&p), p.total),
        (
            vec!["u1", "u2", "u3", "u4", "u5", "u6"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>(),
            6
        )
    );
    let p = page(2, 2).await.unwrap();
    assert_eq!((ids(&p), p.total), (vec!["u2".to_string(), "u3".to_string()], 6));
    let p = page(5, 10).await.unwrap();
    assert_eq!((ids(&p), p.total), (vec!["u5".to_string(), "u6".to_string()], 6));
    let p = page(1, 0).await.unwrap();
    assert_eq!((p.records.len(), p.total), (0, 6), "count=0 gives only the total");
    let p = page(7, 10).await.unwrap();
    assert_eq!((p.records.len(), p.total), (0, 6), "past the end");
    let p = list(
        &s,
        t,
        Kind::User,
        Q {
            filter: Some("active pr"),
            start: 2,
            count: 5,
            ..Q::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((ids(&p), p.total), (vec!["u2".to_string(), "u4".to_string()], 3));
    let p = list(
        &s,
        t,
        Kind::User,
        Q {
            filter: Some("userName eq \"nobody\""),
            start: 1,
            count: 0,
            ..Q::default()
        },
    )
    .await
    .unwrap();
    assert_eq!((p.records.len(), p.total), (0, 0));
}

pub async fn cursor_paging(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    populate(&s, t).await;
    let all = list(&s, t, Kind::User, Q::default()).await.unwrap();
    let seq: Vec<i64> = all.records.iter().map(|r| r.seq).collect();
    assert!(seq.windows(2).all(|w| w[0] < w[1]), "seq grows with insertion: {seq:?}");
    let get = |pos, count, filter| {
        list(
            &s,
            t,
            Kind::User,
            Q {
                cursor: Some(pos),
                count,
                filter,
                ..Q::default()
            },
        )
    };
    let p = get(CursorPos::After(0), 2, None).await.unwrap();
    assert_eq!(
        (ids(&p), p.has_more, p.total),
        (vec!["u1".to_string(), "u2".to_string()], true, 6)
    );
    let p = get(CursorPos::After(seq[1]), 2, None).await.unwrap();
    assert_eq!((ids(&p), p.has_more), (vec!["u3".to_string(), "u4".to_string()], true));
    let p = get(CursorPos::After(seq[3]), 2, None).await.unwrap();
    assert_eq!((ids(&p), p.has_more), (vec!["u5".to_string(), "u6".to_string()], false));
    let p = get(CursorPos::Before(seq[4]), 2, None).await.unwrap();
    assert_eq!(
        (ids(&p), p.has_more),
        (vec!["u3".to_string(), "u4".to_string()], true),
        "the page before, ascending"
    );
    let p = get(CursorPos::Before(seq[2]), 2, None).await.unwrap();
    assert_eq!((ids(&p), p.has_more), (vec!["u1".to_string(), "u2".to_string()], false));
    let p = get(CursorPos::After(seq[0]), 2, Some("emails pr")).await.unwrap();
    assert_eq!(
        (ids(&p), p.has_more, p.total),
        (vec!["u2".to_string(), "u3".to_string()], true, 4)
    );
}

pub async fn concurrent_modify(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    user(&s, t, "u1", json!({"userName": "counter", "nickName": "0"}), &ts(1)).await;
    // Read-modify-write increments from many tasks: none may be lost.
    let n = 24;
    let mut tasks = Vec::new();
    for _ in 0..n {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let f: scimitar_store::ModifyFn = Arc::new(|cur, _| {
                let mut doc = cur.doc.clone();
                let v: u64 = doc["nickName"].as_str().unwrap_or("0").parse().unwrap_or(0);
                doc.insert("nickName".into(), Value::String((v + 1).to_string()));
                Ok(Mutation {
                    doc,
                    member_ops: vec![],
                    activity: None,
                })
            });
            s.modify(t, Kind::User, "u1", None, &ts(2), f).await
        }));
    }
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.unwrap().unwrap().version);
    }
    versions.sort_unstable();
    assert_eq!(
        versions,
        (2..2 + n).collect::<Vec<u64>>(),
        "each write saw the one before it"
    );
    let r = s.get(t, Kind::User, "u1").await.unwrap().unwrap();
    assert_eq!(
        (r.doc["nickName"].as_str(), r.version),
        (Some(n.to_string().as_str()), n + 1)
    );
}

pub async fn concurrent_member_adds(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    group(&s, t, "g", "Everyone", &[], &ts(1)).await;
    let n = 20;
    for i in 0..n {
        user(
            &s,
            t,
            &format!("u{i:02}"),
            json!({"userName": format!("user{i}")}),
            &ts(1),
        )
        .await;
    }
    let mut tasks = Vec::new();
    for i in 0..n {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.modify(
                t,
                Kind::Group,
                "g",
                None,
                &ts(2),
                with_member_ops(vec![MemberOp::Add(vec![member(&format!("u{i:02}"))])]),
            )
            .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(s.members(t, "g").await.unwrap().len(), n);
    assert_eq!(s.get(t, Kind::Group, "g").await.unwrap().unwrap().version, n as u64 + 1);
}

pub async fn secrets(s: Arc<dyn Store>) {
    assert_eq!(s.secret("cursor", &h(1)).await.unwrap(), h(1));
    assert_eq!(
        s.secret("cursor", &h(2)).await.unwrap(),
        h(1),
        "the first stored secret wins"
    );
    assert_eq!(s.secret("other", &h(3)).await.unwrap(), h(3));
}

pub async fn extensions(s: Arc<dyn Store>) {
    let a = tenant(&s, "a").await;
    let b = tenant(&s, "b").await;
    let ext = |urn: &str, rt: &str, required| ExtensionRecord {
        resource_type: rt.into(),
        urn: urn.into(),
        schema: json!({"id": urn, "name": "X", "attributes": [{"name": "badge", "type": "string", "multiValued": false}]}),
        required,
    };
    s.put_extension(a, ext("urn:ex:z", "User", false)).await.unwrap();
    s.put_extension(a, ext("urn:ex:a", "Group", true)).await.unwrap();
    assert_eq!(
        s.list_extensions(a).await.unwrap(),
        [ext("urn:ex:a", "Group", true), ext("urn:ex:z", "User", false)]
    );
    s.put_extension(a, ext("urn:ex:z", "User", true)).await.unwrap();
    assert_eq!(
        s.list_extensions(a).await.unwrap()[1],
        ext("urn:ex:z", "User", true),
        "put replaces"
    );
    assert!(s.list_extensions(b).await.unwrap().is_empty());
    assert!(!s.delete_extension(b, "urn:ex:z").await.unwrap());
    assert!(s.delete_extension(a, "urn:ex:z").await.unwrap());
    assert!(!s.delete_extension(a, "urn:ex:z").await.unwrap());
    assert_eq!(s.list_extensions(a).await.unwrap().len(), 1);
}

fn event(tenant: i64, time: &str, action: &str, outcome: &str, name: &str) -> ActivityEvent {
    ActivityEvent {
        id: 0,
        tenant_id: tenant,
        time: time.into(),
        token_id: Some("t1".into()),
        token_label: Some("Entra".into()),
        action: action.into(),
        resource_type: Some("User".into()),
        resource_id: Some(format!("id-{name}")),
        name: Some(name.into()),
        changes: json!([{"attribute": "title", "old": "a", "new": "b"}]),
        outcome: outcome.into(),
        status: if outcome == "success" { 200 } else { 409 },
        error: (outcome != "success").then(|| "userName is already in use".to_string()),
        method: "PATCH".into(),
        path: "/Users/x".into(),
    }
}

/// `totalResults` of unfiltered lists follows creates and deletes, per
/// tenant and kind (SQLite keeps these counts in a table, not a scan).
pub async fn totals_follow_writes(s: Arc<dyn Store>) {
    let a = tenant(&s, "a").await;
    let b = tenant(&s, "b").await;
    for i in 1..=3 {
        user(&s, a, &format!("u{i}"), json!({"userName": format!("u{i}")}), &ts(1)).await;
    }
    user(&s, b, "x1", json!({"userName": "x1"}), &ts(1)).await;
    group(&s, a, "g1", "G", &["u1"], &ts(1)).await;
    s.delete(a, Kind::User, "u2", None).await.unwrap();
    let total = |t, kind| {
        let s = s.clone();
        async move {
            list(
                &s,
                t,
                kind,
                Q {
                    count: 0,
                    ..Q::default()
                },
            )
            .await
            .unwrap()
            .total
        }
    };
    assert_eq!(
        (
            total(a, Kind::User).await,
            total(a, Kind::Group).await,
            total(b, Kind::User).await
        ),
        (2, 1, 1)
    );
    s.delete(a, Kind::Group, "g1", None).await.unwrap();
    assert_eq!((total(a, Kind::Group).await, total(a, Kind::User).await), (0, 2));
}

/// A mutation's or a create's log entry is committed with it: recorded when
/// the change is stored, not when nothing changed, not when it fails.
pub async fn activity_with_modification(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    user(&s, t, "u1", json!({"userName": "alice"}), &ts(1)).await;
    user(&s, t, "u2", json!({"userName": "bob"}), &ts(1)).await;
    group(&s, t, "g1", "Admins", &[], &ts(1)).await;
    let logged = |doc: Value, ops: Vec<MemberOp>, name: &'static str| -> scimitar_store::ModifyFn {
        let doc = obj(doc);
        Arc::new(move |cur: &scimitar_store::Record, _| {
            Ok(Mutation {
                doc: if doc.is_empty() { cur.doc.clone() } else { doc.clone() },
                member_ops: ops.clone(),
                activity: Some(event(t, "2024-01-01T10:00:00.000Z", "update", "success", name)),
            })
        })
    };
    let names = |v: Vec<ActivityEvent>| v.into_iter().map(|e| e.name.unwrap_or_default()).collect::<Vec<_>>();
    let q = ActivityQuery {
        limit: 100,
        ..ActivityQuery::default()
    };
    // User (SQLite computes it off the writer) and Group (inside it).
    s.modify(
        t,
        Kind::User,
        "u1",
        None,
        &ts(2),
        logged(json!({"userName": "alice", "title": "CFO"}), vec![], "changed-user"),
    )
    .await
    .unwrap();
    s.modify(
        t,
        Kind::Group,
        "g1",
        None,
        &ts(2),
        logged(json!({}), vec![MemberOp::Add(vec![member("u1")])], "changed-group"),
    )
    .await
    .unwrap();
    // Nothing changes: nothing is logged.
    s.modify(
        t,
        Kind::User,
        "u1",
        None,
        &ts(3),
        logged(json!({"userName": "alice", "title": "CFO"}), vec![], "unchanged"),
    )
    .await
    .unwrap();
    // The change fails (userName taken): its entry is rolled back with it.
    let err = s
        .modify(
            t,
            Kind::User,
            "u2",
            None,
            &ts(3),
            logged(json!({"userName": "ALICE"}), vec![], "failed"),
        )
        .await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    // Creates too: logged with the resource, not when the create fails.
    let at = "2024-01-01T10:00:00.000Z";
    s.create(
        t,
        NewResource {
            kind: Kind::User,
            id: "u3".into(),
            doc: obj(json!({"userName": "carol"})),
            members: vec![],
            created: ts(4),
            activity: Some(event(t, at, "create", "success", "created")),
        },
    )
    .await
    .unwrap();
    let err = s
        .create(
            t,
            NewResource {
                kind: Kind::User,
                id: "u4".into(),
                doc: obj(json!({"userName": "CAROL"})),
                members: vec![],
                created: ts(4),
                activity: Some(event(t, at, "create", "success", "not-created")),
            },
        )
        .await;
    assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
    let mut logged_names = names(s.list_activity(t, q.clone()).await.unwrap());
    logged_names.sort();
    assert_eq!(logged_names, ["changed-group", "changed-user", "created"]);
}

pub async fn activity(s: Arc<dyn Store>) {
    let a = tenant(&s, "a").await;
    let b = tenant(&s, "b").await;
    s.record_activity(event(a, "2024-01-01T10:00:00.000Z", "create", "success", "Alice"))
        .await
        .unwrap();
    s.record_activity(event(a, "2024-01-02T10:00:00.000Z", "update", "failure", "100%_bob"))
        .await
        .unwrap();
    s.record_activity(event(a, "2024-01-03T10:00:00.000Z", "delete", "success", "carol"))
        .await
        .unwrap();
    s.record_activity(event(b, "2024-01-02T11:00:00.000Z", "create", "success", "other"))
        .await
        .unwrap();
    let q = |f: fn(&mut ActivityQuery)| {
        let mut q = ActivityQuery {
            limit: 100,
            ..ActivityQuery::default()
        };
        f(&mut q);
        q
    };
    let names = |v: Vec<ActivityEvent>| v.into_iter().map(|e| e.name.unwrap_or_default()).collect::<Vec<_>>();
    let all = s.list_activity(a, q(|_| {})).await.unwrap();
    assert_eq!(
        names(all.clone()),
        ["carol", "100%_bob", "Alice"],
        "newest first, own tenant only"
    );
    let first = all.last().unwrap();
    let want = ActivityEvent {
        id: first.id,
        ..event(a, "2024-01-01T10:00:00.000Z", "create", "success", "Alice")
    };
    assert_eq!(first, &want, "round trip");
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(
        names(
            s.list_activity(a, q(|q| q.since = Some("2024-01-02T00:00:00.000Z".into())))
                .await
                .unwrap()
        ),
        ["carol", "100%_bob"]
    );
    assert_eq!(
        names(
            s.list_activity(a, q(|q| q.until = Some("2024-01-02T10:00:00.000Z".into())))
                .await
                .unwrap()
        ),
        ["Alice"]
    );
    assert_eq!(
        names(
            s.list_activity(a, q(|q| q.action = Some("delete".into())))
                .await
                .unwrap()
        ),
        ["carol"]
    );
    assert_eq!(
        names(
            s.list_activity(a, q(|q| q.outcome = Some("failure".into())))
                .await
                .unwrap()
        ),
        ["100%_bob"]
    );
    assert_eq!(
        names(s.list_activity(a, q(|q| q.text = Some("ALICE".into()))).await.unwrap()),
        ["Alice"]
    );
    assert_eq!(
        names(s.list_activity(a, q(|q| q.text = Some("%_".into()))).await.unwrap()),
        ["100%_bob"],
        "literal % and _"
    );
    assert_eq!(
        names(
            s.list_activity(a, q(|q| q.text = Some("ALREADY IN USE".into())))
                .await
                .unwrap()
        ),
        ["100%_bob"]
    );
    assert_eq!(
        s.list_activity(a, q(|q| q.text = Some("title".into())))
            .await
            .unwrap()
            .len(),
        3,
        "changes are searched"
    );
    let mut paged = ActivityQuery {
        limit: 2,
        ..ActivityQuery::default()
    };
    let p1 = s.list_activity(a, paged.clone()).await.unwrap();
    assert_eq!(names(p1.clone()), ["carol", "100%_bob"]);
    paged.before_id = Some(p1[1].id);
    assert_eq!(names(s.list_activity(a, paged).await.unwrap()), ["Alice"]);
    // Read counters add up per hour.
    s.count_reads(a, "2024-01-01T10", 3).await.unwrap();
    s.count_reads(a, "2024-01-01T10", 4).await.unwrap();
    s.count_reads(a, "2024-01-02T09", 1).await.unwrap();
    s.count_reads(b, "2024-01-01T10", 100).await.unwrap();
    let counts: Vec<(String, u64)> = s
        .read_counts(a, "2024-01-01T00")
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.hour, c.count))
        .collect();
    assert_eq!(
        counts,
        [("2024-01-01T10".to_string(), 7), ("2024-01-02T09".to_string(), 1)]
    );
    assert_eq!(s.read_counts(a, "2024-01-02T00").await.unwrap().len(), 1);
    // Purging drops old entries in every tenant.
    assert_eq!(s.purge_activity("2024-01-02T10:30:00.000Z").await.unwrap(), 2);
    assert_eq!(names(s.list_activity(a, q(|_| {})).await.unwrap()), ["carol"]);
    assert_eq!(names(s.list_activity(b, q(|_| {})).await.unwrap()), ["other"]);
    let counts: Vec<String> = s
        .read_counts(a, "2000-01-01T00")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.hour)
        .collect();
    assert!(counts.is_empty(), "hours before the purge hour go: {counts:?}");
}

pub const CUSTOM: &str = "urn:example:params:scim:schemas:extension:custom:2.0:User";

/// A tenant's custom extension with typed attributes: integers and
/// decimals compare and sort as numbers, dateTimes as instants, booleans
/// as booleans, caseExact strings exactly; absent values satisfy `ne`.
pub async fn custom_typed_attributes(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    let mut custom = (*rt(Kind::User)).clone();
    let schema = serde_json::from_value(json!({"id": CUSTOM, "name": "Custom", "attributes": [
        {"name": "level", "type": "integer", "multiValued": false},
        {"name": "score", "type": "decimal", "multiValued": false},
        {"name": "hired", "type": "dateTime", "multiValued": false},
        {"name": "vip", "type": "boolean", "multiValued": false},
        {"name": "code", "type": "string", "multiValued": false, "caseExact": true},
        {"name": "tags", "type": "string", "multiValued": true}
    ]}))
    .unwrap();
    custom.extensions.push((schema, false));
    let custom = Arc::new(custom);
    user(&s, t, "c1", json!({"userName": "one", CUSTOM: {"level": 5, "score": 2.5, "hired": "2020-01-01T00:00:00Z", "vip": true, "code": "AbC", "tags": ["red", "Blue"]}}), &ts(1)).await;
    user(&s, t, "c2", json!({"userName": "two", CUSTOM: {"level": 10, "score": 10, "hired": "2021-06-01T12:00:00+02:00", "vip": false, "code": "abc", "tags": ["green"]}}), &ts(2)).await;
    user(&s, t, "c3", json!({"userName": "three"}), &ts(3)).await;
    let filters: &[(&str, &[&str])] = &[
        (r#"level gt 6"#, &["c2"]),
        (r#"level ge 5"#, &["c1", "c2"]),
        (r#"level lt 10"#, &["c1"]),
        (r#"level eq 10"#, &["c2"]),
        (r#"level ne 10"#, &["c1", "c3"]),
        (r#"score le 2.5"#, &["c1"]),
        (r#"score gt 3"#, &["c2"]),
        (r#"hired gt "2020-06-01T00:00:00Z""#, &["c2"]),
        // 12:00+02:00 is 10:00Z: as text it would sort after 11:30Z.
        (r#"hired lt "2021-06-01T11:30:00Z""#, &["c1", "c2"]),
        (r#"hired ne "2020-01-01T00:00:00Z""#, &["c2", "c3"]),
        (r#"vip eq true"#, &["c1"]),
        (r#"vip ne true"#, &["c2", "c3"]),
        (r#"code eq "abc""#, &["c2"]),
        (r#"code co "C""#, &["c1"]),
        (r#"tags eq "blue""#, &["c1"]),
        (r#"tags[value sw "GR"]"#, &["c2"]),
        (r#"tags ne "red""#, &["c2", "c3"]),
        (
            r#"urn:example:params:scim:schemas:extension:custom:2.0:User:level pr"#,
            &["c1", "c2"],
        ),
    ];
    for (f, want) in filters {
        let page = list_rt(
            &s,
            t,
            Kind::User,
            custom.clone(),
            Q {
                filter: Some(f),
                ..Q::default()
            },
        )
        .await;
        assert_eq!(ids(&page.unwrap_or_else(|e| panic!("{f}: {e}"))), *want, "{f}");
    }
    let all: Vec<&str> = filters.iter().map(|(f, _)| *f).collect();
    differential_rt(&s, t, Kind::User, custom.clone(), &all).await;
    for (by, order, want) in [
        ("level", Descending, ["c2", "c1", "c3"]),
        ("score", Ascending, ["c1", "c2", "c3"]),
        ("hired", Descending, ["c2", "c1", "c3"]),
    ] {
        let page = list_rt(
            &s,
            t,
            Kind::User,
            custom.clone(),
            Q {
                sort: Some((by, order)),
                ..Q::default()
            },
        )
        .await;
        assert_eq!(
            ids(&page.unwrap_or_else(|e| panic!("{by}: {e}"))),
            want,
            "sortBy={by} {order:?}"
        );
    }
}

/// The resource count the filter cost budget reads: per tenant and kind,
/// following creates and deletes, counted no further than asked.
pub async fn resource_counts(s: Arc<dyn Store>) {
    let a = tenant(&s, "a").await;
    let b = tenant(&s, "b").await;
    for i in 1..=5 {
        user(&s, a, &format!("u{i}"), json!({"userName": format!("u{i}")}), &ts(1)).await;
    }
    user(&s, b, "x1", json!({"userName": "x1"}), &ts(1)).await;
    group(&s, a, "g1", "G", &["u1"], &ts(1)).await;
    s.delete(a, Kind::User, "u2", None).await.unwrap();
    let count = |t, kind, at_most| {
        let s = s.clone();
        async move { s.resource_count(t, kind, at_most).await.unwrap() }
    };
    assert_eq!(count(a, Kind::User, 100).await, 4);
    assert_eq!(count(a, Kind::User, 3).await, 3, "counted no further than asked");
    assert_eq!(count(a, Kind::Group, 100).await, 1);
    assert_eq!(count(b, Kind::User, 100).await, 1);
    assert_eq!(count(b, Kind::Group, 100).await, 0);
    let none = tenant(&s, "none").await;
    assert_eq!(count(none, Kind::User, 100).await, 0);
}

/// A list query stops at the query time limit with `Timeout`, and the
/// store serves the next query as usual.
pub async fn query_time_limit(s: Arc<dyn Store>) {
    let t = tenant(&s, "a").await;
    let mut writes = tokio::task::JoinSet::new();
    for w in 0..16 {
        let s = s.clone();
        writes.spawn(async move {
            for i in (w..1500).step_by(16) {
                let emails: Vec<Value> = (0..20)
                    .map(|e| json!({"value": format!("u{i}.{e}@example.com")}))
                    .collect();
                user(
                    &s,
                    t,
                    &format!("u{i}"),
                    json!({"userName": format!("u{i}"), "emails": emails}),
                    &ts(1),
                )
                .await;
            }
        });
    }
    while let Some(r) = writes.join_next().await {
        r.unwrap();
    }
    // Seconds of work on either backend (see the HTTP tests' slow filter).
    let slow = vec!["emails.value co \"q\""; 100].join(" or ");
    s.limit_query_time(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    let r = list(
        &s,
        t,
        Kind::User,
        Q {
            filter: Some(&slow),
            ..Q::default()
        },
    )
    .await;
    assert!(matches!(r, Err(StoreError::Timeout)), "{:?}", r.map(|p| p.total));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    s.limit_query_time(std::time::Duration::from_secs(30));
    let page = list(
        &s,
        t,
        Kind::User,
        Q {
            filter: Some("userName sw \"u14\""),
            ..Q::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(page.total, 111);
}
