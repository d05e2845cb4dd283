//! `webhooks-bench`: the end-to-end benchmark of the webhook service (issue 7).
//!
//! It starts the real service (`webhooks serve`, the binary next to this one unless
//! `--service-bin` says otherwise) as a child process on a fresh database, a fast receiver on
//! 127.0.0.1 that verifies every signature, and a load generator that publishes through the
//! real gRPC API; then it measures publish throughput, end-to-end delivered throughput,
//! publish→receipt latency, SQL statements and Postgres writes per delivery, peak RSS, latency
//! beside a hanging endpoint and throughput with WatchDeliveries subscribers. It prints a table
//! and, with `--json FILE`, writes every number. See BENCHMARKS.md.
//!
//! ```text
//! cargo build --release --bins
//! cargo run --release --bin webhooks-bench -- --json bench.json
//! ```

mod cluster;
mod load;
mod machine;
mod nginx;
mod pgstats;
mod probe;
mod proxy;
mod receiver;
mod scenarios;
mod service;
mod stats;
mod table;
mod targets;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use webhooks::domain::parse_duration;

use machine::{machine, machine_load, now_rfc3339};
use scenarios::{Ctx, E2eRun, LatencyRun, Settings};
use table::print_table;
use targets::targets;

/// The scenarios, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Scenario {
    /// (a) PublishEvent / PublishEvents throughput (ingest only).
    Publish,
    /// (b) End-to-end delivered throughput at fan-out 1 and 10.
    E2e,
    /// (g) (b) at fan-out 1 with WatchDeliveries subscribers attached.
    Watchers,
    /// (c) Publish-ack to receipt latency at fixed rates and at the maximum.
    Latency,
    /// (f) Healthy endpoint latency while another endpoint hangs.
    Hang,
    /// (d) SQL statements and Postgres writes per delivery.
    Sql,
    /// (e) Peak RSS of the service (over every run of this invocation).
    Rss,
    /// Drain of 100,000 and 1,000,000 pre-loaded pending deliveries (1 and 100 webhooks),
    /// database size per million, retention purge rate.
    Backlog,
    /// 1, 2 and 4 service processes on one database.
    Instances,
    /// 40,000 events published as fast as accepted, then drained.
    Burst,
    /// Everything.
    All,
}

/// End-to-end benchmark of the webhook service. Talks only to 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "webhooks-bench", version)]
struct Args {
    /// Scenarios to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    scenario: Vec<Scenario>,

    /// Measured window of each run (e.g. 20s). Default 20s, or 2s with --smoke.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,

    /// Load before each window opens. Default 3s, or 500ms with --smoke.
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,

    /// Longest wait for outstanding deliveries after a latency window. Default 15s (5s smoke).
    #[arg(long, value_parser = parse_duration)]
    drain: Option<Duration>,

    /// Short run for CI: ~2-3 s per scenario, smaller SQL workload. Never judge numbers from it.
    #[arg(long)]
    smoke: bool,

    /// Also write every number as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,

    /// The `webhooks` binary to benchmark. Default: `webhooks` next to this executable.
    #[arg(long)]
    service_bin: Option<PathBuf>,

    /// PostgreSQL server (no database name needed; one is stripped). Must be on this machine.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    database_server: String,

    /// Concurrent single-event publishers (publish throughput; latency at max).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,

    /// Concurrent batch publishers.
    #[arg(long, default_value_t = 4)]
    batch_concurrency: usize,

    /// Events per PublishEvents call.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    batch_size: u16,

    /// Saturating runs pause while more deliveries than this are published but not yet received
    /// (0: no cap). The claim's cost grows with the backlog, so this shapes the e2e numbers; see
    /// BENCHMARKS.md.
    #[arg(long, default_value_t = 5_000)]
    max_backlog: u64,

    /// Fixed offered rates (events/s) of the latency scenario.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    rates: Vec<u32>,

    /// Offered rate (events/s) of the hanging-endpoint scenario.
    #[arg(long, default_value_t = 1000)]
    hang_rate: u32,

    /// WatchDeliveries subscribers of the watchers scenario.
    #[arg(long, default_value_t = 100)]
    watchers: usize,

    /// What the watchers scenario's clients decode of each update: its cursor only, or the
    /// whole `DeliveryUpdate` (as a console would, on its own machine).
    #[arg(long, value_enum, default_value_t = load::WatcherDecode::Cursor)]
    watcher_decode: load::WatcherDecode,

    /// Events of the SQL-accounting workload. Default 20000 (500 with --smoke).
    #[arg(long)]
    sql_events: Option<u64>,

    /// gRPC connections the load generator spreads its calls over.
    #[arg(long, default_value_t = 4)]
    connections: usize,

    /// Extra flag for `webhooks serve` (repeatable), e.g. --service-arg=--worker-concurrency=128.
    #[arg(long, allow_hyphen_values = true)]
    service_arg: Vec<String>,

    /// Free-form note recorded in the JSON (e.g. which build of the service this is).
    #[arg(long, default_value = "")]
    label: String,

    /// Keep the webhooks_bench_* databases instead of dropping them.
    #[arg(long)]
    keep_databases: bool,

    /// Run on a throwaway PostgreSQL cluster the bench starts (initdb/pg_ctl, stock settings plus
    /// pg_stat_statements preloaded) instead of --database-server, so every scenario reports
    /// Postgres time by statement.
    #[arg(long)]
    own_cluster: bool,

    /// Also measure fan-out 1 and the burst into a plain nginx (`return 200`), the independent
    /// judge (installed from Debian by scripts/install-nginx.sh when missing).
    #[arg(long)]
    nginx: bool,

    /// Internal: be the watchers scenario's client process, with `--watchers` streams to the
    /// service at this address (the bench starts it itself).
    #[arg(long, hide = true)]
    watch_clients: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(addr) = args.watch_clients {
        return match load::run_watch_clients(addr, args.watchers.max(1), args.watcher_decode).await
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                println!("error {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    tokio::select! {
        result = run(args) => match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("webhooks-bench: error: {e:#}");
                ExitCode::FAILURE
            }
        },
        _ = tokio::signal::ctrl_c() => {
            // Dropping the run kills the child services (their guards); databases may remain.
            eprintln!("webhooks-bench: interrupted; services stopped (webhooks_bench_* databases may remain)");
            ExitCode::from(130)
        }
    }
}

/// The server part of a Postgres URL (scheme, user, host, port), without database or query.
fn server_part(url: &str) -> anyhow::Result<String> {
    let mut parsed = url::Url::parse(url).context("--database-server is not a URL")?;
    parsed.set_path("");
    parsed.set_query(None);
    Ok(parsed.to_string().trim_end_matches('/').to_owned())
}

async fn resolve_local(server_url: &str) -> anyhow::Result<SocketAddr> {
    let parsed = url::Url::parse(server_url)?;
    let host = parsed.host_str().context("--database-server has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = parsed.port().unwrap_or(5432);
    let addr = tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    if !addr.ip().is_loopback() {
        bail!(
            "the benchmark only talks to this machine: --database-server must be a loopback address, not {addr}"
        );
    }
    Ok(addr)
}

fn service_bin(args: &Args) -> anyhow::Result<PathBuf> {
    let bin = match &args.service_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()
            .context("cannot find this executable's directory")?
            .parent()
            .context("this executable has no directory")?
            .join("webhooks"),
    };
    if !bin.is_file() {
        bail!(
            "the service binary {} does not exist: build it (cargo build --release --bins) or pass --service-bin",
            bin.display()
        );
    }
    Ok(bin)
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let smoke = args.smoke;
    let pick = |given: Option<Duration>, full: Duration, quick: Duration| {
        given.unwrap_or(if smoke { quick } else { full })
    };
    // Dropped (stopped and deleted) when the run ends.
    let cluster = if args.own_cluster {
        let cluster = cluster::Cluster::start()?;
        eprintln!(
            "[webhooks-bench] throwaway cluster with pg_stat_statements at {}",
            cluster.server_url
        );
        Some(cluster)
    } else {
        None
    };
    let server_url = match &cluster {
        Some(cluster) => cluster.server_url.clone(),
        None => server_part(&args.database_server)?,
    };
    let server_addr = resolve_local(&server_url).await?;
    let settings = Settings {
        duration: pick(
            args.duration,
            Duration::from_secs(20),
            Duration::from_secs(2),
        ),
        warmup: pick(
            args.warmup,
            Duration::from_secs(3),
            Duration::from_millis(500),
        ),
        drain: pick(args.drain, Duration::from_secs(15), Duration::from_secs(5)),
        // An idle backend's statistics can reach the views up to 10 s late
        // (PGSTAT_IDLE_INTERVAL), and the service's backends go idle between the sequencer's
        // rounds; a shorter wait under-counted rows (4.31 inserted per delivery instead of 7).
        settle: if smoke {
            Duration::from_millis(1500)
        } else {
            Duration::from_millis(11_000)
        },
        concurrency: args.concurrency.max(1),
        batch_concurrency: args.batch_concurrency.max(1),
        batch_size: usize::from(args.batch_size),
        max_backlog: args.max_backlog,
        rates: args.rates.iter().copied().filter(|r| *r > 0).collect(),
        hang_rate: args.hang_rate.max(1),
        watchers: args.watchers.max(1),
        watcher_decode: args.watcher_decode,
        sql_events: args
            .sql_events
            .unwrap_or(if smoke { 500 } else { 20_000 })
            .max(10),
        connections: args.connections.max(1),
        server_url: server_url.clone(),
        server_addr,
        nginx: args.nginx,
    };
    let bin = service_bin(&args)?;
    let log_dir = std::env::temp_dir().join(format!(
        "webhooks-bench-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    std::fs::create_dir_all(&log_dir)
        .with_context(|| format!("cannot create {}", log_dir.display()))?;
    let mut selected: BTreeSet<Scenario> = args.scenario.iter().copied().collect();
    if selected.remove(&Scenario::All) {
        selected.extend([
            Scenario::Publish,
            Scenario::E2e,
            Scenario::Watchers,
            Scenario::Latency,
            Scenario::Hang,
            Scenario::Sql,
            Scenario::Rss,
            Scenario::Backlog,
            Scenario::Instances,
            Scenario::Burst,
        ]);
    }
    let started_at = now_rfc3339();
    let machine_before = machine(&server_url).await;
    let mut ctx = Ctx {
        launcher: service::Launcher {
            bin: bin.clone(),
            server_url: server_url.clone(),
            extra_args: args.service_arg.clone(),
            log_dir: log_dir.clone(),
            keep_databases: args.keep_databases,
        },
        settings: settings.clone(),
        memory: Vec::new(),
    };
    eprintln!(
        "[webhooks-bench] service {}, database server {server_url}, logs in {}",
        bin.display(),
        log_dir.display()
    );

    let mut results = serde_json::Map::new();
    let mut failed = Vec::new();
    let mut record = |key: &str, outcome: anyhow::Result<Value>| match outcome {
        Ok(value) => {
            results.insert(key.to_owned(), value);
        }
        Err(e) => {
            eprintln!("[webhooks-bench] {key} failed: {e:#}");
            failed.push(key.to_owned());
            results.insert(key.to_owned(), json!({ "error": format!("{e:#}") }));
        }
    };
    // (a)
    if selected.contains(&Scenario::Publish) {
        let r = scenarios::publish(&mut ctx).await;
        record("publish", r.and_then(|r| Ok(serde_json::to_value(r)?)));
    }
    // (b), and the baseline of (g)
    let mut e2e_fanout_1: Option<E2eRun> = None;
    if selected.contains(&Scenario::E2e) {
        let r = scenarios::e2e(&mut ctx).await;
        if let Ok(r) = &r {
            e2e_fanout_1 = r.runs.iter().find(|run| run.fanout == 1).cloned();
        }
        record("e2e", r.and_then(|r| Ok(serde_json::to_value(r)?)));
    }
    // (g)
    if selected.contains(&Scenario::Watchers) {
        let r = async {
            let baseline = match e2e_fanout_1.clone() {
                Some(b) => b,
                None => scenarios::e2e_run(&mut ctx, 1, 0).await?,
            };
            let r = scenarios::watchers(&mut ctx, &baseline).await?;
            Ok(serde_json::to_value(r)?)
        }
        .await;
        record("watchers", r);
    }
    // (c), and the baseline of (f)
    let mut baseline_at_hang_rate: Option<LatencyRun> = None;
    if selected.contains(&Scenario::Latency) {
        let r = scenarios::latency(&mut ctx).await;
        if let Ok(r) = &r {
            baseline_at_hang_rate = r
                .runs
                .iter()
                .find(|run| run.offered_rate == Some(f64::from(settings.hang_rate)))
                .cloned();
        }
        record("latency", r.and_then(|r| Ok(serde_json::to_value(r)?)));
    }
    // (f)
    if selected.contains(&Scenario::Hang) {
        let r = async {
            let baseline = match baseline_at_hang_rate.clone() {
                Some(b) => b,
                None => scenarios::latency_run(&mut ctx, Some(settings.hang_rate), false).await?,
            };
            let r = scenarios::hang(&mut ctx, &baseline).await?;
            Ok(serde_json::to_value(r)?)
        }
        .await;
        record("hang", r);
    }
    // (d)
    if selected.contains(&Scenario::Sql) {
        let r = scenarios::sql(&mut ctx).await;
        record("sql", r.and_then(|r| Ok(serde_json::to_value(r)?)));
    }
    // (e)
    if selected.contains(&Scenario::Rss) {
        let r = async {
            if ctx.memory.is_empty() {
                scenarios::e2e_run(&mut ctx, 1, 0).await?;
            }
            Ok(serde_json::to_value(scenarios::rss(&ctx)?)?)
        }
        .await;
        record("rss", r);
    }

    if selected.contains(&Scenario::Backlog) {
        let r = scenarios::backlog(&mut ctx, smoke).await;
        record("backlog", r.and_then(|r| Ok(serde_json::to_value(r)?)));
    }
    if selected.contains(&Scenario::Instances) {
        let r = scenarios::instances(&mut ctx).await;
        record("instances", r.and_then(|r| Ok(serde_json::to_value(r)?)));
    }
    if selected.contains(&Scenario::Burst) {
        let r = scenarios::burst(&mut ctx, smoke).await;
        record("burst", r.and_then(|r| Ok(serde_json::to_value(r)?)));
    }

    let signature_failures: u64 =
        collect_numbers(&Value::Object(results.clone()), "signature_failures")
            .into_iter()
            .sum();
    let targets = targets(&results);
    let machine_after = machine_load();
    let report = json!({
        "benchmark": "webhooks-bench",
        "version": 1,
        "started_at": started_at,
        "finished_at": now_rfc3339(),
        "command": std::env::args().collect::<Vec<_>>(),
        "mode": if smoke { "smoke" } else { "full" },
        "bench_build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "service_bin": bin.display().to_string(),
        "service_args": args.service_arg,
        "label": args.label,
        "settings": {
            "duration_s": settings.duration.as_secs_f64(),
            "warmup_s": settings.warmup.as_secs_f64(),
            "drain_s": settings.drain.as_secs_f64(),
            "concurrency": settings.concurrency,
            "batch_concurrency": settings.batch_concurrency,
            "batch_size": settings.batch_size,
            "max_backlog": settings.max_backlog,
            "rates": settings.rates,
            "hang_rate": settings.hang_rate,
            "watchers": settings.watchers,
            "watcher_decode": settings.watcher_decode.as_str(),
            "sql_events": settings.sql_events,
            "connections": settings.connections,
            "own_cluster": args.own_cluster,
            "nginx": args.nginx,
        },
        "machine": machine_before,
        "machine_load_at_end": machine_after,
        "scenarios": results,
        "signature_failures": signature_failures,
        "failed_scenarios": failed,
        "targets": targets,
    });
    print_table(&report);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("[webhooks-bench] JSON written to {}", path.display());
    }
    if !failed.is_empty() {
        eprintln!("[webhooks-bench] failed scenarios: {}", failed.join(", "));
        return Ok(ExitCode::FAILURE);
    }
    if signature_failures > 0 {
        eprintln!("[webhooks-bench] {signature_failures} deliveries failed signature verification");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Every number under a key of that name, anywhere in `value`.
fn collect_numbers(value: &Value, key: &str) -> Vec<u64> {
    let mut out = Vec::new();
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == key
                    && let Some(n) = v.as_u64()
                {
                    out.push(n);
                }
                out.extend(collect_numbers(v, key));
            }
        }
        Value::Array(items) => {
            for v in items {
                out.extend(collect_numbers(v, key));
            }
        }
        _ => {}
    }
    out
}
