//! Metric families (README, "Metrics"), and nothing else.
//!
//! [`Metrics`] owns the Prometheus registry. The verdict's events update the
//! probe and service families through [`Metrics::record`] (the per-probe
//! ones live in `probes.rs`); the BGP engine, the alert outbox and the
//! uptime task update their own families through the small setters below.
//! `/metrics` streams [`Metrics::encode`] in the Prometheus text format
//! (what `promtool check metrics` reads).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

mod probes;

use crate::probe::ProbeRef;
use crate::verdict::{Event, ProbeStatus, ServiceStatus};

/// The `window` label values of `chatpulse_service_uptime_ratio`, with their length in seconds.
pub const UPTIME_WINDOWS: [(&str, u64); 3] = [("1d", 86_400), ("7d", 7 * 86_400), ("30d", 30 * 86_400)];

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    service: String,
    layer: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    service: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WindowLabels {
    service: String,
    window: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    channel: String,
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
    vantage: String,
}

type Ratio = Gauge<f64, AtomicU64>;

/// Every chatpulse metric family.
pub struct Metrics {
    registry: Registry,
    /// Labels `source`, and `reason` while 0 (see [`Metrics::set_feed_up`]).
    bgp_feed_up: Family<Vec<(String, String)>, Gauge>,
    bgp_updates: Family<SourceLabels, Counter>,
    bgp_malformed: Family<SourceLabels, Counter>,
    service_up: Family<ServiceLabels, Ratio>,
    service_cause: Family<CauseLabels, Gauge>,
    service_flapping: Family<ServiceLabels, Gauge>,
    service_maintenance: Family<ServiceLabels, Gauge>,
    build_info: Family<VersionLabels, Gauge>,
    store_errors: Family<OpLabels, Counter>,
    /// Store error counts already exported (write, read).
    store_errors_seen: [std::sync::atomic::AtomicU64; 2],
    /// The cause series set per service, to remove it when the cause changes.
    causes: std::sync::Mutex<std::collections::HashMap<String, CauseLabels>>,
    service_status: Family<StatusLabels, Gauge>,
    service_uptime: Family<WindowLabels, Ratio>,
    monitor_online: Gauge,
    alerts_sent: Family<AlertLabels, Counter>,
    alert_failures: Family<AlertLabels, Counter>,
    alert_queue: Family<ChannelLabels, Gauge>,
    config_reload_ok: Gauge,
    scheduler_lateness: Histogram,
    /// The per-probe families.
    probes: Arc<probes::ProbeFamilies>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every family.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("chatpulse");
        let m = Metrics {
            bgp_feed_up: Family::default(),
            bgp_updates: Family::default(),
            bgp_malformed: Family::default(),
            service_up: Family::default(),
            service_cause: Family::default(),
            service_flapping: Family::default(),
            service_maintenance: Family::default(),
            build_info: Family::default(),
            store_errors: Family::default(),
            store_errors_seen: Default::default(),
            causes: Default::default(),
            service_status: Family::default(),
            service_uptime: Family::default(),
            monitor_online: Gauge::default(),
            alerts_sent: Family::default(),
            alert_failures: Family::default(),
            alert_queue: Family::default(),
            config_reload_ok: Gauge::default(),
            scheduler_lateness: Histogram::new([
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            registry: Registry::default(),
            probes: Arc::default(),
        };
        let r = &mut registry;
        // Name, help text, family: the families the registry encodes itself
        // (the per-probe ones are a collector, registered below).
        macro_rules! register {
            ($($name:literal, $help:literal => $field:ident;)*) => {
                $(r.register($name, $help, m.$field.clone());)*
            };
        }
        register! {
            "bgp_feed_up", "Whether the BGP feed is connected, seeded and not stale" => bgp_feed_up;
            "bgp_updates", "BGP route updates received from the feed" => bgp_updates;
            "bgp_malformed_messages", "Feed messages that could not be understood and were skipped" => bgp_malformed;
            "service_up", "1 up or degraded, 0 down, NaN while the status is unknown" => service_up;
            "service_status", "1 on the service's current status" => service_status;
            "service_cause", "1 while the service has this root cause (layer and reasons of its lowest DOWN layer)" => service_cause;
            "service_flapping", "1 while the service is flapping (its alerts are held back)" => service_flapping;
            "service_maintenance", "1 while the service is in a maintenance window (its alerts are held back)" => service_maintenance;
            "build_info", "Always 1; which build runs, and at which vantage point" => build_info;
            "store_errors", "Failed writes and reads of the history store" => store_errors;
            "service_uptime_ratio", "Uptime over the window: (observed - down) / observed" => service_uptime;
            "monitor_online", "0 while every guard probe fails (own connectivity lost)" => monitor_online;
            "alerts_sent", "Alerts delivered" => alerts_sent;
            "alert_failures", "Failed alert delivery attempts" => alert_failures;
            "alert_queue_length", "Alerts waiting in the outbox" => alert_queue;
            "config_last_reload_successful", "Whether the last config (re)load succeeded" => config_reload_ok;
        }
        for op in ["write", "read"] {
            drop(m.store_errors.get_or_create(&OpLabels { op: op.into() }));
        }
        r.register_with_unit(
            "scheduler_lateness",
            "How late probe runs start against their schedule",
            Unit::Seconds,
            m.scheduler_lateness.clone(),
        );
        r.register_collector(Box::new(m.probes.clone()));
        m.monitor_online.set(1);
        m.config_reload_ok.set(1);
        Metrics { registry, ..m }
    }

    /// Takes the plan after each (re)load: the per-probe series follow it
    /// (a probe gone or changed loses its series).
    pub fn install(&self, plan: &[Arc<ProbeRef>]) {
        self.probes.install(plan);
    }

    fn record_run(&self, observation: &crate::probe::Observation) {
        self.scheduler_lateness.observe(observation.lateness.as_secs_f64());
        self.probes.record_run(observation);
    }

    /// Applies one verdict event.
    pub fn record(&self, event: &Event<'_>) {
        match event {
            Event::Observed { observation, .. } => self.record_run(observation),
            Event::ProbeChanged { state, .. } => {
                let up = match state.status {
                    ProbeStatus::Up => Some(true),
                    ProbeStatus::Down => Some(false),
                    ProbeStatus::Unknown => None,
                };
                self.probes.set_up(&state.probe, up);
            }
            Event::ServiceChanged { service, .. } => {
                self.set_service_status(&service.id, service.status);
                let cause = service.cause.as_ref().map(|c| (c.cause.layer.as_str(), c.cause.reason_words()));
                self.set_cause(&service.id, cause.as_ref().map(|(layer, reasons)| (*layer, reasons.as_str())));
            }
            Event::OnlineChanged { online, .. } => {
                self.monitor_online.set(i64::from(*online));
            }
        }
    }

    /// Sets the service's status families.
    pub fn set_service_status(&self, service: &str, status: ServiceStatus) {
        let labels = ServiceLabels { service: service.into() };
        // NaN while unknown: a dashboard must never show green for what
        // nobody knows (the monitor offline, nothing confirmed yet).
        let up = match status {
            ServiceStatus::Unknown => f64::NAN,
            ServiceStatus::Down => 0.0,
            ServiceStatus::Up | ServiceStatus::Degraded => 1.0,
        };
        self.service_up.get_or_create(&labels).set(up);
        drop(self.service_flapping.get_or_create(&labels));
        for s in ServiceStatus::ALL {
            let l = StatusLabels { service: service.into(), status: s.as_str().into() };
            self.service_status.get_or_create(&l).set(i64::from(*s == status));
        }
    }

    /// `chatpulse_service_cause`: one series while the service has a root
    /// cause, replaced when the cause changes, gone when it is over.
    pub fn set_cause(&self, service: &str, cause: Option<(&str, &str)>) {
        let mut causes = self.causes.lock().unwrap_or_else(|e| e.into_inner());
        let new = cause.map(|(layer, reason)| CauseLabels {
            service: service.into(),
            layer: layer.into(),
            reason: reason.into(),
        });
        if causes.get(service) == new.as_ref() {
            return;
        }
        if let Some(old) = causes.remove(service) {
            self.service_cause.remove(&old);
        }
        if let Some(labels) = new {
            self.service_cause.get_or_create(&labels).set(1);
            causes.insert(service.into(), labels);
        }
    }

    /// `chatpulse_store_errors_total{op}` from the store's running counts.
    pub fn sync_store_errors(&self, writes: u64, reads: u64) {
        use std::sync::atomic::Ordering;
        for (i, (op, count)) in [("write", writes), ("read", reads)].into_iter().enumerate() {
            let before = self.store_errors_seen[i].swap(count, Ordering::Relaxed);
            if count > before {
                self.store_errors.get_or_create(&OpLabels { op: op.into() }).inc_by(count - before);
            }
        }
    }

    /// `chatpulse_service_flapping{service}`.
    pub fn set_flapping(&self, service: &str, flapping: bool) {
        self.service_flapping.get_or_create(&ServiceLabels { service: service.into() }).set(i64::from(flapping));
    }

    /// `chatpulse_service_maintenance{service}` (the tracker sets it; `run`
    /// creates every service's at 0 before it serves).
    pub fn set_maintenance(&self, service: &str, in_window: bool) {
        self.service_maintenance.get_or_create(&ServiceLabels { service: service.into() }).set(i64::from(in_window));
    }

    /// Drops every series of a service that left the config.
    pub fn forget_service(&self, service: &str) {
        self.set_cause(service, None);
        self.service_flapping.remove(&ServiceLabels { service: service.into() });
        self.service_maintenance.remove(&ServiceLabels { service: service.into() });
        self.service_up.remove(&ServiceLabels { service: service.into() });
        for s in ServiceStatus::ALL {
            self.service_status.remove(&StatusLabels { service: service.into(), status: s.as_str().into() });
        }
        for window in UPTIME_WINDOWS {
            self.service_uptime.remove(&WindowLabels { service: service.into(), window: window.0.into() });
        }
    }

    /// Creates the series `config` fixes: its BGP sources (while a prefix is
    /// watched), its alert channels and their events.
    pub fn declare_config(&self, config: &crate::config::Config) {
        // One series: the vantage point may change with a reload.
        let info = VersionLabels { version: env!("CARGO_PKG_VERSION").into(), vantage: config.monitor.vantage.clone() };
        if self.build_info.get(&info).is_none() {
            self.build_info.clear();
            self.build_info.get_or_create(&info).set(1);
        }
        let sources: Vec<&str> = if config.watched_prefixes().is_empty() {
            Vec::new()
        } else {
            config.bgp.sources.iter().map(|s| s.as_str()).collect()
        };
        let channels: Vec<&str> = config.alerts.channels.iter().map(|c| c.name.as_str()).collect();
        let events: Vec<&str> = crate::notice::AlertEvent::ALL.iter().map(|e| e.as_str()).collect();
        self.declare(&sources, &channels, &events);
    }

    /// Creates the series whose labels the config already fixes, so they
    /// exist from the first scrape (counters at 0) and `absent()` rules and
    /// dashboards see them before the first event.
    fn declare(&self, sources: &[&str], channels: &[&str], events: &[&str]) {
        for source in sources {
            let labels = SourceLabels { source: (*source).into() };
            drop(self.bgp_updates.get_or_create(&labels));
            drop(self.bgp_malformed.get_or_create(&labels));
        }
        for channel in channels {
            drop(self.alert_queue.get_or_create(&ChannelLabels { channel: (*channel).into() }));
            for event in events {
                let labels = AlertLabels { channel: (*channel).into(), event: (*event).into() };
                drop(self.alerts_sent.get_or_create(&labels));
                drop(self.alert_failures.get_or_create(&labels));
            }
        }
    }

    /// `chatpulse_bgp_feed_up{source}` 1, or `{source, reason}` 0 with the
    /// reason it is down (`disconnected`, `stale`, `canary`): one series per
    /// source at any time.
    pub fn set_feed_up(&self, source: &str, down_because: Option<&str>) {
        let labels = |reason: Option<&str>| {
            let mut l = vec![("source".to_string(), source.to_string())];
            l.extend(reason.map(|r| ("reason".to_string(), r.to_string())));
            l
        };
        for reason in [None, Some("disconnected"), Some("stale"), Some("canary")] {
            if reason != down_because {
                self.bgp_feed_up.remove(&labels(reason));
            }
        }
        self.bgp_feed_up.get_or_create(&labels(down_because)).set(i64::from(down_because.is_none()));
    }

    /// `chatpulse_bgp_updates_total{source}`.
    pub fn add_bgp_updates(&self, source: &str, n: u64) {
        self.bgp_updates.get_or_create(&SourceLabels { source: source.into() }).inc_by(n);
    }

    /// `chatpulse_bgp_malformed_messages_total{source}`.
    pub fn add_bgp_malformed(&self, source: &str) {
        self.bgp_malformed.get_or_create(&SourceLabels { source: source.into() }).inc();
    }

    /// `chatpulse_service_uptime_ratio{service,window}`.
    pub fn set_uptime(&self, service: &str, window: &str, ratio: f64) {
        self.service_uptime.get_or_create(&WindowLabels { service: service.into(), window: window.into() }).set(ratio);
    }

    /// `chatpulse_alerts_sent_total` / `chatpulse_alert_failures_total`.
    pub fn count_alert(&self, channel: &str, event: &str, delivered: bool) {
        let labels = AlertLabels { channel: channel.into(), event: event.into() };
        if delivered {
            self.alerts_sent.get_or_create(&labels).inc();
        } else {
            self.alert_failures.get_or_create(&labels).inc();
        }
    }

    /// `chatpulse_alert_queue_length{channel}`.
    pub fn set_alert_queue(&self, channel: &str, length: usize) {
        self.alert_queue.get_or_create(&ChannelLabels { channel: channel.into() }).set(length as i64);
    }

    /// `chatpulse_config_last_reload_successful`.
    pub fn set_reload_ok(&self, ok: bool) {
        self.config_reload_ok.set(i64::from(ok));
    }

    /// Every sample name chatpulse can export (`chatpulse_probe_runs_total`,
    /// `chatpulse_probe_duration_seconds_bucket`, ...): each family is given
    /// one placeholder series in a fresh registry, which is then rendered and
    /// read back. Dashboards and alert rules are checked against this.
    pub fn exported_names() -> std::collections::BTreeSet<String> {
        let m = Metrics::new();
        let config = crate::config::Config::parse(
            std::path::Path::new("placeholder.toml"),
            "[[service]]\nid = \"s\"\nname = \"S\"\n[[service.probe]]\nkind = \"http\"\nurl = \"http://x/\"\n",
        );
        if let Ok(config) = config {
            m.install(&config.plan());
            m.declare_config(&config);
            m.probes.fill_every_family();
        }
        let source = SourceLabels { source: "session".into() };
        let alert = AlertLabels { channel: "email".into(), event: "down".into() };
        m.set_feed_up("ris-live", Some("stale"));
        drop(m.bgp_updates.get_or_create(&source));
        drop(m.bgp_malformed.get_or_create(&source));
        m.set_service_status("s", ServiceStatus::Up);
        m.set_uptime("s", "30d", 1.0);
        drop(m.alerts_sent.get_or_create(&alert));
        drop(m.alert_failures.get_or_create(&alert));
        m.set_alert_queue("email", 0);
        m.set_cause("s", Some(("dns", "dns_servfail")));
        m.set_maintenance("s", false);
        m.render()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(str::to_string)
            .collect()
    }

    /// The exposition text, as one string (tests, small registries).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.encode(&mut out);
        out
    }

    /// Writes the exposition text into `out` as it is encoded (the
    /// `/metrics` handler streams it in chunks instead of building one
    /// 17 MB string for 10,000 probes). Fails only when `out` does.
    pub fn encode(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        prometheus_client::encoding::prometheus_text::encode(out, &self.registry)
    }
}

impl crate::bgp::feed::FeedGauges for Metrics {
    fn add_updates(&self, source: &str, n: u64) {
        self.add_bgp_updates(source, n);
    }

    fn add_malformed(&self, source: &str) {
        self.add_bgp_malformed(source);
    }

    fn set_feed_up(&self, source: &str, down_because: Option<&str>) {
        Metrics::set_feed_up(self, source, down_because);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Finding, Observation};
    use std::time::{Duration, SystemTime};

    /// Every metric name of README, "Metrics", as it must appear on a sample line.
    const SPEC_SERIES: [&str; 25] = [
        "chatpulse_probe_success{",
        "chatpulse_probe_up{",
        "chatpulse_probe_duration_seconds_bucket{",
        "chatpulse_probe_runs_total{",
        "chatpulse_http_status_code{",
        "chatpulse_bgp_visibility_ratio{",
        "chatpulse_bgp_peers_seeing{",
        "chatpulse_bgp_peers_total{",
        "chatpulse_bgp_feed_up{",
        "chatpulse_bgp_updates_total{",
        "chatpulse_service_up{",
        "chatpulse_service_status{",
        "chatpulse_service_uptime_ratio{",
        "chatpulse_monitor_online ",
        "chatpulse_alerts_sent_total{",
        "chatpulse_alert_failures_total{",
        "chatpulse_alert_queue_length{",
        "chatpulse_config_last_reload_successful ",
        "chatpulse_build_info{",
        "chatpulse_service_cause{",
        "chatpulse_guard_up{",
        "chatpulse_tls_cert_expiry_timestamp_seconds{",
        "chatpulse_service_flapping{",
        "chatpulse_store_errors_total{",
        "chatpulse_service_maintenance{",
    ];

    #[test]
    fn every_spec_metric_is_exported_under_its_spec_name() {
        let names = Metrics::exported_names();
        for series in SPEC_SERIES {
            let name = series.trim_end_matches(['{', ' ']);
            assert!(names.contains(name), "{name} missing from {names:?}");
        }
    }

    #[test]
    fn a_judged_run_updates_the_probe_families() {
        let config = crate::config::Config::parse(
            std::path::Path::new("t.toml"),
            "[[service]]\nid = \"s\"\nname = \"S\"\n[[service.probe]]\nkind = \"http\"\nurl = \"http://x/\"\n",
        )
        .unwrap();
        let plan = config.plan();
        let metrics = Metrics::new();
        metrics.install(&plan);
        let mut verdict = crate::verdict::Verdict::new(&config, &plan, SystemTime::now());
        let finding = Finding::fail(crate::probe::Reason::HttpStatus, "503")
            .with(crate::probe::Evidence::Response { status: 503, cert_expiry: None });
        let o = Observation {
            probe: plan[0].clone(),
            at: SystemTime::now(),
            duration: Duration::from_millis(5),
            lateness: Duration::ZERO,
            finding,
        };
        verdict.observe(&o, &mut |e| metrics.record(&e));
        let text = metrics.render();
        assert!(text.contains(r#"chatpulse_probe_success{service="s",probe="http-1",kind="http"} 0"#), "{text}");
        assert!(text.contains(r#"chatpulse_http_status_code{service="s",probe="http-1"} 503"#), "{text}");
        assert!(
            text.contains(
                r#"chatpulse_probe_runs_total{service="s",probe="http-1",kind="http",result="http_status"} 1"#
            ),
            "{text}"
        );
    }

    fn plan_of(probes: &str) -> Vec<Arc<ProbeRef>> {
        let text = format!("[[service]]\nid = \"s\"\nname = \"S\"\n{probes}");
        crate::config::Config::parse(std::path::Path::new("t.toml"), &text).unwrap().plan()
    }

    fn passed(metrics: &Metrics, probe: &Arc<ProbeRef>) {
        metrics.record_run(&Observation {
            probe: probe.clone(),
            at: SystemTime::now(),
            duration: Duration::from_millis(5),
            lateness: Duration::ZERO,
            finding: Finding::ok("fine"),
        });
    }

    #[test]
    fn a_reload_keeps_the_counts_of_unchanged_probes_and_drops_the_series_of_the_others() {
        let probe =
            |id: &str, url: &str| format!("[[service.probe]]\nid = \"{id}\"\nkind = \"http\"\nurl = \"{url}\"\n");
        let runs =
            |id: &str| format!(r#"chatpulse_probe_runs_total{{service="s",probe="{id}",kind="http",result="ok"}} "#);
        let metrics = Metrics::new();
        let before =
            plan_of(&[probe("kept", "http://x/"), probe("changed", "http://y/"), probe("gone", "http://z/")].concat());
        metrics.install(&before);
        for p in &before {
            passed(&metrics, p);
        }
        let after = plan_of(&[probe("kept", "http://x/"), probe("changed", "http://y2/")].concat());
        metrics.install(&after);
        // A run of the replaced plan, arriving late, is not counted.
        passed(&metrics, &before[0]);
        let text = metrics.render();
        assert!(text.contains(&format!("{}1\n", runs("kept"))), "{text}");
        assert!(text.contains(&format!("{}0\n", runs("changed"))), "{text}");
        assert!(!text.contains(r#"probe="gone""#), "{text}");
    }
}
