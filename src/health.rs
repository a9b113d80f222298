//! The monitor's own health, as `/healthz` reports it (README, "Health"):
//! 200 `ok` while the scheduler runs and nothing is short; 503 with one
//! line naming the fault otherwise. Monitoring goes on either way — this
//! tells the operator (and a load balancer) that the monitor itself needs
//! attention, never that a platform is down.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// How long after the last run that could not get a socket the monitor
/// still reports the shortage.
pub const SHORTAGE_MEMORY_SECS: i64 = 60;

/// Shared between the daemon (which records) and the API (which reports).
#[derive(Debug, Default)]
pub struct Health {
    scheduler_running: AtomicBool,
    /// Unix time of the last `probe_resource` run (0 = never).
    last_shortage: AtomicI64,
    /// What the last shortage was.
    shortage: Mutex<String>,
    /// The history store's fault, while there is one.
    store: Mutex<Option<String>>,
    /// Per alert channel with alerts waiting: since when it has delivered
    /// nothing (Unix seconds).
    waiting: Mutex<BTreeMap<String, i64>>,
}

/// A channel that has delivered nothing for this long while alerts wait is
/// stalled: longer than its backoff cap plus one attempt's deadline.
pub const STALLED_AFTER_SECS: i64 = 60;

impl Health {
    /// The scheduler started or stopped.
    pub fn set_running(&self, running: bool) {
        self.scheduler_running.store(running, Ordering::Relaxed);
    }

    /// A probe run could not get a socket or memory at `now`; `what` says
    /// which. Returns true when this starts a new shortage (worth a log line).
    pub fn resource_shortage(&self, now: i64, what: &str) -> bool {
        let before = self.last_shortage.swap(now, Ordering::Relaxed);
        *self.shortage.lock().unwrap_or_else(|e| e.into_inner()) = what.to_string();
        before == 0 || now - before > SHORTAGE_MEMORY_SECS
    }

    /// The history store's fault (`store: disk full`), or none.
    pub fn set_store_fault(&self, fault: Option<String>) {
        *self.store.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }

    /// Alerts wait on `channel` at `now`: it is stalled from then on unless
    /// it delivers (an earlier start is kept).
    pub fn alerts_waiting(&self, channel: &str, now: i64) {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).entry(channel.to_string()).or_insert(now);
    }

    /// `channel` delivered an alert at `now` (more may wait).
    pub fn alert_delivered(&self, channel: &str, now: i64) {
        if let Some(since) = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).get_mut(channel) {
            *since = now;
        }
    }

    /// Nothing waits on `channel` any more (its queue is empty, or the
    /// channel was removed and holds nothing).
    pub fn queue_empty(&self, channel: &str) {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(channel);
    }

    /// The fault to report at `now`, if any.
    pub fn fault(&self, now: i64) -> Option<String> {
        if !self.scheduler_running.load(Ordering::Relaxed) {
            return Some("scheduler: not running".into());
        }
        if let Some(store) = self.store.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Some(store);
        }
        let last = self.last_shortage.load(Ordering::Relaxed);
        if last != 0 && now - last <= SHORTAGE_MEMORY_SECS {
            let what = self.shortage.lock().unwrap_or_else(|e| e.into_inner()).clone();
            return Some(format!("probes: the monitor is out of sockets or memory ({what})"));
        }
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let stalled: Vec<String> = waiting
            .iter()
            .filter(|(_, since)| now - **since > STALLED_AFTER_SECS)
            .map(|(channel, since)| {
                format!(
                    "{channel} for {}",
                    crate::time::human(std::time::Duration::from_secs((now - since).max(0) as u64))
                )
            })
            .collect();
        if !stalled.is_empty() {
            return Some(format!("alerts: delivered nothing while alerts wait: {}", stalled.join(", ")));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shortage_is_reported_for_a_minute_then_forgotten() {
        let h = Health::default();
        assert_eq!(h.fault(100).as_deref(), Some("scheduler: not running"));
        h.set_running(true);
        assert_eq!(h.fault(100), None);
        assert!(h.resource_shortage(100, "Too many open files"));
        assert!(!h.resource_shortage(110, "Too many open files"));
        assert!(h.fault(150).is_some_and(|f| f.contains("out of sockets")));
        assert_eq!(h.fault(171), None);
    }

    #[test]
    fn a_channel_with_waiting_alerts_that_delivers_nothing_for_a_minute_is_named() {
        let h = Health::default();
        h.set_running(true);
        h.alerts_waiting("email", 1000);
        h.alerts_waiting("webhook-1", 1000);
        h.alerts_waiting("email", 1050);
        assert_eq!(h.fault(1060), None, "a minute is the backoff cap and one attempt");
        h.alert_delivered("webhook-1", 1050);
        assert_eq!(h.fault(1061).as_deref(), Some("alerts: delivered nothing while alerts wait: email for 1m 1s"));
        h.queue_empty("email");
        assert_eq!(h.fault(1100), None, "webhook-1 delivered at 1050");
        assert!(h.fault(1111).is_some_and(|f| f.contains("webhook-1")));
    }
}
