//! The delegation walker against real knotd servers on 127.0.1.x:53.
//!
//! Each test uses its own block of addresses, so they run in parallel: .1–.4 normal, .11–.12 silent roots,
//! .21–.24 removed delegation, .31–.35 out-of-bailiwick glue, .41–.43 loop, .51–.52 lame, .61–.63 truncation,
//! .71–.72 query bound.

mod support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chatpulse::probe::dns::delegation::{Cut, Delegations, NameServer, Walk, WalkError};
use hickory_proto::op::{Message, MessageType};
use hickory_proto::rr::rdata::{A, NS};
use hickory_proto::rr::{Name, RData, Record};
use support::knot::{Knot, at53, chat_zone, hierarchy, root_zone, skip_reason, tld_zone};
use tokio::time::{Instant, timeout};

macro_rules! skip_unless_possible {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("{why}");
            return;
        }
    };
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1, last)
}

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn ns(name: &str, last: u8) -> NameServer {
    NameServer { name: n(name), addr: at53(ip(last)) }
}

fn sorted(mut servers: Vec<NameServer>) -> Vec<NameServer> {
    servers.sort_by_key(|s| (s.name.to_string(), s.addr));
    servers
}

/// `find` with a deadline `secs` ahead, itself under a timeout one second longer.
async fn find(d: &Delegations, name: &str, secs: u64) -> Result<Walk, WalkError> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    timeout(Duration::from_secs(secs + 1), d.find(&n(name), deadline)).await.expect("find overran its deadline")
}

#[tokio::test]
async fn normal_walk_then_cache() {
    skip_unless_possible!();
    let h = hierarchy([ip(1), ip(2), ip(3), ip(4)]);
    let before = h.queries();
    let d = Delegations::new(h.roots());

    let first = find(&d, "www.chat.test.", 5).await.expect("walk");
    eprintln!("{}", first.trace.join("\n"));
    assert_eq!(first.cut.zone, n("chat.test."));
    assert_eq!(sorted(first.cut.servers.clone()), vec![ns("ns1.chat.test.", 3), ns("ns2.chat.test.", 4)]);
    assert_eq!(first.queries, 3, "root, test., chat.test.");
    assert_eq!(first.trace[0], "127.0.1.1 → test. via ns.test. (127.0.1.2)");

    let mut total = first.queries;
    for _ in 0..9 {
        let again = find(&d, "www.chat.test.", 5).await.expect("cached walk");
        assert_eq!(again.queries, 0, "{:?}", again.trace);
        assert_eq!(again.cut, first.cut);
        total += again.queries;
    }
    let after = h.queries();
    let got: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    eprintln!("queries over ten finds: walker {total}, root/tld/ns1/ns2 received {got:?}");
    assert_eq!(got, vec![1, 1, 1, 0]);
    assert_eq!(total, 3);

    // Another name in a cached zone: starts at chat.test., one query; the apex itself: from the zone's own NS set.
    let other = find(&d, "ns1.chat.test.", 5).await.expect("walk");
    assert_eq!((other.cut.zone.clone(), other.queries), (n("chat.test."), 1), "{:?}", other.trace);
    // A name the zone's servers say does not exist.
    let missing = find(&d, "api.chat.test.", 5).await;
    assert!(matches!(&missing, Err(WalkError::NxDomain(m)) if m.contains("api.chat.test.")), "{missing:?}");
    let apex = find(&Delegations::new(h.roots()), "chat.test.", 5).await.expect("walk");
    assert_eq!(apex.cut.zone, n("chat.test."));
    assert_eq!(sorted(apex.cut.servers), vec![ns("ns1.chat.test.", 3), ns("ns2.chat.test.", 4)]);
    assert_eq!(apex.queries, 3, "{:?}", apex.trace);
}

#[tokio::test]
async fn silent_roots_time_out_within_the_deadline() {
    skip_unless_possible!();
    let root = Knot::start(at53(ip(11)), &[(".", root_zone(ip(11), ip(13), ""))]);
    root.stop_answering();
    // Nothing listens on .12: refused at once, the walker moves on.
    let d = Delegations::new(vec![root.addr, at53(ip(12))]);
    let started = Instant::now();
    let err = find(&d, "www.chat.test.", 3).await.expect_err("no root answers");
    let took = started.elapsed();
    root.resume();
    eprintln!("{err} after {took:?}");
    let WalkError::Timeout(msg) = &err else { panic!("not a timeout: {err:?}") };
    assert!(msg.contains("127.0.1.11") && msg.contains("127.0.1.12"), "{msg}");
    assert!(took >= Duration::from_millis(700) && took < Duration::from_secs(3), "{took:?}");

    // A deadline shorter than the per-query timeout is kept.
    root.stop_answering();
    let started = Instant::now();
    let deadline = started + Duration::from_millis(300);
    let err = timeout(Duration::from_secs(2), d.find(&n("www.chat.test."), deadline)).await.expect("overran");
    let took = started.elapsed();
    root.resume();
    assert!(matches!(err, Err(WalkError::Timeout(_))), "{err:?}");
    assert!(took < Duration::from_millis(700), "{took:?}");
}

#[tokio::test]
async fn delegation_removed_at_the_parent_is_nxdomain() {
    skip_unless_possible!();
    let h = hierarchy([ip(21), ip(22), ip(23), ip(24)]);
    let cached = Delegations::new(h.roots());
    find(&cached, "www.chat.test.", 5).await.expect("walk before the change");

    h.tld.set_zone("test.", tld_zone(ip(22), [ip(23), ip(24)], false, 2, ""));
    let err = find(&Delegations::new(h.roots()), "www.chat.test.", 5).await.expect_err("no delegation");
    eprintln!("{err}");
    assert!(matches!(&err, WalkError::NxDomain(m) if m.contains("www.chat.test.")), "{err:?}");
    // The cut cached before the change is still used, for its TTL.
    assert_eq!(find(&cached, "www.chat.test.", 5).await.expect("cached").queries, 0);
}

/// A stand-in `test.` server (knot never sends glue outside the zone): answers every query with a referral of
/// chat.test. to ns1.chat.test. (glue .33) and ns.evil.example. (out-of-bailiwick glue .35).
struct FakeTld {
    stop: Arc<AtomicBool>,
    queries: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeTld {
    fn start(addr: SocketAddr) -> FakeTld {
        let sock = UdpSocket::bind(addr).expect("bind fake tld");
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicUsize::new(0));
        let (s, q) = (stop.clone(), queries.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::Relaxed) {
                let Ok((len, from)) = sock.recv_from(&mut buf) else { continue };
                let Ok(query) = Message::from_vec(&buf[..len]) else { continue };
                q.fetch_add(1, Ordering::Relaxed);
                let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
                reply.metadata.message_type = MessageType::Response;
                reply.add_queries(query.queries.iter().cloned());
                let rec = |name: &str, data: RData| Record::from_rdata(n(name), 3600, data);
                reply.add_authority(rec("chat.test.", RData::NS(NS(n("ns1.chat.test.")))));
                reply.add_authority(rec("chat.test.", RData::NS(NS(n("ns.evil.example.")))));
                reply.add_additional(rec("ns1.chat.test.", RData::A(A(ip(33)))));
                reply.add_additional(rec("ns.evil.example.", RData::A(A(ip(35)))));
                if let Ok(wire) = reply.to_vec() {
                    let _ = sock.send_to(&wire, from);
                }
            }
        });
        FakeTld { stop, queries, thread: Some(thread) }
    }
}

impl Drop for FakeTld {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[tokio::test]
async fn out_of_bailiwick_glue_is_not_used() {
    skip_unless_possible!();
    // The root knows ns.evil.example.'s real address (.34, a genuine chat.test. server).
    let root = Knot::start(at53(ip(31)), &[(".", root_zone(ip(31), ip(32), "ns.evil.example. A 127.0.1.34\n"))]);
    let tld = FakeTld::start(at53(ip(32)));
    let zone = [ip(33), ip(34)];
    let _ns1 = Knot::start(at53(ip(33)), &[("chat.test.", chat_zone(zone))]);
    let _ns2 = Knot::start(at53(ip(34)), &[("chat.test.", chat_zone(zone))]);
    // What the untrusted glue points at: a server with a forged chat.test.
    let evil = Knot::start(at53(ip(35)), &[("chat.test.", chat_zone([ip(35), ip(35)]))]);
    let evil_before = evil.queries();

    let walk = find(&Delegations::new(vec![root.addr]), "www.chat.test.", 5).await.expect("walk");
    eprintln!("{}", walk.trace.join("\n"));
    assert_eq!(walk.cut.zone, n("chat.test."));
    assert_eq!(sorted(walk.cut.servers.clone()), vec![ns("ns.evil.example.", 34), ns("ns1.chat.test.", 33)]);
    assert!(walk.cut.servers.iter().all(|s| s.addr.ip() != IpAddr::from(ip(35))));
    assert!(walk.trace.iter().any(|l| l.starts_with("ns.evil.example. (for chat.test.) → 127.0.1.34")));
    assert_eq!(tld.queries.load(Ordering::Relaxed), 1);
    assert_eq!(evil.queries(), evil_before, "the out-of-bailiwick address was never asked");
    // root (www.chat.test. NS), fake tld, root (ns.evil.example. NS, A, AAAA), chat.test. server.
    assert_eq!(walk.queries, 6);
}

#[tokio::test]
async fn referral_back_up_is_a_loop() {
    skip_unless_possible!();
    let root = Knot::start(at53(ip(41)), &[(".", root_zone(ip(41), ip(42), ""))]);
    // test. sends chat.test. to ns.loop.test. (.43), which serves the root zone and so refers back up to test.
    let extra = "chat.test. NS ns.loop.test.\nns.loop.test. A 127.0.1.43\n";
    let _tld = Knot::start(at53(ip(42)), &[("test.", tld_zone(ip(42), [ip(1), ip(1)], false, 1, extra))]);
    let _looper = Knot::start(at53(ip(43)), &[(".", root_zone(ip(43), ip(42), ""))]);
    let err = find(&Delegations::new(vec![root.addr]), "www.chat.test.", 5).await.expect_err("loop");
    eprintln!("{err}");
    assert!(matches!(&err, WalkError::Loop(m) if m.contains("test.") && m.contains("127.0.1.43")), "{err:?}");
}

#[tokio::test]
async fn refusing_parent_is_servfail() {
    skip_unless_possible!();
    let root = Knot::start(at53(ip(51)), &[(".", root_zone(ip(51), ip(52), ""))]);
    // ns.test. serves another zone only: it REFUSES every question about test.
    let other =
        "$TTL 60\nother. SOA ns.other. h.other. 1 3600 600 86400 60\nother. NS ns.other.\nns.other. A 127.0.1.52\n";
    let _tld = Knot::start(at53(ip(52)), &[("other.", other.to_string())]);
    let err = find(&Delegations::new(vec![root.addr]), "www.chat.test.", 5).await.expect_err("lame");
    eprintln!("{err}");
    assert!(matches!(&err, WalkError::ServFail(m) if m.contains("REFUSED") && m.contains("ns.test.")), "{err:?}");
}

#[tokio::test]
async fn truncated_referral_is_retried_over_tcp() {
    skip_unless_possible!();
    let root = Knot::start(at53(ip(61)), &[(".", root_zone(ip(61), ip(62), ""))]);
    let mut extra = String::new();
    for i in 0..80 {
        extra += &format!("chat.test. NS ns{i:02}.chat.test.\nns{i:02}.chat.test. A 127.0.1.63\n");
    }
    let _tld = Knot::start(at53(ip(62)), &[("test.", tld_zone(ip(62), [ip(1), ip(1)], false, 1, &extra))]);
    let _zone = Knot::start(at53(ip(63)), &[("chat.test.", chat_zone([ip(63), ip(63)]))]);
    let walk = find(&Delegations::new(vec![root.addr]), "www.chat.test.", 5).await.expect("walk");
    assert!(walk.trace.iter().any(|l| l.contains("retrying over TCP")), "{:?}", walk.trace);
    assert_eq!(walk.cut.servers.len(), 80);
    assert_eq!(walk.queries, 4, "root, test. over UDP then TCP, chat.test.");
    let _: &Cut = &walk.cut;
}

#[tokio::test]
async fn too_many_queries_is_too_long() {
    skip_unless_possible!();
    // chat.test. has 30 name servers outside test. (no glue): 3 queries each to find their addresses.
    let (mut root_extra, mut tld_extra) = (String::new(), String::new());
    for i in 0..30 {
        root_extra += &format!("ns{i:02}.example. A 127.0.1.73\n");
        tld_extra += &format!("chat.test. NS ns{i:02}.example.\n");
    }
    let root = Knot::start(at53(ip(71)), &[(".", root_zone(ip(71), ip(72), &root_extra))]);
    let _tld = Knot::start(at53(ip(72)), &[("test.", tld_zone(ip(72), [ip(1), ip(1)], false, 1, &tld_extra))]);
    let err = find(&Delegations::new(vec![root.addr]), "www.chat.test.", 5).await.expect_err("too long");
    eprintln!("{err}");
    assert!(matches!(&err, WalkError::TooLong(m) if m.contains("64 queries")), "{err:?}");
}
