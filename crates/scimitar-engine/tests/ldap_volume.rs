//! Volume check of the LDAP source: 10,000 users and 200 groups holding
//! 20,000 memberships, loaded with `slapadd`, read once by content
//! synchronisation and once by paged searches. Asserts the counts and
//! prints the time and the memory (VmRSS before and after, VmHWM) of each
//! read; the numbers are reported, not asserted, since they depend on the
//! machine. Its own test binary, so that nothing else runs in the process
//! it measures (run one test at a time for clean numbers).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "support/slapd.rs"]
mod slapd;

use std::fmt::Write;
use std::time::Instant;

use scimitar_engine::job::{LdapSpec, Secret};
use scimitar_engine::model::Kind;
use scimitar_engine::source::Source;
use scimitar_engine::source::ldap::LdapSource;
use slapd::{ADMIN, BASE, Options, PASSWORD, Slapd, Sync};

const USERS: usize = 10_000;
const GROUPS: usize = 200;
const MEMBERS_PER_GROUP: usize = 100;

fn ldif() -> String {
    let mut out = String::with_capacity(USERS * 600);
    for i in 0..USERS {
        let manager = if i % 10 == 0 { 0 } else { i - i % 10 };
        writeln!(
            out,
            "dn: uid=user{i:05},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: user{i:05}\ncn: User {i}\nsn: Number{i}\ngivenName: User\ndisplayName: User Number {i}\nmail: user{i:05}@example.org\ntitle: Engineer {}\ntelephoneNumber: +1 555 {i:07}\nemployeeNumber: {i}\ndepartmentNumber: dept{}\nl: City {}\nmanager: uid=user{manager:05},ou=people,{BASE}\n",
            i % 7,
            i % 50,
            i % 30
        )
        .unwrap();
    }
    for g in 0..GROUPS {
        writeln!(
            out,
            "dn: cn=group{g:03},ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: group{g:03}\ndescription: Group {g}"
        )
        .unwrap();
        for m in 0..MEMBERS_PER_GROUP {
            // Spread every group over the whole directory.
            let u = (g * MEMBERS_PER_GROUP + m * 97) % USERS;
            writeln!(out, "member: uid=user{u:05},ou=people,{BASE}").unwrap();
        }
        out.push('\n');
    }
    out
}

/// VmHWM and VmRSS in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

async fn read_once(content_sync: bool) {
    let loading = Instant::now();
    let server = Slapd::start(Options {
        sync: Sync::SessionLog,
        ldif: ldif(),
        ..Options::default()
    });
    println!("slapadd and start: {:.2?}", loading.elapsed());
    let spec = LdapSpec {
        url: server.url.clone(),
        bind_dn: Some(ADMIN.into()),
        bind_password: Some(Secret::Inline(PASSWORD.into())),
        base_dn: BASE.into(),
        user_filter: "(objectClass=inetOrgPerson)".into(),
        group_filter: "(objectClass=groupOfNames)".into(),
        page_size: 500,
        disabled_attribute: None,
        disabled_values: vec![],
        full_scan_every: 12,
        content_sync,
        extra_attributes: vec![],
    };
    let (_, rss_before) = memory();
    let started = Instant::now();
    let delta = LdapSource::new(&spec).read(None).await.unwrap();
    let elapsed = started.elapsed();
    let (peak, rss_after) = memory();
    let users = delta.objects.iter().filter(|o| o.kind == Kind::User).count();
    let groups: Vec<_> = delta.objects.iter().filter(|o| o.kind == Kind::Group).collect();
    let memberships: usize = groups.iter().map(|g| g.members.len()).sum();
    let managers = delta.objects.iter().filter(|o| o.manager.is_some()).count();
    assert_eq!(
        (users, groups.len(), memberships, managers),
        (USERS, GROUPS, GROUPS * MEMBERS_PER_GROUP, USERS)
    );
    assert_eq!(
        delta.watermark["mode"],
        if content_sync { "content-sync" } else { "timestamp" }
    );
    // Run one test alone (`-- --exact NAME --nocapture`) for numbers that
    // are this read's only.
    println!(
        "content_sync={content_sync}: read {} objects in {elapsed:.2?}; VmRSS {} MiB before, {} MiB after (holding the delta); VmHWM {} MiB",
        delta.objects.len(),
        rss_before / 1024,
        rss_after / 1024,
        peak / 1024,
    );
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn ten_thousand_users_by_content_sync() {
    read_once(true).await;
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn ten_thousand_users_by_paged_search() {
    read_once(false).await;
}
