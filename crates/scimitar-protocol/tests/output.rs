//! The members of a Group written straight to JSON are the same JSON as
//! the `Value` representation (the server uses the former for large
//! groups).

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use scimitar_protocol::output::{Derived, Meta, Reference, representation, to_json_with_members};
use scimitar_protocol::schema::builtin_resource_types;
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
