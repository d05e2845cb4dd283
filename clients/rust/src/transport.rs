//! The connection to the service: plain HTTP/2, or TLS made here with tokio-rustls rather than
//! by tonic.
//!
//! Why not tonic's TLS: in TLS 1.3 the client's half of the handshake ends before the server has
//! looked at the client's certificate, so a service that refuses it (or wanted one) says so
//! with an alert on the connection afterwards. tonic's connector reads that alert inside its
//! connection task and the call only sees "connection closed" (CANCELLED), which tells the
//! caller nothing. Here the TLS stream is ours: `Recording` keeps the TLS error the
//! connection died of, and [`ServiceChannel`] puts it under the error of the calls that fail
//! because of it, where [`crate::find_cause`] finds it (the `webhooks` CLI turns it into
//! advice on which flag to fix).
//!
//! The alert is not always there to read: a server that drops a refused connection with the
//! client's first bytes unread makes the kernel reset it, and the reset may overtake the alert.
//! So the handshake is watched too (`NoticingResolver`): when the service asked for a client
//! certificate and then closed a connection before sending a byte over it, that is reported as
//! the likely refusal it is ([`ClosedAfterCertificateRequest`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::{self, Uri};
use tonic::transport::{Channel, Endpoint};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the connections have shown of the service's verdict on this client, to explain a
/// failed call. Shared by the connector, the streams it makes and the channel.
#[derive(Debug, Clone, Default)]
struct Notes(Arc<Mutex<Seen>>);

#[derive(Debug, Default)]
struct Seen {
    /// The TLS error the last connection died of, until a call's failure takes it. A later
    /// error that is not a TLS one (a reset) does not replace it, nor does a new connection
    /// clear it: tonic reconnects at once, and the new connection's failure must not hide the
    /// refusal that explains the call's.
    error: Option<rustls::Error>,
    /// The service asked for a client certificate in a handshake.
    asked_for_certificate: bool,
    /// A connection failed before the service sent a byte of HTTP/2 over it.
    died_before_data: bool,
}

impl Notes {
    fn record(&self, error: &io::Error, got_data: bool) {
        let Ok(mut seen) = self.0.lock() else { return };
        seen.died_before_data |= !got_data;
        if let Some(tls) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            seen.error = Some(tls.clone());
        }
    }

    fn noticed_certificate_request(&self) {
        if let Ok(mut seen) = self.0.lock() {
            seen.asked_for_certificate = true;
        }
    }

    /// What explains a failed call: the TLS error a connection died of; or else, when the
    /// service asked for a client certificate and closed a connection before sending anything,
    /// that inference.
    fn explanation(&self, presented: bool) -> Option<BoxError> {
        let mut seen = self.0.lock().ok()?;
        if let Some(tls) = seen.error.take() {
            return Some(Box::new(ClosedByTls(tls)));
        }
        (seen.asked_for_certificate && seen.died_before_data)
            .then(|| Box::new(ClosedAfterCertificateRequest { presented }) as BoxError)
    }
}

/// A channel to the service; with TLS, a call that fails because the service refused this
/// client says so in its error's sources.
#[derive(Debug, Clone)]
pub struct ServiceChannel {
    /// The tonic channel the calls go through.
    channel: Channel,
    /// What the connections saw of the service's TLS verdict, to explain a failed call.
    notes: Notes,
    /// Whether this client presents a certificate, so a refusal after the service asked for one
    /// can say whether it refused this one or wanted one.
    presents_certificate: bool,
}

/// Where and how to connect with TLS.
#[derive(Clone)]
pub struct TlsTarget {
    /// The client's TLS settings.
    pub config: Arc<rustls::ClientConfig>,
    /// The name the service's certificate must carry (the URL's host).
    pub server_name: ServerName<'static>,
    /// `host:port` to connect to.
    pub address: String,
}

impl ServiceChannel {
    /// Connects `endpoint`, through `tls` when given (the endpoint's URI is then `http://` for
    /// tonic, which must not add TLS of its own, with the `https://` origin set on it).
    /// Fails when the first connection cannot be made.
    pub async fn connect(
        endpoint: Endpoint,
        tls: Option<TlsTarget>,
    ) -> Result<Self, tonic::transport::Error> {
        let (notes, tls, presents_certificate) = Self::prepare(tls);
        let channel = match tls {
            None => endpoint.connect().await?,
            Some(connector) => endpoint.connect_with_connector(connector).await?,
        };
        Ok(Self {
            channel,
            notes,
            presents_certificate,
        })
    }

    /// As [`ServiceChannel::connect`], but the first call connects: a service that is not up
    /// yet fails that call with UNAVAILABLE (which is retried) rather than this constructor.
    pub fn connect_lazy(endpoint: Endpoint, tls: Option<TlsTarget>) -> Self {
        let (notes, tls, presents_certificate) = Self::prepare(tls);
        let channel = match tls {
            None => endpoint.connect_lazy(),
            Some(connector) => endpoint.connect_with_connector_lazy(connector),
        };
        Self {
            channel,
            notes,
            presents_certificate,
        }
    }

    /// The notes, the TLS connector that fills them, and whether it presents a certificate.
    fn prepare(tls: Option<TlsTarget>) -> (Notes, Option<TlsConnect>, bool) {
        let notes = Notes::default();
        let Some(mut target) = tls else {
            return (notes, None, false);
        };
        let presents_certificate = target.config.client_auth_cert_resolver.has_certs();
        let mut config = (*target.config).clone();
        config.client_auth_cert_resolver = Arc::new(NoticingResolver {
            inner: config.client_auth_cert_resolver.clone(),
            notes: notes.clone(),
        });
        target.config = Arc::new(config);
        let connector = TlsConnect {
            target,
            notes: notes.clone(),
        };
        (notes, Some(connector), presents_certificate)
    }

    /// `error`, or what explains it when the service refused this client.
    fn explain(notes: &Notes, presented: bool, error: tonic::transport::Error) -> BoxError {
        notes
            .explanation(presented)
            .unwrap_or_else(|| Box::new(error))
    }
}

impl Service<http::Request<Body>> for ServiceChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let (notes, presented) = (&self.notes, self.presents_certificate);
        self.channel
            .poll_ready(cx)
            .map_err(|e| Self::explain(notes, presented, e))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let (notes, presented) = (self.notes.clone(), self.presents_certificate);
        let call = self.channel.call(request);
        Box::pin(async move { call.await.map_err(|e| Self::explain(&notes, presented, e)) })
    }
}

/// A call failed because its connection ended with this TLS error.
#[derive(Debug)]
pub struct ClosedByTls(pub rustls::Error);

impl std::fmt::Display for ClosedByTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the connection ended in TLS: {}", self.0)
    }
}

impl std::error::Error for ClosedByTls {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A call failed because the service, having asked for a client certificate, closed the
/// connection before answering: it refused the certificate presented, or wanted one.
#[derive(Debug)]
pub struct ClosedAfterCertificateRequest {
    /// Whether this client presented a certificate.
    pub presented: bool,
}

impl std::fmt::Display for ClosedAfterCertificateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the service asked for a client certificate, then closed the connection before \
             answering",
        )
    }
}

impl std::error::Error for ClosedAfterCertificateRequest {}

/// Wraps the client's certificate resolver to notice when the service asks for a certificate
/// (rustls asks the resolver exactly then, whether or not it has one to give).
#[derive(Debug)]
struct NoticingResolver {
    inner: Arc<dyn rustls::client::ResolvesClientCert>,
    notes: Notes,
}

impl rustls::client::ResolvesClientCert for NoticingResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.notes.noticed_certificate_request();
        self.inner.resolve(root_hint_subjects, sigschemes)
    }

    fn only_raw_public_keys(&self) -> bool {
        self.inner.only_raw_public_keys()
    }

    fn has_certs(&self) -> bool {
        self.inner.has_certs()
    }
}

/// The connector tonic calls for each (re)connection: TCP, then the TLS handshake.
#[derive(Clone)]
struct TlsConnect {
    target: TlsTarget,
    notes: Notes,
}

impl Service<Uri> for TlsConnect {
    type Response = TokioIo<Recording<TlsStream<TcpStream>>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let TlsTarget {
            config,
            server_name,
            address,
        } = self.target.clone();
        let notes = self.notes.clone();
        // tonic's connect timeout bounds this whole future, the handshake included.
        Box::pin(async move {
            let tcp = TcpStream::connect(address.as_str()).await?;
            // Small requests must not wait for Nagle's algorithm.
            tcp.set_nodelay(true)?;
            let tls = TlsConnector::from(config).connect(server_name, tcp).await?;
            if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                return Err(io::Error::other(
                    "the service did not negotiate HTTP/2 over TLS (ALPN h2), which gRPC needs",
                ));
            }
            Ok(TokioIo::new(Recording {
                inner: tls,
                notes,
                got_data: false,
            }))
        })
    }
}

/// A TLS stream that notes how it fails (the server's alert, for instance).
struct Recording<S> {
    inner: S,
    notes: Notes,
    /// Some plaintext came from the service: it accepted this connection.
    got_data: bool,
}

impl<S> Recording<S> {
    fn note<T>(&self, result: io::Result<T>) -> io::Result<T> {
        if let Err(error) = &result {
            self.notes.record(error, self.got_data);
        }
        result
    }
}

impl<S: AsyncRead + Unpin> Recording<S> {
    /// After a failed write, reads what the service sent before it closed the connection: a
    /// service refusing the client certificate sends its alert and closes, the client's first
    /// HTTP/2 bytes are answered with a reset, and the write fails before anything has read
    /// the alert that says why.
    fn note_write<T>(&mut self, cx: &mut Context<'_>, result: io::Result<T>) -> io::Result<T> {
        if result.is_err() {
            let mut scratch = [0u8; 1024];
            // A few records at most: the alert comes right after the handshake.
            for _ in 0..8 {
                let mut buf = ReadBuf::new(&mut scratch);
                match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                    Poll::Ready(Err(error)) => {
                        self.notes.record(&error, self.got_data);
                        break;
                    }
                    Poll::Ready(Ok(())) if !buf.filled().is_empty() => continue,
                    Poll::Ready(Ok(())) | Poll::Pending => break,
                }
            }
        }
        self.note(result)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Recording<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut self.inner).poll_read(cx, buf));
        if result.is_ok() && buf.filled().len() > before {
            self.got_data = true;
        }
        Poll::Ready(self.note(result))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Recording<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = ready!(Pin::new(&mut self.inner).poll_write(cx, buf));
        Poll::Ready(self.note_write(cx, result))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = ready!(Pin::new(&mut self.inner).poll_flush(cx));
        Poll::Ready(self.note_write(cx, result))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs));
        Poll::Ready(self.note_write(cx, result))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
