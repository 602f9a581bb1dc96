//! `scimitar validate`, the command: its exit codes (0 pass, 1 failures,
//! 2 when the endpoint cannot be validated, 130 interrupted), one clear
//! message for each kind of bad input and no test table, its report files,
//! Ctrl-C cleaning up; and the console's "Validate this tenant".

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "../../scimitar-validate/tests/support/mod.rs"]
mod support;

use scimitar_testkit::browser::{client as browser, cookie_of, csrf_in, form};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::proxy::{self, Defect};

const BIN: &str = env!("CARGO_BIN_EXE_scimitar");

fn command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("SCIMITAR_VALIDATE_TOKEN")
        .env_remove("SCIMITAR_CONFIG")
        .env_remove("SCIMITAR_DATABASE_URL");
    cmd
}

async fn run(args: Vec<String>, env_token: Option<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = command();
        cmd.arg("validate").args(&args);
        if let Some(t) = env_token {
            cmd.env("SCIMITAR_VALIDATE_TOKEN", t);
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap()
}

fn args(url: &str, token: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["--url", url, "--token", token, "--load-seconds", "0", "--timeout", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// A server that answers every request with this status, type and body.
async fn fixed(status: u16, content_type: &'static str, body: &'static str) -> String {
    let app = axum::Router::new().fallback(move || async move {
        (
            axum::http::StatusCode::from_u16(status).unwrap(),
            [("content-type", content_type)],
            body,
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/scim/v2")
}

/// A server that accepts connections and never answers.
async fn hanging() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    format!("http://{addr}/scim/v2")
}

/// A server whose answer never ends (`{"totalResults":1,"Resources":[{"id":"aaaa…`),
/// as fast as it can be read.
async fn endless() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/scim+json\r\nconnection: close\r\n\r\n";
                if s.write_all(head.as_bytes()).await.is_err()
                    || s.write_all(br#"{"totalResults":1,"Resources":[{"id":""#).await.is_err()
                {
                    return;
                }
                let chunk = vec![b'a'; 1 << 20];
                while s.write_all(&chunk).await.is_ok() {}
            });
        }
    });
    format!("http://{addr}/scim/v2")
}

/// Each kind of bad input: exit code 2, one line on stderr that says what
/// is wrong, no test table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_one_clear_message_and_exit_code_2() {
    let server = scimitar_testkit::TestServer::start().await;
    let tenant = server.tenant("acme").await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/scim/v2", l.local_addr().unwrap())
    };
    let tls = tenant.base.replace("http://", "https://");
    let html = fixed(
        200,
        "text/html; charset=utf-8",
        "<!DOCTYPE html><html><body>Sign in</body></html>",
    )
    .await;
    let not_found = fixed(404, "text/plain", "Not Found").await;
    let not_json = fixed(200, "text/plain", "OK").await;
    let hang = hanging().await;
    let huge = endless().await;
    let table: Vec<(&str, String, &str, &str)> = vec![
        ("unreachable", closed, "t", "cannot connect to"),
        ("TLS to a plain port", tls, "t", "does not speak TLS"),
        (
            "wrong token",
            tenant.base.clone(),
            "scim_wrong",
            "refused the token (401)",
        ),
        ("HTML", html, "t", "HTML page"),
        (
            "404 on /Users",
            not_found,
            "t",
            "answered 404: this is not a SCIM base URL",
        ),
        ("hangs", hang, "t", "did not answer within 1 s"),
        ("not JSON", not_json, "t", "not JSON"),
        (
            "an answer without end",
            huge,
            "t",
            "answered 200, but the answer could not be read: the answer (200) is larger than 8388608 bytes",
        ),
        (
            "not a URL",
            "app.example.com/scim".into(),
            "t",
            "is not an http:// or https:// URL",
        ),
    ];
    for (case, url, token, says) in table {
        let started = std::time::Instant::now();
        let out = run(args(&url, token, &[]), None).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{case}: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "{case}: no table: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(stderr.lines().count(), 1, "{case}: one message: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(says),
            "{case}: {stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{case}: took {:?}",
            started.elapsed()
        );
    }
    // --json: the same, as one object.
    let out = run(args(&tenant.base, "scim_wrong", &["--json"]), None).await;
    assert_eq!(out.status.code(), Some(2));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["kind"], "unauthorized");
    // An --only that names no test.
    let out = run(args(&tenant.base, &tenant.token, &["--only", "nonsense"]), None).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no test is named 'nonsense'"));
}

/// A passing run (the token from the environment) writes its JUnit and
/// HTML reports and exits 0; a failing one prints the failure with what
/// Entra logs and exits 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_report_files() {
    let server = scimitar_testkit::TestServer::start().await;
    let tenant = server.tenant("acme").await;
    let dir = server.dir.join("reports");
    std::fs::create_dir_all(&dir).unwrap();
    let junit = dir.join("junit.xml");
    let html = dir.join("report.html");
    let mut a: Vec<String> = ["--url", &tenant.base, "--groups", "--load-seconds", "0.5"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend([
        "--junit".into(),
        junit.display().to_string(),
        "--html".into(),
        html.display().to_string(),
    ]);
    let out = run(a, Some(tenant.token.clone())).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("PASS  POST /Users - Create a new User"), "{stdout}");
    assert!(!stdout.contains("\x1b["), "no colour when not on a terminal");
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(
        x.starts_with("<?xml") && x.contains("failures=\"0\"") && x.contains("Create a new User"),
        "{x}"
    );
    let h = std::fs::read_to_string(&html).unwrap();
    assert!(h.starts_with("<!DOCTYPE html>") && h.contains("0 failed") && !h.contains("<script"));

    let p = proxy::start(&tenant.base, Defect::StartIndexIgnored).await;
    let out = run(
        args(&p.url, &tenant.token, &["--junit", &junit.display().to_string()]),
        None,
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  User pagination"), "{stdout}");
    assert!(
        stdout.contains("Entra logs: SystemForCrossDomainIdentityManagementServiceIncompatible"),
        "{stdout}"
    );
    assert!(
        stdout.contains("sent:     GET ") && stdout.contains("startIndex=6&count=5"),
        "{stdout}"
    );
    assert!(std::fs::read_to_string(&junit).unwrap().contains("<failure message="));
    let out = run(args(&p.url, &tenant.token, &["--json"]), None).await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["failed"], 1);
}

/// Ctrl-C in the middle of a run: what it created is deleted, exit 130.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cleans_up() {
    let server = scimitar_testkit::TestServer::start().await;
    let tenant = server.tenant("acme").await;
    tenant.create_user("dave@example.com").await;
    let before = support::snapshot(&tenant.base, &tenant.token).await;
    let p = proxy::start(&tenant.base, Defect::HangOnSecondPage).await;
    let child = command()
        .arg("validate")
        .args(["--url", &p.url, "--token", &tenant.token, "--load-seconds", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), p.hung.notified())
        .await
        .expect("the run reached the pagination check");
    // The users of the pagination check exist now.
    assert_ne!(support::snapshot(&tenant.base, &tenant.token).await, before);
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Interrupted"), "{stdout}");
    assert_eq!(support::snapshot(&tenant.base, &tenant.token).await, before);
}

// ---------------------------------------------------------------------------
// The console's "Validate this tenant", on the real binary.

/// A `scimitar serve` process with its database, killed when dropped.
struct Node {
    child: std::process::Child,
    root: String,
    dir: std::path::PathBuf,
    db: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Node {
    fn command(&self) -> Command {
        let mut cmd = command();
        cmd.env("SCIMITAR_KEY_FILE", self.dir.join("server.key"))
            .env_remove("SCIMITAR_PUBLIC_URL");
        cmd
    }

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

    fn start() -> Node {
        use std::io::BufRead;
        let dir = std::env::temp_dir().join(format!("scimitar-validate-console-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = format!("sqlite:{}/scimitar.db", dir.display());
        // A known port: the Tenant URL the console validates is built from
        // the listen address (no --public-url).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = command();
        let mut child = cmd
            .env("SCIMITAR_KEY_FILE", dir.join("server.key"))
            .env_remove("SCIMITAR_PUBLIC_URL")
            .env("SCIMITAR_LOG", "warn")
            .args(["--database", &db, "serve", "--listen", &listen, "--rate-limit", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("Listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let root = rx.recv_timeout(Duration::from_secs(60)).expect("serve started");
        Node { child, root, dir, db }
    }
}

/// Settings → Provisioning → "Validate this tenant": every test passes
/// against the tenant's own Tenant URL; the run's token is labelled
/// "validator", expires within minutes and is revoked afterwards; the
/// tenant holds what it held before; the run is audited; a form without
/// the CSRF token is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_validates_its_tenant() {
    let node = Node::start();
    node.cli(&["tenant", "create", "acme"]);
    let token = node.cli(&["token", "create", "--tenant", "acme"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("{}/scim/acme/v2", node.root);
    let before = support::snapshot(&base, &token).await;
    let password = "correct horse battery staple";
    let mut child = node
        .command()
        .args(["--database", &node.db, "admin", "create", "--tenant", "acme"])
        .args(["--email", "admin@acme.test", "--role", "admin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    }
    assert!(child.wait().unwrap().success());
    let client = browser();
    let login = client.get(format!("{}/login", node.root)).send().await.unwrap();
    let login_cookie = cookie_of(&login, "scimitar_login").unwrap();
    let csrf = csrf_in(&login.text().await.unwrap());
    let r = client
        .post(format!("{}/login", node.root))
        .header("cookie", format!("scimitar_login={login_cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("email", "admin@acme.test"),
            ("password", password),
            ("csrf", &csrf),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let session = format!("scimitar_session={}", cookie_of(&r, "scimitar_session").unwrap());
    let page = client
        .get(format!("{}/console/t/acme/settings/provisioning", node.root))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Validate this tenant"), "the button");
    let csrf = csrf_in(&page);
    let url = format!("{}/console/t/acme/settings/provisioning/validate", node.root);
    let post = |body: String| {
        client
            .post(&url)
            .header("cookie", &session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let refused = post(form(&[("csrf", "wrong")])).await.unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    let r = post(form(&[("csrf", &csrf)])).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let html = r.text().await.unwrap();
    let passed = html.matches("data-status=\"pass\"").count();
    assert!(html.contains(" 0 failed, 0 skipped</strong>"), "{html}");
    assert_eq!(passed, scimitar_validate::catalogue::TESTS.len(), "{html}");
    assert!(!html.contains("data-status=\"fail\""));
    assert!(html.contains("Patch Group - Add Member") && html.contains("Load check:"));
    // The run's token: labelled validator, scope scim, short-lived, revoked.
    let tokens = node.cli(&["token", "list", "--tenant", "acme"]);
    let v: Vec<&Value> = tokens["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["label"] == "validator")
        .collect();
    assert_eq!(v.len(), 1, "{tokens}");
    assert_eq!(v[0]["scope"], "scim");
    assert!(v[0]["revoked"].is_string(), "{tokens}");
    assert!(
        v[0]["expires"]
            .as_str()
            .is_some_and(|e| e > v[0]["created"].as_str().unwrap())
    );
    assert_eq!(
        support::snapshot(&base, &token).await,
        before,
        "the tenant is as it was"
    );
    let audit = node.cli(&["audit", "--tenant", "acme"]);
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"tenant.validated"), "{actions:?}");
}
