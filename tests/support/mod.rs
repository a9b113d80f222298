//! Real servers on loopback for the integration tests, and helpers to wait
//! on conditions with a deadline (never a bare sleep).

#![allow(dead_code)]

pub mod bgp;
pub mod config;
pub mod daemon;
pub mod dns;
pub mod http;
pub mod knot;
pub mod mtproto;
pub mod pki;
pub mod ris;
pub mod smtp;
pub mod webhook;
pub mod whatsapp;

use std::future::Future;
use std::time::Duration;

/// Polls `check` every 50 ms until it returns `Some`, or panics with `what`
/// after `deadline`. The deadline also bounds each attempt: a check that
/// hangs (a request to a stuck server) cannot hold the test past it.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Ok(Some(value)) = tokio::time::timeout_at(end, check()).await {
            return value;
        }
        if tokio::time::Instant::now() >= end {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `items()` holds at least `n` things (e-mails, webhook
/// posts …) and returns them all.
pub async fn at_least<T>(what: &str, n: usize, deadline: Duration, items: impl Fn() -> Vec<T>) -> Vec<T> {
    wait_for(&format!("{n} {what}"), deadline, || {
        let found = items();
        async move { (found.len() >= n).then_some(found) }
    })
    .await
}

/// The longest any single request or exchange in a test may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A reqwest client whose every request is bounded by [`REQUEST_TIMEOUT`].
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().expect("a plain reqwest client builds")
}

/// True when the tests run as root (network namespaces, tmpfs mounts).
/// `id -u` rather than libc::getuid: the tests stay free of unsafe code.
pub fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// For a test that needs root: false (and a line saying why the test is
/// skipped) when it is not; CI runs as root and runs them all.
pub fn needs_root(what: &str) -> bool {
    if is_root() {
        return true;
    }
    eprintln!("skipped: needs root to {what} (CI runs it as root)");
    false
}

/// Raises this test process's soft descriptor limit to its hard limit
/// (a contributor's shell often has a soft limit of 1,024: too few to hold
/// a flood of connections beside the test's own sockets).
fn raise_fd_limit() {
    let pid = std::process::id().to_string();
    let hard = std::process::Command::new("prlimit")
        .args(["--pid", &pid, "--nofile", "--raw", "--noheadings", "--output", "HARD"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string());
    if let Some(hard) = hard.filter(|h| h.chars().all(|c| c.is_ascii_digit()) && !h.is_empty()) {
        let _ =
            std::process::Command::new("prlimit").args(["--pid", &pid, &format!("--nofile={hard}:{hard}")]).status();
    }
}

/// Opens up to `n` TCP connections from `from` (port chosen by the kernel)
/// to `to` and holds them without sending a byte; a connection that cannot
/// be made within 2 s is skipped. For floods of idle clients or peers.
pub async fn idle_connections(
    from: std::net::IpAddr,
    to: std::net::SocketAddr,
    n: usize,
) -> Vec<tokio::net::TcpStream> {
    raise_fd_limit();
    let mut held = Vec::new();
    for _ in 0..n {
        let socket = match from {
            std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        };
        let Ok(socket) = socket else { continue };
        if socket.bind((from, 0).into()).is_err() {
            continue;
        }
        if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(2), socket.connect(to)).await {
            held.push(stream);
        }
    }
    held
}
