//! The validator against endpoints with one deliberate defect each (a
//! defect-injecting proxy in front of a Scimitar tenant): it fails exactly
//! the tests that check that behaviour, and no other; and whatever
//! happens — tests failing, the run interrupted — the target holds
//! exactly what it held before.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

use std::collections::BTreeSet;

use scimitar_validate::Options;
use scimitar_validate::report::Status;
use support::proxy::{self, Defect};

/// Each defect, and the tests that must fail on it (no others may).
const TABLE: &[(Defect, &[&str])] = &[
    (Defect::None, &[]),
    // Test Connection's probe is a userName filter that matches nothing too.
    (Defect::NotFoundOnNoMatch, &["test-connection", "filter-user-none"]),
    (Defect::DuplicateAccepted, &["create-duplicate-user"]),
    (Defect::CaseSensitiveUserName, &["filter-user-case"]),
    (Defect::ActiveIgnored, &["patch-user-disable"]),
    // The SCIM Validator's Add Member, Entra's multi-member add, and the
    // preview's add-then-remove in one PATCH all add members.
    (
        Defect::MemberAddIgnored,
        &[
            "patch-group-add-member",
            "multi-member-patch",
            "preview-group-same-attribute",
        ],
    ),
    (Defect::SchemasWithoutTitle, &["schemas-discoverable"]),
    (Defect::StartIndexIgnored, &["user-pagination"]),
    (Defect::ManagerClearFails, &["patch-user-manager-remove"]),
    // Not a defect for Entra: the DELETE tests pass, with a note.
    (Defect::DeleteAnswers200, &[]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_defect_fails_exactly_its_tests() {
    let server = scimitar_testkit::TestServer::start().await;
    let tenant = server.tenant("acme").await;
    let bob = tenant.create_user("bob@example.com").await;
    tenant.create_group("Everyone", &[bob.as_str()]).await;
    let before = support::snapshot(&tenant.base, &tenant.token).await;
    let mut problems = Vec::new();
    for (defect, expected) in TABLE {
        let p = proxy::start(&tenant.base, *defect).await;
        let mut opts = Options::new(&p.url, &tenant.token);
        opts.groups = true;
        opts.load_seconds = 0.0;
        let report = scimitar_validate::validate(&opts, std::future::pending())
            .await
            .unwrap();
        let failed: BTreeSet<&str> = report
            .tests
            .iter()
            .filter(|t| t.status == Status::Fail)
            .map(|t| t.id.as_str())
            .collect();
        let expected: BTreeSet<&str> = expected.iter().copied().collect();
        if failed != expected {
            problems.push(format!(
                "{defect:?}: failed {failed:?}, expected {expected:?}\n{}",
                scimitar_validate::report::terminal(&report, false)
            ));
        }
        // Every failure says what Entra logs and what to change.
        for t in report.tests.iter().filter(|t| t.status == Status::Fail) {
            let f = t.failure.as_ref().unwrap();
            assert!(!f.entra_error.is_empty() && !f.fix.is_empty(), "{t:?}");
            assert!(
                f.exchange.is_some(),
                "{defect:?} {}: the request and answer are shown",
                t.id
            );
        }
        assert_eq!(report.exit_code(), if expected.is_empty() { 0 } else { 1 });
        if *defect == Defect::DeleteAnswers200 {
            let noted: Vec<&str> = report
                .tests
                .iter()
                .filter(|t| t.note.as_deref().is_some_and(|n| n.contains("answered 200")))
                .map(|t| t.id.as_str())
                .collect();
            assert_eq!(
                noted,
                [
                    "delete-user",
                    "preview-delete-user-twice",
                    "delete-group",
                    "preview-delete-group-twice"
                ]
            );
        }
        assert!(report.cleanup.left.is_empty(), "{defect:?}: {:?}", report.cleanup);
        assert_eq!(
            support::snapshot(&tenant.base, &tenant.token).await,
            before,
            "{defect:?}: the target holds what it held before"
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// What Entra would log for two of the defects (§3.7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_say_what_entra_logs() {
    let server = scimitar_testkit::TestServer::start().await;
    let tenant = server.tenant("acme").await;
    for (defect, test, code) in [
        (
            Defect::NotFoundOnNoMatch,
            "filter-user-none",
            "SystemForCrossDomainIdentityManagementServiceIncompatible",
        ),
        (
            Defect::DuplicateAccepted,
            "create-duplicate-user",
            "DuplicateTargetEntries",
        ),
        (
            Defect::ManagerClearFails,
            "patch-user-manager-remove",
            "InternalServerError",
        ),
    ] {
        let p = proxy::start(&tenant.base, defect).await;
        let mut opts = Options::new(&p.url, &tenant.token);
        opts.only = vec![test.to_string()];
        let report = scimitar_validate::validate(&opts, std::future::pending())
            .await
            .unwrap();
        assert_eq!(report.tests.len(), 1);
        let f = report.tests[0].failure.as_ref().expect("a failure");
        assert_eq!(f.entra_error, code, "{defect:?}");
        let x = f.exchange.as_ref().unwrap();
        assert!(x.status.is_some() && !x.url.is_empty());
    }
}

/// Interrupted in the middle (the cancel future is what Ctrl-C resolves):
/// the tests that ran are reported, the rest are not, and everything
/// created — the users of the pagination check among them — is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_run_leaves_the_target_as_it_was() {
    let server = scimitar_testkit::TestServer::start().await;
    let tenant = server.tenant("acme").await;
    tenant.create_user("carol@example.com").await;
    let before = support::snapshot(&tenant.base, &tenant.token).await;
    let p = proxy::start(&tenant.base, Defect::HangOnSecondPage).await;
    let mut opts = Options::new(&p.url, &tenant.token);
    opts.load_seconds = 0.0;
    let hung = p.hung.clone();
    let report = scimitar_validate::validate(&opts, async move { hung.notified().await })
        .await
        .unwrap();
    assert!(report.interrupted);
    assert_eq!(report.exit_code(), 130);
    let ran: Vec<&str> = report.tests.iter().map(|t| t.id.as_str()).collect();
    assert!(
        ran.contains(&"create-user") && !ran.contains(&"user-pagination"),
        "{ran:?}"
    );
    assert!(report.cleanup.deleted >= 6, "{:?}", report.cleanup);
    assert!(report.cleanup.left.is_empty(), "{:?}", report.cleanup);
    assert_eq!(support::snapshot(&tenant.base, &tenant.token).await, before);
}
