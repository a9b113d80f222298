//! The config file: TOML in, a validated [`Config`] out.
//!
//! Loading either yields a `Config` whose values are all usable as they
//! are (parsed durations, addresses, prefixes, URLs) or one
//! [`ConfigError`] sentence of the form `config.toml:42: service
//! "whatsapp" probe 2: ...`. Nothing downstream re-validates.
//!
//! Each section is read in its own file beside its keys (`monitor`,
//! `server`, `storage`, `alerts`, `dns`, `maintenance`, `service`; `[bgp]`
//! in the BGP engine's `bgp::config`), and each probe kind's keys in the
//! kind's own file under `probe/`. The file is parsed a service at a time
//! ([`pieces`]: the sections with the services blanked out, then each
//! `[[service]]` alone, every span where it lies in the file), or whole
//! when its layout asks for that; the probe tables are taken out of the
//! tree and read one by one (the common keys in `service`, the rest by
//! their kind), the rest is deserialized. Every value keeps its span, so
//! every refusal names its line ([`crate::document`]).

mod alerts;
mod dns;
mod maintenance;
mod monitor;
mod pieces;
mod server;
mod service;
mod storage;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

pub use self::alerts::{
    AlertRules, Alerts, ChannelConfig, ChannelTarget, Email, NotifyOn, Ntfy, PAGERDUTY_URL, PagerDuty, SmtpSecurity,
    Webhook, WebhookFormat,
};
pub use self::dns::ROOT_SERVERS;
pub use self::monitor::Monitor;
pub use self::server::Server;
pub use self::service::Service;
pub use self::storage::Storage;
pub use crate::bgp::config::{Bgp, BgpPeer, BgpSession, BgpSource};
pub use crate::document::{ConfigError, redacted};
use crate::document::{Document, Table, Tables, field, table};
use crate::prefix::Prefix;
pub use crate::probe::{Check, Kind, ProbeRef, ProbeSpec};
use crate::probe::{GUARD_SERVICE, ReadContext};

table!(
    /// The whole file, but for its probe tables (taken out first).
    RawConfig {
        monitor: monitor::RawMonitor,
        server: server::RawServer,
        storage: storage::RawStorage,
        alerts: alerts::RawAlerts,
        bgp: crate::bgp::config::RawBgp,
        dns: dns::RawDns,
        // Left in the tree only when not an array of tables, for serde to refuse.
        guard: Tables<toml::Table>,
        service: Tables<service::RawService>,
        maintenance: Tables<maintenance::RawMaintenance>,
    }
);

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from (as given on the command line).
    pub file: PathBuf,
    /// `[monitor]`.
    pub monitor: Monitor,
    /// `[server]`.
    pub server: Server,
    /// `[storage]`.
    pub storage: Storage,
    /// `[alerts]`.
    pub alerts: Alerts,
    /// `[bgp]`.
    pub bgp: Bgp,
    /// `[dns] roots`: where delegations are followed from.
    pub dns_roots: Arc<[SocketAddr]>,
    /// `[[guard]]`: probes of our own connectivity.
    pub guards: Vec<Arc<ProbeSpec>>,
    /// `[[service]]`.
    pub services: Vec<Service>,
    /// `[[maintenance]]`.
    pub maintenance: Vec<crate::maintenance::Window>,
}

impl Config {
    /// Every `*_env` a channel names must be set (SPEC 9.6): checked by
    /// `validate`, at `run`'s start and on every reload, so a missing
    /// secret is found now, not at the first outage. (`check`, `uptime`
    /// and `incidents` send nothing and do not ask.)
    pub fn check_secrets(&self) -> Result<(), ConfigError> {
        for channel in &self.alerts.channels {
            for (key, var) in channel.secrets() {
                if std::env::var_os(var).is_none_or(|v| v.is_empty()) {
                    return Err(ConfigError::MissingSecret {
                        file: self.file.display().to_string(),
                        place: format!("{} {key}", channel.place),
                        var: var.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Config::parse(path, &text)
    }

    /// Validates `text` as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let doc = Document::new(&file, text);
        match pieces::cut(text) {
            Some(pieces) => parse_pieces(&doc, pieces, path),
            None => parse_whole(&doc, path),
        }
    }

    /// The `bgp` probes' prefixes, without repeats.
    pub fn watched_prefixes(&self) -> Vec<Prefix> {
        let mut seen = Vec::new();
        for probe in self.services.iter().flat_map(|s| &s.probes) {
            if let Check::Bgp(b) = &probe.check
                && !seen.contains(&b.prefix)
            {
                seen.push(b.prefix);
            }
        }
        seen
    }

    /// Flattens the config into the plan's probe list: guards first, then
    /// each service's probes in config order.
    pub fn plan(&self) -> Vec<Arc<ProbeRef>> {
        let guards = self.guards.iter().map(|spec| (GUARD_SERVICE, spec));
        let services = self.services.iter().flat_map(|s| s.probes.iter().map(move |spec| (s.id.as_str(), spec)));
        guards
            .chain(services)
            .enumerate()
            .map(|(index, (service, spec))| {
                Arc::new(ProbeRef { index, service: service.to_string(), spec: spec.clone() })
            })
            .collect()
    }
}

/// The file parsed as one tree.
fn parse_whole(doc: &Document<'_>, path: &Path) -> Result<Config, ConfigError> {
    let tree = DeTable::parse(doc.text()).map_err(|e| doc.syntax_error_of(&e))?;
    let span = tree.span();
    let mut tree = tree.into_inner();
    let guards = take_tables(&mut tree, "guard");
    let probe_tables: Vec<_> = match tree.get_mut("service").map(Spanned::get_mut) {
        Some(DeValue::Array(items)) => items
            .iter_mut()
            .map(|item| match item.get_mut() {
                DeValue::Table(t) => take_tables(t, "probe"),
                _ => Vec::new(),
            })
            .collect(),
        _ => Vec::new(),
    };
    let raw: RawConfig = doc.deserialize(Spanned::new(span.clone(), DeValue::Table(tree)))?;
    let root = Table::new(doc, &raw, span);
    let mut reading = Reading::start(doc, &root, guards, path)?;
    let service_tables = root.tables(field!(root, service));
    if service_tables.is_empty() {
        return Err(root.error_here("no [[service]] is configured: there is nothing to monitor"));
    }
    let mut probe_tables = probe_tables.into_iter();
    for table in service_tables {
        reading.service(&table, probe_tables.next().unwrap_or_default())?;
    }
    reading.finish(&root)
}

/// The file read a service at a time ([`pieces`]): the same checks in the
/// same words, without the whole file's token vector. A piece that does
/// not parse is reported by the whole-file parse, in its words.
fn parse_pieces(doc: &Document<'_>, pieces: pieces::Pieces, path: &Path) -> Result<Config, ConfigError> {
    let Ok(tree) = DeTable::parse(&pieces.rest) else { return parse_whole(doc, path) };
    let span = tree.span();
    let mut tree = tree.into_inner();
    if tree.contains_key("service") {
        return parse_whole(doc, path);
    }
    let guards = take_tables(&mut tree, "guard");
    let raw: RawConfig = doc.deserialize(Spanned::new(span.clone(), DeValue::Table(tree)))?;
    let root = Table::new(doc, &raw, span);
    let mut reading = Reading::start(doc, &root, guards, path)?;
    for piece in &pieces.services {
        let parsed = DeTable::parse(&doc.text()[piece.clone()]).ok().and_then(|t| pieces::service_of(t, piece.start));
        let Some(service) = parsed else { return parse_whole(doc, path) };
        let span = service.span();
        let mut service = service.into_inner();
        let probe_tables = take_tables(&mut service, "probe");
        let raw: service::RawService = doc.deserialize(Spanned::new(span.clone(), DeValue::Table(service)))?;
        reading.service(&Table::new(doc, &raw, span), probe_tables)?;
    }
    reading.finish(&root)
}

/// Takes `key` out of `table` if it is an array of tables; anything else
/// stays for serde to refuse in its own words.
fn take_tables<'a>(table: &mut DeTable<'a>, key: &str) -> Vec<Spanned<DeTable<'a>>> {
    let is_tables = |v: &Spanned<DeValue<'_>>| match v.get_ref() {
        DeValue::Array(items) => items.iter().all(|i| i.get_ref().as_table().is_some()),
        _ => false,
    };
    if !table.get(key).is_some_and(is_tables) {
        return Vec::new();
    }
    let Some(DeValue::Array(items)) = table.remove(key).map(Spanned::into_inner) else { return Vec::new() };
    items
        .into_iter()
        .filter_map(|item| {
            let span = item.span();
            match item.into_inner() {
                DeValue::Table(t) => Some(Spanned::new(span, t)),
                _ => None,
            }
        })
        .collect()
}

/// A config being read: the sections first, then each service, then the
/// checks across them.
struct Reading<'d> {
    doc: &'d Document<'d>,
    file: PathBuf,
    base: PathBuf,
    monitor: Monitor,
    server: Server,
    storage: Storage,
    alerts: Alerts,
    bgp: Bgp,
    dns_roots: Arc<[SocketAddr]>,
    guards: Vec<Arc<ProbeSpec>>,
    services: Vec<Service>,
    ids: HashSet<String>,
}

impl<'d> Reading<'d> {
    /// Reads every section but the services.
    fn start(
        doc: &'d Document<'d>,
        root: &Table<'_, RawConfig>,
        guard_tables: Vec<Spanned<DeTable<'_>>>,
        path: &Path,
    ) -> Result<Reading<'d>, ConfigError> {
        // `ca_file` paths are relative to the config file's directory.
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let monitor = monitor::read_monitor(root.table(field!(root, monitor)))?;
        let server = server::read_server(root.table(field!(root, server)))?;
        let storage = storage::read_storage(root.table(field!(root, storage)))?;
        let alerts = alerts::read_alerts(root.table(field!(root, alerts)))?;
        let bgp = crate::bgp::config::read(root.table(field!(root, bgp)), &base)?;
        let dns_roots: Arc<[SocketAddr]> = dns::read_dns_roots(root.table(field!(root, dns)))?;
        let mut reading = Reading {
            doc,
            file: path.to_path_buf(),
            base,
            monitor,
            server,
            storage,
            alerts,
            bgp,
            dns_roots,
            guards: Vec::new(),
            services: Vec::new(),
            ids: HashSet::new(),
        };
        for guard in guard_tables {
            let cx = reading.context();
            let probe = service::read_guard(doc, guard, &reading.monitor, &reading.guards, &cx)?;
            reading.guards.push(Arc::new(probe));
        }
        Ok(reading)
    }

    fn context(&self) -> ReadContext<'_> {
        ReadContext { base: &self.base, rpki: self.bgp.rpki.is_some(), dns_roots: &self.dns_roots }
    }

    /// Reads one `[[service]]` and its probe tables.
    fn service(
        &mut self,
        table: &Table<'_, service::RawService>,
        probes: Vec<Spanned<DeTable<'_>>>,
    ) -> Result<(), ConfigError> {
        let cx = ReadContext { base: &self.base, rpki: self.bgp.rpki.is_some(), dns_roots: &self.dns_roots };
        let service = service::read_service(self.doc, table, probes, &mut self.ids, &self.monitor, &cx)?;
        self.services.push(service);
        Ok(())
    }

    /// The checks across sections and services, then the config.
    fn finish(self, root: &Table<'_, RawConfig>) -> Result<Config, ConfigError> {
        let Reading { file, monitor, server, storage, alerts, bgp, dns_roots, guards, services, ids, .. } = self;
        let has_bgp = services.iter().flat_map(|s| &s.probes).any(|p| p.check.kind() == Kind::Bgp);
        if has_bgp && bgp.sources.contains(&BgpSource::Session) && bgp.session.is_none() {
            let bgp_table = root.table(field!(root, bgp));
            let err = match bgp_table {
                Some(t) => t.error_at_key("source", "source = \"session\" needs a [bgp.session] table"),
                None => root.error_here("[bgp] source = \"session\" needs a [bgp.session] table"),
            };
            return Err(err);
        }

        let ids: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut maintenance = Vec::new();
        for table in root.tables(field!(root, maintenance)) {
            maintenance.push(maintenance::read_maintenance(&table, &ids)?);
        }

        Ok(Config { file, monitor, server, storage, alerts, bgp, dns_roots, guards, services, maintenance })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hickory_proto::rr::RecordType;

    use super::*;
    use crate::probe::dns::DnsServer;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("config.toml"), text)
    }

    const MINIMAL: &str = "[[service]]\nid = \"whatsapp\"\nname = \"WhatsApp\"\n\n  [[service.probe]]\n  kind = \"dns\"\n  query = \"web.whatsapp.com\"\n";

    #[test]
    fn minimal_config_gets_the_spec_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.monitor.interval, Duration::from_secs(30));
        assert_eq!(c.monitor.fail_after, 3);
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:9464");
        assert_eq!(c.storage.raw_retention, Duration::from_secs(14 * 86400));
        assert_eq!(c.bgp.sources, vec![BgpSource::RisLive]);
        assert_eq!(c.bgp.min_peers, 10);
        let probe = &c.services[0].probes[0];
        assert_eq!(probe.id, "dns-1");
        assert_eq!(probe.timeout, Duration::from_secs(5));
        let Check::Dns(d) = &probe.check else { panic!("dns expected") };
        assert_eq!((d.record, d.servers.is_empty(), d.recursion, d.expect_answer), (RecordType::A, true, true, true));
    }

    #[test]
    fn errors_name_the_line_service_probe_and_key() {
        let text = MINIMAL.replace("query = \"web.whatsapp.com\"", "query = \"x.org\"\n  record = \"AAA\"");
        let err = parse(&text).unwrap_err().to_string();
        assert_eq!(
            err,
            "config.toml:8: service \"whatsapp\" probe 1: \"record\": unknown record type \"AAA\" (expected one of A AAAA CNAME NS SOA TXT MX)"
        );
    }

    #[test]
    fn a_short_interval_gets_a_timeout_that_fits() {
        let c = parse(&format!("[monitor]\ninterval = \"2s\"\n{MINIMAL}")).unwrap();
        assert_eq!(c.monitor.timeout, Duration::from_secs(2));
        assert_eq!(c.services[0].probes[0].timeout, Duration::from_secs(2));
        let err = parse(&format!("[monitor]\ninterval = \"2s\"\ntimeout = \"3s\"\n{MINIMAL}")).unwrap_err();
        assert!(err.to_string().starts_with("config.toml:3: [monitor]: \"timeout\" must not be longer"), "{err}");
    }

    #[test]
    fn server_limits_and_public_url_are_read() {
        let c = parse(&format!(
            "[server]\nlisten = \"127.0.0.1:9464\"\nmax_connections = 64\npublic_url = \"https://status.example.org/\"\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(c.server.max_connections, 64);
        assert_eq!(crate::alert::render::status_url(&c), "https://status.example.org/");
        assert_eq!(parse(MINIMAL).unwrap().server.max_connections, 256);
        let err = parse(&format!("[server]\npublic_url = \"ftp://x\"\n{MINIMAL}")).unwrap_err().to_string();
        assert!(err.contains("\"public_url\": \"ftp://x\" must start with http:// or https://"), "{err}");
    }

    #[test]
    fn tcp_and_tls_probes_and_guards_are_read() {
        let dir = tempfile_dir();
        std::fs::write(dir.join("root.pem"), TEST_ROOT_PEM).unwrap();
        let text = format!(
            "[[guard]]\nkind = \"tls\"\naddress = \"[2001:db8::1]:443\"\n{MINIMAL}  [[service.probe]]\n  kind = \"tcp\"\n  address = \"g.whatsapp.net:5222\"\n  essential = true\n  [[service.probe]]\n  kind = \"tls\"\n  address = \"chat.signal.org:443\"\n  ca_file = \"root.pem\"\n  alpn = [\"h2\"]\n  min_cert_days = 7\n"
        );
        let c = Config::parse(&dir.join("config.toml"), &text).unwrap();
        let Check::Tls(guard) = &c.guards[0].check else { panic!("tls guard expected") };
        assert_eq!((guard.endpoint.host.as_str(), guard.endpoint.port), ("2001:db8::1", 443));
        let probes = &c.services[0].probes;
        let Check::Tcp(tcp) = &probes[1].check else { panic!("tcp expected") };
        assert_eq!(
            (tcp.endpoint.host.as_str(), tcp.endpoint.port, probes[1].essential),
            ("g.whatsapp.net", 5222, true)
        );
        let Check::Tls(tls) = &probes[2].check else { panic!("tls expected") };
        assert_eq!(tls.server_name, "chat.signal.org");
        assert_eq!(tls.ca_file.as_deref(), Some(dir.join("root.pem").as_path()), "relative to the config");
        assert_eq!((tls.min_cert_days, tls.system_roots), (Some(7), false));
        for (bad, message) in [
            ("  [[service.probe]]\n  kind = \"tcp\"\n  address = \"no-port.example\"\n", "is not host:port"),
            (
                "  [[service.probe]]\n  kind = \"tls\"\n  address = \"x.org:443\"\n  ca_file = \"missing.pem\"\n",
                "cannot read",
            ),
            (
                "  [[service.probe]]\n  kind = \"tcp\"\n  address = \"x.org:1\"\n  alpn = [\"h2\"]\n",
                "does not apply to a tcp probe",
            ),
        ] {
            let err = Config::parse(&dir.join("config.toml"), &format!("{MINIMAL}{bad}")).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
        let control = MINIMAL.replace("name = \"WhatsApp\"", "name = \"What\\nsApp\"");
        assert!(
            parse(&control).unwrap_err().to_string().contains("\"name\" must be one line without control characters")
        );
        let essential_guard = format!("[[guard]]\nkind = \"tcp\"\naddress = \"x.org:1\"\nessential = true\n{MINIMAL}");
        assert!(parse(&essential_guard).unwrap_err().to_string().contains("a guard cannot be essential"));
    }

    #[test]
    fn dns_servers_require_and_the_aa_check_are_read() {
        let probe = |extra: &str| {
            parse(&MINIMAL.replace("query = \"web.whatsapp.com\"", &format!("query = \"web.whatsapp.com\"\n{extra}")))
        };
        let c = probe("  servers = [\"1.1.1.1\", \"8.8.8.8:53\"]\n  require = \"all\"").unwrap();
        let Check::Dns(d) = &c.services[0].probes[0].check else { panic!("dns expected") };
        assert_eq!(d.servers.len(), 2);
        assert!(d.require_all && !d.authoritative);
        let c = probe("  transport = \"tls\"\n  server = \"1.1.1.1\"\n  server_name = \"one.one.one.one\"").unwrap();
        let Check::Dns(d) = &c.services[0].probes[0].check else { panic!("dns expected") };
        assert_eq!(d.servers, vec![DnsServer::Addr("1.1.1.1:853".parse().unwrap())], "DoT's port by default");
        let c = probe("  transport = \"https\"\n  server = \"https://dns.example/dns-query\"").unwrap();
        let Check::Dns(d) = &c.services[0].probes[0].check else { panic!("dns expected") };
        assert_eq!(d.servers, vec![DnsServer::Url("https://dns.example/dns-query".into())]);
        let c =
            probe("  servers = \"delegation\"\n  expect_answer_in = [\"157.240.0.0/16\", \"2a03:2880::/32\"]").unwrap();
        let Check::Dns(d) = &c.services[0].probes[0].check else { panic!("dns expected") };
        let roots = d.delegation.as_ref().expect("a delegation probe");
        assert_eq!(roots.len(), 26, "the 13 root servers, IPv4 and IPv6, by default");
        assert!(!d.recursion && d.authoritative && d.servers.is_empty() && d.expect_answer_in.len() == 2);
        let c = probe("  server = \"129.134.30.12\"\n  recursion = false").unwrap();
        let Check::Dns(d) = &c.services[0].probes[0].check else { panic!("dns expected") };
        assert!(d.authoritative, "asked without recursion, the AA flag is checked by default");
        for (extra, message) in [
            ("  server = \"1.1.1.1\"\n  servers = [\"8.8.8.8\"]", "not both"),
            ("  servers = \"delegations\"", "\"servers\": \"delegations\" is not a list of servers or \"delegation\""),
            (
                "  servers = \"delegation\"\n  recursion = true",
                "asks the zone's own servers directly, without recursion",
            ),
            ("  servers = \"delegation\"\n  transport = \"tls\"", "asks the zone's own servers over UDP"),
            ("  record = \"MX\"\n  expect_answer_in = [\"192.0.2.0/24\"]", "applies to record = \"A\" or \"AAAA\""),
            ("  expect_answer_in = [\"192.0.2.0/33\"]", "\"expect_answer_in\": "),
            ("  servers = [\"1.1.1.1\", \"1.1.1.1:53\"]", "listed twice"),
            ("  servers = [\"1.1.1.1\"]\n  require = \"most\"", "\"most\" is not \"any\" or \"all\""),
            ("  authoritative = true", "applies to recursion = false only"),
            ("  transport = \"https\"\n  server = \"1.1.1.1\"", "must be an https:// URL"),
            ("  transport = \"tls\"", "an encrypted transport needs"),
            (
                "  server = \"1.1.1.1\"\n  server_name = \"one.one.one.one\"",
                "applies to transport = \"tls\" or \"https\" only",
            ),
            ("  transport = \"quic\"\n  server = \"1.1.1.1\"", "is not a transport"),
        ] {
            let err = probe(extra).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("chatpulse-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A self-signed certificate (rcgen), only parsed here.
    const TEST_ROOT_PEM: &str = include_str!("../../tests/data/test-root.pem");

    #[test]
    fn passwords_in_urls_are_redacted_for_display() {
        assert_eq!(redacted("http://admin:hunter2@example.org/x"), "http://admin:***@example.org/x");
        assert_eq!(redacted("https://example.org/"), "https://example.org/");
        assert_eq!(redacted("not a url"), "not a url");
    }

    #[test]
    fn several_sources_are_pooled_and_each_named_once() {
        let session = "[bgp.session]\nlocal_as = 65010\nrouter_id = \"192.0.2.10\"\n[[bgp.session.peer]]\naddress = \"192.0.2.1\"\nremote_as = 65001\n";
        let c = parse(&format!("[bgp]\nsource = [\"ris-live\", \"session\"]\n{session}{MINIMAL}")).unwrap();
        assert_eq!(c.bgp.sources, vec![BgpSource::RisLive, BgpSource::Session]);
        assert_eq!(c.bgp.min_peers, 10, "collector peers in the pool: the collector default");
        let c = parse(&format!("[bgp]\nsource = \"session\"\n{session}{MINIMAL}")).unwrap();
        assert_eq!((c.bgp.sources, c.bgp.min_peers), (vec![BgpSource::Session], 1));
        let listen = c.bgp.session.unwrap().listen;
        assert_eq!(listen, "127.0.0.1:179".parse().unwrap(), "the BGP port is opened on loopback unless asked");
        // The error lists the words from the one table.
        let err = parse(&format!("[bgp]\nsource = \"bmp\"\n{MINIMAL}")).unwrap_err().to_string();
        assert!(err.ends_with("(expected \"ris-live\", \"session\" or \"mrt\")"), "{err}");
        for (source, message) in [
            ("[]", "\"source\" must name at least one source"),
            ("[\"mrt\", \"mrt\"]", "\"source\": \"mrt\" is listed twice"),
            ("[\"bmp\"]", "\"source\": \"bmp\" is not a source"),
            ("5", "\"source\" must be a string or an array of strings"),
        ] {
            let err = parse(&format!("[bgp]\nsource = {source}\n{MINIMAL}")).unwrap_err().to_string();
            assert!(err.starts_with("config.toml:2: [bgp]: ") && err.contains(message), "{source}: {err}");
        }
    }

    #[test]
    fn serde_refusals_name_the_line_the_place_and_the_key() {
        let cases = [
            (
                format!("[alerts.email]\nsmtpx = \"smtp://x\"\n{MINIMAL}"),
                "config.toml:2: [alerts.email]: unknown key \"smtpx\" (expected one of: smtp, username, password_env, from, to, notify_on, repeat, send_recovery)",
            ),
            (
                format!("{MINIMAL}  interval = 5\n"),
                "config.toml:8: service \"whatsapp\" probe 1: \"interval\" must be a string, not an integer",
            ),
            (
                format!("[bgp]\n[bgp.session]\nlocal_as = 1\n[[bgp.session.peer]]\nremote_as = \"x\"\n{MINIMAL}"),
                "config.toml:5: [bgp.session] peer 1: \"remote_as\" must be an integer, not a string",
            ),
            (format!("monitor = 5\n{MINIMAL}"), "config.toml:1: \"monitor\" must be a table, not an integer"),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(&text).unwrap_err().to_string(), expected);
        }
    }

    #[test]
    fn keys_of_another_kind_are_named() {
        let text = MINIMAL.replace("query = \"web.whatsapp.com\"", "query = \"x.org\"\n  url = \"http://x/\"");
        let err = parse(&text).unwrap_err().to_string();
        assert_eq!(err, "config.toml:8: service \"whatsapp\" probe 1: key \"url\" does not apply to a dns probe");
    }
}
