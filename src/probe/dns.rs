//! The dns probe: one question to one or several servers, judged on the
//! real exchange.
//!
//! The query is built once with hickory-proto and sent over UDP (TCP when the
//! answer is truncated), TCP, TLS (DoT, RFC 7858) or HTTPS (DoH, RFC 8484)
//! to the configured servers or to the first name server of the system
//! configuration. UDP is our own socket (so a flood of forged or malformed
//! datagrams is counted and ignored); TCP, DoT and DoH go through
//! hickory-net's own clients, one connection per run. Every exchange is
//! one question to one server, never through a caching stub resolver, so
//! each failure keeps its own name: a timeout is not a SERVFAIL is not an
//! NXDOMAIN is not REFUSED; a TLS failure on the way is a `dns_timeout`
//! whose detail says why.
//! Replies that do not parse or do not match the question (ID, exactly our
//! one question) are ignored (as a resolver would) and mentioned in the
//! detail if nothing valid follows. Only records owned by the queried name,
//! or by a name its CNAME chain leads to, count as the answer. A socket the
//! monitor cannot open (out of descriptors) is `probe_resource`, not a
//! failure of the server. Asked without recursion, a server that answers
//! without the AA flag is `dns_not_authoritative` (a middlebox answering
//! for the zone hides an outage). With several `servers` the run passes
//! when any (or, with `require = "all"`, every) server answers as
//! expected; its reason is the worst one seen and the detail names each.
//!
//! With `servers = "delegation"` the servers are the zone's own: the
//! delegation of the name is followed from the roots ([`delegation`]), then
//! every name server found is asked directly (recursion off, AA required),
//! so a public resolver serving stale answers from its cache cannot hide
//! the zone's servers failing. A CNAME into another zone is followed into
//! that zone's delegation. With `expect_answer_in`, an A or AAAA answer
//! outside those prefixes is `dns_inconsistent` (tampering, a hijacked
//! zone, a portal).

mod config;
pub mod delegation;

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use futures_util::StreamExt;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::{DnsHandle, NetError};
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::net::UdpSocket;
use tokio::time::{Instant, timeout_at};

pub use self::config::{DnsCheck, DnsServer, DnsTransport, RCODES, RECORDS, RawDnsProbe, rcode_word};
use self::delegation::{Delegations, WalkError};
use super::kind::{Finding, Layer, Probe, ProbeKind, ReadContext, Reason, RunFuture, Toolkit, is_resource_shortage};
use crate::document::{ConfigError, Table};
use crate::prefix::Prefix;

/// Largest UDP reply we accept (EDNS payload size we advertise).
const UDP_PAYLOAD: u16 = 1232;

impl ProbeKind for DnsCheck {
    const NAME: &'static str = "dns";
    const LAYER: Layer = Layer::Dns;
    const TIMEOUT: Reason = Reason::DnsTimeout;
    type Raw = RawDnsProbe;

    fn read(t: &Table<'_, RawDnsProbe>, cx: &ReadContext<'_>) -> Result<DnsCheck, ConfigError> {
        config::read(t, cx)
    }

    fn target(&self) -> String {
        let servers: Vec<String> = self.servers.iter().map(|s| format!("@{s}")).collect();
        let server = match servers.len() {
            0 if self.delegation.is_some() => " at the zone's own servers (delegation from the roots)".to_string(),
            0 => " via the system resolver".to_string(),
            1 => format!(" {}", servers[0]),
            _ => format!(" {} ({})", servers.join(" "), if self.require_all { "all" } else { "any" }),
        };
        let mode = if self.recursion || self.delegation.is_some() { "" } else { ", no recursion" };
        let space = match self.expect_answer_in.len() {
            0 => String::new(),
            1 => format!(", answers in {}", self.expect_answer_in[0]),
            n => format!(", answers in {} and {} more", self.expect_answer_in[0], n - 1),
        };
        format!("{} {}{server}{mode}{space}", self.query, self.record)
    }

    fn scope(&self) -> String {
        if self.delegation.is_some() {
            return format!("the zone servers of {}", self.query);
        }
        if self.servers.is_empty() {
            return "system resolver".into();
        }
        // The same server set: sorted, so the order written does not matter.
        let mut servers: Vec<String> = self.servers.iter().map(ToString::to_string).collect();
        servers.sort();
        servers.join("+")
    }

    fn build(check: &std::sync::Arc<DnsCheck>, timeout: Duration, tools: &Toolkit) -> Box<dyn Probe> {
        Box::new(DnsProbe::new(check.clone(), timeout, tools.system_resolver))
    }
}

/// The first name server of the system resolver configuration, if any.
pub fn system_resolver() -> Option<SocketAddr> {
    let (config, _) = hickory_resolver::system_conf::read_system_conf().ok()?;
    config.name_servers().first().map(|ns| SocketAddr::new(ns.ip, 53))
}

/// Why an exchange produced no usable reply.
struct Failure {
    reason: Reason,
    why: String,
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        Failure { reason: Reason::DnsTimeout, why }
    }
}

/// An I/O error of ours: `probe_resource` when the monitor is short of
/// descriptors or memory, else no answer.
fn io_failure(what: &str, e: &std::io::Error) -> Failure {
    let reason = if is_resource_shortage(e) { Reason::ProbeResource } else { Reason::DnsTimeout };
    Failure { reason, why: format!("{what}: {e}") }
}

/// hickory-net's refusal, named after the step it stopped at (`TLS`,
/// `TCP`, `HTTPS`).
fn net_failure(step: &str, e: &NetError) -> Failure {
    match e {
        NetError::Io(io) => io_failure(&format!("{step} failed"), io),
        NetError::Timeout => Failure::from(format!("{step}: no answer within the timeout")),
        other => Failure::from(format!("{step} failed: {}", crate::error_text::root_cause(other))),
    }
}

/// Most CNAMEs followed inside one answer.
const MAX_CNAME_CHAIN: usize = 16;

/// A configured dns probe, with its query pre-encoded.
pub struct DnsProbe {
    check: std::sync::Arc<DnsCheck>,
    timeout: Duration,
    /// The servers asked; empty when none is configured and the system has none.
    servers: Vec<DnsServer>,
    /// DoT and DoH: the TLS client configuration (or why there is none).
    tls: Option<Result<std::sync::Arc<rustls::ClientConfig>, super::tls::TlsSetupError>>,
    name: Name,
    record: RecordType,
    /// The encoded query; bytes 0..2 (the ID) are replaced on every run.
    query: Vec<u8>,
    /// `servers = "delegation"`: the walker and its referral cache, kept
    /// across runs.
    delegations: Option<Delegations>,
}

impl DnsProbe {
    /// Prepares the probe; `system` is used when the check names no server.
    pub fn new(check: impl Into<std::sync::Arc<DnsCheck>>, timeout: Duration, system: Option<SocketAddr>) -> DnsProbe {
        let check = check.into();
        let mut name = Name::from_utf8(&check.query).expect("the query was checked to be a domain name at load");
        name.set_fqdn(true);
        let record = check.record;
        let mut message = Message::query();
        message.metadata.recursion_desired = check.recursion;
        message.add_query(Query::query(name.clone(), record));
        let mut edns = Edns::new();
        edns.set_max_payload(UDP_PAYLOAD);
        message.set_edns(edns);
        // Encoding a query we built from a validated name cannot fail; an
        // empty query would only make every run time out, never panic.
        let mut query = message.to_vec().unwrap_or_default();
        // The encoder's buffer starts at 512 bytes; a query is ~40, and a
        // probe keeps it for life.
        query.shrink_to_fit();
        let servers = if check.servers.is_empty() {
            system.into_iter().map(DnsServer::Addr).collect()
        } else {
            check.servers.clone()
        };
        let alpn: &[String] = match check.transport {
            DnsTransport::Https => &["h2".into()],
            _ => &[],
        };
        let tls = matches!(check.transport, DnsTransport::Tls | DnsTransport::Https).then(|| {
            super::tls::client_config(check.ca_file.as_deref(), check.system_roots, alpn).map(std::sync::Arc::new)
        });
        let delegations = check.delegation.as_ref().map(|roots| Delegations::new(roots.to_vec()));
        DnsProbe { check, timeout, servers, tls, name, record, query, delegations }
    }

    async fn exchange(&self, server: &DnsServer) -> Finding {
        self.exchange_with(server, &server.to_string(), false, Instant::now() + self.timeout).await.0
    }

    /// Asks `server` (shown as `label`) before `deadline`: the finding and,
    /// with `follow` (a delegation probe), the target of a CNAME chain the
    /// server holds no records for (to be followed into its zone).
    async fn exchange_with(
        &self,
        server: &DnsServer,
        label: &str,
        follow: bool,
        deadline: Instant,
    ) -> (Finding, Option<Name>) {
        let id = random_id();
        let mut query = self.query.clone();
        if query.len() >= 2 {
            query[..2].copy_from_slice(&id.to_be_bytes());
        }
        let addr = match (server, self.check.transport) {
            (DnsServer::Addr(addr), DnsTransport::Udp) => *addr,
            (_, transport) => {
                return match timeout_at(deadline, self.over_stream(server, transport)).await {
                    Ok(Ok(reply)) => self.judge_in(label, follow, &reply),
                    Ok(Err(failure)) => (self.no_answer(label, failure), None),
                    Err(_) => {
                        let why = format!("no answer within {}", humantime::format_duration(self.timeout));
                        (self.no_answer(label, why.into()), None)
                    }
                };
            }
        };
        let server = &DnsServer::Addr(addr);
        let mut ignored = 0usize;
        let reply = match timeout_at(deadline, self.udp(addr, &query, id, &mut ignored)).await {
            Ok(Ok(reply)) if reply.metadata.truncation => {
                match timeout_at(deadline, self.over_stream(server, DnsTransport::Tcp)).await {
                    Ok(Ok(reply)) => reply,
                    Ok(Err(failure)) => return (self.no_answer(label, failure), None),
                    Err(_) => {
                        let why = "no answer over TCP after a truncated UDP reply".to_string().into();
                        return (self.no_answer(label, why), None);
                    }
                }
            }
            Ok(Ok(reply)) => reply,
            Ok(Err(failure)) => return (self.no_answer(label, failure), None),
            Err(_) => {
                let why = match ignored {
                    0 => format!("no answer within {}", humantime::format_duration(self.timeout)),
                    n => format!(
                        "no valid answer within {} ({n} malformed or mismatched replies ignored)",
                        humantime::format_duration(self.timeout)
                    ),
                };
                return (self.no_answer(label, why.into()), None);
            }
        };
        self.judge_in(label, follow, &reply)
    }

    fn no_answer(&self, label: &str, failure: Failure) -> Finding {
        Finding::fail(failure.reason, format!("{} {} @{label}: {}", self.check.query, self.check.record, failure.why))
    }

    async fn udp(&self, server: SocketAddr, query: &[u8], id: u16, ignored: &mut usize) -> Result<Message, Failure> {
        let local: SocketAddr =
            if server.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
        let socket = UdpSocket::bind(local).await.map_err(|e| io_failure("cannot open a UDP socket", &e))?;
        socket.connect(server).await.map_err(|e| io_failure("cannot reach the server", &e))?;
        socket.send(query).await.map_err(|e| io_failure("cannot send the query", &e))?;
        let mut buf = vec![0u8; usize::from(UDP_PAYLOAD) + 512];
        loop {
            let n = match socket.recv(&mut buf).await {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err("server unreachable (nothing listens on that port)".to_string().into());
                }
                Err(e) => return Err(io_failure("receive failed", &e)),
            };
            match Message::from_vec(&buf[..n]) {
                Ok(reply) if self.answers(&reply, id) => return Ok(reply),
                _ => *ignored += 1,
            }
        }
    }

    /// One exchange through hickory-net's client for `transport` (TCP,
    /// DoT, DoH): a connection of its own, one question, the reply.
    async fn over_stream(&self, server: &DnsServer, transport: DnsTransport) -> Result<Message, Failure> {
        // The provider's handle owns the exchange's background task (a
        // JoinSet): held until the reply is in, dropped with the connection.
        let provider = TokioRuntimeProvider::default();
        let _background = provider.clone();
        let tls = || match &self.tls {
            Some(Ok(config)) => Ok(config.clone()),
            Some(Err(why)) => Err(Failure::from(why.to_string())),
            None => Err(Failure::from("no TLS client".to_string())),
        };
        match (server, transport) {
            (DnsServer::Addr(addr), DnsTransport::Tls) => {
                let name = match &self.check.server_name {
                    Some(name) => rustls::pki_types::ServerName::try_from(name.clone())
                        .map_err(|e| Failure::from(format!("bad server_name: {e}")))?,
                    None => rustls::pki_types::ServerName::IpAddress(addr.ip().into()),
                };
                let config = (*tls()?).clone();
                let exchange = hickory_net::tls::tls_exchange(*addr, name, config, self.timeout, Some(1), provider)
                    .await
                    .map_err(|e| net_failure("TLS", &e))?;
                self.ask(exchange, "TLS").await
            }
            (DnsServer::Addr(addr), _) => {
                let exchange =
                    hickory_net::tcp::TcpClientStream::exchange(*addr, None, self.timeout, Some(1), provider)
                        .await
                        .map_err(|e| net_failure("TCP", &e))?;
                self.ask(exchange, "TCP").await
            }
            (DnsServer::Url(url), _) => {
                let parsed = reqwest::Url::parse(url).map_err(|e| Failure::from(format!("bad URL: {e}")))?;
                let host = parsed.host_str().unwrap_or_default().trim_matches(['[', ']']).to_string();
                let port = parsed.port_or_known_default().unwrap_or(443);
                let addr = tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map_err(|e| io_failure(&format!("cannot resolve {host}"), &e))?
                    .next()
                    .ok_or_else(|| Failure::from(format!("{host} has no address")))?;
                let mut builder = hickory_net::h2::HttpsClientStream::builder(tls()?, provider);
                builder.request_timeout(self.timeout);
                let name = self.check.server_name.clone().unwrap_or(host);
                let exchange = builder
                    .exchange(addr, name.into(), parsed.path().into())
                    .await
                    .map_err(|e| net_failure("HTTPS", &e))?;
                self.ask(exchange, "HTTPS").await
            }
        }
    }

    /// Sends our question through `handle` (which gives it its own ID and
    /// matches the reply to it): the reply, if it answers our question.
    async fn ask(&self, handle: impl DnsHandle, step: &str) -> Result<Message, Failure> {
        let message = Message::from_vec(&self.query).map_err(|e| Failure::from(format!("bad query: {e}")))?;
        let mut options = DnsRequestOptions::default();
        options.use_edns = true;
        let mut replies = handle.send(DnsRequest::new(message, options));
        match replies.next().await {
            Some(Ok(reply)) => {
                let reply = reply.into_message();
                if self.asks_our_question(&reply) {
                    Ok(reply)
                } else {
                    Err("the reply does not match the question".to_string().into())
                }
            }
            Some(Err(e)) => Err(net_failure(step, &e)),
            None => Err(format!("{step}: the connection closed without an answer").into()),
        }
    }

    /// Judges a raw reply as if `server` had sent it for query `id`: what the
    /// probe makes of any bytes (the entry point of the fuzzer).
    pub fn judge_bytes(&self, server: &DnsServer, bytes: &[u8], id: u16) -> Option<Finding> {
        let reply = Message::from_vec(bytes).ok()?;
        self.answers(&reply, id).then(|| self.judge_in(&server.to_string(), false, &reply).0)
    }

    /// True when `reply` is a response to our query: our ID, and exactly our
    /// one question (a reply without a question proves nothing).
    fn answers(&self, reply: &Message, id: u16) -> bool {
        reply.metadata.id == id && self.asks_our_question(reply)
    }

    /// True when `reply` is a response carrying exactly our one question.
    fn asks_our_question(&self, reply: &Message) -> bool {
        reply.metadata.message_type == MessageType::Response
            && reply.queries.len() == 1
            && reply.queries.iter().all(|q| q.query_type == self.record && q.name == self.name)
    }

    /// The queried name and every name its CNAME chain in `reply` leads to.
    fn owners(&self, reply: &Message) -> Vec<Name> {
        let mut owners = vec![self.name.clone()];
        while owners.len() <= MAX_CNAME_CHAIN {
            let next = reply.answers.iter().find_map(|r| match &r.data {
                hickory_proto::rr::RData::CNAME(target) if owners.contains(&r.name) && !owners.contains(&target.0) => {
                    Some(target.0.clone())
                }
                _ => None,
            });
            match next {
                Some(name) => owners.push(name),
                None => break,
            }
        }
        owners
    }

    /// Judges `reply` from the server shown as `label`; with `follow` (a
    /// delegation probe), a CNAME chain that ends without a record of the
    /// asked type is an answer whose target is returned, to be asked at its
    /// own zone's servers.
    fn judge_in(&self, label: &str, follow: bool, reply: &Message) -> (Finding, Option<Name>) {
        let target = if follow { self.chain_end(reply) } else { None };
        (self.judge(label, target.as_ref(), reply), target)
    }

    /// The end of the CNAME chain in `reply` when the reply holds no record
    /// of the asked type for the chain: the target lies in another zone, or
    /// in one delegated below the zone asked (`c10r.facebook.com` under
    /// `facebook.com`), whose own servers hold its records. Where the zone
    /// asked does hold the target, its servers then answer for it directly.
    fn chain_end(&self, reply: &Message) -> Option<Name> {
        let owners = self.owners(reply);
        let last = owners.last().filter(|name| **name != self.name)?;
        let answered = reply.answers.iter().any(|r| r.record_type() == self.record && owners.contains(&r.name));
        (!answered).then(|| last.clone())
    }

    fn judge(&self, label: &str, cname_target: Option<&Name>, reply: &Message) -> Finding {
        let rcode = reply.metadata.response_code;
        let what = format!("{} {} @{label}", self.check.query, self.check.record);
        let expected = self.check.expect_rcode;
        if u16::from(rcode) != u16::from(expected) {
            let reason = match rcode {
                ResponseCode::ServFail => Reason::DnsServfail,
                ResponseCode::NXDomain => Reason::DnsNxdomain,
                ResponseCode::Refused => Reason::DnsRefused,
                _ => Reason::DnsUnexpectedRcode,
            };
            let reason = if expected != ResponseCode::NoError { Reason::DnsUnexpectedRcode } else { reason };
            return Finding::fail(reason, format!("{what}: {} (expected {})", rcode_word(rcode), rcode_word(expected)));
        }
        if self.check.authoritative && !reply.metadata.authoritative {
            return Finding::fail(
                Reason::DnsNotAuthoritative,
                format!("{what}: {} without the AA flag: not an answer from the zone's own server", rcode_word(rcode)),
            );
        }
        if let Some(target) = cname_target {
            return Finding::ok(format!(
                "{what}: {}, CNAME to {target} (asked at its zone's servers)",
                rcode_word(rcode)
            ));
        }
        let owners = self.owners(reply);
        let of_type = reply.answers.iter().filter(|r| r.record_type() == self.record);
        let matching = of_type.clone().filter(|r| owners.contains(&r.name));
        let count = matching.clone().count();
        if let Some(outside) = self.outside_answer_space(matching.clone()) {
            return Finding::fail(
                Reason::DnsInconsistent,
                format!(
                    "{what}: answered {outside}, outside expect_answer_in ({}): not the platform's address space",
                    self.check.expect_answer_in.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ),
            );
        }
        if self.check.expect_answer && count == 0 {
            let foreign = of_type.count();
            let note = match foreign {
                0 => String::new(),
                n => format!(" ({n} owned by another name, ignored)"),
            };
            return Finding::fail(
                Reason::DnsNoAnswer,
                format!("{what}: {} without any {} record{note}", rcode_word(rcode), self.check.record),
            );
        }
        let mut shown = matching.take(3).map(|r| r.data.to_string()).collect::<Vec<_>>().join(", ");
        if count > 3 {
            shown.push_str(", ...");
        }
        let detail = match count {
            0 => format!("{what}: {}", rcode_word(rcode)),
            n => format!("{what}: {}, {n} {} ({shown})", rcode_word(rcode), self.check.record),
        };
        Finding::ok(detail)
    }
}

impl DnsProbe {
    /// The first A or AAAA answer outside `expect_answer_in`, if any.
    fn outside_answer_space<'r>(&self, answers: impl Iterator<Item = &'r hickory_proto::rr::Record>) -> Option<IpAddr> {
        if self.check.expect_answer_in.is_empty() {
            return None;
        }
        answers
            .filter_map(|r| match &r.data {
                hickory_proto::rr::RData::A(a) => Some(IpAddr::V4(a.0)),
                hickory_proto::rr::RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })
            .find(|ip| {
                let host = Prefix::new(*ip, if ip.is_ipv4() { 32 } else { 128 });
                !host.is_some_and(|host| self.check.expect_answer_in.iter().any(|p| p.covers(&host)))
            })
    }

    /// One run of a delegation probe: the name's zone found from the roots,
    /// each of its servers asked; a CNAME leaving the zone followed into
    /// the target's zone, at most [`MAX_CNAME_CHAIN`] times.
    async fn run_delegation(&self, delegations: &Delegations) -> Finding {
        let deadline = Instant::now() + self.timeout;
        // After a CNAME, a probe for the target (the walker stays ours).
        let mut followed: Option<DnsProbe> = None;
        let mut before = Vec::new();
        for _ in 0..=MAX_CNAME_CHAIN {
            let hop = followed.as_ref().unwrap_or(self);
            let walk = match delegations.find(&hop.name, deadline).await {
                Ok(walk) => walk,
                Err(e) => {
                    let reason = match e {
                        WalkError::Timeout(_) => Reason::DnsTimeout,
                        WalkError::NxDomain(_) => Reason::DnsNxdomain,
                        WalkError::ServFail(_) | WalkError::Loop(_) | WalkError::TooLong(_) => Reason::DnsServfail,
                    };
                    before.push(format!("{}: delegation not found: {e}", hop.check.query));
                    return Finding::fail(reason, before.join("; "));
                }
            };
            let zone = &walk.cut.zone;
            let asked = walk.cut.servers.iter().map(|ns| {
                let label = format!("{} ({})", shown(&ns.name), ns.addr);
                async move { hop.exchange_with(&DnsServer::Addr(ns.addr), &label, true, deadline).await }
            });
            let results = futures_util::future::join_all(asked).await;
            let next = results.iter().find_map(|(_, target)| target.clone());
            let findings: Vec<Finding> = results.into_iter().map(|(finding, _)| finding).collect();
            let count = findings.len();
            let mut finding = combine(findings, self.check.require_all);
            finding.detail = format!(
                "zone {} ({} server address{}): {}",
                shown(zone),
                count,
                if count == 1 { "" } else { "es" },
                finding.detail
            );
            match next {
                Some(target) if finding.result.is_ok() => {
                    before.push(finding.detail);
                    followed = Some(hop.for_name(&target));
                }
                _ => {
                    before.push(finding.detail);
                    return Finding { detail: before.join("; "), ..finding };
                }
            }
        }
        Finding::fail(
            Reason::DnsServfail,
            format!("{}; a CNAME chain longer than {MAX_CNAME_CHAIN}", before.join("; ")),
        )
    }

    /// The same probe asking for `name` (a CNAME target), without a walker
    /// of its own: the original keeps the referral cache.
    fn for_name(&self, name: &Name) -> DnsProbe {
        let check = DnsCheck { query: shown(name), delegation: None, ..(*self.check).clone() };
        DnsProbe::new(check, self.timeout, None)
    }
}

/// A name without its trailing dot, as the config writes it.
fn shown(name: &Name) -> String {
    let text = name.to_string();
    match text.strip_suffix('.') {
        Some(bare) if !bare.is_empty() => bare.to_string(),
        _ => text,
    }
}

/// An unpredictable query ID (RFC 5452: IDs must not be guessable).
fn random_id() -> u16 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::hash::RandomState::new().hash_one(n) as u16
}

/// How bad a failure is, when several servers disagree (README):
/// nxdomain > servfail > inconsistent > no_answer > not_authoritative >
/// unexpected_rcode > refused > timeout. `probe_resource` ranks last: it
/// says nothing.
fn severity(reason: Reason) -> u8 {
    match reason {
        Reason::DnsNxdomain => 9,
        Reason::DnsServfail => 8,
        Reason::DnsInconsistent => 6,
        Reason::DnsNoAnswer => 5,
        Reason::DnsNotAuthoritative => 4,
        Reason::DnsUnexpectedRcode => 3,
        Reason::DnsRefused => 2,
        Reason::DnsTimeout => 1,
        _ => 0,
    }
}

/// One run's finding from each server's.
fn combine(findings: Vec<Finding>, require_all: bool) -> Finding {
    if findings.len() == 1 {
        return findings.into_iter().next().expect("one finding");
    }
    let passed = findings.iter().filter(|f| f.result.is_ok()).count();
    let ok = if require_all { passed == findings.len() } else { passed > 0 };
    let detail = findings.iter().map(|f| f.detail.as_str()).collect::<Vec<_>>().join("; ");
    if ok {
        return Finding::ok(detail);
    }
    let worst =
        findings.iter().filter_map(|f| f.result.err()).max_by_key(|r| severity(*r)).unwrap_or(Reason::DnsTimeout);
    Finding::fail(worst, detail)
}

impl Probe for DnsProbe {
    fn run(&self) -> RunFuture<'_> {
        Box::pin(async move {
            if let Some(delegations) = &self.delegations {
                return self.run_delegation(delegations).await;
            }
            if self.servers.is_empty() {
                return Finding::fail(
                    Reason::DnsTimeout,
                    format!("{}: no system resolver is configured (/etc/resolv.conf)", self.check.query),
                );
            }
            let findings = futures_util::future::join_all(self.servers.iter().map(|s| self.exchange(s))).await;
            combine(findings, self.check.require_all)
        })
    }
}
