//! End to end with the real binary: `chatpulse run` against a real DNS
//! server and a real HTTP server on loopback. Break the DNS server, watch the
//! service go down with a DNS root cause, repair it, watch it recover; reload
//! on SIGHUP; stop on SIGTERM.

mod support;

use std::time::Duration;

use support::daemon::Daemon;
use support::dns::{Mode, TestDns};
use support::http::TestHttp;
use support::wait_for;

fn config(dns: &TestDns, http: &TestHttp, dir: &std::path::Path) -> String {
    format!(
        r#"
[monitor]
vantage = "e2e"
interval = "300ms"
timeout = "250ms"
fail_after = 2
recover_after = 2

{store}

[[service]]
id = "whatsapp"
name = "WhatsApp"
  [[service.probe]]
  kind = "dns"
  id = "dns-web"
  query = "web.chat.test"
  server = "{dns}"
  [[service.probe]]
  kind = "dns"
  id = "dns-mx"
  query = "mail.chat.test"
  record = "MX"
  server = "{dns}"

[[service]]
id = "signal"
name = "Signal"
  [[service.probe]]
  kind = "http"
  url = "{url}"
  body_contains = "WhatsApp"
"#,
        store = support::config::server_and_store(dir),
        dns = dns.addr,
        url = http.url("/switch"),
    )
}

async fn status_of(daemon: &Daemon, id: &str) -> Option<String> {
    daemon.service(id).await.and_then(|s| s["status"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_outage_takes_service_down_with_dns_root_cause_and_it_recovers() {
    let dns = TestDns::start().await;
    let http = TestHttp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config(&dns, &http, dir.path())).unwrap();
    let daemon = Daemon::start(dir.path(), &path, &[]).await;
    let deadline = Duration::from_secs(15);

    wait_for("whatsapp up", deadline, || async { (status_of(&daemon, "whatsapp").await? == "up").then_some(()) }).await;
    let probe_up = r#"chatpulse_probe_up{service="whatsapp",probe="dns-web",kind="dns"}"#;
    assert_eq!(daemon.metric(probe_up).await, Some(1.0));

    dns.set_mode(Mode::ServFail);
    wait_for("probe_up 0", deadline, || async { (daemon.metric(probe_up).await? == 0.0).then_some(()) }).await;
    let service = wait_for("whatsapp down", deadline, || async {
        let s = daemon.service("whatsapp").await?;
        (s["status"] == "down").then_some(s)
    })
    .await;
    let summary = service["cause"]["summary"].as_str().unwrap();
    assert_eq!(service["cause"]["layer"], "dns");
    assert_eq!(service["cause"]["reason"], "dns_servfail", "SPEC 9.7: the API's cause names its reason");
    assert!(summary.starts_with("dns: "), "{summary}");
    assert!(summary.contains("SERVFAIL"), "{summary}");
    assert_eq!(service["probes"][0]["last_result"], "dns_servfail");
    let runs = r#"chatpulse_probe_runs_total{service="whatsapp",probe="dns-web",kind="dns",result="dns_servfail"}"#;
    assert!(daemon.metric(runs).await.unwrap_or(0.0) >= 2.0);
    assert_eq!(daemon.metric(r#"chatpulse_service_up{service="whatsapp"}"#).await, Some(0.0));
    assert_eq!(daemon.metric(r#"chatpulse_service_status{service="whatsapp",status="down"}"#).await, Some(1.0));
    // The other service is untouched.
    assert_eq!(status_of(&daemon, "signal").await.as_deref(), Some("up"));

    dns.set_mode(Mode::Normal);
    wait_for("whatsapp up again", deadline, || async { (status_of(&daemon, "whatsapp").await? == "up").then_some(()) })
        .await;
    assert_eq!(daemon.metric(probe_up).await, Some(1.0));
    assert_eq!(daemon.metric(r#"chatpulse_service_up{service="whatsapp"}"#).await, Some(1.0));
    let doc = daemon.json("/api/v1/services").await.unwrap();
    assert_eq!(doc["vantage"], "e2e");
    assert_eq!(doc["online"], true);
    assert!(doc["services"][0]["cause"].is_null());
    assert!(doc["services"][0]["since"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_bad_config_keeps_the_old_one_and_sigterm_stops_cleanly() {
    let dns = TestDns::start().await;
    let http = TestHttp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let good = config(&dns, &http, dir.path());
    std::fs::write(&path, &good).unwrap();
    let mut daemon = Daemon::start(dir.path(), &path, &[]).await;
    let deadline = Duration::from_secs(15);
    let reload_ok = "chatpulse_config_last_reload_successful";
    assert_eq!(daemon.metric(reload_ok).await, Some(1.0));
    wait_for("signal up", deadline, || async { (status_of(&daemon, "signal").await? == "up").then_some(()) }).await;

    std::fs::write(&path, good.replace("interval = \"300ms\"", "interval = \"soon\"")).unwrap();
    daemon.signal("HUP");
    wait_for("reload failure reported", deadline, || async { (daemon.metric(reload_ok).await? == 0.0).then_some(()) })
        .await;
    assert!(daemon.logged("config reload rejected"), "{}", daemon.all_logs());
    // Still monitoring with the old config: a new failure is still noticed.
    http.knobs.switch_status.store(503, std::sync::atomic::Ordering::SeqCst);
    wait_for("signal down", deadline, || async { (status_of(&daemon, "signal").await? == "down").then_some(()) }).await;
    assert_eq!(daemon.get("/healthz").await, Some((200, "ok\n".to_string())));

    // A good new config (a service renamed) is taken.
    std::fs::write(&path, good.replace("name = \"Signal\"", "name = \"Signal Messenger\"")).unwrap();
    daemon.signal("HUP");
    wait_for("reload success", deadline, || async { (daemon.metric(reload_ok).await? == 1.0).then_some(()) }).await;
    let signal = daemon.service("signal").await.unwrap();
    assert_eq!(signal["name"], "Signal Messenger");
    assert_eq!(signal["status"], "down", "unchanged probes keep their state across a reload");

    // The service removed from the config: gone from the API, its incident ended.
    let incidents = daemon.json("/api/v1/incidents?service=signal").await.unwrap();
    assert!(incidents["incidents"][0]["ended_at"].is_null(), "open while down: {incidents}");
    let without_signal = good[..good.find("[[service]]\nid = \"signal\"").unwrap()].to_string();
    std::fs::write(&path, without_signal).unwrap();
    daemon.signal("HUP");
    wait_for("signal gone", deadline, || async { daemon.service("signal").await.is_none().then_some(()) }).await;
    let incidents = wait_for("the incident ended", deadline, || async {
        let doc = daemon.json("/api/v1/incidents").await?;
        doc["incidents"][0]["ended_at"].is_string().then_some(doc)
    })
    .await;
    assert_eq!(incidents["incidents"][0]["service"], "signal");

    daemon.signal("TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), daemon.child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(0));
    wait_for("the last log line", deadline, || async { daemon.logged("stopped").then_some(()) }).await;
}

#[tokio::test]
async fn run_with_a_bad_config_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "[server]\nlisten = \"nowhere\"\n").unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_chatpulse"))
        .arg("--config")
        .arg(&path)
        .arg("run")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":2: [server]: \"listen\""));
}

/// While the monitor is offline (its only guard fails) the service is
/// unknown, and `chatpulse_service_up` says NaN — never a green 1 — and
/// every series the config fixes is there from the first scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_is_nan_and_configured_series_exist_from_the_first_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let bgp_port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let config = format!(
        r#"
{store}
{email}
{bgp}
[[guard]]
kind = "dns"
query = "."
record = "NS"
server = "127.0.0.1:9"
[[service]]
id = "whatsapp"
name = "WhatsApp"
  [[service.probe]]
  kind = "dns"
  query = "web.chat.test"
  server = "127.0.0.1:9"
  [[service.probe]]
  kind = "bgp"
  prefix = "129.134.30.0/23"
"#,
        store = support::config::server_and_store(dir.path()),
        email = support::config::email(9),
        bgp = support::config::bgp_session(bgp_port),
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let daemon = Daemon::start(dir.path(), &path, &[]).await;
    let (_, text) = daemon.get("/metrics").await.expect("metrics served");
    for series in [
        "chatpulse_bgp_updates_total{source=\"session\"} 0",
        "chatpulse_alerts_sent_total{channel=\"email\",event=\"down\"} 0",
        // Flapping too: a rate() over it works before the first flap.
        "chatpulse_alerts_sent_total{channel=\"email\",event=\"flapping\"} 0",
        "chatpulse_alert_failures_total{channel=\"email\",event=\"recovered\"} 0",
        "chatpulse_alert_queue_length{channel=\"email\"} 0",
        "chatpulse_service_status{service=\"whatsapp\",status=\"unknown\"} 1",
    ] {
        assert!(text.contains(series), "{series} missing from the first scrape:\n{text}");
    }
    let up = wait_for("service_up", Duration::from_secs(10), || {
        daemon.metric(r#"chatpulse_service_up{service="whatsapp"}"#)
    })
    .await;
    assert!(up.is_nan(), "service_up = {up} while unknown");
    wait_for("offline", Duration::from_secs(10), || async {
        (daemon.metric("chatpulse_monitor_online").await? == 0.0).then_some(())
    })
    .await;
    let up = daemon.metric(r#"chatpulse_service_up{service="whatsapp"}"#).await.unwrap();
    assert!(up.is_nan(), "service_up = {up} while offline");
}

/// `/metrics` of a few hundred probes is several 64 KB chunks: streamed,
/// it arrives whole — every family, every probe's series, and the last
/// family (the per-probe ones come last, in plan order) complete down to
/// the last probe's line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_metrics_page_is_streamed_whole() {
    let dns = TestDns::start().await;
    let dir = tempfile::tempdir().unwrap();
    let services: String = (0..300)
        .map(|i| support::config::dns_service(&format!("s{i}"), &format!("S{i}"), "web.chat.test", dns.addr))
        .collect();
    let text = format!("[monitor]\ninterval = \"1h\"\n{}{services}", support::config::server_and_store(dir.path()));
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    let daemon = Daemon::start(dir.path(), &path, &[]).await;
    let (status, body) = daemon.get("/metrics").await.expect("/metrics answers");
    assert_eq!(status, 200);
    assert!(body.len() > 4 * 64 * 1024, "{} bytes: more than a few chunks", body.len());
    assert!(body.contains("\nchatpulse_scheduler_lateness_seconds_count "), "the lateness family is missing");
    let tail = &body[body.len().saturating_sub(200)..];
    let last = tail.trim_end().rsplit('\n').next().unwrap_or("");
    assert!(
        last.starts_with(r#"chatpulse_probe_runs_total{service="s299",probe="dns",kind="dns",result="ok"} "#)
            && body.ends_with('\n'),
        "…{tail}"
    );
    for i in [0, 150, 299] {
        assert!(body.contains(&format!("service=\"s{i}\",probe=\"dns\"")), "s{i} missing");
    }
}

/// A `/metrics` client that stops reading holds up nothing: with its
/// scrape stalled mid-page, a SIGHUP reload (which replaces the probes'
/// series) still goes through and the API keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_metrics_client_does_not_hold_up_a_reload() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dns = TestDns::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = |n: usize| {
        let services: String = (0..n)
            .map(|i| support::config::dns_service(&format!("s{i}"), &format!("S{i}"), "web.chat.test", dns.addr))
            .collect();
        format!("[monitor]\ninterval = \"1h\"\n{}{services}", support::config::server_and_store(dir.path()))
    };
    let path = dir.path().join("config.toml");
    // ~15 MB of text, to a client with a small receive buffer: far more than
    // the sockets take in, so the encoder blocks on the client.
    std::fs::write(&path, config(10_000)).unwrap();
    let daemon = Daemon::start(dir.path(), &path, &[]).await;
    let addr: std::net::SocketAddr = daemon.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = tokio::time::timeout(Duration::from_secs(10), socket.connect(addr)).await.unwrap().unwrap();
    stalled.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut first = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stalled.read(&mut first)).await.unwrap().unwrap();
    // The encoder has started (and soon blocks on this client, whatever
    // the order): the reload must not wait for it.
    assert!(n > 0, "the scrape started");
    std::fs::write(&path, config(10_001)).unwrap();
    daemon.signal("HUP");
    wait_for("the reload to take effect while the scrape is stalled", Duration::from_secs(5), || async {
        daemon.service("s10000").await.map(|_| ())
    })
    .await;
    drop(stalled);
}
