//! No alert is lost to kill -9: the real binary is killed at pseudo-random
//! moments — during group_wait, right after a decision, while an e-mail is
//! on its way — in a bounded loop of outages and recoveries, and restarted
//! each time. Every incident's DOWN and recovery reach the (real, loopback)
//! SMTP listener at least once, the DOWN first; the store passes SQLite's
//! integrity check and no two incidents of the service overlap.

mod support;

use std::hash::BuildHasher;
use std::path::Path;
use std::time::Duration;

use support::daemon::Daemon;
use support::dns::{Mode, TestDns};
use support::smtp::SmtpServer;
use support::wait_for;

const ROUNDS: u64 = 10;

fn config(dir: &Path, smtp: u16, dns: &TestDns) -> std::path::PathBuf {
    let text = format!(
        r#"
{monitor}{store}
[alerts]
group_wait = "2s"
{email}
repeat = "0s"
{service}
"#,
        monitor = support::config::fast_monitor(),
        store = support::config::server_and_store(dir),
        email = support::config::email(smtp),
        service = support::config::dns_service("whatsapp", "WhatsApp", "web.chat.test", dns.addr),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A pseudo-random pause of up to 2.4 s (past group_wait, sometimes).
fn pause(n: u64) -> Duration {
    Duration::from_millis(std::hash::RandomState::new().hash_one(n) % 2_400)
}

async fn incidents(daemon: &Daemon) -> Option<Vec<serde_json::Value>> {
    daemon.json("/api/v1/incidents?service=whatsapp").await?["incidents"].as_array().cloned()
}

async fn kill_and_restart(daemon: Daemon, dir: &Path, path: &Path) -> Daemon {
    daemon.signal("KILL");
    drop(daemon);
    Daemon::start(dir, path, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_loses_no_alert_and_keeps_their_order() {
    let dns = TestDns::start().await;
    let smtp = SmtpServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), smtp.addr.port(), &dns);
    let mut daemon = Daemon::start(dir.path(), &path, &[]).await;
    let mut kills = 0;
    for round in 0..ROUNDS {
        wait_for("whatsapp up", Duration::from_secs(20), || async {
            (daemon.service("whatsapp").await?["status"] == "up").then_some(())
        })
        .await;
        dns.set_mode(Mode::ServFail);
        wait_for("an incident opened", Duration::from_secs(20), || async {
            let list = incidents(&daemon).await?;
            (list.len() as u64 == round + 1).then_some(())
        })
        .await;
        tokio::time::sleep(pause(2 * round)).await;
        daemon = kill_and_restart(daemon, dir.path(), &path).await;
        kills += 1;
        dns.set_mode(Mode::Normal);
        wait_for("the incident ended", Duration::from_secs(20), || async {
            let list = incidents(&daemon).await?;
            list.iter().all(|i| !i["ended_at"].is_null()).then_some(())
        })
        .await;
        tokio::time::sleep(pause(2 * round + 1)).await;
        daemon = kill_and_restart(daemon, dir.path(), &path).await;
        kills += 1;
    }
    assert!(kills >= 20);

    let list = wait_for("every incident closed", Duration::from_secs(20), || async {
        let list = incidents(&daemon).await?;
        list.iter().all(|i| !i["ended_at"].is_null()).then_some(list)
    })
    .await;
    assert_eq!(list.len() as u64, ROUNDS, "one incident per outage: {list:?}");
    let ids: Vec<i64> = list.iter().map(|i| i["id"].as_i64().unwrap()).collect();
    // Every incident's DOWN and recovery delivered at least once, DOWN first.
    let missing = |mails: &[support::smtp::Mail]| -> Vec<String> {
        let seen = |event: &str, id: i64| {
            mails.iter().any(|m| m.header("Message-ID").is_some_and(|h| h.starts_with(&format!("<{event}-{id}-"))))
        };
        ids.iter()
            .flat_map(|id| ["down", "recovered"].map(|event| (event, *id)))
            .filter(|(event, id)| !seen(event, *id))
            .map(|(event, id)| format!("{event} of incident {id}"))
            .collect()
    };
    let end = tokio::time::Instant::now() + Duration::from_secs(60);
    while !missing(&smtp.mails()).is_empty() && tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mails = smtp.mails();
    let ids_seen: Vec<String> = mails.iter().filter_map(|m| m.header("Message-ID")).collect();
    assert!(
        missing(&mails).is_empty(),
        "never delivered: {:?}; delivered: {ids_seen:?}; incidents: {list:?}\n{}",
        missing(&mails),
        daemon.all_logs()
    );
    for id in &ids {
        let first = |event: &str| {
            mails
                .iter()
                .position(|m| m.header("Message-ID").is_some_and(|h| h.starts_with(&format!("<{event}-{id}-"))))
                .unwrap()
        };
        assert!(first("down") < first("recovered"), "incident {id}: the recovery arrived before its DOWN");
    }
    // Incidents never overlap.
    let mut spans: Vec<(i64, i64)> = list
        .iter()
        .map(|i| {
            let t = |k: &str| {
                humantime::parse_rfc3339(i[k].as_str().unwrap())
                    .unwrap()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64
            };
            (t("started_at"), t("ended_at"))
        })
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "overlapping incidents: {pair:?}");
    }
    daemon.signal("TERM");
    let _ = tokio::time::timeout(Duration::from_secs(10), daemon.child.wait()).await;
    let conn = rusqlite::Connection::open(dir.path().join("history.db")).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}
