//! Lowering of filter and sort plans (`scimitar_protocol::plan`) to
//! PostgreSQL SQL. What a filter means is decided there; this is only
//! syntax.
//!
//! Column names are fixed here; JSON paths come from the plan (canonical
//! names) but are still bound (custom schemas are tenant data); every value
//! is a bound, explicitly cast parameter. Because PostgreSQL numbers its
//! parameters, one placeholder may appear several times in the SQL.
//! Case-insensitive comparisons fold both sides with `lower()`. Substring
//! operators use `strpos`/`left`/`right`, never `LIKE`, so `%`, `_` and `\`
//! in values are literal. Ordering comparisons and sort keys use
//! `COLLATE "C"` (code point order, as SQLite and the evaluator).

use scimitar_protocol::ScimError;
use scimitar_protocol::filter::{CompareOp, Filter};
use scimitar_protocol::list::SortOrder;
use scimitar_protocol::plan::{
    self, Case, Collection, Column, Comparison, Dialect, DocPath, KeyType, Literal, MemberColumn, Operand, Plan,
    SortSource,
};
use scimitar_protocol::schema::ResourceType;
use scimitar_store::Kind;
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
    fn path(&mut self, p: &DocPath) -> String {
        self.bind(p.0.clone(), "text[]")
    }
    fn text(&mut self, s: &str) -> String {
        self.bind(s.to_string(), "text")
    }
}

/// References to the parameters, as tokio-postgres takes them.
pub fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
}

const DIALECT: Dialect = Dialect {
    datetime: timestamp_value,
    text_holds_nul: false,
};

/// A filter's dateTime value in UTC RFC 3339, so the cast in SQL cannot
/// fail (`datetime::filter_instant` keeps it within years 1–9999). A date
/// alone, or a date-time without offset, means UTC.
fn timestamp_value(s: &str) -> Option<String> {
    scimitar_protocol::datetime::filter_instant(s).and_then(|t| t.format(&Rfc3339).ok())
}

/// A value expression.
enum Val {
    /// A text column.
    Text(&'static str),
    /// A jsonb expression.
    Json(String),
}

impl Val {
    fn text(&self) -> String {
        match self {
            Val::Text(c) => (*c).to_string(),
            Val::Json(j) => format!("({j} #>> '{{}}')"),
        }
    }
}

fn column(c: Column) -> Val {
    Val::Text(match c {
        Column::Id => "r.id",
        Column::ExternalId => "r.external_id",
        Column::Created => "r.created",
        Column::Modified => "r.modified",
        Column::UserName => "r.user_name_ci",
        Column::DisplayName => "r.display_name_ci",
    })
}

fn member_column(c: MemberColumn) -> Val {
    Val::Text(match c {
        MemberColumn::MemberId => "m.member_id",
        MemberColumn::MemberType => "m.member_type",
        MemberColumn::Display => "m.display",
        MemberColumn::GroupId => "m.group_id",
    })
}

/// The elements of the array at `path` (`'[]'` if it is not an array, so
/// that a stray scalar never aborts the query).
fn elements(b: &mut Builder, path: &DocPath) -> String {
    let p = b.path(path);
    format!(
        "jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> {p}) = 'array' THEN r.doc #> {p} ELSE '[]'::jsonb END) AS e(value)"
    )
}

/// Appends the condition for `f` on the row `r` of `resources`.
pub fn lower_filter(b: &mut Builder, rt: &ResourceType, kind: Kind, f: &Filter) -> Result<(), ScimError> {
    let plan = plan::plan_filter(rt, kind, f, &DIALECT)?;
    let cond = lower(b, &plan, None);
    b.push(&cond);
    Ok(())
}

/// The condition for `p`. `object`: the (bound) path of the object a value
/// path's terms read (`manager[…]`); otherwise their fields are those of `e`.
fn lower(b: &mut Builder, p: &Plan, object: Option<&str>) -> String {
    match p {
        Plan::And(items) | Plan::Or(items) => {
            let sep = if matches!(p, Plan::And(_)) { " AND " } else { " OR " };
            chain(b, items, sep, object)
        }
        Plan::Not(inner) => format!("NOT ({})", lower(b, inner, object)),
        Plan::Const(hit) => (if *hit { "TRUE" } else { "FALSE" }).into(),
        Plan::Present(o) => format!("{} IS NOT NULL", operand(b, o, object).text()),
        Plan::Compare(o, c) => {
            let val = operand(b, o, object);
            compare(b, &val, c)
        }
        Plan::Exists { negated, over, cond } => {
            let (from, join) = match over {
                Collection::Array(path) => (elements(b, path), ""),
                Collection::Members => (
                    "members m".into(),
                    "m.tenant_id = r.tenant_id AND m.group_id = r.id AND ",
                ),
                Collection::Groups => (
                    "members m".into(),
                    "m.tenant_id = r.tenant_id AND m.member_id = r.id AND ",
                ),
            };
            let cond = lower(b, cond, None);
            let not = if *negated { "NOT " } else { "" };
            format!("{not}EXISTS (SELECT 1 FROM {from} WHERE {join}{cond})")
        }
        Plan::Object { path, cond } => {
            let base = b.path(path);
            format!("({})", lower(b, cond, Some(&base)))
        }
    }
}

/// Terms of an `and` or `or` written side by side; a longer chain is split
/// into halves.
const FLAT_CHAIN: usize = 4;

/// `(a OR b OR …)`, split into halves past [`FLAT_CHAIN`] terms as on
/// SQLite (where a flat chain of 1,000 terms is deeper than its parser
/// allows), so that both backends send the same shape.
fn chain(b: &mut Builder, items: &[Plan], sep: &str, object: Option<&str>) -> String {
    if items.len() <= FLAT_CHAIN {
        let parts: Vec<String> = items.iter().map(|it| lower(b, it, object)).collect();
        return format!("({})", parts.join(sep));
    }
    let (left, right) = items.split_at(items.len() / 2);
    let left = chain(b, left, sep, object);
    let right = chain(b, right, sep, object);
    format!("({left}{sep}{right})")
}

fn operand(b: &mut Builder, o: &Operand, object: Option<&str>) -> Val {
    match o {
        Operand::Column(c) => column(*c),
        Operand::Doc(path) => Val::Json(format!("(r.doc #> {})", b.path(path))),
        Operand::Element => Val::Json("e.value".into()),
        Operand::Field(name) => match object {
            Some(base) => Val::Json(format!("(r.doc #> {base} -> {})", b.text(name))),
            None => Val::Json(format!("(e.value -> {})", b.text(name))),
        },
        Operand::ValueField => Val::Json("(e.value -> 'value')".into()),
        Operand::Member(c) => member_column(*c),
    }
}

/// Accepts an RFC 3339 text that PostgreSQL can cast: not the year 0, no
/// offset beyond ±15:59 (both valid RFC 3339, and stored before values
/// were normalised on write). Other text compares as absent rather than
/// failing the query.
const DATETIME_RE: &str = r"'^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-](0[0-9]|1[0-5]):[0-9]{2})$'";

fn as_timestamp(t: &str) -> String {
    format!("(CASE WHEN {t} ~ {DATETIME_RE} THEN ({t})::timestamptz END)")
}

/// Numbers compare as `numeric`, exactly: as float8, 2^63 - 2 would equal
/// 2^63 - 1 (and JSONB keeps numbers as numeric anyway).
fn as_number(val: &Val) -> String {
    match val {
        Val::Json(j) => format!("(CASE WHEN jsonb_typeof({j}) = 'number' THEN ({j})::numeric END)"),
        other => {
            let t = other.text();
            format!("(CASE WHEN {t} ~ '^-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?$' THEN ({t})::numeric END)")
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

/// `val op literal`.
fn compare(b: &mut Builder, val: &Val, c: &Comparison) -> String {
    let Comparison { op, literal, case } = c;
    let mut collate = "";
    let (lhs, rhs) = match literal {
        Literal::Null => {
            let is = if *op == CompareOp::Eq { "IS" } else { "IS NOT" };
            return format!("{} {is} NULL", val.text());
        }
        Literal::Bool(x) => (as_boolean(val), b.bind(*x, "boolean")),
        // Bound as its JSON text and cast, every digit kept.
        Literal::Number(n) | Literal::QuotedNumber(n) => {
            (as_number(val), format!("({})::numeric", b.text(&n.to_string())))
        }
        // Bound as text (the driver only binds chrono/time types as
        // timestamptz), cast in SQL; normalised by the dialect so the cast holds.
        Literal::DateTime(t) => (as_timestamp(&val.text()), format!("({})::timestamptz", b.text(t))),
        Literal::Text(s) | Literal::BareText(s) => {
            collate = " COLLATE \"C\"";
            match case {
                Case::Exact => (val.text(), b.text(s)),
                // Lower-cased at write time in Rust: lower the value alike.
                Case::Lowered => (val.text(), b.bind(s.to_lowercase(), "text")),
                Case::Insensitive => (format!("lower({})", val.text()), format!("lower({})", b.text(s))),
            }
        }
    };
    match op {
        CompareOp::Co => format!("strpos({lhs}, {rhs}) > 0"),
        CompareOp::Sw => format!("left({lhs}, length({rhs})) = {rhs}"),
        CompareOp::Ew => format!("right({lhs}, length({rhs})) = {rhs}"),
        CompareOp::Eq => format!("{lhs} = {rhs}"),
        CompareOp::Ne => format!("({lhs} IS NULL OR {lhs} <> {rhs})"),
        CompareOp::Gt => format!("{lhs}{collate} > {rhs}"),
        CompareOp::Ge => format!("{lhs}{collate} >= {rhs}"),
        CompareOp::Lt => format!("{lhs}{collate} < {rhs}"),
        CompareOp::Le => format!("{lhs}{collate} <= {rhs}"),
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
        // One resource type per query: the key is constant.
        b.push(" ORDER BY r.seq ASC");
        return Ok(());
    };
    let val = match &key.source {
        SortSource::Column(c) => column(*c),
        SortSource::Doc(path) => Val::Json(format!("(r.doc #> {})", b.path(path))),
        SortSource::FirstElement(path) => Val::Json(format!("(r.doc #> {} -> 0)", b.path(path))),
        SortSource::PrimaryElse { array, sub } => {
            let sp = b.text(sub);
            let arr = format!("r.doc #> {}", b.path(array));
            let from = elements(b, array);
            Val::Json(format!(
                "COALESCE((SELECT e.value -> {sp} FROM {from} WHERE e.value -> 'primary' = 'true'::jsonb LIMIT 1), ({arr}) -> 0 -> {sp})"
            ))
        }
    };
    let k = match key.key_type {
        KeyType::Boolean => as_boolean(&val),
        KeyType::Number => as_number(&val),
        KeyType::DateTime => as_timestamp(&val.text()),
        KeyType::Text(Case::Insensitive) => format!("lower({}) COLLATE \"C\"", val.text()),
        KeyType::Text(_) => format!("{} COLLATE \"C\"", val.text()),
    };
    let dir = if order == SortOrder::Descending { "DESC" } else { "ASC" };
    b.push(&format!(" ORDER BY {k} {dir} NULLS LAST, r.seq ASC"));
    Ok(())
}

#[cfg(test)]
#[path = "../../scimitar-store-conformance/src/sql_pins.rs"]
mod sql_pins;

/// The SQL of representative filters and sort keys, pinned (see
/// `sql_pins`): the condition and `ORDER BY` as `list` writes them, after
/// its tenant and kind parameters.
#[cfg(test)]
mod pins {
    use std::sync::Arc;

    use scimitar_protocol::schema::ResourceType;
    use scimitar_store::Kind;

    use super::sql_pins::{Ask, check, error};

    /// The condition or `ORDER BY` as `list` writes it, after its tenant
    /// and kind parameters.
    fn lowered(kind: Kind, rt: Arc<ResourceType>, ask: Ask) -> String {
        let mut b = super::Builder::default();
        b.bind(1_i64, "bigint");
        b.bind(kind.as_str().to_string(), "text");
        let done = match ask {
            Ask::Filter(f) => super::lower_filter(&mut b, &rt, kind, &f),
            Ask::Sort(by, order) => super::order_by(&mut b, &rt, kind, &by, order),
            Ask::Point(f) => panic!("point lookups are a SQLite matter: {f}"),
        };
        done.map_or_else(|e| error(&e), |()| format!("{}\n{:?}", b.sql, b.params))
    }

    #[test]
    fn sql_is_pinned() {
        check(PINS, lowered);
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
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE lower(((e.value -> $4::text) #>> '{}')) = lower($5::text))
    [1, "User", ["emails"], "value", "A@x.com"]
User filter emails eq "a@x.com"
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE lower(((e.value -> 'value') #>> '{}')) = lower($4::text))
    [1, "User", ["emails"], "a@x.com"]
User filter emails.value ne "a@x.com"
    NOT EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE lower(((e.value -> $4::text) #>> '{}')) = lower($5::text))
    [1, "User", ["emails"], "value", "a@x.com"]
User filter emails pr
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE ((e.value -> 'value') #>> '{}') IS NOT NULL)
    [1, "User", ["emails"]]
User filter emails.primary eq true
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE (CASE WHEN jsonb_typeof((e.value -> $4::text)) = 'boolean' THEN ((e.value -> $4::text))::boolean END) = $5::boolean)
    [1, "User", ["emails"], "primary", true]
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
    (CASE WHEN r.created ~ '^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-](0[0-9]|1[0-5]):[0-9]{2})$' THEN (r.created)::timestamptz END) > ($3::text)::timestamptz
    [1, "User", "2024-03-01T00:00:00Z"]
User filter meta.lastModified ne "2024-01-01T00:00:00.000Z"
    ((CASE WHEN r.modified ~ '^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-](0[0-9]|1[0-5]):[0-9]{2})$' THEN (r.modified)::timestamptz END) IS NULL OR (CASE WHEN r.modified ~ '^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-](0[0-9]|1[0-5]):[0-9]{2})$' THEN (r.modified)::timestamptz END) <> ($3::text)::timestamptz)
    [1, "User", "2024-01-01T00:00:00Z"]
User filter meta.created lt "2024-03-01T01:00:00+02:00"
    (CASE WHEN r.created ~ '^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-](0[0-9]|1[0-5]):[0-9]{2})$' THEN (r.created)::timestamptz END) < ($3::text)::timestamptz
    [1, "User", "2024-02-29T23:00:00Z"]
User filter meta.created ge "2024-03-01"
    (CASE WHEN r.created ~ '^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-](0[0-9]|1[0-5]):[0-9]{2})$' THEN (r.created)::timestamptz END) >= ($3::text)::timestamptz
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
    NOT ((r.user_name_ci = $3::text OR EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $4::text[]) = 'array' THEN r.doc #> $4::text[] ELSE '[]'::jsonb END) AS e(value) WHERE lower(((e.value -> $5::text) #>> '{}')) = lower($6::text))))
    [1, "User", "alice", ["emails"], "type", "home"]
User filter userName eq "a" and (title pr or not (active eq false))
    (r.user_name_ci = $3::text AND (((r.doc #> $4::text[]) #>> '{}') IS NOT NULL OR NOT ((CASE WHEN jsonb_typeof((r.doc #> $5::text[])) = 'boolean' THEN ((r.doc #> $5::text[]))::boolean END) = $6::boolean)))
    [1, "User", "a", ["title"], ["active"], false]
User filter id eq "1" or id eq "2" or id eq "3" or id eq "4" or id eq "5"
    ((r.id = $3::text OR r.id = $4::text) OR (r.id = $5::text OR r.id = $6::text OR r.id = $7::text))
    [1, "User", "1", "2", "3", "4", "5"]
User filter title pr and nickName pr and title eq "a" and title eq "b" and title eq "c" and title eq "d" and title eq "e" and title eq "f" and title eq "g"
    ((((r.doc #> $3::text[]) #>> '{}') IS NOT NULL AND ((r.doc #> $4::text[]) #>> '{}') IS NOT NULL AND lower(((r.doc #> $5::text[]) #>> '{}')) = lower($6::text) AND lower(((r.doc #> $7::text[]) #>> '{}')) = lower($8::text)) AND ((lower(((r.doc #> $9::text[]) #>> '{}')) = lower($10::text) AND lower(((r.doc #> $11::text[]) #>> '{}')) = lower($12::text)) AND (lower(((r.doc #> $13::text[]) #>> '{}')) = lower($14::text) AND lower(((r.doc #> $15::text[]) #>> '{}')) = lower($16::text) AND lower(((r.doc #> $17::text[]) #>> '{}')) = lower($18::text))))
    [1, "User", ["title"], ["nickName"], ["title"], "a", ["title"], "b", ["title"], "c", ["title"], "d", ["title"], "e", ["title"], "f", ["title"], "g"]
User filter userName eq a\0b
    error Some(InvalidFilter): filter values cannot contain NUL characters
User filter active eq tr\0ue
    error Some(InvalidFilter): filter values cannot contain NUL characters
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
Group filter meta.resourceType eq "Group"
    TRUE
    [1, "Group"]
Custom filter level gt 6
    (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'number' THEN ((r.doc #> $3::text[]))::numeric END) > ($4::text)::numeric
    [1, "User", ["urn:example:custom:2.0:User", "level"], "6"]
Custom filter level eq "5"
    (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'number' THEN ((r.doc #> $3::text[]))::numeric END) = ($4::text)::numeric
    [1, "User", ["urn:example:custom:2.0:User", "level"], "5"]
Custom filter level eq 18446744073709551615
    (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'number' THEN ((r.doc #> $3::text[]))::numeric END) = ($4::text)::numeric
    [1, "User", ["urn:example:custom:2.0:User", "level"], "18446744073709551615"]
Custom filter score le 2.5
    (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'number' THEN ((r.doc #> $3::text[]))::numeric END) <= ($4::text)::numeric
    [1, "User", ["urn:example:custom:2.0:User", "score"], "2.5"]
Custom filter hired gt "2020-06-01T00:00:00Z"
    (CASE WHEN ((r.doc #> $3::text[]) #>> '{}') ~ '^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-](0[0-9]|1[0-5]):[0-9]{2})$' THEN (((r.doc #> $3::text[]) #>> '{}'))::timestamptz END) > ($4::text)::timestamptz
    [1, "User", ["urn:example:custom:2.0:User", "hired"], "2020-06-01T00:00:00Z"]
Custom filter hired ne "2020-01-01T00:00:00Z"
    ((CASE WHEN ((r.doc #> $3::text[]) #>> '{}') ~ '^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-](0[0-9]|1[0-5]):[0-9]{2})$' THEN (((r.doc #> $3::text[]) #>> '{}'))::timestamptz END) IS NULL OR (CASE WHEN ((r.doc #> $3::text[]) #>> '{}') ~ '^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-](0[0-9]|1[0-5]):[0-9]{2})$' THEN (((r.doc #> $3::text[]) #>> '{}'))::timestamptz END) <> ($4::text)::timestamptz)
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
    ((lower(((r.doc #> $3::text[] -> $4::text) #>> '{}')) = lower($5::text) AND (CASE WHEN jsonb_typeof((r.doc #> $3::text[] -> $6::text)) = 'number' THEN ((r.doc #> $3::text[] -> $6::text))::numeric END) >= ($7::text)::numeric))
    [1, "User", ["urn:example:custom:2.0:User", "badge"], "value", "b1", "rank", "2"]
Custom filter awards[rank gt 2 and primary eq "true"]
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE ((CASE WHEN jsonb_typeof((e.value -> $4::text)) = 'number' THEN ((e.value -> $4::text))::numeric END) > ($5::text)::numeric AND (CASE WHEN jsonb_typeof((e.value -> $6::text)) = 'boolean' THEN ((e.value -> $6::text))::boolean END) = $7::boolean))
    [1, "User", ["urn:example:custom:2.0:User", "awards"], "rank", "2", "primary", true]
Custom filter awards.rank lt 3
    EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $3::text[]) = 'array' THEN r.doc #> $3::text[] ELSE '[]'::jsonb END) AS e(value) WHERE (CASE WHEN jsonb_typeof((e.value -> $4::text)) = 'number' THEN ((e.value -> $4::text))::numeric END) < ($5::text)::numeric)
    [1, "User", ["urn:example:custom:2.0:User", "awards"], "rank", "3"]
Custom filter value eq "x"
    lower(((r.doc #> $3::text[]) #>> '{}')) = lower($4::text)
    [1, "User", ["urn:example:custom:2.0:User", "value"], "x"]
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
Group sort displayName ascending
     ORDER BY r.display_name_ci COLLATE "C" ASC NULLS LAST, r.seq ASC
    [1, "Group"]
Custom sort level descending
     ORDER BY (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'number' THEN ((r.doc #> $3::text[]))::numeric END) DESC NULLS LAST, r.seq ASC
    [1, "User", ["urn:example:custom:2.0:User", "level"]]
Custom sort score ascending
     ORDER BY (CASE WHEN jsonb_typeof((r.doc #> $3::text[])) = 'number' THEN ((r.doc #> $3::text[]))::numeric END) ASC NULLS LAST, r.seq ASC
    [1, "User", ["urn:example:custom:2.0:User", "score"]]
Custom sort hired descending
     ORDER BY (CASE WHEN ((r.doc #> $3::text[]) #>> '{}') ~ '^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-](0[0-9]|1[0-5]):[0-9]{2})$' THEN (((r.doc #> $3::text[]) #>> '{}'))::timestamptz END) DESC NULLS LAST, r.seq ASC
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
     ORDER BY (CASE WHEN jsonb_typeof(COALESCE((SELECT e.value -> $3::text FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $5::text[]) = 'array' THEN r.doc #> $5::text[] ELSE '[]'::jsonb END) AS e(value) WHERE e.value -> 'primary' = 'true'::jsonb LIMIT 1), (r.doc #> $4::text[]) -> 0 -> $3::text)) = 'number' THEN (COALESCE((SELECT e.value -> $3::text FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.doc #> $5::text[]) = 'array' THEN r.doc #> $5::text[] ELSE '[]'::jsonb END) AS e(value) WHERE e.value -> 'primary' = 'true'::jsonb LIMIT 1), (r.doc #> $4::text[]) -> 0 -> $3::text))::numeric END) DESC NULLS LAST, r.seq ASC
    [1, "User", "rank", ["urn:example:custom:2.0:User", "awards"], ["urn:example:custom:2.0:User", "awards"]]
"##;
}
