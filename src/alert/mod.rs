//! Alert channels: what each channel says about a decided alert and how it
//! leaves the outbox (README, "Alert channels").
//!
//! The incident tracker decides an alert once and hands over a typed
//! [`Notice`]; each [`Channel`] (one file each: [`email`], [`webhook`],
//! [`pagerduty`], [`ntfy`]) takes it by its own rules (`notify_on`,
//! `send_recovery`, and for reminders `repeat`) and renders one outbox
//! message in its own payload; [`deliver`] sends each channel's queue in
//! order. The list of channels is [`ChannelSet::new`], built from the
//! config's channel list once per config version and used by rendering
//! and delivery alike. This module never decides status or incidents.
//!
//! A new channel is one file implementing [`Channel`], its keys in
//! `config::alerts`, and one line in [`build`].

pub mod channel;
pub mod deliver;
pub mod email;
pub mod ntfy;
pub mod pagerduty;
pub mod render;
pub mod webhook;

use std::sync::{Arc, Mutex};

pub use self::channel::{Channel, Failure, takes};
use crate::config::{Alerts, ChannelConfig, ChannelTarget, Config};
use crate::notice::{Channels, Notice};
use crate::store::NewMessage;

/// The channel of one configured channel.
fn build(config: &ChannelConfig, http: &reqwest::Client) -> Arc<dyn Channel> {
    match &config.target {
        ChannelTarget::Email(e) => Arc::new(email::EmailChannel::new(config, e)),
        ChannelTarget::Webhook(w) => Arc::new(webhook::WebhookChannel::new(config, w, http.clone())),
        ChannelTarget::PagerDuty(p) => Arc::new(pagerduty::PagerDutyChannel::new(config, p, http.clone())),
        ChannelTarget::Ntfy(n) => Arc::new(ntfy::NtfyChannel::new(config, n, http.clone())),
    }
}

/// The channels of one config version, in the config's order.
#[derive(Clone)]
pub struct ChannelSet {
    channels: Vec<Arc<dyn Channel>>,
}

impl ChannelSet {
    /// Builds every channel of `alerts`; the HTTP channels share one client.
    pub fn new(alerts: &Alerts) -> Result<ChannelSet, reqwest::Error> {
        let http = channel::http_client()?;
        Ok(ChannelSet { channels: alerts.channels.iter().map(|c| build(c, &http)).collect() })
    }

    /// The channels.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Channel>> {
        self.channels.iter()
    }

    /// The messages for `notice`: one per channel that takes it.
    pub fn render(&self, notice: &Notice, config: &Config) -> Vec<NewMessage> {
        self.channels
            .iter()
            .filter(|c| takes(&c.config().rules, c.name(), notice))
            .map(|c| c.render(notice, config))
            .collect()
    }
}

/// The channels of `run`, for the tracker: the set of the config it renders
/// under, rebuilt when the config's `[alerts]` changes.
#[derive(Default)]
pub struct AlertChannels {
    current: Mutex<Option<(Alerts, ChannelSet)>>,
}

impl Channels for AlertChannels {
    fn render(&self, notice: &Notice, config: &Config) -> Vec<NewMessage> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if current.as_ref().is_none_or(|(alerts, _)| *alerts != config.alerts) {
            match ChannelSet::new(&config.alerts) {
                Ok(set) => *current = Some((config.alerts.clone(), set)),
                Err(e) => {
                    tracing::error!("cannot create the alert channels' HTTP client: {e}; the alert is not queued");
                    return Vec::new();
                }
            }
        }
        current.as_ref().map(|(_, set)| set.render(notice, config)).unwrap_or_default()
    }
}

/// One line for `validate`: where a channel sends.
pub fn describe(channel: &ChannelConfig) -> String {
    let name = &channel.name;
    match &channel.target {
        ChannelTarget::Email(e) => format!("E-mail alerts ({name}) to {} via {}", e.to.join(", "), e.smtp_url),
        ChannelTarget::Webhook(hook) => {
            let format = hook.format;
            let signed = if hook.secret_env.is_some() { ", signed" } else { "" };
            format!("Webhook alerts ({name}) to {} ({format}{signed})", channel::shown_url(&hook.url))
        }
        ChannelTarget::PagerDuty(p) => format!(
            "PagerDuty alerts ({name}) to {} (routing key from {})",
            channel::shown_url(&p.url),
            p.routing_key_env
        ),
        ChannelTarget::Ntfy(n) => {
            let token = if n.token_env.is_some() { ", with a token" } else { "" };
            format!("ntfy alerts ({name}) to {}{token}", channel::shown_url(&n.url))
        }
    }
}
