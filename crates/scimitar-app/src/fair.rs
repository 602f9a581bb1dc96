//! Fair shares of the database between tenants, for list queries: a cap on
//! each tenant's concurrent scanning reads (lists and searches that are not
//! index lookups), answered 429 with `Retry-After` beyond it, and a cost
//! budget on filters (resources × the cost of testing one), answered 400
//! `tooMany` before the query runs. Index lookups — what identity
//! providers send to match accounts — are neither capped nor budgeted.
//! Together with the store's query time limit, one tenant's expensive
//! searches cannot take every reader connection from the others.

use std::collections::HashMap;
use std::sync::Mutex;

use scimitar_protocol::ScimError;
use scimitar_protocol::plan::Work;
use scimitar_store::{Kind, TenantId};

/// Scanning reads in progress, per tenant.
pub(crate) struct ScanSlots {
    /// At most this many per tenant; 0: no cap.
    cap: usize,
    busy: Mutex<HashMap<TenantId, usize>>,
}

/// One scanning read in progress; the slot is free again when this is
/// dropped (also when the request is abandoned).
pub(crate) struct ScanSlot<'a> {
    slots: &'a ScanSlots,
    tenant: TenantId,
}

impl ScanSlots {
    pub(crate) fn new(cap: usize) -> Self {
        ScanSlots {
            cap,
            busy: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for a scanning read of `tenant`, or 429 when the tenant has
    /// its share already (`None`: no cap).
    pub(crate) fn acquire(&self, tenant: TenantId) -> Result<Option<ScanSlot<'_>>, ScimError> {
        if self.cap == 0 {
            return Ok(None);
        }
        let mut busy = self
            .busy
            .lock()
            .map_err(|_| ScimError::internal("the scan slots are poisoned"))?;
        let n = busy.entry(tenant).or_insert(0);
        if *n >= self.cap {
            metrics::counter!("scimitar_rate_limited_total", "kind" => "scans").increment(1);
            return Err(ScimError {
                retry_after: Some(1),
                ..ScimError::new(
                    429,
                    None,
                    format!(
                        "this tenant already has {} searches running (lists and filters that are not lookups by id, \
                         externalId, userName or a group's displayName); retry after 1 second",
                        self.cap
                    ),
                )
            });
        }
        *n += 1;
        Ok(Some(ScanSlot { slots: self, tenant }))
    }
}

impl Drop for ScanSlot<'_> {
    fn drop(&mut self) {
        if let Ok(mut busy) = self.slots.busy.lock()
            && let Some(n) = busy.get_mut(&self.tenant)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                busy.remove(&self.tenant);
            }
        }
    }
}

/// The units of [`Work::Scan`] of a filter over a tenant's resources, if
/// over `budget` (0: no budget); `count` says how many resources the tenant
/// has, counted no further than it needs to.
pub(crate) async fn check_budget<F, Fut>(work: Work, kind: Kind, budget: u64, count: F) -> Result<(), ScimError>
where
    F: FnOnce(u64) -> Fut,
    Fut: std::future::Future<Output = Result<u64, ScimError>>,
{
    let Work::Scan { per_resource } = work else {
        return Ok(());
    };
    if budget == 0 || per_resource == 0 {
        return Ok(());
    }
    // Enough resources to exceed the budget is all that matters.
    let rows = count(budget / per_resource + 1).await?;
    let cost = rows.saturating_mul(per_resource);
    if cost <= budget {
        return Ok(());
    }
    metrics::counter!("scimitar_filters_over_budget_total").increment(1);
    let at_least = if rows > budget / per_resource { "at least " } else { "" };
    Err(ScimError::too_many(format!(
        "this filter is too expensive: it costs {per_resource} per {kind} (a term on a single value counts 1, a term on \
         a multi-valued attribute or on members {weight}, a sort key 1) for each of the tenant's {at_least}{rows} {kind}s, \
         over the limit of {budget} for one search; narrow it with a lookup (id, externalId or userName eq, or a \
         group's displayName eq) or use fewer terms",
        kind = kind.as_str(),
        weight = scimitar_protocol::plan::COLLECTION_WEIGHT,
    )))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn slots_are_per_tenant_and_come_back() {
        let slots = ScanSlots::new(2);
        let a1 = slots.acquire(1).unwrap();
        let _a2 = slots.acquire(1).unwrap();
        let e = slots.acquire(1).err().expect("the third is refused");
        assert_eq!((e.status, e.retry_after), (429, Some(1)));
        assert!(slots.acquire(2).unwrap().is_some(), "another tenant has its own share");
        drop(a1);
        assert!(slots.acquire(1).unwrap().is_some(), "a finished scan frees its slot");
        assert!(ScanSlots::new(0).acquire(1).unwrap().is_none(), "0: no cap");
    }

    #[tokio::test]
    async fn budget_is_resources_times_the_cost_of_one() {
        let scan = |per_resource| Work::Scan { per_resource };
        let rows = |n: u64| move |at_most: u64| async move { Ok(n.min(at_most)) };
        // (work, resources, budget, within)
        let cases = [
            (Work::Lookup, 1_000_000, 10, true),
            (scan(0), 1_000_000, 10, true),
            (scan(10), 100, 1000, true),
            (scan(10), 101, 1000, false),
            (scan(300), 32_000, 1_000_000, false),
            (scan(30), 32_000, 1_000_000, true),
            (scan(300), 32_000, 0, true),
        ];
        for (work, n, budget, within) in cases {
            let r = check_budget(work, Kind::User, budget, rows(n)).await;
            assert_eq!(r.is_ok(), within, "{work:?} × {n} against {budget}: {r:?}");
            if let Err(e) = r {
                assert_eq!(e.scim_type, Some(scimitar_protocol::ScimType::TooMany));
            }
        }
    }
}
