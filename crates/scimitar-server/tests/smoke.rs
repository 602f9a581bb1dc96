#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use scimitar_testkit::TestServer;

#[tokio::test]
async fn test_connection_probe_answers_an_empty_list() {
    let srv = TestServer::start().await;
    let t = srv.tenant("acme").await;
    let r = t
        .get("/Users?filter=userName+eq+%227a3c1f0e-2b44-4c1e-9a0d-5a8e3c2f9b11%22")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["totalResults"], 0);
    assert_eq!(r.body["Resources"], serde_json::json!([]));
}
