//! Source `mrt`: polls an MRT archive in the RIS layout
//! (`{mrt_url}/YYYY.MM/updates.YYYYMMDD.HHMM.gz` every 5 minutes, with a
//! `bview.YYYYMMDD.HHMM.gz` RIB dump every 8 hours).
//!
//! Start: the newest RIB dump seeds the engine; then every update file after
//! it is applied in order, and new ones as they appear. Files stream from
//! HTTP through the decompressor into the MRT reader on a blocking thread,
//! and only routes related to the watched prefixes reach the engine, so a
//! full-table dump costs time, not memory. Every applied file counts as life
//! for the staleness check: set `stale_after` above the archive's publishing
//! delay (RIS publishes a file a few minutes after it closes).

use std::io::Read;
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

use super::config::Bgp;
use super::event::{FeedEvent, FeedSender};
use super::mrt::{Element, Reader, decompress};
use crate::document::redacted;
use crate::prefix::Prefix;
use crate::time::{unix, utc_parts};

/// Update files cover this long.
const UPDATE_PERIOD: i64 = 300;
/// RIB dumps are taken this often.
const DUMP_PERIOD: i64 = 8 * 3600;
/// How often to look for a new file.
const POLL: Duration = Duration::from_secs(60);
/// A file still missing this long after its slot closed is skipped.
const GIVE_UP: i64 = 3600;

/// Limits on downloads: an archive server that stalls, trickles or never
/// stops sending cannot hold the feed or the memory for ever.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connecting to the archive.
    pub connect: Duration,
    /// Silence between two reads of a body.
    pub read: Duration,
    /// A whole update file, headers to last byte.
    pub update_total: Duration,
    /// Most bytes (compressed) of an update file.
    pub update_bytes: u64,
    /// A whole RIB dump.
    pub dump_total: Duration,
    /// Most bytes (compressed) of a RIB dump.
    pub dump_bytes: u64,
}

impl Default for Limits {
    /// An update file holds five minutes of changes (a few MiB); a
    /// full-table RIB dump a few hundred MiB.
    fn default() -> Limits {
        Limits {
            connect: Duration::from_secs(15),
            read: Duration::from_secs(60),
            update_total: Duration::from_secs(300),
            update_bytes: 512 << 20,
            dump_total: Duration::from_secs(3600),
            dump_bytes: 8 << 30,
        }
    }
}

/// The archive client: bounded connect and per-read silence.
pub fn client(limits: &Limits) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder().connect_timeout(limits.connect).read_timeout(limits.read).build()
}

/// The archive URL of the file of `kind` ("updates" or "bview") at `t`.
pub fn file_url(base: &str, kind: &str, t: i64) -> String {
    let (y, mo, d, h, mi) = utc_parts(t);
    format!("{base}/{y:04}.{mo:02}/{kind}.{y:04}{mo:02}{d:02}.{h:02}{mi:02}.gz")
}

/// What fetching one file gave.
enum Fetched {
    /// Applied; this many route elements.
    Applied(u64),
    /// The archive does not have it (yet).
    Missing,
}

/// The time the archive is read against (Unix seconds).
pub type Clock = std::sync::Arc<dyn Fn() -> i64 + Send + Sync>;

/// Runs until the engine is gone.
pub async fn run(client: reqwest::Client, config: Bgp, watched: Vec<Prefix>, tx: FeedSender) {
    let clock: Clock = std::sync::Arc::new(|| unix(SystemTime::now()));
    run_with_clock(client, config, watched, tx, clock, Limits::default()).await;
}

/// [`run`] with an explicit clock (tests replay an archive's past) and limits.
pub async fn run_with_clock(
    client: reqwest::Client,
    config: Bgp,
    watched: Vec<Prefix>,
    tx: FeedSender,
    clock: Clock,
    limits: Limits,
) {
    loop {
        let Some(mut cursor) = seed(&client, &config, &watched, &tx, clock(), &limits).await else {
            if tx.send(FeedEvent::Healthy(false)).await.is_err() {
                return;
            }
            tokio::time::sleep(POLL * 5).await;
            continue;
        };
        if tx.send(FeedEvent::Healthy(true)).await.is_err() {
            return;
        }
        loop {
            let now = clock();
            let next = cursor + UPDATE_PERIOD;
            if next + UPDATE_PERIOD > now {
                tokio::time::sleep(POLL).await;
                continue;
            }
            let url = file_url(&config.mrt_url, "updates", next);
            let shown = redacted(&url);
            match fetch(&client, &url, &watched, &tx, (limits.update_total, limits.update_bytes)).await {
                Ok(Fetched::Applied(elements)) => {
                    info!(url = %shown, elements, "MRT updates applied");
                    cursor = next;
                }
                Ok(Fetched::Missing) if now - next > GIVE_UP => {
                    warn!(url = %shown, "MRT update file never appeared; skipped");
                    cursor = next;
                }
                Ok(Fetched::Missing) => tokio::time::sleep(POLL).await,
                Err(why) if tx.is_closed() => {
                    let _ = why;
                    return;
                }
                Err(why) => {
                    warn!(url = %shown, "MRT update file failed: {why}");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }
}

/// Seeds from the newest RIB dump; returns its time.
async fn seed(
    client: &reqwest::Client,
    config: &Bgp,
    watched: &[Prefix],
    tx: &FeedSender,
    now: i64,
    limits: &Limits,
) -> Option<i64> {
    let newest = now - now.rem_euclid(DUMP_PERIOD);
    for t in (0..4).map(|k| newest - k * DUMP_PERIOD) {
        let url = file_url(&config.mrt_url, "bview", t);
        let shown = redacted(&url);
        if tx.send(FeedEvent::Reset).await.is_err() {
            return None;
        }
        match fetch(client, &url, watched, tx, (limits.dump_total, limits.dump_bytes)).await {
            Ok(Fetched::Applied(elements)) => {
                info!(url = %shown, elements, "MRT RIB dump loaded");
                return Some(t);
            }
            Ok(Fetched::Missing) => continue,
            Err(why) => warn!(url = %shown, "MRT RIB dump failed: {why}"),
        }
    }
    warn!(url = %redacted(&config.mrt_url), "no MRT RIB dump found in the last 32 hours");
    None
}

/// Why one RIB dump could not be used (the next older one is tried).
#[derive(Debug, thiserror::Error)]
enum ArchiveError {
    /// The request or the body's transfer failed (the innermost cause).
    #[error("{0}")]
    Network(String),
    /// The archive answered with an error status.
    #[error("HTTP {0}")]
    Status(reqwest::StatusCode),
    /// The body outgrew the configured cap.
    #[error("larger than {0} MiB; not read further")]
    TooLarge(u64),
    /// The bytes are not a (compressed) MRT file, or the transfer broke off.
    #[error("{0}")]
    Read(#[from] std::io::Error),
    /// The MRT reader refused a record.
    #[error("{0}")]
    Mrt(#[from] super::mrt::MrtError),
    /// The engine went away while the dump was applied.
    #[error("the engine stopped")]
    EngineStopped,
    /// The parser thread died.
    #[error("the parser thread failed: {0}")]
    Parser(#[from] tokio::task::JoinError),
}

/// A piece of the body, or the reason the download failed.
type Chunk = Result<Vec<u8>, ArchiveError>;

/// Bytes from the network, as a blocking `Read` for the MRT parser thread.
/// The async side awaits room in the channel, so a slow parser slows the
/// download, never the runtime.
struct ChunkReader {
    chunks: tokio::sync::mpsc::Receiver<Chunk>,
    current: Vec<u8>,
    at: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            match self.chunks.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.current = chunk;
                    self.at = 0;
                }
                Some(Err(why)) => return Err(std::io::Error::other(why)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Downloads `url` and applies the routes it holds for `watched`.
async fn fetch(
    client: &reqwest::Client,
    url: &str,
    watched: &[Prefix],
    tx: &FeedSender,
    (total, max_bytes): (Duration, u64),
) -> Result<Fetched, ArchiveError> {
    let tell = |e: reqwest::Error| ArchiveError::Network(crate::error_text::root_cause(&e));
    let mut response = client.get(url).timeout(total).send().await.map_err(tell)?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(Fetched::Missing);
    }
    if !response.status().is_success() {
        return Err(ArchiveError::Status(response.status()));
    }
    let (chunk_tx, chunk_rx) = tokio::sync::mpsc::channel::<Chunk>(64);
    let watched = watched.to_vec();
    let events = tx.clone();
    let parser = tokio::task::spawn_blocking(move || -> Result<u64, ArchiveError> {
        let input = decompress(ChunkReader { chunks: chunk_rx, current: Vec::new(), at: 0 })?;
        let mut reader = Reader::new(input);
        let wanted = |p: Prefix| watched.iter().any(|w| w.overlaps(&p));
        let mut closed = false;
        reader.for_each(&mut |element: Element| {
            // Routes outside the watched space never cross the channel.
            if element.prefix().is_none_or(wanted) {
                closed |= events.blocking_send(element.into()).is_err();
            }
        })?;
        for _ in 0..reader.stats.malformed {
            let _ = events.blocking_send(FeedEvent::Malformed);
        }
        let _ = events.blocking_send(FeedEvent::Alive);
        if closed { Err(ArchiveError::EngineStopped) } else { Ok(reader.stats.elements) }
    });
    let mut received: u64 = 0;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                received += chunk.len() as u64;
                if received > max_bytes {
                    let _ = chunk_tx.send(Err(ArchiveError::TooLarge(max_bytes >> 20))).await;
                    break;
                }
                if chunk_tx.send(Ok(chunk.to_vec())).await.is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = chunk_tx.send(Err(tell(e))).await;
                break;
            }
        }
    }
    drop(chunk_tx);
    let elements = parser.await??;
    Ok(Fetched::Applied(elements))
}
