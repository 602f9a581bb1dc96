//! What the server writes straight to JSON is the same JSON as the `Value`
//! representation: a Group's members (large groups) and whole resources
//! (every single-resource response).

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use scimitar_protocol::output::{Derived, Meta, Reference, RepresentationView, representation, to_json_with_members};
use scimitar_protocol::schema::{Returned, builtin_resource_types};
use serde_json::{Map, Value, json};

fn reference(value: &str, kind: &str, display: Option<&str>) -> Reference {
    Reference {
        value: value.into(),
        kind: kind.into(),
        display: display.map(str::to_string),
    }
}

#[test]
fn members_written_directly_match_the_representation() {
    let rt = builtin_resource_types()
        .into_iter()
        .find(|r| r.name == "Group")
        .unwrap();
    let base = "https://scim.example.com/scim/acme/v2";
    let meta = Meta {
        id: "g1",
        created: "2026-01-01T00:00:00Z",
        last_modified: "2026-01-02T00:00:00Z",
        version: 3,
    };
    let cases: Vec<(Value, Vec<Reference>)> = vec![
        (json!({"displayName": "Empty"}), vec![]),
        (
            json!({"displayName": "Eng \"core\"", "externalId": "e-1"}),
            vec![
                reference("u1", "User", Some("Alice")),
                reference("u2", "User", None),
                reference("g2", "Group", Some("Nested \\ group")),
            ],
        ),
        (json!({}), vec![reference("u3", "User", Some("Ünïcode ✓"))]),
    ];
    for (doc, members) in cases {
        let doc: Map<String, Value> = serde_json::from_value(doc).unwrap();
        let derived = |members| Derived {
            members,
            groups: None,
            manager_display: None,
        };
        let expected = representation(&rt, base, &doc, &meta, derived(Some(members.clone())));
        let without = representation(&rt, base, &doc, &meta, derived(None));
        let bytes = to_json_with_members(&without, base, &members);
        let got: Value = serde_json::from_slice(&bytes).expect("valid JSON");
        assert_eq!(got, Value::Object(expected), "{doc:?}");
    }
}

/// The view writes exactly the bytes the `Map` serialises to: same keys,
/// same order, same values, for documents with and without derived values,
/// withheld attributes, the manager's `$ref`, removed extensions and the
/// keys the representation sets itself.
#[test]
fn the_representation_view_writes_the_same_bytes_as_the_map() {
    let types = builtin_resource_types();
    let user = types.iter().find(|r| r.name == "User").unwrap();
    let group = types.iter().find(|r| r.name == "Group").unwrap();
    // A tenant whose extension has a write-only attribute.
    let mut secret_user = user.clone();
    for (ext, _) in &mut secret_user.extensions {
        for a in &mut ext.attributes {
            if a.name == "employeeNumber" {
                a.returned = Returned::Never;
            }
        }
    }
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let base = "https://scim.example.com/scim/acme/v2";
    let meta = Meta {
        id: "r1",
        created: "2026-01-01T00:00:00Z",
        last_modified: "2026-01-02T00:00:00Z",
        version: 7,
    };
    let groups = vec![
        reference("g1", "Group", Some("Sales \"EU\"")),
        reference("g2", "Group", None),
    ];
    let members = vec![reference("u1", "User", Some("Alice")), reference("g3", "Group", None)];
    let derived = |members: Option<Vec<Reference>>, groups: Option<Vec<Reference>>, manager: Option<&str>| Derived {
        members,
        groups,
        manager_display: manager.map(str::to_string),
    };
    let cases = vec![
        (
            user,
            json!({"userName": "a@example.com", "active": true}),
            derived(None, None, None),
        ),
        (
            user,
            json!({"userName": "b", "password": "$argon2id$hash", "name": {"givenName": "B"},
                   "emails": [{"value": "b@example.com", "primary": true}], ent: {"manager": {"value": "m1"}, "department": "R&D"}}),
            derived(None, Some(groups.clone()), Some("Manager \u{2713}")),
        ),
        (
            user,
            json!({"userName": "c", ent: {"manager": {"value": "m1"}}}),
            derived(None, Some(vec![]), None),
        ),
        (
            user,
            json!({"userName": "d", ent: {"manager": {}}}),
            derived(None, None, None),
        ),
        (
            &secret_user,
            json!({"userName": "e", ent: {"employeeNumber": "42", "manager": {"value": "m2", "$ref": "old"}}}),
            derived(None, Some(groups.clone()), None),
        ),
        (
            &secret_user,
            json!({"userName": "f", ent: {"employeeNumber": "42"}}),
            derived(None, None, None),
        ),
        (
            user,
            json!({"userName": "g", "urn:example:removed:1.0:User": {"x": 1}}),
            derived(None, None, None),
        ),
        (
            user,
            json!({"userName": "h", "schemas": ["x"], "id": "wrong"}),
            derived(None, None, None),
        ),
        (
            user,
            json!({"userName": "i", "groups": [{"value": "stale"}]}),
            derived(None, Some(groups.clone()), None),
        ),
        (
            group,
            json!({"displayName": "Eng"}),
            derived(Some(members.clone()), None, None),
        ),
        (
            group,
            json!({"displayName": "Empty"}),
            derived(Some(vec![]), None, None),
        ),
        (
            group,
            json!({"displayName": "No members loaded", "externalId": "x"}),
            derived(None, None, None),
        ),
        (
            group,
            json!({"displayName": "m", "members": [{"value": "stale"}]}),
            derived(Some(members), None, None),
        ),
        (user, json!({}), derived(None, None, None)),
    ];
    for (rt, doc, d) in cases {
        let doc: Map<String, Value> = serde_json::from_value(doc).unwrap();
        let expected = serde_json::to_string(&representation(rt, base, &doc, &meta, d.clone())).unwrap();
        let view = RepresentationView {
            rt,
            base_url: base,
            doc: &doc,
            meta: &meta,
            derived: &d,
        };
        assert_eq!(serde_json::to_string(&view).unwrap(), expected, "{doc:?}");
    }
}
