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
use serde_json::{Map, Value};

use crate::{Record, StoreResult, TenantId};

/// An event to store with a change.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// UUID v4, the event's id forever.
    pub id: String,
    /// `user.created`, …
    pub event_type: String,
    /// RFC 3339 UTC.
    pub time: String,
    /// The resource (or token) the event is about.
    pub subject: Option<String>,
    pub data: Value,
}

impl NewEvent {
    /// An event with a fresh id, now.
    pub fn new(event_type: &str, subject: Option<&str>, data: Value) -> Self {
        NewEvent {
            id: uuid::Uuid::new_v4().to_string(),
            event_type: event_type.to_string(),
            time: crate::now_utc(),
            subject: subject.map(str::to_string),
            data,
        }
    }
}

/// What the store needs to make the `group.user_added` and
/// `group.user_removed` events of a change: one per User member actually
/// added or removed (adding a member twice or removing a non-member is no
/// event; the store alone knows which).
#[derive(Debug, Clone, PartialEq)]
pub struct MemberEvents {
    pub group: String,
    /// The payload without `user` (`scimitar_protocol::events::member_payload`).
    pub data: Map<String, Value>,
}

impl MemberEvents {
    /// The event of one member added (or removed).
    pub fn event(&self, added: bool, user: &str) -> NewEvent {
        let mut data = self.data.clone();
        data.insert("user".into(), serde_json::json!({ "id": user }));
        NewEvent::new(
            if added {
                "group.user_added"
            } else {
                "group.user_removed"
            },
            Some(&self.group),
            Value::Object(data),
        )
    }
}

/// The events of one change: those computed from the documents, then the
/// member events the store makes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeEvents {
    pub events: Vec<NewEvent>,
    pub members: Option<MemberEvents>,
}

/// A member added to (`true`) or removed from a group by a change, with
/// the member's kind (`User` or `Group`).
pub type MemberDelta = Vec<(bool, String, String)>;

impl ChangeEvents {
    /// Every event of the change, given the members actually added and
    /// removed: the document's first, then one per User member.
    pub fn all(self, delta: &MemberDelta) -> Vec<NewEvent> {
        let mut out = self.events;
        if let Some(m) = &self.members {
            out.extend(
                delta
                    .iter()
                    .filter(|(_, _, kind)| kind == "User")
                    .map(|(added, id, _)| m.event(*added, id)),
            );
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.members.is_none()
    }
}

/// Computes the events of a delete from the record as stored, inside the
/// delete's transaction.
pub type DeleteEventsFn = Arc<dyn Fn(&Record) -> Vec<NewEvent> + Send + Sync>;

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: String,
    pub seq: i64,
    pub time: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: Value,
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
    /// Deletes events older than `before` in every tenant (retention runs
    /// across tenants by design); returns how many.
    async fn purge_events(&self, before: &str) -> StoreResult<u64>;
}
