//! The storage boundary of Scimitar.
//!
//! [`Store`] is everything the server needs from a database. Backends
//! (`scimitar-store-sqlite`, later PostgreSQL) implement it; the protocol
//! crate never sees them. Invariant: every method that touches tenant data
//! takes a [`TenantId`] and every query it runs is scoped by it.

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
    /// 1-based.
    pub start_index: usize,
    pub count: usize,
}

#[derive(Debug, Clone)]
pub struct Page {
    pub total: u64,
    pub records: Vec<Record>,
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
pub trait Store: Send + Sync + 'static {
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
        hash: &[u8; 32],
    ) -> StoreResult<TokenInfo>;
    async fn list_tokens(&self, tenant: TenantId) -> StoreResult<Vec<TokenInfo>>;
    async fn revoke_token(&self, id: &str) -> StoreResult<bool>;
    /// The live (not revoked) token with this hash.
    async fn token_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<TokenInfo>>;
    async fn touch_token(&self, id: &str, now: &str) -> StoreResult<()>;

    // Resources.
    async fn create(
        &self,
        tenant: TenantId,
        kind: Kind,
        id: &str,
        doc: Map<String, Value>,
        members: Vec<MemberRef>,
        now: &str,
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
}

/// The current time as RFC 3339 UTC with milliseconds: the format of
/// `meta.created`/`lastModified`, and sortable as text.
pub fn now_utc() -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    time::OffsetDateTime::now_utc().format(&fmt).unwrap_or_default()
}
