//! A configured BGP peer that floods the watched space: 30,000 IPv6
//! more-specifics under a watched /32 from one peer. BGP work runs off the
//! probe thread and costs the same per update however many routes sit under
//! the prefix, so a healthy HTTP target on the same monitor is never judged
//! late (`http_timeout`) or down while the flood is applied.

mod support;

use std::time::Duration;

use support::bgp::{self, Speaker};
use support::daemon::Daemon;
use support::http::TestHttp;
use support::wait_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_more_specifics_does_not_delay_the_probes() {
    let http = TestHttp::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bgp_port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let config = format!(
        r#"
[monitor]
interval = "200ms"
timeout = "150ms"
fail_after = 2
recover_after = 1
[server]
listen = "127.0.0.1:0"
[storage]
path = "{db}"
[bgp]
source = "session"
[bgp.session]
listen = "127.0.0.1:{bgp_port}"
local_as = 65010
router_id = "192.0.2.10"
  [[bgp.session.peer]]
  address = "127.0.0.2"
  remote_as = 65001

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
        db = dir.path().join("h.db").display(),
        url = http.url("/ok"),
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
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
