//! The values of extension attributes that must be unique (RFC 7643 §2.2
//! `uniqueness: server`; `global` is kept unique per tenant too, the
//! widest scope a tenant's data has), as the store keeps them in a table
//! with a unique index: one row per value, claimed in the transaction of
//! the write that sets it, so two concurrent writers of one value cannot
//! both win, on any number of nodes.
//!
//! A value is compared as the attribute says: strings in NFC, lower-cased
//! unless `caseExact`; other types as their JSON text (dateTimes are
//! already in their one canonical form). Core attributes are not here:
//! `userName` and Group `displayName` have their own indexed columns.

use serde_json::{Map, Value};

use crate::error::{Result, ScimError};
use crate::schema::{Attribute, ResourceType, Uniqueness};

/// The longest value of a unique attribute, in bytes once folded (an index
/// entry has to fit in a database page).
pub const MAX_UNIQUE_VALUE_BYTES: usize = 1024;

/// One value that no other resource of the tenant and type may have.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UniqueValue {
    /// `{extension URN}:{attribute}` or `…:{attribute}.{sub-attribute}`,
    /// canonical names.
    pub attribute: String,
    /// The value as compared (see the module documentation).
    pub value: String,
}

/// What a change does to a resource's unique values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UniqueChange {
    /// Values the resource takes: the write fails if another resource has one.
    pub add: Vec<UniqueValue>,
    /// Values the resource gives up.
    pub remove: Vec<UniqueValue>,
}

impl UniqueChange {
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

fn is_unique(a: &Attribute) -> bool {
    a.uniqueness != Uniqueness::None
}

/// Whether the resource type has any attribute whose values are kept unique.
pub fn has_unique_attributes(rt: &ResourceType) -> bool {
    rt.extensions.iter().any(|(ext, _)| {
        ext.attributes
            .iter()
            .any(|a| is_unique(a) || a.sub_attributes.iter().any(is_unique))
    })
}

/// The value as compared.
fn fold(attr: &Attribute, v: &Value) -> String {
    match v {
        Value::String(s) => {
            let s = crate::resource::nfc(s);
            if attr.case_insensitive() {
                s.to_lowercase()
            } else {
                s.into_owned()
            }
        }
        other => other.to_string(),
    }
}

/// The unique values of a document. `strict`: a value too long to keep is
/// refused (a write); otherwise it is left out (a document stored before).
fn collect(rt: &ResourceType, doc: &Map<String, Value>, strict: bool) -> Result<Vec<UniqueValue>> {
    let mut out = Vec::new();
    let mut push = |attribute: String, owner: &Attribute, v: &Value| -> Result<()> {
        if v.is_null() {
            return Ok(());
        }
        let value = fold(owner, v);
        if value.len() > MAX_UNIQUE_VALUE_BYTES {
            if strict {
                return Err(ScimError::invalid_value(format!(
                    "'{attribute}' must be unique, so its values are at most {MAX_UNIQUE_VALUE_BYTES} bytes"
                )));
            }
            return Ok(());
        }
        out.push(UniqueValue { attribute, value });
        Ok(())
    };
    for (ext, _) in &rt.extensions {
        let Some(Value::Object(values)) = doc.get(&ext.id) else {
            continue;
        };
        for attr in &ext.attributes {
            let Some(v) = values.get(&attr.name) else {
                continue;
            };
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                one => vec![one],
            };
            if attr.is_complex() {
                // A unique complex attribute is unique by its `value`.
                for sub in attr
                    .sub_attributes
                    .iter()
                    .filter(|s| is_unique(s) || (is_unique(attr) && s.name == "value"))
                {
                    for it in &items {
                        if let Some(sv) = it.get(&sub.name) {
                            push(format!("{}:{}.{}", ext.id, attr.name, sub.name), sub, sv)?;
                        }
                    }
                }
            } else if is_unique(attr) {
                for it in items {
                    push(format!("{}:{}", ext.id, attr.name), attr, it)?;
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The unique values of a document about to be written; refuses a value
/// too long to keep.
pub fn unique_values(rt: &ResourceType, doc: &Map<String, Value>) -> Result<Vec<UniqueValue>> {
    collect(rt, doc, true)
}

/// The unique values of a stored document, as far as they can be kept.
pub fn stored_unique_values(rt: &ResourceType, doc: &Map<String, Value>) -> Vec<UniqueValue> {
    collect(rt, doc, false).unwrap_or_default()
}

/// The values a change from `old` to `new` takes and gives up. Values the
/// document already had are not taken again, so a resource that shares a
/// value with another since before the attribute was unique can still be
/// written, as long as it does not take a value someone else has.
pub fn unique_change(rt: &ResourceType, old: &Map<String, Value>, new: &Map<String, Value>) -> Result<UniqueChange> {
    let before = stored_unique_values(rt, old);
    let after = unique_values(rt, new)?;
    Ok(UniqueChange {
        add: after.iter().filter(|v| !before.contains(v)).cloned().collect(),
        remove: before.into_iter().filter(|v| !after.contains(v)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::schema::{Schema, builtin_resource_types};

    const EXT: &str = "urn:example:ids:2.0:User";

    fn rt() -> ResourceType {
        let mut user = builtin_resource_types()
            .into_iter()
            .find(ResourceType::is_user)
            .unwrap();
        let schema: Schema = serde_json::from_value(json!({"id": EXT, "name": "Ids", "attributes": [
            {"name": "badge", "type": "string", "multiValued": false, "uniqueness": "server"},
            {"name": "code", "type": "string", "multiValued": false, "uniqueness": "global", "caseExact": true},
            {"name": "seat", "type": "integer", "multiValued": false, "uniqueness": "server"},
            {"name": "aliases", "type": "string", "multiValued": true, "uniqueness": "server"},
            {"name": "note", "type": "string", "multiValued": false},
            {"name": "cards", "type": "complex", "multiValued": true, "subAttributes": [
                {"name": "number", "type": "string", "multiValued": false, "uniqueness": "server"},
                {"name": "label", "type": "string", "multiValued": false}]},
            {"name": "desk", "type": "complex", "multiValued": false, "uniqueness": "server", "subAttributes": [
                {"name": "value", "type": "string", "multiValued": false},
                {"name": "floor", "type": "integer", "multiValued": false}]}
        ]}))
        .unwrap();
        user.extensions.push((schema, false));
        user
    }

    fn uv(attribute: &str, value: &str) -> UniqueValue {
        UniqueValue {
            attribute: format!("{EXT}:{attribute}"),
            value: value.into(),
        }
    }

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn values_are_folded_as_the_attribute_compares() {
        let rt = rt();
        assert!(has_unique_attributes(&rt));
        let d = doc(json!({"userName": "a", EXT: {
            "badge": "Cafe\u{301}-7", "code": "AbC", "seat": 12, "aliases": ["X", "x", "y"], "note": "free",
            "cards": [{"number": "N1", "label": "l"}, {"label": "none"}],
            "desk": {"value": "D-1", "floor": 3}
        }}));
        let mut want = vec![
            uv("badge", "caf\u{e9}-7"),
            uv("code", "AbC"),
            uv("seat", "12"),
            uv("aliases", "x"),
            uv("aliases", "y"),
            uv("cards.number", "n1"),
            uv("desk.value", "d-1"),
        ];
        want.sort();
        assert_eq!(unique_values(&rt, &d).unwrap(), want);
        let builtin = builtin_resource_types();
        assert!(builtin.iter().all(|rt| !has_unique_attributes(rt)));
    }

    #[test]
    fn a_change_takes_only_new_values() {
        let rt = rt();
        let old = doc(json!({EXT: {"badge": "b1", "aliases": ["x", "y"]}}));
        let new = doc(json!({EXT: {"badge": "B1", "aliases": ["y", "z"], "seat": 4}}));
        let c = unique_change(&rt, &old, &new).unwrap();
        assert_eq!(c.add, vec![uv("aliases", "z"), uv("seat", "4")]);
        assert_eq!(c.remove, vec![uv("aliases", "x")]);
        assert!(unique_change(&rt, &new, &new).unwrap().is_empty());
    }

    #[test]
    fn overlong_values_are_refused_on_write_and_skipped_when_stored() {
        let rt = rt();
        let long = doc(json!({EXT: {"badge": "x".repeat(MAX_UNIQUE_VALUE_BYTES + 1)}}));
        let e = unique_values(&rt, &long).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(stored_unique_values(&rt, &long).is_empty());
    }
}
