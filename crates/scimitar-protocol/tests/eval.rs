//! Table-driven tests of in-memory filter evaluation (RFC 7644 §3.4.2.2):
//! caseExact, typed comparisons (dateTime as instants, booleans, numbers),
//! multi-valued attributes and `pr`.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use scimitar_protocol::ScimType;
use scimitar_protocol::eval::{matches_element, matches_resource};
use scimitar_protocol::filter::parse_filter;
use scimitar_protocol::schema::{
    AttrType, Attribute, Mutability, ResourceType, Returned, Schema, Uniqueness, builtin_resource_types,
};
use serde_json::{Value, json};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn user_rt() -> ResourceType {
    builtin_resource_types().into_iter().find(|r| r.is_user()).unwrap()
}

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENT],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "BJensen-ext",
        "userName": "BJensen@Example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs Jensen",
        "title": "",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
        "roles": [{"value": "Admin", "primary": true}],
        "groups": [{"value": "g1", "display": "Engineering"}],
        ENT: {"employeeNumber": "701984", "department": "R&D", "manager": {"value": "m1", "displayName": "Boss"}},
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34+02:00",
            "version": "W/\"3694e05e9dff591\""
        }
    })
}

#[test]
fn filters_against_a_user() {
    let rt = user_rt();
    let u = user();
    let table: &[(&str, bool)] = &[
        // userName: caseExact false
        (r#"userName eq "bjensen@example.com""#, true),
        (r#"USERNAME eq "BJENSEN@EXAMPLE.COM""#, true),
        (r#"userName ne "bjensen@example.com""#, false),
        (r#"userName ne "someone@example.com""#, true),
        (r#"userName co "JENSEN""#, true),
        (r#"userName sw "bj""#, true),
        (r#"userName ew ".COM""#, true),
        (r#"userName ew ".org""#, false),
        (r#"userName gt "a""#, true),
        (r#"userName lt "a""#, false),
        (r#"userName ge "bjensen@example.com""#, true),
        (r#"userName le "bjensen@example.com""#, true),
        // id / externalId: caseExact true
        (r#"id eq "2819c223-7f76-453a-919d-413861904646""#, true),
        (r#"id eq "2819C223-7F76-453A-919D-413861904646""#, false),
        (r#"externalId eq "BJensen-ext""#, true),
        (r#"externalId eq "bjensen-ext""#, false),
        (r#"externalId co "Jensen""#, true),
        (r#"externalId co "jensen""#, false),
        ("externalId eq BJensen-ext", true),
        // sub-attributes
        (r#"name.familyName eq "jensen""#, true),
        (r#"name.givenName sw "Bar""#, true),
        (r#"name.middleName eq "x""#, false),
        (r#"name.middleName ne "x""#, true),
        // dateTime: compared as instants, offsets respected
        (r#"meta.lastModified eq "2011-05-13T02:42:34Z""#, true),
        (r#"meta.lastModified eq "2011-05-13T04:42:34Z""#, false),
        (r#"meta.lastModified gt "2011-05-13T02:42:33Z""#, true),
        (r#"meta.lastModified gt "2011-05-13T03:00:00+00:30""#, true),
        (r#"meta.lastModified lt "2011-05-13T02:42:34.001Z""#, true),
        (r#"meta.lastModified ge "2011-05-13T02:42:34Z""#, true),
        (r#"meta.lastModified le "2011-05-13T02:42:33.999Z""#, false),
        (r#"meta.created lt "2011-01-01T00:00:00Z""#, true),
        (r#"meta.created gt "2010-01-23T04:56:22-01:00""#, false),
        // booleans
        ("active eq true", true),
        ("active eq false", false),
        ("active ne false", true),
        ("active eq TRUE", true),
        // Entra's mapping language writes booleans as strings
        (r#"active eq "True""#, true),
        (r#"active eq "false""#, false),
        // multi-valued: any value matches
        (r#"emails eq "babs@jensen.org""#, true),
        (r#"emails co "JENSEN.ORG""#, true),
        (r#"emails.value eq "bjensen@example.com""#, true),
        (r#"emails.value ew "@jensen.org""#, true),
        (r#"emails.value eq "nobody@example.com""#, false),
        (r#"emails.type eq "home""#, true),
        (r#"emails.type eq "other""#, false),
        (r#"emails.primary eq true"#, true),
        (r#"emails[type eq "work" and value co "@example.com"]"#, true),
        (r#"emails[type eq "home" and value co "@example.com"]"#, false),
        (r#"emails[type eq "WORK"]"#, true),
        (r#"emails[type eq "work"].value eq "bjensen@example.com""#, true),
        (r#"emails[type eq "home"].value eq "bjensen@example.com""#, false),
        (r#"emails[primary eq true and type eq "work"]"#, true),
        (r#"emails[not (type eq "work")]"#, true),
        (r#"emails[type eq "other" or value sw "babs"]"#, true),
        (r#"phoneNumbers[type eq "mobile"]"#, false),
        (r#"roles[primary eq "True"]"#, true),
        // pr
        ("userName pr", true),
        ("title pr", false),
        ("nickName pr", false),
        ("emails pr", true),
        ("addresses pr", false),
        ("name.givenName pr", true),
        ("name.middleName pr", false),
        ("emails.type pr", true),
        ("emails.display pr", false),
        ("emails[display pr]", false),
        ("emails[value pr]", true),
        ("active pr", true),
        ("manager.value pr", true),
        ("manager.displayName pr", true),
        // null comparisons
        ("nickName eq null", true),
        ("nickName ne null", false),
        ("userName eq null", false),
        ("userName ne null", true),
        // extension attributes, qualified and not
        (&format!(r#"{ENT}:department eq "r&d""#), true),
        (r#"department eq "R&D""#, true),
        (&format!(r#"{ENT}:employeeNumber eq "701984""#), true),
        (&format!(r#"{ENT}:manager.value eq "m1""#), true),
        (r#"manager eq "m1""#, true),
        (r#"manager.value eq "m2""#, false),
        (&format!(r#"{ENT}:costCenter pr"#), false),
        // core URN-qualified
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen@example.com""#,
            true,
        ),
        // groups (readOnly, but filterable)
        (r#"groups.display eq "engineering""#, true),
        (r#"groups[value eq "g1"]"#, true),
        // logic
        (r#"userName eq "bjensen@example.com" and active eq true"#, true),
        (r#"userName eq "x" or active eq true"#, true),
        (r#"userName eq "x" or active eq false and title pr"#, false),
        (r#"not (userName eq "x")"#, true),
        (r#"not (userName eq "x") and not (active eq false)"#, true),
        (
            r#"(userName eq "x" or name.familyName eq "Jensen") and emails[type eq "home"]"#,
            true,
        ),
        // Entra's legacy manager check
        (
            r#"id eq "2819c223-7f76-453a-919d-413861904646" and manager eq "m1""#,
            true,
        ),
    ];
    for (filter, want) in table {
        let f = parse_filter(filter).unwrap_or_else(|e| panic!("{filter}: {e}"));
        let got = matches_resource(&f, &u, &rt).unwrap_or_else(|e| panic!("{filter}: {e}"));
        assert_eq!(got, *want, "filter: {filter}");
    }
}

#[test]
fn nonsensical_comparisons_are_invalid_filters() {
    let rt = user_rt();
    let u = user();
    let table = [
        "active gt true",
        "active co true",
        r#"userName gt true"#,
        r#"userName co null"#,
        r#"unknownAttr eq "x""#,
        r#"name.unknownSub eq "x""#,
        r#"emails[unknown eq "x"]"#,
        r#"emails[name.givenName eq "x"]"#,
        r#"urn:example:unknown:ext:attr eq "x""#,
    ];
    for filter in table {
        let f = parse_filter(filter).unwrap();
        let e = matches_resource(&f, &u, &rt).expect_err(filter);
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(ScimType::InvalidFilter)),
            "{filter}: {e}"
        );
    }
}

/// A custom schema exercising integer, decimal, binary, reference and
/// caseExact string attributes.
fn custom_rt() -> ResourceType {
    let attr = |name: &str, kind: AttrType, case_exact: bool, multi: bool| Attribute {
        name: name.into(),
        kind,
        multi_valued: multi,
        description: String::new(),
        required: false,
        case_exact,
        mutability: Mutability::ReadWrite,
        returned: Returned::Default,
        uniqueness: Uniqueness::None,
        canonical_values: vec![],
        reference_types: vec![],
        sub_attributes: vec![],
    };
    let schema = Schema {
        id: "urn:example:schemas:Device".into(),
        name: "Device".into(),
        description: String::new(),
        attributes: vec![
            attr("count", AttrType::Integer, false, false),
            attr("score", AttrType::Decimal, false, false),
            attr("serial", AttrType::String, true, false),
            attr("tags", AttrType::String, false, true),
            attr("sizes", AttrType::Integer, false, true),
            attr("blob", AttrType::Binary, true, false),
            attr("seen", AttrType::DateTime, false, false),
        ],
    };
    ResourceType {
        id: "Device".into(),
        name: "Device".into(),
        endpoint: "/Devices".into(),
        description: String::new(),
        schema,
        extensions: vec![],
    }
}

#[test]
fn typed_comparisons_on_custom_attributes() {
    let rt = custom_rt();
    let d = json!({
        "count": 10, "score": 2.5, "serial": "AbC-1", "tags": ["Red", "blue"], "sizes": [1, 5, 9],
        "blob": "aGVsbG8=", "seen": "2024-02-29T23:59:59.5-08:00"
    });
    let table: &[(&str, bool)] = &[
        ("count eq 10", true),
        ("count eq 10.0", true),
        ("count gt 9", true),
        ("count gt 10", false),
        ("count ge 10", true),
        ("count lt 100", true),
        ("count le 9", false),
        ("count ne 10", false),
        (r#"count eq "10""#, false),
        ("score gt 2.4", true),
        ("score lt 2.5", false),
        ("score eq 2.5", true),
        ("score ge -1", true),
        (r#"serial eq "AbC-1""#, true),
        (r#"serial eq "abc-1""#, false),
        (r#"serial sw "Ab""#, true),
        (r#"serial sw "ab""#, false),
        (r#"tags eq "red""#, true),
        (r#"tags eq "BLUE""#, true),
        (r#"tags co "ree""#, false),
        (r#"tags ne "red""#, false),
        (r#"tags ne "green""#, true),
        ("sizes eq 5", true),
        ("sizes gt 8", true),
        ("sizes gt 9", false),
        ("sizes lt 1", false),
        (r#"blob eq "aGVsbG8=""#, true),
        (r#"blob eq "AGVSBG8=""#, false),
        (r#"seen eq "2024-03-01T07:59:59.5Z""#, true),
        (r#"seen gt "2024-03-01T07:59:59Z""#, true),
        (r#"seen lt "2024-03-01T00:00:00Z""#, false),
        ("tags pr", true),
        ("count pr", true),
    ];
    for (filter, want) in table {
        let f = parse_filter(filter).unwrap();
        let got = matches_resource(&f, &d, &rt).unwrap_or_else(|e| panic!("{filter}: {e}"));
        assert_eq!(got, *want, "filter: {filter}");
    }
    for bad in ["count co 1", "score sw 2", "blob gt \"a\""] {
        let f = parse_filter(bad).unwrap();
        let e = matches_resource(&f, &d, &rt).expect_err(bad);
        assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "{bad}");
    }
}

#[test]
fn matches_element_on_a_multi_valued_value() {
    let rt = user_rt();
    let emails = rt.schema.attribute("emails").unwrap();
    let elem = json!({"value": "A@Example.com", "type": "Work", "primary": true});
    let table: &[(&str, bool)] = &[
        (r#"type eq "work""#, true),
        (r#"value eq "a@example.com""#, true),
        (r#"primary eq true"#, true),
        (r#"primary eq "true""#, true),
        (r#"primary eq false"#, false),
        (r#"display pr"#, false),
        (r#"type eq "work" and not (value ew ".org")"#, true),
        (r#"type eq "home" or primary eq true"#, true),
    ];
    for (filter, want) in table {
        let f = parse_filter(filter).unwrap();
        assert_eq!(matches_element(&f, &elem, emails).unwrap(), *want, "{filter}");
    }
    let nested = parse_filter(r#"x[type eq "work"]"#).unwrap();
    assert!(matches_element(&nested, &elem, emails).is_err());
}
