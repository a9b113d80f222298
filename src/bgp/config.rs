//! `[bgp]`, `[bgp.session]` and `[[bgp.session.peer]]`: where the engine
//! reads visibility from, and the thresholds it judges by — the engine's
//! own config, read here beside it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::document::{self, ConfigError, Table, Tables, ValueError, field, parse_socket_addr, table};
use crate::words::words;

/// `source = "ris-live"` or `source = ["ris-live", "session"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Sources {
    /// One source.
    One(String),
    /// Several, pooled.
    Many(Vec<String>),
}

table!(
    /// `[bgp]`.
    RawBgp {
        source: Sources,
        ris_live_url: String,
        seed_url: String,
        mrt_url: String,
        stale_after: String,
        min_peers: i64,
        hijack_min_peers: i64,
        rpki: String,
        canary: String,
        session: RawSession,
    }
);

table!(
    /// `[bgp.session]`.
    RawSession { listen: String, local_as: i64, router_id: String, peer: Tables<RawPeer> }
);

table!(
    /// `[[bgp.session.peer]]`.
    RawPeer { address: String, remote_as: i64, port: i64 }
);

words! {
/// Where BGP visibility comes from; its word is the config's, also the
/// `source` label of the bgp metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BgpSource {
    /// RIPE RIS Live websocket, seeded from RIPEstat.
    RisLive = "ris-live",
    /// chatpulse peers with routers as a receive-only BGP speaker.
    Session = "session",
    /// Polled MRT update files in the RIS layout.
    Mrt = "mrt",
}
}

/// `[bgp]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bgp {
    /// Which feeds (`source = "ris-live"` or a list): their peers are pooled.
    pub sources: Vec<BgpSource>,
    /// RIS Live websocket URL.
    pub ris_live_url: String,
    /// RIPEstat base URL (looking-glass seeding).
    pub seed_url: String,
    /// MRT archive base URL (`{mrt_url}/YYYY.MM/updates.YYYYMMDD.HHMM.gz`).
    pub mrt_url: String,
    /// Feed silence that counts as the feed being down.
    pub stale_after: Duration,
    /// Fewer peers known than this = visibility unknown.
    pub min_peers: usize,
    /// Peers that must carry an offending route before it is reported.
    pub hijack_min_peers: usize,
    /// VRP file (rpki-client `-j` or Routinator `jsonext`), relative to the
    /// config file; re-read when it changes.
    pub rpki: Option<PathBuf>,
    /// `canary = "ris-beacons"`: the feed must show the RIS routing
    /// beacons changing on schedule.
    pub canary: bool,
    /// `[bgp.session]`, required when `source = "session"`.
    pub session: Option<BgpSession>,
}

/// `[bgp.session]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BgpSession {
    /// Listening address for incoming BGP connections.
    pub listen: SocketAddr,
    /// Our AS number.
    pub local_as: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// The only peers accepted.
    pub peers: Vec<BgpPeer>,
}

/// `[[bgp.session.peer]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct BgpPeer {
    /// The peer's address; connections from elsewhere are refused.
    pub address: IpAddr,
    /// The AS the peer must announce in its OPEN.
    pub remote_as: u32,
    /// If set, chatpulse also connects out to the peer on this port.
    pub port: Option<u16>,
}

pub fn read(t: Option<Table<'_, RawBgp>>, base: &Path) -> Result<Bgp, ConfigError> {
    let mut bgp = Bgp {
        sources: vec![BgpSource::RisLive],
        ris_live_url: "wss://ris-live.ripe.net/v1/ws/?client=chatpulse".into(),
        seed_url: "https://stat.ripe.net".into(),
        mrt_url: "https://data.ris.ripe.net/rrc00".into(),
        stale_after: Duration::from_secs(300),
        min_peers: 10,
        hijack_min_peers: 3,
        rpki: None,
        canary: false,
        session: None,
    };
    let Some(t) = t else { return Ok(bgp) };
    if let Some(file) = t.str(field!(t, rpki)) {
        let path = base.join(file.value);
        // Missing is fine (rpki-client may not have run yet since boot: the
        // watcher warns and starts RPKI when the file appears); something
        // that is there but not a file is a mistake.
        if path.exists() && !path.is_file() {
            return Err(t.error(&file.span, format!("\"rpki\": {} is not a regular file", path.display())));
        }
        bgp.rpki = Some(path);
    }
    if let Some(value) = &t.raw.source {
        let words: Vec<&str> = match value.get_ref() {
            Sources::One(word) => vec![word.as_str()],
            Sources::Many(list) => list.iter().map(String::as_str).collect(),
        };
        if words.is_empty() {
            return Err(t.error(&value.span(), "\"source\" must name at least one source"));
        }
        bgp.sources.clear();
        for word in words {
            let Some(source) = BgpSource::from_word(word) else {
                let expected = BgpSource::choices();
                return Err(
                    t.error(&value.span(), format!("\"source\": \"{word}\" is not a source (expected {expected})"))
                );
            };
            if bgp.sources.contains(&source) {
                return Err(t.error(&value.span(), format!("\"source\": \"{word}\" is listed twice")));
            }
            bgp.sources.push(source);
        }
    }
    bgp.canary = t
        .parsed(field!(t, canary), |s| match s {
            "ris-beacons" => Ok(true),
            other => Err(ValueError::not(other, "a canary (expected \"ris-beacons\")")),
        })?
        .unwrap_or(false);
    if bgp.canary && bgp.sources == [BgpSource::Session] {
        return Err(t.error_at_key("canary", "the RIS beacons canary applies to source = \"ris-live\" or \"mrt\""));
    }
    let url = |key: document::Field<'_, String>,
               schemes: &'static [&'static str],
               default: &str|
     -> Result<String, ConfigError> {
        Ok(t.parsed(key, |s| {
            let u = reqwest::Url::parse(s).map_err(|e| ValueError::not(s, "a URL").because(e))?;
            if !schemes.contains(&u.scheme()) {
                return Err(ValueError::must(s, format!("start with {}", schemes.join(":// or ") + "://")));
            }
            Ok(s.trim_end_matches('/').to_string())
        })?
        .unwrap_or_else(|| default.to_string()))
    };
    bgp.ris_live_url = url(field!(t, ris_live_url), &["wss", "ws"], &bgp.ris_live_url)?;
    bgp.seed_url = url(field!(t, seed_url), &["https", "http"], &bgp.seed_url)?;
    bgp.mrt_url = url(field!(t, mrt_url), &["https", "http"], &bgp.mrt_url)?;
    bgp.stale_after = t.duration(field!(t, stale_after), false)?.unwrap_or(bgp.stale_after);
    let sessions_only = bgp.sources == [BgpSource::Session];
    let default_min_peers = if sessions_only { 1 } else { 10 };
    bgp.min_peers = t.int(field!(t, min_peers), 1..100_001)?.map_or(default_min_peers, |n| n as usize);
    let default_hijack = if sessions_only { 1 } else { 3 };
    bgp.hijack_min_peers = t.int(field!(t, hijack_min_peers), 1..100_001)?.map_or(default_hijack, |n| n as usize);
    if let Some(s) = t.table(field!(t, session)) {
        let listen = s
            .parsed(field!(s, listen), |v| parse_socket_addr(v, Some(179)))?
            // Loopback, like [server] listen: opening a BGP port on every
            // interface is the operator's choice, never a default.
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 179)));
        let local_as = s
            .int(field!(s, local_as), 1..(1 << 32))?
            .ok_or_else(|| s.error_here("missing required key \"local_as\""))? as u32;
        let router_id = s
            .parsed(field!(s, router_id), |v| {
                v.parse::<Ipv4Addr>()
                    .ok()
                    .filter(|ip| !ip.is_unspecified())
                    .ok_or_else(|| ValueError::not(v, "a non-zero IPv4 address"))
            })?
            .ok_or_else(|| s.error_here("missing required key \"router_id\""))?;
        let mut peers: Vec<BgpPeer> = Vec::new();
        let peer_tables = s.tables(field!(s, peer));
        if peer_tables.is_empty() {
            return Err(s.error_here("needs at least one [[bgp.session.peer]]"));
        }
        for p in peer_tables {
            let address = p
                .parsed(field!(p, address), |v| v.parse::<IpAddr>().map_err(|_| ValueError::not(v, "an IP address")))?
                .ok_or_else(|| p.error_here("missing required key \"address\""))?;
            if peers.iter().any(|q| q.address == address) {
                return Err(p.error_at_key("address", format!("\"address\": {address} is configured twice")));
            }
            let remote_as = p
                .int(field!(p, remote_as), 1..(1 << 32))?
                .ok_or_else(|| p.error_here("missing required key \"remote_as\""))? as u32;
            let port = p.int(field!(p, port), 1..65536)?.map(|n| n as u16);
            peers.push(BgpPeer { address, remote_as, port });
        }
        bgp.session = Some(BgpSession { listen, local_as, router_id, peers });
    }
    Ok(bgp)
}
