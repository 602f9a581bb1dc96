//! The harness of the `expression` fuzz target (Entra attribute-mapping
//! expressions, `crates/scimitar-expression`).
//!
//! A separate file from `harness.rs` so that
//! `crates/scimitar-expression/tests/fuzz_regressions.rs` can include it
//! (with `#[path]`) without the protocol crate, and replay the seeds and
//! every reproducer through exactly the code the fuzzer ran. A failed
//! property is a panic; errors returned by the crate are fine.

use std::sync::OnceLock;

use scimitar_expression::{Env, Limits, MAX_DEPTH, eval, parse, parse_with};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// A user with every kind of source value the engine gives expressions.
fn sample_user() -> &'static Value {
    static USER: OnceLock<Value> = OnceLock::new();
    USER.get_or_init(|| {
        json!({
            "userPrincipalName": "John.Doe@contoso.com",
            "givenName": "Zoë", "surname": "Ærøskøbing", "displayName": "Zoë Ærøskøbing",
            "PreferredFirstName": "John", "PreferredLastName": "Smith",
            "FirstName": "John", "LastName": "Parker", "firstName": "PABLO", "lastName": "PINTO-DE'SILVA",
            "mail": "john.doe@contoso.com", "mailNickname": "john_doe72",
            "objectId": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
            "proxyAddresses": ["SMTP:a@x", "smtp:b@x", "smtp:a@x", ""],
            "appRoleAssignments": [
                {"id": "1", "value": "Admin", "displayName": "Admin"},
                {"id": "2", "value": "User", "displayName": "User"}
            ],
            "telephoneNumber": "", "mobile": "+91 8887779999",
            "country": "USA", "state": "CA", "department": "", "prefix": "3444",
            "statusFlag": "TRUE", "IsSoftDeleted": false, "accountEnabled": true,
            "StatusHireDate": "2012-03-16-07:00", "ContractEndDate": "2020-12-31-08:00",
            "extensionAttribute1": "20150123105347.1Z", "extensionAttribute5": "a,b,,c",
            "employeeId": 42568, "salary": 42568.75, "big": 18446744073709551615u64,
            "lastLogonTimestamp": "129699324000000000", "userAccountControl": "&H200",
            "a": "x", "b": "x", "x": null, "p": "\\d+", "empty": [],
            "manager": "cn=Joe,dc=contoso,dc=com"
        })
    })
}

/// A deterministic generator: the same seed gives the same values, so an
/// evaluation can be repeated and compared.
fn splitmix(mut s: u64) -> impl FnMut() -> u64 {
    move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn run(expr: &scimitar_expression::Expr, source: &Value) -> String {
    let mut rng = splitmix(7);
    let mut env = Env {
        // 2021-08-25T00:00:00Z
        now: OffsetDateTime::from_unix_timestamp(1_629_849_600).unwrap_or(OffsetDateTime::UNIX_EPOCH),
        rng: &mut rng,
        default_domain: Some("contoso.com"),
    };
    match eval(expr, source, &mut env) {
        Ok(out) => {
            let _ = out.log_json();
            format!("{:?} {}", out, out.value.to_json())
        }
        Err(e) => format!("error {e}"),
    }
}

/// Target `expression`: UTF-8 expression text → `parse`; when it parses,
/// `parse(to_string(expr)) == expr` (the length limit lifted: escapes can
/// lengthen the text), then `eval` against a user with every kind of value
/// and against an empty object: no panic, and the same result twice (the
/// evaluation is a pure function of expression, object and Env).
pub fn expression(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(expr) = parse(input) else {
        return;
    };
    let printed = expr.to_string();
    let relaxed = Limits {
        max_chars: usize::MAX,
        max_depth: MAX_DEPTH,
    };
    match parse_with(&printed, relaxed) {
        Ok(again) => assert!(
            again == expr,
            "round trip changed the expression\n input: {input:?}\n first: {expr:?}\n shown: {printed:?}\nsecond: {again:?}"
        ),
        Err(e) => panic!(
            "the Display form of a parsed expression does not parse\n input: {input:?}\n shown: {printed:?}\n error: {e}"
        ),
    }
    let empty = json!({});
    for source in [sample_user(), &empty] {
        let first = run(&expr, source);
        let second = run(&expr, source);
        assert!(
            first == second,
            "evaluation is not deterministic\n input: {input:?}\n first: {first}\nsecond: {second}"
        );
    }
}
