//! The storage boundary of Scimitar.
//!
//! Storage is split by concern into traits — [`ResourceStore`],
//! [`TenantStore`], [`TokenStore`], [`SchemaStore`], [`ActivityStore`],
//! [`AuditStore`], [`SecretStore`], [`ConsoleStore`], [`EngineStore`] (the
//! provisioning engine's state, with its own migration set) and [`Leases`] —
//! which [`Store`] gathers for code that needs a whole database. Backends
//! (`scimitar-store-sqlite`, `scimitar-store-postgres`) implement every one
//! of them; the protocol crate never sees them. Each concern that brings
//! tables brings its own migration set ([`migrations`]).
//!
//! Invariant: every method that touches a tenant's data takes a
//! [`TenantId`], and every query it runs is scoped by it. The exceptions
//! are named in their documentation: looking a token up by its hash (which
//! is how a request finds its tenant), by its id for the command line, and
//! retention across every tenant.

pub mod activity;
pub mod audit;
pub mod console;
pub mod engine;
pub mod events;
pub mod lease;
pub mod migrations;
pub mod resources;
pub mod schemas;
pub mod secrets;
pub mod tenants;
pub mod tokens;
pub mod webhooks;

pub use activity::*;
pub use audit::*;
pub use console::*;
pub use engine::*;
pub use events::*;
pub use lease::Leases;
pub use resources::*;
pub use schemas::*;
pub use secrets::*;
pub use tenants::*;
pub use tokens::*;
pub use webhooks::WebhookStore;

use async_trait::async_trait;
use scimitar_protocol::ScimError;

pub type TenantId = i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness constraint on the named attribute.
    #[error("{0} is already taken")]
    Conflict(String),
    /// `If-Match` named a version that is not the current one.
    #[error("version mismatch")]
    PreconditionFailed,
    /// The request is invalid given the stored data (e.g. an unknown member).
    #[error(transparent)]
    Invalid(#[from] ScimError),
    /// A query ran longer than the query time limit (or waited that long
    /// for a connection) and was stopped.
    #[error("the query ran out of time")]
    Timeout,
    #[error("storage failure: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything a database offers: the per-concern traits, plus readiness.
/// Code that needs only one concern should ask for that trait.
#[async_trait]
pub trait Store:
    ResourceStore
    + TenantStore
    + TokenStore
    + SchemaStore
    + ActivityStore
    + AuditStore
    + SecretStore
    + ConsoleStore
    + EngineStore
    + EventStore
    + Leases
    + WebhookStore
    + Send
    + Sync
    + 'static
{
    /// Whether the database answers and every migration set is applied.
    async fn ready(&self) -> StoreResult<()>;

    /// How long one list query may run before the database stops it (and
    /// the call returns [`StoreError::Timeout`]). The server sets its
    /// request timeout here: a query outlives no request. A query whose
    /// caller stops waiting (drops the future) stops too.
    fn limit_query_time(&self, limit: std::time::Duration);
}

/// The per-concern traits, for `use scimitar_store::prelude::*`.
pub mod prelude {
    pub use crate::{
        ActivityStore, AuditStore, ConsoleStore, EngineStore, EventStore, Leases, ResourceStore, SchemaStore,
        SecretStore, Store, TenantStore, TokenStore, WebhookStore,
    };
}

const TIME_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// The time `secs` seconds from now, in the format of [`now_utc`].
pub fn utc_in(secs: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
        .format(TIME_FORMAT)
        .unwrap_or_default()
}

/// The current time as RFC 3339 UTC with milliseconds: the format of
/// `meta.created`/`lastModified`, and sortable as text.
pub fn now_utc() -> String {
    format_utc(time::OffsetDateTime::now_utc())
}

/// A time in the format of [`now_utc`]. Written digit by digit: every
/// write stamps several times, and `time`'s general formatter cost about
/// 2,000 instructions a call (a few percent of a PATCH).
pub fn format_utc(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let Ok(year) = u32::try_from(t.year()) else {
        return t.format(TIME_FORMAT).unwrap_or_default();
    };
    if year > 9999 {
        return t.format(TIME_FORMAT).unwrap_or_default();
    }
    let mut out = String::with_capacity(24);
    let fields = [
        (year, 4, '-'),
        (u32::from(u8::from(t.month())), 2, '-'),
        (u32::from(t.day()), 2, 'T'),
        (u32::from(t.hour()), 2, ':'),
        (u32::from(t.minute()), 2, ':'),
        (u32::from(t.second()), 2, '.'),
        (u32::from(t.millisecond()), 3, 'Z'),
    ];
    for (value, width, then) in fields {
        for place in (0..width).rev() {
            let digit = value / 10u32.pow(place) % 10;
            out.push(char::from_digit(digit, 10).unwrap_or('0'));
        }
        out.push(then);
    }
    out
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    #[test]
    fn format_utc_writes_what_the_time_formatter_writes() {
        let cases = [
            datetime!(1970-01-01 00:00:00 UTC),
            datetime!(2026-12-01 14:05:09.123_456_789 UTC),
            datetime!(2026-12-01 23:59:59.999_999_999 UTC),
            datetime!(2026-12-01 00:30:00.001 +02:00),
            datetime!(0001-02-03 04:05:06.007 UTC),
            datetime!(9999-12-31 23:59:59.5 UTC),
            datetime!(-0001-06-15 12:00:00 UTC),
        ];
        for t in cases {
            let want = t.to_offset(time::UtcOffset::UTC).format(super::TIME_FORMAT).unwrap();
            assert_eq!(super::format_utc(t), want, "{t}");
        }
        assert_eq!(
            super::format_utc(datetime!(2026-12-01 00:30:00.001 +02:00)),
            "2026-11-30T22:30:00.001Z"
        );
    }
}
