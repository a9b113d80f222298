//! The dns probe against a real hickory-server on loopback: every dns reason
//! of SPEC section 3 comes from a real exchange.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use chatpulse::config::{DnsCheck, Rcode, RecordType};
use chatpulse::probe::dns::DnsProbe;
use chatpulse::probe::{Finding, Probe, Reason};
use support::dns::{Mode, TestDns, garbage_dns};

fn check(query: &str, record: RecordType, server: SocketAddr) -> DnsCheck {
    DnsCheck {
        query: query.into(),
        record,
        server: Some(server),
        recursion: false,
        expect_rcode: Rcode::NoError,
        expect_answer: true,
    }
}

async fn run(check: DnsCheck, timeout: Duration) -> Finding {
    DnsProbe::new(&check, timeout, None).run().await
}

const T: Duration = Duration::from_secs(2);

#[tokio::test]
async fn answer_from_the_zone_passes_and_names_the_records() {
    let dns = TestDns::start().await;
    let f = run(check("web.chat.test", RecordType::A, dns.addr), T).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    assert!(f.detail.contains("NOERROR, 2 A"), "{}", f.detail);
    assert!(f.detail.contains("192.0.2.10"), "{}", f.detail);
}

#[tokio::test]
async fn cname_chain_counts_only_records_of_the_asked_type() {
    let dns = TestDns::start().await;
    let f = run(check("www.chat.test", RecordType::Cname, dns.addr), T).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    let f = run(check("mail.chat.test", RecordType::Mx, dns.addr), T).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
}

#[tokio::test]
async fn servfail_from_server_is_dns_servfail() {
    let dns = TestDns::start().await;
    dns.set_mode(Mode::ServFail);
    let f = run(check("web.chat.test", RecordType::A, dns.addr), T).await;
    assert_eq!(f.result, Err(Reason::DnsServfail));
    assert!(f.detail.contains("SERVFAIL"), "{}", f.detail);
}

#[tokio::test]
async fn refused_from_server_is_dns_refused() {
    let dns = TestDns::start().await;
    dns.set_mode(Mode::Refused);
    let f = run(check("web.chat.test", RecordType::A, dns.addr), T).await;
    assert_eq!(f.result, Err(Reason::DnsRefused));
    // A name outside every zone is refused by the real catalog too.
    dns.set_mode(Mode::Normal);
    let f = run(check("example.org", RecordType::A, dns.addr), T).await;
    assert_eq!(f.result, Err(Reason::DnsRefused), "{}", f.detail);
}

#[tokio::test]
async fn missing_name_is_dns_nxdomain() {
    let dns = TestDns::start().await;
    let f = run(check("nope.chat.test", RecordType::A, dns.addr), T).await;
    assert_eq!(f.result, Err(Reason::DnsNxdomain), "{}", f.detail);
}

#[tokio::test]
async fn existing_name_without_the_type_is_dns_no_answer() {
    let dns = TestDns::start().await;
    let f = run(check("web.chat.test", RecordType::Aaaa, dns.addr), T).await;
    assert_eq!(f.result, Err(Reason::DnsNoAnswer), "{}", f.detail);
    // ... unless the user does not require an answer.
    let mut c = check("web.chat.test", RecordType::Aaaa, dns.addr);
    c.expect_answer = false;
    assert_eq!(run(c, T).await.result, Ok(()));
}

#[tokio::test]
async fn other_rcodes_and_unmet_expectations_are_dns_unexpected_rcode() {
    let dns = TestDns::start().await;
    dns.set_mode(Mode::NotImp);
    let f = run(check("web.chat.test", RecordType::A, dns.addr), T).await;
    assert_eq!(f.result, Err(Reason::DnsUnexpectedRcode), "{}", f.detail);
    dns.set_mode(Mode::Normal);
    let mut c = check("web.chat.test", RecordType::A, dns.addr);
    c.expect_rcode = Rcode::NxDomain;
    c.expect_answer = false;
    let f = run(c.clone(), T).await;
    assert_eq!(f.result, Err(Reason::DnsUnexpectedRcode), "{}", f.detail);
    c.query = "gone.chat.test".into();
    assert_eq!(run(c, T).await.result, Ok(()));
}

#[tokio::test]
async fn silent_server_is_dns_timeout_after_the_timeout() {
    let dns = TestDns::start().await;
    dns.set_mode(Mode::Silent);
    let started = tokio::time::Instant::now();
    let f = run(check("web.chat.test", RecordType::A, dns.addr), Duration::from_millis(300)).await;
    assert_eq!(f.result, Err(Reason::DnsTimeout));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(f.detail.contains("no answer within 300ms"), "{}", f.detail);
}

#[tokio::test]
async fn garbage_replies_are_ignored_and_reported_not_fatal() {
    let (addr, _task) = garbage_dns().await;
    let f = run(check("web.chat.test", RecordType::A, addr), Duration::from_millis(300)).await;
    assert_eq!(f.result, Err(Reason::DnsTimeout));
    assert!(f.detail.contains("malformed or mismatched replies ignored"), "{}", f.detail);
}

#[tokio::test]
async fn closed_port_is_a_timeout_reported_as_unreachable_without_waiting() {
    let port = support::http::closed_port().await;
    let started = tokio::time::Instant::now();
    let f = run(check("web.chat.test", RecordType::A, port), Duration::from_secs(3)).await;
    assert_eq!(f.result, Err(Reason::DnsTimeout));
    assert!(f.detail.contains("unreachable"), "{}", f.detail);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn truncated_udp_answer_is_retried_over_tcp() {
    // 40 TXT strings of 100 bytes: far beyond the 1232-byte UDP payload.
    let big: String = (0..40).map(|i| format!("big IN TXT \"{i:03}{}\"\n", "x".repeat(97))).collect();
    let dns = TestDns::start_with(&big).await;
    let f = run(check("big.chat.test", RecordType::Txt, dns.addr), T).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    assert!(f.detail.contains("40 TXT"), "{}", f.detail);
}
