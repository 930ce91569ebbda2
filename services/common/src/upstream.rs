//! Connections to mail servers (IMAP, POP3, SMTP submission): TCP to an
//! address the egress policy allows (no loopback, private or metadata address unless the operator allows
//! its network; checked on the address actually connected to), then TLS
//! with the system's trust store plus any CA the operator adds (a carrier's
//! internal mail servers often use a private CA).

use std::sync::Arc;

use crate::egress::EgressPolicy;

use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

/// A connection to a mail server, plain or TLS.
pub type MailStream = Either<TcpStream, TlsStream<TcpStream>>;

/// How a mail server connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain text (test and internal servers only).
    None,
    /// Upgrade after the greeting (POP3 `STLS`, IMAP `STARTTLS`).
    StartTls,
    /// TLS from the first byte (995, 993).
    Implicit,
}

/// Connects to mail servers.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    egress: EgressPolicy,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    /// The same, connecting only where `egress` allows (the default allows
    /// public addresses only).
    pub fn with_egress(self, egress: EgressPolicy) -> Self {
        Self { egress, ..self }
    }

    /// A TCP connection to `host:port` on an address the egress policy
    /// allows; `PermissionDenied` when the host resolves to a refused one.
    pub async fn connect_tcp(&self, host: &str, port: u16) -> std::io::Result<TcpStream> {
        self.egress.connect(host, port).await
    }

    /// The extra CA certificates in the PEM file at `path` (an operator's
    /// private CA for internal mail servers).
    pub fn read_cas(
        path: &std::path::Path,
    ) -> Result<Vec<CertificateDer<'static>>, rustls::pki_types::pem::Error> {
        use rustls::pki_types::pem::PemObject as _;
        CertificateDer::pem_file_iter(path).and_then(|certs| certs.collect())
    }

    /// The system roots (unreadable ones are skipped) plus `extra`; public
    /// addresses only until [`Tls::with_egress`].
    pub fn new(extra: &[CertificateDer<'static>]) -> Result<Self, rustls::Error> {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(%error, "a system CA certificate could not be read");
        }
        let (_added, _ignored) = roots.add_parsable_certificates(native.certs);
        for cert in extra {
            if let Err(err) = roots.add(cert.clone()) {
                tracing::warn!(error = %crate::report::Report(&err), "an extra CA certificate was refused");
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            egress: EgressPolicy::default(),
        })
    }

    /// The TLS handshake over `stream`, checking the certificate for `host`.
    pub async fn connect(
        &self,
        host: &str,
        stream: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        self.connector.connect(name, stream).await
    }
}
