//! A webhook receiver for tests: an axum server on loopback that records
//! every POST (headers, body, the answer it gave), checks the
//! `X-Chatpulse-Signature` against its own HMAC-SHA256 of the body, and
//! answers whatever status the test sets — per event, so a test can refuse
//! DOWNs and take recoveries, or a scripted status for the next posts. The
//! same receiver stands in for PagerDuty's Events API and an ntfy topic:
//! every hit keeps its headers and raw body.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::net::TcpListener;

/// One POST as received.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The body, parsed.
    pub body: serde_json::Value,
    /// `X-Chatpulse-Event`.
    pub event: String,
    /// Whether the signature matched the receiver's secret (None: unsigned).
    pub signed_ok: Option<bool>,
    /// The status the receiver answered.
    pub answered: u16,
    /// Every header.
    pub headers: HeaderMap,
    /// The body as sent.
    pub text: String,
}

impl Hit {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Default)]
struct Shared {
    hits: Mutex<Vec<Hit>>,
    /// Status per event word (`X-Chatpulse-Event`, or a PagerDuty
    /// `event_action`); 200 when absent.
    answers: Mutex<HashMap<String, u16>>,
    /// Statuses for the next posts, whatever their event, first first.
    script: Mutex<std::collections::VecDeque<u16>>,
    secret: Vec<u8>,
}

/// A running receiver.
pub struct Receiver {
    /// Where it listens (`http://ADDR/hook`).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    use aws_lc_rs::hmac;
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), body);
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Every answer closes its connection, so a stopped receiver is gone at
/// once (no kept-alive connection outlives it).
async fn hook(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(axum::http::HeaderName, &'static str); 1]) {
    let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let event = headers
        .get("x-chatpulse-event")
        .and_then(|v| v.to_str().ok())
        .or_else(|| parsed["event_action"].as_str())
        .unwrap_or("")
        .to_string();
    let signed_ok = headers
        .get("x-chatpulse-signature")
        .and_then(|v| v.to_str().ok())
        .map(|sig| sig == format!("sha256={}", hmac_hex(&shared.secret, &body)));
    let scripted = shared.script.lock().unwrap().pop_front();
    let answered = scripted.or_else(|| shared.answers.lock().unwrap().get(&event).copied()).unwrap_or(200);
    let text = String::from_utf8_lossy(&body).into_owned();
    shared.hits.lock().unwrap().push(Hit { body: parsed, event, signed_ok, answered, headers, text });
    (StatusCode::from_u16(answered).unwrap(), [(axum::http::header::CONNECTION, "close")])
}

impl Receiver {
    /// A receiver on an ephemeral port checking signatures against `secret`.
    pub async fn start(secret: &str) -> Receiver {
        Receiver::start_on(0, secret).await
    }

    /// A receiver on `port` (one a test kept closed until now).
    pub async fn start_on(port: u16, secret: &str) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared { secret: secret.as_bytes().to_vec(), ..Shared::default() });
        let app = Router::new().route("/hook", post(hook)).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, shared, task }
    }

    /// The URL to configure.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answers `status` to posts of `event` from now on.
    pub fn answer(&self, event: &str, status: u16) {
        self.shared.answers.lock().unwrap().insert(event.to_string(), status);
    }

    /// Answers `statuses` to the next posts, in order, whatever their event.
    pub fn answer_next(&self, statuses: &[u16]) {
        self.shared.script.lock().unwrap().extend(statuses);
    }

    /// Every post so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.shared.hits.lock().unwrap().clone()
    }

    /// The posts it took (answered 2xx).
    pub fn delivered(&self) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| (200..300).contains(&h.answered)).collect()
    }

    /// Stops listening (the receiver's outage).
    pub fn stop(self) {
        self.task.abort();
    }
}
