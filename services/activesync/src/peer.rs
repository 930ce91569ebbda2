//! The phone's own address, which binding's lockout budget for the peer
//! needs. Behind an ingress every connection comes from the ingress's few
//! addresses, and a budget of theirs would let one guesser lock every
//! phone out; so a connection from a trusted proxy is taken at its
//! `X-Forwarded-For`, read from the right (the nearest hop) past every
//! trusted proxy, as proxies append.

use std::net::{IpAddr, SocketAddr};

use pushmail_common::egress::{Cidr, CidrError};

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// From CIDRs or addresses.
    pub fn parse(list: &[String]) -> Result<Self, CidrError> {
        list.iter()
            .map(|entry| Cidr::parse(entry))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(ip))
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted
    /// proxy; then the nearest address in `forwarded` (the values of every
    /// `X-Forwarded-For`, in order) that is not one. An entry that is not
    /// an address ends the walk at the proxy that wrote it.
    pub fn client<'a>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'a str>) -> IpAddr {
        let hops: Vec<&str> = forwarded.flat_map(|value| value.split(',')).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            if !self.trusts(client) {
                break;
            }
            match address(hop.trim()) {
                Some(ip) => client = ip,
                None => break,
            }
        }
        client
    }
}

/// An address as proxies write it: bare, or with a port (`[v6]:port`).
fn address(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_nearest_untrusted_hop() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8".to_owned()]).unwrap();
        let forwarded = ["203.0.113.7, 198.51.100.2", "10.1.1.1"];
        // The ingress (10.2.2.2) says the hop before it was 10.1.1.1, a
        // proxy of ours too, which says 198.51.100.2: the phone's NAT.
        assert_eq!(
            proxies.client(ip("10.2.2.2"), forwarded.into_iter()),
            ip("198.51.100.2"),
            "203.0.113.7 was written by the phone's side: not believed"
        );
        assert_eq!(
            proxies.client(ip("192.0.2.9"), forwarded.into_iter()),
            ip("192.0.2.9"),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(
            proxies.client(ip("10.2.2.2"), ["[2001:db8::1]:443"].into_iter()),
            ip("2001:db8::1")
        );
        assert_eq!(
            proxies.client(ip("10.2.2.2"), ["unknown"].into_iter()),
            ip("10.2.2.2"),
            "nothing to believe: the proxy itself"
        );
        assert_eq!(
            TrustedProxies::default().client(ip("10.2.2.2"), forwarded.into_iter()),
            ip("10.2.2.2")
        );
        assert!(TrustedProxies::parse(&["ingress".to_owned()]).is_err());
    }
}
