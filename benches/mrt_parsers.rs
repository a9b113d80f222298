//! The MRT reader, measured against bgpkit-parser (BENCHMARKS.md, "MRT
//! reader choice"): both read the same uncompressed corpus of more than a
//! million route elements — the RIS RIB dump and update files of
//! tests/data/ris, decompressed and concatenated seven times — each in a
//! process of its own so its peak RSS is its own. Reported: elements read,
//! best time of three, elements per second, peak RSS (VmHWM). A third run,
//! `chatpulse+engine`, is what `replay` does: decode and apply every element
//! to the visibility engine watching four prefixes.
//!
//! Run: `cargo bench --bench mrt_parsers`.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How many times the sample files are concatenated (≈ 164,000 elements each).
const COPIES: usize = 7;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ris")
}

/// The uncompressed corpus, written once.
fn corpus() -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mrt-corpus.mrt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "gz") && !p.to_string_lossy().ends_with(".bgp.gz"))
        .collect();
    files.sort();
    let mut raw = Vec::new();
    for file in &files {
        let mut input = chatpulse::bgp::mrt::decompress(std::fs::File::open(file).unwrap()).unwrap();
        input.read_to_end(&mut raw).unwrap();
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for _ in 0..COPIES {
        out.write_all(&raw).unwrap();
    }
    out.flush().unwrap();
    path
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Reads the corpus with one parser: (elements, seconds).
fn read(which: &str, path: &Path) -> (u64, f64) {
    let file = std::io::BufReader::with_capacity(256 * 1024, std::fs::File::open(path).unwrap());
    let started = Instant::now();
    let elements = match which {
        "chatpulse" => {
            let mut reader = chatpulse::bgp::mrt::Reader::new(file);
            let stats = reader
                .for_each(&mut |e| {
                    std::hint::black_box(e);
                })
                .unwrap();
            stats.elements
        }
        "chatpulse+engine" => {
            // What `replay` does: decode and apply to the visibility engine.
            use chatpulse::bgp::event::PeerKey;
            use chatpulse::bgp::mrt::Element;
            use chatpulse::bgp::rib::{Denominator, Interest, Rib};
            let watched = ["129.134.30.0/23", "185.89.218.0/23", "149.154.160.0/20", "2804:14d::/40"]
                .iter()
                .map(|p| p.parse().unwrap())
                .collect();
            let mut rib = Rib::new(Interest::Watched(watched), Denominator::Carriers);
            let key = |ip| PeerKey { collector: String::new(), ip };
            let mut reader = chatpulse::bgp::mrt::Reader::new(file);
            let stats = reader
                .for_each(&mut |e| match e {
                    Element::Announce { peer, prefix, path_id, origin, .. } if rib.wants(&prefix) => {
                        if let Some(id) = rib.peer(&key(peer.ip)) {
                            rib.announce_path(id, path_id, prefix, origin);
                        }
                    }
                    Element::Withdraw { peer, prefix, path_id, .. } => {
                        if let Some(id) = rib.known_peer(&key(peer.ip)) {
                            rib.withdraw_path(id, path_id, prefix);
                        }
                    }
                    Element::State { peer, new, .. } if new != 6 => {
                        if let Some(id) = rib.known_peer(&key(peer.ip)) {
                            rib.peer_down(id);
                        }
                    }
                    _ => {}
                })
                .unwrap();
            std::hint::black_box(&rib);
            stats.elements
        }
        "bgpkit" => {
            let parser = bgpkit_parser::BgpkitParser::from_reader(file);
            let mut n = 0u64;
            for elem in parser.into_elem_iter() {
                std::hint::black_box(&elem);
                n += 1;
            }
            n
        }
        other => panic!("unknown parser {other}"),
    };
    (elements, started.elapsed().as_secs_f64())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        let (elements, secs) = read(&args[at + 1], Path::new(&args[at + 2]));
        println!("{elements} {secs} {}", peak_rss_kib());
        return;
    }
    let path = corpus();
    let mb = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    println!("corpus: {} ({mb:.0} MB uncompressed, tests/data/ris × {COPIES})", path.display());
    let mut rates = Vec::new();
    for which in ["chatpulse", "bgpkit", "chatpulse+engine"] {
        let (mut best, mut elements, mut rss) = (f64::MAX, 0, 0);
        for _ in 0..3 {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--child", which, path.to_str().unwrap()])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let mut f = text.split_whitespace();
            elements = f.next().and_then(|v| v.parse().ok()).unwrap_or(0);
            best = best.min(f.next().and_then(|v| v.parse().ok()).unwrap_or(f64::MAX));
            rss = rss.max(f.next().and_then(|v| v.parse().ok()).unwrap_or(0));
        }
        let rate = elements as f64 / best;
        rates.push(rate);
        println!(
            "{which:>9}: {elements} elements in {best:.3} s (best of 3) = {:.2} M elements/s, peak RSS {:.1} MiB",
            rate / 1e6,
            rss as f64 / 1024.0
        );
    }
    println!("chatpulse / bgpkit-parser speed: {:.1}x", rates[0] / rates[1]);
}
