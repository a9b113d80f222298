//! The command line as a user meets it: `validate` on broken configs gives
//! one line naming file:line and key with exit 2; `check` exits 0/1/2.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use support::dns::{Mode, TestDns};

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn chatpulse(config: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_chatpulse"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .await
        .unwrap()
}

const SERVICE: &str = "[[service]]\nid = \"whatsapp\"\nname = \"WhatsApp\"\n  [[service.probe]]\n  kind = \"dns\"\n  query = \"web.whatsapp.com\"\n";

/// (what is broken, config text, expected line, text the message must contain)
fn broken_configs() -> Vec<(&'static str, String, usize, &'static str)> {
    vec![
        ("unknown key", format!("[monitor]\nintervall = \"30s\"\n{SERVICE}"), 2, "unknown key \"intervall\""),
        (
            "bad duration",
            format!("[monitor]\ninterval = \"30 parsecs\"\n{SERVICE}"),
            2,
            "\"interval\": \"30 parsecs\" is not a duration",
        ),
        (
            "bad record type",
            SERVICE.replace("  query = \"web.whatsapp.com\"\n", "  query = \"web.whatsapp.com\"\n  record = \"AAA\"\n"),
            7,
            "service \"whatsapp\" probe 1: \"record\": unknown record type \"AAA\"",
        ),
        ("duplicate service id", format!("{SERVICE}\n{SERVICE}"), 9, "\"id\": \"whatsapp\" is used by another service"),
        (
            "unparsable server address",
            SERVICE.replace(
                "  query = \"web.whatsapp.com\"\n",
                "  query = \"web.whatsapp.com\"\n  server = \"1.1.1.1:dns\"\n",
            ),
            7,
            "\"server\": \"1.1.1.1:dns\" is not an IP address",
        ),
        (
            "service without probes",
            "[[service]]\nid = \"signal\"\nname = \"Signal\"\n".into(),
            1,
            "service \"signal\": has no [[service.probe]]",
        ),
        ("no services", "[monitor]\nvantage = \"x\"\n".into(), 1, "no [[service]] is configured"),
        ("invalid TOML", format!("{SERVICE}\n[monitor\n"), 8, "invalid TOML"),
        ("wrong type", format!("[monitor]\nfail_after = \"three\"\n{SERVICE}"), 2, "\"fail_after\" must be an integer"),
        (
            "prefix with host bits",
            format!("{SERVICE}  [[service.probe]]\n  kind = \"bgp\"\n  prefix = \"129.134.31.0/23\"\n"),
            9,
            "has host bits set (did you mean 129.134.30.0/23?)",
        ),
        (
            "url that is not http",
            format!("{SERVICE}  [[service.probe]]\n  kind = \"http\"\n  url = \"ftp://x.org/\"\n"),
            9,
            "must be an http:// or https:// URL",
        ),
        (
            "unknown probe kind",
            format!("{SERVICE}  [[service.probe]]\n  kind = \"icmp\"\n"),
            8,
            "\"kind\": \"icmp\" is not a probe kind",
        ),
        (
            "duplicate probe id",
            format!("{SERVICE}  [[service.probe]]\n  kind = \"dns\"\n  id = \"dns-1\"\n  query = \"x.org\"\n"),
            9,
            "probe id \"dns-1\" is used twice",
        ),
        (
            "missing required key",
            "[[service]]\nid = \"a\"\nname = \"A\"\n  [[service.probe]]\n  kind = \"dns\"\n".into(),
            4,
            "missing required key \"query\"",
        ),
        (
            "visibility out of range",
            format!(
                "{SERVICE}  [[service.probe]]\n  kind = \"bgp\"\n  prefix = \"10.0.0.0/8\"\n  min_visibility = 1.5\n"
            ),
            10,
            "\"min_visibility\" must be a number from 0 to 1",
        ),
        (
            "bad smtp scheme",
            format!(
                "[alerts.email]\nsmtp = \"imap://mail.example.org\"\nfrom = \"a@example.org\"\nto = [\"b@example.org\"]\n{SERVICE}"
            ),
            2,
            "scheme \"imap\" is not one of smtp://",
        ),
        (
            "webhook to a non-http URL",
            format!("[[alerts.webhook]]\nformat = \"json\"\nurl = \"ftp://hooks.example.org/x\"\n{SERVICE}"),
            3,
            "[[alerts.webhook]] 1: \"url\": \"ftp://hooks.example.org/x\" is not an http:// or https:// URL",
        ),
        (
            "maintenance of an unknown service",
            format!("{SERVICE}[[maintenance]]\nweekly = \"sun 02:00-03:00\"\nservices = [\"whatsap\"]\n"),
            9,
            "maintenance 1: \"services\": \"whatsap\" is not a configured service",
        ),
        (
            "weekly maintenance that is not a window",
            format!("{SERVICE}[[maintenance]]\nweekly = \"sunday 2am\"\n"),
            8,
            "\"weekly\": \"sunday 2am\" is not a weekly window like \"sun 02:00-03:00\" (UTC)",
        ),
        (
            "maintenance both weekly and one-off",
            format!(
                "{SERVICE}[[maintenance]]\nstart = \"2026-12-24T02:00:00Z\"\nend = \"2026-12-24T03:00:00Z\"\nweekly = \"sun 02:00-03:00\"\n"
            ),
            10,
            "give either \"weekly\" or \"start\" and \"end\", not both",
        ),
        (
            "canary on a session",
            format!("[bgp]\nsource = \"session\"\ncanary = \"ris-beacons\"\n{SERVICE}"),
            3,
            "[bgp]: the RIS beacons canary applies to source = \"ris-live\" or \"mrt\"",
        ),
        (
            "webhook format",
            format!("[[alerts.webhook]]\nurl = \"https://hooks.example.org/x\"\nformat = \"teams\"\n{SERVICE}"),
            3,
            "\"format\": \"teams\" is not a format (expected \"json\" or \"slack\")",
        ),
        (
            "session source without its table",
            format!(
                "[bgp]\nsource = \"session\"\n{SERVICE}  [[service.probe]]\n  kind = \"bgp\"\n  prefix = \"10.0.0.0/8\"\n"
            ),
            2,
            "needs a [bgp.session] table",
        ),
        (
            "key of another kind",
            SERVICE.replace(
                "  query = \"web.whatsapp.com\"\n",
                "  query = \"web.whatsapp.com\"\n  body_contains = \"x\"\n",
            ),
            7,
            "key \"body_contains\" does not apply to a dns probe",
        ),
    ]
}

#[tokio::test]
async fn validate_rejects_each_broken_config_with_one_line_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (what, text, line, needle) in broken_configs() {
        let path = write_config(dir.path(), &text);
        let out = chatpulse(&path, &["validate"]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: exit code; stderr: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: one line expected, got: {stderr}");
        let prefix = format!("{}:{line}: ", path.display());
        assert!(stderr.starts_with(&prefix), "{what}: expected prefix {prefix:?}, got: {stderr}");
        assert!(stderr.contains(needle), "{what}: expected {needle:?} in: {stderr}");
        assert!(out.stdout.is_empty(), "{what}: nothing on stdout");
    }
}

#[tokio::test]
async fn validate_accepts_the_shipped_config_and_prints_the_plan() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let out = chatpulse(&shipped, &["validate"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    for platform in ["WhatsApp", "Messenger", "Instagram", "Facebook", "Signal", "Telegram"] {
        assert!(stdout.contains(platform), "{platform} missing from:\n{stdout}");
    }
    assert!(stdout.contains("facebook.com SOA @129.134.30.12:53"), "{stdout}");
    assert!(stdout.contains("129.134.30.0/23 AS32934"));
    assert!(stdout.contains("149.154.172.0/22 AS62041|AS211157|AS59930"), "{stdout}");
    // The chat endpoints, in their own protocols, and what decides "down".
    assert!(stdout.contains("g.whatsapp.net:5222 (WhatsApp Noise)"), "{stdout}");
    assert!(stdout.contains("149.154.167.51:443 (MTProto)"), "{stdout}");
    assert!(stdout.contains("https://chat.signal.org/v2/config"), "{stdout}");
    let dc2 = stdout.lines().find(|l| l.contains("149.154.167.51:443")).unwrap();
    assert!(dc2.contains("essential (group data-centres)"), "{dc2}");
}

#[tokio::test]
async fn missing_config_file_and_bad_arguments_exit_2_with_one_sentence() {
    let out = chatpulse(Path::new("/nonexistent/chatpulse.toml"), &["validate"]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("/nonexistent/chatpulse.toml: cannot read the config file"), "{stderr}");

    let out = chatpulse(Path::new("config.toml"), &["check", "--frobnicate"]).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--frobnicate"), "{stderr}");
}

fn check_config(dns: &TestDns) -> String {
    format!(
        "[[service]]\nid = \"chat\"\nname = \"Chat\"\n  [[service.probe]]\n  kind = \"dns\"\n  query = \"web.chat.test\"\n  server = \"{}\"\n  timeout = \"1s\"\n\n[[service]]\nid = \"other\"\nname = \"Other\"\n  [[service.probe]]\n  kind = \"dns\"\n  query = \"nope.chat.test\"\n  server = \"{}\"\n",
        dns.addr, dns.addr
    )
}

#[tokio::test]
async fn check_exits_0_when_all_pass_1_when_any_fails_2_on_bad_input() {
    let dns = TestDns::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &check_config(&dns));

    let out = chatpulse(&path, &["check", "--service", "chat"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("SERVICE") && stdout.contains("RESULT") && stdout.contains("DETAIL"), "{stdout}");
    assert!(stdout.contains("chat") && stdout.contains(" ok "), "{stdout}");

    let out = chatpulse(&path, &["check"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("dns_nxdomain"), "{stdout}");
    assert!(stdout.contains("1 of 2 probes failed"), "{stdout}");

    dns.set_mode(Mode::ServFail);
    let out = chatpulse(&path, &["check", "--service", "chat", "--json"]).await;
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["passed"], false);
    assert_eq!(doc["results"][0]["result"], "dns_servfail");
    assert_eq!(doc["results"][0]["service"], "chat");

    let out = chatpulse(&path, &["check", "--service", "nosuch"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no service \"nosuch\""));

    let bad = write_config(dir.path(), "[[service]]\nid = \"x\"\n");
    assert_eq!(chatpulse(&bad, &["check"]).await.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_problems_are_one_sentence_each_and_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let once = |out: &Output, needle: &str| {
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.matches(needle).count(), 1, "{stderr}");
        assert!(!stderr.contains("database is locked"), "{stderr}");
        stderr
    };
    // clap's own words survive: the missing argument, the similar flag.
    let config = write_config(dir.path(), SERVICE);
    once(&chatpulse(&config, &["replay"]).await, "<FILES>");
    once(&chatpulse(&config, &["check", "--servce", "x"]).await, "similar argument exists: '--service'");

    // validate refuses what run would refuse.
    let missing = write_config(dir.path(), &format!("[storage]\npath = \"/nonexistent/dir/h.db\"\n{SERVICE}"));
    once(&chatpulse(&missing, &["validate"]).await, "directory of the history store does not exist");
    once(&chatpulse(&missing, &["run"]).await, "directory of the history store does not exist");

    // Two monitors on one store: the second is refused before it does anything.
    let db = dir.path().join("h.db");
    let config = write_config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = \"{}\"\n[[service]]\nid = \"a\"\nname = \"A\"\n  [[service.probe]]\n  kind = \"dns\"\n  query = \"x.test\"\n  server = \"127.0.0.1:9\"\n  interval = \"1h\"\n",
            db.display()
        ),
    );
    let first = support::daemon::Daemon::start(dir.path(), &config, &[]).await;
    let second = tokio::time::timeout(std::time::Duration::from_secs(20), chatpulse(&config, &["run"]))
        .await
        .expect("the second run exits at once");
    once(&second, "another `chatpulse run` is using this history store");

    // A taken port: said once, not once per layer of the error.
    let taken = first.base.trim_start_matches("http://").to_string();
    let other = write_config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"{taken}\"\n[storage]\npath = \"{}\"\n{SERVICE}",
            dir.path().join("other.db").display()
        ),
    );
    let out = tokio::time::timeout(std::time::Duration::from_secs(20), chatpulse(&other, &["run"])).await.unwrap();
    once(&out, "Address already in use");
}

#[tokio::test]
async fn check_prints_guards_first_and_exits_3_when_every_guard_fails() {
    let dns = TestDns::start().await;
    let dir = tempfile::tempdir().unwrap();
    let closed = support::http::closed_port().await;
    let config = format!("[[guard]]\nkind = \"tcp\"\nid = \"egress\"\naddress = \"{closed}\"\n{}", check_config(&dns));
    let path = write_config(dir.path(), &config);
    let out = chatpulse(&path, &["check", "--service", "chat"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    let rows: Vec<&str> = stdout.lines().skip(1).take(2).collect();
    assert!(rows[0].contains("egress") && rows[0].contains("tcp_connect"), "guards first: {stdout}");
    assert!(stdout.contains("the monitor itself is offline"), "{stdout}");
    let json = chatpulse(&path, &["check", "--json"]).await;
    assert_eq!(json.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["offline"], true);
}

#[tokio::test]
async fn check_counts_a_round_it_could_not_judge_as_no_pass() {
    let dir = tempfile::tempdir().unwrap();
    // A bgp probe whose feed only `run` follows: bgp_unknown, nothing judged.
    let text = "[bgp]\nsource = \"session\"\n[bgp.session]\nlocal_as = 65010\nrouter_id = \"127.0.0.1\"\n[[bgp.session.peer]]\naddress = \"127.0.0.2\"\nremote_as = 65001\n[[service]]\nid = \"meta\"\nname = \"Meta\"\n  [[service.probe]]\n  kind = \"bgp\"\n  prefix = \"129.134.30.0/23\"\n  origin = 32934\n";
    let path = write_config(dir.path(), text);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), chatpulse(&path, &["check"])).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("bgp_unknown") && stdout.contains("no probe could be judged (1 of 1)"), "{stdout}");
    assert!(stdout.contains("meta: unknown"), "{stdout}");
    assert!(!stdout.contains("passed"), "{stdout}");
}

#[tokio::test]
async fn a_reader_that_goes_away_gets_no_broken_pipe_error() {
    let dir = tempfile::tempdir().unwrap();
    // A plan far longer than a pipe's buffer, so the writer meets the closed pipe.
    let services: String = (0..3000)
        .map(|i| format!("[[service]]\nid = \"s{i}\"\nname = \"S{i}\"\n  [[service.probe]]\n  kind = \"tcp\"\n  address = \"127.0.0.1:9\"\n"))
        .collect();
    let path = write_config(dir.path(), &services);
    let stderr = dir.path().join("stderr");
    let script = format!(
        "\"{}\" --config \"{}\" validate 2>\"{}\" | head -n 1",
        env!("CARGO_BIN_EXE_chatpulse"),
        path.display(),
        stderr.display()
    );
    let run = tokio::process::Command::new("sh").args(["-c", &script]).output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), run).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid. 3000 services"));
    assert_eq!(std::fs::read_to_string(&stderr).unwrap(), "", "no error for a reader that stopped reading");
}

#[tokio::test]
async fn a_secret_the_environment_lacks_is_found_by_validate_run_and_reload_not_at_the_first_outage() {
    let dir = tempfile::tempdir().unwrap();
    let hook = "[[alerts.webhook]]\nurl = \"http://127.0.0.1:9/hook\"\nsecret_env = \"CHATPULSE_TEST_UNSET_SECRET\"\n";
    let body = format!("{}{SERVICE}", support::config::server_and_store(dir.path()));
    let with_hook = write_config(dir.path(), &format!("{hook}{body}"));
    for command in ["validate", "run"] {
        let out =
            tokio::time::timeout(std::time::Duration::from_secs(30), chatpulse(&with_hook, &[command])).await.unwrap();
        assert_eq!(out.status.code(), Some(2), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{command}: {stderr}");
        assert!(
            stderr.contains("[[alerts.webhook]] 1 secret_env names the environment variable CHATPULSE_TEST_UNSET_SECRET, which is not set"),
            "{command}: {stderr}"
        );
    }
    // Running without the hook, a reload that adds it is rejected, naming it.
    let path = write_config(dir.path(), &body);
    let daemon = support::daemon::Daemon::start(dir.path(), &path, &[]).await;
    std::fs::write(&path, format!("{hook}{body}")).unwrap();
    daemon.signal("HUP");
    support::wait_for("the reload rejected", std::time::Duration::from_secs(15), || async {
        (daemon.logged("config reload rejected") && daemon.logged("CHATPULSE_TEST_UNSET_SECRET")).then_some(())
    })
    .await;
    assert_eq!(daemon.metric("chatpulse_config_last_reload_successful").await, Some(0.0));
}

/// docs/tutorial.md's first steps on `examples/local.toml` (its web server's
/// port moved to a free one): every target is loopback, `check` says the
/// demo is up, then — the server gone — down with the root cause the
/// tutorial shows.
#[tokio::test]
async fn the_tutorial_example_checks_up_then_down_with_its_root_cause() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local.toml");
    let config = chatpulse::config::Config::load(&example).expect("the example is valid");
    for probe in config.services.iter().flat_map(|s| &s.probes) {
        let target = probe.check.target();
        assert!(
            target.starts_with("127.0.0.1:") || target.starts_with("http://127.0.0.1:"),
            "{target} is not loopback"
        );
    }
    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".to_vec();
    let (addr, server) = support::http::raw_http(reply).await;
    let text = std::fs::read_to_string(&example).unwrap().replace("127.0.0.1:8000", &addr.to_string());
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &text);
    let out = chatpulse(&path, &["check"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("\ndemo: up\n"), "{stdout}");
    server.abort();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
    let out = chatpulse(&path, &["check"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let verdict = format!("demo: down — transport: port tcp_connect — connection refused ({addr})");
    assert!(stdout.contains(&verdict), "{stdout}");
}
