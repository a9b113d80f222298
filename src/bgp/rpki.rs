//! RPKI route-origin validation (RFC 6811) against VRPs read from a file
//! (`[bgp] rpki`, README "BGP visibility"): tells a hijack from a
//! legitimate new origin without a hand-kept origin list.
//!
//! Two JSON exports are read, both an object whose `roas` array holds
//! `{"asn", "prefix", "maxLength"}`: rpki-client's `-j` output (`"asn":
//! 13335`, the format string in rpki-client 8.2's output code) and
//! Routinator's `json`/`jsonext` (`"asn": "AS13335"`). Anything else in the
//! file is ignored. The file is polled and re-read when it changes; one
//! that does not parse is reported and the VRPs read before stay in force.
//!
//! The input is not trusted: only a regular file is read (a FIFO or a
//! device such as `/dev/zero` is refused with one log line, never opened
//! in a way that blocks), with a hard cap applied while reading, not from
//! the size the file claims; VRPs that no trust anchor issues — a prefix
//! shorter than /8 (IPv4) or /16 (IPv6), other than AS 0 — are ignored and
//! counted, so one `0.0.0.0/0 maxLength 32 AS666` cannot make every watched
//! prefix RPKI-invalid; a file missing at start is a warning, and RPKI
//! starts when it appears.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::wire::Origin;
use crate::prefix::Prefix;

/// How often the VRP file is looked at for a change.
const POLL: Duration = Duration::from_secs(2);

/// Largest VRP file read (a full export is about 60 MB of JSON today).
const MAX_FILE: u64 = 512 << 20;

/// A route's RPKI state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// A VRP covers the prefix and matches its origin and length.
    Valid,
    /// VRPs cover the prefix, none matches.
    Invalid,
    /// No VRP covers the prefix.
    NotFound,
}

/// Why a VRP file could not be used (the VRPs read before stay in force).
#[derive(Debug, thiserror::Error)]
pub enum RpkiError {
    /// The file cannot be read.
    #[error("cannot read it: {0}")]
    Read(#[from] std::io::Error),
    /// The file is larger than any export.
    #[error("larger than {} MiB", MAX_FILE >> 20)]
    TooLarge,
    /// A FIFO, a device, a directory: not an export.
    #[error("not a regular file (a FIFO, a device or a directory): not read")]
    NotRegular,
    /// Not an export with a `roas` array.
    #[error("not a VRP export with \"roas\": {0}")]
    NotAnExport(serde_json::Error),
    /// One entry is wrong.
    #[error("roas[{index}]: {why}")]
    BadEntry {
        /// Its position in `roas`.
        index: usize,
        /// What is wrong with it.
        why: String,
    },
}

/// Validated ROA payloads, indexed by prefix.
#[derive(Debug, Default)]
pub struct Vrps {
    /// Per VRP prefix: (max length, AS) pairs.
    by_prefix: HashMap<Prefix, Vec<(u8, u32)>>,
    count: usize,
    /// VRPs ignored because no trust anchor issues them.
    ignored: usize,
}

/// Shortest VRP prefix a trust anchor issues (for any AS but 0): no RIR
/// holds less specific space than a /8 of IPv4 or a /16 of IPv6.
fn issuable(prefix: &Prefix, asn: u32) -> bool {
    asn == 0 || prefix.length() >= if prefix.is_v6() { 16 } else { 8 }
}

#[derive(Deserialize)]
struct File {
    roas: Vec<Roa>,
}

#[derive(Deserialize)]
struct Roa {
    asn: Asn,
    prefix: String,
    #[serde(rename = "maxLength")]
    max_length: u8,
}

/// `13335` (rpki-client) or `"AS13335"` (Routinator).
#[derive(Deserialize)]
#[serde(untagged)]
enum Asn {
    Number(u32),
    Text(String),
}

impl Asn {
    fn value(&self) -> Option<u32> {
        match self {
            Asn::Number(n) => Some(*n),
            Asn::Text(t) => t.strip_prefix("AS").or(t.strip_prefix("as")).unwrap_or(t).parse().ok(),
        }
    }
}

impl Vrps {
    /// Reads an rpki-client `-j` or Routinator `jsonext` document.
    pub fn parse(json: &[u8]) -> Result<Vrps, RpkiError> {
        let file: File = serde_json::from_slice(json).map_err(RpkiError::NotAnExport)?;
        let mut vrps = Vrps::default();
        for (i, roa) in file.roas.iter().enumerate() {
            let bad = |why: &str| RpkiError::BadEntry { index: i, why: why.to_string() };
            let prefix: Prefix = roa.prefix.parse().map_err(|e| bad(&format!("{e}")))?;
            let asn = roa.asn.value().ok_or_else(|| bad("\"asn\" is not an AS number"))?;
            let longest = if prefix.is_v6() { 128 } else { 32 };
            if roa.max_length < prefix.length() || roa.max_length > longest {
                return Err(bad(&format!("maxLength {} does not fit {prefix}", roa.max_length)));
            }
            if !issuable(&prefix, asn) {
                vrps.ignored += 1;
                continue;
            }
            vrps.by_prefix.entry(prefix).or_default().push((roa.max_length, asn));
            vrps.count += 1;
        }
        Ok(vrps)
    }

    /// How many VRPs there are.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many VRPs were ignored as ones no trust anchor issues.
    pub fn ignored(&self) -> usize {
        self.ignored
    }

    /// The RFC 6811 state of a route to `prefix` from `origin` (an origin
    /// hidden in an AS_SET matches no VRP).
    pub fn validate(&self, prefix: Prefix, origin: Origin) -> Validity {
        let mut covered = false;
        for length in (0..=prefix.length()).rev() {
            let Some(vrp_prefix) = Prefix::new(prefix.addr(), length) else { continue };
            let Some(entries) = self.by_prefix.get(&vrp_prefix) else { continue };
            covered = true;
            if entries.iter().any(|(max, asn)| origin == Some(*asn) && *asn != 0 && prefix.length() <= *max) {
                return Validity::Valid;
            }
        }
        if covered { Validity::Invalid } else { Validity::NotFound }
    }
}

/// Reads a VRP file: its VRPs, or why not, without the path (`replay`
/// reads it once; [`watch`] names the file in its log line).
pub fn read(path: &std::path::Path) -> Result<Vrps, RpkiError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    if !std::fs::metadata(path)?.is_file() {
        return Err(RpkiError::NotRegular);
    }
    // Non-blocking, so a FIFO swapped in after the check cannot hang the
    // open; the descriptor itself is checked again.
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(RpkiError::NotRegular);
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(RpkiError::TooLarge);
    }
    Vrps::parse(&bytes)
}

/// Watches `path`, sending the VRPs to the engine at start and whenever
/// the file changes (size or modification time); runs until the engine is
/// gone.
pub async fn watch(path: PathBuf, engine: mpsc::Sender<Arc<Vrps>>) {
    let mut seen: Option<(SystemTime, u64)> = None;
    if std::fs::metadata(&path).is_err() {
        warn!("RPKI: {} does not exist (yet): running without RPKI until it appears", path.display());
    }
    loop {
        let stamp = std::fs::metadata(&path).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        if stamp != seen {
            seen = stamp;
            let file = path.clone();
            match tokio::task::spawn_blocking(move || read(&file)).await {
                Ok(Ok(vrps)) => {
                    let (count, ignored) = (vrps.len(), vrps.ignored());
                    // Logged once the engine has them: what follows the line
                    // in the feed is judged on them.
                    if engine.send(Arc::new(vrps)).await.is_err() {
                        return;
                    }
                    info!(vrps = count, file = %path.display(), "RPKI VRPs loaded");
                    if ignored > 0 {
                        warn!(
                            "RPKI: {}: {ignored} VRPs ignored: shorter than /8 (IPv4) or /16 (IPv6), which no trust anchor issues",
                            path.display()
                        );
                    }
                }
                Ok(Err(why)) => warn!("RPKI: {}: {why}; the VRPs read before stay in force", path.display()),
                Err(_) => warn!("RPKI: reading the VRP file failed; the VRPs read before stay in force"),
            }
        }
        if engine.is_closed() {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    /// rpki-client 8.2 `-j` output, as its format string writes it.
    const RPKI_CLIENT: &str = r#"{
        "metadata": { "buildmachine": "x", "buildtime": "2026-12-01T00:00:00Z", "roas": 2, "vrps": 2 },
        "roas": [
            { "asn": 32934, "prefix": "129.134.30.0/23", "maxLength": 24, "ta": "arin", "expires": 1800000000 },
            { "asn": 32934, "prefix": "2a03:2880::/29", "maxLength": 48, "ta": "ripe", "expires": 1800000000 }
        ],
        "bgpsec_keys": []
    }"#;

    /// Routinator's `jsonext`.
    const ROUTINATOR: &str = r#"{
        "metadata": { "generated": 0, "generatedTime": "1970-01-01T00:00:00Z" },
        "roas": [ { "asn": "AS62041", "prefix": "149.154.160.0/20", "maxLength": 22,
                    "source": [ { "type": "roa", "uri": "rsync://x", "validity": {} } ] } ],
        "aspas": []
    }"#;

    #[test]
    fn both_exports_are_read() {
        let a = Vrps::parse(RPKI_CLIENT.as_bytes()).unwrap();
        assert_eq!(a.len(), 2);
        let b = Vrps::parse(ROUTINATOR.as_bytes()).unwrap();
        assert_eq!(b.validate(p("149.154.160.0/21"), Some(62041)), Validity::Valid);
    }

    #[test]
    fn origin_and_length_decide_validity_and_uncovered_space_is_not_found() {
        let v = Vrps::parse(RPKI_CLIENT.as_bytes()).unwrap();
        assert_eq!(v.validate(p("129.134.30.0/23"), Some(32934)), Validity::Valid);
        assert_eq!(v.validate(p("129.134.31.0/24"), Some(32934)), Validity::Valid, "within maxLength");
        assert_eq!(v.validate(p("129.134.30.0/23"), Some(666)), Validity::Invalid, "another origin");
        assert_eq!(v.validate(p("129.134.30.0/25"), Some(32934)), Validity::Invalid, "longer than maxLength");
        assert_eq!(v.validate(p("129.134.30.0/23"), None), Validity::Invalid, "an AS_SET matches nothing");
        assert_eq!(v.validate(p("129.134.0.0/17"), Some(32934)), Validity::NotFound, "a covering route");
        assert_eq!(v.validate(p("2a03:2880:f000::/36"), Some(32934)), Validity::Valid);
        assert_eq!(v.validate(p("2a03:2880:f000::/36"), Some(666)), Validity::Invalid);
    }

    #[test]
    fn vrps_no_trust_anchor_issues_are_ignored_and_counted() {
        let json = r#"{"roas": [
            {"asn": 666, "prefix": "0.0.0.0/0", "maxLength": 32},
            {"asn": 666, "prefix": "::/0", "maxLength": 128},
            {"asn": 666, "prefix": "128.0.0.0/7", "maxLength": 24},
            {"asn": 0, "prefix": "2400::/12", "maxLength": 128},
            {"asn": 32934, "prefix": "129.134.30.0/23", "maxLength": 24}
        ]}"#;
        let v = Vrps::parse(json.as_bytes()).unwrap();
        assert_eq!((v.len(), v.ignored()), (2, 3), "AS 0 is kept, the three short ones are not");
        assert_eq!(v.validate(p("129.134.30.0/23"), Some(32934)), Validity::Valid);
        assert_eq!(v.validate(p("157.240.0.0/16"), Some(32934)), Validity::NotFound, "0/0 AS666 covers nothing");
    }

    #[test]
    fn only_a_regular_file_is_read_and_never_past_the_cap() {
        assert!(matches!(read(std::path::Path::new("/dev/zero")), Err(RpkiError::NotRegular)));
        let dir = std::env::temp_dir().join(format!("chatpulse-rpki-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("vrps.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success());
        if made {
            assert!(matches!(read(&fifo), Err(RpkiError::NotRegular)), "a FIFO is refused without blocking");
        }
        assert!(matches!(read(&dir), Err(RpkiError::NotRegular)), "a directory");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_broken_export_is_refused_with_the_entry_named() {
        assert!(Vrps::parse(b"[]").unwrap_err().to_string().contains("roas"));
        let bad = r#"{"roas": [{"asn": 1, "prefix": "10.0.0.0/24", "maxLength": 16}]}"#;
        let err = Vrps::parse(bad.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("roas[0]: maxLength 16 does not fit 10.0.0.0/24"), "{err}");
    }
}
