//! What a write changed, attribute by attribute, for the provisioning
//! activity log. Secrets are redacted and large values shortened.

use serde_json::{Map, Value, json};

use crate::schema::{Mutability, ResourceType, Returned};

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
                    let secret = ext.attribute(k).is_some_and(is_secret);
                    out.push(entry(&format!("{}:{k}", ext.id), io, inn, secret));
                }
            }
            continue;
        }
        let secret = rt.resolve(None, key, None).is_some_and(|r| is_secret(r.attr));
        out.push(entry(key, o, n, secret));
    }
    out
}

fn is_secret(a: &crate::schema::Attribute) -> bool {
    a.returned == Returned::Never || a.mutability == Mutability::WriteOnly
}

fn entry(attribute: &str, old: Option<&Value>, new: Option<&Value>, secret: bool) -> Value {
    let show = |v: Option<&Value>| -> Value {
        match v {
            None => Value::Null,
            Some(_) if secret => Value::String("[redacted]".into()),
            Some(v) => shorten(v),
        }
    };
    json!({"attribute": attribute, "old": show(old), "new": show(new)})
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
