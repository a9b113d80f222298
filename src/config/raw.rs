//! Every key of the config file, declared once (README, "A tour of
//! config.toml"): the serde shape of the TOML, each table
//! `deny_unknown_fields`, each value kept with its byte span so the checks
//! in [`super`] can name the line of anything they refuse.
//!
//! A probe is one table holding the keys of every kind; which keys apply
//! to which kind is [`super`]'s business (it names the stray key).

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

/// Declares a table: each key an optional spanned value, unknown keys
/// refused, and [`Keys::present`] listing the keys the file set.
macro_rules! table {
    ($(#[$meta:meta])* $name:ident { $($key:ident: $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $name {
            $(
                #[serde(default)]
                pub(crate) $key: Option<Spanned<$ty>>,
            )*
        }

        impl Keys for $name {
            fn present(&self) -> Vec<(&'static str, Range<usize>)> {
                let mut keys = Vec::new();
                $(
                    if let Some(value) = &self.$key {
                        keys.push((stringify!($key), value.span()));
                    }
                )*
                keys
            }
        }
    };
}

/// The keys a table's file text set, with their values' spans.
pub(crate) trait Keys {
    /// Present keys in declaration order.
    fn present(&self) -> Vec<(&'static str, Range<usize>)>;
}

/// `source = "ris-live"` or `source = ["ris-live", "session"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Sources {
    /// One source.
    One(String),
    /// Several, pooled.
    Many(Vec<String>),
}

/// `servers = ["1.1.1.1", "8.8.8.8"]` or `servers = "delegation"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum ServerList {
    /// A word (only `"delegation"` is one).
    Word(String),
    /// Servers (spans do not survive serde's untagged buffering: errors
    /// point at the value as a whole).
    Servers(Vec<String>),
}

/// A list of strings, each with its span.
pub(crate) type Strings = Vec<Spanned<String>>;
/// An array of tables.
pub(crate) type Tables<T> = Vec<Spanned<T>>;

table!(
    /// The whole file.
    RawConfig {
        monitor: RawMonitor,
        server: RawServer,
        storage: RawStorage,
        alerts: RawAlerts,
        bgp: RawBgp,
        dns: RawDns,
        guard: Tables<RawProbe>,
        service: Tables<RawService>,
        maintenance: Tables<RawMaintenance>,
    }
);

table!(
    /// `[monitor]`.
    RawMonitor { vantage: String, interval: String, timeout: String, fail_after: i64, recover_after: i64 }
);

table!(
    /// `[server]`.
    RawServer { listen: String, max_connections: i64, public_url: String }
);

table!(
    /// `[storage]`.
    RawStorage { path: String, raw_retention: String, rollup_retention: String }
);

table!(
    /// `[alerts]`.
    RawAlerts {
        group_wait: String,
        flap_changes: i64,
        flap_window: String,
        email: RawEmail,
        webhook: Tables<RawWebhook>,
    }
);

table!(
    /// `[alerts.email]`.
    RawEmail {
        smtp: String,
        username: String,
        password_env: String,
        from: String,
        to: Strings,
        notify_on: Strings,
        repeat: String,
        send_recovery: bool,
    }
);

table!(
    /// `[[alerts.webhook]]`.
    RawWebhook {
        url: String,
        format: String,
        secret_env: String,
        notify_on: Strings,
        repeat: String,
        send_recovery: bool,
    }
);

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

table!(
    /// `[dns]`.
    RawDns { roots: Strings }
);

table!(
    /// `[[service]]`.
    RawService { id: String, name: String, probe: Tables<RawProbe> }
);

table!(
    /// `[[service.probe]]` and `[[guard]]`: the keys of every kind.
    RawProbe {
        kind: String,
        id: String,
        interval: String,
        timeout: String,
        fail_after: i64,
        recover_after: i64,
        essential: bool,
        group: String,
        // dns
        query: String,
        record: String,
        server: String,
        servers: ServerList,
        require: String,
        recursion: bool,
        authoritative: bool,
        expect_rcode: String,
        expect_answer: bool,
        expect_answer_in: Strings,
        transport: String,
        // dns (encrypted), tls
        server_name: String,
        // dns (encrypted), http, tls
        ca_file: String,
        system_roots: bool,
        // http
        url: String,
        method: String,
        expect_status: Strings,
        body_contains: String,
        user_agent: String,
        max_redirects: i64,
        // http, tls
        min_cert_days: i64,
        // bgp
        prefix: String,
        origin: i64,
        origins: Vec<Spanned<i64>>,
        min_visibility: f64,
        covering: bool,
        more_specifics: bool,
        // tcp, tls
        address: String,
        // tls
        alpn: Strings,
        // http
        expect_headers: Strings,
        // mtproto
        fingerprints: Strings,
        // whatsapp (and `address` or `url`)
        root_key: String,
    }
);

table!(
    /// `[[maintenance]]`.
    RawMaintenance { services: Strings, start: String, end: String, weekly: String }
);
