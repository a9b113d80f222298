//! Entry points for the fuzzers (`fuzz/`, README "Development") and for the
//! regression corpus they leave behind (`tests/fuzz_regressions.rs`): each
//! feeds arbitrary bytes to one decoder that reads input from outside — a
//! BGP peer's messages, MRT files, RIS Live frames, DNS replies, a Telegram
//! data centre's answer, a WhatsApp server's ServerHello, the config file —
//! and must return, never panic.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::bgp::wire::{self, Codec, Update};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::config::Config;
use crate::probe::dns::{DnsCheck, DnsServer, DnsTransport};

/// One BGP message as a peer would send it: header, then OPEN, UPDATE (with
/// and without 4-byte AS and ADD-PATH) or NOTIFICATION.
pub fn bgp_message(data: &[u8]) {
    let Some(header) = data.get(..wire::HEADER_LEN) else { return };
    let header: [u8; wire::HEADER_LEN] = header.try_into().expect("a header-sized slice");
    let Ok((len, kind)) = wire::parse_header(&header, wire::MAX_EXTENDED_LEN) else { return };
    let body = &data[wire::HEADER_LEN..data.len().min(len)];
    let _ = wire::Open::parse(body);
    let _ = wire::Notification::parse(body);
    let mut update = Update::default();
    for (four_byte_as, add_path) in [(false, false), (true, false), (true, true)] {
        let _ = wire::parse_update(body, Codec { four_byte_as, add_path }, &mut update);
    }
    let _ = kind;
}

/// An MRT file (any record types), uncompressed.
pub fn mrt(data: &[u8]) {
    let mut reader = crate::bgp::mrt::Reader::new(data);
    let _ = reader.for_each(&mut |_| {});
}

/// One RIS Live websocket text frame.
pub fn ris_live(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::bgp::ris_live::translate(text);
    }
}

/// A DNS reply to a query for `web.chat.test A` (ID from the first two
/// bytes), judged as a non-recursive probe with the AA check would.
pub fn dns_reply(data: &[u8]) {
    let check = DnsCheck {
        query: "web.chat.test".into(),
        record: RecordType::A,
        transport: DnsTransport::Udp,
        servers: Vec::new(),
        server_name: None,
        ca_file: None,
        system_roots: false,
        require_all: false,
        recursion: false,
        authoritative: true,
        expect_rcode: ResponseCode::NoError,
        expect_answer: true,
        delegation: None,
        expect_answer_in: Vec::new(),
    };
    let probe = crate::probe::dns::DnsProbe::new(check, Duration::from_secs(1), None);
    let id = data.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let server = DnsServer::Addr(SocketAddr::from(([127, 0, 0, 1], 53)));
    let _ = probe.judge_bytes(&server, data, id);
}

/// A Telegram data centre's answer: the 4-byte intermediate length prefix,
/// then the packet, judged against the nonce the packet itself carries at
/// the resPQ's nonce offset (so the fuzzer reaches the checks behind it).
pub fn mtproto_answer(data: &[u8]) {
    use crate::probe::mtproto::wire;
    let Some(prefix) = data.get(..4) else { return };
    let _ = wire::packet_len([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let packet = &data[4..];
    let nonce: [u8; 16] = packet.get(24..40).and_then(|n| n.try_into().ok()).unwrap_or([0; 16]);
    let _ = wire::judge(packet, &nonce, &[wire::PRODUCTION_FINGERPRINT, wire::TEST_FINGERPRINT]);
}

/// A WhatsApp server's first frame (without its 3-byte length), judged by
/// an initiator with a fixed key under WhatsApp's root.
pub fn whatsapp_answer(data: &[u8]) {
    use crate::probe::whatsapp::noise;
    let initiator = noise::Initiator::with_secret([7; 32]);
    let _ = initiator.finish(data, &noise::WHATSAPP_ROOT_KEY, 1_800_000_000);
}

/// A config file.
pub fn config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::parse(Path::new("fuzz.toml"), text);
    }
}

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// The entry point of each fuzz target, by name.
pub const TARGETS: [(&str, Target); 7] = [
    ("bgp_message", bgp_message),
    ("mrt", mrt),
    ("ris_live", ris_live),
    ("dns_reply", dns_reply),
    ("mtproto_answer", mtproto_answer),
    ("whatsapp_answer", whatsapp_answer),
    ("config", config),
];
