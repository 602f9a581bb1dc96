//! Validation and normalisation of resource representations received from
//! clients (POST, PUT, PATCH values), and assembly of the representation
//! returned to them.
//!
//! The stored document ("doc") holds the client-writable attributes under
//! their canonical names, extension attributes inside an object keyed by
//! the extension URN. It never holds `id`, `meta`, `schemas`, Group
//! `members` (kept in their own table) or User `groups` (derived).
//!
//! Tolerance, as real identity providers need it: booleans as strings
//! (`"True"`), single values where arrays are expected and vice versa,
//! `manager` as a bare id, nulls and empty strings meaning "no value",
//! unknown URIs in `schemas`, `meta` and other read-only attributes in
//! request bodies (ignored), Entra's misspelt enterprise URN.

use serde_json::{Map, Value};

use crate::error::{Result, ScimError};
use crate::filter::split_attr_path;
use crate::schema::{AttrType, Attribute, Mutability, ResourceType, canonical_urn_alias};

/// A member reference in a Group, as given by a client.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberRef {
    pub value: String,
    /// `User` or `Group` if the client said so; resolved by the store.
    pub kind: Option<String>,
    /// A display name the client sent, echoed back as sent.
    pub display: Option<String>,
}

/// A validated create or replace request.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub doc: Map<String, Value>,
    /// Group members, if the body had a `members` attribute.
    pub members: Option<Vec<MemberRef>>,
}

/// Validates and normalises a POST or PUT body.
pub fn normalize_input(rt: &ResourceType, body: &Value) -> Result<Normalized> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the request body must be a JSON object"))?;
    let mut doc = Map::new();
    let mut members = None;
    for (key, value) in obj {
        if key.eq_ignore_ascii_case("schemas") {
            check_schemas_value(value)?;
            continue;
        }
        // An extension object keyed by its URN.
        if key.to_ascii_lowercase().starts_with("urn:") {
            if let Some(ext) = rt.extension(key) {
                if value.is_null() {
                    continue;
                }
                let inner = value.as_object().ok_or_else(|| {
                    ScimError::invalid_value(format!("'{key}' must be an object of extension attributes"))
                })?;
                for (k, v) in inner {
                    let Some(attr) = ext.attribute(k) else {
                        return Err(ScimError::invalid_value(format!(
                            "unknown attribute '{k}' in extension '{}'",
                            ext.id
                        )));
                    };
                    if attr.mutability == Mutability::ReadOnly {
                        continue; // RFC 7644 §3.3, §3.5.1: ignored, as core ones are.
                    }
                    set_input_attr(&mut doc, Some(ext.id.as_str()), attr, v)?;
                }
                continue;
            }
            if rt.schema.id.eq_ignore_ascii_case(canonical_urn_alias(key)) {
                // Core attributes nested under the core URN: accept them.
                if let Some(inner) = value.as_object() {
                    for (k, v) in inner {
                        input_core_key(rt, &mut doc, &mut members, k, v)?;
                    }
                    continue;
                }
            }
            // A URN-qualified attribute name (`urn:…:User:department`).
            if let Some((Some(urn), name, None)) = split_attr_path(key)
                && let Some(r) = rt.resolve(Some(&urn), &name, None)
            {
                if r.attr.mutability == Mutability::ReadOnly {
                    continue;
                }
                set_input_attr(&mut doc, if r.extension { r.schema } else { None }, r.attr, value)?;
                continue;
            }
            return Err(unknown_urn(rt, key));
        }
        input_core_key(rt, &mut doc, &mut members, key, value)?;
    }
    nfc_names(rt, &mut doc);
    check_required(rt, &doc, members.as_ref())?;
    Ok(Normalized { doc, members })
}

/// `s` in Unicode Normalization Form C.
pub fn nfc(s: &str) -> std::borrow::Cow<'_, str> {
    use unicode_normalization::UnicodeNormalization;
    if unicode_normalization::is_nfc(s) {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(s.nfc().collect())
    }
}

/// Brings the names that must be unique (a User's `userName`, a Group's
/// `displayName`) to NFC, so that `café` typed precomposed and decomposed
/// is one name for the uniqueness check and for lookups.
pub(crate) fn nfc_names(rt: &ResourceType, doc: &mut Map<String, Value>) {
    let key = if rt.is_user() {
        "userName"
    } else if rt.is_group() {
        "displayName"
    } else {
        return;
    };
    if let Some(Value::String(s)) = doc.get_mut(key)
        && let std::borrow::Cow::Owned(n) = nfc(s)
    {
        *s = n;
    }
}

/// Refuses a key at the top of a POST or PUT body that `normalize_input`
/// would refuse whatever its value: the server checks keys before it
/// parses a body, so that an unknown attribute costs no memory.
pub fn check_key(rt: &ResourceType, key: &str) -> Result<()> {
    if key.eq_ignore_ascii_case("schemas") {
        return Ok(());
    }
    if key.to_ascii_lowercase().starts_with("urn:") {
        let known = rt.extension(key).is_some()
            || rt.schema.id.eq_ignore_ascii_case(canonical_urn_alias(key))
            || matches!(split_attr_path(key), Some((Some(urn), name, None)) if rt.resolve(Some(&urn), &name, None).is_some());
        return if known { Ok(()) } else { Err(unknown_urn(rt, key)) };
    }
    // An extension attribute without its URN is refused only with a value
    // (Entra sends `"manager": null`), so it passes here.
    match rt.resolve(None, key, None) {
        Some(_) => Ok(()),
        None => Err(unknown_attribute(rt, key)),
    }
}

fn unknown_urn(rt: &ResourceType, key: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "unknown schema extension or attribute '{key}' for resource type {}; register the extension schema first",
        rt.name
    ))
}

fn unknown_attribute(rt: &ResourceType, key: &str) -> ScimError {
    ScimError::invalid_value(format!("unknown attribute '{key}' for resource type {}", rt.name))
}

fn input_core_key(
    rt: &ResourceType,
    doc: &mut Map<String, Value>,
    members: &mut Option<Vec<MemberRef>>,
    key: &str,
    value: &Value,
) -> Result<()> {
    let Some(r) = rt.resolve(None, key, None) else {
        return Err(unknown_attribute(rt, key));
    };
    if value.is_null() {
        return Ok(()); // nulls mean "no value" (Entra's legacy `"manager": null`)
    }
    if r.extension {
        // Unqualified extension attribute names are not accepted at the top
        // level of a body: they would be ambiguous with core attributes.
        return Err(unknown_attribute(rt, key));
    }
    if r.attr.mutability == Mutability::ReadOnly {
        return Ok(()); // RFC 7644 §3.3: read-only attributes are ignored.
    }
    if rt.is_group() && r.attr.name == "members" {
        *members = Some(parse_members(value)?);
        return Ok(());
    }
    set_input_attr(doc, None, r.attr, value)
}

fn check_schemas_value(value: &Value) -> Result<()> {
    match value {
        Value::Array(items) if items.iter().all(Value::is_string) => Ok(()),
        Value::Null => Ok(()),
        _ => Err(ScimError::invalid_syntax("'schemas' must be an array of schema URIs")),
    }
}

/// Stores `value` for `attr` in the doc (under `ext` if given), or removes
/// the attribute when the value is empty.
pub(crate) fn set_input_attr(
    doc: &mut Map<String, Value>,
    ext: Option<&str>,
    attr: &Attribute,
    value: &Value,
) -> Result<()> {
    let coerced = coerce(attr, value)?;
    let container = match ext {
        None => &mut *doc,
        Some(u) => {
            let entry = doc.entry(u.to_string()).or_insert_with(|| Value::Object(Map::new()));
            match entry.as_object_mut() {
                Some(m) => m,
                None => return Err(ScimError::internal("extension container is not an object")),
            }
        }
    };
    match coerced {
        Some(v) => {
            container.insert(attr.name.clone(), v);
        }
        None => {
            container.remove(&attr.name);
        }
    }
    if let Some(u) = ext
        && doc.get(u).and_then(Value::as_object).is_some_and(Map::is_empty)
    {
        doc.remove(u);
    }
    Ok(())
}

/// Parses Group `members` from a body or PATCH value.
pub fn parse_members(value: &Value) -> Result<Vec<MemberRef>> {
    let items: Vec<&Value> = match value {
        Value::Null => return Ok(vec![]),
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let (value, kind, display) = match it {
            Value::Null => continue,
            Value::String(s) => (s.clone(), None, None),
            Value::Object(o) => {
                let v = crate::eval::get_ci(it, "value");
                let v = match v {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    None | Some(Value::Null) => {
                        return Err(ScimError::invalid_value(
                            "every member needs a 'value' (the member's id)",
                        ));
                    }
                    Some(_) => {
                        return Err(ScimError::invalid_value("a member 'value' must be a string id"));
                    }
                };
                let kind = o
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("type"))
                    .and_then(|(_, t)| t.as_str())
                    .map(str::to_string);
                let display = o
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("display"))
                    .and_then(|(_, t)| t.as_str())
                    .filter(|s| !s.is_empty())
                    .map(str::to_string);
                (v, kind, display)
            }
            _ => {
                return Err(ScimError::invalid_value("a member must be an object with a 'value'"));
            }
        };
        if value.is_empty() {
            return Err(ScimError::invalid_value("a member 'value' must not be empty"));
        }
        if let Some(k) = &kind
            && !k.eq_ignore_ascii_case("User")
            && !k.eq_ignore_ascii_case("Group")
        {
            return Err(ScimError::invalid_value(format!(
                "member type '{k}' is not 'User' or 'Group'"
            )));
        }
        out.push(MemberRef { value, kind, display });
    }
    Ok(out)
}

/// Converts a client value to the stored form for `attr`, or `None` when it
/// means "no value" (null, "", [], {}).
pub(crate) fn coerce(attr: &Attribute, value: &Value) -> Result<Option<Value>> {
    if attr.multi_valued {
        let items: Vec<&Value> = match value {
            Value::Null => return Ok(None),
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        let mut out: Vec<Value> = Vec::with_capacity(items.len());
        for it in items {
            if let Some(v) = coerce_single(attr, it)?
                && !out.contains(&v)
            {
                out.push(v);
            }
        }
        if out.is_empty() {
            return Ok(None);
        }
        normalize_primary(&mut out, None);
        return Ok(Some(Value::Array(out)));
    }
    // A single-valued attribute sent as a one-element array (Entra's
    // legacy `manager: [{value, $ref}]`).
    if let Value::Array(a) = value {
        return match a.as_slice() {
            [] => Ok(None),
            [one] => coerce_single(attr, one),
            _ => Err(ScimError::invalid_value(format!(
                "'{}' is single-valued but {} values were given",
                attr.name,
                a.len()
            ))),
        };
    }
    coerce_single(attr, value)
}

fn coerce_single(attr: &Attribute, value: &Value) -> Result<Option<Value>> {
    if value.is_null() {
        return Ok(None);
    }
    if attr.kind == AttrType::Complex {
        let obj = match value {
            Value::Object(o) => o.clone(),
            // A bare value for a complex attribute is its "value" sub-attribute
            // (Entra sends `manager: "<id>"`, some clients `emails: ["a@b"]`).
            Value::String(_) | Value::Number(_) | Value::Bool(_) if attr.sub("value").is_some() => {
                let mut m = Map::new();
                m.insert("value".into(), value.clone());
                m
            }
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "'{}' must be a complex value (an object)",
                    attr.name
                )));
            }
        };
        let mut out = Map::new();
        for (k, v) in &obj {
            let Some(sub) = attr.sub(k) else {
                return Err(ScimError::invalid_value(format!(
                    "unknown sub-attribute '{k}' of '{}'",
                    attr.name
                )));
            };
            if sub.mutability == Mutability::ReadOnly {
                continue;
            }
            if let Some(cv) = coerce_single(sub, v)? {
                out.insert(sub.name.clone(), cv);
            }
        }
        unwrap_roles_in_place(attr, &mut out);
        if attr.name == "manager" {
            // Only the id is stored; `$ref` and `displayName` are derived.
            out.retain(|k, _| k == "value");
        }
        if out.is_empty() || (attr.sub("value").is_some() && out.len() == 1 && out.contains_key("primary")) {
            return Ok(None);
        }
        for sub in &attr.sub_attributes {
            if sub.required && !out.contains_key(&sub.name) {
                return Err(ScimError::invalid_value(format!(
                    "'{}.{}' is required",
                    attr.name, sub.name
                )));
            }
        }
        return Ok(Some(Value::Object(out)));
    }
    let bad = |what: &str| ScimError::invalid_value(format!("'{}' must be {what}", attr.name));
    Ok(match attr.kind {
        AttrType::String | AttrType::Reference | AttrType::Binary => match value {
            Value::String(s) if s.is_empty() => None,
            // No identity data has NUL characters, and PostgreSQL cannot
            // store them: refuse them the same way on every backend.
            Value::String(s) if s.contains('\0') => {
                return Err(ScimError::invalid_value(format!(
                    "'{}' must not contain NUL characters",
                    attr.name
                )));
            }
            Value::String(s) => Some(Value::String(s.clone())),
            // Lenient: integers and booleans sent for string attributes.
            // An integer within 64 bits keeps its digits; any other number
            // was read as a double and may have lost some (12345678901234567890123
            // would be stored as "1.2345678901234568e22"): refused.
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(Value::String(n.to_string())),
            Value::Number(_) => {
                return Err(ScimError::invalid_value(format!(
                    "'{}' must be a string; send numbers with a fraction, an exponent or more than 64 bits as text, so that no digit is lost",
                    attr.name
                )));
            }
            Value::Bool(b) => Some(Value::String(b.to_string())),
            _ => return Err(bad("a string")),
        },
        AttrType::Boolean => match value {
            Value::Bool(b) => Some(Value::Bool(*b)),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(Value::Bool(true)),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(Value::Bool(false)),
            Value::String(s) if s.is_empty() => None,
            _ => return Err(bad("a boolean")),
        },
        AttrType::Integer => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => match n.as_i64() {
                Some(i) => Some(Value::from(i)),
                None => return Err(bad("an integer within 64 bits")),
            },
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => match s.trim().parse::<i64>() {
                Ok(i) => Some(Value::from(i)),
                Err(_) => return Err(bad("an integer")),
            },
            _ => return Err(bad("an integer")),
        },
        AttrType::Decimal => match value {
            Value::Number(n) => match n.as_f64() {
                Some(f) if f.is_finite() => Some(Value::Number(n.clone())),
                _ => return Err(bad("a finite decimal number")),
            },
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => serde_json::Number::from_f64(f).map(Value::Number),
                _ => return Err(bad("a decimal number")),
            },
            _ => return Err(bad("a decimal number")),
        },
        AttrType::DateTime => match value {
            Value::String(s) if s.is_empty() => None,
            // Stored in one UTC form, so that every backend reads and
            // orders it alike (`datetime::canonical`).
            Value::String(s) => match crate::datetime::canonical(s) {
                Some(c) => Some(Value::String(c)),
                None => {
                    return Err(bad(
                        "an xsd:dateTime such as 2024-05-01T12:00:00Z (with an offset or Z, years 0001 to 9999 in UTC)",
                    ));
                }
            },
            _ => return Err(bad("an xsd:dateTime string")),
        },
        AttrType::Complex => None,
    })
}

/// Entra's legacy dialect sends app roles as `{"value": "{\"id\":…,\"value\":…,\"displayName\":…}"}`.
/// Store them the way the compliant dialect sends them, so both read back alike.
pub(crate) fn unwrap_roles_in_place(attr: &Attribute, out: &mut Map<String, Value>) {
    if attr.name != "roles" && attr.name != "entitlements" {
        return;
    }
    let Some(Value::String(s)) = out.get("value") else {
        return;
    };
    if !s.trim_start().starts_with('{') {
        return;
    }
    let Ok(Value::Object(inner)) = serde_json::from_str::<Value>(s) else {
        return;
    };
    let get = |k: &str| {
        inner
            .iter()
            .find(|(ik, _)| ik.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    if let Some(v @ Value::String(_)) = get("value") {
        out.insert("value".into(), v);
        if let Some(d @ Value::String(_)) = get("displayName").or_else(|| get("display")) {
            out.entry("display").or_insert(d);
        }
        if let Some(t @ Value::String(_)) = get("type") {
            out.entry("type").or_insert(t);
        }
    }
}

/// Keeps at most one `primary: true` among the values of a multi-valued
/// attribute (RFC 7643 §2.4). `prefer` is the index of a value that was just
/// set primary and wins; otherwise the last primary value wins.
pub(crate) fn normalize_primary(items: &mut [Value], prefer: Option<usize>) {
    let primaries: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, v)| v.get("primary") == Some(&Value::Bool(true)))
        .map(|(i, _)| i)
        .collect();
    let (Some(&last), true) = (primaries.last(), primaries.len() > 1) else {
        return;
    };
    let keep = match prefer {
        Some(p) if primaries.contains(&p) => p,
        _ => last,
    };
    for i in primaries {
        if i != keep
            && let Some(o) = items.get_mut(i).and_then(Value::as_object_mut)
        {
            o.insert("primary".into(), Value::Bool(false));
        }
    }
}

/// Checks `required` attributes after a create, replace or patch.
pub fn check_required(rt: &ResourceType, doc: &Map<String, Value>, _members: Option<&Vec<MemberRef>>) -> Result<()> {
    for attr in &rt.schema.attributes {
        if attr.required && attr.mutability != Mutability::ReadOnly && !doc.contains_key(&attr.name) {
            return Err(ScimError::invalid_value(format!("'{}' is required", attr.name)));
        }
    }
    for (ext, required) in &rt.extensions {
        let obj = doc.get(&ext.id).and_then(Value::as_object);
        if *required && obj.is_none() {
            return Err(ScimError::invalid_value(format!("extension '{}' is required", ext.id)));
        }
        if let Some(obj) = obj {
            for attr in &ext.attributes {
                if attr.required && !obj.contains_key(&attr.name) {
                    return Err(ScimError::invalid_value(format!(
                        "'{}:{}' is required",
                        ext.id, attr.name
                    )));
                }
            }
        }
    }
    Ok(())
}

/// PUT semantics for `immutable` attributes: once set they cannot change.
/// `writeOnly` attributes left out of a PUT keep their value, and so do
/// `readOnly` ones (a PUT cannot change them: their values in the body
/// were ignored).
pub fn merge_for_replace(rt: &ResourceType, old: &Map<String, Value>, new: &mut Map<String, Value>) -> Result<()> {
    for (schema, attr) in rt.all_attributes() {
        let get = |doc: &Map<String, Value>| -> Option<Value> {
            match schema {
                None => doc.get(&attr.name).cloned(),
                Some(s) => doc.get(&s.id).and_then(|e| e.get(&attr.name)).cloned(),
            }
        };
        match attr.mutability {
            Mutability::Immutable => {
                let (o, n) = (get(old), get(new));
                if o.is_some() && n.is_some() && o != n {
                    return Err(ScimError::mutability(format!(
                        "'{}' is immutable and cannot be changed",
                        attr.name
                    )));
                }
                if o.is_some() && n.is_none() {
                    set_input_attr(new, schema.map(|s| s.id.as_str()), attr, &o.unwrap_or_default())?;
                }
            }
            Mutability::WriteOnly | Mutability::ReadOnly => {
                if let (Some(o), None) = (get(old), get(new)) {
                    set_input_attr(new, schema.map(|s| s.id.as_str()), attr, &o)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}
