//! What an e-mail alert says (README, "E-mail alerts"): subject lines, and multipart bodies
//! (plain text and HTML) with the vantage, the start time in UTC, the root
//! cause and what it led to, each probe's state and last result, and a link
//! to the status page. The HTML is written with maud, which escapes every
//! value by construction (see `crate::api::status_page` for the choice).

use std::fmt::Write;

use maud::{DOCTYPE, Markup, html};

use crate::config::Config;
use crate::notice::{AlertEvent, Member, Notice, NoticeKind};
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

/// The services of a notice, sorted by name, and its one-line summary.
pub fn summary<'n>(notice: &'n Notice, config: &Config) -> (Vec<&'n Member>, String) {
    match &notice.kind {
        NoticeKind::Incident { event, members, .. } => {
            let mut sorted: Vec<&Member> = members.iter().collect();
            sorted.sort_by(|a, b| a.snapshot.name.cmp(&b.snapshot.name));
            let subject = subject(*event, &sorted, notice.at);
            (sorted, subject)
        }
        NoticeKind::Flapping { member, changes, window } => {
            let subject = flapping(&member.snapshot.name, *changes, *window, config).subject;
            (vec![&**member], subject)
        }
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
    let cause = first.incident.summary();
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

/// An e-mail's HTML body: `subject` as its heading, then `body`.
fn email_html(subject: &str, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html { body style="font-family:sans-serif;font-size:14px" { h2 style="margin:0 0 8px" { (subject) } (body) } }
    }
    .into_string()
}

/// The FLAPPING alert: `service` changed status `changes` times within
/// `window`; nothing more is said about it until it holds one status.
pub fn flapping(name: &str, changes: usize, window: std::time::Duration, config: &Config) -> Rendered {
    // The window as configured (`30m`), not as an elapsed time (`30m 0s`).
    let window = humantime::format_duration(window).to_string();
    let subject = format!("[chatpulse] {name} is FLAPPING — {changes} changes in {window}");
    let url = status_url(config);
    let vantage = &config.monitor.vantage;
    let text = format!(
        "{name} changed status {changes} times within {window}, as seen from vantage \"{vantage}\".\n\n\
         Its alerts are held back until it has held one status for {window}; then one alert says which.\n\
         Incidents are still recorded.\n\nStatus page: {url}\n"
    );
    let html = email_html(
        &subject,
        html! {
            p { (name) " changed status " (changes) " times within " (window) ", as seen from vantage " b { (vantage) } "." }
            p { "Its alerts are held back until it has held one status for " (window) "; then one alert says which. Incidents are still recorded." }
            p { a href=(url) { "Status page" } }
        },
    );
    Rendered { subject, text, html }
}

/// How long an incident lasted, in words.
fn lasted(i: &crate::store::Incident, end: i64) -> String {
    human(std::time::Duration::from_secs((end - i.started_at).max(0) as u64))
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
    // The effects above the root cause, when they say more than it.
    let chain = |m: &Member| m.snapshot.cause.as_ref().map(|c| c.chain.clone()).filter(|c| c != m.incident.summary());
    let mut text = String::new();
    for m in &sorted {
        let (i, s) = (&m.incident, &m.snapshot);
        let _ = writeln!(text, "{} {headline}, as seen from vantage \"{vantage}\".\n", s.name);
        let _ = writeln!(text, "  Started:    {} (UTC)", rfc3339(from_unix(i.started_at)));
        if let Some(end) = i.ended_at {
            let _ = writeln!(text, "  Ended:      {} (UTC), after {}", rfc3339(from_unix(end)), lasted(i, end));
        }
        let _ = writeln!(text, "  Root cause: {}", i.summary());
        let _ = writeln!(text, "  Details:    {url}services/{}", s.id);
        if let Some(chain) = chain(m) {
            let _ = writeln!(text, "  Effects:    {chain}");
        }
        if !s.probes.is_empty() {
            let _ = writeln!(text, "  Probes:");
        }
        for p in &s.probes {
            let _ = writeln!(
                text,
                "    {:<14} {:<4} {:<6} {:<20} {} — {}",
                p.id,
                p.kind.as_str(),
                p.status.as_str().to_uppercase(),
                p.last_result.unwrap_or("-"),
                p.target,
                p.detail
            );
        }
        text.push('\n');
    }
    let _ = writeln!(text, "Status page: {url}");
    let html = email_html(
        &subject,
        html! {
            p { "Seen from vantage " b { (vantage) } "." }
            @for m in &sorted {
                @let (i, s) = (&m.incident, &m.snapshot);
                h3 style="margin:16px 0 4px" { (s.name) " " (headline) }
                p {
                    "Started " (rfc3339(from_unix(i.started_at))) " (UTC)" br;
                    "Root cause: " b { (i.summary()) }
                    @if let Some(end) = i.ended_at { br; "Ended " (rfc3339(from_unix(end))) " (UTC)" }
                    @if let Some(chain) = chain(m) { br; "Effects: " (chain) }
                    br; a href={ (url) "services/" (s.id) } { (s.name) " service page" }
                }
                @if !s.probes.is_empty() {
                    table cellpadding="4" style="border-collapse:collapse" {
                        tr { th align="left" { "probe" } th align="left" { "kind" } th align="left" { "target" } th align="left" { "state" } th align="left" { "last result" } }
                        @for p in &s.probes {
                            tr {
                                td { (p.id) } td { (p.kind.as_str()) } td { (p.target) }
                                td { (p.status.as_str().to_uppercase()) }
                                td { (p.last_result.unwrap_or("-")) br; small { (p.detail) } }
                            }
                        }
                    }
                }
            }
            p { a href=(url) { "Status page" } }
        },
    );
    Rendered { subject, text, html }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notice::ServiceSnapshot;
    use crate::store::Incident;
    use crate::verdict::ServiceStatus;

    #[test]
    fn names_and_causes_are_escaped_in_the_html_and_kept_in_the_text() {
        let config = Config::parse(
            std::path::Path::new("t.toml"),
            "[[service]]\nid = \"x\"\nname = \"X\"\n  [[service.probe]]\n  kind = \"dns\"\n  query = \"a.test\"\n",
        )
        .unwrap();
        let incident = Incident {
            id: 1,
            service: "x".into(),
            status: ServiceStatus::Down,
            started_at: 0,
            ended_at: None,
            cause: Some(crate::cause::Cause::new(
                crate::probe::Layer::Http,
                [crate::cause::Fault { reason: crate::probe::Reason::HttpStatus, scope: "x".into() }],
                "http: <script>alert(1)</script> & \"quotes\"".into(),
            )),
            group_id: None,
            notified: None,
            last_reminder_at: None,
        };
        let mut snapshot = ServiceSnapshot::placeholder(&incident);
        snapshot.name = "<b>WhatsApp</b>".into();
        let r = render(AlertEvent::Down, &[Member { incident, snapshot }], &config, 60);
        assert!(!r.html.contains("<script>") && !r.html.contains("<b>WhatsApp</b>"), "{}", r.html);
        assert!(r.html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"), "{}", r.html);
        assert!(r.html.contains("&lt;b&gt;WhatsApp&lt;/b&gt; is DOWN"), "{}", r.html);
        assert!(r.text.contains("Root cause: http: <script>alert(1)</script>"), "plain text is not HTML");
    }

    #[test]
    fn a_flap_window_reads_as_configured() {
        let config = Config::parse(
            std::path::Path::new("t.toml"),
            "[[service]]\nid = \"x\"\nname = \"X\"\n  [[service.probe]]\n  kind = \"dns\"\n  query = \"a.test\"\n",
        )
        .unwrap();
        let r = flapping("WhatsApp", 6, std::time::Duration::from_secs(30 * 60), &config);
        assert_eq!(r.subject, "[chatpulse] WhatsApp is FLAPPING — 6 changes in 30m");
    }
}
