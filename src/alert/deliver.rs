//! Delivery: each channel's outbox queue, sent in order.
//!
//! For every configured channel (`email`, `webhook-N`) the worker takes the
//! due messages, sends each through its transport ([`super::email`],
//! [`super::webhook`]) and records the outcome: sent (never sent again),
//! failed (tried again after a capped exponential backoff: 1 s, 2 s, 4 s …
//! 30 s), or — a permanent rejection three times over — given up, counted
//! and logged so it cannot block the queue. Delivery is head-of-line per
//! channel: a recovery never overtakes its DOWN, and one channel's outage
//! never holds another back. The worker wakes when the tracker commits an
//! alert, when the next retry is due, or when the config changes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use crate::config::{Config, Email, Webhook};
use crate::metrics::Metrics;
use crate::store::{NewMessage, Spillover, Store};

use super::{email, webhook};

/// Longest wait between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A permanent rejection is given up after this many attempts.
const GIVE_UP_AFTER: u32 = 3;

/// Delay before attempt `attempts + 1`.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(6)).min(MAX_BACKOFF)
}

/// Why a message was not delivered.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The receiver refused it for good (SMTP 5xx; HTTP 4xx but 408/429).
    pub permanent: bool,
    /// What happened, in words.
    pub why: String,
}

/// One channel's transport.
enum Transport<'c> {
    Email(&'c Email, Result<email::Smtp, email::TransportError>),
    Webhook(&'c Webhook, &'c reqwest::Client),
}

impl Transport<'_> {
    async fn send(&self, message: &NewMessage) -> Result<(), Failure> {
        match self {
            Transport::Email(e, smtp) => email::send(smtp, e, message).await,
            Transport::Webhook(hook, client) => webhook::send(client, hook, message).await,
        }
    }

    /// Where it sends, as logs show it.
    fn target(&self) -> String {
        match self {
            Transport::Email(e, _) => e.smtp_url.clone(),
            Transport::Webhook(hook, _) => webhook::shown(hook),
        }
    }
}

/// One channel: its name and its transport.
struct Channel<'c> {
    name: String,
    transport: Transport<'c>,
}

impl Channel<'_> {
    /// Delivers the alerts the store could not take, oldest first, stopping
    /// at the first failure; true when none of this channel's is left.
    async fn deliver_spillover(&self, spillover: &Spillover, metrics: &Metrics) -> bool {
        loop {
            let next = {
                let queue = spillover.lock().unwrap_or_else(|p| p.into_inner());
                queue.iter().find(|m| m.channel == self.name).cloned()
            };
            let Some(message) = next else { return true };
            let outcome = self.transport.send(&message).await;
            metrics.count_alert(&self.name, &message.event, outcome.is_ok());
            match outcome {
                Ok(()) => {
                    info!(channel = %self.name, event = %message.event, subject = %message.subject, "alert delivered from memory");
                    let mut queue = spillover.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(at) =
                        queue.iter().position(|m| m.channel == message.channel && m.message_id == message.message_id)
                    {
                        queue.remove(at);
                    }
                }
                Err(f) => {
                    warn!(channel = %self.name, to = %self.transport.target(), "alert delivery from memory failed ({}); retrying", f.why);
                    return false;
                }
            }
        }
    }

    /// Tries the due messages in order, stopping at the first that fails;
    /// returns when to look again.
    async fn deliver_due(&self, store: &Store, spillover: &Spillover, metrics: &Metrics) -> Duration {
        if !self.deliver_spillover(spillover, metrics).await {
            return Duration::from_secs(5);
        }
        let now = crate::time::unix(std::time::SystemTime::now());
        let due = match store.due_messages(now, &self.name).await {
            Ok(due) => due,
            Err(e) => {
                warn!("cannot read the outbox: {e}");
                return Duration::from_secs(5);
            }
        };
        for row in due {
            let outcome = self.transport.send(&row.message).await;
            let now = crate::time::unix(std::time::SystemTime::now());
            metrics.count_alert(&self.name, &row.message.event, outcome.is_ok());
            match outcome {
                Ok(()) => {
                    info!(channel = %self.name, outbox = row.id, event = %row.message.event, subject = %row.message.subject, "alert delivered");
                    if let Err(e) = store.mark_sent(row.id, now).await {
                        warn!("sent, but cannot record it: {e}");
                    }
                }
                Err(f) if f.permanent && row.attempts + 1 >= GIVE_UP_AFTER => {
                    error!(channel = %self.name, outbox = row.id, to = %self.transport.target(), "alert rejected for good after {GIVE_UP_AFTER} attempts ({}); the next alerts go on", f.why);
                    if let Err(e) = store.mark_given_up(row.id, now, f.why).await {
                        warn!("cannot record the rejection: {e}");
                    }
                }
                Err(f) => {
                    let delay = backoff(row.attempts);
                    warn!(channel = %self.name, outbox = row.id, to = %self.transport.target(), "alert delivery failed ({}); retrying in {}", f.why, humantime::format_duration(delay));
                    if let Err(e) = store.mark_failed(row.id, now + delay.as_secs() as i64, f.why).await {
                        warn!("cannot record the failure: {e}");
                    }
                    // Head-of-line: nothing later goes out before this one.
                    break;
                }
            }
        }
        match store.pending(&self.name).await {
            Ok((count, next)) => {
                metrics.set_alert_queue(&self.name, count);
                let now = crate::time::unix(std::time::SystemTime::now());
                next.map_or(Duration::from_secs(60), |at| Duration::from_secs((at - now).clamp(0, 60) as u64))
            }
            Err(_) => Duration::from_secs(5),
        }
    }
}

/// Delivers every channel's outbox (and the alerts that could not enter
/// it) until aborted; the channels are served side by side.
pub async fn run(
    store: Store,
    spillover: Spillover,
    mut config: watch::Receiver<Arc<Config>>,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
) {
    let client = webhook::client();
    loop {
        let current = config.borrow_and_update().clone();
        let mut channels: Vec<Channel<'_>> = Vec::new();
        if let Some(e) = &current.alerts.email {
            let smtp = email::transport(e);
            channels.push(Channel { name: email::CHANNEL.into(), transport: Transport::Email(e, smtp) });
        }
        for (i, hook) in current.alerts.webhooks.iter().enumerate() {
            channels.push(Channel { name: webhook::channel(i), transport: Transport::Webhook(hook, &client) });
        }
        let waits =
            futures_util::future::join_all(channels.iter().map(|c| c.deliver_due(&store, &spillover, &metrics))).await;
        let wait = waits.into_iter().min().unwrap_or(Duration::from_secs(3600));
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
