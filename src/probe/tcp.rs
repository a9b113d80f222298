//! The tcp probe: can a connection to `address` be opened? Beside the chat
//! probes it shows whether a failing chat endpoint is unreachable or
//! reachable but not answering its protocol.
//!
//! [`connect`] is the one connect of tcp, tls and chat probes. The name is
//! resolved first (`tcp_resolve` when it does not resolve); then the
//! addresses are tried as RFC 8305 (Happy Eyeballs) says: both families
//! interleaved, the next attempt started [`ATTEMPT_DELAY`] after the
//! previous one unless that one already failed, the first connection to
//! succeed wins, one deadline for all. A host whose IPv6 path is
//! black-holed so reaches an IPv4 address well within the timeout. Every
//! address refusing or unreachable is `tcp_connect`; no connection before
//! the deadline `tcp_timeout`; a socket the monitor cannot open
//! `probe_resource`. The detail names the address that answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout_at};

use super::kind::{Finding, Layer, Probe, ProbeKind, ReadContext, Reason, RunFuture, Toolkit, is_resource_shortage};
use crate::document::{ConfigError, Field, Keys, Table, ValueError, field, table};

table!(
    /// The keys of `kind = "tcp"`.
    RawTcp { address: String }
);

/// `kind = "tcp"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpCheck {
    /// Where to connect.
    pub endpoint: Endpoint,
}

impl ProbeKind for TcpCheck {
    const NAME: &'static str = "tcp";
    const LAYER: Layer = Layer::Transport;
    const TIMEOUT: Reason = Reason::TcpTimeout;
    type Raw = RawTcp;

    fn read(t: &Table<'_, RawTcp>, _: &ReadContext<'_>) -> Result<TcpCheck, ConfigError> {
        Ok(TcpCheck { endpoint: read_endpoint(t, field!(t, address))? })
    }

    fn target(&self) -> String {
        self.endpoint.address.clone()
    }

    fn scope(&self) -> String {
        self.endpoint.host.clone()
    }

    fn build(check: &Arc<TcpCheck>, timeout: Duration, _: &Toolkit) -> Box<dyn Probe> {
        Box::new(TcpProbe::new(&check.endpoint, timeout))
    }
}

/// `address` of a tcp or tls probe: `host:port`, `ip:port` or `[v6]:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// As written.
    pub address: String,
    /// The host part (a name or an IP address, without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl Endpoint {
    pub(crate) fn parse(text: &str) -> Result<Endpoint, ValueError> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(Endpoint { address: text.to_string(), host: addr.ip().to_string(), port: addr.port() });
        }
        let bad =
            || ValueError::not(text, "host:port (like g.whatsapp.net:5222, 149.154.167.51:443 or [2001:db8::1]:443)");
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?;
        if host.is_empty() || host.contains(':') || hickory_proto::rr::Name::from_utf8(host).is_err() {
            return Err(bad());
        }
        Ok(Endpoint { address: text.to_string(), host: host.to_string(), port })
    }
}

/// A required `address` key: an [`Endpoint`] (tcp, tls and chat probes).
pub(crate) fn read_endpoint<R: Keys>(t: &Table<'_, R>, address: Field<'_, String>) -> Result<Endpoint, ConfigError> {
    let key = address.0;
    let at = t.required_str(address)?;
    Endpoint::parse(at.value).map_err(|why| t.error(&at.span, format!("\"{key}\": {why}")))
}

/// A configured tcp probe.
pub struct TcpProbe {
    endpoint: Endpoint,
    timeout: Duration,
}

impl TcpProbe {
    /// Prepares the probe.
    pub fn new(endpoint: &Endpoint, timeout: Duration) -> TcpProbe {
        TcpProbe { endpoint: endpoint.clone(), timeout }
    }
}

/// Resolves `endpoint` and connects before `deadline`: the stream and the
/// address it reached, or the failed run.
pub async fn connect(endpoint: &Endpoint, deadline: Instant) -> Result<(TcpStream, SocketAddr), Finding> {
    let address = &endpoint.address;
    let lookup = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port));
    let addresses: Vec<SocketAddr> = match timeout_at(deadline, lookup).await {
        Ok(Ok(found)) => found.collect(),
        Ok(Err(e)) if is_resource_shortage(&e) => {
            return Err(Finding::fail(
                Reason::ProbeResource,
                format!("{address}: the monitor is out of resources ({e})"),
            ));
        }
        Ok(Err(e)) => {
            return Err(Finding::fail(Reason::TcpResolve, format!("{address}: the name does not resolve ({e})")));
        }
        Err(_) => {
            return Err(Finding::fail(Reason::TcpTimeout, format!("{address}: the name did not resolve in time")));
        }
    };
    if addresses.is_empty() {
        return Err(Finding::fail(Reason::TcpResolve, format!("{address}: the name has no address")));
    }
    race(address, &interleave(addresses), deadline).await
}

/// RFC 8305's "Connection Attempt Delay": how long an attempt has before
/// the next address is tried beside it.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// The addresses in RFC 8305 order: alternating families, starting with
/// the family of the first address the resolver gave (each family's own
/// order kept).
pub fn interleave(addresses: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let first_v6 = addresses.first().is_some_and(SocketAddr::is_ipv6);
    let (first, second): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addresses.into_iter().partition(|a| a.is_ipv6() == first_v6);
    let mut ordered = Vec::with_capacity(first.len() + second.len());
    let (mut a, mut b) = (first.into_iter(), second.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return ordered,
            (x, y) => ordered.extend(x.into_iter().chain(y)),
        }
    }
}

/// Races connection attempts to `targets` (in order, staggered by
/// [`ATTEMPT_DELAY`]) until one connects, every one has failed, or the
/// deadline passes.
async fn race(address: &str, targets: &[SocketAddr], deadline: Instant) -> Result<(TcpStream, SocketAddr), Finding> {
    let mut attempts = FuturesUnordered::new();
    let mut next = 0;
    let mut failures: Vec<(SocketAddr, std::io::Error)> = Vec::new();
    let mut stagger = Instant::now();
    loop {
        if next < targets.len() && Instant::now() >= stagger {
            let target = targets[next];
            attempts.push(async move { (target, TcpStream::connect(target).await) });
            next += 1;
            stagger = Instant::now() + ATTEMPT_DELAY;
        }
        tokio::select! {
            Some((target, outcome)) = attempts.next(), if !attempts.is_empty() => match outcome {
                Ok(stream) => return Ok((stream, target)),
                Err(e) if is_resource_shortage(&e) => {
                    return Err(Finding::fail(
                        Reason::ProbeResource,
                        format!("{address}: the monitor is out of sockets ({e})"),
                    ));
                }
                Err(e) => {
                    failures.push((target, e));
                    if failures.len() == targets.len() {
                        return Err(Finding::fail(Reason::TcpConnect, format!("{address}: {}", listed(&failures))));
                    }
                    // A failed attempt lets the next one start at once (RFC 8305 §5).
                    stagger = Instant::now();
                }
            },
            _ = sleep_until(stagger), if next < targets.len() => {}
            _ = sleep_until(deadline) => {
                let silent: Vec<String> = targets[..next]
                    .iter()
                    .filter(|t| !failures.iter().any(|(failed, _)| failed == *t))
                    .map(ToString::to_string)
                    .collect();
                let mut why = format!("{address}: no connection within the timeout (no answer from {})", silent.join(", "));
                if !failures.is_empty() {
                    why.push_str(&format!("; {}", listed(&failures)));
                }
                return Err(Finding::fail(Reason::TcpTimeout, why));
            }
        }
    }
}

/// `addr: error; addr: error` for a detail.
fn listed(failures: &[(SocketAddr, std::io::Error)]) -> String {
    failures.iter().map(|(target, e)| format!("{target}: {e}")).collect::<Vec<_>>().join("; ")
}

impl Probe for TcpProbe {
    fn run(&self) -> RunFuture<'_> {
        Box::pin(async move {
            let started = Instant::now();
            match connect(&self.endpoint, started + self.timeout).await {
                Ok((_, reached)) => Finding::ok(format!(
                    "{}: connected to {reached} in {} ms",
                    self.endpoint.address,
                    started.elapsed().as_millis()
                )),
                Err(failed) => failed,
            }
        })
    }
}
