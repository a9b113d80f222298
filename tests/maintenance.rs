//! Maintenance windows end to end with the real binary, a real DNS server
//! and a real webhook receiver: no alert inside a window, one at its end
//! for a service still failing, the window's time reported as maintenance
//! (not downtime, not observed) by the API and `chatpulse uptime`, the
//! service flagged on the API and the status page, and windows added and
//! removed by SIGHUP — a removed window stays in history, cut at removal.

mod support;

use std::path::Path;
use std::time::{Duration, SystemTime};

use support::daemon::Daemon;
use support::dns::{Mode, TestDns};
use support::webhook::Receiver;

const DEADLINE: Duration = Duration::from_secs(30);

fn now() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn rfc3339(secs: i64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)).to_string()
}

fn window(start: i64, end: i64) -> String {
    format!("[[maintenance]]\nservices = [\"whatsapp\"]\nstart = \"{}\"\nend = \"{}\"\n", rfc3339(start), rfc3339(end))
}

fn write_config(dir: &Path, hook: &str, dns: &TestDns, maintenance: &str) -> std::path::PathBuf {
    let text = format!(
        "{monitor}{store}[alerts]\ngroup_wait = \"0s\"\n[[alerts.webhook]]\nurl = \"{hook}\"\n{service}{other}{maintenance}",
        monitor = support::config::fast_monitor(),
        store = support::config::server_and_store(dir),
        service = support::config::dns_service("whatsapp", "WhatsApp", "web.chat.test", dns.addr),
        other = support::config::dns_service("signal", "Signal", "web.chat.test", dns.addr),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Until the API and `chatpulse_service_maintenance` (what the shipped
/// rules read to stay silent) both say `on`.
async fn until_maintenance(daemon: &Daemon, on: bool) {
    let gauge = r#"chatpulse_service_maintenance{service="whatsapp"}"#;
    support::wait_for(&format!("whatsapp maintenance = {on}"), DEADLINE, || async {
        let api = daemon.service("whatsapp").await?["maintenance"] == on;
        (api && daemon.metric(gauge).await? == f64::from(u8::from(on))).then_some(())
    })
    .await;
}

async fn uptime(daemon: &Daemon) -> serde_json::Value {
    daemon.json("/api/v1/services/whatsapp/uptime?window=1h").await.expect("the uptime API answers")
}

/// A DNS outage inside a one-off window: nothing is alerted (Signal, not
/// in the window, is), and when the window ends the service, still down,
/// alerts at once; the window's seconds are maintenance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_inside_a_window_alerts_only_when_the_window_ends_and_its_time_is_maintenance() {
    let dns = TestDns::start().await;
    let receiver = Receiver::start("").await;
    let dir = tempfile::tempdir().unwrap();
    let (start, end) = (now() - 60, now() + 8);
    let path = write_config(dir.path(), &receiver.url(), &dns, &window(start, end));
    let daemon = Daemon::start(dir.path(), &path, &[]).await;
    daemon.until_status("whatsapp", "up", DEADLINE).await;
    until_maintenance(&daemon, true).await;
    let (_, page) = daemon.get("/").await.unwrap();
    assert!(page.contains("MAINTENANCE") && page.contains("In maintenance until"), "{page}");

    dns.set_mode(Mode::ServFail);
    daemon.until_status("whatsapp", "down", DEADLINE).await;
    let first = support::at_least("alerts", 1, DEADLINE, || receiver.delivered()).await;
    let services: Vec<&str> = first.iter().map(|h| h.body["services"][0]["id"].as_str().unwrap()).collect();
    assert_eq!(services, ["signal"], "Signal is not in the window and alerts at once");
    assert!(now() < end, "the test must see WhatsApp down before its window ends");

    let hits = support::at_least("alerts", 2, DEADLINE, || receiver.delivered()).await;
    let whatsapp = &hits[1].body;
    assert_eq!(whatsapp["event"], "down");
    assert_eq!(whatsapp["services"][0]["id"], "whatsapp");
    let started = humantime::parse_rfc3339(whatsapp["started_at"].as_str().unwrap()).unwrap();
    let started = started.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!(started >= end, "the incident starts when the window ends ({started} < {end})");
    until_maintenance(&daemon, false).await;

    let u = uptime(&daemon).await;
    assert_eq!(u["maintenance_seconds"], end - start, "{u}");
    let total = ["observed_seconds", "unknown_seconds", "maintenance_seconds"].map(|k| u[k].as_i64().unwrap());
    assert_eq!(total.iter().sum::<i64>(), 3600, "observed + unknown + maintenance is the window: {u}");
    assert!(u["down_seconds"].as_i64().unwrap() < now() - end + 2, "no downtime inside the window: {u}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chatpulse"))
        .args(["--config", path.to_str().unwrap(), "uptime", "--service", "whatsapp", "--window", "1h", "--json"])
        .output()
        .unwrap();
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cli["services"][0]["maintenance_seconds"], end - start, "{cli}");
    assert_eq!(receiver.delivered().len(), 2, "one alert per service");
}

/// A window added by SIGHUP holds the recovery back; removing it by SIGHUP
/// ends it early: the recovery goes out, and the window stays in history
/// cut at its removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_follow_sighup_and_a_removed_window_stays_in_history() {
    let dns = TestDns::start().await;
    let receiver = Receiver::start("").await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &receiver.url(), &dns, "");
    let daemon = Daemon::start(dir.path(), &path, &[]).await;
    daemon.until_status("whatsapp", "up", DEADLINE).await;
    dns.set_mode(Mode::ServFail);
    support::at_least("DOWN alerts", 2, DEADLINE, || receiver.delivered()).await;

    let added = now();
    write_config(dir.path(), &receiver.url(), &dns, &window(added - 1, added + 3600));
    daemon.signal("HUP");
    until_maintenance(&daemon, true).await;
    dns.set_mode(Mode::Normal);
    daemon.until_status("whatsapp", "up", DEADLINE).await;
    let recovered = support::at_least("Signal's recovery", 3, DEADLINE, || receiver.delivered()).await;
    assert_eq!(recovered[2].body["services"][0]["id"], "signal", "WhatsApp's recovery is held");

    write_config(dir.path(), &receiver.url(), &dns, "");
    daemon.signal("HUP");
    until_maintenance(&daemon, false).await;
    let hits = support::at_least("WhatsApp's recovery", 4, DEADLINE, || receiver.delivered()).await;
    assert_eq!((hits[3].event.as_str(), &hits[3].body["services"][0]["id"]), ("recovered", &"whatsapp".into()));
    let removed = now();
    let kept = uptime(&daemon).await["maintenance_seconds"].as_i64().unwrap();
    assert!(kept >= 1 && kept <= removed - added + 2, "the window is kept, cut at its removal: {kept} s");
}
