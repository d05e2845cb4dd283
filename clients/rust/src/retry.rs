//! The retry policy of `clients/service-config.json` (shared by every client of the API), and
//! the channel layer that applies it: the default deadline on unary calls, and retries with
//! exponential backoff and full jitter of UNAVAILABLE and RESOURCE_EXHAUSTED, waiting the
//! `google.rpc.RetryInfo.retry_delay` the service asks for when it sends one.
//!
//! Retrying happens below the generated clients, on the HTTP/2 request, so every RPC gets it.
//! An answer is retried only when its status came with the response headers (a "trailers-only"
//! response: the call failed before the service sent a message), or when the connection could
//! not be made at all (the request never left). Once a stream has delivered its headers the
//! call is committed: a `WatchDeliveries` that fails later is the caller's to resume by cursor.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::BodyExt as _;
use tonic::Code;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::{self, HeaderValue, Request, Response};

use crate::details::StatusDetails as _;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How a method's failed attempts are retried (a `retryPolicy` of the service config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The backoff ceiling before the first retry.
    pub initial_backoff: Duration,
    /// The most the backoff ceiling grows to.
    pub max_backoff: Duration,
    /// How much the ceiling grows after each failed attempt.
    pub backoff_multiplier: f64,
    /// The status codes worth another attempt.
    pub retryable_codes: &'static [Code],
}

/// The deadline of the unary calls of `EventIngest` and `WebhookAdmin` (the config's `timeout`).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// The policy of every unary method.
pub const UNARY_POLICY: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    initial_backoff: Duration::from_millis(100),
    max_backoff: Duration::from_secs(5),
    backoff_multiplier: 2.0,
    retryable_codes: &[Code::Unavailable, Code::ResourceExhausted],
};

/// The policy of `WatchDeliveries`: a stream with no deadline, retried on UNAVAILABLE only
/// (before its first message; later the caller resumes with the last cursor it read).
pub const WATCH_POLICY: RetryPolicy = RetryPolicy {
    retryable_codes: &[Code::Unavailable],
    ..UNARY_POLICY
};

/// The path of the one streaming method.
const WATCH_DELIVERIES: &str = "/backoffice.webhooks.v1.WebhookAdmin/WatchDeliveries";

/// The policy and default deadline of the method at `path`.
fn method_config(path: &str) -> (RetryPolicy, Option<Duration>) {
    if path == WATCH_DELIVERIES {
        (WATCH_POLICY, None)
    } else {
        (UNARY_POLICY, Some(DEFAULT_DEADLINE))
    }
}

impl RetryPolicy {
    /// The backoff ceiling after `failed` failed attempts (1 for the first retry):
    /// `initial_backoff * multiplier^(failed - 1)`, at most `max_backoff`.
    pub fn backoff_ceiling(&self, failed: u32) -> Duration {
        let exponent = i32::try_from(failed.saturating_sub(1)).unwrap_or(i32::MAX);
        let seconds = self.initial_backoff.as_secs_f64() * self.backoff_multiplier.powi(exponent);
        Duration::try_from_secs_f64(seconds)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// How long to wait before the next attempt after `failed` failed attempts: the delay the
    /// service asked for (`RetryInfo`) when it gave one, else a random point of
    /// `[0, ceiling]` (`jitter` in `[0, 1)`), so clients failed together do not come back
    /// together.
    pub fn delay(&self, failed: u32, asked: Option<Duration>, jitter: f64) -> Duration {
        asked.unwrap_or_else(|| self.backoff_ceiling(failed).mul_f64(jitter.clamp(0.0, 1.0)))
    }

    /// Whether a call that failed with `code` may be tried again.
    pub fn retries(&self, code: Code) -> bool {
        self.retryable_codes.contains(&code)
    }
}

/// A number in `[0, 1)` that differs from call to call, from the standard library's randomly
/// keyed hasher: jitter needs no cryptographic randomness (nor a dependency for it).
fn jitter() -> f64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    // The top 53 bits, as the mantissa of a double in [0, 1).
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// A `grpc-timeout` header value: `<at most 8 digits><unit>`.
pub(crate) fn encode_timeout(timeout: Duration) -> HeaderValue {
    let millis = timeout.as_millis().max(1);
    let text = if millis < 100_000_000 {
        format!("{millis}m")
    } else {
        format!("{}S", timeout.as_secs().min(99_999_999))
    };
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("99999999S"))
}

/// The duration of a `grpc-timeout` header value, when it is one.
pub(crate) fn parse_timeout(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?;
    let unit_at = text.len().checked_sub(1)?;
    let (digits, unit) = text.split_at(unit_at);
    let number: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(number.saturating_mul(3600)),
        "M" => Duration::from_secs(number.saturating_mul(60)),
        "S" => Duration::from_secs(number),
        "m" => Duration::from_millis(number),
        "u" => Duration::from_micros(number),
        "n" => Duration::from_nanos(number),
        _ => return None,
    })
}

/// The status of a response whose headers already say how the call ended (trailers-only).
fn status_in_headers(response: &Response<Body>) -> Option<tonic::Status> {
    response.headers().get("grpc-status")?;
    tonic::Status::from_header_map(response.headers())
}

/// Whether a failed request never reached the service: the connection could not be made, and
/// not because of TLS (a certificate refused one way or the other stays refused). Anything else
/// (a deadline, a connection lost mid-call) is not retried here.
fn never_sent(error: &BoxError) -> bool {
    let error: &(dyn std::error::Error + 'static) = error.as_ref();
    crate::find_cause::<tonic::ConnectError>(error).is_some()
        && crate::find_cause::<rustls::Error>(error).is_none()
}

/// The channel layer that adds the default deadline and retries (see the module's docs).
#[derive(Debug, Clone)]
pub struct Retrying<S> {
    inner: S,
    /// The deadline of unary calls that set none; `None` leaves them without one.
    default_deadline: Option<Duration>,
    /// At most this many attempts per call (1: no retries), below the policy's own maximum.
    max_attempts: u32,
}

impl<S> Retrying<S> {
    /// `inner` with the service config's deadline and retries.
    pub fn new(inner: S, default_deadline: Option<Duration>, max_attempts: u32) -> Self {
        Self {
            inner,
            default_deadline,
            max_attempts: max_attempts.max(1),
        }
    }
}

/// A request's parts, to send it again (`http::request::Parts` is not `Clone`).
struct Template {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    headers: http::HeaderMap,
    extensions: http::Extensions,
}

impl Template {
    fn request(&self, body: &tonic::codegen::Bytes) -> Request<Body> {
        let mut request = Request::new(Body::new(http_body_util::Full::new(body.clone())));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers.clone();
        *request.extensions_mut() = self.extensions.clone();
        request
    }
}

impl<S> Service<Request<Body>> for Retrying<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
{
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The ready service makes this call; the clone left behind becomes ready later.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (policy, method_deadline) = method_config(request.uri().path());
        let default_deadline = method_deadline.and(self.default_deadline);
        let max_attempts = self.max_attempts.min(policy.max_attempts);
        Box::pin(async move {
            let started = Instant::now();
            let (parts, body) = request.into_parts();
            let mut template = Template {
                method: parts.method,
                uri: parts.uri,
                version: parts.version,
                headers: parts.headers,
                extensions: parts.extensions,
            };
            // The caller's own deadline (`Request::set_timeout`) wins over the default.
            let deadline = match template.headers.get("grpc-timeout") {
                Some(value) => parse_timeout(value),
                None => default_deadline,
            };
            if let (Some(deadline), false) =
                (deadline, template.headers.contains_key("grpc-timeout"))
            {
                template
                    .headers
                    .insert("grpc-timeout", encode_timeout(deadline));
            }
            // Every method takes one request message: keep its bytes to send them again.
            let body = body.collect().await.map_err(BoxError::from)?.to_bytes();
            let mut failed = 0;
            loop {
                poll_fn(|cx| inner.poll_ready(cx))
                    .await
                    .map_err(Into::into)?;
                let outcome = inner
                    .call(template.request(&body))
                    .await
                    .map_err(Into::into);
                let asked = match &outcome {
                    Ok(response) => match status_in_headers(response) {
                        Some(status) if policy.retries(status.code()) => status.retry_delay(),
                        _ => return outcome,
                    },
                    Err(error) if never_sent(error) => None,
                    Err(_) => return outcome,
                };
                failed += 1;
                if failed >= max_attempts {
                    return outcome;
                }
                let wait = policy.delay(failed, asked, jitter());
                if let Some(deadline) = deadline {
                    // No attempt that would start after the deadline.
                    let Some(left) = deadline.checked_sub(started.elapsed() + wait) else {
                        return outcome;
                    };
                    if left.is_zero() {
                        return outcome;
                    }
                    template
                        .headers
                        .insert("grpc-timeout", encode_timeout(left));
                }
                drop(outcome);
                tokio::time::sleep(wait).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_initial_up_to_the_maximum() {
        let ceilings: Vec<_> = (1..=8).map(|n| UNARY_POLICY.backoff_ceiling(n)).collect();
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1600, 3200, 5000, 5000].map(Duration::from_millis)
        );
    }

    #[test]
    fn jittered_delays_stay_under_the_ceiling_and_vary() {
        let delays: Vec<_> = (0..50)
            .map(|_| UNARY_POLICY.delay(3, None, jitter()))
            .collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(400)));
        let first = delays[0];
        assert!(delays.iter().any(|d| *d != first), "no jitter: {delays:?}");
        assert_eq!(UNARY_POLICY.delay(2, None, 0.5), Duration::from_millis(100));
    }

    #[test]
    fn the_delay_the_service_asks_for_replaces_the_backoff() {
        let asked = Duration::from_millis(1234);
        assert_eq!(UNARY_POLICY.delay(1, Some(asked), 0.0), asked);
        assert_eq!(UNARY_POLICY.delay(1, Some(asked), 0.99), asked);
    }

    #[test]
    fn the_watch_stream_has_no_deadline_and_retries_unavailable_only() {
        let (watch, deadline) = method_config(WATCH_DELIVERIES);
        assert_eq!(deadline, None);
        assert!(watch.retries(Code::Unavailable));
        assert!(!watch.retries(Code::ResourceExhausted));
        let (unary, deadline) = method_config("/backoffice.webhooks.v1.EventIngest/PublishEvent");
        assert_eq!(deadline, Some(DEFAULT_DEADLINE));
        assert!(unary.retries(Code::ResourceExhausted));
        assert!(!unary.retries(Code::InvalidArgument));
    }

    #[test]
    fn grpc_timeouts_round_trip() {
        for timeout in [Duration::from_millis(1), Duration::from_secs(30)] {
            assert_eq!(parse_timeout(&encode_timeout(timeout)), Some(timeout));
        }
        assert_eq!(
            parse_timeout(&HeaderValue::from_static("2S")),
            Some(Duration::from_secs(2))
        );
        assert_eq!(parse_timeout(&HeaderValue::from_static("2x")), None);
        assert_eq!(parse_timeout(&HeaderValue::from_static("")), None);
    }

    /// The numbers above are clients/service-config.json's, which every client shares.
    #[test]
    fn the_policy_is_the_shared_service_config() {
        let config: serde_json::Value =
            serde_json::from_str(include_str!("../../service-config.json"))
                .unwrap_or_else(|e| panic!("service-config.json is JSON: {e}"));
        let seconds = |value: &serde_json::Value| {
            let text = value.as_str().unwrap_or_default();
            text.strip_suffix('s')
                .and_then(|n| n.parse::<f64>().ok())
                .map(Duration::from_secs_f64)
                .unwrap_or_else(|| panic!("`{text}` is a duration like 0.1s"))
        };
        let codes = |value: &serde_json::Value| -> Vec<Code> {
            value
                .as_array()
                .into_iter()
                .flatten()
                .map(|code| match code.as_str() {
                    Some("UNAVAILABLE") => Code::Unavailable,
                    Some("RESOURCE_EXHAUSTED") => Code::ResourceExhausted,
                    other => panic!("a code this client does not retry: {other:?}"),
                })
                .collect()
        };
        let methods = config["methodConfig"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(methods.len(), 2, "{config}");
        for method in &methods {
            let watch = method["name"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|name| name["method"] == "WatchDeliveries");
            let (policy, deadline) = if watch {
                method_config(WATCH_DELIVERIES)
            } else {
                method_config("/backoffice.webhooks.v1.WebhookAdmin/CreateWebhook")
            };
            let retry = &method["retryPolicy"];
            let expected = RetryPolicy {
                max_attempts: retry["maxAttempts"]
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or_default(),
                initial_backoff: seconds(&retry["initialBackoff"]),
                max_backoff: seconds(&retry["maxBackoff"]),
                backoff_multiplier: retry["backoffMultiplier"].as_f64().unwrap_or_default(),
                retryable_codes: policy.retryable_codes,
            };
            assert_eq!(policy, expected, "{method}");
            assert_eq!(
                policy.retryable_codes,
                codes(&retry["retryableStatusCodes"])
            );
            let timeout = (!method["timeout"].is_null()).then(|| seconds(&method["timeout"]));
            assert_eq!(deadline, timeout, "{method}");
        }
    }
}
