//! `backlog`: does the cost of a delivery grow with the work waiting? Pending deliveries are
//! pre-loaded with SQL in bulk (generate_series, not by publishing: a million publishes would
//! take longer than the measurement) while every webhook's circuit is held open, then released
//! at once; the drain rate and the claim's time per call are measured as the backlog shrinks,
//! against the same drain from a small backlog (the empty-queue reference). Then the database
//! size per million deliveries and the retention purge rate (a second instance with a 1 s
//! retention and no workers, on the same database).

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::Client;

use super::{Ctx, progress, succeeded_at};
use crate::load::{self, Events};
use crate::pgstats::{self, Cost, Meter, TAG};
use crate::probe::Report;
use crate::receiver::{self, Receiver};
use crate::service::Options;
use crate::stats::ratio;

/// Rows inserted by one pre-load statement.
const CHUNK: u64 = 100_000;

/// One sample (every 500 ms) of a drain.
#[derive(Debug, Clone, Serialize)]
pub struct DrainSample {
    /// Seconds since the circuits were released.
    pub at_s: f64,
    /// Pending deliveries at that moment.
    pub pending: i64,
    /// Deliveries succeeded per second since the previous sample.
    pub delivered_per_s: f64,
    /// Mean execution time of the claim statement since the previous sample, ms
    /// (pg_stat_statements; none without it).
    pub claim_ms_per_call: Option<f64>,
    /// Claims since the previous sample.
    pub claim_calls: Option<i64>,
}

/// One pre-loaded drain.
#[derive(Debug, Clone, Serialize)]
pub struct BacklogRun {
    /// Pending deliveries pre-loaded.
    pub preloaded: u64,
    /// Webhooks they are spread over (round robin).
    pub webhooks: u16,
    /// Seconds the pre-load took (bulk SQL).
    pub preload_s: f64,
    /// Database size after the pre-load minus before, per million deliveries (each with its own
    /// event), MiB.
    pub mib_per_million: f64,
    /// Of which the deliveries table with its indexes, MiB per million.
    pub deliveries_mib_per_million: f64,
    /// Deliveries succeeded per second over the measured drain.
    pub delivered_per_s: f64,
    /// Seconds measured.
    pub window_s: f64,
    /// Pending deliveries left at the end.
    pub pending_left: i64,
    /// Claim time per call in the first and the last third of the drain, ms.
    pub claim_ms_first_third: Option<f64>,
    /// See `claim_ms_first_third`.
    pub claim_ms_last_third: Option<f64>,
    /// Drain rate / the small-backlog reference rate (when both were measured).
    pub rate_vs_reference: Option<f64>,
    /// Per-second samples.
    pub samples: Vec<DrainSample>,
    /// Postgres work per delivery over the drain.
    pub pg_cost: Cost,
    /// Where the time went.
    pub probe: Report,
    /// Retention purge afterwards: finished deliveries deleted per second, with the backlog
    /// still pending beside them.
    pub purge_per_s: Option<f64>,
    /// Finished deliveries the purge had to delete.
    pub purge_rows: i64,
    /// Receiver counters at the end.
    pub receiver: receiver::Counts,
}

/// The scenario.
#[derive(Debug, Clone, Serialize)]
pub struct BacklogResult {
    /// How it was measured.
    pub method: String,
    /// The empty-queue reference: the drain of a small backlog to one webhook.
    pub reference: BacklogRun,
    /// The pre-loaded drains.
    pub runs: Vec<BacklogRun>,
}

/// The scenario: the reference, then 100,000 and 1,000,000 (smoke: 1,000 and 3,000) pending
/// deliveries across 1 and 100 (smoke: 10) webhooks.
pub async fn backlog(ctx: &mut Ctx, smoke: bool) -> anyhow::Result<BacklogResult> {
    let (reference_size, sizes, hooks): (u64, [u64; 2], [u16; 2]) = if smoke {
        (300, [1_000, 3_000], [1, 10])
    } else {
        (20_000, [100_000, 1_000_000], [1, 100])
    };
    let reference = drain_run(ctx, reference_size, 1, None).await?;
    let mut runs = Vec::new();
    for size in sizes {
        for webhooks in hooks {
            runs.push(drain_run(ctx, size, webhooks, Some(reference.delivered_per_s)).await?);
        }
    }
    Ok(BacklogResult {
        method: format!(
            "pending deliveries (one event each, the body of a real publish) inserted with INSERT ... \
             SELECT FROM generate_series in chunks of {CHUNK} while every webhook's circuit is held open \
             (circuit_open_until = infinity), then released in one UPDATE; the drain is measured for the \
             --duration window (or until empty) from SELECT count(*) ... status='succeeded' each second; \
             claim time from pg_stat_statements (the CLAIM statement's total_exec_time / calls per second; \
             needs --own-cluster or a server that preloads it); size = pg_database_size growth of the \
             pre-load; purge = a second instance on the database with --retention=1s and no workers, rows \
             left that are not pending polled until none"
        ),
        reference,
        runs,
    })
}

/// The claim statement's cumulative (calls, ms), when pg_stat_statements is there.
async fn claim_stats(db: &Client, pgss: bool) -> Option<(i64, f64)> {
    if !pgss {
        return None;
    }
    let row = db
        .query_one(
            &format!(
                "{TAG} SELECT coalesce(sum(calls), 0)::int8, coalesce(sum(total_exec_time), 0)::float8
                 FROM pg_stat_statements
                 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND query LIKE '%WITH busy AS%' AND query NOT LIKE '%webhooks-bench%'"
            ),
            &[],
        )
        .await
        .ok()?;
    Some((row.try_get(0).ok()?, row.try_get(1).ok()?))
}

async fn preload(db: &Client, size: u64) -> anyhow::Result<()> {
    let template: uuid::Uuid = db
        .query_one(
            &format!("{TAG} SELECT id FROM events ORDER BY created_at LIMIT 1"),
            &[],
        )
        .await?
        .try_get(0)?;
    let mut done = 0u64;
    while done < size {
        let chunk = CHUNK.min(size - done);
        let (from, to) = ((done + 1) as i64, (done + chunk) as i64);
        // Time-ordered ids like the service's (UUIDv7-like: milliseconds first), so the primary
        // keys grow at the right edge as they do in production.
        db.execute(
            &format!(
                "{TAG} WITH hooks AS (SELECT array_agg(id ORDER BY seq) AS a FROM webhooks),
                 ev AS (
                    INSERT INTO events (id, idempotency_key, content_hash, event_type, function, request_id, body, occurred_at)
                    SELECT (lpad(to_hex((extract(epoch FROM now()) * 1000)::int8 + g), 12, '0')
                            || substr(md5(random()::text), 1, 20))::uuid,
                           'backlog-' || g, e.content_hash, e.event_type, e.function, 'BL-' || g, e.body, e.occurred_at
                    FROM events e, generate_series($2::int8, $3::int8) g
                    WHERE e.id = $1
                    RETURNING id, event_type, function, request_id)
                 INSERT INTO deliveries (id, webhook_id, event_id, event_type, function, request_id, status, next_attempt_at)
                 SELECT (lpad(to_hex((extract(epoch FROM now()) * 1000)::int8 + substr(ev.request_id, 4)::int8), 12, '0')
                         || substr(md5(random()::text), 1, 20))::uuid,
                        hooks.a[1 + substr(ev.request_id, 4)::int8 % cardinality(hooks.a)],
                        ev.id, ev.event_type, ev.function, ev.request_id, 'pending', now()
                 FROM ev, hooks"
            ),
            &[&template, &from, &to],
        )
        .await?;
        done += chunk;
    }
    db.batch_execute(&format!("{TAG} ANALYZE deliveries; ANALYZE events"))
        .await?;
    Ok(())
}

async fn sizes(db: &Client) -> anyhow::Result<(i64, i64)> {
    let row = db
        .query_one(
            &format!(
                "{TAG} SELECT pg_database_size(current_database()), pg_total_relation_size('deliveries')"
            ),
            &[],
        )
        .await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

async fn drain_run(
    ctx: &mut Ctx,
    size: u64,
    webhooks: u16,
    reference: Option<f64>,
) -> anyhow::Result<BacklogRun> {
    let s = ctx.settings.clone();
    let label = format!("backlog-{size}-{webhooks}");
    progress(&format!(
        "{label}: pre-loading {size} pending deliveries across {webhooks} webhook(s), then draining for up to {:?}",
        s.duration
    ));
    let service = ctx.launcher.start(&label, &Options::default()).await?;
    let receiver = Receiver::start().await?;
    let channels = service.channels(1).await?;
    load::create_webhooks(&channels[0], &receiver, 0, webhooks, 1, false).await?;
    let db = service.db().await?;
    // Hold every endpoint back while loading; one real publish gives the body to copy.
    db.execute(
        &format!("{TAG} UPDATE webhooks SET circuit_open_until = 'infinity'"),
        &[],
    )
    .await?;
    let publish = Events::new(&label, 1);
    let mut ingest =
        webhooks::proto::v1::event_ingest_client::EventIngestClient::new(channels[0].clone());
    ingest.publish_event(publish.next()).await?;
    let (size_before, deliveries_before) = sizes(&db).await?;
    let started = Instant::now();
    preload(&db, size).await?;
    let preload_s = started.elapsed().as_secs_f64();
    let (size_after, deliveries_after) = sizes(&db).await?;
    let per_million = |bytes: i64| bytes as f64 / size as f64 * 1e6 / (1024.0 * 1024.0);

    // Let the pre-load's row counts reach the statistics views before the first snapshot (an
    // idle backend's within 10 s), so they are not counted as the drain's.
    tokio::time::sleep(s.settle).await;
    let meter = Meter::start(&db).await?;
    let pgss = meter.has_statements();
    let (c0, t0) = succeeded_at(&db).await?;
    let mut own = 1u64;
    let mut last_claim = claim_stats(&db, pgss).await;
    // Released and announced the way the service announces new work (NOTIFY), so the worker
    // starts at once rather than at its next poll.
    db.batch_execute(&format!(
        "{TAG} UPDATE webhooks SET circuit_open_until = NULL; NOTIFY webhooks_deliveries, 'bench'"
    ))
    .await?;
    let probe = ctx.probe(&service);
    let deadline = Instant::now() + s.duration;
    let mut samples = Vec::new();
    let (mut last_count, mut last_at) = (c0, t0);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (count, at) = succeeded_at(&db).await?;
        let pending = pgstats::count_status(&db, "pending").await?;
        let claim = claim_stats(&db, pgss).await;
        own += 3;
        let (claim_ms_per_call, claim_calls) = match (last_claim, claim) {
            (Some((c0, ms0)), Some((c1, ms1))) if c1 > c0 => {
                (Some((ms1 - ms0) / (c1 - c0) as f64), Some(c1 - c0))
            }
            (Some(_), Some(_)) => (None, Some(0)),
            _ => (None, None),
        };
        samples.push(DrainSample {
            at_s: (at - t0).as_secs_f64(),
            pending,
            delivered_per_s: ratio((count - last_count) as f64, (at - last_at).as_secs_f64()),
            claim_ms_per_call,
            claim_calls,
        });
        (last_count, last_at, last_claim) = (count, at, claim);
        if pending == 0 || Instant::now() >= deadline {
            break;
        }
    }
    let probe = probe.finish().await;
    let (c1, t1) = (last_count, last_at);
    if samples.last().is_some_and(|x| x.pending == 0) {
        // Drained: the service's backends go idle, and their last counts arrive late.
        tokio::time::sleep(s.settle).await;
    }
    let pg_cost = meter.finish(&db, (c1 - c0).max(0) as u64, own).await?;
    let seconds = (t1 - t0).as_secs_f64();
    let delivered_per_s = ratio((c1 - c0) as f64, seconds);
    // The first and the last third of the samples (at least one each: a small drain may last
    // only a sample or two).
    let third = |last: bool| -> Option<f64> {
        let n = samples.len();
        let k = (n / 3).max(1).min(n);
        let range = if last { n - k..n } else { 0..k };
        let (mut calls, mut ms) = (0i64, 0.0);
        for sample in samples.get(range)? {
            if let (Some(c), Some(per)) = (sample.claim_calls, sample.claim_ms_per_call) {
                calls += c;
                ms += per * c as f64;
            }
        }
        (calls > 0).then(|| ms / calls as f64)
    };
    let pending_left = samples.last().map_or(size as i64, |x| x.pending);
    let purge_rows: i64 = db
        .query_one(
            &format!("{TAG} SELECT count(*) FROM deliveries WHERE status <> 'pending'"),
            &[],
        )
        .await?
        .try_get(0)?;
    let database = service.database.clone();
    // The purge, by a second instance with the retention at 1 s and no workers; the first is
    // stopped (it would keep draining) but its database kept for the second.
    let purger_options = Options {
        database: Some(database),
        extra_args: vec!["--retention=1s".into(), "--disable-workers=true".into()],
        ..Options::default()
    };
    let ended = service.kill_keeping_database()?;
    ctx.memory.push((label.clone(), ended));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let purge_started = Instant::now();
    let purger = ctx
        .launcher
        .start(&format!("{label}-purge"), &purger_options)
        .await?;
    let purge_deadline = purge_started
        + Duration::from_secs(if s.duration < Duration::from_secs(5) {
            20
        } else {
            120
        });
    let mut left = purge_rows;
    while left > 0 && Instant::now() < purge_deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        left = db
            .query_one(
                &format!("{TAG} SELECT count(*) FROM deliveries WHERE status <> 'pending'"),
                &[],
            )
            .await?
            .try_get(0)?;
    }
    let purge_s = purge_started.elapsed().as_secs_f64();
    ctx.stop(&format!("{label}-purge"), purger).await?;
    if !ctx.launcher.keep_databases {
        crate::service::drop_database(
            &ctx.settings.server_url,
            &purger_options.database.unwrap_or_default(),
        )
        .await?;
    }
    Ok(BacklogRun {
        preloaded: size,
        webhooks,
        preload_s,
        mib_per_million: per_million(size_after - size_before),
        deliveries_mib_per_million: per_million(deliveries_after - deliveries_before),
        delivered_per_s,
        window_s: seconds,
        pending_left,
        claim_ms_first_third: third(false),
        claim_ms_last_third: third(true),
        rate_vs_reference: reference.filter(|r| *r > 0.0).map(|r| delivered_per_s / r),
        samples,
        pg_cost,
        probe,
        purge_per_s: (purge_rows > 0).then(|| (purge_rows - left) as f64 / purge_s),
        purge_rows,
        receiver: receiver.counts(),
    })
}
