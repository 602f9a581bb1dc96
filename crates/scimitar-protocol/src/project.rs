//! Attribute projection: `attributes` and `excludedAttributes`
//! (RFC 7644 §3.4.2.5) with the `returned` rules of RFC 7643 §7.

use serde_json::{Map, Value};

use crate::error::{Result, ScimError};
use crate::filter::split_attr_path;
use crate::schema::{Attribute, ResourceType, Returned};

/// Canonical `(extension URN or None, attribute, optional sub-attribute)`;
/// an empty attribute name selects a whole extension.
pub type AttrRef = (Option<String>, String, Option<String>);

/// A parsed `attributes` or `excludedAttributes` list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    /// Canonical `(extension URN or None, attribute, optional sub-attribute)`.
    pub attributes: Vec<(Option<String>, String, Option<String>)>,
    pub excluded: Vec<(Option<String>, String, Option<String>)>,
}

impl Projection {
    pub fn parse(rt: &ResourceType, attributes: Option<&str>, excluded: Option<&str>) -> Result<Self> {
        let parse_list = |s: Option<&str>| -> Result<Vec<AttrRef>> {
            let mut out = Vec::new();
            for raw in s
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                // A bare extension URN selects the whole extension.
                if let Some(ext) = rt.extension(raw) {
                    out.push((Some(ext.id.clone()), String::new(), None));
                    continue;
                }
                let (urn, name, sub) = split_attr_path(raw)
                    .ok_or_else(|| ScimError::invalid_value(format!("invalid attribute name '{raw}'")))?;
                match rt.resolve(urn.as_deref(), &name, sub.as_deref()) {
                    Some(r) => out.push((
                        if r.extension {
                            r.schema.map(str::to_string)
                        } else {
                            None
                        },
                        r.attr.name.clone(),
                        r.sub.map(|s| s.name.clone()),
                    )),
                    // Unknown names are ignored, as RFC 7644 lets servers do;
                    // clients such as Entra ask for attributes we may lack.
                    None => continue,
                }
            }
            Ok(out)
        };
        Ok(Projection {
            attributes: parse_list(attributes)?,
            excluded: parse_list(excluded)?,
        })
    }

    pub fn is_default(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    /// Whether `members` (Groups) must be loaded at all.
    pub fn wants(&self, ext: Option<&str>, name: &str, attr: &Attribute) -> bool {
        include_attr(self, ext, attr, name)
    }

    /// Applies the projection to a full representation (as built for output).
    pub fn apply(&self, rt: &ResourceType, resource: &mut Map<String, Value>) {
        let keys: Vec<String> = resource.keys().cloned().collect();
        for key in keys {
            if key == "schemas" {
                continue;
            }
            if let Some(ext) = rt.extension(&key) {
                let ext_id = ext.id.clone();
                let Some(Value::Object(inner)) = resource.get_mut(&key) else {
                    continue;
                };
                let inner_keys: Vec<String> = inner.keys().cloned().collect();
                for k in inner_keys {
                    match ext.attribute(&k) {
                        Some(attr) => {
                            // Left out, or nothing left of it after sub-attribute projection.
                            if !include_attr(self, Some(&ext_id), attr, &attr.name)
                                || (attr.is_complex() && project_subs(self, Some(&ext_id), attr, inner.get_mut(&k)))
                            {
                                inner.remove(&k);
                            }
                        }
                        None => {
                            inner.remove(&k);
                        }
                    }
                }
                if inner.is_empty() {
                    resource.remove(&key);
                }
                continue;
            }
            let Some(r) = rt.resolve(None, &key, None) else {
                continue;
            };
            if !include_attr(self, None, r.attr, &r.attr.name)
                || (r.attr.is_complex() && project_subs(self, None, r.attr, resource.get_mut(&key)))
            {
                resource.remove(&key);
            }
        }
        // Keep `schemas` honest about which extensions remain.
        let present: Vec<Value> = std::iter::once(Value::String(rt.schema.id.clone()))
            .chain(
                rt.extensions
                    .iter()
                    .filter(|(s, _)| resource.contains_key(&s.id))
                    .map(|(s, _)| Value::String(s.id.clone())),
            )
            .collect();
        resource.insert("schemas".into(), Value::Array(present));
    }
}

fn matches(entry: &(Option<String>, String, Option<String>), ext: Option<&str>, name: &str) -> bool {
    entry.0.as_deref() == ext && (entry.1.is_empty() || entry.1 == name)
}

fn include_attr(p: &Projection, ext: Option<&str>, attr: &Attribute, name: &str) -> bool {
    match attr.returned {
        Returned::Never => return false,
        Returned::Always => return true,
        _ => {}
    }
    if !p.attributes.is_empty() {
        return p.attributes.iter().any(|e| matches(e, ext, name));
    }
    if attr.returned == Returned::Request {
        return false;
    }
    !p.excluded.iter().any(|e| matches(e, ext, name) && e.2.is_none())
}

/// Strips the sub-attributes the projection leaves out. Returns whether
/// nothing is left (an empty object, or no non-empty value), in which case
/// the caller leaves the attribute out instead of returning `{}` or `[{}]`.
fn project_subs(p: &Projection, ext: Option<&str>, attr: &Attribute, value: Option<&mut Value>) -> bool {
    let Some(value) = value else { return false };
    let keep = |sub: &Attribute| -> bool {
        match sub.returned {
            Returned::Never => return false,
            Returned::Always => return true,
            _ => {}
        }
        if !p.attributes.is_empty() {
            let selected: Vec<_> = p.attributes.iter().filter(|e| matches(e, ext, &attr.name)).collect();
            // `name` selects every sub-attribute; `name.givenName` only that one.
            return selected
                .iter()
                .any(|e| e.2.is_none() || e.2.as_deref() == Some(sub.name.as_str()));
        }
        if sub.returned == Returned::Request {
            return false;
        }
        !p.excluded
            .iter()
            .any(|e| matches(e, ext, &attr.name) && e.2.as_deref() == Some(sub.name.as_str()))
    };
    let strip = |obj: &mut Map<String, Value>| {
        obj.retain(|k, _| attr.sub(k).is_none_or(keep));
    };
    match value {
        Value::Object(o) => {
            let had = !o.is_empty();
            strip(o);
            had && o.is_empty()
        }
        Value::Array(items) => {
            let had = !items.is_empty();
            for it in items.iter_mut() {
                if let Value::Object(o) = it {
                    strip(o);
                }
            }
            items.retain(|it| !matches!(it, Value::Object(o) if o.is_empty()));
            had && items.is_empty()
        }
        _ => false,
    }
}
