//! Lowering of filter and sort plans (`scimitar_protocol::plan`) to SQLite
//! SQL. What a filter means is decided there; this is only syntax.
//!
//! Column names are fixed here; JSON paths come from the plan (canonical
//! attribute names) and, like every value, are bound parameters, so the
//! SQL text depends only on a filter's shape and statements stay cached.
//! Case-insensitive comparisons use `scim_lower`, a Unicode-aware function
//! registered on every connection (SQLite's own `lower` only folds ASCII),
//! and the literal is folded in Rust alike. Substring operators use `instr`,
//! so `%` and `_` in values are literal.

use rusqlite::types::Value as Sql;
use scimitar_protocol::ScimError;
use scimitar_protocol::filter::{CompareOp, Filter};
use scimitar_protocol::list::SortOrder;
use scimitar_protocol::plan::{
    self, Case, Collection, Column, Comparison, Dialect, DocPath, KeyType, Literal, MemberColumn, Operand, Plan,
    SortSource,
};
use scimitar_protocol::schema::ResourceType;
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
    /// `json_extract(<of>, ?)` with the path bound.
    fn json_extract(&mut self, of: &str, path: String) {
        self.push("json_extract(");
        self.push(of);
        self.push(", ");
        self.bind(Sql::Text(path));
        self.push(")");
    }
}

const DIALECT: Dialect = Dialect {
    datetime: datetime_literal,
    text_holds_nul: true,
};

/// dateTimes compare as `scim_instant` keys (`datetime::instant_key`:
/// UTC, fixed width), which order as the instants do; the literal is bound
/// as its key.
fn datetime_literal(s: &str) -> Option<String> {
    scimitar_protocol::datetime::filter_instant(s).and_then(scimitar_protocol::datetime::key_of)
}

fn column(c: Column) -> &'static str {
    match c {
        Column::Id => "r.id",
        Column::ExternalId => "r.external_id",
        Column::Created => "r.created",
        Column::Modified => "r.modified",
        Column::UserName => "r.user_name_ci",
        Column::DisplayName => "r.display_name_ci",
    }
}

fn member_column(c: MemberColumn) -> &'static str {
    match c {
        MemberColumn::MemberId => "m.member_id",
        MemberColumn::MemberType => "m.member_type",
        MemberColumn::Display => "m.display",
        MemberColumn::GroupId => "m.group_id",
    }
}

/// `$."a"."b"`.
fn json_path(p: &DocPath) -> String {
    let mut s = String::from("$");
    for name in &p.0 {
        s.push_str(&format!(".\"{name}\""));
    }
    s
}

/// Appends the condition for `f` on the row `r` of `resources`.
pub fn lower_filter(b: &mut Builder, rt: &ResourceType, kind: Kind, f: &Filter) -> Result<(), ScimError> {
    let plan = plan::plan_filter(rt, kind, f, &DIALECT)?;
    lower(b, &plan, None);
    Ok(())
}

/// Whether a filter is an indexed point lookup (see `plan::is_point_lookup`).
pub fn is_point_lookup(rt: &ResourceType, kind: Kind, f: &Filter) -> bool {
    plan::is_point_lookup(rt, kind, f)
}

/// `object`: the path of the object a value path's terms read
/// (`manager[…]`); otherwise their fields are those of `e`.
fn lower(b: &mut Builder, p: &Plan, object: Option<&DocPath>) {
    match p {
        Plan::And(items) | Plan::Or(items) => {
            let sep = if matches!(p, Plan::And(_)) { " AND " } else { " OR " };
            chain(b, items, sep, object);
        }
        Plan::Not(inner) => {
            b.push("NOT (");
            lower(b, inner, object);
            b.push(")");
        }
        Plan::Const(hit) => b.push(if *hit { "1" } else { "0" }),
        Plan::Present(o) => {
            operand(b, o, object);
            b.push(" IS NOT NULL");
        }
        Plan::Compare(o, c) => compare(b, o, object, c),
        Plan::Exists { negated, over, cond } => {
            b.push(if *negated { "NOT EXISTS" } else { "EXISTS" });
            b.push(" (SELECT 1 FROM ");
            match over {
                Collection::Array(path) => {
                    b.push("json_each(r.doc, ");
                    b.bind(Sql::Text(json_path(path)));
                    b.push(") e WHERE ");
                }
                Collection::Members => b.push("members m WHERE m.tenant_id = r.tenant_id AND m.group_id = r.id AND "),
                Collection::Groups => b.push("members m WHERE m.tenant_id = r.tenant_id AND m.member_id = r.id AND "),
            }
            lower(b, cond, None);
            b.push(")");
        }
        Plan::Object { path, cond } => {
            b.push("(SELECT EXISTS (SELECT 1 WHERE ");
            lower(b, cond, Some(path));
            b.push("))");
        }
    }
}

/// Terms of an `and` or `or` written side by side; a longer chain is split
/// into halves.
const FLAT_CHAIN: usize = 4;

/// `(a OR b OR …)`. SQLite parses a flat chain as a left-deep tree as deep
/// as the chain is long, and refuses expressions deeper than 1,000
/// (SQLITE_MAX_EXPR_DEPTH): a filter of 1,000 terms (the documented
/// maximum) would fail. Halves keep the depth at log2 of the length.
fn chain(b: &mut Builder, items: &[Plan], sep: &str, object: Option<&DocPath>) {
    b.push("(");
    if items.len() <= FLAT_CHAIN {
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                b.push(sep);
            }
            lower(b, it, object);
        }
    } else {
        let (left, right) = items.split_at(items.len() / 2);
        chain(b, left, sep, object);
        b.push(sep);
        chain(b, right, sep, object);
    }
    b.push(")");
}

fn operand(b: &mut Builder, o: &Operand, object: Option<&DocPath>) {
    match o {
        Operand::Column(c) => b.push(column(*c)),
        Operand::Doc(path) => b.json_extract("r.doc", json_path(path)),
        Operand::Element => b.push("e.value"),
        Operand::Field(name) => match object {
            Some(base) => b.json_extract("r.doc", format!("{}.\"{name}\"", json_path(base))),
            None => b.json_extract("e.value", format!("$.\"{name}\"")),
        },
        Operand::ValueField => b.push("json_extract(e.value, '$.value')"),
        Operand::Member(c) => b.push(member_column(*c)),
    }
}

/// `operand op literal`.
fn compare(b: &mut Builder, o: &Operand, object: Option<&DocPath>, c: &Comparison) {
    let Comparison { op, literal, case } = c;
    let value = match literal {
        Literal::Null => {
            operand(b, o, object);
            b.push(if *op == CompareOp::Eq {
                " IS NULL"
            } else {
                " IS NOT NULL"
            });
            return;
        }
        Literal::DateTime(s) => {
            // `ne` also matches resources without the attribute (RFC 7644).
            if *op == CompareOp::Ne {
                b.push("(");
                operand(b, o, object);
                b.push(" IS NULL OR ");
            }
            b.push("scim_instant(");
            operand(b, o, object);
            b.push(")");
            b.push(sql_op(*op));
            b.bind(Sql::Text(s.clone()));
            if *op == CompareOp::Ne {
                b.push(")");
            }
            return;
        }
        Literal::Bool(x) => Sql::Integer(i64::from(*x)),
        Literal::Number(n) | Literal::QuotedNumber(n) => match n.as_i64() {
            Some(i) => Sql::Integer(i),
            None => Sql::Real(n.as_f64().unwrap_or(0.0)),
        },
        Literal::Text(s) if *case == Case::Exact => Sql::Text(s.clone()),
        Literal::Text(s) => Sql::Text(s.to_lowercase()),
        Literal::BareText(s) => Sql::Text(s.clone()),
    };
    let lhs = |b: &mut Builder| {
        if *case == Case::Insensitive {
            b.push("scim_lower(");
            operand(b, o, object);
            b.push(")");
        } else {
            operand(b, o, object);
        }
    };
    match op {
        CompareOp::Co | CompareOp::Sw => {
            b.push("instr(");
            lhs(b);
            b.push(", ");
            b.bind(value);
            b.push(if *op == CompareOp::Co { ") > 0" } else { ") = 1" });
        }
        CompareOp::Ew => {
            b.push("scim_ends_with(");
            lhs(b);
            b.push(", ");
            b.bind(value);
            b.push(")");
        }
        CompareOp::Ne => {
            b.push("(");
            operand(b, o, object);
            b.push(" IS NULL OR ");
            lhs(b);
            b.push(" <> ");
            b.bind(value);
            b.push(")");
        }
        _ => {
            lhs(b);
            b.push(sql_op(*op));
            b.bind(value);
        }
    }
}

fn sql_op(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Ne => " <> ",
        CompareOp::Gt => " > ",
        CompareOp::Ge => " >= ",
        CompareOp::Lt => " < ",
        CompareOp::Le => " <= ",
        CompareOp::Eq | CompareOp::Co | CompareOp::Sw | CompareOp::Ew => " = ",
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
    let Some(key) = plan::plan_sort(rt, kind, sort_by)? else {
        b.push(" ORDER BY r.seq ASC");
        return Ok(());
    };
    let mut k = Builder::default();
    match &key.source {
        SortSource::Column(c) => k.push(column(*c)),
        SortSource::Doc(path) => k.json_extract("r.doc", json_path(path)),
        SortSource::FirstElement(path) => k.json_extract("r.doc", format!("{}[0]", json_path(path))),
        SortSource::PrimaryElse { array, sub } => {
            let path = json_path(array);
            k.push("COALESCE((SELECT ");
            k.json_extract("e.value", format!("$.\"{sub}\""));
            k.push(" FROM json_each(r.doc, ");
            k.bind(Sql::Text(path.clone()));
            k.push(") e WHERE json_extract(e.value, '$.primary') = 1 LIMIT 1), ");
            k.json_extract("r.doc", format!("{path}[0].\"{sub}\""));
            k.push(")");
        }
    }
    match key.key_type {
        KeyType::Text(Case::Insensitive) => k.sql = format!("scim_lower({})", k.sql),
        KeyType::DateTime => k.sql = format!("scim_instant({})", k.sql),
        _ => {}
    }
    let dir = if order == SortOrder::Descending { "DESC" } else { "ASC" };
    // The key expression appears twice (null test and value): bind twice.
    b.push(" ORDER BY (");
    b.push(&k.sql);
    b.params.extend(k.params.iter().cloned());
    b.push(") IS NULL, ");
    b.push(&k.sql);
    b.params.extend(k.params);
    b.push(&format!(" {dir}, r.seq ASC"));
    Ok(())
}

#[cfg(test)]
#[path = "../../scimitar-store-conformance/src/sql_pins.rs"]
mod sql_pins;

/// The SQL of representative filters and sort keys, pinned (see
/// `sql_pins`). Through `page_sql`: the whole statement.
#[cfg(test)]
mod pins {
    use std::sync::Arc;

    use scimitar_protocol::schema::ResourceType;
    use scimitar_store::{Kind, ListQuery, Sort, StoreError};

    use super::sql_pins::{Ask, check, error};

    #[test]
    fn sql_is_pinned() {
        check(PINS, statement);
    }

    /// What `page_sql` writes: the `FROM … WHERE …` of a filter, the
    /// `ORDER BY …` of a sort key.
    fn statement(kind: Kind, rt: Arc<ResourceType>, ask: Ask) -> String {
        let mut q = ListQuery {
            kind,
            rt,
            filter: None,
            sort: None,
            start_index: 1,
            count: 100,
            cursor: None,
        };
        match ask {
            Ask::Point(f) => return super::is_point_lookup(&q.rt, kind, &f).to_string(),
            Ask::Filter(f) => q.filter = Some(f),
            Ask::Sort(by, order) => q.sort = Some(Sort { by, order }),
        }
        match crate::resources::page_sql(1, &q) {
            Err(StoreError::Invalid(e)) => error(&e),
            Err(other) => format!("store error: {other}"),
            Ok(p) if q.sort.is_none() => format!("{}\n{:?}", p.filter.sql, p.filter.params),
            Ok(p) => {
                let sel = p.select.expect("a select");
                let at = sel.sql.find(" ORDER BY").unwrap_or(0);
                format!("{}\n{:?}", &sel.sql[at..], sel.params)
            }
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
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND scim_instant(r.created) > ?
    [Integer(1), Text("2024-03-01T00:00:00.000000000Z")]
User filter meta.lastModified ne "2024-01-01T00:00:00.000Z"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND (r.modified IS NULL OR scim_instant(r.modified) <> ?)
    [Integer(1), Text("2024-01-01T00:00:00.000000000Z")]
User filter meta.created lt "2024-03-01T01:00:00+02:00"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND scim_instant(r.created) < ?
    [Integer(1), Text("2024-02-29T23:00:00.000000000Z")]
User filter meta.created ge "2024-03-01"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND scim_instant(r.created) >= ?
    [Integer(1), Text("2024-03-01T00:00:00.000000000Z")]
User filter meta.created le "2024-03-01T10:00"
    error Some(InvalidFilter): '2024-03-01T10:00' is not a dateTime
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
User filter id eq "1" or id eq "2" or id eq "3" or id eq "4" or id eq "5"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND ((r.id = ? OR r.id = ?) OR (r.id = ? OR r.id = ? OR r.id = ?))
    [Integer(1), Text("1"), Text("2"), Text("3"), Text("4"), Text("5")]
User filter title pr and nickName pr and title eq "a" and title eq "b" and title eq "c" and title eq "d" and title eq "e" and title eq "f" and title eq "g"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND ((json_extract(r.doc, ?) IS NOT NULL AND json_extract(r.doc, ?) IS NOT NULL AND scim_lower(json_extract(r.doc, ?)) = ? AND scim_lower(json_extract(r.doc, ?)) = ?) AND ((scim_lower(json_extract(r.doc, ?)) = ? AND scim_lower(json_extract(r.doc, ?)) = ?) AND (scim_lower(json_extract(r.doc, ?)) = ? AND scim_lower(json_extract(r.doc, ?)) = ? AND scim_lower(json_extract(r.doc, ?)) = ?)))
    [Integer(1), Text("$.\"title\""), Text("$.\"nickName\""), Text("$.\"title\""), Text("a"), Text("$.\"title\""), Text("b"), Text("$.\"title\""), Text("c"), Text("$.\"title\""), Text("d"), Text("$.\"title\""), Text("e"), Text("$.\"title\""), Text("f"), Text("$.\"title\""), Text("g")]
User filter userName eq a\0b
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND r.user_name_ci = ?
    [Integer(1), Text("a\0b")]
User filter active eq tr\0ue
    error Some(InvalidFilter): 'active' is a boolean; compare it with true or false
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
Group filter meta.resourceType eq "Group"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'Group' AND 1
    [Integer(1)]
Custom filter level gt 6
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) > ?
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"level\""), Integer(6)]
Custom filter level eq "5"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) = ?
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"level\""), Integer(5)]
Custom filter level eq 18446744073709551615
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) = ?
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"level\""), Real(1.8446744073709552e19)]
Custom filter score le 2.5
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND json_extract(r.doc, ?) <= ?
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"score\""), Real(2.5)]
Custom filter hired gt "2020-06-01T00:00:00Z"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND scim_instant(json_extract(r.doc, ?)) > ?
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"hired\""), Text("2020-06-01T00:00:00.000000000Z")]
Custom filter hired ne "2020-01-01T00:00:00Z"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND (json_extract(r.doc, ?) IS NULL OR scim_instant(json_extract(r.doc, ?)) <> ?)
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"hired\""), Text("$.\"urn:example:custom:2.0:User\".\"hired\""), Text("2020-01-01T00:00:00.000000000Z")]
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
Custom filter value eq "x"
     FROM resources r WHERE r.tenant_id = ? AND r.kind = 'User' AND scim_lower(json_extract(r.doc, ?)) = ?
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"value\""), Text("x")]
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
Group sort displayName ascending
     ORDER BY (r.display_name_ci) IS NULL, r.display_name_ci ASC, r.seq ASC LIMIT 100
    [Integer(1)]
Custom sort level descending
     ORDER BY (json_extract(r.doc, ?)) IS NULL, json_extract(r.doc, ?) DESC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"level\""), Text("$.\"urn:example:custom:2.0:User\".\"level\"")]
Custom sort score ascending
     ORDER BY (json_extract(r.doc, ?)) IS NULL, json_extract(r.doc, ?) ASC, r.seq ASC LIMIT 100
    [Integer(1), Text("$.\"urn:example:custom:2.0:User\".\"score\""), Text("$.\"urn:example:custom:2.0:User\".\"score\"")]
Custom sort hired descending
     ORDER BY (scim_instant(json_extract(r.doc, ?))) IS NULL, scim_instant(json_extract(r.doc, ?)) DESC, r.seq ASC LIMIT 100
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
    true
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
