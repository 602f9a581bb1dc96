//! Secret Tokens: only keyed hashes are stored.

use async_trait::async_trait;
use serde::Serialize;

use crate::{NewEvent, StoreResult, TenantId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: String,
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub tenant: String,
    pub label: String,
    /// The first characters of the token, safe to show (`scim_AbCd…`).
    pub hint: String,
    /// `scim` (provisioning) or `admin` (tenant administration API).
    pub scope: String,
    /// The tenant's schema-extension version (changes with every extension
    /// change), so servers can cache resource types safely.
    #[serde(skip)]
    pub schema_version: i64,
    /// When the token stops working (RFC 3339), if it expires.
    pub expires: Option<String>,
    pub created: String,
    pub last_used: Option<String>,
    pub revoked: Option<String>,
}

/// A token to store: its public parts and the keyed hash of its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct NewTokenRecord {
    pub id: String,
    pub label: String,
    pub hint: String,
    pub scope: String,
    pub hash: [u8; 32],
    pub expires: Option<String>,
}

impl std::fmt::Debug for NewTokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewTokenRecord")
            .field("id", &self.id)
            .field("label", &self.label)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn create_token(&self, tenant: TenantId, token: NewTokenRecord) -> StoreResult<TokenInfo> {
        self.create_token_with_events(tenant, token, Vec::new()).await
    }
    /// Creates a token and stores `events` in the same transaction.
    async fn create_token_with_events(
        &self,
        tenant: TenantId,
        token: NewTokenRecord,
        events: Vec<NewEvent>,
    ) -> StoreResult<TokenInfo>;
    async fn list_tokens(&self, tenant: TenantId) -> StoreResult<Vec<TokenInfo>>;
    /// Revokes a live token of the tenant; false if there is none with this id.
    async fn revoke_token(&self, tenant: TenantId, id: &str) -> StoreResult<bool> {
        self.revoke_token_with_events(tenant, id, Vec::new()).await
    }
    /// Revokes a live token and, if it did, stores `events` in the same
    /// transaction.
    async fn revoke_token_with_events(&self, tenant: TenantId, id: &str, events: Vec<NewEvent>) -> StoreResult<bool>;
    /// Sets (or clears) when a token of the tenant expires.
    async fn set_token_expiry(&self, tenant: TenantId, id: &str, expires: Option<&str>) -> StoreResult<bool>;
    /// Records when a token of the tenant was last used.
    async fn touch_token(&self, tenant: TenantId, id: &str, now: &str) -> StoreResult<()>;
    /// The live (not revoked, not expired) token with this hash. Across
    /// tenants by design: it is how a request finds its tenant.
    async fn token_by_hash(&self, hash: &[u8; 32]) -> StoreResult<Option<TokenInfo>>;
    /// The token with this id in any tenant (revoked ones too), for the
    /// command line, where an operator names a token by its id alone.
    async fn find_token(&self, id: &str) -> StoreResult<Option<TokenInfo>>;
    /// Records who created a token (an admin's email, or `CLI`).
    async fn set_token_creator(&self, tenant: TenantId, token_id: &str, created_by: &str) -> StoreResult<()>;
    /// `(token id, created by)` for a tenant's tokens.
    async fn token_creators(&self, tenant: TenantId) -> StoreResult<Vec<(String, String)>>;
}
