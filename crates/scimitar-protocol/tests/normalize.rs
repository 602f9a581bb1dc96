//! Table-driven tests of input validation and normalisation (POST/PUT
//! bodies), with the tolerance Entra needs (entra-provisioning.md §1.3,
//! §1.8) and strict rejection of unknown attributes and wrong types.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use scimitar_protocol::ScimType;
use scimitar_protocol::patch::{NoMembers, PatchOperation, apply_patch, parse_patch_request};
use scimitar_protocol::resource::{MemberRef, merge_for_replace, normalize_input};
use scimitar_protocol::schema::{
    AttrType, Attribute, Mutability, ResourceType, Returned, Schema, Uniqueness, builtin_resource_types,
};
use serde_json::{Map, Value, json};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const ENT_MISSPELT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0User";
const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

fn rt(name: &str) -> ResourceType {
    builtin_resource_types().into_iter().find(|r| r.name == name).unwrap()
}

fn doc(body: Value) -> Value {
    let rt = rt("User");
    Value::Object(
        normalize_input(&rt, &body)
            .unwrap_or_else(|e| panic!("{body}: {e}"))
            .doc,
    )
}

#[test]
fn entra_create_body_section_1_3() {
    let body = json!({
      "schemas": [CORE, ENT],
      "externalId": "alice",
      "userName": "alice@contoso.com",
      "active": true,
      "displayName": "Alice Smith",
      "title": "Engineer",
      "preferredLanguage": "en-US",
      "emails": [{"type": "work", "value": "alice@contoso.com", "primary": true}],
      "name": {"givenName": "Alice", "familyName": "Smith", "formatted": "Alice Smith"},
      "addresses": [{"type": "work", "streetAddress": "1 Main St", "locality": "Seattle",
                     "region": "WA", "postalCode": "98101", "country": "US", "formatted": "Bldg 4", "primary": true}],
      "phoneNumbers": [{"type": "work", "value": "+1 555 0100"}, {"type": "mobile", "value": "+1 555 0101"},
                       {"type": "fax", "value": "+1 555 0102"}],
      ENT: {"employeeNumber": "12345", "department": "R&D"},
      "meta": {"resourceType": "User"},
      "roles": []
    });
    let mut want = body.clone();
    let w = want.as_object_mut().unwrap();
    w.remove("schemas");
    w.remove("meta");
    w.remove("roles");
    assert_eq!(doc(body), want);
}

#[test]
fn entra_legacy_create_body_with_nulls_and_misspelt_urn() {
    let body = json!({
      "schemas": [CORE, ENT_MISSPELT],
      "externalId": "jyoung",
      "userName": "jyoung@testuser.com",
      "active": "True",
      "addresses": null,
      "displayName": "Joy Young",
      "emails": [{"type": "work", "value": "jyoung@Contoso.com", "primary": "true"}],
      "meta": {"resourceType": "User"},
      "name": {"formatted": "Joy Young", "familyName": "Young", "givenName": "Joy", "middleName": null},
      "nickName": "",
      "title": null,
      "preferredLanguage": "en-US",
      "phoneNumbers": null,
      ENT_MISSPELT: {"department": "Sales", "manager": null, "employeeNumber": null},
      "roles": []
    });
    assert_eq!(
        doc(body),
        json!({
          "externalId": "jyoung",
          "userName": "jyoung@testuser.com",
          "active": true,
          "displayName": "Joy Young",
          "emails": [{"type": "work", "value": "jyoung@Contoso.com", "primary": true}],
          "name": {"formatted": "Joy Young", "familyName": "Young", "givenName": "Joy"},
          "preferredLanguage": "en-US",
          ENT: {"department": "Sales"}
        })
    );
    // An extension whose attributes are all null disappears.
    let d = doc(json!({"userName": "a", ENT_MISSPELT: {"manager": null, "department": ""}}));
    assert_eq!(d, json!({"userName": "a"}));
}

#[test]
fn entra_group_create_with_adscim_schema() {
    let rt = rt("Group");
    let body = json!({
      "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                  "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
      "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
      "displayName": "Engineering",
      "meta": {"resourceType": "Group"}
    });
    let n = normalize_input(&rt, &body).unwrap();
    assert_eq!(
        Value::Object(n.doc),
        json!({"externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", "displayName": "Engineering"})
    );
    assert_eq!(n.members, None);

    let mut with_members = body.clone();
    with_members["members"] = json!([]);
    assert_eq!(normalize_input(&rt, &with_members).unwrap().members, Some(vec![]));
    with_members["members"] = json!([{"value": "u1", "display": "Alice"}, {"value": "g1", "type": "Group"}, "u2"]);
    let n = normalize_input(&rt, &with_members).unwrap();
    assert_eq!(
        n.members,
        Some(vec![
            MemberRef {
                value: "u1".into(),
                kind: None,
                display: Some("Alice".into())
            },
            MemberRef {
                value: "g1".into(),
                kind: Some("Group".into()),
                display: None
            },
            MemberRef {
                value: "u2".into(),
                kind: None,
                display: None
            },
        ])
    );
    assert!(!n.doc.contains_key("members"));
}

#[test]
fn tolerated_inputs_normalise() {
    let table: Vec<(&str, Value, Value)> = vec![
        (
            "string booleans",
            json!({"userName": "a", "active": "FALSE"}),
            json!({"userName": "a", "active": false}),
        ),
        (
            "empty string boolean means no value",
            json!({"userName": "a", "active": ""}),
            json!({"userName": "a"}),
        ),
        (
            "manager as a bare string",
            json!({"userName": "a", ENT: {"manager": "m1"}}),
            json!({"userName": "a", ENT: {"manager": {"value": "m1"}}}),
        ),
        (
            "manager as [{value,$ref}], derived sub-attributes dropped",
            json!({"userName": "a", ENT: {"manager": [{"value": "m1", "$ref": "http://x/Users/m1", "displayName": "Boss"}]}}),
            json!({"userName": "a", ENT: {"manager": {"value": "m1"}}}),
        ),
        (
            "manager {value: \"\"} means none",
            json!({"userName": "a", ENT: {"manager": {"value": ""}}}),
            json!({"userName": "a"}),
        ),
        (
            "a single object for a multi-valued attribute",
            json!({"userName": "a", "emails": {"value": "a@x", "type": "work"}}),
            json!({"userName": "a", "emails": [{"value": "a@x", "type": "work"}]}),
        ),
        (
            "bare strings for a multi-valued complex attribute",
            json!({"userName": "a", "emails": ["a@x", "b@x"]}),
            json!({"userName": "a", "emails": [{"value": "a@x"}, {"value": "b@x"}]}),
        ),
        (
            "duplicate values are dropped; the last primary wins",
            json!({"userName": "a", "emails": [{"value": "a@x", "primary": true}, {"value": "a@x", "primary": true},
                                               {"value": "b@x", "primary": "True"}]}),
            json!({"userName": "a", "emails": [{"value": "a@x", "primary": false}, {"value": "b@x", "primary": true}]}),
        ),
        (
            "null elements and empty values are dropped",
            json!({"userName": "a", "emails": [null, {"value": "a@x", "display": ""}, {"primary": true}]}),
            json!({"userName": "a", "emails": [{"value": "a@x"}]}),
        ),
        (
            "read-only attributes are ignored",
            json!({"userName": "a", "id": "x", "meta": {"version": "1"}, "groups": [{"value": "g"}]}),
            json!({"userName": "a"}),
        ),
        (
            "attribute names are case-insensitive and stored canonically",
            json!({"USERNAME": "a", "Name": {"GIVENNAME": "A"}, "Emails": [{"VALUE": "a@x", "Type": "work"}]}),
            json!({"userName": "a", "name": {"givenName": "A"}, "emails": [{"value": "a@x", "type": "work"}]}),
        ),
        (
            "core attributes nested under the core URN",
            json!({CORE: {"userName": "a", "displayName": "A"}}),
            json!({"userName": "a", "displayName": "A"}),
        ),
        (
            "URN-qualified attribute keys",
            json!({"userName": "a", format!("{ENT}:department"): "R&D", format!("{CORE}:nickName"): "n"}),
            json!({"userName": "a", "nickName": "n", ENT: {"department": "R&D"}}),
        ),
        (
            "extension set to null",
            json!({"userName": "a", ENT: null}),
            json!({"userName": "a"}),
        ),
        (
            "schemas null",
            json!({"userName": "a", "schemas": null}),
            json!({"userName": "a"}),
        ),
        (
            "unknown schema URIs in schemas are tolerated",
            json!({"userName": "a", "schemas": ["urn:example:whatever"]}),
            json!({"userName": "a"}),
        ),
        (
            "numbers for strings are stringified",
            json!({"userName": 12345, "displayName": true}),
            json!({"userName": "12345", "displayName": "true"}),
        ),
        (
            "password is stored (write-only)",
            json!({"userName": "a", "password": "s3cret"}),
            json!({"userName": "a", "password": "s3cret"}),
        ),
    ];
    for (name, body, want) in table {
        assert_eq!(doc(body), want, "{name}");
    }
}

#[test]
fn invalid_inputs_are_rejected_with_400() {
    let table: Vec<(&str, Value, ScimType)> = vec![
        ("not an object", json!(["userName"]), ScimType::InvalidSyntax),
        ("a string body", json!("x"), ScimType::InvalidSyntax),
        (
            "schemas not an array",
            json!({"userName": "a", "schemas": "urn:x"}),
            ScimType::InvalidSyntax,
        ),
        (
            "schemas with a non-string",
            json!({"userName": "a", "schemas": [1]}),
            ScimType::InvalidSyntax,
        ),
        (
            "unknown attribute",
            json!({"userName": "a", "foo": 1}),
            ScimType::InvalidValue,
        ),
        (
            "unknown attribute with null value",
            json!({"userName": "a", "foo": null}),
            ScimType::InvalidValue,
        ),
        (
            "unknown extension URN",
            json!({"userName": "a", "urn:example:ext:1.0:User": {"x": 1}}),
            ScimType::InvalidValue,
        ),
        (
            "unknown extension attribute",
            json!({"userName": "a", ENT: {"foo": "x"}}),
            ScimType::InvalidValue,
        ),
        (
            "unknown sub-attribute",
            json!({"userName": "a", "name": {"foo": "x"}}),
            ScimType::InvalidValue,
        ),
        (
            "unqualified extension attribute at top level",
            json!({"userName": "a", "department": "x"}),
            ScimType::InvalidValue,
        ),
        (
            "members on a User",
            json!({"userName": "a", "members": []}),
            ScimType::InvalidValue,
        ),
        (
            "extension value not an object",
            json!({"userName": "a", ENT: "x"}),
            ScimType::InvalidValue,
        ),
        (
            "object for a string",
            json!({"userName": {"value": "a"}}),
            ScimType::InvalidValue,
        ),
        (
            "array for a string",
            json!({"userName": "a", "displayName": ["a", "b"]}),
            ScimType::InvalidValue,
        ),
        (
            "\"abc\" for a boolean",
            json!({"userName": "a", "active": "abc"}),
            ScimType::InvalidValue,
        ),
        (
            "number for a boolean",
            json!({"userName": "a", "active": 1}),
            ScimType::InvalidValue,
        ),
        (
            "huge integer for a boolean",
            json!({"userName": "a", "active": 18446744073709551615u64}),
            ScimType::InvalidValue,
        ),
        (
            "object for a boolean",
            json!({"userName": "a", "active": {}}),
            ScimType::InvalidValue,
        ),
        (
            "string for a complex without value",
            json!({"userName": "a", "name": "Alice"}),
            ScimType::InvalidValue,
        ),
        (
            "array of arrays",
            json!({"userName": "a", "emails": [["a@x"]]}),
            ScimType::InvalidValue,
        ),
        (
            "object for a sub-attribute",
            json!({"userName": "a", "emails": [{"value": {"a": 1}}]}),
            ScimType::InvalidValue,
        ),
        (
            "string for primary",
            json!({"userName": "a", "emails": [{"value": "a@x", "primary": "yes"}]}),
            ScimType::InvalidValue,
        ),
        ("missing userName", json!({"displayName": "A"}), ScimType::InvalidValue),
        ("empty userName", json!({"userName": ""}), ScimType::InvalidValue),
        ("null userName", json!({"userName": null}), ScimType::InvalidValue),
        (
            "two managers",
            json!({"userName": "a", ENT: {"manager": [{"value": "m1"}, {"value": "m2"}]}}),
            ScimType::InvalidValue,
        ),
    ];
    let rt = rt("User");
    for (name, body, t) in table {
        let e = normalize_input(&rt, &body).expect_err(name);
        assert_eq!((e.status, e.scim_type), (400, Some(t)), "{name}: {e}");
    }
    let group = self::rt("Group");
    for (name, body) in [
        ("missing displayName", json!({"externalId": "x"})),
        (
            "member without value",
            json!({"displayName": "G", "members": [{"display": "x"}]}),
        ),
        (
            "member of unknown type",
            json!({"displayName": "G", "members": [{"value": "x", "type": "Device"}]}),
        ),
        (
            "member as a number array",
            json!({"displayName": "G", "members": [[1]]}),
        ),
    ] {
        let e = normalize_input(&group, &body).expect_err(name);
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(ScimType::InvalidValue)),
            "{name}: {e}"
        );
    }
}

fn typed_rt() -> ResourceType {
    let attr = |name: &str, kind: AttrType| Attribute {
        name: name.into(),
        kind,
        multi_valued: false,
        description: String::new(),
        required: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: vec![],
        reference_types: vec![],
        sub_attributes: vec![],
    };
    ResourceType {
        id: "Thing".into(),
        name: "Thing".into(),
        endpoint: "/Things".into(),
        description: String::new(),
        schema: Schema {
            id: "urn:example:Thing".into(),
            name: "Thing".into(),
            description: String::new(),
            attributes: vec![
                attr("count", AttrType::Integer),
                attr("score", AttrType::Decimal),
                attr("seen", AttrType::DateTime),
                Attribute {
                    mutability: Mutability::Immutable,
                    ..attr("serial", AttrType::String)
                },
            ],
        },
        extensions: vec![],
    }
}

#[test]
fn typed_attributes() {
    let rt = typed_rt();
    let ok: Vec<(Value, Value)> = vec![
        (json!({"count": 5}), json!({"count": 5})),
        (
            json!({"count": -9223372036854775808i64}),
            json!({"count": -9223372036854775808i64}),
        ),
        (json!({"count": " 42 "}), json!({"count": 42})),
        (json!({"count": ""}), json!({})),
        (json!({"score": 2.5}), json!({"score": 2.5})),
        (json!({"score": 3}), json!({"score": 3})),
        (json!({"score": "1.25"}), json!({"score": 1.25})),
        (
            json!({"seen": "2024-05-01T12:00:00Z"}),
            json!({"seen": "2024-05-01T12:00:00Z"}),
        ),
        // dateTimes are stored in one form: UTC, `T` and `Z`, the fraction
        // as long as it needs to be.
        (
            json!({"seen": "2024-05-01T12:00:00.123+02:00"}),
            json!({"seen": "2024-05-01T10:00:00.123Z"}),
        ),
        (
            json!({"seen": "2024-05-01t12:00:00.500z"}),
            json!({"seen": "2024-05-01T12:00:00.5Z"}),
        ),
        (
            json!({"seen": "2024-05-01T00:00:00+23:59"}),
            json!({"seen": "2024-04-30T00:01:00Z"}),
        ),
        // Integers for strings keep every digit.
        (
            json!({"serial": 12345678901234567890u64}),
            json!({"serial": "12345678901234567890"}),
        ),
        (json!({"serial": -5}), json!({"serial": "-5"})),
    ];
    for (body, want) in ok {
        let n = normalize_input(&rt, &body).unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(Value::Object(n.doc), want, "{body}");
    }
    let bad = [
        json!({"count": 18446744073709551615u64}),
        json!({"count": 1.5}),
        json!({"count": 1e20}),
        json!({"count": "abc"}),
        json!({"count": "99999999999999999999999"}),
        json!({"count": true}),
        json!({"score": "NaN"}),
        json!({"score": "inf"}),
        json!({"score": "1e400"}),
        json!({"score": "x"}),
        json!({"score": [1, 2]}),
        json!({"seen": "yesterday"}),
        json!({"seen": "2024-05-01"}),
        json!({"seen": 1714564800}),
        json!({"seen": "0000-06-01T00:00:00Z"}),
        json!({"seen": "0001-01-01T00:00:00+00:01"}),
        json!({"seen": "2024-05-01T12:00:00"}),
        json!({"seen": "2024-05-01_12:00:00Z"}),
        // A number that is not an integer within 64 bits was read as a
        // double: its digits may be lost already.
        json!({"serial": 1.5}),
        json!({"serial": 1e3}),
        serde_json::from_str::<Value>(r#"{"serial": 12345678901234567890123}"#).unwrap(),
    ];
    for body in bad {
        let e = normalize_input(&rt, &body).expect_err(&body.to_string());
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(ScimType::InvalidValue)),
            "{body}: {e}"
        );
    }
}

#[test]
fn put_keeps_write_only_and_immutable_values() {
    let user = rt("User");
    let old = normalize_input(&user, &json!({"userName": "a", "password": "p"}))
        .unwrap()
        .doc;
    let mut new = normalize_input(&user, &json!({"userName": "b"})).unwrap().doc;
    merge_for_replace(&user, &old, &mut new).unwrap();
    assert_eq!(Value::Object(new), json!({"userName": "b", "password": "p"}));

    let rt = typed_rt();
    let old = normalize_input(&rt, &json!({"serial": "S1"})).unwrap().doc;
    let mut same = normalize_input(&rt, &json!({"serial": "S1", "count": 1})).unwrap().doc;
    merge_for_replace(&rt, &old, &mut same).unwrap();
    let mut omitted = normalize_input(&rt, &json!({"count": 1})).unwrap().doc;
    merge_for_replace(&rt, &old, &mut omitted).unwrap();
    assert_eq!(Value::Object(omitted), json!({"count": 1, "serial": "S1"}));
    let mut changed = normalize_input(&rt, &json!({"serial": "S2"})).unwrap().doc;
    let e = merge_for_replace(&rt, &old, &mut changed).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    // Immutable through PATCH too: set once, then never changed.
    let ops = |v: &str| {
        vec![PatchOperation {
            op: scimitar_protocol::patch::OpKind::Replace,
            path: Some("serial".into()),
            value: Some(json!(v)),
        }]
    };
    let mut fresh = Map::new();
    apply_patch(&rt, &mut fresh, &ops("S1"), &mut NoMembers).unwrap();
    apply_patch(&rt, &mut fresh, &ops("S1"), &mut NoMembers).unwrap();
    let e = apply_patch(&rt, &mut fresh, &ops("S2"), &mut NoMembers).unwrap_err();
    assert_eq!(e.scim_type, Some(ScimType::Mutability));
    assert_eq!(fresh["serial"], json!("S1"));
}

// ---------------------------------------------------------------------------
// Arbitrary JSON never panics normalisation or PATCH.

fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "userName",
            "name",
            "givenName",
            "emails",
            "value",
            "type",
            "primary",
            "active",
            "manager",
            "roles",
            "members",
            "display",
            "schemas",
            "meta",
            "id",
            ENT,
            ENT_MISSPELT,
            CORE,
            "$ref",
            "displayName",
            "name.givenName",
            "count",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z.:\\[\\] \"]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "",
            "True",
            "false",
            "abc",
            "{\"value\":\"x\"}",
            "2024-05-01T12:00:00Z",
            "u1"
        ])
        .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn arb_path() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        prop::sample::select(vec![
            "userName",
            "name.givenName",
            "emails",
            "emails[type eq \"work\"].value",
            "emails[type eq \"work\"]",
            "roles[primary eq \"True\"].value",
            "manager",
            "manager[value eq \"m\"]",
            "members",
            "members[value eq \"u\"]",
            "members[type eq \"User\"]",
            "active",
            "id",
            "groups",
            ENT,
            ENT_MISSPELT,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            "displayName",
            "",
        ])
        .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn normalize_never_panics(body in arb_json()) {
        for rt in builtin_resource_types().iter().chain(std::iter::once(&typed_rt())) {
            if let Err(e) = normalize_input(rt, &body) {
                prop_assert_eq!(e.status, 400, "{}", e);
            }
        }
    }

    #[test]
    fn patch_never_panics(
        ops in prop::collection::vec((prop::sample::select(vec!["add", "Replace", "remove"]), arb_path(), prop::option::of(arb_json())), 1..4),
        start in arb_json(),
    ) {
        let ops: Vec<Value> = ops
            .into_iter()
            .map(|(op, path, value)| {
                let mut o = json!({"op": op, "path": path});
                if let Some(v) = value {
                    o["value"] = v;
                }
                o
            })
            .collect();
        let body = json!({"Operations": ops});
        let Ok(ops) = parse_patch_request(&body, 100) else { return Ok(()) };
        for rt in builtin_resource_types() {
            // Start from a valid document when the generated one normalises.
            let mut doc = normalize_input(&rt, &start).map(|n| n.doc).unwrap_or_else(|_| {
                let mut m = Map::new();
                m.insert("userName".into(), json!("a"));
                m.insert("displayName".into(), json!("G"));
                m
            });
            let before = doc.clone();
            match apply_patch(&rt, &mut doc, &ops, &mut NoMembers) {
                Ok(_) => {}
                Err(e) => {
                    prop_assert_eq!(e.status, 400, "{}", e);
                    prop_assert_eq!(&doc, &before);
                }
            }
        }
    }
}

/// `check_key` refuses, before a body is parsed, exactly the keys that
/// `normalize_input` refuses whatever their value, with the same error;
/// it lets through every key some value makes acceptable.
#[test]
fn check_key_agrees_with_normalize_input() {
    use scimitar_protocol::resource::check_key;
    let user = rt("User");
    let dept = format!("{ENT}:department");
    let core_name = format!("{CORE}:displayName");
    // (key, a value normalize_input accepts for it, if any)
    let cases: Vec<(&str, Option<Value>)> = vec![
        ("userName", Some(json!("a"))),
        ("USERNAME", Some(json!("a"))),
        ("schemas", Some(json!([CORE]))),
        ("name", Some(json!({"givenName": "A"}))),
        ("meta", Some(json!({"created": "x"}))),
        ("id", Some(json!("x"))),
        // Entra's legacy body: an enterprise attribute without its URN, null.
        ("manager", Some(Value::Null)),
        (ENT, Some(json!({"department": "X"}))),
        (ENT_MISSPELT, Some(json!({"department": "X"}))),
        (CORE, Some(json!({"displayName": "X"}))),
        (dept.as_str(), Some(json!("X"))),
        (core_name.as_str(), Some(json!("X"))),
        ("bogus", None),
        ("name.givenName", None),
        ("urn:example:unknown:1.0:User", None),
        ("urn:example:unknown:1.0:User:attr", None),
    ];
    for (key, value) in cases {
        let checked = check_key(&user, key);
        match value {
            Some(v) => {
                assert!(checked.is_ok(), "{key}: {checked:?}");
                let body = json!({"userName": "u"});
                let mut body = body.as_object().unwrap().clone();
                body.insert(key.to_string(), v);
                let r = normalize_input(&user, &Value::Object(body));
                assert!(r.is_ok(), "{key}: {r:?}");
            }
            None => {
                let refused = checked.expect_err(key);
                for v in [Value::Null, json!("x"), json!({}), json!([])] {
                    let body = json!({"userName": "u", key: v});
                    let e = normalize_input(&user, &body).expect_err(key);
                    assert_eq!(e.detail, refused.detail, "{key}");
                    assert_eq!(e.scim_type, Some(ScimType::InvalidValue));
                }
            }
        }
    }
}
