//! Table-driven tests of the filter grammar (RFC 7644 §3.4.2.2) and the
//! PATCH path grammar (§3.5.2), plus property tests: Display/parse round
//! trip over generated ASTs and "never panics" over arbitrary input.
//!
//! Canonical ASTs (those for which `parse_filter(&ast.to_string()) == ast`):
//! `And`/`Or` have at least two operands; a `ValuePath` names no
//! sub-attribute and its inner filter contains no `ValuePath`; URNs start
//! with `urn:` and use only name characters; numbers are finite. Nesting
//! (`And` directly inside `And`, `Or` inside `Or`) is kept as written, and
//! Display parenthesises it, so such trees round-trip too.

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use proptest::prelude::*;
use scimitar_protocol::ScimType;
use scimitar_protocol::filter::{
    AttrPath, CompValue, CompareOp, Filter, Limits, PatchPath, parse_filter, parse_filter_with, parse_patch_path,
};

macro_rules! ent {
    () => {
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    };
}
macro_rules! core {
    () => {
        "urn:ietf:params:scim:schemas:core:2.0:User"
    };
}
const ENT: &str = ent!();
const CORE: &str = core!();

fn p(name: &str) -> AttrPath {
    AttrPath::new(name)
}
fn ps(name: &str, sub: &str) -> AttrPath {
    AttrPath {
        urn: None,
        name: name.into(),
        sub: Some(sub.into()),
    }
}
fn pu(urn: &str, name: &str) -> AttrPath {
    AttrPath {
        urn: Some(urn.into()),
        name: name.into(),
        sub: None,
    }
}
fn s(v: &str) -> CompValue {
    CompValue::String(v.into())
}
fn n(v: i64) -> CompValue {
    CompValue::Number(v.into())
}
fn cmp(path: AttrPath, op: CompareOp, v: CompValue) -> Filter {
    Filter::Compare(path, op, v)
}
fn eq(name: &str, v: &str) -> Filter {
    cmp(p(name), CompareOp::Eq, s(v))
}
fn pr(name: &str) -> Filter {
    Filter::Present(p(name))
}
fn and(v: Vec<Filter>) -> Filter {
    Filter::And(v)
}
fn or(v: Vec<Filter>) -> Filter {
    Filter::Or(v)
}
fn not(f: Filter) -> Filter {
    Filter::Not(Box::new(f))
}
fn vp(path: AttrPath, f: Filter) -> Filter {
    Filter::ValuePath(path, Box::new(f))
}

#[test]
fn valid_filters_parse_to_the_expected_ast() {
    use CompareOp::*;
    let table: Vec<(&str, Filter)> = vec![
        // every operator
        (r#"userName eq "bjensen""#, eq("userName", "bjensen")),
        (r#"userName ne "bjensen""#, cmp(p("userName"), Ne, s("bjensen"))),
        (
            r#"name.familyName co "O'Malley""#,
            cmp(ps("name", "familyName"), Co, s("O'Malley")),
        ),
        (r#"userName sw "J""#, cmp(p("userName"), Sw, s("J"))),
        (r#"userName ew "son""#, cmp(p("userName"), Ew, s("son"))),
        ("title pr", pr("title")),
        (
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            cmp(ps("meta", "lastModified"), Gt, s("2011-05-13T04:42:34Z")),
        ),
        (
            r#"meta.lastModified ge "2011-05-13T04:42:34Z""#,
            cmp(ps("meta", "lastModified"), Ge, s("2011-05-13T04:42:34Z")),
        ),
        (
            r#"meta.lastModified lt "2011-05-13T04:42:34Z""#,
            cmp(ps("meta", "lastModified"), Lt, s("2011-05-13T04:42:34Z")),
        ),
        (
            r#"meta.lastModified le "2011-05-13T04:42:34Z""#,
            cmp(ps("meta", "lastModified"), Le, s("2011-05-13T04:42:34Z")),
        ),
        // case-insensitive operators and keywords
        (r#"userName EQ "x""#, eq("userName", "x")),
        (r#"userName Eq "x""#, eq("userName", "x")),
        ("title PR", pr("title")),
        (r#"a pr AND b pr"#, and(vec![pr("a"), pr("b")])),
        (r#"a pr Or b pr"#, or(vec![pr("a"), pr("b")])),
        (r#"NOT (a pr)"#, not(pr("a"))),
        (r#"not(a pr)"#, not(pr("a"))),
        // precedence: and binds tighter than or
        ("a pr or b pr and c pr", or(vec![pr("a"), and(vec![pr("b"), pr("c")])])),
        ("a pr and b pr or c pr", or(vec![and(vec![pr("a"), pr("b")]), pr("c")])),
        (
            "a pr and b pr or c pr and d pr",
            or(vec![and(vec![pr("a"), pr("b")]), and(vec![pr("c"), pr("d")])]),
        ),
        ("a pr and b pr and c pr", and(vec![pr("a"), pr("b"), pr("c")])),
        ("a pr or b pr or c pr", or(vec![pr("a"), pr("b"), pr("c")])),
        // parentheses
        (
            "(a pr or b pr) and c pr",
            and(vec![or(vec![pr("a"), pr("b")]), pr("c")]),
        ),
        ("((a pr))", pr("a")),
        ("  ( a pr )  ", pr("a")),
        (
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            and(vec![
                eq("userType", "Employee"),
                or(vec![
                    cmp(p("emails"), Co, s("example.com")),
                    cmp(ps("emails", "value"), Co, s("example.org")),
                ]),
            ]),
        ),
        (r#"not (a pr) and b pr"#, and(vec![not(pr("a")), pr("b")])),
        (r#"not (a pr or b pr)"#, not(or(vec![pr("a"), pr("b")]))),
        // value paths
        (
            r#"emails[type eq "work" and value co "@example.com"]"#,
            vp(
                p("emails"),
                and(vec![eq("type", "work"), cmp(p("value"), Co, s("@example.com"))]),
            ),
        ),
        (
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            or(vec![
                vp(
                    p("emails"),
                    and(vec![eq("type", "work"), cmp(p("value"), Co, s("@example.com"))]),
                ),
                vp(
                    p("ims"),
                    and(vec![eq("type", "xmpp"), cmp(p("value"), Co, s("@foo.com"))]),
                ),
            ]),
        ),
        (
            r#"emails[not (type eq "work")]"#,
            vp(p("emails"), not(eq("type", "work"))),
        ),
        (
            r#"members[value eq "u1" or value eq "u2"]"#,
            vp(p("members"), or(vec![eq("value", "u1"), eq("value", "u2")])),
        ),
        // the tolerated `attr[filter].sub op value` form
        (
            r#"emails[type eq "work"].value eq "x""#,
            vp(p("emails"), and(vec![eq("type", "work"), eq("value", "x")])),
        ),
        (
            r#"emails[type eq "work"].value pr"#,
            vp(p("emails"), and(vec![eq("type", "work"), pr("value")])),
        ),
        // URN-qualified names
        (
            concat!(ent!(), r#":department eq "R&D""#),
            cmp(pu(ENT, "department"), Eq, s("R&D")),
        ),
        (
            concat!(ent!(), r#":manager.value eq "m1""#),
            cmp(
                AttrPath {
                    urn: Some(ENT.into()),
                    name: "manager".into(),
                    sub: Some("value".into()),
                },
                Eq,
                s("m1"),
            ),
        ),
        (
            concat!(core!(), r#":userName eq "a""#),
            cmp(pu(CORE, "userName"), Eq, s("a")),
        ),
        (
            concat!(core!(), r#":emails[type eq "work"]"#),
            vp(pu(CORE, "emails"), eq("type", "work")),
        ),
        // unquoted legacy values
        ("externalId eq jyoung", eq("externalId", "jyoung")),
        (
            "externalId eq jyoung and userName pr",
            and(vec![eq("externalId", "jyoung"), pr("userName")]),
        ),
        ("(externalId eq jyoung)", eq("externalId", "jyoung")),
        ("emails[type eq work]", vp(p("emails"), eq("type", "work"))),
        // string escapes
        (
            r#"displayName eq "a \"quoted\" name""#,
            eq("displayName", r#"a "quoted" name"#),
        ),
        (r#"displayName eq "back\\slash""#, eq("displayName", r"back\slash")),
        (r#"displayName eq "tab\there""#, eq("displayName", "tab\there")),
        (r#"displayName eq "\u00e9t\u00E9""#, eq("displayName", "été")),
        (r#"displayName eq "été ünïcode""#, eq("displayName", "été ünïcode")),
        (r#"displayName eq """#, eq("displayName", "")),
        (
            r#"displayName eq "and or not ) ] (""#,
            eq("displayName", "and or not ) ] ("),
        ),
        // numbers, booleans, null
        ("x eq 42", cmp(p("x"), Eq, n(42))),
        ("x gt -7", cmp(p("x"), Gt, n(-7))),
        (
            "x lt 1.5",
            cmp(
                p("x"),
                Lt,
                CompValue::Number(serde_json::Number::from_f64(1.5).unwrap()),
            ),
        ),
        (
            "x le 2e3",
            cmp(
                p("x"),
                Le,
                CompValue::Number(serde_json::Number::from_f64(2000.0).unwrap()),
            ),
        ),
        ("active eq true", cmp(p("active"), Eq, CompValue::Bool(true))),
        ("active eq False", cmp(p("active"), Eq, CompValue::Bool(false))),
        ("title eq null", cmp(p("title"), Eq, CompValue::Null)),
        ("title ne NULL", cmp(p("title"), Ne, CompValue::Null)),
        (r#"active eq "true""#, cmp(p("active"), Eq, s("true"))),
        // attribute names that look like keywords
        ("not pr", pr("not")),
        (r#"not eq "x""#, eq("not", "x")),
        ("and pr or or pr", or(vec![pr("and"), pr("or")])),
        ("notes pr and orders pr", and(vec![pr("notes"), pr("orders")])),
        ("$ref pr", pr("$ref")),
        // Entra's legacy checks
        (
            r#"id eq "u1" and manager eq "m1""#,
            and(vec![eq("id", "u1"), eq("manager", "m1")]),
        ),
    ];
    for (input, want) in table {
        match parse_filter(input) {
            Ok(got) => assert_eq!(got, want, "filter: {input}"),
            Err(e) => panic!("filter {input:?} failed: {e}"),
        }
    }
}

#[test]
fn invalid_filters_give_invalid_filter() {
    let table = [
        "",
        "   ",
        "userName",
        "userName eq",
        "userName eq ",
        r#"userName xx "a""#,
        r#"userName eq "unterminated"#,
        r#"userName eq "a" and"#,
        r#"userName eq "a" or"#,
        r#"and userName eq "a""#,
        r#"userName eq "a" userName eq "b""#,
        r#"(userName eq "a""#,
        r#"userName eq "a")"#,
        "()",
        "not",
        "not ()",
        r#"emails[type eq "work""#,
        r#"emails[type eq "work"]]"#,
        r#"emails[emails[type eq "x"]]"#,
        r#"emails.value[type eq "x"]"#,
        r#"emails[type eq "work"]."#,
        r#"emails[type eq "work"].9 eq "x""#,
        r#"emails[type eq "work"].value"#,
        r#"emails[type eq "work"].value xx "a""#,
        r#"emails[]"#,
        r#"1abc eq "a""#,
        r#"na!me eq "a""#,
        r#"name..x eq "a""#,
        r#"name.given.x eq "a""#,
        r#"http://x:name eq "a""#,
        r#"userName eq "a"b"#,
        r#"userName eq a"b"#,
        r#"userName eq"a""#,
        r#"userName  eq"#,
        r#"userName eq "\x""#,
        r#"userName eq "\ud800""#,
        r#"[type eq "work"]"#,
        r#"userName eq "a" && x pr"#,
        r#"userName eq "a" andx pr"#,
        "pr",
        "eq eq",
        "not userName eq \"x\"",
        ")",
        "]",
        "\"lonely string\"",
        "é pr",
        "userName\u{00a0}eq \"x\"x",
    ];
    for input in table {
        match parse_filter(input) {
            Ok(f) => panic!("filter {input:?} should fail but parsed as {f:?}"),
            Err(e) => {
                assert_eq!(e.status, 400, "filter {input:?}: {e}");
                assert_eq!(e.scim_type, Some(ScimType::InvalidFilter), "filter {input:?}: {e}");
                assert!(!e.detail.is_empty());
            }
        }
    }
}

#[test]
fn limits_give_too_many() {
    let tight = Limits {
        max_length: 64,
        max_depth: 3,
        max_terms: 4,
    };
    let table: Vec<(String, bool)> = vec![
        // (filter, within limits?)
        ("a pr".into(), true),
        ("a".repeat(61) + " pr", true),
        ("a".repeat(62) + " pr", false),
        ("(((a pr)))".into(), true),
        ("((((a pr))))".into(), false),
        ("not (not (not (a pr)))".into(), true),
        ("not (not (not (not (a pr))))".into(), false),
        ("((x[a pr]))".into(), true),
        ("(((x[a pr])))".into(), false),
        ("a pr and b pr and c pr and d pr".into(), true),
        ("a pr and b pr and c pr and d pr or e pr".into(), false),
        ("x[a pr or b pr or c pr] and d pr and e pr".into(), false),
    ];
    for (input, ok) in table {
        let r = parse_filter_with(&input, tight);
        if ok {
            assert!(r.is_ok(), "{input:?}: {r:?}");
        } else {
            let e = r.expect_err(&input);
            assert_eq!(
                (e.status, e.scim_type),
                (400, Some(ScimType::TooMany)),
                "{input:?}: {e}"
            );
        }
    }
    // Default limits: deep nesting and huge filters are rejected cheaply.
    let deep = "(".repeat(5000) + "a pr" + &")".repeat(5000);
    assert_eq!(parse_filter(&deep).unwrap_err().scim_type, Some(ScimType::TooMany));
    let many = vec!["a pr"; 1500].join(" and ");
    assert_eq!(parse_filter(&many).unwrap_err().scim_type, Some(ScimType::TooMany));
    let long = format!("userName eq \"{}\"", "x".repeat(20_000));
    assert_eq!(parse_filter(&long).unwrap_err().scim_type, Some(ScimType::TooMany));
    let nots = "not (".repeat(100) + "a pr" + &")".repeat(100);
    assert_eq!(parse_filter(&nots).unwrap_err().scim_type, Some(ScimType::TooMany));
}

#[test]
fn display_is_canonical_for_parsed_filters() {
    let table = [
        (r#"userName EQ "x""#, r#"userName eq "x""#),
        ("externalId eq jyoung", r#"externalId eq "jyoung""#),
        ("a pr or b pr and c pr", "a pr or b pr and c pr"),
        ("(a pr or b pr) and c pr", "(a pr or b pr) and c pr"),
        ("(a pr and b pr) and c pr", "(a pr and b pr) and c pr"),
        ("NOT(a pr)", "not (a pr)"),
        (
            r#"emails[type eq "work"].value eq "x""#,
            r#"emails[type eq "work" and value eq "x"]"#,
        ),
        (r#"x eq "a\"b\\c""#, r#"x eq "a\"b\\c""#),
        ("active eq TRUE", "active eq true"),
    ];
    for (input, want) in table {
        let f = parse_filter(input).unwrap();
        assert_eq!(f.to_string(), want, "{input}");
        assert_eq!(parse_filter(&f.to_string()).unwrap(), f, "{input}");
    }
}

#[test]
fn patch_paths_parse() {
    let table: Vec<(&str, PatchPath)> = vec![
        (
            "userName",
            PatchPath {
                urn: None,
                name: "userName".into(),
                filter: None,
                sub: None,
            },
        ),
        (
            "name.givenName",
            PatchPath {
                urn: None,
                name: "name".into(),
                filter: None,
                sub: Some("givenName".into()),
            },
        ),
        (
            concat!(ent!(), ":employeeNumber"),
            PatchPath {
                urn: Some(ENT.into()),
                name: "employeeNumber".into(),
                filter: None,
                sub: None,
            },
        ),
        (
            concat!(ent!(), ":manager.value"),
            PatchPath {
                urn: Some(ENT.into()),
                name: "manager".into(),
                filter: None,
                sub: Some("value".into()),
            },
        ),
        (
            // a whole extension: the last URN segment reads as the name
            ENT,
            PatchPath {
                urn: Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0".into()),
                name: "User".into(),
                filter: None,
                sub: None,
            },
        ),
        (
            r#"emails[type eq "work"].value"#,
            PatchPath {
                urn: None,
                name: "emails".into(),
                filter: Some(eq("type", "work")),
                sub: Some("value".into()),
            },
        ),
        (
            r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
            PatchPath {
                urn: None,
                name: "members".into(),
                filter: Some(eq("value", "2819c223-7f76-453a-919d-413861904646")),
                sub: None,
            },
        ),
        (
            r#"addresses[type eq "work" and primary eq true].streetAddress"#,
            PatchPath {
                urn: None,
                name: "addresses".into(),
                filter: Some(and(vec![
                    eq("type", "work"),
                    cmp(p("primary"), CompareOp::Eq, CompValue::Bool(true)),
                ])),
                sub: Some("streetAddress".into()),
            },
        ),
        (
            r#"roles[primary eq "True"].value"#,
            PatchPath {
                urn: None,
                name: "roles".into(),
                filter: Some(eq("primary", "True")),
                sub: Some("value".into()),
            },
        ),
        (
            r#"manager[value eq "m1"]"#,
            PatchPath {
                urn: None,
                name: "manager".into(),
                filter: Some(eq("value", "m1")),
                sub: None,
            },
        ),
        (
            "  userName  ",
            PatchPath {
                urn: None,
                name: "userName".into(),
                filter: None,
                sub: None,
            },
        ),
    ];
    for (input, want) in table {
        let got = parse_patch_path(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(got, want, "{input}");
        assert_eq!(parse_patch_path(&got.to_string()).unwrap(), got, "{input}");
    }
}

#[test]
fn invalid_patch_paths_give_invalid_path() {
    let table = [
        "",
        "   ",
        "1name",
        "name..givenName",
        "name.givenName.x",
        "emails[",
        r#"emails[type eq "work""#,
        r#"emails[type eq "work"]x"#,
        r#"emails[type eq "work"]."#,
        r#"emails[type eq "work"].value.x"#,
        r#"emails[type eq "work"].9"#,
        r#"emails.value[type eq "work"]"#,
        r#"emails[type xx "work"]"#,
        r#"emails[emails[type eq "work"]]"#,
        "emails[]",
        "user name",
        "http://example.com:name",
        "members value",
        "\"userName\"",
    ];
    for input in table {
        let e = parse_patch_path(input).expect_err(input);
        assert_eq!(
            (e.status, e.scim_type),
            (400, Some(ScimType::InvalidPath)),
            "{input:?}: {e}"
        );
    }
}

// ---------------------------------------------------------------------------
// Property tests.

fn arb_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "userName", "emails", "name", "type", "value", "primary", "not", "and", "or", "pr", "eq", "true", "null",
            "$ref", "_x", "a-b",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z][a-zA-Z0-9_$-]{0,8}",
    ]
}

fn arb_urn() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        1 => prop::sample::select(vec![ENT, CORE, "urn:x", "URN:a:b-c.d:e_f"]).prop_map(|u| Some(u.to_string())),
    ]
}

fn arb_path(with_sub: bool) -> impl Strategy<Value = AttrPath> {
    let sub = if with_sub {
        prop::option::of(arb_name()).boxed()
    } else {
        Just(None).boxed()
    };
    (arb_urn(), arb_name(), sub).prop_map(|(urn, name, sub)| AttrPath { urn, name, sub })
}

fn arb_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        Just(CompValue::Null),
        any::<bool>().prop_map(CompValue::Bool),
        any::<i64>().prop_map(|i| CompValue::Number(i.into())),
        any::<u64>().prop_map(|i| CompValue::Number(i.into())),
        any::<f64>()
            .prop_filter_map("finite", serde_json::Number::from_f64)
            .prop_map(CompValue::Number),
        any::<String>().prop_map(CompValue::String),
        "[ -~]{0,12}".prop_map(CompValue::String),
    ]
}

fn arb_op() -> impl Strategy<Value = CompareOp> {
    use CompareOp::*;
    prop::sample::select(vec![Eq, Ne, Co, Sw, Ew, Gt, Ge, Lt, Le])
}

fn arb_attr_exp() -> impl Strategy<Value = Filter> {
    prop_oneof![
        arb_path(true).prop_map(Filter::Present),
        (arb_path(true), arb_op(), arb_value()).prop_map(|(p, o, v)| Filter::Compare(p, o, v)),
    ]
}

fn combine(leaf: BoxedStrategy<Filter>) -> BoxedStrategy<Filter> {
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
    .boxed()
}

/// Canonical filters: see the module comment.
fn arb_filter() -> impl Strategy<Value = Filter> {
    let inner = combine(arb_attr_exp().boxed());
    let value_path = (arb_path(false), inner).prop_map(|(p, f)| Filter::ValuePath(p, Box::new(f)));
    let leaf = prop_oneof![3 => arb_attr_exp(), 1 => value_path].boxed();
    combine(leaf)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn display_then_parse_round_trips(f in arb_filter()) {
        let text = f.to_string();
        let parsed = parse_filter(&text);
        prop_assert!(parsed.is_ok(), "{text:?} did not parse: {parsed:?}");
        prop_assert_eq!(parsed.unwrap(), f, "text: {}", text);
    }

    #[test]
    fn patch_path_display_round_trips(
        urn in arb_urn(), name in arb_name(), filter in prop::option::of(combine(arb_attr_exp().boxed())),
        sub in prop::option::of(arb_name()),
    ) {
        let path = PatchPath { urn, name, filter, sub };
        let text = path.to_string();
        let parsed = parse_patch_path(&text);
        prop_assert!(parsed.is_ok(), "{text:?} did not parse: {parsed:?}");
        prop_assert_eq!(parsed.unwrap(), path);
    }

    #[test]
    fn arbitrary_strings_never_panic(input in any::<String>()) {
        if let Err(e) = parse_filter(&input) {
            prop_assert_eq!(e.status, 400);
            prop_assert!(matches!(e.scim_type, Some(ScimType::InvalidFilter | ScimType::TooMany)));
        }
        if let Err(e) = parse_patch_path(&input) {
            prop_assert_eq!(e.status, 400);
            prop_assert!(matches!(e.scim_type, Some(ScimType::InvalidPath)));
        }
    }

    #[test]
    fn filter_like_strings_never_panic(input in r#"[a-z\[\]()" .:\\0-9é\t-]{0,40}|(not |and |or |eq |pr |\[|\]|\(|\)|"|\\|emails|\.value| )*"#) {
        if let Err(e) = parse_filter(&input) {
            prop_assert_eq!(e.status, 400);
        }
        if let Err(e) = parse_patch_path(&input) {
            prop_assert_eq!(e.scim_type, Some(ScimType::InvalidPath));
        }
    }

    #[test]
    fn mutated_valid_filters_never_panic(f in arb_filter(), cut in any::<prop::sample::Index>(), junk in "[\\[\\]()\" ]{0,3}") {
        let text = f.to_string();
        let mut at = cut.index(text.len() + 1);
        while !text.is_char_boundary(at) { at -= 1; }
        let mutated = format!("{}{junk}{}", &text[..at], &text[at..]);
        let _ = parse_filter(&mutated);
        let _ = parse_patch_path(&mutated);
    }
}
