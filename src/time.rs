//! Time as users read it and as the store keeps it.
//!
//! The API, e-mail and CLI show RFC 3339 UTC to the second; the store keeps
//! Unix seconds; humans get durations like `5h 38m`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2021-10-04T15:39:00Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Seconds since the Unix epoch (negative before it).
pub fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// The time `secs` seconds after the Unix epoch.
pub fn from_unix(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// `5h 38m`, `2d 3h`, `45s`: the two largest units, for subjects and tables.
pub fn human(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, mins, secs) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    match (days, hours, mins) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m {secs}s"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// Parses a window like `30d` or `24h` (humantime), rejecting zero.
pub fn parse_window(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(format!("\"{text}\" must be longer than zero")),
        Err(e) => Err(format!("\"{text}\" is not a duration like 30d, 24h or 90m ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_spec_examples() {
        assert_eq!(human(Duration::from_secs(5 * 3600 + 38 * 60 + 7)), "5h 38m");
        assert_eq!(human(Duration::from_secs(2 * 3600)), "2h 0m");
        assert_eq!(human(Duration::from_secs(45)), "45s");
        assert_eq!(human(Duration::from_secs(86_400 * 3 + 3600)), "3d 1h");
    }

    #[test]
    fn unix_round_trips_and_formats_utc() {
        let t = from_unix(1_633_361_940);
        assert_eq!(unix(t), 1_633_361_940);
        assert_eq!(rfc3339(t), "2021-10-04T15:39:00Z");
    }
}
