//! IP prefixes as the BGP engine, the config and the probes see them: a
//! leaf type, so the config does not depend on the BGP engine for it.
//!
//! Both families live in one 128-bit space (IPv4 in the top 32 bits) so that
//! "covers" and "is covered by" are one mask-and-compare for either family;
//! the engine asks those questions for every route it reads.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IPv4 or IPv6 prefix with its host bits cleared.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    v6: bool,
    len: u8,
    bits: u128,
}

/// Why a text is not a prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// The text has no `/len` part.
    #[error("\"{0}\" is not a prefix (expected ADDRESS/LENGTH, like 129.134.30.0/23)")]
    Syntax(String),
    /// The length is larger than the family allows.
    #[error("\"{0}\" has a length beyond the address family's maximum")]
    Length(String),
    /// Bits beyond the length are set, which usually means a typo.
    #[error("\"{given}\" has host bits set (did you mean {canonical}?)")]
    HostBits {
        /// What was written.
        given: String,
        /// The prefix with the host bits cleared.
        canonical: Prefix,
    },
}

fn mask(len: u8) -> u128 {
    if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) }
}

impl Prefix {
    /// Builds a prefix from an address and a length, clearing host bits.
    /// Returns `None` when the length is too long for the family.
    pub fn new(addr: IpAddr, len: u8) -> Option<Prefix> {
        let (v6, raw, max) = match addr {
            IpAddr::V4(a) => (false, u128::from(u32::from(a)) << 96, 32),
            IpAddr::V6(a) => (true, u128::from(a), 128),
        };
        (len <= max).then(|| Prefix { v6, len, bits: raw & mask(len) })
    }

    /// Builds a prefix from the leading bytes of an address as they appear in
    /// BGP NLRI encodings (`bytes` holds `ceil(len / 8)` bytes). Trailing bits
    /// beyond `len` are cleared.
    pub fn from_nlri(v6: bool, len: u8, bytes: &[u8]) -> Option<Prefix> {
        let max = if v6 { 128 } else { 32 };
        if len > max || bytes.len() > usize::from(max / 8) {
            return None;
        }
        let mut raw = [0u8; 16];
        raw[..bytes.len()].copy_from_slice(bytes);
        let bits = u128::from_be_bytes(raw) & mask(len);
        Some(Prefix { v6, len, bits })
    }

    /// True for IPv6.
    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// The prefix length.
    pub fn length(&self) -> u8 {
        self.len
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(self.bits))
        } else {
            IpAddr::V4(Ipv4Addr::from((self.bits >> 96) as u32))
        }
    }

    /// True when `other` lies inside `self` (equal counts).
    pub fn covers(&self, other: &Prefix) -> bool {
        self.v6 == other.v6 && self.len <= other.len && other.bits & mask(self.len) == self.bits
    }

    /// True when one of the two covers the other.
    pub fn overlaps(&self, other: &Prefix) -> bool {
        self.covers(other) || other.covers(self)
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Prefix, PrefixError> {
        let syntax = || PrefixError::Syntax(s.to_string());
        let (addr, len) = s.split_once('/').ok_or_else(syntax)?;
        let addr: IpAddr = addr.trim().parse().map_err(|_| syntax())?;
        let len: u8 = len.trim().parse().map_err(|_| syntax())?;
        let prefix = Prefix::new(addr, len).ok_or_else(|| PrefixError::Length(s.to_string()))?;
        if prefix.addr() != addr {
            return Err(PrefixError::HostBits { given: s.to_string(), canonical: prefix });
        }
        Ok(prefix)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

impl fmt::Debug for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn covering_prefix_covers_more_specific_of_same_family_only() {
        assert!(p("129.134.0.0/17").covers(&p("129.134.30.0/23")));
        assert!(p("129.134.30.0/23").covers(&p("129.134.30.0/23")));
        assert!(!p("129.134.30.0/23").covers(&p("129.134.0.0/17")));
        assert!(!p("129.134.30.0/24").covers(&p("129.134.31.0/24")));
        assert!(p("0.0.0.0/0").covers(&p("1.2.3.0/24")));
        assert!(!p("::/0").covers(&p("1.2.3.0/24")));
        assert!(p("2a03:2880::/32").covers(&p("2a03:2880:f000::/36")));
    }

    #[test]
    fn host_bits_are_rejected_with_the_canonical_form() {
        let err = "129.134.31.0/23".parse::<Prefix>().unwrap_err();
        assert_eq!(err.to_string(), "\"129.134.31.0/23\" has host bits set (did you mean 129.134.30.0/23?)");
        assert!(matches!("1.2.3.0/33".parse::<Prefix>(), Err(PrefixError::Length(_))));
        assert!(matches!("1.2.3.0".parse::<Prefix>(), Err(PrefixError::Syntax(_))));
    }

    #[test]
    fn nlri_bytes_round_trip() {
        let pfx = Prefix::from_nlri(false, 23, &[129, 134, 30]).unwrap();
        assert_eq!(pfx, p("129.134.30.0/23"));
        assert_eq!(Prefix::from_nlri(false, 33, &[1, 2, 3, 4, 5]), None);
        assert_eq!(Prefix::from_nlri(true, 32, &[0x2a, 0x03, 0x28, 0x80]).unwrap(), p("2a03:2880::/32"));
    }
}
