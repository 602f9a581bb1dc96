//! One delivery attempt against the test receiver: each way a receiver can
//! answer (or not) and what the attempt comes to.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::Duration;

use scimitar_testkit::webhook::{Behaviour, Receiver};
use scimitar_webhooks::policy::Policy;
use scimitar_webhooks::send::{Sender, Timeouts};
use scimitar_webhooks::sign::{Key, new_secret};

fn loopback_policy() -> Arc<Policy> {
    Arc::new(Policy {
        allow: vec!["127.0.0.0/8".parse().unwrap()],
    })
}

fn sender(policy: Arc<Policy>) -> Sender {
    Sender::new(
        policy,
        Timeouts {
            connect: Duration::from_secs(2),
            total: Duration::from_millis(800),
        },
    )
    .unwrap()
}

#[tokio::test]
async fn each_answer_and_what_the_attempt_comes_to() {
    let secret = new_secret().unwrap();
    let key = Key::parse(&secret).unwrap();
    let rx = Receiver::start(&[&secret]).await;
    let s = sender(loopback_policy());
    // (behaviour, delivered, status, error contains, retry-after)
    #[allow(clippy::type_complexity)]
    let table: Vec<(Behaviour, bool, Option<u16>, &str, Option<u64>)> = vec![
        (Behaviour::Ok, true, Some(200), "", None),
        (
            Behaviour::Status(500),
            false,
            Some(500),
            "HTTP 500: failing on purpose",
            None,
        ),
        (Behaviour::Status(404), false, Some(404), "HTTP 404", None),
        (
            Behaviour::TooManyRequests("7".into()),
            false,
            Some(429),
            "HTTP 429",
            Some(7),
        ),
        (
            Behaviour::Redirect("http://127.0.0.1:1/elsewhere".into()),
            false,
            Some(301),
            "redirects are not followed (to http://127.0.0.1:1/elsewhere)",
            None,
        ),
        (
            Behaviour::SlowBody(Duration::from_secs(3)),
            false,
            Some(200),
            "timed out",
            None,
        ),
        (Behaviour::NoAnswer, false, None, "timed out", None),
        (
            Behaviour::SlowBody(Duration::from_millis(50)),
            true,
            Some(200),
            "",
            None,
        ),
    ];
    for (i, (behaviour, delivered, status, error, retry_after)) in table.into_iter().enumerate() {
        rx.script([behaviour.clone()]);
        let id = format!("evt_{i}");
        let body = format!(r#"{{"id":"{id}","seq":{i}}}"#);
        let out = s
            .send(&rx.url(), &id, body.as_bytes(), std::slice::from_ref(&key))
            .await;
        assert_eq!(out.delivered, delivered, "{behaviour:?}: {out:?}");
        assert_eq!(out.status, status, "{behaviour:?}: {out:?}");
        assert!(
            out.error.as_deref().unwrap_or_default().contains(error),
            "{behaviour:?}: {out:?}"
        );
        assert_eq!(out.retry_after, retry_after.map(Duration::from_secs), "{behaviour:?}");
        let last = rx.received().pop().expect("the receiver got it");
        assert_eq!(last.id, id);
        assert_eq!(last.body["seq"], i);
    }
    assert!(rx.rejected().is_empty(), "{:?}", rx.rejected());
}

#[tokio::test]
async fn the_receiver_refuses_a_wrong_signature_and_rotation_signs_twice() {
    let old = new_secret().unwrap();
    let new = new_secret().unwrap();
    let rx = Receiver::start(&[&old]).await;
    let s = sender(loopback_policy());
    let out = s.send(&rx.url(), "evt_1", b"{}", &[Key::parse(&new).unwrap()]).await;
    assert_eq!(out.status, Some(401));
    assert_eq!(rx.rejected().len(), 1);
    assert!(rx.received().is_empty());
    // During a rotation both are sent: a receiver that knows either accepts.
    let both = [Key::parse(&new).unwrap(), Key::parse(&old).unwrap()];
    assert!(s.send(&rx.url(), "evt_2", b"{}", &both).await.delivered);
    rx.set_secrets(&[&new]);
    assert!(s.send(&rx.url(), "evt_3", b"{}", &both).await.delivered);
    assert_eq!(rx.received()[1].signature.split(' ').count(), 2);
}

#[tokio::test]
async fn private_addresses_and_plain_http_are_refused_before_any_request() {
    let secret = new_secret().unwrap();
    let key = [Key::parse(&secret).unwrap()];
    let rx = Receiver::start(&[&secret]).await;
    let strict = sender(Arc::new(Policy::default()));
    let out = strict.send(&rx.url(), "evt", b"{}", &key).await;
    assert!(!out.delivered);
    assert!(out.error.unwrap().contains("not a public address"));
    // A name that resolves to loopback is refused the same way.
    let by_name = rx.url().replace("127.0.0.1", "localhost");
    let out = strict.send(&by_name, "evt", b"{}", &key).await;
    assert!(out.error.unwrap().contains("not a public address"));
    assert!(rx.received().is_empty() && rx.rejected().is_empty());
}

#[tokio::test]
async fn a_receiver_that_goes_down_and_comes_back() {
    let secret = new_secret().unwrap();
    let key = [Key::parse(&secret).unwrap()];
    let rx = Receiver::start(&[&secret]).await;
    let s = sender(loopback_policy());
    assert!(s.send(&rx.url(), "a", b"{}", &key).await.delivered);
    rx.down();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let out = s.send(&rx.url(), "b", b"{}", &key).await;
    assert!(!out.delivered);
    assert!(out.error.unwrap().contains("connect"), "refused while down");
    rx.up().await;
    assert!(s.send(&rx.url(), "c", b"{}", &key).await.delivered);
    let ids: Vec<String> = rx.accepted().into_iter().map(|d| d.id).collect();
    assert_eq!(ids, ["a", "c"]);
}
