//! A private PKI for tests: a CA nobody else trusts and a leaf for
//! `localhost` signed by it, valid for as many days as a test needs.

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

/// A private CA and a leaf for `localhost` valid `days` more days.
pub struct Pki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The leaf, DER.
    pub leaf: rustls::pki_types::CertificateDer<'static>,
    /// The leaf's key.
    pub key: rustls::pki_types::PrivateKeyDer<'static>,
}

/// A fresh CA and a `localhost` leaf expiring in `days` days.
pub fn pki(days: i64) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "chatpulse test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    let issuer = Issuer::new(ca, ca_key);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        leaf: leaf_cert.der().clone(),
        key: rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    }
}

impl Pki {
    /// A rustls server config presenting the leaf, offering `alpn`.
    pub fn server_config(&self, alpn: &[&[u8]]) -> rustls::ServerConfig {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![self.leaf.clone()], self.key.clone_key())
            .expect("a leaf and its key");
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config
    }

    /// The CA written to `dir/ca.pem`.
    pub fn ca_file(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("a writable directory");
        path
    }
}

/// The stream a [`tls_listener`] hands to its handler.
pub type TlsStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// Listens on an ephemeral loopback port, completes each handshake with
/// `config` and hands the connection to `serve` on its own task; failed
/// handshakes are dropped. Returns the address.
pub async fn tls_listener<F, Fut>(config: rustls::ServerConfig, serve: F) -> std::net::SocketAddr
where
    F: Fn(TlsStream) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("a bound listener");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, serve) = (acceptor.clone(), serve.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve(tls).await;
                }
            });
        }
    });
    addr
}
