//! What the chat probes (mtproto, whatsapp) share: opening the connection
//! (the tcp probe's Happy Eyeballs connect, then a WebSocket upgrade for a
//! `url`), sending a first flight, collecting the answer's bytes before a
//! deadline, and saying in words what came back when it is not the
//! protocol asked for.
//!
//! The reasons follow SPEC 9.1: a connection that cannot be made keeps the
//! tcp reasons; connected but nothing complete in time is `chat_timeout`;
//! closed or reset before any byte is `chat_closed`; bytes of another
//! protocol (an HTTP answer, a TLS alert, an HTML page) are `chat_foreign`.
//! Judging the answer itself is each kind's own file.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::kind::{Finding, Reason};
use super::tcp::Endpoint;

/// Where a chat probe speaks: a raw TCP endpoint or a WebSocket URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTarget {
    /// `address = "host:port"`: the protocol's bytes straight over TCP.
    Tcp(Endpoint),
    /// `url = "wss://…"` (or `ws://` on loopback): the same bytes in
    /// WebSocket binary messages.
    WebSocket {
        /// The URL, parsed once at load.
        url: reqwest::Url,
        /// Its host and port, connected to as a tcp probe's `address` is.
        endpoint: Endpoint,
    },
}

impl ChatTarget {
    /// The endpoint connected to.
    pub fn endpoint(&self) -> &Endpoint {
        match self {
            ChatTarget::Tcp(e) | ChatTarget::WebSocket { endpoint: e, .. } => e,
        }
    }
}

/// The most bytes a chat probe keeps of an answer: far above any first
/// answer (a resPQ is 100 bytes, a ServerHello a few hundred), so a hostile
/// server cannot make the monitor buffer more.
pub const ANSWER_CAP: usize = 64 * 1024 + 16;

/// How long a foreign answer is read on for, to say what it was.
const FOREIGN_GRACE: Duration = Duration::from_millis(200);

/// An open connection to a chat front end: raw TCP, or WebSocket binary
/// messages (over TLS for `wss://`).
pub enum Wire {
    /// The protocol's bytes straight over TCP.
    Tcp(TcpStream),
    /// The same bytes carried in WebSocket binary messages.
    Ws(Box<WebSocketStream<MaybeTlsStream<TcpStream>>>),
}

/// Where a run got to: the endpoint as configured and the address that answered.
pub struct Peer {
    /// `address` (or the URL's host and port) as written.
    pub shown: String,
    /// The address that accepted the connection.
    pub reached: SocketAddr,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reached = self.reached.to_string();
        if self.shown == reached { f.write_str(&reached) } else { write!(f, "{} ({reached})", self.shown) }
    }
}

/// Connects to `target` before `deadline`; for a WebSocket URL, upgrades
/// with `Origin: origin`. A connection that cannot be made is the tcp
/// probe's finding; a refused upgrade is `chat_foreign`.
pub async fn open(target: &ChatTarget, origin: &str, deadline: Instant) -> Result<(Wire, Peer), Finding> {
    let endpoint: &Endpoint = target.endpoint();
    let (stream, reached) = super::tcp::connect(endpoint, deadline).await?;
    let peer = Peer { shown: endpoint.address.clone(), reached };
    let ChatTarget::WebSocket { url, .. } = target else { return Ok((Wire::Tcp(stream), peer)) };
    let mut request = match tungstenite::client::IntoClientRequest::into_client_request(url.as_str()) {
        Ok(request) => request,
        Err(e) => return Err(Finding::fail(Reason::ChatForeign, format!("{url}: cannot build the upgrade ({e})"))),
    };
    if let Ok(value) = origin.parse() {
        request.headers_mut().insert("Origin", value);
    }
    let mut limits = tungstenite::protocol::WebSocketConfig::default();
    limits.max_message_size = Some(ANSWER_CAP);
    limits.max_frame_size = Some(ANSWER_CAP);
    let upgrade = tokio_tungstenite::client_async_tls_with_config(request, stream, Some(limits), None);
    match timeout_at(deadline, upgrade).await {
        Ok(Ok((ws, _))) => Ok((Wire::Ws(Box::new(ws)), peer)),
        Ok(Err(e)) => Err(upgrade_failed(url, &peer, e)),
        Err(_) => Err(Finding::fail(Reason::ChatTimeout, format!("{url} via {peer}: no WebSocket upgrade in time"))),
    }
}

/// The finding for a WebSocket upgrade that did not happen.
fn upgrade_failed(url: &reqwest::Url, peer: &Peer, e: tungstenite::Error) -> Finding {
    match e {
        tungstenite::Error::Http(response) => Finding::fail(
            Reason::ChatForeign,
            format!(
                "{url} via {peer}: answered HTTP {} to the WebSocket upgrade — not a chat front end",
                response.status()
            ),
        ),
        tungstenite::Error::Tls(tls) => {
            let text = tls.to_string();
            let reason = if text.contains("certificate") { Reason::TlsCert } else { Reason::TlsHandshake };
            Finding::fail(reason, format!("{url} via {peer}: TLS failed: {text}"))
        }
        tungstenite::Error::Io(io) => Finding::fail(
            Reason::ChatClosed,
            format!("{url} via {peer}: the connection failed during the upgrade ({io})"),
        ),
        other => {
            Finding::fail(Reason::ChatForeign, format!("{url} via {peer}: the WebSocket upgrade failed ({other})"))
        }
    }
}

/// How collecting an answer ended short.
#[derive(Debug)]
pub enum Short {
    /// Nothing more arrived before the deadline.
    Silent,
    /// The server closed (FIN, WebSocket close).
    Closed,
    /// The connection failed (reset).
    Failed(String),
}

impl Wire {
    /// Sends `bytes`: as they are over TCP, as one binary message over WebSocket.
    pub async fn send(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), Short> {
        let sent = match self {
            Wire::Tcp(stream) => {
                timeout_at(deadline, stream.write_all(bytes)).await.map(|r| r.map_err(|e| e.to_string()))
            }
            Wire::Ws(ws) => timeout_at(deadline, ws.send(Message::binary(bytes.to_vec())))
                .await
                .map(|r| r.map_err(|e| e.to_string())),
        };
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(Short::Failed(why)),
            Err(_) => Err(Short::Silent),
        }
    }

    /// Collects the answer into `got` until it holds at least `want` bytes
    /// (capped at [`ANSWER_CAP`]) or the deadline passes.
    pub async fn fill(&mut self, got: &mut Vec<u8>, want: usize, deadline: Instant) -> Result<(), Short> {
        let want = want.min(ANSWER_CAP);
        while got.len() < want {
            match timeout_at(deadline, self.chunk(ANSWER_CAP - got.len())).await {
                Ok(Ok(bytes)) => got.extend_from_slice(&bytes),
                Ok(Err(short)) => return Err(short),
                Err(_) => return Err(Short::Silent),
            }
        }
        Ok(())
    }

    /// The next bytes the server sends, at most `room` of them.
    async fn chunk(&mut self, room: usize) -> Result<Vec<u8>, Short> {
        match self {
            Wire::Tcp(stream) => {
                let mut buf = vec![0u8; room.clamp(1, 4096)];
                match stream.read(&mut buf).await {
                    Ok(0) => Err(Short::Closed),
                    Ok(n) => {
                        buf.truncate(n);
                        Ok(buf)
                    }
                    Err(e) => Err(Short::Failed(e.to_string())),
                }
            }
            Wire::Ws(ws) => loop {
                match ws.next().await {
                    None | Some(Ok(Message::Close(_))) => return Err(Short::Closed),
                    Some(Ok(Message::Binary(bytes))) => return Ok(bytes[..bytes.len().min(room)].to_vec()),
                    Some(Ok(Message::Text(text))) => return Ok(text.as_bytes()[..text.len().min(room)].to_vec()),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(Short::Failed(e.to_string())),
                }
            },
        }
    }

    /// After a foreign start, reads on briefly so the detail can say what it was.
    pub async fn read_on(&mut self, got: &mut Vec<u8>, deadline: Instant) {
        let until = deadline.min(Instant::now() + FOREIGN_GRACE);
        let _ = self.fill(got, 128, until).await;
    }
}

/// The finding for an answer that ended short: `chat_timeout`,
/// `chat_closed`, or `chat_foreign` when what did arrive is another protocol.
pub fn short_answer(protocol: &str, peer: &Peer, short: &Short, got: &[u8], timeout: Duration) -> Finding {
    if !got.is_empty()
        && let Some(what) = foreign(got)
    {
        return Finding::fail(Reason::ChatForeign, format!("{peer}: {what} — not {protocol}"));
    }
    let waited = humantime::format_duration(timeout);
    match (short, got.len()) {
        (Short::Silent, 0) => {
            Finding::fail(Reason::ChatTimeout, format!("{peer}: connected, but no {protocol} answer within {waited}"))
        }
        (Short::Silent, n) => Finding::fail(
            Reason::ChatTimeout,
            format!("{peer}: {n} bytes of an answer, then nothing more within {waited}"),
        ),
        (Short::Closed, 0) => {
            Finding::fail(Reason::ChatClosed, format!("{peer}: connected, but closed before any {protocol} answer"))
        }
        (Short::Failed(why), 0) => Finding::fail(
            Reason::ChatClosed,
            format!("{peer}: connected, but the connection failed before any {protocol} answer ({why})"),
        ),
        (Short::Closed | Short::Failed(_), n) => Finding::fail(
            Reason::ChatClosed,
            format!("{peer}: closed after {n} bytes, before a complete {protocol} answer"),
        ),
    }
}

/// What `bytes` are, in words, when they start like a protocol other
/// than a chat protocol: an HTTP answer, a TLS record, an HTML page, an
/// SSH banner or other text.
pub fn foreign(bytes: &[u8]) -> Option<String> {
    let line = || {
        let end = bytes.iter().position(|b| *b == b'\r' || *b == b'\n').unwrap_or(bytes.len()).min(60);
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    match bytes {
        [b'H', b'T', b'T', b'P', ..] => Some(format!("answered \"{}\"", line())),
        [0x15, 0x03, 0x00..=0x04, ..] => Some(format!("answered with a TLS alert ({})", hex(bytes, 7))),
        [0x16, 0x03, 0x00..=0x04, ..] => Some(format!("answered with a TLS handshake ({}…)", hex(bytes, 5))),
        [b'<', ..] => Some(format!("answered an HTML or XML page (\"{}\")", line())),
        [b'S', b'S', b'H', b'-', ..] => Some(format!("answered an SSH banner (\"{}\")", line())),
        _ if bytes.len() >= 4 && bytes.iter().take(16).all(|b| b.is_ascii_graphic() || *b == b' ') => {
            Some(format!("answered text (\"{}\")", line()))
        }
        _ => None,
    }
}

/// `bytes` as words: [`foreign`]'s description, or the first bytes in hex.
pub fn describe(bytes: &[u8]) -> String {
    foreign(bytes).unwrap_or_else(|| {
        let more = if bytes.len() > 12 { " …" } else { "" };
        format!("answered {} bytes ({}{more})", bytes.len(), hex(bytes, 12))
    })
}

/// The first `n` bytes in spaced hex.
fn hex(bytes: &[u8], n: usize) -> String {
    bytes.iter().take(n).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// A chat exchange under way: the first flight sent, the answer's bytes
/// collected so far. What both chat kinds do before judging the answer.
pub struct Answer {
    wire: Wire,
    /// Where it connected.
    pub peer: Peer,
    /// The answer's bytes so far.
    pub got: Vec<u8>,
    protocol: &'static str,
    timeout: Duration,
    deadline: Instant,
}

/// Connects to `target` (with `origin` for a WebSocket upgrade), sends
/// `flight` and collects the first `prefix` bytes of the answer (its length
/// field), all within `timeout`; a run that ends sooner is its finding.
pub async fn exchange(
    target: &ChatTarget,
    origin: &str,
    flight: &[u8],
    prefix: usize,
    protocol: &'static str,
    timeout: Duration,
) -> Result<Answer, Finding> {
    let deadline = Instant::now() + timeout;
    let (wire, peer) = open(target, origin, deadline).await?;
    let mut answer = Answer { wire, peer, got: Vec::new(), protocol, timeout, deadline };
    if let Err(why) = answer.wire.send(flight, deadline).await {
        return Err(answer.short(&why));
    }
    answer.fill(prefix).await?;
    Ok(answer)
}

impl Answer {
    /// Collects the answer until it holds `want` bytes.
    pub async fn fill(&mut self, want: usize) -> Result<(), Finding> {
        match self.wire.fill(&mut self.got, want, self.deadline).await {
            Ok(()) => Ok(()),
            Err(why) => Err(self.short(&why)),
        }
    }

    /// The finding of an answer that ended short.
    fn short(&self, why: &Short) -> Finding {
        short_answer(self.protocol, &self.peer, why, &self.got, self.timeout)
    }

    /// `chat_foreign` for an answer that is not the protocol, after reading
    /// on briefly to say what it was.
    pub async fn foreign(&mut self) -> Finding {
        self.wire.read_on(&mut self.got, self.deadline).await;
        Finding::fail(Reason::ChatForeign, format!("{}: {} — not {}", self.peer, describe(&self.got), self.protocol))
    }
}

/// N random bytes from the operating system (a nonce, a key).
pub fn random<const N: usize>() -> Result<[u8; N], Finding> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| Finding::fail(Reason::ProbeResource, format!("the monitor could not draw random bytes ({e})")))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_answers_are_named_in_words() {
        assert_eq!(
            foreign(b"HTTP/1.1 400 Bad Request\r\nServer: x").as_deref(),
            Some("answered \"HTTP/1.1 400 Bad Request\"")
        );
        assert_eq!(
            foreign(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]).as_deref(),
            Some("answered with a TLS alert (15 03 03 00 02 02 28)")
        );
        assert!(foreign(b"<html><body>Login to the Wi-Fi").is_some_and(|w| w.contains("HTML")));
        assert_eq!(foreign(&[0x00, 0x01, 0x2c, 0x1a]), None, "binary protocol bytes are not named foreign");
        assert_eq!(describe(&[0, 1, 2]), "answered 3 bytes (00 01 02)");
    }
}
