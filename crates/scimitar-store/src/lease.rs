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

use std::path::Path;
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
    /// Who holds the lease `name` and until when, if anyone ever took it
    /// (expired leases included: compare `expires` with the time).
    async fn lease_holder(&self, name: &str) -> StoreResult<Option<(String, String)>>;
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
        let space = pid_space().unwrap_or_else(|| "-".into());
        format!("{host}/{}/{started}/{space}", std::process::id())
    })
}

/// This process's PID namespace, named so that no other machine, boot or
/// container shares the name: the kernel's boot id and the namespace's
/// inode. `None` without `/proc`.
fn pid_space() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let ns = ns.to_string_lossy();
    let digits: String = ns.chars().filter(char::is_ascii_digit).collect();
    Some(format!("{}-{digits}", boot.trim().replace('-', "")))
}

/// Whether `holder` (a [`process_holder`] name) is a process that has
/// ended: one of this machine's boot and PID namespace whose process id no
/// longer exists. Anything else (another node, a PID that exists again) is
/// taken to be alive, and its lease is left to expire.
pub fn holder_is_dead(holder: &str) -> bool {
    let mut parts = holder.split('/');
    let (Some(_host), Some(pid), Some(_started), Some(space)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    match pid_space() {
        Some(mine) if mine == space && space != "-" => !Path::new(&format!("/proc/{pid}")).exists(),
        _ => false,
    }
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

    #[test]
    fn a_holder_is_dead_only_when_its_process_is_known_gone() {
        let me = process_holder();
        assert!(!holder_is_dead(me), "this process is alive");
        let space = me.rsplit('/').next().unwrap_or_default();
        if space == "-" {
            return; // no /proc: nothing is known dead
        }
        // A process of this namespace that has ended.
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        child.wait().expect("wait");
        assert!(holder_is_dead(&format!("node/{pid}/1/{space}")));
        // Another machine's, or a malformed name: alive as far as we know.
        assert!(!holder_is_dead(&format!("node/{pid}/1/other-space")));
        assert!(!holder_is_dead("node/not-a-pid/1/x"));
        assert!(!holder_is_dead("old-format/1"));
    }
}
