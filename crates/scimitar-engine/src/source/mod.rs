//! Where a job reads users and groups: the `Source` trait and its
//! connectors.

pub mod file;
pub mod scim;

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
    match spec {
        crate::job::SourceSpec::File(f) => Box::new(file::FileSource::new(f)),
        crate::job::SourceSpec::Scim(s) => Box::new(scim::ScimSource::new(s)),
        crate::job::SourceSpec::Ldap(_) => Box::new(Unavailable("the LDAP source is not built yet")),
    }
}

/// A source that cannot be read.
struct Unavailable(&'static str);

#[async_trait]
impl Source for Unavailable {
    async fn read(&mut self, _: Option<&Value>) -> Result<Delta, SourceError> {
        Err(SourceError::new(self.0))
    }
}

/// A directory the engine reads.
#[async_trait]
pub trait Source: Send {
    /// Reads what changed since `watermark` (everything when it is `None`,
    /// or when the source can only read everything: then `Delta::full`).
    async fn read(&mut self, watermark: Option<&Value>) -> Result<Delta, SourceError>;
}

/// A DN as the engine compares DNs: attribute types and values lower-cased,
/// no spaces around `,` and `=`. Enough for the DNs directories write back
/// in `manager` and `member` (escaped commas and multi-valued RDNs are kept
/// as written, only case-folded).
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut escaped = false;
    // After a separator, spaces are dropped; inside a value, a run of
    // spaces is kept only if more of the value follows.
    let mut after_separator = true;
    let mut spaces = 0usize;
    for c in dn.trim().chars() {
        if escaped {
            out.extend(c.to_lowercase());
            escaped = false;
            after_separator = false;
            continue;
        }
        match c {
            ',' | '=' | '+' => {
                out.push(c);
                after_separator = true;
                spaces = 0;
            }
            ' ' if after_separator => {}
            ' ' => spaces += 1,
            c => {
                out.extend(std::iter::repeat_n(' ', spaces));
                spaces = 0;
                after_separator = false;
                if c == '\\' {
                    escaped = true;
                }
                out.extend(c.to_lowercase());
            }
        }
    }
    out
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
