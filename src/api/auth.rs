//! Authentication and roles for every RPC but health.
//!
//! Callers send `authorization: Bearer <token>`. A token is either configured
//! (`WEBHOOKS_ADMIN_TOKEN`, `WEBHOOKS_INGEST_TOKEN`, `WEBHOOKS_VIEWER_TOKEN`, comma-separated
//! lists) or an API key from `webhooks keys create`, stored hashed in Postgres. Tokens are
//! looked up by their SHA-256, so comparing them leaks nothing about their bytes (the lookup is
//! by hash, and the hash of a wrong guess says nothing about the right token).
//!
//! Roles: admin may do everything; ingest only EventIngest; viewer the read-only WebhookAdmin
//! RPCs and WatchDeliveries. Reflection is open to any valid token. Health needs none.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tonic::Status;

use crate::store::{Role, Store, token_hash};

/// How long a looked-up API key is trusted before asking the database again (revocations take
/// effect within this time).
const KEY_CACHE_TTL: Duration = Duration::from_secs(5);
/// Cache entries kept at most; the cache is cleared when full (bad-token floods cannot grow it).
const KEY_CACHE_MAX: usize = 10_000;

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
/// A looked-up API key's role (None: unknown or revoked) and when it was looked up.
type CachedRole = (Option<Role>, Instant);

/// Decides whether a request may go on.
pub struct Authenticator {
    enabled: bool,
    configured: HashMap<[u8; 32], Role>,
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
            for token in list.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
                configured.insert(token_hash(token), role);
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

    /// Checks one request: its path and `authorization` header.
    pub async fn check(&self, path: &str, authorization: Option<&str>) -> Result<(), Status> {
        let need = need(path);
        if need == Need::Nothing {
            return Ok(());
        }
        if !self.enabled {
            return Ok(());
        }
        let token = authorization
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Status::unauthenticated("missing credentials: send `authorization: Bearer <token>`")
            })?;
        let hash = token_hash(token);
        let role = self
            .role_of(&hash)
            .await?
            .ok_or_else(|| Status::unauthenticated("invalid or revoked token"))?;
        if !allows(role, need) {
            return Err(Status::permission_denied(format!(
                "the {} role may not call {}",
                role.as_str(),
                path.trim_start_matches('/')
            )));
        }
        if need == Need::Ingest
            && let Some(limiter) = &self.ingest_limiter
            && limiter.check_key(&hash).is_err()
        {
            return Err(Status::resource_exhausted(
                "ingest rate limit for this token exceeded (WEBHOOKS_INGEST_RATE_LIMIT); retry shortly",
            ));
        }
        Ok(())
    }

    async fn role_of(&self, hash: &[u8; 32]) -> Result<Option<Role>, Status> {
        if let Some(role) = self.configured.get(hash) {
            return Ok(Some(*role));
        }
        if let Ok(cache) = self.cache.lock()
            && let Some((role, at)) = cache.get(hash)
            && at.elapsed() < KEY_CACHE_TTL
        {
            return Ok(*role);
        }
        let role = self
            .store
            .api_key_role(hash)
            .await
            .map_err(super::store_failure)?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= KEY_CACHE_MAX {
                cache.clear();
            }
            cache.insert(*hash, (role, Instant::now()));
        }
        Ok(role)
    }
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

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
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
            match auth
                .check(request.uri().path(), authorization.as_deref())
                .await
            {
                Ok(()) => inner.call(request).await,
                Err(status) => Ok(status.into_http()),
            }
        })
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
}
