//! Where a job sent through the admin API may connect. A tenant's
//! administrator chooses its target and source URLs; without a limit the
//! server would send requests wherever they point — its own loopback
//! services, the cloud's metadata endpoint (169.254.169.254), the private
//! network — and show parts of the answers in the job's errors (SSRF).
//! Such jobs reach public addresses only, plus what the operator allows
//! (`--job-egress-allow CIDR`). Jobs the operator stores with the CLI are
//! not limited.
//!
//! Names are checked when the job is stored and again before each cycle;
//! the SCIM client of a limited job also resolves every name through
//! [`PublicOnly`], so that a name that resolved to a public address when it
//! was checked cannot resolve to a private one when it is connected to
//! (DNS rebinding). LDAP connections are checked before the cycle only.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

pub use scimitar_egress::{Cidr, is_public};

/// The host a URL names (without an IPv6 address's brackets), lower case.
pub fn host_of(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    Some(host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase())
}

/// The address a host written in a job stands for without resolving it: an
/// IP address, or `localhost` (always loopback).
pub fn literal_address(host: &str) -> Option<IpAddr> {
    if host == "localhost" || host.ends_with(".localhost") {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    host.parse().ok()
}

/// Which addresses a limited job may connect to.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Ranges the operator allows besides public addresses.
    pub allow: Vec<Cidr>,
}

impl Policy {
    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.allow.iter().any(|c| c.contains(ip))
    }

    /// Checks that every address `url`'s host resolves to is permitted.
    /// Says which address is not, and what the operator can do.
    pub async fn check_url(&self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("'{url}' is not a URL: {e}"))?;
        let host = parsed.host_str().ok_or_else(|| format!("'{url}' names no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = parsed.port_or_known_default().unwrap_or(match parsed.scheme() {
            "ldap" => 389,
            "ldaps" => 636,
            _ => 443,
        });
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| format!("cannot resolve '{host}': {e}"))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(format!("'{host}' resolves to no address"));
        }
        match addrs.iter().find(|a| !self.permits(a.ip())) {
            Some(a) => Err(format!(
                "'{host}' is {}, not a public address: a job sent through the admin API may connect to public addresses only (the server's operator can allow a range with --job-egress-allow)",
                a.ip()
            )),
            None => Ok(()),
        }
    }
}

/// A resolver for reqwest that drops addresses the policy does not permit
/// (and fails when none is left).
#[derive(Debug, Clone)]
pub struct PublicOnly(pub Arc<Policy>);

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = all.into_iter().filter(|a| policy.permits(a.ip())).collect();
            if permitted.is_empty() {
                return Err(format!("'{host}' resolves to no public address").into());
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_the_operator_allows() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.200.1.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.0.0.1".parse().unwrap()));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("127.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        let p = Policy { allow: vec![c] };
        assert!(p.permits("10.0.0.5".parse().unwrap()));
        assert!(!p.permits("192.168.0.5".parse().unwrap()));
        assert!(p.permits("8.8.8.8".parse().unwrap()));
    }

    #[tokio::test]
    async fn urls_are_checked_by_what_they_resolve_to() {
        let p = Policy::default();
        for url in [
            "http://127.0.0.1:8080/scim/v2",
            "http://localhost/scim",
            "http://169.254.169.254/latest/meta-data",
            "ldap://10.0.0.1",
            "http://[::1]:9/scim",
        ] {
            let err = p.check_url(url).await.expect_err(url);
            assert!(err.contains("not a public address"), "{url}: {err}");
        }
        let allowed = Policy {
            allow: vec!["127.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()],
        };
        assert!(allowed.check_url("http://127.0.0.1:8080/scim/v2").await.is_ok());
        assert!(allowed.check_url("http://localhost:8080/scim/v2").await.is_ok());
        assert!(p.check_url("not a url").await.is_err());
    }
}
