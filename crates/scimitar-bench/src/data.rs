//! Request bodies shaped like Microsoft Entra ID's, and a tiny RNG.

use serde_json::{Value, json};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

/// SplitMix64: fast, good enough for picking keys, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// The `userName` of the i-th populated user.
pub fn user_name(prefix: &str, i: usize) -> String {
    format!("{prefix}-user-{i:07}@example.com")
}

/// Parses a populated `userName` back to its index.
pub fn user_index(prefix: &str, user_name: &str) -> Option<usize> {
    user_name
        .strip_prefix(prefix)?
        .strip_prefix("-user-")?
        .strip_suffix("@example.com")?
        .parse()
        .ok()
}

/// A User as Entra creates it (entra-provisioning.md §1.3).
pub fn entra_user(user_name: &str, n: u64) -> Value {
    let local = user_name.split('@').next().unwrap_or(user_name);
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": local,
        "userName": user_name,
        "active": true,
        "displayName": format!("Bench User {n}"),
        "title": "Engineer",
        "preferredLanguage": "en-US",
        "emails": [{"type": "work", "value": user_name, "primary": true}],
        "name": {"givenName": "Bench", "familyName": format!("User{n}"), "formatted": format!("Bench User{n}")},
        "addresses": [{"type": "work", "streetAddress": "1 Main St", "locality": "Seattle",
                       "region": "WA", "postalCode": "98101", "country": "US", "formatted": "Bldg 4", "primary": true}],
        "phoneNumbers": [{"type": "work", "value": "+1 555 0100"}, {"type": "mobile", "value": "+1 555 0101"},
                         {"type": "fax", "value": "+1 555 0102"}],
        ENTERPRISE: {"employeeNumber": n.to_string(), "department": "R&D"},
        "meta": {"resourceType": "User"},
        "roles": []
    })
}

/// Entra's default-dialect PATCH: one capitalised `Replace` of one attribute.
pub fn patch_replace(path: &str, value: &str) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": path, "value": value}]})
}

/// Entra's member add (`op` Add, `path` members, a value list).
pub fn members_add(ids: &[&str]) -> Value {
    let values: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    json!({"schemas": [PATCH_OP], "Operations": [{"op": "Add", "path": "members", "value": values}]})
}

/// Entra's (non-RFC) member removal: `path` members with a value list.
pub fn members_remove(ids: &[&str]) -> Value {
    let values: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    json!({"schemas": [PATCH_OP], "Operations": [{"op": "Remove", "path": "members", "value": values}]})
}

/// A `userName eq` filter as a query string value, percent-encoded.
pub fn eq_filter(attr: &str, value: &str) -> String {
    let mut out = format!("{attr}%20eq%20%22");
    out.push_str(&encode(value));
    out.push_str("%22");
    out
}

/// Percent-encodes everything but unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(user_index("bench", &user_name("bench", 42)), Some(42));
        assert_eq!(user_index("bench", "other@example.com"), None);
    }

    #[test]
    fn filter_is_encoded() {
        assert_eq!(eq_filter("userName", "a@b.c"), "userName%20eq%20%22a%40b.c%22");
    }

    #[test]
    fn rng_stays_below() {
        let mut r = Rng::new(1);
        assert!((0..1000).all(|_| r.below(7) < 7));
    }
}
