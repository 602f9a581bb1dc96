//! `scimitar validate`: Microsoft Entra ID's SCIM Validator, offline. It
//! tells any SCIM endpoint — Scimitar or not — before Entra does, what
//! will fail when Entra provisions it.
//!
//! Every request is built by the provisioning engine's dialect code
//! (`scimitar_engine::dialect`: the shapes Entra sends, with and without
//! `aadOptscim062020`, or plain RFC 7644) and sent by its SCIM client
//! (`scimitar_engine::client`), so Entra's traffic has one implementation
//! in the workspace. The judgements — preflight ([`preflight`]), what an
//! endpoint declares and the test users built from it ([`discovery`]), the
//! reports ([`report`]) — are pure; [`run`] holds the I/O: the tests of
//! [`catalogue`] in order, then the cleanup of everything they created
//! (also after a failure or an interruption).

pub mod catalogue;
pub mod discovery;
pub mod preflight;
pub mod report;
mod run;

use std::time::Duration;

pub use run::validate;
pub use scimitar_engine::job::Dialect;

/// What to validate, and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Tenant URL (a query string such as `?aadOptscim062020` is
    /// dropped).
    pub url: String,
    pub token: String,
    pub dialect: Dialect,
    /// Run the Group tests too.
    pub groups: bool,
    /// Only these tests (ids, or parts of names).
    pub only: Vec<String>,
    /// Leave what the run created.
    pub keep: bool,
    /// The timeout of each request.
    pub timeout: Duration,
    /// How long the load check runs (0: skipped).
    pub load_seconds: f64,
    /// Requests per second of the load check (Entra's gallery requirement:
    /// 25).
    pub load_rate: u32,
}

impl Options {
    pub fn new(url: &str, token: &str) -> Options {
        Options {
            url: url.to_string(),
            token: token.to_string(),
            dialect: Dialect::EntraCompliant,
            groups: false,
            only: Vec::new(),
            keep: false,
            timeout: Duration::from_secs(10),
            load_seconds: 10.0,
            load_rate: 25,
        }
    }
}

/// A dialect by its name (`entra-compliant`, `entra-legacy`, `rfc`).
pub fn dialect(name: &str) -> Option<Dialect> {
    match name {
        "entra-compliant" => Some(Dialect::EntraCompliant),
        "entra-legacy" => Some(Dialect::EntraLegacy),
        "rfc" => Some(Dialect::Rfc),
        _ => None,
    }
}
