//! The SSRF guard: webhooks must not be turned against the service's own host or network.
//!
//! A destination is checked twice:
//!
//! 1. when a webhook is created or its destination edited ([`DestinationGuard::check_destination`]):
//!    an address literal in a blocked range is refused, and a host name is resolved (with a short
//!    timeout) and refused when *any* of its addresses is blocked;
//! 2. each time a connection is made ([`GuardedConnector`], [`GuardedResolver`]): the name is
//!    resolved again, blocked addresses are dropped and the connection goes only to an address
//!    that passed the check, so a name that resolved to a public address at creation and to
//!    `127.0.0.1` later (DNS rebinding) still cannot reach the internal network.
//!
//! The blocked ranges are the rows of [`crate::domain::SPECIAL_RANGES`], IPv6 forms of IPv4
//! addresses (mapped, compatible, NAT64, 6to4, Teredo) judged by the IPv4 address inside; see
//! [`crate::domain::blocked_range`]. An operator lets webhooks reach them with
//! `WEBHOOKS_ALLOW_PRIVATE_DESTINATIONS=true` (everything) or `WEBHOOKS_ALLOWED_DESTINATION_CIDRS`
//! (listed networks only). `WEBHOOKS_REQUIRE_HTTPS=true` additionally refuses `http://`
//! destinations, and port 0 is refused at create and edit whatever the settings.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use tokio::net::TcpStream;
use tower_service::Service;
use url::{Host, Url};

use crate::domain::{
    ALLOW_PRIVATE_SETTING, Blocked, DestinationUrl, ValidationError, blocked_range,
};

/// The setting that lists networks destinations may use although they are internal.
pub const ALLOWED_CIDRS_SETTING: &str = "WEBHOOKS_ALLOWED_DESTINATION_CIDRS";
/// The setting that refuses `http://` destinations.
pub const REQUIRE_HTTPS_SETTING: &str = "WEBHOOKS_REQUIRE_HTTPS";
/// How long a create or edit waits for a destination's name to resolve.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Resolves host names to addresses. The service uses [`SystemLookup`]; tests substitute a
/// fixed table to play DNS tricks without a DNS server.
pub trait Lookup: Send + Sync + 'static {
    /// The addresses `host` resolves to.
    fn lookup(&self, host: &str) -> BoxFuture<io::Result<Vec<IpAddr>>>;
}

/// The system resolver (`getaddrinfo`, through [`tokio::net::lookup_host`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str) -> BoxFuture<io::Result<Vec<IpAddr>>> {
        let host = host.to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|addr| addr.ip()).collect())
        })
    }
}

/// A connection the guard would not make, with a message for the delivery history that names
/// the setting that would allow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationRefused {
    message: String,
}

impl DestinationRefused {
    fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl fmt::Display for DestinationRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DestinationRefused {}

/// Which destinations webhooks may have; cheap to clone (shared).
#[derive(Clone)]
pub struct DestinationGuard {
    inner: Arc<Policy>,
}

struct Policy {
    allow_private: bool,
    allowed: Vec<IpNet>,
    require_https: bool,
    lookup: Arc<dyn Lookup>,
    resolve_timeout: Duration,
}

impl fmt::Debug for DestinationGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DestinationGuard")
            .field("allow_private", &self.inner.allow_private)
            .field("allowed", &self.inner.allowed)
            .field("require_https", &self.inner.require_https)
            .field("resolve_timeout", &self.inner.resolve_timeout)
            .finish_non_exhaustive()
    }
}

impl DestinationGuard {
    /// A guard that lets destinations reach internal addresses only when `allow_private`, or
    /// when they fall in one of the `allowed` networks; with `require_https`, `http://`
    /// destinations are refused. Names are resolved with the system resolver.
    pub fn new(allow_private: bool, allowed: Vec<IpNet>, require_https: bool) -> Self {
        Self::with_lookup(
            allow_private,
            allowed,
            require_https,
            Arc::new(SystemLookup),
            RESOLVE_TIMEOUT,
        )
    }

    /// Like [`DestinationGuard::new`], resolving names with `lookup` and giving a create or
    /// edit `resolve_timeout` to resolve one.
    pub fn with_lookup(
        allow_private: bool,
        allowed: Vec<IpNet>,
        require_https: bool,
        lookup: Arc<dyn Lookup>,
        resolve_timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Policy {
                allow_private,
                allowed,
                require_https,
                lookup,
                resolve_timeout,
            }),
        }
    }

    /// A guard that allows every destination, `http` included (for tools and tests).
    pub fn allow_all() -> Self {
        Self::new(true, Vec::new(), false)
    }

    /// Whether a connection to `ip` is allowed: it is not in a blocked range, or private
    /// destinations are allowed, or an allowed network contains it (an IPv4-mapped IPv6 address
    /// matches the IPv4 networks of its IPv4 address).
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.refusal(ip).is_none()
    }

    /// Why a connection to `ip` is refused, or `None` when it is allowed.
    fn refusal(&self, ip: IpAddr) -> Option<Blocked> {
        if self.inner.allow_private {
            return None;
        }
        let range = blocked_range(ip)?;
        let canonical = ip.to_canonical();
        let listed = self
            .inner
            .allowed
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical));
        (!listed).then_some(range)
    }

    /// What to set to allow a refused address.
    fn remedy() -> String {
        format!(
            "set {ALLOW_PRIVATE_SETTING}=true or list the address in {ALLOWED_CIDRS_SETTING} to allow it"
        )
    }

    /// The scheme rule: with `WEBHOOKS_REQUIRE_HTTPS=true`, only `https` is allowed.
    fn check_scheme(&self, scheme: &str) -> Result<(), String> {
        if self.inner.require_https && !scheme.eq_ignore_ascii_case("https") {
            return Err(format!(
                "must use https: {REQUIRE_HTTPS_SETTING}=true refuses {scheme}:// destinations"
            ));
        }
        Ok(())
    }

    /// Checks a destination when a webhook is created or its destination edited; `field` names
    /// it in the error (INVALID_ARGUMENT).
    ///
    /// An address literal in a blocked range is refused. A host name is resolved (for at most
    /// [`RESOLVE_TIMEOUT`]) and refused when *any* of its addresses is blocked and not allowed.
    /// `localhost` and `*.localhost` names are refused unless every address they resolve to is
    /// allowed (they are loopback by definition, even when they do not resolve).
    ///
    /// A name that does **not** resolve (no such name, DNS unreachable, timeout) is accepted:
    /// DNS may be briefly down and a receiver's name is often published after its webhook is
    /// configured; refusing would make configuration depend on DNS health. Accepting it opens
    /// nothing: every connection is checked again after resolving (see the module docs), so a
    /// name that later resolves to an internal address is refused at send time.
    pub async fn check_destination(
        &self,
        field: &str,
        destination: &DestinationUrl,
    ) -> Result<(), ValidationError> {
        let url = destination.as_url();
        self.check_scheme(url.scheme())
            .map_err(|rule| ValidationError::new(field, rule))?;
        // Not an address question, so the opt-in does not lift it: nothing listens on port 0
        // (connecting there fails on every system), and a webhook aimed at it would only fail.
        if url.port() == Some(0) {
            return Err(ValidationError::new(
                field,
                "must not use port 0: give the receiver's port, or none for the scheme's default",
            ));
        }
        if self.inner.allow_private {
            return Ok(());
        }
        let refused = |ip: IpAddr, range: Blocked, via: Option<&str>| {
            let via = via
                .map(|name| format!("{name} resolves to "))
                .unwrap_or_default();
            ValidationError::new(
                field,
                format!(
                    "{via}{ip}, a {range} address that webhooks may not reach; {}",
                    Self::remedy()
                ),
            )
        };
        let name = match url.host() {
            Some(Host::Ipv4(ip)) => {
                return match self.refusal(IpAddr::V4(ip)) {
                    Some(range) => Err(refused(IpAddr::V4(ip), range, None)),
                    None => Ok(()),
                };
            }
            Some(Host::Ipv6(ip)) => {
                return match self.refusal(IpAddr::V6(ip)) {
                    Some(range) => Err(refused(IpAddr::V6(ip), range, None)),
                    None => Ok(()),
                };
            }
            Some(Host::Domain(name)) => name.to_owned(),
            None => return Err(ValidationError::new(field, "must have a host")),
        };
        let lookup = self.inner.lookup.lookup(&name);
        let addresses = match tokio::time::timeout(self.inner.resolve_timeout, lookup).await {
            Ok(Ok(addresses)) => addresses,
            Ok(Err(_)) | Err(_) if is_localhost(&name) => {
                return Err(ValidationError::new(
                    field,
                    format!(
                        "{name} is a loopback name that webhooks may not reach; {}",
                        Self::remedy()
                    ),
                ));
            }
            Ok(Err(error)) => {
                tracing::info!(host = %name, error = %error, "destination does not resolve; accepted, checked again at send time");
                return Ok(());
            }
            Err(_) => {
                tracing::info!(host = %name, "destination did not resolve in time; accepted, checked again at send time");
                return Ok(());
            }
        };
        for ip in addresses {
            if let Some(range) = self.refusal(ip) {
                return Err(refused(ip, range, Some(&name)));
            }
        }
        Ok(())
    }

    /// Checks the parts of a URL known before connecting: the scheme and an address literal.
    /// Host names are checked by the connector after resolving.
    pub fn check_before_connect(&self, url: &str) -> Result<(), DestinationRefused> {
        let parsed = Url::parse(url)
            .map_err(|e| DestinationRefused::new(format!("invalid destination URL: {e}")))?;
        self.check_scheme(parsed.scheme())
            .map_err(|rule| DestinationRefused::new(format!("destination {rule}")))?;
        let ip = match parsed.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        self.check_address(ip)
    }

    /// Refuses a connection to `ip` unless it is allowed.
    fn check_address(&self, ip: IpAddr) -> Result<(), DestinationRefused> {
        match self.refusal(ip) {
            None => Ok(()),
            Some(range) => Err(DestinationRefused::new(format!(
                "refused to connect to {ip}, a {range} address; {}",
                Self::remedy()
            ))),
        }
    }

    /// The resolver the HTTP client connects through.
    pub fn resolver(&self) -> GuardedResolver {
        GuardedResolver {
            guard: self.clone(),
        }
    }

    /// An HTTP connector that resolves names with [`DestinationGuard::resolver`] and refuses
    /// blocked address literals; `http` is the connector's configuration (timeouts, nodelay).
    pub fn connector(
        &self,
        configure: impl FnOnce(&mut HttpConnector<GuardedResolver>),
    ) -> GuardedConnector {
        let mut http = HttpConnector::new_with_resolver(self.resolver());
        configure(&mut http);
        GuardedConnector {
            http,
            guard: self.clone(),
        }
    }
}

fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// A resolver for hyper's [`HttpConnector`] that drops the addresses the guard refuses, and
/// fails with [`DestinationRefused`] when none is left: the connector then only ever connects
/// to checked addresses.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    guard: DestinationGuard,
}

impl Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str();
            let resolved = guard.inner.lookup.lookup(host).await?;
            let mut refused = Vec::new();
            let mut allowed = Vec::new();
            for ip in resolved {
                match guard.refusal(ip) {
                    None => allowed.push(SocketAddr::new(ip, 0)),
                    Some(range) => refused.push(format!("{ip} ({range})")),
                }
            }
            if allowed.is_empty() {
                if refused.is_empty() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{host} resolved to no address"),
                    )
                    .into());
                }
                return Err(DestinationRefused::new(format!(
                    "refused to connect to {host}: it resolves only to addresses webhooks may not reach: {}; {}",
                    refused.join(", "),
                    DestinationGuard::remedy()
                ))
                .into());
            }
            if !refused.is_empty() {
                tracing::warn!(host, refused = %refused.join(", "), "dropped blocked addresses of a destination");
            }
            Ok(allowed.into_iter())
        })
    }
}

/// hyper's [`HttpConnector`] behind the guard. The connector skips the resolver for address
/// literals, so this checks those itself; names go through [`GuardedResolver`].
#[derive(Clone, Debug)]
pub struct GuardedConnector {
    http: HttpConnector<GuardedResolver>,
    guard: DestinationGuard,
}

impl Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let literal = uri
            .host()
            .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
            .and_then(|host| host.parse::<IpAddr>().ok());
        if let Some(ip) = literal
            && let Err(refused) = self.guard.check_address(ip)
        {
            return Box::pin(std::future::ready(Err(refused.into())));
        }
        let connecting = self.http.call(uri);
        Box::pin(async move { connecting.await.map_err(Into::into) })
    }
}

/// The guard's refusal somewhere in `error`'s chain of causes, if that is why it failed.
pub fn find_refusal<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a DestinationRefused> {
    let mut current = Some(error);
    while let Some(cause) = current {
        if let Some(refused) = cause.downcast_ref::<DestinationRefused>() {
            return Some(refused);
        }
        current = cause.source();
    }
    None
}

/// A DNS stand-in for tests: fixed answers, `NotFound` for other names, and `hangs.example`,
/// which never answers.
#[cfg(test)]
pub(crate) struct Table(pub(crate) std::collections::HashMap<&'static str, Vec<IpAddr>>);

#[cfg(test)]
impl Lookup for Table {
    fn lookup(&self, host: &str) -> BoxFuture<io::Result<Vec<IpAddr>>> {
        if host == "hangs.example" {
            return Box::pin(std::future::pending());
        }
        let answer = self.0.get(host).cloned().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("{host}: no such name"))
        });
        Box::pin(std::future::ready(answer))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::str::FromStr;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    fn table() -> Arc<dyn Lookup> {
        Arc::new(Table(HashMap::from([
            ("public.example", vec![ip("93.184.216.34")]),
            ("rebind.example", vec![ip("127.0.0.1")]),
            ("metadata.example", vec![ip("169.254.169.254")]),
            ("mixed.example", vec![ip("93.184.216.34"), ip("10.0.0.7")]),
            ("mapped.example", vec![ip("::ffff:127.0.0.1")]),
            ("localhost", vec![ip("127.0.0.1")]),
        ])))
    }

    fn guard(allow_private: bool, allowed: &[&str], require_https: bool) -> DestinationGuard {
        let allowed = allowed
            .iter()
            .map(|net| net.parse().expect("test CIDR"))
            .collect();
        DestinationGuard::with_lookup(
            allow_private,
            allowed,
            require_https,
            table(),
            Duration::from_millis(200),
        )
    }

    fn url(text: &str) -> DestinationUrl {
        DestinationUrl::parse("u", text, true).expect("syntactically valid test URL")
    }

    async fn check(guard: &DestinationGuard, text: &str) -> Result<(), ValidationError> {
        guard
            .check_destination("webhook.destination_url", &url(text))
            .await
    }

    #[test]
    fn the_allow_list_admits_only_listed_addresses() {
        let guard = guard(false, &["127.0.0.1/32", "10.20.0.0/16"], false);
        assert!(guard.permits(ip("127.0.0.1")));
        assert!(
            guard.permits(ip("::ffff:127.0.0.1")),
            "mapped form of a listed address"
        );
        assert!(guard.permits(ip("10.20.3.4")));
        assert!(!guard.permits(ip("127.0.0.2")));
        assert!(!guard.permits(ip("10.21.0.1")));
        assert!(!guard.permits(ip("::1")));
        assert!(!guard.permits(ip("169.254.169.254")));
        assert!(
            guard.permits(ip("93.184.216.34")),
            "public addresses need no listing"
        );
        let open = self::guard(true, &[], false);
        assert!(open.permits(ip("169.254.169.254")));
    }

    #[tokio::test]
    async fn literals_in_blocked_ranges_are_refused_naming_the_field_and_setting() {
        let guard = guard(false, &[], false);
        for text in [
            "http://169.254.169.254/latest/meta-data",
            "http://127.0.0.1:8080/",
            "http://[::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://0.0.0.0/",
            "http://2130706433/",
        ] {
            let error = check(&guard, text).await.expect_err(text);
            assert_eq!(error.field, "webhook.destination_url");
            assert!(
                error.rule.contains(ALLOW_PRIVATE_SETTING),
                "{text}: {error}"
            );
            assert!(
                error.rule.contains(ALLOWED_CIDRS_SETTING),
                "{text}: {error}"
            );
        }
        assert!(check(&guard, "https://93.184.216.34/hook").await.is_ok());
    }

    #[tokio::test]
    async fn names_are_refused_when_any_address_is_blocked() {
        let guard = guard(false, &[], false);
        for text in [
            "https://rebind.example/h",
            "https://metadata.example/h",
            "https://mixed.example/h",
            "https://mapped.example/h",
            "http://localhost:9/h",
        ] {
            let error = check(&guard, text).await.expect_err(text);
            assert!(
                error.rule.contains(ALLOW_PRIVATE_SETTING),
                "{text}: {error}"
            );
        }
        let error = check(&guard, "https://rebind.example/h")
            .await
            .expect_err("refused");
        assert!(
            error.rule.contains("rebind.example resolves to 127.0.0.1"),
            "{error}"
        );
        assert!(check(&guard, "https://public.example/h").await.is_ok());
    }

    #[tokio::test]
    async fn names_that_do_not_resolve_are_accepted_but_not_loopback_names() {
        let guard = guard(false, &[], false);
        assert!(check(&guard, "https://nowhere.example/h").await.is_ok());
        assert!(
            check(&guard, "https://hangs.example/h").await.is_ok(),
            "timeout"
        );
        assert!(check(&guard, "https://api.localhost/h").await.is_err());
    }

    #[tokio::test]
    async fn the_opt_in_and_the_allow_list_admit_private_destinations() {
        let open = guard(true, &[], false);
        assert!(check(&open, "http://169.254.169.254/").await.is_ok());
        assert!(check(&open, "https://rebind.example/").await.is_ok());
        let listed = guard(false, &["127.0.0.0/8"], false);
        assert!(check(&listed, "http://127.0.0.1:9/").await.is_ok());
        assert!(check(&listed, "https://rebind.example/").await.is_ok());
        assert!(check(&listed, "https://mixed.example/").await.is_err());
    }

    #[tokio::test]
    async fn require_https_refuses_http() {
        let guard = guard(true, &[], true);
        let error = check(&guard, "http://public.example/")
            .await
            .expect_err("http");
        assert!(error.rule.contains(REQUIRE_HTTPS_SETTING), "{error}");
        assert!(check(&guard, "https://public.example/").await.is_ok());
        let refused = guard
            .check_before_connect("http://public.example/")
            .expect_err("http at send time");
        assert!(refused.to_string().contains(REQUIRE_HTTPS_SETTING));
        assert!(
            guard
                .check_before_connect("https://public.example/")
                .is_ok()
        );
    }

    #[tokio::test]
    async fn the_resolver_keeps_only_allowed_addresses() {
        let mut resolver = guard(false, &[], false).resolver();
        let mixed = resolver
            .call(Name::from_str("mixed.example").expect("name"))
            .await
            .expect("one address is public");
        assert_eq!(
            mixed.map(|a| a.ip()).collect::<Vec<_>>(),
            vec![ip("93.184.216.34")]
        );
        let error = resolver
            .call(Name::from_str("rebind.example").expect("name"))
            .await
            .expect_err("only loopback");
        let refused = find_refusal(error.as_ref()).expect("a guard refusal");
        assert!(
            refused.to_string().contains(ALLOW_PRIVATE_SETTING),
            "{refused}"
        );
        let error = resolver
            .call(Name::from_str("nowhere.example").expect("name"))
            .await
            .expect_err("no such name");
        assert!(
            find_refusal(error.as_ref()).is_none(),
            "a DNS failure is not a refusal"
        );
    }

    #[tokio::test]
    async fn the_connector_refuses_blocked_literals_without_connecting() {
        // The connector skips the resolver for address literals, so it checks them itself.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let port = listener.local_addr().expect("bound").port();
        let mut connector = guard(false, &[], false).connector(|http| http.enforce_http(false));
        for text in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://[::ffff:127.0.0.1]:{port}/"),
        ] {
            let uri: Uri = text.parse().expect("test URI");
            let error = connector.call(uri).await.expect_err(&text);
            let refused = find_refusal(error.as_ref()).expect("a guard refusal");
            assert!(
                refused.to_string().contains(ALLOW_PRIVATE_SETTING),
                "{refused}"
            );
        }
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(accepted.is_err(), "no connection may be made");
        let mut listed = guard(false, &["127.0.0.1/32"], false).connector(|http| {
            http.enforce_http(false);
        });
        let uri: Uri = format!("http://127.0.0.1:{port}/")
            .parse()
            .expect("test URI");
        assert!(listed.call(uri).await.is_ok(), "a listed address connects");
    }

    #[tokio::test]
    async fn the_system_resolver_sees_localhost_as_loopback() {
        // Real resolution (/etc/hosts): `localhost` always resolves to loopback, and the guard
        // must refuse it through the resolver as it would any other name.
        let guard = DestinationGuard::new(false, Vec::new(), false);
        let error = guard
            .resolver()
            .call(Name::from_str("localhost").expect("name"))
            .await
            .expect_err("loopback only");
        assert!(find_refusal(error.as_ref()).is_some(), "{error}");
        let error = check(&guard, "http://localhost:9/")
            .await
            .expect_err("loopback");
        assert!(error.rule.contains(ALLOW_PRIVATE_SETTING), "{error}");
    }
}
