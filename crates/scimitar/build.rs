//! Tells the tests what they can run, so that those that cannot are
//! reported as ignored (with the reason) instead of failing or passing
//! silently: whether OpenLDAP's `slapd` is installed (`has_slapd`: the
//! engine's end-to-end tests start a throwaway one), and whether
//! `SCIMITAR_TEST_POSTGRES_URL` names a PostgreSQL server
//! (`scimitar_pg_tests`: the multi-node, crash and connection-error tests).

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(has_slapd)");
    println!("cargo::rustc-check-cfg=cfg(scimitar_pg_tests)");
    // Installing slapd later must be noticed without a source change.
    println!("cargo::rerun-if-changed=/usr/sbin");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=SCIMITAR_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-changed=build.rs");
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|dir| dir.join("slapd").is_file()))
        .unwrap_or(false);
    if Path::new("/usr/sbin/slapd").is_file() || on_path {
        println!("cargo::rustc-cfg=has_slapd");
    }
    if std::env::var("SCIMITAR_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty()) {
        println!("cargo::rustc-cfg=scimitar_pg_tests");
    }
}
