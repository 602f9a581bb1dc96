//! "Validate this tenant": Entra's SCIM Validator (`scimitar validate`)
//! run against a tenant's own Tenant URL, for the console. The validator
//! lives in `scimitar-validate` over the engine, which this layer may not
//! depend on, so the binary registers it ([`App::set_validator`]), as it
//! does the job files.
//!
//! The run goes over HTTP to the Tenant URL, exactly as Entra's traffic
//! would, with a token minted for it alone: scope `scim`, labelled
//! `validator`, expiring in 10 minutes, and revoked as soon as the run
//! ends (both audited). What the run creates carries its random prefix and
//! is deleted by the validator at the end.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use scimitar_protocol::ScimError;
use scimitar_store::{Tenant, TenantId};

use crate::jobs::JobFuture;
use crate::{Actor, App};

/// How long the validator's token lives at most.
pub const TOKEN_SECONDS: i64 = 600;

/// What the console shows of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationReport {
    pub url: String,
    /// The endpoint could not be validated at all (the preflight's one
    /// message).
    pub error: Option<String>,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub rows: Vec<ValidationRow>,
    /// The load check's numbers, if it ran.
    pub load: Option<String>,
    pub seconds: String,
}

/// One test of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationRow {
    pub name: String,
    /// `pass`, `fail` or `skip`.
    pub status: String,
    /// The failure, the reason it was skipped, or a note.
    pub detail: String,
    /// A failure's request and answer, what Entra logs and what to change.
    pub request: String,
    pub response: String,
    pub entra: String,
    pub fix: String,
}

/// The validator, as this layer needs it.
pub trait TenantValidator: Send + Sync {
    /// Runs the suite (users and groups, Entra's compliant dialect) against
    /// `url` with `token`.
    fn validate<'a>(&'a self, url: &'a str, token: &'a str) -> JobFuture<'a, ValidationReport>;
}

/// Runs at once on a server (each creates some 70 users and groups and
/// sends 25 requests a second for its load check); one per tenant.
pub const MAX_RUNS: usize = 2;

/// The runs going on: the tenants being validated.
#[derive(Debug, Default)]
pub(crate) struct Runs(Mutex<HashSet<TenantId>>);

/// A run's place among [`Runs`], given back when dropped.
struct Slot {
    app: Arc<App>,
    tenant: TenantId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = self.app.validations.0.lock().unwrap_or_else(|p| p.into_inner());
        running.remove(&self.tenant);
    }
}

impl App {
    /// Registers the validator (once; later calls are ignored).
    pub fn set_validator(&self, v: Arc<dyn TenantValidator>) {
        let _ = self.validator.set(v);
    }

    fn take_slot(self: &Arc<Self>, tenant: TenantId) -> Result<Slot, ScimError> {
        let mut running = self.validations.0.lock().unwrap_or_else(|p| p.into_inner());
        if running.contains(&tenant) {
            return Err(ScimError::new(
                429,
                None,
                "this tenant is being validated already; wait for that run's report",
            ));
        }
        if running.len() >= MAX_RUNS {
            return Err(ScimError::new(
                429,
                None,
                format!("{MAX_RUNS} validations are running on this server; try again in a minute"),
            ));
        }
        running.insert(tenant);
        Ok(Slot {
            app: self.clone(),
            tenant,
        })
    }

    /// Runs the validator against the tenant's Tenant URL with a token made
    /// for the run and revoked after it. 501 without a registered validator;
    /// 429 when this tenant is being validated already or [`MAX_RUNS`] runs
    /// are going on. Audited: `token.generated`, `token.revoked`,
    /// `tenant.validated`.
    ///
    /// The run is a task of its own: when the caller goes away (the browser
    /// closed the page), it still ends, deletes what it created and revokes
    /// its token; when the validator panics, the token is revoked too.
    pub async fn validate_tenant(
        self: &Arc<Self>,
        actor: &Actor,
        tenant: &Tenant,
    ) -> Result<ValidationReport, ScimError> {
        let v = self.validator.get().cloned().ok_or_else(|| {
            ScimError::not_implemented("the validator is not available: this server was started without it")
        })?;
        let slot = self.take_slot(tenant.id)?;
        let app = self.clone();
        let actor = actor.clone();
        let tenant = tenant.clone();
        let run = tokio::spawn(async move {
            let _slot = slot;
            let token = app
                .store_new_token(
                    &actor,
                    &tenant,
                    "validator".into(),
                    "scim".into(),
                    Some(scimitar_store::utc_in(TOKEN_SECONDS)),
                )
                .await?;
            let url = app.tenant_url(&tenant.name);
            let secret = token.secret.clone();
            let run_url = url.clone();
            let report = match tokio::spawn(async move { v.validate(&run_url, &secret).await }).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(tenant = %tenant.name, error = %e, "the validator failed");
                    ValidationReport {
                        url,
                        error: Some("the validator failed unexpectedly; see the server's log".into()),
                        ..Default::default()
                    }
                }
            };
            // Revoked whatever happened; if revoking fails, the token still
            // expires within minutes.
            if let Err(e) = app.revoke_token(&actor, &tenant, &token.info.id).await {
                tracing::warn!(tenant = %tenant.name, token = %token.info.id, error = %e.detail, "could not revoke the validator's token");
            }
            let detail = match &report.error {
                Some(e) => format!("could not validate: {e}"),
                None => format!(
                    "{} passed, {} failed, {} skipped",
                    report.passed, report.failed, report.skipped
                ),
            };
            app.audit_detail(
                &actor,
                Some(tenant.id),
                "tenant.validated",
                Some(&tenant.name),
                Some(detail),
            )
            .await;
            Ok(report)
        });
        run.await
            .map_err(|e| ScimError::internal(format!("the validation failed: {e}")))?
    }
}
