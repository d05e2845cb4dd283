//! What the client commands present to the service and whom they trust: the bearer token (from
//! `--token` or a file, so it need not sit in shell history or `ps`), and TLS for an `https://`
//! server (the public web roots, or a private CA with `--ca-cert`; a client certificate with
//! `--client-cert`/`--client-key` where the service requires mutual TLS).
//!
//! Every file is read and checked here, before connecting, so a wrong path or a file of the
//! wrong kind is a usage error naming the flag and the file. Errors never quote a file's
//! content: a token file, or a key file given where a certificate was expected, is a secret.
//! TLS failures met while connecting are turned into messages that say which side refused and
//! which flag fixes it ([`tls_failure`]).

use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use webhooks_client::find_cause;
use webhooks_client::tls::{self, TlsError};

use super::CliError;

/// Larger than any token; a bigger file is the wrong file (and is not read to its end, in case
/// it is a device that never ends).
const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// Larger than any PEM file of certificates or keys a client needs.
const MAX_PEM_FILE: u64 = 1024 * 1024;

/// The token in `path`, without surrounding whitespace (the trailing newline editors and
/// `echo` add). Missing, unreadable, oversized, non-text or empty files are usage errors that
/// name the file, never its content.
pub fn read_token_file(path: &Path) -> Result<String, CliError> {
    let shown = path.display();
    let bytes = read_bounded(path, MAX_TOKEN_FILE)
        .map_err(|e| CliError::Usage(format!("--token-file {shown}: cannot read it ({e})")))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        CliError::Usage(format!(
            "--token-file {shown}: not a token (the file is not text)"
        ))
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(CliError::Usage(format!(
            "--token-file {shown}: the file is empty; it should hold the token"
        )));
    }
    Ok(token.to_owned())
}

/// The file at `path`, refusing one longer than `limit` bytes.
fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "larger than {limit} bytes, so not the right file"
        )));
    }
    Ok(bytes)
}

/// The files behind the TLS flags (`--ca-cert`, `--client-cert`, `--client-key`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsFiles<'a> {
    /// CA certificates to trust instead of the public roots.
    pub ca_cert: Option<&'a Path>,
    /// The client certificate (with its chain).
    pub client_cert: Option<&'a Path>,
    /// The client certificate's private key.
    pub client_key: Option<&'a Path>,
}

impl TlsFiles<'_> {
    /// The TLS flags that were given, e.g. `["--ca-cert"]`.
    pub fn given(&self) -> Vec<&'static str> {
        [
            ("--ca-cert", self.ca_cert.is_some()),
            ("--client-cert", self.client_cert.is_some()),
            ("--client-key", self.client_key.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }

    /// The client's TLS settings: trust `--ca-cert` alone when given (like curl's `--cacert`: a
    /// private CA's service has no business presenting a public certificate), else the public
    /// web roots; present the client certificate when given; offer HTTP/2 only (gRPC).
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, CliError> {
        let roots = match self.ca_cert {
            Some(path) => tls::roots_from_pem(&read_pem(path, "--ca-cert")?)
                .map_err(|e| flag_error("--ca-cert", path, &e))?,
            None => tls::web_roots(),
        };
        let identity = match (self.client_cert, self.client_key) {
            (Some(cert), Some(key)) => Some(tls::Identity {
                chain: tls::certificates_from_pem(&read_pem(cert, "--client-cert")?)
                    .map_err(|e| flag_error("--client-cert", cert, &e))?,
                key: tls::private_key_from_pem(&read_pem(key, "--client-key")?)
                    .map_err(|e| flag_error("--client-key", key, &e))?,
            }),
            (None, None) => None,
            // clap requires both; a caller building the flags by hand gets the same rule.
            _ => {
                return Err(CliError::Usage(
                    "--client-cert and --client-key go together".to_owned(),
                ));
            }
        };
        tls::client_config(roots, identity).map_err(|e| {
            match (e, self.client_cert, self.client_key) {
                (TlsError::KeyMismatch(why), Some(cert), Some(key)) => CliError::Usage(format!(
                    "--client-cert {} and --client-key {} do not go together ({why})",
                    cert.display(),
                    key.display()
                )),
                (other, ..) => CliError::Other(other.to_string()),
            }
        })
    }
}

/// Reads a PEM file for `flag`, bounded in size.
fn read_pem(path: &Path, flag: &str) -> Result<Vec<u8>, CliError> {
    read_bounded(path, MAX_PEM_FILE)
        .map_err(|e| CliError::Usage(format!("{flag} {}: cannot read it ({e})", path.display())))
}

/// A usage error naming the flag and file whose PEM is unusable.
fn flag_error(flag: &str, path: &Path, error: &TlsError) -> CliError {
    CliError::Usage(format!("{flag} {}: {error}", path.display()))
}

/// Which side of a TLS connection refused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFailure {
    /// This client did not trust the service's certificate (a local setting to fix: exit 1).
    ServerNotTrusted(String),
    /// The service did not accept this client's certificate, or wanted one (exit 4, as an
    /// authentication failure).
    ClientRefused(String),
    /// Something else about TLS, such as a plain-HTTP service answering a TLS client.
    Other(String),
}

impl TlsFailure {
    /// The same failure, its message starting with the server it happened with.
    pub fn at(self, url: &str) -> Self {
        let prefix = |message: String| format!("TLS with {url} (--server) failed: {message}");
        match self {
            TlsFailure::ServerNotTrusted(m) => TlsFailure::ServerNotTrusted(prefix(m)),
            TlsFailure::ClientRefused(m) => TlsFailure::ClientRefused(prefix(m)),
            TlsFailure::Other(m) => TlsFailure::Other(prefix(m)),
        }
    }
}

/// What went wrong with TLS in `error` (a connection error or a failed call's status), if
/// anything did: the rustls error somewhere in its sources, with the flag that fixes it.
pub fn tls_failure(error: &(dyn std::error::Error + 'static)) -> Option<TlsFailure> {
    use rustls::{AlertDescription, CertificateError, Error};
    if let Some(closed) =
        find_cause::<webhooks_client::transport::ClosedAfterCertificateRequest>(error)
    {
        return Some(TlsFailure::ClientRefused(if closed.presented {
            format!(
                "{closed}: it most likely refused the client certificate (--client-cert), which \
                 must be signed by the CA the service trusts (its WEBHOOKS_TLS_CLIENT_CA)"
            )
        } else {
            format!(
                "{closed}: it most likely requires a client certificate: pass --client-cert and \
                 --client-key (WEBHOOKS_CLIENT_CERT, WEBHOOKS_CLIENT_KEY)"
            )
        }));
    }
    let tls = find_cause::<rustls::Error>(error)?;
    Some(match tls {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            TlsFailure::ServerNotTrusted(format!(
                "the service's certificate is not signed by a CA this client trusts ({tls}): \
                 for a private CA, pass its certificate with --ca-cert (WEBHOOKS_CA_CERT)"
            ))
        }
        Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => TlsFailure::ServerNotTrusted(format!(
            "the service's certificate is not for the host in --server ({tls}): use a name or \
             address the certificate lists"
        )),
        Error::InvalidCertificate(_) => {
            TlsFailure::ServerNotTrusted(format!("the service's certificate was refused ({tls})"))
        }
        Error::AlertReceived(AlertDescription::CertificateRequired) => {
            TlsFailure::ClientRefused(format!(
                "the service requires a client certificate ({tls}): pass --client-cert and \
                 --client-key (WEBHOOKS_CLIENT_CERT, WEBHOOKS_CLIENT_KEY)"
            ))
        }
        Error::AlertReceived(
            AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateUnknown
            | AlertDescription::AccessDenied,
        ) => TlsFailure::ClientRefused(format!(
            "the service refused the client certificate ({tls}): it must be signed by the CA \
             the service trusts (its WEBHOOKS_TLS_CLIENT_CA) and be valid for client auth"
        )),
        Error::InvalidMessage(_) => TlsFailure::Other(format!(
            "the service did not answer in TLS ({tls}): if it serves plain HTTP, use http:// \
             in --server"
        )),
        other => TlsFailure::Other(format!("TLS failed ({other})")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_errors_are_found_inside_io_errors() {
        let wrapped = std::io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        let Some(TlsFailure::ServerNotTrusted(message)) = tls_failure(&wrapped) else {
            panic!("the server's certificate is the problem")
        };
        assert!(message.contains("--ca-cert"), "{message}");
        let plain = std::io::Error::other("connection refused");
        assert_eq!(tls_failure(&plain), None);
    }
}
