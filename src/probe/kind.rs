//! What every probe kind shares, and the one trait each kind implements:
//! the closed list of [`Reason`]s, the [`Finding`] of one run, the
//! [`Probe`] that performs runs, the [`Layer`]s, and [`ProbeKind`] —
//! everything the rest of chatpulse asks of a kind (its word, layer,
//! config keys and reader, target, grouping scope, timeout reason, and
//! the probe it builds). A leaf: the kind files and the registry in
//! [`super`] import it, it imports neither.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::bgp::Visibility;
use crate::document::{ConfigError, Field, Keys, Table};
use crate::words::words;

words! {
/// Why a run failed: the closed list of README, "What a run can say".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// No (valid) DNS answer within the timeout.
    DnsTimeout = "dns_timeout",
    /// The server answered SERVFAIL.
    DnsServfail = "dns_servfail",
    /// The server answered NXDOMAIN.
    DnsNxdomain = "dns_nxdomain",
    /// The server answered REFUSED.
    DnsRefused = "dns_refused",
    /// The expected rcode came back without a record of the asked type.
    DnsNoAnswer = "dns_no_answer",
    /// Another rcode than the expected one (and not one of the above).
    DnsUnexpectedRcode = "dns_unexpected_rcode",
    /// Asked without recursion, the answer lacked the AA flag.
    DnsNotAuthoritative = "dns_not_authoritative",
    /// An answer outside `expect_answer_in`: not the platform's address
    /// space (tampering, a hijacked zone, a portal).
    DnsInconsistent = "dns_inconsistent",
    /// No TCP connection before the deadline.
    TcpTimeout = "tcp_timeout",
    /// The connection was refused or the network unreachable.
    TcpConnect = "tcp_connect",
    /// The name in `address` did not resolve.
    TcpResolve = "tcp_resolve",
    /// The TLS handshake failed (protocol, alert, no shared ALPN/cipher).
    TlsHandshake = "tls_handshake",
    /// The certificate was rejected: chain, name or validity.
    TlsCert = "tls_cert",
    /// The leaf certificate expires within `min_cert_days`.
    TlsExpiring = "tls_expiring",
    /// Connected, but no complete chat-protocol answer within the timeout.
    ChatTimeout = "chat_timeout",
    /// Connected, but closed or reset before any answer.
    ChatClosed = "chat_closed",
    /// Bytes came back, but not this protocol (an HTTP answer, a TLS
    /// alert, a portal page): something else answers in the platform's place.
    ChatForeign = "chat_foreign",
    /// The platform refused in its own protocol (MTProto transport error
    /// -429 or -404): its front end answered, but would not serve us.
    ChatRefused = "chat_refused",
    /// The answer is this protocol but fails its proof: nonce not echoed,
    /// unknown key, decryption or certificate chain failing.
    ChatAuth = "chat_auth",
    /// No complete HTTP response within the timeout.
    HttpTimeout = "http_timeout",
    /// No TCP connection (refused, unreachable, name not resolvable).
    HttpConnect = "http_connect",
    /// The TLS handshake failed (certificate, protocol).
    HttpTls = "http_tls",
    /// A status code outside `expect_status`.
    HttpStatus = "http_status",
    /// The body lacks `body_contains`.
    HttpBody = "http_body",
    /// The answer lacks a header of `expect_headers`: not the platform's
    /// own server (a proxy or load balancer answering in its place).
    HttpHeader = "http_header",
    /// A redirect that the policy refuses (scheme downgrade, an internal
    /// address from a public target, too many, unreadable `Location`).
    HttpRedirect = "http_redirect",
    /// The answer is not HTTP (bad status line, HTTP/0.9, oversized head).
    HttpProtocol = "http_protocol",
    /// The monitor itself ran out of sockets or memory for this run:
    /// no verdict either way, never an outage.
    ProbeResource = "probe_resource",
    /// Too few peers see the prefix or a covering one.
    BgpInvisible = "bgp_invisible",
    /// Enough peers see the prefix originated by an AS not allowed.
    BgpOriginMismatch = "bgp_origin_mismatch",
    /// Enough peers see a more-specific of the prefix from an AS not allowed.
    BgpMoreSpecific = "bgp_more_specific",
    /// Enough peers see the prefix or a more-specific with an RPKI-invalid
    /// origin (against the `[bgp] rpki` VRPs).
    BgpRpkiInvalid = "bgp_rpki_invalid",
    /// The feed is down or not yet seeded: no verdict, never an outage.
    BgpUnknown = "bgp_unknown",
}
}

impl Reason {
    /// True when the run says nothing about the target (no verdict either way).
    pub fn is_inconclusive(self) -> bool {
        matches!(self, Reason::BgpUnknown | Reason::ProbeResource)
    }
}

/// The word for a run's result: `ok` or the reason.
pub fn result_word(result: Result<(), Reason>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(r) => r.as_str(),
    }
}

/// What one run of a probe found.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// `Ok` or why it failed.
    pub result: Result<(), Reason>,
    /// One line for humans: what was asked and what came back.
    pub detail: String,
    /// What the run measured beyond its result, for the metrics and pages.
    pub evidence: Evidence,
}

/// The typed measurement a run brings back with its result: one shape per
/// kind of measurement, so a finding cannot carry a status code and a
/// visibility at once, nor a field its kind never fills.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Evidence {
    /// Nothing beyond the result (dns, tcp, the chat kinds).
    #[default]
    None,
    /// An HTTP response: its status code and, over TLS, the leaf
    /// certificate's notAfter (Unix seconds).
    Response { status: u16, cert_expiry: Option<i64> },
    /// A TLS handshake's leaf certificate notAfter (Unix seconds).
    Certificate { not_after: i64 },
    /// The visibility a bgp probe judged (boxed: it is the largest shape).
    Visibility(Box<Visibility>),
}

impl Finding {
    /// A passing run.
    pub fn ok(detail: impl Into<String>) -> Finding {
        Finding { result: Ok(()), detail: detail.into(), evidence: Evidence::None }
    }

    /// A failing run.
    pub fn fail(reason: Reason, detail: impl Into<String>) -> Finding {
        Finding { result: Err(reason), detail: detail.into(), evidence: Evidence::None }
    }

    /// The same finding carrying `evidence`.
    pub fn with(self, evidence: Evidence) -> Finding {
        Finding { evidence, ..self }
    }

    /// The HTTP status code received, if the run got a response.
    pub fn http_status(&self) -> Option<u16> {
        match self.evidence {
            Evidence::Response { status, .. } => Some(status),
            _ => None,
        }
    }

    /// The leaf certificate's notAfter (Unix seconds), if the run saw one.
    pub fn cert_expiry(&self) -> Option<i64> {
        match self.evidence {
            Evidence::Response { cert_expiry, .. } => cert_expiry,
            Evidence::Certificate { not_after } => Some(not_after),
            _ => None,
        }
    }

    /// The visibility a bgp probe judged.
    pub fn visibility(&self) -> Option<&Visibility> {
        match &self.evidence {
            Evidence::Visibility(v) => Some(v),
            _ => None,
        }
    }
}

words! {
/// The layers a service is watched at, bottom up (README, "What a run can
/// say"): the root cause of a failure is the lowest layer with a DOWN probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// Routing.
    Bgp = "bgp",
    /// Naming.
    Dns = "dns",
    /// Connections and TLS (tcp and tls probes).
    Transport = "transport",
    /// The platform's own chat protocol (mtproto and whatsapp probes):
    /// what users' apps speak, above a bare connection.
    Chat = "chat",
    /// The application's HTTP endpoints.
    Http = "http",
}
}

/// A boxed future returned by [`Probe::run`].
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = Finding> + Send + 'a>>;

/// One probe kind's check. `run` must return within the probe's timeout
/// (plus scheduling slack) and never panic on anything the target sends.
pub trait Probe: Send + Sync {
    /// Performs one check.
    fn run(&self) -> RunFuture<'_>;

    /// For probes judged on published state (bgp): a stream that yields
    /// whenever that state changes, so the scheduler runs the probe at once.
    fn trigger(&self) -> Option<Trigger> {
        None
    }
}

/// A stream of "the state this probe judges has changed" ticks.
pub type Trigger = futures_util::stream::BoxStream<'static, ()>;

/// True when an I/O error means the monitor itself is short of a resource
/// (descriptors, buffers, memory), not that the target failed.
pub fn is_resource_shortage(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
        || e.kind() == std::io::ErrorKind::OutOfMemory
}

/// What a kind's reader may need besides its own keys.
pub struct ReadContext<'a> {
    /// The config file's directory (`ca_file` paths are relative to it).
    pub base: &'a Path,
    /// `[bgp] rpki` is configured.
    pub rpki: bool,
    /// `[dns] roots`: where delegations are followed from.
    pub dns_roots: &'a Arc<[std::net::SocketAddr]>,
}

/// What probes share: the HTTP client, the system resolver, the BGP engine.
#[derive(Clone)]
pub struct Toolkit {
    /// One client for every http probe (connection reuse is disabled).
    pub http: reqwest::Client,
    /// The first name server of the system resolver configuration.
    pub system_resolver: Option<std::net::SocketAddr>,
    /// Visibility for bgp probes.
    pub bgp: crate::bgp::VisibilityBoard,
}

/// One probe kind: its config, its place in the verdict and its probe.
/// A kind is one file implementing this, plus one line in the registry
/// (`super::kinds!`).
pub trait ProbeKind: fmt::Debug + PartialEq + Send + Sync + Sized + 'static {
    /// The `kind` word of the config, the `kind` label and the API.
    const NAME: &'static str;
    /// The layer its probes watch.
    const LAYER: Layer;
    /// What a run that overran the scheduler's deadline says.
    const TIMEOUT: Reason;
    /// The kind's own keys (beside the common ones of every probe).
    type Raw: Keys + serde::de::DeserializeOwned;

    /// Validates the kind's keys.
    fn read(t: &Table<'_, Self::Raw>, cx: &ReadContext<'_>) -> Result<Self, ConfigError>;

    /// A one-line description of what is probed, for tables and the API.
    fn target(&self) -> String;

    /// Where a failure happens, for grouping failures by cause: the DNS
    /// server set, the HTTP host, the origin AS.
    fn scope(&self) -> String;

    /// Creates the probe that runs this check within `timeout`.
    fn build(check: &Arc<Self>, timeout: Duration, tools: &Toolkit) -> Box<dyn Probe>;
}

/// `ca_file` (checked to hold PEM certificates) and `system_roots`, as
/// dns (encrypted), tls and http probes share them.
pub fn read_trust<R: Keys>(
    t: &Table<'_, R>,
    ca_file: Field<'_, String>,
    system_roots: Field<'_, bool>,
    base: &Path,
) -> Result<(Option<PathBuf>, bool), ConfigError> {
    let ca_file = match t.str(ca_file) {
        Some(file) => {
            let path = base.join(file.value);
            let certs = crate::certs::read(&path).map_err(|why| t.error(&file.span, format!("\"ca_file\": {why}")))?;
            if certs.is_empty() {
                return Err(t.error(&file.span, format!("\"ca_file\": {} holds no PEM certificate", path.display())));
            }
            Some(path)
        }
        None => None,
    };
    let system_roots = t.bool(system_roots);
    if system_roots.is_some() && ca_file.is_none() {
        return Err(t.error_at_key("system_roots", "\"system_roots\" only applies with \"ca_file\""));
    }
    Ok((ca_file, system_roots.unwrap_or(false)))
}

/// A probe whose tools could not be made (its `ca_file` vanished since the
/// config was read): every run says why.
pub struct Unusable {
    /// What every run says.
    pub reason: Reason,
    /// Why, in words.
    pub why: String,
}

impl Probe for Unusable {
    fn run(&self) -> RunFuture<'_> {
        Box::pin(async move { Finding::fail(self.reason, self.why.clone()) })
    }
}
