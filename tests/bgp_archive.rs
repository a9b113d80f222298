//! The `mrt` source against an archive server in the RIS layout inside the
//! test: it seeds from the newest RIB dump and follows update files.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use chatpulse::bgp::VisibilityBoard;
use chatpulse::bgp::archive::file_url;
use chatpulse::bgp::feed::{Engine, run_engine};
use chatpulse::config::{Bgp, BgpSource};
use chatpulse::metrics::Metrics;
use chatpulse::prefix::Prefix;
use futures_util::StreamExt;
use support::wait_for;

type Log = Arc<Mutex<Vec<String>>>;

async fn serve(State(log): State<Log>, UrlPath((month, file)): UrlPath<(String, String)>) -> (StatusCode, Vec<u8>) {
    log.lock().unwrap().push(format!("/rrc00/{month}/{file}"));
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ris");
    match file.split('.').next() {
        Some("bview") => (StatusCode::OK, std::fs::read(data.join("bview.20020722.2337.gz")).unwrap()),
        Some("updates") if log.lock().unwrap().iter().filter(|l| l.contains("updates")).count() == 1 => {
            (StatusCode::OK, std::fs::read(data.join("updates.20020722.2238.gz")).unwrap())
        }
        _ => (StatusCode::NOT_FOUND, Vec::new()),
    }
}

/// Peers the reference dump lists for `prefix`.
fn reference_peers(prefix: &str) -> usize {
    let file =
        std::fs::File::open(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ris/bview.20020722.2337.gz.bgp.gz"))
            .unwrap();
    BufReader::new(flate2::read::GzDecoder::new(file))
        .lines()
        .filter(|l| l.as_ref().unwrap().split('|').nth(5) == Some(prefix))
        .count()
}

#[tokio::test]
async fn seeds_from_the_newest_rib_dump_and_follows_update_files() {
    let log: Log = Arc::default();
    let app = axum::Router::new().route("/rrc00/{month}/{file}", axum::routing::get(serve)).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/rrc00", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let watched: Prefix = "213.202.64.0/18".parse().unwrap();
    let config = Bgp {
        sources: vec![BgpSource::Mrt],
        ris_live_url: String::new(),
        seed_url: String::new(),
        mrt_url: base.clone(),
        stale_after: Duration::from_secs(1200),
        min_peers: 1,
        hijack_min_peers: 1,
        rpki: None,
        canary: false,
        session: None,
    };
    let board = VisibilityBoard::new(&[watched], 1);
    let metrics = Arc::new(Metrics::new());
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let engine = Engine::new(BgpSource::Mrt, vec![watched], board.clone(), Some(metrics.clone()));
    let _engine = tokio::spawn(run_engine(engine, rx, config.stale_after));
    // The archive's "now": 2002-07-22 23:55 UTC, so the newest RIB dump is
    // the 16:00 one and the update files follow from 16:05.
    const NOW: i64 = 1_027_382_100;
    let clock: chatpulse::bgp::archive::Clock = Arc::new(|| NOW);
    let limits = chatpulse::bgp::archive::Limits::default();
    let _source = tokio::spawn(chatpulse::bgp::archive::run_with_clock(
        chatpulse::bgp::archive::client(&limits).unwrap(),
        config,
        vec![watched],
        tx,
        clock,
        limits,
    ));

    let expected = reference_peers("213.202.64.0/18");
    assert!(expected > 1);
    wait_for("the RIB dump applied", Duration::from_secs(30), || async {
        let v = board.current(watched);
        (v.feed_up && v.peers_seeing == expected).then_some(())
    })
    .await;
    // The dump asked for is the newest 8-hour one.
    let log_now = log.lock().unwrap().clone();
    assert_eq!(log_now[0], "/rrc00/2002.07/bview.20020722.1600.gz", "{log_now:?}");
    assert!(file_url(&base, "bview", NOW - NOW.rem_euclid(8 * 3600)).ends_with(&log_now[0]));
    // Then the update files after it, in order, one per 5 minutes.
    wait_for("update files requested", Duration::from_secs(30), || async {
        let log = log.lock().unwrap();
        (log.iter().filter(|l| l.contains("updates.")).count() >= 2).then_some(())
    })
    .await;
    let updates: Vec<String> = log.lock().unwrap().iter().filter(|l| l.contains("updates.")).cloned().collect();
    assert_eq!(updates[0], "/rrc00/2002.07/updates.20020722.1605.gz");
    assert_eq!(updates[1], "/rrc00/2002.07/updates.20020722.1610.gz", "one file per 5 minutes, in order");
    wait_for("the update file counted", Duration::from_secs(30), || async {
        metrics.render().lines().any(|l| l.starts_with("chatpulse_bgp_updates_total{source=\"mrt\"}")).then_some(())
    })
    .await;
}

/// An archive that sends the headers and a few bytes of every file, then
/// goes silent: each download is given up after the read timeout and the
/// source moves on (to the next older RIB dump) instead of hanging.
#[tokio::test]
async fn a_stalled_download_is_given_up() {
    let log: Log = Arc::default();
    let stalled = |State(log): State<Log>, UrlPath((month, file)): UrlPath<(String, String)>| async move {
        log.lock().unwrap().push(format!("/rrc00/{month}/{file}"));
        let trickle =
            futures_util::stream::once(async { Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"\x1f\x8b")) })
                .chain(futures_util::stream::pending());
        axum::body::Body::from_stream(trickle)
    };
    let app = axum::Router::new().route("/rrc00/{month}/{file}", axum::routing::get(stalled)).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/rrc00", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = Bgp {
        sources: vec![BgpSource::Mrt],
        ris_live_url: String::new(),
        seed_url: String::new(),
        mrt_url: base,
        stale_after: Duration::from_secs(1200),
        min_peers: 1,
        hijack_min_peers: 1,
        rpki: None,
        canary: false,
        session: None,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let _drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let limits = chatpulse::bgp::archive::Limits { read: Duration::from_millis(500), ..Default::default() };
    let clock: chatpulse::bgp::archive::Clock = Arc::new(|| 1_027_382_100);
    let watched: Prefix = "213.202.64.0/18".parse().unwrap();
    let _source = tokio::spawn(chatpulse::bgp::archive::run_with_clock(
        chatpulse::bgp::archive::client(&limits).unwrap(),
        config,
        vec![watched],
        tx,
        clock,
        limits,
    ));
    wait_for("a second download after the first stalled", Duration::from_secs(10), || async {
        (log.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
}
