//! The e-mail channel: the outbox message of an alert (rendered by
//! [`super::render`]) and its delivery through lettre (smtp://,
//! smtp+starttls://, smtps://; the password comes from the environment).
//! The Message-ID stored with each alert is stable, so a message resent
//! after a crash between SMTP's "250" and our commit is recognisable as the
//! same one.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use serde::{Deserialize, Serialize};

use super::channel::{self, Channel, Failure, SendFuture};
use super::render;
use crate::config::{ChannelConfig, Config, Email, SmtpSecurity};
use crate::notice::{Notice, NoticeKind};
use crate::store::NewMessage;

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// The SMTP transport of `[alerts.email]` (built with the channel, once
/// per config version, so its messages share one connection pool).
pub type Smtp = AsyncSmtpTransport<Tokio1Executor>;

/// Why no e-mail can be sent at all (every queued message waits).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// lettre refused the relay (its TLS parameters).
    #[error("{0}")]
    Relay(#[from] lettre::transport::smtp::Error),
    /// `password_env` names a variable that is not set.
    #[error("environment variable {0} (password_env) is not set")]
    NoPassword(String),
}

/// Why one message cannot be built (it is given up: retrying cannot help).
#[derive(Debug, thiserror::Error)]
enum BuildError {
    #[error("bad address {address:?}: {source}")]
    Address { address: String, source: lettre::address::AddressError },
    #[error("{0}")]
    Message(#[from] lettre::error::Error),
}

/// Builds the transport, or says why it cannot be.
pub fn transport(email: &Email) -> Result<Smtp, TransportError> {
    let builder = match email.security {
        SmtpSecurity::Plain => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(email.host.as_str()),
        SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&email.host)?,
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&email.host)?,
    };
    let mut builder = builder.port(email.port).timeout(Some(SMTP_TIMEOUT));
    if let Some(user) = &email.username {
        let password = match &email.password_env {
            Some(var) => std::env::var(var).map_err(|_| TransportError::NoPassword(var.clone()))?,
            None => String::new(),
        };
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
}

/// What the outbox holds for an e-mail.
#[derive(Debug, Serialize, Deserialize)]
pub struct Payload {
    /// Subject line (before fitting).
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
    /// The Message-ID this mail answers (`In-Reply-To`, `References`):
    /// reminders and recoveries thread under their DOWN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
}

fn build(email: &Email, message: &NewMessage, body: Payload) -> Result<Message, BuildError> {
    let parse = |s: &str| s.parse::<Mailbox>().map_err(|source| BuildError::Address { address: s.into(), source });
    let mut builder = Message::builder().from(parse(&email.from)?);
    for to in &email.to {
        builder = builder.to(parse(to)?);
    }
    if let Some(parent) = &body.in_reply_to {
        builder = builder.in_reply_to(parent.clone()).references(parent.clone());
    }
    builder
        .subject(fit_subject(&body.subject))
        .message_id(Some(message.message_id.clone()))
        .date(crate::time::from_unix(message.created_at))
        .multipart(MultiPart::alternative_plain_html(body.text, body.html))
        .map_err(BuildError::from)
}

/// Longest word kept whole in a Subject: header lines are folded at spaces
/// only, and a line may not pass 998 bytes (RFC 5322 2.1.1, RFC 5321
/// 4.5.3.1.6), so a longer word (a 5,000-character service name, a long
/// URL in a cause) is cut with a marker.
const SUBJECT_WORD: usize = 60;
/// Longest Subject, in characters: enough for any real one.
const SUBJECT_MAX: usize = 300;

/// `subject` as a Subject header can carry it: every word at most
/// [`SUBJECT_WORD`] characters and the whole at most [`SUBJECT_MAX`], cut
/// with `…`. Bodies need nothing: lettre encodes long lines
/// (quoted-printable), which keeps every line within the limits.
pub fn fit_subject(subject: &str) -> String {
    let cut = |text: &str, max: usize| -> String {
        if text.chars().count() <= max {
            return text.to_string();
        }
        let mut kept: String = text.chars().take(max - 1).collect();
        kept.push('…');
        kept
    };
    let words: Vec<String> = subject.split(' ').map(|w| cut(w, SUBJECT_WORD)).collect();
    cut(&words.join(" "), SUBJECT_MAX)
}

/// `[alerts.email]`: mail through one SMTP relay.
pub struct EmailChannel {
    config: ChannelConfig,
    email: Email,
    transport: Result<Smtp, TransportError>,
}

impl EmailChannel {
    /// The channel of `config` (whose target is `email`).
    pub fn new(config: &ChannelConfig, email: &Email) -> EmailChannel {
        EmailChannel { config: config.clone(), email: email.clone(), transport: transport(email) }
    }
}

impl Channel for EmailChannel {
    fn config(&self) -> &ChannelConfig {
        &self.config
    }

    fn render(&self, notice: &Notice, config: &Config) -> NewMessage {
        let rendered = match &notice.kind {
            NoticeKind::Incident { event, members, .. } => render::render(*event, members, config, notice.at),
            NoticeKind::Flapping { member, changes, window } => {
                render::flapping(&member.snapshot.name, *changes, *window, config)
            }
        };
        let subject = rendered.subject.clone();
        let payload = Payload {
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            in_reply_to: notice.thread.clone(),
        };
        channel::message(&self.config.name, notice, subject, &payload)
    }

    /// SMTP 5xx (and a message that cannot even be built) is permanent;
    /// anything else is worth retrying.
    fn send<'a>(&'a self, message: &'a NewMessage) -> SendFuture<'a> {
        Box::pin(async move {
            let transport = self.transport.as_ref().map_err(|why| Failure::transient(why.to_string()))?;
            let body = channel::payload(message)?;
            let built = build(&self.email, message, body).map_err(|why| Failure::permanent(why.to_string()))?;
            transport
                .send(built)
                .await
                .map(|_| ())
                .map_err(|e| Failure { permanent: e.is_permanent(), why: e.to_string() })
        })
    }

    fn target(&self) -> String {
        self.email.smtp_url.clone()
    }
}
