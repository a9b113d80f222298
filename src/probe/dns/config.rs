//! The config of `kind = "dns"`: its keys, the validated [`DnsCheck`] and
//! the rules between keys (a delegation walk asks over UDP without
//! recursion; an encrypted transport needs its servers named). Record
//! types and response codes are hickory's own.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde::Deserialize;

use crate::document::{ConfigError, Strings, Table, ValueError, field, parse_socket_addr, table};
use crate::prefix::Prefix;
use crate::probe::kind::{ReadContext, read_trust};

/// The record types a probe may ask for.
pub const RECORDS: [RecordType; 7] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::NS,
    RecordType::SOA,
    RecordType::TXT,
    RecordType::MX,
];

/// The response codes a probe may expect.
pub const RCODES: [ResponseCode; 6] = [
    ResponseCode::NoError,
    ResponseCode::FormErr,
    ResponseCode::ServFail,
    ResponseCode::NXDomain,
    ResponseCode::NotImp,
    ResponseCode::Refused,
];

/// The mnemonic of a response code (`SERVFAIL`), or `RCODE n`.
pub fn rcode_word(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => format!("RCODE {}", u16::from(other)),
    }
}

/// `servers = ["1.1.1.1", "8.8.8.8"]` or `servers = "delegation"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ServerList {
    /// A word (only `"delegation"` is one).
    Word(String),
    /// Servers (spans do not survive serde's untagged buffering: errors
    /// point at the value as a whole).
    Servers(Vec<String>),
}

table!(
    /// The keys of `kind = "dns"`.
    RawDnsProbe {
        query: String,
        record: String,
        server: String,
        servers: ServerList,
        require: String,
        recursion: bool,
        authoritative: bool,
        expect_rcode: String,
        expect_answer: bool,
        expect_answer_in: Strings,
        transport: String,
        server_name: String,
        ca_file: String,
        system_roots: bool,
    }
);

/// `kind = "dns"`.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsCheck {
    /// The name asked for, as written.
    pub query: String,
    /// The record type asked for (one of [`RECORDS`]).
    pub record: RecordType,
    /// How questions travel.
    pub transport: DnsTransport,
    /// The servers asked (`server` or `servers`); empty = the system resolver.
    pub servers: Vec<DnsServer>,
    /// TLS and HTTPS: the name the server's certificate must carry
    /// (default: the server's address or URL host).
    pub server_name: Option<String>,
    /// TLS and HTTPS: trust exactly these roots.
    pub ca_file: Option<PathBuf>,
    /// With `ca_file`: trust the system's roots as well.
    pub system_roots: bool,
    /// Every server must answer as expected (`require = "all"`); else any one.
    pub require_all: bool,
    /// With `recursion = false`: an answer without the AA flag fails.
    pub authoritative: bool,
    /// Whether recursion is desired (false for authoritative servers).
    pub recursion: bool,
    /// The response code that counts as success (one of [`RCODES`]).
    pub expect_rcode: ResponseCode,
    /// Whether at least one record of `record` type must come back.
    pub expect_answer: bool,
    /// `servers = "delegation"`: the roots the zone's delegation is followed
    /// from; its own servers are then asked (`servers` is empty).
    pub delegation: Option<Arc<[SocketAddr]>>,
    /// Answers (after the CNAME chain) must fall in one of these, or the
    /// run is `dns_inconsistent`; empty = no check.
    pub expect_answer_in: Vec<Prefix>,
}

/// `transport` of a dns probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsTransport {
    /// UDP, falling back to TCP on a truncated answer (default).
    Udp,
    /// TCP only.
    Tcp,
    /// DNS over TLS (RFC 7858), port 853 by default.
    Tls,
    /// DNS over HTTPS (RFC 8484): the server is an https URL.
    Https,
}

/// One server of a dns probe: an address, or a DoH URL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum DnsServer {
    /// `ip:port` (UDP, TCP, TLS).
    Addr(SocketAddr),
    /// `https://…` (DoH).
    Url(String),
}

impl fmt::Display for DnsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsServer::Addr(a) => write!(f, "{a}"),
            DnsServer::Url(u) => f.write_str(u),
        }
    }
}

/// Validates a dns probe's keys.
pub(super) fn read(t: &Table<'_, RawDnsProbe>, cx: &ReadContext<'_>) -> Result<DnsCheck, ConfigError> {
    let roots = cx.dns_roots;
    let query = t.required_str(field!(t, query))?;
    if hickory_proto::rr::Name::from_utf8(query.value).is_err() || query.value.is_empty() {
        return Err(t.error(&query.span, format!("\"query\": \"{}\" is not a domain name", query.value)));
    }
    let record = t
        .parsed(field!(t, record), |s| {
            RECORDS.iter().find(|r| r.to_string().eq_ignore_ascii_case(s)).copied().ok_or_else(|| ValueError::Unknown {
                what: "record type",
                text: s.to_string(),
                known: "A AAAA CNAME NS SOA TXT MX",
            })
        })?
        .unwrap_or(RecordType::A);
    let expect_rcode = t
        .parsed(field!(t, expect_rcode), |s| {
            RCODES.iter().find(|r| rcode_word(**r).eq_ignore_ascii_case(s)).copied().ok_or_else(|| {
                ValueError::Unknown {
                    what: "response code",
                    text: s.to_string(),
                    known: "NOERROR NXDOMAIN SERVFAIL REFUSED FORMERR NOTIMP",
                }
            })
        })?
        .unwrap_or(ResponseCode::NoError);
    let transport = t
        .parsed(field!(t, transport), |s| match s {
            "udp" => Ok(DnsTransport::Udp),
            "tcp" => Ok(DnsTransport::Tcp),
            "tls" => Ok(DnsTransport::Tls),
            "https" => Ok(DnsTransport::Https),
            other => Err(ValueError::not(other, "a transport (expected \"udp\", \"tcp\", \"tls\" or \"https\")")),
        })?
        .unwrap_or(DnsTransport::Udp);
    let server = |s: &str| -> Result<DnsServer, ValueError> {
        match transport {
            DnsTransport::Https => {
                let url = reqwest::Url::parse(s)
                    .map_err(|e| ValueError::must(s, "be an https:// URL with transport = \"https\"").because(e))?;
                if url.scheme() != "https" || url.host_str().is_none() {
                    return Err(ValueError::must(s, "be an https:// URL with transport = \"https\""));
                }
                Ok(DnsServer::Url(s.to_string()))
            }
            DnsTransport::Tls => parse_socket_addr(s, Some(853)).map(DnsServer::Addr),
            DnsTransport::Udp | DnsTransport::Tcp => parse_socket_addr(s, Some(53)).map(DnsServer::Addr),
        }
    };
    let mut servers: Vec<DnsServer> = t.parsed(field!(t, server), server)?.into_iter().collect();
    let delegation = match &t.raw.servers {
        Some(value) => match value.get_ref() {
            ServerList::Word(word) if word == "delegation" => Some(roots.clone()),
            ServerList::Word(word) => {
                return Err(t.error(
                    &value.span(),
                    format!("\"servers\": \"{word}\" is not a list of servers or \"delegation\""),
                ));
            }
            ServerList::Servers(_) => None,
        },
        None => None,
    };
    if delegation.is_some() {
        if t.has("server") {
            return Err(t.error_at_key("server", "give \"server\" or servers = \"delegation\", not both"));
        }
        if transport != DnsTransport::Udp {
            return Err(t.error_at_key(
                "transport",
                "servers = \"delegation\" asks the zone's own servers over UDP (TCP when truncated)",
            ));
        }
        if t.bool(field!(t, recursion)) == Some(true) {
            return Err(t.error_at_key(
                "recursion",
                "servers = \"delegation\" asks the zone's own servers directly, without recursion",
            ));
        }
    }
    let listed = match t.raw.servers.as_ref() {
        Some(value) => match value.get_ref() {
            ServerList::Servers(list) => Some((list, value.span())),
            ServerList::Word(_) => None,
        },
        None => None,
    };
    if let Some((list, span)) = listed {
        if !servers.is_empty() {
            return Err(t.error_at_key("servers", "give \"server\" or \"servers\", not both"));
        }
        if list.is_empty() {
            return Err(t.error_at_key("servers", "\"servers\" must name at least one server"));
        }
        for item in list {
            let addr = server(item).map_err(|why| t.error(&span, format!("\"servers\": {why}")))?;
            if servers.contains(&addr) {
                return Err(t.error(&span, format!("\"servers\": {addr} is listed twice")));
            }
            servers.push(addr);
        }
    }
    let encrypted = matches!(transport, DnsTransport::Tls | DnsTransport::Https);
    if encrypted && servers.is_empty() {
        return Err(t.error_at_key("transport", "an encrypted transport needs \"server\" or \"servers\""));
    }
    for key in ["server_name", "ca_file", "system_roots"] {
        if !encrypted && t.has(key) {
            return Err(t.error_at_key(key, format!("\"{key}\" applies to transport = \"tls\" or \"https\" only")));
        }
    }
    let server_name = t.str(field!(t, server_name)).map(|n| n.value.to_string());
    let (ca_file, system_roots) = read_trust(t, field!(t, ca_file), field!(t, system_roots), cx.base)?;
    let require_all = t
        .parsed(field!(t, require), |s| match s {
            "any" => Ok(false),
            "all" => Ok(true),
            other => Err(ValueError::not(other, "\"any\" or \"all\"")),
        })?
        .unwrap_or(false);
    let recursion = t.bool(field!(t, recursion)).unwrap_or(delegation.is_none());
    let authoritative = t.bool(field!(t, authoritative));
    if authoritative == Some(true) && recursion {
        return Err(t.error_at_key("authoritative", "\"authoritative\" applies to recursion = false only"));
    }
    Ok(DnsCheck {
        query: query.value.to_string(),
        record,
        transport,
        servers,
        server_name,
        ca_file,
        system_roots,
        require_all,
        authoritative: !recursion && authoritative.unwrap_or(true),
        recursion,
        expect_rcode,
        expect_answer: t.bool(field!(t, expect_answer)).unwrap_or(true),
        delegation,
        expect_answer_in: read_answer_space(t, record)?,
    })
}

/// `expect_answer_in`: prefixes that A or AAAA answers must fall in.
fn read_answer_space(t: &Table<'_, RawDnsProbe>, record: RecordType) -> Result<Vec<Prefix>, ConfigError> {
    let Some(list) = t.str_list(field!(t, expect_answer_in)) else { return Ok(Vec::new()) };
    if !matches!(record, RecordType::A | RecordType::AAAA) {
        return Err(t.error_at_key("expect_answer_in", "\"expect_answer_in\" applies to record = \"A\" or \"AAAA\""));
    }
    if list.is_empty() {
        return Err(t.error_at_key("expect_answer_in", "\"expect_answer_in\" must name at least one prefix"));
    }
    list.iter()
        .map(|p| p.value.parse::<Prefix>().map_err(|e| t.error(&p.span, format!("\"expect_answer_in\": {e}"))))
        .collect()
}
