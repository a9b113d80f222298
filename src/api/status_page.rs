//! `GET /`: the status page. Server-rendered HTML that works without
//! JavaScript, reads well on a phone (no horizontal scrolling at 390 px) and
//! refreshes itself: per service its state, root cause, since when, a 90-day
//! uptime bar from the history store, and its latest incidents; a banner
//! while the monitor is offline or the BGP feed is down.

use std::fmt::Write;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::response::Html;

use super::AppState;
use crate::config::Config;
use crate::html::escape;
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
.banner{margin:12px 0;padding:10px 16px;border-radius:8px;font-weight:600}
.banner.offline{background:#fdecea;color:#8a1c12}
.banner.feed{background:#fff4e0;color:#7a4b00}
.service{background:#fff;border-radius:8px;padding:14px 16px;margin:12px 0;box-shadow:0 1px 2px rgba(0,0,0,.08);border-left:6px solid #9aa3ae}
.service.up{border-left-color:#1f9d55}.service.degraded{border-left-color:#e3a008}.service.down{border-left-color:#d93025}
.head{display:flex;flex-wrap:wrap;gap:8px;align-items:center;justify-content:space-between}
.badge{font-size:.8em;font-weight:700;padding:2px 8px;border-radius:10px;color:#fff;background:#9aa3ae}
.badge.up{background:#1f9d55}.badge.degraded{background:#e3a008}.badge.down{background:#d93025}.badge.maintenance{background:#5b6bd6;margin-left:4px}
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
    /// (id, target, last result, detail) of each probe.
    pub(super) probes: Vec<(String, String, &'static str, String)>,
}

/// Every service's view at `now`, and whether the BGP feed is down.
pub(super) fn gather(config: &Config, verdict: &Verdict, now: i64) -> (Vec<ServiceView>, bool) {
    let probes = verdict.probes();
    let feed_down = probes.iter().any(|p| {
        p.last.as_ref().is_some_and(|l| {
            l.finding.result == Err(Reason::BgpUnknown) && l.finding.visibility.as_ref().is_some_and(|v| !v.feed_up)
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
            cause: s.cause.as_ref().map(|c| c.summary.clone()),
            maintenance: crate::maintenance::active(config, &s.id, now),
            probes: s
                .probes
                .iter()
                .map(|&i| {
                    let p = &probes[i];
                    let last = p.last.as_ref();
                    (
                        p.probe.spec.id.clone(),
                        p.probe.spec.check.target(),
                        last.map_or("not run yet", |l| result_word(l.finding.result)),
                        last.map(|l| l.finding.detail.clone()).unwrap_or_default(),
                    )
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

fn render(
    vantage: &str,
    online: bool,
    guards: &[String],
    feed_down: bool,
    services: &[ServiceView],
    history: &[(Vec<Bucket>, Vec<Incident>, Option<f64>)],
    now: i64,
) -> String {
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta http-equiv=\"refresh\" content=\"30\"><title>chatpulse — status</title><style>{STYLE}</style></head><body>"
    );
    let _ = write!(
        html,
        "<header><h1>chatpulse status</h1><p class=\"meta\">vantage <b>{}</b> · updated {} UTC · refreshes every 30 s</p></header>",
        escape(vantage),
        utc_text(from_unix(now))
    );
    // Banners sit inside <main>, so they are exactly as wide as the cards
    // on a desktop and keep the same margin from the screen edge on a phone.
    html.push_str("<main>");
    if !online {
        let _ = write!(
            html,
            "<div class=\"banner offline\" role=\"alert\">This monitor is offline: every guard probe fails ({}), so the states below are unknown. The problem is probably on our side, not the platforms'.</div>",
            escape(&guards.join(", "))
        );
    }
    if feed_down {
        html.push_str("<div class=\"banner feed\" role=\"alert\">The BGP feed is down or stale: routing visibility is unknown until it is back.</div>");
    }
    for (s, (buckets, incidents, ratio)) in services.iter().zip(history) {
        let title =
            format!("<h2><a href=\"/services/{id}\">{name}</a></h2>", id = escape(&s.id), name = escape(&s.name));
        service_head(&mut html, s, &title, now);
        let _ = write!(html, "<div class=\"bar\" role=\"img\" aria-label=\"uptime of the last {BAR_DAYS} days\">");
        for b in buckets {
            let day = rfc3339(from_unix(b.start));
            let share = b.ratio.map_or_else(|| "no data".to_string(), |r| format!("{:.2}%", r * 100.0));
            let _ = write!(
                html,
                "<span class=\"{}\" title=\"{} {}: {share}\"></span>",
                b.status.as_str(),
                &day[..10],
                b.status.as_str()
            );
        }
        let overall = ratio.map_or_else(|| "no data yet".to_string(), |r| format!("{:.3}% uptime", r * 100.0));
        let _ = write!(html, "</div><p class=\"small\">{BAR_DAYS} days: {overall}</p>");
        if !incidents.is_empty() {
            incident_list(&mut html, incidents.iter().take(INCIDENTS_SHOWN));
        }
        html.push_str("<details><summary>Probes</summary><ul>");
        for (id, target, result, detail) in &s.probes {
            let _ = write!(
                html,
                "<li><b>{}</b> {}: {result}<br><span class=\"small\">{}</span></li>",
                escape(id),
                escape(target),
                escape(detail)
            );
        }
        html.push_str("</ul></details></section>");
    }
    html.push_str("</main><footer class=\"small\">chatpulse · <a href=\"/api/v1/services\">JSON</a> · <a href=\"/metrics\">metrics</a></footer></body></html>");
    html
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
    let now = unix(SystemTime::now());
    let page = tokio::task::spawn_blocking(move || {
        let history = history(&reader, &services, now);
        render(&vantage, online, &guards, feed_down, &services, &history, now)
    })
    .await
    .unwrap_or_else(|_| "<!doctype html><title>chatpulse</title><p>The status page failed to render.</p>".into());
    Html(page)
}

/// Opens a service's card: `title` (HTML), the state badge, since when,
/// the maintenance it is in, the root cause. Shared by the status page and
/// the service page.
pub(super) fn service_head(html: &mut String, s: &ServiceView, title: &str, now: i64) {
    let status = s.status.as_str();
    let maintenance = if s.maintenance.is_some() { "<span class=\"badge maintenance\">MAINTENANCE</span>" } else { "" };
    let _ = write!(
        html,
        "<section class=\"service {status}\" id=\"{id}\"><div class=\"head\">{title}<span class=\"badges\"><span class=\"badge {status}\">{label}</span>{maintenance}</span></div><p class=\"small\">since {since_text} UTC ({ago})</p>",
        id = escape(&s.id),
        label = status.to_uppercase(),
        since_text = utc_text(s.since),
        ago = human(std::time::Duration::from_secs((now - unix(s.since)).max(0) as u64)),
    );
    if let Some((_, end)) = s.maintenance {
        let _ = write!(
            html,
            "<p class=\"maintenance\">In maintenance until {} UTC: alerts are held and this time does not count as downtime.</p>",
            utc_text(crate::time::from_unix(end))
        );
    }
    if let Some(cause) = &s.cause {
        let _ = write!(html, "<p class=\"cause\">Root cause: {}</p>", escape(cause));
    }
}

/// Appends a `<ul>` of incidents: status, start (UTC), duration or "ongoing",
/// and the root-cause summary. Shared by the status page and the service page.
pub(super) fn incident_list<'a>(html: &mut String, incidents: impl Iterator<Item = &'a Incident>) {
    html.push_str("<ul class=\"incidents\">");
    for i in incidents {
        let end = i.ended_at.map_or_else(
            || "ongoing".to_string(),
            |e| format!("lasted {}", human(std::time::Duration::from_secs((e - i.started_at).max(0) as u64))),
        );
        let _ = write!(
            html,
            "<li><b>{}</b> {} UTC, {end}: {}</li>",
            i.status.as_str(),
            utc_text(from_unix(i.started_at)),
            escape(&i.cause_summary)
        );
    }
    html.push_str("</ul>");
}
