//! History store benchmarks (`cargo bench --bench store`), for BENCHMARKS.md:
//!
//! 1. insert throughput: probe runs recorded per second through the real
//!    writer thread (batched transactions, run-length rows, daily rollups);
//! 2. a year of history for 100 services (status changes and incidents of a
//!    service that fails every ~36 h): time of the 30-day uptime query;
//! 3. size on disk for 500 probes at 30 s with default retention (14 d of
//!    per-run data, 400 d of rollups): the last 14 days are recorded run by
//!    run; older days get one run per probe per day, which creates exactly
//!    the rollup rows a full day would (their per-run rows are dropped by
//!    retention either way).

use std::time::{Duration, Instant, SystemTime};

use chatpulse::store::{NewIncident, Reader, Retention, RunRecord, StatusRecord, Store};
use chatpulse::time::unix;
use chatpulse::verdict::ServiceStatus;

const RETENTION: Retention =
    Retention { raw: Duration::from_secs(14 * 86_400), rollup: Duration::from_secs(400 * 86_400) };

/// A deterministic pseudo-random sequence.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn run(service: &str, probe: &str, at: i64, ok: bool) -> RunRecord {
    RunRecord {
        service: service.to_string(),
        probe: probe.to_string(),
        at,
        result: if ok { "ok" } else { "dns_servfail" },
        duration_ms: 3.5,
        detail: if ok {
            "web.whatsapp.com A @1.1.1.1:53: NOERROR, 1 A (157.240.1.1)".into()
        } else {
            "web.whatsapp.com A @1.1.1.1:53: SERVFAIL".into()
        },
    }
}

async fn size_with_default_retention(dir: &std::path::Path) {
    let path = dir.join("size.db");
    let store = Store::open(&path, RETENTION).unwrap();
    let now = unix(SystemTime::now());
    let mut rng = Lcg(7);
    let probes: Vec<(String, String)> =
        (0..100).flat_map(|s| (0..5).map(move |p| (format!("service-{s}"), format!("probe-{p}")))).collect();
    // Older days: one run per probe per day (its rollup row).
    for day in 15..400 {
        for (s, p) in &probes {
            store.record_run(run(s, p, now - day * 86_400, true));
        }
    }
    // The raw window: every 30 s, with a failure streak now and then.
    let started = Instant::now();
    let mut runs = 0u64;
    let mut failing = vec![0u32; probes.len()];
    for step in (0..14 * 2880).rev() {
        let at = now - step * 30;
        for (i, (s, p)) in probes.iter().enumerate() {
            if failing[i] == 0 && rng.next().is_multiple_of(2000) {
                failing[i] = 1 + (rng.next() % 20) as u32;
            }
            let ok = failing[i] == 0;
            failing[i] = failing[i].saturating_sub(1);
            store.record_run(run(s, p, at, ok));
            runs += 1;
        }
        if step % 2880 == 0 {
            store.flush().await.unwrap();
        }
    }
    store.flush().await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "insert throughput: {runs} runs in {secs:.1} s = {:.0} runs/s through the writer thread",
        runs as f64 / secs
    );
    store.compact(now).await.unwrap();
    store.stop(Vec::new(), now);
    let bytes: u64 =
        ["size.db", "size.db-wal"].iter().filter_map(|f| std::fs::metadata(dir.join(f)).ok()).map(|m| m.len()).sum();
    println!(
        "size on disk, 500 probes at 30 s, default retention (14 d raw, 400 d rollups): {:.1} MB",
        bytes as f64 / 1e6
    );
}

async fn year_of_history(dir: &std::path::Path) {
    let path = dir.join("year.db");
    let store = Store::open(&path, RETENTION).unwrap();
    let now = unix(SystemTime::now());
    let mut rng = Lcg(11);
    let mut changes = 0;
    for s in 0..100 {
        let service = format!("service-{s}");
        let mut at = now - 365 * 86_400;
        store.record_status(StatusRecord { service: service.clone(), at, status: ServiceStatus::Up, cause: None });
        loop {
            at += 3600 + (rng.next() % (72 * 3600)) as i64;
            let length = 60 + (rng.next() % 7200) as i64;
            if at + length >= now {
                break;
            }
            let status = if rng.next().is_multiple_of(3) { ServiceStatus::Degraded } else { ServiceStatus::Down };
            store.record_status(StatusRecord {
                service: service.clone(),
                at,
                status,
                cause: Some(("dns".into(), "dns: SERVFAIL".into())),
            });
            store.record_status(StatusRecord {
                service: service.clone(),
                at: at + length,
                status: ServiceStatus::Up,
                cause: None,
            });
            let incident = NewIncident {
                service: service.clone(),
                status,
                started_at: at,
                cause: chatpulse::cause::Cause::new(
                    chatpulse::probe::Layer::Dns,
                    [chatpulse::cause::Fault {
                        reason: chatpulse::probe::Reason::DnsServfail,
                        scope: "1.1.1.1:53".into(),
                    }],
                    "dns: SERVFAIL".into(),
                ),
            };
            let id = store.open_incident(incident, None).await.unwrap();
            store.close_incident(id, at + length, None).await.unwrap();
            changes += 2;
            at += length;
        }
    }
    store.flush().await.unwrap();
    store.stop(Vec::new(), now);
    let reader = Reader::open(&path).unwrap();
    let mut times = Vec::new();
    for s in 0..100 {
        let service = format!("service-{s}");
        let started = Instant::now();
        let report = reader.report(&service, now - 30 * 86_400, now, now).unwrap();
        times.push(started.elapsed());
        assert!(report.uptime.ratio.is_some());
    }
    times.sort();
    println!(
        "30-day uptime query (status history of a year, {changes} changes over 100 services, incidents and MTTR included): p50 {:?}, max {:?}",
        times[50], times[99]
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        year_of_history(dir.path()).await;
        size_with_default_retention(dir.path()).await;
    });
}
