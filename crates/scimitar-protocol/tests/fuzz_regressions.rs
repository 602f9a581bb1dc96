//! Replays the fuzz corpora kept in the repository through the fuzz
//! harnesses (`fuzz/src/harness.rs`, included below), so that what the
//! fuzzer found stays fixed without a nightly toolchain: the seed inputs in
//! `fuzz/seeds/<target>/` and every reproducer in
//! `fuzz/regressions/<target>/`. See docs/security.md, "Fuzzing".

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "../../../fuzz/src/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::path::PathBuf;

/// Every file in `fuzz/<kind>/<target>/`, sorted by name.
fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    // A target without findings has no directory in a git checkout (git
    // keeps no empty directories): nothing to replay.
    if kind == "regressions" && !dir.exists() {
        return Vec::new();
    }
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    out.sort();
    out
}

fn replay(target: &str, run: fn(&[u8]), min_seeds: usize) {
    let seeds = inputs("seeds", target);
    assert!(
        seeds.len() >= min_seeds,
        "fuzz/seeds/{target} has only {} inputs",
        seeds.len()
    );
    for (name, data) in seeds.iter().chain(&inputs("regressions", target)) {
        if std::panic::catch_unwind(|| run(data)).is_err() {
            panic!("fuzz input {target}/{name} fails: {:?}", String::from_utf8_lossy(data));
        }
    }
}

#[test]
fn filter_corpus() {
    replay("filter", harness::filter, 10);
}

#[test]
fn patch_path_corpus() {
    replay("patch_path", harness::patch_path, 5);
}

#[test]
fn patch_apply_corpus() {
    replay("patch_apply", harness::patch_apply, 20);
}

#[test]
fn request_body_corpus() {
    replay("request_body", harness::request_body, 10);
}

/// `attr[a or b].sub op v` is shown as `attr[(a or b) and sub op v]`, one
/// level deeper than written: at the depth limit it used to parse but its
/// Display form did not. Now the parser counts the level Display adds.
#[test]
fn value_path_sub_attribute_depth_is_checked_as_displayed() {
    use scimitar_protocol::ScimType;
    use scimitar_protocol::filter::parse_filter;
    let nested = |n: usize, inner: &str| format!("{}{inner}{}", "not (".repeat(n), ")".repeat(n));
    for inner in [
        r#"emails[type eq "work" or type eq "home"].value eq "x""#,
        r#"emails[type eq "work" and primary eq true].value pr"#,
    ] {
        let at_limit = parse_filter(&nested(31, inner)).unwrap_err();
        assert_eq!(at_limit.scim_type, Some(ScimType::TooMany), "{inner}");
        let below = parse_filter(&nested(30, inner)).unwrap();
        assert_eq!(parse_filter(&below.to_string()).unwrap(), below);
    }
    // A single inner comparison is shown without parentheses: no extra level.
    let single = nested(31, r#"emails[type eq "work"].value eq "x""#);
    let f = parse_filter(&single).unwrap();
    assert_eq!(parse_filter(&f.to_string()).unwrap(), f);
}
