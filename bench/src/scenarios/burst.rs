//! `burst`: a fixed number of events (40,000; 1,000 with --smoke) published as fast as they are
//! accepted, with no backlog cap, and the time until every delivery is SUCCEEDED: the drain rate
//! of a sudden backlog. Into the bench's receiver, and into the nginx judge with --nginx.

use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;

use super::{Ctx, progress};
use crate::load::{self, ClosedLoop, Events, Window};
use crate::nginx::Nginx;
use crate::pgstats::{self, Cost, Meter};
use crate::probe::Report;
use crate::receiver::Receiver;
use crate::service::Options;
use crate::stats::ratio;

/// One burst.
#[derive(Debug, Clone, Serialize)]
pub struct BurstRun {
    /// `bench` or `nginx`.
    pub receiver_kind: String,
    /// Events published (fan-out 1).
    pub events: u64,
    /// Seconds until every event was acknowledged.
    pub publish_s: f64,
    /// Events acknowledged per second.
    pub published_per_s: f64,
    /// Seconds from the first publish until every delivery was SUCCEEDED.
    pub drain_s: f64,
    /// Deliveries per second over `drain_s`.
    pub delivered_per_s: f64,
    /// Failed publish calls.
    pub publish_errors: u64,
    /// Postgres work per delivery.
    pub pg_cost: Cost,
    /// Where the time went (from the first publish to the last delivery).
    pub probe: Report,
}

/// The scenario.
#[derive(Debug, Clone, Serialize)]
pub struct BurstResult {
    /// How it was measured.
    pub method: String,
    /// Bench receiver, then nginx when asked.
    pub runs: Vec<BurstRun>,
}

/// The scenario.
pub async fn burst(ctx: &mut Ctx, smoke: bool) -> anyhow::Result<BurstResult> {
    let events = if smoke { 1_000 } else { 40_000 };
    let mut runs = vec![burst_run(ctx, events, false).await?];
    if ctx.settings.nginx {
        runs.push(burst_run(ctx, events, true).await?);
    }
    let s = &ctx.settings;
    Ok(BurstResult {
        method: format!(
            "{events} events at fan-out 1 published by {} callers in PublishEvents batches of {} with no backlog \
             cap; drain = first publish call to the moment SELECT count(*) ... status='succeeded' (polled every \
             100 ms) reached {events}",
            s.batch_concurrency, s.batch_size
        ),
        runs,
    })
}

async fn burst_run(ctx: &mut Ctx, events: u64, into_nginx: bool) -> anyhow::Result<BurstRun> {
    let s = ctx.settings.clone();
    let label = format!("burst-{}", if into_nginx { "nginx" } else { "bench" });
    progress(&format!(
        "{label}: {events} events as fast as accepted, then drained"
    ));
    let service = ctx.launcher.start(&label, &Options::default()).await?;
    let receiver = Receiver::start().await?;
    let channels = service.channels(s.connections).await?;
    let nginx = if into_nginx {
        let nginx = Nginx::start().await?;
        load::create_webhooks_at(&channels[0], &[nginx.url(0)], 1).await?;
        Some(nginx)
    } else {
        load::create_webhooks(&channels[0], &receiver, 0, 1, 1, false).await?;
        None
    };
    let db = service.db().await?;
    let meter = Meter::start(&db).await?;
    let probe = ctx.probe(&service);
    let started = Instant::now();
    let window = Window {
        start: started,
        end: started + Duration::from_secs(600),
    };
    let spec = ClosedLoop {
        callers: s.batch_concurrency,
        batch: s.batch_size,
        window,
        gate: None,
        acks: None,
        max_events: Some(events),
    };
    let published = load::closed_loop(&channels, Events::new(&label, 1), spec).await;
    let publish_s = started.elapsed().as_secs_f64();
    if published.errors > 0 {
        bail!(
            "{} publish calls failed: {}",
            published.errors,
            published.first_error.unwrap_or_default()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(300) + s.drain;
    let mut polls = 0u64;
    let drain_s = loop {
        let done = pgstats::count_status(&db, "succeeded").await?;
        polls += 1;
        if done >= published.events as i64 {
            break started.elapsed().as_secs_f64();
        }
        if Instant::now() >= deadline {
            bail!(
                "only {done} of {} deliveries succeeded in time",
                published.events
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let probe = probe.finish().await;
    // Drained: the service's backends go idle, and their last counts arrive late.
    tokio::time::sleep(s.settle).await;
    let pg_cost = meter.finish(&db, published.events, polls).await?;
    drop(nginx);
    ctx.stop(&label, service).await?;
    Ok(BurstRun {
        receiver_kind: if into_nginx { "nginx" } else { "bench" }.to_owned(),
        events: published.events,
        publish_s,
        published_per_s: ratio(published.events as f64, publish_s),
        drain_s,
        delivered_per_s: ratio(published.events as f64, drain_s),
        publish_errors: published.errors,
        pg_cost,
        probe,
    })
}
