//! The history store on a small tmpfs that fills up under a running
//! monitor: the outage's alert still reaches the SMTP listener (from
//! memory), `/healthz` says `store: disk full`, the errors are counted, and
//! once space is freed writing resumes by itself (needs root: mount). And
//! the store's files — the database, its `-wal` — removed or replaced
//! under a running monitor, the history kept.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::daemon::Daemon;
use support::dns::{Mode, TestDns};
use support::smtp::SmtpServer;
use support::wait_for;

/// A 2 MiB tmpfs, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path) -> SmallDisk {
        let status = Command::new("mount").args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"]).arg(dir).status().unwrap();
        assert!(status.success(), "mount tmpfs failed (the test needs root)");
        SmallDisk(dir.to_path_buf())
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 16 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_neither_silences_the_alert_nor_hides_itself_and_writing_resumes() {
    if !support::needs_root("mount a small tmpfs") {
        return;
    }
    let dns = TestDns::start().await;
    let smtp = SmtpServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let disk_dir = dir.path().join("disk");
    std::fs::create_dir(&disk_dir).unwrap();
    let disk = SmallDisk::mount(&disk_dir);
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
{monitor}{store}
[alerts]
group_wait = "1s"
{email}
{service}
"#,
            monitor = support::config::fast_monitor(),
            store = support::config::server_and_store(&disk_dir),
            email = support::config::email(smtp.addr.port()),
            service = support::config::dns_service("whatsapp", "WhatsApp", "web.chat.test", dns.addr),
        ),
    )
    .unwrap();
    let daemon = Daemon::start(dir.path(), &config, &[]).await;
    wait_for("whatsapp up", Duration::from_secs(20), || async {
        (daemon.service("whatsapp").await?["status"] == "up").then_some(())
    })
    .await;

    let filler = disk.fill();
    let said = wait_for("/healthz naming the full disk", Duration::from_secs(30), || async {
        let (code, text) = daemon.get("/healthz").await?;
        (code == 503).then_some(text)
    })
    .await;
    assert!(said.contains("store: disk full"), "{said}");

    dns.set_mode(Mode::ServFail);
    let mails = wait_for("the DOWN alert, from memory", Duration::from_secs(30), || async {
        let mails = smtp.mails();
        (!mails.is_empty()).then_some(mails)
    })
    .await;
    assert!(mails[0].subject().starts_with("[chatpulse] WhatsApp DOWN — dns:"), "{}", mails[0].subject());
    let errors = daemon.metric(r#"chatpulse_store_errors_total{op="write"}"#).await.unwrap_or(0.0);
    assert!(errors > 0.0, "store errors counted");

    std::fs::remove_file(filler).unwrap();
    wait_for("writing resumed", Duration::from_secs(30), || async {
        let (code, _) = daemon.get("/healthz").await?;
        (code == 200).then_some(())
    })
    .await;
    dns.set_mode(Mode::Normal);
    wait_for("the recovery", Duration::from_secs(30), || async {
        smtp.mails().iter().any(|m| m.subject().contains("recovered")).then_some(())
    })
    .await;
    drop(daemon);
}

/// The store file removed under a running monitor: noticed within a
/// minute, recreated with its history, and the API reads the new file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_store_file_is_noticed_and_recreated_with_its_history() {
    let dns = TestDns::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[monitor]\ninterval = \"200ms\"\ntimeout = \"150ms\"\nfail_after = 2\nrecover_after = 2\n[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = \"{}\"\n[[service]]\nid = \"whatsapp\"\nname = \"WhatsApp\"\n  [[service.probe]]\n  kind = \"dns\"\n  query = \"web.chat.test\"\n  server = \"{}\"\n",
            db.display(),
            dns.addr
        ),
    )
    .unwrap();
    let daemon = Daemon::start(dir.path(), &config, &[]).await;
    let status = |want: &'static str| {
        let daemon = &daemon;
        async move {
            wait_for(want, Duration::from_secs(20), || async {
                (daemon.service("whatsapp").await?["status"] == want).then_some(())
            })
            .await
        }
    };
    status("up").await;
    dns.set_mode(Mode::ServFail);
    status("down").await;
    dns.set_mode(Mode::Normal);
    status("up").await;
    let before = daemon.json("/api/v1/incidents").await.unwrap()["incidents"].as_array().unwrap().len();
    assert_eq!(before, 1);

    std::fs::remove_file(&db).unwrap();
    wait_for("the file recreated", Duration::from_secs(60), || async { db.exists().then_some(()) }).await;
    assert!(daemon.logged("the file was removed under the running monitor"), "{}", daemon.all_logs());
    // History kept, and new history written to the new file.
    dns.set_mode(Mode::ServFail);
    status("down").await;
    let incidents = wait_for("both incidents in the recreated store", Duration::from_secs(20), || async {
        let list = daemon.json("/api/v1/incidents").await?["incidents"].as_array()?.clone();
        (list.len() == 2).then_some(list)
    })
    .await;
    assert_eq!(incidents.len(), 2);

    // Replaced by another file: moved aside, the store recreated in its place.
    let intruder = dir.path().join("intruder.db");
    std::fs::write(&intruder, b"not chatpulse's").unwrap();
    std::fs::rename(&intruder, &db).unwrap();
    wait_for("the replacement noticed", Duration::from_secs(60), || async {
        daemon.logged("the file was replaced under the running monitor").then_some(())
    })
    .await;
    let aside = wait_for("the replacement moved aside", Duration::from_secs(10), || async {
        std::fs::read_dir(dir.path())
            .ok()?
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().starts_with("history.db.replaced-"))
            .map(|e| e.path())
    })
    .await;
    assert_eq!(std::fs::read(aside).unwrap(), b"not chatpulse's");
    let incidents = wait_for("history still there", Duration::from_secs(20), || async {
        let list = daemon.json("/api/v1/incidents").await?["incidents"].as_array()?.clone();
        (list.len() == 2).then_some(list)
    })
    .await;
    assert_eq!(incidents.len(), 2);
    drop(daemon);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}

/// The `-wal` removed under a running monitor: the history that lived only
/// in it (not yet checkpointed) is written into a recreated store at once,
/// so a kill -9 right after loses nothing. Without that, the incident would
/// vanish with the unlinked file at the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_wal_is_noticed_and_the_history_in_it_survives_a_kill() {
    let dns = TestDns::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let wal = dir.path().join("history.db-wal");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[monitor]\ninterval = \"200ms\"\ntimeout = \"150ms\"\nfail_after = 2\nrecover_after = 2\n[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = \"{}\"\n[[service]]\nid = \"whatsapp\"\nname = \"WhatsApp\"\n  [[service.probe]]\n  kind = \"dns\"\n  query = \"web.chat.test\"\n  server = \"{}\"\n",
            db.display(),
            dns.addr
        ),
    )
    .unwrap();
    let daemon = Daemon::start(dir.path(), &config, &[]).await;
    let status = |want: &'static str| {
        let daemon = &daemon;
        async move {
            wait_for(want, Duration::from_secs(20), || async {
                (daemon.service("whatsapp").await?["status"] == want).then_some(())
            })
            .await
        }
    };
    status("up").await;
    dns.set_mode(Mode::ServFail);
    status("down").await;
    assert!(wal.exists(), "the store runs in WAL mode");

    std::fs::remove_file(&wal).unwrap();
    wait_for("the removed -wal noticed", Duration::from_secs(60), || async {
        daemon.logged("history.db-wal: the file was removed under the running monitor").then_some(())
    })
    .await;
    wait_for("the store recreated", Duration::from_secs(20), || async {
        daemon.logged("recreated, history kept").then_some(())
    })
    .await;
    daemon.signal("KILL");
    wait_for("the daemon gone", Duration::from_secs(10), || async {
        daemon.get("/healthz").await.is_none().then_some(())
    })
    .await;
    drop(daemon);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let incidents: i64 = conn.query_row("SELECT count(*) FROM incidents", [], |r| r.get(0)).unwrap();
    assert_eq!(incidents, 1, "the open incident, once only in the removed -wal, is in the store");
}
