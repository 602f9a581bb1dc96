//! Sessions, CSRF and sign-in throttling (passwords are `scimitar_auth::password`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use scimitar_store::ConsoleSession;
use sha2::{Digest, Sha256};

use crate::Console;

/// 32 random bytes as URL-safe base64 (for cookie values and CSRF tokens).
pub fn random_token() -> Result<String, scimitar_auth::TokenError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(scimitar_auth::random_key()?))
}

pub fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Constant-time string equality (CSRF tokens).
pub fn same(a: &str, b: &str) -> bool {
    scimitar_auth::hashes_equal_slices(a.as_bytes(), b.as_bytes())
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure unless
/// configured off (plain-http development only).
pub fn set_cookie(console: &Console, name: &str, value: &str, max_age: Option<u64>) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if console.config.secure_cookies {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

/// The client's address, from the connection (proxies are not trusted here).
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(a)| a.ip()),
        ))
    }
}

/// A signed-in request. Rejected with a redirect to the sign-in page.
pub struct Authed {
    pub session: ConsoleSession,
    pub hash: [u8; 32],
}

impl Authed {
    pub fn role(&self) -> &str {
        &self.session.admin.role
    }
    pub fn is_operator(&self) -> bool {
        self.role() == "operator"
    }
    /// Admins and operators may change things; viewers only look.
    pub fn can_write(&self) -> bool {
        matches!(self.role(), "admin" | "operator")
    }
    pub fn check_csrf(&self, given: &str) -> bool {
        same(given, &self.session.csrf)
    }
}

impl FromRequestParts<Arc<Console>> for Authed {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, console: &Arc<Console>) -> Result<Self, Self::Rejection> {
        let to_login = |expired: bool| {
            let target = if expired { "/login?expired=1" } else { "/login" };
            let mut r = Redirect::to(target).into_response();
            if expired && let Ok(v) = set_cookie(console, console.session_cookie(), "", Some(0)).parse() {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        };
        let Some(value) = cookie(&parts.headers, console.session_cookie()) else {
            return Err(to_login(false));
        };
        let hash = sha256(&value);
        let session = match console.app.store.session(&hash).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(to_login(true)),
            Err(e) => {
                tracing::error!(error = %e, "loading a console session");
                return Err(crate::error_page(500, "The console could not read its database."));
            }
        };
        let now = scimitar_store::now_utc();
        let idle_limit = crate::time_ago(console.config.idle_timeout);
        let absolute_limit = crate::time_ago(console.config.absolute_timeout);
        if session.last_seen < idle_limit || session.created < absolute_limit {
            let _ = console.app.store.delete_session(&hash).await;
            return Err(to_login(true));
        }
        // Record activity coarsely: one write per quarter of the idle timeout at most.
        if session.last_seen < crate::time_ago(console.config.idle_timeout / 4) {
            let _ = console.app.store.touch_session(&hash, &now).await;
        }
        Ok(Authed { session, hash })
    }
}

/// Keys the sign-in throttle remembers at most (about 10 MB).
pub const THROTTLE_KEYS_MAX: usize = 100_000;

/// Failed sign-ins counted per email and per client address in fixed
/// windows; a key over its limit is refused until its window ends. Kept in
/// memory: a restart forgets it, which only shortens a lockout.
#[derive(Default)]
pub struct Throttle {
    entries: HashMap<String, (Instant, u32)>,
}

impl Throttle {
    /// Seconds until `key` may try again, if it is locked out.
    pub fn locked(&mut self, key: &str, limit: u32, window: Duration) -> Option<u64> {
        let now = Instant::now();
        match self.entries.get(key) {
            Some((start, n)) if now.duration_since(*start) < window && *n >= limit => {
                Some((window - now.duration_since(*start)).as_secs().max(1))
            }
            Some((start, _)) if now.duration_since(*start) >= window => {
                self.entries.remove(key);
                None
            }
            _ => None,
        }
    }

    pub fn fail(&mut self, key: &str, window: Duration) {
        let now = Instant::now();
        if self.entries.len() >= THROTTLE_KEYS_MAX && !self.entries.contains_key(key) {
            self.make_room(now, window);
        }
        let e = self.entries.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(e.0) >= window {
            *e = (now, 0);
        }
        e.1 += 1;
    }

    /// Bounded memory: a full map forgets finished windows and, if still
    /// full, the tenth of its keys with the fewest failures (oldest first),
    /// so that a spray of new keys cannot lift a lockout. A tenth at a time
    /// keeps the cost per failure constant.
    fn make_room(&mut self, now: Instant, window: Duration) {
        self.entries.retain(|_, (start, _)| now.duration_since(*start) < window);
        if self.entries.len() < THROTTLE_KEYS_MAX {
            return;
        }
        let mut order: Vec<(u32, Instant)> = self.entries.values().map(|(start, n)| (*n, *start)).collect();
        let cut = order.len() / 10;
        let (_, threshold, _) = order.select_nth_unstable(cut);
        let threshold = *threshold;
        self.entries.retain(|_, (start, n)| (*n, *start) > threshold);
    }

    pub fn clear(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Anyone can make the sign-in form fail with a new email each time:
    /// the map stays within its capacity, even when every key is inside
    /// its window (issue 12, item 3).
    #[test]
    fn the_throttle_map_is_bounded() {
        let mut t = Throttle::default();
        let window = Duration::from_secs(15 * 60);
        for i in 0..(THROTTLE_KEYS_MAX + THROTTLE_KEYS_MAX / 2) {
            t.fail(&format!("email:{i}@example.com"), window);
        }
        assert!(t.entries.len() <= THROTTLE_KEYS_MAX, "{} keys", t.entries.len());
        // A key locked out stays locked out while newer keys come and go.
        let mut t = Throttle::default();
        for _ in 0..5 {
            t.fail("email:victim@example.com", window);
        }
        for i in 0..(2 * THROTTLE_KEYS_MAX) {
            t.fail(&format!("email:{i}@example.com"), window);
        }
        assert!(t.locked("email:victim@example.com", 5, window).is_some());
    }
}
