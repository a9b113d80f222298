//! The BGP engine against real data: for every RIS MRT file in tests/data/ris,
//! the per-prefix peer sets (peer address, origin AS) after processing the file
//! equal those derived, at test time, from the reference `bgpdump -m` output
//! beside it. Nothing is hard-coded.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use chatpulse::bgp::event::PeerKey;
use chatpulse::bgp::mrt::{Element, Reader, decompress};
use chatpulse::bgp::rib::{Denominator, Interest, Rib};
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

/// The prefix as bgpdump prints it, host bits and all (BIRD's sample holds
/// `4000::/1`: bgpdump prints the NLRI bytes unmasked; routers mask them).
fn prefix_of(text: &str) -> Prefix {
    chatpulse::bgp::seed::lenient_prefix(text).unwrap_or_else(|| panic!("not a prefix: {text}"))
}

/// Replays the reference text: B/A lines set a route, W removes it, a STATE
/// line leaving Established (6) drops every route of that peer. ADD-PATH
/// lines (`BGP4MP_AP`, `TABLE_DUMP2_AP`) carry the path id before the AS
/// path, and each path is a route of its own.
fn expected(reference: &Path) -> (Table, u64) {
    let file = std::fs::File::open(reference).unwrap();
    let text = BufReader::new(decompress(file).unwrap());
    let mut table: Table = HashMap::new();
    let mut by_peer: HashMap<IpAddr, HashMap<(Prefix, u32), Option<u32>>> = HashMap::new();
    let mut elements = 0;
    for line in text.lines() {
        let line = line.unwrap();
        let f: Vec<&str> = line.split('|').collect();
        let add_path = f[0].ends_with("_AP");
        let path_id = |f: &[&str]| if add_path { f[6].parse::<u32>().unwrap() } else { 0 };
        match f[2] {
            "A" | "B" => {
                elements += 1;
                let (peer, prefix): (IpAddr, Prefix) = (f[3].parse().unwrap(), prefix_of(f[5]));
                let path = if add_path { f[7] } else { f[6] };
                by_peer.entry(peer).or_default().insert((prefix, path_id(&f)), origin_of(path));
            }
            "W" => {
                elements += 1;
                let (peer, prefix): (IpAddr, Prefix) = (f[3].parse().unwrap(), prefix_of(f[5]));
                if let Some(routes) = by_peer.get_mut(&peer) {
                    routes.remove(&(prefix, path_id(&f)));
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
        for ((prefix, _), origin) in routes {
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
            Element::Announce { peer, prefix, path_id, origin, .. } => {
                let id = rib.peer(&key(peer.ip)).expect("fewer peers than the cap");
                rib.announce_path(id, path_id, prefix, origin);
            }
            Element::Withdraw { peer, prefix, path_id, .. } => {
                let id = rib.peer(&key(peer.ip)).expect("fewer peers than the cap");
                rib.withdraw_path(id, path_id, prefix);
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
        let set = rib.routes_to(prefix).iter().map(|r| (rib.peer_key(r.peer).ip, r.origin)).collect();
        table.insert(*prefix, set);
    }
    (table, reader.stats.elements)
}

/// Samples whose UPDATEs carry ADD-PATH NLRI (a 4-byte path id before each
/// prefix) under BGP4MP_MESSAGE_AS4, a subtype without ADD-PATH: BIRD wrote
/// them so. bgpdump decodes the path ids as prefixes (its output lists
/// 0.0.0.0/0 and 24.0.0.0/1 where the routes are 172.17.0.0/24); chatpulse
/// refuses those UPDATEs as malformed. Neither is a reference for the other:
/// these files are checked only to be refused without harm.
const MISLABELLED_ADD_PATH: [&str; 2] = ["bird6_bgp", "bird_bgp"];

/// Compares the engine with bgpdump on every MRT file of `dir` whose
/// reference is `FILE` + `suffix`; returns how many files were compared.
fn compare_dir(dir: &Path, suffix: &str) -> usize {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| PathBuf::from(format!("{}{suffix}", p.display())).exists())
        .filter(|p| !MISLABELLED_ADD_PATH.iter().any(|m| p.file_name().is_some_and(|n| n == *m)))
        .collect();
    files.sort();
    for mrt in &files {
        let reference = PathBuf::from(format!("{}{suffix}", mrt.display()));
        let (want, want_elements) = expected(&reference);
        let (got, elements) = actual(mrt);
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
    files.len()
}

/// TABLE_DUMP (v1) and TABLE_DUMP_V2 RIB dumps, BGP4MP with and without
/// ADD-PATH, IPv4 and IPv6, from BIRD, OpenBGPD and Quagga
/// (tests/data/mrt-samples/README.md).
#[test]
fn engine_state_after_each_router_sample_matches_bgpdump() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mrt-samples");
    assert!(compare_dir(&dir, ".bgp") >= 8, "expected the router samples in {}", dir.display());
    for name in MISLABELLED_ADD_PATH {
        let file = std::fs::File::open(dir.join(name)).unwrap();
        let mut reader = Reader::new(decompress(file).unwrap());
        let stats = reader.for_each(&mut |_| {}).expect("a malformed UPDATE is skipped, not fatal");
        assert_eq!((stats.elements, stats.malformed), (0, 6), "{name}: every mislabelled UPDATE refused");
    }
}

/// A TABLE_DUMP_V2 RIB dump (IPv4 and IPv6, a 4-byte-AS peer) and the
/// BGP4MP updates gobgpd wrote after learning routes from two real
/// neighbours (tests/data/gobgpd/make.sh).
#[test]
fn engine_state_after_the_gobgpd_dumps_matches_bgpdump() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/gobgpd");
    assert_eq!(compare_dir(&dir, ".bgp"), 2, "expected gobgpd_rib and gobgpd_updates in {}", dir.display());
}

#[test]
fn engine_state_after_each_ris_file_matches_bgpdump() {
    assert!(compare_dir(&data_dir(), ".bgp.gz") >= 4, "expected the RIS sample files in {}", data_dir().display());
}

/// Rewrites every BGP4MP record (type 16) of an uncompressed MRT stream as
/// BGP4MP_ET (type 17): the same body after a 4-byte microsecond field, as
/// collectors write since 2019.
fn with_extended_timestamps(mrt: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(mrt.len() * 11 / 10);
    let mut at = 0;
    while at + 12 <= mrt.len() {
        let len = u32::from_be_bytes([mrt[at + 8], mrt[at + 9], mrt[at + 10], mrt[at + 11]]) as usize;
        let (header, body) = (&mrt[at..at + 12], &mrt[at + 12..at + 12 + len]);
        if u16::from_be_bytes([header[4], header[5]]) == 16 {
            out.extend_from_slice(&header[..4]);
            out.extend_from_slice(&17u16.to_be_bytes());
            out.extend_from_slice(&header[6..8]);
            out.extend_from_slice(&(len as u32 + 4).to_be_bytes());
            out.extend_from_slice(&123_456u32.to_be_bytes());
        } else {
            out.extend_from_slice(header);
        }
        out.extend_from_slice(body);
        at += 12 + len;
    }
    out
}

/// BGP4MP_ET: the RIS update file and gobgpd's updates, rewritten with
/// extended timestamps, give the engine exactly the state bgpdump's output
/// of the originals implies.
#[test]
fn extended_timestamp_records_read_like_the_originals() {
    let dir = tempfile::tempdir().unwrap();
    for original in [data_dir().join("updates.20160811.1600.gz"), data_dir().join("../gobgpd/gobgpd_updates")] {
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut decompress(std::fs::File::open(&original).unwrap()).unwrap(), &mut raw)
            .unwrap();
        let et = dir.path().join("et.mrt");
        std::fs::write(&et, with_extended_timestamps(&raw)).unwrap();
        let reference = if original.extension().is_some_and(|e| e == "gz") {
            PathBuf::from(format!("{}.bgp.gz", original.display()))
        } else {
            PathBuf::from(format!("{}.bgp", original.display()))
        };
        let (want, want_elements) = expected(&reference);
        let (got, elements) = actual(&et);
        assert_eq!(elements, want_elements, "{}", original.display());
        assert!(want == got, "{}: the engine's state differs from the reference", original.display());
    }
}
