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

/// The input is not trusted: a file missing at start, a FIFO, a link to
/// `/dev/zero` and a VRP for 0.0.0.0/0 from a foreign AS neither stop the
/// monitor nor page for Facebook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_fifo_device_or_bogus_vrp_file_neither_blinds_nor_pages() {
    let dir = tempfile::tempdir().unwrap();
    let vrps = dir.path().join("vrps.json");
    let bgp_port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let path = write_config(dir.path(), bgp_port);
    // rpki-client has not run yet: chatpulse starts, without RPKI.
    let daemon = Daemon::start(dir.path(), &path, &[]).await;
    wait_for("the missing file reported", DEADLINE, || async {
        daemon.logged("does not exist (yet): running without RPKI until it appears").then_some(())
    })
    .await;
    wait_for("chatpulse's BGP listener", DEADLINE, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", bgp_port)).await.ok().map(|_| ())
    })
    .await;
    let mut peer = Speaker::connect(([127, 0, 0, 1], bgp_port).into(), "127.0.0.2".parse().unwrap()).await;
    peer.establish(65001, 30).await;
    peer.send(&bgp::announce(&["129.134.30.0/23"], &[65001, 32934])).await;
    until_result(&daemon, "ok").await;

    // A FIFO in its place: refused in one line, never opened to block.
    assert!(std::process::Command::new("mkfifo").arg(&vrps).status().unwrap().success());
    wait_for("the FIFO refused", DEADLINE, || async { daemon.logged("not a regular file").then_some(()) }).await;
    // One VRP no trust anchor issues: 0.0.0.0/0 for AS666 would make every
    // route invalid. Ignored and counted; the watcher is still alive, and the
    // probe, run again on the new VRPs, still passes.
    let ok_runs = r#"chatpulse_probe_runs_total{service="facebook",probe="dns-prefix",kind="bgp",result="ok"}"#;
    let before = daemon.metric(ok_runs).await.unwrap_or(0.0);
    std::fs::remove_file(&vrps).unwrap();
    std::fs::write(&vrps, r#"{"roas": [{"asn": 666, "prefix": "0.0.0.0/0", "maxLength": 32}]}"#).unwrap();
    wait_for("the bogus VRP ignored", DEADLINE, || async {
        daemon.logged("1 VRPs ignored: shorter than /8").then_some(())
    })
    .await;
    // A route change after them (a more-specific from Meta itself) has the
    // probe judged again: on a 0/0 AS666 VRP it would be bgp_rpki_invalid.
    peer.send(&bgp::announce(&["129.134.31.0/24"], &[65001, 32934])).await;
    wait_for("the probe judged again on the new VRPs, and still ok", DEADLINE, || async {
        (daemon.metric(ok_runs).await? > before).then_some(())
    })
    .await;
    assert_eq!(probe(&daemon).await.unwrap(), ("ok".to_string(), "up".to_string()), "no page for Facebook");

    // A link to /dev/zero (grew RSS to 3 GB when its size, 0, was trusted).
    std::fs::remove_file(&vrps).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &vrps).unwrap();
    wait_for("the device refused", DEADLINE, || async {
        (daemon.all_logs().matches("not a regular file").count() >= 2).then_some(())
    })
    .await;
    assert!(daemon.rss_kib() < 200 * 1024, "nothing read from the device: {} KiB", daemon.rss_kib());
    assert_eq!(probe(&daemon).await.unwrap().0, "ok");
}
