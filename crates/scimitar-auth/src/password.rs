//! Passwords: argon2id PHC strings. Console accounts use them, and so do
//! SCIM `password` values, with the same parameters.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Hashes a password with argon2id (default parameters: 19 MiB, 2 passes).
pub fn hash(password: &str) -> Result<String, String> {
    let salt = crate::random_key().map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), salt.get(..16).unwrap_or(&salt))
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `phc`.
pub fn verify(password: &str, phc: &str) -> bool {
    Argon2::default().verify_password(password.as_bytes(), phc).is_ok()
}

/// Whether `s` is an argon2 PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`,
/// or the argon2i and argon2d variants) with valid parameters, a salt and
/// a hash: what a SCIM client may send as an already hashed `password`,
/// stored as given. Any other text is a cleartext password.
pub fn is_phc(s: &str) -> bool {
    if !s.starts_with("$argon2") {
        return false;
    }
    let Ok(phc) = argon2::PasswordHash::new(s) else {
        return false;
    };
    let known = [argon2::ARGON2ID_IDENT, argon2::ARGON2I_IDENT, argon2::ARGON2D_IDENT].contains(&phc.algorithm);
    known && phc.salt.is_some() && phc.hash.is_some() && argon2::Params::try_from(&phc).is_ok()
}

/// A hash that matches no password, verified when an account is unknown so
/// that a failed sign-in takes as long whether or not the account exists.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash("not a password of anyone").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify("correct horse battery", &a));
        assert!(!verify("Correct horse battery", &a));
        assert!(!verify("correct horse battery", dummy_hash()));
        assert!(!verify("x", "not a phc string"));
    }

    #[test]
    fn phc_strings_are_told_from_cleartext() {
        let ours = hash("Secr3t!").unwrap();
        let cases: &[(&str, bool)] = &[
            (&ours, true),
            (
                "$argon2i$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$ZHVtbXloYXNodmFsdWVoZXJl",
                true,
            ),
            (
                "$argon2d$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$ZHVtbXloYXNodmFsdWVoZXJl",
                true,
            ),
            ("Secr3t!", false),
            ("$argon2id$", false),
            ("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ", false),
            ("$argon2id$v=19$m=1,t=2,p=1$c29tZXNhbHQ$ZHVtbXloYXNodmFsdWVoZXJl", false),
            (
                "$argon2x$v=19$m=4096,t=3,p=1$c29tZXNhbHQ$ZHVtbXloYXNodmFsdWVoZXJl",
                false,
            ),
            ("$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234", false),
            ("", false),
        ];
        for (s, want) in cases {
            assert_eq!(is_phc(s), *want, "{s}");
        }
    }
}
