//! dns probes over TCP, TLS (DoT) and HTTPS (DoH), against real servers on
//! loopback: hickory-server answers; a DoT front (rustls, the RFC 7858
//! framing) and a DoH front (hyper over rustls, RFC 8484 POST) in the test
//! carry the questions to it. Their certificates come from a private CA,
//! trusted through `ca_file`: without it the run fails, saying why.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use chatpulse::probe::dns::DnsProbe;
use chatpulse::probe::dns::{DnsCheck, DnsServer, DnsTransport};
use chatpulse::probe::{Finding, Probe, Reason};
use hickory_proto::op::ResponseCode as Rcode;
use hickory_proto::rr::RecordType;
use support::dns::{Mode, TestDns};
use support::pki::pki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(3);

/// Asks `upstream` (hickory-server) over TCP: the answer to `query`.
async fn forward(upstream: SocketAddr, query: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(upstream).await.unwrap();
    tcp.write_all(&(query.len() as u16).to_be_bytes()).await.unwrap();
    tcp.write_all(query).await.unwrap();
    let len = tcp.read_u16().await.unwrap();
    let mut reply = vec![0u8; usize::from(len)];
    tcp.read_exact(&mut reply).await.unwrap();
    reply
}

/// A DNS-over-TLS front for `upstream`.
async fn dot_server(upstream: SocketAddr, config: rustls::ServerConfig) -> SocketAddr {
    support::pki::tls_listener(config, move |mut tls| async move {
        let Ok(len) = tls.read_u16().await else { return };
        let mut query = vec![0u8; usize::from(len)];
        if tls.read_exact(&mut query).await.is_err() {
            return;
        }
        let reply = forward(upstream, &query).await;
        let _ = tls.write_all(&(reply.len() as u16).to_be_bytes()).await;
        let _ = tls.write_all(&reply).await;
    })
    .await
}

/// A DNS-over-HTTPS front for `upstream` at `https://localhost:PORT/dns-query`.
async fn doh_server(upstream: SocketAddr, config: rustls::ServerConfig) -> String {
    let addr = support::pki::tls_listener(config, move |tls| async move {
        let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| async move {
            use http_body_util::BodyExt;
            let ok = request.method() == hyper::Method::POST
                && request.headers().get("content-type").is_some_and(|v| v == "application/dns-message");
            let query = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let response = if ok {
                hyper::Response::builder()
                    .header("content-type", "application/dns-message")
                    .body(http_body_util::Full::new(bytes::Bytes::from(forward(upstream, &query).await)))
            } else {
                hyper::Response::builder().status(415).body(http_body_util::Full::new(bytes::Bytes::new()))
            };
            Ok::<_, std::convert::Infallible>(response.unwrap())
        });
        let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
            .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
            .await;
    })
    .await;
    format!("https://localhost:{}/dns-query", addr.port())
}

fn check(transport: DnsTransport, server: DnsServer, ca_file: Option<std::path::PathBuf>) -> DnsCheck {
    DnsCheck {
        query: "web.chat.test".into(),
        record: RecordType::A,
        transport,
        servers: vec![server],
        server_name: Some("localhost".into()),
        ca_file,
        system_roots: false,
        require_all: false,
        recursion: false,
        authoritative: true,
        expect_rcode: Rcode::NoError,
        expect_answer: true,
        delegation: None,
        expect_answer_in: Vec::new(),
    }
}

async fn run(check: DnsCheck) -> Finding {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tokio::time::timeout(T * 3, DnsProbe::new(check, T, None).run()).await.expect("the probe keeps its timeout")
}

#[tokio::test]
async fn plain_tcp_asks_without_udp() {
    let dns = TestDns::start().await;
    let f = run(DnsCheck { server_name: None, ..check(DnsTransport::Tcp, DnsServer::Addr(dns.addr), None) }).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    dns.set_mode(Mode::ServFail);
    let f = run(DnsCheck { server_name: None, ..check(DnsTransport::Tcp, DnsServer::Addr(dns.addr), None) }).await;
    assert_eq!(f.result, Err(Reason::DnsServfail), "{}", f.detail);
}

#[tokio::test]
async fn dns_over_tls_verifies_the_server_and_keeps_every_reason() {
    let dns = TestDns::start().await;
    let pki = pki(90);
    let dot = dot_server(dns.addr, pki.server_config(&[])).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.ca_file(dir.path());
    let f = run(check(DnsTransport::Tls, DnsServer::Addr(dot), Some(ca.clone()))).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    assert!(f.detail.contains("192.0.2.10"), "{}", f.detail);
    dns.set_mode(Mode::ServFail);
    let f = run(check(DnsTransport::Tls, DnsServer::Addr(dot), Some(ca))).await;
    assert_eq!(f.result, Err(Reason::DnsServfail), "{}", f.detail);
    // The system's roots do not know the private CA: no answer, and why.
    let f = run(check(DnsTransport::Tls, DnsServer::Addr(dot), None)).await;
    assert_eq!(f.result, Err(Reason::DnsTimeout), "{}", f.detail);
    assert!(f.detail.contains("TLS failed"), "{}", f.detail);
}

#[tokio::test]
async fn dns_over_https_posts_the_question_and_judges_the_answer() {
    let dns = TestDns::start().await;
    let pki = pki(90);
    let url = doh_server(dns.addr, pki.server_config(&[b"h2", b"http/1.1"])).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = pki.ca_file(dir.path());
    let f = run(check(DnsTransport::Https, DnsServer::Url(url.clone()), Some(ca.clone()))).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    assert!(f.detail.contains(&url) && f.detail.contains("192.0.2.10"), "{}", f.detail);
    let mut missing = check(DnsTransport::Https, DnsServer::Url(url), Some(ca));
    missing.query = "nosuch.chat.test".into();
    let f = run(missing).await;
    assert_eq!(f.result, Err(Reason::DnsNxdomain), "{}", f.detail);
}
