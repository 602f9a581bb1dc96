//! Marks whether the PostgreSQL tests can run, so that `cargo test` without
//! a database lists them as ignored with the reason, instead of passing
//! silently.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(scimitar_pg_tests)");
    println!("cargo::rerun-if-env-changed=SCIMITAR_TEST_POSTGRES_URL");
    if std::env::var("SCIMITAR_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty()) {
        println!("cargo::rustc-cfg=scimitar_pg_tests");
    }
}
