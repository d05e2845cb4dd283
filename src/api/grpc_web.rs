//! gRPC-Web for browsers and proxies: tonic-web, plus one rule it lacks.
//!
//! tonic-web picks the encoding of its reply from the request's `Accept` header alone, and only
//! when that header is exactly a gRPC-Web type: a `application/grpc-web-text` request with
//! `Accept: */*` (curl, many proxies, a hand-written client) got a binary reply that a text
//! client cannot read. A text request without an explicit gRPC-Web `Accept` is answered in
//! text here, as the request was written.

use std::task::{Context, Poll};

use http::HeaderValue;
use http::header::{ACCEPT, CONTENT_TYPE};
use tower::layer::util::Stack;

const GRPC_WEB_TEXT: &str = "application/grpc-web-text";
const GRPC_WEB_TEXT_PROTO: &str = "application/grpc-web-text+proto";

/// The gRPC-Web translation both ports put around their routes.
pub fn layer() -> Stack<tonic_web::GrpcWebLayer, TextReplyLayer> {
    Stack::new(tonic_web::GrpcWebLayer::new(), TextReplyLayer)
}

/// Gives a gRPC-Web-text request an `Accept` that asks for a text reply, unless it named a
/// gRPC-Web type itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextReplyLayer;

impl<S> tower::Layer<S> for TextReplyLayer {
    type Service = TextReply<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TextReply { inner }
    }
}

/// The service [`TextReplyLayer`] wraps around tonic-web.
#[derive(Debug, Clone)]
pub struct TextReply<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for TextReply<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if let Some(text) = wants_text_reply(request.headers()) {
            request.headers_mut().insert(ACCEPT, text);
        }
        self.inner.call(request)
    }
}

/// The `Accept` a request needs for a text reply: Some for a gRPC-Web-text request whose
/// `Accept` names no gRPC-Web type.
fn wants_text_reply(headers: &http::HeaderMap) -> Option<HeaderValue> {
    let content_type = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    if content_type != GRPC_WEB_TEXT && content_type != GRPC_WEB_TEXT_PROTO {
        return None;
    }
    let names_grpc_web = headers
        .get(ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("application/grpc-web"));
    (!names_grpc_web).then(|| HeaderValue::from_static(GRPC_WEB_TEXT_PROTO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(n, v)| {
                (
                    http::HeaderName::from_static(n),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn a_text_request_with_any_accept_asks_for_text() {
        for accept in [None, Some("*/*"), Some("application/json, */*")] {
            let mut pairs = vec![("content-type", GRPC_WEB_TEXT)];
            pairs.extend(accept.map(|a| ("accept", a)));
            assert!(wants_text_reply(&headers(&pairs)).is_some(), "{accept:?}");
        }
    }

    #[test]
    fn an_explicit_grpc_web_accept_and_binary_requests_are_left_alone() {
        assert!(
            wants_text_reply(&headers(&[
                ("content-type", GRPC_WEB_TEXT),
                ("accept", "application/grpc-web+proto"),
            ]))
            .is_none()
        );
        assert!(wants_text_reply(&headers(&[("content-type", "application/grpc-web")])).is_none());
        assert!(wants_text_reply(&headers(&[("content-type", "application/grpc")])).is_none());
    }
}
