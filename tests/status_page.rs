//! The status page of a running chatpulse: server-rendered, no JavaScript,
//! each service's state and root cause, the 90-day bar, the incidents, and
//! the offline banner.

mod support;

use std::time::Duration;

use support::daemon::Daemon;
use support::dns::{Mode, TestDns};
use support::wait_for;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_shows_each_service_its_state_cause_bar_and_banner() {
    let dns = TestDns::start().await;
    let guard = TestDns::start().await;
    let closed = support::http::closed_port().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"
[monitor]
vantage = "status-test"
interval = "200ms"
timeout = "150ms"
fail_after = 2
{store}
[[guard]]
kind = "dns"
query = "ns1.chat.test"
server = "{guard}"
[[service]]
id = "whatsapp"
name = "WhatsApp <Web>"
  [[service.probe]]
  kind = "dns"
  query = "web.chat.test"
  server = "{dns}"
[[service]]
id = "signal"
name = "Signal"
  [[service.probe]]
  kind = "http"
  url = "http://{closed}/"
"#,
        store = support::config::server_and_store(dir.path()),
        guard = guard.addr,
        dns = dns.addr,
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let daemon = Daemon::start(dir.path(), &path, &[]).await;
    wait_for("signal down", Duration::from_secs(15), || async {
        (daemon.service("signal").await?["status"] == "down").then_some(())
    })
    .await;
    wait_for("whatsapp up", Duration::from_secs(15), || async {
        (daemon.service("whatsapp").await?["status"] == "up").then_some(())
    })
    .await;

    // History is committed within about a second; wait for today's mark.
    let (code, html) = wait_for("today's down mark", Duration::from_secs(15), || async {
        let (code, html) = daemon.get("/").await?;
        html.contains(r#"<span class="down" title="#).then_some((code, html))
    })
    .await;
    assert_eq!(code, 200);
    assert!(html.to_ascii_lowercase().starts_with("<!doctype html>"));
    assert!(!html.contains("<script"), "works without JavaScript");
    assert!(html.contains(r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#));
    assert!(html.contains(r#"http-equiv="refresh""#), "refreshes itself");
    assert!(html.contains("vantage <b>status-test</b>"));
    assert!(html.contains("WhatsApp &lt;Web&gt;"), "names are escaped");
    assert!(html.contains(r#"<section class="service down" id="signal">"#), "{html}");
    assert!(html.contains(r#"<span class="badge down">DOWN</span>"#));
    assert!(html.contains("Root cause: http: http-1 http_connect — connection refused (http://127.0.0.1:"), "{html}");
    assert!(html.contains(r#"<section class="service up" id="whatsapp">"#));
    assert!(html.contains(r#"<p class="summary">1 of 2 services down</p>"#), "the headline count");
    let (down_at, up_at) = (html.find(r#"id="signal""#).unwrap(), html.find(r#"id="whatsapp""#).unwrap());
    assert!(down_at < up_at, "Signal, down, comes before WhatsApp, up, though listed after it");
    assert_eq!(html.matches(r#"<div class="bar""#).count(), 2);
    let signal = &html[html.find(r#"id="signal""#).unwrap()..];
    let bar = &signal[signal.find(r#"<div class="bar""#).unwrap()..];
    let bar = &bar[..bar.find("</div>").unwrap()];
    assert_eq!(bar.matches("<span").count(), 90, "one mark per day for 90 days");
    assert!(bar.contains(r#"<span class="down""#), "today is marked down: {bar}");
    assert!(signal.contains("<b>down</b>"), "the ongoing incident is listed");
    assert!(html.contains(r#"<a href="/services/signal">Signal</a>"#), "each service links to its page");

    // The service page: state, cause, two SVG charts, probes, incidents.
    let (code, page) = daemon.get("/services/signal").await.expect("the service page answers");
    assert_eq!(code, 200);
    assert!(!page.contains("<script"), "works without JavaScript");
    assert!(page.contains("<h1>Signal</h1>") && page.contains(r#"<span class="badge down">DOWN</span>"#), "{page}");
    assert!(page.contains("Root cause: http: http-1 http_connect — connection refused (http://127.0.0.1:"), "{page}");
    assert_eq!(page.matches(r#"<svg class="chart""#).count(), 2, "a 24 h and a 30 d chart");
    let day = &page[page.find("Last 24 hours").unwrap()..];
    let day = &day[..day.find("</svg>").unwrap()];
    assert_eq!(day.matches("<rect").count(), 24, "one bar per hour");
    assert!(day.contains(r##"fill="#d93025""##), "the current hour is down: {day}");
    assert!(page.contains("http-1") && page.contains("http_connect"), "probes with their last result");
    assert!(page.contains("Incidents, last 30 days") && page.contains("<b>down</b>"), "{page}");
    let (_, escaped) = daemon.get("/services/whatsapp").await.unwrap();
    assert!(escaped.contains("WhatsApp &lt;Web&gt;"), "names are escaped");
    let (code, body) = daemon.get("/services/nosuch").await.unwrap();
    assert_eq!(code, 404);
    assert!(body.contains("\"error\""), "{body}");
    assert!(!html.contains("banner offline"));

    guard.set_mode(Mode::Silent);
    let html = wait_for("the offline banner", Duration::from_secs(15), || async {
        let (_, html) = daemon.get("/").await?;
        html.contains("banner offline").then_some(html)
    })
    .await;
    assert!(html.contains("This monitor is offline"));
    assert!(html.contains("dns-1: ns1.chat.test A @"), "the banner names the guards: {html}");
    assert!(html.contains(r#"<span class="badge unknown">UNKNOWN</span>"#));
    let api = daemon.json("/api/v1/services").await.expect("the API answers");
    assert_eq!(api["guards"][0]["id"], "dns-1", "{api}");
    assert_eq!(api["guards"][0]["kind"], "dns");
    assert_eq!(api["online"], false);
}
