//! `GET /`: the status page. Server-rendered HTML that works without
//! JavaScript, reads well on a phone (no horizontal scrolling at 390 px) and
//! refreshes itself: per service its state, root cause, since when, a 90-day
//! uptime bar from the history store, and its latest incidents; a banner
//! while the monitor is offline or the BGP feed is down.
//!
//! The HTML of both pages (and of the e-mails, in `crate::alert::render`)
//! is written with maud: markup is a Rust expression checked when chatpulse
//! compiles, and every interpolated value is escaped unless wrapped in
//! `PreEscaped` — so escaping holds by construction, without a template
//! directory to ship or a runtime template error to handle (askama's
//! templates live in separate files and compile too, but maud keeps the
//! markup beside the data it shows, which suits pages this small).

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::response::Html;
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::AppState;
use crate::config::Config;
use crate::probe::{Reason, result_word};
use crate::store::uptime::{self, Bucket};
use crate::store::{Incident, Reader};
use crate::time::{from_unix, human, rfc3339, unix, utc_text};
use crate::verdict::{ServiceStatus, Verdict};

/// Days in the uptime bar.
const BAR_DAYS: i64 = 90;
/// Incidents listed per service.
const INCIDENTS_SHOWN: usize = 3;

pub(super) const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2430;background:#f4f6f9}
header,main,footer{max-width:860px;margin:0 auto;padding:12px 16px}
h1{font-size:1.3em;margin:8px 0 0}
h2{font-size:1.1em;margin:0}
p{margin:4px 0}
.meta,.small{color:#5b6574;font-size:.9em}
.summary{font-weight:600;margin:4px 0 0}
.banner{margin:12px 0;padding:10px 16px;border-radius:8px;font-weight:600}
.banner.offline{background:#fdecea;color:#8a1c12}
.banner.feed{background:#fff4e0;color:#7a4b00}
.service{background:#fff;border-radius:8px;padding:14px 16px;margin:12px 0;box-shadow:0 1px 2px rgba(0,0,0,.08);border-left:6px solid #9aa3ae}
.service.up{border-left-color:#1f9d55}.service.degraded{border-left-color:#e3a008}.service.down{border-left-color:#d93025}
.head{display:flex;flex-wrap:wrap;gap:8px;align-items:center;justify-content:space-between}
.badge{font-size:.8em;font-weight:700;padding:2px 8px;border-radius:10px;color:#fff;background:#5f6b7a}
.badge.up{background:#1a7f45}.badge.degraded{background:#8a5a00}.badge.down{background:#b3261e}.badge.maintenance{color:#fff;background:#4051b5;margin-left:4px}
.maintenance{color:#3b47a8}
.cause{font-weight:600}
.cause,.small,li{overflow-wrap:anywhere}
.bar{display:flex;gap:1px;height:26px;margin:10px 0 4px}
.bar span{flex:1 1 0;min-width:0;border-radius:1px;background:#d5d9df}
.bar .up{background:#1f9d55}.bar .degraded{background:#e3a008}.bar .down{background:#d93025}
ul{margin:6px 0 0;padding-left:18px}
details{margin-top:6px}
h2 a{color:inherit}
.chart{display:block;width:100%;height:48px;margin:6px 0 2px}
table{border-collapse:collapse;width:100%;table-layout:fixed}
td,th{text-align:left;padding:4px 6px;border-bottom:1px solid #e3e6ea;vertical-align:top;overflow-wrap:anywhere}
"#;

/// A service as the pages show it.
pub(super) struct ServiceView {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) status: ServiceStatus,
    pub(super) since: SystemTime,
    pub(super) cause: Option<String>,
    /// The maintenance window it is in now, if any.
    pub(super) maintenance: Option<(i64, i64)>,
    /// Each probe's row.
    pub(super) probes: Vec<ProbeRow>,
}

/// One probe as the pages show it.
pub(super) struct ProbeRow {
    /// Its id.
    pub(super) id: String,
    /// Its kind.
    pub(super) kind: &'static str,
    /// What it probes.
    pub(super) target: String,
    /// `essential (group …)`, `essential`, or empty.
    pub(super) role: String,
    /// The last run's result word.
    pub(super) result: &'static str,
    /// The last run's detail.
    pub(super) detail: String,
}

/// Every service's view at `now`, and whether the BGP feed is down.
pub(super) fn gather(config: &Config, verdict: &Verdict, now: i64) -> (Vec<ServiceView>, bool) {
    let probes = verdict.probes();
    let feed_down = probes.iter().any(|p| {
        p.last.as_ref().is_some_and(|l| {
            l.finding.result == Err(Reason::BgpUnknown) && l.finding.visibility().is_some_and(|v| !v.feed_up)
        })
    });
    let services = verdict
        .services()
        .iter()
        .map(|s| ServiceView {
            id: s.id.clone(),
            name: s.name.clone(),
            status: s.status,
            since: s.since,
            cause: s.cause.as_ref().map(|c| c.cause.summary.clone()),
            maintenance: crate::maintenance::active(&config.maintenance, &s.id, now),
            probes: s
                .probes
                .iter()
                .map(|&i| {
                    let p = &probes[i];
                    let last = p.last.as_ref();
                    let spec = &p.probe.spec;
                    ProbeRow {
                        id: spec.id.clone(),
                        kind: spec.check.kind().as_str(),
                        target: spec.check.target(),
                        role: spec.role().unwrap_or_default(),
                        result: last.map_or("not run yet", |l| result_word(l.finding.result)),
                        detail: last.map(|l| l.finding.detail.clone()).unwrap_or_default(),
                    }
                })
                .collect(),
        })
        .collect();
    (services, feed_down)
}

/// History per service: the daily buckets of the bar (today's ends in the
/// future, which is unknown), the uptime over the last [`BAR_DAYS`] days, and
/// the latest incidents. One status read per service serves both.
fn history(reader: &Reader, services: &[ServiceView], now: i64) -> Vec<(Vec<Bucket>, Vec<Incident>, Option<f64>)> {
    let day = 86_400;
    let to = now - now.rem_euclid(day) + day;
    let from = to - BAR_DAYS * day;
    let window = now - BAR_DAYS * day;
    services
        .iter()
        .map(|s| {
            let spans = reader.spans(&s.id, window, to, now).unwrap_or_default();
            let buckets = uptime::buckets(&spans, from, to, day);
            let ratio = uptime::summarize(&spans).ratio;
            let incidents = reader.incidents(Some(&s.id), from).unwrap_or_default();
            (buckets, incidents, ratio)
        })
        .collect()
}

/// The shell every page shares: head (viewport, self-refresh, style),
/// header, main, footer.
pub(super) fn document(title: &str, header: Markup, main: Markup, footer: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="refresh" content="30";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { (header) }
                main { (main) }
                footer class="small" { (footer) }
            }
        }
    }
}

/// Where a status sorts on the page: the worst first.
fn severity(status: ServiceStatus) -> u8 {
    match status {
        ServiceStatus::Down => 0,
        ServiceStatus::Degraded => 1,
        ServiceStatus::Unknown => 2,
        ServiceStatus::Up => 3,
    }
}

/// The monitor itself, as the page's header and banners show it.
struct MonitorView {
    vantage: String,
    online: bool,
    /// `id: target` of each guard (named while offline).
    guards: Vec<String>,
    /// Every bgp probe's feed is down.
    feed_down: bool,
    sources: Vec<crate::bgp::SourceStatus>,
}

fn render(
    monitor: &MonitorView,
    services: &[ServiceView],
    history: &[(Vec<Bucket>, Vec<Incident>, Option<f64>)],
    now: i64,
) -> String {
    let MonitorView { vantage, online, guards, feed_down, sources } = monitor;
    let (online, feed_down) = (*online, *feed_down);
    let count = |status: ServiceStatus| services.iter().filter(|s| s.status == status).count();
    let (down, degraded) = (count(ServiceStatus::Down), count(ServiceStatus::Degraded));
    let total = services.len();
    let noun = if total == 1 { "service" } else { "services" };
    let header = html! {
        h1 { "chatpulse status" }
        p class="summary" {
            @if down + degraded == 0 { "No service down or degraded (" (total) " " (noun) ")" }
            @else {
                (down) " of " (total) " " (noun) " down"
                @if degraded > 0 { ", " (degraded) " degraded" }
            }
        }
        p class="meta" { "vantage " b { (vantage) } " · updated " (utc_text(from_unix(now))) " UTC · refreshes every 30 s" }
    };
    // The worst first (down, degraded, unknown, up), config order within:
    // a down service is never below the fold.
    let mut order: Vec<usize> = (0..services.len()).collect();
    order.sort_by_key(|&i| severity(services[i].status));
    // Banners sit inside <main>, so they are exactly as wide as the cards
    // on a desktop and keep the same margin from the screen edge on a phone.
    let main = html! {
        @if !online {
            div class="banner offline" role="alert" {
                "This monitor is offline: every guard probe fails (" (guards.join(", "))
                "), so the states below are unknown. The problem is probably on our side, not the platforms'."
            }
        }
        @if feed_down {
            div class="banner feed" role="alert" {
                "The BGP feed is down or stale: routing visibility is unknown until it is back."
            }
        }
        @let down: Vec<String> = sources
            .iter()
            .filter(|s| !s.up)
            .map(|s| format!("{} ({})", s.source, s.reason.as_deref().unwrap_or("down")))
            .collect();
        @let up: Vec<&str> = sources.iter().filter(|s| s.up).map(|s| s.source.as_str()).collect();
        @if !feed_down && !down.is_empty() && !up.is_empty() {
            div class="banner feed" role="status" {
                "BGP source down: " (down.join(", ")) ". Routing visibility comes from " (up.join(", ")) " alone."
            }
        }
        @for (s, (buckets, incidents, ratio)) in order.iter().map(|&i| (&services[i], &history[i])) {
            (service_card(s, html! { h2 { a href={ "/services/" (s.id) } { (s.name) } } }, now, html! {
                div class="bar" role="img" aria-label={ "uptime of the last " (BAR_DAYS) " days" } {
                    @for b in buckets {
                        @let share = b.ratio.map_or_else(|| "no data".to_string(), |r| format!("{:.2}%", r * 100.0));
                        span class=(b.status.as_str()) title={ (&rfc3339(from_unix(b.start))[..10]) " " (b.status.as_str()) ": " (share) } {}
                    }
                }
                p class="small" {
                    (BAR_DAYS) " days: "
                    (ratio.map_or_else(|| "no data yet".to_string(), |r| format!("{:.3}% uptime", r * 100.0)))
                }
                @if !incidents.is_empty() {
                    (incident_list(incidents.iter().take(INCIDENTS_SHOWN)))
                }
                details {
                    summary { "Probes" }
                    ul {
                        @for p in &s.probes {
                            li { b { (p.id) } " " (p.target) ": " (p.result) br; span class="small" { (p.detail) } }
                        }
                    }
                }
            }))
        }
    };
    let footer = html! { "chatpulse · " a href="/api/v1/services" { "JSON" } " · " a href="/metrics" { "metrics" } };
    document("chatpulse — status", header, main, footer).into_string()
}

/// The handler.
pub async fn page(State(state): State<Arc<AppState>>) -> Html<String> {
    let config = state.config.borrow().clone();
    let vantage = config.monitor.vantage.clone();
    let (services, feed_down, online, guards) = {
        let verdict = state.verdict.read().await;
        let (services, feed_down) = gather(&config, &verdict, unix(SystemTime::now()));
        let guards: Vec<String> = verdict
            .probes()
            .iter()
            .filter(|p| p.probe.is_guard())
            .map(|p| format!("{}: {}", p.probe.spec.id, p.probe.spec.check.target()))
            .collect();
        (services, feed_down, verdict.online(), guards)
    };
    let reader = state.history.clone();
    let monitor = MonitorView { vantage, online, guards, feed_down, sources: state.feed.snapshot() };
    let now = unix(SystemTime::now());
    let page = tokio::task::spawn_blocking(move || {
        let history = history(&reader, &services, now);
        render(&monitor, &services, &history, now)
    })
    .await
    .unwrap_or_else(|_| "<!doctype html><title>chatpulse</title><p>The status page failed to render.</p>".into());
    Html(page)
}

/// A service's card: `title`, the state badge, since when, the
/// maintenance it is in, the root cause, then `body`. Shared by the status
/// page and the service page.
pub(super) fn service_card(s: &ServiceView, title: Markup, now: i64, body: Markup) -> Markup {
    let status = s.status.as_str();
    let ago = human(std::time::Duration::from_secs((now - unix(s.since)).max(0) as u64));
    html! {
        section class={ "service " (status) } id=(s.id) {
            div class="head" {
                (title)
                span class="badges" {
                    span class={ "badge " (status) } { (status.to_uppercase()) }
                    @if s.maintenance.is_some() { span class="badge maintenance" { "MAINTENANCE" } }
                }
            }
            p class="small" { "since " (utc_text(s.since)) " UTC (" (ago) ")" }
            @if let Some((_, end)) = s.maintenance {
                p class="maintenance" {
                    "In maintenance until " (utc_text(from_unix(end))) " UTC: alerts are held and this time does not count as downtime."
                }
            }
            @if let Some(cause) = &s.cause { p class="cause" { "Root cause: " (cause) } }
            (body)
        }
    }
}

/// A `<ul>` of incidents: status, start (UTC), duration or "ongoing", and
/// the root-cause summary. Shared by the status page and the service page.
pub(super) fn incident_list<'a>(incidents: impl Iterator<Item = &'a Incident>) -> Markup {
    html! {
        ul class="incidents" {
            @for i in incidents {
                @let end = i.ended_at.map_or_else(
                    || "ongoing".to_string(),
                    |e| format!("lasted {}", human(std::time::Duration::from_secs((e - i.started_at).max(0) as u64))),
                );
                li { b { (i.status.as_str()) } " " (utc_text(from_unix(i.started_at))) " UTC, " (end) ": " (i.summary()) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// WCAG 2 relative luminance of `#rrggbb`.
    fn luminance(hex: &str) -> f64 {
        let channel = |i: usize| {
            let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
            if c <= 0.03928 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        };
        0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
    }

    #[test]
    fn every_badge_reads_at_4_5_to_1_or_better() {
        let white = luminance("#ffffff");
        let badges: Vec<&str> = STYLE.lines().filter(|l| l.starts_with(".badge")).collect();
        let mut checked = 0;
        for rule in badges.iter().flat_map(|l| l.split('}')) {
            let Some(at) = rule.find("background:#") else { continue };
            let bg = &rule[at + "background:".len()..at + "background:".len() + 7];
            let contrast = (white + 0.05) / (luminance(bg) + 0.05);
            assert!(contrast >= 4.5, "{rule}: white on {bg} is {contrast:.2}:1");
            checked += 1;
        }
        assert_eq!(checked, 5, "the default, up, degraded, down and maintenance badges");
        assert!(
            STYLE.contains(".badge.maintenance{color:#fff"),
            "the maintenance badge text is white, not .maintenance blue"
        );
    }
}
