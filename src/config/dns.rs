//! `[dns]`: the root servers that `servers = "delegation"` probes follow
//! delegations from.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::document::{ConfigError, Strings, Table, field, parse_socket_addr, table};

table!(
    /// `[dns]`.
    RawDns { roots: Strings }
);

/// The root servers' addresses, IPv4 and IPv6 (IANA's root hints,
/// `named.root`, with b.root-servers.net as renumbered in November 2023):
/// the default of `[dns] roots`.
pub const ROOT_SERVERS: [&str; 26] = [
    "198.41.0.4",
    "2001:503:ba3e::2:30",
    "170.247.170.2",
    "2801:1b8:10::b",
    "192.33.4.12",
    "2001:500:2::c",
    "199.7.91.13",
    "2001:500:2d::d",
    "192.203.230.10",
    "2001:500:a8::e",
    "192.5.5.241",
    "2001:500:2f::f",
    "192.112.36.4",
    "2001:500:12::d0d",
    "198.97.190.53",
    "2001:500:1::53",
    "192.36.148.17",
    "2001:7fe::53",
    "192.58.128.30",
    "2001:503:c27::2:30",
    "193.0.14.129",
    "2001:7fd::1",
    "199.7.83.42",
    "2001:500:9f::42",
    "202.12.27.33",
    "2001:dc3::35",
];

/// `[dns] roots`: addresses (port 53 unless given), at least one.
pub(super) fn read_dns_roots(dns: Option<Table<'_, RawDns>>) -> Result<Arc<[SocketAddr]>, ConfigError> {
    let Some(dns) = dns else {
        let defaults = ROOT_SERVERS.iter().map(|a| parse_socket_addr(a, Some(53)).expect("the root hints parse"));
        return Ok(defaults.collect());
    };
    let Some(list) = dns.str_list(field!(dns, roots)) else {
        return Err(dns.error_here("[dns] needs \"roots\" (or leave the section out for the root servers)"));
    };
    if list.is_empty() {
        return Err(dns.error_at_key("roots", "\"roots\" must name at least one root server"));
    }
    list.iter()
        .map(|r| parse_socket_addr(r.value, Some(53)).map_err(|why| dns.error(&r.span, format!("\"roots\": {why}"))))
        .collect()
}
