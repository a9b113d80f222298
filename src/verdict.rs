//! From runs to states: probe state machines, service status, root cause,
//! and the own-connectivity guard.
//!
//! [`Verdict`] is a plain state machine with no I/O: observations go in,
//! [`Event`]s come out through a callback, so `run`, `replay` and the tests
//! share exactly the same rules (README, "What a run can say"):
//! - a probe is DOWN after `fail_after` consecutive failures, UP again after
//!   `recover_after` consecutive successes (a first success confirms UP);
//!   an inconclusive run (`bgp_unknown`) makes it unknown;
//! - a service is `down` when every probe of its highest layer is DOWN,
//!   `degraded` when some probe is DOWN, `unknown` while the monitor is
//!   offline or nothing is confirmed, else `up`;
//! - the root cause is the lowest layer with a DOWN probe;
//! - when the latest run of every guard failed, the monitor is offline:
//!   probe states are forgotten and failures are not counted until a guard
//!   passes again, so our own outage never reads as a platform's.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cause::{Cause, Fault};
use crate::config::Config;
use crate::probe::Layer;
use crate::probe::{Finding, Observation, ProbeRef, Reason};
use crate::words::words;

words! {
/// A probe's confirmed state (its word is the API's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeStatus {
    /// Not confirmed either way yet.
    Unknown = "unknown",
    /// Passing.
    Up = "up",
    /// Failing for `fail_after` runs.
    Down = "down",
}
}

/// The latest run of a probe.
#[derive(Debug, Clone)]
pub struct LastRun {
    /// When it started.
    pub at: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// What it found.
    pub finding: Finding,
}

/// Everything the verdict knows about one probe.
#[derive(Debug, Clone)]
pub struct ProbeState {
    /// The probe.
    pub probe: Arc<ProbeRef>,
    /// Confirmed state.
    pub status: ProbeStatus,
    /// When `status` last changed.
    pub since: SystemTime,
    /// The latest run.
    pub last: Option<LastRun>,
    /// The latest failing run (kept while DOWN, to explain it).
    pub last_failure: Option<Finding>,
    failures: u32,
    successes: u32,
}

impl ProbeState {
    /// The state one run would leave if its result were confirmed: UP when
    /// it passed, DOWN (explained by it) when it failed, unknown when it
    /// said nothing. What `chatpulse check` judges a service on.
    pub fn as_if_confirmed(probe: Arc<ProbeRef>, finding: &Finding, at: SystemTime) -> ProbeState {
        let status = match finding.result {
            Ok(()) => ProbeStatus::Up,
            Err(reason) if reason.is_inconclusive() => ProbeStatus::Unknown,
            Err(_) => ProbeStatus::Down,
        };
        let last_failure = finding.result.is_err().then(|| finding.clone());
        ProbeState { probe, status, since: at, last: None, last_failure, failures: 0, successes: 0 }
    }
}

words! {
/// A service's status (README, "What a run can say"); its word is used
/// everywhere (API, metrics, store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceStatus {
    /// Reachable.
    Up = "up",
    /// Some probe DOWN, users can still reach it.
    Degraded = "degraded",
    /// Every probe of its highest layer DOWN.
    Down = "down",
    /// Monitor offline or nothing confirmed.
    Unknown = "unknown",
}
}

/// Why a service is not up: the lowest layer with a DOWN probe, and what
/// failed above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootCause {
    /// The cause itself: layer, faults (reason at DNS server / HTTP host /
    /// origin AS), summary. Services with equal keys are grouped.
    pub cause: Cause,
    /// The root summary followed by the effects at higher layers
    /// (`bgp: ... → dns: dns_servfail → http: http_timeout`).
    pub chain: String,
}

/// Everything the verdict knows about one service.
#[derive(Debug, Clone)]
pub struct ServiceState {
    /// Service id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Current status.
    pub status: ServiceStatus,
    /// When `status` last changed.
    pub since: SystemTime,
    /// Why it is not up (None when up or unknown).
    pub cause: Option<RootCause>,
    /// Indices of its probes in the plan.
    pub probes: Vec<usize>,
}

/// What changed, for the sinks (metrics, store, incidents, API).
#[derive(Debug)]
pub enum Event<'a> {
    /// A run was judged (after the probe's state was updated).
    Observed {
        /// The run.
        observation: &'a Observation,
        /// The probe's state after it.
        state: &'a ProbeState,
    },
    /// A probe's confirmed state changed.
    ProbeChanged {
        /// The probe's new state.
        state: &'a ProbeState,
        /// What it was.
        from: ProbeStatus,
    },
    /// A service's status or root cause changed.
    ServiceChanged {
        /// The service's new state.
        service: &'a ServiceState,
        /// Its probes' states, in config order.
        probes: &'a [&'a ProbeState],
        /// The status before.
        from: ServiceStatus,
        /// When.
        at: SystemTime,
    },
    /// The monitor went offline or came back.
    OnlineChanged {
        /// The new state.
        online: bool,
        /// When.
        at: SystemTime,
    },
}

/// The state machine over all probes and services.
pub struct Verdict {
    probes: Vec<ProbeState>,
    services: Vec<ServiceState>,
    /// `service_of[i]`: index into `services` of probe i (None for guards).
    service_of: Vec<Option<usize>>,
    guard_ok: Vec<(usize, Option<bool>)>,
    online: bool,
}

impl Verdict {
    /// A verdict over `plan` (from [`crate::config::Config::plan`]) at time `now`.
    pub fn new(config: &Config, plan: &[Arc<ProbeRef>], now: SystemTime) -> Verdict {
        let mut verdict = Verdict {
            probes: Vec::new(),
            services: Vec::new(),
            service_of: Vec::new(),
            guard_ok: Vec::new(),
            online: true,
        };
        verdict.install(config, plan, now, None);
        verdict
    }

    fn install(&mut self, config: &Config, plan: &[Arc<ProbeRef>], now: SystemTime, old: Option<Verdict>) {
        let (old_probes, old_services, old_guards) = match old {
            Some(v) => (v.probes, v.services, v.guard_ok),
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        // Lookups by key, so that installing a plan stays linear in its size
        // (a reload of 100,000 probes must not stop the monitor).
        let old_by_id: HashMap<(&str, &str), &ProbeState> =
            old_probes.iter().map(|s| ((s.probe.service.as_str(), s.probe.spec.id.as_str()), s)).collect();
        self.probes = plan
            .iter()
            .map(|p| {
                let kept = old_by_id.get(&(p.service.as_str(), p.spec.id.as_str())).filter(|s| s.probe.spec == p.spec);
                match kept {
                    Some(s) => ProbeState { probe: p.clone(), ..(*s).clone() },
                    None => ProbeState {
                        probe: p.clone(),
                        status: ProbeStatus::Unknown,
                        since: now,
                        last: None,
                        last_failure: None,
                        failures: 0,
                        successes: 0,
                    },
                }
            })
            .collect();
        let mut probes_of: HashMap<&str, Vec<usize>> = HashMap::new();
        for p in plan {
            probes_of.entry(p.service.as_str()).or_default().push(p.index);
        }
        let old_service: HashMap<&str, &ServiceState> = old_services.iter().map(|o| (o.id.as_str(), o)).collect();
        self.services = config
            .services
            .iter()
            .map(|s| {
                let kept = old_service.get(s.id.as_str());
                ServiceState {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    status: kept.map_or(ServiceStatus::Unknown, |o| o.status),
                    since: kept.map_or(now, |o| o.since),
                    cause: kept.and_then(|o| o.cause.clone()),
                    probes: probes_of.remove(s.id.as_str()).unwrap_or_default(),
                }
            })
            .collect();
        let position: HashMap<&str, usize> =
            self.services.iter().enumerate().map(|(i, s)| (s.id.as_str(), i)).collect();
        self.service_of = plan.iter().map(|p| position.get(p.service.as_str()).copied()).collect();
        self.guard_ok = plan
            .iter()
            .filter(|p| p.is_guard())
            .map(|p| {
                let kept = old_guards.iter().find(|(i, _)| old_probes.get(*i).is_some_and(|o| o.probe.spec == p.spec));
                (p.index, kept.and_then(|(_, ok)| *ok))
            })
            .collect();
        // Offline only while every remaining guard's latest run failed.
        self.online = !self.guard_ok.iter().all(|(_, ok)| *ok == Some(false)) || self.guard_ok.is_empty();
    }

    /// Switches to a new config, keeping the state of every probe whose
    /// definition did not change. Emits the resulting service changes.
    pub fn reconfigure(
        &mut self,
        config: &Config,
        plan: &[Arc<ProbeRef>],
        now: SystemTime,
        emit: &mut dyn FnMut(Event<'_>),
    ) {
        let old = std::mem::replace(
            self,
            Verdict {
                probes: Vec::new(),
                services: Vec::new(),
                service_of: Vec::new(),
                guard_ok: Vec::new(),
                online: self.online,
            },
        );
        let was_online = old.online;
        self.install(config, plan, now, Some(old));
        if self.online != was_online {
            emit(Event::OnlineChanged { online: self.online, at: now });
        }
        for i in 0..self.services.len() {
            self.judge_service(i, now, emit);
        }
    }

    /// True unless every guard's latest run failed.
    pub fn online(&self) -> bool {
        self.online
    }

    /// Probe states, by plan index.
    pub fn probes(&self) -> &[ProbeState] {
        &self.probes
    }

    /// Service states, in config order.
    pub fn services(&self) -> &[ServiceState] {
        &self.services
    }

    /// Judges one run. Runs of probes no longer in the plan are ignored.
    pub fn observe(&mut self, observation: &Observation, emit: &mut dyn FnMut(Event<'_>)) {
        let index = observation.probe.index;
        let current = self.probes.get(index).is_some_and(|s| Arc::ptr_eq(&s.probe, &observation.probe));
        if !current {
            return;
        }
        let at = observation.at + observation.duration;
        if observation.probe.is_guard() {
            self.observe_guard(observation, at, emit);
            return;
        }
        let state = &mut self.probes[index];
        state.last =
            Some(LastRun { at: observation.at, duration: observation.duration, finding: observation.finding.clone() });
        let from = state.status;
        if self.online {
            step(state, &observation.finding, at);
        }
        let state = &self.probes[index];
        emit(Event::Observed { observation, state });
        if state.status != from {
            emit(Event::ProbeChanged { state, from });
        }
        // Only a change of state, or a new failure of a DOWN probe (which may
        // change the cause's details), can change the service.
        let may_change = state.status != from || state.status == ProbeStatus::Down;
        if let Some(service) = self.service_of[index].filter(|_| may_change) {
            self.judge_service(service, at, emit);
        }
    }

    fn observe_guard(&mut self, observation: &Observation, at: SystemTime, emit: &mut dyn FnMut(Event<'_>)) {
        let index = observation.probe.index;
        let ok = observation.finding.result.is_ok();
        // A guard run the monitor could not even make (no socket) says
        // nothing about connectivity: it neither takes the monitor offline
        // nor brings it back.
        let skipped = observation.finding.result == Err(Reason::ProbeResource);
        if let Some(slot) = self.guard_ok.iter_mut().find(|(i, _)| *i == index).filter(|_| !skipped) {
            slot.1 = Some(ok);
        }
        let state = &mut self.probes[index];
        state.last =
            Some(LastRun { at: observation.at, duration: observation.duration, finding: observation.finding.clone() });
        let from = state.status;
        step(state, &observation.finding, at);
        let state = &self.probes[index];
        emit(Event::Observed { observation, state });
        if state.status != from {
            emit(Event::ProbeChanged { state, from });
        }
        let all_failed = self.guard_ok.iter().all(|(_, ok)| *ok == Some(false));
        let online = !all_failed;
        if online == self.online {
            return;
        }
        self.online = online;
        emit(Event::OnlineChanged { online, at });
        if !online {
            // Our own connectivity is gone: nothing we saw lately can be
            // trusted, and nothing we see now counts.
            for i in 0..self.probes.len() {
                if self.probes[i].probe.is_guard() {
                    continue;
                }
                let state = &mut self.probes[i];
                let from = state.status;
                state.failures = 0;
                state.successes = 0;
                if from != ProbeStatus::Unknown {
                    state.status = ProbeStatus::Unknown;
                    state.since = at;
                    emit(Event::ProbeChanged { state: &self.probes[i], from });
                }
            }
        }
        for i in 0..self.services.len() {
            self.judge_service(i, at, emit);
        }
    }

    fn judge_service(&mut self, index: usize, at: SystemTime, emit: &mut dyn FnMut(Event<'_>)) {
        let service = &self.services[index];
        let states: Vec<&ProbeState> = service.probes.iter().map(|&i| &self.probes[i]).collect();
        let status = service_status(&states, self.online);
        let cause = match status {
            ServiceStatus::Down | ServiceStatus::Degraded => root_cause(&states),
            _ => None,
        };
        let service = &mut self.services[index];
        let from = service.status;
        if from == status && service.cause == cause {
            return;
        }
        if from != status {
            service.since = at;
        }
        service.status = status;
        service.cause = cause;
        let service = &self.services[index];
        let probes: Vec<&ProbeState> = service.probes.iter().map(|&i| &self.probes[i]).collect();
        emit(Event::ServiceChanged { service, probes: &probes, from, at });
    }
}

/// Advances one probe's state machine by one run.
fn step(state: &mut ProbeState, finding: &Finding, at: SystemTime) {
    let spec = &state.probe.spec;
    let next = match finding.result {
        Ok(()) => {
            state.failures = 0;
            state.successes = state.successes.saturating_add(1);
            match state.status {
                ProbeStatus::Down if state.successes < spec.recover_after => ProbeStatus::Down,
                _ => ProbeStatus::Up,
            }
        }
        // The monitor could not make the run (README): skipped, the
        // state left exactly as it was.
        Err(Reason::ProbeResource) => return,
        Err(reason) if reason.is_inconclusive() => {
            state.failures = 0;
            state.successes = 0;
            ProbeStatus::Unknown
        }
        Err(_) => {
            state.successes = 0;
            state.failures = state.failures.saturating_add(1);
            state.last_failure = Some(finding.clone());
            if state.failures >= spec.fail_after { ProbeStatus::Down } else { state.status }
        }
    };
    if next != state.status {
        state.status = next;
        state.since = at;
    }
}

/// README, "Service status" status of a service from its probes' states.
///
/// A service with essential probes is `down` only when one of its
/// essential groups has every member DOWN (an essential probe without a
/// group is a group of one); a failing website beside healthy chat
/// endpoints only degrades it. A service without essential probes is
/// `down` when every probe of its highest layer is DOWN.
pub fn service_status(probes: &[&ProbeState], online: bool) -> ServiceStatus {
    if !online || probes.iter().all(|p| p.status == ProbeStatus::Unknown) {
        return ServiceStatus::Unknown;
    }
    let down = |p: &&ProbeState| p.status == ProbeStatus::Down;
    let mut groups: BTreeMap<(bool, &str), bool> = BTreeMap::new();
    for p in probes.iter().filter(|p| p.probe.spec.essential) {
        let spec = &p.probe.spec;
        // Named groups and groups of one cannot collide: the flag keeps them apart.
        let key = match &spec.group {
            Some(name) => (true, name.as_str()),
            None => (false, spec.id.as_str()),
        };
        let all_down = groups.entry(key).or_insert(true);
        *all_down &= down(p);
    }
    let is_down = if groups.is_empty() {
        let layer = |p: &&&ProbeState| p.probe.kind().layer();
        let Some(top) = probes.iter().map(|p| layer(&p)).max() else { return ServiceStatus::Unknown };
        probes.iter().filter(|p| layer(p) == top).all(down)
    } else {
        groups.values().any(|all_down| *all_down)
    };
    if is_down {
        ServiceStatus::Down
    } else if probes.iter().any(down) {
        ServiceStatus::Degraded
    } else {
        ServiceStatus::Up
    }
}

/// Where a failure happened, for grouping: DNS server, HTTP host, origin AS.
fn scope(probe: &ProbeRef) -> String {
    probe.spec.check.scope()
}

/// The lowest layer with a DOWN probe, its details, and the chain above it.
pub fn root_cause(probes: &[&ProbeState]) -> Option<RootCause> {
    let down: Vec<&&ProbeState> = probes.iter().filter(|p| p.status == ProbeStatus::Down).collect();
    let layer = down.iter().map(|p| p.probe.kind().layer()).min()?;
    let failure_of = |p: &ProbeState| -> (Reason, String) {
        match &p.last_failure {
            Some(Finding { result: Err(reason), detail, .. }) => (*reason, detail.clone()),
            _ => (Reason::BgpUnknown, "failing".into()),
        }
    };
    let at_root: Vec<&&ProbeState> = down.iter().copied().filter(|p| p.probe.kind().layer() == layer).collect();
    let details: Vec<String> = at_root
        .iter()
        .map(|p| {
            let (reason, detail) = failure_of(p);
            crate::cause::sentence(&p.probe.spec.id, reason, &p.probe.spec.check.target(), &detail)
        })
        .collect();
    let summary = format!("{layer}: {}", details.join("; "));
    let faults = at_root.iter().map(|p| Fault { reason: failure_of(p).0, scope: scope(&p.probe) });
    let mut chain = summary.clone();
    for higher in [Layer::Dns, Layer::Transport, Layer::Chat, Layer::Http].into_iter().filter(|k| *k > layer) {
        let reasons: BTreeSet<&str> =
            down.iter().filter(|p| p.probe.kind().layer() == higher).map(|p| failure_of(p).0.as_str()).collect();
        if !reasons.is_empty() {
            chain.push_str(&format!(" → {higher}: {}", reasons.into_iter().collect::<Vec<_>>().join(", ")));
        }
    }
    Some(RootCause { cause: Cause::new(layer, faults, summary), chain })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The monitor and guard every fixture shares (probe 0 is the guard).
    macro_rules! header {
        () => {
            r#"
[monitor]
fail_after = 3
recover_after = 2

[[guard]]
kind = "dns"
query = "."
record = "NS"
server = "127.0.0.1:5301"
"#
        };
    }

    const CONFIG: &str = concat!(
        header!(),
        r#"
[[service]]
id = "whatsapp"
name = "WhatsApp"
  [[service.probe]]
  kind = "bgp"
  prefix = "129.134.30.0/23"
  origin = 32934
  [[service.probe]]
  kind = "dns"
  query = "web.whatsapp.com"
  server = "127.0.0.1:5300"
  [[service.probe]]
  kind = "http"
  url = "https://web.whatsapp.com/"
  [[service.probe]]
  kind = "http"
  url = "https://www.whatsapp.com/"
"#
    );

    struct Rig {
        verdict: Verdict,
        plan: Vec<Arc<ProbeRef>>,
        clock: SystemTime,
        events: Vec<String>,
    }

    impl Rig {
        fn new() -> Rig {
            Rig::with(CONFIG)
        }

        fn with(text: &str) -> Rig {
            let config = Config::parse(Path::new("t.toml"), text).unwrap();
            let plan = config.plan();
            let clock = SystemTime::UNIX_EPOCH + Duration::from_secs(1_633_361_000);
            Rig { verdict: Verdict::new(&config, &plan, clock), plan, clock, events: Vec::new() }
        }

        /// Runs probe `i` (0 = guard, 1 = bgp, 2 = dns, 3/4 = http) once.
        fn run(&mut self, i: usize, result: Result<(), Reason>) {
            self.clock += Duration::from_secs(1);
            let detail = match result {
                Ok(()) => "fine".to_string(),
                Err(r) => format!("{} failed", r.as_str()),
            };
            let observation = Observation {
                probe: self.plan[i].clone(),
                at: self.clock,
                duration: Duration::from_millis(3),
                lateness: Duration::ZERO,
                finding: Finding { result, detail, evidence: Default::default() },
            };
            let events = &mut self.events;
            self.verdict.observe(&observation, &mut |e| {
                if let Event::ServiceChanged { service, from, .. } = e {
                    events.push(format!("{}->{}", from.as_str(), service.status.as_str()));
                }
            });
        }

        fn all_ok(&mut self) {
            for i in 0..self.plan.len() {
                self.run(i, Ok(()));
            }
        }

        fn service(&self) -> &ServiceState {
            &self.verdict.services()[0]
        }

        fn probe(&self, i: usize) -> ProbeStatus {
            self.verdict.probes()[i].status
        }
    }

    #[test]
    fn nothing_confirmed_is_unknown_then_first_success_is_up() {
        let mut rig = Rig::new();
        assert_eq!(rig.service().status, ServiceStatus::Unknown);
        rig.run(2, Err(Reason::DnsServfail));
        assert_eq!(rig.service().status, ServiceStatus::Unknown, "one failure confirms nothing");
        rig.all_ok();
        assert_eq!(rig.service().status, ServiceStatus::Up);
        assert_eq!(rig.events, vec!["unknown->up"]);
    }

    #[test]
    fn probe_is_down_after_exactly_fail_after_failures_and_up_after_recover_after() {
        let mut rig = Rig::new();
        rig.all_ok();
        rig.run(2, Err(Reason::DnsServfail));
        rig.run(2, Err(Reason::DnsServfail));
        assert_eq!(rig.probe(2), ProbeStatus::Up);
        rig.run(2, Err(Reason::DnsServfail));
        assert_eq!(rig.probe(2), ProbeStatus::Down);
        rig.run(2, Ok(()));
        assert_eq!(rig.probe(2), ProbeStatus::Down);
        rig.run(2, Ok(()));
        assert_eq!(rig.probe(2), ProbeStatus::Up);
    }

    #[test]
    fn a_success_in_between_resets_the_failure_count() {
        let mut rig = Rig::new();
        rig.all_ok();
        for _ in 0..5 {
            rig.run(2, Err(Reason::DnsTimeout));
            rig.run(2, Err(Reason::DnsTimeout));
            rig.run(2, Ok(()));
        }
        assert_eq!(rig.probe(2), ProbeStatus::Up);
    }

    #[test]
    fn lower_layer_down_alone_degrades_and_top_layer_down_takes_the_service_down() {
        let mut rig = Rig::new();
        rig.all_ok();
        for _ in 0..3 {
            rig.run(2, Err(Reason::DnsServfail));
        }
        assert_eq!(rig.service().status, ServiceStatus::Degraded);
        let cause = rig.service().cause.clone().unwrap();
        assert_eq!(cause.cause.layer, Layer::Dns);
        // SPEC 9.7: `<layer>: <probe id> <reason> — <what happened>`, the target once.
        assert_eq!(
            cause.cause.summary,
            "dns: dns-1 dns_servfail — dns_servfail failed (web.whatsapp.com A @127.0.0.1:5300)"
        );
        // One of two http probes down: still degraded.
        for _ in 0..3 {
            rig.run(3, Err(Reason::HttpTimeout));
        }
        assert_eq!(rig.service().status, ServiceStatus::Degraded);
        for _ in 0..3 {
            rig.run(4, Err(Reason::HttpConnect));
        }
        assert_eq!(rig.service().status, ServiceStatus::Down);
        let cause = rig.service().cause.clone().unwrap();
        assert_eq!(cause.cause.layer, Layer::Dns, "root cause is the lowest layer with a DOWN probe");
        assert_eq!(
            cause.chain,
            "dns: dns-1 dns_servfail — dns_servfail failed (web.whatsapp.com A @127.0.0.1:5300) → http: http_connect, http_timeout"
        );
        assert_eq!(cause.cause.faults(), [Fault { reason: Reason::DnsServfail, scope: "127.0.0.1:5300".into() }]);
    }

    #[test]
    fn bgp_below_dns_becomes_the_root_cause() {
        let mut rig = Rig::new();
        rig.all_ok();
        for _ in 0..3 {
            rig.run(2, Err(Reason::DnsServfail));
            rig.run(1, Err(Reason::BgpInvisible));
        }
        let cause = rig.service().cause.clone().unwrap();
        assert_eq!(cause.cause.layer, Layer::Bgp);
        assert_eq!(cause.cause.faults(), [Fault { reason: Reason::BgpInvisible, scope: "AS32934".into() }]);
        assert!(
            cause.chain.starts_with(
                "bgp: bgp-1 bgp_invisible — bgp_invisible failed (129.134.30.0/23 AS32934) → dns: dns_servfail"
            ),
            "{}",
            cause.chain
        );
    }

    #[test]
    fn bgp_unknown_is_never_an_outage() {
        let mut rig = Rig::new();
        rig.all_ok();
        for _ in 0..10 {
            rig.run(1, Err(Reason::BgpUnknown));
        }
        assert_eq!(rig.probe(1), ProbeStatus::Unknown);
        assert_eq!(rig.service().status, ServiceStatus::Up);
    }

    #[test]
    fn an_essential_probe_down_takes_the_service_down_and_transport_sits_between_dns_and_http() {
        let text = CONFIG.replace(
            "  [[service.probe]]\n  kind = \"http\"\n  url = \"https://web.whatsapp.com/\"\n",
            "  [[service.probe]]\n  kind = \"tcp\"\n  address = \"g.whatsapp.net:5222\"\n  essential = true\n",
        );
        let mut rig = Rig::with(&text);
        rig.all_ok();
        for _ in 0..3 {
            rig.run(3, Err(Reason::TcpConnect));
        }
        // The web page still answers, but users cannot chat: down.
        assert_eq!(rig.service().status, ServiceStatus::Down);
        let cause = rig.service().cause.clone().unwrap();
        assert_eq!((cause.cause.layer, cause.cause.reason_words().as_str()), (Layer::Transport, "tcp_connect"));
        for _ in 0..3 {
            rig.run(2, Err(Reason::DnsServfail));
        }
        let cause = rig.service().cause.clone().unwrap();
        assert_eq!(cause.cause.layer, Layer::Dns, "dns is below transport");
        assert!(cause.chain.ends_with("→ transport: tcp_connect"), "{}", cause.chain);
    }

    /// Telegram's shape: two data centres as one essential group (probes 1
    /// and 2), the website beside them (probe 3); probe 0 is the guard.
    const TELEGRAM: &str = concat!(
        header!(),
        r#"
[[service]]
id = "telegram"
name = "Telegram"
  [[service.probe]]
  kind = "mtproto"
  id = "dc2"
  address = "149.154.167.51:443"
  essential = true
  group = "data-centres"
  [[service.probe]]
  kind = "mtproto"
  id = "dc4"
  address = "149.154.167.91:443"
  essential = true
  group = "data-centres"
  [[service.probe]]
  kind = "http"
  url = "https://telegram.org/"
"#
    );

    fn down(rig: &mut Rig, probe: usize, reason: Reason) {
        for _ in 0..3 {
            rig.run(probe, Err(reason));
        }
    }

    #[test]
    fn the_website_alone_down_only_degrades_a_service_with_essential_probes() {
        let mut rig = Rig::with(TELEGRAM);
        rig.all_ok();
        down(&mut rig, 3, Reason::HttpStatus);
        assert_eq!(rig.service().status, ServiceStatus::Degraded, "chat still works: users can message");
    }

    #[test]
    fn one_of_two_essential_members_down_degrades_and_both_down_is_down_with_cause_chat() {
        let mut rig = Rig::with(TELEGRAM);
        rig.all_ok();
        down(&mut rig, 1, Reason::ChatTimeout);
        assert_eq!(rig.service().status, ServiceStatus::Degraded, "the other data centre still serves");
        down(&mut rig, 2, Reason::ChatTimeout);
        assert_eq!(rig.service().status, ServiceStatus::Down);
        let cause = rig.service().cause.clone().unwrap();
        assert_eq!((cause.cause.layer, cause.cause.reason_words().as_str()), (Layer::Chat, "chat_timeout"));
        assert!(cause.cause.summary.starts_with("chat: "), "{}", cause.cause.summary);
    }

    #[test]
    fn essential_probes_without_a_group_are_groups_of_one_and_chat_sits_between_transport_and_http() {
        let text = TELEGRAM.replace("  group = \"data-centres\"\n", "");
        let mut rig = Rig::with(&text);
        rig.all_ok();
        down(&mut rig, 2, Reason::ChatRefused);
        assert_eq!(rig.service().status, ServiceStatus::Down, "an essential probe alone is its own group");
        assert!(Layer::Transport < Layer::Chat && Layer::Chat < Layer::Http);
    }

    #[test]
    fn a_website_down_everywhere_still_takes_down_a_service_without_essential_probes() {
        let text = TELEGRAM.replace("  essential = true\n  group = \"data-centres\"\n", "");
        let mut rig = Rig::with(&text);
        rig.all_ok();
        down(&mut rig, 3, Reason::HttpStatus);
        assert_eq!(rig.service().status, ServiceStatus::Down, "its highest layer (http) is all DOWN");
    }

    #[test]
    fn a_run_short_of_sockets_is_skipped_and_changes_nothing() {
        let mut rig = Rig::new();
        rig.all_ok();
        rig.run(2, Err(Reason::DnsServfail));
        rig.run(2, Err(Reason::DnsServfail));
        for _ in 0..10 {
            rig.run(2, Err(Reason::ProbeResource));
            rig.run(3, Err(Reason::ProbeResource));
            rig.run(0, Err(Reason::ProbeResource));
        }
        assert_eq!((rig.probe(2), rig.probe(3)), (ProbeStatus::Up, ProbeStatus::Up));
        assert!(rig.verdict.online(), "a guard run that could not be made is not a guard failure");
        assert_eq!(rig.service().status, ServiceStatus::Up);
        // The two failures before the shortage still count: a third confirms.
        rig.run(2, Err(Reason::DnsServfail));
        assert_eq!(rig.probe(2), ProbeStatus::Down);
    }

    #[test]
    fn a_reload_without_guards_brings_an_offline_monitor_back_online() {
        let mut rig = Rig::new();
        rig.all_ok();
        rig.run(0, Err(Reason::DnsTimeout));
        assert!(!rig.verdict.online());
        let without_guards = CONFIG
            .replace("[[guard]]\nkind = \"dns\"\nquery = \".\"\nrecord = \"NS\"\nserver = \"127.0.0.1:5301\"\n", "");
        let config = Config::parse(Path::new("t.toml"), &without_guards).unwrap();
        let plan = config.plan();
        let mut changes = Vec::new();
        rig.verdict.reconfigure(&config, &plan, rig.clock, &mut |e| {
            if let Event::OnlineChanged { online, .. } = e {
                changes.push(online);
            }
        });
        assert!(rig.verdict.online());
        assert_eq!(changes, vec![true]);
    }

    #[test]
    fn guard_failure_makes_services_unknown_not_down_and_failures_do_not_count() {
        let mut rig = Rig::new();
        rig.all_ok();
        rig.run(0, Err(Reason::DnsTimeout));
        assert!(!rig.verdict.online());
        assert_eq!(rig.service().status, ServiceStatus::Unknown);
        for i in 1..5 {
            for _ in 0..5 {
                rig.run(i, Err(Reason::DnsTimeout));
            }
        }
        assert_eq!(rig.service().status, ServiceStatus::Unknown);
        assert!(rig.events.iter().all(|e| !e.ends_with("->down")), "{:?}", rig.events);
        // Back online: the failures seen while offline are forgotten.
        rig.run(0, Ok(()));
        assert!(rig.verdict.online());
        rig.run(2, Err(Reason::DnsTimeout));
        assert_ne!(rig.probe(2), ProbeStatus::Down);
    }
}
