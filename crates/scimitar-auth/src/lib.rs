//! Secret Tokens, and (in [`password`]) password hashing.
//!
//! Format (after GitHub's): `scim_` + 43 base62 characters of 256 random
//! bits from the OS + 6 base62 characters of a CRC32 of what precedes
//! them. The prefix lets secret scanners recognise a leaked token; the
//! checksum rejects typos and junk before any database access. Only an
//! HMAC-SHA-256 of a token, keyed with the server's key (a file outside the
//! database), is stored: a database dump alone cannot confirm a guessed or
//! leaked token. A token has 256 bits of entropy, so a slow password hash
//! would add cost and nothing else.

pub mod password;
pub mod seal;

use std::sync::OnceLock;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The server key for token hashes, set once at start-up (`set_key`). Tests
/// that never set it hash with an all-zero key, consistently.
static KEY: OnceLock<[u8; 32]> = OnceLock::new();

/// Sets the process's token-hashing key; the first call wins.
pub fn set_key(key: [u8; 32]) -> bool {
    KEY.set(key).is_ok()
}

pub const PREFIX: &str = "scim_";
const BODY_LEN: usize = 43;
const CHECK_LEN: usize = 6;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A freshly generated token. `secret` is shown once and never stored.
pub struct NewToken {
    pub id: String,
    pub secret: String,
    pub hint: String,
    pub hash: [u8; 32],
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("id", &self.id)
            .field("hint", &self.hint)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub enum TokenError {
    Random,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the operating system's random number generator failed")
    }
}
impl std::error::Error for TokenError {}

fn base62(mut bytes: Vec<u8>, len: usize) -> String {
    // Repeated division of a big-endian number by 62.
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        let mut rem: u32 = 0;
        for b in bytes.iter_mut() {
            let acc = (rem << 8) | u32::from(*b);
            *b = (acc / 62) as u8;
            rem = acc % 62;
        }
        // `rem < 62`, so the index is always in range.
        out.push(ALPHABET.get(rem as usize).copied().unwrap_or(b'0'));
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn checksum(s: &str) -> String {
    base62(crc32fast::hash(s.as_bytes()).to_be_bytes().to_vec(), CHECK_LEN)
}

fn random_bytes<const N: usize>() -> Result<[u8; N], TokenError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|_| TokenError::Random)?;
    Ok(buf)
}

/// 32 random bytes from the OS, for server-side keys.
pub fn random_key() -> Result<[u8; 32], TokenError> {
    random_bytes::<32>()
}

/// Generates a new token with a short public id.
pub fn generate() -> Result<NewToken, TokenError> {
    let body = base62(random_bytes::<32>()?.to_vec(), BODY_LEN);
    let head = format!("{PREFIX}{body}");
    let secret = format!("{head}{}", checksum(&head));
    let id = format!("tok_{}", base62(random_bytes::<10>()?.to_vec(), 12));
    let hint = format!("{}…", &secret[..PREFIX.len() + 4]);
    Ok(NewToken {
        id,
        hash: hash(&secret),
        secret,
        hint,
    })
}

/// Whether `token` has the shape and checksum of a Scimitar token.
pub fn well_formed(token: &str) -> bool {
    let Some(rest) = token.strip_prefix(PREFIX) else {
        return false;
    };
    if rest.len() != BODY_LEN + CHECK_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (head, check) = token.split_at(PREFIX.len() + BODY_LEN);
    checksum(head).as_bytes().ct_eq(check.as_bytes()).into()
}

pub fn hash(token: &str) -> [u8; 32] {
    hmac_sha256(&server_key(), token.as_bytes())
}

/// The server key (all zero in tests that never set one).
pub(crate) fn server_key() -> [u8; 32] {
    KEY.get().copied().unwrap_or([0u8; 32])
}

/// HMAC-SHA-256 of `data` under `key` (tokens here, signed cursors in the server).
pub fn hmac_sha256(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable_mac());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn unreachable_mac() -> Hmac<Sha256> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail.
    <Hmac<Sha256> as KeyInit>::new_from_slice(&[0u8; 32]).unwrap_or_else(|_| std::process::abort())
}

/// Constant-time comparison of two byte strings (false if lengths differ).
pub fn hashes_equal_slices(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Constant-time comparison of two hashes.
pub fn hashes_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert!(well_formed(&a.secret), "{}", a.secret);
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), PREFIX.len() + BODY_LEN + CHECK_LEN);
        assert!(a.secret.starts_with("scim_"));
        assert_eq!(hash(&a.secret), a.hash);
        assert!(!format!("{a:?}").contains(&a.secret), "Debug must not print the secret");
    }

    #[test]
    fn typos_fail_the_checksum() {
        let t = generate().unwrap().secret;
        let mut chars: Vec<char> = t.chars().collect();
        let i = 10;
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert!(!well_formed(&typo));
        assert!(!well_formed(&t[..t.len() - 1]));
        assert!(!well_formed("Bearer xyz"));
        assert!(!well_formed(""));
    }

    proptest::proptest! {
        /// CRC32 detects every burst error of up to 32 bits, so any single
        /// changed character, in the body or the checksum, is caught.
        #[test]
        fn any_single_character_change_is_rejected(pos in 5usize..54, c in "[0-9A-Za-z]") {
            let t = generate().unwrap().secret;
            let mut chars: Vec<char> = t.chars().collect();
            let new = c.chars().next().unwrap();
            proptest::prop_assume!(chars[pos] != new);
            chars[pos] = new;
            let changed: String = chars.into_iter().collect();
            proptest::prop_assert!(!well_formed(&changed));
        }
    }
}
