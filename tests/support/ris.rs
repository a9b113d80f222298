//! Hostile RIS Live and looking-glass stand-ins: a listener that never
//! answers the websocket handshake, a websocket server that hangs up at
//! once, and a looking glass whose answer never ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;

/// A listener that accepts TCP and then says nothing; counts connections.
pub async fn mute_listener() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/ws/", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            held.push(tcp);
        }
    });
    (url, count)
}

/// A websocket server that completes the handshake and hangs up at once.
pub async fn hang_up_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/ws/", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
                // Let the client subscribe and seed, then close.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = ws.close(None).await;
            }
        }
    });
    (url, count)
}

/// A looking glass whose answer never ends; its base URL.
pub async fn endless_looking_glass() -> String {
    let app = axum::Router::new().route(
        "/data/looking-glass/data.json",
        axum::routing::get(|| async {
            let chunk = bytes::Bytes::from(vec![b' '; 64 * 1024]);
            let endless = futures_util::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
            axum::body::Body::from_stream(endless)
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}
