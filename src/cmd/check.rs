//! `chatpulse check`: one round of every probe (or one service's), printed as
//! a table or JSON, then each service's verdict as the status rule would
//! give it if these results were confirmed (README, "Service status").
//! Exit 0 when no probe failed and at least one passed, 1 when any failed or
//! nothing could be judged: `bgp_unknown` and `probe_resource` are shown and
//! counted apart, never as passes (and never as outages).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use futures_util::StreamExt;
use serde::Serialize;

use crate::bgp::VisibilityBoard;
use crate::bgp::event::FeedEvent;
use crate::bgp::feed::Engine;
use crate::bgp::seed;
use crate::config::{BgpSource, Check, Config};
use crate::prefix::Prefix;
use crate::probe::{self, ProbeRef, Reason, Toolkit, result_word};
use crate::scheduler::run_once;
use crate::verdict::{self, ProbeState};

/// What `check` could not do.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// `--service` names no configured service.
    #[error("no service \"{service}\" in {file} (configured: {known})")]
    UnknownService {
        /// The id asked for.
        service: String,
        /// The config file.
        file: String,
        /// The ids that exist.
        known: String,
    },
    /// The probe tools could not be created.
    #[error(transparent)]
    Toolkit(#[from] probe::ToolkitError),
}

/// One row of the result.
#[derive(Debug, Serialize)]
pub struct CheckRow {
    /// Service id (`_guard` for guards).
    pub service: String,
    /// Probe id.
    pub probe: String,
    /// dns, http or bgp.
    pub kind: String,
    /// What was probed.
    pub target: String,
    /// `ok` or the failure reason.
    pub result: String,
    /// How long the run took.
    pub duration_ms: f64,
    /// What came back.
    pub detail: String,
    /// The run said nothing about the target (`bgp_unknown`,
    /// `probe_resource`): shown, but neither a pass nor a failure.
    #[serde(skip)]
    pub inconclusive: bool,
    /// The probe and its finding, for the service verdicts.
    #[serde(skip)]
    pub judged: Option<(Arc<ProbeRef>, probe::Finding)>,
}

/// A service's verdict from one round.
#[derive(Debug, Serialize)]
pub struct ServiceVerdict {
    /// Service id.
    pub service: String,
    /// `up`, `degraded`, `down` or `unknown`.
    pub status: String,
    /// The root cause, when some probe failed.
    pub cause: Option<String>,
}

/// Each service's status and root cause, as `run` would judge them if this
/// round's results were confirmed; guards decide only whether the monitor
/// is offline (then every service is unknown).
pub fn verdicts(config: &Config, rows: &[CheckRow]) -> Vec<ServiceVerdict> {
    let at = std::time::SystemTime::now();
    let online = !offline(rows);
    config
        .services
        .iter()
        .filter_map(|service| {
            let states: Vec<ProbeState> = rows
                .iter()
                .filter(|r| r.service == service.id)
                .filter_map(|r| r.judged.as_ref())
                .map(|(probe, finding)| ProbeState::as_if_confirmed(probe.clone(), finding, at))
                .collect();
            if states.is_empty() {
                return None;
            }
            let refs: Vec<&ProbeState> = states.iter().collect();
            let status = verdict::service_status(&refs, online);
            let cause = (status != verdict::ServiceStatus::Unknown)
                .then(|| verdict::root_cause(&refs).map(|c| c.cause.summary))
                .flatten();
            Some(ServiceVerdict { service: service.id.clone(), status: status.as_str().to_string(), cause })
        })
        .collect()
}

/// Seeds `board` for a one-shot judgement: with RIS Live as the source, the
/// RIPEstat looking glass gives every RIS peer's current route at once. The
/// other sources need a running feed (`chatpulse run`). Returns, per prefix
/// left unknown, why.
async fn seed_board(config: &Config, prefixes: &[Prefix], board: &VisibilityBoard) -> HashMap<Prefix, String> {
    let mut problems = HashMap::new();
    if prefixes.is_empty() {
        return problems;
    }
    if !config.bgp.sources.contains(&BgpSource::RisLive) {
        let names: Vec<&str> = config.bgp.sources.iter().map(|s| s.as_str()).collect();
        let why = format!("the {} feed is followed only by `chatpulse run`", names.join(" and "));
        return prefixes.iter().map(|p| (*p, why.clone())).collect();
    }
    let mut engine = Engine::new(BgpSource::RisLive, prefixes.to_vec(), board.clone(), None);
    let client = match reqwest::Client::builder().connect_timeout(std::time::Duration::from_secs(10)).build() {
        Ok(client) => client,
        Err(e) => return prefixes.iter().map(|p| (*p, format!("cannot create an HTTP client ({e})"))).collect(),
    };
    for prefix in prefixes {
        match seed::looking_glass(&client, &config.bgp.seed_url, *prefix).await {
            Ok(events) => events.into_iter().for_each(|e| engine.apply(e)),
            Err(e) => {
                problems.insert(*prefix, e.to_string());
            }
        }
    }
    engine.apply(FeedEvent::Healthy(true));
    problems
}

/// Runs one round and returns the rows in config order.
pub async fn round(config: &Config, service: Option<&str>) -> Result<Vec<CheckRow>, CheckError> {
    if let Some(id) = service
        && !config.services.iter().any(|s| s.id == id)
    {
        return Err(CheckError::UnknownService {
            service: id.to_string(),
            file: config.file.display().to_string(),
            known: config.services.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", "),
        });
    }
    let selected: Vec<Arc<ProbeRef>> =
        config.plan().into_iter().filter(|p| p.is_guard() || service.is_none_or(|id| p.service == id)).collect();
    let mut prefixes: Vec<Prefix> = Vec::new();
    for p in &selected {
        if let Check::Bgp(b) = &p.spec.check
            && !prefixes.contains(&b.prefix)
        {
            prefixes.push(b.prefix);
        }
    }
    let board =
        VisibilityBoard::new(&prefixes, config.bgp.min_peers).with_hijack_min_peers(config.bgp.hijack_min_peers);
    let problems = seed_board(config, &prefixes, &board).await;
    let problems = &problems;
    let toolkit = Toolkit::new(board)?;
    let runs = futures_util::stream::iter(selected.into_iter().map(|info| {
        let probe = toolkit.build(&info);
        async move {
            let (_, duration, mut finding) = run_once(&info, probe.as_ref()).await;
            if let (Check::Bgp(b), Err(Reason::BgpUnknown)) = (&info.spec.check, finding.result)
                && let Some(why) = problems.get(&b.prefix)
            {
                finding.detail = format!("{}: {why}", b.prefix);
            }
            CheckRow {
                service: info.service.clone(),
                probe: info.spec.id.clone(),
                kind: info.kind().to_string(),
                target: info.spec.check.target(),
                result: result_word(finding.result).to_string(),
                duration_ms: (duration.as_secs_f64() * 1e6).round() / 1e3,
                inconclusive: finding.result.is_err_and(Reason::is_inconclusive),
                detail: finding.detail.clone(),
                judged: Some((info, finding)),
            }
        }
    }))
    .buffered(64)
    .collect::<Vec<_>>()
    .await;
    Ok(runs)
}

impl CheckRow {
    fn failed(&self) -> bool {
        self.result != "ok" && !self.inconclusive
    }
}

/// True when there are guards and every one failed: the monitor itself is
/// offline, and the other rows say nothing about the platforms.
pub fn offline(rows: &[CheckRow]) -> bool {
    let mut guards = rows.iter().filter(|r| r.service == probe::GUARD_SERVICE).peekable();
    guards.peek().is_some() && guards.all(CheckRow::failed)
}

/// True when no row failed and at least one passed: `bgp_unknown` and
/// `probe_resource` rows are neither, so a round of nothing but them is not
/// a pass.
pub fn all_passed(rows: &[CheckRow]) -> bool {
    !rows.iter().any(CheckRow::failed) && rows.iter().any(|r| r.result == "ok")
}

/// `text` safe to print on a terminal: control characters (CR, LF, ESC…)
/// from a DNS TXT record or a server's error become visible escapes
/// instead of moving the cursor or recolouring the screen.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Prints the rows and the service verdicts as a table or as one JSON document.
pub fn print(rows: &[CheckRow], verdicts: &[ServiceVerdict], json: bool, out: &mut dyn Write) -> std::io::Result<()> {
    if json {
        let doc = serde_json::json!({
            "passed": all_passed(rows),
            "offline": offline(rows),
            "results": rows,
            "services": verdicts,
        });
        return writeln!(out, "{doc}");
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.service.clone(),
                r.probe.clone(),
                r.kind.clone(),
                printable(&r.target),
                r.result.clone(),
                format!("{:.1} ms", r.duration_ms),
                printable(&r.detail),
            ]
        })
        .collect();
    super::print_table(out, &["SERVICE", "PROBE", "KIND", "TARGET", "RESULT", "DURATION", "DETAIL"], &table)?;
    let failed = rows.iter().filter(|r| r.failed()).count();
    let unjudged = rows.iter().filter(|r| r.inconclusive).count();
    let passed = rows.len() - failed - unjudged;
    writeln!(out)?;
    if offline(rows) {
        return writeln!(
            out,
            "the monitor itself is offline: every guard failed, so the results above say nothing about the platforms (check this machine's network)"
        );
    }
    for v in verdicts {
        match &v.cause {
            Some(cause) => writeln!(out, "{}: {} — {}", v.service, v.status, printable(cause))?,
            None => writeln!(out, "{}: {}", v.service, v.status)?,
        }
    }
    if !verdicts.is_empty() {
        writeln!(out)?;
    }
    let mut summary = match (failed, passed) {
        (0, 0) => format!("no probe could be judged ({} of {})", unjudged, rows.len()),
        (0, n) if n == rows.len() => format!("all {n} probes passed"),
        (0, n) => format!("{n} of {} probes passed", rows.len()),
        (f, _) => format!("{f} of {} probes failed", rows.len()),
    };
    if unjudged > 0 && passed + failed > 0 {
        summary.push_str(&format!(
            "; {unjudged} could not be judged (bgp_unknown or probe_resource: not a pass, not an outage)"
        ));
    }
    writeln!(out, "{summary}")
}
