//! `run` and `replay` decide alerts with one machine: the same sequence of
//! service statuses fed to the incident tracker of `run` (with a real
//! store and its outbox) and to the machine `replay` drives gives the same
//! alerts — including the sequences that once differed (Down → Unknown →
//! Down alerted twice in replay; Down → Unknown → Up lost its recovery).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ServiceStatus::{Degraded, Down, Unknown, Up};
use chatpulse::alerting::{AlertMachine, Decision, Policy};
use chatpulse::cause::{Cause, Fault};
use chatpulse::config::Config;
use chatpulse::incident::{ServiceSnapshot, Tracker, TrackerInput};
use chatpulse::probe::{Layer, Reason};
use chatpulse::store::{Retention, Store};
use chatpulse::verdict::{RootCause, ServiceStatus};

const CONFIG: &str = r#"
[alerts]
group_wait = "0s"
[alerts.email]
smtp = "smtp://127.0.0.1:9"
from = "chatpulse@example.org"
to = ["oncall@example.org"]
notify_on = ["down", "degraded"]
[[service]]
id = "whatsapp"
name = "WhatsApp"
  [[service.probe]]
  kind = "dns"
  query = "web.chat.test"
"#;

fn snapshot(status: ServiceStatus, at: i64) -> ServiceSnapshot {
    let cause = (status == Down || status == Degraded).then(|| RootCause {
        cause: Cause::new(
            Layer::Dns,
            [Fault { reason: Reason::DnsServfail, scope: "x".into() }],
            "dns: SERVFAIL".into(),
        ),
        chain: "dns: SERVFAIL".into(),
    });
    ServiceSnapshot { id: "whatsapp".into(), name: "WhatsApp".into(), status, at, cause, probes: Vec::new() }
}

/// The alerts `run`'s tracker queues for `statuses`, in order.
async fn run(config: &Config, statuses: &[ServiceStatus]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let retention = Retention { raw: Duration::from_secs(86_400), rollup: Duration::from_secs(86_400 * 400) };
    let store = Store::open(&dir.path().join("h.db"), retention).unwrap();
    let (_config_tx, config_rx) = tokio::sync::watch::channel(Arc::new(config.clone()));
    let channels = Arc::new(chatpulse::alert::AlertChannels::default());
    let tracker = Tracker::new(store.clone(), config_rx, channels, Arc::new(tokio::sync::Notify::new())).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(tracker.run(rx));
    let t0 = 1_800_000_000;
    for (i, status) in statuses.iter().enumerate() {
        // group_wait is 0: the tracker sends each decision before it reads
        // the next status, so no pause is needed between them.
        tx.send(TrackerInput::Service(snapshot(*status, t0 + i as i64 * 60))).unwrap();
    }
    drop(tx);
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("the tracker stops").unwrap();
    let rows = store.due_messages(i64::MAX, "email").await.unwrap();
    rows.into_iter().map(|r| r.message.event).collect()
}

/// The alerts `replay`'s machine decides for `statuses`.
fn replay(config: &Config, statuses: &[ServiceStatus]) -> Vec<String> {
    let mut machine = AlertMachine::new(Policy::from_config(config));
    statuses
        .iter()
        .enumerate()
        .filter_map(|(i, s)| machine.observe("whatsapp", *s, i as i64 * 60))
        .map(|d| match d {
            Decision::Down => "down".to_string(),
            Decision::Degraded => "degraded".to_string(),
            Decision::Recovered => "recovered".to_string(),
            Decision::Flapping { .. } => "flapping".to_string(),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_and_replay_decide_the_same_alerts() {
    let config = Config::parse(Path::new("config.toml"), CONFIG).unwrap();
    for (statuses, expected) in [
        (vec![Up, Down, Unknown, Down, Up], vec!["down", "recovered"]),
        (vec![Up, Down, Unknown, Up], vec!["down", "recovered"]),
        (vec![Up, Degraded, Down, Up], vec!["degraded", "down", "recovered"]),
        (vec![Up, Degraded, Unknown, Up], vec!["degraded", "recovered"]),
        (vec![Up, Unknown, Up, Down, Down, Up], vec!["down", "recovered"]),
    ] {
        let by_run = run(&config, &statuses).await;
        let by_replay = replay(&config, &statuses);
        assert_eq!(by_run, by_replay, "{statuses:?}");
        assert_eq!(by_replay, expected, "{statuses:?}");
    }
}
