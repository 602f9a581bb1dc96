//! The conformance cases. Each takes a fresh, empty store.

use std::sync::Arc;

use scimitar_protocol::ScimError;
use scimitar_protocol::list::SortOrder::{Ascending, Descending};
use scimitar_protocol::patch::MemberOp;
use scimitar_protocol::resource::MemberRef;
use scimitar_store::{
    ActivityEvent, ActivityQuery, CursorPos, EngineLogQuery, EngineLogRecord, Escrow, ExtensionRecord, JobRecord, Kind,
    Mutation, NewResource, NewTokenRecord, ObjectKind, ObjectState, Store, StoreError,
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
                    events: Default::default(),
                    kind: Kind::Group,
                    id: "u2".into(),
                    doc: obj(json!({"displayName": "x"})),
                    members: vec![],
                    created: ts(4),
                    activity: None,
                    unique: vec![],
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
                events: Default::default(),
                kind: Kind::User,
                id: "u2".into(),
                doc: obj(json!({"userName": "aLICE"})),
                members: vec![],
                created: ts(2),
                activity: None,
                unique: vec![],
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
                events: Default::default(),
                kind: Kind::User,
                id: "u2".into(),
                doc: obj(json!({"userName": "ÀLICE"})),
                members: vec![],
                created: ts(2),
                activity: None,
                unique: vec![],
            },
        )
        .await;
    assert!(dup.is_ok(), "À is not A: {dup:?}");
    user(&s, t, "u3", json!({"userName": "Émile"}), &ts(2)).await;
    let dup = s
        .create(
            t,
            NewResource {
                events: Default::default(),
                kind: Kind::User,
                id: "u4".into(),
                doc: obj(json!({"userName": "émile"})),
                members: vec![],
                created: ts(2),
                activity: None,
                unique: vec![],
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
                events: Default::default(),
                kind: Kind::Group,
                id: "g2".into(),
                doc: obj(json!({"displayName": "ADMINS"})),
                members: vec![],
                created: ts(4),
                activity: None,
                unique: vec![],
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
                events: Default::default(),
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
                unique: vec![],
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
            events: Default::default(),
            kind: Kind::Group,
            id: "g2".into(),
            doc: obj(json!({"displayName": "Zeta"})),
            members: vec![member("u3")],
            created: ts(9),
            activity: None,
            unique: vec![],
        },
    )
    .await
    .unwrap();
    assert_eq!(
        member_ids(&s.groups_of(t, "u3").await.unwrap()),
        [m3("g1", "Group", Some("Admins")), m3("g2", "Group", Some("Zeta"))]
    );
    // A backend may read a User's groups with the record (PostgreSQL does,
    // to save a statement); what it carries is then what groups_of says.
    let expect = s.groups_of(t, "u3").await.unwrap();
    let got = s.get(t, Kind::User, "u3").await.unwrap().unwrap();
    let found = list(
        &s,
        t,
        Kind::User,
        Q {
            filter: Some("userName eq \"CAROL\""),
            ..Q::default()
        },
    )
    .await
    .unwrap();
    let modified = s
        .modify(
            t,
            Kind::User,
            "u3",
            None,
            &ts(9),
            set_doc(json!({"userName": "carol", "title": "z"})),
        )
        .await
        .unwrap();
    assert_eq!(found.records.len(), 1);
    for (what, carried) in [
        ("get", got.groups),
        ("a lookup", found.records[0].groups.clone()),
        ("modify", modified.groups),
    ] {
        if let Some(groups) = carried {
            assert_eq!(groups, expect, "the groups {what} carries");
        }
    }
    // A doc change and a member change in one modify: one version.
    let f: scimitar_store::ModifyFn = Arc::new(|_, _| {
        Ok(Mutation {
            events: Default::default(),
            doc: obj(json!({"displayName": "Admins2"})),
            member_ops: vec![MemberOp::Add(vec![member("u1")])],
            activity: None,
            unique: Default::default(),
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
            events: Default::default(),
            doc: cur.doc.clone(),
            member_ops: vec![MemberOp::Remove(drop), MemberOp::Add(vec![member("u4")])],
            activity: None,
            unique: Default::default(),
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
                    events: Default::default(),
                    doc,
                    member_ops: vec![],
                    activity: None,
                    unique: Default::default(),
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
        change: Some(format!("change-{name}")),
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
                events: Default::default(),
                doc: if doc.is_empty() { cur.doc.clone() } else { doc.clone() },
                member_ops: ops.clone(),
                activity: Some(event(t, "2024-01-01T10:00:00.000Z", "update", "success", name)),
                unique: Default::default(),
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
            events: Default::default(),
            kind: Kind::User,
            id: "u3".into(),
            doc: obj(json!({"userName": "carol"})),
            members: vec![],
            created: ts(4),
            activity: Some(event(t, at, "create", "success", "created")),
            unique: vec![],
        },
    )
    .await
    .unwrap();
    let err = s
        .create(
            t,
            NewResource {
                events: Default::default(),
                kind: Kind::User,
                id: "u4".into(),
                doc: obj(json!({"userName": "CAROL"})),
                members: vec![],
                created: ts(4),
                activity: Some(event(t, at, "create", "success", "not-created")),
                unique: vec![],
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

// The provisioning engine's state (`EngineStore`).

/// An object state: linked (with an export) when it has a target.
fn state(kind: ObjectKind, anchor: &str, source_ref: Option<&str>, target: Option<&str>, pending: bool) -> ObjectState {
    ObjectState {
        kind,
        anchor: anchor.into(),
        source_ref: source_ref.map(str::to_string),
        source_hash: format!("hash-{anchor}"),
        source: json!({"cn": anchor, "mail": [format!("{anchor}@example.com")], "n": 1, "ünï": "cödé"}),
        in_scope: true,
        target_id: target.map(str::to_string),
        exported: match target {
            Some(id) => json!({"image": {"userName": anchor, "id": id}, "manager": null}),
            None => Value::Null,
        },
        pending,
        updated: "2024-01-01T00:00:00.000Z".into(),
        escrow: None,
    }
}

fn log_rec(job: &str, cycle: &str, change: &str, time: &str, action: &str, status: &str) -> EngineLogRecord {
    EngineLogRecord {
        id: 0,
        job: job.into(),
        cycle_id: cycle.into(),
        change_id: change.into(),
        time: time.into(),
        action: action.into(),
        status: status.into(),
        source_id: Some(format!("src-{change}")),
        target_id: None,
        record: json!({"provisioningSteps": [{"name": "import", "status": status}], "change": change}),
    }
}

fn log_query(cycle: Option<&str>, status: Option<&str>, action: Option<&str>) -> EngineLogQuery {
    EngineLogQuery {
        cycle_id: cycle.map(str::to_string),
        status: status.map(str::to_string),
        action: action.map(str::to_string),
        before_id: None,
        limit: 100,
    }
}

/// References asked for, and the objects found.
type RefLookup = (&'static [&'static str], &'static [(ObjectKind, &'static str)]);
/// Cycle, status and action asked for, and the changes listed.
type LogFilter = (
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    &'static [&'static str],
);

fn changes(v: &[EngineLogRecord]) -> Vec<&str> {
    v.iter().map(|r| r.change_id.as_str()).collect()
}

fn anchors(v: &[ObjectState]) -> Vec<(ObjectKind, &str)> {
    v.iter().map(|o| (o.kind, o.anchor.as_str())).collect()
}

/// Job CRUD: creation (off, no watermark), replacing the configuration
/// keeps the state, status, cycles, deletion with objects and log.
pub async fn engine_jobs(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    assert_eq!(s.job(t, "hr").await.unwrap(), None);
    assert!(s.list_jobs(t).await.unwrap().is_empty());
    let config = json!({"source": {"type": "ldap", "url": "ldaps://dir", "password": {"sealed": "AAAA"}},
                        "mappings": [{"target": "userName", "expression": "[uid]"}], "n": 1.5});
    let created = s.put_job(t, "hr", &config).await.unwrap();
    assert_eq!(
        (created.name.as_str(), &created.config, created.status.as_str()),
        ("hr", &config, "off"),
        "a new job is off"
    );
    assert_eq!(
        (&created.watermark, &created.last_cycle),
        (&None, &None),
        "its first cycle is initial"
    );
    assert!(!created.created.is_empty());
    assert_eq!(created.created, created.updated);
    assert_eq!(s.job(t, "hr").await.unwrap(), Some(created.clone()), "round trip");
    // Creating only creates: a taken name is refused and left as it was.
    assert!(s.insert_job(t, "crm", &json!({"v": 1})).await.unwrap());
    assert!(!s.insert_job(t, "crm", &json!({"v": 2})).await.unwrap(), "taken");
    let crm = s.job(t, "crm").await.unwrap().unwrap();
    assert_eq!(
        (crm.config, crm.status.as_str(), crm.watermark),
        (json!({"v": 1}), "off", None)
    );
    s.put_job(t, "crm", &json!({})).await.unwrap();
    let names = |v: Vec<JobRecord>| v.into_iter().map(|j| j.name).collect::<Vec<_>>();
    assert_eq!(names(s.list_jobs(t).await.unwrap()), ["crm", "hr"], "by name");

    assert!(s.set_job_status(t, "hr", "on").await.unwrap());
    assert!(!s.set_job_status(t, "nope", "on").await.unwrap(), "unknown job");
    let wm = json!({"users": "cookie-1", "groups": null});
    s.finish_cycle(t, "hr", Some(&wm), &json!({"created": 3}))
        .await
        .unwrap();
    let j = s.job(t, "hr").await.unwrap().unwrap();
    assert_eq!(j.status, "on");
    assert_eq!(j.watermark, Some(wm.clone()));
    assert_eq!(j.last_cycle, Some(json!({"created": 3})));
    assert!(j.updated >= created.updated);
    // A failed attempt is recorded without touching the watermark.
    let failed = json!({"error": "the target refused the token", "finished": "2030-01-01T00:00:00Z"});
    assert!(s.set_last_cycle(t, "hr", &failed).await.unwrap());
    assert!(!s.set_last_cycle(t, "nope", &failed).await.unwrap(), "unknown job");
    let j2 = s.job(t, "hr").await.unwrap().unwrap();
    assert_eq!((&j2.watermark, &j2.last_cycle), (&Some(wm.clone()), &Some(failed)));
    s.finish_cycle(t, "hr", Some(&wm), &json!({"created": 3}))
        .await
        .unwrap();
    let j = s.job(t, "hr").await.unwrap().unwrap();

    // A new configuration keeps status, watermark, last cycle, creation.
    let config2 = json!({"source": {"type": "csv", "path": "/srv/hr.csv"}});
    let replaced = s.put_job(t, "hr", &config2).await.unwrap();
    let want = JobRecord {
        config: config2.clone(),
        updated: replaced.updated.clone(),
        ..j.clone()
    };
    assert_eq!(replaced, want);
    assert_eq!(s.job(t, "hr").await.unwrap(), Some(want));

    // A cycle that ends without a watermark makes the next one initial.
    s.finish_cycle(t, "hr", None, &json!({"created": 0})).await.unwrap();
    let j = s.job(t, "hr").await.unwrap().unwrap();
    assert_eq!((j.watermark, j.last_cycle), (None, Some(json!({"created": 0}))));
    assert!(
        matches!(
            s.finish_cycle(t, "nope", None, &json!({})).await,
            Err(StoreError::NotFound)
        ),
        "finishing a cycle of an unknown job"
    );

    // Deleting a job takes its objects and log; the other job keeps its own.
    for job in ["hr", "crm"] {
        s.save_objects(
            t,
            job,
            vec![state(ObjectKind::User, "u1", Some("uid=u1"), Some("T1"), true)],
            vec![],
            vec![log_rec(
                job,
                "c1",
                "ch1",
                "2024-01-01T00:00:00.000Z",
                "create",
                "success",
            )],
        )
        .await
        .unwrap();
    }
    assert!(s.delete_job(t, "hr").await.unwrap());
    assert!(!s.delete_job(t, "hr").await.unwrap(), "already gone");
    assert_eq!(s.job(t, "hr").await.unwrap(), None);
    assert_eq!(names(s.list_jobs(t).await.unwrap()), ["crm"]);
    let recreated = s.put_job(t, "hr", &config).await.unwrap();
    assert_eq!((recreated.status.as_str(), recreated.watermark), ("off", None));
    assert!(s.objects(t, "hr", ObjectKind::User).await.unwrap().is_empty());
    assert!(s.pending_objects(t, "hr").await.unwrap().is_empty());
    assert!(
        s.engine_log(t, "hr", log_query(None, None, None))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.objects(t, "crm", ObjectKind::User).await.unwrap().len(), 1);
    assert_eq!(
        s.engine_log(t, "crm", log_query(None, None, None)).await.unwrap().len(),
        1
    );
}

/// A running cycle's progress: written, read back, cleared; per job and
/// per tenant; untouched by the job's other writes.
pub async fn engine_progress(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    let other = tenant(&s, "u").await;
    s.put_job(t, "hr", &json!({})).await.unwrap();
    s.put_job(other, "hr", &json!({})).await.unwrap();
    assert_eq!(s.job_progress(t, "hr").await.unwrap(), None, "no cycle yet");
    let p = json!({"done": 1500, "total": 10200, "started": "2030-01-01T00:00:00.000Z"});
    assert!(s.set_job_progress(t, "hr", Some(&p)).await.unwrap());
    assert!(!s.set_job_progress(t, "nope", Some(&p)).await.unwrap(), "unknown job");
    assert_eq!(s.job_progress(t, "hr").await.unwrap(), Some(p.clone()));
    assert_eq!(s.job_progress(other, "hr").await.unwrap(), None, "another tenant's job");
    assert_eq!(s.job_progress(t, "nope").await.unwrap(), None);
    // The cycle's own writes and an administrator's leave it alone.
    s.finish_cycle(t, "hr", None, &json!({"created": 1})).await.unwrap();
    s.set_last_cycle(t, "hr", &json!({"run_now": true})).await.unwrap();
    s.set_job_status(t, "hr", "on").await.unwrap();
    s.put_job(t, "hr", &json!({"v": 2})).await.unwrap();
    assert_eq!(s.job_progress(t, "hr").await.unwrap(), Some(p));
    assert!(s.set_job_progress(t, "hr", None).await.unwrap());
    assert_eq!(
        s.job_progress(t, "hr").await.unwrap(),
        None,
        "cleared when the cycle ends"
    );

    // The scheduler's view: jobs that are on or quarantined, every tenant.
    s.put_job(other, "crm", &json!({})).await.unwrap();
    s.set_job_status(other, "crm", "quarantined").await.unwrap();
    s.put_job(other, "off", &json!({})).await.unwrap();
    let active: Vec<(i64, String, String, String)> = s
        .active_jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|(tid, tname, j)| (tid, tname, j.name, j.status))
        .collect();
    let want = [
        (t, "t".to_string(), "hr".to_string(), "on".to_string()),
        (other, "u".to_string(), "crm".to_string(), "quarantined".to_string()),
    ];
    for w in &want {
        assert!(active.contains(w), "{w:?} in {active:?}");
    }
    assert_eq!(active.len(), 2, "{active:?}");
}

/// `restart_job` forgets the watermark; with `reset_anchors` also every
/// link (target id) and export of the job, and nothing else.
pub async fn engine_restart(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    for job in ["hr", "other"] {
        s.put_job(t, job, &json!({})).await.unwrap();
    }
    let objects = vec![
        state(ObjectKind::User, "u1", Some("uid=u1"), Some("T1"), false),
        state(ObjectKind::User, "u2", None, None, true),
        state(ObjectKind::Group, "g1", Some("cn=g1"), Some("TG1"), true),
    ];
    for job in ["hr", "other"] {
        s.save_objects(t, job, objects.clone(), vec![], vec![]).await.unwrap();
    }
    let wm = json!("delta-token");
    let summary = json!({"exported": 2});
    s.finish_cycle(t, "hr", Some(&wm), &summary).await.unwrap();
    s.finish_cycle(t, "other", Some(&wm), &summary).await.unwrap();
    let all = |job: &'static str| {
        let s = s.clone();
        async move {
            let mut v = s.objects(t, job, ObjectKind::User).await.unwrap();
            v.extend(s.objects(t, job, ObjectKind::Group).await.unwrap());
            v
        }
    };

    assert!(s.restart_job(t, "hr", false).await.unwrap());
    let j = s.job(t, "hr").await.unwrap().unwrap();
    assert_eq!((j.watermark, j.last_cycle), (None, Some(summary.clone())));
    assert_eq!(all("hr").await, objects, "without reset_anchors the links stay");

    s.finish_cycle(t, "hr", Some(&wm), &summary).await.unwrap();
    assert!(s.restart_job(t, "hr", true).await.unwrap());
    assert_eq!(s.job(t, "hr").await.unwrap().unwrap().watermark, None);
    let unlinked: Vec<ObjectState> = objects
        .iter()
        .map(|o| ObjectState {
            target_id: None,
            exported: Value::Null,
            ..o.clone()
        })
        .collect();
    assert_eq!(all("hr").await, unlinked, "anchors and exports cleared, the rest kept");
    assert_eq!(
        anchors(&s.pending_objects(t, "hr").await.unwrap()),
        [(ObjectKind::User, "u2"), (ObjectKind::Group, "g1")]
    );
    // The tenant's other job is untouched.
    assert_eq!(all("other").await, objects);
    assert_eq!(s.job(t, "other").await.unwrap().unwrap().watermark, Some(wm));
    assert!(!s.restart_job(t, "nope", true).await.unwrap(), "unknown job");
}

/// Saving, replacing and removing objects; lookups by anchor, by source
/// reference and pending.
pub async fn engine_objects(s: Arc<dyn Store>) {
    use ObjectKind::{Group, User};
    let t = tenant(&s, "t").await;
    s.put_job(t, "hr", &json!({})).await.unwrap();
    let u1 = state(User, "u1", Some("uid=u1,ou=people"), Some("T1"), false);
    let u2 = state(User, "u2", Some("uid=u2,ou=people"), None, true);
    let g1 = state(Group, "g1", Some("cn=g1,ou=groups"), Some("TG1"), false);
    // The same anchor as a user: anchors are per kind.
    let gu1 = state(Group, "u1", None, None, true);
    s.save_objects(
        t,
        "hr",
        vec![u1.clone(), u2.clone(), g1.clone(), gu1.clone()],
        vec![],
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(
        s.objects(t, "hr", User).await.unwrap(),
        [u1.clone(), u2.clone()],
        "round trip, by anchor"
    );
    assert_eq!(s.objects(t, "hr", Group).await.unwrap(), [g1.clone(), gu1.clone()]);
    let keys = |v: &[&str]| v.iter().map(|k| k.to_string()).collect::<Vec<_>>();
    // (kind, keys asked for, anchors found)
    let by_anchor: &[(ObjectKind, &[&str], &[&str])] = &[
        (User, &["u2", "missing", "u1", "u2"], &["u1", "u2"]),
        (User, &["g1"], &[]),
        (Group, &["u1"], &["u1"]),
        (Group, &["g1", "u2"], &["g1"]),
        (User, &[], &[]),
    ];
    for (kind, asked, want) in by_anchor {
        let got = s.objects_by_anchor(t, "hr", *kind, &keys(asked)).await.unwrap();
        assert!(got.iter().all(|o| o.kind == *kind));
        assert_eq!(
            got.iter().map(|o| o.anchor.as_str()).collect::<Vec<_>>(),
            *want,
            "{kind:?} {asked:?}"
        );
    }
    // (references asked for, objects found: of any kind, users first)
    let by_ref: &[RefLookup] = &[
        (
            &["uid=u2,ou=people", "cn=g1,ou=groups", "uid=u1,ou=people"],
            &[(User, "u1"), (User, "u2"), (Group, "g1")],
        ),
        (&["UID=U1,OU=PEOPLE", "cn=nobody"], &[]),
        (&[], &[]),
    ];
    for (asked, want) in by_ref {
        let got = s.objects_by_source_ref(t, "hr", &keys(asked)).await.unwrap();
        assert_eq!(anchors(&got), *want, "{asked:?}");
    }
    assert_eq!(
        s.objects_by_source_ref(t, "hr", &keys(&["uid=u1,ou=people"]))
            .await
            .unwrap(),
        std::slice::from_ref(&u1)
    );
    assert_eq!(s.pending_objects(t, "hr").await.unwrap(), [u2.clone(), gu1.clone()]);

    // A second save replaces by kind and anchor, and removes what is listed
    // (unknown keys are no error).
    let u2_linked = ObjectState {
        target_id: Some("T2".into()),
        exported: json!({"image": {"userName": "u2"}}),
        pending: false,
        source_hash: "hash-2".into(),
        source: json!({"cn": "u2", "title": "new"}),
        in_scope: false,
        source_ref: None,
        updated: "2024-02-01T00:00:00.000Z".into(),
        ..u2.clone()
    };
    s.save_objects(
        t,
        "hr",
        vec![u2_linked.clone()],
        vec![(Group, "g1".into()), (User, "nope".into())],
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(s.objects(t, "hr", User).await.unwrap(), [u1.clone(), u2_linked.clone()]);
    assert_eq!(s.objects(t, "hr", Group).await.unwrap(), std::slice::from_ref(&gu1));
    assert_eq!(s.pending_objects(t, "hr").await.unwrap(), std::slice::from_ref(&gu1));
    assert!(
        s.objects_by_source_ref(t, "hr", &keys(&["uid=u2,ou=people", "cn=g1,ou=groups"]))
            .await
            .unwrap()
            .is_empty(),
        "a replaced reference and a removed object are no longer found"
    );

    // One key twice in a batch: the last state wins. Written and removed
    // in one call: writes come first, so it is removed.
    let u3a = state(User, "u3", None, None, true);
    let u3b = state(User, "u3", Some("uid=u3"), Some("T3"), false);
    let u4 = state(User, "u4", None, None, false);
    s.save_objects(t, "hr", vec![u3a, u4, u3b.clone()], vec![(User, "u4".into())], vec![])
        .await
        .unwrap();
    assert_eq!(
        s.objects_by_anchor(t, "hr", User, &keys(&["u3", "u4"])).await.unwrap(),
        [u3b]
    );

    // A save for a job that does not exist fails and writes nothing.
    let err = s
        .save_objects(
            t,
            "nope",
            vec![state(User, "x", None, None, true)],
            vec![],
            vec![log_rec(
                "nope",
                "c",
                "ch",
                "2024-01-01T00:00:00.000Z",
                "create",
                "success",
            )],
        )
        .await;
    assert!(matches!(err, Err(StoreError::NotFound)), "{err:?}");
    assert!(s.objects(t, "nope", User).await.unwrap().is_empty());
    assert!(
        s.engine_log(t, "nope", log_query(None, None, None))
            .await
            .unwrap()
            .is_empty()
    );

    // All or nothing: a batch a backend refuses (PostgreSQL cannot store
    // NUL characters) leaves no trace; one it accepts is stored whole.
    let bad = ObjectState {
        source: json!({"cn": "nul\u{0}"}),
        ..state(User, "v2", None, None, false)
    };
    let batch = vec![state(User, "v1", None, None, false), bad];
    let log = vec![log_rec(
        "hr",
        "c9",
        "ch9",
        "2024-01-01T00:00:00.000Z",
        "create",
        "success",
    )];
    let saved = s.save_objects(t, "hr", batch, vec![(User, "u1".into())], log).await;
    let after = s
        .objects_by_anchor(t, "hr", User, &keys(&["u1", "v1", "v2"]))
        .await
        .unwrap();
    let logged = s.engine_log(t, "hr", log_query(Some("c9"), None, None)).await.unwrap();
    match saved {
        Ok(()) => assert_eq!((anchors(&after), logged.len()), (vec![(User, "v1"), (User, "v2")], 1)),
        Err(StoreError::Invalid(_)) => assert_eq!((anchors(&after), logged.len()), (vec![(User, "u1")], 0)),
        Err(e) => panic!("a NUL character: {e:?}"),
    }
}

/// Log records: appended with their objects, listed newest first, filtered
/// by cycle, status and action, paged with `before_id`.
pub async fn engine_log(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    for job in ["hr", "crm"] {
        s.put_job(t, job, &json!({})).await.unwrap();
    }
    // (cycle, change, action, status)
    let rows = [
        ("c1", "ch1", "create", "success"),
        ("c1", "ch2", "update", "failure"),
        ("c1", "ch3", "create", "skipped"),
        ("c2", "ch4", "delete", "success"),
        ("c2", "ch5", "update", "success"),
        ("c2", "ch6", "update", "warning"),
    ];
    let recs: Vec<EngineLogRecord> = rows
        .iter()
        .enumerate()
        .map(|(i, (c, ch, a, st))| log_rec("hr", c, ch, &format!("2024-01-01T00:00:0{i}.000Z"), a, st))
        .collect();
    let (c1, c2) = recs.split_at(3);
    s.save_objects(t, "hr", vec![], vec![], c1.to_vec()).await.unwrap();
    s.save_objects(
        t,
        "crm",
        vec![],
        vec![],
        vec![log_rec(
            "crm",
            "c1",
            "other",
            "2024-01-01T00:00:00.000Z",
            "create",
            "success",
        )],
    )
    .await
    .unwrap();
    s.save_objects(
        t,
        "hr",
        vec![state(ObjectKind::User, "u1", None, Some("T1"), false)],
        vec![],
        c2.to_vec(),
    )
    .await
    .unwrap();

    let all = s.engine_log(t, "hr", log_query(None, None, None)).await.unwrap();
    assert_eq!(
        changes(&all),
        ["ch6", "ch5", "ch4", "ch3", "ch2", "ch1"],
        "newest first, own job only"
    );
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "ids grow in the order given");
    for (got, sent) in all.iter().zip(recs.iter().rev()) {
        assert_eq!(
            got,
            &EngineLogRecord {
                id: got.id,
                ..sent.clone()
            },
            "round trip"
        );
    }
    // (cycle, status, action, changes listed)
    let filters: &[LogFilter] = &[
        (Some("c1"), None, None, &["ch3", "ch2", "ch1"]),
        (Some("c2"), None, None, &["ch6", "ch5", "ch4"]),
        (Some("c3"), None, None, &[]),
        (None, Some("success"), None, &["ch5", "ch4", "ch1"]),
        (None, Some("failure"), None, &["ch2"]),
        (None, None, Some("update"), &["ch6", "ch5", "ch2"]),
        (None, None, Some("create"), &["ch3", "ch1"]),
        (Some("c2"), Some("success"), Some("update"), &["ch5"]),
        (Some("c1"), Some("success"), Some("update"), &[]),
    ];
    for (cycle, status, action, want) in filters {
        let got = s
            .engine_log(t, "hr", log_query(*cycle, *status, *action))
            .await
            .unwrap();
        assert_eq!(
            changes(&got),
            *want,
            "cycle {cycle:?} status {status:?} action {action:?}"
        );
    }
    // Pages of 4, then the rest, then nothing.
    let mut q = EngineLogQuery {
        limit: 4,
        ..EngineLogQuery::default()
    };
    let p1 = s.engine_log(t, "hr", q.clone()).await.unwrap();
    assert_eq!(changes(&p1), ["ch6", "ch5", "ch4", "ch3"]);
    q.before_id = p1.last().map(|r| r.id);
    let p2 = s.engine_log(t, "hr", q.clone()).await.unwrap();
    assert_eq!(changes(&p2), ["ch2", "ch1"]);
    q.before_id = p2.last().map(|r| r.id);
    assert!(s.engine_log(t, "hr", q).await.unwrap().is_empty());
    // Paging within a filter.
    let mut q = log_query(None, None, Some("update"));
    q.limit = 2;
    q.before_id = Some(all[1].id);
    assert_eq!(changes(&s.engine_log(t, "hr", q).await.unwrap()), ["ch2"]);
    assert_eq!(
        changes(&s.engine_log(t, "crm", log_query(None, None, None)).await.unwrap()),
        ["other"]
    );
    // A record names the job it was saved under.
    s.save_objects(
        t,
        "crm",
        vec![],
        vec![],
        vec![log_rec(
            "hr",
            "c1",
            "stray",
            "2024-01-01T00:00:00.000Z",
            "create",
            "success",
        )],
    )
    .await
    .unwrap();
    let crm = s.engine_log(t, "crm", log_query(None, None, None)).await.unwrap();
    assert_eq!((changes(&crm), crm[0].job.as_str()), (vec!["stray", "other"], "crm"));
    assert_eq!(
        s.engine_log(t, "hr", log_query(None, None, None)).await.unwrap().len(),
        6
    );
}

/// Retention deletes old records of every tenant and job, nothing else.
pub async fn engine_log_purge(s: Arc<dyn Store>) {
    let a = tenant(&s, "a").await;
    let b = tenant(&s, "b").await;
    // (tenant, job, change, day)
    let rows = [
        (a, "hr", "a1", 1),
        (a, "hr", "a2", 2),
        (a, "hr", "a3", 3),
        (a, "crm", "a4", 1),
        (b, "hr", "b1", 1),
        (b, "hr", "b5", 5),
    ];
    for (t, job, ch, day) in rows {
        s.put_job(t, job, &json!({})).await.unwrap();
        let time = format!("2024-01-0{day}T00:00:00.000Z");
        s.save_objects(
            t,
            job,
            vec![state(ObjectKind::User, ch, None, None, false)],
            vec![],
            vec![log_rec(job, "c", ch, &time, "create", "success")],
        )
        .await
        .unwrap();
    }
    assert_eq!(s.purge_engine_log("2024-01-02T12:00:00.000Z").await.unwrap(), 4);
    assert_eq!(s.purge_engine_log("2024-01-02T12:00:00.000Z").await.unwrap(), 0);
    let left = |t, job: &'static str| {
        let s = s.clone();
        async move {
            changes(&s.engine_log(t, job, log_query(None, None, None)).await.unwrap())
                .into_iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(left(a, "hr").await, ["a3"]);
    assert!(left(a, "crm").await.is_empty());
    assert_eq!(left(b, "hr").await, ["b5"]);
    // Objects and jobs are not the log's.
    assert_eq!(s.objects(a, "hr", ObjectKind::User).await.unwrap().len(), 3);
    assert_eq!(s.list_jobs(b).await.unwrap().len(), 1);
}

/// Another tenant's job of the same name is invisible and untouched;
/// deleting a tenant deletes its engine rows.
pub async fn engine_tenant_isolation(s: Arc<dyn Store>) {
    use ObjectKind::User;
    let a = tenant(&s, "a").await;
    let b = tenant(&s, "b").await;
    let keys = |v: &[&str]| v.iter().map(|k| k.to_string()).collect::<Vec<_>>();
    // A name is taken per tenant: both may create `hr`.
    for (t, config) in [(a, json!({"of": "a"})), (b, json!({"of": "b"}))] {
        assert!(s.insert_job(t, "hr", &config).await.unwrap());
    }
    for (t, config) in [(a, json!({"of": "a"})), (b, json!({"of": "b"}))] {
        s.put_job(t, "hr", &config).await.unwrap();
        s.save_objects(
            t,
            "hr",
            vec![
                state(User, "u1", Some("uid=u1"), Some("T1"), true),
                state(User, "u2", Some("uid=u2"), Some("T2"), false),
            ],
            vec![],
            vec![log_rec(
                "hr",
                "c1",
                "ch1",
                "2024-01-01T00:00:00.000Z",
                "create",
                "success",
            )],
        )
        .await
        .unwrap();
    }
    s.put_job(a, "only-a", &json!({})).await.unwrap();
    let b_job = s.job(b, "hr").await.unwrap().unwrap();
    let b_objects = s.objects(b, "hr", User).await.unwrap();
    let b_log = s.engine_log(b, "hr", log_query(None, None, None)).await.unwrap();

    // Tenant a changes everything it can of its `hr`.
    s.put_job(a, "hr", &json!({"of": "a", "v": 2})).await.unwrap();
    assert!(s.set_job_status(a, "hr", "on").await.unwrap());
    s.finish_cycle(a, "hr", Some(&json!("wm")), &json!({})).await.unwrap();
    assert!(s.set_last_cycle(a, "hr", &json!({"error": "x"})).await.unwrap());
    assert!(s.restart_job(a, "hr", true).await.unwrap());
    s.save_objects(
        a,
        "hr",
        vec![state(User, "u3", Some("uid=u3"), None, true)],
        vec![(User, "u1".into())],
        vec![log_rec(
            "hr",
            "c2",
            "ch2",
            "2024-01-02T00:00:00.000Z",
            "update",
            "failure",
        )],
    )
    .await
    .unwrap();
    let b_sees = || {
        let s = s.clone();
        async move {
            (
                s.job(b, "hr").await.unwrap(),
                s.list_jobs(b).await.unwrap().len(),
                s.objects(b, "hr", User).await.unwrap(),
                s.engine_log(b, "hr", log_query(None, None, None)).await.unwrap(),
            )
        }
    };
    assert_eq!(
        b_sees().await,
        (Some(b_job.clone()), 1, b_objects.clone(), b_log.clone())
    );
    // b's lookups find b's objects only.
    assert_eq!(
        anchors(&s.objects_by_anchor(b, "hr", User, &keys(&["u1", "u3"])).await.unwrap()),
        [(User, "u1")]
    );
    assert_eq!(
        anchors(
            &s.objects_by_source_ref(b, "hr", &keys(&["uid=u1", "uid=u3"]))
                .await
                .unwrap()
        ),
        [(User, "u1")]
    );
    assert_eq!(anchors(&s.pending_objects(b, "hr").await.unwrap()), [(User, "u1")]);
    assert_eq!(anchors(&s.pending_objects(a, "hr").await.unwrap()), [(User, "u3")]);

    // A job of tenant a does not exist for tenant b.
    assert_eq!(s.job(b, "only-a").await.unwrap(), None);
    assert!(!s.set_job_status(b, "only-a", "on").await.unwrap());
    assert!(!s.restart_job(b, "only-a", true).await.unwrap());
    assert!(matches!(
        s.finish_cycle(b, "only-a", None, &json!({})).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.save_objects(b, "only-a", vec![], vec![], vec![]).await,
        Err(StoreError::NotFound)
    ));
    assert!(!s.delete_job(b, "only-a").await.unwrap());
    assert!(s.job(a, "only-a").await.unwrap().is_some());

    // Deleting a's `hr` leaves b's.
    assert!(s.delete_job(a, "hr").await.unwrap());
    assert_eq!(
        b_sees().await,
        (Some(b_job.clone()), 1, b_objects.clone(), b_log.clone())
    );

    // Deleting tenant b takes its jobs, objects and log; a keeps its own.
    s.put_job(a, "hr", &json!({})).await.unwrap();
    s.save_objects(
        a,
        "hr",
        vec![state(User, "u9", None, None, true)],
        vec![],
        vec![log_rec(
            "hr",
            "c",
            "ch9",
            "2024-01-01T00:00:00.000Z",
            "create",
            "success",
        )],
    )
    .await
    .unwrap();
    assert!(s.delete_tenant("b").await.unwrap());
    assert_eq!(
        b_sees().await,
        (None, 0, vec![], vec![]),
        "read with the deleted tenant's id"
    );
    assert!(s.pending_objects(b, "hr").await.unwrap().is_empty());
    assert!(
        s.objects_by_anchor(b, "hr", User, &keys(&["u1", "u2"]))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.list_jobs(a).await.unwrap().len(), 2);
    assert_eq!(anchors(&s.pending_objects(a, "hr").await.unwrap()), [(User, "u9")]);
    assert_eq!(
        s.engine_log(a, "hr", log_query(None, None, None)).await.unwrap().len(),
        1
    );
}

/// Ten thousand objects of about 1 KB of JSON each in one save, looked up
/// by thousands of keys at once, then half replaced or removed in one
/// save. Counts, not time (the time is printed for `--nocapture`).
pub async fn engine_many_objects(s: Arc<dyn Store>) {
    const N: usize = 10_000;
    let t = tenant(&s, "t").await;
    s.put_job(t, "big", &json!({})).await.unwrap();
    let filler = "x".repeat(800);
    let object = |i: usize| {
        let kind = if i.is_multiple_of(2) {
            ObjectKind::User
        } else {
            ObjectKind::Group
        };
        ObjectState {
            kind,
            anchor: format!("anchor-{i:05}"),
            source_ref: Some(format!("uid=user{i},ou=people,dc=example,dc=com")),
            source_hash: format!("{i:064x}"),
            source: json!({"uid": format!("user{i}"), "cn": format!("User {i}"), "mail": [format!("user{i}@example.com")],
                           "title": "Engineer", "manager": "uid=boss,ou=people,dc=example,dc=com", "notes": filler}),
            in_scope: !i.is_multiple_of(7),
            target_id: (!i.is_multiple_of(3)).then(|| format!("target-{i}")),
            exported: json!({"image": {"userName": format!("user{i}"), "active": true}}),
            pending: i.is_multiple_of(10),
            updated: "2024-01-01T00:00:00.000Z".into(),
            // Some escrowed, one in ten of the pending ones a reference.
            escrow: i.is_multiple_of(10).then(|| Escrow {
                attempts: 2,
                first_failed: "2024-01-01T00:00:00.000Z".into(),
                next_attempt: "2024-01-01T01:00:00.000Z".into(),
                error: "SystemForCrossDomainIdentityManagementServiceIncompatible".into(),
                reference: i.is_multiple_of(100),
            }),
        }
    };
    let objects: Vec<ObjectState> = (0..N).map(object).collect();
    let bytes: usize = objects.iter().map(|o| o.source.to_string().len()).sum();
    assert!(bytes / N > 900, "about 1 KB each: {}", bytes / N);
    let log: Vec<EngineLogRecord> = (0..N)
        .map(|i| {
            log_rec(
                "big",
                "c1",
                &format!("ch{i}"),
                "2024-01-01T00:00:00.000Z",
                "create",
                "success",
            )
        })
        .collect();
    let started = std::time::Instant::now();
    s.save_objects(t, "big", objects.clone(), vec![], log).await.unwrap();
    eprintln!(
        "engine_many_objects: {N} objects and log records saved in {:?}",
        started.elapsed()
    );

    let users = s.objects(t, "big", ObjectKind::User).await.unwrap();
    assert_eq!(
        (users.len(), s.objects(t, "big", ObjectKind::Group).await.unwrap().len()),
        (N / 2, N / 2)
    );
    assert_eq!(users[0], objects[0]);
    let user_anchors: Vec<String> = users.iter().map(|o| o.anchor.clone()).collect();
    let started = std::time::Instant::now();
    assert_eq!(
        s.objects_by_anchor(t, "big", ObjectKind::User, &user_anchors)
            .await
            .unwrap()
            .len(),
        N / 2
    );
    eprintln!(
        "engine_many_objects: {} anchors looked up in {:?}",
        N / 2,
        started.elapsed()
    );
    let refs: Vec<String> = objects.iter().filter_map(|o| o.source_ref.clone()).collect();
    assert_eq!(s.objects_by_source_ref(t, "big", &refs).await.unwrap().len(), N);
    assert_eq!(s.pending_objects(t, "big").await.unwrap().len(), N / 10);
    // Escrowed objects, failures and references apart.
    assert_eq!(
        s.escrow_counts(t, "big").await.unwrap(),
        (
            u64::try_from(N / 10 - N / 100).unwrap(),
            u64::try_from(N / 100).unwrap()
        )
    );
    assert_eq!(
        s.engine_log(t, "big", log_query(Some("c1"), None, None))
            .await
            .unwrap()
            .len(),
        100,
        "limited"
    );

    // Replace the first half (none pending any more), remove the second.
    let replaced: Vec<ObjectState> = objects[..N / 2]
        .iter()
        .map(|o| ObjectState {
            pending: false,
            source_hash: "changed".into(),
            ..o.clone()
        })
        .collect();
    let removed: Vec<(ObjectKind, String)> = objects[N / 2..].iter().map(|o| (o.kind, o.anchor.clone())).collect();
    let started = std::time::Instant::now();
    s.save_objects(t, "big", replaced, removed, vec![]).await.unwrap();
    eprintln!(
        "engine_many_objects: {} replaced and {} removed in {:?}",
        N / 2,
        N / 2,
        started.elapsed()
    );
    let users = s.objects(t, "big", ObjectKind::User).await.unwrap();
    assert_eq!(users.len(), N / 4);
    assert!(users.iter().all(|o| o.source_hash == "changed" && !o.pending));
    assert!(s.pending_objects(t, "big").await.unwrap().is_empty());
    assert_eq!(s.objects_by_source_ref(t, "big", &refs).await.unwrap().len(), N / 2);

    // A restart tries escrowed objects again at once: their escrow goes,
    // they stay pending.
    let escrowed = ObjectState {
        pending: true,
        escrow: objects[0].escrow.clone(),
        ..objects[0].clone()
    };
    assert!(escrowed.escrow.is_some());
    s.save_objects(t, "big", vec![escrowed], vec![], vec![]).await.unwrap();
    assert_eq!(s.escrow_counts(t, "big").await.unwrap(), (0, 1));
    assert!(s.restart_job(t, "big", false).await.unwrap());
    assert_eq!(s.escrow_counts(t, "big").await.unwrap(), (0, 0));
    let pending = s.pending_objects(t, "big").await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].escrow, None);

    // Dropping the escrow (a job disabled after 28 days): escrowed objects
    // are neither escrowed nor pending; others stay as they were.
    let failed = ObjectState {
        pending: true,
        escrow: objects[0].escrow.clone(),
        ..objects[0].clone()
    };
    s.save_objects(t, "big", vec![failed], vec![], vec![]).await.unwrap();
    let other = tenant(&s, "other-big").await;
    s.put_job(other, "big", &json!({})).await.unwrap();
    assert_eq!(s.drop_escrow(other, "big").await.unwrap(), 0, "another tenant's job");
    assert_eq!(s.drop_escrow(t, "big").await.unwrap(), 1);
    assert_eq!(s.escrow_counts(t, "big").await.unwrap(), (0, 0));
    assert!(s.pending_objects(t, "big").await.unwrap().is_empty());
    assert_eq!(
        s.objects(t, "big", ObjectKind::User).await.unwrap().len(),
        N / 4,
        "kept"
    );
}

/// The custom resource type of [`custom_typed_attributes`].
fn custom_rt() -> Arc<scimitar_protocol::schema::ResourceType> {
    let mut custom = (*rt(Kind::User)).clone();
    let schema = serde_json::from_value(json!({"id": CUSTOM, "name": "Custom", "attributes": [
        {"name": "level", "type": "integer", "multiValued": false},
        {"name": "hired", "type": "dateTime", "multiValued": false}
    ]}))
    .unwrap();
    custom.extensions.push((schema, false));
    Arc::new(custom)
}

/// Integers compare as integers (not as doubles, which cannot tell 2^53
/// from 2^53 + 1 or 2^63 - 1 from 2^63 - 2), and dateTimes as instants,
/// whatever form a stored value has (documents stored before values were
/// normalised on write: offsets, lower-case `t`/`z`, a space). A value a
/// backend cannot read as an instant never fails a query.
pub async fn exact_numbers_and_instants(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    let custom = custom_rt();
    for (id, level, hired) in [
        ("n1", json!(9_223_372_036_854_775_807_i64), "2020-01-01T12:00:00Z"),
        ("n2", json!(9_223_372_036_854_775_806_i64), "2020-01-01T00:00:00+14:00"),
        ("n3", json!(i64::MIN), "2020-01-01t05:00:00z"),
        ("n4", json!(9_007_199_254_740_993_i64), "2020-01-01T05:00:00.5Z"),
        ("n5", Value::Null, "2020-01-01 05:00:00.25Z"),
    ] {
        let mut ext = json!({"hired": hired});
        if !level.is_null() {
            ext["level"] = level;
        }
        user(&s, t, id, json!({"userName": id, CUSTOM: ext}), &ts(1)).await;
    }
    let filters: &[(&str, &[&str])] = &[
        ("level eq 9223372036854775806", &["n2"]),
        ("level gt 9223372036854775806", &["n1"]),
        ("level ge 9223372036854775806", &["n1", "n2"]),
        ("level lt -9223372036854775807", &["n3"]),
        ("level eq 9007199254740992", &[]),
        ("level eq 9007199254740993", &["n4"]),
        ("level ne 9007199254740993", &["n1", "n2", "n3", "n5"]),
        (r#"level eq "9223372036854775807""#, &["n1"]),
        (r#"level gt "9223372036854775806""#, &["n1"]),
        (r#"hired gt "2020-01-01T05:00:00Z""#, &["n1", "n4", "n5"]),
        (r#"hired eq "2020-01-01T05:00:00Z""#, &["n3"]),
        (r#"hired eq "2020-01-01t05:00:00z""#, &["n3"]),
        (r#"hired lt "2020-01-01T00:00:00Z""#, &["n2"]),
        (r#"hired eq "2019-12-31T10:00:00Z""#, &["n2"]),
        (r#"hired ge "2020-01-01T05:00:00.25Z""#, &["n1", "n4", "n5"]),
        (r#"hired le "2020-01-01T06:00:00+01:00""#, &["n2", "n3"]),
    ];
    let mut failures = Vec::new();
    for (f, want) in filters {
        let q = Q {
            filter: Some(f),
            ..Q::default()
        };
        match list_rt(&s, t, Kind::User, custom.clone(), q).await {
            Ok(page) if ids(&page) == *want => {}
            Ok(page) => failures.push(format!("{f}: {:?}, want {want:?}", ids(&page))),
            Err(e) => failures.push(format!("{f}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The evaluator never reads quoted numbers as numbers (plan::Literal).
    let informative: Vec<&str> = filters
        .iter()
        .filter(|(f, want)| {
            let quoted_number = f.starts_with("level") && f.contains('"');
            !want.is_empty() && !quoted_number
        })
        .map(|(f, _)| *f)
        .collect();
    differential_rt(&s, t, Kind::User, custom.clone(), &informative).await;
    for (by, order, want) in [
        ("level", Descending, ["n1", "n2", "n4", "n3", "n5"]),
        ("level", Ascending, ["n3", "n4", "n2", "n1", "n5"]),
        ("hired", Ascending, ["n2", "n3", "n5", "n4", "n1"]),
        ("hired", Descending, ["n1", "n4", "n5", "n3", "n2"]),
    ] {
        let q = Q {
            sort: Some((by, order)),
            ..Q::default()
        };
        let page = list_rt(&s, t, Kind::User, custom.clone(), q).await;
        assert_eq!(
            ids(&page.unwrap_or_else(|e| panic!("{by}: {e}"))),
            want,
            "sortBy={by} {order:?}"
        );
    }
    // Values that are RFC 3339 but that PostgreSQL cannot cast (an offset
    // beyond ±15:59, the year 0): filters and sorting still answer.
    let u = tenant(&s, "odd").await;
    for (id, hired) in [
        ("o1", "2020-01-02T00:00:00+23:59"),
        ("o2", "0000-06-01T00:00:00Z"),
        ("o3", "2021-01-01T00:00:00Z"),
    ] {
        user(&s, u, id, json!({"userName": id, CUSTOM: {"hired": hired}}), &ts(1)).await;
    }
    for f in [
        r#"hired gt "2020-06-01T00:00:00Z""#,
        r#"hired lt "2020-06-01T00:00:00Z""#,
        r#"hired ne "2020-06-01T00:00:00Z""#,
    ] {
        let q = Q {
            filter: Some(f),
            ..Q::default()
        };
        let page = list_rt(&s, u, Kind::User, custom.clone(), q)
            .await
            .unwrap_or_else(|e| panic!("{f}: {e}"));
        if f.contains(" gt ") {
            assert_eq!(ids(&page), ["o3"], "{f}");
        }
    }
    let q = Q {
        sort: Some(("hired", Ascending)),
        ..Q::default()
    };
    let page = list_rt(&s, u, Kind::User, custom.clone(), q)
        .await
        .unwrap_or_else(|e| panic!("sortBy=hired: {e}"));
    assert_eq!(page.records.len(), 3);
}

/// `cleartext_passwords` finds the users of one tenant whose `password` is
/// not an argon2 PHC string, in insertion order, paged.
pub async fn cleartext_passwords(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    let other = tenant(&s, "other").await;
    let phc = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$ZHVtbXloYXNodmFsdWVoZXJlZHVtbXloYXNodmFsdWU";
    for (id, password) in [
        ("p1", Some("Secr3t!")),
        ("p2", Some(phc)),
        ("p3", None),
        ("p4", Some("hunter2")),
    ] {
        let mut doc = json!({"userName": id});
        if let Some(p) = password {
            doc["password"] = json!(p);
        }
        user(&s, t, id, doc, &ts(1)).await;
    }
    group(&s, t, "g1", "password", &[], &ts(1)).await;
    user(
        &s,
        other,
        "o1",
        json!({"userName": "o1", "password": "elsewhere"}),
        &ts(1),
    )
    .await;
    let found = |recs: Vec<scimitar_store::Record>| recs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let all = s.cleartext_passwords(t, 0, 100).await.unwrap();
    let after_first = all[0].seq;
    assert_eq!(found(all), ["p1", "p4"]);
    assert_eq!(found(s.cleartext_passwords(t, 0, 1).await.unwrap()), ["p1"]);
    assert_eq!(found(s.cleartext_passwords(t, after_first, 100).await.unwrap()), ["p4"]);
    assert_eq!(found(s.cleartext_passwords(other, 0, 100).await.unwrap()), ["o1"]);
    s.modify(
        t,
        Kind::User,
        "p1",
        None,
        &ts(2),
        set_doc(json!({"userName": "p1", "password": phc})),
    )
    .await
    .unwrap();
    assert_eq!(found(s.cleartext_passwords(t, 0, 100).await.unwrap()), ["p4"]);
}

fn uv(attribute: &str, value: &str) -> scimitar_store::UniqueValue {
    scimitar_store::UniqueValue {
        attribute: format!("{CUSTOM}:{attribute}"),
        value: value.into(),
    }
}

fn take(add: Vec<scimitar_store::UniqueValue>, remove: Vec<scimitar_store::UniqueValue>) -> scimitar_store::ModifyFn {
    let change = scimitar_store::UniqueChange { add, remove };
    Arc::new(move |cur: &scimitar_store::Record, _| {
        let mut doc = cur.doc.clone();
        // A change of the document, so that the write happens.
        let n = doc.get("n").and_then(Value::as_i64).unwrap_or(0);
        doc.insert("n".into(), json!(n + 1));
        Ok(Mutation {
            events: Default::default(),
            doc,
            member_ops: vec![],
            activity: None,
            unique: change.clone(),
        })
    })
}

async fn create_unique(
    s: &Arc<dyn Store>,
    t: scimitar_store::TenantId,
    kind: Kind,
    id: &str,
    unique: Vec<scimitar_store::UniqueValue>,
) -> Result<scimitar_store::Record, StoreError> {
    let key = if kind == Kind::User { "userName" } else { "displayName" };
    s.create(
        t,
        NewResource {
            events: Default::default(),
            kind,
            id: id.into(),
            doc: obj(json!({key: id})),
            members: vec![],
            created: ts(1),
            activity: None,
            unique,
        },
    )
    .await
}

/// Unique values are taken in the write's transaction: a second resource
/// taking one fails with `Conflict` naming the attribute, and changes
/// nothing; values given up, or of deleted resources, are free again; the
/// scope is one tenant and one kind.
pub async fn unique_values(s: Arc<dyn Store>) {
    let t = tenant(&s, "t").await;
    let other = tenant(&s, "other").await;
    let conflict = |r: Result<scimitar_store::Record, StoreError>| match r {
        Err(StoreError::Conflict(a)) => a,
        other => panic!("expected a conflict, got {other:?}"),
    };
    create_unique(&s, t, Kind::User, "u1", vec![uv("badge", "x"), uv("tags", "a")])
        .await
        .unwrap();
    let a = conflict(create_unique(&s, t, Kind::User, "u2", vec![uv("badge", "x")]).await);
    assert_eq!(a, format!("{CUSTOM}:badge"));
    assert!(s.get(t, Kind::User, "u2").await.unwrap().is_none(), "nothing created");
    create_unique(&s, other, Kind::User, "u2", vec![uv("badge", "x")])
        .await
        .expect("another tenant");
    create_unique(&s, t, Kind::Group, "g1", vec![uv("badge", "x")])
        .await
        .expect("another kind");
    create_unique(&s, t, Kind::User, "u2", vec![uv("badge", "y")])
        .await
        .unwrap();
    // A User (SQLite computes its change outside the writer) and a Group.
    let before = s.get(t, Kind::User, "u2").await.unwrap().unwrap();
    let e = s
        .modify(
            t,
            Kind::User,
            "u2",
            None,
            &ts(2),
            take(vec![uv("badge", "x")], vec![uv("badge", "y")]),
        )
        .await;
    assert!(matches!(e, Err(StoreError::Conflict(_))), "{e:?}");
    let after = s.get(t, Kind::User, "u2").await.unwrap().unwrap();
    assert_eq!(after.version, before.version, "nothing changed");
    create_unique(&s, t, Kind::Group, "g2", vec![uv("badge", "z")])
        .await
        .unwrap();
    let e = s
        .modify(t, Kind::Group, "g2", None, &ts(2), take(vec![uv("badge", "x")], vec![]))
        .await;
    assert!(matches!(e, Err(StoreError::Conflict(_))), "{e:?}");
    // Given up, then free.
    s.modify(
        t,
        Kind::User,
        "u1",
        None,
        &ts(2),
        take(vec![uv("badge", "w")], vec![uv("badge", "x")]),
    )
    .await
    .unwrap();
    s.modify(
        t,
        Kind::User,
        "u2",
        None,
        &ts(3),
        take(vec![uv("badge", "x")], vec![uv("badge", "y")]),
    )
    .await
    .expect("x was given up");
    // Keeping a value it has is no conflict.
    s.modify(t, Kind::User, "u2", None, &ts(4), take(vec![uv("badge", "x")], vec![]))
        .await
        .unwrap();
    // A deleted resource's values are free.
    s.delete(t, Kind::User, "u1", None).await.unwrap();
    create_unique(&s, t, Kind::User, "u3", vec![uv("badge", "w"), uv("tags", "a")])
        .await
        .expect("u1's values are free");

    // Entering stored values: those another resource has are returned.
    let held = s
        .claim_unique(t, Kind::User, "u4", vec![uv("badge", "x"), uv("badge", "v")])
        .await
        .unwrap();
    assert_eq!(held, vec![uv("badge", "x")]);
    let again = s
        .claim_unique(t, Kind::User, "u4", vec![uv("badge", "v")])
        .await
        .unwrap();
    assert!(again.is_empty(), "its own value");
    // An extension's values are forgotten at once.
    s.drop_unique_values(t, CUSTOM).await.unwrap();
    create_unique(&s, t, Kind::User, "u5", vec![uv("badge", "x"), uv("badge", "v")])
        .await
        .expect("dropped");
    // Concurrent creates of one value: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            create_unique(&s, t, Kind::User, &format!("race{i}"), vec![uv("badge", "race")])
                .await
                .is_ok()
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await.unwrap());
    }
    assert_eq!(won, 1, "exactly one concurrent create takes the value");
    // The marks of indexes to build.
    assert!(s.unique_backfills().await.unwrap().is_empty());
    s.set_unique_backfill(t, Kind::User, true).await.unwrap();
    s.set_unique_backfill(t, Kind::User, true).await.unwrap();
    s.set_unique_backfill(other, Kind::Group, true).await.unwrap();
    assert_eq!(
        s.unique_backfills().await.unwrap(),
        vec![(t, Kind::User), (other, Kind::Group)]
    );
    s.set_unique_backfill(t, Kind::User, false).await.unwrap();
    assert_eq!(s.unique_backfills().await.unwrap(), vec![(other, Kind::Group)]);
    // A tenant's rows go with it.
    assert!(s.delete_tenant("other").await.unwrap());
    assert!(s.unique_backfills().await.unwrap().is_empty());
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
    // Refreshing the planner's statistics (after an import) changes no data.
    s.refresh_statistics().await.unwrap();
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

fn ev(kind: &str, subject: &str) -> scimitar_store::NewEvent {
    scimitar_store::NewEvent::new(kind, Some(subject), json!({"id": subject}))
}

fn change_events(events: Vec<scimitar_store::NewEvent>, group: Option<&str>) -> scimitar_store::ChangeEvents {
    scimitar_store::ChangeEvents {
        events,
        change: None,
        members: group.map(|g| scimitar_store::MemberEvents {
            group: g.to_string(),
            data: serde_json::value::to_raw_value(&json!({"id": g, "group": {"id": g}})).unwrap(),
        }),
    }
}

/// A modification that sets `doc` (or keeps it), applies `ops` and
/// carries `events` (member events for group `g`).
fn evented(
    doc: Option<Value>,
    ops: Vec<MemberOp>,
    events: Vec<scimitar_store::NewEvent>,
    group: Option<&str>,
) -> scimitar_store::ModifyFn {
    let doc = doc.map(obj);
    let events = change_events(events, group);
    Arc::new(move |cur: &scimitar_store::Record, _| {
        Ok(Mutation {
            doc: doc.clone().unwrap_or_else(|| cur.doc.clone()),
            member_ops: ops.clone(),
            activity: None,
            unique: Default::default(),
            events: events.clone(),
        })
    })
}

/// `(type, subject or member)` of every event of the tenant, in order.
async fn event_list(s: &Arc<dyn Store>, t: scimitar_store::TenantId) -> Vec<(i64, String, String)> {
    s.list_events(t, 0, 1000, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            let who = e.data["user"]["id"]
                .as_str()
                .or(e.data["id"].as_str())
                .unwrap_or_default()
                .to_string();
            (e.seq, e.event_type, who)
        })
        .collect()
}

pub async fn events(s: Arc<dyn Store>) {
    let t = tenant(&s, "ev").await;
    let other = tenant(&s, "other").await;
    let create = |id: &str, doc: Value, kind: Kind, members: Vec<&str>, events, group: Option<&str>| NewResource {
        kind,
        id: id.into(),
        doc: obj(doc),
        members: members.into_iter().map(member).collect(),
        created: ts(1),
        activity: None,
        unique: vec![],
        events: change_events(events, group),
    };
    s.create(
        t,
        create(
            "u1",
            json!({"userName": "a"}),
            Kind::User,
            vec![],
            vec![ev("user.created", "u1")],
            None,
        ),
    )
    .await
    .unwrap();
    s.create(
        t,
        create(
            "u2",
            json!({"userName": "b"}),
            Kind::User,
            vec![],
            vec![ev("user.created", "u2")],
            None,
        ),
    )
    .await
    .unwrap();
    // A create that fails stores no event.
    let dup = create(
        "u1",
        json!({"userName": "z"}),
        Kind::User,
        vec![],
        vec![ev("user.created", "dup")],
        None,
    );
    assert!(s.create(t, dup).await.is_err());
    let taken = create(
        "u9",
        json!({"userName": "a"}),
        Kind::User,
        vec![],
        vec![ev("user.created", "u9")],
        None,
    );
    assert!(matches!(s.create(t, taken).await, Err(StoreError::Conflict(_))));
    // A change stores its events; a no-op and a failed precondition none.
    let f = evented(
        Some(json!({"userName": "a2"})),
        vec![],
        vec![ev("user.updated", "u1")],
        None,
    );
    s.modify(t, Kind::User, "u1", None, &ts(2), f).await.unwrap();
    let f = evented(None, vec![], vec![ev("user.updated", "noop")], None);
    s.modify(t, Kind::User, "u1", None, &ts(2), f).await.unwrap();
    let f = evented(
        Some(json!({"userName": "a3"})),
        vec![],
        vec![ev("user.updated", "stale")],
        None,
    );
    assert!(matches!(
        s.modify(t, Kind::User, "u1", Some(1), &ts(2), f).await,
        Err(StoreError::PreconditionFailed)
    ));
    // Member events: one per member actually added or removed.
    let g = create(
        "g1",
        json!({"displayName": "G"}),
        Kind::Group,
        vec!["u1"],
        vec![ev("group.created", "g1")],
        Some("g1"),
    );
    s.create(t, g).await.unwrap();
    let add = |ids: &[&str]| MemberOp::Add(ids.iter().map(|i| member(i)).collect());
    let f = evented(None, vec![add(&["u1", "u2"])], vec![], Some("g1"));
    s.modify(t, Kind::Group, "g1", None, &ts(3), f).await.unwrap();
    let f = evented(None, vec![add(&["u1", "u2"])], vec![], Some("g1"));
    s.modify(t, Kind::Group, "g1", None, &ts(3), f).await.unwrap();
    let f = evented(
        None,
        vec![MemberOp::Remove(vec!["u2".into(), "nobody".into()])],
        vec![],
        Some("g1"),
    );
    s.modify(t, Kind::Group, "g1", None, &ts(3), f).await.unwrap();
    // A replace: u1 leaves, u2 comes.
    let f = evented(None, vec![MemberOp::Clear, add(&["u2"])], vec![], Some("g1"));
    s.modify(t, Kind::Group, "g1", None, &ts(3), f).await.unwrap();
    // An unknown member fails the whole change: no event.
    let f = evented(
        Some(json!({"displayName": "G2"})),
        vec![add(&["u1", "ghost"])],
        vec![ev("group.updated", "g1-failed")],
        Some("g1"),
    );
    assert!(s.modify(t, Kind::Group, "g1", None, &ts(3), f).await.is_err());
    // A delete's events are computed from the record as stored.
    let f: scimitar_store::DeleteEventsFn = Arc::new(|r: &scimitar_store::Record| {
        Ok(vec![scimitar_store::NewEvent::new(
            "user.deleted",
            Some(&r.id),
            json!({"id": r.id, "userName": r.doc["userName"]}),
        )])
    });
    assert!(matches!(
        s.delete_with_events(t, Kind::User, "u2", Some(99), Some(f.clone()))
            .await,
        Err(StoreError::PreconditionFailed)
    ));
    s.delete_with_events(t, Kind::User, "u2", None, Some(f)).await.unwrap();
    // Token events, in the token's transaction.
    s.create_token_with_events(
        t,
        tok("tk", "ci", "scim_XXXX", "scim", 9),
        vec![ev("tenant.token_created", "tk")],
    )
    .await
    .unwrap();
    assert!(
        s.revoke_token_with_events(t, "tk", vec![ev("tenant.token_revoked", "tk")])
            .await
            .unwrap()
    );
    assert!(
        !s.revoke_token_with_events(t, "tk", vec![ev("tenant.token_revoked", "again")])
            .await
            .unwrap()
    );

    let got = event_list(&s, t).await;
    let expected = [
        ("user.created", "u1"),
        ("user.created", "u2"),
        ("user.updated", "u1"),
        ("group.created", "g1"),
        ("group.user_added", "u1"),
        ("group.user_added", "u2"),
        ("group.user_removed", "u2"),
        ("group.user_removed", "u1"),
        ("group.user_added", "u2"),
        ("user.deleted", "u2"),
        ("tenant.token_created", "tk"),
        ("tenant.token_revoked", "tk"),
    ];
    let types: Vec<(&str, &str)> = got.iter().map(|(_, t, w)| (t.as_str(), w.as_str())).collect();
    assert_eq!(types, expected);
    let seqs: Vec<i64> = got.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(seqs, (1..=expected.len() as i64).collect::<Vec<_>>());
    let all = s.list_events(t, 0, 1000, &[]).await.unwrap();
    assert_eq!(all[9].data["userName"], "b", "the deleted user's last state");
    let mut ids: Vec<&str> = all.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "event ids are unique");
    // Each event's subject (webhooks are ordered by it): the resource, the
    // group of a member event, the token.
    for ((_, kind, who), e) in got.iter().zip(&all) {
        let want = if kind.starts_with("group.user_") {
            "g1"
        } else {
            who.as_str()
        };
        assert_eq!(e.subject.as_deref(), Some(want), "{kind}");
    }
    // The same events with their payloads as stored text.
    let raw = s.list_raw_events(t, 0, 1000).await.unwrap();
    assert_eq!(raw.len(), all.len());
    for (r, e) in raw.iter().zip(&all) {
        assert_eq!(
            (&r.id, r.seq, &r.time, &r.event_type, &r.subject),
            (&e.id, e.seq, &e.time, &e.event_type, &e.subject)
        );
        assert_eq!(serde_json::from_str::<serde_json::Value>(&r.data).unwrap(), e.data);
    }
    let raw_page = s.list_raw_events(t, 3, 2).await.unwrap();
    assert_eq!(raw_page.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
    assert!(s.list_raw_events(other, 0, 100).await.unwrap().is_empty());
    // Paging, types, and tenant isolation.
    let page = s.list_events(t, 3, 2, &[]).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
    let only = s
        .list_events(
            t,
            0,
            100,
            &["group.user_removed".to_string(), "user.deleted".to_string()],
        )
        .await
        .unwrap();
    assert_eq!(only.iter().map(|e| e.seq).collect::<Vec<_>>(), [7, 8, 10]);
    assert!(s.list_events(other, 0, 100, &[]).await.unwrap().is_empty());
    assert_eq!(s.last_event_seq(t).await.unwrap(), expected.len() as i64);
    assert_eq!(s.last_event_seq(other).await.unwrap(), 0);
    // Another tenant numbers its own events from 1.
    s.record_events(other, vec![ev("tenant.token_created", "x")])
        .await
        .unwrap();
    assert_eq!(s.list_events(other, 0, 100, &[]).await.unwrap()[0].seq, 1);
    assert_eq!(s.last_event_seq(other).await.unwrap(), 1);
}

pub async fn events_purge(s: Arc<dyn Store>) {
    let t = tenant(&s, "ev").await;
    let mut old = ev("user.created", "old");
    old.time = ts(1);
    s.record_events(t, vec![old, ev("user.created", "new")]).await.unwrap();
    assert_eq!(s.list_events(t, 0, 10, &[]).await.unwrap().len(), 2);
    assert_eq!(s.purge_events(&ts(6)).await.unwrap(), 1);
    let left = s.list_events(t, 0, 10, &[]).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].seq, 2);
    // Numbers go on after a purge, never back.
    s.purge_events("9999").await.unwrap();
    s.record_events(t, vec![ev("user.created", "later")]).await.unwrap();
    assert_eq!(s.list_events(t, 0, 10, &[]).await.unwrap()[0].seq, 3);
    // A deleted tenant's events go with it.
    assert!(s.delete_tenant("ev").await.unwrap());
    assert!(s.list_events(t, 0, 10, &[]).await.unwrap().is_empty());
}

/// Many writers at once while a reader follows the cursor: the reader
/// never skips an event (one committed later with a number below one it
/// read), so what it saw is exactly what the table holds at the end, and
/// each resource's events are in the order of its changes.
pub async fn events_concurrent_readers_skip_nothing(s: Arc<dyn Store>) {
    let t = tenant(&s, "ev").await;
    let writers = 8;
    let per = 25;
    for w in 0..writers {
        user(&s, t, &format!("w{w}"), json!({"userName": format!("w{w}")}), &ts(1)).await;
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (s, done) = (s.clone(), done.clone());
        tokio::spawn(async move {
            let mut after = 0;
            let mut seen: Vec<(i64, String, String)> = Vec::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let page = s.list_events(t, after, 50, &[]).await.unwrap();
                for e in &page {
                    assert!(e.seq > after, "seq {} after {after}", e.seq);
                    after = e.seq;
                    seen.push((e.seq, e.id.clone(), e.data["v"].to_string()));
                }
                if finished && page.is_empty() {
                    return seen;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let mut tasks = Vec::new();
    for w in 0..writers {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("w{w}");
            for i in 0..per {
                let e = scimitar_store::NewEvent::new("user.updated", Some(&id), json!({"id": id, "v": i}));
                let f = evented(
                    Some(json!({"userName": format!("w{w}"), "title": format!("{i}")})),
                    vec![],
                    vec![e],
                    None,
                );
                s.modify(t, Kind::User, &id, None, &ts(2), f).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.await.unwrap();
    let table: Vec<(i64, String, String)> = s
        .list_events(t, 0, 10_000, &[])
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.seq, e.id, e.data["v"].to_string()))
        .collect();
    assert_eq!(table.len(), writers * per);
    assert_eq!(seen, table, "the reader saw exactly the table's events, in order");
    // Per resource, in the order of its changes.
    let all = s.list_events(t, 0, 10_000, &[]).await.unwrap();
    for w in 0..writers {
        let id = format!("w{w}");
        let vs: Vec<i64> = all
            .iter()
            .filter(|e| e.data["id"] == id.as_str())
            .filter_map(|e| e.data["v"].as_i64())
            .collect();
        assert_eq!(vs, (0..per as i64).collect::<Vec<_>>(), "{id}");
    }
}

/// Webhook endpoints: creation, the secret kept sealed as given, enabling,
/// rotation, delivery state and log (bounded), failed events and replay,
/// another tenant's endpoints out of reach, deletion with the tenant.
pub async fn webhooks(s: Arc<dyn Store>) {
    use scimitar_store::webhooks::{
        AttemptRecord, DeliveryRecord, FailedEvent, MAX_DELIVERY_LOG, NewWebhook, WebhookState,
    };
    let t = tenant(&s, "t").await;
    let other = tenant(&s, "other").await;
    let new = NewWebhook {
        id: "wh_1".into(),
        url: "https://app.example/hook".into(),
        types: vec!["user.created".into(), "user.deleted".into()],
        secret_sealed: "sealed:v1:AAAA".into(),
    };
    let w = s.create_webhook(t, &new).await.unwrap();
    assert_eq!(
        (w.id.as_str(), w.url.as_str(), w.enabled),
        ("wh_1", "https://app.example/hook", true)
    );
    assert_eq!(w.types, new.types);
    assert_eq!(w.secret_sealed, "sealed:v1:AAAA");
    assert_eq!(
        (w.previous_sealed.as_deref(), w.state.cursor, w.failed),
        (None, None, 0)
    );
    assert!(!format!("{w:?}").contains("sealed:v1"), "Debug leaves the secret out");
    assert!(matches!(s.create_webhook(t, &new).await, Err(StoreError::Conflict(_))));
    // The same id in another tenant is another endpoint.
    s.create_webhook(other, &new).await.unwrap();
    assert_eq!(s.webhooks(t).await.unwrap().len(), 1);
    assert_eq!(s.webhook(t, "wh_1").await.unwrap(), Some(w.clone()));
    assert_eq!(s.webhook(t, "nope").await.unwrap(), None);

    // Enabled endpoints of every tenant.
    let mut enabled = s.enabled_webhooks().await.unwrap();
    enabled.sort();
    assert_eq!(enabled, vec![(t, "wh_1".to_string()), (other, "wh_1".to_string())]);
    assert!(s.set_webhook_enabled(other, "wh_1", false).await.unwrap());
    assert!(!s.set_webhook_enabled(other, "nope", false).await.unwrap());
    assert_eq!(s.enabled_webhooks().await.unwrap(), vec![(t, "wh_1".to_string())]);
    assert!(
        s.webhook(t, "wh_1").await.unwrap().unwrap().enabled,
        "the other tenant's is untouched"
    );

    // Rotation keeps the previous secret until a time.
    assert!(
        s.rotate_webhook_secret(t, "wh_1", "sealed:v1:BBBB", "2030-01-01T00:00:00.000Z")
            .await
            .unwrap()
    );
    let r = s.webhook(t, "wh_1").await.unwrap().unwrap();
    assert_eq!(r.secret_sealed, "sealed:v1:BBBB");
    assert_eq!(r.previous_sealed.as_deref(), Some("sealed:v1:AAAA"));
    assert_eq!(r.previous_until.as_deref(), Some("2030-01-01T00:00:00.000Z"));
    assert!(!s.rotate_webhook_secret(t, "nope", "x", "y").await.unwrap());

    // Delivery state, log and a failed event.
    let line = |seq: i64, status: &str| DeliveryRecord {
        event_id: format!("evt_{seq}"),
        seq,
        event_type: "user.created".into(),
        status: status.into(),
        attempts: 1,
        latency_ms: 12,
        response_code: Some(500),
        error: Some("HTTP 500".into()),
        time: "2026-01-01T00:00:00.000Z".into(),
    };
    let state = WebhookState {
        cursor: Some(7),
        attempts: 2,
        first_attempt: Some("2026-01-01T00:00:00.000Z".into()),
        next_attempt: Some("2026-01-01T00:00:30.000Z".into()),
        last_error: Some("HTTP 500".into()),
    };
    let failed = FailedEvent {
        seq: 6,
        event_id: "evt_6".into(),
        event_type: "user.created".into(),
        body: r#"{"id":"evt_6"}"#.into(),
        failed_at: "2026-01-02T00:00:00.000Z".into(),
        error: Some("HTTP 500".into()),
        replay: false,
    };
    let rec = AttemptRecord {
        state: state.clone(),
        log: vec![line(6, "failed")],
        failed: Some(failed.clone()),
    };
    assert!(s.record_webhook_attempt(t, "wh_1", &rec).await.unwrap());
    assert!(!s.record_webhook_attempt(t, "nope", &rec).await.unwrap());
    let r = s.webhook(t, "wh_1").await.unwrap().unwrap();
    assert_eq!((r.state.clone(), r.failed), (state, 1));
    assert_eq!(s.webhook_log(t, "wh_1", 10).await.unwrap(), vec![line(6, "failed")]);
    assert_eq!(s.failed_events(t, "wh_1", 10).await.unwrap(), vec![failed.clone()]);
    assert!(s.failed_events(other, "wh_1", 10).await.unwrap().is_empty());
    assert!(s.webhook_log(other, "wh_1", 10).await.unwrap().is_empty());

    // Replay: marked, then a failed attempt keeps it, a delivered one drops it.
    assert_eq!(s.replay_failed(other, "wh_1").await.unwrap(), 0);
    assert_eq!(s.replay_failed(t, "wh_1").await.unwrap(), 1);
    assert!(s.failed_events(t, "wh_1", 10).await.unwrap()[0].replay);
    let mut again = line(6, "failed");
    again.error = Some("HTTP 502".into());
    s.finish_replay(t, "wh_1", 6, false, &again).await.unwrap();
    let kept = s.failed_events(t, "wh_1", 10).await.unwrap();
    assert_eq!((kept[0].replay, kept[0].error.as_deref()), (false, Some("HTTP 502")));
    s.replay_failed(t, "wh_1").await.unwrap();
    s.finish_replay(t, "wh_1", 6, true, &line(6, "replayed")).await.unwrap();
    assert!(s.failed_events(t, "wh_1", 10).await.unwrap().is_empty());
    let log = s.webhook_log(t, "wh_1", 2).await.unwrap();
    assert_eq!(log[0].status, "replayed", "newest first");

    // The log keeps the newest MAX_DELIVERY_LOG lines.
    for seq in 0..MAX_DELIVERY_LOG + 5 {
        let rec = AttemptRecord {
            state: WebhookState::default(),
            log: vec![line(100 + seq, "delivered")],
            failed: None,
        };
        s.record_webhook_attempt(t, "wh_1", &rec).await.unwrap();
    }
    let log = s.webhook_log(t, "wh_1", MAX_DELIVERY_LOG * 2).await.unwrap();
    assert_eq!(log.len() as i64, MAX_DELIVERY_LOG);
    assert_eq!(log[0].seq, 100 + MAX_DELIVERY_LOG + 4);
    // Several lines in one write (a batch of deliveries), oldest first.
    let rec = AttemptRecord {
        state: WebhookState::default(),
        log: (0..3).map(|i| line(5000 + i, "delivered")).collect(),
        failed: None,
    };
    s.record_webhook_attempt(t, "wh_1", &rec).await.unwrap();
    let log = s.webhook_log(t, "wh_1", 4).await.unwrap();
    assert_eq!(
        log.iter().map(|l| l.seq).collect::<Vec<_>>(),
        [5002, 5001, 5000, 100 + MAX_DELIVERY_LOG + 4]
    );
    // A write of many lines is trimmed too (once, after its lines).
    let many = AttemptRecord {
        state: WebhookState::default(),
        log: (0..60).map(|i| line(6000 + i, "delivered")).collect(),
        failed: None,
    };
    s.record_webhook_attempt(t, "wh_1", &many).await.unwrap();
    let log = s.webhook_log(t, "wh_1", MAX_DELIVERY_LOG * 2).await.unwrap();
    assert_eq!(log.len() as i64, MAX_DELIVERY_LOG);
    assert_eq!((log[0].seq, log[59].seq, log[60].seq), (6059, 6000, 5002));

    // Deletion takes the log and failed events along; the tenant's too.
    s.record_webhook_attempt(t, "wh_1", &rec).await.unwrap();
    assert!(!s.delete_webhook(t, "nope").await.unwrap());
    assert!(s.delete_webhook(t, "wh_1").await.unwrap());
    assert_eq!(s.webhook(t, "wh_1").await.unwrap(), None);
    assert!(s.webhook_log(t, "wh_1", 10).await.unwrap().is_empty());
    assert!(s.failed_events(t, "wh_1", 10).await.unwrap().is_empty());
    assert!(s.webhook(other, "wh_1").await.unwrap().is_some());
    s.create_webhook(t, &new).await.unwrap();
    s.record_webhook_attempt(t, "wh_1", &rec).await.unwrap();
    assert!(s.delete_tenant("t").await.unwrap());
    assert!(s.failed_events(t, "wh_1", 10).await.unwrap().is_empty());
    assert!(s.webhook_log(t, "wh_1", 10).await.unwrap().is_empty());
    assert!(s.webhook(other, "wh_1").await.unwrap().is_some());
}

/// A change's activity entry and its events share the change's id, and
/// `change_events` finds exactly that change's events — document and
/// member events, on create, modify and delete — within the time window,
/// in the tenant only.
pub async fn events_link_to_their_change(s: Arc<dyn Store>) {
    let t = tenant(&s, "links").await;
    let other = tenant(&s, "other").await;
    let linked = |events, group: Option<&str>, change: &str| scimitar_store::ChangeEvents {
        change: Some(change.into()),
        ..change_events(events, group)
    };
    let entry = |change: &str| ActivityEvent {
        change: Some(change.into()),
        ..event(t, &scimitar_store::now_utc(), "create", "success", change)
    };
    let new = |id: &str, doc: Value, kind: Kind, members: Vec<&str>, events| NewResource {
        kind,
        id: id.into(),
        doc: obj(doc),
        members: members.into_iter().map(member).collect(),
        created: ts(1),
        activity: Some(entry(&format!("c-{id}"))),
        unique: vec![],
        events,
    };
    for (id, name) in [("u1", "a"), ("u2", "b")] {
        let events = linked(vec![ev("user.created", id)], None, &format!("c-{id}"));
        s.create(t, new(id, json!({"userName": name}), Kind::User, vec![], events))
            .await
            .unwrap();
    }
    let events = linked(vec![ev("group.created", "g1")], Some("g1"), "c-g1");
    s.create(
        t,
        new("g1", json!({"displayName": "G"}), Kind::Group, vec!["u1"], events),
    )
    .await
    .unwrap();
    // A member PATCH: its member events carry the change too.
    let members = linked(vec![], Some("g1"), "c-members");
    let f: scimitar_store::ModifyFn = Arc::new(move |cur: &scimitar_store::Record, _| {
        Ok(Mutation {
            doc: cur.doc.clone(),
            member_ops: vec![MemberOp::Add(vec![member("u1"), member("u2")])],
            activity: None,
            unique: Default::default(),
            events: members.clone(),
        })
    });
    s.modify(t, Kind::Group, "g1", None, &ts(2), f).await.unwrap();
    let on_delete: scimitar_store::DeleteEventsFn = Arc::new(|r: &scimitar_store::Record| {
        Ok(vec![scimitar_store::NewEvent {
            change: Some("c-del".into()),
            ..ev("user.deleted", &r.id)
        }])
    });
    s.delete_with_events(t, Kind::User, "u2", None, Some(on_delete))
        .await
        .unwrap();
    // The same change id in another tenant is another tenant's.
    let events = linked(vec![ev("user.created", "x1")], None, "c-u1");
    s.create(
        other,
        NewResource {
            activity: None,
            ..new("x1", json!({"userName": "x"}), Kind::User, vec![], events)
        },
    )
    .await
    .unwrap();

    // A window around now (events are stamped with the current time).
    let (from, to) = (
        "2000-01-01T00:00:00.000Z".to_string(),
        "2999-01-01T00:00:00.000Z".to_string(),
    );
    let of = |change: &'static str| {
        let s = s.clone();
        let (from, to) = (from.clone(), to.clone());
        async move {
            s.change_events(t, change, &from, &to)
                .await
                .unwrap()
                .into_iter()
                .map(|e| {
                    let who = e.data["user"]["id"]
                        .as_str()
                        .or(e.data["id"].as_str())
                        .unwrap_or_default();
                    (e.event_type.clone(), who.to_string())
                })
                .collect::<Vec<_>>()
        }
    };
    let pair = |t: &str, w: &str| (t.to_string(), w.to_string());
    // (change, its events in order)
    let table = [
        ("c-u1", vec![pair("user.created", "u1")]),
        ("c-u2", vec![pair("user.created", "u2")]),
        (
            "c-g1",
            vec![pair("group.created", "g1"), pair("group.user_added", "u1")],
        ),
        (
            "c-members",
            vec![pair("group.user_added", "u2")], // u1 was a member already
        ),
        ("c-del", vec![pair("user.deleted", "u2")]),
        ("c-none", vec![]),
    ];
    for (change, want) in table {
        assert_eq!(of(change).await, want, "{change}");
    }
    // Outside the window: none.
    let (later, much_later) = ("2999-01-01T00:00:00.000Z", "2999-12-31T00:00:00.000Z");
    assert!(s.change_events(t, "c-u1", later, much_later).await.unwrap().is_empty());
    // The activity entry carries the same id.
    let log = s
        .list_activity(
            t,
            ActivityQuery {
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut changes: Vec<String> = log.into_iter().filter_map(|e| e.change).collect();
    changes.sort();
    assert_eq!(changes, ["c-g1", "c-u1", "c-u2"]);
}
