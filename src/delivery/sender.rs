//! One HTTP POST per attempt, over a pooled hyper client (rustls for https). Redirects are not
//! followed; the whole attempt, response body included, runs under one timeout; the response
//! body is read up to a cap.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// At most this much of a response body is kept in history.
pub const RESPONSE_BODY_CAP: usize = 64 * 1024;
/// At most this many response headers are kept in history.
const RESPONSE_HEADER_CAP: usize = 64;

/// What one attempt got.
#[derive(Debug, Clone, Default)]
pub struct AttemptResult {
    /// The response status, when a response arrived.
    pub status: Option<u16>,
    /// The response headers (capped).
    pub response_headers: Vec<(String, String)>,
    /// The response body (capped at [`RESPONSE_BODY_CAP`]).
    pub response_body: String,
    /// Whether the body was cut.
    pub truncated: bool,
    /// 'timeout', 'connect', 'dns', 'tls', 'status' or 'refused' when the attempt failed.
    pub error_kind: Option<&'static str>,
    /// A description of the failure.
    pub error_message: String,
    /// The delay the endpoint asked for with Retry-After (429, 502, 503, 504 only).
    pub retry_after: Option<Duration>,
    /// How long the attempt took.
    pub duration: Duration,
}

impl AttemptResult {
    /// A 2xx response.
    pub fn is_success(&self) -> bool {
        self.error_kind.is_none() && self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// 410 Gone: the endpoint asks to stop sending.
    pub fn is_gone(&self) -> bool {
        self.status == Some(410)
    }

    /// A short reason for history ("HTTP 503", "timeout after 15s", ...).
    pub fn describe(&self) -> String {
        match (self.status, self.error_message.is_empty()) {
            (Some(status), _) => format!("HTTP {status}"),
            (None, false) => self.error_message.clone(),
            (None, true) => "no response".to_owned(),
        }
    }
}

/// Sends signed POSTs.
#[derive(Clone)]
pub struct HttpSender {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl HttpSender {
    /// A sender whose attempts take at most `timeout` in all and `connect_timeout` to connect.
    pub fn new(timeout: Duration, connect_timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(32)
            .build(https);
        Self { client, timeout }
    }

    /// POSTs `body` to `url` with `headers`; never fails, every problem is in the result.
    pub async fn post(&self, url: &str, headers: &[(String, String)], body: &str) -> AttemptResult {
        let started = Instant::now();
        let mut result =
            match tokio::time::timeout(self.timeout, self.exchange(url, headers, body)).await {
                Ok(result) => result,
                Err(_) => AttemptResult {
                    error_kind: Some("timeout"),
                    error_message: format!("no complete response within {:?}", self.timeout),
                    ..AttemptResult::default()
                },
            };
        result.duration = started.elapsed();
        result
    }

    async fn exchange(&self, url: &str, headers: &[(String, String)], body: &str) -> AttemptResult {
        let mut builder = Request::builder().method(Method::POST).uri(url);
        for (name, value) in headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) else {
                continue;
            };
            builder = builder.header(name, value);
        }
        let request = match builder.body(Full::new(Bytes::from(body.to_owned()))) {
            Ok(request) => request,
            Err(e) => {
                return AttemptResult {
                    error_kind: Some("refused"),
                    error_message: format!("invalid request: {e}"),
                    ..AttemptResult::default()
                };
            }
        };
        let response = match self.client.request(request).await {
            Ok(response) => response,
            Err(e) => return classify_error(&e),
        };
        let status = response.status();
        let response_headers: Vec<(String, String)> = response
            .headers()
            .iter()
            .take(RESPONSE_HEADER_CAP)
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let retry_after = if matches!(status.as_u16(), 429 | 502 | 503 | 504) {
            response
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after)
        } else {
            None
        };
        let (response_body, truncated) = read_capped(response.into_body()).await;
        AttemptResult {
            status: Some(status.as_u16()),
            response_headers,
            response_body,
            truncated,
            error_kind: (!status.is_success()).then_some("status"),
            error_message: if status.is_success() {
                String::new()
            } else {
                status_text(status)
            },
            retry_after,
            duration: Duration::ZERO,
        }
    }
}

fn status_text(status: StatusCode) -> String {
    format!("HTTP {}", status)
}

/// Reads the body up to the cap; a body that fails midway keeps what arrived.
async fn read_capped(mut body: hyper::body::Incoming) -> (String, bool) {
    let mut buffer = Vec::new();
    let mut truncated = false;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(data) = frame.into_data() {
            let room = RESPONSE_BODY_CAP - buffer.len();
            if data.len() > room {
                buffer.extend_from_slice(&data[..room]);
                truncated = true;
                break;
            }
            buffer.extend_from_slice(&data);
        }
    }
    (String::from_utf8_lossy(&buffer).into_owned(), truncated)
}

/// Sorts a transport failure into the kinds history shows; every one of them retries.
fn classify_error(error: &hyper_util::client::legacy::Error) -> AttemptResult {
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    let lower = chain.to_ascii_lowercase();
    let kind = if lower.contains("dns error") || lower.contains("failed to lookup") {
        "dns"
    } else if lower.contains("tls") || lower.contains("certificate") || lower.contains("handshake")
    {
        "tls"
    } else if lower.contains("timed out") || lower.contains("timeout") {
        "timeout"
    } else {
        "connect"
    };
    AttemptResult {
        error_kind: Some(kind),
        error_message: chain,
        ..AttemptResult::default()
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value, &format)
        .ok()?
        .assume_utc();
    let wait = at - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
