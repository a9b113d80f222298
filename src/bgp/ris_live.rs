//! Source `ris-live`: RIPE RIS Live over a websocket.
//!
//! On every connection: subscribe to each watched prefix with its more- and
//! less-specifics, forget what was known, seed from the RIPEstat looking glass,
//! then follow UPDATEs and RIS_PEER_STATE messages. A JSON ping goes out
//! regularly and its pong counts as life, so a quiet prefix is not a stale
//! feed. A dropped connection is retried with capped exponential backoff.
//! Frames that are not understood are counted and skipped, never fatal.
//!
//! Against a server that misbehaves: the TCP and websocket handshake are
//! bounded by [`CONNECT_TIMEOUT`] (or `stale_after`, if shorter); a connection silent for `stale_after`
//! (not even a pong) is dropped and re-established; the backoff is reset
//! only after a connection stayed up for [`STABLE_AFTER`], so a server that
//! accepts and closes at once is not hammered; frames are capped at
//! [`MAX_FRAME`].

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info, warn};

use super::config::Bgp;
use super::event::{FeedEvent, FeedSender, PeerKey};
use super::seed::{self, lenient_prefix};
use crate::prefix::Prefix;

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// First wait after a failure.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// TCP connect, TLS and the websocket handshake together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// A connection up this long has earned a fresh backoff.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);
/// Largest websocket message or frame accepted.
pub const MAX_FRAME: usize = 16 << 20;

/// What the source needs.
#[derive(Clone)]
pub struct RisLive {
    url: String,
    seed_url: String,
    prefixes: Vec<Prefix>,
    /// Subscribed to but not seeded (the canary's beacons).
    listened: Vec<Prefix>,
    ping_every: Duration,
    stale_after: Duration,
    connect_timeout: Duration,
    client: reqwest::Client,
}

impl RisLive {
    /// From `[bgp]`, for `prefixes`; fails only when no HTTP client can be
    /// made for seeding (TLS roots, crypto provider).
    pub fn new(config: &Bgp, prefixes: &[Prefix]) -> Result<RisLive, reqwest::Error> {
        Ok(RisLive {
            url: config.ris_live_url.clone(),
            seed_url: config.seed_url.clone(),
            prefixes: prefixes.to_vec(),
            listened: Vec::new(),
            // Often enough that a healthy, quiet feed never looks stale.
            ping_every: (config.stale_after / 3).clamp(Duration::from_millis(100), Duration::from_secs(30)),
            stale_after: config.stale_after,
            // A handshake slower than the feed may be silent is as bad as silence.
            connect_timeout: CONNECT_TIMEOUT.min(config.stale_after),
            client: reqwest::Client::builder().connect_timeout(CONNECT_TIMEOUT).build()?,
        })
    }

    /// Also subscribes to `prefixes`, without seeding them (the routing
    /// beacons: their changes are what the canary counts).
    pub fn listening_to(mut self, prefixes: &[Prefix]) -> RisLive {
        self.listened = prefixes.to_vec();
        self
    }
}

#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: serde_json::Value,
}

#[derive(Deserialize)]
struct RisMessage {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    peer: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    path: Vec<serde_json::Value>,
    #[serde(default)]
    announcements: Vec<Announcement>,
    #[serde(default)]
    withdrawals: Vec<String>,
    #[serde(default)]
    state: String,
}

#[derive(Deserialize)]
struct Announcement {
    #[serde(default)]
    prefixes: Vec<String>,
}

/// The origin of a RIS Live path: the last element, or the only member of a
/// final one-element set (`[..., [64500]]`).
fn origin(path: &[serde_json::Value]) -> Option<u32> {
    match path.last()? {
        serde_json::Value::Array(set) if set.len() == 1 => seed::asn(&set[0]),
        serde_json::Value::Array(_) => None,
        other => seed::asn(other),
    }
}

/// Why a RIS Live frame was not understood (it is skipped and counted).
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Not JSON, or not a frame.
    #[error("not RIS Live JSON: {0}")]
    NotJson(serde_json::Error),
    /// A frame type RIS Live does not send.
    #[error("unknown frame type {0:?}")]
    UnknownType(String),
    /// A `ris_message` without the fields one has.
    #[error("bad ris_message: {0}")]
    BadMessage(serde_json::Error),
    /// The peer is not an IP address.
    #[error("bad peer address {0:?}")]
    BadPeer(String),
}

/// Translates one text frame into engine events (empty for frames that only
/// prove the feed alive). `Err` for frames that are not understood.
pub fn translate(text: &str) -> Result<Vec<FeedEvent>, FrameError> {
    let frame: Frame = serde_json::from_str(text).map_err(FrameError::NotJson)?;
    match frame.kind.as_str() {
        "ris_message" => {}
        "pong" | "ris_rrc_list" => return Ok(vec![FeedEvent::Alive]),
        "ris_error" => {
            warn!(error = %frame.data, "RIS Live reported an error");
            return Ok(vec![FeedEvent::Alive]);
        }
        other => return Err(FrameError::UnknownType(other.to_string())),
    }
    let message: RisMessage = serde_json::from_value(frame.data).map_err(FrameError::BadMessage)?;
    let ip = message.peer.parse().map_err(|_| FrameError::BadPeer(message.peer.clone()))?;
    let peer = PeerKey { collector: message.host.to_ascii_lowercase(), ip };
    let mut events = vec![FeedEvent::Alive];
    match message.kind.as_str() {
        "UPDATE" => {
            for withdrawn in &message.withdrawals {
                if let Some(prefix) = lenient_prefix(withdrawn) {
                    events.push(FeedEvent::Withdraw { peer: peer.clone(), prefix, path_id: 0 });
                }
            }
            let origin = origin(&message.path);
            for announcement in &message.announcements {
                for text in &announcement.prefixes {
                    if let Some(prefix) = lenient_prefix(text) {
                        events.push(FeedEvent::Announce { peer: peer.clone(), prefix, path_id: 0, origin });
                    }
                }
            }
        }
        "RIS_PEER_STATE" => match message.state.as_str() {
            "connected" => events.push(FeedEvent::PeerUp(peer)),
            "down" => events.push(FeedEvent::PeerDown(peer)),
            _ => {}
        },
        _ => {} // OPEN, KEEPALIVE, NOTIFICATION: the peer is alive, no route change.
    }
    Ok(events)
}

fn subscription(prefix: Prefix) -> String {
    serde_json::json!({
        "type": "ris_subscribe",
        "data": { "prefix": prefix.to_string(), "moreSpecific": true, "lessSpecific": true }
    })
    .to_string()
}

/// Runs until the engine is gone.
pub async fn run(source: RisLive, tx: FeedSender) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let started = tokio::time::Instant::now();
        match session(&source, &tx).await {
            Ok(()) => return,
            Err(why) => {
                if tx.send(FeedEvent::Healthy(false)).await.is_err() {
                    return;
                }
                if started.elapsed() >= STABLE_AFTER {
                    backoff = MIN_BACKOFF;
                }
                warn!(url = %crate::document::redacted(&source.url), "RIS Live: {why}; reconnecting in {}", humantime::format_duration(backoff));
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Why a RIS Live connection ended (it is reconnected after a backoff).
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("no websocket handshake within {}", humantime::format_duration(*.0))]
    HandshakeTimeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("cannot subscribe: the server does not read")]
    SubscribeTimeout,
    #[error("cannot subscribe: {0}")]
    Subscribe(tokio_tungstenite::tungstenite::Error),
    #[error("cannot seed: {0}")]
    Seed(#[from] seed::SeedError),
    #[error("nothing received for {}, not even a pong", humantime::format_duration(*.0))]
    Silent(Duration),
    #[error("connection closed")]
    Closed,
    #[error("connection lost: {0}")]
    Lost(tokio_tungstenite::tungstenite::Error),
    #[error("server closed the connection")]
    ClosedByServer,
    #[error("cannot ping: the server does not read")]
    PingTimeout,
    #[error("cannot ping: {0}")]
    Ping(tokio_tungstenite::tungstenite::Error),
}

/// One connection. `Ok` only when the engine has gone away.
async fn session(source: &RisLive, tx: &FeedSender) -> Result<(), SessionError> {
    let mut limits = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    limits.max_message_size = Some(MAX_FRAME);
    limits.max_frame_size = Some(MAX_FRAME);
    let connect = tokio_tungstenite::connect_async_with_config(source.url.as_str(), Some(limits), false);
    let (mut ws, _) = tokio::time::timeout(source.connect_timeout, connect)
        .await
        .map_err(|_| SessionError::HandshakeTimeout(source.connect_timeout))?
        .map_err(|e| SessionError::Connect(crate::error_text::root_cause(&e)))?;
    for prefix in source.prefixes.iter().chain(&source.listened) {
        let subscribe = ws.send(Message::Text(subscription(*prefix).into()));
        tokio::time::timeout(source.connect_timeout, subscribe)
            .await
            .map_err(|_| SessionError::SubscribeTimeout)?
            .map_err(SessionError::Subscribe)?;
    }
    let gone = |_| Ok::<(), SessionError>(());
    if tx.send(FeedEvent::Reset).await.is_err() {
        return gone(());
    }
    let mut seeded = 0;
    for prefix in &source.prefixes {
        match seed::looking_glass(&source.client, &source.seed_url, *prefix).await {
            Ok(events) => {
                seeded += events.len();
                for event in events {
                    if tx.send(event).await.is_err() {
                        return gone(());
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    info!(url = %crate::document::redacted(&source.url), routes = seeded, "RIS Live connected and seeded");
    if tx.send(FeedEvent::Healthy(true)).await.is_err() {
        return gone(());
    }
    let mut ping = tokio::time::interval(source.ping_every);
    let mut heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            frame = tokio::time::timeout_at(heard + source.stale_after, ws.next()) => {
                let Ok(frame) = frame else {
                    return Err(SessionError::Silent(source.stale_after));
                };
                heard = tokio::time::Instant::now();
                let events = match frame {
                    None => return Err(SessionError::Closed),
                    Some(Err(e)) => return Err(SessionError::Lost(e)),
                    Some(Ok(Message::Text(text))) => translate(&text).unwrap_or_else(|why| {
                        debug!("RIS Live frame skipped: {why}");
                        vec![FeedEvent::Malformed]
                    }),
                    Some(Ok(Message::Close(_))) => return Err(SessionError::ClosedByServer),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => vec![FeedEvent::Alive],
                    Some(Ok(_)) => vec![FeedEvent::Malformed],
                };
                for event in events {
                    if tx.send(event).await.is_err() {
                        return gone(());
                    }
                }
            }
            _ = ping.tick() => {
                let send = ws.send(Message::Text(r#"{"type":"ping"}"#.into()));
                tokio::time::timeout(source.stale_after, send)
                    .await
                    .map_err(|_| SessionError::PingTimeout)?
                    .map_err(SessionError::Ping)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_becomes_withdrawals_then_announcements_with_the_path_origin() {
        let text = r#"{"type":"ris_message","data":{"peer":"195.208.208.147","host":"rrc13","type":"UPDATE","path":[28917,3257,262893],"announcements":[{"next_hop":"x","prefixes":["177.23.116.0/24"]}],"withdrawals":["141.136.32.0/20"]}}"#;
        let events = translate(text).unwrap();
        assert!(matches!(events[1], FeedEvent::Withdraw { prefix, .. } if prefix.to_string() == "141.136.32.0/20"));
        assert!(
            matches!(&events[2], FeedEvent::Announce { peer, origin: Some(262893), .. } if peer.collector == "rrc13")
        );
    }

    #[test]
    fn final_as_set_of_one_is_the_origin_and_larger_sets_hide_it() {
        assert_eq!(origin(&serde_json::from_str::<Vec<_>>("[1, [64500]]").unwrap()), Some(64500));
        assert_eq!(origin(&serde_json::from_str::<Vec<_>>("[1, [64500, 64501]]").unwrap()), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(translate("not json").is_err());
        assert!(translate(r#"{"type":"ris_message","data":{"peer":"nonsense"}}"#).is_err());
        assert!(translate(r#"{"type":"surprise"}"#).is_err());
    }
}
