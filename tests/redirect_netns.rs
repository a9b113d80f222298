//! The redirect policy of http probes, where a public-looking target can
//! exist without leaving the machine: a network namespace made by the test
//! with only `lo` up and 192.0.2.80 (TEST-NET-1, not private) on it. A
//! "public" site there redirects the monitor towards loopback, private and
//! link-local addresses; each hop must be refused with `http_redirect`
//! before any connection — a trap listener on 127.0.0.2 proves nothing
//! connected — while a redirect to the same public host is followed.
//! Needs root (CI and the sessions run as root) and iproute2.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SERVER: &str = r#"
import http.server, socket, sys, threading, urllib.parse
trap_file, ready_file = sys.argv[1], sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/to":
            self.send_response(302)
            self.send_header("Location", urllib.parse.parse_qs(url.query)["u"][0])
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
trap = socket.socket()
trap.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
trap.bind(("127.0.0.2", 8081))
trap.listen(16)
def catch():
    while True:
        conn, _ = trap.accept()
        open(trap_file, "a").write("hit\n")
        conn.close()
threading.Thread(target=catch, daemon=True).start()
server = http.server.ThreadingHTTPServer(("192.0.2.80", 8080), Handler)
open(ready_file, "w").write("ready")
server.serve_forever()
"#;

/// The namespace and the server in it; both gone when dropped.
struct Namespace {
    name: String,
    server: Option<Child>,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("iproute2 is installed");
    assert!(status.success(), "ip {args:?} failed (the test needs root)");
}

impl Namespace {
    fn new() -> Namespace {
        let name = format!("cpredir{}", std::process::id());
        ip(&["netns", "add", &name]);
        let ns = Namespace { name, server: None };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ip(&["-n", &ns.name, "addr", "add", "192.0.2.80/32", "dev", "lo"]);
        ns
    }

    fn exec(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

fn probe(id: &str, url: &str) -> String {
    format!("  [[service.probe]]\n  kind = \"http\"\n  id = \"{id}\"\n  url = \"{url}\"\n  timeout = \"3s\"\n")
}

#[test]
fn redirects_from_a_public_site_to_internal_addresses_are_refused_before_connecting() {
    if !support::needs_root("create a network namespace") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (trap, ready) = (dir.path().join("trap"), dir.path().join("ready"));
    let script = dir.path().join("server.py");
    std::fs::write(&script, SERVER).unwrap();
    let mut ns = Namespace::new();
    ns.server = Some(
        ns.exec("python3").arg(&script).arg(&trap).arg(&ready).stdout(Stdio::null()).spawn().expect("python3 starts"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !Path::new(&ready).exists() {
        assert!(std::time::Instant::now() < deadline, "the server in the namespace did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let to = |target: &str| format!("http://192.0.2.80:8080/to?u={target}");
    let mut config = String::from("[[service]]\nid = \"site\"\nname = \"Site\"\n");
    for (id, url) in [
        ("to-loopback", to("http://127.0.0.2:8081/")),
        ("to-localhost", to("http://localhost:8081/")),
        ("to-private", to("http://10.0.0.1/")),
        ("to-metadata", to("http://169.254.169.254/latest/meta-data/")),
        ("to-ipv6-loopback", to("http://[::1]:8081/")),
        ("to-public", to("http://192.0.2.80:8080/ok")),
    ] {
        config.push_str(&probe(id, &url));
    }
    let config_path = dir.path().join("config.toml");
    std::fs::write(&config_path, config).unwrap();

    let mut check = ns
        .exec(env!("CARGO_BIN_EXE_chatpulse"))
        .arg("--config")
        .arg(&config_path)
        .args(["check", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while check.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = check.kill();
            panic!("check did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = check.wait_with_output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).expect("check --json prints JSON");
    let results = doc["results"].as_array().unwrap();
    let result = |id: &str| results.iter().find(|r| r["probe"] == id).expect(id).clone();
    for id in ["to-loopback", "to-localhost", "to-private", "to-metadata", "to-ipv6-loopback"] {
        let row = result(id);
        assert_eq!(row["result"], "http_redirect", "{id}: {row}");
        assert!(row["detail"].as_str().unwrap().contains("loopback, link-local or private"), "{id}: {row}");
    }
    assert_eq!(result("to-public")["result"], "ok", "{}", result("to-public"));
    assert!(!trap.exists(), "a refused redirect reached the trap listener");
}
