//! `instances`: 1, 2 and 4 service processes on one database, publishers spread over all of
//! them, one webhook (so the per-webhook in-flight cap is shared by every instance). Reports
//! delivered/s for each count, the CPU of the services and of Postgres per delivery (from
//! /proc: on two cores the sum cannot grow much, the cost per delivery predicts a bigger
//! machine), and the most leases the webhook held at once, sampled from the database, against
//! the cap: whether the cap holds cluster-wide.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::bail;
use serde::Serialize;

use super::{Ctx, progress, sleep_until, succeeded_at};
use crate::load::{self, ClosedLoop, Events, Gate, Window};
use crate::pgstats::{Cost, Meter, TAG};
use crate::probe::{Report, clock_ticks, process_ticks};
use crate::receiver::{self, Receiver};
use crate::service::{Options, Service};
use crate::stats::ratio;

/// The per-webhook cap the scenario runs with (low enough to be reached).
const CAP: i64 = 16;

/// One instance count.
#[derive(Debug, Clone, Serialize)]
pub struct InstancesRun {
    /// Service processes.
    pub instances: usize,
    /// SUCCEEDED deliveries per second over the window.
    pub delivered_per_s: f64,
    /// Window, s.
    pub window_s: f64,
    /// CPU of every service process per delivery, ms.
    pub service_cpu_ms_per_delivery: f64,
    /// CPU of the bench database's Postgres backends per delivery, ms.
    pub postgres_cpu_ms_per_delivery: f64,
    /// CPU of every Postgres process per delivery (WAL writer, checkpointer... included), ms.
    pub postgres_all_cpu_ms_per_delivery: f64,
    /// Each instance's CPU over the window, % of one core.
    pub service_cpu_pct_each: Vec<f64>,
    /// `--max-in-flight-per-webhook` of every instance.
    pub cap: i64,
    /// Most leases the webhook held at once (sampled every 20 ms from the database).
    pub max_leases_seen: i64,
    /// Whether that stayed within the cap.
    pub cap_held: bool,
    /// Failed publish calls.
    pub publish_errors: u64,
    /// Postgres work per delivery.
    pub pg_cost: Cost,
    /// Where the time went (the first instance's CPU in `service_cpu_pct`).
    pub probe: Report,
    /// Receiver counters at the end.
    pub receiver: receiver::Counts,
}

/// The scenario.
#[derive(Debug, Clone, Serialize)]
pub struct InstancesResult {
    /// How it was measured.
    pub method: String,
    /// One run per instance count.
    pub runs: Vec<InstancesRun>,
}

/// The scenario: 1, 2 and 4 instances.
pub async fn instances(ctx: &mut Ctx) -> anyhow::Result<InstancesResult> {
    let mut runs = Vec::new();
    for n in [1usize, 2, 4] {
        runs.push(run(ctx, n).await?);
    }
    let s = &ctx.settings;
    Ok(InstancesResult {
        method: format!(
            "n `webhooks serve` processes on one fresh database, each with --max-in-flight-per-webhook={CAP}; \
             one webhook; {} callers publish PublishEvents batches of {} spread over every instance, paused \
             while more than {} deliveries are outstanding; delivered/s = growth of count(*) succeeded over the \
             window; CPU from /proc/<pid>/stat of each service and of the Postgres processes; leases = \
             pending deliveries with a claim token and a running lease, per webhook, sampled every 20 ms",
            s.batch_concurrency, s.batch_size, s.max_backlog
        ),
        runs,
    })
}

async fn run(ctx: &mut Ctx, n: usize) -> anyhow::Result<InstancesRun> {
    let s = ctx.settings.clone();
    let label = format!("instances-{n}");
    progress(&format!(
        "{label}: {n} instance(s) on one database, for {:?} (+{:?} warm-up)",
        s.duration, s.warmup
    ));
    let cap_arg = vec![format!("--max-in-flight-per-webhook={CAP}")];
    let first = ctx
        .launcher
        .start(
            &label,
            &Options {
                extra_args: cap_arg.clone(),
                ..Options::default()
            },
        )
        .await?;
    let mut services: Vec<Service> = vec![first];
    for i in 1..n {
        let joined = Options {
            database: Some(services[0].database.clone()),
            extra_args: cap_arg.clone(),
            ..Options::default()
        };
        services.push(ctx.launcher.start(&format!("{label}-{i}"), &joined).await?);
    }
    let receiver = Receiver::start().await?;
    let mut channels = Vec::new();
    for service in &services {
        channels.extend(service.channels(s.connections.div_ceil(n).max(1)).await?);
    }
    load::create_webhooks(&channels[0], &receiver, 0, 1, 1, false).await?;
    let db = services[0].db().await?;
    let sampler_db = services[0].db().await?;
    let stop = Arc::new(AtomicBool::new(false));
    let max_leases = Arc::new(AtomicI64::new(0));
    let sampler = {
        let (stop, max_leases) = (stop.clone(), max_leases.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(row) = sampler_db
                    .query_one(
                        &format!(
                            "{TAG} SELECT coalesce(max(n), 0)::int8 FROM (SELECT count(*) AS n FROM deliveries \
                             WHERE status = 'pending' AND claim_token IS NOT NULL AND next_attempt_at > now() \
                             GROUP BY webhook_id) x"
                        ),
                        &[],
                    )
                    .await
                    && let Ok(v) = row.try_get::<_, i64>(0)
                {
                    max_leases.fetch_max(v, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let gate = Gate {
        cap: s.backlog_cap(),
        fanout: 1,
        receiver: receiver.clone(),
        published: Arc::new(AtomicU64::new(0)),
        delivered: None,
    };
    let window = Window::after(s.warmup, s.duration);
    let spec = ClosedLoop {
        callers: s.batch_concurrency.max(n),
        batch: s.batch_size,
        window,
        gate: Some(gate),
        acks: None,
        max_events: None,
    };
    let pids: Vec<u32> = services.iter().map(|x| x.pid).collect();
    let measure = async {
        sleep_until(window.start).await;
        let meter = Meter::start(&db).await?;
        let (c0, t0) = succeeded_at(&db).await?;
        let ticks0: Vec<u64> = pids
            .iter()
            .map(|p| process_ticks(*p).unwrap_or(0))
            .collect();
        let probe = ctx.probe(&services[0]);
        sleep_until(window.end).await;
        let (c1, t1) = succeeded_at(&db).await?;
        let ticks1: Vec<u64> = pids
            .iter()
            .map(|p| process_ticks(*p).unwrap_or(0))
            .collect();
        let probe = probe.finish().await;
        let cost = meter.finish(&db, (c1 - c0).max(0) as u64, 2).await?;
        anyhow::Ok((c0, t0, c1, t1, ticks0, ticks1, probe, cost))
    };
    let (published, measured) = tokio::join!(
        load::closed_loop(&channels, Events::new(&label, 1), spec),
        measure
    );
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let (c0, t0, c1, t1, ticks0, ticks1, probe, pg_cost) = measured?;
    // Joined instances first: the first one drops the database.
    while let Some(service) = services.pop() {
        ctx.stop(&label, service).await?;
    }
    if published.calls == 0 {
        bail!(
            "no publish call succeeded; first error: {}",
            published.first_error.unwrap_or_default()
        );
    }
    let seconds = (t1 - t0).as_secs_f64();
    let delivered = (c1 - c0).max(0) as f64;
    let tck = clock_ticks();
    let each: Vec<f64> = ticks0
        .iter()
        .zip(&ticks1)
        .map(|(a, b)| b.saturating_sub(*a) as f64 / tck / seconds.max(1e-9) * 100.0)
        .collect();
    let service_cpu_s: f64 = each.iter().map(|pct| pct / 100.0 * seconds).sum();
    let per_delivery_ms = |pct: f64| ratio(pct / 100.0 * probe.seconds * 1000.0, delivered);
    let max_leases_seen = max_leases.load(Ordering::Relaxed);
    Ok(InstancesRun {
        instances: n,
        delivered_per_s: ratio(delivered, seconds),
        window_s: seconds,
        service_cpu_ms_per_delivery: ratio(service_cpu_s * 1000.0, delivered),
        postgres_cpu_ms_per_delivery: per_delivery_ms(probe.postgres_bench_db_cpu_pct),
        postgres_all_cpu_ms_per_delivery: per_delivery_ms(probe.postgres_all_cpu_pct),
        service_cpu_pct_each: each,
        cap: CAP,
        max_leases_seen,
        cap_held: max_leases_seen <= CAP,
        publish_errors: published.errors,
        pg_cost,
        probe,
        receiver: receiver.counts(),
    })
}
