//! The provisioning engine's state: jobs, what each job knows of every
//! source object (its last imported image, whether it is in scope, the
//! target id it is linked to — the anchor — and what was last exported to
//! it), and the provisioning log. Kept per tenant (a job belongs to the
//! tenant whose administrators run it) in tables of its own, created by the
//! `engine` migration set.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{StoreResult, TenantId};

/// A stored job: its configuration (secrets sealed) and its run state.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub name: String,
    /// The job's configuration as JSON (the job file, parsed; secrets
    /// sealed, never in clear).
    pub config: Value,
    /// `on`, `off`, … (the engine's business).
    pub status: String,
    /// Where the next incremental cycle starts (a source's delta token,
    /// cookie or content hashes); `None` means the next cycle is initial.
    pub watermark: Option<Value>,
    /// The last cycle's summary (counts, times), if any.
    pub last_cycle: Option<Value>,
    pub created: String,
    pub updated: String,
}

/// Users or groups: the two object types a job provisions.
pub use scimitar_protocol::schema::Kind as ObjectKind;

/// What a job knows of one source object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectState {
    pub kind: ObjectKind,
    /// The source's stable id (LDAP `entryUUID`, a file's key column, a
    /// SCIM source's `id`).
    pub anchor: String,
    /// The source's name for the object, when it has one (an LDAP DN): how
    /// references (`manager`, `member`) name it.
    pub source_ref: Option<String>,
    /// A hash of the last imported source image (change detection).
    pub source_hash: String,
    /// The last imported source image: attribute name → value.
    pub source: Value,
    /// Whether it was in scope after the last evaluation.
    pub in_scope: bool,
    /// The target resource it is linked to (the anchor of the link).
    pub target_id: Option<String>,
    /// What was last exported: the target image, and for groups the member
    /// anchors, for users the manager anchor.
    pub exported: Value,
    /// Needs processing in the next cycle even without a source change (a
    /// failed export, a reference that could not be resolved yet).
    pub pending: bool,
    pub updated: String,
    /// Why and since when it is pending, and when it is tried next.
    #[serde(default)]
    pub escrow: Option<Escrow>,
}

/// An object kept after a failure (Entra's escrow): retried on later cycles
/// with growing back-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escrow {
    /// Failed attempts so far.
    pub attempts: u32,
    /// When it first failed (format of `now_utc`).
    pub first_failed: String,
    /// Not tried again before this time, unless the source changes it.
    pub next_attempt: String,
    /// The last error's code (Entra's, e.g. `SystemForCrossDomainIdentityManagementServiceIncompatible`).
    pub error: String,
    /// A reference (manager, member) that could not be resolved yet, rather
    /// than a failed export: kept apart in the escrow thresholds.
    pub reference: bool,
}

/// One record of the provisioning log (the shape of Entra's
/// `provisioningObjectSummary`); the engine fills `record`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineLogRecord {
    /// Assigned by the store.
    pub id: i64,
    pub job: String,
    pub cycle_id: String,
    pub change_id: String,
    pub time: String,
    /// `create`, `update`, `disable`, `delete`, `stagedDelete`, `other`.
    pub action: String,
    /// `success`, `failure`, `skipped`, `warning`.
    pub status: String,
    /// The source anchor of the object (for filtering by identity).
    pub source_id: Option<String>,
    pub target_id: Option<String>,
    /// The full record: steps, modified properties, error, identities,
    /// duration.
    pub record: Value,
}

/// Which log records to list.
#[derive(Debug, Clone, Default)]
pub struct EngineLogQuery {
    pub cycle_id: Option<String>,
    pub status: Option<String>,
    pub action: Option<String>,
    /// Records with `id` below this (newest first paging).
    pub before_id: Option<i64>,
    pub limit: usize,
}

#[async_trait]
pub trait EngineStore: Send + Sync {
    /// Creates the job or replaces its configuration (state kept). A new
    /// job is `off`, without watermark or last cycle.
    async fn put_job(&self, tenant: TenantId, name: &str, config: &Value) -> StoreResult<JobRecord>;
    /// Creates the job (`off`) if the tenant has none of that name; false,
    /// and nothing written, if it has: one statement, so that two creators
    /// racing for a name cannot both succeed.
    async fn insert_job(&self, tenant: TenantId, name: &str, config: &Value) -> StoreResult<bool>;
    async fn job(&self, tenant: TenantId, name: &str) -> StoreResult<Option<JobRecord>>;
    async fn list_jobs(&self, tenant: TenantId) -> StoreResult<Vec<JobRecord>>;
    /// The jobs of every tenant whose status is `on` or `quarantined`,
    /// with their tenant's id and name: what the scheduler looks at on each
    /// poll, in one query whatever the number of tenants.
    async fn active_jobs(&self) -> StoreResult<Vec<(TenantId, String, JobRecord)>>;
    /// Deletes a job with its objects and log.
    async fn delete_job(&self, tenant: TenantId, name: &str) -> StoreResult<bool>;
    async fn set_job_status(&self, tenant: TenantId, name: &str, status: &str) -> StoreResult<bool>;
    /// Ends a cycle: its summary, and the watermark the next one starts
    /// from (written last, so that a cycle that did not finish is replayed).
    /// `NotFound` if there is no such job.
    async fn finish_cycle(
        &self,
        tenant: TenantId,
        name: &str,
        watermark: Option<&Value>,
        summary: &Value,
    ) -> StoreResult<()>;
    /// Records the last cycle's summary (or a failed attempt: its error
    /// and time) without touching the watermark. False if there is no such
    /// job.
    async fn set_last_cycle(&self, tenant: TenantId, name: &str, summary: &Value) -> StoreResult<bool>;
    /// Records how far the cycle running now has got (`None` when it ends),
    /// for the console's progress bar on any node. Kept apart from the last
    /// cycle, which administrators' actions also write. False if there is
    /// no such job.
    async fn set_job_progress(&self, tenant: TenantId, name: &str, progress: Option<&Value>) -> StoreResult<bool>;
    /// What [`EngineStore::set_job_progress`] recorded last.
    async fn job_progress(&self, tenant: TenantId, name: &str) -> StoreResult<Option<Value>>;
    /// Drops the job's escrow (a job disabled after 28 days in quarantine,
    /// as Entra does): escrowed objects are no longer pending nor retried;
    /// a restart evaluates them again. Returns how many were dropped.
    async fn drop_escrow(&self, tenant: TenantId, job: &str) -> StoreResult<u64>;
    /// Counts the job's escrowed objects: `(failures, references)`.
    async fn escrow_counts(&self, tenant: TenantId, job: &str) -> StoreResult<(u64, u64)>;
    /// Forgets the watermark (the next cycle is a full one) and, with
    /// `reset_anchors`, the links to target objects too (every object's
    /// `target_id` and `exported` become null). Escrowed objects are tried
    /// again at once (their escrow is cleared; they stay pending). False if
    /// there is no such job.
    async fn restart_job(&self, tenant: TenantId, name: &str, reset_anchors: bool) -> StoreResult<bool>;

    /// Every object of a kind the job knows. This and the other lookups
    /// return objects sorted by kind (users first), then anchor (bytewise).
    async fn objects(&self, tenant: TenantId, job: &str, kind: ObjectKind) -> StoreResult<Vec<ObjectState>>;
    /// The objects with these anchors (those the job knows).
    async fn objects_by_anchor(
        &self,
        tenant: TenantId,
        job: &str,
        kind: ObjectKind,
        anchors: &[String],
    ) -> StoreResult<Vec<ObjectState>>;
    /// The objects named by these source references (e.g. LDAP DNs), of any kind.
    async fn objects_by_source_ref(
        &self,
        tenant: TenantId,
        job: &str,
        refs: &[String],
    ) -> StoreResult<Vec<ObjectState>>;
    /// The objects marked `pending`.
    async fn pending_objects(&self, tenant: TenantId, job: &str) -> StoreResult<Vec<ObjectState>>;
    /// Writes objects (insert or replace by kind and anchor), removes the
    /// listed ones, and appends log records, in one transaction: what a
    /// cycle learnt about a batch of objects is durable together. Of a kind
    /// and anchor given twice the last state wins; one both written and
    /// removed is removed. The log records are the job's, whatever their
    /// `job` says. `NotFound`, and nothing written, if there is no such job.
    async fn save_objects(
        &self,
        tenant: TenantId,
        job: &str,
        objects: Vec<ObjectState>,
        removed: Vec<(ObjectKind, String)>,
        log: Vec<EngineLogRecord>,
    ) -> StoreResult<()>;

    /// Log records of a job, newest first.
    async fn engine_log(&self, tenant: TenantId, job: &str, query: EngineLogQuery)
    -> StoreResult<Vec<EngineLogRecord>>;
    /// Deletes log records older than `before` in every tenant (retention);
    /// returns how many.
    async fn purge_engine_log(&self, before: &str) -> StoreResult<u64>;
}
