//! The LDAP source against a real OpenLDAP (`support/slapd.rs`): initial
//! reads, content synchronisation with and without a session log, the
//! `modifyTimestamp` fallback with its periodic UUID scan, TLS, and the
//! errors an administrator sees.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "support/slapd.rs"]
mod slapd;

use std::collections::BTreeSet;
use std::time::Duration;

use scimitar_engine::job::{LdapSpec, Secret};
use scimitar_engine::model::{Delta, Kind, SourceObject};
use scimitar_engine::source::Source;
use scimitar_engine::source::ldap::LdapSource;
use serde_json::{Value, json};
use slapd::{ADMIN, BASE, Options, PASSWORD, Slapd, Sync};

/// Five users and two groups. Timestamps are old, so that a
/// `modifyTimestamp` search only finds what a test changes. Bob's manager
/// and a member are written in odd case and spacing; Alice has a password
/// and a binary photo, neither of which may be read.
const FIXTURE: &str = "dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice Archer
sn: Archer
givenName: Alice
mail: alice@example.org
title: Engineer
employeeType: active
userPassword: {SSHA}notreallyahash
jpegPhoto:: /9j/4AAQSkZJRgABAQ==
modifyTimestamp: 20200101000000Z
createTimestamp: 20200101000000Z

dn: uid=bob,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: bob
cn: Bob Baker
sn: Baker
mail: bob@example.org
manager: UID=Alice, OU=People,DC=Example,DC=Org
modifyTimestamp: 20200101000000Z
createTimestamp: 20200101000000Z

dn: uid=carol,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: carol
cn: Carol Cole
sn: Cole
employeeType: Disabled
modifyTimestamp: 20200101000000Z
createTimestamp: 20200101000000Z

dn: uid=dave,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: dave
cn: Dave Dunn
sn: Dunn
mail: dave@example.org
mail: d.dunn@example.org
modifyTimestamp: 20200101000000Z
createTimestamp: 20200101000000Z

dn: uid=Eve,ou=People,dc=example,dc=org
objectClass: inetOrgPerson
uid: Eve
cn: Eve Evans
sn: Evans
modifyTimestamp: 20200101000000Z
createTimestamp: 20200101000000Z

dn: cn=engineering,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: engineering
member: uid=alice,ou=people,dc=example,dc=org
member: uid=bob , ou=people , dc=example , dc=org
modifyTimestamp: 20200101000000Z
createTimestamp: 20200101000000Z

dn: cn=admins,ou=groups,dc=example,dc=org
objectClass: groupOfUniqueNames
cn: admins
uniqueMember: uid=carol,ou=people,dc=example,dc=org#'0101'B
uniqueMember: uid=Eve,ou=People,dc=example,dc=org
modifyTimestamp: 20200101000000Z
createTimestamp: 20200101000000Z
";

/// A bind account other than the root DN, which limits apply to.
const READER: &str = "dn: cn=reader,dc=example,dc=org
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: readerpw
";

fn user(uid: &str) -> String {
    format!("uid={uid},ou=people,{BASE}")
}

fn group(cn: &str) -> String {
    format!("cn={cn},ou=groups,{BASE}")
}

fn spec(server: &Slapd) -> LdapSpec {
    LdapSpec {
        url: server.url.clone(),
        bind_dn: Some(ADMIN.into()),
        bind_password: Some(Secret::Inline(PASSWORD.into())),
        base_dn: BASE.into(),
        user_filter: "(objectClass=inetOrgPerson)".into(),
        group_filter: "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))".into(),
        page_size: 500,
        disabled_attribute: Some("employeeType".into()),
        disabled_values: vec!["disabled".into()],
        full_scan_every: 12,
        content_sync: true,
        extra_attributes: vec![],
    }
}

fn start(sync: Sync) -> Slapd {
    Slapd::start(Options {
        sync,
        ldif: FIXTURE.into(),
        ..Options::default()
    })
}

fn by_ref<'a>(delta: &'a Delta, dn: &str) -> &'a SourceObject {
    let want = dn.to_lowercase();
    delta
        .objects
        .iter()
        .find(|o| o.source_ref == want)
        .unwrap_or_else(|| panic!("{dn} not in {:?}", refs(delta)))
}

fn refs(delta: &Delta) -> BTreeSet<String> {
    delta.objects.iter().map(|o| o.source_ref.clone()).collect()
}

fn anchors(delta: &Delta, kind: Kind) -> BTreeSet<String> {
    delta
        .objects
        .iter()
        .filter(|o| o.kind == kind)
        .map(|o| o.anchor.clone())
        .collect()
}

/// What an initial read of the fixture returns, whichever way it was read.
fn assert_fixture(delta: &Delta, server: &Slapd) {
    assert!(delta.full, "an initial read is a full snapshot");
    assert!(delta.deleted.is_empty() && delta.present.is_none());
    let users: Vec<_> = delta.objects.iter().filter(|o| o.kind == Kind::User).collect();
    let groups: Vec<_> = delta.objects.iter().filter(|o| o.kind == Kind::Group).collect();
    assert_eq!((users.len(), groups.len()), (5, 2), "{:?}", refs(delta));

    let alice = by_ref(delta, &user("alice"));
    assert_eq!(alice.kind, Kind::User);
    assert_eq!(alice.anchor, server.uuid(&user("alice")));
    assert_eq!(alice.attrs["entryUUID"], json!(alice.anchor));
    assert_eq!(alice.attrs["givenName"], json!("Alice"));
    assert_eq!(alice.attrs["sn"], json!("Archer"));
    assert_eq!(alice.attrs["mail"], json!("alice@example.org"));
    assert_eq!(alice.attrs["dn"], json!(user("alice")));
    assert_eq!(alice.attrs["modifyTimestamp"], json!("20200101000000Z"));
    assert_eq!(alice.attrs["objectClass"], json!("inetOrgPerson"));
    assert!(!alice.attrs.contains_key("userPassword"), "passwords are never read");
    assert!(!alice.attrs.contains_key("jpegPhoto"), "binary attributes are left out");
    assert_eq!((alice.manager.as_deref(), alice.disabled), (None, false));

    let bob = by_ref(delta, &user("bob"));
    assert_eq!(
        bob.manager.as_deref(),
        Some(user("alice").as_str()),
        "normalised manager DN"
    );
    assert!(!bob.attrs.contains_key("givenName"));

    assert!(by_ref(delta, &user("carol")).disabled, "employeeType: Disabled");
    assert_eq!(
        by_ref(delta, &user("dave")).attrs["mail"],
        json!(["dave@example.org", "d.dunn@example.org"]),
        "several values are an array"
    );
    // The server keeps the RDN's case as added (and the parent's as stored).
    let eve = by_ref(delta, "uid=Eve,ou=People,dc=example,dc=org");
    assert_eq!(eve.source_ref, "uid=eve,ou=people,dc=example,dc=org");
    assert_eq!(eve.attrs["dn"], json!("uid=Eve,ou=people,dc=example,dc=org"));

    let engineering = by_ref(delta, &group("engineering"));
    assert_eq!(engineering.kind, Kind::Group);
    assert_eq!(engineering.members, vec![user("alice"), user("bob")]);
    assert_eq!(engineering.attrs["cn"], json!("engineering"));
    let admins = by_ref(delta, &group("admins"));
    assert_eq!(
        admins.members,
        vec![user("carol"), "uid=eve,ou=people,dc=example,dc=org".to_string()],
        "uniqueMember, without the optional UID"
    );
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn initial_read_returns_every_entry_whichever_way_it_is_read() {
    // (server, content_sync, page size, the watermark's mode)
    for (sync, content_sync, page_size, mode) in [
        (Sync::SessionLog, true, 500, "content-sync"),
        (Sync::NoSessionLog, true, 500, "content-sync"),
        (Sync::SessionLog, false, 2, "timestamp"),
        (Sync::Off, true, 2, "timestamp"),
        (Sync::Off, true, 1, "timestamp"),
    ] {
        let server = start(sync);
        let mut spec = spec(&server);
        spec.content_sync = content_sync;
        spec.page_size = page_size;
        let delta = LdapSource::new(&spec).read(None).await.unwrap();
        assert_fixture(&delta, &server);
        assert_eq!(
            delta.watermark["mode"],
            json!(mode),
            "{sync:?} content_sync={content_sync}"
        );
    }
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn anonymous_reads_without_bind_dn() {
    let server = start(Sync::SessionLog);
    let mut spec = spec(&server);
    spec.bind_dn = None;
    spec.bind_password = None;
    let delta = LdapSource::new(&spec).read(None).await.unwrap();
    assert_fixture(&delta, &server);
}

/// Says whether a read reports `anchor` as gone: named in `deleted`, or
/// missing from `present`.
fn reports_gone(delta: &Delta, kind: Kind, anchor: &str) -> bool {
    let named = delta.deleted.iter().any(|(k, a)| *k == kind && a == anchor);
    let absent = delta
        .present
        .as_ref()
        .is_some_and(|p| !p.iter().any(|(k, a)| *k == kind && a == anchor));
    named || absent
}

fn assert_present_is_complete(delta: &Delta, expected: &BTreeSet<(Kind, String)>) {
    if let Some(present) = &delta.present {
        let got: BTreeSet<(Kind, String)> = present.iter().cloned().collect();
        assert_eq!(&got, expected, "present must list every anchor the source holds");
    }
}

/// With a session log, slapd names every entry changed since the cookie that
/// does not match a search as "deleted" from it (alice, modified, for the
/// group search): harmless, since the engine knows no group with alice's
/// anchor. What must never be named is an object of that kind that exists.
fn assert_nothing_known_deleted(delta: &Delta, known: &BTreeSet<(Kind, String)>) {
    for d in &delta.deleted {
        assert!(!known.contains(d), "{d:?} exists but is reported deleted");
    }
}

fn assert_empty(delta: &Delta, what: &str) {
    assert!(!delta.full, "{what}: not a full read");
    assert!(delta.objects.is_empty(), "{what}: {:?}", refs(delta));
    assert!(delta.deleted.is_empty(), "{what}: {:?}", delta.deleted);
}

/// Every step of an incremental life: the shared scenario of content
/// synchronisation (with and without a session log) and the fallback.
/// `settle` runs between a change and the read that must see it.
async fn incremental_scenario(server: &Slapd, spec: LdapSpec, settle: Duration, expect_mode: &str) {
    let mut source = LdapSource::new(&spec);
    let first = source.read(None).await.unwrap();
    assert_fixture(&first, server);
    assert_eq!(first.watermark["mode"], json!(expect_mode));
    let mut all: BTreeSet<(Kind, String)> = first.objects.iter().map(|o| (o.kind, o.anchor.clone())).collect();
    let mut mark = first.watermark;

    // Nothing changed.
    let delta = source.read(Some(&mark)).await.unwrap();
    assert_empty(&delta, "nothing changed");
    assert_present_is_complete(&delta, &all);
    mark = delta.watermark;

    // A modified user comes back alone, with its new attributes.
    server.modify(&format!(
        "dn: {}\nchangetype: modify\nreplace: title\ntitle: Principal\n",
        user("alice")
    ));
    tokio::time::sleep(settle).await;
    let delta = source.read(Some(&mark)).await.unwrap();
    assert!(!delta.full);
    assert_eq!(refs(&delta), BTreeSet::from([user("alice")]));
    assert_eq!(by_ref(&delta, &user("alice")).attrs["title"], json!("Principal"));
    assert_nothing_known_deleted(&delta, &all);
    assert_present_is_complete(&delta, &all);
    mark = delta.watermark;

    // An added user.
    server.modify(&format!(
        "dn: {}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: frank\ncn: Frank Fox\nsn: Fox\nmanager: {}\n",
        user("frank"),
        user("bob")
    ));
    let frank = server.uuid(&user("frank"));
    all.insert((Kind::User, frank.clone()));
    tokio::time::sleep(settle).await;
    let delta = source.read(Some(&mark)).await.unwrap();
    assert_eq!(refs(&delta), BTreeSet::from([user("frank")]));
    let f = by_ref(&delta, &user("frank"));
    assert_eq!(
        (f.anchor.as_str(), f.manager.as_deref()),
        (frank.as_str(), Some(user("bob").as_str()))
    );
    assert_nothing_known_deleted(&delta, &all);
    assert_present_is_complete(&delta, &all);
    mark = delta.watermark;

    // A deleted user (the group that names it keeps the dangling member:
    // this server has no referential integrity overlay).
    let dave = server.uuid(&user("dave"));
    server.delete(&user("dave"));
    all.remove(&(Kind::User, dave.clone()));
    tokio::time::sleep(settle).await;
    let delta = source.read(Some(&mark)).await.unwrap();
    assert!(delta.objects.is_empty(), "{:?}", refs(&delta));
    assert!(
        reports_gone(&delta, Kind::User, &dave),
        "dave's deletion is reported: {delta:?}"
    );
    assert_nothing_known_deleted(&delta, &all);
    assert_present_is_complete(&delta, &all);
    mark = delta.watermark;

    // A member added and another removed: the group comes back with its
    // whole new member list.
    server.modify(&format!(
        "dn: {}\nchangetype: modify\nadd: member\nmember: {}\n-\ndelete: member\nmember: {}\n",
        group("engineering"),
        user("frank"),
        user("bob")
    ));
    tokio::time::sleep(settle).await;
    let delta = source.read(Some(&mark)).await.unwrap();
    assert_eq!(refs(&delta), BTreeSet::from([group("engineering")]));
    assert_eq!(
        by_ref(&delta, &group("engineering")).members,
        vec![user("alice"), user("frank")]
    );
    assert_nothing_known_deleted(&delta, &all);
    assert_present_is_complete(&delta, &all);
    mark = delta.watermark;

    // The watermark survives a restart: stored as text, read back by a new
    // source, it continues where the old one stopped.
    let stored = serde_json::to_string(&mark).unwrap();
    let restored: Value = serde_json::from_str(&stored).unwrap();
    let mut after_restart = LdapSource::new(&spec);
    let delta = after_restart.read(Some(&restored)).await.unwrap();
    assert_empty(&delta, "after a restart, nothing changed");
    assert_present_is_complete(&delta, &all);
    assert_eq!(delta.watermark["mode"], json!(expect_mode));
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn content_sync_with_a_session_log_names_deletions() {
    let server = start(Sync::SessionLog);
    incremental_scenario(&server, spec(&server), Duration::ZERO, "content-sync").await;
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn content_sync_without_a_session_log_lists_present_entries() {
    let server = start(Sync::NoSessionLog);
    incremental_scenario(&server, spec(&server), Duration::ZERO, "content-sync").await;
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn a_session_log_deletion_is_named_not_implied() {
    let server = start(Sync::SessionLog);
    let mut source = LdapSource::new(&spec(&server));
    let mark = source.read(None).await.unwrap().watermark;
    let carol = server.uuid(&user("carol"));
    server.delete(&user("carol"));
    let delta = source.read(Some(&mark)).await.unwrap();
    assert!(
        delta.deleted.contains(&(Kind::User, carol.clone())),
        "{:?}",
        delta.deleted
    );
    // The session log cannot tell which search a deleted entry matched:
    // slapd names it to both, and the engine ignores anchors it does not know.
    assert!(delta.deleted.iter().all(|(_, a)| *a == carol), "{:?}", delta.deleted);
    assert!(
        delta.present.is_none(),
        "the session log names deletions; no present set is needed"
    );
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn without_a_session_log_a_deletion_is_implied_by_present() {
    let server = start(Sync::NoSessionLog);
    let mut source = LdapSource::new(&spec(&server));
    let first = source.read(None).await.unwrap();
    let carol = server.uuid(&user("carol"));
    server.delete(&user("carol"));
    let delta = source.read(Some(&first.watermark)).await.unwrap();
    assert!(delta.deleted.is_empty(), "{:?}", delta.deleted);
    let present: BTreeSet<(Kind, String)> = delta.present.clone().expect("a present set").into_iter().collect();
    let expected: BTreeSet<(Kind, String)> = first
        .objects
        .iter()
        .map(|o| (o.kind, o.anchor.clone()))
        .filter(|(_, a)| *a != carol)
        .collect();
    assert_eq!(present, expected);
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn a_present_phase_for_one_type_lists_the_other_type_too() {
    // Users from an older cookie (a present phase: something changed since),
    // groups from a current one (nothing changed: a delete phase naming
    // nothing). `present` speaks for both types, so it must hold the groups
    // too, or every group would look deleted.
    let server = start(Sync::NoSessionLog);
    let mut source = LdapSource::new(&spec(&server));
    let first = source.read(None).await.unwrap();
    server.modify(&format!(
        "dn: {}\nchangetype: modify\nreplace: title\ntitle: Chief\n",
        user("bob")
    ));
    let second = source.read(Some(&first.watermark)).await.unwrap();
    let mut mixed = second.watermark.clone();
    mixed["users"] = first.watermark["users"].clone();
    let delta = source.read(Some(&mixed)).await.unwrap();
    assert_eq!(refs(&delta), BTreeSet::from([user("bob")]));
    let present: BTreeSet<(Kind, String)> = delta.present.clone().expect("a present set").into_iter().collect();
    let all: BTreeSet<(Kind, String)> = first.objects.iter().map(|o| (o.kind, o.anchor.clone())).collect();
    assert_eq!(present, all);
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn a_cookie_the_server_cannot_continue_from_reads_everything() {
    // A watermark from before a restore: its cookie is newer than anything
    // the server has. slapd refuses it; the source starts over.
    let server = start(Sync::SessionLog);
    let mut source = LdapSource::new(&spec(&server));
    let mut mark = source.read(None).await.unwrap().watermark;
    let future: String = b"rid=000,csn=20991231000000.000000Z#000000#000#000000"
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    mark["users"] = json!(future);
    let delta = source.read(Some(&mark)).await.unwrap();
    assert_fixture(&delta, &server);
    assert_ne!(delta.watermark["users"], json!(future));
    let again = source.read(Some(&delta.watermark)).await.unwrap();
    assert_empty(&again, "continuing from the new cookies");
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn timestamp_fallback_with_the_periodic_uuid_scan() {
    // Without syncprov. A change must be older than the overlap before the
    // read that is meant to see it alone (else the next read sees it again).
    let server = start(Sync::Off);
    let settle = scimitar_engine::source::ldap::TIMESTAMP_OVERLAP + Duration::from_millis(1100);
    // Every incremental read scans, so the scenario checks `present` each time.
    let mut every = spec(&server);
    every.full_scan_every = 1;
    incremental_scenario(&server, every, settle, "timestamp").await;
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn timestamp_fallback_scans_every_nth_cycle() {
    let server = start(Sync::Off);
    let settle = scimitar_engine::source::ldap::TIMESTAMP_OVERLAP + Duration::from_millis(1100);
    let mut spec = spec(&server);
    spec.full_scan_every = 3;
    let mut source = LdapSource::new(&spec);
    let first = source.read(None).await.unwrap();
    assert_eq!(first.watermark["cycle"], json!(0));
    let eve = server.uuid("uid=Eve,ou=People,dc=example,dc=org");
    server.delete("uid=Eve,ou=People,dc=example,dc=org");
    tokio::time::sleep(settle).await;
    let remaining: BTreeSet<(Kind, String)> = first
        .objects
        .iter()
        .map(|o| (o.kind, o.anchor.clone()))
        .filter(|(_, a)| *a != eve)
        .collect();
    let mut mark = first.watermark;
    // Cycles 1 and 2 cannot see a deletion; cycle 3 scans and does.
    for cycle in 1..=3 {
        let delta = source.read(Some(&mark)).await.unwrap();
        assert_eq!(delta.watermark["cycle"], json!(cycle));
        assert!(delta.objects.is_empty(), "cycle {cycle}: {:?}", refs(&delta));
        assert_eq!(delta.present.is_some(), cycle == 3, "cycle {cycle}");
        assert_present_is_complete(&delta, &remaining);
        assert_eq!(reports_gone(&delta, Kind::User, &eve), cycle == 3);
        mark = delta.watermark;
    }
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn a_watermark_of_the_other_mode_or_another_search_reads_everything() {
    let server = start(Sync::SessionLog);
    let sync_spec = spec(&server);
    let mut paged_spec = spec(&server);
    paged_spec.content_sync = false;
    let sync_mark = LdapSource::new(&sync_spec).read(None).await.unwrap().watermark;
    let paged_mark = LdapSource::new(&paged_spec).read(None).await.unwrap().watermark;
    let mut narrower = spec(&server);
    narrower.user_filter = "(uid=a*)".into();
    for (spec, mark) in [
        (&paged_spec, &sync_mark),
        (&sync_spec, &paged_mark),
        (&narrower, &sync_mark),
        (&sync_spec, &json!({"mode": "content-sync", "garbage": true})),
        (&sync_spec, &json!("not an object")),
    ] {
        let delta = LdapSource::new(spec).read(Some(mark)).await.unwrap();
        assert!(delta.full, "{mark}");
        assert!(!delta.objects.is_empty());
    }
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn errors_an_administrator_understands() {
    let server = start(Sync::SessionLog);
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    type Change = Box<dyn Fn(&mut LdapSpec)>;
    let cases: Vec<(&str, Change, String)> = vec![
        (
            "wrong password",
            Box::new(|s| s.bind_password = Some(Secret::Inline("wrong".into()))),
            format!("invalid credentials for {ADMIN}"),
        ),
        (
            "unknown bind DN",
            Box::new(|s| s.bind_dn = Some("cn=nobody,dc=example,dc=org".into())),
            "invalid credentials for cn=nobody,dc=example,dc=org".into(),
        ),
        (
            "unreachable port",
            Box::new(move |s| s.url = format!("ldap://127.0.0.1:{closed}")),
            format!("cannot connect to the LDAP server at 127.0.0.1:{closed}: Connection refused"),
        ),
        (
            "not an LDAP URL",
            Box::new(|s| s.url = "http://127.0.0.1:1".into()),
            "the url http://127.0.0.1:1 is not an LDAP URL".into(),
        ),
        (
            "bad base DN (content sync)",
            Box::new(|s| s.base_dn = "ou=nowhere,dc=example,dc=org".into()),
            format!(
                "the base DN ou=nowhere,dc=example,dc=org does not exist on the LDAP server at 127.0.0.1:{} (noSuchObject)",
                server.port
            ),
        ),
        (
            "bad base DN (paged)",
            Box::new(|s| {
                s.base_dn = "ou=nowhere,dc=example,dc=org".into();
                s.content_sync = false;
            }),
            "the base DN ou=nowhere,dc=example,dc=org does not exist".into(),
        ),
        (
            "base DN that is not a DN",
            Box::new(|s| s.base_dn = "not a dn".into()),
            "the base DN not a dn is not a valid DN (invalidDNSyntax)".into(),
        ),
        (
            "bad user filter",
            Box::new(|s| s.user_filter = "(objectClass=inetOrgPerson".into()),
            "the user filter (objectClass=inetOrgPerson is not a valid LDAP filter".into(),
        ),
        (
            "bad group filter (paged)",
            Box::new(|s| {
                s.group_filter = "(&(cn=a)(".into();
                s.content_sync = false;
            }),
            "the group filter (&(cn=a)( is not a valid LDAP filter".into(),
        ),
        (
            "bind DN without a password",
            Box::new(|s| s.bind_password = None),
            format!("bind_dn is {ADMIN} but no bind password is given"),
        ),
        (
            "password from an unset variable",
            Box::new(|s| s.bind_password = Some(Secret::Env("SCIMITAR_TEST_SURELY_UNSET".into()))),
            "the LDAP bind password: the environment variable SCIMITAR_TEST_SURELY_UNSET is not set".into(),
        ),
    ];
    for (what, change, want) in cases {
        let mut spec = spec(&server);
        change(&mut spec);
        let err = LdapSource::new(&spec).read(None).await.expect_err(what);
        assert!(
            err.message.starts_with(&want),
            "{what}: got {:?}, want {want:?}…",
            err.message
        );
    }
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn a_size_limit_is_explained() {
    // A bind account (not the root DN) under a size limit smaller than the
    // directory, as a default OpenLDAP would have it (500).
    let reader = format!("{FIXTURE}\n{READER}");
    for content_sync in [true, false] {
        let server = Slapd::start(Options {
            sync: Sync::NoSessionLog,
            ldif: reader.clone(),
            database_config: "limits dn.exact=\"cn=reader,dc=example,dc=org\" size=3\n".into(),
            ..Options::default()
        });
        let mut spec = spec(&server);
        spec.bind_dn = Some(format!("cn=reader,{BASE}"));
        spec.bind_password = Some(Secret::Inline("readerpw".into()));
        spec.content_sync = content_sync;
        spec.page_size = 1000;
        let err = LdapSource::new(&spec).read(None).await.expect_err("size limit");
        assert!(
            err.message
                .contains("stopped the user search at its size limit (sizeLimitExceeded)"),
            "content_sync={content_sync}: {}",
            err.message
        );
    }
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn paged_searches_read_past_a_size_limit() {
    // A bind account may read 3 entries per search but any number by pages
    // of up to 3: only a paged search reads all 5 users.
    let server = Slapd::start(Options {
        sync: Sync::Off,
        ldif: format!("{FIXTURE}\n{READER}"),
        database_config:
            "limits dn.exact=\"cn=reader,dc=example,dc=org\" size.soft=3 size.hard=3 size.pr=3 size.prtotal=unlimited\n"
                .into(),
        ..Options::default()
    });
    let mut spec = spec(&server);
    spec.bind_dn = Some(format!("cn=reader,{BASE}"));
    spec.bind_password = Some(Secret::Inline("readerpw".into()));
    for page_size in [1, 2, 3] {
        spec.page_size = page_size;
        let delta = LdapSource::new(&spec).read(None).await.unwrap();
        assert_fixture(&delta, &server);
    }
}

#[tokio::test]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn ldaps_needs_a_trusted_certificate() {
    // The child half: started by the parent below with SSL_CERT_FILE naming
    // the test CA (the environment of this process cannot be changed safely).
    if let Ok(url) = std::env::var("SCIMITAR_TEST_LDAPS_URL") {
        let mut spec = LdapSpec { url, ..spec_for_url() };
        spec.content_sync = true;
        let delta = LdapSource::new(&spec).read(None).await.unwrap();
        assert_eq!(anchors(&delta, Kind::User).len(), 5);
        return;
    }
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "scimitar test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let server = Slapd::start(Options {
        ldif: FIXTURE.into(),
        tls: Some((cert.pem(), key.serialize_pem())),
        ..Options::default()
    });
    assert!(server.url.starts_with("ldaps://"));

    // Not trusted: a clear error.
    let mut untrusted = spec(&server);
    untrusted.url = server.url.clone();
    let err = LdapSource::new(&untrusted)
        .read(None)
        .await
        .expect_err("untrusted certificate");
    assert!(
        err.message.starts_with(&format!(
            "the TLS handshake with the LDAP server at 127.0.0.1:{} failed",
            server.port
        )) && err.message.contains("UnknownIssuer"),
        "{}",
        err.message
    );

    // Trusted through SSL_CERT_FILE: reads.
    let ca_file = server.dir().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "ldaps_needs_a_trusted_certificate",
            "--nocapture",
            "--include-ignored",
        ])
        .env("SSL_CERT_FILE", &ca_file)
        .env("SCIMITAR_TEST_LDAPS_URL", &server.url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spec_for_url() -> LdapSpec {
    LdapSpec {
        url: String::new(),
        bind_dn: Some(ADMIN.into()),
        bind_password: Some(Secret::Inline(PASSWORD.into())),
        base_dn: BASE.into(),
        user_filter: "(objectClass=inetOrgPerson)".into(),
        group_filter: "(objectClass=groupOfNames)".into(),
        page_size: 500,
        disabled_attribute: None,
        disabled_values: vec![],
        full_scan_every: 12,
        content_sync: true,
        extra_attributes: vec![],
    }
}
