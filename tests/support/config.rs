//! TOML fragments the integration tests compose their configs from, so a
//! test writes only the part it is about (its monitor timings, its
//! services) and the shared plumbing — the API on an ephemeral port, the
//! store in the test's directory, e-mail to the test SMTP server, a BGP
//! session with the test speaker — is written once. Each fragment starts
//! with a table header, so fragments concatenate in any order.

use std::path::Path;

/// `[monitor]` as the alerting tests run it: probes every 200 ms, down
/// after 2 failures, up after 2 successes, seen from `test-vantage`.
pub fn fast_monitor() -> &'static str {
    "[monitor]\nvantage = \"test-vantage\"\ninterval = \"200ms\"\ntimeout = \"150ms\"\nfail_after = 2\nrecover_after = 2\n"
}

/// `[server]` on an ephemeral loopback port and `[storage]` at `DIR/history.db`.
pub fn server_and_store(dir: &Path) -> String {
    format!("[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = \"{}\"\n", dir.join("history.db").display())
}

/// `[alerts.email]` to the on-call through the SMTP server on `smtp_port`;
/// keys written right after it (`repeat`, `notify_on` …) join the table.
pub fn email(smtp_port: u16) -> String {
    format!(
        "[alerts.email]\nsmtp = \"smtp://127.0.0.1:{smtp_port}\"\nfrom = \"chatpulse@example.org\"\nto = [\"oncall@example.org\"]\n"
    )
}

/// `[bgp]` as a receive-only speaker on `bgp_port`, with the one peer the
/// tests' speaker plays: 127.0.0.2, AS65001.
pub fn bgp_session(bgp_port: u16) -> String {
    format!(
        r#"[bgp]
source = "session"
[bgp.session]
listen = "127.0.0.1:{bgp_port}"
local_as = 65010
router_id = "192.0.2.10"
  [[bgp.session.peer]]
  address = "127.0.0.2"
  remote_as = 65001
"#
    )
}

/// A `[[service]]` with one dns probe (id `dns`) asking `server` for `query`.
pub fn dns_service(id: &str, name: &str, query: &str, server: impl std::fmt::Display) -> String {
    format!(
        "[[service]]\nid = \"{id}\"\nname = \"{name}\"\n  [[service.probe]]\n  kind = \"dns\"\n  id = \"dns\"\n  query = \"{query}\"\n  server = \"{server}\"\n"
    )
}

/// Writes `DIR/config.toml` for the alerting tests: [`fast_monitor`],
/// [`server_and_store`], `[alerts]` with `group_wait = "0s"` and the
/// channel tables `alerts`, and one dns service `whatsapp` asking `dns`.
pub fn write_alerting(dir: &Path, alerts: &str, dns: impl std::fmt::Display) -> std::path::PathBuf {
    let text = format!(
        "{}{}[alerts]\ngroup_wait = \"0s\"\n{alerts}\n{}",
        fast_monitor(),
        server_and_store(dir),
        dns_service("whatsapp", "WhatsApp", "web.chat.test", dns),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}
