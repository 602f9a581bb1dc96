//! Where a job reads users and groups: the `Source` trait and its
//! connectors.

pub mod file;
pub mod ldap;

use async_trait::async_trait;
use serde_json::Value;

use crate::model::Delta;

/// A source failed; the cycle stops and nothing is committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub message: String,
}

impl SourceError {
    pub fn new(message: impl Into<String>) -> Self {
        SourceError {
            message: message.into(),
        }
    }
}

/// A directory the engine reads.
#[async_trait]
pub trait Source: Send {
    /// Reads what changed since `watermark` (everything when it is `None`,
    /// or when the source can only read everything: then `Delta::full`).
    async fn read(&mut self, watermark: Option<&Value>) -> Result<Delta, SourceError>;
}
