//! Scimitar's application layer.
//!
//! Every operation on a tenant lives here once, whoever asks for it: the
//! SCIM and admin APIs (`scimitar-server`), the console
//! (`scimitar-console`), the command line and `import` (`scimitar`), and the
//! provisioning engine when it writes into a local tenant. Each write is
//! validated by the protocol crate, stored through the store traits, and
//! recorded: resource changes in the provisioning activity log (in the
//! change's own transaction), administrative actions in the audit log.
//!
//! Nothing here knows HTTP. Errors are [`ScimError`]s (status, `scimType`,
//! detail); each front end turns them into its own responses.

pub mod accounts;
pub mod activity;
pub mod actor;
pub mod delivery;
pub mod events;
mod fair;
pub mod invites;
pub mod jobs;
mod passwords;
pub mod resources;
pub mod schemas;
pub mod tenants;
pub mod tokens;
pub mod validate;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

pub use actor::Actor;
pub use resources::{Ops, Via};
pub use schemas::ResourceTypes;
use scimitar_protocol::ScimError;
use scimitar_protocol::schema::builtin_resource_types;
use scimitar_store::{Store, StoreError, Tenant, TenantId};

/// What the application layer needs to know of the server's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The public base URL, e.g. `https://scim.example.com` (no trailing slash).
    pub public_url: String,
    pub max_patch_operations: usize,
    /// Provisioning activity older than this is deleted.
    pub activity_retention_days: u32,
    /// Change events older than this are deleted.
    pub event_retention_days: u32,
    /// Scanning list queries (not index lookups) one tenant may run at
    /// once; more are answered 429. 0: no cap.
    pub scans_per_tenant: usize,
    /// The most a filter may cost: the tenant's resources of the type times
    /// the cost of testing one (see `plan::Work`); more is answered 400
    /// `tooMany` without running. 0: no budget.
    pub filter_cost_budget: u64,
    /// Address ranges webhooks may be sent to besides public addresses.
    pub webhook_allow: Vec<webhooks::Cidr>,
    /// How this process's webhook workers run (lease, poll, retry schedule).
    pub webhook_delivery: delivery::DeliverySettings,
}

impl Config {
    pub fn new(public_url: &str) -> Self {
        Config {
            public_url: public_url.trim_end_matches('/').to_string(),
            max_patch_operations: 1000,
            activity_retention_days: 30,
            event_retention_days: 30,
            scans_per_tenant: DEFAULT_SCANS_PER_TENANT,
            filter_cost_budget: DEFAULT_FILTER_COST_BUDGET,
            webhook_allow: Vec::new(),
            webhook_delivery: delivery::DeliverySettings::default(),
        }
    }
}

/// A quarter of SQLite's 16 reader connections: four tenants searching at
/// full tilt still leave readers for everyone else.
pub const DEFAULT_SCANS_PER_TENANT: usize = 4;

/// About a second of SQLite's time (under half of it in a release build):
/// 31 `co` terms over 32,000 users, one over a million, or `emails.value co`
/// over 100,000.
pub const DEFAULT_FILTER_COST_BUDGET: u64 = 1_000_000;

/// A tenant's SCIM base URL (its Tenant URL): `{public_url}/scim/{tenant}/v2`.
pub fn tenant_url(public_url: &str, tenant: &str) -> String {
    format!("{}/scim/{tenant}/v2", public_url.trim_end_matches('/'))
}

/// The application: a store, settings and the caches that make repeated
/// work cheap. Shared (`Arc`) by every front end in a process.
pub struct App {
    pub store: Arc<dyn Store>,
    pub config: Config,
    /// The built-in resource types, shared by tenants without extensions.
    pub builtin: ResourceTypes,
    schemas: schemas::SchemaCache,
    reads: activity::ReadCounter,
    /// Bounds the password hashes running at once.
    hasher: passwords::Hasher,
    scans: fair::ScanSlots,
    /// How job files are compiled and stored jobs described: the engine's
    /// business, registered by the binary (`set_job_files`), since the
    /// application layer and the server may not depend on the engine.
    job_files: std::sync::OnceLock<Arc<dyn jobs::JobFiles>>,
    /// `scimitar validate` for the console's "Validate this tenant":
    /// registered by the binary, like `job_files`.
    validator: std::sync::OnceLock<Arc<dyn validate::TenantValidator>>,
    /// The validations going on (bounded, one per tenant).
    validations: validate::Runs,
    /// Wakes long polls of the events API when writes commit.
    events: events::Signal,
}

impl App {
    pub fn new(store: Arc<dyn Store>, config: Config) -> Arc<Self> {
        Arc::new(App {
            store,
            builtin: Arc::new(builtin_resource_types().into_iter().map(Arc::new).collect()),
            schemas: schemas::SchemaCache::default(),
            reads: activity::ReadCounter::default(),
            hasher: passwords::Hasher::default(),
            scans: fair::ScanSlots::new(config.scans_per_tenant),
            job_files: std::sync::OnceLock::new(),
            validator: std::sync::OnceLock::new(),
            validations: validate::Runs::default(),
            events: events::Signal::default(),
            config,
        })
    }

    /// The Tenant URL of `tenant` on this server.
    pub fn tenant_url(&self, tenant: &str) -> String {
        tenant_url(&self.config.public_url, tenant)
    }

    /// The tenant with this name, or a SCIM 404.
    pub async fn tenant(&self, name: &str) -> Result<Tenant, ScimError> {
        self.store
            .tenant(name)
            .await
            .map_err(scim_error)?
            .ok_or_else(|| ScimError::not_found(format!("no tenant named '{name}'")))
    }

    /// The operations of `actor` on `tenant`.
    pub async fn ops(self: &Arc<Self>, tenant: Tenant, actor: Actor) -> Result<Ops, ScimError> {
        let rts = self.resource_types(&tenant).await?;
        Ok(Ops {
            base: self.tenant_url(&tenant.name),
            app: self.clone(),
            tenant,
            actor,
            rts,
        })
    }

    /// Counts one read of a tenant (reads are counted per hour, not logged).
    pub fn count_read(&self, tenant: TenantId) {
        self.reads.add(tenant);
    }

    /// Writes pending read counts to the store.
    pub async fn flush_reads(&self) {
        self.reads.flush(&*self.store).await;
    }

    /// Writes pending read counts and applies the activity and event retention, once
    /// per cluster: only the holder of the retention lease purges. Nodes
    /// try hourly and a lease lasts 90 minutes, so the holder renews it
    /// while it lives and another node takes over within 90 minutes of its
    /// last run when it is gone.
    pub async fn housekeeping(&self) {
        self.flush_reads().await;
        let (now, expires) = scimitar_store::lease::window(Duration::from_secs(90 * 60));
        let holder = scimitar_store::lease::process_holder();
        match self
            .store
            .try_lease(scimitar_store::lease::ACTIVITY_RETENTION, holder, &now, &expires)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!("activity retention is another node's job");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not take the activity retention lease");
                return;
            }
        }
        let cutoff = scimitar_store::utc_in(-i64::from(self.config.activity_retention_days) * 86_400);
        match self.store.purge_activity(&cutoff).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "applied activity retention"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not apply activity retention"),
        }
        self.purge_events().await;
    }

    /// The data migrations that need the application layer (its hashing
    /// and its schemas), after the store's own migrations: SCIM passwords
    /// stored in clear are hashed, unique-value indexes are built. Each is
    /// idempotent and safe on several nodes at once, and a no-op once done.
    pub async fn upgrade_data(&self, actor: &Actor) -> Result<DataUpgrade, ScimError> {
        Ok(DataUpgrade {
            passwords_hashed: self.hash_stored_passwords(actor).await?,
            unique_duplicates: self.build_unique_indexes().await?,
        })
    }

    /// Appends to the audit log. The action has happened by now, so a
    /// failure to record it is reported (logged), not returned as the
    /// action's failure.
    pub async fn audit(&self, actor: &Actor, tenant: Option<TenantId>, action: &str, target: Option<&str>) {
        self.audit_detail(actor, tenant, action, target, None).await;
    }

    /// [`App::audit`] with a detail (what changed).
    pub async fn audit_detail(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        action: &str,
        target: Option<&str>,
        detail: Option<String>,
    ) {
        let event = scimitar_store::AuditEvent {
            id: 0,
            time: scimitar_store::now_utc(),
            tenant_id: tenant,
            actor: actor.audit_actor(),
            action: action.to_string(),
            target: target.map(str::to_string),
            detail,
            source: Some(actor.audit_source()),
        };
        if let Err(e) = self.store.record_audit(event).await {
            tracing::error!(error = %e, action, "could not write the audit log");
        }
    }
}

/// What [`App::upgrade_data`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataUpgrade {
    /// SCIM passwords that were stored in clear and are now hashed.
    pub passwords_hashed: u64,
    /// Values that must be unique but were another resource's already
    /// (left as they are; see the log).
    pub unique_duplicates: u64,
}

/// The one mapping of storage errors to SCIM errors. A storage failure's
/// detail is logged here and never shown to a client.
pub fn scim_error(e: StoreError) -> ScimError {
    match e {
        StoreError::NotFound => ScimError::not_found("resource not found"),
        StoreError::Conflict(attr) => ScimError::uniqueness(format!("{attr} is already in use in this tenant")),
        StoreError::PreconditionFailed => {
            ScimError::precondition_failed("the resource has changed: If-Match does not match its current version")
        }
        StoreError::Invalid(e) => e,
        StoreError::Timeout => ScimError {
            retry_after: Some(5),
            ..ScimError::new(
                503,
                None,
                "the query took longer than the server allows and was stopped; narrow the filter or retry later",
            )
        },
        StoreError::Internal(detail) => {
            tracing::error!(%detail, "storage failure");
            ScimError::internal("internal server error")
        }
    }
}

/// Runs a store call and records its latency (`scimitar_store_duration_seconds`).
pub async fn timed<T>(op: &'static str, f: impl std::future::Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let out = f.await;
    metrics::histogram!("scimitar_store_duration_seconds", "op" => op).record(started.elapsed().as_secs_f64());
    out
}
