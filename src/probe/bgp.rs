//! The bgp probe: judges a prefix's visibility as published by the engine.
//!
//! A run reads the latest [`Visibility`] of its prefix; the scheduler also
//! runs it whenever that visibility changes, so a withdrawal is judged the
//! moment it arrives rather than at the next interval.

use tokio::sync::watch;

use super::{Finding, Probe, Reason, RunFuture};
use crate::bgp::{Visibility, VisibilityBoard};
use crate::config::BgpCheck;

/// A configured bgp probe.
pub struct BgpProbe {
    check: BgpCheck,
    min_peers: usize,
    visibility: watch::Receiver<Visibility>,
}

impl BgpProbe {
    /// Subscribes to the probe's prefix on `board`.
    pub fn new(check: &BgpCheck, board: VisibilityBoard) -> BgpProbe {
        BgpProbe { check: check.clone(), min_peers: board.min_peers(), visibility: board.subscribe(check.prefix) }
    }
}

/// Judges `v` against the check: the one rule shared by `run` and `replay`.
pub fn judge(check: &BgpCheck, min_peers: usize, v: &Visibility) -> Finding {
    let prefix = check.prefix;
    let percent = (v.ratio() * 100.0).round();
    let origin_note = check.origin.map(|asn| format!(" (origin AS{asn})")).unwrap_or_default();
    let mut finding = if !v.feed_up {
        Finding::fail(Reason::BgpUnknown, format!("{prefix}: BGP feed down or not yet seeded"))
    } else if v.peers_total < min_peers {
        Finding::fail(
            Reason::BgpUnknown,
            format!("{prefix}: only {} peers known (at least {min_peers} needed to judge)", v.peers_total),
        )
    } else if let Some((asn, peers)) =
        check.origin.and_then(|want| v.origins.iter().find(|(asn, _)| *asn != want).copied())
    {
        Finding::fail(
            Reason::BgpOriginMismatch,
            format!(
                "{prefix} originated by AS{asn} at {peers} of {} peers{}",
                v.peers_total,
                check.origin.map(|o| format!(" (expected AS{o})")).unwrap_or_default()
            ),
        )
    } else {
        let mut text = format!("{prefix} seen by {percent}% of {} peers{origin_note}", v.peers_total);
        for (covering, peers) in &v.via_covering {
            text.push_str(&format!(", {peers} only via {covering}"));
        }
        if v.ratio() < check.min_visibility { Finding::fail(Reason::BgpInvisible, text) } else { Finding::ok(text) }
    };
    finding.visibility = Some(Box::new(v.clone()));
    finding
}

impl BgpProbe {
    /// A receiver that changes whenever the prefix's visibility does.
    pub fn watch(&self) -> watch::Receiver<Visibility> {
        self.visibility.clone()
    }
}

impl Probe for BgpProbe {
    fn run(&self) -> RunFuture<'_> {
        let visibility = self.visibility.borrow().clone();
        Box::pin(async move { judge(&self.check, self.min_peers, &visibility) })
    }

    fn trigger(&self) -> Option<watch::Receiver<Visibility>> {
        Some(self.watch())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check() -> BgpCheck {
        BgpCheck { prefix: "129.134.30.0/23".parse().unwrap(), origin: Some(32934), min_visibility: 0.5 }
    }

    fn seen(seeing: usize, total: usize, origins: Vec<(u32, usize)>) -> Visibility {
        Visibility {
            feed_up: true,
            peers_total: total,
            peers_seeing: seeing,
            origins,
            ..Visibility::unknown(check().prefix)
        }
    }

    #[test]
    fn withdrawal_seen_by_most_peers_is_invisible() {
        let f = judge(&check(), 10, &seen(1, 37, vec![(32934, 1)]));
        assert_eq!(f.result, Err(Reason::BgpInvisible));
        assert_eq!(f.detail, "129.134.30.0/23 seen by 3% of 37 peers (origin AS32934)");
    }

    #[test]
    fn another_origin_is_named_with_its_peer_count() {
        let f = judge(&check(), 10, &seen(37, 37, vec![(32934, 30), (666, 7)]));
        assert_eq!(f.result, Err(Reason::BgpOriginMismatch));
        assert!(f.detail.contains("AS666 at 7 of 37 peers"), "{}", f.detail);
    }

    #[test]
    fn too_few_peers_or_no_feed_is_unknown_not_down() {
        assert_eq!(judge(&check(), 10, &seen(0, 3, vec![])).result, Err(Reason::BgpUnknown));
        assert_eq!(judge(&check(), 10, &Visibility::unknown(check().prefix)).result, Err(Reason::BgpUnknown));
        assert_eq!(judge(&check(), 10, &seen(30, 37, vec![(32934, 30)])).result, Ok(()));
    }
}
