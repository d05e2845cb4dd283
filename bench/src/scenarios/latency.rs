//! (c) Publish acknowledgement to verified receipt latency; with a hanging endpoint beside the
//! healthy one, also the measurement of (f).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;

use super::{Ctx, Settings, progress, signed_us};
use crate::load::{self, Acks, ClosedLoop, Events, Gate, Published, Window};
use crate::pgstats::{Cost, Meter};
use crate::probe::Report;
use crate::receiver::{self, Receiver};
use crate::service::{Ended, Options};
use crate::stats::{Summary, summarize};

/// One latency run.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyRun {
    /// `100/s`, `1000/s` or `max`.
    pub offered: String,
    /// Offered events per second (none for max).
    pub offered_rate: Option<f64>,
    /// Events acknowledged per second in the window.
    pub achieved_rate: f64,
    /// Publish acknowledgement to verified receipt at the (healthy) endpoint.
    pub ack_to_receipt: Summary,
    /// Publish call sent to verified receipt: what the publisher's whole wait plus the delivery
    /// took. The instance that accepts a publish sends the first attempt beside its answer, so
    /// the receipt often comes before the ack and `ack_to_receipt` alone says little.
    pub call_to_receipt: Summary,
    /// PublishEvent call latency.
    pub publish_call: Summary,
    /// Failed publish calls.
    pub publish_errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Open loop: events not sent because too many calls were in flight.
    pub generator_overflow: u64,
    /// A hanging endpoint was subscribed beside the healthy one.
    pub with_hanging_endpoint: bool,
    /// Receiver counters at the end.
    pub receiver: receiver::Counts,
    /// Where the time went.
    pub probe: Report,
    /// Postgres work per SUCCEEDED delivery over the window (the hanging endpoint's work
    /// included when there is one).
    pub pg_cost: Cost,
    /// Service memory at the end.
    pub memory: Ended,
}

/// Publishes single events at `rate` (open loop; `None`: closed loop at the maximum) to one
/// healthy webhook, plus one hanging webhook when `hang`, and measures ack → receipt.
pub async fn latency_run(
    ctx: &mut Ctx,
    rate: Option<u32>,
    hang: bool,
) -> anyhow::Result<LatencyRun> {
    let s = ctx.settings.clone();
    let offered = rate.map_or_else(|| "max".to_owned(), |r| format!("{r}/s"));
    let label = format!(
        "latency-{}{}",
        offered.replace("/s", ""),
        if hang { "-hang" } else { "" }
    );
    progress(&format!(
        "{label}: single PublishEvent at {offered}{} for {:?} (+{:?} warm-up)",
        if hang { " with a hanging endpoint" } else { "" },
        s.duration,
        s.warmup
    ));
    let service = ctx.launcher.start(&label, &Options::default()).await?;
    let receiver = Receiver::start().await?;
    let channels = service.channels(s.connections).await?;
    load::create_webhooks(&channels[0], &receiver, 0, 1, 1, false).await?;
    if hang {
        load::create_webhooks(&channels[0], &receiver, 1, 1, 1, true).await?;
    }
    let acks = Arc::new(Acks::default());
    let events = Events::new(&label, 1);
    let window = Window::after(s.warmup, s.duration);
    let db = service.db().await?;
    let probe_at = async {
        super::sleep_until(window.start).await;
        let meter = Meter::start(&db).await?;
        let (c0, _) = super::succeeded_at(&db).await?;
        let report = ctx.probe_window(&service, window).await;
        let (c1, _) = super::succeeded_at(&db).await?;
        let cost = meter.finish(&db, (c1 - c0).max(0) as u64, 2).await?;
        anyhow::Ok((report, cost))
    };
    let generate = async {
        match rate {
            Some(rate) => {
                load::open_loop(
                    &channels,
                    events,
                    f64::from(rate),
                    window,
                    acks.clone(),
                    20_000,
                )
                .await
            }
            None => {
                let gate = Gate {
                    cap: s.concurrency as u64,
                    fanout: 1,
                    receiver: receiver.clone(),
                    published: Arc::new(AtomicU64::new(0)),
                    delivered: None,
                };
                let spec = ClosedLoop {
                    callers: s.concurrency,
                    batch: 1,
                    window,
                    gate: Some(gate),
                    acks: Some(acks.clone()),
                    max_events: None,
                };
                load::closed_loop(&channels, events, spec).await
            }
        }
    };
    let (published, probed): (Published, anyhow::Result<(Report, Cost)>) =
        tokio::join!(generate, probe_at);
    let (probe, pg_cost) = probed?;
    // Let what was published arrive (bounded).
    let deadline = Instant::now() + s.drain;
    while receiver.ok_at(0) < published.events && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let acks = acks.take();
    let receipts = receiver.receipts_at(0);
    let samples: Vec<i64> = acks
        .iter()
        .filter_map(|a| receipts.get(&a.event_id).map(|at| signed_us(*at, a.acked)))
        .collect();
    let from_call: Vec<i64> = acks
        .iter()
        .filter_map(|a| receipts.get(&a.event_id).map(|at| signed_us(*at, a.sent)))
        .collect();
    let missing = (acks.len() - samples.len()) as u64;
    let memory = ctx.stop(&label, service).await?;
    if published.calls == 0 {
        bail!(
            "no publish call succeeded; first error: {}",
            published.first_error.unwrap_or_default()
        );
    }
    Ok(LatencyRun {
        offered,
        offered_rate: rate.map(f64::from),
        achieved_rate: published.window_events as f64 / window.seconds(),
        ack_to_receipt: summarize(samples, missing),
        call_to_receipt: summarize(from_call, missing),
        publish_call: summarize(published.call_latency_us, 0),
        publish_errors: published.errors,
        first_error: published.first_error,
        generator_overflow: published.overflow,
        with_hanging_endpoint: hang,
        receiver: receiver.counts(),
        probe,
        pg_cost,
        memory,
    })
}

/// Scenario (c).
#[derive(Debug, Clone, Serialize)]
pub struct LatencyResult {
    /// How it was measured.
    pub method: String,
    /// One run per offered rate.
    pub runs: Vec<LatencyRun>,
}

/// (c) Latency at the fixed rates and at the maximum.
pub async fn latency(ctx: &mut Ctx) -> anyhow::Result<LatencyResult> {
    let mut runs = Vec::new();
    for rate in ctx.settings.rates.clone() {
        runs.push(latency_run(ctx, Some(rate), false).await?);
    }
    runs.push(latency_run(ctx, None, false).await?);
    Ok(LatencyResult {
        method: latency_method(&ctx.settings),
        runs,
    })
}

fn latency_method(s: &Settings) -> String {
    format!(
        "one webhook; single PublishEvent calls; fixed rates are open loop (a tokio interval starts each \
         due call whatever earlier calls do); `max` is closed loop: {} callers, paused while more than {} \
         events are published but not received. Latency = verified receipt at the receiver minus the \
         publish acknowledgement at the caller (matched by data.event_id), for events acknowledged inside \
         the window; events not received within {:?} after the window count as missing (a percentile that \
         falls among them is shown as `> drain`)",
        s.concurrency, s.concurrency, s.drain
    )
}
