//! TLS for every URL the service opens (`wss://`, `https://` nodes and OTLP), via rustls
//! with the ring provider.
//!
//! Trusted roots: the platform's store (the first OpenSSL certificate directory that
//! exists, e.g. `/etc/ssl/certs`), **plus** the PEM bundle named by `SSL_CERT_FILE`, plus a
//! chain's own `tls_ca_file`. (rustls-native-certs alone would *replace* the platform store
//! with `SSL_CERT_FILE`; here the variable adds to it.)

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};

/// The environment variable naming an extra PEM bundle of trusted roots.
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";

/// A trust setting that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TlsConfigError {
    /// A CA file that cannot be read or holds no certificate.
    #[error("{what} {path}: {reason}")]
    CaFile {
        /// Which setting named it (`SSL_CERT_FILE`, `tls_ca_file`).
        what: &'static str,
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Reads every certificate of a PEM file; an unreadable file, or one with none, is an error.
fn read_pem(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let err = |reason: String| TlsConfigError::CaFile {
        what,
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(format!("cannot read: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("not a PEM certificate bundle: {e}")))?;
    if certs.is_empty() {
        return Err(err("holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// The platform's roots, read once. None found is not an error here: a `wss://` URL then
/// fails with "not trusted", and the message says what to set.
fn platform_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        openssl_probe::candidate_cert_dirs()
            .filter(|dir| dir.is_dir())
            .map(|dir| rustls_native_certs::load_certs_from_paths(None, Some(dir)).certs)
            .find(|certs| !certs.is_empty())
            .unwrap_or_default()
    })
}

/// Where trusted roots come from, beyond the platform's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// `SSL_CERT_FILE` as read at start-up.
    pub ssl_cert_file: Option<PathBuf>,
    /// A chain's `tls_ca_file`.
    pub ca_file: Option<PathBuf>,
}

impl Trust {
    /// The process environment's `SSL_CERT_FILE` plus `ca_file`.
    pub fn from_env(ca_file: Option<&Path>) -> Self {
        Self {
            ssl_cert_file: std::env::var_os(SSL_CERT_FILE)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            ca_file: ca_file.map(Path::to_path_buf),
        }
    }

    /// The root store: platform + `SSL_CERT_FILE` + `ca_file`.
    pub fn roots(&self) -> Result<RootCertStore, TlsConfigError> {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(platform_roots().iter().cloned());
        if let Some(p) = &self.ssl_cert_file {
            roots.add_parsable_certificates(read_pem(SSL_CERT_FILE, p)?);
        }
        if let Some(p) = &self.ca_file {
            roots.add_parsable_certificates(read_pem("tls_ca_file", p)?);
        }
        Ok(roots)
    }

    /// A rustls client configuration trusting [`Trust::roots`].
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsConfigError> {
        let roots = self.roots()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsConfigError::CaFile {
                what: "rustls",
                path: String::new(),
                reason: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// Finds a rustls error anywhere in `err`'s source chain, including inside (nested)
/// `io::Error`s as tokio-rustls, hyper and reqwest wrap it. (`io::Error::source` skips the
/// error it wraps, so the walk steps into `get_ref` instead.)
pub fn find_rustls_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        cur = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    None
}

/// One line for a TLS failure: what is wrong with the certificate and what to set.
pub fn describe(err: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match err {
        rustls::Error::InvalidCertificate(C::UnknownIssuer) => {
            "certificate not trusted (unknown issuer); add its CA with the chain's `tls_ca_file` or SSL_CERT_FILE".into()
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "certificate expired".into()
        }
        rustls::Error::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "certificate not valid yet (check the clock)".into()
        }
        rustls::Error::InvalidCertificate(
            C::NotValidForName | C::NotValidForNameContext { .. },
        ) => "certificate not valid for this host name".into(),
        rustls::Error::InvalidCertificate(C::Revoked) => "certificate revoked".into(),
        other => format!("TLS handshake failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_files_must_hold_certificates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").expect("write");
        let trust = Trust {
            ssl_cert_file: None,
            ca_file: Some(empty.clone()),
        };
        let err = trust.roots().expect_err("empty bundle").to_string();
        assert!(
            err.contains("tls_ca_file") && err.contains("holds no PEM certificate"),
            "{err}"
        );
        let missing = Trust {
            ssl_cert_file: Some(dir.path().join("nope.pem")),
            ca_file: None,
        };
        let err = missing.roots().expect_err("missing").to_string();
        assert!(
            err.starts_with("SSL_CERT_FILE ") && err.contains("cannot read"),
            "{err}"
        );
        assert!(Trust::default().client_config().is_ok());
    }

    #[test]
    fn certificate_errors_are_named() {
        let e = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(describe(&e).starts_with("certificate not trusted"));
        // As reqwest reports it: an io::Error inside an io::Error.
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let outer = std::io::Error::other(io);
        assert!(find_rustls_error(&outer).is_some());
    }
}
