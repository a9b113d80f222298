//! Delegation walker for `servers = "delegation"` DNS probes (SPEC 9.4).
//!
//! Follows the referrals from the root servers down to the zone that holds a name, as
//! `dig +trace` does: at every level the name is asked (type NS, recursion off) at the servers of
//! the closest known zone, and a referral to a closer zone moves the walk one level down. The
//! result is the zone's cut: the zone and every one of its own name servers with an address, so
//! that the probe can then ask each of them directly.
//!
//! Glue is trusted only when the name server's name lies within the zone that was asked (the
//! parent); any other name server name is resolved through the same walker. Cuts are cached per
//! zone for their NS TTL (at most one day) and a walk starts from the closest cached cut.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};

/// Longest wait for one reply (further capped by the time left before the deadline).
const QUERY_TIMEOUT: Duration = Duration::from_millis(800);
/// EDNS UDP payload size advertised in every query.
const EDNS_PAYLOAD: u16 = 1232;
/// Most referrals followed in one chain from the starting cut to the zone.
const MAX_REFERRALS: usize = 16;
/// Most queries sent in one `find`, name server lookups included.
const MAX_QUERIES: usize = 64;
/// Most nested name server lookups (a lookup needed by a lookup …).
const MAX_DEPTH: usize = 4;
/// Longest a cut is cached, whatever its TTL.
const MAX_CACHE_TTL: u32 = 86_400;

/// A zone cut: a zone and its name servers with addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// The zone (FQDN).
    pub zone: Name,
    /// The zone's name servers, one entry per address.
    pub servers: Vec<NameServer>,
}

/// One address of one name server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameServer {
    /// The server's name (the root for configured root servers, whose names are not known).
    pub name: Name,
    /// The address to ask (port included).
    pub addr: SocketAddr,
}

impl fmt::Display for NameServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = if self.addr.port() == 53 { self.addr.ip().to_string() } else { self.addr.to_string() };
        if self.name.is_root() { write!(f, "{addr}") } else { write!(f, "{} ({addr})", self.name) }
    }
}

/// Where the walk ended.
#[derive(Debug)]
pub struct Walk {
    /// The zone that holds the name, with its own name servers.
    pub cut: Cut,
    /// Queries sent in this walk (0 when all came from cache).
    pub queries: usize,
    /// One line per step, for the probe's detail, e.g.
    /// `127.0.1.1 → test. via ns.test. (127.0.1.2)`.
    pub trace: Vec<String>,
}

/// Why a walk found no cut.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WalkError {
    /// No parent server answered in time (→ dns_timeout). Message names who was asked.
    #[error("{0}")]
    Timeout(String),
    /// A parent answered NXDOMAIN for the name / the zone (→ dns_nxdomain).
    #[error("{0}")]
    NxDomain(String),
    /// Parents answered, but only SERVFAIL/REFUSED/lame answers (→ dns_servfail).
    #[error("{0}")]
    ServFail(String),
    /// A referral that does not lead closer to the name (loop) (→ dns_servfail).
    #[error("{0}")]
    Loop(String),
    /// The walk needed more than the bound (referrals or queries) (→ dns_servfail).
    #[error("{0}")]
    TooLong(String),
}

/// The referral walker with its cache; one per probe, shared by its runs.
pub struct Delegations {
    roots: Vec<SocketAddr>,
    /// Keyed by zone (referral and apex cuts) or by a looked-up name (the cut that holds it).
    cache: Mutex<HashMap<Name, (Cut, Instant)>>,
}

/// State of one `find`, shared by the nested name server lookups.
struct Ctx {
    deadline: Instant,
    queries: usize,
    trace: Vec<String>,
    /// Name server names being looked up (cycle guard and depth).
    resolving: Vec<Name>,
}

/// What the servers of the zone being asked said about the name.
enum Step {
    /// Go down to `zone`.
    Referral { zone: Name, ns: Vec<Name>, glue: Vec<(Name, IpAddr)>, ttl: u32 },
    /// NS records for the asked name itself: it is a zone apex.
    Apex { ns: Vec<Name>, glue: Vec<(Name, IpAddr)>, ttl: u32 },
    /// The zone being asked holds the name.
    Holds { ttl: u32 },
    /// A SOA shows that a zone between the one asked and the name holds it (same servers).
    Inner(Name),
}

/// How one server's reply was judged.
enum Verdict<T> {
    Good(T),
    Fatal(WalkError),
    Lame(String),
    Upward(String),
}

/// Why one query got no reply.
enum QueryError {
    /// No (matching) reply in time, or the server could not be reached.
    NoReply(String),
    /// The query bound was reached.
    TooLong,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Delegations {
    /// `roots`: addresses of the root servers (port included).
    pub fn new(roots: Vec<SocketAddr>) -> Delegations {
        Delegations { roots, cache: Mutex::new(HashMap::new()) }
    }

    /// Follows the delegation of `name` (an FQDN) from the closest cached cut (or the roots) down to the zone that
    /// holds it, before `deadline`. The returned cut's servers are the zone's own name servers, every one with an
    /// address (one entry per address).
    pub async fn find(&self, name: &Name, deadline: Instant) -> Result<Walk, WalkError> {
        let mut name = name.to_lowercase();
        name.set_fqdn(true);
        let mut ctx = Ctx { deadline, queries: 0, trace: Vec::new(), resolving: Vec::new() };
        let cut = self.walk(&name, &mut ctx).await?;
        Ok(Walk { cut, queries: ctx.queries, trace: ctx.trace })
    }

    fn root_cut(&self) -> Cut {
        Cut {
            zone: Name::root(),
            servers: self.roots.iter().map(|&addr| NameServer { name: Name::root(), addr }).collect(),
        }
    }

    /// The cached entry closest to `name` (deepest ancestor-or-self), with whether it is for `name` itself.
    fn cached(&self, name: &Name) -> Option<(Cut, Instant, bool)> {
        let now = Instant::now();
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let labels = name.iter().count();
        (0..=labels).rev().find_map(|n| {
            let key = name.trim_to(n);
            match cache.get(&key) {
                Some((cut, exp)) if *exp > now => Some((cut.clone(), *exp, n == labels)),
                _ => None,
            }
        })
    }

    /// Caches `cut` under `key` for `ttl` seconds (at most a day, never beyond `cap`); returns the expiry.
    fn store(&self, key: &Name, cut: &Cut, ttl: u32, cap: Option<Instant>) -> Instant {
        let now = Instant::now();
        let mut exp = now + Duration::from_secs(u64::from(ttl.min(MAX_CACHE_TTL)));
        if let Some(cap) = cap {
            exp = exp.min(cap);
        }
        if exp > now && !cut.servers.is_empty() {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.retain(|_, (_, e)| *e > now);
            cache.insert(key.clone(), (cut.clone(), exp));
        }
        exp
    }

    /// Walks from the closest cached cut (or the roots) to the cut that holds `name`.
    fn walk<'a>(&'a self, name: &'a Name, ctx: &'a mut Ctx) -> BoxFuture<'a, Result<Cut, WalkError>> {
        Box::pin(async move {
            let (mut current, mut expiry) = match self.cached(name) {
                Some((cut, _, true)) => {
                    ctx.trace.push(format!("{name} is in {} (cached)", cut.zone));
                    return Ok(cut);
                }
                Some((cut, exp, false)) => {
                    ctx.trace.push(format!("{name}: starting at {} (cached)", cut.zone));
                    (cut, Some(exp))
                }
                None => {
                    if self.roots.is_empty() {
                        return Err(WalkError::ServFail("no root servers configured".into()));
                    }
                    (self.root_cut(), None)
                }
            };
            let mut qname = name.clone();
            let mut referrals = 0;
            loop {
                let zone = current.zone.clone();
                let asked = qname.clone();
                let (from, step) =
                    self.ask(&current, &qname, RecordType::NS, ctx, |msg| judge_ns(&zone, &asked, msg)).await?;
                match step {
                    Step::Referral { zone, ns, glue, ttl } => {
                        referrals += 1;
                        if referrals > MAX_REFERRALS {
                            return Err(WalkError::TooLong(format!(
                                "more than {MAX_REFERRALS} referrals on the way to {name} (last: {zone} from {from})"
                            )));
                        }
                        let servers = self.addresses(&zone, &ns, &glue, ctx).await?;
                        let cut = Cut { zone, servers };
                        ctx.trace.push(format!("{from} → {} via {}", cut.zone, list(&cut.servers)));
                        expiry = Some(self.store(&cut.zone, &cut, ttl, None));
                        current = cut;
                    }
                    Step::Apex { ns, glue, ttl } => {
                        let servers = self.addresses(&qname, &ns, &glue, ctx).await?;
                        let cut = Cut { zone: qname.clone(), servers };
                        ctx.trace.push(format!("{from} → {} is a zone: {}", cut.zone, list(&cut.servers)));
                        let exp = self.store(&cut.zone, &cut, ttl, None);
                        if qname != *name {
                            self.store(name, &cut, ttl, Some(exp));
                        }
                        return Ok(cut);
                    }
                    Step::Holds { ttl } => {
                        ctx.trace.push(format!("{from} → {name} is in {} (authoritative)", current.zone));
                        self.store(name, &current, ttl, expiry);
                        return Ok(current);
                    }
                    Step::Inner(zone) => {
                        if qname != *name {
                            // Already asked for the inner zone's NS: do not go round again.
                            ctx.trace.push(format!("{from} → {name} is in {} (authoritative)", current.zone));
                            return Ok(current);
                        }
                        ctx.trace.push(format!("{from} → {name} is in {zone}, asking for its NS"));
                        qname = zone;
                    }
                }
            }
        })
    }

    /// Addresses for the name servers `ns` of `zone`: the trusted glue, else a lookup through the walker.
    async fn addresses(
        &self,
        zone: &Name,
        ns: &[Name],
        glue: &[(Name, IpAddr)],
        ctx: &mut Ctx,
    ) -> Result<Vec<NameServer>, WalkError> {
        let mut servers = Vec::new();
        let mut failures = Vec::new();
        let mut all_timeouts = true;
        for n in ns {
            let glued: Vec<IpAddr> = glue.iter().filter(|(g, _)| g == n).map(|(_, ip)| *ip).collect();
            let ips = if !glued.is_empty() {
                glued
            } else {
                match self.lookup_ns(n, ctx).await {
                    Ok(ips) if !ips.is_empty() => {
                        ctx.trace.push(format!("{n} (for {zone}) → {}", ips_list(&ips)));
                        ips
                    }
                    Ok(_) => {
                        ctx.trace.push(format!("{n} (for {zone}) has no address"));
                        failures.push(format!("{n}: no address"));
                        all_timeouts = false;
                        continue;
                    }
                    Err(WalkError::TooLong(m)) => return Err(WalkError::TooLong(m)),
                    Err(e) => {
                        ctx.trace.push(format!("{n} (for {zone}): {e}"));
                        all_timeouts &= matches!(e, WalkError::Timeout(_));
                        failures.push(format!("{n}: {e}"));
                        continue;
                    }
                }
            };
            for ip in ips {
                servers.push(NameServer { name: n.clone(), addr: SocketAddr::new(ip, 53) });
            }
        }
        if !servers.is_empty() {
            return Ok(servers);
        }
        let msg = format!("no address for any name server of {zone}: {}", failures.join("; "));
        if all_timeouts && !failures.is_empty() { Err(WalkError::Timeout(msg)) } else { Err(WalkError::ServFail(msg)) }
    }

    /// The A and AAAA addresses of a name server name, asked at its own zone's servers.
    async fn lookup_ns(&self, n: &Name, ctx: &mut Ctx) -> Result<Vec<IpAddr>, WalkError> {
        if ctx.resolving.contains(n) {
            return Err(WalkError::ServFail(format!("{n} needs itself to be found (cycle)")));
        }
        if ctx.resolving.len() >= MAX_DEPTH {
            return Err(WalkError::ServFail(format!("{n}: name server lookups nested more than {MAX_DEPTH} deep")));
        }
        ctx.resolving.push(n.clone());
        let result = self.lookup_ns_inner(n, ctx).await;
        ctx.resolving.pop();
        result
    }

    async fn lookup_ns_inner(&self, n: &Name, ctx: &mut Ctx) -> Result<Vec<IpAddr>, WalkError> {
        let cut = self.walk(n, ctx).await?;
        let (_, mut ips) = self.ask(&cut, n, RecordType::A, ctx, |msg| judge_addr(n, msg)).await?;
        match self.ask(&cut, n, RecordType::AAAA, ctx, |msg| judge_addr(n, msg)).await {
            Ok((_, v6)) => ips.extend(v6),
            Err(WalkError::TooLong(m)) => return Err(WalkError::TooLong(m)),
            Err(_) => {}
        }
        Ok(ips)
    }

    /// Asks the servers of `cut` in order until one gives a reply that `judge` accepts; returns who and what.
    async fn ask<T>(
        &self,
        cut: &Cut,
        qname: &Name,
        qtype: RecordType,
        ctx: &mut Ctx,
        judge: impl Fn(&Message) -> Verdict<T>,
    ) -> Result<(String, T), WalkError> {
        let mut failures: Vec<String> = Vec::new();
        let (mut lame, mut upward) = (false, None);
        for server in &cut.servers {
            if Instant::now() >= ctx.deadline {
                failures.push("deadline reached".into());
                break;
            }
            let outcome = match query(server.addr, qname, qtype, ctx).await {
                Err(QueryError::TooLong) => {
                    return Err(WalkError::TooLong(format!(
                        "more than {MAX_QUERIES} queries needed for the walk (at {qname} {qtype})"
                    )));
                }
                Err(QueryError::NoReply(why)) => why,
                Ok(msg) => match judge(&msg) {
                    Verdict::Good(t) => return Ok((server.to_string(), t)),
                    Verdict::Fatal(WalkError::NxDomain(m)) => {
                        return Err(WalkError::NxDomain(format!("{m} ({server})")));
                    }
                    Verdict::Fatal(e) => return Err(e),
                    Verdict::Lame(why) => {
                        lame = true;
                        why
                    }
                    Verdict::Upward(why) => {
                        upward.get_or_insert_with(|| format!("{server} {why}"));
                        why
                    }
                },
            };
            ctx.trace.push(format!("{server}: {outcome} (asked {qname} {qtype})"));
            failures.push(format!("{server} {outcome}"));
        }
        let who =
            if cut.zone.is_root() { "the root servers".to_string() } else { format!("the servers of {}", cut.zone) };
        if let Some(why) = upward {
            return Err(WalkError::Loop(format!("referral loop for {qname}: {why}")));
        }
        if cut.servers.is_empty() {
            return Err(WalkError::ServFail(format!("{who} have no address")));
        }
        let failures = failures.join(", ");
        if lame {
            Err(WalkError::ServFail(format!("{qname} {qtype}: no usable answer from {who}: {failures}")))
        } else {
            Err(WalkError::Timeout(format!("{qname} {qtype}: no answer from {who}: {failures}")))
        }
    }
}

/// Judges a reply to `qname NS` sent to the servers of `zone`.
fn judge_ns(zone: &Name, qname: &Name, msg: &Message) -> Verdict<Step> {
    let aa = msg.metadata.authoritative;
    match msg.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain if aa => {
            return Verdict::Fatal(WalkError::NxDomain(format!("{zone} servers answer NXDOMAIN for {qname}")));
        }
        ResponseCode::NXDomain => return Verdict::Lame("answered NXDOMAIN without AA".into()),
        rc => return Verdict::Lame(format!("answered {}", super::config::rcode_word(rc))),
    }
    let ns_answer = ns_targets(&msg.answers, qname);
    if !ns_answer.is_empty() {
        // A cut at the asked name itself (its apex NS set).
        let (ns, ttl) = ns_answer.into_iter().unzip::<_, _, Vec<_>, Vec<_>>();
        let glue = glue(zone, &ns, msg);
        return Verdict::Good(Step::Apex { ttl: ttl.into_iter().min().unwrap_or(0), ns, glue });
    }
    if !msg.answers.is_empty() {
        return if aa { Verdict::Good(Step::Holds { ttl: min_ttl(msg) }) } else { lame_answer() };
    }
    if let Some(soa) = msg.authorities.iter().find(|r| r.record_type() == RecordType::SOA) {
        // NODATA: the zone named by the SOA holds the name.
        let owner = &soa.name;
        if !(zone.zone_of(owner) && owner.zone_of(qname)) {
            return Verdict::Lame(format!("answered with the SOA of {owner}, outside {zone}"));
        }
        return if owner == zone || owner == qname {
            Verdict::Good(Step::Holds { ttl: min_ttl(msg) })
        } else {
            Verdict::Good(Step::Inner(owner.to_lowercase()))
        };
    }
    if let Some(first) = msg.authorities.iter().find(|r| r.record_type() == RecordType::NS) {
        let child = first.name.to_lowercase();
        if !(zone.zone_of(&child) && child != *zone && child.zone_of(qname)) {
            return Verdict::Upward(format!("refers {qname} to {child}, not closer than {zone}"));
        }
        let (ns, ttl) = ns_targets(&msg.authorities, &child).into_iter().unzip::<_, _, Vec<_>, Vec<_>>();
        let glue = glue(zone, &ns, msg);
        return Verdict::Good(Step::Referral { zone: child, ns, glue, ttl: ttl.into_iter().min().unwrap_or(0) });
    }
    if aa { Verdict::Good(Step::Holds { ttl: min_ttl(msg) }) } else { lame_answer() }
}

fn lame_answer<T>() -> Verdict<T> {
    Verdict::Lame("answered without authority or referral (lame)".into())
}

/// Judges a reply to `n A` / `n AAAA` sent to the servers of the zone that holds `n`.
fn judge_addr(n: &Name, msg: &Message) -> Verdict<Vec<IpAddr>> {
    if !msg.metadata.authoritative {
        return Verdict::Lame("answered without AA".into());
    }
    match msg.metadata.response_code {
        ResponseCode::NoError => {
            Verdict::Good(msg.answers.iter().filter(|r| r.name == *n).filter_map(address).collect())
        }
        ResponseCode::NXDomain => Verdict::Good(Vec::new()),
        rc => Verdict::Lame(format!("answered {}", super::config::rcode_word(rc))),
    }
}

/// NS targets (lowercased, deduplicated) and TTLs of the NS records owned by `owner`.
fn ns_targets(records: &[Record], owner: &Name) -> Vec<(Name, u32)> {
    let mut out: Vec<(Name, u32)> = Vec::new();
    for r in records.iter().filter(|r| r.name == *owner) {
        if let RData::NS(ns) = &r.data {
            let target = ns.0.to_lowercase();
            if !out.iter().any(|(n, _)| *n == target) {
                out.push((target, r.ttl));
            }
        }
    }
    out
}

/// A/AAAA records in ADDITIONAL for the names in `ns` that lie within `zone` (the zone asked): trusted glue only.
fn glue(zone: &Name, ns: &[Name], msg: &Message) -> Vec<(Name, IpAddr)> {
    msg.additionals
        .iter()
        .filter(|r| zone.zone_of(&r.name))
        .filter_map(|r| ns.iter().find(|n| **n == r.name).and_then(|n| address(r).map(|ip| (n.clone(), ip))))
        .collect()
}

fn address(r: &Record) -> Option<IpAddr> {
    match &r.data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(a) => Some(IpAddr::V6(a.0)),
        _ => None,
    }
}

fn min_ttl(msg: &Message) -> u32 {
    msg.answers.iter().chain(&msg.authorities).map(|r| r.ttl).min().unwrap_or(0)
}

fn list(servers: &[NameServer]) -> String {
    servers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn ips_list(ips: &[IpAddr]) -> String {
    ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: fall back to the clock's low bits (still varies per query).
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        b = (nanos as u16 ^ (nanos >> 16) as u16).to_be_bytes();
    }
    u16::from_be_bytes(b)
}

/// Sends one query (RD=0, EDNS 1232) to `addr` over UDP, and over TCP when the reply is truncated.
async fn query(addr: SocketAddr, qname: &Name, qtype: RecordType, ctx: &mut Ctx) -> Result<Message, QueryError> {
    let id = random_id();
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = false;
    let mut q = Query::query(qname.clone(), qtype);
    q.set_query_class(DNSClass::IN);
    msg.add_query(q);
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    msg.set_edns(edns);
    let wire = msg.to_vec().map_err(|e| QueryError::NoReply(format!("cannot encode the query: {e}")))?;

    let reply = exchange(addr, &wire, id, qname, qtype, ctx, false).await?;
    if !reply.metadata.truncation {
        return Ok(reply);
    }
    ctx.trace.push(format!("{addr}: truncated reply, retrying over TCP"));
    exchange(addr, &wire, id, qname, qtype, ctx, true).await
}

/// One query over one transport, with its own timeout of min(800 ms, time left).
async fn exchange(
    addr: SocketAddr,
    wire: &[u8],
    id: u16,
    qname: &Name,
    qtype: RecordType,
    ctx: &mut Ctx,
    tcp: bool,
) -> Result<Message, QueryError> {
    if ctx.queries >= MAX_QUERIES {
        return Err(QueryError::TooLong);
    }
    let now = Instant::now();
    if now >= ctx.deadline {
        return Err(QueryError::NoReply("timeout (deadline reached)".into()));
    }
    ctx.queries += 1;
    let until = (now + QUERY_TIMEOUT).min(ctx.deadline);
    let matches = |m: &Message| {
        m.metadata.id == id
            && m.metadata.message_type == MessageType::Response
            && m.queries.len() == 1
            && m.queries[0].name() == qname
            && m.queries[0].query_type() == qtype
            && m.queries[0].query_class() == DNSClass::IN
    };
    let result = if tcp {
        timeout_at(until, tcp_exchange(addr, wire)).await
    } else {
        timeout_at(until, udp_exchange(addr, wire, matches)).await
    };
    let proto = if tcp { "TCP" } else { "UDP" };
    match result {
        Err(_) => Err(QueryError::NoReply(format!("timeout ({proto})"))),
        Ok(Err(e)) => Err(QueryError::NoReply(format!("{e} ({proto})"))),
        Ok(Ok(m)) if tcp && !matches(&m) => Err(QueryError::NoReply("reply does not match the query (TCP)".into())),
        Ok(Ok(m)) => Ok(m),
    }
}

/// Sends over a connected UDP socket and waits for a reply that `matches` (others are ignored).
async fn udp_exchange(addr: SocketAddr, wire: &[u8], matches: impl Fn(&Message) -> bool) -> std::io::Result<Message> {
    let local: SocketAddr =
        if addr.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(addr).await?;
    sock.send(wire).await?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = sock.recv(&mut buf).await?;
        if let Ok(m) = Message::from_vec(&buf[..n])
            && matches(&m)
        {
            return Ok(m);
        }
    }
}

async fn tcp_exchange(addr: SocketAddr, wire: &[u8]) -> std::io::Result<Message> {
    let len = u16::try_from(wire.len()).map_err(|_| std::io::Error::other("query too long"))?;
    let mut stream = TcpStream::connect(addr).await?;
    let mut out = Vec::with_capacity(wire.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(wire);
    stream.write_all(&out).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).await?;
    Message::from_vec(&buf).map_err(|e| std::io::Error::other(format!("malformed reply: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, NS, SOA};

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn reply(aa: bool, rcode: ResponseCode) -> Message {
        let mut m = Message::new(1, MessageType::Response, OpCode::Query);
        m.metadata.authoritative = aa;
        m.metadata.response_code = rcode;
        m
    }

    fn ns(owner: &str, target: &str) -> Record {
        Record::from_rdata(n(owner), 300, RData::NS(NS(n(target))))
    }

    fn a(owner: &str, ip: [u8; 4]) -> Record {
        Record::from_rdata(n(owner), 300, RData::A(A(Ipv4Addr::from(ip))))
    }

    #[test]
    fn referral_keeps_only_in_bailiwick_glue() {
        let mut m = reply(false, ResponseCode::NoError);
        m.add_authority(ns("chat.test.", "ns1.chat.test."));
        m.add_authority(ns("chat.test.", "ns.evil.example."));
        m.add_additional(a("ns1.chat.test.", [127, 0, 1, 3]));
        m.add_additional(a("ns.evil.example.", [6, 6, 6, 6]));
        match judge_ns(&n("test."), &n("www.chat.test."), &m) {
            Verdict::Good(Step::Referral { zone, ns, glue, ttl }) => {
                assert_eq!(zone, n("chat.test."));
                assert_eq!(ns, vec![n("ns1.chat.test."), n("ns.evil.example.")]);
                assert_eq!(glue, vec![(n("ns1.chat.test."), IpAddr::from([127, 0, 1, 3]))]);
                assert_eq!(ttl, 300);
            }
            _ => panic!("not a referral"),
        }
    }

    #[test]
    fn upward_and_sideways_referrals_are_loops() {
        let mut m = reply(false, ResponseCode::NoError);
        m.add_authority(ns("test.", "ns.test."));
        assert!(matches!(judge_ns(&n("chat.test."), &n("www.chat.test."), &m), Verdict::Upward(_)));
        let mut m = reply(false, ResponseCode::NoError);
        m.add_authority(ns("other.test.", "ns.test."));
        assert!(matches!(judge_ns(&n("test."), &n("www.chat.test."), &m), Verdict::Upward(_)));
    }

    #[test]
    fn nodata_and_nxdomain() {
        let mut m = reply(true, ResponseCode::NoError);
        let soa = SOA::new(n("ns1.chat.test."), n("h.chat.test."), 1, 3600, 600, 86400, 60);
        m.add_authority(Record::from_rdata(n("chat.test."), 60, RData::SOA(soa.clone())));
        assert!(matches!(judge_ns(&n("chat.test."), &n("www.chat.test."), &m), Verdict::Good(Step::Holds { ttl: 60 })));
        // Same servers serve test. and chat.test.: the SOA names the inner zone.
        assert!(
            matches!(judge_ns(&n("test."), &n("www.chat.test."), &m), Verdict::Good(Step::Inner(z)) if z == n("chat.test."))
        );
        let m = reply(true, ResponseCode::NXDomain);
        assert!(matches!(judge_ns(&n("test."), &n("chat.test."), &m), Verdict::Fatal(WalkError::NxDomain(_))));
        let m = reply(false, ResponseCode::Refused);
        assert!(matches!(judge_ns(&n("test."), &n("chat.test."), &m), Verdict::Lame(_)));
    }

    #[test]
    fn apex_answer_is_a_cut_at_the_name() {
        let mut m = reply(true, ResponseCode::NoError);
        m.add_answer(ns("chat.test.", "ns1.chat.test."));
        m.add_additional(a("ns1.chat.test.", [127, 0, 1, 3]));
        assert!(matches!(judge_ns(&n("chat.test."), &n("chat.test."), &m), Verdict::Good(Step::Apex { .. })));
    }

    #[test]
    fn find_is_send_and_shareable() {
        fn send<T: Send>(_: &T) {}
        fn sync<T: Send + Sync>() {}
        sync::<Delegations>();
        let d = Delegations::new(vec![]);
        let name = n("chat.test.");
        send(&d.find(&name, Instant::now()));
    }

    #[tokio::test]
    async fn cache_hit_sends_nothing() {
        let d = Delegations::new(vec![]);
        let cut = Cut {
            zone: n("chat.test."),
            servers: vec![NameServer { name: n("ns1.chat.test."), addr: "127.0.1.3:53".parse().unwrap() }],
        };
        d.store(&cut.zone, &cut, 300, None);
        let walk = d.find(&n("chat.test."), Instant::now() + Duration::from_secs(1)).await.unwrap();
        assert_eq!((walk.cut, walk.queries), (cut, 0));
        assert!(matches!(
            d.find(&n("other.test."), Instant::now() + Duration::from_secs(1)).await,
            Err(WalkError::ServFail(_))
        ));
    }
}
