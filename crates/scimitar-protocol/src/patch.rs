//! PATCH (RFC 7644 §3.5.2), in both of Entra's dialects.
//!
//! Operations are applied in order to a copy of the stored document; the
//! caller stores the result only if every operation succeeded, so a PATCH
//! is all or nothing. Group membership is never materialised here: member
//! operations are returned as [`MemberOp`]s that the store applies in the
//! same transaction, so adding one member costs the same in a group of ten
//! as in a group of a hundred thousand.

use serde_json::{Map, Value};

use crate::error::{Result, ScimError};
use crate::eval::{get_ci, matches_element};
use crate::filter::{CompValue, CompareOp, Filter, PatchPath, parse_patch_path};
use crate::resource::{MemberRef, check_required, coerce, normalize_primary, parse_members};
use crate::schema::{Attribute, Mutability, ResourceType, urn};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    pub op: OpKind,
    pub path: Option<String>,
    pub value: Option<Value>,
}

/// A change to a Group's membership, applied by the store in order.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberOp {
    Add(Vec<MemberRef>),
    Remove(Vec<String>),
    Clear,
}

/// The most members one PATCH operation may select with a filter other
/// than `value eq` (`members[type eq "Group"]`, `members[value co "-"]`).
/// Such a selection is applied in one write transaction; past this size it
/// is refused (400 `tooMany`) rather than holding the store's writer for
/// long. Identity providers remove members by id (`members[value eq
/// "…"]`), a few at a time, which this does not limit.
pub const MAX_FILTERED_MEMBERS: usize = 10_000;

/// Read access to a Group's current members, used only by member
/// operations whose filter cannot be answered from the request alone.
pub trait MemberAccess {
    /// Every member as `{"value", "type", "display"}`.
    fn list(&mut self) -> Result<Vec<Value>>;
}

/// For resources without members.
pub struct NoMembers;
impl MemberAccess for NoMembers {
    fn list(&mut self) -> Result<Vec<Value>> {
        Ok(Vec::new())
    }
}

/// Parses a PatchOp request body.
pub fn parse_patch_request(body: &Value, max_operations: usize) -> Result<Vec<PatchOperation>> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("the PATCH body must be a JSON object"))?;
    if let Some(schemas) = get_ci(body, "schemas") {
        let ok = schemas.as_array().is_some_and(|a| {
            a.iter()
                .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn::PATCH_OP)))
        });
        if !ok {
            return Err(ScimError::invalid_syntax(format!(
                "'schemas' must contain {}",
                urn::PATCH_OP
            )));
        }
    }
    let ops = obj
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
        .map(|(_, v)| v)
        .ok_or_else(|| ScimError::invalid_syntax("the PATCH body has no 'Operations'"))?;
    let ops = ops
        .as_array()
        .ok_or_else(|| ScimError::invalid_syntax("'Operations' must be an array"))?;
    if ops.is_empty() {
        return Err(ScimError::invalid_syntax("'Operations' is empty"));
    }
    if ops.len() > max_operations {
        return Err(ScimError::too_many(format!(
            "the PATCH has {} operations; the maximum is {max_operations}",
            ops.len()
        )));
    }
    let mut out = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let o = op
            .as_object()
            .ok_or_else(|| ScimError::invalid_syntax(format!("operation {i} is not an object")))?;
        let field = |name: &str| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
        let kind = match field("op")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("add") => OpKind::Add,
            Some("remove") => OpKind::Remove,
            Some("replace") => OpKind::Replace,
            Some(other) => {
                return Err(ScimError::invalid_syntax(format!(
                    "operation {i}: unknown op '{other}' (expected add, remove or replace)"
                )));
            }
            None => {
                return Err(ScimError::invalid_syntax(format!("operation {i} has no 'op'")));
            }
        };
        let path = match field("path") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(ScimError::invalid_path(format!(
                    "operation {i}: 'path' must be a string"
                )));
            }
        };
        let value = field("value").cloned();
        if kind != OpKind::Remove && value.is_none() {
            return Err(ScimError::invalid_value(format!(
                "operation {i} ('{kind:?}') needs a 'value'"
            )));
        }
        out.push(PatchOperation { op: kind, path, value });
    }
    Ok(out)
}

/// Applies `ops` to `doc`. Returns the membership changes to store.
pub fn apply_patch(
    rt: &ResourceType,
    doc: &mut Map<String, Value>,
    ops: &[PatchOperation],
    members: &mut dyn MemberAccess,
) -> Result<Vec<MemberOp>> {
    // Work on a copy so that a failing operation leaves `doc` untouched.
    let mut work = doc.clone();
    let member_ops = apply_all(rt, &mut work, ops, members)?;
    *doc = work;
    Ok(member_ops)
}

fn apply_all(
    rt: &ResourceType,
    doc: &mut Map<String, Value>,
    ops: &[PatchOperation],
    members: &mut dyn MemberAccess,
) -> Result<Vec<MemberOp>> {
    let mut cx = Cx {
        rt,
        member_ops: Vec::new(),
        members,
    };
    for op in ops {
        match &op.path {
            Some(p) => {
                let path = parse_patch_path(p)?;
                cx.apply(doc, op.op, &path, op.value.as_ref(), false)?;
            }
            None => {
                if op.op == OpKind::Remove {
                    return Err(ScimError::no_target("a 'remove' operation needs a 'path'"));
                }
                let Some(Value::Object(values)) = &op.value else {
                    return Err(ScimError::invalid_value(
                        "an operation without 'path' needs an object 'value' of attributes",
                    ));
                };
                for (key, v) in values {
                    // Path-less values repeat what the client read: ignore
                    // the read-only bookkeeping attributes.
                    if ["schemas", "id", "meta", "groups"]
                        .iter()
                        .any(|k| k.eq_ignore_ascii_case(key))
                    {
                        continue;
                    }
                    // Keys may be plain, dotted (`name.givenName`),
                    // URN-qualified or filtered paths.
                    let path = parse_patch_path(key)?;
                    cx.apply(doc, op.op, &path, Some(v), true)?;
                }
            }
        }
    }
    drop_valueless(rt, doc);
    crate::resource::nfc_names(rt, doc);
    check_required(rt, doc, None)?;
    Ok(cx.member_ops)
}

/// Removes the values of multi-valued complex attributes that have a
/// `value` sub-attribute but no `value`, and attributes left empty.
fn drop_valueless(rt: &ResourceType, doc: &mut Map<String, Value>) {
    fn clean(container: &mut Map<String, Value>, attrs: &[Attribute]) {
        for attr in attrs
            .iter()
            .filter(|a| a.multi_valued && a.is_complex() && a.sub("value").is_some())
        {
            let Some(Value::Array(items)) = container.get_mut(&attr.name) else {
                continue;
            };
            items.retain(|it| it.as_object().is_some_and(|o| o.contains_key("value")));
            if items.is_empty() {
                container.remove(&attr.name);
            }
        }
    }
    clean(doc, &rt.schema.attributes);
    for (ext, _) in &rt.extensions {
        if let Some(Value::Object(inner)) = doc.get_mut(&ext.id) {
            clean(inner, &ext.attributes);
            if inner.is_empty() {
                doc.remove(&ext.id);
            }
        }
    }
}

/// Where an operation's path points: the attribute (in an extension or
/// the core schema), an optional value filter and sub-attribute.
#[derive(Clone, Copy)]
struct PathTarget<'t> {
    ext: Option<&'t str>,
    attr: &'t Attribute,
    filter: Option<&'t Filter>,
    sub: Option<&'t Attribute>,
}

struct Cx<'a, 'm> {
    rt: &'a ResourceType,
    member_ops: Vec<MemberOp>,
    members: &'m mut dyn MemberAccess,
}

enum Target<'a> {
    Extension(&'a str, &'a [Attribute]),
    Attr {
        ext: Option<&'a str>,
        attr: &'a Attribute,
        sub: Option<&'a Attribute>,
    },
}

impl<'a> Cx<'a, '_> {
    fn resolve(&self, path: &PatchPath) -> Result<Target<'a>> {
        let rt = self.rt;
        if let Some(u) = &path.urn {
            let full = format!("{u}:{}", path.name);
            if path.sub.is_none()
                && path.filter.is_none()
                && let Some(ext) = rt.extension(&full)
            {
                return Ok(Target::Extension(ext.id.as_str(), &ext.attributes));
            }
        }
        let r = rt
            .resolve(path.urn.as_deref(), &path.name, None)
            .ok_or_else(|| ScimError::invalid_path(format!("unknown attribute '{path}'")))?;
        let sub = match &path.sub {
            None => None,
            Some(s) => Some(
                r.attr
                    .sub(s)
                    .ok_or_else(|| ScimError::invalid_path(format!("unknown sub-attribute in '{path}'")))?,
            ),
        };
        Ok(Target::Attr {
            ext: if r.extension { r.schema } else { None },
            attr: r.attr,
            sub,
        })
    }

    fn apply(
        &mut self,
        doc: &mut Map<String, Value>,
        op: OpKind,
        path: &PatchPath,
        value: Option<&Value>,
        pathless: bool,
    ) -> Result<()> {
        match self.resolve(path)? {
            Target::Extension(ext, attrs) => {
                if op == OpKind::Remove {
                    doc.remove(ext);
                    return Ok(());
                }
                let Some(Value::Object(values)) = value else {
                    return Err(ScimError::invalid_value(format!(
                        "the value for '{ext}' must be an object"
                    )));
                };
                for (k, v) in values {
                    if k.eq_ignore_ascii_case("schemas") {
                        continue;
                    }
                    let attr = attrs
                        .iter()
                        .find(|a| a.name.eq_ignore_ascii_case(k))
                        .ok_or_else(|| ScimError::invalid_path(format!("unknown attribute '{k}' in '{ext}'")))?;
                    // In a value object, read-only attributes are ignored,
                    // as in a PUT body (a path naming one is refused).
                    if attr.mutability == Mutability::ReadOnly {
                        continue;
                    }
                    let target = PathTarget {
                        ext: Some(ext),
                        attr,
                        filter: None,
                        sub: None,
                    };
                    self.apply_attr(doc, op, target, Some(v), path)?;
                }
                Ok(())
            }
            Target::Attr { ext, attr, sub } => {
                if attr.mutability == Mutability::ReadOnly
                    || sub.is_some_and(|s| s.mutability == Mutability::ReadOnly && attr.name != "manager")
                {
                    if pathless {
                        return Ok(());
                    }
                    return Err(ScimError::mutability(format!("'{path}' is read-only")));
                }
                if self.rt.is_group() && ext.is_none() && attr.name == "members" {
                    return self.members_op(op, path, sub, value);
                }
                let target = PathTarget {
                    ext,
                    attr,
                    filter: path.filter.as_ref(),
                    sub,
                };
                self.apply_attr(doc, op, target, value, path)
            }
        }
    }

    fn apply_attr(
        &mut self,
        doc: &mut Map<String, Value>,
        op: OpKind,
        target: PathTarget<'_>,
        value: Option<&Value>,
        path: &PatchPath,
    ) -> Result<()> {
        let PathTarget { ext, attr, filter, sub } = target;
        let container: &mut Map<String, Value> = match ext {
            None => &mut *doc,
            Some(u) => {
                let e = doc.entry(u.to_string()).or_insert_with(|| Value::Object(Map::new()));
                if !e.is_object() {
                    *e = Value::Object(Map::new());
                }
                match e.as_object_mut() {
                    Some(m) => m,
                    None => return Err(ScimError::internal("extension is not an object")),
                }
            }
        };
        let before = container.get(&attr.name).cloned();
        if attr.multi_valued {
            apply_multi(container, op, attr, filter, sub, value, path)?;
        } else if attr.is_complex() {
            apply_complex(container, op, attr, filter, sub, value, path)?;
        } else {
            if filter.is_some() || sub.is_some() {
                return Err(ScimError::invalid_path(format!(
                    "'{}' has no sub-attributes or values to filter",
                    attr.name
                )));
            }
            match op {
                OpKind::Remove => {
                    container.remove(&attr.name);
                }
                OpKind::Add | OpKind::Replace => match coerce(attr, value.unwrap_or(&Value::Null))? {
                    Some(v) => {
                        container.insert(attr.name.clone(), v);
                    }
                    None => {
                        container.remove(&attr.name);
                    }
                },
            }
        }
        let after = container.get(&attr.name);
        if attr.mutability == Mutability::Immutable && before.is_some() && after != before.as_ref() {
            return Err(ScimError::mutability(format!(
                "'{}' is immutable and cannot be changed",
                attr.name
            )));
        }
        if let Some(u) = ext
            && doc.get(u).and_then(Value::as_object).is_some_and(Map::is_empty)
        {
            doc.remove(u);
        }
        Ok(())
    }

    fn members_op(
        &mut self,
        op: OpKind,
        path: &PatchPath,
        sub: Option<&Attribute>,
        value: Option<&Value>,
    ) -> Result<()> {
        if sub.is_some() {
            return Err(ScimError::mutability(format!(
                "'{path}': member values are immutable; remove and add the member instead"
            )));
        }
        match (op, &path.filter) {
            (OpKind::Add, _) => {
                let m = parse_members(value.unwrap_or(&Value::Null))?;
                if !m.is_empty() {
                    self.member_ops.push(MemberOp::Add(m));
                }
            }
            (OpKind::Replace, None) => {
                let m = parse_members(value.unwrap_or(&Value::Null))?;
                self.member_ops.push(MemberOp::Clear);
                if !m.is_empty() {
                    self.member_ops.push(MemberOp::Add(m));
                }
            }
            (OpKind::Replace, Some(f)) => {
                let ids = self.matching_member_ids(f)?;
                if ids.is_empty() {
                    return Err(ScimError::no_target(format!("no member matches '{path}'")));
                }
                self.member_ops.push(MemberOp::Remove(ids));
                let m = parse_members(value.unwrap_or(&Value::Null))?;
                if !m.is_empty() {
                    self.member_ops.push(MemberOp::Add(m));
                }
            }
            (OpKind::Remove, None) => match value {
                // Entra's legacy dialect: `remove members` with a value list
                // removes only those members.
                Some(v) if !v.is_null() => {
                    let ids: Vec<String> = parse_members(v)?.into_iter().map(|m| m.value).collect();
                    if !ids.is_empty() {
                        self.member_ops.push(MemberOp::Remove(ids));
                    }
                }
                _ => self.member_ops.push(MemberOp::Clear),
            },
            (OpKind::Remove, Some(f)) => {
                let ids = self.matching_member_ids(f)?;
                if !ids.is_empty() {
                    self.member_ops.push(MemberOp::Remove(ids));
                }
            }
        }
        Ok(())
    }

    /// Member ids selected by a filter: `value eq "x"` (and `or`s of those)
    /// are answered without reading the group; anything else reads it, and
    /// may select at most [`MAX_FILTERED_MEMBERS`].
    fn matching_member_ids(&mut self, f: &Filter) -> Result<Vec<String>> {
        if let Some(ids) = value_eq_ids(f) {
            return Ok(ids);
        }
        let attr = self
            .rt
            .schema
            .attribute("members")
            .ok_or_else(|| ScimError::internal("Group schema has no members"))?;
        let mut out = Vec::new();
        for m in self.members.list()? {
            if matches_element(f, &m, attr)?
                && let Some(v) = m.get("value").and_then(Value::as_str)
            {
                out.push(v.to_string());
            }
        }
        if out.len() > MAX_FILTERED_MEMBERS {
            return Err(ScimError::too_many(format!(
                "'members[{f}]' selects {} members; one operation changes at most {MAX_FILTERED_MEMBERS} members \
                 selected by a filter: remove them in smaller batches (members[value eq \"…\"], or a narrower filter)",
                out.len()
            )));
        }
        Ok(out)
    }
}

fn value_eq_ids(f: &Filter) -> Option<Vec<String>> {
    match f {
        Filter::Compare(p, CompareOp::Eq, CompValue::String(s))
            if p.urn.is_none() && p.sub.is_none() && p.name.eq_ignore_ascii_case("value") =>
        {
            Some(vec![s.clone()])
        }
        Filter::Or(items) => {
            let mut out = Vec::new();
            for it in items {
                out.extend(value_eq_ids(it)?);
            }
            Some(out)
        }
        _ => None,
    }
}

/// `type eq "work" and primary eq true` → the values to create a matching element.
fn eq_assignments(f: &Filter, attr: &Attribute) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    let mut push = |f: &Filter| -> Option<()> {
        match f {
            Filter::Compare(p, CompareOp::Eq, cv) if p.urn.is_none() && p.sub.is_none() => {
                let sub = attr.sub(&p.name)?;
                let v = match cv {
                    CompValue::String(s) => Value::String(s.clone()),
                    CompValue::Bool(b) => Value::Bool(*b),
                    CompValue::Number(n) => Value::Number(n.clone()),
                    CompValue::Null => return None,
                };
                // Stored in the sub-attribute's type: `primary eq "True"`
                // (Entra's role mapping) creates `primary: true`.
                let v = coerce(sub, &v).ok()??;
                out.insert(sub.name.clone(), v);
                Some(())
            }
            _ => None,
        }
    };
    match f {
        Filter::And(items) => {
            for it in items {
                push(it)?;
            }
        }
        other => push(other)?,
    }
    Some(out)
}

fn as_object_value(attr: &Attribute, value: &Value) -> Result<Map<String, Value>> {
    match value {
        Value::Object(o) => Ok(o.clone()),
        Value::Array(a) if a.is_empty() => Ok(Map::new()),
        Value::Array(a) if let [one] = a.as_slice() => as_object_value(attr, one),
        Value::Null => Ok(Map::new()),
        Value::String(_) | Value::Number(_) | Value::Bool(_) if attr.sub("value").is_some() => {
            let mut m = Map::new();
            m.insert("value".into(), value.clone());
            Ok(m)
        }
        _ => Err(ScimError::invalid_value(format!(
            "the value for '{}' must be an object",
            attr.name
        ))),
    }
}

/// Sets (or clears) sub-attributes of one complex value, RFC merge style.
fn merge_subs(target: &mut Map<String, Value>, attr: &Attribute, given: &Map<String, Value>) -> Result<()> {
    for (k, v) in given {
        let sub = attr
            .sub(k)
            .ok_or_else(|| ScimError::invalid_value(format!("unknown sub-attribute '{k}' of '{}'", attr.name)))?;
        if sub.mutability == Mutability::ReadOnly || (attr.name == "manager" && sub.name != "value") {
            continue; // derived, never stored
        }
        match coerce(sub, v)? {
            Some(cv) => {
                target.insert(sub.name.clone(), cv);
            }
            None => {
                target.remove(&sub.name);
            }
        }
    }
    crate::resource::unwrap_roles_in_place(attr, target);
    Ok(())
}

fn apply_complex(
    container: &mut Map<String, Value>,
    op: OpKind,
    attr: &Attribute,
    filter: Option<&Filter>,
    sub: Option<&Attribute>,
    value: Option<&Value>,
    path: &PatchPath,
) -> Result<()> {
    if let Some(f) = filter {
        // `remove manager[value eq "…"]`: only if the filter matches.
        let matches = match container.get(&attr.name) {
            Some(v) => matches_element(f, v, attr)?,
            None => false,
        };
        if !matches {
            return if op == OpKind::Remove {
                Ok(())
            } else {
                Err(ScimError::no_target(format!("nothing matches '{path}'")))
            };
        }
    }
    let mut obj = container
        .get(&attr.name)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match (op, sub) {
        (OpKind::Remove, None) => {
            container.remove(&attr.name);
            return Ok(());
        }
        (OpKind::Remove, Some(s)) => {
            obj.remove(&s.name);
        }
        (_, Some(s)) => {
            let mut given = Map::new();
            given.insert(s.name.clone(), value.cloned().unwrap_or(Value::Null));
            merge_subs(&mut obj, attr, &given)?;
        }
        (_, None) => {
            let given = as_object_value(attr, value.unwrap_or(&Value::Null))?;
            if given.is_empty() {
                // `replace manager {}` / `[]` / null: clear it.
                container.remove(&attr.name);
                return Ok(());
            }
            merge_subs(&mut obj, attr, &given)?;
        }
    }
    if obj.is_empty() || (attr.name == "manager" && !obj.contains_key("value")) {
        container.remove(&attr.name);
    } else {
        container.insert(attr.name.clone(), Value::Object(obj));
    }
    Ok(())
}

fn apply_multi(
    container: &mut Map<String, Value>,
    op: OpKind,
    attr: &Attribute,
    filter: Option<&Filter>,
    sub: Option<&Attribute>,
    value: Option<&Value>,
    path: &PatchPath,
) -> Result<()> {
    let mut items: Vec<Value> = match container.get(&attr.name) {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let mut prefer: Option<usize> = None;
    let value = value.unwrap_or(&Value::Null);
    match (op, filter, sub) {
        (OpKind::Add, None, None) => {
            if let Some(Value::Array(new)) = coerce(attr, value)? {
                for v in new {
                    let primary = v.get("primary") == Some(&Value::Bool(true));
                    match items.iter().position(|x| *x == v) {
                        Some(i) => {
                            if primary {
                                prefer = Some(i);
                            }
                        }
                        None => {
                            items.push(v);
                            if primary {
                                prefer = Some(items.len() - 1);
                            }
                        }
                    }
                }
            }
        }
        (OpKind::Replace, None, None) => {
            items = match coerce(attr, value)? {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            };
        }
        (OpKind::Remove, None, None) => {
            if value.is_null() {
                items.clear();
            } else if let Some(Value::Array(gone)) = coerce(attr, value)? {
                // Remove with a value list (Entra style): drop matching values.
                items.retain(|it| !gone.iter().any(|g| same_value(attr, it, g)));
            }
        }
        (_, None, Some(s)) => {
            // `emails.value`: every value of the attribute.
            if op == OpKind::Remove {
                for it in items.iter_mut() {
                    if let Some(o) = it.as_object_mut() {
                        o.remove(&s.name);
                    }
                }
            } else if items.is_empty() {
                let mut o = Map::new();
                merge_one_sub(&mut o, attr, s, value)?;
                if !o.is_empty() {
                    items.push(Value::Object(o));
                }
            } else {
                for it in items.iter_mut() {
                    if let Some(o) = it.as_object_mut() {
                        merge_one_sub(o, attr, s, value)?;
                    }
                }
            }
        }
        (_, Some(f), s) => {
            let mut matched = Vec::new();
            for (i, it) in items.iter().enumerate() {
                if matches_element(f, it, attr)? {
                    matched.push(i);
                }
            }
            match (op, s) {
                (OpKind::Remove, None) => {
                    let mut i = 0;
                    items.retain(|_| {
                        let keep = !matched.contains(&i);
                        i += 1;
                        keep
                    });
                }
                (OpKind::Remove, Some(s)) => {
                    for &i in &matched {
                        if let Some(o) = items.get_mut(i).and_then(Value::as_object_mut) {
                            o.remove(&s.name);
                        }
                    }
                }
                (_, Some(s)) => {
                    if matched.is_empty() {
                        if crate::resource::coerce(s, value)?.is_none() {
                            // Clearing a value that does not exist: nothing to do.
                        } else if let Some(mut o) = eq_assignments(f, attr) {
                            // Entra: `emails[type eq "work"].value` creates the
                            // typed value when it is missing.
                            merge_one_sub(&mut o, attr, s, value)?;
                            items.push(Value::Object(o));
                            if items.last().and_then(|v| v.get("primary")) == Some(&Value::Bool(true)) {
                                prefer = Some(items.len() - 1);
                            }
                        } else {
                            return Err(ScimError::no_target(format!("no value matches '{path}'")));
                        }
                    } else {
                        for &i in &matched {
                            let Some(o) = items.get_mut(i).and_then(Value::as_object_mut) else {
                                continue;
                            };
                            merge_one_sub(o, attr, s, value)?;
                            if s.name == "primary" && o.get("primary") == Some(&Value::Bool(true)) {
                                prefer = Some(i);
                            }
                        }
                    }
                }
                (_, None) => {
                    let given = as_object_value(attr, value)?;
                    if matched.is_empty() {
                        match eq_assignments(f, attr) {
                            Some(mut o) => {
                                merge_subs(&mut o, attr, &given)?;
                                items.push(Value::Object(o));
                                prefer = Some(items.len() - 1);
                            }
                            None => {
                                return Err(ScimError::no_target(format!("no value matches '{path}'")));
                            }
                        }
                    } else {
                        for &i in &matched {
                            if let Some(o) = items.get_mut(i).and_then(Value::as_object_mut) {
                                merge_subs(o, attr, &given)?;
                            }
                            prefer = Some(i);
                        }
                    }
                }
            }
        }
    }
    // Empty values are gone at once; values left without their `value`
    // are dropped after the last operation (`drop_valueless`), because
    // Entra sets the sub-attributes of one filtered value in separate
    // operations, in mapping order (`roles[primary eq "True"].display`
    // before `….value`).
    if attr.is_complex() {
        items.retain(|it| it.as_object().is_some_and(|o| !o.is_empty()));
    }
    normalize_primary(&mut items, prefer);
    if items.is_empty() {
        container.remove(&attr.name);
    } else {
        container.insert(attr.name.clone(), Value::Array(items));
    }
    Ok(())
}

fn merge_one_sub(o: &mut Map<String, Value>, attr: &Attribute, s: &Attribute, value: &Value) -> Result<()> {
    let mut given = Map::new();
    given.insert(s.name.clone(), value.clone());
    merge_subs(o, attr, &given)
}

/// Whether two values of a multi-valued attribute are "the same value" for
/// removal: equal `value`s (respecting caseExact), or equal objects.
fn same_value(attr: &Attribute, a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    if let (Some(av), Some(bv)) = (a.get("value"), b.get("value")) {
        let case_insensitive = attr.sub("value").is_some_and(Attribute::case_insensitive);
        return match (av.as_str(), bv.as_str()) {
            (Some(x), Some(y)) if case_insensitive => x.to_lowercase() == y.to_lowercase(),
            _ => av == bv,
        };
    }
    false
}

/// The net effect of a sequence of member operations, so that a store can
/// apply it with the fewest writes and tell whether anything changed
/// (`add u; remove u` and `remove u; add u` cancel out; `replace` with the
/// same list changes nothing).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetMembers {
    /// The sequence starts by clearing the group: the final membership is
    /// exactly `add` (the store diffs it against the current one).
    pub replace_all: bool,
    pub add: Vec<MemberRef>,
    pub remove: Vec<String>,
}

pub fn net_member_changes(ops: &[MemberOp]) -> NetMembers {
    let mut net = NetMembers::default();
    for op in ops {
        match op {
            MemberOp::Clear => {
                net.replace_all = true;
                net.add.clear();
                net.remove.clear();
            }
            MemberOp::Add(refs) => {
                for r in refs {
                    net.remove.retain(|id| id != &r.value);
                    match net.add.iter_mut().find(|a| a.value == r.value) {
                        Some(existing) => *existing = r.clone(),
                        None => net.add.push(r.clone()),
                    }
                }
            }
            MemberOp::Remove(ids) => {
                for id in ids {
                    net.add.retain(|a| &a.value != id);
                    if !net.replace_all && !net.remove.contains(id) {
                        net.remove.push(id.clone());
                    }
                }
            }
        }
    }
    net
}

#[cfg(test)]
mod net_tests {
    use super::*;

    fn m(v: &str) -> MemberRef {
        MemberRef {
            value: v.into(),
            kind: None,
            display: None,
        }
    }

    #[test]
    fn member_operations_collapse_to_their_net_effect() {
        let cases: Vec<(Vec<MemberOp>, NetMembers)> = vec![
            (
                vec![MemberOp::Add(vec![m("a")]), MemberOp::Remove(vec!["a".into()])],
                NetMembers {
                    replace_all: false,
                    add: vec![],
                    remove: vec!["a".into()],
                },
            ),
            (
                vec![MemberOp::Remove(vec!["a".into()]), MemberOp::Add(vec![m("a")])],
                NetMembers {
                    replace_all: false,
                    add: vec![m("a")],
                    remove: vec![],
                },
            ),
            (
                vec![MemberOp::Clear, MemberOp::Add(vec![m("a"), m("b")])],
                NetMembers {
                    replace_all: true,
                    add: vec![m("a"), m("b")],
                    remove: vec![],
                },
            ),
            (
                vec![
                    MemberOp::Clear,
                    MemberOp::Add(vec![m("a")]),
                    MemberOp::Remove(vec!["a".into()]),
                ],
                NetMembers {
                    replace_all: true,
                    add: vec![],
                    remove: vec![],
                },
            ),
            (
                vec![MemberOp::Add(vec![m("a"), m("a")])],
                NetMembers {
                    replace_all: false,
                    add: vec![m("a")],
                    remove: vec![],
                },
            ),
        ];
        for (ops, want) in cases {
            assert_eq!(net_member_changes(&ops), want, "{ops:?}");
        }
    }
}
