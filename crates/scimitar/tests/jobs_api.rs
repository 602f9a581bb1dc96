//! Provisioning jobs managed through the admin API of the real binary
//! (`scimitar serve`, which registers the engine's job files): its
//! mistakes, one table; then a job's life — created from JSON, read with
//! its secrets shown as "(sealed)", replaced from what was read (the
//! secrets kept: its cycle still reaches the target), started, stopped,
//! restarted, deleted — each step audited with the admin token as actor;
//! then the same job through the console's Applications pages.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use scimitar_testkit::browser::{client as browser, cookie_of, csrf_in, form};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_scimitar");

struct Scratch {
    dir: PathBuf,
    db: String,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("scimitar-jobs-api-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = format!("sqlite:{}/scimitar.db", dir.display());
        Scratch { dir, db }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env("SCIMITAR_KEY_FILE", self.dir.join("server.key"))
            .env_remove("SCIMITAR_PUBLIC_URL")
            .env_remove("SCIMITAR_CONFIG")
            .env_remove("SCIMITAR_DATABASE_URL");
        cmd
    }

    /// Runs the CLI with `--json` and returns its output.
    fn cli(&self, args: &[&str]) -> Value {
        let out = self
            .command()
            .args(args)
            .args(["--database", &self.db, "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// A new token of `scope` for `tenant`: (id, secret).
    fn token(&self, tenant: &str, scope: &str) -> (String, String) {
        let t = self.cli(&["token", "create", "--tenant", tenant, "--scope", scope]);
        (t["id"].as_str().unwrap().into(), t["token"].as_str().unwrap().into())
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
    fn start(s: &Scratch) -> Node {
        let mut child = s
            .command()
            .args([
                "--database",
                &s.db,
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--rate-limit",
                "0",
                // The jobs here run between tenants of this server, on
                // loopback: an operator's allowance (the default is public
                // addresses only).
                "--job-egress-allow",
                "127.0.0.0/8",
            ])
            .env("SCIMITAR_LOG", "warn")
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
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer: status, headers, body (JSON, or Null when empty).
struct Answer {
    status: u16,
    location: Option<String>,
    body: Value,
    text: String,
}

/// A request with a bearer token and, if given, a body of a content type.
async fn send(method: Method, url: &str, token: &str, body: Option<(&str, String)>) -> Answer {
    let mut req = scimitar_testkit::client().request(method, url).bearer_auth(token);
    if let Some((ct, text)) = body {
        req = req.header("content-type", ct).body(text);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        location,
        body,
        text,
    }
}

/// The tenants and tokens of a test: jobs live in `acme`, whose SCIM
/// directory is their source; `app` is their target; `other` is a tenant
/// whose admin token must get nowhere in `acme`.
struct World {
    _node: Node,
    s: Scratch,
    root: String,
    /// `acme`'s admin token: (id, secret).
    admin: (String, String),
    acme_scim: String,
    app_scim: String,
    other_admin: String,
}

impl World {
    fn start(name: &str) -> World {
        let s = Scratch::new(name);
        let node = Node::start(&s);
        for t in ["acme", "app", "other"] {
            s.cli(&["tenant", "create", t]);
        }
        World {
            root: node.root.clone(),
            _node: node,
            admin: s.token("acme", "admin"),
            acme_scim: s.token("acme", "scim").1,
            app_scim: s.token("app", "scim").1,
            other_admin: s.token("other", "admin").1,
            s,
        }
    }

    fn jobs(&self) -> String {
        format!("{}/admin/v1/tenants/acme/jobs", self.root)
    }

    /// A job file's keys: from acme's SCIM directory into app's, hourly.
    fn job(&self, name: &str) -> Value {
        json!({
            "name": name,
            "interval": "1h",
            "source": {"kind": "scim", "url": format!("{}/scim/acme/v2", self.root), "token": self.acme_scim},
            "target": {"url": format!("{}/scim/app/v2", self.root), "token": self.app_scim},
            "scope": {"mode": "all"},
        })
    }

    /// The same job as TOML text.
    fn job_toml(&self, name: &str) -> String {
        toml::to_string(&self.job(name)).unwrap()
    }

    async fn admin(&self, method: Method, path: &str, body: Option<(&str, String)>) -> Answer {
        send(method, &format!("{}{path}", self.jobs()), &self.admin.1, body).await
    }
}

fn toml_body(text: impl Into<String>) -> Option<(&'static str, String)> {
    Some(("application/toml", text.into()))
}

fn json_body(v: &Value) -> Option<(&'static str, String)> {
    Some(("application/json", v.to_string()))
}

/// Who sends a request of the table.
#[derive(Debug, Clone, Copy)]
enum Who {
    Admin,
    /// `acme`'s SCIM (provisioning) token.
    Scim,
    /// `other`'s admin token.
    OtherAdmin,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_api_mistakes_are_scim_errors() {
    let w = World::start("errors");
    let made = w.admin(Method::POST, "", toml_body(w.job_toml("hr"))).await;
    assert_eq!(made.status, 201, "{}", made.text);

    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = w.job("bad");
        f(&mut v);
        v
    };
    let renamed = w.job_toml("other");
    let users_csv = w.s.dir.join("people.csv");
    std::fs::write(&users_csv, "id,userPrincipalName\n1,a@example.org\n").unwrap();
    let file_source = with(&|v| {
        v["source"] = json!({"kind": "file", "users": users_csv.display().to_string()});
    });
    let token_env = with(&|v| {
        v["target"] = json!({"url": "https://app.example.com/scim/v2", "token_env": "SCIMITAR_DATABASE_URL"});
    });
    let key_file = w.s.dir.join("server.key").display().to_string();
    let token_file = with(&|v| {
        v["target"] = json!({"url": "https://app.example.com/scim/v2", "token_file": key_file});
    });
    let placeholder = with(&|v| v["target"]["token"] = json!("(sealed)"));
    // Where the server must not be sent (SSRF): the metadata endpoint, the
    // private network, beyond what the operator allowed (127.0.0.0/8).
    let metadata = with(&|v| v["target"]["url"] = json!("http://169.254.169.254/latest/meta-data"));
    let private_source = with(&|v| v["source"]["url"] = json!("http://10.0.0.7/scim/v2"));
    let ipv6_loopback = with(&|v| v["target"]["url"] = json!("http://[::1]:8080/scim/v2"));

    // (who, method, path under …/jobs, body, status, scimType, words of the detail)
    #[allow(clippy::type_complexity)]
    let cases: Vec<(Who, Method, &str, Option<(&str, String)>, u16, Option<&str>, Vec<&str>)> = vec![
        // A job file's mistakes name their line and key, as `sync save` does.
        (
            Who::Admin,
            Method::POST,
            "",
            toml_body("name = \"bad\"\ninterval = 40m\n"),
            400,
            Some("invalidValue"),
            vec!["line 2", "key `interval`"],
        ),
        (
            Who::Admin,
            Method::POST,
            "",
            toml_body(format!("intervall = \"1h\"\n{}", w.job_toml("bad"))),
            400,
            Some("invalidValue"),
            vec!["line 1", "key `intervall`", "unknown field"],
        ),
        (
            Who::Admin,
            Method::POST,
            "",
            json_body(&with(&|v| v["interval"] = json!("soon"))),
            400,
            Some("invalidValue"),
            vec!["key `interval`"],
        ),
        (
            Who::Admin,
            Method::POST,
            "",
            json_body(&with(&|v| v["target"]["token"] = Value::Null)),
            400,
            Some("invalidValue"),
            vec!["key `target.token`", "null"],
        ),
        (
            Who::Admin,
            Method::POST,
            "",
            json_body(&json!(["name", "bad"])),
            400,
            Some("invalidSyntax"),
            vec!["object"],
        ),
        (
            Who::Admin,
            Method::POST,
            "",
            Some(("application/xml", "<job/>".into())),
            415,
            None,
            vec!["application/toml"],
        ),
        // Addresses the egress policy does not permit.
        (
            Who::Admin,
            Method::POST,
            "",
            json_body(&metadata),
            400,
            Some("invalidValue"),
            vec![
                "key `target.url`",
                "169.254.169.254",
                "not a public address",
                "--job-egress-allow",
            ],
        ),
        (
            Who::Admin,
            Method::POST,
            "",
            json_body(&private_source),
            400,
            Some("invalidValue"),
            vec!["key `source.url`", "10.0.0.7"],
        ),
        (
            Who::Admin,
            Method::POST,
            "",
            json_body(&ipv6_loopback),
            400,
            Some("invalidValue"),
            vec!["key `target.url`", "::1"],
        ),
        // The server's files and environment are the operator's.
        (
            Who::Admin,
            Method::POST,
            "",
            json_body(&file_source),
            400,
            Some("invalidValue"),
            vec!["key `source.kind`", "sync save"],
        ),
        (
            Who::Admin,
            Method::POST,
            "",
            json_body(&token_env),
            400,
            Some("invalidValue"),
            vec!["key `target.token_env`"],
        ),
        (
            Who::Admin,
            Method::POST,
            "",
            json_body(&token_file),
            400,
            Some("invalidValue"),
            vec!["key `target.token_file`"],
        ),
        // "(sealed)" stands for a stored secret; a new job has none.
        (
            Who::Admin,
            Method::POST,
            "",
            json_body(&placeholder),
            400,
            Some("invalidValue"),
            vec!["key `target.token`", "(sealed)"],
        ),
        (
            Who::Admin,
            Method::POST,
            "",
            toml_body(w.job_toml("hr")),
            409,
            Some("uniqueness"),
            vec!["already has a job named 'hr'"],
        ),
        (
            Who::Admin,
            Method::PUT,
            "/hr",
            toml_body(renamed),
            400,
            Some("invalidValue"),
            vec!["'other'", "cannot be renamed"],
        ),
        (
            Who::Admin,
            Method::GET,
            "/nope",
            None,
            404,
            None,
            vec!["no job named 'nope'"],
        ),
        (
            Who::Admin,
            Method::PUT,
            "/nope",
            toml_body(w.job_toml("nope")),
            404,
            None,
            vec!["no job named 'nope'"],
        ),
        (
            Who::Admin,
            Method::DELETE,
            "/nope",
            None,
            404,
            None,
            vec!["no job named 'nope'"],
        ),
        (
            Who::Admin,
            Method::POST,
            "/nope/start",
            None,
            404,
            None,
            vec!["no job named 'nope'"],
        ),
        (
            Who::Admin,
            Method::POST,
            "/hr/frobnicate",
            None,
            404,
            None,
            vec!["no job action"],
        ),
        (Who::Admin, Method::GET, "/hr/start", None, 405, None, vec!["POST"]),
        (Who::Admin, Method::PATCH, "/hr", None, 405, None, vec!["PUT"]),
        (
            Who::Admin,
            Method::POST,
            "/hr/restart",
            json_body(&json!({"reset_anchors": "yes"})),
            400,
            Some("invalidValue"),
            vec!["reset_anchors"],
        ),
        // Nothing held back, nothing to allow.
        (
            Who::Admin,
            Method::POST,
            "/hr/allow-deletes",
            None,
            409,
            None,
            vec!["not held by its deletion threshold"],
        ),
        // Provisioning tokens and other tenants' admin tokens get nowhere.
        (Who::Scim, Method::GET, "", None, 403, None, vec!["scope 'admin'"]),
        (Who::Scim, Method::GET, "/hr", None, 403, None, vec!["scope 'admin'"]),
        (
            Who::Scim,
            Method::POST,
            "/hr/start",
            None,
            403,
            None,
            vec!["scope 'admin'"],
        ),
        (Who::OtherAdmin, Method::GET, "", None, 401, None, vec![]),
        (Who::OtherAdmin, Method::GET, "/hr", None, 401, None, vec![]),
        (
            Who::OtherAdmin,
            Method::PUT,
            "/hr",
            toml_body(w.job_toml("hr")),
            401,
            None,
            vec![],
        ),
        (Who::OtherAdmin, Method::DELETE, "/hr", None, 401, None, vec![]),
        (Who::OtherAdmin, Method::POST, "/hr/stop", None, 401, None, vec![]),
    ];
    for (who, method, path, body, status, scim_type, words) in cases {
        let token = match who {
            Who::Admin => &w.admin.1,
            Who::Scim => &w.acme_scim,
            Who::OtherAdmin => &w.other_admin,
        };
        let what = format!("{who:?} {method} …/jobs{path}");
        let r = send(method, &format!("{}{path}", w.jobs()), token, body).await;
        assert_eq!(r.status, status, "{what}: {}", r.text);
        assert_eq!(
            r.body["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error",
            "{what}: {}",
            r.text
        );
        assert_eq!(r.body["status"], status.to_string(), "{what}: {}", r.text);
        assert_eq!(r.body["scimType"].as_str(), scim_type, "{what}: {}", r.text);
        let detail = r.body["detail"].as_str().unwrap_or_default();
        for word in words {
            assert!(detail.contains(word), "{what}: '{word}' not in {detail}");
        }
        assert!(!r.text.contains(&w.app_scim), "{what} leaked a secret");
    }

    // None of it changed the job or made another.
    let list = w.admin(Method::GET, "", None).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let names: Vec<&str> = list.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hr"]);
    assert_eq!(list.body["jobs"][0]["status"], "off");
    // A file source is the operator's to store, on the server.
    let mut files = file_source;
    files["name"] = json!("files");
    let path = w.s.dir.join("files.toml");
    std::fs::write(&path, toml::to_string(&files).unwrap()).unwrap();
    let saved =
        w.s.cli(&["sync", "save", "--tenant", "acme", "--job", path.to_str().unwrap()]);
    assert_eq!(saved["job"], "files", "{saved}");

    // Two administrators creating the same name at once: one wins, the
    // other is told the name is taken.
    for round in 0..5 {
        let name = format!("race{round}");
        let (x, y) = tokio::join!(
            w.admin(Method::POST, "", toml_body(w.job_toml(&name))),
            w.admin(Method::POST, "", toml_body(w.job_toml(&name)))
        );
        let mut statuses = [x.status, y.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 409], "{} / {}", x.text, y.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_managed_through_the_admin_api_from_creation_to_deletion() {
    let w = World::start("flow");
    // Someone in the source directory, to see cycles reach the target.
    let r = send(
        Method::POST,
        &format!("{}/scim/acme/v2/Users", w.root),
        &w.acme_scim,
        Some((
            "application/scim+json",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice@example.org"})
                .to_string(),
        )),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);

    // Created from JSON: 201, where it is, its view; off, as every new job.
    let made = w.admin(Method::POST, "", json_body(&w.job("hr"))).await;
    assert_eq!(made.status, 201, "{}", made.text);
    // Under the public URL (here the listen address as given, port 0).
    let location = made.location.unwrap_or_default();
    assert!(location.ends_with("/admin/v1/tenants/acme/jobs/hr"), "{location}");
    let j = &made.body;
    assert_eq!(
        (j["name"].as_str(), j["status"].as_str()),
        (Some("hr"), Some("off")),
        "{j}"
    );
    assert_eq!(j["interval_seconds"], 3600, "{j}");
    assert_eq!(
        (&j["next_cycle"], &j["running"], &j["error"]),
        (&Value::Null, &Value::Null, &Value::Null)
    );
    assert_eq!(j["initial_next"], true);

    // The view is `sync jobs --json`'s, field for field.
    let cli = w.s.cli(&["sync", "jobs", "--tenant", "acme"]);
    let api = w.admin(Method::GET, "", None).await;
    assert_eq!(api.status, 200, "{}", api.text);
    assert_eq!(api.body, cli, "the admin API and `sync jobs` describe jobs alike");

    // Read: the job file, with secrets as "(sealed)", never in clear.
    let read = w.admin(Method::GET, "/hr", None).await;
    assert_eq!(read.status, 200, "{}", read.text);
    let file = read.body["job_file"].as_str().unwrap().to_string();
    assert_eq!(file.matches("token = \"(sealed)\"").count(), 2, "{file}");
    for secret in [&w.acme_scim, &w.app_scim, &"sealed:v1:".to_string()] {
        assert!(!read.text.contains(secret.as_str()), "a secret is shown: {}", read.text);
    }
    assert_eq!(read.body["status"], "off");

    // Replaced with what was read, edited: the new interval, the state and
    // the secrets kept.
    let edited = file.replace("interval = \"1h\"", "interval = \"2h\"");
    assert_ne!(edited, file);
    let put = w.admin(Method::PUT, "/hr", toml_body(edited)).await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.body["interval_seconds"], 7200, "{}", put.text);

    // On: a cycle at once, which reaches the target with the kept token.
    let on = w.admin(Method::POST, "/hr/start", None).await;
    assert_eq!(on.status, 200, "{}", on.text);
    assert_eq!(on.body["status"], "on");
    assert!(on.body["next_cycle"].is_string(), "{}", on.text);
    let started = Instant::now();
    loop {
        let j = w.admin(Method::GET, "/hr", None).await.body;
        if j["last_cycle"]["finished"].is_string() && j["running"].is_null() {
            assert_eq!(j["last_cycle"]["error"], Value::Null, "{j}");
            assert_eq!(j["last_cycle"]["created"], 1, "{j}");
            assert_eq!(j["initial_next"], false, "{j}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no cycle ran: {j}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let users = send(Method::GET, &format!("{}/scim/app/v2/Users", w.root), &w.app_scim, None).await;
    assert_eq!(
        users.body["Resources"][0]["userName"], "alice@example.org",
        "{}",
        users.text
    );

    // The provisioning log of that cycle, with its filters and pages.
    let logs = w.admin(Method::GET, "/hr/logs", None).await;
    assert_eq!(logs.status, 200, "{}", logs.text);
    let records = logs.body["records"].as_array().cloned().unwrap_or_default();
    let created: Vec<&Value> = records.iter().filter(|r| r["provisioningAction"] == "create").collect();
    assert_eq!(created.len(), 1, "{}", logs.text);
    assert_eq!(created[0]["sourceIdentity"]["identityType"], "User", "{}", logs.text);
    assert!(
        created[0]["provisioningSteps"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    );
    let failures = w.admin(Method::GET, "/hr/logs?status=failure", None).await;
    assert_eq!(failures.body["records"], json!([]), "{}", failures.text);
    let page = w.admin(Method::GET, "/hr/logs?action=create&limit=1", None).await;
    assert_eq!(page.body["records"].as_array().map(Vec::len), Some(1), "{}", page.text);
    let next = page.body["next"]
        .as_i64()
        .expect("a full page says where the next starts");
    let rest = w
        .admin(Method::GET, &format!("/hr/logs?action=create&before={next}"), None)
        .await;
    assert_eq!(rest.body["records"], json!([]), "{}", rest.text);
    for (query, status, words) in [
        ("?status=failed", 400, "status 'failed'"),
        ("?action=remove", 400, "action 'remove'"),
        ("?limit=0", 400, "limit"),
        ("?colour=blue", 400, "parameters"),
    ] {
        let r = w.admin(Method::GET, &format!("/hr/logs{query}"), None).await;
        assert_eq!(r.status, status, "{query}: {}", r.text);
        assert!(r.text.contains(words), "{query}: {}", r.text);
    }
    assert_eq!(w.admin(Method::GET, "/nope/logs", None).await.status, 404);
    assert_eq!(w.admin(Method::POST, "/hr/logs", None).await.status, 405);
    let scim = send(Method::GET, &format!("{}/hr/logs", w.jobs()), &w.acme_scim, None).await;
    assert_eq!(scim.status, 403, "{}", scim.text);

    // Off; restarted, with reset_anchors in the query or in a JSON body.
    let off = w.admin(Method::POST, "/hr/stop", None).await;
    assert_eq!(
        (off.status, off.body["status"].as_str()),
        (200, Some("off")),
        "{}",
        off.text
    );
    let again = w.admin(Method::POST, "/hr/restart?reset_anchors=true", None).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body["initial_next"], true, "{}", again.text);
    let again = w
        .admin(Method::POST, "/hr/restart", json_body(&json!({"reset_anchors": false})))
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    let held = w.admin(Method::POST, "/hr/allow-deletes", None).await;
    assert_eq!(held.status, 409, "{}", held.text);

    // Deleted: 204, then gone.
    let gone = w.admin(Method::DELETE, "/hr", None).await;
    assert_eq!((gone.status, gone.text.as_str()), (204, ""));
    assert_eq!(w.admin(Method::GET, "/hr", None).await.status, 404);
    assert_eq!(w.admin(Method::GET, "", None).await.body, json!({"jobs": []}));

    // Each change is in the audit log, by the admin token, from the API.
    let audit = w.s.cli(&["audit", "--tenant", "acme"]);
    let by_api: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == "hr")
        .inspect(|e| {
            assert_eq!(e["actor"], format!("token:{}", w.admin.0), "{e}");
            assert!(e["source"].as_str().unwrap().starts_with("admin-api"), "{e}");
        })
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let mut actions = by_api.clone();
    actions.reverse();
    assert_eq!(
        actions,
        [
            "job.created",
            "job.changed",
            "job.started",
            "job.stopped",
            "job.restarted-reset-anchors",
            "job.restarted",
            "job.deleted"
        ],
        "{audit}"
    );
}

/// A signed-in console session of the real binary: its cookie and CSRF token.
struct Console {
    root: String,
    cookie: String,
    csrf: String,
}

/// A console answer: status, `Location`, page.
struct Page {
    status: u16,
    location: String,
    html: String,
}

impl Console {
    /// Creates an Admin of `tenant` with the CLI and signs it in.
    async fn sign_in(w: &World, tenant: &str, email: &str) -> Console {
        let password = "correct horse battery staple";
        let mut child =
            w.s.command()
                .args(["--database", &w.s.db, "admin", "create", "--tenant", tenant])
                .args(["--email", email, "--role", "admin"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
        {
            use std::io::Write;
            writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        }
        assert!(child.wait().unwrap().success(), "admin create");
        let client = browser();
        let login = client.get(format!("{}/login", w.root)).send().await.unwrap();
        let login_cookie = cookie_of(&login, "scimitar_login").expect("a login cookie");
        let csrf = csrf_in(&login.text().await.unwrap());
        let r = client
            .post(format!("{}/login", w.root))
            .header("cookie", format!("scimitar_login={login_cookie}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("email", email), ("password", password), ("csrf", &csrf)]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 303, "sign-in");
        let mut c = Console {
            root: w.root.clone(),
            cookie: cookie_of(&r, "scimitar_session").expect("a session"),
            csrf: String::new(),
        };
        let page = c.get(&format!("/console/t/{tenant}/applications")).await;
        c.csrf = csrf_in(&page.html);
        c
    }

    async fn answer(r: reqwest::Response) -> Page {
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            html: r.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        let r = browser()
            .get(format!("{}{path}", self.root))
            .header("cookie", format!("scimitar_session={}", self.cookie))
            .send()
            .await
            .unwrap();
        Self::answer(r).await
    }

    async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Page {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(pairs);
        let r = browser()
            .post(format!("{}{path}", self.root))
            .header("cookie", format!("scimitar_session={}", self.cookie))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&all))
            .send()
            .await
            .unwrap();
        Self::answer(r).await
    }
}

/// The console's Applications pages against the real binary: a job
/// created from its file, Test Connection (refused and accepted), the
/// mapping editor's expression preview (a result, and a parse error with
/// its position), a mapping and a scoping clause saved into the job file,
/// Provisioning Status On, the cycle's details and logs (filters, CSV,
/// JSON, a record's tabs), provisioning on demand in the console and the
/// admin API; every change audited with the console account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_runs_a_job_from_creation_to_provision_on_demand() {
    let w = World::start("console");
    let user = |name: &str| {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name,
               "name": {"givenName": "Ada", "familyName": "Lovelace"}})
        .to_string()
    };
    let scim = |path: &str| format!("{}/scim/{path}", w.root);
    let ada = send(
        Method::POST,
        &scim("acme/v2/Users"),
        &w.acme_scim,
        Some(("application/scim+json", user("ada@example.org"))),
    )
    .await;
    assert_eq!(ada.status, 201, "{}", ada.text);
    let c = Console::sign_in(&w, "acme", "admin@acme.example").await;
    let base = "/console/t/acme/applications";

    let list = c.get(base).await;
    assert!(list.html.contains("No applications yet."), "{}", list.html);
    let made = c.post(base, &[("job_file", &w.job_toml("crm"))]).await;
    assert_eq!(
        (made.status, made.location.as_str()),
        (303, "/console/t/acme/applications/crm?notice=created")
    );
    let bad = c.post(base, &[("job_file", "name = \"x\"\ncolour = 1")]).await;
    assert_eq!(bad.status, 200, "the form comes back");
    assert!(bad.html.contains("role=\"alert\""), "{}", bad.html);

    let job = format!("{base}/crm");
    let page = c.get(&job).await;
    assert_eq!(page.status, 200);
    for words in [
        "Admin Credentials",
        "Provisioning Status: <strong class=\"status-off\">off",
        "<code>userName</code>",
        "Scoping filters",
        "Restart provisioning",
    ] {
        assert!(page.html.contains(words), "{words}: {}", page.html);
    }
    assert!(!page.html.contains(&w.app_scim), "the Secret Token is never shown");

    // Test Connection: a wrong Secret Token, then the right one.
    let target = format!("{}/scim/app/v2", w.root);
    let refused = c
        .post(
            &format!("{job}/credentials"),
            &[("url", &target), ("token", "scim_wrong"), ("test", "1")],
        )
        .await;
    assert!(refused.html.contains("Test Connection failed"), "{}", refused.html);
    let accepted = c
        .post(
            &format!("{job}/credentials"),
            &[("url", &target), ("token", &w.app_scim), ("test", "1")],
        )
        .await;
    assert!(accepted.html.contains("Test Connection succeeded"), "{}", accepted.html);

    // The mapping editor: a preview, a parse error with its position.
    let editor = c.get(&format!("{job}/mappings/user?target=displayName")).await;
    assert_eq!(editor.status, 200);
    assert!(editor.html.contains("Expression preview"), "{}", editor.html);
    let mapping = |op: &'static str, expression: &'static str| {
        [
            ("op", op),
            ("target", "nickName"),
            ("kind", "expression"),
            ("expression", expression),
            ("apply", "always"),
            ("sample", "{\"givenName\": \"Ada\", \"surname\": \"Lovelace\"}"),
        ]
    };
    let preview = c
        .post(
            &format!("{job}/mappings/user"),
            &mapping("preview", "Join(\" \", [givenName], [surname])"),
        )
        .await;
    assert!(
        preview.html.contains("Result: <code>&#34;Ada Lovelace&#34;</code>") || preview.html.contains("Ada Lovelace"),
        "{}",
        preview.html
    );
    let broken = c
        .post(
            &format!("{job}/mappings/user"),
            &mapping("preview", "Join(\" \", [givenName]"),
        )
        .await;
    assert!(broken.html.contains("id=\"preview-error\""), "{}", broken.html);
    assert!(broken.html.contains("line 1, column"), "{}", broken.html);
    let saved = c
        .post(
            &format!("{job}/mappings/user"),
            &mapping("save", "Join(\".\", ToLower([givenName]), ToLower([surname]))"),
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.html);
    let clause = c
        .post(
            &format!("{job}/scoping/user"),
            &[
                ("filter", "new"),
                ("attribute", "userPrincipalName"),
                ("operator", "IS NOT NULL"),
            ],
        )
        .await;
    assert_eq!(clause.status, 303, "{}", clause.html);
    let page = c.get(&job).await;
    assert!(page.html.contains("<code>nickName</code>"), "{}", page.html);
    assert!(page.html.contains("userPrincipalName IS NOT NULL"), "{}", page.html);
    let file = w.admin(Method::GET, "/crm", None).await.body["job_file"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(file.contains("target = \"nickName\""), "{file}");

    // On: the cycle provisions ada with the new mapping.
    let on = c
        .post(
            &format!("{job}/settings"),
            &[
                ("scope_mode", "all"),
                ("interval", "1h"),
                ("deletion_threshold", "500"),
                ("notification_email", ""),
                ("status", "on"),
                ("user_create", "on"),
                ("user_update", "on"),
                ("user_delete", "on"),
                ("group_create", "on"),
                ("group_update", "on"),
                ("group_delete", "on"),
            ],
        )
        .await;
    assert_eq!(
        (on.status, on.location.as_str()),
        (303, "/console/t/acme/applications/crm?notice=on")
    );
    let started = Instant::now();
    loop {
        let j = w.admin(Method::GET, "/crm", None).await.body;
        if j["last_cycle"]["finished"].is_string() && j["running"].is_null() {
            assert_eq!(j["last_cycle"]["created"], 1, "{j}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no cycle ran: {j}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let app_users = send(Method::GET, &scim("app/v2/Users"), &w.app_scim, None).await;
    assert_eq!(
        app_users.body["Resources"][0]["nickName"], "ada.lovelace",
        "{}",
        app_users.text
    );

    let details = c.get(&format!("{job}/details")).await;
    assert!(details.html.contains("No cycle is running."), "{}", details.html);
    assert!(
        details.html.contains("<th scope=\"col\">created</th>"),
        "{}",
        details.html
    );
    let progress = c.get(&format!("{job}/progress.json")).await;
    let progress: Value = serde_json::from_str(&progress.html).unwrap();
    assert_eq!(
        (progress["status"].as_str(), &progress["running"]),
        (Some("on"), &json!(false))
    );

    // Logs: the create, its CSV and JSON, its record's tabs.
    let logs = c.get(&format!("{job}/logs?action=create")).await;
    let href = format!("href=\"{job}/logs/");
    let i = logs.html.find(&href).expect("a record link") + href.len();
    let id: String = logs.html[i..].chars().take_while(char::is_ascii_digit).collect();
    let none = c.get(&format!("{job}/logs?status=failure")).await;
    assert!(none.html.contains("No records match."), "{}", none.html);
    let csv = c.get(&format!("{job}/logs.csv?action=create")).await;
    assert_eq!(csv.html.lines().count(), 2, "{}", csv.html);
    assert!(csv.html.contains("\"create\",\"success\",\"User\""), "{}", csv.html);
    let json_logs: Value = serde_json::from_str(&c.get(&format!("{job}/logs.json")).await.html).unwrap();
    assert!(
        json_logs
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["provisioningAction"] == "create"))
    );
    let steps = c.get(&format!("{job}/logs/{id}?view=steps")).await;
    assert!(steps.html.contains("EntryImport"), "{}", steps.html);
    let props = c.get(&format!("{job}/logs/{id}?view=properties")).await;
    assert!(props.html.contains("ada.lovelace"), "{}", props.html);
    let summary = c.get(&format!("{job}/logs/{id}?view=summary")).await;
    assert!(summary.html.contains("Source identity"), "{}", summary.html);
    assert_eq!(c.get(&format!("{job}/logs/999999")).await.status, 404);

    // Provision on demand: a new user, now, in the console …
    let bob = send(
        Method::POST,
        &scim("acme/v2/Users"),
        &w.acme_scim,
        Some(("application/scim+json", user("bob@example.org"))),
    )
    .await;
    let bob_id = bob.body["id"].as_str().unwrap().to_string();
    let run = c
        .post(&format!("{job}/provision"), &[("kind", "user"), ("id", &bob_id)])
        .await;
    assert_eq!(run.status, 200);
    assert!(run.html.contains("id=\"ondemand-result\""), "{}", run.html);
    assert!(run.html.contains("bob@example.org: create (success)"), "{}", run.html);
    let nobody = c
        .post(&format!("{job}/provision"), &[("kind", "user"), ("id", " ")])
        .await;
    assert!(nobody.html.contains("id=\"ondemand-error\""), "{}", nobody.html);
    // … and through the admin API, with its mistakes.
    let api = w
        .admin(
            Method::POST,
            "/crm/provision-on-demand",
            json_body(&json!({"user": ada.body["id"]})),
        )
        .await;
    assert_eq!(api.status, 200, "{}", api.text);
    assert_eq!(api.body["summary"]["kind"], "onDemand", "{}", api.text);
    for (body, status) in [
        (json!({}), 400),
        (json!({"user": ""}), 400),
        (json!({"user": "a", "group": "b"}), 400),
        (json!({"colour": "blue"}), 400),
        (json!(["user"]), 400),
    ] {
        let r = w
            .admin(Method::POST, "/crm/provision-on-demand", json_body(&body))
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert!(r.body["scimType"].is_string() || r.status == 400, "{}", r.text);
    }
    let tested = w.admin(Method::POST, "/crm/test-connection", None).await;
    assert_eq!(
        (tested.status, &tested.body["ok"]),
        (200, &json!(true)),
        "{}",
        tested.text
    );

    // Deleted once confirmed; the target's accounts stay.
    let unconfirmed = c.post(&format!("{job}/delete"), &[]).await;
    assert!(
        unconfirmed.html.contains("Tick the box to confirm"),
        "{} {}",
        unconfirmed.status,
        unconfirmed.html
    );
    let deleted = c.post(&format!("{job}/delete"), &[("confirm", "on")]).await;
    assert_eq!(
        (deleted.status, deleted.location.as_str()),
        (303, "/console/t/acme/applications?notice=deleted")
    );
    assert_eq!(w.admin(Method::GET, "/crm", None).await.status, 404);
    assert!(c.get(base).await.html.contains("No applications yet."));
    let kept = send(Method::GET, &scim("app/v2/Users"), &w.app_scim, None).await;
    assert_eq!(kept.body["totalResults"], 2, "{}", kept.text);

    // Audited with the console account and what changed.
    let audit = w.s.cli(&["audit", "--tenant", "acme"]);
    let events = audit["events"].as_array().unwrap();
    let by_console: Vec<&str> = events
        .iter()
        .filter(|e| e["actor"] == "admin@acme.example")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in [
        "job.created",
        "job.changed",
        "job.connection-tested",
        "job.started",
        "job.provisioned-on-demand",
    ] {
        assert!(by_console.contains(&want), "{want} in {by_console:?}");
    }
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "job.changed" && e["detail"].as_str().is_some_and(|d| d.contains("mappings.user"))),
        "{audit}"
    );
}
