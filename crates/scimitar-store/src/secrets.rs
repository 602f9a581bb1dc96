//! Server-wide secrets that every node must share (e.g. the cursor key).

use async_trait::async_trait;

use crate::StoreResult;

#[async_trait]
pub trait SecretStore: Send + Sync {
    /// A named server-wide secret: the stored one, or `candidate` if none
    /// was stored yet. Every node gets the same.
    async fn secret(&self, name: &str, candidate: &[u8; 32]) -> StoreResult<[u8; 32]>;
}
