//! Time as users read it and as the store keeps it.
//!
//! The API, e-mail and CLI show RFC 3339 UTC to the second; the store keeps
//! Unix seconds; humans get durations like `5h 38m`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The last second humantime (and RFC 3339 with a four-digit year) can show.
const LAST_SHOWN: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z

/// `2021-10-04T15:39:00Z`. Formatting never panics: times before 1970 show
/// as the epoch and times after the year 9999 as its last second (nothing
/// chatpulse records is either; a damaged store must not stop a page).
pub fn rfc3339(t: SystemTime) -> String {
    let clamped = from_unix(unix(t).clamp(0, LAST_SHOWN));
    humantime::format_rfc3339_seconds(clamped).to_string()
}

/// `2021-10-04 15:39:00`: [`rfc3339`] for reading on a page labelled UTC.
pub fn utc_text(t: SystemTime) -> String {
    let mut text = rfc3339(t);
    text.pop(); // the `Z`
    text.replacen('T', " ", 1)
}

/// Seconds since the Unix epoch (negative before it; saturating).
pub fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// The time `secs` seconds after the Unix epoch, saturating at what the
/// platform's clock can hold instead of panicking.
pub fn from_unix(secs: i64) -> SystemTime {
    let d = Duration::from_secs(secs.unsigned_abs());
    let t = if secs >= 0 { UNIX_EPOCH.checked_add(d) } else { UNIX_EPOCH.checked_sub(d) };
    t.unwrap_or_else(|| if secs >= 0 { UNIX_EPOCH + Duration::from_secs(LAST_SHOWN as u64) } else { UNIX_EPOCH })
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
    fn any_stored_value_formats_without_panicking() {
        assert_eq!(rfc3339(from_unix(-86_400 * 365 * 60)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(from_unix(i64::MIN)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(from_unix(i64::MAX)), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(from_unix(LAST_SHOWN + 1)), "9999-12-31T23:59:59Z");
        assert_eq!(utc_text(from_unix(i64::MAX)), "9999-12-31 23:59:59");
        for secs in [i64::MIN, -1, 0, i64::MAX] {
            let _ = utc_parts(secs);
            let _ = human(Duration::from_secs(secs.unsigned_abs()));
        }
    }

    #[test]
    fn unix_round_trips_and_formats_utc() {
        let t = from_unix(1_633_361_940);
        assert_eq!(unix(t), 1_633_361_940);
        assert_eq!(rfc3339(t), "2021-10-04T15:39:00Z");
    }
}
