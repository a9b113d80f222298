//! `GET /services/{id}`: one service's page — its state and root cause,
//! a 24-hour and a 30-day history chart as server-rendered SVG (no
//! JavaScript), every probe with its target and last result, and its
//! incidents of the last 30 days. Linked from the status page and from
//! every alert e-mail.

use std::fmt::Write;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};

use super::status_page::{STYLE, ServiceView, gather, service_head};
use super::{ApiError, AppState};
use crate::html::escape;
use crate::store::uptime::Bucket;
use crate::store::{Incident, Reader};
use crate::time::{from_unix, unix, utc_text};
use crate::verdict::ServiceStatus;

/// One chart: buckets of `step` seconds ending after `now`.
struct Chart {
    title: &'static str,
    buckets: Vec<Bucket>,
}

fn colour(status: ServiceStatus) -> &'static str {
    match status {
        ServiceStatus::Up => "#1f9d55",
        ServiceStatus::Degraded => "#e3a008",
        ServiceStatus::Down => "#d93025",
        ServiceStatus::Unknown => "#d5d9df",
    }
}

/// A bar per bucket, as tall as its uptime, coloured by its worst status.
fn svg(chart: &Chart) -> String {
    let n = chart.buckets.len().max(1);
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} 40\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{title}\">",
        w = n * 10,
        title = chart.title
    );
    for (i, b) in chart.buckets.iter().enumerate() {
        let ratio = b.ratio.unwrap_or(1.0).clamp(0.0, 1.0);
        let height = if b.status == ServiceStatus::Unknown { 40.0 } else { (ratio * 36.0).max(4.0) + 4.0 };
        let title = match b.ratio {
            Some(r) => format!("{} UTC: {} ({:.2}% up)", utc_text(from_unix(b.start)), b.status.as_str(), r * 100.0),
            None => format!("{} UTC: no data", utc_text(from_unix(b.start))),
        };
        let _ = write!(
            out,
            "<rect x=\"{x}\" y=\"{y:.1}\" width=\"9\" height=\"{height:.1}\" fill=\"{fill}\"><title>{title}</title></rect>",
            x = i * 10,
            y = 40.0 - height,
            fill = colour(b.status),
            title = escape(&title)
        );
    }
    out.push_str("</svg>");
    out
}

fn render(vantage: &str, s: &ServiceView, charts: &[Chart], incidents: &[Incident], now: i64) -> String {
    let mut html = String::with_capacity(16 * 1024);
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><meta http-equiv=\"refresh\" content=\"30\"><title>{name} — chatpulse</title><style>{STYLE}</style></head><body>",
        name = escape(&s.name)
    );
    let _ = write!(
        html,
        "<header><p class=\"meta\"><a href=\"/\">← all services</a> · vantage <b>{}</b> · updated {} UTC</p></header><main>",
        escape(vantage),
        utc_text(from_unix(now))
    );
    service_head(&mut html, s, &format!("<h1>{}</h1>", escape(&s.name)), now);
    for chart in charts {
        let _ = write!(html, "<h2>{}</h2>{}", chart.title, svg(chart));
    }
    html.push_str("</section><section class=\"service\"><h2>Probes</h2><table><tr><th>probe</th><th>target</th><th>last result</th></tr>");
    for (id, target, result, detail) in &s.probes {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td><b>{result}</b><br><span class=\"small\">{}</span></td></tr>",
            escape(id),
            escape(target),
            escape(detail)
        );
    }
    html.push_str("</table></section><section class=\"service\"><h2>Incidents, last 30 days</h2>");
    if incidents.is_empty() {
        html.push_str("<p class=\"small\">None.</p>");
    } else {
        super::status_page::incident_list(&mut html, incidents.iter());
    }
    html.push_str(
        "</section></main><footer class=\"small\">chatpulse · <a href=\"/\">status page</a></footer></body></html>",
    );
    html
}

fn charts(reader: &Reader, service: &str, now: i64) -> Vec<Chart> {
    [("Last 24 hours", 3_600, 24), ("Last 30 days", 86_400, 30)]
        .into_iter()
        .map(|(title, step, count)| {
            let to = now - now.rem_euclid(step) + step;
            let buckets = reader.history(service, to - count * step, to, step, now).unwrap_or_default();
            Chart { title, buckets }
        })
        .collect()
}

/// The handler.
pub async fn page(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let config = state.config.borrow().clone();
    let vantage = config.monitor.vantage.clone();
    let view = {
        let verdict = state.verdict.read().await;
        gather(&config, &verdict, unix(SystemTime::now())).0.into_iter().find(|s| s.id == id)
    };
    let Some(view) = view else {
        return ApiError::not_found(format!("no service \"{id}\"")).into_response();
    };
    let reader = state.history.clone();
    let now = unix(SystemTime::now());
    let page = tokio::task::spawn_blocking(move || {
        let charts = charts(&reader, &view.id, now);
        let incidents = reader.incidents(Some(&view.id), now - 30 * 86_400).unwrap_or_default();
        render(&vantage, &view, &charts, &incidents, now)
    })
    .await
    .unwrap_or_else(|_| "<!doctype html><title>chatpulse</title><p>The page failed to render.</p>".into());
    Html(page).into_response()
}
