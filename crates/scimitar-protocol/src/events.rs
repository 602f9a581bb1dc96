//! The change events of a write (the outbox the application reads, see
//! `docs/events.md`): which events a change makes, and their payloads.
//! Pure: ids, times and sequence numbers are added by the caller and the
//! store.

use serde_json::{Map, Value, json};

use crate::output::{self, Derived, Meta};
use crate::schema::{Kind, ResourceType};

/// An event a change makes, before it has an id, a time and a sequence
/// number.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    /// `user.created`, `group.updated`, …
    pub event_type: &'static str,
    /// The payload (`data`).
    pub data: Value,
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

/// The normalised view plus `resource`, the full representation as
/// stored, without anything `returned: never` (`password`) and without
/// derived values (members, groups).
pub fn payload(kind: Kind, s: &Snapshot<'_>) -> Map<String, Value> {
    let resource = output::representation(
        s.rt,
        s.base,
        s.doc,
        &s.meta,
        Derived {
            members: None,
            groups: None,
            manager_display: None,
        },
    );
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

/// The payload of `group.user_added` / `group.user_removed` without the
/// member: the group's view plus `group: {id, displayName}`; the store
/// adds `user: {id}` per member actually added or removed.
pub fn member_payload(s: &Snapshot<'_>) -> Map<String, Value> {
    let mut data = payload(Kind::Group, s);
    data.insert(
        "group".into(),
        json!({"id": s.meta.id, "displayName": s.doc.get("displayName").cloned().unwrap_or(Value::Null)}),
    );
    data
}

/// The names of the attributes that differ between two documents (an
/// extension's attributes as `urn:…:name`), sorted.
pub fn changed_attributes(rt: &ResourceType, old: &Map<String, Value>, new: &Map<String, Value>) -> Vec<String> {
    crate::diff::changes(rt, old, new)
        .iter()
        .filter_map(|c| c.get("attribute").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// The events of a created resource (member events come from the store).
pub fn created(kind: Kind, after: &Snapshot<'_>) -> Vec<EventDraft> {
    let event_type = match kind {
        Kind::User => "user.created",
        Kind::Group => "group.created",
    };
    vec![EventDraft {
        event_type,
        data: Value::Object(payload(kind, after)),
    }]
}

/// The events of a deleted resource: its last stored state.
pub fn deleted(kind: Kind, before: &Snapshot<'_>) -> Vec<EventDraft> {
    let event_type = match kind {
        Kind::User => "user.deleted",
        Kind::Group => "group.deleted",
    };
    vec![EventDraft {
        event_type,
        data: Value::Object(payload(kind, before)),
    }]
}

/// The events of a change to a resource's document (member changes are
/// the store's, who knows which members were actually added or removed).
/// None when the document is unchanged. A User whose `active` goes from
/// true to false gets `user.deactivated` (false to true:
/// `user.reactivated`) instead of `user.updated` when `active` is the only
/// change, and after `user.updated` otherwise.
pub fn updated(kind: Kind, before: &Map<String, Value>, after: &Snapshot<'_>) -> Vec<EventDraft> {
    let changed = changed_attributes(after.rt, before, after.doc);
    if changed.is_empty() {
        return Vec::new();
    }
    let data = payload(kind, after);
    let mut out = Vec::new();
    let transition = match (kind, is_active(before), is_active(after.doc)) {
        (Kind::User, true, false) => Some("user.deactivated"),
        (Kind::User, false, true) => Some("user.reactivated"),
        _ => None,
    };
    let only_active = changed.len() == 1 && changed.first().is_some_and(|c| c == "active");
    if transition.is_none() || !only_active {
        let mut with = data.clone();
        with.insert(
            "changed".into(),
            Value::Array(changed.into_iter().map(Value::String).collect()),
        );
        out.push(EventDraft {
            event_type: match kind {
                Kind::User => "user.updated",
                Kind::Group => "group.updated",
            },
            data: Value::Object(with),
        });
    }
    if let Some(t) = transition {
        out.push(EventDraft {
            event_type: t,
            data: Value::Object(data),
        });
    }
    out
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
    use crate::schema::{ResourceType, builtin_resource_types};

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
        ];
        for (before, after, types, changed) in cases {
            let (b, a) = (doc(before.clone()), doc(after.clone()));
            let events = updated(Kind::User, &b, &snap(&rt, &a));
            let got: Vec<&str> = events.iter().map(|e| e.event_type).collect();
            assert_eq!(got, types, "{before} → {after}");
            if let Some(u) = events.iter().find(|e| e.event_type == "user.updated") {
                assert_eq!(u.data["changed"], json!(changed), "{before} → {after}");
            }
            for e in &events {
                assert!(!e.data.to_string().contains("\"password\":"), "{e:?}");
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
        let e = created(Kind::User, &snap(&rt, &d));
        assert_eq!(e.len(), 1);
        let data = &e[0].data;
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
        let del = deleted(Kind::User, &snap(&rt, &d));
        assert_eq!(del[0].event_type, "user.deleted");
    }

    #[test]
    fn group_updates_and_member_payloads() {
        let rt = rt_named("Group");
        let (b, a) = (doc(json!({"displayName": "g"})), doc(json!({"displayName": "h"})));
        let e = updated(Kind::Group, &b, &snap(&rt, &a));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].event_type, "group.updated");
        assert_eq!(e[0].data["changed"], json!(["displayName"]));
        assert!(updated(Kind::Group, &a, &snap(&rt, &a)).is_empty());
        let m = member_payload(&snap(&rt, &a));
        assert_eq!(m["group"], json!({"id": "u1", "displayName": "h"}));
        assert_eq!(m["displayName"], "h");
    }
}
