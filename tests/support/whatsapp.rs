//! A loopback stand-in for WhatsApp's chat front end (PROTOCOLS.md §2.7), and the middleboxes a
//! probe must tell apart from it.
//!
//! It answers the `"WA"` prologue + ClientHello with a ServerHello built by the responder half of
//! WhatsApp's Noise variant, under a test PKI. It is written independently of the probe's
//! `noise` module (own protobuf, own key schedule, own signer), so one shared bug cannot hide.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Key, KeyInit, Nonce};
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use ed25519_dalek::VerifyingKey;
use ed25519_dalek::hazmat::{ExpandedSecretKey, raw_sign};
use futures_util::{SinkExt, StreamExt};
use hkdf::Hkdf;
use sha2::{Digest, Sha256, Sha512};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use x25519_dalek::{PublicKey, StaticSecret};

/// How long the server waits on any read or write before giving up on the connection.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// The Noise protocol name; 32 bytes, so whatsmeow uses it as the first hash without hashing it.
const PATTERN: &[u8; 32] = b"Noise_XX_25519_AESGCM_SHA256\0\0\0\0";

/// What an HTTP proxy answers to bytes it cannot parse.
const HTTP_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nBad Request";

/// A TLS alert record: fatal (2), handshake_failure (40), as a TLS server sends for a non-ClientHello.
const TLS_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];

const DAY: i64 = 86_400;

/// A test PKI: a random test root (X25519 key pair, libsignal-style signing as §2.7 step 4).
#[derive(Clone)]
pub struct TestRoot {
    /// The root's X25519 public key: what the probe pins in tests.
    pub public: [u8; 32],
    secret: [u8; 32],
}

impl Default for TestRoot {
    fn default() -> Self {
        Self::new()
    }
}

impl TestRoot {
    /// A fresh random root.
    pub fn new() -> TestRoot {
        let secret = random_bytes();
        TestRoot { public: x25519_public(&secret), secret }
    }
}

/// How the stand-in answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// A genuine WhatsApp-style server under the test root.
    Genuine,
    /// A correct handshake, but the chain is signed by another root.
    WrongRoot,
    /// A correct handshake, but the leaf certificate's notAfter is an hour in the past.
    Expired,
    /// A correct handshake, but the leaf certificate certifies another key than the server's static key.
    LeafNotStatic,
    /// RFC Noise: the responder does MixHash("") after the client's ephemeral, so nothing decrypts.
    StandardNoise,
    /// Reads the flight, never answers (holds the connection until the client leaves, at most 30 s).
    Silent,
    /// Closes right after reading the flight.
    CloseAtOnce,
    /// An HTTP proxy: writes `HTTP/1.1 400 Bad Request …` and closes. Over WebSocket it refuses the upgrade with 400.
    Http400,
    /// A TLS server: writes the alert `15 03 03 00 02 02 28` and closes (over WebSocket too, instead of the upgrade).
    TlsAlert,
    /// A genuine answer whose frame length announces the whole frame, but only half of it is sent before closing.
    Truncated,
}

/// Serves every connection on 127.0.0.1:<ephemeral> with `behaviour` until the task is aborted (or the
/// runtime ends); returns the address. Raw TCP (the "WA" header first).
pub async fn serve_tcp(root: &TestRoot, behaviour: Behaviour) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    serve(root, behaviour, Transport::Tcp).await
}

/// The same over plain ws:// (WebSocket binary messages, path /ws/chat); the first binary message carries the
/// 43-byte flight (header + frame), the answer is one binary message holding the 3-byte-length frame. Another
/// path gets 404; `Http400` refuses the upgrade with 400; `TlsAlert` answers the upgrade request with the alert.
pub async fn serve_ws(root: &TestRoot, behaviour: Behaviour) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    serve(root, behaviour, Transport::Ws).await
}

/// How a stand-in carries the bytes.
#[derive(Clone, Copy)]
enum Transport {
    Tcp,
    Ws,
}

/// The accept loop of both stand-ins.
async fn serve(
    root: &TestRoot,
    behaviour: Behaviour,
    transport: Transport,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
    let addr = listener.local_addr().expect("a bound listener has an address");
    let root = root.clone();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let root = root.clone();
            tokio::spawn(async move {
                let _ = match transport {
                    Transport::Tcp => serve_tcp_connection(stream, &root, behaviour).await,
                    Transport::Ws => serve_ws_connection(stream, &root, behaviour).await,
                };
            });
        }
    });
    (addr, task)
}

/// The pure responder: the bytes to send back for a client's first flight (header + frame), or None for
/// Silent/CloseAtOnce (and for a flight that is not a WA ClientHello, which the WA behaviours close on).
/// `Http400` and `TlsAlert` answer whatever the flight is.
pub fn respond(root: &TestRoot, behaviour: Behaviour, flight: &[u8], now_unix: i64) -> Option<Vec<u8>> {
    match behaviour {
        Behaviour::Silent | Behaviour::CloseAtOnce => return None,
        Behaviour::Http400 => return Some(HTTP_400.to_vec()),
        Behaviour::TlsAlert => return Some(TLS_ALERT.to_vec()),
        _ => {}
    }
    let (prologue, client_ephemeral) = parse_flight(flight)?;

    let ephemeral = random_bytes();
    let stat = random_bytes();
    let stat_public = x25519_public(&stat);

    let mut hs = Handshake::start(prologue);
    hs.authenticate(&client_ephemeral);
    if behaviour == Behaviour::StandardNoise {
        // RFC Noise's ReadMessage: DecryptAndHash of the (empty) first payload.
        hs.authenticate(&[]);
    }
    let ephemeral_public = x25519_public(&ephemeral);
    hs.authenticate(&ephemeral_public);
    hs.mix_into_key(&x25519(&ephemeral, &client_ephemeral));
    let static_ciphertext = hs.encrypt(&stat_public);
    hs.mix_into_key(&x25519(&stat, &client_ephemeral));
    let payload_ciphertext = hs.encrypt(&cert_chain(root, behaviour, &stat_public, now_unix));

    let mut server_hello = Vec::new();
    put_bytes(&mut server_hello, 1, &ephemeral_public);
    put_bytes(&mut server_hello, 2, &static_ciphertext);
    put_bytes(&mut server_hello, 3, &payload_ciphertext);
    let mut frame = Vec::new();
    put_bytes(&mut frame, 3, &server_hello);

    let len = u32::try_from(frame.len()).expect("a ServerHello is far below 16 MiB").to_be_bytes();
    let mut out = len[1..].to_vec();
    if behaviour == Behaviour::Truncated {
        out.extend_from_slice(&frame[..frame.len() / 2]);
    } else {
        out.extend_from_slice(&frame);
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------------------------

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn now_unix() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970");
    i64::try_from(since.as_secs()).expect("the clock is before year 292 billion")
}

async fn serve_tcp_connection(mut stream: TcpStream, root: &TestRoot, behaviour: Behaviour) -> Result<(), BoxError> {
    let flight = match behaviour {
        // A proxy answers whatever arrives first.
        Behaviour::Http400 | Behaviour::TlsAlert => {
            let mut buf = vec![0u8; 4096];
            let n = timeout(IO_TIMEOUT, stream.read(&mut buf)).await??;
            buf.truncate(n);
            buf
        }
        _ => timeout(IO_TIMEOUT, read_flight(&mut stream)).await??,
    };
    match behaviour {
        Behaviour::CloseAtOnce => return Ok(()),
        Behaviour::Silent => return drain_tcp(&mut stream).await,
        _ => {}
    }
    let Some(answer) = respond(root, behaviour, &flight, now_unix()) else {
        return Ok(());
    };
    timeout(IO_TIMEOUT, stream.write_all(&answer)).await??;
    match behaviour {
        // A real server now waits for ClientFinish: keep the connection until the client leaves.
        Behaviour::Genuine | Behaviour::WrongRoot | Behaviour::Expired | Behaviour::LeafNotStatic => {
            drain_tcp(&mut stream).await
        }
        _ => {
            let _ = timeout(IO_TIMEOUT, stream.shutdown()).await;
            Ok(())
        }
    }
}

/// Reads and discards until the client closes, at most [`IO_TIMEOUT`].
async fn drain_tcp(stream: &mut TcpStream) -> Result<(), BoxError> {
    let mut buf = [0u8; 1024];
    let _ = timeout(IO_TIMEOUT, async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    Ok(())
}

/// §2.7 steps 1–2: an optional `ED` routing block, the 4-byte `WA` header, then one length-prefixed
/// frame. Returns every byte read.
async fn read_flight<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, BoxError> {
    let mut flight = vec![0u8; 4];
    stream.read_exact(&mut flight).await?;
    if flight[..] == *b"ED\x00\x01" {
        let len = read_length(stream, &mut flight).await?;
        read_more(stream, &mut flight, len).await?;
        read_more(stream, &mut flight, 4).await?;
    }
    if flight[flight.len() - 4..flight.len() - 2] != *b"WA" {
        return Err("the flight does not start with the WA header".into());
    }
    let len = read_length(stream, &mut flight).await?;
    if len > 1 << 20 {
        return Err(format!("the client announced a {len}-byte frame").into());
    }
    read_more(stream, &mut flight, len).await?;
    Ok(flight)
}

async fn read_length<S: AsyncRead + Unpin>(stream: &mut S, flight: &mut Vec<u8>) -> Result<usize, BoxError> {
    let mut len = [0u8; 3];
    stream.read_exact(&mut len).await?;
    flight.extend_from_slice(&len);
    Ok(u32::from_be_bytes([0, len[0], len[1], len[2]]) as usize)
}

async fn read_more<S: AsyncRead + Unpin>(stream: &mut S, flight: &mut Vec<u8>, n: usize) -> Result<(), BoxError> {
    let start = flight.len();
    flight.resize(start + n, 0);
    stream.read_exact(&mut flight[start..]).await?;
    Ok(())
}

async fn serve_ws_connection(mut stream: TcpStream, root: &TestRoot, behaviour: Behaviour) -> Result<(), BoxError> {
    if behaviour == Behaviour::TlsAlert {
        let mut buf = vec![0u8; 4096];
        timeout(IO_TIMEOUT, stream.read(&mut buf)).await??;
        timeout(IO_TIMEOUT, stream.write_all(&TLS_ALERT)).await??;
        let _ = timeout(IO_TIMEOUT, stream.shutdown()).await;
        return Ok(());
    }
    let mut ws = timeout(IO_TIMEOUT, tokio_tungstenite::accept_hdr_async(stream, Upgrade(behaviour))).await??;

    // The flight may arrive in one binary message (as clients send it) or split across several.
    let mut flight = Vec::new();
    while flight_len(&flight).is_none_or(|len| flight.len() < len) {
        match timeout(IO_TIMEOUT, ws.next()).await? {
            Some(Ok(Message::Binary(data))) => flight.extend_from_slice(&data),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            _ => return Ok(()),
        }
    }
    match behaviour {
        Behaviour::CloseAtOnce => return Ok(()),
        Behaviour::Silent => return drain_ws(&mut ws).await,
        _ => {}
    }
    let Some(answer) = respond(root, behaviour, &flight, now_unix()) else {
        return Ok(());
    };
    timeout(IO_TIMEOUT, ws.send(Message::binary(answer))).await??;
    if behaviour == Behaviour::Truncated {
        let _ = timeout(IO_TIMEOUT, ws.close(None)).await;
        return Ok(());
    }
    drain_ws(&mut ws).await
}

/// The upgrade decision: 400 for `Http400`, 404 off `/ws/chat`, else 101.
struct Upgrade(Behaviour);

impl Callback for Upgrade {
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        let status = if self.0 == Behaviour::Http400 {
            StatusCode::BAD_REQUEST
        } else if request.uri().path() != "/ws/chat" {
            StatusCode::NOT_FOUND
        } else {
            return Ok(response);
        };
        let mut refusal = ErrorResponse::new(Some(status.canonical_reason().unwrap_or("").to_owned()));
        *refusal.status_mut() = status;
        Err(refusal)
    }
}

/// Reads and discards until the client closes, at most [`IO_TIMEOUT`].
async fn drain_ws<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Result<(), BoxError>
where
    S: AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let _ = timeout(IO_TIMEOUT, async {
        while let Some(Ok(message)) = ws.next().await {
            if message.is_close() {
                break;
            }
        }
    })
    .await;
    Ok(())
}

/// The total length of the flight in `buf` (ED block, header, length, frame) once enough of it is there to tell.
fn flight_len(buf: &[u8]) -> Option<usize> {
    let mut at = 0;
    if buf.get(..4)? == b"ED\x00\x01" {
        at = 7 + be24(buf.get(4..7)?);
    }
    let header_end = at + 4;
    Some(header_end + 3 + be24(buf.get(header_end..header_end + 3)?))
}

fn be24(b: &[u8]) -> usize {
    b.iter().fold(0, |acc, &x| acc << 8 | usize::from(x))
}

// ---------------------------------------------------------------------------------------------
// Responder key schedule, after whatsmeow's NoiseHandshake (Start / Authenticate / MixIntoKey / Encrypt)
// ---------------------------------------------------------------------------------------------

struct Handshake {
    hash: [u8; 32],
    salt: [u8; 32],
    key: [u8; 32],
    counter: u32,
}

impl Handshake {
    fn start(header: &[u8]) -> Self {
        let mut hs = Handshake { hash: *PATTERN, salt: *PATTERN, key: *PATTERN, counter: 0 };
        hs.authenticate(header);
        hs
    }

    fn authenticate(&mut self, data: &[u8]) {
        let mut buf = self.hash.to_vec();
        buf.extend_from_slice(data);
        self.hash = Sha256::digest(&buf).into();
    }

    fn mix_into_key(&mut self, secret: &[u8; 32]) {
        self.counter = 0;
        let hkdf = Hkdf::<Sha256>::new(Some(&self.salt), secret);
        let mut out = [0u8; 64];
        hkdf.expand(b"", &mut out).expect("64 bytes is a valid HKDF-SHA256 length");
        let (write, read) = out.split_at(32);
        self.salt = write.try_into().expect("split at 32 of 64");
        self.key = read.try_into().expect("split at 32 of 64");
    }

    fn encrypt(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let mut iv = [0u8; 12];
        iv[8..].copy_from_slice(&self.counter.to_be_bytes());
        self.counter += 1;
        let aead = Aes256Gcm::new(&Key::<Aes256Gcm>::from(self.key));
        let ciphertext = aead
            .encrypt(&Nonce::from(iv), Payload { msg: plaintext, aad: &self.hash })
            .expect("AES-GCM encrypts a short message");
        self.authenticate(&ciphertext);
        ciphertext
    }
}

// ---------------------------------------------------------------------------------------------
// Test PKI
// ---------------------------------------------------------------------------------------------

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS RNG works in tests");
    bytes
}

fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(*secret)).to_bytes()
}

fn x25519(secret: &[u8; 32], public: &[u8; 32]) -> [u8; 32] {
    StaticSecret::from(*secret).diffie_hellman(&PublicKey::from(*public)).to_bytes()
}

/// libsignal `calculate_signature`: the clamped X25519 scalar signs as Ed25519, and the Edwards
/// public key's sign bit is carried in the top bit of the signature.
fn libsignal_sign(secret: &[u8; 32], message: &[u8]) -> [u8; 64] {
    let expanded =
        ExpandedSecretKey { scalar: Scalar::from_bytes_mod_order(clamp_integer(*secret)), hash_prefix: random_bytes() };
    let edwards_public = VerifyingKey::from(&expanded);
    let mut signature = raw_sign::<Sha512>(&expanded, message, &edwards_public).to_bytes();
    signature[63] &= 0x7f;
    signature[63] |= edwards_public.as_bytes()[31] & 0x80;
    signature
}

struct CertDetails {
    serial: u32,
    issuer_serial: u32,
    key: [u8; 32],
    not_before: i64,
    not_after: i64,
}

/// `NoiseCertificate{details, signature}` with `details` signed by `signer`.
fn certificate(details: &CertDetails, signer: &[u8; 32]) -> Vec<u8> {
    let mut raw = Vec::new();
    put_varint_field(&mut raw, 1, details.serial.into());
    put_varint_field(&mut raw, 2, details.issuer_serial.into());
    put_bytes(&mut raw, 3, &details.key);
    put_varint_field(&mut raw, 4, u64::try_from(details.not_before).expect("test dates are after 1970"));
    put_varint_field(&mut raw, 5, u64::try_from(details.not_after).expect("test dates are after 1970"));
    let mut cert = Vec::new();
    put_bytes(&mut cert, 1, &raw);
    put_bytes(&mut cert, 2, &libsignal_sign(signer, &raw));
    cert
}

/// `CertChain{leaf = 1, intermediate = 2}` for `behaviour`.
fn cert_chain(root: &TestRoot, behaviour: Behaviour, static_public: &[u8; 32], now: i64) -> Vec<u8> {
    let root_secret = if behaviour == Behaviour::WrongRoot { random_bytes() } else { root.secret };
    let intermediate_secret = random_bytes();
    let intermediate = CertDetails {
        serial: 1,
        issuer_serial: 0,
        key: x25519_public(&intermediate_secret),
        not_before: now - DAY,
        not_after: now + 365 * DAY,
    };
    let mut leaf = CertDetails {
        serial: 2,
        issuer_serial: 1,
        key: *static_public,
        not_before: now - DAY,
        not_after: now + 365 * DAY,
    };
    match behaviour {
        Behaviour::Expired => {
            leaf.not_before = now - 2 * DAY;
            leaf.not_after = now - 3600;
        }
        Behaviour::LeafNotStatic => leaf.key = x25519_public(&random_bytes()),
        _ => {}
    }
    let mut chain = Vec::new();
    put_bytes(&mut chain, 1, &certificate(&leaf, &intermediate_secret));
    put_bytes(&mut chain, 2, &certificate(&intermediate, &root_secret));
    chain
}

// ---------------------------------------------------------------------------------------------
// Protobuf, by hand
// ---------------------------------------------------------------------------------------------

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn put_varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    put_varint(out, u64::from(field) << 3);
    put_varint(out, value);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    put_varint(out, (u64::from(field) << 3) | 2);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

/// Reads a varint at `*at`.
fn get_varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The last length-delimited occurrence of `field` in a message, skipping everything else.
fn get_bytes(msg: &[u8], field: u64) -> Option<&[u8]> {
    let mut at = 0;
    let mut found = None;
    while at < msg.len() {
        let tag = get_varint(msg, &mut at)?;
        match tag & 7 {
            0 => {
                get_varint(msg, &mut at)?;
            }
            1 => at += 8,
            2 => {
                let len = usize::try_from(get_varint(msg, &mut at)?).ok()?;
                let value = msg.get(at..at.checked_add(len)?)?;
                at += len;
                if tag >> 3 == field {
                    found = Some(value);
                }
            }
            5 => at += 4,
            _ => return None,
        }
    }
    if at > msg.len() { None } else { found }
}

/// (the 4-byte WA header, clientHello.ephemeral) of a flight, or None if it is not one.
fn parse_flight(flight: &[u8]) -> Option<(&[u8], [u8; 32])> {
    let mut rest = flight;
    if rest.get(..4)? == b"ED\x00\x01" {
        let skip = 7 + be24(rest.get(4..7)?);
        rest = rest.get(skip..)?;
    }
    let header = rest.get(..4)?;
    if &header[..2] != b"WA" {
        return None;
    }
    let len = be24(rest.get(4..7)?);
    let frame = rest.get(7..7 + len)?;
    let client_hello = get_bytes(frame, 2)?;
    let ephemeral = get_bytes(client_hello, 1)?;
    Some((header, ephemeral.try_into().ok()?))
}
