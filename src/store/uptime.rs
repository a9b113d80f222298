//! Uptime arithmetic over status history, exact to the second.
//!
//! A service's history is a list of status changes; between two changes the
//! status holds. Time before the first change, or after the monitor was last
//! known alive, is `unknown`. Maintenance windows are cut out of the spans
//! ([`without`]) and counted apart. Observed time excludes `unknown` and
//! maintenance; uptime = (observed − down) / observed; degraded time is
//! reported apart (and counts as up).

use crate::verdict::ServiceStatus;

/// A stretch of time with one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Start (Unix seconds, inclusive).
    pub from: i64,
    /// End (exclusive).
    pub to: i64,
    /// The status.
    pub status: ServiceStatus,
}

/// Cuts `[from, to)` into spans from status changes `rows` (sorted by time;
/// the first may lie before `from`). Time from `known_until` on is unknown.
pub fn spans(rows: &[(i64, ServiceStatus)], from: i64, to: i64, known_until: i64) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    let mut push = |from: i64, to: i64, status: ServiceStatus| {
        if to <= from {
            return;
        }
        match out.last_mut() {
            Some(last) if last.status == status && last.to == from => last.to = to,
            _ => out.push(Span { from, to, status }),
        }
    };
    let mut status = ServiceStatus::Unknown;
    let mut at = from;
    for &(change, next) in rows {
        if change > at {
            let end = change.min(to);
            push(at, end.min(known_until).max(at), status);
            push(end.min(known_until).max(at), end, ServiceStatus::Unknown);
            at = end;
        }
        status = next;
        if at >= to {
            break;
        }
    }
    if at < to {
        let cut = known_until.clamp(at, to);
        push(at, cut, status);
        push(cut, to, ServiceStatus::Unknown);
    }
    out
}

/// Seconds per status over some spans.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Uptime {
    /// Seconds not unknown.
    pub observed: i64,
    /// Seconds down.
    pub down: i64,
    /// Seconds degraded.
    pub degraded: i64,
    /// Seconds unknown.
    pub unknown: i64,
    /// Seconds in maintenance (set by [`summarize_window`]).
    pub maintenance: i64,
    /// (observed − down) / observed; None when nothing was observed.
    pub ratio: Option<f64>,
}

/// The part of `spans` (sorted, not overlapping) inside `[from, to)`.
pub fn clip(spans: &[Span], from: i64, to: i64) -> Vec<Span> {
    spans
        .iter()
        .skip_while(|s| s.to <= from)
        .take_while(|s| s.from < to)
        .map(|s| Span { from: s.from.max(from), to: s.to.min(to), status: s.status })
        .collect()
}

/// Sums spans.
pub fn summarize(spans: &[Span]) -> Uptime {
    let mut u = Uptime::default();
    for s in spans {
        let secs = s.to - s.from;
        match s.status {
            ServiceStatus::Unknown => u.unknown += secs,
            ServiceStatus::Down => u.down += secs,
            ServiceStatus::Degraded => u.degraded += secs,
            ServiceStatus::Up => {}
        }
        if s.status != ServiceStatus::Unknown {
            u.observed += secs;
        }
    }
    u.ratio = (u.observed > 0).then(|| (u.observed - u.down) as f64 / u.observed as f64);
    u
}

/// Sums the spans of the window `[from, to)`: what they leave uncovered
/// was cut out as maintenance.
pub fn summarize_window(spans: &[Span], from: i64, to: i64) -> Uptime {
    let mut u = summarize(spans);
    let covered: i64 = spans.iter().map(|s| s.to - s.from).sum();
    u.maintenance = (to - from - covered).max(0);
    u
}

/// `spans` with the time inside `windows` (each `(start, end)`) removed.
pub fn without(spans: &[Span], windows: &[(i64, i64)]) -> Vec<Span> {
    if windows.is_empty() {
        return spans.to_vec();
    }
    let mut out = Vec::with_capacity(spans.len() + windows.len());
    for s in spans {
        let mut at = s.from;
        let mut cuts: Vec<(i64, i64)> = windows.iter().filter(|(a, b)| *a < s.to && *b > s.from).copied().collect();
        cuts.sort_unstable();
        for (a, b) in cuts {
            if a > at {
                out.push(Span { from: at, to: a.min(s.to), status: s.status });
            }
            at = at.max(b);
        }
        if at < s.to {
            out.push(Span { from: at, to: s.to, status: s.status });
        }
    }
    out
}

/// One bucket of a history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Start (Unix seconds).
    pub start: i64,
    /// Worst status seen in the bucket (down > degraded > up), unknown if
    /// nothing was observed.
    pub status: ServiceStatus,
    /// Uptime within the bucket.
    pub ratio: Option<f64>,
}

fn severity(s: ServiceStatus) -> u8 {
    match s {
        ServiceStatus::Unknown => 0,
        ServiceStatus::Up => 1,
        ServiceStatus::Degraded => 2,
        ServiceStatus::Down => 3,
    }
}

/// Cuts spans covering `[from, to)` into buckets of `step` seconds.
pub fn buckets(spans: &[Span], from: i64, to: i64, step: i64) -> Vec<Bucket> {
    let step = step.max(1);
    let mut out = Vec::new();
    let mut start = from;
    let mut i = 0;
    while start < to {
        let end = (start + step).min(to);
        while i < spans.len() && spans[i].to <= start {
            i += 1;
        }
        let inside = clip(&spans[i..], start, end);
        let status = inside.iter().map(|s| s.status).max_by_key(|s| severity(*s)).unwrap_or(ServiceStatus::Unknown);
        out.push(Bucket { start, status, ratio: summarize(&inside).ratio });
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ServiceStatus::*;

    const H: i64 = 3600;

    #[test]
    fn one_hour_down_in_a_day_is_23_over_24() {
        let rows = [(0, Up), (10 * H, Down), (11 * H, Up)];
        let u = summarize(&spans(&rows, 0, 24 * H, i64::MAX));
        assert_eq!((u.observed, u.down, u.unknown), (24 * H, H, 0));
        assert_eq!(u.ratio, Some(23.0 / 24.0));
    }

    #[test]
    fn unknown_time_is_excluded_from_observed() {
        let rows = [(0, Up), (2 * H, Unknown), (4 * H, Down), (5 * H, Up)];
        let u = summarize(&spans(&rows, 0, 10 * H, i64::MAX));
        assert_eq!((u.observed, u.down, u.unknown), (8 * H, H, 2 * H));
        assert_eq!(u.ratio, Some(7.0 / 8.0));
    }

    #[test]
    fn before_the_first_change_and_after_the_last_heartbeat_is_unknown() {
        let rows = [(5 * H, Up), (6 * H, Down)];
        let u = summarize(&spans(&rows, 0, 10 * H, 8 * H));
        assert_eq!((u.observed, u.down, u.unknown), (3 * H, 2 * H, 7 * H));
    }

    #[test]
    fn a_row_before_the_window_sets_the_status_at_its_start() {
        let rows = [(-100 * H, Down), (2 * H, Up)];
        let u = summarize(&spans(&rows, 0, 4 * H, i64::MAX));
        assert_eq!((u.down, u.observed), (2 * H, 4 * H));
    }

    #[test]
    fn buckets_take_the_worst_status_and_their_own_ratio() {
        let rows = [(0, Up), (90, Degraded), (100, Down), (130, Up)];
        let b = buckets(&spans(&rows, 0, 240, i64::MAX), 0, 240, 60);
        let statuses: Vec<ServiceStatus> = b.iter().map(|b| b.status).collect();
        assert_eq!(statuses, vec![Up, Down, Down, Up]);
        assert_eq!(b[1].ratio, Some(40.0 / 60.0));
        assert_eq!(b[2].ratio, Some(50.0 / 60.0));
    }

    #[test]
    fn maintenance_is_neither_observed_nor_down() {
        let rows = [(0, Up), (2 * H, Down), (5 * H, Up)];
        // Down from 2 to 5; maintenance 1..3 and 2..4 (overlapping).
        let spans = without(&spans(&rows, 0, 10 * H, i64::MAX), &[(H, 3 * H), (2 * H, 4 * H)]);
        let u = summarize_window(&spans, 0, 10 * H);
        assert_eq!((u.maintenance, u.observed, u.down, u.unknown), (3 * H, 7 * H, H, 0));
        assert_eq!(u.ratio, Some(6.0 / 7.0));
    }

    #[test]
    fn a_window_clipped_from_a_longer_read_equals_reading_it_alone() {
        let rows = [(-50 * H, Down), (-30 * H, Up), (-5 * H, Unknown), (-4 * H, Degraded), (-H, Down)];
        let long = spans(&rows, -48 * H, 0, -H / 2);
        for from in [-48 * H, -40 * H, -24 * H, -4 * H, -2 * H] {
            assert_eq!(clip(&long, from, 0), spans(&rows, from, 0, -H / 2), "window from {from}");
        }
    }
}
