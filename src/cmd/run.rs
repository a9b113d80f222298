//! `chatpulse run`: the monitor itself.
//!
//! Wires the one-way flow — scheduler → probes → verdict → sinks (metrics,
//! log, store, incidents) — serves HTTP, reloads the config on SIGHUP (a bad
//! new config is rejected and the old one keeps running) and stops cleanly
//! on SIGTERM or ctrl-c.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, RwLock, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::api::{self, AppState};
use crate::bgp::VisibilityBoard;
use crate::bgp::feed::Feed;
use crate::config::Config;
use crate::health::Health;
use crate::incident::{Tracker, TrackerInput};
use crate::metrics::Metrics;
use crate::probe::{self, Observation, ProbeRef, Toolkit};
use crate::scheduler::Schedule;
use crate::sinks::Sinks;
use crate::store::{Reader, Retention, StatusRecord, Store};
use crate::time::unix;
use crate::verdict::{ServiceStatus, Verdict};

/// Why `run` could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr} ([server] listen): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Probe tools could not be created.
    #[error(transparent)]
    Toolkit(#[from] probe::ToolkitError),
    /// A BGP source cannot start.
    #[error(transparent)]
    Feed(#[from] crate::bgp::feed::FeedError),
    /// A signal handler could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The history store could not be opened.
    #[error("{path}: {source}")]
    Store {
        /// `[storage] path`.
        path: String,
        /// Why.
        source: crate::store::StoreError,
    },
}

/// Observations processed per verdict lock.
const BATCH: usize = 256;

/// The HTTP server task and the means to stop it.
struct HttpServer {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl HttpServer {
    async fn start(server: &crate::config::Server, state: Arc<AppState>) -> Result<HttpServer, RunError> {
        let addr = server.listen;
        let listener = TcpListener::bind(addr).await.map_err(|source| RunError::Bind { addr, source })?;
        let addr = listener.local_addr().unwrap_or(addr);
        let (stop, stopped) = oneshot::channel::<()>();
        let app = api::router(state);
        let task = tokio::spawn(api::serve::serve(listener, app, server.max_connections, async move {
            let _ = stopped.await;
        }));
        Ok(HttpServer { addr, stop, task })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The running monitor.
struct Daemon {
    path: PathBuf,
    config: Arc<Config>,
    config_tx: watch::Sender<Arc<Config>>,
    metrics: Arc<Metrics>,
    verdict: Arc<RwLock<Verdict>>,
    health: Arc<Health>,
    history: Arc<Reader>,
    toolkit: Toolkit,
    feed: Option<Feed>,
    plan: Vec<Arc<ProbeRef>>,
    schedule: Option<Schedule>,
    observations: mpsc::Sender<Observation>,
    http: Option<HttpServer>,
    sinks: Sinks,
}

fn start_schedule(toolkit: &Toolkit, plan: &[Arc<ProbeRef>], out: mpsc::Sender<Observation>) -> Schedule {
    Schedule::start(plan.iter().map(|p| (p.clone(), toolkit.build(p))).collect(), out)
}

impl Daemon {
    fn app_state(&self) -> Arc<AppState> {
        Arc::new(AppState {
            config: self.config_tx.subscribe(),
            verdict: self.verdict.clone(),
            metrics: self.metrics.clone(),
            health: self.health.clone(),
            history: self.history.clone(),
            feed: self.toolkit.bgp.status(),
        })
    }

    async fn handle(&mut self, first: Observation, rx: &mut mpsc::Receiver<Observation>) {
        let mut verdict = self.verdict.write().await;
        let sinks = &mut self.sinks;
        verdict.observe(&first, &mut |e| sinks.accept(&e));
        for _ in 1..BATCH {
            match rx.try_recv() {
                Ok(o) => verdict.observe(&o, &mut |e| sinks.accept(&e)),
                Err(_) => break,
            }
        }
    }

    async fn reload(&mut self) {
        let new = match self.read_config().await.and_then(|c| c.check_secrets().map(|()| c)) {
            Ok(c) => c,
            Err(e) => return self.reject(&e),
        };
        if new == *self.config {
            info!("config reloaded: no changes");
            self.metrics.set_reload_ok(true);
            return;
        }
        if new.server.listen != self.config.server.listen
            && let Err(e) = self.move_http(&new).await
        {
            return self.reject(&e);
        }
        if new.storage.path != self.config.storage.path {
            warn!("[storage] path changes take effect at the next start");
        }
        if let Some(schedule) = self.schedule.take() {
            schedule.stop().await;
        }
        let new = Arc::new(new);
        if new.bgp != self.config.bgp || new.watched_prefixes() != self.config.watched_prefixes() {
            self.restart_feed(&new).await;
        }
        let plan = new.plan();
        // A probe gone, or changed (its prefix, say), loses its series.
        self.metrics.install(&plan);
        self.forget_removed_services(&new);
        self.sinks.tell(TrackerInput::Services(new.services.iter().map(|s| s.id.clone()).collect()));
        {
            let mut verdict = self.verdict.write().await;
            let sinks = &mut self.sinks;
            verdict.reconfigure(&new, &plan, SystemTime::now(), &mut |e| sinks.accept(&e));
            for s in verdict.services() {
                self.metrics.set_service_status(&s.id, s.status);
            }
        }
        self.metrics.declare_config(&new);
        self.sinks.flush_runs();
        self.sinks.plan_changed();
        self.schedule = Some(start_schedule(&self.toolkit, &plan, self.observations.clone()));
        self.plan = plan;
        self.config = new.clone();
        self.config_tx.send_replace(new);
        self.metrics.set_reload_ok(true);
        crate::allocator::release_freed();
        info!(
            probes = self.plan.len() - self.config.guards.len(),
            guards = self.config.guards.len(),
            "config reloaded"
        );
    }

    /// Reads the config file again. Parsing a large config takes tens of
    /// milliseconds: not on the thread that runs the probes.
    async fn read_config(&self) -> Result<Config, crate::config::ConfigError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || Config::load(&path)).await.unwrap_or_else(|e| {
            Err(crate::config::ConfigError::Read {
                path: self.path.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })
        })
    }

    /// The reload cannot be applied: the running config stays in force.
    fn reject(&self, why: &dyn std::fmt::Display) {
        error!("config reload rejected, the running config stays in force: {why}");
        self.metrics.set_reload_ok(false);
    }

    /// Serves HTTP on the new `listen` address, then stops the old server.
    async fn move_http(&mut self, new: &Config) -> Result<(), RunError> {
        let server = HttpServer::start(&new.server, self.app_state()).await?;
        if let Some(old) = self.http.replace(server) {
            old.stop().await;
        }
        Ok(())
    }

    /// A new feed and board for new BGP settings or watched prefixes; the
    /// health of sources still configured is carried over.
    async fn restart_feed(&mut self, new: &Config) {
        if let Some(feed) = self.feed.take() {
            feed.stop().await;
        }
        let status = self.toolkit.bgp.status();
        let names: Vec<&str> = new.bgp.sources.iter().map(|s| s.as_str()).collect();
        status.retain(if new.watched_prefixes().is_empty() { &[] } else { &names });
        self.toolkit.bgp = VisibilityBoard::new(&new.watched_prefixes(), new.bgp.min_peers)
            .with_hijack_min_peers(new.bgp.hijack_min_peers)
            .with_status(status);
        match Feed::start(&new.bgp, new.watched_prefixes(), self.toolkit.bgp.clone(), self.metrics.clone()) {
            Ok(feed) => self.feed = Some(feed),
            // The board says the feed is down: every bgp probe is
            // bgp_unknown, never an outage, until a reload succeeds.
            Err(e) => error!("{e}; BGP visibility is unknown until the next reload"),
        }
    }

    /// Services no longer configured: their series go, and from now on
    /// their history is unknown.
    fn forget_removed_services(&mut self, new: &Config) {
        let now = unix(SystemTime::now());
        // A set, not a search per service: quadratic at 10,000 services
        // (seconds on the main loop).
        let kept: std::collections::HashSet<&str> = new.services.iter().map(|s| s.id.as_str()).collect();
        for old in &self.config.services {
            if !kept.contains(old.id.as_str()) {
                self.metrics.forget_service(&old.id);
                self.sinks.store().record_status(StatusRecord {
                    service: old.id.clone(),
                    at: now,
                    status: ServiceStatus::Unknown,
                    cause: None,
                });
            }
        }
    }

    async fn shutdown(mut self, tracker: JoinHandle<()>, background: Vec<JoinHandle<()>>) {
        self.health.set_running(false);
        if let Some(schedule) = self.schedule.take() {
            schedule.stop().await;
        }
        if let Some(feed) = self.feed.take() {
            feed.stop().await;
        }
        if let Some(http) = self.http.take() {
            http.stop().await;
        }
        // Alerts still waiting for group_wait are committed to the outbox
        // (delivered at the next start if not now).
        self.sinks.flush_runs();
        let store = self.sinks.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), tracker).await;
        for task in background {
            task.abort();
        }
        let services: Vec<String> = self.config.services.iter().map(|s| s.id.clone()).collect();
        let now = unix(SystemTime::now());
        let _ = tokio::task::spawn_blocking(move || store.stop(services, now)).await;
        info!("stopped");
    }
}

/// Runs until SIGTERM/ctrl-c. `config` was loaded from `path` (re-read on SIGHUP).
pub async fn run(path: &Path, config: Config) -> Result<(), RunError> {
    crate::allocator::tune();
    let mut hangup = signal(SignalKind::hangup()).map_err(RunError::Signals)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(RunError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(RunError::Signals)?;

    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::new());
    let board = VisibilityBoard::new(&config.watched_prefixes(), config.bgp.min_peers)
        .with_hijack_min_peers(config.bgp.hijack_min_peers);
    let feed = Feed::start(&config.bgp, config.watched_prefixes(), board.clone(), metrics.clone())?;
    let toolkit = Toolkit::new(board)?;
    let plan = config.plan();
    let verdict = Verdict::new(&config, &plan, SystemTime::now());
    metrics.install(&plan);
    metrics.declare_config(&config);
    for s in verdict.services() {
        metrics.set_service_status(&s.id, ServiceStatus::Unknown);
        // Before the API serves: a new series waits for a scrape in progress
        // (a service a reload adds gets its series with its first window).
        metrics.set_maintenance(&s.id, false);
    }
    let retention = Retention { raw: config.storage.raw_retention, rollup: config.storage.rollup_retention };
    let store = Store::open(&config.storage.path, retention)
        .map_err(|source| RunError::Store { path: config.storage.path.display().to_string(), source })?;
    let history = Arc::new(
        Reader::open(&config.storage.path)
            .map_err(|source| RunError::Store { path: config.storage.path.display().to_string(), source })?,
    );
    let config_tx = watch::Sender::new(config.clone());
    let delivery = Arc::new(Notify::new());
    let channels = Arc::new(crate::alert::AlertChannels::default());
    let tracker = Tracker::new(store.clone(), config_tx.subscribe(), channels, delivery.clone())
        .await
        .map_err(|source| RunError::Store { path: config.storage.path.display().to_string(), source })?
        .with_metrics(metrics.clone());
    let spillover = tracker.spillover();
    let (incidents, incidents_rx) = mpsc::unbounded_channel();
    let tracker = tokio::spawn(tracker.run(incidents_rx));
    let health = Arc::new(Health::default());
    let background = vec![
        tokio::spawn(crate::alert::deliver::run(
            store.clone(),
            spillover,
            config_tx.subscribe(),
            metrics.clone(),
            delivery,
            health.clone(),
        )),
        tokio::spawn(crate::sinks::publish_uptime(history.clone(), config_tx.subscribe(), metrics.clone())),
    ];
    let (observations, mut rx) = mpsc::channel(8192);
    let mut daemon = Daemon {
        path: path.to_path_buf(),
        config_tx,
        config: config.clone(),
        metrics: metrics.clone(),
        verdict: Arc::new(RwLock::new(verdict)),
        health: health.clone(),
        history,
        toolkit,
        feed: Some(feed),
        plan,
        schedule: None,
        observations,
        http: None,
        sinks: Sinks::new(metrics, store, incidents, health),
    };
    daemon.http = Some(HttpServer::start(&config.server, daemon.app_state()).await?);
    daemon.schedule = Some(start_schedule(&daemon.toolkit, &daemon.plan, daemon.observations.clone()));
    daemon.health.set_running(true);
    crate::allocator::release_freed();
    let addr = daemon.http.as_ref().map(|h| h.addr).unwrap_or(config.server.listen);
    info!(
        services = config.services.len(),
        probes = daemon.plan.len() - config.guards.len(),
        guards = config.guards.len(),
        vantage = %config.monitor.vantage,
        "monitoring; metrics on http://{addr}/metrics"
    );

    let mut store_tick = tokio::time::interval(Duration::from_millis(250));
    let store_faults = daemon.sinks.store().faults();
    loop {
        tokio::select! {
            Some(observation) = rx.recv() => daemon.handle(observation, &mut rx).await,
            _ = store_tick.tick() => {
                daemon.sinks.flush_runs();
                let (writes, reads) = store_faults.counts();
                daemon.metrics.sync_store_errors(writes, reads);
                daemon.health.set_store_fault(store_faults.current());
            }
            _ = hangup.recv() => daemon.reload().await,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
    }
    info!("stopping");
    daemon.shutdown(tracker, background).await;
    Ok(())
}
