//! The visibility engine's state: per-peer routes for the watched prefixes,
//! their more-specifics and the less-specifics that cover them.
//!
//! Sources (MRT files, RIS Live, BGP sessions) turn what they read into
//! [`Rib::announce`], [`Rib::withdraw`] and [`Rib::peer_down`]; probes read
//! [`Rib::visibility`]. A peer *sees* a watched prefix when it has a route to
//! it or to a covering prefix (a default route does not count: it says nothing
//! about where the prefix is). The denominator is the peers that have carried
//! the prefix or a covering one since their session came up — a full-feed
//! peer for that address space; a peer that goes away leaves it, which is not
//! a withdrawal. With [`Interest::All`] every prefix is kept (for checking
//! the engine against reference dumps).
//!
//! Cost: judging a watched prefix looks up its covering prefixes by length
//! (at most 32 or 128 look-ups) and keeps the origins of its more-specifics
//! as running counts, so an UPDATE costs the same whether 10 or 100,000
//! more-specifics sit under the prefix. Each peer may hold at most
//! [`MAX_MORE_SPECIFICS_PER_PEER`] more-specifics of watched prefixes and
//! the engine knows at most [`MAX_PEERS`] peers: a peer flooding the watched
//! space, or a feed inventing peer identities, cannot grow memory without
//! bound. Only routes of interest register a peer.

use std::collections::{HashMap, HashSet};

use std::sync::Arc;

use super::event::PeerKey;
use super::rpki::{Validity, Vrps};
use super::wire::{Origin, PathId};
use super::{MoreSpecific, Visibility};
use crate::prefix::Prefix;

/// A peer, as the engine numbers them.
pub type PeerId = u32;

/// Most peers the engine keeps (RIS has about 1,500; a session, a handful).
pub const MAX_PEERS: usize = 20_000;

/// Most strict more-specifics of watched prefixes one peer may hold.
pub const MAX_MORE_SPECIFICS_PER_PEER: u32 = 10_000;

/// Per watched prefix: the origins of its strict more-specifics, as counts
/// of routes per (origin, peer) and per (origin, prefix), the same for the
/// RPKI-invalid ones, and the number of them per peer.
#[derive(Debug, Default)]
struct MoreSpecifics {
    origins: HashMap<u32, HashMap<PeerId, u32>>,
    prefixes: HashMap<u32, HashMap<Prefix, u32>>,
    invalid: HashMap<Origin, HashMap<PeerId, u32>>,
    per_peer: HashMap<PeerId, u32>,
}

impl MoreSpecifics {
    fn add(&mut self, peer: PeerId, prefix: Prefix, origin: Origin, invalid: bool) {
        *self.per_peer.entry(peer).or_default() += 1;
        if let Some(asn) = origin {
            *self.origins.entry(asn).or_default().entry(peer).or_default() += 1;
            *self.prefixes.entry(asn).or_default().entry(prefix).or_default() += 1;
        }
        if invalid {
            *self.invalid.entry(origin).or_default().entry(peer).or_default() += 1;
        }
    }

    fn remove(&mut self, peer: PeerId, prefix: Prefix, origin: Origin, invalid: bool) {
        decrement(&mut self.per_peer, peer);
        if let Some(asn) = origin
            && let Some(peers) = self.origins.get_mut(&asn)
        {
            decrement(peers, peer);
            if peers.is_empty() {
                self.origins.remove(&asn);
            }
        }
        if let Some(asn) = origin
            && let Some(prefixes) = self.prefixes.get_mut(&asn)
        {
            decrement(prefixes, prefix);
            if prefixes.is_empty() {
                self.prefixes.remove(&asn);
            }
        }
        if invalid && let Some(peers) = self.invalid.get_mut(&origin) {
            decrement(peers, peer);
            if peers.is_empty() {
                self.invalid.remove(&origin);
            }
        }
    }
}

fn decrement<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, u32>, key: K) {
    if let Some(n) = counts.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

/// Which prefixes the engine keeps.
#[derive(Debug, Clone)]
pub enum Interest {
    /// Every prefix (tests against reference dumps).
    All,
    /// Only prefixes related to these: equal, more- or less-specific.
    Watched(Vec<Prefix>),
}

impl Interest {
    /// True when routes to `prefix` matter.
    pub fn wants(&self, prefix: &Prefix) -> bool {
        match self {
            Interest::All => true,
            Interest::Watched(list) => list.iter().any(|w| w.overlaps(prefix)),
        }
    }
}

/// How the denominator of visibility is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denominator {
    /// Peers that carried the prefix or a covering one since they came up
    /// (route collectors: their full-feed peers for that address space).
    Carriers,
    /// Every peer that is up (our own BGP sessions: routers that would carry
    /// the prefix if it existed).
    UpPeers,
}

#[derive(Debug)]
struct PeerInfo {
    key: PeerKey,
    up: bool,
    source: SourceId,
}

/// Which of the configured sources a peer was learnt from (0 for the first;
/// a RIB fed by one source only ever sees 0).
pub type SourceId = u8;

/// One route: a peer's path to a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Who.
    pub peer: PeerId,
    /// Its ADD-PATH path id (0 without ADD-PATH): a peer may hold several
    /// paths to one prefix, each withdrawn on its own.
    pub path_id: PathId,
    /// The origin AS.
    pub origin: Origin,
}

/// Routes per prefix, per peer and path.
#[derive(Debug)]
pub struct Rib {
    interest: Interest,
    /// How each source's peers count in the denominator.
    denominators: Vec<Denominator>,
    /// Whether each source is up: the peers of a source that is down count
    /// neither as seeing nor in the denominator (several sources pooled).
    source_up: Vec<bool>,
    /// Indexed by [`PeerId`]; `None` for a slot freed by a peer that went
    /// down (its number is reused by the next new peer).
    peers: Vec<Option<PeerInfo>>,
    free: Vec<PeerId>,
    by_key: HashMap<PeerKey, PeerId>,
    routes: HashMap<Prefix, Vec<Route>>,
    /// Per watched prefix: peers that carried it or a covering prefix.
    carriers: HashMap<Prefix, HashSet<PeerId>>,
    /// Per watched prefix with more-specifics: their origins.
    more_specifics: HashMap<Prefix, MoreSpecifics>,
    /// Announcements refused by the per-peer cap, since start.
    capped: u64,
    /// VRPs routes are validated against, if any.
    vrps: Option<Arc<Vrps>>,
}

impl Rib {
    /// An empty RIB fed by one source.
    pub fn new(interest: Interest, denominator: Denominator) -> Rib {
        Rib::with_sources(interest, vec![denominator])
    }

    /// An empty RIB pooling the peers of several sources, each counted in
    /// the denominator as `denominators[source]` says.
    pub fn with_sources(interest: Interest, denominators: Vec<Denominator>) -> Rib {
        Rib {
            interest,
            source_up: vec![true; denominators.len()],
            denominators,
            peers: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
            routes: HashMap::new(),
            carriers: HashMap::new(),
            more_specifics: HashMap::new(),
            capped: 0,
            vrps: None,
        }
    }

    /// True when routes to `prefix` matter.
    pub fn wants(&self, prefix: &Prefix) -> bool {
        self.interest.wants(prefix)
    }

    /// The engine's number for a known peer.
    pub fn known_peer(&self, key: &PeerKey) -> Option<PeerId> {
        self.by_key.get(key).copied()
    }

    /// The engine's number for a peer of the first source, registering it
    /// (as up) if new; `None` when [`MAX_PEERS`] are known already.
    pub fn peer(&mut self, key: &PeerKey) -> Option<PeerId> {
        self.peer_of(key, 0)
    }

    /// The engine's number for a peer learnt from `source`, registering it
    /// (as up) if new; `None` when [`MAX_PEERS`] are known already.
    pub fn peer_of(&mut self, key: &PeerKey, source: SourceId) -> Option<PeerId> {
        if let Some(&id) = self.by_key.get(key) {
            return Some(id);
        }
        if self.by_key.len() >= MAX_PEERS {
            return None;
        }
        let info = Some(PeerInfo { key: key.clone(), up: true, source });
        let id = match self.free.pop() {
            Some(id) => {
                self.peers[id as usize] = info;
                id
            }
            None => {
                self.peers.push(info);
                (self.peers.len() - 1) as PeerId
            }
        };
        self.by_key.insert(key.clone(), id);
        Some(id)
    }

    /// Announcements refused by the per-peer more-specifics cap so far.
    pub fn capped(&self) -> u64 {
        self.capped
    }

    /// The watched prefixes that strictly cover `prefix`.
    fn watched_above(&self, prefix: Prefix) -> impl Iterator<Item = Prefix> + '_ {
        let list: &[Prefix] = match &self.interest {
            Interest::All => &[],
            Interest::Watched(list) => list,
        };
        list.iter().copied().filter(move |w| w.covers(&prefix) && *w != prefix)
    }

    /// The key of a peer number.
    pub fn peer_key(&self, peer: PeerId) -> &PeerKey {
        &self.peers[peer as usize].as_ref().expect("only known peers hold routes or are looked up").key
    }

    /// Marks a peer up (a session came up: it starts with no routes).
    pub fn peer_up(&mut self, peer: PeerId) {
        if let Some(Some(info)) = self.peers.get_mut(peer as usize) {
            info.up = true;
        }
    }

    /// A peer's session went away: its routes go, it leaves every
    /// denominator, and the engine forgets it (a peer that comes back is
    /// registered anew). Returns true if it held any route.
    pub fn peer_down(&mut self, peer: PeerId) -> bool {
        let Some(info) = self.peers.get_mut(peer as usize).and_then(Option::take) else { return false };
        self.by_key.remove(&info.key);
        self.free.push(peer);
        let held: Vec<(Prefix, PathId)> = self
            .routes
            .iter()
            .flat_map(|(prefix, routes)| routes.iter().filter(|r| r.peer == peer).map(|r| (*prefix, r.path_id)))
            .collect();
        for (prefix, path_id) in &held {
            self.withdraw_path(peer, *path_id, *prefix);
        }
        for carriers in self.carriers.values_mut() {
            carriers.remove(&peer);
        }
        !held.is_empty()
    }

    /// Forgets every route but remembers which peers counted for each
    /// watched prefix: after a reconnect the feed re-seeds the routes, and a
    /// withdrawal that happened meanwhile must still read as one (a peer
    /// without a route is not seeing), not as "too few peers to judge".
    pub fn forget_routes(&mut self) {
        self.routes.clear();
        self.more_specifics.clear();
    }

    /// As [`Rib::forget_routes`], for the routes of `source`'s peers only.
    pub fn forget_routes_of(&mut self, source: SourceId) {
        if self.denominators.len() == 1 {
            return self.forget_routes();
        }
        let of_source =
            |peer: PeerId| self.peers.get(peer as usize).and_then(Option::as_ref).is_some_and(|p| p.source == source);
        let held: Vec<(Prefix, PeerId, PathId)> = self
            .routes
            .iter()
            .flat_map(|(prefix, routes)| routes.iter().map(move |r| (*prefix, r.peer, r.path_id)))
            .filter(|(_, peer, _)| of_source(*peer))
            .collect();
        for (prefix, peer, path_id) in held {
            self.withdraw_path(peer, path_id, prefix);
        }
    }

    /// Marks `source` up or down: while down its peers count for nothing.
    pub fn set_source_up(&mut self, source: SourceId, up: bool) {
        if let Some(state) = self.source_up.get_mut(usize::from(source)) {
            *state = up;
        }
    }

    /// True when every source is up (nothing to filter out).
    fn all_sources_up(&self) -> bool {
        self.source_up.iter().all(|up| *up)
    }

    /// True when `peer` counts now: known, and its source up.
    fn counts(&self, peer: PeerId) -> bool {
        self.peers
            .get(peer as usize)
            .and_then(Option::as_ref)
            .is_some_and(|p| self.source_up.get(usize::from(p.source)).copied().unwrap_or(false))
    }

    /// The peers that count for `watched`: its carriers (sources counting
    /// carriers) and the up peers of sources counting every up peer.
    fn denominator(&self, watched: &Prefix) -> usize {
        let carriers = self.carriers.get(watched);
        if self.denominators.len() == 1 {
            return match self.denominators[0] {
                Denominator::UpPeers => self.peers_up(),
                Denominator::Carriers => carriers.map_or(0, HashSet::len),
            };
        }
        let counts_carriers =
            |p: &PeerInfo| self.denominators.get(usize::from(p.source)) == Some(&Denominator::Carriers);
        let mut total: HashSet<PeerId> = carriers
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| self.counts(*id) && self.peers[*id as usize].as_ref().is_some_and(counts_carriers))
            .collect();
        for (id, p) in self.peers.iter().enumerate() {
            if let Some(p) = p
                && p.up
                && !counts_carriers(p)
                && self.counts(id as PeerId)
            {
                total.insert(id as PeerId);
            }
        }
        total.len()
    }

    /// `peer` has a route to `prefix` from `origin` (replacing any earlier
    /// one); path 0. Returns false when the prefix is not of interest.
    pub fn announce(&mut self, peer: PeerId, prefix: Prefix, origin: Origin) -> bool {
        self.announce_path(peer, 0, prefix, origin)
    }

    /// `peer` has path `path_id` to `prefix` from `origin` (replacing that
    /// path's earlier route). Returns false when the prefix is not of interest.
    pub fn announce_path(&mut self, peer: PeerId, path_id: PathId, prefix: Prefix, origin: Origin) -> bool {
        if !self.interest.wants(&prefix) {
            return false;
        }
        let above: Vec<Prefix> = self.watched_above(prefix).collect();
        let same = |r: &&Route| r.peer == peer && r.path_id == path_id;
        let previous = self.routes.get(&prefix).and_then(|r| r.iter().find(same)).map(|r| r.origin);
        if previous.is_none()
            && above.iter().any(|w| {
                self.more_specifics.get(w).and_then(|m| m.per_peer.get(&peer)).copied().unwrap_or(0)
                    >= MAX_MORE_SPECIFICS_PER_PEER
            })
        {
            self.capped += 1;
            return false;
        }
        if let Some(Some(info)) = self.peers.get_mut(peer as usize) {
            info.up = true;
        }
        let routes = self.routes.entry(prefix).or_default();
        match routes.iter_mut().find(|r| r.peer == peer && r.path_id == path_id) {
            Some(route) => route.origin = origin,
            None => routes.push(Route { peer, path_id, origin }),
        }
        let invalid = self.invalid(prefix, origin);
        let was_invalid = previous.is_some_and(|old| self.invalid(prefix, old));
        for w in above {
            let index = self.more_specifics.entry(w).or_default();
            if let Some(old) = previous {
                index.remove(peer, prefix, old, was_invalid);
            }
            index.add(peer, prefix, origin, invalid);
        }
        if let Interest::Watched(watched) = &self.interest
            && prefix.length() > 0
        {
            for w in watched.iter().filter(|w| prefix.covers(w)) {
                self.carriers.entry(*w).or_default().insert(peer);
            }
        }
        true
    }

    /// `peer` no longer routes `prefix` (path 0). Returns true if it had a route.
    pub fn withdraw(&mut self, peer: PeerId, prefix: Prefix) -> bool {
        self.withdraw_path(peer, 0, prefix)
    }

    /// `peer` withdrew path `path_id` to `prefix`; its other paths stay.
    /// Returns true if it had that route.
    pub fn withdraw_path(&mut self, peer: PeerId, path_id: PathId, prefix: Prefix) -> bool {
        let Some(routes) = self.routes.get_mut(&prefix) else { return false };
        let Some(at) = routes.iter().position(|r| r.peer == peer && r.path_id == path_id) else { return false };
        let Route { origin, .. } = routes.swap_remove(at);
        if routes.is_empty() {
            self.routes.remove(&prefix);
        }
        let above: Vec<Prefix> = self.watched_above(prefix).collect();
        let invalid = self.invalid(prefix, origin);
        for w in above {
            if let Some(index) = self.more_specifics.get_mut(&w) {
                index.remove(peer, prefix, origin, invalid);
            }
        }
        true
    }

    /// True when VRPs are loaded and say the route is RPKI-invalid.
    fn invalid(&self, prefix: Prefix, origin: Origin) -> bool {
        self.vrps.as_ref().is_some_and(|v| v.validate(prefix, origin) == Validity::Invalid)
    }

    /// Validates routes against `vrps` from now on (and re-validates every
    /// route held).
    pub fn set_vrps(&mut self, vrps: Arc<Vrps>) {
        self.vrps = Some(vrps);
        self.more_specifics.clear();
        let held: Vec<(Prefix, Vec<Route>)> = self
            .routes
            .iter()
            .filter(|(prefix, _)| self.watched_above(**prefix).next().is_some())
            .map(|(prefix, routes)| (*prefix, routes.clone()))
            .collect();
        for (prefix, routes) in held {
            let above: Vec<Prefix> = self.watched_above(prefix).collect();
            for Route { peer, origin, .. } in routes {
                let invalid = self.invalid(prefix, origin);
                for w in &above {
                    self.more_specifics.entry(*w).or_default().add(peer, prefix, origin, invalid);
                }
            }
        }
    }

    /// Every route to exactly `prefix`.
    pub fn routes_to(&self, prefix: &Prefix) -> &[Route] {
        self.routes.get(prefix).map_or(&[], Vec::as_slice)
    }

    /// Every prefix with at least one route.
    pub fn prefixes(&self) -> impl Iterator<Item = &Prefix> {
        self.routes.keys()
    }

    /// Peers the engine knows (up or not).
    pub fn peers_known(&self) -> usize {
        self.by_key.len()
    }

    /// Peers currently up.
    pub fn peers_up(&self) -> usize {
        self.peers.iter().flatten().filter(|p| p.up).count()
    }

    /// How the engine sees `watched` now. `feed_up` is the source's health.
    pub fn visibility(&self, watched: Prefix, feed_up: bool) -> Visibility {
        // For each peer, the most specific route covering `watched`: the
        // prefix itself, then its covering prefixes from the longest down
        // (a default route says nothing about where the prefix is).
        let all_up = self.all_sources_up();
        let counts = |peer: PeerId| all_up || self.counts(peer);
        let mut best: HashMap<PeerId, Prefix> = HashMap::new();
        for length in (1..=watched.length()).rev() {
            let Some(covering) = Prefix::new(watched.addr(), length) else { continue };
            for route in self.routes_to(&covering).iter().filter(|r| counts(r.peer)) {
                best.entry(route.peer).or_insert(covering);
            }
        }
        // Peers per origin: a peer with several paths from one origin counts once.
        let pairs: HashSet<(PeerId, Origin)> =
            self.routes_to(&watched).iter().filter(|r| counts(r.peer)).map(|r| (r.peer, r.origin)).collect();
        let mut exact: HashMap<Option<u32>, usize> = HashMap::new();
        for (_, origin) in &pairs {
            *exact.entry(*origin).or_default() += 1;
        }
        // RPKI-invalid routes to the prefix or a more-specific: peers per origin.
        let mut invalid: HashMap<Origin, HashSet<PeerId>> = HashMap::new();
        for (peer, origin) in &pairs {
            if self.invalid(watched, *origin) {
                invalid.entry(*origin).or_default().insert(*peer);
            }
        }
        if let Some(index) = self.more_specifics.get(&watched) {
            for (origin, peers) in &index.invalid {
                invalid.entry(*origin).or_default().extend(peers.keys().filter(|p| counts(**p)));
            }
        }
        let mut rpki_invalid: Vec<(Origin, usize)> = invalid
            .into_iter()
            .filter(|(_, peers)| !peers.is_empty())
            .map(|(origin, peers)| (origin, peers.len()))
            .collect();
        rpki_invalid.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut more_specific_origins: Vec<MoreSpecific> =
            self.more_specifics
                .get(&watched)
                .map(|index| {
                    index
                        .origins
                        .iter()
                        .filter_map(|(asn, peers)| {
                            let n = if all_up { peers.len() } else { peers.keys().filter(|p| counts(**p)).count() };
                            // The most-routed more-specific, the shortest of equals.
                            let prefix =
                                index.prefixes.get(asn)?.iter().max_by(|a, b| {
                                    a.1.cmp(b.1).then(b.0.length().cmp(&a.0.length())).then(b.0.cmp(a.0))
                                })?;
                            (n > 0).then_some(MoreSpecific { origin: *asn, peers: n, prefix: *prefix.0 })
                        })
                        .collect()
                })
                .unwrap_or_default();
        more_specific_origins.sort_by(|a, b| b.peers.cmp(&a.peers).then(a.origin.cmp(&b.origin)));
        let mut exact: Vec<(Option<u32>, usize)> = exact.into_iter().collect();
        exact.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let peers_total = self.denominator(&watched);
        let mut via: HashMap<Prefix, usize> = HashMap::new();
        for covering in best.values().filter(|p| **p != watched) {
            *via.entry(*covering).or_default() += 1;
        }
        let mut via_covering: Vec<(Prefix, usize)> = via.into_iter().collect();
        via_covering.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Visibility {
            prefix: watched,
            feed_up,
            peers_total: peers_total.max(best.len()),
            peers_seeing: best.len(),
            exact,
            via_covering,
            more_specific_origins,
            rpki_invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    /// (origin, peers) of each more-specific origin, most common first.
    fn origins(v: &Visibility) -> Vec<(u32, usize)> {
        v.more_specific_origins.iter().map(|m| (m.origin, m.peers)).collect()
    }

    fn rib() -> (Rib, Vec<PeerId>) {
        let mut rib = Rib::new(Interest::Watched(vec![p("129.134.30.0/23")]), Denominator::Carriers);
        let peers = (1..=4)
            .map(|i| {
                rib.peer(&PeerKey { collector: "rrc00".into(), ip: format!("10.0.0.{i}").parse().unwrap() }).unwrap()
            })
            .collect();
        (rib, peers)
    }

    #[test]
    fn rpki_invalid_routes_are_counted_per_origin_and_revalidated_when_vrps_change() {
        let (mut rib, peers) = rib();
        let vrps = |json: &str| Arc::new(Vrps::parse(json.as_bytes()).unwrap());
        rib.set_vrps(vrps(r#"{"roas": [{"asn": 32934, "prefix": "129.134.30.0/23", "maxLength": 24}]}"#));
        rib.announce(peers[0], p("129.134.30.0/23"), Some(32934));
        rib.announce(peers[1], p("129.134.30.0/23"), Some(666));
        rib.announce(peers[2], p("129.134.31.0/24"), Some(32934));
        rib.announce(peers[3], p("129.134.30.0/25"), Some(32934));
        rib.announce(peers[2], p("129.134.30.128/25"), Some(666));
        let v = rib.visibility(p("129.134.30.0/23"), true);
        assert_eq!(v.rpki_invalid, vec![(Some(666), 2), (Some(32934), 1)], "another origin; a /25 beyond maxLength");
        rib.withdraw(peers[3], p("129.134.30.0/25"));
        rib.announce(peers[2], p("129.134.30.128/25"), Some(32934));
        assert_eq!(rib.visibility(p("129.134.30.0/23"), true).rpki_invalid, vec![(Some(666), 1), (Some(32934), 1)]);
        // AS666 gets a ROA of its own: only the /25 stays invalid.
        rib.set_vrps(vrps(
            r#"{"roas": [{"asn": "AS32934", "prefix": "129.134.30.0/23", "maxLength": 24},
                         {"asn": "AS666", "prefix": "129.134.30.0/23", "maxLength": 23}]}"#,
        ));
        assert_eq!(rib.visibility(p("129.134.30.0/23"), true).rpki_invalid, vec![(Some(32934), 1)]);
    }

    #[test]
    fn add_path_routes_are_kept_per_path_and_withdrawn_one_by_one() {
        let (mut rib, peers) = rib();
        let w = p("129.134.30.0/23");
        rib.announce_path(peers[0], 1, w, Some(32934));
        rib.announce_path(peers[0], 2, w, Some(32934));
        rib.announce_path(peers[0], 3, w, Some(666));
        let v = rib.visibility(w, true);
        assert_eq!(v.peers_seeing, 1);
        assert_eq!(v.exact, vec![(Some(666), 1), (Some(32934), 1)], "a peer counts once per origin");
        rib.withdraw_path(peers[0], 1, w);
        rib.withdraw_path(peers[0], 3, w);
        let v = rib.visibility(w, true);
        assert_eq!((v.peers_seeing, v.exact), (1, vec![(Some(32934), 1)]), "path 2 still routes it");
        rib.withdraw_path(peers[0], 2, w);
        assert_eq!(rib.visibility(w, true).peers_seeing, 0);
    }

    #[test]
    fn withdrawal_by_most_peers_drops_visibility_but_not_the_denominator() {
        let (mut rib, peers) = rib();
        for &peer in &peers {
            rib.announce(peer, p("129.134.30.0/23"), Some(32934));
        }
        assert_eq!(rib.visibility(p("129.134.30.0/23"), true).peers_seeing, 4);
        for &peer in &peers[..3] {
            rib.withdraw(peer, p("129.134.30.0/23"));
        }
        let v = rib.visibility(p("129.134.30.0/23"), true);
        assert_eq!((v.peers_seeing, v.peers_total), (1, 4));
    }

    #[test]
    fn covering_prefix_keeps_a_peer_seeing_and_is_named() {
        let (mut rib, peers) = rib();
        rib.announce(peers[0], p("129.134.30.0/23"), Some(32934));
        rib.announce(peers[1], p("129.134.0.0/17"), Some(32934));
        rib.announce(peers[2], p("0.0.0.0/0"), Some(64500));
        rib.announce(peers[3], p("10.0.0.0/8"), Some(1));
        let v = rib.visibility(p("129.134.30.0/23"), true);
        assert_eq!(v.peers_seeing, 2, "a default route and an unrelated prefix do not count");
        assert_eq!(v.via_covering, vec![(p("129.134.0.0/17"), 1)]);
        assert_eq!(rib.routes_to(&p("10.0.0.0/8")), &[], "unrelated prefixes are not kept");
    }

    #[test]
    fn more_specific_from_another_origin_is_reported() {
        let (mut rib, peers) = rib();
        rib.announce(peers[0], p("129.134.30.0/23"), Some(32934));
        rib.announce(peers[1], p("129.134.30.0/24"), Some(666));
        let v = rib.visibility(p("129.134.30.0/23"), true);
        assert_eq!(v.exact, vec![(Some(32934), 1)]);
        assert_eq!(origins(&v), vec![(666, 1)]);
        assert_eq!(v.more_specific_origins[0].prefix, p("129.134.30.0/24"), "the hijack names its prefix");
    }

    #[test]
    fn forgetting_routes_keeps_the_denominator() {
        let (mut rib, peers) = rib();
        for &peer in &peers {
            rib.announce(peer, p("129.134.30.0/23"), Some(32934));
        }
        rib.forget_routes();
        rib.announce(peers[0], p("129.134.30.0/23"), Some(32934));
        let v = rib.visibility(p("129.134.30.0/23"), true);
        assert_eq!((v.peers_seeing, v.peers_total), (1, 4));
    }

    #[test]
    fn more_specific_origins_follow_replacements_and_withdrawals() {
        let (mut rib, peers) = rib();
        rib.announce(peers[0], p("129.134.30.0/24"), Some(666));
        rib.announce(peers[0], p("129.134.30.0/24"), Some(32934));
        rib.announce(peers[1], p("129.134.31.0/24"), Some(666));
        let v = rib.visibility(p("129.134.30.0/23"), true);
        assert_eq!(origins(&v), vec![(666, 1), (32934, 1)]);
        assert_eq!(v.more_specific_origins[0].prefix, p("129.134.31.0/24"), "the replaced route is not named");
        rib.withdraw(peers[1], p("129.134.31.0/24"));
        rib.peer_down(peers[0]);
        assert_eq!(origins(&rib.visibility(p("129.134.30.0/23"), true)), vec![]);
    }

    #[test]
    fn a_peer_flooding_more_specifics_is_capped() {
        let mut rib = Rib::new(Interest::Watched(vec![p("2a03:2880::/32")]), Denominator::Carriers);
        let peer = rib.peer(&PeerKey { collector: String::new(), ip: "10.0.0.1".parse().unwrap() }).unwrap();
        let total = MAX_MORE_SPECIFICS_PER_PEER + 50;
        for i in 0..total {
            let prefix = Prefix::new(format!("2a03:2880:{:x}::", i).parse().unwrap(), 48).unwrap();
            rib.announce(peer, prefix, Some(666));
        }
        assert_eq!(rib.capped(), 50);
        assert_eq!(origins(&rib.visibility(p("2a03:2880::/32"), true)), vec![(666, 1)]);
    }

    #[test]
    fn peers_beyond_the_cap_are_not_registered() {
        let mut rib = Rib::new(Interest::Watched(vec![p("129.134.30.0/23")]), Denominator::Carriers);
        for i in 0..MAX_PEERS as u32 {
            assert!(rib.peer(&PeerKey { collector: String::new(), ip: std::net::Ipv4Addr::from(i).into() }).is_some());
        }
        let one_more = PeerKey { collector: String::new(), ip: "255.255.255.255".parse().unwrap() };
        assert_eq!(rib.peer(&one_more), None);
    }

    #[test]
    fn a_peer_gone_down_is_forgotten_and_its_number_reused() {
        let (mut rib, peers) = rib();
        rib.announce(peers[0], p("129.134.30.0/23"), Some(32934));
        rib.peer_down(peers[0]);
        assert_eq!(rib.peers_known(), 3);
        let again = PeerKey { collector: "rrc00".into(), ip: "10.0.0.9".parse().unwrap() };
        assert_eq!(rib.peer(&again), Some(peers[0]));
        assert_eq!(rib.visibility(p("129.134.30.0/23"), true).peers_seeing, 0);
    }

    #[test]
    fn a_peer_going_away_is_not_a_withdrawal() {
        let (mut rib, peers) = rib();
        for &peer in &peers {
            rib.announce(peer, p("129.134.30.0/23"), Some(32934));
        }
        rib.peer_down(peers[0]);
        let v = rib.visibility(p("129.134.30.0/23"), true);
        assert_eq!((v.peers_seeing, v.peers_total), (3, 3));
    }
}
