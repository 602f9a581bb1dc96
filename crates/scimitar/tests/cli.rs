//! The `scimitar` command as scripts use it: `--json` output fields, a
//! token created while the server runs is usable at once, revocation takes
//! effect on the next request, schema and activity commands.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_scimitar");

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(db: &str, args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .args(args)
        .args(["--database", db, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Polls `url` for up to 10 s; whether it answered 200.
async fn answers(client: &reqwest::Client, url: &str) -> bool {
    for _ in 0..100 {
        if client.get(url).send().await.is_ok_and(|r| r.status() == 200) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn cli_manages_tenants_tokens_schemas_while_the_server_runs() {
    let dir = std::env::temp_dir().join(format!("scimitar-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = format!("sqlite:{}/db/scimitar.db", dir.display());
    let port = free_port();
    let public = format!("http://127.0.0.1:{port}");
    let child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database", &db])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server(child);
    let client = scimitar_testkit::client();
    assert!(
        answers(&client, &format!("{public}/healthz")).await,
        "server did not start"
    );

    // The fresh install created `default`.
    let list = run(&db, &["tenant", "list"]);
    assert_eq!(list["tenants"][0]["name"], "default");

    let t = run(&db, &["tenant", "create", "contoso", "--public-url", &public]);
    assert_eq!(t["name"], "contoso");
    assert_eq!(t["scim_url"], format!("{public}/scim/contoso/v2"));
    let bad = Command::new(BIN)
        .args(["tenant", "create", "Bad Name", "--database", &db])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    let tok = run(
        &db,
        &[
            "token",
            "create",
            "--tenant",
            "contoso",
            "--label",
            "entra",
            "--public-url",
            &public,
        ],
    );
    for field in ["id", "token", "scim_url"] {
        assert!(tok[field].is_string(), "{field} in {tok}");
    }
    assert!(tok["token"].as_str().unwrap().starts_with("scim_"));
    let url = format!("{}/Users", tok["scim_url"].as_str().unwrap());
    let token = tok["token"].as_str().unwrap();
    let r = client.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200, "a token created by the CLI works at once");

    let listed = run(&db, &["token", "list", "--tenant", "contoso"]);
    assert_eq!(listed["tokens"][0]["label"], "entra");
    assert!(!listed.to_string().contains(token), "the secret is never listed");

    // A custom extension from a file, then a user that uses it.
    let schema = dir.join("acme.json");
    std::fs::write(
        &schema,
        r#"{"id": "urn:ietf:params:scim:schemas:extension:acme:2.0:User", "name": "Acme",
            "attributes": [{"name": "badge", "type": "string", "multiValued": false}]}"#,
    )
    .unwrap();
    let added = run(&db, &["schema", "add", "--tenant", "contoso", schema.to_str().unwrap()]);
    assert_eq!(added["urn"], "urn:ietf:params:scim:schemas:extension:acme:2.0:User");
    let body = serde_json::json!({"userName": "u@x.test", "urn:ietf:params:scim:schemas:extension:acme:2.0:User": {"badge": "42"}});
    let r = client.post(&url).bearer_auth(token).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let exts = run(&db, &["schema", "list", "--tenant", "contoso"]);
    assert_eq!(exts["extensions"].as_array().unwrap().len(), 1);

    let log = run(&db, &["activity", "--tenant", "contoso", "--action", "create"]);
    assert_eq!(log["events"][0]["name"], "u@x.test");
    assert_eq!(log["events"][0]["token_label"], "entra");

    // Optional expiry. Zero days would make a token that is expired when
    // it is shown: refused, with a reason.
    let zero = Command::new(BIN)
        .args([
            "token",
            "create",
            "--tenant",
            "contoso",
            "--expires-in-days",
            "0",
            "--database",
            &db,
        ])
        .output()
        .unwrap();
    assert!(!zero.status.success(), "a token that expires at once is refused");
    let err = String::from_utf8_lossy(&zero.stderr);
    assert!(err.contains("at least 1 day"), "{err}");
    // A token past its expiry no longer works (one made to expire in a day,
    // its expiry then moved into the past); one that expires in a year does.
    let expired = run(
        &db,
        &[
            "token",
            "create",
            "--tenant",
            "contoso",
            "--expires-in-days",
            "1",
            "--public-url",
            &public,
        ],
    );
    assert!(expired["expires"].is_string());
    rusqlite::Connection::open(dir.join("db/scimitar.db"))
        .unwrap()
        .execute(
            "UPDATE tokens SET expires = '2000-01-01T00:00:00.000Z' WHERE id = ?1",
            [expired["id"].as_str().unwrap()],
        )
        .unwrap();
    let r = client
        .get(&url)
        .bearer_auth(expired["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "an expired token is refused");
    let later = run(
        &db,
        &[
            "token",
            "create",
            "--tenant",
            "contoso",
            "--expires-in-days",
            "365",
            "--public-url",
            &public,
        ],
    );
    let r = client
        .get(&url)
        .bearer_auth(later["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let revoked = run(&db, &["token", "revoke", tok["id"].as_str().unwrap()]);
    assert_eq!(revoked["revoked"], true);
    let r = client.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 401, "revocation takes effect on the next request");
    assert!(r.headers().get("www-authenticate").is_some());

    let deleted = run(&db, &["tenant", "delete", "contoso"]);
    assert_eq!(deleted["deleted"], true);

    // The audit log has every administrative action, newest first, the
    // server's creation of the first tenant included.
    let audit = run(&db, &["audit"]);
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "tenant.created", // `default`, by the server on a fresh install
            "tenant.created",
            "token.generated",
            "schema.added",
            "token.generated",
            "token.generated",
            "token.revoked",
            "tenant.deleted"
        ]
    );
    let events = audit["events"].as_array().unwrap();
    let first = &events[events.len() - 1];
    assert_eq!(
        (&first["target"], &first["actor"], &first["source"]),
        (&json!("default"), &json!("scimitar"), &json!("serve"))
    );
    let second = &events[events.len() - 2];
    assert_eq!(second["target"], "contoso");
    assert_eq!(second["source"], "cli");
    assert!(second["actor"].as_str().unwrap().starts_with("cli"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Token hashes are keyed with a server key kept outside the database, and
/// secret files readable by other users are refused.
#[cfg(unix)]
#[tokio::test]
async fn server_key_and_file_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("scimitar-key-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db_path = dir.join("db/s.db");
    let db = format!("sqlite:{}", db_path.display());
    let t = run(&db, &["tenant", "create", "k"]);
    assert_eq!(t["name"], "k");
    let key = dir.join("db/scimitar.key");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&key), 0o600, "the key file is created private");
    assert_eq!(mode(&db_path), 0o600, "the database is private");
    assert_eq!(std::fs::read_to_string(&key).unwrap().trim().len(), 64);

    // A token hashed with another key does not authenticate.
    let tok = run(&db, &["token", "create", "--tenant", "k"]);
    let other_key = dir.join("other.key");
    std::fs::write(&other_key, "11".repeat(32)).unwrap();
    std::fs::set_permissions(&other_key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = free_port();
    let child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database", &db])
        .env("SCIMITAR_KEY_FILE", &other_key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server(child);
    let client = scimitar_testkit::client();
    answers(&client, &format!("http://127.0.0.1:{port}/healthz")).await;
    let url = format!("http://127.0.0.1:{port}/scim/k/v2/Users");
    let r = client
        .get(&url)
        .bearer_auth(tok["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a database dump without the key cannot verify tokens");
    drop(server);

    // World-readable key file or database: refused.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(BIN)
        .args(["tenant", "list", "--database", &db])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chmod 600"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&db_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &db])
        .output()
        .unwrap();
    assert!(!out.status.success(), "serve refuses a world-readable database");
    assert!(String::from_utf8_lossy(&out.stderr).contains("readable by other users"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Settings come from flags, then environment variables, then the TOML
/// config file.
#[test]
fn config_file_and_environment_precedence() {
    let dir = std::env::temp_dir().join(format!("scimitar-cfg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("scimitar.toml");
    std::fs::write(
        &cfg,
        format!(
            "database = \"sqlite:{}/db/s.db\"\npublic_url = \"https://from-file.example\"\n",
            dir.display()
        ),
    )
    .unwrap();
    let out = |extra: &[&str], env: &[(&str, &str)]| -> Value {
        let mut c = Command::new(BIN);
        c.args(["tenant", "create"])
            .args(extra)
            .args(["--json", "--config", cfg.to_str().unwrap()]);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    assert_eq!(out(&["a"], &[])["scim_url"], "https://from-file.example/scim/a/v2");
    assert_eq!(
        out(&["b"], &[("SCIMITAR_PUBLIC_URL", "https://from-env.example")])["scim_url"],
        "https://from-env.example/scim/b/v2"
    );
    assert_eq!(
        out(
            &["c", "--public-url", "https://from-flag.example"],
            &[("SCIMITAR_PUBLIC_URL", "https://from-env.example")]
        )["scim_url"],
        "https://from-flag.example/scim/c/v2"
    );
    // All three landed in the database the file names.
    let o = Command::new(BIN)
        .args(["tenant", "list", "--json", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list["tenants"].as_array().unwrap().len(), 3);
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "nonsense = 1\n").unwrap();
    let o = Command::new(BIN)
        .args(["tenant", "list", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success(), "unknown keys in the config file are an error");
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM stops the server gracefully: it exits with success.
#[cfg(unix)]
#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let dir = std::env::temp_dir().join(format!("scimitar-term-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            &format!("sqlite:{}/s.db", dir.display()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = scimitar_testkit::client();
    assert!(answers(&client, &format!("http://127.0.0.1:{port}/readyz")).await);
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = status.expect("the server stops within 5 s of SIGTERM");
    assert!(status.success(), "{status:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Processes starting at once on a fresh installation agree on one key
/// file and all open the database (nodes and CLI commands race to create
/// the key and to switch the fresh file to WAL).
#[test]
fn concurrent_first_starts_share_one_key() {
    for round in 0..4 {
        let dir = std::env::temp_dir().join(format!("scimitar-keyrace-{}-{round}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = format!("sqlite:{}/db/s.db", dir.display());
        let children: Vec<_> = (0..12)
            .map(|i| {
                Command::new(BIN)
                    .args(["tenant", "create", &format!("t{i}"), "--database", &db])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let key = std::fs::read_to_string(dir.join("db/scimitar.key")).unwrap();
        assert_eq!(key.trim().len(), 64);
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("db"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary key files are removed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `import` writes through the application layer like any client: each
/// resource is validated (a bad line stops the import with its line number
/// and nothing after it is written) and recorded in the activity log.
#[test]
fn import_validates_and_is_logged() {
    let dir = std::env::temp_dir().join(format!("scimitar-cli-import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite:{}/db/scimitar.db", dir.display());
    let user = |id: &str, extra: &str| {
        format!(
            r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"{id}","userName":"{id}@example.com"{extra},"meta":{{"resourceType":"User","created":"2026-01-01T00:00:00.000Z","lastModified":"2026-01-01T00:00:00.000Z"}}}}"#
        )
    };
    let good = dir.join("good.jsonl");
    std::fs::write(
        &good,
        format!("{}\n{}\n", user("u1", ""), user("u2", r#","active":"True""#)),
    )
    .unwrap();
    let r = run(&db, &["import", "--tenant", "acme", "--input", good.to_str().unwrap()]);
    assert_eq!(r["created"], 2, "{r}");
    // Entra's string boolean was normalised like a client's would be.
    let export = Command::new(BIN)
        .args(["export", "--tenant", "acme", "--database", &db])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&export.stdout);
    let u2: Value = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["id"] == "u2")
        .unwrap();
    assert_eq!(u2["active"], true);
    // Both creates are in the activity log, as imports.
    let log = run(&db, &["activity", "--tenant", "acme"]);
    let events = log["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{log}");
    assert!(
        events
            .iter()
            .all(|e| e["action"] == "create" && e["method"] == "IMPORT" && e["outcome"] == "success"),
        "{log}"
    );
    // A line that no client could send is refused, with its line number.
    let bad = dir.join("bad.jsonl");
    std::fs::write(
        &bad,
        format!("{}\n{}\n", user("u3", r#","active":"maybe""#), user("u4", "")),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args([
            "import",
            "--tenant",
            "acme",
            "--input",
            bad.to_str().unwrap(),
            "--database",
            &db,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 1") && err.contains("active"), "{err}");
    let listed = run(&db, &["activity", "--tenant", "acme"]);
    assert_eq!(
        listed["events"].as_array().unwrap().len(),
        2,
        "nothing more was written"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `migrate` hashes the SCIM passwords an older version stored in clear
/// (once: a second run finds none), and `export` leaves passwords out.
#[test]
fn migrate_hashes_cleartext_passwords_and_export_leaves_them_out() {
    let dir = std::env::temp_dir().join(format!("scimitar-cli-passwords-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite:{}/db/scimitar.db", dir.display());
    run(&db, &["tenant", "create", "acme"]);
    // A user as an older version stored it.
    let conn = rusqlite::Connection::open(dir.join("db/scimitar.db")).unwrap();
    let tenant: i64 = conn
        .query_row("SELECT id FROM tenants WHERE name = 'acme'", [], |r| r.get(0))
        .unwrap();
    conn.execute(
        "INSERT INTO resources (tenant_id, kind, id, user_name_ci, version, created, modified, doc) \
         VALUES (?1, 'User', 'u1', 'old', 1, '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z', \
         '{\"userName\":\"old\",\"password\":\"Secr3t!\"}')",
        [tenant],
    )
    .unwrap();
    let stored = || -> (String, String) {
        conn.query_row(
            "SELECT json_extract(doc, '$.password'), modified FROM resources WHERE id = 'u1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let r = run(&db, &["migrate"]);
    assert_eq!(r["passwords_hashed"], 1, "{r}");
    let (hash, modified) = stored();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(scimitar_auth::password::verify("Secr3t!", &hash));
    assert_eq!(modified, "2025-01-01T00:00:00.000Z", "nothing a client sees changed");
    let again = run(&db, &["migrate"]);
    assert_eq!(again["passwords_hashed"], 0, "{again}");
    assert_eq!(stored().0, hash);
    let audit = run(&db, &["audit"]);
    assert!(audit.to_string().contains("passwords.hashed"), "{audit}");

    let out = Command::new(BIN)
        .args(["export", "--tenant", "acme", "--database", &db])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"userName\":\"old\""), "{text}");
    assert!(!text.contains("password") && !text.contains("argon2"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Upgrading a database whose tenant already has an extension with a
/// unique attribute: the migration marks it, `migrate` enters the stored
/// values (two users sharing one are left as they are and reported), and
/// from then on the value is refused to anyone else.
#[test]
fn migrate_indexes_unique_values_stored_before() {
    let dir = std::env::temp_dir().join(format!("scimitar-cli-unique-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite:{}/db/scimitar.db", dir.display());
    run(&db, &["tenant", "create", "acme"]);
    let schema = dir.join("ids.json");
    std::fs::write(
        &schema,
        r#"{"id": "urn:ietf:params:scim:schemas:extension:ids:2.0:User", "name": "Ids",
            "attributes": [{"name": "code", "type": "string", "multiValued": false, "uniqueness": "server"}]}"#,
    )
    .unwrap();
    run(&db, &["schema", "add", "--tenant", "acme", schema.to_str().unwrap()]);
    // Back to the database as the previous version left it: no unique
    // values yet, and users sharing a code.
    let conn = rusqlite::Connection::open(dir.join("db/scimitar.db")).unwrap();
    conn.execute_batch(
        "DROP TABLE unique_values; DROP TABLE unique_backfill; \
         DELETE FROM schema_migrations WHERE name = '0009_unique_values';",
    )
    .unwrap();
    let tenant: i64 = conn
        .query_row("SELECT id FROM tenants WHERE name = 'acme'", [], |r| r.get(0))
        .unwrap();
    for (id, code) in [("u1", "SAME"), ("u2", "same"), ("u3", "other")] {
        conn.execute(
            "INSERT INTO resources (tenant_id, kind, id, user_name_ci, version, created, modified, doc) \
             VALUES (?1, 'User', ?2, ?2, 1, '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z', ?3)",
            rusqlite::params![
                tenant,
                id,
                format!(
                    r#"{{"userName":"{id}","urn:ietf:params:scim:schemas:extension:ids:2.0:User":{{"code":"{code}"}}}}"#
                )
            ],
        )
        .unwrap();
    }
    let r = run(&db, &["migrate"]);
    assert_eq!(r["unique_duplicates"], 1, "{r}");
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM unique_values", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2, "same (u1's) and other");
    let owner: String = conn
        .query_row("SELECT resource_id FROM unique_values WHERE value = 'same'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(owner, "u1", "the first resource keeps the value");
    let again = run(&db, &["migrate"]);
    assert_eq!(again["unique_duplicates"], 0, "done once: {again}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `scimitar activity … | head`: a reader that stops early ends the
/// command quietly (exit code 0, nothing on stderr), for commands that
/// print line by line and for `export`, which writes through a buffer.
#[test]
fn commands_exit_quietly_when_the_reader_goes_away() {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("scimitar-cli-pipe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite:{}/db/scimitar.db", dir.display());
    // More output than a pipe holds (64 KiB), so the command is still
    // writing when the reader goes away.
    let lines: String = (0..3000)
        .map(|i| {
            format!(
                r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u{i}","userName":"user-number-{i}@example.com","displayName":"User number {i} of the pipe test","meta":{{"resourceType":"User","created":"2026-01-01T00:00:00.000Z","lastModified":"2026-01-01T00:00:00.000Z"}}}}"#
            ) + "\n"
        })
        .collect();
    let input = dir.join("users.jsonl");
    std::fs::write(&input, lines).unwrap();
    let r = run(&db, &["import", "--tenant", "acme", "--input", input.to_str().unwrap()]);
    assert_eq!(r["created"], 3000, "{r}");
    let commands: &[&[&str]] = &[
        &["activity", "--tenant", "acme", "--limit", "3000"],
        &["export", "--tenant", "acme"],
        // One JSON line per event; --follow would otherwise run forever.
        &["events", "--tenant", "acme", "--limit", "1000", "--follow", "--json"],
    ];
    for args in commands {
        let mut child = Command::new(BIN)
            .args(*args)
            .args(["--database", &db])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        assert!(!first.is_empty(), "{args:?} printed nothing");
        drop(reader);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} said something on a closed pipe: {err}");
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A command in an empty working directory: its exit code, stderr, and
/// the files it left there.
fn run_in_empty_dir(name: &str, args: &[&str]) -> (Option<i32>, String, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("scimitar-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(BIN)
        .args(args)
        .current_dir(&dir)
        .env_remove("SCIMITAR_KEY_FILE")
        .env_remove("SCIMITAR_DATABASE_URL")
        .env_remove("SCIMITAR_CONFIG")
        .output()
        .unwrap();
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        files,
    )
}

/// `--database mysql://x` is refused with the accepted forms (exit code
/// 2), before anything is created: no SQLite file named `mysql:/x`, no key.
#[test]
fn unknown_database_schemes_are_refused() {
    for db in ["mysql://x", "postgre://u@h/db", "mariadb:x"] {
        let (code, err, files) = run_in_empty_dir("scheme", &["tenant", "list", "--database", db]);
        assert_eq!(code, Some(2), "{db}: {err}");
        assert!(err.contains("unknown scheme"), "{db}: {err}");
        for form in [
            "sqlite:PATH",
            "sqlite://PATH",
            "postgres://",
            "postgresql://",
            "file path",
        ] {
            assert!(err.contains(form), "{db}: {form} missing from {err}");
        }
        assert!(files.is_empty(), "{db} created {files:?}");
    }
}

/// A connection that fails says why, where and what to do, and leaves no
/// `scimitar.key` behind. Nothing listens on port 1.
#[test]
fn a_refused_postgres_connection_says_where() {
    let (code, err, files) = run_in_empty_dir(
        "refused",
        &["tenant", "list", "--database", "postgres://postgres@127.0.0.1:1/scim"],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(
            "cannot connect to PostgreSQL on 127.0.0.1:1 (database \"scim\"): connection refused — is the server running"
        ),
        "{err}"
    );
    assert!(files.is_empty(), "created {files:?}");
}

/// A missing database is named with the command that creates it (needs
/// the PostgreSQL server of `SCIMITAR_TEST_POSTGRES_URL`).
#[test]
#[cfg_attr(not(scimitar_pg_tests), ignore = "SCIMITAR_TEST_POSTGRES_URL is not set")]
fn a_missing_postgres_database_says_how_to_create_it() {
    let url =
        std::env::var("SCIMITAR_TEST_POSTGRES_URL").expect("SCIMITAR_TEST_POSTGRES_URL is set (it was at build time)");
    // The same server and role, a database that does not exist.
    let base = url.split('?').next().unwrap();
    let Some(scheme_end) = base.find("://") else {
        panic!("SCIMITAR_TEST_POSTGRES_URL is not a URL: {url}")
    };
    let authority = match base[scheme_end + 3..].find('/') {
        Some(slash) => &base[..scheme_end + 3 + slash],
        None => base,
    };
    let missing = format!("scimitar_missing_{}", std::process::id());
    let db = format!("{authority}/{missing}");
    let (code, err, files) = run_in_empty_dir("missingdb", &["tenant", "list", "--database", &db]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("database \"{missing}\" does not exist on ")),
        "{err}"
    );
    assert!(err.contains("— create it with: createdb -h "), "{err}");
    assert!(err.trim_end().ends_with(&format!(" {missing}")), "{err}");
    assert!(files.is_empty(), "created {files:?}");
}

/// `activity --since/--action/--outcome` are checked like the admin API's:
/// durations and timestamps work, a mistake is exit code 2 with the valid
/// values.
#[test]
fn activity_filters_are_checked() {
    let dir = std::env::temp_dir().join(format!("scimitar-cli-filters-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite:{}/db/scimitar.db", dir.display());
    let input = dir.join("u.jsonl");
    std::fs::write(
        &input,
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u1","userName":"u1@example.com","meta":{"resourceType":"User","created":"2026-01-01T00:00:00.000Z","lastModified":"2026-01-01T00:00:00.000Z"}}"#,
    )
    .unwrap();
    run(&db, &["import", "--tenant", "acme", "--input", input.to_str().unwrap()]);
    let found: &[(&[&str], usize)] = &[
        (&["--since", "1h"], 1),
        (&["--since", "7d", "--outcome", "success", "--action", "create"], 1),
        (&["--since", "2000-01-01T00:00:00Z"], 1),
        // From now on: nothing yet.
        (&["--since", "0s"], 0),
        (&["--outcome", "failure"], 0),
    ];
    for (args, n) in found {
        let mut all = vec!["activity", "--tenant", "acme"];
        all.extend_from_slice(args);
        let log = run(&db, &all);
        assert_eq!(log["events"].as_array().unwrap().len(), *n, "{args:?}: {log}");
    }
    let refused: &[(&[&str], &str)] = &[
        (
            &["--since", "garbage"],
            "--since 'garbage' is neither a duration (a number and s, m, h, d or w, e.g. 30m, 1h, 7d) nor an RFC 3339 timestamp",
        ),
        (
            &["--outcome", "bogus"],
            "--outcome 'bogus' is not one of: success, failure",
        ),
        (
            &["--action", "patch"],
            "--action 'patch' is not one of: create, update, update-members, add-member, remove-member, disable, enable, delete",
        ),
    ];
    for (args, message) in refused {
        let out = Command::new(BIN)
            .args(["activity", "--tenant", "acme", "--database", &db])
            .args(*args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `scimitar events` reads the change events of what `import` and
/// `token create` did, in order, with the cursor; mistakes are exit code 2.
#[test]
fn events_command_reads_the_feed() {
    let dir = std::env::temp_dir().join(format!("scimitar-cli-events-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite:{}/db/scimitar.db", dir.display());
    let input = dir.join("u.jsonl");
    std::fs::write(
        &input,
        r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"u1","userName":"u1@example.com","meta":{"resourceType":"User","created":"2026-01-01T00:00:00.000Z","lastModified":"2026-01-01T00:00:00.000Z"}}"#,
    )
    .unwrap();
    run(&db, &["import", "--tenant", "acme", "--input", input.to_str().unwrap()]);
    let tok = run(&db, &["token", "create", "--tenant", "acme", "--label", "entra"]);
    let feed = run(&db, &["events", "--tenant", "acme"]);
    let events = feed["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["user.created", "tenant.token_created"], "{feed}");
    assert_eq!(events[0]["tenant"], "acme");
    assert_eq!(events[0]["data"]["id"], "u1");
    assert_eq!(events[1]["data"]["token"]["id"], tok["id"]);
    assert!(!feed.to_string().contains(tok["token"].as_str().unwrap()));
    let next = feed["next"].as_str().unwrap();
    let after = run(&db, &["events", "--tenant", "acme", "--after", next]);
    assert!(after["events"].as_array().unwrap().is_empty(), "{after}");
    assert_eq!(after["next"], next);
    let only = run(&db, &["events", "--tenant", "acme", "--types", "tenant.token_created"]);
    assert_eq!(only["events"].as_array().unwrap().len(), 1);
    // Text: one line per event, the cursor on stderr.
    let out = Command::new(BIN)
        .args(["events", "--tenant", "acme", "--database", &db])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().next().unwrap().contains("user.created\tu1@example.com"),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("next: {next}")));
    let refused: &[(&[&str], &str)] = &[
        (&["--after", "garbage"], "not an events cursor"),
        (&["--types", "user.exploded"], "unknown event type 'user.exploded'"),
        (&["--limit", "0"], "--limit must be 1 to 1000"),
    ];
    for (args, message) in refused {
        let out = Command::new(BIN)
            .args(["events", "--tenant", "acme", "--database", &db])
            .args(*args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A public URL clients cannot use is refused (exit code 2) before
/// anything is created.
#[test]
fn public_urls_are_checked() {
    let cases = [
        ("scim.example.com", "must start with https:// or http://"),
        (
            "https://scim.example.com/?tenant=a",
            "must not have a query or fragment",
        ),
        ("https://", "has no valid host"),
    ];
    for (url, message) in cases {
        let (code, err, files) = run_in_empty_dir(
            "publicurl",
            &["tenant", "list", "--database", "sqlite:db/s.db", "--public-url", url],
        );
        assert_eq!(code, Some(2), "{url}: {err}");
        assert!(
            err.contains(&format!("--public-url '{url}' {message}")) && err.contains("(from --public-url)"),
            "{url}: {err}"
        );
        assert!(files.is_empty(), "{url} created {files:?}");
    }
}

/// The URLs the CLI prints come from the same configuration as the
/// server's (flag, environment, config file, listen address) and say
/// where they came from.
#[test]
fn printed_urls_say_where_the_public_url_came_from() {
    let dir = std::env::temp_dir().join(format!("scimitar-cli-source-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = format!("sqlite:{}/db/s.db", dir.display());
    let cfg = dir.join("scimitar.toml");
    std::fs::write(&cfg, "public_url = \"https://from-file.example\"\n").unwrap();
    let cfg = cfg.to_str().unwrap();
    // tenant, arguments, environment, what the Tenant URL line says
    type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        (
            "a",
            &["--public-url", "https://flag.example"],
            &[],
            "https://flag.example/scim/a/v2 (public URL from --public-url)",
        ),
        (
            "b",
            &[],
            &[("SCIMITAR_PUBLIC_URL", "https://env.example")],
            "https://env.example/scim/b/v2 (public URL from SCIMITAR_PUBLIC_URL)",
        ),
        (
            "c",
            &["--config", cfg],
            &[],
            "https://from-file.example/scim/c/v2 (public URL from public_url in ",
        ),
        (
            "d",
            &[],
            &[("SCIMITAR_LISTEN", "127.0.0.1:9999")],
            "http://127.0.0.1:9999/scim/d/v2 (public URL from the listen address; set --public-url",
        ),
    ];
    for (tenant, args, env, want) in cases {
        let mut c = Command::new(BIN);
        c.args(["tenant", "create", tenant, "--database", &db])
            .args(*args)
            .env_remove("SCIMITAR_PUBLIC_URL")
            .env_remove("SCIMITAR_LISTEN")
            .env_remove("SCIMITAR_CONFIG");
        for (k, v) in *env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{tenant}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains(want), "{tenant}: {text}");
    }
    // `admin create`'s sign-in link too.
    let out = Command::new(BIN)
        .args([
            "admin",
            "create",
            "--role",
            "operator",
            "--email",
            "op@example.com",
            "--database",
            &db,
        ])
        .env("SCIMITAR_PUBLIC_URL", "https://env.example")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"a long enough password 1\n")?;
            child.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Sign in at https://env.example/login (public URL from SCIMITAR_PUBLIC_URL)"),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `serve --listen 0.0.0.0:…` with no public URL warns that the Tenant
/// URL it prints cannot be reached from elsewhere.
#[test]
fn serve_on_a_wildcard_address_warns_about_the_tenant_url() {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("scimitar-cli-wildcard-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = format!("sqlite:{}/db/s.db", dir.display());
    let port = free_port();
    let child = Command::new(BIN)
        .args(["serve", "--listen", &format!("0.0.0.0:{port}"), "--database", &db])
        .env_remove("SCIMITAR_PUBLIC_URL")
        .env_remove("SCIMITAR_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut server = Server(child);
    let stdout = server.0.stdout.take().unwrap();
    let mut banner = String::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("Listening on") {
            break;
        }
    }
    assert!(
        banner.contains(&format!("Tenant URL:   http://0.0.0.0:{port}/scim/default/v2")),
        "{banner}"
    );
    assert!(
        banner.contains(&format!(
            "WARNING: http://0.0.0.0:{port} is not an address clients can reach"
        )) && banner.contains("--public-url"),
        "{banner}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
