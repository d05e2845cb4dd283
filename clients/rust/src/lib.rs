//! Rust client of the webhooks gRPC API: the generated clients and messages ([`v1`], and the
//! `google.rpc` error details in [`rpc`]), plus a small layer every caller needs:
//!
//! - [`Client::builder`]: a bearer token, TLS (the public web roots or a private CA, and a
//!   client certificate for mutual TLS), a default deadline, and retries with exponential
//!   backoff and jitter of UNAVAILABLE and RESOURCE_EXHAUSTED that wait the
//!   `google.rpc.RetryInfo` delay when the service sends one (the policy of
//!   `clients/service-config.json`, see [`retry`]);
//! - typed helpers for publishing a decision ([`Client::publish_withdrawal_decision`],
//!   [`decision::decision`]);
//! - error details decoded: a bad request's field -> rule list ([`FieldViolation`]), the
//!   `ErrorInfo` and the `RetryInfo` delay ([`StatusDetails`], [`Error`]).
//!
//! ```no_run
//! use webhooks_client::{Client, Verdict, v1};
//!
//! # async fn example() -> Result<(), webhooks_client::Error> {
//! let client = Client::builder("http://127.0.0.1:50051")
//!     .bearer_token("ingest-token")
//!     .connect()
//!     .await?;
//! let withdrawal = v1::WithdrawalRequest {
//!     id: "wd-1".into(),
//!     client_id: "client-7".into(),
//!     amount: "1250.00".into(),
//!     currency: "EUR".into(),
//!     ..Default::default()
//! };
//! let published = client
//!     .publish_withdrawal_decision("wd-1/approved/1", Verdict::Approved { node: 1 }, withdrawal)
//!     .await?;
//! println!("queued {} deliveries", published.delivery_ids.len());
//! # Ok(())
//! # }
//! ```

pub mod decision;
pub mod details;
pub mod retry;
pub mod tls;
pub mod transport;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Endpoint;

pub use decision::Verdict;
pub use details::{ErrorDetails, FieldViolation, StatusDetails};
pub use rustls;
pub use tls::TlsError;
pub use tonic;

/// `backoffice.webhooks.v1`: the webhook service's messages and clients (no servers).
pub mod v1 {
    // Generated: its docs are the .proto comments, written for the proto (`<base64>` is no HTML).
    #![allow(
        clippy::all,
        clippy::pedantic,
        missing_docs,
        rustdoc::invalid_html_tags
    )]
    tonic::include_proto!("backoffice.webhooks.v1");
}

/// `google.rpc`: `Status` and the error details (`BadRequest`, `ErrorInfo`, `RetryInfo`, ...)
/// the service puts in `grpc-status-details-bin`.
pub mod rpc {
    #![allow(
        clippy::all,
        clippy::pedantic,
        missing_docs,
        rustdoc::invalid_html_tags,
        rustdoc::bare_urls,
        rustdoc::broken_intra_doc_links
    )]
    tonic::include_proto!("google.rpc");
}

/// The encoded file descriptor set of the API's `.proto` files (and the error details), for
/// reflection-based tools such as printing messages as proto3 JSON.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    tonic::include_file_descriptor_set!("webhooks_client_descriptor");

/// How long connecting may take before [`ClientBuilder::connect`] gives up.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The channel every client of a [`Client`] shares: the connection, with the default deadline
/// and retries, and the token on every call.
pub type Channel = InterceptedService<retry::Retrying<transport::ServiceChannel>, Credentials>;
/// The generated `WebhookAdmin` client over [`Channel`].
pub type AdminClient = v1::webhook_admin_client::WebhookAdminClient<Channel>;
/// The generated `EventIngest` client over [`Channel`].
pub type IngestClient = v1::event_ingest_client::EventIngestClient<Channel>;

/// Why a call (or connecting) failed. Works with `?` from [`tonic::Status`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The URL given to [`Client::builder`] is not one this client can use.
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The token cannot be sent as a header (it must be printable ASCII).
    InvalidToken,
    /// TLS settings were given for a plain `http://` URL: they would be ignored and the token
    /// would travel unencrypted.
    TlsWithoutHttps {
        /// The URL.
        url: String,
    },
    /// A CA or client certificate file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS settings are unusable.
    Tls(TlsError),
    /// The service could not be reached (or a TLS handshake with it failed).
    Connect {
        /// The URL.
        url: String,
        /// Why; a TLS refusal is among its sources (see [`find_cause`]).
        source: tonic::transport::Error,
    },
    /// The service answered with an error.
    Status(Box<tonic::Status>),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::InvalidUrl { url, reason } => write!(f, "{url}: not a valid URL ({reason})"),
            Error::InvalidToken => f.write_str("the token must be printable ASCII"),
            Error::TlsWithoutHttps { url } => write!(
                f,
                "TLS settings given, but {url} is plain http:// (no TLS): use https://"
            ),
            Error::Io { path, source } => {
                write!(f, "{}: cannot read it ({source})", path.display())
            }
            Error::Tls(error) => error.fmt(f),
            Error::Connect { url, source } => {
                write!(f, "cannot reach the service at {url}: {source}")
            }
            Error::Status(status) => write!(f, "{:?}: {}", status.code(), status.message()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Tls(error) => Some(error),
            Error::Connect { source, .. } => Some(source),
            Error::Status(status) => Some(status.as_ref()),
            Error::InvalidUrl { .. } | Error::InvalidToken | Error::TlsWithoutHttps { .. } => None,
        }
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Error::Status(Box::new(status))
    }
}

impl From<TlsError> for Error {
    fn from(error: TlsError) -> Self {
        Error::Tls(error)
    }
}

impl Error {
    /// The service's status, when it answered with an error.
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            Error::Status(status) => Some(status),
            _ => None,
        }
    }

    /// The gRPC code: the service's, or UNAVAILABLE when it could not be reached.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            Error::Status(status) => Some(status.code()),
            Error::Connect { .. } => Some(tonic::Code::Unavailable),
            _ => None,
        }
    }

    /// The details of the service's error (empty when there are none).
    pub fn details(&self) -> ErrorDetails {
        self.status()
            .map(StatusDetails::error_details)
            .unwrap_or_default()
    }

    /// The fields a bad request broke, and the rule each broke.
    pub fn field_violations(&self) -> Vec<FieldViolation> {
        self.details().field_violations
    }
}

/// The first error of type `E` in `error`'s sources, `error` included. An `io::Error` hides
/// the error it wraps from `source()` (it returns that error's own source), so each one is
/// opened: a TLS refusal (`rustls::Error`) under a connection error is found.
pub fn find_cause<'a, E: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<E>() {
            return Some(found);
        }
        if let Some(found) = error
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| find_cause::<E>(inner))
        {
            return Some(found);
        }
        current = error.source();
    }
    None
}

/// Adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Clone, Default)]
pub struct Credentials {
    /// The `authorization` value (marked sensitive: not shown by Debug, not HPACK-indexed).
    authorization: Option<MetadataValue<Ascii>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &self.authorization.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Interceptor for Credentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Where the client's trust and identity come from.
#[derive(Debug, Clone, Default)]
enum Trust {
    /// The public web roots, or a CA and a client certificate given as PEM or files.
    #[default]
    WebRoots,
    /// Settings made by the caller.
    Config(Arc<rustls::ClientConfig>),
}

/// A PEM given inline or as a file to read when connecting.
#[derive(Debug, Clone)]
enum Pem {
    Inline(Vec<u8>),
    File(PathBuf),
}

impl Pem {
    fn bytes(&self) -> Result<Vec<u8>, Error> {
        match self {
            Pem::Inline(bytes) => Ok(bytes.clone()),
            Pem::File(path) => std::fs::read(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            }),
        }
    }
}

/// Settings of a [`Client`]; see [`Client::builder`].
#[derive(Clone)]
pub struct ClientBuilder {
    url: String,
    token: Option<String>,
    trust: Trust,
    ca: Option<Pem>,
    identity: Option<(Pem, Pem)>,
    default_deadline: Option<Duration>,
    max_attempts: u32,
    connect_timeout: Duration,
}

impl std::fmt::Debug for ClientBuilder {
    /// Everything but the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("default_deadline", &self.default_deadline)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Sends `token` as `authorization: Bearer <token>` on every call (surrounding whitespace
    /// is dropped; an empty token sends none).
    #[must_use]
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Trusts the CA certificates in `pem` (instead of the public web roots) for an
    /// `https://` URL: for a service whose certificate a private CA signed.
    #[must_use]
    pub fn ca_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca = Some(Pem::Inline(pem.into()));
        self
    }

    /// As [`ClientBuilder::ca_certificate_pem`], from a file read when connecting.
    #[must_use]
    pub fn ca_certificate_file(mut self, path: impl AsRef<Path>) -> Self {
        self.ca = Some(Pem::File(path.as_ref().to_owned()));
        self
    }

    /// Presents this client certificate (PEM, with any intermediates) and key, for a service
    /// that requires mutual TLS.
    #[must_use]
    pub fn client_certificate_pem(
        mut self,
        certificate: impl Into<Vec<u8>>,
        key: impl Into<Vec<u8>>,
    ) -> Self {
        self.identity = Some((Pem::Inline(certificate.into()), Pem::Inline(key.into())));
        self
    }

    /// As [`ClientBuilder::client_certificate_pem`], from files read when connecting.
    #[must_use]
    pub fn client_certificate_files(
        mut self,
        certificate: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Self {
        self.identity = Some((
            Pem::File(certificate.as_ref().to_owned()),
            Pem::File(key.as_ref().to_owned()),
        ));
        self
    }

    /// Uses these TLS settings as they are (they must offer ALPN `h2`), instead of the CA and
    /// client certificate settings above.
    #[must_use]
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.trust = Trust::Config(config);
        self
    }

    /// The deadline of each unary call that sets none itself (`tonic::Request::set_timeout`);
    /// 10 s unless changed. `WatchDeliveries` streams have none.
    #[must_use]
    pub fn default_deadline(mut self, deadline: Duration) -> Self {
        self.default_deadline = Some(deadline);
        self
    }

    /// No default deadline: unary calls wait as long as the service takes.
    #[must_use]
    pub fn no_default_deadline(mut self) -> Self {
        self.default_deadline = None;
        self
    }

    /// At most `attempts` attempts per call, the first included (1: no retries; the service
    /// config's 5 at most).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// How long making a connection may take (5 s unless changed).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Connects now: fails with [`Error::Connect`] when the service cannot be reached.
    pub async fn connect(self) -> Result<Client, Error> {
        let (endpoint, tls, credentials) = self.prepare()?;
        let channel = transport::ServiceChannel::connect(endpoint, tls)
            .await
            .map_err(|source| Error::Connect {
                url: self.url.clone(),
                source,
            })?;
        Ok(self.client(channel, credentials))
    }

    /// A client that connects on its first call (and reconnects as needed): a service that is
    /// not up yet fails calls with UNAVAILABLE, which are retried.
    pub fn connect_lazy(self) -> Result<Client, Error> {
        let (endpoint, tls, credentials) = self.prepare()?;
        let channel = transport::ServiceChannel::connect_lazy(endpoint, tls);
        Ok(self.client(channel, credentials))
    }

    fn client(&self, channel: transport::ServiceChannel, credentials: Credentials) -> Client {
        let retrying = retry::Retrying::new(channel, self.default_deadline, self.max_attempts);
        Client {
            channel: InterceptedService::new(retrying, credentials),
        }
    }

    /// The token as a header value.
    fn credentials(&self) -> Result<Credentials, Error> {
        let token = self.token.as_deref().map(str::trim).unwrap_or_default();
        if token.is_empty() {
            return Ok(Credentials::default());
        }
        // Header values may carry bytes beyond ASCII, which no service's token check expects.
        if !token.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            return Err(Error::InvalidToken);
        }
        let mut value =
            MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| Error::InvalidToken)?;
        value.set_sensitive(true);
        Ok(Credentials {
            authorization: Some(value),
        })
    }

    /// The TLS settings for an `https://` URL.
    fn tls_settings(&self) -> Result<Arc<rustls::ClientConfig>, Error> {
        if let Trust::Config(config) = &self.trust {
            return Ok(config.clone());
        }
        let roots = match &self.ca {
            Some(pem) => tls::roots_from_pem(&pem.bytes()?)?,
            None => tls::web_roots(),
        };
        let identity = match &self.identity {
            Some((certificate, key)) => Some(tls::Identity::from_pem(
                &certificate.bytes()?,
                &key.bytes()?,
            )?),
            None => None,
        };
        Ok(tls::client_config(roots, identity)?)
    }

    /// The endpoint, the TLS target for `https://`, and the credentials.
    fn prepare(&self) -> Result<(Endpoint, Option<transport::TlsTarget>, Credentials), Error> {
        let credentials = self.credentials()?;
        let url = self.url.trim();
        let invalid = |reason: String| Error::InvalidUrl {
            url: url.to_owned(),
            reason,
        };
        let uri: tonic::codegen::http::Uri = url
            .parse()
            .map_err(|e: tonic::codegen::http::uri::InvalidUri| invalid(e.to_string()))?;
        let https = uri
            .scheme_str()
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https"));
        let tls_given =
            self.ca.is_some() || self.identity.is_some() || matches!(self.trust, Trust::Config(_));
        if !https && tls_given {
            return Err(Error::TlsWithoutHttps {
                url: url.to_owned(),
            });
        }
        let (endpoint, tls) = if https {
            // tonic sees http:// (it must not add TLS of its own) and sends the https origin.
            let host = uri
                .host()
                .ok_or_else(|| invalid("no host".to_owned()))?
                .to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let bare_host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let server_name = rustls::pki_types::ServerName::try_from(bare_host)
                .map_err(|e| invalid(format!("`{host}` is not a host name TLS can check: {e}")))?;
            let endpoint = Endpoint::from_shared(format!("http://{host}:{port}"))
                .map_err(|e| invalid(e.to_string()))?
                .origin(uri.clone());
            let target = transport::TlsTarget {
                config: self.tls_settings()?,
                server_name,
                address: format!("{host}:{port}"),
            };
            (endpoint, Some(target))
        } else {
            let endpoint =
                Endpoint::from_shared(url.to_owned()).map_err(|e| invalid(e.to_string()))?;
            (endpoint, None)
        };
        Ok((
            endpoint.connect_timeout(self.connect_timeout),
            tls,
            credentials,
        ))
    }
}

/// A connection to the webhooks service; cheap to clone (clones share the connection).
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
}

impl Client {
    /// Settings for a client of the service at `url` (`http://host:port`, or `https://` for
    /// TLS): no token, the public web roots, the service config's deadline and retries.
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            token: None,
            trust: Trust::WebRoots,
            ca: None,
            identity: None,
            default_deadline: Some(retry::DEFAULT_DEADLINE),
            max_attempts: retry::UNARY_POLICY.max_attempts,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The `WebhookAdmin` client: webhooks, deliveries, and the `WatchDeliveries` stream.
    pub fn admin(&self) -> AdminClient {
        v1::webhook_admin_client::WebhookAdminClient::new(self.channel.clone())
    }

    /// The `EventIngest` client: publishing decisions.
    pub fn ingest(&self) -> IngestClient {
        v1::event_ingest_client::EventIngestClient::new(self.channel.clone())
    }

    /// Publishes `verdict` on `request` (see [`decision::decision`]); retried as the service
    /// config says, which is safe: a repeat with the same idempotency key publishes nothing new.
    pub async fn publish_decision(
        &self,
        idempotency_key: impl Into<String>,
        verdict: Verdict,
        request: impl Into<v1::publish_event_request::Request>,
    ) -> Result<v1::PublishEventResponse, Error> {
        let message = decision::decision(idempotency_key, verdict, request, None);
        Ok(self.ingest().publish_event(message).await?.into_inner())
    }

    /// Publishes a decision on a withdrawal request.
    pub async fn publish_withdrawal_decision(
        &self,
        idempotency_key: impl Into<String>,
        verdict: Verdict,
        withdrawal: v1::WithdrawalRequest,
    ) -> Result<v1::PublishEventResponse, Error> {
        self.publish_decision(idempotency_key, verdict, withdrawal)
            .await
    }

    /// Publishes a decision on a prop-trading participation (challenge purchase) request.
    pub async fn publish_participation_decision(
        &self,
        idempotency_key: impl Into<String>,
        verdict: Verdict,
        participation: v1::PropTradingParticipationRequest,
    ) -> Result<v1::PublishEventResponse, Error> {
        self.publish_decision(idempotency_key, verdict, participation)
            .await
    }

    /// Publishes a decision on a prop-trading live-stage (funded account) request.
    pub async fn publish_live_stage_decision(
        &self,
        idempotency_key: impl Into<String>,
        verdict: Verdict,
        live_stage: v1::PropTradingLiveStageRequest,
    ) -> Result<v1::PublishEventResponse, Error> {
        self.publish_decision(idempotency_key, verdict, live_stage)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_on_a_plain_url_are_refused() {
        let result = Client::builder("http://127.0.0.1:1")
            .ca_certificate_pem(b"-----BEGIN CERTIFICATE-----".to_vec())
            .connect_lazy();
        assert!(
            matches!(result, Err(Error::TlsWithoutHttps { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn the_token_is_redacted_from_debug_output() {
        let builder = Client::builder("http://127.0.0.1:1").bearer_token("s3cret-token");
        assert!(!format!("{builder:?}").contains("s3cret"));
        let credentials = builder.credentials().unwrap_or_default();
        assert!(credentials.authorization.is_some());
        assert!(!format!("{credentials:?}").contains("s3cret"));
        assert!(matches!(
            Client::builder("http://h:1")
                .bearer_token("caf\u{e9}")
                .credentials(),
            Err(Error::InvalidToken)
        ));
    }

    #[test]
    fn a_tls_refusal_is_found_under_io_errors() {
        let wrapped = std::io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        assert!(find_cause::<rustls::Error>(&wrapped).is_some());
        assert!(find_cause::<rustls::Error>(&std::io::Error::other("refused")).is_none());
    }
}
