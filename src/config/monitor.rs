//! `[monitor]`: the vantage point's name and the timing every probe
//! inherits unless it sets its own.

use std::time::Duration;

use crate::document::{ConfigError, Table, field, table};

table!(
    /// `[monitor]`.
    RawMonitor { vantage: String, interval: String, timeout: String, fail_after: i64, recover_after: i64 }
);

/// `[monitor]`: defaults for every probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Monitor {
    /// Name of this vantage point.
    pub vantage: String,
    /// Default probe interval.
    pub interval: Duration,
    /// Default probe timeout.
    pub timeout: Duration,
    /// Consecutive failed runs before a probe is DOWN.
    pub fail_after: u32,
    /// Consecutive good runs before a DOWN probe is UP again.
    pub recover_after: u32,
}

pub(super) fn read_monitor(t: Option<Table<'_, RawMonitor>>) -> Result<Monitor, ConfigError> {
    let mut monitor = Monitor {
        vantage: "local".into(),
        interval: Duration::from_secs(30),
        timeout: Duration::from_secs(5),
        fail_after: 3,
        recover_after: 2,
    };
    let Some(t) = t else { return Ok(monitor) };
    if let Some(v) = t.str(field!(t, vantage)) {
        monitor.vantage = v.value.to_string();
    }
    monitor.interval = t.duration(field!(t, interval), false)?.unwrap_or(monitor.interval);
    // Unset, the timeout fits the interval (a 2 s interval gets a 2 s timeout).
    monitor.timeout = t.duration(field!(t, timeout), false)?.unwrap_or(monitor.timeout.min(monitor.interval));
    monitor.fail_after = t.int(field!(t, fail_after), 1..1001)?.map_or(monitor.fail_after, |n| n as u32);
    monitor.recover_after = t.int(field!(t, recover_after), 1..1001)?.map_or(monitor.recover_after, |n| n as u32);
    if monitor.timeout > monitor.interval {
        return Err(t.error_at_key("timeout", "\"timeout\" must not be longer than \"interval\""));
    }
    Ok(monitor)
}
