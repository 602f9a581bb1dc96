//! Memory under hostile request bodies (issue 12, item 5): the real
//! `scimitar serve` binary, a separate process, gets a mix of bodies built
//! to amplify in memory (nested arrays, empty objects, many keys, Bulk
//! requests at the 4 MiB limit, PATCH and search bodies at the 1 MiB limit)
//! from many connections at once. Its resident memory, read from
//! `/proc/<pid>/status`, must stay under 300 MB at its peak (`VmHWM`) and
//! fall under 100 MB within 60 s after the burst.
//!
//! `SCIMITAR_MEMORY_BIN` runs another binary (e.g. a release build, or an
//! older one to compare); `SCIMITAR_MEMORY_SECONDS` (20) and
//! `SCIMITAR_MEMORY_CLIENTS` (48) change the burst's length and width.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;
/// The limits the server runs with (its defaults).
const BODY_LIMIT: usize = MIB;
const BULK_LIMIT: usize = 4 * MIB;
/// Connections sending at once (by default).
const CLIENTS: usize = 48;
const PEAK_LIMIT_KB: u64 = 300 * 1000;
const SETTLED_LIMIT_KB: u64 = 100 * 1000;

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bin() -> String {
    std::env::var("SCIMITAR_MEMORY_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_scimitar").to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `VmRSS` and `VmHWM` of a process, in kB.
fn rss_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `prefix` + `unit` repeated + `suffix`, at most `size` bytes in all.
fn fill(prefix: &str, unit: &str, sep: &str, suffix: &str, size: usize) -> String {
    let mut s = String::with_capacity(size);
    s.push_str(prefix);
    let mut first = true;
    while s.len() + sep.len() + unit.len() + suffix.len() < size {
        if !first {
            s.push_str(sep);
        }
        first = false;
        s.push_str(unit);
    }
    s.push_str(suffix);
    s
}

/// One hostile request: method, path below the base URL, body.
struct Shape {
    name: &'static str,
    method: reqwest::Method,
    path: String,
    body: bytes::Bytes,
}

fn shapes(user: &str, group: &str) -> Vec<Shape> {
    use reqwest::Method;
    let user_urn = "urn:ietf:params:scim:schemas:core:2.0:User";
    let bulk_urn = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
    let patch_urn = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
    let below = |limit: usize| limit - 512;
    let mut out = Vec::new();
    let mut add = |name: &'static str, method: Method, path: String, body: String| {
        out.push(Shape {
            name,
            method,
            path,
            body: bytes::Bytes::from(body),
        });
    };
    // The issue's example: nested one-element arrays under an unknown attribute.
    let nested = |size: usize| fill("[", "[0]", ",", "]", size);
    add(
        "user-unknown-nested",
        Method::POST,
        "/Users".into(),
        format!(
            r#"{{"schemas":["{user_urn}"],"userName":"m-a","bogus":{}}}"#,
            nested(below(BODY_LIMIT))
        ),
    );
    add(
        "user-known-nested",
        Method::POST,
        "/Users".into(),
        format!(r#"{{"userName":"m-b","emails":{}}}"#, nested(below(BODY_LIMIT))),
    );
    add(
        "user-empty-objects",
        Method::POST,
        "/Users".into(),
        format!(
            r#"{{"userName":"m-c","emails":{}}}"#,
            fill("[", "{}", ",", "]", below(BODY_LIMIT))
        ),
    );
    let mut keys = String::from(r#"{"userName":"m-d","name":{"#);
    let mut k = 0;
    while keys.len() < below(BODY_LIMIT) {
        if k > 0 {
            keys.push(',');
        }
        keys.push_str(&format!(r#""k{k}":0"#));
        k += 1;
    }
    keys.push_str("}}");
    add("user-many-keys", Method::POST, "/Users".into(), keys);
    add(
        "user-small-strings",
        Method::POST,
        "/Users".into(),
        format!(
            r#"{{"userName":"m-e","emails":{}}}"#,
            fill("[", r#"{"value":"a@b.c"}"#, ",", "]", below(BODY_LIMIT))
        ),
    );
    add(
        "patch-nested",
        Method::PATCH,
        format!("/Users/{user}"),
        format!(
            r#"{{"schemas":["{patch_urn}"],"Operations":[{{"op":"add","path":"emails","value":{}}}]}}"#,
            nested(below(BODY_LIMIT))
        ),
    );
    add(
        "group-members",
        Method::PUT,
        format!("/Groups/{group}"),
        format!(
            r#"{{"displayName":"m-group","members":{}}}"#,
            fill(
                "[",
                r#"{"value":"00000000-0000-4000-8000-000000000000"}"#,
                ",",
                "]",
                below(BODY_LIMIT)
            )
        ),
    );
    add(
        "search-nested",
        Method::POST,
        "/Users/.search".into(),
        format!(
            r#"{{"filter":"userName eq \"x\"","bogus":{}}}"#,
            nested(below(BODY_LIMIT))
        ),
    );
    add(
        "deep",
        Method::POST,
        "/Users".into(),
        format!("{}{}", "[".repeat(BODY_LIMIT / 2 - 16), "]".repeat(BODY_LIMIT / 2 - 16)),
    );
    // Bulk at its limit: one operation carrying the nested arrays…
    add(
        "bulk-one-nested",
        Method::POST,
        "/Bulk".into(),
        format!(
            r#"{{"schemas":["{bulk_urn}"],"Operations":[{{"method":"POST","path":"/Users","bulkId":"a","data":{{"userName":"m-f","bogus":{}}}}}]}}"#,
            nested(below(BULK_LIMIT))
        ),
    );
    // …and the maximum number of operations, each with nested arrays.
    let per_op = (below(BULK_LIMIT) - 128) / 1000;
    let bulk = |op: &dyn Fn(usize, &str) -> String, unit: &str, open: &str, close: &str| {
        let ops: Vec<String> = (0..1000)
            .map(|i| {
                let frame = op(i, "");
                op(i, &fill(open, unit, ",", close, per_op - frame.len()))
            })
            .collect();
        format!(r#"{{"schemas":["{bulk_urn}"],"Operations":[{}]}}"#, ops.join(","))
    };
    add(
        "bulk-many-nested",
        Method::POST,
        "/Bulk".into(),
        bulk(
            &|i, v| {
                format!(
                    r#"{{"method":"POST","path":"/Users","bulkId":"b{i}","data":{{"userName":"m-g{i}","emails":{v}}}}}"#
                )
            },
            "[0]",
            "[",
            "]",
        ),
    );
    add(
        "bulk-many-patch",
        Method::POST,
        "/Bulk".into(),
        bulk(
            &|_, v| {
                format!(
                    r#"{{"method":"PATCH","path":"/Users/{user}","data":{{"schemas":["{patch_urn}"],"Operations":[{{"op":"add","path":"name","value":{v}}}]}}}}"#
                )
            },
            r#""k":{}"#,
            "{",
            "}",
        ),
    );
    for s in &out {
        let limit = if s.path == "/Bulk" { BULK_LIMIT } else { BODY_LIMIT };
        assert!(s.body.len() <= limit, "{} is {} bytes", s.name, s.body.len());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_bodies_stay_within_the_memory_bounds() {
    let dir = std::env::temp_dir().join(format!("scimitar-memory-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("scimitar.key");
    let db = format!("sqlite:{}/m.db", dir.display());
    let port = free_port();
    let server = Server(
        Command::new(bin())
            .env("SCIMITAR_KEY_FILE", &key)
            .env("SCIMITAR_LOG", "error")
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database",
                &db,
                "--rate-limit",
                "0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = server.0.id();
    let client = scimitar_testkit::http()
        .pool_max_idle_per_host(CLIENTS)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let mut up = false;
    for _ in 0..400 {
        if client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "the server did not start");
    let out = Command::new(bin())
        .env("SCIMITAR_KEY_FILE", &key)
        .args(["token", "create", "--tenant", "default", "--database", &db, "--json"])
        .output()
        .unwrap();
    let token = serde_json::from_slice::<Value>(&out.stdout).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("http://127.0.0.1:{port}/scim/default/v2");
    let created = |path: &'static str, body: Value| {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        async move {
            let r = client
                .post(format!("{base}{path}"))
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
        }
    };
    let user = created("/Users", json!({"userName": "m-target"})).await;
    let group = created("/Groups", json!({"displayName": "m-group"})).await;
    let shapes = Arc::new(shapes(&user, &group));
    let (before, _) = rss_kb(pid);

    // Sample VmRSS while the burst runs (VmHWM has the true peak).
    let stop = Arc::new(AtomicBool::new(false));
    let sampled_peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), sampled_peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kb(pid).0, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let seconds: u64 = std::env::var("SCIMITAR_MEMORY_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let until = Instant::now() + Duration::from_secs(seconds);
    let tally: Arc<Mutex<BTreeMap<(String, u16), u32>>> = Arc::default();
    let mut workers = Vec::new();
    let clients: usize = std::env::var("SCIMITAR_MEMORY_CLIENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CLIENTS);
    for w in 0..clients {
        let (client, base, token, shapes, tally) = (
            client.clone(),
            base.clone(),
            token.clone(),
            shapes.clone(),
            tally.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut i = w;
            while Instant::now() < until {
                let s = &shapes[i % shapes.len()];
                i += 1;
                let r = client
                    .request(s.method.clone(), format!("{base}{}", s.path))
                    .bearer_auth(&token)
                    .header("content-type", "application/scim+json")
                    .body(s.body.clone())
                    .send()
                    .await;
                let status = match r {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let _ = r.bytes().await;
                        status
                    }
                    Err(_) => 0,
                };
                *tally.lock().unwrap().entry((s.name.to_string(), status)).or_default() += 1;
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let (after, hwm) = rss_kb(pid);
    let peak = hwm.max(sampled_peak.load(Ordering::Relaxed));
    let tally = tally.lock().unwrap().clone();
    eprintln!("RSS before the burst {before} kB, at its end {after} kB, peak {peak} kB");
    eprintln!("answers (shape, status): {tally:?}");

    // Back under the bound within 60 s.
    let settle_start = Instant::now();
    let mut settled = None;
    while settle_start.elapsed() < Duration::from_secs(60) {
        let (rss, _) = rss_kb(pid);
        if rss < SETTLED_LIMIT_KB {
            settled = Some((rss, settle_start.elapsed()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("settled: {settled:?} (last VmRSS {} kB)", rss_kb(pid).0);

    // The server is still healthy and answers an ordinary request.
    let r = client
        .get(format!("{base}/Users/{user}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for ((name, status), n) in &tally {
        assert!(
            *status != 0 && (*status < 500 || *status == 503),
            "{name}: {n} answers with status {status} (0: no answer)"
        );
    }
    assert!(
        peak < PEAK_LIMIT_KB,
        "peak RSS {peak} kB; the bound is {PEAK_LIMIT_KB} kB"
    );
    assert!(
        settled.is_some(),
        "RSS still {} kB 60 s after the burst; the bound is {SETTLED_LIMIT_KB} kB",
        rss_kb(pid).0
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
