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
    /// For inbound STARTTLS on client streams.
    pub acceptor: TlsAcceptor,
    /// For inbound STARTTLS on server streams: asks for a client certificate but takes any
    /// (or none), so that a certificate which fails is a SASL or stream verdict the peer can
    /// read (XEP-0178 §3), not a handshake alert. See [`TlsContext::verify_peer`].
    pub s2s_acceptor: TlsAcceptor,
    /// For outbound STARTTLS on s2s links: presents this server's certificate (for SASL
    /// EXTERNAL at the receiving end) and takes any server certificate, dialback
    /// authenticating the peer (XEP-0220 §2).
    pub connector: TlsConnector,
    /// For outbound links of a domain that authenticates by certificate only (XEP-0178):
    /// the peer's certificate must chain to `tls_trust` and name it.
    pub strict_connector: Option<TlsConnector>,
    /// Verifies peers' certificates against `tls_trust` (none: no certificate is valid).
    verifier: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    /// For inbound RVP server-to-server connections: a client certificate is required and
    /// verified against `tls_trust` (PROFILE.md §6).
    pub rvp_acceptor: TlsAcceptor,
    /// For outbound RVP server-to-server connections: presents this server's certificate and
    /// verifies the peer's against `tls_trust`.
    pub rvp_connector: TlsConnector,
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
            .with_single_cert(chain.clone(), key.clone_key())?;
        let s2s_server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(AnyCertificate(provider())))
            .with_single_cert(chain.clone(), key.clone_key())?;
        let trust = match &config.tls_trust {
            Some(path) => Some(read_pem_certs(path)?),
            None => None,
        };
        let roots = rvp_roots(trust.as_deref())?;
        let (rvp_acceptor, rvp_connector) = rvp_contexts(&roots, &chain, &key)?;
        let verifier = match trust {
            Some(_) => Some(
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots.clone()),
                    provider(),
                )
                .build()
                .map_err(|error| rustls::Error::General(error.to_string()))?,
            ),
            None => None,
        };
        let connector = insecure_connector_presenting(Some((chain.clone(), key.clone_key())))?;
        let strict_connector = match &verifier {
            Some(verifier) => Some(TlsConnector::from(Arc::new(
                rustls::ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()?
                    .with_webpki_verifier(verifier.clone())
                    .with_client_auth_cert(chain.clone(), key.clone_key())?,
            ))),
            None => None,
        };
        Ok(TlsContext {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            s2s_acceptor: TlsAcceptor::from(Arc::new(s2s_server)),
            connector,
            strict_connector,
            verifier,
            rvp_acceptor,
            rvp_connector,
        })
    }

    /// Whether a peer's certificate `chain` (end entity first) chains to `tls_trust`, is
    /// valid now and names `domain` (RFC 6120 §13.7.2; XEP-0178 §3). `Err` says why not.
    ///
    /// # Errors
    /// A sentence naming what failed: no trust configured, no certificate, or the check.
    pub fn verify_peer(
        &self,
        chain: &[CertificateDer<'static>],
        domain: &str,
    ) -> Result<(), String> {
        let verifier = self
            .verifier
            .as_ref()
            .ok_or_else(|| "no trusted CA is configured".to_string())?;
        let (end_entity, intermediates) = chain
            .split_first()
            .ok_or_else(|| "no certificate was presented".to_string())?;
        let name = ServerName::try_from(domain.to_string())
            .map_err(|error| format!("{domain:?} is not a DNS name: {error}"))?;
        verifier
            .verify_server_cert(end_entity, intermediates, &name, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|error| error.to_string())
    }
}

/// The roots RVP peers are verified against: `tls_trust`, or, without it, a throwaway CA
/// nobody holds the key of (mutual TLS is then refused with every peer).
fn rvp_roots(trust: Option<&[CertificateDer<'static>]>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match trust {
        Some(certs) => {
            for cert in certs {
                roots.add(cert.clone())?;
            }
        }
        None => {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let key = rcgen::KeyPair::generate()?;
            roots.add(params.self_signed(&key)?.der().clone())?;
        }
    }
    Ok(roots)
}

fn rvp_contexts(
    roots: &rustls::RootCertStore,
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Result<(TlsAcceptor, TlsConnector), TlsError> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots.clone()),
        provider(),
    )
    .build()
    .map_err(|error| rustls::Error::General(error.to_string()))?;
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.to_vec(), key.clone_key())?;
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots.clone())
        .with_client_auth_cert(chain.to_vec(), key.clone_key())?;
    Ok((
        TlsAcceptor::from(Arc::new(server)),
        TlsConnector::from(Arc::new(client)),
    ))
}

/// Whether the verified certificate `cert` names `domain` among its DNS SANs.
pub fn certificate_names(cert: &CertificateDer<'_>, domain: &str) -> bool {
    let Ok(name) = ServerName::try_from(domain) else {
        return false;
    };
    webpki::EndEntityCert::try_from(cert)
        .is_ok_and(|end_entity| end_entity.verify_is_valid_for_subject_name(&name).is_ok())
}

/// When a certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// From a day ago for a year.
    Current,
    /// For a day that ended a year ago.
    Expired,
}

/// A CA's parameters, key and certificate PEM.
fn new_ca(name: &str) -> Result<(rcgen::CertificateParams, rcgen::KeyPair, String), TlsError> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let key = rcgen::KeyPair::generate()?;
    let pem = params.clone().self_signed(&key)?.pem();
    Ok((params, key, pem))
}

/// A server certificate's parameters (usable as client certificate too, for SASL EXTERNAL
/// between servers) and a fresh key.
fn leaf(
    names: &[String],
    validity: Validity,
) -> Result<(rcgen::CertificateParams, rcgen::KeyPair), TlsError> {
    let mut params = rcgen::CertificateParams::new(names.to_vec())?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        names.first().map_or("server", String::as_str),
    );
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    // Seconds since the Unix epoch, as rcgen takes dates from its own calendar type.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let day = std::time::Duration::from_secs(86_400);
    let (start, end) = match validity {
        Validity::Current => (now.saturating_sub(day), now + 365 * day),
        Validity::Expired => (now.saturating_sub(366 * day), now.saturating_sub(365 * day)),
    };
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + start;
    params.not_after = epoch + end;
    Ok((params, rcgen::KeyPair::generate()?))
}

/// A certificate for `names` that no run CA signed: signed by a CA of its own that nobody
/// trusts (`own_ca`) or self-signed. Certificate PEM and key PEM.
///
/// # Errors
/// [`TlsError::Generate`].
pub fn untrusted_certificate(names: &[String], own_ca: bool) -> Result<(String, String), TlsError> {
    let (params, key) = leaf(names, Validity::Current)?;
    let cert = if own_ca {
        let (ca_params, ca_key, _) = new_ca("imfed untrusted CA")?;
        params.signed_by(&key, &rcgen::Issuer::new(ca_params, ca_key))?
    } else {
        params.self_signed(&key)?
    };
    Ok((cert.pem(), key.serialize_pem()))
}

/// A per-run PKI: one CA and a certificate per server (DNS SANs = its domains), for tests
/// and the harness's in-process reference target.
#[derive(Clone, Debug)]
pub struct RunPki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The CA's private key, PEM (a launch script signs its server's certificate with it).
    pub ca_key_pem: String,
    /// What the CA certificate was made from, to issue more certificates.
    ca_params: rcgen::CertificateParams,
    /// Per server, in the order given: certificate PEM and private key PEM.
    pub servers: Vec<(String, String)>,
}

impl RunPki {
    /// A CA and one certificate per entry of `servers` (each a list of domains).
    ///
    /// # Errors
    /// [`TlsError::Generate`].
    pub fn new(servers: &[&[&str]]) -> Result<RunPki, TlsError> {
        let (ca_params, ca_key, ca_pem) = new_ca("imfed run CA")?;
        let mut pki = RunPki {
            ca_pem,
            ca_key_pem: ca_key.serialize_pem(),
            ca_params,
            servers: Vec::new(),
        };
        for domains in servers {
            let names: Vec<String> = domains.iter().map(|d| d.to_string()).collect();
            let issued = pki.issue(&names, Validity::Current)?;
            pki.servers.push(issued);
        }
        Ok(pki)
    }

    /// A certificate for `names` (DNS SANs; the first is also the common name) signed by the
    /// run's CA, with its key: certificate PEM and key PEM.
    ///
    /// # Errors
    /// [`TlsError::Generate`].
    pub fn issue(
        &self,
        names: &[String],
        validity: Validity,
    ) -> Result<(String, String), TlsError> {
        let ca_key = rcgen::KeyPair::from_pem(&self.ca_key_pem)?;
        let issuer = rcgen::Issuer::new(self.ca_params.clone(), ca_key);
        let (params, key) = leaf(names, validity)?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Writes the CA and server `index`'s certificate and key into `dir` (created if needed)
    /// and points `config`'s `tls_cert`, `tls_key` and `tls_trust` at them.
    ///
    /// # Errors
    /// The I/O error writing a file; [`std::io::ErrorKind::NotFound`] for an unknown index.
    pub fn configure(&self, index: usize, dir: &Path, config: &mut Config) -> std::io::Result<()> {
        let (cert, key) = self
            .servers
            .get(index)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such server"))?;
        std::fs::create_dir_all(dir)?;
        let write = |name: String, text: &str| -> std::io::Result<std::path::PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, text)?;
            Ok(path)
        };
        config.tls_trust = Some(write("ca.pem".into(), &self.ca_pem)?);
        config.tls_cert = Some(write(format!("server-{index}.pem"), cert)?);
        config.tls_key = Some(write(format!("server-{index}.key"), key)?);
        Ok(())
    }
}

/// A connector that accepts any server certificate (tests and dialback-authenticated links).
pub fn insecure_connector() -> TlsConnector {
    insecure_connector_presenting(None).expect("a connector without a client certificate")
}

/// [`insecure_connector`] that presents `identity` (a certificate chain and its key) as a
/// client certificate, as a server does for SASL EXTERNAL (XEP-0178).
///
/// # Errors
/// [`TlsError::Rustls`] when rustls refuses the certificate or key.
pub fn insecure_connector_presenting(
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<TlsConnector, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())));
    let client = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key)?,
        None => builder.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(client)))
}

/// A certificate chain and key from PEM text (as [`RunPki::issue`] returns them).
///
/// # Errors
/// [`TlsError::Pem`] naming `what` when the text does not parse.
pub fn identity_from_pem(
    cert: &str,
    key: &str,
    what: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let fail = |detail: String| TlsError::Pem {
        path: what.to_string(),
        detail,
    };
    let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| fail(error.to_string()))?;
    let key =
        PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|error| fail(error.to_string()))?;
    Ok((chain, key))
}

/// Takes any certificate, as a server (of a TLS client: a server-to-server peer, asked for
/// one but free to present none) and as a client (of a TLS server). The handshake signatures
/// are still checked, so the channel is encrypted to whoever holds the presented key: the
/// peer is judged by dialback, or its certificate by [`TlsContext::verify_peer`].
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl AnyCertificate {
    fn tls12(
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

    fn tls13(
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

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl rustls::server::danger::ClientCertVerifier for AnyCertificate {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

impl ServerCertVerifier for AnyCertificate {
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
        self.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}
