//! Probes: one run of one check, and what it found — and the registry of
//! probe kinds.
//!
//! Every kind lives in its own file and implements [`kind::ProbeKind`]:
//! its config keys and their checks, its layer, target and grouping
//! scope, its timeout reason, and the [`Probe`] it builds, whose `run`
//! performs one check within the probe's timeout and returns a
//! [`Finding`] — `ok` or one [`Reason`] from the closed list of README,
//! "What a run can say", plus a human detail. Probes never touch metrics,
//! storage or alerts; the scheduler turns findings into [`Observation`]s
//! for the verdict.
//!
//! A new kind is one file and one line in [`kinds!`] below.

pub mod bgp;
pub mod chat;
pub mod dns;
pub mod http;
pub mod kind;
pub mod mtproto;
pub mod tcp;
pub mod tls;
pub mod whatsapp;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use toml::Spanned;
use toml::de::DeTable;

pub use self::kind::{
    Evidence, Finding, Layer, Probe, ProbeKind, ReadContext, Reason, RunFuture, Toolkit, is_resource_shortage,
    result_word,
};
use crate::document::{At, ConfigError, Document, Keys, Table, table};

/// Declares the registry: [`Kind`], [`Check`] and the dispatch from one to
/// each kind's [`ProbeKind`] implementation, in one list.
macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident => $check:ty),* $(,)?) => {
        /// The kinds of probe (the `kind` key and label).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind {
            $($(#[$doc])* $variant,)*
        }

        /// What a probe checks, by kind (each shared with the probe that
        /// runs it: a probe holds its check for life, and with 100,000
        /// probes a copy each adds up).
        #[derive(Debug, Clone, PartialEq)]
        pub enum Check {
            $($(#[$doc])* $variant(Arc<$check>),)*
        }

        impl Kind {
            /// Every kind, in registry order.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            /// The word used in the config, labels, the API and e-mail.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Kind::$variant => <$check as ProbeKind>::NAME,)*
                }
            }

            /// The layer a probe of this kind watches.
            pub fn layer(self) -> Layer {
                match self {
                    $(Kind::$variant => <$check as ProbeKind>::LAYER,)*
                }
            }

            /// What a run that overran the scheduler's deadline says.
            pub fn timeout_reason(self) -> Reason {
                match self {
                    $(Kind::$variant => <$check as ProbeKind>::TIMEOUT,)*
                }
            }

            /// The kind's own config keys.
            fn keys(self) -> &'static [&'static str] {
                match self {
                    $(Kind::$variant => <<$check as ProbeKind>::Raw as Keys>::KEYS,)*
                }
            }
        }

        impl Check {
            /// The probe kind.
            pub fn kind(&self) -> Kind {
                match self {
                    $(Check::$variant(_) => Kind::$variant,)*
                }
            }

            /// A one-line description of what is probed, for tables and the API.
            pub fn target(&self) -> String {
                match self {
                    $(Check::$variant(c) => c.target(),)*
                }
            }

            /// Where a failure happens, for grouping by cause.
            pub fn scope(&self) -> String {
                match self {
                    $(Check::$variant(c) => c.scope(),)*
                }
            }

            /// Creates the probe that runs this check within `timeout`.
            pub fn build(&self, timeout: Duration, tools: &Toolkit) -> Box<dyn Probe> {
                match self {
                    $(Check::$variant(c) => <$check as ProbeKind>::build(c, timeout, tools),)*
                }
            }

            /// Reads the keys of a probe of `kind` (all but the common ones).
            fn read(
                kind: Kind,
                doc: &Document<'_>,
                keys: Spanned<DeTable<'_>>,
                cx: &ReadContext<'_>,
            ) -> Result<Check, ConfigError> {
                match kind {
                    $(Kind::$variant => Ok(Check::$variant(Arc::new(read_kind::<$check>(doc, keys, cx)?))),)*
                }
            }
        }
    };
}

kinds! {
    /// Is the prefix visible in the global routing table?
    Bgp => bgp::BgpCheck,
    /// Does the name resolve?
    Dns => dns::DnsCheck,
    /// Can a TCP connection be opened?
    Tcp => tcp::TcpCheck,
    /// Can a TLS session be set up, with a certificate we trust?
    Tls => tls::TlsCheck,
    /// Does a Telegram data centre answer MTProto's first flight?
    Mtproto => mtproto::MtprotoCheck,
    /// Does a WhatsApp chat server complete the first half of its Noise
    /// handshake with a certificate chain to WhatsApp's root?
    Whatsapp => whatsapp::WhatsappCheck,
    /// Does the endpoint answer HTTP as expected?
    Http => http::HttpCheck,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Kind {
    /// The kind a config word names.
    pub fn from_word(word: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == word)
    }
}

/// Validates the keys of one probe of kind `K`: each must be one of the
/// kind's own (a key of another kind is named as such), then the kind's
/// reader checks their values.
fn read_kind<K: ProbeKind>(
    doc: &Document<'_>,
    keys: Spanned<DeTable<'_>>,
    cx: &ReadContext<'_>,
) -> Result<K, ConfigError> {
    let own = <K::Raw as Keys>::KEYS;
    for (key, value) in keys.get_ref() {
        let key = key.get_ref().as_ref();
        if own.contains(&key) {
            continue;
        }
        let message = if Kind::ALL.iter().any(|k| k.keys().contains(&key)) {
            format!("key \"{key}\" does not apply to a {} probe", K::NAME)
        } else {
            let known: Vec<&str> = RawProbe::KEYS.iter().chain(own).copied().collect();
            format!("unknown key \"{key}\" (expected one of: {})", known.join(", "))
        };
        return Err(doc.error(&value.span(), message));
    }
    let span = keys.span();
    let raw: K::Raw = doc.deserialize(Spanned::new(span.clone(), toml::de::DeValue::Table(keys.into_inner())))?;
    K::read(&Table::new(doc, &raw, span), cx)
}

table!(
    /// The keys every probe has, whatever its kind (read by the config's
    /// service reader; the rest of a probe table is its kind's).
    RawProbe {
        kind: String,
        id: String,
        interval: String,
        timeout: String,
        fail_after: i64,
        recover_after: i64,
        essential: bool,
        group: String,
    }
);

/// The check of a probe table: `kind` names the kind, `keys` holds the
/// table's keys other than [`RawProbe`]'s.
pub fn read_check(
    doc: &Document<'_>,
    kind: &At<&str>,
    keys: Spanned<DeTable<'_>>,
    cx: &ReadContext<'_>,
) -> Result<Check, ConfigError> {
    let Some(k) = Kind::from_word(kind.value) else {
        let words: Vec<String> = Kind::ALL.iter().map(|k| format!("\"{k}\"")).collect();
        let (last, rest) = words.split_last().expect("kinds are registered");
        return Err(doc.error(
            &kind.span,
            format!("\"kind\": \"{}\" is not a probe kind (expected {} or {last})", kind.value, rest.join(", ")),
        ));
    };
    Check::read(k, doc, keys, cx)
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

impl Toolkit {
    /// Builds the shared parts. `bgp` is the board the BGP engine publishes to.
    pub fn new(bgp: crate::bgp::VisibilityBoard) -> Result<Toolkit, ToolkitError> {
        Ok(Toolkit { http: http::client()?, system_resolver: dns::system_resolver(), bgp })
    }

    /// Creates the probe that runs `probe`.
    pub fn build(&self, probe: &ProbeRef) -> Box<dyn Probe> {
        probe.spec.check.build(probe.spec.timeout, self)
    }
}

/// The shared probe tools could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ToolkitError {
    /// The HTTP client failed to build (TLS roots, crypto provider).
    #[error("cannot create the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}
