//! `chatpulse uptime` and `chatpulse incidents`: the history store read from
//! the command line (also while `run` writes to it), as tables or JSON in
//! the same shapes as the API.

use std::io::Write;
use std::time::Duration;

use crate::config::Config;
use crate::store::{Reader, StoreError};
use crate::time::{from_unix, human, rfc3339, unix};
use crate::views::{IncidentView, UptimeView};
use crate::window::{Window, WindowError};

/// What a history command could not do.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bad `--window` or `--since`.
    #[error(transparent)]
    BadArgument(#[from] WindowError),
    /// `--service` names no configured service.
    #[error("no service \"{0}\" in the config")]
    UnknownService(String),
    /// Output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

fn services<'a>(config: &'a Config, only: Option<&str>) -> Result<Vec<&'a crate::config::Service>, HistoryError> {
    match only {
        Some(id) => config
            .services
            .iter()
            .find(|s| s.id == id)
            .map(|s| vec![s])
            .ok_or_else(|| HistoryError::UnknownService(id.to_string())),
        None => Ok(config.services.iter().collect()),
    }
}

fn percent(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".to_string(), |r| format!("{:.3}%", r * 100.0))
}

fn secs(s: i64) -> String {
    if s == 0 { "0s".into() } else { human(Duration::from_secs(s.max(0) as u64)) }
}

/// `chatpulse uptime`.
pub fn uptime(
    config: &Config,
    only: Option<&str>,
    window: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), HistoryError> {
    let now = unix(std::time::SystemTime::now());
    let from = Window::parse("--window", window)?.start("--window", now)?;
    let selected = services(config, only)?;
    let reader = Reader::open(&config.storage.path)?;
    let to = now;
    let mut views = Vec::new();
    let mut rows = Vec::new();
    for service in selected {
        let report = reader.report(&service.id, from, to, now)?;
        rows.push(vec![
            format!("{} ({})", service.id, service.name),
            percent(report.uptime.ratio),
            secs(report.uptime.down),
            secs(report.uptime.degraded),
            secs(report.uptime.unknown),
            secs(report.uptime.maintenance),
            report.incidents.to_string(),
            report.mttr_seconds.map_or_else(|| "-".into(), |m| secs(m.round() as i64)),
        ]);
        views.push(UptimeView::new(service.id.clone(), window.to_string(), from, to, &report));
    }
    if json {
        writeln!(out, "{}", serde_json::json!({ "services": views }))?;
        return Ok(());
    }
    writeln!(out, "uptime over {window}, {} to {} (UTC)", rfc3339(from_unix(from)), rfc3339(from_unix(to)))?;
    super::print_table(
        out,
        &["SERVICE", "UPTIME", "DOWN", "DEGRADED", "UNKNOWN", "MAINTENANCE", "INCIDENTS", "MTTR"],
        &rows,
    )?;
    Ok(())
}

/// `chatpulse incidents`.
pub fn incidents(
    config: &Config,
    only: Option<&str>,
    since: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), HistoryError> {
    let now = unix(std::time::SystemTime::now());
    let from = Window::parse("--since", since)?.start("--since", now)?;
    if let Some(id) = only {
        services(config, Some(id))?;
    }
    let reader = Reader::open(&config.storage.path)?;
    let list = reader.incidents(only, from)?;
    if json {
        let views: Vec<IncidentView> = list.into_iter().map(|i| IncidentView::new(i, now)).collect();
        writeln!(out, "{}", serde_json::json!({ "incidents": views }))?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|i| {
            vec![
                i.service.clone(),
                i.status.as_str().into(),
                rfc3339(from_unix(i.started_at)),
                i.ended_at.map_or_else(|| "ongoing".into(), |e| rfc3339(from_unix(e))),
                secs(i.ended_at.unwrap_or(now) - i.started_at),
                i.summary().to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        writeln!(out, "no incidents in the last {since}")?;
        return Ok(());
    }
    super::print_table(out, &["SERVICE", "STATUS", "START", "END", "DURATION", "ROOT CAUSE"], &rows)?;
    Ok(())
}
