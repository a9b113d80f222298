//! The typed root cause of a service that is not up: the layer, the faults
//! at that layer (a reason at a place), and the summary people read. The
//! verdict decides it, the incident tracker groups on its [`CauseKey`], the
//! store keeps it field by field, and the channels read its reasons from
//! it — nothing downstream takes a string apart to learn what it holds.
//! A leaf beside the probes: it imports only their `Layer` and `Reason`.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::probe::kind::{Layer, Reason};

/// One failure at the root layer: why, and where (a DNS server, an HTTP
/// host, an origin AS — the probe kind's grouping scope).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fault {
    /// Why the probe failed.
    #[serde(with = "reason_word")]
    pub reason: Reason,
    /// Where: the probe kind's grouping scope.
    pub scope: String,
}

/// Why a service is not up, as stored with its incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// The lowest layer with a DOWN probe.
    pub layer: Layer,
    /// The distinct faults at that layer, sorted.
    faults: Vec<Fault>,
    /// `layer: detail; detail` of the DOWN probes at that layer.
    pub summary: String,
}

impl Cause {
    /// A cause from its faults (sorted and made distinct here).
    pub fn new(layer: Layer, faults: impl IntoIterator<Item = Fault>, summary: String) -> Cause {
        let faults: BTreeSet<Fault> = faults.into_iter().collect();
        Cause { layer, faults: faults.into_iter().collect(), summary }
    }

    /// The faults, sorted and distinct.
    pub fn faults(&self) -> &[Fault] {
        &self.faults
    }

    /// The distinct reasons, sorted by their words.
    pub fn reasons(&self) -> Vec<Reason> {
        let words: BTreeSet<&str> = self.faults.iter().map(|f| f.reason.as_str()).collect();
        words.into_iter().filter_map(Reason::from_word).collect()
    }

    /// The distinct reasons' words, comma-separated (`dns_servfail,dns_timeout`).
    pub fn reason_words(&self) -> String {
        self.reasons().iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
    }

    /// The grouping identity: equal for services that failed for the same
    /// reasons at the same places at the same layer.
    pub fn key(&self) -> CauseKey {
        CauseKey(serde_json::json!([self.layer.as_str(), self.faults]).to_string())
    }

    /// The faults as stored (a JSON array of `{reason, scope}`).
    pub fn faults_json(&self) -> String {
        serde_json::to_string(&self.faults).unwrap_or_else(|_| "[]".into())
    }

    /// A cause read back from the store's columns; `None` when the layer
    /// or the faults are not ones this build knows.
    pub fn stored(layer: &str, faults: &str, summary: String) -> Option<Cause> {
        let layer = Layer::from_word(layer)?;
        let faults: Vec<Fault> = serde_json::from_str(faults).ok()?;
        Some(Cause::new(layer, faults, summary))
    }
}

/// One DOWN probe as the cause summary says it (SPEC 9.7):
/// `<probe id> <reason> — <what happened>`, the target said once —
/// `chat-port tcp_connect — connection refused (127.0.0.1:18081)`. A kind's
/// detail leads with its target and an OS error often repeats it; both
/// are dropped, with the OS error number, and the target is added once at
/// the end unless the text already names it (holds its first word).
pub fn sentence(probe: &str, reason: Reason, target: &str, detail: &str) -> String {
    let mut what = detail.trim();
    while let Some(rest) = what.strip_prefix(target).and_then(|r| r.strip_prefix(':')) {
        what = rest.trim_start();
    }
    let mut what = what.to_string();
    while let Some(at) = what.find(" (os error ") {
        let end = what[at..].find(')').map_or(what.len(), |e| at + e + 1);
        what.replace_range(at..end, "");
    }
    // "Connection refused" reads as the middle of a sentence; "SERVFAIL" stays.
    let mut chars = what.chars();
    if let (Some(first), Some(second)) = (chars.next(), chars.next())
        && first.is_uppercase()
        && second.is_lowercase()
    {
        what = first.to_lowercase().chain(what.chars().skip(1)).collect();
    }
    // Named already when the text holds the target's first word (a bgp
    // probe's prefix, a DNS query's name).
    let named = target.split_whitespace().next().is_some_and(|word| what.contains(word));
    if !target.is_empty() && !named {
        what = if what.is_empty() { target.to_string() } else { format!("{what} ({target})") };
    }
    format!("{probe} {reason} — {what}")
}

/// The identity of a root cause, for grouping. Opaque: it is compared,
/// never taken apart (its text is unambiguous JSON whatever a scope holds).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CauseKey(String);

impl CauseKey {
    /// The key as text (stored with a pending alert decision).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CauseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reasons are stored by their README words.
mod reason_word {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::probe::kind::Reason;

    pub fn serialize<S: Serializer>(reason: &Reason, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(reason.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Reason, D::Error> {
        let word = String::deserialize(d)?;
        Reason::from_word(&word).ok_or_else(|| D::Error::custom(format!("unknown reason {word}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(reason: Reason, scope: &str) -> Fault {
        Fault { reason, scope: scope.into() }
    }

    #[test]
    fn reasons_are_distinct_and_sorted_and_the_key_ignores_order_and_repeats() {
        let a = Cause::new(
            Layer::Dns,
            [
                fault(Reason::DnsTimeout, "1.1.1.1"),
                fault(Reason::DnsServfail, "9.9.9.9"),
                fault(Reason::DnsServfail, "8.8.8.8"),
                fault(Reason::DnsServfail, "8.8.8.8"),
            ],
            "dns: x".into(),
        );
        assert_eq!(a.reason_words(), "dns_servfail,dns_timeout");
        assert_eq!(a.faults().len(), 3);
        let b = Cause::new(
            Layer::Dns,
            [
                fault(Reason::DnsServfail, "8.8.8.8"),
                fault(Reason::DnsServfail, "9.9.9.9"),
                fault(Reason::DnsTimeout, "1.1.1.1"),
            ],
            "dns: other words".into(),
        );
        assert_eq!(a.key(), b.key(), "the summary's words are not the identity");
    }

    #[test]
    fn a_fault_sentence_names_the_probe_and_reason_and_the_target_once() {
        assert_eq!(
            sentence(
                "chat-port",
                Reason::TcpConnect,
                "127.0.0.1:18081",
                "127.0.0.1:18081: 127.0.0.1:18081: Connection refused (os error 111)"
            ),
            "chat-port tcp_connect — connection refused (127.0.0.1:18081)"
        );
        assert_eq!(
            sentence(
                "bgp-dns-a",
                Reason::BgpInvisible,
                "129.134.30.0/23 AS32934",
                "129.134.30.0/23 seen by 2% of 37 peers"
            ),
            "bgp-dns-a bgp_invisible — 129.134.30.0/23 seen by 2% of 37 peers",
            "a text that names its target keeps it where it is"
        );
        assert_eq!(
            sentence("dns-web", Reason::DnsServfail, "web.chat.test A", "SERVFAIL from 127.0.0.1:53"),
            "dns-web dns_servfail — SERVFAIL from 127.0.0.1:53 (web.chat.test A)"
        );
    }

    #[test]
    fn scopes_with_separators_cannot_make_two_causes_one() {
        // Under the old `layer|reason@scope,…` text these two were equal.
        let one = Cause::new(Layer::Bgp, [fault(Reason::BgpInvisible, "AS1,bgp_invisible@AS2")], String::new());
        let two = Cause::new(
            Layer::Bgp,
            [fault(Reason::BgpInvisible, "AS1"), fault(Reason::BgpInvisible, "AS2")],
            String::new(),
        );
        assert_ne!(one.key(), two.key());
    }

    #[test]
    fn a_cause_survives_the_store_columns_and_unknown_words_are_refused() {
        let cause = Cause::new(Layer::Http, [fault(Reason::HttpStatus, "example.org")], "http: 503".into());
        let back = Cause::stored(cause.layer.as_str(), &cause.faults_json(), cause.summary.clone()).unwrap();
        assert_eq!(back, cause);
        assert_eq!(back.key(), cause.key());
        assert!(Cause::stored("sideways", "[]", String::new()).is_none());
        assert!(Cause::stored("http", r#"[{"reason":"http_teapot","scope":"x"}]"#, String::new()).is_none());
    }
}
