//! Leases: background work that must run on one node of a cluster at a
//! time (activity retention) is done by whoever holds a named lease row.
//!
//! A lease is taken with one conditional `UPDATE` (`… WHERE name = ? AND
//! (expires < now OR holder = me)`): the database's row lock decides
//! between nodes racing for it, without advisory locks or LISTEN/NOTIFY, so
//! the same SQL runs on SQLite, PostgreSQL and PostgreSQL-wire distributed
//! engines. The holder renews it by taking it again before it expires; if
//! the holder dies, another node takes it once it has expired. Times are
//! the nodes' clocks (RFC 3339 UTC, compared as text), so nodes need
//! roughly synchronised clocks (NTP); skew shorter than the lease margin is
//! harmless.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use crate::StoreResult;

/// Named leases, kept in the store so that every node sees the same.
#[async_trait]
pub trait Leases: Send + Sync {
    /// Takes the lease `name` for `holder` until `expires` if it is free at
    /// `now` (never taken, or expired before `now`) or already held by
    /// `holder` (a renewal). Returns whether `holder` holds it now. Times
    /// are in the format of [`crate::now_utc`].
    async fn try_lease(&self, name: &str, holder: &str, now: &str, expires: &str) -> StoreResult<bool>;
}

/// The lease under which activity retention runs.
pub const ACTIVITY_RETENTION: &str = "activity-retention";

/// This process's name as a lease holder: host, process id and start time,
/// unique across the nodes of a cluster.
pub fn process_holder() -> &'static str {
    static HOLDER: OnceLock<String> = OnceLock::new();
    HOLDER.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".to_string());
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos();
        format!("{host}/{}/{started}", std::process::id())
    })
}

/// `(now, now + duration)` in the format of [`crate::now_utc`].
pub fn window(duration: Duration) -> (String, String) {
    let now = SystemTime::now();
    (format_time(now), format_time(now + duration))
}

fn format_time(t: SystemTime) -> String {
    crate::format_utc(time::OffsetDateTime::from(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_ordered_and_formatted_like_now_utc() {
        let (now, later) = window(Duration::from_secs(90));
        assert_eq!(now.len(), crate::now_utc().len());
        assert!(later > now);
        assert!(process_holder().contains(&std::process::id().to_string()));
    }
}
