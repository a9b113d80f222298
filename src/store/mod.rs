//! The history store: SQLite (bundled, WAL) at `[storage].path`.
//!
//! What is kept: every change of a service's status (uptime is computed
//! from these, exactly, to the second), runs of identical probe results
//! (a new row only when a result changes, so a year of "ok" is one row),
//! daily rollups per probe, incidents, and the alert outbox.
//!
//! One writer thread owns the write connection. Recording a run or a status
//! never waits: it queues a job, and jobs are committed in batches about
//! once a second, so a slow disk never delays a probe. Operations whose
//! result matters (opening an incident, enqueueing an alert) commit before
//! they answer: an alert is durable before delivery is tried. Readers (the
//! CLI, the API) use their own read-only connections; WAL lets them read
//! while `run` writes. A heartbeat row says until when the monitor was
//! alive, so the time chatpulse was not running — even after kill -9 —
//! counts as unknown, not as up or down.

pub mod faults;
mod history;
mod incidents;
pub mod outbox;
mod reader;
mod schema;
pub mod uptime;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc as sync_mpsc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;
use tracing::error;

pub use incidents::{Incident, NewIncident, NewMessage, OutboxRow, PendingAlert, Spillover};
pub use reader::{Reader, Report};

use crate::verdict::ServiceStatus;

/// What went wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("history store: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The file was written by a newer chatpulse.
    #[error("history store: schema version {found} is newer than this chatpulse understands ({known})")]
    TooNew {
        /// Version in the file.
        found: usize,
        /// Newest version known here.
        known: usize,
    },
    /// The file predates this chatpulse's schema and has not been upgraded.
    #[error(
        "history store: schema version {found} is older than this chatpulse writes ({known}); start `chatpulse run` once to upgrade it"
    )]
    Older {
        /// Version in the file.
        found: usize,
        /// The version this build writes.
        known: usize,
    },
    /// The file does not exist (readers never create one).
    #[error("no history at {0} (has `chatpulse run` used this config yet?)")]
    Missing(PathBuf),
    /// The writer thread is gone.
    #[error(
        "another `chatpulse run` is using this history store; two monitors cannot share one (give each its own [storage] path)"
    )]
    InUse(PathBuf),
    /// The directory of the store does not exist.
    #[error("the directory of the history store does not exist ([storage] path)")]
    NoDirectory(PathBuf),
    /// The writer thread is gone.
    #[error("history store: the writer stopped")]
    Stopped,
    /// The batch holding the operation could not be committed.
    #[error("history store: the write could not be committed (see the log)")]
    NotCommitted,
    /// The writer thread could not start.
    #[error("history store: cannot start the writer thread: {0}")]
    Thread(std::io::Error),
}

/// Retention, from `[storage]`.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Per-run results.
    pub raw: Duration,
    /// Rollups, status history, incidents, sent alerts.
    pub rollup: Duration,
}

/// A probe run to record.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Service id (or `_guard`).
    pub service: String,
    /// Probe id.
    pub probe: String,
    /// Unix seconds.
    pub at: i64,
    /// `ok` or the reason.
    pub result: &'static str,
    /// Duration in milliseconds.
    pub duration_ms: f64,
    /// The finding's detail.
    pub detail: String,
}

/// A service status change to record.
#[derive(Debug, Clone)]
pub struct StatusRecord {
    /// Service id.
    pub service: String,
    /// Unix seconds.
    pub at: i64,
    /// The new status.
    pub status: ServiceStatus,
    /// Root cause (layer, summary).
    pub cause: Option<(String, String)>,
}

/// The writer's side: the connection and what it batches.
pub(crate) struct Writer {
    conn: Connection,
    in_batch: bool,
    runs: history::RunState,
    retention: Retention,
    last_retention: i64,
    /// Holds the one-writer lock on the store file.
    _lock: std::fs::File,
    /// Where failed writes are recorded.
    faults: Arc<faults::StoreFaults>,
    /// The store's path, watched for the file being removed or replaced.
    path: std::path::PathBuf,
    last_file_check: std::time::Instant,
    /// The inodes of this connection's `-wal` and `-shm` once seen: a
    /// change means the file was removed or replaced under it.
    companions: [Option<u64>; 2],
}

/// The files beside the database that are part of the store.
const COMPANIONS: [&str; 2] = ["-wal", "-shm"];

/// How often the writer checks that its file is still the one at its path.
const FILE_CHECK: Duration = Duration::from_secs(30);

type Job = Box<dyn FnOnce(&mut Writer) + Send>;
/// Runs in the writer and returns what to do once the batch is committed
/// (told whether the commit succeeded): the answer goes out only then.
type UrgentJob = Box<dyn FnOnce(&mut Writer) -> Box<dyn FnOnce(bool) + Send> + Send>;

enum Msg {
    /// Batched with others.
    Job(Job),
    /// Committed (with everything before it) before it runs its reply.
    Urgent(UrgentJob),
    /// Commit, mark the monitor stopped at this time, and end.
    Stop(Vec<String>, i64, sync_mpsc::Sender<()>),
}

/// Handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: sync_mpsc::Sender<Msg>,
    /// What went wrong with writing, for metrics and `/healthz`.
    faults: Arc<faults::StoreFaults>,
    /// Random, made when the store was created: part of every Message-ID,
    /// so two stores never reuse one.
    id: Arc<str>,
}

/// How long a batch may stay open.
const BATCH_WINDOW: Duration = Duration::from_secs(1);

/// Refuses a store path whose directory does not exist (SQLite would say
/// only "unable to open database file").
pub fn check_directory(path: &Path) -> Result<(), StoreError> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => Err(StoreError::NoDirectory(path.to_path_buf())),
        _ => Ok(()),
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// Status words are read back in this one place, and an unknown one fails
/// the query loudly instead of turning into some default status.
impl rusqlite::types::FromSql for crate::verdict::ServiceStatus {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let word = value.as_str()?;
        crate::verdict::ServiceStatus::from_word(word).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown status word {word:?} in the store").into())
        })
    }
}

/// True for the errors of a file that is not (or no longer) a database.
fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ffi::ErrorCode::DatabaseCorrupt | rusqlite::ffi::ErrorCode::NotADatabase)
    )
}

/// The inode of a file (0 where there is none).
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

impl Writer {
    /// Notices the store file removed or replaced under the running monitor
    /// and recreates it from the still-open connection (history, outbox and
    /// store id kept); a replacement is moved aside, not overwritten.
    fn watch_file(&mut self) {
        let open = self._lock.metadata().map(|m| inode(&m)).unwrap_or(0);
        let on_disk = std::fs::metadata(&self.path).ok();
        let lost = if on_disk.as_ref().is_some_and(|m| inode(m) == open) {
            self.lost_companion()
        } else {
            Some(("", on_disk.is_some()))
        };
        let Some((suffix, replaced)) = lost else { return };
        let shown = format!("{}{suffix}", self.path.display());
        let what = if replaced { "replaced" } else { "removed" };
        error!(
            "history store {shown}: the file was {what} under the running monitor; recreating the store from the open connection"
        );
        self.faults.file_lost(Some(format!("store: {shown} was {what}; recreating the store")));
        match self.recreate(replaced.then_some(suffix)) {
            Ok(()) => self.faults.file_lost(None),
            Err(e) => {
                error!(
                    "history store {shown}: cannot recreate the store ({e}); history goes on in the removed file until a restart"
                );
                self.faults
                    .file_lost(Some(format!("store: {shown} was {what} and the store cannot be recreated ({e})")));
            }
        }
    }

    /// The `-wal` or `-shm` removed or replaced since it was last seen
    /// (its suffix, and whether another file is there now). SQLite never
    /// removes or swaps them while its connection is open, so any change is
    /// someone else's — and a `-wal` gone would take the history not yet
    /// checkpointed with it at the next restart.
    fn lost_companion(&mut self) -> Option<(&'static str, bool)> {
        for (i, suffix) in COMPANIONS.into_iter().enumerate() {
            let on_disk = std::fs::metadata(self.with_suffix(suffix)).ok().map(|m| inode(&m));
            match (self.companions[i], on_disk) {
                (None, seen) => self.companions[i] = seen,
                (Some(known), Some(now)) if known == now => {}
                (Some(_), now) => return Some((suffix, now.is_some())),
            }
        }
        None
    }

    fn with_suffix(&self, suffix: &str) -> std::path::PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(suffix);
        std::path::PathBuf::from(p)
    }

    /// Writes a fresh store at the path from the open connection (history,
    /// outbox and store id kept) and continues there. `aside`: the file
    /// that replaced ours (`""` the database, or `-wal`/`-shm`), moved
    /// aside for inspection rather than overwritten or deleted.
    fn recreate(&mut self, aside: Option<&str>) -> Result<(), StoreError> {
        let path = self.path.clone();
        let io = |e: std::io::Error| StoreError::Sql(rusqlite::Error::InvalidPath(e.to_string().into()));
        if let Some(suffix) = aside {
            let replaced = self.with_suffix(suffix);
            let mut to = replaced.clone().into_os_string();
            to.push(format!(".replaced-{}", now()));
            std::fs::rename(&replaced, to).map_err(io)?;
        }
        // Everything into the open database file (through this connection's
        // own descriptors, even where the files were unlinked), a copy of it
        // beside the path, then the copy in the path's place. The -wal and
        // -shm at the path are this connection's; the copy starts its own.
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        let fresh = self.with_suffix(&format!(".recreating-{}", now()));
        let _ = std::fs::remove_file(&fresh);
        self.conn.execute("VACUUM INTO ?1", rusqlite::params![fresh.to_string_lossy()])?;
        for suffix in COMPANIONS {
            let _ = std::fs::remove_file(self.with_suffix(suffix));
        }
        std::fs::rename(&fresh, &path).map_err(io)?;
        self.companions = [None, None];
        // The old connection closes before the new one opens: closing, it
        // removes the -wal and -shm at the path by name, which must not be
        // the new connection's.
        drop(std::mem::replace(&mut self.conn, Connection::open_in_memory()?));
        let conn = open_connection(&path)?;
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::Sql(rusqlite::Error::InvalidPath(e.to_string().into())))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::InUse(path));
        }
        self.conn = conn;
        self._lock = lock;
        tracing::info!("history store {}: recreated, history kept", self.path.display());
        // A first read opens this connection's -wal and -shm: learn them now,
        // not at the next check, so that losing them at once is noticed too.
        let _: Option<i64> = self.conn.query_row("SELECT count(*) FROM meta", [], |r| r.get(0)).ok();
        self.lost_companion();
        Ok(())
    }

    fn begin(&mut self) {
        if !self.in_batch {
            match self.conn.execute_batch("BEGIN") {
                Ok(()) => self.in_batch = true,
                Err(e) => error!("history store: cannot begin a batch: {e}"),
            }
        }
    }

    /// Commits the batch; false when it could not be (it is rolled back).
    fn commit(&mut self, now: i64, force_runs: bool) -> bool {
        if !self.in_batch {
            self.begin();
        }
        if let Err(e) = self.flush_runs(now, force_runs).and_then(|()| self.set_heartbeat(now)) {
            match &e {
                StoreError::Sql(sql) => self.faults.record(true, sql),
                other => error!("{other}"),
            }
        }
        let committed = match self.conn.execute_batch("COMMIT") {
            Ok(()) => {
                self.faults.cleared();
                true
            }
            Err(e) => {
                self.faults.record(true, &e);
                let _ = self.conn.execute_batch("ROLLBACK");
                false
            }
        };
        self.in_batch = false;
        if now - self.last_retention >= 3600 {
            self.last_retention = now;
            if let Err(e) = self.apply_retention(now) {
                error!("history store: retention failed: {e}");
            }
        }
        committed
    }
}

fn now() -> i64 {
    crate::time::unix(std::time::SystemTime::now())
}

fn writer_loop(mut writer: Writer, rx: sync_mpsc::Receiver<Msg>) {
    let mut batch_opened: Option<std::time::Instant> = None;
    loop {
        let wait = batch_opened.map_or(Duration::from_secs(1), |t| BATCH_WINDOW.saturating_sub(t.elapsed()));
        match rx.recv_timeout(wait) {
            Ok(Msg::Job(job)) => {
                writer.begin();
                batch_opened.get_or_insert_with(std::time::Instant::now);
                job(&mut writer);
            }
            Ok(Msg::Urgent(job)) => {
                writer.begin();
                let answer = job(&mut writer);
                let committed = writer.commit(now(), false);
                answer(committed);
                batch_opened = None;
            }
            Ok(Msg::Stop(services, at, done)) => {
                writer.begin();
                if let Err(e) = writer.mark_stopped(&services, at) {
                    error!("{e}");
                }
                writer.commit(at, true);
                // Close the store (and release its one-writer lock) before
                // saying so: a successor may open it the moment we answer.
                drop(writer);
                let _ = done.send(());
                return;
            }
            Err(sync_mpsc::RecvTimeoutError::Timeout) => {
                // Also the heartbeat: about once a second, even when idle.
                writer.commit(now(), false);
                batch_opened = None;
            }
            Err(sync_mpsc::RecvTimeoutError::Disconnected) => {
                writer.commit(now(), true);
                return;
            }
        }
        if batch_opened.is_some_and(|t| t.elapsed() >= BATCH_WINDOW) {
            writer.commit(now(), false);
            batch_opened = None;
        }
        // Between batches, whether the queue is idle or busy: a monitor
        // under steady load must notice a removed file as surely as an idle one.
        if batch_opened.is_none() && writer.last_file_check.elapsed() >= FILE_CHECK {
            writer.last_file_check = std::time::Instant::now();
            writer.watch_file();
        }
    }
}

impl Store {
    /// Opens (creating if needed) the store, migrates it, and records that
    /// the monitor was not running between the previous run's last heartbeat
    /// and now.
    pub fn open(path: &Path, retention: Retention) -> Result<Store, StoreError> {
        check_directory(path)?;
        // One writer per store: an advisory lock on the file, held by the
        // writer thread for as long as it runs (SQLite's own locks are
        // fcntl locks and do not see it).
        let lock =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(
                |e| StoreError::Sql(rusqlite::Error::InvalidPath(format!("{}: {e}", path.display()).into())),
            )?;
        if lock.try_lock().is_err() {
            return Err(StoreError::InUse(path.to_path_buf()));
        }
        let (conn, lock) = match Store::prepare(path) {
            Err(StoreError::Sql(e)) if is_corrupt(&e) => {
                // A corrupt store must not keep the monitor from running:
                // moved aside for inspection, and a new one made.
                let aside = format!("{}.corrupt-{}", path.display(), now());
                error!(
                    "history store {}: the file is corrupt ({e}); moved aside to {aside}, starting a new store",
                    path.display()
                );
                drop(lock);
                std::fs::rename(path, &aside)
                    .map_err(|e| StoreError::Sql(rusqlite::Error::InvalidPath(e.to_string().into())))?;
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                let lock = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(path)
                    .map_err(|e| {
                    StoreError::Sql(rusqlite::Error::InvalidPath(format!("{}: {e}", path.display()).into()))
                })?;
                if lock.try_lock().is_err() {
                    return Err(StoreError::InUse(path.to_path_buf()));
                }
                (Store::prepare(path)?, lock)
            }
            other => (other?, lock),
        };
        let conn = conn;
        let id: i64 = conn.query_row("SELECT value FROM meta WHERE key = 'store_id'", [], |r| r.get(0))?;
        let id: Arc<str> = format!("{id:08x}").into();
        let faults = Arc::new(faults::StoreFaults::default());
        let mut writer = Writer {
            conn,
            in_batch: false,
            runs: Default::default(),
            retention,
            last_retention: 0,
            _lock: lock,
            faults: faults.clone(),
            path: path.to_path_buf(),
            last_file_check: std::time::Instant::now(),
            companions: [None, None],
        };
        writer.close_gap()?;
        // The -wal and -shm exist now (written to): they are this store's.
        writer.lost_companion();
        let (tx, rx) = sync_mpsc::channel();
        std::thread::Builder::new()
            .name("chatpulse-store".into())
            .spawn(move || writer_loop(writer, rx))
            .map_err(StoreError::Thread)?;
        Ok(Store { tx, id, faults })
    }

    /// Opens and migrates the store at `path`.
    fn prepare(path: &Path) -> Result<Connection, StoreError> {
        let mut conn = open_connection(path)?;
        schema::migrate(&mut conn)?;
        Ok(conn)
    }

    /// What went wrong with writing (shared, live).
    pub fn faults(&self) -> Arc<faults::StoreFaults> {
        self.faults.clone()
    }

    /// The store's random id (hex), for Message-IDs.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn job(&self, job: impl FnOnce(&mut Writer) + Send + 'static) {
        // A stopped writer only happens at shutdown; nothing to do then.
        let _ = self.tx.send(Msg::Job(Box::new(job)));
    }

    /// Runs `f` in the writer, commits, and returns its result.
    async fn urgent<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Writer) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job: UrgentJob = Box::new(move |w| {
            let result = f(w);
            Box::new(move |committed: bool| {
                let _ = reply.send(if committed { result } else { Err(StoreError::NotCommitted) });
            })
        });
        self.tx.send(Msg::Urgent(job)).map_err(|_| StoreError::Stopped)?;
        answer.await.map_err(|_| StoreError::Stopped)?
    }

    /// Records a probe run (batched).
    pub fn record_run(&self, run: RunRecord) {
        self.record_runs(vec![run]);
    }

    /// Records probe runs (one job for many: fewer wake-ups of the writer).
    pub fn record_runs(&self, runs: Vec<RunRecord>) {
        if runs.is_empty() {
            return;
        }
        self.job(move |w| {
            for run in &runs {
                if let Err(e) = w.record_run(run) {
                    error!("{e}");
                }
            }
        });
    }

    /// Records a service status change (batched).
    pub fn record_status(&self, status: StatusRecord) {
        self.job(move |w| {
            if let Err(e) = w.record_status(&status) {
                error!("{e}");
            }
        });
    }

    /// Commits everything queued so far, aggregated runs included.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.urgent(|w| w.flush_runs(now(), true)).await
    }

    /// Applies retention as of `now` and gives the freed space back to the
    /// filesystem (VACUUM). Retention otherwise runs hourly on its own.
    pub async fn compact(&self, now: i64) -> Result<(), StoreError> {
        self.urgent(move |w| {
            w.flush_runs(now, true)?;
            w.apply_retention(now)?;
            w.conn.execute_batch("COMMIT; VACUUM; BEGIN")?;
            Ok(())
        })
        .await
    }

    /// Marks every service unknown from `at` (the monitor stops) and ends
    /// the writer after committing everything.
    pub fn stop(&self, services: Vec<String>, at: i64) {
        let (done, wait) = sync_mpsc::channel();
        if self.tx.send(Msg::Stop(services, at, done)).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(10));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RETENTION: Retention =
        Retention { raw: Duration::from_secs(14 * 86_400), rollup: Duration::from_secs(400 * 86_400) };

    fn run(at: i64, result: &'static str) -> RunRecord {
        RunRecord {
            service: "s".into(),
            probe: "p".into(),
            at,
            result,
            duration_ms: 2.0,
            detail: format!("{result} at {at}"),
        }
    }

    #[tokio::test]
    async fn repeated_results_extend_one_row_and_roll_up_per_day() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let store = Store::open(&path, RETENTION).unwrap();
        // Recent times: older rows would fall to retention at the first commit.
        let t = now() - 400;
        let results = ["ok", "ok", "ok", "ok", "ok", "dns_servfail", "dns_servfail", "dns_servfail", "ok", "ok"];
        store.record_runs(results.iter().enumerate().map(|(i, r)| run(t + 30 * i as i64, r)).collect());
        store.flush().await.unwrap();
        let db = Connection::open(&path).unwrap();
        let rows: Vec<(String, i64, i64, i64, String)> = db
            .prepare("SELECT result, first_at, last_at, runs, detail FROM probe_runs ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!((rows[0].0.as_str(), rows[0].1, rows[0].2, rows[0].3), ("ok", t, t + 120, 5));
        assert_eq!(
            (rows[1].0.as_str(), rows[1].3, rows[1].4.as_str()),
            ("dns_servfail", 3, format!("dns_servfail at {}", t + 150).as_str())
        );
        assert_eq!(rows[2].3, 2);
        let (runs, failures): (i64, i64) = db
            .query_row("SELECT sum(runs), sum(failures) FROM probe_daily", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!((runs, failures), (10, 3));
        store.stop(Vec::new(), t + 300);
    }

    #[test]
    fn an_unknown_status_word_fails_loudly_instead_of_becoming_a_status() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let store = Store::open(&path, RETENTION).unwrap();
        store.stop(Vec::new(), 0);
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO incidents (service, status, started_at, cause_layer, cause_summary) VALUES ('s', 'sideways', 0, 'dns', 'x')",
            [],
        )
        .unwrap();
        let err = Reader::open(&path).unwrap().incidents(None, 0).unwrap_err().to_string();
        assert!(err.contains("unknown status word \"sideways\""), "{err}");
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_a_new_store_made() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
        let store = Store::open(&path, RETENTION).expect("a new store despite the corrupt file");
        assert_eq!(store.id().len(), 8);
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("h.db.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "the corrupt file is kept for inspection");
    }

    #[test]
    fn every_store_has_its_own_id_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
        let first = Store::open(&a, RETENTION).unwrap();
        let id = first.id().to_string();
        first.stop(Vec::new(), 0);
        assert_eq!(Store::open(&a, RETENTION).unwrap().id(), id, "kept across restarts");
        assert_ne!(Store::open(&b, RETENTION).unwrap().id(), id, "two stores, two ids");
    }

    #[tokio::test]
    async fn time_after_the_last_heartbeat_of_a_dead_process_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let now = now();
        let first = Store::open(&path, RETENTION).unwrap();
        first.record_status(StatusRecord {
            service: "s".into(),
            at: now - 100,
            status: ServiceStatus::Up,
            cause: None,
        });
        first.flush().await.unwrap();
        // As if killed: its last heartbeat said it was alive at now - 50, and
        // it never marked its services unknown.
        first.stop(Vec::new(), now - 50);
        let second = Store::open(&path, RETENTION).unwrap();
        second.flush().await.unwrap();
        let uptime = Reader::open(&path).unwrap().uptime("s", now - 100, now, now).unwrap();
        assert_eq!((uptime.observed, uptime.unknown), (50, 50));
        second.stop(vec!["s".into()], now);
    }
}
