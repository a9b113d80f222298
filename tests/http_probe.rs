//! The http probe against a real axum server and a real TLS endpoint on
//! loopback: every http reason of README, "What a run can say", from a real request.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use chatpulse::probe::http::{HttpCheck, HttpMethod, StatusRange};
use chatpulse::probe::http::{HttpProbe, client};
use chatpulse::probe::{Finding, Probe, Reason};
use support::http::{HUGE, TestHttp, closed_port, raw_http, self_signed_tls};

fn check(url: String, body_contains: Option<&str>) -> HttpCheck {
    HttpCheck {
        url,
        method: HttpMethod::Get,
        expect_status: vec![StatusRange { low: 200, high: 399 }],
        body_contains: body_contains.map(str::to_string),
        user_agent: chatpulse::probe::http::DEFAULT_USER_AGENT.to_string(),
        max_redirects: 5,
        ca_file: None,
        system_roots: false,
        min_cert_days: None,
        expect_headers: Vec::new(),
    }
}

async fn run(check: HttpCheck, timeout: Duration) -> Finding {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    HttpProbe::new(check, timeout, client().unwrap()).run().await
}

const T: Duration = Duration::from_secs(3);

#[tokio::test]
async fn ok_page_with_expected_text_passes() {
    let http = TestHttp::start().await;
    let f = run(check(http.url("/ok"), Some("WhatsApp")), T).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    assert_eq!(f.http_status(), Some(200));
}

#[tokio::test]
async fn head_request_checks_status_only() {
    let http = TestHttp::start().await;
    let mut c = check(http.url("/ok"), None);
    c.method = HttpMethod::Head;
    assert_eq!(run(c, T).await.result, Ok(()));
}

#[tokio::test]
async fn status_outside_the_expected_ranges_is_http_status() {
    let http = TestHttp::start().await;
    let f = run(check(http.url("/status/503"), None), T).await;
    assert_eq!(f.result, Err(Reason::HttpStatus));
    assert_eq!(f.http_status(), Some(503));
    assert!(f.detail.contains("status 503 (expected 200-399)"), "{}", f.detail);
    let mut c = check(http.url("/status/404"), None);
    c.expect_status = vec![StatusRange { low: 200, high: 499 }];
    assert_eq!(run(c, T).await.result, Ok(()));
}

#[tokio::test]
async fn response_slower_than_the_timeout_is_http_timeout() {
    let http = TestHttp::start().await;
    let started = tokio::time::Instant::now();
    let f = run(check(http.url("/slow"), None), Duration::from_millis(400)).await;
    assert_eq!(f.result, Err(Reason::HttpTimeout), "{}", f.detail);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn body_without_the_expected_text_is_http_body() {
    let http = TestHttp::start().await;
    let f = run(check(http.url("/plain"), Some("WhatsApp")), T).await;
    assert_eq!(f.result, Err(Reason::HttpBody));
    assert_eq!(f.http_status(), Some(200));
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn fifty_mib_body_is_read_only_up_to_the_cap() {
    let http = TestHttp::start().await;
    let before = rss_kib();
    let f = run(check(http.url("/huge"), Some("WhatsApp")), Duration::from_secs(10)).await;
    assert_eq!(f.result, Err(Reason::HttpBody), "{}", f.detail);
    assert!(f.detail.contains("first 1024 KiB"), "{}", f.detail);
    let grown_kib = rss_kib().saturating_sub(before);
    // The probe stopped reading: the server could not push the whole body
    // through, and the test process did not grow by anything like 50 MiB.
    support::wait_for("the server to notice the closed connection", Duration::from_secs(5), || async {
        let sent = http.knobs.huge_sent.load(Ordering::SeqCst);
        (sent < HUGE).then_some(())
    })
    .await;
    assert!(grown_kib < 16 * 1024, "RSS grew by {grown_kib} KiB");
}

#[tokio::test]
async fn self_signed_certificate_is_http_tls() {
    let (addr, _task) = self_signed_tls().await;
    let f = run(check(format!("https://localhost:{}/", addr.port()), None), T).await;
    assert_eq!(f.result, Err(Reason::HttpTls), "{}", f.detail);
    assert_eq!(f.http_status(), None);
}

#[tokio::test]
async fn closed_port_is_http_connect() {
    let port = closed_port().await;
    let f = run(check(format!("http://{port}/"), None), T).await;
    assert_eq!(f.result, Err(Reason::HttpConnect), "{}", f.detail);
    assert!(f.detail.to_lowercase().contains("refused"), "{}", f.detail);
}

#[tokio::test]
async fn redirects_are_followed_up_to_max_redirects() {
    let http = TestHttp::start().await;
    let f = run(check(http.url("/redirect?to=/ok"), Some("WhatsApp")), T).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    let f = run(check(http.url("/loop"), None), T).await;
    assert_eq!(f.result, Err(Reason::HttpRedirect), "{}", f.detail);
    assert!(f.detail.contains("more than 5 redirects"), "{}", f.detail);
    // max_redirects = 0: the 302 itself is judged.
    let mut c = check(http.url("/redirect?to=/ok"), None);
    c.max_redirects = 0;
    assert_eq!(run(c.clone(), T).await.http_status(), Some(302));
    c.expect_status = vec![StatusRange { low: 200, high: 200 }];
    assert_eq!(run(c, T).await.result, Err(Reason::HttpStatus));
}

#[tokio::test]
async fn a_redirect_to_another_scheme_is_refused_before_connecting() {
    let http = TestHttp::start().await;
    let f = run(check(http.url("/redirect?to=ftp://127.0.0.1/file"), None), T).await;
    assert_eq!(f.result, Err(Reason::HttpRedirect), "{}", f.detail);
    assert!(f.detail.contains("scheme \"ftp\""), "{}", f.detail);
}

#[tokio::test]
async fn answers_that_are_not_http_are_http_protocol() {
    let many_headers: String = (0..10_000).map(|i| format!("x-h{i}: v\r\n")).collect();
    for (what, reply) in [
        ("an invalid status line", b"HTTP/1.1 abc nonsense\r\n\r\n".to_vec()),
        ("garbage", b"\x00\x01\x02 this is not http at all\r\n\r\n".to_vec()),
        ("HTTP/0.9 (a body without a status line)", b"<html>hello</html>\n".to_vec()),
        ("10,000 headers", format!("HTTP/1.1 200 OK\r\n{many_headers}\r\nok").into_bytes()),
    ] {
        let (addr, _task) = raw_http(reply).await;
        let f = run(check(format!("http://{addr}/"), None), T).await;
        assert_eq!(f.result, Err(Reason::HttpProtocol), "{what}: {}", f.detail);
    }
}

#[tokio::test]
async fn credentials_in_the_url_are_never_shown() {
    let http = TestHttp::start().await;
    let url = http.url("/status/503").replace("http://", "http://admin:hunter2@");
    let f = run(check(url.clone(), None), T).await;
    assert_eq!(f.result, Err(Reason::HttpStatus));
    assert!(f.detail.contains("admin:***@") && !f.detail.contains("hunter2"), "{}", f.detail);
    let closed = closed_port().await;
    let f = run(check(format!("http://admin:hunter2@{closed}/"), None), T).await;
    assert!(!f.detail.contains("hunter2"), "{}", f.detail);
    let target = chatpulse::config::Check::Http(check(url, None).into()).target();
    assert!(target.contains("admin:***@") && !target.contains("hunter2"), "{target}");
}

fn signal_check(url: String) -> HttpCheck {
    HttpCheck {
        expect_status: vec![StatusRange { low: 401, high: 401 }],
        expect_headers: vec![reqwest::header::HeaderName::from_static("x-signal-timestamp")],
        ..check(url, None)
    }
}

#[tokio::test]
async fn the_platforms_own_header_tells_its_server_from_a_proxy_answering_in_its_place() {
    let server = TestHttp::start().await;
    let f =
        tokio::time::timeout(Duration::from_secs(10), run(signal_check(server.url("/v2/config")), T)).await.unwrap();
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    // The same status from something else (a load balancer's own 401): not Signal.
    let f =
        tokio::time::timeout(Duration::from_secs(10), run(signal_check(server.url("/status/401")), T)).await.unwrap();
    assert_eq!(f.result, Err(Reason::HttpHeader), "{}", f.detail);
    assert!(f.detail.contains("without the x-signal-timestamp header — not the platform's own server"), "{}", f.detail);
    // A proxy's 502 page: the missing header says more than the status.
    let f =
        tokio::time::timeout(Duration::from_secs(10), run(signal_check(server.url("/status/502")), T)).await.unwrap();
    assert_eq!((f.result, f.http_status()), (Err(Reason::HttpHeader), Some(502)), "{}", f.detail);
}
