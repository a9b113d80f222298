//! Typed alert events: what the incident tracker ([`crate::incident`])
//! decided to tell, before any channel has put it into words.
//!
//! The tracker builds a [`Notice`] (which event, which services, their
//! incidents, the stable Message-ID) and hands it to a [`Channels`]
//! implementation — [`crate::alert`] in `run` — which applies each
//! channel's own rules (`notify_on`, `send_recovery`, `repeat`) and renders
//! one outbox message per channel that takes it (README, "E-mail alerts" and "Webhooks").
//! Neither side imports the other: both depend on this module only.

use std::time::Duration;

use crate::cause::Cause;
use crate::config::{Config, Kind};
use crate::probe::result_word;
use crate::store::{Incident, NewMessage};
use crate::verdict::{ProbeState, ProbeStatus, RootCause, ServiceState, ServiceStatus};
use crate::words::words;

words! {
/// Which kind of alert it is; its word is the one in metrics, Message-IDs,
/// webhook bodies and the store's pending decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertEvent {
    /// Services went down.
    Down = "down",
    /// Services became degraded.
    Degraded = "degraded",
    /// Services are still down.
    Reminder = "reminder",
    /// Services recovered.
    Recovered = "recovered",
    /// The service changes status too often to alert on each change.
    Flapping = "flapping",
}
}

impl AlertEvent {
    /// The status this event tells the on-call about, if it tells one.
    pub fn announces(self) -> Option<ServiceStatus> {
        match self {
            AlertEvent::Down => Some(ServiceStatus::Down),
            AlertEvent::Degraded => Some(ServiceStatus::Degraded),
            AlertEvent::Reminder | AlertEvent::Recovered | AlertEvent::Flapping => None,
        }
    }
}

/// One probe as an alert shows it.
#[derive(Debug, Clone)]
pub struct ProbeLine {
    /// Probe id.
    pub id: String,
    /// Kind.
    pub kind: Kind,
    /// What it probes.
    pub target: String,
    /// Confirmed state.
    pub status: ProbeStatus,
    /// Last result word, if it ran.
    pub last_result: Option<&'static str>,
    /// Last detail.
    pub detail: String,
}

/// A service at the moment its status changed.
#[derive(Debug, Clone)]
pub struct ServiceSnapshot {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// New status.
    pub status: ServiceStatus,
    /// Unix seconds.
    pub at: i64,
    /// Root cause.
    pub cause: Option<RootCause>,
    /// Its probes.
    pub probes: Vec<ProbeLine>,
}

impl ServiceSnapshot {
    /// From a verdict `ServiceChanged` event.
    pub fn new(service: &ServiceState, probes: &[&ProbeState], at: i64) -> ServiceSnapshot {
        ServiceSnapshot {
            id: service.id.clone(),
            name: service.name.clone(),
            status: service.status,
            at,
            cause: service.cause.clone(),
            probes: probes
                .iter()
                .map(|p| ProbeLine {
                    id: p.probe.spec.id.clone(),
                    kind: p.probe.kind(),
                    target: p.probe.spec.check.target(),
                    status: p.status,
                    last_result: p.last.as_ref().map(|l| result_word(l.finding.result)),
                    detail: p.last.as_ref().map(|l| l.finding.detail.clone()).unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// A snapshot for an incident continued from before a restart whose
    /// service has not been judged yet.
    pub fn placeholder(incident: &Incident) -> ServiceSnapshot {
        ServiceSnapshot {
            id: incident.service.clone(),
            name: incident.service.clone(),
            status: incident.status,
            at: incident.started_at,
            cause: None,
            probes: Vec::new(),
        }
    }
}

/// One service in an alert.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its incident (for a recovery, ended; `notified` is the level that
    /// was told, which decides which channels hear of the recovery).
    pub incident: Incident,
    /// The service as it was last judged.
    pub snapshot: ServiceSnapshot,
}

impl Member {
    /// The distinct reasons of the incident's root cause, comma-separated
    /// (the incident's own cause, which outlives a restart).
    pub fn reasons(&self) -> String {
        self.incident.cause.as_ref().map(Cause::reason_words).unwrap_or_default()
    }
}

/// What is being told.
#[derive(Debug, Clone)]
pub enum NoticeKind {
    /// An incident event about one group of services.
    Incident {
        /// Down, degraded, reminder or recovered.
        event: AlertEvent,
        /// The group (its first incident's id).
        group: i64,
        /// The services, at least one.
        members: Vec<Member>,
    },
    /// A service started flapping; nothing more is said until it settles.
    Flapping {
        /// The service.
        member: Box<Member>,
        /// Changes within the window.
        changes: usize,
        /// The flapping window.
        window: Duration,
    },
}

/// One decided alert, before rendering.
#[derive(Debug, Clone)]
pub struct Notice {
    /// What is told.
    pub kind: NoticeKind,
    /// `<event-incident-seq-STOREID@vantage.chatpulse>`, the same on every
    /// channel (a webhook receiver can match it with the e-mail).
    pub message_id: String,
    /// Unix seconds.
    pub at: i64,
    /// A reminder goes to the one channel whose `repeat` called for it.
    pub only: Option<String>,
    /// The Message-ID of the alert this one follows (the group's DOWN, or
    /// its DEGRADED when it never went down): reminders and recoveries
    /// thread under it (`In-Reply-To`, `References`).
    pub thread: Option<String>,
}

impl Notice {
    /// The incident group told of: a flapping service's group, or its own
    /// incident when it has none.
    pub fn group(&self) -> i64 {
        match &self.kind {
            NoticeKind::Incident { group, .. } => *group,
            NoticeKind::Flapping { member, .. } => member.incident.group_id.unwrap_or(member.incident.id),
        }
    }

    /// The event word.
    pub fn event(&self) -> AlertEvent {
        match &self.kind {
            NoticeKind::Incident { event, .. } => *event,
            NoticeKind::Flapping { .. } => AlertEvent::Flapping,
        }
    }
}

/// Turns notices into outbox messages, one per channel that takes it.
pub trait Channels: Send + Sync {
    /// The messages for `notice` under `config`'s channels and their rules.
    fn render(&self, notice: &Notice, config: &Config) -> Vec<NewMessage>;
}
