//! Fuzz targets for `scimitar-protocol`; see `docs/security.md`, "Fuzzing".
//!
//! The harnesses live in `harness.rs`, which has no dependency on libFuzzer
//! so that `crates/scimitar-protocol/tests/fuzz_regressions.rs` can include
//! it and replay the seeds and every reproducer in the normal test suite.

pub mod harness;
