//! Reading history: status rows, uptime, buckets and incidents, over a
//! read-only connection (used by the CLI and the API while `run` writes).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::incidents::{INCIDENT_COLUMNS, Incident, incident_from_row};
use super::uptime::{self, Bucket, Span, Uptime};
use super::{StoreError, schema};
use crate::verdict::ServiceStatus;

/// Uptime of one service over a window, with its incidents.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Seconds by status and the ratio.
    pub uptime: Uptime,
    /// Incidents open at any time in the window.
    pub incidents: usize,
    /// Mean time to repair of the incidents that ended in the window.
    pub mttr_seconds: Option<f64>,
}

/// A heartbeat older than this means the monitor is not running.
const ALIVE_SLACK: i64 = 15;

/// A read-only view of the store. It follows the file at its path: a
/// store recreated by the writer (the file was removed) is reopened.
pub struct Reader {
    path: std::path::PathBuf,
    conn: Mutex<ReaderConn>,
}

/// The connection and the inode it was opened on.
pub(super) struct ReaderConn {
    conn: Connection,
    inode: u64,
}

impl std::ops::Deref for ReaderConn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

fn inode_of(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap_or(0)
}

impl Reader {
    /// Opens the store at `path` read-only; it must exist.
    pub fn open(path: &Path) -> Result<Reader, StoreError> {
        let conn = Reader::connect(path)?;
        Ok(Reader { path: path.to_path_buf(), conn: Mutex::new(ReaderConn { conn, inode: inode_of(path) }) })
    }

    fn connect(path: &Path) -> Result<Connection, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version = conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
        if version > schema::current_version() {
            return Err(StoreError::TooNew { found: version, known: schema::current_version() });
        }
        if version == 0 {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        Ok(conn)
    }

    pub(super) fn conn(&self) -> std::sync::MutexGuard<'_, ReaderConn> {
        let mut guard = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let inode = inode_of(&self.path);
        if inode != 0
            && inode != guard.inode
            && let Ok(conn) = Reader::connect(&self.path)
        {
            *guard = ReaderConn { conn, inode };
        }
        guard
    }

    /// Until when the history is known at `now`: now while the monitor runs,
    /// its last heartbeat otherwise.
    fn known_until(&self, now: i64) -> Result<i64, StoreError> {
        let heartbeat: Option<i64> =
            self.conn().query_row("SELECT value FROM meta WHERE key = 'heartbeat'", [], |r| r.get(0)).optional()?;
        Ok(match heartbeat {
            Some(h) if now - h > ALIVE_SLACK => h,
            _ => now,
        })
    }

    /// Status changes of `service` in `[from, to)`, led by the last one before.
    pub fn status_rows(&self, service: &str, from: i64, to: i64) -> Result<Vec<(i64, ServiceStatus)>, StoreError> {
        let conn = self.conn();
        let mut rows: Vec<(i64, ServiceStatus)> = conn
            .prepare_cached("SELECT at, status FROM service_status WHERE service = ?1 AND at <= ?2 ORDER BY at DESC, id DESC LIMIT 1")?
            .query_row(params![service, from], |r| Ok((r.get(0)?, r.get::<_, ServiceStatus>(1)?)))
            .optional()?
            .into_iter()
            .collect();
        let later = conn
            .prepare_cached(
                "SELECT at, status FROM service_status WHERE service = ?1 AND at > ?2 AND at < ?3 ORDER BY at, id",
            )?
            .query_map(params![service, from, to], |r| Ok((r.get(0)?, r.get::<_, ServiceStatus>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        rows.extend(later);
        Ok(rows)
    }

    /// The maintenance windows of `service` overlapping `[from, to)`, as
    /// recorded (sorted by start).
    pub fn maintenance(&self, service: &str, from: i64, to: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let conn = self.conn();
        let rows = conn
            .prepare_cached(
                "SELECT start, end FROM maintenance WHERE service = ?1 AND start < ?3 AND end > ?2 ORDER BY start",
            )?
            .query_map(params![service, from, to], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The spans of `service` over `[from, to)` as of `now`, its
    /// maintenance windows cut out (left as gaps: neither observed nor
    /// unknown).
    pub fn spans(&self, service: &str, from: i64, to: i64, now: i64) -> Result<Vec<Span>, StoreError> {
        let rows = self.status_rows(service, from, to)?;
        let spans = uptime::spans(&rows, from, to, self.known_until(now)?);
        Ok(uptime::without(&spans, &self.maintenance(service, from, to)?))
    }

    /// Uptime of `service` over `[from, to)`.
    pub fn uptime(&self, service: &str, from: i64, to: i64, now: i64) -> Result<Uptime, StoreError> {
        Ok(uptime::summarize_window(&self.spans(service, from, to, now)?, from, to))
    }

    /// History of `service` over `[from, to)` in buckets of `step` seconds.
    pub fn history(&self, service: &str, from: i64, to: i64, step: i64, now: i64) -> Result<Vec<Bucket>, StoreError> {
        Ok(uptime::buckets(&self.spans(service, from, to, now)?, from, to, step))
    }

    /// Incidents of `service` (or all) that were open at any time since `since`.
    pub fn incidents(&self, service: Option<&str>, since: i64) -> Result<Vec<Incident>, StoreError> {
        let sql = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE (ended_at IS NULL OR ended_at >= ?1)
             AND (?2 IS NULL OR service = ?2) ORDER BY started_at DESC, id DESC"
        );
        let conn = self.conn();
        let rows = conn
            .prepare(&sql)?
            .query_map(params![since, service], incident_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Uptime plus the incidents of `service` over `[from, to)`.
    pub fn report(&self, service: &str, from: i64, to: i64, now: i64) -> Result<Report, StoreError> {
        let uptime = self.uptime(service, from, to, now)?;
        let incidents: Vec<Incident> =
            self.incidents(Some(service), from)?.into_iter().filter(|i| i.started_at < to).collect();
        let repaired: Vec<i64> = incidents
            .iter()
            .filter_map(|i| i.ended_at.filter(|end| *end >= from && *end <= to).map(|end| end - i.started_at))
            .collect();
        let mttr = (!repaired.is_empty()).then(|| repaired.iter().sum::<i64>() as f64 / repaired.len() as f64);
        Ok(Report { uptime, incidents: incidents.len(), mttr_seconds: mttr })
    }
}
