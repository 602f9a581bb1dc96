//! Table-driven tests of the pure parts of search at the root (RFC 7644
//! §3.4.3): restricting a filter to one resource type, checking its
//! attributes, and merging the per-type pages.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::cmp::Ordering;
use std::sync::Arc;

use scimitar_protocol::filter::parse_filter;
use scimitar_protocol::list::{
    SortOrder, check_filter_attributes, cmp_merge_keys, merge_key, merge_page, restrict_filter, sortable,
};
use scimitar_protocol::schema::{ResourceType, builtin_resource_types};
use serde_json::{Map, Value, json};

const DEPARTMENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";

fn rts() -> Vec<Arc<ResourceType>> {
    builtin_resource_types().into_iter().map(Arc::new).collect()
}

fn rt(name: &str) -> Arc<ResourceType> {
    rts().into_iter().find(|r| r.name == name).unwrap()
}

#[test]
fn filters_restricted_to_a_type() {
    let never = "not (id pr)";
    let cases: &[(&str, &str, String)] = &[
        ("User", r#"userName eq "x""#, r#"userName eq "x""#.into()),
        ("Group", r#"userName eq "x""#, never.into()),
        ("User", "members pr", never.into()),
        ("Group", "members pr", "members pr".into()),
        ("User", r#"members[value eq "x"]"#, never.into()),
        ("Group", r#"members[value eq "x"]"#, r#"members[value eq "x"]"#.into()),
        (
            "Group",
            r#"userName eq "x" or displayName eq "y""#,
            format!(r#"{never} or displayName eq "y""#),
        ),
        ("Group", "not (emails pr)", format!("not ({never})")),
        (
            "User",
            r#"title pr and (members pr or id eq "u1")"#,
            format!(r#"title pr and ({never} or id eq "u1")"#),
        ),
        // Common attributes and the enterprise extension.
        (
            "Group",
            r#"meta.resourceType eq "User""#,
            r#"meta.resourceType eq "User""#.into(),
        ),
        ("Group", r#"department eq "x""#, never.into()),
        ("User", r#"department eq "x""#, r#"department eq "x""#.into()),
    ];
    for (name, f, want) in cases {
        let got = restrict_filter(&rt(name), &parse_filter(f).unwrap());
        assert_eq!(got.to_string(), *want, "{name}: {f}");
    }
}

#[test]
fn filter_attributes_known_somewhere() {
    let cases: &[(&str, Option<&str>)] = &[
        (r#"userName eq "x""#, None),
        ("members pr", None),
        (r#"userName eq "x" or members pr"#, None),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "x""#,
            None,
        ),
        (r#"nope eq "x""#, Some("unknown attribute 'nope'")),
        (r#"userName eq "x" and not (nope pr)"#, Some("unknown attribute 'nope'")),
        (r#"emails[nope eq "x"]"#, None),
        (r#"nope[value eq "x"]"#, Some("unknown attribute 'nope'")),
        ("emails.nope pr", Some("unknown attribute 'emails.nope'")),
    ];
    let all = rts();
    for (f, want) in cases {
        let got = check_filter_attributes(&all, &parse_filter(f).unwrap())
            .err()
            .map(|e| e.detail);
        assert_eq!(got.as_deref(), *want, "{f}");
    }
    // Owned resource types work as well as Arcs.
    let groups = [rt("Group").as_ref().clone()];
    assert!(check_filter_attributes(&groups, &parse_filter("userName pr").unwrap()).is_err());
}

#[test]
fn sortable_per_type() {
    let cases: &[(&str, &str, bool)] = &[
        ("User", "userName", true),
        ("Group", "userName", false),
        ("Group", "displayName", true),
        ("User", "meta.created", true),
        ("Group", "meta.lastModified", true),
        ("User", DEPARTMENT, true),
        ("Group", DEPARTMENT, false),
        ("User", "emails.value", true),
        ("User", "emails.nope", false),
        ("User", "bad..path", false),
        ("User", "", false),
    ];
    for (name, by, want) in cases {
        assert_eq!(sortable(&rt(name), by), *want, "{name}: {by}");
    }
}

fn doc(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn merge_keys_of_documents() {
    let d = doc(json!({
        "userName": "Bob", "displayName": "ÉMILE", "name": {"givenName": "Al"}, "active": true, "n": 5,
        "emails": [{"value": "x@y"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"}
    }));
    let cases: &[(&str, Value)] = &[
        ("userName", json!("bob")),
        ("displayName", json!("émile")),
        ("name.givenName", json!("al")),
        ("name", json!({"givenName": "Al"})),
        ("active", json!(true)),
        ("n", json!(5)),
        ("missing", Value::Null),
        ("name.missing", Value::Null),
        // Only `name` and `name.sub` of the stored document: arrays, URN
        // paths and meta have no key (they keep per-type order).
        ("emails.value", Value::Null),
        (DEPARTMENT, Value::Null),
        ("meta.created", Value::Null),
    ];
    for (by, want) in cases {
        assert_eq!(merge_key(&d, by), *want, "{by}");
    }
}

#[test]
fn merge_key_order() {
    use Ordering::{Equal, Greater, Less};
    let cases: &[(Value, Value, Ordering)] = &[
        (Value::Null, Value::Null, Equal),
        (Value::Null, json!("a"), Greater),
        (json!("a"), Value::Null, Less),
        (json!("a"), json!("b"), Less),
        (json!("b"), json!("a"), Greater),
        // Code point order: lower-casing happened in merge_key.
        (json!("Z"), json!("a"), Less),
        (json!(2), json!(10), Less),
        (json!(2.5), json!(2), Greater),
        (json!(false), json!(true), Less),
        // Different types: by JSON text.
        (json!(1), json!("1"), Greater),
        (json!(true), json!(1), Greater),
    ];
    for (a, b, want) in cases {
        assert_eq!(cmp_merge_keys(a, b), *want, "{a} vs {b}");
    }
}

#[test]
fn merged_pages() {
    // Users first, then Groups, each in its store's order.
    let entries = || -> Vec<(Value, &str)> {
        vec![
            (json!("bob"), "u1"),
            (Value::Null, "u2"),
            (json!("alice"), "u3"),
            (json!("admins"), "g1"),
            (json!("bob"), "g2"),
            (Value::Null, "g3"),
        ]
    };
    use SortOrder::{Ascending, Descending};
    let cases: &[(Option<SortOrder>, usize, usize, &[&str])] = &[
        (None, 1, 100, &["u1", "u2", "u3", "g1", "g2", "g3"]),
        (None, 2, 3, &["u2", "u3", "g1"]),
        (None, 7, 10, &[]),
        (None, 1, 0, &[]),
        // Ties keep Users before Groups in either direction. Descending
        // reverses the whole order, so absent keys come first (as the
        // server has always merged, though each store page has them last).
        (Some(Ascending), 1, 100, &["g1", "u3", "u1", "g2", "u2", "g3"]),
        (Some(Descending), 1, 100, &["u2", "g3", "u1", "g2", "u3", "g1"]),
        (Some(Ascending), 3, 2, &["u1", "g2"]),
        (Some(Descending), 0, 2, &["u2", "g3"]),
        (Some(Ascending), usize::MAX, 2, &[]),
    ];
    for (sort, start, count, want) in cases {
        let got = merge_page(entries(), *sort, *start, *count);
        assert_eq!(got, *want, "{sort:?} start {start} count {count}");
    }
}
