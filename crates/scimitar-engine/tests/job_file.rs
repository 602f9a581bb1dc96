//! Job files an administrator gets wrong: each names the line and the key
//! and says what is wrong, never a panic (table below). A good file parses
//! into what it says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use scimitar_engine::job::{Dialect, ScopeMode, parse_job};

/// A valid job; each case below breaks one thing in it.
const GOOD: &str = r#"name = "airstack"
[source]
kind = "ldap"
url = "ldap://127.0.0.1:3890"
bind_dn = "cn=admin,dc=example,dc=org"
bind_password = "secret"
base_dn = "dc=example,dc=org"
[target]
url = "https://app.example.com/scim/v2"
token = "t0ken"
dialect = "entra-compliant"
[scope]
mode = "assigned"
groups = ["cn=engineering,ou=groups,dc=example,dc=org"]
[[mappings.user]]
target = "title"
expression = 'ToUpper([title])'
default = "Unknown"
apply = "always"
[[scoping.user]]
clauses = [{ attribute = "departmentNumber", operator = "EQUALS", value = "42" }]
"#;

#[test]
fn a_good_job_parses() {
    let job = parse_job(GOOD, std::path::Path::new(".")).unwrap();
    assert_eq!(job.name, "airstack");
    assert_eq!(job.target.dialect, Dialect::EntraCompliant);
    assert_eq!(job.scope.mode, ScopeMode::Assigned);
    assert_eq!(job.scope.groups, ["cn=engineering,ou=groups,dc=example,dc=org"]);
    let title = job
        .users
        .mappings
        .iter()
        .find(|m| m.target.key() == "title")
        .expect("title is mapped");
    assert!(format!("{:?}", title.source).contains("ToUpper"), "{:?}", title.source);
    assert_eq!(job.users.scoping.len(), 1);
}

/// What is wrong, the edit to GOOD (from, to), the line, the key, words of
/// the message.
type Case = (
    &'static str,
    (&'static str, &'static str),
    usize,
    &'static str,
    &'static str,
);

const CASES: &[Case] = &[
    (
        "unknown key",
        (
            "dialect = \"entra-compliant\"",
            "dialect = \"entra-compliant\"\ntokn = \"x\"",
        ),
        12,
        "tokn",
        "unknown field",
    ),
    (
        "missing required key",
        ("url = \"https://app.example.com/scim/v2\"\n", ""),
        8,
        "target",
        "url",
    ),
    (
        "unparsable expression",
        ("ToUpper([title])", "ToUpper([title]"),
        17,
        "mappings.user.expression",
        "expected",
    ),
    (
        "unknown function",
        ("ToUpper([title])", "ToUppr([title])"),
        17,
        "mappings.user.expression",
        "ToUppr",
    ),
    (
        "unknown attribute in an expression",
        ("ToUpper([title])", "ToUpper([titel])"),
        17,
        "mappings.user.expression",
        "titel",
    ),
    (
        "unknown scoping operator",
        ("operator = \"EQUALS\"", "operator = \"EQUAL\""),
        21,
        "scoping.user.operator",
        "EQUAL",
    ),
    (
        "unknown scoping attribute",
        ("attribute = \"departmentNumber\"", "attribute = \"department_number\""),
        21,
        "scoping.user.attribute",
        "department_number",
    ),
    (
        "unknown target attribute",
        ("target = \"title\"", "target = \"titel\""),
        16,
        "mappings.user.target",
        "titel",
    ),
    (
        "unknown dialect",
        ("dialect = \"entra-compliant\"", "dialect = \"entra\""),
        11,
        "target.dialect",
        "entra",
    ),
    (
        "unknown source kind",
        ("kind = \"ldap\"", "kind = \"ad\""),
        3,
        "source.kind",
        "ad",
    ),
    (
        "a secret given two ways",
        (
            "bind_password = \"secret\"",
            "bind_password = \"secret\"\nbind_password_env = \"PW\"",
        ),
        6,
        "source.bind_password",
        "one way",
    ),
    (
        "a Tenant URL that is not HTTP",
        ("https://app.example.com/scim/v2", "ftp://app.example.com/scim/v2"),
        9,
        "target.url",
        "https://",
    ),
    ("not TOML", ("name = \"airstack\"", "name = \"airstack"), 1, "name", ""),
    (
        "a request timeout of zero",
        ("name = \"airstack\"", "name = \"airstack\"\nrequest_timeout = \"0s\""),
        2,
        "request_timeout",
        "above zero",
    ),
];

#[test]
fn each_mistake_names_its_line_and_key() {
    for (what, (from, to), line, key, words) in CASES {
        assert!(GOOD.contains(from), "{what}: the edit does not apply");
        let text = GOOD.replacen(from, to, 1);
        let err = parse_job(&text, std::path::Path::new(".")).expect_err(what);
        let shown = err.to_string();
        assert_eq!(err.line, Some(*line), "{what}: {shown}");
        assert!(
            err.key.as_deref().is_some_and(|k| k.contains(key)),
            "{what}: key {:?}, wanted {key}: {shown}",
            err.key
        );
        assert!(shown.contains(words), "{what}: '{shown}' does not say '{words}'");
        assert!(shown.starts_with(&format!("line {line}, key `")), "{what}: {shown}");
    }
}
