//! Over HTTP: the invite link of a tenant's customer administrator — made
//! with the Settings → Provisioning button (admins, not viewers), it
//! creates an Admin account for that tenant and lands on Settings →
//! Provisioning, signed in; it works once, expires, and both are audited —
//! and Settings → Events & webhooks (the secret shown once, the actions).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION};
use scimitar_console::ConsoleConfig;
use scimitar_server::{AppState, Settings};
use scimitar_store::Store;
use scimitar_testkit::browser::{client, cookie_of, csrf_in, form};

const PASSWORD: &str = "correct horse battery staple";

struct Server {
    base: String,
    store: Arc<dyn Store>,
    client: reqwest::Client,
    dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start() -> Server {
    start_with(false).await
}

/// `loopback`: webhooks may go to 127.0.0.0/8 (`--webhook-allow-private`).
async fn start_with(loopback: bool) -> Server {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("scimitar-invite-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store: Arc<dyn Store> = match (
        std::env::var("SCIMITAR_TEST_BACKEND").as_deref(),
        std::env::var("SCIMITAR_TEST_POSTGRES_URL"),
    ) {
        (Ok("postgres"), Ok(url)) if !url.is_empty() => Arc::new(
            scimitar_store_postgres::test_support::fresh_store(&url, 4)
                .await
                .unwrap(),
        ),
        _ => Arc::new(scimitar_store_sqlite::SqliteStore::open(&dir.join("t.db")).unwrap()),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let mut settings = Settings::new(&base);
    if loopback {
        settings.webhook_allow = vec!["127.0.0.0/8".parse().unwrap()];
    }
    let state = AppState::new(store.clone(), settings);
    let mut config = ConsoleConfig::for_public_url(&base);
    config.secure_cookies = false;
    let app = scimitar_server::router_with(state.clone(), scimitar_console::router_with(state.app.clone(), config));
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .unwrap();
    });
    Server {
        base,
        store,
        client: client(),
        dir,
    }
}

impl Server {
    async fn account(&self, tenant: &str, email: &str, role: &str) {
        let tid = match self.store.tenant(tenant).await.unwrap() {
            Some(t) => t.id,
            None => self.store.create_tenant(tenant).await.unwrap().id,
        };
        let hash = scimitar_auth::password::hash(PASSWORD).unwrap();
        self.store.create_admin(Some(tid), email, role, &hash).await.unwrap();
    }

    /// Signs in; the session cookie and the provisioning page's CSRF token.
    async fn login(&self, email: &str) -> (String, String) {
        let page = self.client.get(format!("{}/login", self.base)).send().await.unwrap();
        let login = cookie_of(&page, "scimitar_login").unwrap();
        let csrf = csrf_in(&page.text().await.unwrap());
        let r = self
            .client
            .post(format!("{}/login", self.base))
            .header(COOKIE, format!("scimitar_login={login}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("email", email), ("password", PASSWORD), ("csrf", &csrf)]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let session = cookie_of(&r, "scimitar_session").unwrap();
        let html = self.get(&session, "/console/t/acme/settings/provisioning").await.1;
        (session, csrf_in(&html))
    }

    async fn post(&self, session: &str, path: &str, pairs: &[(&str, &str)]) -> (StatusCode, String) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, format!("scimitar_session={session}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs))
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn get(&self, session: &str, path: &str) -> (StatusCode, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, format!("scimitar_session={session}"))
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// The invite link the button makes (its path and query).
    async fn make_invite(&self, session: &str, csrf: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/console/t/acme/settings/provisioning/invite", self.base))
            .header(COOKIE, format!("scimitar_session={session}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("csrf", csrf)]))
            .send()
            .await
            .unwrap()
    }

    /// Opens the invite form, then sends it; the answer to the POST.
    async fn use_invite(&self, link: &str, email: &str, password: &str) -> reqwest::Response {
        let page = self.client.get(link).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{link}");
        let login = cookie_of(&page, "scimitar_login").unwrap();
        let html = page.text().await.unwrap();
        let csrf = csrf_in(&html);
        let code = link.split("code=").nth(1).unwrap();
        self.client
            .post(format!("{}/invite", self.base))
            .header(COOKIE, format!("scimitar_login={login}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("code", code),
                ("email", email),
                ("password", password),
                ("csrf", &csrf),
            ]))
            .send()
            .await
            .unwrap()
    }
}

fn link_in(html: &str) -> String {
    let i = html
        .find("id=\"invite-link\" readonly value=\"")
        .expect("the invite link")
        + 33;
    html[i..].split('"').next().unwrap().replace("&amp;", "&")
}

#[tokio::test]
async fn an_invite_link_works_once_and_lands_on_provisioning() {
    let s = start().await;
    s.account("acme", "admin@vendor.test", "admin").await;
    s.account("acme", "viewer@vendor.test", "viewer").await;

    // Viewers have no button, and cannot make one.
    let (viewer, viewer_csrf) = s.login("viewer@vendor.test").await;
    assert!(
        !s.get(&viewer, "/console/t/acme/settings/provisioning")
            .await
            .1
            .contains("Create invite link")
    );
    assert_eq!(
        s.make_invite(&viewer, &viewer_csrf).await.status(),
        StatusCode::FORBIDDEN
    );
    // Without the CSRF token, nobody can.
    let (admin, csrf) = s.login("admin@vendor.test").await;
    assert!(
        s.get(&admin, "/console/t/acme/settings/provisioning")
            .await
            .1
            .contains("Create invite link")
    );
    assert_eq!(s.make_invite(&admin, "nope").await.status(), StatusCode::FORBIDDEN);

    // Post-redirect-get: the button's answer is a redirect that hands the
    // link over in a sealed flash; the page it leads to shows it once.
    let r = s.make_invite(&admin, &csrf).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/console/t/acme/settings/provisioning");
    let flash = cookie_of(&r, "scimitar_flash").expect("a flash cookie");
    assert!(!flash.contains("code"), "sealed: {flash}");
    let shown = s
        .client
        .get(format!("{}/console/t/acme/settings/provisioning", s.base))
        .header(COOKIE, format!("scimitar_session={admin}; scimitar_flash={flash}"))
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), StatusCode::OK);
    let link = link_in(&shown.text().await.unwrap());
    assert!(link.starts_with(&format!("{}/invite?code=", s.base)), "{link}");
    assert!(!flash.contains(link.split("code=").nth(1).unwrap()));
    // A reload (the flash is gone): neither shown again nor a second link
    // made (the audit log below has one `tenant.invite-created`).
    let (status, html) = s.get(&admin, "/console/t/acme/settings/provisioning").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains(&link) && !html.contains("id=\"invite-link\""));

    // The form names the tenant; a short password is refused and the link still works.
    let page = s.client.get(&link).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Set up provisioning for acme"), "{page}");
    let r = s.use_invite(&link, "it@customer.test", "short").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // An email that is taken is refused, and the link still works.
    let r = s.use_invite(&link, "admin@vendor.test", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);

    let r = s.use_invite(&link, "it@customer.test", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/console/t/acme/settings/provisioning");
    let session = cookie_of(&r, "scimitar_session").expect("signed in");
    let (status, html) = s.get(&session, "/console/t/acme/settings/provisioning").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Connect Microsoft Entra ID"), "the Entra steps");
    let account = s.store.admin_by_email("it@customer.test").await.unwrap().unwrap();
    assert_eq!(
        (account.role.as_str(), account.tenant.as_deref()),
        ("admin", Some("acme"))
    );

    // Second use: refused with a clear page, on GET and on POST.
    let again = s.client.get(&link).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(again.text().await.unwrap().contains("already used"));
    let code = link.split("code=").nth(1).unwrap();
    let r = s
        .client
        .post(format!("{}/invite", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("code", code),
            ("email", "x@customer.test"),
            ("password", PASSWORD),
            ("csrf", "x"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    assert!(s.store.admin_by_email("x@customer.test").await.unwrap().is_none());
    // A made-up code likewise.
    assert_eq!(
        s.client
            .get(format!("{}/invite?code=abc", s.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::GONE
    );

    let t = s.store.tenant("acme").await.unwrap().unwrap();
    let audit = s.store.list_audit(Some(t.id), 100).await.unwrap();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .filter(|e| e.action.starts_with("tenant.invite"))
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("tenant.invite-used", "it@customer.test"),
            ("tenant.invite-created", "admin@vendor.test")
        ]
    );
    assert!(!format!("{audit:?}").contains(code), "the code is not in the audit log");
}

#[tokio::test]
async fn an_expired_invite_link_is_refused() {
    let s = start().await;
    let t = s.store.create_tenant("acme").await.unwrap();
    let app = scimitar_app::App::new(s.store.clone(), scimitar_app::Config::new(&s.base));
    let invite = app
        .create_invite(&scimitar_app::Actor::Cli, &t, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        s.client.get(&invite.link).send().await.unwrap().status(),
        StatusCode::OK
    );
    // The same code, stored as expired a second ago.
    let code = invite.link.split("code=").nth(1).unwrap();
    s.store
        .put_invite(t.id, &scimitar_auth::hash(code), &scimitar_store::utc_in(-1))
        .await
        .unwrap();
    let r = s.client.get(&invite.link).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    assert!(r.text().await.unwrap().contains("has expired"));
}

fn secret_in(html: &str) -> String {
    let marker = "id=\"webhook-secret\" readonly value=\"";
    let i = html.find(marker).expect("the secret") + marker.len();
    html[i..].split('"').next().unwrap().to_string()
}

#[tokio::test]
async fn events_and_webhooks_settings() {
    let s = start_with(true).await;
    s.account("acme", "admin@vendor.test", "admin").await;
    s.account("acme", "viewer@vendor.test", "viewer").await;
    let page = "/console/t/acme/settings/webhooks";
    let (admin, csrf) = s.login("admin@vendor.test").await;
    let (status, html) = s.get(&admin, page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No webhooks yet.") && html.contains("Add webhook"));

    // Mistakes come back on the page, nothing stored.
    for (url, types, needle) in [
        ("https://10.0.0.1/h", "", "not a public address"),
        ("http://8.8.8.8/h", "", "must be https"),
        ("http://127.0.0.1:9/h", "user.exploded", "not an event type"),
    ] {
        let (status, html) = s
            .post(&admin, page, &[("csrf", &csrf), ("url", url), ("types", types)])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}");
        assert!(html.contains(needle), "{url}: {needle}");
    }
    let t = s.store.tenant("acme").await.unwrap().unwrap();
    assert!(s.store.webhooks(t.id).await.unwrap().is_empty());
    // Not without the form's CSRF token.
    let (status, _) = s
        .post(&admin, page, &[("csrf", "x"), ("url", "http://127.0.0.1:9/h")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, html) = s
        .post(
            &admin,
            page,
            &[
                ("csrf", &csrf),
                ("url", "http://127.0.0.1:9/h"),
                ("types", "user.created, user.deleted"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let secret = secret_in(&html);
    assert!(secret.starts_with("whsec_"));
    let w = s.store.webhooks(t.id).await.unwrap().pop().unwrap();
    assert_eq!(w.types, ["user.created", "user.deleted"]);
    let (_, html) = s.get(&admin, page).await;
    assert!(
        html.contains("http://127.0.0.1:9/h") && !html.contains(&secret),
        "shown once"
    );

    let act = |a: &str| format!("{page}/{}/{a}", w.id);
    assert_eq!(
        s.post(&admin, &act("disable"), &[("csrf", &csrf)]).await.0,
        StatusCode::OK
    );
    assert!(!s.store.webhook(t.id, &w.id).await.unwrap().unwrap().enabled);
    assert_eq!(
        s.post(&admin, &act("enable"), &[("csrf", &csrf)]).await.0,
        StatusCode::OK
    );
    assert!(s.store.webhook(t.id, &w.id).await.unwrap().unwrap().enabled);
    let (status, html) = s.post(&admin, &act("rotate"), &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::OK);
    let rotated = secret_in(&html);
    assert!(rotated != secret && html.contains("24 hours"));
    let (status, html) = s.post(&admin, &act("replay"), &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("0 failed events"));
    assert_eq!(
        s.post(&admin, &act("explode"), &[("csrf", &csrf)]).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.post(&admin, &act("rotate"), &[("csrf", "x")]).await.0,
        StatusCode::FORBIDDEN
    );

    // Viewers see the endpoints, not the forms, and cannot change them.
    let (viewer, viewer_csrf) = s.login("viewer@vendor.test").await;
    let (_, html) = s.get(&viewer, page).await;
    assert!(html.contains("http://127.0.0.1:9/h") && !html.contains("Add webhook") && !html.contains("Rotate secret"));
    assert_eq!(
        s.post(&viewer, &act("remove"), &[("csrf", &viewer_csrf)]).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post(
            &viewer,
            page,
            &[("csrf", &viewer_csrf), ("url", "http://127.0.0.1:9/v")]
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );

    assert_eq!(
        s.post(&admin, &act("remove"), &[("csrf", &csrf)]).await.0,
        StatusCode::OK
    );
    assert!(s.store.webhooks(t.id).await.unwrap().is_empty());
    assert_eq!(
        s.post(&admin, &act("remove"), &[("csrf", &csrf)]).await.0,
        StatusCode::NOT_FOUND
    );
    let audit = s.store.list_audit(Some(t.id), 100).await.unwrap();
    let created = audit.iter().find(|e| e.action == "webhook.created").unwrap();
    assert_eq!(created.actor, "admin@vendor.test");
    assert!(!format!("{audit:?}").contains(&secret));
}

#[tokio::test]
async fn send_test_event_button() {
    let s = start_with(true).await;
    s.account("acme", "admin@vendor.test", "admin").await;
    let page = "/console/t/acme/settings/webhooks";
    let (admin, csrf) = s.login("admin@vendor.test").await;
    let receiver = scimitar_testkit::webhook::Receiver::start(&[]).await;
    let (status, html) = s
        .post(
            &admin,
            page,
            &[("csrf", &csrf), ("url", &receiver.url()), ("types", "")],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    receiver.set_secrets(&[&secret_in(&html)]);
    let t = s.store.tenant("acme").await.unwrap().unwrap();
    let w = s.store.webhooks(t.id).await.unwrap().pop().unwrap();
    let (_, html) = s.get(&admin, page).await;
    assert!(html.contains("Send test event"));
    let test = format!("{page}/{}/test", w.id);

    let (status, html) = s.post(&admin, &test, &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("delivered to") && html.contains("answered 200"), "{html}");
    let got = receiver.accepted();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["type"], "webhook.test");
    assert!(html.contains(&got[0].id));

    // A receiver that is down: said on the page, not an error page.
    receiver.down();
    let (status, html) = s.post(&admin, &test, &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("was not delivered"), "{html}");
    assert_eq!(s.post(&admin, &test, &[("csrf", "x")]).await.0, StatusCode::FORBIDDEN);
    let audit = s.store.list_audit(Some(t.id), 100).await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "webhook.tested").count(), 2);
}
