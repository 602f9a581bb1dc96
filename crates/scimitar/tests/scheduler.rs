//! Provisioning jobs run by `scimitar serve` (the real binary) by
//! themselves: switched on with `scimitar sync start`, a cycle at once and
//! then one every interval, off with `sync stop`, `sync restart`; and on
//! several nodes sharing PostgreSQL, a job's cycles on one node at a time,
//! handed to another when the node running one is killed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "../../scimitar-engine/tests/support/slapd.rs"]
mod slapd;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_scimitar");

struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("scimitar-sched-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch { dir }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env("SCIMITAR_KEY_FILE", self.dir.join("server.key"))
            .env_remove("SCIMITAR_PUBLIC_URL")
            .env_remove("SCIMITAR_CONFIG")
            .env_remove("SCIMITAR_DATABASE_URL");
        cmd
    }

    /// Runs the CLI with `--json` and returns its output. The wait moves
    /// off the test's runtime, which serves the proxy.
    fn cli(&self, db: &str, args: &[&str]) -> Value {
        let out = tokio::task::block_in_place(|| {
            self.command()
                .args(args)
                .args(["--database", db, "--json"])
                .output()
                .unwrap()
        });
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn job(&self, db: &str, name: &str) -> Value {
        let jobs = self.cli(db, &["sync", "jobs"]);
        jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no job {name} in {jobs}"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `scimitar serve` process, killed when dropped.
struct Node {
    child: Child,
    root: String,
}

impl Node {
    fn start(s: &Scratch, db: &str, extra: &[&str]) -> Node {
        let mut child = s
            .command()
            .args([
                "--database",
                db,
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--rate-limit",
                "0",
            ])
            .args(extra)
            .env("SCIMITAR_LOG", "warn")
            .env("SCIMITAR_DB_POOL_SIZE", "4")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("Listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let root = rx.recv_timeout(Duration::from_secs(60)).expect("serve started");
        Node { child, root }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `f` holds, or fails with `what`.
async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {timeout:?} waiting for: {what}");
}

/// The userNames a SCIM tenant holds.
async fn users(base: &str, token: &str) -> Vec<String> {
    users_where(base, token, "").await
}

/// The userNames of a SCIM tenant's users that match `query` (`&filter=…`).
async fn users_where(base: &str, token: &str, query: &str) -> Vec<String> {
    let body: Value = scimitar_testkit::client()
        .get(format!("{base}/Users?count=1000{query}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["Resources"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|u| u["userName"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn has_user(base: &str, token: &str, name: &str) -> bool {
    users(base, token).await.iter().any(|u| u == name)
}

fn person(uid: &str, dept: &str) -> String {
    format!(
        "dn: uid={uid},ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid} Test\ngivenName: {uid}\nsn: Test\nmail: {uid}@example.org\ndepartmentNumber: {dept}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn a_job_switched_on_runs_by_itself_every_interval_until_switched_off() {
    let s = Scratch::new("on-off");
    let ldap = slapd::Slapd::start(slapd::Options {
        ldif: format!("{}\n{}", person("alice", "42"), person("bob", "42")),
        ..Default::default()
    });
    let db = format!("sqlite:{}/scimitar.db", s.dir.display());
    let node = Node::start(&s, &db, &["--job-lease", "3"]);
    // The application is another tenant of the same server.
    s.cli(&db, &["tenant", "create", "airstack"]);
    let token = s.cli(&db, &["token", "create", "--tenant", "airstack"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let app = format!("{}/scim/airstack/v2", node.root);
    let job = s.dir.join("hr.toml");
    std::fs::write(
        &job,
        format!(
            r#"name = "hr"
interval = "2s"

[source]
kind = "ldap"
url = "{url}"
bind_dn = "{admin}"
bind_password = "{password}"
base_dn = "{base}"

[scope]
mode = "all"

[target]
url = "{app}"
token = "{token}"
"#,
            url = ldap.url,
            admin = slapd::ADMIN,
            password = slapd::PASSWORD,
            base = slapd::BASE,
        ),
    )
    .unwrap();

    // Saved, the job is off: nothing runs.
    let saved = s.cli(&db, &["sync", "save", "--job", job.to_str().unwrap()]);
    assert_eq!(saved["status"], "off", "{saved}");
    let j = s.job(&db, "hr");
    assert_eq!(
        (&j["status"], &j["next_cycle"]),
        (&Value::from("off"), &Value::Null),
        "{j}"
    );
    assert_eq!(j["interval_seconds"], 2, "{j}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(users(&app, &token).await.is_empty(), "an off job sends nothing");

    // On: the server runs the initial cycle by itself, within seconds.
    assert_eq!(s.cli(&db, &["sync", "start", "--job", "hr"])["status"], "on");
    wait_until("the initial cycle", Duration::from_secs(30), || async {
        users(&app, &token).await.len() == 2
    })
    .await;
    let j = s.job(&db, "hr");
    assert_eq!(j["status"], "on", "{j}");
    assert!(j["next_cycle"].is_string(), "an on job has a next cycle: {j}");

    // A change in the directory arrives with the next cycle, an interval later.
    ldap.modify(&person("carol", "42").replacen('\n', "\nchangetype: add\n", 1));
    wait_until("carol, on the next incremental cycle", Duration::from_secs(30), || {
        has_user(&app, &token, "carol@example.org")
    })
    .await;
    let j = s.job(&db, "hr");
    assert_eq!(j["last_cycle"]["kind"], "incremental", "{j}");
    assert_eq!(j["last_cycle"]["failed"], 0, "{j}");

    // Off: the cycle in progress (if any) finishes and no other starts.
    assert_eq!(s.cli(&db, &["sync", "stop", "--job", "hr"])["status"], "off");
    wait_until("no cycle running", Duration::from_secs(30), || async {
        s.job(&db, "hr")["running"].is_null()
    })
    .await;
    ldap.modify(&person("dave", "42").replacen('\n', "\nchangetype: add\n", 1));
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        !has_user(&app, &token, "dave@example.org").await,
        "no cycle runs while the job is off"
    );
    let j = s.job(&db, "hr");
    assert_eq!(
        (&j["status"], &j["next_cycle"]),
        (&Value::from("off"), &Value::Null),
        "{j}"
    );

    // Restart while off: the next cycle will be initial, but nothing runs yet.
    s.cli(&db, &["sync", "restart", "--job", "hr"]);
    assert_eq!(s.job(&db, "hr")["initial_next"], true);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!has_user(&app, &token, "dave@example.org").await);
    // On again: at once, an initial cycle that matches what exists and
    // creates only dave.
    let before = s.job(&db, "hr")["last_cycle"]["finished"].clone();
    s.cli(&db, &["sync", "start", "--job", "hr"]);
    let started = Instant::now();
    let first = loop {
        let j = s.job(&db, "hr");
        if j["last_cycle"]["finished"].is_string() && j["last_cycle"]["finished"] != before {
            break j["last_cycle"].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no cycle after the restart: {j}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(first["kind"], "initial", "{first}");
    assert_eq!(
        (first["created"].as_u64(), first["failed"].as_u64()),
        (Some(1), Some(0)),
        "{first}"
    );
    assert_eq!(users(&app, &token).await.len(), 4);
    drop(node);
}

/// A counting proxy in front of the target: requests in flight (at most,
/// over the test), and every request with its answer.
#[derive(Clone, Default)]
struct Counter {
    upstream: String,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<(String, String, u16)>>>,
}

async fn forward(State(p): State<Counter>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    // Counted down when the handler ends or is dropped (a killed client's
    // connection drops it).
    struct InFlight(Arc<AtomicUsize>);
    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let now = p.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let _guard = InFlight(p.in_flight.clone());
    p.max_in_flight.fetch_max(now, Ordering::SeqCst);
    // Slow enough that two cycles at once would overlap for sure.
    tokio::time::sleep(Duration::from_millis(3)).await;
    let pq = uri.path_and_query().map(|x| x.as_str()).unwrap_or("/").to_string();
    let http = scimitar_testkit::client();
    let mut req = http
        .request(method.clone(), format!("{}{pq}", p.upstream))
        .body(body.to_vec());
    for name in ["authorization", "content-type", "accept", "if-match"] {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v.as_bytes());
        }
    }
    // The upstream exchange runs in its own task and is recorded even when
    // the client is killed while it waits: the target still did what it
    // was asked (a create a killed node sent counts as a create).
    let seen = p.seen.clone();
    let path = uri.path().to_string();
    let exchange = tokio::spawn(async move {
        let r = req.send().await?;
        let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let bytes = r.bytes().await.unwrap_or_default();
        seen.lock().unwrap().push((method.to_string(), path, status.as_u16()));
        Ok::<_, reqwest::Error>((status, bytes))
    });
    match exchange.await {
        Ok(Ok((status, bytes))) => {
            (status, [("content-type", "application/scim+json")], bytes.to_vec()).into_response()
        }
        Ok(Err(e)) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

async fn start_counter(upstream: &str) -> (String, Counter) {
    let state = Counter {
        upstream: upstream.trim_end_matches('/').to_string(),
        ..Counter::default()
    };
    let app = axum::Router::new().fallback(forward).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), state)
}

fn write_users(path: &Path, n: usize) {
    let mut csv = String::from("mailNickname,userPrincipalName,mail,givenName,surname,displayName\n");
    for i in 0..n {
        csv += &format!("u{i:04},u{i:04}@example.org,u{i:04}@example.org,U{i},Test,U{i} Test\n");
    }
    std::fs::write(path, csv).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimitar_pg_tests), ignore = "SCIMITAR_TEST_POSTGRES_URL is not set")]
async fn on_three_nodes_a_job_runs_on_one_at_a_time_and_a_killed_node_hands_it_over() {
    let pg =
        std::env::var("SCIMITAR_TEST_POSTGRES_URL").expect("SCIMITAR_TEST_POSTGRES_URL is set (it was at build time)");
    let s = Scratch::new("nodes");
    let db = scimitar_store_postgres::test_support::fresh_url(&pg).await.unwrap();
    // The application: its own server, behind the counting proxy.
    let app_db = format!("sqlite:{}/app.db", s.dir.display());
    let app = Node::start(&s, &app_db, &[]);
    let token = s.cli(&app_db, &["token", "create", "--tenant", "default"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (proxy, counter) = start_counter(&app.root).await;
    let app_base = format!("{}/scim/default/v2", app.root);

    const N: usize = 400;
    write_users(&s.dir.join("users.csv"), N);
    let job = s.dir.join("hr.toml");
    std::fs::write(
        &job,
        format!(
            r#"name = "hr"
interval = "2s"
concurrency = 1

[source]
kind = "file"
users = "users.csv"
key = "mailNickname"

[scope]
mode = "all"

[target]
url = "{proxy}/scim/default/v2"
token = "{token}"
"#
        ),
    )
    .unwrap();
    let mut nodes: Vec<Node> = (0..3).map(|_| Node::start(&s, &db, &["--job-lease", "3"])).collect();
    s.cli(&db, &["sync", "save", "--job", job.to_str().unwrap()]);
    s.cli(&db, &["sync", "start", "--job", "hr"]);

    // Mid-cycle, kill the node that runs it.
    let posts = || {
        counter
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, p, _)| m == "POST" && p.ends_with("/Users"))
            .count()
    };
    wait_until("the initial cycle under way", Duration::from_secs(60), || async {
        posts() >= 100
    })
    .await;
    let running = s.job(&db, "hr")["running"].clone();
    let holder = running["holder"]
        .as_str()
        .unwrap_or_else(|| panic!("{running}"))
        .to_string();
    let pid: u32 = holder.split('/').nth(1).unwrap().parse().unwrap();
    let victim = nodes
        .iter()
        .position(|n| n.pid() == pid)
        .unwrap_or_else(|| panic!("the holder {holder} is one of the nodes"));
    let killed_at = posts();
    drop(nodes.remove(victim));
    assert!(killed_at < N, "killed mid-cycle ({killed_at} of {N} created)");

    // Another node takes the job once the lease expires and finishes it.
    wait_until("every user, from another node", Duration::from_secs(90), || async {
        users(&app_base, &token).await.len() == N
    })
    .await;
    wait_until("a clean cycle after the takeover", Duration::from_secs(60), || async {
        let j = s.job(&db, "hr");
        j["last_cycle"]["failed"] == 0 && j["last_cycle"]["kind"] == "incremental"
    })
    .await;
    let j = s.job(&db, "hr");
    let after = j["running"]["holder"].as_str().map(str::to_string);
    assert_ne!(after.as_deref(), Some(holder.as_str()), "the dead node holds nothing");

    let seen = counter.seen.lock().unwrap().clone();
    assert_eq!(
        counter.max_in_flight.load(Ordering::SeqCst),
        1,
        "with concurrency 1, more than one request in flight means two cycles at once"
    );
    let created = seen
        .iter()
        .filter(|(m, p, st)| m == "POST" && p.ends_with("/Users") && *st == 201)
        .count();
    assert_eq!(created, N, "each user created once");
    assert!(
        !seen.iter().any(|(_, _, st)| *st == 409),
        "no duplicate create was attempted: {:?}",
        seen.iter().filter(|x| x.2 >= 400).collect::<Vec<_>>()
    );
    let failures = tokio::task::block_in_place(|| {
        s.command()
            .args([
                "sync",
                "logs",
                "--job",
                "hr",
                "--status",
                "failure",
                "--database",
                &db,
                "--json",
            ])
            .output()
            .unwrap()
    });
    assert!(failures.status.success());
    assert_eq!(
        String::from_utf8_lossy(&failures.stdout).trim(),
        "",
        "no failure logged"
    );
    drop(nodes);
    drop(app);
}

/// Runs `sync run --once`, expecting it to fail; returns its error output.
fn run_failing(s: &Scratch, db: &str, job: &Path) -> String {
    let out = tokio::task::block_in_place(|| {
        s.command()
            .args([
                "sync",
                "run",
                "--once",
                "--job",
                job.to_str().unwrap(),
                "--database",
                db,
            ])
            .output()
            .unwrap()
    });
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_over_the_deletion_threshold_sends_nothing_until_deletes_are_allowed() {
    let s = Scratch::new("threshold");
    let app_db = format!("sqlite:{}/app.db", s.dir.display());
    let app = Node::start(&s, &app_db, &[]);
    let token = s.cli(&app_db, &["token", "create", "--tenant", "default"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("{}/scim/default/v2", app.root);
    let db = format!("sqlite:{}/engine.db", s.dir.display());
    let csv = s.dir.join("users.csv");
    let job = s.dir.join("hr.toml");
    std::fs::write(
        &job,
        format!(
            r#"name = "hr"
deletion_threshold = 3

[source]
kind = "file"
users = "users.csv"
key = "mailNickname"

[scope]
mode = "all"

[target]
url = "{base}"
token = "{token}"
"#
        ),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["sync", "run", "--once", "--job", job.to_str().unwrap()];
        args.extend_from_slice(extra);
        s.cli(&db, &args)
    };
    write_users(&csv, 10);
    assert_eq!(run(&[])["created"], 10);

    // Three deletes: at the threshold, sent.
    let lines: Vec<String> = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    std::fs::write(&csv, lines[..8].join("\n") + "\n").unwrap();
    let c = run(&[]);
    assert_eq!((c["deleted"].as_u64(), c["failed"].as_u64()), (Some(3), Some(0)), "{c}");
    assert_eq!(users(&base, &token).await.len(), 7);

    // Five more: over it. Nothing is sent, not even the create that came
    // with them; the job is quarantined; the actions are staged.
    let mut kept = lines[..3].to_vec();
    kept.push("new0001,new0001@example.org,new0001@example.org,New,One,New One".into());
    std::fs::write(&csv, kept.join("\n") + "\n").unwrap();
    let err = run_failing(&s, &db, &job);
    assert!(err.contains("deletion threshold of 3"), "{err}");
    assert!(err.contains("allow-deletes"), "{err}");
    assert_eq!(users(&base, &token).await.len(), 7, "nothing deleted or created");
    let j = s.job(&db, "hr");
    assert_eq!(j["status"], "quarantined", "{j}");
    assert_eq!(j["last_cycle"]["quarantine"]["reason"], "TooManyDeletes", "{j}");
    assert_eq!(j["last_cycle"]["quarantine"]["staged"], 5, "{j}");
    assert_eq!(j["next_cycle"], Value::Null, "a quarantined job has no next cycle: {j}");
    let staged = tokio::task::block_in_place(|| {
        s.command()
            .args([
                "sync",
                "logs",
                "--job",
                "hr",
                "--action",
                "stagedDelete",
                "--database",
                &db,
                "--json",
            ])
            .output()
            .unwrap()
    });
    assert_eq!(String::from_utf8_lossy(&staged.stdout).lines().count(), 5);
    // Still held on the next run; a job that is not held has nothing to allow.
    run_failing(&s, &db, &job);
    assert_eq!(users(&base, &token).await.len(), 7);

    // Allow deletes: the job returns to its status (off: run by the CLI)
    // and the next cycle sends everything it held back.
    let allowed = s.cli(&db, &["sync", "allow-deletes", "--job", "hr"]);
    assert_eq!(allowed["status"], "off", "{allowed}");
    let c = run(&[]);
    assert_eq!(
        (c["deleted"].as_u64(), c["created"].as_u64(), c["failed"].as_u64()),
        (Some(5), Some(1), Some(0)),
        "{c}"
    );
    assert_eq!(users(&base, &token).await.len(), 3, "two kept and the new one");
    // Allowing is for one cycle, and only for a held job.
    let again = tokio::task::block_in_place(|| {
        s.command()
            .args(["sync", "allow-deletes", "--job", "hr", "--database", &db])
            .output()
            .unwrap()
    });
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing to allow"));

    // Held again by a broken export; the source is fixed and the job
    // restarted: the quarantine is lifted and nothing is deleted.
    let mut fixed = std::fs::read_to_string(&csv).unwrap();
    fixed += "new0002,new0002@example.org,new0002@example.org,New,Two,New Two\nnew0003,new0003@example.org,new0003@example.org,New,Three,New Three\n";
    std::fs::write(&csv, &fixed).unwrap();
    assert_eq!(run(&[])["created"], 2);
    let header = fixed.lines().next().unwrap().to_string();
    std::fs::write(&csv, header + "\n").unwrap();
    let err = run_failing(&s, &db, &job);
    assert!(err.contains("deletion threshold"), "{err}");
    assert_eq!(s.job(&db, "hr")["status"], "quarantined");
    std::fs::write(&csv, fixed).unwrap();
    s.cli(&db, &["sync", "restart", "--job", "hr"]);
    assert_eq!(s.job(&db, "hr")["status"], "off", "restart lifts the quarantine");
    let c = run(&[]);
    assert_eq!((c["deleted"].as_u64(), c["failed"].as_u64()), (Some(0), Some(0)), "{c}");
    assert_eq!(users(&base, &token).await.len(), 5);

    // Disables count too: a scoping filter that leaves one of the five in
    // scope would disable four, more than the threshold.
    let mut scoped = std::fs::read_to_string(&job).unwrap();
    scoped += "\n[[scoping.user]]\nclauses = [{ attribute = \"mailNickname\", operator = \"EQUALS\", value = \"new0002\" }]\n";
    std::fs::write(&job, scoped).unwrap();
    s.cli(&db, &["sync", "save", "--job", job.to_str().unwrap()]);
    s.cli(&db, &["sync", "restart", "--job", "hr"]);
    let err = run_failing(&s, &db, &job);
    assert!(err.contains("would disable or delete 4 objects"), "{err}");
    let j = s.job(&db, "hr");
    assert_eq!(
        (&j["status"], &j["last_cycle"]["quarantine"]["staged"]),
        (&serde_json::json!("quarantined"), &serde_json::json!(4)),
        "{j}"
    );
    assert_eq!(
        users_where(&base, &token, "&filter=active%20eq%20true").await.len(),
        5,
        "nothing disabled yet"
    );
    s.cli(&db, &["sync", "allow-deletes", "--job", "hr"]);
    let c = run(&[]);
    assert_eq!(
        (c["disabled"].as_u64(), c["failed"].as_u64()),
        (Some(4), Some(0)),
        "{c}"
    );
    assert_eq!(users(&base, &token).await.len(), 5, "disabled, not deleted");
    assert_eq!(users_where(&base, &token, "&filter=active%20eq%20true").await.len(), 1);
    drop(app);
}

/// A job quarantined 28 days ago without a successful retry is disabled by
/// the server (the quarantine's start is written into the store directly,
/// as if four weeks had passed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_quarantined_for_28_days_is_disabled() {
    use scimitar_store::{EngineStore, TenantStore};
    let s = Scratch::new("disabled");
    let db_path = s.dir.join("scimitar.db");
    let db = format!("sqlite:{}", db_path.display());
    write_users(&s.dir.join("users.csv"), 1);
    let job = s.dir.join("hr.toml");
    std::fs::write(
        &job,
        "name = \"hr\"\n[source]\nkind = \"file\"\nusers = \"users.csv\"\nkey = \"mailNickname\"\n[scope]\nmode = \"all\"\n[target]\nurl = \"http://127.0.0.1:9/scim/v2\"\ntoken = \"t\"\n",
    )
    .unwrap();
    s.cli(&db, &["sync", "save", "--job", job.to_str().unwrap()]);
    {
        let store = scimitar_store_sqlite::SqliteStore::open(&db_path).unwrap();
        let t = store.tenant("default").await.unwrap().unwrap();
        let since = scimitar_store::format_utc(time::OffsetDateTime::now_utc() - time::Duration::days(28));
        let last = serde_json::json!({"kind": "initial", "error": "refused", "finished": since,
            "quarantine": {"reason": "EncounteredQuarantineException", "since": since, "retries": 27, "previous_status": "on"}});
        assert!(store.set_last_cycle(t.id, "hr", &last).await.unwrap());
        assert!(store.set_job_status(t.id, "hr", "quarantined").await.unwrap());
        // An object in escrow since then: dropped with the disable.
        let escrowed = scimitar_store::ObjectState {
            kind: scimitar_store::ObjectKind::User,
            anchor: "u0".into(),
            source_ref: None,
            source_hash: "h".into(),
            source: serde_json::json!({}),
            in_scope: true,
            target_id: None,
            exported: Value::Null,
            pending: true,
            updated: since.clone(),
            escrow: Some(scimitar_store::Escrow {
                attempts: 27,
                first_failed: since.clone(),
                next_attempt: since.clone(),
                error: "Unauthorized".into(),
                reference: false,
            }),
        };
        store
            .save_objects(t.id, "hr", vec![escrowed], vec![], vec![])
            .await
            .unwrap();
        assert_eq!(store.escrow_counts(t.id, "hr").await.unwrap(), (1, 0));
    }
    let node = Node::start(&s, &db, &[]);
    wait_until("the job disabled", Duration::from_secs(30), || async {
        s.job(&db, "hr")["status"] == "disabled"
    })
    .await;
    let j = s.job(&db, "hr");
    assert!(
        j["last_cycle"]["disabled"]["why"]
            .as_str()
            .unwrap_or_default()
            .contains("28 days"),
        "{j}"
    );
    assert_eq!(j["next_cycle"], Value::Null, "{j}");
    assert_eq!(j["last_cycle"]["disabled"]["escrow_dropped"], 1, "{j}");
    drop(node);
    {
        let store = scimitar_store_sqlite::SqliteStore::open(&db_path).unwrap();
        let t = store.tenant("default").await.unwrap().unwrap();
        assert_eq!(
            store.escrow_counts(t.id, "hr").await.unwrap(),
            (0, 0),
            "the escrow is dropped"
        );
        assert!(store.pending_objects(t.id, "hr").await.unwrap().is_empty());
    }
    // A restart brings it back, to the status it had before the quarantine.
    s.cli(&db, &["sync", "restart", "--job", "hr"]);
    assert_eq!(s.job(&db, "hr")["status"], "on");
}

/// An SMTP server on a loopback port that keeps every message, or refuses
/// every sender (`reject`).
async fn smtp_sink(reject: bool) -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as TokioBufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mail = Arc::new(Mutex::new(Vec::new()));
    let store = mail.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = TokioBufReader::new(r);
                let _ = w.write_all(b"220 sink ESMTP\r\n").await;
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let cmd = line.trim_end().to_ascii_uppercase();
                    let answer: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                        b"250-sink\r\n250 8BITMIME\r\n"
                    } else if cmd.starts_with("MAIL") && reject {
                        b"550 5.7.1 sender refused\r\n"
                    } else if cmd.starts_with("DATA") {
                        let _ = w.write_all(b"354 end with .\r\n").await;
                        let mut body = String::new();
                        loop {
                            line.clear();
                            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == ".\r\n" {
                                break;
                            }
                            body.push_str(&line);
                        }
                        store.lock().unwrap().push(body);
                        b"250 queued\r\n"
                    } else if cmd.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    let _ = w.write_all(answer).await;
                }
            });
        }
    });
    (port, mail)
}

/// The subject of a stored message.
fn subject(message: &str) -> String {
    let mut lines = message.lines().skip_while(|l| !l.starts_with("Subject: "));
    let mut subject = lines
        .next()
        .and_then(|l| l.strip_prefix("Subject: "))
        .unwrap_or_default()
        .to_string();
    // Long headers are folded onto lines that start with a space.
    for l in lines.take_while(|l| l.starts_with(' ') || l.starts_with('\t')) {
        subject += l;
    }
    subject
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantine_is_mailed_once_per_reason_and_a_refused_message_is_retried() {
    let s = Scratch::new("mail");
    let app_db = format!("sqlite:{}/app.db", s.dir.display());
    let app = Node::start(&s, &app_db, &[]);
    let token = s.cli(&app_db, &["token", "create", "--tenant", "default"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("{}/scim/default/v2", app.root);
    let db = format!("sqlite:{}/engine.db", s.dir.display());
    let csv = s.dir.join("users.csv");
    write_users(&csv, 5);
    let job = s.dir.join("hr.toml");
    let write_job = |token: &str| {
        std::fs::write(
            &job,
            format!(
                r#"name = "hr"
deletion_threshold = 3
notification_email = "it-team@example.com"

[source]
kind = "file"
users = "users.csv"
key = "mailNickname"

[scope]
mode = "all"

[target]
url = "{base}"
token = "{token}"
"#
            ),
        )
        .unwrap();
    };
    let (good_port, mail) = smtp_sink(false).await;
    let (bad_port, refused) = smtp_sink(true).await;
    let smtp = |port: u16| format!("smtp://127.0.0.1:{port}");
    let run = |port: u16| {
        tokio::task::block_in_place(|| {
            s.command()
                .args([
                    "sync",
                    "run",
                    "--once",
                    "--job",
                    job.to_str().unwrap(),
                    "--database",
                    &db,
                ])
                .args([
                    "--smtp-url",
                    &smtp(port),
                    "--smtp-from",
                    "Scimitar <scimitar@example.com>",
                ])
                .output()
                .unwrap()
        })
    };
    write_job(&token);
    assert!(run(good_port).status.success());
    assert!(mail.lock().unwrap().is_empty(), "nothing to tell");

    // A refused token (met by the next change) quarantines the job; the
    // SMTP server refuses the message: the error is recorded, nothing is
    // marked as told.
    write_users(&csv, 6);
    write_job("scim_not-a-real-token");
    assert!(!run(bad_port).status.success());
    assert!(refused.lock().unwrap().is_empty());
    let j = s.job(&db, "hr");
    assert_eq!(j["status"], "quarantined", "{j}");
    let err = j["last_cycle"]["quarantine"]["notify_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(err.contains("did not accept"), "{j}");
    assert!(
        !err.contains("example.com>"),
        "no addresses or URLs beyond what is needed: {err}"
    );
    // The next failed retry, with a working SMTP server: told now, once.
    assert!(!run(good_port).status.success());
    assert_eq!(mail.lock().unwrap().len(), 1);
    let first = mail.lock().unwrap()[0].clone();
    assert!(
        subject(&first).contains("is in quarantine: EncounteredQuarantineException"),
        "{first}"
    );
    for want in [
        "To: it-team@example.com",
        "Content-Type: text/plain",
        "Content-Type: text/html",
        "/console/t/default",
    ] {
        assert!(first.contains(want), "{want} in {first}");
    }
    assert!(!run(good_port).status.success());
    assert_eq!(mail.lock().unwrap().len(), 1, "the same reason is not mailed twice");

    // A new reason (the deletion threshold) is mailed again.
    write_job(&token);
    std::fs::write(
        &csv,
        "mailNickname,userPrincipalName,mail,givenName,surname,displayName\n",
    )
    .unwrap();
    assert!(!run(good_port).status.success());
    let j = s.job(&db, "hr");
    assert_eq!(j["last_cycle"]["quarantine"]["reason"], "TooManyDeletes", "{j}");
    assert_eq!(mail.lock().unwrap().len(), 2);
    let second = mail.lock().unwrap()[1].clone();
    assert!(subject(&second).contains("TooManyDeletes"), "{second}");
    assert!(second.contains("allow-deletes"), "{second}");
    assert_eq!(users(&base, &token).await.len(), 5, "nothing deleted or created");
    drop(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_on_demand_sends_one_object_now_and_shows_its_steps() {
    let s = Scratch::new("on-demand");
    let app_db = format!("sqlite:{}/app.db", s.dir.display());
    let app = Node::start(&s, &app_db, &[]);
    let token = s.cli(&app_db, &["token", "create", "--tenant", "default"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("{}/scim/default/v2", app.root);
    let db = format!("sqlite:{}/engine.db", s.dir.display());
    write_users(&s.dir.join("users.csv"), 10);
    std::fs::write(
        s.dir.join("groups.csv"),
        "objectId,displayName,members\nsmall,Small,u0001;u0002\nbig,Big,u0001;u0002;u0003;u0004;u0005;u0006\n",
    )
    .unwrap();
    let job = s.dir.join("hr.toml");
    std::fs::write(
        &job,
        format!(
            "name = \"hr\"\n[source]\nkind = \"file\"\nusers = \"users.csv\"\ngroups = \"groups.csv\"\nkey = \"mailNickname\"\ngroup_key = \"objectId\"\n[scope]\nmode = \"all\"\n[target]\nurl = \"{base}\"\ntoken = \"{token}\"\n"
        ),
    )
    .unwrap();
    s.cli(&db, &["sync", "save", "--job", job.to_str().unwrap()]);
    let on_demand = |args: &[&str]| {
        tokio::task::block_in_place(|| {
            s.command()
                .args([
                    "sync",
                    "provision-on-demand",
                    "--job",
                    "hr",
                    "--database",
                    &db,
                    "--json",
                ])
                .args(args)
                .output()
                .unwrap()
        })
    };

    // One user: created now, its steps shown; nothing else is sent, and
    // the job's cycles are untouched (no watermark, no last cycle).
    let out = on_demand(&["--user", "u0000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["kind"], "onDemand", "{v}");
    let records = v["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{v}");
    assert_eq!(records[0]["provisioningAction"], "create", "{v}");
    let steps: Vec<&str> = records[0]["provisioningSteps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["provisioningStepType"].as_str().unwrap_or_default())
        .collect();
    for want in ["import", "scoping", "matching", "export"] {
        assert!(steps.contains(&want), "{want} in {steps:?}");
    }
    assert!(
        records[0]["modifiedProperties"]
            .as_array()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert_eq!(users(&base, &token).await, ["u0000@example.org"]);
    let j = s.job(&db, "hr");
    assert_eq!(
        (&j["initial_next"], &j["last_cycle"]),
        (&Value::Bool(true), &Value::Null),
        "{j}"
    );

    // A group with its two members; a group of six is refused as in Entra.
    let out = on_demand(&["--group", "small"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["records"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(users(&base, &token).await.len(), 3);
    let out = on_demand(&["--group", "big"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at most 5"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = on_demand(&["--user", "nobody"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user 'nobody'"));

    // Audited; and the first cycle afterwards matches what on-demand made.
    let audit = s.cli(&db, &["audit"]);
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"job.provisioned-on-demand"), "{actions:?}");
    let c = s.cli(&db, &["sync", "run", "--once", "--job", job.to_str().unwrap()]);
    assert_eq!(
        (c["created"].as_u64(), c["failed"].as_u64()),
        (Some(7 + 1), Some(0)),
        "{c}"
    );
    assert_eq!(users(&base, &token).await.len(), 10);
    drop(app);
}
