//! When probes run: intervals, spread, timeouts, concurrency.
//!
//! One task schedules every probe from a priority queue of due times:
//! probe k's runs are due at `start + offset + n * interval` (a fixed grid, so
//! there is no drift over hours), and the offsets spread first runs evenly
//! across each interval so a thousand probes do not fire in the same
//! millisecond. A probe still running when its next tick comes skips that
//! tick, so it never overlaps itself. At most [`MAX_CONCURRENT_RUNS`] run at
//! once; due probes beyond that wait their turn (and report the lateness).
//! Probes with a trigger (bgp) also run whenever it fires — at once, or right
//! after the current run if one is in flight, so no change goes unjudged.
//!
//! A single scheduler instead of a task and a timer per probe keeps 10,000
//! probes cheap: one timer, one queue entry per probe, futures only for runs
//! in flight.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::stream::{FuturesUnordered, SelectAll, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::probe::{Finding, Observation, Probe, ProbeRef};

/// How many probe runs may be in flight at once.
pub const MAX_CONCURRENT_RUNS: usize = 512;

/// First runs are placed on a grid of slots holding about this many runs:
/// probes due in the same slot start together and share a wake-up of the
/// process (which, at low rates, costs more than the probe itself), while a
/// slot stays small enough that its last probe starts only a few
/// milliseconds late.
const RUNS_PER_SLOT: f64 = 25.0;
/// The slot length's bounds.
const SLOT_MIN: Duration = Duration::from_millis(1);
const SLOT_MAX: Duration = Duration::from_millis(250);

/// The slot length for `probes`: RUNS_PER_SLOT runs at their total rate.
fn slot_length(probes: &[(Arc<ProbeRef>, Box<dyn Probe>)]) -> Duration {
    let rate: f64 = probes.iter().map(|(p, _)| 1.0 / p.spec.interval.as_secs_f64().max(1e-3)).sum();
    if rate <= 0.0 {
        return SLOT_MAX;
    }
    Duration::from_secs_f64(RUNS_PER_SLOT / rate).clamp(SLOT_MIN, SLOT_MAX)
}

/// Slack beyond a probe's own timeout before the scheduler gives up on a run.
const TIMEOUT_SLACK: Duration = Duration::from_secs(2);

/// The running schedule; dropping it stops every probe.
pub struct Schedule {
    task: JoinHandle<()>,
}

impl Schedule {
    /// Starts scheduling `probes`. Observations go to `out`; each carries the
    /// lateness of its run against its due time.
    pub fn start(probes: Vec<(Arc<ProbeRef>, Box<dyn Probe>)>, out: mpsc::Sender<Observation>) -> Schedule {
        let origin = Instant::now();
        let total = probes.len().max(1) as f64;
        let slot = slot_length(&probes).as_nanos();
        let mut due = BinaryHeap::with_capacity(probes.len());
        let mut triggers: Triggers = SelectAll::new();
        let slots: Vec<Slot> = probes
            .into_iter()
            .enumerate()
            .map(|(i, (info, probe))| {
                // Even spread: probe i of n starts i/n of the way into its
                // interval, rounded down to the slot grid.
                let offset = info.spec.interval.mul_f64(i as f64 / total);
                let offset = Duration::from_nanos((offset.as_nanos() / slot * slot) as u64);
                due.push(Reverse((origin + offset, i)));
                if let Some(changes) = probe.trigger() {
                    triggers.push(Box::pin(changes.map(move |()| i)));
                }
                Slot { info, probe: Arc::from(probe), running: false, rerun: false }
            })
            .collect();
        let scheduler =
            Scheduler { slots, due, triggers, in_flight: FuturesUnordered::new(), waiting: VecDeque::new(), out };
        Schedule { task: tokio::spawn(scheduler.run()) }
    }

    /// Stops scheduling; runs in flight are dropped.
    pub async fn stop(self) {
        self.task.abort();
        let _ = (&mut { self }.task).await;
    }
}

impl Drop for Schedule {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One run with the scheduler's safety timeout around the probe's own.
pub async fn run_once(info: &ProbeRef, probe: &dyn Probe) -> (SystemTime, Duration, Finding) {
    let at = SystemTime::now();
    let started = Instant::now();
    let finding = match tokio::time::timeout(info.spec.timeout + TIMEOUT_SLACK, probe.run()).await {
        Ok(finding) => finding,
        Err(_) => {
            let reason = info.kind().timeout_reason();
            Finding::fail(
                reason,
                format!("run did not finish within {}", humantime::format_duration(info.spec.timeout)),
            )
        }
    };
    (at, started.elapsed(), finding)
}

struct Slot {
    info: Arc<ProbeRef>,
    probe: Arc<dyn Probe>,
    running: bool,
    /// A trigger fired while the probe was running: run again when it ends.
    rerun: bool,
}

type Run = Pin<Box<dyn Future<Output = (usize, Observation)> + Send>>;
type Triggers = SelectAll<Pin<Box<dyn futures_util::Stream<Item = usize> + Send>>>;

struct Scheduler {
    slots: Vec<Slot>,
    /// (due time, slot) of every probe's next tick.
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    triggers: Triggers,
    in_flight: FuturesUnordered<Run>,
    /// Due probes waiting for a free run slot, with their due times.
    waiting: VecDeque<(usize, Instant)>,
    out: mpsc::Sender<Observation>,
}

impl Scheduler {
    fn start(&mut self, i: usize, due: Instant) {
        let slot = &mut self.slots[i];
        slot.running = true;
        let (info, probe) = (slot.info.clone(), slot.probe.clone());
        self.in_flight.push(Box::pin(async move {
            let lateness = Instant::now().saturating_duration_since(due);
            let (at, duration, finding) = run_once(&info, probe.as_ref()).await;
            (i, Observation { probe: info, at, duration, lateness, finding })
        }));
    }

    /// Starts every probe whose tick has come and queues its next tick.
    fn start_due(&mut self, now: Instant) {
        while let Some(&Reverse((at, i))) = self.due.peek() {
            if at > now {
                break;
            }
            self.due.pop();
            let interval = self.slots[i].info.spec.interval;
            // The next point of this probe's grid after now (ticks missed
            // while it ran or while we were late are skipped, not bunched).
            let behind = now.saturating_duration_since(at).as_nanos() / interval.as_nanos().max(1);
            let next = at + interval * (behind as u32 + 1);
            self.due.push(Reverse((next, i)));
            if self.slots[i].running {
                continue;
            }
            if self.in_flight.len() >= MAX_CONCURRENT_RUNS {
                self.slots[i].running = true;
                self.waiting.push_back((i, at));
            } else {
                self.start(i, at);
            }
        }
    }

    async fn run(mut self) {
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        loop {
            if let Some(&Reverse((at, _))) = self.due.peek()
                && sleep.deadline() != at
            {
                sleep.as_mut().reset(at);
            }
            let has_triggers = !self.triggers.is_empty();
            tokio::select! {
                biased;
                Some((i, observation)) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.slots[i].running = false;
                    if self.out.send(observation).await.is_err() {
                        return;
                    }
                    if std::mem::take(&mut self.slots[i].rerun) {
                        self.start(i, Instant::now());
                    }
                    while self.in_flight.len() < MAX_CONCURRENT_RUNS {
                        let Some((j, at)) = self.waiting.pop_front() else { break };
                        self.start(j, at);
                    }
                }
                () = &mut sleep, if !self.due.is_empty() => self.start_due(Instant::now()),
                Some(i) = self.triggers.next(), if has_triggers => {
                    if self.slots[i].running {
                        self.slots[i].rerun = true;
                    } else {
                        self.start(i, Instant::now());
                    }
                }
                else => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::RecordType;

    use crate::config::{Check, ProbeSpec};
    use crate::probe::RunFuture;
    use crate::probe::dns::{DnsCheck, DnsTransport};

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
            transport: DnsTransport::Udp,
            servers: Vec::new(),
            server_name: None,
            ca_file: None,
            system_roots: false,
            require_all: false,
            authoritative: false,
            recursion: true,
            expect_rcode: ResponseCode::NoError,
            expect_answer: true,
            delegation: None,
            expect_answer_in: Vec::new(),
        };
        let spec = ProbeSpec {
            id: format!("p{index}"),
            interval,
            timeout: Duration::from_secs(30),
            fail_after: 1,
            recover_after: 1,
            essential: false,
            group: None,
            check: Check::Dns(Arc::new(check)),
        };
        Arc::new(ProbeRef { index, service: "s".into(), spec: Arc::new(spec) })
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

    /// A probe with a trigger, counting its runs: any state behind a
    /// `watch` channel will do, the scheduler knows nothing of BGP.
    struct Triggered {
        rx: tokio::sync::watch::Receiver<u32>,
        runs: Arc<AtomicUsize>,
        takes: Duration,
    }

    impl Probe for Triggered {
        fn run(&self) -> RunFuture<'_> {
            Box::pin(async move {
                self.runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(self.takes).await;
                Finding::ok("judged")
            })
        }

        fn trigger(&self) -> Option<crate::probe::kind::Trigger> {
            let changes = futures_util::stream::unfold(self.rx.clone(), |mut rx| async move {
                rx.changed().await.ok()?;
                Some(((), rx))
            });
            Some(Box::pin(changes))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_trigger_runs_the_probe_at_once_and_a_change_during_a_run_is_not_lost() {
        let (state, watched) = tokio::sync::watch::channel(0u32);
        let runs = Arc::new(AtomicUsize::new(0));
        let probe = Triggered { rx: watched, runs: runs.clone(), takes: Duration::from_millis(100) };
        let (tx, mut rx) = mpsc::channel(64);
        // Interval of an hour: every run after the first comes from the trigger.
        let _schedule = Schedule::start(vec![(probe_ref(0, Duration::from_secs(3600)), Box::new(probe))], tx);
        rx.recv().await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        state.send(1).unwrap();
        let first = rx.recv().await.unwrap();
        assert_eq!(first.lateness, Duration::ZERO);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        // Three changes while a run is in flight: exactly one more run after it.
        state.send(2).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        state.send(3).unwrap();
        state.send(4).unwrap();
        rx.recv().await.unwrap();
        rx.recv().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn runs_in_flight_are_bounded_and_the_wait_shows_as_lateness() {
        let (tx, mut rx) = mpsc::channel(1 << 16);
        let running = Arc::new(AtomicUsize::new(0));
        let max_running = Arc::new(AtomicUsize::new(0));
        // 1,000 probes at a 60 ms interval: all due within the first 60 ms,
        // each run taking 5 s.
        let probes = (0..1000)
            .map(|i| {
                let r = Recorder {
                    takes: Duration::from_secs(5),
                    starts: Arc::new(Mutex::new(Vec::new())),
                    running: running.clone(),
                    max_running: max_running.clone(),
                };
                (probe_ref(i, Duration::from_millis(60)), Box::new(r) as Box<dyn Probe>)
            })
            .collect();
        let _schedule = Schedule::start(probes, tx);
        let mut late = Duration::ZERO;
        for _ in 0..1000 {
            late = late.max(rx.recv().await.unwrap().lateness);
        }
        assert_eq!(max_running.load(Ordering::SeqCst), MAX_CONCURRENT_RUNS);
        assert!(late >= Duration::from_millis(4_900), "the second wave waited a whole run: {late:?}");
    }
}
