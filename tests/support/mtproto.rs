//! A loopback stand-in for a Telegram DC (PROTOCOLS.md §1.8): accepts TCP on 127.0.0.1, reads the
//! intermediate tag and one packet, and answers as a genuine DC, a refusing one, a forger, or a
//! middlebox would.
//!
//! It shares no code with the probe's wire module: every byte is written out here on its own
//! (constructors and fingerprints as literal wire bytes), so a bug in the probe's encoding cannot
//! be mirrored by the server and go unnoticed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;

/// How long the server waits on any read before it gives up on a connection.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The genuine pq of the official sample: 1008949199 × 1455403679.
pub const GENUINE_PQ: u64 = 0x1460_E7D3_FA72_7791;

/// A pq that is the product of three primes: 1000003 × 1000033 × 1000037.
pub const COMPOSITE_PQ: u64 = 1_000_003 * 1_000_033 * 1_000_037;

/// The production key fingerprint 0xd09d1d85de64fd85, as it goes on the wire.
pub const PRODUCTION_FP_WIRE: [u8; 8] = [0x85, 0xfd, 0x64, 0xde, 0x85, 0x1d, 0x9d, 0xd0];

/// The test key fingerprint 0xb25898df208d2603, as it goes on the wire.
pub const TEST_FP_WIRE: [u8; 8] = [0x03, 0x26, 0x8d, 0x20, 0xdf, 0x98, 0x58, 0xb2];

/// The first retired fingerprint of the official sample (0x0bc35f3509f7b7a5).
pub const RETIRED_FP_A_WIRE: [u8; 8] = [0xa5, 0xb7, 0xf7, 0x09, 0x35, 0x5f, 0xc3, 0x0b];

/// The second retired fingerprint of the official sample (0xc3b42b026ce86b21).
pub const RETIRED_FP_B_WIRE: [u8; 8] = [0x21, 0x6b, 0xe8, 0x6c, 0x02, 0x2b, 0xb4, 0xc3];

/// A fingerprint no client knows (0x1122334455667788).
pub const UNKNOWN_FP_WIRE: [u8; 8] = [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11];

/// The transport error -429 in intermediate framing (§1.7).
pub const FLOOD_REPLY: [u8; 8] = [0x04, 0x00, 0x00, 0x00, 0x53, 0xfe, 0xff, 0xff];

/// What an HTTP proxy says to bytes it cannot parse.
pub const HTTP_400_REPLY: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\r\n";

/// A TLS 1.2 record carrying a fatal `decode_error` alert: a TLS terminator's answer.
pub const TLS_ALERT_REPLY: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];

/// How the stand-in answers a first flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// A genuine resPQ: our nonce, the sample pq, the sample's three fingerprints (production last).
    Genuine,
    /// A genuine resPQ offering only the test fingerprint (as a test DC would).
    TestKey,
    /// The transport error -429: `04 00 00 00 53 fe ff ff`.
    Flood,
    /// A resPQ whose nonce is not ours (every byte inverted).
    WrongNonce,
    /// A resPQ whose msg_id is ≡ 0 mod 4 (a client's, not a server's).
    EvenMsgId,
    /// A resPQ offering the two retired sample fingerprints and an unknown one.
    UnknownFingerprint,
    /// A resPQ whose pq is the product of three primes.
    CompositePq,
    /// Reads the flight, then sends nothing and holds the connection open.
    Silent,
    /// Reads the flight, then closes (FIN) without a byte.
    CloseAtOnce,
    /// `HTTP/1.1 400 Bad Request\r\n\r\n`, then close.
    Http400,
    /// `15 03 03 00 02 02 28`, then close.
    TlsAlert,
}

impl Behaviour {
    /// Every behaviour, for tests that sweep them all.
    pub const ALL: [Behaviour; 11] = [
        Behaviour::Genuine,
        Behaviour::TestKey,
        Behaviour::Flood,
        Behaviour::WrongNonce,
        Behaviour::EvenMsgId,
        Behaviour::UnknownFingerprint,
        Behaviour::CompositePq,
        Behaviour::Silent,
        Behaviour::CloseAtOnce,
        Behaviour::Http400,
        Behaviour::TlsAlert,
    ];
}

/// Serves every connection on 127.0.0.1:<ephemeral> until aborted; reads the intermediate tag and
/// one packet, answers per behaviour (§1.8). Aborting the handle also drops every open connection.
pub async fn serve(behaviour: Behaviour) -> (SocketAddr, JoinHandle<()>) {
    let (addr, handle, _accepted) = serve_counting(behaviour).await;
    (addr, handle)
}

/// [`serve`], plus how many connections it has accepted so far (for tests that count runs).
pub async fn serve_counting(behaviour: Behaviour) -> (SocketAddr, JoinHandle<()>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind an ephemeral loopback port");
    let addr = listener.local_addr().expect("a bound listener has an address");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let handle = tokio::spawn(async move {
        // Owned here, so aborting this task aborts every connection task too.
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                incoming = listener.accept() => match incoming {
                    Ok((stream, _peer)) => {
                        counter.fetch_add(1, Ordering::SeqCst);
                        connections.spawn(answer(stream, behaviour));
                    }
                    Err(error) => {
                        eprintln!("mtproto stand-in: accept failed: {error}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    (addr, handle, accepted)
}

/// The pure responder: the bytes to send for one client first flight (tag + packet), or None for
/// Silent / CloseAtOnce.
///
/// The MTProto behaviours (all but Silent, CloseAtOnce, Http400 and TlsAlert) also answer None to
/// a flight that is not a well-formed `req_pq_multi` first flight (see [`client_nonce`]), so a
/// client bug shows up as a closed connection. The server's msg_id is taken from the clock.
pub fn respond(behaviour: Behaviour, flight: &[u8]) -> Option<Vec<u8>> {
    let fresh = server_msg_id(unix_seconds());
    let standard: &[[u8; 8]] = &[RETIRED_FP_A_WIRE, RETIRED_FP_B_WIRE, PRODUCTION_FP_WIRE];
    match behaviour {
        Behaviour::Silent | Behaviour::CloseAtOnce => None,
        Behaviour::Http400 => Some(HTTP_400_REPLY.to_vec()),
        Behaviour::TlsAlert => Some(TLS_ALERT_REPLY.to_vec()),
        Behaviour::Flood => client_nonce(flight).map(|_| FLOOD_REPLY.to_vec()),
        Behaviour::Genuine => client_nonce(flight).map(|nonce| res_pq(&nonce, fresh, GENUINE_PQ, standard)),
        Behaviour::TestKey => client_nonce(flight).map(|nonce| res_pq(&nonce, fresh, GENUINE_PQ, &[TEST_FP_WIRE])),
        Behaviour::WrongNonce => {
            client_nonce(flight).map(|nonce| res_pq(&nonce.map(|b| !b), fresh, GENUINE_PQ, standard))
        }
        Behaviour::EvenMsgId => client_nonce(flight).map(|nonce| res_pq(&nonce, fresh & !3, GENUINE_PQ, standard)),
        Behaviour::UnknownFingerprint => client_nonce(flight)
            .map(|nonce| res_pq(&nonce, fresh, GENUINE_PQ, &[RETIRED_FP_A_WIRE, RETIRED_FP_B_WIRE, UNKNOWN_FP_WIRE])),
        Behaviour::CompositePq => client_nonce(flight).map(|nonce| res_pq(&nonce, fresh, COMPOSITE_PQ, standard)),
    }
}

/// The nonce of a well-formed first flight, or None (with the reason on stderr).
///
/// Well formed: tag `ee ee ee ee` (or padded `dd dd dd dd`), a LE length equal to the rest of the
/// flight and at least 40, auth_key_id 0, a client msg_id (≡ 0 mod 4, low 32 bits non-zero, within
/// 300 s before and 30 s after our clock), message_data_length ≥ 20 and within the packet,
/// constructor `req_pq_multi` (`f1 8e 7e be`) or the legacy `req_pq` (`78 97 46 60`).
pub fn client_nonce(flight: &[u8]) -> Option<[u8; 16]> {
    match check_flight(flight, unix_seconds()) {
        Ok(nonce) => Some(nonce),
        Err(reason) => {
            eprintln!("mtproto stand-in: rejected the first flight: {reason}");
            None
        }
    }
}

/// [`client_nonce`] at `now` (unix seconds), with the reason for a rejection.
pub fn check_flight(flight: &[u8], now: u64) -> Result<[u8; 16], String> {
    if flight.len() < 48 {
        return Err(format!("{} bytes, fewer than 48", flight.len()));
    }
    let tag = &flight[0..4];
    if tag != [0xee; 4] && tag != [0xdd; 4] {
        return Err(format!("tag {tag:02x?} is not intermediate"));
    }
    let len = le32(&flight[4..8]) as usize;
    if len != flight.len() - 8 || len < 40 {
        return Err(format!("length {len} for {} packet bytes", flight.len() - 8));
    }
    if flight[8..16] != [0; 8] {
        return Err(format!("auth_key_id {:02x?} is not 0", &flight[8..16]));
    }
    let msg_id = u64::from(le32(&flight[16..20])) | (u64::from(le32(&flight[20..24])) << 32);
    if msg_id % 4 != 0 || msg_id & 0xffff_ffff == 0 {
        return Err(format!("msg_id {msg_id:#x} is not a client msg_id"));
    }
    let seconds = msg_id >> 32;
    if seconds + 300 < now || seconds > now + 30 {
        return Err(format!("msg_id {msg_id:#x} is {seconds} s, our clock says {now} s"));
    }
    let data_len = le32(&flight[24..28]) as usize;
    if data_len < 20 || data_len > len - 20 {
        return Err(format!("message_data_length {data_len} in a {len}-byte packet"));
    }
    let constructor = &flight[28..32];
    if constructor != [0xf1, 0x8e, 0x7e, 0xbe] && constructor != [0x78, 0x97, 0x46, 0x60] {
        return Err(format!("constructor {constructor:02x?} is neither req_pq_multi nor req_pq"));
    }
    let mut nonce = [0u8; 16];
    nonce.copy_from_slice(&flight[32..48]);
    Ok(nonce)
}

/// A little-endian u32 from exactly four bytes.
fn le32(bytes: &[u8]) -> u32 {
    u32::from(bytes[0]) | u32::from(bytes[1]) << 8 | u32::from(bytes[2]) << 16 | u32::from(bytes[3]) << 24
}

/// Appends `value` little-endian, byte by byte.
fn push_le(out: &mut Vec<u8>, value: u64, width: usize) {
    for i in 0..width {
        out.push((value >> (8 * i)) as u8);
    }
}

/// A server msg_id for `now` (unix seconds): `((now << 32) & !3) | 1`.
pub fn server_msg_id(now: u64) -> u64 {
    ((now << 32) & !3) | 1
}

/// The clock, in whole unix seconds.
fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Sixteen fresh random bytes for the server_nonce.
fn random16() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source works");
    bytes
}

/// A framed resPQ (4-byte LE length, then the packet) with an honest message_data_length.
pub fn res_pq(nonce: &[u8; 16], msg_id: u64, pq: u64, fingerprints: &[[u8; 8]]) -> Vec<u8> {
    let mut body = vec![0x63, 0x24, 0x16, 0x05]; // resPQ#05162463
    body.extend_from_slice(nonce);
    body.extend_from_slice(&random16()); // server_nonce
    body.push(8); // pq: a TL string of 8 bytes, big-endian, then 3 bytes of padding
    for i in (0..8).rev() {
        body.push((pq >> (8 * i)) as u8);
    }
    body.extend_from_slice(&[0, 0, 0]);
    body.extend_from_slice(&[0x15, 0xc4, 0xb5, 0x1c]); // vector#1cb5c415
    push_le(&mut body, fingerprints.len() as u64, 4);
    for fingerprint in fingerprints {
        body.extend_from_slice(fingerprint);
    }
    let mut packet = vec![0; 8]; // auth_key_id
    push_le(&mut packet, msg_id, 8);
    push_le(&mut packet, body.len() as u64, 4);
    packet.extend_from_slice(&body);
    let mut framed = Vec::with_capacity(4 + packet.len());
    push_le(&mut framed, packet.len() as u64, 4);
    framed.extend_from_slice(&packet);
    framed
}

/// One connection: read the flight, answer, close (or hold, for Silent).
async fn answer(mut stream: TcpStream, behaviour: Behaviour) {
    let flight = match timeout(READ_TIMEOUT, read_flight(&mut stream)).await {
        Ok(Ok(flight)) => flight,
        Ok(Err(reason)) => {
            eprintln!("mtproto stand-in: {reason}");
            return;
        }
        Err(_) => return,
    };
    match respond(behaviour, &flight) {
        Some(reply) => {
            // A client that hung up early makes these fail; there is nobody left to tell.
            let _ = timeout(READ_TIMEOUT, stream.write_all(&reply)).await;
            let _ = timeout(READ_TIMEOUT, stream.shutdown()).await;
        }
        None if behaviour == Behaviour::Silent => {
            // Hold the connection until the client gives up (EOF) or the read times out.
            let mut sink = [0u8; 256];
            while let Ok(Ok(n)) = timeout(READ_TIMEOUT, stream.read(&mut sink)).await {
                if n == 0 {
                    break;
                }
            }
        }
        None => {} // dropping the stream closes it with a FIN: nothing of the client's is left unread
    }
}

/// Reads the 4-byte tag and one intermediate packet; the whole flight, tag included.
async fn read_flight(stream: &mut TcpStream) -> Result<Vec<u8>, String> {
    let mut head = [0u8; 8];
    stream.read_exact(&mut head).await.map_err(|e| format!("reading the tag and length: {e}"))?;
    if head[0..4] != [0xee; 4] && head[0..4] != [0xdd; 4] {
        return Err(format!("unsupported framing: first bytes {:02x?}", &head[0..4]));
    }
    let len = le32(&head[4..8]) as usize;
    if len > 4096 {
        return Err(format!("a first packet of {len} bytes is not a handshake"));
    }
    let mut flight = head.to_vec();
    flight.resize(8 + len, 0);
    stream.read_exact(&mut flight[8..]).await.map_err(|e| format!("reading a {len}-byte packet: {e}"))?;
    Ok(flight)
}
