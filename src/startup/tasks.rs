//! The background tasks of a running instance: the update hub, history purging, planner
//! statistics, metrics, the delivery worker, the LISTEN task and health reporting. Each holds a
//! [`Shutdown`] and stops when it fires; the worker first lets its attempts in flight finish.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::Application;
use crate::delivery::{Dispatcher, Heartbeat, HttpSender, Worker, WorkerSettings};
use crate::metrics::Readiness;
use crate::shutdown::{Shutdown, ShutdownSender};
use crate::store::{DELIVERIES_CHANNEL, Store, Subscriptions, UPDATES_CHANNEL};

/// The delivery worker's handles that other parts of the instance use.
pub(super) struct WorkerHandles {
    /// The delivery loop's heartbeat, for health checks.
    pub heartbeat: Arc<Heartbeat>,
    /// Sends publishes' first attempts (the ingest API's).
    pub dispatcher: Dispatcher,
}

/// Spawns every background task but health reporting onto `background`, the metrics endpoint
/// on `metrics` when set, and returns the delivery worker's handles (none with workers off).
pub(super) fn spawn(
    background: &mut JoinSet<()>,
    app: &Application,
    metrics: Option<TcpListener>,
    readiness: watch::Receiver<Readiness>,
    stop: &ShutdownSender,
) -> anyhow::Result<Option<WorkerHandles>> {
    let wakeups = app.store.wakeups().clone();
    let mut subscriptions =
        Subscriptions::new(&wakeups).with(UPDATES_CHANNEL, wakeups.updates.clone());
    background.spawn(app.hub.clone().run(stop.subscribe()));
    background.spawn(purge_old_history(
        app.store.clone(),
        app.config.retention,
        stop.subscribe(),
    ));
    background.spawn(purge_old_audit_events(
        app.store.clone(),
        app.config.audit_retention,
        stop.subscribe(),
    ));
    background.spawn(keep_statistics_fresh(app.store.clone(), stop.subscribe()));
    background.spawn(crate::stream::alerts::run(
        app.store.clone(),
        app.operational,
        app.config.poll_interval,
        stop.subscribe(),
    ));
    if let Some(metrics) = metrics {
        let handle = crate::metrics::recorder().context("could not start the metrics endpoint")?;
        background.spawn(crate::metrics::serve(
            metrics,
            handle.clone(),
            readiness,
            stop.subscribe(),
        ));
        background.spawn(crate::metrics::sample(
            app.store.clone(),
            app.hub.clone(),
            handle,
            stop.subscribe(),
        ));
    }
    let mut handles = None;
    if !app.config.disable_workers {
        subscriptions = subscriptions.with(DELIVERIES_CHANNEL, wakeups.deliveries.clone());
        let worker = worker(app)?;
        handles = Some(WorkerHandles {
            heartbeat: worker.heartbeat(),
            dispatcher: worker.dispatcher(),
        });
        background.spawn(worker.run(stop.subscribe()));
    }
    background.spawn(crate::store::notify::listen(
        app.store.connector().clone(),
        subscriptions,
        stop.subscribe(),
    ));
    Ok(handles)
}

/// The delivery worker, on its own pool of the store (see [`Store::for_delivery_results`]).
fn worker(app: &Application) -> anyhow::Result<Worker> {
    let config = &app.config;
    Ok(Worker::new(
        app.store
            .for_delivery_results(config.database.db_pool_size)
            .context("could not set up the delivery worker's database pool")?,
        HttpSender::new(
            config.request_timeout,
            config.connect_timeout,
            app.destinations.clone(),
        ),
        WorkerSettings {
            concurrency: config.worker_concurrency,
            lease: config.lease(),
            poll_interval: config.poll_interval,
            retry_schedule: config.retry_schedule.clone(),
            policy: config.delivery_policy(),
        },
    ))
}

/// The standard health service, NOT_SERVING until the first check, and the task that keeps it
/// (and `/readyz`, through `readiness`) truthful from then on (see [`report_health`]).
pub(super) async fn start_health(
    background: &mut JoinSet<()>,
    readiness: watch::Sender<Readiness>,
    store: Store,
    heartbeat: Option<Arc<Heartbeat>>,
    poll_interval: std::time::Duration,
    shutdown: Shutdown,
) -> tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    // NOT_SERVING until the first check has run (the reporter starts "" as SERVING).
    for service in [
        "backoffice.webhooks.v1.WebhookAdmin",
        "backoffice.webhooks.v1.EventIngest",
        "",
    ] {
        health_reporter
            .set_service_status(service, tonic_health::ServingStatus::NotServing)
            .await;
    }
    background.spawn(report_health(
        health_reporter,
        readiness,
        store,
        heartbeat,
        stall_limit(poll_interval),
        shutdown,
    ));
    health_service
}

/// Purges history older than `retention`, a batch at a time, every few minutes.
async fn purge_old_history(store: Store, retention: std::time::Duration, mut shutdown: Shutdown) {
    const BATCH: i64 = 500;
    loop {
        let cutoff = time::OffsetDateTime::now_utc() - retention;
        let mut purged = 0u64;
        loop {
            match store.purge_history(cutoff, BATCH).await {
                Ok(0) => break,
                Ok(n) => purged += n,
                Err(e) => {
                    tracing::warn!(error = %e, "purging old history failed");
                    break;
                }
            }
            if shutdown.is_shutdown() {
                return;
            }
        }
        if purged > 0 {
            tracing::info!(purged, "purged deliveries past the retention period");
        }
        let cutoff = time::OffsetDateTime::now_utc() - crate::store::REQUEST_ID_RETENTION;
        if let Err(e) = store.purge_request_ids(cutoff).await {
            tracing::warn!(error = %e, "purging old request ids failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(300)) => {}
            _ = shutdown.recv() => return,
        }
    }
}

/// Purges audit rows older than `retention` (`WEBHOOKS_AUDIT_RETENTION`) every hour.
async fn purge_old_audit_events(
    store: Store,
    retention: std::time::Duration,
    mut shutdown: Shutdown,
) {
    loop {
        let cutoff = time::OffsetDateTime::now_utc() - retention;
        match store.purge_audit_events(cutoff).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged audit rows past the audit retention"),
            Err(e) => tracing::warn!(error = %e, "purging old audit rows failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
            _ = shutdown.recv() => return,
        }
    }
}

/// Analyzes the queue tables when their planner statistics are missing or far behind (see
/// `src/store/statistics.rs`), checking every few seconds: cheap, and it matters most in the
/// first minute of a new database, before autovacuum has looked at it.
async fn keep_statistics_fresh(store: Store, mut shutdown: Shutdown) {
    loop {
        match store.refresh_stale_statistics().await {
            Ok(tables) if !tables.is_empty() => {
                tracing::debug!(?tables, "analyzed queue tables with stale statistics");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "checking planner statistics failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            _ = shutdown.recv() => return,
        }
    }
}

/// How long the delivery loop may go without a round before health calls it stalled.
fn stall_limit(poll_interval: std::time::Duration) -> std::time::Duration {
    (poll_interval * 10).max(std::time::Duration::from_secs(30))
}

/// Keeps the standard health service and `/readyz` truthful: SERVING (ready) only while the
/// database answers and the delivery loop goes round; NOT_SERVING otherwise, and SERVING again
/// once it recovers.
async fn report_health(
    reporter: tonic_health::server::HealthReporter,
    readiness: watch::Sender<Readiness>,
    store: Store,
    heartbeat: Option<Arc<Heartbeat>>,
    stall_limit: std::time::Duration,
    mut shutdown: Shutdown,
) {
    use tonic_health::ServingStatus;
    let mut last: Option<bool> = None;
    loop {
        let database_ok = store.ping().await.is_ok();
        let loop_age = heartbeat.as_ref().map(|h| h.age());
        let loop_ok = loop_age.is_none_or(|age| age < stall_limit);
        let healthy = database_ok && loop_ok;
        readiness.send_replace(if !database_ok {
            Readiness::NotReady("the database does not answer".into())
        } else if !loop_ok {
            Readiness::NotReady(format!(
                "the delivery loop has not gone round for {}s",
                loop_age.unwrap_or_default().as_secs()
            ))
        } else {
            Readiness::Ready
        });
        if last != Some(healthy) {
            let status = if healthy {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            if !healthy {
                tracing::warn!(
                    database_ok,
                    delivery_loop_ok = loop_ok,
                    "health: NOT_SERVING"
                );
            } else if last.is_some() {
                tracing::info!("health: SERVING again");
            }
            reporter
                .set_service_status("backoffice.webhooks.v1.WebhookAdmin", status)
                .await;
            reporter
                .set_service_status("backoffice.webhooks.v1.EventIngest", status)
                .await;
            // The overall status last: whoever sees it can rely on the services' statuses.
            reporter.set_service_status("", status).await;
            last = Some(healthy);
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
            _ = shutdown.recv() => {
                readiness.send_replace(Readiness::NotReady(
                    "shutting down".into(),
                ));
                reporter.set_service_status("", ServingStatus::NotServing).await;
                return;
            }
        }
    }
}
