//! An endpoint's answers are input: one that echoes the bearer token and
//! answers with markup and terminal escape sequences must not get the
//! token into any report, script into the HTML page, nor escape
//! sequences onto the terminal.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use scimitar_validate::Options;
use scimitar_validate::report::{self, Status};

const TOKEN: &str = "scim_s3cr3t-T0KEN-that-must-not-leak";

/// Lists are empty SCIM ListResponses (so that the preflight passes);
/// everything else is a 500 whose plain-text body carries a script, an
/// escape sequence that clears the screen, and the Authorization header.
async fn hostile(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method == Method::GET && uri.path() == "/Users" {
        return (
            [("content-type", "application/scim+json")],
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"Resources":[]}"#,
        )
            .into_response();
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [("content-type", "text/plain")],
        format!("<script>alert('owned')</script>\u{1b}[2J\u{1b}]0;title\u{7} rejected {auth}"),
    )
        .into_response()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reports_are_safe_from_what_the_endpoint_answers() {
    let app = axum::Router::new().fallback(hostile);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mut opts = Options::new(&format!("http://{addr}"), TOKEN);
    opts.only = vec!["create-user".into(), "schemas-discoverable".into()];
    let r = scimitar_validate::validate(&opts, std::future::pending())
        .await
        .unwrap();
    let failed: Vec<&str> = r
        .tests
        .iter()
        .filter(|t| t.status == Status::Fail)
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(failed, ["schemas-discoverable", "create-user"]);
    let shown = r.tests[1].failure.as_ref().unwrap().exchange.as_ref().unwrap();
    let body = shown.response_body.as_deref().unwrap();
    assert!(body.contains("rejected Bearer [the token]"), "{body}");

    let json = serde_json::to_string(&r.to_json()).unwrap();
    let junit = report::junit(&r);
    let html = report::html(&r);
    let plain = report::terminal(&r, false);
    let coloured = report::terminal(&r, true);
    for (form, text) in [
        ("json", &json),
        ("junit", &junit),
        ("html", &html),
        ("terminal", &plain),
        ("coloured terminal", &coloured),
    ] {
        assert!(!text.contains(TOKEN), "{form}: the token leaks:\n{text}");
    }
    // The HTML page shows the answer as text: no element, no script.
    assert!(
        html.contains("&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script"), "{html}");
    assert!(!junit.contains("<script"), "{junit}");
    // No escape sequence of the endpoint reaches the terminal; the
    // coloured table's own ones are the only ones there.
    assert!(!plain.contains('\u{1b}') && !plain.contains('\u{7}'), "{plain:?}");
    assert!(plain.contains("<script>alert('owned')</script>\u{FFFD}[2J"), "{plain}");
    assert!(!coloured.contains("\u{1b}[2J") && !coloured.contains("\u{1b}]0;"));
}
