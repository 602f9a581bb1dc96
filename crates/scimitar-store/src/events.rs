//! Change events: the outbox the host application reads (`docs/events.md`).
//!
//! A write's events are stored in the write's own transaction (on
//! [`crate::NewResource`] and [`crate::Mutation`], or given to
//! [`crate::ResourceStore::delete_with_events`]), so an event exists if and
//! only if its change committed. Each event gets a per-tenant sequence
//! number, the cursor of readers, which never makes an event visible below
//! one already read: SQLite assigns it in the single writer's transaction;
//! PostgreSQL stores events unsequenced and assigns numbers to committed
//! ones when they are read (see ARCHITECTURE.md).

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::{Record, StoreResult, TenantId};

/// An event to store with a change.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// UUID v4, the event's id forever.
    pub id: String,
    /// `user.created`, …
    pub event_type: String,
    /// RFC 3339 UTC.
    pub time: String,
    /// The resource (or token) the event is about.
    pub subject: Option<String>,
    /// The payload, a JSON object, serialised once where it is made:
    /// stores keep the text as it is.
    pub data: Box<RawValue>,
    /// The change it belongs to (`ActivityEvent::change`), if logged.
    pub change: Option<String>,
}

/// A new change id: its activity entry and its events carry it.
pub fn new_change_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl PartialEq for NewEvent {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.id,
            &self.event_type,
            &self.time,
            &self.subject,
            self.data.get(),
            &self.change,
        ) == (
            &other.id,
            &other.event_type,
            &other.time,
            &other.subject,
            other.data.get(),
            &other.change,
        )
    }
}

impl NewEvent {
    /// An event with a fresh id, now.
    pub fn new(event_type: &str, subject: Option<&str>, data: Value) -> Self {
        // A `Value` always serialises (its keys are strings).
        let data = serde_json::value::to_raw_value(&data).unwrap_or_else(|_| empty_object());
        Self::serialised(event_type, subject, data)
    }

    /// An event with a fresh id, now, whose payload is already serialised.
    pub fn serialised(event_type: &str, subject: Option<&str>, data: Box<RawValue>) -> Self {
        NewEvent {
            id: uuid::Uuid::new_v4().to_string(),
            event_type: event_type.to_string(),
            time: crate::now_utc(),
            subject: subject.map(str::to_string),
            data,
            change: None,
        }
    }
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_string()).unwrap_or_default()
}

/// `payload` (a JSON object's text) with `key: value` appended, without
/// serialising the payload again: for the member events of a large group
/// change, which share one payload. `None` if `payload` is no object.
fn with_field(payload: &RawValue, key: &str, value: &impl Serialize) -> Option<Box<RawValue>> {
    let head = payload.get().trim_end().strip_suffix('}')?.trim_end();
    let sep = if head.ends_with('{') { "" } else { "," };
    let key = serde_json::to_string(key).ok()?;
    let value = serde_json::to_string(value).ok()?;
    RawValue::from_string(format!("{head}{sep}{key}:{value}}}")).ok()
}

/// `payload` parsed, changed by `f` and serialised again (the rare cases
/// that edit a payload inside).
fn edited(payload: &RawValue, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Option<Box<RawValue>> {
    let mut data: serde_json::Map<String, Value> = serde_json::from_str(payload.get()).ok()?;
    f(&mut data);
    serde_json::value::to_raw_value(&data).ok()
}

/// What the store needs to make the `group.user_added` and
/// `group.user_removed` events of a change: one per User member actually
/// added or removed (adding a member twice or removing a non-member is no
/// event; the store alone knows which).
#[derive(Debug, Clone)]
pub struct MemberEvents {
    pub group: String,
    /// The payload without `user` (`scimitar_protocol::events::member_payload`).
    pub data: Box<RawValue>,
}

impl PartialEq for MemberEvents {
    fn eq(&self, other: &Self) -> bool {
        (&self.group, self.data.get()) == (&other.group, other.data.get())
    }
}

impl MemberEvents {
    /// The event of one member added (or removed).
    pub fn event(&self, added: bool, user: &str) -> NewEvent {
        let member = serde_json::json!({ "id": user });
        // The payload is a JSON object (it comes from `member_payload`);
        // were it not, the event still says which member.
        let data = with_field(&self.data, "user", &member).unwrap_or_else(|| {
            serde_json::value::to_raw_value(&serde_json::json!({ "user": member })).unwrap_or_else(|_| empty_object())
        });
        NewEvent::serialised(
            if added {
                "group.user_added"
            } else {
                "group.user_removed"
            },
            Some(&self.group),
            data,
        )
    }
}

/// The events of one change: those computed from the documents, then the
/// member events the store makes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeEvents {
    pub events: Vec<NewEvent>,
    pub members: Option<MemberEvents>,
    /// Given to every event of the change (`ActivityEvent::change`).
    pub change: Option<String>,
}

/// A member added to (`true`) or removed from a group by a change, with
/// the member's kind (`User` or `Group`).
pub type MemberDelta = Vec<(bool, String, String)>;

impl ChangeEvents {
    /// Every event of the change, given the members actually added and
    /// removed: the document's first, then one per User member.
    /// Nested groups added or removed are no member event (those are about
    /// users): the group's `group.updated` says `members` changed instead
    /// (one is made if the document did not change).
    pub fn all(self, delta: &MemberDelta) -> Vec<NewEvent> {
        let change = self.change.clone();
        let mut out = self.members_too(delta);
        if change.is_some() {
            for e in &mut out {
                e.change.clone_from(&change);
            }
        }
        out
    }

    fn members_too(self, delta: &MemberDelta) -> Vec<NewEvent> {
        let mut out = self.events;
        let Some(m) = &self.members else { return out };
        if delta.iter().any(|(_, _, kind)| kind != "User") {
            let members = Value::String("members".into());
            match out.iter_mut().find(|e| e.event_type == "group.updated") {
                Some(e) => {
                    let push = |data: &mut serde_json::Map<String, Value>| {
                        if let Some(Value::Array(changed)) = data.get_mut("changed") {
                            changed.push(members);
                        }
                    };
                    if let Some(data) = edited(&e.data, push) {
                        e.data = data;
                    }
                }
                None => {
                    let data = edited(&m.data, |data| {
                        data.shift_remove("group");
                        data.insert("changed".into(), Value::Array(vec![members]));
                    })
                    .unwrap_or_else(empty_object);
                    out.push(NewEvent::serialised("group.updated", Some(&m.group), data));
                }
            }
        }
        out.extend(
            delta
                .iter()
                .filter(|(_, _, kind)| kind == "User")
                .map(|(added, id, _)| m.event(*added, id)),
        );
        out
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.members.is_none()
    }
}

/// Computes the events of a delete from the record as stored, inside the
/// delete's transaction.
pub type DeleteEventsFn = Arc<dyn Fn(&Record) -> Result<Vec<NewEvent>, scimitar_protocol::ScimError> + Send + Sync>;

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: String,
    pub seq: i64,
    pub time: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The resource (or token) it is about: webhooks are ordered by it.
    #[serde(skip)]
    pub subject: Option<String>,
    pub data: Value,
}

/// A stored event with its payload as stored (JSON text), not parsed: what
/// webhook deliveries put in their bodies as is.
#[derive(Debug, Clone, PartialEq)]
pub struct RawEvent {
    pub id: String,
    pub seq: i64,
    pub time: String,
    pub event_type: String,
    pub subject: Option<String>,
    /// JSON text.
    pub data: String,
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores events that belong to no resource write (tokens), in one
    /// transaction.
    async fn record_events(&self, tenant: TenantId, events: Vec<NewEvent>) -> StoreResult<()>;
    /// The tenant's events with `seq` above `after`, in `seq` order, at most
    /// `limit`, of the given types (all when empty).
    async fn list_events(
        &self,
        tenant: TenantId,
        after: i64,
        limit: usize,
        types: &[String],
    ) -> StoreResult<Vec<Event>>;
    /// As [`EventStore::list_events`] of every type, with each payload as
    /// JSON text. A backend that stores the text returns it without parsing
    /// it (one parse and one serialisation less per webhook delivery); the
    /// default serialises what `list_events` parsed.
    async fn list_raw_events(&self, tenant: TenantId, after: i64, limit: usize) -> StoreResult<Vec<RawEvent>> {
        Ok(self
            .list_events(tenant, after, limit, &[])
            .await?
            .into_iter()
            .map(|e| RawEvent {
                data: e.data.to_string(),
                id: e.id,
                seq: e.seq,
                time: e.time,
                event_type: e.event_type,
                subject: e.subject,
            })
            .collect())
    }
    /// The highest sequence number the tenant's readers can see (0 before
    /// any event). Every event numbered up to it is visible once it is:
    /// numbers become visible in order.
    async fn last_event_seq(&self, tenant: TenantId) -> StoreResult<i64>;
    /// The events of one change (`ActivityEvent::change`) stored between
    /// `from` and `to` (RFC 3339; the window keeps the lookup on the time
    /// index), in the order they were stored. On PostgreSQL they may not be
    /// numbered yet: their `seq` is then 0.
    async fn change_events(&self, tenant: TenantId, change: &str, from: &str, to: &str) -> StoreResult<Vec<Event>>;
    /// Deletes events older than `before` in every tenant (retention runs
    /// across tenants by design); returns how many.
    async fn purge_events(&self, before: &str) -> StoreResult<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(events: Vec<NewEvent>) -> ChangeEvents {
        ChangeEvents {
            change: Some("c1".into()),
            events,
            members: Some(MemberEvents {
                group: "g".into(),
                data: serde_json::value::to_raw_value(&json!({"id": "g", "group": {"id": "g"}})).unwrap(),
            }),
        }
    }

    fn delta(rows: &[(bool, &str, &str)]) -> MemberDelta {
        rows.iter()
            .map(|(a, i, k)| (*a, i.to_string(), k.to_string()))
            .collect()
    }

    /// Document events, the delta, and the expected (type, member or `changed`).
    type Case = (Vec<NewEvent>, MemberDelta, Vec<(&'static str, Value)>);

    #[test]
    fn member_deltas_become_these_events() {
        // (document events, delta, expected (type, user or changed))
        let updated = || NewEvent::new("group.updated", Some("g"), json!({"changed": ["displayName"]}));
        let cases: Vec<Case> = vec![
            (vec![], delta(&[]), vec![]),
            (
                vec![],
                delta(&[(true, "u1", "User"), (false, "u2", "User")]),
                vec![("group.user_added", json!("u1")), ("group.user_removed", json!("u2"))],
            ),
            (
                vec![],
                delta(&[(true, "g2", "Group")]),
                vec![("group.updated", json!(["members"]))],
            ),
            (
                vec![updated()],
                delta(&[(true, "g2", "Group"), (true, "u1", "User")]),
                vec![
                    ("group.updated", json!(["displayName", "members"])),
                    ("group.user_added", json!("u1")),
                ],
            ),
        ];
        for (events, d, want) in cases {
            let got: Vec<(String, Value)> = change(events.clone())
                .all(&d)
                .into_iter()
                .map(|e| {
                    let data: Value = serde_json::from_str(e.data.get()).unwrap();
                    let v = if e.event_type == "group.updated" {
                        data["changed"].clone()
                    } else {
                        data["user"]["id"].clone()
                    };
                    (e.event_type, v)
                })
                .collect();
            let want: Vec<(String, Value)> = want.into_iter().map(|(t, v)| (t.to_string(), v)).collect();
            assert_eq!(got, want, "{d:?}");
            // Every event of the change carries its id, the member events too.
            assert!(
                change(events).all(&d).iter().all(|e| e.change.as_deref() == Some("c1")),
                "{d:?}"
            );
        }
        // A member event is the shared payload with `user` appended.
        let e = change(vec![]).members.unwrap().event(true, "u\"1");
        assert_eq!(e.data.get(), r#"{"id":"g","group":{"id":"g"},"user":{"id":"u\"1"}}"#);
        // Without member events (a User), the delta is ignored.
        let user = ChangeEvents::default();
        assert!(user.all(&delta(&[(true, "u1", "User")])).is_empty());
    }
}
