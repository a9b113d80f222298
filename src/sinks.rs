//! What `run` does with the verdict's events — the sinks of the one-way
//! flow (scheduler → probe → verdict → sinks): metrics, the history store
//! (status changes, run-length results), the incident tracker, and the
//! monitor's own health. Each sink only records; none decides status.
//! Also here: the uptime publisher, which keeps the uptime gauges current
//! from what the store recorded.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::config::Config;
use crate::health::Health;
use crate::incident::{ServiceSnapshot, TrackerInput};
use crate::metrics::{Metrics, UPTIME_WINDOWS};
use crate::probe::{Reason, result_word};
use crate::store::{Reader, RunRecord, StatusRecord, Store, uptime};
use crate::time::unix;
use crate::verdict::Event;

/// Keeps `chatpulse_service_uptime_ratio{window}` current from the store:
/// one read of the longest window per service serves every window.
pub async fn publish_uptime(history: Arc<Reader>, config: watch::Receiver<Arc<Config>>, metrics: Arc<Metrics>) {
    let longest = UPTIME_WINDOWS.iter().map(|(_, secs)| *secs as i64).max().unwrap_or(0);
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let services: Vec<String> = config.borrow().services.iter().map(|s| s.id.clone()).collect();
        let (history, metrics) = (history.clone(), metrics.clone());
        let _ = tokio::task::spawn_blocking(move || {
            let now = unix(SystemTime::now());
            for service in &services {
                let Ok(spans) = history.spans(service, now - longest, now, now) else { continue };
                for (window, secs) in UPTIME_WINDOWS {
                    if let Some(ratio) = uptime::summarize(&uptime::clip(&spans, now - secs as i64, now)).ratio {
                        metrics.set_uptime(service, window, ratio);
                    }
                }
            }
        })
        .await;
    }
}

/// Where the verdict's events go.
pub struct Sinks {
    metrics: Arc<Metrics>,
    store: Store,
    incidents: mpsc::UnboundedSender<TrackerInput>,
    /// Runs not yet handed to the store (sent in batches: one wake-up of
    /// the writer thread per batch, not per run).
    runs: Vec<RunRecord>,
    /// The previous result per plan index: a repeat's detail is not stored.
    last_result: Vec<Option<&'static str>>,
    /// The monitor's own health (probe runs short of sockets land here).
    health: Arc<Health>,
}

impl Sinks {
    /// The sinks: metrics, the store, the incident tracker, health.
    pub fn new(
        metrics: Arc<Metrics>,
        store: Store,
        incidents: mpsc::UnboundedSender<TrackerInput>,
        health: Arc<Health>,
    ) -> Sinks {
        Sinks { metrics, store, incidents, runs: Vec::new(), last_result: Vec::new(), health }
    }

    /// The history store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Tells the incident tracker something the verdict did not (a reload).
    pub fn tell(&self, input: TrackerInput) {
        let _ = self.incidents.send(input);
    }

    /// The plan changed: probe indexes mean other probes now.
    pub fn plan_changed(&mut self) {
        self.last_result.clear();
    }

    /// Stops telling the tracker (it then sends what is pending and ends);
    /// the store, to be stopped by the caller.
    pub fn close(self) -> Store {
        self.store
    }

    /// Hands the runs gathered so far to the store.
    pub fn flush_runs(&mut self) {
        self.store.record_runs(std::mem::take(&mut self.runs));
    }

    /// Hands one verdict event to every sink.
    pub fn accept(&mut self, event: &Event<'_>) {
        self.metrics.record(event);
        match event {
            Event::Observed { observation, .. } => {
                let probe = &observation.probe;
                let result = result_word(observation.finding.result);
                if self.last_result.len() <= probe.index {
                    self.last_result.resize(probe.index + 1, None);
                }
                let repeat = self.last_result[probe.index].replace(result) == Some(result);
                if observation.finding.result == Err(Reason::ProbeResource)
                    && self.health.resource_shortage(unix(observation.at), &observation.finding.detail)
                {
                    warn!(
                        "the monitor is short of sockets or memory ({}): runs are skipped, not judged; raise the descriptor limit",
                        observation.finding.detail
                    );
                }
                self.runs.push(RunRecord {
                    service: probe.service.clone(),
                    probe: probe.spec.id.clone(),
                    at: unix(observation.at),
                    result,
                    duration_ms: observation.duration.as_secs_f64() * 1e3,
                    detail: if repeat { String::new() } else { observation.finding.detail.clone() },
                });
            }
            Event::ServiceChanged { service, probes, from, at } => {
                if service.status != *from {
                    let cause = service.cause.as_ref().map(|c| c.cause.summary.as_str()).unwrap_or("");
                    info!(service = %service.id, from = from.as_str(), to = service.status.as_str(), cause, "service status changed");
                    self.store.record_status(StatusRecord {
                        service: service.id.clone(),
                        at: unix(*at),
                        status: service.status,
                        cause: service.cause.as_ref().map(|c| (c.cause.layer.to_string(), c.cause.summary.clone())),
                    });
                }
                // Cause changes too: an incident not yet told about takes the
                // root cause known by the time its alert goes out.
                let snapshot = ServiceSnapshot::new(service, probes, unix(*at));
                let _ = self.incidents.send(TrackerInput::Service(snapshot));
            }
            Event::OnlineChanged { online, .. } => {
                if *online {
                    info!("monitor online again: a guard probe passes");
                } else {
                    warn!("monitor offline: every guard probe fails; services are unknown until a guard passes");
                }
                let _ = self.incidents.send(TrackerInput::Online(*online));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::probe::{Finding, Observation};
    use crate::store::Retention;
    use crate::verdict::{ServiceStatus, Verdict};
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    #[tokio::test]
    async fn a_status_change_reaches_the_store_the_tracker_and_the_metrics() {
        let text = "[monitor]\nfail_after = 1\n[[service]]\nid = \"s\"\nname = \"S\"\n  [[service.probe]]\n  kind = \"dns\"\n  query = \"x.test\"\n";
        let config = Config::parse(Path::new("t.toml"), text).unwrap();
        let plan = config.plan();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let retention = Retention { raw: Duration::from_secs(86_400), rollup: Duration::from_secs(86_400) };
        let store = Store::open(&path, retention).unwrap();
        let metrics = Arc::new(Metrics::new());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut sinks = Sinks::new(metrics.clone(), store.clone(), tx, Arc::new(Health::default()));
        let mut verdict = Verdict::new(&config, &plan, SystemTime::now());
        for result in [Ok(()), Err(Reason::DnsServfail), Err(Reason::DnsServfail)] {
            let finding = match result {
                Ok(()) => Finding::ok("ok"),
                Err(r) => Finding::fail(r, "SERVFAIL"),
            };
            let observation = Observation {
                probe: plan[0].clone(),
                at: SystemTime::now(),
                duration: Duration::from_millis(3),
                lateness: Duration::ZERO,
                finding,
            };
            verdict.observe(&observation, &mut |e| sinks.accept(&e));
        }
        sinks.flush_runs();
        store.flush().await.unwrap();
        let mut told = Vec::new();
        while let Ok(TrackerInput::Service(s)) = rx.try_recv() {
            told.push(s.status);
        }
        assert_eq!(told, vec![ServiceStatus::Up, ServiceStatus::Down], "the tracker hears each change once");
        let rows = crate::store::Reader::open(&path).unwrap().status_rows("s", 0, i64::MAX).unwrap();
        assert_eq!(rows.iter().map(|(_, s)| *s).collect::<Vec<_>>(), vec![ServiceStatus::Up, ServiceStatus::Down]);
        assert!(metrics.render().contains("chatpulse_service_status{service=\"s\",status=\"down\"} 1"));
    }
}
