//! Assembly of the representation returned to clients from what the store
//! keeps: the document, the bookkeeping (`id`, `meta`), and derived values
//! (Group `members`, User `groups`, the manager's `$ref` and `displayName`).

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::schema::{Attribute, ResourceType, Returned, urn};

/// What the store knows about a resource besides its document.
#[derive(Debug, Clone)]
pub struct Meta<'a> {
    pub id: &'a str,
    pub created: &'a str,
    pub last_modified: &'a str,
    pub version: u64,
}

/// The strong entity tag of a version (RFC 7232), also `meta.version`.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// A member or group reference for output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub value: String,
    /// `User` or `Group`.
    pub kind: String,
    pub display: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Derived {
    /// Group members, when loaded.
    pub members: Option<Vec<Reference>>,
    /// Groups a User belongs to, when loaded.
    pub groups: Option<Vec<Reference>>,
    /// The manager's displayName, if the manager exists.
    pub manager_display: Option<String>,
}

pub fn location(base_url: &str, rt: &ResourceType, id: &str) -> String {
    format!("{base_url}{}/{id}", rt.endpoint)
}

/// A member as `members` shows it (one definition for both output paths).
#[derive(serde::Serialize)]
struct MemberOut<'a> {
    value: &'a str,
    #[serde(rename = "$ref")]
    reference: String,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
}

impl<'a> MemberOut<'a> {
    fn new(base_url: &str, m: &'a Reference) -> Self {
        MemberOut {
            value: &m.value,
            reference: ref_url(base_url, &m.kind, &m.value),
            kind: &m.kind,
            display: m.display.as_deref(),
        }
    }
}

/// The JSON text of `rep` (a representation built without members) with
/// the `members` array appended, written member by member: a group of
/// 100,000 members as a `Value` tree took ~200 MB and over half a second
/// to answer. The same JSON as `representation` with `derived.members`.
pub fn to_json_with_members(rep: &Map<String, Value>, base_url: &str, members: &[Reference]) -> Vec<u8> {
    let mut buf = serde_json::to_vec(rep).unwrap_or_else(|_| b"{}".to_vec());
    buf.pop(); // the closing brace
    if !rep.is_empty() {
        buf.push(b',');
    }
    buf.extend_from_slice(b"\"members\":[");
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        // Plain strings: serialising them cannot fail.
        let _ = serde_json::to_writer(&mut buf, &MemberOut::new(base_url, m));
    }
    buf.extend_from_slice(b"]}");
    buf
}

fn ref_url(base_url: &str, kind: &str, id: &str) -> String {
    let endpoint = if kind == "Group" { "/Groups" } else { "/Users" };
    format!("{base_url}{endpoint}/{id}")
}

pub fn representation(
    rt: &ResourceType,
    base_url: &str,
    doc: &Map<String, Value>,
    meta: &Meta<'_>,
    derived: Derived,
) -> Map<String, Value> {
    // The pieces are the ones `RepresentationView` writes: one definition
    // of each for both output paths.
    let mut out = Map::new();
    out.insert("schemas".into(), to_value(&Schemas(rt, doc)));
    out.insert("id".into(), Value::String(meta.id.to_string()));
    // `returned: never` (password) is stored but never leaves the server.
    out.extend(returnable(rt, doc));
    if let Some(members) = &derived.members {
        // An empty group still shows `members: []` (what Entra's docs show).
        out.insert("members".into(), to_value(&Refs(base_url, members, RefShape::Member)));
    }
    if let Some(groups) = derived.groups.as_ref().filter(|g| !g.is_empty()) {
        out.insert("groups".into(), to_value(&Refs(base_url, groups, RefShape::Group)));
    }
    let display = derived.manager_display.as_deref();
    if let Some(ent) = out
        .get(urn::ENTERPRISE_USER)
        .and_then(|v| with_manager_ref(urn::ENTERPRISE_USER, v, base_url, display))
    {
        // Replaced in place: the extension keeps its position.
        out.insert(urn::ENTERPRISE_USER.into(), ent);
    }
    out.insert("meta".into(), to_value(&meta_out(rt, base_url, meta)));
    out
}

/// [`representation`] written straight to a serialiser: the same JSON, key
/// for key, without first copying the whole document into a `Map` (which
/// cost a PATCH or GET about a tenth of its instructions).
pub struct RepresentationView<'a> {
    pub rt: &'a ResourceType,
    pub base_url: &'a str,
    pub doc: &'a Map<String, Value>,
    pub meta: &'a Meta<'a>,
    pub derived: &'a Derived,
}

impl Serialize for RepresentationView<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let RepresentationView {
            rt,
            base_url,
            doc,
            meta,
            derived,
        } = *self;
        // A document holding a key the representation sets itself would
        // have it replaced in place: the `Map` does that (never seen in
        // stored documents, which normalisation strips of them).
        if ["schemas", "id", "meta", "members", "groups"]
            .iter()
            .any(|k| doc.contains_key(*k))
        {
            return representation(rt, base_url, doc, meta, derived.clone()).serialize(ser);
        }
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("schemas", &Schemas(rt, doc))?;
        m.serialize_entry("id", meta.id)?;
        for (k, v) in returnable_entries(rt, doc) {
            match with_manager_ref(k, &v, base_url, derived.manager_display.as_deref()) {
                Some(v) => m.serialize_entry(k, &v)?,
                None => m.serialize_entry(k, &*v)?,
            }
        }
        if let Some(members) = &derived.members {
            m.serialize_entry("members", &Refs(base_url, members, RefShape::Member))?;
        }
        if let Some(groups) = derived.groups.as_ref().filter(|g| !g.is_empty()) {
            m.serialize_entry("groups", &Refs(base_url, groups, RefShape::Group))?;
        }
        m.serialize_entry("meta", &meta_out(rt, base_url, meta))?;
        m.end()
    }
}

/// A part of the representation as a `Value` (strings only: serialising it
/// cannot fail).
fn to_value(part: &impl Serialize) -> Value {
    serde_json::to_value(part).unwrap_or(Value::Null)
}

fn meta_out<'a>(rt: &'a ResourceType, base_url: &str, meta: &Meta<'a>) -> MetaOut<'a> {
    MetaOut {
        resource_type: &rt.name,
        created: meta.created,
        last_modified: meta.last_modified,
        location: location(base_url, rt, meta.id),
        version: etag(meta.version),
    }
}

/// `meta` as `representation` writes it.
#[derive(serde::Serialize)]
struct MetaOut<'a> {
    #[serde(rename = "resourceType")]
    resource_type: &'a str,
    created: &'a str,
    #[serde(rename = "lastModified")]
    last_modified: &'a str,
    location: String,
    version: String,
}

/// `schemas`: the core schema, then each extension the document has.
struct Schemas<'a>(&'a ResourceType, &'a Map<String, Value>);

impl Serialize for Schemas<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let Schemas(rt, doc) = self;
        let ids = std::iter::once(&rt.schema.id).chain(
            rt.extensions
                .iter()
                .map(|(ext, _)| &ext.id)
                .filter(|id| doc.contains_key(id.as_str())),
        );
        ser.collect_seq(ids)
    }
}

/// The enterprise extension with the manager's `$ref` (and `displayName`,
/// if known) as `representation` adds them; `None` when nothing is added.
fn with_manager_ref(key: &str, v: &Value, base_url: &str, display: Option<&str>) -> Option<Value> {
    if key != urn::ENTERPRISE_USER {
        return None;
    }
    let id = v.get("manager")?.as_object()?.get("value")?.as_str()?;
    let r = Value::String(ref_url(base_url, "User", id));
    let mut v = v.clone();
    if let Some(Value::Object(mgr)) = v.get_mut("manager") {
        mgr.insert("$ref".into(), r);
        if let Some(d) = display {
            mgr.insert("displayName".into(), Value::String(d.to_string()));
        }
    }
    Some(v)
}

#[derive(Clone, Copy)]
enum RefShape {
    Member,
    Group,
}

/// `members` or `groups`, written from the references.
struct Refs<'a>(&'a str, &'a [Reference], RefShape);

impl Serialize for Refs<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let Refs(base_url, refs, shape) = *self;
        ser.collect_seq(refs.iter().map(|r| match shape {
            RefShape::Member => Ref::Member(MemberOut::new(base_url, r)),
            RefShape::Group => Ref::Group(GroupOut {
                value: &r.value,
                reference: ref_url(base_url, "Group", &r.value),
                display: r.display.as_deref(),
                kind: "direct",
            }),
        }))
    }
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum Ref<'a> {
    Member(MemberOut<'a>),
    Group(GroupOut<'a>),
}

/// A group as a User's `groups` shows it.
#[derive(serde::Serialize)]
struct GroupOut<'a> {
    value: &'a str,
    #[serde(rename = "$ref")]
    reference: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    display: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'a str,
}

/// The attributes of a stored document that may leave the server: without
/// those (and the sub-attributes) whose `returned` is `never` (`password`,
/// a tenant's write-only extension attributes), and without the objects of
/// extensions the resource type no longer has. What SCIM responses, the
/// console and `scimitar export` show.
pub fn returnable(rt: &ResourceType, doc: &Map<String, Value>) -> Map<String, Value> {
    returnable_entries(rt, doc)
        .map(|(k, v)| (k.clone(), v.into_owned()))
        .collect()
}

/// What [`returnable`] keeps, in the document's order, borrowing every
/// value that needs no stripping (almost all), so that a serialiser can
/// write them without copying the document first.
pub fn returnable_entries<'a>(
    rt: &'a ResourceType,
    doc: &'a Map<String, Value>,
) -> impl Iterator<Item = (&'a String, Cow<'a, Value>)> + 'a {
    doc.iter().filter_map(move |(k, v)| {
        if let Some(ext) = rt.extension(k) {
            return match v {
                Value::Object(inner) if inner.is_empty() => None,
                Value::Object(inner) if !ext.attributes.iter().all(always_returned) => {
                    let kept = kept_attributes(&ext.attributes, inner);
                    (!kept.is_empty()).then(|| (k, Cow::Owned(Value::Object(kept))))
                }
                // Nothing in the extension is ever withheld: kept as is.
                other => Some((k, Cow::Borrowed(other))),
            };
        }
        if k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
            return None; // an extension that was removed: its values go unseen
        }
        match rt.schema.attribute(k) {
            Some(attr) => returnable_cow(attr, v).map(|v| (k, v)),
            None => Some((k, Cow::Borrowed(v))),
        }
    })
}

/// Whether neither `attr` nor any of its sub-attributes is `returned: never`.
fn always_returned(attr: &Attribute) -> bool {
    attr.returned != Returned::Never && attr.sub_attributes.iter().all(|s| s.returned != Returned::Never)
}

fn kept_attributes(attrs: &[Attribute], values: &Map<String, Value>) -> Map<String, Value> {
    values
        .iter()
        .filter_map(|(k, v)| match attrs.iter().find(|a| a.name.eq_ignore_ascii_case(k)) {
            Some(attr) => returnable_value(attr, v).map(|v| (k.clone(), v)),
            None => Some((k.clone(), v.clone())),
        })
        .collect()
}

/// [`returnable_value`], borrowing `v` when nothing is stripped from it.
fn returnable_cow<'a>(attr: &Attribute, v: &'a Value) -> Option<Cow<'a, Value>> {
    if attr.returned == Returned::Never {
        return None;
    }
    if !attr.is_complex() || attr.sub_attributes.iter().all(|s| s.returned != Returned::Never) {
        return Some(Cow::Borrowed(v));
    }
    returnable_value(attr, v).map(Cow::Owned)
}

/// `v` without what `attr` never returns; `None` if nothing is left.
fn returnable_value(attr: &Attribute, v: &Value) -> Option<Value> {
    if attr.returned == Returned::Never {
        return None;
    }
    if !attr.is_complex() || attr.sub_attributes.iter().all(|s| s.returned != Returned::Never) {
        return Some(v.clone());
    }
    let strip = |o: &Map<String, Value>| kept_attributes(&attr.sub_attributes, o);
    match v {
        Value::Object(o) => Some(Value::Object(strip(o))).filter(|v| v.as_object().is_some_and(|o| !o.is_empty())),
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .iter()
                .map(|it| match it {
                    Value::Object(o) => Value::Object(strip(o)),
                    other => other.clone(),
                })
                .collect();
            Some(Value::Array(kept))
        }
        other => Some(other.clone()),
    }
}
