//! What goes wrong with the history store while the monitor runs (disk
//! full, read-only, the file gone): counted, logged at most once a minute,
//! and kept as the one-line fault `/healthz` reports until a commit
//! succeeds again. Monitoring and alerting never wait on it (README,
//! "History, uptime and incidents").

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::error;

/// Shared between the store's writer (which records) and the daemon
/// (which exports and reports).
#[derive(Debug, Default)]
pub struct StoreFaults {
    writes: AtomicU64,
    reads: AtomicU64,
    current: Mutex<Option<String>>,
    last_logged: Mutex<Option<Instant>>,
    /// A store file (the database, its -wal or -shm) lost under the
    /// running monitor and not yet recreated: reported until it is, even
    /// while writes into the unlinked file still succeed.
    lost: Mutex<Option<String>>,
}

/// The one-line fault for an SQLite error.
fn describe(e: &rusqlite::Error) -> String {
    use rusqlite::ffi::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => "store: disk full".into(),
        Some(ErrorCode::ReadOnly) => "store: read-only".into(),
        Some(ErrorCode::CannotOpen) => "store: the file cannot be opened".into(),
        Some(ErrorCode::SystemIoFailure) => "store: I/O error".into(),
        _ => format!("store: {e}"),
    }
}

impl StoreFaults {
    /// A failed write (or read, when `write` is false).
    pub fn record(&self, write: bool, e: &rusqlite::Error) {
        let counter = if write { &self.writes } else { &self.reads };
        counter.fetch_add(1, Ordering::Relaxed);
        let fault = describe(e);
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(fault.clone());
        let mut last = self.last_logged.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
            error!("{fault} ({e}): history is not being written; monitoring and alerts go on");
            *last = Some(Instant::now());
        }
    }

    /// A commit succeeded: whatever was wrong is over.
    pub fn cleared(&self) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(fault) = current.take() {
            tracing::info!("{fault} is over: history is written again");
        }
    }

    /// A store file lost and not recreated (`Some`), or recreated (`None`).
    pub fn file_lost(&self, what: Option<String>) {
        *self.lost.lock().unwrap_or_else(|p| p.into_inner()) = what;
    }

    /// The fault now, if any.
    pub fn current(&self) -> Option<String> {
        let lost = self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone();
        lost.or_else(|| self.current.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// Failed writes and reads so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.writes.load(Ordering::Relaxed), self.reads.load(Ordering::Relaxed))
    }
}
