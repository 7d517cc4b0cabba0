//! TLS for Kontor's own HTTP clients (`kontor mailgate`, the webhook sender): rustls
//! on the ring provider, the one lettre and the IMAP door use, so no second crypto
//! library is linked in (reqwest's default would bring aws-lc-rs). Servers are
//! trusted by the Mozilla roots (webpki-roots) and, for deployments with a
//! certificate of their own, by the certificates of a CA file besides them.
//!
//! reqwest is built without a provider of its own: every `reqwest::Client` in the
//! process needs `install_provider` first (the binary's `main` calls it), and the
//! clients built here carry their rustls config with them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Why a TLS client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the CA file {path}: {source}")]
    CaFileUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the CA file {path} holds no PEM certificate")]
    CaFileEmpty { path: PathBuf },
    #[error("the CA file {path} is not PEM: {detail}")]
    CaFileNotPem { path: PathBuf, detail: String },
    #[error("the CA file {path} holds a certificate rustls cannot use: {detail}")]
    CaCertificateRefused { path: PathBuf, detail: String },
    #[error("the TLS settings are refused: {0}")]
    Protocol(rustls::Error),
    #[error("cannot build an HTTP client: {0}")]
    Client(reqwest::Error),
}

/// Makes ring the process's rustls provider; a second call changes nothing.
pub fn install_provider() {
    // Err means a provider is installed already, which is all this wants.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What an HTTP client of ours needs to know.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    /// PEM certificates trusted besides the Mozilla roots (a self-signed deployment).
    pub ca_file: Option<PathBuf>,
    /// The longest a request may take, connecting and answering included.
    pub timeout: Option<Duration>,
    pub user_agent: Option<String>,
    /// Follow no redirect: a webhook or intake URL that moved is a configuration
    /// error to see, not to follow with the body and the key.
    pub no_redirects: bool,
}

/// A reqwest client over rustls with the roots `settings` name.
pub fn http_client(settings: &ClientSettings) -> Result<reqwest::Client, TlsError> {
    let tls = client_config(settings.ca_file.as_deref())?;
    let mut builder = reqwest::Client::builder().tls_backend_preconfigured(tls);
    if let Some(timeout) = settings.timeout {
        builder = builder.timeout(timeout);
    }
    if let Some(agent) = &settings.user_agent {
        builder = builder.user_agent(agent.clone());
    }
    if settings.no_redirects {
        builder = builder.redirect(reqwest::redirect::Policy::none());
    }
    builder.build().map_err(TlsError::Client)
}

/// The rustls config: ring, TLS 1.2 and 1.3, the Mozilla roots plus `ca_file`'s.
pub fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        for certificate in ca_certificates(path)? {
            roots
                .add(certificate)
                .map_err(|error| TlsError::CaCertificateRefused {
                    path: path.to_path_buf(),
                    detail: error.to_string(),
                })?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(TlsError::Protocol)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(config)
}

/// Every certificate of a PEM file; one that holds none is an error, so that a
/// wrong path (a key file, say) is found at once rather than at the first refusal.
fn ca_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::CaFileUnreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|error| TlsError::CaFileNotPem {
            path: path.to_path_buf(),
            detail: error.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(TlsError::CaFileEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(certificates)
}

/// A transport error with its causes, e.g. "connection refused" or "invalid peer
/// certificate: UnknownIssuer", and a hint when the server's certificate was not
/// trusted.
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    let mut untrusted = false;
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        untrusted |= cause_text.contains("invalid peer certificate");
        text.push_str(": ");
        text.push_str(&cause_text);
        source = cause.source();
    }
    if untrusted {
        text.push_str(" (the server's TLS certificate is not trusted: name its CA with a CA file)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_a_certificate_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let error = client_config(Some(&path)).unwrap_err().to_string();
        assert!(
            error.contains("ca.pem") && error.contains("no PEM certificate"),
            "{error}"
        );
        let missing = dir.path().join("missing.pem");
        let error = client_config(Some(&missing)).unwrap_err().to_string();
        assert!(error.contains("cannot read the CA file"), "{error}");
    }

    #[test]
    fn without_a_ca_file_the_mozilla_roots_are_trusted() {
        install_provider();
        assert!(client_config(None).is_ok());
        assert!(http_client(&ClientSettings::default()).is_ok());
    }
}
