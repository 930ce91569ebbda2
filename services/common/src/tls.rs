//! TLS for our own listeners (device endpoints, SMTP STARTTLS): a PEM
//! certificate chain and key from files, rustls with ring as everywhere in
//! the workspace.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};
use tokio_rustls::TlsAcceptor;

use crate::config::ConfigError;

/// A listener's certificate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ServerTlsConfig {
    /// Off where an ingress terminates TLS (and in tests).
    pub enabled: bool,
    /// PEM certificate chain.
    pub cert_path: PathBuf,
    /// PEM private key.
    pub key_path: PathBuf,
    /// PEM CA certificates; when set, clients are asked for a certificate
    /// signed by one of them (optional for the client: one without a
    /// certificate is served as before). Ingest's SMTP/LMTP matches a
    /// presented certificate's SHA-256 against the tenant's relay policy.
    pub client_ca_path: PathBuf,
}

impl ServerTlsConfig {
    /// Both files named when enabled; `prefix` names the section in errors.
    pub fn validate(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.enabled
            && (self.cert_path.as_os_str().is_empty() || self.key_path.as_os_str().is_empty())
        {
            return Err(ConfigError::invalid(
                prefix.trim_end_matches('.'),
                "enabled needs cert_path and key_path",
            ));
        }
        Ok(())
    }

    /// Loads the certificate and key; `prefix` names the section in errors.
    pub fn acceptor(&self, prefix: &str) -> Result<TlsAcceptor, ConfigError> {
        let key_name = |field: &str| format!("{prefix}{field}");
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&self.cert_path)
            .and_then(|certs| certs.collect())
            .map_err(|e| {
                ConfigError::invalid(
                    key_name("cert_path"),
                    format!("unreadable PEM certificates: {e}"),
                )
            })?;
        if certs.is_empty() {
            return Err(ConfigError::invalid(
                key_name("cert_path"),
                "holds no certificate",
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key_path).map_err(|e| {
            ConfigError::invalid(key_name("key_path"), format!("unreadable PEM key: {e}"))
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::invalid(prefix.trim_end_matches('.'), e.to_string()))?;
        let builder = if self.client_ca_path.as_os_str().is_empty() {
            builder.with_no_client_auth()
        } else {
            builder.with_client_cert_verifier(self.client_verifier(prefix, provider)?)
        };
        let server = builder.with_single_cert(certs, key).map_err(|e| {
            ConfigError::invalid(
                key_name("key_path"),
                format!("does not match the certificate: {e}"),
            )
        })?;
        Ok(TlsAcceptor::from(Arc::new(server)))
    }

    /// Verifies client certificates against `client_ca_path`, accepting
    /// clients that present none.
    fn client_verifier(
        &self,
        prefix: &str,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, ConfigError> {
        let key = format!("{prefix}client_ca_path");
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.client_ca_path)
            .map_err(|e| ConfigError::invalid(&key, format!("unreadable PEM certificates: {e}")))?
        {
            let cert = cert.map_err(|e| {
                ConfigError::invalid(&key, format!("unreadable PEM certificate: {e}"))
            })?;
            roots
                .add(cert)
                .map_err(|e| ConfigError::invalid(&key, format!("not a CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(ConfigError::invalid(&key, "holds no certificate"));
        }
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .allow_unauthenticated()
            .build()
            .map_err(|e| ConfigError::invalid(&key, e.to_string()))
    }
}

/// The SHA-256 of a client's leaf certificate (lowercase hex), the
/// fingerprint a relay policy names.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(cert.as_ref()))
}
