//! The http probe: one request, judged on status and (optionally) body text.
//!
//! Every run opens a fresh connection (no pooling), so a probe measures what a
//! new user would meet: name resolution, TCP, TLS, the response. The body is
//! read only when `body_contains` asks for it, and never beyond
//! [`BODY_CAP`], so a hostile or huge target cannot exhaust memory. Errors are
//! told apart: timeout, connection, TLS, status, body.

use std::time::Duration;

use super::{Finding, Probe, Reason, RunFuture};
use crate::config::{HttpCheck, HttpMethod};

/// The most of a body ever read.
pub const BODY_CAP: usize = 1 << 20;

/// The shared client: rustls, no connection reuse, up to 10 redirects.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(concat!("chatpulse/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::limited(10))
        .build()
}

/// A configured http probe.
pub struct HttpProbe {
    check: HttpCheck,
    /// Parsed once: parsing (with IDNA) on every run costs more than the
    /// request's own user-space work.
    url: Option<reqwest::Url>,
    timeout: Duration,
    client: reqwest::Client,
}

impl HttpProbe {
    /// Prepares the probe.
    pub fn new(check: &HttpCheck, timeout: Duration, client: reqwest::Client) -> HttpProbe {
        HttpProbe { check: check.clone(), url: reqwest::Url::parse(&check.url).ok(), timeout, client }
    }

    async fn request(&self) -> Finding {
        let method = match self.check.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Head => reqwest::Method::HEAD,
        };
        let url = &self.check.url;
        let Some(parsed) = self.url.clone() else {
            return Finding::fail(Reason::HttpConnect, format!("{url}: not a valid URL"));
        };
        // The client's timeout covers name resolution, connect, TLS, headers
        // and body; the scheduler's safety net covers anything beyond.
        let mut response = match self.client.request(method, parsed).timeout(self.timeout).send().await {
            Ok(r) => r,
            Err(e) => return self.failed(&e),
        };
        let status = response.status().as_u16();
        let with_status = |mut f: Finding| {
            f.http_status = Some(status);
            f
        };
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
        let url = &self.check.url;
        let cause = root_cause(e);
        if e.is_timeout() {
            Finding::fail(
                Reason::HttpTimeout,
                format!("{url}: no complete response within {}", humantime::format_duration(self.timeout)),
            )
        } else if is_tls(e) {
            Finding::fail(Reason::HttpTls, format!("{url}: TLS failed: {cause}"))
        } else if e.is_redirect() {
            Finding::fail(Reason::HttpStatus, format!("{url}: {cause}"))
        } else {
            Finding::fail(Reason::HttpConnect, format!("{url}: {cause}"))
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The error chain, descending into `io::Error`s (whose `source()` skips
/// the error they wrap, which is where hyper-rustls puts TLS failures).
fn chain(e: &reqwest::Error) -> Vec<&(dyn std::error::Error + 'static)> {
    let mut out: Vec<&(dyn std::error::Error + 'static)> = vec![e];
    while let Some(last) = out.last().copied() {
        let next = match last.downcast_ref::<std::io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => last.source(),
        };
        match next {
            Some(n) if out.len() < 16 => out.push(n),
            _ => break,
        }
    }
    out
}

/// The innermost error message: the one that says what actually happened.
fn root_cause(e: &reqwest::Error) -> String {
    chain(e).last().map(|err| err.to_string()).unwrap_or_default()
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
    use super::contains;

    #[test]
    fn needle_search_handles_edges() {
        assert!(contains(b"hello WhatsApp", b"WhatsApp"));
        assert!(!contains(b"hello", b"WhatsApp"));
        assert!(contains(b"x", b""));
    }
}
