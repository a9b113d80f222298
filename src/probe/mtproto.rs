//! The mtproto probe: does a Telegram data centre answer in MTProto?
//!
//! Telegram's apps hold a raw TCP connection to a data centre (no TLS) and
//! speak MTProto on it. The probe connects as a tcp probe does (Happy
//! Eyeballs included), sends the unencrypted `req_pq_multi` of a new
//! session in plain intermediate framing (48 bytes, no account, no key
//! material) and judges the `resPQ` strictly ([`wire::judge`]): our random
//! nonce echoed, auth_key_id 0, a server msg_id ≡ 1 mod 4, pq a product of
//! two primes, one of `fingerprints` offered. A load balancer, a
//! transparent proxy or a captive portal cannot produce that; only a real
//! data centre (or an MTProto relay to one) can. A transport error (-429
//! flood, -404) is `chat_refused`; anything else that answers is
//! `chat_foreign`, `chat_auth`, `chat_closed` or `chat_timeout` (see
//! [`super::chat`]). The probe then closes: no session is created.

pub mod wire;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::chat::{self, ChatTarget};
use super::kind::{Finding, Layer, Probe, ProbeKind, ReadContext, Reason, RunFuture, Toolkit};
use super::tcp::{Endpoint, read_endpoint};
use crate::document::{ConfigError, Strings, Table, field, table};

table!(
    /// The keys of `kind = "mtproto"`.
    RawMtproto { address: String, fingerprints: Strings }
);

/// `kind = "mtproto"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtprotoCheck {
    /// A data centre's address (plain intermediate framing, no TLS).
    pub endpoint: Endpoint,
    /// RSA key fingerprints of which the answer must offer one.
    pub fingerprints: Vec<u64>,
}

impl ProbeKind for MtprotoCheck {
    const NAME: &'static str = "mtproto";
    const LAYER: Layer = Layer::Chat;
    const TIMEOUT: Reason = Reason::ChatTimeout;
    type Raw = RawMtproto;

    fn read(t: &Table<'_, RawMtproto>, _: &ReadContext<'_>) -> Result<MtprotoCheck, ConfigError> {
        let endpoint = read_endpoint(t, field!(t, address))?;
        let fingerprints = match t.str_list(field!(t, fingerprints)) {
            None => vec![wire::PRODUCTION_FINGERPRINT],
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

    fn target(&self) -> String {
        format!("{} (MTProto)", self.endpoint.address)
    }

    fn scope(&self) -> String {
        self.endpoint.host.clone()
    }

    fn build(check: &Arc<MtprotoCheck>, timeout: Duration, _: &Toolkit) -> Box<dyn Probe> {
        Box::new(MtprotoProbe::new(check, timeout))
    }
}

/// The protocol's name in details.
const PROTOCOL: &str = "MTProto";

/// A configured mtproto probe.
pub struct MtprotoProbe {
    target: ChatTarget,
    fingerprints: Vec<u64>,
    timeout: Duration,
}

impl MtprotoProbe {
    /// Prepares the probe.
    pub fn new(check: &MtprotoCheck, timeout: Duration) -> MtprotoProbe {
        MtprotoProbe {
            target: ChatTarget::Tcp(check.endpoint.clone()),
            fingerprints: check.fingerprints.clone(),
            timeout,
        }
    }

    async fn exchange(&self) -> Finding {
        let started = Instant::now();
        let nonce: [u8; 16] = match chat::random() {
            Ok(nonce) => nonce,
            Err(failed) => return failed,
        };
        let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let flight = wire::first_flight(&nonce, wire::client_msg_id(since_epoch.as_nanos()));
        let mut answer = match chat::exchange(&self.target, "", &flight, 4, PROTOCOL, self.timeout).await {
            Ok(answer) => answer,
            Err(failed) => return failed,
        };
        let got = &answer.got;
        let len = match wire::packet_len([got[0], got[1], got[2], got[3]]) {
            Ok(len) if chat::foreign(got).is_none() => len,
            Ok(_) | Err(_) => return answer.foreign().await,
        };
        if let Err(failed) = answer.fill(4 + len).await {
            return failed;
        }
        let (peer, got) = (&answer.peer, &answer.got);
        match wire::judge(&got[4..4 + len], &nonce, &self.fingerprints) {
            Ok(answer) => {
                let skew = (answer.server_msg_id >> 32) as i64 - since_epoch.as_secs() as i64;
                Finding::ok(format!(
                    "{peer}: a Telegram data centre answered resPQ in {} ms (our nonce echoed, pq = {} × {}, key {} offered, its clock {skew:+} s from ours)",
                    started.elapsed().as_millis(),
                    answer.p,
                    answer.q,
                    offered(&answer.fingerprints, &self.fingerprints),
                ))
            }
            Err(wire::Judgement::Refused(code)) => Finding::fail(
                Reason::ChatRefused,
                format!("{peer}: the data centre refused with MTProto transport error {code}{}", meaning(code)),
            ),
            Err(wire::Judgement::Foreign(why)) => {
                Finding::fail(Reason::ChatForeign, format!("{peer}: {} — not MTProto ({why})", chat::describe(got)))
            }
            Err(wire::Judgement::Auth(why)) => {
                Finding::fail(Reason::ChatAuth, format!("{peer}: an MTProto answer that fails its proof: {why}"))
            }
        }
    }
}

/// The accepted fingerprint the answer offered, in hex.
fn offered(offered: &[u64], accepted: &[u64]) -> String {
    offered.iter().find(|f| accepted.contains(f)).map(|f| format!("{f:016x}")).unwrap_or_default()
}

/// What a transport error code means (mtproto-transports, "Transport errors").
fn meaning(code: i32) -> &'static str {
    match code {
        -429 => " (too many connections from this address: flood control)",
        -404 => " (auth key not found)",
        -444 => " (invalid data centre)",
        _ => "",
    }
}

impl Probe for MtprotoProbe {
    fn run(&self) -> RunFuture<'_> {
        Box::pin(self.exchange())
    }
}
