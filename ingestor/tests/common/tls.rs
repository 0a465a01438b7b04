//! A throwaway CA made here by rcgen, and a TLS-terminating TCP proxy in front of a loopback
//! port (anvil: `wss://` and `https://` on one port; or an OTLP receiver). Server
//! certificates are for `127.0.0.1` and `localhost`; they, and client certificates, can be
//! made already expired. Kafka reads its key and chain from one PEM file
//! ([`TestCa::server_keystore`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

/// A CA made for one test: its PEM file, and what it signs.
pub struct TestCa {
    pub pem_file: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA whose certificate is written to `dir/<name>.pem`.
    pub fn new(dir: &Path, name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("ethhook test CA {name}"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("ca key"))
            .expect("ca cert");
        let pem_file = dir.join(format!("{name}.pem"));
        std::fs::write(&pem_file, issuer.pem()).expect("write CA");
        Self { pem_file, issuer }
    }

    /// A client certificate and its key, as PEM files `dir/<name>.pem` and `dir/<name>.key`.
    pub fn client_cert(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        self.client_cert_valid(dir, name, false)
    }

    /// [`TestCa::client_cert`], valid only in 2020 if `expired`.
    pub fn client_cert_valid(&self, dir: &Path, name: &str, expired: bool) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("client key");
        let cert = params.signed_by(&key, &self.issuer).expect("client cert");
        let (cert_file, key_file) = (
            dir.join(format!("{name}.pem")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_file, cert.pem()).expect("write cert");
        std::fs::write(&key_file, key.serialize_pem()).expect("write key");
        (cert_file, key_file)
    }

    /// A server certificate for 127.0.0.1 / localhost as Kafka's `ssl.keystore.type=PEM`
    /// wants it: one file `dir/<name>.pem` with the PKCS#8 private key, then the chain
    /// (leaf, then this CA).
    pub fn server_keystore(&self, dir: &Path, name: &str) -> PathBuf {
        let (chain, key) = self.leaf(false);
        let mut pem = String::new();
        pem.push_str(&pem_block("PRIVATE KEY", key.secret_der()));
        for cert in &chain {
            pem.push_str(&pem_block("CERTIFICATE", cert));
        }
        let file = dir.join(format!("{name}.pem"));
        std::fs::write(&file, pem).expect("write keystore");
        file
    }

    /// A server certificate chain and key for 127.0.0.1 / localhost.
    fn leaf(&self, expired: bool) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let mut params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("leaf params");
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf cert");
        (
            vec![cert.der().clone(), self.issuer.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }
}

/// One PEM block of `der`, base64 in 64-character lines.
fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The proxy: TLS on `port`, plain TCP to the upstream port.
pub struct TlsProxy {
    pub port: u16,
    _server: super::server::Background,
}

impl TlsProxy {
    /// Terminates TLS with a certificate from `ca` (expired if asked) and relays every
    /// connection to `127.0.0.1:upstream_port`.
    pub fn start(ca: &TestCa, upstream_port: u16, expired: bool) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let (chain, key) = ca.leaf(expired);
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        // gRPC clients require HTTP/2 to be negotiated; others speak HTTP/1.1 (the upstream
        // behind this relay speaks whichever the client chose).
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let server = super::server::accept_loop(move |tcp| {
            let acceptor = acceptor.clone();
            async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return; // the client refused our certificate
                };
                let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream_port)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            }
        });
        Self {
            port: server.port,
            _server: server,
        }
    }

    /// `<scheme>://127.0.0.1:<port><path>`.
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }
}
