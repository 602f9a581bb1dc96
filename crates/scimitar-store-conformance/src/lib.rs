//! One storage conformance suite for every [`Store`] backend.
//!
//! Each case is an async function taking a fresh, empty store. A backend's
//! test file runs every case as its own `#[tokio::test]` with
//! [`store_conformance!`], given an async factory that returns
//! `Option<Arc<dyn Store>>` (`None`: the backend is not available here and
//! the tests are skipped, after saying so).
//!
//! Filter behaviour is checked twice: against hand-written expectations,
//! and differentially against `scimitar_protocol::eval::matches_resource`
//! (the in-memory evaluator PATCH uses) over the same data.

// Not production code: test support: a panic is a failing test.
#![allow(clippy::panic, clippy::indexing_slicing)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cases;
mod fixture;

/// Every case, by name (the functions in [`cases`]).
pub const CASES: &[&str] = &[
    "tenants",
    "tokens",
    "create_get_delete",
    "modify_versions",
    "if_match",
    "uniqueness",
    "tenant_isolation",
    "member_ops",
    "member_access_in_modify",
    "delete_leaves_groups",
    "filter_operators",
    "filter_differential_users",
    "filter_differential_groups",
    "filter_errors",
    "sorting",
    "sort_by_resource_type",
    "pagination",
    "cursor_paging",
    "concurrent_modify",
    "concurrent_member_adds",
    "secrets",
    "extensions",
    "activity",
    "activity_with_modification",
    "totals_follow_writes",
    "custom_typed_attributes",
    "engine_jobs",
    "engine_restart",
    "engine_progress",
    "engine_objects",
    "engine_log",
    "engine_log_purge",
    "engine_tenant_isolation",
    "engine_many_objects",
    "exact_numbers_and_instants",
    "cleartext_passwords",
    "unique_values",
    "resource_counts",
    "query_time_limit",
    "events",
    "events_purge",
    "events_concurrent_readers_skip_nothing",
    "events_link_to_their_change",
    "webhooks",
];

/// Defines one `#[tokio::test]` per conformance case. `$factory` is an
/// async fn returning `Option<Arc<dyn Store>>`, a fresh empty store per call.
/// An attribute after it goes on every case, e.g. a backend's
/// `#[cfg_attr(not(…), ignore = "why")]`, so that cases which cannot run
/// are reported as ignored rather than passed.
#[macro_export]
macro_rules! store_conformance {
    ($factory:path) => {
        $crate::store_conformance!($factory, #[allow(unused_attributes)]);
    };
    ($factory:path, #[$attr:meta]) => {
        $crate::store_conformance!(@cases $factory; #[$attr];
            tenants, tokens, create_get_delete, modify_versions, if_match, uniqueness, tenant_isolation,
            member_ops, member_access_in_modify, delete_leaves_groups, filter_operators,
            filter_differential_users, filter_differential_groups, filter_errors, sorting, sort_by_resource_type, pagination,
            cursor_paging, concurrent_modify, concurrent_member_adds, secrets, extensions, activity, activity_with_modification, totals_follow_writes, custom_typed_attributes,
            engine_jobs, engine_restart, engine_progress, engine_objects, engine_log, engine_log_purge, engine_tenant_isolation,
            engine_many_objects, exact_numbers_and_instants, cleartext_passwords, unique_values,
            resource_counts, query_time_limit, events, events_purge, events_concurrent_readers_skip_nothing, events_link_to_their_change, webhooks);
    };
    (@cases $factory:path; #[$attr:meta]; $($case:ident),* $(,)?) => {
        $(
            // Multi-threaded: the concurrency cases need real parallelism.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[$attr]
            async fn $case() {
                let Some(store) = $factory().await else { return };
                $crate::cases::$case(store).await;
            }
        )*
        #[test]
        fn every_case_is_wired() {
            let wired: &[&str] = &[$(stringify!($case)),*];
            assert_eq!(wired, $crate::CASES, "store_conformance! and CASES disagree");
        }
    };
}
