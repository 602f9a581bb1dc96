//! SCIM 2.0 protocol logic for Scimitar (RFC 7643, RFC 7644, and what
//! Microsoft Entra ID and Okta actually send).
//!
//! This crate is pure: no I/O, no HTTP or SQL types. Everything here is a
//! function of its inputs, which is what makes it table-testable and
//! fuzzable. Statuses are plain numbers; the HTTP layer maps them.

pub mod activity;
pub mod datetime;
pub mod diff;
pub mod discovery;
pub mod error;
pub mod eval;
pub mod events;
pub mod filter;
pub mod list;
pub mod output;
pub mod patch;
pub mod plan;
pub mod project;
pub mod resource;
pub mod schema;
pub mod unique;

pub use error::{Result, ScimError, ScimType};
