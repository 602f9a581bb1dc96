//! Tells the tests whether OpenLDAP's `slapd` is installed: the LDAP
//! source's tests start a throwaway one, and without it they show as
//! ignored (with the reason) instead of failing or passing silently.

use std::path::Path;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(has_slapd)");
    // Installing slapd later must be noticed without a source change.
    println!("cargo:rerun-if-changed=/usr/sbin");
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rerun-if-changed=build.rs");
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|dir| dir.join("slapd").is_file()))
        .unwrap_or(false);
    if Path::new("/usr/sbin/slapd").is_file() || on_path {
        println!("cargo:rustc-cfg=has_slapd");
    }
}
