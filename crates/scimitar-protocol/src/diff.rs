//! What a write changed, attribute by attribute, for the provisioning
//! activity log. Secrets are redacted and large values shortened.

use serde_json::{Map, Value, json};

use crate::schema::{Attribute, Mutability, ResourceType, Returned};

const MAX_VALUE_CHARS: usize = 200;

/// `[{"attribute", "old", "new"}]` for every top-level (and extension)
/// attribute whose value differs between `old` and `new`.
pub fn changes(rt: &ResourceType, old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (o, n) = (old.get(key), new.get(key));
        if o == n {
            continue;
        }
        if let Some(ext) = rt.extension(key) {
            let empty = Map::new();
            let om = o.and_then(Value::as_object).unwrap_or(&empty);
            let nm = n.and_then(Value::as_object).unwrap_or(&empty);
            let mut inner: Vec<&String> = om.keys().chain(nm.keys()).collect();
            inner.sort();
            inner.dedup();
            for k in inner {
                let (io, inn) = (om.get(k), nm.get(k));
                if io != inn {
                    out.push(entry(&format!("{}:{k}", ext.id), io, inn, ext.attribute(k)));
                }
            }
            continue;
        }
        out.push(entry(key, o, n, rt.resolve(None, key, None).map(|r| r.attr)));
    }
    out
}

fn is_secret(a: &Attribute) -> bool {
    a.returned == Returned::Never || a.mutability == Mutability::WriteOnly
}

fn entry(attribute: &str, old: Option<&Value>, new: Option<&Value>, attr: Option<&Attribute>) -> Value {
    let show = |v: Option<&Value>| -> Value {
        match (v, attr) {
            (None, _) => Value::Null,
            (Some(_), Some(a)) if is_secret(a) => Value::String(REDACTED.into()),
            (Some(v), Some(a)) => shorten(&redact_subs(a, v)),
            (Some(v), None) => shorten(v),
        }
    };
    json!({"attribute": attribute, "old": show(old), "new": show(new)})
}

const REDACTED: &str = "[redacted]";

/// A complex value with its secret sub-attributes redacted.
fn redact_subs(attr: &Attribute, v: &Value) -> Value {
    if !attr.sub_attributes.iter().any(is_secret) {
        return v.clone();
    }
    let one = |o: &Map<String, Value>| -> Value {
        Value::Object(
            o.iter()
                .map(|(k, v)| match attr.sub(k) {
                    Some(s) if is_secret(s) => (k.clone(), Value::String(REDACTED.into())),
                    _ => (k.clone(), v.clone()),
                })
                .collect(),
        )
    };
    match v {
        Value::Object(o) => one(o),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|it| it.as_object().map_or_else(|| it.clone(), one))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Values are shown as they are unless long: then as shortened JSON text.
pub fn shorten(v: &Value) -> Value {
    let text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() <= MAX_VALUE_CHARS {
        return v.clone();
    }
    let cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
    Value::String(format!("{cut}… ({} characters)", text.chars().count()))
}
