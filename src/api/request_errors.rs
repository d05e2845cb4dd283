//! Statuses that tonic gives to requests it could not read, restated as the caller's fault.
//!
//! tonic answers a request message over the size limit with OUT_OF_RANGE, and a frame it cannot
//! read (a truncated message, an unknown compression flag, no message at all) or, in the health
//! service's own codec, a message prost cannot decode, with INTERNAL.
//! INTERNAL tells a caller "a bug in the service: report it, do not retry", and OUT_OF_RANGE is
//! for positions past the end of something. This layer, around every route of both ports, turns
//! them into RESOURCE_EXHAUSTED stating the limit (the code gRPC's own implementations use for
//! an oversized message) and INVALID_ARGUMENT naming what failed. It matches tonic's own
//! messages, which tests/api/requests.rs pins down, so a tonic upgrade that rewords them fails
//! a test instead of silently answering INTERNAL again.

use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::convert::errors::with_error_info;
use super::convert::{Reason, error};

fn too_large(message: String) -> Status {
    error(
        Code::ResourceExhausted,
        Reason::MessageTooLarge,
        message,
        &[],
    )
}

fn malformed(message: impl Into<String>) -> Status {
    error(
        Code::InvalidArgument,
        Reason::MalformedRequest,
        message,
        &[],
    )
}

/// The caller's-fault status that replaces `status`, when tonic gave a request it could not read
/// a code that blames the service.
pub(crate) fn restated(status: &Status) -> Option<Status> {
    let message = status.message();
    match status.code() {
        Code::OutOfRange => message
            .strip_prefix("Error, decoded message length too large: ")
            .map(|sizes| {
                too_large(format!(
                    "the request message is too large: {}",
                    sizes.replace("the limit is: ", "the limit is ")
                ))
            }),
        Code::Internal => {
            if let Some(cause) = message.strip_prefix("failed to decode Protobuf message: ") {
                Some(malformed(format!(
                    "the request is not a valid protobuf message: {cause}"
                )))
            } else if let Some(cause) = message.strip_prefix("protocol error: ") {
                Some(malformed(format!(
                    "the request is not a valid gRPC message: {}",
                    cause.trim_end_matches(", while sending request")
                )))
            } else if let Some(cause) = message.strip_prefix("Error decompressing: ") {
                Some(malformed(format!(
                    "the request message does not decompress: {}",
                    cause.trim_end_matches(", while sending request")
                )))
            } else if let Some(cause) = message.strip_prefix("tonic-web: ") {
                // tonic-web's request side: base64 that does not decode, a frame it cannot read.
                Some(malformed(format!(
                    "the gRPC-Web request does not decode: {cause}"
                )))
            } else if message == "Unexpected EOF decoding stream." {
                Some(malformed(
                    "the request ended inside a gRPC message (the frame is shorter than its length prefix)",
                ))
            } else if message == "Missing request message." {
                Some(malformed(
                    "the request carries no message (a unary call needs exactly one)",
                ))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Restates the status of a trailers-only answer in place. Every RPC here but reflection takes
/// one request message, read before the answer starts, so a request that cannot be read is
/// always answered trailers-only. (tonic-reflection ends its stream with OK on a request it
/// cannot decode: never INTERNAL, so it needs nothing here.)
///
/// Any other error status without an ErrorInfo (tonic's own: an unknown method, a deadline)
/// gets one whose reason is its code's name, so every error a caller sees has one.
fn restate_in(headers: &mut http::HeaderMap) {
    // The usual answer carries grpc-status 0 or none at all: one lookup and out.
    match headers.get("grpc-status").map(http::HeaderValue::as_bytes) {
        None | Some(b"0") => return,
        Some(_) => {}
    }
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    let (replacement, restated) = match restated(&status) {
        Some(replacement) => (replacement, true),
        None if status.get_error_details().error_info().is_none() => {
            let code = status.code();
            (with_error_info(status, Reason::Other(code)), false)
        }
        None => return,
    };
    if restated && replacement.code() == Code::ResourceExhausted {
        // gRPC's retry policy (clients/service-config.json) retries RESOURCE_EXHAUSTED, but
        // the same oversized message fails again: a negative pushback tells clients not to.
        headers.insert(
            "grpc-retry-pushback-ms",
            http::HeaderValue::from_static("-1"),
        );
    }
    headers.remove("grpc-status-details-bin");
    if replacement.add_header(headers).is_err() {
        tracing::debug!("could not restate a status: its message is not a header value");
    }
}

/// A tower layer applying `restated` to every gRPC answer.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestErrorsLayer;

impl<S> tower::Layer<S> for RequestErrorsLayer {
    type Service = RequestErrors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestErrors { inner }
    }
}

/// The service [`RequestErrorsLayer`] wraps around the routes.
#[derive(Debug, Clone)]
pub struct RequestErrors<S> {
    inner: S,
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for RequestErrors<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>> + Send,
    ResBody: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            restate_in(response.headers_mut());
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_is_resource_exhausted_stating_the_limit() {
        let status = restated(&Status::out_of_range(
            "Error, decoded message length too large: found 9000000 bytes, the limit is: 8388608 bytes",
        ))
        .expect("restated");
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.message(),
            "the request message is too large: found 9000000 bytes, the limit is 8388608 bytes"
        );
    }

    #[test]
    fn the_services_own_statuses_are_left_alone() {
        assert!(restated(&Status::internal("internal error; see the service logs")).is_none());
        assert!(restated(&Status::out_of_range("after_cursor: is older than the log")).is_none());
        assert!(restated(&Status::unavailable("the database is unavailable")).is_none());
    }
}
