//! Probes: one run of one check, and what it found.
//!
//! Every probe kind lives in its own file behind the small [`Probe`] trait:
//! `run` performs one check within the probe's timeout and returns a
//! [`Finding`] — `ok` or one [`Reason`] from the closed list of README, "What a run can say",
//! plus a human detail. Probes never touch metrics, storage or alerts; the
//! scheduler turns findings into [`Observation`]s for the verdict.

pub mod bgp;
pub mod chat;
pub mod dns;
pub mod http;
pub mod mtproto;
pub mod tcp;
pub mod tls;
pub mod whatsapp;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::bgp::Visibility;
use crate::config::{Check, Config, Kind, ProbeSpec};

/// Why a run failed: the closed list of README, "What a run can say".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No (valid) DNS answer within the timeout.
    DnsTimeout,
    /// The server answered SERVFAIL.
    DnsServfail,
    /// The server answered NXDOMAIN.
    DnsNxdomain,
    /// The server answered REFUSED.
    DnsRefused,
    /// The expected rcode came back without a record of the asked type.
    DnsNoAnswer,
    /// Another rcode than the expected one (and not one of the above).
    DnsUnexpectedRcode,
    /// Asked without recursion, the answer lacked the AA flag.
    DnsNotAuthoritative,
    /// An answer outside `expect_answer_in`: not the platform's address
    /// space (tampering, a hijacked zone, a portal).
    DnsInconsistent,
    /// No TCP connection before the deadline.
    TcpTimeout,
    /// The connection was refused or the network unreachable.
    TcpConnect,
    /// The name in `address` did not resolve.
    TcpResolve,
    /// The TLS handshake failed (protocol, alert, no shared ALPN/cipher).
    TlsHandshake,
    /// The certificate was rejected: chain, name or validity.
    TlsCert,
    /// The leaf certificate expires within `min_cert_days`.
    TlsExpiring,
    /// Connected, but no complete chat-protocol answer within the timeout.
    ChatTimeout,
    /// Connected, but closed or reset before any answer.
    ChatClosed,
    /// Bytes came back, but not this protocol (an HTTP answer, a TLS
    /// alert, a portal page): something else answers in the platform's place.
    ChatForeign,
    /// The platform refused in its own protocol (MTProto transport error
    /// -429 or -404): its front end answered, but would not serve us.
    ChatRefused,
    /// The answer is this protocol but fails its proof: nonce not echoed,
    /// unknown key, decryption or certificate chain failing.
    ChatAuth,
    /// No complete HTTP response within the timeout.
    HttpTimeout,
    /// No TCP connection (refused, unreachable, name not resolvable).
    HttpConnect,
    /// The TLS handshake failed (certificate, protocol).
    HttpTls,
    /// A status code outside `expect_status`.
    HttpStatus,
    /// The body lacks `body_contains`.
    HttpBody,
    /// The answer lacks a header of `expect_headers`: not the platform's
    /// own server (a proxy or load balancer answering in its place).
    HttpHeader,
    /// A redirect that the policy refuses (scheme downgrade, an internal
    /// address from a public target, too many, unreadable `Location`).
    HttpRedirect,
    /// The answer is not HTTP (bad status line, HTTP/0.9, oversized head).
    HttpProtocol,
    /// The monitor itself ran out of sockets or memory for this run:
    /// no verdict either way, never an outage.
    ProbeResource,
    /// Too few peers see the prefix or a covering one.
    BgpInvisible,
    /// Enough peers see the prefix originated by an AS not allowed.
    BgpOriginMismatch,
    /// Enough peers see a more-specific of the prefix from an AS not allowed.
    BgpMoreSpecific,
    /// Enough peers see the prefix or a more-specific with an RPKI-invalid
    /// origin (against the `[bgp] rpki` VRPs).
    BgpRpkiInvalid,
    /// The feed is down or not yet seeded: no verdict, never an outage.
    BgpUnknown,
}

impl Reason {
    /// Every reason, in the order of README's table.
    pub const ALL: [Reason; 33] = [
        Reason::DnsTimeout,
        Reason::DnsServfail,
        Reason::DnsNxdomain,
        Reason::DnsRefused,
        Reason::DnsNoAnswer,
        Reason::DnsUnexpectedRcode,
        Reason::DnsNotAuthoritative,
        Reason::DnsInconsistent,
        Reason::TcpTimeout,
        Reason::TcpConnect,
        Reason::TcpResolve,
        Reason::TlsHandshake,
        Reason::TlsCert,
        Reason::TlsExpiring,
        Reason::ChatTimeout,
        Reason::ChatClosed,
        Reason::ChatForeign,
        Reason::ChatRefused,
        Reason::ChatAuth,
        Reason::HttpTimeout,
        Reason::HttpConnect,
        Reason::HttpTls,
        Reason::HttpStatus,
        Reason::HttpBody,
        Reason::HttpHeader,
        Reason::HttpRedirect,
        Reason::HttpProtocol,
        Reason::ProbeResource,
        Reason::BgpInvisible,
        Reason::BgpOriginMismatch,
        Reason::BgpMoreSpecific,
        Reason::BgpRpkiInvalid,
        Reason::BgpUnknown,
    ];

    /// The word used in the `result` label, the API and e-mail.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::DnsTimeout => "dns_timeout",
            Reason::DnsServfail => "dns_servfail",
            Reason::DnsNxdomain => "dns_nxdomain",
            Reason::DnsRefused => "dns_refused",
            Reason::DnsNoAnswer => "dns_no_answer",
            Reason::DnsUnexpectedRcode => "dns_unexpected_rcode",
            Reason::DnsNotAuthoritative => "dns_not_authoritative",
            Reason::DnsInconsistent => "dns_inconsistent",
            Reason::TcpTimeout => "tcp_timeout",
            Reason::TcpConnect => "tcp_connect",
            Reason::TcpResolve => "tcp_resolve",
            Reason::TlsHandshake => "tls_handshake",
            Reason::TlsCert => "tls_cert",
            Reason::TlsExpiring => "tls_expiring",
            Reason::ChatTimeout => "chat_timeout",
            Reason::ChatClosed => "chat_closed",
            Reason::ChatForeign => "chat_foreign",
            Reason::ChatRefused => "chat_refused",
            Reason::ChatAuth => "chat_auth",
            Reason::HttpTimeout => "http_timeout",
            Reason::HttpConnect => "http_connect",
            Reason::HttpTls => "http_tls",
            Reason::HttpStatus => "http_status",
            Reason::HttpBody => "http_body",
            Reason::HttpHeader => "http_header",
            Reason::HttpRedirect => "http_redirect",
            Reason::HttpProtocol => "http_protocol",
            Reason::ProbeResource => "probe_resource",
            Reason::BgpInvisible => "bgp_invisible",
            Reason::BgpOriginMismatch => "bgp_origin_mismatch",
            Reason::BgpMoreSpecific => "bgp_more_specific",
            Reason::BgpRpkiInvalid => "bgp_rpki_invalid",
            Reason::BgpUnknown => "bgp_unknown",
        }
    }

    /// True when the run says nothing about the target (no verdict either way).
    pub fn is_inconclusive(self) -> bool {
        matches!(self, Reason::BgpUnknown | Reason::ProbeResource)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    /// HTTP status code received, if any.
    pub http_status: Option<u16>,
    /// The visibility a bgp probe judged (boxed: most findings have none).
    pub visibility: Option<Box<Visibility>>,
    /// The leaf certificate's notAfter (Unix seconds), from a tls probe.
    pub cert_expiry: Option<i64>,
}

impl Finding {
    /// A passing run.
    pub fn ok(detail: impl Into<String>) -> Finding {
        Finding { result: Ok(()), detail: detail.into(), http_status: None, visibility: None, cert_expiry: None }
    }

    /// A failing run.
    pub fn fail(reason: Reason, detail: impl Into<String>) -> Finding {
        Finding { result: Err(reason), detail: detail.into(), http_status: None, visibility: None, cert_expiry: None }
    }
}

/// A probe in the running plan: its place, its owner and its spec.
#[derive(Debug)]
pub struct ProbeRef {
    /// Position in the plan (dense, from 0), used as an index by the verdict.
    pub index: usize,
    /// Owning service id, or [`GUARD_SERVICE`] for guards.
    pub service: String,
    /// The probe's config (shared with the `Config`).
    pub spec: Arc<ProbeSpec>,
}

/// The `service` label value of guard probes (not a valid service id, so it
/// cannot collide with one).
pub const GUARD_SERVICE: &str = "_guard";

impl ProbeRef {
    /// The probe kind.
    pub fn kind(&self) -> Kind {
        self.spec.check.kind()
    }

    /// True for `[[guard]]` probes.
    pub fn is_guard(&self) -> bool {
        self.service == GUARD_SERVICE
    }
}

/// Flattens the config into the plan's probe list: guards first, then each
/// service's probes in config order.
pub fn plan(config: &Config) -> Vec<Arc<ProbeRef>> {
    let guards = config.guards.iter().map(|spec| (GUARD_SERVICE, spec));
    let services = config.services.iter().flat_map(|s| s.probes.iter().map(move |spec| (s.id.as_str(), spec)));
    guards
        .chain(services)
        .enumerate()
        .map(|(index, (service, spec))| Arc::new(ProbeRef { index, service: service.to_string(), spec: spec.clone() }))
        .collect()
}

/// One run of one probe, as handed to the verdict.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Which probe.
    pub probe: Arc<ProbeRef>,
    /// When the run started.
    pub at: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// How late the run started against its ideal tick.
    pub lateness: Duration,
    /// What it found.
    pub finding: Finding,
}

/// A boxed future returned by [`Probe::run`].
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = Finding> + Send + 'a>>;

/// One probe kind's check. `run` must return within the probe's timeout
/// (plus scheduling slack) and never panic on anything the target sends.
pub trait Probe: Send + Sync {
    /// Performs one check.
    fn run(&self) -> RunFuture<'_>;

    /// For probes judged on published state (bgp): a channel that changes
    /// whenever that state does, so the scheduler runs the probe at once.
    fn trigger(&self) -> Option<tokio::sync::watch::Receiver<Visibility>> {
        None
    }
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

impl Toolkit {
    /// Builds the shared parts. `bgp` is the board the BGP engine publishes to.
    pub fn new(bgp: crate::bgp::VisibilityBoard) -> Result<Toolkit, ToolkitError> {
        Ok(Toolkit { http: http::client()?, system_resolver: dns::system_resolver(), bgp })
    }

    /// Creates the probe that runs `spec`.
    pub fn build(&self, probe: &ProbeRef) -> Box<dyn Probe> {
        let spec = &probe.spec;
        match &spec.check {
            Check::Dns(check) => Box::new(dns::DnsProbe::new(check.clone(), spec.timeout, self.system_resolver)),
            Check::Http(check) => match http::client_for(check, &self.http) {
                Ok(client) => Box::new(http::HttpProbe::new(check.clone(), spec.timeout, client)),
                Err(why) => {
                    Box::new(Unusable { reason: Reason::HttpTls, why: format!("{}: {why}", check.shown_url()) })
                }
            },
            Check::Bgp(check) => Box::new(bgp::BgpProbe::new(check, self.bgp.clone())),
            Check::Tcp(endpoint) => Box::new(tcp::TcpProbe::new(endpoint, spec.timeout)),
            Check::Tls(check) => Box::new(tls::TlsProbe::new(check, spec.timeout)),
            Check::Mtproto(check) => Box::new(mtproto::MtprotoProbe::new(check, spec.timeout)),
            Check::Whatsapp(check) => Box::new(whatsapp::WhatsappProbe::new(check, spec.timeout)),
        }
    }
}

/// A probe whose tools could not be made (its `ca_file` vanished since the
/// config was read): every run says why.
struct Unusable {
    reason: Reason,
    why: String,
}

impl Probe for Unusable {
    fn run(&self) -> RunFuture<'_> {
        Box::pin(async move { Finding::fail(self.reason, self.why.clone()) })
    }
}

/// The shared probe tools could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ToolkitError {
    /// The HTTP client failed to build (TLS roots, crypto provider).
    #[error("cannot create the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// True when an I/O error means the monitor itself is short of a resource
/// (descriptors, buffers, memory), not that the target failed.
pub fn is_resource_shortage(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
        || e.kind() == std::io::ErrorKind::OutOfMemory
}
