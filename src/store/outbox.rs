//! The outbox as an operator sees it from the command line (`chatpulse
//! outbox`): what waits on each channel, and giving one message up. Both
//! work beside a running `chatpulse run` — SQLite's locking keeps the
//! writer and this connection apart — and a message given up is recorded
//! as failed, exactly as delivery records a permanent rejection, so the
//! running daemon skips it at its next pass.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, params};

use super::{Reader, StoreError, schema};

/// One message waiting for delivery.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Waiting {
    /// Its outbox id (what `chatpulse outbox drop` takes).
    pub id: i64,
    /// The channel (`email`, `webhook-1`, …).
    pub channel: String,
    /// `down`, `degraded`, `reminder`, `recovered` or `flapping`.
    pub event: String,
    /// Its subject line.
    pub subject: String,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When it was queued (Unix seconds).
    pub created_at: i64,
    /// Why the last attempt failed, if one did.
    pub last_error: Option<String>,
}

impl Reader {
    /// The messages waiting, oldest first; only `channel`'s when given.
    pub fn waiting(&self, channel: Option<&str>) -> Result<Vec<Waiting>, StoreError> {
        let conn = self.conn();
        let rows = conn
            .prepare(
                "SELECT id, channel, event, subject, attempts, created_at, last_error FROM outbox
                 WHERE sent_at IS NULL AND failed_at IS NULL AND (?1 IS NULL OR channel = ?1) ORDER BY id",
            )?
            .query_map(params![channel], |r| {
                Ok(Waiting {
                    id: r.get(0)?,
                    channel: r.get(1)?,
                    event: r.get(2)?,
                    subject: r.get(3)?,
                    attempts: r.get(4)?,
                    created_at: r.get(5)?,
                    last_error: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

/// Gives up the waiting message `id` of the store at `path` at `now`,
/// recorded as failed; returns the channel it was waiting on, or `None`
/// when no message `id` waits.
pub fn give_up(path: &Path, id: i64, now: i64) -> Result<Option<String>, StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing(path.to_path_buf()));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let version = conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
    let known = schema::current_version();
    if version > known {
        return Err(StoreError::TooNew { found: version, known });
    }
    if version < known {
        return Err(StoreError::Older { found: version, known });
    }
    let channel: Option<String> = conn
        .query_row(
            "UPDATE outbox SET failed_at = ?2, last_error = 'given up by the operator (chatpulse outbox drop)'
             WHERE id = ?1 AND sent_at IS NULL AND failed_at IS NULL RETURNING channel",
            params![id, now],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| if e == rusqlite::Error::QueryReturnedNoRows { Ok(None) } else { Err(e) })?;
    Ok(channel)
}
