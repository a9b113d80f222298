//! The http probe: one request, judged on its headers (`expect_headers`:
//! a header only the platform's own server sends, such as Signal's
//! `X-Signal-Timestamp`, tells it from a proxy answering in its place),
//! status and (optionally) body text.
//!
//! Every run opens a fresh connection (no pooling), so a probe measures what a
//! new user would meet: name resolution, TCP, TLS, the response. The body is
//! read only when `body_contains` asks for it, and never beyond
//! [`BODY_CAP`], so a hostile or huge target cannot exhaust memory. Errors are
//! told apart: timeout, connection, TLS, status, body, redirect, protocol.
//!
//! Redirects are followed here, not by the HTTP client, so each hop is
//! checked before anything connects to it: same scheme or an upgrade to
//! https, at most `max_redirects`, and never to a loopback, link-local or
//! private address unless the original target was one (a public site must
//! not be able to point the monitor at its own network). A refused hop is
//! `http_redirect`. URLs are shown with their password redacted.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::kind::{
    Evidence, Finding, Layer, Probe, ProbeKind, ReadContext, Reason, RunFuture, Toolkit, Unusable,
    is_resource_shortage, read_trust,
};
use crate::document::{ConfigError, Strings, Table, ValueError, field, redacted, table};

table!(
    /// The keys of `kind = "http"`.
    RawHttp {
        url: String,
        expect_headers: Strings,
        method: String,
        expect_status: Strings,
        body_contains: String,
        user_agent: String,
        max_redirects: i64,
        ca_file: String,
        system_roots: bool,
        min_cert_days: i64,
    }
);

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
    pub(crate) fn parse(s: &str) -> Result<StatusRange, ValueError> {
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

impl ProbeKind for HttpCheck {
    const NAME: &'static str = "http";
    const LAYER: Layer = Layer::Http;
    const TIMEOUT: Reason = Reason::HttpTimeout;
    type Raw = RawHttp;

    fn read(t: &Table<'_, RawHttp>, cx: &ReadContext<'_>) -> Result<HttpCheck, ConfigError> {
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
                .map(|s| {
                    StatusRange::parse(s.value).map_err(|why| t.error(&s.span, format!("\"expect_status\": {why}")))
                })
                .collect::<Result<_, _>>()?,
        };
        let body_contains = t.str(field!(t, body_contains)).map(|b| b.value.to_string());
        if body_contains.is_some() && method == HttpMethod::Head {
            return Err(
                t.error_at_key("body_contains", "\"body_contains\" cannot be checked with method HEAD (no body)")
            );
        }
        let user_agent = match t.str(field!(t, user_agent)) {
            Some(ua) if ua.value.trim().is_empty() || ua.value.contains(['\r', '\n']) => {
                return Err(t.error(&ua.span, "\"user_agent\" must be one non-empty line"));
            }
            Some(ua) => ua.value.to_string(),
            None => DEFAULT_USER_AGENT.to_string(),
        };
        let max_redirects = t.int(field!(t, max_redirects), 0..21)?.map_or(5, |n| n as u32);
        let (ca_file, system_roots) = read_trust(t, field!(t, ca_file), field!(t, system_roots), cx.base)?;
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

    fn target(&self) -> String {
        match self.method {
            HttpMethod::Get => self.shown_url(),
            HttpMethod::Head => format!("HEAD {}", self.shown_url()),
        }
    }

    fn scope(&self) -> String {
        self.host()
    }

    fn build(check: &Arc<HttpCheck>, timeout: Duration, tools: &Toolkit) -> Box<dyn Probe> {
        match client_for(check, &tools.http) {
            Ok(client) => Box::new(HttpProbe::new(check.clone(), timeout, client)),
            Err(why) => Box::new(Unusable { reason: Reason::HttpTls, why: format!("{}: {why}", check.shown_url()) }),
        }
    }
}

/// The most of a body ever read.
pub const BODY_CAP: usize = 1 << 20;

/// The shared client: rustls, no connection reuse, no automatic redirects
/// (the probe follows them itself, under its policy), the server's
/// certificate kept for its expiry.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    builder().build()
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(DEFAULT_USER_AGENT)
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .tls_info(true)
}

/// A client of its own for a probe with a `ca_file` (trusting exactly its
/// roots, plus the system's with `system_roots`); the shared one otherwise.
pub fn client_for(check: &HttpCheck, shared: &reqwest::Client) -> Result<reqwest::Client, ClientError> {
    let Some(ca_file) = &check.ca_file else { return Ok(shared.clone()) };
    // h2 first, as the shared client offers it (Signal's grpc.chat.signal.org speaks h2).
    let alpn = ["h2".to_string(), "http/1.1".to_string()];
    let tls = super::tls::client_config(Some(ca_file), check.system_roots, &alpn)?;
    Ok(builder().use_preconfigured_tls(tls).build()?)
}

/// Why a probe with a `ca_file` cannot have its own client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Its roots cannot be loaded.
    #[error(transparent)]
    Roots(#[from] super::tls::TlsSetupError),
    /// reqwest refused the configuration.
    #[error("{0}")]
    Build(#[from] reqwest::Error),
}

/// Why a redirect is not followed (`http_redirect`).
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("the Location header is not a URL")]
    NotAUrl,
    #[error("more than {0} redirects (max_redirects)")]
    TooMany(u32),
    #[error("a downgrade from https to http")]
    Downgrade,
    #[error("scheme \"{0}\" is not http or https")]
    Scheme(String),
    #[error("no host")]
    NoHost,
    #[error("{host} does not resolve ({source})")]
    Unresolved { host: String, source: std::io::Error },
    #[error("{0} did not resolve in time")]
    Unanswered(String),
    #[error("{0} is a loopback, link-local or private address")]
    Internal(String),
}

/// A configured http probe.
pub struct HttpProbe {
    check: std::sync::Arc<HttpCheck>,
    /// Parsed once: parsing (with IDNA) on every run costs more than the
    /// request's own user-space work.
    url: Option<reqwest::Url>,
    /// The URL as shown (password redacted).
    shown: String,
    timeout: Duration,
    client: reqwest::Client,
}

/// True for addresses a public site must not send the monitor to.
fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64) // 100.64/10, carrier-grade NAT
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(IpAddr::V4(v4)))
        }
    }
}

/// The addresses `url`'s host stands for (an IP literal, or resolved).
async fn addresses(url: &reqwest::Url, until: Instant) -> Result<Vec<IpAddr>, Refusal> {
    let host = url.host_str().ok_or(Refusal::NoHost)?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let port = url.port_or_known_default().unwrap_or(80);
    match tokio::time::timeout_at(until, tokio::net::lookup_host((bare, port))).await {
        Ok(Ok(found)) => Ok(found.map(|a| a.ip()).collect()),
        Ok(Err(source)) => Err(Refusal::Unresolved { host: host.to_string(), source }),
        Err(_) => Err(Refusal::Unanswered(host.to_string())),
    }
}

impl HttpProbe {
    /// Prepares the probe.
    pub fn new(check: impl Into<std::sync::Arc<HttpCheck>>, timeout: Duration, client: reqwest::Client) -> HttpProbe {
        let check = check.into();
        HttpProbe { url: reqwest::Url::parse(&check.url).ok(), shown: check.shown_url(), check, timeout, client }
    }

    /// Whether the redirect from `from` (the original target was
    /// `original`) to `to` may be followed; the refusal says why.
    async fn allowed(
        &self,
        original: &reqwest::Url,
        from: &reqwest::Url,
        to: &reqwest::Url,
        until: Instant,
    ) -> Result<(), Refusal> {
        match (from.scheme(), to.scheme()) {
            ("http", "http") | ("https", "https") | ("http", "https") => {}
            ("https", "http") => return Err(Refusal::Downgrade),
            (_, other) => return Err(Refusal::Scheme(other.to_string())),
        }
        let target = addresses(to, until).await?;
        if target.iter().copied().any(is_internal) {
            let started_inside = addresses(original, until).await.is_ok_and(|a| a.into_iter().any(is_internal));
            if !started_inside {
                return Err(Refusal::Internal(to.host_str().unwrap_or("?").to_string()));
            }
        }
        Ok(())
    }

    async fn request(&self) -> Finding {
        let method = match self.check.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Head => reqwest::Method::HEAD,
        };
        let url = &self.shown;
        let Some(original) = self.url.clone() else {
            return Finding::fail(Reason::HttpConnect, format!("{url}: not a valid URL"));
        };
        let until = Instant::now() + self.timeout;
        let mut current = original.clone();
        let mut hops = 0;
        // The timeout covers name resolution, connect, TLS, headers, body
        // and every redirect; the scheduler's safety net covers anything beyond.
        let mut response = loop {
            let left = until.saturating_duration_since(Instant::now());
            let request = self
                .client
                .request(method.clone(), current.clone())
                .header(reqwest::header::USER_AGENT, &self.check.user_agent)
                .timeout(left);
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => return self.failed(&e),
            };
            if !response.status().is_redirection() || self.check.max_redirects == 0 {
                break response;
            }
            let Some(location) = response.headers().get(reqwest::header::LOCATION) else { break response };
            let refuse = |why: &dyn std::fmt::Display| {
                Finding::fail(Reason::HttpRedirect, format!("{url}: redirect refused: {why}"))
                    .with(Evidence::Response { status: response.status().as_u16(), cert_expiry: None })
            };
            let next = match location.to_str().ok().and_then(|l| current.join(l).ok()) {
                Some(next) => next,
                None => return refuse(&Refusal::NotAUrl),
            };
            if hops == self.check.max_redirects {
                return refuse(&Refusal::TooMany(self.check.max_redirects));
            }
            if let Err(why) = self.allowed(&original, &current, &next, until).await {
                return refuse(&format_args!("to {}: {why}", redacted(next.as_str())));
            }
            hops += 1;
            current = next;
        };
        let status = response.status().as_u16();
        let expiry = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|info| info.peer_certificate())
            .and_then(super::tls::not_after);
        let with_status = |f: Finding| f.with(Evidence::Response { status, cert_expiry: expiry });
        let now = crate::time::unix(std::time::SystemTime::now());
        if let Some(why) = super::tls::expiring(expiry, self.check.min_cert_days, now) {
            return with_status(Finding::fail(Reason::TlsExpiring, format!("{url}: {why}")));
        }
        // A missing confirmation header says the answer did not come from
        // the platform at all, which outweighs what its status says.
        let missing: Vec<&str> = self
            .check
            .expect_headers
            .iter()
            .filter(|h| !response.headers().contains_key(*h))
            .map(reqwest::header::HeaderName::as_str)
            .collect();
        if !missing.is_empty() {
            return with_status(Finding::fail(
                Reason::HttpHeader,
                format!(
                    "{url}: status {status} without the {} header{} — not the platform's own server",
                    missing.join(", "),
                    if missing.len() > 1 { "s" } else { "" }
                ),
            ));
        }
        if !self.check.expect_status.iter().any(|r| r.contains(status)) {
            let expected: Vec<String> = self.check.expect_status.iter().map(|r| r.to_string()).collect();
            return with_status(Finding::fail(
                Reason::HttpStatus,
                format!("{url}: status {status} (expected {})", expected.join(", ")),
            ));
        }
        let Some(needle) = self.check.body_contains.as_deref() else {
            return with_status(Finding::ok(format!("{url}: status {status}")));
        };
        let needle = needle.as_bytes();
        let mut body: Vec<u8> = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    // Search only where a match could newly appear.
                    let from = body.len().saturating_sub(needle.len().saturating_sub(1));
                    let room = BODY_CAP - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if contains(&body[from..], needle) {
                        return with_status(Finding::ok(format!(
                            "{url}: status {status}, body contains the expected text"
                        )));
                    }
                    if body.len() >= BODY_CAP {
                        return with_status(Finding::fail(
                            Reason::HttpBody,
                            format!("{url}: expected text not in the first {} KiB of the body", BODY_CAP / 1024),
                        ));
                    }
                }
                Ok(None) => {
                    return with_status(Finding::fail(
                        Reason::HttpBody,
                        format!("{url}: expected text not in the body ({} bytes)", body.len()),
                    ));
                }
                Err(e) => return with_status(self.failed(&e)),
            }
        }
    }

    fn failed(&self, e: &reqwest::Error) -> Finding {
        let url = &self.shown;
        // Inner errors may quote the URL; never show its password.
        let mut cause = root_cause(e);
        if let Some(password) = self.url.as_ref().and_then(|u| u.password()) {
            cause = cause.replace(password, "***");
        }
        let reason =
            if chain(e).iter().any(|err| err.downcast_ref::<std::io::Error>().is_some_and(is_resource_shortage)) {
                Reason::ProbeResource
            } else if e.is_timeout() {
                return Finding::fail(
                    Reason::HttpTimeout,
                    format!("{url}: no complete response within {}", humantime::format_duration(self.timeout)),
                );
            } else if is_tls(e) {
                return Finding::fail(Reason::HttpTls, format!("{url}: TLS failed: {cause}"));
            } else if chain(e).iter().any(|err| err.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_parse))
            {
                Reason::HttpProtocol
            } else {
                Reason::HttpConnect
            };
        let detail = match reason {
            Reason::ProbeResource => format!("{url}: the monitor is out of sockets or memory ({cause})"),
            Reason::HttpProtocol => format!("{url}: the answer is not valid HTTP ({cause})"),
            _ => format!("{url}: {cause}"),
        };
        Finding::fail(reason, detail)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn chain(e: &reqwest::Error) -> Vec<&(dyn std::error::Error + 'static)> {
    crate::error_text::chain(e)
}

fn root_cause(e: &reqwest::Error) -> String {
    crate::error_text::root_cause(e)
}

/// True when any error in the chain is a rustls error (handshake, certificate).
fn is_tls(e: &reqwest::Error) -> bool {
    chain(e).iter().any(|err| err.is::<rustls::Error>())
}

impl Probe for HttpProbe {
    fn run(&self) -> RunFuture<'_> {
        Box::pin(self.request())
    }
}

#[cfg(test)]
mod tests {
    use super::{contains, is_internal};

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.2",
            "10.0.0.1",
            "169.254.169.254",
            "192.168.1.1",
            "172.16.0.1",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "0.0.0.0",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["157.240.1.35", "2a03:2880:f0fc:c:face:b00c:0:35", "192.0.2.1"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn needle_search_handles_edges() {
        assert!(contains(b"hello WhatsApp", b"WhatsApp"));
        assert!(!contains(b"hello", b"WhatsApp"));
        assert!(contains(b"x", b""));
    }
}
