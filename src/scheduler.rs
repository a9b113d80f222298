//! When probes run: intervals, spread, timeouts, concurrency.
//!
//! Each probe gets its own task with a fixed-rate ticker anchored at start
//! (tick k is at `start + offset + k * interval`, so there is no drift over
//! hours). First runs are spread evenly across each probe's interval so a
//! thousand probes do not fire in the same millisecond. A run is awaited
//! before the next tick is taken and missed ticks are skipped, so a probe
//! slower than its interval never overlaps itself. A semaphore bounds how many
//! probes run at once. Probes with a trigger (bgp) also run whenever it fires.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::Kind;
use crate::probe::{Finding, Observation, Probe, ProbeRef, Reason};

/// How many probe runs may be in flight at once.
pub const MAX_CONCURRENT_RUNS: usize = 512;

/// Slack beyond a probe's own timeout before the scheduler gives up on a run.
const TIMEOUT_SLACK: Duration = Duration::from_secs(2);

/// The running schedule; dropping it stops every probe task.
pub struct Schedule {
    tasks: JoinSet<()>,
}

impl Schedule {
    /// Starts one task per probe. Observations go to `out`; each carries the
    /// lateness of its run against the ideal tick.
    pub fn start(probes: Vec<(Arc<ProbeRef>, Box<dyn Probe>)>, out: mpsc::Sender<Observation>) -> Schedule {
        let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_RUNS));
        let total = probes.len().max(1) as u32;
        let origin = Instant::now();
        let mut tasks = JoinSet::new();
        for (i, (info, probe)) in probes.into_iter().enumerate() {
            // Even spread: probe i of n starts i/n of the way into its interval.
            let offset = info.spec.interval.mul_f64(f64::from(i as u32) / f64::from(total));
            tasks.spawn(drive(info, probe, out.clone(), permits.clone(), origin + offset));
        }
        Schedule { tasks }
    }

    /// Stops every probe task and waits for them to end.
    pub async fn stop(mut self) {
        self.tasks.shutdown().await;
    }
}

/// One run with the scheduler's safety timeout around the probe's own.
pub async fn run_once(info: &ProbeRef, probe: &dyn Probe) -> (SystemTime, Duration, Finding) {
    let at = SystemTime::now();
    let started = Instant::now();
    let finding = match tokio::time::timeout(info.spec.timeout + TIMEOUT_SLACK, probe.run()).await {
        Ok(finding) => finding,
        Err(_) => {
            let reason = match info.kind() {
                Kind::Dns => Reason::DnsTimeout,
                Kind::Http => Reason::HttpTimeout,
                Kind::Bgp => Reason::BgpUnknown,
            };
            Finding::fail(
                reason,
                format!("run did not finish within {}", humantime::format_duration(info.spec.timeout)),
            )
        }
    };
    (at, started.elapsed(), finding)
}

async fn drive(
    info: Arc<ProbeRef>,
    probe: Box<dyn Probe>,
    out: mpsc::Sender<Observation>,
    permits: Arc<Semaphore>,
    first: Instant,
) {
    let mut ticker = tokio::time::interval_at(first, info.spec.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut trigger = probe.trigger();
    loop {
        let due = match trigger.as_mut() {
            Some(rx) => tokio::select! {
                tick = ticker.tick() => tick,
                changed = rx.changed() => {
                    if changed.is_err() {
                        trigger = None;
                        continue;
                    }
                    Instant::now()
                }
            },
            None => ticker.tick().await,
        };
        let Ok(_permit) = permits.acquire().await else { return };
        let lateness = Instant::now().saturating_duration_since(due);
        let (at, duration, finding) = run_once(&info, probe.as_ref()).await;
        let observation = Observation { probe: info.clone(), at, duration, lateness, finding };
        if out.send(observation).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::config::{Check, DnsCheck, ProbeSpec, Rcode, RecordType};
    use crate::probe::RunFuture;

    /// A probe that records when it ran and takes `takes` to finish.
    struct Recorder {
        takes: Duration,
        starts: Arc<Mutex<Vec<Instant>>>,
        running: Arc<AtomicUsize>,
        max_running: Arc<AtomicUsize>,
    }

    impl Probe for Recorder {
        fn run(&self) -> RunFuture<'_> {
            Box::pin(async move {
                self.starts.lock().unwrap().push(Instant::now());
                let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
                self.max_running.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(self.takes).await;
                self.running.fetch_sub(1, Ordering::SeqCst);
                Finding::ok("recorded")
            })
        }
    }

    fn probe_ref(index: usize, interval: Duration) -> Arc<ProbeRef> {
        let check = DnsCheck {
            query: "x.test".into(),
            record: RecordType::A,
            server: None,
            recursion: true,
            expect_rcode: Rcode::NoError,
            expect_answer: true,
        };
        let spec = ProbeSpec {
            id: format!("p{index}"),
            interval,
            timeout: interval,
            fail_after: 1,
            recover_after: 1,
            check: Check::Dns(check),
        };
        Arc::new(ProbeRef { index, service: "s".into(), spec })
    }

    struct Run {
        starts: Vec<Arc<Mutex<Vec<Instant>>>>,
        max_running: Vec<Arc<AtomicUsize>>,
        _schedule: Schedule,
        _rx: mpsc::Receiver<Observation>,
    }

    fn start(n: usize, interval: Duration, takes: Duration) -> Run {
        let (tx, mut rx) = mpsc::channel(1 << 16);
        let mut starts = Vec::new();
        let mut max_running = Vec::new();
        let probes = (0..n)
            .map(|i| {
                let s = Arc::new(Mutex::new(Vec::new()));
                let m = Arc::new(AtomicUsize::new(0));
                starts.push(s.clone());
                max_running.push(m.clone());
                let recorder = Recorder { takes, starts: s, running: Arc::new(AtomicUsize::new(0)), max_running: m };
                (probe_ref(i, interval), Box::new(recorder) as Box<dyn Probe>)
            })
            .collect();
        let schedule = Schedule::start(probes, tx);
        // Drain observations so senders never block.
        let (_keep, rx2) = mpsc::channel(1);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        Run { starts, max_running, _schedule: schedule, _rx: rx2 }
    }

    #[tokio::test(start_paused = true)]
    async fn first_runs_are_spread_across_the_interval() {
        let origin = Instant::now();
        let run = start(10, Duration::from_secs(10), Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(9_990)).await;
        let mut firsts: Vec<Duration> =
            run.starts.iter().map(|s| s.lock().unwrap()[0].duration_since(origin)).collect();
        firsts.sort();
        for (i, first) in firsts.iter().enumerate() {
            let ideal = Duration::from_secs(i as u64);
            assert!(first.abs_diff(ideal) < Duration::from_millis(50), "probe {i} first ran at {first:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn probe_slower_than_its_interval_never_overlaps_itself() {
        let run = start(1, Duration::from_secs(1), Duration::from_millis(2_500));
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(run.max_running[0].load(Ordering::SeqCst), 1);
        let starts = run.starts[0].lock().unwrap().clone();
        assert!(starts.len() >= 9, "ran {} times", starts.len());
        for pair in starts.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(2_500));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn runs_stay_on_the_grid_over_hours_even_when_each_run_takes_time() {
        let origin = Instant::now();
        let run = start(1, Duration::from_secs(10), Duration::from_millis(700));
        tokio::time::sleep(Duration::from_secs(6 * 3600)).await;
        let starts = run.starts[0].lock().unwrap().clone();
        assert!(starts.len() >= 2159, "ran {} times", starts.len());
        for (k, at) in starts.iter().enumerate() {
            let ideal = Duration::from_secs(10 * k as u64);
            let off = at.duration_since(origin).abs_diff(ideal);
            assert!(off < Duration::from_millis(5), "run {k} is {off:?} off the grid");
        }
    }
}
