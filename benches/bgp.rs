//! BGP engine benchmarks (`cargo bench --bench bgp`), written to BENCHMARKS.md:
//!
//! 1. replay throughput: MRT elements per second through reader + engine on
//!    one core, on `updates.20160811.1600.gz` (watching the configured-style
//!    prefixes, and watching every prefix);
//! 2. memory per watched prefix: heap bytes (counted by the allocator) held
//!    by the engine after a full RIB dump, per watched prefix;
//! 3. withdrawal to DOWN: time from a WITHDRAW written on a BGP session to the
//!    bgp probe's DOWN transition in the verdict (fail_after = 1), through the
//!    real session speaker, engine, scheduler trigger, probe and verdict;
//! 4. cost of one UPDATE under a watched prefix that already has 10, 10,000
//!    or 100,000 more-specifics (an announce/withdraw of one more, applied
//!    and published by the engine): it must not grow with the routes.

#[path = "../tests/support/bgp.rs"]
#[allow(dead_code)]
mod speaker;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use chatpulse::bgp::VisibilityBoard;
use chatpulse::bgp::event::FeedEvent;
use chatpulse::bgp::event::PeerKey;
use chatpulse::bgp::feed::{Engine, run_engine};
use chatpulse::bgp::mrt::{Element, Reader, decompress};
use chatpulse::bgp::rib::{Denominator, Interest, Rib};
use chatpulse::config::{BgpPeer, BgpSession, BgpSource, Config};
use chatpulse::prefix::Prefix;
use chatpulse::probe::Toolkit;
use chatpulse::scheduler::Schedule;
use chatpulse::verdict::{Event, ProbeStatus, Verdict};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ris").join(name)
}

/// Reads `file` into a RIB with `interest`; returns (elements, seconds, rib).
fn load(file: &Path, interest: Interest) -> (u64, f64, Rib) {
    let bytes = std::fs::read(file).unwrap();
    let started = Instant::now();
    let mut rib = Rib::new(interest, Denominator::Carriers);
    let mut reader = Reader::new(decompress(&bytes[..]).unwrap());
    let mut peers: Vec<(std::net::IpAddr, u32)> = Vec::new();
    let mut id = |rib: &mut Rib, ip| match peers.iter().find(|(p, _)| *p == ip) {
        Some((_, id)) => *id,
        None => {
            let id = rib.peer(&PeerKey { collector: String::new(), ip }).expect("fewer peers than the cap");
            peers.push((ip, id));
            id
        }
    };
    reader
        .for_each(&mut |e| match e {
            Element::Announce { peer, prefix, path_id, origin, .. } => {
                let p = id(&mut rib, peer.ip);
                rib.announce_path(p, path_id, prefix, origin);
            }
            Element::Withdraw { peer, prefix, path_id, .. } => {
                let p = id(&mut rib, peer.ip);
                rib.withdraw_path(p, path_id, prefix);
            }
            Element::State { peer, new, .. } if new != 6 => {
                let p = id(&mut rib, peer.ip);
                rib.peer_down(p);
            }
            Element::State { .. } => {}
        })
        .unwrap();
    (reader.stats.elements, started.elapsed().as_secs_f64(), rib)
}

fn replay_throughput() {
    let file = data("updates.20160811.1600.gz");
    let watched: Vec<Prefix> = ["129.134.30.0/23", "185.89.218.0/23", "149.154.160.0/20", "2804:14d::/40"]
        .iter()
        .map(|p| p.parse().unwrap())
        .collect();
    for (name, interest) in [("4 watched prefixes", Interest::Watched(watched)), ("every prefix", Interest::All)] {
        let mut best = f64::MAX;
        let mut elements = 0;
        for _ in 0..20 {
            let (n, secs, _) = load(&file, interest.clone());
            elements = n;
            best = best.min(secs);
        }
        println!(
            "replay throughput ({name}): {elements} elements in {:.1} ms (best of 20) = {:.2} M elements/s, incl. gunzip",
            best * 1e3,
            elements as f64 / best / 1e6
        );
    }
}

fn memory_per_prefix() {
    let file = data("bview.20020722.2337.gz");
    // Every 100th prefix of the dump, as watched prefixes.
    let (_, _, all) = load(&file, Interest::All);
    let mut prefixes: Vec<Prefix> = all.prefixes().copied().collect();
    prefixes.sort();
    drop(all);
    for step in [1000, 100] {
        let watched: Vec<Prefix> = prefixes.iter().step_by(step).copied().collect();
        let before = LIVE.load(Ordering::Relaxed);
        let (_, _, rib) = load(&file, Interest::Watched(watched.clone()));
        let mut visibility = 0;
        for w in &watched {
            visibility += rib.visibility(*w, true).peers_seeing;
        }
        let held = LIVE.load(Ordering::Relaxed) - before;
        println!(
            "memory: {} watched prefixes after the 2002 RIB dump ({} routes kept, {} peer-visibilities): {} KiB, {:.0} bytes per watched prefix",
            watched.len(),
            rib.prefixes().count(),
            visibility,
            held / 1024,
            held as f64 / watched.len() as f64
        );
        drop(rib);
    }
}

/// A modern full-feed collector: every peer carries the prefix and a
/// covering one. Bytes per watched prefix grow with the peers.
fn memory_with_many_peers() {
    for peers in [100u32, 1000] {
        let watched: Vec<Prefix> = (0..100u32)
            .map(|i| Prefix::new(std::net::Ipv4Addr::from(0x0a00_0000 + (i << 9)).into(), 23).unwrap())
            .collect();
        let before = LIVE.load(Ordering::Relaxed);
        let mut rib = Rib::new(Interest::Watched(watched.clone()), Denominator::Carriers);
        for p in 0..peers {
            let id = rib
                .peer(&PeerKey { collector: "rrc00".into(), ip: std::net::Ipv4Addr::from(0xc000_0200 + p).into() })
                .expect("fewer peers than the cap");
            for w in &watched {
                rib.announce(id, *w, Some(32934));
            }
            rib.announce(id, "10.0.0.0/8".parse().unwrap(), Some(32934));
        }
        let held = LIVE.load(Ordering::Relaxed) - before;
        println!(
            "memory: 100 watched prefixes, {peers} peers each carrying them and a covering /8: {} KiB, {:.0} bytes per watched prefix",
            held / 1024,
            held as f64 / 100.0
        );
        drop(rib);
    }
}

fn withdrawal_to_down() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let config_text = format!(
            "[monitor]\nfail_after = 1\nrecover_after = 1\n[bgp]\nsource = \"session\"\n[bgp.session]\nlisten = \"{addr}\"\nlocal_as = 65010\nrouter_id = \"192.0.2.10\"\n[[bgp.session.peer]]\naddress = \"127.0.0.2\"\nremote_as = 65001\n[[service]]\nid = \"facebook\"\nname = \"Facebook\"\n[[service.probe]]\nkind = \"bgp\"\nprefix = \"129.134.30.0/23\"\norigin = 32934\ninterval = \"1h\"\n"
        );
        let config = Config::parse(Path::new("bench.toml"), &config_text).unwrap();
        let watched = config.watched_prefixes();
        let board = VisibilityBoard::new(&watched, 1);
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(run_engine(Engine::new(BgpSource::Session, watched, board.clone(), None), rx, Duration::from_secs(300)));
        let session = BgpSession {
            listen: addr,
            local_as: 65010,
            router_id: "192.0.2.10".parse().unwrap(),
            peers: vec![BgpPeer { address: "127.0.0.2".parse().unwrap(), remote_as: 65001, port: None }],
        };
        tokio::spawn(chatpulse::bgp::session::run(session, tx));
        let plan = config.plan();
        let toolkit = Toolkit::new(board).unwrap();
        let (obs_tx, mut obs_rx) = tokio::sync::mpsc::channel(1024);
        let _schedule = Schedule::start(plan.iter().map(|p| (p.clone(), toolkit.build(p))).collect(), obs_tx);
        let mut verdict = Verdict::new(&config, &plan, SystemTime::now());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut peer = speaker::Speaker::connect(addr, "127.0.0.2".parse().unwrap()).await;
        peer.establish(65001, 90).await;
        let mut samples = Vec::new();
        for round in 0..201 {
            peer.send(&speaker::announce(&["129.134.30.0/23"], &[65001, 32934])).await;
            let mut up = false;
            while !up {
                let o = obs_rx.recv().await.unwrap();
                verdict.observe(&o, &mut |e| {
                    if let Event::ProbeChanged { state, .. } = e {
                        up |= state.status == ProbeStatus::Up;
                    }
                });
            }
            let sent = Instant::now();
            peer.send(&speaker::withdraw(&["129.134.30.0/23"])).await;
            let mut down = None;
            while down.is_none() {
                let o = obs_rx.recv().await.unwrap();
                verdict.observe(&o, &mut |e| {
                    if let Event::ProbeChanged { state, .. } = e
                        && state.status == ProbeStatus::Down
                    {
                        down = Some(sent.elapsed());
                    }
                });
            }
            if round > 0 {
                samples.push(down.unwrap());
            }
        }
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
        println!(
            "withdrawal to DOWN over a BGP session (fail_after = 1, {} runs): p50 {:?}, p99 {:?}, max {:?}",
            samples.len(),
            at(0.5),
            at(0.99),
            samples.last().unwrap()
        );
    });
}

/// Announces `n` IPv6 /64s under a watched /32 (spread over peers so the
/// per-peer cap does not refuse them), then times announce+withdraw pairs
/// of one more /64 through the engine, publishing included.
fn update_cost_under_many_routes() {
    let watched: Prefix = "2a03:2880::/32".parse().unwrap();
    for n in [10u32, 10_000, 100_000] {
        let board = VisibilityBoard::new(&[watched], 1);
        let mut engine = Engine::new(BgpSource::RisLive, vec![watched], board, None);
        let key = |i: u32| PeerKey { collector: "rrc00".into(), ip: std::net::Ipv4Addr::from(0x0a00_0000 + i).into() };
        for i in 0..n {
            let j = i + 1;
            let prefix =
                Prefix::new(format!("2a03:2880:{:x}:{:x}::", j >> 16, j & 0xffff).parse().unwrap(), 64).unwrap();
            engine.apply(FeedEvent::Announce { peer: key(i / 5_000), prefix, path_id: 0, origin: Some(666) });
        }
        let probe: Prefix = "2a03:2880:ffff:ffff::/64".parse().unwrap();
        let rounds = 20_000u32;
        let started = Instant::now();
        for _ in 0..rounds {
            engine.apply(FeedEvent::Announce { peer: key(0), prefix: probe, path_id: 0, origin: Some(666) });
            engine.apply(FeedEvent::Withdraw { peer: key(0), prefix: probe, path_id: 0 });
        }
        let per_update = started.elapsed().as_secs_f64() / f64::from(rounds * 2);
        println!("update cost: {n} more-specifics under the watched prefix: {:.2} µs per UPDATE", per_update * 1e6);
    }
}

fn main() {
    update_cost_under_many_routes();
    replay_throughput();
    memory_per_prefix();
    memory_with_many_peers();
    withdrawal_to_down();
}
