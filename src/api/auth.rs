//! Authentication and roles for every RPC but health.
//!
//! Callers send `authorization: Bearer <token>`. A token is either configured
//! (`WEBHOOKS_ADMIN_TOKEN`, `WEBHOOKS_INGEST_TOKEN`, `WEBHOOKS_VIEWER_TOKEN`, comma-separated
//! lists) or an API key from `webhooks keys create`, stored hashed in Postgres. Tokens are
//! looked up by their SHA-256, so comparing them leaks nothing about their bytes (the lookup is
//! by hash, and the hash of a wrong guess says nothing about the right token).
//!
//! Every credential has a name, the actor audit rows record: an API key's own, or for a
//! configured token the `name` of a `name:token` entry (`WEBHOOKS_ADMIN_TOKEN=console:…,
//! payments-svc:…`), and for a bare token its role and the last 4 hex digits of its SHA-256
//! (`admin-1a2b`). With authentication off the actor is `local`. The layer puts a
//! [`RequestContext`] (actor, role, peer address, user agent, `x-request-id`) in the extensions
//! of every call it lets through; handlers read it with [`context`].
//!
//! Roles: admin may do everything; ingest only EventIngest; viewer the read-only WebhookAdmin
//! RPCs and WatchDeliveries. Reflection is open to any valid token. Health needs none.
//!
//! A credential is checked for as long as its call lasts, not only when it starts: a response
//! body still open after `RECHECK_INTERVAL` has its token checked again (and again every
//! interval), and ends with UNAUTHENTICATED once the token no longer passes. So a revoked API
//! key's `WatchDeliveries` streams end within [`REVOCATION_BOUND`] instead of running until the
//! client hangs up. Configured tokens only change with a restart, which ends every stream.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http_body::Frame;
use tonic::{Code, Status};

use crate::api::convert::{Reason, error};
use crate::domain::{Actor, RequestContext};
use crate::store::{Role, Store, token_hash};

/// How long a looked-up API key is trusted before asking the database again (revocations take
/// effect within this time).
const KEY_CACHE_TTL: Duration = Duration::from_secs(5);
/// Cache entries kept at most; the cache is cleared when full (bad-token floods cannot grow it).
const KEY_CACHE_MAX: usize = 10_000;
/// How often the token of a call still running (a stream) is checked again. Checks go through
/// the key cache, so many streams of one key cost one lookup per [`KEY_CACHE_TTL`].
const RECHECK_INTERVAL: Duration = KEY_CACHE_TTL;
/// How long after a key's revocation its streams may still run: a cached answer is trusted for
/// `KEY_CACHE_TTL`, and a stream checks every `RECHECK_INTERVAL`. docs/operations.md and
/// docs/grpc-api.md state this bound.
pub const REVOCATION_BOUND: Duration = Duration::from_secs(10);
const _: () =
    assert!(KEY_CACHE_TTL.as_secs() + RECHECK_INTERVAL.as_secs() <= REVOCATION_BOUND.as_secs());

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Nothing (health).
    Nothing,
    /// Any valid token (reflection).
    AnyToken,
    /// Ingest or admin.
    Ingest,
    /// Viewer or admin.
    Read,
    /// Admin.
    Admin,
}

const READ_ONLY_ADMIN_RPCS: &[&str] = &[
    "GetWebhook",
    "ListWebhooks",
    "ListDeliveries",
    "GetDelivery",
    "WatchDeliveries",
    "GetWebhookStats",
    "ListAuditEvents",
];

fn need(path: &str) -> Need {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default();
    let method = parts.next().unwrap_or_default();
    match service {
        "grpc.health.v1.Health" => Need::Nothing,
        "grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection" => {
            Need::AnyToken
        }
        "backoffice.webhooks.v1.EventIngest" => Need::Ingest,
        "backoffice.webhooks.v1.WebhookAdmin" if READ_ONLY_ADMIN_RPCS.contains(&method) => {
            Need::Read
        }
        _ => Need::Admin,
    }
}

fn allows(role: Role, need: Need) -> bool {
    match need {
        Need::Nothing | Need::AnyToken => true,
        Need::Ingest => matches!(role, Role::Admin | Role::Ingest),
        Need::Read => matches!(role, Role::Admin | Role::Viewer),
        Need::Admin => role == Role::Admin,
    }
}

/// SHA-256 of a bearer token.
type TokenHash = [u8; 32];
/// A credential's role and name.
type Identity = (Role, String);
/// A looked-up API key's identity (None: unknown or revoked) and when it was looked up.
type CachedRole = (Option<Identity>, Instant);

/// Who made a request, as [`AuthLayer`] found it: what per-caller limits count against. The
/// layer puts it in the request's extensions of every call it lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Caller {
    /// A token (configured or an API key), by its SHA-256.
    Token(TokenHash),
    /// No token: authentication is off, or the call needs none (health).
    Anonymous,
}

/// Decides whether a request may go on.
pub struct Authenticator {
    enabled: bool,
    configured: HashMap<[u8; 32], Identity>,
    store: Store,
    cache: Mutex<HashMap<TokenHash, CachedRole>>,
    ingest_limiter: Option<DefaultKeyedRateLimiter<[u8; 32]>>,
}

/// Tokens configured per role.
#[derive(Debug, Clone, Default)]
pub struct ConfiguredTokens {
    /// Admin tokens.
    pub admin: Vec<String>,
    /// Ingest tokens.
    pub ingest: Vec<String>,
    /// Viewer tokens.
    pub viewer: Vec<String>,
}

impl ConfiguredTokens {
    /// Whether any token is configured.
    pub fn is_empty(&self) -> bool {
        self.admin.is_empty() && self.ingest.is_empty() && self.viewer.is_empty()
    }
}

impl Authenticator {
    /// Authentication on (`enabled`) with `tokens` and the API keys in `store`; optionally a
    /// per-token limit of ingest requests per second.
    pub fn new(
        enabled: bool,
        tokens: &ConfiguredTokens,
        store: Store,
        ingest_per_second: Option<NonZeroU32>,
    ) -> Self {
        let mut configured = HashMap::new();
        for (list, role) in [
            (&tokens.viewer, Role::Viewer),
            (&tokens.ingest, Role::Ingest),
            (&tokens.admin, Role::Admin),
        ] {
            for entry in list.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
                let (name, token) = split_named(entry);
                let hash = token_hash(token);
                let name = name.map_or_else(
                    || Actor::bare_token_name(role.as_str(), &hash),
                    str::to_owned,
                );
                configured.insert(hash, (role, name));
            }
        }
        Self {
            enabled,
            configured,
            store,
            cache: Mutex::new(HashMap::new()),
            ingest_limiter: ingest_per_second
                .map(|rate| RateLimiter::keyed(Quota::per_second(rate))),
        }
    }

    /// Checks one request: its path and `authorization` header. Returns who is calling, as the
    /// limits count them and by name.
    pub async fn check(
        &self,
        path: &str,
        authorization: Option<&str>,
    ) -> Result<(Caller, Actor), Status> {
        let (caller, actor) = self.verify(path, authorization).await?;
        if let Caller::Token(hash) = &caller
            && need(path) == Need::Ingest
            && let Some(limiter) = &self.ingest_limiter
            && limiter.check_key(hash).is_err()
        {
            return Err(error(
                Code::ResourceExhausted,
                Reason::RateLimited,
                "ingest rate limit for this token exceeded (WEBHOOKS_INGEST_RATE_LIMIT); retry shortly",
                &[],
            ));
        }
        Ok((caller, actor))
    }

    /// Whether the token may call `path`, rate limits aside: what a running call is checked
    /// against again (a re-check must not spend the caller's ingest quota).
    async fn verify(
        &self,
        path: &str,
        authorization: Option<&str>,
    ) -> Result<(Caller, Actor), Status> {
        let need = need(path);
        if need == Need::Nothing || !self.enabled {
            return Ok((Caller::Anonymous, Actor::local()));
        }
        let token = authorization
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                error(
                    Code::Unauthenticated,
                    Reason::MissingCredentials,
                    "missing credentials: send `authorization: Bearer <token>`",
                    &[],
                )
            })?;
        let hash = token_hash(token);
        let (role, name) = self.role_of(&hash).await?.ok_or_else(|| {
            error(
                Code::Unauthenticated,
                Reason::InvalidToken,
                "invalid or revoked token",
                &[],
            )
        })?;
        if !allows(role, need) {
            let method = path.trim_start_matches('/');
            return Err(error(
                Code::PermissionDenied,
                Reason::RoleNotAllowed,
                format!("the {} role may not call {method}", role.as_str()),
                &[
                    ("role", role.as_str().to_owned()),
                    ("method", method.to_owned()),
                ],
            ));
        }
        Ok((Caller::Token(hash), Actor::named(name, role.as_str())))
    }

    async fn role_of(&self, hash: &[u8; 32]) -> Result<Option<Identity>, Status> {
        if let Some(identity) = self.configured.get(hash) {
            return Ok(Some(identity.clone()));
        }
        if let Ok(cache) = self.cache.lock()
            && let Some((identity, at)) = cache.get(hash)
            && at.elapsed() < KEY_CACHE_TTL
        {
            return Ok(identity.clone());
        }
        let role = self.store.api_key_role(hash).await?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= KEY_CACHE_MAX {
                cache.clear();
            }
            cache.insert(*hash, (role.clone(), Instant::now()));
        }
        Ok(role)
    }
}

/// A configured entry's name and token: `name:token` when the part before the first `:` is a
/// name (1 to 64 letters, digits, `.`, `_` or `-`), else the whole entry is a bare token.
fn split_named(entry: &str) -> (Option<&str>, &str) {
    match entry.split_once(':') {
        Some((name, token))
            if (1..=64).contains(&name.len())
                && !token.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) =>
        {
            (Some(name), token)
        }
        _ => (None, entry),
    }
}

/// Who made a request and how, from the extensions [`AuthLayer`] filled in; a call that did not
/// pass the layer (in-process) is `local`.
pub fn context<T>(request: &tonic::Request<T>) -> RequestContext {
    request
        .extensions()
        .get::<RequestContext>()
        .cloned()
        .unwrap_or_else(|| RequestContext::of(Actor::local()))
}

/// The peer address tonic's server recorded for the connection (plain or TLS).
fn peer_of<B>(request: &http::Request<B>) -> String {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.get_ref().remote_addr())
        })
        .map(|addr| addr.to_string())
        .unwrap_or_default()
}

/// A header's value as text, cut to `max` characters (a client chooses these).
fn header_text<B>(request: &http::Request<B>, name: &str, max: usize) -> String {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(max).collect())
        .unwrap_or_default()
}

/// A tower layer that runs [`Authenticator::check`] before every request reaches its service.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<Authenticator>,
}

impl AuthLayer {
    /// A layer checking with `auth`.
    pub fn new(auth: Arc<Authenticator>) -> Self {
        Self { auth }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around the gRPC routes.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The ready service goes with this call; a fresh clone waits for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let authorization = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let path = request.uri().path().to_owned();
            let (caller, actor) = match auth.check(&path, authorization.as_deref()).await {
                Ok(found) => found,
                Err(status) => return Ok(status.into_http()),
            };
            let context = RequestContext {
                actor,
                peer: peer_of(&request),
                user_agent: header_text(&request, "user-agent", 256),
                request_id: header_text(&request, "x-request-id", 128),
            };
            request.extensions_mut().insert(caller);
            request.extensions_mut().insert(context);
            let response = inner.call(request).await?;
            Ok(match caller {
                // Nothing to check again.
                Caller::Anonymous => response,
                Caller::Token(_) => response.map(|body| {
                    tonic::body::Body::new(Rechecked::new(body, auth, path, authorization))
                }),
            })
        })
    }
}

/// A response body whose caller's token is checked again every [`RECHECK_INTERVAL`] while it
/// lasts; once the token no longer passes, the body ends with the check's status in its
/// trailers (UNAUTHENTICATED for a revoked key). A unary answer is over before the first
/// re-check is due, and costs a comparison of instants per frame.
struct Rechecked {
    inner: tonic::body::Body,
    auth: Arc<Authenticator>,
    path: String,
    authorization: Option<String>,
    /// When the next check is due.
    due: tokio::time::Instant,
    /// Wakes the body when a check is due while the inner body has nothing to send; made on
    /// the first wait only, so that unary answers never arm a timer.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The check in progress.
    checking: Option<BoxFuture<'static, Result<(Caller, Actor), Status>>>,
    /// Whether to hold the inner body back until the check in progress answers: when the body
    /// was not polled for a whole interval past the due time (flow control held it), nothing
    /// more is sent on the strength of an old check.
    hold: bool,
    /// The body sent its last frame (its own, or the trailers of a failed check).
    ended: bool,
}

impl Rechecked {
    fn new(
        inner: tonic::body::Body,
        auth: Arc<Authenticator>,
        path: String,
        authorization: Option<String>,
    ) -> Self {
        Self {
            inner,
            auth,
            path,
            authorization,
            due: tokio::time::Instant::now() + RECHECK_INTERVAL,
            timer: None,
            checking: None,
            hold: false,
            ended: false,
        }
    }

    fn start_check(&mut self, now: tokio::time::Instant) {
        let auth = self.auth.clone();
        let path = self.path.clone();
        let authorization = self.authorization.clone();
        self.hold = now >= self.due + RECHECK_INTERVAL;
        self.checking = Some(Box::pin(async move {
            auth.verify(&path, authorization.as_deref()).await
        }));
    }
}

impl http_body::Body for Rechecked {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let now = tokio::time::Instant::now();
        if this.checking.is_none() && now >= this.due {
            this.start_check(now);
        }
        if let Some(check) = &mut this.checking {
            match check.as_mut().poll(cx) {
                Poll::Ready(Ok(_)) => {
                    this.checking = None;
                    this.hold = false;
                    this.due = tokio::time::Instant::now() + RECHECK_INTERVAL;
                }
                Poll::Ready(Err(status)) => {
                    this.checking = None;
                    this.ended = true;
                    tracing::info!(
                        path = this.path,
                        code = ?status.code(),
                        "ending a call whose credential no longer passes"
                    );
                    let why = match status.code() {
                        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
                            "the call's credential no longer passes"
                        }
                        // The database could not answer: the client reconnects and is checked
                        // afresh.
                        _ => "the call's credential could not be checked again",
                    };
                    // The details (ErrorInfo, RetryInfo) stay with the restated message.
                    let status = Status::with_details(
                        status.code(),
                        format!("{why}: {}", status.message()),
                        Bytes::copy_from_slice(status.details()),
                    );
                    let mut trailers = http::HeaderMap::new();
                    if let Err(e) = status.add_header(&mut trailers) {
                        // The message is ours and always encodes; keep the code regardless.
                        tracing::warn!(error = %e, "encoding the trailers of an ended call");
                        trailers
                            .insert("grpc-status", http::HeaderValue::from(status.code() as i32));
                    }
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                }
                Poll::Pending if this.hold => return Poll::Pending,
                Poll::Pending => {}
            }
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if frame
                    .as_ref()
                    .is_none_or(|f| !matches!(f, Ok(f) if f.is_data()))
                {
                    // Trailers, an error or the end: nothing follows, so nothing to check.
                    this.ended = true;
                }
                Poll::Ready(frame)
            }
            Poll::Pending => {
                if this.checking.is_none() {
                    let due = this.due;
                    let timer = this
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                    if timer.deadline() != due {
                        timer.as_mut().reset(due);
                    }
                    if timer.as_mut().poll(cx).is_ready() {
                        // Due already: poll again at once to start the check.
                        cx.waker().wake_by_ref();
                    }
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if self.ended {
            http_body::SizeHint::with_exact(0)
        } else {
            self.inner.size_hint()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_needs_the_right_role() {
        assert_eq!(need("/grpc.health.v1.Health/Check"), Need::Nothing);
        assert_eq!(
            need("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            Need::AnyToken
        );
        assert_eq!(
            need("/backoffice.webhooks.v1.EventIngest/PublishEvent"),
            Need::Ingest
        );
        assert_eq!(
            need("/backoffice.webhooks.v1.WebhookAdmin/ListWebhooks"),
            Need::Read
        );
        assert_eq!(
            need("/backoffice.webhooks.v1.WebhookAdmin/CreateWebhook"),
            Need::Admin
        );
        assert_eq!(need("/something.Else/Method"), Need::Admin);
        assert!(!allows(Role::Ingest, Need::Read));
        assert!(!allows(Role::Viewer, Need::Ingest));
        assert!(!allows(Role::Viewer, Need::Admin));
        assert!(allows(Role::Admin, Need::Ingest));
    }

    #[test]
    fn configured_entries_may_name_their_token() {
        assert_eq!(split_named("console:s3cret"), (Some("console"), "s3cret"));
        assert_eq!(
            split_named("payments-svc:a:b"),
            (Some("payments-svc"), "a:b")
        );
        assert_eq!(split_named("bare-token"), (None, "bare-token"));
        assert_eq!(split_named("has space:x"), (None, "has space:x"));
        assert_eq!(split_named("name:"), (None, "name:"));
    }
}
