//! Rate limits: a token bucket per tenant for SCIM traffic, and throttling
//! of failed authentication per source address and per token prefix.
//! Answers are 429 with `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use scimitar_protocol::ScimError;
use scimitar_store::TenantId;

use crate::error::ApiError;

pub struct Limiter {
    tenant: Option<DefaultKeyedRateLimiter<TenantId>>,
    failed_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    failed_prefix: Option<DefaultKeyedRateLimiter<String>>,
    /// Sources that exceeded the failure budget, refused until this instant.
    blocked: std::sync::Mutex<std::collections::HashMap<String, Instant>>,
}

/// 429 with the seconds to wait.
pub fn too_many_requests(wait: Duration, what: &str) -> ApiError {
    let secs = wait.as_secs().max(1);
    ApiError(ScimError::new(429, None, format!("{what}; retry after {secs} seconds"))).with_retry_after(secs)
}

impl Limiter {
    pub fn new(per_tenant_per_second: u32, auth_failures_per_minute: u32) -> Self {
        let tenant = NonZeroU32::new(per_tenant_per_second).map(|n| {
            DefaultKeyedRateLimiter::keyed(
                Quota::per_second(n).allow_burst(n.saturating_mul(NonZeroU32::MIN.saturating_add(1))),
            )
        });
        let fail = NonZeroU32::new(auth_failures_per_minute).map(Quota::per_minute);
        Limiter {
            tenant,
            failed_ip: fail.map(DefaultKeyedRateLimiter::keyed),
            failed_prefix: fail.map(DefaultKeyedRateLimiter::keyed),
            blocked: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
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

    /// Refuses a source that failed authentication too often, before any work.
    pub fn check_blocked(&self, ip: Option<IpAddr>, prefix: Option<&str>) -> Result<(), ApiError> {
        let now = Instant::now();
        let Ok(mut blocked) = self.blocked.lock() else {
            return Ok(());
        };
        blocked.retain(|_, until| *until > now);
        for key in [ip.map(|i| format!("ip:{i}")), prefix.map(|p| format!("prefix:{p}"))]
            .into_iter()
            .flatten()
        {
            if let Some(until) = blocked.get(&key) {
                metrics::counter!("scimitar_rate_limited_total", "kind" => "auth").increment(1);
                return Err(too_many_requests(
                    *until - now,
                    "too many failed authentication attempts",
                ));
            }
        }
        Ok(())
    }

    /// Records a failed authentication; blocks the source when over budget.
    pub fn failed(&self, ip: Option<IpAddr>, prefix: Option<&str>) {
        metrics::counter!("scimitar_auth_failures_total").increment(1);
        let clock = DefaultClock::default();
        let mut block = Vec::new();
        if let (Some(l), Some(ip)) = (&self.failed_ip, ip)
            && let Err(nu) = l.check_key(&ip)
        {
            block.push((format!("ip:{ip}"), nu.wait_time_from(clock.now())));
        }
        if let (Some(l), Some(p)) = (&self.failed_prefix, prefix)
            && let Err(nu) = l.check_key(&p.to_string())
        {
            block.push((format!("prefix:{p}"), nu.wait_time_from(clock.now())));
        }
        if block.is_empty() {
            return;
        }
        if let Ok(mut b) = self.blocked.lock() {
            for (k, wait) in block {
                b.insert(k, Instant::now() + wait.max(Duration::from_secs(1)));
            }
        }
    }
}
