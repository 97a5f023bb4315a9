//! Which addresses a notification may be sent to (SSRF): a webhook URL is the caller's, and
//! Berth runs next to things a caller must not reach (the instance metadata and identity
//! endpoints, the storage account's private endpoint, the Functions host on loopback).
//!
//! # Guarantees
//! - Never, whatever the settings: link-local (`169.254.0.0/16`, where the metadata and identity
//!   endpoints are, `fe80::/10`), `fd00:ec2::254`, unspecified (`0.0.0.0/8`, `::`), multicast,
//!   broadcast and reserved (`240.0.0.0/4`).
//! - Outside `dev`, loopback (`127.0.0.0/8`, `::1`) and private ranges (`10/8`, `172.16/12`,
//!   `192.168/16`, `100.64/10`, `fc00::/7`, `fec0::/10`) only where the operator allows them
//!   (`BERTH_NOTIFY_ALLOW_PRIVATE`: `true`, or a list of CIDRs), and only `https`, except plain
//!   `http` to a literal address the operator allows. In `dev` both are allowed.
//! - An IPv6 address that embeds an IPv4 one (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`,
//!   NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is judged by the IPv4 address too.
//! - Host names are judged by what they resolve to, at every delivery (in the resolver the
//!   notification client connects with), and `localhost` (and `*.localhost`) already at submit. Decimal,
//!   octal and hex IPv4 forms (`http://2130706433/`, `http://0x7f.1/`) are parsed by the URL
//!   parser into the address they mean before they are judged.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Where notifications may go: set by the mode and `BERTH_NOTIFY_ALLOW_PRIVATE`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifyPolicy {
    /// `dev`: plain `http` anywhere allowed, loopback and private ranges too.
    pub dev: bool,
    /// Loopback and private addresses the operator allows.
    pub allow: Allow,
}

/// Loopback and private addresses allowed outside `dev`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Allow {
    #[default]
    None,
    /// Every loopback and private address (`BERTH_NOTIFY_ALLOW_PRIVATE=true`).
    All,
    /// Those in these ranges.
    Ranges(Vec<Cidr>),
}

/// An address range, `address/prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub network: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `10.1.0.0/16`, `fd12::/16`, or a single address.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let bad = || format!("'{text}' is not an address range (address/prefix)");
        let (address, prefix) = text.trim().split_once('/').unwrap_or((text.trim(), ""));
        let network: IpAddr = address.parse().map_err(|_| bad())?;
        let most = if network.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            most
        } else {
            prefix.parse().ok().filter(|p| *p <= most).ok_or_else(bad)?
        };
        Ok(Cidr { network, prefix })
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let (bytes, bits) = ((prefix / 8) as usize, prefix % 8);
    a[..bytes] == b[..bytes] && (bits == 0 || (a[bytes] ^ b[bytes]) & (0xffu8 << (8 - bits)) == 0)
}

impl Allow {
    /// Parses `BERTH_NOTIFY_ALLOW_PRIVATE`: empty or `false`, `true`, or CIDRs separated by commas.
    pub fn parse(text: &str) -> Result<Allow, String> {
        match text.trim() {
            "" | "false" => Ok(Allow::None),
            "true" => Ok(Allow::All),
            list => list
                .split(',')
                .filter(|c| !c.trim().is_empty())
                .map(Cidr::parse)
                .collect::<Result<_, _>>()
                .map(Allow::Ranges),
        }
    }

    fn allows(&self, ip: IpAddr) -> bool {
        match self {
            Allow::None => false,
            Allow::All => true,
            Allow::Ranges(ranges) => ranges.iter().any(|r| r.contains(ip)),
        }
    }
}

/// What kind of address an IP is, for notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Public,
    Loopback,
    Private,
    /// Never called: link-local (metadata), unspecified, multicast, reserved.
    Never(&'static str),
}

fn kind_v4(ip: Ipv4Addr) -> Kind {
    let [a, b, c, _] = ip.octets();
    if a == 169 && b == 254 {
        Kind::Never("link-local (the instance metadata and identity endpoints)")
    } else if ip == Ipv4Addr::new(168, 63, 129, 16) {
        Kind::Never("Azure's platform address (its DNS and WireServer)")
    } else if (a == 192 && b == 0 && c == 0) || (a == 198 && (b & 0xfe) == 18) {
        Kind::Never("reserved (IETF protocol assignments, benchmarking)")
    } else if a == 0 {
        Kind::Never("unspecified")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Kind::Never("multicast or reserved")
    } else if ip.is_loopback() {
        Kind::Loopback
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Kind::Private
    } else {
        Kind::Public
    }
}

/// The IPv4 address an IPv6 one embeds, if any.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0; 6] && ip != Ipv6Addr::LOCALHOST && ip != Ipv6Addr::UNSPECIFIED {
        return Some(tail()); // IPv4-compatible
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..3] == [0x64, 0xff9b, 1] {
        return Some(tail()); // NAT64, well-known and local-use
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        )); // 6to4
    }
    None
}

fn kind_v6(ip: Ipv6Addr) -> Kind {
    if let Some(v4) = embedded_v4(ip) {
        let inner = kind_v4(v4);
        if inner != Kind::Public {
            return inner;
        }
    }
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Kind::Never("unspecified")
    } else if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Kind::Never("an instance metadata endpoint")
    } else if first & 0xffc0 == 0xfe80 {
        Kind::Never("link-local")
    } else if ip.is_multicast() {
        Kind::Never("multicast or reserved")
    } else if ip.is_loopback() {
        Kind::Loopback
    } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
        Kind::Private
    } else {
        Kind::Public
    }
}

impl NotifyPolicy {
    /// Why `ip` may not be called, or `None` when it may.
    pub fn refuses(&self, ip: IpAddr) -> Option<String> {
        let kind = match ip {
            IpAddr::V4(v4) => kind_v4(v4),
            IpAddr::V6(v6) => kind_v6(v6),
        };
        let what = match kind {
            Kind::Public => return None,
            Kind::Never(what) => return Some(format!("{ip} is {what}: never called")),
            Kind::Loopback => "loopback",
            Kind::Private => "a private address",
        };
        if self.dev || self.allow.allows(ip) {
            None
        } else {
            Some(format!(
                "{ip} is {what}; BERTH_NOTIFY_ALLOW_PRIVATE does not allow it"
            ))
        }
    }

    /// Whether `url` may be called as far as can be told without resolving it: its scheme, and
    /// its host when that is an address. Checked at submit and at every attempt; host names are
    /// judged by what they resolve to when they are connected to (and at submit by
    /// [`Self::check_submitted`]).
    pub fn check_url(&self, url: &url::Url) -> Result<(), String> {
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err("has no host".into()),
        };
        if let Some(ip) = literal
            && let Some(why) = self.refuses(ip)
        {
            return Err(why);
        }
        // Plain http only where nothing on the way can read it: in dev, or to a loopback or
        // private address the operator allows, never to a public one.
        let inside = |ip: IpAddr| {
            let kind = match ip {
                IpAddr::V4(v4) => kind_v4(v4),
                IpAddr::V6(v6) => kind_v6(v6),
            };
            matches!(kind, Kind::Loopback | Kind::Private) && self.allow.allows(ip)
        };
        let plain_allowed = self.dev || literal.is_some_and(inside);
        match url.scheme() {
            "https" => Ok(()),
            "http" if plain_allowed => Ok(()),
            _ => Err(
                "must be https (http only in dev, or to an address BERTH_NOTIFY_ALLOW_PRIVATE allows)"
                    .into(),
            ),
        }
    }

    /// At submit, [`Self::check_url`] and the names that are loopback whatever DNS says
    /// (`localhost`, `*.localhost`), outside `dev`.
    pub fn check_submitted(&self, url: &url::Url) -> Result<(), String> {
        if let Some(url::Host::Domain(name)) = url.host() {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if !self.dev && (name == "localhost" || name.ends_with(".localhost")) {
                return Err(format!(
                    "{name} is loopback; notifications go to public addresses"
                ));
            }
        }
        self.check_url(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(policy: &NotifyPolicy, url: &str) -> Result<(), String> {
        policy.check_submitted(&url::Url::parse(url).map_err(|e| e.to_string())?)
    }

    #[test]
    fn every_attack_form_is_refused_outside_dev() {
        let policy = NotifyPolicy::default();
        for url in [
            "http://2130706433/",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0177.0.0.1/",
            "https://127.1/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::ffff:7f00:1]/",
            "https://[::127.0.0.1]/",
            "https://[64:ff9b::a9fe:a9fe]/",
            "https://[64:ff9b:1::a9fe:a9fe]/",
            "https://168.63.129.16/",
            "https://192.0.0.170/",
            "https://198.18.0.1/",
            "https://[2002:a9fe:a9fe::]/",
            "https://169.254.169.254/metadata/identity/oauth2/token",
            "https://[fd00:ec2::254]/",
            "https://[fe80::1]/",
            "https://[::1]/",
            "https://[::]/",
            "https://0.0.0.0/",
            "https://10.0.0.1/",
            "https://172.16.5.4/",
            "https://192.168.1.1/",
            "https://100.64.0.1/",
            "https://[fc00::1]/",
            "https://[fd12:3456::1]/",
            "https://224.0.0.1/",
            "https://255.255.255.255/",
            "https://good@127.0.0.1/",
            "https://localhost/",
            "https://LocalHost./",
            "https://api.localhost/",
            "http://hooks.example.com/",
        ] {
            assert!(check(&policy, url).is_err(), "{url} was allowed");
        }
        assert_eq!(check(&policy, "https://hooks.example.com/x?a=1"), Ok(()));
        assert_eq!(check(&policy, "https://20.1.2.3/"), Ok(()));
        assert_eq!(check(&policy, "https://[2606:4700::1111]/"), Ok(()));
    }

    #[test]
    fn the_operator_allows_ranges_dev_allows_loopback_and_link_local_is_never_allowed() {
        let ranges = NotifyPolicy {
            dev: false,
            allow: Allow::parse("10.1.0.0/16, 127.0.0.1").unwrap(),
        };
        assert_eq!(check(&ranges, "http://10.1.2.3:8080/"), Ok(()));
        assert_eq!(check(&ranges, "http://127.0.0.1:9/"), Ok(()));
        assert!(check(&ranges, "https://10.2.0.1/").is_err());
        assert!(check(&ranges, "https://127.0.0.2/").is_err());
        let all = NotifyPolicy {
            dev: false,
            allow: Allow::All,
        };
        assert_eq!(check(&all, "https://192.168.0.1/"), Ok(()));
        // Allowing private receivers lets plain http reach them, never a public address.
        assert_eq!(check(&all, "http://192.168.0.1/"), Ok(()));
        assert!(check(&all, "http://203.0.113.9/").is_err());
        let dev = NotifyPolicy {
            dev: true,
            allow: Allow::None,
        };
        assert_eq!(check(&dev, "http://127.0.0.1:8080/hook"), Ok(()));
        assert_eq!(check(&dev, "http://localhost:8080/hook"), Ok(()));
        for policy in [&ranges, &all, &dev] {
            for url in [
                "http://169.254.169.254/",
                "https://[::ffff:169.254.169.254]/",
                "https://[fe80::1]/",
                "https://[fd00:ec2::254]/",
                "https://0.0.0.0/",
                "https://168.63.129.16/",
            ] {
                assert!(check(policy, url).is_err(), "{url} was allowed");
            }
        }
        for bad in ["10.0.0.0/33", "banana", "::/129"] {
            assert!(Allow::parse(bad).is_err(), "{bad}");
        }
        assert!(
            Cidr::parse("fd12::/16")
                .unwrap()
                .contains("fd12:1::5".parse().unwrap())
        );
        assert!(
            !Cidr::parse("10.0.0.0/9")
                .unwrap()
                .contains("10.128.0.1".parse().unwrap())
        );
    }
}
