//! Replays the fuzzers' regression corpus (`fuzz/regressions/<target>/`:
//! inputs that once crashed a decoder, and seeds) through the same entry
//! points the fuzz targets use: each must return, not panic.

use std::path::Path;

#[test]
fn every_kept_input_is_decoded_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    for (name, entry) in chatpulse::fuzzing::TARGETS {
        let dir = root.join(name);
        let Ok(files) = std::fs::read_dir(&dir) else { panic!("{} is missing", dir.display()) };
        for file in files {
            let path = file.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            entry(&data);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "the corpus is empty");
}

#[test]
fn the_targets_take_empty_and_tiny_inputs() {
    for (_, entry) in chatpulse::fuzzing::TARGETS {
        for data in [&b""[..], b"\0", b"\xff", &[0xff; 19], b"{}", b"[[service]]"] {
            entry(data);
        }
    }
}
