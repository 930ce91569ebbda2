//! Outbound connections to hosts a tenant names (its mailbox servers):
//! refused when they resolve to loopback, link-local, private, shared,
//! multicast, reserved or cloud-metadata addresses, unless the operator
//! allows the network. One policy, checked twice: binding checks the host
//! when the account is created (a clear answer to the tenant), ingest
//! checks the address it actually connects to (DNS may change after
//! creation, and a name may resolve differently each time).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use crate::config::ConfigError;

/// Longest a name lookup may take before the caller gives up on it.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// A network, `203.0.113.0/24` or `2001:db8::/32`; a bare address is a
/// network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a CIDR was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a network (use 203.0.113.0/24, 2001:db8::/32 or one address)")]
pub struct CidrError(String);

impl Cidr {
    /// Parses `address[/prefix]`; host bits must be zero.
    pub fn parse(text: &str) -> Result<Self, CidrError> {
        let bad = || CidrError(text.chars().take(64).collect());
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network = IpAddr::from_str(address).map_err(|_| bad())?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(bad)?,
            None => bits,
        };
        let cidr = Self { network, prefix };
        if cidr.masked(network) != network {
            return Err(bad());
        }
        Ok(cidr)
    }

    /// Whether `ip` is in the network (an IPv4-mapped IPv6 address counts
    /// as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && self.masked(ip) == self.network
    }

    fn masked(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Networks no tenant-named host may reach, with what they are.
const FORBIDDEN: &[(&str, &str)] = &[
    ("0.0.0.0/8", "an unspecified address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local (cloud metadata) address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("::/96", "an IPv4-compatible address"),
    ("64:ff9b::/96", "a NAT64 address"),
    ("2002::/16", "a 6to4 address"),
    (
        "fc00::/7",
        "a private (unique local, cloud metadata) address",
    ),
    ("fe80::/10", "a link-local address"),
    ("ff00::/8", "a multicast address"),
];

/// An address the policy refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The address is in a forbidden range the operator did not allow.
    #[error(
        "{host} resolves to {address}, {what}; mailbox servers must be reachable on the public \
         internet (an operator may allow networks in accounts.allowed_networks)"
    )]
    Forbidden {
        /// The host as named.
        host: String,
        /// The refused address.
        address: IpAddr,
        /// What kind of address it is.
        what: &'static str,
    },
    /// The name does not resolve (or not in time).
    #[error("{host} does not resolve: {reason}")]
    Unresolved {
        /// The host as named.
        host: String,
        /// What the resolver said.
        reason: String,
    },
}

/// Which addresses tenant-named hosts may have: every public address, and
/// the forbidden ranges the operator allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPolicy {
    allowed: Vec<Cidr>,
    forbidden: Vec<(Cidr, &'static str)>,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl EgressPolicy {
    /// The policy allowing `allowed` on top of the public internet.
    pub fn new(allowed: Vec<Cidr>) -> Self {
        let forbidden = FORBIDDEN
            .iter()
            .filter_map(|(cidr, what)| Cidr::parse(cidr).ok().map(|c| (c, *what)))
            .collect();
        Self { allowed, forbidden }
    }

    /// Checks one address of `host`.
    pub fn check(&self, host: &str, address: IpAddr) -> Result<(), EgressError> {
        let address = address.to_canonical();
        if self.allowed.iter().any(|c| c.contains(address)) {
            return Ok(());
        }
        match self.forbidden.iter().find(|(c, _)| c.contains(address)) {
            Some((_, what)) => Err(EgressError::Forbidden {
                host: host.chars().take(253).collect(),
                address,
                what,
            }),
            None => Ok(()),
        }
    }

    /// Resolves `host` and checks every address it has: one forbidden
    /// address refuses the host (a name may answer differently next time).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let unresolved = |reason: String| EgressError::Unresolved {
            host: host.chars().take(253).collect(),
            reason,
        };
        let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| unresolved(format!("no answer within {RESOLVE_TIMEOUT:?}")))?
            .map_err(|e| unresolved(e.to_string()))?
            .collect::<Vec<_>>();
        if found.is_empty() {
            return Err(unresolved("no addresses".to_owned()));
        }
        for address in &found {
            self.check(host, address.ip())?;
        }
        Ok(found)
    }

    /// Connects to `host:port` on an address the policy allows, and checks
    /// the address the socket actually reached before returning it.
    pub async fn connect(&self, host: &str, port: u16) -> std::io::Result<TcpStream> {
        let denied = |e: EgressError| std::io::Error::new(std::io::ErrorKind::PermissionDenied, e);
        let addresses = self.resolve(host, port).await.map_err(|e| match e {
            EgressError::Unresolved { .. } => std::io::Error::new(std::io::ErrorKind::NotFound, e),
            forbidden => denied(forbidden),
        })?;
        let mut last = None;
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => {
                    let peer = stream.peer_addr()?;
                    self.check(host, peer.ip()).map_err(denied)?;
                    return Ok(stream);
                }
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no address to connect to")))
    }
}

/// The `accounts` config section of services that reach tenant-named
/// mailbox servers (binding checks them, ingest connects to them).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// Networks mailbox servers may be in although they are loopback,
    /// private, link-local or otherwise not public (CIDRs or addresses,
    /// e.g. `["127.0.0.0/8", "::1"]` for a test Dovecot). Default: none.
    pub allowed_networks: Vec<String>,
}

impl EgressConfig {
    /// Every entry must parse.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        self.policy()
            .map(drop)
            .map_err(|e| ConfigError::invalid(format!("{prefix}allowed_networks"), e.to_string()))
    }

    /// The policy.
    pub fn policy(&self) -> Result<EgressPolicy, CidrError> {
        let allowed = self
            .allowed_networks
            .iter()
            .map(|c| Cidr::parse(c))
            .collect::<Result<_, _>>()?;
        Ok(EgressPolicy::new(allowed))
    }

    /// Loopback allowed: tests and standalone, whose mail server runs on
    /// the same machine.
    pub fn loopback() -> Self {
        Self {
            allowed_networks: vec!["127.0.0.0/8".to_owned(), "::1/128".to_owned()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains(ip("10.1.200.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(
            net.contains(ip("::ffff:10.1.0.9")),
            "mapped IPv6 is its IPv4"
        );
        assert_eq!(
            Cidr::parse("192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert!(
            Cidr::parse("2001:db8::/32")
                .unwrap()
                .contains(ip("2001:db8::1"))
        );
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        for bad in [
            "10.1.0.1/16",
            "10.0.0.0/33",
            "example.com",
            "",
            "::/129",
            "1.2.3.4/x",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn internal_and_metadata_addresses_are_refused_by_default() {
        let policy = EgressPolicy::default();
        for refused in [
            "127.0.0.1",
            "10.0.0.5",
            "172.20.1.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            let err = policy.check("mail.example", ip(refused)).unwrap_err();
            assert!(
                err.to_string().contains("accounts.allowed_networks"),
                "{err}"
            );
        }
        for public in ["203.0.113.10", "8.8.8.8", "2001:4860:4860::8888"] {
            assert_eq!(policy.check("mail.example", ip(public)), Ok(()), "{public}");
        }
    }

    #[test]
    fn the_operator_allows_networks_explicitly() {
        let policy = EgressConfig::loopback().policy().unwrap();
        assert_eq!(policy.check("localhost", ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check("localhost", ip("::1")), Ok(()));
        assert!(
            policy.check("x", ip("10.0.0.1")).is_err(),
            "only what is listed"
        );
        let config = EgressConfig {
            allowed_networks: vec!["10.0.0.0/33".to_owned()],
        };
        let err = config.validate("accounts.").unwrap_err();
        assert!(
            err.to_string().contains("accounts.allowed_networks"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn names_are_checked_on_every_address_and_on_connect() {
        let policy = EgressPolicy::default();
        let err = policy.resolve("localhost", 143).await.unwrap_err();
        assert!(matches!(err, EgressError::Forbidden { .. }), "{err}");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let refused = policy.connect("127.0.0.1", port).await.unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::PermissionDenied);
        let allowed = EgressConfig::loopback().policy().unwrap();
        assert!(allowed.connect("127.0.0.1", port).await.is_ok());
    }
}
