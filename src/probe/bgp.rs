//! The bgp probe: judges a prefix's visibility as published by the engine.
//!
//! A run reads the latest [`Visibility`] of its prefix; the scheduler also
//! runs it whenever that visibility changes, so a withdrawal is judged the
//! moment it arrives rather than at the next interval.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use toml::Spanned;

use super::kind::{Evidence, Finding, Layer, Probe, ProbeKind, ReadContext, Reason, RunFuture, Toolkit, Trigger};
use crate::bgp::{Thresholds, Visibility, VisibilityBoard};
use crate::document::{ConfigError, Table, field, table};
use crate::prefix::Prefix;

table!(
    /// The keys of `kind = "bgp"`.
    RawBgpProbe {
        prefix: String,
        origin: i64,
        origins: Vec<Spanned<i64>>,
        min_visibility: f64,
        covering: bool,
        more_specifics: bool,
    }
);

/// `kind = "bgp"`.
#[derive(Debug, Clone, PartialEq)]
pub struct BgpCheck {
    /// The watched prefix.
    pub prefix: Prefix,
    /// The legitimate origin ASes (`origin` or `origins`); empty = no check.
    pub origins: Vec<u32>,
    /// Share of peers that must see the prefix.
    pub min_visibility: f64,
    /// A covering (less-specific) route also counts as seeing the prefix.
    pub covering: bool,
    /// A more-specific from an origin not allowed is `bgp_more_specific`.
    pub more_specifics: bool,
}

impl ProbeKind for BgpCheck {
    const NAME: &'static str = "bgp";
    const LAYER: Layer = Layer::Bgp;
    const TIMEOUT: Reason = Reason::BgpUnknown;
    type Raw = RawBgpProbe;

    fn read(t: &Table<'_, RawBgpProbe>, cx: &ReadContext<'_>) -> Result<BgpCheck, ConfigError> {
        let rpki = cx.rpki;
        let prefix = t.required_str(field!(t, prefix))?;
        let parsed: Prefix = prefix.value.parse().map_err(|e| t.error(&prefix.span, format!("\"prefix\": {e}")))?;
        let mut origins: Vec<u32> = t.int(field!(t, origin), 1..(1 << 32))?.map(|n| n as u32).into_iter().collect();
        if let Some(list) = t.int_list(field!(t, origins), 1..(1 << 32))? {
            if !origins.is_empty() {
                return Err(t.error_at_key("origins", "give \"origin\" or \"origins\", not both"));
            }
            if list.is_empty() {
                return Err(t.error_at_key("origins", "\"origins\" must name at least one AS"));
            }
            origins = list.into_iter().map(|n| n as u32).collect();
        }
        let more_specifics = match t.bool(field!(t, more_specifics)) {
            Some(true) if origins.is_empty() && !rpki => {
                return Err(t.error_at_key(
                "more_specifics",
                "\"more_specifics\" needs \"origin\" or \"origins\" (which origins may announce more-specifics), or [bgp] rpki",
            ));
            }
            Some(set) => set,
            None => !origins.is_empty(),
        };
        Ok(BgpCheck {
            prefix: parsed,
            origins,
            min_visibility: t.number(field!(t, min_visibility), 0.0, 1.0)?.unwrap_or(0.5),
            covering: t.bool(field!(t, covering)).unwrap_or(false),
            more_specifics,
        })
    }

    fn target(&self) -> String {
        let origins: Vec<String> = self.origins.iter().map(|asn| format!("AS{asn}")).collect();
        match origins.len() {
            0 => self.prefix.to_string(),
            _ => format!("{} {}", self.prefix, origins.join("|")),
        }
    }

    fn scope(&self) -> String {
        match self.origins.len() {
            0 => self.prefix.to_string(),
            _ => self.origins.iter().map(|asn| format!("AS{asn}")).collect::<Vec<_>>().join("|"),
        }
    }

    fn build(check: &Arc<BgpCheck>, _: Duration, tools: &Toolkit) -> Box<dyn Probe> {
        Box::new(BgpProbe::new(check, tools.bgp.clone()))
    }
}

/// A configured bgp probe.
pub struct BgpProbe {
    check: BgpCheck,
    thresholds: Thresholds,
    visibility: watch::Receiver<Visibility>,
}

impl BgpProbe {
    /// Subscribes to the probe's prefix on `board`.
    pub fn new(check: &BgpCheck, board: VisibilityBoard) -> BgpProbe {
        BgpProbe { check: check.clone(), thresholds: board.thresholds(), visibility: board.subscribe(check.prefix) }
    }
}

fn allowed(check: &BgpCheck, origin: Option<u32>) -> bool {
    check.origins.is_empty() || origin.is_none_or(|asn| check.origins.contains(&asn))
}

/// Judges `v` against the check: the one rule shared by `run` and `replay`
/// (README, "BGP visibility").
///
/// Only an exact route from an allowed origin counts as seeing the prefix
/// (a covering route too with `covering = true`); the denominator is the
/// peers that carry the prefix or a covering one. Offending routes need
/// `hijack_min_peers` peers; precedence: another origin on the prefix, then
/// an RPKI-invalid route to it or a more-specific, then a foreign
/// more-specific, then too little visibility.
pub fn judge(check: &BgpCheck, thresholds: &Thresholds, v: &Visibility) -> Finding {
    let prefix = check.prefix;
    let origins: Vec<String> = check.origins.iter().map(|asn| format!("AS{asn}")).collect();
    let expected = if origins.is_empty() { String::new() } else { format!(" (expected {})", origins.join(" or ")) };
    let foreign_exact = v
        .exact
        .iter()
        .filter(|(origin, _)| !allowed(check, *origin))
        .filter_map(|(origin, peers)| origin.map(|asn| (asn, *peers)))
        .max_by_key(|(_, peers)| *peers);
    let foreign_more_specific =
        v.more_specific_origins.iter().filter(|m| !allowed(check, Some(m.origin))).max_by_key(|m| m.peers).copied();
    let seeing = v.exact.iter().filter(|(origin, _)| allowed(check, *origin)).map(|(_, n)| n).sum::<usize>()
        + if check.covering { v.via_covering.iter().map(|(_, n)| n).sum::<usize>() } else { 0 };
    let ratio = if v.peers_total == 0 { 0.0 } else { seeing as f64 / v.peers_total as f64 };
    let finding = if !v.feed_up {
        Finding::fail(Reason::BgpUnknown, format!("{prefix}: BGP feed down or not yet seeded"))
    } else if v.peers_total < thresholds.min_peers {
        Finding::fail(
            Reason::BgpUnknown,
            format!("{prefix}: only {} peers known (at least {} needed to judge)", v.peers_total, thresholds.min_peers),
        )
    } else if let Some((asn, peers)) = foreign_exact.filter(|(_, peers)| *peers >= thresholds.hijack_min_peers) {
        Finding::fail(
            Reason::BgpOriginMismatch,
            format!("{prefix} originated by AS{asn} at {peers} of {} peers{expected}", v.peers_total),
        )
    } else if let Some((origin, peers)) =
        v.rpki_invalid.first().copied().filter(|(_, peers)| *peers >= thresholds.hijack_min_peers)
    {
        let origin = origin.map_or_else(|| "an AS_SET".to_string(), |asn| format!("AS{asn}"));
        Finding::fail(
            Reason::BgpRpkiInvalid,
            format!(
                "{prefix} or a more-specific originated by {origin}, RPKI-invalid, at {peers} of {} peers",
                v.peers_total
            ),
        )
    } else if let Some(m) =
        foreign_more_specific.filter(|m| check.more_specifics && m.peers >= thresholds.hijack_min_peers)
    {
        Finding::fail(
            Reason::BgpMoreSpecific,
            format!(
                "{}, a more-specific of {prefix}, originated by AS{} at {} of {} peers{expected}",
                m.prefix, m.origin, m.peers, v.peers_total
            ),
        )
    } else {
        let percent = (ratio * 100.0).round();
        let origin_note =
            if origins.is_empty() { String::new() } else { format!(" (origin {})", origins.join(" or ")) };
        let mut text = format!("{prefix} seen by {percent}% of {} peers{origin_note}", v.peers_total);
        for (covering, peers) in &v.via_covering {
            if check.covering {
                text.push_str(&format!(", {peers} only via {covering}"));
            } else {
                text.push_str(&format!(", {peers} more only via {covering} (not counted: covering = false)"));
            }
        }
        if ratio < check.min_visibility { Finding::fail(Reason::BgpInvisible, text) } else { Finding::ok(text) }
    };
    // What this probe judged: its own count of peers seeing the prefix.
    finding.with(Evidence::Visibility(Box::new(Visibility { peers_seeing: seeing, ..v.clone() })))
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
        Box::pin(async move { judge(&self.check, &self.thresholds, &visibility) })
    }

    fn trigger(&self) -> Option<Trigger> {
        let changes = futures_util::stream::unfold(self.watch(), |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        });
        Some(Box::pin(changes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds { min_peers: 10, hijack_min_peers: 3 };

    fn check() -> BgpCheck {
        BgpCheck {
            prefix: "129.134.30.0/23".parse().unwrap(),
            origins: vec![32934],
            min_visibility: 0.5,
            covering: false,
            more_specifics: true,
        }
    }

    fn seen(total: usize, exact: Vec<(Option<u32>, usize)>) -> Visibility {
        let seeing = exact.iter().map(|(_, n)| n).sum();
        Visibility {
            feed_up: true,
            peers_total: total,
            peers_seeing: seeing,
            exact,
            ..Visibility::unknown(check().prefix)
        }
    }

    #[test]
    fn withdrawal_seen_by_most_peers_is_invisible() {
        let f = judge(&check(), &T, &seen(37, vec![(Some(32934), 1)]));
        assert_eq!(f.result, Err(Reason::BgpInvisible));
        assert_eq!(f.detail, "129.134.30.0/23 seen by 3% of 37 peers (origin AS32934)");
    }

    #[test]
    fn a_covering_route_does_not_hide_the_withdrawal_unless_asked() {
        // 4 October 2021: the /23 gone, the /17 still routed everywhere.
        let mut v = seen(37, vec![(Some(32934), 1)]);
        v.via_covering = vec![("129.134.0.0/17".parse().unwrap(), 36)];
        let f = judge(&check(), &T, &v);
        assert_eq!(f.result, Err(Reason::BgpInvisible), "{}", f.detail);
        assert!(f.detail.contains("36 more only via 129.134.0.0/17 (not counted: covering = false)"), "{}", f.detail);
        assert_eq!(f.visibility().unwrap().peers_seeing, 1);
        let covering = BgpCheck { covering: true, ..check() };
        assert_eq!(judge(&covering, &T, &v).result, Ok(()));
    }

    #[test]
    fn another_origin_is_named_with_its_peer_count_once_enough_peers_carry_it() {
        let f = judge(&check(), &T, &seen(37, vec![(Some(32934), 30), (Some(666), 7)]));
        assert_eq!(f.result, Err(Reason::BgpOriginMismatch));
        assert!(f.detail.contains("AS666 at 7 of 37 peers"), "{}", f.detail);
        let one_peer = judge(&check(), &T, &seen(37, vec![(Some(32934), 36), (Some(666), 1)]));
        assert_eq!(one_peer.result, Ok(()), "one peer is not a hijack: {}", one_peer.detail);
    }

    #[test]
    fn any_origin_of_a_set_is_legitimate_and_a_foreign_more_specific_is_reported() {
        let telegram = BgpCheck { origins: vec![62041, 211157], ..check() };
        let mut v = seen(20, vec![(Some(62041), 12), (Some(211157), 8)]);
        assert_eq!(judge(&telegram, &T, &v).result, Ok(()));
        v.more_specific_origins =
            vec![crate::bgp::MoreSpecific { origin: 666, peers: 5, prefix: "129.134.31.0/24".parse().unwrap() }];
        let f = judge(&telegram, &T, &v);
        assert_eq!(f.result, Err(Reason::BgpMoreSpecific), "{}", f.detail);
        assert!(
            f.detail.contains("129.134.31.0/24, a more-specific of 129.134.30.0/23, originated by AS666 at 5 of 20 peers (expected AS62041 or AS211157)"),
            "{}",
            f.detail
        );
        let off = BgpCheck { more_specifics: false, ..telegram };
        assert_eq!(judge(&off, &T, &v).result, Ok(()));
    }

    #[test]
    fn an_rpki_invalid_route_seen_by_enough_peers_is_named_after_an_origin_mismatch() {
        let open = BgpCheck { origins: vec![], more_specifics: false, ..check() };
        let mut v = seen(20, vec![(Some(32934), 20)]);
        v.rpki_invalid = vec![(Some(666), 4)];
        let f = judge(&open, &T, &v);
        assert_eq!(f.result, Err(Reason::BgpRpkiInvalid), "{}", f.detail);
        assert!(f.detail.contains("originated by AS666, RPKI-invalid, at 4 of 20 peers"), "{}", f.detail);
        v.rpki_invalid = vec![(Some(666), 2)];
        assert_eq!(judge(&open, &T, &v).result, Ok(()), "two peers are not enough");
        let mut both = seen(20, vec![(Some(32934), 10), (Some(666), 10)]);
        both.rpki_invalid = vec![(Some(666), 10)];
        assert_eq!(judge(&check(), &T, &both).result, Err(Reason::BgpOriginMismatch), "origin mismatch first");
    }

    #[test]
    fn too_few_peers_or_no_feed_is_unknown_not_down() {
        assert_eq!(judge(&check(), &T, &seen(3, vec![])).result, Err(Reason::BgpUnknown));
        assert_eq!(judge(&check(), &T, &Visibility::unknown(check().prefix)).result, Err(Reason::BgpUnknown));
        assert_eq!(judge(&check(), &T, &seen(37, vec![(Some(32934), 30)])).result, Ok(()));
    }
}
