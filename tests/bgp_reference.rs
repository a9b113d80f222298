//! The BGP engine against real data: for every RIS MRT file in tests/data/ris,
//! the per-prefix peer sets (peer address, origin AS) after processing the file
//! equal those derived, at test time, from the reference `bgpdump -m` output
//! beside it. Nothing is hard-coded.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use chatpulse::bgp::mrt::{Element, Reader, decompress};
use chatpulse::bgp::rib::{Denominator, Interest, PeerKey, Rib};
use chatpulse::prefix::Prefix;

type Table = HashMap<Prefix, BTreeSet<(IpAddr, Option<u32>)>>;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ris")
}

/// The origin as bgpdump prints the path: the last AS, or the only member of
/// a final `{set}`; none for a final set of several ASes or an empty path.
fn origin_of(path: &str) -> Option<u32> {
    let last = path.split_whitespace().last()?;
    match last.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
        Some(set) if !set.contains(',') => set.parse().ok(),
        Some(_) => None,
        None => last.parse().ok(),
    }
}

/// Replays the reference text: B/A lines set a route, W removes it, a STATE
/// line leaving Established (6) drops every route of that peer.
fn expected(reference: &Path) -> (Table, u64) {
    let file = std::fs::File::open(reference).unwrap();
    let text = BufReader::new(flate2::read::MultiGzDecoder::new(file));
    let mut table: Table = HashMap::new();
    let mut by_peer: HashMap<IpAddr, HashMap<Prefix, Option<u32>>> = HashMap::new();
    let mut elements = 0;
    for line in text.lines() {
        let line = line.unwrap();
        let f: Vec<&str> = line.split('|').collect();
        match f[2] {
            "A" | "B" => {
                elements += 1;
                let (peer, prefix): (IpAddr, Prefix) = (f[3].parse().unwrap(), f[5].parse().unwrap());
                by_peer.entry(peer).or_default().insert(prefix, origin_of(f[6]));
            }
            "W" => {
                elements += 1;
                let (peer, prefix): (IpAddr, Prefix) = (f[3].parse().unwrap(), f[5].parse().unwrap());
                if let Some(routes) = by_peer.get_mut(&peer) {
                    routes.remove(&prefix);
                }
            }
            "STATE" => {
                if f[6] != "6" {
                    by_peer.remove(&f[3].parse::<IpAddr>().unwrap());
                }
            }
            other => panic!("unexpected bgpdump line type {other}: {line}"),
        }
    }
    for (peer, routes) in by_peer {
        for (prefix, origin) in routes {
            table.entry(prefix).or_default().insert((peer, origin));
        }
    }
    (table, elements)
}

fn actual(mrt: &Path) -> (Table, u64) {
    let file = std::fs::File::open(mrt).unwrap();
    let mut reader = Reader::new(decompress(file).unwrap());
    let mut rib = Rib::new(Interest::All, Denominator::Carriers);
    let key = |ip| PeerKey { collector: String::new(), ip };
    reader
        .for_each(&mut |element| match element {
            Element::Announce { peer, prefix, origin, .. } => {
                let id = rib.peer(&key(peer.ip)).expect("fewer peers than the cap");
                rib.announce(id, prefix, origin);
            }
            Element::Withdraw { peer, prefix, .. } => {
                let id = rib.peer(&key(peer.ip)).expect("fewer peers than the cap");
                rib.withdraw(id, prefix);
            }
            Element::State { peer, new, .. } => {
                if new != 6 {
                    let id = rib.peer(&key(peer.ip)).expect("fewer peers than the cap");
                    rib.peer_down(id);
                }
            }
        })
        .unwrap();
    let mut table: Table = HashMap::new();
    for prefix in rib.prefixes() {
        let set = rib.routes_to(prefix).iter().map(|(peer, origin)| (rib.peer_key(*peer).ip, *origin)).collect();
        table.insert(*prefix, set);
    }
    (table, reader.stats.elements)
}

#[test]
fn engine_state_after_each_ris_file_matches_bgpdump() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gz") && !p.to_string_lossy().ends_with(".bgp.gz"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "expected the RIS sample files in {}", data_dir().display());
    for mrt in files {
        let reference = PathBuf::from(format!("{}.bgp.gz", mrt.display()));
        let (want, want_elements) = expected(&reference);
        let (got, elements) = actual(&mrt);
        let name = mrt.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(elements, want_elements, "{name}: every announcement and withdrawal bgpdump lists is read");
        let mut prefixes: BTreeSet<&Prefix> = want.keys().collect();
        prefixes.extend(got.keys());
        let empty = BTreeSet::new();
        let mut mismatches = 0;
        for prefix in &prefixes {
            let (w, g) = (want.get(prefix).unwrap_or(&empty), got.get(prefix).unwrap_or(&empty));
            if w != g {
                if mismatches < 5 {
                    eprintln!("{name}: {prefix}: expected {w:?}, engine has {g:?}");
                }
                mismatches += 1;
            }
        }
        assert_eq!(mismatches, 0, "{name}: {mismatches} of {} prefixes differ", prefixes.len());
        eprintln!("{name}: {} prefixes, {elements} elements: identical to bgpdump", prefixes.len());
    }
}
