//! Lowering of SCIM filters and sort keys to PostgreSQL SQL.
//!
//! A port of the SQLite store's lowering with the same semantics. Column
//! names come from a fixed list; attribute names and JSON paths come from
//! the schema but are still bound (custom schemas are tenant data); every
//! value is a bound, explicitly cast parameter. Because PostgreSQL numbers
//! its parameters, one placeholder may appear several times in the SQL.
//! Substring operators use `strpos`/`left`/`right`, never `LIKE`, so `%`,
//! `_` and `\` in values are literal. Ordering comparisons and sort keys
//! use `COLLATE "C"` (code point order, as SQLite and the evaluator).

use scimitar_protocol::ScimError;
use scimitar_protocol::eval::check_operator;
use scimitar_protocol::filter::{AttrPath, CompValue, CompareOp, Filter};
use scimitar_protocol::list::SortOrder;
use scimitar_protocol::schema::{AttrType, Attribute, ResourceType};
use scimitar_store::Kind;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_postgres::types::ToSql;

pub type Param = Box<dyn ToSql + Sync + Send>;

#[derive(Default)]
pub struct Builder {
    pub sql: String,
    pub params: Vec<Param>,
}

impl Builder {
    pub fn push(&mut self, s: &str) {
        self.sql.push_str(s);
    }
    /// Binds a value and returns its placeholder, cast to `ty` so that
    /// PostgreSQL never has to guess parameter types.
    pub fn bind<T: ToSql + Sync + Send + 'static>(&mut self, v: T, ty: &str) -> String {
        self.params.push(Box::new(v));
        format!("${}::{ty}", self.params.len())
    }
    fn path(&mut self, p: Vec<String>) -> String {
        self.bind(p, "text[]")
    }
    fn text(&mut self, s: &str) -> String {
        self.bind(s.to_string(), "text")
    }
}

/// References to the parameters, as tokio-postgres takes them.
pub fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
}

/// A value expression.
#[derive(Clone)]
enum Val {
    /// A text column.
    Text(&'static str),
    /// A shadow column holding the value lower-cased (userName, Group displayName).
    Lowered(&'static str),
    /// A jsonb expression.
    Json(String),
}

impl Val {
    fn text(&self) -> String {
        match self {
            Val::Text(c) | Val::Lowered(c) => (*c).to_string(),
            Val::Json(j) => format!("({j} #>> '{{}}')"),
        }
    }
}

/// Where an attribute's value comes from.
enum Source {
    Column(Val, Attribute),
    /// A path into `r.doc` (single-valued).
    Json(Vec<String>, Attribute),
    /// A multi-valued attribute in the doc, and an optional sub-attribute of
    /// each element.
    JsonEach {
        path: Vec<String>,
        attr: Attribute,
        sub: Option<Attribute>,
    },
    /// Group members (`members`, `members.value`, `members.type`).
    Members {
        sub: Option<Attribute>,
        attr: Attribute,
    },
    /// User groups (`groups`, `groups.value`).
    Groups {
        attr: Attribute,
    },
    /// meta.resourceType: a constant.
    Constant(&'static str, Attribute),
}

fn doc_path(ext: Option<&str>, name: &str, sub: Option<&str>) -> Vec<String> {
    ext.into_iter()
        .chain(std::iter::once(name))
        .chain(sub)
        .map(str::to_string)
        .collect()
}

fn cannot(p: &AttrPath) -> ScimError {
    ScimError::invalid_filter(format!("'{p}' cannot be used in a filter"))
}

fn source(rt: &ResourceType, kind: Kind, p: &AttrPath) -> Result<Source, ScimError> {
    let r = rt
        .resolve(p.urn.as_deref(), &p.name, p.sub.as_deref())
        .ok_or_else(|| ScimError::invalid_filter(format!("unknown attribute '{p}'")))?;
    let attr = r.attr.clone();
    let leaf = r.leaf().clone();
    if r.schema.is_none() {
        // Common attributes.
        return Ok(match (attr.name.as_str(), r.sub.map(|s| s.name.as_str())) {
            ("id", None) => Source::Column(Val::Text("r.id"), leaf),
            ("externalId", None) => Source::Column(Val::Text("r.external_id"), leaf),
            ("meta", Some("created")) => Source::Column(Val::Text("r.created"), leaf),
            ("meta", Some("lastModified")) => Source::Column(Val::Text("r.modified"), leaf),
            ("meta", Some("resourceType")) => Source::Constant(kind.as_str(), leaf),
            _ => return Err(cannot(p)),
        });
    }
    let ext = if r.extension { r.schema } else { None };
    match (kind, ext, attr.name.as_str()) {
        (Kind::User, None, "userName") => return Ok(Source::Column(Val::Lowered("r.user_name_ci"), leaf)),
        (Kind::Group, None, "displayName") => return Ok(Source::Column(Val::Lowered("r.display_name_ci"), leaf)),
        (Kind::Group, None, "members") => {
            return match r.sub.map(|s| s.name.as_str()) {
                None | Some("value") | Some("type") | Some("display") => Ok(Source::Members {
                    sub: r.sub.cloned(),
                    attr,
                }),
                _ => Err(cannot(p)),
            };
        }
        (Kind::User, None, "groups") => {
            return match r.sub.map(|s| s.name.as_str()) {
                None | Some("value") => Ok(Source::Groups { attr }),
                _ => Err(cannot(p)),
            };
        }
        _ => {}
    }
    if attr.name == "manager" && r.sub.is_some_and(|s| s.name != "value") {
        return Err(cannot(p));
    }
    if attr.multi_valued {
        return Ok(Source::JsonEach {
            path: doc_path(ext, &attr.name, None),
            attr,
            sub: r.sub.cloned(),
        });
    }
    if attr.is_complex() && r.sub.is_none() {
        // A complex attribute compared directly compares its `value`.
        let value = attr
            .sub("value")
            .cloned()
            .ok_or_else(|| ScimError::invalid_filter(format!("'{p}' is complex; name a sub-attribute")))?;
        return Ok(Source::Json(doc_path(ext, &attr.name, Some("value")), value));
    }
    Ok(Source::Json(
        doc_path(ext, &attr.name, r.sub.map(|s| s.name.as_str())),
        leaf,
    ))
}

/// The elements of the array at `path` (`'[]'` if it is not an array, so
/// that a stray scalar never aborts the query).
fn elements(b: &mut Builder, path: Vec<String>) -> String {
    let p = b.path(path);
    format!(
        "jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> {p}) = 'array' THEN r.doc #> {p} ELSE '[]'::jsonb END) AS e(value)"
    )
}

/// Appends the condition for `f` on the row `r` of `resources`.
pub fn lower_filter(b: &mut Builder, rt: &ResourceType, kind: Kind, f: &Filter) -> Result<(), ScimError> {
    match f {
        Filter::And(items) | Filter::Or(items) => {
            let sep = if matches!(f, Filter::And(_)) { " AND " } else { " OR " };
            b.push("(");
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    b.push(sep);
                }
                lower_filter(b, rt, kind, it)?;
            }
            b.push(")");
        }
        Filter::Not(inner) => {
            b.push("NOT (");
            lower_filter(b, rt, kind, inner)?;
            b.push(")");
        }
        Filter::Present(p) => lower_leaf(b, rt, kind, p, None)?,
        Filter::Compare(p, op, v) => lower_leaf(b, rt, kind, p, Some((*op, v)))?,
        Filter::ValuePath(p, inner) => {
            if p.sub.is_some() {
                return Err(ScimError::invalid_filter(format!("invalid value path '{p}'")));
            }
            match source(rt, kind, p)? {
                Source::JsonEach { path, attr, .. } => {
                    let from = elements(b, path);
                    let cond = lower_element(b, &attr, inner, &ElementCx::Json)?;
                    b.push(&format!("EXISTS (SELECT 1 FROM {from} WHERE {cond})"));
                }
                Source::Members { attr, .. } => {
                    let cond = lower_element(b, &attr, inner, &ElementCx::Member)?;
                    b.push(&format!("EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND {cond})"));
                }
                Source::Json(mut path, _) if path.last().is_some_and(|l| l == "value") => {
                    // A single-valued complex attribute (manager[value eq "x"]).
                    let r = rt
                        .resolve(p.urn.as_deref(), &p.name, None)
                        .ok_or_else(|| ScimError::invalid_filter(format!("unknown attribute '{p}'")))?;
                    path.pop();
                    let base = b.path(path);
                    let cond = lower_element(b, r.attr, inner, &ElementCx::Object(base))?;
                    b.push(&format!("({cond})"));
                }
                _ => return Err(ScimError::invalid_filter(format!("'{p}' is not multi-valued"))),
            }
        }
    }
    Ok(())
}

enum ElementCx {
    /// `e.value` of a jsonb_array_elements row.
    Json,
    /// A row `m` of the members table.
    Member,
    /// A complex object at this (bound) path of `r.doc`.
    Object(String),
}

/// The condition for `f` on one value of the complex or multi-valued `attr`.
fn lower_element(b: &mut Builder, attr: &Attribute, f: &Filter, cx: &ElementCx) -> Result<String, ScimError> {
    match f {
        Filter::And(items) | Filter::Or(items) => {
            let sep = if matches!(f, Filter::And(_)) { " AND " } else { " OR " };
            let parts = items
                .iter()
                .map(|it| lower_element(b, attr, it, cx))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(format!("({})", parts.join(sep)))
        }
        Filter::Not(inner) => Ok(format!("NOT ({})", lower_element(b, attr, inner, cx)?)),
        Filter::ValuePath(..) => Err(ScimError::invalid_filter("value paths cannot be nested")),
        Filter::Present(p) | Filter::Compare(p, ..) => {
            if p.urn.is_some() || p.sub.is_some() {
                return Err(ScimError::invalid_filter(format!(
                    "'{p}' is not a sub-attribute of '{}'",
                    attr.name
                )));
            }
            let (val, sub) = if attr.is_complex() {
                let sub = attr.sub(&p.name).ok_or_else(|| {
                    ScimError::invalid_filter(format!("'{}' has no sub-attribute '{}'", attr.name, p.name))
                })?;
                let val = match cx {
                    ElementCx::Json => Val::Json(format!("(e.value -> {})", b.text(&sub.name))),
                    ElementCx::Object(base) => Val::Json(format!("(r.doc #> {base} -> {})", b.text(&sub.name))),
                    ElementCx::Member => match sub.name.as_str() {
                        "value" => Val::Text("m.member_id"),
                        "type" => Val::Text("m.member_type"),
                        "display" => Val::Text("m.display"),
                        _ => {
                            return Err(ScimError::invalid_filter(format!(
                                "'members.{}' cannot be used in a filter",
                                sub.name
                            )));
                        }
                    },
                };
                (val, sub.clone())
            } else if p.name.eq_ignore_ascii_case("value") {
                (Val::Json("e.value".into()), attr.clone())
            } else {
                return Err(ScimError::invalid_filter(format!(
                    "'{}' has no sub-attribute '{}'",
                    attr.name, p.name
                )));
            };
            match f {
                Filter::Compare(_, op, v) => compare(b, &val, &sub, *op, v),
                _ => Ok(format!("{} IS NOT NULL", val.text())),
            }
        }
    }
}

fn lower_leaf(
    b: &mut Builder,
    rt: &ResourceType,
    kind: Kind,
    p: &AttrPath,
    cmp: Option<(CompareOp, &CompValue)>,
) -> Result<(), ScimError> {
    let cond = match source(rt, kind, p)? {
        Source::Column(val, attr) => match cmp {
            None => format!("{} IS NOT NULL", val.text()),
            Some((op, v)) => compare(b, &val, &attr, op, v)?,
        },
        Source::Constant(c, attr) => match cmp {
            None => "TRUE".into(),
            Some((op, v)) => {
                check_operator(&attr, op, v)?;
                let CompValue::String(s) = v else {
                    return Err(ScimError::invalid_filter("meta.resourceType is a string"));
                };
                let hit = match op {
                    CompareOp::Eq => s == c,
                    CompareOp::Ne => s != c,
                    _ => return Err(ScimError::invalid_filter("meta.resourceType supports eq and ne")),
                };
                (if hit { "TRUE" } else { "FALSE" }).into()
            }
        },
        Source::Json(path, attr) => {
            let val = Val::Json(format!("(r.doc #> {})", b.path(path)));
            match cmp {
                None => format!("{} IS NOT NULL", val.text()),
                Some((op, v)) => compare(b, &val, &attr, op, v)?,
            }
        }
        Source::JsonEach { path, attr, sub } => {
            let (elem_attr, val) = match (&sub, attr.is_complex()) {
                (Some(s), _) => (s.clone(), Val::Json(format!("(e.value -> {})", b.text(&s.name)))),
                (None, true) => match attr.sub("value") {
                    Some(v) => (v.clone(), Val::Json("(e.value -> 'value')".into())),
                    None => {
                        return Err(ScimError::invalid_filter(format!(
                            "'{p}' is complex; name a sub-attribute"
                        )));
                    }
                },
                (None, false) => (attr.clone(), Val::Json("e.value".into())),
            };
            // `ne` on a multi-valued attribute: no value equals.
            let negate = matches!(cmp, Some((CompareOp::Ne, _)));
            let from = elements(b, path);
            let cond = match cmp {
                None => format!("{} IS NOT NULL", val.text()),
                Some((op, v)) => compare(b, &val, &elem_attr, if negate { CompareOp::Eq } else { op }, v)?,
            };
            format!(
                "{}EXISTS (SELECT 1 FROM {from} WHERE {cond})",
                if negate { "NOT " } else { "" }
            )
        }
        Source::Members { sub, .. } => {
            let col = match sub.as_ref().map(|s| s.name.as_str()) {
                None | Some("value") => "m.member_id",
                Some("type") => "m.member_type",
                _ => "m.display",
            };
            let leaf = sub.unwrap_or_else(|| string_attr("value", true));
            members_exists(b, "m.group_id = r.id", col, &leaf, cmp)?
        }
        Source::Groups { attr } => {
            let leaf = attr.sub("value").cloned().unwrap_or_else(|| string_attr("value", true));
            members_exists(b, "m.member_id = r.id", "m.group_id", &leaf, cmp)?
        }
    };
    b.push(&cond);
    Ok(())
}

fn members_exists(
    b: &mut Builder,
    join: &str,
    col: &'static str,
    leaf: &Attribute,
    cmp: Option<(CompareOp, &CompValue)>,
) -> Result<String, ScimError> {
    let negate = matches!(cmp, Some((CompareOp::Ne, _)));
    let cond = match cmp {
        None => format!("{col} IS NOT NULL"),
        Some((op, v)) => compare(b, &Val::Text(col), leaf, if negate { CompareOp::Eq } else { op }, v)?,
    };
    Ok(format!(
        "{}EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND {join} AND {cond})",
        if negate { "NOT " } else { "" }
    ))
}

fn string_attr(name: &str, case_exact: bool) -> Attribute {
    let mut a = scimitar_protocol::schema::common_attributes()[0].clone();
    a.name = name.to_string();
    a.case_exact = case_exact;
    a
}

/// Accepts an RFC 3339 text with a valid date and time (what PostgreSQL
/// can cast); other text compares as absent rather than failing the query.
const DATETIME_RE: &str =
    r"'^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$'";

fn as_timestamp(t: &str) -> String {
    format!("(CASE WHEN {t} ~ {DATETIME_RE} THEN ({t})::timestamptz END)")
}

fn as_number(val: &Val) -> String {
    match val {
        Val::Json(j) => format!("(CASE WHEN jsonb_typeof({j}) = 'number' THEN ({j})::float8 END)"),
        other => {
            let t = other.text();
            format!("(CASE WHEN {t} ~ '^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$' THEN ({t})::float8 END)")
        }
    }
}

fn as_boolean(val: &Val) -> String {
    match val {
        Val::Json(j) => format!("(CASE WHEN jsonb_typeof({j}) = 'boolean' THEN ({j})::boolean END)"),
        other => {
            let t = other.text();
            format!("(CASE WHEN lower({t}) IN ('true', 'false') THEN ({t})::boolean END)")
        }
    }
}

/// A filter's dateTime value, normalised to RFC 3339 so the cast in SQL
/// cannot fail. A date alone, or a date-time without offset, means UTC.
fn timestamp_value(s: &str) -> Option<String> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return t.format(&Rfc3339).ok();
    }
    let with_time = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        format!("{s}Z")
    };
    OffsetDateTime::parse(&with_time, &Rfc3339)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
}

/// `val op value` with the semantics of the attribute's type.
fn compare(b: &mut Builder, val: &Val, attr: &Attribute, op: CompareOp, v: &CompValue) -> Result<String, ScimError> {
    check_operator(attr, op, v)?;
    if let CompValue::Null = v {
        let t = val.text();
        return Ok(if op == CompareOp::Eq {
            format!("{t} IS NULL")
        } else {
            format!("{t} IS NOT NULL")
        });
    }
    if let CompValue::String(s) = v {
        // PostgreSQL text cannot hold NUL; no stored value contains one.
        if s.contains('\0') {
            return Err(ScimError::invalid_filter("filter values cannot contain NUL characters"));
        }
    }
    let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    let mut collate = "";
    let (lhs, rhs) = match (attr.kind, v) {
        (AttrType::Boolean, _) => {
            let x = match v {
                CompValue::Bool(x) => *x,
                CompValue::String(s) if s.eq_ignore_ascii_case("true") => true,
                CompValue::String(s) if s.eq_ignore_ascii_case("false") => false,
                _ => {
                    return Err(ScimError::invalid_filter(format!(
                        "'{}' is a boolean; compare it with true or false",
                        attr.name
                    )));
                }
            };
            (as_boolean(val), b.bind(x, "boolean"))
        }
        (AttrType::Integer | AttrType::Decimal, _) => {
            let x = match v {
                CompValue::Number(n) => n.as_f64().unwrap_or(0.0),
                CompValue::String(s) => match s.parse::<f64>() {
                    Ok(f) if f.is_finite() => f,
                    _ => {
                        return Err(ScimError::invalid_filter(format!(
                            "'{}' is numeric; '{s}' is not a number",
                            attr.name
                        )));
                    }
                },
                _ => return Err(ScimError::invalid_filter(format!("'{}' is numeric", attr.name))),
            };
            (as_number(val), b.bind(x, "float8"))
        }
        (AttrType::DateTime, CompValue::String(s)) if !substring => {
            let t = timestamp_value(s).ok_or_else(|| ScimError::invalid_filter(format!("'{s}' is not a dateTime")))?;
            // Bound as text (the driver only binds chrono/time types as
            // timestamptz), cast in SQL; normalised above so the cast holds.
            (
                as_timestamp(&val.text()),
                format!("({})::timestamptz", b.bind(t, "text")),
            )
        }
        _ => {
            let s = match v {
                CompValue::String(s) => s.clone(),
                other => other.to_string(),
            };
            collate = " COLLATE \"C\"";
            if !attr.case_insensitive() {
                (val.text(), b.bind(s, "text"))
            } else if let Val::Lowered(c) = val {
                // Lower-cased at write time in Rust: lower the value alike.
                ((*c).to_string(), b.bind(s.to_lowercase(), "text"))
            } else {
                (
                    format!("lower({})", val.text()),
                    format!("lower({})", b.bind(s, "text")),
                )
            }
        }
    };
    Ok(match op {
        CompareOp::Co => format!("strpos({lhs}, {rhs}) > 0"),
        CompareOp::Sw => format!("left({lhs}, length({rhs})) = {rhs}"),
        CompareOp::Ew => format!("right({lhs}, length({rhs})) = {rhs}"),
        CompareOp::Eq => format!("{lhs} = {rhs}"),
        CompareOp::Ne => format!("({lhs} IS NULL OR {lhs} <> {rhs})"),
        CompareOp::Gt => format!("{lhs}{collate} > {rhs}"),
        CompareOp::Ge => format!("{lhs}{collate} >= {rhs}"),
        CompareOp::Lt => format!("{lhs}{collate} < {rhs}"),
        CompareOp::Le => format!("{lhs}{collate} <= {rhs}"),
    })
}

/// A sort key with the ordering of the attribute's type.
fn sort_key(val: &Val, attr: &Attribute) -> String {
    match attr.kind {
        AttrType::Boolean => as_boolean(val),
        AttrType::Integer | AttrType::Decimal => as_number(val),
        _ if attr.case_insensitive() && !matches!(val, Val::Lowered(_)) => {
            format!("lower({}) COLLATE \"C\"", val.text())
        }
        _ => format!("{} COLLATE \"C\"", val.text()),
    }
}

/// `ORDER BY` for a sort key: absent values last, ties in insertion order.
pub fn order_by(
    b: &mut Builder,
    rt: &ResourceType,
    kind: Kind,
    sort_by: &str,
    order: SortOrder,
) -> Result<(), ScimError> {
    let (urn, name, sub) = scimitar_protocol::filter::split_attr_path(sort_by)
        .ok_or_else(|| ScimError::invalid_value(format!("invalid sortBy attribute '{sort_by}'")))?;
    let p = AttrPath { urn, name, sub };
    let key = match source(rt, kind, &p).map_err(|e| ScimError::invalid_value(e.detail))? {
        Source::Column(val, attr) => Some(sort_key(&val, &attr)),
        Source::Json(path, attr) => Some(sort_key(&Val::Json(format!("(r.doc #> {})", b.path(path))), &attr)),
        Source::JsonEach { path, attr, sub } => {
            // RFC 7644 §3.4.2.3: a multi-valued attribute sorts by its
            // primary value, else its first.
            let leaf = sub
                .clone()
                .or_else(|| attr.sub("value").cloned())
                .unwrap_or_else(|| attr.clone());
            let subname = match (&sub, attr.is_complex()) {
                (Some(s), _) => Some(s.name.clone()),
                (None, true) => Some("value".to_string()),
                (None, false) => None,
            };
            let val = match subname {
                None => format!("(r.doc #> {} -> 0)", b.path(path)),
                Some(s) => {
                    let sp = b.text(&s);
                    let arr = format!("r.doc #> {}", b.path(path.clone()));
                    let from = elements(b, path);
                    format!(
                        "COALESCE((SELECT e.value -> {sp} FROM {from} WHERE e.value -> 'primary' = 'true'::jsonb LIMIT 1), ({arr}) -> 0 -> {sp})"
                    )
                }
            };
            Some(sort_key(&Val::Json(val), &leaf))
        }
        // One resource type per query: the key is constant.
        Source::Constant(..) => None,
        Source::Members { .. } | Source::Groups { .. } => {
            return Err(ScimError::invalid_value(format!("cannot sort by '{sort_by}'")));
        }
    };
    let dir = if order == SortOrder::Descending { "DESC" } else { "ASC" };
    match key {
        Some(k) => b.push(&format!(" ORDER BY {k} {dir} NULLS LAST, r.seq ASC")),
        None => b.push(" ORDER BY r.seq ASC"),
    }
    Ok(())
}

/// The SQL of representative filters and sort keys, pinned: a change of
/// the lowering shows here first. The SQL text must depend only on a
/// filter's shape (statements are cached), and hot queries must keep the
/// shape their indexes serve. On a mismatch the test prints every case as
/// it is now, in the layout of `PINS`.
#[cfg(test)]
mod pins {
    use std::sync::Arc;

    use scimitar_protocol::ScimError;
    use scimitar_protocol::filter::parse_filter;
    use scimitar_protocol::list::SortOrder;
    use scimitar_protocol::schema::{ResourceType, builtin_resource_types};
    use scimitar_store::Kind;

    const CUSTOM: &str = "urn:example:custom:2.0:User";

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

    fn error(e: ScimError) -> String {
        format!("error {:?}: {}", e.scim_type, e.detail)
    }

    /// A builder holding what `list` binds before the filter.
    fn builder(kind: Kind) -> super::Builder {
        let mut b = super::Builder::default();
        b.bind(1_i64, "bigint");
        b.bind(kind.as_str().to_string(), "text");
        b
    }

    /// One case, as the lines that follow its header in `PINS`.
    fn render(header: &str) -> String {
        let mut parts = header.splitn(3, ' ');
        let (rt_name, what, text) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default().replace("\\0", "\0"),
        );
        let (kind, rt) = resource_type(rt_name);
        let mut b = builder(kind);
        let done = match what {
            "filter" => {
                let f = parse_filter(&text).unwrap_or_else(|e| panic!("{header}: {}", e.detail));
                super::lower_filter(&mut b, &rt, kind, &f)
            }
            "sort" => {
                let (by, order) = text.rsplit_once(' ').expect("sortBy and order");
                let order = if order == "descending" {
                    SortOrder::Descending
                } else {
                    SortOrder::Ascending
                };
                super::order_by(&mut b, &rt, kind, by, order)
            }
            other => panic!("unknown case kind '{other}'"),
        };
        match done {
            Err(e) => error(e),
            Ok(()) => format!("{}\n{:?}", b.sql, b.params),
        }
    }

    #[test]
    fn sql_is_pinned() {
        let mut now = String::new();
        let mut differ = Vec::new();
        let mut header: Option<&str> = None;
        let mut expected = String::new();
        let mut check = |header: &str, expected: &str, now: &mut String| {
            let got = render(header);
            now.push_str(header);
            now.push('\n');
            for line in got.lines() {
                now.push_str("    ");
                now.push_str(line);
                now.push('\n');
            }
            if got.trim_end() != expected.trim_end() {
                differ.push(header.to_string());
            }
        };
        for line in PINS.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(rest) = line.strip_prefix("    ") {
                expected.push_str(rest);
                expected.push('\n');
            } else {
                if let Some(h) = header.take() {
                    check(h, &expected, &mut now);
                }
                expected.clear();
                header = Some(line);
            }
        }
        if let Some(h) = header {
            check(h, &expected, &mut now);
        }
        if !differ.is_empty() {
            eprintln!("{now}");
            panic!("{} cases differ from PINS, first: {}", differ.len(), differ[0]);
        }
    }

    const PINS: &str = r##"
User filter userName eq "Alice"
    r.user_name_ci = $3::text
    [1, "User", "alice"]
User filter userName ne "x"
    (r.user_name_ci IS NULL OR r.user_name_ci <> $3::text)
    [1, "User", "x"]
User filter userName co "Al"
    strpos(r.user_name_ci, $3::text) > 0
    [1, "User", "al"]
User filter userName sw "a"
    left(r.user_name_ci, length($3::text)) = $3::text
    [1, "User", "a"]
User filter userName ew "E"
    right(r.user_name_ci, length($3::text)) = $3::text
    [1, "User", "e"]
User filter userName gt "b"
    r.user_name_ci COLLATE "C" > $3::text
    [1, "User", "b"]
User filter userName eq 5
    r.user_name_ci = $3::text
    [1, "User", "5"]
User filter urn:ietf:params:scim:schemas:core:2.0:User:userName eq "A"
    r.user_name_ci = $3::text
    [1, "User", "a"]
User filter id eq "u1"
    r.id = $3::text
    [1, "User", "u1"]
User filter id ne "u1"
    (r.id IS NULL OR r.id <> $3::text)
    [1, "User", "u1"]
User filter externalId eq "E-1"
    r.external_id = $3::text
    [1, "User", "E-1"]
User filter externalId pr
    r.external_id IS NOT NULL
    [1, "User"]
User filter displayName eq "Émile"
    lower(((r.doc #> $3::text[]) #>> '{}')) = lower($4::text)
    [1, "User", ["displayName"], "Émile"]
User filter displayName pr
    ((r.doc #> $3::text[]) #>> '{}') IS NOT NULL
    [1, "User", ["displayName"]]
User filter title eq true
    lower(((r.doc #> $3::text[]) #>> '{}')) = lower($4::text)
    [1, "User", ["title"], "true"]
User filter title le "M"
    lower(((r.doc #> $3::text[]) #>> '{}')) COLLATE "C" <= lower($4::text)
    [1, "User", ["title"], "M"]
User filter active eq true
    (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'boolean' THEN ((r.doc #> $3::text[]))::boolean END) = $4::boolean
    [1, "User", ["active"], true]
User filter active eq "True"
    (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'boolean' THEN ((r.doc #> $3::text[]))::boolean END) = $4::boolean
    [1, "User", ["active"], true]
User filter active ne false
    ((CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'boolean' THEN ((r.doc #> $3::text[]))::boolean END) IS NULL OR (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'boolean' THEN ((r.doc #> $3::text[]))::boolean END) <> $4::boolean)
    [1, "User", ["active"], false]
User filter userType eq null
    ((r.doc #> $3::text[]) #>> '{}') IS NULL
    [1, "User", ["userType"]]
User filter userType ne null
    ((r.doc #> $3::text[]) #>> '{}') IS NOT NULL
    [1, "User", ["userType"]]
User filter name.givenName sw "Al"
    left(lower(((r.doc #> $3::text[]) #>> '{}')), length(lower($4::text))) = lower($4::text)
    [1, "User", ["name", "givenName"], "Al"]
User filter emails.value eq "A@x.com"
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $4::text[]) = 'array' THEN r.doc #> $4::text[] ELSE '[]'::jsonb END) AS e(value) WHERE lower(((e.value -> $3::text) #>> '{}')) = lower($5::text))
    [1, "User", "value", ["emails"], "A@x.com"]
User filter emails eq "a@x.com"
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE lower(((e.value -> 'value') #>> '{}')) = lower($4::text))
    [1, "User", ["emails"], "a@x.com"]
User filter emails.value ne "a@x.com"
    NOT EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $4::text[]) = 'array' THEN r.doc #> $4::text[] ELSE '[]'::jsonb END) AS e(value) WHERE lower(((e.value -> $3::text) #>> '{}')) = lower($5::text))
    [1, "User", "value", ["emails"], "a@x.com"]
User filter emails pr
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE ((e.value -> 'value') #>> '{}') IS NOT NULL)
    [1, "User", ["emails"]]
User filter emails.primary eq true
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $4::text[]) = 'array' THEN r.doc #> $4::text[] ELSE '[]'::jsonb END) AS e(value) WHERE (CASE WHEN jsonb_typeof((e.value -> $3::text)) = 'boolean' THEN ((e.value -> $3::text))::boolean END) = $5::boolean)
    [1, "User", "primary", ["emails"], true]
User filter emails[type eq "work" and value co "@x"]
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE (lower(((e.value -> $4::text) #>> '{}')) = lower($5::text) AND strpos(lower(((e.value -> $6::text) #>> '{}')), lower($7::text)) > 0))
    [1, "User", ["emails"], "type", "work", "value", "@x"]
User filter emails[type eq "work"].value eq "a@x.com"
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE (lower(((e.value -> $4::text) #>> '{}')) = lower($5::text) AND lower(((e.value -> $6::text) #>> '{}')) = lower($7::text)))
    [1, "User", ["emails"], "type", "work", "value", "a@x.com"]
User filter emails[not (primary eq true)]
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE NOT ((CASE WHEN jsonb_typeof((e.value -> $4::text)) = 'boolean' THEN ((e.value -> $4::text))::boolean END) = $5::boolean))
    [1, "User", ["emails"], "primary", true]
User filter emails[type pr or value ew ".org"]
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE (((e.value -> $4::text) #>> '{}') IS NOT NULL OR right(lower(((e.value -> $5::text) #>> '{}')), length(lower($6::text))) = lower($6::text)))
    [1, "User", ["emails"], "type", "value", ".org"]
User filter emails ne null
    NOT EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE ((e.value -> 'value') #>> '{}') IS NULL)
    [1, "User", ["emails"]]
User filter addresses[locality eq "Paris"]
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE lower(((e.value -> $4::text) #>> '{}')) = lower($5::text))
    [1, "User", ["addresses"], "locality", "Paris"]
User filter addresses eq "x"
    error Some(InvalidFilter): 'addresses' is complex; name a sub-attribute
User filter urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "R&D"
    lower(((r.doc #> $3::text[]) #>> '{}')) = lower($4::text)
    [1, "User", ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "department"], "R&D"]
User filter department ne "Sales"
    (lower(((r.doc #> $3::text[]) #>> '{}')) IS NULL OR lower(((r.doc #> $3::text[]) #>> '{}')) <> lower($4::text))
    [1, "User", ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "department"], "Sales"]
User filter manager eq "u1"
    lower(((r.doc #> $3::text[]) #>> '{}')) = lower($4::text)
    [1, "User", ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", "value"], "u1"]
User filter urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "u2"
    lower(((r.doc #> $3::text[]) #>> '{}')) = lower($4::text)
    [1, "User", ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", "value"], "u2"]
User filter manager[value eq "u1"]
    (lower(((r.doc #> $3::text[] -> $4::text) #>> '{}')) = lower($5::text))
    [1, "User", ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager"], "value", "u1"]
User filter manager[displayName eq "Bob" or value pr]
    ((lower(((r.doc #> $3::text[] -> $4::text) #>> '{}')) = lower($5::text) OR ((r.doc #> $3::text[] -> $6::text) #>> '{}') IS NOT NULL))
    [1, "User", ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager"], "displayName", "Bob", "value"]
User filter manager.value pr
    ((r.doc #> $3::text[]) #>> '{}') IS NOT NULL
    [1, "User", ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", "value"]]
User filter groups eq "g1"
    EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.member_id = r.id AND lower(m.group_id) = lower($3::text))
    [1, "User", "g1"]
User filter groups.value eq "G1"
    EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.member_id = r.id AND lower(m.group_id) = lower($3::text))
    [1, "User", "G1"]
User filter groups.value ne "g1"
    NOT EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.member_id = r.id AND lower(m.group_id) = lower($3::text))
    [1, "User", "g1"]
User filter groups pr
    EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.member_id = r.id AND m.group_id IS NOT NULL)
    [1, "User"]
User filter not (groups pr)
    NOT (EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.member_id = r.id AND m.group_id IS NOT NULL))
    [1, "User"]
User filter meta.created gt "2024-03-01T00:00:00Z"
    (CASE WHEN r.created ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$' THEN (r.created)::timestamptz END) > ($3::text)::timestamptz
    [1, "User", "2024-03-01T00:00:00Z"]
User filter meta.lastModified ne "2024-01-01T00:00:00.000Z"
    ((CASE WHEN r.modified ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$' THEN (r.modified)::timestamptz END) IS NULL OR (CASE WHEN r.modified ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$' THEN (r.modified)::timestamptz END) <> ($3::text)::timestamptz)
    [1, "User", "2024-01-01T00:00:00Z"]
User filter meta.created lt "2024-03-01T01:00:00+02:00"
    (CASE WHEN r.created ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$' THEN (r.created)::timestamptz END) < ($3::text)::timestamptz
    [1, "User", "2024-03-01T01:00:00+02:00"]
User filter meta.created ge "2024-03-01"
    (CASE WHEN r.created ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$' THEN (r.created)::timestamptz END) >= ($3::text)::timestamptz
    [1, "User", "2024-03-01T00:00:00Z"]
User filter meta.created le "2024-03-01T10:00"
    error Some(InvalidFilter): '2024-03-01T10:00' is not a dateTime
User filter meta.created co "2024"
    strpos(r.created, $3::text) > 0
    [1, "User", "2024"]
User filter meta.created eq 5
    r.created = $3::text
    [1, "User", "5"]
User filter meta.resourceType eq "User"
    TRUE
    [1, "User"]
User filter meta.resourceType ne "User"
    FALSE
    [1, "User"]
User filter meta.resourceType eq "Group"
    FALSE
    [1, "User"]
User filter meta.resourceType pr
    TRUE
    [1, "User"]
User filter (userName sw "a" or userName sw "b") and active eq true
    ((left(r.user_name_ci, length($3::text)) = $3::text OR left(r.user_name_ci, length($4::text)) = $4::text) AND (CASE WHEN jsonb_typeof((r.doc #> $5::text[])) = 'boolean' THEN ((r.doc #> $5::text[]))::boolean END) = $6::boolean)
    [1, "User", "a", "b", ["active"], true]
User filter not (userName eq "alice" or emails.type eq "home")
    NOT ((r.user_name_ci = $3::text OR EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $5::text[]) = 'array' THEN r.doc #> $5::text[] ELSE '[]'::jsonb END) AS e(value) WHERE lower(((e.value -> $4::text) #>> '{}')) = lower($6::text))))
    [1, "User", "alice", "type", ["emails"], "home"]
User filter userName eq "a" and (title pr or not (active eq false))
    (r.user_name_ci = $3::text AND (((r.doc #> $4::text[]) #>> '{}') IS NOT NULL OR NOT ((CASE WHEN jsonb_typeof((r.doc #> $5::text[])) = 'boolean' THEN ((r.doc #> $5::text[]))::boolean END) = $6::boolean)))
    [1, "User", "a", ["title"], ["active"], false]
User filter userName eq a\0b
    error Some(InvalidFilter): filter values cannot contain NUL characters
User filter active eq tr\0ue
    error Some(InvalidFilter): filter values cannot contain NUL characters
User filter nope eq "x"
    error Some(InvalidFilter): unknown attribute 'nope'
User filter active gt true
    error Some(InvalidFilter): operator 'gt' cannot be used on boolean attribute 'active'
User filter active eq "maybe"
    error Some(InvalidFilter): 'active' is a boolean; compare it with true or false
User filter active eq 1
    error Some(InvalidFilter): 'active' is a boolean; compare it with true or false
User filter meta.created gt "yesterday"
    error Some(InvalidFilter): 'yesterday' is not a dateTime
User filter userName[value eq "x"]
    error Some(InvalidFilter): 'userName' is not multi-valued
User filter displayName[value eq "x"]
    error Some(InvalidFilter): 'displayName' is not multi-valued
User filter name[givenName eq "x"]
    error Some(InvalidFilter): 'name' is complex; name a sub-attribute
User filter name eq "x"
    error Some(InvalidFilter): 'name' is complex; name a sub-attribute
User filter groups[value eq "x"]
    error Some(InvalidFilter): 'groups' is not multi-valued
User filter groups.display eq "x"
    error Some(InvalidFilter): 'groups.display' cannot be used in a filter
User filter manager.displayName eq "x"
    error Some(InvalidFilter): 'manager.displayName' cannot be used in a filter
User filter emails[nope eq "x"]
    error Some(InvalidFilter): 'emails' has no sub-attribute 'nope'
User filter emails[urn:x:y eq "x"]
    error Some(InvalidFilter): 'urn:x:y' is not a sub-attribute of 'emails'
User filter meta.version eq "1"
    error Some(InvalidFilter): 'meta.version' cannot be used in a filter
User filter meta eq "x"
    error Some(InvalidFilter): 'meta' cannot be used in a filter
User filter meta.resourceType co "U"
    error Some(InvalidFilter): meta.resourceType supports eq and ne
User filter meta.resourceType eq 1
    error Some(InvalidFilter): meta.resourceType is a string
User filter meta.resourceType gt null
    error Some(InvalidFilter): operator 'gt' needs a string or number value
User filter userName co null
    error Some(InvalidFilter): operator 'co' needs a string or number value
User filter urn:example:unknown:ext:thing eq "x"
    error Some(InvalidFilter): unknown attribute 'urn:example:unknown:ext:thing'
Group filter displayName eq "Admins"
    r.display_name_ci = $3::text
    [1, "Group", "admins"]
Group filter displayName co "adm"
    strpos(r.display_name_ci, $3::text) > 0
    [1, "Group", "adm"]
Group filter id eq "g1" or displayName eq "EMPTY"
    (r.id = $3::text OR r.display_name_ci = $4::text)
    [1, "Group", "g1", "empty"]
Group filter members[value eq "u1"]
    EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND lower(m.member_id) = lower($3::text))
    [1, "Group", "u1"]
Group filter members[value eq "U1" and type eq "User"]
    EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND (lower(m.member_id) = lower($3::text) AND lower(m.member_type) = lower($4::text)))
    [1, "Group", "U1", "User"]
Group filter members[display sw "a"]
    EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND left(lower(m.display), length(lower($3::text))) = lower($3::text))
    [1, "Group", "a"]
Group filter members eq "u1"
    EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND m.member_id = $3::text)
    [1, "Group", "u1"]
Group filter members.value eq "U1"
    EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND lower(m.member_id) = lower($3::text))
    [1, "Group", "U1"]
Group filter members.type eq "Group"
    EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND lower(m.member_type) = lower($3::text))
    [1, "Group", "Group"]
Group filter members.display co "a"
    EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND strpos(lower(m.display), lower($3::text)) > 0)
    [1, "Group", "a"]
Group filter members ne "u1"
    NOT EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND m.member_id = $3::text)
    [1, "Group", "u1"]
Group filter members.value ne "u1"
    NOT EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND lower(m.member_id) = lower($3::text))
    [1, "Group", "u1"]
Group filter members pr
    EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND m.member_id IS NOT NULL)
    [1, "Group"]
Group filter not (members pr)
    NOT (EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND m.member_id IS NOT NULL))
    [1, "Group"]
Group filter members[$ref eq "x"]
    error Some(InvalidFilter): 'members.$ref' cannot be used in a filter
Group filter members.$ref eq "x"
    error Some(InvalidFilter): 'members.$ref' cannot be used in a filter
Group filter meta.resourceType eq "Group"
    TRUE
    [1, "Group"]
Group filter userName eq "x"
    error Some(InvalidFilter): unknown attribute 'userName'
Custom filter level gt 6
    (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'number' THEN ((r.doc #> $3::text[]))::float8 END) > $4::float8
    [1, "User", ["urn:example:custom:2.0:User", "level"], 6.0]
Custom filter level eq "5"
    (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'number' THEN ((r.doc #> $3::text[]))::float8 END) = $4::float8
    [1, "User", ["urn:example:custom:2.0:User", "level"], 5.0]
Custom filter level eq 18446744073709551615
    (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'number' THEN ((r.doc #> $3::text[]))::float8 END) = $4::float8
    [1, "User", ["urn:example:custom:2.0:User", "level"], 1.8446744073709552e19]
Custom filter level co "1"
    error Some(InvalidFilter): operator 'co' cannot be used on numeric attribute 'level'
Custom filter level eq "abc"
    error Some(InvalidFilter): 'level' is numeric; 'abc' is not a number
Custom filter level eq true
    error Some(InvalidFilter): 'level' is numeric
Custom filter score le 2.5
    (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'number' THEN ((r.doc #> $3::text[]))::float8 END) <= $4::float8
    [1, "User", ["urn:example:custom:2.0:User", "score"], 2.5]
Custom filter hired gt "2020-06-01T00:00:00Z"
    (CASE WHEN ((r.doc #> $3::text[]) #>> '{}') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$' THEN (((r.doc #> $3::text[]) #>> '{}'))::timestamptz END) > ($4::text)::timestamptz
    [1, "User", ["urn:example:custom:2.0:User", "hired"], "2020-06-01T00:00:00Z"]
Custom filter hired ne "2020-01-01T00:00:00Z"
    ((CASE WHEN ((r.doc #> $3::text[]) #>> '{}') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$' THEN (((r.doc #> $3::text[]) #>> '{}'))::timestamptz END) IS NULL OR (CASE WHEN ((r.doc #> $3::text[]) #>> '{}') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$' THEN (((r.doc #> $3::text[]) #>> '{}'))::timestamptz END) <> ($4::text)::timestamptz)
    [1, "User", ["urn:example:custom:2.0:User", "hired"], "2020-01-01T00:00:00Z"]
Custom filter vip eq true
    (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'boolean' THEN ((r.doc #> $3::text[]))::boolean END) = $4::boolean
    [1, "User", ["urn:example:custom:2.0:User", "vip"], true]
Custom filter vip ne "FALSE"
    ((CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'boolean' THEN ((r.doc #> $3::text[]))::boolean END) IS NULL OR (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'boolean' THEN ((r.doc #> $3::text[]))::boolean END) <> $4::boolean)
    [1, "User", ["urn:example:custom:2.0:User", "vip"], false]
Custom filter code eq "AbC"
    ((r.doc #> $3::text[]) #>> '{}') = $4::text
    [1, "User", ["urn:example:custom:2.0:User", "code"], "AbC"]
Custom filter code co "C"
    strpos(((r.doc #> $3::text[]) #>> '{}'), $4::text) > 0
    [1, "User", ["urn:example:custom:2.0:User", "code"], "C"]
Custom filter tags eq "Blue"
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE lower((e.value #>> '{}')) = lower($4::text))
    [1, "User", ["urn:example:custom:2.0:User", "tags"], "Blue"]
Custom filter tags[value sw "GR"]
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE left(lower((e.value #>> '{}')), length(lower($4::text))) = lower($4::text))
    [1, "User", ["urn:example:custom:2.0:User", "tags"], "GR"]
Custom filter tags ne "red"
    NOT EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE lower((e.value #>> '{}')) = lower($4::text))
    [1, "User", ["urn:example:custom:2.0:User", "tags"], "red"]
Custom filter tags pr
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE (e.value #>> '{}') IS NOT NULL)
    [1, "User", ["urn:example:custom:2.0:User", "tags"]]
Custom filter urn:example:custom:2.0:User:level pr
    ((r.doc #> $3::text[]) #>> '{}') IS NOT NULL
    [1, "User", ["urn:example:custom:2.0:User", "level"]]
Custom filter badge eq "b1"
    lower(((r.doc #> $3::text[]) #>> '{}')) = lower($4::text)
    [1, "User", ["urn:example:custom:2.0:User", "badge", "value"], "b1"]
Custom filter badge[value eq "b1" and rank ge 2]
    ((lower(((r.doc #> $3::text[] -> $4::text) #>> '{}')) = lower($5::text) AND (CASE WHEN jsonb_typeof((r.doc #> $3::text[] -> $6::text)) = 'number' THEN ((r.doc #> $3::text[] -> $6::text))::float8 END) >= $7::float8))
    [1, "User", ["urn:example:custom:2.0:User", "badge"], "value", "b1", "rank", 2.0]
Custom filter awards[rank gt 2 and primary eq "true"]
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE ((CASE WHEN jsonb_typeof((e.value -> $4::text)) = 'number' THEN ((e.value -> $4::text))::float8 END) > $5::float8 AND (CASE WHEN jsonb_typeof((e.value -> $6::text)) = 'boolean' THEN ((e.value -> $6::text))::boolean END) = $7::boolean))
    [1, "User", ["urn:example:custom:2.0:User", "awards"], "rank", 2.0, "primary", true]
Custom filter awards.rank lt 3
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $4::text[]) = 'array' THEN r.doc #> $4::text[] ELSE '[]'::jsonb END) AS e(value) WHERE (CASE WHEN jsonb_typeof((e.value -> $3::text)) = 'number' THEN ((e.value -> $3::text))::float8 END) < $5::float8)
    [1, "User", "rank", ["urn:example:custom:2.0:User", "awards"], 3.0]
Custom filter awards eq "x"
    error Some(InvalidFilter): 'awards' is complex; name a sub-attribute
Custom filter value eq "x"
    lower(((r.doc #> $3::text[]) #>> '{}')) = lower($4::text)
    [1, "User", ["urn:example:custom:2.0:User", "value"], "x"]
Custom filter value[value eq "x"]
    (lower((e.value #>> '{}')) = lower($4::text))
    [1, "User", ["urn:example:custom:2.0:User"], "x"]
User sort userName ascending
     ORDER BY r.user_name_ci COLLATE "C" ASC NULLS LAST, r.seq ASC
    [1, "User"]
User sort userName descending
     ORDER BY r.user_name_ci COLLATE "C" DESC NULLS LAST, r.seq ASC
    [1, "User"]
User sort displayName ascending
     ORDER BY lower(((r.doc #> $3::text[]) #>> '{}')) COLLATE "C" ASC NULLS LAST, r.seq ASC
    [1, "User", ["displayName"]]
User sort title descending
     ORDER BY lower(((r.doc #> $3::text[]) #>> '{}')) COLLATE "C" DESC NULLS LAST, r.seq ASC
    [1, "User", ["title"]]
User sort emails ascending
     ORDER BY lower((COALESCE((SELECT e.value -> $3::text FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $5::text[]) = 'array' THEN r.doc #> $5::text[] ELSE '[]'::jsonb END) AS e(value) WHERE e.value -> 'primary' = 'true'::jsonb LIMIT 1), (r.doc #> $4::text[]) -> 0 -> $3::text) #>> '{}')) COLLATE "C" ASC NULLS LAST, r.seq ASC
    [1, "User", "value", ["emails"], ["emails"]]
User sort emails.value descending
     ORDER BY lower((COALESCE((SELECT e.value -> $3::text FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $5::text[]) = 'array' THEN r.doc #> $5::text[] ELSE '[]'::jsonb END) AS e(value) WHERE e.value -> 'primary' = 'true'::jsonb LIMIT 1), (r.doc #> $4::text[]) -> 0 -> $3::text) #>> '{}')) COLLATE "C" DESC NULLS LAST, r.seq ASC
    [1, "User", "value", ["emails"], ["emails"]]
User sort emails.primary ascending
     ORDER BY (CASE WHEN jsonb_typeof(COALESCE((SELECT e.value -> $3::text FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $5::text[]) = 'array' THEN r.doc #> $5::text[] ELSE '[]'::jsonb END) AS e(value) WHERE e.value -> 'primary' = 'true'::jsonb LIMIT 1), (r.doc #> $4::text[]) -> 0 -> $3::text)) = 'boolean' THEN (COALESCE((SELECT e.value -> $3::text FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $5::text[]) = 'array' THEN r.doc #> $5::text[] ELSE '[]'::jsonb END) AS e(value) WHERE e.value -> 'primary' = 'true'::jsonb LIMIT 1), (r.doc #> $4::text[]) -> 0 -> $3::text))::boolean END) ASC NULLS LAST, r.seq ASC
    [1, "User", "primary", ["emails"], ["emails"]]
User sort active ascending
     ORDER BY (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'boolean' THEN ((r.doc #> $3::text[]))::boolean END) ASC NULLS LAST, r.seq ASC
    [1, "User", ["active"]]
User sort meta.created descending
     ORDER BY r.created COLLATE "C" DESC NULLS LAST, r.seq ASC
    [1, "User"]
User sort meta.lastModified ascending
     ORDER BY r.modified COLLATE "C" ASC NULLS LAST, r.seq ASC
    [1, "User"]
User sort meta.resourceType descending
     ORDER BY r.seq ASC
    [1, "User"]
User sort id descending
     ORDER BY r.id COLLATE "C" DESC NULLS LAST, r.seq ASC
    [1, "User"]
User sort externalId ascending
     ORDER BY r.external_id COLLATE "C" ASC NULLS LAST, r.seq ASC
    [1, "User"]
User sort name.givenName ascending
     ORDER BY lower(((r.doc #> $3::text[]) #>> '{}')) COLLATE "C" ASC NULLS LAST, r.seq ASC
    [1, "User", ["name", "givenName"]]
User sort urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department descending
     ORDER BY lower(((r.doc #> $3::text[]) #>> '{}')) COLLATE "C" DESC NULLS LAST, r.seq ASC
    [1, "User", ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "department"]]
User sort manager ascending
     ORDER BY lower(((r.doc #> $3::text[]) #>> '{}')) COLLATE "C" ASC NULLS LAST, r.seq ASC
    [1, "User", ["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", "manager", "value"]]
User sort addresses ascending
     ORDER BY (COALESCE((SELECT e.value -> $3::text FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $5::text[]) = 'array' THEN r.doc #> $5::text[] ELSE '[]'::jsonb END) AS e(value) WHERE e.value -> 'primary' = 'true'::jsonb LIMIT 1), (r.doc #> $4::text[]) -> 0 -> $3::text) #>> '{}') COLLATE "C" ASC NULLS LAST, r.seq ASC
    [1, "User", "value", ["addresses"], ["addresses"]]
User sort groups ascending
    error Some(InvalidValue): cannot sort by 'groups'
User sort nope ascending
    error Some(InvalidValue): unknown attribute 'nope'
User sort emails.nope ascending
    error Some(InvalidValue): unknown attribute 'emails.nope'
User sort manager.displayName ascending
    error Some(InvalidValue): 'manager.displayName' cannot be used in a filter
User sort bad..path ascending
    error Some(InvalidValue): invalid sortBy attribute 'bad..path'
Group sort displayName ascending
     ORDER BY r.display_name_ci COLLATE "C" ASC NULLS LAST, r.seq ASC
    [1, "Group"]
Group sort members ascending
    error Some(InvalidValue): cannot sort by 'members'
Custom sort level descending
     ORDER BY (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'number' THEN ((r.doc #> $3::text[]))::float8 END) DESC NULLS LAST, r.seq ASC
    [1, "User", ["urn:example:custom:2.0:User", "level"]]
Custom sort score ascending
     ORDER BY (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'number' THEN ((r.doc #> $3::text[]))::float8 END) ASC NULLS LAST, r.seq ASC
    [1, "User", ["urn:example:custom:2.0:User", "score"]]
Custom sort hired descending
     ORDER BY ((r.doc #> $3::text[]) #>> '{}') COLLATE "C" DESC NULLS LAST, r.seq ASC
    [1, "User", ["urn:example:custom:2.0:User", "hired"]]
Custom sort vip ascending
     ORDER BY (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'boolean' THEN ((r.doc #> $3::text[]))::boolean END) ASC NULLS LAST, r.seq ASC
    [1, "User", ["urn:example:custom:2.0:User", "vip"]]
Custom sort code ascending
     ORDER BY ((r.doc #> $3::text[]) #>> '{}') COLLATE "C" ASC NULLS LAST, r.seq ASC
    [1, "User", ["urn:example:custom:2.0:User", "code"]]
Custom sort tags ascending
     ORDER BY lower(((r.doc #> $3::text[] -> 0) #>> '{}')) COLLATE "C" ASC NULLS LAST, r.seq ASC
    [1, "User", ["urn:example:custom:2.0:User", "tags"]]
Custom sort awards ascending
     ORDER BY (COALESCE((SELECT e.value -> $3::text FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $5::text[]) = 'array' THEN r.doc #> $5::text[] ELSE '[]'::jsonb END) AS e(value) WHERE e.value -> 'primary' = 'true'::jsonb LIMIT 1), (r.doc #> $4::text[]) -> 0 -> $3::text) #>> '{}') COLLATE "C" ASC NULLS LAST, r.seq ASC
    [1, "User", "value", ["urn:example:custom:2.0:User", "awards"], ["urn:example:custom:2.0:User", "awards"]]
Custom sort awards.rank descending
     ORDER BY (CASE WHEN jsonb_typeof(COALESCE((SELECT e.value -> $3::text FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $5::text[]) = 'array' THEN r.doc #> $5::text[] ELSE '[]'::jsonb END) AS e(value) WHERE e.value -> 'primary' = 'true'::jsonb LIMIT 1), (r.doc #> $4::text[]) -> 0 -> $3::text)) = 'number' THEN (COALESCE((SELECT e.value -> $3::text FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $5::text[]) = 'array' THEN r.doc #> $5::text[] ELSE '[]'::jsonb END) AS e(value) WHERE e.value -> 'primary' = 'true'::jsonb LIMIT 1), (r.doc #> $4::text[]) -> 0 -> $3::text))::float8 END) DESC NULLS LAST, r.seq ASC
    [1, "User", "rank", ["urn:example:custom:2.0:User", "awards"], ["urn:example:custom:2.0:User", "awards"]]
"##;
}
