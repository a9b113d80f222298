//! The monitor's own health, as `/healthz` reports it (README, "Health"):
//! 200 `ok` while the scheduler runs and nothing is short; 503 with one
//! line naming the fault otherwise. Monitoring goes on either way — this
//! tells the operator (and a load balancer) that the monitor itself needs
//! attention, never that a platform is down.

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
}

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
}
