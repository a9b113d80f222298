//! Value syntaxes that several sections share: socket addresses, 32-byte
//! keys in hex, and URLs as they may be shown (a password redacted).

use std::net::{IpAddr, SocketAddr};

use super::ValueError;

/// `ip:port`, or a bare IP address when the key has a `default_port`.
pub fn parse_socket_addr(s: &str, default_port: Option<u16>) -> Result<SocketAddr, ValueError> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match (default_port, s.parse::<IpAddr>()) {
        (Some(port), Ok(ip)) => Ok(SocketAddr::new(ip, port)),
        _ => Err(ValueError::not(s, "an IP address with a port (like 127.0.0.1:9464 or [::1]:9464)")),
    }
}

/// 64 hex digits as 32 bytes.
pub fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

/// `url` with any password replaced by `***` (`http://admin:***@host/`),
/// for everything a user or a log sees; the real URL is used only to connect.
pub fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
