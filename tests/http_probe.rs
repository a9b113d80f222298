//! The http probe against a real axum server and a real TLS endpoint on
//! loopback: every http reason of SPEC section 3 from a real request.

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use chatpulse::config::{HttpCheck, HttpMethod, StatusRange};
use chatpulse::probe::http::{HttpProbe, client};
use chatpulse::probe::{Finding, Probe, Reason};
use support::http::{HUGE, TestHttp, closed_port, self_signed_tls};

fn check(url: String, body_contains: Option<&str>) -> HttpCheck {
    HttpCheck {
        url,
        method: HttpMethod::Get,
        expect_status: vec![StatusRange { low: 200, high: 399 }],
        body_contains: body_contains.map(str::to_string),
    }
}

async fn run(check: HttpCheck, timeout: Duration) -> Finding {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    HttpProbe::new(&check, timeout, client().unwrap()).run().await
}

const T: Duration = Duration::from_secs(3);

#[tokio::test]
async fn ok_page_with_expected_text_passes() {
    let http = TestHttp::start().await;
    let f = run(check(http.url("/ok"), Some("WhatsApp")), T).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    assert_eq!(f.http_status, Some(200));
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
    assert_eq!(f.http_status, Some(503));
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
    assert_eq!(f.http_status, Some(200));
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
    assert_eq!(f.http_status, None);
}

#[tokio::test]
async fn closed_port_is_http_connect() {
    let port = closed_port().await;
    let f = run(check(format!("http://{port}/"), None), T).await;
    assert_eq!(f.result, Err(Reason::HttpConnect), "{}", f.detail);
    assert!(f.detail.to_lowercase().contains("refused"), "{}", f.detail);
}
