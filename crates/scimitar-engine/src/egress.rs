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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// An address range, `10.0.0.0/8` or `fd00::/8` (a bare address is one
/// address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let net: IpAddr = addr
            .parse()
            .map_err(|_| format!("'{s}' is not an address range (e.g. 10.0.0.0/8, fd00::/8)"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("'{s}': the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { net, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is the IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether an address is on the public internet: not loopback, private,
/// link-local (the metadata endpoint), shared (CGNAT), unique-local,
/// unspecified, multicast, broadcast, documentation or benchmarking.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
                || o[0] >= 240
                || a == Ipv4Addr::new(192, 0, 0, 170)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0))
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x64 && s[1] == 0xff9b)
                || a == Ipv6Addr::UNSPECIFIED)
        }
    }
}

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
    fn which_addresses_are_public() {
        let table = [
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("2606:4700::1111", true),
            ("127.0.0.1", false),
            ("10.1.2.3", false),
            ("172.16.0.1", false),
            ("192.168.1.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("0.0.0.0", false),
            ("255.255.255.255", false),
            ("224.0.0.1", false),
            ("::1", false),
            ("::", false),
            ("fd00::1", false),
            ("fe80::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:8.8.8.8", true),
        ];
        for (ip, public) in table {
            assert_eq!(is_public(ip.parse().unwrap()), public, "{ip}");
        }
    }

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
