//! TLS with rustls (ring): our identity from PEM files or a self-signed
//! development certificate (rcgen), and how peers' certificates are
//! checked.

use super::stream::Side;
use super::{HANDSHAKE_TIMEOUT, TransportConfig};
use crate::peer::Transport;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

/// Our TLS certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsIdentity {
    /// A PEM certificate chain and its PEM private key.
    Files {
        /// The chain, leaf first.
        certificate_chain: PathBuf,
        /// The key.
        private_key: PathBuf,
    },
    /// A self-signed certificate for these names (and IP addresses),
    /// generated at start: for development and tests, never production.
    SelfSigned {
        /// Subject alternative names.
        names: Vec<String>,
    },
}

/// How the certificate of a TLS peer we connect to is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TlsVerify {
    /// Against the operating system's root certificates.
    #[default]
    SystemRoots,
    /// Against these PEM root certificate files only.
    Roots(Vec<PathBuf>),
    /// Not at all: any certificate is accepted. Only for tests and for
    /// development against a self-signed peer; the connection is encrypted
    /// but the peer is not authenticated.
    InsecureAcceptAny,
}

/// The acceptor (when we have an identity) and the connector.
pub(super) struct Tls {
    acceptor: Option<TlsAcceptor>,
    connector: Option<TlsConnector>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn invalid(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

impl Tls {
    /// Builds what the configuration's TLS and WSS listeners, and TLS and
    /// WSS sends, need.
    pub(super) fn new(config: &TransportConfig) -> io::Result<Tls> {
        let secure = |t: Transport| matches!(t, Transport::Tls | Transport::Wss);
        let needs_identity = config.listeners.iter().any(|l| secure(l.transport));
        let acceptor = match (&config.tls_identity, needs_identity) {
            (Some(identity), _) => Some(acceptor(identity)?),
            (None, true) => {
                return Err(invalid("a TLS or WSS listener needs a TLS identity"));
            }
            (None, false) => None,
        };
        let connector = if needs_identity {
            Some(connector(&config.tls_verify)?)
        } else {
            None
        };
        Ok(Tls {
            acceptor,
            connector,
        })
    }

    /// The TLS handshake on `tcp`, bounded by [`HANDSHAKE_TIMEOUT`];
    /// `None` if it fails.
    pub(super) async fn handshake(
        &self,
        tcp: TcpStream,
        remote: SocketAddr,
        side: Side,
    ) -> Option<TlsStream<TcpStream>> {
        let handshake = async {
            match side {
                Side::Server => {
                    let acceptor = self.acceptor.as_ref()?;
                    acceptor.accept(tcp).await.ok().map(TlsStream::Server)
                }
                Side::Client => {
                    let connector = self.connector.as_ref()?;
                    let name = ServerName::IpAddress(remote.ip().into());
                    connector
                        .connect(name, tcp)
                        .await
                        .ok()
                        .map(TlsStream::Client)
                }
            }
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .ok()
            .flatten()
    }
}

fn acceptor(identity: &TlsIdentity) -> io::Result<TlsAcceptor> {
    let (chain, key) = match identity {
        TlsIdentity::Files {
            certificate_chain,
            private_key,
        } => {
            let chain = CertificateDer::pem_file_iter(certificate_chain)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| invalid(format!("{}: {e}", certificate_chain.display())))?;
            let key = PrivateKeyDer::from_pem_file(private_key)
                .map_err(|e| invalid(format!("{}: {e}", private_key.display())))?;
            (chain, key)
        }
        TlsIdentity::SelfSigned { names } => {
            let generated = rcgen::generate_simple_self_signed(names.clone()).map_err(invalid)?;
            let key =
                PrivateKeyDer::try_from(generated.signing_key.serialize_der()).map_err(invalid)?;
            (vec![generated.cert.der().clone()], key)
        }
    };
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(invalid)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(invalid)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn connector(verify: &TlsVerify) -> io::Result<TlsConnector> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(invalid)?;
    let config = match verify {
        TlsVerify::InsecureAcceptAny => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(
                provider().signature_verification_algorithms,
            )))
            .with_no_client_auth(),
        TlsVerify::SystemRoots | TlsVerify::Roots(_) => {
            let mut roots = RootCertStore::empty();
            let certs = match verify {
                TlsVerify::Roots(files) => files
                    .iter()
                    .map(|f| {
                        CertificateDer::pem_file_iter(f)
                            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                            .map_err(|e| invalid(format!("{}: {e}", f.display())))
                    })
                    .collect::<io::Result<Vec<_>>>()?
                    .into_iter()
                    .flatten()
                    .collect(),
                _ => rustls_native_certs::load_native_certs().certs,
            };
            // Unusable system certificates are skipped, as browsers do.
            roots.add_parsable_certificates(certs);
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// [`TlsVerify::InsecureAcceptAny`]: signatures are still checked (the
/// handshake stays sound), the certificate itself is not.
#[derive(Debug)]
struct AcceptAny(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
