//! E-mail delivery from the outbox, through lettre (smtp://, smtp+starttls://,
//! smtps://; the password comes from the environment).
//!
//! The worker takes due messages from the outbox, sends each, and records
//! the outcome: sent (never sent again) or failed (tried again after a
//! capped exponential backoff: 1 s, 2 s, 4 s … 30 s). It wakes when the
//! incident tracker commits an alert, when the next retry is due, or when
//! the config changes. The Message-ID stored with each alert is stable, so
//! a message resent after a crash between SMTP's "250" and our commit is
//! recognisable as the same one.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use crate::config::{Config, Email, SmtpSecurity};
use crate::metrics::Metrics;
use crate::store::{OutboxRow, Spillover, Store};

/// The channel name in the outbox and the metrics.
pub const CHANNEL: &str = "email";
/// Longest wait between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// Delay before attempt `attempts + 1`.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(6)).min(MAX_BACKOFF)
}

fn transport(email: &Email) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let builder = match email.security {
        SmtpSecurity::Plain => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(email.host.as_str()),
        SmtpSecurity::StartTls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&email.host).map_err(|e| e.to_string())?
        }
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&email.host).map_err(|e| e.to_string())?,
    };
    let mut builder = builder.port(email.port).timeout(Some(SMTP_TIMEOUT));
    if let Some(user) = &email.username {
        let password = match &email.password_env {
            Some(var) => {
                std::env::var(var).map_err(|_| format!("environment variable {var} (password_env) is not set"))?
            }
            None => String::new(),
        };
        builder = builder.credentials(Credentials::new(user.clone(), password));
    }
    Ok(builder.build())
}

fn message(email: &Email, row: &OutboxRow) -> Result<Message, String> {
    let parse = |s: &str| s.parse::<Mailbox>().map_err(|e| format!("bad address {s:?}: {e}"));
    let mut builder = Message::builder().from(parse(&email.from)?);
    for to in &email.to {
        builder = builder.to(parse(to)?);
    }
    builder
        .subject(row.message.subject.clone())
        .message_id(Some(row.message.message_id.clone()))
        .date(crate::time::from_unix(row.message.created_at))
        .multipart(MultiPart::alternative_plain_html(row.message.body_text.clone(), row.message.body_html.clone()))
        .map_err(|e| e.to_string())
}

/// A permanent rejection (SMTP 5xx) is given up after this many attempts,
/// so one unsendable message cannot block the queue for ever.
const GIVE_UP_AFTER: u32 = 3;

/// Delivers the alerts the store could not take, oldest first, stopping at
/// the first failure; true when none is left.
async fn deliver_spillover(spillover: &Spillover, email: &Email, metrics: &Metrics) -> bool {
    loop {
        let Some(next) = spillover.lock().unwrap_or_else(|p| p.into_inner()).front().cloned() else { return true };
        let row = OutboxRow { id: 0, attempts: 0, message: next };
        let outcome = match (transport(email), message(email, &row)) {
            (Ok(t), Ok(m)) => t.send(m).await.map(|_| ()).map_err(|e| e.to_string()),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        metrics.count_alert(CHANNEL, &row.message.event, outcome.is_ok());
        match outcome {
            Ok(()) => {
                info!(event = %row.message.event, subject = %row.message.subject, "alert e-mailed from memory");
                spillover.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
            }
            Err(why) => {
                warn!(smtp = %email.smtp_url, "alert delivery from memory failed ({why}); retrying");
                return false;
            }
        }
    }
}

/// Tries the due messages in order, stopping at the first that fails;
/// returns when to look again.
async fn deliver_due(store: &Store, spillover: &Spillover, email: &Email, metrics: &Metrics) -> Duration {
    if !deliver_spillover(spillover, email, metrics).await {
        return Duration::from_secs(5);
    }
    let now = crate::time::unix(std::time::SystemTime::now());
    let due = match store.due_messages(now, CHANNEL).await {
        Ok(due) => due,
        Err(e) => {
            warn!("cannot read the outbox: {e}");
            return Duration::from_secs(5);
        }
    };
    if !due.is_empty() {
        let transport = transport(email);
        for row in due {
            let outcome = match (&transport, message(email, &row)) {
                (Ok(t), Ok(m)) => t.send(m).await.map(|_| ()).map_err(|e| (e.is_permanent(), e.to_string())),
                (Err(e), _) => Err((false, e.clone())),
                // A message that cannot even be built never will be.
                (_, Err(e)) => Err((true, e)),
            };
            let now = crate::time::unix(std::time::SystemTime::now());
            match outcome {
                Ok(()) => {
                    metrics.count_alert(CHANNEL, &row.message.event, true);
                    info!(outbox = row.id, event = %row.message.event, subject = %row.message.subject, "alert e-mailed");
                    if let Err(e) = store.mark_sent(row.id, now).await {
                        warn!("sent, but cannot record it: {e}");
                    }
                }
                Err((permanent, why)) if permanent && row.attempts + 1 >= GIVE_UP_AFTER => {
                    metrics.count_alert(CHANNEL, &row.message.event, false);
                    error!(outbox = row.id, smtp = %email.smtp_url, "alert rejected for good after {GIVE_UP_AFTER} attempts ({why}); the next alerts go on");
                    if let Err(e) = store.mark_given_up(row.id, now, why).await {
                        warn!("cannot record the rejection: {e}");
                    }
                }
                Err((_, why)) => {
                    metrics.count_alert(CHANNEL, &row.message.event, false);
                    let delay = backoff(row.attempts);
                    warn!(outbox = row.id, smtp = %email.smtp_url, "alert delivery failed ({why}); retrying in {}", humantime::format_duration(delay));
                    if let Err(e) = store.mark_failed(row.id, now + delay.as_secs() as i64, why).await {
                        warn!("cannot record the failure: {e}");
                    }
                    // Head-of-line: nothing later goes out before this one.
                    break;
                }
            }
        }
    }
    match store.pending(CHANNEL).await {
        Ok((count, next)) => {
            metrics.set_alert_queue(CHANNEL, count);
            let now = crate::time::unix(std::time::SystemTime::now());
            next.map_or(Duration::from_secs(60), |at| Duration::from_secs((at - now).clamp(0, 60) as u64))
        }
        Err(_) => Duration::from_secs(5),
    }
}

/// Delivers the outbox (and the alerts that could not enter it) until aborted.
pub async fn run(
    store: Store,
    spillover: Spillover,
    mut config: watch::Receiver<Arc<Config>>,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
) {
    loop {
        let current = config.borrow_and_update().clone();
        let wait = match &current.alerts.email {
            Some(email) => deliver_due(&store, &spillover, email, &metrics).await,
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
            changed = config.changed() => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps_at_half_a_minute() {
        let delays: Vec<u64> = (0..9).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30, 30, 30]);
    }
}
