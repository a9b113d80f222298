//! The PagerDuty and ntfy channels end to end (SPEC 9.6), with the real
//! binary, a real DNS server and a loopback receiver standing in for
//! PagerDuty's Events API v2 and for an ntfy topic: a trigger and its
//! resolve under one `dedup_key` across a kill -9 and restart, a 429
//! retried, a 400 given up and counted; ntfy's title, priority, tags, click
//! and bearer token.

mod support;

use std::path::Path;
use std::time::Duration;

use support::daemon::Daemon;
use support::dns::{Mode, TestDns};
use support::webhook::{Hit, Receiver};

const DEADLINE: Duration = Duration::from_secs(30);
const ROUTING_KEY: &str = "R0UT1NGKEYFORTHETEST";
const TOKEN: &str = "tk_ntfy_test_token";
const ENV: [(&str, &str); 2] = [("CHATPULSE_TEST_PD_KEY", ROUTING_KEY), ("CHATPULSE_TEST_NTFY_TOKEN", TOKEN)];

fn config(dir: &Path, alerts: &str, dns: &TestDns) -> std::path::PathBuf {
    support::config::write_alerting(dir, alerts, dns.addr)
}

fn pagerduty(url: &str) -> String {
    format!("[[alerts.pagerduty]]\nrouting_key_env = \"CHATPULSE_TEST_PD_KEY\"\nurl = \"{url}\"\n")
}

async fn delivered(receiver: &Receiver, n: usize) -> Vec<Hit> {
    support::at_least("deliveries", n, Duration::from_secs(60), || receiver.delivered()).await
}

/// A DOWN triggers (a 429 first: retried), the monitor is killed -9 and
/// restarted mid-incident, and the recovery resolves the same `dedup_key`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_triggers_and_resolves_one_dedup_key_across_a_kill_and_retries_a_429() {
    let dns = TestDns::start().await;
    let receiver = Receiver::start("").await;
    receiver.answer_next(&[429]);
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), &pagerduty(&receiver.url()), &dns);
    let daemon = Daemon::start(dir.path(), &path, &ENV).await;
    daemon.until_status("whatsapp", "up", DEADLINE).await;
    let sent = r#"chatpulse_alerts_sent_total{channel="pagerduty-1",event="down"}"#;
    assert_eq!(daemon.metric(sent).await, Some(0.0), "the channel's series exist before its first alert");

    dns.set_mode(Mode::ServFail);
    let trigger = delivered(&receiver, 1).await.remove(0);
    let hits = receiver.hits();
    assert_eq!((hits[0].answered, hits[1].answered), (429, 200), "the 429 was retried: {hits:?}");
    let event = &trigger.body;
    assert_eq!(event["event_action"], "trigger");
    assert_eq!(event["routing_key"], ROUTING_KEY, "the key comes from routing_key_env");
    assert_eq!(event["payload"]["severity"], "critical");
    assert_eq!(event["payload"]["source"], "test-vantage");
    let summary = event["payload"]["summary"].as_str().unwrap();
    assert!(summary.starts_with("WhatsApp DOWN — dns: "), "the subject without [chatpulse]: {summary}");
    assert!(event["links"][0]["href"].as_str().unwrap().ends_with("/services/whatsapp"), "{event}");
    let dedup_key = event["dedup_key"].as_str().unwrap().to_string();
    let incidents = daemon.json("/api/v1/incidents").await.unwrap();
    assert_eq!(
        dedup_key,
        incidents["incidents"][0]["group"].to_string(),
        "dedup_key is the incident group's id: {incidents}"
    );
    for file in ["history.db", "history.db-wal"] {
        let bytes = std::fs::read(dir.path().join(file)).unwrap_or_default();
        assert!(!bytes.windows(ROUTING_KEY.len()).any(|w| w == ROUTING_KEY.as_bytes()), "{file} holds the routing key");
    }

    daemon.signal("KILL");
    drop(daemon);
    let daemon = Daemon::start(dir.path(), &path, &ENV).await;
    dns.set_mode(Mode::Normal);
    let hits = delivered(&receiver, 2).await;
    let resolve = &hits[1].body;
    assert_eq!(resolve["event_action"], "resolve", "{hits:?}");
    assert_eq!(resolve["dedup_key"], dedup_key.as_str(), "the resolve closes the same incident");
    assert_eq!(resolve["routing_key"], ROUTING_KEY);
    let triggers = receiver.delivered().iter().filter(|h| h.body["event_action"] == "trigger").count();
    assert_eq!(triggers, 1, "the restart does not trigger again");
    daemon.until_status("whatsapp", "up", DEADLINE).await;
}

/// A 400 is an event PagerDuty will never take: given up after three
/// attempts, counted, and the resolve behind it still goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pagerduty_400_is_given_up_counted_and_the_queue_goes_on() {
    let dns = TestDns::start().await;
    let receiver = Receiver::start("").await;
    receiver.answer("trigger", 400);
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), &pagerduty(&receiver.url()), &dns);
    let daemon = Daemon::start(dir.path(), &path, &ENV).await;
    daemon.until_status("whatsapp", "up", DEADLINE).await;
    dns.set_mode(Mode::ServFail);
    daemon.until_status("whatsapp", "down", DEADLINE).await;
    dns.set_mode(Mode::Normal);
    let hits = delivered(&receiver, 1).await;
    assert_eq!(hits[0].body["event_action"], "resolve");
    let triggers: Vec<u16> = receiver.hits().iter().filter(|h| h.event == "trigger").map(|h| h.answered).collect();
    assert_eq!(triggers, [400, 400, 400], "three attempts, then given up");
    let failures = daemon.metric(r#"chatpulse_alert_failures_total{channel="pagerduty-1",event="down"}"#).await;
    assert_eq!(failures, Some(3.0));
}

/// ntfy gets the plain text with the subject as `Title`, priority 5 for the
/// DOWN and 3 for the recovery, tags, the service page as `Click`, and the
/// token from `token_env`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ntfy_gets_title_priority_tags_click_and_the_token() {
    let dns = TestDns::start().await;
    let receiver = Receiver::start("").await;
    let dir = tempfile::tempdir().unwrap();
    let alerts = format!("[[alerts.ntfy]]\nurl = \"{}\"\ntoken_env = \"CHATPULSE_TEST_NTFY_TOKEN\"\n", receiver.url());
    let path = config(dir.path(), &alerts, &dns);
    let daemon = Daemon::start(dir.path(), &path, &ENV).await;
    daemon.until_status("whatsapp", "up", DEADLINE).await;
    dns.set_mode(Mode::ServFail);
    let down = delivered(&receiver, 1).await.remove(0);
    let title = decoded(down.header("title").unwrap());
    assert!(title.starts_with("[chatpulse] WhatsApp DOWN — dns: "), "{title}");
    assert_eq!(down.header("priority"), Some("5"));
    assert!(down.header("tags").unwrap().contains("rotating_light"));
    assert!(down.header("click").unwrap().ends_with("/services/whatsapp"));
    assert_eq!(down.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    assert!(down.text.contains("WhatsApp") && down.text.contains("SERVFAIL"), "the plain text: {}", down.text);

    dns.set_mode(Mode::Normal);
    let recovered = delivered(&receiver, 2).await.remove(1);
    assert_eq!(recovered.header("priority"), Some("3"));
    let title = decoded(recovered.header("title").unwrap());
    assert!(title.contains("recovered"), "{title}");
    let sent = daemon.metric(r#"chatpulse_alerts_sent_total{channel="ntfy-1",event="recovered"}"#).await;
    assert_eq!(sent, Some(1.0));
}

/// A header as ntfy reads it: an RFC 2047 "Q" encoded word decoded (a
/// subject holds an em dash), anything else as it is.
fn decoded(header: &str) -> String {
    let Some(word) = header.strip_prefix("=?UTF-8?Q?").and_then(|w| w.strip_suffix("?=")) else {
        return header.to_string();
    };
    let mut bytes = Vec::new();
    let mut rest = word.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        match b {
            b'_' => bytes.push(b' '),
            b'=' => {
                let hex = std::str::from_utf8(&tail[..2]).unwrap();
                bytes.push(u8::from_str_radix(hex, 16).unwrap());
                rest = &tail[2..];
                continue;
            }
            other => bytes.push(other),
        }
        rest = tail;
    }
    String::from_utf8(bytes).unwrap()
}

/// `validate` names each channel and refuses `repeat` on PagerDuty (which
/// re-notifies by itself) and a missing routing key variable.
#[test]
fn validate_describes_the_channels_and_refuses_what_does_not_apply() {
    let dir = tempfile::tempdir().unwrap();
    let service = support::config::dns_service("whatsapp", "WhatsApp", "web.chat.test", "127.0.0.1:53");
    let write = |alerts: &str| {
        let path = dir.path().join("config.toml");
        std::fs::write(&path, format!("{alerts}\n{service}")).unwrap();
        path
    };
    let run = |path: &Path, env: &[(&str, &str)]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chatpulse"))
            .args(["validate", "--config"])
            .arg(path)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let path = write(
        "[[alerts.pagerduty]]\nrouting_key_env = \"CHATPULSE_TEST_PD_KEY\"\n[[alerts.ntfy]]\nurl = \"https://ntfy.sh/oncall\"\n",
    );
    let (code, out, err) = run(&path, &ENV);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("PagerDuty alerts (pagerduty-1) to https://events.pagerduty.com/v2/enqueue"), "{out}");
    assert!(out.contains("ntfy alerts (ntfy-1) to https://ntfy.sh/oncall"), "{out}");

    let (code, _, err) = run(&path, &[]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("[[alerts.pagerduty]] 1 routing_key_env names the environment variable CHATPULSE_TEST_PD_KEY, which is not set"),
        "{err}"
    );

    let path = write("[[alerts.pagerduty]]\nrouting_key_env = \"CHATPULSE_TEST_PD_KEY\"\nrepeat = \"1h\"\n");
    let (code, _, err) = run(&path, &ENV);
    assert_eq!(code, Some(2));
    assert!(err.contains("config.toml:3: [[alerts.pagerduty]] 1: unknown key \"repeat\""), "{err}");
}
