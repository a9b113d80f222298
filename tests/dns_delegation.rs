//! `servers = "delegation"` probes and `expect_answer_in`, against real knot
//! servers on 127.0.2.x:53 acting as a root, the TLD `test.` and the zone
//! `chat.test.` on two servers — and a real Unbound with `serve-expired: yes`
//! beside them, to show why the feature exists: with every zone server
//! silent (4 October 2021), the resolver keeps answering from its cache while
//! the delegation probe says `dns_timeout`. Port 53 needs root (CI runs as
//! root); as another user each test says so and passes without running.
//! Each test has its own block of addresses, so they run in parallel. The
//! walker's own cases (glue out of bailiwick, loops, lame parents,
//! truncation) are in tests/dns_walk.rs.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chatpulse::config::{Check, Config};
use chatpulse::probe::dns::DnsProbe;
use chatpulse::probe::{Finding, Probe, Reason};
use support::knot::{Knot, at53, chat_zone, hierarchy, root_zone, skip_reason, tld_zone};

const T: Duration = Duration::from_secs(3);

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 2, last)
}

/// A probe from config text, with `[dns] roots` = `root`.
fn probe(root: Ipv4Addr, keys: &str) -> DnsProbe {
    let text = format!(
        "[dns]\nroots = [\"{root}\"]\n[[service]]\nid = \"p\"\nname = \"P\"\n  [[service.probe]]\n  kind = \"dns\"\n  timeout = \"3s\"\n{keys}"
    );
    let config = Config::parse(Path::new("dns.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    let Check::Dns(check) = &config.services[0].probes[0].check else { panic!("a dns probe") };
    DnsProbe::new(check.clone(), T, None)
}

async fn run(probe: &DnsProbe) -> Finding {
    tokio::time::timeout(T * 3, probe.run()).await.expect("the probe keeps its timeout")
}

fn skipped() -> bool {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why} (CI runs it as root with knot installed)");
        return true;
    }
    false
}

#[tokio::test]
async fn the_zones_own_servers_are_each_asked_and_named_in_the_detail() {
    if skipped() {
        return;
    }
    let h = hierarchy([ip(1), ip(2), ip(3), ip(4)]);
    let p = probe(ip(1), "  query = \"www.chat.test\"\n  servers = \"delegation\"\n  require = \"all\"\n");
    let f = run(&p).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    assert!(f.detail.starts_with("zone chat.test (2 server addresses)"), "{}", f.detail);
    for server in ["@ns1.chat.test (127.0.2.3:53)", "@ns2.chat.test (127.0.2.4:53)"] {
        assert!(f.detail.contains(server), "{server} not in: {}", f.detail);
    }
    assert!(f.detail.contains("NOERROR, 1 A (192.0.2.10)"), "{}", f.detail);
    drop(h);
}

#[tokio::test]
async fn referrals_are_cached_and_the_zones_servers_asked_on_every_run() {
    if skipped() {
        return;
    }
    let h = hierarchy([ip(11), ip(12), ip(13), ip(14)]);
    let before = h.queries();
    let p = probe(ip(11), "  query = \"www.chat.test\"\n  servers = \"delegation\"\n");
    for _ in 0..10 {
        let f = run(&p).await;
        assert_eq!(f.result, Ok(()), "{}", f.detail);
    }
    let after = h.queries();
    let sent: Vec<u64> = after.iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(sent[0], 1, "the root is asked once in ten runs: {sent:?}");
    assert_eq!(sent[1], 1, "the TLD is asked once in ten runs: {sent:?}");
    assert!(sent[2] >= 10 && sent[3] >= 10, "each zone server is asked on every run: {sent:?}");
}

#[tokio::test]
async fn one_of_two_zone_servers_silent_passes_with_any_and_fails_with_all() {
    if skipped() {
        return;
    }
    let h = hierarchy([ip(21), ip(22), ip(23), ip(24)]);
    let any = probe(ip(21), "  query = \"www.chat.test\"\n  servers = \"delegation\"\n");
    let all = probe(ip(21), "  query = \"www.chat.test\"\n  servers = \"delegation\"\n  require = \"all\"\n");
    // Warm both walkers while every server answers.
    assert_eq!(run(&any).await.result, Ok(()));
    assert_eq!(run(&all).await.result, Ok(()));
    h.zone[1].stop_answering();
    let f = run(&any).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    let f = run(&all).await;
    assert_eq!(f.result, Err(Reason::DnsTimeout), "{}", f.detail);
    assert!(f.detail.contains("@ns2.chat.test (127.0.2.24:53): no answer within"), "{}", f.detail);
    h.zone[1].resume();
}

#[tokio::test]
async fn the_delegation_removed_at_the_parent_is_nxdomain() {
    if skipped() {
        return;
    }
    let h = hierarchy([ip(31), ip(32), ip(33), ip(34)]);
    h.tld.set_zone("test.", tld_zone(ip(32), [ip(33), ip(34)], false, 2, ""));
    let p = probe(ip(31), "  query = \"www.chat.test\"\n  servers = \"delegation\"\n");
    let f = run(&p).await;
    assert_eq!(f.result, Err(Reason::DnsNxdomain), "{}", f.detail);
    assert!(f.detail.contains("delegation not found"), "{}", f.detail);
}

#[tokio::test]
async fn a_lame_zone_server_refusing_the_zone_fails_its_part() {
    if skipped() {
        return;
    }
    let z = [ip(43), ip(44)];
    let _root = Knot::start(at53(ip(41)), &[(".", root_zone(ip(41), ip(42), ""))]);
    let _tld = Knot::start(at53(ip(42)), &[("test.", tld_zone(ip(42), z, true, 1, ""))]);
    let _good = Knot::start(at53(z[0]), &[("chat.test.", chat_zone(z))]);
    // Delegated to, but serving another zone: REFUSED for chat.test.
    let other = "$TTL 300\nother.test. SOA ns.other.test. h.other.test. 1 3600 600 86400 60\nother.test. NS ns.other.test.\nns.other.test. A 127.0.2.44\n";
    let _lame = Knot::start(at53(z[1]), &[("other.test.", other.to_string())]);
    let any = probe(ip(41), "  query = \"www.chat.test\"\n  servers = \"delegation\"\n");
    let f = run(&any).await;
    assert_eq!(f.result, Ok(()), "one good server is enough with any: {}", f.detail);
    let all = probe(ip(41), "  query = \"www.chat.test\"\n  servers = \"delegation\"\n  require = \"all\"\n");
    let f = run(&all).await;
    assert_eq!(f.result, Err(Reason::DnsRefused), "{}", f.detail);
    assert!(f.detail.contains("@ns2.chat.test (127.0.2.44:53): REFUSED"), "{}", f.detail);
}

#[tokio::test]
async fn a_cname_into_another_zone_or_a_zone_delegated_below_is_followed_into_its_delegation() {
    if skipped() {
        return;
    }
    let z = [ip(53), ip(54)];
    let cdn = ip(55);
    let _root = Knot::start(at53(ip(51)), &[(".", root_zone(ip(51), ip(52), ""))]);
    let delegation = format!("cdn.test. NS ns.cdn.test.\nns.cdn.test. A {cdn}\n");
    let _tld = Knot::start(at53(ip(52)), &[("test.", tld_zone(ip(52), z, true, 1, &delegation))]);
    let sub = ip(56);
    // web: into another zone; web2: into a zone delegated below chat.test
    // (as star-mini.c10r.facebook.com may be under facebook.com).
    let chat = chat_zone(z)
        + &format!(
            "web.chat.test. CNAME edge.cdn.test.\nweb2.chat.test. CNAME www.sub.chat.test.\nsub.chat.test. NS ns.sub.chat.test.\nns.sub.chat.test. A {sub}\n"
        );
    let _a = Knot::start(at53(z[0]), &[("chat.test.", chat.clone())]);
    let _b = Knot::start(at53(z[1]), &[("chat.test.", chat)]);
    let cdn_zone = format!(
        "$TTL 300\ncdn.test. SOA ns.cdn.test. h.cdn.test. 1 3600 600 86400 60\ncdn.test. NS ns.cdn.test.\nns.cdn.test. A {cdn}\nedge.cdn.test. A 198.51.100.7\n"
    );
    let _cdn = Knot::start(at53(cdn), &[("cdn.test.", cdn_zone)]);
    let p = probe(
        ip(51),
        "  query = \"web.chat.test\"\n  servers = \"delegation\"\n  expect_answer_in = [\"198.51.100.0/24\"]\n",
    );
    let f = run(&p).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    assert!(f.detail.contains("CNAME to edge.cdn.test. (asked at its zone's servers)"), "{}", f.detail);
    assert!(f.detail.contains("zone cdn.test (1 server address): edge.cdn.test A @ns.cdn.test"), "{}", f.detail);

    let sub_zone = format!(
        "$TTL 300\nsub.chat.test. SOA ns.sub.chat.test. h.chat.test. 1 3600 600 86400 60\nsub.chat.test. NS ns.sub.chat.test.\nns.sub.chat.test. A {sub}\nwww.sub.chat.test. A 198.51.100.8\n"
    );
    let _sub = Knot::start(at53(sub), &[("sub.chat.test.", sub_zone)]);
    let p = probe(ip(51), "  query = \"web2.chat.test\"\n  servers = \"delegation\"\n");
    let f = run(&p).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    assert!(f.detail.contains("zone sub.chat.test (1 server address): www.sub.chat.test A"), "{}", f.detail);
    assert!(f.detail.contains("198.51.100.8"), "{}", f.detail);
}

#[tokio::test]
async fn an_answer_outside_the_platforms_address_space_is_inconsistent() {
    if skipped() {
        return;
    }
    let _h = hierarchy([ip(61), ip(62), ip(63), ip(64)]);
    let keys = |space: &str| {
        format!("  query = \"www.chat.test\"\n  servers = \"delegation\"\n  expect_answer_in = [{space}]\n")
    };
    let f = run(&probe(ip(61), &keys("\"192.0.2.0/24\", \"2001:db8::/32\""))).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    let f = run(&probe(ip(61), &keys("\"198.51.100.0/24\""))).await;
    assert_eq!(f.result, Err(Reason::DnsInconsistent), "{}", f.detail);
    assert!(f.detail.contains("answered 192.0.2.10, outside expect_answer_in (198.51.100.0/24)"), "{}", f.detail);
}

/// A real Unbound resolving from our root, serving expired answers (with
/// its RFC 6761 default answer for `test.` switched off).
struct Unbound {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Unbound {
    fn start(root: Ipv4Addr, listen: Ipv4Addr) -> Unbound {
        let dir = tempfile::tempdir().unwrap();
        let hints = dir.path().join("root.hints");
        std::fs::write(&hints, format!(". 3600 NS a.root-servers.net.\na.root-servers.net. 3600 A {root}\n")).unwrap();
        let conf = dir.path().join("unbound.conf");
        std::fs::write(
            &conf,
            format!(
                "server:\n  interface: {listen}\n  port: 53\n  do-not-query-localhost: no\n  root-hints: \"{}\"\n  module-config: \"iterator\"\n  serve-expired: yes\n  serve-expired-ttl: 86400\n  qname-minimisation: no\n  local-zone: \"test.\" nodefault\n  access-control: 127.0.0.0/8 allow\n  num-threads: 1\n  username: \"\"\n  chroot: \"\"\n  directory: \"{}\"\n  pidfile: \"{}/unbound.pid\"\n  use-syslog: no\n  logfile: \"\"\n  verbosity: 0\n",
                hints.display(),
                dir.path().display(),
                dir.path().display()
            ),
        )
        .unwrap();
        let child = Command::new("unbound")
            .args(["-d", "-c", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .spawn()
            .expect("unbound is installed");
        Unbound { child, addr: at53(listen), _dir: dir }
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn every_zone_server_silent_is_a_timeout_while_a_serve_stale_resolver_keeps_answering() {
    if skipped() {
        return;
    }
    let z = [ip(73), ip(74)];
    let _root = Knot::start(at53(ip(71)), &[(".", root_zone(ip(71), ip(72), ""))]);
    let _tld = Knot::start(at53(ip(72)), &[("test.", tld_zone(ip(72), z, true, 1, ""))]);
    // A one-second TTL, so Unbound's copy is expired when the servers go.
    let zone = chat_zone(z).replace("www.chat.test. A", "www.chat.test. 1 A");
    let servers =
        [Knot::start(at53(z[0]), &[("chat.test.", zone.clone())]), Knot::start(at53(z[1]), &[("chat.test.", zone)])];
    let unbound = Unbound::start(ip(71), ip(75));
    let recursive = probe(ip(71), &format!("  query = \"www.chat.test\"\n  server = \"{}\"\n", unbound.addr));
    let delegation = probe(ip(71), "  query = \"www.chat.test\"\n  servers = \"delegation\"\n");
    support::wait_for("Unbound to resolve through our root", Duration::from_secs(15), || async {
        (run(&recursive).await.result == Ok(())).then_some(())
    })
    .await;
    assert_eq!(run(&delegation).await.result, Ok(()));

    // 4 October 2021: the zone's servers stop answering.
    for server in &servers {
        server.stop_answering();
    }
    tokio::time::sleep(Duration::from_millis(1500)).await; // the record's TTL runs out
    let stale = run(&recursive).await;
    assert_eq!(stale.result, Ok(()), "the resolver answers from its expired cache: {}", stale.detail);
    let f = run(&delegation).await;
    assert_eq!(f.result, Err(Reason::DnsTimeout), "the zone's own servers tell the truth: {}", f.detail);
    for server in &servers {
        server.resume();
    }
}
