//! The console's listener: the console's files, and the gRPC services over gRPC-Web (and plain
//! gRPC), on one address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::Context as _;
use futures_util::future::{Either, Ready, ready};
use http::{Request, Response, header};
use tokio::net::TcpListener;
use tonic::body::Body;
use tonic::service::Routes;
use tonic::transport::ServerTlsConfig;

use crate::api::auth::{AuthLayer, Authenticator};
use crate::connections::ConnectionGuard;

/// The console's address, bound (so its port is known before serving: tests bind port 0).
pub struct ConsoleListener {
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl ConsoleListener {
    /// Binds `addr`.
    pub async fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("could not listen on {addr} (WEBHOOKS_CONSOLE_ADDR)"))?;
        let local_addr = listener.local_addr()?;
        Ok(Self {
            listener,
            local_addr,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves the console's files and `routes` (the gRPC port's services, shared with it) until
    /// `shutdown` resolves, then drains like the gRPC port. gRPC calls pass `auth`'s layer, the
    /// one in front of the gRPC port, so tokens, roles and the ingest rate limit are the same;
    /// `connections` is the gRPC port's guard too, so both count against one connection cap and
    /// get the same idle and handshake timeouts.
    pub async fn serve(
        self,
        routes: Routes,
        auth: Arc<Authenticator>,
        tls: Option<ServerTlsConfig>,
        connections: ConnectionGuard,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        if !super::assets::is_built() {
            tracing::warn!(
                addr = %self.local_addr,
                "the web console's files were not built into this binary: its pages answer 503 \
                 until it is rebuilt after scripts/build-console.sh"
            );
        }
        // Browsers speak gRPC-Web over HTTP/1.1 as well as HTTP/2.
        let (builder, encrypted) = connections.server(tls)?;
        builder
            // Outermost: the files never reach the gRPC-Web translation or the token check.
            .layer(ConsoleLayer)
            .layer(crate::api::grpc_web::layer())
            .layer(AuthLayer::new(auth))
            .add_routes(routes)
            .serve_with_incoming_shutdown(connections.incoming(self.listener, encrypted), shutdown)
            .await
            .context("web console server failed")
    }
}

/// A tower layer answering every request that is not gRPC (nor gRPC-Web) with the console's
/// files ([`super::assets::respond`]); gRPC requests go on to the wrapped service.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleLayer;

impl<S> tower::Layer<S> for ConsoleLayer {
    type Service = ConsoleService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConsoleService { inner }
    }
}

/// The service [`ConsoleLayer`] wraps around the gRPC routes.
#[derive(Debug, Clone)]
pub struct ConsoleService<S> {
    inner: S,
}

impl<S> tower::Service<Request<Body>> for ConsoleService<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if is_grpc(&request) {
            Either::Left(self.inner.call(request))
        } else {
            Either::Right(ready(Ok(super::assets::respond(&request))))
        }
    }
}

/// gRPC and gRPC-Web (`application/grpc`, `application/grpc+proto`, `application/grpc-web`,
/// `application/grpc-web+proto`, `application/grpc-web-text`, ...). A browser never sends these
/// content types when it loads a page or a file.
fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .get(..16)
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case("application/grpc"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_and_grpc_web_go_to_the_services() {
        let with = |content_type: &str| {
            Request::builder()
                .header(header::CONTENT_TYPE, content_type)
                .body(())
                .expect("a valid request")
        };
        assert!(is_grpc(&with("application/grpc")));
        assert!(is_grpc(&with("application/grpc-web+proto")));
        assert!(is_grpc(&with("Application/gRPC-Web-Text")));
        assert!(!is_grpc(&with("text/html")));
        assert!(!is_grpc(&with("application/json")));
        assert!(!is_grpc(&Request::new(())));
    }
}
