//! Where webhooks may be sent (no SSRF into the operator's network).
//!
//! A tenant's administrator chooses an endpoint's URL; without a limit the
//! server would post to its own loopback services, the cloud's metadata
//! endpoint (169.254.169.254) or the private network. So:
//!
//! - the URL is `https://`, or `http://` to a host whose every address is a
//!   loopback address that the operator allows (tests, a receiver on the
//!   same machine);
//! - every address the host resolves to must be public — not loopback,
//!   private, link-local, shared (CGNAT), unique-local, multicast,
//!   unspecified, documentation, or one of those written as IPv4-mapped
//!   IPv6 — unless the operator allows its range
//!   (`--webhook-allow-private CIDR`, repeatable);
//! - the connection goes to an address that was checked: the delivery
//!   client resolves names through [`CheckedResolver`], which drops the
//!   addresses the policy refuses, so a name that resolved to a public
//!   address when the URL was stored cannot resolve to a private one when
//!   the connection is made (DNS rebinding);
//! - no redirect is followed (a 3xx is a failed attempt, see `send.rs`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

pub use scimitar_egress::{Cidr, is_loopback, is_public};

/// Why a URL is refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("'{0}' is not an absolute http(s) URL")]
    NotUrl(String),
    #[error(
        "a webhook URL must be https:// (plain http is allowed only to a loopback address the server's operator allows)"
    )]
    NotHttps,
    #[error("a webhook URL may not carry a user name or password")]
    Credentials,
    #[error("cannot resolve '{0}'")]
    Unresolved(String),
    #[error(
        "'{host}' is {ip}, not a public address: webhooks go to public addresses only (the server's operator can allow a range with --webhook-allow-private)"
    )]
    Private { host: String, ip: IpAddr },
}

/// Which addresses webhooks may be sent to.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Ranges the operator allows besides public addresses.
    pub allow: Vec<Cidr>,
}

/// A URL that passed the policy, with the addresses its host resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub url: reqwest::Url,
    pub addrs: Vec<SocketAddr>,
}

impl Policy {
    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.allow.iter().any(|c| c.contains(ip))
    }

    /// The checks that need no name resolution: an absolute `http(s)` URL
    /// without credentials.
    pub fn parse(&self, url: &str) -> Result<reqwest::Url, PolicyError> {
        let parsed = reqwest::Url::parse(url.trim()).map_err(|_| PolicyError::NotUrl(url.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(PolicyError::NotUrl(url.to_string()));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(PolicyError::Credentials);
        }
        Ok(parsed)
    }

    /// Checks the addresses `host` resolved to (`addrs`), for a URL of
    /// `scheme`: every one permitted, and for `http` every one loopback.
    pub fn check_addrs(&self, scheme: &str, host: &str, addrs: &[SocketAddr]) -> Result<(), PolicyError> {
        if addrs.is_empty() {
            return Err(PolicyError::Unresolved(host.to_string()));
        }
        if let Some(a) = addrs.iter().find(|a| !self.permits(a.ip())) {
            return Err(PolicyError::Private {
                host: host.to_string(),
                ip: a.ip(),
            });
        }
        if scheme != "https" && !addrs.iter().all(|a| is_loopback(a.ip())) {
            return Err(PolicyError::NotHttps);
        }
        Ok(())
    }

    /// Checks a URL: its form, then every address its host resolves to.
    pub async fn check(&self, url: &str) -> Result<Checked, PolicyError> {
        let parsed = self.parse(url)?;
        let host = parsed
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let addrs = resolve(&host, port).await?;
        self.check_addrs(parsed.scheme(), &host, &addrs)?;
        Ok(Checked { url: parsed, addrs })
    }
}

async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, PolicyError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if host == "localhost" || host.ends_with(".localhost") {
        return Ok(vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)]);
    }
    Ok(tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| PolicyError::Unresolved(host.to_string()))?
        .collect())
}

/// A resolver for the delivery client: the addresses the policy permits
/// only, so the address connected to is one that was checked.
#[derive(Debug, Clone)]
pub struct CheckedResolver(pub Arc<Policy>);

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all = resolve(&host, 0).await.map_err(|e| e.to_string())?;
            let permitted: Vec<SocketAddr> = all.into_iter().filter(|a| policy.permits(a.ip())).collect();
            if permitted.is_empty() {
                return Err(format!("'{host}' resolves to no address webhooks may be sent to").into());
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| SocketAddr::new(a.parse().unwrap(), 443)).collect()
    }

    #[test]
    fn urls_and_their_addresses() {
        let strict = Policy::default();
        let loopback = Policy {
            allow: vec!["127.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()],
        };
        let private = Policy {
            allow: vec!["10.0.0.0/8".parse().unwrap()],
        };
        // (policy, scheme, resolved addresses, accepted)
        #[allow(clippy::type_complexity)]
        let table: Vec<(&Policy, &str, Vec<SocketAddr>, Result<(), &str>)> = vec![
            (&strict, "https", addrs(&["8.8.8.8"]), Ok(())),
            (&strict, "http", addrs(&["8.8.8.8"]), Err("https")),
            (&strict, "https", addrs(&["127.0.0.1"]), Err("not a public address")),
            (&strict, "http", addrs(&["127.0.0.1"]), Err("not a public address")),
            (&strict, "https", addrs(&["8.8.8.8", "10.0.0.1"]), Err("10.0.0.1")),
            (
                &strict,
                "https",
                addrs(&["169.254.169.254"]),
                Err("not a public address"),
            ),
            (
                &strict,
                "https",
                addrs(&["::ffff:192.168.0.1"]),
                Err("not a public address"),
            ),
            (&strict, "https", addrs(&["100.64.1.1"]), Err("not a public address")),
            (&strict, "https", addrs(&["fd00::1"]), Err("not a public address")),
            (&strict, "https", vec![], Err("cannot resolve")),
            (&loopback, "http", addrs(&["127.0.0.1"]), Ok(())),
            (&loopback, "http", addrs(&["::1"]), Ok(())),
            (&loopback, "https", addrs(&["127.0.0.1"]), Ok(())),
            (&loopback, "http", addrs(&["10.0.0.1"]), Err("not a public address")),
            (&private, "https", addrs(&["10.1.1.1"]), Ok(())),
            (&private, "http", addrs(&["10.1.1.1"]), Err("https")),
            (&private, "https", addrs(&["192.168.1.1"]), Err("not a public address")),
        ];
        for (i, (policy, scheme, a, want)) in table.into_iter().enumerate() {
            let got = policy.check_addrs(scheme, "host.example", &a);
            match (got, want) {
                (Ok(()), Ok(())) => {}
                (Err(e), Err(needle)) => assert!(e.to_string().contains(needle), "row {i}: {e}"),
                (got, want) => panic!("row {i}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[tokio::test]
    async fn urls_are_checked_by_form_and_by_what_they_resolve_to() {
        let strict = Policy::default();
        let loopback = Policy {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
        };
        let table: Vec<(&Policy, &str, Result<(), &str>)> = vec![
            (&strict, "not a url", Err("not an absolute")),
            (&strict, "ftp://example.com/x", Err("not an absolute")),
            (&strict, "https://user:pw@8.8.8.8/x", Err("user name")),
            (&strict, "https://8.8.8.8/hook", Ok(())),
            (&strict, "http://127.0.0.1:8080/hook", Err("not a public address")),
            (&strict, "https://localhost/hook", Err("not a public address")),
            (&strict, "https://[::1]/hook", Err("not a public address")),
            (&strict, "https://[::ffff:7f00:1]/hook", Err("not a public address")),
            (
                &strict,
                "https://169.254.169.254/latest/meta-data",
                Err("not a public address"),
            ),
            (&loopback, "http://127.0.0.1:8080/hook", Ok(())),
            (&loopback, "http://localhost:8080/hook", Ok(())),
        ];
        for (policy, url, want) in table {
            match (policy.check(url).await, want) {
                (Ok(c), Ok(())) => assert!(!c.addrs.is_empty()),
                (Err(e), Err(needle)) => assert!(e.to_string().contains(needle), "{url}: {e}"),
                (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
            }
        }
    }
}
