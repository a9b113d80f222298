//! The whatsapp probe: does a WhatsApp chat server answer WhatsApp's own
//! handshake, with a certificate chain to WhatsApp's root?
//!
//! WhatsApp's apps speak a Noise handshake on plain TCP to
//! `g.whatsapp.net` (443 and 5222, no TLS) and the same bytes in WebSocket
//! binary messages to `wss://web.whatsapp.com/ws/chat`; Messenger's and
//! Instagram's end-to-end chat use the same exchange (README, "Chat
//! probes"). The probe connects (Happy Eyeballs; a WebSocket upgrade for a
//! `url`), sends the `WA` prologue and the first Noise message with a fresh
//! X25519 key (43 bytes, no account), and judges the ServerHello
//! ([`noise`]): both AES-GCM decryptions done with our ephemeral key, the
//! certificate chain verified to `root_key`, the leaf's key equal to the
//! server's static key, both certificates in date. A middlebox cannot
//! forge that. The probe then closes, sending no ClientFinish.

pub mod noise;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::chat::{self, ChatTarget};
use super::kind::{Finding, Layer, Probe, ProbeKind, ReadContext, Reason, RunFuture, Toolkit};
use super::tcp::{Endpoint, read_endpoint};
use crate::document::{ConfigError, Table, field, parse_hex32, redacted, table};

table!(
    /// The keys of `kind = "whatsapp"` (`address` or `url`).
    RawWhatsapp { address: String, url: String, root_key: String }
);

/// `kind = "whatsapp"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsappCheck {
    /// Where the handshake goes.
    pub target: ChatTarget,
    /// The X25519 key the certificate chain must verify to.
    pub root_key: [u8; 32],
}

impl ProbeKind for WhatsappCheck {
    const NAME: &'static str = "whatsapp";
    const LAYER: Layer = Layer::Chat;
    const TIMEOUT: Reason = Reason::ChatTimeout;
    type Raw = RawWhatsapp;

    fn read(t: &Table<'_, RawWhatsapp>, _: &ReadContext<'_>) -> Result<WhatsappCheck, ConfigError> {
        let target = match (t.str(field!(t, address)), t.str(field!(t, url))) {
            (Some(_), Some(_)) => return Err(t.error_at_key("url", "give \"address\" or \"url\", not both")),
            (None, None) => return Err(t.error_here("missing required key \"address\" (or \"url\")")),
            (Some(_), None) => ChatTarget::Tcp(read_endpoint(t, field!(t, address))?),
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
            None => noise::WHATSAPP_ROOT_KEY,
            Some(key) => parse_hex32(key.value).ok_or_else(|| {
                t.error(&key.span, format!("\"root_key\": \"{}\" is not a 32-byte key in hex (64 digits)", key.value))
            })?,
        };
        Ok(WhatsappCheck { target, root_key })
    }

    fn target(&self) -> String {
        match &self.target {
            ChatTarget::Tcp(e) => format!("{} (WhatsApp Noise)", e.address),
            ChatTarget::WebSocket { url, .. } => format!("{url} (WhatsApp Noise)"),
        }
    }

    fn scope(&self) -> String {
        self.target.endpoint().host.clone()
    }

    fn build(check: &Arc<WhatsappCheck>, timeout: Duration, _: &Toolkit) -> Box<dyn Probe> {
        Box::new(WhatsappProbe::new(check, timeout))
    }
}

/// The protocol's name in details.
const PROTOCOL: &str = "WhatsApp's Noise protocol";

/// A configured whatsapp probe.
pub struct WhatsappProbe {
    check: WhatsappCheck,
    timeout: Duration,
}

impl WhatsappProbe {
    /// Prepares the probe.
    pub fn new(check: &WhatsappCheck, timeout: Duration) -> WhatsappProbe {
        WhatsappProbe { check: check.clone(), timeout }
    }

    async fn exchange(&self) -> Finding {
        let started = Instant::now();
        let secret: [u8; 32] = match chat::random() {
            Ok(secret) => secret,
            Err(failed) => return failed,
        };
        let initiator = noise::Initiator::with_secret(secret);
        let target = &self.check.target;
        let flight = initiator.first_flight();
        let mut answer = match chat::exchange(target, &origin(target), &flight, 3, PROTOCOL, self.timeout).await {
            Ok(answer) => answer,
            Err(failed) => return failed,
        };
        let got = &answer.got;
        let len = noise::frame_len([got[0], got[1], got[2]]);
        if chat::foreign(got).is_some() || !(noise::MIN_FRAME..=noise::MAX_FRAME).contains(&len) {
            return answer.foreign().await;
        }
        if let Err(failed) = answer.fill(3 + len).await {
            return failed;
        }
        let (peer, got) = (&answer.peer, &answer.got);
        let now = crate::time::unix(SystemTime::now());
        match initiator.finish(&got[3..3 + len], &self.check.root_key, now) {
            Ok(proof) => Finding::ok(format!(
                "{peer}: a WhatsApp chat server answered in {} ms; its certificate chain verifies to the root (leaf serial {}, valid until {})",
                started.elapsed().as_millis(),
                proof.leaf_serial,
                crate::time::rfc3339(crate::time::from_unix(proof.not_after)),
            )),
            Err(noise::HandshakeError::NotServerHello(why)) => {
                Finding::fail(Reason::ChatForeign, format!("{peer}: {} — not {PROTOCOL} ({why})", chat::describe(got)))
            }
            Err(failed) => {
                Finding::fail(Reason::ChatAuth, format!("{peer}: a handshake answer that fails its proof: {failed}"))
            }
        }
    }
}

/// The `Origin` of a WebSocket upgrade, as the web clients send it:
/// `https://web.whatsapp.com` for WhatsApp, the site itself
/// (`https://www.facebook.com`, `https://www.instagram.com`) for Meta's
/// end-to-end chat hosts, `https://<host>` otherwise.
fn origin(target: &ChatTarget) -> String {
    let host = &target.endpoint().host;
    let site = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
    if site("whatsapp.com") || site("whatsapp.net") {
        "https://web.whatsapp.com".into()
    } else if let Some(domain) = ["facebook.com", "messenger.com", "instagram.com"].into_iter().find(|d| site(d)) {
        format!("https://www.{domain}")
    } else {
        format!("https://{host}")
    }
}

impl Probe for WhatsappProbe {
    fn run(&self) -> RunFuture<'_> {
        Box::pin(self.exchange())
    }
}
