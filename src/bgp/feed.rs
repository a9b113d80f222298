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
use super::rib::{Denominator, Interest, PeerKey, Rib};
use super::wire::Origin;
use crate::config::{Bgp, BgpSource};
use crate::metrics::Metrics;
use crate::prefix::Prefix;

/// What a source tells the engine.
#[derive(Debug, Clone)]
pub enum FeedEvent {
    /// `peer` routes `prefix` via `origin`.
    Announce {
        /// Who.
        peer: PeerKey,
        /// What.
        prefix: Prefix,
        /// Origin AS.
        origin: Origin,
    },
    /// `peer` withdrew `prefix`.
    Withdraw {
        /// Who.
        peer: PeerKey,
        /// What.
        prefix: Prefix,
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
        };
        engine.set_feed_gauge();
        engine
    }

    fn feed_up(&self) -> bool {
        self.healthy && !self.stale
    }

    fn set_feed_gauge(&self) {
        if let Some(m) = &self.metrics {
            m.set_feed_up(self.source, self.feed_up());
        }
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
            FeedEvent::Announce { peer, prefix, origin } => {
                let id = self.rib.peer(&peer);
                self.count_update();
                if self.rib.announce(id, prefix, origin) {
                    self.publish(Some(prefix));
                }
            }
            FeedEvent::Withdraw { peer, prefix } => {
                let id = self.rib.peer(&peer);
                self.count_update();
                if self.rib.withdraw(id, prefix) {
                    self.publish(Some(prefix));
                }
            }
            FeedEvent::PeerUp(peer) => {
                let id = self.rib.peer(&peer);
                self.rib.peer_up(id);
                self.publish(None);
            }
            FeedEvent::PeerDown(peer) => {
                let id = self.rib.peer(&peer);
                self.rib.peer_down(id);
                self.publish(None);
            }
            FeedEvent::Reset => {
                self.rib.forget_routes();
                self.publish(None);
            }
            FeedEvent::Healthy(healthy) => {
                if healthy != self.healthy {
                    self.healthy = healthy;
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
            FeedEvent::Malformed => {
                if let Some(m) = &self.metrics {
                    m.add_bgp_malformed(self.source);
                }
            }
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
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                last = Instant::now();
                engine.set_stale(false);
                engine.apply(event);
            }
            () = tokio::time::sleep_until(last + stale_after), if !engine.stale => engine.set_stale(true),
        }
    }
}

/// The running feed; dropping it stops the source and the engine.
pub struct Feed {
    tasks: Vec<JoinHandle<()>>,
}

impl Feed {
    /// Starts the source configured in `[bgp]` for the `watched` prefixes
    /// (nothing runs when there are none).
    pub fn start(config: &Bgp, watched: Vec<Prefix>, board: VisibilityBoard, metrics: Arc<Metrics>) -> Feed {
        if watched.is_empty() {
            return Feed { tasks: Vec::new() };
        }
        let (tx, rx) = mpsc::channel(4096);
        let engine = Engine::new(config.source, watched.clone(), board, Some(metrics));
        let mut tasks = vec![tokio::spawn(run_engine(engine, rx, config.stale_after))];
        tasks.push(match config.source {
            BgpSource::RisLive => {
                tokio::spawn(super::ris_live::run(super::ris_live::RisLive::new(config, &watched), tx))
            }
            BgpSource::Mrt => tokio::spawn(super::archive::run(config.clone(), watched, tx)),
            BgpSource::Session => match &config.session {
                Some(session) => tokio::spawn(super::session::run(session.clone(), tx)),
                None => tokio::spawn(async {}),
            },
        });
        Feed { tasks }
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
