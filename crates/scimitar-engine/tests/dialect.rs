//! Each dialect's requests against the examples of entra-provisioning.md §1
//! (what Entra sends, with and without `aadOptscim062020`), from images the
//! engine computes with Entra's default template.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use scimitar_engine::dialect::{self, Change, Op};
use scimitar_engine::job::Dialect;
use scimitar_engine::mapping::{self, ImageValue, Mode, ObjectSource, TargetPath};
use scimitar_engine::model::Kind;
use serde_json::{Value, json};

fn decoded(path: &str) -> String {
    percent_encoding::percent_decode_str(&path.replace('+', " "))
        .decode_utf8()
        .unwrap()
        .into_owned()
}

fn p(kind: Kind, s: &str) -> TargetPath {
    TargetPath::parse(kind, s).unwrap()
}

/// The values Entra's default "scim" template gives Alice (§1.3).
fn alice_image() -> Vec<(TargetPath, Value)> {
    let spec = scimitar_engine::job::parse_job(
        r#"
name = "t"
[source]
kind = "scim"
url = "https://directory.example/scim/v2"
token = "x"
[target]
url = "https://app.example/scim/v2"
token = "y"
"#,
        std::path::Path::new("."),
    )
    .unwrap();
    let attrs = json!({
        "userPrincipalName": "alice@contoso.com", "mailNickname": "alice", "displayName": "Alice Smith",
        "jobTitle": "Engineer", "preferredLanguage": "en-US", "mail": "alice@contoso.com",
        "givenName": "Alice", "surname": "Smith", "physicalDeliveryOfficeName": "Bldg 4",
        "streetAddress": "1 Main St", "city": "Seattle", "state": "WA", "postalCode": "98101", "country": "US",
        "telephoneNumber": "+1 555 0100", "mobile": "+1 555 0101", "facsimileTelephoneNumber": "+1 555 0102",
        "employeeId": "12345", "department": "R&D"
    });
    let attrs = attrs.as_object().unwrap();
    let mut rng = || 4u64;
    let mut env = scimitar_expression::Env {
        now: time::OffsetDateTime::UNIX_EPOCH,
        rng: &mut rng,
        default_domain: None,
    };
    let img = mapping::image(
        &spec.users.mappings,
        &ObjectSource {
            attrs,
            soft_deleted: false,
        },
        Mode::Create,
        &mut env,
    )
    .unwrap();
    img.entries
        .into_iter()
        .filter_map(|e| match e.value {
            ImageValue::Value(v) => Some((e.target, v)),
            _ => None,
        })
        .collect()
}

#[test]
fn test_connection_and_matching_queries() {
    let probe = dialect::probe(Kind::User, "userName", "7a3c1f0e-2b44-4c1e-9a0d-5a8e3c2f9b11");
    assert_eq!(probe.method, "GET");
    assert_eq!(
        decoded(&probe.path),
        r#"/Users?filter=userName eq "7a3c1f0e-2b44-4c1e-9a0d-5a8e3c2f9b11""#
    );
    let m = dialect::lookup(Kind::User, "userName", "alice@contoso.com");
    assert_eq!(
        m.path, "/Users?filter=userName+eq+%22alice%40contoso.com%22",
        "encoded as Entra does"
    );
    assert_eq!(decoded(&m.path), r#"/Users?filter=userName eq "alice@contoso.com""#);
    let g = dialect::lookup(Kind::Group, "displayName", "Engineering");
    assert_eq!(
        decoded(&g.path),
        r#"/Groups?excludedAttributes=members&filter=displayName eq "Engineering""#
    );
    // A value with a quote is escaped, not broken.
    let q = dialect::lookup(Kind::User, "userName", "o\"brien");
    assert_eq!(decoded(&q.path), r#"/Users?filter=userName eq "o\"brien""#);
    assert_eq!(dialect::read(Kind::User, "u1").path, "/Users/u1");
    assert_eq!(
        dialect::read(Kind::Group, "g1").path,
        "/Groups/g1?excludedAttributes=members"
    );
    assert_eq!(
        (
            dialect::delete(Kind::User, "u1").method,
            dialect::delete(Kind::User, "u1").path.as_str()
        ),
        ("DELETE", "/Users/u1")
    );
}

/// §1.3's create body (without `roles: []`, which the default template
/// sends only when app roles are mapped).
#[test]
fn create_user_is_entras_body() {
    let req = dialect::create(Kind::User, Dialect::EntraCompliant, &alice_image());
    assert_eq!((req.method, req.path.as_str()), ("POST", "/Users"));
    let expected = json!({
      "schemas":["urn:ietf:params:scim:schemas:core:2.0:User",
                 "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
      "externalId":"alice",
      "userName":"alice@contoso.com",
      "active":true,
      "displayName":"Alice Smith",
      "title":"Engineer",
      "preferredLanguage":"en-US",
      "emails":[{"type":"work","value":"alice@contoso.com","primary":true}],
      "name":{"givenName":"Alice","familyName":"Smith","formatted":"Alice Smith"},
      "addresses":[{"type":"work","streetAddress":"1 Main St","locality":"Seattle",
                    "region":"WA","postalCode":"98101","country":"US","formatted":"Bldg 4","primary":true}],
      "phoneNumbers":[{"type":"work","value":"+1 555 0100"},{"type":"mobile","value":"+1 555 0101"},
                      {"type":"fax","value":"+1 555 0102"}],
      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{
         "employeeNumber":"12345","department":"R&D"},
      "meta":{"resourceType":"User"}
    });
    let body = req.body.unwrap();
    assert_eq!(body, expected);
    // Entra's order of attributes, byte for byte.
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    let want: Vec<&String> = expected.as_object().unwrap().keys().collect();
    assert_eq!(keys, want);
    // RFC: no Entra-only meta.
    let rfc = dialect::create(Kind::User, Dialect::Rfc, &alice_image()).body.unwrap();
    assert!(rfc.get("meta").is_none());
}

#[test]
fn create_group_is_entras_body() {
    let values = vec![
        (
            p(Kind::Group, "externalId"),
            json!("8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159"),
        ),
        (p(Kind::Group, "displayName"), json!("Engineering")),
    ];
    let req = dialect::create(Kind::Group, Dialect::EntraLegacy, &values);
    assert_eq!(
        req.body.unwrap(),
        json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group",
                          "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
               "externalId":"8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
               "displayName":"Engineering",
               "meta":{"resourceType":"Group"}})
    );
}

fn changes() -> Vec<Change> {
    vec![
        Change {
            target: p(Kind::User, "emails[type eq \"work\"].value"),
            op: Op::Replace,
            value: json!("new@contoso.com"),
        },
        Change {
            target: p(Kind::User, "name.familyName"),
            op: Op::Replace,
            value: json!("Jones"),
        },
        Change {
            target: p(
                Kind::User,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
            ),
            op: Op::Replace,
            value: json!("777"),
        },
        Change {
            target: p(Kind::User, "nickName"),
            op: Op::Add,
            value: json!("Babs"),
        },
    ]
}

/// §1.5, default behaviour: one capitalised op per attribute.
#[test]
fn update_legacy_is_one_op_per_attribute() {
    let req = dialect::update(Kind::User, Dialect::EntraLegacy, "u1", &changes(), None).unwrap();
    assert_eq!((req.method, req.path.as_str()), ("PATCH", "/Users/u1"));
    assert_eq!(
        req.body.unwrap(),
        json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
         "Operations":[
          {"op":"Replace","path":"emails[type eq \"work\"].value","value":"new@contoso.com"},
          {"op":"Replace","path":"name.familyName","value":"Jones"},
          {"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber","value":"777"},
          {"op":"Add","path":"nickName","value":"Babs"}]})
    );
}

/// §1.5 with `aadOptscim062020`: filtered paths as their own ops, the
/// single-valued attributes in one path-less replace with path keys.
#[test]
fn update_compliant_groups_single_values() {
    let mut c = changes();
    c.pop();
    c.push(Change {
        target: p(Kind::User, "displayName"),
        op: Op::Replace,
        value: json!("Alice J"),
    });
    c.push(Change {
        target: p(Kind::User, "name.givenName"),
        op: Op::Replace,
        value: json!("Alice"),
    });
    let req = dialect::update(Kind::User, Dialect::EntraCompliant, "u1", &c, None).unwrap();
    assert_eq!(
        req.body.unwrap(),
        json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
         "Operations":[
          {"op":"replace","path":"emails[type eq \"work\"].value","value":"new@contoso.com"},
          {"op":"replace","value":{"name.familyName":"Jones",
              "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"777",
              "displayName":"Alice J","name.givenName":"Alice"}}]})
    );
}

/// §1.7: disable with the string "False" (default) or the boolean (flag).
#[test]
fn disable_per_dialect() {
    let active = vec![Change {
        target: p(Kind::User, "active"),
        op: Op::Replace,
        value: json!(false),
    }];
    let legacy = dialect::update(Kind::User, Dialect::EntraLegacy, "u1", &active, None).unwrap();
    assert_eq!(
        legacy.body.unwrap()["Operations"],
        json!([{"op":"Replace","path":"active","value":"False"}])
    );
    let compliant = dialect::update(Kind::User, Dialect::EntraCompliant, "u1", &active, None).unwrap();
    assert_eq!(
        compliant.body.unwrap()["Operations"],
        json!([{"op":"replace","path":"active","value":false}])
    );
    let rfc = dialect::update(Kind::User, Dialect::Rfc, "u1", &active, None).unwrap();
    assert_eq!(
        rfc.body.unwrap()["Operations"],
        json!([{"op":"replace","path":"active","value":false}])
    );
}

/// §1.6: the manager as a bare id on the enterprise path; removal by a
/// value filter.
#[test]
fn manager_add_and_remove() {
    let manager = vec![Change {
        target: p(
            Kind::User,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        ),
        op: Op::Add,
        value: json!("m1"),
    }];
    let add = dialect::update(Kind::User, Dialect::EntraCompliant, "u1", &manager, None).unwrap();
    assert_eq!(
        add.body.unwrap()["Operations"],
        json!([{"op":"add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"m1"}])
    );
    let remove = dialect::update(Kind::User, Dialect::EntraCompliant, "u1", &[], Some("m1")).unwrap();
    assert_eq!(
        remove.body.unwrap()["Operations"],
        json!([{"op":"remove","path":"manager[value eq \"m1\"]"}])
    );
    assert!(
        dialect::update(Kind::User, Dialect::Rfc, "u1", &[], None).is_none(),
        "nothing to send"
    );
}

/// §1.8: members added in one PATCH; removed as a list (default) or by
/// value filter (flag).
#[test]
fn group_members_per_dialect() {
    let ids = vec!["u1".to_string(), "u2".to_string()];
    let add = dialect::add_members(Dialect::EntraLegacy, "g1", &ids);
    assert_eq!((add.method, add.path.as_str()), ("PATCH", "/Groups/g1"));
    assert_eq!(
        add.body.unwrap()["Operations"],
        json!([{"op":"Add","path":"members","value":[{"value":"u1"},{"value":"u2"}]}])
    );
    let add = dialect::add_members(Dialect::EntraCompliant, "g1", &ids);
    assert_eq!(add.body.unwrap()["Operations"][0]["op"], "add");
    let remove = dialect::remove_members(Dialect::EntraLegacy, "g1", &ids[..1]);
    assert_eq!(
        remove.body.unwrap()["Operations"],
        json!([{"op":"Remove","path":"members","value":[{"value":"u1"}]}])
    );
    let remove = dialect::remove_members(Dialect::EntraCompliant, "g1", &ids);
    assert_eq!(
        remove.body.unwrap()["Operations"],
        json!([{"op":"remove","path":"members[value eq \"u1\"]"},{"op":"remove","path":"members[value eq \"u2\"]"}])
    );
}

/// `rfc`: a value filter that selects no element is no target for `add`
/// (RFC 7644 §3.5.2.1), so a new element goes whole, its sub-attributes
/// together, to the attribute; an existing element is changed through the
/// filter; the manager is complex (RFC 7643 §4.3). Entra's dialects keep
/// the filtered path.
#[test]
fn rfc_adds_new_elements_whole_and_the_manager_as_a_complex_value() {
    let c = vec![
        Change {
            target: p(Kind::User, "addresses[type eq \"work\"].locality"),
            op: Op::AddElement,
            value: json!("Seattle"),
        },
        Change {
            target: p(Kind::User, "emails[type eq \"work\"].value"),
            op: Op::AddElement,
            value: json!("alice@contoso.com"),
        },
        Change {
            target: p(Kind::User, "addresses[type eq \"work\"].postalCode"),
            op: Op::AddElement,
            value: json!("98101"),
        },
        Change {
            target: p(Kind::User, "phoneNumbers[type eq \"work\"].value"),
            op: Op::Add,
            value: json!("+1 555 0100"),
        },
        Change {
            target: p(
                Kind::User,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            ),
            op: Op::Replace,
            value: json!("m1"),
        },
    ];
    let rfc = dialect::update(Kind::User, Dialect::Rfc, "u1", &c, None).unwrap();
    assert_eq!(
        rfc.body.unwrap()["Operations"],
        json!([
          {"op":"add","path":"phoneNumbers[type eq \"work\"].value","value":"+1 555 0100"},
          {"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":{"value":"m1"}},
          {"op":"add","path":"addresses","value":[{"type":"work","primary":true,"locality":"Seattle","postalCode":"98101"}]},
          {"op":"add","path":"emails","value":[{"type":"work","primary":true,"value":"alice@contoso.com"}]}])
    );
    let compliant = dialect::update(Kind::User, Dialect::EntraCompliant, "u1", &c[..2], None).unwrap();
    assert_eq!(
        compliant.body.unwrap()["Operations"],
        json!([
          {"op":"add","path":"addresses[type eq \"work\"].locality","value":"Seattle"},
          {"op":"add","path":"emails[type eq \"work\"].value","value":"alice@contoso.com"}])
    );
}

/// The shapes `scimitar validate` sends besides Entra's own (Microsoft's
/// SCIM Validator's member add and manager removal, pages, discovery,
/// several operations in one PATCH).
#[test]
fn validator_shapes() {
    assert_eq!(dialect::discovery("Schemas").path, "/Schemas");
    assert_eq!(dialect::page(Kind::User, 6, 5).path, "/Users?startIndex=6&count=5");
    assert_eq!(
        decoded(&dialect::filter_all(Kind::Group, "displayName", "Eng").path),
        r#"/Groups?filter=displayName eq "Eng""#
    );
    assert_eq!(dialect::read_all(Kind::Group, "g 1").path, "/Groups/g%201");
    let add = dialect::replace_members(Dialect::EntraLegacy, "g1", &["u1".into()]);
    assert_eq!(
        add.body.unwrap()["Operations"],
        json!([{"op": "Replace", "path": "members", "value": [{"value": "u1"}]}])
    );
    let m = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";
    assert_eq!(
        dialect::clear_manager(Dialect::EntraCompliant, "u1").body.unwrap()["Operations"],
        json!([{"op": "replace", "path": m, "value": {"value": ""}}])
    );
    assert_eq!(
        dialect::clear_manager(Dialect::Rfc, "u1").body.unwrap()["Operations"],
        json!([{"op": "remove", "path": m}])
    );
    let both = dialect::combine(
        &dialect::add_members(Dialect::EntraCompliant, "g1", &["a".into(), "b".into()]),
        &dialect::remove_members(Dialect::EntraCompliant, "g1", &["b".into()]),
    )
    .unwrap();
    assert_eq!(both.path, "/Groups/g1");
    assert_eq!(
        both.body.unwrap()["Operations"],
        json!([{"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "b"}]},
               {"op": "remove", "path": "members[value eq \"b\"]"}])
    );
    assert!(
        dialect::combine(
            &dialect::add_members(Dialect::Rfc, "g1", &[]),
            &dialect::add_members(Dialect::Rfc, "g2", &[])
        )
        .is_none()
    );
}
