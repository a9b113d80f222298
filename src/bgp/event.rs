//! What a BGP source tells the engine: [`FeedEvent`]s about [`PeerKey`]s.
//! A leaf of the engine: every source (RIS Live, MRT archives, sessions,
//! the RPKI file) speaks it and the engine in `feed` hears it, and it
//! imports neither.

use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::rpki::Vrps;
use super::wire::{Origin, PathId};
use crate::prefix::Prefix;

/// Identity of a peer: the collector it is seen through (empty for files and
/// sessions) and its address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerKey {
    /// RIS collector (`rrc00`), or empty.
    pub collector: String,
    /// Peer address.
    pub ip: IpAddr,
}

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
    Vrps(Arc<Vrps>),
}

/// Sends events to the engine.
pub type FeedSender = mpsc::Sender<FeedEvent>;

impl From<Arc<Vrps>> for FeedEvent {
    fn from(vrps: Arc<Vrps>) -> FeedEvent {
        FeedEvent::Vrps(vrps)
    }
}
