//! Prometheus metrics, served on their own port (`WEBHOOKS_METRICS_ADDR`, off by default).
//!
//! Counters and histograms are recorded where things happen (the worker, the ingest API);
//! gauges about the queue and the pool are sampled from Postgres by [`sample`] every few
//! seconds, so they show the truth across all instances sharing the database.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::sync::watch;

use crate::store::Store;
use crate::stream::UpdateHub;

/// Deliveries by outcome of their latest attempt: `succeeded`, `retry`, `failed`.
pub const DELIVERIES_TOTAL: &str = "webhooks_deliveries_total";
/// Attempt duration in seconds, by outcome.
pub const ATTEMPT_DURATION: &str = "webhooks_attempt_duration_seconds";
/// Attempts recorded per database write (see `src/delivery/recorder.rs`).
pub const RESULT_BATCH_SIZE: &str = "webhooks_result_batch_size";
/// Pending deliveries (due or waiting).
pub const QUEUE_DEPTH: &str = "webhooks_queue_depth";
/// How long the oldest due delivery has been waiting, in seconds.
pub const QUEUE_OLDEST_DUE: &str = "webhooks_queue_oldest_due_seconds";
/// Events stored by PublishEvent(s) (repeats excluded).
pub const EVENTS_PUBLISHED: &str = "webhooks_events_published_total";
/// Open WatchDeliveries streams on this instance.
pub const OPEN_WATCHERS: &str = "webhooks_open_watchers";
/// Database connections in use by this instance.
pub const DB_POOL_IN_USE: &str = "webhooks_db_pool_in_use";
/// Size of this instance's database pool.
pub const DB_POOL_SIZE: &str = "webhooks_db_pool_size";
/// Connections closed as soon as accepted because `WEBHOOKS_MAX_CONNECTIONS` were open.
pub const CONNECTIONS_REFUSED: &str = "webhooks_connections_refused_total";

/// How often gauges are sampled.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Starts the Prometheus endpoint on `addr`. Only one exporter can exist per process; a second
/// call (tests running several services in one process) reports the error.
pub fn install(addr: SocketAddr) -> anyhow::Result<()> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(ATTEMPT_DURATION.to_owned()),
            &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0,
            ],
        )?
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(RESULT_BATCH_SIZE.to_owned()),
            &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
        )?
        .install()?;
    tracing::info!(%addr, "metrics endpoint listening");
    Ok(())
}

/// Records one attempt.
pub fn record_attempt(outcome: &'static str, duration: Duration) {
    counter!(DELIVERIES_TOTAL, "outcome" => outcome).increment(1);
    histogram!(ATTEMPT_DURATION, "outcome" => outcome).record(duration.as_secs_f64());
}

/// Records the size of one batch of recorded attempts.
pub fn record_result_batch(size: usize) {
    histogram!(RESULT_BATCH_SIZE).record(size as f64);
}

/// Records stored events.
pub fn record_published(count: usize) {
    counter!(EVENTS_PUBLISHED).increment(count as u64);
}

/// Records a connection refused over the cap.
pub fn record_refused_connection() {
    counter!(CONNECTIONS_REFUSED).increment(1);
}

/// Samples the gauges until `shutdown` flips.
pub async fn sample(store: Store, hub: Arc<UpdateHub>, mut shutdown: watch::Receiver<bool>) {
    loop {
        match store.queue_stats().await {
            Ok((depth, oldest_due)) => {
                gauge!(QUEUE_DEPTH).set(depth as f64);
                gauge!(QUEUE_OLDEST_DUE).set(oldest_due);
            }
            Err(e) => tracing::debug!(error = %e, "sampling queue metrics failed"),
        }
        let (in_use, size) = store.pool_status();
        gauge!(DB_POOL_IN_USE).set(in_use as f64);
        gauge!(DB_POOL_SIZE).set(size as f64);
        gauge!(OPEN_WATCHERS).set(hub.open_watchers() as f64);
        tokio::select! {
            _ = tokio::time::sleep(SAMPLE_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
    }
}
