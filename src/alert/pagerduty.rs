//! The PagerDuty channel (`[[alerts.pagerduty]]`, SPEC 9.6): Events API
//! v2. A DOWN (or a DEGRADED the channel asks for, or a FLAPPING) is
//! `event_action = "trigger"`, a recovery `"resolve"`, both under
//! `dedup_key` = the incident group's id, which the store keeps across
//! restarts — so PagerDuty folds a retried or re-sent trigger into the
//! same incident and the resolve closes it. Reminders are not sent:
//! PagerDuty re-notifies by itself (`repeat` is not a key here).
//!
//! The integration key is read from `routing_key_env` when sending, never
//! stored: the outbox holds the event without it.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::channel::{self, Channel, SendFuture};
use super::render::{self, status_url};
use crate::config::{ChannelConfig, Config, PagerDuty};
use crate::notice::{AlertEvent, Notice};
use crate::store::NewMessage;

/// What the outbox holds for PagerDuty: the event, without its routing key.
#[derive(Debug, Serialize, Deserialize)]
pub struct Payload {
    /// The Events v2 document, `routing_key` added at send time.
    pub event: Value,
}

/// `[[alerts.pagerduty]]`.
pub struct PagerDutyChannel {
    config: ChannelConfig,
    pagerduty: PagerDuty,
    client: reqwest::Client,
}

impl PagerDutyChannel {
    /// The channel of `config` (whose target is `pagerduty`), posting with `client`.
    pub fn new(config: &ChannelConfig, pagerduty: &PagerDuty, client: reqwest::Client) -> PagerDutyChannel {
        PagerDutyChannel { config: config.clone(), pagerduty: pagerduty.clone(), client }
    }
}

/// The Events v2 document of `notice`: `trigger` or `resolve` under the
/// group's `dedup_key`; and the alert's subject.
pub fn event(notice: &Notice, config: &Config) -> (Value, String) {
    let (members, subject) = render::summary(notice, config);
    let summary = subject.strip_prefix("[chatpulse] ").unwrap_or(&subject);
    let url = status_url(config);
    let dedup_key = notice.group().to_string();
    let kind = notice.event();
    if kind == AlertEvent::Recovered {
        return (json!({ "event_action": "resolve", "dedup_key": dedup_key }), subject);
    }
    let severity = match kind {
        AlertEvent::Degraded | AlertEvent::Flapping => "warning",
        _ => "critical",
    };
    let links: Vec<Value> = members
        .iter()
        .map(|m| json!({ "href": format!("{url}services/{}", m.snapshot.id), "text": m.snapshot.name }))
        .collect();
    let first = members[0];
    let event = json!({
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": {
            "summary": summary,
            "source": config.monitor.vantage,
            "severity": severity,
            "component": first.snapshot.id,
            "group": first.incident.cause.as_ref().map(|c| c.layer.as_str()),
            "class": first.reasons(),
            "custom_details": {
                "event": kind.as_str(),
                "cause": first.incident.summary(),
                "services": members.iter().map(|m| m.snapshot.name.as_str()).collect::<Vec<_>>(),
                "message_id": notice.message_id,
            },
        },
        "links": links,
        "client": "chatpulse",
        "client_url": url,
    });
    (event, subject)
}

impl Channel for PagerDutyChannel {
    fn config(&self) -> &ChannelConfig {
        &self.config
    }

    fn render(&self, notice: &Notice, config: &Config) -> NewMessage {
        let (event, subject) = event(notice, config);
        channel::message(&self.config.name, notice, subject, &Payload { event })
    }

    /// A 202 (any 2xx) is delivery; 400 (an event PagerDuty cannot take)
    /// is permanent; 429 and 5xx are retried.
    fn send<'a>(&'a self, message: &'a NewMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let Payload { mut event } = channel::payload(message)?;
            let key = channel::secret(&self.pagerduty.routing_key_env, "routing_key_env")?;
            event["routing_key"] = Value::String(key);
            let request = self
                .client
                .post(self.pagerduty.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(event.to_string());
            channel::post(request).await
        })
    }

    fn target(&self) -> String {
        channel::shown_url(&self.pagerduty.url)
    }
}
