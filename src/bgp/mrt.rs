//! MRT archive files (RFC 6396) as RIPE RIS and RouteViews publish them:
//! RIB dumps (TABLE_DUMP, TABLE_DUMP_V2) and update files (BGP4MP, BGP4MP_ET),
//! gzip- or bzip2-compressed or plain.
//!
//! [`Reader`] streams records and hands each route element to a callback
//! without allocating per element, which is what lets `replay` and the `mrt`
//! source read millions of elements per second. A BGP message that does not
//! parse is counted and skipped, as bgpdump does; a file that ends inside a
//! record is an error.

use std::io::{self, BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::event::{FeedEvent, PeerKey};
use super::wire::{self, Codec, Origin, PathId, Update};
use crate::prefix::Prefix;

/// The largest record accepted. Real records are at most a few hundred KiB
/// (a RIB entry with every peer of a collector); a larger length means the
/// input is not MRT, and trusting it would allocate gigabytes.
const MAX_RECORD: usize = 16 << 20;

/// Who sent a route: the peer's address and AS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Peer {
    /// Peer address.
    pub ip: IpAddr,
    /// Peer AS.
    pub asn: u32,
}

/// One route event from a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    /// `peer` has a route to `prefix` originated by `origin`.
    Announce {
        /// Record time (Unix seconds).
        time: u32,
        /// The peer.
        peer: Peer,
        /// The prefix.
        prefix: Prefix,
        /// The ADD-PATH path id (0 without ADD-PATH).
        path_id: PathId,
        /// The origin AS.
        origin: Origin,
    },
    /// `peer` no longer has a route to `prefix` (that path).
    Withdraw {
        /// Record time.
        time: u32,
        /// The peer.
        peer: Peer,
        /// The prefix.
        prefix: Prefix,
        /// The ADD-PATH path id (0 without ADD-PATH).
        path_id: PathId,
    },
    /// `peer`'s session changed state ([`ESTABLISHED`] = up).
    State {
        /// Record time.
        time: u32,
        /// The peer.
        peer: Peer,
        /// New FSM state.
        new: u16,
    },
}

/// The BGP FSM state a `BGP4MP_STATE_CHANGE` record names when a session
/// comes up (RFC 6396 §4.4.1, RFC 4271 §8.2.2).
pub const ESTABLISHED: u16 = 6;

impl Element {
    /// The record's time (Unix seconds).
    pub fn time(&self) -> u32 {
        match *self {
            Element::Announce { time, .. } | Element::Withdraw { time, .. } | Element::State { time, .. } => time,
        }
    }

    /// The prefix a route element is about (`None` for a state change).
    pub fn prefix(&self) -> Option<Prefix> {
        match *self {
            Element::Announce { prefix, .. } | Element::Withdraw { prefix, .. } => Some(prefix),
            Element::State { .. } => None,
        }
    }
}

/// What the engine hears from a file: the element as a feed event (files
/// name no collector; a session leaving Established takes its routes).
impl From<Element> for FeedEvent {
    fn from(element: Element) -> FeedEvent {
        let key = |peer: Peer| PeerKey { collector: String::new(), ip: peer.ip };
        match element {
            Element::Announce { peer, prefix, path_id, origin, .. } => {
                FeedEvent::Announce { peer: key(peer), prefix, path_id, origin }
            }
            Element::Withdraw { peer, prefix, path_id, .. } => FeedEvent::Withdraw { peer: key(peer), prefix, path_id },
            Element::State { peer, new: ESTABLISHED, .. } => FeedEvent::PeerUp(key(peer)),
            Element::State { peer, .. } => FeedEvent::PeerDown(key(peer)),
        }
    }
}

/// What went wrong reading a file.
#[derive(Debug, thiserror::Error)]
pub enum MrtError {
    /// An I/O or decompression error.
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
    /// The file ends inside a record or a record is inconsistent.
    #[error("not a valid MRT file: {0} at byte {1} of the uncompressed data")]
    Format(&'static str, u64),
}

/// Counts of what was read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// MRT records.
    pub records: u64,
    /// Route elements (announcements, withdrawals, RIB entries).
    pub elements: u64,
    /// BGP messages or RIB entries that did not parse and were skipped.
    pub malformed: u64,
    /// RIB dump records (TABLE_DUMP, TABLE_DUMP_V2): the file seeds who carries what.
    pub rib_records: u64,
    /// The first and last record times (Unix seconds), when any was read.
    pub span: Option<(u32, u32)>,
}

/// Opens `input`, recognising gzip and bzip2 by their magic bytes.
pub fn decompress<'a, R: Read + 'a>(input: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut buffered = BufReader::with_capacity(256 * 1024, input);
    let magic = buffered.fill_buf()?;
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(256 * 1024, flate2::read::MultiGzDecoder::new(buffered)))
    } else if magic.starts_with(b"BZh") {
        Box::new(BufReader::with_capacity(256 * 1024, bzip2::read::MultiBzDecoder::new(buffered)))
    } else {
        Box::new(buffered)
    })
}

/// Streams the records of one (decompressed) MRT file.
pub struct Reader<R: Read> {
    input: R,
    offset: u64,
    record: Vec<u8>,
    peers: Vec<Peer>,
    update: Update,
    /// What has been read so far.
    pub stats: Stats,
}

fn ip4(b: &[u8]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

fn ip6(b: &[u8]) -> IpAddr {
    let mut raw = [0u8; 16];
    raw.copy_from_slice(&b[..16]);
    IpAddr::V6(Ipv6Addr::from(raw))
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl<R: Read> Reader<R> {
    /// A reader over decompressed MRT data.
    pub fn new(input: R) -> Reader<R> {
        Reader {
            input,
            offset: 0,
            record: Vec::with_capacity(64 * 1024),
            peers: Vec::new(),
            update: Update::default(),
            stats: Stats::default(),
        }
    }

    /// Reads one record and passes its elements to `sink`. Returns false at
    /// the clean end of the file.
    pub fn next_record(&mut self, sink: &mut dyn FnMut(Element)) -> Result<bool, MrtError> {
        let mut header = [0u8; 12];
        match read_full(&mut self.input, &mut header)? {
            0 => return Ok(false),
            12 => {}
            _ => return Err(MrtError::Format("the file ends inside a record header", self.offset)),
        }
        let time = be32(&header[0..4]);
        let (kind, subtype, len) = (be16(&header[4..6]), be16(&header[6..8]), be32(&header[8..12]) as usize);
        if len > MAX_RECORD {
            return Err(MrtError::Format("a record claims more than 16 MiB (is this an MRT file?)", self.offset));
        }
        self.record.resize(len, 0);
        if read_full(&mut self.input, &mut self.record)? != len {
            return Err(MrtError::Format("the file ends inside a record", self.offset));
        }
        self.offset += 12 + len as u64;
        self.stats.records += 1;
        if matches!(kind, 12 | 13) {
            self.stats.rib_records += 1;
        }
        self.stats.span = Some(self.stats.span.map_or((time, time), |(first, last)| (first.min(time), last.max(time))));
        let body = std::mem::take(&mut self.record);
        let result = match kind {
            12 => self.table_dump(time, subtype, &body, sink),
            13 => self.table_dump_v2(subtype, time, &body, sink),
            16 => self.bgp4mp(time, subtype, &body, sink),
            17 => match body.get(4..) {
                Some(rest) => self.bgp4mp(time, subtype, rest, sink),
                None => Err("BGP4MP_ET record too short"),
            },
            _ => Ok(()),
        };
        self.record = body;
        if result.is_err() {
            self.stats.malformed += 1;
        }
        Ok(true)
    }

    /// Reads every record.
    pub fn for_each(&mut self, sink: &mut dyn FnMut(Element)) -> Result<Stats, MrtError> {
        while self.next_record(sink)? {}
        Ok(self.stats)
    }

    /// TABLE_DUMP (v1): one RIB entry per record, 2-byte ASes.
    fn table_dump(
        &mut self,
        time: u32,
        subtype: u16,
        b: &[u8],
        sink: &mut dyn FnMut(Element),
    ) -> Result<(), &'static str> {
        let v6 = match subtype {
            1 => false,
            2 => true,
            _ => return Ok(()),
        };
        let alen = if v6 { 16 } else { 4 };
        let need = 4 + alen + 2 + 4 + alen + 4;
        if b.len() < need {
            return Err("TABLE_DUMP record too short");
        }
        let prefix_bytes = &b[4..4 + alen];
        let len = b[4 + alen];
        let prefix =
            Prefix::from_nlri(v6, len, &prefix_bytes[..usize::from(len).div_ceil(8).min(alen)]).ok_or("bad prefix")?;
        let p = 4 + alen + 2 + 4;
        let ip = if v6 { ip6(&b[p..]) } else { ip4(&b[p..]) };
        let asn = u32::from(be16(&b[p + alen..]));
        let attr_len = usize::from(be16(&b[p + alen + 2..]));
        let attrs = b.get(p + alen + 4..p + alen + 4 + attr_len).ok_or("attributes overrun the record")?;
        let origin = wire::rib_entry_origin(attrs, Codec::default()).ok_or("malformed attributes")?;
        self.stats.elements += 1;
        sink(Element::Announce { time, peer: Peer { ip, asn }, prefix, path_id: 0, origin });
        Ok(())
    }

    /// TABLE_DUMP_V2: a peer index table, then one record per prefix.
    fn table_dump_v2(
        &mut self,
        subtype: u16,
        time: u32,
        b: &[u8],
        sink: &mut dyn FnMut(Element),
    ) -> Result<(), &'static str> {
        match subtype {
            1 => self.peer_index_table(b),
            2 | 4 | 8 | 10 => {
                let v6 = matches!(subtype, 4 | 10);
                let add_path = subtype >= 8;
                let len = *b.get(4).ok_or("RIB record too short")?;
                let nbytes = usize::from(len).div_ceil(8);
                let prefix = Prefix::from_nlri(v6, len, b.get(5..5 + nbytes).ok_or("RIB record too short")?)
                    .ok_or("bad prefix")?;
                let mut rest = b.get(5 + nbytes + 2..).ok_or("RIB record too short")?;
                let count = be16(&b[5 + nbytes..]);
                for _ in 0..count {
                    let head = if add_path { 10 } else { 6 };
                    if rest.len() < head + 2 {
                        return Err("RIB entry too short");
                    }
                    let peer = *self.peers.get(usize::from(be16(rest))).ok_or("RIB entry names an unknown peer")?;
                    // peer index (2), originated time (4), then with ADD-PATH the path id (4).
                    let path_id = if add_path { u32::from_be_bytes([rest[6], rest[7], rest[8], rest[9]]) } else { 0 };
                    let attr_len = usize::from(be16(&rest[head..]));
                    let attrs = rest.get(head + 2..head + 2 + attr_len).ok_or("RIB entry overruns the record")?;
                    rest = &rest[head + 2 + attr_len..];
                    match wire::rib_entry_origin(attrs, Codec { four_byte_as: true, add_path: false }) {
                        Some(origin) => {
                            self.stats.elements += 1;
                            sink(Element::Announce { time, peer, prefix, path_id, origin });
                        }
                        None => self.stats.malformed += 1,
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn peer_index_table(&mut self, b: &[u8]) -> Result<(), &'static str> {
        let short = "PEER_INDEX_TABLE too short";
        let name_len = usize::from(be16(b.get(4..6).ok_or(short)?));
        let mut rest = b.get(6 + name_len..).ok_or(short)?;
        let count = be16(rest.get(..2).ok_or(short)?);
        rest = &rest[2..];
        self.peers.clear();
        for _ in 0..count {
            let peer_type = *rest.first().ok_or(short)?;
            let (alen, aslen) = (if peer_type & 1 != 0 { 16 } else { 4 }, if peer_type & 2 != 0 { 4 } else { 2 });
            let entry = rest.get(..1 + 4 + alen + aslen).ok_or(short)?;
            let ip = if alen == 16 { ip6(&entry[5..]) } else { ip4(&entry[5..]) };
            let asn = if aslen == 4 { be32(&entry[5 + alen..]) } else { u32::from(be16(&entry[5 + alen..])) };
            self.peers.push(Peer { ip, asn });
            rest = &rest[entry.len()..];
        }
        Ok(())
    }

    /// BGP4MP: state changes and BGP messages as the collector received them.
    fn bgp4mp(&mut self, time: u32, subtype: u16, b: &[u8], sink: &mut dyn FnMut(Element)) -> Result<(), &'static str> {
        let four_byte = matches!(subtype, 4 | 5 | 7 | 9 | 11);
        let is_state = matches!(subtype, 0 | 5);
        let is_message = matches!(subtype, 1 | 4 | 8 | 9);
        if !is_state && !is_message {
            return Ok(()); // locally generated messages (6, 7, 10, 11)
        }
        let aslen = if four_byte { 4 } else { 2 };
        let short = "BGP4MP record too short";
        let afi = be16(b.get(2 * aslen + 2..2 * aslen + 4).ok_or(short)?);
        let alen = if afi == 2 { 16 } else { 4 };
        let p = 2 * aslen + 4;
        let ips = b.get(p..p + 2 * alen).ok_or(short)?;
        let ip = if alen == 16 { ip6(ips) } else { ip4(ips) };
        let asn = if four_byte { be32(b) } else { u32::from(be16(b)) };
        let peer = Peer { ip, asn };
        let rest = &b[p + 2 * alen..];
        if is_state {
            let new = be16(rest.get(2..4).ok_or(short)?);
            sink(Element::State { time, peer, new });
            return Ok(());
        }
        if rest.len() < wire::HEADER_LEN {
            return Err(short);
        }
        let mut header = [0u8; wire::HEADER_LEN];
        header.copy_from_slice(&rest[..wire::HEADER_LEN]);
        let (len, kind) = wire::parse_header(&header, wire::MAX_EXTENDED_LEN).map_err(|_| "bad BGP header")?;
        if kind != wire::kind::UPDATE {
            return Ok(());
        }
        let body = rest.get(wire::HEADER_LEN..len).ok_or("BGP message overruns the record")?;
        let codec = Codec { four_byte_as: four_byte, add_path: matches!(subtype, 8 | 9) };
        let mut update = std::mem::take(&mut self.update);
        let parsed = wire::parse_update(body, codec, &mut update);
        if parsed.is_ok() {
            for &(prefix, path_id) in &update.withdrawn {
                sink(Element::Withdraw { time, peer, prefix, path_id });
            }
            for &(prefix, path_id) in &update.announced {
                sink(Element::Announce { time, peer, prefix, path_id, origin: update.origin });
            }
            self.stats.elements += (update.withdrawn.len() + update.announced.len()) as u64;
        }
        self.update = update;
        parsed.map_err(|_| "malformed UPDATE")
    }
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_up_only_in_established_and_routes_keep_their_path_and_origin() {
        let peer = Peer { ip: "192.0.2.1".parse().unwrap(), asn: 64_500 };
        let event = |new| FeedEvent::from(Element::State { time: 1, peer, new });
        assert!(matches!(event(ESTABLISHED), FeedEvent::PeerUp(k) if k.ip == peer.ip && k.collector.is_empty()));
        for other in [1, 2, 3, 4, 5] {
            assert!(matches!(event(other), FeedEvent::PeerDown(_)), "state {other} is not up");
        }
        let prefix: Prefix = "129.134.30.0/23".parse().unwrap();
        let announce = Element::Announce { time: 7, peer, prefix, path_id: 3, origin: Some(32934) };
        assert_eq!((announce.time(), announce.prefix()), (7, Some(prefix)));
        assert!(matches!(
            FeedEvent::from(announce),
            FeedEvent::Announce { path_id: 3, origin: Some(32934), prefix: p, .. } if p == prefix
        ));
    }
}
