//! Command line and environment configuration. Every setting is a flag with an environment
//! variable fallback, so the same binary is configured the same way locally, in CI and in
//! production (`webhooks serve --help` lists them).
//!
//! This is the service's own command line (`serve`, `migrate`, `keys`, `reencrypt`). The binary's
//! full parser, with the operator tools, is `cli::BinaryCli`: it builds on these types, and this
//! module knows nothing of the tools.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::domain::{RetrySchedule, parse_duration, parse_long_duration, parse_schedule};

/// The webhook service of the CRM back office.
// The service commands without the operator tools: tests and embedders parse `serve` settings
// with it (the binary itself parses `cli::BinaryCli`).
#[derive(Debug, Parser)]
#[command(name = "webhooks", version, about)]
pub struct Cli {
    /// Which service command runs; one is required.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands of the `webhooks` binary.
// Parsed once at start and moved straight out: boxing ServeConfig would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the gRPC API and the delivery workers (creates and migrates the database first).
    Serve(ServeConfig),
    /// Creates the database if needed and applies pending migrations, then exits.
    Migrate(DatabaseConfig),
    /// Manages API keys (bearer tokens stored hashed in the database), directly on the database.
    Keys(KeysCommand),
    /// Re-seals every webhook secret with WEBHOOKS_ENCRYPTION_KEY (after rotating that key, with
    /// the old one in WEBHOOKS_ENCRYPTION_KEY_PREVIOUS).
    Reencrypt(ReencryptConfig),
}

/// `webhooks keys ...`
#[derive(Debug, Clone, Args)]
pub struct KeysCommand {
    /// The database holding the keys: keys work on it directly, so the first admin key can be
    /// made before the service ever ran.
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// Which key action runs.
    #[command(subcommand)]
    pub action: KeysAction,
}

/// API key actions.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysAction {
    /// Creates a key and prints its token (shown only once).
    Create {
        /// A name to recognise the key by.
        #[arg(long)]
        name: String,
        /// admin (everything), ingest (EventIngest only) or viewer (read-only).
        #[arg(long, value_parser = ["admin", "ingest", "viewer"])]
        role: String,
    },
    /// Lists keys (never their tokens).
    List,
    /// Revokes a key by id; it stops working within seconds.
    Revoke {
        /// The key id from `keys list`.
        id: String,
    },
}

/// `webhooks reencrypt`
#[derive(Debug, Clone, Args)]
pub struct ReencryptConfig {
    /// The database whose sealed secrets are rewritten.
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// The current key (base64 of 32 bytes).
    #[arg(long, env = "WEBHOOKS_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: String,
    /// Former keys still needed to open existing secrets.
    #[arg(
        long,
        env = "WEBHOOKS_ENCRYPTION_KEY_PREVIOUS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub encryption_key_previous: Vec<String>,
}

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// PostgreSQL connection URL. The database is created when it does not exist.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/webhooks"
    )]
    pub database_url: String,

    /// A PEM file of the CA(s) that sign PostgreSQL's certificate, trusted when `DATABASE_URL`
    /// names no `sslrootcert` (with the default `sslmode=prefer` or `require`, it makes the chain
    /// checked; `verify-full` checks the host name too).
    #[arg(long, env = "WEBHOOKS_DATABASE_CA")]
    pub database_ca: Option<PathBuf>,

    /// Maximum connections in the pool.
    #[arg(long, env = "WEBHOOKS_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Settings of `webhooks serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// The database that holds webhooks and deliveries and is the delivery work queue.
    #[command(flatten)]
    pub database: DatabaseConfig,

    /// Address the gRPC API listens on (port 0 picks a free port).
    #[arg(long, env = "WEBHOOKS_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,

    /// Log filter, e.g. `info` or `webhooks=debug,info` (RUST_LOG syntax).
    #[arg(long, env = "WEBHOOKS_LOG", default_value = "info")]
    pub log_level: String,

    /// Log format.
    #[arg(long, env = "WEBHOOKS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Allow destinations on loopback, private, link-local and other internal addresses. Off by
    /// default so a webhook cannot be aimed at the internal network; tests and local demos turn
    /// it on.
    #[arg(long, env = "WEBHOOKS_ALLOW_PRIVATE_DESTINATIONS", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_private_destinations: bool,

    /// Comma-separated CIDRs (or single addresses) that destinations may use even though they are
    /// loopback, private or otherwise internal, e.g. `10.20.0.0/16,127.0.0.1/32`. Checked when a
    /// webhook is created or edited and again, after resolving, each time a connection is made.
    /// Empty by default.
    #[arg(
        long,
        env = "WEBHOOKS_ALLOWED_DESTINATION_CIDRS",
        default_value = "",
        value_parser = parse_cidrs
    )]
    pub allowed_destination_cidrs: DestinationCidrs,

    /// Refuse `http://` destinations: creating or editing a webhook to one is INVALID_ARGUMENT,
    /// and deliveries to one stored before are not sent (the attempt is recorded as refused).
    #[arg(long, env = "WEBHOOKS_REQUIRE_HTTPS", default_value_t = false, action = clap::ArgAction::Set)]
    pub require_https: bool,

    /// Delays between attempts after the first one fails, comma-separated (`500ms`, `5s`, `5m`,
    /// `2h`, `1d`). The number of entries is the number of retries; after the last one fails the
    /// delivery is FAILED. Each delay gets up to 10% random jitter.
    #[arg(
        long,
        env = "WEBHOOKS_RETRY_SCHEDULE",
        default_value = "5s,5m,30m,2h,5h,10h,14h,20h,24h",
        value_parser = parse_schedule
    )]
    pub retry_schedule: RetrySchedule,

    /// Total time allowed for one delivery attempt (connect, send, read the response).
    #[arg(long, env = "WEBHOOKS_REQUEST_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Time allowed to establish a connection to a destination.
    #[arg(long, env = "WEBHOOKS_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Attempts in flight at once, across all webhooks, in this instance.
    // Four times the per-webhook cap, so an endpoint that hangs takes at most a quarter.
    #[arg(long, env = "WEBHOOKS_WORKER_CONCURRENCY", default_value_t = 256)]
    pub worker_concurrency: usize,

    /// Attempts in flight to one webhook at once, across all instances, so one slow endpoint
    /// cannot take every worker slot.
    #[arg(long, env = "WEBHOOKS_MAX_IN_FLIGHT_PER_WEBHOOK", default_value_t = 64)]
    pub max_in_flight_per_webhook: u32,

    /// Consecutive failed attempts that open an endpoint's circuit: its deliveries then wait
    /// (then one probe at a time) instead of using worker slots.
    #[arg(long, env = "WEBHOOKS_CIRCUIT_BREAKER_THRESHOLD", default_value_t = 5)]
    pub circuit_breaker_threshold: u32,

    /// How long an open circuit first holds deliveries back; doubles with each further failure,
    /// up to 10 minutes.
    #[arg(long, env = "WEBHOOKS_CIRCUIT_BREAKER_COOLDOWN", default_value = "30s", value_parser = parse_duration)]
    pub circuit_breaker_cooldown: Duration,

    /// Disable a webhook whose deliveries have all failed for this long (0 never).
    #[arg(long, env = "WEBHOOKS_AUTO_DISABLE_AFTER", default_value = "5d", value_parser = parse_duration)]
    pub auto_disable_after: Duration,

    /// How often workers look for due deliveries when no notification wakes them.
    #[arg(long, env = "WEBHOOKS_POLL_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub poll_interval: Duration,

    /// Admin bearer tokens (comma-separated): may call every RPC.
    #[arg(
        long,
        env = "WEBHOOKS_ADMIN_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub admin_token: Vec<String>,

    /// Ingest bearer tokens (comma-separated): may call EventIngest only.
    #[arg(
        long,
        env = "WEBHOOKS_INGEST_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub ingest_token: Vec<String>,

    /// Viewer bearer tokens (comma-separated): read-only WebhookAdmin RPCs and WatchDeliveries.
    #[arg(
        long,
        env = "WEBHOOKS_VIEWER_TOKEN",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub viewer_token: Vec<String>,

    /// Require a token even when none is configured above (only API keys from `webhooks keys
    /// create` then work). Authentication is always on when any token is configured; with none
    /// configured and this off, the API is open and may only listen on loopback.
    #[arg(long, env = "WEBHOOKS_REQUIRE_AUTH", default_value_t = false, action = clap::ArgAction::Set)]
    pub require_auth: bool,

    /// Ingest requests per second allowed per token (0: no limit). Over it: RESOURCE_EXHAUSTED.
    #[arg(long, env = "WEBHOOKS_INGEST_RATE_LIMIT", default_value_t = 0)]
    pub ingest_rate_limit: u32,

    /// TLS certificate chain (PEM) for the gRPC port and the web console; with --tls-key, they
    /// speak TLS only.
    #[arg(long, env = "WEBHOOKS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// TLS private key (PEM) for the gRPC port and the web console.
    #[arg(long, env = "WEBHOOKS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,

    /// CA certificates (PEM) for mutual TLS: when set, the gRPC port and the web console accept
    /// only clients presenting a certificate signed by one of them (refused in the TLS
    /// handshake). Needs --tls-cert and --tls-key. An extra gate in front of the bearer token,
    /// which still decides the role.
    #[arg(long, env = "WEBHOOKS_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<std::path::PathBuf>,

    /// Key sealing webhook secrets at rest: standard base64 of 32 random bytes
    /// (`openssl rand -base64 32`). Unset: secrets are stored in plaintext, which is refused
    /// outside loopback.
    #[arg(long, env = "WEBHOOKS_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,

    /// Former encryption keys (comma-separated), still accepted for opening secrets during a key
    /// rotation (see `webhooks reencrypt`).
    #[arg(
        long,
        env = "WEBHOOKS_ENCRYPTION_KEY_PREVIOUS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub encryption_key_previous: Vec<String>,

    /// Address of the Prometheus metrics endpoint (e.g. 127.0.0.1:9090); unset means no
    /// metrics endpoint.
    #[arg(long, env = "WEBHOOKS_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Address of the web console (e.g. 127.0.0.1:8080; port 0 picks a free port): the browser
    /// app, and the same gRPC API for it over gRPC-Web (plain gRPC too), with the same tokens and
    /// TLS as the gRPC port. Unset means no console.
    #[arg(long, env = "WEBHOOKS_CONSOLE_ADDR")]
    pub console_addr: Option<SocketAddr>,

    /// Largest webhook body an event may produce, in bytes; a bigger event is refused with
    /// INVALID_ARGUMENT.
    #[arg(long, env = "WEBHOOKS_MAX_PAYLOAD_BYTES", default_value_t = 262_144)]
    pub max_payload_bytes: usize,

    /// How long finished deliveries, their attempts and events are kept; older ones are purged
    /// in small batches. Pending deliveries are never purged.
    #[arg(long, env = "WEBHOOKS_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub retention: Duration,

    /// How long the delivery update log behind WatchDeliveries keeps entries; resuming from an
    /// older cursor answers OUT_OF_RANGE.
    #[arg(long, env = "WEBHOOKS_UPDATE_LOG_RETENTION", default_value = "30d", value_parser = parse_duration)]
    pub update_log_retention: Duration,

    /// How long audit rows are kept, separately from the delivery history (which never
    /// touches them); older ones are purged and the chain stays verifiable from the first row
    /// kept.
    #[arg(long, env = "WEBHOOKS_AUDIT_RETENTION", default_value = "400d", value_parser = parse_long_duration)]
    pub audit_retention: Duration,

    /// Where operational webhooks go: `webhook.disabled`, `webhook.circuit_opened`,
    /// `webhook.circuit_closed` and `delivery.exhausted` about every other webhook, signed with
    /// WEBHOOKS_OPERATIONAL_WEBHOOK_SECRET (see docs/receiving-webhooks.md). Same queue, retries
    /// and destination rules as any webhook. Unset: no operational webhooks.
    #[arg(
        long,
        env = "WEBHOOKS_OPERATIONAL_WEBHOOK_URL",
        requires = "operational_webhook_secret"
    )]
    pub operational_webhook_url: Option<String>,

    /// The operational webhook's signing secret, `whsec_` and base64 like every webhook secret.
    #[arg(
        long,
        env = "WEBHOOKS_OPERATIONAL_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub operational_webhook_secret: Option<String>,

    /// Connections open at once on the gRPC port and the web console together; one more is
    /// accepted and closed at once, so its client fails fast. Keep it below the file-descriptor
    /// limit (`ulimit -n`) minus the database pool.
    #[arg(long, env = "WEBHOOKS_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Concurrent streams (RPCs) one HTTP/2 connection may have open, advertised to clients in
    /// SETTINGS; a client's further calls wait for one to finish.
    #[arg(long, env = "WEBHOOKS_MAX_CONCURRENT_STREAMS", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent_streams: u32,

    /// Close a connection once no byte has been read or written for this long (0 never).
    /// HTTP/2 clients that answer the keepalive PINGs are never idle.
    #[arg(long, env = "WEBHOOKS_CONNECTION_IDLE_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub connection_idle_timeout: Duration,

    /// Close a new connection whose client has not sent its first message (the HTTP/2 preface and
    /// SETTINGS, an HTTP/1 request head, or the TLS handshake) within this time (0 never).
    #[arg(long, env = "WEBHOOKS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// How often HTTP/2 connections are sent a PING when quiet (0 never); at most half the
    /// idle timeout.
    #[arg(long, env = "WEBHOOKS_HTTP2_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub http2_keepalive_interval: Duration,

    /// How long a PING may go unanswered before its connection is closed.
    #[arg(long, env = "WEBHOOKS_HTTP2_KEEPALIVE_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub http2_keepalive_timeout: Duration,

    /// WatchDeliveries streams one credential (token or API key) may have open at once on this
    /// instance (0: no limit); one more is refused with RESOURCE_EXHAUSTED. With authentication
    /// off, streams are counted per client IP address instead.
    #[arg(
        long,
        env = "WEBHOOKS_MAX_WATCH_STREAMS_PER_CREDENTIAL",
        default_value_t = 32
    )]
    pub max_watch_streams_per_credential: usize,

    /// Run the gRPC API without delivery workers (for API-only instances).
    #[arg(long, env = "WEBHOOKS_DISABLE_WORKERS", default_value_t = false, action = clap::ArgAction::Set)]
    pub disable_workers: bool,
}

impl ServeConfig {
    /// The per-endpoint pacing these settings ask for.
    pub fn delivery_policy(&self) -> crate::domain::DeliveryPolicy {
        crate::domain::DeliveryPolicy {
            max_in_flight_per_webhook: i64::from(self.max_in_flight_per_webhook.max(1)),
            breaker_threshold: i32::try_from(self.circuit_breaker_threshold.max(1))
                .unwrap_or(i32::MAX),
            breaker_cooldown: self.circuit_breaker_cooldown,
            auto_disable_after: (!self.auto_disable_after.is_zero())
                .then_some(self.auto_disable_after),
        }
    }

    /// How long a claim holds a delivery: the whole request timeout plus a margin, so a slow
    /// attempt is never taken by another worker while it is still running.
    pub fn lease(&self) -> Duration {
        self.request_timeout + Duration::from_secs(30)
    }

    /// The connection limits these settings describe (0 durations switch a timeout off).
    pub fn connection_settings(&self) -> crate::connections::ConnectionSettings {
        let nonzero = |duration: Duration| (!duration.is_zero()).then_some(duration);
        crate::connections::ConnectionSettings {
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
            max_concurrent_streams: self.max_concurrent_streams,
            idle_timeout: nonzero(self.connection_idle_timeout),
            handshake_timeout: nonzero(self.handshake_timeout),
            keepalive_interval: nonzero(self.http2_keepalive_interval),
            keepalive_timeout: self.http2_keepalive_timeout,
        }
    }

    /// The SSRF guard these settings describe: private destinations, allowed networks, https.
    pub fn destination_guard(&self) -> crate::delivery::DestinationGuard {
        self.destination_guard_resolving_with(std::sync::Arc::new(
            crate::delivery::guard::SystemLookup,
        ))
    }

    /// Like [`ServeConfig::destination_guard`], resolving names with `lookup` (tests play DNS
    /// tricks with a fixed table).
    pub fn destination_guard_resolving_with(
        &self,
        lookup: std::sync::Arc<dyn crate::delivery::guard::Lookup>,
    ) -> crate::delivery::DestinationGuard {
        crate::delivery::DestinationGuard::with_lookup(
            self.allow_private_destinations,
            self.allowed_destination_cidrs.0.clone(),
            self.require_https,
            lookup,
            crate::delivery::guard::RESOLVE_TIMEOUT,
        )
    }
}

/// Networks destinations may use even though they are internal; see
/// [`ServeConfig::allowed_destination_cidrs`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationCidrs(pub Vec<ipnet::IpNet>);

/// Parses comma-separated CIDRs; a bare address means just that address (`/32` or `/128`), and
/// blank means none.
pub fn parse_cidrs(value: &str) -> Result<DestinationCidrs, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<ipnet::IpNet>()
                .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    format!("`{part}` is not a CIDR like 10.20.0.0/16 or fd00::/8, nor an address")
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(DestinationCidrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_outlives_the_request_timeout() {
        let cli = Cli::parse_from(["webhooks", "serve", "--request-timeout", "40s"]);
        let Command::Serve(config) = cli.command else {
            panic!("serve expected")
        };
        assert!(config.lease() > config.request_timeout);
    }
}
