//! The invariants of ARCHITECTURE.md, checked on the source tree. Each
//! failure names the file and line and says what the rule is.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use scimitar_tidy::{rust_files, string_literals, workspace_root};

/// Tables that hold a tenant's data: every statement on them is scoped by
/// `tenant_id`.
const TENANT_TABLES: &[&str] = &[
    "resources",
    "members",
    "tokens",
    "extensions",
    "activity",
    "read_counts",
    "resource_counts",
    "console_token_creators",
    "engine_jobs",
    "engine_objects",
    "engine_log",
    "unique_values",
    "unique_backfill",
    "webhook_endpoints",
    "webhook_log",
    "webhook_failed",
    "console_invites",
];

/// Statements on tenant tables that are not scoped by tenant, by design.
/// Each names the text that identifies it and why it may.
const UNSCOPED: &[(&str, &str)] = &[
    (
        "WHERE t.hash = ",
        "token_by_hash: a request finds its tenant through its token",
    ),
    (
        "FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.id = ",
        "find_token: the command line names a token by its id alone",
    ),
    (
        "DELETE FROM activity WHERE time <",
        "activity retention runs across tenants",
    ),
    (
        "DELETE FROM read_counts WHERE hour <",
        "activity retention runs across tenants",
    ),
    (
        "DELETE FROM engine_log WHERE time <",
        "purge_engine_log: provisioning log retention runs across tenants",
    ),
    (
        "FROM engine_jobs j JOIN tenants t ON t.id = j.tenant_id WHERE j.status IN",
        "active_jobs: the scheduler looks at the jobs that are on in every tenant, in one query",
    ),
    (
        "SELECT tenant_id, kind FROM unique_backfill",
        "the unique-value indexes still to build are a job of the server, across tenants",
    ),
    (
        "FROM console_invites WHERE hash = ",
        "invite links: the link's holder finds its tenant through the code (like token_by_hash)",
    ),
    (
        "SELECT e.tenant_id, e.id FROM webhook_endpoints e WHERE e.enabled",
        "enabled_webhooks: the delivery workers look at the enabled endpoints of every tenant, in one query",
    ),
];

/// The SQL statements (string literals) of the store backends that read or
/// write a tenant table and do not constrain `tenant_id`.
fn unscoped_statements(files: &[(String, String)]) -> Vec<String> {
    let verbs = ["SELECT ", "INSERT ", "UPDATE ", "DELETE "];
    let mut bad = Vec::new();
    for (path, src) in files {
        for lit in string_literals(src) {
            let sql = lit.text.split_whitespace().collect::<Vec<_>>().join(" ");
            let touches = TENANT_TABLES.iter().any(|t| {
                ["FROM ", "INTO ", "UPDATE ", "JOIN "]
                    .iter()
                    .any(|kw| sql.contains(&format!("{kw}{t} ")) || sql.ends_with(&format!("{kw}{t}")))
            });
            if !touches || !verbs.iter().any(|v| sql.contains(v)) {
                continue;
            }
            let scoped = if sql.contains("INSERT ") {
                sql.contains("tenant_id")
            } else {
                // A condition on the tenant: `tenant_id = ?`, `= $1`, or the
                // outer row's (`m.tenant_id = r.tenant_id`).
                sql.match_indices("tenant_id").any(|(i, _)| {
                    sql.get(i + "tenant_id".len()..)
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                })
            };
            if !scoped && !UNSCOPED.iter().any(|(needle, _)| sql.contains(needle)) {
                bad.push(format!("{path}:{}: {sql}", lit.line));
            }
        }
    }
    bad
}

fn store_sources() -> Vec<(String, String)> {
    let root = workspace_root();
    let mut out = Vec::new();
    for krate in ["scimitar-store-sqlite", "scimitar-store-postgres"] {
        for f in rust_files(&root.join("crates").join(krate).join("src")) {
            let rel = f.strip_prefix(&root).unwrap_or(&f).display().to_string();
            out.push((rel, std::fs::read_to_string(&f).unwrap()));
        }
    }
    out
}

#[test]
fn every_statement_on_tenant_data_names_tenant_id() {
    let files = store_sources();
    assert!(files.len() > 10, "found the store sources");
    let bad = unscoped_statements(&files);
    assert!(
        bad.is_empty(),
        "statements on tenant tables without a `tenant_id` condition (ARCHITECTURE.md: every store query is \
         scoped by tenant; add the condition, or an entry with its reason to UNSCOPED):\n{}",
        bad.join("\n")
    );
}

/// The checker itself: an unscoped statement is caught, scoped ones and
/// the documented exceptions are not.
#[test]
fn the_tenant_check_catches_an_unscoped_statement() {
    let src = r#"
        exec(tx, "UPDATE tokens SET revoked = ? WHERE id = ?", p);
        exec(tx, "UPDATE tokens SET revoked = ? WHERE tenant_id = ? AND id = ?", p);
        c.prepare("SELECT m.member_id FROM members m WHERE m.tenant_id = r.tenant_id AND m.group_id = ?");
        c.prepare("SELECT x FROM tokens t JOIN tenants n ON n.id = t.tenant_id WHERE t.hash = ?");
        exec(tx, "INSERT INTO members (tenant_id, group_id) VALUES (?, ?)", p);
        exec(tx, "SELECT id FROM resources WHERE id = ? \
                  AND kind = ?", p);
        exec(tx, "DELETE FROM tenants WHERE id = ?", p);
    "#;
    let bad = unscoped_statements(&[("x.rs".into(), src.into())]);
    assert_eq!(bad.len(), 2, "{bad:#?}");
    assert!(bad[0].starts_with("x.rs:2: UPDATE tokens SET revoked = ? WHERE id = ?"));
    assert!(bad[1].contains("SELECT id FROM resources WHERE id = ? AND kind = ?"));
}

fn manifest(krate: &str) -> toml::Table {
    let path = workspace_root().join("crates").join(krate).join("Cargo.toml");
    std::fs::read_to_string(&path).unwrap().parse().unwrap()
}

fn deps(m: &toml::Table, section: &str) -> BTreeSet<String> {
    m.get(section)
        .and_then(toml::Value::as_table)
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

fn crates() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace_root().join("crates"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The pure crates (protocol, expressions): what they may depend on is a
/// short list, and their source does no I/O and reads no clock or
/// randomness.
#[test]
fn the_pure_crates_stay_pure() {
    let pure: [(&str, &[&str]); 2] = [
        (
            "scimitar-protocol",
            &["serde", "serde_json", "thiserror", "time", "unicode-normalization"],
        ),
        (
            "scimitar-expression",
            &[
                "base64",
                "fancy-regex",
                "serde_json",
                "thiserror",
                "time",
                "unicode-normalization",
            ],
        ),
    ];
    for (krate, allowed) in pure {
        let allowed: BTreeSet<String> = allowed.iter().map(|s| s.to_string()).collect();
        let extra: Vec<String> = deps(&manifest(krate), "dependencies")
            .difference(&allowed)
            .cloned()
            .collect();
        assert!(
            extra.is_empty(),
            "{krate} may depend on {allowed:?} only (ARCHITECTURE.md: it does no I/O); also found {extra:?}"
        );
        assert_pure_source(krate);
    }
}

fn assert_pure_source(krate: &str) {
    let forbidden = [
        "std::fs",
        "std::net",
        "std::process",
        "std::env",
        "tokio",
        "SystemTime",
        "Instant::now",
        "now_utc",
        "getrandom",
        "println!",
        "eprintln!",
    ];
    let root = workspace_root();
    let mut found = Vec::new();
    for f in rust_files(&root.join("crates").join(krate).join("src")) {
        let src = std::fs::read_to_string(&f).unwrap();
        for (n, line) in src.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for word in forbidden.iter().filter(|w| code.contains(*w)) {
                found.push(format!("{}:{}: {word}", f.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "I/O, clock or randomness in the protocol crate:\n{}",
        found.join("\n")
    );
}

/// Each crate depends only on the crates below it: no crate points back up
/// (ARCHITECTURE.md's layers).
#[test]
fn crates_depend_only_downwards() {
    let layers: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("scimitar-protocol", &[][..]),
        ("scimitar-expression", &[][..]),
        ("scimitar-auth", &[][..]),
        ("scimitar-egress", &[][..]),
        ("scimitar-tidy", &[][..]),
        ("scimitar-bench", &[][..]),
        ("scimitar-store", &["scimitar-protocol"][..]),
        (
            "scimitar-store-sqlite",
            &["scimitar-protocol", "scimitar-auth", "scimitar-store"][..],
        ),
        (
            "scimitar-store-postgres",
            &["scimitar-protocol", "scimitar-auth", "scimitar-store"][..],
        ),
        (
            "scimitar-store-conformance",
            &["scimitar-protocol", "scimitar-store"][..],
        ),
        (
            "scimitar-app",
            &[
                "scimitar-protocol",
                "scimitar-auth",
                "scimitar-store",
                "scimitar-webhooks",
            ][..],
        ),
        (
            "scimitar-engine",
            &[
                "scimitar-protocol",
                "scimitar-expression",
                "scimitar-auth",
                "scimitar-egress",
                "scimitar-store",
            ][..],
        ),
        ("scimitar-validate", &["scimitar-protocol", "scimitar-engine"][..]),
        (
            "scimitar-webhooks",
            &["scimitar-auth", "scimitar-egress", "scimitar-store"][..],
        ),
        (
            "scimitar-server",
            &["scimitar-protocol", "scimitar-auth", "scimitar-store", "scimitar-app"][..],
        ),
        (
            "scimitar-console",
            &["scimitar-protocol", "scimitar-auth", "scimitar-store", "scimitar-app"][..],
        ),
        (
            "scimitar-testkit",
            &[
                "scimitar-auth",
                "scimitar-store",
                "scimitar-server",
                "scimitar-store-sqlite",
                "scimitar-store-postgres",
                "scimitar-webhooks",
            ][..],
        ),
        (
            "scimitar",
            &[
                "scimitar-protocol",
                "scimitar-auth",
                "scimitar-store",
                "scimitar-app",
                "scimitar-engine",
                "scimitar-validate",
                "scimitar-expression",
                "scimitar-server",
                "scimitar-console",
                "scimitar-store-sqlite",
                "scimitar-store-postgres",
            ][..],
        ),
    ]);
    let mut problems = Vec::new();
    for krate in crates() {
        let Some(allowed) = layers.get(krate.as_str()) else {
            problems.push(format!(
                "{krate}: not in the layer table of this test (add it, with its place)"
            ));
            continue;
        };
        let m = manifest(&krate);
        for dep in deps(&m, "dependencies") {
            if dep.starts_with("scimitar") && !allowed.contains(&dep.as_str()) {
                problems.push(format!("{krate} depends on {dep}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "dependencies against the layering:\n{}",
        problems.join("\n")
    );
}

/// Every crate takes the workspace's lints (no `unsafe`, no `unwrap`, no
/// panics or unchecked indexing in production code), and no code silences
/// clippy's argument-count lint instead of taking a parameter struct.
#[test]
fn lints_apply_everywhere() {
    let root = workspace_root();
    let mut problems = Vec::new();
    for krate in crates() {
        let m = manifest(&krate);
        let inherits = m
            .get("lints")
            .and_then(|l| l.get("workspace"))
            .and_then(toml::Value::as_bool)
            == Some(true);
        if !inherits {
            problems.push(format!("crates/{krate}/Cargo.toml: needs [lints] workspace = true"));
        }
        for f in rust_files(&root.join("crates").join(&krate)) {
            let src = std::fs::read_to_string(&f).unwrap();
            for (n, line) in src.lines().enumerate() {
                // Spelt in two halves so that this file does not match itself.
                let silenced = concat!("allow(clippy::", "too_many_arguments)");
                let unsafe_allowed = concat!("allow(unsafe", "_code)");
                if line.contains(silenced) || line.contains(unsafe_allowed) {
                    problems.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// ARCHITECTURE.md's code map names every crate.
#[test]
fn the_code_map_names_every_crate() {
    let doc = std::fs::read_to_string(workspace_root().join("ARCHITECTURE.md")).unwrap();
    let missing: Vec<String> = crates()
        .into_iter()
        .filter(|c| !doc.contains(&format!("crates/{c}`")))
        .collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md's code map lacks {missing:?}");
    assert!(Path::new(&workspace_root().join("crates")).is_dir());
}

/// The container build's context leaves out build output, databases and
/// keys (`COPY . .` in deploy/Containerfile took target/, 5 GB, and a
/// `data/` with the database and `scimitar.key`), and keeps what the build
/// needs.
#[test]
fn the_container_context_leaves_out_data_and_build_output() {
    let ignore = std::fs::read_to_string(workspace_root().join(".dockerignore")).unwrap();
    let entries: BTreeSet<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for needed in ["target/", "data/", "*.db", "*.db-wal", "*.key", ".git/"] {
        assert!(entries.contains(needed), ".dockerignore lacks {needed}");
    }
    for kept in ["Cargo.toml", "Cargo.lock", "crates", "rust-toolchain.toml", ".cargo"] {
        assert!(
            !entries.iter().any(|e| e.trim_end_matches('/') == kept),
            ".dockerignore must not leave out {kept}"
        );
        assert!(workspace_root().join(kept).exists(), "{kept} is gone from the tree");
    }
    // A negation could bring a left-out path back.
    assert!(!entries.iter().any(|e| e.starts_with('!')), "no negated entries");
    let containerfile = std::fs::read_to_string(workspace_root().join("deploy/Containerfile")).unwrap();
    assert!(
        containerfile.contains("COPY . ."),
        "the Containerfile's context is the tree"
    );
}

/// The screenshots the README shows exist, and are the set `.ci/e2e`
/// keeps (`KEPT`, copied to `docs/screenshots/console-*.png`), so that a
/// run with `SCIMITAR_E2E_KEEP_SCREENSHOTS=1` refreshes every one of them.
#[test]
fn the_readme_screenshots_are_the_set_ci_keeps() {
    let root = workspace_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let shown: BTreeSet<String> = readme
        .split("](docs/screenshots/")
        .skip(1)
        .map(|rest| rest.split(')').next().unwrap().to_string())
        .filter(|name| name.starts_with("console-"))
        .collect();
    for name in &shown {
        assert!(
            root.join("docs/screenshots").join(name).is_file(),
            "README.md shows docs/screenshots/{name}, which does not exist"
        );
    }
    let e2e = std::fs::read_to_string(root.join(".ci/e2e")).unwrap();
    let kept_line = e2e
        .lines()
        .find_map(|l| l.strip_prefix("KEPT=\""))
        .expect(".ci/e2e has a KEPT=\"…\" line");
    let kept: BTreeSet<String> = kept_line
        .trim_end_matches('"')
        .split_whitespace()
        .map(|k| format!("console-{}.png", k.rsplit(':').next().unwrap()))
        .collect();
    assert_eq!(
        shown, kept,
        "the console screenshots README.md shows and those .ci/e2e keeps (KEPT) differ"
    );
}
