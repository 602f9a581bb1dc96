//! Fuzz targets for `scimitar-protocol` and `scimitar-expression`; see
//! `docs/security.md`, "Fuzzing".
//!
//! The harnesses live in `harness.rs` (protocol) and `expression.rs`, which
//! have no dependency on libFuzzer so that each crate's
//! `tests/fuzz_regressions.rs` can include its harness and replay the seeds
//! and every reproducer in the normal test suite.

pub mod expression;
pub mod harness;
