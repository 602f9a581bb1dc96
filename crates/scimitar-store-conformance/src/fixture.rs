//! Shared data and helpers for the cases.

use std::sync::Arc;

use scimitar_protocol::filter::parse_filter;
use scimitar_protocol::list::SortOrder;
use scimitar_protocol::output::{Derived, Meta, representation};
use scimitar_protocol::patch::MemberOp;
use scimitar_protocol::resource::MemberRef;
use scimitar_protocol::schema::{ResourceType, builtin_resource_types};
use scimitar_store::{
    CursorPos, Kind, ListQuery, Mutation, NewResource, Page, Record, Sort, Store, StoreError, TenantId,
};
use serde_json::{Map, Value, json};

pub const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

pub fn rt(kind: Kind) -> Arc<ResourceType> {
    let name = kind.as_str();
    Arc::new(
        builtin_resource_types()
            .into_iter()
            .find(|r| r.name == name)
            .expect("builtin resource type"),
    )
}

pub fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

pub fn member(id: &str) -> MemberRef {
    MemberRef {
        value: id.to_string(),
        kind: None,
        display: None,
    }
}

pub async fn tenant(store: &Arc<dyn Store>, name: &str) -> TenantId {
    store.create_tenant(name).await.expect("create tenant").id
}

pub async fn user(store: &Arc<dyn Store>, t: TenantId, id: &str, doc: Value, now: &str) -> Record {
    store
        .create(
            t,
            NewResource {
                events: Default::default(),
                kind: Kind::User,
                id: id.into(),
                doc: obj(doc),
                members: vec![],
                created: now.into(),
                activity: None,
                unique: vec![],
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create user {id}: {e}"))
}

pub async fn group(store: &Arc<dyn Store>, t: TenantId, id: &str, name: &str, members: &[&str], now: &str) -> Record {
    let members = members.iter().map(|m| member(m)).collect();
    store
        .create(
            t,
            NewResource {
                events: Default::default(),
                kind: Kind::Group,
                id: id.into(),
                doc: obj(json!({"displayName": name})),
                members,
                created: now.into(),
                activity: None,
                unique: vec![],
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create group {id}: {e}"))
}

/// A ModifyFn that replaces the document.
pub fn set_doc(doc: Value) -> scimitar_store::ModifyFn {
    let doc = obj(doc);
    Arc::new(move |_, _| {
        Ok(Mutation {
            events: Default::default(),
            doc: doc.clone(),
            member_ops: vec![],
            activity: None,
            unique: Default::default(),
        })
    })
}

/// A ModifyFn that applies member operations and keeps the document.
pub fn with_member_ops(ops: Vec<MemberOp>) -> scimitar_store::ModifyFn {
    Arc::new(move |cur: &Record, _| {
        Ok(Mutation {
            events: Default::default(),
            doc: cur.doc.clone(),
            member_ops: ops.clone(),
            activity: None,
            unique: Default::default(),
        })
    })
}

pub struct Q<'a> {
    pub filter: Option<&'a str>,
    pub sort: Option<(&'a str, SortOrder)>,
    pub start: usize,
    pub count: usize,
    pub cursor: Option<CursorPos>,
}

impl Default for Q<'_> {
    fn default() -> Self {
        Q {
            filter: None,
            sort: None,
            start: 1,
            count: 100,
            cursor: None,
        }
    }
}

pub async fn list(store: &Arc<dyn Store>, t: TenantId, kind: Kind, q: Q<'_>) -> Result<Page, StoreError> {
    list_rt(store, t, kind, rt(kind), q).await
}

/// `list` against a given resource type (e.g. one with a custom extension).
pub async fn list_rt(
    store: &Arc<dyn Store>,
    t: TenantId,
    kind: Kind,
    rt: Arc<ResourceType>,
    q: Q<'_>,
) -> Result<Page, StoreError> {
    let filter = q
        .filter
        .map(|f| parse_filter(f).unwrap_or_else(|e| panic!("parse {f}: {}", e.detail)));
    store
        .list(
            t,
            ListQuery {
                kind,
                rt,
                filter,
                sort: q.sort.map(|(by, order)| Sort {
                    by: by.to_string(),
                    order,
                }),
                start_index: q.start,
                count: q.count,
                cursor: q.cursor,
            },
        )
        .await
}

pub fn ids(page: &Page) -> Vec<String> {
    page.records.iter().map(|r| r.id.clone()).collect()
}

/// Ids matching `filter`, in insertion order.
pub async fn filter_ids(store: &Arc<dyn Store>, t: TenantId, kind: Kind, filter: &str) -> Vec<String> {
    let page = list(
        store,
        t,
        kind,
        Q {
            filter: Some(filter),
            ..Q::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("filter {filter}: {e}"));
    assert_eq!(page.total as usize, page.records.len(), "total of {filter}");
    ids(&page)
}

pub const BASE: &str = "https://scim.example/t";

/// The resource as a client sees it: what the evaluator filters.
pub async fn client_view(store: &Arc<dyn Store>, t: TenantId, rt: &ResourceType, rec: &Record) -> Value {
    let kind = rec.kind;
    let mut derived = Derived {
        members: None,
        groups: None,
        manager_display: None,
    };
    match kind {
        Kind::Group => derived.members = Some(store.members(t, &rec.id).await.expect("members")),
        Kind::User => derived.groups = Some(store.groups_of(t, &rec.id).await.expect("groups")),
    }
    let meta = Meta {
        id: &rec.id,
        created: &rec.created,
        last_modified: &rec.last_modified,
        version: rec.version,
    };
    Value::Object(representation(rt, BASE, &rec.doc, &meta, derived))
}

pub fn ts(month: u32) -> String {
    format!("2024-{month:02}-01T00:00:00.000Z")
}

/// Six users and three groups exercising every attribute type the
/// built-in schemas have. Users u1..u6, created a month apart from
/// January 2024; groups g1 (u1, u2), g2 (u2, g1), g3 (empty).
pub async fn populate(store: &Arc<dyn Store>, t: TenantId) {
    let users = [
        (
            "u1",
            json!({
                "userName": "alice", "displayName": "Alice Liddell", "title": "Engineer", "active": true, "externalId": "EXT-1",
                "name": {"givenName": "Alice", "familyName": "Liddell"},
                "emails": [{"value": "alice@x.com", "type": "work", "primary": true}, {"value": "alice@home.org", "type": "home"}],
                ENT: {"employeeNumber": "100", "department": "R&D", "manager": {"value": "u2"}}
            }),
        ),
        (
            "u2",
            json!({
                "userName": "Bob", "displayName": "ÉMILE Bob", "title": "Manager", "active": false, "externalId": "ext-1",
                "emails": [{"value": "bob@x.com", "type": "work"}],
                ENT: {"department": "Sales"}
            }),
        ),
        (
            "u3",
            json!({
                "userName": "carol%_\\x",
                "emails": [{"value": "c@y.org", "type": "home"}],
                "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}]
            }),
        ),
        (
            "u4",
            json!({
                "userName": "Dave", "displayName": "émile dave", "title": "engineer", "active": true,
                "roles": [{"value": "admin", "primary": true}],
                "addresses": [{"locality": "Paris", "country": "FR", "type": "work"}]
            }),
        ),
        (
            "u5",
            json!({
                "userName": "eve", "userType": "Contractor",
                "emails": [{"value": "AAA@X.COM", "type": "work"}, {"value": "eve@z.com", "type": "other", "primary": true}],
                ENT: {"manager": {"value": "u1"}}
            }),
        ),
        (
            "u6",
            json!({"userName": "Frank_1", "displayName": "frank", "nickName": "100%"}),
        ),
    ];
    for (i, (id, doc)) in users.into_iter().enumerate() {
        user(store, t, id, doc, &ts(i as u32 + 1)).await;
    }
    group(store, t, "g1", "Admins", &["u1", "u2"], &ts(7)).await;
    group(store, t, "g2", "Sales", &["u2", "g1"], &ts(8)).await;
    group(store, t, "g3", "Empty", &[], &ts(9)).await;
}

/// Asserts that the store and the evaluator select the same resources.
pub async fn differential(store: &Arc<dyn Store>, t: TenantId, kind: Kind, filters: &[&str]) {
    differential_rt(store, t, kind, rt(kind), filters).await
}

pub async fn differential_rt(store: &Arc<dyn Store>, t: TenantId, kind: Kind, rt: Arc<ResourceType>, filters: &[&str]) {
    let all = list_rt(store, t, kind, rt.clone(), Q::default())
        .await
        .expect("list all");
    let mut views = Vec::new();
    for rec in &all.records {
        views.push((rec.id.clone(), client_view(store, t, &rt, rec).await));
    }
    let mut failures = Vec::new();
    let mut informative = 0;
    for f in filters {
        let parsed = parse_filter(f).unwrap_or_else(|e| panic!("parse {f}: {}", e.detail));
        let mut expected = Vec::new();
        for (id, view) in &views {
            if scimitar_protocol::eval::matches_resource(&parsed, view, &rt)
                .unwrap_or_else(|e| panic!("eval {f}: {}", e.detail))
            {
                expected.push(id.clone());
            }
        }
        if !expected.is_empty() && expected.len() < views.len() {
            informative += 1;
        }
        match list_rt(
            store,
            t,
            kind,
            rt.clone(),
            Q {
                filter: Some(f),
                ..Q::default()
            },
        )
        .await
        {
            Ok(page) if ids(&page) == expected && page.total as usize == expected.len() => {}
            Ok(page) => failures.push(format!(
                "{f}: store {:?} (total {}), evaluator {expected:?}",
                ids(&page),
                page.total
            )),
            Err(e) => failures.push(format!("{f}: store error {e}, evaluator {expected:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "store and evaluator disagree:\n{}",
        failures.join("\n")
    );
    // Guard against a vacuous comparison (e.g. both selecting nothing).
    assert!(
        informative * 10 >= filters.len() * 8,
        "only {informative} of {} filters split the data",
        filters.len()
    );
}
