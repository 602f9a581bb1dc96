//! Provisioning jobs as administrative objects: storing a job's
//! configuration (its secrets already sealed by the caller), restarting and
//! deleting it, each audited. Running jobs is the engine's business
//! (`scimitar-engine`); this layer does not depend on it.

use scimitar_protocol::ScimError;
use scimitar_store::{JobRecord, Tenant};
use serde_json::Value;

use crate::{Actor, App, scim_error};

impl App {
    /// Creates a job or replaces its configuration (its state is kept);
    /// audits `job.created` or `job.changed` (only when it changed).
    pub async fn save_job(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        name: &str,
        config: &Value,
    ) -> Result<JobRecord, ScimError> {
        let before = self.store.job(tenant.id, name).await.map_err(scim_error)?;
        let record = self.store.put_job(tenant.id, name, config).await.map_err(scim_error)?;
        match before {
            None => self.audit(actor, Some(tenant.id), "job.created", Some(name)).await,
            Some(b) if b.config != *config => self.audit(actor, Some(tenant.id), "job.changed", Some(name)).await,
            Some(_) => {}
        }
        Ok(record)
    }

    /// A stored job, or 404.
    pub async fn job(&self, tenant: &Tenant, name: &str) -> Result<JobRecord, ScimError> {
        self.store
            .job(tenant.id, name)
            .await
            .map_err(scim_error)?
            .ok_or_else(|| ScimError::not_found(format!("no job named '{name}' in tenant '{}'", tenant.name)))
    }

    /// Forgets the job's watermark (its next cycle evaluates everything)
    /// and, with `reset_anchors`, its links to target objects too.
    pub async fn restart_job(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        name: &str,
        reset_anchors: bool,
    ) -> Result<(), ScimError> {
        if !self
            .store
            .restart_job(tenant.id, name, reset_anchors)
            .await
            .map_err(scim_error)?
        {
            return Err(ScimError::not_found(format!(
                "no job named '{name}' in tenant '{}'",
                tenant.name
            )));
        }
        let action = if reset_anchors {
            "job.restarted-reset-anchors"
        } else {
            "job.restarted"
        };
        self.audit(actor, Some(tenant.id), action, Some(name)).await;
        Ok(())
    }

    /// Deletes a job with its state and provisioning log.
    pub async fn delete_job(&self, actor: &Actor, tenant: &Tenant, name: &str) -> Result<(), ScimError> {
        if !self.store.delete_job(tenant.id, name).await.map_err(scim_error)? {
            return Err(ScimError::not_found(format!(
                "no job named '{name}' in tenant '{}'",
                tenant.name
            )));
        }
        self.audit(actor, Some(tenant.id), "job.deleted", Some(name)).await;
        Ok(())
    }
}
