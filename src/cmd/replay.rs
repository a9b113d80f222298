//! `chatpulse replay [--json] FILE...`: feeds MRT files (RIB dumps and
//! update files, in the order given) through the visibility engine for the
//! configured bgp probes, and prints each watched prefix's visibility
//! timeline and the alerts that would have fired — the same engine, judge and
//! verdict as `run`, driven by the files' timestamps. Backtests thresholds
//! against real history.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::bgp::Visibility;
use crate::bgp::config::BgpSource;
use crate::bgp::event::FeedEvent;
use crate::bgp::feed::{Engine, Publish};
use crate::bgp::mrt::{Element, Reader, decompress};
use crate::config::{Check, Config, Kind};
use crate::prefix::Prefix;
use crate::probe::bgp::BgpCheck;
use crate::probe::{self, Observation, ProbeRef, result_word};
use crate::time::{from_unix, rfc3339};
use crate::verdict::{Event, Verdict};

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The config watches no prefix.
    #[error("{0} has no bgp probes: nothing to replay against")]
    NothingWatched(String),
    /// A file could not be opened or read.
    #[error("{file}: {why}")]
    Unreadable {
        /// The file.
        file: String,
        /// Why.
        why: String,
    },
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// A change of one watched prefix's visibility (the `--json` line).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Change {
    /// RFC 3339 time of the MRT record.
    pub time: String,
    /// The watched prefix.
    pub prefix: String,
    /// Peers seeing it (or a covering prefix).
    pub peers_seeing: usize,
    /// Peers that count.
    pub peers_total: usize,
    /// seeing / total.
    pub ratio: f64,
    /// The bgp probe's judgement: `ok` or the reason.
    pub state: String,
}

/// An alert that would have fired.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Alert {
    /// When.
    pub time: String,
    /// Service id.
    pub service: String,
    /// `down`, `degraded` or `recovered`.
    pub event: String,
    /// Root cause summary (empty for recoveries).
    pub cause: String,
}

/// Per-prefix totals.
#[derive(Debug, Clone, Serialize)]
pub struct PrefixSummary {
    /// The prefix.
    pub prefix: String,
    /// Visibility changes seen.
    pub changes: u64,
    /// Lowest ratio seen once any peer counted (`None`: no peer ever did).
    pub min_ratio: Option<f64>,
    /// The last state.
    pub final_state: String,
}

/// The `{"summary": ...}` line.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Files read.
    pub files: usize,
    /// MRT records read.
    pub records: u64,
    /// Route elements read.
    pub elements: u64,
    /// Messages skipped as malformed.
    pub malformed: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Elements per second.
    pub elements_per_second: f64,
    /// Per watched prefix.
    pub prefixes: Vec<PrefixSummary>,
    /// Alerts that would have fired.
    pub alerts: Vec<Alert>,
}

/// The bgp-only view of the config the replay judges with.
struct Judges {
    plan: Vec<Arc<ProbeRef>>,
    verdict: Verdict,
    /// Per watched prefix: the first bgp check on it (for the `state` field).
    checks: Vec<(Prefix, BgpCheck)>,
    thresholds: crate::bgp::Thresholds,
    /// Which transitions alert, as the alert channels ask (defaults without any).
    /// The same alert machine `run` uses.
    alerts: crate::alerting::AlertMachine,
}

fn judges(config: &Config) -> Judges {
    let mut reduced = config.clone();
    reduced.guards.clear();
    for service in &mut reduced.services {
        service.probes.retain(|p| p.check.kind() == Kind::Bgp);
    }
    reduced.services.retain(|s| !s.probes.is_empty());
    let plan = reduced.plan();
    let verdict = Verdict::new(&reduced, &plan, from_unix(0));
    let mut checks: Vec<(Prefix, BgpCheck)> = Vec::new();
    for p in &plan {
        if let Check::Bgp(b) = &p.spec.check
            && !checks.iter().any(|(w, _)| *w == b.prefix)
        {
            checks.push((b.prefix, (**b).clone()));
        }
    }
    Judges {
        plan,
        verdict,
        checks,
        thresholds: crate::bgp::Thresholds {
            min_peers: config.bgp.min_peers,
            hijack_min_peers: config.bgp.hijack_min_peers,
        },
        alerts: crate::alerting::AlertMachine::new(crate::alerting::Policy::from_config(config)),
    }
}

/// Counts compressed bytes read, for progress.
struct Counting<R> {
    inner: R,
    read: Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Replays `files`; writes the timeline and summary to `out`, progress to
/// `progress`.
pub fn replay(
    config: &Config,
    files: &[PathBuf],
    json: bool,
    out: &mut dyn Write,
    progress: &mut dyn Write,
) -> Result<Summary, ReplayError> {
    let watched = config.watched_prefixes();
    if watched.is_empty() {
        return Err(ReplayError::NothingWatched(config.file.display().to_string()));
    }
    let summaries = watched
        .iter()
        .map(|p| PrefixSummary {
            prefix: p.to_string(),
            changes: 0,
            min_ratio: None,
            final_state: "bgp_unknown".into(),
        })
        .collect();
    let timeline = Timeline {
        at: None,
        last: watched.iter().map(|w| (*w, None)).collect(),
        summaries,
        judges: judges(config),
        alerts: Vec::new(),
        out,
        json,
        write_error: None,
    };
    // The engine `run` uses, fed by the files: they are the whole feed,
    // so it is up from the first record.
    let mut engine = Engine::new(BgpSource::Mrt, watched, timeline, None).already_up();
    if let Some(path) = &config.bgp.rpki {
        let vrps = crate::bgp::rpki::read(path)
            .map_err(|why| ReplayError::Unreadable { file: path.display().to_string(), why: why.to_string() })?;
        engine.apply(FeedEvent::Vrps(Arc::new(vrps)));
    }
    let mut previous_end: Option<(String, u32)> = None;
    let started = Instant::now();
    let mut totals = crate::bgp::mrt::Stats::default();

    for path in files {
        let name = path.display().to_string();
        let unreadable = |why: String| ReplayError::Unreadable { file: name.clone(), why };
        let file = File::open(path).map_err(|e| unreadable(e.to_string()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let read = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let input = decompress(Counting { inner: file, read: read.clone() }).map_err(|e| unreadable(e.to_string()))?;
        let mut reader = Reader::new(input);
        let mut last_progress = Instant::now();
        let mut on_element = |element: Element| {
            engine.publisher().at = Some(from_unix(i64::from(element.time())));
            engine.apply(element.into());
            if last_progress.elapsed() >= Duration::from_secs(1) {
                last_progress = Instant::now();
                let done = read.load(std::sync::atomic::Ordering::Relaxed);
                let percent = (100 * done).checked_div(size).unwrap_or(0);
                let _ = writeln!(progress, "replay: {name}: {percent}% ({} of {} MB)", done >> 20, size >> 20);
            }
        };
        reader.for_each(&mut on_element).map_err(|e| unreadable(e.to_string()))?;
        totals.records += reader.stats.records;
        totals.elements += reader.stats.elements;
        totals.malformed += reader.stats.malformed;
        totals.rib_records += reader.stats.rib_records;
        if let Some((first, last)) = reader.stats.span {
            if let Some((before, end)) = &previous_end
                && first < *end
            {
                let _ = writeln!(
                    progress,
                    "replay: warning: {name} starts at {}, before {before} ends ({}): the timeline follows the order the files are given, so give them oldest first",
                    rfc3339(from_unix(i64::from(first))),
                    rfc3339(from_unix(i64::from(*end)))
                );
            }
            previous_end = Some((name.clone(), last));
        }
    }
    let timeline = engine.publisher();
    if let Some(e) = timeline.write_error.take() {
        return Err(e.into());
    }
    let seconds = started.elapsed().as_secs_f64();
    let summary = Summary {
        files: files.len(),
        records: totals.records,
        elements: totals.elements,
        malformed: totals.malformed,
        seconds: (seconds * 1000.0).round() / 1000.0,
        elements_per_second: if seconds > 0.0 { (totals.elements as f64 / seconds).round() } else { 0.0 },
        prefixes: std::mem::take(&mut timeline.summaries),
        alerts: std::mem::take(&mut timeline.alerts),
    };
    print_summary(timeline.out, &summary, json, totals.rib_records > 0)?;
    Ok(summary)
}

/// What the engine publishes, as the replay sees it: each change of a
/// watched prefix's visibility printed and judged by the bgp probes on it,
/// at the time of the record that caused it.
struct Timeline<'o> {
    /// The current record's time; `None` before the first (what the
    /// engine publishes while being set up is not a change).
    at: Option<SystemTime>,
    /// Per watched prefix, the visibility last shown.
    last: Vec<(Prefix, Option<Visibility>)>,
    summaries: Vec<PrefixSummary>,
    judges: Judges,
    alerts: Vec<Alert>,
    out: &'o mut dyn Write,
    json: bool,
    /// The first failed write; the replay goes on, then reports it.
    write_error: Option<std::io::Error>,
}

impl Publish for Timeline<'_> {
    fn visibility(&mut self, v: Visibility) {
        let Some(at) = self.at else { return };
        let Some(i) = self.last.iter().position(|(w, _)| *w == v.prefix) else { return };
        // Any change counts: an origin switching with the same number of
        // peers is exactly what a backtest must catch.
        if self.last[i].1.as_ref() == Some(&v) {
            return;
        }
        let judges = &self.judges;
        let state = judges
            .checks
            .iter()
            .find(|(p, _)| *p == v.prefix)
            .map(|(_, check)| result_word(probe::bgp::judge(check, &judges.thresholds, &v).result))
            .unwrap_or("ok");
        let change = Change {
            time: rfc3339(at),
            prefix: v.prefix.to_string(),
            peers_seeing: v.peers_seeing,
            peers_total: v.peers_total,
            ratio: (v.ratio() * 10_000.0).round() / 10_000.0,
            state: state.to_string(),
        };
        let summary = &mut self.summaries[i];
        summary.changes += 1;
        if v.peers_total > 0 {
            summary.min_ratio = Some(summary.min_ratio.map_or(v.ratio(), |m| m.min(v.ratio())));
        }
        summary.final_state = state.to_string();
        if self.write_error.is_none()
            && let Err(e) = print_change(self.out, &change, self.json, self.judges.thresholds.min_peers)
        {
            self.write_error = Some(e);
        }
        observe(&mut self.judges, &v, at, &mut self.alerts);
        self.last[i].1 = Some(v);
    }

    fn source(&mut self, _: &'static str, _: Option<&'static str>) {}
}

/// Feeds the judgement of `v` to every bgp probe on its prefix, collecting
/// the service alerts the verdict's transitions imply.
fn observe(judges: &mut Judges, v: &Visibility, at: SystemTime, alerts: &mut Vec<Alert>) {
    for probe in judges.plan.iter().filter(|p| matches!(&p.spec.check, Check::Bgp(b) if b.prefix == v.prefix)) {
        let Check::Bgp(check) = &probe.spec.check else { continue };
        let observation = Observation {
            probe: probe.clone(),
            at,
            duration: Duration::ZERO,
            lateness: Duration::ZERO,
            finding: probe::bgp::judge(check, &judges.thresholds, v),
        };
        let machine = &mut judges.alerts;
        judges.verdict.observe(&observation, &mut |event| {
            if let Event::ServiceChanged { service, at, .. } = event {
                let Some(decision) = machine.observe(&service.id, service.status, crate::time::unix(at)) else {
                    return;
                };
                alerts.push(Alert {
                    time: rfc3339(at),
                    service: service.id.clone(),
                    event: decision.event().as_str().into(),
                    cause: service.cause.as_ref().map(|c| c.cause.summary.clone()).unwrap_or_default(),
                });
            }
        });
    }
}

fn print_change(out: &mut dyn Write, change: &Change, json: bool, min_peers: usize) -> std::io::Result<()> {
    if json {
        return writeln!(out, "{}", serde_json::to_string(change).unwrap_or_default());
    }
    // An unknown that the line itself does not explain: too few peers count.
    let why = if change.state == "bgp_unknown" && change.peers_total < min_peers {
        format!(" (fewer than min_peers = {min_peers} peers count)")
    } else {
        String::new()
    };
    writeln!(
        out,
        "{}  {:<18}  seen by {:>4} of {:>4} peers ({:>5.1}%)  {}{why}",
        change.time,
        change.prefix,
        change.peers_seeing,
        change.peers_total,
        change.ratio * 100.0,
        change.state
    )
}

fn print_summary(out: &mut dyn Write, summary: &Summary, json: bool, had_rib: bool) -> std::io::Result<()> {
    use super::plural;
    if json {
        return writeln!(out, "{}", serde_json::json!({ "summary": summary }));
    }
    for alert in &summary.alerts {
        let cause = if alert.cause.is_empty() { String::new() } else { format!(" — {}", alert.cause) };
        writeln!(out, "ALERT {}  {} {}{cause}", alert.time, alert.service, alert.event.to_uppercase())?;
    }
    let mut never_carried = false;
    for p in &summary.prefixes {
        let changes = plural(p.changes, "change", "changes");
        match p.min_ratio {
            Some(ratio) => writeln!(
                out,
                "{}: {changes}, lowest visibility {:.1}%, finally {}",
                p.prefix,
                ratio * 100.0,
                p.final_state
            )?,
            None => {
                never_carried = true;
                writeln!(out, "{}: {changes}, no peer ever carried it, finally {}", p.prefix, p.final_state)?
            }
        }
    }
    // The hint is for update files alone: with a dump given, a prefix no
    // peer carried is simply not routed.
    if never_carried && !had_rib {
        writeln!(
            out,
            "hint: visibility needs to know which peers carry a prefix; give a RIB dump (bview) of the same collector before its update files"
        )?;
    }
    writeln!(
        out,
        "replayed {}: {} records, {} elements ({} malformed) in {:.3} s, {:.0} elements/s; alerts that would have fired: {}",
        plural(summary.files as u64, "file", "files"),
        summary.records,
        summary.elements,
        summary.malformed,
        summary.seconds,
        summary.elements_per_second,
        summary.alerts.len()
    )
}

/// Checks that every file can be opened before any work starts.
pub fn check_readable(files: &[PathBuf]) -> Result<(), ReplayError> {
    for f in files {
        File::open(f).map_err(|e| ReplayError::Unreadable { file: f.display().to_string(), why: e.to_string() })?;
        if Path::new(f).is_dir() {
            return Err(ReplayError::Unreadable { file: f.display().to_string(), why: "is a directory".into() });
        }
    }
    Ok(())
}
