//! chatpulse watches messaging platforms from the outside at five layers —
//! BGP visibility, DNS, transport (TCP, TLS), the platforms' own chat
//! protocols, HTTP — and says not only that a platform is down but why.
//!
//! The data flows one way:
//!
//! ```text
//! config ─► scheduler ─► probe (bgp | dns | tcp | tls | mtproto | whatsapp | http) ─► Observation
//!                                                     │
//!                                   verdict (probe state machine,
//!                                   service status, root cause, guard)
//!                                                     │ Event
//!                        ┌───────────────┬────────────┴─────┬──────────────┐
//!                     metrics      store (SQLite)     alerts/outbox   api + status page
//! ```
//!
//! No two top-level modules import each other. The BGP feed, a source
//! beside the probes, reports its own counts and health to the metrics
//! through a trait (`bgp::feed::FeedGauges`) rather than importing them.
//!
//! Modules, one concern each:
//! - [`config`]: TOML in, validated `Config` out; one file per section, each
//!   section's keys and checks side by side (`[bgp]`'s in `bgp::config`).
//! - [`document`]: how any table of the file is declared and read: spans,
//!   places, the one-sentence `ConfigError`.
//! - [`probe`]: the kind registry (`kinds!`: one line per kind); `probe::kind`
//!   holds the `ProbeKind` trait, `Probe`, `Finding` and `Reason`; one file
//!   per kind (bgp, dns, tcp, tls, mtproto, whatsapp, http) with its config
//!   keys, its checks and its probe, each protocol's codec beside it
//!   (`dns/config`, `dns/delegation`, `mtproto/wire`, `whatsapp/noise`), the
//!   chat kinds' shared I/O in `chat`.
//! - [`bgp`]: the visibility engine and its feeds (RIS Live, MRT, BGP sessions).
//! - [`sinks`]: what `run` does with verdict events: metrics, store, incidents, health.
//! - [`scheduler`]: when probes run (intervals, spread, concurrency).
//! - [`verdict`]: probe states, service status (essential groups), root cause, guard.
//! - [`cause`]: the typed root cause (layer, faults, summary) and its
//!   grouping `CauseKey`, stored field by field, never re-parsed.
//! - [`store`]: SQLite history: status changes, run-length results, rollups, incidents, outbox.
//! - [`incident`]: incidents from status changes, grouped by root cause, into the outbox.
//! - [`maintenance`]: maintenance windows: when a service is in one.
//! - [`allocator`]: the two glibc allocator calls (the only `unsafe` code).
//! - [`alerting`]: which alerts status changes call for (one machine for run and replay).
//! - [`notice`]: typed alert events, between the incident tracker and the channels.
//! - [`alert`]: the channels behind one `Channel` trait (e-mail, webhooks,
//!   PagerDuty, ntfy; one file each): what each says and how it leaves the outbox.
//! - [`metrics`]: the Prometheus families.
//! - [`api`]: HTTP routes: /metrics, /healthz, /api/v1/…, status page.
//! - [`cmd`]: the subcommands behind `main.rs`.
//! - [`error_text`]: the innermost cause of an error chain, for details and logs.
//! - [`fuzzing`]: entry points for the fuzzers and their regression corpus.
//! - [`health`]: the monitor's own health, for `/healthz`.
//! - [`prefix`]: IP prefixes, as the config, the BGP engine and the probes see them.
//! - [`certs`]: the PEM certificate files a config names (`ca_file`).
//! - [`time`]: how times and durations are shown and stored.
//! - [`words`]: closed lists of words (`Reason`, …) declared once, with their tables derived.
//! - [`window`]: windows and steps of history queries, checked once for CLI and API.
//! - [`views`]: the JSON shapes of uptime and incidents, shared by the API and the CLI.

#![deny(unsafe_code)]

pub mod alert;
pub mod alerting;
#[allow(unsafe_code)]
pub mod allocator;
pub mod api;
pub mod bgp;
pub mod cause;
pub mod certs;
pub mod cmd;
pub mod config;
pub mod document;
pub mod error_text;
pub mod fuzzing;
pub mod health;
pub mod incident;
pub mod maintenance;
pub mod metrics;
pub mod notice;
pub mod prefix;
pub mod probe;
pub mod scheduler;
pub mod sinks;
pub mod store;
pub mod time;
pub mod verdict;
pub mod views;
pub mod window;
pub mod words;
