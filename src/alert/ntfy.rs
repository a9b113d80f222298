//! The ntfy channel (`[[alerts.ntfy]]`, SPEC 9.6): a POST to a topic URL
//! whose body is the alert's plain text, with `Title` (the subject),
//! `Priority` (5 for down and its reminders, 4 for flapping, 3 for
//! degraded and recovered), `Tags` and `Click` (the service page). A
//! bearer token, if any, is read from `token_env` when sending.

use serde::{Deserialize, Serialize};

use super::channel::{self, Channel, SendFuture};
use super::render::{self, status_url};
use crate::config::{ChannelConfig, Config, Ntfy};
use crate::notice::{AlertEvent, Notice, NoticeKind};
use crate::store::NewMessage;

/// What the outbox holds for ntfy.
#[derive(Debug, Serialize, Deserialize)]
pub struct Payload {
    /// `Title`.
    pub title: String,
    /// `Priority`, 1 to 5.
    pub priority: u8,
    /// `Tags` (emoji short codes ntfy shows).
    pub tags: String,
    /// `Click`: the service page.
    pub click: String,
    /// The body: the alert's plain text.
    pub text: String,
}

/// `[[alerts.ntfy]]`.
pub struct NtfyChannel {
    config: ChannelConfig,
    ntfy: Ntfy,
    client: reqwest::Client,
}

impl NtfyChannel {
    /// The channel of `config` (whose target is `ntfy`), posting with `client`.
    pub fn new(config: &ChannelConfig, ntfy: &Ntfy, client: reqwest::Client) -> NtfyChannel {
        NtfyChannel { config: config.clone(), ntfy: ntfy.clone(), client }
    }
}

/// The ntfy message of `notice`.
pub fn payload(notice: &Notice, config: &Config) -> Payload {
    let rendered = match &notice.kind {
        NoticeKind::Incident { event, members, .. } => render::render(*event, members, config, notice.at),
        NoticeKind::Flapping { member, changes, window } => {
            render::flapping(&member.snapshot.name, *changes, *window, config)
        }
    };
    let (members, _) = render::summary(notice, config);
    let (priority, tags) = match notice.event() {
        AlertEvent::Down => (5, "rotating_light,chatpulse"),
        AlertEvent::Reminder => (5, "rotating_light,repeat,chatpulse"),
        AlertEvent::Flapping => (4, "warning,chatpulse"),
        AlertEvent::Degraded => (3, "warning,chatpulse"),
        AlertEvent::Recovered => (3, "white_check_mark,chatpulse"),
    };
    Payload {
        title: rendered.subject,
        priority,
        tags: tags.into(),
        click: format!("{}services/{}", status_url(config), members[0].snapshot.id),
        text: rendered.text,
    }
}

/// A header value ntfy reads as UTF-8: ASCII as it is, anything else as
/// an RFC 2047 "Q" encoded word (ntfy decodes them).
fn header_text(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    let mut out = String::from("=?UTF-8?Q?");
    for byte in text.bytes() {
        match byte {
            b' ' => out.push('_'),
            b'=' | b'?' | b'_' => out.push_str(&format!("={byte:02X}")),
            0x21..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("={byte:02X}")),
        }
    }
    out.push_str("?=");
    out
}

impl Channel for NtfyChannel {
    fn config(&self) -> &ChannelConfig {
        &self.config
    }

    fn render(&self, notice: &Notice, config: &Config) -> NewMessage {
        let body = payload(notice, config);
        channel::message(&self.config.name, notice, body.title.clone(), &body)
    }

    /// A 2xx is delivery; 408, 429 and 5xx are retried; another answer
    /// (a 401 for a wrong token, a 413) is permanent.
    fn send<'a>(&'a self, message: &'a NewMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let body: Payload = channel::payload(message)?;
            let mut request = self
                .client
                .post(self.ntfy.url.clone())
                .header("Title", header_text(&body.title))
                .header("Priority", body.priority.to_string())
                .header("Tags", body.tags)
                .header("Click", body.click)
                .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8");
            if let Some(var) = &self.ntfy.token_env {
                request = request.bearer_auth(channel::secret(var, "token_env")?);
            }
            channel::post(request.body(body.text)).await
        })
    }

    fn target(&self) -> String {
        channel::shown_url(&self.ntfy.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_outside_ascii_travels_as_an_encoded_word() {
        assert_eq!(header_text("WhatsApp DOWN"), "WhatsApp DOWN");
        assert_eq!(header_text("Café ok?"), "=?UTF-8?Q?Caf=C3=A9_ok=3F?=");
    }
}
