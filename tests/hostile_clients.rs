//! Clients of the monitor's own HTTP port are anyone on the network: with
//! the shipped unit's 1024-descriptor limit, a flood of idle connections
//! must not starve the probes (a false outage any client could cause), and
//! the monitor must answer again once the idle ones are timed out. Every
//! error status is JSON.

mod support;

use std::time::Duration;

use support::daemon::Daemon;
use support::dns::TestDns;
use support::http::TestHttp;
use support::wait_for;

fn config(dir: &std::path::Path, dns: &TestDns, http: &TestHttp) -> std::path::PathBuf {
    config_with(dir, dns, http, "")
}

fn config_with(dir: &std::path::Path, dns: &TestDns, http: &TestHttp, server_extra: &str) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        r#"
[monitor]
interval = "500ms"
timeout = "400ms"
fail_after = 2
recover_after = 1

[server]
listen = "127.0.0.1:0"
{server_extra}

[storage]
path = "{db}"

[[service]]
id = "steady"
name = "Steady"
  [[service.probe]]
  kind = "dns"
  query = "web.chat.test"
  server = "{dns}"
  [[service.probe]]
  kind = "http"
  url = "{url}"
"#,
        db = dir.join("history.db").display(),
        dns = dns.addr,
        url = http.url("/ok"),
    );
    std::fs::write(&path, text).unwrap();
    path
}

async fn runs(daemon: &Daemon, kind: &str, result: &str) -> f64 {
    let series = format!(
        "chatpulse_probe_runs_total{{service=\"steady\",probe=\"{kind}-1\",kind=\"{kind}\",result=\"{result}\"}}"
    );
    daemon.metric(&series).await.unwrap_or(0.0)
}

/// Starts the monitor under `prlimit --nofile=1024` and waits for it to
/// judge the `steady` service up.
async fn steady_monitor_with_1024_descriptors(dir: &std::path::Path, config: &std::path::Path) -> Daemon {
    let daemon = Daemon::start_with_fd_limit(dir, config, 1024).await;
    wait_for("steady up", Duration::from_secs(15), || async {
        (daemon.service("steady").await?["status"] == "up").then_some(())
    })
    .await;
    daemon
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_connections_is_no_outage_and_is_shed() {
    let dns = TestDns::start().await;
    let http = TestHttp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), &dns, &http);
    let daemon = steady_monitor_with_1024_descriptors(dir.path(), &path).await;
    let (dns_ok, http_ok) = (runs(&daemon, "dns", "ok").await, runs(&daemon, "http", "ok").await);

    // 1,100 connections that never send a byte: more than the process has
    // descriptors. The listener holds at most max_connections of them.
    let addr = daemon.base.trim_start_matches("http://").parse().expect("the API's address");
    let idle = support::idle_connections([127, 0, 0, 1].into(), addr, 1_100).await;
    // Probes go on through the flood: nothing fails for want of a socket.
    let hold = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < hold {
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The monitor sheds the idle ones by the header deadline and answers again.
    let health = wait_for("/healthz answering during the flood", Duration::from_secs(20), || async {
        daemon.get("/healthz").await.map(|(code, _)| code)
    })
    .await;
    assert_eq!(health, 200);
    let service = daemon.service("steady").await.expect("API answers");
    assert_eq!(service["status"], "up", "a false outage: {service}");
    assert!(runs(&daemon, "dns", "ok").await > dns_ok + 4.0, "DNS probes stalled");
    assert!(runs(&daemon, "http", "ok").await > http_ok + 4.0, "HTTP probes stalled");
    for kind in ["dns", "http"] {
        for result in ["dns_timeout", "http_connect", "http_timeout"] {
            assert_eq!(runs(&daemon, kind, result).await, 0.0, "{kind} {result} during the flood");
        }
    }
    drop(idle);
}

/// With the connection cap set above the descriptor limit (a misconfigured
/// unit), the flood does exhaust descriptors: probe runs that cannot get a
/// socket are `probe_resource` — skipped, never an outage — and /healthz
/// (asked over a connection opened before the flood) names the shortage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn descriptor_exhaustion_is_probe_resource_not_an_outage() {
    let dns = TestDns::start().await;
    let http = TestHttp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_with(dir.path(), &dns, &http, "max_connections = 5000");
    let daemon = steady_monitor_with_1024_descriptors(dir.path(), &path).await;
    // A keep-alive connection from before the flood.
    let kept = support::http_client();
    let health = format!("{}/healthz", daemon.base);
    assert_eq!(kept.get(&health).send().await.unwrap().status().as_u16(), 200);

    let addr = daemon.base.trim_start_matches("http://").parse().expect("the API's address");
    let idle = support::idle_connections([127, 0, 0, 1].into(), addr, 1_100).await;
    let said = wait_for("/healthz naming the shortage", Duration::from_secs(8), || async {
        let response = kept.get(&health).send().await.ok()?;
        let code = response.status().as_u16();
        let text = response.text().await.ok()?;
        (code == 503).then_some(text)
    })
    .await;
    assert!(said.contains("out of sockets"), "{said}");
    drop(idle);
    let skipped = wait_for("probe_resource runs counted", Duration::from_secs(30), || async {
        let n = runs(&daemon, "dns", "probe_resource").await + runs(&daemon, "http", "probe_resource").await;
        (n > 0.0).then_some(n)
    })
    .await;
    assert!(skipped > 0.0);
    let service = daemon.service("steady").await.expect("API answers");
    assert_eq!(service["status"], "up", "a false outage: {service}");
    let incidents = daemon.json("/api/v1/incidents").await.expect("API answers");
    assert_eq!(incidents["incidents"].as_array().map(Vec::len), Some(0), "{incidents}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_status_is_json() {
    let dns = TestDns::start().await;
    let http = TestHttp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), &dns, &http);
    let daemon = Daemon::start(dir.path(), &path, &[]).await;
    let client = support::http_client();
    for (method, route, code) in [
        ("POST", "/api/v1/services", 405),
        ("DELETE", "/api/v1/incidents", 405),
        ("GET", "/api/v1/nothing", 404),
        ("GET", "/api/v1/services/steady/uptime?window=%ZZ", 400),
    ] {
        let response = client
            .request(method.parse().unwrap(), format!("{}{route}", daemon.base))
            .send()
            .await
            .expect("the monitor answers");
        assert_eq!(response.status().as_u16(), code, "{method} {route}");
        let text = response.text().await.expect("a body");
        let body: serde_json::Value = serde_json::from_str(&text).expect("a JSON body");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{method} {route}: {body}");
    }
}
