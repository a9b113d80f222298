//! The config file: TOML in, a validated [`Config`] out.
//!
//! Every check and every error message about the config lives here. Loading
//! either yields a `Config` whose values are all usable as they are (parsed
//! durations, addresses, prefixes, URLs) or one [`ConfigError`] sentence of the
//! form `config.toml:42: service "whatsapp" probe 2: ...`. Nothing downstream
//! re-validates.
//!
//! Two steps: serde into `raw.rs` (where every key is declared once,
//! unknown keys and wrong types refused), then the checks below (ranges,
//! syntax of values, keys that do not apply to a probe kind, rules between
//! keys), each error at the line of the value it is about. Only when there
//! is an error is the file parsed into a TOML tree ([`toml::de::DeTable`])
//! to tell a syntax error from a refused value and to name the place.

mod document;
mod raw;

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use document::{Document, Table, ValueError, field};
use raw::*;

use crate::prefix::Prefix;

/// A config that cannot be used, as one sentence.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A channel names a secret the environment does not hold: it would
    /// fail at the first real outage.
    #[error("{file}: {place} names the environment variable {var}, which is not set")]
    MissingSecret {
        /// The config file.
        file: String,
        /// The section and key (`[alerts.email] password_env`).
        place: String,
        /// The variable.
        var: String,
    },
    /// The file could not be read.
    #[error("{path}: cannot read the config file: {source}")]
    Read {
        /// The path as given.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or breaks a rule; `line` is 1-based.
    #[error("{file}:{line}: {message}")]
    Invalid {
        /// The path as given.
        file: String,
        /// Where.
        line: usize,
        /// What is wrong, naming the section and key.
        message: String,
    },
}

/// The kinds of probe (the `kind` key and label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Is the prefix visible in the global routing table?
    Bgp,
    /// Does the name resolve?
    Dns,
    /// Can a TCP connection be opened?
    Tcp,
    /// Can a TLS session be set up, with a certificate we trust?
    Tls,
    /// Does a Telegram data centre answer MTProto's first flight?
    Mtproto,
    /// Does a WhatsApp chat server complete the first half of its Noise
    /// handshake with a certificate chain to WhatsApp's root?
    Whatsapp,
    /// Does the endpoint answer HTTP as expected?
    Http,
}

impl Kind {
    /// The word used in labels, the API and e-mail.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bgp => "bgp",
            Kind::Dns => "dns",
            Kind::Tcp => "tcp",
            Kind::Tls => "tls",
            Kind::Mtproto => "mtproto",
            Kind::Whatsapp => "whatsapp",
            Kind::Http => "http",
        }
    }

    /// The layer a probe of this kind watches.
    pub fn layer(self) -> Layer {
        match self {
            Kind::Bgp => Layer::Bgp,
            Kind::Dns => Layer::Dns,
            Kind::Tcp | Kind::Tls => Layer::Transport,
            Kind::Mtproto | Kind::Whatsapp => Layer::Chat,
            Kind::Http => Layer::Http,
        }
    }
}

/// The layers a service is watched at, bottom up (README, "What a run can
/// say"): the root cause of a failure is the lowest layer with a DOWN probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Layer {
    /// Routing.
    Bgp,
    /// Naming.
    Dns,
    /// Connections and TLS (tcp and tls probes).
    Transport,
    /// The platform's own chat protocol (mtproto and whatsapp probes):
    /// what users' apps speak, above a bare connection.
    Chat,
    /// The application's HTTP endpoints.
    Http,
}

impl Layer {
    /// The word used in causes, the API and e-mail.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Bgp => "bgp",
            Layer::Dns => "dns",
            Layer::Transport => "transport",
            Layer::Chat => "chat",
            Layer::Http => "http",
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from (as given on the command line).
    pub file: PathBuf,
    /// `[monitor]`.
    pub monitor: Monitor,
    /// `[server]`.
    pub server: Server,
    /// `[storage]`.
    pub storage: Storage,
    /// `[alerts]`.
    pub alerts: Alerts,
    /// `[bgp]`.
    pub bgp: Bgp,
    /// `[dns] roots`: where delegations are followed from.
    pub dns_roots: Arc<[SocketAddr]>,
    /// `[[guard]]`: probes of our own connectivity.
    pub guards: Vec<Arc<ProbeSpec>>,
    /// `[[service]]`.
    pub services: Vec<Service>,
    /// `[[maintenance]]`.
    pub maintenance: Vec<crate::maintenance::Window>,
}

/// `[monitor]`: defaults for every probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Monitor {
    /// Name of this vantage point.
    pub vantage: String,
    /// Default probe interval.
    pub interval: Duration,
    /// Default probe timeout.
    pub timeout: Duration,
    /// Consecutive failed runs before a probe is DOWN.
    pub fail_after: u32,
    /// Consecutive good runs before a DOWN probe is UP again.
    pub recover_after: u32,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// Where /metrics, the API and the status page are served.
    pub listen: SocketAddr,
    /// Connections served at once; more are closed at accept.
    pub max_connections: usize,
    /// Base of links in alerts; `None` = `http://{listen}`.
    pub public_url: Option<String>,
}

/// `[storage]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Storage {
    /// SQLite file (relative paths are relative to the working directory).
    pub path: PathBuf,
    /// How long per-run results are kept before only rollups remain.
    pub raw_retention: Duration,
    /// How long rollups, status history and incidents are kept.
    pub rollup_retention: Duration,
}

/// `[alerts]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Alerts {
    /// How long to wait for other services failing with the same cause.
    pub group_wait: Duration,
    /// Status changes within `flap_window` that make a service flapping.
    pub flap_changes: usize,
    /// The flapping window; also how long a status must hold to end it.
    pub flap_window: Duration,
    /// `[alerts.email]`, if configured.
    pub email: Option<Email>,
    /// `[[alerts.webhook]]`, in file order (channel `webhook-1` first).
    pub webhooks: Vec<Webhook>,
}

impl Alerts {
    /// Every alert channel with its name in the outbox and the metrics
    /// (`email`, `webhook-1`, …) and its own rules.
    pub fn channels(&self) -> Vec<(String, &AlertRules)> {
        let email = self.email.iter().map(|e| ("email".to_string(), &e.rules));
        let hooks = self.webhooks.iter().enumerate().map(|(i, w)| (format!("webhook-{}", i + 1), &w.rules));
        email.chain(hooks).collect()
    }
}

/// What one channel is told (the same keys in `[alerts.email]` and every
/// `[[alerts.webhook]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRules {
    /// Which service states start an alert.
    pub notify_on: Vec<NotifyOn>,
    /// Reminder interval while still down; `None` = never.
    pub repeat: Option<Duration>,
    /// Whether a recovery is sent.
    pub send_recovery: bool,
}

/// The body a webhook posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// chatpulse's own JSON document (README, "Webhooks").
    Json,
    /// A Slack / Mattermost incoming-webhook message (`{"text": …}`).
    Slack,
}

/// `[[alerts.webhook]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// Where alerts are POSTed (http or https).
    pub url: reqwest::Url,
    /// The body format.
    pub format: WebhookFormat,
    /// Environment variable holding the HMAC-SHA256 key of
    /// `X-Chatpulse-Signature`; `None` = unsigned.
    pub secret_env: Option<String>,
    /// What this webhook is told.
    pub rules: AlertRules,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://`: plain text.
    Plain,
    /// `smtp+starttls://`: upgrade with STARTTLS (required).
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Tls,
}

/// The events a user may ask to be mailed about when they start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyOn {
    /// A service becomes `down`.
    Down,
    /// A service becomes `degraded`.
    Degraded,
}

/// `[alerts.email]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    /// The `smtp` URL as written, any password redacted (for messages).
    pub smtp_url: String,
    /// Transport security.
    pub security: SmtpSecurity,
    /// SMTP host.
    pub host: String,
    /// SMTP port.
    pub port: u16,
    /// Optional login.
    pub username: Option<String>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// Sender mailbox.
    pub from: String,
    /// Recipient mailboxes.
    pub to: Vec<String>,
    /// What e-mail is told.
    pub rules: AlertRules,
}

/// Where BGP visibility comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BgpSource {
    /// RIPE RIS Live websocket, seeded from RIPEstat.
    RisLive,
    /// chatpulse peers with routers as a receive-only BGP speaker.
    Session,
    /// Polled MRT update files in the RIS layout.
    Mrt,
}

impl BgpSource {
    /// The config word, also the `source` label of the bgp metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            BgpSource::RisLive => "ris-live",
            BgpSource::Session => "session",
            BgpSource::Mrt => "mrt",
        }
    }
}

/// `[bgp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bgp {
    /// Which feeds (`source = "ris-live"` or a list): their peers are pooled.
    pub sources: Vec<BgpSource>,
    /// RIS Live websocket URL.
    pub ris_live_url: String,
    /// RIPEstat base URL (looking-glass seeding).
    pub seed_url: String,
    /// MRT archive base URL (`{mrt_url}/YYYY.MM/updates.YYYYMMDD.HHMM.gz`).
    pub mrt_url: String,
    /// Feed silence that counts as the feed being down.
    pub stale_after: Duration,
    /// Fewer peers known than this = visibility unknown.
    pub min_peers: usize,
    /// Peers that must carry an offending route before it is reported.
    pub hijack_min_peers: usize,
    /// VRP file (rpki-client `-j` or Routinator `jsonext`), relative to the
    /// config file; re-read when it changes.
    pub rpki: Option<PathBuf>,
    /// `canary = "ris-beacons"`: the feed must show the RIS routing
    /// beacons changing on schedule.
    pub canary: bool,
    /// `[bgp.session]`, required when `source = "session"`.
    pub session: Option<BgpSession>,
}

/// `[bgp.session]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BgpSession {
    /// Listening address for incoming BGP connections.
    pub listen: SocketAddr,
    /// Our AS number.
    pub local_as: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// The only peers accepted.
    pub peers: Vec<BgpPeer>,
}

/// `[[bgp.session.peer]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BgpPeer {
    /// The peer's address; connections from elsewhere are refused.
    pub address: IpAddr,
    /// The AS the peer must announce in its OPEN.
    pub remote_as: u32,
    /// If set, chatpulse also connects out to the peer on this port.
    pub port: Option<u16>,
}

/// `[[service]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// `[a-z0-9-]+`, unique.
    pub id: String,
    /// Display name.
    pub name: String,
    /// At least one (shared with the running plan, hence `Arc`).
    pub probes: Vec<Arc<ProbeSpec>>,
}

/// One probe of a service or a guard, with its timing resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    /// Unique within its service.
    pub id: String,
    /// Time between runs.
    pub interval: Duration,
    /// Time a run may take.
    pub timeout: Duration,
    /// Consecutive failures before DOWN.
    pub fail_after: u32,
    /// Consecutive successes before UP again.
    pub recover_after: u32,
    /// The probe is one of the service's essential functions (README,
    /// "Service status"): its group all DOWN makes the service `down`.
    pub essential: bool,
    /// The essential group it belongs to (redundant endpoints of one
    /// function); `None` with `essential` is a group of one.
    pub group: Option<String>,
    /// What is checked.
    pub check: Check,
}

impl ProbeSpec {
    /// Its part in the service status, in words: `essential (group chat)`,
    /// `essential`, or `None` for a probe that only degrades.
    pub fn role(&self) -> Option<String> {
        match (&self.group, self.essential) {
            (Some(group), _) => Some(format!("essential (group {group})")),
            (None, true) => Some("essential".into()),
            (None, false) => None,
        }
    }
}

/// What a probe checks, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// A DNS question (shared with the probe that asks it: a probe holds
    /// its check for life, and with 100,000 probes a copy each adds up).
    Dns(Arc<DnsCheck>),
    /// An HTTP request (shared with its probe, as `Dns`).
    Http(Arc<HttpCheck>),
    /// A prefix's visibility in BGP.
    Bgp(BgpCheck),
    /// A TCP connection.
    Tcp(Endpoint),
    /// A TCP connection and a TLS handshake.
    Tls(TlsCheck),
    /// Telegram's MTProto: `req_pq_multi` answered by a genuine `resPQ`.
    Mtproto(MtprotoCheck),
    /// WhatsApp's chat protocol: the Noise first flight answered by a
    /// ServerHello that decrypts and carries a chain to `root_key`.
    Whatsapp(WhatsappCheck),
}

/// `kind = "mtproto"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtprotoCheck {
    /// A data centre's address (plain intermediate framing, no TLS).
    pub endpoint: Endpoint,
    /// RSA key fingerprints of which the answer must offer one.
    pub fingerprints: Vec<u64>,
}

/// The fingerprint of Telegram's production RSA key (tdlib
/// `PublicRsaKeySharedMain.cpp`; `docs/platforms.md`), the default of `fingerprints`.
pub const TELEGRAM_PRODUCTION_FINGERPRINT: u64 = 0xd09d_1d85_de64_fd85;

/// `kind = "whatsapp"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsappCheck {
    /// Where the handshake goes.
    pub target: ChatTarget,
    /// The X25519 key the certificate chain must verify to.
    pub root_key: [u8; 32],
}

/// WhatsApp's certificate root (whatsmeow `WACertPubKey`; `docs/platforms.md`),
/// the default of `root_key`.
pub const WHATSAPP_ROOT_KEY: [u8; 32] = [
    0x14, 0x23, 0x75, 0x57, 0x4d, 0x0a, 0x58, 0x71, 0x66, 0xaa, 0xe7, 0x1e, 0xbe, 0x51, 0x64, 0x37, 0xc4, 0xa2, 0x8b,
    0x73, 0xe3, 0x69, 0x5c, 0x6c, 0xe1, 0xf7, 0xf9, 0x54, 0x5d, 0xa8, 0xee, 0x6b,
];

/// Where a chat probe speaks: a raw TCP endpoint or a WebSocket URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTarget {
    /// `address = "host:port"`: the protocol's bytes straight over TCP.
    Tcp(Endpoint),
    /// `url = "wss://…"` (or `ws://` on loopback): the same bytes in
    /// WebSocket binary messages.
    WebSocket {
        /// The URL, parsed once at load.
        url: reqwest::Url,
        /// Its host and port, connected to as a tcp probe's `address` is.
        endpoint: Endpoint,
    },
}

impl ChatTarget {
    /// The endpoint connected to.
    pub fn endpoint(&self) -> &Endpoint {
        match self {
            ChatTarget::Tcp(e) | ChatTarget::WebSocket { endpoint: e, .. } => e,
        }
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
    fn parse(text: &str) -> Result<Endpoint, ValueError> {
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

/// `kind = "tls"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsCheck {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// SNI and the name the certificate must carry.
    pub server_name: String,
    /// Trust exactly these roots (PEM, resolved against the config's directory).
    pub ca_file: Option<PathBuf>,
    /// With `ca_file`: trust the system's roots as well.
    pub system_roots: bool,
    /// ALPN protocols offered, in order.
    pub alpn: Vec<String>,
    /// A leaf certificate expiring sooner than this many days is `tls_expiring`.
    pub min_cert_days: Option<u32>,
}

/// DNS record types a probe can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Alias.
    Cname,
    /// Name servers.
    Ns,
    /// Start of authority.
    Soa,
    /// Text.
    Txt,
    /// Mail exchangers.
    Mx,
}

const RECORD_TYPES: [(&str, RecordType); 7] = [
    ("A", RecordType::A),
    ("AAAA", RecordType::Aaaa),
    ("CNAME", RecordType::Cname),
    ("NS", RecordType::Ns),
    ("SOA", RecordType::Soa),
    ("TXT", RecordType::Txt),
    ("MX", RecordType::Mx),
];

impl RecordType {
    /// The mnemonic.
    pub fn as_str(self) -> &'static str {
        RECORD_TYPES.iter().find(|(_, t)| *t == self).map(|(n, _)| *n).unwrap_or("A")
    }
}

/// DNS response codes a probe may expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    /// 0.
    NoError,
    /// 1.
    FormErr,
    /// 2.
    ServFail,
    /// 3.
    NxDomain,
    /// 4.
    NotImp,
    /// 5.
    Refused,
}

const RCODES: [(&str, Rcode, u16); 6] = [
    ("NOERROR", Rcode::NoError, 0),
    ("FORMERR", Rcode::FormErr, 1),
    ("SERVFAIL", Rcode::ServFail, 2),
    ("NXDOMAIN", Rcode::NxDomain, 3),
    ("NOTIMP", Rcode::NotImp, 4),
    ("REFUSED", Rcode::Refused, 5),
];

impl Rcode {
    /// The mnemonic.
    pub fn as_str(self) -> &'static str {
        RCODES.iter().find(|(_, r, _)| *r == self).map(|(n, _, _)| *n).unwrap_or("NOERROR")
    }

    /// The numeric code on the wire.
    pub fn code(self) -> u16 {
        RCODES.iter().find(|(_, r, _)| *r == self).map(|(_, _, c)| *c).unwrap_or(0)
    }
}

/// `kind = "dns"`.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsCheck {
    /// The name asked for, as written.
    pub query: String,
    /// The record type asked for.
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
    /// The response code that counts as success.
    pub expect_rcode: Rcode,
    /// Whether at least one record of `record` type must come back.
    pub expect_answer: bool,
    /// `servers = "delegation"`: the roots the zone's delegation is followed
    /// from; its own servers are then asked (`servers` is empty).
    pub delegation: Option<Arc<[SocketAddr]>>,
    /// Answers (after the CNAME chain) must fall in one of these, or the
    /// run is `dns_inconsistent`; empty = no check.
    pub expect_answer_in: Vec<Prefix>,
}

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

/// `method` of an http probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    /// GET.
    Get,
    /// HEAD.
    Head,
}

/// An inclusive range of HTTP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    /// Lowest accepted.
    pub low: u16,
    /// Highest accepted.
    pub high: u16,
}

impl StatusRange {
    fn parse(s: &str) -> Result<StatusRange, ValueError> {
        let code = |t: &str| t.trim().parse::<u16>().ok().filter(|c| (100..=599).contains(c));
        let range = if let Some(class) = s.strip_suffix("xx").and_then(|c| c.parse::<u16>().ok()) {
            Some((class * 100, class * 100 + 99)).filter(|_| (1..=5).contains(&class))
        } else if let Some((lo, hi)) = s.split_once('-') {
            code(lo).zip(code(hi)).filter(|(lo, hi)| lo <= hi)
        } else {
            code(s).map(|c| (c, c))
        };
        range
            .map(|(low, high)| StatusRange { low, high })
            .ok_or_else(|| ValueError::not(s, "a status code or range (like \"200\", \"200-399\" or \"2xx\")"))
    }

    /// True when `code` is inside.
    pub fn contains(&self, code: u16) -> bool {
        (self.low..=self.high).contains(&code)
    }
}

impl fmt::Display for StatusRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high { write!(f, "{}", self.low) } else { write!(f, "{}-{}", self.low, self.high) }
    }
}

/// `kind = "http"`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    /// An http:// or https:// URL.
    pub url: String,
    /// GET or HEAD.
    pub method: HttpMethod,
    /// Accepted status codes.
    pub expect_status: Vec<StatusRange>,
    /// Text the body must contain (read up to the body cap).
    pub body_contains: Option<String>,
    /// The User-Agent sent.
    pub user_agent: String,
    /// Redirects followed (0 = a 3xx is judged as it is).
    pub max_redirects: u32,
    /// Trust exactly these roots (PEM, resolved against the config's directory).
    pub ca_file: Option<PathBuf>,
    /// With `ca_file`: trust the system's roots as well.
    pub system_roots: bool,
    /// A leaf certificate expiring sooner than this many days is `tls_expiring`.
    pub min_cert_days: Option<u32>,
    /// Headers the answer must carry (`http_header` otherwise): a
    /// platform's own server told from a proxy answering in its place.
    pub expect_headers: Vec<reqwest::header::HeaderName>,
}

/// The User-Agent of http probes unless `user_agent` says otherwise: it
/// names the tool, so a platform's operators can tell what is knocking.
pub const DEFAULT_USER_AGENT: &str = concat!("chatpulse/", env!("CARGO_PKG_VERSION"), " (messaging outage monitor)");

/// `url` with any password replaced by `***` (`http://admin:***@host/`),
/// for everything a user or a log sees; the real URL is used only to connect.
pub fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

impl HttpCheck {
    /// The URL as shown anywhere: credentials redacted.
    pub fn shown_url(&self) -> String {
        redacted(&self.url)
    }

    /// The host part of the URL (the grouping key for HTTP root causes).
    pub fn host(&self) -> String {
        reqwest::Url::parse(&self.url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default()
    }
}

/// `kind = "bgp"`.
#[derive(Debug, Clone, PartialEq)]
pub struct BgpCheck {
    /// The watched prefix.
    pub prefix: Prefix,
    /// The legitimate origin ASes (`origin` or `origins`); empty = no check.
    pub origins: Vec<u32>,
    /// Share of peers that must see the prefix.
    pub min_visibility: f64,
    /// A covering (less-specific) route also counts as seeing the prefix.
    pub covering: bool,
    /// A more-specific from an origin not allowed is `bgp_more_specific`.
    pub more_specifics: bool,
}

impl Check {
    /// The probe kind.
    pub fn kind(&self) -> Kind {
        match self {
            Check::Dns(_) => Kind::Dns,
            Check::Http(_) => Kind::Http,
            Check::Bgp(_) => Kind::Bgp,
            Check::Tcp(_) => Kind::Tcp,
            Check::Tls(_) => Kind::Tls,
            Check::Mtproto(_) => Kind::Mtproto,
            Check::Whatsapp(_) => Kind::Whatsapp,
        }
    }

    /// A one-line description of what is probed, for tables and the API.
    pub fn target(&self) -> String {
        match self {
            Check::Dns(d) => {
                let servers: Vec<String> = d.servers.iter().map(|s| format!("@{s}")).collect();
                let server = match servers.len() {
                    0 if d.delegation.is_some() => " at the zone's own servers (delegation from the roots)".to_string(),
                    0 => " via the system resolver".to_string(),
                    1 => format!(" {}", servers[0]),
                    _ => format!(" {} ({})", servers.join(" "), if d.require_all { "all" } else { "any" }),
                };
                let mode = if d.recursion || d.delegation.is_some() { "" } else { ", no recursion" };
                let space = match d.expect_answer_in.len() {
                    0 => String::new(),
                    1 => format!(", answers in {}", d.expect_answer_in[0]),
                    n => format!(", answers in {} and {} more", d.expect_answer_in[0], n - 1),
                };
                format!("{} {}{server}{mode}{space}", d.query, d.record.as_str())
            }
            Check::Http(h) => match h.method {
                HttpMethod::Get => h.shown_url(),
                HttpMethod::Head => format!("HEAD {}", h.shown_url()),
            },
            Check::Bgp(b) => {
                let origins: Vec<String> = b.origins.iter().map(|asn| format!("AS{asn}")).collect();
                match origins.len() {
                    0 => b.prefix.to_string(),
                    _ => format!("{} {}", b.prefix, origins.join("|")),
                }
            }
            Check::Tcp(e) => e.address.clone(),
            Check::Tls(t) if t.server_name == t.endpoint.host => format!("{} (TLS)", t.endpoint.address),
            Check::Tls(t) => format!("{} (TLS, name {})", t.endpoint.address, t.server_name),
            Check::Mtproto(m) => format!("{} (MTProto)", m.endpoint.address),
            Check::Whatsapp(w) => match &w.target {
                ChatTarget::Tcp(e) => format!("{} (WhatsApp Noise)", e.address),
                ChatTarget::WebSocket { url, .. } => format!("{url} (WhatsApp Noise)"),
            },
        }
    }
}

impl Config {
    /// Every `*_env` a channel names must be set (SPEC 9.6): checked by
    /// `validate`, at `run`'s start and on every reload, so a missing
    /// secret is found now, not at the first outage. (`check`, `uptime`
    /// and `incidents` send nothing and do not ask.)
    pub fn check_secrets(&self) -> Result<(), ConfigError> {
        let email = self
            .alerts
            .email
            .iter()
            .filter_map(|e| e.password_env.as_ref().map(|var| ("[alerts.email] password_env".to_string(), var)));
        let hooks = self.alerts.webhooks.iter().enumerate().filter_map(|(i, w)| {
            w.secret_env.as_ref().map(|var| (format!("[[alerts.webhook]] {} secret_env", i + 1), var))
        });
        for (place, var) in email.chain(hooks) {
            if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
                return Err(ConfigError::MissingSecret {
                    file: self.file.display().to_string(),
                    place,
                    var: var.clone(),
                });
            }
        }
        Ok(())
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Config::parse(path, &text)
    }

    /// Validates `text` as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let doc = Document::new(&file, text);
        let raw: RawConfig = toml::from_str(text).map_err(|e| match toml::de::DeTable::parse(text) {
            Err(syntax) => Document::syntax_error(&file, text, &syntax),
            Ok(_) => doc.serde_error(&e),
        })?;
        let root = Table::root(&doc, &raw, 0..text.len());
        read_config(&root, path)
    }

    /// The `bgp` probes' prefixes, without repeats.
    pub fn watched_prefixes(&self) -> Vec<Prefix> {
        let mut seen = Vec::new();
        for probe in self.services.iter().flat_map(|s| &s.probes) {
            if let Check::Bgp(b) = &probe.check
                && !seen.contains(&b.prefix)
            {
                seen.push(b.prefix);
            }
        }
        seen
    }
}

fn read_config(root: &Table<'_, RawConfig>, path: &Path) -> Result<Config, ConfigError> {
    // `ca_file` paths are relative to the config file's directory.
    let base = path.parent().unwrap_or(Path::new("."));
    let monitor = read_monitor(root)?;
    let server = read_server(root)?;
    let storage = read_storage(root)?;
    let alerts = read_alerts(root)?;
    let bgp = read_bgp(root, base)?;
    let dns_roots = read_dns_roots(root)?;

    let mut guards = Vec::new();
    for guard in root.tables(field!(root, guard)).iter() {
        let probe = read_probe(guard, &monitor, &guards, base, bgp.rpki.is_some(), &dns_roots)?;
        if probe.check.kind() == Kind::Bgp {
            return Err(guard.error_at_key(
                "kind",
                "a guard must be of kind \"dns\", \"http\", \"tcp\", \"tls\", \"mtproto\" or \"whatsapp\"",
            ));
        }
        if probe.essential {
            return Err(
                guard.error_at_key("essential", "a guard cannot be essential (it watches the monitor, not a service)")
            );
        }
        guards.push(Arc::new(probe));
    }

    let mut services: Vec<Service> = Vec::new();
    let mut ids = HashSet::new();
    let service_tables = root.tables(field!(root, service));
    if service_tables.is_empty() {
        return Err(root.error_here("no [[service]] is configured: there is nothing to monitor"));
    }
    for table in service_tables {
        let id = table.required_str(field!(table, id))?;
        if id.value.is_empty() || !id.value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(table.error(&id.span, format!("\"id\": \"{}\" must use only a-z, 0-9 and -", id.value)));
        }
        if !ids.insert(id.value) {
            return Err(table.error(&id.span, format!("\"id\": \"{}\" is used by another service", id.value)));
        }
        let name = table.required_str(field!(table, name))?;
        if name.value.trim().is_empty() {
            return Err(table.error(&name.span, "\"name\" must not be empty"));
        }
        if name.value.chars().any(char::is_control) {
            return Err(table.error(&name.span, "\"name\" must be one line without control characters"));
        }
        let mut probes = Vec::new();
        let probe_tables = table.tables(field!(table, probe));
        if probe_tables.is_empty() {
            return Err(table.error_here("has no [[service.probe]]: a service needs at least one probe"));
        }
        for probe in probe_tables.iter() {
            let spec = read_probe(probe, &monitor, &probes, base, bgp.rpki.is_some(), &dns_roots)?;
            probes.push(Arc::new(spec));
        }
        services.push(Service { id: id.value.to_string(), name: name.value.to_string(), probes });
    }

    let has_bgp = services.iter().flat_map(|s| &s.probes).any(|p| p.check.kind() == Kind::Bgp);
    if has_bgp && bgp.sources.contains(&BgpSource::Session) && bgp.session.is_none() {
        let bgp_table = root.table(field!(root, bgp));
        let err = match bgp_table {
            Some(t) => t.error_at_key("source", "source = \"session\" needs a [bgp.session] table"),
            None => root.error_here("[bgp] source = \"session\" needs a [bgp.session] table"),
        };
        return Err(err);
    }

    let mut maintenance = Vec::new();
    for table in root.tables(field!(root, maintenance)) {
        maintenance.push(read_maintenance(&table, &ids)?);
    }

    Ok(Config {
        file: path.to_path_buf(),
        monitor,
        server,
        storage,
        alerts,
        bgp,
        dns_roots,
        guards,
        services,
        maintenance,
    })
}

/// `[dns] roots`: addresses (port 53 unless given), at least one.
fn read_dns_roots(root: &Table<'_, RawConfig>) -> Result<Arc<[SocketAddr]>, ConfigError> {
    let Some(dns) = root.table(field!(root, dns)) else {
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

/// One `[[maintenance]]`: `services` (known ids; none = all) and either
/// `start` + `end` (RFC 3339) or `weekly`.
fn read_maintenance(
    t: &Table<'_, RawMaintenance>,
    ids: &HashSet<&str>,
) -> Result<crate::maintenance::Window, ConfigError> {
    use crate::maintenance::{Schedule, Window};
    let mut services = Vec::new();
    for s in t.str_list(field!(t, services)).unwrap_or_default() {
        if !ids.contains(s.value) {
            return Err(t.error(&s.span, format!("\"services\": \"{}\" is not a configured service", s.value)));
        }
        services.push(s.value.to_string());
    }
    let time = |s: &str| {
        humantime::parse_rfc3339(s)
            .map(crate::time::unix)
            .map_err(|e| ValueError::not(s, "an RFC 3339 UTC time like \"2026-12-24T02:00:00Z\"").because(e))
    };
    let start = t.parsed(field!(t, start), time)?;
    let end = t.parsed(field!(t, end), time)?;
    let weekly = t.parsed(field!(t, weekly), Schedule::weekly)?;
    let schedule = match (start, end, weekly) {
        (Some(start), Some(end), None) if end > start => Schedule::Once { start, end },
        (Some(_), Some(_), None) => return Err(t.error_at_key("end", "\"end\" must be after \"start\"")),
        (None, None, Some(weekly)) => weekly,
        (_, _, Some(_)) => {
            return Err(t.error_at_key("weekly", "give either \"weekly\" or \"start\" and \"end\", not both"));
        }
        _ => return Err(t.error_here("needs \"start\" and \"end\", or \"weekly\"")),
    };
    Ok(Window { services, schedule })
}

fn read_monitor(root: &Table<'_, RawConfig>) -> Result<Monitor, ConfigError> {
    let mut monitor = Monitor {
        vantage: "local".into(),
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(5),
        fail_after: 3,
        recover_after: 2,
    };
    let Some(t) = root.table(field!(root, monitor)) else { return Ok(monitor) };
    if let Some(v) = t.str(field!(t, vantage)) {
        monitor.vantage = v.value.to_string();
    }
    monitor.interval = t.duration(field!(t, interval), false)?.unwrap_or(monitor.interval);
    // Unset, the timeout fits the interval (a 2 s interval gets a 2 s timeout).
    monitor.timeout = t.duration(field!(t, timeout), false)?.unwrap_or(monitor.timeout.min(monitor.interval));
    monitor.fail_after = t.int(field!(t, fail_after), 1..1001)?.map_or(monitor.fail_after, |n| n as u32);
    monitor.recover_after = t.int(field!(t, recover_after), 1..1001)?.map_or(monitor.recover_after, |n| n as u32);
    if monitor.timeout > monitor.interval {
        return Err(t.error_at_key("timeout", "\"timeout\" must not be longer than \"interval\""));
    }
    Ok(monitor)
}

fn parse_socket_addr(s: &str, default_port: Option<u16>) -> Result<SocketAddr, ValueError> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match (default_port, s.parse::<IpAddr>()) {
        (Some(port), Ok(ip)) => Ok(SocketAddr::new(ip, port)),
        _ => Err(ValueError::not(s, "an IP address with a port (like 127.0.0.1:9464 or [::1]:9464)")),
    }
}

fn read_server(root: &Table<'_, RawConfig>) -> Result<Server, ConfigError> {
    let mut server =
        Server { listen: SocketAddr::from(([127, 0, 0, 1], 9464)), max_connections: 256, public_url: None };
    if let Some(t) = root.table(field!(root, server)) {
        server.listen = t.parsed(field!(t, listen), |s| parse_socket_addr(s, None))?.unwrap_or(server.listen);
        server.max_connections =
            t.int(field!(t, max_connections), 1..65_536)?.map_or(server.max_connections, |n| n as usize);
        server.public_url = t.parsed(field!(t, public_url), |s| {
            let u = reqwest::Url::parse(s).map_err(|e| ValueError::not(s, "a URL").because(e))?;
            if !matches!(u.scheme(), "http" | "https") {
                return Err(ValueError::must(s, "start with http:// or https://"));
            }
            Ok(s.trim_end_matches('/').to_string())
        })?;
    }
    Ok(server)
}

fn read_storage(root: &Table<'_, RawConfig>) -> Result<Storage, ConfigError> {
    let mut storage = Storage {
        path: PathBuf::from("chatpulse.db"),
        raw_retention: Duration::from_secs(14 * 86400),
        rollup_retention: Duration::from_secs(400 * 86400),
    };
    let Some(t) = root.table(field!(root, storage)) else { return Ok(storage) };
    if let Some(p) = t.str(field!(t, path)) {
        if p.value.is_empty() {
            return Err(t.error(&p.span, "\"path\" must not be empty"));
        }
        storage.path = PathBuf::from(p.value);
    }
    storage.raw_retention = t.duration(field!(t, raw_retention), false)?.unwrap_or(storage.raw_retention);
    storage.rollup_retention = t.duration(field!(t, rollup_retention), false)?.unwrap_or(storage.rollup_retention);
    if storage.rollup_retention < storage.raw_retention {
        return Err(
            t.error_at_key("rollup_retention", "\"rollup_retention\" must not be shorter than \"raw_retention\"")
        );
    }
    Ok(storage)
}

fn parse_mailbox(s: &str) -> Result<String, ValueError> {
    lettre::message::Mailbox::from_str(s)
        .map(|_| s.to_string())
        .map_err(|e| ValueError::not(s, "an e-mail address").because(e))
}

fn read_alerts(root: &Table<'_, RawConfig>) -> Result<Alerts, ConfigError> {
    let mut alerts = Alerts {
        group_wait: Duration::from_secs(5),
        flap_changes: 6,
        flap_window: Duration::from_secs(1800),
        email: None,
        webhooks: Vec::new(),
    };
    let Some(t) = root.table(field!(root, alerts)) else { return Ok(alerts) };
    alerts.group_wait = t.duration(field!(t, group_wait), true)?.unwrap_or(alerts.group_wait);
    alerts.flap_changes = t.int(field!(t, flap_changes), 2..1001)?.map_or(alerts.flap_changes, |n| n as usize);
    alerts.flap_window = t.duration(field!(t, flap_window), false)?.unwrap_or(alerts.flap_window);
    for w in t.tables(field!(t, webhook)) {
        alerts.webhooks.push(read_webhook(&w)?);
    }
    let Some(e) = t.table(field!(t, email)) else { return Ok(alerts) };
    let smtp = e.required_str(field!(e, smtp))?;
    let (security, host, port) =
        parse_smtp_url(smtp.value).map_err(|why| e.error(&smtp.span, format!("\"smtp\": {why}")))?;
    let from = e.required_str(field!(e, from))?;
    parse_mailbox(from.value).map_err(|why| e.error(&from.span, format!("\"from\": {why}")))?;
    let to = e.str_list(field!(e, to)).ok_or_else(|| e.error_here("missing required key \"to\""))?;
    if to.is_empty() {
        return Err(e.error_at_key("to", "\"to\" must name at least one recipient"));
    }
    for addr in &to {
        parse_mailbox(addr.value).map_err(|why| e.error(&addr.span, format!("\"to\": {why}")))?;
    }
    alerts.email = Some(Email {
        smtp_url: redacted(smtp.value),
        security,
        host,
        port,
        username: e.str(field!(e, username)).map(|u| u.value.to_string()),
        password_env: e.str(field!(e, password_env)).map(|u| u.value.to_string()),
        from: from.value.to_string(),
        to: to.iter().map(|a| a.value.to_string()).collect(),
        rules: read_alert_rules(&e, (field!(e, notify_on), field!(e, repeat), field!(e, send_recovery)))?,
    });
    Ok(alerts)
}

/// `notify_on`, `repeat` and `send_recovery` of one channel.
/// The keys every alert channel has.
type RuleFields<'r> = (document::Field<'r, Strings>, document::Field<'r, String>, document::Field<'r, bool>);

fn read_alert_rules<R: Keys>(
    t: &Table<'_, R>,
    (notify_on_field, repeat, send_recovery): RuleFields<'_>,
) -> Result<AlertRules, ConfigError> {
    let mut notify_on = vec![NotifyOn::Down];
    if let Some(list) = t.str_list(notify_on_field) {
        notify_on.clear();
        for item in list {
            let event = match item.value {
                "down" => NotifyOn::Down,
                "degraded" => NotifyOn::Degraded,
                other => {
                    return Err(t.error(
                        &item.span,
                        format!("\"notify_on\": \"{other}\" is not an event (expected \"down\" or \"degraded\")"),
                    ));
                }
            };
            if !notify_on.contains(&event) {
                notify_on.push(event);
            }
        }
    }
    let repeat = t.duration(repeat, true)?.unwrap_or(Duration::from_secs(4 * 3600));
    Ok(AlertRules {
        notify_on,
        repeat: (!repeat.is_zero()).then_some(repeat),
        send_recovery: t.bool(send_recovery).unwrap_or(true),
    })
}

fn read_webhook(w: &Table<'_, RawWebhook>) -> Result<Webhook, ConfigError> {
    let url = w.parsed(field!(w, url), |s| {
        let url = reqwest::Url::parse(s).map_err(|e| ValueError::not(s, "a URL").because(e))?;
        match url.scheme() {
            "http" | "https" if url.host().is_some() => Ok(url),
            _ => Err(ValueError::not(s, "an http:// or https:// URL")),
        }
    })?;
    let url = url.ok_or_else(|| w.error_here("missing required key \"url\""))?;
    let format = w
        .parsed(field!(w, format), |s| match s {
            "json" => Ok(WebhookFormat::Json),
            "slack" => Ok(WebhookFormat::Slack),
            other => Err(ValueError::not(other, "a format (expected \"json\" or \"slack\")")),
        })?
        .unwrap_or(WebhookFormat::Json);
    Ok(Webhook {
        url,
        format,
        secret_env: w.str(field!(w, secret_env)).map(|s| s.value.to_string()),
        rules: read_alert_rules(w, (field!(w, notify_on), field!(w, repeat), field!(w, send_recovery)))?,
    })
}

fn parse_smtp_url(s: &str) -> Result<(SmtpSecurity, String, u16), ValueError> {
    let url = reqwest::Url::parse(s).map_err(|e| ValueError::not(s, "a URL").because(e))?;
    let (security, default_port) = match url.scheme() {
        "smtp" => (SmtpSecurity::Plain, 25),
        "smtp+starttls" => (SmtpSecurity::StartTls, 587),
        "smtps" => (SmtpSecurity::Tls, 465),
        other => {
            return Err(ValueError::SmtpScheme(other.to_string()));
        }
    };
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| ValueError::NoHost(s.to_string()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    Ok((security, host, url.port().unwrap_or(default_port)))
}

fn read_bgp(root: &Table<'_, RawConfig>, base: &Path) -> Result<Bgp, ConfigError> {
    let mut bgp = Bgp {
        sources: vec![BgpSource::RisLive],
        ris_live_url: "wss://ris-live.ripe.net/v1/ws/?client=chatpulse".into(),
        seed_url: "https://stat.ripe.net".into(),
        mrt_url: "https://data.ris.ripe.net/rrc00".into(),
        stale_after: Duration::from_secs(300),
        min_peers: 10,
        hijack_min_peers: 3,
        rpki: None,
        canary: false,
        session: None,
    };
    let Some(t) = root.table(field!(root, bgp)) else { return Ok(bgp) };
    if let Some(file) = t.str(field!(t, rpki)) {
        let path = base.join(file.value);
        // Missing is fine (rpki-client may not have run yet since boot: the
        // watcher warns and starts RPKI when the file appears); something
        // that is there but not a file is a mistake.
        if path.exists() && !path.is_file() {
            return Err(t.error(&file.span, format!("\"rpki\": {} is not a regular file", path.display())));
        }
        bgp.rpki = Some(path);
    }
    if let Some(value) = &t.raw.source {
        let words: Vec<&str> = match value.get_ref() {
            Sources::One(word) => vec![word.as_str()],
            Sources::Many(list) => list.iter().map(String::as_str).collect(),
        };
        if words.is_empty() {
            return Err(t.error(&value.span(), "\"source\" must name at least one source"));
        }
        bgp.sources.clear();
        for word in words {
            let source = match word {
                "ris-live" => BgpSource::RisLive,
                "session" => BgpSource::Session,
                "mrt" => BgpSource::Mrt,
                other => {
                    return Err(t.error(
                        &value.span(),
                        format!(
                            "\"source\": \"{other}\" is not a source (expected \"ris-live\", \"session\" or \"mrt\")"
                        ),
                    ));
                }
            };
            if bgp.sources.contains(&source) {
                return Err(t.error(&value.span(), format!("\"source\": \"{word}\" is listed twice")));
            }
            bgp.sources.push(source);
        }
    }
    bgp.canary = t
        .parsed(field!(t, canary), |s| match s {
            "ris-beacons" => Ok(true),
            other => Err(ValueError::not(other, "a canary (expected \"ris-beacons\")")),
        })?
        .unwrap_or(false);
    if bgp.canary && bgp.sources == [BgpSource::Session] {
        return Err(t.error_at_key("canary", "the RIS beacons canary applies to source = \"ris-live\" or \"mrt\""));
    }
    let url = |key: document::Field<'_, String>,
               schemes: &'static [&'static str],
               default: &str|
     -> Result<String, ConfigError> {
        Ok(t.parsed(key, |s| {
            let u = reqwest::Url::parse(s).map_err(|e| ValueError::not(s, "a URL").because(e))?;
            if !schemes.contains(&u.scheme()) {
                return Err(ValueError::must(s, format!("start with {}", schemes.join(":// or ") + "://")));
            }
            Ok(s.trim_end_matches('/').to_string())
        })?
        .unwrap_or_else(|| default.to_string()))
    };
    bgp.ris_live_url = url(field!(t, ris_live_url), &["wss", "ws"], &bgp.ris_live_url)?;
    bgp.seed_url = url(field!(t, seed_url), &["https", "http"], &bgp.seed_url)?;
    bgp.mrt_url = url(field!(t, mrt_url), &["https", "http"], &bgp.mrt_url)?;
    bgp.stale_after = t.duration(field!(t, stale_after), false)?.unwrap_or(bgp.stale_after);
    let sessions_only = bgp.sources == [BgpSource::Session];
    let default_min_peers = if sessions_only { 1 } else { 10 };
    bgp.min_peers = t.int(field!(t, min_peers), 1..100_001)?.map_or(default_min_peers, |n| n as usize);
    let default_hijack = if sessions_only { 1 } else { 3 };
    bgp.hijack_min_peers = t.int(field!(t, hijack_min_peers), 1..100_001)?.map_or(default_hijack, |n| n as usize);
    if let Some(s) = t.table(field!(t, session)) {
        let listen = s
            .parsed(field!(s, listen), |v| parse_socket_addr(v, Some(179)))?
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 179)));
        let local_as = s
            .int(field!(s, local_as), 1..(1 << 32))?
            .ok_or_else(|| s.error_here("missing required key \"local_as\""))? as u32;
        let router_id = s
            .parsed(field!(s, router_id), |v| {
                v.parse::<Ipv4Addr>()
                    .ok()
                    .filter(|ip| !ip.is_unspecified())
                    .ok_or_else(|| ValueError::not(v, "a non-zero IPv4 address"))
            })?
            .ok_or_else(|| s.error_here("missing required key \"router_id\""))?;
        let mut peers: Vec<BgpPeer> = Vec::new();
        let peer_tables = s.tables(field!(s, peer));
        if peer_tables.is_empty() {
            return Err(s.error_here("needs at least one [[bgp.session.peer]]"));
        }
        for p in peer_tables {
            let address = p
                .parsed(field!(p, address), |v| v.parse::<IpAddr>().map_err(|_| ValueError::not(v, "an IP address")))?
                .ok_or_else(|| p.error_here("missing required key \"address\""))?;
            if peers.iter().any(|q| q.address == address) {
                return Err(p.error_at_key("address", format!("\"address\": {address} is configured twice")));
            }
            let remote_as = p
                .int(field!(p, remote_as), 1..(1 << 32))?
                .ok_or_else(|| p.error_here("missing required key \"remote_as\""))? as u32;
            let port = p.int(field!(p, port), 1..65536)?.map(|n| n as u16);
            peers.push(BgpPeer { address, remote_as, port });
        }
        bgp.session = Some(BgpSession { listen, local_as, router_id, peers });
    }
    Ok(bgp)
}

const COMMON_PROBE_KEYS: [&str; 8] =
    ["kind", "id", "interval", "timeout", "fail_after", "recover_after", "essential", "group"];
const DNS_KEYS: [&str; 14] = [
    "query",
    "record",
    "server",
    "servers",
    "require",
    "recursion",
    "authoritative",
    "expect_rcode",
    "expect_answer",
    "expect_answer_in",
    "transport",
    "server_name",
    "ca_file",
    "system_roots",
];
const HTTP_KEYS: [&str; 10] = [
    "url",
    "expect_headers",
    "method",
    "expect_status",
    "body_contains",
    "user_agent",
    "max_redirects",
    "ca_file",
    "system_roots",
    "min_cert_days",
];
const BGP_KEYS: [&str; 6] = ["prefix", "origin", "origins", "min_visibility", "covering", "more_specifics"];
const TCP_KEYS: [&str; 1] = ["address"];
const TLS_KEYS: [&str; 6] = ["address", "server_name", "ca_file", "system_roots", "alpn", "min_cert_days"];
const MTPROTO_KEYS: [&str; 2] = ["address", "fingerprints"];
const WHATSAPP_KEYS: [&str; 3] = ["address", "url", "root_key"];

fn read_probe(
    t: &Table<'_, RawProbe>,
    monitor: &Monitor,
    earlier: &[Arc<ProbeSpec>],
    base: &Path,
    rpki: bool,
    roots: &Arc<[SocketAddr]>,
) -> Result<ProbeSpec, ConfigError> {
    let kind = t.required_str(field!(t, kind))?;
    let (kind_value, kind_keys): (Kind, &[&str]) = match kind.value {
        "dns" => (Kind::Dns, &DNS_KEYS),
        "http" => (Kind::Http, &HTTP_KEYS),
        "bgp" => (Kind::Bgp, &BGP_KEYS),
        "tcp" => (Kind::Tcp, &TCP_KEYS),
        "tls" => (Kind::Tls, &TLS_KEYS),
        "mtproto" => (Kind::Mtproto, &MTPROTO_KEYS),
        "whatsapp" => (Kind::Whatsapp, &WHATSAPP_KEYS),
        other => {
            return Err(t.error(
                &kind.span,
                format!(
                    "\"kind\": \"{other}\" is not a probe kind (expected \"dns\", \"http\", \"bgp\", \"tcp\", \"tls\", \"mtproto\" or \"whatsapp\")"
                ),
            ));
        }
    };
    let stray = t.present().into_iter().find(|(k, _)| !COMMON_PROBE_KEYS.contains(k) && !kind_keys.contains(k));
    if let Some((key, span)) = stray {
        return Err(t.error(&span, format!("key \"{key}\" does not apply to a {} probe", kind.value)));
    }

    let check = match kind_value {
        Kind::Dns => Check::Dns(Arc::new(read_dns(t, base, roots)?)),
        Kind::Http => Check::Http(Arc::new(read_http(t, base)?)),
        Kind::Bgp => Check::Bgp(read_bgp_check(t, rpki)?),
        Kind::Tcp => Check::Tcp(read_endpoint(t)?),
        Kind::Tls => Check::Tls(read_tls(t, base)?),
        Kind::Mtproto => Check::Mtproto(read_mtproto(t)?),
        Kind::Whatsapp => Check::Whatsapp(read_whatsapp(t)?),
    };

    let n = earlier.iter().filter(|p| p.check.kind() == kind_value).count() + 1;
    let id = match t.str(field!(t, id)) {
        Some(id) => {
            if id.value.is_empty() || !id.value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                return Err(t.error(
                    &id.span,
                    format!("\"id\": \"{}\" must use only letters, digits, '-', '_' and '.'", id.value),
                ));
            }
            id.value.to_string()
        }
        None => format!("{}-{n}", kind_value.as_str()),
    };
    if earlier.iter().any(|p| p.id == id) {
        return Err(t.error_at_key("id", format!("probe id \"{id}\" is used twice in this service")));
    }
    let essential = t.bool(field!(t, essential)).unwrap_or(false);
    let group = match t.str(field!(t, group)) {
        None => None,
        Some(_) if !essential => {
            return Err(t.error_at_key("group", "\"group\" names an essential group: it needs essential = true"));
        }
        Some(g) if g.value.trim().is_empty() || g.value.chars().any(char::is_control) => {
            return Err(t.error(&g.span, "\"group\" must be a non-empty name on one line"));
        }
        Some(g) => Some(g.value.to_string()),
    };
    let interval = t.duration(field!(t, interval), false)?.unwrap_or(monitor.interval);
    let timeout = t.duration(field!(t, timeout), false)?.unwrap_or(monitor.timeout.min(interval));
    if timeout > interval {
        return Err(t.error_at_key("timeout", "\"timeout\" must not be longer than \"interval\""));
    }
    Ok(ProbeSpec {
        id,
        interval,
        timeout,
        fail_after: t.int(field!(t, fail_after), 1..1001)?.map_or(monitor.fail_after, |n| n as u32),
        recover_after: t.int(field!(t, recover_after), 1..1001)?.map_or(monitor.recover_after, |n| n as u32),
        essential,
        group,
        check,
    })
}

fn read_mtproto(t: &Table<'_, RawProbe>) -> Result<MtprotoCheck, ConfigError> {
    let endpoint = read_endpoint(t)?;
    let fingerprints = match t.str_list(field!(t, fingerprints)) {
        None => vec![TELEGRAM_PRODUCTION_FINGERPRINT],
        Some(list) if list.is_empty() => {
            return Err(t.error_at_key("fingerprints", "\"fingerprints\" must name at least one key fingerprint"));
        }
        Some(list) => list
            .iter()
            .map(|f| {
                let digits = f.value.strip_prefix("0x").unwrap_or(f.value);
                u64::from_str_radix(digits, 16).ok().filter(|_| digits.len() == 16).ok_or_else(|| {
                    t.error(
                        &f.span,
                        format!("\"fingerprints\": \"{}\" is not a key fingerprint (16 hex digits)", f.value),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(MtprotoCheck { endpoint, fingerprints })
}

fn read_whatsapp(t: &Table<'_, RawProbe>) -> Result<WhatsappCheck, ConfigError> {
    let target = match (t.str(field!(t, address)), t.str(field!(t, url))) {
        (Some(_), Some(_)) => return Err(t.error_at_key("url", "give \"address\" or \"url\", not both")),
        (None, None) => return Err(t.error_here("missing required key \"address\" (or \"url\")")),
        (Some(_), None) => ChatTarget::Tcp(read_endpoint(t)?),
        (None, Some(url)) => {
            let bad = || {
                t.error(
                    &url.span,
                    format!("\"url\": \"{}\" must be a wss:// (or ws://) URL with a host", redacted(url.value)),
                )
            };
            let parsed = reqwest::Url::parse(url.value).map_err(|_| bad())?;
            let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
                return Err(bad());
            };
            if !matches!(parsed.scheme(), "ws" | "wss") || host.is_empty() {
                return Err(bad());
            }
            let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
            let address = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
            ChatTarget::WebSocket { url: parsed, endpoint: Endpoint { address, host, port } }
        }
    };
    let root_key = match t.str(field!(t, root_key)) {
        None => WHATSAPP_ROOT_KEY,
        Some(key) => parse_hex32(key.value).ok_or_else(|| {
            t.error(&key.span, format!("\"root_key\": \"{}\" is not a 32-byte key in hex (64 digits)", key.value))
        })?,
    };
    Ok(WhatsappCheck { target, root_key })
}

/// 64 hex digits as 32 bytes.
fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

fn read_endpoint(t: &Table<'_, RawProbe>) -> Result<Endpoint, ConfigError> {
    let address = t.required_str(field!(t, address))?;
    Endpoint::parse(address.value).map_err(|why| t.error(&address.span, format!("\"address\": {why}")))
}

/// `ca_file` (checked to hold PEM certificates) and `system_roots`.
fn read_trust(t: &Table<'_, RawProbe>, base: &Path) -> Result<(Option<PathBuf>, bool), ConfigError> {
    let ca_file = match t.str(field!(t, ca_file)) {
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
    let system_roots = t.bool(field!(t, system_roots));
    if system_roots.is_some() && ca_file.is_none() {
        return Err(t.error_at_key("system_roots", "\"system_roots\" only applies with \"ca_file\""));
    }
    Ok((ca_file, system_roots.unwrap_or(false)))
}

fn read_tls(t: &Table<'_, RawProbe>, base: &Path) -> Result<TlsCheck, ConfigError> {
    let endpoint = read_endpoint(t)?;
    let server_name = match t.str(field!(t, server_name)) {
        Some(name) => {
            if rustls::pki_types::ServerName::try_from(name.value).is_err() {
                return Err(t.error(&name.span, format!("\"server_name\": \"{}\" is not a host name", name.value)));
            }
            name.value.to_string()
        }
        None => endpoint.host.clone(),
    };
    let (ca_file, system_roots) = read_trust(t, base)?;
    let alpn = t.str_list(field!(t, alpn)).map(|l| l.iter().map(|a| a.value.to_string()).collect()).unwrap_or_default();
    Ok(TlsCheck {
        endpoint,
        server_name,
        ca_file,
        system_roots,
        alpn,
        min_cert_days: t.int(field!(t, min_cert_days), 0..3651)?.map(|n| n as u32),
    })
}

fn read_dns(t: &Table<'_, RawProbe>, base: &Path, roots: &Arc<[SocketAddr]>) -> Result<DnsCheck, ConfigError> {
    let query = t.required_str(field!(t, query))?;
    if hickory_proto::rr::Name::from_utf8(query.value).is_err() || query.value.is_empty() {
        return Err(t.error(&query.span, format!("\"query\": \"{}\" is not a domain name", query.value)));
    }
    let record = t
        .parsed(field!(t, record), |s| {
            RECORD_TYPES.iter().find(|(name, _)| name.eq_ignore_ascii_case(s)).map(|(_, r)| *r).ok_or_else(|| {
                ValueError::Unknown { what: "record type", text: s.to_string(), known: "A AAAA CNAME NS SOA TXT MX" }
            })
        })?
        .unwrap_or(RecordType::A);
    let expect_rcode = t
        .parsed(field!(t, expect_rcode), |s| {
            RCODES.iter().find(|(name, _, _)| name.eq_ignore_ascii_case(s)).map(|(_, r, _)| *r).ok_or_else(|| {
                ValueError::Unknown {
                    what: "response code",
                    text: s.to_string(),
                    known: "NOERROR NXDOMAIN SERVFAIL REFUSED FORMERR NOTIMP",
                }
            })
        })?
        .unwrap_or(Rcode::NoError);
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
    let (ca_file, system_roots) = read_trust(t, base)?;
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
fn read_answer_space(t: &Table<'_, RawProbe>, record: RecordType) -> Result<Vec<Prefix>, ConfigError> {
    let Some(list) = t.str_list(field!(t, expect_answer_in)) else { return Ok(Vec::new()) };
    if !matches!(record, RecordType::A | RecordType::Aaaa) {
        return Err(t.error_at_key("expect_answer_in", "\"expect_answer_in\" applies to record = \"A\" or \"AAAA\""));
    }
    if list.is_empty() {
        return Err(t.error_at_key("expect_answer_in", "\"expect_answer_in\" must name at least one prefix"));
    }
    list.iter()
        .map(|p| p.value.parse::<Prefix>().map_err(|e| t.error(&p.span, format!("\"expect_answer_in\": {e}"))))
        .collect()
}

fn read_http(t: &Table<'_, RawProbe>, base: &Path) -> Result<HttpCheck, ConfigError> {
    let url = t.required_str(field!(t, url))?;
    let parsed = reqwest::Url::parse(url.value)
        .map_err(|e| t.error(&url.span, format!("\"url\": \"{}\" is not a URL ({e})", redacted(url.value))))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(t.error(
            &url.span,
            format!("\"url\": \"{}\" must be an http:// or https:// URL with a host", redacted(url.value)),
        ));
    }
    let method = t
        .parsed(field!(t, method), |s| match s.to_ascii_uppercase().as_str() {
            "GET" => Ok(HttpMethod::Get),
            "HEAD" => Ok(HttpMethod::Head),
            _ => Err(ValueError::not(s, "a supported method (expected GET or HEAD)")),
        })?
        .unwrap_or(HttpMethod::Get);
    let expect_status = match t.str_list(field!(t, expect_status)) {
        None => vec![StatusRange { low: 200, high: 399 }],
        Some(list) if list.is_empty() => {
            return Err(t.error_at_key("expect_status", "\"expect_status\" must list at least one code or range"));
        }
        Some(list) => list
            .iter()
            .map(|s| StatusRange::parse(s.value).map_err(|why| t.error(&s.span, format!("\"expect_status\": {why}"))))
            .collect::<Result<_, _>>()?,
    };
    let body_contains = t.str(field!(t, body_contains)).map(|b| b.value.to_string());
    if body_contains.is_some() && method == HttpMethod::Head {
        return Err(t.error_at_key("body_contains", "\"body_contains\" cannot be checked with method HEAD (no body)"));
    }
    let user_agent = match t.str(field!(t, user_agent)) {
        Some(ua) if ua.value.trim().is_empty() || ua.value.contains(['\r', '\n']) => {
            return Err(t.error(&ua.span, "\"user_agent\" must be one non-empty line"));
        }
        Some(ua) => ua.value.to_string(),
        None => DEFAULT_USER_AGENT.to_string(),
    };
    let max_redirects = t.int(field!(t, max_redirects), 0..21)?.map_or(5, |n| n as u32);
    let (ca_file, system_roots) = read_trust(t, base)?;
    let expect_headers = t
        .str_list(field!(t, expect_headers))
        .unwrap_or_default()
        .iter()
        .map(|h| {
            reqwest::header::HeaderName::from_bytes(h.value.as_bytes()).map_err(|_| {
                t.error(&h.span, format!("\"expect_headers\": \"{}\" is not an HTTP header name", h.value))
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(HttpCheck {
        url: url.value.to_string(),
        method,
        expect_status,
        body_contains,
        user_agent,
        max_redirects,
        ca_file,
        system_roots,
        min_cert_days: t.int(field!(t, min_cert_days), 0..3651)?.map(|n| n as u32),
        expect_headers,
    })
}

fn read_bgp_check(t: &Table<'_, RawProbe>, rpki: bool) -> Result<BgpCheck, ConfigError> {
    let prefix = t.required_str(field!(t, prefix))?;
    let parsed: Prefix = prefix.value.parse().map_err(|e| t.error(&prefix.span, format!("\"prefix\": {e}")))?;
    let mut origins: Vec<u32> = t.int(field!(t, origin), 1..(1 << 32))?.map(|n| n as u32).into_iter().collect();
    if let Some(list) = t.int_list(field!(t, origins), 1..(1 << 32))? {
        if !origins.is_empty() {
            return Err(t.error_at_key("origins", "give \"origin\" or \"origins\", not both"));
        }
        if list.is_empty() {
            return Err(t.error_at_key("origins", "\"origins\" must name at least one AS"));
        }
        origins = list.into_iter().map(|n| n as u32).collect();
    }
    let more_specifics = match t.bool(field!(t, more_specifics)) {
        Some(true) if origins.is_empty() && !rpki => {
            return Err(t.error_at_key(
                "more_specifics",
                "\"more_specifics\" needs \"origin\" or \"origins\" (which origins may announce more-specifics), or [bgp] rpki",
            ));
        }
        Some(set) => set,
        None => !origins.is_empty(),
    };
    Ok(BgpCheck {
        prefix: parsed,
        origins,
        min_visibility: t.number(field!(t, min_visibility), 0.0, 1.0)?.unwrap_or(0.5),
        covering: t.bool(field!(t, covering)).unwrap_or(false),
        more_specifics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("config.toml"), text)
    }

    const MINIMAL: &str = "[[service]]\nid = \"whatsapp\"\nname = \"WhatsApp\"\n\n  [[service.probe]]\n  kind = \"dns\"\n  query = \"web.whatsapp.com\"\n";

    #[test]
    fn minimal_config_gets_the_spec_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.monitor.interval, Duration::from_secs(30));
        assert_eq!(c.monitor.fail_after, 3);
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:9464");
        assert_eq!(c.storage.raw_retention, Duration::from_secs(14 * 86400));
        assert_eq!(c.bgp.sources, vec![BgpSource::RisLive]);
        assert_eq!(c.bgp.min_peers, 10);
        let probe = &c.services[0].probes[0];
        assert_eq!(probe.id, "dns-1");
        assert_eq!(probe.timeout, Duration::from_secs(5));
        let Check::Dns(d) = &probe.check else { panic!("dns expected") };
        assert_eq!((d.record, d.servers.is_empty(), d.recursion, d.expect_answer), (RecordType::A, true, true, true));
    }

    #[test]
    fn errors_name_the_line_service_probe_and_key() {
        let text = MINIMAL.replace("query = \"web.whatsapp.com\"", "query = \"x.org\"\n  record = \"AAA\"");
        let err = parse(&text).unwrap_err().to_string();
        assert_eq!(
            err,
            "config.toml:8: service \"whatsapp\" probe 1: \"record\": unknown record type \"AAA\" (expected one of A AAAA CNAME NS SOA TXT MX)"
        );
    }

    #[test]
    fn a_short_interval_gets_a_timeout_that_fits() {
        let c = parse(&format!("[monitor]\ninterval = \"2s\"\n{MINIMAL}")).unwrap();
        assert_eq!(c.monitor.timeout, Duration::from_secs(2));
        assert_eq!(c.services[0].probes[0].timeout, Duration::from_secs(2));
        let err = parse(&format!("[monitor]\ninterval = \"2s\"\ntimeout = \"3s\"\n{MINIMAL}")).unwrap_err();
        assert!(err.to_string().starts_with("config.toml:3: [monitor]: \"timeout\" must not be longer"), "{err}");
    }

    #[test]
    fn server_limits_and_public_url_are_read() {
        let c = parse(&format!(
            "[server]\nlisten = \"127.0.0.1:9464\"\nmax_connections = 64\npublic_url = \"https://status.example.org/\"\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(c.server.max_connections, 64);
        assert_eq!(crate::alert::render::status_url(&c), "https://status.example.org/");
        assert_eq!(parse(MINIMAL).unwrap().server.max_connections, 256);
        let err = parse(&format!("[server]\npublic_url = \"ftp://x\"\n{MINIMAL}")).unwrap_err().to_string();
        assert!(err.contains("\"public_url\": \"ftp://x\" must start with http:// or https://"), "{err}");
    }

    #[test]
    fn tcp_and_tls_probes_and_guards_are_read() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("root.pem"), TEST_ROOT_PEM).unwrap();
        let text = format!(
            "[[guard]]\nkind = \"tls\"\naddress = \"[2001:db8::1]:443\"\n{MINIMAL}  [[service.probe]]\n  kind = \"tcp\"\n  address = \"g.whatsapp.net:5222\"\n  essential = true\n  [[service.probe]]\n  kind = \"tls\"\n  address = \"chat.signal.org:443\"\n  ca_file = \"root.pem\"\n  alpn = [\"h2\"]\n  min_cert_days = 7\n"
        );
        let c = Config::parse(&dir.join("config.toml"), &text).unwrap();
        let Check::Tls(guard) = &c.guards[0].check else { panic!("tls guard expected") };
        assert_eq!((guard.endpoint.host.as_str(), guard.endpoint.port), ("2001:db8::1", 443));
        let probes = &c.services[0].probes;
        let Check::Tcp(tcp) = &probes[1].check else { panic!("tcp expected") };
        assert_eq!((tcp.host.as_str(), tcp.port, probes[1].essential), ("g.whatsapp.net", 5222, true));
        let Check::Tls(tls) = &probes[2].check else { panic!("tls expected") };
        assert_eq!(tls.server_name, "chat.signal.org");
        assert_eq!(tls.ca_file.as_deref(), Some(dir.join("root.pem").as_path()), "relative to the config");
        assert_eq!((tls.min_cert_days, tls.system_roots), (Some(7), false));
        for (bad, message) in [
            ("  [[service.probe]]\n  kind = \"tcp\"\n  address = \"no-port.example\"\n", "is not host:port"),
            (
                "  [[service.probe]]\n  kind = \"tls\"\n  address = \"x.org:443\"\n  ca_file = \"missing.pem\"\n",
                "cannot read",
            ),
            (
                "  [[service.probe]]\n  kind = \"tcp\"\n  address = \"x.org:1\"\n  alpn = [\"h2\"]\n",
                "does not apply to a tcp probe",
            ),
        ] {
            let err = Config::parse(&dir.join("config.toml"), &format!("{MINIMAL}{bad}")).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
        let control = MINIMAL.replace("name = \"WhatsApp\"", "name = \"What\\nsApp\"");
        assert!(
            parse(&control).unwrap_err().to_string().contains("\"name\" must be one line without control characters")
        );
        let essential_guard = format!("[[guard]]\nkind = \"tcp\"\naddress = \"x.org:1\"\nessential = true\n{MINIMAL}");
        assert!(parse(&essential_guard).unwrap_err().to_string().contains("a guard cannot be essential"));
    }

    #[test]
    fn dns_servers_require_and_the_aa_check_are_read() {
        let probe = |extra: &str| {
            parse(&MINIMAL.replace("query = \"web.whatsapp.com\"", &format!("query = \"web.whatsapp.com\"\n{extra}")))
        };
        let c = probe("  servers = [\"1.1.1.1\", \"8.8.8.8:53\"]\n  require = \"all\"").unwrap();
        let Check::Dns(d) = &c.services[0].probes[0].check else { panic!("dns expected") };
        assert_eq!(d.servers.len(), 2);
        assert!(d.require_all && !d.authoritative);
        let c = probe("  transport = \"tls\"\n  server = \"1.1.1.1\"\n  server_name = \"one.one.one.one\"").unwrap();
        let Check::Dns(d) = &c.services[0].probes[0].check else { panic!("dns expected") };
        assert_eq!(d.servers, vec![DnsServer::Addr("1.1.1.1:853".parse().unwrap())], "DoT's port by default");
        let c = probe("  transport = \"https\"\n  server = \"https://dns.example/dns-query\"").unwrap();
        let Check::Dns(d) = &c.services[0].probes[0].check else { panic!("dns expected") };
        assert_eq!(d.servers, vec![DnsServer::Url("https://dns.example/dns-query".into())]);
        let c =
            probe("  servers = \"delegation\"\n  expect_answer_in = [\"157.240.0.0/16\", \"2a03:2880::/32\"]").unwrap();
        let Check::Dns(d) = &c.services[0].probes[0].check else { panic!("dns expected") };
        let roots = d.delegation.as_ref().expect("a delegation probe");
        assert_eq!(roots.len(), 26, "the 13 root servers, IPv4 and IPv6, by default");
        assert!(!d.recursion && d.authoritative && d.servers.is_empty() && d.expect_answer_in.len() == 2);
        let c = probe("  server = \"129.134.30.12\"\n  recursion = false").unwrap();
        let Check::Dns(d) = &c.services[0].probes[0].check else { panic!("dns expected") };
        assert!(d.authoritative, "asked without recursion, the AA flag is checked by default");
        for (extra, message) in [
            ("  server = \"1.1.1.1\"\n  servers = [\"8.8.8.8\"]", "not both"),
            ("  servers = \"delegations\"", "\"servers\": \"delegations\" is not a list of servers or \"delegation\""),
            (
                "  servers = \"delegation\"\n  recursion = true",
                "asks the zone's own servers directly, without recursion",
            ),
            ("  servers = \"delegation\"\n  transport = \"tls\"", "asks the zone's own servers over UDP"),
            ("  record = \"MX\"\n  expect_answer_in = [\"192.0.2.0/24\"]", "applies to record = \"A\" or \"AAAA\""),
            ("  expect_answer_in = [\"192.0.2.0/33\"]", "\"expect_answer_in\": "),
            ("  servers = [\"1.1.1.1\", \"1.1.1.1:53\"]", "listed twice"),
            ("  servers = [\"1.1.1.1\"]\n  require = \"most\"", "\"most\" is not \"any\" or \"all\""),
            ("  authoritative = true", "applies to recursion = false only"),
            ("  transport = \"https\"\n  server = \"1.1.1.1\"", "must be an https:// URL"),
            ("  transport = \"tls\"", "an encrypted transport needs"),
            (
                "  server = \"1.1.1.1\"\n  server_name = \"one.one.one.one\"",
                "applies to transport = \"tls\" or \"https\" only",
            ),
            ("  transport = \"quic\"\n  server = \"1.1.1.1\"", "is not a transport"),
        ] {
            let err = probe(extra).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("chatpulse-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A self-signed certificate (rcgen), only parsed here.
    const TEST_ROOT_PEM: &str = include_str!("../../tests/data/test-root.pem");

    #[test]
    fn passwords_in_urls_are_redacted_for_display() {
        assert_eq!(redacted("http://admin:hunter2@example.org/x"), "http://admin:***@example.org/x");
        assert_eq!(redacted("https://example.org/"), "https://example.org/");
        assert_eq!(redacted("not a url"), "not a url");
    }

    #[test]
    fn several_sources_are_pooled_and_each_named_once() {
        let session = "[bgp.session]\nlocal_as = 65010\nrouter_id = \"192.0.2.10\"\n[[bgp.session.peer]]\naddress = \"192.0.2.1\"\nremote_as = 65001\n";
        let c = parse(&format!("[bgp]\nsource = [\"ris-live\", \"session\"]\n{session}{MINIMAL}")).unwrap();
        assert_eq!(c.bgp.sources, vec![BgpSource::RisLive, BgpSource::Session]);
        assert_eq!(c.bgp.min_peers, 10, "collector peers in the pool: the collector default");
        let c = parse(&format!("[bgp]\nsource = \"session\"\n{session}{MINIMAL}")).unwrap();
        assert_eq!((c.bgp.sources, c.bgp.min_peers), (vec![BgpSource::Session], 1));
        for (source, message) in [
            ("[]", "\"source\" must name at least one source"),
            ("[\"mrt\", \"mrt\"]", "\"source\": \"mrt\" is listed twice"),
            ("[\"bmp\"]", "\"source\": \"bmp\" is not a source"),
            ("5", "\"source\" must be a string or an array of strings"),
        ] {
            let err = parse(&format!("[bgp]\nsource = {source}\n{MINIMAL}")).unwrap_err().to_string();
            assert!(err.starts_with("config.toml:2: [bgp]: ") && err.contains(message), "{source}: {err}");
        }
    }

    #[test]
    fn serde_refusals_name_the_line_the_place_and_the_key() {
        let cases = [
            (
                format!("[alerts.email]\nsmtpx = \"smtp://x\"\n{MINIMAL}"),
                "config.toml:2: [alerts.email]: unknown key \"smtpx\" (expected one of: smtp, username, password_env, from, to, notify_on, repeat, send_recovery)",
            ),
            (
                format!("{MINIMAL}  interval = 5\n"),
                "config.toml:8: service \"whatsapp\" probe 1: \"interval\" must be a string, not an integer",
            ),
            (
                format!("[bgp]\n[bgp.session]\nlocal_as = 1\n[[bgp.session.peer]]\nremote_as = \"x\"\n{MINIMAL}"),
                "config.toml:5: [bgp.session] peer 1: \"remote_as\" must be an integer, not a string",
            ),
            (format!("monitor = 5\n{MINIMAL}"), "config.toml:1: \"monitor\" must be a table, not an integer"),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(&text).unwrap_err().to_string(), expected);
        }
    }

    #[test]
    fn keys_of_another_kind_are_named() {
        let text = MINIMAL.replace("query = \"web.whatsapp.com\"", "query = \"x.org\"\n  url = \"http://x/\"");
        let err = parse(&text).unwrap_err().to_string();
        assert_eq!(err, "config.toml:8: service \"whatsapp\" probe 1: key \"url\" does not apply to a dns probe");
    }
}
