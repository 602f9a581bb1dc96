//! Query parameters of list and search requests (RFC 7644 §3.4.2, §3.4.3)
//! and the ListResponse they produce.

use std::borrow::Borrow;
use std::cmp::Ordering;

use serde_json::{Map, Value, json};

use crate::error::{Result, ScimError};
use crate::eval::get_ci;
use crate::filter::{AttrPath, Filter, Limits, parse_filter_with, split_attr_path};
use crate::schema::{ResourceType, urn};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    #[default]
    Ascending,
    Descending,
}

/// A list or search request, from query parameters or a SearchRequest body.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub filter: Option<Filter>,
    pub sort_by: Option<String>,
    pub sort_order: SortOrder,
    /// 1-based.
    pub start_index: usize,
    pub count: Option<usize>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
    /// RFC 9865: `Some("")` starts cursor paging; otherwise a cursor.
    pub cursor: Option<String>,
}

impl ListRequest {
    /// From decoded query parameters (name, value); names are case-insensitive.
    pub fn from_query<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>, limits: Limits) -> Result<Self> {
        let mut req = ListRequest {
            start_index: 1,
            ..Default::default()
        };
        for (k, v) in params {
            match k.to_ascii_lowercase().as_str() {
                "filter" if !v.trim().is_empty() => {
                    req.filter = Some(parse_filter_with(v, limits)?);
                }
                "sortby" => req.sort_by = Some(v.to_string()).filter(|s| !s.is_empty()),
                "sortorder" => req.sort_order = parse_sort_order(v)?,
                "startindex" => req.start_index = parse_start_index(v)?,
                "count" => req.count = Some(parse_count(v)?),
                "attributes" => req.attributes = Some(v.to_string()),
                "excludedattributes" => req.excluded_attributes = Some(v.to_string()),
                "cursor" => req.cursor = Some(v.to_string()),
                _ => {} // e.g. Entra's `aadOptscim062020` flag
            }
        }
        Ok(req)
    }

    /// From a `POST …/.search` body.
    pub fn from_search_body(body: &Value, limits: Limits) -> Result<Self> {
        let obj = body
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax("the search request must be a JSON object"))?;
        if let Some(s) = get_ci(body, "schemas") {
            let ok = s.as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case(urn::SEARCH_REQUEST)))
            });
            if !ok {
                return Err(ScimError::invalid_syntax(format!(
                    "'schemas' must contain {}",
                    urn::SEARCH_REQUEST
                )));
            }
        }
        let mut req = ListRequest {
            start_index: 1,
            ..Default::default()
        };
        for (k, v) in obj {
            let as_str = || -> Result<String> {
                match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(ScimError::invalid_value(format!("'{k}' must be a string"))),
                }
            };
            let as_list = || -> Result<String> {
                match v {
                    Value::Array(a) => {
                        let mut names = Vec::new();
                        for x in a {
                            names.push(
                                x.as_str()
                                    .ok_or_else(|| {
                                        ScimError::invalid_value(format!("'{k}' must list attribute names"))
                                    })?
                                    .to_string(),
                            );
                        }
                        Ok(names.join(","))
                    }
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(ScimError::invalid_value(format!(
                        "'{k}' must be an array of attribute names"
                    ))),
                }
            };
            match k.to_ascii_lowercase().as_str() {
                "schemas" => {}
                "filter" => {
                    let f = as_str()?;
                    if !f.trim().is_empty() {
                        req.filter = Some(parse_filter_with(&f, limits)?);
                    }
                }
                "sortby" => req.sort_by = Some(as_str()?).filter(|s| !s.is_empty()),
                "sortorder" => req.sort_order = parse_sort_order(&as_str()?)?,
                "startindex" => req.start_index = parse_start_index(&as_str()?)?,
                "count" => req.count = Some(parse_count(&as_str()?)?),
                "attributes" => req.attributes = Some(as_list()?),
                "excludedattributes" => req.excluded_attributes = Some(as_list()?),
                "cursor" => req.cursor = Some(as_str()?),
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "unknown search request parameter '{k}'"
                    )));
                }
            }
        }
        Ok(req)
    }
}

fn parse_sort_order(v: &str) -> Result<SortOrder> {
    match v.to_ascii_lowercase().as_str() {
        "ascending" | "asc" | "" => Ok(SortOrder::Ascending),
        "descending" | "desc" => Ok(SortOrder::Descending),
        _ => Err(ScimError::invalid_value(format!(
            "sortOrder must be 'ascending' or 'descending', not '{v}'"
        ))),
    }
}

/// RFC 7644 §3.4.2.4: a startIndex below 1 is read as 1. One beyond what
/// an offset can hold (2^63 - 1) is refused rather than echoed as another
/// number.
fn parse_start_index(v: &str) -> Result<usize> {
    let v = v.trim();
    if let Ok(i) = v.parse::<i64>() {
        return match usize::try_from(i.max(1)) {
            Ok(n) => Ok(n),
            Err(_) => Err(too_far(v)),
        };
    }
    if v.starts_with('-') && v[1..].chars().all(|c| c.is_ascii_digit()) && v.len() > 1 {
        return Ok(1);
    }
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) {
        return Err(too_far(v));
    }
    Err(ScimError::invalid_value(format!(
        "startIndex must be an integer, not '{v}'"
    )))
}

fn too_far(v: &str) -> ScimError {
    ScimError::invalid_value(format!("startIndex {v} is beyond the largest allowed, {}", i64::MAX))
}

/// RFC 7644 §3.4.2.4: a negative count is read as 0.
fn parse_count(v: &str) -> Result<usize> {
    let v = v.trim();
    if let Ok(i) = v.parse::<i64>() {
        return Ok(usize::try_from(i.max(0)).unwrap_or(0));
    }
    if v.starts_with('-') && v.len() > 1 && v[1..].chars().all(|c| c.is_ascii_digit()) {
        return Ok(0);
    }
    if !v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) {
        return Ok(usize::MAX);
    }
    Err(ScimError::invalid_value(format!("count must be an integer, not '{v}'")))
}

pub fn list_response(total: u64, start_index: usize, resources: Vec<Value>) -> Value {
    let mut obj = Map::new();
    obj.insert("schemas".into(), json!([urn::LIST_RESPONSE]));
    obj.insert("totalResults".into(), json!(total));
    obj.insert("startIndex".into(), json!(start_index));
    obj.insert("itemsPerPage".into(), json!(resources.len()));
    obj.insert("Resources".into(), Value::Array(resources));
    Value::Object(obj)
}

// Search at the root (RFC 7644 §3.4.3): the server lists each resource type
// with the filter restricted to it, then merges the pages.

/// A root-level filter for one resource type: terms on attributes the type
/// does not have can never match (`not (id pr)` is always false).
pub fn restrict_filter(rt: &ResourceType, f: &Filter) -> Filter {
    let never = || Filter::Not(Box::new(Filter::Present(AttrPath::new("id"))));
    let known = |p: &AttrPath| rt.resolve(p.urn.as_deref(), &p.name, p.sub.as_deref()).is_some();
    match f {
        Filter::And(v) => Filter::And(v.iter().map(|x| restrict_filter(rt, x)).collect()),
        Filter::Or(v) => Filter::Or(v.iter().map(|x| restrict_filter(rt, x)).collect()),
        Filter::Not(x) => Filter::Not(Box::new(restrict_filter(rt, x))),
        Filter::Present(p) | Filter::Compare(p, ..) | Filter::ValuePath(p, _) if !known(p) => never(),
        other => other.clone(),
    }
}

/// Every attribute of a root-level filter must exist in some resource type,
/// and none may be one that is never returned (in any type: the types that
/// have it would refuse the filter, and the others answering alone would
/// hide that).
pub fn check_filter_attributes<R: Borrow<ResourceType>>(rts: &[R], f: &Filter) -> Result<()> {
    if let Some(p) = rts
        .iter()
        .find_map(|rt| crate::plan::never_returned_path(rt.borrow(), f))
    {
        return Err(crate::plan::never_returned(&p));
    }
    check_known_attributes(rts, f)
}

fn check_known_attributes<R: Borrow<ResourceType>>(rts: &[R], f: &Filter) -> Result<()> {
    match f {
        Filter::And(v) | Filter::Or(v) => v.iter().try_for_each(|x| check_known_attributes(rts, x)),
        Filter::Not(x) => check_known_attributes(rts, x),
        Filter::Present(p) | Filter::Compare(p, ..) | Filter::ValuePath(p, _) => {
            let known = |rt: &R| {
                rt.borrow()
                    .resolve(p.urn.as_deref(), &p.name, p.sub.as_deref())
                    .is_some()
            };
            if rts.iter().any(known) {
                Ok(())
            } else {
                Err(ScimError::invalid_filter(format!("unknown attribute '{p}'")))
            }
        }
    }
}

/// Whether a type's list can be sorted by `sort_by` (it has the
/// attribute); the others are listed in store order.
pub fn sortable(rt: &ResourceType, sort_by: &str) -> bool {
    split_attr_path(sort_by).is_some_and(|(u, n, s)| rt.resolve(u.as_deref(), &n, s.as_deref()).is_some())
}

/// The key by which the pages of a root search are merged: the stored
/// document's `name` or `name.sub` (strings lower-cased), else null.
pub fn merge_key(doc: &Map<String, Value>, sort_by: &str) -> Value {
    let mut v = doc
        .get(sort_by.split('.').next().unwrap_or(sort_by))
        .cloned()
        .unwrap_or(Value::Null);
    if let Some((_, sub)) = sort_by.split_once('.') {
        v = v.get(sub).cloned().unwrap_or(Value::Null);
    }
    match v {
        Value::String(s) => Value::String(s.to_lowercase()),
        other => other,
    }
}

/// The order of merge keys: nulls last, strings by code point, numbers by
/// value, false before true; keys of different types by their JSON text.
pub fn cmp_merge_keys(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Greater,
        (_, Value::Null) => Ordering::Less,
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// The requested page of a root search from each type's results in order
/// (Users, then Groups), each with its [`merge_key`]: sorted by key when
/// `sort` is given (stable: ties keep that order in either direction;
/// descending reverses [`cmp_merge_keys`] whole, so absent keys come
/// first), then `startIndex` (1-based) and `count` applied.
pub fn merge_page<T>(
    mut entries: Vec<(Value, T)>,
    sort: Option<SortOrder>,
    start_index: usize,
    count: usize,
) -> Vec<T> {
    if let Some(order) = sort {
        entries.sort_by(|a, b| {
            let o = cmp_merge_keys(&a.0, &b.0);
            if order == SortOrder::Descending { o.reverse() } else { o }
        });
    }
    entries
        .into_iter()
        .skip(start_index.saturating_sub(1))
        .take(count)
        .map(|(_, v)| v)
        .collect()
}
