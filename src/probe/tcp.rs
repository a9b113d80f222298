//! The tcp probe: can a connection to `address` be opened? It watches the
//! chat endpoints users' apps actually hold open (g.whatsapp.net:5222,
//! Telegram's data centres), which an HTTP page does not prove.
//!
//! The name is resolved first (`tcp_resolve` when it does not resolve), then
//! each address is tried in turn until one connects; a refusal or an
//! unreachable network is `tcp_connect`, no answer before the deadline
//! `tcp_timeout`. A socket the monitor cannot open is `probe_resource`.
//! [`connect`] is shared with the tls probe.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::{Finding, Probe, Reason, RunFuture, is_resource_shortage};
use crate::config::Endpoint;

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
    let mut refusals = Vec::new();
    for target in &addresses {
        match timeout_at(deadline, TcpStream::connect(target)).await {
            Ok(Ok(stream)) => return Ok((stream, *target)),
            Ok(Err(e)) if is_resource_shortage(&e) => {
                return Err(Finding::fail(
                    Reason::ProbeResource,
                    format!("{address}: the monitor is out of sockets ({e})"),
                ));
            }
            Ok(Err(e)) => refusals.push(format!("{target}: {e}")),
            Err(_) => break,
        }
    }
    if refusals.len() == addresses.len() {
        return Err(Finding::fail(Reason::TcpConnect, format!("{address}: {}", refusals.join("; "))));
    }
    Err(Finding::fail(Reason::TcpTimeout, format!("{address}: no connection within the timeout")))
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
