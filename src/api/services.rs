//! `GET /api/v1/services`: every service's current status, cause and
//! probes, and the guards (the monitor's own connectivity).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;
use crate::config::Config;
use crate::probe::result_word;
use crate::time::rfc3339;
use crate::verdict::{ProbeState, ServiceState, Verdict};
use crate::views::CauseView;

/// The response body.
#[derive(Serialize)]
pub struct ServicesView {
    vantage: String,
    online: bool,
    services: Vec<ServiceView>,
    guards: Vec<GuardView>,
    /// Each configured BGP source: up, or down and why.
    bgp_sources: Vec<crate::bgp::SourceStatus>,
}

#[derive(Serialize)]
struct GuardView {
    id: String,
    kind: String,
    target: String,
    status: String,
    last_result: Option<String>,
}

#[derive(Serialize)]
struct ServiceView {
    id: String,
    name: String,
    status: String,
    since: String,
    cause: Option<CauseView>,
    /// In a maintenance window now (its alerts held, its time not counted).
    maintenance: bool,
    probes: Vec<ProbeView>,
}

#[derive(Serialize)]
struct ProbeView {
    id: String,
    kind: String,
    target: String,
    /// Part of an essential group (README, "Service status").
    essential: bool,
    /// The essential group, if named.
    group: Option<String>,
    status: String,
    last_result: Option<String>,
    last_duration_ms: Option<f64>,
    last_run: Option<String>,
}

fn probe_view(state: &ProbeState) -> ProbeView {
    let spec = &state.probe.spec;
    ProbeView {
        id: spec.id.clone(),
        kind: spec.check.kind().to_string(),
        target: spec.check.target(),
        essential: spec.essential,
        group: spec.group.clone(),
        status: state.status.as_str().into(),
        last_result: state.last.as_ref().map(|l| result_word(l.finding.result).to_string()),
        last_duration_ms: state.last.as_ref().map(|l| (l.duration.as_secs_f64() * 1e6).round() / 1e3),
        last_run: state.last.as_ref().map(|l| rfc3339(l.at)),
    }
}

fn service_view(config: &Config, verdict: &Verdict, service: &ServiceState, now: i64) -> ServiceView {
    ServiceView {
        maintenance: crate::maintenance::active(&config.maintenance, &service.id, now).is_some(),
        id: service.id.clone(),
        name: service.name.clone(),
        status: service.status.as_str().into(),
        since: rfc3339(service.since),
        cause: service.cause.as_ref().map(|c| CauseView::of(&c.cause)),
        probes: service.probes.iter().map(|&i| probe_view(&verdict.probes()[i])).collect(),
    }
}

/// Builds the view at `now`, with the BGP sources' health.
pub fn view(config: &Config, verdict: &Verdict, now: i64, sources: Vec<crate::bgp::SourceStatus>) -> ServicesView {
    ServicesView {
        bgp_sources: sources,
        vantage: config.monitor.vantage.clone(),
        online: verdict.online(),
        services: verdict.services().iter().map(|s| service_view(config, verdict, s, now)).collect(),
        guards: verdict
            .probes()
            .iter()
            .filter(|p| p.probe.is_guard())
            .map(|p| {
                let probe = probe_view(p);
                GuardView {
                    id: probe.id,
                    kind: probe.kind,
                    target: probe.target,
                    status: probe.status,
                    last_result: probe.last_result,
                }
            })
            .collect(),
    }
}

/// The handler.
pub async fn list(axum::extract::State(state): State<Arc<AppState>>) -> Json<ServicesView> {
    let config = state.config.borrow().clone();
    let verdict = state.verdict.read().await;
    Json(view(&config, &verdict, crate::time::unix(std::time::SystemTime::now()), state.feed.snapshot()))
}
