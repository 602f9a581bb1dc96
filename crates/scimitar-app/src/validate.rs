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

use std::sync::Arc;

use scimitar_protocol::ScimError;
use scimitar_store::Tenant;

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

impl App {
    /// Registers the validator (once; later calls are ignored).
    pub fn set_validator(&self, v: Arc<dyn TenantValidator>) {
        let _ = self.validator.set(v);
    }

    /// Runs the validator against the tenant's Tenant URL with a token made
    /// for the run and revoked after it. 501 without a registered validator.
    /// Audited: `token.generated`, `token.revoked`, `tenant.validated`.
    pub async fn validate_tenant(&self, actor: &Actor, tenant: &Tenant) -> Result<ValidationReport, ScimError> {
        let v = self.validator.get().cloned().ok_or_else(|| {
            ScimError::not_implemented("the validator is not available: this server was started without it")
        })?;
        let token = self
            .store_new_token(
                actor,
                tenant,
                "validator".into(),
                "scim".into(),
                Some(scimitar_store::utc_in(TOKEN_SECONDS)),
            )
            .await?;
        let url = self.tenant_url(&tenant.name);
        let report = v.validate(&url, &token.secret).await;
        // Revoked even when the run failed; if revoking fails, the token
        // still expires within minutes.
        if let Err(e) = self.revoke_token(actor, tenant, &token.info.id).await {
            tracing::warn!(tenant = %tenant.name, token = %token.info.id, error = %e.detail, "could not revoke the validator's token");
        }
        let detail = match &report.error {
            Some(e) => format!("could not validate: {e}"),
            None => format!(
                "{} passed, {} failed, {} skipped",
                report.passed, report.failed, report.skipped
            ),
        };
        self.audit_detail(
            actor,
            Some(tenant.id),
            "tenant.validated",
            Some(&tenant.name),
            Some(detail),
        )
        .await;
        Ok(report)
    }
}
