//! Table-driven tests of `attributes` / `excludedAttributes` (RFC 7644
//! §3.4.2.5) with the `returned` rules of RFC 7643 §7.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use scimitar_protocol::ScimType;
use scimitar_protocol::project::Projection;
use scimitar_protocol::schema::{ResourceType, builtin_resource_types};
use serde_json::{Map, Value, json};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

fn rt(name: &str) -> ResourceType {
    builtin_resource_types().into_iter().find(|r| r.name == name).unwrap()
}

fn full_user() -> Map<String, Value> {
    match json!({
        "schemas": [CORE, ENT],
        "id": "u1",
        "externalId": "ext",
        "userName": "alice",
        "password": "s3cret",
        "name": {"givenName": "Alice", "familyName": "Smith"},
        "displayName": "Alice",
        "emails": [{"value": "a@x", "type": "work", "primary": true}, {"value": "b@x", "type": "home"}],
        "groups": [{"value": "g1", "display": "Eng", "$ref": "http://x/Groups/g1", "type": "direct"}],
        ENT: {"department": "R&D", "employeeNumber": "1", "manager": {"value": "m1", "$ref": "http://x/Users/m1", "displayName": "Boss"}},
        "meta": {"resourceType": "User", "version": "\"1\""}
    }) {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn project(
    rt: &ResourceType,
    attributes: Option<&str>,
    excluded: Option<&str>,
    mut resource: Map<String, Value>,
) -> Value {
    let p = Projection::parse(rt, attributes, excluded).unwrap_or_else(|e| panic!("{attributes:?} {excluded:?}: {e}"));
    p.apply(rt, &mut resource);
    Value::Object(resource)
}

/// `full_user()` restricted to `keys` (and `schemas` as given).
fn only(keys: &[&str], schemas: Value) -> Value {
    let u = full_user();
    let mut out = Map::new();
    for k in keys {
        out.insert(k.to_string(), u[*k].clone());
    }
    out.insert("schemas".into(), schemas);
    Value::Object(out)
}

#[test]
fn user_projections() {
    let rt = rt("User");
    let core_only = json!([CORE]);
    let both = json!([CORE, ENT]);
    let mut default = full_user();
    default.remove("password");
    let ent_department = format!("{ENT}:department");
    let ent_manager_value = format!("{ENT}:manager.value");
    let core_user_name = format!("{CORE}:userName");
    let ent_manager_display = format!("{ENT}:manager.displayName");
    let table: Vec<(Option<&str>, Option<&str>, Value)> = vec![
        // default: everything but returned=never
        (None, None, Value::Object(default.clone())),
        (Some(""), Some(""), Value::Object(default.clone())),
        // attributes: id (always) plus what was asked
        (Some("userName"), None, only(&["id", "userName"], core_only.clone())),
        (
            Some("USERNAME, displayName"),
            None,
            only(&["id", "userName", "displayName"], core_only.clone()),
        ),
        (Some("id"), None, only(&["id"], core_only.clone())),
        (Some("meta"), None, only(&["id", "meta"], core_only.clone())),
        // password is never returned, even when asked for
        (Some("password"), None, only(&["id"], core_only.clone())),
        (
            Some("userName,password"),
            None,
            only(&["id", "userName"], core_only.clone()),
        ),
        // sub-attributes
        (
            Some("name.givenName"),
            None,
            json!({"schemas": [CORE], "id": "u1", "name": {"givenName": "Alice"}}),
        ),
        (
            Some("name.givenName,name"),
            None,
            only(&["id", "name"], core_only.clone()),
        ),
        (
            Some("emails.value"),
            None,
            json!({"schemas": [CORE], "id": "u1", "emails": [{"value": "a@x"}, {"value": "b@x"}]}),
        ),
        (
            Some("emails.type,emails.value"),
            None,
            json!({"schemas": [CORE], "id": "u1", "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}]}),
        ),
        // nothing left of a complex value: the attribute is left out
        (
            Some("name.middleName,userName"),
            None,
            only(&["id", "userName"], core_only.clone()),
        ),
        (
            Some("emails.display,userName"),
            None,
            only(&["id", "userName"], core_only.clone()),
        ),
        (Some(ent_manager_display.as_str()), None, {
            json!({"schemas": [CORE, ENT], "id": "u1", ENT: {"manager": {"displayName": "Boss"}}})
        }),
        (
            Some("manager.costCenter,userName"),
            None,
            only(&["id", "userName"], core_only.clone()),
        ),
        (None, Some("name.givenName,name.familyName"), {
            let mut d = default.clone();
            d.remove("name");
            Value::Object(d)
        }),
        // URN-qualified names and whole extensions
        (
            Some(ent_department.as_str()),
            None,
            json!({"schemas": [CORE, ENT], "id": "u1", ENT: {"department": "R&D"}}),
        ),
        (
            Some("department"),
            None,
            json!({"schemas": [CORE, ENT], "id": "u1", ENT: {"department": "R&D"}}),
        ),
        (
            Some(ent_manager_value.as_str()),
            None,
            json!({"schemas": [CORE, ENT], "id": "u1", ENT: {"manager": {"value": "m1"}}}),
        ),
        (Some(ENT), None, only(&["id", ENT], both.clone())),
        (
            Some(core_user_name.as_str()),
            None,
            only(&["id", "userName"], core_only.clone()),
        ),
        // unknown names are ignored
        (
            Some("userName,doesNotExist"),
            None,
            only(&["id", "userName"], core_only.clone()),
        ),
        // excludedAttributes
        (None, Some("emails"), {
            let mut d = default.clone();
            d.remove("emails");
            Value::Object(d)
        }),
        (None, Some("id,emails"), {
            let mut d = default.clone();
            d.remove("emails");
            Value::Object(d)
        }),
        (None, Some("name.familyName"), {
            let mut d = default.clone();
            d.insert("name".into(), json!({"givenName": "Alice"}));
            Value::Object(d)
        }),
        (None, Some("emails.primary"), {
            let mut d = default.clone();
            d.insert(
                "emails".into(),
                json!([{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}]),
            );
            Value::Object(d)
        }),
        (None, Some(ent_department.as_str()), {
            let mut d = default.clone();
            d[ENT].as_object_mut().unwrap().remove("department");
            Value::Object(d)
        }),
        (None, Some(ENT), {
            let mut d = default.clone();
            d.remove(ENT);
            d.insert("schemas".into(), json!([CORE]));
            Value::Object(d)
        }),
        (None, Some("groups,meta,externalId"), {
            let mut d = default.clone();
            d.remove("groups");
            d.remove("meta");
            d.remove("externalId");
            Value::Object(d)
        }),
        // attributes wins when both are given
        (
            Some("userName"),
            Some("userName"),
            only(&["id", "userName"], core_only.clone()),
        ),
    ];
    for (attributes, excluded, want) in table {
        assert_eq!(
            project(&rt, attributes, excluded, full_user()),
            want,
            "attributes={attributes:?} excluded={excluded:?}"
        );
    }
}

#[test]
fn group_projection_excluding_members() {
    let rt = rt("Group");
    let group = match json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "g1", "displayName": "Eng", "externalId": "e",
        "members": [{"value": "u1", "type": "User", "display": "A", "$ref": "http://x/Users/u1"}],
        "meta": {"resourceType": "Group"}
    }) {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    let p = Projection::parse(&rt, None, Some("members")).unwrap();
    let members = rt.schema.attribute("members").unwrap();
    assert!(!p.wants(None, "members", members));
    let mut g = group.clone();
    p.apply(&rt, &mut g);
    assert!(!g.contains_key("members"));
    assert_eq!(g["displayName"], json!("Eng"));

    let p = Projection::parse(&rt, Some("displayName"), None).unwrap();
    assert!(!p.wants(None, "members", members));
    let mut g = group.clone();
    p.apply(&rt, &mut g);
    assert_eq!(
        Value::Object(g),
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1", "displayName": "Eng"})
    );

    let p = Projection::parse(&rt, Some("members.value"), None).unwrap();
    assert!(p.wants(None, "members", members));
    let mut g = group.clone();
    p.apply(&rt, &mut g);
    assert_eq!(g["members"], json!([{"value": "u1"}]));

    let p = Projection::parse(&rt, None, None).unwrap();
    assert!(p.is_default());
    assert!(p.wants(None, "members", members));
}

#[test]
fn invalid_attribute_names() {
    let rt = rt("User");
    for bad in [
        "emails[type eq \"work\"]",
        "name..givenName",
        "1abc",
        "http://x:y",
        "name.givenName.x",
    ] {
        let e = Projection::parse(&rt, Some(bad), None).expect_err(bad);
        assert_eq!((e.status, e.scim_type), (400, Some(ScimType::InvalidValue)), "{bad}");
        let e = Projection::parse(&rt, None, Some(bad)).expect_err(bad);
        assert_eq!(e.status, 400, "{bad}");
    }
}
