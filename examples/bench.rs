//! Benchmark helpers (run by `bench/run.sh`, not by users):
//!
//! - `cargo run --release --example bench -- targets DNS_PORT HTTP_PORT`:
//!   local probe targets — a hickory-server DNS server for `web.chat.test`
//!   and an axum HTTP server — in one process, so chatpulse and
//!   blackbox_exporter probe exactly the same things.
//! - `cargo run --release --example bench -- drive URL RATE SECONDS`: GETs
//!   URL at a fixed rate (to drive blackbox_exporter's `/probe`), prints how
//!   many requests succeeded.
//! - `cargo run --release --example bench -- chat-targets FILE`: the chat
//!   protocol stand-ins of the tests (an MTProto data centre, a WhatsApp
//!   Noise responder over TCP and over ws:// with a test root) and a plain
//!   TCP acceptor; writes `TCP MTPROTO WHATSAPP WS ROOT_KEY` to FILE.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
use hickory_server::proto::rr::Name;
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};

#[path = "../tests/support/mtproto.rs"]
#[allow(dead_code)]
mod mtproto;
#[path = "../tests/support/whatsapp.rs"]
#[allow(dead_code)]
mod whatsapp;

const ZONE: &str = "$ORIGIN chat.test.\n$TTL 60\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\nweb IN A 192.0.2.10\n";

async fn targets(dns_port: u16, http_port: u16) {
    let (origin, records) =
        Parser::new(ZONE, None, Some(Name::from_ascii("chat.test.").unwrap())).parse().expect("zone parses");
    let zone =
        InMemoryZoneHandler::<TokioRuntimeProvider>::new(origin.clone(), records, ZoneType::Primary, AxfrPolicy::Deny)
            .expect("zone loads");
    let mut catalog = Catalog::new();
    catalog.upsert(origin.into(), vec![Arc::new(zone)]);
    let addr = SocketAddr::from(([127, 0, 0, 1], dns_port));
    let mut server = Server::new(catalog);
    server.register_socket(tokio::net::UdpSocket::bind(addr).await.expect("DNS port free"));
    server.register_listener(
        tokio::net::TcpListener::bind(addr).await.expect("DNS port free"),
        Duration::from_secs(5),
        64,
    );
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "hello from WhatsApp Web" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", http_port)).await.expect("HTTP port free");
    println!("targets ready: dns 127.0.0.1:{dns_port} http 127.0.0.1:{http_port}");
    axum::serve(listener, app).await.expect("HTTP server runs");
    drop(server);
}

async fn drive(url: String, rate: u64, seconds: u64) {
    let client = reqwest::Client::new();
    let ok = Arc::new(AtomicU64::new(0));
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..rate * seconds {
        ticker.tick().await;
        let (client, url, ok) = (client.clone(), url.clone(), ok.clone());
        tasks.spawn(async move {
            if let Ok(r) = client.get(&url).send().await
                && r.status().is_success()
                && r.text().await.is_ok_and(|body| body.contains("probe_success 1"))
            {
                ok.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    println!("{}", ok.load(Ordering::Relaxed));
}

async fn chat_targets(file: String) {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let tcp_addr = tcp.local_addr().expect("bound");
    tokio::spawn(async move {
        // Accepts and lets go, as a port that only proves it is open.
        while let Ok((stream, _)) = tcp.accept().await {
            drop(stream);
        }
    });
    let (mt, _mt) = mtproto::serve(mtproto::Behaviour::Genuine).await;
    let root = whatsapp::TestRoot::new();
    let (wa, _wa) = whatsapp::serve_tcp(&root, whatsapp::Behaviour::Genuine).await;
    let (ws, _ws) = whatsapp::serve_ws(&root, whatsapp::Behaviour::Genuine).await;
    let key: String = root.public.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&file, format!("{tcp_addr} {mt} {wa} {ws} {key}\n")).expect("the address file is writable");
    std::future::pending::<()>().await;
}

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["targets", dns, http] => runtime.block_on(targets(dns.parse().expect("port"), http.parse().expect("port"))),
        ["drive", url, rate, seconds] => {
            runtime.block_on(drive(url.to_string(), rate.parse().expect("rate"), seconds.parse().expect("seconds")))
        }
        ["chat-targets", file] => runtime.block_on(chat_targets(file.to_string())),
        _ => eprintln!(
            "usage: bench targets DNS_PORT HTTP_PORT | bench drive URL RATE SECONDS | bench chat-targets FILE"
        ),
    }
}
