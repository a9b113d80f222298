//! The one interface every alert channel implements (Gatus's provider
//! shape): a [`Channel`] renders the outbox message of a notice it takes,
//! in its own payload, and sends a queued message, saying how a failure
//! should be treated. A leaf of the alert module: the channel files
//! implement it, the registry in [`super`] and delivery use it.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::config::{AlertRules, ChannelConfig, Config, NotifyOn};
use crate::notice::{AlertEvent, Notice, NoticeKind};
use crate::store::NewMessage;
use crate::verdict::ServiceStatus;

/// Why a message was not delivered.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The receiver refused it for good (SMTP 5xx; HTTP 4xx but 408/429).
    pub permanent: bool,
    /// What happened, in words.
    pub why: String,
}

impl Failure {
    /// A failure worth retrying.
    pub fn transient(why: impl Into<String>) -> Failure {
        Failure { permanent: false, why: why.into() }
    }

    /// A refusal that retrying cannot change.
    pub fn permanent(why: impl Into<String>) -> Failure {
        Failure { permanent: true, why: why.into() }
    }

    /// How an HTTP receiver's status is judged: 2xx delivered; 408, 429
    /// and 5xx worth retrying; any other answer permanent.
    pub fn from_status(status: reqwest::StatusCode) -> Result<(), Failure> {
        if status.is_success() {
            return Ok(());
        }
        let why = format!("the receiver answered {status}");
        let retry = status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
        Err(if retry { Failure::transient(why) } else { Failure::permanent(why) })
    }
}

/// Sends one HTTP request of a channel and judges the answer as
/// [`Failure::from_status`] does; a network error is worth retrying.
pub async fn post(request: reqwest::RequestBuilder) -> Result<(), Failure> {
    let response = request.send().await.map_err(|e| Failure::transient(crate::error_text::root_cause(&e)))?;
    Failure::from_status(response.status())
}

/// What [`Channel::send`] returns.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'a>>;

/// One alert channel, built from its [`ChannelConfig`] once per config version.
pub trait Channel: Send + Sync {
    /// Its config: name (`email`, `webhook-1`, …) and rules.
    fn config(&self) -> &ChannelConfig;

    /// The outbox message of `notice` (which this channel takes), its
    /// payload in the channel's own shape: rendered when the alert is
    /// queued, so a retry after an outage or a restart sends the same bytes.
    fn render(&self, notice: &Notice, config: &Config) -> NewMessage;

    /// Sends one queued message.
    fn send<'a>(&'a self, message: &'a NewMessage) -> SendFuture<'a>;

    /// Where it sends, as logs may show it (no secrets).
    fn target(&self) -> String;

    /// Its name in the outbox and the metrics.
    fn name(&self) -> &str {
        &self.config().name
    }
}

/// How long one HTTP delivery (webhook, PagerDuty, ntfy) may take, connect
/// to last byte.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The client HTTP channels post with: rustls, no redirects (a moved
/// endpoint is a config error to see, not to follow), bounded.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("chatpulse/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A URL as logs show it: no password, no query (tokens live there).
pub fn shown_url(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_password(None);
    url.set_query(None);
    url.to_string()
}

/// An environment variable a channel needs at send time (checked at start
/// and on reload, so missing here means it was unset since: retried).
pub fn secret(var: &str, key: &str) -> Result<String, Failure> {
    std::env::var(var).map_err(|_| Failure::transient(format!("environment variable {var} ({key}) is not set")))
}

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

/// The outbox row of `notice` on `channel`, around a rendered `payload`.
pub fn message(channel: &str, notice: &Notice, subject: String, payload: &impl serde::Serialize) -> NewMessage {
    NewMessage {
        channel: channel.to_string(),
        event: notice.event().as_str().into(),
        message_id: notice.message_id.clone(),
        subject,
        payload: serde_json::to_string(payload).expect("a payload is plain data"),
        created_at: notice.at,
    }
}

/// A queued message's payload, as its channel rendered it.
pub fn payload<T: serde::de::DeserializeOwned>(message: &NewMessage) -> Result<T, Failure> {
    serde_json::from_str(&message.payload)
        .map_err(|e| Failure::permanent(format!("the queued payload cannot be read ({e})")))
}
