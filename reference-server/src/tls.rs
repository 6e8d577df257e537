//! TLS for STARTTLS (RFC 6120 §5, §13.7): certificates from files or generated at start.
//!
//! The whole workspace uses rustls with the ring provider. Outbound links verify the peer's
//! certificate against `tls_trust` when configured; without it they accept any certificate,
//! as a dialback-over-TLS deployment may (XEP-0220 §2 authenticates the peer, TLS encrypts).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::Config;

/// Errors setting up TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("cannot read PEM file {path}: {detail}")]
    Pem {
        /// The file.
        path: String,
        /// What went wrong.
        detail: String,
    },
    /// Generating a certificate failed.
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The server's TLS acceptor and connector.
#[derive(Clone)]
pub struct TlsContext {
    /// For inbound STARTTLS (c2s and s2s).
    pub acceptor: TlsAcceptor,
    /// For outbound STARTTLS on s2s links.
    pub connector: TlsConnector,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsContext")
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|error| TlsError::Pem {
            path: path.display().to_string(),
            detail: error.to_string(),
        })
}

/// A self-signed certificate for `domains` (DNS names only: ejabberd 23.01 rejects XmppAddr
/// SANs), returned as a certificate chain and key.
///
/// # Errors
/// [`TlsError::Generate`].
pub fn generate_certificate(
    domains: &[String],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let certified = rcgen::generate_simple_self_signed(domains.to_vec())?;
    let key = PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    Ok((vec![certified.cert.der().clone()], key))
}

impl TlsContext {
    /// Builds the acceptor and connector from the configuration.
    ///
    /// # Errors
    /// [`TlsError`] when a file cannot be read or rustls refuses the material.
    pub fn from_config(config: &Config) -> Result<Self, TlsError> {
        let (chain, key) = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                let chain = read_pem_certs(cert)?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|error| TlsError::Pem {
                    path: key.display().to_string(),
                    detail: error.to_string(),
                })?;
                (chain, key)
            }
            _ => generate_certificate(&config.domains)?,
        };
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let client = match &config.tls_trust {
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in read_pem_certs(path)? {
                    roots.add(cert)?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            None => {
                return Ok(TlsContext {
                    acceptor: TlsAcceptor::from(Arc::new(server)),
                    connector: insecure_connector(),
                });
            }
        };
        Ok(TlsContext {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
        })
    }
}

/// A connector that accepts any server certificate (tests and dialback-authenticated links).
pub fn insecure_connector() -> TlsConnector {
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
        .with_no_client_auth();
    TlsConnector::from(Arc::new(client))
}

/// Accepts any certificate but still checks the handshake signatures, so the channel is
/// encrypted to whoever holds the presented key; dialback does the authentication.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
