//! BGP-4 messages on the wire (RFC 4271, 4760, 6793, 7606, 8654).
//!
//! One strict parser serves the MRT reader (updates inside archive files),
//! and the session speaker (updates from live peers). Errors carry the
//! NOTIFICATION code/subcode RFC 4271 assigns and the action RFC 7606
//! prescribes: most attribute errors are *treat-as-withdraw* (the update's
//! prefixes are withdrawn and the session stays up); framing, attribute-list
//! and NLRI errors reset the session. Only what visibility needs is kept:
//! prefixes and the origin AS.

use std::net::Ipv4Addr;

use crate::prefix::Prefix;

/// BGP message types.
pub mod kind {
    /// OPEN.
    pub const OPEN: u8 = 1;
    /// UPDATE.
    pub const UPDATE: u8 = 2;
    /// NOTIFICATION.
    pub const NOTIFICATION: u8 = 3;
    /// KEEPALIVE.
    pub const KEEPALIVE: u8 = 4;
    /// ROUTE-REFRESH (RFC 2918).
    pub const ROUTE_REFRESH: u8 = 5;
}

/// Header length: 16-byte marker, 2-byte length, 1-byte type.
pub const HEADER_LEN: usize = 19;
/// Largest message without the extended-message capability.
pub const MAX_LEN: usize = 4096;
/// Largest message with it (RFC 8654).
pub const MAX_EXTENDED_LEN: usize = 65535;
/// AS_TRANS (RFC 6793): stands in for a 4-byte AS in 2-byte fields.
pub const AS_TRANS: u16 = 23456;

/// NOTIFICATION error codes and subcodes used here.
pub mod code {
    /// Message Header Error.
    pub const HEADER: u8 = 1;
    /// Connection Not Synchronized.
    pub const HEADER_SYNC: u8 = 1;
    /// Bad Message Length.
    pub const HEADER_LENGTH: u8 = 2;
    /// Bad Message Type.
    pub const HEADER_TYPE: u8 = 3;
    /// OPEN Message Error.
    pub const OPEN: u8 = 2;
    /// Unsupported Version Number.
    pub const OPEN_VERSION: u8 = 1;
    /// Bad Peer AS.
    pub const OPEN_PEER_AS: u8 = 2;
    /// Bad BGP Identifier.
    pub const OPEN_BGP_ID: u8 = 3;
    /// Unsupported Optional Parameter.
    pub const OPEN_OPTIONAL: u8 = 4;
    /// Unacceptable Hold Time.
    pub const OPEN_HOLD_TIME: u8 = 6;
    /// UPDATE Message Error.
    pub const UPDATE: u8 = 3;
    /// Malformed Attribute List.
    pub const UPDATE_ATTRIBUTE_LIST: u8 = 1;
    /// Unrecognized Well-known Attribute.
    pub const UPDATE_UNRECOGNIZED: u8 = 2;
    /// Missing Well-known Attribute.
    pub const UPDATE_MISSING: u8 = 3;
    /// Attribute Flags Error.
    pub const UPDATE_FLAGS: u8 = 4;
    /// Attribute Length Error.
    pub const UPDATE_LENGTH: u8 = 5;
    /// Invalid ORIGIN Attribute.
    pub const UPDATE_ORIGIN: u8 = 6;
    /// Invalid NEXT_HOP Attribute.
    pub const UPDATE_NEXT_HOP: u8 = 8;
    /// Optional Attribute Error.
    pub const UPDATE_OPTIONAL: u8 = 9;
    /// Invalid Network Field.
    pub const UPDATE_NETWORK: u8 = 10;
    /// Malformed AS_PATH.
    pub const UPDATE_AS_PATH: u8 = 11;
    /// Hold Timer Expired.
    pub const HOLD_TIMER: u8 = 4;
    /// Finite State Machine Error.
    pub const FSM: u8 = 5;
    /// Receive Unexpected Message in OpenSent State (RFC 6608).
    pub const FSM_OPEN_SENT: u8 = 1;
    /// Receive Unexpected Message in OpenConfirm State.
    pub const FSM_OPEN_CONFIRM: u8 = 2;
    /// Receive Unexpected Message in Established State.
    pub const FSM_ESTABLISHED: u8 = 3;
    /// Cease.
    pub const CEASE: u8 = 6;
    /// Administrative Shutdown.
    pub const CEASE_SHUTDOWN: u8 = 2;
    /// Connection Rejected.
    pub const CEASE_REJECTED: u8 = 5;
    /// Connection Collision Resolution.
    pub const CEASE_COLLISION: u8 = 7;
}

/// A NOTIFICATION, to send or as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Error code.
    pub code: u8,
    /// Error subcode.
    pub subcode: u8,
    /// Diagnostic data.
    pub data: Vec<u8>,
}

impl Notification {
    /// A notification with data.
    pub fn new(code: u8, subcode: u8, data: &[u8]) -> Notification {
        Notification { code, subcode, data: data.to_vec() }
    }

    /// The whole message, header included.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = vec![self.code, self.subcode];
        body.extend_from_slice(&self.data);
        message(kind::NOTIFICATION, &body)
    }

    /// Parses a NOTIFICATION body.
    pub fn parse(body: &[u8]) -> Option<Notification> {
        (body.len() >= 2).then(|| Notification::new(body[0], body[1], &body[2..]))
    }
}

impl std::fmt::Display for Notification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use code::*;
        let name = match (self.code, self.subcode) {
            (HEADER, HEADER_SYNC) => "connection not synchronized",
            (HEADER, HEADER_LENGTH) => "bad message length",
            (HEADER, HEADER_TYPE) => "bad message type",
            (OPEN, OPEN_VERSION) => "unsupported version number",
            (OPEN, OPEN_PEER_AS) => "bad peer AS",
            (OPEN, OPEN_BGP_ID) => "bad BGP identifier",
            (OPEN, OPEN_OPTIONAL) => "unsupported optional parameter",
            (OPEN, OPEN_HOLD_TIME) => "unacceptable hold time",
            (OPEN, _) => "OPEN message error",
            (UPDATE, UPDATE_ATTRIBUTE_LIST) => "malformed attribute list",
            (UPDATE, UPDATE_UNRECOGNIZED) => "unrecognized well-known attribute",
            (UPDATE, UPDATE_MISSING) => "missing well-known attribute",
            (UPDATE, UPDATE_FLAGS) => "attribute flags error",
            (UPDATE, UPDATE_LENGTH) => "attribute length error",
            (UPDATE, UPDATE_OPTIONAL) => "optional attribute error",
            (UPDATE, UPDATE_NETWORK) => "invalid network field",
            (UPDATE, UPDATE_AS_PATH) => "malformed AS_PATH",
            (UPDATE, _) => "UPDATE message error",
            (HOLD_TIMER, _) => "hold timer expired",
            (FSM, _) => "finite state machine error",
            (CEASE, CEASE_SHUTDOWN) => "administrative shutdown",
            (CEASE, CEASE_REJECTED) => "connection rejected",
            (CEASE, CEASE_COLLISION) => "connection collision resolution",
            (CEASE, _) => "cease",
            _ => "error",
        };
        write!(f, "{name} ({}/{})", self.code, self.subcode)
    }
}

/// Frames `body` as a message of type `kind`.
pub fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let len = HEADER_LEN + body.len();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&[0xff; 16]);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    out.push(kind);
    out.extend_from_slice(body);
    out
}

/// A KEEPALIVE message.
pub fn keepalive() -> Vec<u8> {
    message(kind::KEEPALIVE, &[])
}

/// Checks a message header; returns (total length, type).
pub fn parse_header(header: &[u8; HEADER_LEN], max_len: usize) -> Result<(usize, u8), Notification> {
    if header[..16] != [0xff; 16] {
        return Err(Notification::new(code::HEADER, code::HEADER_SYNC, &[]));
    }
    let len = usize::from(u16::from_be_bytes([header[16], header[17]]));
    let kind = header[18];
    let min = match kind {
        kind::OPEN => 29,
        kind::UPDATE => 23,
        kind::NOTIFICATION => 21,
        kind::KEEPALIVE => 19,
        kind::ROUTE_REFRESH => 23,
        _ => return Err(Notification::new(code::HEADER, code::HEADER_TYPE, &[kind])),
    };
    let max = if kind == kind::KEEPALIVE { HEADER_LEN } else { max_len };
    if len < min || len > max {
        return Err(Notification::new(code::HEADER, code::HEADER_LENGTH, &header[16..18]));
    }
    Ok((len, kind))
}

/// Address families we take routes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// AFI 1, SAFI 1.
    Ipv4Unicast,
    /// AFI 2, SAFI 1.
    Ipv6Unicast,
}

impl Family {
    fn from_afi_safi(afi: u16, safi: u8) -> Option<Family> {
        match (afi, safi) {
            (1, 1) => Some(Family::Ipv4Unicast),
            (2, 1) => Some(Family::Ipv6Unicast),
            _ => None,
        }
    }

    fn afi(self) -> u16 {
        match self {
            Family::Ipv4Unicast => 1,
            Family::Ipv6Unicast => 2,
        }
    }
}

/// A parsed OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// BGP version (4).
    pub version: u8,
    /// The sender's AS (the 4-byte capability's value when present).
    pub asn: u32,
    /// Proposed hold time in seconds.
    pub hold_time: u16,
    /// BGP identifier.
    pub router_id: Ipv4Addr,
    /// Sender supports 4-byte AS numbers (RFC 6793).
    pub four_byte_as: bool,
    /// Multiprotocol families announced (RFC 4760); empty = IPv4 unicast only.
    pub families: Vec<Family>,
    /// Sender supports messages up to 65535 bytes (RFC 8654).
    pub extended_message: bool,
}

impl Open {
    /// The OPEN we send: receive-only, IPv4 and IPv6 unicast, 4-byte AS,
    /// extended messages.
    pub fn ours(asn: u32, hold_time: u16, router_id: Ipv4Addr) -> Open {
        Open {
            version: 4,
            asn,
            hold_time,
            router_id,
            four_byte_as: true,
            families: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            extended_message: true,
        }
    }

    /// The whole OPEN message.
    pub fn encode(&self) -> Vec<u8> {
        let mut caps = Vec::new();
        for family in &self.families {
            let afi = family.afi().to_be_bytes();
            caps.extend_from_slice(&[1, 4, afi[0], afi[1], 0, 1]);
        }
        if self.extended_message {
            caps.extend_from_slice(&[6, 0]);
        }
        if self.four_byte_as {
            caps.extend_from_slice(&[65, 4]);
            caps.extend_from_slice(&self.asn.to_be_bytes());
        }
        let two_byte = u16::try_from(self.asn).unwrap_or(AS_TRANS);
        let mut body = vec![self.version];
        body.extend_from_slice(&two_byte.to_be_bytes());
        body.extend_from_slice(&self.hold_time.to_be_bytes());
        body.extend_from_slice(&self.router_id.octets());
        body.push((caps.len() + 2) as u8);
        body.extend_from_slice(&[2, caps.len() as u8]);
        body.extend_from_slice(&caps);
        message(kind::OPEN, &body)
    }

    /// Parses an OPEN body (checks of version, AS and hold time are the
    /// session's, which knows what it expects).
    pub fn parse(body: &[u8]) -> Result<Open, Notification> {
        let bad_len =
            || Notification::new(code::HEADER, code::HEADER_LENGTH, &((body.len() + HEADER_LEN) as u16).to_be_bytes());
        if body.len() < 10 {
            return Err(bad_len());
        }
        let version = body[0];
        let two_byte_as = u16::from_be_bytes([body[1], body[2]]);
        let hold_time = u16::from_be_bytes([body[3], body[4]]);
        let router_id = Ipv4Addr::new(body[5], body[6], body[7], body[8]);
        let params_len = usize::from(body[9]);
        let mut params = body.get(10..10 + params_len).ok_or_else(bad_len)?;
        if 10 + params_len != body.len() {
            return Err(bad_len());
        }
        let mut open = Open {
            version,
            asn: u32::from(two_byte_as),
            hold_time,
            router_id,
            four_byte_as: false,
            families: Vec::new(),
            extended_message: false,
        };
        let malformed = || Notification::new(code::OPEN, 0, &[]);
        while !params.is_empty() {
            let (ptype, plen) = (params[0], usize::from(*params.get(1).ok_or_else(malformed)?));
            let value = params.get(2..2 + plen).ok_or_else(malformed)?;
            params = &params[2 + plen..];
            if ptype != 2 {
                return Err(Notification::new(code::OPEN, code::OPEN_OPTIONAL, &[]));
            }
            let mut caps = value;
            while !caps.is_empty() {
                let (ccode, clen) = (caps[0], usize::from(*caps.get(1).ok_or_else(malformed)?));
                let cval = caps.get(2..2 + clen).ok_or_else(malformed)?;
                caps = &caps[2 + clen..];
                match (ccode, clen) {
                    (1, 4) => {
                        if let Some(f) = Family::from_afi_safi(u16::from_be_bytes([cval[0], cval[1]]), cval[3]) {
                            open.families.push(f);
                        }
                    }
                    (6, 0) => open.extended_message = true,
                    (65, 4) => {
                        open.four_byte_as = true;
                        open.asn = u32::from_be_bytes([cval[0], cval[1], cval[2], cval[3]]);
                    }
                    _ => {} // tolerated, not used
                }
            }
        }
        Ok(open)
    }
}

/// The origin AS of a path: the last AS of its final AS_SEQUENCE, or the only
/// member of a final one-element AS_SET. `None` when the path is empty or
/// ends in a set of several ASes (aggregation hides the origin).
pub type Origin = Option<u32>;

/// How to read AS numbers and NLRI in one message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Codec {
    /// AS_PATH carries 4-byte ASes (negotiated, or MRT `*_AS4` records).
    pub four_byte_as: bool,
    /// NLRI carry ADD-PATH path identifiers (RFC 7911).
    pub add_path: bool,
}

/// What an UPDATE says, reduced to what visibility needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// Prefixes withdrawn (including those treated as withdrawn), with
    /// their ADD-PATH path ids (0 without ADD-PATH).
    pub withdrawn: Vec<(Prefix, PathId)>,
    /// Prefixes announced, with `origin`, and their path ids.
    pub announced: Vec<(Prefix, PathId)>,
    /// Origin AS of the announced prefixes.
    pub origin: Origin,
    /// Set when an attribute error turned the announcements into
    /// withdrawals (RFC 7606); the error that did it.
    pub treated_as_withdraw: Option<Notification>,
}

impl Update {
    /// Clears for reuse (keeps allocations).
    pub fn clear(&mut self) {
        self.withdrawn.clear();
        self.announced.clear();
        self.origin = None;
        self.treated_as_withdraw = None;
    }
}

fn attr_list_error() -> Notification {
    Notification::new(code::UPDATE, code::UPDATE_ATTRIBUTE_LIST, &[])
}

/// An ADD-PATH path identifier (RFC 7911); 0 without ADD-PATH.
pub type PathId = u32;

/// Reads NLRI (with ADD-PATH, a 4-byte path id, then the `len` byte and
/// the prefix bytes) into `out`.
fn read_nlri(mut data: &[u8], v6: bool, add_path: bool, out: &mut Vec<(Prefix, PathId)>) -> Result<(), Notification> {
    let invalid = || Notification::new(code::UPDATE, code::UPDATE_NETWORK, &[]);
    while !data.is_empty() {
        let mut path_id = 0;
        if add_path {
            let id = data.get(..4).ok_or_else(invalid)?;
            path_id = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
            data = &data[4..];
        }
        let len = *data.first().ok_or_else(invalid)?;
        let bytes = usize::from(len).div_ceil(8);
        let raw = data.get(1..1 + bytes).ok_or_else(invalid)?;
        out.push((Prefix::from_nlri(v6, len, raw).ok_or_else(invalid)?, path_id));
        data = &data[1 + bytes..];
    }
    Ok(())
}

/// Parses AS_PATH/AS4_PATH segments: returns (number of ASes as counted by
/// RFC 6793 — a set counts one, origin). `None` if malformed.
fn read_as_path(mut data: &[u8], four_byte: bool) -> Option<(usize, Origin)> {
    let width = if four_byte { 4 } else { 2 };
    let (mut count, mut origin) = (0usize, None);
    while !data.is_empty() {
        let (seg_type, n) = (*data.first()?, usize::from(*data.get(1)?));
        let asns = data.get(2..2 + n * width)?;
        if n == 0 || !(1..=4).contains(&seg_type) {
            return None;
        }
        let last = &asns[(n - 1) * width..];
        let last = if four_byte {
            u32::from_be_bytes([last[0], last[1], last[2], last[3]])
        } else {
            u32::from(u16::from_be_bytes([last[0], last[1]]))
        };
        origin = match seg_type {
            2 | 3 => Some(last),
            _ if n == 1 => Some(last),
            _ => None,
        };
        // Confederation segments do not count (RFC 6793 section 4.2.3).
        count += match seg_type {
            2 => n,
            1 => 1,
            _ => 0,
        };
        data = &data[2 + n * width..];
    }
    Some((count, origin))
}

/// Where the update is read from: a live session (strict) or an MRT RIB
/// entry, whose MP_REACH attribute holds only the next hop (RFC 6396 4.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A full UPDATE.
    Message,
    /// Attributes of a TABLE_DUMP_V2 RIB entry.
    RibEntry,
}

/// Parses an UPDATE body into `out` (cleared first).
///
/// `Err` means the session must be reset with that NOTIFICATION. Errors
/// RFC 7606 lets us survive come back as `Ok` with `treated_as_withdraw`.
pub fn parse_update(body: &[u8], codec: Codec, out: &mut Update) -> Result<(), Notification> {
    out.clear();
    let withdrawn_len = usize::from(u16::from_be_bytes([
        *body.first().ok_or_else(attr_list_error)?,
        *body.get(1).ok_or_else(attr_list_error)?,
    ]));
    let withdrawn = body.get(2..2 + withdrawn_len).ok_or_else(attr_list_error)?;
    let rest = &body[2 + withdrawn_len..];
    let attrs_len = usize::from(u16::from_be_bytes([
        *rest.first().ok_or_else(attr_list_error)?,
        *rest.get(1).ok_or_else(attr_list_error)?,
    ]));
    let attrs = rest.get(2..2 + attrs_len).ok_or_else(attr_list_error)?;
    let nlri = &rest[2 + attrs_len..];
    read_nlri(withdrawn, false, codec.add_path, &mut out.withdrawn)?;
    read_nlri(nlri, false, codec.add_path, &mut out.announced)?;
    let seen = parse_attributes(attrs, codec, Source::Message, out)?;
    let announces = !out.announced.is_empty();
    if announces && out.treated_as_withdraw.is_none() {
        // Well-known mandatory attributes (RFC 4271 6.3); NEXT_HOP is needed
        // only for IPv4 NLRI in the classic field.
        let missing = [(seen.origin, 1u8), (seen.as_path, 2), (seen.next_hop || !seen.classic_nlri, 3)]
            .into_iter()
            .find(|(present, _)| !present);
        if let Some((_, type_code)) = missing {
            out.treated_as_withdraw = Some(Notification::new(code::UPDATE, code::UPDATE_MISSING, &[type_code]));
        }
    }
    if out.treated_as_withdraw.is_some() {
        let announced = std::mem::take(&mut out.announced);
        out.withdrawn.extend(announced);
        out.origin = None;
    }
    Ok(())
}

/// Which attributes a message carried.
#[derive(Debug, Default)]
struct Seen {
    origin: bool,
    as_path: bool,
    next_hop: bool,
    classic_nlri: bool,
}

/// Parses path attributes, adding MP_REACH/MP_UNREACH prefixes to `out`
/// and setting its origin.
fn parse_attributes(mut attrs: &[u8], codec: Codec, source: Source, out: &mut Update) -> Result<Seen, Notification> {
    let mut seen = Seen { classic_nlri: !out.announced.is_empty(), ..Seen::default() };
    let mut as_path: Option<(usize, Origin)> = None;
    let mut as4_path: Option<(usize, Origin)> = None;
    let mut mp_reach_seen = false;
    let mut mp_unreach_seen = false;
    let taw = |out: &mut Update, subcode: u8, data: &[u8]| {
        if out.treated_as_withdraw.is_none() {
            out.treated_as_withdraw = Some(Notification::new(code::UPDATE, subcode, data));
        }
    };
    while !attrs.is_empty() {
        let flags = attrs[0];
        let type_code = *attrs.get(1).ok_or_else(attr_list_error)?;
        let extended = flags & 0x10 != 0;
        let header = if extended { 4 } else { 3 };
        let len = if extended {
            usize::from(u16::from_be_bytes([
                *attrs.get(2).ok_or_else(attr_list_error)?,
                *attrs.get(3).ok_or_else(attr_list_error)?,
            ]))
        } else {
            usize::from(*attrs.get(2).ok_or_else(attr_list_error)?)
        };
        let whole = attrs.get(..header + len).ok_or_else(attr_list_error)?;
        let value = &whole[header..];
        attrs = &attrs[header + len..];
        let optional = flags & 0x80 != 0;
        let transitive = flags & 0x40 != 0;
        match type_code {
            1..=3 => {
                // Well-known mandatory: optional bit clear, transitive bit set.
                if optional || !transitive {
                    taw(out, code::UPDATE_FLAGS, whole);
                    continue;
                }
                match type_code {
                    1 if seen.origin => {}
                    1 => {
                        seen.origin = true;
                        if len != 1 {
                            taw(out, code::UPDATE_LENGTH, whole);
                        } else if value[0] > 2 {
                            taw(out, code::UPDATE_ORIGIN, whole);
                        }
                    }
                    2 if seen.as_path => {}
                    2 => {
                        seen.as_path = true;
                        match read_as_path(value, codec.four_byte_as) {
                            Some(parsed) => as_path = Some(parsed),
                            None => taw(out, code::UPDATE_AS_PATH, &[]),
                        }
                    }
                    _ if seen.next_hop => {}
                    _ => {
                        seen.next_hop = true;
                        if len != 4 {
                            taw(out, code::UPDATE_LENGTH, whole);
                        }
                    }
                }
            }
            14 => {
                if mp_reach_seen {
                    return Err(attr_list_error());
                }
                mp_reach_seen = true;
                if source == Source::RibEntry {
                    continue;
                }
                let bad = || Notification::new(code::UPDATE, code::UPDATE_OPTIONAL, &[]);
                if value.len() < 5 {
                    return Err(bad());
                }
                let family = Family::from_afi_safi(u16::from_be_bytes([value[0], value[1]]), value[2]);
                let nh_len = usize::from(value[3]);
                let nlri = value.get(5 + nh_len..).ok_or_else(bad)?;
                if let Some(family) = family {
                    read_nlri(nlri, family == Family::Ipv6Unicast, codec.add_path, &mut out.announced)?;
                }
            }
            15 => {
                if mp_unreach_seen {
                    return Err(attr_list_error());
                }
                mp_unreach_seen = true;
                let bad = || Notification::new(code::UPDATE, code::UPDATE_OPTIONAL, &[]);
                if value.len() < 3 {
                    return Err(bad());
                }
                if let Some(family) = Family::from_afi_safi(u16::from_be_bytes([value[0], value[1]]), value[2]) {
                    read_nlri(&value[3..], family == Family::Ipv6Unicast, codec.add_path, &mut out.withdrawn)?;
                }
            }
            // AS4_PATH: only meaningful beside a 2-byte AS_PATH; a malformed
            // one is discarded (RFC 6793 6).
            17 if !codec.four_byte_as => as4_path = read_as_path(value, true),
            17 => {}
            // An attribute we do not know with the optional bit clear claims
            // to be well-known: RFC 4271 6.3 makes that a session error.
            _ if !optional && !(1..=7).contains(&type_code) => {
                return Err(Notification::new(code::UPDATE, code::UPDATE_UNRECOGNIZED, whole));
            }
            // MED, LOCAL_PREF, communities, ...: not needed for visibility.
            _ => {}
        }
    }
    out.origin = match (as_path, as4_path) {
        // RFC 6793 4.2.3: use AS4_PATH unless it is longer than AS_PATH.
        (Some((n, _)), Some((n4, origin4))) if n4 <= n && n4 > 0 => origin4,
        (Some((_, origin)), _) => origin,
        (None, _) => None,
    };
    Ok(seen)
}

/// Reads the origin from a RIB entry's attributes (TABLE_DUMP_V2); `None` in
/// the outer option means the attributes are malformed.
pub fn rib_entry_origin(attrs: &[u8], codec: Codec) -> Option<Origin> {
    let mut scratch = Update::default();
    parse_attributes(attrs, codec, Source::RibEntry, &mut scratch).ok()?;
    (scratch.treated_as_withdraw.is_none()).then_some(scratch.origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
        let mut a = vec![flags, code, value.len() as u8];
        a.extend_from_slice(value);
        a
    }

    fn update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
        let mut b = (withdrawn.len() as u16).to_be_bytes().to_vec();
        b.extend_from_slice(withdrawn);
        b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        b.extend_from_slice(attrs);
        b.extend_from_slice(nlri);
        b
    }

    fn standard_attrs(path: &[u8]) -> Vec<u8> {
        [attr(0x40, 1, &[0]), attr(0x40, 2, path), attr(0x40, 3, &[192, 0, 2, 1])].concat()
    }

    const FB: [u8; 4] = [23, 129, 134, 30];
    const FOUR_BYTE: Codec = Codec { four_byte_as: true, add_path: false };

    #[test]
    fn announcement_with_four_byte_path_names_the_origin() {
        let path = [2, 2, 0, 0, 0xfd, 0xe9, 0, 0, 0x80, 0xa6];
        let mut out = Update::default();
        parse_update(&update(&[], &standard_attrs(&path), &FB), FOUR_BYTE, &mut out).unwrap();
        assert_eq!(out.announced, vec![("129.134.30.0/23".parse().unwrap(), 0)]);
        assert_eq!(out.origin, Some(32934));
        assert_eq!(out.treated_as_withdraw, None);
    }

    #[test]
    fn two_byte_path_with_as4_path_uses_the_real_origin() {
        let path = [2, 2, 0xfd, 0xe9, 0x5b, 0xa0]; // 65001 AS_TRANS
        let as4 = [2, 2, 0, 0, 0xfd, 0xe9, 0, 3, 0x0d, 0x40]; // 65001 200000
        let attrs = [standard_attrs(&path), attr(0xc0, 17, &as4)].concat();
        let mut out = Update::default();
        parse_update(&update(&[], &attrs, &FB), Codec::default(), &mut out).unwrap();
        assert_eq!(out.origin, Some(200_000));
    }

    #[test]
    fn missing_as_path_is_treated_as_withdraw() {
        let attrs = [attr(0x40, 1, &[0]), attr(0x40, 3, &[192, 0, 2, 1])].concat();
        let mut out = Update::default();
        parse_update(&update(&[], &attrs, &FB), FOUR_BYTE, &mut out).unwrap();
        assert!(out.announced.is_empty());
        assert_eq!(out.withdrawn, vec![("129.134.30.0/23".parse().unwrap(), 0)]);
        assert_eq!(out.treated_as_withdraw.unwrap().subcode, code::UPDATE_MISSING);
    }

    #[test]
    fn bad_origin_value_and_flags_are_treated_as_withdraw() {
        let path = [2, 1, 0, 0, 0x80, 0xa6];
        let attrs = [attr(0x40, 1, &[7]), attr(0x40, 2, &path), attr(0x40, 3, &[192, 0, 2, 1])].concat();
        let mut out = Update::default();
        parse_update(&update(&[], &attrs, &FB), FOUR_BYTE, &mut out).unwrap();
        assert_eq!(out.treated_as_withdraw.as_ref().unwrap().subcode, code::UPDATE_ORIGIN);
        let attrs = [attr(0xc0, 1, &[0]), attr(0x40, 2, &path), attr(0x40, 3, &[192, 0, 2, 1])].concat();
        parse_update(&update(&[], &attrs, &FB), FOUR_BYTE, &mut out).unwrap();
        assert_eq!(out.treated_as_withdraw.unwrap().subcode, code::UPDATE_FLAGS);
    }

    #[test]
    fn attribute_overrunning_the_list_resets_the_session() {
        let mut attrs = standard_attrs(&[2, 1, 0, 0, 0x80, 0xa6]);
        attrs.extend_from_slice(&[0x40, 5, 200, 0]);
        let err = parse_update(&update(&[], &attrs, &FB), FOUR_BYTE, &mut Update::default()).unwrap_err();
        assert_eq!((err.code, err.subcode), (code::UPDATE, code::UPDATE_ATTRIBUTE_LIST));
    }

    #[test]
    fn prefix_longer_than_the_family_is_an_invalid_network_field() {
        let err = parse_update(&update(&[33, 1, 2, 3, 4, 5], &[], &[]), FOUR_BYTE, &mut Update::default()).unwrap_err();
        assert_eq!((err.code, err.subcode), (code::UPDATE, code::UPDATE_NETWORK));
    }

    #[test]
    fn mp_unreach_withdraws_ipv6() {
        let value = [0, 2, 1, 32, 0x2a, 0x03, 0x28, 0x80];
        let mut out = Update::default();
        parse_update(&update(&[], &attr(0x80, 15, &value), &[]), FOUR_BYTE, &mut out).unwrap();
        assert_eq!(out.withdrawn, vec![("2a03:2880::/32".parse().unwrap(), 0)]);
    }

    #[test]
    fn open_round_trips_and_bad_headers_are_named() {
        let ours = Open::ours(400_000, 90, Ipv4Addr::new(192, 0, 2, 10));
        let bytes = ours.encode();
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(&bytes[..HEADER_LEN]);
        assert_eq!(parse_header(&header, MAX_LEN).unwrap(), (bytes.len(), kind::OPEN));
        assert_eq!(Open::parse(&bytes[HEADER_LEN..]).unwrap(), ours);
        header[0] = 0;
        assert_eq!(parse_header(&header, MAX_LEN).unwrap_err().subcode, code::HEADER_SYNC);
        let mut header = [0xffu8; HEADER_LEN];
        header[16..].copy_from_slice(&[0, 19, 9]);
        assert_eq!(parse_header(&header, MAX_LEN).unwrap_err().subcode, code::HEADER_TYPE);
        header[16..].copy_from_slice(&[0, 18, 4]);
        assert_eq!(parse_header(&header, MAX_LEN).unwrap_err().subcode, code::HEADER_LENGTH);
    }
}
