//! Faults of a target and a source, one row each: what `scimitar sync run`
//! makes of them — quarantine (and why), a failed object kept for the next
//! cycle, a retry that succeeds, a cycle that stops without committing —
//! and that the next run, once the fault is gone, ends with every user
//! exactly once.
//!
//! The target is a scripted SCIM server in this process: a minimal users
//! endpoint, with a fault answered instead of the real answer for the
//! requests a row names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

#[path = "../../scimitar-engine/tests/support/slapd.rs"]
mod slapd;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_scimitar");

/// What the target does instead of answering.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Healthy,
    /// Every request: this status with a SCIM error.
    All(u16),
    /// `GET /Users?filter=…` (Test Connection's probe): this status.
    Probe(u16),
    /// The probe answers 200 with a body that is not a ListResponse.
    ProbeNotAList,
    /// The probe answers 200 with a body that is not JSON.
    ProbeNotJson,
    /// Every `POST /Users`: this status with a SCIM error.
    Post(u16),
    /// The first `n` `POST /Users`: 429, with `Retry-After: 1` or without.
    Throttle {
        n: usize,
        retry_after: bool,
    },
    /// `POST /Users` never answers.
    Hang,
    /// After this many `POST /Users`, every request answers 503 (an outage
    /// mid-cycle; a target that refuses connections is in sync_e2e.rs).
    OutageAfter(usize),
}

#[derive(Default)]
struct Target {
    fault: Option<Fault>,
    /// userName → id.
    users: BTreeMap<String, String>,
    posts: usize,
    /// As a source: list pages from this `startIndex` on answer 503 (the
    /// directory goes away in the middle of a paged read).
    gone_from: Option<usize>,
}

type Shared = Arc<Mutex<Target>>;

fn scim_error(status: u16, detail: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap();
    let mut body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": status.to_string(), "detail": detail});
    if status == 409 {
        body["scimType"] = json!("uniqueness");
    }
    (code, [("content-type", "application/scim+json")], body.to_string()).into_response()
}

/// A page of `users` (`startIndex` from 1; all of them without `count`).
fn list(users: &[(String, String)], start: usize, count: Option<usize>) -> Response {
    let total = users.len();
    let resources: Vec<Value> = users
        .iter()
        .skip(start.saturating_sub(1))
        .take(count.unwrap_or(usize::MAX))
        .map(|(name, id)| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id, "userName": name, "active": true}))
        .collect();
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total, "Resources": resources, "startIndex": start, "itemsPerPage": resources.len()});
    (
        StatusCode::OK,
        [("content-type", "application/scim+json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(State(t): State<Shared>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let query = percent_encoding::percent_decode_str(uri.query().unwrap_or_default())
        .decode_utf8_lossy()
        .replace('+', " ");
    let fault = t.lock().unwrap().fault.unwrap_or(Fault::Healthy);
    let is_post = method == Method::POST && path.ends_with("/Users");
    let is_probe = method == Method::GET && path.ends_with("/Users") && query.contains("filter=");
    match fault {
        Fault::All(s) => return scim_error(s, "scripted fault"),
        Fault::Probe(s) if is_probe => return scim_error(s, "scripted fault"),
        Fault::ProbeNotAList if is_probe => {
            return (StatusCode::OK, [("content-type", "application/json")], "{\"ok\":true}").into_response();
        }
        Fault::ProbeNotJson if is_probe => {
            return (StatusCode::OK, [("content-type", "text/html")], "<html>login</html>").into_response();
        }
        Fault::Post(s) if is_post => return scim_error(s, "scripted fault"),
        Fault::Hang if is_post => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Fault::Throttle { n, retry_after } if is_post => {
            let mut g = t.lock().unwrap();
            if g.posts < n {
                g.posts += 1;
                let mut r = scim_error(429, "slow down");
                if retry_after {
                    r.headers_mut().insert("retry-after", "1".parse().unwrap());
                }
                return r;
            }
        }
        Fault::OutageAfter(n) if t.lock().unwrap().posts >= n => {
            return scim_error(503, "down for maintenance");
        }
        _ => {}
    }
    let mut g = t.lock().unwrap();
    if is_post {
        g.posts += 1;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let name = v["userName"].as_str().unwrap_or_default().to_string();
        if g.users.contains_key(&name) {
            return scim_error(409, "userName is taken");
        }
        let id = format!("id-{}", g.users.len() + 1);
        g.users.insert(name.clone(), id.clone());
        let out = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": id, "userName": name, "active": true});
        return (
            StatusCode::CREATED,
            [("content-type", "application/scim+json")],
            out.to_string(),
        )
            .into_response();
    }
    let param = |k: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse::<usize>().ok())
    };
    let start = param("startIndex").unwrap_or(1);
    if method == Method::GET && path.ends_with("/Users") && g.gone_from.is_some_and(|from| start >= from) {
        return scim_error(503, "the directory is gone");
    }
    if method == Method::GET && path.ends_with("/Users") {
        // `userName eq "x"` (matching, and the probe): the user, or nothing.
        let wanted = query
            .split("eq \"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(str::to_lowercase);
        let hits: Vec<(String, String)> = g
            .users
            .iter()
            .filter(|(n, _)| wanted.as_deref().is_none_or(|w| n.to_lowercase() == w))
            .map(|(n, i)| (n.clone(), i.clone()))
            .collect();
        return list(&hits, start, param("count"));
    }
    if method == Method::GET && path.ends_with("/Groups") {
        // As a source: a directory without groups.
        return list(&[], start, param("count"));
    }
    if method == Method::PATCH || method == Method::PUT {
        return (StatusCode::OK, [("content-type", "application/scim+json")], "{}").into_response();
    }
    scim_error(404, "no such resource")
}

/// The scripted target on a loopback port.
struct Fake {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Fake {
    async fn start(state: Shared) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().fallback(handle).with_state(state.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Fake {
            url: format!("http://127.0.0.1:{port}/scim/v2"),
            task,
        }
    }
}

struct Scratch {
    dir: PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("scimitar-faults-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut csv = String::from("mailNickname,userPrincipalName,mail,givenName,surname,displayName\n");
        for i in 0..3 {
            csv += &format!("u{i},u{i}@example.org,u{i}@example.org,U{i},Test,U{i} Test\n");
        }
        std::fs::write(dir.join("users.csv"), csv).unwrap();
        Scratch { dir }
    }

    fn write_job(&self, url: &str) {
        std::fs::write(
            self.dir.join("job.toml"),
            format!(
                "name = \"hr\"\nconcurrency = 1\nrequest_timeout = \"1s\"\n[source]\nkind = \"file\"\nusers = \"users.csv\"\nkey = \"mailNickname\"\n[scope]\nmode = \"all\"\n[target]\nurl = \"{url}\"\ntoken = \"t0ken\"\n"
            ),
        )
        .unwrap();
    }

    /// `sync run --once`: (succeeded, stdout JSON or stderr text).
    fn run(&self) -> (bool, String) {
        let out = tokio::task::block_in_place(|| {
            Command::new(BIN)
                .env("SCIMITAR_KEY_FILE", self.dir.join("server.key"))
                .args(["sync", "run", "--once", "--json", "--job"])
                .arg(self.dir.join("job.toml"))
                .arg("--database")
                .arg(format!("sqlite:{}/engine.db", self.dir.display()))
                .output()
                .unwrap()
        });
        let text = if out.status.success() {
            String::from_utf8_lossy(&out.stdout).to_string()
        } else {
            String::from_utf8_lossy(&out.stderr).to_string()
        };
        (out.status.success(), text)
    }

    fn job(&self) -> Value {
        let out = tokio::task::block_in_place(|| {
            Command::new(BIN)
                .env("SCIMITAR_KEY_FILE", self.dir.join("server.key"))
                .args(["sync", "jobs", "--json", "--database"])
                .arg(format!("sqlite:{}/engine.db", self.dir.display()))
                .output()
                .unwrap()
        });
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["jobs"][0].clone()
    }
}

/// What a row expects of the faulty run.
struct Expect {
    /// `sync run` succeeds (the cycle ran; objects may have failed).
    ok: bool,
    /// Objects that failed in it (when it ran).
    failed: u64,
    /// The quarantine reason, if the job is quarantined.
    quarantine: Option<&'static str>,
    /// Words of what the run says.
    says: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_leads_to_its_state_and_the_next_run_converges() {
    use Fault::*;
    let rows: Vec<(&str, Fault, Expect)> = vec![
        (
            "probe 401",
            Probe(401),
            Expect {
                ok: false,
                failed: 0,
                quarantine: Some("EncounteredQuarantineException"),
                says: "refused the Secret Token",
            },
        ),
        (
            "every request 403",
            All(403),
            Expect {
                ok: false,
                failed: 0,
                quarantine: Some("EncounteredQuarantineException"),
                says: "refused the Secret Token",
            },
        ),
        (
            "probe 404",
            Probe(404),
            Expect {
                ok: false,
                failed: 0,
                quarantine: Some("EncounteredQuarantineException"),
                says: "not a SCIM base URL",
            },
        ),
        (
            "probe not a ListResponse",
            ProbeNotAList,
            Expect {
                ok: false,
                failed: 0,
                quarantine: Some("EncounteredQuarantineException"),
                says: "not an empty SCIM ListResponse",
            },
        ),
        (
            "probe not JSON",
            ProbeNotJson,
            Expect {
                ok: false,
                failed: 0,
                quarantine: Some("EncounteredQuarantineException"),
                says: "not JSON",
            },
        ),
        (
            "probe 500",
            Probe(500),
            Expect {
                ok: false,
                failed: 0,
                quarantine: None,
                says: "500",
            },
        ),
        (
            "create 409",
            Post(409),
            Expect {
                ok: true,
                failed: 3,
                quarantine: None,
                says: "",
            },
        ),
        (
            "create 500",
            Post(500),
            Expect {
                ok: true,
                failed: 3,
                quarantine: None,
                says: "",
            },
        ),
        (
            "create 429 with Retry-After",
            Throttle {
                n: 2,
                retry_after: true,
            },
            Expect {
                ok: true,
                failed: 0,
                quarantine: None,
                says: "",
            },
        ),
        (
            "create 429 without Retry-After",
            Throttle {
                n: 1,
                retry_after: false,
            },
            Expect {
                ok: true,
                failed: 0,
                quarantine: None,
                says: "",
            },
        ),
        (
            "create hangs",
            Hang,
            Expect {
                ok: true,
                failed: 3,
                quarantine: None,
                says: "",
            },
        ),
        (
            "503 from mid-cycle on",
            OutageAfter(1),
            Expect {
                ok: true,
                failed: 2,
                quarantine: None,
                says: "",
            },
        ),
    ];
    for (what, fault, want) in rows {
        let s = Scratch::new(&what.replace(' ', "-"));
        let state: Shared = Arc::default();
        let fake = Fake::start(state.clone()).await;
        s.write_job(&fake.url);
        state.lock().unwrap().fault = Some(fault);
        let started = Instant::now();
        let (ok, out) = s.run();
        assert_eq!(ok, want.ok, "{what}: {out}");
        assert!(out.contains(want.says), "{what}: '{out}' does not say '{}'", want.says);
        let job = s.job();
        match want.quarantine {
            Some(reason) => {
                assert_eq!(job["status"], "quarantined", "{what}: {job}");
                assert_eq!(job["last_cycle"]["quarantine"]["reason"], reason, "{what}: {job}");
            }
            None => assert_eq!(job["status"], "off", "{what}: not quarantined: {job}"),
        }
        if want.ok {
            let summary: Value = serde_json::from_str(out.trim()).unwrap();
            assert_eq!(summary["failed"], want.failed, "{what}: {summary}");
        } else {
            assert!(job["initial_next"] == true, "{what}: no watermark committed: {job}");
        }
        if let Throttle { retry_after: true, .. } = fault {
            assert!(
                started.elapsed() >= Duration::from_secs(2),
                "{what}: Retry-After honoured"
            );
        }
        // The fault is gone: the next run sends what was missing, and the
        // target holds every user once.
        state.lock().unwrap().fault = None;
        let (ok, out) = s.run();
        assert!(ok, "{what}, fixed: {out}");
        let summary: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(summary["failed"], 0, "{what}, fixed: {summary}");
        let names: Vec<String> = state.lock().unwrap().users.keys().cloned().collect();
        assert_eq!(names, ["u0@example.org", "u1@example.org", "u2@example.org"], "{what}");
        assert_eq!(s.job()["status"], "off", "{what}: a success ends any quarantine");
        fake.task.abort();
    }
}

/// The directory goes away (slapd stopped): the cycle fails, saying so; the
/// job is not quarantined (the target is fine) and nothing is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(has_slapd), ignore = "needs OpenLDAP's slapd: apt-get install slapd ldap-utils")]
async fn a_source_that_goes_away_fails_the_cycle_without_quarantine() {
    let s = Scratch::new("source-gone");
    let mut ldif = String::new();
    for i in 0..3 {
        ldif += &format!(
            "dn: uid=u{i},ou=people,dc=example,dc=org\nobjectClass: inetOrgPerson\nuid: u{i}\ncn: U{i} Test\nsn: Test\nmail: u{i}@example.org\n\n"
        );
    }
    let ldap = slapd::Slapd::start(slapd::Options {
        ldif,
        ..Default::default()
    });
    let state: Shared = Arc::default();
    let fake = Fake::start(state.clone()).await;
    std::fs::write(
        s.dir.join("job.toml"),
        format!(
            "name = \"hr\"\nrequest_timeout = \"1s\"\n[source]\nkind = \"ldap\"\nurl = \"{}\"\nbind_dn = \"{}\"\nbind_password = \"{}\"\nbase_dn = \"{}\"\n[scope]\nmode = \"all\"\n[target]\nurl = \"{}\"\ntoken = \"t0ken\"\n",
            ldap.url,
            slapd::ADMIN,
            slapd::PASSWORD,
            slapd::BASE,
            fake.url
        ),
    )
    .unwrap();
    let (ok, out) = s.run();
    assert!(ok, "{out}");
    assert_eq!(state.lock().unwrap().users.len(), 3);
    drop(ldap);
    let (ok, out) = s.run();
    assert!(!ok);
    assert!(out.contains("reading the source failed"), "{out}");
    let job = s.job();
    assert_eq!(job["status"], "off", "{job}");
    assert!(
        job["last_cycle"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("reading the source failed"),
        "{job}"
    );
    assert_eq!(job["initial_next"], false, "the watermark stays: {job}");
    assert_eq!(
        state.lock().unwrap().users.len(),
        3,
        "nothing deleted because the directory is gone"
    );
    fake.task.abort();
}

/// A SCIM directory that goes away in the middle of a paged read: the
/// cycle fails, saying so, without quarantine; nothing is deleted in the
/// target (the objects not read are not taken for deleted) and the
/// watermark stays; once the directory is back, the next run converges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_goes_away_mid_read_fails_the_cycle_and_deletes_nothing() {
    let s = Scratch::new("source-mid-read");
    let source: Shared = Arc::default();
    {
        let mut g = source.lock().unwrap();
        for i in 0..10 {
            g.users.insert(format!("u{i}@example.org"), format!("src-{i}"));
        }
    }
    let directory = Fake::start(source.clone()).await;
    let target: Shared = Arc::default();
    let app = Fake::start(target.clone()).await;
    std::fs::write(
        s.dir.join("job.toml"),
        format!(
            "name = \"hr\"\nrequest_timeout = \"1s\"\n[source]\nkind = \"scim\"\nurl = \"{}\"\ntoken = \"s0urce\"\npage_size = 3\n[scope]\nmode = \"all\"\n[target]\nurl = \"{}\"\ntoken = \"t0ken\"\n",
            directory.url, app.url
        ),
    )
    .unwrap();
    let (ok, out) = s.run();
    assert!(ok, "{out}");
    assert_eq!(target.lock().unwrap().users.len(), 10);

    // Pages from the second on fail: the read stops in the middle.
    source.lock().unwrap().gone_from = Some(4);
    let (ok, out) = s.run();
    assert!(!ok, "{out}");
    assert!(out.contains("reading the source failed"), "{out}");
    let job = s.job();
    assert_eq!(job["status"], "off", "not quarantined: {job}");
    assert_eq!(job["initial_next"], false, "the watermark stays: {job}");
    assert_eq!(target.lock().unwrap().users.len(), 10, "nothing deleted");

    // Back, with one more person: one create, nothing else.
    {
        let mut g = source.lock().unwrap();
        g.gone_from = None;
        g.users.insert("u10@example.org".into(), "src-10".into());
    }
    let posts = target.lock().unwrap().posts;
    let (ok, out) = s.run();
    assert!(ok, "{out}");
    let g = target.lock().unwrap();
    assert_eq!((g.users.len(), g.posts - posts), (11, 1), "{out}");
    drop(g);
    directory.task.abort();
    app.task.abort();
}

/// Failed objects are escrowed: tried again at the next cycle, then with
/// growing back-off (an interval, two, …), until a restart clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_objects_are_retried_with_growing_back_off() {
    let s = Scratch::new("escrow");
    let state: Shared = Arc::default();
    let fake = Fake::start(state.clone()).await;
    s.write_job(&fake.url);
    state.lock().unwrap().fault = Some(Fault::Post(500));
    let summary = |s: &Scratch| {
        let (ok, out) = s.run();
        assert!(ok, "{out}");
        serde_json::from_str::<Value>(out.trim()).unwrap()
    };
    // First failure; the first retry is the next cycle.
    let c = summary(&s);
    assert_eq!(
        (c["failed"].as_u64(), c["deferred"].as_u64()),
        (Some(3), Some(0)),
        "{c}"
    );
    let c = summary(&s);
    assert_eq!(
        (c["failed"].as_u64(), c["deferred"].as_u64()),
        (Some(3), Some(0)),
        "{c}"
    );
    // Failed twice: not before an interval (1 h) has passed.
    state.lock().unwrap().fault = None;
    let c = summary(&s);
    assert_eq!(
        (c["failed"].as_u64(), c["deferred"].as_u64(), c["requests"].as_u64()),
        (Some(0), Some(3), Some(0)),
        "{c}"
    );
    assert!(state.lock().unwrap().users.is_empty());
    // A restart tries them at once.
    let out = tokio::task::block_in_place(|| {
        Command::new(BIN)
            .env("SCIMITAR_KEY_FILE", s.dir.join("server.key"))
            .args(["sync", "restart", "--job", "hr", "--database"])
            .arg(format!("sqlite:{}/engine.db", s.dir.display()))
            .output()
            .unwrap()
    });
    assert!(out.status.success());
    let c = summary(&s);
    assert_eq!((c["created"].as_u64(), c["failed"].as_u64()), (Some(3), Some(0)), "{c}");
    assert_eq!(state.lock().unwrap().users.len(), 3);
    fake.task.abort();
}
