//! Throwaway certificate authorities for the TLS tests (of `tests/api` and `tests/cli`): a CA
//! made by rcgen, server certificates for 127.0.0.1 and localhost, and client certificates,
//! written as PEM files into a temporary directory removed on drop.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate's PEM file.
    pub cert: PathBuf,
    /// The key's PEM file.
    pub key: PathBuf,
    /// The certificate's PEM text.
    pub cert_pem: String,
    /// The key's PEM text.
    pub key_pem: String,
}

impl CertFiles {
    /// The certificate's path as a flag value.
    pub fn cert_arg(&self) -> &str {
        self.cert.to_str().expect("a UTF-8 path")
    }

    /// The key's path as a flag value.
    pub fn key_arg(&self) -> &str {
        self.key.to_str().expect("a UTF-8 path")
    }
}

/// A CA with its own temporary directory.
pub struct Pki {
    dir: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// The CA certificate's PEM file.
    pub ca: PathBuf,
    /// The CA certificate's PEM text.
    pub ca_pem: String,
}

impl Pki {
    /// A new CA named `name` (its common name, and part of the directory's name).
    pub fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("webhooks-pki-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a key"))
            .expect("a self-signed CA");
        let ca_pem = issuer.pem();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, &ca_pem).expect("CA written");
        Self {
            dir,
            issuer,
            ca,
            ca_pem,
        }
    }

    /// The CA file's path as a flag value.
    pub fn ca_arg(&self) -> &str {
        self.ca.to_str().expect("a UTF-8 path")
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A server certificate for 127.0.0.1 and localhost.
    pub fn server(&self) -> CertFiles {
        self.leaf(
            "server",
            vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate for `name`.
    pub fn client(&self, name: &str) -> CertFiles {
        self.leaf(
            name,
            vec![format!("{name}.clients.test")],
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    fn leaf(&self, name: &str, names: Vec<String>, usage: ExtendedKeyUsagePurpose) -> CertFiles {
        let mut params = CertificateParams::new(names).expect("leaf parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("a key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("a certificate signed by the CA");
        let files = CertFiles {
            cert: self.dir.join(format!("{name}.pem")),
            key: self.dir.join(format!("{name}-key.pem")),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        std::fs::write(&files.cert, &files.cert_pem).expect("certificate written");
        std::fs::write(&files.key, &files.key_pem).expect("key written");
        files
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
