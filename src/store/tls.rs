//! How the service reaches PostgreSQL: `DATABASE_URL` (with libpq's `sslmode` and `sslrootcert`)
//! and `WEBHOOKS_DATABASE_CA`, turned into one [`PgConnector`] that every connection uses: both
//! pools, the LISTEN connection, migrations, database creation and the CLI's database commands.
//!
//! tokio-postgres understands `sslmode=disable|prefer|require` only and rejects `verify-ca`,
//! `verify-full` and `sslrootcert`, so those parameters are taken out of the connection string
//! here, and what they ask for is built into the rustls configuration instead: tokio-postgres is
//! only told whether TLS is optional (`prefer`) or required.
//!
//! The modes mean what they mean to libpq:
//!
//! | `sslmode` | TLS | certificate chain | host name |
//! |---|---|---|---|
//! | `disable` | never | | |
//! | `prefer` (default) | when the server offers it | checked only when a CA is given | no |
//! | `require` | always | checked only when a CA is given | no |
//! | `verify-ca` | always | checked | no |
//! | `verify-full` | always | checked | checked |
//!
//! The CA is `sslrootcert` (a PEM file, or `system` for the bundled Mozilla roots), else
//! `WEBHOOKS_DATABASE_CA`, else, for `verify-ca` and `verify-full`, the Mozilla roots.

use std::error::Error as StdError;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::{Host, SslMode as PgSslMode};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Connection, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Why the database settings cannot be used. These are mistakes in the configuration, found at
/// start-up: retrying does not help, unlike an unreachable database.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseConfigError {
    /// `DATABASE_URL` does not parse, or asks for something contradictory.
    #[error("DATABASE_URL is not valid: {0}")]
    Url(String),
    /// The CA file (`sslrootcert` or `WEBHOOKS_DATABASE_CA`) cannot be read or holds no
    /// certificate.
    #[error("the PostgreSQL CA file {path} cannot be used: {reason}")]
    RootCert {
        /// The file as configured.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// libpq's `sslmode`, all five values (tokio-postgres knows three).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain connections only.
    Disable,
    /// TLS when the server offers it, plain otherwise (libpq's default).
    Prefer,
    /// TLS always; the certificate is checked only against a CA that was given.
    Require,
    /// TLS always; the certificate must chain to a trusted CA; the host name is not checked.
    VerifyCa,
    /// TLS always; the certificate must chain to a trusted CA and name the host.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self, DatabaseConfigError> {
        match value {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-ca" => Ok(Self::VerifyCa),
            "verify-full" => Ok(Self::VerifyFull),
            // libpq's `allow` tries plain first; a downgrade by design, so it is refused rather
            // than quietly read as something else.
            other => Err(DatabaseConfigError::Url(format!(
                "sslmode={other} is not supported (use disable, prefer, require, verify-ca or verify-full)"
            ))),
        }
    }
}

/// The trust anchors a certificate is checked against.
enum Roots {
    /// None given: `prefer` and `require` then do not check the certificate.
    None,
    /// The Mozilla roots bundled with webpki-roots (`sslrootcert=system`, or none given for
    /// `verify-ca` and `verify-full`).
    System,
    /// The certificates of a PEM file.
    File(RootCertStore),
}

/// The settings and the TLS connector for every connection the service makes to PostgreSQL.
/// Cheap to clone.
#[derive(Clone)]
pub struct PgConnector {
    config: tokio_postgres::Config,
    tls: PgTls,
    mode: SslMode,
}

impl std::fmt::Debug for PgConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // tokio-postgres's Debug redacts the password.
        f.debug_struct("PgConnector")
            .field("config", &self.config)
            .field("sslmode", &self.mode)
            .finish()
    }
}

impl PgConnector {
    /// Parses `database_url` (a `postgres://` URL or libpq's `key=value` form) and, when the URL
    /// names no `sslrootcert`, trusts the PEM file `ca_file` (`WEBHOOKS_DATABASE_CA`).
    pub fn new(database_url: &str, ca_file: Option<&Path>) -> Result<Self, DatabaseConfigError> {
        let (rest, tls_params) = split_tls_params(database_url)?;
        let mut config: tokio_postgres::Config = rest
            .parse()
            .map_err(|e: tokio_postgres::Error| DatabaseConfigError::Url(e.to_string()))?;
        let system_roots = tls_params.root_cert.as_deref() == Some("system");
        let mode = match tls_params.mode.as_deref().map(SslMode::parse).transpose()? {
            Some(mode) => mode,
            // As libpq 16: the system roots are only worth having when the name is checked too.
            None if system_roots => SslMode::VerifyFull,
            None => SslMode::Prefer,
        };
        if system_roots && mode != SslMode::VerifyFull {
            return Err(DatabaseConfigError::Url(
                "sslrootcert=system needs sslmode=verify-full (any certificate from a public CA \
                 would pass otherwise)"
                    .to_owned(),
            ));
        }
        let roots = match (tls_params.root_cert.as_deref(), ca_file) {
            (Some("system"), _) => Roots::System,
            (Some(path), _) => Roots::File(read_roots(Path::new(path))?),
            (None, Some(path)) => Roots::File(read_roots(path)?),
            (None, None) => Roots::None,
        };
        let verification = match (mode, roots) {
            (SslMode::Disable | SslMode::Prefer | SslMode::Require, Roots::None) => {
                Verification::Encrypt
            }
            // As libpq: a CA that was given is used, whatever the mode (short of the name).
            (SslMode::Disable | SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, roots) => {
                Verification::Chain(root_store(roots))
            }
            (SslMode::VerifyFull, roots) => Verification::Full(root_store(roots)),
        };
        config.ssl_mode(match mode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
        });
        let tls = PgTls::new(&config, verification)?;
        Ok(Self { config, tls, mode })
    }

    /// The parsed settings (host, database, user, ...), `sslmode` mapped to tokio-postgres's.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The `sslmode` in force (libpq's meaning).
    pub fn ssl_mode(&self) -> SslMode {
        self.mode
    }

    /// The same server and TLS settings with `change` applied to the connection settings (another
    /// database, session options).
    pub fn with_config(&self, change: impl FnOnce(&mut tokio_postgres::Config)) -> Self {
        let mut connector = self.clone();
        change(&mut connector.config);
        connector
    }

    /// The TLS connector, for a pool's manager.
    pub fn tls(&self) -> PgTls {
        self.tls.clone()
    }

    /// Opens one connection outside any pool. The caller drives (spawns) the connection.
    pub async fn connect(
        &self,
    ) -> Result<(Client, Connection<Socket, PgTlsStream>), tokio_postgres::Error> {
        self.config.connect(self.tls.clone()).await
    }
}

/// The `sslmode` and `sslrootcert` of a connection string, taken out of it.
#[derive(Debug, Default, PartialEq)]
struct TlsParams {
    mode: Option<String>,
    root_cert: Option<String>,
}

/// Splits `sslmode` and `sslrootcert` off `s`, returning the rest in the same form (URL or
/// `key=value`) for tokio-postgres to parse.
fn split_tls_params(s: &str) -> Result<(String, TlsParams), DatabaseConfigError> {
    let mut params = TlsParams::default();
    let mut take = |key: &str, value: &str| match key {
        "sslmode" => {
            params.mode = Some(value.to_owned());
            true
        }
        "sslrootcert" => {
            params.root_cert = Some(value.to_owned());
            true
        }
        _ => false,
    };
    let rest = if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        split_url(s, &mut take)?
    } else {
        split_key_values(s, &mut take)?
    };
    Ok((rest, params))
}

/// The query of a `postgres://` URL without the parameters `take` claims. The query starts at
/// the first `?` after the credentials, as tokio-postgres reads it.
fn split_url(
    s: &str,
    take: &mut impl FnMut(&str, &str) -> bool,
) -> Result<String, DatabaseConfigError> {
    let after_credentials = s.find('@').map_or(0, |at| at + 1);
    let Some(question) = s[after_credentials..]
        .find('?')
        .map(|i| i + after_credentials)
    else {
        return Ok(s.to_owned());
    };
    let mut kept = Vec::new();
    for pair in s[question + 1..].split('&') {
        let claimed = match pair.split_once('=') {
            Some((key, value)) => take(&decode(key)?, &decode(value)?),
            None => false,
        };
        if !claimed {
            kept.push(pair);
        }
    }
    let base = &s[..question];
    Ok(if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    })
}

fn decode(s: &str) -> Result<String, DatabaseConfigError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| DatabaseConfigError::Url("a query parameter is not UTF-8".to_owned()))
}

/// libpq's `key=value` form without the parameters `take` claims, every value re-quoted. The
/// quoting rules are tokio-postgres's (and libpq's): values in single quotes, `\` escapes.
fn split_key_values(
    s: &str,
    take: &mut impl FnMut(&str, &str) -> bool,
) -> Result<String, DatabaseConfigError> {
    let mut chars = s.chars().peekable();
    let mut kept = Vec::new();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        if key.is_empty() {
            // Anything left that is not a key is tokio-postgres's to report.
            return Ok(match chars.peek() {
                None => kept.join(" "),
                Some(_) => s.to_owned(),
            });
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next_if_eq(&'=').is_none() {
            return Ok(s.to_owned());
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if_eq(&'\'').is_some();
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\'') if quoted => break,
                Some(c) if !quoted && c.is_whitespace() => break,
                Some('\\') => value.extend(chars.next()),
                Some(c) => value.push(c),
                None if quoted => {
                    return Err(DatabaseConfigError::Url(
                        "unterminated quoted connection parameter value".to_owned(),
                    ));
                }
                None => break,
            }
        }
        if !take(&key, &value) {
            let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
            kept.push(format!("{key}='{escaped}'"));
        }
    }
}

fn read_roots(path: &Path) -> Result<RootCertStore, DatabaseConfigError> {
    let fail = |reason: String| DatabaseConfigError::RootCert {
        path: path.display().to_string(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certificates.is_empty() {
        return Err(fail("it holds no PEM certificate".to_owned()));
    }
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|e| fail(format!("a certificate in it is not usable as a CA: {e}")))?;
    }
    Ok(roots)
}

fn root_store(roots: Roots) -> Arc<RootCertStore> {
    Arc::new(match roots {
        Roots::File(store) => store,
        Roots::None | Roots::System => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    })
}

/// What is checked of the server's certificate.
enum Verification {
    /// Nothing but that the server holds the key of the certificate it shows: the connection is
    /// encrypted, against a passive listener only (`prefer`, `require` without a CA).
    Encrypt,
    /// The chain up to one of these roots, not the name (`verify-ca`, or a CA given).
    Chain(Arc<RootCertStore>),
    /// The chain and the host name (`verify-full`).
    Full(Arc<RootCertStore>),
}

/// The crypto provider of every PostgreSQL connection: ring, as for the rest of the service,
/// given explicitly so that nothing depends on the process default being installed first.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// tokio-postgres-rustls's connector, with errors that name the server and say what failed.
#[derive(Clone)]
pub struct PgTls {
    inner: MakeRustlsConnect,
    /// The configured hosts and their ports, to name the server in an error (tokio-postgres
    /// passes the connector the host only).
    targets: Arc<Vec<(String, u16)>>,
}

/// The stream of a connection made through [`PgTls`].
pub type PgTlsStream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;

impl PgTls {
    fn new(
        config: &tokio_postgres::Config,
        verification: Verification,
    ) -> Result<Self, DatabaseConfigError> {
        let provider = provider();
        let verifier: Arc<dyn ServerCertVerifier> = match verification {
            Verification::Encrypt => Arc::new(EncryptOnly(provider.clone())),
            Verification::Chain(roots) => Arc::new(ChainOnly(web_pki(roots, &provider)?)),
            Verification::Full(roots) => web_pki(roots, &provider)?,
        };
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| DatabaseConfigError::Url(format!("TLS settings: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        let ports = config.get_ports();
        let targets = config
            .get_hosts()
            .iter()
            .enumerate()
            .filter_map(|(i, host)| match host {
                Host::Tcp(name) => {
                    // libpq: one port for all hosts, or one per host.
                    let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                    Some((name.clone(), port))
                }
                Host::Unix(_) => None,
            })
            .collect();
        Ok(Self {
            inner: MakeRustlsConnect::new(client),
            targets: Arc::new(targets),
        })
    }

    fn describe(&self, host: &str) -> String {
        match self.targets.iter().find(|(name, _)| name == host) {
            Some((_, port)) if host.contains(':') => format!("[{host}]:{port}"),
            Some((_, port)) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }
}

fn web_pki(
    roots: Arc<RootCertStore>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, DatabaseConfigError> {
    WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(|e| DatabaseConfigError::Url(format!("TLS settings: {e}")))
}

impl MakeTlsConnect<Socket> for PgTls {
    type Stream = PgTlsStream;
    type TlsConnect = PgTlsConnect;
    type Error = std::convert::Infallible;

    fn make_tls_connect(&mut self, host: &str) -> Result<Self::TlsConnect, Self::Error> {
        let inner = match MakeTlsConnect::<Socket>::make_tls_connect(&mut self.inner, host) {
            Ok(inner) => inner,
            Err(never) => match never {},
        };
        Ok(PgTlsConnect {
            inner,
            server: self.describe(host),
            host: host.to_owned(),
        })
    }
}

/// One TLS handshake with one server.
pub struct PgTlsConnect {
    inner: <MakeRustlsConnect as MakeTlsConnect<Socket>>::TlsConnect,
    /// `host:port`, for the error.
    server: String,
    host: String,
}

impl TlsConnect<Socket> for PgTlsConnect {
    type Stream = PgTlsStream;
    type Error = TlsFailure;
    type Future = Pin<Box<dyn Future<Output = Result<PgTlsStream, TlsFailure>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        let Self {
            inner,
            server,
            host,
        } = self;
        Box::pin(async move {
            inner.connect(stream).await.map_err(|error| TlsFailure {
                reason: reason(&error, &host),
                server,
            })
        })
    }
}

/// A TLS handshake with PostgreSQL that failed: which server, and why in words.
#[derive(Debug, thiserror::Error)]
#[error("TLS to PostgreSQL at {server} failed: {reason}")]
pub struct TlsFailure {
    server: String,
    reason: String,
}

/// What went wrong, in the operator's terms where rustls's own words are terse.
fn reason(error: &std::io::Error, host: &str) -> String {
    let rustls_error = error
        .get_ref()
        .and_then(|inner| (inner as &(dyn StdError + 'static)).downcast_ref::<rustls::Error>());
    match rustls_error {
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            "unknown issuer: the server's certificate does not chain to a trusted CA \
             (give the server's CA with sslrootcert in DATABASE_URL or WEBHOOKS_DATABASE_CA)"
                .to_owned()
        }
        Some(rustls::Error::InvalidCertificate(CertificateError::NotValidForName)) => {
            format!("certificate not valid for name {host:?}")
        }
        Some(rustls::Error::InvalidCertificate(certificate)) => certificate.to_string(),
        Some(other) => other.to_string(),
        None => error.to_string(),
    }
}

/// `verify-ca`: the chain must verify; the name is not checked (a certificate names the host the
/// server was set up as, which may not be how this client reaches it).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // webpki checks the name only once the chain verified, so a name error means the
            // chain is good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without a CA: any certificate, as libpq. The handshake's signatures
/// are still checked, so the connection is encrypted to whoever holds the certificate's key.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> (String, TlsParams) {
        split_tls_params(s).expect("splits")
    }

    #[test]
    fn url_tls_parameters_are_taken_out_and_the_rest_kept() {
        let (rest, params) = split(
            "postgres://u:p%3F@db.example.com:5432/app?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem",
        );
        assert_eq!(
            rest,
            "postgres://u:p%3F@db.example.com:5432/app?application_name=x"
        );
        assert_eq!(params.mode.as_deref(), Some("verify-full"));
        assert_eq!(params.root_cert.as_deref(), Some("/etc/ca.pem"));

        let (rest, params) = split("postgresql://h/db?sslmode=require");
        assert_eq!(rest, "postgresql://h/db");
        assert_eq!(params.mode.as_deref(), Some("require"));

        let (rest, params) = split("postgres://h/db");
        assert_eq!(rest, "postgres://h/db");
        assert_eq!(params, TlsParams::default());
    }

    #[test]
    fn key_value_tls_parameters_are_taken_out_and_the_rest_requoted() {
        let (rest, params) = split(
            "host=db port = 5433 sslmode=verify-ca sslrootcert='/a b/ca.pem' password='it\\'s'",
        );
        assert_eq!(rest, "host='db' port='5433' password='it\\'s'");
        assert_eq!(params.mode.as_deref(), Some("verify-ca"));
        assert_eq!(params.root_cert.as_deref(), Some("/a b/ca.pem"));
        let config: tokio_postgres::Config = rest.parse().expect("tokio-postgres reads it");
        assert_eq!(config.get_password(), Some(&b"it's"[..]));
        assert_eq!(config.get_ports(), &[5433]);
    }

    #[test]
    fn modes_map_as_libpq() {
        let mode = |url: &str| {
            PgConnector::new(url, None).map(|c| (c.ssl_mode(), c.config().get_ssl_mode()))
        };
        assert_eq!(
            mode("postgres://h/db").unwrap(),
            (SslMode::Prefer, PgSslMode::Prefer)
        );
        assert_eq!(
            mode("postgres://h/db?sslmode=disable").unwrap(),
            (SslMode::Disable, PgSslMode::Disable)
        );
        assert_eq!(
            mode("postgres://h/db?sslmode=verify-ca").unwrap(),
            (SslMode::VerifyCa, PgSslMode::Require)
        );
        assert_eq!(
            mode("host=h sslmode=verify-full").unwrap(),
            (SslMode::VerifyFull, PgSslMode::Require)
        );
        assert_eq!(
            mode("postgres://h/db?sslrootcert=system").unwrap(),
            (SslMode::VerifyFull, PgSslMode::Require)
        );
    }

    #[test]
    fn contradictory_or_unknown_settings_are_configuration_errors() {
        for url in [
            "postgres://h/db?sslmode=allow",
            "postgres://h/db?sslmode=bogus",
            "postgres://h/db?sslmode=require&sslrootcert=system",
            "postgres://h/db?bogus=1",
            "host=h sslrootcert='unterminated",
        ] {
            let error = PgConnector::new(url, None).expect_err(url);
            assert!(
                error.to_string().starts_with("DATABASE_URL is not valid"),
                "{error}"
            );
        }
        let error = PgConnector::new(
            "postgres://h/db?sslmode=verify-full&sslrootcert=does-not-exist.pem",
            None,
        )
        .expect_err("a missing CA file");
        assert!(error.to_string().contains("does-not-exist.pem"), "{error}");
    }
}
