//! The webhook channel (`[[alerts.webhook]]`, README "Webhooks"): the body
//! each alert posts — chatpulse's JSON document or a Slack / Mattermost
//! incoming-webhook message — and the POST itself, signed with
//! `X-Chatpulse-Signature: sha256=HMAC-SHA256(secret, body)` when
//! `secret_env` names a key.
//!
//! The body is rendered when the alert is queued, so a retry after an
//! outage or a restart posts the same bytes (and the same signature).

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::channel::{self, Channel, SendFuture};
use super::render::{self, status_url};
use crate::config::{ChannelConfig, Config, Webhook, WebhookFormat};
use crate::notice::{AlertEvent, Member, Notice};
use crate::store::NewMessage;
use crate::time::{from_unix, rfc3339};

fn time(secs: i64) -> String {
    rfc3339(from_unix(secs))
}

/// The documented JSON body (README, "Webhooks") of `notice`, about
/// `members` (sorted) with its one-line `summary`.
fn json_body(notice: &Notice, members: &[&Member], summary: &str, config: &Config) -> Value {
    let url = status_url(config);
    let event = notice.event();
    let services: Vec<Value> = members
        .iter()
        .map(|m| {
            let since = match (event, m.incident.ended_at) {
                (AlertEvent::Recovered, Some(end)) => end,
                _ => m.incident.started_at,
            };
            json!({
                "id": m.snapshot.id,
                "name": m.snapshot.name,
                "status": m.snapshot.status.as_str(),
                "since": time(since),
                "url": format!("{url}services/{}", m.snapshot.id),
            })
        })
        .collect();
    let first = members[0];
    let cause = first.incident.cause.as_ref().map(|c| {
        json!({
            "layer": c.layer.as_str(),
            "reason": c.reason_words(),
            "summary": c.summary,
        })
    });
    let started_at = members.iter().map(|m| m.incident.started_at).min().unwrap_or(notice.at);
    let ended_at = match event {
        AlertEvent::Recovered => members.iter().filter_map(|m| m.incident.ended_at).max().map(time),
        _ => None,
    };
    let group = notice.group();
    json!({
        "event": event.as_str(),
        "group": group,
        "vantage": config.monitor.vantage,
        "summary": summary,
        "services": services,
        "cause": cause,
        "started_at": time(started_at),
        "ended_at": ended_at,
        "message_id": notice.message_id,
        "status_page": url,
    })
}

/// A Slack / Mattermost incoming-webhook message: one text, links bare
/// (both autolink them), everything else escaped as Slack documents.
fn slack_body(event: AlertEvent, members: &[&Member], summary: &str, config: &Config) -> Value {
    let url = status_url(config);
    let mut text = format!("*{}*\nvantage: {}", slack_escape(summary), slack_escape(&config.monitor.vantage));
    for m in members {
        let link = format!("{url}services/{}", m.snapshot.id);
        let status = m.snapshot.status.as_str();
        text.push_str(&slack_line(event, &m.snapshot.name, status, m.incident.summary(), &link));
    }
    json!({ "text": text })
}

/// One service's line: `• X is DOWN — cause — link`; a recovery says what
/// it recovered from instead of pairing "UP" with the failure.
fn slack_line(event: AlertEvent, name: &str, status: &str, cause: &str, link: &str) -> String {
    let (name, cause) = (slack_escape(name), slack_escape(cause));
    match (event, cause.is_empty()) {
        (AlertEvent::Recovered, true) => format!("\n• {name} recovered — {link}"),
        (AlertEvent::Recovered, false) => format!("\n• {name} recovered from {cause} — {link}"),
        (_, true) => format!("\n• {name} is {} — {link}", status.to_uppercase()),
        (_, false) => format!("\n• {name} is {} — {cause} — {link}", status.to_uppercase()),
    }
}

/// Text for Slack's message format: `&`, `<` and `>` escaped (its only
/// control characters), so a name like `<!channel>` is shown, not obeyed.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    use aws_lc_rs::hmac;
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// What the outbox holds for a webhook: the exact body (and so the same
/// signature on every retry).
#[derive(Debug, Serialize, Deserialize)]
pub struct Payload {
    /// The JSON body.
    pub body: String,
}

/// `[[alerts.webhook]]`: a POST of chatpulse's JSON or a Slack message.
pub struct WebhookChannel {
    config: ChannelConfig,
    hook: Webhook,
    client: reqwest::Client,
}

impl WebhookChannel {
    /// The channel of `config` (whose target is `hook`), posting with `client`.
    pub fn new(config: &ChannelConfig, hook: &Webhook, client: reqwest::Client) -> WebhookChannel {
        WebhookChannel { config: config.clone(), hook: hook.clone(), client }
    }
}

impl Channel for WebhookChannel {
    fn config(&self) -> &ChannelConfig {
        &self.config
    }

    fn render(&self, notice: &Notice, config: &Config) -> NewMessage {
        let (members, summary) = render::summary(notice, config);
        let body = match self.hook.format {
            WebhookFormat::Json => json_body(notice, &members, &summary, config),
            WebhookFormat::Slack => slack_body(notice.event(), &members, &summary, config),
        };
        channel::message(&self.config.name, notice, summary, &Payload { body: body.to_string() })
    }

    /// A 2xx answer is delivery; 408, 429, 5xx and network errors are
    /// worth retrying; any other answer is permanent.
    fn send<'a>(&'a self, message: &'a NewMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let Payload { body } = channel::payload(message)?;
            let mut request = self
                .client
                .post(self.hook.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("X-Chatpulse-Event", message.event.as_str())
                .header("X-Chatpulse-Message-Id", message.message_id.as_str());
            if let Some(var) = &self.hook.secret_env {
                let secret = channel::secret(var, "secret_env")?;
                request = request.header("X-Chatpulse-Signature", signature(secret.as_bytes(), body.as_bytes()));
            }
            channel::post(request.body(body)).await
        })
    }

    fn target(&self) -> String {
        channel::shown_url(&self.hook.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_test_case_2() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn slack_text_shows_a_mention_instead_of_obeying_it() {
        let line = slack_line(AlertEvent::Down, "<!channel> & Co", "down", "http: <b>", "https://s/services/x");
        assert_eq!(line, "\n• &lt;!channel&gt; &amp; Co is DOWN — http: &lt;b&gt; — https://s/services/x");
    }

    #[test]
    fn a_slack_recovery_says_what_it_recovered_from() {
        let line = slack_line(AlertEvent::Recovered, "X", "up", "http: x.org: status 503", "L");
        assert_eq!(line, "\n• X recovered from http: x.org: status 503 — L");
        assert_eq!(slack_line(AlertEvent::Recovered, "X", "up", "", "L"), "\n• X recovered — L");
    }
}
