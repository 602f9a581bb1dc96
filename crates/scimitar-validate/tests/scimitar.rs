//! The validator against Scimitar itself (a real server on an ephemeral
//! port): every test passes in each dialect, with groups, and the tenant
//! holds exactly what it held before.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use scimitar_validate::report::Status;
use scimitar_validate::{Options, dialect};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_test_passes_against_scimitar_in_each_dialect() {
    let server = scimitar_testkit::TestServer::start().await;
    let tenant = server.tenant("acme").await;
    // Someone else's data, which the runs must leave alone.
    let alice = tenant.create_user("alice@example.com").await;
    tenant.create_group("Staff", &[alice.as_str()]).await;
    let before = support::snapshot(&tenant.base, &tenant.token).await;
    for name in ["entra-compliant", "entra-legacy", "rfc"] {
        let mut opts = Options::new(&tenant.base, &tenant.token);
        opts.dialect = dialect(name).unwrap();
        opts.groups = true;
        opts.load_seconds = if name == "entra-compliant" { 1.0 } else { 0.0 };
        let report = scimitar_validate::validate(&opts, std::future::pending())
            .await
            .unwrap();
        let text = scimitar_validate::report::terminal(&report, false);
        let not_passed: Vec<&str> = report
            .tests
            .iter()
            .filter(|t| t.status != Status::Pass && !(t.id == "load" && opts.load_seconds == 0.0))
            .map(|t| t.id.as_str())
            .collect();
        assert!(not_passed.is_empty(), "{name}: {not_passed:?}\n{text}");
        assert_eq!(report.tests.len(), scimitar_validate::catalogue::TESTS.len());
        assert_eq!(report.exit_code(), 0);
        assert!(report.cleanup.left.is_empty(), "{:?}", report.cleanup);
        assert!(report.cleanup.deleted > 30, "{:?}", report.cleanup);
        assert_eq!(
            support::snapshot(&tenant.base, &tenant.token).await,
            before,
            "{name}: the tenant is as it was"
        );
    }
}
