//! Secrets the server must use again — the Secret Token of a provisioning
//! job's target, an LDAP bind password — are stored sealed: encrypted and
//! authenticated (ChaCha20-Poly1305) under a key derived from the server's
//! key file, so a database dump alone does not reveal them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

const PREFIX: &str = "sealed:v1:";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("a sealed secret could not be opened (sealed under another server key, or damaged)")]
    Open,
}

fn cipher() -> ChaCha20Poly1305 {
    let key = crate::hmac_sha256(&crate::server_key(), b"scimitar sealed secrets v1");
    ChaCha20Poly1305::new(Key::from_slice(&key))
}

/// Whether `text` is a sealed secret.
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(PREFIX)
}

/// Seals `secret`: `sealed:v1:` + base64url(nonce ‖ ciphertext).
pub fn seal(secret: &str) -> Result<String, SealError> {
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
    let ct = cipher()
        .encrypt(Nonce::from_slice(&nonce), secret.as_bytes())
        .map_err(|_| SealError::Random)?;
    let mut out = nonce.to_vec();
    out.extend(ct);
    Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
}

/// Opens a sealed secret.
pub fn open(sealed: &str) -> Result<String, SealError> {
    let body = sealed.strip_prefix(PREFIX).ok_or(SealError::Open)?;
    let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| SealError::Open)?;
    if bytes.len() < 12 {
        return Err(SealError::Open);
    }
    let (nonce, ct) = bytes.split_at(12);
    let plain = cipher()
        .decrypt(Nonce::from_slice(nonce), ct)
        .map_err(|_| SealError::Open)?;
    String::from_utf8(plain).map_err(|_| SealError::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_and_do_not_show_the_secret() {
        let s = seal("s3cret token").unwrap();
        assert!(is_sealed(&s));
        assert!(!s.contains("s3cret"));
        assert_ne!(s, seal("s3cret token").unwrap(), "a fresh nonce each time");
        assert_eq!(open(&s).unwrap(), "s3cret token");
        let mut damaged = s.clone();
        damaged.pop();
        damaged.push(if s.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(open(&damaged), Err(SealError::Open));
        assert_eq!(open("plain"), Err(SealError::Open));
    }
}
