//! Happy Eyeballs (RFC 8305), where a broken IPv6 path can exist without
//! leaving the machine: a network namespace made by the test with only `lo`
//! up, 2001:db8::80 and 192.0.2.80 (documentation ranges) on it, and one
//! name (via the namespace's own hosts file) resolving to both — IPv6
//! first. A listener answers on both addresses, and an nftables rule drops
//! every packet to the IPv6 one: the black hole a broken IPv6 uplink makes.
//! `chatpulse check`, run inside the namespace, must reach the platform
//! over IPv4 well within the timeout and name that address; the rule's
//! counter proves IPv6 was tried first.
//! Needs root (CI and the sessions run as root), iproute2 and nftables; as
//! another user it says so and passes without running.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PORT: u16 = 8443;

const LISTENER: &str = r#"
import socket, sys, threading, time
ready = sys.argv[1]
def serve(family, address):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(address)
    s.listen(64)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=lambda c=conn: (time.sleep(5), c.close()), daemon=True).start()
threading.Thread(target=serve, args=(socket.AF_INET6, ("2001:db8::80", 8443)), daemon=True).start()
threading.Thread(target=serve, args=(socket.AF_INET, ("192.0.2.80", 8443)), daemon=True).start()
time.sleep(0.3)
open(ready, "w").write("ready")
time.sleep(120)
"#;

/// The namespace, its hosts file and the listener in it; all gone when dropped.
struct Namespace {
    name: String,
    etc: PathBuf,
    listener: Option<Child>,
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?} failed");
}

impl Namespace {
    fn new() -> Namespace {
        let name = format!("cphe{}", std::process::id());
        // `ip netns exec` bind-mounts /etc/netns/NAME/hosts over /etc/hosts.
        let etc = Path::new("/etc/netns").join(&name);
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("hosts"), "2001:db8::80 dual.test\n192.0.2.80 dual.test\n").unwrap();
        run("ip", &["netns", "add", &name]);
        let ns = Namespace { name, etc, listener: None };
        run("ip", &["-n", &ns.name, "link", "set", "lo", "up"]);
        run("ip", &["-n", &ns.name, "addr", "add", "192.0.2.80/32", "dev", "lo"]);
        run("ip", &["-n", &ns.name, "addr", "add", "2001:db8::80/128", "dev", "lo", "nodad"]);
        let rules = ns.etc.join("blackhole.nft");
        std::fs::write(
            &rules,
            format!(
                "table inet blackhole {{\n  chain out {{\n    type filter hook output priority 0;\n    ip6 daddr 2001:db8::80 tcp dport {PORT} counter drop\n  }}\n}}\n"
            ),
        )
        .unwrap();
        run("ip", &["netns", "exec", &ns.name, "nft", "-f", rules.to_str().unwrap()]);
        ns
    }

    fn exec(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Packets the drop rule has swallowed.
    fn dropped(&self) -> u64 {
        let out = self.exec("nft").args(["list", "table", "inet", "blackhole"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let after = text.split("counter packets ").nth(1).unwrap_or("0");
        after.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Some(mut listener) = self.listener.take() {
            let _ = listener.kill();
            let _ = listener.wait();
        }
        let _ = Command::new("ip").args(["netns", "delete", &self.name]).status();
        let _ = std::fs::remove_dir_all(&self.etc);
    }
}

#[test]
fn a_black_holed_ipv6_path_still_reaches_the_platform_over_ipv4_within_the_timeout() {
    if !support::needs_root("create a network namespace") {
        return;
    }
    let mut ns = Namespace::new();
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    ns.listener = Some(
        ns.exec("python3")
            .args(["-c", LISTENER, ready.to_str().unwrap()])
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 is installed"),
    );
    let until = Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        assert!(Instant::now() < until, "the listener did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let config = dir.path().join("config.toml");
    let timeout = Duration::from_secs(3);
    std::fs::write(
        &config,
        format!(
            "[[service]]\nid = \"chat\"\nname = \"Chat\"\n  [[service.probe]]\n  kind = \"tcp\"\n  id = \"port\"\n  address = \"dual.test:{PORT}\"\n  timeout = \"{}s\"\n",
            timeout.as_secs()
        ),
    )
    .unwrap();
    let out = ns
        .exec(env!("CARGO_BIN_EXE_chatpulse"))
        .args(["--config", config.to_str().unwrap(), "check", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let row = &doc["results"][0];
    assert_eq!(row["result"], "ok", "{row}");
    let detail = row["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("192.0.2.80:{PORT}")), "the detail names the address that answered: {detail}");
    let took = Duration::from_secs_f64(row["duration_ms"].as_f64().unwrap() / 1000.0);
    assert!(took >= Duration::from_millis(200), "IPv4 waited its turn (250 ms after IPv6): {took:?}");
    assert!(took < timeout / 2, "well within the timeout: {took:?}");
    assert!(ns.dropped() > 0, "IPv6 was tried first and black-holed");
}
