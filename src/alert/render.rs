//! What an e-mail alert says (README, "E-mail alerts"): subject lines, and multipart bodies
//! (plain text and HTML) with the vantage, the start time in UTC, the root
//! cause and what it led to, each probe's state and last result, and a link
//! to the status page.

use std::fmt::Write;

use crate::config::Config;
use crate::html::escape;
use crate::notice::{AlertEvent, Member};
use crate::time::{from_unix, human, rfc3339};

/// A rendered alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// The status page URL: `[server] public_url` when set (the address users
/// reach, e.g. behind a reverse proxy), else the listen address.
pub fn status_url(config: &Config) -> String {
    if let Some(base) = &config.server.public_url {
        return format!("{base}/");
    }
    let listen = config.server.listen;
    if listen.ip().is_unspecified() {
        format!("http://localhost:{}/", listen.port())
    } else {
        format!("http://{listen}/")
    }
}

/// Names, sorted, joined: "Facebook, Instagram, Messenger, WhatsApp".
fn names(members: &[&Member]) -> String {
    let mut names: Vec<&str> = members.iter().map(|m| m.snapshot.name.as_str()).collect();
    names.sort_unstable();
    names.join(", ")
}

/// The subject line (also the one-line summary of a webhook).
pub fn subject(event: AlertEvent, members: &[&Member], now: i64) -> String {
    let first = members[0];
    let cause = &first.incident.cause_summary;
    let many = members.len() > 1;
    let who = if many { format!("{} services", members.len()) } else { first.snapshot.name.clone() };
    let list = if many { format!(" ({})", names(members)) } else { String::new() };
    let started = members.iter().map(|m| m.incident.started_at).min().unwrap_or(now);
    match event {
        AlertEvent::Down => format!("[chatpulse] {who} DOWN{list} — {cause}"),
        AlertEvent::Degraded => format!("[chatpulse] {who} DEGRADED{list} — {cause}"),
        AlertEvent::Reminder => {
            let since = human(std::time::Duration::from_secs((now - started).max(0) as u64));
            format!("[chatpulse] {who} still DOWN ({since}){list} — {cause}")
        }
        AlertEvent::Flapping => format!("[chatpulse] {who} is FLAPPING{list}"),
        AlertEvent::Recovered => {
            let longest =
                members.iter().map(|m| m.incident.ended_at.unwrap_or(now) - m.incident.started_at).max().unwrap_or(0);
            format!(
                "[chatpulse] {who} recovered{list} after {}",
                human(std::time::Duration::from_secs(longest.max(0) as u64))
            )
        }
    }
}

/// The FLAPPING alert: `service` changed status `changes` times within
/// `window`; nothing more is said about it until it holds one status.
pub fn flapping(name: &str, changes: usize, window: std::time::Duration, config: &Config) -> Rendered {
    let window = human(window);
    let subject = format!("[chatpulse] {name} is FLAPPING — {changes} changes in {window}");
    let url = status_url(config);
    let vantage = &config.monitor.vantage;
    let text = format!(
        "{name} changed status {changes} times within {window}, as seen from vantage \"{vantage}\".\n\n\
         Its alerts are held back until it has held one status for {window}; then one alert says which.\n\
         Incidents are still recorded.\n\nStatus page: {url}\n"
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:sans-serif;font-size:14px\"><h2>{}</h2><p>{} changed status {changes} times within {window}, as seen from vantage <b>{}</b>.</p><p>Its alerts are held back until it has held one status for {window}; then one alert says which. Incidents are still recorded.</p><p><a href=\"{}\">Status page</a></p></body></html>",
        escape(&subject),
        escape(name),
        escape(vantage),
        escape(&url)
    );
    Rendered { subject, text, html }
}

/// Renders an alert about `members` (at least one).
pub fn render(event: AlertEvent, members: &[Member], config: &Config, now: i64) -> Rendered {
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort_by(|a, b| a.snapshot.name.cmp(&b.snapshot.name));
    let subject = subject(event, &sorted, now);
    let url = status_url(config);
    let vantage = &config.monitor.vantage;
    let headline = match event {
        AlertEvent::Down => "is DOWN",
        AlertEvent::Degraded => "is DEGRADED",
        AlertEvent::Reminder => "is still DOWN",
        AlertEvent::Recovered => "has recovered",
        AlertEvent::Flapping => "is FLAPPING",
    };
    let mut text = String::new();
    let mut html = String::from("<!doctype html><html><body style=\"font-family:sans-serif;font-size:14px\">");
    let _ = writeln!(html, "<h2 style=\"margin:0 0 8px\">{}</h2>", escape(&subject));
    let _ = writeln!(html, "<p>Seen from vantage <b>{}</b>.</p>", escape(vantage));
    for m in &sorted {
        let i = &m.incident;
        let s = &m.snapshot;
        let _ = writeln!(text, "{} {headline}, as seen from vantage \"{vantage}\".\n", s.name);
        let _ = writeln!(text, "  Started:    {} (UTC)", rfc3339(from_unix(i.started_at)));
        if let Some(end) = i.ended_at {
            let _ = writeln!(
                text,
                "  Ended:      {} (UTC), after {}",
                rfc3339(from_unix(end)),
                human(std::time::Duration::from_secs((end - i.started_at).max(0) as u64))
            );
        }
        let _ = writeln!(text, "  Root cause: {}", i.cause_summary);
        let _ = writeln!(text, "  Details:    {url}services/{}", s.id);
        let chain = s.cause.as_ref().map(|c| c.chain.as_str()).filter(|c| *c != i.cause_summary);
        if let Some(chain) = chain {
            let _ = writeln!(text, "  Effects:    {chain}");
        }
        if !s.probes.is_empty() {
            let _ = writeln!(text, "  Probes:");
        }
        let _ = writeln!(html, "<h3 style=\"margin:16px 0 4px\">{} {}</h3>", escape(&s.name), headline);
        let _ = writeln!(
            html,
            "<p>Started {} (UTC)<br>Root cause: <b>{}</b>",
            rfc3339(from_unix(i.started_at)),
            escape(&i.cause_summary)
        );
        if let Some(end) = i.ended_at {
            let _ = write!(html, "<br>Ended {} (UTC)", rfc3339(from_unix(end)));
        }
        if let Some(chain) = chain {
            let _ = write!(html, "<br>Effects: {}", escape(chain));
        }
        let _ = write!(
            html,
            "<br><a href=\"{}services/{}\">{} service page</a>",
            escape(&url),
            escape(&s.id),
            escape(&s.name)
        );
        let _ = writeln!(html, "</p>");
        if !s.probes.is_empty() {
            let _ = writeln!(
                html,
                "<table cellpadding=\"4\" style=\"border-collapse:collapse\"><tr><th align=\"left\">probe</th><th align=\"left\">kind</th><th align=\"left\">target</th><th align=\"left\">state</th><th align=\"left\">last result</th></tr>"
            );
        }
        for p in &s.probes {
            let result = p.last_result.unwrap_or("-");
            let _ = writeln!(
                text,
                "    {:<14} {:<4} {:<6} {:<20} {} — {}",
                p.id,
                p.kind.as_str(),
                p.status.as_str().to_uppercase(),
                result,
                p.target,
                p.detail
            );
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}<br><small>{}</small></td></tr>",
                escape(&p.id),
                p.kind.as_str(),
                escape(&p.target),
                p.status.as_str().to_uppercase(),
                result,
                escape(&p.detail)
            );
        }
        if !s.probes.is_empty() {
            let _ = writeln!(html, "</table>");
        }
        text.push('\n');
    }
    let _ = writeln!(text, "Status page: {url}");
    let _ = writeln!(html, "<p><a href=\"{}\">Status page</a></p></body></html>", escape(&url));
    Rendered { subject, text, html }
}
