//! One HTTP POST per attempt, over a pooled hyper client (rustls for https). Redirects are not
//! followed; the whole attempt, response body included, runs under one timeout; the response
//! body is read up to a cap. Connections go through the SSRF guard ([`super::guard`]): a
//! destination it refuses is never contacted, and the attempt is recorded as `refused`.
//!
//! Webhooks with their own TLS settings (a client certificate for mutual TLS, a private CA)
//! get their own client, built once and cached per webhook until the webhook changes; every
//! other webhook shares one client and its connection pool. Each client connects through the
//! same guard.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use time::OffsetDateTime;

use super::guard::{DestinationGuard, GuardedConnector, find_refusal};
use crate::domain::{AttemptErrorKind, DestinationTls, WebhookId};

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
    /// Why the attempt failed, when it did.
    pub error_kind: Option<AttemptErrorKind>,
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

/// A pooled HTTP(S) client.
type PooledClient = Client<HttpsConnector<GuardedConnector>, Full<Bytes>>;

/// The most per-webhook clients kept. Past it one is dropped (with its pooled connections) and
/// built again when next needed, which costs a TLS handshake, not correctness.
const MAX_CUSTOM_CLIENTS: usize = 256;

/// Sends signed POSTs.
#[derive(Clone)]
pub struct HttpSender {
    client: PooledClient,
    guard: DestinationGuard,
    timeout: Duration,
    connect_timeout: Duration,
    /// The clients of webhooks with their own TLS settings, by webhook, with the version of
    /// the settings each was built from.
    custom: Arc<Mutex<HashMap<WebhookId, (OffsetDateTime, PooledClient)>>>,
}

impl HttpSender {
    /// A sender whose attempts take at most `timeout` in all and `connect_timeout` to connect,
    /// and that connects only where `guard` allows (checked after resolving, on every new
    /// connection).
    pub fn new(timeout: Duration, connect_timeout: Duration, guard: DestinationGuard) -> Self {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(guarded_http(&guard, connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(32)
            .build(https);
        Self {
            client,
            guard,
            timeout,
            connect_timeout,
            custom: Arc::default(),
        }
    }

    /// POSTs `body` to `url` with `headers`; never fails, every problem is in the result.
    pub async fn post(&self, url: &str, headers: &[(String, String)], body: &str) -> AttemptResult {
        self.post_with_tls(None, url, headers, body).await
    }

    /// Like [`HttpSender::post`], over the TLS settings of webhook `tls.0` when given.
    pub async fn post_with_tls(
        &self,
        tls: Option<(WebhookId, &DestinationTls)>,
        url: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> AttemptResult {
        let started = Instant::now();
        let client = match tls {
            None => self.client.clone(),
            Some((webhook_id, tls)) => match self.custom_client(webhook_id, tls) {
                Ok(client) => client,
                Err(problem) => {
                    return AttemptResult {
                        error_kind: Some(AttemptErrorKind::Tls),
                        error_message: format!(
                            "the webhook's TLS settings cannot be used: {problem}"
                        ),
                        duration: started.elapsed(),
                        ..AttemptResult::default()
                    };
                }
            },
        };
        if let Err(refused) = self.guard.check_before_connect(url) {
            return AttemptResult {
                error_kind: Some(AttemptErrorKind::Refused),
                error_message: refused.to_string(),
                duration: started.elapsed(),
                ..AttemptResult::default()
            };
        }
        let mut result =
            match tokio::time::timeout(self.timeout, Self::exchange(&client, url, headers, body))
                .await
            {
                Ok(result) => result,
                Err(_) => AttemptResult {
                    error_kind: Some(AttemptErrorKind::Timeout),
                    error_message: format!("no complete response within {:?}", self.timeout),
                    ..AttemptResult::default()
                },
            };
        result.duration = started.elapsed();
        result
    }

    /// The client of a webhook with its own TLS settings: cached while the settings are those
    /// it was built from, else built (and cached) now.
    fn custom_client(
        &self,
        webhook_id: WebhookId,
        tls: &DestinationTls,
    ) -> Result<PooledClient, String> {
        // A poisoned lock only means another attempt panicked while holding it; the map is
        // still a valid cache.
        let mut cache = self
            .custom
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((version, client)) = cache.get(&webhook_id)
            && *version == tls.version
        {
            return Ok(client.clone());
        }
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(client_config(tls)?)
            .https_only()
            .enable_http1()
            .wrap_connector(guarded_http(&self.guard, self.connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(8)
            .build(https);
        if cache.len() >= MAX_CUSTOM_CLIENTS
            && !cache.contains_key(&webhook_id)
            && let Some(evicted) = cache.keys().next().copied()
        {
            cache.remove(&evicted);
        }
        cache.insert(webhook_id, (tls.version, client.clone()));
        Ok(client)
    }

    async fn exchange(
        client: &PooledClient,
        url: &str,
        headers: &[(String, String)],
        body: &str,
    ) -> AttemptResult {
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
                    error_kind: Some(AttemptErrorKind::Refused),
                    error_message: format!("invalid request: {e}"),
                    ..AttemptResult::default()
                };
            }
        };
        let response = match client.request(request).await {
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
            error_kind: (!status.is_success()).then_some(AttemptErrorKind::Status),
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

/// The guarded TCP connector every client uses: the SSRF guard resolves and checks each
/// connection, whatever the TLS on top.
fn guarded_http(guard: &DestinationGuard, connect_timeout: Duration) -> GuardedConnector {
    guard.connector(|http| {
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
    })
}

/// The rustls configuration of a webhook's own TLS settings (ring, like the shared client):
/// its private CA as the only roots (a pinned partner: a public certificate for its name must
/// not do), else the web PKI roots; its client certificate, if any, for mutual TLS.
fn client_config(tls: &DestinationTls) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let roots = match &tls.server_ca {
        Some(ca) => ca.roots()?,
        None => rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
    };
    let builder = builder.with_root_certificates(roots);
    match &tls.client_certificate {
        Some(certificate) => {
            let (chain, key) = certificate.to_der()?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("the client certificate cannot be used: {e}"))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

fn status_text(status: StatusCode) -> String {
    format!("HTTP {status}")
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
    (text_for_history(&buffer), truncated)
}

/// The body as text history can store: invalid UTF-8 and NUL (which PostgreSQL's `text`
/// refuses, so one hostile response would otherwise keep its delivery from ever being recorded)
/// become U+FFFD.
fn text_for_history(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text.into_owned()
    }
}

/// Sorts a transport failure into the kinds history shows; every one of them retries. A
/// connection the SSRF guard refused is `refused`, with the guard's message (which names the
/// setting that would allow it).
fn classify_error(error: &hyper_util::client::legacy::Error) -> AttemptResult {
    if let Some(refused) = find_refusal(error) {
        return AttemptResult {
            error_kind: Some(AttemptErrorKind::Refused),
            error_message: refused.to_string(),
            ..AttemptResult::default()
        };
    }
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    let lower = chain.to_ascii_lowercase();
    let kind = if unreadable_answer(error) {
        AttemptErrorKind::Protocol
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        AttemptErrorKind::Dns
    } else if lower.contains("tls") || lower.contains("certificate") || lower.contains("handshake")
    {
        AttemptErrorKind::Tls
    } else if lower.contains("timed out") || lower.contains("timeout") {
        AttemptErrorKind::Timeout
    } else {
        AttemptErrorKind::Connect
    };
    AttemptResult {
        error_kind: Some(kind),
        error_message: chain,
        ..AttemptResult::default()
    }
}

/// Whether the destination answered, but not with HTTP that hyper could parse: garbage instead
/// of a status line, a head over hyper's limit, an invalid header. (A connection closed before
/// any answer is not this: that is `connect`.)
fn unreadable_answer(error: &hyper_util::client::legacy::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(hyper_error) = cause.downcast_ref::<hyper::Error>() {
            return hyper_error.is_parse()
                || hyper_error.is_parse_status()
                || hyper_error.is_parse_too_large();
        }
        source = cause.source();
    }
    false
}

/// `Retry-After` as seconds or an HTTP date in any of its three forms (`Wed, 21 Oct 2015
/// 07:28:00 GMT`, `Wednesday, 21-Oct-15 07:28:00 GMT`, `Wed Oct 21 07:28:00 2015`); a date in
/// the past means no wait, anything else (a date before 1970 included) is `None`. The value comes from the destination, so it is
/// untrusted: this never panics (fuzzed in `fuzz/`), and callers cap the delay.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // All three forms RFC 9110 makes recipients accept: IMF-fixdate, RFC 850 and asctime.
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::IpAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;
    use crate::delivery::guard::Table;

    #[test]
    fn retry_after_accepts_all_three_http_date_forms() {
        let later = std::time::SystemTime::now() + Duration::from_secs(120);
        let fixdate = httpdate::fmt_http_date(later);
        let parsed = httpdate::parse_http_date(&fixdate).expect("IMF-fixdate");
        let rfc850 = time::OffsetDateTime::from(parsed)
            .format(time::macros::format_description!(
                "[weekday], [day]-[month repr:short]-[year repr:last_two] [hour]:[minute]:[second] GMT"
            ))
            .expect("formats");
        let asctime = time::OffsetDateTime::from(parsed)
            .format(time::macros::format_description!(
                "[weekday repr:short] [month repr:short] [day padding:space] [hour]:[minute]:[second] [year]"
            ))
            .expect("formats");
        for form in [&fixdate, &rfc850, &asctime] {
            let wait = parse_retry_after(form).unwrap_or_else(|| panic!("{form:?} parses"));
            assert!(
                (Duration::from_secs(100)..=Duration::from_secs(121)).contains(&wait),
                "{form:?}: {wait:?}"
            );
        }
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO),
            "a date in the past means no wait"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
    use crate::domain::ALLOW_PRIVATE_SETTING;

    /// A receiver on 127.0.0.1 that answers 204 to anything and counts the connections it got.
    async fn counting_receiver() -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let port = listener.local_addr().expect("bound").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    let _ = socket.read(&mut buffer).await;
                    let _ = socket
                        .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                        .await;
                });
            }
        });
        (port, connections)
    }

    /// A sender whose DNS says `rebind.example` is 127.0.0.1 and `mixed.example` is 10.0.0.7
    /// and 127.0.0.1.
    fn sender(allow_private: bool, allowed: &[&str]) -> HttpSender {
        let table = Table(HashMap::from([
            (
                "rebind.example",
                vec!["127.0.0.1".parse::<IpAddr>().expect("ip")],
            ),
            (
                "mixed.example",
                vec![
                    "10.0.0.7".parse::<IpAddr>().expect("ip"),
                    "127.0.0.1".parse::<IpAddr>().expect("ip"),
                ],
            ),
        ]));
        let allowed = allowed.iter().map(|n| n.parse().expect("cidr")).collect();
        let guard = DestinationGuard::with_lookup(
            allow_private,
            allowed,
            false,
            Arc::new(table),
            Duration::from_secs(1),
        );
        HttpSender::new(Duration::from_secs(5), Duration::from_secs(1), guard)
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_at_connect_time() {
        let (port, connections) = counting_receiver().await;
        let result = sender(false, &[])
            .post(&format!("http://rebind.example:{port}/hook"), &[], "{}")
            .await;
        assert_eq!(
            result.error_kind,
            Some(AttemptErrorKind::Refused),
            "{result:?}"
        );
        assert!(
            result.error_message.contains(ALLOW_PRIVATE_SETTING),
            "{result:?}"
        );
        assert!(!result.is_success());
        let literal = sender(false, &[])
            .post(&format!("http://127.0.0.1:{port}/hook"), &[], "{}")
            .await;
        assert_eq!(
            literal.error_kind,
            Some(AttemptErrorKind::Refused),
            "{literal:?}"
        );
        let mapped = sender(false, &[])
            .post(&format!("http://[::ffff:127.0.0.1]:{port}/hook"), &[], "{}")
            .await;
        assert_eq!(
            mapped.error_kind,
            Some(AttemptErrorKind::Refused),
            "{mapped:?}"
        );
        assert_eq!(connections.load(Ordering::SeqCst), 0, "nothing may connect");
    }

    #[tokio::test]
    async fn allowed_addresses_connect_and_refused_ones_are_skipped() {
        let (port, connections) = counting_receiver().await;
        let listed = sender(false, &["127.0.0.1/32"]);
        let result = listed
            .post(&format!("http://rebind.example:{port}/hook"), &[], "{}")
            .await;
        assert!(result.is_success(), "{result:?}");
        // 10.0.0.7 is dropped, so the connection goes to the listed 127.0.0.1 only.
        let result = listed
            .post(&format!("http://mixed.example:{port}/hook"), &[], "{}")
            .await;
        assert!(result.is_success(), "{result:?}");
        let open = sender(true, &[]);
        let result = open
            .post(&format!("http://127.0.0.1:{port}/hook"), &[], "{}")
            .await;
        assert!(result.is_success(), "{result:?}");
        assert!(connections.load(Ordering::SeqCst) >= 1);
    }

    #[tokio::test]
    async fn webhooks_with_their_own_tls_connect_through_the_guard_too() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (port, connections) = counting_receiver().await;
        let ca = rcgen::generate_simple_self_signed(vec!["ca.example".to_owned()]).expect("ca");
        let ca = crate::domain::PrivateCa::parse("ca", &ca.cert.pem()).expect("a CA");
        let tls = DestinationTls {
            version: OffsetDateTime::now_utc(),
            client_certificate: None,
            server_ca: Some(ca),
        };
        let result = sender(false, &[])
            .post_with_tls(
                Some((WebhookId::now_v7(), &tls)),
                &format!("https://rebind.example:{port}/hook"),
                &[],
                "{}",
            )
            .await;
        assert_eq!(
            result.error_kind,
            Some(AttemptErrorKind::Refused),
            "{result:?}"
        );
        assert_eq!(connections.load(Ordering::SeqCst), 0, "nothing may connect");
    }

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
