//! Runs the configured BGP source and keeps the [`VisibilityBoard`] current.
//!
//! Sources (RIS Live, MRT archives, BGP sessions) only translate what they
//! read into [`FeedEvent`]s; the engine task owns the [`Rib`], applies the
//! events, and republishes the visibility of every watched prefix an event
//! touched — so bgp probes are judged on every change, not only at their
//! interval. It also owns feed health: the feed is up once the source says it
//! is connected and seeded, and down when the source says so or when nothing
//! at all (not even a keepalive) arrived for `stale_after`. A down feed makes
//! every bgp probe `bgp_unknown`, never an outage.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use super::VisibilityBoard;
use super::rib::{Denominator, Interest, MAX_MORE_SPECIFICS_PER_PEER, MAX_PEERS, PeerKey, Rib};
use super::wire::{Origin, PathId};
use crate::config::{Bgp, BgpSource};
use crate::metrics::Metrics;
use crate::prefix::Prefix;

/// What a source tells the engine.
#[derive(Debug, Clone)]
pub enum FeedEvent {
    /// `peer` routes `prefix` via `origin` (path `path_id`: ADD-PATH
    /// sources may hold several paths per prefix; others use 0).
    Announce {
        /// Who.
        peer: PeerKey,
        /// What.
        prefix: Prefix,
        /// The ADD-PATH path id.
        path_id: PathId,
        /// Origin AS.
        origin: Origin,
    },
    /// `peer` withdrew path `path_id` to `prefix`.
    Withdraw {
        /// Who.
        peer: PeerKey,
        /// What.
        prefix: Prefix,
        /// The ADD-PATH path id.
        path_id: PathId,
    },
    /// A peer's session came up (it starts with no routes).
    PeerUp(PeerKey),
    /// A peer's session went away: its routes go, it leaves the denominator.
    PeerDown(PeerKey),
    /// Forget the routes (the source reconnected and will seed again); the
    /// peers that counted keep counting.
    Reset,
    /// The source is (or is no longer) connected and seeded.
    Healthy(bool),
    /// Something arrived (a message, a keepalive, a pong): the feed is alive.
    Alive,
    /// A message that could not be understood was skipped.
    Malformed,
    /// New VRPs (the `rpki` file changed): routes are validated against them.
    Vrps(Arc<super::rpki::Vrps>),
}

/// Sends events to the engine.
pub type FeedSender = mpsc::Sender<FeedEvent>;

/// The engine: routes, health, and where visibility is published.
pub struct Engine {
    rib: Rib,
    board: VisibilityBoard,
    watched: Vec<Prefix>,
    source: &'static str,
    healthy: bool,
    stale: bool,
    metrics: Option<Arc<Metrics>>,
    /// Whether every peer that is up counts (our own sessions).
    counts_up_peers: bool,
    last_limit_warning: Option<Instant>,
    /// The routing-beacon canary, when `[bgp] canary` asks for it.
    canary: Option<super::canary::Canary>,
    /// False while the canary says the feed is frozen.
    canary_ok: bool,
}

impl Engine {
    /// An engine for `watched` prefixes, publishing to `board`.
    pub fn new(
        source: BgpSource,
        watched: Vec<Prefix>,
        board: VisibilityBoard,
        metrics: Option<Arc<Metrics>>,
    ) -> Engine {
        let denominator = if source == BgpSource::Session { Denominator::UpPeers } else { Denominator::Carriers };
        let engine = Engine {
            rib: Rib::new(Interest::Watched(watched.clone()), denominator),
            board,
            watched,
            source: source.as_str(),
            healthy: false,
            stale: false,
            metrics,
            counts_up_peers: denominator == Denominator::UpPeers,
            last_limit_warning: None,
            canary: None,
            canary_ok: true,
        };
        engine.set_feed_gauge();
        engine
    }

    /// The same engine judging the feed by the RIS routing beacons too.
    pub fn with_canary(mut self, canary: super::canary::Canary) -> Engine {
        self.canary = Some(canary);
        self
    }

    fn feed_up(&self) -> bool {
        self.down_because().is_none()
    }

    /// Why the feed counts as down, if it does.
    fn down_because(&self) -> Option<&'static str> {
        if !self.healthy {
            Some("disconnected")
        } else if self.stale {
            Some("stale")
        } else if !self.canary_ok {
            Some("canary")
        } else {
            None
        }
    }

    fn set_feed_gauge(&self) {
        if let Some(m) = &self.metrics {
            m.set_feed_up(self.source, self.down_because());
        }
    }

    /// Judges the beacons now; publishes when the verdict changes.
    pub fn check_canary(&mut self) {
        let now = crate::time::unix(std::time::SystemTime::now());
        let Some(canary) = &mut self.canary else { return };
        let ok = canary.check(now);
        if ok != self.canary_ok {
            if ok {
                info!(source = self.source, "RIS routing beacons seen on schedule again: BGP feed trusted");
            } else {
                warn!(source = self.source, "BGP feed down: {}; bgp probes are unknown", canary.explain());
            }
            self.canary_ok = ok;
            self.set_feed_gauge();
            self.publish(None);
        }
    }

    /// True when `prefix` is a beacon the canary counts (then it is not a
    /// route of interest).
    fn beacon(&mut self, peer: &PeerKey, prefix: &Prefix, announce: bool) -> bool {
        let Some(canary) = &mut self.canary else { return false };
        if !canary.is_beacon(prefix) {
            return false;
        }
        canary.saw(peer, announce, crate::time::unix(std::time::SystemTime::now()));
        true
    }

    /// Recomputes and publishes the watched prefixes that `changed` touches
    /// (all of them when `changed` is None).
    fn publish(&self, changed: Option<Prefix>) {
        for w in self.watched.iter().filter(|w| changed.is_none_or(|p| w.overlaps(&p))) {
            self.board.publish(self.rib.visibility(*w, self.feed_up()));
        }
    }

    /// Applies one event and publishes what it changed.
    pub fn apply(&mut self, event: FeedEvent) {
        match event {
            FeedEvent::Announce { peer, prefix, path_id, origin } => {
                self.count_update();
                if self.beacon(&peer, &prefix, true) {
                    return;
                }
                // Interest first: a route outside the watched space neither
                // registers its peer nor costs more than this check.
                if !self.rib.wants(&prefix) {
                    return;
                }
                let Some(id) = self.rib.peer(&peer) else {
                    self.warn_limit(format!("more than {MAX_PEERS} peers; routes from new ones are ignored"));
                    return;
                };
                let capped = self.rib.capped();
                if self.rib.announce_path(id, path_id, prefix, origin) {
                    self.publish(Some(prefix));
                } else if self.rib.capped() > capped {
                    self.warn_limit(format!(
                        "peer {} holds {MAX_MORE_SPECIFICS_PER_PEER} more-specifics of a watched prefix; further ones are ignored",
                        peer.ip
                    ));
                }
            }
            FeedEvent::Withdraw { peer, prefix, path_id } => {
                self.count_update();
                if self.beacon(&peer, &prefix, false) {
                    return;
                }
                if let Some(id) = self.rib.known_peer(&peer)
                    && self.rib.withdraw_path(id, path_id, prefix)
                {
                    self.publish(Some(prefix));
                }
            }
            FeedEvent::PeerUp(peer) => {
                // Our own sessions count every peer that is up; a collector's
                // peer counts once it carries something of interest.
                let id = if self.counts_up_peers { self.rib.peer(&peer) } else { self.rib.known_peer(&peer) };
                if let Some(id) = id {
                    self.rib.peer_up(id);
                    self.publish(None);
                }
            }
            FeedEvent::PeerDown(peer) => {
                if let Some(id) = self.rib.known_peer(&peer) {
                    self.rib.peer_down(id);
                    self.publish(None);
                }
            }
            FeedEvent::Reset => {
                self.rib.forget_routes();
                self.publish(None);
            }
            FeedEvent::Healthy(healthy) => {
                if healthy != self.healthy {
                    self.healthy = healthy;
                    if let Some(canary) = &mut self.canary {
                        canary.feed_up(healthy, crate::time::unix(std::time::SystemTime::now()));
                        self.canary_ok = true;
                    }
                    if healthy {
                        info!(source = self.source, peers = self.rib.peers_up(), "BGP feed up");
                    } else {
                        warn!(source = self.source, "BGP feed down: bgp probes are unknown until it is back");
                    }
                    self.set_feed_gauge();
                    self.publish(None);
                }
            }
            FeedEvent::Alive => {}
            FeedEvent::Vrps(vrps) => {
                self.rib.set_vrps(vrps);
                self.publish(None);
            }
            FeedEvent::Malformed => {
                if let Some(m) = &self.metrics {
                    m.add_bgp_malformed(self.source);
                }
            }
        }
    }

    /// Peers the engine knows.
    pub fn peers_known(&self) -> usize {
        self.rib.peers_known()
    }

    /// A limit was hit: said at most once a minute.
    fn warn_limit(&mut self, what: String) {
        if self.last_limit_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            warn!(source = self.source, "BGP engine limit: {what}");
            self.last_limit_warning = Some(Instant::now());
        }
    }

    fn count_update(&self) {
        if let Some(m) = &self.metrics {
            m.add_bgp_updates(self.source, 1);
        }
    }

    fn set_stale(&mut self, stale: bool) {
        if stale != self.stale {
            self.stale = stale;
            if stale {
                warn!(source = self.source, "BGP feed silent for too long: bgp probes are unknown until it speaks");
            }
            self.set_feed_gauge();
            self.publish(None);
        }
    }
}

/// Applies events until every sender is gone, marking the feed stale after
/// `stale_after` without any event.
pub async fn run_engine(mut engine: Engine, mut events: mpsc::Receiver<FeedEvent>, stale_after: Duration) {
    let mut last = Instant::now();
    let every = engine.canary.as_ref().map_or(Duration::from_secs(3600), |c| c.check_every());
    let mut canary = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = canary.tick(), if engine.canary.is_some() => engine.check_canary(),
            event = events.recv() => {
                let Some(event) = event else { return };
                // New VRPs come from a file, not from the feed: no sign of life.
                if !matches!(event, FeedEvent::Vrps(_)) {
                    last = Instant::now();
                    engine.set_stale(false);
                }
                engine.apply(event);
            }
            () = tokio::time::sleep_until(last + stale_after), if !engine.stale => engine.set_stale(true),
        }
    }
}

/// The running feed; dropping it stops the source and the engine.
///
/// Source and engine run on a thread of their own, with their own runtime:
/// the probes share one single-threaded runtime, and a flood of updates
/// (or a peer's burst) must never delay a probe run.
pub struct Feed {
    tasks: Vec<JoinHandle<()>>,
    /// Dropping it ends the BGP thread's runtime.
    _thread: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Starts the BGP thread and returns a handle to spawn on it and the means
/// to stop it; `None` if no thread could be made (the caller's runtime
/// then carries the feed).
fn bgp_thread() -> Option<(tokio::runtime::Handle, tokio::sync::oneshot::Sender<()>)> {
    let (handle_tx, handle_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new().name("bgp".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                warn!("cannot start the BGP runtime ({e}); BGP work shares the probe thread");
                return;
            }
        };
        if handle_tx.send(runtime.handle().clone()).is_ok() {
            runtime.block_on(async {
                let _ = stopped.await;
            });
        }
    });
    if let Err(e) = spawned {
        warn!("cannot start the BGP thread ({e}); BGP work shares the probe thread");
        return None;
    }
    handle_rx.recv().ok().map(|handle| (handle, stop))
}

impl Feed {
    /// Starts the source configured in `[bgp]` for the `watched` prefixes
    /// (nothing runs when there are none).
    pub fn start(config: &Bgp, watched: Vec<Prefix>, board: VisibilityBoard, metrics: Arc<Metrics>) -> Feed {
        if watched.is_empty() {
            return Feed { tasks: Vec::new(), _thread: None };
        }
        let (runtime, stop) = match bgp_thread() {
            Some((handle, stop)) => (handle, Some(stop)),
            None => (tokio::runtime::Handle::current(), None),
        };
        let (tx, rx) = mpsc::channel(4096);
        let mut engine = Engine::new(config.source, watched.clone(), board, Some(metrics));
        // The beacons are listened to, not seeded or published.
        let beacons = if config.canary { super::canary::beacons() } else { Vec::new() };
        if config.canary {
            engine = engine.with_canary(super::canary::Canary::new(config.min_peers));
        }
        let mut tasks = vec![runtime.spawn(run_engine(engine, rx, config.stale_after))];
        tasks.push(match config.source {
            BgpSource::RisLive => runtime.spawn(super::ris_live::run(
                super::ris_live::RisLive::new(config, &watched).listening_to(&beacons),
                tx.clone(),
            )),
            BgpSource::Mrt => {
                let listened = watched.iter().chain(&beacons).copied().collect();
                runtime.spawn(super::archive::run(config.clone(), listened, tx.clone()))
            }
            BgpSource::Session => match &config.session {
                Some(session) => runtime.spawn(super::session::run(session.clone(), tx.clone())),
                None => runtime.spawn(async {}),
            },
        });
        if let Some(path) = &config.rpki {
            tasks.push(runtime.spawn(super::rpki::watch(path.clone(), tx)));
        }
        Feed { tasks, _thread: stop }
    }

    /// Stops the source and the engine.
    pub async fn stop(mut self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
