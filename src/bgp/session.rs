//! Source `session`: chatpulse as a receive-only BGP-4 speaker (RFC 4271)
//! that operators peer with their own routers or a route server.
//!
//! Only the configured peer addresses are accepted (anyone else gets a Cease
//! "connection rejected" NOTIFICATION and is closed); a peer with a `port` is
//! also dialled. Per connection the state machine is OpenSent → OpenConfirm
//! → Established: our OPEN offers 4-byte AS, IPv4/IPv6 unicast and extended
//! messages, and tolerates unknown capabilities; KEEPALIVEs go out at a third
//! of the negotiated hold time and a silent peer is dropped when it expires.
//! UPDATEs feed the engine; malformed input gets the NOTIFICATION RFC 4271
//! assigns and the session closes, except where RFC 7606 prescribes
//! treat-as-withdraw. chatpulse never sends an UPDATE.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, timeout_at};
use tracing::{debug, info, warn};

use super::config::{BgpPeer, BgpSession};
use super::event::{FeedEvent, FeedSender, PeerKey};
use super::wire::{self, Codec, Notification, Open, Update, code, kind};

/// The hold time we propose (seconds).
pub const HOLD_TIME: u16 = 90;
/// How long a new connection may take to get through OPEN/KEEPALIVE.
const OPEN_DEADLINE: Duration = Duration::from_secs(30);
/// First and longest pause after a failed accept (e.g. out of descriptors).
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(50);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Time between dial attempts to a peer with a `port`.
const CONNECT_RETRY: Duration = Duration::from_secs(5);

/// Sessions in OpenConfirm or Established, per peer (collision detection),
/// and how many are Established (feed health).
#[derive(Default)]
struct Registry {
    active: HashMap<IpAddr, bool>,
}

impl Registry {
    fn established(&self) -> usize {
        self.active.values().filter(|e| **e).count()
    }
}

type Shared = Arc<Mutex<Registry>>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Registry> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the listener (and dialers) until the engine is gone. Every session
/// task belongs to this future: aborting it (a reload, a stop) closes them.
pub async fn run(config: BgpSession, tx: FeedSender) {
    let shared: Shared = Arc::default();
    let mut sessions = tokio::task::JoinSet::new();
    for peer in config.peers.iter().filter(|p| p.port.is_some()) {
        sessions.spawn(dial(config.clone(), peer.clone(), shared.clone(), tx.clone()));
    }
    let listener = loop {
        match TcpListener::bind(config.listen).await {
            Ok(l) => break l,
            Err(e) => {
                warn!("BGP session: cannot listen on {} ({e}); retrying in 10s", config.listen);
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        }
    };
    info!("BGP session: listening on {} for {} peers", config.listen, config.peers.len());
    let mut accept_backoff = ACCEPT_BACKOFF_MIN;
    let mut last_accept_warning: Option<Instant> = None;
    loop {
        // Reap finished sessions so the set does not grow.
        while sessions.try_join_next().is_some() {}
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => {
                accept_backoff = ACCEPT_BACKOFF_MIN;
                accepted
            }
            Err(e) => {
                // Out of file descriptors (EMFILE) or similar: retrying at
                // once would spin a core. Back off, and say so once a minute.
                if last_accept_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    warn!("BGP session: cannot accept a connection on {} ({e}); backing off", config.listen);
                    last_accept_warning = Some(Instant::now());
                }
                tokio::time::sleep(accept_backoff).await;
                accept_backoff = (accept_backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        if tx.is_closed() {
            return;
        }
        match config.peers.iter().find(|p| p.address == from.ip()) {
            Some(peer) => {
                sessions.spawn(serve(stream, config.clone(), peer.clone(), shared.clone(), tx.clone()));
            }
            None => {
                warn!("BGP session: refused a connection from {from}: not a configured peer");
                sessions.spawn(async move {
                    let mut stream = stream;
                    let reject = Notification::new(code::CEASE, code::CEASE_REJECTED, &[]);
                    let _ = stream.write_all(&reject.encode()).await;
                    let _ = stream.shutdown().await;
                });
            }
        }
    }
}

async fn dial(config: BgpSession, peer: BgpPeer, shared: Shared, tx: FeedSender) {
    let Some(port) = peer.port else { return };
    let target = SocketAddr::new(peer.address, port);
    while !tx.is_closed() {
        let busy = lock(&shared).active.contains_key(&peer.address);
        if !busy && let Ok(Ok(stream)) = tokio::time::timeout(CONNECT_RETRY, TcpStream::connect(target)).await {
            serve(stream, config.clone(), peer.clone(), shared.clone(), tx.clone()).await;
        }
        tokio::time::sleep(CONNECT_RETRY).await;
    }
}

/// Why a session ended.
#[derive(Debug)]
enum End {
    /// We sent this NOTIFICATION.
    Sent(Notification),
    /// The peer sent this NOTIFICATION.
    Received(Notification),
    /// The connection failed or closed.
    Closed(String),
    /// The engine is gone.
    Shutdown,
}

/// Frames and reads messages from one connection. The write half is shared
/// with the keepalive task, so reads are never cancelled mid-message.
struct Conn {
    reader: OwnedReadHalf,
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    max_len: usize,
    buf: Vec<u8>,
}

impl Conn {
    fn new(stream: TcpStream) -> Conn {
        let _ = stream.set_nodelay(true);
        let (reader, writer) = stream.into_split();
        Conn {
            reader,
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            max_len: wire::MAX_LEN,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Reads one message (type, body). `deadline` (the hold timer, or the
    /// OPEN deadline) covers the whole message, not just its header: a peer
    /// that stalls mid-message gets "hold timer expired" like a silent one.
    /// Past it the session is over, so a read cut short there loses nothing.
    /// With no hold timer a message must still arrive within [`HOLD_TIME`]
    /// once its header has.
    async fn read(&mut self, deadline: Option<Instant>) -> Result<(u8, &[u8]), End> {
        let expired = || End::Sent(Notification::new(code::HOLD_TIMER, 0, &[]));
        let max_len = self.max_len;
        let (reader, buf) = (&mut self.reader, &mut self.buf);
        let whole = async {
            let mut header = [0u8; wire::HEADER_LEN];
            reader.read_exact(&mut header).await.map_err(|e| End::Closed(format!("read failed: {e}")))?;
            let (len, kind) = wire::parse_header(&header, max_len).map_err(End::Sent)?;
            buf.resize(len - wire::HEADER_LEN, 0);
            let body = reader.read_exact(buf);
            let body_deadline = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(HOLD_TIME.into()));
            timeout_at(body_deadline, body)
                .await
                .map_err(|_| expired())?
                .map_err(|e| End::Closed(format!("read failed: {e}")))?;
            Ok(kind)
        };
        let kind = match deadline {
            Some(d) => timeout_at(d, whole).await.map_err(|_| expired())??,
            None => whole.await?,
        };
        Ok((kind, &self.buf))
    }

    async fn send(&self, bytes: &[u8]) -> Result<(), End> {
        self.writer.lock().await.write_all(bytes).await.map_err(|e| End::Closed(format!("write failed: {e}")))
    }
}

/// What one connection got to: registered against collisions, established.
#[derive(Default)]
struct Progress {
    registered: bool,
    established: bool,
}

/// Checks the peer's OPEN against what we expect (RFC 4271 6.2).
fn check_open(open: &Open, peer: &BgpPeer, config: &BgpSession) -> Result<(), Notification> {
    if open.version != 4 {
        return Err(Notification::new(code::OPEN, code::OPEN_VERSION, &[0, 4]));
    }
    if open.asn != peer.remote_as {
        return Err(Notification::new(code::OPEN, code::OPEN_PEER_AS, &[]));
    }
    if open.hold_time == 1 || open.hold_time == 2 {
        return Err(Notification::new(code::OPEN, code::OPEN_HOLD_TIME, &[]));
    }
    if open.router_id.is_unspecified() || open.router_id == config.router_id {
        return Err(Notification::new(code::OPEN, code::OPEN_BGP_ID, &[]));
    }
    Ok(())
}

async fn serve(stream: TcpStream, config: BgpSession, peer: BgpPeer, shared: Shared, tx: FeedSender) {
    let mut conn = Conn::new(stream);
    let mut progress = Progress::default();
    let Err(end) = session(&mut conn, &config, &peer, &shared, &tx, &mut progress).await;
    match &end {
        End::Sent(n) => {
            let _ = conn.send(&n.encode()).await;
            warn!(peer = %peer.address, "BGP session closed: sent NOTIFICATION {n}");
        }
        End::Received(n) => warn!(peer = %peer.address, "BGP session closed by the peer: {n}"),
        End::Closed(why) => warn!(peer = %peer.address, "BGP session closed: {why}"),
        End::Shutdown => {}
    }
    let _ = conn.writer.lock().await.shutdown().await;
    let healthy = {
        let mut registry = lock(&shared);
        if progress.registered {
            registry.active.remove(&peer.address);
        }
        registry.established() > 0
    };
    if progress.established {
        let _ = tx.send(FeedEvent::PeerDown(PeerKey { collector: String::new(), ip: peer.address })).await;
        let _ = tx.send(FeedEvent::Healthy(healthy)).await;
    }
}

async fn session(
    conn: &mut Conn,
    config: &BgpSession,
    peer: &BgpPeer,
    shared: &Shared,
    tx: &FeedSender,
    progress: &mut Progress,
) -> Result<std::convert::Infallible, End> {
    let ours = Open::ours(config.local_as, HOLD_TIME, config.router_id);
    conn.send(&ours.encode()).await?;
    let open_deadline = Some(Instant::now() + OPEN_DEADLINE);

    // OpenSent: the peer's OPEN.
    let open = match conn.read(open_deadline).await? {
        (kind::OPEN, body) => Open::parse(body).map_err(End::Sent)?,
        (kind::NOTIFICATION, body) => return Err(End::Received(notification(body))),
        _ => return Err(End::Sent(Notification::new(code::FSM, code::FSM_OPEN_SENT, &[]))),
    };
    check_open(&open, peer, config).map_err(End::Sent)?;
    {
        let mut registry = lock(shared);
        if registry.active.contains_key(&peer.address) {
            return Err(End::Sent(Notification::new(code::CEASE, code::CEASE_COLLISION, &[])));
        }
        registry.active.insert(peer.address, false);
        progress.registered = true;
    }
    conn.send(&wire::keepalive()).await?;

    // OpenConfirm: the peer's KEEPALIVE.
    match conn.read(open_deadline).await? {
        (kind::KEEPALIVE, _) => {}
        (kind::NOTIFICATION, body) => return Err(End::Received(notification(body))),
        _ => return Err(End::Sent(Notification::new(code::FSM, code::FSM_OPEN_CONFIRM, &[]))),
    }
    let hold = Duration::from_secs(u64::from(open.hold_time.min(HOLD_TIME)));
    let codec = Codec { four_byte_as: open.four_byte_as, add_path: false };
    if open.extended_message {
        conn.max_len = wire::MAX_EXTENDED_LEN;
    }
    let key = PeerKey { collector: String::new(), ip: peer.address };
    let healthy = {
        let mut registry = lock(shared);
        registry.active.insert(peer.address, true);
        registry.established() > 0
    };
    progress.established = true;
    info!(peer = %peer.address, asn = open.asn, hold_s = hold.as_secs(), "BGP session established");
    send(tx, FeedEvent::PeerUp(key.clone())).await?;
    send(tx, FeedEvent::Healthy(healthy)).await?;

    // Established. Keepalives go out from their own task.
    let _keepalives = (!hold.is_zero()).then(|| KeepaliveTask::start(conn.writer.clone(), hold / 3));
    let mut update = Update::default();
    loop {
        let hold_deadline = (!hold.is_zero()).then(|| Instant::now() + hold);
        let (kind, body) = conn.read(hold_deadline).await?;
        match kind {
            kind::UPDATE => {
                wire::parse_update(body, codec, &mut update).map_err(End::Sent)?;
                if let Some(error) = &update.treated_as_withdraw {
                    debug!(peer = %peer.address, "UPDATE treated as withdraw (RFC 7606): {error}");
                }
                for (prefix, path_id) in update.withdrawn.drain(..) {
                    send(tx, FeedEvent::Withdraw { peer: key.clone(), prefix, path_id }).await?;
                }
                for (prefix, path_id) in update.announced.drain(..) {
                    send(tx, FeedEvent::Announce { peer: key.clone(), prefix, path_id, origin: update.origin }).await?;
                }
            }
            kind::KEEPALIVE | kind::ROUTE_REFRESH => send(tx, FeedEvent::Alive).await?,
            kind::NOTIFICATION => return Err(End::Received(notification(body))),
            _ => return Err(End::Sent(Notification::new(code::FSM, code::FSM_ESTABLISHED, &[]))),
        }
    }
}

/// Sends KEEPALIVEs until dropped.
struct KeepaliveTask(tokio::task::JoinHandle<()>);

impl KeepaliveTask {
    fn start(writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>, every: Duration) -> KeepaliveTask {
        KeepaliveTask(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(Instant::now() + every, every);
            loop {
                tick.tick().await;
                if writer.lock().await.write_all(&wire::keepalive()).await.is_err() {
                    return;
                }
            }
        }))
    }
}

impl Drop for KeepaliveTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn notification(body: &[u8]) -> Notification {
    Notification::parse(body).unwrap_or_else(|| Notification::new(0, 0, body))
}

async fn send(tx: &FeedSender, event: FeedEvent) -> Result<(), End> {
    tx.send(event).await.map_err(|_| End::Shutdown)
}
