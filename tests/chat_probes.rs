//! The chat probes against protocol stand-ins on loopback (tests/support:
//! an MTProto data centre, and a WhatsApp Noise responder with a test root
//! key), configured as a user writes them. Each negative case of
//! PROTOCOLS.md §7 is a row: silence, a close before any byte, an HTTP
//! answer, a TLS alert, a wrong nonce, a transport error, a standard-Noise
//! server, a wrong root, an expired chain, a leaf that is not the static
//! key — each with the reason and the words `chatpulse check` shows.

mod support;

use std::path::Path;
use std::time::Duration;

use chatpulse::config::{Check, Config};
use chatpulse::probe::mtproto::MtprotoProbe;
use chatpulse::probe::whatsapp::WhatsappProbe;
use chatpulse::probe::{Finding, Probe, Reason};
use support::mtproto::{self as dc, Behaviour as Dc};
use support::whatsapp::{self as wa, Behaviour as Wa, TestRoot};

/// Each probe's own timeout.
const T: Duration = Duration::from_secs(2);

/// The probe of a one-probe config, as `run` and `check` would build it.
fn probe(keys: &str) -> Box<dyn Probe> {
    let text = format!("[[service]]\nid = \"p\"\nname = \"P\"\n  [[service.probe]]\n  timeout = \"2s\"\n{keys}");
    let config = Config::parse(Path::new("chat.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    match &config.services[0].probes[0].check {
        Check::Mtproto(check) => Box::new(MtprotoProbe::new(check, T)),
        Check::Whatsapp(check) => Box::new(WhatsappProbe::new(check, T)),
        other => panic!("not a chat probe: {other:?}"),
    }
}

async fn run(probe: Box<dyn Probe>) -> Finding {
    tokio::time::timeout(T * 3, probe.run()).await.expect("a chat probe keeps its timeout")
}

async fn mtproto(behaviour: Dc, extra: &str) -> Finding {
    let (addr, server) = dc::serve(behaviour).await;
    let finding = run(probe(&format!("  kind = \"mtproto\"\n  address = \"{addr}\"\n{extra}"))).await;
    server.abort();
    finding
}

fn hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

async fn whatsapp(root: &TestRoot, behaviour: Wa) -> Finding {
    let (addr, server) = wa::serve_tcp(root, behaviour).await;
    let keys = format!("  kind = \"whatsapp\"\n  address = \"{addr}\"\n  root_key = \"{}\"\n", hex(&root.public));
    let finding = run(probe(&keys)).await;
    server.abort();
    finding
}

#[tokio::test]
async fn a_genuine_data_centre_passes_and_says_what_it_proved() {
    let f = mtproto(Dc::Genuine, "").await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    assert!(f.detail.contains("a Telegram data centre answered resPQ"), "{}", f.detail);
    assert!(f.detail.contains("our nonce echoed") && f.detail.contains("d09d1d85de64fd85"), "{}", f.detail);
}

#[tokio::test]
async fn every_answer_that_is_not_a_genuine_data_centre_has_its_reason_and_words() {
    let cases: [(Dc, Reason, &str); 10] = [
        (Dc::Flood, Reason::ChatRefused, "transport error -429 (too many connections"),
        (Dc::WrongNonce, Reason::ChatAuth, "nonce"),
        (Dc::EvenMsgId, Reason::ChatForeign, "not MTProto"),
        (Dc::UnknownFingerprint, Reason::ChatAuth, "fingerprint"),
        (Dc::CompositePq, Reason::ChatAuth, "two primes"),
        (Dc::TestKey, Reason::ChatAuth, "fingerprint"),
        (Dc::Silent, Reason::ChatTimeout, "no MTProto answer within 2s"),
        (Dc::CloseAtOnce, Reason::ChatClosed, "closed before any MTProto answer"),
        (Dc::Http400, Reason::ChatForeign, "answered \"HTTP/1.1 400 Bad Request\" — not MTProto"),
        (Dc::TlsAlert, Reason::ChatForeign, "answered with a TLS alert (15 03 03 00 02 02 28) — not MTProto"),
    ];
    for (behaviour, reason, words) in cases {
        let f = mtproto(behaviour, "").await;
        assert_eq!(f.result, Err(reason), "{behaviour:?}: {}", f.detail);
        assert!(f.detail.contains(words), "{behaviour:?}: {}", f.detail);
    }
}

#[tokio::test]
async fn a_test_data_centre_passes_when_its_fingerprint_is_configured() {
    let f = mtproto(Dc::TestKey, "  fingerprints = [\"b25898df208d2603\"]\n").await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
}

#[tokio::test]
async fn a_port_nobody_listens_on_keeps_the_tcp_reason() {
    let closed = support::http::closed_port().await;
    let f = run(probe(&format!("  kind = \"mtproto\"\n  address = \"{closed}\"\n"))).await;
    assert_eq!(f.result, Err(Reason::TcpConnect), "{}", f.detail);
    let f = run(probe(&format!("  kind = \"whatsapp\"\n  address = \"{closed}\"\n"))).await;
    assert_eq!(f.result, Err(Reason::TcpConnect), "{}", f.detail);
}

#[tokio::test]
async fn a_genuine_whatsapp_server_passes_with_its_chain_verified_to_the_configured_root() {
    let root = TestRoot::new();
    let f = whatsapp(&root, Wa::Genuine).await;
    assert_eq!(f.result, Ok(()), "{}", f.detail);
    assert!(f.detail.contains("a WhatsApp chat server answered"), "{}", f.detail);
    assert!(f.detail.contains("certificate chain verifies to the root"), "{}", f.detail);
}

#[tokio::test]
async fn the_real_whatsapp_root_rejects_a_chain_it_did_not_sign() {
    let root = TestRoot::new();
    let (addr, server) = wa::serve_tcp(&root, Wa::Genuine).await;
    // No root_key: WhatsApp's own root is pinned by default.
    let f = run(probe(&format!("  kind = \"whatsapp\"\n  address = \"{addr}\"\n"))).await;
    server.abort();
    assert_eq!(f.result, Err(Reason::ChatAuth), "{}", f.detail);
    assert!(f.detail.contains("not signed by the pinned root"), "{}", f.detail);
}

#[tokio::test]
async fn every_whatsapp_answer_that_fails_its_proof_or_is_not_whatsapp_has_its_reason_and_words() {
    let root = TestRoot::new();
    let cases: [(Wa, Reason, &str); 9] = [
        (Wa::WrongRoot, Reason::ChatAuth, "not signed by the pinned root"),
        (Wa::Expired, Reason::ChatAuth, "expired"),
        (Wa::LeafNotStatic, Reason::ChatAuth, "not the server's static key"),
        (Wa::StandardNoise, Reason::ChatAuth, "fails its proof"),
        (Wa::Silent, Reason::ChatTimeout, "no WhatsApp's Noise protocol answer within 2s"),
        (Wa::CloseAtOnce, Reason::ChatClosed, "closed before any"),
        (Wa::Http400, Reason::ChatForeign, "answered \"HTTP/1.1 400 Bad Request\" — not WhatsApp's Noise protocol"),
        (Wa::TlsAlert, Reason::ChatForeign, "answered with a TLS alert"),
        (Wa::Truncated, Reason::ChatClosed, "before a complete WhatsApp's Noise protocol answer"),
    ];
    for (behaviour, reason, words) in cases {
        let f = whatsapp(&root, behaviour).await;
        assert_eq!(f.result, Err(reason), "{behaviour:?}: {}", f.detail);
        assert!(f.detail.contains(words), "{behaviour:?}: {}", f.detail);
    }
}

#[tokio::test]
async fn the_same_handshake_runs_in_websocket_frames_for_a_url() {
    let root = TestRoot::new();
    let key = hex(&root.public);
    let (addr, server) = wa::serve_ws(&root, Wa::Genuine).await;
    let f =
        run(probe(&format!("  kind = \"whatsapp\"\n  url = \"ws://{addr}/ws/chat\"\n  root_key = \"{key}\"\n"))).await;
    server.abort();
    assert_eq!(f.result, Ok(()), "{}", f.detail);

    let (addr, server) = wa::serve_ws(&root, Wa::LeafNotStatic).await;
    let f =
        run(probe(&format!("  kind = \"whatsapp\"\n  url = \"ws://{addr}/ws/chat\"\n  root_key = \"{key}\"\n"))).await;
    server.abort();
    assert_eq!(f.result, Err(Reason::ChatAuth), "{}", f.detail);

    // A web server that is not a chat front end refuses the upgrade.
    let web = support::http::TestHttp::start().await;
    let f = run(probe(&format!("  kind = \"whatsapp\"\n  url = \"ws://{}/ws/chat\"\n", web.addr))).await;
    assert_eq!(f.result, Err(Reason::ChatForeign), "{}", f.detail);
    assert!(f.detail.contains("to the WebSocket upgrade — not a chat front end"), "{}", f.detail);
}

#[tokio::test]
async fn chatpulse_check_explains_each_chat_row_in_words() {
    let root = TestRoot::new();
    let (genuine, a) = dc::serve(Dc::Genuine).await;
    let (proxy, b) = dc::serve(Dc::Http400).await;
    let (chat, c) = wa::serve_tcp(&root, Wa::Genuine).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[[service]]\nid = \"telegram\"\nname = \"Telegram\"\n  [[service.probe]]\n  kind = \"mtproto\"\n  id = \"dc2\"\n  address = \"{genuine}\"\n  essential = true\n  group = \"data-centres\"\n  [[service.probe]]\n  kind = \"mtproto\"\n  id = \"dc4\"\n  address = \"{proxy}\"\n  essential = true\n  group = \"data-centres\"\n\n[[service]]\nid = \"whatsapp\"\nname = \"WhatsApp\"\n  [[service.probe]]\n  kind = \"whatsapp\"\n  id = \"chat-5222\"\n  address = \"{chat}\"\n  root_key = \"{}\"\n  essential = true\n",
            hex(&root.public)
        ),
    )
    .unwrap();
    let check = tokio::process::Command::new(env!("CARGO_BIN_EXE_chatpulse"))
        .args(["--config", config.to_str().unwrap(), "check"])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), check).await.unwrap().unwrap();
    for server in [a, b, c] {
        server.abort();
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let row = |id: &str| stdout.lines().find(|l| l.contains(id)).unwrap_or_else(|| panic!("no {id} row: {stdout}"));
    assert!(row("dc2").contains("mtproto") && row("dc2").contains(" ok "), "{stdout}");
    assert!(row("dc4").contains("chat_foreign") && row("dc4").contains("answered \"HTTP/1.1 400"), "{stdout}");
    assert!(
        row("chat-5222").contains("whatsapp") && row("chat-5222").contains("a WhatsApp chat server answered"),
        "{stdout}"
    );
    // Then each service's verdict: one data centre of two foreign only degrades Telegram.
    assert!(stdout.contains("\ntelegram: degraded — chat: "), "{stdout}");
    assert!(stdout.contains("\nwhatsapp: up\n"), "{stdout}");
}
