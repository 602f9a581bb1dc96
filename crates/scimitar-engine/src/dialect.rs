//! The requests the engine sends, shaped for the target's dialect. Pure:
//! each function returns the method, the path (below the Tenant URL, with
//! its query) and the body, which the client sends as they are. The Entra
//! dialects reproduce the shapes of entra-provisioning.md §1; `rfc` sends
//! plain RFC 7644.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use scimitar_protocol::filter::{CompValue, CompareOp, Filter};
use scimitar_protocol::schema::urn;
use serde_json::{Map, Value, json};

use crate::job::Dialect;
use crate::mapping::TargetPath;
use crate::model::Kind;

pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The extra schema Entra puts in a Group's create body.
pub const ADSCIM_GROUP: &str = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";

/// One request to the target.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: &'static str,
    /// Below the Tenant URL: `/Users?filter=…`, `/Groups/{id}`.
    pub path: String,
    pub body: Option<Value>,
}

impl Request {
    /// Whether it changes the target (everything but GET).
    pub fn is_write(&self) -> bool {
        self.method != "GET"
    }
}

/// Characters kept as they are in a query value (the rest are
/// percent-encoded; a space becomes `+`, as Entra sends it).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b' ');

fn query_value(s: &str) -> String {
    utf8_percent_encode(s, QUERY).to_string().replace(' ', "+")
}

fn endpoint(kind: Kind) -> &'static str {
    match kind {
        Kind::User => "/Users",
        Kind::Group => "/Groups",
    }
}

/// A SCIM string literal (JSON syntax) for a filter.
fn literal(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// `GET /Users?filter=<attr> eq "<value>"` (Groups: without members).
pub fn lookup(kind: Kind, attribute: &str, value: &str) -> Request {
    let filter = query_value(&format!("{attribute} eq {}", literal(value)));
    let path = match kind {
        Kind::User => format!("/Users?filter={filter}"),
        Kind::Group => format!("/Groups?excludedAttributes=members&filter={filter}"),
    };
    Request {
        method: "GET",
        path,
        body: None,
    }
}

/// Test Connection's probe: the matching attribute equal to a random GUID,
/// which must answer 200 with no resources.
pub fn probe(kind: Kind, attribute: &str, guid: &str) -> Request {
    lookup(kind, attribute, guid)
}

/// A discovery endpoint: `GET /ServiceProviderConfig`, `/Schemas`,
/// `/ResourceTypes`.
pub fn discovery(endpoint: &str) -> Request {
    Request {
        method: "GET",
        path: format!("/{}", endpoint.trim_start_matches('/')),
        body: None,
    }
}

/// One page of a list: `GET /Users?startIndex=…&count=…` (1-based).
pub fn page(kind: Kind, start_index: u64, count: u64) -> Request {
    Request {
        method: "GET",
        path: format!("{}?startIndex={start_index}&count={count}", endpoint(kind)),
        body: None,
    }
}

/// `GET /Groups?filter=<attr> eq "<value>"` with the members (what
/// Microsoft's SCIM Validator also asks; Entra's own lookup leaves them
/// out, see [`lookup`]).
pub fn filter_all(kind: Kind, attribute: &str, value: &str) -> Request {
    let filter = query_value(&format!("{attribute} eq {}", literal(value)));
    Request {
        method: "GET",
        path: format!("{}?filter={filter}", endpoint(kind)),
        body: None,
    }
}

/// `GET /Groups/{id}` with every attribute, members included.
pub fn read_all(kind: Kind, id: &str) -> Request {
    let id = utf8_percent_encode(id, NON_ALPHANUMERIC).to_string();
    Request {
        method: "GET",
        path: format!("{}/{id}", endpoint(kind)),
        body: None,
    }
}

/// `GET /Users/{id}` (Groups: without members, which Entra never reads).
pub fn read(kind: Kind, id: &str) -> Request {
    let id = utf8_percent_encode(id, NON_ALPHANUMERIC).to_string();
    let path = match kind {
        Kind::User => format!("/Users/{id}"),
        Kind::Group => format!("/Groups/{id}?excludedAttributes=members"),
    };
    Request {
        method: "GET",
        path,
        body: None,
    }
}

pub fn delete(kind: Kind, id: &str) -> Request {
    let id = utf8_percent_encode(id, NON_ALPHANUMERIC).to_string();
    Request {
        method: "DELETE",
        path: format!("{}/{id}", endpoint(kind)),
        body: None,
    }
}

/// Entra's order of top-level attributes in a create body.
const ORDER: &[&str] = &[
    "schemas",
    "externalId",
    "userName",
    "active",
    "displayName",
    "nickName",
    "title",
    "preferredLanguage",
    "emails",
    "name",
    "addresses",
    "phoneNumbers",
    urn::ENTERPRISE_USER,
    "meta",
    "members",
];

/// `POST /Users` with the image's values (reference values already
/// resolved to target ids).
pub fn create(kind: Kind, dialect: Dialect, values: &[(TargetPath, Value)]) -> Request {
    let mut body = Map::new();
    for (path, value) in values {
        set_path(&mut body, path, value.clone());
    }
    let core = match kind {
        Kind::User => urn::CORE_USER,
        Kind::Group => urn::CORE_GROUP,
    };
    let mut schemas = vec![Value::String(core.into())];
    for k in body.keys() {
        if k.starts_with("urn:") {
            schemas.push(Value::String(k.clone()));
        }
    }
    if kind == Kind::Group && dialect != Dialect::Rfc {
        schemas.push(Value::String(ADSCIM_GROUP.into()));
    }
    body.insert("schemas".into(), Value::Array(schemas));
    if dialect != Dialect::Rfc {
        body.insert("meta".into(), json!({"resourceType": kind.as_str()}));
    }
    // Entra's order; attributes it does not name keep theirs, at the end.
    let mut ordered = Map::new();
    for k in ORDER {
        if let Some(v) = body.remove(*k) {
            ordered.insert((*k).to_string(), v);
        }
    }
    ordered.extend(body);
    Request {
        method: "POST",
        path: endpoint(kind).to_string(),
        body: Some(Value::Object(ordered)),
    }
}

/// Writes `value` at `path` into a resource body.
fn set_path(body: &mut Map<String, Value>, path: &TargetPath, value: Value) {
    let p = &path.path;
    let container = match &p.urn {
        Some(u) => match body
            .entry(u.clone())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
        {
            Some(c) => c,
            None => return,
        },
        None => body,
    };
    let value = if path.is_manager() {
        json!({"value": value})
    } else if path.is_members() {
        match value {
            Value::Array(ids) => Value::Array(ids.into_iter().map(|id| json!({"value": id})).collect()),
            other => other,
        }
    } else {
        value
    };
    match (&p.filter, &p.sub) {
        (None, None) => {
            container.insert(p.name.clone(), value);
        }
        (None, Some(sub)) => {
            if let Some(obj) = container
                .entry(p.name.clone())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
            {
                obj.insert(sub.clone(), value);
            }
        }
        (Some(filter), sub) => {
            let Some(items) = container
                .entry(p.name.clone())
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
            else {
                return;
            };
            let assignments = eq_assignments(filter);
            let found = items.iter().position(|it| {
                assignments
                    .iter()
                    .all(|(k, v)| it.get(k).is_some_and(|x| same_literal(x, v)))
            });
            let index = match found {
                Some(i) => i,
                None => {
                    let mut o = Map::new();
                    for (k, v) in &assignments {
                        o.insert(k.clone(), v.clone());
                    }
                    // Entra marks the work email and address primary.
                    if matches!(p.name.as_str(), "emails" | "addresses")
                        && assignments.iter().any(|(k, v)| k == "type" && v == "work")
                    {
                        o.insert("primary".into(), Value::Bool(true));
                    }
                    items.push(Value::Object(o));
                    items.len() - 1
                }
            };
            if let Some(Value::Object(o)) = items.get_mut(index) {
                o.insert(sub.clone().unwrap_or_else(|| "value".into()), value);
            }
        }
    }
}

fn same_literal(x: &Value, v: &Value) -> bool {
    match (x, v) {
        (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
        (Value::Bool(a), Value::String(b)) => b.eq_ignore_ascii_case(if *a { "true" } else { "false" }),
        _ => x == v,
    }
}

/// The `attr eq "value"` terms of a value filter (`type eq "work"`,
/// `primary eq "True"`): what a new element of that kind holds.
fn eq_assignments(f: &Filter) -> Vec<(String, Value)> {
    match f {
        Filter::Compare(p, CompareOp::Eq, v) => {
            let value = match v {
                CompValue::String(s) if s.eq_ignore_ascii_case("true") && p.name == "primary" => Value::Bool(true),
                CompValue::String(s) => Value::String(s.clone()),
                CompValue::Bool(b) => Value::Bool(*b),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => Value::Null,
            };
            vec![(p.name.clone(), value)]
        }
        Filter::And(items) => items.iter().flat_map(eq_assignments).collect(),
        _ => Vec::new(),
    }
}

/// What changes about one attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// The target has no value yet.
    Add,
    /// The target has no element that the path's value filter selects
    /// (`emails[type eq "work"].value` on a user without a work email).
    AddElement,
    /// The target's value differs.
    Replace,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub target: TargetPath,
    pub op: Op,
    pub value: Value,
}

/// The PATCH that applies `changes` to a user or group; `None` when
/// there is nothing to change. `manager_removed` is the target id of a
/// manager to remove.
pub fn update(
    kind: Kind,
    dialect: Dialect,
    id: &str,
    changes: &[Change],
    manager_removed: Option<&str>,
) -> Option<Request> {
    let mut ops: Vec<Value> = Vec::new();
    let mut pathless = Map::new();
    // RFC 7644 §3.5.2: a value filter that selects nothing is no target for
    // `add`; new elements are added whole, one per attribute and filter.
    let mut elements: Vec<(String, Map<String, Value>)> = Vec::new();
    for c in changes {
        let path = c.target.key();
        match dialect {
            Dialect::Rfc if c.op == Op::AddElement => {
                let p = &c.target.path;
                let attr = match &p.urn {
                    Some(u) => format!("{u}:{}", p.name),
                    None => p.name.clone(),
                };
                let key = format!(
                    "{attr}[{}]",
                    p.filter.as_ref().map(ToString::to_string).unwrap_or_default()
                );
                let i = match elements.iter().position(|(k, _)| *k == key) {
                    Some(i) => i,
                    None => {
                        elements.push((key, Map::new()));
                        elements.len() - 1
                    }
                };
                if let Some((_, body)) = elements.get_mut(i) {
                    set_path(body, &c.target, c.value.clone());
                }
            }
            Dialect::EntraLegacy => {
                let op = if c.op == Op::Replace { "Replace" } else { "Add" };
                ops.push(json!({"op": op, "path": path, "value": legacy_value(&c.value)}));
            }
            Dialect::EntraCompliant => {
                let single = c.target.path.filter.is_none()
                    && !c.target.multi
                    && !c.target.is_active()
                    && !c.target.is_manager();
                if single {
                    pathless.insert(path, c.value.clone());
                } else {
                    let op = if c.op != Op::Replace && !c.target.is_active() {
                        "add"
                    } else {
                        "replace"
                    };
                    ops.push(json!({"op": op, "path": path, "value": c.value}));
                }
            }
            Dialect::Rfc => {
                let op = if c.op == Op::Replace { "replace" } else { "add" };
                // `manager` is complex in RFC 7643 §4.3; Entra sends the bare id.
                let value = if c.target.is_manager() {
                    json!({"value": c.value})
                } else {
                    c.value.clone()
                };
                ops.push(json!({"op": op, "path": path, "value": value}));
            }
        }
    }
    for (_, body) in elements {
        // `set_path` wrote `{urn: {name: [element]}}` or `{name: [element]}`.
        let (path, value) = match body.into_iter().next() {
            Some((k, Value::Object(inner))) if k.starts_with("urn:") => match inner.into_iter().next() {
                Some((name, v)) => (format!("{k}:{name}"), v),
                None => continue,
            },
            Some((k, v)) => (k, v),
            None => continue,
        };
        ops.push(json!({"op": "add", "path": path, "value": value}));
    }
    if !pathless.is_empty() {
        // Filtered paths first, then the one path-less replace (Entra's order).
        ops.push(json!({"op": "replace", "value": pathless}));
    }
    if let Some(mid) = manager_removed {
        let manager = format!("{}:manager", urn::ENTERPRISE_USER);
        ops.push(match dialect {
            Dialect::EntraLegacy => json!({"op": "Remove", "path": format!("manager[value eq {}]", literal(mid))}),
            Dialect::EntraCompliant => json!({"op": "remove", "path": format!("manager[value eq {}]", literal(mid))}),
            Dialect::Rfc => json!({"op": "remove", "path": manager}),
        });
    }
    if ops.is_empty() {
        return None;
    }
    let id = utf8_percent_encode(id, NON_ALPHANUMERIC).to_string();
    Some(Request {
        method: "PATCH",
        path: format!("{}/{id}", endpoint(kind)),
        body: Some(json!({"schemas": [PATCH_OP], "Operations": ops})),
    })
}

/// A value in Entra's default dialect: booleans as `"True"`/`"False"`.
fn legacy_value(v: &Value) -> Value {
    match v {
        Value::Bool(true) => Value::String("True".into()),
        Value::Bool(false) => Value::String("False".into()),
        other => other.clone(),
    }
}

/// The PATCH that adds members to a group.
pub fn add_members(dialect: Dialect, group: &str, members: &[String]) -> Request {
    let op = if dialect == Dialect::EntraLegacy { "Add" } else { "add" };
    let value: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    let id = utf8_percent_encode(group, NON_ALPHANUMERIC).to_string();
    Request {
        method: "PATCH",
        path: format!("/Groups/{id}"),
        body: Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": op, "path": "members", "value": value}]})),
    }
}

/// The PATCH that removes members from a group: Entra's default dialect
/// lists them in a value (not "remove all"); the others remove each by a
/// value filter.
pub fn remove_members(dialect: Dialect, group: &str, members: &[String]) -> Request {
    let ops: Vec<Value> = match dialect {
        Dialect::EntraLegacy => {
            let value: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
            vec![json!({"op": "Remove", "path": "members", "value": value})]
        }
        _ => members
            .iter()
            .map(|m| json!({"op": "remove", "path": format!("members[value eq {}]", literal(m))}))
            .collect(),
    };
    let id = utf8_percent_encode(group, NON_ALPHANUMERIC).to_string();
    Request {
        method: "PATCH",
        path: format!("/Groups/{id}"),
        body: Some(json!({"schemas": [PATCH_OP], "Operations": ops})),
    }
}

/// The member PATCH of Microsoft's SCIM Validator ("Patch Group - Add
/// Member"): a `replace` of `members` with the value array.
pub fn replace_members(dialect: Dialect, group: &str, members: &[String]) -> Request {
    let op = if dialect == Dialect::EntraLegacy {
        "Replace"
    } else {
        "replace"
    };
    let value: Vec<Value> = members.iter().map(|m| json!({"value": m})).collect();
    let id = utf8_percent_encode(group, NON_ALPHANUMERIC).to_string();
    Request {
        method: "PATCH",
        path: format!("/Groups/{id}"),
        body: Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": op, "path": "members", "value": value}]})),
    }
}

/// The manager removal of Microsoft's SCIM Validator ("Patch User - Remove
/// Manager"): a `replace` of the manager with `{"value":""}`; `rfc` removes
/// the attribute.
pub fn clear_manager(dialect: Dialect, user: &str) -> Request {
    let manager = format!("{}:manager", urn::ENTERPRISE_USER);
    let op = match dialect {
        Dialect::EntraLegacy => json!({"op": "Replace", "path": manager, "value": {"value": ""}}),
        Dialect::EntraCompliant => json!({"op": "replace", "path": manager, "value": {"value": ""}}),
        Dialect::Rfc => json!({"op": "remove", "path": manager}),
    };
    let id = utf8_percent_encode(user, NON_ALPHANUMERIC).to_string();
    Request {
        method: "PATCH",
        path: format!("/Users/{id}"),
        body: Some(json!({"schemas": [PATCH_OP], "Operations": [op]})),
    }
}

/// Two PATCHes of the same resource as one, the operations of `first`
/// before those of `second` (several operations in one request, as
/// Microsoft's validator's preview tests send them). `None` when they are
/// not both PATCHes of one path.
pub fn combine(first: &Request, second: &Request) -> Option<Request> {
    if first.method != "PATCH" || second.method != "PATCH" || first.path != second.path {
        return None;
    }
    let ops = |r: &Request| {
        r.body
            .as_ref()
            .and_then(|b| b.get("Operations"))
            .and_then(Value::as_array)
            .cloned()
    };
    let mut all = ops(first)?;
    all.extend(ops(second)?);
    Some(Request {
        method: "PATCH",
        path: first.path.clone(),
        body: Some(json!({"schemas": [PATCH_OP], "Operations": all})),
    })
}
