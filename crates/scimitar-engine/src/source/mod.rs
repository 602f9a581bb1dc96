//! Where a job reads users and groups: the `Source` trait and its
//! connectors.

pub mod file;
pub mod ldap;
pub mod scim;

pub use ldap::normalize_dn;

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

/// The source a job names.
pub fn open(spec: &crate::job::SourceSpec) -> Box<dyn Source> {
    open_limited(spec, None)
}

/// The source a job names; with `egress`, a SCIM source resolves names
/// through the policy at every connection (no DNS rebinding between the
/// check before the cycle and the reads). An LDAP source's address is
/// checked before the cycle only.
pub fn open_limited(
    spec: &crate::job::SourceSpec,
    egress: Option<std::sync::Arc<crate::egress::Policy>>,
) -> Box<dyn Source> {
    match spec {
        crate::job::SourceSpec::File(f) => Box::new(file::FileSource::new(f)),
        crate::job::SourceSpec::Scim(s) => Box::new(scim::ScimSource::limited(s, egress)),
        crate::job::SourceSpec::Ldap(l) => Box::new(ldap::LdapSource::new(l)),
    }
}

/// A directory the engine reads.
#[async_trait]
pub trait Source: Send {
    /// Reads what changed since `watermark` (everything when it is `None`,
    /// or when the source can only read everything: then `Delta::full`).
    async fn read(&mut self, watermark: Option<&Value>) -> Result<Delta, SourceError>;
}

#[cfg(test)]
mod tests {
    use super::normalize_dn;

    #[test]
    fn dns_compare_without_case_and_spaces() {
        assert_eq!(
            normalize_dn(" CN=Alice Smith , OU=People,dc=Example, DC=org "),
            "cn=alice smith,ou=people,dc=example,dc=org"
        );
        assert_eq!(normalize_dn(r"cn=Doe\, John,dc=x"), r"cn=doe\, john,dc=x");
    }
}
