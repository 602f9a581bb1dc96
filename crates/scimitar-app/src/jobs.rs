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
    /// and, with `reset_anchors`, its links to target objects too; ends a
    /// quarantine or a disable (the job returns to the status it had before
    /// it), and makes the next cycle due at once.
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
        let job = self.job(tenant, name).await?;
        // A restart ends a quarantine, and revives a job disabled after
        // four weeks of one.
        if job.status == "quarantined" || job.status == "disabled" {
            let previous = status_before_quarantine(&job);
            self.store
                .set_job_status(tenant.id, name, &previous)
                .await
                .map_err(scim_error)?;
        }
        self.run_job_now(tenant, name).await?;
        let action = if reset_anchors {
            "job.restarted-reset-anchors"
        } else {
            "job.restarted"
        };
        self.audit(actor, Some(tenant.id), action, Some(name)).await;
        Ok(())
    }

    /// Provisioning Status On (`on = true`: a cycle starts at once, then one
    /// every interval) or Off (the cycle in progress finishes, no other
    /// starts). Audited as `job.started` / `job.stopped` when it changes.
    pub async fn set_job_on(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        name: &str,
        on: bool,
    ) -> Result<JobRecord, ScimError> {
        let before = self.job(tenant, name).await?;
        let status = if on { "on" } else { "off" };
        if before.status == status {
            return Ok(before);
        }
        self.store
            .set_job_status(tenant.id, name, status)
            .await
            .map_err(scim_error)?;
        if on {
            self.run_job_now(tenant, name).await?;
        }
        self.audit(
            actor,
            Some(tenant.id),
            if on { "job.started" } else { "job.stopped" },
            Some(name),
        )
        .await;
        self.job(tenant, name).await
    }

    /// Allow deletes: a job quarantined because a cycle exceeded its
    /// deletion threshold returns to the status it had, and its next cycle
    /// (at once, if that status is `on`) sends the disables and deletes.
    /// 409 if the job is not held by its deletion threshold. Audited as
    /// `job.deletes-allowed`.
    pub async fn allow_deletes(&self, actor: &Actor, tenant: &Tenant, name: &str) -> Result<JobRecord, ScimError> {
        let job = self.job(tenant, name).await?;
        let quarantine = job.last_cycle.as_ref().and_then(|l| l.get("quarantine"));
        let held = job.status == "quarantined"
            && quarantine.and_then(|q| q.get("reason")).and_then(Value::as_str) == Some("TooManyDeletes");
        if !held {
            return Err(ScimError::new(
                409,
                None,
                format!(
                    "job '{name}' is not held by its deletion threshold (status: {}); there is nothing to allow",
                    job.status
                ),
            ));
        }
        let previous = status_before_quarantine(&job);
        let mut last = match job.last_cycle {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        last.insert("allow_deletes".into(), Value::Bool(true));
        last.insert("run_now".into(), Value::Bool(true));
        self.store
            .set_last_cycle(tenant.id, name, &Value::Object(last))
            .await
            .map_err(scim_error)?;
        self.store
            .set_job_status(tenant.id, name, &previous)
            .await
            .map_err(scim_error)?;
        self.audit(actor, Some(tenant.id), "job.deletes-allowed", Some(name))
            .await;
        self.job(tenant, name).await
    }

    /// Marks the job's next cycle as due now (`run_now` in its last cycle,
    /// which the next cycle replaces).
    async fn run_job_now(&self, tenant: &Tenant, name: &str) -> Result<(), ScimError> {
        let job = self.job(tenant, name).await?;
        let mut last = match job.last_cycle {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        last.insert("run_now".into(), Value::Bool(true));
        self.store
            .set_last_cycle(tenant.id, name, &Value::Object(last))
            .await
            .map_err(scim_error)?;
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

/// The status a quarantined job had before (`on` if it is not recorded).
fn status_before_quarantine(job: &JobRecord) -> String {
    job.last_cycle
        .as_ref()
        .and_then(|l| l.pointer("/quarantine/previous_status"))
        .and_then(Value::as_str)
        .unwrap_or("on")
        .to_string()
}
