//! Webhooks end to end with the real binary, a real DNS server, a real SMTP
//! listener and a real receiving HTTP server that checks the HMAC
//! signature: the documented JSON body beside the e-mail (one Message-ID
//! for both), a Slack-format hook, the receiver's outage and its 500
//! answers (delayed, never lost, never reordered), and a permanent 4xx
//! given up after three attempts without blocking what follows.

mod support;

use std::path::Path;
use std::time::Duration;

use support::daemon::Daemon;
use support::dns::{Mode, TestDns};
use support::smtp::SmtpServer;
use support::wait_for;
use support::webhook::{Hit, Receiver};

const DEADLINE: Duration = Duration::from_secs(30);
const SECRET: &str = "s3cret-for-the-test";

fn config(dir: &Path, alerts: &str, dns: &TestDns) -> std::path::PathBuf {
    support::config::write_alerting(dir, alerts, dns.addr)
}

fn hook(url: &str, extra: &str) -> String {
    format!("[[alerts.webhook]]\nurl = \"{url}\"\n{extra}\n")
}

async fn start(dir: &Path, path: &Path) -> Daemon {
    Daemon::start(dir, path, &[("CHATPULSE_TEST_HOOK_SECRET", SECRET)]).await
}

async fn until_status(daemon: &Daemon, status: &str) {
    daemon.until_status("whatsapp", status, DEADLINE).await;
}

async fn until_delivered(receiver: &Receiver, n: usize) -> Vec<Hit> {
    support::at_least("webhook deliveries", n, Duration::from_secs(60), || receiver.delivered()).await
}

/// A DNS outage and its end: the JSON hook, the Slack hook and the e-mail
/// all hear of both, the JSON body carries what README, "Webhooks", lists, and
/// its Message-ID is the e-mail's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_posted_signed_as_json_and_slack_beside_the_email() {
    let dns = TestDns::start().await;
    let smtp = SmtpServer::start().await;
    let json = Receiver::start(SECRET).await;
    let slack = Receiver::start(SECRET).await;
    let dir = tempfile::tempdir().unwrap();
    let alerts = format!(
        "{}{}repeat = \"0s\"\n{}",
        hook(&json.url(), "secret_env = \"CHATPULSE_TEST_HOOK_SECRET\""),
        hook(&slack.url(), "format = \"slack\""),
        support::config::email(smtp.addr.port()),
    );
    let path = config(dir.path(), &alerts, &dns);
    let daemon = start(dir.path(), &path).await;
    until_status(&daemon, "up").await;
    for channel in ["email", "webhook-1", "webhook-2"] {
        let series = format!(r#"chatpulse_alerts_sent_total{{channel="{channel}",event="down"}}"#);
        assert_eq!(daemon.metric(&series).await, Some(0.0), "{channel} declared before its first alert");
    }

    dns.set_mode(Mode::ServFail);
    let down = until_delivered(&json, 1).await.remove(0);
    assert_eq!(down.event, "down");
    assert_eq!(down.signed_ok, Some(true), "the signature is HMAC-SHA256 of the body under secret_env");
    let body = &down.body;
    assert_eq!(body["event"], "down");
    assert_eq!(body["vantage"], "test-vantage");
    assert_eq!(body["services"][0]["id"], "whatsapp");
    assert_eq!(body["services"][0]["name"], "WhatsApp");
    assert_eq!(body["services"][0]["status"], "down");
    assert_eq!(body["cause"]["layer"], "dns");
    assert_eq!(body["cause"]["reason"], "dns_servfail");
    assert!(body["cause"]["summary"].as_str().unwrap().contains("SERVFAIL"), "{body}");
    assert!(body["started_at"].as_str().unwrap().ends_with('Z'), "{body}");
    assert!(body["ended_at"].is_null(), "{body}");
    assert!(body["group"].is_i64(), "{body}");
    assert!(body["services"][0]["url"].as_str().unwrap().ends_with("/services/whatsapp"), "{body}");

    let mails = support::at_least("e-mails", 1, DEADLINE, || smtp.mails()).await;
    assert_eq!(
        body["message_id"].as_str(),
        mails[0].header("Message-ID").as_deref(),
        "one alert, one Message-ID on every channel"
    );
    let text = until_delivered(&slack, 1).await[0].body["text"].as_str().unwrap().to_string();
    assert!(text.contains("WhatsApp DOWN") && text.contains("SERVFAIL"), "{text}");
    assert_eq!(slack.hits()[0].signed_ok, None, "no secret_env, no signature");

    dns.set_mode(Mode::Normal);
    let hits = until_delivered(&json, 2).await;
    let recovered = &hits[1].body;
    assert_eq!(recovered["event"], "recovered");
    assert_eq!(recovered["services"][0]["status"], "up");
    assert!(recovered["ended_at"].as_str().unwrap().ends_with('Z'), "{recovered}");
    assert_eq!(recovered["cause"]["reason"], "dns_servfail", "a recovery says what it recovered from");
    let text = until_delivered(&slack, 2).await[1].body["text"].as_str().unwrap().to_string();
    assert!(text.contains("• WhatsApp recovered from dns: ") && !text.contains("is UP"), "{text}");
    let sent = daemon.metric(r#"chatpulse_alerts_sent_total{channel="webhook-1",event="recovered"}"#).await;
    assert_eq!(sent, Some(1.0));
    assert_eq!(json.hits().len(), 2, "nothing posted twice");
}

/// The receiver answers 500, then goes away while the service recovers,
/// then comes back: the DOWN and the recovery arrive once each, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_and_an_outage_of_the_receiver_delay_alerts_but_lose_and_reorder_none() {
    let dns = TestDns::start().await;
    let failing = Receiver::start(SECRET).await;
    failing.answer("down", 500);
    let port = failing.addr.port();
    let dir = tempfile::tempdir().unwrap();
    let alerts = hook(&failing.url(), "secret_env = \"CHATPULSE_TEST_HOOK_SECRET\"");
    let path = config(dir.path(), &alerts, &dns);
    let daemon = start(dir.path(), &path).await;
    until_status(&daemon, "up").await;

    dns.set_mode(Mode::ServFail);
    wait_for("two failed attempts (500)", DEADLINE, || async {
        (daemon.metric(r#"chatpulse_alert_failures_total{channel="webhook-1",event="down"}"#).await? >= 2.0)
            .then_some(())
    })
    .await;
    assert!(failing.hits().iter().all(|h| h.answered == 500 && h.event == "down"));
    failing.stop();

    dns.set_mode(Mode::Normal);
    until_status(&daemon, "up").await;
    let queued = wait_for("the recovery queued behind the DOWN", DEADLINE, || async {
        let n = daemon.metric(r#"chatpulse_alert_queue_length{channel="webhook-1"}"#).await?;
        (n >= 2.0).then_some(n)
    })
    .await;
    assert_eq!(queued, 2.0);

    let receiver = Receiver::start_on(port, SECRET).await;
    let hits = until_delivered(&receiver, 2).await;
    let events: Vec<&str> = hits.iter().map(|h| h.event.as_str()).collect();
    assert_eq!(events, ["down", "recovered"], "the DOWN first, then its recovery");
    assert!(hits.iter().all(|h| h.signed_ok == Some(true)));
    wait_for("an empty queue", DEADLINE, || async {
        (daemon.metric(r#"chatpulse_alert_queue_length{channel="webhook-1"}"#).await? == 0.0).then_some(())
    })
    .await;
    assert_eq!(receiver.hits().len(), 2, "nothing posted twice");
}

/// A 400 is permanent: given up after three attempts, counted and logged,
/// and the recovery behind it still goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_4xx_is_given_up_after_three_attempts_and_the_queue_goes_on() {
    let dns = TestDns::start().await;
    let receiver = Receiver::start(SECRET).await;
    receiver.answer("down", 400);
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), &hook(&receiver.url(), ""), &dns);
    let daemon = start(dir.path(), &path).await;
    until_status(&daemon, "up").await;

    dns.set_mode(Mode::ServFail);
    until_status(&daemon, "down").await;
    dns.set_mode(Mode::Normal);
    let hits = until_delivered(&receiver, 1).await;
    assert_eq!(hits[0].event, "recovered");
    let downs: Vec<u16> = receiver.hits().iter().filter(|h| h.event == "down").map(|h| h.answered).collect();
    assert_eq!(downs, [400, 400, 400], "three attempts, then given up");
    let failures = daemon.metric(r#"chatpulse_alert_failures_total{channel="webhook-1",event="down"}"#).await;
    assert_eq!(failures, Some(3.0));
    assert!(daemon.logged("alert rejected for good after 3 attempts"), "{}", daemon.all_logs());
}

/// An SMTP server that accepts connections and never says a word: the
/// webhook still hears of the outage and its end, on time, and the
/// e-mail's queue shows what waits for it (SPEC 9.6: channels are
/// independent; each attempt has a deadline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smtp_server_that_never_greets_holds_back_only_the_email() {
    let dns = TestDns::start().await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let smtp_port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let receiver = Receiver::start(SECRET).await;
    let dir = tempfile::tempdir().unwrap();
    let alerts = format!("{}{}", hook(&receiver.url(), ""), support::config::email(smtp_port));
    let path = config(dir.path(), &alerts, &dns);
    let daemon = start(dir.path(), &path).await;
    until_status(&daemon, "up").await;

    dns.set_mode(Mode::ServFail);
    assert_eq!(until_delivered(&receiver, 1).await[0].event, "down");
    dns.set_mode(Mode::Normal);
    let hits = until_delivered(&receiver, 2).await;
    assert_eq!(hits[1].event, "recovered", "the recovery is not held behind the silent SMTP server");
    let queued = daemon.metric(r#"chatpulse_alert_queue_length{channel="email"}"#).await;
    assert!(queued.is_some_and(|n| n >= 1.0), "the e-mail's queue shows its waiting DOWN: {queued:?}");
    assert_eq!(daemon.metric(r#"chatpulse_alerts_sent_total{channel="email",event="down"}"#).await, Some(0.0));

    // The operator sees what waits and gives the stuck DOWN up, beside the
    // running daemon (SPEC 9.6).
    let outbox = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chatpulse"))
            .arg("--config")
            .arg(&path)
            .arg("outbox")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, listed, _) = outbox(&["--channel", "email", "--json"]);
    assert_eq!(code, Some(0));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let waiting = listed["waiting"].as_array().unwrap();
    assert!(!waiting.is_empty() && waiting.iter().all(|w| w["channel"] == "email"), "{listed}");
    assert_eq!(waiting[0]["event"], "down");
    let id = waiting[0]["id"].as_i64().unwrap();
    let (code, said, _) = outbox(&["drop", &id.to_string()]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains(&format!("message {id} (email) given up")), "{said}");
    let (_, table, _) = outbox(&["--channel", "email"]);
    assert!(!table.lines().any(|l| l.starts_with(&format!("{id} "))), "given up, no longer waiting:\n{table}");
    let (code, _, err) = outbox(&["drop", &id.to_string()]);
    assert_eq!(code, Some(2));
    assert!(err.contains(&format!("no message {id} waits in the outbox")), "{err}");
    held.abort();
}
