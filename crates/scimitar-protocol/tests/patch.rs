//! Table-driven tests of PATCH (RFC 7644 §3.5.2) in both of Entra's
//! dialects (entra-provisioning.md §1.5–1.9 and §2).

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use scimitar_protocol::Result;
use scimitar_protocol::ScimType;
use scimitar_protocol::patch::{MemberAccess, MemberOp, NoMembers, apply_patch, parse_patch_request};
use scimitar_protocol::resource::{MemberRef, normalize_input};
use scimitar_protocol::schema::{ResourceType, builtin_resource_types};
use serde_json::{Map, Value, json};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn rt(name: &str) -> ResourceType {
    builtin_resource_types().into_iter().find(|r| r.name == name).unwrap()
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn base_user() -> Map<String, Value> {
    obj(json!({
        "userName": "alice@contoso.com",
        "displayName": "Alice",
        "active": true,
        "name": {"givenName": "Alice", "familyName": "Smith"},
        "emails": [{"type": "work", "value": "alice@contoso.com", "primary": true}],
        ENT: {"employeeNumber": "12345", "department": "R&D"}
    }))
}

/// Runs a PatchOp body with `ops` against `doc` and returns the new doc.
fn run(
    rt: &ResourceType,
    doc: &Map<String, Value>,
    ops: Value,
    members: &mut dyn MemberAccess,
) -> Result<(Map<String, Value>, Vec<MemberOp>)> {
    let body = json!({"schemas": [PATCH_OP], "Operations": ops});
    let ops = parse_patch_request(&body, 100)?;
    let mut d = doc.clone();
    let m = apply_patch(rt, &mut d, &ops, members)?;
    Ok((d, m))
}

fn patch_user(ops: Value) -> Result<Map<String, Value>> {
    run(&rt("User"), &base_user(), ops, &mut NoMembers).map(|(d, _)| d)
}

/// `base_user()` with `edit` applied to its JSON.
fn user_with(edit: impl FnOnce(&mut Value)) -> Map<String, Value> {
    let mut v = Value::Object(base_user());
    edit(&mut v);
    obj(v)
}

#[test]
fn user_patches_produce_the_expected_document() {
    let table: Vec<(&str, Value, Map<String, Value>)> = vec![
        (
            "replace a simple attribute",
            json!([{"op": "replace", "path": "userName", "value": "bob@contoso.com"}]),
            user_with(|u| u["userName"] = json!("bob@contoso.com")),
        ),
        (
            "capitalised op, case-insensitive path",
            json!([{"op": "Replace", "path": "DISPLAYNAME", "value": "Alice J"}]),
            user_with(|u| u["displayName"] = json!("Alice J")),
        ),
        (
            "string boolean False (legacy disable)",
            json!([{"op": "Replace", "path": "active", "value": "False"}]),
            user_with(|u| u["active"] = json!(false)),
        ),
        (
            "boolean false (compliant disable)",
            json!([{"op": "replace", "path": "active", "value": false}]),
            user_with(|u| u["active"] = json!(false)),
        ),
        (
            "string boolean true",
            json!([{"op": "Replace", "path": "active", "value": "true"}]),
            base_user(),
        ),
        (
            "add a single-valued attribute",
            json!([{"op": "Add", "path": "nickName", "value": "Babs"}]),
            user_with(|u| u["nickName"] = json!("Babs")),
        ),
        (
            "single-valued value sent as a one-element array",
            json!([{"op": "add", "path": "nickName", "value": ["Babs"]}]),
            user_with(|u| u["nickName"] = json!("Babs")),
        ),
        (
            "remove a simple attribute",
            json!([{"op": "remove", "path": "displayName"}]),
            user_with(|u| {
                u.as_object_mut().unwrap().remove("displayName");
            }),
        ),
        (
            "replace with empty string clears",
            json!([{"op": "replace", "path": "displayName", "value": ""}]),
            user_with(|u| {
                u.as_object_mut().unwrap().remove("displayName");
            }),
        ),
        (
            "replace with null clears",
            json!([{"op": "replace", "path": "displayName", "value": null}]),
            user_with(|u| {
                u.as_object_mut().unwrap().remove("displayName");
            }),
        ),
        (
            "removing an absent attribute succeeds",
            json!([{"op": "remove", "path": "nickName"}, {"op": "remove", "path": "addresses"},
                   {"op": "remove", "path": "emails[type eq \"fax\"]"}, {"op": "remove", "path": "name.middleName"},
                   {"op": "remove", "path": format!("{ENT}:manager")}]),
            base_user(),
        ),
        (
            "sub-attribute path",
            json!([{"op": "Replace", "path": "name.familyName", "value": "Jones"}]),
            user_with(|u| u["name"]["familyName"] = json!("Jones")),
        ),
        (
            "sub-attribute path, different case",
            json!([{"op": "add", "path": "Name.MiddleName", "value": "M"}]),
            user_with(|u| u["name"]["middleName"] = json!("M")),
        ),
        (
            "replace a complex attribute merges sub-attributes",
            json!([{"op": "replace", "path": "name", "value": {"givenName": "Ally", "formatted": "Ally Smith"}}]),
            user_with(|u| u["name"] = json!({"givenName": "Ally", "familyName": "Smith", "formatted": "Ally Smith"})),
        ),
        (
            "remove a sub-attribute",
            json!([{"op": "remove", "path": "name.givenName"}]),
            user_with(|u| u["name"] = json!({"familyName": "Smith"})),
        ),
        (
            "remove the last sub-attributes removes the attribute",
            json!([{"op": "remove", "path": "name.givenName"}, {"op": "replace", "path": "name.familyName", "value": ""}]),
            user_with(|u| {
                u.as_object_mut().unwrap().remove("name");
            }),
        ),
        (
            "remove a complex attribute",
            json!([{"op": "remove", "path": "name"}]),
            user_with(|u| {
                u.as_object_mut().unwrap().remove("name");
            }),
        ),
        (
            "URN path into the enterprise extension",
            json!([{"op": "Replace", "path": format!("{ENT}:employeeNumber"), "value": "777"}]),
            user_with(|u| u[ENT]["employeeNumber"] = json!("777")),
        ),
        (
            "URN path into the core schema",
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:name.givenName", "value": "Al"}]),
            user_with(|u| u["name"]["givenName"] = json!("Al")),
        ),
        (
            "unqualified extension attribute",
            json!([{"op": "add", "path": "costCenter", "value": "CC1"}]),
            user_with(|u| u[ENT]["costCenter"] = json!("CC1")),
        ),
        (
            "removing the last extension attribute removes the extension",
            json!([{"op": "remove", "path": format!("{ENT}:employeeNumber")}, {"op": "remove", "path": "department"}]),
            user_with(|u| {
                u.as_object_mut().unwrap().remove(ENT);
            }),
        ),
        (
            "value filter + sub-attribute replaces the typed value",
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"}]),
            user_with(|u| u["emails"][0]["value"] = json!("new@contoso.com")),
        ),
        (
            "value filter + sub-attribute creates the typed value when missing",
            json!([{"op": "Add", "path": "emails[type eq \"home\"].value", "value": "a@home.example"}]),
            user_with(|u| {
                u["emails"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "home", "value": "a@home.example"}))
            }),
        ),
        (
            "value filter creation never duplicates the element",
            json!([{"op": "Add", "path": "emails[type eq \"home\"].value", "value": "a@home.example"},
                   {"op": "Replace", "path": "emails[type eq \"home\"].value", "value": "b@home.example"},
                   {"op": "add", "path": "emails[type eq \"home\"].value", "value": "b@home.example"}]),
            user_with(|u| {
                u["emails"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "home", "value": "b@home.example"}))
            }),
        ),
        (
            "value filter on phoneNumbers (mobile) creates it",
            json!([{"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0101"}]),
            user_with(|u| u["phoneNumbers"] = json!([{"type": "mobile", "value": "+1 555 0101"}])),
        ),
        (
            "value filter on addresses sets sub-attributes of one address",
            json!([{"op": "Add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"},
                   {"op": "Add", "path": "addresses[type eq \"work\"].locality", "value": "Seattle"}]),
            user_with(|u| {
                u["addresses"] = json!([{"type": "work", "streetAddress": "1 Main St", "locality": "Seattle"}])
            }),
        ),
        (
            "value filter with empty value clears the typed value",
            json!([{"op": "Replace", "path": "emails[type eq \"work\"].value", "value": ""}]),
            user_with(|u| {
                u.as_object_mut().unwrap().remove("emails");
            }),
        ),
        (
            "value filter with empty value and no match is a no-op",
            json!([{"op": "Replace", "path": "emails[type eq \"home\"].value", "value": ""}]),
            base_user(),
        ),
        (
            "value filter without sub-attribute merges the object",
            json!([{"op": "replace", "path": "emails[type eq \"work\"]", "value": {"value": "w@contoso.com", "display": "W"}}]),
            user_with(|u| {
                u["emails"][0] = json!({"type": "work", "value": "w@contoso.com", "primary": true, "display": "W"})
            }),
        ),
        (
            "remove by value filter",
            json!([{"op": "remove", "path": "emails[type eq \"work\"]"}]),
            user_with(|u| {
                u.as_object_mut().unwrap().remove("emails");
            }),
        ),
        (
            "remove a sub-attribute of the filtered values",
            json!([{"op": "remove", "path": "emails[type eq \"work\"].primary"}]),
            user_with(|u| u["emails"][0] = json!({"type": "work", "value": "alice@contoso.com"})),
        ),
        (
            "add to a multi-valued attribute appends; primary stays unique",
            json!([{"op": "add", "path": "emails", "value": [{"type": "home", "value": "a@home.example", "primary": true}]}]),
            user_with(|u| {
                u["emails"] = json!([
                    {"type": "work", "value": "alice@contoso.com", "primary": false},
                    {"type": "home", "value": "a@home.example", "primary": true}
                ])
            }),
        ),
        (
            "adding an identical value does not duplicate it",
            json!([{"op": "add", "path": "emails", "value": [{"type": "work", "value": "alice@contoso.com", "primary": true}]}]),
            base_user(),
        ),
        (
            "replace a multi-valued attribute; last primary wins",
            json!([{"op": "replace", "path": "emails", "value": [
                {"type": "work", "value": "a@x.example", "primary": true},
                {"type": "home", "value": "b@x.example", "primary": "True"}]}]),
            user_with(|u| {
                u["emails"] = json!([
                    {"type": "work", "value": "a@x.example", "primary": false},
                    {"type": "home", "value": "b@x.example", "primary": true}
                ])
            }),
        ),
        (
            "setting primary through a filter demotes the old primary",
            json!([{"op": "add", "path": "emails[type eq \"home\"].value", "value": "h@x.example"},
                   {"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true}]),
            user_with(|u| {
                u["emails"] = json!([
                    {"type": "work", "value": "alice@contoso.com", "primary": false},
                    {"type": "home", "value": "h@x.example", "primary": true}
                ])
            }),
        ),
        (
            "remove a whole multi-valued attribute",
            json!([{"op": "remove", "path": "emails"}]),
            user_with(|u| {
                u.as_object_mut().unwrap().remove("emails");
            }),
        ),
        (
            "remove with a value list removes only those values",
            json!([{"op": "add", "path": "roles", "value": [{"value": "A"}, {"value": "B"}]},
                   {"op": "Remove", "path": "roles", "value": [{"value": "A"}]}]),
            user_with(|u| u["roles"] = json!([{"value": "B"}])),
        ),
        (
            "path-less replace with plain, dotted and URN keys",
            json!([{"op": "replace", "value": {
                "displayName": "Alice J", "name.givenName": "Ally", "name.familyName": "Jones",
                format!("{ENT}:employeeNumber"): "777", "active": "False"}}]),
            user_with(|u| {
                u["displayName"] = json!("Alice J");
                u["name"] = json!({"givenName": "Ally", "familyName": "Jones"});
                u[ENT]["employeeNumber"] = json!("777");
                u["active"] = json!(false);
            }),
        ),
        (
            "path-less add with a complex value and ignored bookkeeping keys",
            json!([{"op": "add", "value": {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "x", "meta": {"version": "1"},
                "groups": [{"value": "g"}], "name": {"middleName": "M"}, "nickName": "Babs"}}]),
            user_with(|u| {
                u["name"]["middleName"] = json!("M");
                u["nickName"] = json!("Babs");
            }),
        ),
        (
            "path-less add with the extension object (including its schemas key)",
            json!([{"op": "add", "value": {ENT: {"schemas": [ENT], "department": "Sales", "costCenter": "CC"}}}]),
            user_with(|u| {
                u[ENT]["department"] = json!("Sales");
                u[ENT]["costCenter"] = json!("CC");
            }),
        ),
        (
            "whole-extension path with a value that includes schemas",
            json!([{"op": "replace", "path": ENT, "value": {"schemas": [ENT], "division": "D1", "manager": "m1"}}]),
            user_with(|u| {
                u[ENT]["division"] = json!("D1");
                u[ENT]["manager"] = json!({"value": "m1"});
            }),
        ),
        (
            "remove the whole extension",
            json!([{"op": "remove", "path": ENT}]),
            user_with(|u| {
                u.as_object_mut().unwrap().remove(ENT);
            }),
        ),
        (
            "manager as a bare string (URN path)",
            json!([{"op": "add", "path": format!("{ENT}:manager"), "value": "m1"}]),
            user_with(|u| u[ENT]["manager"] = json!({"value": "m1"})),
        ),
        (
            "manager as {value}",
            json!([{"op": "replace", "path": "manager", "value": {"value": "m1", "displayName": "ignored"}}]),
            user_with(|u| u[ENT]["manager"] = json!({"value": "m1"})),
        ),
        (
            "manager as [{value,$ref}] (legacy)",
            json!([{"op": "Add", "path": "manager", "value": [{"$ref": "http://x/Users/m1", "value": "m1"}]}]),
            user_with(|u| u[ENT]["manager"] = json!({"value": "m1"})),
        ),
        (
            "manager in a path-less value",
            json!([{"op": "replace", "value": {format!("{ENT}:manager"): [{"value": "m1"}]}}]),
            user_with(|u| u[ENT]["manager"] = json!({"value": "m1"})),
        ),
        (
            "replace manager.value",
            json!([{"op": "add", "path": "manager", "value": "m1"},
                   {"op": "replace", "path": format!("{ENT}:manager.value"), "value": "m2"}]),
            user_with(|u| u[ENT]["manager"] = json!({"value": "m2"})),
        ),
        (
            "remove manager[value eq …]",
            json!([{"op": "add", "path": "manager", "value": "m1"},
                   {"op": "remove", "path": "manager[value eq \"m1\"]"}]),
            base_user(),
        ),
        (
            "remove manager[value eq …] with another id keeps it",
            json!([{"op": "add", "path": "manager", "value": "m1"},
                   {"op": "remove", "path": format!("{ENT}:manager[value eq \"m9\"]")}]),
            user_with(|u| u[ENT]["manager"] = json!({"value": "m1"})),
        ),
        (
            "replace manager with {\"value\":\"\"} removes it (validator)",
            json!([{"op": "add", "path": "manager", "value": "m1"},
                   {"op": "replace", "path": format!("{ENT}:manager"), "value": {"value": ""}}]),
            base_user(),
        ),
        (
            "replace manager with null removes it",
            json!([{"op": "add", "path": "manager", "value": "m1"},
                   {"op": "replace", "path": "manager", "value": null}]),
            base_user(),
        ),
        (
            "Entra role mapping roles[primary eq \"True\"].value creates a boolean primary",
            json!([{"op": "Add", "path": "roles[primary eq \"True\"].value", "value": "Admin"},
                   {"op": "Replace", "path": "roles[primary eq \"True\"].value", "value": "Reader"}]),
            user_with(|u| u["roles"] = json!([{"primary": true, "value": "Reader"}])),
        ),
        (
            "filtered sub-attribute ops in any order build one element",
            json!([{"op": "Add", "path": "roles[primary eq \"True\"].display", "value": "Admin"},
                   {"op": "Add", "path": "roles[primary eq \"True\"].type", "value": "WindowsAzureActiveDirectoryRole"},
                   {"op": "Add", "path": "roles[primary eq \"True\"].value", "value": "25"},
                   {"op": "Replace", "path": "emails[type eq \"home\"].primary", "value": "True"},
                   {"op": "Add", "path": "emails[type eq \"home\"].value", "value": "h@x.example"}]),
            user_with(|u| {
                u["roles"] = json!([{"primary": true, "display": "Admin", "type": "WindowsAzureActiveDirectoryRole", "value": "25"}]);
                u["emails"] = json!([
                    {"type": "work", "value": "alice@contoso.com", "primary": false},
                    {"type": "home", "primary": true, "value": "h@x.example"}
                ]);
            }),
        ),
        (
            "a value left without its value is dropped at the end",
            json!([{"op": "Add", "path": "emails[type eq \"home\"].display", "value": "Home"},
                   {"op": "remove", "path": "emails[type eq \"work\"].value"}]),
            user_with(|u| {
                u.as_object_mut().unwrap().remove("emails");
            }),
        ),
        (
            "AssertiveAppRoleAssignmentsComplex: replace the whole role list",
            json!([{"op": "add", "path": "roles", "value": [{"value": "A"}]},
                   {"op": "replace", "path": "roles", "value": [{"value": "B", "primary": false}, {"value": "C", "primary": false}]}]),
            user_with(|u| u["roles"] = json!([{"value": "B", "primary": false}, {"value": "C", "primary": false}])),
        ),
        (
            "operations apply in order",
            json!([{"op": "add", "path": "nickName", "value": "A"}, {"op": "remove", "path": "nickName"},
                   {"op": "add", "path": "nickName", "value": "B"}]),
            user_with(|u| u["nickName"] = json!("B")),
        ),
    ];
    for (name, ops, want) in table {
        match patch_user(ops) {
            Ok(got) => assert_eq!(Value::Object(got), Value::Object(want), "{name}"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

#[test]
fn invalid_user_patches_give_the_right_error() {
    let table: Vec<(&str, Value, u16, Option<ScimType>)> = vec![
        (
            "unknown attribute",
            json!([{"op": "add", "path": "foo", "value": "x"}]),
            400,
            Some(ScimType::InvalidPath),
        ),
        (
            "unknown sub-attribute",
            json!([{"op": "add", "path": "name.foo", "value": "x"}]),
            400,
            Some(ScimType::InvalidPath),
        ),
        (
            "unknown extension",
            json!([{"op": "add", "path": "urn:example:ext:1.0:User:foo", "value": "x"}]),
            400,
            Some(ScimType::InvalidPath),
        ),
        (
            "malformed path",
            json!([{"op": "add", "path": "emails[type eq", "value": "x"}]),
            400,
            Some(ScimType::InvalidPath),
        ),
        (
            "sub of a simple attribute",
            json!([{"op": "add", "path": "displayName.x", "value": "x"}]),
            400,
            Some(ScimType::InvalidPath),
        ),
        (
            "filter on a simple attribute",
            json!([{"op": "add", "path": "displayName[value eq \"x\"]", "value": "x"}]),
            400,
            Some(ScimType::InvalidPath),
        ),
        (
            "members on a User",
            json!([{"op": "add", "path": "members", "value": [{"value": "x"}]}]),
            400,
            Some(ScimType::InvalidPath),
        ),
        (
            "unknown key in a path-less value",
            json!([{"op": "replace", "value": {"displayName": "x", "bogus": 1}}]),
            400,
            Some(ScimType::InvalidPath),
        ),
        (
            "unknown key in an extension value",
            json!([{"op": "add", "path": ENT, "value": {"bogus": 1}}]),
            400,
            Some(ScimType::InvalidPath),
        ),
        (
            "readOnly id",
            json!([{"op": "replace", "path": "id", "value": "x"}]),
            400,
            Some(ScimType::Mutability),
        ),
        (
            "readOnly meta.created",
            json!([{"op": "replace", "path": "meta.created", "value": "2020-01-01T00:00:00Z"}]),
            400,
            Some(ScimType::Mutability),
        ),
        (
            "readOnly groups",
            json!([{"op": "add", "path": "groups", "value": [{"value": "g"}]}]),
            400,
            Some(ScimType::Mutability),
        ),
        (
            "remove readOnly groups",
            json!([{"op": "remove", "path": "groups"}]),
            400,
            Some(ScimType::Mutability),
        ),
        (
            "remove without path",
            json!([{"op": "remove"}]),
            400,
            Some(ScimType::NoTarget),
        ),
        (
            "remove with empty path",
            json!([{"op": "Remove", "path": ""}]),
            400,
            Some(ScimType::NoTarget),
        ),
        (
            "value filter that cannot create a value",
            json!([{"op": "replace", "path": "emails[value co \"x\"].display", "value": "x"}]),
            400,
            Some(ScimType::NoTarget),
        ),
        (
            "path-less add with a non-object",
            json!([{"op": "add", "value": "x"}]),
            400,
            Some(ScimType::InvalidValue),
        ),
        (
            "boolean that is not one",
            json!([{"op": "replace", "path": "active", "value": "abc"}]),
            400,
            Some(ScimType::InvalidValue),
        ),
        (
            "object for a string",
            json!([{"op": "replace", "path": "displayName", "value": {"a": 1}}]),
            400,
            Some(ScimType::InvalidValue),
        ),
        (
            "string for a complex without value",
            json!([{"op": "replace", "path": "name", "value": "x"}]),
            400,
            Some(ScimType::InvalidValue),
        ),
        (
            "unknown sub-attribute in a value",
            json!([{"op": "add", "path": "emails", "value": [{"value": "a", "bogus": 1}]}]),
            400,
            Some(ScimType::InvalidValue),
        ),
        (
            "two values for a single-valued attribute",
            json!([{"op": "add", "path": "nickName", "value": ["a", "b"]}]),
            400,
            Some(ScimType::InvalidValue),
        ),
        (
            "removing a required attribute",
            json!([{"op": "remove", "path": "userName"}]),
            400,
            Some(ScimType::InvalidValue),
        ),
        (
            "clearing a required attribute",
            json!([{"op": "replace", "value": {"userName": ""}}]),
            400,
            Some(ScimType::InvalidValue),
        ),
        (
            "unknown op",
            json!([{"op": "move", "path": "userName", "value": "x"}]),
            400,
            Some(ScimType::InvalidSyntax),
        ),
        (
            "missing op",
            json!([{"path": "userName", "value": "x"}]),
            400,
            Some(ScimType::InvalidSyntax),
        ),
        (
            "add without value",
            json!([{"op": "add", "path": "userName"}]),
            400,
            Some(ScimType::InvalidValue),
        ),
        (
            "non-string path",
            json!([{"op": "add", "path": 5, "value": "x"}]),
            400,
            Some(ScimType::InvalidPath),
        ),
        ("empty operations", json!([]), 400, Some(ScimType::InvalidSyntax)),
        (
            "operation not an object",
            json!(["add"]),
            400,
            Some(ScimType::InvalidSyntax),
        ),
        (
            "an invalid op among valid ones",
            json!([{"op": "replace", "path": "displayName", "value": "ok"}, {"op": "add", "path": "bogus", "value": 1},
                   {"op": "add", "path": "nickName", "value": "ok"}]),
            400,
            Some(ScimType::InvalidPath),
        ),
    ];
    for (name, ops, status, scim_type) in table {
        let rt = rt("User");
        let body = json!({"schemas": [PATCH_OP], "Operations": ops});
        let before = base_user();
        let mut doc = before.clone();
        let result = parse_patch_request(&body, 100).and_then(|ops| apply_patch(&rt, &mut doc, &ops, &mut NoMembers));
        let e = result.expect_err(name);
        assert_eq!((e.status, e.scim_type), (status, scim_type), "{name}: {e}");
        // Atomicity: a failed PATCH leaves the document as it was.
        assert_eq!(doc, before, "{name}: document changed by a failed PATCH");
    }
}

#[test]
fn patch_request_envelope() {
    let ok = json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "nickName", "value": "x"}]});
    assert_eq!(parse_patch_request(&ok, 10).unwrap().len(), 1);
    // `operations` in another case, no schemas: tolerated.
    let lax = json!({"operations": [{"OP": "ADD", "PATH": "nickName", "VALUE": "x"}]});
    assert_eq!(parse_patch_request(&lax, 10).unwrap().len(), 1);
    let table: Vec<(Value, ScimType)> = vec![
        (json!([]), ScimType::InvalidSyntax),
        (
            json!({"schemas": ["urn:wrong"], "Operations": [{"op": "add", "value": {}}]}),
            ScimType::InvalidSyntax,
        ),
        (json!({"schemas": [PATCH_OP]}), ScimType::InvalidSyntax),
        (
            json!({"schemas": [PATCH_OP], "Operations": {}}),
            ScimType::InvalidSyntax,
        ),
        (
            json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "a", "value": 1}, {"op": "add", "path": "a", "value": 1}, {"op": "add", "path": "a", "value": 1}]}),
            ScimType::TooMany,
        ),
    ];
    for (body, t) in table {
        let e = parse_patch_request(&body, 2).expect_err(&body.to_string());
        assert_eq!((e.status, e.scim_type), (400, Some(t)), "{body}");
    }
}

/// §1.5: the same change in the legacy dialect (one capitalised op per
/// attribute, string booleans) and the compliant one (`aadOptscim062020`:
/// one path-less replace with path keys) gives the same document.
#[test]
fn entra_legacy_and_compliant_dialects_agree() {
    let legacy = json!([
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"},
        {"op": "Replace", "path": "displayName", "value": "Alice J"},
        {"op": "Replace", "path": "name.givenName", "value": "Alice"},
        {"op": "Replace", "path": "name.familyName", "value": "Jones"},
        {"op": "Replace", "path": format!("{ENT}:employeeNumber"), "value": "777"},
        {"op": "Add", "path": "nickName", "value": "Babs"},
        {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0101"},
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Add", "path": "manager", "value": [{"$ref": "http://x/Users/m1", "value": "m1"}]},
        {"op": "Add", "path": "roles", "value": [{"value": "{\"id\":\"06b07648-ecfe-589f-9d2f-6325724a46ee\",\"value\":\"25\",\"displayName\":\"Role1234\"}"}]}
    ]);
    let compliant = json!([
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"},
        {"op": "add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555 0101"},
        {"op": "replace", "value": {
            "displayName": "Alice J", "name.givenName": "Alice", "name.familyName": "Jones",
            format!("{ENT}:employeeNumber"): "777", "nickName": "Babs", "active": false}},
        {"op": "add", "path": format!("{ENT}:manager"), "value": "m1"},
        {"op": "add", "path": "roles", "value": [{"value": "25", "display": "Role1234"}]}
    ]);
    let a = patch_user(legacy).unwrap();
    let b = patch_user(compliant).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        a["emails"],
        json!([{"type": "work", "value": "new@contoso.com", "primary": true}])
    );
    assert_eq!(a["roles"], json!([{"value": "25", "display": "Role1234"}]));
    assert_eq!(a["active"], json!(false));
    assert_eq!(
        a[ENT],
        json!({"employeeNumber": "777", "department": "R&D", "manager": {"value": "m1"}})
    );

    // The exact examples of §1.5 (they change different attribute sets).
    let legacy_doc = patch_user(json!([
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"},
        {"op": "Replace", "path": "name.familyName", "value": "Jones"},
        {"op": "Replace", "path": format!("{ENT}:employeeNumber"), "value": "777"},
        {"op": "Add", "path": "nickName", "value": "Babs"}
    ]))
    .unwrap();
    let compliant_doc = patch_user(json!([
        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@contoso.com"},
        {"op": "replace", "value": {"displayName": "Alice J", "name.givenName": "Alice", "name.familyName": "Jones",
            format!("{ENT}:employeeNumber"): "777"}}
    ]))
    .unwrap();
    let mut l = legacy_doc.clone();
    l.remove("nickName");
    let mut c = compliant_doc.clone();
    c.insert("displayName".into(), json!("Alice"));
    assert_eq!(l, c);
    assert_eq!(
        compliant_doc["name"],
        json!({"givenName": "Alice", "familyName": "Jones"})
    );
}

/// §1.9: a legacy role (stringified JSON in `value`) stores like the
/// compliant form, through POST and PATCH alike.
#[test]
fn legacy_roles_equal_compliant_roles_after_storage() {
    let rt = rt("User");
    let stringified = "{\"id\":\"06b07648-ecfe-589f-9d2f-6325724a46ee\",\"value\":\"25\",\"displayName\":\"Role1234\"}";
    let table = [
        (
            json!([{"value": stringified}]),
            json!([{"value": "25", "display": "Role1234"}]),
        ),
        (
            json!({"value": stringified}),
            json!([{"value": "25", "display": "Role1234"}]),
        ),
        (
            json!([{"value": "{\"value\":\"Admin\",\"type\":\"WindowsAzureActiveDirectoryRole\"}", "primary": "True"}]),
            json!([{"value": "Admin", "type": "WindowsAzureActiveDirectoryRole", "primary": true}]),
        ),
        (
            json!([{"value": "{not json", "primary": false}]),
            json!([{"value": "{not json", "primary": false}]),
        ),
    ];
    for (legacy, compliant) in table {
        let via_patch = patch_user(json!([{"op": "Add", "path": "roles", "value": legacy}])).unwrap();
        let via_compliant = patch_user(json!([{"op": "add", "path": "roles", "value": compliant}])).unwrap();
        assert_eq!(via_patch["roles"], via_compliant["roles"], "{legacy}");
        let post = normalize_input(&rt, &json!({"userName": "a", "roles": legacy})).unwrap();
        assert_eq!(post.doc["roles"], via_compliant["roles"], "{legacy}");
    }
}

// ---------------------------------------------------------------------------
// Groups: member operations come back as MemberOps.

fn m(v: &str) -> MemberRef {
    MemberRef {
        value: v.into(),
        kind: None,
        display: None,
    }
}

/// A group's current members, for filters that need them.
struct Current(Vec<Value>, usize);
impl MemberAccess for Current {
    fn list(&mut self) -> Result<Vec<Value>> {
        self.1 += 1;
        Ok(self.0.clone())
    }
}

#[test]
fn group_member_operations() {
    let group = obj(json!({"displayName": "Engineering", "externalId": "8aa1"}));
    let table: Vec<(&str, Value, Vec<MemberOp>)> = vec![
        (
            "add a list of members (Entra, with $ref null)",
            json!([{"op": "Add", "path": "members", "value": [{"$ref": null, "value": "u1"}, {"value": "u2"}]}]),
            vec![MemberOp::Add(vec![m("u1"), m("u2")])],
        ),
        (
            "add with type and display",
            json!([{"op": "add", "path": "members", "value": [{"value": "g2", "type": "Group", "display": "Nested"}]}]),
            vec![MemberOp::Add(vec![MemberRef {
                value: "g2".into(),
                kind: Some("Group".into()),
                display: Some("Nested".into()),
            }])],
        ),
        (
            "legacy remove with a value list removes only those",
            json!([{"op": "Remove", "path": "members", "value": [{"value": "u1"}, {"value": "u3"}]}]),
            vec![MemberOp::Remove(vec!["u1".into(), "u3".into()])],
        ),
        (
            "compliant remove by filter",
            json!([{"op": "remove", "path": "members[value eq \"u1\"]"}]),
            vec![MemberOp::Remove(vec!["u1".into()])],
        ),
        (
            "remove by filter with or",
            json!([{"op": "remove", "path": "members[value eq \"u1\" or value eq \"u2\"]"}]),
            vec![MemberOp::Remove(vec!["u1".into(), "u2".into()])],
        ),
        (
            "remove all members",
            json!([{"op": "remove", "path": "members"}]),
            vec![MemberOp::Clear],
        ),
        (
            "replace members (the validator's Add Member)",
            json!([{"op": "replace", "path": "members", "value": [{"value": "u9"}]}]),
            vec![MemberOp::Clear, MemberOp::Add(vec![m("u9")])],
        ),
        (
            "replace members with []",
            json!([{"op": "replace", "path": "members", "value": []}]),
            vec![MemberOp::Clear],
        ),
        (
            "replace a filtered member",
            json!([{"op": "replace", "path": "members[value eq \"u1\"]", "value": {"value": "u2"}}]),
            vec![MemberOp::Remove(vec!["u1".into()]), MemberOp::Add(vec![m("u2")])],
        ),
        (
            "add then remove in one PATCH keeps the order",
            json!([{"op": "add", "path": "members", "value": [{"value": "u1"}]},
                   {"op": "remove", "path": "members[value eq \"u1\"]"}]),
            vec![MemberOp::Add(vec![m("u1")]), MemberOp::Remove(vec!["u1".into()])],
        ),
        (
            "path-less replace with displayName and members",
            json!([{"op": "replace", "value": {"displayName": "Eng", "members": [{"value": "u1"}]}}]),
            vec![MemberOp::Clear, MemberOp::Add(vec![m("u1")])],
        ),
        (
            "add an empty list is a no-op",
            json!([{"op": "add", "path": "members", "value": []}]),
            vec![],
        ),
        (
            "legacy remove with an empty list is a no-op",
            json!([{"op": "remove", "path": "members", "value": []}]),
            vec![],
        ),
    ];
    let rt = rt("Group");
    for (name, ops, want) in table {
        let (doc, got) = run(&rt, &group, ops, &mut NoMembers).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
        assert!(
            !doc.contains_key("members"),
            "{name}: members must never be stored in the doc"
        );
    }
}

#[test]
fn group_member_filters_that_need_the_member_list() {
    let rt = rt("Group");
    let group = obj(json!({"displayName": "Engineering"}));
    let mut current = Current(
        vec![
            json!({"value": "u1", "type": "User", "display": "Alice"}),
            json!({"value": "g1", "type": "Group", "display": "Nested"}),
            json!({"value": "u2", "type": "User", "display": "Bob"}),
        ],
        0,
    );
    let (_, ops) = run(
        &rt,
        &group,
        json!([{"op": "remove", "path": "members[type eq \"Group\"]"}]),
        &mut current,
    )
    .unwrap();
    assert_eq!(ops, vec![MemberOp::Remove(vec!["g1".into()])]);
    let (_, ops) = run(
        &rt,
        &group,
        json!([{"op": "remove", "path": "members[display sw \"a\"]"}]),
        &mut current,
    )
    .unwrap();
    assert_eq!(ops, vec![MemberOp::Remove(vec!["u1".into()])]);
    assert_eq!(current.1, 2);
    // `value eq` filters are answered without reading the group.
    let (_, ops) = run(
        &rt,
        &group,
        json!([{"op": "remove", "path": "members[value eq \"zz\"]"}]),
        &mut current,
    )
    .unwrap();
    assert_eq!(ops, vec![MemberOp::Remove(vec!["zz".into()])]);
    assert_eq!(current.1, 2);
    // Replacing through a filter that matches nobody: noTarget (RFC 7644
    // §3.5.2.3). Only decidable when the member list is read; for
    // `value eq` filters see `replace_by_value_filter_does_not_check_membership`.
    let e = run(
        &rt,
        &group,
        json!([{"op": "replace", "path": "members[type eq \"Nobody\"]", "value": {"value": "x"}}]),
        &mut current,
    )
    .unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::NoTarget));
    // Removing by a filter that matches nobody is a no-op.
    let (_, ops) = run(
        &rt,
        &group,
        json!([{"op": "remove", "path": "members[type eq \"Nobody\"]"}]),
        &mut current,
    )
    .unwrap();
    assert!(ops.is_empty());
}

#[test]
fn invalid_group_patches() {
    let rt = rt("Group");
    let group = obj(json!({"displayName": "Engineering"}));
    let table: Vec<(&str, Value, ScimType)> = vec![
        (
            "member without value",
            json!([{"op": "add", "path": "members", "value": [{"display": "x"}]}]),
            ScimType::InvalidValue,
        ),
        (
            "member with empty value",
            json!([{"op": "add", "path": "members", "value": [{"value": ""}]}]),
            ScimType::InvalidValue,
        ),
        (
            "member with a bad type",
            json!([{"op": "add", "path": "members", "value": [{"value": "u", "type": "Device"}]}]),
            ScimType::InvalidValue,
        ),
        (
            "member value not a string",
            json!([{"op": "add", "path": "members", "value": [{"value": {"a": 1}}]}]),
            ScimType::InvalidValue,
        ),
        (
            "member sub-attribute path",
            json!([{"op": "replace", "path": "members.value", "value": "x"}]),
            ScimType::Mutability,
        ),
        (
            "removing displayName",
            json!([{"op": "remove", "path": "displayName"}]),
            ScimType::InvalidValue,
        ),
        (
            "User attribute on a Group",
            json!([{"op": "add", "path": "userName", "value": "x"}]),
            ScimType::InvalidPath,
        ),
        (
            "enterprise URN on a Group",
            json!([{"op": "add", "path": format!("{ENT}:department"), "value": "x"}]),
            ScimType::InvalidPath,
        ),
    ];
    for (name, ops, t) in table {
        let e = run(&rt, &group, ops, &mut NoMembers).expect_err(name);
        assert_eq!((e.status, e.scim_type), (400, Some(t)), "{name}: {e}");
    }
    // Group attributes still patch normally alongside member ops.
    let (doc, ops) = run(
        &rt,
        &group,
        json!([{"op": "Replace", "path": "displayName", "value": "Eng"}, {"op": "Add", "path": "externalId", "value": "e1"}]),
        &mut NoMembers,
    )
    .unwrap();
    assert_eq!(Value::Object(doc), json!({"displayName": "Eng", "externalId": "e1"}));
    assert!(ops.is_empty());
}

/// Current behaviour (see report): `replace members[value eq "x"]` is
/// answered without reading the group, so it cannot tell whether `x` is a
/// member; it becomes remove-then-add instead of RFC 7644's noTarget.
#[test]
fn replace_by_value_filter_does_not_check_membership() {
    let rt = rt("Group");
    let group = obj(json!({"displayName": "Engineering"}));
    let (_, ops) = run(
        &rt,
        &group,
        json!([{"op": "replace", "path": "members[value eq \"nobody\"]", "value": {"value": "x"}}]),
        &mut NoMembers,
    )
    .unwrap();
    assert_eq!(
        ops,
        vec![MemberOp::Remove(vec!["nobody".into()]), MemberOp::Add(vec![m("x")])]
    );
}

/// A filter other than `value eq` selects at most `MAX_FILTERED_MEMBERS`
/// members per operation (one write transaction holds the store's writer);
/// past it the PATCH is refused with 400 `tooMany` and a detail that says
/// to remove in batches. Removal by ids is not limited.
#[test]
fn filtered_member_selection_is_bounded() {
    use scimitar_protocol::patch::MAX_FILTERED_MEMBERS;
    let rt = rt("Group");
    let group = obj(json!({"displayName": "Everyone"}));
    let members = |n: usize| {
        Current(
            (0..n)
                .map(|i| json!({"value": format!("u-{i}"), "type": if i == 0 { "Group" } else { "User" }}))
                .collect(),
            0,
        )
    };
    let remove = |path: &str| json!([{"op": "remove", "path": path}]);
    // (members, path, how many removed or None for tooMany)
    let cases: &[(usize, &str, Option<usize>)] = &[
        (
            MAX_FILTERED_MEMBERS,
            r#"members[value co "-"]"#,
            Some(MAX_FILTERED_MEMBERS),
        ),
        (MAX_FILTERED_MEMBERS + 1, r#"members[value co "-"]"#, None),
        (
            MAX_FILTERED_MEMBERS + 1,
            r#"members[type eq "User"]"#,
            Some(MAX_FILTERED_MEMBERS),
        ),
        (MAX_FILTERED_MEMBERS + 1, r#"members[type eq "Group"]"#, Some(1)),
        (3 * MAX_FILTERED_MEMBERS, r#"members[value pr]"#, None),
    ];
    for (n, path, want) in cases {
        let r = run(&rt, &group, remove(path), &mut members(*n));
        match (r, want) {
            (Ok((_, ops)), Some(k)) => match ops.as_slice() {
                [MemberOp::Remove(ids)] => assert_eq!(ids.len(), *k, "{path} of {n}"),
                other => panic!("{path} of {n}: {other:?}"),
            },
            (Err(e), None) => {
                assert_eq!(e.scim_type, Some(ScimType::TooMany), "{path} of {n}: {e}");
                assert!(e.detail.contains("smaller batches"), "{}", e.detail);
            }
            (r, want) => panic!("{path} of {n}: {:?}, expected {want:?}", r.map(|(_, ops)| ops.len())),
        }
    }
    // Ids are not counted against the limit.
    let ids: Vec<Value> = (0..MAX_FILTERED_MEMBERS + 5)
        .map(|i| json!({"value": format!("u-{i}")}))
        .collect();
    let (_, ops) = run(
        &rt,
        &group,
        json!([{"op": "remove", "path": "members", "value": ids}]),
        &mut members(0),
    )
    .unwrap();
    assert!(matches!(ops.as_slice(), [MemberOp::Remove(ids)] if ids.len() == MAX_FILTERED_MEMBERS + 5));
}
