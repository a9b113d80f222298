//! The shipped `config.toml`, read as an operator who knows these networks
//! would: every platform is watched at each layer that applies to it (an
//! explicit table, below), no recursive DNS probe depends on one server,
//! no two services share the same resolvers, Meta's name servers are asked
//! directly with the AA check, prefixes are watched exactly, the chat
//! endpoints users' apps hold open are probed in their own protocols
//! (never a TLS handshake on WhatsApp's Noise port), every platform has an
//! essential group so that its website alone cannot decide "down", and
//! every certificate file it names exists and holds exactly the roots it
//! should. The facts themselves are sourced in docs/platforms.md.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use chatpulse::config::{Check, Config};
use chatpulse::probe::Layer;
use chatpulse::probe::chat::ChatTarget;
use sha2::{Digest, Sha256};

fn shipped() -> Config {
    Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml")).expect("the shipped config is valid")
}

/// Which layers each platform of the seed list must be watched at.
const EXPECTED: [(&str, &[Layer]); 6] = [
    ("whatsapp", &[Layer::Bgp, Layer::Dns, Layer::Chat, Layer::Http]),
    ("messenger", &[Layer::Bgp, Layer::Dns, Layer::Transport, Layer::Chat, Layer::Http]),
    ("instagram", &[Layer::Bgp, Layer::Dns, Layer::Chat, Layer::Http]),
    ("facebook", &[Layer::Bgp, Layer::Dns, Layer::Http]),
    ("signal", &[Layer::Dns, Layer::Transport, Layer::Http]),
    ("telegram", &[Layer::Bgp, Layer::Dns, Layer::Chat, Layer::Http]),
];

#[test]
fn every_platform_is_watched_at_each_layer_that_applies() {
    let config = shipped();
    for (id, layers) in EXPECTED {
        let service = config.services.iter().find(|s| s.id == id).unwrap_or_else(|| panic!("{id} is not watched"));
        let watched: BTreeSet<Layer> = service.probes.iter().map(|p| p.check.kind().layer()).collect();
        for layer in layers {
            assert!(watched.contains(layer), "{id} has no {layer} probe");
        }
    }
    assert_eq!(config.services.len(), EXPECTED.len(), "a service without an entry in EXPECTED");
}

#[test]
fn recursive_dns_never_depends_on_one_server_and_no_two_services_share_their_resolvers() {
    let config = shipped();
    let mut sets: HashMap<Vec<String>, &str> = HashMap::new();
    for service in &config.services {
        for probe in &service.probes {
            let Check::Dns(d) = &probe.check else { continue };
            if !d.recursion {
                continue;
            }
            assert!(d.servers.len() >= 2, "{} {} asks {} server(s)", service.id, probe.id, d.servers.len());
            assert!(!d.require_all, "{} {}: one resolver down must not fail it", service.id, probe.id);
            let mut set: Vec<String> = d.servers.iter().map(|s| s.to_string()).collect();
            set.sort();
            if let Some(other) = sets.insert(set.clone(), &service.id)
                && other != service.id
            {
                panic!("{other} and {} share the resolvers {set:?}", service.id);
            }
        }
    }
}

#[test]
fn meta_name_servers_are_asked_directly_and_its_dns_prefixes_watched_exactly() {
    let config = shipped();
    let facebook = config.services.iter().find(|s| s.id == "facebook").unwrap();
    let authoritative = facebook
        .probes
        .iter()
        .find_map(|p| match &p.check {
            Check::Dns(d) if !d.recursion => Some(d),
            _ => None,
        })
        .expect("an authoritative probe");
    assert!(authoritative.authoritative, "the AA flag is checked");
    assert_eq!(authoritative.servers.len(), 4, "a-d.ns.facebook.com");
    for id in ["facebook", "whatsapp", "messenger", "instagram"] {
        let service = config.services.iter().find(|s| s.id == id).unwrap();
        let bgp: Vec<_> = service
            .probes
            .iter()
            .filter_map(|p| match &p.check {
                Check::Bgp(b) => Some(b),
                _ => None,
            })
            .collect();
        let watched: BTreeSet<String> = bgp.iter().map(|b| b.prefix.to_string()).collect();
        let both: BTreeSet<String> = ["129.134.30.0/23", "185.89.218.0/23"].map(String::from).into();
        assert_eq!(watched, both, "{id} watches both Meta name-server /23s");
        for b in bgp {
            assert!(!b.covering, "{id} {}: a covering /17 hid the 2021 withdrawal", b.prefix);
            assert_eq!(b.origins, vec![32934], "{id} {}", b.prefix);
            assert!(b.more_specifics);
        }
    }
}

#[test]
fn telegram_accepts_its_several_origins_and_asks_its_five_data_centres_in_mtproto_as_one_essential_group() {
    let config = shipped();
    let telegram = config.services.iter().find(|s| s.id == "telegram").unwrap();
    let mut data_centres = BTreeSet::new();
    for probe in &telegram.probes {
        match &probe.check {
            Check::Bgp(b) => assert!(b.origins.len() > 1 && !b.covering, "{}", b.prefix),
            Check::Mtproto(m) => {
                assert!(probe.essential, "{}: a data centre is what the app talks to", probe.id);
                assert_eq!(probe.group.as_deref(), Some("data-centres"), "{}: redundant, so one group", probe.id);
                assert_eq!(m.fingerprints, vec![chatpulse::probe::mtproto::wire::PRODUCTION_FINGERPRINT]);
                data_centres.insert(m.endpoint.address.clone());
            }
            Check::Tcp(_) => panic!("{}: a TCP connect proves nothing behind a transparent proxy", probe.id),
            _ => assert!(!probe.essential, "{}: only the data centres decide", probe.id),
        }
    }
    assert_eq!(data_centres.len(), 5, "{data_centres:?}");
}

#[test]
fn whatsapp_chat_is_probed_in_its_noise_protocol_never_with_tls() {
    let config = shipped();
    for service in &config.services {
        for probe in &service.probes {
            if let Check::Tls(t) = &probe.check {
                let host = t.endpoint.host.as_str();
                assert!(
                    !host.ends_with("whatsapp.net"),
                    "{} {}: a TLS probe on a Noise endpoint",
                    service.id,
                    probe.id
                );
            }
        }
    }
    let whatsapp = config.services.iter().find(|s| s.id == "whatsapp").unwrap();
    let essential: BTreeSet<String> = whatsapp
        .probes
        .iter()
        .filter(|p| p.essential)
        .map(|p| match &p.check {
            Check::Whatsapp(w) => {
                assert_eq!(w.root_key, chatpulse::probe::whatsapp::noise::WHATSAPP_ROOT_KEY, "{}", p.id);
                assert_eq!(p.group.as_deref(), Some("chat"), "{}", p.id);
                match &w.target {
                    ChatTarget::Tcp(e) => e.address.clone(),
                    ChatTarget::WebSocket { url, .. } => url.to_string(),
                }
            }
            _ => panic!("{}: WhatsApp's essential probes are whatsapp probes", p.id),
        })
        .collect();
    let expected: BTreeSet<String> = ["g.whatsapp.net:443", "g.whatsapp.net:5222"].map(String::from).into();
    assert_eq!(essential, expected);
}

#[test]
fn every_platform_has_an_essential_group_so_a_website_alone_cannot_take_it_down() {
    let config = shipped();
    for service in &config.services {
        let essential: Vec<_> = service.probes.iter().filter(|p| p.essential).collect();
        assert!(!essential.is_empty(), "{} has no essential probe", service.id);
        for probe in essential {
            assert!(
                !matches!(probe.check.kind().layer(), Layer::Bgp | Layer::Dns),
                "{} {}: a plumbing probe never decides down by itself",
                service.id,
                probe.id
            );
        }
    }
}

/// SHA-256 of each certificate in a PEM file, as `AA:BB:…`.
fn fingerprints(file: &Path) -> BTreeSet<String> {
    chatpulse::certs::read(file)
        .expect("the CA file parses")
        .iter()
        .map(|der| Sha256::digest(der.as_ref()).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":"))
        .collect()
}

#[test]
fn signal_is_verified_against_exactly_the_two_roots_libsignal_pins_and_must_show_its_own_header() {
    let config = shipped();
    let signal = config.services.iter().find(|s| s.id == "signal").unwrap();
    let pinned: BTreeSet<String> = [
        "DD:B0:F9:2B:B9:5C:8D:6F:D2:02:EA:6E:8C:C5:CC:D1:82:B5:44:F8:CD:69:6F:47:D5:80:65:9D:DC:9D:F6:5A",
        "26:42:F1:F9:0B:38:9F:ED:25:58:D7:32:4C:A2:6D:70:E7:50:B0:6F:87:C5:95:C5:DE:95:5E:25:60:82:16:57",
    ]
    .map(String::from)
    .into();
    let mut hosts = BTreeSet::new();
    for probe in signal.probes.iter().filter(|p| p.essential) {
        let Check::Http(h) = &probe.check else { panic!("{}: Signal's chat is judged over HTTP", probe.id) };
        let file = h.ca_file.as_ref().expect("pinned to Signal's roots");
        assert_eq!(fingerprints(file), pinned, "{}: exactly the two pinned roots", probe.id);
        assert!(!h.system_roots, "{}: a public CA must not vouch for Signal", probe.id);
        assert!(h.expect_headers.iter().any(|n| n == "x-signal-timestamp"), "{}", probe.id);
        hosts.insert(reqwest::Url::parse(&h.url).unwrap().host_str().unwrap().to_string());
    }
    let expected: BTreeSet<String> = ["chat.signal.org", "grpc.chat.signal.org"].map(String::from).into();
    assert_eq!(hosts, expected);
}

#[test]
fn certificates_named_exist_and_expiry_warnings_sit_on_non_essential_probes() {
    let config = shipped();
    for service in &config.services {
        for probe in &service.probes {
            let (ca_file, min_cert_days) = match &probe.check {
                Check::Tls(t) => (&t.ca_file, t.min_cert_days),
                Check::Http(h) => (&h.ca_file, h.min_cert_days),
                _ => continue,
            };
            if let Some(file) = ca_file {
                assert!(!fingerprints(file).is_empty(), "{} {}", service.id, probe.id);
            }
            if min_cert_days.is_some() {
                assert!(!probe.essential, "{} {}: min_cert_days on an essential probe", service.id, probe.id);
            }
        }
    }
    let instagram = config.services.iter().find(|s| s.id == "instagram").unwrap();
    let http = instagram.probes.iter().find(|p| matches!(p.check, Check::Http(_))).unwrap();
    let Check::Http(h) = &http.check else { unreachable!() };
    assert!(h.expect_status.iter().any(|r| r.contains(429)), "Instagram's 429 is an answer");
    assert!(http.interval >= std::time::Duration::from_secs(120));
}

#[test]
fn the_guards_take_different_paths() {
    let config = shipped();
    let kinds: BTreeSet<String> = config
        .guards
        .iter()
        .map(|g| match &g.check {
            Check::Dns(d) if d.servers.is_empty() => "system resolver".to_string(),
            Check::Dns(d) if !d.recursion => "root server".to_string(),
            other => other.kind().to_string(),
        })
        .collect();
    assert!(kinds.contains("system resolver") && kinds.contains("root server") && kinds.contains("http"), "{kinds:?}");
}

/// Public resolvers that answer from their cache when a zone's own servers
/// stop answering (OpenDNS's SmartCache, on by default: docs/platforms.md).
const SERVE_STALE: [&str; 4] = ["208.67.222.222", "208.67.220.220", "208.67.222.123", "208.67.220.123"];

#[test]
fn every_platform_asks_its_zones_own_servers_and_no_any_of_pair_holds_a_serve_stale_resolver() {
    let config = shipped();
    // The user-facing names whose zones (and the zones their CNAMEs lead
    // into) must be asked at their own servers, per platform.
    let expected: [(&str, &[&str]); 6] = [
        ("facebook", &["www.facebook.com"]),
        ("whatsapp", &["web.whatsapp.com", "g.whatsapp.net"]),
        ("messenger", &["www.messenger.com"]),
        ("instagram", &["www.instagram.com"]),
        ("signal", &["chat.signal.org"]),
        ("telegram", &["telegram.org"]),
    ];
    for (id, names) in expected {
        let service = config.services.iter().find(|s| s.id == id).unwrap();
        let delegated: BTreeSet<&str> = service
            .probes
            .iter()
            .filter_map(|p| match &p.check {
                Check::Dns(d) if d.delegation.is_some() => {
                    assert!(!d.recursion && d.authoritative, "{id} {}: asked directly, AA required", p.id);
                    Some(d.query.as_str())
                }
                _ => None,
            })
            .collect();
        for name in names {
            assert!(delegated.contains(name), "{id}: no delegation probe for {name}");
        }
        for probe in &service.probes {
            let Check::Dns(d) = &probe.check else { continue };
            if d.delegation.is_none() && !d.require_all && d.servers.len() > 1 {
                for server in &d.servers {
                    let text = server.to_string();
                    assert!(
                        !SERVE_STALE.iter().any(|stale| text.starts_with(&format!("{stale}:"))),
                        "{id} {}: {text} serves stale answers, so any-of hides the zone failing",
                        probe.id
                    );
                }
            }
        }
    }
}

#[test]
fn user_facing_names_must_answer_inside_the_platforms_address_space() {
    let config = shipped();
    for service in config.services.iter().filter(|s| s.id != "signal") {
        for probe in &service.probes {
            let Check::Dns(d) = &probe.check else { continue };
            if matches!(d.record, hickory_proto::rr::RecordType::A | hickory_proto::rr::RecordType::AAAA) {
                assert!(!d.expect_answer_in.is_empty(), "{} {}: no expect_answer_in", service.id, probe.id);
                assert!(d.expect_answer_in.iter().any(|p| p.is_v6()), "{} {}: IPv6 space too", service.id, probe.id);
            }
        }
    }
}
