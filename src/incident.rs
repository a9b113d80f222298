//! Incidents: derived from service status changes, grouped by root cause,
//! and turned into alerts in the outbox.
//!
//! A service entering `down` or `degraded` opens an incident (or continues
//! the one still open from before a restart, without a second alert); `up`
//! ends it; `unknown` neither opens nor ends one. Services that go down
//! within `group_wait` of each other with the same root cause key form one
//! group and one alert, a typed [`Notice`] that the channels render
//! (this module never renders or delivers). An alert decision is committed to the store before
//! `group_wait` begins (a kill during the wait loses nothing: the groups are
//! re-formed after the restart) and is always carried out: a service that
//! recovers while its DOWN waits gets the DOWN, then the recovery. Alerts
//! are rendered (one message per channel that takes them), committed to the outbox with the incidents marked as
//! notified and the decisions settled (one transaction), and only then
//! handed to delivery — so a restart neither loses nor repeats one. While
//! the monitor is offline nothing is alerted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::alerting::{AlertMachine, Decision, Policy};
use crate::config::Config;
pub use crate::notice::{AlertEvent, ServiceSnapshot};
use crate::notice::{Channels, Member, Notice, NoticeKind};
use crate::store::{Incident, NewIncident, Store};
use crate::verdict::ServiceStatus;

/// What the tracker is told.
#[derive(Debug, Clone)]
pub enum TrackerInput {
    /// A service's status (or cause) changed.
    Service(ServiceSnapshot),
    /// The monitor went offline or came back.
    Online(bool),
    /// The config now has these services (after a reload): incidents of
    /// the others end, without alerts.
    Services(Vec<String>),
}

/// Alerts waiting for `group_wait` to pass.
struct Pending {
    event: AlertEvent,
    key: String,
    deadline: Instant,
    group: i64,
    members: Vec<(Incident, ServiceSnapshot)>,
}

/// Tracks incidents; run with [`Tracker::run`].
pub struct Tracker {
    store: Store,
    config: watch::Receiver<Arc<Config>>,
    open: HashMap<String, Incident>,
    latest: HashMap<String, ServiceSnapshot>,
    pending: Vec<Pending>,
    online: bool,
    delivery: Arc<Notify>,
    /// Which alerts status changes call for (shared with `replay`).
    machine: AlertMachine,
    /// The last incident that ended, per service (a flapping episode that
    /// ends with the service up is told as its recovery).
    last_ended: HashMap<String, Incident>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Alerts the store could not take, for delivery from memory.
    spillover: crate::store::Spillover,
    /// Ids for incidents the store could not record (kept in memory only).
    next_memory_id: i64,
    /// Renders a decided alert for each channel that takes it.
    channels: Arc<dyn Channels>,
    /// The maintenance window each service is in, as last seen by the tick.
    in_maintenance: HashMap<String, (i64, i64)>,
    /// When each (incident, channel) was last reminded (else the incident's
    /// stored `last_reminder_at`): each channel keeps its own `repeat`.
    reminded: HashMap<(i64, String), i64>,
}

/// Incidents the store could not record get ids from here on, above any
/// the store hands out, and different for every run: the run's start in
/// Unix seconds, times 1,000. Their Message-IDs (`<down-ID-…>`) are then
/// unique across runs whatever the disk does — receivers that drop a
/// repeated Message-ID drop no outage — unless two runs start within the
/// same second or one opens 1,000 incidents from memory.
fn memory_ids(started: std::time::SystemTime) -> i64 {
    1_000_000_000_000 + crate::time::unix(started) * 1000
}

/// How often reminders are considered.
const REMINDER_CHECK: Duration = Duration::from_secs(5);

impl Tracker {
    /// A tracker continuing the incidents open in `store`. `channels`
    /// renders its alerts; `delivery` is woken whenever one is committed.
    pub async fn new(
        store: Store,
        config: watch::Receiver<Arc<Config>>,
        channels: Arc<dyn Channels>,
        delivery: Arc<Notify>,
    ) -> Result<Tracker, crate::store::StoreError> {
        let open = store.open_incidents().await?.into_iter().map(|i| (i.service.clone(), i)).collect::<HashMap<_, _>>();
        if !open.is_empty() {
            info!(incidents = open.len(), "continuing incidents open before the restart");
        }
        let ids: Vec<String> = config.borrow().services.iter().map(|s| s.id.clone()).collect();
        let decided = store.pending_alerts().await?;
        let mut machine = AlertMachine::new(Policy::from_config(&config.borrow()));
        for incident in open.values() {
            // Told, or decided and still pending: either way, not again.
            let pending = decided
                .iter()
                .filter(|p| p.incident.id == incident.id)
                .filter_map(|p| AlertEvent::from_word(&p.event).and_then(AlertEvent::announces));
            let told = incident.notified.into_iter().chain(pending).max_by_key(|s| *s == ServiceStatus::Down);
            machine.resume(&incident.service, incident.status, told);
        }
        let mut tracker = Tracker {
            store,
            config,
            open,
            latest: HashMap::new(),
            pending: Vec::new(),
            online: true,
            delivery,
            machine,
            last_ended: HashMap::new(),
            metrics: None,
            spillover: Default::default(),
            next_memory_id: memory_ids(std::time::SystemTime::now()),
            channels,
            in_maintenance: HashMap::new(),
            reminded: HashMap::new(),
        };
        tracker.reform(decided);
        tracker.retain_services(&ids).await;
        Ok(tracker)
    }

    /// Re-forms the groups decided before a restart, each waiting out what
    /// was left of its `group_wait`.
    fn reform(&mut self, decided: Vec<crate::store::PendingAlert>) {
        if decided.is_empty() {
            return;
        }
        info!(alerts = decided.len(), "alerts decided before the restart are still to be sent");
        let config = self.config.borrow().clone();
        let now = crate::time::unix(std::time::SystemTime::now());
        for p in decided {
            let Some(event) = AlertEvent::from_word(&p.event) else {
                error!(event = %p.event, incident = p.incident.id, "a pending alert with an unknown event word is dropped");
                continue;
            };
            let left = (p.decided_at + config.alerts.group_wait.as_secs() as i64 - now).max(0);
            let deadline = Instant::now() + Duration::from_secs(left as u64);
            let name = config.services.iter().find(|s| s.id == p.incident.service).map(|s| s.name.clone());
            let mut snapshot = ServiceSnapshot::placeholder(&p.incident);
            if let Some(name) = name {
                snapshot.name = name;
            }
            match self.pending.iter_mut().find(|g| g.event == event && g.key == p.key && g.group == p.group) {
                Some(g) => g.members.push((p.incident, snapshot)),
                None => self.pending.push(Pending {
                    event,
                    key: p.key,
                    deadline,
                    group: p.group,
                    members: vec![(p.incident, snapshot)],
                }),
            }
        }
    }

    /// Where alerts go when the store cannot take them (shared with delivery).
    pub fn spillover(&self) -> crate::store::Spillover {
        self.spillover.clone()
    }

    /// Reports flapping in `metrics` too.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Tracker {
        self.metrics = Some(metrics);
        self
    }

    /// Runs until `input` closes, then sends what is pending.
    pub async fn run(mut self, mut input: mpsc::UnboundedReceiver<TrackerInput>) {
        let mut reminders = tokio::time::interval(REMINDER_CHECK);
        loop {
            let next = self.pending.iter().map(|p| p.deadline).min();
            tokio::select! {
                message = input.recv() => match message {
                    Some(TrackerInput::Service(snapshot)) => {
                        self.service(snapshot).await;
                        // A group whose wait is already over (group_wait = 0)
                        // goes out before the next input is looked at, not
                        // whenever the timer branch happens to be polled.
                        self.flush_pending(false).await;
                    }
                    Some(TrackerInput::Online(online)) => self.online = online,
                    Some(TrackerInput::Services(ids)) => self.retain_services(&ids).await,
                    None => {
                        self.flush_pending(true).await;
                        return;
                    }
                },
                () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => self.flush_pending(false).await,
                _ = reminders.tick() => {
                    self.maintenance().await;
                    self.reminders().await;
                    self.settle_flapping().await;
                }
            }
        }
    }

    /// Ends the incidents of services no longer configured (no alert: the
    /// operator removed them, they did not recover).
    async fn retain_services(&mut self, ids: &[String]) {
        let now = crate::time::unix(std::time::SystemTime::now());
        let gone: Vec<Incident> = self.open.values().filter(|i| !ids.contains(&i.service)).cloned().collect();
        for incident in gone {
            if let Err(e) = self.store.close_incident(incident.id, now, None).await {
                warn!("{e}");
            }
            info!(service = %incident.service, incident = incident.id, "incident ended: the service left the config");
            self.open.remove(&incident.service);
            self.latest.remove(&incident.service);
            self.machine.forget(&incident.service);
        }
        let dropped: Vec<(i64, String)> = self
            .pending
            .iter()
            .flat_map(|p| p.members.iter().map(move |(i, _)| (i, p.event)))
            .filter(|(i, _)| !ids.contains(&i.service))
            .map(|(i, event)| (i.id, event.as_str().to_string()))
            .collect();
        if !dropped.is_empty()
            && let Err(e) = self.store.drop_pending(dropped).await
        {
            warn!("{e}");
        }
        self.unqueue(|i| !ids.contains(&i.service));
    }

    /// Takes the incidents matching `drop` out of the pending groups (and
    /// the groups left empty); true if any was pending.
    fn unqueue(&mut self, drop: impl Fn(&Incident) -> bool) -> bool {
        let mut found = false;
        for p in &mut self.pending {
            p.members.retain(|(i, _)| {
                let hit = drop(i);
                found |= hit;
                !hit
            });
        }
        self.pending.retain(|p| !p.members.is_empty());
        found
    }

    async fn service(&mut self, snapshot: ServiceSnapshot) {
        let config = self.config.borrow().clone();
        self.machine.set_policy(Policy::from_config(&config));
        self.latest.insert(snapshot.id.clone(), snapshot.clone());
        // In maintenance nothing is told (or opened): the window's end
        // looks at the service afresh.
        if let Some(span) = crate::maintenance::active(&config.maintenance, &snapshot.id, snapshot.at) {
            if self.in_maintenance.get(&snapshot.id) != Some(&span) {
                self.in_maintenance.insert(snapshot.id.clone(), span);
                self.show_maintenance(&snapshot.id);
                self.record_windows(vec![(snapshot.id.clone(), span.0, span.1)]).await;
            }
            return;
        }
        let decision = if snapshot.cause.is_some() || snapshot.status == ServiceStatus::Up {
            self.machine.observe(&snapshot.id, snapshot.status, snapshot.at)
        } else {
            None
        };
        if let Some(Decision::Flapping { changes, episode }) = decision {
            self.start_flapping(&config, &snapshot, changes, episode).await;
        }
        match snapshot.status {
            ServiceStatus::Down | ServiceStatus::Degraded => self.failing(&config, snapshot, decision).await,
            ServiceStatus::Up => self.recovered(&config, snapshot, decision).await,
            ServiceStatus::Unknown => {}
        }
    }

    async fn failing(&mut self, config: &Config, snapshot: ServiceSnapshot, decision: Option<Decision>) {
        let Some(cause) = snapshot.cause.clone() else { return };
        let incident = match self.open.get(&snapshot.id).cloned() {
            Some(mut incident) => {
                let escalates = snapshot.status == ServiceStatus::Down && incident.status != ServiceStatus::Down;
                let cause_moved = incident.cause.as_ref() != Some(&cause.cause);
                // Once an alert is out, the incident keeps the cause it told.
                if escalates || (cause_moved && incident.notified.is_none()) {
                    let status = if escalates { ServiceStatus::Down } else { incident.status };
                    let updated = self.store.escalate_incident(incident.id, status, &cause.cause).await;
                    if let Err(e) = updated {
                        warn!("{e}");
                    }
                    incident.status = status;
                    incident.cause = Some(cause.cause.clone());
                    self.open.insert(snapshot.id.clone(), incident.clone());
                }
                incident
            }
            None => {
                let new = NewIncident {
                    service: snapshot.id.clone(),
                    status: snapshot.status,
                    started_at: snapshot.at,
                    cause: cause.cause.clone(),
                };
                let alert = match decision {
                    Some(Decision::Down) => Some(AlertEvent::Down.as_str()),
                    Some(Decision::Degraded) => Some(AlertEvent::Degraded.as_str()),
                    _ => None,
                };
                let id = match self.store.open_incident(new.clone(), alert).await {
                    Ok(id) => id,
                    Err(e) => {
                        // The store cannot be written: the incident lives in
                        // memory, and its alert goes out all the same.
                        self.next_memory_id += 1;
                        warn!("cannot record the incident of {} ({e}); alerting from memory", snapshot.id);
                        self.next_memory_id
                    }
                };
                info!(service = %snapshot.id, incident = id, cause = %cause.cause.summary, "incident opened");
                let incident = Incident {
                    id,
                    service: new.service,
                    status: new.status,
                    started_at: new.started_at,
                    ended_at: None,
                    cause: Some(new.cause),
                    group_id: None,
                    notified: None,
                    last_reminder_at: None,
                };
                self.open.insert(snapshot.id.clone(), incident.clone());
                incident
            }
        };
        let event = match decision {
            Some(Decision::Down) => AlertEvent::Down,
            Some(Decision::Degraded) => AlertEvent::Degraded,
            // Nothing new to tell (or flapping: recorded, not told).
            _ => return,
        };
        // Still waiting in another pending group (e.g. degraded → down)?
        // Move it to the group of the worse event.
        if self.unqueue(|i| i.id == incident.id)
            && let Err(e) = self.store.drop_pending(vec![(incident.id, AlertEvent::Degraded.as_str().into())]).await
        {
            warn!("{e}");
        }
        self.join(config, event, cause.cause.key().to_string(), incident, snapshot).await;
    }

    async fn recovered(&mut self, config: &Config, snapshot: ServiceSnapshot, decision: Option<Decision>) {
        let Some(incident) = self.open.remove(&snapshot.id) else { return };
        // A decided DOWN still waiting for group_wait goes out all the same
        // (decided alerts are never dropped); the recovery follows it.
        let recover = decision == Some(Decision::Recovered);
        let group = incident.group_id.unwrap_or(incident.id);
        let key = format!("group-{group}");
        let recovery = recover.then(|| (key.clone(), group));
        if let Err(e) = self.store.close_incident(incident.id, snapshot.at, recovery).await {
            warn!("cannot close the incident of {}: {e}", snapshot.id);
        }
        info!(service = %snapshot.id, incident = incident.id, "incident ended");
        let mut ended_copy = incident.clone();
        ended_copy.ended_at = Some(snapshot.at);
        self.last_ended.insert(snapshot.id.clone(), ended_copy);
        if recover {
            let mut ended = incident;
            ended.ended_at = Some(snapshot.at);
            // What was told (or is still waiting to be) decides which
            // channels hear of the recovery.
            let waiting = self.pending.iter().find(|p| p.members.iter().any(|(i, _)| i.id == ended.id));
            ended.notified = ended.notified.or(match waiting.map(|p| p.event) {
                Some(AlertEvent::Degraded) => Some(ServiceStatus::Degraded),
                Some(_) => Some(ServiceStatus::Down),
                None => None,
            });
            self.join(config, AlertEvent::Recovered, key, ended, snapshot).await;
        }
    }

    /// Adds an incident to the pending group of (event, key), or starts one.
    async fn join(
        &mut self,
        config: &Config,
        event: AlertEvent,
        key: String,
        mut incident: Incident,
        snapshot: ServiceSnapshot,
    ) {
        let now = Instant::now();
        // A group gathers different services failing for one cause; a new
        // incident of a service already in it (it recovered and failed
        // again within group_wait) starts a group of its own.
        let joinable = |p: &Pending| {
            p.event == event
                && p.key == key
                && p.deadline > now
                && !p.members.iter().any(|(i, _)| i.service == incident.service && i.id != incident.id)
        };
        let group = match self.pending.iter_mut().find(|p| joinable(p)) {
            Some(p) => {
                let group = p.group;
                incident.group_id = Some(incident.group_id.unwrap_or(group));
                // Re-formed after a restart and decided again: once only.
                p.members.retain(|(i, _)| i.id != incident.id);
                p.members.push((incident.clone(), snapshot));
                group
            }
            None => {
                let group =
                    if event == AlertEvent::Recovered { incident.group_id.unwrap_or(incident.id) } else { incident.id };
                incident.group_id = Some(incident.group_id.unwrap_or(group));
                self.pending.push(Pending {
                    event,
                    key: key.clone(),
                    deadline: now + config.alerts.group_wait,
                    group,
                    members: vec![(incident.clone(), snapshot)],
                });
                group
            }
        };
        if event != AlertEvent::Recovered {
            if let Err(e) = self.store.set_group(incident.id, group).await {
                warn!("{e}");
            }
            if let Some(open) = self.open.get_mut(&incident.service) {
                open.group_id = Some(group);
            }
        }
        let decided_at = crate::time::unix(std::time::SystemTime::now());
        if let Err(e) = self.store.add_pending(incident.id, event.as_str().into(), key, group, decided_at).await {
            warn!("cannot record the alert decision (it is still sent from memory): {e}");
        }
    }

    /// Sends the pending groups whose `group_wait` has passed (all of them
    /// when `all`).
    async fn flush_pending(&mut self, all: bool) {
        let now = Instant::now();
        let (due, later): (Vec<Pending>, Vec<Pending>) =
            std::mem::take(&mut self.pending).into_iter().partition(|p| all || p.deadline <= now);
        self.pending = later;
        for group in due {
            if !self.online && group.event != AlertEvent::Recovered {
                warn!(event = group.event.as_str(), "alert suppressed: the monitor is offline");
                let decisions = group.members.iter().map(|(i, _)| (i.id, group.event.as_str().to_string())).collect();
                if let Err(e) = self.store.drop_pending(decisions).await {
                    warn!("{e}");
                }
                continue;
            }
            self.send(group.event, group.group, group.members, None).await;
        }
    }

    /// Renders and commits one alert about `members` (a reminder: for the
    /// one channel `reminder` names, with its sequence number).
    async fn send(
        &mut self,
        event: AlertEvent,
        group: i64,
        members: Vec<(Incident, ServiceSnapshot)>,
        reminder: Option<(String, u64)>,
    ) {
        let config = self.config.borrow().clone();
        let now = crate::time::unix(std::time::SystemTime::now());
        let members: Vec<Member> =
            members.into_iter().map(|(incident, snapshot)| Member { incident, snapshot }).collect();
        // One Message-ID per incident event, unique across stores:
        // <event-incident-seq-STOREID@vantage>, the incident being the
        // group's first (a recovery: the first incident it reports, since
        // services of one group may recover at different times) and seq the
        // reminder's number (1 otherwise).
        let incident = match event {
            AlertEvent::Recovered => members.iter().map(|m| m.incident.id).min().unwrap_or(group),
            _ => group,
        };
        let seq = reminder.as_ref().map_or(1, |(_, n)| *n);
        let level = match event {
            AlertEvent::Down | AlertEvent::Reminder => Some(ServiceStatus::Down),
            AlertEvent::Degraded => Some(ServiceStatus::Degraded),
            AlertEvent::Recovered | AlertEvent::Flapping => None,
        };
        let marks: Vec<(i64, ServiceStatus)> =
            level.map(|l| members.iter().map(|m| (m.incident.id, l)).collect()).unwrap_or_default();
        let reminder_at = (event != AlertEvent::Recovered && event != AlertEvent::Degraded).then_some(now);
        let settled: Vec<i64> =
            if reminder.is_some() { Vec::new() } else { members.iter().map(|m| m.incident.id).collect() };
        let only = reminder.map(|(channel, _)| channel);
        if let Some(channel) = &only {
            for m in &members {
                self.reminded.insert((m.incident.id, channel.clone()), now);
            }
        }
        let ids: Vec<(String, i64)> = members.iter().map(|m| (m.incident.service.clone(), m.incident.id)).collect();
        let (count, is_reminder) = (ids.len(), only.is_some());
        // Reminders and recoveries follow the group's DOWN (its DEGRADED
        // when no member was told down): the first alert's own Message-ID.
        let thread = matches!(event, AlertEvent::Reminder | AlertEvent::Recovered).then(|| {
            let told_down = members.iter().any(|m| m.incident.notified == Some(ServiceStatus::Down));
            let first =
                if told_down || event == AlertEvent::Reminder { AlertEvent::Down } else { AlertEvent::Degraded };
            self.message_id(&config, first.as_str(), group, 1)
        });
        let notice = Notice {
            message_id: self.message_id(&config, event.as_str(), incident, seq),
            kind: NoticeKind::Incident { event, group, members },
            at: now,
            only,
            thread,
        };
        let messages = self.channels.render(&notice, &config);
        let queued = self.commit(event, messages, marks, reminder_at, settled).await;
        if queued.is_some() {
            for (service, id) in ids {
                if let Some(open) = self.open.get_mut(&service).filter(|o| o.id == id) {
                    if level.is_some() {
                        open.notified = level;
                    }
                    // A channel's reminder moves only that channel's clock.
                    if reminder_at.is_some() && !is_reminder {
                        open.last_reminder_at = reminder_at;
                    }
                }
            }
        }
        info!(event = event.as_str(), services = count, channels = queued.unwrap_or(0), "alert decided");
    }

    /// `<event-incident-seq-STOREID@vantage.chatpulse>`.
    fn message_id(&self, config: &Config, event: &str, incident: i64, seq: u64) -> String {
        format!("<{event}-{incident}-{seq}-{}@{}.chatpulse>", self.store.id(), vantage_word(&config.monitor.vantage))
    }

    /// Commits the rendered messages with the incidents' marks and settled
    /// decisions in one transaction (or, when the store cannot take them,
    /// keeps the messages for delivery from memory); wakes delivery.
    /// Returns how many messages were queued, None if none could be.
    async fn commit(
        &mut self,
        event: AlertEvent,
        messages: Vec<crate::store::NewMessage>,
        marks: Vec<(i64, ServiceStatus)>,
        reminder_at: Option<i64>,
        settled: Vec<i64>,
    ) -> Option<usize> {
        let copies = messages.clone();
        match self.store.enqueue(event.as_str(), messages, marks, reminder_at, settled).await {
            Ok(0) if !copies.is_empty() => {
                info!("alert already queued before; not queued twice");
                Some(0)
            }
            Ok(queued) => {
                if queued > 0 {
                    self.delivery.notify_one();
                }
                Some(queued)
            }
            Err(e) => {
                warn!("cannot queue the alert in the store ({e}); it is delivered from memory");
                let n = copies.len();
                self.spillover.lock().unwrap_or_else(|p| p.into_inner()).extend(copies);
                self.delivery.notify_one();
                Some(n)
            }
        }
    }

    /// The service just started flapping: its pending alerts are cancelled
    /// and one FLAPPING alert goes out for it alone, at once.
    async fn start_flapping(&mut self, config: &Config, snapshot: &ServiceSnapshot, changes: usize, episode: u64) {
        let id = snapshot.id.clone();
        let cancelled: Vec<(i64, String)> = self
            .pending
            .iter()
            .flat_map(|p| p.members.iter().map(move |(i, _)| (i, p.event)))
            .filter(|(i, _)| i.service == id)
            .map(|(i, event)| (i.id, event.as_str().to_string()))
            .collect();
        self.unqueue(|i| i.service == id);
        if !cancelled.is_empty()
            && let Err(e) = self.store.drop_pending(cancelled).await
        {
            warn!("{e}");
        }
        if let Some(m) = &self.metrics {
            m.set_flapping(&id, true);
        }
        warn!(service = %id, changes, "service is flapping: its alerts are held back until it holds one status");
        if !self.online {
            return;
        }
        let incident = self.open.get(&id).or_else(|| self.last_ended.get(&id)).cloned();
        let incident_id = incident.as_ref().map_or(0, |i| i.id);
        let member =
            Member { incident: incident.unwrap_or_else(|| placeholder_incident(snapshot)), snapshot: snapshot.clone() };
        let notice = Notice {
            message_id: self.message_id(config, AlertEvent::Flapping.as_str(), incident_id, episode),
            kind: NoticeKind::Flapping { member: Box::new(member), changes, window: config.alerts.flap_window },
            at: crate::time::unix(std::time::SystemTime::now()),
            only: None,
            thread: None,
        };
        let messages = self.channels.render(&notice, config);
        if messages.is_empty() {
            return;
        }
        if let Some(n) = self.commit(AlertEvent::Flapping, messages, Vec::new(), None, Vec::new()).await {
            info!(channels = n, "flapping alert queued");
        }
    }

    /// Services that have held one status for `flap_window` stop flapping,
    /// with one alert for the status they hold (a recovery if up).
    async fn settle_flapping(&mut self) {
        let config = self.config.borrow().clone();
        let now = crate::time::unix(std::time::SystemTime::now());
        for (id, decision) in self.machine.settle(now) {
            if let Some(m) = &self.metrics {
                m.set_flapping(&id, false);
            }
            info!(service = %id, "service no longer flapping");
            let Some(snapshot) = self.latest.get(&id).cloned() else { continue };
            match decision {
                Decision::Down | Decision::Degraded => self.failing(&config, snapshot, Some(decision)).await,
                Decision::Recovered => {
                    if let Some(ended) = self.last_ended.get(&id).cloned() {
                        let key = format!("group-{}", ended.group_id.unwrap_or(ended.id));
                        self.join(&config, AlertEvent::Recovered, key, ended, snapshot).await;
                    }
                }
                _ => {}
            }
        }
    }

    /// Records the maintenance windows that began (as spans in the store),
    /// ends those that ended — early, if a reload removed them — and looks
    /// afresh at each service whose window is over: still failing, it
    /// alerts now; recovered, its incident ends.
    async fn maintenance(&mut self) {
        let config = self.config.borrow().clone();
        let now = crate::time::unix(std::time::SystemTime::now());
        let active: HashMap<String, (i64, i64)> = config
            .services
            .iter()
            .filter_map(|s| {
                crate::maintenance::active(&config.maintenance, &s.id, now).map(|span| (s.id.clone(), span))
            })
            .collect();
        let ended: Vec<(String, (i64, i64))> = self
            .in_maintenance
            .iter()
            .filter(|(id, span)| active.get(*id) != Some(*span))
            .map(|(id, span)| (id.clone(), *span))
            .collect();
        let began: Vec<(String, i64, i64)> = active
            .iter()
            .filter(|(id, span)| self.in_maintenance.get(*id) != Some(*span))
            .map(|(id, (start, end))| (id.clone(), *start, *end))
            .collect();
        self.in_maintenance = active;
        for id in ended.iter().map(|(id, _)| id).chain(began.iter().map(|(id, ..)| id)) {
            self.show_maintenance(id);
        }
        for (id, (start, end)) in ended {
            let same_start = self.in_maintenance.get(&id).is_some_and(|(s, _)| *s == start);
            if end > now
                && !same_start
                && let Err(e) = self.store.end_maintenance(id.clone(), start, now).await
            {
                warn!("cannot record the end of {id}'s maintenance: {e}");
            }
            if self.in_maintenance.contains_key(&id) {
                continue;
            }
            info!(service = %id, "maintenance window ended");
            if let Some(mut snapshot) = self.latest.get(&id).cloned() {
                snapshot.at = now;
                self.service(snapshot).await;
                self.flush_pending(false).await;
            }
        }
        if !began.is_empty() {
            self.record_windows(began).await;
        }
    }

    /// `chatpulse_service_maintenance` of `service` as the tracker holds it.
    fn show_maintenance(&self, service: &str) {
        if let Some(m) = &self.metrics {
            m.set_maintenance(service, self.in_maintenance.contains_key(service));
        }
    }

    /// Records windows that began: `(service, start, end)`.
    async fn record_windows(&mut self, began: Vec<(String, i64, i64)>) {
        for (id, start, end) in &began {
            info!(service = %id, from = start, until = end, "maintenance window: alerts held, time not counted");
        }
        if let Err(e) = self.store.begin_maintenance(began).await {
            warn!("cannot record the maintenance windows: {e}");
        }
    }

    /// Reminders, per channel: each open incident told as DOWN and still
    /// down is reminded on every channel whose `repeat` has passed since
    /// that channel's last reminder (or the DOWN).
    async fn reminders(&mut self) {
        if !self.online {
            return;
        }
        // Reminder clocks of incidents that ended go with them.
        let open: std::collections::HashSet<i64> = self.open.values().map(|i| i.id).collect();
        self.reminded.retain(|(id, _), _| open.contains(id));
        let config = self.config.borrow().clone();
        let now = crate::time::unix(std::time::SystemTime::now());
        for channel in &config.alerts.channels {
            let (channel, rules) = (&channel.name, &channel.rules);
            let Some(repeat) = rules.repeat else { continue };
            let repeat = repeat.as_secs().max(1) as i64;
            let mut groups: HashMap<i64, Vec<(Incident, ServiceSnapshot)>> = HashMap::new();
            for incident in self.open.values() {
                if self.in_maintenance.contains_key(&incident.service) {
                    continue;
                }
                // Down as judged in this run: after a restart, not before the
                // service has been looked at again (it may have recovered
                // while the monitor was stopped), and never under a stand-in name.
                let Some(latest) = self.latest.get(&incident.service).filter(|s| s.status == ServiceStatus::Down)
                else {
                    continue;
                };
                let last = self.reminded.get(&(incident.id, channel.clone())).copied().or(incident.last_reminder_at);
                let due = last.is_some_and(|last| now - last >= repeat);
                if incident.notified == Some(ServiceStatus::Down) && due {
                    let snapshot = latest.clone();
                    groups
                        .entry(incident.group_id.unwrap_or(incident.id))
                        .or_default()
                        .push((incident.clone(), snapshot));
                }
            }
            for (group, members) in groups {
                let started = members.iter().map(|(i, _)| i.started_at).min().unwrap_or(now);
                let nth = ((now - started).max(0) / repeat) as u64;
                self.send(AlertEvent::Reminder, group, members, Some((channel.clone(), nth))).await;
            }
        }
    }
}

/// The incident a flapping alert names when the service has none (it
/// flapped between up and unknown-free states without a recorded one).
fn placeholder_incident(snapshot: &ServiceSnapshot) -> Incident {
    Incident {
        id: 0,
        service: snapshot.id.clone(),
        status: snapshot.status,
        started_at: snapshot.at,
        ended_at: None,
        cause: None,
        group_id: None,
        notified: None,
        last_reminder_at: None,
    }
}

/// The vantage name as it appears in Message-IDs.
fn vantage_word(vantage: &str) -> String {
    vantage.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incidents_kept_in_memory_never_share_an_id_with_another_run() {
        let run = |at: i64| memory_ids(crate::time::from_unix(at));
        let (first, second) = (run(1_764_000_000), run(1_764_000_001));
        assert!(first > i64::from(u32::MAX), "above any id the store hands out");
        assert!(second >= first + 1000, "a run a second later starts past 1,000 of the first's");
    }
}
