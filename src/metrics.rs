//! Metric families (README, "Metrics"), and nothing else.
//!
//! [`Metrics`] owns the Prometheus registry. The verdict's events update the
//! probe and service families through [`Metrics::record`]; the BGP engine,
//! the alert outbox and the uptime task update their own families through
//! the small setters below. `/metrics` renders [`Metrics::render`] in the
//! Prometheus text format (what `promtool check metrics` reads).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

use crate::config::Kind;
use crate::probe::ProbeRef;
use crate::verdict::{Event, ProbeStatus, ServiceStatus};

/// The `window` label values of `chatpulse_service_uptime_ratio`, with their length in seconds.
pub const UPTIME_WINDOWS: [(&str, u64); 3] = [("1d", 86_400), ("7d", 7 * 86_400), ("30d", 30 * 86_400)];

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    service: String,
    probe: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    service: String,
    probe: String,
    kind: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    service: String,
    probe: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BgpLabels {
    service: String,
    probe: String,
    prefix: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    op: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GuardLabels {
    guard: String,
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
}

type Ratio = Gauge<f64, AtomicU64>;

/// A gauge exposed with `# TYPE ... untyped`. The contract (README, "Metrics") names the gauge
/// `chatpulse_bgp_peers_total`, and promtool rejects a `_total` suffix on a
/// gauge but accepts it on an untyped metric, which PromQL treats the same.
#[derive(Default, Clone, Debug)]
struct UntypedGauge(Gauge);

impl TypedMetric for UntypedGauge {
    const TYPE: MetricType = MetricType::Unknown;
}

impl EncodeMetric for UntypedGauge {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Unknown
    }
}

/// Probe durations: 1 ms to the 5 s default timeout. Each bucket is a line
/// per probe on every scrape (10,000 probes: 10,000 lines per bucket), so
/// there are no more than the percentiles need.
fn duration_histogram() -> Histogram {
    Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
}

/// One probe's series handles, resolved once per plan: a run then updates
/// atomics instead of building and hashing label strings.
struct ProbeSeries {
    probe: Arc<ProbeRef>,
    success: Gauge,
    duration: Histogram,
    runs_ok: Counter,
    http_status: Option<Gauge>,
}

/// Every chatpulse metric family.
pub struct Metrics {
    registry: Registry,
    probe_success: Family<ProbeLabels, Gauge>,
    probe_up: Family<ProbeLabels, Gauge>,
    probe_duration: Family<ProbeLabels, Histogram, fn() -> Histogram>,
    probe_runs: Family<RunLabels, Counter>,
    http_status: Family<HttpLabels, Gauge>,
    bgp_visibility: Family<BgpLabels, Ratio>,
    bgp_peers_seeing: Family<BgpLabels, Gauge>,
    bgp_peers_total: Family<BgpLabels, UntypedGauge>,
    /// Labels `source`, and `reason` while 0 (see [`Metrics::set_feed_up`]).
    bgp_feed_up: Family<Vec<(String, String)>, Gauge>,
    bgp_updates: Family<SourceLabels, Counter>,
    bgp_malformed: Family<SourceLabels, Counter>,
    service_up: Family<ServiceLabels, Ratio>,
    service_cause: Family<CauseLabels, Gauge>,
    service_flapping: Family<ServiceLabels, Gauge>,
    store_errors: Family<OpLabels, Counter>,
    /// Store error counts already exported (write, read).
    store_errors_seen: [std::sync::atomic::AtomicU64; 2],
    /// The cause series set per service, to remove it when the cause changes.
    causes: std::sync::Mutex<std::collections::HashMap<String, CauseLabels>>,
    guard_up: Family<GuardLabels, Gauge>,
    tls_expiry: Family<HttpLabels, Gauge>,
    service_status: Family<StatusLabels, Gauge>,
    service_uptime: Family<WindowLabels, Ratio>,
    monitor_online: Gauge,
    alerts_sent: Family<AlertLabels, Counter>,
    alert_failures: Family<AlertLabels, Counter>,
    alert_queue: Family<ChannelLabels, Gauge>,
    config_reload_ok: Gauge,
    scheduler_lateness: Histogram,
    /// Size of the last rendering, to allocate the next one in one go
    /// (growing a multi-MB string by doubling would triple its peak memory).
    last_render_len: std::sync::atomic::AtomicUsize,
    /// Handles of the plan's probes, by plan index.
    series: RwLock<Vec<ProbeSeries>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn probe_labels(probe: &ProbeRef) -> ProbeLabels {
    ProbeLabels { service: probe.service.clone(), probe: probe.spec.id.clone(), kind: probe.kind().to_string() }
}

impl Metrics {
    /// Registers every family.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("chatpulse");
        let m = Metrics {
            probe_success: Family::default(),
            probe_up: Family::default(),
            probe_duration: Family::new_with_constructor(duration_histogram),
            probe_runs: Family::default(),
            http_status: Family::default(),
            bgp_visibility: Family::default(),
            bgp_peers_seeing: Family::default(),
            bgp_peers_total: Family::default(),
            bgp_feed_up: Family::default(),
            bgp_updates: Family::default(),
            bgp_malformed: Family::default(),
            service_up: Family::default(),
            service_cause: Family::default(),
            service_flapping: Family::default(),
            store_errors: Family::default(),
            store_errors_seen: Default::default(),
            causes: Default::default(),
            guard_up: Family::default(),
            tls_expiry: Family::default(),
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
            last_render_len: std::sync::atomic::AtomicUsize::new(0),
            series: RwLock::new(Vec::new()),
        };
        let r = &mut registry;
        r.register("probe_success", "Whether the probe's last run passed (1) or failed (0)", m.probe_success.clone());
        r.register("probe_up", "Confirmed probe state: 1 up, 0 down (absent while unknown)", m.probe_up.clone());
        r.register_with_unit("probe_duration", "Duration of probe runs", Unit::Seconds, m.probe_duration.clone());
        r.register("probe_runs", "Probe runs by result (ok or the failure reason)", m.probe_runs.clone());
        r.register(
            "http_status_code",
            "Status code of the last HTTP response (0 = no response)",
            m.http_status.clone(),
        );
        // Not registered with Unit::Ratios: the client would name it `_ratios`.
        r.register(
            "bgp_visibility_ratio",
            "Share of peers that see the prefix or a covering prefix",
            m.bgp_visibility.clone(),
        );
        r.register(
            "bgp_peers_seeing",
            "Peers with a route to the prefix or a covering prefix",
            m.bgp_peers_seeing.clone(),
        );
        r.register("bgp_peers_total", "Peers that count for the prefix's visibility", m.bgp_peers_total.clone());
        r.register("bgp_feed_up", "Whether the BGP feed is connected, seeded and not stale", m.bgp_feed_up.clone());
        r.register("bgp_updates", "BGP route updates received from the feed", m.bgp_updates.clone());
        r.register(
            "bgp_malformed_messages",
            "Feed messages that could not be understood and were skipped",
            m.bgp_malformed.clone(),
        );
        r.register("service_up", "1 up or degraded, 0 down, NaN while the status is unknown", m.service_up.clone());
        r.register("service_status", "1 on the service's current status", m.service_status.clone());
        r.register(
            "service_cause",
            "1 while the service has this root cause (layer and reasons of its lowest DOWN layer)",
            m.service_cause.clone(),
        );
        r.register(
            "service_flapping",
            "1 while the service is flapping (its alerts are held back)",
            m.service_flapping.clone(),
        );
        r.register("store_errors", "Failed writes and reads of the history store", m.store_errors.clone());
        for op in ["write", "read"] {
            drop(m.store_errors.get_or_create(&OpLabels { op: op.into() }));
        }
        r.register("guard_up", "Whether the guard probe's last run passed (own connectivity)", m.guard_up.clone());
        r.register(
            "tls_cert_expiry_timestamp_seconds",
            "notAfter of the leaf certificate the tls probe last saw",
            m.tls_expiry.clone(),
        );
        r.register(
            "service_uptime_ratio",
            "Uptime over the window: (observed - down) / observed",
            m.service_uptime.clone(),
        );
        r.register(
            "monitor_online",
            "0 while every guard probe fails (own connectivity lost)",
            m.monitor_online.clone(),
        );
        r.register("alerts_sent", "Alerts delivered", m.alerts_sent.clone());
        r.register("alert_failures", "Failed alert delivery attempts", m.alert_failures.clone());
        r.register("alert_queue_length", "Alerts waiting in the outbox", m.alert_queue.clone());
        r.register(
            "config_last_reload_successful",
            "Whether the last config (re)load succeeded",
            m.config_reload_ok.clone(),
        );
        let build_info: Family<VersionLabels, Gauge> = Family::default();
        build_info.get_or_create(&VersionLabels { version: env!("CARGO_PKG_VERSION").into() }).set(1);
        r.register("build_info", "Always 1; the version label says which build runs", build_info);
        r.register_with_unit(
            "scheduler_lateness",
            "How late probe runs start against their schedule",
            Unit::Seconds,
            m.scheduler_lateness.clone(),
        );
        m.monitor_online.set(1);
        m.config_reload_ok.set(1);
        Metrics { registry, ..m }
    }

    /// Resolves the series of every probe in `plan` (call after each (re)load).
    pub fn install(&self, plan: &[Arc<ProbeRef>]) {
        let series = plan
            .iter()
            .map(|probe| {
                let labels = probe_labels(probe);
                let run = RunLabels {
                    service: labels.service.clone(),
                    probe: labels.probe.clone(),
                    kind: labels.kind.clone(),
                    result: "ok".into(),
                };
                let http = HttpLabels { service: labels.service.clone(), probe: labels.probe.clone() };
                ProbeSeries {
                    probe: probe.clone(),
                    success: self.probe_success.get_or_create_owned(&labels),
                    duration: self.probe_duration.get_or_create_owned(&labels),
                    runs_ok: self.probe_runs.get_or_create_owned(&run),
                    http_status: (probe.kind() == Kind::Http).then(|| self.http_status.get_or_create_owned(&http)),
                }
            })
            .collect();
        *self.series.write().unwrap_or_else(|e| e.into_inner()) = series;
    }

    fn record_run(&self, observation: &crate::probe::Observation) {
        let probe = &observation.probe;
        let finding = &observation.finding;
        self.scheduler_lateness.observe(observation.lateness.as_secs_f64());
        let series = self.series.read().unwrap_or_else(|e| e.into_inner());
        let Some(s) = series.get(probe.index).filter(|s| Arc::ptr_eq(&s.probe, probe)) else {
            return;
        };
        s.success.set(i64::from(finding.result.is_ok()));
        s.duration.observe(observation.duration.as_secs_f64());
        match finding.result {
            Ok(()) => {
                s.runs_ok.inc();
            }
            Err(reason) => {
                let labels = probe_labels(probe);
                let run = RunLabels {
                    service: labels.service,
                    probe: labels.probe,
                    kind: labels.kind,
                    result: reason.as_str().into(),
                };
                self.probe_runs.get_or_create(&run).inc();
            }
        }
        if let Some(status) = &s.http_status {
            status.set(i64::from(finding.http_status.unwrap_or(0)));
        }
        if let Some(at) = finding.cert_expiry {
            let l = HttpLabels { service: probe.service.clone(), probe: probe.spec.id.clone() };
            self.tls_expiry.get_or_create(&l).set(at);
        }
        if probe.is_guard() && finding.result != Err(crate::probe::Reason::ProbeResource) {
            self.guard_up
                .get_or_create(&GuardLabels { guard: probe.spec.id.clone() })
                .set(i64::from(finding.result.is_ok()));
        }
        if let Some(v) = &finding.visibility {
            let l = BgpLabels {
                service: probe.service.clone(),
                probe: probe.spec.id.clone(),
                prefix: v.prefix.to_string(),
            };
            self.bgp_visibility.get_or_create(&l).set(v.ratio());
            self.bgp_peers_seeing.get_or_create(&l).set(v.peers_seeing as i64);
            self.bgp_peers_total.get_or_create(&l).0.set(v.peers_total as i64);
        }
    }

    /// Applies one verdict event.
    pub fn record(&self, event: &Event<'_>) {
        match event {
            Event::Observed { observation, .. } => self.record_run(observation),
            Event::ProbeChanged { state, .. } => {
                let labels = probe_labels(&state.probe);
                match state.status {
                    ProbeStatus::Up => {
                        self.probe_up.get_or_create(&labels).set(1);
                    }
                    ProbeStatus::Down => {
                        self.probe_up.get_or_create(&labels).set(0);
                    }
                    ProbeStatus::Unknown => {
                        self.probe_up.remove(&labels);
                    }
                }
            }
            Event::ServiceChanged { service, .. } => {
                self.set_service_status(&service.id, service.status);
                self.set_cause(&service.id, service.cause.as_ref().map(|c| (c.layer.as_str(), c.reasons.as_str())));
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
            self.service_status.get_or_create(&l).set(i64::from(s == status));
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

    /// Drops every series of a probe that left the plan.
    pub fn forget_probe(&self, probe: &ProbeRef) {
        let labels = probe_labels(probe);
        self.probe_success.remove(&labels);
        self.probe_up.remove(&labels);
        self.probe_duration.remove(&labels);
        let words = std::iter::once("ok").chain(crate::probe::Reason::ALL.iter().map(|r| r.as_str()));
        for result in words {
            self.probe_runs.remove(&RunLabels {
                service: labels.service.clone(),
                probe: labels.probe.clone(),
                kind: labels.kind.clone(),
                result: result.into(),
            });
        }
        self.http_status.remove(&HttpLabels { service: labels.service.clone(), probe: labels.probe.clone() });
        self.tls_expiry.remove(&HttpLabels { service: labels.service.clone(), probe: labels.probe.clone() });
        if probe.is_guard() {
            self.guard_up.remove(&GuardLabels { guard: labels.probe.clone() });
        }
        if let crate::config::Check::Bgp(b) = &probe.spec.check {
            let l = BgpLabels { service: labels.service, probe: labels.probe, prefix: b.prefix.to_string() };
            self.bgp_visibility.remove(&l);
            self.bgp_peers_seeing.remove(&l);
            self.bgp_peers_total.remove(&l);
        }
    }

    /// Drops every series of a service that left the config.
    pub fn forget_service(&self, service: &str) {
        self.set_cause(service, None);
        self.service_flapping.remove(&ServiceLabels { service: service.into() });
        self.service_up.remove(&ServiceLabels { service: service.into() });
        for s in ServiceStatus::ALL {
            self.service_status.remove(&StatusLabels { service: service.into(), status: s.as_str().into() });
        }
        for window in UPTIME_WINDOWS {
            self.service_uptime.remove(&WindowLabels { service: service.into(), window: window.0.into() });
        }
    }

    /// Creates the series whose labels the config already fixes, so they
    /// exist from the first scrape (counters at 0) and `absent()` rules and
    /// dashboards see them before the first event.
    pub fn declare(&self, sources: &[&str], channels: &[&str], events: &[&str]) {
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
        let probe = ProbeLabels { service: "s".into(), probe: "p".into(), kind: "dns".into() };
        let run = RunLabels { service: "s".into(), probe: "p".into(), kind: "dns".into(), result: "ok".into() };
        let http = HttpLabels { service: "s".into(), probe: "p".into() };
        let bgp = BgpLabels { service: "s".into(), probe: "p".into(), prefix: "10.0.0.0/8".into() };
        let source = SourceLabels { source: "session".into() };
        let alert = AlertLabels { channel: "email".into(), event: "down".into() };
        drop(m.probe_success.get_or_create(&probe));
        drop(m.probe_up.get_or_create(&probe));
        drop(m.probe_duration.get_or_create(&probe));
        drop(m.probe_runs.get_or_create(&run));
        drop(m.http_status.get_or_create(&http));
        drop(m.bgp_visibility.get_or_create(&bgp));
        drop(m.bgp_peers_seeing.get_or_create(&bgp));
        drop(m.bgp_peers_total.get_or_create(&bgp));
        m.set_feed_up("ris-live", Some("stale"));
        drop(m.bgp_updates.get_or_create(&source));
        drop(m.bgp_malformed.get_or_create(&source));
        m.set_service_status("s", ServiceStatus::Up);
        m.set_uptime("s", "30d", 1.0);
        drop(m.alerts_sent.get_or_create(&alert));
        drop(m.alert_failures.get_or_create(&alert));
        m.set_alert_queue("email", 0);
        m.set_cause("s", Some(("dns", "dns_servfail")));
        drop(m.guard_up.get_or_create(&GuardLabels { guard: "g".into() }));
        drop(m.tls_expiry.get_or_create(&http));
        m.render()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .map(str::to_string)
            .collect()
    }

    /// The exposition text, as one string (tests, small registries).
    pub fn render(&self) -> String {
        use std::sync::atomic::Ordering;
        let last = self.last_render_len.load(Ordering::Relaxed);
        let mut out = String::with_capacity(last + last / 8 + 16 * 1024);
        // Writing into a String cannot fail.
        let _ = self.encode(&mut out);
        self.last_render_len.store(out.len(), Ordering::Relaxed);
        out
    }

    /// Writes the exposition text into `out` as it is encoded (the
    /// `/metrics` handler streams it in chunks instead of building one
    /// 17 MB string for 10,000 probes). Fails only when `out` does.
    pub fn encode(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        prometheus_client::encoding::prometheus_text::encode(out, &self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Finding, Observation};
    use std::time::{Duration, SystemTime};

    /// Every metric name of README, "Metrics", as it must appear on a sample line.
    const SPEC_SERIES: [&str; 24] = [
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
        let plan = crate::probe::plan(&config);
        let metrics = Metrics::new();
        metrics.install(&plan);
        let mut verdict = crate::verdict::Verdict::new(&config, &plan, SystemTime::now());
        let mut finding = Finding::fail(crate::probe::Reason::HttpStatus, "503");
        finding.http_status = Some(503);
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
}
