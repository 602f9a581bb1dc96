//! Lowering of SCIM filters and sort keys to SQLite SQL.
//!
//! Column names and JSON paths come only from the schema (canonical
//! attribute names), never from request text; every value is a bound
//! parameter. Hot attributes use indexed columns; the rest are read from
//! the JSON document with `json_extract`/`json_each`. Case-insensitive
//! comparisons use `scim_lower`, a Unicode-aware function registered on
//! every connection (SQLite's own `lower` only folds ASCII).

use rusqlite::types::Value as Sql;
use scimitar_protocol::ScimError;
use scimitar_protocol::eval::check_operator;
use scimitar_protocol::filter::{AttrPath, CompValue, CompareOp, Filter};
use scimitar_protocol::list::SortOrder;
use scimitar_protocol::schema::{AttrType, Attribute, ResourceType};
use scimitar_store::Kind;

#[derive(Default)]
pub struct Builder {
    pub sql: String,
    pub params: Vec<Sql>,
}

impl Builder {
    fn push(&mut self, s: &str) {
        self.sql.push_str(s);
    }
    fn bind(&mut self, v: Sql) {
        self.sql.push('?');
        self.params.push(v);
    }
}

/// Where an attribute's value comes from.
enum Source {
    /// A column expression with its attribute type.
    Column(&'static str, Attribute),
    /// A JSON path into `r.doc` (single-valued).
    Json(String, Attribute),
    /// A multi-valued attribute in the doc: json_each over this path, then
    /// an optional sub-attribute of each element.
    JsonEach {
        path: String,
        attr: Attribute,
        sub: Option<Attribute>,
    },
    /// Group members (`members`, `members.value`, `members.type`).
    Members { sub: Option<Attribute>, attr: Attribute },
    /// User groups (`groups`, `groups.value`).
    Groups { attr: Attribute },
    /// meta.resourceType: a constant.
    Constant(&'static str, Attribute),
}

fn json_path(ext: Option<&str>, name: &str, sub: Option<&str>) -> String {
    let mut p = String::from("$");
    if let Some(e) = ext {
        p.push_str(&format!(".\"{e}\""));
    }
    p.push_str(&format!(".\"{name}\""));
    if let Some(s) = sub {
        p.push_str(&format!(".\"{s}\""));
    }
    p
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
            ("id", None) => Source::Column("r.id", leaf),
            ("externalId", None) => Source::Column("r.external_id", leaf),
            ("meta", Some("created")) => Source::Column("r.created", leaf),
            ("meta", Some("lastModified")) => Source::Column("r.modified", leaf),
            ("meta", Some("resourceType")) => Source::Constant(kind.as_str(), leaf),
            _ => return Err(ScimError::invalid_filter(format!("'{p}' cannot be used in a filter"))),
        });
    }
    let ext = if r.extension { r.schema } else { None };
    match (kind, ext, attr.name.as_str()) {
        (Kind::User, None, "userName") => return Ok(Source::Column("r.user_name_ci", leaf)),
        (Kind::Group, None, "displayName") => return Ok(Source::Column("r.display_name_ci", leaf)),
        (Kind::Group, None, "members") => {
            return match r.sub.map(|s| s.name.as_str()) {
                None | Some("value") | Some("type") | Some("display") => Ok(Source::Members {
                    sub: r.sub.cloned(),
                    attr,
                }),
                _ => Err(ScimError::invalid_filter(format!("'{p}' cannot be used in a filter"))),
            };
        }
        (Kind::User, None, "groups") => {
            return match r.sub.map(|s| s.name.as_str()) {
                None | Some("value") => Ok(Source::Groups { attr }),
                _ => Err(ScimError::invalid_filter(format!("'{p}' cannot be used in a filter"))),
            };
        }
        _ => {}
    }
    if attr.name == "manager" && r.sub.is_some_and(|s| s.name != "value") {
        return Err(ScimError::invalid_filter(format!("'{p}' cannot be used in a filter")));
    }
    if attr.multi_valued {
        return Ok(Source::JsonEach {
            path: json_path(ext, &attr.name, None),
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
        return Ok(Source::Json(json_path(ext, &attr.name, Some("value")), value));
    }
    Ok(Source::Json(
        json_path(ext, &attr.name, r.sub.map(|s| s.name.as_str())),
        leaf,
    ))
}

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
                    b.push("EXISTS (SELECT 1 FROM json_each(r.doc, ");
                    b.bind(Sql::Text(path));
                    b.push(") e WHERE ");
                    lower_element(b, &attr, inner, &ElementCx::Json)?;
                    b.push(")");
                }
                Source::Members { attr, .. } => {
                    b.push(
                        "EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND ",
                    );
                    lower_element(b, &attr, inner, &ElementCx::Member)?;
                    b.push(")");
                }
                Source::Json(path, _) if path.ends_with(".\"value\"") => {
                    // A single-valued complex attribute (manager[value eq "x"]).
                    let r = rt
                        .resolve(p.urn.as_deref(), &p.name, None)
                        .ok_or_else(|| ScimError::invalid_filter(format!("unknown attribute '{p}'")))?;
                    let base = path.trim_end_matches(".\"value\"").to_string();
                    b.push("(SELECT ");
                    b.push("EXISTS (SELECT 1 WHERE ");
                    lower_element(b, r.attr, inner, &ElementCx::Object(base))?;
                    b.push("))");
                }
                _ => return Err(ScimError::invalid_filter(format!("'{p}' is not multi-valued"))),
            }
        }
    }
    Ok(())
}

enum ElementCx {
    /// `e.value` of a json_each row.
    Json,
    /// A row `m` of the members table.
    Member,
    /// A complex object at this JSON path of `r.doc`.
    Object(String),
}

fn lower_element(b: &mut Builder, attr: &Attribute, f: &Filter, cx: &ElementCx) -> Result<(), ScimError> {
    match f {
        Filter::And(items) | Filter::Or(items) => {
            let sep = if matches!(f, Filter::And(_)) { " AND " } else { " OR " };
            b.push("(");
            for (i, it) in items.iter().enumerate() {
                if i > 0 {
                    b.push(sep);
                }
                lower_element(b, attr, it, cx)?;
            }
            b.push(")");
            Ok(())
        }
        Filter::Not(inner) => {
            b.push("NOT (");
            lower_element(b, attr, inner, cx)?;
            b.push(")");
            Ok(())
        }
        Filter::ValuePath(..) => Err(ScimError::invalid_filter("value paths cannot be nested")),
        Filter::Present(p) | Filter::Compare(p, ..) => {
            if p.urn.is_some() || p.sub.is_some() {
                return Err(ScimError::invalid_filter(format!(
                    "'{p}' is not a sub-attribute of '{}'",
                    attr.name
                )));
            }
            let (expr, sub) = if attr.is_complex() {
                let sub = attr.sub(&p.name).ok_or_else(|| {
                    ScimError::invalid_filter(format!("'{}' has no sub-attribute '{}'", attr.name, p.name))
                })?;
                let expr = match cx {
                    ElementCx::Json => Expr::Bound("json_extract(e.value, ?)", format!("$.\"{}\"", sub.name)),
                    ElementCx::Object(base) => {
                        Expr::Bound("json_extract(r.doc, ?)", format!("{base}.\"{}\"", sub.name))
                    }
                    ElementCx::Member => match sub.name.as_str() {
                        "value" => Expr::Plain("m.member_id"),
                        "type" => Expr::Plain("m.member_type"),
                        "display" => Expr::Plain("m.display"),
                        _ => {
                            return Err(ScimError::invalid_filter(format!(
                                "'members.{}' cannot be used in a filter",
                                sub.name
                            )));
                        }
                    },
                };
                (expr, sub.clone())
            } else if p.name.eq_ignore_ascii_case("value") {
                (Expr::Plain("e.value"), attr.clone())
            } else {
                return Err(ScimError::invalid_filter(format!(
                    "'{}' has no sub-attribute '{}'",
                    attr.name, p.name
                )));
            };
            match f {
                Filter::Present(_) => {
                    expr.write(b);
                    b.push(" IS NOT NULL");
                    Ok(())
                }
                Filter::Compare(_, op, v) => compare(b, &expr, &sub, *op, v),
                _ => Ok(()),
            }
        }
    }
}

/// An SQL expression, possibly with one bound argument (a JSON path).
enum Expr {
    Plain(&'static str),
    Bound(&'static str, String),
}

impl Expr {
    fn write(&self, b: &mut Builder) {
        match self {
            Expr::Plain(s) => b.push(s),
            Expr::Bound(tmpl, arg) => {
                let (before, after) = tmpl.split_once('?').unwrap_or((tmpl, ""));
                b.push(before);
                b.bind(Sql::Text(arg.clone()));
                b.push(after);
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
    match source(rt, kind, p)? {
        Source::Column(col, attr) => match cmp {
            None => {
                b.push(col);
                b.push(" IS NOT NULL");
                Ok(())
            }
            Some((op, v)) => compare(b, &Expr::Plain(col), &attr, op, v),
        },
        Source::Constant(c, attr) => match cmp {
            None => {
                b.push("1");
                Ok(())
            }
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
                b.push(if hit { "1" } else { "0" });
                Ok(())
            }
        },
        Source::Json(path, attr) => {
            let expr = Expr::Bound("json_extract(r.doc, ?)", path);
            match cmp {
                None => {
                    expr.write(b);
                    b.push(" IS NOT NULL");
                    Ok(())
                }
                Some((op, v)) => compare(b, &expr, &attr, op, v),
            }
        }
        Source::JsonEach { path, attr, sub } => {
            let (elem_attr, expr) = match (&sub, attr.is_complex()) {
                (Some(s), _) => (
                    s.clone(),
                    Expr::Bound("json_extract(e.value, ?)", format!("$.\"{}\"", s.name)),
                ),
                (None, true) => match attr.sub("value") {
                    Some(v) => (v.clone(), Expr::Plain("json_extract(e.value, '$.value')")),
                    None => {
                        return Err(ScimError::invalid_filter(format!(
                            "'{p}' is complex; name a sub-attribute"
                        )));
                    }
                },
                (None, false) => (attr.clone(), Expr::Plain("e.value")),
            };
            let negate = matches!(cmp, Some((CompareOp::Ne, _)));
            // `ne` on a multi-valued attribute: no value equals.
            b.push(if negate {
                "NOT EXISTS (SELECT 1 FROM json_each(r.doc, "
            } else {
                "EXISTS (SELECT 1 FROM json_each(r.doc, "
            });
            b.bind(Sql::Text(path));
            b.push(") e WHERE ");
            match cmp {
                None => {
                    expr.write(b);
                    b.push(" IS NOT NULL");
                }
                Some((op, v)) => {
                    let op = if negate { CompareOp::Eq } else { op };
                    compare(b, &expr, &elem_attr, op, v)?;
                }
            }
            b.push(")");
            Ok(())
        }
        Source::Members { sub, .. } => {
            let col = match sub.as_ref().map(|s| s.name.as_str()) {
                None | Some("value") => "m.member_id",
                Some("type") => "m.member_type",
                _ => "m.display",
            };
            let leaf = sub.unwrap_or_else(|| string_attr("value", true));
            members_exists(b, "m.group_id = r.id", col, &leaf, cmp)
        }
        Source::Groups { attr } => {
            let leaf = attr.sub("value").cloned().unwrap_or_else(|| string_attr("value", true));
            members_exists(b, "m.member_id = r.id", "m.group_id", &leaf, cmp)
        }
    }
}

fn members_exists(
    b: &mut Builder,
    join: &str,
    col: &'static str,
    leaf: &Attribute,
    cmp: Option<(CompareOp, &CompValue)>,
) -> Result<(), ScimError> {
    let negate = matches!(cmp, Some((CompareOp::Ne, _)));
    b.push(if negate { "NOT EXISTS" } else { "EXISTS" });
    b.push(" (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND ");
    b.push(join);
    b.push(" AND ");
    match cmp {
        None => {
            b.push(col);
            b.push(" IS NOT NULL");
        }
        Some((op, v)) => {
            let op = if negate { CompareOp::Eq } else { op };
            compare(b, &Expr::Plain(col), leaf, op, v)?;
        }
    }
    b.push(")");
    Ok(())
}

fn string_attr(name: &str, case_exact: bool) -> Attribute {
    serde_json::from_value(
        serde_json::json!({"name": name, "type": "string", "multiValued": false, "caseExact": case_exact}),
    )
    .unwrap_or_else(|_| unreachable_attr())
}

fn unreachable_attr() -> Attribute {
    scimitar_protocol::schema::group_schema().attributes[0].clone()
}

/// `expr op value` with the semantics of the attribute's type.
fn compare(b: &mut Builder, expr: &Expr, attr: &Attribute, op: CompareOp, v: &CompValue) -> Result<(), ScimError> {
    check_operator(attr, op, v)?;
    if let CompValue::Null = v {
        expr.write(b);
        b.push(match op {
            CompareOp::Eq => " IS NULL",
            _ => " IS NOT NULL",
        });
        return Ok(());
    }
    let ci = attr.case_insensitive();
    // Column values of userName / Group displayName are stored lower-cased.
    let pre_lowered = matches!(expr, Expr::Plain("r.user_name_ci") | Expr::Plain("r.display_name_ci"));
    let value: Sql = match (attr.kind, v) {
        (AttrType::Boolean, CompValue::Bool(x)) => Sql::Integer(i64::from(*x)),
        (AttrType::Boolean, CompValue::String(s)) if s.eq_ignore_ascii_case("true") => Sql::Integer(1),
        (AttrType::Boolean, CompValue::String(s)) if s.eq_ignore_ascii_case("false") => Sql::Integer(0),
        (AttrType::Boolean, _) => {
            return Err(ScimError::invalid_filter(format!(
                "'{}' is a boolean; compare it with true or false",
                attr.name
            )));
        }
        (AttrType::Integer | AttrType::Decimal, CompValue::Number(n)) => match n.as_i64() {
            Some(i) => Sql::Integer(i),
            None => Sql::Real(n.as_f64().unwrap_or(0.0)),
        },
        (AttrType::Integer | AttrType::Decimal, CompValue::String(s)) => match s.parse::<f64>() {
            Ok(f) if f.is_finite() => Sql::Real(f),
            _ => {
                return Err(ScimError::invalid_filter(format!(
                    "'{}' is numeric; '{s}' is not a number",
                    attr.name
                )));
            }
        },
        (AttrType::Integer | AttrType::Decimal, _) => {
            return Err(ScimError::invalid_filter(format!("'{}' is numeric", attr.name)));
        }
        (_, CompValue::String(s)) => Sql::Text(if ci { s.to_lowercase() } else { s.clone() }),
        (_, CompValue::Number(n)) => Sql::Text(n.to_string()),
        (_, CompValue::Bool(x)) => Sql::Text(x.to_string()),
        (_, CompValue::Null) => Sql::Null,
    };
    let write_lhs = |b: &mut Builder| {
        if ci && !pre_lowered {
            b.push("scim_lower(");
            expr.write(b);
            b.push(")");
        } else {
            expr.write(b);
        }
    };
    if attr.kind == AttrType::DateTime
        && !matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew)
        && let CompValue::String(s) = v
    {
        if time_ok(s) {
            // `ne` also matches resources without the attribute (RFC 7644).
            if op == CompareOp::Ne {
                b.push("(");
                expr.write(b);
                b.push(" IS NULL OR ");
            }
            b.push("julianday(");
            expr.write(b);
            b.push(")");
            b.push(sql_op(op));
            b.push("julianday(");
            b.bind(Sql::Text(s.clone()));
            b.push(")");
            if op == CompareOp::Ne {
                b.push(")");
            }
            return Ok(());
        }
        return Err(ScimError::invalid_filter(format!("'{s}' is not a dateTime")));
    }
    match op {
        CompareOp::Co => {
            b.push("instr(");
            write_lhs(b);
            b.push(", ");
            b.bind(value);
            b.push(") > 0");
        }
        CompareOp::Sw => {
            b.push("instr(");
            write_lhs(b);
            b.push(", ");
            b.bind(value);
            b.push(") = 1");
        }
        CompareOp::Ew => {
            b.push("scim_ends_with(");
            write_lhs(b);
            b.push(", ");
            b.bind(value);
            b.push(")");
        }
        CompareOp::Ne => {
            b.push("(");
            expr.write(b);
            b.push(" IS NULL OR ");
            write_lhs(b);
            b.push(" <> ");
            b.bind(value);
            b.push(")");
        }
        _ => {
            write_lhs(b);
            b.push(sql_op(op));
            b.bind(value);
        }
    }
    Ok(())
}

fn time_ok(s: &str) -> bool {
    // SQLite's julianday accepts RFC 3339 with 'Z' or an offset.
    s.len() >= 10 && s.as_bytes()[4] == b'-'
}

fn sql_op(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => " = ",
        CompareOp::Ne => " <> ",
        CompareOp::Gt => " > ",
        CompareOp::Ge => " >= ",
        CompareOp::Lt => " < ",
        CompareOp::Le => " <= ",
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => " = ",
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
    let key = Builder::default();
    let mut key = key;
    let (leaf, ci) = match source(rt, kind, &p).map_err(|e| ScimError::invalid_value(e.detail))? {
        Source::Column(col, attr) => {
            key.push(col);
            (attr.clone(), false)
        }
        Source::Json(path, attr) => {
            Expr::Bound("json_extract(r.doc, ?)", path).write(&mut key);
            let ci = attr.case_insensitive();
            (attr, ci)
        }
        Source::JsonEach { path, attr, sub } => {
            // RFC 7644 §3.4.2.3: a multi-valued attribute sorts by its
            // primary value, else its first.
            let subname = match (&sub, attr.is_complex()) {
                (Some(s), _) => s.name.clone(),
                (None, true) => "value".to_string(),
                (None, false) => String::new(),
            };
            let leaf = sub
                .clone()
                .or_else(|| attr.sub("value").cloned())
                .unwrap_or_else(|| attr.clone());
            let ci = leaf.case_insensitive();
            if subname.is_empty() {
                key.push("json_extract(r.doc, ");
                key.bind(Sql::Text(format!("{path}[0]")));
                key.push(")");
            } else {
                key.push("COALESCE((SELECT json_extract(e.value, ");
                key.bind(Sql::Text(format!("$.\"{subname}\"")));
                key.push(") FROM json_each(r.doc, ");
                key.bind(Sql::Text(path.clone()));
                key.push(") e WHERE json_extract(e.value, '$.primary') = 1 LIMIT 1), json_extract(r.doc, ");
                key.bind(Sql::Text(format!("{path}[0].\"{subname}\"")));
                key.push("))");
            }
            (leaf, ci)
        }
        Source::Constant(..) => {
            // Every resource of a list has the same resourceType: store order.
            b.push(" ORDER BY r.seq ASC");
            return Ok(());
        }
        Source::Members { .. } | Source::Groups { .. } => {
            return Err(ScimError::invalid_value(format!("cannot sort by '{sort_by}'")));
        }
    };
    let _ = leaf;
    let k = if ci {
        format!("scim_lower({})", key.sql)
    } else {
        key.sql.clone()
    };
    let dir = if order == SortOrder::Descending { "DESC" } else { "ASC" };
    // The key expression appears twice (null test and value): bind twice.
    b.push(" ORDER BY (");
    b.sql.push_str(&k);
    b.params.extend(key.params.iter().cloned());
    b.push(") IS NULL, ");
    b.sql.push_str(&k);
    b.params.extend(key.params);
    b.push(&format!(" {dir}, r.seq ASC"));
    Ok(())
}

/// Whether a filter can match at most one resource through a unique index
/// (`userName eq`, Group `displayName eq`, `id eq`), possibly `and`-ed with
/// more terms; such queries are cheap enough to run without a thread hop.
/// `externalId eq` is indexed too (not unique, but matches few).
pub fn is_point_lookup(f: &Filter, kind: Kind) -> bool {
    match f {
        Filter::And(items) => items.iter().any(|i| is_point_lookup(i, kind)),
        Filter::Compare(p, CompareOp::Eq, CompValue::String(_)) if p.urn.is_none() && p.sub.is_none() => {
            let n = p.name.to_ascii_lowercase();
            n == "id"
                || n == "externalid"
                || (kind == Kind::User && n == "username")
                || (kind == Kind::Group && n == "displayname")
        }
        _ => false,
    }
}

/// The SQL of representative filters and sort keys, pinned: a change of
/// the lowering shows here first. The SQL text must depend only on a
/// filter's shape (statements are cached), and hot queries must keep the
/// shape their indexes serve. On a mismatch the test prints every case as
/// it is now, in the layout of `PINS`.
#[cfg(test)]
mod pins {
    use std::sync::Arc;

    use scimitar_protocol::filter::parse_filter;
    use scimitar_protocol::list::SortOrder;
    use scimitar_protocol::schema::{ResourceType, builtin_resource_types};
    use scimitar_store::{Kind, ListQuery, Sort, StoreError};

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

    fn query(kind: Kind, rt: Arc<ResourceType>) -> ListQuery {
        ListQuery {
            kind,
            rt,
            filter: None,
            sort: None,
            start_index: 1,
            count: 100,
            cursor: None,
        }
    }

    fn error(e: StoreError) -> String {
        match e {
            StoreError::Invalid(e) => format!("error {:?}: {}", e.scim_type, e.detail),
            other => format!("store error: {other}"),
        }
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
        let mut q = query(kind, rt);
        match what {
            "filter" | "point" => {
                q.filter = Some(parse_filter(&text).unwrap_or_else(|e| panic!("{header}: {}", e.detail)));
            }
            "sort" => {
                let (by, order) = text.rsplit_once(' ').expect("sortBy and order");
                let order = if order == "descending" {
                    SortOrder::Descending
                } else {
                    SortOrder::Ascending
                };
                q.sort = Some(Sort {
                    by: by.to_string(),
                    order,
                });
            }
            other => panic!("unknown case kind '{other}'"),
        }
        if what == "point" {
            return point_lookup(&q).to_string();
        }
        match crate::page_sql(1, &q) {
            Err(e) => error(e),
            Ok(p) if what == "filter" => format!("{}\n{:?}", p.filter.sql, p.filter.params),
            Ok(p) => {
                let sel = p.select.expect("a select");
                let at = sel.sql.find(" ORDER BY").unwrap_or(0);
                format!("{}\n{:?}", &sel.sql[at..], sel.params)
            }
        }
    }

    fn point_lookup(q: &ListQuery) -> bool {
        q.filter.as_ref().is_some_and(|f| super::is_point_lookup(f, q.kind))
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
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND r.user_name_ci = ?
    [Integer(1), Text("alice")]
User filter userName ne "x"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND (r.user_name_ci IS NULL OR r.user_name_ci <> ?)
    [Integer(1), Text("x")]
User filter userName co "Al"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND instr(r.user_name_ci, ?) > 0
    [Integer(1), Text("al")]
User filter userName sw "a"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND instr(r.user_name_ci, ?) = 1
    [Integer(1), Text("a")]
User filter userName ew "E"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND scim_ends_with(r.user_name_ci, ?)
    [Integer(1), Text("e")]
User filter userName gt "b"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND r.user_name_ci > ?
    [Integer(1), Text("b")]
User filter userName eq 5
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND r.user_name_ci = ?
    [Integer(1), Text("5")]
User filter urn:ietf:params:scim:schemas:core:2.0:User:userName eq "A"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND r.user_name_ci = ?
    [Integer(1), Text("a")]
User filter id eq "u1"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND r.id = ?
    [Integer(1), Text("u1")]
User filter id ne "u1"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND (r.id IS NULL OR r.id <> ?)
    [Integer(1), Text("u1")]
User filter externalId eq "E-1"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND r.external_id = ?
    [Integer(1), Text("E-1")]
User filter externalId pr
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND r.external_id IS NOT NULL
    [Integer(1)]
User filter displayName eq "Émile"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND scim_lower(json_extract(r.doc, ?)) = ?
    [Integer(1), Text("$.\"displayName\""), Text("émile")]
User filter displayName pr
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) IS NOT NULL
    [Integer(1), Text("$.\"displayName\"")]
User filter title eq true
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND scim_lower(json_extract(r.doc, ?)) = ?
    [Integer(1), Text("$.\"title\""), Text("true")]
User filter title le "M"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND scim_lower(json_extract(r.doc, ?)) <= ?
    [Integer(1), Text("$.\"title\""), Text("m")]
User filter active eq true
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) = ?
    [Integer(1), Text("$.\"active\""), Integer(1)]
User filter active eq "True"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) = ?
    [Integer(1), Text("$.\"active\""), Integer(1)]
User filter active ne false
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND (json_extract(r.doc, ?) IS NULL OR json_extract(r.doc, ?) <> ?)
    [Integer(1), Text("$.\"active\""), Text("$.\"active\""), Integer(0)]
User filter userType eq null
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) IS NULL
    [Integer(1), Text("$.\"userType\"")]
User filter userType ne null
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) IS NOT NULL
    [Integer(1), Text("$.\"userType\"")]
User filter name.givenName sw "Al"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND instr(scim_lower(json_extract(r.doc, ?)), ?) = 1
    [Integer(1), Text("$.\"name\".\"givenName\""), Text("al")]
User filter emails.value eq "A@x.com"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE scim_lower(json_extract(e.value, ?)) = ?)
    [Integer(1), Text("$.\"emails\""), Text("$.\"value\""), Text("a@x.com")]
User filter emails eq "a@x.com"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE scim_lower(json_extract(e.value, '$.value')) = ?)
    [Integer(1), Text("$.\"emails\""), Text("a@x.com")]
User filter emails.value ne "a@x.com"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND NOT EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE scim_lower(json_extract(e.value, ?)) = ?)
    [Integer(1), Text("$.\"emails\""), Text("$.\"value\""), Text("a@x.com")]
User filter emails pr
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE json_extract(e.value, '$.value') IS NOT NULL)
    [Integer(1), Text("$.\"emails\"")]
User filter emails.primary eq true
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE json_extract(e.value, ?) = ?)
    [Integer(1), Text("$.\"emails\""), Text("$.\"primary\""), Integer(1)]
User filter emails[type eq "work" and value co "@x"]
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE (scim_lower(json_extract(e.value, ?)) = ? AND instr(scim_lower(json_extract(e.value, ?)), ?) > 0))
    [Integer(1), Text("$.\"emails\""), Text("$.\"type\""), Text("work"), Text("$.\"value\""), Text("@x")]
User filter emails[type eq "work"].value eq "a@x.com"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE (scim_lower(json_extract(e.value, ?)) = ? AND scim_lower(json_extract(e.value, ?)) = ?))
    [Integer(1), Text("$.\"emails\""), Text("$.\"type\""), Text("work"), Text("$.\"value\""), Text("a@x.com")]
User filter emails[not (primary eq true)]
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE NOT (json_extract(e.value, ?) = ?))
    [Integer(1), Text("$.\"emails\""), Text("$.\"primary\""), Integer(1)]
User filter emails[type pr or value ew ".org"]
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE (json_extract(e.value, ?) IS NOT NULL OR scim_ends_with(scim_lower(json_extract(e.value, ?)), ?)))
    [Integer(1), Text("$.\"emails\""), Text("$.\"type\""), Text("$.\"value\""), Text(".org")]
User filter emails ne null
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND NOT EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE json_extract(e.value, '$.value') IS NULL)
    [Integer(1), Text("$.\"emails\"")]
User filter addresses[locality eq "Paris"]
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE scim_lower(json_extract(e.value, ?)) = ?)
    [Integer(1), Text("$.\"addresses\""), Text("$.\"locality\""), Text("paris")]
User filter addresses eq "x"
    error Some(InvalidFilter): 'addresses' is complex; name a sub-attribute
User filter urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "R&D"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND scim_lower(json_extract(r.doc, ?)) = ?
    [Integer(1), Text("$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"department\""), Text("r&d")]
User filter department ne "Sales"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND (json_extract(r.doc, ?) IS NULL OR scim_lower(json_extract(r.doc, ?)) <> ?)
    [Integer(1), Text("$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"department\""), Text("$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"department\""), Text("sales")]
User filter manager eq "u1"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND scim_lower(json_extract(r.doc, ?)) = ?
    [Integer(1), Text("$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"manager\".\"value\""), Text("u1")]
User filter urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "u2"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND scim_lower(json_extract(r.doc, ?)) = ?
    [Integer(1), Text("$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"manager\".\"value\""), Text("u2")]
User filter manager[value eq "u1"]
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND (SELECT EXISTS (SELECT 1 WHERE scim_lower(json_extract(r.doc, ?)) = ?))
    [Integer(1), Text("$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"manager\".\"value\""), Text("u1")]
User filter manager[displayName eq "Bob" or value pr]
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND (SELECT EXISTS (SELECT 1 WHERE (scim_lower(json_extract(r.doc, ?)) = ? OR json_extract(r.doc, ?) IS NOT NULL)))
    [Integer(1), Text("$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"manager\".\"displayName\""), Text("bob"), Text("$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"manager\".\"value\"")]
User filter manager.value pr
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) IS NOT NULL
    [Integer(1), Text("$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"manager\".\"value\"")]
User filter groups eq "g1"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.member_id = r.id AND scim_lower(m.group_id) = ?)
    [Integer(1), Text("g1")]
User filter groups.value eq "G1"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.member_id = r.id AND scim_lower(m.group_id) = ?)
    [Integer(1), Text("g1")]
User filter groups.value ne "g1"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND NOT EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.member_id = r.id AND scim_lower(m.group_id) = ?)
    [Integer(1), Text("g1")]
User filter groups pr
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.member_id = r.id AND m.group_id IS NOT NULL)
    [Integer(1)]
User filter not (groups pr)
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND NOT (EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.member_id = r.id AND m.group_id IS NOT NULL))
    [Integer(1)]
User filter meta.created gt "2024-03-01T00:00:00Z"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND julianday(r.created) > julianday(?)
    [Integer(1), Text("2024-03-01T00:00:00Z")]
User filter meta.lastModified ne "2024-01-01T00:00:00.000Z"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND (r.modified IS NULL OR julianday(r.modified) <> julianday(?))
    [Integer(1), Text("2024-01-01T00:00:00.000Z")]
User filter meta.created lt "2024-03-01T01:00:00+02:00"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND julianday(r.created) < julianday(?)
    [Integer(1), Text("2024-03-01T01:00:00+02:00")]
User filter meta.created ge "2024-03-01"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND julianday(r.created) >= julianday(?)
    [Integer(1), Text("2024-03-01")]
User filter meta.created le "2024-03-01T10:00"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND julianday(r.created) <= julianday(?)
    [Integer(1), Text("2024-03-01T10:00")]
User filter meta.created co "2024"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND instr(r.created, ?) > 0
    [Integer(1), Text("2024")]
User filter meta.created eq 5
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND r.created = ?
    [Integer(1), Text("5")]
User filter meta.resourceType eq "User"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND 1
    [Integer(1)]
User filter meta.resourceType ne "User"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND 0
    [Integer(1)]
User filter meta.resourceType eq "Group"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND 0
    [Integer(1)]
User filter meta.resourceType pr
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND 1
    [Integer(1)]
User filter (userName sw "a" or userName sw "b") and active eq true
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND ((instr(r.user_name_ci, ?) = 1 OR instr(r.user_name_ci, ?) = 1) AND json_extract(r.doc, ?) = ?)
    [Integer(1), Text("a"), Text("b"), Text("$.\"active\""), Integer(1)]
User filter not (userName eq "alice" or emails.type eq "home")
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND NOT ((r.user_name_ci = ? OR EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE scim_lower(json_extract(e.value, ?)) = ?)))
    [Integer(1), Text("alice"), Text("$.\"emails\""), Text("$.\"type\""), Text("home")]
User filter userName eq "a" and (title pr or not (active eq false))
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND (r.user_name_ci = ? AND (json_extract(r.doc, ?) IS NOT NULL OR NOT (json_extract(r.doc, ?) = ?)))
    [Integer(1), Text("a"), Text("$.\"title\""), Text("$.\"active\""), Integer(0)]
User filter userName eq a\0b
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND r.user_name_ci = ?
    [Integer(1), Text("a\0b")]
User filter active eq tr\0ue
    error Some(InvalidFilter): 'active' is a boolean; compare it with true or false
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
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND r.display_name_ci = ?
    [Integer(1), Text("admins")]
Group filter displayName co "adm"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND instr(r.display_name_ci, ?) > 0
    [Integer(1), Text("adm")]
Group filter id eq "g1" or displayName eq "EMPTY"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND (r.id = ? OR r.display_name_ci = ?)
    [Integer(1), Text("g1"), Text("empty")]
Group filter members[value eq "u1"]
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND scim_lower(m.member_id) = ?)
    [Integer(1), Text("u1")]
Group filter members[value eq "U1" and type eq "User"]
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND (scim_lower(m.member_id) = ? AND scim_lower(m.member_type) = ?))
    [Integer(1), Text("u1"), Text("user")]
Group filter members[display sw "a"]
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND instr(scim_lower(m.display), ?) = 1)
    [Integer(1), Text("a")]
Group filter members eq "u1"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND m.member_id = ?)
    [Integer(1), Text("u1")]
Group filter members.value eq "U1"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND scim_lower(m.member_id) = ?)
    [Integer(1), Text("u1")]
Group filter members.type eq "Group"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND scim_lower(m.member_type) = ?)
    [Integer(1), Text("group")]
Group filter members.display co "a"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND instr(scim_lower(m.display), ?) > 0)
    [Integer(1), Text("a")]
Group filter members ne "u1"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND NOT EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND m.member_id = ?)
    [Integer(1), Text("u1")]
Group filter members.value ne "u1"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND NOT EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND scim_lower(m.member_id) = ?)
    [Integer(1), Text("u1")]
Group filter members pr
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND m.member_id IS NOT NULL)
    [Integer(1)]
Group filter not (members pr)
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND NOT (EXISTS (SELECT 1 FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND m.member_id IS NOT NULL))
    [Integer(1)]
Group filter members[$ref eq "x"]
    error Some(InvalidFilter): 'members.$ref' cannot be used in a filter
Group filter members.$ref eq "x"
    error Some(InvalidFilter): 'members.$ref' cannot be used in a filter
Group filter meta.resourceType eq "Group"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND 1
    [Integer(1)]
Group filter userName eq "x"
    error Some(InvalidFilter): unknown attribute 'userName'
Custom filter level gt 6
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) > ?
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"level\""), Integer(6)]
Custom filter level eq "5"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) = ?
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"level\""), Real(5.0)]
Custom filter level eq 18446744073709551615
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) = ?
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"level\""), Real(1.8446744073709552e19)]
Custom filter level co "1"
    error Some(InvalidFilter): operator 'co' cannot be used on numeric attribute 'level'
Custom filter level eq "abc"
    error Some(InvalidFilter): 'level' is numeric; 'abc' is not a number
Custom filter level eq true
    error Some(InvalidFilter): 'level' is numeric
Custom filter score le 2.5
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) <= ?
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"score\""), Real(2.5)]
Custom filter hired gt "2020-06-01T00:00:00Z"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND julianday(json_extract(r.doc, ?)) > julianday(?)
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"hired\""), Text("2020-06-01T00:00:00Z")]
Custom filter hired ne "2020-01-01T00:00:00Z"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND (json_extract(r.doc, ?) IS NULL OR julianday(json_extract(r.doc, ?)) <> julianday(?))
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"hired\""), Text("$.\"urn:example:custom:2.0:User\".\"hired\""), Text("2020-01-01T00:00:00Z")]
Custom filter vip eq true
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) = ?
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"vip\""), Integer(1)]
Custom filter vip ne "FALSE"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND (json_extract(r.doc, ?) IS NULL OR json_extract(r.doc, ?) <> ?)
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"vip\""), Text("$.\"urn:example:custom:2.0:User\".\"vip\""), Integer(0)]
Custom filter code eq "AbC"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) = ?
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"code\""), Text("AbC")]
Custom filter code co "C"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND instr(json_extract(r.doc, ?), ?) > 0
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"code\""), Text("C")]
Custom filter tags eq "Blue"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE scim_lower(e.value) = ?)
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"tags\""), Text("blue")]
Custom filter tags[value sw "GR"]
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE instr(scim_lower(e.value), ?) = 1)
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"tags\""), Text("gr")]
Custom filter tags ne "red"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND NOT EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE scim_lower(e.value) = ?)
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"tags\""), Text("red")]
Custom filter tags pr
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE e.value IS NOT NULL)
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"tags\"")]
Custom filter urn:example:custom:2.0:User:level pr
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) IS NOT NULL
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"level\"")]
Custom filter badge eq "b1"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND scim_lower(json_extract(r.doc, ?)) = ?
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"badge\".\"value\""), Text("b1")]
Custom filter badge[value eq "b1" and rank ge 2]
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND (SELECT EXISTS (SELECT 1 WHERE (scim_lower(json_extract(r.doc, ?)) = ? AND json_extract(r.doc, ?) >= ?)))
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"badge\".\"value\""), Text("b1"), Text("$.\"urn:example:custom:2.0:User\".\"badge\".\"rank\""), Integer(2)]
Custom filter awards[rank gt 2 and primary eq "true"]
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE (json_extract(e.value, ?) > ? AND json_extract(e.value, ?) = ?))
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"awards\""), Text("$.\"rank\""), Integer(2), Text("$.\"primary\""), Integer(1)]
Custom filter awards.rank lt 3
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND EXISTS (SELECT 1 FROM json_each(r.doc, ?) e WHERE json_extract(e.value, ?) < ?)
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"awards\""), Text("$.\"rank\""), Integer(3)]
Custom filter awards eq "x"
    error Some(InvalidFilter): 'awards' is complex; name a sub-attribute
Custom filter value eq "x"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND scim_lower(json_extract(r.doc, ?)) = ?
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"value\""), Text("x")]
Custom filter value[value eq "x"]
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND (SELECT EXISTS (SELECT 1 WHERE scim_lower(e.value) = ?))
    [Integer(1), Text("x")]
User sort userName ascending
     ORDER BY (r.user_name_ci) IS NULL, r.user_name_ci ASC, r.seq ASC LIMIT 100
    [Integer(1)]
User sort userName descending
     ORDER BY (r.user_name_ci) IS NULL, r.user_name_ci DESC, r.seq ASC LIMIT 100
    [Integer(1)]
User sort displayName ascending
     ORDER BY (scim_lower(json_extract(r.doc, ?))) IS NULL, scim_lower(json_extract(r.doc, ?)) ASC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"displayName\""), Text("$.\"displayName\"")]
User sort title descending
     ORDER BY (scim_lower(json_extract(r.doc, ?))) IS NULL, scim_lower(json_extract(r.doc, ?)) DESC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"title\""), Text("$.\"title\"")]
User sort emails ascending
     ORDER BY (scim_lower(COALESCE((SELECT json_extract(e.value, ?) FROM json_each(r.doc, ?) e WHERE json_extract(e.value, '$.primary') = 1 LIMIT 1), json_extract(r.doc, ?)))) IS NULL, scim_lower(COALESCE((SELECT json_extract(e.value, ?) FROM json_each(r.doc, ?) e WHERE json_extract(e.value, '$.primary') = 1 LIMIT 1), json_extract(r.doc, ?))) ASC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"value\""), Text("$.\"emails\""), Text("$.\"emails\"[0].\"value\""), Text("$.\"value\""), Text("$.\"emails\""), Text("$.\"emails\"[0].\"value\"")]
User sort emails.value descending
     ORDER BY (scim_lower(COALESCE((SELECT json_extract(e.value, ?) FROM json_each(r.doc, ?) e WHERE json_extract(e.value, '$.primary') = 1 LIMIT 1), json_extract(r.doc, ?)))) IS NULL, scim_lower(COALESCE((SELECT json_extract(e.value, ?) FROM json_each(r.doc, ?) e WHERE json_extract(e.value, '$.primary') = 1 LIMIT 1), json_extract(r.doc, ?))) DESC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"value\""), Text("$.\"emails\""), Text("$.\"emails\"[0].\"value\""), Text("$.\"value\""), Text("$.\"emails\""), Text("$.\"emails\"[0].\"value\"")]
User sort emails.primary ascending
     ORDER BY (COALESCE((SELECT json_extract(e.value, ?) FROM json_each(r.doc, ?) e WHERE json_extract(e.value, '$.primary') = 1 LIMIT 1), json_extract(r.doc, ?))) IS NULL, COALESCE((SELECT json_extract(e.value, ?) FROM json_each(r.doc, ?) e WHERE json_extract(e.value, '$.primary') = 1 LIMIT 1), json_extract(r.doc, ?)) ASC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"primary\""), Text("$.\"emails\""), Text("$.\"emails\"[0].\"primary\""), Text("$.\"primary\""), Text("$.\"emails\""), Text("$.\"emails\"[0].\"primary\"")]
User sort active ascending
     ORDER BY (json_extract(r.doc, ?)) IS NULL, json_extract(r.doc, ?) ASC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"active\""), Text("$.\"active\"")]
User sort meta.created descending
     ORDER BY (r.created) IS NULL, r.created DESC, r.seq ASC LIMIT 100
    [Integer(1)]
User sort meta.lastModified ascending
     ORDER BY (r.modified) IS NULL, r.modified ASC, r.seq ASC LIMIT 100
    [Integer(1)]
User sort meta.resourceType descending
     ORDER BY r.seq ASC LIMIT 100
    [Integer(1)]
User sort id descending
     ORDER BY (r.id) IS NULL, r.id DESC, r.seq ASC LIMIT 100
    [Integer(1)]
User sort externalId ascending
     ORDER BY (r.external_id) IS NULL, r.external_id ASC, r.seq ASC LIMIT 100
    [Integer(1)]
User sort name.givenName ascending
     ORDER BY (scim_lower(json_extract(r.doc, ?))) IS NULL, scim_lower(json_extract(r.doc, ?)) ASC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"name\".\"givenName\""), Text("$.\"name\".\"givenName\"")]
User sort urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department descending
     ORDER BY (scim_lower(json_extract(r.doc, ?))) IS NULL, scim_lower(json_extract(r.doc, ?)) DESC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"department\""), Text("$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"department\"")]
User sort manager ascending
     ORDER BY (scim_lower(json_extract(r.doc, ?))) IS NULL, scim_lower(json_extract(r.doc, ?)) ASC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"manager\".\"value\""), Text("$.\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\".\"manager\".\"value\"")]
User sort addresses ascending
     ORDER BY (COALESCE((SELECT json_extract(e.value, ?) FROM json_each(r.doc, ?) e WHERE json_extract(e.value, '$.primary') = 1 LIMIT 1), json_extract(r.doc, ?))) IS NULL, COALESCE((SELECT json_extract(e.value, ?) FROM json_each(r.doc, ?) e WHERE json_extract(e.value, '$.primary') = 1 LIMIT 1), json_extract(r.doc, ?)) ASC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"value\""), Text("$.\"addresses\""), Text("$.\"addresses\"[0].\"value\""), Text("$.\"value\""), Text("$.\"addresses\""), Text("$.\"addresses\"[0].\"value\"")]
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
     ORDER BY (r.display_name_ci) IS NULL, r.display_name_ci ASC, r.seq ASC LIMIT 100
    [Integer(1)]
Group sort members ascending
    error Some(InvalidValue): cannot sort by 'members'
Custom sort level descending
     ORDER BY (json_extract(r.doc, ?)) IS NULL, json_extract(r.doc, ?) DESC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"level\""), Text("$.\"urn:example:custom:2.0:User\".\"level\"")]
Custom sort score ascending
     ORDER BY (json_extract(r.doc, ?)) IS NULL, json_extract(r.doc, ?) ASC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"score\""), Text("$.\"urn:example:custom:2.0:User\".\"score\"")]
Custom sort hired descending
     ORDER BY (json_extract(r.doc, ?)) IS NULL, json_extract(r.doc, ?) DESC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"hired\""), Text("$.\"urn:example:custom:2.0:User\".\"hired\"")]
Custom sort vip ascending
     ORDER BY (json_extract(r.doc, ?)) IS NULL, json_extract(r.doc, ?) ASC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"vip\""), Text("$.\"urn:example:custom:2.0:User\".\"vip\"")]
Custom sort code ascending
     ORDER BY (json_extract(r.doc, ?)) IS NULL, json_extract(r.doc, ?) ASC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"code\""), Text("$.\"urn:example:custom:2.0:User\".\"code\"")]
Custom sort tags ascending
     ORDER BY (scim_lower(json_extract(r.doc, ?))) IS NULL, scim_lower(json_extract(r.doc, ?)) ASC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"tags\"[0]"), Text("$.\"urn:example:custom:2.0:User\".\"tags\"[0]")]
Custom sort awards ascending
     ORDER BY (COALESCE((SELECT json_extract(e.value, ?) FROM json_each(r.doc, ?) e WHERE json_extract(e.value, '$.primary') = 1 LIMIT 1), json_extract(r.doc, ?))) IS NULL, COALESCE((SELECT json_extract(e.value, ?) FROM json_each(r.doc, ?) e WHERE json_extract(e.value, '$.primary') = 1 LIMIT 1), json_extract(r.doc, ?)) ASC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"value\""), Text("$.\"urn:example:custom:2.0:User\".\"awards\""), Text("$.\"urn:example:custom:2.0:User\".\"awards\"[0].\"value\""), Text("$.\"value\""), Text("$.\"urn:example:custom:2.0:User\".\"awards\""), Text("$.\"urn:example:custom:2.0:User\".\"awards\"[0].\"value\"")]
Custom sort awards.rank descending
     ORDER BY (COALESCE((SELECT json_extract(e.value, ?) FROM json_each(r.doc, ?) e WHERE json_extract(e.value, '$.primary') = 1 LIMIT 1), json_extract(r.doc, ?))) IS NULL, COALESCE((SELECT json_extract(e.value, ?) FROM json_each(r.doc, ?) e WHERE json_extract(e.value, '$.primary') = 1 LIMIT 1), json_extract(r.doc, ?)) DESC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"rank\""), Text("$.\"urn:example:custom:2.0:User\".\"awards\""), Text("$.\"urn:example:custom:2.0:User\".\"awards\"[0].\"rank\""), Text("$.\"rank\""), Text("$.\"urn:example:custom:2.0:User\".\"awards\""), Text("$.\"urn:example:custom:2.0:User\".\"awards\"[0].\"rank\"")]
User point userName eq "x"
    true
User point USERNAME eq "x"
    true
User point urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"
    false
User point id eq "x"
    true
User point externalId eq "x"
    true
User point displayName eq "x"
    false
User point userName eq "x" and active eq true
    true
User point userName eq "x" or id eq "y"
    false
User point userName ne "x"
    false
User point userName eq 5
    false
Group point displayName eq "x"
    true
Group point id eq "x" and members pr
    true
"##;
}
