//! The dns probe against a real hickory-server on loopback: every dns reason
//! of README, "What a run can say", comes from a real exchange.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use chatpulse::probe::dns::DnsProbe;
use chatpulse::probe::dns::{DnsCheck, DnsServer, DnsTransport};
use chatpulse::probe::{Finding, Probe, Reason};
use hickory_proto::op::ResponseCode as Rcode;
use hickory_proto::rr::RecordType;
use hickory_server::proto::op::{Message, OpCode};
use hickory_server::proto::rr::rdata::{A, TXT};
use hickory_server::proto::rr::{Name, RData, Record};
use support::dns::{Mode, TestDns, crafted_dns, garbage_dns};

fn check(query: &str, record: RecordType, server: SocketAddr) -> DnsCheck {
    DnsCheck {
        query: query.into(),
        record,
        transport: DnsTransport::Udp,
        servers: vec![DnsServer::Addr(server)],
        server_name: None,
        ca_file: None,
        system_roots: false,
        require_all: false,
        authoritative: false,
        recursion: false,
        expect_rcode: Rcode::NoError,
        expect_answer: true,
        delegation: None,
        expect_answer_in: Vec::new(),
    }
}

async fn run(check: DnsCheck, timeout: Duration) -> Finding {
    DnsProbe::new(check, timeout, None).run().await
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
    let f = run(check("www.chat.test", RecordType::CNAME, dns.addr), T).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    let f = run(check("mail.chat.test", RecordType::MX, dns.addr), T).await;
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
    let f = run(check("web.chat.test", RecordType::AAAA, dns.addr), T).await;
    assert_eq!(f.result, Err(Reason::DnsNoAnswer), "{}", f.detail);
    // ... unless the user does not require an answer.
    let mut c = check("web.chat.test", RecordType::AAAA, dns.addr);
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
    c.expect_rcode = Rcode::NXDomain;
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
    let f = run(check("big.chat.test", RecordType::TXT, dns.addr), T).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    assert!(f.detail.contains("40 TXT"), "{}", f.detail);
}

/// A reply carrying the question it answers, plus `answers`.
fn reply_to(query: &Message, answers: Vec<Record>) -> Message {
    let mut reply = Message::response(0, OpCode::Query);
    for q in &query.queries {
        reply.add_query(q.clone());
    }
    for a in answers {
        reply.add_answer(a);
    }
    reply
}

#[tokio::test]
async fn a_reply_without_the_question_is_not_believed() {
    let (addr, _task) = crafted_dns(|_| {
        let mut reply = Message::response(0, OpCode::Query);
        let name = Name::from_ascii("web.chat.test.").unwrap();
        reply.add_answer(Record::from_rdata(name, 60, RData::A(A::new(192, 0, 2, 66))));
        reply
    })
    .await;
    let f = run(check("web.chat.test", RecordType::A, addr), Duration::from_millis(500)).await;
    assert_eq!(f.result, Err(Reason::DnsTimeout), "{}", f.detail);
    assert!(f.detail.contains("mismatched replies ignored"), "{}", f.detail);
}

#[tokio::test]
async fn records_owned_by_another_name_are_no_answer() {
    let (addr, _task) = crafted_dns(|query| {
        let other = Name::from_ascii("elsewhere.example.").unwrap();
        reply_to(query, vec![Record::from_rdata(other, 60, RData::A(A::new(192, 0, 2, 66)))])
    })
    .await;
    let f = run(check("web.chat.test", RecordType::A, addr), T).await;
    assert_eq!(f.result, Err(Reason::DnsNoAnswer), "{}", f.detail);
    assert!(f.detail.contains("1 owned by another name"), "{}", f.detail);
}

#[tokio::test]
async fn records_reached_through_the_cname_chain_count() {
    let (addr, _task) = crafted_dns(|query| {
        let asked = query.queries[0].name().clone();
        let alias = Name::from_ascii("edge.cdn.example.").unwrap();
        reply_to(
            query,
            vec![
                Record::from_rdata(asked, 60, RData::CNAME(hickory_server::proto::rr::rdata::CNAME(alias.clone()))),
                Record::from_rdata(alias, 60, RData::A(A::new(192, 0, 2, 7))),
            ],
        )
    })
    .await;
    let f = run(check("web.chat.test", RecordType::A, addr), T).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    assert!(f.detail.contains("192.0.2.7"), "{}", f.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_prints_control_characters_from_a_txt_record_escaped() {
    let (addr, _task) = crafted_dns(|query| {
        let asked = query.queries[0].name().clone();
        let text = "line1\r\nline2 \u{1b}[31mred\u{1b}[0m".to_string();
        reply_to(query, vec![Record::from_rdata(asked, 60, RData::TXT(TXT::new(vec![text])))])
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[[service]]\nid = \"t\"\nname = \"T\"\n  [[service.probe]]\n  kind = \"dns\"\n  query = \"web.chat.test\"\n  record = \"TXT\"\n  server = \"{addr}\"\n"
        ),
    )
    .unwrap();
    let check = tokio::process::Command::new(env!("CARGO_BIN_EXE_chatpulse"))
        .arg("--config")
        .arg(&config)
        .arg("check")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), check).await.expect("check finishes").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains('\u{1b}') && !stdout.contains('\r'), "{stdout:?}");
    assert!(stdout.contains("line1\\r\\nline2 \\u{1b}[31mred"), "{stdout}");
}

#[tokio::test]
async fn an_answer_without_the_aa_flag_is_not_authoritative() {
    // hickory-server answers for its own zone with AA set.
    let dns = TestDns::start().await;
    let mut c = check("web.chat.test", RecordType::A, dns.addr);
    c.authoritative = true;
    let f = run(c, T).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    // A middlebox answering for the zone: right records, no AA.
    let (addr, _task) = crafted_dns(|query| {
        let asked = query.queries[0].name().clone();
        let mut reply = reply_to(query, vec![Record::from_rdata(asked, 60, RData::A(A::new(192, 0, 2, 10)))]);
        reply.metadata.authoritative = false;
        reply
    })
    .await;
    let mut c = check("web.chat.test", RecordType::A, addr);
    c.authoritative = true;
    let f = run(c, T).await;
    assert_eq!(f.result, Err(Reason::DnsNotAuthoritative), "{}", f.detail);
    assert!(f.detail.contains("without the AA flag"), "{}", f.detail);
}

#[tokio::test]
async fn with_several_servers_any_passes_on_one_and_all_needs_every_one() {
    let good = TestDns::start().await;
    let silent = TestDns::start().await;
    silent.set_mode(Mode::Silent);
    let mut c = check("web.chat.test", RecordType::A, good.addr);
    c.servers = vec![DnsServer::Addr(silent.addr), DnsServer::Addr(good.addr)];
    let started = tokio::time::Instant::now();
    let f = run(c.clone(), Duration::from_millis(800)).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    assert!(started.elapsed() < Duration::from_secs(2), "servers are asked at once");
    assert!(f.detail.contains(&good.addr.to_string()) && f.detail.contains(&silent.addr.to_string()), "{}", f.detail);
    c.require_all = true;
    let f = run(c, Duration::from_millis(800)).await;
    assert_eq!(f.result, Err(Reason::DnsTimeout), "{}", f.detail);

    // Every server fails: the worst reason wins (SERVFAIL over REFUSED).
    let refusing = TestDns::start().await;
    refusing.set_mode(Mode::Refused);
    let failing = TestDns::start().await;
    failing.set_mode(Mode::ServFail);
    let mut c = check("web.chat.test", RecordType::A, refusing.addr);
    c.servers = vec![DnsServer::Addr(refusing.addr), DnsServer::Addr(failing.addr)];
    let f = run(c, T).await;
    assert_eq!(f.result, Err(Reason::DnsServfail), "{}", f.detail);
    assert!(f.detail.contains("REFUSED") && f.detail.contains("SERVFAIL"), "{}", f.detail);
}

#[tokio::test]
async fn a_resolver_answer_outside_the_platforms_address_space_is_inconsistent() {
    let dns = TestDns::start().await;
    let space = |prefixes: &[&str]| DnsCheck {
        expect_answer_in: prefixes.iter().map(|p| p.parse().unwrap()).collect(),
        ..check("web.chat.test", RecordType::A, dns.addr)
    };
    let f = tokio::time::timeout(T * 3, run(space(&["192.0.2.0/24"]), T)).await.unwrap();
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    // One answer of the two outside (a portal or a hijack mixing in its own).
    let f = tokio::time::timeout(T * 3, run(space(&["192.0.2.10/32", "2001:db8::/32"]), T)).await.unwrap();
    assert_eq!(f.result, Err(Reason::DnsInconsistent), "{}", f.detail);
    assert!(
        f.detail.contains("answered 192.0.2.11, outside expect_answer_in (192.0.2.10/32, 2001:db8::/32)"),
        "{}",
        f.detail
    );
}
