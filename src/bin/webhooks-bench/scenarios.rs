//! The scenarios. Each sub-run starts its own service on its own fresh database (so one run's
//! backlog or table size never colours the next), its own receiver, and stops both at the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tonic::transport::Channel;

use crate::load::{self, Acks, ClosedLoop, Events, Gate, Published, Watchers, Window};
use crate::pgstats::{self, PerDelivery, Sources};
use crate::probe::{Probe, Report};
use crate::proxy::Proxy;
use crate::receiver::{self, Receiver};
use crate::service::{Ended, Launcher, Options, Service};
use crate::stats::{Summary, ratio, summarize};

/// Settings every scenario reads.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Measured window of each sub-run.
    pub duration: Duration,
    /// Load before the window opens.
    pub warmup: Duration,
    /// Longest wait for outstanding deliveries after a latency window.
    pub drain: Duration,
    /// Wait for Postgres statistics to be flushed (an idle backend's within 10 s).
    pub settle: Duration,
    /// Single-event publishers (publish throughput, latency at max).
    pub concurrency: usize,
    /// Batch publishers.
    pub batch_concurrency: usize,
    /// Events per PublishEvents call.
    pub batch_size: usize,
    /// Backlog cap of the saturating runs (deliveries published but not yet received).
    pub max_backlog: u64,
    /// Fixed offered rates for the latency scenario.
    pub rates: Vec<u32>,
    /// Offered rate of the hanging-endpoint scenario.
    pub hang_rate: u32,
    /// WatchDeliveries subscribers.
    pub watchers: usize,
    /// Events of the SQL-accounting workload (fan-out 1, batched).
    pub sql_events: u64,
    /// gRPC connections of the load generator.
    pub connections: usize,
    /// Postgres server URL without a database.
    pub server_url: String,
    /// Resolved address of the Postgres server (for the proxy).
    pub server_addr: SocketAddr,
}

/// Everything a scenario needs.
pub struct Ctx {
    /// Starts services.
    pub launcher: Launcher,
    /// Settings.
    pub settings: Settings,
    /// Peak RSS of every service started, by run label.
    pub memory: Vec<(String, Ended)>,
}

impl Ctx {
    fn probe(&self, service: &Service) -> Probe {
        Probe::start(
            service.pid,
            service.database.clone(),
            format!("{}/postgres", self.settings.server_url),
        )
    }

    async fn stop(&mut self, label: &str, service: Service) -> anyhow::Result<Ended> {
        let ended = service.stop().await?;
        self.memory.push((label.to_owned(), ended));
        Ok(ended)
    }
}

fn progress(message: &str) {
    eprintln!("[webhooks-bench] {message}");
}

async fn sleep_until(t: Instant) {
    tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await;
}

/// `later - earlier` in signed microseconds.
fn signed_us(later: Instant, earlier: Instant) -> i64 {
    if later >= earlier {
        (later - earlier).as_micros().min(i64::MAX as u128) as i64
    } else {
        -((earlier - later).as_micros().min(i64::MAX as u128) as i64)
    }
}

/// Counts succeeded deliveries; returns the count and the moment it stands for (the middle of
/// the query).
async fn succeeded_at(db: &tokio_postgres::Client) -> anyhow::Result<(i64, Instant)> {
    let before = Instant::now();
    let n = pgstats::count_status(db, "succeeded").await?;
    let after = Instant::now();
    Ok((n, before + (after - before) / 2))
}

// ----------------------------------------------------------------------------------------------
// (a) Publish throughput

/// One publish-throughput run.
#[derive(Debug, Clone, Serialize)]
pub struct PublishRun {
    /// `PublishEvent` or `PublishEvents`.
    pub rpc: String,
    /// Concurrent callers.
    pub callers: usize,
    /// Events per call.
    pub batch: usize,
    /// Events acknowledged per second in the window.
    pub events_per_s: f64,
    /// Calls per second in the window.
    pub calls_per_s: f64,
    /// Call latency.
    pub call_latency: Summary,
    /// Failed calls.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// Where the time went.
    pub probe: Report,
}

/// Scenario (a).
#[derive(Debug, Clone, Serialize)]
pub struct PublishResult {
    /// How it was measured.
    pub method: String,
    /// Single PublishEvent calls.
    pub single: PublishRun,
    /// PublishEvents batches.
    pub batched: PublishRun,
}

/// (a) Publish throughput: ingest only (workers disabled), one matching webhook.
pub async fn publish(ctx: &mut Ctx) -> anyhow::Result<PublishResult> {
    let s = ctx.settings.clone();
    let service = ctx
        .launcher
        .start(
            "publish",
            &Options {
                disable_workers: true,
                ..Options::default()
            },
        )
        .await?;
    let receiver = Receiver::start().await?;
    let channels = service.channels(s.connections).await?;
    load::create_webhooks(&channels[0], &receiver, 0, 1, 1, false).await?;
    let mut runs = Vec::new();
    for (callers, batch) in [(s.concurrency, 1), (s.batch_concurrency, s.batch_size)] {
        progress(&format!(
            "publish: {callers} callers x {batch} event(s) per call for {:?} (+{:?} warm-up)",
            s.duration, s.warmup
        ));
        let window = Window::after(s.warmup, s.duration);
        let probe_at = async {
            sleep_until(window.start).await;
            let probe = ctx.probe(&service);
            sleep_until(window.end).await;
            probe.finish().await
        };
        let spec = ClosedLoop {
            callers,
            batch,
            window,
            gate: None,
            acks: None,
            max_events: None,
        };
        let (published, probe) = tokio::join!(
            load::closed_loop(&channels, Events::new("publish", 1), spec),
            probe_at
        );
        if published.window_calls == 0 {
            bail!(
                "no publish call succeeded in the window; first error: {}",
                published.first_error.unwrap_or_default()
            );
        }
        runs.push(PublishRun {
            rpc: if batch == 1 {
                "PublishEvent"
            } else {
                "PublishEvents"
            }
            .to_owned(),
            callers,
            batch,
            events_per_s: published.window_events as f64 / window.seconds(),
            calls_per_s: published.window_calls as f64 / window.seconds(),
            call_latency: summarize(published.call_latency_us, 0),
            errors: published.errors,
            first_error: published.first_error,
            probe,
        });
    }
    ctx.stop("publish", service).await?;
    let batched = runs.pop().context("batched run missing")?;
    let single = runs.pop().context("single run missing")?;
    Ok(PublishResult {
        method: "ingest only: the service runs with --disable-workers true and one matching webhook, so \
                 every event stores one event row and one pending delivery; closed loop, calls acknowledged \
                 inside the window counted"
            .to_owned(),
        single,
        batched,
    })
}

// ----------------------------------------------------------------------------------------------
// (b) End-to-end throughput, and (g) with watchers

/// One saturating end-to-end run.
#[derive(Debug, Clone, Serialize)]
pub struct E2eRun {
    /// Webhooks matching each event.
    pub fanout: u16,
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
    /// Service memory at the end.
    pub memory: Ended,
}

/// Offers load as fast as possible (PublishEvents batches, held back only by the backlog cap)
/// to `fanout` webhooks and measures sustained deliveries over the window.
pub async fn e2e_run(ctx: &mut Ctx, fanout: u16, watchers: usize) -> anyhow::Result<E2eRun> {
    let s = ctx.settings.clone();
    let label = if watchers > 0 {
        format!("watchers-{watchers}")
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
    load::create_webhooks(&channels[0], &receiver, 0, fanout, 1, false).await?;
    let db = service.db().await?;
    let watching = if watchers > 0 {
        let mut stream_channels: Vec<Channel> = Vec::new();
        for _ in 0..4 {
            stream_channels.push(service.channel(None).await?);
        }
        Some(Watchers::open(&stream_channels, watchers).await?)
    } else {
        None
    };
    let watcher_count =
        |w: &Option<Watchers>| w.as_ref().map(|w| w.received.load(Ordering::Relaxed));
    let gate = Gate {
        cap: if s.max_backlog == 0 {
            u64::MAX
        } else {
            s.max_backlog
        },
        fanout: u64::from(fanout),
        receiver: receiver.clone(),
        published: Arc::new(AtomicU64::new(0)),
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
        let (c0, t0) = succeeded_at(&db).await?;
        let (r0, w0) = (receiver.ok(), watcher_count(&watching));
        let probe = ctx.probe(&service);
        sleep_until(window.end).await;
        let (c1, t1) = succeeded_at(&db).await?;
        let (r1, w1) = (receiver.ok(), watcher_count(&watching));
        let probe = probe.finish().await;
        anyhow::Ok((c0, t0, c1, t1, r0, r1, w0, w1, probe))
    };
    let (published, measured) = tokio::join!(
        load::closed_loop(&channels, Events::new(&label, 1), spec),
        measure
    );
    let (c0, t0, c1, t1, r0, r1, w0, w1, probe) = measured?;
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
        w.close();
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

/// Scenario (g).
#[derive(Debug, Clone, Serialize)]
pub struct WatchersResult {
    /// Subscribers.
    pub watchers: usize,
    /// Delivered/s with them.
    pub delivered_per_s: f64,
    /// Delivered/s without them (scenario (b), fan-out 1, same invocation).
    pub baseline_delivered_per_s: f64,
    /// Throughput lost, % of the baseline.
    pub cost_pct: f64,
    /// The run with watchers.
    pub run: E2eRun,
}

/// (g) The fan-out-1 run of (b) with `watchers` WatchDeliveries streams attached, compared with
/// `baseline` (the run without).
pub async fn watchers(ctx: &mut Ctx, baseline: &E2eRun) -> anyhow::Result<WatchersResult> {
    let n = ctx.settings.watchers;
    let run = e2e_run(ctx, 1, n).await?;
    if run.watcher_errors.unwrap_or(0) > 0 {
        bail!(
            "{} WatchDeliveries streams failed: {}",
            run.watcher_errors.unwrap_or(0),
            run.watcher_first_error.clone().unwrap_or_default()
        );
    }
    Ok(WatchersResult {
        watchers: n,
        delivered_per_s: run.delivered_per_s,
        baseline_delivered_per_s: baseline.delivered_per_s,
        cost_pct: ratio(
            baseline.delivered_per_s - run.delivered_per_s,
            baseline.delivered_per_s,
        ) * 100.0,
        run,
    })
}

// ----------------------------------------------------------------------------------------------
// (c) Latency, and (f) with a hanging endpoint

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
    let probe_at = async {
        sleep_until(window.start).await;
        let probe = ctx.probe(&service);
        sleep_until(window.end).await;
        probe.finish().await
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
    let (published, probe): (Published, Report) = tokio::join!(generate, probe_at);
    // Let what was published arrive (bounded).
    let deadline = Instant::now() + s.drain;
    while receiver.ok_at(0) < published.events && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let acks = acks.take();
    let receipts = receiver.receipts_at(0);
    let samples: Vec<i64> = acks
        .iter()
        .filter_map(|(id, acked)| receipts.get(id).map(|at| signed_us(*at, *acked)))
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
        publish_call: summarize(published.call_latency_us, 0),
        publish_errors: published.errors,
        first_error: published.first_error,
        generator_overflow: published.overflow,
        with_hanging_endpoint: hang,
        receiver: receiver.counts(),
        probe,
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

/// Scenario (f).
#[derive(Debug, Clone, Serialize)]
pub struct HangResult {
    /// Offered rate.
    pub rate: u32,
    /// p99 of the healthy endpoint with the hanging one beside it.
    pub healthy_p99_ms: Option<f64>,
    /// p99 at the same rate without the hanging endpoint.
    pub baseline_p99_ms: Option<f64>,
    /// healthy / baseline.
    pub ratio: Option<f64>,
    /// The run with the hanging endpoint.
    pub run: LatencyRun,
}

/// (f) The healthy endpoint's latency while a second webhook on the same events hangs 30 s.
pub async fn hang(ctx: &mut Ctx, baseline: &LatencyRun) -> anyhow::Result<HangResult> {
    let rate = ctx.settings.hang_rate;
    let run = latency_run(ctx, Some(rate), true).await?;
    let healthy = run.ack_to_receipt.p99_ms;
    let base = baseline.ack_to_receipt.p99_ms;
    Ok(HangResult {
        rate,
        healthy_p99_ms: healthy,
        baseline_p99_ms: base,
        ratio: match (healthy, base) {
            (Some(h), Some(b)) if b > 0.0 => Some(h / b),
            _ => None,
        },
        run,
    })
}

// ----------------------------------------------------------------------------------------------
// (d) SQL statements and bytes per delivery

/// One fixed-size workload of the SQL accounting.
#[derive(Debug, Clone, Serialize)]
pub struct SqlPhase {
    /// What was published.
    pub name: String,
    /// Webhooks per event.
    pub fanout: u16,
    /// Events per call.
    pub batch: usize,
    /// Events published.
    pub events: u64,
    /// Deliveries made (all SUCCEEDED).
    pub deliveries: u64,
    /// From the first snapshot to the last, s.
    pub seconds: f64,
    /// Statements the service executed per delivery (wire-protocol count, everything included).
    pub statements_per_delivery: f64,
    /// The same without the idle background (idle statements/s x seconds).
    pub statements_per_delivery_net: f64,
    /// Round trips (Sync + simple Query) per delivery.
    pub round_trips_per_delivery: f64,
    /// Parse messages per delivery (statements prepared again instead of reused).
    pub parses_per_delivery: f64,
    /// Postgres-side counts per delivery.
    pub postgres: PerDelivery,
    /// Statements by SQL text, executions per delivery, most frequent first.
    pub top_statements: Vec<(String, f64)>,
}

/// Scenario (d).
#[derive(Debug, Clone, Serialize)]
pub struct SqlResult {
    /// Which sources were used.
    pub source: String,
    /// What the server offers.
    pub sources: Sources,
    /// Statements per second with the service idle (sequencer, pollers, health).
    pub idle_statements_per_s: f64,
    /// Round trips per second idle.
    pub idle_round_trips_per_s: f64,
    /// Committed transactions per second idle.
    pub idle_transactions_per_s: f64,
    /// The workloads.
    pub phases: Vec<SqlPhase>,
    /// Receiver counters at the end.
    pub receiver: receiver::Counts,
}

/// (d) Counts statements (through the counting proxy), transactions, tuples, WAL and growth for
/// fixed workloads, each run until every delivery is SUCCEEDED and its updates are sequenced.
pub async fn sql(ctx: &mut Ctx) -> anyhow::Result<SqlResult> {
    let s = ctx.settings.clone();
    progress(&format!(
        "sql: {} events at fan-out 1 (batched), {} single, {} at fan-out 10, through the counting proxy",
        s.sql_events,
        (s.sql_events / 4).max(1),
        (s.sql_events / 10).max(1)
    ));
    let proxy = Proxy::start(s.server_addr).await?;
    let service = ctx
        .launcher
        .start(
            "sql",
            &Options {
                via: Some(proxy.addr),
                ..Options::default()
            },
        )
        .await?;
    let receiver = Receiver::start().await?;
    let channels = service.channels(s.connections).await?;
    // Node 1 events reach one webhook, node 2 events reach ten.
    load::create_webhooks(&channels[0], &receiver, 0, 1, 1, false).await?;
    load::create_webhooks(&channels[0], &receiver, 1, 10, 2, false).await?;
    let db = service.db().await?;
    let sources = pgstats::sources(&db).await?;
    let pgss = sources.pg_stat_statements;
    let per_snapshot: u64 = if pgss { 2 } else { 1 };

    // Idle background.
    tokio::time::sleep(s.settle).await;
    let idle_window = s.settle.max(Duration::from_secs(2));
    let (p0, s0, t0) = (
        proxy.counts(),
        pgstats::snapshot(&db, pgss).await?,
        Instant::now(),
    );
    tokio::time::sleep(idle_window).await;
    let (p1, s1, t1) = (
        proxy.counts(),
        pgstats::snapshot(&db, pgss).await?,
        Instant::now(),
    );
    let idle_s = (t1 - t0).as_secs_f64();
    let idle = p1.since(&p0);
    let idle_statements_per_s = idle.total_statements() as f64 / idle_s;
    let idle_round_trips_per_s = idle.round_trips as f64 / idle_s;
    let idle_transactions_per_s =
        pgstats::per_delivery(&s0, &s1, 1, per_snapshot, false).transactions / idle_s;

    let plan = [
        (
            format!("fan-out 1, PublishEvents of {}", s.batch_size),
            1u32,
            1u16,
            s.batch_size,
            s.sql_events,
        ),
        (
            "fan-out 1, single PublishEvent".to_owned(),
            1,
            1,
            1,
            (s.sql_events / 4).max(1),
        ),
        (
            format!("fan-out 10, PublishEvents of {}", s.batch_size),
            2,
            10,
            s.batch_size,
            (s.sql_events / 10).max(1),
        ),
    ];
    let mut phases = Vec::new();
    let mut succeeded_so_far: i64 = 0;
    for (name, node, fanout, batch, events) in plan {
        let (before_p, before, started) = (
            proxy.counts(),
            pgstats::snapshot(&db, pgss).await?,
            Instant::now(),
        );
        let mut own = per_snapshot;
        let gate = Gate {
            cap: if s.max_backlog == 0 {
                u64::MAX
            } else {
                s.max_backlog
            },
            fanout: u64::from(fanout),
            receiver: receiver.clone(),
            published: Arc::new(AtomicU64::new(receiver.ok())),
        };
        let window = Window {
            start: Instant::now(),
            end: Instant::now() + Duration::from_secs(600),
        };
        let spec = ClosedLoop {
            callers: if batch > 1 { s.batch_concurrency } else { 16 },
            batch,
            window,
            gate: Some(gate),
            acks: None,
            max_events: Some(events),
        };
        let published = load::closed_loop(&channels, Events::new("sql", node), spec).await;
        if published.errors > 0 {
            bail!(
                "{name}: {} publish calls failed: {}",
                published.errors,
                published.first_error.unwrap_or_default()
            );
        }
        let deliveries = published.events * u64::from(fanout);
        succeeded_so_far += deliveries as i64;
        // Until every delivery is SUCCEEDED and its updates are sequenced (bounded).
        let deadline = Instant::now() + Duration::from_secs(120) + s.drain;
        loop {
            let done = pgstats::count_status(&db, "succeeded").await?;
            let inbox = pgstats::inbox_rows(&db).await?;
            own += 2;
            if done >= succeeded_so_far && inbox == 0 {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "{name}: only {done} of {succeeded_so_far} deliveries succeeded in time ({inbox} updates unsequenced)"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(s.settle).await;
        let (after_p, after) = (proxy.counts(), pgstats::snapshot(&db, pgss).await?);
        let seconds = started.elapsed().as_secs_f64();
        let counted = after_p.since(&before_p);
        let n = deliveries.max(1) as f64;
        let mut top: Vec<(String, f64)> = counted
            .statements
            .iter()
            .map(|(sql, calls)| (sql.clone(), *calls as f64 / n))
            .collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        top.truncate(15);
        let total = counted.total_statements() as f64;
        phases.push(SqlPhase {
            name,
            fanout,
            batch,
            events: published.events,
            deliveries,
            seconds,
            statements_per_delivery: total / n,
            statements_per_delivery_net: (total - idle_statements_per_s * seconds).max(0.0) / n,
            round_trips_per_delivery: counted.round_trips as f64 / n,
            parses_per_delivery: counted.parses as f64 / n,
            postgres: pgstats::per_delivery(&before, &after, deliveries, own, pgss),
            top_statements: top,
        });
    }
    let unparsed = proxy.counts().unparsed_connections;
    ctx.stop("sql", service).await?;
    drop(proxy);
    if unparsed > 0 {
        bail!(
            "the counting proxy could not follow {unparsed} connection(s); statement counts are incomplete"
        );
    }
    let source = if pgss {
        "statements: pg_stat_statements (calls) and the bench's wire-protocol count of the service's \
         Execute/Query messages; transactions and rows: pg_stat_database / pg_stat_user_tables; WAL: pg_stat_wal \
         (cluster-wide) and pg_stat_statements.wal_bytes"
    } else {
        "pg_stat_statements is not loaded (shared_preload_libraries does not list it), so statements are the \
         bench's own wire-protocol count of the Execute and simple Query messages the service sends (through a \
         counting proxy: calls per SQL text, as pg_stat_statements would count them); transactions and rows: \
         pg_stat_database xact_commit and pg_stat_user_tables n_tup_ins/upd/del of the bench database; WAL: \
         pg_stat_wal wal_bytes, which is cluster-wide (other databases' commits in the same interval are \
         reported beside it)"
    }
    .to_owned();
    Ok(SqlResult {
        source,
        sources,
        idle_statements_per_s,
        idle_round_trips_per_s,
        idle_transactions_per_s,
        phases,
        receiver: receiver.counts(),
    })
}

// ----------------------------------------------------------------------------------------------
// (e) Peak RSS

/// Scenario (e).
#[derive(Debug, Clone, Serialize)]
pub struct RssResult {
    /// How it was measured.
    pub method: String,
    /// Largest VmHWM of any service of this invocation, MiB.
    pub peak_rss_mib: f64,
    /// The run it came from.
    pub peak_run: String,
    /// VmHWM of every service, MiB.
    pub by_run: Vec<(String, f64)>,
}

/// (e) Peak RSS over every service this invocation started.
pub fn rss(ctx: &Ctx) -> anyhow::Result<RssResult> {
    let by_run: Vec<(String, f64)> = ctx
        .memory
        .iter()
        .map(|(label, m)| (label.clone(), m.peak_rss_kib as f64 / 1024.0))
        .collect();
    let (peak_run, peak) = by_run
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .cloned()
        .context("no service ran, so there is no RSS to report")?;
    Ok(RssResult {
        method:
            "VmHWM from /proc/<pid>/status of each service process, read just before it is stopped"
                .to_owned(),
        peak_rss_mib: peak,
        peak_run,
        by_run,
    })
}
