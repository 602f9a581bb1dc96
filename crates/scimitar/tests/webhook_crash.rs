//! Webhook delivery through `kill -9`: writers change users while their
//! events are delivered to a test receiver; the server is killed with
//! SIGKILL mid-burst and restarted. Then every change answered 2xx has its
//! event delivered, no event exists for a change that was never made,
//! events are in order per resource, and a duplicate has the same id (and
//! body) as the first delivery.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scimitar_testkit::webhook::Receiver;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_scimitar");

fn key_file() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("scimitar-webhook-crash-{}.key", std::process::id()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn cli(db: &str, args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .env("SCIMITAR_KEY_FILE", key_file())
        .args(args)
        .args(["--database", db, "--json", "--webhook-allow-private", "127.0.0.0/8"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn start(db: &str, port: u16) -> Child {
    Command::new(BIN)
        .env("SCIMITAR_KEY_FILE", key_file())
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            db,
            "--rate-limit",
            "0",
            "--webhook-allow-private",
            "127.0.0.0/8",
            // The restarted node takes the killed one's endpoint over after this.
            "--webhook-lease",
            "3",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_up(client: &reqwest::Client, port: u16) {
    for _ in 0..400 {
        if client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server did not start");
}

/// What a writer knows of one user's changes.
#[derive(Default, Clone, Debug)]
struct Known {
    id: Option<String>,
    create_attempted: bool,
    titles_acked: Vec<String>,
    title_in_flight: Option<String>,
    deleted: bool,
    delete_attempted: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_change_is_delivered_through_sigkill_sqlite() {
    let dir = std::env::temp_dir().join(format!("scimitar-webhook-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite:{}", dir.join("crash.db").display());
    crash_and_check(&db).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimitar_pg_tests), ignore = "SCIMITAR_TEST_POSTGRES_URL is not set")]
async fn every_acknowledged_change_is_delivered_through_sigkill_postgres() {
    let url = std::env::var("SCIMITAR_TEST_POSTGRES_URL").expect("SCIMITAR_TEST_POSTGRES_URL");
    let db = scimitar_store_postgres::test_support::fresh_url(&url).await.unwrap();
    crash_and_check(&db).await;
}

/// Every event of `default` through the events API.
async fn feed(client: &reqwest::Client, port: u16, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let mut url = format!("http://127.0.0.1:{port}/admin/v1/tenants/default/events?limit=1000");
        if !after.is_empty() {
            url.push_str(&format!("&after={after}"));
        }
        let body: Value = client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let batch = body["events"].as_array().unwrap().clone();
        after = body["next"].as_str().unwrap().to_string();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

async fn crash_and_check(db: &str) {
    let port = free_port();
    let client = scimitar_testkit::client();
    let mut server = start(db, port);
    wait_up(&client, port).await;
    let token = cli(db, &["token", "create", "--tenant", "default"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let reader = cli(db, &["token", "create", "--tenant", "default", "--scope", "events"])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let receiver = Receiver::start(&[]).await;
    let hook = cli(db, &["webhook", "add", "--tenant", "default", "--url", &receiver.url()]);
    receiver.set_secrets(&[hook["secret"].as_str().unwrap()]);

    let base = format!("http://127.0.0.1:{port}/scim/default/v2");
    let state: Arc<Mutex<HashMap<String, Known>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..4 {
        let (client, base, token, state) = (client.clone(), base.clone(), token.clone(), state.clone());
        writers.push(tokio::spawn(async move {
            for k in 0.. {
                let name = format!("w{w}-u{k}");
                state.lock().unwrap().entry(name.clone()).or_default().create_attempted = true;
                let Ok(r) = client
                    .post(format!("{base}/Users"))
                    .bearer_auth(&token)
                    .json(&json!({"userName": name}))
                    .send()
                    .await
                else {
                    return;
                };
                if r.status() != 201 {
                    return;
                }
                let Ok(body) = r.json::<Value>().await else { return };
                let id = body["id"].as_str().unwrap().to_string();
                state.lock().unwrap().get_mut(&name).unwrap().id = Some(id.clone());
                for n in 0..2 {
                    let title = format!("t{n}");
                    state.lock().unwrap().get_mut(&name).unwrap().title_in_flight = Some(title.clone());
                    let ops = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "title", "value": title}]});
                    let Ok(r) = client
                        .patch(format!("{base}/Users/{id}"))
                        .bearer_auth(&token)
                        .json(&ops)
                        .send()
                        .await
                    else {
                        return;
                    };
                    if r.status() != 200 {
                        return;
                    }
                    let mut s = state.lock().unwrap();
                    let e = s.get_mut(&name).unwrap();
                    e.titles_acked.push(title);
                    e.title_in_flight = None;
                }
                if k % 3 == 0 {
                    state.lock().unwrap().get_mut(&name).unwrap().delete_attempted = true;
                    let Ok(r) = client
                        .delete(format!("{base}/Users/{id}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                    else {
                        return;
                    };
                    if r.status() != 204 {
                        return;
                    }
                    state.lock().unwrap().get_mut(&name).unwrap().deleted = true;
                }
            }
        }));
    }
    // Deliveries are flowing; then kill at a pseudo-random moment.
    let flowing = receiver.wait_for(20, Duration::from_secs(20)).await.len();
    assert!(flowing >= 20, "deliveries flow during the burst ({flowing})");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    tokio::time::sleep(Duration::from_millis(100 + u64::from(nanos % 500))).await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    for w in writers {
        let _ = w.await;
    }
    let before_restart = receiver.accepted().len();

    let port = free_port();
    let mut server = start(db, port);
    wait_up(&client, port).await;
    let events = feed(&client, port, &reader).await;
    // The endpoint was added after the first token's event.
    let wanted: HashSet<String> = events
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("user."))
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let got: HashSet<String> = receiver.accepted().into_iter().map(|d| d.id).collect();
        if wanted.is_subset(&got) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {} committed user events delivered after the restart",
            wanted.intersection(&got).count(),
            wanted.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill().unwrap();
    server.wait().unwrap();

    assert!(receiver.rejected().is_empty(), "{:?}", receiver.rejected());
    let delivered = receiver.accepted();
    assert!(delivered.len() > before_restart, "deliveries went on after the restart");
    let committed: HashMap<String, &Value> = events
        .iter()
        .map(|e| (e["id"].as_str().unwrap().to_string(), e))
        .collect();
    // Duplicates carry the same id and body; nothing is delivered that the
    // feed (what committed) does not hold; first deliveries go in sequence
    // per resource (several resources' events are in flight at once).
    let mut first: HashMap<String, Value> = HashMap::new();
    let mut per_resource: HashMap<String, i64> = HashMap::new();
    for d in &delivered {
        assert_eq!(d.body["id"].as_str(), Some(d.id.as_str()));
        let stored = committed
            .get(&d.id)
            .unwrap_or_else(|| panic!("delivered an event that is not committed: {}", d.body));
        assert_eq!(&&d.body, stored, "delivered as the events API shows it");
        let seq = d.body["seq"].as_i64().unwrap();
        if let Some(b) = first.get(&d.id) {
            assert_eq!(b, &d.body, "a duplicate is the same event");
            continue;
        }
        first.insert(d.id.clone(), d.body.clone());
        if let Some(rid) = d.body["data"]["id"].as_str() {
            let prev = per_resource.insert(rid.to_string(), seq).unwrap_or(0);
            assert!(seq > prev, "in order for {rid}");
        }
    }

    eprintln!(
        "{} deliveries ({} before the kill), {} events, {} duplicates",
        delivered.len(),
        before_restart,
        first.len(),
        delivered.len() - first.len()
    );
    // Every acknowledged change has its event; every event is of a change
    // that was asked for.
    let known = state.lock().unwrap().clone();
    let acked = known.values().filter(|k| k.id.is_some()).count();
    assert!(acked > 5, "the writers made progress ({acked})");
    let of = |id: &str, t: &str| -> Vec<Value> {
        first
            .values()
            .filter(|b| b["type"] == t && b["data"]["id"] == id)
            .cloned()
            .collect()
    };
    let by_name: HashMap<&str, &Known> = known.iter().map(|(n, k)| (n.as_str(), k)).collect();
    for b in first.values() {
        let t = b["type"].as_str().unwrap();
        if !t.starts_with("user.") {
            continue;
        }
        let name = b["data"]["userName"].as_str().unwrap();
        let k = by_name
            .get(name)
            .unwrap_or_else(|| panic!("an event for {name}, never created: {b}"));
        assert!(k.create_attempted);
        match t {
            "user.updated" => {
                let title = b["data"]["resource"]["title"].as_str().map(str::to_string);
                assert!(
                    title
                        .as_ref()
                        .is_some_and(|t| k.titles_acked.contains(t) || k.title_in_flight.as_ref() == Some(t)),
                    "{name}: an update to {title:?} never asked for"
                );
            }
            "user.deleted" => assert!(k.delete_attempted, "{name}: deleted without a DELETE"),
            _ => {}
        }
    }
    for (name, k) in &known {
        let Some(id) = &k.id else { continue };
        assert_eq!(of(id, "user.created").len(), 1, "{name}: its acknowledged create");
        let titles: Vec<String> = of(id, "user.updated")
            .iter()
            .filter_map(|b| b["data"]["resource"]["title"].as_str().map(str::to_string))
            .collect();
        for t in &k.titles_acked {
            assert!(
                titles.contains(t),
                "{name}: acknowledged title {t} not delivered ({titles:?})"
            );
        }
        if k.deleted {
            assert_eq!(of(id, "user.deleted").len(), 1, "{name}: its acknowledged delete");
        }
    }
}
