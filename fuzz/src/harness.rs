//! The fuzz harnesses: one function per target, from raw bytes to the
//! protocol functions, with the properties each target checks.
//!
//! Shared by the cargo-fuzz targets in `fuzz/fuzz_targets/` and by
//! `crates/scimitar-protocol/tests/fuzz_regressions.rs` (which includes this
//! file with `#[path]`), so a reproducer replays through exactly the code
//! the fuzzer ran. A failed property is a panic; errors returned by the
//! protocol code are fine (they become 4xx responses).

use std::sync::OnceLock;

use scimitar_protocol::eval::matches_resource;
use scimitar_protocol::filter::{Limits, parse_filter, parse_filter_with, parse_patch_path};
use scimitar_protocol::list::ListRequest;
use scimitar_protocol::patch::{NoMembers, apply_patch, parse_patch_request};
use scimitar_protocol::project::Projection;
use scimitar_protocol::resource::{check_required, normalize_input};
use scimitar_protocol::schema::{ResourceType, builtin_resource_types};
use serde_json::{Map, Value, json};

/// The server's default `max_patch_operations`.
pub const MAX_PATCH_OPERATIONS: usize = 1000;

/// Separates the resource from the PatchOp body in `patch_apply` inputs. A
/// NUL byte cannot occur in JSON text, so seeds stay readable.
pub const SEPARATOR: u8 = 0;

fn resource_types() -> &'static [ResourceType] {
    static TYPES: OnceLock<Vec<ResourceType>> = OnceLock::new();
    TYPES.get_or_init(builtin_resource_types)
}

/// A stored-looking User and Group, evaluated against every parsed filter.
fn sample_resources() -> &'static [Value; 2] {
    static SAMPLES: OnceLock<[Value; 2]> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        [
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": "2819c223-7f76-453a-919d-413861904646",
                "externalId": "alice",
                "userName": "alice@contoso.com",
                "active": true,
                "displayName": "Alice Smith",
                "name": {"givenName": "Alice", "familyName": "Smith"},
                "emails": [{"type": "work", "value": "alice@contoso.com", "primary": true}],
                "phoneNumbers": [{"type": "work", "value": "+1 555 0100"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                    "employeeNumber": "12345", "department": "R&D",
                    "manager": {"value": "m1"}
                },
                "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00Z",
                         "lastModified": "2024-01-02T00:00:00Z", "version": "W/\"1\""}
            }),
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
                "displayName": "Engineering",
                "members": [{"value": "2819c223-7f76-453a-919d-413861904646", "type": "User"}],
                "meta": {"resourceType": "Group"}
            }),
        ]
    })
}

/// Target `filter`: `parse_filter`, then the Display round trip
/// (parse → to_string → parse gives the same AST), then in-memory evaluation
/// against a User and a Group (errors allowed, panics not).
pub fn filter(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(ast) = parse_filter(input) else {
        return;
    };
    let printed = ast.to_string();
    // Display may be longer than the input (quotes, escapes): the length
    // limit is not what the round trip is about.
    let relaxed = Limits {
        max_length: usize::MAX,
        ..Limits::default()
    };
    match parse_filter_with(&printed, relaxed) {
        Ok(again) => assert!(
            again == ast,
            "round trip changed the filter\n input: {input:?}\n first: {ast:?}\n shown: {printed:?}\nsecond: {again:?}"
        ),
        Err(e) => panic!(
            "the Display form of a parsed filter does not parse\n input: {input:?}\n shown: {printed:?}\n error: {e:?}"
        ),
    }
    for (rt, resource) in resource_types().iter().zip(sample_resources()) {
        let _ = matches_resource(&ast, resource, rt);
    }
}

/// Target `patch_path`: `parse_patch_path`, and the Display round trip of
/// what it accepts.
pub fn patch_path(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = parse_patch_path(input) else {
        return;
    };
    let printed = path.to_string();
    match parse_patch_path(&printed) {
        Ok(again) => assert!(
            again == path,
            "round trip changed the path\n input: {input:?}\n first: {path:?}\n shown: {printed:?}\nsecond: {again:?}"
        ),
        Err(e) => panic!(
            "the Display form of a parsed path does not parse\n input: {input:?}\n shown: {printed:?}\n error: {e:?}"
        ),
    }
}

/// The resource used when the first part of a `patch_apply` input is not a
/// valid resource: Entra's create body (entra-provisioning.md §1.3).
fn fallback_resource(rt: &ResourceType) -> Value {
    if rt.is_group() {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
               "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
               "displayName": "Engineering"})
    } else {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "externalId": "alice", "userName": "alice@contoso.com", "active": true,
            "displayName": "Alice Smith", "title": "Engineer",
            "emails": [{"type": "work", "value": "alice@contoso.com", "primary": true}],
            "name": {"givenName": "Alice", "familyName": "Smith", "formatted": "Alice Smith"},
            "addresses": [{"type": "work", "streetAddress": "1 Main St", "locality": "Seattle",
                           "region": "WA", "postalCode": "98101", "country": "US", "primary": true}],
            "phoneNumbers": [{"type": "work", "value": "+1 555 0100"}, {"type": "mobile", "value": "+1 555 0101"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "12345", "department": "R&D"}
        })
    }
}

/// Target `patch_apply`: input is `resource JSON` NUL `PatchOp JSON`
/// (without a NUL, all of it is the PatchOp and the resource is Entra's
/// create body). For User and Group: `normalize_input` on the resource,
/// `parse_patch_request`, `apply_patch` with `NoMembers`. A failed PATCH
/// must leave the document untouched; a successful one must satisfy
/// `check_required`.
pub fn patch_apply(data: &[u8]) {
    let (resource, body) = match data.iter().position(|&b| b == SEPARATOR) {
        Some(i) => (Some(&data[..i]), &data[i + 1..]),
        None => (None, data),
    };
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let Ok(ops) = parse_patch_request(&body, MAX_PATCH_OPERATIONS) else {
        return;
    };
    let resource = resource.and_then(|r| serde_json::from_slice::<Value>(r).ok());
    for rt in resource_types() {
        let doc = resource
            .as_ref()
            .and_then(|r| normalize_input(rt, r).ok())
            .or_else(|| normalize_input(rt, &fallback_resource(rt)).ok());
        let Some(doc) = doc else {
            panic!("the fallback {} does not normalise", rt.name);
        };
        patch_doc(rt, doc.doc, &ops);
    }
}

fn patch_doc(rt: &ResourceType, doc: Map<String, Value>, ops: &[scimitar_protocol::patch::PatchOperation]) {
    let mut patched = doc.clone();
    match apply_patch(rt, &mut patched, ops, &mut NoMembers) {
        Ok(_member_ops) => {
            if let Err(e) = check_required(rt, &patched, None) {
                panic!(
                    "a successful PATCH left a {} without a required attribute\n   ops: {ops:?}\nbefore: {doc:?}\n after: {patched:?}\n error: {e:?}",
                    rt.name
                );
            }
            // What a PATCH stores must be what a PUT of it would store.
            if let Err(e) = renormalizes(rt, &patched) {
                panic!(
                    "a successful PATCH stored a {} that {e}\n   ops: {ops:?}\nbefore: {doc:?}",
                    rt.name
                );
            }
        }
        Err(_) => assert!(patched == doc, "a failed PATCH changed the document"),
    }
}

/// Target `request_body`: JSON bytes → `normalize_input` for User and Group
/// (a normalised document must satisfy `check_required`) and
/// `ListRequest::from_search_body` (then `attributes` and
/// `excludedAttributes` through `Projection::parse`); the same bytes as
/// `key=value&…` pairs → `ListRequest::from_query`.
pub fn request_body(data: &[u8]) {
    if let Ok(body) = serde_json::from_slice::<Value>(data) {
        for rt in resource_types() {
            if let Ok(n) = normalize_input(rt, &body) {
                if let Err(e) = check_required(rt, &n.doc, n.members.as_ref()) {
                    panic!(
                        "normalize_input accepted a {} without a required attribute: {e:?}",
                        rt.name
                    );
                }
                if let Err(e) = renormalizes(rt, &n.doc) {
                    panic!("normalize_input stored a {} that {e}", rt.name);
                }
            }
        }
        if let Ok(req) = ListRequest::from_search_body(&body, Limits::default()) {
            project(&req);
        }
    }
    let text = String::from_utf8_lossy(data);
    let pairs = text.split('&').map(|kv| kv.split_once('=').unwrap_or((kv, "")));
    if let Ok(req) = ListRequest::from_query(pairs, Limits::default()) {
        project(&req);
    }
}

/// A stored document, sent back as a PUT body, normalises to itself:
/// normalisation is idempotent and PATCH stores only normalised values.
fn renormalizes(rt: &ResourceType, doc: &Map<String, Value>) -> Result<(), String> {
    match normalize_input(rt, &Value::Object(doc.clone())) {
        Ok(again) if again.doc == *doc => Ok(()),
        Ok(again) => Err(format!(
            "normalises differently\nstored: {doc:?}\n again: {:?}",
            again.doc
        )),
        Err(e) => Err(format!("does not normalise\nstored: {doc:?}\n error: {e:?}")),
    }
}

fn project(req: &ListRequest) {
    for rt in resource_types() {
        let _ = Projection::parse(rt, req.attributes.as_deref(), req.excluded_attributes.as_deref());
    }
}
