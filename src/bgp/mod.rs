//! BGP visibility: what share of the world's routers can reach a prefix.
//!
//! The engine keeps per-peer routes for the watched prefixes, their
//! more-specifics and the less-specifics that cover them, fed by the
//! configured sources — RIS Live, MRT files, our own BGP sessions, pooled
//! when several are listed (`feed`), each speaking [`event::FeedEvent`] —
//! and validated against the RPKI file when one is set. After every change it
//! publishes a [`Visibility`] per watched prefix on the [`VisibilityBoard`];
//! bgp probes read the board and are re-judged on every change.

pub mod archive;
pub mod canary;
pub mod config;
pub mod event;
pub mod feed;
pub mod mrt;
pub mod rib;
pub mod ris_live;
pub mod rpki;
pub mod seed;
pub mod session;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::prefix::Prefix;

/// What the engine knows about one watched prefix right now.
#[derive(Debug, Clone, PartialEq)]
pub struct Visibility {
    /// The watched prefix.
    pub prefix: Prefix,
    /// False while the feed is down, stale or not yet seeded.
    pub feed_up: bool,
    /// Peers that count for this prefix (the denominator).
    pub peers_total: usize,
    /// Peers with a route to the prefix or to a covering prefix, whatever
    /// its origin (a probe's judgement narrows this: see `probe::bgp`).
    pub peers_seeing: usize,
    /// Peers with a route to exactly the prefix, by origin AS (`None`: the
    /// origin is hidden in an AS_SET), most common first.
    pub exact: Vec<(Option<u32>, usize)>,
    /// Peers without an exact route that see it through a covering prefix,
    /// by that prefix.
    pub via_covering: Vec<(Prefix, usize)>,
    /// Origin ASes of routes to strict more-specifics of the prefix, with
    /// the number of peers carrying each, most common first.
    pub more_specific_origins: Vec<MoreSpecific>,
    /// RPKI-invalid routes to the prefix or a more-specific (when VRPs are
    /// configured): peers carrying them, per origin, most common first.
    pub rpki_invalid: Vec<(Option<u32>, usize)>,
}

/// Routes to strict more-specifics of a watched prefix from one origin AS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoreSpecific {
    /// Their origin.
    pub origin: u32,
    /// Peers carrying at least one of them.
    pub peers: usize,
    /// The one of them most routes go to: the prefix a hijack cause names.
    pub prefix: Prefix,
}

impl Visibility {
    /// The state before any feed has said anything.
    pub fn unknown(prefix: Prefix) -> Visibility {
        Visibility {
            prefix,
            feed_up: false,
            peers_total: 0,
            peers_seeing: 0,
            exact: Vec::new(),
            via_covering: Vec::new(),
            more_specific_origins: Vec::new(),
            rpki_invalid: Vec::new(),
        }
    }

    /// Share of peers seeing the prefix, 0 when no peer counts.
    pub fn ratio(&self) -> f64 {
        if self.peers_total == 0 { 0.0 } else { self.peers_seeing as f64 / self.peers_total as f64 }
    }
}

/// How many peers a judgement needs (`[bgp] min_peers`, `hijack_min_peers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Fewer peers known than this: visibility unknown.
    pub min_peers: usize,
    /// Peers that must carry an offending route (another origin, a foreign
    /// more-specific) before it is reported.
    pub hijack_min_peers: usize,
}

/// One BGP source as the API and the status page show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceStatus {
    /// `ris-live`, `session`, `mrt`.
    pub source: String,
    /// Connected, seeded, not stale, beacons on schedule.
    pub up: bool,
    /// Why not, while down: `disconnected`, `stale`, `canary`.
    pub reason: Option<String>,
}

/// The state of every configured source, shared by the engine (which
/// writes it) and the API (which reads it); it outlives a reload.
#[derive(Debug, Clone, Default)]
pub struct FeedStatus(Arc<Mutex<Vec<SourceStatus>>>);

impl FeedStatus {
    /// `source` is up (`down_because` None) or down for that reason.
    pub fn set(&self, source: &str, down_because: Option<&str>) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let status =
            SourceStatus { source: source.into(), up: down_because.is_none(), reason: down_because.map(Into::into) };
        match all.iter_mut().find(|s| s.source == source) {
            Some(existing) => *existing = status,
            None => all.push(status),
        }
    }

    /// Keeps only `sources` (after a reload changed them).
    pub fn retain(&self, sources: &[&str]) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).retain(|s| sources.contains(&s.source.as_str()));
    }

    /// Every source, in config order.
    pub fn snapshot(&self) -> Vec<SourceStatus> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Where the engine publishes and bgp probes subscribe, one channel per
/// watched prefix; it also carries the sources' [`FeedStatus`].
#[derive(Clone)]
pub struct VisibilityBoard {
    channels: Arc<Mutex<HashMap<Prefix, watch::Sender<Visibility>>>>,
    thresholds: Thresholds,
    status: FeedStatus,
}

impl VisibilityBoard {
    /// A board for `prefixes`, all unknown. Visibility needs at least
    /// `min_peers` peers to be judged; an offending route needs
    /// min(3, `min_peers`) unless [`VisibilityBoard::with_hijack_min_peers`] says.
    pub fn new(prefixes: &[Prefix], min_peers: usize) -> VisibilityBoard {
        let channels = prefixes.iter().map(|p| (*p, watch::Sender::new(Visibility::unknown(*p)))).collect();
        let thresholds = Thresholds { min_peers, hijack_min_peers: min_peers.clamp(1, 3) };
        VisibilityBoard { channels: Arc::new(Mutex::new(channels)), thresholds, status: FeedStatus::default() }
    }

    /// The same board reporting source health into `status` (kept across
    /// reloads, read by the API).
    pub fn with_status(mut self, status: FeedStatus) -> VisibilityBoard {
        self.status = status;
        self
    }

    /// The sources' health.
    pub fn status(&self) -> FeedStatus {
        self.status.clone()
    }

    /// The same board with `hijack_min_peers` set.
    pub fn with_hijack_min_peers(mut self, peers: usize) -> VisibilityBoard {
        self.thresholds.hijack_min_peers = peers;
        self
    }

    /// How many peers a judgement needs.
    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    fn sender(&self, prefix: Prefix) -> watch::Sender<Visibility> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.entry(prefix).or_insert_with(|| watch::Sender::new(Visibility::unknown(prefix))).clone()
    }

    /// Follows one prefix.
    pub fn subscribe(&self, prefix: Prefix) -> watch::Receiver<Visibility> {
        self.sender(prefix).subscribe()
    }

    /// Publishes a new state; subscribers wake only if it differs.
    pub fn publish(&self, visibility: Visibility) {
        self.sender(visibility.prefix).send_if_modified(|current| {
            let changed = *current != visibility;
            if changed {
                *current = visibility;
            }
            changed
        });
    }

    /// The current state of one prefix.
    pub fn current(&self, prefix: Prefix) -> Visibility {
        self.sender(prefix).borrow().clone()
    }
}
