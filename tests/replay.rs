//! `chatpulse replay` with the real binary: a synthetic October-2021-style
//! withdrawal gives the timeline and the alert; real RIS data ends where the
//! reference dump says; unreadable input exits 2.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use support::bgp;

/// One BGP4MP_MESSAGE_AS4 record carrying `message` from `peer`.
fn mrt_record(time: u32, peer: [u8; 4], peer_as: u32, message: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&peer_as.to_be_bytes());
    body.extend_from_slice(&12654u32.to_be_bytes());
    body.extend_from_slice(&[0, 0, 0, 1]);
    body.extend_from_slice(&peer);
    body.extend_from_slice(&[193, 0, 4, 28]);
    body.extend_from_slice(message);
    let mut record = time.to_be_bytes().to_vec();
    record.extend_from_slice(&16u16.to_be_bytes());
    record.extend_from_slice(&4u16.to_be_bytes());
    record.extend_from_slice(&(body.len() as u32).to_be_bytes());
    record.extend_from_slice(&body);
    record
}

const T0: u32 = 1_633_361_000; // 2021-10-04T15:23:20Z

/// 40 peers carry Facebook's DNS prefixes; from 15:39 38 of them withdraw.
fn outage_file(dir: &Path) -> PathBuf {
    let mut data = Vec::new();
    for i in 1..=40u8 {
        let announce = bgp::announce(&["129.134.30.0/23", "185.89.218.0/23"], &[64_500 + u32::from(i), 32934]);
        data.extend(mrt_record(T0 + u32::from(i), [10, 0, 0, i], 64_500 + u32::from(i), &announce));
    }
    for i in 1..=38u8 {
        let withdraw = bgp::withdraw(&["129.134.30.0/23", "185.89.218.0/23"]);
        data.extend(mrt_record(T0 + 940 + u32::from(i), [10, 0, 0, i], 64_500 + u32::from(i), &withdraw));
    }
    let path = dir.join("updates.20211004.1530.gz");
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    gz.write_all(&data).unwrap();
    gz.finish().unwrap();
    path
}

const CONFIG: &str = r#"
[monitor]
fail_after = 2
[[service]]
id = "whatsapp"
name = "WhatsApp"
  [[service.probe]]
  kind = "bgp"
  prefix = "129.134.30.0/23"
  origin = 32934
  [[service.probe]]
  kind = "bgp"
  prefix = "185.89.218.0/23"
  origin = 32934
  [[service.probe]]
  kind = "dns"
  query = "web.whatsapp.com"
"#;

fn replay(config: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_chatpulse"))
        .arg("--config")
        .arg(config)
        .arg("replay")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn withdrawal_history_gives_the_timeline_and_the_alert_that_would_have_fired() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let file = outage_file(dir.path());
    let out = replay(&config, &["--json", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let (summary, timeline) = lines.split_last().unwrap();
    let of = |prefix: &str| timeline.iter().filter(|l| l["prefix"] == prefix).collect::<Vec<_>>();
    let a = of("129.134.30.0/23");
    assert_eq!(a.len(), 40 + 38, "one line per change");
    assert_eq!(a[39]["peers_seeing"], 40);
    assert_eq!(a[39]["state"], "ok");
    let last = a.last().unwrap();
    assert_eq!((last["peers_seeing"].as_u64(), last["peers_total"].as_u64()), (Some(2), Some(40)));
    assert_eq!(last["ratio"], 0.05);
    assert_eq!(last["state"], "bgp_invisible");
    assert_eq!(last["time"], "2021-10-04T15:39:38Z");
    for key in ["time", "prefix", "peers_seeing", "peers_total", "ratio", "state"] {
        assert!(last.get(key).is_some(), "{key} in every line");
    }
    let summary = &summary["summary"];
    assert_eq!(summary["elements"], 40 * 2 + 38 * 2);
    let alerts = summary["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["service"], "whatsapp");
    assert_eq!(alerts[0]["event"], "down");
    // fail_after = 2: each probe is DOWN on its second judgement below 50 %
    // (the 22nd withdrawal); the service is down when both are.
    assert_eq!(alerts[0]["time"], "2021-10-04T15:39:22Z");
    assert_eq!(
        alerts[0]["cause"],
        "bgp: bgp-1 bgp_invisible — 129.134.30.0/23 seen by 45% of 40 peers (origin AS32934); \
         bgp-2 bgp_invisible — 185.89.218.0/23 seen by 45% of 40 peers (origin AS32934)"
    );

    let text = replay(&config, &[file.to_str().unwrap()]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("ALERT 2021-10-04T15:39:22Z  whatsapp DOWN — bgp: bgp-1 bgp_invisible — 129.134.30.0/23"),
        "{text}"
    );
    assert!(text.contains("alerts that would have fired: 1"), "{text}");
}

#[test]
fn real_ris_updates_end_with_the_peer_set_the_reference_dump_implies() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ris");
    let prefix = "2804:14d::/40";
    // From bgpdump's text: peers announcing the prefix at the end of the file.
    let reference =
        flate2::read::GzDecoder::new(std::fs::File::open(data.join("updates.20160811.1600.gz.bgp.gz")).unwrap());
    let mut seeing = std::collections::HashSet::new();
    for line in BufReader::new(reference).lines() {
        let line = line.unwrap();
        let f: Vec<&str> = line.split('|').collect();
        match f[2] {
            "A" if f[5] == prefix => {
                seeing.insert(f[3].to_string());
            }
            "W" if f[5] == prefix => {
                seeing.remove(f[3]);
            }
            "STATE" if f[6] != "6" => {
                seeing.remove(f[3]);
            }
            _ => {}
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[bgp]\nmin_peers = 1\n[[service]]\nid = \"x\"\nname = \"X\"\n  [[service.probe]]\n  kind = \"bgp\"\n  prefix = \"{prefix}\"\n"),
    )
    .unwrap();
    let out = replay(&config, &["--json", data.join("updates.20160811.1600.gz").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().rfind(|l| l.contains(prefix) && !l.starts_with("{\"summary\"")).unwrap();
    let last: serde_json::Value = serde_json::from_str(last).unwrap();
    assert!(!seeing.is_empty());
    assert_eq!(last["peers_seeing"].as_u64(), Some(seeing.len() as u64));
}

#[test]
fn unreadable_or_garbage_input_exits_2_with_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = replay(&config, &["/nonexistent/updates.gz"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/updates.gz") && stderr.trim_end().lines().count() == 1, "{stderr}");
    // A file cut in the middle of a record.
    let mut truncated = std::fs::read(outage_file(dir.path())).unwrap();
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&truncated[..]), &mut plain).unwrap();
    plain.truncate(plain.len() - 7);
    truncated = plain;
    let cut = dir.path().join("cut.mrt");
    std::fs::write(&cut, truncated).unwrap();
    let out = replay(&config, &[cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ends inside a record"));
    // Not MRT at all (bgpdump's text output): refused, not a huge allocation.
    let text = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ris/updates.20160811.1600.gz.bgp.gz");
    let out = replay(&config, &[text.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is this an MRT file?"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_origin_switch_with_unchanged_peer_counts_is_on_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut data = Vec::new();
    for i in 1..=12u8 {
        let announce = bgp::announce(&["129.134.30.0/23"], &[64_500 + u32::from(i), 32934]);
        data.extend(mrt_record(T0 + u32::from(i), [10, 0, 0, i], 64_500 + u32::from(i), &announce));
    }
    // Peers 1-3 now hear the prefix from AS666: same number of peers
    // seeing, and enough of them (hijack_min_peers = 3) to report it.
    for i in 1..=3u8 {
        let hijack = bgp::announce(&["129.134.30.0/23"], &[64_500 + u32::from(i), 666]);
        data.extend(mrt_record(T0 + 97 + u32::from(i), [10, 0, 0, i], 64_500 + u32::from(i), &hijack));
    }
    let file = dir.path().join("hijack.mrt");
    std::fs::write(&file, data).unwrap();
    let out = replay(&config, &["--json", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let last = lines.iter().rfind(|l| l["prefix"] == "129.134.30.0/23").unwrap();
    assert_eq!((last["peers_seeing"].as_u64(), last["peers_total"].as_u64()), (Some(12), Some(12)));
    assert_eq!(last["state"], "bgp_origin_mismatch");
    assert_eq!(last["time"], "2021-10-04T15:25:00Z");
}

#[test]
fn update_files_alone_say_that_a_rib_dump_is_needed_first() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ris");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[[service]]\nid = \"x\"\nname = \"X\"\n  [[service.probe]]\n  kind = \"bgp\"\n  prefix = \"129.134.30.0/23\"\n",
    )
    .unwrap();
    let out = replay(&config, &[data.join("updates.20020722.2238.gz").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("129.134.30.0/23: 0 changes, no peer ever carried it"), "{text}");
    assert!(!text.contains("lowest visibility 100.0%"), "{text}");
    assert!(text.contains("hint:") && text.contains("RIB dump"), "{text}");
    assert!(text.contains("replayed 1 file:"), "{text}");

    // With the dump given first, an uncarried prefix is just not routed: no
    // hint to give what was given. Given in the wrong order: a warning.
    let (bview, updates) = (data.join("bview.20020722.2337.gz"), data.join("updates.20020722.2238.gz"));
    let out = replay(&config, &[bview.to_str().unwrap(), updates.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("no peer ever carried it") && !text.contains("hint:"), "{text}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("updates.20020722.2238.gz starts at 2002-07-22T22:38") && stderr.contains("oldest first"),
        "the update file is older than the dump given before it: {stderr}"
    );
    assert!(!stderr.contains("BGP feed up"), "a replay's feed is its files, no log line about it: {stderr}");
}

#[test]
fn an_unknown_state_says_it_is_too_few_peers() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ris");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[[service]]\nid = \"x\"\nname = \"X\"\n  [[service.probe]]\n  kind = \"bgp\"\n  prefix = \"2804:14d::/40\"\n",
    )
    .unwrap();
    let out = replay(&config, &[data.join("updates.20160811.1600.gz").to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().next().unwrap();
    assert!(first.ends_with("bgp_unknown (fewer than min_peers = 10 peers count)"), "{first}");
    assert!(text.lines().any(|l| l.ends_with("  ok")), "judged once ten peers count:\n{text}");
}
