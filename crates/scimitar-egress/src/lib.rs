//! Which addresses an outbound connection made on a tenant's behalf may
//! reach. A tenant's administrator chooses URLs the server then connects
//! to (a job's target and source, a webhook endpoint); without a limit the
//! server would send requests to its own loopback services, the cloud's
//! metadata endpoint (169.254.169.254) or the private network (SSRF). The
//! job runner (`scimitar-engine`) and webhook delivery (`scimitar-webhooks`)
//! share these rules; each adds its own policy on top (schemes, the
//! operator's flags, resolution).
//!
//! Pure: addresses in, answers out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address range, `10.0.0.0/8` or `fd00::/8` (a bare address is one
/// address). A range written as IPv4-mapped IPv6 (`::ffff:10.0.0.0/104`)
/// is the IPv4 range.
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
    /// Whether `ip` is in the range (an IPv4-mapped IPv6 address counts as
    /// its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (canonical(self.net), canonical(ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let prefix = if self.net.is_ipv6() {
                    u32::from(self.prefix).saturating_sub(96)
                } else {
                    u32::from(self.prefix)
                };
                let mask = u32::MAX.checked_shl(32 - prefix.min(32)).unwrap_or(0);
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

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is the IPv4 one:
/// otherwise `::ffff:127.0.0.1` would pass as a public IPv6 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether an address is loopback (`127.0.0.0/8`, `::1`, or mapped).
pub fn is_loopback(ip: IpAddr) -> bool {
    canonical(ip).is_loopback()
}

/// Whether an address is on the public internet: not loopback, private,
/// link-local (the metadata endpoint), shared (CGNAT), unique-local,
/// unspecified, multicast, broadcast, documentation, benchmarking, NAT64,
/// or one of those written as IPv4-mapped IPv6.
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

/// Public addresses plus the ranges the operator allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowed {
    pub ranges: Vec<Cidr>,
}

impl Allowed {
    pub fn permits(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.ranges.iter().any(|c| c.contains(ip))
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
            ("::ffff:8.8.8.8", true),
            ("127.0.0.1", false),
            ("127.1.2.3", false),
            ("10.1.2.3", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("192.168.1.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("100.127.255.254", false),
            ("198.18.0.1", false),
            ("192.0.0.170", false),
            ("192.0.2.1", false),
            ("240.0.0.1", false),
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("255.255.255.255", false),
            ("224.0.0.1", false),
            ("::1", false),
            ("::", false),
            ("fd00::1", false),
            ("fc00::1", false),
            ("fe80::1", false),
            ("ff02::1", false),
            ("2001:db8::1", false),
            ("64:ff9b::a00:1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:169.254.169.254", false),
        ];
        for (ip, public) in table {
            assert_eq!(is_public(ip.parse().unwrap()), public, "{ip}");
        }
    }

    #[test]
    fn loopback_also_when_mapped() {
        for (ip, lo) in [
            ("127.0.0.1", true),
            ("127.9.9.9", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("10.0.0.1", false),
            ("8.8.8.8", false),
        ] {
            assert_eq!(is_loopback(ip.parse().unwrap()), lo, "{ip}");
        }
    }

    #[test]
    fn ranges_the_operator_allows() {
        // (range, address, contained)
        let table = [
            ("10.0.0.0/8", "10.200.1.1", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("10.0.0.0/8", "::ffff:10.0.0.1", true),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe12::1", false),
            ("0.0.0.0/0", "127.0.0.1", true),
            ("::ffff:10.0.0.0/104", "10.9.9.9", true),
            ("::ffff:10.0.0.0/104", "11.0.0.1", false),
            ("::/0", "fd00::1", true),
        ];
        for (range, ip, inside) in table {
            let c: Cidr = range.parse().unwrap();
            assert_eq!(c.contains(ip.parse().unwrap()), inside, "{range} ∋ {ip}");
        }
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        let a = Allowed {
            ranges: vec!["10.0.0.0/8".parse().unwrap()],
        };
        assert!(a.permits("10.0.0.5".parse().unwrap()));
        assert!(!a.permits("192.168.0.5".parse().unwrap()));
        assert!(a.permits("8.8.8.8".parse().unwrap()));
    }
}
