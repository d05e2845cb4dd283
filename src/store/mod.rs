//! All SQL lives here. The rest of the service talks to Postgres only through [`Store`].
//!
//! Postgres is both the system of record and the delivery work queue; see `deliveries/mod.rs`
//! for the claim protocol.

mod alerts;
mod audit;
mod deliveries;
mod events;
mod keys;
mod migrate;
pub mod notify;
mod page_token_key;
mod request_ids;
mod retention;
mod statistics;
mod tls;
mod updates;
mod vault;
mod webhooks;

pub use audit::{AuditFilter, AuditRecord, ChainReport, audit_hash, hex};
pub use deliveries::{
    AttemptRecord, Claimed, ClaimedDelivery, DeliveryFilter, DeliveryRecord, FinishedAttempt,
    NewAttempt, WebhookStatsRecord,
};
pub use events::{DirectLease, PublishOutcome, Published};
pub use keys::{ApiKeyRecord, Role, token_hash};
pub use migrate::{ensure_database_exists, run_migrations};
pub use notify::{Subscriptions, Wakeup, Wakeups};
pub use request_ids::{AnswerOnce, Connection, REQUEST_ID_RETENTION, Replay, RequestKey};
pub use tls::{DatabaseConfigError, PgConnector, PgTls, PgTlsStream, SslMode, TlsFailure};
pub use updates::{SequencerRound, UPDATES_CHANNEL, UpdateFilter, UpdateRecord, WebhookState};
pub use vault::Vault;
pub use webhooks::{NewWebhook, WebhookChanges, WebhookFilter, WebhookRecord};

use std::path::Path;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

/// Why a store call failed. The API maps these to gRPC codes and never shows SQL to callers.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached (pool timeout, connection refused or dropped).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database answered with an error.
    #[error("database error: {}", describe(.0))]
    Database(#[from] tokio_postgres::Error),
    /// A row held a value this version does not understand.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database settings are wrong (found at start-up; waiting does not fix them).
    #[error(transparent)]
    Config(#[from] DatabaseConfigError),
}

/// The server's message and SQLSTATE when there is one (for logs only, never for callers).
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!(
            "{} ({}) {}",
            db.message(),
            db.code().code(),
            db.detail().unwrap_or_default()
        ),
        None => error.to_string(),
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

impl StoreError {
    /// Whether retrying later may succeed: the database was unreachable, the connection was lost
    /// or the server is shutting down, rather than the database refusing the statement itself.
    ///
    /// A publisher retries these (UNAVAILABLE) but not a bug (INTERNAL), so a lost connection
    /// that is called anything else loses the publisher's event.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(e) => {
                e.is_closed()
                    || e.as_db_error()
                        .is_none_or(|db| is_transient_sqlstate(db.code().code()))
            }
            StoreError::Corrupt(_) | StoreError::Config(_) => false,
        }
    }
}

/// SQLSTATEs after which the same statement may succeed on a new attempt (PostgreSQL's
/// appendix A): the connection or the server went away, the server is short of resources, or
/// the transaction lost a race it can win next time. None of them means the request was wrong.
pub(crate) fn is_transient_sqlstate(code: &str) -> bool {
    // Whole classes: 08 connection exception, 53 insufficient resources (too many
    // connections, out of memory, disk full), 57P operator intervention (57P01 admin
    // shutdown, 57P02 crash shutdown, 57P03 cannot connect now, 57P04 database dropped),
    // 58 system error (I/O error in the server).
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || code.starts_with("58")
        || matches!(
            code,
            // serialization_failure, deadlock_detected: the transaction may be run again.
            "40001" | "40P01"
            // query_canceled (statement_timeout, a cancel request), lock_not_available.
            | "57014" | "55P03"
            // read_only_sql_transaction: a primary that became a standby after a failover.
            | "25006"
            // idle_in_transaction_session_timeout, idle_session_timeout (they end the session).
            | "25P03" | "57P05"
        )
}

/// A handle on the database: a connection pool plus the queries. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// How this store's connections were made, for connections outside the pool (LISTEN,
    /// database creation) and the delivery-results pool.
    connector: PgConnector,
    vault: std::sync::Arc<Vault>,
    /// When this instance last announced new deliveries with NOTIFY (unix ms).
    last_announce: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// This instance's wake-ups: every write that makes work wakes its waiter here, and its
    /// NOTIFYs carry their origin (see `notify.rs`). An append to the log wakes the sequencer, so it runs
    /// when there is something to sequence instead of polling (see `src/stream/mod.rs`).
    wakeups: Wakeups,
}

impl Store {
    /// Builds a pool of at most `max_connections` to `database_url` (its `sslmode` and
    /// `sslrootcert` as libpq reads them). No connection is made yet.
    pub fn connect(database_url: &str, max_connections: usize) -> Result<Self, StoreError> {
        Self::connect_with_ca(database_url, None, max_connections)
    }

    /// As [`Store::connect`], trusting the PEM file `ca_file` (`WEBHOOKS_DATABASE_CA`) when the
    /// URL names no `sslrootcert`. A URL or CA file that cannot be used is
    /// [`StoreError::Config`], not unavailability: no retry fixes it.
    pub fn connect_with_ca(
        database_url: &str,
        ca_file: Option<&Path>,
        max_connections: usize,
    ) -> Result<Self, StoreError> {
        Self::open(PgConnector::new(database_url, ca_file)?, max_connections)
    }

    /// Builds a pool of at most `max_connections` through `connector`. No connection is made yet.
    pub fn open(connector: PgConnector, max_connections: usize) -> Result<Self, StoreError> {
        let pool = build_pool(&connector, max_connections)?;
        Ok(Self {
            pool,
            connector,
            vault: std::sync::Arc::new(Vault::plaintext()),
            last_announce: Default::default(),
            wakeups: Wakeups::default(),
        })
    }

    /// A store for the delivery worker's own writes (claims and attempt results), on its own
    /// pool of `max_connections` whose commits do not wait for the WAL flush
    /// (`synchronous_commit = off`). What such a commit can lose in a database crash is only a
    /// lease or an attempt's result: the delivery is then attempted again (at-least-once), and
    /// nothing acknowledged to a publisher is at stake, since publishes stay synchronous.
    /// Without this, every delivery result waits for its own disk flush (see BENCHMARKS.md).
    pub fn for_delivery_results(&self, max_connections: usize) -> Result<Self, StoreError> {
        // Bitmap scans off: the claim and result statements look up few rows by index, and a
        // bitmap scan, unlike a plain index scan, never marks the dead index entries it meets
        // as dead, so under the queue's churn each claim paid again for every dead entry since
        // the last vacuum (see BENCHMARKS.md).
        //
        // JIT off: once the queue holds about a million rows, the planner's (generic) estimate
        // for the claim passes jit_above_cost and every claim compiled itself first: 1.1 to
        // 2 s per claim instead of 17 ms for the same plan (the backlog scenario, BENCHMARKS.md).
        // Nothing these statements do runs long enough for compiled expressions to pay.
        let connector = self.connector.with_config(|config| {
            config.options("-c synchronous_commit=off -c enable_bitmapscan=off -c jit=off");
        });
        Ok(Self {
            pool: build_pool(&connector, max_connections)?,
            connector: self.connector.clone(),
            vault: self.vault.clone(),
            last_announce: self.last_announce.clone(),
            wakeups: self.wakeups.clone(),
        })
    }

    /// Uses `vault` to seal and open webhook secrets.
    pub fn with_vault(mut self, vault: Vault) -> Self {
        self.vault = std::sync::Arc::new(vault);
        self
    }

    /// This instance's wake-ups (shared by the stores made from this one).
    pub fn wakeups(&self) -> &Wakeups {
        &self.wakeups
    }

    /// Records that this instance appended entries to the delivery-update log.
    pub(crate) fn appended_updates(&self) {
        self.wakeups.appended.wake();
    }

    /// NOTIFYs the other instances of due deliveries (delivered on commit), with this instance's
    /// origin, which its own listener skips: in a transaction, wake this instance's worker after
    /// the commit (`wakeups().deliveries`), or it may look before the rows are visible.
    pub(crate) async fn notify_deliveries(
        &self,
        client: &impl deadpool_postgres::GenericClient,
    ) -> Result<(), StoreError> {
        client
            .execute(
                "SELECT pg_notify($1, $2)",
                &[&DELIVERIES_CHANNEL, &self.wakeups.origin()],
            )
            .await?;
        Ok(())
    }

    pub(crate) fn vault(&self) -> &Vault {
        &self.vault
    }

    /// The settings and TLS connector of this store's connections, for connections outside the
    /// pool (LISTEN, database creation).
    pub fn connector(&self) -> &PgConnector {
        &self.connector
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), anyhow::Error> {
        let mut client = self.pool.get().await?;
        // Object -> ClientWrapper -> tokio_postgres::Client, which refinery drives.
        run_migrations(&mut client).await
    }

    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// Connections in use and the pool's size, for metrics.
    pub fn pool_status(&self) -> (usize, usize) {
        let status = self.pool.status();
        (status.size - status.available, status.max_size)
    }
}

fn build_pool(connector: &PgConnector, max_connections: usize) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        connector.config().clone(),
        connector.tls(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_connections)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// Channel on which publishers announce new due deliveries to workers (a wake-up hint only).
pub const DELIVERIES_CHANNEL: &str = "webhooks_deliveries";

/// Advisory lock key held, until commit, by every transaction that leases deliveries (a claim,
/// a publish that inserts leased deliveries), across all instances. Each counts the leases
/// already committed to keep every webhook under its in-flight cap, and takes its snapshot only
/// once it holds the lock, so two of them can never both see the same room. Claims wait for it;
/// publishes only try, and lease nothing when it is taken.
pub(crate) const LEASE_LOCK: i64 = 7_262_024;

#[cfg(test)]
mod tests {
    use super::is_transient_sqlstate;

    #[test]
    fn connection_loss_and_shutdown_sqlstates_are_transient() {
        for code in [
            "08000", "08003", "08006", "08001", "08004", "57P01", "57P02", "57P03", "53300",
            "53100", "40001", "40P01", "57014", "25006",
        ] {
            assert!(is_transient_sqlstate(code), "{code} should be retryable");
        }
    }

    #[test]
    fn statement_errors_are_not_transient() {
        for code in [
            "23505", "23503", "22P02", "42P01", "42703", "XX000", "P0001",
        ] {
            assert!(
                !is_transient_sqlstate(code),
                "{code} should not be retryable"
            );
        }
    }
}
