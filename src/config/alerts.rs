//! `[alerts]` and its channels — `[alerts.email]`, `[[alerts.webhook]]`,
//! `[[alerts.pagerduty]]`, `[[alerts.ntfy]]` (SPEC 9.6): grouping and
//! flapping, and each channel's address and rules. The channel list is
//! named here once (`email`, `webhook-N`, `pagerduty-N`, `ntfy-N`); the
//! alert module builds its channels from it.

use std::str::FromStr;
use std::time::Duration;

use crate::document::{ConfigError, Field, Keys, Strings, Table, Tables, ValueError, field, redacted, table};
use crate::words::words;

table!(
    /// `[alerts]`.
    RawAlerts {
        group_wait: String,
        flap_changes: i64,
        flap_window: String,
        email: RawEmail,
        webhook: Tables<RawWebhook>,
        pagerduty: Tables<RawPagerDuty>,
        ntfy: Tables<RawNtfy>,
    }
);

table!(
    /// `[alerts.email]`.
    RawEmail {
        smtp: String,
        username: String,
        password_env: String,
        from: String,
        to: Strings,
        notify_on: Strings,
        repeat: String,
        send_recovery: bool,
    }
);

table!(
    /// `[[alerts.webhook]]`.
    RawWebhook {
        url: String,
        format: String,
        secret_env: String,
        notify_on: Strings,
        repeat: String,
        send_recovery: bool,
    }
);

table!(
    /// `[[alerts.pagerduty]]` (no `repeat`: PagerDuty re-notifies itself).
    RawPagerDuty { routing_key_env: String, url: String, notify_on: Strings, send_recovery: bool }
);

table!(
    /// `[[alerts.ntfy]]`.
    RawNtfy { url: String, token_env: String, notify_on: Strings, repeat: String, send_recovery: bool }
);

/// `[alerts]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Alerts {
    /// How long to wait for other services failing with the same cause.
    pub group_wait: Duration,
    /// Status changes within `flap_window` that make a service flapping.
    pub flap_changes: usize,
    /// The flapping window; also how long a status must hold to end it.
    pub flap_window: Duration,
    /// Every channel: `email`, then each kind's tables in file order.
    pub channels: Vec<ChannelConfig>,
}

/// One alert channel as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelConfig {
    /// Its name in the outbox and the metrics: `email`, `webhook-1`,
    /// `pagerduty-1`, `ntfy-1`.
    pub name: String,
    /// Where it is configured, for messages (`[[alerts.ntfy]] 1`).
    pub place: String,
    /// What it is told.
    pub rules: AlertRules,
    /// Where and how it sends.
    pub target: ChannelTarget,
}

/// A channel's own settings, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelTarget {
    /// `[alerts.email]`.
    Email(Email),
    /// `[[alerts.webhook]]`.
    Webhook(Webhook),
    /// `[[alerts.pagerduty]]`.
    PagerDuty(PagerDuty),
    /// `[[alerts.ntfy]]`.
    Ntfy(Ntfy),
}

impl ChannelConfig {
    /// The environment variables this channel reads, each with its key.
    pub fn secrets(&self) -> Vec<(&'static str, &str)> {
        match &self.target {
            ChannelTarget::Email(e) => e.password_env.iter().map(|v| ("password_env", v.as_str())).collect(),
            ChannelTarget::Webhook(w) => w.secret_env.iter().map(|v| ("secret_env", v.as_str())).collect(),
            ChannelTarget::PagerDuty(p) => vec![("routing_key_env", p.routing_key_env.as_str())],
            ChannelTarget::Ntfy(n) => n.token_env.iter().map(|v| ("token_env", v.as_str())).collect(),
        }
    }
}

/// `[[alerts.pagerduty]]`: PagerDuty Events API v2.
#[derive(Debug, Clone, PartialEq)]
pub struct PagerDuty {
    /// The enqueue endpoint.
    pub url: reqwest::Url,
    /// Environment variable holding the integration (routing) key.
    pub routing_key_env: String,
}

/// `[[alerts.ntfy]]`: a POST to an ntfy topic URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Ntfy {
    /// The topic URL.
    pub url: reqwest::Url,
    /// Environment variable holding a bearer token; `None` = anonymous.
    pub token_env: Option<String>,
}

/// What one channel is told (the same keys in every channel's table;
/// PagerDuty has no `repeat`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRules {
    /// Which service states start an alert.
    pub notify_on: Vec<NotifyOn>,
    /// Reminder interval while still down; `None` = never.
    pub repeat: Option<Duration>,
    /// Whether a recovery is sent.
    pub send_recovery: bool,
}

words! {
/// The body a webhook posts (`format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// chatpulse's own JSON document (README, "Webhooks").
    Json = "json",
    /// A Slack / Mattermost incoming-webhook message (`{"text": …}`).
    Slack = "slack",
}
}

/// `[[alerts.webhook]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// Where alerts are POSTed (http or https).
    pub url: reqwest::Url,
    /// The body format.
    pub format: WebhookFormat,
    /// Environment variable holding the HMAC-SHA256 key of
    /// `X-Chatpulse-Signature`; `None` = unsigned.
    pub secret_env: Option<String>,
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://`: plain text.
    Plain,
    /// `smtp+starttls://`: upgrade with STARTTLS (required).
    StartTls,
    /// `smtps://`: TLS from the first byte.
    Tls,
}

words! {
/// The events a user may ask to be told about when they start (`notify_on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyOn {
    /// A service becomes `down`.
    Down = "down",
    /// A service becomes `degraded`.
    Degraded = "degraded",
}
}

/// `[alerts.email]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Email {
    /// The `smtp` URL as written, any password redacted (for messages).
    pub smtp_url: String,
    /// Transport security.
    pub security: SmtpSecurity,
    /// SMTP host.
    pub host: String,
    /// SMTP port.
    pub port: u16,
    /// Optional login.
    pub username: Option<String>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    /// Sender mailbox.
    pub from: String,
    /// Recipient mailboxes.
    pub to: Vec<String>,
}

fn parse_mailbox(s: &str) -> Result<String, ValueError> {
    lettre::message::Mailbox::from_str(s)
        .map(|_| s.to_string())
        .map_err(|e| ValueError::not(s, "an e-mail address").because(e))
}

pub(super) fn read_alerts(t: Option<Table<'_, RawAlerts>>) -> Result<Alerts, ConfigError> {
    let mut alerts = Alerts {
        group_wait: Duration::from_secs(5),
        flap_changes: 6,
        flap_window: Duration::from_secs(1800),
        channels: Vec::new(),
    };
    let Some(t) = t else { return Ok(alerts) };
    alerts.group_wait = t.duration(field!(t, group_wait), true)?.unwrap_or(alerts.group_wait);
    alerts.flap_changes = t.int(field!(t, flap_changes), 2..1001)?.map_or(alerts.flap_changes, |n| n as usize);
    alerts.flap_window = t.duration(field!(t, flap_window), false)?.unwrap_or(alerts.flap_window);
    if let Some(e) = t.table(field!(t, email)) {
        alerts.channels.push(read_email(&e)?);
    }
    for (i, w) in t.tables(field!(t, webhook)).iter().enumerate() {
        let rules = read_alert_rules(w, field!(w, notify_on), Some(field!(w, repeat)), field!(w, send_recovery))?;
        let target = ChannelTarget::Webhook(read_webhook(w)?);
        alerts.channels.push(named("webhook", i, rules, target));
    }
    for (i, p) in t.tables(field!(t, pagerduty)).iter().enumerate() {
        let rules = read_alert_rules(p, field!(p, notify_on), None, field!(p, send_recovery))?;
        let url = read_url(p, field!(p, url))?
            .unwrap_or_else(|| reqwest::Url::parse(PAGERDUTY_URL).expect("the Events API URL parses"));
        let routing_key_env = p.required_str(field!(p, routing_key_env))?.value.to_string();
        alerts.channels.push(named(
            "pagerduty",
            i,
            rules,
            ChannelTarget::PagerDuty(PagerDuty { url, routing_key_env }),
        ));
    }
    for (i, n) in t.tables(field!(t, ntfy)).iter().enumerate() {
        let rules = read_alert_rules(n, field!(n, notify_on), Some(field!(n, repeat)), field!(n, send_recovery))?;
        let url = read_url(n, field!(n, url))?.ok_or_else(|| n.error_here("missing required key \"url\""))?;
        let token_env = n.str(field!(n, token_env)).map(|s| s.value.to_string());
        alerts.channels.push(named("ntfy", i, rules, ChannelTarget::Ntfy(Ntfy { url, token_env })));
    }
    Ok(alerts)
}

/// PagerDuty's Events API v2 endpoint, the default `url`.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// The `i`th (0-based) channel of a kind that may repeat: `webhook-1` first.
fn named(kind: &str, i: usize, rules: AlertRules, target: ChannelTarget) -> ChannelConfig {
    ChannelConfig { name: format!("{kind}-{}", i + 1), place: format!("[[alerts.{kind}]] {}", i + 1), rules, target }
}

/// An `http://` or `https://` URL with a host.
fn read_url<R: Keys>(t: &Table<'_, R>, url: Field<'_, String>) -> Result<Option<reqwest::Url>, ConfigError> {
    t.parsed(url, |s| {
        let url = reqwest::Url::parse(s).map_err(|e| ValueError::not(s, "a URL").because(e))?;
        match url.scheme() {
            "http" | "https" if url.host().is_some() => Ok(url),
            _ => Err(ValueError::not(s, "an http:// or https:// URL")),
        }
    })
}

fn read_email(e: &Table<'_, RawEmail>) -> Result<ChannelConfig, ConfigError> {
    let smtp = e.required_str(field!(e, smtp))?;
    let (security, host, port) =
        parse_smtp_url(smtp.value).map_err(|why| e.error(&smtp.span, format!("\"smtp\": {why}")))?;
    let from = e.required_str(field!(e, from))?;
    parse_mailbox(from.value).map_err(|why| e.error(&from.span, format!("\"from\": {why}")))?;
    let to = e.str_list(field!(e, to)).ok_or_else(|| e.error_here("missing required key \"to\""))?;
    if to.is_empty() {
        return Err(e.error_at_key("to", "\"to\" must name at least one recipient"));
    }
    for addr in &to {
        parse_mailbox(addr.value).map_err(|why| e.error(&addr.span, format!("\"to\": {why}")))?;
    }
    let rules = read_alert_rules(e, field!(e, notify_on), Some(field!(e, repeat)), field!(e, send_recovery))?;
    let email = Email {
        smtp_url: redacted(smtp.value),
        security,
        host,
        port,
        username: e.str(field!(e, username)).map(|u| u.value.to_string()),
        password_env: e.str(field!(e, password_env)).map(|u| u.value.to_string()),
        from: from.value.to_string(),
        to: to.iter().map(|a| a.value.to_string()).collect(),
    };
    Ok(ChannelConfig {
        name: "email".into(),
        place: "[alerts.email]".into(),
        rules,
        target: ChannelTarget::Email(email),
    })
}

/// `notify_on`, `repeat` (where the channel has it) and `send_recovery`:
/// the keys every alert channel has.
fn read_alert_rules<R: Keys>(
    t: &Table<'_, R>,
    notify_on_field: Field<'_, Strings>,
    repeat: Option<Field<'_, String>>,
    send_recovery: Field<'_, bool>,
) -> Result<AlertRules, ConfigError> {
    let mut notify_on = vec![NotifyOn::Down];
    if let Some(list) = t.str_list(notify_on_field) {
        notify_on.clear();
        for item in list {
            let Some(event) = NotifyOn::from_word(item.value) else {
                let (other, expected) = (item.value, NotifyOn::choices());
                return Err(
                    t.error(&item.span, format!("\"notify_on\": \"{other}\" is not an event (expected {expected})"))
                );
            };
            if !notify_on.contains(&event) {
                notify_on.push(event);
            }
        }
    }
    let repeat = match repeat {
        Some(field) => t.duration(field, true)?.unwrap_or(Duration::from_secs(4 * 3600)),
        None => Duration::ZERO,
    };
    Ok(AlertRules {
        notify_on,
        repeat: (!repeat.is_zero()).then_some(repeat),
        send_recovery: t.bool(send_recovery).unwrap_or(true),
    })
}

fn read_webhook(w: &Table<'_, RawWebhook>) -> Result<Webhook, ConfigError> {
    let url = read_url(w, field!(w, url))?;
    let url = url.ok_or_else(|| w.error_here("missing required key \"url\""))?;
    let format = w
        .parsed(field!(w, format), |s| {
            WebhookFormat::from_word(s)
                .ok_or_else(|| ValueError::not(s, format!("a format (expected {})", WebhookFormat::choices())))
        })?
        .unwrap_or(WebhookFormat::Json);
    Ok(Webhook { url, format, secret_env: w.str(field!(w, secret_env)).map(|s| s.value.to_string()) })
}

fn parse_smtp_url(s: &str) -> Result<(SmtpSecurity, String, u16), ValueError> {
    let url = reqwest::Url::parse(s).map_err(|e| ValueError::not(s, "a URL").because(e))?;
    let (security, default_port) = match url.scheme() {
        "smtp" => (SmtpSecurity::Plain, 25),
        "smtp+starttls" => (SmtpSecurity::StartTls, 587),
        "smtps" => (SmtpSecurity::Tls, 465),
        other => {
            return Err(ValueError::SmtpScheme(other.to_string()));
        }
    };
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| ValueError::NoHost(s.to_string()))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    Ok((security, host, url.port().unwrap_or(default_port)))
}
