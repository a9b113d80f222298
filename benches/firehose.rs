//! The full RIS Live firehose (BENCHMARKS.md, "RIS Live firehose"): a RIS
//! Live stand-in in this process streams unfiltered UPDATEs — random /24s
//! from 1,000 peers, one in a hundred touching the watched prefix — at a
//! fixed rate to the real `chatpulse run`, for a fixed time. Measured: the
//! daemon's CPU (utime + stime from /proc) over the streaming window as a
//! share of one core, and whether the watched prefix's state is exact
//! afterwards (`chatpulse_bgp_peers_seeing` equals the peers the stand-in
//! left announcing it).
//!
//! Run: `cargo bench --bench firehose` (FIREHOSE_RATE, FIREHOSE_SECONDS
//! override 20,000 updates/s for 10 s).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

const WATCHED: &str = "129.134.30.0/23";
const PEERS: u32 = 1_000;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn peer(i: u32) -> String {
    format!("10.{}.{}.1", i / 250, i % 250)
}

fn update(peer: &str, announce: Option<&str>, withdraw: Option<&str>) -> String {
    let announcements: Vec<serde_json::Value> =
        announce.map(|p| serde_json::json!({"next_hop": peer, "prefixes": [p]})).into_iter().collect();
    let withdrawals: Vec<&str> = withdraw.into_iter().collect();
    serde_json::json!({"type": "ris_message", "data": {"timestamp": 1.0, "peer": peer, "peer_asn": "64500",
        "host": "rrc00", "type": "UPDATE", "path": [64500, 32934], "announcements": announcements,
        "withdrawals": withdrawals}})
    .to_string()
}

/// The frames to stream and the peers left announcing the watched prefix.
fn frames(count: usize) -> (Vec<String>, BTreeSet<u32>) {
    let mut seeing = BTreeSet::new();
    let mut state = 0x2545_f491_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let frames = (0..count)
        .map(|i| {
            let r = next();
            let p = (r % u64::from(PEERS)) as u32;
            if i % 100 == 0 {
                // Toggle this peer's route to the watched prefix.
                if seeing.insert(p) {
                    update(&peer(p), Some(WATCHED), None)
                } else {
                    seeing.remove(&p);
                    update(&peer(p), None, Some(WATCHED))
                }
            } else {
                let prefix = format!("{}.{}.{}.0/24", 1 + (r >> 16) % 200, (r >> 24) % 256, (r >> 32) % 256);
                if r % 5 == 0 { update(&peer(p), None, Some(&prefix)) } else { update(&peer(p), Some(&prefix), None) }
            }
        })
        .collect();
    (frames, seeing)
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

async fn metric(client: &reqwest::Client, url: &str, series: &str) -> Option<f64> {
    let text = client.get(url).send().await.ok()?.text().await.ok()?;
    text.lines().find_map(|l| l.strip_prefix(series)).and_then(|v| v.trim().parse().ok())
}

#[tokio::main]
async fn main() {
    let rate = env_or("FIREHOSE_RATE", 20_000);
    let seconds = env_or("FIREHOSE_SECONDS", 10);
    let (frames, seeing) = frames((rate * seconds) as usize);

    // The looking glass seeds nothing: the stream is the whole story.
    let lg = axum::Router::new().route(
        "/data/looking-glass/data.json",
        axum::routing::get(|| async { axum::Json(serde_json::json!({"data": {"rrcs": []}})) }),
    );
    let lg_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lg_url = format!("http://{}", lg_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(lg_listener, lg).await.unwrap() });

    let ris = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ris_url = format!("ws://{}/v1/ws/", ris.local_addr().unwrap());
    let (connected_tx, connected_rx) = tokio::sync::oneshot::channel::<tokio::sync::mpsc::Sender<Vec<String>>>();
    tokio::spawn(async move {
        let (tcp, _) = ris.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let (mut sink, mut stream) = ws.split();
        let (batches, mut rx) = tokio::sync::mpsc::channel::<Vec<String>>(16);
        let _ = connected_tx.send(batches);
        let (pong_tx, mut pong_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                if let Message::Text(text) = frame
                    && text.contains("\"ping\"")
                {
                    let _ = pong_tx.send(());
                }
            }
        });
        loop {
            tokio::select! {
                batch = rx.recv() => match batch {
                    Some(batch) => for frame in batch { if sink.feed(Message::Text(frame.into())).await.is_err() { return; } }
                    None => return,
                },
                Some(()) = pong_rx.recv() => { let _ = sink.feed(Message::Text(r#"{"type":"pong","data":null}"#.into())).await; }
            }
            let _ = sink.flush().await;
        }
    });

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[storage]\npath = \"{db}\"\n[bgp]\nsource = \"ris-live\"\nris_live_url = \"{ris_url}\"\nseed_url = \"{lg_url}\"\nmin_peers = 1\nstale_after = \"5m\"\n[[service]]\nid = \"facebook\"\nname = \"Facebook\"\n  [[service.probe]]\n  kind = \"bgp\"\n  id = \"dns-prefix\"\n  prefix = \"{WATCHED}\"\n  interval = \"1h\"\n",
        db = dir.path().join("history.db").display()
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let binary = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/chatpulse");
    assert!(binary.exists(), "build it first: cargo build --release");
    let mut daemon = std::process::Command::new(&binary)
        .args(["--config", path.to_str().unwrap(), "run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = daemon.id();
    let batches = tokio::time::timeout(Duration::from_secs(30), connected_rx).await.unwrap().unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let seeing_series =
        format!("chatpulse_bgp_peers_seeing{{service=\"facebook\",probe=\"dns-prefix\",prefix=\"{WATCHED}\"}} ");
    let feed_up = "chatpulse_bgp_feed_up{source=\"ris-live\"} ";
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&client, &metrics_url, feed_up).await != Some(1.0) {
        assert!(Instant::now() < deadline, "the feed never came up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let hz = 100.0; // USER_HZ on Linux
    let (cpu0, t0) = (cpu_ticks(pid), Instant::now());
    let per_batch = (rate / 100).max(1) as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for chunk in frames.chunks(per_batch) {
        tick.tick().await;
        batches.send(chunk.to_vec()).await.unwrap();
    }
    let sent_in = t0.elapsed().as_secs_f64();
    let expected = seeing.len() as f64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&client, &metrics_url, &seeing_series).await != Some(expected) {
        if Instant::now() > deadline {
            let got = metric(&client, &metrics_url, &seeing_series).await;
            let _ = daemon.kill();
            panic!("watched-prefix state not exact: {got:?} peers seeing, {expected} expected");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (cpu1, t1) = (cpu_ticks(pid), t0.elapsed().as_secs_f64());
    let cpu = (cpu1 - cpu0) as f64 / hz / t1;
    println!(
        "firehose: {} updates in {sent_in:.1} s ({:.0}/s offered), applied with {:.1} % of one core; watched prefix exact ({} peers seeing) {:.2} s after the last update",
        frames.len(),
        frames.len() as f64 / sent_in,
        cpu * 100.0,
        seeing.len(),
        t1 - sent_in
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
}
