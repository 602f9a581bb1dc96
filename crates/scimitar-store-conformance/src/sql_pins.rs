//! The harness of the SQL pins in each backend's `sql.rs`: a table of
//! representative filters and sort keys with the SQL and parameters they
//! lower to, so that a change of the lowering shows first there. The SQL
//! text must depend only on a filter's shape (SQLite caches statements), and
//! hot queries must keep the shape their indexes serve.
//!
//! Included by `#[path]` into each backend's `sql.rs` tests (they reach the
//! private lowering; the SQLite crate has no dev-dependency on this one), so
//! it is not a module of this crate.
//!
//! `PINS` layout: a case's header on one line (`<User|Group|Custom>
//! <filter|sort|point> <filter text, or sortBy and ascending|descending>`;
//! `\0` stands for NUL), then what the backend gives, indented four spaces.

use std::sync::Arc;

use scimitar_protocol::ScimError;
use scimitar_protocol::filter::{Filter, parse_filter};
use scimitar_protocol::list::SortOrder;
use scimitar_protocol::schema::{ResourceType, builtin_resource_types};
use scimitar_store::Kind;

/// A custom extension of `Custom`, with every attribute type.
const CUSTOM: &str = "urn:example:custom:2.0:User";

/// What a case asks of the backend.
pub enum Ask {
    Filter(Filter),
    Sort(String, SortOrder),
    /// Whether the filter is an indexed point lookup.
    Point(Filter),
}

/// A case's resource type and question, from its header.
fn case(header: &str) -> (Kind, Arc<ResourceType>, Ask) {
    let mut parts = header.splitn(3, ' ');
    let (rt_name, what, text) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default().replace("\\0", "\0"),
    );
    let filter = || parse_filter(&text).unwrap_or_else(|e| panic!("{header}: {}", e.detail));
    let ask = match what {
        "filter" => Ask::Filter(filter()),
        "point" => Ask::Point(filter()),
        "sort" => {
            let (by, order) = text.rsplit_once(' ').expect("sortBy and order");
            let order = if order == "descending" {
                SortOrder::Descending
            } else {
                SortOrder::Ascending
            };
            Ask::Sort(by.to_string(), order)
        }
        other => panic!("unknown case kind '{other}'"),
    };
    let (kind, rt) = resource_type(rt_name);
    (kind, rt, ask)
}

fn resource_type(name: &str) -> (Kind, Arc<ResourceType>) {
    let kind = if name == "Group" { Kind::Group } else { Kind::User };
    let mut rt = builtin_resource_types()
        .into_iter()
        .find(|r| r.name == kind.as_str())
        .expect("builtin resource type");
    if name == "Custom" {
        let schema = serde_json::from_value(serde_json::json!({"id": CUSTOM, "name": "Custom", "attributes": [
            {"name": "level", "type": "integer", "multiValued": false},
            {"name": "score", "type": "decimal", "multiValued": false},
            {"name": "hired", "type": "dateTime", "multiValued": false},
            {"name": "vip", "type": "boolean", "multiValued": false},
            {"name": "code", "type": "string", "multiValued": false, "caseExact": true},
            {"name": "tags", "type": "string", "multiValued": true},
            {"name": "value", "type": "string", "multiValued": false},
            {"name": "badge", "type": "complex", "multiValued": false, "subAttributes": [
                {"name": "value", "type": "string", "multiValued": false},
                {"name": "rank", "type": "integer", "multiValued": false}]},
            {"name": "awards", "type": "complex", "multiValued": true, "subAttributes": [
                {"name": "title", "type": "string", "multiValued": false},
                {"name": "rank", "type": "integer", "multiValued": false},
                {"name": "primary", "type": "boolean", "multiValued": false}]}
        ]}))
        .expect("custom schema");
        rt.extensions.push((schema, false));
    }
    (kind, Arc::new(rt))
}

/// How a refused case reads in `PINS`.
pub fn error(e: &ScimError) -> String {
    format!("error {:?}: {}", e.scim_type, e.detail)
}

/// Renders every case of `pins` (as the lines that follow its header) and
/// compares; on a mismatch prints every case as it is now, in the layout of
/// `pins`, and fails.
pub fn check(pins: &str, render: impl Fn(Kind, Arc<ResourceType>, Ask) -> String) {
    let mut now = String::new();
    let mut differ = Vec::new();
    let mut cases: Vec<(&str, String)> = Vec::new();
    for line in pins.lines().filter(|l| !l.trim().is_empty()) {
        match (line.strip_prefix("    "), cases.last_mut()) {
            (Some(rest), Some((_, expected))) => {
                expected.push_str(rest);
                expected.push('\n');
            }
            _ => cases.push((line, String::new())),
        }
    }
    for (header, expected) in cases {
        let (kind, rt, ask) = case(header);
        let got = render(kind, rt, ask);
        now.push_str(header);
        now.push('\n');
        for line in got.lines() {
            now.push_str("    ");
            now.push_str(line);
            now.push('\n');
        }
        if got.trim_end() != expected.trim_end() {
            differ.push(header);
        }
    }
    if !differ.is_empty() {
        eprintln!("{now}");
        panic!("{} cases differ from PINS, first: {}", differ.len(), differ[0]);
    }
}
