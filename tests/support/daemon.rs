//! The real `chatpulse run` binary as a child process, for end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running `chatpulse run`; killed when dropped.
pub struct Daemon {
    /// The child.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Everything it logged so far.
    pub logs: Arc<Mutex<Vec<String>>>,
    /// The config file it runs with.
    pub config: PathBuf,
}

impl Daemon {
    /// Starts `chatpulse run` on `config` (whose `[server] listen` should use
    /// port 0) in `dir`, and waits until it serves HTTP.
    pub async fn start(dir: &Path, config: &Path, extra_env: &[(&str, &str)]) -> Daemon {
        Daemon::launch(Command::new(env!("CARGO_BIN_EXE_chatpulse")), dir, config, extra_env).await
    }

    /// As [`Daemon::start`], with at most `nofile` file descriptors (as a
    /// systemd unit's `LimitNOFILE` would set), through `prlimit`, which
    /// execs chatpulse in its own process.
    pub async fn start_with_fd_limit(dir: &Path, config: &Path, nofile: u32) -> Daemon {
        let mut command = Command::new("prlimit");
        command.arg(format!("--nofile={nofile}:{nofile}")).arg("--").arg(env!("CARGO_BIN_EXE_chatpulse"));
        Daemon::launch(command, dir, config, &[]).await
    }

    async fn launch(mut command: Command, dir: &Path, config: &Path, extra_env: &[(&str, &str)]) -> Daemon {
        command
            .arg("--config")
            .arg(config)
            .arg("run")
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("chatpulse starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        let found = logs.clone();
        let base = super::wait_for("chatpulse to announce its HTTP address", Duration::from_secs(20), || {
            let found = found.clone();
            async move {
                let logs = found.lock().unwrap();
                logs.iter().find_map(|l| {
                    let start = l.find("http://")?;
                    let rest = &l[start..];
                    let end = rest.find("/metrics")?;
                    Some(rest[..end].to_string())
                })
            }
        })
        .await;
        Daemon { child, base, logs, config: config.to_path_buf() }
    }

    /// GET a path; the body as text, or None if the request failed.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let response = super::http_client().get(format!("{}{path}", self.base)).send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.ok()?))
    }

    /// GET a path as JSON.
    pub async fn json(&self, path: &str) -> Option<serde_json::Value> {
        let (_, body) = self.get(path).await?;
        serde_json::from_str(&body).ok()
    }

    /// The value of the first metric line starting with `series`.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics").await?;
        body.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    /// The status of service `id` in /api/v1/services.
    pub async fn service(&self, id: &str) -> Option<serde_json::Value> {
        let doc = self.json("/api/v1/services").await?;
        doc["services"].as_array()?.iter().find(|s| s["id"] == id).cloned()
    }

    /// Waits (at most `deadline`) until service `id` has `status`.
    pub async fn until_status(&self, id: &str, status: &str, deadline: std::time::Duration) {
        super::wait_for(&format!("{id} {status}"), deadline, || async {
            (self.service(id).await?["status"] == status).then_some(())
        })
        .await;
    }

    /// Resident memory of the process in KiB (Linux `VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.id().expect("still running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc readable");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS present")
    }

    /// Sends a signal by name (HUP, TERM, KILL).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let status = std::process::Command::new("kill").arg(format!("-{name}")).arg(pid).status().unwrap();
        assert!(status.success());
    }

    /// True when a log line contains `text`.
    pub fn logged(&self, text: &str) -> bool {
        self.logs.lock().unwrap().iter().any(|l| l.contains(text))
    }

    /// All logs, for assertion messages.
    pub fn all_logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}
