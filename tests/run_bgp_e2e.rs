//! End to end with the real binary and the `session` source: a BGP speaker in
//! the test peers with `chatpulse run`; a withdrawal of Facebook's DNS prefix
//! makes the service degraded with a `bgp:` root cause at once, a DNS failure
//! on top takes it down with the root cause still BGP, and both recover.

mod support;

use std::time::Duration;

use support::bgp::{self, Speaker};
use support::daemon::Daemon;
use support::dns::{Mode, TestDns};
use support::wait_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bgp_withdrawal_is_the_root_cause_below_a_dns_failure() {
    let dns = TestDns::start().await;
    let dir = tempfile::tempdir().unwrap();
    let bgp_port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let config = format!(
        r#"
[monitor]
interval = "300ms"
timeout = "250ms"
fail_after = 1
recover_after = 1
{store}
{bgp}
[[service]]
id = "facebook"
name = "Facebook"
  [[service.probe]]
  kind = "bgp"
  id = "dns-prefix"
  prefix = "129.134.30.0/23"
  origin = 32934
  interval = "1h"
  [[service.probe]]
  kind = "dns"
  query = "web.chat.test"
  server = "{dns}"
"#,
        store = support::config::server_and_store(dir.path()),
        bgp = support::config::bgp_session(bgp_port),
        dns = dns.addr,
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let daemon = Daemon::start(dir.path(), &path, &[]).await;
    let deadline = Duration::from_secs(15);

    let mut peer = wait_for("chatpulse's BGP listener", deadline, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", bgp_port)).await.ok().map(|_| ())
    })
    .await;
    let _ = &mut peer;
    let mut peer = Speaker::connect(([127, 0, 0, 1], bgp_port).into(), "127.0.0.2".parse().unwrap()).await;
    peer.establish(65001, 30).await;
    peer.send(&bgp::announce(&["129.134.30.0/23"], &[65001, 32934])).await;
    let status = |id: &'static str| {
        let daemon = &daemon;
        async move { daemon.service(id).await.and_then(|s| s["status"].as_str().map(str::to_string)) }
    };
    wait_for("facebook up", deadline, || async { (status("facebook").await? == "up").then_some(()) }).await;
    assert_eq!(daemon.metric(r#"chatpulse_bgp_feed_up{source="session"}"#).await, Some(1.0));
    let sources = daemon.json("/api/v1/services").await.unwrap()["bgp_sources"].clone();
    assert_eq!(sources, serde_json::json!([{"source": "session", "up": true, "reason": null}]));
    let ratio = r#"chatpulse_bgp_visibility_ratio{service="facebook",probe="dns-prefix",prefix="129.134.30.0/23"}"#;
    let metrics = daemon.get("/metrics").await.unwrap().1;
    assert_eq!(
        daemon.metric(ratio).await,
        Some(1.0),
        "{}",
        metrics.lines().filter(|l| l.contains("bgp")).collect::<Vec<_>>().join("\n")
    );

    // The probe's interval is an hour: only the withdrawal itself can trigger it.
    peer.send(&bgp::withdraw(&["129.134.30.0/23"])).await;
    let service = wait_for("facebook degraded", Duration::from_secs(5), || async {
        let s = daemon.service("facebook").await?;
        (s["status"] == "degraded").then_some(s)
    })
    .await;
    assert_eq!(service["cause"]["layer"], "bgp");
    assert_eq!(
        service["cause"]["summary"],
        "bgp: dns-prefix bgp_invisible — 129.134.30.0/23 seen by 0% of 1 peers (origin AS32934)"
    );
    assert_eq!(daemon.metric(ratio).await, Some(0.0));

    dns.set_mode(Mode::ServFail);
    let service = wait_for("facebook down", deadline, || async {
        let s = daemon.service("facebook").await?;
        (s["status"] == "down").then_some(s)
    })
    .await;
    assert_eq!(service["cause"]["layer"], "bgp", "the root cause stays at the lowest layer");

    dns.set_mode(Mode::Normal);
    peer.send(&bgp::announce(&["129.134.30.0/23"], &[65001, 32934])).await;
    wait_for("facebook up again", deadline, || async { (status("facebook").await? == "up").then_some(()) }).await;
}
