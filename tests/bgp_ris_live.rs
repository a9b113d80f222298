//! The `ris-live` source against a websocket server and a RIPEstat-like
//! looking glass inside the test: seeding, real RIS Live samples, synthetic
//! withdrawals, garbage frames, silence and a dropped connection.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::Query;
use chatpulse::bgp::VisibilityBoard;
use chatpulse::bgp::canary::Canary;
use chatpulse::bgp::feed::{Engine, run_engine};
use chatpulse::bgp::ris_live::{RisLive, run};
use chatpulse::config::{Bgp, BgpSource};
use chatpulse::metrics::Metrics;
use chatpulse::prefix::Prefix;
use chatpulse::probe::Reason;
use chatpulse::probe::bgp::BgpCheck;
use futures_util::{SinkExt, StreamExt};
use support::ris::{hang_up_server, mute_listener};
use support::wait_for;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const WATCHED: &str = "129.134.30.0/23";

/// What the test tells the websocket server to do.
enum Command {
    Send(Message),
    Drop,
}

struct RisServer {
    url: String,
    commands: mpsc::UnboundedSender<Command>,
    connections: Arc<AtomicUsize>,
    subscriptions: Arc<std::sync::Mutex<Vec<String>>>,
    answer_pings: Arc<AtomicBool>,
}

async fn ris_server() -> RisServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/ws/?client=test", listener.local_addr().unwrap());
    let (commands, mut rx) = mpsc::unbounded_channel::<Command>();
    let connections = Arc::new(AtomicUsize::new(0));
    let subscriptions = Arc::new(std::sync::Mutex::new(Vec::new()));
    let answer_pings = Arc::new(AtomicBool::new(true));
    let (c, s, a) = (connections.clone(), subscriptions.clone(), answer_pings.clone());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else { continue };
            c.fetch_add(1, Ordering::SeqCst);
            loop {
                tokio::select! {
                    command = rx.recv() => match command {
                        Some(Command::Send(m)) => { if ws.send(m).await.is_err() { break; } }
                        Some(Command::Drop) | None => break,
                    },
                    frame = ws.next() => match frame {
                        Some(Ok(Message::Text(text))) => {
                            if text.contains("ris_subscribe") {
                                s.lock().unwrap().push(text.to_string());
                            } else if text.contains("\"ping\"") && a.load(Ordering::SeqCst) {
                                let _ = ws.send(Message::Text(r#"{"type":"pong","data":null}"#.into())).await;
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                }
            }
        }
    });
    RisServer { url, commands, connections, subscriptions, answer_pings }
}

/// A looking glass answering routes from peers 10.0.0.1..=N to every prefix
/// asked about, N read from `peers` at each request.
async fn looking_glass(peers: Arc<AtomicUsize>) -> String {
    let app = axum::Router::new().route(
        "/data/looking-glass/data.json",
        axum::routing::get(move |Query(q): Query<std::collections::HashMap<String, String>>| async move {
            let prefix = q.get("resource").cloned().unwrap_or_default();
            let routes: Vec<serde_json::Value> = (1..=peers.load(Ordering::SeqCst))
                .map(|i| {
                    // Numbers as strings for half of them, as RIPEstat does at times.
                    let origin = if i % 2 == 0 { serde_json::json!("32934") } else { serde_json::json!(32934) };
                    serde_json::json!({"peer": format!("10.0.0.{i}"), "asn_origin": origin, "prefix": prefix, "as_path": "1 32934"})
                })
                .collect();
            axum::Json(serde_json::json!({"data": {"rrcs": [{"rrc": "RRC00", "location": "Amsterdam", "peers": routes}]}}))
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

struct Rig {
    server: RisServer,
    seed_peers: Arc<AtomicUsize>,
    board: VisibilityBoard,
    metrics: Arc<Metrics>,
    watched: Prefix,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn rig(watched: &str, stale_after: Duration) -> Rig {
    rig_with(watched, stale_after, None).await
}

/// A rig whose engine, with `canary` = (min peers, cycle in seconds),
/// judges the feed by the routing beacons too.
async fn rig_with(watched: &str, stale_after: Duration, canary: Option<(usize, i64)>) -> Rig {
    let server = ris_server().await;
    let seed_peers = Arc::new(AtomicUsize::new(12));
    let seed_url = looking_glass(seed_peers.clone()).await;
    let watched: Prefix = watched.parse().unwrap();
    let config = Bgp {
        sources: vec![BgpSource::RisLive],
        ris_live_url: server.url.clone(),
        seed_url,
        mrt_url: String::new(),
        stale_after,
        min_peers: 10,
        hijack_min_peers: 1,
        rpki: None,
        canary: false,
        session: None,
    };
    let board = VisibilityBoard::new(&[watched], 10);
    let metrics = Arc::new(Metrics::new());
    let (tx, rx) = mpsc::channel(1024);
    let mut engine = Engine::new(BgpSource::RisLive, vec![watched], board.clone(), Some(metrics.clone()));
    let beacons = if canary.is_some() { chatpulse::bgp::canary::beacons() } else { Vec::new() };
    if let Some((min_peers, cycle)) = canary {
        engine = engine.with_canary(|| Canary::with_cycle(min_peers, cycle));
    }
    let tasks = vec![
        tokio::spawn(run_engine(engine, rx, stale_after)),
        tokio::spawn(run(RisLive::new(&config, &[watched]).unwrap().listening_to(&beacons), tx)),
    ];
    Rig { server, seed_peers, board, metrics, watched, _tasks: tasks }
}

impl Rig {
    async fn until(&self, what: &str, want: impl Fn(&chatpulse::bgp::Visibility) -> bool) {
        wait_for(what, Duration::from_secs(10), || async { want(&self.board.current(self.watched)).then_some(()) })
            .await;
    }

    fn send(&self, text: String) {
        let _ = self.server.commands.send(Command::Send(Message::Text(text.into())));
    }

    fn judge(&self) -> Result<(), Reason> {
        let check = BgpCheck {
            prefix: self.watched,
            origins: vec![32934],
            min_visibility: 0.5,
            covering: false,
            more_specifics: true,
        };
        chatpulse::probe::bgp::judge(&check, &self.board.thresholds(), &self.board.current(self.watched)).result
    }
}

fn withdrawal(peer: &str, prefix: &str) -> String {
    serde_json::json!({"type": "ris_message", "data": {"timestamp": 1633361940.0, "peer": peer, "peer_asn": "64500",
        "host": "rrc00", "type": "UPDATE", "path": [], "announcements": [], "withdrawals": [prefix]}})
    .to_string()
}

#[tokio::test]
async fn seeded_at_start_then_withdrawals_make_the_prefix_invisible() {
    let rig = rig(WATCHED, Duration::from_secs(60)).await;
    rig.until("seeded visibility", |v| v.feed_up && v.peers_seeing == 12 && v.peers_total == 12).await;
    assert_eq!(rig.judge(), Ok(()));
    let subscriptions = rig.server.subscriptions.lock().unwrap().clone();
    assert_eq!(subscriptions.len(), 1);
    assert!(subscriptions[0].contains("\"moreSpecific\":true") && subscriptions[0].contains("\"lessSpecific\":true"));
    assert!(subscriptions[0].contains(WATCHED));

    for i in 1..=11 {
        rig.send(withdrawal(&format!("10.0.0.{i}"), WATCHED));
    }
    rig.until("the withdrawals", |v| v.peers_seeing == 1 && v.peers_total == 12).await;
    assert_eq!(rig.judge(), Err(Reason::BgpInvisible));
    // A peer going down leaves the denominator: not a withdrawal.
    rig.send(
        serde_json::json!({"type":"ris_message","data":{"peer":"10.0.0.12","host":"rrc00","type":"RIS_PEER_STATE","state":"down"}})
            .to_string(),
    );
    rig.until("the peer gone", |v| v.peers_seeing == 0 && v.peers_total == 11).await;
}

#[tokio::test]
async fn real_ris_live_samples_and_garbage_frames_are_taken_in_stride() {
    // The sample UPDATE announces 177.23.116.0/24 from AS262893 via rrc13.
    let rig = rig("177.23.116.0/24", Duration::from_secs(60)).await;
    rig.until("seeded", |v| v.feed_up && v.peers_seeing == 12).await;
    let samples =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rislive/samples.jsonl")).unwrap();
    let mut lines = 0;
    for line in samples.lines() {
        rig.send(line.to_string());
        lines += 1;
    }
    rig.send("this is not json".into());
    let _ = rig.server.commands.send(Command::Send(Message::Binary(vec![1u8, 2, 3].into())));
    rig.send(r#"{"type":"ris_message","data":{"peer":"not an address","type":"UPDATE"}}"#.into());
    assert!(lines >= 9);
    rig.until("the sample announcement", |v| {
        v.peers_seeing == 13 && v.exact.iter().any(|(asn, _)| *asn == Some(262893))
    })
    .await;
    wait_for("garbage counted", Duration::from_secs(5), || async {
        rig.metrics.render().contains("chatpulse_bgp_malformed_messages_total{source=\"ris-live\"} 3").then_some(())
    })
    .await;
    assert!(rig.board.current(rig.watched).feed_up, "garbage is not fatal");
    assert_eq!(rig.server.connections.load(Ordering::SeqCst), 1, "no reconnection was needed");
}

#[tokio::test]
async fn silence_makes_the_feed_unknown_and_speech_brings_it_back() {
    let rig = rig(WATCHED, Duration::from_millis(900)).await;
    rig.until("seeded", |v| v.feed_up && v.peers_seeing == 12).await;
    rig.server.answer_pings.store(false, Ordering::SeqCst);
    rig.until("the feed stale", |v| !v.feed_up).await;
    assert_eq!(rig.judge(), Err(Reason::BgpUnknown));
    // The source notices the silence too and reconnects: stale or disconnected.
    let rendered = rig.metrics.render();
    let down = rendered.lines().find(|l| l.starts_with("chatpulse_bgp_feed_up{")).unwrap_or_default().to_string();
    assert!(
        down.ends_with(" 0") && (down.contains("reason=\"stale\"") || down.contains("reason=\"disconnected\"")),
        "{down}"
    );
    rig.server.answer_pings.store(true, Ordering::SeqCst);
    rig.until("the feed back", |v| v.feed_up).await;
    assert_eq!(rig.judge(), Ok(()));
}

#[tokio::test]
async fn a_dropped_connection_is_re_established_and_reseeded() {
    let rig = rig(WATCHED, Duration::from_secs(60)).await;
    rig.until("seeded", |v| v.feed_up && v.peers_seeing == 12).await;
    for i in 1..=11 {
        rig.send(withdrawal(&format!("10.0.0.{i}"), WATCHED));
    }
    rig.until("the withdrawals", |v| v.peers_seeing == 1).await;
    // While disconnected the last peer withdraws too (the looking glass
    // knows); the reconnection must see that, and still judge it.
    rig.seed_peers.store(0, Ordering::SeqCst);
    let _ = rig.server.commands.send(Command::Drop);
    wait_for("a second connection", Duration::from_secs(10), || async {
        (rig.server.connections.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    rig.until("reseeded", |v| v.feed_up && v.peers_seeing == 0 && v.peers_total == 12).await;
    assert_eq!(rig.judge(), Err(Reason::BgpInvisible), "a withdrawal across a reconnect is still a withdrawal");
    assert_eq!(rig.server.subscriptions.lock().unwrap().len(), 2, "subscribed again");
    // And when the routes come back, the re-seed shows them.
    rig.seed_peers.store(12, Ordering::SeqCst);
    let _ = rig.server.commands.send(Command::Drop);
    rig.until("reseeded with every route", |v| v.feed_up && v.peers_seeing == 12).await;
}

fn source(url: &str, seed_url: String, stale_after: Duration) -> RisLive {
    let config = Bgp {
        sources: vec![BgpSource::RisLive],
        ris_live_url: url.to_string(),
        seed_url,
        mrt_url: String::new(),
        stale_after,
        min_peers: 10,
        hijack_min_peers: 1,
        rpki: None,
        canary: false,
        session: None,
    };
    RisLive::new(&config, &[WATCHED.parse().unwrap()]).unwrap()
}

/// Runs the RIS Live source against `url` (seeded from a 12-peer looking
/// glass) with nobody judging its events; the tests watch the server side.
/// Dropping the handles stops nothing, which is fine: each test ends with
/// its runtime.
async fn feed_without_listener(
    url: &str,
    stale_after: Duration,
) -> (tokio::task::JoinHandle<()>, tokio::task::JoinHandle<()>) {
    let seed_url = looking_glass(Arc::new(AtomicUsize::new(12))).await;
    let (tx, mut rx) = mpsc::channel(1024);
    let task = tokio::spawn(run(source(url, seed_url, stale_after), tx));
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    (task, drain)
}

#[tokio::test]
async fn a_server_that_never_completes_the_handshake_is_given_up_and_retried() {
    let (url, connections) = mute_listener().await;
    let _feed = feed_without_listener(&url, Duration::from_secs(1)).await;
    wait_for("a second connection attempt", Duration::from_secs(10), || async {
        (connections.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_feed_gone_mute_after_seeding_is_reconnected() {
    let rig = rig(WATCHED, Duration::from_millis(900)).await;
    rig.until("seeded", |v| v.feed_up && v.peers_seeing == 12).await;
    rig.server.answer_pings.store(false, Ordering::SeqCst);
    wait_for("a reconnection after the silence", Duration::from_secs(10), || async {
        (rig.server.connections.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_server_that_hangs_up_at_once_is_retried_with_growing_backoff() {
    let (url, connections) = hang_up_server().await;
    let _feed = feed_without_listener(&url, Duration::from_secs(60)).await;
    let end = tokio::time::Instant::now() + Duration::from_secs(7);
    while tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Waits of 1, 2 and 4 s: at most four connections in 7 s (one a second before).
    let n = connections.load(Ordering::SeqCst);
    assert!((2..=4).contains(&n), "{n} connections in 7 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_looking_glass_answer_is_cut_at_the_cap() {
    let url = support::ris::endless_looking_glass().await;
    let client = reqwest::Client::new();
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        chatpulse::bgp::seed::looking_glass(&client, &url, WATCHED.parse().unwrap()),
    )
    .await
    .expect("cut within 30 s");
    let error = answer.expect_err("an endless answer is an error").to_string();
    assert!(error.contains("larger than 32 MiB"), "{error}");
}

#[tokio::test]
async fn peers_announcing_only_unwatched_space_are_not_kept() {
    let watched: Prefix = WATCHED.parse().unwrap();
    let board = VisibilityBoard::new(&[watched], 10);
    let mut engine = Engine::new(BgpSource::RisLive, vec![watched], board, None);
    for i in 0..200_000u32 {
        engine.apply(chatpulse::bgp::event::FeedEvent::Announce {
            peer: chatpulse::bgp::event::PeerKey { collector: "rrc00".into(), ip: std::net::Ipv4Addr::from(i).into() },
            prefix: "192.0.2.0/24".parse().unwrap(),
            path_id: 0,
            origin: Some(64500),
        });
        engine.apply(chatpulse::bgp::event::FeedEvent::PeerUp(chatpulse::bgp::event::PeerKey {
            collector: "rrc01".into(),
            ip: std::net::Ipv4Addr::from(i).into(),
        }));
    }
    assert_eq!(engine.peers_known(), 0);
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

fn beacon_update(peer: &str, announce: bool) -> String {
    let prefix = "84.205.64.0/24";
    let (announcements, withdrawals) = if announce {
        (serde_json::json!([{"next_hop": peer, "prefixes": [prefix]}]), serde_json::json!([]))
    } else {
        (serde_json::json!([]), serde_json::json!([prefix]))
    };
    serde_json::json!({"type": "ris_message", "data": {"timestamp": unix_now(), "peer": peer, "peer_asn": "64500",
        "host": "rrc00", "type": "UPDATE", "path": [64500, 12654], "announcements": announcements,
        "withdrawals": withdrawals}})
    .to_string()
}

/// A RIS Live stand-in that keeps answering pings but stops forwarding
/// updates is caught by the routing beacons: with a sped-up schedule (a
/// cycle of 8 s: announced 4 s, withdrawn 4 s), three peers showing each
/// change keep the feed up; silence on the beacons takes it down with
/// reason `canary`, and their return brings it back.
#[tokio::test]
async fn a_feed_that_stops_showing_the_beacons_is_down_with_reason_canary() {
    const CYCLE: f64 = 8.0;
    let rig = rig_with(WATCHED, Duration::from_secs(60), Some((3, CYCLE as i64))).await;
    rig.until("seeded", |v| v.feed_up && v.peers_seeing == 12).await;
    let subscriptions = rig.server.subscriptions.lock().unwrap().clone();
    assert!(subscriptions.iter().any(|s| s.contains("84.205.64.0/24")), "the beacons are subscribed to");
    let delivering = Arc::new(AtomicBool::new(true));
    let schedule = {
        let (commands, delivering) = (rig.server.commands.clone(), delivering.clone());
        tokio::spawn(async move {
            loop {
                let now = unix_now();
                let announced = now.rem_euclid(CYCLE) < CYCLE / 2.0;
                if delivering.load(Ordering::SeqCst) {
                    for i in 1..=3 {
                        let frame = beacon_update(&format!("10.9.0.{i}"), announced);
                        let _ = commands.send(Command::Send(Message::Text(frame.into())));
                    }
                }
                let next_phase = (now / (CYCLE / 2.0)).floor() * (CYCLE / 2.0) + CYCLE / 2.0 + 0.1;
                tokio::time::sleep(Duration::from_secs_f64(next_phase - now)).await;
            }
        })
    };
    // Two whole phases pass after the feed came up, each judged 1 s in.
    let judged = unix_now() + CYCLE + 1.5;
    wait_for("two beacon phases judged", Duration::from_secs(15), || async { (unix_now() >= judged).then_some(()) })
        .await;
    assert!(rig.board.current(rig.watched).feed_up, "beacons on schedule keep the feed up");
    assert_eq!(rig.judge(), Ok(()));

    delivering.store(false, Ordering::SeqCst);
    rig.until("the canary", |v| !v.feed_up).await;
    assert_eq!(rig.judge(), Err(Reason::BgpUnknown));
    assert!(rig.metrics.render().contains("chatpulse_bgp_feed_up{source=\"ris-live\",reason=\"canary\"} 0"));
    assert_eq!(rig.server.connections.load(Ordering::SeqCst), 1, "the connection itself stayed up");

    delivering.store(true, Ordering::SeqCst);
    rig.until("the beacons back", |v| v.feed_up).await;
    assert!(rig.metrics.render().contains("chatpulse_bgp_feed_up{source=\"ris-live\"} 1"));
    schedule.abort();
}

/// Two sources pooled (`source = ["ris-live", "session"]`), started the way
/// `run` starts them: RIS Live from the stand-in (three peers seeded) and a
/// BGP session with the test's speaker. Each source has its own feed gauge;
/// when RIS Live goes quiet its peers stop counting but the session keeps
/// the prefix judged — a withdrawal on it is `bgp_invisible`, not unknown —
/// and when RIS Live is back its peers count again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_sources_keep_judging_while_one_is_down() {
    let server = ris_server().await;
    let seed_peers = Arc::new(AtomicUsize::new(3));
    let seed_url = looking_glass(seed_peers.clone()).await;
    let bgp_port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let watched: Prefix = WATCHED.parse().unwrap();
    let config = Bgp {
        sources: vec![BgpSource::RisLive, BgpSource::Session],
        ris_live_url: server.url.clone(),
        seed_url,
        mrt_url: String::new(),
        stale_after: Duration::from_millis(900),
        min_peers: 1,
        hijack_min_peers: 1,
        rpki: None,
        canary: false,
        session: Some(chatpulse::config::BgpSession {
            listen: ([127, 0, 0, 1], bgp_port).into(),
            local_as: 65010,
            router_id: "192.0.2.10".parse().unwrap(),
            peers: vec![chatpulse::config::BgpPeer {
                address: "127.0.0.2".parse().unwrap(),
                remote_as: 65001,
                port: None,
            }],
        }),
    };
    let board = VisibilityBoard::new(&[watched], 1).with_hijack_min_peers(1);
    let metrics = Arc::new(Metrics::new());
    let feed = chatpulse::bgp::feed::Feed::start(&config, vec![watched], board.clone(), metrics.clone()).unwrap();
    let until = |what: &'static str, want: fn(&chatpulse::bgp::Visibility) -> bool| {
        let board = board.clone();
        async move {
            wait_for(what, Duration::from_secs(15), || async { want(&board.current(watched)).then_some(()) }).await
        }
    };
    let judge = || {
        let check =
            BgpCheck { prefix: watched, origins: vec![], min_visibility: 0.5, covering: false, more_specifics: false };
        chatpulse::probe::bgp::judge(&check, &board.thresholds(), &board.current(watched)).result
    };
    until("RIS Live seeded", |v| v.feed_up && v.peers_seeing == 3).await;
    wait_for("the BGP listener", Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", bgp_port)).await.ok().map(|_| ())
    })
    .await;
    let mut peer =
        support::bgp::Speaker::connect(([127, 0, 0, 1], bgp_port).into(), "127.0.0.2".parse().unwrap()).await;
    peer.establish(65001, 30).await;
    peer.send(&support::bgp::announce(&[WATCHED], &[65001, 32934])).await;
    until("both sources pooled", |v| v.feed_up && v.peers_seeing == 4 && v.peers_total == 4).await;
    let text = metrics.render();
    for source in ["ris-live", "session"] {
        assert!(text.contains(&format!("chatpulse_bgp_feed_up{{source=\"{source}\"}} 1")), "{text}");
    }

    server.answer_pings.store(false, Ordering::SeqCst);
    until("RIS Live's peers out of the pool", |v| v.feed_up && v.peers_total == 1 && v.peers_seeing == 1).await;
    assert!(metrics.render().contains("chatpulse_bgp_feed_up{source=\"session\"} 1"));
    assert_eq!(judge(), Ok(()), "the session alone still judges");
    peer.send(&support::bgp::withdraw(&[WATCHED])).await;
    until("the session's withdrawal", |v| v.feed_up && v.peers_seeing == 0).await;
    assert_eq!(judge(), Err(Reason::BgpInvisible), "a source is up: invisible, not unknown");

    server.answer_pings.store(true, Ordering::SeqCst);
    until("RIS Live back in the pool", |v| v.feed_up && v.peers_seeing == 3 && v.peers_total == 4).await;
    assert_eq!(judge(), Ok(()));
    feed.stop().await;
}
