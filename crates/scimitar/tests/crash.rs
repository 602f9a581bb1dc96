//! Durability: concurrent writers against a server killed with SIGKILL at
//! a random moment; after a restart every acknowledged create, PATCH and
//! delete is there, nothing unacknowledged beyond the in-flight request is,
//! and the database passes its integrity check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_scimitar");

/// A key file of this test process (the server and the CLI must share it),
/// kept out of the working directory other tests use.
fn key_file() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("scimitar-crash-{}.key", std::process::id()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_up(client: &reqwest::Client, port: u16) {
    // Generous: CI machines are busy, and PostgreSQL start-up migrates.
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

/// What a writer knows about one user: acknowledged facts and the request
/// that was in flight when the server died.
#[derive(Default, Clone, Debug)]
struct Known {
    id: Option<String>,
    create_attempted: bool,
    deleted: bool,
    delete_attempted: bool,
    title_acked: Option<String>,
    title_in_flight: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_sqlite() {
    let dir = std::env::temp_dir().join(format!("scimitar-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("crash.db");
    let db = format!("sqlite:{}", path.display());
    crash_and_check(&db, Some(&path)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(scimitar_pg_tests), ignore = "SCIMITAR_TEST_POSTGRES_URL is not set")]
async fn acknowledged_writes_survive_sigkill_postgres() {
    let url =
        std::env::var("SCIMITAR_TEST_POSTGRES_URL").expect("SCIMITAR_TEST_POSTGRES_URL is set (it was at build time)");
    let db = scimitar_store_postgres::test_support::fresh_url(&url).await.unwrap();
    crash_and_check(&db, None).await;
}

/// Runs writers, kills the server, restarts it and checks what survived.
/// `sqlite_file` gets an integrity check.
async fn crash_and_check(db: &str, sqlite_file: Option<&std::path::Path>) {
    // `serve` creates the `default` tenant on a fresh database.
    let port = free_port();
    let client = scimitar_testkit::client();
    let mut server = start(db, port);
    wait_up(&client, port).await;
    let out = Command::new(BIN)
        .env("SCIMITAR_KEY_FILE", key_file())
        .args(["token", "create", "--tenant", "default", "--database", db, "--json"])
        .output()
        .unwrap();
    let token = serde_json::from_slice::<Value>(&out.stdout).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let base = format!("http://127.0.0.1:{port}/scim/default/v2");
    let state: Arc<Mutex<HashMap<String, Known>>> = Arc::new(Mutex::new(HashMap::new()));
    let mut writers = Vec::new();
    for w in 0..6 {
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
                for n in 0..3 {
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
                    e.title_acked = Some(title);
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
    // Kill at a pseudo-random moment between 300 and 900 ms.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    tokio::time::sleep(Duration::from_millis(300 + u64::from(nanos % 600))).await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    for w in writers {
        let _ = w.await;
    }
    let known = state.lock().unwrap().clone();
    let acked_creates = known.values().filter(|k| k.id.is_some()).count();
    assert!(
        acked_creates > 5,
        "the writers made progress before the kill ({acked_creates})"
    );

    // Integrity of the database file after the crash.
    if let Some(path) = sqlite_file {
        let conn = rusqlite::Connection::open(path).unwrap();
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }

    let port = free_port();
    let mut server = start(db, port);
    wait_up(&client, port).await;
    let base = format!("http://127.0.0.1:{port}/scim/default/v2");
    let all: Value = client
        .get(format!("{base}/Users?count=1000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stored: HashMap<String, Value> = all["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["userName"].as_str().unwrap().to_string(), u.clone()))
        .collect();
    for (name, k) in &known {
        let found = stored.get(name);
        if k.id.is_some() && !k.delete_attempted {
            let u = found.unwrap_or_else(|| panic!("acknowledged create of {name} was lost"));
            assert_eq!(u["id"].as_str(), k.id.as_deref());
            let title = u["title"].as_str().map(str::to_string);
            let allowed = [
                k.title_acked.clone(),
                k.title_in_flight.clone().or(k.title_acked.clone()),
            ];
            assert!(
                allowed.contains(&title),
                "{name}: title {title:?}, acknowledged {:?}, in flight {:?}",
                k.title_acked,
                k.title_in_flight
            );
        }
        if k.deleted {
            assert!(found.is_none(), "acknowledged delete of {name} was lost");
        }
    }
    for name in stored.keys() {
        assert!(
            known.get(name).is_some_and(|k| k.create_attempted),
            "{name} exists but was never created"
        );
    }
    server.kill().unwrap();
    server.wait().unwrap();
}
