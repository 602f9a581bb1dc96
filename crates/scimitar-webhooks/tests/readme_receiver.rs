//! The receiver of README.md's "Act on provisioning in your application",
//! run with python3 as written (its port changed): it accepts a delivery
//! of the delivery client and refuses one signed with another secret.
//! Skipped, saying so, where python3 is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use scimitar_webhooks::policy::Policy;
use scimitar_webhooks::send::{Sender, Timeouts};
use scimitar_webhooks::sign::{Key, new_secret};

fn readme_receiver() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme
        .split("## Act on provisioning in your application")
        .nth(1)
        .expect("the README section");
    let code = section
        .split("```python\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    assert!(code.lines().count() <= 20, "the example is at most 20 lines");
    code.to_string()
}

struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_readme_receiver_verifies_deliveries() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("python3 is not installed: skipped");
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let code = readme_receiver().replace("8000", &port.to_string());
    let secret = new_secret().unwrap();
    let _child = Kill(
        Command::new("python3")
            .args(["-c", &code])
            .env("WEBHOOK_SECRET", &secret)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let sender = Sender::new(
        Arc::new(Policy {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
        }),
        Timeouts::default(),
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}/hook");
    let body = br#"{"id":"evt_1","tenant":"acme","seq":1,"type":"user.created","data":{"userName":"a@b.c"}}"#;
    let key = [Key::parse(&secret).unwrap()];
    let mut out = sender.send(&url, "evt_1", body, &key).await;
    for _ in 0..100 {
        if out.status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        out = sender.send(&url, "evt_1", body, &key).await;
    }
    assert!(out.delivered, "{out:?}");
    assert_eq!(out.status, Some(204));
    let other = [Key::parse(&new_secret().unwrap()).unwrap()];
    let refused = sender.send(&url, "evt_2", body, &other).await;
    assert_eq!(refused.status, Some(401), "{refused:?}");
    // During a rotation (two signatures) it accepts.
    let both = [other[0].clone(), key[0].clone()];
    assert!(sender.send(&url, "evt_3", body, &both).await.delivered);
}
