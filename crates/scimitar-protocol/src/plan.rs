//! What a filter or sort key means for a stored resource, resolved once.
//!
//! A [`Plan`] says where each attribute's value comes from (an indexed
//! column, a path in the JSON document, an array in it, the members table),
//! how the filter's literal is read for the attribute's type, and how
//! multi-valued attributes, value paths and `meta.resourceType` behave. It
//! holds no SQL: each storage backend lowers it into its own syntax, so
//! both backends filter alike and neither decides semantics.
//!
//! Invariant: every name in a plan comes from the schema (canonical
//! attribute names), never from request text, and literals are values to
//! bind. [`literal`] is the one place where a filter literal is read for an
//! attribute type; the in-memory evaluator uses it too.

use std::sync::OnceLock;

use crate::error::{Result, ScimError};
use crate::filter::{AttrPath, CompValue, CompareOp, Filter, split_attr_path};
use crate::schema::{AttrType, Attribute, Kind, ResourceType, Returned};

/// Where backends differ in what their SQL can read.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    /// A filter's dateTime literal in the form the backend binds, or `None`
    /// when its SQL cannot read it (the filter is then rejected).
    pub datetime: fn(&str) -> Option<String>,
    /// Whether a text parameter may hold NUL (PostgreSQL's cannot).
    pub text_holds_nul: bool,
}

/// An indexed column of a resource row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Id,
    ExternalId,
    Created,
    Modified,
    /// `userName` of a User, stored lower-cased.
    UserName,
    /// `displayName` of a Group, stored lower-cased.
    DisplayName,
}

impl Column {
    /// Whether the column holds its value lower-cased (written so by Rust).
    fn lowered(self) -> bool {
        matches!(self, Column::UserName | Column::DisplayName)
    }
}

/// A column of a row of the members table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberColumn {
    MemberId,
    MemberType,
    Display,
    GroupId,
}

/// A path of canonical names into the JSON document: `[extension URN,]
/// attribute[, sub-attribute]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocPath(pub Vec<String>);

impl DocPath {
    fn new(ext: Option<&str>, name: &str, sub: Option<&str>) -> Self {
        DocPath(ext.into_iter().chain([name]).chain(sub).map(str::to_string).collect())
    }
    fn with(&self, name: &str) -> Self {
        let mut p = self.0.clone();
        p.push(name.to_string());
        DocPath(p)
    }
}

/// A value that a condition tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Column(Column),
    /// A single value in the document.
    Doc(DocPath),
    /// Inside [`Plan::Exists`] over an array of simple values: the element.
    Element,
    /// Inside [`Plan::Exists`] over an array, or [`Plan::Object`]: this
    /// sub-attribute of the element or object.
    Field(String),
    /// Inside [`Plan::Exists`] over an array of complex values: the
    /// element's `value`, implied by naming the attribute alone
    /// (`emails eq "x"`).
    ValueField,
    /// Inside [`Plan::Exists`] over members rows: this column.
    Member(MemberColumn),
}

/// How text compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    Exact,
    /// Both sides folded to lower case.
    Insensitive,
    /// Case-insensitive on a column stored lower-cased: only the literal is
    /// folded, in Rust, as it was at write time.
    Lowered,
}

impl Case {
    fn of(attr: &Attribute) -> Case {
        if attr.case_insensitive() {
            Case::Insensitive
        } else {
            Case::Exact
        }
    }
}

/// A filter literal read for an attribute's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `eq null` (absent) or `ne null` (present).
    Null,
    /// A boolean attribute against `true`/`false` or a string `"true"` or
    /// `"false"` in any case (Entra sends `"True"`).
    Bool(bool),
    /// A numeric attribute against a JSON number.
    Number(serde_json::Number),
    /// A numeric attribute against a quoted number (`level eq "5"`), read
    /// with every digit (an integer within 64 bits stays an integer). The
    /// database reads it as a number; the evaluator (PATCH value filters)
    /// never has, and still does not.
    QuotedNumber(serde_json::Number),
    /// Text against a string literal, as written (see [`Case`] for folding).
    Text(String),
    /// Text against a bare number or boolean, as its JSON text. The database
    /// compares the text; the evaluator matches values of the literal's own
    /// JSON type only, so never this.
    BareText(String),
    /// A dateTime attribute against a string, compared as instants. In a
    /// plan, in the form the backend's [`Dialect`] binds.
    DateTime(String),
}

/// `operand op literal`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub op: CompareOp,
    pub literal: Literal,
    pub case: Case,
}

/// A collection whose elements a condition tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Collection {
    /// The array at this path of the document.
    Array(DocPath),
    /// The group's rows of the members table.
    Members,
    /// The rows of the members table naming this resource as a member (a
    /// User's `groups`).
    Groups,
}

/// A filter resolved against a resource type.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    And(Vec<Plan>),
    Or(Vec<Plan>),
    Not(Box<Plan>),
    /// Known without reading the row (`meta.resourceType`).
    Const(bool),
    /// The operand has a value.
    Present(Operand),
    Compare(Operand, Comparison),
    /// Some element of the collection (`negated`: none) satisfies `cond`.
    /// `ne` on a multi-valued attribute is a negated `eq`: no value equals.
    Exists {
        negated: bool,
        over: Collection,
        cond: Box<Plan>,
    },
    /// A value path on a single-valued complex attribute
    /// (`manager[value eq "x"]`): `cond` on the object at `path`.
    Object {
        path: DocPath,
        cond: Box<Plan>,
    },
}

/// How a sort key orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Boolean,
    Number,
    /// Instants, whatever RFC 3339 form the values have.
    DateTime,
    /// Text in code point order, of the lower-cased values when
    /// [`Case::Insensitive`].
    Text(Case),
}

/// Where a sort key comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SortSource {
    Column(Column),
    Doc(DocPath),
    /// A multi-valued simple attribute: its first value.
    FirstElement(DocPath),
    /// A multi-valued complex attribute (RFC 7644 §3.4.2.3): `sub` of the
    /// primary element, else of the first.
    PrimaryElse {
        array: DocPath,
        sub: String,
    },
}

/// A sort key; absent values sort last, ties in store order.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub source: SortSource,
    pub key_type: KeyType,
}

/// Where an attribute path's value comes from.
enum Source<'a> {
    Column(Column, &'a Attribute),
    /// A single value in the document.
    Doc(DocPath, &'a Attribute),
    /// A single-valued complex attribute named alone: compared through its
    /// `value`, and the object of a value path.
    Complex {
        path: DocPath,
        attr: &'a Attribute,
        value: &'a Attribute,
    },
    /// A multi-valued attribute in the document, and an optional
    /// sub-attribute of each element.
    Array {
        path: DocPath,
        attr: &'a Attribute,
        sub: Option<&'a Attribute>,
    },
    /// Group members (`members`, `members.value|type|display`).
    Members {
        attr: &'a Attribute,
        sub: Option<&'a Attribute>,
    },
    /// User groups (`groups`, `groups.value`).
    Groups(&'a Attribute),
    /// `meta.resourceType`.
    Constant(&'static str, &'a Attribute),
}

fn cannot(p: &AttrPath) -> ScimError {
    ScimError::invalid_filter(format!("'{p}' cannot be used in a filter"))
}

/// An attribute that is never returned (`password`, write-only extension
/// attributes) cannot be filtered or sorted on either: the answer would
/// tell a client, guess by guess, what the value is.
pub(crate) fn never_returned(p: &dyn std::fmt::Display) -> ScimError {
    ScimError::invalid_filter(format!(
        "'{p}' is never returned, so it cannot be used in a filter or to sort"
    ))
}

/// Whether `attr` (or, named alone, its implied `value`) is never returned.
fn is_never_returned(attr: &Attribute, sub: Option<&Attribute>) -> bool {
    let never = |a: &Attribute| a.returned == Returned::Never;
    never(attr)
        || sub.is_some_and(never)
        || (sub.is_none() && attr.is_complex() && attr.sub("value").is_some_and(never))
}

/// The first path of `f` that names a never-returned attribute of `rt`
/// (value paths' sub-attributes included), if any.
pub fn never_returned_path(rt: &ResourceType, f: &Filter) -> Option<String> {
    let resolve = |p: &AttrPath| rt.resolve(p.urn.as_deref(), &p.name, p.sub.as_deref());
    match f {
        Filter::And(v) | Filter::Or(v) => v.iter().find_map(|x| never_returned_path(rt, x)),
        Filter::Not(x) => never_returned_path(rt, x),
        Filter::Present(p) | Filter::Compare(p, ..) => resolve(p)
            .filter(|r| is_never_returned(r.attr, r.sub))
            .map(|_| p.to_string()),
        Filter::ValuePath(p, inner) => {
            let r = resolve(p)?;
            if is_never_returned(r.attr, r.sub) {
                return Some(p.to_string());
            }
            let mut subs = Vec::new();
            element_paths(inner, &mut subs);
            subs.into_iter()
                .find(|name| r.attr.sub(name).is_some_and(|s| s.returned == Returned::Never))
                .map(|name| format!("{p}.{name}"))
        }
    }
}

/// The attribute names a value path's filter tests.
fn element_paths<'f>(f: &'f Filter, out: &mut Vec<&'f str>) {
    match f {
        Filter::And(v) | Filter::Or(v) => v.iter().for_each(|x| element_paths(x, out)),
        Filter::Not(x) => element_paths(x, out),
        Filter::Present(p) | Filter::Compare(p, ..) => out.push(&p.name),
        Filter::ValuePath(p, _) => out.push(&p.name),
    }
}

fn source<'a>(rt: &'a ResourceType, kind: Kind, p: &AttrPath) -> Result<Source<'a>> {
    let r = rt
        .resolve(p.urn.as_deref(), &p.name, p.sub.as_deref())
        .ok_or_else(|| ScimError::invalid_filter(format!("unknown attribute '{p}'")))?;
    let (attr, sub, leaf) = (r.attr, r.sub, r.leaf());
    if is_never_returned(attr, sub) {
        return Err(never_returned(p));
    }
    let sub_name = sub.map(|s| s.name.as_str());
    if r.schema.is_none() {
        // Common attributes.
        return Ok(match (attr.name.as_str(), sub_name) {
            ("id", None) => Source::Column(Column::Id, leaf),
            ("externalId", None) => Source::Column(Column::ExternalId, leaf),
            ("meta", Some("created")) => Source::Column(Column::Created, leaf),
            ("meta", Some("lastModified")) => Source::Column(Column::Modified, leaf),
            ("meta", Some("resourceType")) => Source::Constant(kind.as_str(), leaf),
            _ => return Err(cannot(p)),
        });
    }
    let ext = if r.extension { r.schema } else { None };
    match (kind, ext, attr.name.as_str()) {
        (Kind::User, None, "userName") => return Ok(Source::Column(Column::UserName, leaf)),
        (Kind::Group, None, "displayName") => return Ok(Source::Column(Column::DisplayName, leaf)),
        (Kind::Group, None, "members") => {
            return match sub_name {
                None | Some("value" | "type" | "display") => Ok(Source::Members { attr, sub }),
                _ => Err(cannot(p)),
            };
        }
        (Kind::User, None, "groups") => {
            return match sub_name {
                None | Some("value") => Ok(Source::Groups(attr)),
                _ => Err(cannot(p)),
            };
        }
        _ => {}
    }
    if attr.name == "manager" && sub_name.is_some_and(|s| s != "value") {
        return Err(cannot(p));
    }
    if attr.multi_valued {
        return Ok(Source::Array {
            path: DocPath::new(ext, &attr.name, None),
            attr,
            sub,
        });
    }
    if attr.is_complex() && sub.is_none() {
        let value = attr
            .sub("value")
            .ok_or_else(|| ScimError::invalid_filter(format!("'{p}' is complex; name a sub-attribute")))?;
        return Ok(Source::Complex {
            path: DocPath::new(ext, &attr.name, None),
            attr,
            value,
        });
    }
    Ok(Source::Doc(DocPath::new(ext, &attr.name, sub_name), leaf))
}

/// A case-exact string attribute `value`: what `members eq "x"` compares
/// (member ids are compared exactly, unlike `members.value`).
fn exact_value() -> &'static Attribute {
    static VALUE: OnceLock<Attribute> = OnceLock::new();
    VALUE.get_or_init(|| crate::schema::exact_string("value"))
}

/// Rejects comparisons that make no sense for the attribute's type.
pub(crate) fn check_operator(attr: &Attribute, op: CompareOp, cv: &CompValue) -> Result<()> {
    let ordering = matches!(op, CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le);
    let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    match attr.kind {
        AttrType::Boolean if ordering || substring => Err(ScimError::invalid_filter(format!(
            "operator '{}' cannot be used on boolean attribute '{}'",
            op.as_str(),
            attr.name
        ))),
        AttrType::Binary if ordering => Err(ScimError::invalid_filter(format!(
            "operator '{}' cannot be used on binary attribute '{}'",
            op.as_str(),
            attr.name
        ))),
        AttrType::Integer | AttrType::Decimal if substring => Err(ScimError::invalid_filter(format!(
            "operator '{}' cannot be used on numeric attribute '{}'",
            op.as_str(),
            attr.name
        ))),
        _ if (ordering || substring) && matches!(cv, CompValue::Null | CompValue::Bool(_)) => Err(
            ScimError::invalid_filter(format!("operator '{}' needs a string or number value", op.as_str())),
        ),
        _ => Ok(()),
    }
}

/// Reads a filter literal for an attribute's type: the one place where
/// string booleans, numeric strings and dateTimes are recognised.
pub(crate) fn literal(attr: &Attribute, op: CompareOp, cv: &CompValue) -> Result<Literal> {
    let substring = matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew);
    Ok(match (attr.kind, cv) {
        (_, CompValue::Null) => Literal::Null,
        (AttrType::Boolean, CompValue::Bool(x)) => Literal::Bool(*x),
        (AttrType::Boolean, CompValue::String(s)) if s.eq_ignore_ascii_case("true") => Literal::Bool(true),
        (AttrType::Boolean, CompValue::String(s)) if s.eq_ignore_ascii_case("false") => Literal::Bool(false),
        (AttrType::Boolean, _) => {
            return Err(ScimError::invalid_filter(format!(
                "'{}' is a boolean; compare it with true or false",
                attr.name
            )));
        }
        (AttrType::Integer | AttrType::Decimal, CompValue::Number(n)) => Literal::Number(n.clone()),
        (AttrType::Integer | AttrType::Decimal, CompValue::String(s)) => match quoted_number(s) {
            Some(n) => Literal::QuotedNumber(n),
            None => {
                return Err(ScimError::invalid_filter(format!(
                    "'{}' is numeric; '{s}' is not a number",
                    attr.name
                )));
            }
        },
        (AttrType::Integer | AttrType::Decimal, _) => {
            return Err(ScimError::invalid_filter(format!("'{}' is numeric", attr.name)));
        }
        (AttrType::DateTime, CompValue::String(s)) if !substring => Literal::DateTime(s.clone()),
        (_, CompValue::String(s)) => Literal::Text(s.clone()),
        (_, other) => Literal::BareText(other.to_string()),
    })
}

/// A quoted number as JSON reads it (so `"9223372036854775807"` keeps its
/// digits), or as a finite double for the forms JSON has not (`" 5"`, `".5"`).
fn quoted_number(s: &str) -> Option<serde_json::Number> {
    let s = s.trim();
    if let Ok(n) = s.parse::<serde_json::Number>() {
        return Some(n);
    }
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .and_then(serde_json::Number::from_f64)
}

/// Resolves a filter against a resource type.
pub fn plan_filter(rt: &ResourceType, kind: Kind, f: &Filter, dialect: &Dialect) -> Result<Plan> {
    Planner { rt, kind, dialect }.filter(f)
}

/// Whether a filter can match at most a few resources through an index
/// (`userName eq`, Group `displayName eq`, `id eq`, `externalId eq`),
/// possibly `and`-ed with more terms: cheap enough to run without a thread
/// hop. Decided by the plan's resolution without building the plan.
pub fn is_point_lookup(rt: &ResourceType, kind: Kind, f: &Filter) -> bool {
    match f {
        Filter::And(items) => items.iter().any(|i| is_point_lookup(rt, kind, i)),
        Filter::Compare(p, CompareOp::Eq, CompValue::String(_)) => {
            matches!(source(rt, kind, p), Ok(Source::Column(c, _)) if !matches!(c, Column::Created | Column::Modified))
        }
        _ => false,
    }
}

/// What a list query asks of the database, for per-tenant shares and the
/// filter cost budget. An estimate from the filter's shape: it reads no
/// data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Index lookups only: a point lookup (see [`is_point_lookup`]), or an
    /// `or` of `eq` lookups on one indexed attribute (which both databases
    /// answer as an `IN` on its index), possibly `and`-ed with more terms.
    Lookup,
    /// Every resource of the type is read, and each costs `per_resource`
    /// units: one per comparison of a single value, [`COLLECTION_WEIGHT`]
    /// per comparison over a multi-valued attribute or a group's members
    /// (each element is read), one for a sort key; 0 for a plain page.
    Scan { per_resource: u64 },
}

/// What a comparison over the elements of a multi-valued attribute, or
/// over a group's members, costs in [`Work::Scan`] units: reading a JSON
/// array (or the members' rows) and testing each element costs about ten
/// times as much as testing one value.
pub const COLLECTION_WEIGHT: u64 = 10;

/// The work of a list query with this filter (and a sort key, if `sorted`).
pub fn work(rt: &ResourceType, kind: Kind, filter: Option<&Filter>, sorted: bool) -> Work {
    if filter.is_some_and(|f| lookup(rt, kind, f)) {
        return Work::Lookup;
    }
    let per_resource = filter.map_or(0, |f| units(rt, kind, f)) + u64::from(sorted);
    Work::Scan { per_resource }
}

/// Whether `f` is answered through an index (see [`Work::Lookup`]).
fn lookup(rt: &ResourceType, kind: Kind, f: &Filter) -> bool {
    match f {
        Filter::And(items) => items.iter().any(|i| lookup(rt, kind, i)),
        Filter::Or(items) => {
            let mut columns = items.iter().map(|i| indexed_eq(rt, kind, i));
            match columns.next().flatten() {
                Some(first) => columns.all(|c| c == Some(first)),
                None => false,
            }
        }
        other => indexed_eq(rt, kind, other).is_some(),
    }
}

/// The indexed column that `f` compares with `eq` to a string, if it is one.
fn indexed_eq(rt: &ResourceType, kind: Kind, f: &Filter) -> Option<Column> {
    match f {
        Filter::Compare(p, CompareOp::Eq, CompValue::String(_)) => match source(rt, kind, p) {
            Ok(Source::Column(c, _)) if !matches!(c, Column::Created | Column::Modified) => Some(c),
            _ => None,
        },
        _ => None,
    }
}

/// The cost of testing `f` on one resource, in [`Work::Scan`] units.
fn units(rt: &ResourceType, kind: Kind, f: &Filter) -> u64 {
    let leaf = |p: &AttrPath| match source(rt, kind, p) {
        Ok(Source::Array { .. } | Source::Members { .. } | Source::Groups(_)) => COLLECTION_WEIGHT,
        _ => 1,
    };
    match f {
        Filter::And(items) | Filter::Or(items) => items.iter().map(|i| units(rt, kind, i)).sum(),
        Filter::Not(inner) => units(rt, kind, inner),
        Filter::Present(p) | Filter::Compare(p, ..) => leaf(p),
        Filter::ValuePath(p, inner) => match source(rt, kind, p) {
            // `manager[…]`: one object.
            Ok(Source::Complex { .. }) => inner.terms() as u64,
            _ => inner.terms() as u64 * COLLECTION_WEIGHT,
        },
    }
}

/// Where an element test of a value path reads its operands.
#[derive(Clone, Copy)]
enum Within {
    Array,
    Object,
    Members,
}

struct Planner<'a> {
    rt: &'a ResourceType,
    kind: Kind,
    dialect: &'a Dialect,
}

impl Planner<'_> {
    fn filter(&self, f: &Filter) -> Result<Plan> {
        Ok(match f {
            Filter::And(items) => Plan::And(items.iter().map(|i| self.filter(i)).collect::<Result<_>>()?),
            Filter::Or(items) => Plan::Or(items.iter().map(|i| self.filter(i)).collect::<Result<_>>()?),
            Filter::Not(inner) => Plan::Not(Box::new(self.filter(inner)?)),
            Filter::Present(p) => self.leaf(p, None)?,
            Filter::Compare(p, op, v) => self.leaf(p, Some((*op, v)))?,
            Filter::ValuePath(p, inner) => {
                if p.sub.is_some() {
                    return Err(ScimError::invalid_filter(format!("invalid value path '{p}'")));
                }
                match source(self.rt, self.kind, p)? {
                    Source::Array { path, attr, .. } => Plan::Exists {
                        negated: false,
                        over: Collection::Array(path),
                        cond: Box::new(self.element(attr, inner, Within::Array)?),
                    },
                    Source::Members { attr, .. } => Plan::Exists {
                        negated: false,
                        over: Collection::Members,
                        cond: Box::new(self.element(attr, inner, Within::Members)?),
                    },
                    Source::Complex { path, attr, .. } => Plan::Object {
                        path,
                        cond: Box::new(self.element(attr, inner, Within::Object)?),
                    },
                    _ => return Err(ScimError::invalid_filter(format!("'{p}' is not multi-valued"))),
                }
            }
        })
    }

    /// `attr pr` or `attr op value` on the resource.
    fn leaf(&self, p: &AttrPath, cmp: Option<(CompareOp, &CompValue)>) -> Result<Plan> {
        let single = |operand, attr, case| self.single(operand, attr, case, cmp);
        let exists = |over, operand, attr, case| self.exists(over, operand, attr, case, cmp);
        match source(self.rt, self.kind, p)? {
            Source::Column(col, attr) => {
                let case = match Case::of(attr) {
                    Case::Insensitive if col.lowered() => Case::Lowered,
                    case => case,
                };
                single(Operand::Column(col), attr, case)
            }
            Source::Doc(path, attr) => single(Operand::Doc(path), attr, Case::of(attr)),
            Source::Complex { path, value, .. } => single(Operand::Doc(path.with(&value.name)), value, Case::of(value)),
            Source::Constant(kind, attr) => {
                let Some((op, v)) = cmp else {
                    return Ok(Plan::Const(true));
                };
                check_operator(attr, op, v)?;
                let CompValue::String(s) = v else {
                    return Err(ScimError::invalid_filter("meta.resourceType is a string"));
                };
                Ok(Plan::Const(match op {
                    CompareOp::Eq => s == kind,
                    CompareOp::Ne => s != kind,
                    _ => return Err(ScimError::invalid_filter("meta.resourceType supports eq and ne")),
                }))
            }
            Source::Array { path, attr, sub } => {
                let (operand, elem) = match (sub, attr.is_complex()) {
                    (Some(s), _) => (Operand::Field(s.name.clone()), s),
                    (None, true) => match attr.sub("value") {
                        Some(v) => (Operand::ValueField, v),
                        None => {
                            return Err(ScimError::invalid_filter(format!(
                                "'{p}' is complex; name a sub-attribute"
                            )));
                        }
                    },
                    (None, false) => (Operand::Element, attr),
                };
                exists(Collection::Array(path), operand, elem, Case::of(elem))
            }
            Source::Members { sub, .. } => {
                let col = match sub.map(|s| s.name.as_str()) {
                    None | Some("value") => MemberColumn::MemberId,
                    Some("type") => MemberColumn::MemberType,
                    _ => MemberColumn::Display,
                };
                let leaf = sub.unwrap_or(exact_value());
                exists(Collection::Members, Operand::Member(col), leaf, Case::of(leaf))
            }
            Source::Groups(attr) => {
                let leaf = attr.sub("value").unwrap_or(exact_value());
                let operand = Operand::Member(MemberColumn::GroupId);
                exists(Collection::Groups, operand, leaf, Case::of(leaf))
            }
        }
    }

    /// A test of a single value.
    fn single(
        &self,
        operand: Operand,
        attr: &Attribute,
        case: Case,
        cmp: Option<(CompareOp, &CompValue)>,
    ) -> Result<Plan> {
        Ok(match cmp {
            None => Plan::Present(operand),
            Some((op, v)) => Plan::Compare(operand, self.compare(attr, case, op, v)?),
        })
    }

    /// A test of the values of a multi-valued attribute, where `ne` means
    /// that no value equals.
    fn exists(
        &self,
        over: Collection,
        operand: Operand,
        attr: &Attribute,
        case: Case,
        cmp: Option<(CompareOp, &CompValue)>,
    ) -> Result<Plan> {
        let negated = matches!(cmp, Some((CompareOp::Ne, _)));
        let cmp = cmp.map(|(op, v)| (if negated { CompareOp::Eq } else { op }, v));
        Ok(Plan::Exists {
            negated,
            over,
            cond: Box::new(self.single(operand, attr, case, cmp)?),
        })
    }

    /// A value path's filter on one value of `attr` (its paths name
    /// sub-attributes).
    fn element(&self, attr: &Attribute, f: &Filter, within: Within) -> Result<Plan> {
        let (p, cmp) = match f {
            Filter::And(items) => {
                return Ok(Plan::And(
                    items
                        .iter()
                        .map(|i| self.element(attr, i, within))
                        .collect::<Result<_>>()?,
                ));
            }
            Filter::Or(items) => {
                return Ok(Plan::Or(
                    items
                        .iter()
                        .map(|i| self.element(attr, i, within))
                        .collect::<Result<_>>()?,
                ));
            }
            Filter::Not(inner) => return Ok(Plan::Not(Box::new(self.element(attr, inner, within)?))),
            Filter::ValuePath(..) => return Err(ScimError::invalid_filter("value paths cannot be nested")),
            Filter::Present(p) => (p, None),
            Filter::Compare(p, op, v) => (p, Some((*op, v))),
        };
        if p.urn.is_some() || p.sub.is_some() {
            return Err(ScimError::invalid_filter(format!(
                "'{p}' is not a sub-attribute of '{}'",
                attr.name
            )));
        }
        let (operand, leaf) = if attr.is_complex() {
            let sub = attr.sub(&p.name).ok_or_else(|| {
                ScimError::invalid_filter(format!("'{}' has no sub-attribute '{}'", attr.name, p.name))
            })?;
            if sub.returned == Returned::Never {
                return Err(never_returned(&format!("{}.{}", attr.name, sub.name)));
            }
            let operand = match within {
                Within::Array | Within::Object => Operand::Field(sub.name.clone()),
                Within::Members => Operand::Member(match sub.name.as_str() {
                    "value" => MemberColumn::MemberId,
                    "type" => MemberColumn::MemberType,
                    "display" => MemberColumn::Display,
                    _ => {
                        return Err(ScimError::invalid_filter(format!(
                            "'members.{}' cannot be used in a filter",
                            sub.name
                        )));
                    }
                }),
            };
            (operand, sub)
        } else if p.name.eq_ignore_ascii_case("value") {
            // A multi-valued simple attribute: the element itself is "value".
            (Operand::Element, attr)
        } else {
            return Err(ScimError::invalid_filter(format!(
                "'{}' has no sub-attribute '{}'",
                attr.name, p.name
            )));
        };
        Ok(match cmp {
            None => Plan::Present(operand),
            Some((op, v)) => Plan::Compare(operand, self.compare(leaf, Case::of(leaf), op, v)?),
        })
    }

    fn compare(&self, attr: &Attribute, case: Case, op: CompareOp, v: &CompValue) -> Result<Comparison> {
        check_operator(attr, op, v)?;
        if let CompValue::String(s) = v
            && !self.dialect.text_holds_nul
            && s.contains('\0')
        {
            return Err(ScimError::invalid_filter("filter values cannot contain NUL characters"));
        }
        let literal = match literal(attr, op, v)? {
            Literal::DateTime(s) => Literal::DateTime(
                (self.dialect.datetime)(&s)
                    .ok_or_else(|| ScimError::invalid_filter(format!("'{s}' is not a dateTime")))?,
            ),
            // The name columns hold NFC (`resource::nfc_names`): so does
            // what they are compared with.
            Literal::Text(s) if case == Case::Lowered => Literal::Text(crate::resource::nfc(&s).into_owned()),
            other => other,
        };
        Ok(Comparison { op, literal, case })
    }
}

/// Resolves a `sortBy` against a resource type. `None`: every resource of
/// the type has the same key (`meta.resourceType`), so store order.
pub fn plan_sort(rt: &ResourceType, kind: Kind, sort_by: &str) -> Result<Option<SortKey>> {
    let (urn, name, sub) = split_attr_path(sort_by)
        .ok_or_else(|| ScimError::invalid_value(format!("invalid sortBy attribute '{sort_by}'")))?;
    let p = AttrPath { urn, name, sub };
    let key = |source, attr: &Attribute, case| {
        let key_type = match (attr.kind, &source) {
            (AttrType::Boolean, _) => KeyType::Boolean,
            (AttrType::Integer | AttrType::Decimal, _) => KeyType::Number,
            // The store writes its own timestamps (`meta.created`,
            // `lastModified`) in one fixed-width UTC form: text order.
            (AttrType::DateTime, SortSource::Column(_)) => KeyType::Text(case),
            (AttrType::DateTime, _) => KeyType::DateTime,
            _ => KeyType::Text(case),
        };
        Ok(Some(SortKey { source, key_type }))
    };
    match source(rt, kind, &p).map_err(|e| ScimError::invalid_value(e.detail))? {
        Source::Column(col, attr) => {
            let case = match Case::of(attr) {
                Case::Insensitive if col.lowered() => Case::Lowered,
                case => case,
            };
            key(SortSource::Column(col), attr, case)
        }
        Source::Doc(path, attr) => key(SortSource::Doc(path), attr, Case::of(attr)),
        Source::Complex { path, value, .. } => key(SortSource::Doc(path.with(&value.name)), value, Case::of(value)),
        Source::Array { path, attr, sub } => {
            // RFC 7644 §3.4.2.3: a multi-valued attribute sorts by its
            // primary value, else its first.
            let leaf = sub.or_else(|| attr.sub("value")).unwrap_or(attr);
            let source = match (sub, attr.is_complex()) {
                (Some(s), _) => SortSource::PrimaryElse {
                    array: path,
                    sub: s.name.clone(),
                },
                (None, true) => SortSource::PrimaryElse {
                    array: path,
                    sub: "value".into(),
                },
                (None, false) => SortSource::FirstElement(path),
            };
            key(source, leaf, Case::of(leaf))
        }
        Source::Constant(..) => Ok(None),
        Source::Members { .. } | Source::Groups(_) => {
            Err(ScimError::invalid_value(format!("cannot sort by '{sort_by}'")))
        }
    }
}
