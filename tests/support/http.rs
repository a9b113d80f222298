//! HTTP targets for tests: an axum server with the responses probes must
//! tell apart, and a TLS endpoint whose certificate nobody trusts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// Bytes of the huge body.
pub const HUGE: u64 = 50 << 20;

/// Shared knobs of a [`TestHttp`].
#[derive(Default)]
pub struct Knobs {
    /// Status of `/switch` (200 when 0).
    pub switch_status: AtomicU16,
    /// Bytes `/huge` actually produced.
    pub huge_sent: AtomicU64,
    /// Whether `/slow` hangs.
    pub slow_hangs: AtomicBool,
}

/// A running axum server on 127.0.0.1.
pub struct TestHttp {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its knobs.
    pub knobs: Arc<Knobs>,
    _task: tokio::task::JoinHandle<()>,
}

async fn status(Path(code): Path<u16>) -> impl IntoResponse {
    (StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT), "status page")
}

/// `/redirect?to=URL`: 302 to anywhere; `/loop`: 302 to itself.
async fn redirect(
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> impl IntoResponse {
    let to = q.get("to").cloned().unwrap_or_else(|| "/ok".into());
    (StatusCode::FOUND, [(axum::http::header::LOCATION, to)], "moved")
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(30)).await;
    "too late"
}

async fn switch(State(knobs): State<Arc<Knobs>>) -> impl IntoResponse {
    let code = match knobs.switch_status.load(Ordering::SeqCst) {
        0 => 200,
        c => c,
    };
    (StatusCode::from_u16(code).unwrap(), "switchable WhatsApp")
}

async fn huge(State(knobs): State<Arc<Knobs>>) -> impl IntoResponse {
    let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
    let stream = futures_util::stream::unfold(0u64, move |sent| {
        let chunk = chunk.clone();
        let knobs = knobs.clone();
        async move {
            if sent >= HUGE {
                return None;
            }
            knobs.huge_sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            Some((Ok::<_, std::io::Error>(chunk.clone()), sent + chunk.len() as u64))
        }
    });
    Body::from_stream(stream)
}

impl TestHttp {
    /// Starts the server.
    pub async fn start() -> TestHttp {
        let knobs = Arc::new(Knobs::default());
        let app = Router::new()
            .route("/ok", get(|| async { "hello from WhatsApp Web" }))
            .route("/plain", get(|| async { "a page without the word" }))
            .route("/status/{code}", get(status))
            .route("/slow", get(slow))
            .route("/switch", get(switch))
            .route("/huge", get(huge))
            // As Signal's own server answers an unauthenticated GET /v2/config.
            .route(
                "/v2/config",
                get(|| async { (StatusCode::UNAUTHORIZED, [("X-Signal-Timestamp", "1796289467705")], "") }),
            )
            .route("/redirect", get(redirect))
            .route("/loop", get(|| async { (StatusCode::FOUND, [(axum::http::header::LOCATION, "/loop")], "again") }))
            .with_state(knobs.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestHttp { addr, knobs, _task: task }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// A TLS endpoint with a self-signed certificate for `localhost`; answers
/// `200 ok` to anyone who accepts it.
pub async fn self_signed_tls() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    (addr, task)
}

/// A loopback port with nothing listening.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

/// A hostile "HTTP" server: answers every connection with `reply` (whatever
/// it is) once the request has arrived, then closes.
pub async fn raw_http(reply: Vec<u8>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reply = Arc::new(reply);
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    tokio::io::AsyncReadExt::read(&mut stream, &mut request),
                )
                .await;
                let _ = stream.write_all(&reply).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, task)
}
