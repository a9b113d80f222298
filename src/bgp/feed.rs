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

use super::config::{Bgp, BgpSource};
use super::event::{FeedEvent, PeerKey};
use super::rib::{Denominator, Interest, MAX_MORE_SPECIFICS_PER_PEER, MAX_PEERS, Rib, SourceId};
use super::{Visibility, VisibilityBoard};
use crate::prefix::Prefix;

/// One source's health, as the engine judges it.
struct SourceState {
    name: &'static str,
    /// Our own sessions: every peer that is up counts, and the hold timer,
    /// not `stale_after`, tells a dead peer.
    counts_up_peers: bool,
    healthy: bool,
    stale: bool,
    /// When it last said anything.
    last: Instant,
    /// The routing-beacon canary, when `[bgp] canary` asks for it.
    canary: Option<super::canary::Canary>,
    /// False while the canary says the feed is frozen.
    canary_ok: bool,
}

impl SourceState {
    /// Why the source counts as down, if it does.
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
}

/// Where the engine reports its counts and each source's health (the
/// metrics, in `run`). A trait, so that the BGP layer, upstream of the
/// metrics in the data flow, does not import them.
pub trait FeedGauges: Send + Sync {
    /// `n` route updates arrived from `source`.
    fn add_updates(&self, source: &str, n: u64);
    /// `source` sent something that could not be understood.
    fn add_malformed(&self, source: &str);
    /// `source` is up (`None`) or down, and why.
    fn set_feed_up(&self, source: &str, down_because: Option<&str>);
}

/// Where the engine publishes what it decides: the [`VisibilityBoard`]
/// the probes watch in `run`, the replay's timeline in `replay` — one
/// engine for both, so a backtest judges exactly what `run` would.
pub trait Publish {
    /// The current visibility of a watched prefix (perhaps unchanged).
    fn visibility(&mut self, visibility: Visibility);
    /// A source is up (`None`) or down, and why.
    fn source(&mut self, name: &'static str, down_because: Option<&'static str>);
}

impl Publish for VisibilityBoard {
    fn visibility(&mut self, visibility: Visibility) {
        self.publish(visibility);
    }

    fn source(&mut self, name: &'static str, down_because: Option<&'static str>) {
        self.status().set(name, down_because);
    }
}

/// Which watched prefixes an event may have changed: the one encoding of
/// it, for every source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed {
    /// Those overlapping this prefix (a route came or went).
    Overlapping(Prefix),
    /// All of them (a peer, a source's health or the VRPs changed).
    All,
}

/// The engine: routes, health, and where visibility is published. With
/// several sources (`source = ["ris-live", "session"]`) their peers are
/// pooled: a source that is down counts for nothing, and visibility is
/// unknown only when every source is down.
pub struct Engine<P: Publish = VisibilityBoard> {
    rib: Rib,
    board: P,
    watched: Vec<Prefix>,
    sources: Vec<SourceState>,
    metrics: Option<Arc<dyn FeedGauges>>,
    last_limit_warning: Option<Instant>,
}

/// Where an event came from: the index of its source.
pub type Tagged = (SourceId, FeedEvent);

impl<P: Publish> Engine<P> {
    /// An engine for `watched` prefixes fed by one source, publishing to `board`.
    pub fn new(source: BgpSource, watched: Vec<Prefix>, board: P, metrics: Option<Arc<dyn FeedGauges>>) -> Engine<P> {
        Engine::pooled(&[source], watched, board, metrics)
    }

    /// An engine pooling the peers of `sources` (event tags index this list).
    pub fn pooled(
        sources: &[BgpSource],
        watched: Vec<Prefix>,
        board: P,
        metrics: Option<Arc<dyn FeedGauges>>,
    ) -> Engine<P> {
        let denominator =
            |s: &BgpSource| if *s == BgpSource::Session { Denominator::UpPeers } else { Denominator::Carriers };
        let states = sources
            .iter()
            .map(|s| SourceState {
                name: s.as_str(),
                counts_up_peers: *s == BgpSource::Session,
                healthy: false,
                stale: false,
                last: Instant::now(),
                canary: None,
                canary_ok: true,
            })
            .collect();
        let mut engine = Engine {
            rib: Rib::with_sources(Interest::Watched(watched.clone()), sources.iter().map(denominator).collect()),
            board,
            watched,
            sources: states,
            metrics,
            last_limit_warning: None,
        };
        for i in 0..engine.sources.len() {
            engine.set_feed_gauge(i);
        }
        engine
    }

    /// The same engine judging its RIS Live and MRT sources by the RIS
    /// routing beacons too (`canary` makes one judge per source).
    pub fn with_canary(mut self, canary: impl Fn() -> super::canary::Canary) -> Engine<P> {
        for s in self.sources.iter_mut().filter(|s| !s.counts_up_peers) {
            s.canary = Some(canary());
        }
        self
    }

    /// True while at least one source is up.
    fn feed_up(&self) -> bool {
        self.sources.iter().any(|s| s.down_because().is_none())
    }

    /// The same engine with its sources up from the start, without a word
    /// in the log: files read whole (`replay`) have no connection to wait for.
    pub fn already_up(mut self) -> Engine<P> {
        for s in &mut self.sources {
            s.healthy = true;
        }
        for i in 0..self.sources.len() {
            self.set_feed_gauge(i);
        }
        self
    }

    /// Where it publishes.
    pub fn publisher(&mut self) -> &mut P {
        &mut self.board
    }

    fn set_feed_gauge(&mut self, source: usize) {
        let s = &self.sources[source];
        self.board.source(s.name, s.down_because());
        if let Some(m) = &self.metrics {
            m.set_feed_up(s.name, s.down_because());
        }
    }

    /// A source's health may have changed: gauges, the pooled RIB, and the
    /// visibility of every watched prefix.
    fn health_changed(&mut self, source: usize) {
        self.set_feed_gauge(source);
        if self.sources.len() > 1 {
            let up = self.sources[source].down_because().is_none();
            self.rib.set_source_up(source as SourceId, up);
        }
        self.publish(Changed::All);
    }

    /// Judges the beacons of every source now.
    pub fn check_canary(&mut self) {
        let now = crate::time::unix(std::time::SystemTime::now());
        for i in 0..self.sources.len() {
            let s = &mut self.sources[i];
            let Some(canary) = &mut s.canary else { continue };
            let ok = canary.check(now);
            if ok != s.canary_ok {
                if ok {
                    info!(source = s.name, "RIS routing beacons seen on schedule again: BGP feed trusted");
                } else {
                    warn!(source = s.name, "BGP feed down: {}; its peers count for nothing", canary.explain());
                }
                s.canary_ok = ok;
                self.health_changed(i);
            }
        }
    }

    /// True when `prefix` is a beacon `source`'s canary counts (then it is
    /// not a route of interest).
    fn beacon(&mut self, source: usize, peer: &PeerKey, prefix: &Prefix, announce: bool) -> bool {
        let Some(canary) = &mut self.sources[source].canary else { return false };
        if !canary.is_beacon(prefix) {
            return false;
        }
        canary.saw(peer, announce, crate::time::unix(std::time::SystemTime::now()));
        true
    }

    /// Recomputes and publishes the watched prefixes `changed` touches.
    fn publish(&mut self, changed: Changed) {
        let up = self.feed_up();
        let touched = |w: &&Prefix| match changed {
            Changed::All => true,
            Changed::Overlapping(p) => w.overlaps(&p),
        };
        for w in self.watched.iter().filter(touched) {
            self.board.visibility(self.rib.visibility(*w, up));
        }
    }

    /// Applies one event of the first source and publishes what it changed.
    pub fn apply(&mut self, event: FeedEvent) {
        self.apply_from(0, event);
    }

    /// Applies one event of `source` and publishes what it changed.
    pub fn apply_from(&mut self, source: SourceId, event: FeedEvent) {
        let src = usize::from(source).min(self.sources.len() - 1);
        let name = self.sources[src].name;
        match event {
            FeedEvent::Announce { peer, prefix, path_id, origin } => {
                self.count_update(name);
                if self.beacon(src, &peer, &prefix, true) {
                    return;
                }
                // Interest first: a route outside the watched space neither
                // registers its peer nor costs more than this check.
                if !self.rib.wants(&prefix) {
                    return;
                }
                let Some(id) = self.rib.peer_of(&peer, source) else {
                    self.warn_limit(name, format!("more than {MAX_PEERS} peers; routes from new ones are ignored"));
                    return;
                };
                let capped = self.rib.capped();
                if self.rib.announce_path(id, path_id, prefix, origin) {
                    self.publish(Changed::Overlapping(prefix));
                } else if self.rib.capped() > capped {
                    self.warn_limit(
                        name,
                        format!(
                            "peer {} holds {MAX_MORE_SPECIFICS_PER_PEER} more-specifics of a watched prefix; further ones are ignored",
                            peer.ip
                        ),
                    );
                }
            }
            FeedEvent::Withdraw { peer, prefix, path_id } => {
                self.count_update(name);
                if self.beacon(src, &peer, &prefix, false) {
                    return;
                }
                if let Some(id) = self.rib.known_peer(&peer)
                    && self.rib.withdraw_path(id, path_id, prefix)
                {
                    self.publish(Changed::Overlapping(prefix));
                }
            }
            FeedEvent::PeerUp(peer) => {
                // Our own sessions count every peer that is up; a collector's
                // peer counts once it carries something of interest.
                let id = if self.sources[src].counts_up_peers {
                    self.rib.peer_of(&peer, source)
                } else {
                    self.rib.known_peer(&peer)
                };
                if let Some(id) = id {
                    self.rib.peer_up(id);
                    self.publish(Changed::All);
                }
            }
            FeedEvent::PeerDown(peer) => {
                if let Some(id) = self.rib.known_peer(&peer) {
                    self.rib.peer_down(id);
                    self.publish(Changed::All);
                }
            }
            FeedEvent::Reset => {
                self.rib.forget_routes_of(source);
                self.publish(Changed::All);
            }
            FeedEvent::Healthy(healthy) => {
                let s = &mut self.sources[src];
                if healthy != s.healthy {
                    s.healthy = healthy;
                    if let Some(canary) = &mut s.canary {
                        canary.feed_up(healthy, crate::time::unix(std::time::SystemTime::now()));
                        s.canary_ok = true;
                    }
                    if healthy {
                        info!(source = name, peers = self.rib.peers_up(), "BGP feed up");
                    } else if self.sources.iter().all(|s| !s.healthy) {
                        warn!(source = name, "BGP feed down: bgp probes are unknown until it is back");
                    } else {
                        warn!(source = name, "BGP feed down: its peers count for nothing until it is back");
                    }
                    self.health_changed(src);
                }
            }
            FeedEvent::Alive => {}
            FeedEvent::Malformed => {
                if let Some(m) = &self.metrics {
                    m.add_malformed(name);
                }
            }
            FeedEvent::Vrps(vrps) => {
                self.rib.set_vrps(vrps);
                self.publish(Changed::All);
            }
        }
    }

    /// Peers the engine knows.
    pub fn peers_known(&self) -> usize {
        self.rib.peers_known()
    }

    /// A limit was hit: said at most once a minute.
    fn warn_limit(&mut self, source: &'static str, what: String) {
        if self.last_limit_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            warn!(source, "BGP engine limit: {what}");
            self.last_limit_warning = Some(Instant::now());
        }
    }

    fn count_update(&self, source: &'static str) {
        if let Some(m) = &self.metrics {
            m.add_updates(source, 1);
        }
    }

    /// `source` said something (or stayed silent too long).
    fn set_stale(&mut self, source: usize, stale: bool) {
        let s = &mut self.sources[source];
        if stale != s.stale {
            s.stale = stale;
            if stale {
                warn!(source = s.name, "BGP feed silent for too long: its peers count for nothing until it speaks");
            }
            self.health_changed(source);
        }
    }

    /// When the next source not yet stale goes stale, given `stale_after`.
    /// A BGP session is never stale: its hold timer is its liveness check
    /// (a quiet session within its hold time is healthy).
    fn next_stale(&self, stale_after: Duration) -> Option<(usize, Instant)> {
        self.sources
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.stale && !s.counts_up_peers)
            .map(|(i, s)| (i, s.last + stale_after))
            .min_by_key(|(_, at)| *at)
    }
}

/// Passes `events` on to the engine, tagged with their source.
async fn tag<T: Into<FeedEvent>>(source: SourceId, mut events: mpsc::Receiver<T>, engine: mpsc::Sender<Tagged>) {
    while let Some(event) = events.recv().await {
        if engine.send((source, event.into())).await.is_err() {
            return;
        }
    }
}

/// Applies events of one source until its senders are gone, marking the
/// feed stale after `stale_after` without any event.
pub async fn run_engine<P: Publish>(engine: Engine<P>, events: mpsc::Receiver<FeedEvent>, stale_after: Duration) {
    let (tx, rx) = mpsc::channel(1024);
    tokio::join!(tag(0, events, tx), run_pooled(engine, rx, stale_after));
}

/// Applies tagged events of every source until all senders are gone; a
/// source silent for `stale_after` is stale.
pub async fn run_pooled<P: Publish>(mut engine: Engine<P>, mut events: mpsc::Receiver<Tagged>, stale_after: Duration) {
    let every = engine
        .sources
        .iter()
        .filter_map(|s| s.canary.as_ref())
        .map(|c| c.check_every())
        .min()
        .unwrap_or(Duration::from_secs(3600));
    let has_canary = engine.sources.iter().any(|s| s.canary.is_some());
    let mut canary = tokio::time::interval(every);
    loop {
        let next = engine.next_stale(stale_after);
        tokio::select! {
            _ = canary.tick(), if has_canary => engine.check_canary(),
            event = events.recv() => {
                let Some((source, event)) = event else { return };
                let src = usize::from(source).min(engine.sources.len() - 1);
                // New VRPs come from a file, not from the feed: no sign of life.
                if !matches!(event, FeedEvent::Vrps(_)) {
                    engine.sources[src].last = Instant::now();
                    engine.set_stale(src, false);
                }
                engine.apply_from(source, event);
            }
            () = tokio::time::sleep_until(next.map_or_else(Instant::now, |(_, at)| at)), if next.is_some() => {
                if let Some((source, _)) = next {
                    engine.set_stale(source, true);
                }
            }
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

/// A BGP source that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// No HTTP client for RIS Live's seeding.
    #[error("cannot create the HTTP client of the RIS Live source: {0}")]
    RisLive(reqwest::Error),
    /// No HTTP client for the MRT archive.
    #[error("cannot create the HTTP client of the MRT source: {0}")]
    Archive(reqwest::Error),
}

impl Feed {
    /// Starts the source configured in `[bgp]` for the `watched` prefixes
    /// (nothing runs when there are none).
    pub fn start(
        config: &Bgp,
        watched: Vec<Prefix>,
        board: VisibilityBoard,
        metrics: Arc<dyn FeedGauges>,
    ) -> Result<Feed, FeedError> {
        if watched.is_empty() {
            return Ok(Feed { tasks: Vec::new(), _thread: None });
        }
        // Clients first: a source that cannot have one is a start-up error,
        // not a source that silently runs without its timeouts.
        let ris_live = match config.sources.contains(&BgpSource::RisLive) {
            true => Some(super::ris_live::RisLive::new(config, &watched).map_err(FeedError::RisLive)?),
            false => None,
        };
        let archive = match config.sources.contains(&BgpSource::Mrt) {
            true => Some(super::archive::client(&super::archive::Limits::default()).map_err(FeedError::Archive)?),
            false => None,
        };
        let (runtime, stop) = match bgp_thread() {
            Some((handle, stop)) => (handle, Some(stop)),
            None => (tokio::runtime::Handle::current(), None),
        };
        let (tagged, rx) = mpsc::channel(4096);
        let mut engine = Engine::pooled(&config.sources, watched.clone(), board, Some(metrics));
        // The beacons are listened to, not seeded or published.
        let beacons = if config.canary { super::canary::beacons() } else { Vec::new() };
        if config.canary {
            let min_peers = config.min_peers;
            engine = engine.with_canary(|| super::canary::Canary::new(min_peers));
        }
        let mut tasks = vec![runtime.spawn(run_pooled(engine, rx, config.stale_after))];
        for (i, source) in config.sources.iter().enumerate() {
            let (tx, events) = mpsc::channel(4096);
            tasks.push(runtime.spawn(tag(i as SourceId, events, tagged.clone())));
            tasks.push(match source {
                BgpSource::RisLive => match ris_live.clone() {
                    Some(source) => runtime.spawn(super::ris_live::run(source.listening_to(&beacons), tx)),
                    None => runtime.spawn(async {}),
                },
                BgpSource::Mrt => {
                    let listened = watched.iter().chain(&beacons).copied().collect();
                    let client = archive.clone().expect("built above for an mrt source");
                    runtime.spawn(super::archive::run(client, config.clone(), listened, tx))
                }
                BgpSource::Session => match &config.session {
                    Some(session) => runtime.spawn(super::session::run(session.clone(), tx)),
                    None => runtime.spawn(async {}),
                },
            });
        }
        if let Some(path) = &config.rpki {
            let (tx, events) = mpsc::channel(4);
            tasks.push(runtime.spawn(tag(0, events, tagged)));
            tasks.push(runtime.spawn(super::rpki::watch(path.clone(), tx)));
        }
        Ok(Feed { tasks, _thread: stop })
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
