//! Tenants: names, creation and deletion.

use scimitar_protocol::ScimError;
use scimitar_store::{StoreError, Tenant};

use crate::{Actor, App, scim_error};

/// Why a name is refused, for every front end to show.
pub const TENANT_NAME_RULE: &str =
    "tenant names are 1–63 characters of a-z, 0-9 and '-', starting with a letter or digit";

/// Whether `name` can name a tenant: it is a path segment of the Tenant URL.
pub fn valid_tenant_name(name: &str) -> bool {
    let b = name.as_bytes();
    let first_ok = b.first().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    first_ok
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

impl App {
    /// Creates a tenant (400 for a bad name, 409 if it exists) and audits it.
    pub async fn create_tenant(&self, actor: &Actor, name: &str) -> Result<Tenant, ScimError> {
        if !valid_tenant_name(name) {
            return Err(ScimError::invalid_value(TENANT_NAME_RULE));
        }
        let t = self.store.create_tenant(name).await.map_err(|e| match e {
            StoreError::Conflict(_) => ScimError::uniqueness(format!("a tenant named '{name}' already exists")),
            e => scim_error(e),
        })?;
        self.audit(actor, Some(t.id), "tenant.created", Some(&t.name)).await;
        Ok(t)
    }

    /// The tenant named `name`, created (and audited) if it does not exist
    /// yet; another process creating it meanwhile is fine.
    pub async fn tenant_or_create(&self, actor: &Actor, name: &str) -> Result<Tenant, ScimError> {
        if let Some(t) = self.store.tenant(name).await.map_err(scim_error)? {
            return Ok(t);
        }
        match self.create_tenant(actor, name).await {
            Err(e) if e.status == 409 => self.tenant(name).await,
            other => other,
        }
    }

    /// Deletes a tenant with all its data and tokens (404 if there is none).
    pub async fn delete_tenant(&self, actor: &Actor, name: &str) -> Result<(), ScimError> {
        if !self.store.delete_tenant(name).await.map_err(scim_error)? {
            return Err(ScimError::not_found(format!("no tenant named '{name}'")));
        }
        self.audit(actor, None, "tenant.deleted", Some(name)).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::valid_tenant_name;

    #[test]
    fn tenant_names() {
        for ok in ["a", "contoso", "acme-2", "0day", &"a".repeat(63)] {
            assert!(valid_tenant_name(ok), "{ok}");
        }
        for bad in ["", "-a", "Contoso", "a_b", "a b", "é", "a/b", &"a".repeat(64)] {
            assert!(!valid_tenant_name(bad), "{bad}");
        }
    }
}
