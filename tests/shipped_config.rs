//! The shipped `config.toml`, read as an operator who knows these networks
//! would: every platform is watched at each layer that applies to it (an
//! explicit table, below), no recursive DNS probe depends on one server,
//! no two services share the same resolvers, Meta's name servers are asked
//! directly with the AA check, prefixes are watched exactly, the chat
//! endpoints users' apps hold open are probed, and every certificate file
//! it names exists and parses. The facts themselves are sourced in
//! docs/platforms.md.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use chatpulse::config::{Check, Config, Layer};

fn shipped() -> Config {
    Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml")).expect("the shipped config is valid")
}

/// Which layers each platform of the seed list must be watched at.
const EXPECTED: [(&str, &[Layer]); 6] = [
    ("whatsapp", &[Layer::Bgp, Layer::Dns, Layer::Transport, Layer::Http]),
    ("messenger", &[Layer::Bgp, Layer::Dns, Layer::Transport, Layer::Http]),
    ("instagram", &[Layer::Bgp, Layer::Dns, Layer::Http]),
    ("facebook", &[Layer::Bgp, Layer::Dns, Layer::Http]),
    ("signal", &[Layer::Dns, Layer::Transport, Layer::Http]),
    ("telegram", &[Layer::Bgp, Layer::Dns, Layer::Transport, Layer::Http]),
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
        assert!(!bgp.is_empty(), "{id} has no bgp probe");
        for b in bgp {
            assert!(!b.covering, "{id} {}: a covering /17 hid the 2021 withdrawal", b.prefix);
            assert_eq!(b.origins, vec![32934], "{id} {}", b.prefix);
            assert!(b.more_specifics);
        }
    }
}

#[test]
fn telegram_accepts_its_several_origins_and_probes_its_data_centres() {
    let config = shipped();
    let telegram = config.services.iter().find(|s| s.id == "telegram").unwrap();
    let mut data_centres = 0;
    for probe in &telegram.probes {
        match &probe.check {
            Check::Bgp(b) => assert!(b.origins.len() > 1 && !b.covering, "{}", b.prefix),
            Check::Tcp(_) => data_centres += 1,
            _ => {}
        }
    }
    assert_eq!(data_centres, 5);
    assert!(telegram.probes.iter().all(|p| !p.essential), "redundant endpoints are not essential");
}

#[test]
fn certificates_named_exist_and_expiry_warnings_sit_on_non_essential_probes() {
    let config = shipped();
    let mut signal_ca = false;
    for service in &config.services {
        for probe in &service.probes {
            if let Check::Tls(t) = &probe.check {
                if let Some(file) = &t.ca_file {
                    let roots = chatpulse::certs::read(file).expect("the CA file parses");
                    assert!(!roots.is_empty());
                    signal_ca |= service.id == "signal";
                }
                if t.min_cert_days.is_some() {
                    assert!(!probe.essential, "{} {}: min_cert_days on an essential probe", service.id, probe.id);
                }
            }
        }
    }
    assert!(signal_ca, "Signal's chat service is verified against Signal's own CA");
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
