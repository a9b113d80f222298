//! Maintenance windows (`[[maintenance]]`, README "Maintenance windows"):
//! when a service is in one, and the parsing of a window's schedule.
//!
//! A window is one-off (`start`, `end`, RFC 3339) or weekly (`weekly =
//! "sun 02:00-03:00"`, UTC, may cross midnight). While a service is in a
//! window the incident tracker sends nothing about it; when the window ends
//! a service still failing alerts then. The tracker records each window as
//! a span in the store when it begins, so uptime excludes it and a later
//! reload does not rewrite history; the API reads [`active`] for the
//! `"maintenance"` flag.

/// Seconds in a week.
const WEEK: i64 = 7 * 86_400;
/// The Unix epoch was a Thursday: Monday 00:00 UTC is 3 days earlier.
const MONDAY_OFFSET: i64 = 3 * 86_400;
/// Day names, Monday first.
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// When a window is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// From `start` to `end` (Unix seconds), once.
    Once {
        /// Start, inclusive.
        start: i64,
        /// End, exclusive.
        end: i64,
    },
    /// Every week, `length` seconds from `start` seconds after Monday 00:00 UTC.
    Weekly {
        /// Seconds after Monday 00:00 UTC.
        start: i64,
        /// Length in seconds (less than a week).
        length: i64,
    },
}

impl Schedule {
    /// The occurrence that contains `t`, as `(start, end)`.
    pub fn span_at(&self, t: i64) -> Option<(i64, i64)> {
        match *self {
            Schedule::Once { start, end } => (start <= t && t < end).then_some((start, end)),
            Schedule::Weekly { start, length } => {
                let into = (t + MONDAY_OFFSET - start).rem_euclid(WEEK);
                (into < length).then_some((t - into, t - into + length))
            }
        }
    }

    /// Parses `weekly = "sun 02:00-03:00"` (day names may be written out;
    /// `24:00` ends at midnight; an end before the start is the next day).
    pub fn weekly(text: &str) -> Result<Schedule, WeeklyError> {
        let bad = || WeeklyError::Syntax(text.to_string());
        let (day, times) = text.trim().split_once(' ').ok_or_else(bad)?;
        let day = day.to_ascii_lowercase();
        let day = DAYS.iter().position(|d| day.len() >= 3 && d.starts_with(&day[..3])).ok_or_else(bad)? as i64;
        let (from, to) = times.trim().split_once('-').ok_or_else(bad)?;
        let clock = |s: &str| -> Option<i64> {
            let (h, m) = s.trim().split_once(':')?;
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            ((0..=24).contains(&h) && (0..60).contains(&m) && h * 60 + m <= 24 * 60).then_some(h * 3600 + m * 60)
        };
        let (from, to) = (clock(from).ok_or_else(bad)?, clock(to).ok_or_else(bad)?);
        if from == to || from == 86_400 {
            return Err(WeeklyError::Empty(text.to_string()));
        }
        let length = if to > from { to - from } else { to + 86_400 - from };
        Ok(Schedule::Weekly { start: day * 86_400 + from, length })
    }
}

/// Why a `weekly` value is refused.
#[derive(Debug, thiserror::Error)]
pub enum WeeklyError {
    /// Not "day HH:MM-HH:MM".
    #[error("\"{0}\" is not a weekly window like \"sun 02:00-03:00\" (UTC)")]
    Syntax(String),
    /// Starts and ends at the same time, or starts at 24:00.
    #[error("\"{0}\": the window must have a length and start before 24:00")]
    Empty(String),
}

/// One `[[maintenance]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The services it covers; empty = every service.
    pub services: Vec<String>,
    /// When.
    pub schedule: Schedule,
}

impl Window {
    /// Whether it covers `service`.
    pub fn covers(&self, service: &str) -> bool {
        self.services.is_empty() || self.services.iter().any(|s| s == service)
    }
}

/// The maintenance `service` is in at `t`, as one span `(start, end)`
/// (overlapping windows joined), if any.
pub fn active(windows: &[Window], service: &str, t: i64) -> Option<(i64, i64)> {
    windows
        .iter()
        .filter(|w| w.covers(service))
        .filter_map(|w| w.schedule.span_at(t))
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-06 is a Sunday.
    fn at(text: &str) -> i64 {
        crate::time::unix(humantime::parse_rfc3339(text).unwrap())
    }

    #[test]
    fn a_weekly_window_is_found_every_week_and_only_then() {
        let w = Schedule::weekly("sun 02:00-03:00").unwrap();
        let start = at("2026-12-06T02:00:00Z");
        assert_eq!(w.span_at(at("2026-12-06T02:30:00Z")), Some((start, start + 3600)));
        assert_eq!(w.span_at(at("2026-12-13T02:00:00Z")), Some((start + WEEK, start + WEEK + 3600)));
        assert_eq!(w.span_at(at("2026-12-06T03:00:00Z")), None, "the end is exclusive");
        assert_eq!(w.span_at(at("2026-12-06T01:59:59Z")), None);
        assert_eq!(w.span_at(at("2026-12-07T02:30:00Z")), None, "Monday");
    }

    #[test]
    fn a_weekly_window_may_cross_midnight_and_the_week() {
        let w = Schedule::weekly("Sunday 23:30-00:30").unwrap();
        let start = at("2026-12-06T23:30:00Z");
        assert_eq!(w.span_at(at("2026-12-07T00:10:00Z")), Some((start, start + 3600)), "Monday 00:10");
        assert!(Schedule::weekly("sat 22:00-24:00").unwrap().span_at(at("2026-12-05T23:59:00Z")).is_some());
    }

    #[test]
    fn bad_weekly_windows_are_refused_with_the_text() {
        for bad in ["sun", "funday 02:00-03:00", "sun 02:00", "sun 25:00-26:00", "sun 02:00-02:00", "sun 2-3"] {
            let err = Schedule::weekly(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn a_one_off_window_is_half_open() {
        let w = Schedule::Once { start: 100, end: 200 };
        assert_eq!(w.span_at(100), Some((100, 200)));
        assert_eq!(w.span_at(200), None);
    }
}
