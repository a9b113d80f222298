//! Incidents and the alert outbox in the store.
//!
//! Every write here commits before it answers: an incident opened or an
//! alert enqueued survives kill -9 the moment the caller knows about it.

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, StoreError, Writer};
use crate::cause::Cause;
use crate::verdict::ServiceStatus;

/// An incident to open.
#[derive(Debug, Clone)]
pub struct NewIncident {
    /// Service id.
    pub service: String,
    /// `down` or `degraded`.
    pub status: ServiceStatus,
    /// Unix seconds.
    pub started_at: i64,
    /// Its root cause.
    pub cause: Cause,
}

/// An incident as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Row id.
    pub id: i64,
    /// Service id.
    pub service: String,
    /// Worst status reached: `down` or `degraded`.
    pub status: ServiceStatus,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds, None while ongoing.
    pub ended_at: Option<i64>,
    /// Its root cause (`None` only for a flapping alert's stand-in).
    pub cause: Option<Cause>,
    /// The incident group (the id of its first incident).
    pub group_id: Option<i64>,
    /// The highest status an alert was sent for (`degraded`/`down`).
    pub notified: Option<ServiceStatus>,
    /// When the last reminder went out.
    pub last_reminder_at: Option<i64>,
}

impl Incident {
    /// Its root cause summary (empty when it has none).
    pub fn summary(&self) -> &str {
        self.cause.as_ref().map_or("", |c| c.summary.as_str())
    }
}

/// An alert to enqueue.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// `email`.
    pub channel: String,
    /// `down`, `degraded`, `reminder`, `recovered`.
    pub event: String,
    /// Stable Message-ID of this incident event.
    pub message_id: String,
    /// One line about it (an e-mail's subject, a webhook's summary), for
    /// logs and `chatpulse outbox`.
    pub subject: String,
    /// What the channel sends, as it rendered it: JSON in the channel's own
    /// shape (`alert::email::Payload`, …), read back only by that channel.
    pub payload: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A pending alert.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// The alert, as enqueued.
    pub message: NewMessage,
}

pub(crate) const INCIDENT_COLUMNS: &str = "id, service, status, started_at, ended_at, cause_layer, cause_summary, cause_faults, group_id, notified, last_reminder_at";

pub(crate) fn incident_from_row(r: &Row<'_>) -> rusqlite::Result<Incident> {
    Ok(Incident {
        id: r.get(0)?,
        service: r.get(1)?,
        status: r.get(2)?,
        started_at: r.get(3)?,
        ended_at: r.get(4)?,
        cause: Some(stored_cause(r)?),
        group_id: r.get(8)?,
        notified: r.get(9)?,
        last_reminder_at: r.get(10)?,
    })
}

/// A row's cause, read field by field; one this build does not know fails
/// the query loudly, like an unknown status word.
fn stored_cause(r: &Row<'_>) -> rusqlite::Result<Cause> {
    let (layer, faults): (String, String) = (r.get(5)?, r.get(7)?);
    Cause::stored(&layer, &faults, r.get(6)?).ok_or_else(|| {
        let why = format!("unknown cause {layer:?} {faults:?} in the store");
        rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, why.into())
    })
}

/// Alerts that could not be committed to the outbox (the store cannot be
/// written): kept in memory, in decision order, and delivered from there —
/// a full disk must not silence an outage.
pub type Spillover = std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<NewMessage>>>;

/// An alert decided before a restart and not yet queued.
#[derive(Debug, Clone)]
pub struct PendingAlert {
    /// The incident it is about.
    pub incident: Incident,
    /// `down`, `degraded` or `recovered`.
    pub event: String,
    /// Its grouping key.
    pub key: String,
    /// Its group (the group's first incident).
    pub group: i64,
    /// When it was decided (Unix seconds).
    pub decided_at: i64,
}

impl Writer {
    fn open_incident(&mut self, i: &NewIncident, alert: Option<&str>) -> Result<i64, StoreError> {
        self.conn.execute(
            "INSERT INTO incidents (service, status, started_at, cause_layer, cause_summary, cause_faults)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                i.service,
                i.status.as_str(),
                i.started_at,
                i.cause.layer.as_str(),
                i.cause.summary,
                i.cause.faults_json()
            ],
        )?;
        let id = self.conn.last_insert_rowid();
        if let Some(event) = alert {
            self.add_pending(id, event, i.cause.key().as_str(), id, i.started_at)?;
        }
        Ok(id)
    }

    fn add_pending(&mut self, incident: i64, event: &str, key: &str, group: i64, at: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO pending_alerts (incident, event, key, grp, decided_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![incident, event, key, group, at],
        )?;
        Ok(())
    }

    fn enqueue(
        &mut self,
        event: &str,
        messages: &[NewMessage],
        notified: &[(i64, ServiceStatus)],
        reminder_at: Option<i64>,
        settled: &[i64],
    ) -> Result<usize, StoreError> {
        // The pending decisions this alert carries out are settled in the
        // same transaction that queues it: never both, never neither.
        for incident in settled {
            self.conn
                .execute("DELETE FROM pending_alerts WHERE incident = ?1 AND event = ?2", params![incident, event])?;
        }
        let mut queued = 0;
        for m in messages {
            let exists: Option<i64> = self
                .conn
                .query_row(
                    "SELECT id FROM outbox WHERE channel = ?1 AND message_id = ?2",
                    params![m.channel, m.message_id],
                    |r| r.get(0),
                )
                .optional()?;
            if exists.is_some() {
                continue;
            }
            self.conn.execute(
                "INSERT INTO outbox (channel, event, message_id, subject, payload, created_at, next_attempt_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![m.channel, m.event, m.message_id, m.subject, m.payload, m.created_at],
            )?;
            queued += 1;
        }
        for (incident, level) in notified {
            self.conn.execute("UPDATE incidents SET notified = ?2 WHERE id = ?1", params![incident, level.as_str()])?;
            if let Some(at) = reminder_at {
                self.conn.execute("UPDATE incidents SET last_reminder_at = ?2 WHERE id = ?1", params![incident, at])?;
            }
        }
        Ok(queued)
    }
}

impl Store {
    /// Opens an incident; returns its id. With `alert` (the event word),
    /// the decision to alert about it is recorded in the same transaction:
    /// a kill right after cannot leave an incident nobody will hear of.
    pub async fn open_incident(&self, incident: NewIncident, alert: Option<&'static str>) -> Result<i64, StoreError> {
        self.urgent(move |w| w.open_incident(&incident, alert)).await
    }

    /// Sets an incident's group.
    pub async fn set_group(&self, incident: i64, group: i64) -> Result<(), StoreError> {
        self.write("UPDATE incidents SET group_id = ?2 WHERE id = ?1", vec![incident.into(), group.into()]).await
    }

    /// Updates an open incident's status (raised to down) and the cause it
    /// has now (also used for a cause that moved before any alert told it).
    pub async fn escalate_incident(&self, id: i64, status: ServiceStatus, cause: &Cause) -> Result<(), StoreError> {
        self.write(
            "UPDATE incidents SET status = ?2, cause_layer = ?3, cause_summary = ?4, cause_faults = ?5 WHERE id = ?1",
            vec![
                id.into(),
                status.as_str().to_string().into(),
                cause.layer.as_str().to_string().into(),
                cause.summary.clone().into(),
                cause.faults_json().into(),
            ],
        )
        .await
    }

    /// Ends an incident; with `recovery` (its grouping key and group), the
    /// decision to send a recovery is recorded in the same transaction.
    pub async fn close_incident(&self, id: i64, at: i64, recovery: Option<(String, i64)>) -> Result<(), StoreError> {
        self.urgent(move |w| {
            w.conn.execute("UPDATE incidents SET ended_at = ?2 WHERE id = ?1", params![id, at])?;
            if let Some((key, group)) = &recovery {
                w.add_pending(id, "recovered", key, *group, at)?;
            }
            Ok(())
        })
        .await
    }

    /// Every incident still open.
    pub async fn open_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.urgent(|w| {
            let sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE ended_at IS NULL ORDER BY id");
            Ok(w.conn.prepare(&sql)?.query_map([], incident_from_row)?.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Commits an alert — one message per channel that takes it, maybe
    /// none — marks the incidents it tells about as notified (and, for
    /// reminders, reminded at `reminder_at`) and settles their pending
    /// decisions, all in one transaction. Returns how many messages were
    /// queued: one whose channel has a message with the same Message-ID
    /// already is skipped, so nothing is sent twice.
    pub async fn enqueue(
        &self,
        event: &'static str,
        messages: Vec<NewMessage>,
        notified: Vec<(i64, ServiceStatus)>,
        reminder_at: Option<i64>,
        settled: Vec<i64>,
    ) -> Result<usize, StoreError> {
        self.urgent(move |w| w.enqueue(event, &messages, &notified, reminder_at, &settled)).await
    }

    /// Records that an alert about `incident` is decided and waits for
    /// `group_wait` (replacing an earlier decision about it). Committed
    /// before the wait begins.
    pub async fn add_pending(
        &self,
        incident: i64,
        event: String,
        key: String,
        group: i64,
        at: i64,
    ) -> Result<(), StoreError> {
        self.write(
            "INSERT OR REPLACE INTO pending_alerts (incident, event, key, grp, decided_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            vec![incident.into(), event.into(), key.into(), group.into(), at.into()],
        )
        .await
    }

    /// Drops pending decisions that will not be carried out as decided
    /// (the service left the config; the monitor was offline; a degraded
    /// alert became a down one): (incident, event) pairs.
    pub async fn drop_pending(&self, decisions: Vec<(i64, String)>) -> Result<(), StoreError> {
        self.urgent(move |w| {
            for (incident, event) in &decisions {
                w.conn.execute(
                    "DELETE FROM pending_alerts WHERE incident = ?1 AND event = ?2",
                    params![incident, event],
                )?;
            }
            Ok(())
        })
        .await
    }

    /// The decisions still pending, oldest first, with their incidents.
    pub async fn pending_alerts(&self) -> Result<Vec<PendingAlert>, StoreError> {
        self.urgent(|w| {
            let columns = INCIDENT_COLUMNS.split(", ").map(|c| format!("i.{c}")).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT {columns}, p.event, p.key, p.grp, p.decided_at FROM pending_alerts p
                 JOIN incidents i ON i.id = p.incident ORDER BY p.decided_at, p.incident"
            );
            let rows = w
                .conn
                .prepare(&sql)?
                .query_map([], |r| {
                    Ok(PendingAlert {
                        incident: incident_from_row(r)?,
                        event: r.get(11)?,
                        key: r.get(12)?,
                        group: r.get(13)?,
                        decided_at: r.get(14)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// The channel's undelivered alerts in the order they were decided —
    /// but only once the oldest is due: delivery is head-of-line, so a
    /// later alert (a recovery) never overtakes an earlier one (its DOWN),
    /// even after an outage of the mail server.
    pub async fn due_messages(&self, now: i64, channel: &str) -> Result<Vec<OutboxRow>, StoreError> {
        let channel = channel.to_string();
        self.urgent(move |w| {
            let head: Option<i64> = w
                .conn
                .query_row(
                    "SELECT next_attempt_at FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL AND channel = ?1
                     ORDER BY id LIMIT 1",
                    params![channel],
                    |r| r.get(0),
                )
                .optional()?;
            if head.is_none_or(|at| at > now) {
                return Ok(Vec::new());
            }
            let rows = w
                .conn
                .prepare(
                    "SELECT id, channel, event, message_id, subject, payload, attempts, created_at FROM outbox
                     WHERE sent_at IS NULL AND failed_at IS NULL AND channel = ?1 ORDER BY id LIMIT 100",
                )?
                .query_map(params![channel], |r| {
                    Ok(OutboxRow {
                        id: r.get(0)?,
                        attempts: r.get(6)?,
                        message: NewMessage {
                            channel: r.get(1)?,
                            event: r.get(2)?,
                            message_id: r.get(3)?,
                            subject: r.get(4)?,
                            payload: r.get(5)?,
                            created_at: r.get(7)?,
                        },
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Pending alerts on `channel` and when the head of its queue is due.
    pub async fn pending(&self, channel: &str) -> Result<(usize, Option<i64>), StoreError> {
        let channel = channel.to_string();
        self.urgent(move |w| {
            Ok(w.conn.query_row(
                "SELECT count(*), (SELECT next_attempt_at FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL
                 AND channel = ?1 ORDER BY id LIMIT 1)
                 FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL AND channel = ?1",
                params![channel],
                |r| Ok((r.get::<_, i64>(0)? as usize, r.get(1)?)),
            )?)
        })
        .await
    }

    /// Gives up on a message the server rejected for good: it no longer
    /// blocks the queue (it stays in the store, with its last error).
    pub async fn mark_given_up(&self, id: i64, at: i64, error: String) -> Result<(), StoreError> {
        self.write(
            "UPDATE outbox SET failed_at = ?2, attempts = attempts + 1, last_error = ?3 WHERE id = ?1",
            vec![id.into(), at.into(), error.into()],
        )
        .await
    }

    /// Records a delivery.
    pub async fn mark_sent(&self, id: i64, at: i64) -> Result<(), StoreError> {
        self.write(
            "UPDATE outbox SET sent_at = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
            vec![id.into(), at.into()],
        )
        .await
    }

    /// Records a failed attempt and when to try again.
    pub async fn mark_failed(&self, id: i64, next_attempt_at: i64, error: String) -> Result<(), StoreError> {
        self.write(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
            vec![id.into(), next_attempt_at.into(), error.into()],
        )
        .await
    }

    /// Records that services entered maintenance windows `(service, start,
    /// end)`; a window already recorded takes the end now planned (a reload
    /// may have moved it; past windows are never touched).
    pub async fn begin_maintenance(&self, windows: Vec<(String, i64, i64)>) -> Result<(), StoreError> {
        self.urgent(move |w| {
            for (service, start, end) in &windows {
                w.conn.execute(
                    "INSERT INTO maintenance (service, start, end) VALUES (?1, ?2, ?3)
                     ON CONFLICT (service, start) DO UPDATE SET end = excluded.end",
                    params![service, start, end],
                )?;
            }
            Ok(())
        })
        .await
    }

    /// Ends `service`'s window that began at `start` at `at`, if it was
    /// to end later (a reload removed or shortened it).
    pub async fn end_maintenance(&self, service: String, start: i64, at: i64) -> Result<(), StoreError> {
        self.write(
            "UPDATE maintenance SET end = ?3 WHERE service = ?1 AND start = ?2 AND end > ?3",
            vec![service.into(), start.into(), at.into()],
        )
        .await
    }

    /// Runs one write statement and commits it.
    async fn write(&self, sql: &'static str, values: Vec<rusqlite::types::Value>) -> Result<(), StoreError> {
        self.urgent(move |w| {
            w.conn.execute(sql, rusqlite::params_from_iter(values))?;
            Ok(())
        })
        .await
    }
}
