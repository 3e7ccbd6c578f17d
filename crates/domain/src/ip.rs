//! Masked IP networks. An address is never kept whole: the only ways to build an [`IpNetwork`]
//! mask it to at most /24 (IPv4) or /48 (IPv6) first, so no value of this type can hold a host.

use std::fmt;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The widest prefixes ever kept; an operator may mask more (a shorter prefix), never less.
pub const MAX_V4_PREFIX: u8 = 24;
pub const MAX_V6_PREFIX: u8 = 48;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpError {
    #[error("is not an IP address or CIDR network")]
    Malformed,
    #[error("keeps more of the address than allowed (at most /24 for IPv4, /48 for IPv6)")]
    TooNarrow,
}

/// How much of an address is kept. Cannot be set to keep more than /24 and /48.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaskPolicy {
    v4_prefix: u8,
    v6_prefix: u8,
}

impl MaskPolicy {
    pub fn new(v4_prefix: u8, v6_prefix: u8) -> Result<Self, IpError> {
        if v4_prefix > MAX_V4_PREFIX || v6_prefix > MAX_V6_PREFIX {
            return Err(IpError::TooNarrow);
        }
        Ok(Self { v4_prefix, v6_prefix })
    }

    pub fn v4_prefix(&self) -> u8 {
        self.v4_prefix
    }

    pub fn v6_prefix(&self) -> u8 {
        self.v6_prefix
    }
}

impl Default for MaskPolicy {
    fn default() -> Self {
        Self { v4_prefix: MAX_V4_PREFIX, v6_prefix: MAX_V6_PREFIX }
    }
}

/// A masked network such as `198.51.100.0/24` or `2001:db8:1234::/48`.
///
/// The field is private, so a host address cannot be wrapped without masking:
///
/// ```compile_fail
/// let host: ipnet::IpNet = "198.51.100.77/32".parse().unwrap();
/// let leaked = steward_domain::IpNetwork(host);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNetwork(IpNet);

impl IpNetwork {
    /// Masks an address with the default policy (/24, /48).
    pub fn mask(address: IpAddr) -> Self {
        Self::mask_with(address, MaskPolicy::default())
    }

    pub fn mask_with(address: IpAddr, policy: MaskPolicy) -> Self {
        let net = match address {
            IpAddr::V4(v4) => IpNet::V4(Ipv4Net::new_assert(v4, policy.v4_prefix).trunc()),
            IpAddr::V6(v6) => IpNet::V6(Ipv6Net::new_assert(v6, policy.v6_prefix).trunc()),
        };
        Self(net)
    }

    /// Parses an address (`198.51.100.77`) or CIDR text (`198.51.100.0/24`) and masks it; a CIDR
    /// narrower than /24 or /48 is masked down, never kept.
    pub fn parse(text: &str) -> Result<Self, IpError> {
        let text = text.trim();
        if let Ok(address) = text.parse::<IpAddr>() {
            return Ok(Self::mask(address));
        }
        let net: IpNet = text.parse().map_err(|_| IpError::Malformed)?;
        let policy = MaskPolicy::default();
        let net = match net {
            IpNet::V4(v4) => IpNet::V4(Ipv4Net::new_assert(v4.addr(), v4.prefix_len().min(policy.v4_prefix)).trunc()),
            IpNet::V6(v6) => IpNet::V6(Ipv6Net::new_assert(v6.addr(), v6.prefix_len().min(policy.v6_prefix)).trunc()),
        };
        Ok(Self(net))
    }

    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }

    pub fn network(&self) -> IpAddr {
        self.0.network()
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IpNetwork({})", self.0)
    }
}

impl Serialize for IpNetwork {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for IpNetwork {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = crate::text::cow_str(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

crate::text::string_schema!(IpNetwork, "cidr", "masked network in CIDR notation: at most /24 (IPv4) or /48 (IPv6)");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_ipv4_to_24_and_ipv6_to_48() {
        let v4 = IpNetwork::mask("198.51.100.77".parse().unwrap());
        assert_eq!(v4.to_string(), "198.51.100.0/24");
        let v6 = IpNetwork::mask("2001:db8:1234:5678::1".parse().unwrap());
        assert_eq!(v6.to_string(), "2001:db8:1234::/48");
    }

    #[test]
    fn parsing_an_address_or_a_narrow_cidr_still_masks() {
        assert_eq!(IpNetwork::parse("198.51.100.77").unwrap().to_string(), "198.51.100.0/24");
        assert_eq!(IpNetwork::parse("198.51.100.77/32").unwrap().to_string(), "198.51.100.0/24");
        assert_eq!(IpNetwork::parse("10.1.2.3/16").unwrap().to_string(), "10.1.0.0/16");
        assert_eq!(IpNetwork::parse("2001:db8:1234:5678::1/128").unwrap().to_string(), "2001:db8:1234::/48");
        assert_eq!(IpNetwork::parse("not an ip"), Err(IpError::Malformed));
    }

    #[test]
    fn deserialising_cannot_smuggle_a_host_address() {
        let net: IpNetwork = serde_json::from_str("\"203.0.113.9\"").unwrap();
        assert_eq!(net.to_string(), "203.0.113.0/24");
    }

    #[test]
    fn a_policy_may_mask_more_but_never_less() {
        assert_eq!(MaskPolicy::new(25, 48), Err(IpError::TooNarrow));
        assert_eq!(MaskPolicy::new(24, 56), Err(IpError::TooNarrow));
        let wide = MaskPolicy::new(16, 32).unwrap();
        assert_eq!(IpNetwork::mask_with("198.51.100.77".parse().unwrap(), wide).to_string(), "198.51.0.0/16");
    }

    #[test]
    fn every_public_constructor_yields_a_masked_network() {
        let samples = ["192.0.2.255", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "198.51.100.1/31"];
        for sample in samples {
            let net = IpNetwork::parse(sample).unwrap();
            let max = if net.network().is_ipv4() { MAX_V4_PREFIX } else { MAX_V6_PREFIX };
            assert!(net.prefix_len() <= max, "{sample} kept /{}", net.prefix_len());
        }
    }
}
