//! The storage boundary of Scimitar.
//!
//! [`Store`] is everything the server needs from a database. Backends
//! (`scimitar-store-sqlite`, later PostgreSQL) implement it; the protocol
//! crate never sees them. Invariant: every method that touches tenant data
//! takes a [`TenantId`] and every query it runs is scoped by it.

pub mod console;
pub mod lease;
pub use console::*;

use std::sync::Arc;

use async_trait::async_trait;
use scimitar_protocol::ScimError;
use scimitar_protocol::filter::Filter;
use scimitar_protocol::list::SortOrder;
use scimitar_protocol::output::Reference;
use scimitar_protocol::patch::{MemberAccess, MemberOp};
use scimitar_protocol::resource::MemberRef;
use scimitar_protocol::schema::ResourceType;
use serde::Serialize;
use serde_json::{Map, Value};

pub type TenantId = i64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: String,
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub tenant: String,
    pub label: String,
    /// The first characters of the token, safe to show (`scim_AbCd…`).
    pub hint: String,
    /// `scim` (provisioning) or `admin` (tenant administration API).
    pub scope: String,
    /// The tenant's schema-extension version (changes with every extension
    /// change), so servers can cache resource types safely.
    #[serde(skip)]
    pub schema_version: i64,
    /// When the token stops working (RFC 3339), if it expires.
    pub expires: Option<String>,
    pub created: String,
    pub last_used: Option<String>,
    pub revoked: Option<String>,
}

/// The resource types a store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    User,
    Group,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }
    pub fn of(rt: &ResourceType) -> Option<Kind> {
        match rt.name.as_str() {
            "User" => Some(Kind::User),
            "Group" => Some(Kind::Group),
            _ => None,
        }
    }
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

/// A tenant's custom schema extension, as registered.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionRecord {
    /// `User` or `Group`.
    pub resource_type: String,
    pub urn: String,
    /// The schema definition in its `/Schemas` form.
    pub schema: Value,
    pub required: bool,
}

/// One entry of the provisioning activity log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivityEvent {
    /// Assigned by the store.
    pub id: i64,
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub time: String,
    pub token_id: Option<String>,
    pub token_label: Option<String>,
    /// create, update, disable, enable, delete, add-member, remove-member, …
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// userName or displayName.
    pub name: Option<String>,
    /// `[{"attribute", "old", "new"}]`, secrets and large values redacted.
    pub changes: Value,
    /// `success` or `failure`.
    pub outcome: String,
    pub status: u16,
    pub error: Option<String>,
    pub method: String,
    pub path: String,
}

#[derive(Debug, Clone, Default)]
pub struct ActivityQuery {
    pub since: Option<String>,
    pub until: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    /// Case-insensitive text to find in name, id, error or changes.
    pub text: Option<String>,
    /// Entries with `id` below this (newest first paging).
    pub before_id: Option<i64>,
    pub limit: usize,
}

/// One administrative action (token generated or revoked, tenant created or
/// deleted, schema changed, console account created, sign-in and failure).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub time: String,
    /// `None` for actions across tenants (an operator's).
    #[serde(skip)]
    pub tenant_id: Option<TenantId>,
    /// Who: a console account's email, `cli`, or `token:<id>`.
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    /// Where from: `cli`, `console`, `admin-api`, and the client address.
    pub source: Option<String>,
}

/// Reads counted per hour instead of logged one by one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadCount {
    pub hour: String,
    pub count: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness constraint on the named attribute.
    #[error("{0} is already taken")]
    Conflict(String),
    /// `If-Match` named a version that is not the current one.
    #[error("version mismatch")]
    PreconditionFailed,
    /// The request is invalid given the stored data (e.g. an unknown member).
    #[error(transparent)]
    Invalid(#[from] ScimError),
    #[error("storage failure: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: ConsoleStore + lease::Leases + Send + Sync + 'static {
    // Tenants.
    async fn create_tenant(&self, name: &str) -> StoreResult<Tenant>;
    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>>;
    async fn tenant(&self, name: &str) -> StoreResult<Option<Tenant>>;
    /// Deletes a tenant with all its data and tokens.
    async fn delete_tenant(&self, name: &str) -> StoreResult<bool>;

    // Secret tokens: only hashes are stored.
    async fn create_token(
        &self,
        tenant: TenantId,
        id: &str,
        label: &str,
        hint: &str,
        scope: &str,
        hash: &[u8; 32],
    ) -> StoreResult<TokenInfo>;
    async fn list_tokens(&self, tenant: TenantId) -> StoreResult<Vec<TokenInfo>>;
    async fn revoke_token(&self, id: &str) -> StoreResult<bool>;
    /// Sets (or clears) when a token expires.
    async fn set_token_expiry(&self, id: &str, expires: Option<&str>) -> StoreResult<bool>;
    /// The live (not revoked, not expired) token with this hash.
    async fn token_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<TokenInfo>>;
    async fn touch_token(&self, id: &str, now: &str) -> StoreResult<()>;

    // Resources.
    /// Creates a resource; `activity`, if given, is recorded in the same
    /// transaction (so not at all if the create fails).
    #[allow(clippy::too_many_arguments)] // a resource's parts and its log entry
    async fn create(
        &self,
        tenant: TenantId,
        kind: Kind,
        id: &str,
        doc: Map<String, Value>,
        members: Vec<MemberRef>,
        now: &str,
        activity: Option<ActivityEvent>,
    ) -> StoreResult<Record>;
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
    async fn delete(&self, tenant: TenantId, kind: Kind, id: &str, if_match: Option<u64>) -> StoreResult<()>;
    async fn list(&self, tenant: TenantId, query: ListQuery) -> StoreResult<Page>;

    // Derived values for output.
    async fn members(&self, tenant: TenantId, group: &str) -> StoreResult<Vec<Reference>>;
    async fn groups_of(&self, tenant: TenantId, user: &str) -> StoreResult<Vec<Reference>>;
    async fn display_name(&self, tenant: TenantId, id: &str) -> StoreResult<Option<String>>;

    /// Whether the database answers and its migrations are all applied.
    async fn ready(&self) -> StoreResult<()>;

    /// A named server-wide secret (e.g. the cursor signing key): the stored
    /// one, or `candidate` if none was stored yet. Every node gets the same.
    async fn secret(&self, name: &str, candidate: &[u8; 32]) -> StoreResult<[u8; 32]>;

    // Custom schema extensions per tenant.
    async fn put_extension(&self, tenant: TenantId, ext: ExtensionRecord) -> StoreResult<()>;
    async fn list_extensions(&self, tenant: TenantId) -> StoreResult<Vec<ExtensionRecord>>;
    async fn delete_extension(&self, tenant: TenantId, urn: &str) -> StoreResult<bool>;

    // Provisioning activity log.
    async fn record_activity(&self, event: ActivityEvent) -> StoreResult<()>;
    async fn list_activity(&self, tenant: TenantId, query: ActivityQuery) -> StoreResult<Vec<ActivityEvent>>;
    /// Adds `n` reads to the hour bucket `hour` (`YYYY-MM-DDTHH`).
    async fn count_reads(&self, tenant: TenantId, hour: &str, n: u64) -> StoreResult<()>;
    async fn read_counts(&self, tenant: TenantId, since_hour: &str) -> StoreResult<Vec<ReadCount>>;
    /// Deletes activity older than `before` in every tenant; returns how many.
    async fn purge_activity(&self, before: &str) -> StoreResult<u64>;

    // Audit log of administrative actions: append and read, never edit.
    async fn record_audit(&self, event: AuditEvent) -> StoreResult<()>;
    /// Newest first; `tenant: None` lists every tenant's and cross-tenant events.
    async fn list_audit(&self, tenant: Option<TenantId>, limit: usize) -> StoreResult<Vec<AuditEvent>>;
}

/// The time `secs` seconds from now, in the format of [`now_utc`].
pub fn utc_in(secs: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
        .format(&fmt)
        .unwrap_or_default()
}

/// The current time as RFC 3339 UTC with milliseconds: the format of
/// `meta.created`/`lastModified`, and sortable as text.
pub fn now_utc() -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::now_utc().format(&fmt).unwrap_or_default()
}

/// Appends to the audit log; an audit failure is returned for the caller to
/// report, never silently dropped.
pub async fn audit(
    store: &dyn Store,
    tenant: Option<TenantId>,
    actor: &str,
    action: &str,
    target: Option<&str>,
    source: &str,
) -> StoreResult<()> {
    store
        .record_audit(AuditEvent {
            id: 0,
            time: now_utc(),
            tenant_id: tenant,
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.map(str::to_string),
            detail: None,
            source: Some(source.to_string()),
        })
        .await
}
