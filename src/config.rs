//! Command line and environment configuration. Every setting is a flag with an environment
//! variable fallback, so the same binary is configured the same way locally, in CI and in
//! production (`webhooks serve --help` lists them).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The webhook service of the CRM back office.
#[derive(Debug, Parser)]
#[command(name = "webhooks", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands of the `webhooks` binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the gRPC API and the delivery workers (creates and migrates the database first).
    Serve(ServeConfig),
    /// Creates the database if needed and applies pending migrations, then exits.
    Migrate(DatabaseConfig),
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
    /// Database settings.
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
    #[arg(long, env = "WEBHOOKS_WORKER_CONCURRENCY", default_value_t = 64)]
    pub worker_concurrency: usize,

    /// How often workers look for due deliveries when no notification wakes them.
    #[arg(long, env = "WEBHOOKS_POLL_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub poll_interval: Duration,

    /// Address of the Prometheus metrics endpoint (e.g. 127.0.0.1:9090); unset means no
    /// metrics endpoint.
    #[arg(long, env = "WEBHOOKS_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// How long the delivery update log behind WatchDeliveries keeps entries; resuming from an
    /// older cursor answers OUT_OF_RANGE.
    #[arg(long, env = "WEBHOOKS_UPDATE_LOG_RETENTION", default_value = "7d", value_parser = parse_duration)]
    pub update_log_retention: Duration,

    /// Run the gRPC API without delivery workers (for API-only instances).
    #[arg(long, env = "WEBHOOKS_DISABLE_WORKERS", default_value_t = false, action = clap::ArgAction::Set)]
    pub disable_workers: bool,
}

impl ServeConfig {
    /// How long a claim holds a delivery: the whole request timeout plus a margin, so a slow
    /// attempt is never taken by another worker while it is still running.
    pub fn lease(&self) -> Duration {
        self.request_timeout + Duration::from_secs(30)
    }
}

/// Delays between attempts; see [`ServeConfig::retry_schedule`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

impl RetrySchedule {
    /// The delay before the retry that follows the `failures`-th failed attempt (1-based), or
    /// `None` when the schedule is exhausted.
    pub fn delay_after(&self, failures: usize) -> Option<Duration> {
        failures.checked_sub(1).and_then(|i| self.0.get(i)).copied()
    }
}

fn parse_schedule(value: &str) -> Result<RetrySchedule, String> {
    if value.trim().is_empty() {
        return Ok(RetrySchedule(Vec::new()));
    }
    value
        .split(',')
        .map(|part| parse_duration(part.trim()))
        .collect::<Result<Vec<_>, _>>()
        .map(RetrySchedule)
}

/// Parses `250ms`, `5s`, `5m`, `2h`, `1d` (a bare number means seconds).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{value}` is not a duration like 500ms, 5s, 5m, 2h or 1d"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "" | "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        "d" => number * 86400.0,
        _ => {
            return Err(format!(
                "`{value}` has an unknown unit: use ms, s, m, h or d"
            ));
        }
    };
    if !seconds.is_finite() || seconds > 30.0 * 86400.0 {
        return Err(format!("`{value}` is out of range (at most 30d)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_schedules_parse() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("5 weeks").is_err());
        let schedule = parse_schedule("1s, 2s").unwrap();
        assert_eq!(schedule.delay_after(1), Some(Duration::from_secs(1)));
        assert_eq!(schedule.delay_after(2), Some(Duration::from_secs(2)));
        assert_eq!(schedule.delay_after(3), None);
    }

    #[test]
    fn the_lease_outlives_the_request_timeout() {
        let cli = Cli::parse_from(["webhooks", "serve", "--request-timeout", "40s"]);
        let Command::Serve(config) = cli.command else {
            panic!("serve expected")
        };
        assert!(config.lease() > config.request_timeout);
    }
}
