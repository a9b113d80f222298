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

/// Runs added to a probe's current row since it was last written.
struct Extension {
    last_at: i64,
    runs: i64,
    duration_sum: f64,
    duration_max: f64,
}

/// One probe's current run of identical results and its unwritten totals.
#[derive(Default)]
struct ProbeRuns {
    /// (row id, result) of the open run.
    open: Option<(i64, &'static str)>,
    extension: Option<Extension>,
    days: Vec<(i64, DayTotals)>,
}

/// What the writer keeps between writes: a new result is written at once
/// (a new row); repeats of the same result and the daily rollups are
/// aggregated in memory and written every [`RUNS_FLUSH`] seconds, so 1,000
/// runs a second cost a few hundred row updates a second, not thousands.
#[derive(Default)]
pub(crate) struct RunState {
    /// service → its probes' states (looked up by &str, no allocation per
    /// run). A service's few probes are a short list, not a map: an empty
    /// hash map per service cost ~470 bytes, 47 MB at 100,000 services.
    probes: HashMap<String, Vec<(String, ProbeRuns)>>,
    last_flush: i64,
}

/// Seconds between writes of aggregated runs and rollups. A kill -9 loses at
/// most this much of run counts; status changes are committed within a second.
pub(crate) const RUNS_FLUSH: i64 = 10;

impl Writer {
    /// Extends the probe's current run of identical results, or starts one.
    pub(crate) fn record_run(&mut self, run: &RunRecord) -> Result<(), StoreError> {
        if !self.runs.probes.contains_key(&run.service) {
            self.runs.probes.insert(run.service.clone(), Vec::with_capacity(1));
        }
        let by_probe = self.runs.probes.get_mut(&run.service).expect("inserted above");
        let at = match by_probe.iter().position(|(probe, _)| *probe == run.probe) {
            Some(at) => at,
            None => {
                by_probe.push((run.probe.clone(), ProbeRuns::default()));
                by_probe.len() - 1
            }
        };
        let state = &mut by_probe[at].1;
        match state.open {
            Some((_, result)) if result == run.result => {
                let ext = state.extension.get_or_insert(Extension {
                    last_at: run.at,
                    runs: 0,
                    duration_sum: 0.0,
                    duration_max: 0.0,
                });
                ext.last_at = run.at;
                ext.runs += 1;
                ext.duration_sum += run.duration_ms;
                ext.duration_max = ext.duration_max.max(run.duration_ms);
            }
            _ => {
                if let (Some((id, _)), Some(ext)) = (state.open, state.extension.take()) {
                    write_extension(&self.conn, id, &ext)?;
                }
                self.conn
                    .prepare_cached(
                        "INSERT INTO probe_runs (service, probe, result, first_at, last_at, runs, duration_ms_sum,
                         duration_ms_max, detail) VALUES (?1, ?2, ?3, ?4, ?4, 1, ?5, ?5, ?6)",
                    )?
                    .execute(params![run.service, run.probe, run.result, run.at, run.duration_ms, run.detail])?;
                state.open = Some((self.conn.last_insert_rowid(), run.result));
            }
        }
        let day = run.at.div_euclid(86_400);
        if !state.days.iter().any(|(d, _)| *d == day) {
            state.days.push((day, DayTotals::default()));
        }
        if let Some((_, totals)) = state.days.iter_mut().find(|(d, _)| *d == day) {
            totals.runs += 1;
            totals.failures += i64::from(run.result != "ok");
            totals.duration_sum += run.duration_ms;
            totals.duration_max = totals.duration_max.max(run.duration_ms);
        }
        Ok(())
    }

    /// Writes aggregated runs and rollups when [`RUNS_FLUSH`] has passed
    /// (or always, with `force`).
    pub(crate) fn flush_runs(&mut self, now: i64, force: bool) -> Result<(), StoreError> {
        if !force && now - self.runs.last_flush < RUNS_FLUSH {
            return Ok(());
        }
        self.runs.last_flush = now;
        let mut upsert = self.conn.prepare_cached(
            "INSERT INTO probe_daily (service, probe, day, runs, failures, duration_ms_sum, duration_ms_max)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (service, probe, day) DO UPDATE SET runs = runs + ?4, failures = failures + ?5,
               duration_ms_sum = duration_ms_sum + ?6, duration_ms_max = max(duration_ms_max, ?7)",
        )?;
        for (service, by_probe) in &mut self.runs.probes {
            for (probe, state) in by_probe.iter_mut().map(|(p, s)| (&*p, s)) {
                if let (Some((id, _)), Some(ext)) = (state.open, state.extension.take()) {
                    write_extension(&self.conn, id, &ext)?;
                }
                for (day, t) in state.days.drain(..) {
                    upsert.execute(params![service, probe, day, t.runs, t.failures, t.duration_sum, t.duration_max])?;
                }
            }
        }
        Ok(())
    }

    /// Records a status change. An `unknown` that repeats the last status is
    /// ignored (a clean stop already wrote it; start-up reports it again).
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

/// Adds aggregated repeats to a run's row.
fn write_extension(conn: &rusqlite::Connection, id: i64, ext: &Extension) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE probe_runs SET last_at = ?2, runs = runs + ?3, duration_ms_sum = duration_ms_sum + ?4,
         duration_ms_max = max(duration_ms_max, ?5) WHERE id = ?1",
    )?
    .execute(params![id, ext.last_at, ext.runs, ext.duration_sum, ext.duration_max])?;
    Ok(())
}
