//! knotd instances on loopback for integration tests: start, silence (SIGSTOP), reload zones, count queries.
//!
//! Every instance gets its own config, zone files, rundir and storage in a temporary directory, listens on
//! one address (e.g. `127.0.1.1:53`, any 127.0.0.0/8 address works on Linux's `lo`) and is killed by its
//! PID on drop. Zone texts are plain zone files; each must carry a SOA (on one line, so that `set_zone`
//! can read its serial) and NS records.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};

/// How long `start` and `set_zone` wait for the zone to be served.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// One knotd instance serving `zones` (origin, zone text) on `addr` (e.g. 127.0.0.11:53); killed (by PID) on drop.
pub struct Knot {
    /// Where it listens (UDP and TCP).
    pub addr: SocketAddr,
    child: Mutex<Child>,
    pid: u32,
    dir: tempfile::TempDir,
}

fn binary(name: &str) -> String {
    let sbin = format!("/usr/sbin/{name}");
    if Path::new(&sbin).exists() { sbin } else { name.to_string() }
}

fn fqdn(origin: &str) -> String {
    if origin.ends_with('.') { origin.to_string() } else { format!("{origin}.") }
}

fn zone_file(dir: &Path, origin: &str) -> PathBuf {
    let origin = fqdn(origin);
    let stem = if origin == "." { "root".to_string() } else { origin.trim_end_matches('.').to_string() };
    dir.join(format!("{stem}.zone"))
}

/// The SOA serial in a zone text (the SOA on one line: `owner [ttl] [IN] SOA mname rname serial …`).
fn serial_of(text: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| w.eq_ignore_ascii_case("SOA"))?;
        words.get(at + 3)?.parse().ok()
    })
}

impl Knot {
    /// Starts knotd on `addr` with `zones` (origin, zone text) and waits until every zone answers its SOA.
    pub fn start(addr: SocketAddr, zones: &[(&str, String)]) -> Knot {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().display().to_string();
        let mut conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: [ {}@{} ]\n    udp-workers: 1\n    tcp-workers: 1\n    \
             background-workers: 1\ndatabase:\n    storage: \"{d}\"\nlog:\n  - target: stderr\n    any: warning\n\
             mod-stats:\n  - id: stats\ntemplate:\n  - id: default\n    global-module: mod-stats/stats\nzone:\n",
            addr.ip(),
            addr.port()
        );
        for (origin, text) in zones {
            let file = zone_file(dir.path(), origin);
            std::fs::write(&file, text).expect("write zone file");
            let _ = write!(
                conf,
                "  - domain: \"{}\"\n    file: \"{}\"\n    zonefile-sync: -1\n    zonefile-load: whole\n    \
                 journal-content: none\n",
                fqdn(origin),
                file.display()
            );
        }
        let conf_path = dir.path().join("knot.conf");
        std::fs::write(&conf_path, conf).expect("write knot.conf");
        let log = std::fs::File::create(dir.path().join("knotd.log")).expect("log file");
        let child = Command::new(binary("knotd"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn knotd (apt-get install knot)");
        let pid = child.id();
        let knot = Knot { addr, child: Mutex::new(child), pid, dir };
        for (origin, text) in zones {
            knot.wait_served(origin, serial_of(text));
        }
        knot
    }

    /// The knotd process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// knotd's log so far (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knotd.log")).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(sig).arg(self.pid().to_string()).status().is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {} failed", self.pid());
    }

    /// SIGSTOP: the server stays bound but answers nothing (queries queue up in the kernel until `resume`).
    /// Returns once every thread of knotd is stopped.
    pub fn stop_answering(&self) {
        self.signal("-STOP");
        self.wait_threads(true);
    }

    /// SIGCONT: answers again (including the queries that queued up while stopped). Returns once no thread of
    /// knotd is stopped.
    pub fn resume(&self) {
        self.signal("-CONT");
        self.wait_threads(false);
    }

    /// Waits until all threads are (`stopped`) or none is (`!stopped`) in state T, per /proc/PID/task/*/stat.
    fn wait_threads(&self, stopped: bool) {
        let until = Instant::now() + READY_TIMEOUT;
        loop {
            let states: Vec<bool> = std::fs::read_dir(format!("/proc/{}/task", self.pid))
                .map(|dir| {
                    dir.flatten()
                        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
                        .filter_map(|stat| stat.rsplit_once(") ").map(|(_, rest)| rest.starts_with('T')))
                        .collect()
                })
                .unwrap_or_default();
            if !states.is_empty() && states.iter().all(|&t| t == stopped) {
                return;
            }
            assert!(Instant::now() < until, "knotd {} did not {}", self.pid, if stopped { "stop" } else { "resume" });
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Rewrites the zone file of `origin` and `knotc zone-reload`s it; waits until the new SOA serial is served
    /// (bump the serial in `text`).
    pub fn set_zone(&self, origin: &str, text: String) {
        std::fs::write(zone_file(self.dir.path(), origin), &text).expect("write zone file");
        let out = self.knotc(&["-b", "zone-reload", &fqdn(origin)]);
        assert!(out.contains("OK"), "knotc zone-reload {origin}: {out}\n{}", self.log());
        self.wait_served(origin, serial_of(&text));
    }

    /// Queries received so far (knot's mod-stats `request-protocol` counters, UDP and TCP). Do not call while
    /// stopped (knotc would wait for the control socket).
    pub fn queries(&self) -> u64 {
        self.knotc(&["stats", "mod-stats.request-protocol"])
            .lines()
            .filter_map(|l| l.rsplit_once(" = ").and_then(|(_, v)| v.trim().parse::<u64>().ok()))
            .sum()
    }

    fn knotc(&self, args: &[&str]) -> String {
        let out = Command::new(binary("knotc"))
            .arg("-c")
            .arg(self.dir.path().join("knot.conf"))
            .args(["-t", "5"])
            .args(args)
            .output()
            .expect("run knotc");
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    fn wait_served(&self, origin: &str, serial: Option<u32>) {
        let until = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.lock().unwrap_or_else(|e| e.into_inner()).try_wait() {
                panic!("knotd on {} exited ({status}):\n{}", self.addr, self.log());
            }
            if let Some(got) = soa_serial(self.addr, origin)
                && serial.is_none_or(|s| s == got)
            {
                return;
            }
            assert!(Instant::now() < until, "knotd on {} does not serve {origin}:\n{}", self.addr, self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        // A stopped process must be continued to die cleanly; then SIGKILL by PID and reap it.
        let _ = Command::new("kill").arg("-CONT").arg(self.pid.to_string()).status();
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The SOA serial `addr` serves (authoritatively) for `origin`, asked once over UDP with a 300 ms timeout.
pub fn soa_serial(addr: SocketAddr, origin: &str) -> Option<u32> {
    let name = Name::from_ascii(fqdn(origin)).ok()?;
    let id = u16::try_from(std::process::id() & 0xffff).unwrap_or(7);
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(name.clone(), RecordType::SOA));
    let wire = msg.to_vec().ok()?;
    let local: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().ok()?;
    let sock = UdpSocket::bind(local).ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(300))).ok()?;
    sock.connect(addr).ok()?;
    sock.send(&wire).ok()?;
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).ok()?;
    let reply = Message::from_vec(&buf[..n]).ok()?;
    if reply.metadata.id != id || !reply.metadata.authoritative {
        return None;
    }
    reply.answers.iter().find_map(|r| match &r.data {
        RData::SOA(soa) if r.name == name => Some(soa.serial),
        _ => None,
    })
}

/// Whether this process may bind 127.0.x.x:53 (root) — tests skip with a message otherwise.
pub fn can_bind_port_53() -> bool {
    UdpSocket::bind("127.0.1.254:53").is_ok()
}

/// Whether knotd and knotc are installed.
pub fn knot_installed() -> bool {
    Command::new(binary("knotd")).arg("--version").output().is_ok_and(|o| o.status.success())
        && Command::new(binary("knotc")).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Why the knot tests cannot run here (printed by tests that then return early), or None.
pub fn skip_reason() -> Option<&'static str> {
    if !knot_installed() {
        Some("skipped: knotd/knotc not installed (apt-get install -y --no-install-recommends knot)")
    } else if !can_bind_port_53() {
        Some("skipped: cannot bind 127.0.1.254:53 (needs root or CAP_NET_BIND_SERVICE)")
    } else {
        None
    }
}

/// `ip:53`.
pub fn at53(ip: Ipv4Addr) -> SocketAddr {
    SocketAddr::new(ip.into(), 53)
}

/// Root zone: `a.root-servers.net.` on `root`, delegating `test.` to `ns.test.` (glue `tld`). `extra` is appended.
pub fn root_zone(root: Ipv4Addr, tld: Ipv4Addr, extra: &str) -> String {
    format!(
        "$TTL 3600\n\
         . SOA a.root-servers.net. hostmaster.root-servers.net. 1 3600 600 86400 60\n\
         . NS a.root-servers.net.\n\
         a.root-servers.net. A {root}\n\
         test. NS ns.test.\n\
         ns.test. A {tld}\n\
         {extra}"
    )
}

/// TLD zone `test.` on `tld`, delegating `chat.test.` to `ns1.chat.test.`/`ns2.chat.test.` (glue `zone[0]`,
/// `zone[1]`) unless `delegate` is false. `extra` is appended.
pub fn tld_zone(tld: Ipv4Addr, zone: [Ipv4Addr; 2], delegate: bool, serial: u32, extra: &str) -> String {
    let mut z = format!(
        "$TTL 3600\n\
         test. SOA ns.test. hostmaster.test. {serial} 3600 600 86400 60\n\
         test. NS ns.test.\n\
         ns.test. A {tld}\n"
    );
    if delegate {
        let _ = write!(
            z,
            "chat.test. NS ns1.chat.test.\nchat.test. NS ns2.chat.test.\n\
             ns1.chat.test. A {}\nns2.chat.test. A {}\n",
            zone[0], zone[1]
        );
    }
    z + extra
}

/// Zone `chat.test.` with its servers `ns1`/`ns2` at `zone[0]`/`zone[1]` and `www.chat.test. A 192.0.2.10`.
pub fn chat_zone(zone: [Ipv4Addr; 2]) -> String {
    format!(
        "$TTL 300\n\
         chat.test. SOA ns1.chat.test. hostmaster.chat.test. 1 3600 600 86400 60\n\
         chat.test. NS ns1.chat.test.\n\
         chat.test. NS ns2.chat.test.\n\
         ns1.chat.test. A {}\n\
         ns2.chat.test. A {}\n\
         www.chat.test. A 192.0.2.10\n",
        zone[0], zone[1]
    )
}

/// A whole test hierarchy: root on `ips[0]`, `test.` on `ips[1]`, `chat.test.` on `ips[2]` and `ips[3]`.
pub struct Hierarchy {
    /// The root server (`a.root-servers.net.`).
    pub root: Knot,
    /// The `test.` server (`ns.test.`).
    pub tld: Knot,
    /// The two `chat.test.` servers (`ns1.chat.test.`, `ns2.chat.test.`).
    pub zone: [Knot; 2],
    /// The addresses, as given.
    pub ips: [Ipv4Addr; 4],
}

impl Hierarchy {
    /// The root server address, for `Delegations::new`.
    pub fn roots(&self) -> Vec<SocketAddr> {
        vec![self.root.addr]
    }

    /// Queries received so far by root, tld, ns1, ns2.
    pub fn queries(&self) -> [u64; 4] {
        [self.root.queries(), self.tld.queries(), self.zone[0].queries(), self.zone[1].queries()]
    }
}

/// Writes and starts the hierarchy root → `test.` → `chat.test.` (two servers), with glue at every cut.
pub fn hierarchy(ips: [Ipv4Addr; 4]) -> Hierarchy {
    let z = [ips[2], ips[3]];
    Hierarchy {
        root: Knot::start(at53(ips[0]), &[(".", root_zone(ips[0], ips[1], ""))]),
        tld: Knot::start(at53(ips[1]), &[("test.", tld_zone(ips[1], z, true, 1, ""))]),
        zone: [
            Knot::start(at53(z[0]), &[("chat.test.", chat_zone(z))]),
            Knot::start(at53(z[1]), &[("chat.test.", chat_zone(z))]),
        ],
        ips,
    }
}
