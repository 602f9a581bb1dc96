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
