//! `[server]`: where /metrics, the API and the status page listen, and
//! the base of links in alerts.

use std::net::SocketAddr;

use crate::document::{ConfigError, Table, ValueError, field, parse_socket_addr, table};

table!(
    /// `[server]`.
    RawServer { listen: String, max_connections: i64, public_url: String }
);

/// `[server]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// Where /metrics, the API and the status page are served.
    pub listen: SocketAddr,
    /// Connections served at once; more are closed at accept.
    pub max_connections: usize,
    /// Base of links in alerts; `None` = `http://{listen}`.
    pub public_url: Option<String>,
}

pub(super) fn read_server(t: Option<Table<'_, RawServer>>) -> Result<Server, ConfigError> {
    let mut server =
        Server { listen: SocketAddr::from(([127, 0, 0, 1], 9464)), max_connections: 256, public_url: None };
    if let Some(t) = t {
        server.listen = t.parsed(field!(t, listen), |s| parse_socket_addr(s, None))?.unwrap_or(server.listen);
        server.max_connections =
            t.int(field!(t, max_connections), 1..65_536)?.map_or(server.max_connections, |n| n as usize);
        server.public_url = t.parsed(field!(t, public_url), |s| {
            let u = reqwest::Url::parse(s).map_err(|e| ValueError::not(s, "a URL").because(e))?;
            if !matches!(u.scheme(), "http" | "https") {
                return Err(ValueError::must(s, "start with http:// or https://"));
            }
            Ok(s.trim_end_matches('/').to_string())
        })?;
    }
    Ok(server)
}
