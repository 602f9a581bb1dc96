//! Console accounts: creation (validated, password hashed off the async
//! workers) and password checks.

use scimitar_protocol::ScimError;
use scimitar_store::{ConsoleAdmin, StoreError, Tenant};

use crate::{Actor, App, scim_error};

/// Minimum password length for console accounts.
pub const MIN_PASSWORD_LEN: usize = 12;

/// An account to create.
#[derive(Clone)]
pub struct NewAccount<'a> {
    /// The tenant of an `admin` or `viewer`; `None` for an `operator`.
    pub tenant: Option<&'a Tenant>,
    pub email: &'a str,
    pub role: &'a str,
    pub password: String,
}

/// Hashing on the blocking pool: argon2id is deliberately slow.
pub async fn hash_password(password: String) -> Result<String, ScimError> {
    tokio::task::spawn_blocking(move || scimitar_auth::password::hash(&password))
        .await
        .map_err(|e| ScimError::internal(e.to_string()))?
        .map_err(|e| ScimError::internal(format!("the password could not be hashed: {e}")))
}

/// Verifies on the blocking pool.
pub async fn verify_password(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || scimitar_auth::password::verify(&password, &phc))
        .await
        .unwrap_or(false)
}

/// Checks an account's email, role, tenant and password before anything
/// is stored.
pub fn check_account(a: &NewAccount<'_>) -> Result<(), ScimError> {
    let bad = |m: String| Err(ScimError::invalid_value(m));
    if !a.email.trim().contains('@') {
        return bad(format!("'{}' is not an email address", a.email.trim()));
    }
    match (a.role, a.tenant) {
        ("operator", None) | ("admin" | "viewer", Some(_)) => {}
        ("operator", Some(_)) => return bad("an operator works across tenants: leave out --tenant".into()),
        ("admin" | "viewer", None) => return bad(format!("a {} belongs to a tenant: give --tenant", a.role)),
        (role, _) => return bad(format!("unknown role '{role}' (admin, viewer or operator)")),
    }
    if a.password.chars().count() < MIN_PASSWORD_LEN {
        return bad(format!("the password must have at least {MIN_PASSWORD_LEN} characters"));
    }
    Ok(())
}

impl App {
    /// Creates a console account (409 if the email is taken) and audits it.
    pub async fn create_account(&self, actor: &Actor, a: NewAccount<'_>) -> Result<ConsoleAdmin, ScimError> {
        check_account(&a)?;
        let email = a.email.trim();
        let hash = hash_password(a.password).await?;
        let account = self
            .store
            .create_admin(a.tenant.map(|t| t.id), email, a.role, &hash)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    ScimError::uniqueness(format!("an account with the email '{email}' already exists"))
                }
                e => scim_error(e),
            })?;
        let target = format!("{} ({})", account.email, account.role);
        self.audit(actor, account.tenant_id, "admin.created", Some(&target))
            .await;
        Ok(account)
    }
}
