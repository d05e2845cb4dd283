//! (d) SQL statements, round trips and Postgres writes per delivery, counted through a proxy
//! between the service and Postgres and from Postgres's statistics views.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;

use super::{Ctx, progress};
use crate::load::{self, ClosedLoop, Events, Gate, Window};
use crate::pgstats::{self, PerDelivery, Sources};
use crate::proxy::Proxy;
use crate::receiver::{self, Receiver};
use crate::service::Options;

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
            cap: s.backlog_cap(),
            fanout: u64::from(fanout),
            receiver: receiver.clone(),
            published: Arc::new(AtomicU64::new(receiver.ok())),
            delivered: None,
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
