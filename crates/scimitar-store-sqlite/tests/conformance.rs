//! The storage conformance suite on SQLite, always run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//!
//! The suite's source is included by path: this crate's Cargo.toml has no
//! dev-dependency on `scimitar-store-conformance` (its other dependencies
//! cover the suite's). With that dev-dependency this file could `use` it.

#[macro_use]
#[path = "../../scimitar-store-conformance/src/lib.rs"]
mod conformance;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

// `store_conformance!` names `$crate::cases` and `$crate::CASES`.
use conformance::{CASES, cases};
use scimitar_store::Store;
use scimitar_store_sqlite::SqliteStore;

static N: AtomicUsize = AtomicUsize::new(0);

/// A fresh database file per test. Files of test processes that have
/// exited are removed on the way.
async fn sqlite_store() -> Option<Arc<dyn Store>> {
    let root = std::env::temp_dir().join("scimitar-store-conformance");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let pid = name.split('-').next().unwrap_or_default();
            if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = root.join(format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    let _ = std::fs::remove_dir_all(&dir);
    Some(Arc::new(
        SqliteStore::open(&dir.join("store.db")).expect("open SQLite store"),
    ))
}

store_conformance!(sqlite_store);
