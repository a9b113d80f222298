//! The tls probe: a TCP connection (shared with the tcp probe) and a TLS
//! handshake with SNI `server_name`, offering `alpn`, verifying the chain
//! against the system's roots — or exactly the roots of `ca_file` (Signal's
//! chat service chains to Signal's own CA), or both with `system_roots`.
//!
//! A certificate rejected (chain, name, validity) is `tls_cert`; any other
//! handshake failure `tls_handshake`; a leaf expiring within
//! `min_cert_days` is `tls_expiring`. The leaf's notAfter is reported on
//! every successful run (`chatpulse_tls_cert_expiry_timestamp_seconds`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::time::{Instant, timeout_at};

use super::kind::{Evidence, Finding, Layer, Probe, ProbeKind, ReadContext, Reason, RunFuture, Toolkit, read_trust};
use super::tcp::{Endpoint, connect, read_endpoint};
use crate::document::{ConfigError, Strings, Table, field, table};

table!(
    /// The keys of `kind = "tls"`.
    RawTls { address: String, server_name: String, ca_file: String, system_roots: bool, alpn: Strings, min_cert_days: i64 }
);

/// `kind = "tls"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsCheck {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// SNI and the name the certificate must carry.
    pub server_name: String,
    /// Trust exactly these roots (PEM, resolved against the config's directory).
    pub ca_file: Option<PathBuf>,
    /// With `ca_file`: trust the system's roots as well.
    pub system_roots: bool,
    /// ALPN protocols offered, in order.
    pub alpn: Vec<String>,
    /// A leaf certificate expiring sooner than this many days is `tls_expiring`.
    pub min_cert_days: Option<u32>,
}

impl ProbeKind for TlsCheck {
    const NAME: &'static str = "tls";
    const LAYER: Layer = Layer::Transport;
    const TIMEOUT: Reason = Reason::TlsHandshake;
    type Raw = RawTls;

    fn read(t: &Table<'_, RawTls>, cx: &ReadContext<'_>) -> Result<TlsCheck, ConfigError> {
        let endpoint = read_endpoint(t, field!(t, address))?;
        let server_name = match t.str(field!(t, server_name)) {
            Some(name) => {
                if rustls::pki_types::ServerName::try_from(name.value).is_err() {
                    return Err(t.error(&name.span, format!("\"server_name\": \"{}\" is not a host name", name.value)));
                }
                name.value.to_string()
            }
            None => endpoint.host.clone(),
        };
        let (ca_file, system_roots) = read_trust(t, field!(t, ca_file), field!(t, system_roots), cx.base)?;
        let alpn =
            t.str_list(field!(t, alpn)).map(|l| l.iter().map(|a| a.value.to_string()).collect()).unwrap_or_default();
        Ok(TlsCheck {
            endpoint,
            server_name,
            ca_file,
            system_roots,
            alpn,
            min_cert_days: t.int(field!(t, min_cert_days), 0..3651)?.map(|n| n as u32),
        })
    }

    fn target(&self) -> String {
        if self.server_name == self.endpoint.host {
            format!("{} (TLS)", self.endpoint.address)
        } else {
            format!("{} (TLS, name {})", self.endpoint.address, self.server_name)
        }
    }

    fn scope(&self) -> String {
        self.endpoint.host.clone()
    }

    fn build(check: &Arc<TlsCheck>, timeout: Duration, _: &Toolkit) -> Box<dyn Probe> {
        Box::new(TlsProbe::new(check, timeout))
    }
}

/// Why a probe's TLS client cannot be built; every run of the probe says it.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The `ca_file` cannot be used.
    #[error(transparent)]
    File(#[from] crate::certs::CertFileError),
    /// Neither the file nor the system gave a certificate rustls accepts.
    #[error("no usable root certificate to verify against")]
    NoRoots,
}

/// The roots the system trusts (empty if none can be read).
fn system_roots() -> Vec<CertificateDer<'static>> {
    rustls_native_certs::load_native_certs().certs
}

/// A configured tls probe.
pub struct TlsProbe {
    check: TlsCheck,
    timeout: Duration,
    /// `None` when the configured roots could not be loaded (every run says why).
    config: Result<Arc<rustls::ClientConfig>, TlsSetupError>,
}

impl TlsProbe {
    /// Prepares the probe: loads its roots once.
    pub fn new(check: &TlsCheck, timeout: Duration) -> TlsProbe {
        let config = client_config(check.ca_file.as_deref(), check.system_roots, &check.alpn).map(Arc::new);
        TlsProbe { check: check.clone(), timeout, config }
    }
}

/// A TLS client trusting exactly the roots of `ca_file` (plus the system's
/// with `system_roots`), or the system's alone; offering `alpn`. Shared by
/// the tls probe, DNS over TLS and HTTPS with a `ca_file`.
pub fn client_config(
    ca_file: Option<&Path>,
    system_roots: bool,
    alpn: &[String],
) -> Result<rustls::ClientConfig, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    let mut certs = Vec::new();
    if let Some(file) = ca_file {
        certs.extend(crate::certs::read(file)?);
    }
    if ca_file.is_none() || system_roots {
        certs.extend(self::system_roots());
    }
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(TlsSetupError::NoRoots);
    }
    let mut config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(config)
}

/// When a leaf expiring at `expiry` is under `min_cert_days` at `now`, why.
pub fn expiring(expiry: Option<i64>, min_cert_days: Option<u32>, now: i64) -> Option<String> {
    let (at, days) = (expiry?, min_cert_days?);
    (at - now < i64::from(days) * 86_400).then(|| {
        format!(
            "the certificate expires in {} days ({}), under min_cert_days = {days}",
            (at - now) / 86_400,
            crate::time::rfc3339(crate::time::from_unix(at))
        )
    })
}

/// The leaf certificate's notAfter, as Unix seconds.
pub fn not_after(leaf: &[u8]) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf).ok()?;
    Some(cert.validity().not_after.timestamp())
}

impl TlsProbe {
    async fn handshake(&self) -> Finding {
        let address = &self.check.endpoint.address;
        let config = match &self.config {
            Ok(c) => c.clone(),
            Err(why) => return Finding::fail(Reason::TlsCert, format!("{address}: {why}")),
        };
        let started = Instant::now();
        let deadline = started + self.timeout;
        let (stream, reached) = match connect(&self.check.endpoint, deadline).await {
            Ok(connected) => connected,
            Err(failed) => return failed,
        };
        let Ok(name) = ServerName::try_from(self.check.server_name.clone()) else {
            return Finding::fail(Reason::TlsHandshake, format!("{address}: bad server name"));
        };
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = match timeout_at(deadline, connector.connect(name, stream)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                let rustls_error = crate::error_text::chain(&e)
                    .into_iter()
                    .find_map(|err| err.downcast_ref::<rustls::Error>().cloned());
                let (reason, why) = match rustls_error {
                    Some(rustls::Error::InvalidCertificate(cert)) => {
                        (Reason::TlsCert, format!("certificate rejected: {cert:?}"))
                    }
                    Some(other) => (Reason::TlsHandshake, other.to_string()),
                    None => (Reason::TlsHandshake, crate::error_text::root_cause(&e)),
                };
                return Finding::fail(reason, format!("{address} ({reached}): TLS failed: {why}"));
            }
            Err(_) => {
                return Finding::fail(
                    Reason::TlsHandshake,
                    format!(
                        "{address} ({reached}): no TLS handshake within {}",
                        humantime::format_duration(self.timeout)
                    ),
                );
            }
        };
        let (_, session) = tls.get_ref();
        let expiry = session.peer_certificates().and_then(|chain| chain.first()).and_then(|leaf| not_after(leaf));
        let protocol =
            session.alpn_protocol().map(|p| format!(", ALPN {}", String::from_utf8_lossy(p))).unwrap_or_default();
        let elapsed = started.elapsed().as_millis();
        let finding = match (expiry, self.check.min_cert_days) {
            (Some(at), Some(days)) => {
                let now = crate::time::unix(SystemTime::now());
                let left = (at - now) / 86_400;
                if at - now < i64::from(days) * 86_400 {
                    Finding::fail(
                        Reason::TlsExpiring,
                        format!(
                            "{address}: the certificate expires in {left} days ({}), under min_cert_days = {days}",
                            crate::time::rfc3339(crate::time::from_unix(at))
                        ),
                    )
                } else {
                    Finding::ok(format!("{address}: TLS in {elapsed} ms{protocol}, certificate valid {left} more days"))
                }
            }
            _ => Finding::ok(format!("{address}: TLS in {elapsed} ms{protocol}")),
        };
        match expiry {
            Some(not_after) => finding.with(Evidence::Certificate { not_after }),
            None => finding,
        }
    }
}

impl Probe for TlsProbe {
    fn run(&self) -> RunFuture<'_> {
        Box::pin(self.handshake())
    }
}
