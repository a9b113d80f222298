//! The per-probe metric families (README, "Metrics"): `probe_success`,
//! `probe_up`, `probe_duration_seconds`, `probe_runs_total`,
//! `http_status_code`, `tls_cert_expiry_timestamp_seconds`, `guard_up` and
//! the three `bgp_*` gauges of a bgp probe.
//!
//! Each probe owns one small block of plain numbers, labelled only while
//! `/metrics` is encoded, from the probe's own config. A label-keyed
//! `Family` per metric held each label string once per series plus a hash
//! entry: about 1.6 KiB per probe, most of the monitor's memory at 100,000
//! probes. This block is about 250 bytes, and a scrape walks the plan in
//! its order instead of hashing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::registry::Unit;

use crate::config::{Check, Kind};
use crate::probe::{Observation, ProbeRef, Reason};

/// Upper bounds of the duration buckets: 1 ms to the 5 s default timeout.
/// Each bucket is a line per probe on every scrape, so there are no more
/// than the percentiles need.
const DURATION_BOUNDS: [f64; 11] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// No exemplars: the type the encoder's exemplar parameter needs.
type NoExemplar<V> = Option<&'static Exemplar<[(&'static str, &'static str); 0], V>>;

/// One probe's numbers since it entered the plan.
#[derive(Debug, Default)]
struct Numbers {
    success: bool,
    /// Confirmed state; `None` while unknown (no `probe_up` series).
    up: Option<bool>,
    /// Runs per duration bucket (not cumulative), the last one `+Inf`.
    duration: [u64; DURATION_BOUNDS.len() + 1],
    duration_sum: f64,
    runs_ok: u64,
    /// Failed runs by reason, in the order the reasons first happened.
    runs_failed: Vec<(Reason, u64)>,
    /// Status code of the last HTTP response (0 = none).
    http_status: u16,
    cert_expiry: Option<i64>,
    guard_up: Option<bool>,
    /// Ratio, peers seeing, peers counting: the last visibility judged.
    visibility: Option<(f64, usize, usize)>,
}

impl Numbers {
    fn observe_duration(&mut self, seconds: f64) {
        let bucket = DURATION_BOUNDS.iter().position(|b| seconds <= *b).unwrap_or(DURATION_BOUNDS.len());
        self.duration[bucket] += 1;
        self.duration_sum += seconds;
    }
}

#[derive(Debug)]
struct Series {
    probe: Arc<ProbeRef>,
    /// Shared with the same probe's series in an older plan that a scrape
    /// may still be encoding.
    numbers: Arc<Mutex<Numbers>>,
}

fn lock(s: &Series) -> std::sync::MutexGuard<'_, Numbers> {
    s.numbers.lock().unwrap_or_else(|e| e.into_inner())
}

/// The numbers of every probe in the plan, by plan index; the registry
/// encodes them through [`Collector`]. A scrape encodes its own snapshot
/// of the plan (an `Arc`), so a slow client never holds a lock that a
/// reload or a run on the probe thread waits for.
#[derive(Debug, Default)]
pub(super) struct ProbeFamilies {
    series: RwLock<Arc<Vec<Series>>>,
}

impl ProbeFamilies {
    /// Takes the plan after a (re)load. A probe that kept its service and
    /// config keeps its numbers (counters never go back); the series of a
    /// probe that left or changed are gone from the next scrape.
    pub(super) fn install(&self, plan: &[Arc<ProbeRef>]) {
        let old = self.snapshot();
        let kept: HashMap<(&str, &str), &Series> =
            old.iter().map(|s| ((s.probe.service.as_str(), s.probe.spec.id.as_str()), s)).collect();
        let series = plan
            .iter()
            .map(|probe| {
                let numbers = kept
                    .get(&(probe.service.as_str(), probe.spec.id.as_str()))
                    .filter(|old| old.probe.spec == probe.spec)
                    .map(|old| old.numbers.clone())
                    .unwrap_or_default();
                Series { probe: probe.clone(), numbers }
            })
            .collect();
        *self.series.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(series);
    }

    /// The current plan's series.
    fn snapshot(&self) -> Arc<Vec<Series>> {
        self.series.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Applies `f` to the numbers of `probe`, if it is the plan's current one
    /// (a run of a probe a reload replaced is not counted).
    fn update(&self, probe: &Arc<ProbeRef>, f: impl FnOnce(&mut Numbers)) {
        let series = self.series.read().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = series.get(probe.index).filter(|s| Arc::ptr_eq(&s.probe, probe)) {
            f(&mut lock(s));
        }
    }

    /// Records one judged run.
    pub(super) fn record_run(&self, observation: &Observation) {
        let finding = &observation.finding;
        let guard = observation.probe.is_guard();
        self.update(&observation.probe, |n| {
            n.success = finding.result.is_ok();
            n.observe_duration(observation.duration.as_secs_f64());
            match finding.result {
                Ok(()) => n.runs_ok += 1,
                Err(reason) => match n.runs_failed.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, count)) => *count += 1,
                    None => n.runs_failed.push((reason, 1)),
                },
            }
            n.http_status = finding.http_status().unwrap_or(0);
            if let Some(at) = finding.cert_expiry() {
                n.cert_expiry = Some(at);
            }
            // A probe that could not run says nothing about connectivity.
            if guard && finding.result != Err(Reason::ProbeResource) {
                n.guard_up = Some(finding.result.is_ok());
            }
            if let Some(v) = finding.visibility() {
                n.visibility = Some((v.ratio(), v.peers_seeing, v.peers_total));
            }
        });
    }

    /// Sets the confirmed state (`None`: unknown).
    pub(super) fn set_up(&self, probe: &Arc<ProbeRef>, up: Option<bool>) {
        self.update(probe, |n| n.up = up);
    }
}

impl ProbeFamilies {
    /// Gives every installed probe a sample in every family, so that
    /// [`super::Metrics::exported_names`] sees every name.
    pub(super) fn fill_every_family(&self) {
        for s in self.snapshot().iter() {
            let mut n = lock(s);
            n.up = Some(true);
            n.cert_expiry = Some(0);
            n.guard_up = Some(true);
            n.visibility = Some((1.0, 1, 1));
        }
    }
}

/// `{service, probe, kind}`.
fn probe_labels(p: &ProbeRef) -> [(&'static str, &str); 3] {
    [("service", &p.service), ("probe", &p.spec.id), ("kind", p.kind().as_str())]
}

/// `{service, probe}`.
fn short_labels(p: &ProbeRef) -> [(&'static str, &str); 2] {
    [("service", &p.service), ("probe", &p.spec.id)]
}

/// One family: its descriptor (help texts end with a full stop, as the
/// registry writes them for the other families), then a sample per probe that `sample`
/// encodes (it writes nothing for a probe without this series). A family
/// with no series at all is left out, as the registry does.
fn family(
    encoder: &mut DescriptorEncoder,
    series: &[Series],
    (name, help, unit, metric_type): (&str, &str, Option<&Unit>, MetricType),
    has: impl Fn(&ProbeRef, &Numbers) -> bool,
    sample: impl Fn(&mut MetricEncoder, &ProbeRef, &Numbers) -> std::fmt::Result,
) -> std::fmt::Result {
    // One pass: up to the first probe with this series, then from there.
    let Some(first) = series.iter().position(|s| has(&s.probe, &lock(s))) else { return Ok(()) };
    let mut metric = encoder.encode_descriptor(name, help, unit, metric_type)?;
    for s in &series[first..] {
        let numbers = lock(s);
        if has(&s.probe, &numbers) {
            sample(&mut metric, &s.probe, &numbers)?;
        }
    }
    Ok(())
}

/// A gauge's value: a count or a ratio.
enum Value {
    Int(i64),
    Float(f64),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

fn gauge(metric: &mut MetricEncoder, labels: &impl EncodeLabelSet, value: impl Into<Value>) -> std::fmt::Result {
    let mut sample = metric.encode_family(labels)?;
    match value.into() {
        Value::Int(v) => sample.encode_gauge(&v),
        Value::Float(v) => sample.encode_gauge(&v),
    }
}

fn counter(metric: &mut MetricEncoder, labels: &impl EncodeLabelSet, value: u64) -> std::fmt::Result {
    metric.encode_family(labels)?.encode_counter(&value, NoExemplar::<u64>::None)
}

/// The prefix label of a bgp probe.
fn prefix_of(p: &ProbeRef) -> String {
    match &p.spec.check {
        Check::Bgp(b) => b.prefix.to_string(),
        _ => String::new(),
    }
}

impl Collector for ProbeFamilies {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let series = self.snapshot();
        let e = &mut encoder;
        let s = series.as_slice();
        use MetricType::{Counter, Gauge, Histogram, Unknown};
        let always = |_: &ProbeRef, _: &Numbers| true;
        family(
            e,
            s,
            ("probe_success", "Whether the probe's last run passed (1) or failed (0).", None, Gauge),
            always,
            |m, p, n| gauge(m, &probe_labels(p), i64::from(n.success)),
        )?;
        family(
            e,
            s,
            ("probe_up", "Confirmed probe state: 1 up, 0 down (absent while unknown).", None, Gauge),
            |_, n| n.up.is_some(),
            |m, p, n| gauge(m, &probe_labels(p), i64::from(n.up == Some(true))),
        )?;
        family(
            e,
            s,
            ("probe_duration", "Duration of probe runs.", Some(&Unit::Seconds), Histogram),
            always,
            |m, p, n| {
                let mut buckets = [(f64::INFINITY, 0); DURATION_BOUNDS.len() + 1];
                for (i, bucket) in buckets.iter_mut().enumerate() {
                    *bucket = (DURATION_BOUNDS.get(i).copied().unwrap_or(f64::INFINITY), n.duration[i]);
                }
                let count = n.duration.iter().sum();
                m.encode_family(&probe_labels(p))?.encode_histogram(
                    n.duration_sum,
                    count,
                    &buckets,
                    None::<&HashMap<usize, Exemplar<[(&str, &str); 0], f64>>>,
                )
            },
        )?;
        family(
            e,
            s,
            ("probe_runs", "Probe runs by result (ok or the failure reason).", None, Counter),
            always,
            |m, p, n| {
                let [service, probe, kind] = probe_labels(p);
                counter(m, &[service, probe, kind, ("result", "ok")], n.runs_ok)?;
                for (reason, count) in &n.runs_failed {
                    counter(m, &[service, probe, kind, ("result", reason.as_str())], *count)?;
                }
                Ok(())
            },
        )?;
        family(
            e,
            s,
            ("http_status_code", "Status code of the last HTTP response (0 = no response).", None, Gauge),
            |p, _| p.kind() == Kind::Http,
            |m, p, n| gauge(m, &short_labels(p), i64::from(n.http_status)),
        )?;
        family(
            e,
            s,
            (
                "tls_cert_expiry_timestamp_seconds",
                "notAfter of the leaf certificate the tls probe last saw.",
                None,
                Gauge,
            ),
            |_, n| n.cert_expiry.is_some(),
            |m, p, n| gauge(m, &short_labels(p), n.cert_expiry.unwrap_or(0)),
        )?;
        family(
            e,
            s,
            ("guard_up", "Whether the guard probe's last run passed (own connectivity).", None, Gauge),
            |_, n| n.guard_up.is_some(),
            |m, p, n| gauge(m, &[("guard", p.spec.id.as_str())], i64::from(n.guard_up == Some(true))),
        )?;
        // Not registered with Unit::Ratios: the client would name it `_ratios`.
        type Pick = fn((f64, usize, usize)) -> Value;
        let bgp: [(&str, &str, MetricType, Pick); 3] = [
            ("bgp_visibility_ratio", "Share of peers that see the prefix or a covering prefix.", Gauge, |v| v.0.into()),
            ("bgp_peers_seeing", "Peers with a route to the prefix or a covering prefix.", Gauge, |v| {
                (v.1 as i64).into()
            }),
            // Untyped: the contract names this gauge `_total`, which promtool
            // rejects on a gauge but accepts on an untyped metric.
            ("bgp_peers_total", "Peers that count for the prefix's visibility.", Unknown, |v| (v.2 as i64).into()),
        ];
        for (name, help, metric_type, pick) in bgp {
            family(
                e,
                s,
                (name, help, None, metric_type),
                |_, n| n.visibility.is_some(),
                |m, p, n| {
                    let prefix = prefix_of(p);
                    let [service, probe] = short_labels(p);
                    gauge(m, &[service, probe, ("prefix", &prefix)], pick(n.visibility.unwrap_or_default()))
                },
            )?;
        }
        Ok(())
    }
}
