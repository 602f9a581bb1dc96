//! Storage for the admin console: administrators, their sessions, and the
//! one-time setup code of a fresh install. Kept apart from the SCIM data; every secret is stored hashed.

use async_trait::async_trait;
use serde::Serialize;

use crate::{StoreResult, TenantId};

/// A console account. `tenant` is `None` for an operator, who works across tenants.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct ConsoleAdmin {
    pub id: i64,
    pub tenant_id: Option<TenantId>,
    pub tenant: Option<String>,
    /// As entered; unique across the installation case-insensitively.
    pub email: String,
    /// `admin`, `viewer` or `operator`.
    pub role: String,
    /// An argon2id PHC string.
    #[serde(skip)]
    pub password_hash: String,
    pub created: String,
}

impl std::fmt::Debug for ConsoleAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleAdmin")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A signed-in browser. Looked up by the SHA-256 of the cookie value.
#[derive(Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub admin: ConsoleAdmin,
    /// The synchronizer CSRF token of this session.
    pub csrf: String,
    pub created: String,
    pub last_seen: String,
}

impl std::fmt::Debug for ConsoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSession")
            .field("admin", &self.admin)
            .field("created", &self.created)
            .field("last_seen", &self.last_seen)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait ConsoleStore: Send + Sync + 'static {
    /// Creates an account; `Conflict("email")` if the email is taken.
    async fn create_admin(
        &self,
        tenant: Option<TenantId>,
        email: &str,
        role: &str,
        password_hash: &str,
    ) -> StoreResult<ConsoleAdmin>;
    async fn admin_by_email(&self, email: &str) -> StoreResult<Option<ConsoleAdmin>>;
    /// Accounts of a tenant, or the operators with `None`.
    async fn list_admins(&self, tenant: Option<TenantId>) -> StoreResult<Vec<ConsoleAdmin>>;
    async fn count_admins(&self) -> StoreResult<u64>;
    async fn set_admin_password(&self, id: i64, password_hash: &str) -> StoreResult<bool>;

    async fn create_session(&self, hash: &[u8; 32], admin: i64, csrf: &str, now: &str) -> StoreResult<()>;
    async fn session(&self, hash: &[u8; 32]) -> StoreResult<Option<ConsoleSession>>;
    async fn touch_session(&self, hash: &[u8; 32], now: &str) -> StoreResult<()>;
    async fn delete_session(&self, hash: &[u8; 32]) -> StoreResult<()>;
    /// Deletes sessions last seen before `idle_before` or created before `created_before`.
    async fn purge_sessions(&self, idle_before: &str, created_before: &str) -> StoreResult<u64>;

    /// Replaces the one-time setup code (its hash) valid until `expires`.
    async fn put_setup_code(&self, hash: &[u8; 32], expires: &str) -> StoreResult<()>;
    /// Consumes the setup code if it matches and has not expired.
    async fn take_setup_code(&self, hash: &[u8; 32], now: &str) -> StoreResult<bool>;

    /// Stores an invite link for `tenant`'s customer administrator (its
    /// code's hash) valid until `expires`.
    async fn put_invite(&self, tenant: TenantId, hash: &[u8; 32], expires: &str) -> StoreResult<()>;
    /// The tenant and expiry of the invite with this hash, if it has not
    /// expired at `now` (without using it). Looked up by hash alone: the
    /// link is how its holder finds the tenant.
    async fn invite(&self, hash: &[u8; 32], now: &str) -> StoreResult<Option<(TenantId, String)>>;
    /// Uses the invite: deleted if it exists and has not expired at `now`;
    /// its tenant and expiry. A second use finds nothing.
    async fn take_invite(&self, hash: &[u8; 32], now: &str) -> StoreResult<Option<(TenantId, String)>>;
}
