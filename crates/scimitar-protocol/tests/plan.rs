//! Table-driven tests of filter and sort-key plans: what a filter means for
//! a stored resource, decided once for both backends (their `sql.rs` pin
//! the SQL each lowers a plan to), and the errors of filters and sort keys
//! that cannot be planned.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use scimitar_protocol::ScimType;
use scimitar_protocol::filter::{CompValue, CompareOp, parse_filter};
use scimitar_protocol::plan::{
    Case, Collection, Column, Comparison, Dialect, DocPath, KeyType, Literal, MemberColumn, Operand, Plan, SortKey,
    SortSource, Work, is_point_lookup, plan_filter, plan_sort, work,
};
use scimitar_protocol::schema::{Kind, ResourceType, Schema, builtin_resource_types};

const EXT: &str = "urn:example:plan:2.0:User";

#[derive(Clone, Copy)]
enum Rt {
    User,
    Group,
    /// User with an extension of typed attributes.
    Custom,
}
use Rt::{Custom, Group, User};

fn rt(which: Rt) -> (ResourceType, Kind) {
    let kind = match which {
        Group => Kind::Group,
        _ => Kind::User,
    };
    let mut rt = builtin_resource_types()
        .into_iter()
        .find(|r| r.name == kind.as_str())
        .unwrap();
    if let Custom = which {
        let ext: Schema = serde_json::from_value(serde_json::json!({"id": EXT, "name": "Plan", "attributes": [
            {"name": "level", "type": "integer", "multiValued": false},
            {"name": "value", "type": "string", "multiValued": false},
            {"name": "tags", "type": "string", "multiValued": true},
            {"name": "awards", "type": "complex", "multiValued": true, "subAttributes": [
                {"name": "title", "type": "string", "multiValued": false},
                {"name": "rank", "type": "integer", "multiValued": false}]}
        ]}))
        .unwrap();
        rt.extensions.push((ext, false));
    }
    (rt, kind)
}

/// Accepts RFC 3339 text only, and text with NUL.
const DIALECT: Dialect = Dialect {
    datetime: rfc3339,
    text_holds_nul: true,
};

fn rfc3339(s: &str) -> Option<String> {
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;
    OffsetDateTime::parse(s, &Rfc3339).ok().map(|_| s.to_string())
}

fn plan(which: Rt, filter: &str) -> Result<Plan, scimitar_protocol::ScimError> {
    let (rt, kind) = rt(which);
    let f = parse_filter(filter).unwrap_or_else(|e| panic!("{filter}: {}", e.detail));
    plan_filter(&rt, kind, &f, &DIALECT)
}

fn doc(path: &[&str]) -> DocPath {
    DocPath(path.iter().map(|s| s.to_string()).collect())
}

fn cmp(op: CompareOp, literal: Literal, case: Case) -> Comparison {
    Comparison { op, literal, case }
}

fn text(s: &str) -> Literal {
    Literal::Text(s.into())
}

fn exists(negated: bool, over: Collection, cond: Plan) -> Plan {
    Plan::Exists {
        negated,
        over,
        cond: Box::new(cond),
    }
}

#[test]
fn filters_resolve_to_plans() {
    use CompareOp::{Eq, Gt};
    let emails = || Collection::Array(doc(&["emails"]));
    let manager = || doc(&["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager"]);
    let cases: Vec<(Rt, &str, Plan)> = vec![
        // Indexed columns; userName is stored lower-cased.
        (
            User,
            r#"userName eq "Bob""#,
            Plan::Compare(Operand::Column(Column::UserName), cmp(Eq, text("Bob"), Case::Lowered)),
        ),
        (
            User,
            r#"id eq "u1""#,
            Plan::Compare(Operand::Column(Column::Id), cmp(Eq, text("u1"), Case::Exact)),
        ),
        (
            Group,
            r#"displayName eq "A""#,
            Plan::Compare(Operand::Column(Column::DisplayName), cmp(Eq, text("A"), Case::Lowered)),
        ),
        // A User's displayName is in the document.
        (
            User,
            r#"displayName eq "A""#,
            Plan::Compare(
                Operand::Doc(doc(&["displayName"])),
                cmp(Eq, text("A"), Case::Insensitive),
            ),
        ),
        (
            User,
            r#"meta.created gt "2024-01-01T00:00:00Z""#,
            Plan::Compare(
                Operand::Column(Column::Created),
                cmp(Gt, Literal::DateTime("2024-01-01T00:00:00Z".into()), Case::Exact),
            ),
        ),
        // String booleans, any case.
        (
            User,
            r#"active eq "True""#,
            Plan::Compare(
                Operand::Doc(doc(&["active"])),
                cmp(Eq, Literal::Bool(true), Case::Exact),
            ),
        ),
        (
            User,
            r#"active eq false"#,
            Plan::Compare(
                Operand::Doc(doc(&["active"])),
                cmp(Eq, Literal::Bool(false), Case::Exact),
            ),
        ),
        (User, r#"title pr"#, Plan::Present(Operand::Doc(doc(&["title"])))),
        (
            User,
            r#"title eq null"#,
            Plan::Compare(Operand::Doc(doc(&["title"])), cmp(Eq, Literal::Null, Case::Insensitive)),
        ),
        // A bare number against text compares its text.
        (
            User,
            r#"title eq 5"#,
            Plan::Compare(
                Operand::Doc(doc(&["title"])),
                cmp(Eq, Literal::BareText("5".into()), Case::Insensitive),
            ),
        ),
        // Numbers, quoted or not.
        (
            Custom,
            r#"level gt 5"#,
            Plan::Compare(
                Operand::Doc(doc(&[EXT, "level"])),
                cmp(Gt, Literal::Number(5.into()), Case::Exact),
            ),
        ),
        (
            Custom,
            r#"level eq "5""#,
            Plan::Compare(
                Operand::Doc(doc(&[EXT, "level"])),
                cmp(Eq, Literal::QuotedNumber(5.into()), Case::Exact),
            ),
        ),
        // Multi-valued: some value; `ne`: no value equals.
        (
            User,
            r#"emails.value eq "a""#,
            exists(
                false,
                emails(),
                Plan::Compare(Operand::Field("value".into()), cmp(Eq, text("a"), Case::Insensitive)),
            ),
        ),
        (
            User,
            r#"emails ne "a""#,
            exists(
                true,
                emails(),
                Plan::Compare(Operand::ValueField, cmp(Eq, text("a"), Case::Insensitive)),
            ),
        ),
        (
            User,
            r#"emails pr"#,
            exists(false, emails(), Plan::Present(Operand::ValueField)),
        ),
        (
            Custom,
            r#"tags eq "x""#,
            exists(
                false,
                Collection::Array(doc(&[EXT, "tags"])),
                Plan::Compare(Operand::Element, cmp(Eq, text("x"), Case::Insensitive)),
            ),
        ),
        (
            User,
            r#"emails[type eq "work" and primary eq "true"]"#,
            exists(
                false,
                emails(),
                Plan::And(vec![
                    Plan::Compare(Operand::Field("type".into()), cmp(Eq, text("work"), Case::Insensitive)),
                    Plan::Compare(
                        Operand::Field("primary".into()),
                        cmp(Eq, Literal::Bool(true), Case::Exact),
                    ),
                ]),
            ),
        ),
        // Single-valued complex: compared through its value; value paths on the object.
        (
            User,
            r#"manager eq "m1""#,
            Plan::Compare(
                Operand::Doc(doc(&[
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                    "manager",
                    "value",
                ])),
                cmp(Eq, text("m1"), Case::Insensitive),
            ),
        ),
        (
            User,
            r#"manager[value eq "m1"]"#,
            Plan::Object {
                path: manager(),
                cond: Box::new(Plan::Compare(
                    Operand::Field("value".into()),
                    cmp(Eq, text("m1"), Case::Insensitive),
                )),
            },
        ),
        // Members: `members eq` compares ids exactly, `members.value` case-insensitively.
        (
            Group,
            r#"members eq "U1""#,
            exists(
                false,
                Collection::Members,
                Plan::Compare(
                    Operand::Member(MemberColumn::MemberId),
                    cmp(Eq, text("U1"), Case::Exact),
                ),
            ),
        ),
        (
            Group,
            r#"members[value eq "u1"]"#,
            exists(
                false,
                Collection::Members,
                Plan::Compare(
                    Operand::Member(MemberColumn::MemberId),
                    cmp(Eq, text("u1"), Case::Insensitive),
                ),
            ),
        ),
        (
            Group,
            r#"members.type ne "Group""#,
            exists(
                true,
                Collection::Members,
                Plan::Compare(
                    Operand::Member(MemberColumn::MemberType),
                    cmp(Eq, text("Group"), Case::Insensitive),
                ),
            ),
        ),
        (
            User,
            r#"groups eq "g1""#,
            exists(
                false,
                Collection::Groups,
                Plan::Compare(
                    Operand::Member(MemberColumn::GroupId),
                    cmp(Eq, text("g1"), Case::Insensitive),
                ),
            ),
        ),
        // meta.resourceType is known without reading the row.
        (User, r#"meta.resourceType eq "User""#, Plan::Const(true)),
        (Group, r#"meta.resourceType eq "User""#, Plan::Const(false)),
        (User, r#"meta.resourceType ne "Group""#, Plan::Const(true)),
        (User, r#"meta.resourceType pr"#, Plan::Const(true)),
        (
            User,
            r#"not (title pr or meta.resourceType eq "Group")"#,
            Plan::Not(Box::new(Plan::Or(vec![
                Plan::Present(Operand::Doc(doc(&["title"]))),
                Plan::Const(false),
            ]))),
        ),
    ];
    for (which, f, want) in cases {
        assert_eq!(
            plan(which, f).unwrap_or_else(|e| panic!("{f}: {}", e.detail)),
            want,
            "{f}"
        );
    }
}

/// Filters that cannot be planned, with the message clients get (the same
/// on every backend).
#[test]
fn filter_errors() {
    let cases: &[(Rt, &str, &str)] = &[
        (
            User,
            r#"addresses eq "x""#,
            "'addresses' is complex; name a sub-attribute",
        ),
        (User, r#"nope eq "x""#, "unknown attribute 'nope'"),
        (
            User,
            "active gt true",
            "operator 'gt' cannot be used on boolean attribute 'active'",
        ),
        (
            User,
            r#"active eq "maybe""#,
            "'active' is a boolean; compare it with true or false",
        ),
        (
            User,
            "active eq 1",
            "'active' is a boolean; compare it with true or false",
        ),
        (User, r#"meta.created gt "yesterday""#, "'yesterday' is not a dateTime"),
        (User, r#"userName[value eq "x"]"#, "'userName' is not multi-valued"),
        (
            User,
            r#"displayName[value eq "x"]"#,
            "'displayName' is not multi-valued",
        ),
        (
            User,
            r#"name[givenName eq "x"]"#,
            "'name' is complex; name a sub-attribute",
        ),
        (User, r#"name eq "x""#, "'name' is complex; name a sub-attribute"),
        (User, r#"groups[value eq "x"]"#, "'groups' is not multi-valued"),
        (
            User,
            r#"groups.display eq "x""#,
            "'groups.display' cannot be used in a filter",
        ),
        (
            User,
            r#"manager.displayName eq "x""#,
            "'manager.displayName' cannot be used in a filter",
        ),
        (User, r#"emails[nope eq "x"]"#, "'emails' has no sub-attribute 'nope'"),
        (
            User,
            r#"emails[urn:x:y eq "x"]"#,
            "'urn:x:y' is not a sub-attribute of 'emails'",
        ),
        (
            User,
            r#"meta.version eq "1""#,
            "'meta.version' cannot be used in a filter",
        ),
        (User, r#"meta eq "x""#, "'meta' cannot be used in a filter"),
        (
            User,
            r#"meta.resourceType co "U""#,
            "meta.resourceType supports eq and ne",
        ),
        (User, "meta.resourceType eq 1", "meta.resourceType is a string"),
        (
            User,
            "meta.resourceType gt null",
            "operator 'gt' needs a string or number value",
        ),
        (User, "userName co null", "operator 'co' needs a string or number value"),
        (
            User,
            r#"urn:example:unknown:ext:thing eq "x""#,
            "unknown attribute 'urn:example:unknown:ext:thing'",
        ),
        (
            Group,
            r#"members[$ref eq "x"]"#,
            "'members.$ref' cannot be used in a filter",
        ),
        (
            Group,
            r#"members.$ref eq "x""#,
            "'members.$ref' cannot be used in a filter",
        ),
        (Group, r#"userName eq "x""#, "unknown attribute 'userName'"),
        (
            Custom,
            r#"level co "1""#,
            "operator 'co' cannot be used on numeric attribute 'level'",
        ),
        (Custom, r#"level eq "abc""#, "'level' is numeric; 'abc' is not a number"),
        (Custom, "level eq true", "'level' is numeric"),
        (Custom, r#"awards eq "x""#, "'awards' is complex; name a sub-attribute"),
        (Custom, r#"value[value eq "x"]"#, "'value' is not multi-valued"),
        (
            User,
            r#"meta.created gt "2024-01-01""#,
            "'2024-01-01' is not a dateTime",
        ),
    ];
    for (which, f, want) in cases {
        let e = plan(*which, f).expect_err(f);
        assert_eq!(
            (e.scim_type, e.detail.as_str()),
            (Some(ScimType::InvalidFilter), *want),
            "{f}"
        );
    }
}

/// A backend whose text parameters cannot hold NUL refuses such literals
/// before reading them for the type.
#[test]
fn dialect_refuses_nul() {
    let no_nul = Dialect {
        text_holds_nul: false,
        ..DIALECT
    };
    let (rt, kind) = rt(User);
    for attr in ["userName", "active", "title"] {
        let f = scimitar_protocol::filter::Filter::Compare(
            scimitar_protocol::filter::AttrPath::new(attr),
            CompareOp::Eq,
            CompValue::String("a\0b".into()),
        );
        let e = plan_filter(&rt, kind, &f, &no_nul).expect_err(attr);
        assert_eq!(e.detail, "filter values cannot contain NUL characters", "{attr}");
    }
}

#[test]
fn sort_keys() {
    let key = |source, key_type| Some(SortKey { source, key_type });
    let cases: Vec<(Rt, &str, Option<SortKey>)> = vec![
        (
            User,
            "userName",
            key(SortSource::Column(Column::UserName), KeyType::Text(Case::Lowered)),
        ),
        (
            User,
            "id",
            key(SortSource::Column(Column::Id), KeyType::Text(Case::Exact)),
        ),
        (
            User,
            "meta.created",
            key(SortSource::Column(Column::Created), KeyType::Text(Case::Exact)),
        ),
        (
            User,
            "title",
            key(SortSource::Doc(doc(&["title"])), KeyType::Text(Case::Insensitive)),
        ),
        (User, "active", key(SortSource::Doc(doc(&["active"])), KeyType::Boolean)),
        (
            Custom,
            "level",
            key(SortSource::Doc(doc(&[EXT, "level"])), KeyType::Number),
        ),
        (
            User,
            "emails",
            key(
                SortSource::PrimaryElse {
                    array: doc(&["emails"]),
                    sub: "value".into(),
                },
                KeyType::Text(Case::Insensitive),
            ),
        ),
        (
            Custom,
            "awards.rank",
            key(
                SortSource::PrimaryElse {
                    array: doc(&[EXT, "awards"]),
                    sub: "rank".into(),
                },
                KeyType::Number,
            ),
        ),
        (
            Custom,
            "tags",
            key(
                SortSource::FirstElement(doc(&[EXT, "tags"])),
                KeyType::Text(Case::Insensitive),
            ),
        ),
        (
            User,
            "manager",
            key(
                SortSource::Doc(doc(&[
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                    "manager",
                    "value",
                ])),
                KeyType::Text(Case::Insensitive),
            ),
        ),
        // The same for every resource of a list: store order.
        (User, "meta.resourceType", None),
    ];
    for (which, by, want) in cases {
        let (rt, kind) = rt(which);
        assert_eq!(
            plan_sort(&rt, kind, by).unwrap_or_else(|e| panic!("{by}: {}", e.detail)),
            want,
            "{by}"
        );
    }
}

#[test]
fn sort_key_errors() {
    let cases: &[(Rt, &str, &str)] = &[
        (User, "groups", "cannot sort by 'groups'"),
        (User, "nope", "unknown attribute 'nope'"),
        (User, "emails.nope", "unknown attribute 'emails.nope'"),
        (
            User,
            "manager.displayName",
            "'manager.displayName' cannot be used in a filter",
        ),
        (User, "bad..path", "invalid sortBy attribute 'bad..path'"),
        (Group, "members", "cannot sort by 'members'"),
    ];
    for (which, by, want) in cases {
        let (rt, kind) = rt(*which);
        let e = plan_sort(&rt, kind, by).expect_err(by);
        assert_eq!(
            (e.scim_type, e.detail.as_str()),
            (Some(ScimType::InvalidValue), *want),
            "{by}"
        );
    }
}

#[test]
fn point_lookups() {
    let cases: &[(Rt, &str, bool)] = &[
        (User, r#"userName eq "x""#, true),
        (User, r#"USERNAME eq "x""#, true),
        (
            User,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#,
            true,
        ),
        (User, r#"id eq "x""#, true),
        (User, r#"externalId eq "x""#, true),
        (User, r#"userName eq "x" and active eq true"#, true),
        (Group, r#"displayName eq "x""#, true),
        (Group, r#"id eq "x" and members pr"#, true),
        // Not indexed, not `eq` on a string, or possibly many.
        (User, r#"displayName eq "x""#, false),
        (User, r#"meta.created eq "2024-01-01T00:00:00Z""#, false),
        (User, r#"userName ne "x""#, false),
        (User, r#"userName eq 5"#, false),
        (User, r#"userName eq "x" or id eq "y""#, false),
        (User, r#"not (userName eq "x")"#, false),
        (Group, r#"userName eq "x""#, false),
    ];
    for (which, f, want) in cases {
        let (rt, kind) = rt(*which);
        assert_eq!(is_point_lookup(&rt, kind, &parse_filter(f).unwrap()), *want, "{f}");
    }
}

/// The work of a list query, for the per-tenant share of scanning reads and
/// the filter cost budget: Entra's and Okta's lookups are index lookups;
/// anything else reads every resource, at a cost per resource that grows
/// with the terms (ten times for a term over a multi-valued attribute).
#[test]
fn work_of_list_queries() {
    use scimitar_protocol::plan::Work::{Lookup, Scan};
    let scan = |per_resource| Scan { per_resource };
    let cases: &[(Rt, Option<&str>, bool, Work)] = &[
        // What identity providers send.
        (User, Some(r#"userName eq "x""#), false, Lookup),
        (User, Some(r#"externalId eq "x""#), false, Lookup),
        (User, Some(r#"id eq "x" and manager eq "y""#), false, Lookup),
        (Group, Some(r#"displayName eq "x""#), false, Lookup),
        (Group, Some(r#"id eq "g" and members[value eq "u"]"#), false, Lookup),
        (Group, Some(r#"displayName eq "x""#), true, Lookup),
        // An `or` of lookups on one column is an IN on its index.
        (User, Some(r#"id eq "a" or id eq "b" or ID eq "c""#), false, Lookup),
        (User, Some(r#"userName eq "a" or userName eq "b""#), false, Lookup),
        (User, Some(r#"(id eq "a" or id eq "b") and title pr"#), false, Lookup),
        // Anything else reads every resource of the type.
        (User, None, false, scan(0)),
        (User, None, true, scan(1)),
        (User, Some(r#"userName eq "a" or id eq "b""#), false, scan(2)),
        (User, Some(r#"userName co "a""#), false, scan(1)),
        (User, Some(r#"displayName eq "x""#), false, scan(1)),
        (User, Some(r#"title pr and not (nickName co "a")"#), true, scan(3)),
        (User, Some(r#"emails.value co "a""#), false, scan(10)),
        (
            User,
            Some(r#"emails[type eq "work" and value co "a"]"#),
            false,
            scan(20),
        ),
        (User, Some(r#"emails co "a" or title co "b""#), false, scan(11)),
        (User, Some(r#"manager[value eq "m"]"#), false, scan(1)),
        (User, Some(r#"groups eq "g""#), false, scan(10)),
        (Group, Some(r#"members[value co "-"]"#), false, scan(10)),
        (
            Group,
            Some(r#"members.display co "a" or displayName co "b""#),
            false,
            scan(11),
        ),
        (Custom, Some(r#"level gt 5"#), false, scan(1)),
    ];
    for (which, f, sorted, want) in cases {
        let (rt, kind) = rt(*which);
        let filter = f.map(|f| parse_filter(f).unwrap());
        assert_eq!(
            work(&rt, kind, filter.as_ref(), *sorted),
            *want,
            "{f:?} sorted {sorted}"
        );
    }
}
