//! Users and Groups: the documents, their memberships, and list queries.

use std::sync::Arc;

use async_trait::async_trait;
use scimitar_protocol::ScimError;
use scimitar_protocol::filter::Filter;
use scimitar_protocol::list::SortOrder;
use scimitar_protocol::output::Reference;
use scimitar_protocol::patch::{MemberAccess, MemberOp};
use scimitar_protocol::resource::MemberRef;
use scimitar_protocol::schema::ResourceType;
use serde_json::{Map, Value};

use crate::{ActivityEvent, ChangeEvents, DeleteEventsFn, StoreResult, TenantId};

pub use scimitar_protocol::schema::Kind;
pub use scimitar_protocol::unique::{UniqueChange, UniqueValue};

/// The indexed columns of a document, as both backends store them:
/// `userName` of a User and `displayName` of a Group lower-cased (for
/// case-insensitive uniqueness and lookups), and `externalId`.
pub type IndexedColumns = (Option<String>, Option<String>, Option<String>);

/// The indexed columns of a document of `kind`.
pub fn indexed_columns(kind: Kind, doc: &Map<String, Value>) -> IndexedColumns {
    let s = |k: &str| doc.get(k).and_then(Value::as_str);
    let lowered = |k: &str, of: Kind| (kind == of).then(|| s(k).map(str::to_lowercase)).flatten();
    (
        lowered("userName", Kind::User),
        lowered("displayName", Kind::Group),
        s("externalId").map(str::to_string),
    )
}

/// A stored resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Insertion order within the store; the key of cursor paging.
    pub seq: i64,
    pub id: String,
    pub kind: Kind,
    pub doc: Map<String, Value>,
    pub created: String,
    pub last_modified: String,
    pub version: u64,
    /// A User's groups when the store read them with the record (on
    /// PostgreSQL, in the same statement: one round trip fewer for a lookup
    /// or a PATCH); `None` means ask `groups_of`.
    pub groups: Option<Vec<Reference>>,
}

/// A resource to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewResource {
    pub kind: Kind,
    pub id: String,
    pub doc: Map<String, Value>,
    pub members: Vec<MemberRef>,
    /// `meta.created` (and `lastModified`).
    pub created: String,
    /// The activity log entry of the create, recorded in the same
    /// transaction (so not at all if the create fails).
    pub activity: Option<ActivityEvent>,
    /// The values no other resource of the tenant and kind may have
    /// (`scimitar_protocol::unique`), taken in the same transaction: if
    /// another resource has one, the create fails with `Conflict`.
    pub unique: Vec<UniqueValue>,
    /// The change events of the create, stored in the same transaction.
    pub events: ChangeEvents,
}

/// The outcome of a modification computed from the current record.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    pub doc: Map<String, Value>,
    pub member_ops: Vec<MemberOp>,
    /// The activity log entry of this change. The store records it in the
    /// same transaction as the change, and only if something changed, so the
    /// log neither misses a committed change nor shows one that was not.
    pub activity: Option<ActivityEvent>,
    /// The unique values the change takes and gives up, in the same
    /// transaction: if another resource has one it takes, `Conflict`.
    pub unique: UniqueChange,
    /// The change events, stored in the same transaction (and only if
    /// something changed); member events for the members actually added or
    /// removed.
    pub events: ChangeEvents,
}

/// Computes a [`Mutation`] from the current record, inside the store's
/// write transaction. Pure protocol code; may run more than once when a
/// backend retries a serialisation failure.
pub type ModifyFn = Arc<dyn Fn(&Record, &mut dyn MemberAccess) -> Result<Mutation, ScimError> + Send + Sync>;

#[derive(Debug, Clone)]
pub struct Sort {
    pub by: String,
    pub order: SortOrder,
}

/// A list query. `rt` is the tenant's resource type, used to resolve
/// attribute names in the filter and sort key.
#[derive(Clone)]
pub struct ListQuery {
    pub kind: Kind,
    pub rt: Arc<ResourceType>,
    pub filter: Option<Filter>,
    pub sort: Option<Sort>,
    /// 1-based; ignored when `cursor` is set.
    pub start_index: usize,
    pub count: usize,
    /// Keyset paging in insertion order (RFC 9865 cursors). Only without `sort`.
    pub cursor: Option<CursorPos>,
}

/// A position in insertion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorPos {
    /// Records after this `seq` (ascending); `After(0)` is the first page.
    After(i64),
    /// Records before this `seq` (the page before, still returned ascending).
    Before(i64),
}

#[derive(Debug, Clone)]
pub struct Page {
    pub total: u64,
    pub records: Vec<Record>,
    /// With a cursor: whether more records follow in the direction of travel.
    pub has_more: bool,
}

#[async_trait]
pub trait ResourceStore: Send + Sync {
    /// Creates a resource (and its activity entry, in one transaction).
    async fn create(&self, tenant: TenantId, new: NewResource) -> StoreResult<Record>;
    async fn get(&self, tenant: TenantId, kind: Kind, id: &str) -> StoreResult<Option<Record>>;
    /// Reads the record, computes the change with `f` and writes it, in one
    /// transaction. `if_match` is the version the client expects.
    async fn modify(
        &self,
        tenant: TenantId,
        kind: Kind,
        id: &str,
        if_match: Option<u64>,
        now: &str,
        f: ModifyFn,
    ) -> StoreResult<Record>;
    async fn delete(&self, tenant: TenantId, kind: Kind, id: &str, if_match: Option<u64>) -> StoreResult<()> {
        self.delete_with_events(tenant, kind, id, if_match, None).await
    }
    /// Deletes a resource and stores the events `events` computes from it
    /// as stored, in one transaction.
    async fn delete_with_events(
        &self,
        tenant: TenantId,
        kind: Kind,
        id: &str,
        if_match: Option<u64>,
        events: Option<DeleteEventsFn>,
    ) -> StoreResult<()>;
    async fn list(&self, tenant: TenantId, query: ListQuery) -> StoreResult<Page>;
    /// How many resources of `kind` the tenant has, counted no further than
    /// `at_most` (the filter cost budget needs no more).
    async fn resource_count(&self, tenant: TenantId, kind: Kind, at_most: u64) -> StoreResult<u64>;
    /// Brings the query planner's statistics up to date after a bulk load
    /// (`scimitar import`): PostgreSQL `ANALYZE`, SQLite `PRAGMA optimize`.
    /// Plans chosen from the statistics of an empty table scan a tenant
    /// where an index would do.
    async fn refresh_statistics(&self) -> StoreResult<()>;
    /// The same for tables changed much since their statistics were taken
    /// (bulk loads through SCIM, an initial Entra cycle), cheap when none
    /// are: the server calls it every 10 seconds, so that plans stay right where
    /// autovacuum is off or slow to notice. Returns the tables analysed.
    /// SQLite needs none.
    async fn refresh_stale_statistics(&self) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }

    // Derived values for output.
    async fn members(&self, tenant: TenantId, group: &str) -> StoreResult<Vec<Reference>>;
    async fn groups_of(&self, tenant: TenantId, user: &str) -> StoreResult<Vec<Reference>>;
    async fn display_name(&self, tenant: TenantId, id: &str) -> StoreResult<Option<String>>;
    /// The number of members of each of `groups` (absent when zero).
    async fn member_counts(&self, tenant: TenantId, groups: &[String]) -> StoreResult<Vec<(String, u64)>>;
    /// Users of the tenant whose stored `password` is not an argon2 PHC
    /// string (values stored in clear before passwords were hashed on
    /// arrival), with `seq` above `after`, in insertion order, at most
    /// `limit`: the one-time hashing of such values pages through them.
    async fn cleartext_passwords(&self, tenant: TenantId, after: i64, limit: usize) -> StoreResult<Vec<Record>>;
    /// Enters values of a stored resource in the unique index (for
    /// resources written before their attribute was unique); returns those
    /// another resource has already, which stay that resource's.
    async fn claim_unique(
        &self,
        tenant: TenantId,
        kind: Kind,
        id: &str,
        values: Vec<UniqueValue>,
    ) -> StoreResult<Vec<UniqueValue>>;
    /// Forgets the unique values of an extension's attributes (those of
    /// `urn`), when it is removed or registered again.
    async fn drop_unique_values(&self, tenant: TenantId, urn: &str) -> StoreResult<()>;
    /// Marks (`pending`) or clears that the unique values of the tenant's
    /// resources of `kind` are to be entered.
    async fn set_unique_backfill(&self, tenant: TenantId, kind: Kind, pending: bool) -> StoreResult<()>;
    /// Every tenant and kind whose unique values are to be entered, across
    /// tenants (a job of the server, not of one tenant).
    async fn unique_backfills(&self) -> StoreResult<Vec<(TenantId, Kind)>>;
    /// A page of a group's members in id order, after the member id `after`.
    async fn members_page(
        &self,
        tenant: TenantId,
        group: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Reference>>;
}
