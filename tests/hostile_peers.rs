//! BGP peers that misbehave, against the real binary with the `session`
//! source: a configured peer that floods the watched space (30,000 IPv6
//! more-specifics under a watched /32) must not delay the probes — BGP work
//! runs off the probe thread and costs the same per update however many
//! routes sit under the prefix; a peer that stalls mid-UPDATE gets "hold
//! timer expired" and the feed goes down; 1,100 half-open connections under
//! a 1024-descriptor limit neither spin a core nor stop the monitor; a RIS
//! Live server that hangs up at once is not hammered, and a looking glass
//! whose answer never ends does not grow the monitor's memory.

mod support;

use std::time::Duration;

use support::bgp::{self, Speaker};
use support::daemon::Daemon;
use support::http::TestHttp;
use support::wait_for;

fn session_config(dir: &std::path::Path, bgp_port: u16, url: &str) -> std::path::PathBuf {
    let config = format!(
        r#"
[monitor]
interval = "200ms"
timeout = "150ms"
fail_after = 2
recover_after = 1
{store}
{bgp}
[[service]]
id = "facebook"
name = "Facebook"
  [[service.probe]]
  kind = "bgp"
  prefix = "2a03:2880::/32"
  origin = 32934
  interval = "1h"
  [[service.probe]]
  kind = "http"
  url = "{url}"
"#,
        store = support::config::server_and_store(dir),
        bgp = support::config::bgp_session(bgp_port),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).unwrap();
    path
}

async fn free_port() -> u16 {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
}

/// Connects to chatpulse's BGP port from 127.0.0.2 (the configured peer).
async fn connect_peer(bgp_port: u16) -> Speaker {
    wait_for("the BGP listener", Duration::from_secs(10), || async {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        socket.bind("127.0.0.2:0".parse().ok()?).ok()?;
        let connect = socket.connect(([127, 0, 0, 1], bgp_port).into());
        let stream = tokio::time::timeout(Duration::from_secs(1), connect).await.ok()?.ok()?;
        Some(Speaker::from_stream(stream))
    })
    .await
}

/// CPU seconds (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc readable");
    let after_name = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_more_specifics_does_not_delay_the_probes() {
    let http = TestHttp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bgp_port = free_port().await;
    let path = session_config(dir.path(), bgp_port, &http.url("/ok"));
    let daemon = Daemon::start(dir.path(), &path, &[]).await;
    let mut peer = wait_for("the BGP listener", Duration::from_secs(10), || async {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        socket.bind("127.0.0.2:0".parse().ok()?).ok()?;
        let stream = tokio::time::timeout(Duration::from_secs(1), socket.connect(([127, 0, 0, 1], bgp_port).into()))
            .await
            .ok()?
            .ok()?;
        Some(Speaker::from_stream(stream))
    })
    .await;
    peer.establish(65001, 90).await;
    peer.send(&bgp::announce_v6(&["2a03:2880::/32"], &[65001, 32934])).await;
    wait_for("the service up", Duration::from_secs(15), || async {
        (daemon.service("facebook").await?["status"] == "up").then_some(())
    })
    .await;

    let series = "chatpulse_probe_runs_total{service=\"facebook\",probe=\"http-1\",kind=\"http\",result=\"ok\"}";
    let ok_before = daemon.metric(series).await.unwrap_or(0.0);
    const FLOOD: u32 = 30_000;
    let prefixes: Vec<String> = (0..FLOOD).map(|i| format!("2a03:2880:{:x}::/48", i + 1)).collect();
    for chunk in prefixes.chunks(500) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        peer.send(&bgp::announce_v6(&refs, &[65001, 666])).await;
    }
    wait_for("the flood applied", Duration::from_secs(60), || async {
        let n = daemon.metric("chatpulse_bgp_updates_total{source=\"session\"}").await?;
        (n >= f64::from(FLOOD)).then_some(())
    })
    .await;
    let ok_after = daemon.metric(series).await.unwrap_or(0.0);
    assert!(ok_after > ok_before, "the HTTP probe kept running");
    for result in ["http_timeout", "http_connect"] {
        let bad = format!(
            "chatpulse_probe_runs_total{{service=\"facebook\",probe=\"http-1\",kind=\"http\",result=\"{result}\"}}"
        );
        assert_eq!(daemon.metric(&bad).await.unwrap_or(0.0), 0.0, "{result} during the flood");
    }
    let incidents = daemon.json("/api/v1/incidents").await.expect("the API answers");
    let http_down = incidents["incidents"].as_array().unwrap().iter().any(|i| i["cause"]["layer"] == "http");
    assert!(!http_down, "{incidents}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_stalling_mid_update_is_cut_and_the_feed_goes_down() {
    let http = TestHttp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bgp_port = free_port().await;
    let path = session_config(dir.path(), bgp_port, &http.url("/ok"));
    let daemon = Daemon::start(dir.path(), &path, &[]).await;
    let mut peer = connect_peer(bgp_port).await;
    peer.establish(65001, 3).await;
    peer.send(&bgp::announce_v6(&["2a03:2880::/32"], &[65001, 32934])).await;
    let feed = "chatpulse_bgp_feed_up{source=\"session\"}";
    wait_for("the feed up", Duration::from_secs(10), || async { (daemon.metric(feed).await? == 1.0).then_some(()) })
        .await;
    let update = bgp::announce_v6(&["2a03:2880:1::/48"], &[65001, 32934]);
    let started = tokio::time::Instant::now();
    peer.send(&update[..update.len() - 5]).await;
    assert_eq!(peer.notification().await, Some((4, 0)), "Hold Timer Expired");
    assert!(started.elapsed() < Duration::from_secs(6), "held {:?}", started.elapsed());
    // Down, the series names why: the session's only peer is gone.
    let down = "chatpulse_bgp_feed_up{source=\"session\",reason=\"disconnected\"}";
    wait_for("the feed down", Duration::from_secs(10), || async { (daemon.metric(down).await? == 0.0).then_some(()) })
        .await;
    assert_eq!(daemon.metric(feed).await, None, "one series per source: the 1 is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_bgp_connections_beyond_the_descriptor_limit_do_not_spin_the_monitor() {
    let http = TestHttp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bgp_port = free_port().await;
    let path = session_config(dir.path(), bgp_port, &http.url("/ok"));
    let daemon = Daemon::start_with_fd_limit(dir.path(), &path, 1024).await;
    let pid = daemon.child.id().expect("running");
    let _peer = connect_peer(bgp_port).await;
    // 1,100 connections from the configured address that never send an OPEN.
    let held = support::idle_connections([127, 0, 0, 2].into(), ([127, 0, 0, 1], bgp_port).into(), 1_100).await;
    let before = cpu_seconds(pid);
    let window = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::time::Instant::now() < window {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let share = (cpu_seconds(pid) - before) / 5.0;
    assert!(share < 0.5, "chatpulse used {:.0}% of a core while its descriptors were exhausted", share * 100.0);
    drop(held);
    let health = wait_for("/healthz answering again", Duration::from_secs(40), || async {
        daemon.get("/healthz").await.map(|(code, _)| code)
    })
    .await;
    assert!(health == 200 || health == 503, "{health}");
    let service = daemon.service("facebook").await.expect("the API answers");
    assert_ne!(service["status"], "down", "{service}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_ris_live_and_looking_glass_cost_neither_memory_nor_a_storm() {
    let http = TestHttp::start().await;
    let (ws_url, connections) = support::ris::hang_up_server().await;
    let seed_url = support::ris::endless_looking_glass().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let config = format!(
        r#"
[monitor]
interval = "500ms"
timeout = "400ms"
{store}
[bgp]
source = "ris-live"
ris_live_url = "{ws_url}"
seed_url = "{seed_url}"
stale_after = "5s"
[[service]]
id = "facebook"
name = "Facebook"
  [[service.probe]]
  kind = "bgp"
  prefix = "129.134.30.0/23"
  origin = 32934
  [[service.probe]]
  kind = "http"
  url = "{url}"
"#,
        store = support::config::server_and_store(dir.path()),
        url = http.url("/ok"),
    );
    std::fs::write(&path, config).unwrap();
    let daemon = Daemon::start(dir.path(), &path, &[]).await;
    let end = tokio::time::Instant::now() + Duration::from_secs(8);
    let mut peak_kib = 0;
    while tokio::time::Instant::now() < end {
        peak_kib = peak_kib.max(daemon.rss_kib());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each attempt reads at most 32 MiB of the endless answer, then backs
    // off 1, 2, 4 s: a handful of connections, and bounded memory.
    let n = connections.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=5).contains(&n), "{n} connections in 8 s");
    assert!(peak_kib < 160 * 1024, "peak RSS {peak_kib} KiB");
    let service = daemon.service("facebook").await.expect("the API answers");
    assert_eq!(service["status"], "up", "{service}");
    let bgp = &service["probes"][0];
    assert_eq!(
        bgp["last_result"], "bgp_unknown",
        "{bgp}
"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_stalling_inside_its_open_is_cut_at_the_open_deadline() {
    let http = TestHttp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bgp_port = free_port().await;
    let path = session_config(dir.path(), bgp_port, &http.url("/ok"));
    let _daemon = Daemon::start(dir.path(), &path, &[]).await;
    let mut peer = connect_peer(bgp_port).await;
    let open = bgp::open(4, 65001, 90, [192, 0, 2, 99]);
    peer.send(&open[..open.len() - 3]).await;
    let started = tokio::time::Instant::now();
    let cut = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            if let Some(code) = peer.notification().await {
                return code;
            }
        }
    })
    .await
    .expect("cut within 40 s");
    assert_eq!(cut, (4, 0), "Hold Timer Expired at the OPEN deadline");
    assert!(started.elapsed() < Duration::from_secs(32), "held {:?}", started.elapsed());
}
