//! Micro-benchmarks of the protocol hot paths: filter parsing, PATCH
//! parsing and application, input normalisation, output and projection.
//! `cargo bench -p scimitar-protocol`. Numbers go in docs/benchmarks.md;
//! no test asserts a time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use divan::{Bencher, black_box};
use scimitar_protocol::filter::{parse_filter, parse_patch_path};
use scimitar_protocol::output::{Derived, Meta, representation};
use scimitar_protocol::patch::{NoMembers, apply_patch, parse_patch_request};
use scimitar_protocol::project::Projection;
use scimitar_protocol::resource::normalize_input;
use scimitar_protocol::schema::{ResourceType, builtin_resource_types};
use serde_json::{Value, json};

fn main() {
    divan::main();
}

fn user_rt() -> ResourceType {
    builtin_resource_types()
        .into_iter()
        .find(ResourceType::is_user)
        .unwrap_or_else(|| panic!("no User resource type"))
}

/// The body Entra POSTs (docs/benchmarks.md, entra-provisioning.md §1.3).
fn entra_user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "alice", "userName": "alice@contoso.com", "active": true,
        "displayName": "Alice Smith", "title": "Engineer", "preferredLanguage": "en-US",
        "emails": [{"type": "work", "value": "alice@contoso.com", "primary": true}],
        "name": {"givenName": "Alice", "familyName": "Smith", "formatted": "Alice Smith"},
        "addresses": [{"type": "work", "streetAddress": "1 Main St", "locality": "Seattle",
                       "region": "WA", "postalCode": "98101", "country": "US", "formatted": "Bldg 4", "primary": true}],
        "phoneNumbers": [{"type": "work", "value": "+1 555 0100"}, {"type": "mobile", "value": "+1 555 0101"},
                         {"type": "fax", "value": "+1 555 0102"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "12345", "department": "R&D"},
        "meta": {"resourceType": "User"}, "roles": []
    })
}

#[divan::bench(args = [
    r#"userName eq "alice@contoso.com""#,
    r#"externalId eq "alice" and active eq true"#,
    r#"emails[type eq "work" and value co "@contoso.com"] or name.familyName sw "Sm""#,
])]
fn filter_parse(filter: &str) {
    black_box(parse_filter(black_box(filter)).ok());
}

#[divan::bench]
fn patch_path_parse() {
    black_box(parse_patch_path(black_box(r#"emails[type eq "work"].value"#)).ok());
}

#[divan::bench]
fn normalize_entra_user(bencher: Bencher) {
    let rt = user_rt();
    let body = entra_user();
    bencher.bench_local(|| black_box(normalize_input(&rt, black_box(&body)).ok()));
}

#[divan::bench(args = ["replace-title", "pathless-dotted", "filtered-path"])]
fn patch_apply(bencher: Bencher, kind: &str) {
    let rt = user_rt();
    let Ok(doc) = normalize_input(&rt, &entra_user()).map(|n| n.doc) else {
        panic!("the Entra user does not normalise")
    };
    let ops = match kind {
        "replace-title" => json!([{"op": "Replace", "path": "title", "value": "Manager"}]),
        "pathless-dotted" => json!([{"op": "Replace", "value": {"name.givenName": "Al", "active": "False"}}]),
        _ => json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "al@contoso.com"}]),
    };
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    bencher.bench_local(|| {
        let ops = parse_patch_request(black_box(&body), 1000).ok()?;
        let mut d = doc.clone();
        apply_patch(&rt, &mut d, &ops, &mut NoMembers).ok()?;
        Some(d)
    });
}

#[divan::bench(args = ["default", "excluded", "attributes"])]
fn output_serialise(bencher: Bencher, projection: &str) {
    let rt = user_rt();
    let Ok(doc) = normalize_input(&rt, &entra_user()).map(|n| n.doc) else {
        panic!("the Entra user does not normalise")
    };
    let proj = match projection {
        "default" => Projection::parse(&rt, None, None),
        "excluded" => Projection::parse(&rt, None, Some("addresses,phoneNumbers")),
        _ => Projection::parse(&rt, Some("userName,emails.value"), None),
    };
    let Ok(proj) = proj else { panic!("bad projection") };
    let meta = Meta {
        id: "2819c223-7f76-453a-919d-413861904646",
        created: "2026-01-01T00:00:00Z",
        last_modified: "2026-01-01T00:00:00Z",
        version: 7,
    };
    bencher.bench_local(|| {
        let mut out = representation(
            &rt,
            "http://127.0.0.1:8080/scim/default/v2",
            black_box(&doc),
            &meta,
            Derived {
                members: None,
                groups: None,
                manager_display: None,
            },
        );
        proj.apply(&rt, &mut out);
        serde_json::to_vec(&out).ok()
    });
}
