//! What to change in the target: the mapped attributes whose target value
//! differs from the image. Only mapped attributes are compared; text is
//! compared case-insensitively unless the attribute is `caseExact`; a null
//! image value never clears a target value.

use scimitar_protocol::eval::matches_element;
use serde_json::Value;

use crate::dialect::{Change, Op};
use crate::mapping::{TargetPath, resource_type};
use crate::model::Kind;

/// A member of a JSON object by name, exactly or ignoring case.
fn get_ci<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    let o = v.as_object()?;
    o.get(key)
        .or_else(|| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// The value the target holds at `path` (`None` when it holds none).
pub fn current(kind: Kind, resource: &Value, path: &TargetPath) -> Option<Value> {
    let p = &path.path;
    let container = match &p.urn {
        Some(u) => get_ci(resource, u)?,
        None => resource,
    };
    let attr = get_ci(container, &p.name)?;
    let v = match &p.filter {
        Some(filter) => {
            let rt = resource_type(kind)?;
            let def = rt.resolve(p.urn.as_deref(), &p.name, None)?.attr;
            let items = attr.as_array()?;
            let elem = items
                .iter()
                .find(|it| matches_element(filter, it, def).unwrap_or(false))?;
            get_ci(elem, p.sub.as_deref().unwrap_or("value"))?
        }
        None => match &p.sub {
            Some(sub) => get_ci(attr, sub)?,
            None if path.is_manager() => get_ci(attr, "value").unwrap_or(attr),
            None => attr,
        },
    };
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::Array(a) if a.is_empty() => None,
        other => Some(other.clone()),
    }
}

/// Whether the target has an element matching `path`'s value filter
/// (`emails[type eq "work"]`); true for paths without one.
fn has_element(kind: Kind, resource: &Value, path: &TargetPath) -> bool {
    let p = &path.path;
    let Some(filter) = &p.filter else { return true };
    let container = match &p.urn {
        Some(u) => get_ci(resource, u),
        None => Some(resource),
    };
    let Some(items) = container.and_then(|c| get_ci(c, &p.name)).and_then(Value::as_array) else {
        return false;
    };
    let Some(def) = resource_type(kind)
        .and_then(|rt| rt.resolve(p.urn.as_deref(), &p.name, None))
        .map(|r| r.attr)
    else {
        return false;
    };
    items.iter().any(|it| matches_element(filter, it, def).unwrap_or(false))
}

/// Whether the target's value equals the desired one.
pub fn same(path: &TargetPath, current: &Value, desired: &Value) -> bool {
    match (current, desired) {
        (Value::String(a), Value::String(b)) => {
            if path.case_exact {
                a == b
            } else {
                a.to_lowercase() == b.to_lowercase()
            }
        }
        (Value::Bool(a), Value::String(b)) | (Value::String(b), Value::Bool(a)) => {
            b.eq_ignore_ascii_case(if *a { "true" } else { "false" })
        }
        (Value::Number(a), Value::String(b)) | (Value::String(b), Value::Number(a)) => a.to_string() == *b,
        (Value::Array(a), Value::Array(b)) => {
            // Multi-valued attributes compare as sets.
            a.len() == b.len()
                && a.iter().all(|x| b.iter().any(|y| same(path, x, y)))
                && b.iter().all(|y| a.iter().any(|x| same(path, x, y)))
        }
        (a, b) => a == b,
    }
}

/// The changes that bring `resource` to the desired values.
pub fn changes(kind: Kind, resource: &Value, desired: &[(TargetPath, Value)]) -> Vec<Change> {
    let mut out = Vec::new();
    for (path, value) in desired {
        if value.is_null() {
            continue;
        }
        match current(kind, resource, path) {
            None => out.push(Change {
                target: path.clone(),
                op: if has_element(kind, resource, path) {
                    Op::Add
                } else {
                    Op::AddElement
                },
                value: value.clone(),
            }),
            Some(cur) if !same(path, &cur, value) => out.push(Change {
                target: path.clone(),
                op: Op::Replace,
                value: value.clone(),
            }),
            Some(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> TargetPath {
        TargetPath::parse(Kind::User, s).unwrap()
    }

    #[test]
    fn only_differences_become_changes() {
        let target = json!({
            "userName": "Alice@Contoso.com",
            "active": true,
            "title": "Engineer",
            "emails": [{"type": "work", "value": "alice@contoso.com", "primary": true}],
            "name": {"givenName": "Alice"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "manager": {"value": "m1"}}
        });
        let desired = vec![
            (p("userName"), json!("alice@contoso.com")), // case-insensitive: same
            (p("active"), json!(true)),                  // same
            (p("title"), json!("Senior Engineer")),      // differs: Replace
            (p("emails[type eq \"work\"].value"), json!("ALICE@contoso.com")), // same
            (p("name.familyName"), json!("Smith")),      // absent: Add
            (
                p("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"),
                json!("Sales"),
            ),
            (
                p("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"),
                json!("m1"),
            ), // same
            (p("phoneNumbers[type eq \"work\"].value"), Value::Null), // null: never sent
        ];
        let c = changes(Kind::User, &target, &desired);
        let got: Vec<(String, Op)> = c.iter().map(|c| (c.target.key(), c.op.clone())).collect();
        assert_eq!(
            got,
            [
                ("title".to_string(), Op::Replace),
                ("name.familyName".to_string(), Op::Add),
                (
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department".to_string(),
                    Op::Replace
                ),
            ]
        );
    }

    #[test]
    fn case_exact_attributes_compare_exactly() {
        let target = json!({"id": "x", "externalId": "ABC"});
        assert!(changes(Kind::User, &target, &[(p("externalId"), json!("abc"))]).len() == 1);
        assert!(changes(Kind::User, &target, &[(p("externalId"), json!("ABC"))]).is_empty());
    }
}
