//! RPKI end to end with the real binary and the `session` source: a BGP
//! speaker in the test announces a valid route, an invalid-length
//! more-specific and an invalid-origin more-specific of Facebook's DNS
//! prefix, against a VRP file the test writes in rpki-client's `-j` format
//! and then rewrites in Routinator's `jsonext` format — the probe follows
//! the file without any BGP message.

mod support;

use std::path::Path;
use std::time::Duration;

use support::bgp::{self, Speaker};
use support::daemon::Daemon;
use support::wait_for;

const DEADLINE: Duration = Duration::from_secs(15);

/// rpki-client 8.2 `-j`: `{ "asn": %u, "prefix": "%s", "maxLength": %u, "ta": "%s", "expires": %lld }`.
const RPKI_CLIENT: &str = r#"{
	"metadata": { "buildmachine": "test", "buildtime": "2026-12-02T00:00:00Z", "roas": 1, "vrps": 1 },
	"roas": [
		{ "asn": 32934, "prefix": "129.134.30.0/23", "maxLength": 24, "ta": "arin", "expires": 1900000000 }
	],
	"bgpsec_keys": [
	]
}"#;

/// Routinator `jsonext`, now also authorising AS666 for one /24.
const ROUTINATOR: &str = r#"{
  "metadata": { "generated": 1796000000, "generatedTime": "2026-12-02T00:00:00Z" },
  "roas": [
    { "asn": "AS32934", "prefix": "129.134.30.0/23", "maxLength": 24, "source": [ { "type": "roa", "uri": "rsync://x/a.roa" } ] },
    { "asn": "AS666", "prefix": "129.134.31.0/24", "maxLength": 24, "source": [ { "type": "roa", "uri": "rsync://x/b.roa" } ] }
  ]
}"#;

fn write_config(dir: &Path, bgp_port: u16) -> std::path::PathBuf {
    // `rpki` joins [bgp], before its [bgp.session] sub-table.
    let bgp = support::config::bgp_session(bgp_port).replacen(
        "source = \"session\"\n",
        "source = \"session\"\nrpki = \"vrps.json\"\n",
        1,
    );
    let text = format!(
        "[monitor]\nfail_after = 1\nrecover_after = 1\n{store}{bgp}[[service]]\nid = \"facebook\"\nname = \"Facebook\"\n  [[service.probe]]\n  kind = \"bgp\"\n  id = \"dns-prefix\"\n  prefix = \"129.134.30.0/23\"\n  more_specifics = true\n  interval = \"1h\"\n",
        store = support::config::server_and_store(dir),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn probe(daemon: &Daemon) -> Option<(String, String)> {
    let service = daemon.service("facebook").await?;
    let p = &service["probes"][0];
    Some((p["last_result"].as_str()?.to_string(), service["status"].as_str()?.to_string()))
}

async fn until_result(daemon: &Daemon, result: &str) {
    wait_for(&format!("probe result {result}"), DEADLINE, || async {
        (probe(daemon).await?.0 == result).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpki_invalid_routes_are_told_apart_and_the_vrp_file_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vrps.json"), RPKI_CLIENT).unwrap();
    let bgp_port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let path = write_config(dir.path(), bgp_port);
    let daemon = Daemon::start(dir.path(), &path, &[]).await;
    wait_for("chatpulse's BGP listener", DEADLINE, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", bgp_port)).await.ok().map(|_| ())
    })
    .await;
    wait_for("the VRPs loaded", DEADLINE, || async { daemon.logged("RPKI VRPs loaded").then_some(()) }).await;
    let mut peer = Speaker::connect(([127, 0, 0, 1], bgp_port).into(), "127.0.0.2".parse().unwrap()).await;
    peer.establish(65001, 30).await;

    peer.send(&bgp::announce(&["129.134.30.0/23", "129.134.31.0/24"], &[65001, 32934])).await;
    until_result(&daemon, "ok").await;

    // Longer than the ROA's maxLength: invalid although the origin is right.
    peer.send(&bgp::announce(&["129.134.30.0/25"], &[65001, 32934])).await;
    until_result(&daemon, "bgp_rpki_invalid").await;
    let (_, status) = probe(&daemon).await.unwrap();
    assert_eq!(status, "down", "a single probe that is DOWN takes its service down");
    let detail = daemon.json("/api/v1/services").await.unwrap()["services"][0]["cause"]["summary"].clone();
    assert!(detail.as_str().unwrap().contains("originated by AS32934, RPKI-invalid, at 1 of 1 peers"), "{detail}");
    peer.send(&bgp::withdraw(&["129.134.30.0/25"])).await;
    until_result(&daemon, "ok").await;

    // Another origin for a more-specific: the classic hijack, no origin list needed.
    peer.send(&bgp::announce(&["129.134.31.0/24"], &[65001, 666])).await;
    until_result(&daemon, "bgp_rpki_invalid").await;

    // The operator's validator now authorises AS666 for it: the file alone
    // turns the probe back.
    std::fs::write(dir.path().join("vrps.json"), ROUTINATOR).unwrap();
    until_result(&daemon, "ok").await;
    assert_eq!(daemon.metric(r#"chatpulse_bgp_feed_up{source="session"}"#).await, Some(1.0));

    // A broken export is reported and the VRPs read before stay in force.
    std::fs::write(dir.path().join("vrps.json"), "{ not json").unwrap();
    wait_for("the broken file reported", DEADLINE, || async {
        daemon.logged("the VRPs read before stay in force").then_some(())
    })
    .await;
    peer.send(&bgp::announce(&["129.134.30.0/25"], &[65001, 32934])).await;
    until_result(&daemon, "bgp_rpki_invalid").await;
}
