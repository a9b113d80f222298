//! The history store's schema and its migrations.
//!
//! `PRAGMA user_version` holds the schema version; each migration runs once,
//! in order, inside a transaction. A database from a newer chatpulse is
//! refused rather than guessed at.

use rusqlite::Connection;

use super::StoreError;

/// Migrations, oldest first; index + 1 is the version each one produces.
const MIGRATIONS: &[&str] = &[
    // 1: status changes, run-length probe results, daily rollups,
    // incidents, the alert outbox, and process metadata.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    -- One row per change of a service's status: status holds until the next row.
    CREATE TABLE service_status (
        id            INTEGER PRIMARY KEY,
        service       TEXT NOT NULL,
        at            INTEGER NOT NULL,
        status        TEXT NOT NULL,
        cause_layer   TEXT,
        cause_summary TEXT
    );
    CREATE INDEX service_status_by_time ON service_status(service, at);
    -- Runs of identical results: a new row only when the result changes.
    CREATE TABLE probe_runs (
        id              INTEGER PRIMARY KEY,
        service         TEXT NOT NULL,
        probe           TEXT NOT NULL,
        result          TEXT NOT NULL,
        first_at        INTEGER NOT NULL,
        last_at         INTEGER NOT NULL,
        runs            INTEGER NOT NULL,
        duration_ms_sum REAL NOT NULL,
        duration_ms_max REAL NOT NULL,
        detail          TEXT NOT NULL
    );
    CREATE INDEX probe_runs_by_probe ON probe_runs(service, probe, last_at);
    CREATE INDEX probe_runs_by_age ON probe_runs(last_at);
    -- Per probe and UTC day: kept for rollup_retention.
    CREATE TABLE probe_daily (
        service         TEXT NOT NULL,
        probe           TEXT NOT NULL,
        day             INTEGER NOT NULL,
        runs            INTEGER NOT NULL,
        failures        INTEGER NOT NULL,
        duration_ms_sum REAL NOT NULL,
        duration_ms_max REAL NOT NULL,
        PRIMARY KEY (service, probe, day)
    ) WITHOUT ROWID;
    CREATE TABLE incidents (
        id               INTEGER PRIMARY KEY,
        service          TEXT NOT NULL,
        status           TEXT NOT NULL,
        started_at       INTEGER NOT NULL,
        ended_at         INTEGER,
        cause_layer      TEXT NOT NULL,
        cause_summary    TEXT NOT NULL,
        cause_key        TEXT NOT NULL,
        group_id         INTEGER,
        notified         TEXT,
        last_reminder_at INTEGER
    );
    CREATE INDEX incidents_by_service ON incidents(service, started_at);
    CREATE INDEX incidents_open ON incidents(ended_at);
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        channel         TEXT NOT NULL,
        event           TEXT NOT NULL,
        message_id      TEXT NOT NULL UNIQUE,
        subject         TEXT NOT NULL,
        body_text       TEXT NOT NULL,
        body_html       TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        sent_at         INTEGER,
        last_error      TEXT
    );
    CREATE INDEX outbox_pending ON outbox(sent_at, next_attempt_at);
    "#,
    // 2: a message given up on (permanently rejected) stops blocking its
    // channel's queue; every store gets a random id for its Message-IDs.
    r#"
    ALTER TABLE outbox ADD COLUMN failed_at INTEGER;
    INSERT OR IGNORE INTO meta (key, value) VALUES ('store_id', abs(random()) % 4294967296);
    "#,
    // 3: alerts decided but waiting for group_wait, so a kill during the
    // wait cannot lose them (they are re-formed after a restart).
    r#"
    CREATE TABLE pending_alerts (
        incident   INTEGER NOT NULL,
        event      TEXT NOT NULL,
        key        TEXT NOT NULL,
        grp        INTEGER NOT NULL,
        decided_at INTEGER NOT NULL,
        PRIMARY KEY (incident, event)
    ) WITHOUT ROWID;
    "#,
    // 4: one alert goes to several channels (e-mail, webhooks) under one
    // Message-ID: a Message-ID is unique per channel, not per outbox.
    r#"
    CREATE TABLE outbox_new (
        id              INTEGER PRIMARY KEY,
        channel         TEXT NOT NULL,
        event           TEXT NOT NULL,
        message_id      TEXT NOT NULL,
        subject         TEXT NOT NULL,
        body_text       TEXT NOT NULL,
        body_html       TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        sent_at         INTEGER,
        last_error      TEXT,
        failed_at       INTEGER,
        UNIQUE (channel, message_id)
    );
    INSERT INTO outbox_new (id, channel, event, message_id, subject, body_text, body_html, created_at,
                            next_attempt_at, attempts, sent_at, last_error, failed_at)
        SELECT id, channel, event, message_id, subject, body_text, body_html, created_at,
               next_attempt_at, attempts, sent_at, last_error, failed_at FROM outbox;
    DROP TABLE outbox;
    ALTER TABLE outbox_new RENAME TO outbox;
    CREATE INDEX outbox_pending ON outbox(sent_at, next_attempt_at);
    "#,
    // 5: maintenance windows as they happened, per service: excluded from
    // observed time; a later reload of the config does not rewrite them.
    r#"
    CREATE TABLE maintenance (
        service TEXT NOT NULL,
        start   INTEGER NOT NULL,
        end     INTEGER NOT NULL,
        PRIMARY KEY (service, start)
    ) WITHOUT ROWID;
    "#,
    // 6: the outbox holds each channel's own payload (JSON in the shape the
    // channel renders and reads back) instead of e-mail-shaped columns that
    // held a webhook's body in `body_text`; queued and sent rows are kept.
    r#"
    ALTER TABLE outbox ADD COLUMN payload TEXT NOT NULL DEFAULT '';
    UPDATE outbox SET payload = json_object('subject', subject, 'text', body_text, 'html', body_html)
        WHERE channel = 'email';
    UPDATE outbox SET payload = json_object('body', body_text) WHERE channel <> 'email';
    ALTER TABLE outbox DROP COLUMN body_text;
    ALTER TABLE outbox DROP COLUMN body_html;
    "#,
    // 7: an incident's cause is stored typed — its faults as a JSON array
    // of {reason, scope} — instead of a key string that had to be taken
    // apart; `cause_faults` is filled from the old key by `backfill`.
    r#"
    ALTER TABLE incidents ADD COLUMN cause_faults TEXT NOT NULL DEFAULT '[]';
    "#,
];

/// What a migration needs beyond SQL, run after its SQL in the same
/// transaction: by the version the migration produces.
fn backfill(version: usize, tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    if version == 7 {
        cause_faults_from_keys(tx)?;
    }
    Ok(())
}

/// Version 7: the faults of each incident from its old `layer|reason@scope,…`
/// key — the only place that format is ever read, once — and the pending
/// alert decisions re-keyed to the new [`crate::cause::CauseKey`].
fn cause_faults_from_keys(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    use crate::cause::{Cause, Fault};
    use crate::probe::kind::Reason;
    let rows: Vec<(i64, String, String, String)> = tx
        .prepare("SELECT id, cause_layer, cause_summary, cause_key FROM incidents")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    for (id, layer, summary, key) in rows {
        let parts = key.split_once('|').map_or("", |(_, rest)| rest);
        let faults: Vec<Fault> = parts
            .split(',')
            .filter_map(|part| part.split_once('@'))
            .filter_map(|(reason, scope)| Some(Fault { reason: Reason::from_word(reason)?, scope: scope.into() }))
            .collect();
        let Some(cause) = Cause::stored(&layer, &serde_json::to_string(&faults).unwrap_or_default(), summary) else {
            continue;
        };
        tx.execute("UPDATE incidents SET cause_faults = ?2 WHERE id = ?1", rusqlite::params![id, cause.faults_json()])?;
        tx.execute("UPDATE pending_alerts SET key = ?2 WHERE key = ?1", rusqlite::params![key, cause.key().as_str()])?;
    }
    tx.execute_batch("ALTER TABLE incidents DROP COLUMN cause_key;")?;
    Ok(())
}

/// Brings the schema to the current version.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version = conn.pragma_query_value(None, "user_version", |row| row.get::<_, i64>(0))? as usize;
    if version > MIGRATIONS.len() {
        return Err(StoreError::TooNew { found: version, known: MIGRATIONS.len() });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        backfill(i + 1, &tx)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// The version this build writes.
pub fn current_version() -> usize {
    MIGRATIONS.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_4_keeps_queued_alerts_and_makes_message_ids_unique_per_channel() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (i, sql) in MIGRATIONS.iter().enumerate().take(3) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", (i + 1) as i64).unwrap();
        }
        let insert = "INSERT INTO outbox (channel, event, message_id, subject, body_text, body_html, created_at, next_attempt_at)
                      VALUES (?1, 'down', '<down-1-1-ab@v.chatpulse>', 's', 't', 'h', 1, 1)";
        conn.execute(insert, ["email"]).unwrap();
        assert!(conn.execute(insert, ["webhook-1"]).is_err(), "before: one Message-ID per outbox");
        migrate(&mut conn).unwrap();
        let queued: i64 =
            conn.query_row("SELECT count(*) FROM outbox WHERE sent_at IS NULL", [], |r| r.get(0)).unwrap();
        assert_eq!(queued, 1, "the queued alert survives the migration");
        let insert = "INSERT INTO outbox (channel, event, message_id, subject, payload, created_at, next_attempt_at)
                      VALUES (?1, 'down', '<down-1-1-ab@v.chatpulse>', 's', '{}', 1, 1)";
        conn.execute(insert, ["webhook-1"]).unwrap();
        assert!(conn.execute(insert, ["email"]).is_err(), "still unique within a channel");
    }

    #[test]
    fn version_6_turns_queued_e_mails_and_webhook_bodies_into_channel_payloads() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (i, sql) in MIGRATIONS.iter().enumerate().take(5) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", (i + 1) as i64).unwrap();
        }
        let insert = "INSERT INTO outbox (channel, event, message_id, subject, body_text, body_html, created_at, next_attempt_at)
                      VALUES (?1, 'down', '<m@v>', 'WhatsApp DOWN', ?2, ?3, 1, 1)";
        conn.execute(insert, ["email", "plain text", "<p>html</p>"]).unwrap();
        conn.execute(insert, ["webhook-1", r#"{"event":"down"}"#, ""]).unwrap();
        migrate(&mut conn).unwrap();
        let payload = |channel: &str| -> serde_json::Value {
            let text: String =
                conn.query_row("SELECT payload FROM outbox WHERE channel = ?1", [channel], |r| r.get(0)).unwrap();
            serde_json::from_str(&text).unwrap()
        };
        assert_eq!(
            payload("email"),
            serde_json::json!({ "subject": "WhatsApp DOWN", "text": "plain text", "html": "<p>html</p>" })
        );
        assert_eq!(payload("webhook-1"), serde_json::json!({ "body": r#"{"event":"down"}"# }));
    }

    #[test]
    fn version_7_keeps_each_incident_cause_typed_and_its_pending_alert_grouped() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (i, sql) in MIGRATIONS.iter().enumerate().take(6) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", (i + 1) as i64).unwrap();
        }
        let old_key = "dns|dns_timeout@1.1.1.1,dns_servfail@8.8.8.8,dns_servfail@9.9.9.9";
        conn.execute(
            "INSERT INTO incidents (service, status, started_at, cause_layer, cause_summary, cause_key)
             VALUES ('wa', 'down', 1, 'dns', 'dns: SERVFAIL', ?1)",
            [old_key],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO pending_alerts (incident, event, key, grp, decided_at) VALUES (1, 'down', ?1, 1, 1)",
            [old_key],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let (layer, summary, faults): (String, String, String) = conn
            .query_row("SELECT cause_layer, cause_summary, cause_faults FROM incidents", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        let cause = crate::cause::Cause::stored(&layer, &faults, summary).unwrap();
        assert_eq!(cause.reason_words(), "dns_servfail,dns_timeout");
        assert_eq!(cause.faults().len(), 3);
        let key: String = conn.query_row("SELECT key FROM pending_alerts", [], |r| r.get(0)).unwrap();
        assert_eq!(key, cause.key().as_str(), "a decision pending across the upgrade still joins its cause");
    }
}
