//! Delivery: each channel's outbox queue, sent in order.
//!
//! For every configured channel (`email`, `webhook-N`, `pagerduty-N`,
//! `ntfy-N`) a task takes the due messages, sends each through its
//! [`Channel`] and records the outcome: sent (never sent again),
//! failed (tried again after a capped exponential backoff: 1 s, 2 s, 4 s …
//! 30 s), or — a permanent rejection three times over — given up, counted
//! and logged so it cannot block the queue. Every attempt has a deadline
//! ([`ATTEMPT_DEADLINE`]); a channel that delivers nothing for a minute
//! while alerts wait is named by `/healthz`. Delivery is head-of-line per
//! channel: a recovery never overtakes its DOWN, and one channel's outage
//! never holds another back (each channel is its own task). A task wakes
//! when the tracker commits an alert or when its next retry is due.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use super::ChannelSet;
use super::channel::{Channel, Failure};
use crate::config::{ChannelConfig, Config};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::store::{NewMessage, Spillover, Store};

/// Longest wait between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Longest one delivery attempt may take, whatever the channel: an SMTP
/// server that never greets or never answers after DATA (lettre bounds
/// only the connect), a receiver that accepts and never replies. Cut off,
/// the attempt is a transient failure and the channel backs off.
pub const ATTEMPT_DEADLINE: Duration = Duration::from_secs(30);

/// A permanent rejection is given up after this many attempts.
const GIVE_UP_AFTER: u32 = 3;

/// Delay before attempt `attempts + 1`.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(6)).min(MAX_BACKOFF)
}

/// Delivers one channel's queue: the alerts the store could not take,
/// then the outbox.
struct Courier {
    channel: Arc<dyn Channel>,
    health: Arc<Health>,
}

impl Courier {
    /// One attempt, under [`ATTEMPT_DEADLINE`].
    async fn attempt(&self, message: &NewMessage) -> Result<(), Failure> {
        match tokio::time::timeout(ATTEMPT_DEADLINE, self.channel.send(message)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                Err(Failure::transient(format!("no answer within {}", humantime::format_duration(ATTEMPT_DEADLINE))))
            }
        }
    }

    /// This channel's alerts waiting in memory and in the outbox, shown in
    /// `chatpulse_alert_queue_length` and, while any wait, to `/healthz`.
    async fn show_queue(&self, store: &Store, spillover: &Spillover, metrics: &Metrics) -> Option<Option<i64>> {
        let name = self.channel.name();
        let in_memory =
            spillover.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|m| m.channel == name).count();
        let (count, next) = store.pending(name).await.ok()?;
        let waiting = count + in_memory;
        metrics.set_alert_queue(name, waiting);
        if waiting == 0 {
            self.health.queue_empty(name);
        } else {
            self.health.alerts_waiting(name, crate::time::unix(std::time::SystemTime::now()));
        }
        Some(next)
    }

    /// An alert went out: counted, and the channel is not stalled.
    fn delivered(&self, metrics: &Metrics, event: &str) {
        metrics.count_alert(self.channel.name(), event, true);
        self.health.alert_delivered(self.channel.name(), crate::time::unix(std::time::SystemTime::now()));
    }
    /// Delivers the alerts the store could not take, oldest first, stopping
    /// at the first failure; true when none of this channel's is left.
    async fn deliver_spillover(&self, spillover: &Spillover, metrics: &Metrics) -> bool {
        loop {
            let next = {
                let queue = spillover.lock().unwrap_or_else(|p| p.into_inner());
                queue.iter().find(|m| m.channel == self.channel.name()).cloned()
            };
            let Some(message) = next else { return true };
            match self.attempt(&message).await {
                Ok(()) => {
                    self.delivered(metrics, &message.event);
                    info!(channel = %self.channel.name(), event = %message.event, subject = %message.subject, "alert delivered from memory");
                    let mut queue = spillover.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(at) =
                        queue.iter().position(|m| m.channel == message.channel && m.message_id == message.message_id)
                    {
                        queue.remove(at);
                    }
                }
                Err(f) => {
                    metrics.count_alert(self.channel.name(), &message.event, false);
                    warn!(channel = %self.channel.name(), to = %self.channel.target(), "alert delivery from memory failed ({}); retrying", f.why);
                    return false;
                }
            }
        }
    }

    /// Tries the due messages in order, stopping at the first that fails;
    /// returns when to look again.
    async fn deliver_due(&self, store: &Store, spillover: &Spillover, metrics: &Metrics) -> Duration {
        self.show_queue(store, spillover, metrics).await;
        if !self.deliver_spillover(spillover, metrics).await {
            return Duration::from_secs(5);
        }
        let now = crate::time::unix(std::time::SystemTime::now());
        let due = match store.due_messages(now, self.channel.name()).await {
            Ok(due) => due,
            Err(e) => {
                warn!("cannot read the outbox: {e}");
                return Duration::from_secs(5);
            }
        };
        for row in due {
            let outcome = self.attempt(&row.message).await;
            let now = crate::time::unix(std::time::SystemTime::now());
            if outcome.is_err() {
                metrics.count_alert(self.channel.name(), &row.message.event, false);
            }
            match outcome {
                Ok(()) => {
                    self.delivered(metrics, &row.message.event);
                    info!(channel = %self.channel.name(), outbox = row.id, event = %row.message.event, subject = %row.message.subject, "alert delivered");
                    if let Err(e) = store.mark_sent(row.id, now).await {
                        warn!("sent, but cannot record it: {e}");
                    }
                }
                Err(f) if f.permanent && row.attempts + 1 >= GIVE_UP_AFTER => {
                    error!(channel = %self.channel.name(), outbox = row.id, to = %self.channel.target(), "alert rejected for good after {GIVE_UP_AFTER} attempts ({}); the next alerts go on", f.why);
                    if let Err(e) = store.mark_given_up(row.id, now, f.why).await {
                        warn!("cannot record the rejection: {e}");
                    }
                }
                Err(f) => {
                    let delay = backoff(row.attempts);
                    warn!(channel = %self.channel.name(), outbox = row.id, to = %self.channel.target(), "alert delivery failed ({}); retrying in {}", f.why, humantime::format_duration(delay));
                    if let Err(e) = store.mark_failed(row.id, now + delay.as_secs() as i64, f.why).await {
                        warn!("cannot record the failure: {e}");
                    }
                    // Head-of-line: nothing later goes out before this one.
                    break;
                }
            }
        }
        match self.show_queue(store, spillover, metrics).await {
            Some(next) => {
                let now = crate::time::unix(std::time::SystemTime::now());
                next.map_or(Duration::from_secs(60), |at| Duration::from_secs((at - now).clamp(0, 60) as u64))
            }
            None => Duration::from_secs(5),
        }
    }
}

/// Delivers every channel's outbox (and the alerts that could not enter
/// it) until aborted. Each channel runs as its own task, so a channel that
/// hangs holds back nothing but its own queue. On a config change the
/// channels whose config is unchanged keep running; a removed one stops
/// (its queue stays in the outbox), a changed one restarts.
pub async fn run(
    store: Store,
    spillover: Spillover,
    mut config: watch::Receiver<Arc<Config>>,
    metrics: Arc<Metrics>,
    wake: Arc<Notify>,
    health: Arc<Health>,
) {
    let (kick, _) = watch::channel(0u64);
    let mut running: HashMap<String, (ChannelConfig, Task)> = HashMap::new();
    loop {
        let current = config.borrow_and_update().clone();
        match ChannelSet::new(&current.alerts) {
            Ok(set) => {
                let wanted: Vec<&ChannelConfig> = set.iter().map(|c| c.config()).collect();
                running.retain(|name, (was, _)| {
                    let keep = wanted.iter().any(|w| w.name == *name && *w == was);
                    if !keep {
                        // A removed channel holds nothing (a changed one restarts).
                        health.queue_empty(name);
                    }
                    keep
                });
                for channel in set.iter() {
                    if running.contains_key(channel.name()) {
                        continue;
                    }
                    let courier = Courier { channel: channel.clone(), health: health.clone() };
                    let task = Task(tokio::spawn(serve(
                        courier,
                        store.clone(),
                        spillover.clone(),
                        metrics.clone(),
                        kick.subscribe(),
                    )));
                    running.insert(channel.name().to_string(), (channel.config().clone(), task));
                }
            }
            Err(e) => error!("cannot create the alert channels' HTTP client: {e}; delivery waits for the next reload"),
        }
        loop {
            tokio::select! {
                () = wake.notified() => kick.send_modify(|n| *n += 1),
                changed = config.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
    }
}

/// A channel's task, stopped when dropped (a removed channel, a restart of
/// delivery, the end of `run`).
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One channel's loop: deliver what is due, then wait for a new alert or
/// the next retry.
async fn serve(
    courier: Courier,
    store: Store,
    spillover: Spillover,
    metrics: Arc<Metrics>,
    mut kick: watch::Receiver<u64>,
) {
    loop {
        let wait = courier.deliver_due(&store, &spillover, &metrics).await;
        tokio::select! {
            changed = kick.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(wait) => {}
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
