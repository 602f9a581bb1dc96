//! RFC 9865 cursors: opaque, tamper-evident (HMAC-SHA-256 with a key shared
//! by every node through the store), bound to the tenant, the resource type
//! and the filter they were issued for.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use scimitar_protocol::ScimError;
use scimitar_store::{CursorPos, Kind, TenantId};

const TAG_LEN: usize = 16;

fn invalid() -> ScimError {
    ScimError::bad_request(
        scimitar_protocol::ScimType::InvalidCursor,
        "the cursor is invalid: it was not issued by this server for this query",
    )
}

fn binding(tenant: TenantId, kind: Kind, filter: &str) -> String {
    format!("{tenant}|{}|{filter}", kind.as_str())
}

fn mac(key: &[u8; 32], data: &[u8]) -> Vec<u8> {
    scimitar_auth::hmac_sha256(key, data)[..TAG_LEN].to_vec()
}

pub fn encode(key: &[u8; 32], tenant: TenantId, kind: Kind, filter: &str, pos: CursorPos) -> String {
    let payload = match pos {
        CursorPos::After(s) => format!("a{s}"),
        CursorPos::Before(s) => format!("b{s}"),
    };
    let tag = mac(key, format!("{payload}|{}", binding(tenant, kind, filter)).as_bytes());
    let mut bytes = payload.into_bytes();
    bytes.push(b'|');
    bytes.extend(tag);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn decode(
    key: &[u8; 32],
    tenant: TenantId,
    kind: Kind,
    filter: &str,
    cursor: &str,
) -> Result<CursorPos, ScimError> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| invalid())?;
    let mut parts = bytes.splitn(2, |b| *b == b'|');
    let (Some(payload), Some(tag)) = (parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let payload = std::str::from_utf8(payload).map_err(|_| invalid())?;
    let expected = mac(key, format!("{payload}|{}", binding(tenant, kind, filter)).as_bytes());
    if !scimitar_auth::hashes_equal_slices(&expected, tag) {
        return Err(invalid());
    }
    let (dir, num) = payload.split_at_checked(1).ok_or_else(invalid)?;
    let seq: i64 = num.parse().map_err(|_| invalid())?;
    match dir {
        "a" => Ok(CursorPos::After(seq)),
        "b" => Ok(CursorPos::Before(seq)),
        _ => Err(invalid()),
    }
}
