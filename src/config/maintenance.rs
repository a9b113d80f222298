//! `[[maintenance]]`: the windows in which a service's failures alert no one.

use std::collections::HashSet;

use crate::document::{ConfigError, Strings, Table, ValueError, field, table};

table!(
    /// `[[maintenance]]`.
    RawMaintenance { services: Strings, start: String, end: String, weekly: String }
);

/// One `[[maintenance]]`: `services` (known ids; none = all) and either
/// `start` + `end` (RFC 3339) or `weekly`.
pub(super) fn read_maintenance(
    t: &Table<'_, RawMaintenance>,
    ids: &HashSet<&str>,
) -> Result<crate::maintenance::Window, ConfigError> {
    use crate::maintenance::{Schedule, Window};
    let mut services = Vec::new();
    for s in t.str_list(field!(t, services)).unwrap_or_default() {
        if !ids.contains(s.value) {
            return Err(t.error(&s.span, format!("\"services\": \"{}\" is not a configured service", s.value)));
        }
        services.push(s.value.to_string());
    }
    let time = |s: &str| {
        humantime::parse_rfc3339(s)
            .map(crate::time::unix)
            .map_err(|e| ValueError::not(s, "an RFC 3339 UTC time like \"2026-12-24T02:00:00Z\"").because(e))
    };
    let start = t.parsed(field!(t, start), time)?;
    let end = t.parsed(field!(t, end), time)?;
    let weekly = t.parsed(field!(t, weekly), Schedule::weekly)?;
    let schedule = match (start, end, weekly) {
        (Some(start), Some(end), None) if end > start => Schedule::Once { start, end },
        (Some(_), Some(_), None) => return Err(t.error_at_key("end", "\"end\" must be after \"start\"")),
        (None, None, Some(weekly)) => weekly,
        (_, _, Some(_)) => {
            return Err(t.error_at_key("weekly", "give either \"weekly\" or \"start\" and \"end\", not both"));
        }
        _ => return Err(t.error_here("needs \"start\" and \"end\", or \"weekly\"")),
    };
    Ok(Window { services, schedule })
}
