//! `deploy/Containerfile` checked without a container engine: the image
//! cannot be built on machines that reach no container registry (CI here:
//! see `.ci/run`), so what the image relies on is checked against the
//! binary instead — the Rust version it builds with, the environment
//! variables it sets, and that `serve` started the way the image starts it
//! (its `ENV`, its `CMD`, a fresh `/data` volume) answers the image's
//! health check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_scimitar");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Containerfile's instructions (continuation lines joined, comments
/// dropped), in order: (instruction, arguments).
fn instructions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("deploy/Containerfile")).unwrap();
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                let (op, args) = current.trim().split_once(' ').unwrap_or((current.trim(), ""));
                out.push((op.to_ascii_uppercase(), args.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

fn all(op: &str) -> Vec<String> {
    instructions()
        .into_iter()
        .filter(|(o, _)| o == op)
        .map(|(_, a)| a)
        .collect()
}

fn last(op: &str) -> String {
    all(op).pop().unwrap_or_else(|| panic!("the Containerfile has no {op}"))
}

/// `ENV A=1 B=2` (the form the Containerfile uses).
fn image_env() -> BTreeMap<String, String> {
    all("ENV")
        .iter()
        .flat_map(|a| a.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

/// `["a", "b"]` (exec form).
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("not the exec form: {args}: {e}"))
}

/// The status of a plain `GET` of `http://host:port/path`.
fn get_status(url: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (addr, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET /{path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head).ok()?.get(9..12)?.parse().ok()
}

#[test]
fn the_image_builds_with_the_projects_rust_and_sets_only_variables_the_binary_reads() {
    // The build stage's Rust is the toolchain the repository pins.
    let toolchain = std::fs::read_to_string(root().join("rust-toolchain.toml")).unwrap();
    let channel = toolchain
        .lines()
        .find_map(|l| l.trim().strip_prefix("channel = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let minor: Vec<&str> = channel.split('.').take(2).collect();
    let build = all("FROM").into_iter().next().unwrap();
    assert!(
        build.contains(&format!("rust:{}", minor.join("."))),
        "the build stage ({build}) must use the pinned toolchain {channel}"
    );
    // Every SCIMITAR_ variable the image sets is one `serve` reads: a
    // renamed flag would otherwise leave the image silently on defaults.
    let help = Command::new(BIN).args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let read: Vec<&str> = help
        .split("env: ")
        .skip(1)
        .filter_map(|rest| rest.split(|c: char| !(c.is_ascii_uppercase() || c == '_')).next())
        .collect();
    let env = image_env();
    assert!(!env.is_empty());
    for name in env.keys().filter(|k| k.starts_with("SCIMITAR_")) {
        // SCIMITAR_LOG is the log filter, read from the environment only.
        assert!(
            name == "SCIMITAR_LOG" || read.contains(&name.as_str()),
            "the Containerfile sets {name}, which `scimitar serve` does not read"
        );
    }
    // It runs as a user of its own, not root.
    let user = last("USER");
    assert!(user != "root" && user != "0", "USER {user}");
}

#[test]
fn serve_started_as_the_image_starts_it_answers_the_health_check() {
    let env = image_env();
    let listen = env.get("SCIMITAR_LISTEN").expect("the image sets SCIMITAR_LISTEN");
    let port = listen.rsplit(':').next().unwrap();
    assert!(
        last("EXPOSE").split_whitespace().any(|p| p == port),
        "EXPOSE must name the port the image listens on ({listen})"
    );
    let volume = exec_form(&last("VOLUME"));
    let data = volume.first().unwrap().clone();
    assert_eq!(last("WORKDIR"), data, "the server runs in its data volume");
    assert!(
        env.get("SCIMITAR_DATABASE_URL")
            .is_some_and(|u| u.starts_with(&format!("sqlite:{data}/"))),
        "the default database lives on the volume"
    );
    // The image's command line, its environment with the volume at a
    // temporary directory and a free loopback port instead of 8080.
    let mut argv = exec_form(&last("ENTRYPOINT"));
    argv.extend(exec_form(&last("CMD")));
    assert!(argv.first().unwrap().ends_with("/scimitar"));
    let dir = std::env::temp_dir().join(format!("scimitar-image-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        // As in the image: `install -d -m 0750 /data`.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    }
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(BIN);
    cmd.args(&argv[1..])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in &env {
        let v = v.replace(&format!("{data}/"), &format!("{}/", dir.display()));
        let v = if k == "SCIMITAR_LISTEN" {
            format!("127.0.0.1:{free}")
        } else {
            v
        };
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    // The HEALTHCHECK's URL, on the free port.
    let check = last("HEALTHCHECK");
    let url = check
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .replace(&format!(":{port}"), &format!(":{free}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = None;
    while Instant::now() < deadline {
        status = get_status(&url);
        if status == Some(200) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let db = dir.join("scimitar.db").exists();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(status, Some(200), "{url}");
    assert!(db, "the database was created on the volume");
}
