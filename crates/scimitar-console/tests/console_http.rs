//! HTTP tests of the console: CSRF rejection, session expiry, role checks,
//! cookie attributes and security headers, against a real server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use scimitar_console::ConsoleConfig;
use scimitar_server::{AppState, Settings};
use scimitar_store::Store;

const PASSWORD: &str = "correct horse battery staple";

struct Server {
    base: String,
    store: Arc<dyn Store>,
    client: reqwest::Client,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config() -> ConsoleConfig {
    let mut c = ConsoleConfig::for_public_url("http://localhost");
    c.secure_cookies = false;
    c
}

async fn start(config: ConsoleConfig) -> Server {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("scimitar-console-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // SCIMITAR_TEST_BACKEND=postgres with SCIMITAR_TEST_POSTGRES_URL runs on
    // PostgreSQL (a fresh schema per server), as the server's HTTP suites do.
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
    let state = AppState::new(store.clone(), Settings::new(&base));
    let app = scimitar_server::router_with(state.clone(), scimitar_console::router_with(state.app.clone(), config));
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .await
            .unwrap();
    });
    let client = scimitar_testkit::http()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Server {
        base,
        store,
        client,
        _dir: TempDir(dir),
    }
}

/// A cookie's value from a response's `Set-Cookie` headers.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<(String, String)> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let value = v[name.len() + 1..].split(';').next().unwrap().to_string();
            (value, v.to_string())
        })
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_of(html: &str) -> String {
    let i = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[i..].split('"').next().unwrap().to_string()
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A signed-in browser: its session cookie and the page's CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

impl Server {
    async fn account(&self, tenant: Option<&str>, email: &str, role: &str) {
        let tid = match tenant {
            Some(name) => Some(match self.store.tenant(name).await.unwrap() {
                Some(t) => t.id,
                None => self.store.create_tenant(name).await.unwrap().id,
            }),
            None => None,
        };
        let hash = scimitar_auth::password::hash(PASSWORD).unwrap();
        self.store.create_admin(tid, email, role, &hash).await.unwrap();
    }

    async fn post_login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_login_with(&self.client, email, password).await
    }

    /// A sign-in through `client` (e.g. one bound to another local address).
    async fn post_login_with(&self, client: &reqwest::Client, email: &str, password: &str) -> reqwest::Response {
        let page = client.get(format!("{}/login", self.base)).send().await.unwrap();
        let (login_cookie, _) = set_cookie(&page, "scimitar_login").unwrap();
        let csrf = csrf_of(&page.text().await.unwrap());
        client
            .post(format!("{}/login", self.base))
            .header(COOKIE, format!("scimitar_login={login_cookie}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("email", email), ("password", password), ("csrf", &csrf)]))
            .send()
            .await
            .unwrap()
    }

    async fn login(&self, email: &str) -> Browser {
        let resp = self.post_login(email, PASSWORD).await;
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "sign-in of {email}");
        let (cookie, _) = set_cookie(&resp, "scimitar_session").expect("a session cookie");
        let mut b = Browser {
            cookie,
            csrf: String::new(),
        };
        // `/console` leads to the account's home page, which has the token.
        let home = self.get_raw(&b, "/console").await;
        let target = home.headers()[LOCATION].to_str().unwrap().to_string();
        let (_, html) = self.get(&b, &target).await;
        b.csrf = csrf_of(&html);
        b
    }

    async fn get_raw(&self, b: &Browser, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header(COOKIE, format!("scimitar_session={}", b.cookie))
            .send()
            .await
            .unwrap()
    }

    async fn get(&self, b: &Browser, path: &str) -> (StatusCode, String) {
        let r = self.get_raw(b, path).await;
        (r.status(), r.text().await.unwrap())
    }

    async fn post(&self, b: &Browser, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header(COOKIE, format!("scimitar_session={}", b.cookie))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs))
            .send()
            .await
            .unwrap()
    }

    /// **Generate** as a browser does it: the POST, then the page it
    /// redirects to with the one-time flash cookie. The new token and the page.
    async fn generate(&self, b: &Browser, label: &str) -> (String, String) {
        let r = self.post(b, GENERATE, &[("csrf", &b.csrf), ("label", label)]).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "Generate redirects");
        let to = r.headers()[LOCATION].to_str().unwrap().to_string();
        let (flash, _) = set_cookie(&r, "scimitar_flash").expect("a flash cookie");
        let page = self
            .client
            .get(format!("{}{to}", self.base))
            .header(COOKIE, format!("scimitar_session={}; scimitar_flash={flash}", b.cookie))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        let i = html
            .find("id=\"secret-token\" readonly value=\"")
            .expect("the new token")
            + 34;
        (html[i..].split('"').next().unwrap().to_string(), html)
    }

    async fn tokens(&self, tenant: &str) -> Vec<scimitar_store::TokenInfo> {
        let t = self.store.tenant(tenant).await.unwrap().unwrap();
        self.store.list_tokens(t.id).await.unwrap()
    }
}

const GENERATE: &str = "/console/t/acme/settings/provisioning/tokens";

#[tokio::test]
async fn forms_without_the_right_csrf_token_are_refused() {
    let s = start(config()).await;
    s.account(Some("acme"), "admin@acme.test", "admin").await;
    let b = s.login("admin@acme.test").await;

    for bad in ["", "not-the-token"] {
        let r = s.post(&b, GENERATE, &[("csrf", bad), ("label", "x")]).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert!(s.tokens("acme").await.is_empty(), "no token was created");

    let (_, html) = s.generate(&b, "entra").await;
    assert!(html.contains("you will not see it again"));
    let tokens = s.tokens("acme").await;
    assert_eq!(tokens.len(), 1);

    // Revoke and sign-out need it too.
    let revoke = format!("{GENERATE}/{}/revoke", tokens[0].id);
    assert_eq!(
        s.post(&b, &revoke, &[("csrf", "x")]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert!(s.tokens("acme").await[0].revoked.is_none());
    assert_eq!(s.post(&b, "/logout", &[]).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.get(&b, "/console/t/acme").await.0, StatusCode::OK, "still signed in");

    // Sign-in itself: the form's token must match its cookie.
    let r = s
        .client
        .post(format!("{}/login", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("email", "admin@acme.test"),
            ("password", PASSWORD),
            ("csrf", "forged"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&r, "scimitar_session").is_none());
}

/// **Generate** is a POST-redirect-GET: the token is shown once, from a
/// sealed one-time flash bound to the session; a reload creates no other
/// token and does not show it again.
#[tokio::test]
async fn generate_redirects_and_shows_the_new_token_once() {
    let s = start(config()).await;
    s.account(Some("acme"), "admin@acme.test", "admin").await;
    s.account(Some("acme"), "other@acme.test", "admin").await;
    let b = s.login("admin@acme.test").await;
    let page = "/console/t/acme/settings/provisioning";
    let r = s.post(&b, GENERATE, &[("csrf", &b.csrf), ("label", "entra")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION].to_str().unwrap(), page);
    let (flash, attrs) = set_cookie(&r, "scimitar_flash").expect("a flash cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Max-Age=120"] {
        assert!(attrs.contains(attr), "{attrs}");
    }
    let show = |cookie: String| {
        let s = &s;
        async move {
            s.client
                .get(format!("{}{page}", s.base))
                .header(COOKIE, cookie)
                .send()
                .await
                .unwrap()
        }
    };
    // Another session presenting this flash sees nothing.
    let other = s.login("other@acme.test").await;
    let r = show(format!("scimitar_session={}; scimitar_flash={flash}", other.cookie)).await;
    assert!(!r.text().await.unwrap().contains("id=\"secret-token\""));
    // The page it redirects to shows the token and clears the flash.
    let r = show(format!("scimitar_session={}; scimitar_flash={flash}", b.cookie)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let (cleared, attrs) = set_cookie(&r, "scimitar_flash").expect("the flash is cleared");
    assert!(cleared.is_empty() && attrs.contains("Max-Age=0"), "{attrs}");
    let html = r.text().await.unwrap();
    let i = html
        .find("id=\"secret-token\" readonly value=\"")
        .expect("the token is shown")
        + 34;
    let secret = html[i..].split('"').next().unwrap().to_string();
    assert!(secret.starts_with("scim_"), "{secret}");
    assert!(html.contains("Your new Secret Token “entra”"), "{html}");
    // Sealed: the cookie does not hold the token readable.
    assert!(!flash.contains(&secret) && !flash.contains("scim_"), "{flash}");
    // A reload (the browser dropped the flash): no new token, not shown again.
    let (status, html) = s.get(&b, page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("id=\"secret-token\"") && !html.contains(&secret));
    assert_eq!(s.tokens("acme").await.len(), 1, "a reload creates no token");
    // A damaged flash is ignored, not an error.
    let r = show(format!("scimitar_session={}; scimitar_flash=sealed:v1:AAAA", b.cookie)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!r.text().await.unwrap().contains("id=\"secret-token\""));
}

/// For every range the activity page offers, the chart's totals equal the
/// number of events the list pages through and the count it states;
/// events just inside a range are in its chart, those outside in none.
#[tokio::test]
async fn the_activity_chart_adds_up_to_the_list_for_every_range() {
    use scimitar_store::ActivityEvent;
    let s = start(config()).await;
    s.account(Some("acme"), "admin@acme.test", "admin").await;
    let tenant = s.store.tenant("acme").await.unwrap().unwrap();
    let b = s.login("admin@acme.test").await;
    // Seconds ago, and how many events there.
    let spread: &[(i64, usize)] = &[
        (5, 3),
        (600, 40),
        (57 * 60, 2),
        (62 * 60, 1),
        (5 * 3600, 30),
        (23 * 3600 + 57 * 60, 1),
        (25 * 3600, 1),
        (3 * 86_400, 1),
        (6 * 86_400 + 23 * 3600, 1),
        (8 * 86_400, 1),
        (29 * 86_400, 1),
        (31 * 86_400, 1),
    ];
    let now = time::OffsetDateTime::now_utc();
    // Oldest first, as they are written (the list pages by id).
    for (i, (ago, n)) in spread.iter().enumerate().rev() {
        for k in 0..*n {
            let t = now - time::Duration::seconds(*ago);
            s.store
                .record_activity(ActivityEvent {
                    id: 0,
                    tenant_id: tenant.id,
                    time: t
                        .format(time::macros::format_description!(
                            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                        ))
                        .unwrap(),
                    token_id: None,
                    token_label: None,
                    action: if k % 2 == 0 { "create" } else { "update" }.into(),
                    resource_type: Some("User".into()),
                    resource_id: Some(format!("u{i}-{k}")),
                    name: Some(format!("user{i}-{k}@acme.test")),
                    changes: serde_json::json!([]),
                    outcome: if k % 7 == 3 { "failure" } else { "success" }.into(),
                    status: if k % 7 == 3 { 409 } else { 201 },
                    error: None,
                    method: "POST".into(),
                    path: "/Users".into(),
                    change: None,
                })
                .await
                .unwrap();
        }
    }
    let within = |secs: i64| {
        spread
            .iter()
            .filter(|(ago, _)| *ago < secs)
            .map(|(_, n)| n)
            .sum::<usize>()
    };
    let (_, page) = s.get(&b, "/console/t/acme/activity").await;
    let select = &page[page.find("id=\"range\"").unwrap()..];
    let select = &select[..select.find("</select>").unwrap()];
    let ranges: Vec<String> = select
        .split("value=\"")
        .skip(1)
        .map(|v| v.split('"').next().unwrap().to_string())
        .collect();
    assert_eq!(ranges, ["1h", "24h", "7d", "30d"]);
    for range in &ranges {
        let secs = match range.as_str() {
            "1h" => 3600,
            "24h" => 86_400,
            "7d" => 7 * 86_400,
            _ => 30 * 86_400,
        };
        let (status, html) = s.get(&b, &format!("/console/t/acme/activity?range={range}")).await;
        assert_eq!(status, StatusCode::OK);
        let chart: usize = html
            .split("<tr data-total=\"")
            .skip(1)
            .map(|t| t.split('"').next().unwrap().parse::<usize>().unwrap())
            .sum();
        // The list, page by page.
        let mut listed = 0;
        let mut next = Some(format!("/console/t/acme/activity?range={range}"));
        while let Some(url) = next.take() {
            let (_, html) = s.get(&b, &url.replace("&amp;", "&").replace("&#38;", "&")).await;
            listed += html.matches("<li class=\"event ").count();
            next = html.find("\" rel=\"next\"").map(|end| {
                let start = html[..end].rfind("href=\"").unwrap() + 6;
                html[start..end].to_string()
            });
            assert!(listed <= 1000, "the list pages on forever: {next:?}");
        }
        let count = &html[html.find("id=\"event-count\">").unwrap() + 17..];
        let count: usize = count.split(' ').next().unwrap().parse().unwrap();
        let expected = within(secs);
        assert_eq!((chart, listed, count), (expected, expected, expected), "range {range}");
        let unit = match range.as_str() {
            "1h" => "minute",
            "24h" => "hour",
            _ => "day",
        };
        assert!(html.contains(&format!("Events per {unit} (highest: ")), "range {range}");
    }
}

/// Settings pages say what they show: the token column keeps a token's
/// hint on one line, the accounts table says when it is empty, and the
/// "last request" line says it is as of the page's loading.
#[tokio::test]
async fn settings_pages_say_what_they_show() {
    let s = start(config()).await;
    s.account(Some("acme"), "admin@acme.test", "admin").await;
    s.store.create_tenant("empty").await.unwrap();
    s.account(None, "ops@example.test", "operator").await;
    let b = s.login("admin@acme.test").await;
    let (_, html) = s.get(&b, "/console/t/acme/settings/provisioning").await;
    let line = &html[html.find("id=\"last-request\"").unwrap()..];
    let line = &line[..line.find("</p>").unwrap()];
    assert!(line.contains("none yet"), "{line}");
    assert!(
        line.contains("As of ") && line.contains(" UTC, when this page was loaded"),
        "{line}"
    );
    assert!(line.contains("it does not update by itself"), "{line}");
    s.generate(&b, "entra").await;
    let (_, html) = s.get(&b, "/console/t/acme/settings/provisioning").await;
    assert!(html.contains("<td class=\"token\"><code>"), "{html}");
    let css = s
        .client
        .get(format!("{}/assets/console.css", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(css.contains("td.token, td.token code { white-space:nowrap; word-break:normal; }"));
    // Accounts: listed, or a line saying there are none.
    let (_, html) = s.get(&b, "/console/t/acme/settings/accounts").await;
    assert!(
        html.contains("admin@acme.test") && !html.contains("id=\"no-accounts\""),
        "{html}"
    );
    let ops = s.login("ops@example.test").await;
    let (status, html) = s.get(&ops, "/console/t/empty/settings/accounts").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("id=\"no-accounts\">No console accounts in this tenant yet. Add one below."),
        "{html}"
    );
}

#[tokio::test]
async fn idle_sessions_expire() {
    let mut cfg = config();
    cfg.idle_timeout = Duration::from_millis(1200);
    let s = start(cfg).await;
    s.account(Some("acme"), "admin@acme.test", "admin").await;
    let b = s.login("admin@acme.test").await;
    assert_eq!(s.get(&b, "/console/t/acme").await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = s.get_raw(&b, "/console/t/acme").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/login?expired=1");
    // Expired means gone: it does not come back.
    assert_eq!(s.get(&b, "/console/t/acme").await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn sessions_end_after_the_absolute_timeout_even_when_used() {
    let mut cfg = config();
    cfg.absolute_timeout = Duration::from_millis(1500);
    let s = start(cfg).await;
    s.account(Some("acme"), "admin@acme.test", "admin").await;
    let b = s.login("admin@acme.test").await;
    for _ in 0..4 {
        assert_eq!(s.get(&b, "/console/t/acme").await.0, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(s.get(&b, "/console/t/acme").await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn signing_in_again_rotates_the_session_and_signing_out_ends_it() {
    let s = start(config()).await;
    s.account(Some("acme"), "admin@acme.test", "admin").await;
    let first = s.login("admin@acme.test").await;
    // A browser that signs in again with its old cookie gets a new session; the old one ends.
    let page = s.client.get(format!("{}/login", s.base)).send().await.unwrap();
    let (login_cookie, _) = set_cookie(&page, "scimitar_login").unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    let r = s
        .client
        .post(format!("{}/login", s.base))
        .header(
            COOKIE,
            format!("scimitar_login={login_cookie}; scimitar_session={}", first.cookie),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("email", "admin@acme.test"),
            ("password", PASSWORD),
            ("csrf", &csrf),
        ]))
        .send()
        .await
        .unwrap();
    let (second, _) = set_cookie(&r, "scimitar_session").unwrap();
    assert_ne!(second, first.cookie);
    assert_eq!(s.get(&first, "/console/t/acme").await.0, StatusCode::SEE_OTHER);
    let mut b = Browser {
        cookie: second,
        csrf: String::new(),
    };
    b.csrf = csrf_of(&s.get(&b, "/console/t/acme").await.1);
    let r = s.post(&b, "/logout", &[("csrf", &b.csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(s.get(&b, "/console/t/acme").await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn viewers_cannot_generate_or_revoke() {
    let s = start(config()).await;
    s.account(Some("acme"), "admin@acme.test", "admin").await;
    s.account(Some("acme"), "viewer@acme.test", "viewer").await;
    let admin = s.login("admin@acme.test").await;
    s.generate(&admin, "entra").await;
    let token = s.tokens("acme").await.remove(0);

    let viewer = s.login("viewer@acme.test").await;
    let (status, html) = s.get(&viewer, "/console/t/acme/settings/provisioning").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&token.hint), "viewers see the tokens");
    assert!(!html.contains("id=\"generate\""), "no Generate button for viewers");
    assert!(!html.contains("/revoke\""), "no Revoke links for viewers");

    let r = s
        .post(&viewer, GENERATE, &[("csrf", &viewer.csrf), ("label", "x")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.tokens("acme").await.len(), 1);
    let revoke = format!("{GENERATE}/{}/revoke", token.id);
    assert_eq!(s.get(&viewer, &revoke).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        s.post(&viewer, &revoke, &[("csrf", &viewer.csrf)]).await.status(),
        StatusCode::FORBIDDEN
    );
    assert!(s.tokens("acme").await[0].revoked.is_none());
    let r = s
        .post(
            &viewer,
            "/console/t/acme/settings/accounts",
            &[
                ("csrf", &viewer.csrf),
                ("email", "x@acme.test"),
                ("role", "admin"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The admin may.
    assert_eq!(s.get(&admin, &revoke).await.0, StatusCode::OK);
    let r = s.post(&admin, &revoke, &[("csrf", &admin.csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(s.tokens("acme").await[0].revoked.is_some());
}

#[tokio::test]
async fn tenant_accounts_see_only_their_tenant_and_operators_see_all() {
    let s = start(config()).await;
    s.account(Some("acme"), "admin@acme.test", "admin").await;
    s.account(Some("globex"), "admin@globex.test", "admin").await;
    s.account(None, "ops@example.test", "operator").await;
    let acme = s.login("admin@acme.test").await;
    for path in [
        "/console/t/globex",
        "/console/t/globex/users",
        "/console/t/globex/settings/provisioning",
    ] {
        assert_eq!(s.get(&acme, path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let r = s
        .post(
            &acme,
            "/console/t/globex/settings/provisioning/tokens",
            &[("csrf", &acme.csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(s.tokens("globex").await.is_empty());
    assert_eq!(s.get(&acme, "/console/tenants").await.0, StatusCode::FORBIDDEN);
    let r = s
        .post(
            &acme,
            "/console/tenants",
            &[
                ("csrf", &acme.csrf),
                ("name", "evil"),
                ("email", "e@evil.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let ops = s.login("ops@example.test").await;
    assert_eq!(
        s.get(&ops, "/console/t/globex/settings/provisioning").await.0,
        StatusCode::OK
    );
    let r = s
        .post(
            &ops,
            "/console/tenants",
            &[
                ("csrf", &ops.csrf),
                ("name", "initech"),
                ("email", "admin@initech.test"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let first = s.store.admin_by_email("ADMIN@initech.test").await.unwrap().unwrap();
    assert_eq!(
        (first.role.as_str(), first.tenant.as_deref()),
        ("admin", Some("initech"))
    );
    let initech = s.login("admin@initech.test").await;
    assert_eq!(s.get(&initech, "/console/t/initech").await.0, StatusCode::OK);
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_account_and_address() {
    let s = start(config()).await;
    s.account(Some("acme"), "admin@acme.test", "admin").await;
    for _ in 0..5 {
        let r = s.post_login("admin@acme.test", "wrong password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.text().await.unwrap().contains("Wrong email or password."));
    }
    let r = s.post_login("admin@acme.test", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(set_cookie(&r, "scimitar_session").is_none());
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&wait), "Retry-After {wait}");
    // The owner, from another address, is not locked out by someone who
    // knows the email.
    let elsewhere = scimitar_testkit::http()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let r = s.post_login_with(&elsewhere, "admin@acme.test", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed in from another address");
    // Unknown emails get the same answer as wrong passwords.
    let r = s.post_login("nobody@acme.test", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn oversized_forms_are_refused_before_they_are_read() {
    let s = start(config()).await;
    s.account(None, "op@example.test", "operator").await;
    // The sign-in form is open to anyone: a body far above a form's size is
    // refused, and the console sits behind the server's layers (request ids,
    // the concurrency limit, the header limit).
    let page = s.client.get(format!("{}/login", s.base)).send().await.unwrap();
    assert!(
        page.headers().contains_key("x-request-id"),
        "console behind the server's layers"
    );
    let big = "a".repeat(scimitar_console::FORM_BODY_LIMIT + 1);
    let r = s
        .client
        .post(format!("{}/login", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("email", "op@example.test"), ("password", &big), ("csrf", "x")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A form of ordinary size still signs in.
    let r = s.post_login("op@example.test", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn cookies_and_headers_are_locked_down() {
    let mut cfg = config();
    cfg.secure_cookies = true;
    let s = start(cfg).await;
    s.account(Some("acme"), "admin@acme.test", "admin").await;
    let page = s.client.get(format!("{}/login", s.base)).send().await.unwrap();
    let h = page.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    let (login_cookie, attrs) = set_cookie(&page, "__Host-scimitar_login").unwrap();
    assert!(attrs.contains("HttpOnly") && attrs.contains("SameSite=Strict") && attrs.contains("Secure"));
    let csrf = csrf_of(&page.text().await.unwrap());
    let r = s
        .client
        .post(format!("{}/login", s.base))
        .header(COOKIE, format!("__Host-scimitar_login={login_cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("email", "admin@acme.test"),
            ("password", PASSWORD),
            ("csrf", &csrf),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (value, attrs) = set_cookie(&r, "__Host-scimitar_session").unwrap();
    for a in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(attrs.contains(a), "{a} in {attrs}");
    }
    // Only a hash of the cookie is stored.
    assert!(
        s.store
            .session(&scimitar_console::sha256(&value))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn the_setup_link_creates_the_first_operator_once() {
    let s = start(config()).await;
    let state = AppState::new(s.store.clone(), Settings::new(&s.base));
    let link = scimitar_console::setup_link(&state.app)
        .await
        .unwrap()
        .expect("a fresh install has a link");
    let code = link.split("code=").nth(1).unwrap().to_string();
    let submit = |code: String, email: &'static str| {
        let s = &s;
        async move {
            let page = s.client.get(format!("{}/setup", s.base)).send().await.unwrap();
            if page.status() != StatusCode::OK {
                return page.status();
            }
            let (cookie, _) = set_cookie(&page, "scimitar_login").unwrap();
            let csrf = csrf_of(&page.text().await.unwrap());
            s.client
                .post(format!("{}/setup", s.base))
                .header(COOKIE, format!("scimitar_login={cookie}"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[
                    ("code", &code),
                    ("email", email),
                    ("password", PASSWORD),
                    ("csrf", &csrf),
                ]))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(submit("wrong".into(), "ops@example.test").await, StatusCode::FORBIDDEN);
    assert_eq!(submit(code.clone(), "ops@example.test").await, StatusCode::SEE_OTHER);
    assert_eq!(
        submit(code, "second@example.test").await,
        StatusCode::FORBIDDEN,
        "used once"
    );
    let ops = s.store.admin_by_email("ops@example.test").await.unwrap().unwrap();
    assert_eq!((ops.role.as_str(), ops.tenant_id), ("operator", None));
    assert!(s.store.admin_by_email("second@example.test").await.unwrap().is_none());
    // Once an account exists, serve prints no link.
    assert!(scimitar_console::setup_link(&state.app).await.unwrap().is_none());
    // Its use is in the audit log, with the account it made.
    let audit = s.store.list_audit(None, 10).await.unwrap();
    let used = audit
        .iter()
        .find(|e| e.action == "console.setup-link-used")
        .expect("the setup link's use is audited");
    assert_eq!(used.target.as_deref(), Some("ops@example.test"));
    assert!(audit.iter().any(|e| e.action == "admin.created"));
}

/// After the setup link made the operator, the sign-in page says so; an
/// operator of an install with one tenant lands on it after signing in
/// (its Settings → Provisioning is the next step), with several on "All
/// tenants".
#[tokio::test]
async fn after_setup_the_operator_is_told_and_lands_on_the_only_tenant() {
    use scimitar_testkit::browser::{cookie_of, csrf_in, form};
    let s = start(config()).await;
    s.store.create_tenant("default").await.unwrap();
    let state = AppState::new(s.store.clone(), Settings::new(&s.base));
    let link = scimitar_console::setup_link(&state.app).await.unwrap().unwrap();
    let code = link.split("code=").nth(1).unwrap().to_string();
    let page = s.client.get(format!("{}/setup", s.base)).send().await.unwrap();
    let cookie = cookie_of(&page, "scimitar_login").unwrap();
    let csrf = csrf_in(&page.text().await.unwrap());
    let r = s
        .client
        .post(format!("{}/setup", s.base))
        .header(COOKIE, format!("scimitar_login={cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("code", &code),
            ("email", "ops@example.test"),
            ("password", PASSWORD),
            ("csrf", &csrf),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()[LOCATION].to_str().unwrap().to_string();
    assert_eq!(to, "/login?created=1");
    let signin = s.client.get(format!("{}{to}", s.base)).send().await.unwrap();
    assert_eq!(signin.status(), StatusCode::OK);
    let html = signin.text().await.unwrap();
    assert!(html.contains("Account created — sign in."), "{html}");
    // The plain sign-in page does not say it.
    let plain = s.client.get(format!("{}/login", s.base)).send().await.unwrap();
    assert!(!plain.text().await.unwrap().contains("Account created"));

    let r = s.post_login("ops@example.test", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = cookie_of(&r, "scimitar_session").unwrap();
    let home = |cookie: String| {
        let s = &s;
        async move {
            let r = s
                .client
                .get(format!("{}/console", s.base))
                .header(COOKIE, format!("scimitar_session={cookie}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            r.headers()[LOCATION].to_str().unwrap().to_string()
        }
    };
    assert_eq!(home(cookie.clone()).await, "/console/t/default");
    s.store.create_tenant("second").await.unwrap();
    assert_eq!(home(cookie).await, "/console/tenants");
}

/// A link printed by a fresh install dies as soon as any account exists,
/// however it was made (here as `scimitar admin create` makes it).
#[tokio::test]
async fn the_setup_link_dies_once_any_account_exists() {
    let s = start(config()).await;
    let state = AppState::new(s.store.clone(), Settings::new(&s.base));
    let link = scimitar_console::setup_link(&state.app).await.unwrap().unwrap();
    let code = link.split("code=").nth(1).unwrap().to_string();
    let page = s.client.get(format!("{}/setup", s.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let (cookie, _) = set_cookie(&page, "scimitar_login").unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    s.account(Some("acme"), "admin@acme.test", "admin").await;
    let r = s
        .client
        .post(format!("{}/setup", s.base))
        .header(COOKIE, format!("scimitar_login={cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("code", &code),
            ("email", "intruder@example.test"),
            ("password", PASSWORD),
            ("csrf", &csrf),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(s.store.admin_by_email("intruder@example.test").await.unwrap().is_none());
    let page = s.client.get(format!("{}/setup", s.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn every_page_shows_what_the_identity_provider_sent() {
    let s = start(config()).await;
    s.account(Some("acme"), "admin@acme.test", "admin").await;
    let b = s.login("admin@acme.test").await;
    let (secret, _) = s.generate(&b, "entra").await;
    let scim = |path: &str, body: serde_json::Value| {
        s.client
            .post(format!("{}/scim/acme/v2{path}", s.base))
            .bearer_auth(&secret)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
    };
    let u = scim(
        "/Users",
        serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "grace@acme.test",
            "name": {"givenName": "Grace", "familyName": "Hopper"}, "emails": [{"value": "grace@acme.test", "primary": true}]}),
    )
    .await
    .unwrap();
    assert_eq!(u.status(), StatusCode::CREATED);
    let uid = serde_json::from_str::<serde_json::Value>(&u.text().await.unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let g = scim(
        "/Groups",
        serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Compilers",
            "members": [{"value": uid}]}),
    )
    .await
    .unwrap();
    assert_eq!(g.status(), StatusCode::CREATED);
    let gid = serde_json::from_str::<serde_json::Value>(&g.text().await.unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();

    let users = s.get(&b, "/console/t/acme/users?q=hopper").await;
    assert!(
        users.1.contains("grace@acme.test") && users.1.contains("1 user matching"),
        "{}",
        users.1
    );
    let none = s.get(&b, "/console/t/acme/users?q=%22%5C%20or%20true").await;
    assert_eq!(none.0, StatusCode::OK, "search text is a literal, never filter syntax");
    assert!(none.1.contains("0 users"));
    let user = s.get(&b, &format!("/console/t/acme/users/{uid}")).await;
    assert!(user.1.contains("Grace Hopper") && user.1.contains("Compilers"));
    let groups = s.get(&b, "/console/t/acme/groups?q=comp").await;
    assert!(
        groups.1.contains("Compilers") && groups.1.contains("<td>1</td>"),
        "{}",
        groups.1
    );
    let group = s.get(&b, &format!("/console/t/acme/groups/{gid}")).await;
    assert!(group.1.contains(">grace@acme.test</a>"), "{}", group.1);
    let activity = s.get(&b, "/console/t/acme/activity?range=7d&action=create").await;
    assert!(activity.1.contains("grace@acme.test") && activity.1.contains("Compilers"));
    // Each change links to the events it made: the group's create made
    // group.created and one group.user_added (newest entry first).
    let links: Vec<String> = activity
        .1
        .match_indices("<a href=\"/console/t/acme/activity/changes/")
        .map(|(i, _)| activity.1[i + 9..].split('"').next().unwrap().replace("&amp;", "&"))
        .collect();
    assert_eq!(links.len(), 2, "{}", activity.1);
    let (status, group_events) = s.get(&b, &links[0]).await;
    assert_eq!(status, StatusCode::OK);
    let types: Vec<&str> = group_events
        .match_indices("<code class=\"event-type\">")
        .map(|(i, m)| group_events[i + m.len()..].split('<').next().unwrap())
        .collect();
    assert_eq!(types, ["group.created", "group.user_added"], "{group_events}");
    assert!(group_events.contains(&uid), "the member's id is in the payload");
    let (_, user_events) = s.get(&b, &links[1]).await;
    assert_eq!(
        user_events.matches("<code class=\"event-type\">user.created<").count(),
        1
    );
    // A damaged link (its time) is a clear 400, not an empty page.
    let (status, _) = s.get(&b, &links[0].replace("at=", "at=garbage")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let csv = s.get(&b, "/console/t/acme/activity.csv?range=24h").await;
    assert!(csv.1.starts_with("time,action,outcome") && csv.1.contains("\"grace@acme.test\""));
    let overview = s.get(&b, "/console/t/acme").await;
    assert!(overview.1.contains("id=\"count-users\">1<") && overview.1.contains("id=\"count-groups\">1<"));
    // One of a thing is singular.
    assert!(
        overview.1.contains(">1</span> user</li>") && overview.1.contains(">1</span> group</li>"),
        "{}",
        overview.1
    );
    s.account(None, "ops@example.test", "operator").await;
    let ops = s.login("ops@example.test").await;
    let tenants = s.get(&ops, "/console/tenants").await;
    assert_eq!(tenants.0, StatusCode::OK);
    let n = tenants.1.matches("/console/t/").count();
    assert!(tenants.1.contains(&format!("<caption>{n} tenant")), "{}", tenants.1);
    assert!(!tenants.1.contains("<caption>1 tenants<"), "{}", tenants.1);
    assert_eq!(s.get(&b, "/console/t/acme/users/nope").await.0, StatusCode::NOT_FOUND);
}

/// The user page shows whether a user has a password, never the value
/// (nor its hash), and no `returned: never` extension attribute, for every
/// role.
#[tokio::test]
async fn user_pages_show_whether_a_password_is_set_never_what_it_is() {
    const VAULT: &str = "urn:ietf:params:scim:schemas:extension:vault:2.0:User";
    let s = start(config()).await;
    s.account(Some("acme"), "admin@acme.test", "admin").await;
    s.account(Some("acme"), "viewer@acme.test", "viewer").await;
    let t = s.store.tenant("acme").await.unwrap().unwrap();
    s.store
        .put_extension(
            t.id,
            scimitar_store::ExtensionRecord {
                resource_type: "User".into(),
                urn: VAULT.into(),
                schema: serde_json::json!({"id": VAULT, "name": "Vault", "attributes": [
                    {"name": "pin", "type": "string", "multiValued": false, "mutability": "writeOnly", "returned": "never"},
                    {"name": "badge", "type": "string", "multiValued": false}]}),
                required: false,
            },
        )
        .await
        .unwrap();
    let token = scimitar_auth::generate().unwrap();
    s.store
        .create_token(
            t.id,
            scimitar_store::NewTokenRecord {
                id: token.id.clone(),
                label: "entra".into(),
                hint: token.hint.clone(),
                scope: "scim".into(),
                hash: token.hash,
                expires: None,
            },
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    for body in [
        serde_json::json!({"userName": "grace@acme.test", "password": "Secr3t!", VAULT: {"pin": "8642", "badge": "B-77"}}),
        serde_json::json!({"userName": "ada@acme.test"}),
    ] {
        let r = s
            .client
            .post(format!("{}/scim/acme/v2/Users", s.base))
            .bearer_auth(&token.secret)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    for email in ["admin@acme.test", "viewer@acme.test"] {
        let b = s.login(email).await;
        let (status, html) = s.get(&b, &format!("/console/t/acme/users/{}", ids[0])).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("<dt>Password</dt><dd>set</dd>"), "{email}: {html}");
        assert!(html.contains("B-77"), "{email}: other extension values are shown");
        for secret in ["Secr3t!", "argon2", "8642", ">password<", "pin"] {
            assert!(!html.contains(secret), "{email} sees {secret}: {html}");
        }
        let (_, other) = s.get(&b, &format!("/console/t/acme/users/{}", ids[1])).await;
        assert!(other.contains("<dt>Password</dt><dd>not set</dd>"), "{other}");
    }
}

/// Every page links the console's icon, and browsers that ask for
/// `/favicon.ico` anyway get it instead of a 404.
#[tokio::test]
async fn the_icon_is_served() {
    let s = start(config()).await;
    let login = s.client.get(format!("{}/login", s.base)).send().await.unwrap();
    assert!(
        login
            .text()
            .await
            .unwrap()
            .contains("<link rel=\"icon\" href=\"/assets/favicon.svg\"")
    );
    for path in ["/favicon.ico", "/assets/favicon.svg"] {
        let r = s.client.get(format!("{}{path}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.headers()["content-type"], "image/svg+xml", "{path}");
        assert!(r.text().await.unwrap().starts_with("<svg"), "{path}");
    }
}
