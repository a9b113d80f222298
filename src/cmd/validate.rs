//! `chatpulse validate`: the config is already loaded and checked by the time
//! this runs; print what would be monitored.

use std::io::Write;

use crate::config::{BgpSource, Config, Kind, redacted};

/// Prints the monitoring plan of `config`.
pub fn print_plan(config: &Config, out: &mut dyn Write) -> std::io::Result<()> {
    let probes: usize = config.services.iter().map(|s| s.probes.len()).sum();
    writeln!(
        out,
        "{}: valid. {}, {}, {}; vantage \"{}\"; HTTP on http://{}/",
        config.file.display(),
        super::plural(config.services.len() as u64, "service", "services"),
        super::plural(probes as u64, "probe", "probes"),
        super::plural(config.guards.len() as u64, "guard", "guards"),
        config.monitor.vantage,
        config.server.listen,
    )?;
    let has_bgp = config.services.iter().flat_map(|s| &s.probes).any(|p| p.check.kind() == Kind::Bgp);
    if has_bgp {
        let described: Vec<String> = config
            .bgp
            .sources
            .iter()
            .map(|source| match source {
                BgpSource::RisLive => format!(
                    "ris-live {} (seeded from {})",
                    redacted(&config.bgp.ris_live_url),
                    redacted(&config.bgp.seed_url)
                ),
                BgpSource::Mrt => format!("mrt {}", redacted(&config.bgp.mrt_url)),
                BgpSource::Session => match &config.bgp.session {
                    Some(s) => format!("session on {} as AS{} with {} peers", s.listen, s.local_as, s.peers.len()),
                    None => "session".into(),
                },
            })
            .collect();
        let source = described.join(" + ");
        writeln!(out, "BGP visibility from {source}; at least {} peers to judge", config.bgp.min_peers)?;
    }
    for channel in &config.alerts.channels {
        writeln!(out, "{}", crate::alert::describe(channel))?;
    }
    if config.alerts.channels.is_empty() {
        writeln!(
            out,
            "No alerts: no [alerts.email], [[alerts.webhook]], [[alerts.pagerduty]] or [[alerts.ntfy]] is configured"
        )?;
    }
    if !config.maintenance.is_empty() {
        writeln!(
            out,
            "{}",
            super::plural(config.maintenance.len() as u64, "maintenance window", "maintenance windows")
        )?;
    }
    writeln!(out, "History in {}", config.storage.path.display())?;
    writeln!(out)?;
    let mut rows = Vec::new();
    let guards = config.guards.iter().map(|p| ("(guard)".to_string(), p));
    let services =
        config.services.iter().flat_map(|s| s.probes.iter().map(move |p| (format!("{} ({})", s.id, s.name), p)));
    for (owner, p) in guards.chain(services) {
        rows.push(vec![
            owner,
            p.id.clone(),
            p.check.kind().to_string(),
            format!("every {}", humantime::format_duration(p.interval)),
            format!("{}", humantime::format_duration(p.timeout)),
            format!("{}/{}", p.fail_after, p.recover_after),
            p.role().unwrap_or_else(|| "-".into()),
            p.check.target(),
        ]);
    }
    super::print_table(
        out,
        &["SERVICE", "PROBE", "KIND", "INTERVAL", "TIMEOUT", "FAIL/RECOVER", "ROLE", "TARGET"],
        &rows,
    )
}
