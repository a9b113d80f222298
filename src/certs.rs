//! The PEM certificate files a config names (`ca_file`): the config checks
//! them when it is loaded, the probes' TLS clients trust them. A leaf, so
//! that neither the config nor the probes import the other for it.

use std::path::Path;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why a certificate file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CertFileError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds something other than PEM certificates.
    #[error("{path} is not a PEM certificate file ({source})")]
    NotPem {
        /// The file.
        path: String,
        /// What the PEM reader said.
        source: rustls::pki_types::pem::Error,
    },
}

/// The certificates of a PEM file (none if it holds none).
pub fn read(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertFileError> {
    let shown = || path.display().to_string();
    let text = std::fs::read(path).map_err(|source| CertFileError::Read { path: shown(), source })?;
    CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| CertFileError::NotPem { path: shown(), source })
}
