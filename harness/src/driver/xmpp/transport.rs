//! The XMPP client transport (RFC 6120 §4, §5): TCP, STARTTLS, and the stream parser, as
//! login and registration use them before a session splits into its reader and writer.

use std::net::SocketAddr;
use std::sync::Arc;

use imfed_xmpp::{Limits, StreamEvent, StreamParser};
use rustls::RootCertStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::driver::DriverError;

impl From<imfed_xmpp::ParseError> for DriverError {
    fn from(error: imfed_xmpp::ParseError) -> Self {
        DriverError::Invalid(error.to_string())
    }
}

pub(super) enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Gone,
}

/// The read half of a transport, for a reader task.
pub(super) type Reader = Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin>;
/// The write half.
pub(super) type Writer = Box<dyn tokio::io::AsyncWrite + Send + Sync + Unpin>;

impl Io {
    /// Its two halves, for a reader task and a writer (`None` when it is gone).
    pub(super) fn split(self) -> Option<(Reader, Writer)> {
        match self {
            Io::Plain(tcp) => {
                let (read, write) = tcp.into_split();
                Some((Box::new(read), Box::new(write)))
            }
            Io::Tls(tls) => {
                let (read, write) = tokio::io::split(*tls);
                Some((Box::new(read), Box::new(write)))
            }
            Io::Gone => None,
        }
    }

    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(tcp) => tcp.read(buf).await,
            Io::Tls(tls) => tls.read(buf).await,
            Io::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Io::Plain(tcp) => tcp.write_all(bytes).await,
            Io::Tls(tls) => {
                tls.write_all(bytes).await?;
                tls.flush().await
            }
            Io::Gone => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }
}

/// A certificate chain (end entity first) and its private key.
pub struct Identity {
    /// The chain.
    pub chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// The key of its first certificate.
    pub key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// The transport and parser shared by login sessions and registration streams.
pub(super) struct Wire {
    pub(super) io: Io,
    pub(super) parser: StreamParser,
    buf: Vec<u8>,
}

impl Wire {
    pub(super) async fn connect(addr: SocketAddr) -> Result<Wire, DriverError> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| DriverError::Connect { addr, source })?;
        let _ = tcp.set_nodelay(true);
        Ok(Wire {
            io: Io::Plain(tcp),
            parser: StreamParser::new(Limits::default()),
            buf: vec![0; 16 * 1024],
        })
    }

    pub(super) async fn read_event(&mut self) -> Result<StreamEvent, DriverError> {
        loop {
            if let Some(event) = self.parser.next_event()? {
                return Ok(event);
            }
            let read = self.io.read(&mut self.buf).await?;
            if read == 0 {
                return Err(DriverError::Stream("connection closed by server".into()));
            }
            self.parser.feed(&self.buf[..read]);
        }
    }

    pub(super) async fn write(&mut self, bytes: &[u8]) -> Result<(), DriverError> {
        Ok(self.io.write(bytes).await?)
    }

    /// Upgrades to TLS (after `<proceed/>`) and resets the parser for the new stream.
    ///
    /// With `roots`, the server's certificate must chain to them and name `domain`
    /// (RFC 6120 §13.7.2); without, the handshake is checked but the certificate is not
    /// (the suite's own servers use throwaway certificates).
    pub(super) async fn start_tls(
        &mut self,
        domain: &str,
        roots: Option<&Arc<RootCertStore>>,
    ) -> Result<(), DriverError> {
        self.start_tls_presenting(domain, roots, None).await
    }

    /// [`Wire::start_tls`] presenting `identity` as a client certificate (a peer server's,
    /// for SASL EXTERNAL).
    pub(super) async fn start_tls_presenting(
        &mut self,
        domain: &str,
        roots: Option<&Arc<RootCertStore>>,
        identity: Option<Identity>,
    ) -> Result<(), DriverError> {
        let Io::Plain(tcp) = std::mem::replace(&mut self.io, Io::Gone) else {
            return Err(DriverError::Login("STARTTLS twice".into()));
        };
        let name = rustls::pki_types::ServerName::try_from(domain.to_string())
            .map_err(|error| DriverError::Login(format!("server name {domain}: {error}")))?;
        let configuration =
            |error: String| DriverError::Login(format!("TLS configuration: {error}"));
        let connector = match roots {
            Some(roots) => {
                let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map_err(|error| configuration(error.to_string()))?
                .with_root_certificates(roots.clone());
                let config = match identity {
                    Some(Identity { chain, key }) => builder
                        .with_client_auth_cert(chain, key)
                        .map_err(|error| configuration(error.to_string()))?,
                    None => builder.with_no_client_auth(),
                };
                tokio_rustls::TlsConnector::from(Arc::new(config))
            }
            None => imfed_server::tls::insecure_connector_presenting(
                identity.map(|identity| (identity.chain, identity.key)),
            )
            .map_err(|error| configuration(error.to_string()))?,
        };
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|error| DriverError::Login(format!("TLS handshake: {error}")))?;
        self.io = Io::Tls(Box::new(tls));
        self.parser.reset();
        Ok(())
    }
}
