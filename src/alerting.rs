//! Which alerts a service's status changes call for: one pure state
//! machine (like [`crate::verdict::Verdict`]), driven by `run` (the incident
//! tracker, which adds grouping, the store and delivery) and by `replay`
//! (backtesting), so both decide exactly alike (README, "E-mail alerts").
//!
//! Per service it remembers the last known status (`unknown` changes
//! nothing), the level already told (down or degraded), and its recent
//! changes for flap detection. A DOWN is told once per incident, degraded
//! only if nothing was told yet and `notify_on` asks for it, a recovery when
//! something was told; `flap_changes` changes within `flap_window` tell
//! FLAPPING once and hold everything back until the service has held one
//! status for the window, when one alert says which.

use std::collections::{HashMap, VecDeque};

use crate::config::{Config, NotifyOn};
use crate::notice::AlertEvent;
use crate::verdict::ServiceStatus;

/// What a decision tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The service is down.
    Down,
    /// The service is degraded.
    Degraded,
    /// The service recovered.
    Recovered,
    /// The service changed status `changes` times within the window; this
    /// is its `episode`th flapping episode.
    Flapping {
        /// Changes in the window.
        changes: usize,
        /// 1 for the first episode.
        episode: u64,
    },
}

impl Decision {
    /// The alert event it calls for.
    pub fn event(self) -> AlertEvent {
        match self {
            Decision::Down => AlertEvent::Down,
            Decision::Degraded => AlertEvent::Degraded,
            Decision::Recovered => AlertEvent::Recovered,
            Decision::Flapping { .. } => AlertEvent::Flapping,
        }
    }
}

/// What the operator asked to be told (`[alerts]`, `[alerts.email]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Tell when a service goes down.
    pub notify_down: bool,
    /// Tell when a service becomes degraded.
    pub notify_degraded: bool,
    /// Tell when it recovers.
    pub send_recovery: bool,
    /// Changes within the window that make a service flapping.
    pub flap_changes: usize,
    /// The flapping window, in seconds.
    pub flap_window: i64,
}

impl Policy {
    /// From the config: an alert is decided once, for every channel, when
    /// any channel asks for it (each channel then takes what its own rules
    /// ask for). Without any channel, the defaults (down and recoveries),
    /// so `replay` shows what would be sent.
    pub fn from_config(config: &Config) -> Policy {
        let channels = &config.alerts.channels;
        let none = channels.is_empty();
        Policy {
            notify_down: none || channels.iter().any(|c| c.rules.notify_on.contains(&NotifyOn::Down)),
            notify_degraded: channels.iter().any(|c| c.rules.notify_on.contains(&NotifyOn::Degraded)),
            send_recovery: none || channels.iter().any(|c| c.rules.send_recovery),
            flap_changes: config.alerts.flap_changes,
            flap_window: config.alerts.flap_window.as_secs() as i64,
        }
    }
}

#[derive(Debug, Default, Clone)]
struct ServiceAlerts {
    last_known: Option<ServiceStatus>,
    told: Option<ServiceStatus>,
    changes: VecDeque<i64>,
    flapping: bool,
    episodes: u64,
}

/// The machine.
#[derive(Debug, Clone)]
pub struct AlertMachine {
    policy: Policy,
    services: HashMap<String, ServiceAlerts>,
}

impl AlertMachine {
    /// A machine that knows nothing yet.
    pub fn new(policy: Policy) -> AlertMachine {
        AlertMachine { policy, services: HashMap::new() }
    }

    /// A new policy (after a reload); what was told stays told.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// Continues a service after a restart: `told` is the level already
    /// told (or decided) for its open incident, `status` the incident's.
    pub fn resume(&mut self, service: &str, status: ServiceStatus, told: Option<ServiceStatus>) {
        let s = self.services.entry(service.to_string()).or_default();
        s.last_known = Some(status);
        s.told = told;
    }

    /// Forgets a service (it left the config).
    pub fn forget(&mut self, service: &str) {
        self.services.remove(service);
    }

    /// True while the service is flapping (its alerts held back).
    pub fn flapping(&self, service: &str) -> bool {
        self.services.get(service).is_some_and(|s| s.flapping)
    }

    /// The service's status at `at`: the alerts it calls for.
    pub fn observe(&mut self, service: &str, status: ServiceStatus, at: i64) -> Option<Decision> {
        if status == ServiceStatus::Unknown {
            return None;
        }
        let policy = self.policy;
        let s = self.services.entry(service.to_string()).or_default();
        if s.last_known != Some(status) {
            if s.last_known.is_some() {
                s.changes.push_back(at);
                while s.changes.front().is_some_and(|t| at - t > policy.flap_window) {
                    s.changes.pop_front();
                }
            }
            s.last_known = Some(status);
        }
        if !s.flapping && s.changes.len() >= policy.flap_changes {
            s.flapping = true;
            s.episodes += 1;
            // The FLAPPING alert tells whatever was pending; its end tells
            // the status the service settles on.
            s.told = Some(ServiceStatus::Degraded);
            return Some(Decision::Flapping { changes: s.changes.len(), episode: s.episodes });
        }
        if s.flapping {
            return None;
        }
        decide(s, status, &policy)
    }

    /// Ends the flapping of services that have held one status for the
    /// window by `now`: the alert each one's status calls for.
    pub fn settle(&mut self, now: i64) -> Vec<(String, Decision)> {
        let policy = self.policy;
        let mut decisions = Vec::new();
        for (id, s) in &mut self.services {
            let held = s.changes.back().is_none_or(|t| now - t >= policy.flap_window);
            if !(s.flapping && held) {
                continue;
            }
            s.flapping = false;
            s.changes.clear();
            let Some(status) = s.last_known else { continue };
            if let Some(decision) = decide(s, status, &policy) {
                decisions.push((id.clone(), decision));
            }
        }
        decisions.sort_by(|a, b| a.0.cmp(&b.0));
        decisions
    }
}

/// The alert `status` calls for, given what was told.
fn decide(s: &mut ServiceAlerts, status: ServiceStatus, policy: &Policy) -> Option<Decision> {
    match status {
        ServiceStatus::Down if s.told != Some(ServiceStatus::Down) && policy.notify_down => {
            s.told = Some(ServiceStatus::Down);
            Some(Decision::Down)
        }
        ServiceStatus::Degraded if s.told.is_none() && policy.notify_degraded => {
            s.told = Some(ServiceStatus::Degraded);
            Some(Decision::Degraded)
        }
        ServiceStatus::Up => {
            let told = s.told.take();
            (told.is_some() && policy.send_recovery).then_some(Decision::Recovered)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ServiceStatus::{Degraded, Down, Unknown, Up};

    const POLICY: Policy =
        Policy { notify_down: true, notify_degraded: false, send_recovery: true, flap_changes: 6, flap_window: 1800 };

    fn run(policy: Policy, statuses: &[ServiceStatus]) -> Vec<Decision> {
        let mut m = AlertMachine::new(policy);
        statuses.iter().enumerate().filter_map(|(i, s)| m.observe("s", *s, i as i64 * 60)).collect()
    }

    #[test]
    fn unknown_in_between_changes_nothing() {
        assert_eq!(run(POLICY, &[Up, Down, Unknown, Down]), vec![Decision::Down]);
        assert_eq!(run(POLICY, &[Up, Down, Unknown, Up]), vec![Decision::Down, Decision::Recovered]);
    }

    #[test]
    fn degraded_is_told_only_when_asked_and_a_down_after_it_is_told() {
        assert_eq!(run(POLICY, &[Up, Degraded, Up]), vec![]);
        let asked = Policy { notify_degraded: true, ..POLICY };
        assert_eq!(
            run(asked, &[Up, Degraded, Down, Up]),
            vec![Decision::Degraded, Decision::Down, Decision::Recovered]
        );
        assert_eq!(run(Policy { send_recovery: false, ..POLICY }, &[Up, Down, Up]), vec![Decision::Down]);
    }

    #[test]
    fn flapping_is_told_once_then_the_settled_status() {
        let policy = Policy { flap_changes: 4, flap_window: 600, ..POLICY };
        let mut m = AlertMachine::new(policy);
        let mut told = Vec::new();
        for (i, s) in [Up, Down, Up, Down, Up, Down, Up, Down, Up].iter().enumerate() {
            told.extend(m.observe("s", *s, i as i64 * 10));
        }
        assert_eq!(
            told,
            vec![Decision::Down, Decision::Recovered, Decision::Down, Decision::Flapping { changes: 4, episode: 1 }]
        );
        assert!(m.flapping("s"));
        assert_eq!(m.settle(80 + 599), vec![], "not yet held for the window");
        assert_eq!(m.settle(80 + 600), vec![("s".to_string(), Decision::Recovered)]);
        assert!(!m.flapping("s"));
    }

    #[test]
    fn a_restart_continues_what_was_told() {
        let mut m = AlertMachine::new(POLICY);
        m.resume("s", Down, Some(Down));
        assert_eq!(m.observe("s", Down, 0), None, "no second DOWN after a restart");
        assert_eq!(m.observe("s", Up, 60), Some(Decision::Recovered));
    }
}
