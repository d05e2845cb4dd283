//! Prometheus metrics and HTTP health probes, served on their own port
//! (`WEBHOOKS_METRICS_ADDR`, off by default): `GET /metrics`, `GET /healthz` (the process
//! answers) and `GET /readyz` (the database answers and the delivery loop goes round).
//!
//! Counters and histograms are recorded where things happen (the worker, the ingest API);
//! gauges about the queue and the pool are sampled from Postgres by [`sample`] every few
//! seconds, so they show the truth across all instances sharing the database.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::shutdown::Shutdown;
use crate::store::Store;
use crate::stream::UpdateHub;

/// Deliveries by outcome of their latest attempt: `succeeded`, `retry`, `failed`.
pub const DELIVERIES_TOTAL: &str = "webhooks_deliveries_total";
/// Attempts started, by `path`: `direct` (sent by the instance that accepted the publish, under
/// the lease the publish inserted it with) or `claimed` (taken from the queue by a claim).
pub const ATTEMPTS_STARTED: &str = "webhooks_attempts_started_total";
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

/// Webhook state changes by `change`: `disabled`, `enabled`, `circuit_opened`,
/// `circuit_closed`. Counted once across all instances (by the alert processor, which takes each
/// log entry once): sum it over instances.
pub const WEBHOOK_STATE_CHANGES: &str = "webhooks_webhook_state_changes_total";
/// Webhooks that are disabled, sampled from the database (true across instances).
pub const DISABLED_WEBHOOKS: &str = "webhooks_disabled_webhooks";
/// Enabled webhooks whose circuit is open, sampled from the database.
pub const CIRCUIT_OPEN_WEBHOOKS: &str = "webhooks_circuit_open_webhooks";

/// How often gauges are sampled.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Whether this instance can take work, as `/readyz` and gRPC health report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// The first health check has not run yet.
    Starting,
    /// The database answers and the delivery loop goes round.
    Ready,
    /// Not ready, and why (one line, for the probe's log).
    NotReady(String),
}

/// The process's one metrics recorder (a process has one global recorder): installed by the
/// first service that serves metrics, shared by every later one (tests run several).
static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use.
pub fn recorder() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = RECORDER.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
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
        .install_recorder()?;
    // Two services starting at once in one process: the loser's install failed above.
    Ok(RECORDER.get_or_init(|| handle).clone())
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown` flips.
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    readiness: watch::Receiver<Readiness>,
    mut shutdown: Shutdown,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics and health endpoint listening");
    }
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.recv() => break,
        };
        let handle = handle.clone();
        let readiness = readiness.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let answer = answer(&request, &handle, &readiness.borrow());
                async move { Ok::<_, Infallible>(answer) }
            });
            // A probe or a scrape is one short request: a slow or silent client gets 10 s.
            let serving = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(30), serving).await;
        });
        // Reap finished connections so the set does not grow with every scrape.
        while connections.try_join_next().is_some() {}
    }
}

/// The answer to one request on the metrics port.
fn answer<B>(
    request: &http::Request<B>,
    handle: &PrometheusHandle,
    readiness: &Readiness,
) -> http::Response<Full<Bytes>> {
    let text = |status: http::StatusCode, body: String| {
        let mut response = http::Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    };
    if request.method() != http::Method::GET && request.method() != http::Method::HEAD {
        return text(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD\n".into(),
        );
    }
    match request.uri().path() {
        "/metrics" => {
            let mut response = text(http::StatusCode::OK, handle.render());
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        "/healthz" => text(http::StatusCode::OK, "ok: the process is running\n".into()),
        "/readyz" => match readiness {
            Readiness::Ready => text(
                http::StatusCode::OK,
                "ready: the database answers and the delivery loop runs\n".into(),
            ),
            Readiness::Starting => text(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "not ready: starting, the first health check has not run yet\n".into(),
            ),
            Readiness::NotReady(reason) => text(
                http::StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {reason}\n"),
            ),
        },
        _ => text(
            http::StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

/// Records one attempt.
pub fn record_attempt(outcome: &'static str, duration: Duration) {
    counter!(DELIVERIES_TOTAL, "outcome" => outcome).increment(1);
    histogram!(ATTEMPT_DURATION, "outcome" => outcome).record(duration.as_secs_f64());
}

/// Records attempts started on `path` (`direct` or `claimed`).
pub fn record_attempts_started(path: &'static str, count: usize) {
    if count > 0 {
        counter!(ATTEMPTS_STARTED, "path" => path).increment(count as u64);
    }
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

/// Counts one webhook-level log entry that is a state change (a delivery exhausted is not).
pub fn record_state_change(kind: crate::domain::UpdateKind) {
    use crate::domain::UpdateKind;
    let change = match kind {
        UpdateKind::WebhookDisabled => "disabled",
        UpdateKind::WebhookEnabled => "enabled",
        UpdateKind::CircuitOpened => "circuit_opened",
        UpdateKind::CircuitClosed => "circuit_closed",
        _ => return,
    };
    counter!(WEBHOOK_STATE_CHANGES, "change" => change).increment(1);
}

/// Samples the gauges until `shutdown` flips, and keeps the recorder's histograms trimmed
/// (the exporter's own HTTP listener did that; [`serve`] replaces it).
pub async fn sample(
    store: Store,
    hub: Arc<UpdateHub>,
    handle: PrometheusHandle,
    mut shutdown: Shutdown,
) {
    loop {
        handle.run_upkeep();
        // First what needs no database, so those gauges are there from the first sample on,
        // even while the queries below wait for a connection.
        let (in_use, size) = store.pool_status();
        gauge!(DB_POOL_IN_USE).set(in_use as f64);
        gauge!(DB_POOL_SIZE).set(size as f64);
        gauge!(OPEN_WATCHERS).set(hub.open_watchers() as f64);
        match store.queue_stats().await {
            Ok((depth, oldest_due)) => {
                gauge!(QUEUE_DEPTH).set(depth as f64);
                gauge!(QUEUE_OLDEST_DUE).set(oldest_due);
            }
            Err(e) => tracing::debug!(error = %e, "sampling queue metrics failed"),
        }
        match store.webhook_health_counts().await {
            Ok((disabled, circuit_open)) => {
                gauge!(DISABLED_WEBHOOKS).set(disabled as f64);
                gauge!(CIRCUIT_OPEN_WEBHOOKS).set(circuit_open as f64);
            }
            Err(e) => tracing::debug!(error = %e, "sampling webhook health failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SAMPLE_INTERVAL) => {}
            _ = shutdown.recv() => return,
        }
    }
}
