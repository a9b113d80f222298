//! The history store on a small tmpfs that fills up under a running
//! monitor: the outage's alert still reaches the SMTP listener (from
//! memory), `/healthz` says `store: disk full`, the errors are counted, and
//! once space is freed writing resumes by itself. Needs root (mount).

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
[monitor]
interval = "200ms"
timeout = "150ms"
fail_after = 2
recover_after = 2
[server]
listen = "127.0.0.1:0"
[storage]
path = "{db}"
[alerts]
group_wait = "1s"
[alerts.email]
smtp = "smtp://127.0.0.1:{smtp}"
from = "chatpulse@example.org"
to = ["oncall@example.org"]
[[service]]
id = "whatsapp"
name = "WhatsApp"
  [[service.probe]]
  kind = "dns"
  query = "web.chat.test"
  server = "{dns}"
"#,
            db = disk_dir.join("history.db").display(),
            smtp = smtp.addr.port(),
            dns = dns.addr,
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
