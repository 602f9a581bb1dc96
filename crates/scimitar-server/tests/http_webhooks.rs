//! Webhook endpoints through the admin API: their mistakes, one endpoint's
//! life (the secret shown once), the per-tenant bound, tenant isolation and
//! the audit entries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use reqwest::Method;
use scimitar_testkit::TestServer;
use serde_json::{Value, json};

async fn server() -> TestServer {
    TestServer::start_with(|s| s.webhook_allow = vec!["127.0.0.0/8".parse().unwrap()]).await
}

#[tokio::test]
async fn mistakes_in_a_new_webhook() {
    let srv = TestServer::start().await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    let url = format!("{}/admin/v1/tenants/acme/webhooks", srv.public_url);
    let table: Vec<(Value, &str, &str)> = vec![
        (json!([]), "invalidSyntax", "JSON object"),
        (json!({}), "invalidValue", "needs a url"),
        (json!({"url": 7}), "invalidValue", "needs a url"),
        (
            json!({"url": "https://8.8.8.8/h", "secret": "x"}),
            "invalidValue",
            "unknown key 'secret'",
        ),
        (
            json!({"url": "https://8.8.8.8/h", "types": "user.created"}),
            "invalidValue",
            "list of event type",
        ),
        (
            json!({"url": "https://8.8.8.8/h", "types": [1]}),
            "invalidValue",
            "list of event type",
        ),
        (
            json!({"url": "https://8.8.8.8/h", "types": ["user.exploded"]}),
            "invalidValue",
            "not an event type",
        ),
        (json!({"url": "not a url"}), "invalidValue", "not an absolute"),
        (json!({"url": "ftp://8.8.8.8/h"}), "invalidValue", "not an absolute"),
        (json!({"url": "https://u:p@8.8.8.8/h"}), "invalidValue", "user name"),
        (json!({"url": "http://8.8.8.8/h"}), "invalidValue", "must be https"),
        // Without --webhook-allow-private: no loopback, private or metadata address.
        (
            json!({"url": "http://127.0.0.1:9/h"}),
            "invalidValue",
            "not a public address",
        ),
        (
            json!({"url": "https://localhost/h"}),
            "invalidValue",
            "not a public address",
        ),
        (
            json!({"url": "https://10.1.2.3/h"}),
            "invalidValue",
            "not a public address",
        ),
        (
            json!({"url": "https://169.254.169.254/latest"}),
            "invalidValue",
            "not a public address",
        ),
        (
            json!({"url": "https://[::ffff:192.168.1.1]/h"}),
            "invalidValue",
            "not a public address",
        ),
        (
            json!({"url": format!("https://8.8.8.8/{}", "a".repeat(3000))}),
            "invalidValue",
            "at most 2048",
        ),
    ];
    for (body, scim_type, needle) in table {
        let r = admin.send(Method::POST, &url, Some(body.clone())).await;
        r.assert_error(400, Some(scim_type));
        assert!(r.text.contains(needle), "{body}: {}", r.text);
    }
    // Not JSON at all.
    let r = admin
        .client
        .post(&url)
        .bearer_auth(&admin.token)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(srv.store.webhooks(admin.id).await.unwrap().is_empty(), "nothing stored");
}

#[tokio::test]
async fn a_webhooks_life_and_its_secret_shown_once() {
    let srv = server().await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    let base = format!("{}/admin/v1/tenants/acme/webhooks", srv.public_url);
    let r = admin
        .send(
            Method::POST,
            &base,
            Some(json!({"url": "http://127.0.0.1:9/hook", "types": ["user.created", "user.deleted"]})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    let secret = r.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    assert!(scimitar_webhooks::sign::Key::parse(&secret).is_ok());
    assert_eq!(r.header("location").unwrap(), format!("{base}/{id}"));
    assert_eq!(r.body["webhook"]["types"], json!(["user.created", "user.deleted"]));
    assert_eq!(r.body["webhook"]["enabled"], true);
    // Stored sealed: the database does not hold it in the clear.
    let stored = srv.store.webhook(admin.id, &id).await.unwrap().unwrap();
    assert!(stored.secret_sealed.starts_with("sealed:v1:") && !stored.secret_sealed.contains(&secret[6..]));

    let list = admin.send(Method::GET, &base, None).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["webhooks"][0]["id"], id.as_str());
    let one = admin.send(Method::GET, &format!("{base}/{id}"), None).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["deliveries"], json!([]));
    assert_eq!(one.body["failedEvents"], json!([]));
    for r in [&list, &one] {
        assert!(
            !r.text.contains(&secret) && !r.text.contains("sealed:") && !r.text.contains("secret\""),
            "{}",
            r.text
        );
    }

    let act = |a: &str| format!("{base}/{id}/{a}");
    let r = admin.send(Method::POST, &act("disable"), None).await;
    assert_eq!((r.status.as_u16(), &r.body["enabled"]), (200, &json!(false)));
    assert!(srv.store.enabled_webhooks().await.unwrap().is_empty());
    let r = admin.send(Method::POST, &act("enable"), None).await;
    assert_eq!((r.status.as_u16(), &r.body["enabled"]), (200, &json!(true)));
    let r = admin.send(Method::POST, &act("rotate"), None).await;
    assert_eq!(r.status, 200);
    let rotated = r.body["secret"].as_str().unwrap().to_string();
    assert!(rotated.starts_with("whsec_") && rotated != secret);
    let one = admin.send(Method::GET, &format!("{base}/{id}"), None).await;
    assert!(one.body["previousSecretValidUntil"].is_string(), "{}", one.text);
    let r = admin.send(Method::POST, &act("replay"), None).await;
    assert_eq!((r.status.as_u16(), &r.body["replayed"]), (200, &json!(0)));
    admin
        .send(Method::POST, &act("explode"), None)
        .await
        .assert_error(404, None);
    admin
        .send(Method::GET, &act("enable"), None)
        .await
        .assert_error(405, None);
    admin
        .send(Method::PUT, &base, Some(json!({})))
        .await
        .assert_error(405, None);

    let r = admin.send(Method::DELETE, &format!("{base}/{id}"), None).await;
    assert_eq!(r.status, 204);
    admin
        .send(Method::GET, &format!("{base}/{id}"), None)
        .await
        .assert_error(404, None);
    admin
        .send(Method::DELETE, &format!("{base}/{id}"), None)
        .await
        .assert_error(404, None);
    for a in ["enable", "disable", "rotate", "replay"] {
        admin.send(Method::POST, &act(a), None).await.assert_error(404, None);
    }

    // Audited, without the secret.
    let audit = srv.store.list_audit(Some(admin.id), 100).await.unwrap();
    let mut actions: Vec<&str> = audit
        .iter()
        .filter(|e| e.target.as_deref() == Some(id.as_str()))
        .map(|e| e.action.as_str())
        .collect();
    actions.reverse();
    assert_eq!(
        actions,
        [
            "webhook.created",
            "webhook.disabled",
            "webhook.enabled",
            "webhook.secret_rotated",
            "webhook.replayed",
            "webhook.deleted"
        ]
    );
    let dump = format!("{audit:?}");
    assert!(!dump.contains(&secret) && !dump.contains(&rotated));
}

#[tokio::test]
async fn a_tenant_has_at_most_twenty_webhooks() {
    let srv = server().await;
    let admin = srv.tenant_with_scope("acme", "admin").await;
    let base = format!("{}/admin/v1/tenants/acme/webhooks", srv.public_url);
    for i in 0..20 {
        let r = admin
            .send(
                Method::POST,
                &base,
                Some(json!({"url": format!("http://127.0.0.1:9/{i}")})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = admin
        .send(Method::POST, &base, Some(json!({"url": "http://127.0.0.1:9/x"})))
        .await;
    r.assert_error(409, None);
    assert!(r.text.contains("at most") || r.text.contains("the most"), "{}", r.text);
}

#[tokio::test]
async fn another_tenant_cannot_reach_a_tenants_webhooks() {
    let srv = server().await;
    let a = srv.tenant_with_scope("alpha", "admin").await;
    let a_scim = srv.tenant("alpha").await;
    let b = srv.tenant_with_scope("beta", "admin").await;
    let base_a = format!("{}/admin/v1/tenants/alpha/webhooks", srv.public_url);
    let r = a
        .send(Method::POST, &base_a, Some(json!({"url": "http://127.0.0.1:9/a"})))
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let routes = [
        (Method::GET, base_a.clone()),
        (Method::POST, base_a.clone()),
        (Method::GET, format!("{base_a}/{id}")),
        (Method::DELETE, format!("{base_a}/{id}")),
        (Method::POST, format!("{base_a}/{id}/rotate")),
        (Method::POST, format!("{base_a}/{id}/disable")),
        (Method::POST, format!("{base_a}/{id}/replay")),
    ];
    for (method, url) in &routes {
        for (who, caller, status) in [("B's admin", &b, 401), ("A's SCIM token", &a_scim, 403)] {
            let r = caller
                .send(method.clone(), url, Some(json!({"url": "http://127.0.0.1:9/b"})))
                .await;
            assert_eq!(r.status.as_u16(), status, "{who}: {method} {url}: {}", r.text);
        }
    }
    // Through its own tenant's path, B does not find A's endpoint.
    let base_b = format!("{}/admin/v1/tenants/beta/webhooks", srv.public_url);
    b.send(Method::GET, &format!("{base_b}/{id}"), None)
        .await
        .assert_error(404, None);
    b.send(Method::POST, &format!("{base_b}/{id}/rotate"), None)
        .await
        .assert_error(404, None);
    b.send(Method::DELETE, &format!("{base_b}/{id}"), None)
        .await
        .assert_error(404, None);
    assert_eq!(b.send(Method::GET, &base_b, None).await.body["webhooks"], json!([]));
    let still = srv.store.webhook(a.id, &id).await.unwrap().unwrap();
    assert!(still.enabled && still.previous_sealed.is_none());
}
