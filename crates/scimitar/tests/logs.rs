//! What `scimitar serve` writes, through the binary: one line per request
//! (route template, status, duration, request id, tenant; no ids, query
//! strings or tokens), `--log-format json` making every line on standard
//! output JSON, the setup link on standard error only, no colour codes
//! when the output is not a terminal, and `--request-log off`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_scimitar");
const TOKEN: &str = "scim_notavalidtokenbutsecretlooking0123456789";
const USER_ID: &str = "2819c223-7f76-453a-919d-413861904646";

struct Run {
    stdout: String,
    stderr: String,
    request_id: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `serve` with `args` on a fresh database, sends a request with a
/// token, an id and a query string (answered 401), stops the server with
/// SIGTERM and returns what it wrote.
async fn serve_once(name: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let dir = std::env::temp_dir().join(format!("scimitar-logs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let db = format!("sqlite:{}/db/s.db", dir.display());
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database", &db])
        .args(args)
        .env_remove("SCIMITAR_LOG")
        .env_remove("SCIMITAR_LOG_FORMAT")
        .env_remove("SCIMITAR_REQUEST_LOG")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let client = scimitar_testkit::client();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..100 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server did not start");
    let r = client
        .get(format!(
            "{base}/scim/Default/v2/Users/{USER_ID}?filter=userName%20eq%20%22hidden%40example.com%22"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let mut stopped = false;
    for _ in 0..100 {
        if child.try_wait().unwrap().is_some() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !stopped {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        request_id,
    }
}

/// What no log line may hold: the token, the resource id, the query string.
fn assert_nothing_secret(log: &str) {
    for secret in [TOKEN, USER_ID, "filter", "hidden", "/setup?code="] {
        assert!(!log.contains(secret), "the log holds {secret:?}:\n{log}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn json_logs_are_json_on_every_line_with_one_line_per_request() {
    let run = serve_once("json", &["--log-format", "json"], &[]).await;
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{}", run.stdout)))
        .collect();
    let message = |v: &Value| v["fields"]["message"].as_str().unwrap_or_default().to_string();
    // The start-up banner is in the log, as JSON.
    for start in [
        "Created the first tenant",
        "  Tenant URL:   ",
        "Public URL: ",
        "Listening on http://",
    ] {
        assert!(
            lines.iter().any(|v| message(v).starts_with(start)),
            "no {start:?} line:\n{}",
            run.stdout
        );
    }
    // The request: its route template, status, tenant and request id.
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|v| v["target"] == "scimitar::request" && v["fields"]["route"] != "/healthz")
        .collect();
    assert_eq!(requests.len(), 1, "{}", run.stdout);
    let f = &requests[0]["fields"];
    assert_eq!(requests[0]["level"], "INFO");
    assert_eq!(f["method"], "GET");
    assert_eq!(f["route"], "/scim/{tenant}/v2/Users/{id}");
    assert_eq!(f["status"], 401);
    assert_eq!(f["tenant"], "default");
    assert_eq!(f["request_id"], run.request_id.as_str());
    assert!(f["duration_ms"].as_f64().is_some_and(|d| d >= 0.0), "{f}");
    assert_nothing_secret(&run.stdout);
    // The setup link is a credential: on standard error, not in the log.
    assert!(
        run.stderr
            .contains("Set up the admin console (one-time link, valid 24 hours): http://127.0.0.1:"),
        "{}",
        run.stderr
    );
}

#[cfg(unix)]
#[tokio::test]
async fn text_logs_have_no_colour_codes_off_a_terminal() {
    let run = serve_once("text", &[], &[]).await;
    assert!(!run.stdout.contains('\u{1b}'), "colour codes:\n{}", run.stdout);
    assert!(!run.stderr.contains('\u{1b}'), "colour codes:\n{}", run.stderr);
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("scimitar::request") && l.contains("status=401"))
        .unwrap_or_else(|| panic!("no request line:\n{}", run.stdout));
    for field in [
        " INFO ",
        "method=GET",
        "route=/scim/{tenant}/v2/Users/{id}",
        "tenant=default",
        "duration_ms=",
    ] {
        assert!(line.contains(field), "{field:?} not in {line}");
    }
    assert!(line.contains(&format!("request_id={}", run.request_id)), "{line}");
    assert_nothing_secret(&run.stdout);
    assert!(run.stdout.contains("Listening on http://"), "{}", run.stdout);
    assert!(run.stderr.contains("one-time link"), "{}", run.stderr);
}

#[cfg(unix)]
#[tokio::test]
async fn the_request_log_can_be_turned_off() {
    for (name, args, env) in [
        ("off-flag", &["--request-log", "off"][..], &[][..]),
        ("off-env", &[][..], &[("SCIMITAR_REQUEST_LOG", "false")][..]),
    ] {
        let run = serve_once(name, args, env).await;
        assert!(run.stdout.contains("Listening on http://"), "{}", run.stdout);
        assert!(!run.stdout.contains("scimitar::request"), "{name}:\n{}", run.stdout);
    }
}
