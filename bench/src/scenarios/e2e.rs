//! (b) End-to-end delivered throughput; its fan-out-1 run, with subscribers attached, is also
//! the measurement of (g).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::bail;
use serde::Serialize;

use super::{Ctx, Settings, progress, sleep_until, succeeded_at};
use crate::load::{self, ClosedLoop, Events, Gate, WatcherProcess, Window};
use crate::nginx::Nginx;
use crate::pgstats::{self, Cost, Meter};
use crate::probe::Report;
use crate::receiver::{self, Receiver};
use crate::service::{Ended, Options};
use crate::stats::ratio;

/// One saturating end-to-end run.
#[derive(Debug, Clone, Serialize)]
pub struct E2eRun {
    /// Webhooks matching each event.
    pub fanout: u16,
    /// The receiver: `bench` (verifies every signature) or `nginx` (the independent judge,
    /// `return 200`; delivered counted from the database).
    pub receiver_kind: String,
    /// WatchDeliveries streams attached.
    pub watchers: usize,
    /// Window length, s.
    pub window_s: f64,
    /// SUCCEEDED deliveries recorded in the database per second (the headline).
    pub delivered_per_s: f64,
    /// Verified first-time receipts per second at the receiver.
    pub received_per_s: f64,
    /// Events acknowledged per second.
    pub published_events_per_s: f64,
    /// Pending deliveries left when the window closed.
    pub backlog_pending: i64,
    /// Failed publish calls.
    pub publish_errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Receiver counters at the end.
    pub receiver: receiver::Counts,
    /// Updates the watchers received per second (with watchers).
    pub watcher_updates_per_s: Option<f64>,
    /// Watcher streams that failed.
    pub watcher_errors: Option<u64>,
    /// The first watcher failure.
    pub watcher_first_error: Option<String>,
    /// Where the time went.
    pub probe: Report,
    /// Postgres work per delivery over the window.
    pub pg_cost: Cost,
    /// Service memory at the end.
    pub memory: Ended,
}

/// [`e2e_run_into`] the bench's own receiver.
pub async fn e2e_run(ctx: &mut Ctx, fanout: u16, watchers: usize) -> anyhow::Result<E2eRun> {
    e2e_run_into(ctx, fanout, watchers, false).await
}

/// Offers load as fast as possible (PublishEvents batches, held back only by the backlog cap)
/// to `fanout` webhooks and measures sustained deliveries over the window.
pub async fn e2e_run_into(
    ctx: &mut Ctx,
    fanout: u16,
    watchers: usize,
    into_nginx: bool,
) -> anyhow::Result<E2eRun> {
    let s = ctx.settings.clone();
    let label = if watchers > 0 {
        format!("watchers-{watchers}")
    } else if into_nginx {
        format!("e2e-fanout-{fanout}-nginx")
    } else {
        format!("e2e-fanout-{fanout}")
    };
    progress(&format!(
        "{label}: saturating, batches of {} from {} callers, backlog cap {}, for {:?} (+{:?} warm-up)",
        s.batch_size, s.batch_concurrency, s.max_backlog, s.duration, s.warmup
    ));
    let service = ctx.launcher.start(&label, &Options::default()).await?;
    let receiver = Receiver::start().await?;
    let channels = service.channels(s.connections).await?;
    let nginx = if into_nginx {
        let nginx = Nginx::start().await?;
        let urls: Vec<String> = (0..fanout).map(|i| nginx.url(i)).collect();
        load::create_webhooks_at(&channels[0], &urls, 1).await?;
        Some(nginx)
    } else {
        load::create_webhooks(&channels[0], &receiver, 0, fanout, 1, false).await?;
        None
    };
    let db = service.db().await?;
    let delivered = nginx.as_ref().map(|_| Arc::new(AtomicU64::new(0)));
    let counter = match &delivered {
        Some(count) => Some(load::count_succeeded(service.db().await?, count.clone())),
        None => None,
    };
    // The watchers' clients run in a process of their own, so the probe measures their CPU
    // apart from the bench's (publishers and receiver) and the service's.
    let watching = if watchers > 0 {
        Some(WatcherProcess::spawn(service.grpc_addr, watchers, ctx.settings.watcher_decode).await?)
    } else {
        None
    };
    let watcher_count =
        |w: &Option<WatcherProcess>| w.as_ref().map(|w| w.received.load(Ordering::Relaxed));
    let gate = Gate {
        cap: s.backlog_cap(),
        fanout: u64::from(fanout),
        receiver: receiver.clone(),
        published: Arc::new(AtomicU64::new(0)),
        delivered: delivered.clone(),
    };
    let window = Window::after(s.warmup, s.duration);
    let spec = ClosedLoop {
        callers: s.batch_concurrency,
        batch: s.batch_size,
        window,
        gate: Some(gate),
        acks: None,
        max_events: None,
    };
    let measure = async {
        sleep_until(window.start).await;
        let meter = Meter::start(&db).await?;
        let (c0, t0) = succeeded_at(&db).await?;
        let (r0, w0) = (receiver.ok(), watcher_count(&watching));
        let probe = ctx.probe_with_clients(&service, watching.as_ref().map(|w| w.pid));
        sleep_until(window.end).await;
        let (c1, t1) = succeeded_at(&db).await?;
        let (r1, w1) = (receiver.ok(), watcher_count(&watching));
        let probe = probe.finish().await;
        let cost = meter.finish(&db, (c1 - c0).max(0) as u64, 2).await?;
        anyhow::Ok((c0, t0, c1, t1, r0, r1, w0, w1, probe, cost))
    };
    let (published, measured) = tokio::join!(
        load::closed_loop(&channels, Events::new(&label, 1), spec),
        measure
    );
    if let Some(counter) = counter {
        counter.abort();
    }
    drop(nginx);
    let (c0, t0, c1, t1, r0, r1, w0, w1, probe, pg_cost) = measured?;
    let backlog = pgstats::count_status(&db, "pending").await?;
    let seconds = (t1 - t0).as_secs_f64();
    let (watcher_errors, watcher_first_error) = match &watching {
        Some(w) => (
            Some(w.errors.load(Ordering::Relaxed)),
            w.first_error.lock().ok().and_then(|f| f.clone()),
        ),
        None => (None, None),
    };
    if let Some(w) = watching {
        w.close().await;
    }
    let memory = ctx.stop(&label, service).await?;
    if published.calls == 0 {
        bail!(
            "no publish call succeeded; first error: {}",
            published.first_error.unwrap_or_default()
        );
    }
    Ok(E2eRun {
        fanout,
        receiver_kind: if into_nginx { "nginx" } else { "bench" }.to_owned(),
        watchers,
        window_s: seconds,
        delivered_per_s: ratio((c1 - c0) as f64, seconds),
        received_per_s: ratio(r1.saturating_sub(r0) as f64, window.seconds()),
        published_events_per_s: published.window_events as f64 / window.seconds(),
        backlog_pending: backlog,
        publish_errors: published.errors,
        first_error: published.first_error,
        receiver: receiver.counts(),
        watcher_updates_per_s: match (w0, w1) {
            (Some(a), Some(b)) => Some(ratio(b.saturating_sub(a) as f64, window.seconds())),
            _ => None,
        },
        watcher_errors,
        watcher_first_error,
        probe,
        pg_cost,
        memory,
    })
}

/// Scenario (b).
#[derive(Debug, Clone, Serialize)]
pub struct E2eResult {
    /// How it was measured.
    pub method: String,
    /// One run per fan-out.
    pub runs: Vec<E2eRun>,
}

/// (b) End-to-end delivered throughput at fan-out 1 and 10.
pub async fn e2e(ctx: &mut Ctx) -> anyhow::Result<E2eResult> {
    let mut runs = Vec::new();
    for fanout in [1, 10] {
        runs.push(e2e_run(ctx, fanout, 0).await?);
    }
    if ctx.settings.nginx {
        runs.push(e2e_run_into(ctx, 1, 0, true).await?);
    }
    Ok(E2eResult {
        method: e2e_method(&ctx.settings),
        runs,
    })
}

fn e2e_method(s: &Settings) -> String {
    format!(
        "{} callers publish PublishEvents batches of {} as fast as acknowledgements return, pausing only \
         while more than {} deliveries are published but not yet received (0 = no cap); every event \
         matches `fanout` webhooks; delivered/s = growth of SELECT count(*) FROM deliveries WHERE \
         status='succeeded' over the window after warm-up; backlog = pending deliveries when the window closed",
        s.batch_concurrency, s.batch_size, s.max_backlog
    )
}
