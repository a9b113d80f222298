//! The routing-beacon canary (`[bgp] canary = "ris-beacons"`, README "BGP
//! visibility"): a feed that stays connected but stops delivering updates
//! looks healthy to every other check; RIPE's routing beacons change on a
//! fixed public schedule, so a feed that does not show them changing is
//! frozen.
//!
//! Source: RIPE NCC, "RIS Routing Beacons",
//! <https://ris.ripe.net/docs/routing-beacons/> and its machine-readable
//! `ris-routing-beacons.json` (docs/platforms.md, "RIPE RIS routing
//! beacons", gives the exact revisions read): the beacons are announced at
//! 00:00, 04:00, … UTC and withdrawn 2 hours later, from AS12654. The list
//! below is the current plan's 2-hour beacons; the always-announced anchors
//! and rrc03's 10-minute beacons are left out.
//!
//! Each phase of the schedule (announced, then withdrawn) is judged once
//! `tolerance` has passed since it began: at least `min_peers` peers must
//! have announced (or withdrawn) a beacon during it. A phase that began
//! before the feed came up is not judged (its changes happened before we
//! listened), so a frozen feed is caught within about one phase — 2 hours
//! plus the tolerance. Tests shorten the cycle through
//! `CHATPULSE_CANARY_PERIOD`, never through the config.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv6Addr};

use super::event::PeerKey;
use crate::prefix::Prefix;

/// The full beacon cycle (announced, then withdrawn) in seconds.
const CYCLE: i64 = 4 * 3600;

/// The IPv4 2-hour beacons of the current plan.
const BEACONS_V4: [&str; 9] = [
    "84.205.64.0/24",
    "84.205.65.0/24",
    "84.205.67.0/24",
    "84.205.69.0/24",
    "84.205.70.0/24",
    "84.205.75.0/24",
    "84.205.76.0/24",
    "84.205.82.0/24",
    "93.175.153.0/24",
];

/// The last 16 bits of the third group of the per-RRC IPv6 beacons
/// `2001:7fb:feNN::/48`.
const BEACONS_V6_FE: [u16; 23] = [
    0x00, 0x01, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x12, 0x13, 0x14, 0x15, 0x16,
    0x17, 0x18, 0x19, 0x20,
];

/// Every RIS 2-hour beacon prefix, IPv4 and IPv6 (the shared
/// `2001:7fb:ee00::/48` to `ee05` included).
pub fn beacons() -> Vec<Prefix> {
    let mut out: Vec<Prefix> = BEACONS_V4.iter().filter_map(|p| p.parse().ok()).collect();
    let v6 = |group: u16| Prefix::new(IpAddr::V6(Ipv6Addr::new(0x2001, 0x07fb, group, 0, 0, 0, 0, 0)), 48);
    out.extend(BEACONS_V6_FE.iter().filter_map(|n| v6(0xfe00 | n)));
    out.extend((0..=5).filter_map(|n| v6(0xee00 | n)));
    out
}

/// The canary's judgement so far.
#[derive(Debug)]
pub struct Canary {
    cycle: i64,
    tolerance: i64,
    min_peers: usize,
    beacons: HashSet<Prefix>,
    /// Start of the phase the sets below belong to.
    phase_start: i64,
    changed: HashSet<PeerKey>,
    /// When the feed last came up (phases before it are not judged).
    up_since: Option<i64>,
    ok: bool,
}

impl Canary {
    /// A canary needing `min_peers` peers per phase; the cycle is 4 hours
    /// unless `CHATPULSE_CANARY_PERIOD` (humantime) says otherwise.
    pub fn new(min_peers: usize) -> Canary {
        let cycle = std::env::var("CHATPULSE_CANARY_PERIOD")
            .ok()
            .and_then(|s| humantime::parse_duration(&s).ok())
            .map_or(CYCLE, |d| (d.as_secs() as i64).max(2));
        Canary::with_cycle(min_peers, cycle)
    }

    /// A canary with a cycle of `cycle` seconds.
    pub fn with_cycle(min_peers: usize, cycle: i64) -> Canary {
        Canary {
            cycle,
            tolerance: (cycle / 8).max(1),
            min_peers,
            beacons: beacons().into_iter().collect(),
            phase_start: i64::MIN,
            changed: HashSet::new(),
            up_since: None,
            ok: true,
        }
    }

    /// True for a beacon prefix.
    pub fn is_beacon(&self, prefix: &Prefix) -> bool {
        self.beacons.contains(prefix)
    }

    fn half(&self) -> i64 {
        self.cycle / 2
    }

    /// Whether beacons are announced at `now` (else withdrawn).
    fn announced_at(&self, now: i64) -> bool {
        now.rem_euclid(self.cycle) < self.half()
    }

    /// Starts a new phase's count when `now` is in one.
    fn roll(&mut self, now: i64) {
        let start = now - now.rem_euclid(self.half());
        if start != self.phase_start {
            self.phase_start = start;
            self.changed.clear();
        }
    }

    /// A beacon route from `peer` was announced (`announce`) or withdrawn at `now`.
    pub fn saw(&mut self, peer: &PeerKey, announce: bool, now: i64) {
        self.roll(now);
        if announce == self.announced_at(now) {
            self.changed.insert(peer.clone());
        }
    }

    /// The feed came up (or went down) at `now`.
    pub fn feed_up(&mut self, up: bool, now: i64) {
        self.up_since = up.then_some(now);
        if !up {
            self.ok = true;
        }
    }

    /// Judges the current phase at `now` if it can be; true while the
    /// beacons were last seen on schedule.
    pub fn check(&mut self, now: i64) -> bool {
        self.roll(now);
        let judged = self.up_since.is_some_and(|up| up <= self.phase_start) && now - self.phase_start >= self.tolerance;
        if judged {
            self.ok = self.changed.len() >= self.min_peers;
        }
        self.ok
    }

    /// How often [`Canary::check`] should run.
    pub fn check_every(&self) -> std::time::Duration {
        std::time::Duration::from_millis(((self.tolerance * 1000) / 4).clamp(100, 60_000) as u64)
    }

    /// Words for the log when the canary fails.
    pub fn explain(&self) -> String {
        let what = if self.announced_at(self.phase_start) { "announced" } else { "withdrawn" };
        format!(
            "the RIS routing beacons were {what} on schedule by {} peers (at least {} expected): the feed looks frozen",
            self.changed.len(),
            self.min_peers
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(i: u8) -> PeerKey {
        PeerKey { collector: "rrc00".into(), ip: IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, i)) }
    }

    #[test]
    fn the_beacon_list_holds_the_2_hour_beacons_and_no_anchor() {
        let b = beacons();
        assert!(b.contains(&"84.205.64.0/24".parse().unwrap()));
        assert!(b.contains(&"2001:7fb:fe00::/48".parse().unwrap()));
        assert!(b.contains(&"2001:7fb:fe20::/48".parse().unwrap()));
        assert!(b.contains(&"2001:7fb:ee05::/48".parse().unwrap()));
        assert!(!b.contains(&"84.205.83.0/24".parse().unwrap()), "an anchor, announced all the time");
        assert!(!b.contains(&"84.205.66.0/24".parse().unwrap()), "rrc03's 10-minute beacon");
        assert_eq!(b.len(), 9 + 23 + 6);
    }

    #[test]
    fn a_phase_is_judged_after_the_tolerance_and_only_if_the_feed_was_up_when_it_began() {
        // Cycle 80 s: announced [0, 40), withdrawn [40, 80); tolerance 10 s.
        let mut c = Canary::with_cycle(2, 80);
        c.feed_up(true, 5);
        assert!(c.check(45), "the phase began at 40, after the feed came up, but only 5 s ago");
        assert!(!c.check(55), "nobody withdrew a beacon during the phase");
        c.saw(&peer(1), false, 56);
        c.saw(&peer(2), false, 57);
        c.saw(&peer(2), true, 58);
        assert!(c.check(58), "two peers withdrew");
        assert!(c.check(85), "a new phase keeps the last verdict until its tolerance passes");
        c.saw(&peer(1), true, 86);
        assert!(!c.check(95), "one peer announcing is too few");
    }

    #[test]
    fn a_phase_that_began_before_the_feed_came_up_is_not_judged() {
        let mut c = Canary::with_cycle(1, 80);
        c.feed_up(true, 50);
        assert!(c.check(70), "the withdrawals happened before we listened");
        assert!(!c.check(95), "the next phase is judged: no announcement seen");
    }
}
