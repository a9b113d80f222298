//! A real DNS server for tests: hickory-server serving a test zone, switchable
//! at run time to answer SERVFAIL, REFUSED, or nothing at all; plus a UDP
//! responder that answers garbage.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::proto::op::{Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::Name;
use hickory_server::proto::serialize::txt::Parser;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, MessageResponseBuilder, ZoneType};
use tokio::net::{TcpListener, UdpSocket};

/// The zone every test server serves.
pub const ZONE: &str = r#"
$ORIGIN chat.test.
$TTL 60
@       IN SOA ns1.chat.test. hostmaster.chat.test. 1 3600 600 86400 60
@       IN NS  ns1.chat.test.
ns1     IN A   127.0.0.1
web     IN A   192.0.2.10
web     IN A   192.0.2.11
www     IN CNAME web.chat.test.
mail    IN MX  10 web.chat.test.
"#;

/// How the server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// From the zone.
    Normal = 0,
    /// SERVFAIL to everything.
    ServFail = 1,
    /// REFUSED to everything.
    Refused = 2,
    /// Never answers.
    Silent = 3,
    /// NOTIMP to everything.
    NotImp = 4,
}

struct Switchable {
    catalog: Catalog,
    mode: Arc<AtomicU8>,
}

#[async_trait::async_trait]
impl RequestHandler for Switchable {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, mut response: R) -> ResponseInfo {
        let rcode = match self.mode.load(Ordering::SeqCst) {
            0 => return self.catalog.handle_request::<R, T>(request, response).await,
            1 => ResponseCode::ServFail,
            2 => ResponseCode::Refused,
            4 => ResponseCode::NotImp,
            _ => {
                // Silent: drop the question on the floor.
                let mut metadata = Metadata::new(request.metadata.id, MessageType::Response, OpCode::Query);
                metadata.response_code = ResponseCode::ServFail;
                return ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() });
            }
        };
        let message = MessageResponseBuilder::from_message_request(request).error_msg(&request.metadata, rcode);
        match response.send_response(message).await {
            Ok(info) => info,
            Err(_) => {
                let metadata = Metadata::new(request.metadata.id, MessageType::Response, OpCode::Query);
                ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() })
            }
        }
    }
}

/// A running hickory-server on 127.0.0.1 (UDP and TCP on the same port).
pub struct TestDns {
    /// Where it listens.
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    _server: Server<Switchable>,
}

impl TestDns {
    /// Serves [`ZONE`] plus `extra` records (zone-file lines).
    pub async fn start_with(extra: &str) -> TestDns {
        let text = format!("{ZONE}{extra}\n");
        let (origin, records) =
            Parser::new(text, None, Some(Name::from_ascii("chat.test.").unwrap())).parse().expect("test zone parses");
        let zone = InMemoryZoneHandler::<TokioRuntimeProvider>::new(
            origin.clone(),
            records,
            ZoneType::Primary,
            AxfrPolicy::Deny,
        )
        .expect("test zone loads");
        let mut catalog = Catalog::new();
        catalog.upsert(origin.into(), vec![Arc::new(zone)]);
        let mode = Arc::new(AtomicU8::new(Mode::Normal as u8));
        // UDP and TCP on the same port: the port the OS picks for UDP may be
        // taken for TCP (say, by a connection in TIME_WAIT); try another.
        let mut attempts = 0;
        let (udp, tcp, addr) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = udp.local_addr().unwrap();
            match TcpListener::bind(addr).await {
                Ok(tcp) => break (udp, tcp, addr),
                Err(e) if attempts < 20 => {
                    attempts += 1;
                    let _ = e;
                }
                Err(e) => panic!("no free UDP+TCP port pair: {e}"),
            }
        };
        let mut server = Server::new(Switchable { catalog, mode: mode.clone() });
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 64);
        TestDns { addr, mode, _server: server }
    }

    /// Serves [`ZONE`].
    pub async fn start() -> TestDns {
        TestDns::start_with("").await
    }

    /// Switches how it answers from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

/// A UDP "DNS server" that answers every query with a reply carrying the
/// right ID and a header promising records that are not there.
pub async fn garbage_dns() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            if n < 2 {
                continue;
            }
            // Same ID, QR set, 1 question and 5 answers announced, then junk.
            let mut reply = vec![buf[0], buf[1], 0x81, 0x80, 0, 1, 0, 5, 0, 0, 0, 0];
            reply.extend_from_slice(&[0xff, 0xfe, 0x03, 0x41]);
            let _ = socket.send_to(&reply, from).await;
            let _ = socket.send_to(b"\x00", from).await;
        }
    });
    (addr, task)
}

/// A UDP "DNS server" that answers every parseable query with whatever
/// `craft` makes of it (the reply gets the query's ID): for replies a real
/// server would never send.
pub async fn crafted_dns(
    craft: fn(&hickory_server::proto::op::Message) -> hickory_server::proto::op::Message,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use hickory_server::proto::op::Message;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
            let mut reply = craft(&query);
            reply.metadata.id = query.metadata.id;
            if let Ok(bytes) = reply.to_vec() {
                let _ = socket.send_to(&bytes, from).await;
            }
        }
    });
    (addr, task)
}
