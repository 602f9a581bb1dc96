//! `scimitar webhook …` and `scimitar tenant invite` as scripts use them:
//! `webhook add --json` prints `{id, secret}` once, nothing else ever shows
//! the secret, URLs to private addresses are refused unless allowed; an
//! invite link is made within its bounds; every change is audited.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_scimitar");

/// Runs the command; its exit status, stdout and stderr.
fn run(db: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .args(["--database", db, "--json"])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn ok(db: &str, args: &[&str]) -> Value {
    let (success, stdout, stderr) = run(db, args);
    assert!(success, "{args:?}: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {stdout}"))
}

#[test]
fn webhooks_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("scimitar-webhook-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = format!("sqlite:{}/db/scimitar.db", dir.display());
    ok(&db, &["tenant", "create", "acme"]);

    // Refused: a private address without --webhook-allow-private, plain
    // http to a public one, an unknown type, an unknown tenant.
    for (args, needle) in [
        (vec!["--url", "http://127.0.0.1:9/h"], "not a public address"),
        (vec!["--url", "https://10.0.0.1/h"], "--webhook-allow-private"),
        (vec!["--url", "http://8.8.8.8/h"], "must be https"),
        (
            vec!["--url", "https://8.8.8.8/h", "--types", "user.created,user.exploded"],
            "'user.exploded' is not an event type",
        ),
    ] {
        let mut all = vec!["webhook", "add", "--tenant", "acme"];
        all.extend(args.iter().copied());
        let (success, _, stderr) = run(&db, &all);
        assert!(!success, "{all:?}");
        assert!(stderr.contains(needle), "{all:?}: {stderr}");
    }
    let (success, _, stderr) = run(
        &db,
        &["webhook", "add", "--tenant", "nope", "--url", "https://8.8.8.8/h"],
    );
    assert!(!success && stderr.contains("no tenant named 'nope'"), "{stderr}");

    let allow = ["--webhook-allow-private", "127.0.0.0/8"];
    let mut add = vec![
        "webhook",
        "add",
        "--tenant",
        "acme",
        "--url",
        "http://127.0.0.1:9/hook",
        "--types",
        "user.created,group.user_added",
    ];
    add.extend(allow);
    let added = ok(&db, &add);
    let id = added["id"].as_str().unwrap().to_string();
    let secret = added["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(added.as_object().unwrap().len(), 2, "{{id, secret}}: {added}");

    let list = ok(&db, &["webhook", "list", "--tenant", "acme"]);
    assert_eq!(list["webhooks"][0]["id"], id.as_str());
    assert_eq!(list["webhooks"][0]["types"][1], "group.user_added");
    let show = ok(&db, &["webhook", "show", "--tenant", "acme", &id]);
    assert_eq!(show["deliveries"], serde_json::json!([]));
    assert_eq!(
        ok(&db, &["webhook", "disable", "--tenant", "acme", &id])["enabled"],
        false
    );
    assert_eq!(
        ok(&db, &["webhook", "enable", "--tenant", "acme", &id])["enabled"],
        true
    );
    let rotated = ok(&db, &["webhook", "rotate", "--tenant", "acme", &id]);
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert_eq!(ok(&db, &["webhook", "replay", "--tenant", "acme", &id])["replayed"], 0);
    for out in [list.to_string(), show.to_string(), ok(&db, &["audit"]).to_string()] {
        assert!(
            !out.contains(&secret) && !out.contains(&new_secret) && !out.contains("sealed:"),
            "{out}"
        );
    }
    assert_eq!(
        ok(&db, &["webhook", "remove", "--tenant", "acme", &id])["removed"],
        true
    );
    let (success, _, stderr) = run(&db, &["webhook", "remove", "--tenant", "acme", &id]);
    assert!(!success && stderr.contains("no webhook"), "{stderr}");
    assert_eq!(
        ok(&db, &["webhook", "list", "--tenant", "acme"])["webhooks"],
        serde_json::json!([])
    );

    let audit = ok(&db, &["audit", "--tenant", "acme"]);
    let mut actions: Vec<String> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == id.as_str())
        .map(|e| format!("{} {}", e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    actions.reverse();
    assert_eq!(
        actions,
        [
            "cli webhook.created",
            "cli webhook.disabled",
            "cli webhook.enabled",
            "cli webhook.secret_rotated",
            "cli webhook.replayed",
            "cli webhook.deleted"
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `scimitar tenant invite T --json`: a one-time link (its code stored as
/// a hash only), `--expires` within 30 days, audited.
#[test]
fn tenant_invite_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("scimitar-invite-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let db = format!("sqlite:{}/db/scimitar.db", dir.display());
    ok(&db, &["tenant", "create", "acme"]);
    let invite = ok(
        &db,
        &[
            "tenant",
            "invite",
            "acme",
            "--expires",
            "2d",
            "--public-url",
            "https://scim.example.com",
        ],
    );
    let link = invite["link"].as_str().unwrap();
    assert!(link.starts_with("https://scim.example.com/invite?code="), "{link}");
    assert_eq!(invite["tenant"], "acme");
    assert!(invite["expires"].as_str().unwrap() > scimitar_store::now_utc().as_str());
    let code = link.split("code=").nth(1).unwrap();
    assert_eq!(code.len(), 64);
    for (args, needle) in [
        (vec!["tenant", "invite", "acme", "--expires", "31d"], "30 days"),
        (vec!["tenant", "invite", "acme", "--expires", "soon"], "not a duration"),
        (vec!["tenant", "invite", "nope"], "no tenant named 'nope'"),
    ] {
        let (success, _, stderr) = run(&db, &args);
        assert!(!success && stderr.contains(needle), "{args:?}: {stderr}");
    }
    let audit = ok(&db, &["audit", "--tenant", "acme"]).to_string();
    assert!(audit.contains("tenant.invite-created"), "{audit}");
    assert!(!audit.contains(code));
    // The database holds no code in the clear.
    let bytes = std::fs::read(dir.join("db/scimitar.db")).unwrap();
    assert!(!bytes.windows(code.len()).any(|w| w == code.as_bytes()));
    let _ = std::fs::remove_dir_all(&dir);
}
