//! Time as users read it and as the store keeps it.
//!
//! The API, e-mail and CLI show RFC 3339 UTC to the second; the store keeps
//! Unix seconds; humans get durations like `5h 38m`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2021-10-04T15:39:00Z` (times before 1970 show as the epoch: nothing
/// chatpulse records is that old, and formatting must never panic).
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t.max(UNIX_EPOCH)).to_string()
}

/// `2021-10-04 15:39:00`: [`rfc3339`] for reading on a page labelled UTC.
pub fn utc_text(t: SystemTime) -> String {
    let mut text = rfc3339(t);
    text.pop(); // the `Z`
    text.replacen('T', " ", 1)
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

/// (year, month, day, hour, minute) in UTC of a Unix time.
pub fn utc_parts(secs: i64) -> (i64, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, (rem / 3600) as u32, (rem / 60 % 60) as u32)
}

/// Parses a window like `30d` or `24h` (humantime), rejecting zero.
pub fn parse_window(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(format!("\"{text}\" must be longer than zero")),
        Err(e) => Err(format!("\"{text}\" is not a duration like 30d, 24h or 90m ({e})")),
    }
}

/// The start of a window of `secs` ending at `now`; refused when it would
/// begin before 1970 (nothing was recorded then).
pub fn window_start(now: i64, secs: i64) -> Result<i64, String> {
    if secs > now {
        return Err(format!(
            "a window of {} reaches back before 1970",
            humantime::format_duration(Duration::from_secs(secs.max(0) as u64))
        ));
    }
    Ok(now - secs)
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
    fn civil_parts_agree_with_rfc3339() {
        for secs in [0, 951_782_400, 1_633_361_940, 1_798_761_599, 4_102_444_800] {
            let (y, mo, d, h, mi) = utc_parts(secs);
            assert!(rfc3339(from_unix(secs)).starts_with(&format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}")));
        }
    }

    #[test]
    fn times_before_the_epoch_format_without_panicking() {
        assert_eq!(rfc3339(from_unix(-86_400 * 365 * 60)), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn unix_round_trips_and_formats_utc() {
        let t = from_unix(1_633_361_940);
        assert_eq!(unix(t), 1_633_361_940);
        assert_eq!(rfc3339(t), "2021-10-04T15:39:00Z");
    }
}
