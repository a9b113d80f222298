//! The tcp and tls probes against real listeners on loopback: a port that
//! accepts, one that refuses, one whose accept queue is full (SYNs dropped:
//! the black hole a firewall makes), a name that does not resolve; a TLS
//! server with a certificate from a private CA (trusted only through
//! `ca_file`), a leaf that expires in two days, and a server that does not
//! speak TLS.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chatpulse::probe::tcp::Endpoint;
use chatpulse::probe::tcp::TcpProbe;
use chatpulse::probe::tls::TlsCheck;
use chatpulse::probe::tls::TlsProbe;
use chatpulse::probe::{Finding, Probe, Reason};
use support::pki::{Pki, pki};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const T: Duration = Duration::from_secs(2);

fn endpoint(addr: SocketAddr) -> Endpoint {
    Endpoint { address: addr.to_string(), host: addr.ip().to_string(), port: addr.port() }
}

async fn tcp(endpoint: Endpoint, timeout: Duration) -> Finding {
    tokio::time::timeout(timeout * 3, TcpProbe::new(&endpoint, timeout).run())
        .await
        .expect("the probe keeps its timeout")
}

#[tokio::test]
async fn a_listening_port_passes_and_a_closed_one_is_tcp_connect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let f = tcp(endpoint(listener.local_addr().unwrap()), T).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    let closed = support::http::closed_port().await;
    let f = tcp(endpoint(closed), T).await;
    assert_eq!(f.result, Err(Reason::TcpConnect), "{}", f.detail);
    assert!(f.detail.contains("refused"), "{}", f.detail);
}

#[tokio::test]
async fn a_port_that_drops_connections_is_tcp_timeout() {
    // Backlog 1 and nobody accepting: once the queue is full the kernel
    // drops further SYNs, as a firewall's drop rule would.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(300), tokio::net::TcpStream::connect(addr)).await
        {
            fillers.push(s);
        }
    }
    let started = tokio::time::Instant::now();
    let f = tcp(endpoint(addr), Duration::from_millis(700)).await;
    assert_eq!(f.result, Err(Reason::TcpTimeout), "{}", f.detail);
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(listener);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_tcp_resolve() {
    let e = Endpoint { address: "no-such-host.invalid:443".into(), host: "no-such-host.invalid".into(), port: 443 };
    let f = tcp(e, Duration::from_secs(8)).await;
    assert_eq!(f.result, Err(Reason::TcpResolve), "{}", f.detail);
}

/// A TLS server presenting `pki`'s leaf, offering h2 and HTTP/1.1; answers
/// any request with `200 ok`.
async fn tls_server(pki: &Pki) -> SocketAddr {
    tls_server_offering(pki, &[b"h2", b"http/1.1"]).await
}

/// The same server choosing among `alpn` (it answers HTTP/1.1 whatever is
/// chosen, so an HTTP client must be offered only what it speaks).
async fn tls_server_offering(pki: &Pki, alpn: &[&[u8]]) -> SocketAddr {
    support::pki::tls_listener(pki.server_config(alpn), |mut tls| async move {
        let mut request = [0u8; 2048];
        let _ =
            tokio::time::timeout(Duration::from_secs(2), tokio::io::AsyncReadExt::read(&mut tls, &mut request)).await;
        let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
        let _ = tls.shutdown().await;
    })
    .await
}

fn tls_check(addr: SocketAddr, ca_file: Option<PathBuf>, min_cert_days: Option<u32>) -> TlsCheck {
    TlsCheck {
        endpoint: Endpoint {
            address: format!("localhost:{}", addr.port()),
            host: "localhost".into(),
            port: addr.port(),
        },
        server_name: "localhost".into(),
        ca_file,
        system_roots: false,
        alpn: vec!["h2".into(), "http/1.1".into()],
        min_cert_days,
    }
}

async fn tls(check: TlsCheck) -> Finding {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tokio::time::timeout(T * 3, TlsProbe::new(&check, T).run()).await.expect("the probe keeps its timeout")
}

#[tokio::test]
async fn a_private_ca_is_trusted_through_ca_file_and_only_there() {
    let pki = pki(90);
    let addr = tls_server(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();

    let f = tls(tls_check(addr, Some(ca.clone()), Some(7))).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    assert!(f.detail.contains("ALPN h2"), "{}", f.detail);
    let expiry = f.cert_expiry().expect("the leaf's notAfter is reported");
    let in_days = (expiry - chatpulse::time::unix(std::time::SystemTime::now())) / 86_400;
    assert!((88..=90).contains(&in_days), "{in_days}");

    // Against the system's roots the private CA means nothing.
    let f = tls(tls_check(addr, None, None)).await;
    assert_eq!(f.result, Err(Reason::TlsCert), "{}", f.detail);
}

#[tokio::test]
async fn a_leaf_expiring_in_two_days_is_tls_expiring() {
    let pki = pki(2);
    let addr = tls_server(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let f = tls(tls_check(addr, Some(ca.clone()), Some(7))).await;
    assert_eq!(f.result, Err(Reason::TlsExpiring), "{}", f.detail);
    assert!(f.detail.contains("expires in 1 days") || f.detail.contains("expires in 2 days"), "{}", f.detail);
    let f = tls(tls_check(addr, Some(ca), None)).await;
    assert_eq!(f.result, Ok(()), "without min_cert_days it passes: {}", f.detail);
}

#[tokio::test]
async fn a_server_that_does_not_speak_tls_is_tls_handshake() {
    let (addr, _task) = support::http::raw_http(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()).await;
    let pki = pki(90);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let f = tls(tls_check(addr, Some(ca), None)).await;
    assert_eq!(f.result, Err(Reason::TlsHandshake), "{}", f.detail);
}

fn http_check(
    addr: SocketAddr,
    ca_file: Option<PathBuf>,
    min_cert_days: Option<u32>,
) -> chatpulse::probe::http::HttpCheck {
    chatpulse::probe::http::HttpCheck {
        url: format!("https://localhost:{}/", addr.port()),
        method: chatpulse::probe::http::HttpMethod::Get,
        expect_status: vec![chatpulse::probe::http::StatusRange { low: 200, high: 399 }],
        body_contains: None,
        user_agent: chatpulse::probe::http::DEFAULT_USER_AGENT.into(),
        max_redirects: 5,
        ca_file,
        system_roots: false,
        min_cert_days,
        expect_headers: Vec::new(),
    }
}

async fn https(check: chatpulse::probe::http::HttpCheck) -> Finding {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let shared = chatpulse::probe::http::client().unwrap();
    let client = chatpulse::probe::http::client_for(&check, &shared).unwrap();
    let probe = chatpulse::probe::http::HttpProbe::new(check, T, client);
    tokio::time::timeout(T * 3, probe.run()).await.expect("the probe keeps its timeout")
}

#[tokio::test]
async fn http_probes_take_ca_file_and_min_cert_days_too() {
    let pki = pki(2);
    let addr = tls_server_offering(&pki, &[b"http/1.1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let f = https(http_check(addr, Some(ca.clone()), None)).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    assert!(f.cert_expiry().is_some(), "the leaf's expiry is reported");
    let f = https(http_check(addr, None, None)).await;
    assert_eq!(f.result, Err(Reason::HttpTls), "{}", f.detail);
    let f = https(http_check(addr, Some(ca), Some(7))).await;
    assert_eq!(f.result, Err(Reason::TlsExpiring), "{}", f.detail);
}
