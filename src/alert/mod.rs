//! Alert channels: what each channel says about a decided alert and how it
//! leaves the outbox (README, "E-mail alerts" and "Webhooks").
//!
//! The incident tracker decides an alert once and hands over a typed
//! [`Notice`]; [`AlertChannels`] applies each channel's own rules
//! (`notify_on`, `send_recovery`, and for reminders `repeat`) and renders
//! one outbox message per channel that takes it — an e-mail ([`render`]) or
//! a webhook body ([`webhook`]). [`deliver`] sends each channel's queue in
//! order; [`email`] and [`webhook`] are the two transports. This module
//! never decides status or incidents.

pub mod deliver;
pub mod email;
pub mod render;
pub mod webhook;

use crate::config::{AlertRules, Config, NotifyOn};
use crate::notice::{AlertEvent, Channels, Notice, NoticeKind};
use crate::store::NewMessage;
use crate::verdict::ServiceStatus;

/// The channels of `run`: `[alerts.email]` and every `[[alerts.webhook]]`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlertChannels;

/// Whether a channel with `rules`, named `channel`, takes `notice`.
pub fn takes(rules: &AlertRules, channel: &str, notice: &Notice) -> bool {
    if notice.only.as_ref().is_some_and(|only| only != channel) {
        return false;
    }
    let told = |level: ServiceStatus| match level {
        ServiceStatus::Degraded => rules.notify_on.contains(&NotifyOn::Degraded),
        _ => rules.notify_on.contains(&NotifyOn::Down),
    };
    match &notice.kind {
        NoticeKind::Flapping { .. } => true,
        NoticeKind::Incident { event, members, .. } => match event {
            AlertEvent::Down | AlertEvent::Reminder | AlertEvent::Flapping => told(ServiceStatus::Down),
            AlertEvent::Degraded => told(ServiceStatus::Degraded),
            // A recovery goes where the failure was told.
            AlertEvent::Recovered => {
                rules.send_recovery && members.iter().any(|m| told(m.incident.notified.unwrap_or(ServiceStatus::Down)))
            }
        },
    }
}

impl Channels for AlertChannels {
    fn render(&self, notice: &Notice, config: &Config) -> Vec<NewMessage> {
        let mut messages = Vec::new();
        if let Some(email) = &config.alerts.email
            && takes(&email.rules, email::CHANNEL, notice)
        {
            messages.push(email::message_for(notice, config));
        }
        for (i, hook) in config.alerts.webhooks.iter().enumerate() {
            let channel = webhook::channel(i);
            if takes(&hook.rules, &channel, notice) {
                messages.push(webhook::message_for(notice, hook, channel, config));
            }
        }
        messages
    }
}
