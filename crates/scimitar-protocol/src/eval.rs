//! In-memory filter evaluation over JSON resources, with the comparison
//! rules of RFC 7644 §3.4.2.2 (caseExact, typed comparisons). PATCH uses it
//! for value filters; tests use it as the oracle for database filtering.

use serde_json::Value;

use crate::error::{Result, ScimError};
use crate::filter::{AttrPath, CompValue, CompareOp, Filter};
use crate::plan::{Literal, check_operator, literal, never_returned};
use crate::schema::{Attribute, ResourceType, Returned};

/// Does a value of the multi-valued complex attribute `attr` match `filter`
/// (whose paths name sub-attributes)?
pub fn matches_element(filter: &Filter, elem: &Value, attr: &Attribute) -> Result<bool> {
    Ok(match filter {
        Filter::And(v) => {
            for f in v {
                if !matches_element(f, elem, attr)? {
                    return Ok(false);
                }
            }
            true
        }
        Filter::Or(v) => {
            for f in v {
                if matches_element(f, elem, attr)? {
                    return Ok(true);
                }
            }
            false
        }
        Filter::Not(f) => !matches_element(f, elem, attr)?,
        Filter::ValuePath(..) => {
            return Err(ScimError::invalid_filter("value paths cannot be nested"));
        }
        Filter::Present(p) | Filter::Compare(p, _, _) => {
            let (sub, value) = element_sub(p, elem, attr)?;
            match filter {
                Filter::Present(_) => is_present(value),
                Filter::Compare(_, op, cv) => compare_values(value, sub, *op, cv)?,
                _ => false,
            }
        }
    })
}

fn element_sub<'v, 'a>(
    p: &AttrPath,
    elem: &'v Value,
    attr: &'a Attribute,
) -> Result<(&'a Attribute, Option<&'v Value>)> {
    if p.urn.is_some() || p.sub.is_some() {
        return Err(ScimError::invalid_filter(format!(
            "'{p}' is not a sub-attribute of '{}'",
            attr.name
        )));
    }
    if !attr.is_complex() {
        // A multi-valued simple attribute: the element itself is "value".
        if p.name.eq_ignore_ascii_case("value") {
            return Ok((attr, Some(elem)));
        }
        return Err(ScimError::invalid_filter(format!(
            "'{}' has no sub-attribute '{}'",
            attr.name, p.name
        )));
    }
    let sub = attr
        .sub(&p.name)
        .ok_or_else(|| ScimError::invalid_filter(format!("'{}' has no sub-attribute '{}'", attr.name, p.name)))?;
    // A PATCH value filter on a never-returned value would answer, by
    // its success or `noTarget`, whether a guess is right.
    if sub.returned == Returned::Never {
        return Err(never_returned(&format!("{}.{}", attr.name, sub.name)));
    }
    Ok((sub, get_ci(elem, &sub.name)))
}

/// Case-insensitive member lookup in a JSON object.
pub(crate) fn get_ci<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    let obj = v.as_object()?;
    obj.get(key)
        .or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

fn is_present(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

/// Compares one attribute value (or each value of a multi-valued one)
/// with a filter value.
pub(crate) fn compare_values(value: Option<&Value>, attr: &Attribute, op: CompareOp, cv: &CompValue) -> Result<bool> {
    check_operator(attr, op, cv)?;
    match value {
        None | Some(Value::Null) => Ok(match (op, cv) {
            (CompareOp::Eq, CompValue::Null) => true,
            (CompareOp::Ne, CompValue::Null) => false,
            (CompareOp::Ne, _) => true,
            _ => false,
        }),
        Some(Value::Array(items)) => {
            if op == CompareOp::Ne {
                // "ne" on a multi-valued attribute: no value equals.
                for it in items {
                    if compare_scalar(it, attr, CompareOp::Eq, cv)? {
                        return Ok(false);
                    }
                }
                return Ok(true);
            }
            for it in items {
                if compare_scalar(it, attr, op, cv)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Some(v) => compare_scalar(v, attr, op, cv),
    }
}

fn compare_scalar(v: &Value, attr: &Attribute, op: CompareOp, cv: &CompValue) -> Result<bool> {
    // A complex attribute compared directly compares its "value".
    if attr.is_complex() {
        let Some(sub) = attr.sub("value") else {
            return Ok(false);
        };
        return compare_values(get_ci(v, "value"), sub, op, cv);
    }
    use std::cmp::Ordering;
    // A literal that cannot be read for the attribute's type equals nothing.
    let Ok(lit) = literal(attr, op, cv) else {
        return Ok(op == CompareOp::Ne);
    };
    // Values compare with literals of their own JSON type only.
    let ord: Option<Ordering> = match (v, &lit) {
        (_, Literal::Null) => return Ok(op == CompareOp::Ne),
        (Value::Bool(b), Literal::Bool(c)) => Some(b.cmp(c)),
        (Value::Number(n), Literal::Number(m)) => compare_numbers(n, m),
        (Value::String(s), Literal::DateTime(t)) => {
            match (crate::datetime::instant_key(s), crate::datetime::filter_instant(t)) {
                (Some(a), Some(b)) => crate::datetime::key_of(b).map(|b| a.cmp(&b)),
                _ => Some(s.as_str().cmp(t.as_str())),
            }
        }
        (Value::String(s), Literal::Text(t)) => {
            let (a, b) = if attr.case_insensitive() {
                (s.to_lowercase(), t.to_lowercase())
            } else {
                (s.clone(), t.clone())
            };
            return Ok(match op {
                CompareOp::Eq => a == b,
                CompareOp::Ne => a != b,
                CompareOp::Co => a.contains(&b),
                CompareOp::Sw => a.starts_with(&b),
                CompareOp::Ew => a.ends_with(&b),
                CompareOp::Gt => a > b,
                CompareOp::Ge => a >= b,
                CompareOp::Lt => a < b,
                CompareOp::Le => a <= b,
            });
        }
        _ => None,
    };
    Ok(match ord {
        None => op == CompareOp::Ne,
        Some(o) => match op {
            CompareOp::Eq => o == Ordering::Equal,
            CompareOp::Ne => o != Ordering::Equal,
            CompareOp::Gt => o == Ordering::Greater,
            CompareOp::Ge => o != Ordering::Less,
            CompareOp::Lt => o == Ordering::Less,
            CompareOp::Le => o != Ordering::Greater,
            CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
        },
    })
}

/// Orders two JSON numbers: integers exactly (a double cannot tell 2^53
/// from 2^53 + 1), anything else as doubles.
fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<std::cmp::Ordering> {
    match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
        (Some(x), Some(y), _, _) => Some(x.cmp(&y)),
        (_, _, Some(x), Some(y)) => Some(x.cmp(&y)),
        // One is a u64 beyond i64 and the other a negative i64.
        (Some(_), None, _, Some(_)) => Some(std::cmp::Ordering::Less),
        (None, Some(_), Some(_), _) => Some(std::cmp::Ordering::Greater),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// Evaluates a filter against a whole resource (as returned to clients:
/// extension attributes under their URN key).
pub fn matches_resource(filter: &Filter, resource: &Value, rt: &ResourceType) -> Result<bool> {
    Ok(match filter {
        Filter::And(v) => {
            for f in v {
                if !matches_resource(f, resource, rt)? {
                    return Ok(false);
                }
            }
            true
        }
        Filter::Or(v) => {
            for f in v {
                if matches_resource(f, resource, rt)? {
                    return Ok(true);
                }
            }
            false
        }
        Filter::Not(f) => !matches_resource(f, resource, rt)?,
        Filter::Present(p) => {
            let (attr, value) = resource_attr(p, resource, rt)?;
            let _ = attr;
            match (p.sub.as_deref(), value) {
                (Some(sub), Some(Value::Array(items))) => items.iter().any(|it| is_present(get_ci(it, sub))),
                // `name.givenName pr`: the sub-attribute, not the object.
                (Some(sub), Some(obj)) => is_present(get_ci(obj, sub)),
                (_, other) => is_present(other),
            }
        }
        Filter::Compare(p, op, cv) => {
            let (attr, value) = resource_attr(p, resource, rt)?;
            match (&p.sub, value) {
                (Some(subname), Some(Value::Array(items))) => {
                    let sub = attr.sub(subname).unwrap_or(attr);
                    let vals: Vec<Value> = items.iter().filter_map(|it| get_ci(it, subname).cloned()).collect();
                    compare_values(Some(&Value::Array(vals)), sub, *op, cv)?
                }
                (Some(subname), Some(obj)) => {
                    let sub = attr.sub(subname).unwrap_or(attr);
                    compare_values(get_ci(obj, subname), sub, *op, cv)?
                }
                (Some(subname), None) => {
                    let sub = attr.sub(subname).unwrap_or(attr);
                    compare_values(None, sub, *op, cv)?
                }
                (None, v) => compare_values(v, attr, *op, cv)?,
            }
        }
        Filter::ValuePath(p, inner) => {
            let (attr, value) = resource_attr(p, resource, rt)?;
            match value {
                Some(Value::Array(items)) => {
                    for it in items {
                        if matches_element(inner, it, attr)? {
                            return Ok(true);
                        }
                    }
                    false
                }
                Some(v @ Value::Object(_)) => matches_element(inner, v, attr)?,
                _ => false,
            }
        }
    })
}

fn resource_attr<'v, 'a>(
    p: &AttrPath,
    resource: &'v Value,
    rt: &'a ResourceType,
) -> Result<(&'a Attribute, Option<&'v Value>)> {
    let r = rt
        .resolve(p.urn.as_deref(), &p.name, p.sub.as_deref())
        .ok_or_else(|| ScimError::invalid_filter(format!("unknown attribute '{p}'")))?;
    if r.attr.returned == Returned::Never || r.sub.is_some_and(|s| s.returned == Returned::Never) {
        return Err(never_returned(p));
    }
    let container = if r.extension {
        r.schema.and_then(|u| get_ci(resource, u))
    } else {
        Some(resource)
    };
    let value = container.and_then(|c| get_ci(c, &r.attr.name));
    Ok((r.attr, value))
}
