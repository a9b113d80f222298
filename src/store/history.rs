//! Writing history: status changes, run-length probe results, daily
//! rollups, the heartbeat, retention, and the gaps when chatpulse was not
//! running.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use super::{RunRecord, StatusRecord, StoreError, Writer};
use crate::verdict::ServiceStatus;

/// A day of one probe not yet written: runs, failures, duration sum and max.
#[derive(Default)]
struct DayTotals {
    runs: i64,
    failures: i64,
    duration_sum: f64,
    duration_max: f64,
}

/// The current run of identical results per probe, and rollups not yet
/// written.
#[derive(Default)]
pub(crate) struct RunState {
    /// (service, probe) → (row id, result) of the open run.
    open: HashMap<(String, String), (i64, &'static str)>,
    /// (service, probe, day) → totals since the last commit.
    daily: HashMap<(String, String, i64), DayTotals>,
}

impl Writer {
    /// Extends the probe's current run of identical results, or starts one.
    pub(crate) fn record_run(&mut self, run: &RunRecord) -> Result<(), StoreError> {
        let key = (run.service.clone(), run.probe.clone());
        let continuing = self.runs.open.get(&key).filter(|(_, result)| *result == run.result).map(|(id, _)| *id);
        match continuing {
            Some(id) => {
                self.conn
                    .prepare_cached(
                        "UPDATE probe_runs SET last_at = ?2, runs = runs + 1, duration_ms_sum = duration_ms_sum + ?3,
                         duration_ms_max = max(duration_ms_max, ?3), detail = ?4 WHERE id = ?1",
                    )?
                    .execute(params![id, run.at, run.duration_ms, run.detail])?;
            }
            None => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO probe_runs (service, probe, result, first_at, last_at, runs, duration_ms_sum,
                         duration_ms_max, detail) VALUES (?1, ?2, ?3, ?4, ?4, 1, ?5, ?5, ?6)",
                    )?
                    .execute(params![run.service, run.probe, run.result, run.at, run.duration_ms, run.detail])?;
                self.runs.open.insert(key, (self.conn.last_insert_rowid(), run.result));
            }
        }
        let day = run.at.div_euclid(86_400);
        let day = self.runs.daily.entry((run.service.clone(), run.probe.clone(), day)).or_default();
        day.runs += 1;
        day.failures += i64::from(run.result != "ok");
        day.duration_sum += run.duration_ms;
        day.duration_max = day.duration_max.max(run.duration_ms);
        Ok(())
    }

    /// Writes the rollups gathered since the last commit.
    pub(crate) fn flush_rollups(&mut self) -> Result<(), StoreError> {
        let mut upsert = self.conn.prepare_cached(
            "INSERT INTO probe_daily (service, probe, day, runs, failures, duration_ms_sum, duration_ms_max)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (service, probe, day) DO UPDATE SET runs = runs + ?4, failures = failures + ?5,
               duration_ms_sum = duration_ms_sum + ?6, duration_ms_max = max(duration_ms_max, ?7)",
        )?;
        for ((service, probe, day), t) in self.runs.daily.drain() {
            upsert.execute(params![service, probe, day, t.runs, t.failures, t.duration_sum, t.duration_max])?;
        }
        Ok(())
    }

    /// Records a status change (ignored if it repeats the last one).
    pub(crate) fn record_status(&mut self, status: &StatusRecord) -> Result<(), StoreError> {
        let last: Option<String> = self
            .conn
            .prepare_cached("SELECT status FROM service_status WHERE service = ?1 ORDER BY at DESC, id DESC LIMIT 1")?
            .query_row(params![status.service], |r| r.get(0))
            .optional()?;
        if last.as_deref() == Some(status.status.as_str()) && status.status == ServiceStatus::Unknown {
            return Ok(());
        }
        let (layer, summary) = match &status.cause {
            Some((l, s)) => (Some(l.as_str()), Some(s.as_str())),
            None => (None, None),
        };
        self.conn
            .prepare_cached(
                "INSERT INTO service_status (service, at, status, cause_layer, cause_summary) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![status.service, status.at, status.status.as_str(), layer, summary])?;
        Ok(())
    }

    /// Notes that the monitor is alive at `now`.
    pub(crate) fn set_heartbeat(&mut self, now: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO meta (key, value) VALUES ('heartbeat', ?1) ON CONFLICT (key) DO UPDATE SET value = ?1",
            )?
            .execute(params![now])?;
        Ok(())
    }

    /// Every service whose last status is not `unknown` becomes unknown at
    /// `at` (or at its last change, if later).
    fn unknown_from(&mut self, services: Option<&[String]>, at: i64) -> Result<(), StoreError> {
        let rows: Vec<(String, i64, String)> = self
            .conn
            .prepare(
                "SELECT s.service, s.at, s.status FROM service_status s
                 JOIN (SELECT service, max(id) AS id FROM service_status GROUP BY service) last ON s.id = last.id",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (service, last_at, status) in rows {
            if status == ServiceStatus::Unknown.as_str() || services.is_some_and(|list| !list.contains(&service)) {
                continue;
            }
            let record = StatusRecord { service, at: at.max(last_at), status: ServiceStatus::Unknown, cause: None };
            self.record_status(&record)?;
        }
        Ok(())
    }

    /// At start: the time since the previous process's last heartbeat (it
    /// stopped, or was killed) is unknown, not whatever status it last saw.
    pub(crate) fn close_gap(&mut self) -> Result<(), StoreError> {
        let heartbeat: Option<i64> =
            self.conn.query_row("SELECT value FROM meta WHERE key = 'heartbeat'", [], |r| r.get(0)).optional()?;
        if let Some(at) = heartbeat {
            self.conn.execute_batch("BEGIN")?;
            self.unknown_from(None, at)?;
            self.conn.execute_batch("COMMIT")?;
        }
        Ok(())
    }

    /// At a clean stop: every service is unknown from `at`.
    pub(crate) fn mark_stopped(&mut self, services: &[String], at: i64) -> Result<(), StoreError> {
        self.unknown_from(Some(services), at)
    }

    /// Drops what is older than the retention periods. The last status row
    /// before the cut stays, so the status at the start of any window kept
    /// is still known.
    pub(crate) fn apply_retention(&mut self, now: i64) -> Result<(), StoreError> {
        let raw_cut = now - self.retention.raw.as_secs() as i64;
        let rollup_cut = now - self.retention.rollup.as_secs() as i64;
        self.conn.execute("DELETE FROM probe_runs WHERE last_at < ?1", params![raw_cut])?;
        self.conn.execute("DELETE FROM probe_daily WHERE day < ?1", params![rollup_cut.div_euclid(86_400)])?;
        self.conn.execute(
            "DELETE FROM service_status WHERE at < ?1 AND id NOT IN
               (SELECT max(id) FROM service_status WHERE at < ?1 GROUP BY service)",
            params![rollup_cut],
        )?;
        self.conn.execute("DELETE FROM incidents WHERE ended_at < ?1", params![rollup_cut])?;
        self.conn.execute("DELETE FROM outbox WHERE sent_at < ?1", params![rollup_cut])?;
        Ok(())
    }
}
