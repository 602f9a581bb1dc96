//! The change events of a write (the outbox the application reads, see
//! `docs/events.md`): which events a change makes, and their payloads.
//! Pure: ids, times and sequence numbers are added by the caller and the
//! store.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::ScimError;
use crate::output::{Derived, Meta, RepresentationView};
use crate::schema::{Kind, ResourceType};

/// An event a change makes, before it has an id, a time and a sequence
/// number.
#[derive(Debug, Clone)]
pub struct EventDraft {
    /// `user.created`, `group.updated`, …
    pub event_type: &'static str,
    /// The payload (`data`), serialised: events are stored as text, so it
    /// is written once, here, straight from the document.
    pub data: Box<RawValue>,
}

/// A resource as its events show it.
#[derive(Debug, Clone)]
pub struct Snapshot<'a> {
    pub rt: &'a ResourceType,
    /// The Tenant URL (for `meta.location`).
    pub base: &'a str,
    pub doc: &'a Map<String, Value>,
    pub meta: Meta<'a>,
}

/// Whether a User document is active (absent `active` counts as active).
fn is_active(doc: &Map<String, Value>) -> bool {
    doc.get("active").and_then(Value::as_bool) != Some(false)
}

/// A payload's `resource` has no derived values (members, groups).
const NOT_DERIVED: Derived = Derived {
    members: None,
    groups: None,
    manager_display: None,
};

/// What a payload has after `resource`.
#[derive(Clone, Copy)]
enum Tail<'a> {
    None,
    /// `changed` (updates).
    Changed(&'a [&'a str]),
    /// `group: {id, displayName}` (member events).
    Group,
}

/// The payload of an event, written from the snapshot without copying it:
/// the normalised view plus `resource`, then the tail. Serialises exactly
/// as the `Map` this module used to build did (same keys, same order).
struct PayloadView<'a> {
    kind: Kind,
    s: &'a Snapshot<'a>,
    tail: Tail<'a>,
}

impl Serialize for PayloadView<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let doc = self.s.doc;
        let null = &Value::Null;
        let get = |k: &str| doc.get(k).unwrap_or(null);
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("id", self.s.meta.id)?;
        m.serialize_entry("externalId", get("externalId"))?;
        match self.kind {
            Kind::User => {
                m.serialize_entry("userName", get("userName"))?;
                match doc.get("emails") {
                    Some(e) => m.serialize_entry("emails", e)?,
                    None => m.serialize_entry("emails", &[] as &[Value])?,
                }
                m.serialize_entry("name", get("name"))?;
                m.serialize_entry("displayName", get("displayName"))?;
                m.serialize_entry("active", &is_active(doc))?;
            }
            Kind::Group => m.serialize_entry("displayName", get("displayName"))?,
        }
        let Snapshot { rt, base, doc, meta } = self.s;
        let resource = RepresentationView {
            rt,
            base_url: base,
            doc,
            meta,
            derived: &NOT_DERIVED,
        };
        m.serialize_entry("resource", &resource)?;
        match self.tail {
            Tail::None => {}
            Tail::Changed(changed) => m.serialize_entry("changed", changed)?,
            Tail::Group => m.serialize_entry(
                "group",
                &GroupRef {
                    id: self.s.meta.id,
                    display_name: get("displayName"),
                },
            )?,
        }
        m.end()
    }
}

#[derive(serde::Serialize)]
struct GroupRef<'a> {
    id: &'a str,
    #[serde(rename = "displayName")]
    display_name: &'a Value,
}

fn serialise(kind: Kind, s: &Snapshot<'_>, tail: Tail<'_>) -> Result<Box<RawValue>, ScimError> {
    serde_json::value::to_raw_value(&PayloadView { kind, s, tail })
        .map_err(|e| ScimError::internal(format!("an event payload: {e}")))
}

/// The payload: the normalised view plus `resource`, the full
/// representation as stored, without anything `returned: never`
/// (`password`) and without derived values (members, groups).
pub fn payload(kind: Kind, s: &Snapshot<'_>) -> Result<Box<RawValue>, ScimError> {
    serialise(kind, s, Tail::None)
}

/// The payload of `group.user_added` / `group.user_removed` without the
/// member: the group's view plus `group: {id, displayName}`; the store
/// adds `user: {id}` per member actually added or removed.
pub fn member_payload(s: &Snapshot<'_>) -> Result<Box<RawValue>, ScimError> {
    serialise(Kind::Group, s, Tail::Group)
}

/// The names of the attributes a change's `diff::changes` lists (an
/// extension's attributes as `urn:…:name`), in its order (sorted): what
/// `updated` takes as `changed`, so that a write diffs its documents once.
pub fn changed_attributes(changes: &[Value]) -> Vec<&str> {
    changes
        .iter()
        .filter_map(|c| c.get("attribute").and_then(Value::as_str))
        .collect()
}

/// The events of a created resource (member events come from the store).
pub fn created(kind: Kind, after: &Snapshot<'_>) -> Result<Vec<EventDraft>, ScimError> {
    let event_type = match kind {
        Kind::User => "user.created",
        Kind::Group => "group.created",
    };
    Ok(vec![EventDraft {
        event_type,
        data: payload(kind, after)?,
    }])
}

/// The events of a deleted resource: its last stored state.
pub fn deleted(kind: Kind, before: &Snapshot<'_>) -> Result<Vec<EventDraft>, ScimError> {
    let event_type = match kind {
        Kind::User => "user.deleted",
        Kind::Group => "group.deleted",
    };
    Ok(vec![EventDraft {
        event_type,
        data: payload(kind, before)?,
    }])
}

/// The events of a change to a resource's document (member changes are
/// the store's, who knows which members were actually added or removed),
/// given the names of the attributes that changed (`changed_attributes`
/// of the change's diff). None when none did. A User whose `active` goes
/// from true to false gets `user.deactivated` (false to true:
/// `user.reactivated`) instead of `user.updated` when `active` is the only
/// change, and after `user.updated` otherwise.
pub fn updated(
    kind: Kind,
    before: &Map<String, Value>,
    after: &Snapshot<'_>,
    changed: &[&str],
) -> Result<Vec<EventDraft>, ScimError> {
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let transition = match (kind, is_active(before), is_active(after.doc)) {
        (Kind::User, true, false) => Some("user.deactivated"),
        (Kind::User, false, true) => Some("user.reactivated"),
        _ => None,
    };
    let only_active = changed == ["active"];
    if transition.is_none() || !only_active {
        out.push(EventDraft {
            event_type: match kind {
                Kind::User => "user.updated",
                Kind::Group => "group.updated",
            },
            data: serialise(kind, after, Tail::Changed(changed))?,
        });
    }
    if let Some(t) = transition {
        out.push(EventDraft {
            event_type: t,
            data: payload(kind, after)?,
        });
    }
    Ok(out)
}

/// Every event type, for validating a `types` filter.
pub const EVENT_TYPES: &[&str] = &[
    "user.created",
    "user.updated",
    "user.deactivated",
    "user.reactivated",
    "user.deleted",
    "group.created",
    "group.updated",
    "group.deleted",
    "group.user_added",
    "group.user_removed",
    "tenant.token_created",
    "tenant.token_revoked",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Returned, builtin_resource_types, urn};
    use serde_json::json;

    fn rt_named(name: &str) -> ResourceType {
        builtin_resource_types().into_iter().find(|r| r.name == name).unwrap()
    }

    fn doc(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn snap<'a>(rt: &'a ResourceType, d: &'a Map<String, Value>) -> Snapshot<'a> {
        Snapshot {
            rt,
            base: "https://x/scim/t/v2",
            doc: d,
            meta: Meta {
                id: "u1",
                created: "2026-01-01T00:00:00.000Z",
                last_modified: "2026-01-02T00:00:00.000Z",
                version: 2,
            },
        }
    }

    fn value(raw: &RawValue) -> Value {
        serde_json::from_str(raw.get()).unwrap()
    }

    /// The payload as this module built it before it wrote text directly
    /// (a `Map` around `output::representation`): what consumers got.
    fn map_payload(kind: Kind, s: &Snapshot<'_>) -> Map<String, Value> {
        let resource = crate::output::representation(s.rt, s.base, s.doc, &s.meta, Derived::default());
        let get = |k: &str| s.doc.get(k).cloned().unwrap_or(Value::Null);
        let mut data = Map::new();
        data.insert("id".into(), Value::String(s.meta.id.to_string()));
        data.insert("externalId".into(), get("externalId"));
        match kind {
            Kind::User => {
                data.insert("userName".into(), get("userName"));
                data.insert(
                    "emails".into(),
                    s.doc.get("emails").cloned().unwrap_or_else(|| json!([])),
                );
                data.insert("name".into(), get("name"));
                data.insert("displayName".into(), get("displayName"));
                data.insert("active".into(), Value::Bool(is_active(s.doc)));
            }
            Kind::Group => {
                data.insert("displayName".into(), get("displayName"));
            }
        }
        data.insert("resource".into(), Value::Object(resource));
        data
    }

    /// The User type with an extension attribute and an `emails`
    /// sub-attribute that are `returned: never`, as a tenant may define.
    fn user_with_secrets() -> ResourceType {
        let mut rt = rt_named("User");
        for (ext, _) in &mut rt.extensions {
            for a in &mut ext.attributes {
                if a.name == "employeeNumber" {
                    a.returned = Returned::Never;
                }
            }
        }
        for a in &mut rt.schema.attributes {
            if a.name == "emails" {
                for s in &mut a.sub_attributes {
                    if s.name == "display" {
                        s.returned = Returned::Never;
                    }
                }
            }
        }
        rt
    }

    #[test]
    fn payload_text_is_what_the_map_based_payload_serialised_to() {
        let (user, group, secrets) = (rt_named("User"), rt_named("Group"), user_with_secrets());
        let ent = urn::ENTERPRISE_USER;
        // (resource type, kind, stored document)
        let cases: Vec<(&ResourceType, Kind, Value)> = vec![
            (&user, Kind::User, json!({"userName": "ann"})),
            (
                &user,
                Kind::User,
                json!({"userName": "ann", "externalId": "e1", "password": "secret-value", "active": false,
                    "emails": [{"value": "ann@x", "type": "work", "primary": true}, {"value": "a2@x"}],
                    "name": {"givenName": "Ann", "familyName": "Lee"}, "displayName": "Ann Lee",
                    "title": "Dr \"quoted\" \u{e9}\n"}),
            ),
            (
                &user,
                Kind::User,
                json!({"userName": "bob", ent: {"employeeNumber": "7", "department": "R&D",
                    "manager": {"value": "m1"}}}),
            ),
            (
                &user,
                Kind::User,
                json!({"userName": "bob", ent: {"manager": {"displayName": "no value"}}}),
            ),
            (&user, Kind::User, json!({"userName": "bob", ent: {}})),
            // An extension the type no longer has, and an unknown attribute.
            (
                &user,
                Kind::User,
                json!({"userName": "c", "urn:example:gone:2.0:User": {"x": 1}, "custom": [1, 2]}),
            ),
            (
                &secrets,
                Kind::User,
                json!({"userName": "d", "password": "p", "emails": [{"value": "d@x", "display": "hidden"}],
                    ent: {"employeeNumber": "hidden-number", "department": "D"}}),
            ),
            (
                &secrets,
                Kind::User,
                json!({"userName": "d", ent: {"employeeNumber": "hidden-number"}}),
            ),
            // Keys the representation sets itself.
            (
                &user,
                Kind::User,
                json!({"userName": "e", "id": "other", "meta": {"x": 1}}),
            ),
            (&group, Kind::Group, json!({"displayName": "g"})),
            (&group, Kind::Group, json!({"displayName": "g", "externalId": "x"})),
            (&group, Kind::Group, json!({})),
        ];
        for (rt, kind, d) in cases {
            let d = doc(d);
            let s = snap(rt, &d);
            let old = map_payload(kind, &s);
            let text = payload(kind, &s).unwrap();
            assert_eq!(text.get(), Value::Object(old.clone()).to_string(), "{d:?}");
            assert_eq!(value(&text), Value::Object(old.clone()));
            for t in [text.get(), member_payload(&s).unwrap().get()] {
                assert!(!t.contains("password"), "{t}");
            }
            // (The normalised view's `emails` is the stored value, as it
            // always was; `resource` withholds what is `returned: never`.)
            assert!(!value(&text)["resource"].to_string().contains("hidden"), "{text}");
            if kind == Kind::Group {
                let mut with = old.clone();
                with.insert("group".into(), json!({"id": "u1", "displayName": d.get("displayName")}));
                assert_eq!(member_payload(&s).unwrap().get(), Value::Object(with).to_string());
            }
            let e = updated(kind, &Map::new(), &s, &["displayName", "password"]).unwrap();
            let mut with = old;
            with.insert("changed".into(), json!(["displayName", "password"]));
            assert_eq!(e.first().unwrap().data.get(), Value::Object(with).to_string());
        }
    }

    #[test]
    fn user_changes_make_these_events() {
        let rt = rt_named("User");
        // (before, after, expected types, expected `changed` of the update)
        let cases: Vec<(Value, Value, Vec<&str>, Vec<&str>)> = vec![
            (json!({"userName": "a"}), json!({"userName": "a"}), vec![], vec![]),
            (
                json!({"userName": "a"}),
                json!({"userName": "b"}),
                vec!["user.updated"],
                vec!["userName"],
            ),
            (
                json!({"userName": "a", "active": true}),
                json!({"userName": "a", "active": false}),
                vec!["user.deactivated"],
                vec![],
            ),
            (
                json!({"userName": "a"}),
                json!({"userName": "a", "active": false}),
                vec!["user.deactivated"],
                vec![],
            ),
            (
                json!({"userName": "a", "active": false}),
                json!({"userName": "a", "active": true}),
                vec!["user.reactivated"],
                vec![],
            ),
            (
                json!({"userName": "a", "active": true}),
                json!({"userName": "b", "active": false}),
                vec!["user.updated", "user.deactivated"],
                vec!["active", "userName"],
            ),
            // active absent → true: no transition, an update.
            (
                json!({"userName": "a"}),
                json!({"userName": "a", "active": true}),
                vec!["user.updated"],
                vec!["active"],
            ),
            (
                json!({"userName": "a", "password": "x"}),
                json!({"userName": "a", "password": "y"}),
                vec!["user.updated"],
                vec!["password"],
            ),
            (
                json!({"userName": "a", urn::ENTERPRISE_USER: {"department": "x"}}),
                json!({"userName": "a", urn::ENTERPRISE_USER: {"department": "y"}}),
                vec!["user.updated"],
                vec!["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"],
            ),
        ];
        for (before, after, types, changed) in cases {
            let (b, a) = (doc(before.clone()), doc(after.clone()));
            let diff = crate::diff::changes(&rt, &b, &a);
            let names = changed_attributes(&diff);
            let events = updated(Kind::User, &b, &snap(&rt, &a), &names).unwrap();
            let got: Vec<&str> = events.iter().map(|e| e.event_type).collect();
            assert_eq!(got, types, "{before} → {after}");
            if let Some(u) = events.iter().find(|e| e.event_type == "user.updated") {
                assert_eq!(value(&u.data)["changed"], json!(changed), "{before} → {after}");
            }
            for e in &events {
                assert!(!e.data.get().contains("\"password\":"), "{e:?}");
            }
        }
    }

    #[test]
    fn payloads_have_the_normalised_view_and_never_the_password() {
        let rt = rt_named("User");
        let d = doc(
            json!({"userName": "ann", "externalId": "e1", "password": "secret-value",
            "emails": [{"value": "ann@x", "primary": true}], "name": {"givenName": "Ann"}}),
        );
        let e = created(Kind::User, &snap(&rt, &d)).unwrap();
        assert_eq!(e.len(), 1);
        let data = value(&e[0].data);
        assert_eq!(e[0].event_type, "user.created");
        assert_eq!(data["id"], "u1");
        assert_eq!(data["userName"], "ann");
        assert_eq!(data["externalId"], "e1");
        assert_eq!(data["active"], true);
        assert_eq!(data["emails"][0]["value"], "ann@x");
        assert_eq!(data["name"]["givenName"], "Ann");
        assert_eq!(data["resource"]["userName"], "ann");
        assert_eq!(data["resource"]["meta"]["version"], "\"2\"");
        assert!(!data.to_string().contains("secret-value"));
        assert!(data["resource"].get("password").is_none());
        let del = deleted(Kind::User, &snap(&rt, &d)).unwrap();
        assert_eq!(del[0].event_type, "user.deleted");
    }

    #[test]
    fn group_updates_and_member_payloads() {
        let rt = rt_named("Group");
        let (b, a) = (doc(json!({"displayName": "g"})), doc(json!({"displayName": "h"})));
        let diff = crate::diff::changes(&rt, &b, &a);
        let e = updated(Kind::Group, &b, &snap(&rt, &a), &changed_attributes(&diff)).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].event_type, "group.updated");
        assert_eq!(value(&e[0].data)["changed"], json!(["displayName"]));
        assert!(updated(Kind::Group, &a, &snap(&rt, &a), &[]).unwrap().is_empty());
        let m = value(&member_payload(&snap(&rt, &a)).unwrap());
        assert_eq!(m["group"], json!({"id": "u1", "displayName": "h"}));
        assert_eq!(m["displayName"], "h");
    }
}
