//! Standard Webhooks signatures (<https://www.standardwebhooks.com>).
//!
//! A delivery carries three headers: `webhook-id` (the event's id, the same
//! on every attempt, so that a receiver can drop duplicates),
//! `webhook-timestamp` (seconds since the Unix epoch, of this attempt) and
//! `webhook-signature`: `v1,` + base64(HMAC-SHA256(key, "id.timestamp.body")),
//! several of them separated by spaces while a secret is being rotated. The
//! secret is `whsec_` + base64 of the key (24 to 64 bytes; Scimitar makes 32).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The prefix of a webhook secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// How far a delivery's timestamp may be from the receiver's clock (either
/// way) before [`verify`] refuses it: the Standard Webhooks default.
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;

/// The most signatures [`verify`] looks at in one header.
const MAX_SIGNATURES: usize = 16;

/// A webhook signing key. Its `Debug` output does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("a webhook secret is whsec_ followed by base64 of 24 to 64 bytes")]
    Malformed,
    #[error("the operating system's random number generator failed")]
    Random,
}

impl Key {
    /// Reads a secret: `whsec_` + base64 (the prefix may be left out, as the
    /// Standard Webhooks libraries accept).
    pub fn parse(secret: &str) -> Result<Key, SecretError> {
        let body = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
        let bytes = STANDARD.decode(body.trim()).map_err(|_| SecretError::Malformed)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(SecretError::Malformed);
        }
        Ok(Key(bytes))
    }

    /// The secret's text, `whsec_…`.
    pub fn secret(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The signature of one delivery, `v1,<base64>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body)))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        // HMAC takes a key of any length: this cannot fail.
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) else {
            return Vec::new();
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

/// A new secret: `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> Result<String, SecretError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| SecretError::Random)?;
    Ok(Key(bytes.to_vec()).secret())
}

/// The `webhook-signature` header for a delivery signed with every key of
/// `keys` (the current secret first; the previous one during a rotation),
/// separated by spaces.
pub fn signature_header(keys: &[Key], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|k| k.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a delivery was refused by [`verify`].
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("webhook-timestamp is not a number of seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is too far from now (replayed or delayed delivery)")]
    Stale,
    #[error("no signature of webhook-signature matches")]
    NoMatch,
}

/// The headers of one delivery, as received.
#[derive(Debug, Clone, Copy)]
pub struct Headers<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Verifies a delivery as a receiver does: the timestamp within `tolerance`
/// seconds of `now`, and at least one `v1,` signature of the header made by
/// one of `keys` over this id, timestamp and body (compared in constant
/// time). Signatures of other versions are ignored.
pub fn verify(keys: &[Key], headers: Headers<'_>, body: &[u8], now: i64, tolerance: i64) -> Result<(), VerifyError> {
    let id = headers.id.ok_or(VerifyError::Missing("webhook-id"))?;
    let ts = headers.timestamp.ok_or(VerifyError::Missing("webhook-timestamp"))?;
    let sigs = headers.signature.ok_or(VerifyError::Missing("webhook-signature"))?;
    let ts: i64 = ts.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    if now.abs_diff(ts) > tolerance.unsigned_abs() {
        return Err(VerifyError::Stale);
    }
    let expected: Vec<Vec<u8>> = keys.iter().map(|k| k.mac(id, ts, body)).collect();
    for sig in sigs.split(' ').filter(|s| !s.is_empty()).take(MAX_SIGNATURES) {
        let Some(b64) = sig.strip_prefix("v1,") else {
            continue;
        };
        let Ok(got) = STANDARD.decode(b64) else {
            continue;
        };
        if expected.iter().any(|e| bool::from(e.as_slice().ct_eq(got.as_slice()))) {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatch)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    // The Standard Webhooks specification's published test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1_614_265_330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> Headers<'a> {
        Headers {
            id: Some(id),
            timestamp: Some(ts),
            signature: Some(sig),
        }
    }

    #[test]
    fn the_standard_webhooks_test_vector() {
        let key = Key::parse(SECRET).unwrap();
        assert_eq!(key.sign(ID, TS, BODY), SIGNATURE);
        assert_eq!(signature_header(std::slice::from_ref(&key), ID, TS, BODY), SIGNATURE);
        let ts = TS.to_string();
        assert_eq!(verify(&[key], headers(ID, &ts, SIGNATURE), BODY, TS, 300), Ok(()));
        // The prefix may be left out.
        assert_eq!(
            Key::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .unwrap()
                .sign(ID, TS, BODY),
            SIGNATURE
        );
    }

    #[test]
    fn tampered_deliveries_are_refused() {
        let key = Key::parse(SECRET).unwrap();
        let keys = [key];
        let ts = TS.to_string();
        let other = Key::parse(&new_secret().unwrap()).unwrap();
        let wrong_key_sig = other.sign(ID, TS, BODY);
        let both = format!("{wrong_key_sig} {SIGNATURE}");
        #[allow(clippy::type_complexity)]
        let table: Vec<(&str, Headers<'_>, &[u8], i64, Result<(), VerifyError>)> = vec![
            ("as sent", headers(ID, &ts, SIGNATURE), BODY, TS, Ok(())),
            (
                "body changed",
                headers(ID, &ts, SIGNATURE),
                br#"{"test": 2432232315}"#,
                TS,
                Err(VerifyError::NoMatch),
            ),
            (
                "id changed",
                headers("msg_other", &ts, SIGNATURE),
                BODY,
                TS,
                Err(VerifyError::NoMatch),
            ),
            (
                "timestamp changed",
                headers(ID, "1614265331", SIGNATURE),
                BODY,
                TS,
                Err(VerifyError::NoMatch),
            ),
            (
                "other key",
                headers(ID, &ts, &wrong_key_sig),
                BODY,
                TS,
                Err(VerifyError::NoMatch),
            ),
            (
                "v2 only",
                headers(ID, &ts, "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
                BODY,
                TS,
                Err(VerifyError::NoMatch),
            ),
            (
                "not base64",
                headers(ID, &ts, "v1,!!!"),
                BODY,
                TS,
                Err(VerifyError::NoMatch),
            ),
            (
                "truncated",
                headers(ID, &ts, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1O"),
                BODY,
                TS,
                Err(VerifyError::NoMatch),
            ),
            ("empty", headers(ID, &ts, ""), BODY, TS, Err(VerifyError::NoMatch)),
            ("one of several", headers(ID, &ts, &both), BODY, TS, Ok(())),
            (
                "too old",
                headers(ID, &ts, SIGNATURE),
                BODY,
                TS + 301,
                Err(VerifyError::Stale),
            ),
            (
                "too new",
                headers(ID, &ts, SIGNATURE),
                BODY,
                TS - 301,
                Err(VerifyError::Stale),
            ),
            ("at the edge", headers(ID, &ts, SIGNATURE), BODY, TS + 300, Ok(())),
            (
                "bad timestamp",
                headers(ID, "soon", SIGNATURE),
                BODY,
                TS,
                Err(VerifyError::BadTimestamp),
            ),
            (
                "no id",
                Headers {
                    id: None,
                    ..headers(ID, &ts, SIGNATURE)
                },
                BODY,
                TS,
                Err(VerifyError::Missing("webhook-id")),
            ),
            (
                "no signature",
                Headers {
                    signature: None,
                    ..headers(ID, &ts, SIGNATURE)
                },
                BODY,
                TS,
                Err(VerifyError::Missing("webhook-signature")),
            ),
        ];
        for (name, h, body, now, want) in table {
            assert_eq!(verify(&keys, h, body, now, 300), want, "{name}");
        }
    }

    #[test]
    fn rotation_signs_with_both_keys_and_either_verifies() {
        let old = Key::parse(&new_secret().unwrap()).unwrap();
        let new = Key::parse(&new_secret().unwrap()).unwrap();
        let header = signature_header(&[new.clone(), old.clone()], "evt", 10, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        for keys in [vec![old.clone()], vec![new.clone()]] {
            assert_eq!(verify(&keys, headers("evt", "10", &header), b"{}", 10, 300), Ok(()));
        }
    }

    #[test]
    fn secrets_are_well_formed_and_checked() {
        let s = new_secret().unwrap();
        assert!(s.starts_with("whsec_"));
        let k = Key::parse(&s).unwrap();
        assert_eq!(k.secret(), s);
        assert_eq!(format!("{k:?}"), "Key(..)");
        assert_ne!(s, new_secret().unwrap());
        for bad in ["whsec_", "whsec_not base64!", "whsec_c2hvcnQ=", ""] {
            assert_eq!(Key::parse(bad), Err(SecretError::Malformed), "{bad}");
        }
    }
}
