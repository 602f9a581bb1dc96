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
