//! Several `scimitar serve` processes (the real binary) on one PostgreSQL
//! database, driven concurrently; export/import between backends; the
//! retention lease. The PostgreSQL parts need `SCIMITAR_TEST_POSTGRES_URL`
//! (e.g. `postgres://postgres@127.0.0.1:5432/scimitar_test`) when built
//! and are reported as ignored without it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use scimitar_store::lease::Leases;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_scimitar");
const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// Every node's public URL, as behind one load balancer.
const PUBLIC_URL: &str = "https://scim.example.test";

/// The PostgreSQL server of the tests that need one; they are ignored
/// (build.rs) unless `SCIMITAR_TEST_POSTGRES_URL` was set at build time.
fn postgres_url() -> String {
    match std::env::var("SCIMITAR_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!("SCIMITAR_TEST_POSTGRES_URL was set when these tests were built, and is not set now"),
    }
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "scimitar-multinode-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The token-hashing key file shared by every process of this test run, as
/// every node of a cluster must share one (and none is left in the
/// working directory).
fn key_file() -> PathBuf {
    static KEY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    KEY.get_or_init(|| tempdir("key").join("scimitar.key")).clone()
}

/// `scimitar` with the test's environment.
fn scimitar() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("SCIMITAR_KEY_FILE", key_file())
        .env_remove("SCIMITAR_PUBLIC_URL")
        .env_remove("SCIMITAR_CONFIG")
        .env_remove("SCIMITAR_DATABASE_URL");
    cmd
}

/// Runs the CLI against `db`; returns stdout, failing the test on error.
fn cli(db: &str, args: &[&str]) -> String {
    let out = scimitar()
        .arg("--database")
        .arg(db)
        .args(args)
        .output()
        .expect("run scimitar");
    assert!(
        out.status.success(),
        "scimitar {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn cli_json(db: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(cli(db, &all).trim()).expect("JSON output")
}

/// A `scimitar serve` process, killed when dropped.
struct Node {
    child: Child,
    url: String,
}

impl Node {
    fn start(db: &str) -> Node {
        let mut child = scimitar()
            .args([
                "--database",
                db,
                "--public-url",
                PUBLIC_URL,
                "serve",
                "--listen",
                "127.0.0.1:0",
            ])
            .env("SCIMITAR_LOG", "warn")
            .env("SCIMITAR_DB_POOL_SIZE", "6")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn scimitar serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("Listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("scimitar serve did not start");
            }
        };
        Node { child, url }
    }

    fn scim(&self, tenant: &str) -> String {
        format!("{}/scim/{tenant}/v2", self.url)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    scimitar_testkit::http()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client")
}

async fn send(req: reqwest::RequestBuilder, token: &str, body: Option<Value>) -> (StatusCode, Value, Option<String>) {
    let mut req = req.bearer_auth(token);
    if let Some(b) = body {
        req = req.header("content-type", "application/scim+json").body(b.to_string());
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.text().await.expect("body");
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value, etag)
}

/// Every resource of a type, by id, through the API (paged).
async fn all(c: &reqwest::Client, base: &str, token: &str, endpoint: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut start = 1;
    loop {
        let (s, page, _) = send(
            c.get(format!("{base}/{endpoint}?startIndex={start}&count=1000")),
            token,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        let items = page["Resources"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        start += items.len();
        out.extend(items);
        if start > page["totalResults"].as_u64().unwrap_or(0) as usize {
            break;
        }
    }
    out
}

/// A resource as served, with what legitimately differs between two
/// deployments taken out: the tenant's name in `$ref`/`meta.location`, and
/// `meta.version`, which restarts in the store a tenant is imported into.
fn comparable(v: &Value, base: &str) -> Value {
    let tenant = base
        .split("/scim/")
        .nth(1)
        .and_then(|t| t.split('/').next())
        .expect("a Tenant URL");
    let text = v
        .to_string()
        .replace(&format!("{PUBLIC_URL}/scim/{tenant}/v2"), "{base}");
    let mut v: Value = serde_json::from_str(&text).expect("json");
    if let Some(meta) = v.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("version");
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(not(scimitar_pg_tests), ignore = "SCIMITAR_TEST_POSTGRES_URL is not set")]
async fn three_nodes_on_one_postgres_database() {
    let pg = postgres_url();
    let db = scimitar_store_postgres::test_support::fresh_url(&pg)
        .await
        .expect("fresh PostgreSQL schema");
    let started = Instant::now();
    // `migrate` first, as a deployment would; then a tenant and tokens.
    cli(&db, &["migrate"]);
    cli(&db, &["tenant", "create", "acme"]);
    let token = cli_json(&db, &["token", "create", "--tenant", "acme", "--label", "entra"])["token"]
        .as_str()
        .expect("token")
        .to_string();
    let admin = cli_json(&db, &["token", "create", "--tenant", "acme", "--scope", "admin"])["token"]
        .as_str()
        .expect("admin token")
        .to_string();
    let nodes: Vec<Node> = (0..3).map(|_| Node::start(&db)).collect();
    let bases: Vec<String> = nodes.iter().map(|n| n.scim("acme")).collect();
    let c = client();

    // 1. The same userName created on all three nodes at once: one 201, two 409.
    for round in 0..5 {
        let mut set = tokio::task::JoinSet::new();
        for base in &bases {
            let (c, base, token) = (c.clone(), base.clone(), token.clone());
            set.spawn(async move {
                let body = json!({"schemas": [USER_URN], "userName": format!("Race{round}@Example.com")});
                send(c.post(format!("{base}/Users")), &token, Some(body)).await
            });
        }
        let mut statuses: Vec<u16> = set.join_all().await.into_iter().map(|(s, _, _)| s.as_u16()).collect();
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409, 409], "round {round}");
    }
    // Case-insensitively unique across nodes too.
    let (s, body, _) = send(
        c.post(format!("{}/Users", bases[2])),
        &token,
        Some(json!({"schemas": [USER_URN], "userName": "race0@example.com"})),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["scimType"], "uniqueness");

    // 2. 300 users, then 300 concurrent member additions to one group, spread over the nodes.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..300 {
        let (c, base, token) = (c.clone(), bases[i % 3].clone(), token.clone());
        set.spawn(async move {
            let mut body = json!({"schemas": [USER_URN], "userName": format!("user{i:03}@example.com"),
                "externalId": format!("ext-{i}"), "displayName": format!("User {i}"), "active": true,
                "emails": [{"value": format!("user{i:03}@example.com"), "type": "work", "primary": true}]});
            if i % 10 == 1 {
                body["name"] = json!({"givenName": "Given", "familyName": format!("Family{i}")});
            }
            let (s, v, _) = send(c.post(format!("{base}/Users")), &token, Some(body)).await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            v["id"].as_str().expect("id").to_string()
        });
    }
    let user_ids: Vec<String> = set.join_all().await;
    let (s, group, _) = send(
        c.post(format!("{}/Groups", bases[0])),
        &token,
        Some(json!({"schemas": [GROUP_URN], "displayName": "Everyone", "externalId": "g-1"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{group}");
    let gid = group["id"].as_str().expect("group id").to_string();
    let mut set = tokio::task::JoinSet::new();
    for (i, uid) in user_ids.iter().enumerate() {
        let (c, base, token, gid, uid) = (c.clone(), bases[i % 3].clone(), token.clone(), gid.clone(), uid.clone());
        set.spawn(async move {
            let body = json!({"schemas": [PATCH_URN], "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]});
            let (s, v, _) = send(c.patch(format!("{base}/Groups/{gid}")), &token, Some(body)).await;
            assert!(s == StatusCode::OK || s == StatusCode::NO_CONTENT, "{s} {v}");
        });
    }
    set.join_all().await;
    let mut versions = Vec::new();
    for base in &bases {
        let (s, g, etag) = send(c.get(format!("{base}/Groups/{gid}")), &token, None).await;
        assert_eq!(s, StatusCode::OK);
        let members = g["members"].as_array().expect("members");
        assert_eq!(members.len(), 300, "every concurrent addition is kept");
        let mut ids: Vec<&str> = members.iter().filter_map(|m| m["value"].as_str()).collect();
        ids.sort_unstable();
        let mut expected: Vec<&str> = user_ids.iter().map(String::as_str).collect();
        expected.sort_unstable();
        assert_eq!(ids, expected);
        assert_eq!(etag.as_deref(), g["meta"]["version"].as_str());
        versions.push(etag);
    }
    // 3. ETags are the same on every node, and each addition was its own write.
    assert!(versions.windows(2).all(|w| w[0] == w[1]), "{versions:?}");
    assert_eq!(versions[0].as_deref(), Some("\"301\""));
    // If-Match against one node's ETag is honoured by another.
    let uid = &user_ids[7];
    let (_, _, etag0) = send(c.get(format!("{}/Users/{uid}", bases[0])), &token, None).await;
    let etag0 = etag0.expect("etag");
    let set_title = |title: &str| json!({"schemas": [PATCH_URN], "Operations": [{"op": "replace", "path": "title", "value": title}]});
    let (s, _, etag1) = send(
        c.patch(format!("{}/Users/{uid}", bases[1])).header("if-match", &etag0),
        &token,
        Some(set_title("Engineer")),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = send(
        c.patch(format!("{}/Users/{uid}", bases[2])).header("if-match", &etag0),
        &token,
        Some(set_title("Manager")),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::PRECONDITION_FAILED,
        "a stale ETag is refused by every node"
    );
    let (s, _, _) = send(
        c.get(format!("{}/Users/{uid}", bases[0]))
            .header("if-none-match", etag1.as_deref().unwrap_or("")),
        &token,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);
    // A manager reference, kept by export/import below.
    let (s, v, _) = send(
        c.patch(format!("{}/Users/{}", bases[0], user_ids[8])),
        &token,
        Some(json!({"schemas": [PATCH_URN], "Operations": [{"op": "add", "path": format!("{ENTERPRISE}:manager"), "value": user_ids[7]}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // 4. A token revoked through the database is refused by every node on the next request.
    let revoked = cli_json(&db, &["token", "create", "--tenant", "acme", "--label", "old"]);
    let (rid, rtoken) = (
        revoked["id"].as_str().expect("id").to_string(),
        revoked["token"].as_str().expect("token").to_string(),
    );
    for base in &bases {
        let (s, _, _) = send(c.get(format!("{base}/Users?count=1")), &rtoken, None).await;
        assert_eq!(s, StatusCode::OK);
    }
    cli(&db, &["token", "revoke", &rid]);
    for base in &bases {
        let (s, _, _) = send(c.get(format!("{base}/Users?count=1")), &rtoken, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "revoked token accepted by {base}");
        let (s, _, _) = send(c.get(format!("{base}/Users?count=1")), &token, None).await;
        assert_eq!(s, StatusCode::OK, "the other token still works on {base}");
    }

    // 5. The activity log is one log: every node shows the same entries, and
    // it holds every write made through any node.
    let mut logs = Vec::new();
    for n in &nodes {
        let (s, v, _) = send(
            c.get(format!("{}/admin/v1/tenants/acme/activity?limit=1000", n.url)),
            &admin,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        logs.push(v["events"].clone());
    }
    assert!(
        logs.windows(2).all(|w| w[0] == w[1]),
        "nodes disagree about the activity log"
    );
    let events = logs[0].as_array().expect("events");
    let count = |action: &str, outcome: &str| {
        events
            .iter()
            .filter(|e| e["action"] == action && e["outcome"] == outcome)
            .count()
    };
    assert_eq!(count("add-member", "success"), 300);
    assert_eq!(count("create", "success"), 5 + 300 + 1);
    assert_eq!(count("create", "failure"), 5 * 2 + 1);

    // 6. Export from the PostgreSQL cluster, import into a fresh SQLite node:
    // the same resources.
    let dir = tempdir("export");
    let file = dir.join("acme.jsonl");
    let summary = cli_json(
        &db,
        &["export", "--tenant", "acme", "--output", file.to_str().expect("path")],
    );
    assert_eq!(summary["users"], 305);
    assert_eq!(summary["groups"], 1);
    let sqlite = format!("sqlite:{}", dir.join("copy.db").display());
    let imported = cli_json(
        &sqlite,
        &["import", "--tenant", "acme", "--input", file.to_str().expect("path")],
    );
    assert_eq!(imported["created"], 306, "{imported}");
    let copy = Node::start(&sqlite);
    let copy_token = cli_json(&sqlite, &["token", "create", "--tenant", "acme"])["token"]
        .as_str()
        .expect("token")
        .to_string();
    let copy_base = copy.scim("acme");
    assert_same(&c, (&bases[1], &token), (&copy_base, &copy_token)).await;
    // Importing the same file again changes nothing.
    let again = cli_json(
        &sqlite,
        &["import", "--tenant", "acme", "--input", file.to_str().expect("path")],
    );
    assert_eq!(again["unchanged"], 306, "{again}");
    assert_eq!(again["created"], 0);
    assert_same(&c, (&bases[1], &token), (&copy_base, &copy_token)).await;
    drop(copy);

    // 7. Activity retention ran at start on one node only: that node holds
    // the cluster's lease, and nobody else can take it now.
    let store = scimitar_store_postgres::PostgresStore::connect(&db, 1)
        .await
        .expect("connect");
    let (now, later) = scimitar_store::lease::window(Duration::from_secs(60));
    assert!(
        !store
            .try_lease(scimitar_store::lease::ACTIVITY_RETENTION, "probe", &now, &later)
            .await
            .expect("lease"),
        "a node holds the retention lease"
    );
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("multi-node test took {:?}", started.elapsed());
}

/// Every User and Group served by `a` is served identically by `b`.
async fn assert_same(c: &reqwest::Client, a: (&str, &str), b: (&str, &str)) {
    for endpoint in ["Users", "Groups"] {
        let left = all(c, a.0, a.1, endpoint).await;
        let right = all(c, b.0, b.1, endpoint).await;
        assert_eq!(left.len(), right.len(), "{endpoint}");
        for l in &left {
            let id = l["id"].as_str().expect("id");
            let (s, r, _) = send(c.get(format!("{}/{endpoint}/{id}", b.0)), b.1, None).await;
            assert_eq!(s, StatusCode::OK, "{endpoint}/{id} missing after import");
            let (_, l, _) = send(c.get(format!("{}/{endpoint}/{id}", a.0)), a.1, None).await;
            assert_eq!(comparable(&l, a.0), comparable(&r, b.0), "{endpoint}/{id}");
        }
    }
}

/// SQLite → PostgreSQL → SQLite with nested groups, extensions'
/// neighbours (manager), timestamps and re-import; no servers needed.
#[tokio::test]
#[cfg_attr(not(scimitar_pg_tests), ignore = "SCIMITAR_TEST_POSTGRES_URL is not set")]
async fn export_import_round_trip_between_backends() {
    let pg = postgres_url();
    let db = scimitar_store_postgres::test_support::fresh_url(&pg)
        .await
        .expect("fresh PostgreSQL schema");
    let dir = tempdir("roundtrip");
    let src = format!("sqlite:{}", dir.join("src.db").display());
    let node = Node::start(&src);
    let token = cli_json(&src, &["token", "create", "--tenant", "default"])["token"]
        .as_str()
        .expect("token")
        .to_string();
    let base = node.scim("default");
    let c = client();
    let mut ids = Vec::new();
    for i in 0..7 {
        let (s, v, _) = send(
            c.post(format!("{base}/Users")),
            &token,
            Some(
                json!({"schemas": [USER_URN, ENTERPRISE], "userName": format!("u{i}"), "externalId": format!("x{i}"),
                ENTERPRISE: {"department": "R&D"}}),
            ),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["id"].as_str().expect("id").to_string());
    }
    // A group created before the group it contains is (nested, forward reference).
    let (_, outer, _) = send(
        c.post(format!("{base}/Groups")),
        &token,
        Some(json!({"schemas": [GROUP_URN], "displayName": "Outer", "members": [{"value": ids[0]}]})),
    )
    .await;
    let (_, inner, _) = send(
        c.post(format!("{base}/Groups")),
        &token,
        Some(json!({"schemas": [GROUP_URN], "displayName": "Inner", "members": [{"value": ids[1]}, {"value": ids[2], "display": "Two"}]})),
    )
    .await;
    let (outer_id, inner_id) = (outer["id"].as_str().expect("id"), inner["id"].as_str().expect("id"));
    let (s, _, _) = send(
        c.patch(format!("{base}/Groups/{outer_id}")),
        &token,
        Some(json!({"schemas": [PATCH_URN], "Operations": [{"op": "add", "path": "members", "value": [{"value": inner_id}]}]})),
    )
    .await;
    assert!(s.is_success(), "{s}");
    let (s, _, _) = send(
        c.patch(format!("{base}/Users/{}", ids[3])),
        &token,
        Some(json!({"schemas": [PATCH_URN], "Operations": [{"op": "add", "path": format!("{ENTERPRISE}:manager"), "value": ids[4]},
            {"op": "replace", "path": "active", "value": false}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    // An empty group.
    send(
        c.post(format!("{base}/Groups")),
        &token,
        Some(json!({"schemas": [GROUP_URN], "displayName": "Empty"})),
    )
    .await;

    let file = dir.join("t.jsonl");
    cli(
        &src,
        &[
            "export",
            "--tenant",
            "default",
            "--output",
            file.to_str().expect("path"),
        ],
    );
    let text = std::fs::read_to_string(&file).expect("export file");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 7 + 3);
    assert!(
        lines[..7].iter().all(|l| l["meta"]["resourceType"] == "User"),
        "users first"
    );
    assert!(lines[7..].iter().all(|l| l["meta"]["resourceType"] == "Group"));

    // Into PostgreSQL (the tenant is created), out again, into a second SQLite file.
    let r = cli_json(
        &db,
        &["import", "--tenant", "moved", "--input", file.to_str().expect("path")],
    );
    assert_eq!(r["created"], 10, "{r}");
    let file2 = dir.join("t2.jsonl");
    cli(
        &db,
        &["export", "--tenant", "moved", "--output", file2.to_str().expect("path")],
    );
    let dst = format!("sqlite:{}", dir.join("dst.db").display());
    // Piped through stdin this time.
    let out = scimitar()
        .args(["--database", &dst, "--json", "import", "--tenant", "moved"])
        .stdin(std::fs::File::open(&file2).expect("open"))
        .output()
        .expect("import");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let dst_node = Node::start(&dst);
    let pg_node = Node::start(&db);
    let t_dst = cli_json(&dst, &["token", "create", "--tenant", "moved"])["token"]
        .as_str()
        .expect("token")
        .to_string();
    let t_pg = cli_json(&db, &["token", "create", "--tenant", "moved"])["token"]
        .as_str()
        .expect("token")
        .to_string();
    let (b_dst, b_pg) = (dst_node.scim("moved"), pg_node.scim("moved"));
    assert_same(&c, (&b_pg, &t_pg), (&b_dst, &t_dst)).await;
    // Identical to the source too, created and lastModified included.
    let src_users = all(&c, &base, &token, "Users").await;
    for u in &src_users {
        let id = u["id"].as_str().expect("id");
        let (s, moved, _) = send(c.get(format!("{b_pg}/Users/{id}")), &t_pg, None).await;
        assert_eq!(s, StatusCode::OK);
        let (_, orig, _) = send(c.get(format!("{base}/Users/{id}")), &token, None).await;
        assert_eq!(comparable(&orig, &base), comparable(&moved, &b_pg));
    }
    let (_, outer_moved, _) = send(c.get(format!("{b_dst}/Groups/{outer_id}")), &t_dst, None).await;
    assert_eq!(
        outer_moved["members"].as_array().map(Vec::len),
        Some(2),
        "{outer_moved}"
    );
    // Re-importing into PostgreSQL changes nothing.
    let r = cli_json(
        &db,
        &["import", "--tenant", "moved", "--input", file.to_str().expect("path")],
    );
    assert_eq!(
        (r["created"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(10)),
        "{r}"
    );
    drop((node, dst_node, pg_node));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two "nodes" (two stores on one database) compete for the retention lease.
async fn lease_is_exclusive(a: &dyn Leases, b: &dyn Leases) {
    let t = |m: u32| format!("2030-01-01T00:{m:02}:00.000Z");
    let name = scimitar_store::lease::ACTIVITY_RETENTION;
    assert_eq!(b.lease_holder("never-taken").await.expect("holder"), None);
    assert!(a.try_lease(name, "node-a", &t(0), &t(10)).await.expect("lease"));
    assert!(
        !b.try_lease(name, "node-b", &t(1), &t(11)).await.expect("lease"),
        "held by a"
    );
    assert_eq!(
        b.lease_holder(name).await.expect("holder"),
        Some(("node-a".to_string(), t(10))),
        "every node sees who holds it"
    );
    // The holder renews.
    assert!(a.try_lease(name, "node-a", &t(9), &t(19)).await.expect("lease"));
    assert!(
        !b.try_lease(name, "node-b", &t(12), &t(22)).await.expect("lease"),
        "renewed by a"
    );
    // Expired: b takes over, and a is out until b's lease expires.
    assert!(b.try_lease(name, "node-b", &t(20), &t(30)).await.expect("lease"));
    assert!(!a.try_lease(name, "node-a", &t(21), &t(31)).await.expect("lease"));
    // A holder releases by expiring its lease now: the other takes it.
    assert!(
        a.try_lease("handed-over", "node-a", &t(21), &t(31))
            .await
            .expect("lease")
    );
    assert!(
        a.try_lease("handed-over", "node-a", &t(22), &t(22))
            .await
            .expect("release")
    );
    assert!(
        b.try_lease("handed-over", "node-b", &t(23), &t(33))
            .await
            .expect("lease")
    );
    // Other leases are independent.
    assert!(a.try_lease("other-job", "node-a", &t(21), &t(31)).await.expect("lease"));
    // Racing at once for a free lease: exactly one wins.
    let (t40, t50) = (t(40), t(50));
    let (ra, rb) = tokio::join!(
        a.try_lease("race", "node-a", &t40, &t50),
        b.try_lease("race", "node-b", &t40, &t50)
    );
    assert!(
        ra.expect("lease") ^ rb.expect("lease"),
        "exactly one node holds the lease"
    );
}

#[tokio::test]
async fn retention_lease_sqlite() {
    let dir = tempdir("lease");
    let path = dir.join("lease.db");
    let a = scimitar_store_sqlite::SqliteStore::open(&path).expect("open");
    let b = scimitar_store_sqlite::SqliteStore::open(&path).expect("open");
    lease_is_exclusive(&a, &b).await;
    drop((a, b));
    let _ = std::fs::remove_dir_all(Path::new(&dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimitar_pg_tests), ignore = "SCIMITAR_TEST_POSTGRES_URL is not set")]
async fn retention_lease_postgres() {
    let pg = postgres_url();
    let url = scimitar_store_postgres::test_support::fresh_url(&pg)
        .await
        .expect("fresh schema");
    let a = scimitar_store_postgres::PostgresStore::connect(&url, 2)
        .await
        .expect("connect");
    let b = scimitar_store_postgres::PostgresStore::connect(&url, 2)
        .await
        .expect("connect");
    lease_is_exclusive(&a, &b).await;
    // Many racers on one free lease at once: one winner.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..8 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        set.spawn(async move {
            s.try_lease(
                "stampede",
                &format!("node-{i}"),
                "2030-01-01T00:00:00.000Z",
                "2030-01-01T01:00:00.000Z",
            )
            .await
            .expect("lease")
        });
    }
    let wins = set.join_all().await.into_iter().filter(|w| *w).count();
    assert_eq!(wins, 1);
}
