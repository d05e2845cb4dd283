//! The client's TLS settings from PEM: the CAs to trust (the public web roots when none are
//! given), and an optional client certificate for a service that requires mutual TLS. Errors
//! never quote the PEM: a key given where a certificate was expected is a secret.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// Why TLS settings could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// The PEM is malformed; says what (a missing END line), never the text around it.
    NotPem(String),
    /// The PEM holds no `CERTIFICATE` block.
    NoCertificate,
    /// The certificate at this 1-based position cannot be a trust anchor.
    NotUsableCa {
        /// Its position in the PEM.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The PEM holds no private key (PKCS#8, PKCS#1 or SEC1).
    NoPrivateKey,
    /// The client certificate and key do not go together.
    KeyMismatch(String),
    /// rustls refused the settings.
    Setup(String),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::NotPem(why) => write!(f, "not a PEM file ({why})"),
            TlsError::NoCertificate => f.write_str(
                "holds no certificate (expected PEM `-----BEGIN CERTIFICATE-----` blocks)",
            ),
            TlsError::NotUsableCa { index, reason } => {
                write!(f, "certificate {index} is not a usable CA ({reason})")
            }
            TlsError::NoPrivateKey => f.write_str(
                "holds no PEM private key (expected a `-----BEGIN PRIVATE KEY-----`, \
                 `RSA PRIVATE KEY` or `EC PRIVATE KEY` block)",
            ),
            TlsError::KeyMismatch(why) => {
                write!(
                    f,
                    "the client certificate and key do not go together ({why})"
                )
            }
            TlsError::Setup(why) => write!(f, "TLS cannot be set up: {why}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// The certificates of a PEM document, at least one: a document of the wrong kind (a key, say)
/// is named here rather than failing later as an unknown issuer or a refused certificate.
pub fn certificates_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            TlsError::NotPem(match e {
                rustls::pki_types::pem::Error::IllegalSectionStart { .. } => {
                    "a malformed BEGIN line".to_owned()
                }
                other => other.to_string(),
            })
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(certs)
}

/// CA certificates that can each be a trust anchor.
pub fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (index, cert) in certificates_from_pem(pem)?.into_iter().enumerate() {
        roots.add(cert).map_err(|e| TlsError::NotUsableCa {
            index: index + 1,
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// A PEM private key (PKCS#8, PKCS#1 or SEC1). The parse error is not kept: it could quote a
/// line of the key.
pub fn private_key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| TlsError::NoPrivateKey)
}

/// The public web roots (Mozilla's, compiled in, so the same in every container).
pub fn web_roots() -> RootCertStore {
    RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned())
}

/// A client certificate chain and its private key.
#[derive(Debug)]
pub struct Identity {
    /// The certificate, with any intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    /// Its private key.
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// The identity in a certificate PEM and a key PEM.
    pub fn from_pem(certificate: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        Ok(Self {
            chain: certificates_from_pem(certificate)?,
            key: private_key_from_pem(key)?,
        })
    }
}

/// TLS settings trusting `roots` alone (like curl's `--cacert`: a private CA's service has no
/// business presenting a public certificate), presenting `identity` when given, offering
/// HTTP/2 only (gRPC); on the ring provider, whatever provider the process installed.
pub fn client_config(
    roots: RootCertStore,
    identity: Option<Identity>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_root_certificates(roots);
    let mut config = match identity {
        Some(Identity { chain, key }) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| TlsError::KeyMismatch(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_as_a_certificate_is_named_without_quoting_it() {
        let key =
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
        assert_eq!(certificates_from_pem(key), Err(TlsError::NoCertificate));
        assert_eq!(
            private_key_from_pem(b"not a key").err(),
            Some(TlsError::NoPrivateKey)
        );
        let broken = b"-----BEGIN CERTIFICATE-----\nMIIB\n";
        let Err(TlsError::NotPem(why)) = certificates_from_pem(broken) else {
            panic!("a PEM without its END line is malformed")
        };
        assert!(!why.contains("MIIB"), "{why}");
    }
}
