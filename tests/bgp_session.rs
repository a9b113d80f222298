//! The `session` source in-process: a test BGP speaker peers with chatpulse's
//! BGP-4 speaker, announces and withdraws; malformed messages get the right
//! NOTIFICATION; unconfigured addresses are refused; chatpulse never sends an
//! UPDATE.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chatpulse::bgp::VisibilityBoard;
use chatpulse::bgp::feed::{Engine, run_engine};
use chatpulse::config::{BgpPeer, BgpSession, BgpSource};
use chatpulse::metrics::Metrics;
use chatpulse::prefix::Prefix;
use support::bgp::{self, Speaker};
use support::wait_for;
use tokio::net::TcpListener;

const WATCHED: &str = "129.134.30.0/23";
const PEER: &str = "127.0.0.2";
const PEER_AS: u32 = 65001;

struct Rig {
    addr: SocketAddr,
    board: VisibilityBoard,
    metrics: Arc<Metrics>,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
}

async fn rig_with(peers: Vec<BgpPeer>) -> Rig {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port().await));
    let config = BgpSession { listen: addr, local_as: 65010, router_id: "192.0.2.10".parse().unwrap(), peers };
    let watched: Prefix = WATCHED.parse().unwrap();
    let board = VisibilityBoard::new(&[watched], 1);
    let metrics = Arc::new(Metrics::new());
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let engine = Engine::new(BgpSource::Session, vec![watched], board.clone(), Some(metrics.clone()));
    let tasks = vec![
        tokio::spawn(run_engine(engine, rx, Duration::from_secs(300))),
        tokio::spawn(chatpulse::bgp::session::run(config, tx)),
    ];
    // Wait for the listener.
    wait_for("the BGP listener", Duration::from_secs(5), || async {
        tokio::net::TcpStream::connect(addr).await.ok().map(|_| ())
    })
    .await;
    Rig { addr, board, metrics, _tasks: tasks }
}

async fn rig() -> Rig {
    rig_with(vec![BgpPeer { address: PEER.parse().unwrap(), remote_as: PEER_AS, port: None }]).await
}

impl Rig {
    async fn speaker(&self) -> Speaker {
        Speaker::connect(self.addr, PEER.parse().unwrap()).await
    }

    async fn seen(&self, what: &str, want: impl Fn(usize, usize, bool) -> bool) {
        let prefix: Prefix = WATCHED.parse().unwrap();
        wait_for(what, Duration::from_secs(10), || async {
            let v = self.board.current(prefix);
            want(v.peers_seeing, v.peers_total, v.feed_up).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn announce_and_withdraw_over_an_established_session() {
    let rig = rig().await;
    let mut peer = rig.speaker().await;
    let their_open = peer.establish(PEER_AS, 9).await;
    // Our OPEN: version 4, AS_TRANS-free 2-byte AS 65010, a 4-byte AS capability.
    assert_eq!(their_open[0], 4);
    assert_eq!(u16::from_be_bytes([their_open[1], their_open[2]]), 65010);
    assert!(their_open.windows(6).any(|w| w == [65, 4, 0, 0, 0xfd, 0xf2]), "4-byte AS capability");
    rig.seen("an established, empty session", |seeing, total, up| seeing == 0 && total == 1 && up).await;

    peer.send(&bgp::announce(&[WATCHED], &[PEER_AS, 32934])).await;
    rig.seen("the announcement", |seeing, total, _| seeing == 1 && total == 1).await;
    let v = rig.board.current(WATCHED.parse().unwrap());
    assert_eq!(v.exact, vec![(Some(32934), 1)]);

    peer.send(&bgp::withdraw(&[WATCHED])).await;
    rig.seen("the withdrawal", |seeing, total, up| seeing == 0 && total == 1 && up).await;
    let updates = rig.metrics.render();
    assert!(updates.contains("chatpulse_bgp_updates_total{source=\"session\"} 2"), "{updates}");
}

#[tokio::test]
async fn a_covering_prefix_keeps_the_watched_one_visible() {
    let rig = rig().await;
    let mut peer = rig.speaker().await;
    peer.establish(PEER_AS, 90).await;
    peer.send(&bgp::announce(&["129.134.0.0/17"], &[PEER_AS, 32934])).await;
    rig.seen("visibility through 129.134.0.0/17", |seeing, _, _| seeing == 1).await;
    let v = rig.board.current(WATCHED.parse().unwrap());
    assert_eq!(v.via_covering, vec![("129.134.0.0/17".parse().unwrap(), 1)]);
}

#[tokio::test]
async fn missing_as_path_is_treated_as_withdraw_without_closing_the_session() {
    let rig = rig().await;
    let mut peer = rig.speaker().await;
    peer.establish(PEER_AS, 90).await;
    peer.send(&bgp::announce(&[WATCHED], &[PEER_AS, 32934])).await;
    rig.seen("the announcement", |seeing, _, _| seeing == 1).await;
    peer.send(&bgp::announce_without_as_path(&[WATCHED])).await;
    rig.seen("the treat-as-withdraw", |seeing, total, _| seeing == 0 && total == 1).await;
    // Still established: a new announcement is taken.
    peer.send(&bgp::announce(&[WATCHED], &[PEER_AS, 32934])).await;
    rig.seen("the re-announcement", |seeing, _, _| seeing == 1).await;
}

#[tokio::test]
async fn a_peer_that_goes_away_leaves_the_denominator_and_the_feed_goes_down() {
    let rig = rig().await;
    let mut peer = rig.speaker().await;
    peer.establish(PEER_AS, 90).await;
    peer.send(&bgp::announce(&[WATCHED], &[PEER_AS, 32934])).await;
    rig.seen("the announcement", |seeing, _, up| seeing == 1 && up).await;
    drop(peer);
    rig.seen("the peer gone", |seeing, total, up| seeing == 0 && total == 0 && !up).await;
}

/// Sends `first` (and, after an established handshake if `establish`, the
/// rest) and returns the NOTIFICATION chatpulse answers with.
async fn notification_for(rig: &Rig, establish: bool, messages: &[Vec<u8>]) -> (u8, u8) {
    let mut peer = rig.speaker().await;
    if establish {
        peer.establish(PEER_AS, 90).await;
    }
    for m in messages {
        peer.send(m).await;
    }
    let got = peer.notification().await.expect("a NOTIFICATION");
    assert!(peer.closed().await, "the session closes after a NOTIFICATION");
    got
}

#[tokio::test]
async fn malformed_messages_get_the_right_notification_and_close() {
    let rig = rig().await;
    let mut bad_marker = bgp::keepalive();
    bad_marker[3] = 0;
    assert_eq!(notification_for(&rig, false, &[bad_marker]).await, (1, 1), "connection not synchronized");
    let mut too_long = bgp::raw(2, &[0; 10]);
    too_long[16..18].copy_from_slice(&5000u16.to_be_bytes());
    assert_eq!(notification_for(&rig, false, &[too_long]).await, (1, 2), "bad message length");
    assert_eq!(notification_for(&rig, false, &[bgp::raw(9, &[])]).await, (1, 3), "bad message type");
    assert_eq!(notification_for(&rig, false, &[bgp::open(3, PEER_AS, 90, [1, 2, 3, 4])]).await, (2, 1), "version");
    assert_eq!(notification_for(&rig, false, &[bgp::open(4, 64999, 90, [1, 2, 3, 4])]).await, (2, 2), "peer AS");
    assert_eq!(notification_for(&rig, false, &[bgp::open(4, PEER_AS, 90, [0, 0, 0, 0])]).await, (2, 3), "BGP id");
    assert_eq!(notification_for(&rig, false, &[bgp::open(4, PEER_AS, 2, [1, 2, 3, 4])]).await, (2, 6), "hold time");
    assert_eq!(
        notification_for(&rig, false, &[bgp::open(4, PEER_AS, 90, [1, 2, 3, 4]), bgp::announce(&[WATCHED], &[1])])
            .await,
        (5, 2),
        "UPDATE in OpenConfirm"
    );
    assert_eq!(notification_for(&rig, true, &[bgp::overrunning_attributes(WATCHED)]).await, (3, 1), "attribute list");
    assert_eq!(
        notification_for(&rig, true, &[bgp::open(4, PEER_AS, 90, [1, 2, 3, 4])]).await,
        (5, 3),
        "OPEN when established"
    );
}

#[tokio::test]
async fn a_silent_peer_is_dropped_when_the_hold_timer_expires() {
    let rig = rig().await;
    let mut peer = rig.speaker().await;
    peer.establish(PEER_AS, 3).await;
    // Say nothing more: after 3 s chatpulse sends Hold Timer Expired.
    let started = tokio::time::Instant::now();
    assert_eq!(peer.notification().await, Some((4, 0)));
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn a_peer_stalling_mid_update_gets_hold_timer_expired_and_the_feed_goes_down() {
    let rig = rig().await;
    let mut peer = rig.speaker().await;
    peer.establish(PEER_AS, 3).await;
    peer.send(&bgp::announce(&[WATCHED], &[PEER_AS, 32934])).await;
    rig.seen("the announcement", |seeing, _, up| seeing == 1 && up).await;
    // Half an UPDATE: a full header promising a body that never comes.
    let update = bgp::withdraw(&[WATCHED]);
    let started = tokio::time::Instant::now();
    peer.send(&update[..update.len() - 2]).await;
    assert_eq!(peer.notification().await, Some((4, 0)), "Hold Timer Expired");
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    rig.seen("the session down", |_, total, up| total == 0 && !up).await;
}

#[tokio::test]
async fn a_peer_stalling_inside_its_open_is_dropped_at_the_open_deadline_not_later() {
    let rig = rig().await;
    let mut peer = rig.speaker().await;
    let open = bgp::open(4, PEER_AS, 90, [192, 0, 2, 99]);
    peer.send(&open[..open.len() - 3]).await;
    let (kind, _) = peer.read().await.expect("chatpulse sends its OPEN");
    assert_eq!(kind, 1);
    // The whole OPEN exchange is bounded (30 s): the stall is cut with Hold
    // Timer Expired at that deadline rather than held open any longer.
    let started = tokio::time::Instant::now();
    let cut = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            if let Some(code) = peer.notification().await {
                return code;
            }
        }
    })
    .await;
    assert_eq!(cut.expect("cut within 40 s"), (4, 0));
    assert!(started.elapsed() < Duration::from_secs(32), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn chatpulse_sends_keepalives_at_a_third_of_the_hold_time() {
    let rig = rig().await;
    let mut peer = rig.speaker().await;
    peer.establish(PEER_AS, 3).await;
    // Keep the session alive from our side and count chatpulse's keepalives.
    let mut keepalives = 0;
    let end = tokio::time::Instant::now() + Duration::from_millis(3500);
    while tokio::time::Instant::now() < end {
        peer.send(&bgp::keepalive()).await;
        if let Ok(Some((kind, _))) = tokio::time::timeout(Duration::from_millis(500), peer.read()).await {
            assert_eq!(kind, 4, "only KEEPALIVEs from chatpulse");
            keepalives += 1;
        }
    }
    assert!(keepalives >= 2, "got {keepalives} keepalives in 3.5 s");
}

#[tokio::test]
async fn a_connection_from_an_unconfigured_address_is_refused() {
    let rig = rig().await;
    let mut stranger = Speaker::connect(rig.addr, "127.0.0.3".parse::<IpAddr>().unwrap()).await;
    assert_eq!(stranger.notification().await, Some((6, 5)), "Cease, connection rejected");
    assert!(stranger.closed().await);
    assert_eq!(rig.board.current(WATCHED.parse().unwrap()).peers_total, 0);
}

#[tokio::test]
async fn a_peer_with_a_port_is_dialled() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let rig =
        rig_with(vec![BgpPeer { address: "127.0.0.1".parse().unwrap(), remote_as: PEER_AS, port: Some(port) }]).await;
    let (stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await.unwrap().unwrap();
    let mut peer = Speaker::from_stream(stream);
    peer.establish(PEER_AS, 90).await;
    peer.send(&bgp::announce(&[WATCHED], &[PEER_AS, 32934])).await;
    rig.seen("the announcement over the dialled session", |seeing, _, up| seeing == 1 && up).await;
}
