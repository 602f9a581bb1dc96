//! Rate limits: a token bucket per tenant for SCIM traffic, and throttling
//! of failed authentication per source address and per token prefix.
//! Answers are 429 with `Retry-After`.
//!
//! The failure maps are keyed by what anyone on the internet sends (an
//! address, the first characters of a token), so each holds at most
//! `capacity` entries: an entry is dropped once it is back to a clean
//! slate (`prune`, every 10 seconds and whenever a map is full), and a map
//! still full after that forgets the tenth of its sources with the fewest
//! recent failures, never one that is over its budget before one that is
//! not. A source over its budget records nothing more, so a blocked address
//! cannot fill the prefix map by varying its tokens.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use scimitar_protocol::ScimError;
use scimitar_store::TenantId;

use crate::error::ApiError;

/// Sources remembered per failure map (addresses; token prefixes): about
/// 5 MB each when full.
pub const FAILURE_SOURCES_MAX: usize = 100_000;

pub struct Limiter {
    tenant: Option<DefaultKeyedRateLimiter<TenantId>>,
    failures: Option<Failures>,
}

/// 429 with the seconds to wait.
pub fn too_many_requests(wait: Duration, what: &str) -> ApiError {
    let secs = wait.as_secs().max(1);
    ApiError(ScimError::new(429, None, format!("{what}; retry after {secs} seconds"))).with_retry_after(secs)
}

/// How many entries each map holds, for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sizes {
    pub tenants: usize,
    pub addresses: usize,
    pub prefixes: usize,
}

impl Limiter {
    pub fn new(per_tenant_per_second: u32, auth_failures_per_minute: u32, capacity: usize) -> Self {
        let tenant = NonZeroU32::new(per_tenant_per_second).map(|n| {
            DefaultKeyedRateLimiter::keyed(
                Quota::per_second(n).allow_burst(n.saturating_mul(NonZeroU32::MIN.saturating_add(1))),
            )
        });
        let failures = NonZeroU32::new(auth_failures_per_minute).map(|n| Failures {
            gcra: Gcra::per_minute(n),
            addresses: Mutex::new(Bounded::new(capacity)),
            prefixes: Mutex::new(Bounded::new(capacity)),
        });
        Limiter { tenant, failures }
    }

    /// Counts one request of a tenant.
    pub fn check_tenant(&self, tenant: TenantId) -> Result<(), ApiError> {
        let Some(l) = &self.tenant else { return Ok(()) };
        l.check_key(&tenant).map_err(|not_until| {
            metrics::counter!("scimitar_rate_limited_total", "kind" => "tenant").increment(1);
            too_many_requests(
                not_until.wait_time_from(DefaultClock::default().now()),
                "this tenant's request rate limit is exceeded",
            )
        })
    }

    /// Records a failed authentication from `ip` with a token starting
    /// with `prefix`. `Some(429)` when the address or the prefix is over
    /// its budget: the failure is answered with it instead of 401, and
    /// counts no further (a blocked address records no prefixes).
    pub fn failed(&self, ip: Option<IpAddr>, prefix: Option<&str>) -> Option<ApiError> {
        metrics::counter!("scimitar_auth_failures_total").increment(1);
        let f = self.failures.as_ref()?;
        let now = Instant::now();
        let over = |wait: Duration| {
            metrics::counter!("scimitar_rate_limited_total", "kind" => "auth").increment(1);
            too_many_requests(wait, "too many failed authentication attempts")
        };
        if let Some(ip) = ip
            && let Ok(mut m) = f.addresses.lock()
            && let Err(wait) = m.admit(Source::of(ip), now, f.gcra)
        {
            return Some(over(wait));
        }
        if let Some(p) = prefix
            && let Ok(mut m) = f.prefixes.lock()
            && let Err(wait) = m.admit_str(p, now, f.gcra)
        {
            return Some(over(wait));
        }
        None
    }

    /// Forgets what no longer matters (sources back to a clean slate,
    /// tenants with a full bucket) and gives unused map memory back.
    pub fn prune(&self) {
        if let Some(l) = &self.tenant {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(f) = &self.failures {
            let now = Instant::now();
            if let Ok(mut m) = f.addresses.lock() {
                m.prune(now);
            }
            if let Ok(mut m) = f.prefixes.lock() {
                m.prune(now);
            }
        }
    }

    pub fn sizes(&self) -> Sizes {
        let mut s = Sizes {
            tenants: self.tenant.as_ref().map_or(0, |l| l.len()),
            ..Sizes::default()
        };
        if let Some(f) = &self.failures {
            s.addresses = f.addresses.lock().map_or(0, |m| m.len());
            s.prefixes = f.prefixes.lock().map_or(0, |m| m.len());
        }
        s
    }
}

struct Failures {
    gcra: Gcra,
    addresses: Mutex<Bounded<Source>>,
    prefixes: Mutex<Bounded<Box<str>>>,
}

/// Where failures come from: an IPv4 address, or an IPv6 /64 (one
/// subscriber's network: an address per attempt would cost nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4(Ipv4Addr),
    V6(u64),
}

impl Source {
    fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Source::V4(v4),
            IpAddr::V6(v6) => Source::V6((v6.to_bits() >> 64) as u64),
        }
    }
}

/// The generic cell rate algorithm: `burst` failures at once, then one per
/// `interval`; a key's whole state is its theoretical arrival time.
#[derive(Debug, Clone, Copy)]
struct Gcra {
    interval: Duration,
    /// How far ahead of now the arrival time may run (burst − 1 intervals).
    tolerance: Duration,
}

impl Gcra {
    fn per_minute(n: NonZeroU32) -> Self {
        let interval = Duration::from_secs(60) / n.get();
        Gcra {
            interval,
            tolerance: interval.saturating_mul(n.get() - 1),
        }
    }
}

/// A map of sources to their arrival time, of bounded size.
struct Bounded<K> {
    entries: HashMap<K, Instant>,
    capacity: usize,
}

impl<K: Hash + Eq> Bounded<K> {
    fn new(capacity: usize) -> Self {
        Bounded {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Counts a failure of `key`: `Err(wait)` when it is over its budget
    /// (and nothing is counted).
    fn admit(&mut self, key: K, now: Instant, gcra: Gcra) -> Result<(), Duration> {
        if let Some(tat) = self.entries.get_mut(&key) {
            return Self::step(tat, now, gcra);
        }
        self.make_room(now);
        let mut tat = now;
        let r = Self::step(&mut tat, now, gcra);
        self.entries.insert(key, tat);
        r
    }

    fn step(tat: &mut Instant, now: Instant, gcra: Gcra) -> Result<(), Duration> {
        let start = (*tat).max(now);
        let ahead = start - now;
        if ahead > gcra.tolerance {
            return Err(ahead - gcra.tolerance);
        }
        *tat = start + gcra.interval;
        Ok(())
    }

    /// Drops entries back to a clean slate; releases memory after a burst.
    fn prune(&mut self, now: Instant) {
        self.entries.retain(|_, tat| *tat > now);
        if self.entries.capacity() > 4 * self.entries.len().max(1024) {
            self.entries.shrink_to_fit();
        }
    }

    /// Before a new entry: a full map is pruned, and if still full loses
    /// the tenth of its entries closest to a clean slate (those over
    /// budget have the latest arrival times and go last).
    fn make_room(&mut self, now: Instant) {
        if self.entries.len() < self.capacity {
            return;
        }
        self.prune(now);
        if self.entries.len() < self.capacity {
            return;
        }
        metrics::counter!("scimitar_throttle_evictions_total").increment(1);
        let mut tats: Vec<Instant> = self.entries.values().copied().collect();
        let cut = tats.len() / 10;
        let (_, threshold, _) = tats.select_nth_unstable(cut);
        let threshold = *threshold;
        self.entries.retain(|_, tat| *tat > threshold);
    }
}

impl Bounded<Box<str>> {
    fn admit_str(&mut self, key: &str, now: Instant, gcra: Gcra) -> Result<(), Duration> {
        if let Some(tat) = self.entries.get_mut(key) {
            return Self::step(tat, now, gcra);
        }
        self.admit(key.into(), now, gcra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gcra(n: u32) -> Gcra {
        Gcra::per_minute(NonZeroU32::new(n).unwrap())
    }

    #[test]
    fn a_burst_then_one_per_interval() {
        let mut m: Bounded<u32> = Bounded::new(10);
        let now = Instant::now();
        let g = gcra(3); // burst 3, then one per 20 s
        let got: Vec<bool> = (0..5).map(|_| m.admit(1, now, g).is_ok()).collect();
        assert_eq!(got, [true, true, true, false, false]);
        assert_eq!(m.admit(1, now, g), Err(Duration::from_secs(20)));
        assert!(m.admit(1, now + Duration::from_secs(20), g).is_ok());
        assert!(m.admit(1, now + Duration::from_secs(20), g).is_err());
        // Another key has its own budget.
        assert!(m.admit(2, now, g).is_ok());
    }

    #[test]
    fn the_map_never_exceeds_its_capacity_and_keeps_blocked_sources() {
        let mut m: Bounded<u32> = Bounded::new(100);
        let now = Instant::now();
        let g = gcra(3);
        // Source 0 goes over its budget.
        for _ in 0..4 {
            let _ = m.admit(0, now, g);
        }
        for k in 1..10_000 {
            let _ = m.admit(k, now + Duration::from_millis(u64::from(k)), g);
            assert!(m.len() <= 100, "{} entries", m.len());
        }
        assert!(m.admit(0, now, g).is_err(), "the blocked source is still blocked");
        // A minute later everything is back to a clean slate.
        m.prune(now + Duration::from_secs(120));
        assert_eq!(m.len(), 0);
    }
}
