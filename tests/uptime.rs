//! Uptime on a synthetic history, through the CLI and the API: one hour down
//! in 24 is 0.958333…, an offline gap is excluded from observed time, and the
//! API answers JSON errors for unknown services and bad parameters.

mod support;

use std::path::Path;
use std::time::{Duration, SystemTime};

use chatpulse::store::{NewIncident, Retention, StatusRecord, Store};
use chatpulse::time::unix;
use chatpulse::verdict::ServiceStatus::{self, *};
use support::daemon::Daemon;
use support::dns::TestDns;
use support::wait_for;

const H: i64 = 3600;

async fn synthesise(db: &Path) -> i64 {
    let store =
        Store::open(db, Retention { raw: Duration::from_secs(14 * 86400), rollup: Duration::from_secs(400 * 86400) })
            .unwrap();
    let now = unix(SystemTime::now());
    let rows: [(&str, i64, ServiceStatus); 9] = [
        ("steady", now - 48 * H, Down),
        ("steady", now - 24 * H, Up),
        ("steady", now - 10 * H, Down),
        ("steady", now - 9 * H, Up),
        ("gappy", now - 24 * H, Up),
        ("gappy", now - 6 * H, Unknown),
        ("gappy", now - 4 * H, Up),
        ("gappy", now - 2 * H, Down),
        ("gappy", now - H, Up),
    ];
    for (service, at, status) in rows {
        store.record_status(StatusRecord { service: service.into(), at, status, cause: None });
    }
    let id = store
        .open_incident(
            NewIncident {
                service: "steady".into(),
                status: Down,
                started_at: now - 10 * H,
                cause: chatpulse::cause::Cause::new(
                    chatpulse::probe::Layer::Dns,
                    [chatpulse::cause::Fault { reason: chatpulse::probe::Reason::DnsServfail, scope: "x".into() }],
                    "dns: synthetic SERVFAIL".into(),
                ),
            },
            None,
        )
        .await
        .unwrap();
    store.close_incident(id, now - 9 * H, None).await.unwrap();
    store.flush().await.unwrap();
    store.stop(Vec::new(), now);
    now
}

fn config(dir: &Path, dns: &TestDns) -> std::path::PathBuf {
    let probe = |id: &str| {
        format!(
            "[[service]]\nid = \"{id}\"\nname = \"{id}\"\n  [[service.probe]]\n  kind = \"dns\"\n  query = \"web.chat.test\"\n  server = \"{}\"\n",
            dns.addr
        )
    };
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = \"{}\"\n{}{}",
        dir.join("history.db").display(),
        probe("steady"),
        probe("gappy")
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn cli(config: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_chatpulse")).arg("--config").arg(config).args(args).output().unwrap()
}

#[tokio::test]
async fn cli_reports_exact_uptime_excluding_the_offline_gap() {
    let dns = TestDns::start().await;
    let dir = tempfile::tempdir().unwrap();
    synthesise(&dir.path().join("history.db")).await;
    let path = config(dir.path(), &dns);
    let out = cli(&path, &["uptime", "--window", "24h", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steady = &doc["services"][0];
    assert_eq!(steady["service"], "steady");
    assert_eq!(steady["uptime_ratio"].as_f64().unwrap(), 23.0 / 24.0);
    assert_eq!((steady["down_seconds"].as_i64(), steady["observed_seconds"].as_i64()), (Some(H), Some(24 * H)));
    assert_eq!(steady["unknown_seconds"], 0);
    assert_eq!(steady["incidents"], 1);
    assert_eq!(steady["mttr_seconds"].as_f64(), Some(H as f64));
    let gappy = &doc["services"][1];
    assert_eq!(gappy["unknown_seconds"], 2 * H, "the offline gap");
    assert_eq!(gappy["observed_seconds"], 22 * H);
    assert_eq!(gappy["uptime_ratio"].as_f64().unwrap(), 21.0 / 22.0);

    let table = String::from_utf8(cli(&path, &["uptime", "--window", "24h"]).stdout).unwrap();
    assert!(table.contains("95.833%") && table.contains("95.455%"), "{table}");
    let incidents = cli(&path, &["incidents", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&incidents.stdout).unwrap();
    assert_eq!(doc["incidents"][0]["duration_seconds"], H);
    assert_eq!(doc["incidents"][0]["cause"]["summary"], "dns: synthetic SERVFAIL");
    let text = String::from_utf8(cli(&path, &["incidents"]).stdout).unwrap();
    assert!(text.contains("steady") && text.contains("1h 0m") && text.contains("dns: synthetic SERVFAIL"), "{text}");

    let bad = cli(&path, &["uptime", "--window", "fortnight"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).starts_with("chatpulse: --window: \"fortnight\""));
    let ancient = cli(&path, &["uptime", "--window", "60y"]);
    assert_eq!(ancient.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&ancient.stderr).contains("reaches back before 1970"));
    let unknown = cli(&path, &["uptime", "--service", "nosuch"]);
    assert_eq!(unknown.status.code(), Some(2));
    let missing = tempfile::tempdir().unwrap();
    let empty = config(missing.path(), &dns);
    let out = cli(&empty, &["incidents"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no history at"));
}

/// Starts a monitor on a store holding the synthesised history, once it has
/// judged the live `steady` service up; returns it and its config file.
async fn monitor_over_synthesised_history(dns: &TestDns, dir: &Path) -> (Daemon, std::path::PathBuf) {
    synthesise(&dir.join("history.db")).await;
    let path = config(dir, dns);
    let daemon = Daemon::start(dir, &path, &[]).await;
    wait_for("steady judged", Duration::from_secs(15), || async {
        (daemon.service("steady").await?["status"] == "up").then_some(())
    })
    .await;
    (daemon, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_serves_uptime_history_and_incidents_with_json_errors() {
    let dns = TestDns::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (daemon, _) = monitor_over_synthesised_history(&dns, dir.path()).await;
    let uptime = daemon.json("/api/v1/services/steady/uptime?window=24h").await.unwrap();
    assert_eq!(uptime["window"], "24h");
    assert_eq!(uptime["down_seconds"], H);
    // The few seconds between the synthetic history and this run count as unknown.
    assert!((uptime["uptime_ratio"].as_f64().unwrap() - 23.0 / 24.0).abs() < 1e-3, "{uptime}");
    for key in [
        "service",
        "from",
        "to",
        "degraded_seconds",
        "unknown_seconds",
        "observed_seconds",
        "incidents",
        "mttr_seconds",
    ] {
        assert!(uptime.get(key).is_some(), "{key}");
    }
    let history = daemon.json("/api/v1/services/steady/history?window=24h&step=1h").await.unwrap();
    let buckets = history["buckets"].as_array().unwrap();
    assert_eq!(history["step"], "1h");
    assert!(buckets.len() >= 24 && buckets.len() <= 25, "{}", buckets.len());
    // The down hour straddles one or two hour buckets; together they lost an hour.
    let down: Vec<&serde_json::Value> = buckets.iter().filter(|b| b["status"] == "down").collect();
    assert!((1..=2).contains(&down.len()), "{history}");
    let lost: f64 = down.iter().map(|b| (1.0 - b["uptime_ratio"].as_f64().unwrap()) * 3600.0).sum();
    assert!((lost - 3600.0).abs() < 1.0, "{lost}");
    let incidents = daemon.json("/api/v1/incidents?service=steady&since=2d").await.unwrap();
    assert_eq!(incidents["incidents"][0]["status"], "down");

    // The uptime gauges, one per window: the day before yesterday was down.
    for (window, expected) in [("1d", 23.0 / 24.0), ("7d", 23.0 / 48.0), ("30d", 23.0 / 48.0)] {
        let series = format!("chatpulse_service_uptime_ratio{{service=\"steady\",window=\"{window}\"}}");
        let ratio = wait_for(&series, Duration::from_secs(10), || daemon.metric(&series)).await;
        assert!((ratio - expected).abs() < 1e-3, "{series} = {ratio}");
    }

    let (code, body) = daemon.get("/api/v1/services/nosuch/uptime").await.unwrap();
    assert_eq!(code, 404);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"], "no service \"nosuch\"");
    let (code, body) = daemon.get("/api/v1/services/steady/uptime?window=soon").await.unwrap();
    assert_eq!(code, 400);
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].as_str().unwrap().starts_with("window:")
    );
    let (code, _) = daemon.get("/api/v1/services/steady/uptime?window=60y").await.unwrap();
    assert_eq!(code, 400);
    let (code, _) = daemon.get("/api/v1/services/steady/history?window=400d&step=1s").await.unwrap();
    assert_eq!(code, 400);
    let (code, _) = daemon.get("/api/v1/incidents?service=nosuch").await.unwrap();
    assert_eq!(code, 404);
}

/// Window and step values that once wrapped, divided by zero or allocated
/// until the kernel killed the monitor: each is a 400 naming its parameter
/// (or exit 2 on the command line), and the monitor's memory stays flat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_windows_are_refused_and_memory_stays_flat() {
    let dns = TestDns::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (daemon, path) = monitor_over_synthesised_history(&dns, dir.path()).await;
    let before = daemon.rss_kib();
    for (query, param) in [
        ("/api/v1/services/steady/history?window=9223372036854775808s&step=1h", "window"),
        ("/api/v1/services/steady/history?window=18446744073709551615s&step=1h", "window"),
        ("/api/v1/services/steady/history?window=24h&step=500ms", "step"),
        ("/api/v1/services/steady/history?window=24h&step=0s", "step"),
        ("/api/v1/services/steady/history?window=100y&step=1s", "window"),
        ("/api/v1/services/steady/history?window=30d&step=1s", "step"),
        ("/api/v1/services/steady/uptime?window=300000000000y", "window"),
        ("/api/v1/services/steady/uptime?window=101y", "window"),
        ("/api/v1/incidents?since=9223372036854775808s", "since"),
    ] {
        let (code, body) = daemon.get(query).await.expect("the monitor answers");
        assert_eq!(code, 400, "{query}: {body}");
        let error = serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"].as_str().unwrap().to_string();
        assert!(error.starts_with(&format!("{param}: ")), "{query}: {error}");
    }
    let (code, _) = daemon.get("/healthz").await.expect("still serving");
    assert_eq!(code, 200);
    let grown = daemon.rss_kib().saturating_sub(before);
    assert!(grown < 20 * 1024, "RSS grew by {grown} KiB");

    for (flag, value) in [
        ("--window", "300000000000y"),
        ("--window", "18446744073709551615s"),
        ("--window", "500ms"),
        ("--since", "9223372036854775808s"),
    ] {
        let command = if flag == "--since" { "incidents" } else { "uptime" };
        let out = cli(&path, &[command, flag, value]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.starts_with(&format!("chatpulse: {flag}: ")), "{flag} {value}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
