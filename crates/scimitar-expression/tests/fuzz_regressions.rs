//! Replays the `expression` fuzz corpora kept in the repository through the
//! fuzz harness (`fuzz/src/expression.rs`, included below), so that what the
//! fuzzer found stays fixed without a nightly toolchain: the seed inputs in
//! `fuzz/seeds/expression/` and every reproducer in
//! `fuzz/regressions/expression/`. See docs/security.md, "Fuzzing".

// In tests a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "../../../fuzz/src/expression.rs"]
mod harness;

use std::path::PathBuf;

/// Every file in `fuzz/<kind>/expression/`, sorted by name.
fn inputs(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join("expression");
    // Without findings there is no regressions directory (git keeps no
    // empty directories): nothing to replay.
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

#[test]
fn expression_corpus() {
    let seeds = inputs("seeds");
    assert!(
        seeds.len() >= 100,
        "fuzz/seeds/expression has only {} inputs",
        seeds.len()
    );
    // The seeds are expressions that parse: a seed that stopped parsing
    // would fuzz nothing past the parser.
    for (name, data) in &seeds {
        let text = std::str::from_utf8(data).unwrap();
        if let Err(e) = scimitar_expression::parse(text) {
            panic!("seed {name} does not parse: {e}");
        }
    }
    for (name, data) in seeds.iter().chain(&inputs("regressions")) {
        if std::panic::catch_unwind(|| harness::expression(data)).is_err() {
            panic!(
                "fuzz input expression/{name} fails: {:?}",
                String::from_utf8_lossy(data)
            );
        }
    }
}
